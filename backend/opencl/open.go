//go:build opencl

package opencl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/backend"
	clb "github.com/kiln-ml/kiln/bindings/opencl"
	kcl "github.com/kiln-ml/kiln/kernels/opencl"
)

func init() {
	backend.Register(backend.Factory{
		Name:  Name,
		Open:  func(o backend.Options) (backend.Backend, error) { return Open(o) },
		Probe: Probe,
	})
}

// buildOptions are passed to every program build (and are part of the
// cache key).
const buildOptions = "-cl-std=CL1.2"

// installHint says what to install when no OpenCL runtime is usable.
const installHint = "install an OpenCL driver: your GPU vendor's OpenCL ICD, or PoCL for the CPU " +
	"(Debian/Ubuntu: apt-get install pocl-opencl-icd ocl-icd-libopencl1; scripts/install-opencl.sh does it)"

// programOps names the ops each program serves, for error messages.
var programOps = map[string][]string{
	"gemm.cl":        {backend.OpGemm, backend.OpConv2D, backend.OpConv2DBackwardData, backend.OpConv2DBackwardFilter},
	"conv.cl":        {backend.OpConv2D, backend.OpConv2DBackwardData, backend.OpConv2DBackwardFilter},
	"pool.cl":        {backend.OpMaxPool2D, backend.OpMaxPool2DBackward},
	"elementwise.cl": {backend.OpBiasAdd, backend.OpBiasGrad, backend.OpReLU, backend.OpReLUBackward, backend.OpMul, backend.OpDropoutMask},
	"softmax.cl":     {backend.OpSoftmax, backend.OpSoftmaxCrossEntropy},
	"optim.cl":       {backend.OpAdam, backend.OpSGD},
}

// unavailable builds the ErrUnavailable error of Open and Probe.
func unavailable(op, msg string, err error) error {
	return &backend.Error{Backend: Name, Op: op, Kind: backend.ErrUnavailable, Err: err, Msg: msg}
}

// devices lists the OpenCL devices or says why there are none.
func devices(op string) ([]clb.Device, error) {
	devs, err := clb.Devices()
	switch {
	case errors.Is(err, clb.ErrNoPlatform):
		return nil, unavailable(op, "no OpenCL platform found; "+installHint, err)
	case errors.Is(err, clb.ErrNoDevice):
		return nil, unavailable(op, "the OpenCL platforms expose no device; "+installHint, err)
	case err != nil:
		return nil, unavailable(op, "listing OpenCL devices failed; "+installHint, err)
	}
	return devs, nil
}

// info converts a device description to the registry's form.
func info(d clb.Device) backend.DeviceInfo {
	return backend.DeviceInfo{
		Backend:      Name,
		Name:         d.Name,
		Vendor:       d.Vendor,
		Driver:       strings.TrimSpace(d.Platform.Name + " " + d.Driver),
		MemoryBytes:  d.GlobalMem,
		ComputeUnits: d.ComputeUnits,
	}
}

// Probe lists every OpenCL device on every platform, in the order the
// --device index uses.
func Probe() ([]backend.DeviceInfo, error) {
	devs, err := devices("Probe")
	if err != nil {
		return nil, err
	}
	out := make([]backend.DeviceInfo, len(devs))
	for i, d := range devs {
		out[i] = info(d)
	}
	return out, nil
}

// selectDevice picks the device named by want (an index or a name
// substring, the first available match), or the best one: GPU, then
// accelerator, then CPU, available devices first; among GPUs a discrete one
// (no host unified memory) first, then the larger compute units × global
// memory; otherwise in listing order. A named device that is not available
// is an error naming it.
func selectDevice(devs []clb.Device, want string) (clb.Device, error) {
	list := func() string {
		var s []string
		for _, d := range devs {
			s = append(s, d.String())
		}
		return strings.Join(s, "; ")
	}
	notAvailable := func(d clb.Device) error {
		return fmt.Errorf("OpenCL device %s is not available (CL_DEVICE_AVAILABLE is false; devices: %s)", d, list())
	}
	if want = strings.TrimSpace(want); want != "" {
		if i, err := strconv.Atoi(want); err == nil {
			if i < 0 || i >= len(devs) {
				return clb.Device{}, fmt.Errorf("no OpenCL device with index %d (devices: %s)", i, list())
			}
			if !devs[i].Available {
				return clb.Device{}, notAvailable(devs[i])
			}
			return devs[i], nil
		}
		busy := -1 // the first match that is not available
		for i, d := range devs {
			if strings.Contains(strings.ToLower(d.Name), strings.ToLower(want)) {
				if d.Available {
					return d, nil
				}
				if busy < 0 {
					busy = i
				}
			}
		}
		if busy >= 0 {
			return clb.Device{}, notAvailable(devs[busy])
		}
		return clb.Device{}, fmt.Errorf("no OpenCL device name contains %q (devices: %s)", want, list())
	}
	best := append([]clb.Device(nil), devs...)
	sort.SliceStable(best, func(i, j int) bool {
		a, c := best[i], best[j]
		switch {
		case a.Available != c.Available:
			return a.Available
		case a.Type != c.Type:
			return a.Type < c.Type
		case a.Type != clb.TypeGPU:
			return false
		case a.UnifiedMemory != c.UnifiedMemory:
			return c.UnifiedMemory
		}
		return int64(a.ComputeUnits)*a.GlobalMem > int64(c.ComputeUnits)*c.GlobalMem
	})
	if !best[0].Available {
		return clb.Device{}, fmt.Errorf("no OpenCL device is available (devices: %s)", list())
	}
	return best[0], nil
}

// config is what Open builds; tests replace the programs.
type config struct {
	programs []kcl.Program
}

// Open opens the OpenCL backend on the device opts.Device (or
// KILN_OPENCL_DEVICE, or the best device) and builds or loads every kernel
// program. Errors wrap backend.ErrUnavailable when the backend cannot run
// here and say why.
func Open(opts backend.Options) (*Backend, error) {
	return openWith(opts, config{programs: kcl.Programs()})
}

func openWith(opts backend.Options, cfg config) (*Backend, error) {
	const op = "Open"
	devs, err := devices(op)
	if err != nil {
		return nil, err
	}
	want := opts.Device
	if want == "" {
		want = os.Getenv(EnvDevice)
	}
	dev, err := selectDevice(devs, want)
	if err != nil {
		return nil, unavailable(op, "choosing a device", err)
	}
	if opts.Auto && want == "" && dev.Type == clb.TypeCPU {
		return nil, unavailable(op, fmt.Sprintf("auto skips OpenCL here: its best device, %s, is a CPU, "+
			"where the native cpu backend runs the same work faster; choose it with --backend opencl "+
			"(or %s=opencl)", dev.Name, backend.EnvBackend), nil)
	}
	if dev.MaxWorkGroup < 256 {
		return nil, unavailable(op, fmt.Sprintf("device %s runs work-groups of at most %d work-items; kiln's kernels need 256", dev.Name, dev.MaxWorkGroup), nil)
	}
	ctx, err := clb.NewContext(dev, false)
	if err != nil {
		return nil, unavailable(op, "creating a context on "+dev.Name, err)
	}
	b := &Backend{ctx: ctx, aq: ctx, dev: dev, info: info(dev), liveSet: map[*Buffer]struct{}{}}
	fail := func(err error) (*Backend, error) {
		b.Close()
		return nil, err
	}
	dir := opts.CacheDir
	if dir == "" {
		if ucd, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(ucd, "kiln", "opencl")
		}
	}
	progs := map[string]*clb.Program{}
	for _, p := range cfg.programs {
		prog, ld, err := loadProgram(ctx, dir, p.Name, p.Source, buildOptions)
		if err != nil {
			return fail(unavailable(op, fmt.Sprintf("kernel program %s (ops %s) does not build on %s",
				p.Name, strings.Join(programOps[p.Name], ", "), dev.Name), err))
		}
		b.progs = append(b.progs, prog)
		b.loads = append(b.loads, ld)
		progs[p.Name] = prog
	}
	if err := b.k.create(progs); err != nil {
		return fail(unavailable(op, "creating kernels on "+dev.Name, err))
	}
	return b, nil
}
