//go:build !cuda

package cuda

import (
	"errors"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// TestStagerPieces checks that each covers n elements in order, in pieces
// of at most stageElems, always through the stager's own buffer (never
// the caller's memory), and stops at the first error.
func TestStagerPieces(t *testing.T) {
	for _, n := range []int{0, 1, 2, stageElems - 1, stageElems, stageElems + 1, 2*stageElems + 3} {
		var s stager
		next := 0
		err := s.each(n, func(lo, hi int, stage []float32) error {
			require.Equal(t, next, lo, "n=%d: pieces in order", n)
			require.Greater(t, hi, lo)
			require.LessOrEqual(t, hi-lo, stageElems)
			require.Len(t, stage, hi-lo)
			require.Equal(t, unsafe.Pointer(&s.buf[0]), unsafe.Pointer(&stage[0]), "the stager's buffer")
			next = hi
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, n, next, "n=%d: every element", n)
		require.LessOrEqual(t, len(s.buf), stageElems)
	}
	var s stager
	boom, calls := errors.New("boom"), 0
	err := s.each(3*stageElems, func(lo, hi int, _ []float32) error {
		calls++
		if lo > 0 {
			return boom
		}
		return nil
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, 2, calls, "stops at the first error")
}
