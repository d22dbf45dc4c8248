package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// refConvBackward returns dx and dw of y = conv(x, w) for the output
// gradient dy, in float64, by direct summation.
func refConvBackward(s ConvShape, x, w, dy []float32) (dx, dw []float64) {
	dx = make([]float64, len(x))
	dw = make([]float64, len(w))
	convTaps(s, func(yo, xi, wo int) {
		for f := 0; f < s.F; f++ {
			g := float64(dy[yo+f])
			dx[xi] += g * float64(w[wo+f])
			dw[wo+f] += g * float64(x[xi])
		}
	})
	return dx, dw
}

// TestConvPaths checks the chunked forward pass, backward-data as a
// transposed forward convolution (and its col2im fallback) and the
// chunked backward-filter against float64 references, for every
// micro-kernel, serial and parallel, on shapes with several chunks, odd
// sizes and asymmetric padding; and that backward-filter gives the same
// bits for any number of workers; and that the forward pass with a fused
// bias and ReLU gives the bits of the separate calls, and a fused max
// pooling those of MaxPool2DForward, also when y and the argmax need not be
// stored.
func TestConvPaths(t *testing.T) {
	shapes := []ConvShape{
		{N: 2, H: 7, W: 6, C: 8, KH: 3, KW: 3, F: 5, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 7, OutW: 6},
		{N: 3, H: 6, W: 7, C: 9, KH: 2, KW: 3, F: 12, StrideH: 1, StrideW: 1, OutH: 5, OutW: 5},
		{N: 2, H: 5, W: 6, C: 8, KH: 3, KW: 2, F: 7, StrideH: 1, StrideW: 1, PadTop: 2, PadLeft: 1, OutH: 6, OutW: 7},
		{N: 5, H: 13, W: 13, C: 16, KH: 3, KW: 3, F: 33, StrideH: 1, StrideW: 1, OutH: 11, OutW: 11}, // several chunks
		{N: 9, H: 28, W: 28, C: 1, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 26, OutW: 26},  // conv1, col2im fallback
		{N: 1, H: 13, W: 13, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 11, OutW: 11}, // conv2 batch 1
		{N: 3, H: 9, W: 8, C: 12, KH: 3, KW: 3, F: 10, StrideH: 2, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 5, OutW: 8},
		// direct forward: padding on every side, strides, two 64-filter blocks
		{N: 2, H: 7, W: 6, C: 3, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 7, OutW: 6},
		{N: 3, H: 9, W: 8, C: 2, KH: 3, KW: 2, F: 128, StrideH: 2, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 5, OutW: 8},
		{N: 2, H: 10, W: 11, C: 1, KH: 5, KW: 5, F: 64, StrideH: 2, StrideW: 3, PadTop: 2, PadLeft: 2, OutH: 5, OutW: 4},
		{N: 1, H: 3, W: 3, C: 1, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 3, OutW: 3},
		// direct backward-filter: one chunk, several, vertical stride
		{N: 1, H: 5, W: 5, C: 1, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 3, OutW: 3},
		{N: 3, H: 9, W: 10, C: 1, KH: 3, KW: 2, F: 128, StrideH: 2, StrideW: 1, OutH: 4, OutW: 9},
		// implicit kernels (avx512, avx2): padding, strides, channel blocks and
		// remainders, several filter and channel slices of 64
		{N: 3, H: 7, W: 6, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 7, OutW: 6},
		{N: 2, H: 9, W: 8, C: 80, KH: 3, KW: 2, F: 128, StrideH: 2, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 5, OutW: 8},
		{N: 2, H: 6, W: 6, C: 128, KH: 2, KW: 2, F: 64, StrideH: 2, StrideW: 2, OutH: 3, OutW: 3},
		{N: 2, H: 5, W: 7, C: 64, KH: 3, KW: 3, F: 128, StrideH: 1, StrideW: 1, PadTop: 2, PadLeft: 2, OutH: 7, OutW: 9},
		{N: 3, H: 9, W: 10, C: 3, KH: 3, KW: 3, F: 128, StrideH: 2, StrideW: 1, OutH: 4, OutW: 8},
		{N: 1, H: 16, W: 16, C: 16, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 16, OutW: 16}, // panels inside and across the border
		{N: 3, H: 6, W: 6, C: 16, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 6, OutW: 6},     // pooling fused into Winograd F(2×2, 3×3)
		{N: 3, H: 6, W: 6, C: 24, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 6, OutW: 6},     // pooling fused into the implicit pass
		{N: 2, H: 5, W: 5, C: 17, KH: 2, KW: 2, F: 64, StrideH: 1, StrideW: 1, OutH: 4, OutW: 4},                            // channel remainders 5, 3, 1
		{N: 2, H: 5, W: 5, C: 21, KH: 2, KW: 2, F: 64, StrideH: 1, StrideW: 1, OutH: 4, OutW: 4},
		{N: 2, H: 5, W: 5, C: 19, KH: 2, KW: 2, F: 64, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 5, OutW: 5},
		{N: 12, H: 13, W: 13, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 11, OutW: 11}, // conv2, many chunks
		// inference (Winograd F(4×4, 3×3) where it costs less)
		{N: 1, H: 13, W: 13, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 11, OutW: 11, Inference: true},
		{N: 12, H: 13, W: 13, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 11, OutW: 11, Inference: true},
		{N: 3, H: 6, W: 6, C: 16, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 6, OutW: 6, Inference: true},
	}
	for i, s := range shapes {
		r := rand.New(rand.NewPCG(uint64(i), 77))
		x := randSlice(r, s.N*s.H*s.W*s.C)
		w := randSlice(r, s.KH*s.KW*s.C*s.F)
		dy := randSlice(r, s.N*s.OutH*s.OutW*s.F)
		bias := randSlice(r, s.F)
		wantY := naiveConv(s, x, w)
		wantDX, wantDW := refConvBackward(s, x, w, dy)
		var ref []float32 // backward-filter of the first run
		for _, kern := range KernelNames() {
			for _, workers := range []int{1, 2, 3} {
				t.Run(fmt.Sprintf("%d/%s/w%d", i, kern, workers), func(t *testing.T) {
					var p *Pool
					if workers > 1 {
						p = NewPool(workers)
						defer p.Close()
					}
					var ws Workspace
					require.NoError(t, ws.Gemm.SetKernel(kern))
					y := make([]float32, len(dy))
					dx := make([]float32, len(x))
					dw := make([]float32, len(w))
					for _, b := range [][]float32{y, dx, dw} {
						for j := range b {
							b[j] = float32(math.NaN())
						}
					}
					Conv2DForward(p, &ws, s, x, w, y)
					// the fused bias and ReLU give the bits of the three calls
					fused := make([]float32, len(y))
					Conv2DForwardBiasReLU(p, &ws, s, x, w, bias, true, fused)
					want := append([]float32(nil), y...)
					BiasAdd(nil, want, bias, s.N*s.OutH*s.OutW, s.F)
					ReLU(nil, want, want)
					requireSameBits(t, want, fused, "fused y")
					Conv2DForwardBiasReLU(p, &ws, s, x, w, bias, false, fused)
					want = append(want[:0], y...)
					BiasAdd(nil, want, bias, s.N*s.OutH*s.OutW, s.F)
					requireSameBits(t, want, fused, "fused y (bias only)")
					// and a fused max pooling those of MaxPool2DForward
					for _, k := range []int{2, 3} {
						ps := PoolShape{N: s.N, H: s.OutH, W: s.OutW, C: s.F, KH: k, KW: k, StrideH: k, StrideW: k,
							OutH: s.OutH / k, OutW: s.OutW / k}
						if k == 3 { // windows overlapping horizontally, a gap between rows
							ps.KH, ps.StrideW, ps.OutW = 2, 1, s.OutW-2
						}
						if ps.OutH == 0 || ps.OutW <= 0 {
							continue
						}
						n := ps.N * ps.OutH * ps.OutW * ps.C
						py, parg := make([]float32, n), make([]float32, n)
						Conv2DForwardEpilogue(p, &ws, s, x, w, fused, ConvEpilogue{Bias: bias, ReLU: true, Pool: ps, PoolY: py, PoolArg: parg})
						want = append(want[:0], y...)
						BiasAdd(nil, want, bias, s.N*s.OutH*s.OutW, s.F)
						ReLU(nil, want, want)
						requireSameBits(t, want, fused, "fused y (pooled)")
						wantY, wantArg := make([]float32, n), make([]float32, n)
						MaxPool2DForward(nil, ps, want, wantY, wantArg)
						requireSameBits(t, wantY, py, fmt.Sprintf("fused pool %d y", k))
						requireSameBits(t, wantArg, parg, fmt.Sprintf("fused pool %d argmax", k))
						// inference: y and the argmax need not be stored
						clear(py)
						scratch := append([]float32(nil), y...)
						Conv2DForwardEpilogue(p, &ws, s, x, w, scratch, ConvEpilogue{Bias: bias, ReLU: true, Pool: ps, PoolY: py, PoolArg: parg,
							ScratchY: true, NoArg: true})
						requireSameBits(t, wantY, py, fmt.Sprintf("fused pool %d y, y and argmax not stored", k))
					}
					Conv2DBackwardData(p, &ws, s, dy, w, dx)
					Conv2DBackwardFilter(p, &ws, s, x, dy, dw)
					tol := 1e-4 * float64(s.KH*s.KW*s.C)
					for j := range wantY {
						require.InDelta(t, wantY[j], y[j], tol, "y[%d]", j)
					}
					for j := range wantDX {
						require.InDelta(t, wantDX[j], dx[j], tol, "dx[%d]", j)
					}
					ftol := 1e-4 * float64(s.N*s.OutH*s.OutW)
					for j := range wantDW {
						require.InDelta(t, wantDW[j], dw[j], ftol, "dw[%d]", j)
					}
					if kern != KernelNames()[0] {
						return
					}
					if ref == nil {
						ref = dw
						return
					}
					for j := range dw {
						require.Equal(t, math.Float32bits(ref[j]), math.Float32bits(dw[j]), "dw[%d] differs between worker counts", j)
					}
				})
			}
		}
	}
}

// requireSameBits fails at the first element where got differs in bits
// from want.
func requireSameBits(t *testing.T, want, got []float32, what string) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i := range want {
		if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
			require.Failf(t, what+" differs", "element %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func TestConvChunkRows(t *testing.T) {
	for _, tc := range []struct{ rows, k, mr int }{
		{121, 576, 12}, {3872, 576, 12}, {21632, 9, 12}, {1, 9, 12}, {13, 576, 12}, {24, 1 << 20, 12}, {5, 3, 1},
	} {
		c := convChunkRows(tc.rows, tc.k, tc.mr)
		require.Positive(t, c)
		require.Zero(t, c%tc.mr, "%+v: chunk %d", tc, c)
		if tc.rows > tc.mr {
			require.Less(t, c, tc.rows, "%+v: at least two chunks", tc)
		}
		if c > tc.mr {
			require.LessOrEqual(t, c*tc.k, convMaxColElems, "%+v: chunk %d too big", tc, c)
		}
	}
}
