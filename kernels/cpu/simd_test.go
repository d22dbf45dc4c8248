package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// refMaxPool is the plain reference: the first element of each window is
// the start, a later one wins only when it is greater.
func refMaxPool(s PoolShape, x []float32) (y, arg []float32) {
	y = make([]float32, s.N*s.OutH*s.OutW*s.C)
	arg = make([]float32, len(y))
	for n := 0; n < s.N; n++ {
		for oh := 0; oh < s.OutH; oh++ {
			for ow := 0; ow < s.OutW; ow++ {
				for c := 0; c < s.C; c++ {
					var best float32
					a := 0
					for ky := 0; ky < s.KH; ky++ {
						for kx := 0; kx < s.KW; kx++ {
							v := x[((n*s.H+oh*s.StrideH+ky)*s.W+ow*s.StrideW+kx)*s.C+c]
							if (ky == 0 && kx == 0) || v > best {
								best, a = v, ky*s.KW+kx
							}
						}
					}
					o := ((n*s.OutH+oh)*s.OutW+ow)*s.C + c
					y[o], arg[o] = best, float32(a)
				}
			}
		}
	}
	return y, arg
}

func poolShapeOf(n, h, w, c, kh, kw, sh, sw int) PoolShape {
	return PoolShape{N: n, H: h, W: w, C: c, KH: kh, KW: kw, StrideH: sh, StrideW: sw,
		OutH: (h-kh)/sh + 1, OutW: (w-kw)/sw + 1}
}

// TestMaxPoolShapes covers the vector paths (channels a multiple of 8) and
// the scalar ones, with overlapping, touching and gapped windows, inputs
// the windows do not cover, ties and NaNs.
func TestMaxPoolShapes(t *testing.T) {
	shapes := []PoolShape{
		poolShapeOf(2, 26, 26, 64, 2, 2, 2, 2), // reference CNN, pool 1
		poolShapeOf(3, 11, 11, 64, 2, 2, 2, 2), // pool 2: last row and column uncovered
		poolShapeOf(1, 7, 9, 8, 2, 2, 2, 2),
		poolShapeOf(2, 6, 5, 16, 3, 3, 1, 1),  // overlapping
		poolShapeOf(1, 9, 7, 24, 3, 2, 2, 1),  // overlapping in w only
		poolShapeOf(2, 9, 10, 8, 2, 2, 3, 3),  // gaps between windows
		poolShapeOf(1, 4, 5, 8, 1, 1, 1, 1),   // identity
		poolShapeOf(1, 5, 5, 8, 5, 5, 5, 5),   // one window
		poolShapeOf(2, 8, 8, 3, 2, 2, 2, 2),   // scalar path
		poolShapeOf(1, 7, 6, 12, 3, 2, 2, 2),  // scalar path, gapped rows
		poolShapeOf(2, 7, 8, 128, 3, 3, 1, 1), // 64-channel groups, overlapping
		poolShapeOf(1, 9, 9, 64, 3, 2, 3, 2),  // 64-channel groups, gaps between rows
	}
	for i, s := range shapes {
		for _, mode := range []string{"uniform", "ties", "nan"} {
			for _, p := range []*Pool{nil, NewPool(3)} {
				name := fmt.Sprintf("%d_%dx%dx%dx%d_k%dx%d_s%dx%d/%s/w%d", i, s.N, s.H, s.W, s.C, s.KH, s.KW,
					s.StrideH, s.StrideW, mode, p.Workers())
				t.Run(name, func(t *testing.T) {
					defer p.Close()
					r := rand.New(rand.NewPCG(uint64(i), 9))
					x := randSlice(r, s.N*s.H*s.W*s.C)
					switch mode {
					case "ties":
						for j := range x {
							x[j] = float32(r.IntN(3))
						}
					case "nan":
						for j := range x {
							if r.IntN(5) == 0 {
								x[j] = float32(math.NaN())
							}
						}
					}
					wantY, wantArg := refMaxPool(s, x)
					y := make([]float32, len(wantY))
					am := make([]float32, len(wantY))
					MaxPool2DForward(p, s, x, y, am)
					for j := range y {
						if math.IsNaN(float64(wantY[j])) {
							require.True(t, math.IsNaN(float64(y[j])), "y[%d] = %v, want NaN", j, y[j])
						} else {
							require.Equal(t, wantY[j], y[j], "y[%d]", j)
						}
						require.Equal(t, wantArg[j], am[j], "argmax[%d]", j)
					}

					// Backward: route dy by any argmax, valid or not.
					dy := randSlice(r, len(y))
					arg := make([]float32, len(y))
					for j := range arg {
						switch r.IntN(8) {
						case 0:
							arg[j] = float32(math.NaN())
						case 1:
							arg[j] = float32(s.KH * s.KW) // out of range
						case 2:
							arg[j] = 0.5
						default:
							arg[j] = float32(r.IntN(s.KH * s.KW))
						}
					}
					want := make([]float64, len(x))
					for n := 0; n < s.N; n++ {
						for oh := 0; oh < s.OutH; oh++ {
							for ow := 0; ow < s.OutW; ow++ {
								for c := 0; c < s.C; c++ {
									o := ((n*s.OutH+oh)*s.OutW+ow)*s.C + c
									a := arg[o]
									if !(a >= 0 && a < float32(s.KH*s.KW)) || a != float32(int(a)) {
										continue
									}
									ky, kx := int(a)/s.KW, int(a)%s.KW
									want[((n*s.H+oh*s.StrideH+ky)*s.W+ow*s.StrideW+kx)*s.C+c] += float64(dy[o])
								}
							}
						}
					}
					dx := make([]float32, len(x))
					for j := range dx {
						dx[j] = float32(math.NaN())
					}
					MaxPool2DBackward(p, s, dy, arg, dx)
					for j := range want {
						require.InDelta(t, want[j], dx[j], 1e-6, "dx[%d]", j)
					}
				})
			}
		}
	}
}

func TestBiasAddShapes(t *testing.T) {
	for _, tc := range []struct{ rows, cols int }{{1, 8}, {3, 64}, {5, 7}, {4, 24}, {1, 1}, {300, 64}, {2, 13}} {
		for _, p := range []*Pool{nil, NewPool(2)} {
			r := rand.New(rand.NewPCG(uint64(tc.rows), uint64(tc.cols)))
			x := randSlice(r, tc.rows*tc.cols+5)
			bias := randSlice(r, tc.cols)
			want := append([]float32(nil), x...)
			for i := 0; i < tc.rows; i++ {
				for c := 0; c < tc.cols; c++ {
					want[i*tc.cols+c] += bias[c]
				}
			}
			BiasAdd(p, x, bias, tc.rows, tc.cols)
			require.Equal(t, want, x, "%dx%d", tc.rows, tc.cols)
			p.Close()
		}
	}
}

// TestBiasGradShapes checks BiasGrad bit for bit against the same float64
// sums done in Go (rows chunked by shape, chunks added in order), for
// column counts on and off the vector path, serial and parallel.
func TestBiasGradShapes(t *testing.T) {
	for _, tc := range []struct{ rows, cols int }{{1, 16}, {3, 64}, {5, 7}, {4100, 64}, {1, 1}, {300, 48}, {2, 13}, {20000, 16}} {
		for _, p := range []*Pool{nil, NewPool(3)} {
			r := rand.New(rand.NewPCG(uint64(tc.rows), uint64(tc.cols)))
			dy := randSlice(r, tc.rows*tc.cols)
			grain := max(1, ewGrain/tc.cols)
			want := make([]float32, tc.cols)
			for c := range want {
				var total float64
				for lo := 0; lo < tc.rows; lo += grain {
					var s float64
					for i := lo; i < min(tc.rows, lo+grain); i++ {
						s += float64(dy[i*tc.cols+c])
					}
					total += s
				}
				want[c] = float32(total)
			}
			var ws Workspace
			db := make([]float32, tc.cols)
			BiasGrad(p, &ws, dy, db, tc.rows, tc.cols)
			require.Equal(t, want, db, "%dx%d", tc.rows, tc.cols)
			// fused with the ReLU gradient: the bits of the two calls
			y, g := randSlice(r, tc.rows*tc.cols), randSlice(r, tc.rows*tc.cols)
			wantDX := make([]float32, len(y))
			ReLUBackward(nil, y, g, wantDX)
			BiasGrad(nil, &ws, wantDX, want, tc.rows, tc.cols)
			dx := make([]float32, len(y))
			ReLUBackwardBiasGrad(p, &ws, y, g, dx, db, tc.rows, tc.cols)
			requireSameBits(t, wantDX, dx, "fused dx")
			requireSameBits(t, want, db, "fused db")
			p.Close()
		}
	}
}
