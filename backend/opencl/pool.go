//go:build opencl

package opencl

import (
	"errors"
	"math/bits"

	clb "github.com/kiln-ml/kiln/bindings/opencl"
)

// minBucket is the smallest device allocation in bytes.
const minBucket = 256

// maxPooled bounds the bytes the free list keeps; beyond it freed buffers
// go straight back to the device.
const maxPooled = 1 << 30

// bucketBytes returns the allocation size for n float32 elements: powers of
// two up to 4 KiB, then steps of a quarter of the enclosing power of two,
// so a reused buffer wastes at most 25%. A size that rounding would take
// past maxAlloc, the device's largest allocation (0: unknown), is not
// rounded: the caller has checked that n elements fit.
func bucketBytes(n int, maxAlloc int64) int64 {
	size := max(int64(n)*4, minBucket)
	var rounded int64
	if size <= 4096 {
		rounded = int64(1) << bits.Len64(uint64(size-1))
	} else {
		step := int64(1) << (bits.Len64(uint64(size-1)) - 3) // a quarter of the lower power of two
		rounded = (size + step - 1) / step * step
	}
	if maxAlloc > 0 && rounded > maxAlloc {
		return size
	}
	return rounded
}

// pool is a size-bucketed free list of device buffers. The Backend's mutex
// guards it.
type pool struct {
	free  map[int64][]*clb.Buffer
	bytes int64
}

// get returns a free buffer of exactly size bytes, or nil.
func (p *pool) get(size int64) *clb.Buffer {
	list := p.free[size]
	if len(list) == 0 {
		return nil
	}
	m := list[len(list)-1]
	p.free[size] = list[:len(list)-1]
	p.bytes -= size
	return m
}

// put keeps m for reuse, or releases it when the pool is full.
func (p *pool) put(m *clb.Buffer) {
	if m == nil {
		return
	}
	if p.bytes+m.Size() > maxPooled {
		m.Release()
		return
	}
	if p.free == nil {
		p.free = map[int64][]*clb.Buffer{}
	}
	p.free[m.Size()] = append(p.free[m.Size()], m)
	p.bytes += m.Size()
}

// drain releases every pooled buffer.
func (p *pool) drain() error {
	var errs []error
	for size, list := range p.free {
		for _, m := range list {
			errs = append(errs, m.Release())
		}
		delete(p.free, size)
	}
	p.bytes = 0
	return errors.Join(errs...)
}
