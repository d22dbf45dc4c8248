package cpu_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
)

// TestDiscard checks the inference sequence of a convolution layer and its
// pooling with the convolution's output and the argmax discarded: the
// pooled values are the bits of the same calls without Discard, and the
// discarded buffers stay usable.
func TestDiscard(t *testing.T) {
	for _, p := range []backend.ConvParams{
		{N: 3, H: 28, W: 28, C: 1, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 26, OutW: 26},  // direct path
		{N: 3, H: 13, W: 13, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 11, OutW: 11}, // Winograd
		{N: 2, H: 7, W: 6, C: 5, KH: 3, KW: 2, F: 7, StrideH: 1, StrideW: 1, OutH: 5, OutW: 5},       // GEMM path: a hint ignored
	} {
		pp := backend.PoolParams{N: p.N, H: p.OutH, W: p.OutW, C: p.F, KH: 2, KW: 2, StrideH: 2, StrideW: 2, OutH: p.OutH / 2, OutW: p.OutW / 2}
		ny, np := p.N*p.OutH*p.OutW*p.F, pp.N*pp.OutH*pp.OutW*pp.C
		r := rand.New(rand.NewPCG(uint64(p.C), 8))
		vals := func(n int) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = r.Float32()*2 - 1
			}
			return v
		}
		x, w, bias := vals(p.InLen()), vals(p.FilterLen()), vals(p.F)
		run := func(discard bool) []float32 {
			b := open(t)
			bx, bw, bb := alloc(t, b, x...), alloc(t, b, w...), alloc(t, b, bias...)
			by, bp, ba := alloc(t, b, make([]float32, ny)...), alloc(t, b, make([]float32, np)...), alloc(t, b, make([]float32, np)...)
			defer func() {
				for _, buf := range []backend.Buffer{bx, bw, bb, by, bp, ba} {
					buf.Free()
				}
			}()
			require.NoError(t, b.Conv2D(p, bx, bw, by))
			require.NoError(t, b.BiasAdd(by, bb, ny/p.F, p.F))
			require.NoError(t, b.ReLU(by, by, ny))
			require.NoError(t, b.MaxPool2D(pp, by, bp, ba))
			if discard {
				b.Discard(by)
				b.Discard(ba)
				b.Discard(bx) // not written by the queued op: keeps its values
			}
			out := download(t, b, bp, np)
			require.Equal(t, x, download(t, b, bx, len(x)))
			// the discarded buffers are still there to be written and read
			fresh := vals(ny)
			require.NoError(t, b.Upload(by, fresh))
			require.Equal(t, fresh, download(t, b, by, ny))
			return out
		}
		requireBits(t, run(false), run(true), "pooled output with y and argmax discarded")
	}
}
