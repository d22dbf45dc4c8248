//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kiln-ml/kiln/backend"
	bind "github.com/kiln-ml/kiln/bindings/cuda"
	"github.com/kiln-ml/kiln/bindings/cuda/rtc"
	kern "github.com/kiln-ml/kiln/kernels/cuda"
)

// Name is the registry name of this backend.
const Name = "cuda"

var errClosed = errors.New("backend is closed")

// maxElems bounds sizes: kernels index with 32-bit ints.
const maxElems = math.MaxInt32

// Backend is the CUDA backend: one context and stream on one device. Ops are
// queued on the stream and return at once; Sync and Download wait. It must
// be used from one goroutine at a time (Buffer.Free and Stats may be called
// from any goroutine).
type Backend struct {
	ctx    *bind.Context
	dev    backend.DeviceInfo
	fns    map[string]bind.Function
	ptxLog string
	arch   string
	cached bool

	bad    bind.DevicePtr // int32 set by kiln_softmax_xent to the first bad label row
	closed bool

	mu   sync.Mutex // guards pool
	pool map[int64][]bind.DevicePtr

	live, liveElems, allocs atomic.Int64
}

var _ backend.Backend = (*Backend)(nil)

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
	b := &Backend{ctx: ctx, dev: toInfo(ctx.Info()), pool: map[int64][]bind.DevicePtr{}}
	if err := b.loadKernels(opts.CacheDir); err != nil {
		ctx.Close()
		return nil, backend.Wrap(Name, "Open", err)
	}
	if b.bad, err = ctx.Alloc(4); err != nil {
		ctx.Close()
		return nil, backend.Wrap(Name, "Open", err)
	}
	if err := b.resetBad(); err != nil {
		ctx.Close()
		return nil, backend.Wrap(Name, "Open", err)
	}
	return b, nil
}

func (b *Backend) loadKernels(cacheDir string) error {
	src, err := kern.Source()
	if err != nil {
		return err
	}
	if cacheDir == "" {
		if d, err := rtc.DefaultDir(); err == nil {
			cacheDir = d
		}
	} else {
		cacheDir = cacheDir + "/cuda-ptx"
	}
	info := b.ctx.Info()
	res, err := rtc.Cache{Dir: cacheDir}.CompileBest(rtc.Request{Source: src, Name: kern.ProgramName,
		Options: kern.CompileOptions()}, rtc.ArchesFor(info.Major, info.Minor))
	if err != nil {
		return err
	}
	b.ptxLog, b.arch, b.cached = res.Log, res.Arch, res.Cached
	b.fns, err = b.ctx.LoadPTX(res.PTX, kern.Kernels())
	return err
}

// Name returns "cuda".
func (b *Backend) Name() string { return Name }

// Device describes the GPU.
func (b *Backend) Device() backend.DeviceInfo { return b.dev }

// Ops lists every op of the contract.
func (b *Backend) Ops() []string { return backend.AllOps() }

// Stats reports live user buffers.
func (b *Backend) Stats() backend.Stats {
	return backend.Stats{LiveBuffers: int(b.live.Load()), LiveElements: b.liveElems.Load(), Allocs: b.allocs.Load()}
}

// Arch is the virtual architecture the kernels were compiled for, and
// whether the PTX came from the disk cache.
func (b *Backend) Arch() (string, bool) { return b.arch, b.cached }

// Close waits for queued work, frees every pooled block and destroys the
// context. Closing twice is a no-op.
func (b *Backend) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	errs = append(errs, b.ctx.Sync())
	b.mu.Lock()
	for _, ps := range b.pool {
		for _, p := range ps {
			errs = append(errs, b.ctx.Free(p))
		}
	}
	b.pool = nil
	b.mu.Unlock()
	errs = append(errs, b.ctx.Free(b.bad), b.ctx.Close())
	return backend.Wrap(Name, "Close", errors.Join(errs...))
}

// Sync waits for the stream and reports deferred errors (a bad label seen by
// SoftmaxCrossEntropy).
func (b *Backend) Sync() error {
	if b.closed {
		return backend.Wrap(Name, "Sync", errClosed)
	}
	if err := b.ctx.Sync(); err != nil {
		return backend.Wrap(Name, "Sync", err)
	}
	return b.checkBad("Sync")
}

func (b *Backend) resetBad() error { return b.ctx.Memset32(b.bad, math.MaxInt32, 1) }

// checkBad reads the bad-label flag (the stream is idle) and turns it into
// a shape error naming the row, then clears it.
func (b *Backend) checkBad(op string) error {
	v := []int32{0}
	if err := b.ctx.DownloadInt32(v, b.bad); err != nil {
		return backend.Wrap(Name, op, err)
	}
	if v[0] == math.MaxInt32 {
		return nil
	}
	if err := b.resetBad(); err != nil {
		return backend.Wrap(Name, op, err)
	}
	return backend.ShapeError(Name, backend.OpSoftmaxCrossEntropy,
		"label at row %d is not a class index (reported at %s)", v[0], op)
}
