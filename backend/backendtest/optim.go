package backendtest

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/backend"
)

func optimSuites() []suite {
	var adam, sgd []testCase
	adamHyper := []backend.AdamParams{
		{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-7},
		{LR: 0.1, Beta1: 0.5, Beta2: 0.9, Eps: 1e-2}, // large ε: checks where ε goes
	}
	for hi, hp := range adamHyper {
		for _, n := range []int{1, 17, 1000} {
			adam = append(adam, testCase{fmt.Sprintf("hyper%d_n%d_5steps", hi, n), func(e *env) { checkAdam(e, hp, n, 5) }})
		}
	}
	for _, hp := range []backend.SGDParams{{LR: 0.01, Momentum: 0}, {LR: 0.5, Momentum: 0.9}, {LR: 0.1, Momentum: 0.5}} {
		for _, n := range []int{1, 17, 1000} {
			sgd = append(sgd, testCase{fmt.Sprintf("lr%g_mom%g_n%d_3steps", hp.LR, hp.Momentum, n), func(e *env) { checkSGD(e, hp, n, 3) }})
		}
	}
	return []suite{{name: "Adam", cases: adam}, {name: "SGD", cases: sgd}}
}

// checkAdam runs steps Adam steps. Each step is compared with the float64
// Keras formula applied to the float32 state the backend held before it, so
// errors do not compound across steps.
func checkAdam(e *env, hp backend.AdamParams, n, steps int) {
	param := e.uniform(n, -1, 1)
	dp := e.state(param)
	dm := e.state(make([]float32, n))
	dv := e.state(make([]float32, n))
	m, v := make([]float32, n), make([]float32, n)
	dg := e.input(make([]float32, n))
	b1, b2, eps := float64(hp.Beta1), float64(hp.Beta2), float64(hp.Eps)
	for t := 1; t <= steps; t++ {
		g := e.uniform(n, -1, 1)
		if n > 1 {
			g[0] = 0
		}
		e.upload(dg, g)
		hp.Step = t
		e.do(backend.OpAdam, e.b.Adam(hp, dp.b, dg.b, dm.b, dv.b, n))
		lr := float64(hp.LR) * math.Sqrt(1-math.Pow(b2, float64(t))) / (1 - math.Pow(b1, float64(t)))
		wantP, wantM, wantV := make([]float64, n), make([]float64, n), make([]float64, n)
		tolP, tolM, tolV := make([]float64, n), make([]float64, n), make([]float64, n)
		for i := range n {
			gi, mi, vi := float64(g[i]), float64(m[i]), float64(v[i])
			wantM[i] = mi + (gi-mi)*(1-b1)
			wantV[i] = vi + (gi*gi-vi)*(1-b2)
			step := lr * wantM[i] / (math.Sqrt(wantV[i]) + eps)
			wantP[i] = float64(param[i]) - step
			tolM[i] = 2e-6 * (math.Abs(mi) + math.Abs(gi))
			tolV[i] = 2e-6 * (vi + gi*gi)
			// 1e-4 of the step: β2^t in float32 loses digits in 1-β2^t.
			tolP[i] = 1e-6*math.Abs(float64(param[i])) + 1e-4*math.Abs(step)
		}
		tag := fmt.Sprintf("step %d: ", t)
		param = e.read(tag+"param", dp)
		m = e.read(tag+"m", dm)
		v = e.read(tag+"v", dv)
		e.near(tag+"m", m, wantM, func(i int) float64 { return tolM[i] })
		e.near(tag+"v", v, wantV, func(i int) float64 { return tolV[i] })
		e.near(tag+"param", param, wantP, func(i int) float64 { return tolP[i] })
		if e.failed() {
			return
		}
	}
}

// checkSGD runs steps SGD steps, each compared with the float64 Keras
// formula applied to the backend's previous float32 state.
func checkSGD(e *env, hp backend.SGDParams, n, steps int) {
	param := e.uniform(n, -1, 1)
	vel := e.uniform(n, -0.1, 0.1)
	dp, dv := e.state(param), e.state(vel)
	dg := e.input(make([]float32, n))
	lr, mom := float64(hp.LR), float64(hp.Momentum)
	for t := 1; t <= steps; t++ {
		g := e.uniform(n, -1, 1)
		e.upload(dg, g)
		e.do(backend.OpSGD, e.b.SGD(hp, dp.b, dg.b, dv.b, n))
		wantP, wantV := make([]float64, n), make([]float64, n)
		tolP, tolV := make([]float64, n), make([]float64, n)
		for i := range n {
			wantV[i] = mom*float64(vel[i]) - lr*float64(g[i])
			wantP[i] = float64(param[i]) + wantV[i]
			tolV[i] = 2e-6 * (math.Abs(mom*float64(vel[i])) + math.Abs(lr*float64(g[i])))
			tolP[i] = 2e-6*(math.Abs(float64(param[i]))+math.Abs(wantV[i])) + tolV[i]
		}
		tag := fmt.Sprintf("step %d: ", t)
		param = e.read(tag+"param", dp)
		vel = e.read(tag+"vel", dv)
		e.near(tag+"vel", vel, wantV, func(i int) float64 { return tolV[i] })
		e.near(tag+"param", param, wantP, func(i int) float64 { return tolP[i] })
		if e.failed() {
			return
		}
	}
}
