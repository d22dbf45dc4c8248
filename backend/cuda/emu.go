//go:build cudaemu && linux && !cuda

package cuda

import (
	"fmt"

	"github.com/kiln-ml/kiln/backend"
	bind "github.com/kiln-ml/kiln/bindings/cuda"
	kern "github.com/kiln-ml/kiln/kernels/cuda"
)

// emuSMs is the multiprocessor count the emulated device reports; the
// launch code sizes grid-stride grids from it.
const emuSMs = 2

// OpenEmulated returns the CUDA backend on kernels/cuda's CPU emulator
// (build tag cudaemu, without cuda): this package's launch code and the
// unchanged CUDA C kernels, run on the CPU. It is for tests on hosts
// without a GPU; it is not registered as a backend.
func OpenEmulated() (*Backend, error) {
	dev := &emuDevice{e: kern.NewEmulator()}
	b, err := newBackend(dev, backend.DeviceInfo{Backend: Name, Name: "CUDA emulator (CPU)", Vendor: "kiln",
		Driver: "kernels/cuda emulator", ComputeUnits: emuSMs})
	if err != nil {
		return nil, err
	}
	b.arch = "emulated"
	b.exact = true
	return b, nil
}

// emuDevice adapts the emulator to the device interface.
type emuDevice struct {
	e      *kern.Emulator
	closed bool
}

func (d *emuDevice) Alloc(bytes int64) (bind.DevicePtr, error) {
	p, err := d.e.Alloc(bytes)
	return bind.DevicePtr(p), err
}

func (d *emuDevice) Free(p bind.DevicePtr) error { return d.e.Free(uintptr(p)) }

func (d *emuDevice) Upload(dst bind.DevicePtr, src []float32) error {
	return d.e.Upload(uintptr(dst), src)
}

func (d *emuDevice) Download(dst []float32, src bind.DevicePtr) error {
	return d.e.Download(dst, uintptr(src))
}

func (d *emuDevice) DownloadInt32(dst []int32, src bind.DevicePtr) error {
	return d.e.DownloadInt32(dst, uintptr(src))
}

func (d *emuDevice) CopyDtoD(dst, src bind.DevicePtr, bytes int64) error {
	return d.e.CopyDtoD(uintptr(dst), uintptr(src), bytes)
}

func (d *emuDevice) Memset32(dst bind.DevicePtr, v uint32, n int64) error {
	return d.e.Memset32(uintptr(dst), v, n)
}

func (d *emuDevice) Launch(name string, grid, block bind.Dim, args ...bind.Arg) error {
	a := make([]uint64, len(args))
	for i, v := range args {
		a[i] = uint64(v)
	}
	return d.e.Launch(name, [3]int{grid.X, grid.Y, grid.Z}, [3]int{block.X, block.Y, block.Z}, a)
}

func (d *emuDevice) Sync() error { return nil }

// Close reports memory still allocated (the backend frees everything it
// owns before closing its device) and releases it.
func (d *emuDevice) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	if n := d.e.FreeAll(); n > 0 {
		return fmt.Errorf("emulator: %d allocations still live at Close", n)
	}
	return nil
}
