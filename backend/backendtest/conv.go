package backendtest

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/backend"
)

// convShape is one convolution geometry; OutH/OutW and padding come from
// backend.ConvOutSize.
type convShape struct {
	N, H, W, C, KH, KW, F, SH, SW int
	pad                           string
}

func (s convShape) String() string {
	return fmt.Sprintf("n%d_%dx%dx%d_k%dx%dx%d_s%dx%d_%s", s.N, s.H, s.W, s.C, s.KH, s.KW, s.F, s.SH, s.SW, s.pad)
}

// params builds ConvParams from the shape.
func (s convShape) params() backend.ConvParams {
	oh, pt, err := backend.ConvOutSize(s.H, s.KH, s.SH, s.pad)
	if err != nil {
		panic(err)
	}
	ow, pl, err := backend.ConvOutSize(s.W, s.KW, s.SW, s.pad)
	if err != nil {
		panic(err)
	}
	return backend.ConvParams{N: s.N, H: s.H, W: s.W, C: s.C, KH: s.KH, KW: s.KW, F: s.F,
		StrideH: s.SH, StrideW: s.SW, PadTop: pt, PadLeft: pl, OutH: oh, OutW: ow}
}

var convShapes = []convShape{
	{2, 28, 28, 1, 3, 3, 64, 1, 1, "valid"},  // reference CNN, first conv
	{2, 13, 13, 64, 3, 3, 64, 1, 1, "valid"}, // reference CNN, second conv
	{3, 9, 7, 3, 3, 3, 5, 1, 1, "same"},      // odd channels
	{2, 10, 11, 3, 3, 3, 5, 2, 2, "same"},    // stride 2, same
	{1, 9, 9, 2, 3, 3, 4, 2, 2, "valid"},     // stride 2, valid
	{2, 5, 6, 7, 1, 1, 3, 1, 1, "valid"},     // 1x1
	{1, 7, 7, 2, 1, 1, 3, 2, 2, "valid"},     // 1x1 stride 2: untouched inputs
	{2, 8, 8, 3, 5, 5, 4, 1, 1, "same"},      // 5x5 same
	{1, 12, 9, 2, 5, 3, 3, 2, 1, "valid"},    // asymmetric kernel and stride
	{1, 6, 5, 3, 2, 2, 2, 1, 1, "same"},      // even kernel: padding only after
	{2, 9, 8, 3, 4, 4, 3, 2, 2, "same"},      // even kernel, stride 2, same
	{1, 5, 5, 3, 5, 5, 2, 1, 1, "valid"},     // kernel covers the input: 1x1 output
}

// convPadded are geometries with explicit padding wider than the kernel,
// which neither "valid" nor "same" gives but ConvParams allows: whole
// windows (and whole output rows and columns) fall in the padding. A CPU
// im2col once sliced past a patch row there and panicked.
var convPadded = []struct {
	name string
	p    backend.ConvParams
}{
	{"pad_left_2_over_k1", backend.ConvParams{N: 1, H: 1, W: 1, C: 1, KH: 1, KW: 1, F: 1, StrideH: 1, StrideW: 1, PadLeft: 2, OutH: 1, OutW: 3}},
	{"pad_4_over_k3_stride_1x2", backend.ConvParams{N: 2, H: 4, W: 5, C: 3, KH: 3, KW: 3, F: 4, StrideH: 1, StrideW: 2, PadTop: 4, PadLeft: 4, OutH: 8, OutW: 5}},
	{"pad_3_over_k2_64_filters", backend.ConvParams{N: 1, H: 6, W: 6, C: 2, KH: 2, KW: 2, F: 64, StrideH: 1, StrideW: 1, PadTop: 3, PadLeft: 3, OutH: 9, OutW: 9}},
}

func convSuites() []suite {
	var fwd, bdata, bfilter []testCase
	for _, s := range convShapes {
		fwd = append(fwd, testCase{s.String(), func(e *env) { checkConv(e, s.params()) }})
		bdata = append(bdata, testCase{s.String(), func(e *env) { checkConvBackwardData(e, s.params()) }})
		bfilter = append(bfilter, testCase{s.String(), func(e *env) { checkConvBackwardFilter(e, s.params()) }})
	}
	for _, c := range convPadded {
		if err := c.p.Validate("backendtest", c.name); err != nil {
			panic(err) // a mistake in the table above
		}
		fwd = append(fwd, testCase{c.name, func(e *env) { checkConv(e, c.p) }})
		bdata = append(bdata, testCase{c.name, func(e *env) { checkConvBackwardData(e, c.p) }})
		bfilter = append(bfilter, testCase{c.name, func(e *env) { checkConvBackwardFilter(e, c.p) }})
	}
	// Exact-arithmetic cases on the reference CNN's second convolution.
	ex := convShape{2, 13, 13, 64, 3, 3, 64, 1, 1, "valid"}
	p := ex.params()
	fwd = append(fwd, testCase{"exact_fp32_" + ex.String(), func(e *env) {
		x, w := e.exactly(p.InLen()), e.signs(p.FilterLen())
		dx, dw := e.input(x), e.input(w)
		dy := e.output(p.OutLen(), nan32)
		e.do(backend.OpConv2D, e.b.Conv2D(p, dx.b, dw.b, dy.b))
		want, scale := refConv(p, x, w)
		e.near("y", e.read("y", dy), want, exactTol(scale))
	}})
	bdata = append(bdata, testCase{"exact_fp32_" + ex.String(), func(e *env) {
		g, w := e.exactly(p.OutLen()), e.signs(p.FilterLen())
		dg, dw := e.input(g), e.input(w)
		dx := e.output(p.InLen(), nan32)
		e.do(backend.OpConv2DBackwardData, e.b.Conv2DBackwardData(p, dg.b, dw.b, dx.b))
		want, scale := refConvBackwardData(p, g, w)
		e.near("dx", e.read("dx", dx), want, exactTol(scale))
	}})
	bfilter = append(bfilter, testCase{"exact_fp32_" + ex.String(), func(e *env) {
		x, g := e.exactly(p.InLen()), e.signs(p.OutLen())
		dx, dg := e.input(x), e.input(g)
		dw := e.output(p.FilterLen(), nan32)
		e.do(backend.OpConv2DBackwardFilter, e.b.Conv2DBackwardFilter(p, dx.b, dg.b, dw.b))
		want, scale := refConvBackwardFilter(p, x, g)
		e.near("dw", e.read("dw", dw), want, exactTol(scale))
	}})
	// The forward pass of inference (ConvParams.Inference) against the
	// same references, and training's exact ties.
	for _, s := range []convShape{ex, {2, 6, 7, 16, 3, 3, 64, 1, 1, "same"}} {
		p := s.params()
		p.Inference = true
		fwd = append(fwd, testCase{"inference_" + s.String(), func(e *env) { checkConv(e, p) }})
	}
	fwd = append(fwd, testCase{"ties_" + ex.String(), func(e *env) { checkConvTies(e, p) }})
	fwd = append(fwd, testCase{"ties_pooled_" + ex.String(), func(e *env) { checkConvTiesPooled(e, p) }})
	for _, c := range convPoolCases() {
		fwd = append(fwd, testCase{"pooled_" + c.String(), func(e *env) { checkConvPooled(e, c) }})
	}
	return []suite{
		{name: "Conv2D", cases: fwd},
		{name: "Conv2DBackwardData", cases: bdata},
		{name: "Conv2DBackwardFilter", cases: bfilter},
	}
}

func checkConv(e *env, p backend.ConvParams) {
	x := e.uniform(p.InLen(), -1, 1)
	w := e.uniform(p.FilterLen(), -1, 1)
	dx, dw := e.input(x), e.input(w)
	dy := e.output(p.OutLen(), nan32)
	e.do(backend.OpConv2D, e.b.Conv2D(p, dx.b, dw.b, dy.b))
	want, scale := refConv(p, x, w)
	e.near("y", e.read("y", dy), want, dotTol(p.KH*p.KW*p.C, scale))
}

func checkConvBackwardData(e *env, p backend.ConvParams) {
	g := e.uniform(p.OutLen(), -1, 1)
	w := e.uniform(p.FilterLen(), -1, 1)
	dg, dw := e.input(g), e.input(w)
	dx := e.output(p.InLen(), nan32)
	e.do(backend.OpConv2DBackwardData, e.b.Conv2DBackwardData(p, dg.b, dw.b, dx.b))
	want, scale := refConvBackwardData(p, g, w)
	e.near("dx", e.read("dx", dx), want, dotTol(p.KH*p.KW*p.F, scale))
}

func checkConvBackwardFilter(e *env, p backend.ConvParams) {
	x := e.uniform(p.InLen(), -1, 1)
	g := e.uniform(p.OutLen(), -1, 1)
	dx, dg := e.input(x), e.input(g)
	dw := e.output(p.FilterLen(), nan32)
	e.do(backend.OpConv2DBackwardFilter, e.b.Conv2DBackwardFilter(p, dx.b, dg.b, dw.b))
	want, scale := refConvBackwardFilter(p, x, g)
	e.near("dw", e.read("dw", dw), want, dotTol(p.N*p.OutH*p.OutW, scale))
}

// checkConvTies checks that a training forward pass (Inference false)
// keeps the ties training depends on, as a direct convolution does: an
// output whose window holds only zeros is exactly 0, and outputs whose
// windows lie in one uniform region are equal to the bit. The input looks like
// a digit's activations after a ReLU (a block of random values, negative
// ones cut to 0, on a zero background) above a band of one repeated
// pixel (a uniform background after a bias), with windows of zeros next
// to the block in the same tiles of any tiling. A ReLU's mask (x > 0) and
// a max pooling's argmax read those ties; a backend that breaks them
// (Winograd F(4×4, 3×3) leaves ±1e-8 where the sum is 0) sends training's
// gradients elsewhere than the float64 reference does (see
// ConvParams.Inference). p is a 3×3 convolution with a valid padding and
// stride 1, at least 13×13.
func checkConvTies(e *env, p backend.ConvParams) {
	x, band := tiesInput(e, p)
	w := e.uniform(p.FilterLen(), -1, 1)
	dx, dw := e.input(x), e.input(w)
	dy := e.output(p.OutLen(), nan32)
	e.do(backend.OpConv2D, e.b.Conv2D(p, dx.b, dw.b, dy.b))
	y := e.read("y", dy)
	want, scale := refConv(p, x, w)
	e.near("y", y, want, dotTol(p.KH*p.KW*p.C, scale))
	zeros := 0
	for i, s := range scale {
		if s == 0 {
			zeros++
			if y[i] != 0 {
				e.failf("y[%d] = %.3g where every term of the sum is 0 (want exactly 0: a ReLU's mask and a pooling's argmax read this tie)", i, y[i])
			}
		}
	}
	if zeros == 0 {
		e.fatalf("internal: no output of %+v has a window of zeros", p)
	}
	// Outputs from band on have windows in the band only.
	for n := range p.N {
		first := ((n*p.OutH + band) * p.OutW) * p.F
		for r := band; r < p.OutH; r++ {
			for c := range p.OutW {
				o := ((n*p.OutH+r)*p.OutW + c) * p.F
				for f := range p.F {
					if y[o+f] != y[first+f] {
						e.failf("y[%d] = %.9g, y[%d] = %.9g: their windows lie in one uniform region (row %d, column %d and row %d, column 0 of image %d, filter %d); want them equal to the bit", o+f, y[o+f], first+f, y[first+f], r, c, band, n, f)
					}
				}
			}
		}
	}
}

// tiesInput returns checkConvTies' input for p and the first row of its
// uniform band.
func tiesInput(e *env, p backend.ConvParams) ([]float32, int) {
	px := e.uniform(p.C, -1, 1)
	for i, v := range px {
		px[i] = max(v, 0)
	}
	x := make([]float32, p.InLen())
	band := p.H - 5 // the band's first row
	for n := range p.N {
		for r := range p.H {
			for c := range p.W {
				o := ((n*p.H+r)*p.W + c) * p.C
				switch {
				case r >= band:
					copy(x[o:o+p.C], px)
				case r >= 3 && r < band-1 && c >= 3 && c < p.W-4:
					for k := range p.C {
						x[o+k] = max(float32(-1+2*e.rng.Float64()), 0)
					}
				}
			}
		}
	}
	return x, band
}

// checkConvTiesPooled runs checkConvTies' input through a training step's
// forward layer, Conv2D, BiasAdd, ReLU in place and a 2×2 MaxPool2D (the
// CPU backend fuses them into one pass), and checks the decisions the
// backward pass reads: where the float64 pre-activation is exactly 0 (a
// window of zeros, a bias of 0) the ReLU's output is exactly 0, not a
// rounding residue it would let through; and where the four values of a
// pooling window are exactly equal in float64, the argmax is the first
// (ties go to the first in window order), not whichever rounding made
// largest. The values are checked against float64 too.
func checkConvTiesPooled(e *env, p backend.ConvParams) {
	x, _ := tiesInput(e, p)
	w := e.uniform(p.FilterLen(), -1, 1)
	bias := e.uniform(p.F, -0.5, 0.5)
	for f := 0; f < p.F; f += 3 {
		bias[f] = 0 // a zero window then gives exactly 0 before the ReLU
	}
	pp := backend.PoolParams{N: p.N, H: p.OutH, W: p.OutW, C: p.F, KH: 2, KW: 2, StrideH: 2, StrideW: 2,
		OutH: p.OutH / 2, OutW: p.OutW / 2}
	dx, dw, db := e.input(x), e.input(w), e.input(bias)
	dy := e.output(p.OutLen(), nan32)
	pn := pp.N * pp.OutH * pp.OutW * pp.C
	dpy, darg := e.output(pn, nan32), e.output(pn, nan32)
	rows := p.N * p.OutH * p.OutW
	e.do(backend.OpConv2D, e.b.Conv2D(p, dx.b, dw.b, dy.b))
	e.do(backend.OpBiasAdd, e.b.BiasAdd(dy.b, db.b, rows, p.F))
	e.do(backend.OpReLU, e.b.ReLU(dy.b, dy.b, rows*p.F))
	e.do(backend.OpMaxPool2D, e.b.MaxPool2D(pp, dy.b, dpy.b, darg.b))
	y, py, arg := e.read("y", dy), e.read("pooled y", dpy), e.read("argmax", darg)
	conv, scale := refConv(p, x, w)
	want := make([]float64, len(conv))
	for i, v := range conv {
		want[i] = max(v+float64(bias[i%p.F]), 0)
	}
	e.near("y", y, want, dotTol(p.KH*p.KW*p.C, scale))
	masked := 0
	for i, v := range conv {
		if v+float64(bias[i%p.F]) == 0 {
			masked++
			if y[i] != 0 {
				e.failf("y[%d] = %.3g after the ReLU where the float64 pre-activation is exactly 0 (want exactly 0: the ReLU's gradient mask reads it)", i, y[i])
			}
		}
	}
	ties := 0
	for n := range pp.N {
		for r := range pp.OutH {
			for c := range pp.OutW {
				for f := range pp.C {
					o := ((n*pp.OutH+r)*pp.OutW+c)*pp.C + f
					at := func(ky, kx int) float64 { return want[((n*p.OutH+2*r+ky)*p.OutW+2*c+kx)*p.F+f] }
					if v := at(0, 0); v == at(0, 1) && v == at(1, 0) && v == at(1, 1) {
						ties++
						if arg[o] != 0 {
							e.failf("argmax[%d] = %v where the window's four values are equal in float64 (%.9g; image %d, pooled row %d, column %d, filter %d): want 0, the first", o, arg[o], v, n, r, c, f)
						}
						if float64(py[o]) != v && !(math.Abs(float64(py[o])-v) <= 1e-5*math.Sqrt(float64(p.KH*p.KW*p.C))*scale[((n*p.OutH+2*r)*p.OutW+2*c)*p.F+f]) {
							e.failf("pooled y[%d] = %.9g, want %.9g", o, py[o], v)
						}
					}
				}
			}
		}
	}
	if masked == 0 || ties == 0 {
		e.fatalf("internal: the input of %+v gives %d exact zeros before the ReLU and %d tied pooling windows; want some of each", p, masked, ties)
	}
}
