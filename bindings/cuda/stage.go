package cuda

// The host staging buffer behind Context's copies, with no build tag and no
// driver calls, so that its tests run on hosts without a GPU.

// stageElems bounds the staging buffer (4 MiB); larger copies go in
// pieces.
const stageElems = 1 << 20

// stager is the pointer-free host buffer Context copies go through. cgo's
// check of a pointer handed to C covers the whole Go allocation it points
// into when the pointer reaches C as a plain unsafe.Pointer (as
// gorgonia.org/cu's copy functions pass it): a slice that is an array
// field of a struct holding Go pointers (the engine's loss and
// correct-count, say) made the driver copy panic with "Go pointer to
// unpinned Go pointer". The buffer is a make'd []float32 of its own, so
// nothing else is in its allocation. Used only on the owner goroutine.
type stager struct {
	buf []float32
}

// each calls copy for consecutive pieces [lo, hi) of n elements, at most
// stageElems each, with the staging buffer's first hi−lo elements, and
// stops at the first error.
func (s *stager) each(n int, copy func(lo, hi int, stage []float32) error) error {
	for lo := 0; lo < n; lo += stageElems {
		hi := min(n, lo+stageElems)
		if len(s.buf) < hi-lo {
			s.buf = make([]float32, max(hi-lo, min(2*len(s.buf), stageElems)))
		}
		if err := copy(lo, hi, s.buf[:hi-lo]); err != nil {
			return err
		}
	}
	return nil
}
