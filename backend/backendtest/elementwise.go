package backendtest

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/backend"
)

var biasShapes = [][2]int{{1, 1}, {7, 5}, {64, 10}, {33, 129}, {128, 64}, {1, 300}, {300, 1}}

var elemSizes = []int{1, 7, 1000, 4097}

func elementwiseSuites() []suite {
	var badd, bgrad, relu, reluB, mul, drop []testCase
	for _, s := range biasShapes {
		rows, cols := s[0], s[1]
		name := fmt.Sprintf("rows%d_cols%d", rows, cols)
		badd = append(badd, testCase{name, func(e *env) {
			x := e.uniform(rows*cols, -1, 1)
			bias := e.uniform(cols, -1, 1)
			dx, db := e.state(x), e.input(bias)
			e.do(backend.OpBiasAdd, e.b.BiasAdd(dx.b, db.b, rows, cols))
			want := make([]float64, rows*cols)
			for i := range want {
				want[i] = float64(x[i]) + float64(bias[i%cols])
			}
			// One float32 rounding of the sum.
			e.near("x", e.read("x", dx), want, func(i int) float64 {
				return 1e-6 * (math.Abs(float64(x[i])) + math.Abs(float64(bias[i%cols])))
			})
		}})
		bgrad = append(bgrad, testCase{name, func(e *env) {
			g := e.uniform(rows*cols, -1, 1)
			dg := e.input(g)
			db := e.output(cols, nan32)
			e.do(backend.OpBiasGrad, e.b.BiasGrad(dg.b, db.b, rows, cols))
			want := make([]float64, cols)
			scale := make([]float64, cols)
			for i, v := range g {
				want[i%cols] += float64(v)
				scale[i%cols] += math.Abs(float64(v))
			}
			e.near("db", e.read("db", db), want, dotTol(rows, scale))
		}})
	}
	for _, n := range elemSizes {
		for _, inPlace := range []bool{false, true} {
			name := fmt.Sprintf("n%d", n)
			if inPlace {
				name += "_in_place"
			}
			relu = append(relu, testCase{name, func(e *env) {
				x := e.uniform(n, -1, 1)
				x[0] = 0
				if n > 2 {
					x[1] = float32(math.Copysign(0, -1))
					x[2] = 1e-40
				}
				want := make([]float64, n)
				for i, v := range x {
					want[i] = math.Max(float64(v), 0)
				}
				if inPlace {
					d := e.state(x)
					e.do(backend.OpReLU, e.b.ReLU(d.b, d.b, n))
					e.exact("y", e.read("y", d), want)
					return
				}
				dx := e.input(x)
				dy := e.output(n, nan32)
				e.do(backend.OpReLU, e.b.ReLU(dx.b, dy.b, n))
				e.exact("y", e.read("y", dy), want)
			}})
		}
		reluB = append(reluB, testCase{fmt.Sprintf("n%d", n), func(e *env) {
			y := e.uniform(n, -1, 1)
			for i := range y {
				if y[i] < 0 || i%5 == 0 {
					y[i] = 0 // a ReLU output: zero or positive
				}
			}
			g := e.uniform(n, -1, 1)
			dyv, dg := e.input(y), e.input(g)
			dx := e.output(n, nan32)
			e.do(backend.OpReLUBackward, e.b.ReLUBackward(dyv.b, dg.b, dx.b, n))
			want := make([]float64, n)
			for i := range want {
				if y[i] > 0 {
					want[i] = float64(g[i])
				}
			}
			e.exact("dx", e.read("dx", dx), want)
		}})
		mul = append(mul, testCase{fmt.Sprintf("n%d", n), func(e *env) {
			a, b := e.uniform(n, -3, 3), e.uniform(n, -3, 3)
			da, db := e.input(a), e.input(b)
			dc := e.output(n, nan32)
			e.do(backend.OpMul, e.b.Mul(da.b, db.b, dc.b, n))
			want := make([]float64, n)
			for i := range want {
				want[i] = float64(a[i]) * float64(b[i])
			}
			e.near("c", e.read("c", dc), want, relTol(1e-6, 0, want))
		}})
	}
	for _, rate := range []float32{0, 0.1, 0.5, 0.9} {
		for _, seed := range []uint64{0, 1, 0xdeadbeefcafebabe} {
			for _, n := range []int{1, 1000, 4097} {
				drop = append(drop, testCase{fmt.Sprintf("rate%g_seed%#x_n%d", rate, seed, n), func(e *env) {
					checkDropout(e, n, rate, seed)
				}})
			}
		}
	}
	return []suite{
		{name: "BiasAdd", cases: badd},
		{name: "BiasGrad", cases: bgrad},
		{name: "ReLU", cases: relu},
		{name: "ReLUBackward", cases: reluB},
		{name: "Mul", cases: mul},
		{name: "DropoutMask", cases: drop},
	}
}

func checkDropout(e *env, n int, rate float32, seed uint64) {
	d := e.output(n, nan32)
	e.do(backend.OpDropoutMask, e.b.DropoutMask(d.b, n, rate, seed))
	got := e.read("mask", d)
	keepV := 1 / (1 - float64(rate))
	for i, g := range got {
		keep := backend.DropoutKeep(seed, i, rate)
		switch {
		case keep && !(math.Abs(float64(g)-keepV) <= 1e-6*keepV):
			e.failf("mask[%d]: DropoutKeep says keep, got %g want %g", i, g, keepV)
		case !keep && g != 0:
			e.failf("mask[%d]: DropoutKeep says drop, got %g want 0", i, g)
		}
	}
}
