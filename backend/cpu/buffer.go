package cpu

import (
	"sync/atomic"

	"github.com/kiln-ml/kiln/backend"
)

// Buffer is a CPU buffer: a Go slice owned by one Backend.
type Buffer struct {
	data  []float32
	owner *Backend
	freed atomic.Bool
	// gen identifies the buffer's values for the kernels' caches (see
	// Backend.touch): a new value from the backend's counter each time an
	// op may have written it, 0 for ever once Data has handed out the
	// slice.
	gen     uint64
	exposed bool
}

// Len is the capacity of the buffer in float32 elements; 0 once freed.
func (b *Buffer) Len() int {
	if b == nil || b.freed.Load() {
		return 0
	}
	return len(b.data)
}

// Free returns the buffer to its backend. Freeing twice is a no-op.
func (b *Buffer) Free() {
	if b == nil || !b.freed.CompareAndSwap(false, true) {
		return
	}
	if b.owner != nil {
		b.owner.live.Add(-1)
		b.owner.liveElems.Add(-int64(len(b.data)))
	}
	b.data = nil
}

// Data returns the buffer's backing slice for zero-copy use on the CPU
// (nil once freed), after running any op its backend has queued. The slice
// is only valid until Free.
func (b *Buffer) Data() []float32 {
	if b == nil || b.freed.Load() {
		return nil
	}
	if b.owner != nil {
		b.owner.flush()
	}
	b.exposed, b.gen = true, 0 // the caller may write it behind the backend's back
	return b.data
}

// Compile-time check.
var _ backend.Buffer = (*Buffer)(nil)
