package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// convTaps calls fn for every (output pixel, tap, input channel) whose
// input lies inside the image, in order of pixel, tap and channel, with the
// offsets of the pixel's first output in y, of the input element in x and
// of its first filter weight in w (each f adds f to the y and w offsets).
func convTaps(s ConvShape, fn func(yo, xo, wo int)) {
	for n := 0; n < s.N; n++ {
		for oh := 0; oh < s.OutH; oh++ {
			for ow := 0; ow < s.OutW; ow++ {
				yo := ((n*s.OutH+oh)*s.OutW + ow) * s.F
				for ky := 0; ky < s.KH; ky++ {
					for kx := 0; kx < s.KW; kx++ {
						ih, iw := oh*s.StrideH-s.PadTop+ky, ow*s.StrideW-s.PadLeft+kx
						if ih < 0 || ih >= s.H || iw < 0 || iw >= s.W {
							continue
						}
						for c := 0; c < s.C; c++ {
							fn(yo, ((n*s.H+ih)*s.W+iw)*s.C+c, ((ky*s.KW+kx)*s.C+c)*s.F)
						}
					}
				}
			}
		}
	}
}

// naiveConv is the direct float64 convolution.
func naiveConv(s ConvShape, x, w []float32) []float64 {
	y := make([]float64, s.N*s.OutH*s.OutW*s.F)
	convTaps(s, func(yo, xo, wo int) {
		for f := 0; f < s.F; f++ {
			y[yo+f] += float64(x[xo]) * float64(w[wo+f])
		}
	})
	return y
}

func dot64(a []float32, b []float64) float64 {
	s := 0.0
	for i := range b {
		s += float64(a[i]) * b[i]
	}
	return s
}

var convShapes = []ConvShape{
	{N: 2, H: 5, W: 5, C: 1, KH: 3, KW: 3, F: 4, StrideH: 1, StrideW: 1, OutH: 3, OutW: 3},
	{N: 3, H: 7, W: 6, C: 3, KH: 3, KW: 2, F: 5, StrideH: 2, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 4, OutW: 6},
	{N: 1, H: 4, W: 4, C: 5, KH: 1, KW: 1, F: 3, StrideH: 1, StrideW: 1, OutH: 4, OutW: 4},
	{N: 2, H: 6, W: 5, C: 2, KH: 3, KW: 3, F: 7, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 6, OutW: 5},
	{N: 4, H: 9, W: 9, C: 4, KH: 5, KW: 5, F: 3, StrideH: 2, StrideW: 2, PadTop: 2, PadLeft: 2, OutH: 5, OutW: 5},
	{N: 5, H: 3, W: 3, C: 2, KH: 2, KW: 2, F: 1, StrideH: 3, StrideW: 3, OutH: 1, OutW: 1},
}

func TestConv(t *testing.T) {
	for _, pool := range []*Pool{nil, NewPool(3)} {
		var ws Workspace
		for i, s := range convShapes {
			t.Run(fmt.Sprintf("%d/%d", pool.Workers(), i), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(i), 3))
				x := randSlice(r, s.N*s.H*s.W*s.C)
				w := randSlice(r, s.KH*s.KW*s.C*s.F)
				y := make([]float32, s.N*s.OutH*s.OutW*s.F)
				for j := range y {
					y[j] = float32(math.NaN())
				}
				Conv2DForward(pool, &ws, s, x, w, y)
				want := naiveConv(s, x, w)
				for j := range want {
					require.InDelta(t, want[j], y[j], 1e-4, "y[%d]", j)
				}
				// Backward passes checked through the adjoint identity:
				// <dy, conv(x, w)> is linear in x and in w, so
				// dx[j] = <dy, conv(e_j, w)> and dw[j] = <dy, conv(x, e_j)>.
				dy := randSlice(r, len(y))
				dx := make([]float32, len(x))
				dw := make([]float32, len(w))
				for j := range dx {
					dx[j] = float32(math.NaN())
				}
				for j := range dw {
					dw[j] = float32(math.NaN())
				}
				Conv2DBackwardData(pool, &ws, s, dy, w, dx)
				Conv2DBackwardFilter(pool, &ws, s, x, dy, dw)
				e := make([]float32, len(x))
				for j := range x {
					e[j] = 1
					require.InDelta(t, dot64(dy, naiveConv(s, e, w)), dx[j], 1e-4, "dx[%d]", j)
					e[j] = 0
				}
				e = make([]float32, len(w))
				for j := range w {
					e[j] = 1
					require.InDelta(t, dot64(dy, naiveConv(s, x, e)), dw[j], 1e-3, "dw[%d]", j)
					e[j] = 0
				}
			})
		}
	}
}

func TestConvChunked(t *testing.T) {
	// A batch whose patch matrix exceeds MaxColBytes is processed in chunks.
	s := ConvShape{N: 3, H: 160, W: 160, C: 32, KH: 3, KW: 3, F: 2, StrideH: 1, StrideW: 1, OutH: 158, OutW: 158}
	require.Less(t, s.chunk(), s.N)
	r := rand.New(rand.NewPCG(5, 5))
	x := randSlice(r, s.N*s.H*s.W*s.C)
	w := randSlice(r, s.KH*s.KW*s.C*s.F)
	y := make([]float32, s.N*s.OutH*s.OutW*s.F)
	dw := make([]float32, len(w))
	p := NewPool(0)
	defer p.Close()
	var ws Workspace
	Conv2DForward(p, &ws, s, x, w, y)
	Conv2DBackwardFilter(p, &ws, s, x, y, dw)
	want := naiveConv(s, x, w)
	for j := 0; j < len(want); j += 97 {
		require.InDelta(t, want[j], y[j], 1e-3)
	}
	// dw = Σ_n patches^T·y; check one entry directly.
	var sum float64
	for n := 0; n < s.N; n++ {
		for oh := 0; oh < s.OutH; oh++ {
			for ow := 0; ow < s.OutW; ow++ {
				sum += float64(x[((n*s.H+oh+1)*s.W+ow+2)*s.C+5]) * float64(y[((n*s.OutH+oh)*s.OutW+ow)*s.F+1])
			}
		}
	}
	require.InDelta(t, sum, dw[((1*s.KW+2)*s.C+5)*s.F+1], 1e-3*math.Abs(sum)+1e-2)
}

func TestConvNoAllocs(t *testing.T) {
	s := ConvShape{N: 8, H: 13, W: 13, C: 16, KH: 3, KW: 3, F: 16, StrideH: 1, StrideW: 1, OutH: 11, OutW: 11}
	p := NewPool(0)
	defer p.Close()
	var ws Workspace
	x := make([]float32, s.N*s.H*s.W*s.C)
	w := make([]float32, s.KH*s.KW*s.C*s.F)
	y := make([]float32, s.N*s.OutH*s.OutW*s.F)
	run := func() {
		Conv2DForward(p, &ws, s, x, w, y)
		Conv2DBackwardData(p, &ws, s, y, w, x)
		Conv2DBackwardFilter(p, &ws, s, x, y, w)
	}
	run()
	require.Zero(t, testing.AllocsPerRun(3, run))
}

// BenchmarkConv measures the two convolution layers of the reference model
// (MNIST 28×28×1) at batch 32 and batch 1, each pass, with the default
// micro-kernel and the generic one.
func BenchmarkConv(b *testing.B) {
	layers := []struct {
		name string
		s    ConvShape
	}{
		{"28x28x1-3x3x64", ConvShape{H: 28, W: 28, C: 1, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 26, OutW: 26}},
		{"13x13x64-3x3x64", ConvShape{H: 13, W: 13, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 11, OutW: 11}},
	}
	kernels := []string{DefaultKernel()}
	if DefaultKernel() != "generic" {
		kernels = append(kernels, "generic")
	}
	for _, kern := range kernels {
		for _, l := range layers {
			for _, batch := range []int{32, 1} {
				s := l.s
				s.N = batch
				r := rand.New(rand.NewPCG(1, 1))
				x := randSlice(r, s.N*s.H*s.W*s.C)
				w := randSlice(r, s.KH*s.KW*s.C*s.F)
				y := randSlice(r, s.N*s.OutH*s.OutW*s.F)
				flops := 2 * float64(s.N*s.OutH*s.OutW*s.F*s.KH*s.KW*s.C)
				p := NewPool(0)
				var ws Workspace
				require.NoError(b, ws.Gemm.SetKernel(kern))
				for _, pass := range []string{"forward", "backward-data", "backward-filter"} {
					b.Run(fmt.Sprintf("%s/%s/batch%d/%s", kern, l.name, batch, pass), func(b *testing.B) {
						run := func() {
							switch pass {
							case "forward":
								Conv2DForward(p, &ws, s, x, w, y)
							case "backward-data":
								Conv2DBackwardData(p, &ws, s, y, w, x)
							default:
								Conv2DBackwardFilter(p, &ws, s, x, y, w)
							}
						}
						run()
						b.ResetTimer()
						cpu0 := cpuSeconds()
						for i := 0; i < b.N; i++ {
							run()
						}
						reportRates(b, flops*float64(b.N), cpu0)
					})
				}
				p.Close()
			}
		}
	}
}
