package backendtest

import (
	"math"

	"github.com/kiln-ml/kiln/backend"
)

// The functions in this file are the float64 reference: plain loops that
// share no code with any backend. Each returns the exact-as-float64 result
// and, where the result is a sum, the sum of the absolute values of its
// terms (the scale tolerances are relative to).

// num is the element type of the reference: float32 device data, or
// float64 for the whole-network gradient check.
type num interface{ ~float32 | ~float64 }

// refGemm computes alpha·op(A)·op(B) + beta·C. With beta == 0, C is not read
// (it may hold NaN).
func refGemm[T num](transA, transB bool, m, n, k int, alpha float64, a, b []T, beta float64, c []T) (out, scale []float64) {
	out = make([]float64, m*n)
	scale = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, abs float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if transA {
					av = float64(a[p*m+i])
				} else {
					av = float64(a[i*k+p])
				}
				if transB {
					bv = float64(b[j*k+p])
				} else {
					bv = float64(b[p*n+j])
				}
				s += av * bv
				abs += math.Abs(av * bv)
			}
			r := alpha * s
			sc := math.Abs(alpha) * abs
			if beta != 0 {
				r += beta * float64(c[i*n+j])
				sc += math.Abs(beta * float64(c[i*n+j]))
			}
			out[i*n+j] = r
			scale[i*n+j] = sc
		}
	}
	return out, scale
}

// convTap calls f for every (input index, filter index, output index)
// triple that contributes to the convolution p.
func convTap(p backend.ConvParams, f func(xi, wi, yi int)) {
	for n := 0; n < p.N; n++ {
		for oy := 0; oy < p.OutH; oy++ {
			for ox := 0; ox < p.OutW; ox++ {
				for ky := 0; ky < p.KH; ky++ {
					iy := oy*p.StrideH - p.PadTop + ky
					if iy < 0 || iy >= p.H {
						continue
					}
					for kx := 0; kx < p.KW; kx++ {
						ix := ox*p.StrideW - p.PadLeft + kx
						if ix < 0 || ix >= p.W {
							continue
						}
						for c := 0; c < p.C; c++ {
							xi := ((n*p.H+iy)*p.W+ix)*p.C + c
							for fo := 0; fo < p.F; fo++ {
								wi := ((ky*p.KW+kx)*p.C+c)*p.F + fo
								yi := ((n*p.OutH+oy)*p.OutW+ox)*p.F + fo
								f(xi, wi, yi)
							}
						}
					}
				}
			}
		}
	}
}

// refConv is the forward convolution (cross-correlation, HWIO filter).
func refConv[T num](p backend.ConvParams, x, w []T) (y, scale []float64) {
	y = make([]float64, p.OutLen())
	scale = make([]float64, p.OutLen())
	convTap(p, func(xi, wi, yi int) {
		t := float64(x[xi]) * float64(w[wi])
		y[yi] += t
		scale[yi] += math.Abs(t)
	})
	return y, scale
}

// refConvBackwardData is ∂L/∂x given dy = ∂L/∂y.
func refConvBackwardData(p backend.ConvParams, dy, w []float32) (dx, scale []float64) {
	dx = make([]float64, p.InLen())
	scale = make([]float64, p.InLen())
	convTap(p, func(xi, wi, yi int) {
		t := float64(dy[yi]) * float64(w[wi])
		dx[xi] += t
		scale[xi] += math.Abs(t)
	})
	return dx, scale
}

// refConvBackwardFilter is ∂L/∂w given x and dy.
func refConvBackwardFilter(p backend.ConvParams, x, dy []float32) (dw, scale []float64) {
	dw = make([]float64, p.FilterLen())
	scale = make([]float64, p.FilterLen())
	convTap(p, func(xi, wi, yi int) {
		t := float64(x[xi]) * float64(dy[yi])
		dw[wi] += t
		scale[wi] += math.Abs(t)
	})
	return dw, scale
}

// poolIndex returns the input index of window offset (ky, kx) of output
// element (n, oy, ox, c).
func poolIndex(p backend.PoolParams, n, oy, ox, c, ky, kx int) int {
	iy := oy*p.StrideH + ky
	ix := ox*p.StrideW + kx
	return ((n*p.H+iy)*p.W+ix)*p.C + c
}

// refMaxPool returns the pooled values and the argmax offsets (first
// maximum in row-major window order).
func refMaxPool[T num](p backend.PoolParams, x []T) (y, arg []float64) {
	y = make([]float64, p.OutLen())
	arg = make([]float64, p.OutLen())
	for n := 0; n < p.N; n++ {
		for oy := 0; oy < p.OutH; oy++ {
			for ox := 0; ox < p.OutW; ox++ {
				for c := 0; c < p.C; c++ {
					best, bi := math.Inf(-1), -1
					for ky := 0; ky < p.KH; ky++ {
						for kx := 0; kx < p.KW; kx++ {
							v := float64(x[poolIndex(p, n, oy, ox, c, ky, kx)])
							if bi < 0 || v > best {
								best, bi = v, ky*p.KW+kx
							}
						}
					}
					o := ((n*p.OutH+oy)*p.OutW+ox)*p.C + c
					y[o], arg[o] = best, float64(bi)
				}
			}
		}
	}
	return y, arg
}

// refMaxPoolBackward routes dy to the argmax inputs, accumulating.
// windowOffset reads an argmax entry: ok only for an integer in [0, win).
func windowOffset(af float32, win int) (int, bool) {
	a := int(af)
	return a, af >= 0 && a < win && float32(a) == af
}

func refMaxPoolBackward(p backend.PoolParams, dy, arg []float32) (dx, scale []float64) {
	dx = make([]float64, p.InLen())
	scale = make([]float64, p.InLen())
	for n := 0; n < p.N; n++ {
		for oy := 0; oy < p.OutH; oy++ {
			for ox := 0; ox < p.OutW; ox++ {
				for c := 0; c < p.C; c++ {
					o := ((n*p.OutH+oy)*p.OutW+ox)*p.C + c
					a, ok := windowOffset(arg[o], p.KH*p.KW)
					if !ok {
						continue // contributes nothing
					}
					i := poolIndex(p, n, oy, ox, c, a/p.KW, a%p.KW)
					dx[i] += float64(dy[o])
					scale[i] += math.Abs(float64(dy[o]))
				}
			}
		}
	}
	return dx, scale
}

// refSoftmax returns the row-wise softmax of x.
func refSoftmax[T num](x []T, rows, cols int) []float64 {
	out := make([]float64, rows*cols)
	for r := 0; r < rows; r++ {
		row := x[r*cols : (r+1)*cols]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var s float64
		for j, v := range row {
			out[r*cols+j] = math.Exp(float64(v) - mx)
			s += out[r*cols+j]
		}
		for j := range row {
			out[r*cols+j] /= s
		}
	}
	return out
}

// refSCE returns grad = (softmax - onehot)/rows, the per-row losses and the
// number of rows whose first maximum is the label.
func refSCE[T num](logits []T, labels []float32, rows, cols int) (grad, loss []float64, correct int) {
	p := refSoftmax(logits, rows, cols)
	grad = make([]float64, rows*cols)
	loss = make([]float64, rows)
	for r := 0; r < rows; r++ {
		row := logits[r*cols : (r+1)*cols]
		lab := int(labels[r])
		mx, am := math.Inf(-1), -1
		for j, v := range row {
			if am < 0 || float64(v) > mx {
				mx, am = float64(v), j
			}
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v) - mx)
		}
		loss[r] = mx + math.Log(s) - float64(row[lab])
		if am == lab {
			correct++
		}
		for j := range row {
			g := p[r*cols+j]
			if j == lab {
				g--
			}
			grad[r*cols+j] = g / float64(rows)
		}
	}
	return grad, loss, correct
}
