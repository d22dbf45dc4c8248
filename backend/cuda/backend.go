//go:build cuda || cudaemu

package cuda

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"

	"github.com/kiln-ml/kiln/backend"
	bind "github.com/kiln-ml/kiln/bindings/cuda"
)

// Name is the registry name of this backend.
const Name = "cuda"

var errClosed = errors.New("backend is closed")

// Kernels index with 32-bit ints, and a thread's index may run past the
// last element by up to one grid stride (a grid-stride loop's final step)
// or one tile before its bound check: an index that passes MaxInt32 wraps
// negative, passes the check and faults. So sizes stay indexSlack below
// MaxInt32, and flat grids stride at most indexSlack elements (flatBlocks).
const (
	indexSlack = 1 << 24
	maxElems   = math.MaxInt32 - indexSlack
)

// Backend is the CUDA backend: one context and stream on one device. Ops are
// queued on the stream and return at once; Sync and Download wait. It must
// be used from one goroutine at a time (Buffer.Free and Stats may be called
// from any goroutine).
type Backend struct {
	ctx    device
	dev    backend.DeviceInfo
	ptxLog string
	arch   string
	cached bool

	bad    bind.DevicePtr // int32 set by kiln_softmax_xent to the first bad label row
	closed bool

	mu   sync.Mutex // guards pool
	pool map[int64][]bind.DevicePtr
	// exact allocates every buffer at its exact size and frees it at once
	// (no size classes, no pool): the emulator's guard pages then sit right
	// after each buffer's last element.
	exact bool

	live, liveElems, allocs atomic.Int64
}

var _ backend.Backend = (*Backend)(nil)

// newBackend wraps an open device: it allocates the bad-label flag. On
// error it frees the flag and closes ctx.
func newBackend(ctx device, info backend.DeviceInfo) (*Backend, error) {
	b := &Backend{ctx: ctx, dev: info, pool: map[int64][]bind.DevicePtr{}}
	var err error
	if b.bad, err = ctx.Alloc(4); err == nil {
		if err = b.resetBad(); err != nil {
			err = errors.Join(err, ctx.Free(b.bad))
		}
	}
	if err != nil {
		return nil, backend.Wrap(Name, "Open", errors.Join(err, ctx.Close()))
	}
	return b, nil
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
