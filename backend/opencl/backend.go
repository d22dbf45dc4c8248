//go:build opencl

package opencl

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/kiln-ml/kiln/backend"
	clb "github.com/kiln-ml/kiln/bindings/opencl"
)

// Name is the registry name of this backend.
const Name = "opencl"

// EnvDevice selects the device when backend.Options.Device is empty.
const EnvDevice = "KILN_OPENCL_DEVICE"

// errClosed is wrapped by every op called after Close.
var errClosed = errors.New("backend is closed")

// Backend is the OpenCL backend. Create it with Open (or
// backend.Open("opencl", …)) and release it with Close. It must be used
// from one goroutine at a time.
type Backend struct {
	ctx    *clb.Context
	aq     allocQueue // ctx; tests wrap it to inject errors
	dev    clb.Device
	info   backend.DeviceInfo
	k      kernels
	progs  []*clb.Program
	loads  []ProgramLoad
	closed bool

	mu        sync.Mutex // guards the pool and counters (Free may come late)
	pool      pool
	liveSet   map[*Buffer]struct{}
	live      int
	liveElems int64
	allocs    int64

	col    *clb.Buffer // im2col workspace
	part   *clb.Buffer // per-row loss/correct workspace
	labels []float32   // host copy of labels, validated before the loss kernel
}

var _ backend.Backend = (*Backend)(nil)

// Name returns "opencl".
func (b *Backend) Name() string { return Name }

// Device describes the OpenCL device in use.
func (b *Backend) Device() backend.DeviceInfo { return b.info }

// Ops lists every op of the contract: this backend implements them all.
func (b *Backend) Ops() []string { return backend.AllOps() }

// Programs says, for each kernel program, whether it came from the disk
// cache or was built from source, and why a cached binary was not used.
func (b *Backend) Programs() []ProgramLoad { return append([]ProgramLoad(nil), b.loads...) }

// Stats reports the user's live buffers and elements and the Alloc count.
func (b *Backend) Stats() backend.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return backend.Stats{LiveBuffers: b.live, LiveElements: b.liveElems, Allocs: b.allocs}
}

// Close waits for queued work and releases every device object: buffers
// still live (they become unusable), the free list, the workspaces, the
// kernels, the programs and the context. Closing twice is a no-op.
func (b *Backend) Close() error {
	if b.closed {
		return nil
	}
	var errs []error
	if err := b.ctx.Finish(); err != nil {
		errs = append(errs, err)
	}
	b.mu.Lock()
	b.closed = true // under mu: a late Free reads it there
	for buf := range b.liveSet {
		errs = append(errs, buf.mem.Release())
		buf.mem = nil
		buf.freed = true
	}
	b.liveSet = nil
	b.live, b.liveElems = 0, 0
	errs = append(errs, b.pool.drain())
	b.mu.Unlock()
	errs = append(errs, b.col.Release(), b.part.Release())
	errs = append(errs, b.k.release()...)
	for _, p := range b.progs {
		errs = append(errs, p.Release())
	}
	errs = append(errs, b.ctx.Release())
	if err := errors.Join(errs...); err != nil {
		return backend.Wrap(Name, "Close", err)
	}
	return nil
}

// Sync waits for all queued work and reports any deferred error.
func (b *Backend) Sync() error {
	if b.closed {
		return backend.Wrap(Name, "Sync", errClosed)
	}
	return backend.Wrap(Name, "Sync", b.ctx.Finish())
}

// Buffer is a device buffer of the OpenCL backend.
type Buffer struct {
	owner *Backend
	mem   *clb.Buffer
	n     int
	freed bool
}

// Len is the buffer's length in float32 elements; 0 once freed.
func (x *Buffer) Len() int {
	if x == nil || x.freed {
		return 0
	}
	return x.n
}

// Free returns the buffer's device memory to its backend's free list.
// Freeing twice is a no-op.
func (x *Buffer) Free() {
	if x == nil || x.owner == nil {
		return
	}
	b := x.owner
	b.mu.Lock()
	defer b.mu.Unlock()
	if x.freed {
		return
	}
	x.freed = true
	delete(b.liveSet, x)
	b.live--
	b.liveElems -= int64(x.n)
	if !b.closed {
		b.pool.put(x.mem)
	}
	x.mem = nil
}

// maxElems is the largest buffer: the kernels index with 32-bit ints, and
// the device caps single allocations.
func (b *Backend) maxElems() int64 {
	lim := int64(math.MaxInt32)
	if b.dev.MaxAlloc > 0 && b.dev.MaxAlloc/4 < lim {
		lim = b.dev.MaxAlloc / 4
	}
	return lim
}

// Alloc returns a zero-filled buffer of n float32 elements.
func (b *Backend) Alloc(n int) (backend.Buffer, error) {
	op := backend.OpAlloc
	if b.closed {
		return nil, backend.Wrap(Name, op, errClosed)
	}
	if n < 0 {
		return nil, backend.ShapeError(Name, op, "negative size %d", n)
	}
	if int64(n) > b.maxElems() {
		return nil, backend.ShapeError(Name, op, "%d elements (%d bytes) exceed the largest buffer this backend allows on %s: %d elements (device max allocation %d bytes, 32-bit kernel indices)",
			n, int64(n)*4, b.dev.Name, b.maxElems(), b.dev.MaxAlloc)
	}
	size := bucketBytes(n, b.dev.MaxAlloc)
	b.mu.Lock()
	mem := b.pool.get(size)
	b.mu.Unlock()
	if mem == nil {
		// Wait for the queued work first, so that its failure (a kernel's
		// CL_OUT_OF_RESOURCES, say) is reported as what it is and not as
		// this allocation running out of memory.
		if err := b.aq.Finish(); err != nil {
			return nil, &backend.Error{Backend: Name, Op: op, Err: err,
				Msg: fmt.Sprintf("work queued by earlier ops failed (reported before allocating %d elements)", n)}
		}
		var err error
		if mem, err = b.freshBuffer(size, n); err != nil {
			return nil, b.allocError(n, err)
		}
	} else if err := b.aq.Fill(mem, 0, n, 0); err != nil {
		mem.Release()
		return nil, b.allocError(n, err)
	}
	buf := &Buffer{owner: b, mem: mem, n: n}
	b.mu.Lock()
	b.liveSet[buf] = struct{}{}
	b.live++
	b.liveElems += int64(n)
	b.allocs++
	b.mu.Unlock()
	return buf, nil
}

// allocQueue is the part of the context Alloc uses; tests wrap it to
// inject errors.
type allocQueue interface {
	NewBuffer(size int64) (*clb.Buffer, error)
	Fill(m *clb.Buffer, offset, n int, v float32) error
	Finish() error
}

// freshBuffer creates a device buffer of size bytes and zero-fills its first
// n elements, waiting for the fill: drivers allocate lazily, and this makes
// the first touch happen now, so running out of memory is reported here and
// not by a later op. When the device runs out of memory in any of these
// steps, the cached free buffers are given back to it and it is tried once
// more.
func (b *Backend) freshBuffer(size int64, n int) (*clb.Buffer, error) {
	mem, err := b.touchBuffer(size, n)
	if errors.Is(err, clb.ErrOutOfMemory) {
		b.mu.Lock()
		derr := b.pool.drain()
		b.mu.Unlock()
		if mem, err = b.touchBuffer(size, n); err != nil {
			err = errors.Join(err, derr)
		}
	}
	return mem, err
}

// touchBuffer is one try of freshBuffer.
func (b *Backend) touchBuffer(size int64, n int) (*clb.Buffer, error) {
	mem, err := b.aq.NewBuffer(size)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		if err = b.aq.Fill(mem, 0, n, 0); err == nil {
			err = b.aq.Finish()
		}
		if err != nil {
			mem.Release()
			return nil, err
		}
	}
	return mem, nil
}

func (b *Backend) allocError(n int, err error) error {
	if errors.Is(err, clb.ErrOutOfMemory) {
		b.mu.Lock()
		live, liveElems := b.live, b.liveElems
		b.mu.Unlock()
		return &backend.Error{Backend: Name, Op: backend.OpAlloc, Err: err,
			Msg: fmt.Sprintf("out of device memory allocating %d elements (%d bytes) on %s (%d MiB global memory, %d live buffers holding %d elements)",
				n, int64(n)*4, b.dev.Name, b.dev.GlobalMem>>20, live, liveElems)}
	}
	return &backend.Error{Backend: Name, Op: backend.OpAlloc, Err: err, Msg: fmt.Sprintf("allocating %d elements failed", n)}
}

// check validates the buffers an op uses: each must be a live buffer of
// this backend holding at least the required elements (backend.Need words
// the size errors). It returns the device buffers in order.
func (b *Backend) check(op string, reqs ...backend.Req) ([]*clb.Buffer, error) {
	if b.closed {
		return nil, backend.Wrap(Name, op, errClosed)
	}
	mems := make([]*clb.Buffer, len(reqs))
	for i := range reqs {
		r := &reqs[i]
		if r.Buf == nil {
			continue // Need reports it
		}
		ob, ok := r.Buf.(*Buffer)
		switch {
		case !ok:
			return nil, backend.ShapeError(Name, op, "%s: buffer of type %T does not belong to the opencl backend", r.Name, r.Buf)
		case ob == nil:
			r.Buf = nil
		case ob.owner != b:
			return nil, backend.ShapeError(Name, op, "%s: buffer belongs to another opencl backend", r.Name)
		case ob.freed:
			return nil, backend.ShapeError(Name, op, "%s: buffer was freed", r.Name)
		default:
			mems[i] = ob.mem
		}
	}
	if err := backend.Need(Name, op, reqs...); err != nil {
		return nil, err
	}
	return mems, nil
}

// Upload copies src into the first len(src) elements of dst.
func (b *Backend) Upload(dst backend.Buffer, src []float32) error {
	m, err := b.check(backend.OpUpload, backend.Req{Name: "dst", Buf: dst, N: len(src)})
	if err != nil {
		return err
	}
	return backend.Wrap(Name, backend.OpUpload, b.ctx.Write(m[0], 0, src))
}

// Download copies the first len(dst) elements of src into dst, after the
// queued work.
func (b *Backend) Download(dst []float32, src backend.Buffer) error {
	m, err := b.check(backend.OpDownload, backend.Req{Name: "src", Buf: src, N: len(dst)})
	if err != nil {
		return err
	}
	return backend.Wrap(Name, backend.OpDownload, b.ctx.Read(dst, m[0], 0))
}

// Fill sets the first n elements of dst to v.
func (b *Backend) Fill(dst backend.Buffer, n int, v float32) error {
	m, err := b.check(backend.OpFill, backend.Req{Name: "dst", Buf: dst, N: n})
	if err != nil {
		return err
	}
	return backend.Wrap(Name, backend.OpFill, b.ctx.Fill(m[0], 0, n, v))
}

// Copy copies the first n elements of src into dst.
func (b *Backend) Copy(dst, src backend.Buffer, n int) error {
	m, err := b.check(backend.OpCopy, backend.Req{Name: "dst", Buf: dst, N: n}, backend.Req{Name: "src", Buf: src, N: n})
	if err != nil {
		return err
	}
	if m[0] == m[1] {
		return nil // copying a buffer onto itself changes nothing
	}
	return backend.Wrap(Name, backend.OpCopy, b.ctx.Copy(m[0], m[1], n))
}
