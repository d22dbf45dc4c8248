//go:build cuda || cudaemu

package cuda

import bind "github.com/kiln-ml/kiln/bindings/cuda"

// device is what the backend needs of a GPU: memory, copies, launches by
// kernel name and a stream to wait for. The real one (driverDevice, build
// tag cuda) is a bind.Context with the kernels NVRTC compiled; the
// emulated one (build tag cudaemu) runs the same CUDA C kernels on the CPU
// so that the conformance suite exercises the kernels and this package's
// launch code on hosts without a GPU.
type device interface {
	Alloc(bytes int64) (bind.DevicePtr, error)
	Free(p bind.DevicePtr) error
	Upload(dst bind.DevicePtr, src []float32) error
	Download(dst []float32, src bind.DevicePtr) error
	DownloadInt32(dst []int32, src bind.DevicePtr) error
	CopyDtoD(dst, src bind.DevicePtr, bytes int64) error
	Memset32(dst bind.DevicePtr, v uint32, n int64) error
	// Launch queues the kernel called name (one of kernels/cuda.Kernels).
	Launch(name string, grid, block bind.Dim, args ...bind.Arg) error
	Sync() error
	Close() error
}
