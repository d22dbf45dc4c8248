package backendtest

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/backend"
)

// The per-op gradient checks below take the numerical derivative with the
// backend's own forward op (central differences, computed in float64 from
// the downloaded float32 outputs) and compare it with the backend's backward
// op. The whole-network check (CNN) takes the numerical derivative of a
// float64 reference forward pass instead, so that ReLU and max-pool kinks
// cannot be crossed by the step.

func gradCheckSuites() []suite {
	var cases []testCase
	for _, s := range [][3]int{{7, 5, 9}, {17, 33, 3}, {1, 4, 6}} {
		cases = append(cases, testCase{fmt.Sprintf("Gemm/m%dn%dk%d", s[0], s[1], s[2]), func(e *env) { checkGemmGrad(e, s[0], s[1], s[2]) }})
	}
	for _, i := range []int{0, 1, 2, 3, 7, 9, 10} {
		s := convShapes[i]
		cases = append(cases, testCase{"Conv2D/" + s.String(), func(e *env) { checkConvGrad(e, s.params()) }})
	}
	for _, s := range []poolShape{{2, 6, 5, 3, 3, 3, 1, 1}, {1, 7, 9, 2, 2, 2, 2, 2}} {
		cases = append(cases, testCase{"MaxPool2D/" + s.String(), func(e *env) { checkMaxPoolGrad(e, s.params()) }})
	}
	cases = append(cases,
		testCase{"ReLU/n1000", func(e *env) { checkReLUGrad(e, 1000) }},
		testCase{"BiasAdd/rows16_cols7", func(e *env) { checkBiasGrad(e, 16, 7) }},
		testCase{"SoftmaxCrossEntropy/rows8_cols10", func(e *env) { checkSCEGrad(e, 8, 10) }},
		testCase{"SoftmaxCrossEntropy/rows3_cols5", func(e *env) { checkSCEGrad(e, 3, 5) }},
		testCase{"CNN/conv_bias_relu_pool_dense_bias_softmaxce", checkCNNGrad},
	)
	return []suite{{name: "GradCheck", cases: cases}}
}

// samples returns min(k, n) distinct indices in [0, n): the first, the
// last and random ones.
func (e *env) samples(n, k int) []int {
	out := []int{0}
	seen := map[int]bool{0: true}
	if n > 1 {
		out = append(out, n-1)
		seen[n-1] = true
	}
	for len(out) < min(k, n) {
		i := e.rng.IntN(n)
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}

// fd returns the central difference of f with respect to data[i], where d
// holds data on the device; data and d are restored afterwards.
func (e *env) fd(d *dbuf, data []float32, i int, h float64, f func() float64) float64 {
	orig := data[i]
	plus, minus := float32(float64(orig)+h), float32(float64(orig)-h)
	data[i] = plus
	e.upload(d, data)
	fp := f()
	data[i] = minus
	e.upload(d, data)
	fm := f()
	data[i] = orig
	e.upload(d, data)
	return (fp - fm) / (float64(plus) - float64(minus))
}

func dot(g []float32, y []float32) float64 {
	var s float64
	for i := range g {
		s += float64(g[i]) * float64(y[i])
	}
	return s
}

// gradMismatch records a failure when |num-ana| > tol.
func (e *env) gradMismatch(what string, i int, num, ana float64, tol float64) {
	if !(math.Abs(num-ana) <= tol) {
		e.failf("%s[%d]: numerical %.7g, analytic %.7g (|diff| %.3g > tol %.3g)", what, i, num, ana, math.Abs(num-ana), tol)
	}
}

// checkGemmGrad: L = <G, A·B>; dL/dA = G·Bᵀ and dL/dB = Aᵀ·G, both by Gemm.
// Step 1e-2 (L is linear); tolerance 1e-2 of the sum of |terms| + 1e-4.
func checkGemmGrad(e *env, m, n, k int) {
	a, b, g := e.uniform(m*k, -1, 1), e.uniform(k*n, -1, 1), e.uniform(m*n, -1, 1)
	da, db, dg := e.input(a), e.input(b), e.input(g)
	dc := e.output(m*n, nan32)
	dA, dB := e.output(m*k, nan32), e.output(k*n, nan32)
	e.do(backend.OpGemm, e.b.Gemm(false, true, m, k, n, 1, dg.b, db.b, 0, dA.b))
	e.do(backend.OpGemm, e.b.Gemm(true, false, k, n, m, 1, da.b, dg.b, 0, dB.b))
	anaA, anaB := e.read("dA", dA), e.read("dB", dB)
	_, scA := refGemm(false, true, m, k, n, 1, g, b, 0, nil)
	_, scB := refGemm(true, false, k, n, m, 1, a, g, 0, nil)
	loss := func() float64 {
		e.do(backend.OpGemm, e.b.Gemm(false, false, m, n, k, 1, da.b, db.b, 0, dc.b))
		return dot(g, e.read("C", dc))
	}
	for _, i := range e.samples(m*k, 8) {
		e.gradMismatch("dL/dA", i, e.fd(da, a, i, 1e-2, loss), float64(anaA[i]), 1e-2*scA[i]+1e-4)
	}
	for _, i := range e.samples(k*n, 8) {
		e.gradMismatch("dL/dB", i, e.fd(db, b, i, 1e-2, loss), float64(anaB[i]), 1e-2*scB[i]+1e-4)
	}
}

// checkConvGrad: L = <G, conv(x, w)>, derivatives from the backward ops
// against central differences of the backend's Conv2D with step 1e-2 (L is
// linear); tolerance 1e-2 of the sum of |terms| of the derivative + 1e-3.
func checkConvGrad(e *env, p backend.ConvParams) {
	x, w, g := e.uniform(p.InLen(), -1, 1), e.uniform(p.FilterLen(), -1, 1), e.uniform(p.OutLen(), -1, 1)
	dx, dw, dg := e.input(x), e.input(w), e.input(g)
	dy := e.output(p.OutLen(), nan32)
	gx, gw := e.output(p.InLen(), nan32), e.output(p.FilterLen(), nan32)
	e.do(backend.OpConv2DBackwardData, e.b.Conv2DBackwardData(p, dg.b, dw.b, gx.b))
	e.do(backend.OpConv2DBackwardFilter, e.b.Conv2DBackwardFilter(p, dx.b, dg.b, gw.b))
	anaX, anaW := e.read("dx", gx), e.read("dw", gw)
	_, scX := refConvBackwardData(p, g, w)
	_, scW := refConvBackwardFilter(p, x, g)
	loss := func() float64 {
		e.do(backend.OpConv2D, e.b.Conv2D(p, dx.b, dw.b, dy.b))
		return dot(g, e.read("y", dy))
	}
	for _, i := range e.samples(p.InLen(), 8) {
		e.gradMismatch("dL/dx", i, e.fd(dx, x, i, 1e-2, loss), float64(anaX[i]), 1e-2*scX[i]+1e-3)
	}
	for _, i := range e.samples(p.FilterLen(), 8) {
		e.gradMismatch("dL/dw", i, e.fd(dw, w, i, 1e-2, loss), float64(anaW[i]), 1e-2*scW[i]+1e-3)
	}
}

// checkMaxPoolGrad: distinct inputs 0.05 apart, step 1e-3, so no window
// changes its winner; L = <G, maxpool(x)>; analytic from MaxPool2DBackward
// with the forward's argmax. Tolerance 1e-5·(1+|analytic|).
func checkMaxPoolGrad(e *env, p backend.PoolParams) {
	n := p.InLen()
	x := make([]float32, n)
	for i, v := range e.rng.Perm(n) {
		x[i] = float32(v)*0.05 - float32(n)*0.025
	}
	g := e.uniform(p.OutLen(), -1, 1)
	dx, dg := e.input(x), e.input(g)
	dy, darg := e.output(p.OutLen(), nan32), e.output(p.OutLen(), nan32)
	gx := e.output(n, nan32)
	e.do(backend.OpMaxPool2D, e.b.MaxPool2D(p, dx.b, dy.b, darg.b))
	e.do(backend.OpMaxPool2DBackward, e.b.MaxPool2DBackward(p, dg.b, darg.b, gx.b))
	ana := e.read("dx", gx)
	loss := func() float64 {
		e.do(backend.OpMaxPool2D, e.b.MaxPool2D(p, dx.b, dy.b, darg.b))
		return dot(g, e.read("y", dy))
	}
	for _, i := range e.samples(n, 24) {
		e.gradMismatch("dL/dx", i, e.fd(dx, x, i, 1e-3, loss), float64(ana[i]), 1e-5*(1+math.Abs(float64(ana[i]))))
	}
}

// checkReLUGrad: inputs kept 0.05 away from the kink, step 1e-3; ReLU is
// element-wise, so all elements are perturbed at once. Tolerance
// 1e-4·|G| + 1e-6.
func checkReLUGrad(e *env, n int) {
	x := e.uniform(n, -1, 1)
	for i := range x {
		if math.Abs(float64(x[i])) < 0.05 {
			x[i] += 0.1
		}
	}
	g := e.uniform(n, -1, 1)
	dx, dg := e.input(x), e.input(g)
	dy, gx := e.output(n, nan32), e.output(n, nan32)
	e.do(backend.OpReLU, e.b.ReLU(dx.b, dy.b, n))
	e.do(backend.OpReLUBackward, e.b.ReLUBackward(dy.b, dg.b, gx.b, n))
	ana := e.read("dx", gx)
	eval := func(h float64) ([]float32, []float32) {
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = float32(float64(x[i]) + h)
		}
		e.upload(dx, xs)
		e.do(backend.OpReLU, e.b.ReLU(dx.b, dy.b, n))
		return xs, e.read("y", dy)
	}
	xp, yp := eval(1e-3)
	xm, ym := eval(-1e-3)
	e.upload(dx, x)
	for i := range n {
		num := float64(g[i]) * (float64(yp[i]) - float64(ym[i])) / (float64(xp[i]) - float64(xm[i]))
		e.gradMismatch("dL/dx", i, num, float64(ana[i]), 1e-4*math.Abs(float64(g[i]))+1e-6)
	}
}

// checkBiasGrad: L = <G, x + bias>; dL/dbias = BiasGrad(G) against central
// differences of BiasAdd with step 1e-2; tolerance 1e-3·Σ|G| + 1e-4.
func checkBiasGrad(e *env, rows, cols int) {
	x, bias, g := e.uniform(rows*cols, -1, 1), e.uniform(cols, -1, 1), e.uniform(rows*cols, -1, 1)
	dbias, dg := e.input(bias), e.input(g)
	dx := e.state(x)
	gb := e.output(cols, nan32)
	e.do(backend.OpBiasGrad, e.b.BiasGrad(dg.b, gb.b, rows, cols))
	ana := e.read("db", gb)
	loss := func() float64 {
		e.do(backend.OpUpload, e.b.Upload(dx.b, x))
		e.do(backend.OpBiasAdd, e.b.BiasAdd(dx.b, dbias.b, rows, cols))
		return dot(g, e.read("x", dx))
	}
	for c := range cols {
		var s float64
		for r := range rows {
			s += math.Abs(float64(g[r*cols+c]))
		}
		e.gradMismatch("dL/dbias", c, e.fd(dbias, bias, c, 1e-2, loss), float64(ana[c]), 1e-3*s+1e-4)
	}
}

// checkSCEGrad: the grad output against central differences of the mean
// loss stats[0]/rows, step 1e-2; tolerance 1e-3/rows + 1e-2·|grad|.
func checkSCEGrad(e *env, rows, cols int) {
	x := e.uniform(rows*cols, -3, 3)
	labels := make([]float32, rows)
	for r := range labels {
		labels[r] = float32(e.rng.IntN(cols))
	}
	dx, dl := e.input(x), e.input(labels)
	dg, ds := e.output(rows*cols, nan32), e.output(2, nan32)
	e.do(backend.OpSoftmaxCrossEntropy, e.b.SoftmaxCrossEntropy(dx.b, dl.b, rows, cols, dg.b, ds.b))
	ana := e.read("grad", dg)
	loss := func() float64 {
		e.do(backend.OpSoftmaxCrossEntropy, e.b.SoftmaxCrossEntropy(dx.b, dl.b, rows, cols, dg.b, ds.b))
		return float64(e.read("stats", ds)[0]) / float64(rows)
	}
	for _, i := range e.samples(rows*cols, 16) {
		e.gradMismatch("dL/dlogits", i, e.fd(dx, x, i, 1e-2, loss), float64(ana[i]), 1e-3/float64(rows)+1e-2*math.Abs(float64(ana[i])))
	}
}

// checkCNNGrad runs a small network forward and backward on the backend,
// conv(same) → BiasAdd → ReLU → MaxPool → Gemm → BiasAdd →
// SoftmaxCrossEntropy, and checks the gradient of the mean loss with
// respect to every parameter and input against central differences (step
// 1e-4) of a float64 reference forward pass. Tolerance 1e-3·|numerical| +
// 1e-4·max|numerical| over the tensor + 1e-7.
func checkCNNGrad(e *env) {
	const n, classes = 3, 5
	cp := convShape{n, 8, 8, 2, 3, 3, 4, 1, 1, "same"}.params()
	pp := poolShape{n, 8, 8, 4, 2, 2, 2, 2}.params()
	feat := pp.OutLen() / n
	pix := n * 8 * 8
	x, wc, bc := e.uniform(cp.InLen(), -1, 1), e.uniform(cp.FilterLen(), -0.5, 0.5), e.uniform(4, -0.1, 0.1)
	wd, bd := e.uniform(feat*classes, -0.3, 0.3), e.uniform(classes, -0.1, 0.1)
	labels := make([]float32, n)
	for r := range labels {
		labels[r] = float32(e.rng.IntN(classes))
	}
	X, WC, BC, WD, BD, L := e.input(x), e.input(wc), e.input(bc), e.input(wd), e.input(bd), e.input(labels)
	Y1, A := e.output(cp.OutLen(), nan32), e.output(cp.OutLen(), nan32)
	P, ARG := e.output(pp.OutLen(), nan32), e.output(pp.OutLen(), nan32)
	Z, G, S := e.output(n*classes, nan32), e.output(n*classes, nan32), e.output(2, nan32)
	dWD, dBD, dP := e.output(len(wd), nan32), e.output(classes, nan32), e.output(pp.OutLen(), nan32)
	dA, dY1 := e.output(cp.OutLen(), nan32), e.output(cp.OutLen(), nan32)
	dBC, dWC, dX := e.output(4, nan32), e.output(len(wc), nan32), e.output(len(x), nan32)

	e.do(backend.OpConv2D, e.b.Conv2D(cp, X.b, WC.b, Y1.b))
	e.do(backend.OpBiasAdd, e.b.BiasAdd(Y1.b, BC.b, pix, 4))
	e.do(backend.OpReLU, e.b.ReLU(Y1.b, A.b, cp.OutLen()))
	e.do(backend.OpMaxPool2D, e.b.MaxPool2D(pp, A.b, P.b, ARG.b))
	e.do(backend.OpGemm, e.b.Gemm(false, false, n, classes, feat, 1, P.b, WD.b, 0, Z.b))
	e.do(backend.OpBiasAdd, e.b.BiasAdd(Z.b, BD.b, n, classes))
	e.do(backend.OpSoftmaxCrossEntropy, e.b.SoftmaxCrossEntropy(Z.b, L.b, n, classes, G.b, S.b))
	e.do(backend.OpGemm, e.b.Gemm(true, false, feat, classes, n, 1, P.b, G.b, 0, dWD.b))
	e.do(backend.OpBiasGrad, e.b.BiasGrad(G.b, dBD.b, n, classes))
	e.do(backend.OpGemm, e.b.Gemm(false, true, n, feat, classes, 1, G.b, WD.b, 0, dP.b))
	e.do(backend.OpMaxPool2DBackward, e.b.MaxPool2DBackward(pp, dP.b, ARG.b, dA.b))
	e.do(backend.OpReLUBackward, e.b.ReLUBackward(A.b, dA.b, dY1.b, cp.OutLen()))
	e.do(backend.OpBiasGrad, e.b.BiasGrad(dY1.b, dBC.b, pix, 4))
	e.do(backend.OpConv2DBackwardFilter, e.b.Conv2DBackwardFilter(cp, X.b, dY1.b, dWC.b))
	e.do(backend.OpConv2DBackwardData, e.b.Conv2DBackwardData(cp, dY1.b, WC.b, dX.b))

	// float64 parameters, perturbed in place by the numerical derivative.
	px, pwc, pbc, pwd, pbd := to64(x), to64(wc), to64(bc), to64(wd), to64(bd)
	forward := func() float64 {
		y1, _ := refConv(cp, px, pwc)
		for i := range y1 {
			y1[i] = math.Max(y1[i]+pbc[i%4], 0)
		}
		pool, _ := refMaxPool(pp, y1)
		z, _ := refGemm(false, false, n, classes, feat, 1, pool, pwd, 0, nil)
		for i := range z {
			z[i] += pbd[i%classes]
		}
		_, loss, _ := refSCE(z, labels, n, classes)
		var s float64
		for _, l := range loss {
			s += l
		}
		return s / n
	}
	for _, t := range []struct {
		name string
		p    []float64
		ana  *dbuf
	}{{"dL/dx", px, dX}, {"dL/dconv_w", pwc, dWC}, {"dL/dconv_b", pbc, dBC}, {"dL/ddense_w", pwd, dWD}, {"dL/ddense_b", pbd, dBD}} {
		ana := e.read(t.name, t.ana)
		num := make([]float64, len(t.p))
		var mx float64
		for i := range t.p {
			orig := t.p[i]
			t.p[i] = orig + 1e-4
			fp := forward()
			t.p[i] = orig - 1e-4
			fm := forward()
			t.p[i] = orig
			num[i] = (fp - fm) / 2e-4
			mx = math.Max(mx, math.Abs(num[i]))
		}
		for i := range num {
			e.gradMismatch(t.name, i, num[i], float64(ana[i]), 1e-3*math.Abs(num[i])+1e-4*mx+1e-7)
		}
	}
}
