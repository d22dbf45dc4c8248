package backendtest

import (
	"fmt"

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
