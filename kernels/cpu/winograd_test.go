package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// winoKernel is a micro-kernel with Winograd kernels and the tile sizes
// (F(m×m, 3×3)) it has them for.
type winoKernel struct {
	name  string
	tiles []int
}

// winoKernelList lists this CPU's micro-kernels that have Winograd
// kernels (F(2×2, 3×3) and F(4×4, 3×3), on AVX-512 and AVX2), skipping the
// test when there are none.
func winoKernelList(t *testing.T) []winoKernel {
	var ks []winoKernel
	for _, name := range KernelNames() {
		var ws GemmWorkspace
		require.NoError(t, ws.SetKernel(name))
		f2, f4, _ := winoKernels(ws.kernel())
		switch {
		case f2 && f4:
			ks = append(ks, winoKernel{name, []int{2, 4}})
		case f4:
			ks = append(ks, winoKernel{name, []int{4}})
		}
	}
	if len(ks) == 0 {
		t.Skipf("no micro-kernel of this CPU has Winograd kernels (they need AVX2+FMA or AVX-512); it has %v", KernelNames())
	}
	return ks
}

// TestWinograd checks the Winograd F(2×2, 3×3) and F(4×4, 3×3) forward
// passes and the F(3×3, 2×2) filter gradient against float64 references
// with the conformance suite's tolerances (1e-5·√(KH·KW·C)·S and
// 1e-5·√(N·OutH·OutW)·S, S the sum of the terms' absolute values), and
// against the paths they replace, on shapes with odd and even outputs
// (tiles past the edge), every padding a 3×3 filter can have, several
// chunks and workers, and channel and filter blocks; and that it gives
// the same bits for any number of workers.
func TestWinograd(t *testing.T) {
	kerns := winoKernelList(t)
	shapes := []ConvShape{
		{N: 1, H: 13, W: 13, C: 64, F: 64, OutH: 11, OutW: 11},                         // conv2 of the reference CNN, batch 1
		{N: 5, H: 13, W: 13, C: 64, F: 64, OutH: 11, OutW: 11},                         // several chunks
		{N: 2, H: 6, W: 7, C: 16, F: 64, PadTop: 1, PadLeft: 1, OutH: 6, OutW: 7},      // "same", odd width
		{N: 3, H: 5, W: 4, C: 32, F: 128, PadTop: 2, PadLeft: 2, OutH: 7, OutW: 6},     // full padding, two filter blocks
		{N: 1, H: 3, W: 3, C: 80, F: 64, OutH: 1, OutW: 1},                             // one output pixel
		{N: 2, H: 16, W: 16, C: 16, F: 64, PadTop: 1, PadLeft: 0, OutH: 15, OutW: 14},  // asymmetric padding
		{N: 40, H: 10, W: 10, C: 32, F: 64, PadTop: 1, PadLeft: 1, OutH: 10, OutW: 10}, // many chunks
	}
	for i, s := range shapes {
		s.KH, s.KW, s.StrideH, s.StrideW = 3, 3, 1, 1
		r := rand.New(rand.NewPCG(uint64(i), 99))
		x := randSlice(r, s.N*s.H*s.W*s.C)
		w := randSlice(r, 9*s.C*s.F)
		want := naiveConv(s, x, w)
		scale := make([]float64, len(want))
		convTaps(s, func(yo, xo, wo int) {
			for f := 0; f < s.F; f++ {
				scale[yo+f] += math.Abs(float64(x[xo]) * float64(w[wo+f]))
			}
		})
		tol := 1e-5 * math.Sqrt(float64(9*s.C))
		for _, kt := range kerns {
			for _, tile := range kt.tiles {
				var first []float32
				for _, workers := range []int{1, 2, 3} {
					t.Run(fmt.Sprintf("%d/%s/F%d/w%d", i, kt.name, tile, workers), func(t *testing.T) {
						var p *Pool
						if workers > 1 {
							p = NewPool(workers)
							defer p.Close()
						}
						var ws Workspace
						require.NoError(t, ws.Gemm.SetKernel(kt.name))
						ws.conv.winoM = tile
						y := make([]float32, len(want))
						for j := range y {
							y[j] = float32(math.NaN())
						}
						Conv2DForward(p, &ws, s, x, w, y)
						for j := range want {
							if d := math.Abs(float64(y[j]) - want[j]); !(d <= tol*scale[j]) {
								require.Failf(t, "y differs from the float64 reference", "y[%d] = %v, want %v (|diff| %.3g > %.3g)", j, y[j], want[j], d, tol*scale[j])
							}
						}
						ws.conv.noWinograd = true
						other := make([]float32, len(want))
						Conv2DForward(p, &ws, s, x, w, other)
						for j := range other {
							require.InDelta(t, other[j], y[j], 2*tol*scale[j], "y[%d] against the implicit path", j)
						}
						// the filter gradient, against float64 and the gather path
						dy := randSlice(rand.New(rand.NewPCG(uint64(i), 5)), len(want))
						_, wantDW := refConvBackward(s, x, w, dy)
						dwScale := make([]float64, len(w))
						convTaps(s, func(yo, xo, wo int) {
							for f := 0; f < s.F; f++ {
								dwScale[wo+f] += math.Abs(float64(x[xo]) * float64(dy[yo+f]))
							}
						})
						dwTol := 1e-5 * math.Sqrt(float64(s.N*s.OutH*s.OutW))
						dw, dwOther := make([]float32, len(w)), make([]float32, len(w))
						ws.conv.noWinograd = false
						Conv2DBackwardFilter(p, &ws, s, x, dy, dw)
						for j := range wantDW {
							if d := math.Abs(float64(dw[j]) - wantDW[j]); !(d <= dwTol*dwScale[j]) {
								require.Failf(t, "dw differs from the float64 reference", "dw[%d] = %v, want %v (|diff| %.3g > %.3g)", j, dw[j], wantDW[j], d, dwTol*dwScale[j])
							}
						}
						ws.conv.noWinograd = true
						Conv2DBackwardFilter(p, &ws, s, x, dy, dwOther)
						for j := range dw {
							require.InDelta(t, dwOther[j], dw[j], 2*dwTol*dwScale[j], "dw[%d] against the gather path", j)
						}
						y = append(y, dw...)
						if first == nil {
							first = y
							return
						}
						requireSameBits(t, first, y, "y and dw for another number of workers")
					})
				}
			}
		}
	}
}

// TestWinoTile checks the choice of the forward pass's tile with the
// AVX-512 and the AVX2 costs (winoCostsFor): F(4×4, 3×3) where it costs
// less (the reference CNN's 11×11 output: 9 tiles of 36 points against 36
// of 16), F(2×2, 3×3) for tiny outputs and where F(4×4, 3×3)'s tiles
// waste too much (5×5), at batch 32, and at batch 1, where the tiles in
// whole 6-tile panels count (a 9×9 output: 12 of 36 points against 30 of
// 16); and F(2×2, 3×3) whatever the costs in training.
func TestWinoTile(t *testing.T) {
	// the two weigh the tiles alike; they differ in the direct cost
	avx512, avx2 := winoCosts{p2: 10, p4: 12, direct: 9}, winoCosts{p2: 10, p4: 12, direct: 7}
	for _, c := range []struct{ oh, ow, want int }{
		{11, 11, 4}, {13, 13, 4}, {15, 15, 4}, {1, 1, 2}, {2, 2, 2}, {3, 3, 4},
		{5, 5, 2}, {6, 7, 4}, {8, 8, 4}, {9, 9, 4}, {2, 9, 2},
	} {
		s := ConvShape{N: 32, OutH: c.oh, OutW: c.ow, Inference: true}
		require.Equal(t, c.want, s.winoTile(avx512, 0), "%d×%d output, AVX-512 costs", c.oh, c.ow)
		require.Equal(t, c.want, s.winoTile(avx2, 0), "%d×%d output, AVX2 costs", c.oh, c.ow)
		require.Equal(t, 2, s.winoTile(avx2, 2), "forced")
		s.Inference = false
		require.Equal(t, 2, s.winoTile(avx512, 0), "%d×%d output, training, AVX-512 costs", c.oh, c.ow)
		require.Equal(t, 2, s.winoTile(avx2, 0), "%d×%d output, training, AVX2 costs", c.oh, c.ow)
		require.Equal(t, 4, s.winoTile(avx2, 4), "forced, training")
	}
	for _, c := range []struct{ hw, want int }{{9, 2}, {11, 4}, {15, 4}} {
		s := ConvShape{N: 1, OutH: c.hw, OutW: c.hw, Inference: true}
		require.Equal(t, c.want, s.winoTile(avx2, 0), "%d×%d output, batch 1, AVX2 costs", c.hw, c.hw)
	}
}

// BenchmarkWinograd compares the Winograd forward pass of the reference
// CNN's second convolution at inference with the implicit-GEMM one it
// replaces; "kept" reuses the transformed filter between calls, as
// inference does.
func BenchmarkWinograd(b *testing.B) {
	for _, batch := range []int{1, 64} {
		s := ConvShape{N: batch, H: 13, W: 13, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 11, OutW: 11, Inference: true}
		r := rand.New(rand.NewPCG(1, 1))
		x := randSlice(r, s.N*s.H*s.W*s.C)
		w := randSlice(r, 9*s.C*s.F)
		y := make([]float32, s.N*s.OutH*s.OutW*s.F)
		flops := 2 * float64(s.N*s.OutH*s.OutW*s.F*9*s.C)
		for _, path := range []string{"winograd", "winograd-kept", "f2-kept", "implicit"} {
			b.Run(fmt.Sprintf("batch%d/%s", batch, path), func(b *testing.B) {
				p := NewPool(0)
				defer p.Close()
				var ws Workspace
				ws.conv.noWinograd = path == "implicit"
				if path == "f2-kept" {
					ws.conv.winoM = 2
				}
				var e ConvEpilogue
				if strings.HasSuffix(path, "-kept") {
					e.FilterID = 1
				}
				Conv2DForwardEpilogue(p, &ws, s, x, w, y, e)
				b.ResetTimer()
				cpu0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					Conv2DForwardEpilogue(p, &ws, s, x, w, y, e)
				}
				reportRates(b, flops*float64(b.N), cpu0)
			})
		}
	}
}

// TestScratchEpilogue checks that with ConvEpilogue.ScratchY and NoArg the
// reference CNN's two convolutions (the direct path, which then pools in
// registers, and the Winograd path) and a few more direct shapes (odd
// outputs whose last row and column no window reads, three channels, a
// stride, two filter blocks, padding, which the in-register pooling does
// not take) leave y and the argmax untouched and pool the same bits, with
// a bias and without (then with NaN, infinities and −0 in x and w).
func TestScratchEpilogue(t *testing.T) {
	for i, s := range []ConvShape{
		{N: 3, H: 28, W: 28, C: 1, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 26, OutW: 26},
		{N: 3, H: 13, W: 13, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 11, OutW: 11},
		{N: 2, H: 29, W: 31, C: 1, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 27, OutW: 29},
		{N: 2, H: 32, W: 32, C: 3, KH: 3, KW: 3, F: 128, StrideH: 1, StrideW: 1, OutH: 30, OutW: 30},
		{N: 2, H: 17, W: 19, C: 2, KH: 3, KW: 3, F: 64, StrideH: 2, StrideW: 2, OutH: 8, OutW: 9},
		{N: 2, H: 12, W: 12, C: 1, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 12, OutW: 12},
	} {
		s.Inference = true // as with ScratchY in the engine
		if !s.direct() && !s.winograd(defaultKernel) {
			t.Logf("shape %d: neither the direct nor the Winograd path runs on this CPU (%s)", i, DefaultKernel())
			continue
		}
		for _, withBias := range []bool{true, false} {
			r := rand.New(rand.NewPCG(uint64(i), 3))
			x, w, bias := randSlice(r, s.N*s.H*s.W*s.C), randSlice(r, 9*s.C*s.F), randSlice(r, s.F)
			if !withBias {
				bias = nil
				// and special values: NaN, ±Inf and −0 in the input and
				// the filter, so that some pixels are NaN, infinite or
				// a signed zero (the ReLU maps them the same way fused)
				x[0], x[7], x[len(x)/2], x[len(x)-1] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1))
				w[3], w[len(w)-1] = float32(math.Copysign(0, -1)), float32(math.Inf(1))
			}
			ps := PoolShape{N: s.N, H: s.OutH, W: s.OutW, C: s.F, KH: 2, KW: 2, StrideH: 2, StrideW: 2, OutH: s.OutH / 2, OutW: s.OutW / 2}
			n := ps.N * ps.OutH * ps.OutW * ps.C
			p := NewPool(2)
			var ws Workspace
			y, wantY, wantArg := make([]float32, s.N*s.OutH*s.OutW*s.F), make([]float32, n), make([]float32, n)
			Conv2DForwardEpilogue(p, &ws, s, x, w, y, ConvEpilogue{Bias: bias, ReLU: true, Pool: ps, PoolY: wantY, PoolArg: wantArg})
			for j := range y {
				y[j] = float32(math.NaN())
			}
			py, parg := make([]float32, n), make([]float32, n)
			for j := range parg {
				parg[j] = float32(math.NaN())
			}
			Conv2DForwardEpilogue(p, &ws, s, x, w, y, ConvEpilogue{Bias: bias, ReLU: true, Pool: ps, PoolY: py, PoolArg: parg, ScratchY: true, NoArg: true})
			p.Close()
			requireSameBits(t, wantY, py, "pooled y")
			for j := range y {
				require.True(t, math.IsNaN(float64(y[j])), "shape %d: y[%d] was written", i, j)
			}
			for j := range parg {
				require.True(t, math.IsNaN(float64(parg[j])), "shape %d: argmax[%d] was written", i, j)
			}
		}
	}
}

// TestWinoPooled checks the F(4×4, 3×3) forward pass with a fused 2×2
// pooling against the same pass with y and the argmax stored, bit for bit:
// output sizes whose rows and columns are 0, 1, 2 and 3 past a multiple
// of 4, with padding, for each way of discarding y and the argmax (both:
// pooling in registers; y only: pooling from per-worker scratch rows,
// two pooling rows a tile row, chunks across images), with a bias that
// holds NaN, ±Inf and −0 and inputs that do too, on 1, 2 and 5 workers.
func TestWinoPooled(t *testing.T) {
	for _, kt := range winoKernelList(t) {
		t.Run(kt.name, func(t *testing.T) { testWinoPooled(t, kt.name) })
	}
}

func testWinoPooled(t *testing.T, kern string) {
	nan, inf, negz := float32(math.NaN()), float32(math.Inf(1)), float32(math.Copysign(0, -1))
	for i, s := range []ConvShape{
		{N: 3, H: 10, W: 10, C: 16, F: 64, OutH: 8, OutW: 8},
		{N: 2, H: 11, W: 12, C: 32, F: 64, OutH: 9, OutW: 10},
		{N: 4, H: 13, W: 15, C: 16, F: 128, OutH: 11, OutW: 13},
		{N: 5, H: 9, W: 7, C: 16, F: 64, PadTop: 1, PadLeft: 1, OutH: 9, OutW: 7},
	} {
		s.KH, s.KW, s.StrideH, s.StrideW = 3, 3, 1, 1
		r := rand.New(rand.NewPCG(uint64(i), 17))
		x, w, bias := randSlice(r, s.N*s.H*s.W*s.C), randSlice(r, 9*s.C*s.F), randSlice(r, s.F)
		x[1], x[len(x)/3], x[len(x)-2] = nan, inf, negz
		bias[0], bias[1], bias[2], bias[3] = nan, inf, -inf, negz
		ps := PoolShape{N: s.N, H: s.OutH, W: s.OutW, C: s.F, KH: 2, KW: 2, StrideH: 2, StrideW: 2, OutH: s.OutH / 2, OutW: s.OutW / 2}
		n := ps.N * ps.OutH * ps.OutW * ps.C
		for _, workers := range []int{1, 2, 5} {
			p := NewPool(workers)
			var ws Workspace
			require.NoError(t, ws.Gemm.SetKernel(kern))
			ws.conv.winoM = 4
			y, wantP, wantA := make([]float32, s.N*s.OutH*s.OutW*s.F), make([]float32, n), make([]float32, n)
			Conv2DForwardEpilogue(p, &ws, s, x, w, y, ConvEpilogue{Bias: bias, ReLU: true, Pool: ps, PoolY: wantP, PoolArg: wantA})
			for _, c := range []struct{ scratchY, noArg bool }{{true, true}, {true, false}, {false, true}} {
				name := fmt.Sprintf("shape %d, %d workers, ScratchY %v NoArg %v", i, workers, c.scratchY, c.noArg)
				py, pa, y2 := make([]float32, n), make([]float32, n), make([]float32, len(y))
				for j := range pa {
					pa[j] = nan
				}
				for j := range y2 {
					y2[j] = nan
				}
				Conv2DForwardEpilogue(p, &ws, s, x, w, y2, ConvEpilogue{Bias: bias, ReLU: true, Pool: ps, PoolY: py, PoolArg: pa, ScratchY: c.scratchY, NoArg: c.noArg})
				requireSameBits(t, wantP, py, name+": pooled y")
				if !c.noArg {
					requireSameBits(t, wantA, pa, name+": argmax")
				}
				if !c.scratchY {
					requireSameBits(t, y, y2, name+": y")
				}
			}
			p.Close()
		}
	}
}

// TestWinoFilterCacheTile checks that a transformed filter kept for one
// tile size is not used for the other: the same filter (same FilterID)
// on an 11×11 output (F(4×4, 3×3)) and a 5×5 one (F(2×2, 3×3)), in turn,
// gives the bits of the uncached passes.
func TestWinoFilterCacheTile(t *testing.T) {
	for _, kt := range winoKernelList(t) {
		t.Run(kt.name, func(t *testing.T) { testWinoFilterCacheTile(t, kt.name) })
	}
}

func testWinoFilterCacheTile(t *testing.T, kern string) {
	r := rand.New(rand.NewPCG(5, 5))
	w := randSlice(r, 9*32*64)
	var cached Workspace
	require.NoError(t, cached.Gemm.SetKernel(kern))
	for k, hw := range []int{13, 7, 13, 7} {
		s := ConvShape{N: 2, H: hw, W: hw, C: 32, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: hw - 2, OutW: hw - 2, Inference: true}
		x := randSlice(r, s.N*s.H*s.W*s.C)
		want, got := make([]float32, s.N*s.OutH*s.OutW*s.F), make([]float32, s.N*s.OutH*s.OutW*s.F)
		var fresh Workspace
		require.NoError(t, fresh.Gemm.SetKernel(kern))
		Conv2DForwardEpilogue(nil, &fresh, s, x, w, want, ConvEpilogue{})
		Conv2DForwardEpilogue(nil, &cached, s, x, w, got, ConvEpilogue{FilterID: 7})
		tile := s.winoTileFor(cached.Gemm.kernel(), 0)
		require.Equal(t, map[int]int{13: 4, 7: 2}[hw], tile, "%d×%d output", hw-2, hw-2)
		requireSameBits(t, want, got, fmt.Sprintf("call %d (%d×%d output, tile %d)", k, hw-2, hw-2, tile))
	}
}

// TestPooledShortOutput checks that a fused pooling whose output or
// argmax is one element too short panics (a bounds check) instead of
// being written past its length (the row kernels slice up to the
// capacity), on every kernel, for training's forward pass and
// inference's.
func TestPooledShortOutput(t *testing.T) {
	for _, k := range KernelNames() {
		t.Run(k, func(t *testing.T) { testPooledShortOutput(t, k) })
	}
}

func testPooledShortOutput(t *testing.T, kern string) {
	for _, inference := range []bool{false, true} {
		s := ConvShape{N: 1, H: 13, W: 13, C: 16, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 11, OutW: 11, Inference: inference}
		ps := PoolShape{N: 1, H: 11, W: 11, C: 64, KH: 2, KW: 2, StrideH: 2, StrideW: 2, OutH: 5, OutW: 5}
		r := rand.New(rand.NewPCG(6, 6))
		x, w := randSlice(r, 13*13*16), randSlice(r, 9*16*64)
		n := 25 * 64
		for _, short := range []string{"PoolY", "PoolArg"} {
			backing := make([]float32, n)
			backing[n-1] = 42
			e := ConvEpilogue{ReLU: true, Pool: ps, PoolY: backing[:n-1], PoolArg: make([]float32, n), ScratchY: inference, NoArg: inference}
			if short == "PoolArg" {
				e.PoolY, e.PoolArg = make([]float32, n), backing[:n-1]
			}
			var ws Workspace
			require.NoError(t, ws.Gemm.SetKernel(kern))
			require.Panics(t, func() { Conv2DForwardEpilogue(nil, &ws, s, x, w, make([]float32, 121*64), e) }, "%s one short, inference %v", short, inference)
			require.Equal(t, float32(42), backing[n-1], "the element past %s was written (inference %v)", short, inference)
		}
	}
}

// winoFilter43Ref is winoFilter43 in float64, the reference for
// TestWinoFilter43: U = G·g·Gᵀ of the 3×3 filters of columns [16·lo,
// 16·hi) of an HWIO filter's cf = C·F columns, g[ky][kx] at w[(3ky+kx)·cf
// + col], U[ξ] stored at u[ξ·ustride + col].
func winoFilter43Ref(w []float32, cf int, u []float64, ustride, lo, hi int) {
	// g1d returns G·(g0, g1, g2), G as in winoFilter43.
	g1d := func(g0, g1, g2 float64) (r [6]float64) {
		t := g0 + g2
		r[0] = g0 / 4
		r[1] = -(t + g1) / 6
		r[2] = -(t - g1) / 6
		a, b := g0/24+g2/6, g1/12
		r[3], r[4] = a+b, a-b
		r[5] = g2
		return r
	}
	for col := 16 * lo; col < 16*hi; col++ {
		var t [6][3]float64 // G·g
		for k := 0; k < 3; k++ {
			r := g1d(float64(w[k*cf+col]), float64(w[(3+k)*cf+col]), float64(w[(6+k)*cf+col]))
			for i := range r {
				t[i][k] = r[i]
			}
		}
		for i := 0; i < 6; i++ {
			r := g1d(t[i][0], t[i][1], t[i][2])
			for j, v := range r {
				u[(6*i+j)*ustride+col] = v
			}
		}
	}
}

// TestWinoFilter43 checks each kernel's F(4×4, 3×3) filter transform
// against a float64 one, on a block range that starts past 0 and on the
// planes' padding left untouched.
func TestWinoFilter43(t *testing.T) {
	for _, kt := range winoKernelList(t) {
		t.Run(kt.name, func(t *testing.T) {
			var ws GemmWorkspace
			require.NoError(t, ws.SetKernel(kt.name))
			const c, f = 32, 64
			cf, ust := c*f, c*f+16
			r := rand.New(rand.NewPCG(9, 9))
			w := randSlice(r, 9*cf)
			u := make([]float32, 36*ust)
			for i := range u {
				u[i] = 42
			}
			lo, hi := 3, cf/16
			winoFilter43(ws.kernel(), w, cf, u, ust, lo, hi)
			want := make([]float64, 36*ust)
			winoFilter43Ref(w, cf, want, ust, lo, hi)
			for xi := 0; xi < 36; xi++ {
				for col := 0; col < ust; col++ {
					got := u[xi*ust+col]
					if col < 16*lo || col >= 16*hi {
						require.Equal(t, float32(42), got, "plane %d column %d outside the range was written", xi, col)
						continue
					}
					require.InDelta(t, want[xi*ust+col], got, 1e-6, "plane %d column %d", xi, col)
				}
			}
		})
	}
}

// TestWinoEpilogueSpecial checks the Winograd output transforms' fused
// bias and ReLU against the separate ops, bit for bit, for every tile and
// micro-kernel: with NaN, ±Inf and −0 in the input, the filter and the
// bias, so that outputs are NaN, infinite and signed zeros.
func TestWinoEpilogueSpecial(t *testing.T) {
	s := ConvShape{N: 2, H: 6, W: 7, C: 16, KH: 3, KW: 3, F: 128, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 6, OutW: 7}
	r := rand.New(rand.NewPCG(8, 8))
	x, w, bias := randSlice(r, s.N*s.H*s.W*s.C), randSlice(r, 9*s.C*s.F), randSlice(r, s.F)
	negZero := float32(math.Copysign(0, -1))
	x[0], x[17], x[len(x)/2], x[len(x)-1] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), negZero
	w[5], w[len(w)-3] = negZero, float32(math.Inf(-1))
	bias[1], bias[2], bias[3], bias[70] = float32(math.NaN()), float32(math.Inf(1)), negZero, float32(math.Inf(-1))
	for _, kt := range winoKernelList(t) {
		for _, tile := range kt.tiles {
			for _, relu := range []bool{true, false} {
				var ws Workspace
				require.NoError(t, ws.Gemm.SetKernel(kt.name))
				ws.conv.winoM = tile
				require.True(t, s.winograd(ws.Gemm.kernel()), "the shape runs as Winograd")
				want := make([]float32, s.N*s.OutH*s.OutW*s.F)
				Conv2DForward(nil, &ws, s, x, w, want)
				BiasAdd(nil, want, bias, s.N*s.OutH*s.OutW, s.F)
				if relu {
					ReLU(nil, want, want)
				}
				got := make([]float32, len(want))
				Conv2DForwardBiasReLU(nil, &ws, s, x, w, bias, relu, got)
				requireSameBits(t, want, got, fmt.Sprintf("%s F(%d×%d, 3×3), relu %v", kt.name, tile, tile, relu))
			}
		}
	}
}

// BenchmarkWinogradTiles measures the forward pass of square outputs of 1
// to 15 pixels (C = F = 64, batches 1 and 32, the transformed filter kept)
// on one worker with each micro-kernel that has Winograd kernels: the
// implicit kernel, F(2×2, 3×3) and F(4×4, 3×3), each forced, as CPU time
// per call (cpu-µs/op, steadier than wall time on a shared host). These
// are the measurements behind winoCostsFor:
//
//	go test -run X -bench WinogradTiles -benchtime 100ms -count 5 ./kernels/cpu
func BenchmarkWinogradTiles(b *testing.B) {
	for _, kern := range KernelNames() {
		var probe GemmWorkspace
		if probe.SetKernel(kern) != nil {
			continue
		}
		if f2, f4, _ := winoKernels(probe.kernel()); !f2 || !f4 {
			continue
		}
		for _, batch := range []int{1, 32} {
			for _, out := range []int{1, 2, 3, 5, 7, 9, 11, 13, 15} {
				s := ConvShape{N: batch, H: out + 2, W: out + 2, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: out, OutW: out}
				r := rand.New(rand.NewPCG(1, 1))
				x, w := randSlice(r, s.N*s.H*s.W*s.C), randSlice(r, 9*s.C*s.F)
				y := make([]float32, s.N*s.OutH*s.OutW*s.F)
				for _, path := range []string{"implicit", "f2", "f4"} {
					b.Run(fmt.Sprintf("%s/batch%d/%dx%d/%s", kern, batch, out, out, path), func(b *testing.B) {
						p := NewPool(1)
						defer p.Close()
						var ws Workspace
						require.NoError(b, ws.Gemm.SetKernel(kern))
						ws.conv.noWinograd = path == "implicit"
						ws.conv.winoM = map[string]int{"f2": 2, "f4": 4}[path]
						e := ConvEpilogue{FilterID: 1}
						Conv2DForwardEpilogue(p, &ws, s, x, w, y, e)
						b.ResetTimer()
						cpu0 := cpuSeconds()
						for i := 0; i < b.N; i++ {
							Conv2DForwardEpilogue(p, &ws, s, x, w, y, e)
						}
						if cpu := cpuSeconds() - cpu0; cpu0 > 0 {
							b.ReportMetric(cpu/float64(b.N)*1e6, "cpu-µs/op")
						}
					})
				}
			}
		}
	}
}

// TestWinoAVX2MatchesAVX512 checks, where the CPU has AVX-512 (and so
// both sets of kernels), that the AVX2 Winograd forms give the bits of
// their AVX-512 twins, as gen_amd64.go builds them to: the forward pass
// with either tile forced, a fused bias, ReLU and pooling, at inference
// and in training, backward-data, and the filter gradient.
func TestWinoAVX2MatchesAVX512(t *testing.T) {
	var names []string
	for _, kt := range winoKernelList(t) {
		names = append(names, kt.name)
	}
	if len(names) < 2 {
		t.Skipf("this CPU has Winograd kernels for %v only; the comparison needs both avx512 and avx2", names)
	}
	shapes := []ConvShape{
		{N: 3, H: 13, W: 13, C: 64, F: 64, OutH: 11, OutW: 11},
		{N: 2, H: 6, W: 7, C: 16, F: 128, PadTop: 1, PadLeft: 1, OutH: 6, OutW: 7},
		{N: 1, H: 17, W: 15, C: 32, F: 64, OutH: 15, OutW: 13},
	}
	for i, s := range shapes {
		s.KH, s.KW, s.StrideH, s.StrideW = 3, 3, 1, 1
		r := rand.New(rand.NewPCG(uint64(i), 17))
		x, w := randSlice(r, s.N*s.H*s.W*s.C), randSlice(r, 9*s.C*s.F)
		bias, dy := randSlice(r, s.F), randSlice(r, s.N*s.OutH*s.OutW*s.F)
		ps := PoolShape{N: s.N, H: s.OutH, W: s.OutW, C: s.F, KH: 2, KW: 2, StrideH: 2, StrideW: 2, OutH: s.OutH / 2, OutW: s.OutW / 2}
		pn := ps.N * ps.OutH * ps.OutW * ps.C
		// tiles forced: the costs choose by instruction set (the 13×13
		// output of backward-data takes F(2×2, 3×3) on AVX-512,
		// F(4×4, 3×3) on AVX2)
		for _, m := range []int{2, 4} {
			for _, inference := range []bool{false, true} {
				s.Inference = inference
				run := func(kern string) []float32 {
					var ws Workspace
					require.NoError(t, ws.Gemm.SetKernel(kern))
					ws.conv.winoM = m
					y, py, parg := make([]float32, len(dy)), make([]float32, pn), make([]float32, pn)
					// at inference as the engine runs it: y and the argmax
					// not stored (F(4×4, 3×3) pools in registers)
					e := ConvEpilogue{Bias: bias, ReLU: true, Pool: ps, PoolY: py, PoolArg: parg, ScratchY: inference, NoArg: inference}
					Conv2DForwardEpilogue(nil, &ws, s, x, w, y, e)
					dx, dw := make([]float32, len(x)), make([]float32, len(w))
					Conv2DBackwardData(nil, &ws, s, dy, w, dx)
					Conv2DBackwardFilter(nil, &ws, s, x, dy, dw)
					if inference {
						return append(append(py, dx...), dw...)
					}
					return append(append(append(append(y, py...), parg...), dx...), dw...)
				}
				requireSameBits(t, run("avx512"), run("avx2"), fmt.Sprintf("shape %d, tile %d, inference %v: avx2 against avx512", i, m, inference))
			}
		}
	}
}

// TestEpilogueEmptyOutput: a convolution with no output pixels and a
// fused pooling of none returns without touching anything, as it does
// without the pooling (the length checks skip empty shapes).
func TestEpilogueEmptyOutput(t *testing.T) {
	s := ConvShape{N: 1, H: 2, W: 5, C: 16, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 0, OutW: 3}
	ps := PoolShape{N: 1, H: 0, W: 3, C: 64, KH: 2, KW: 2, StrideH: 2, StrideW: 2, OutH: 0, OutW: 1}
	for _, k := range KernelNames() {
		var ws Workspace
		require.NoError(t, ws.Gemm.SetKernel(k))
		require.NotPanics(t, func() {
			Conv2DForwardEpilogue(nil, &ws, s, make([]float32, 2*5*16), make([]float32, 9*16*64), nil, ConvEpilogue{ReLU: true, Pool: ps})
		}, k)
	}
}
