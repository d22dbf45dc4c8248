//go:build cuda || cudaemu

package cuda

import (
	"errors"
	"math/bits"
	"sync/atomic"

	"github.com/kiln-ml/kiln/backend"
	bind "github.com/kiln-ml/kiln/bindings/cuda"
)

// Buffer is device memory owned by one Backend. Its block comes from the
// backend's size-bucketed free list and goes back there on Free.
type Buffer struct {
	ptr    bind.DevicePtr
	n      int   // elements requested
	bucket int64 // bytes of the block
	owner  *Backend
	freed  atomic.Bool
}

var _ backend.Buffer = (*Buffer)(nil)

// Len is the buffer's size in float32 elements; 0 once freed.
func (b *Buffer) Len() int {
	if b == nil || b.freed.Load() {
		return 0
	}
	return b.n
}

// Free returns the block to the backend's free list. Freeing twice is a
// no-op. Work already queued on the stream that uses the block runs before
// any later user of the block, since everything runs on one stream.
func (b *Buffer) Free() {
	if b == nil || !b.freed.CompareAndSwap(false, true) {
		return
	}
	o := b.owner
	o.live.Add(-1)
	o.liveElems.Add(-int64(b.n))
	if o.exact {
		_ = o.ctx.Free(b.ptr) // the emulator's free cannot fail for a live block
		return
	}
	o.mu.Lock()
	if o.pool != nil {
		o.pool[b.bucket] = append(o.pool[b.bucket], b.ptr)
	}
	o.mu.Unlock()
}

// bucketBytes rounds a request up to its size class: powers of two split
// into four steps (at most 25% waste), at least 1 KiB.
func bucketBytes(bytes int64) int64 {
	if bytes <= 1024 {
		return 1024
	}
	e := 63 - bits.LeadingZeros64(uint64(bytes-1)) // 2^e < bytes <= 2^(e+1)
	step := int64(1) << (e - 2)
	return (bytes + step - 1) / step * step
}

// Alloc returns a zero-filled buffer of n float32 elements, reusing a
// pooled block of the same size class when one is free. When the device is
// out of memory it releases the pool and tries once more.
func (b *Backend) Alloc(n int) (backend.Buffer, error) {
	op := backend.OpAlloc
	if b.closed {
		return nil, backend.Wrap(Name, op, errClosed)
	}
	if n < 0 {
		return nil, backend.ShapeError(Name, op, "negative size %d", n)
	}
	if int64(n) > maxElems || (b.dev.MemoryBytes > 0 && int64(n)*4 > b.dev.MemoryBytes) {
		return nil, backend.ShapeError(Name, op, "%d elements (%d bytes) exceed the device limit (memory %d bytes, kernels index at most %d elements)",
			n, int64(n)*4, b.dev.MemoryBytes, maxElems)
	}
	size := bucketBytes(int64(n) * 4)
	if b.exact {
		size = int64(n) * 4
	}
	b.mu.Lock()
	var ptr bind.DevicePtr
	if free := b.pool[size]; len(free) > 0 {
		ptr = free[len(free)-1]
		b.pool[size] = free[:len(free)-1]
	}
	b.mu.Unlock()
	if ptr == 0 {
		var err error
		ptr, err = b.ctx.Alloc(size)
		if err != nil {
			b.trim()
			if ptr, err = b.ctx.Alloc(size); err != nil {
				return nil, backend.Wrap(Name, op, err)
			}
		}
	}
	if err := b.ctx.Memset32(ptr, 0, int64(n)); err != nil {
		// The block is no buffer's: release it rather than leak it.
		return nil, backend.Wrap(Name, op, errors.Join(err, b.ctx.Free(ptr)))
	}
	b.live.Add(1)
	b.liveElems.Add(int64(n))
	b.allocs.Add(1)
	return &Buffer{ptr: ptr, n: n, bucket: size, owner: b}, nil
}

// trim frees every pooled block.
func (b *Backend) trim() {
	b.mu.Lock()
	pool := b.pool
	b.pool = map[int64][]bind.DevicePtr{}
	b.mu.Unlock()
	for _, ps := range pool {
		for _, p := range ps {
			_ = b.ctx.Free(p) // best effort: we are already short of memory
		}
	}
}

// check validates the buffers an op uses (see backend.Need).
func (b *Backend) check(op string, reqs ...backend.Req) error {
	if b.closed {
		return backend.Wrap(Name, op, errClosed)
	}
	for i := range reqs {
		r := &reqs[i]
		if r.Buf == nil {
			continue
		}
		cb, ok := r.Buf.(*Buffer)
		switch {
		case !ok:
			return backend.ShapeError(Name, op, "%s: buffer of type %T does not belong to the cuda backend", r.Name, r.Buf)
		case cb == nil:
			r.Buf = nil
		case cb.owner != b:
			return backend.ShapeError(Name, op, "%s: buffer belongs to another cuda backend", r.Name)
		case cb.freed.Load():
			return backend.ShapeError(Name, op, "%s: buffer was freed", r.Name)
		}
		if r.N > maxElems {
			return backend.ShapeError(Name, op, "%s: %d elements exceed the kernel limit of %d", r.Name, r.N, maxElems)
		}
	}
	return backend.Need(Name, op, reqs...)
}

func ptr(buf backend.Buffer) bind.DevicePtr { return buf.(*Buffer).ptr }
