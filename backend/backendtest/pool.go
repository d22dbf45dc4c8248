package backendtest

import (
	"fmt"

	"github.com/kiln-ml/kiln/backend"
)

// poolShape is one pooling geometry; the output size drops incomplete
// windows (Keras "valid" pooling).
type poolShape struct {
	N, H, W, C, KH, KW, SH, SW int
}

func (s poolShape) String() string {
	return fmt.Sprintf("n%d_%dx%dx%d_k%dx%d_s%dx%d", s.N, s.H, s.W, s.C, s.KH, s.KW, s.SH, s.SW)
}

func (s poolShape) params() backend.PoolParams {
	return backend.PoolParams{N: s.N, H: s.H, W: s.W, C: s.C, KH: s.KH, KW: s.KW, StrideH: s.SH, StrideW: s.SW,
		OutH: (s.H-s.KH)/s.SH + 1, OutW: (s.W-s.KW)/s.SW + 1}
}

var poolShapes = []poolShape{
	{2, 8, 8, 3, 2, 2, 2, 2},    // 2x2 stride 2
	{2, 26, 26, 64, 2, 2, 2, 2}, // reference CNN
	{1, 7, 9, 2, 2, 2, 2, 2},    // odd: last row and column dropped
	{2, 6, 5, 3, 3, 3, 1, 1},    // 3x3 stride 1, overlapping
	{1, 9, 7, 4, 3, 2, 2, 1},    // asymmetric window and stride
	{1, 4, 5, 2, 1, 1, 1, 1},    // 1x1: identity
	{1, 5, 5, 1, 5, 5, 5, 5},    // one window covers the input
}

func poolSuites() []suite {
	var fwd, bwd []testCase
	for _, s := range poolShapes {
		fwd = append(fwd, testCase{s.String(), func(e *env) {
			checkMaxPool(e, s.params(), e.uniform(s.params().InLen(), -1, 1))
		}})
		fwd = append(fwd, testCase{s.String() + "_ties", func(e *env) {
			// Few distinct values: most windows hold ties.
			x := make([]float32, s.params().InLen())
			for i := range x {
				x[i] = float32(e.rng.IntN(3))
			}
			checkMaxPool(e, s.params(), x)
		}})
		bwd = append(bwd, testCase{s.String(), func(e *env) { checkMaxPoolBackward(e, s.params()) }})
	}
	fwd = append(fwd,
		testCase{"all_equal_windows", func(e *env) {
			p := poolShape{2, 6, 6, 3, 3, 3, 1, 1}.params()
			checkMaxPool(e, p, filled(p.InLen(), 0.5))
		}},
		testCase{"all_negative", func(e *env) {
			p := poolShape{2, 6, 7, 3, 2, 3, 2, 2}.params()
			checkMaxPool(e, p, e.uniform(p.InLen(), -5, -1))
		}},
	)
	bwd = append(bwd, testCase{"invalid_argmax", func(e *env) {
		// Entries that are not a window offset (an integer in [0, KH·KW))
		// contribute nothing: fractions, negatives, too large, NaN.
		p := poolShape{2, 6, 6, 3, 2, 2, 2, 2}.params()
		bad := []float32{1.5, 0.25, -1, -0.5, 4, 4.5, 1e9, nan32}
		arg := make([]float32, p.OutLen())
		for i := range arg {
			if i%3 == 0 {
				arg[i] = bad[(i/3)%len(bad)]
			} else {
				arg[i] = float32(e.rng.IntN(p.KH * p.KW))
			}
		}
		checkMaxPoolBackwardArg(e, p, arg)
	}})
	return []suite{{name: "MaxPool2D", cases: fwd}, {name: "MaxPool2DBackward", cases: bwd}}
}

func checkMaxPool(e *env, p backend.PoolParams, x []float32) {
	dx := e.input(x)
	dy := e.output(p.OutLen(), nan32)
	darg := e.output(p.OutLen(), nan32)
	e.do(backend.OpMaxPool2D, e.b.MaxPool2D(p, dx.b, dy.b, darg.b))
	want, arg := refMaxPool(p, x)
	e.exact("y", e.read("y", dy), want)
	e.exact("argmax", e.read("argmax", darg), arg)
}

func checkMaxPoolBackward(e *env, p backend.PoolParams) {
	// Any valid window offset, not only those of some x: the op must route by
	// argmax alone, and overlapping windows must accumulate.
	arg := make([]float32, p.OutLen())
	for i := range arg {
		arg[i] = float32(e.rng.IntN(p.KH * p.KW))
	}
	checkMaxPoolBackwardArg(e, p, arg)
}

// checkMaxPoolBackward with the given argmax.
func checkMaxPoolBackwardArg(e *env, p backend.PoolParams, arg []float32) {
	g := e.uniform(p.OutLen(), -1, 1)
	dg, darg := e.input(g), e.input(arg)
	dx := e.output(p.InLen(), nan32)
	e.do(backend.OpMaxPool2DBackward, e.b.MaxPool2DBackward(p, dg.b, darg.b, dx.b))
	want, scale := refMaxPoolBackward(p, g, arg)
	e.near("dx", e.read("dx", dx), want, dotTol(p.KH*p.KW, scale))
}
