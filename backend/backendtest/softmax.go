package backendtest

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/backend"
)

var softmaxShapes = [][2]int{{1, 1}, {1, 10}, {7, 3}, {64, 10}, {5, 1000}, {33, 17}}

// logitsKind names how a case fills its logits.
type logitsKind string

const (
	logitsNormal logitsKind = "normal" // uniform in [-4, 4)
	logitsLarge  logitsKind = "large"  // around ±1000: needs the max subtracted
	logitsTies   logitsKind = "ties"   // small integers: many tied maxima
)

func (e *env) logits(kind logitsKind, rows, cols int) []float32 {
	switch kind {
	case logitsLarge:
		x := e.uniform(rows*cols, -20, 20)
		for i := range x {
			if (i/cols)%2 == 0 {
				x[i] += 1000
			} else {
				x[i] -= 1000
			}
		}
		if rows*cols >= 2 && cols >= 2 {
			x[0], x[1] = 1000, 0 // softmax [1, ~0]
		}
		return x
	case logitsTies:
		x := make([]float32, rows*cols)
		for i := range x {
			x[i] = float32(e.rng.IntN(3))
		}
		if rows >= 2 {
			for j := 0; j < cols; j++ {
				x[cols+j] = 1.5 // one row all equal
			}
		}
		return x
	default:
		return e.uniform(rows*cols, -4, 4)
	}
}

func softmaxSuites() []suite {
	var sm, sce []testCase
	for _, s := range softmaxShapes {
		rows, cols := s[0], s[1]
		for _, kind := range []logitsKind{logitsNormal, logitsLarge, logitsTies} {
			name := fmt.Sprintf("rows%d_cols%d_%s", rows, cols, kind)
			sm = append(sm, testCase{name, func(e *env) {
				x := e.logits(kind, rows, cols)
				dx := e.input(x)
				dy := e.output(rows*cols, nan32)
				e.do(backend.OpSoftmax, e.b.Softmax(dx.b, dy.b, rows, cols))
				want := refSoftmax(x, rows, cols)
				e.near("y", e.read("y", dy), want, relTol(1e-5, 1e-7, want))
			}})
			sce = append(sce, testCase{name, func(e *env) {
				x := e.logits(kind, rows, cols)
				labels := make([]float32, rows)
				for r := range labels {
					labels[r] = float32(e.rng.IntN(cols))
				}
				if kind == logitsTies && rows >= 2 && cols >= 2 {
					// The all-equal row: argmax is column 0, so a label of 1 is wrong.
					labels[1] = 1
				}
				checkSCE(e, x, labels, rows, cols)
			}})
		}
	}
	sce = append(sce, testCase{"first_max_wins", func(e *env) {
		// Rows with two equal maxima; the label points at the second one,
		// except in row 2 where it points at the first.
		x := []float32{1, 3, 3, 0, 5, 2, 5, 5, 7, 7, 7, 7}
		labels := []float32{2, 2, 0}
		checkSCE(e, x, labels, 3, 4)
	}})
	return []suite{{name: "Softmax", cases: sm}, {name: "SoftmaxCrossEntropy", cases: sce}}
}

func checkSCE(e *env, x, labels []float32, rows, cols int) {
	dx, dl := e.input(x), e.input(labels)
	dg := e.output(rows*cols, nan32)
	ds := e.output(2, nan32)
	e.do(backend.OpSoftmaxCrossEntropy, e.b.SoftmaxCrossEntropy(dx.b, dl.b, rows, cols, dg.b, ds.b))
	grad, loss, correct := refSCE(x, labels, rows, cols)
	p := refSoftmax(x, rows, cols)
	e.near("grad", e.read("grad", dg), grad, func(i int) float64 {
		return (1e-5*(p[i]+1) + 1e-7) / float64(rows)
	})
	stats := e.read("stats", ds)
	var sum, tol float64
	for r, l := range loss {
		sum += l
		mx := math.Inf(-1)
		for _, v := range x[r*cols : (r+1)*cols] {
			mx = math.Max(mx, math.Abs(float64(v)))
		}
		tol += 1e-5*(1+math.Abs(l)) + 1e-6*2*mx
	}
	e.near("stats[0] (loss sum)", stats[:1], []float64{sum}, func(int) float64 { return tol })
	e.exact("stats[1] (correct count)", stats[1:], []float64{float64(correct)})
}
