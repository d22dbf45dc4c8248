package backendtest

import (
	"fmt"

	"github.com/kiln-ml/kiln/backend"
)

// gemmShapes are the (m, n, k) triples every transpose combination and
// every alpha/beta pair is run on.
var gemmShapes = [][3]int{
	{1, 1, 1}, {1, 17, 3}, {3, 1, 17}, {17, 33, 1}, {33, 17, 64}, {64, 64, 64},
	{65, 63, 65}, {100, 3, 129}, {1, 129, 100}, {129, 65, 33}, {129, 129, 129},
}

// gemmScalars are the (alpha, beta) pairs; beta == 0 runs with C pre-filled
// with NaN, which the op must overwrite.
var gemmScalars = [][2]float32{{1, 0}, {0.5, 1}, {-1.5, 0.25}, {0, -1}}

func gemmSuites() []suite {
	var cases []testCase
	for _, s := range gemmShapes {
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			for _, ab := range gemmScalars {
				name := fmt.Sprintf("%s%s_m%dn%dk%d_alpha%g_beta%g", tn(tr[0]), tn(tr[1]), s[0], s[1], s[2], ab[0], ab[1])
				cases = append(cases, testCase{name, func(e *env) {
					checkGemm(e, tr[0], tr[1], s[0], s[1], s[2], ab[0], ab[1])
				}})
			}
		}
	}
	for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		cases = append(cases, testCase{"exact_fp32_" + tn(tr[0]) + tn(tr[1]) + "_m65n66k1000", func(e *env) {
			const m, n, k = 65, 66, 1000
			a, b := e.exactly(m*k), e.signs(k*n)
			da, db := e.input(a), e.input(b)
			dc := e.output(m*n, nan32)
			e.do(backend.OpGemm, e.b.Gemm(tr[0], tr[1], m, n, k, 1, da.b, db.b, 0, dc.b))
			want, scale := refGemm(tr[0], tr[1], m, n, k, 1, a, b, 0, nil)
			e.near("C", e.read("C", dc), want, exactTol(scale))
		}})
	}
	return []suite{{name: "Gemm", cases: cases}}
}

func tn(t bool) string {
	if t {
		return "T"
	}
	return "N"
}

func checkGemm(e *env, transA, transB bool, m, n, k int, alpha, beta float32) {
	a := e.uniform(m*k, -1, 1)
	b := e.uniform(k*n, -1, 1)
	var c []float32
	if beta == 0 {
		c = filled(m*n, nan32)
	} else {
		c = e.uniform(m*n, -1, 1)
	}
	da, db, dc := e.input(a), e.input(b), e.state(c)
	e.do(backend.OpGemm, e.b.Gemm(transA, transB, m, n, k, alpha, da.b, db.b, beta, dc.b))
	want, scale := refGemm(transA, transB, m, n, k, float64(alpha), a, b, float64(beta), c)
	e.near("C", e.read("C", dc), want, dotTol(k, scale))
}
