//go:build cuda

package cuda

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/backend"
	bind "github.com/kiln-ml/kiln/bindings/cuda"
	"github.com/kiln-ml/kiln/bindings/cuda/rtc"
	kern "github.com/kiln-ml/kiln/kernels/cuda"
)

// Devices lists the CUDA devices as backend.DeviceInfo.
func Devices() ([]backend.DeviceInfo, error) {
	ds, err := bind.Devices()
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("%w: the CUDA driver reports no devices", backend.ErrUnavailable)
	}
	out := make([]backend.DeviceInfo, len(ds))
	for i, d := range ds {
		out[i] = toInfo(d)
	}
	return out, nil
}

func toInfo(d bind.DeviceInfo) backend.DeviceInfo {
	return backend.DeviceInfo{
		Backend:      Name,
		Name:         fmt.Sprintf("%s (sm_%d%d, %d SMs)", d.Name, d.Major, d.Minor, d.SMs),
		Vendor:       "NVIDIA",
		Driver:       fmt.Sprintf("CUDA driver %d.%d", d.Driver/1000, d.Driver%1000/10),
		MemoryBytes:  d.MemoryBytes,
		ComputeUnits: d.SMs,
	}
}

// pickDevice resolves Options.Device: an index or a name substring.
func pickDevice(sel string) (int, error) {
	ds, err := bind.Devices()
	if err != nil {
		return 0, err
	}
	if len(ds) == 0 {
		return 0, fmt.Errorf("%w: the CUDA driver reports no devices", backend.ErrUnavailable)
	}
	if sel == "" {
		return 0, nil
	}
	if i, err := strconv.Atoi(sel); err == nil {
		if i < 0 || i >= len(ds) {
			return 0, fmt.Errorf("%w: device %d out of range (%d devices)", backend.ErrUnavailable, i, len(ds))
		}
		return i, nil
	}
	for _, d := range ds {
		if strings.Contains(strings.ToLower(d.Name), strings.ToLower(sel)) {
			return d.Ordinal, nil
		}
	}
	return 0, fmt.Errorf("%w: no CUDA device matches %q", backend.ErrUnavailable, sel)
}

// Open creates the backend on the selected device: a context and stream,
// the kernels compiled by NVRTC for its architecture (or loaded from the PTX
// cache) and loaded as one module.
func Open(opts backend.Options) (backend.Backend, error) {
	ord, err := pickDevice(opts.Device)
	if err != nil {
		return nil, backend.Wrap(Name, "Open", err)
	}
	ctx, err := bind.NewContext(ord)
	if err != nil {
		return nil, backend.Wrap(Name, "Open", err)
	}
	dev := &driverDevice{Context: ctx}
	res, err := compileKernels(ctx.Info(), opts.CacheDir)
	if err == nil {
		dev.fns, err = ctx.LoadPTX(res.PTX, kern.Kernels())
	}
	if err != nil {
		ctx.Close()
		return nil, backend.Wrap(Name, "Open", err)
	}
	b, err := newBackend(dev, toInfo(ctx.Info()))
	if err != nil {
		return nil, err
	}
	b.ptxLog, b.arch, b.cached = res.Log, res.Arch, res.Cached
	return b, nil
}

// compileKernels compiles the kernels for the device's architecture through
// the PTX cache.
func compileKernels(info bind.DeviceInfo, cacheDir string) (rtc.Result, error) {
	src, err := kern.Source()
	if err != nil {
		return rtc.Result{}, err
	}
	if cacheDir == "" {
		if d, err := rtc.DefaultDir(); err == nil {
			cacheDir = d
		}
	} else {
		cacheDir = cacheDir + "/cuda-ptx"
	}
	return rtc.Cache{Dir: cacheDir}.CompileBest(rtc.Request{Source: src, Name: kern.ProgramName,
		Options: kern.CompileOptions()}, rtc.ArchesFor(info.Major, info.Minor))
}

// driverDevice is the real device: a context and the kernels loaded into it.
type driverDevice struct {
	*bind.Context
	fns map[string]bind.Function
}

// Launch queues the kernel called name.
func (d *driverDevice) Launch(name string, grid, block bind.Dim, args ...bind.Arg) error {
	fn, ok := d.fns[name]
	if !ok {
		return fmt.Errorf("kernel %s is not loaded", name)
	}
	return d.Context.Launch(fn, grid, block, 0, args...)
}
