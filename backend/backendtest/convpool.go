package backendtest

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/backend"
)

// convPoolCase is a convolution layer followed by a max pooling of its
// output, the sequence a Conv2D → MaxPool2D model runs (and the CPU
// backend fuses into the convolution's pass when it can).
type convPoolCase struct {
	conv               convShape
	kh, kw, sh, sw     int
	inference, discard bool
}

func (c convPoolCase) String() string {
	s := fmt.Sprintf("%s_pool%dx%d_s%dx%d", c.conv, c.kh, c.kw, c.sh, c.sw)
	if c.inference {
		s += "_inference"
	}
	if c.discard {
		s += "_discard"
	}
	return s
}

// convPoolCases cover every CPU convolution path (direct: 64 filters over
// at most 64 taps; Winograd: the reference CNN's second layer; implicit:
// at least 16 channels, a tiny output or a kernel Winograd does not take; the packed GEMM: other filter counts) with pools the epilogue can
// fuse (2×2 stride 2, rows and columns dropped or not) and pools it cannot
// (overlapping windows, stride 1, asymmetric), for training and for
// inference, where the model declares the convolution's output and the
// argmax dead (backend.Discarder).
func convPoolCases() []convPoolCase {
	convs := []convShape{
		{2, 12, 11, 1, 3, 3, 64, 1, 1, "valid"},  // direct, one channel
		{1, 10, 10, 3, 3, 3, 64, 1, 1, "valid"},  // direct, three channels
		{2, 13, 13, 64, 3, 3, 64, 1, 1, "valid"}, // Winograd
		{2, 7, 7, 64, 3, 3, 64, 1, 1, "valid"},   // implicit: an output too small for Winograd
		{2, 11, 10, 16, 2, 2, 64, 1, 1, "valid"}, // implicit: a 2×2 kernel
		{1, 9, 8, 5, 3, 3, 10, 1, 1, "same"},     // packed GEMM
	}
	pools := [][4]int{{2, 2, 2, 2}, {3, 3, 2, 2}, {2, 2, 1, 1}, {3, 2, 2, 1}}
	var cs []convPoolCase
	for _, cv := range convs {
		for _, pl := range pools {
			for _, mode := range []struct{ inference, discard bool }{{false, false}, {true, false}, {true, true}} {
				cs = append(cs, convPoolCase{cv, pl[0], pl[1], pl[2], pl[3], mode.inference, mode.discard})
			}
		}
	}
	return cs
}

// checkConvPooled runs Conv2D, BiasAdd, ReLU in place and MaxPool2D and
// checks the pooled values against float64, and each argmax: a window
// offset whose float64 value is the window's maximum within the
// convolution's tolerance. Without discard the convolution's output is
// checked too.
func checkConvPooled(e *env, c convPoolCase) {
	p := c.conv.params()
	p.Inference = c.inference
	pp := poolShape{p.N, p.OutH, p.OutW, p.F, c.kh, c.kw, c.sh, c.sw}.params()
	x := e.uniform(p.InLen(), -1, 1)
	w := e.uniform(p.FilterLen(), -1, 1)
	bias := e.uniform(p.F, -0.5, 0.5)
	dx, dw, db := e.input(x), e.input(w), e.input(bias)
	dy := e.output(p.OutLen(), nan32)
	dpy, darg := e.output(pp.OutLen(), nan32), e.output(pp.OutLen(), nan32)
	rows := p.N * p.OutH * p.OutW
	e.do(backend.OpConv2D, e.b.Conv2D(p, dx.b, dw.b, dy.b))
	e.do(backend.OpBiasAdd, e.b.BiasAdd(dy.b, db.b, rows, p.F))
	e.do(backend.OpReLU, e.b.ReLU(dy.b, dy.b, rows*p.F))
	e.do(backend.OpMaxPool2D, e.b.MaxPool2D(pp, dy.b, dpy.b, darg.b))
	d, discards := e.b.(backend.Discarder)
	if c.discard && discards {
		// as an inference layer does: only the pooled values are read
		d.Discard(dy.b)
		d.Discard(darg.b)
	}
	py := e.read("pooled y", dpy)
	var y, arg []float32
	if !c.discard {
		y, arg = e.read("y", dy), e.read("argmax", darg)
	}
	conv, scale := refConv(p, x, w)
	want := make([]float64, len(conv))
	for i, v := range conv {
		want[i] = max(v+float64(bias[i%p.F]), 0)
	}
	tol := dotTol(p.KH*p.KW*p.C, scale)
	if y != nil {
		e.near("y", y, want, tol)
	}
	for n := range pp.N {
		for r := range pp.OutH {
			for col := range pp.OutW {
				for f := range pp.C {
					o := ((n*pp.OutH+r)*pp.OutW+col)*pp.C + f
					at := func(k int) int {
						ky, kx := k/pp.KW, k%pp.KW
						return ((n*p.OutH+r*pp.StrideH+ky)*p.OutW+col*pp.StrideW+kx)*p.F + f
					}
					best, bt := math.Inf(-1), 0.0
					for k := range pp.KH * pp.KW {
						if v := want[at(k)]; v > best {
							best, bt = v, tol(at(k))
						}
					}
					if !(math.Abs(float64(py[o])-best) <= bt+1e-7) { // NaN fails too
						e.failf("pooled y[%d] = %.7g, want %.7g (image %d, pooled row %d, column %d, filter %d)", o, py[o], best, n, r, col, f)
					}
					if arg == nil {
						continue
					}
					a := arg[o]
					if a != float32(int(a)) || a < 0 || int(a) >= pp.KH*pp.KW {
						e.failf("argmax[%d] = %v, not a window offset in [0, %d)", o, a, pp.KH*pp.KW)
						continue
					}
					if v, k := want[at(int(a))], at(int(a)); !(v >= best-bt-tol(k)-1e-7) {
						e.failf("argmax[%d] = %v points at %.7g, but the window's maximum is %.7g (image %d, pooled row %d, column %d, filter %d)", o, a, v, best, n, r, col, f)
					}
				}
			}
		}
	}
}
