package backendtest

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/backend"
)

// The types below wrap the naive backend with one deliberate bug each.

type gemmIgnoresBeta struct{ *naive }

func (g gemmIgnoresBeta) Gemm(ta, tb bool, m, n, k int, alpha float32, a, b backend.Buffer, beta float32, c backend.Buffer) error {
	return g.naive.Gemm(ta, tb, m, n, k, alpha, a, b, 0, c)
}

type gemmReadsCWhenBetaZero struct{ *naive }

func (g gemmReadsCWhenBetaZero) Gemm(ta, tb bool, m, n, k int, alpha float32, a, b backend.Buffer, beta float32, c backend.Buffer) error {
	old := append([]float32(nil), data(c)[:m*n]...)
	if err := g.naive.Gemm(ta, tb, m, n, k, alpha, a, b, 0, c); err != nil {
		return err
	}
	for i := range old {
		data(c)[i] += beta * old[i] // 0·NaN = NaN
	}
	return nil
}

type gemmIgnoresTransB struct{ *naive }

func (g gemmIgnoresTransB) Gemm(ta, tb bool, m, n, k int, alpha float32, a, b backend.Buffer, beta float32, c backend.Buffer) error {
	return g.naive.Gemm(ta, false, m, n, k, alpha, a, b, beta, c)
}

// gemmTF32 rounds its inputs to TF32 (10 mantissa bits), as a tensor-core
// fast path would.
type gemmTF32 struct{ *naive }

func tf32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ 0x1fff) }

func (g gemmTF32) Gemm(ta, tb bool, m, n, k int, alpha float32, a, b backend.Buffer, beta float32, c backend.Buffer) error {
	if m*n*k < 100000 {
		return g.naive.Gemm(ta, tb, m, n, k, alpha, a, b, beta, c)
	}
	ra, rb := roundedCopy(g.naive, a), roundedCopy(g.naive, b)
	defer ra.Free()
	defer rb.Free()
	return g.naive.Gemm(ta, tb, m, n, k, alpha, ra, rb, beta, c)
}

func roundedCopy(n *naive, b backend.Buffer) backend.Buffer {
	out, _ := n.Alloc(b.Len())
	for i, v := range data(b) {
		data(out)[i] = tf32(v)
	}
	return out
}

type convFilterOffByOne struct{ *naive }

func (c convFilterOffByOne) Conv2DBackwardFilter(p backend.ConvParams, x, dy, dw backend.Buffer) error {
	q := p
	q.PadLeft++ // reads x one column to the left
	if err := c.naive.Conv2DBackwardFilter(q, x, dy, dw); err != nil {
		return c.naive.Conv2DBackwardFilter(p, x, dy, dw)
	}
	return nil
}

type convPadTopForBoth struct{ *naive }

func (c convPadTopForBoth) Conv2D(p backend.ConvParams, x, w, y backend.Buffer) error {
	p.PadLeft = p.PadTop
	return c.naive.Conv2D(p, x, w, y)
}

type convDataAccumulates struct{ *naive }

func (c convDataAccumulates) Conv2DBackwardData(p backend.ConvParams, dy, w, dx backend.Buffer) error {
	old := append([]float32(nil), data(dx)[:p.InLen()]...)
	if err := c.naive.Conv2DBackwardData(p, dy, w, dx); err != nil {
		return err
	}
	for i, v := range old {
		data(dx)[i] += v
	}
	return nil
}

type poolLastMax struct{ *naive }

func (pl poolLastMax) MaxPool2D(p backend.PoolParams, x, y, argmax backend.Buffer) error {
	if err := pl.naive.MaxPool2D(p, x, y, argmax); err != nil {
		return err
	}
	X, Y, A := data(x), data(y), data(argmax)
	for b := 0; b < p.N; b++ {
		for oy := 0; oy < p.OutH; oy++ {
			for ox := 0; ox < p.OutW; ox++ {
				for c := 0; c < p.C; c++ {
					o := ((b*p.OutH+oy)*p.OutW+ox)*p.C + c
					for k := 0; k < p.KH*p.KW; k++ {
						if X[poolIndex(p, b, oy, ox, c, k/p.KW, k%p.KW)] == Y[o] {
							A[o] = float32(k) // ends on the last maximum
						}
					}
				}
			}
		}
	}
	return nil
}

type poolBackwardOverwrites struct{ *naive }

func (pb poolBackwardOverwrites) MaxPool2DBackward(p backend.PoolParams, dy, argmax, dx backend.Buffer) error {
	if err := pb.naive.MaxPool2DBackward(p, dy, argmax, dx); err != nil {
		return err
	}
	DY, A, DX := data(dy), data(argmax), data(dx)
	for o := 0; o < p.OutLen(); o++ {
		c := o % p.C
		ox := o / p.C % p.OutW
		oy := o / p.C / p.OutW % p.OutH
		b := o / p.C / p.OutW / p.OutH
		a := int(A[o])
		DX[poolIndex(p, b, oy, ox, c, a/p.KW, a%p.KW)] = DY[o]
	}
	return nil
}

type reluWritesPastN struct{ *naive }

func (r reluWritesPastN) ReLU(x, y backend.Buffer, n int) error {
	if n < y.Len() && n < x.Len() {
		n++
	}
	return r.naive.ReLU(x, y, n)
}

type reluBackwardAtZero struct{ *naive }

func (r reluBackwardAtZero) ReLUBackward(y, dy, dx backend.Buffer, n int) error {
	if err := r.naive.ReLUBackward(y, dy, dx, n); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if data(y)[i] >= 0 {
			data(dx)[i] = data(dy)[i]
		}
	}
	return nil
}

type biasGradSkipsLastRow struct{ *naive }

func (bg biasGradSkipsLastRow) BiasGrad(dy, db backend.Buffer, rows, cols int) error {
	if rows > 1 {
		rows--
	}
	return bg.naive.BiasGrad(dy, db, rows, cols)
}

type dropoutUnscaled struct{ *naive }

func (d dropoutUnscaled) DropoutMask(mask backend.Buffer, n int, rate float32, seed uint64) error {
	if err := d.naive.DropoutMask(mask, n, rate, seed); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if data(mask)[i] != 0 {
			data(mask)[i] = 1
		}
	}
	return nil
}

type dropoutOtherHash struct{ *naive }

func (d dropoutOtherHash) DropoutMask(mask backend.Buffer, n int, rate float32, seed uint64) error {
	return d.naive.DropoutMask(mask, n, rate, seed+1)
}

type softmaxNoMax struct{ *naive }

func (s softmaxNoMax) Softmax(x, y backend.Buffer, rows, cols int) error {
	if err := s.naive.Softmax(x, y, rows, cols); err != nil {
		return err
	}
	X, Y := data(x), data(y)
	for r := 0; r < rows; r++ {
		var sum float32
		for j := 0; j < cols; j++ {
			Y[r*cols+j] = float32(math.Exp(float64(X[r*cols+j])))
			sum += Y[r*cols+j]
		}
		for j := 0; j < cols; j++ {
			Y[r*cols+j] /= sum
		}
	}
	return nil
}

type sceLastMax struct{ *naive }

func (s sceLastMax) SoftmaxCrossEntropy(logits, labels backend.Buffer, rows, cols int, grad, stats backend.Buffer) error {
	if err := s.naive.SoftmaxCrossEntropy(logits, labels, rows, cols, grad, stats); err != nil {
		return err
	}
	X, L := data(logits), data(labels)
	var correct float32
	for r := 0; r < rows; r++ {
		am := 0
		for j := 0; j < cols; j++ {
			if X[r*cols+j] >= X[r*cols+am] {
				am = j
			}
		}
		if am == int(L[r]) {
			correct++
		}
	}
	data(stats)[1] = correct
	return nil
}

type sceGradNotMean struct{ *naive }

func (s sceGradNotMean) SoftmaxCrossEntropy(logits, labels backend.Buffer, rows, cols int, grad, stats backend.Buffer) error {
	if err := s.naive.SoftmaxCrossEntropy(logits, labels, rows, cols, grad, stats); err != nil {
		return err
	}
	for i := 0; i < rows*cols; i++ {
		data(grad)[i] *= float32(rows)
	}
	return nil
}

type adamNoBiasCorrection struct{ *naive }

func (a adamNoBiasCorrection) Adam(p backend.AdamParams, param, grad, m, v backend.Buffer, n int) error {
	t := float64(p.Step)
	p.LR = float32(float64(p.LR) / (math.Sqrt(1-math.Pow(float64(p.Beta2), t)) / (1 - math.Pow(float64(p.Beta1), t))))
	return a.naive.Adam(p, param, grad, m, v, n)
}

// adamEpsHat scales ε by the bias correction (the paper's ε̂ form instead
// of Keras').
type adamEpsHat struct{ *naive }

func (a adamEpsHat) Adam(p backend.AdamParams, param, grad, m, v backend.Buffer, n int) error {
	p.Eps *= float32(math.Sqrt(1 - math.Pow(float64(p.Beta2), float64(p.Step))))
	return a.naive.Adam(p, param, grad, m, v, n)
}

type sgdIgnoresMomentum struct{ *naive }

func (s sgdIgnoresMomentum) SGD(p backend.SGDParams, param, grad, vel backend.Buffer, n int) error {
	p.Momentum = 0
	return s.naive.SGD(p, param, grad, vel, n)
}

type copyIgnoresN struct{ *naive }

func (c copyIgnoresN) Copy(dst, src backend.Buffer, n int) error {
	if err := c.naive.Copy(dst, src, n); err != nil {
		return err
	}
	copy(data(dst), data(src))
	return nil
}

type mulPanicsOnShort struct{ *naive }

func (m mulPanicsOnShort) Mul(a, b, c backend.Buffer, n int) error {
	A, B, C := data(a), data(b), data(c)
	for i := 0; i < n; i++ {
		C[i] = A[i] * B[i]
	}
	return nil
}

type errorsWithoutName struct{ *naive }

func (e errorsWithoutName) Fill(dst backend.Buffer, n int, v float32) error {
	if err := e.naive.Fill(dst, n, v); err != nil {
		return errors.New("Fill: bad size")
	}
	return nil
}

type softmaxNotImplemented struct{ *naive }

func (s softmaxNotImplemented) Softmax(x, y backend.Buffer, rows, cols int) error {
	return backend.NotImplemented(s.name, backend.OpSoftmax)
}

type opsMissingOne struct{ *naive }

func (o opsMissingOne) Ops() []string { return backend.AllOps()[1:] }

// TestSuiteCatchesBugs runs the relevant suites against backends with one
// deliberate bug each and checks that at least one case fails.
func TestSuiteCatchesBugs(t *testing.T) {
	dirty := newNaive()
	dirty.dirtyPool = true
	leaky := newNaive()
	leaky.leakyFree = true
	tests := []struct {
		name   string
		b      backend.Backend
		suites []string
		want   string // a substring of the failure report of the first suite
	}{
		{"gemm ignores beta", gemmIgnoresBeta{newNaive()}, []string{"Gemm"}, "C["},
		{"gemm reads C when beta=0", gemmReadsCWhenBetaZero{newNaive()}, []string{"Gemm"}, "NaN"},
		{"gemm ignores transB", gemmIgnoresTransB{newNaive()}, []string{"Gemm"}, "C["},
		{"gemm rounds to TF32", gemmTF32{newNaive()}, []string{"Gemm"}, "exact_fp32"},
		{"conv backward filter off by one", convFilterOffByOne{newNaive()}, []string{"Conv2DBackwardFilter", "GradCheck/Conv2D/n3", "GradCheck/CNN"}, "dw["},
		{"conv uses PadTop for PadLeft", convPadTopForBoth{newNaive()}, []string{"Conv2D"}, "y["},
		{"conv backward data accumulates", convDataAccumulates{newNaive()}, []string{"Conv2DBackwardData"}, "NaN"},
		{"maxpool last max wins", poolLastMax{newNaive()}, []string{"MaxPool2D"}, "argmax["},
		{"maxpool backward overwrites", poolBackwardOverwrites{newNaive()}, []string{"MaxPool2DBackward"}, "dx["},
		{"relu writes past n", reluWritesPastN{newNaive()}, []string{"ReLU"}, "wrote past"},
		{"relu backward passes y=0", reluBackwardAtZero{newNaive()}, []string{"ReLUBackward"}, "dx["},
		{"bias grad skips last row", biasGradSkipsLastRow{newNaive()}, []string{"BiasGrad", "GradCheck/BiasAdd", "GradCheck/CNN"}, "db["},
		{"dropout unscaled", dropoutUnscaled{newNaive()}, []string{"DropoutMask"}, "keep"},
		{"dropout other hash", dropoutOtherHash{newNaive()}, []string{"DropoutMask"}, "DropoutKeep"},
		{"softmax without max subtraction", softmaxNoMax{newNaive()}, []string{"Softmax"}, "NaN"},
		{"cross-entropy argmax last max", sceLastMax{newNaive()}, []string{"SoftmaxCrossEntropy"}, "correct count"},
		{"cross-entropy grad not divided by rows", sceGradNotMean{newNaive()}, []string{"SoftmaxCrossEntropy", "GradCheck/SoftmaxCrossEntropy", "GradCheck/CNN"}, "grad"},
		{"adam without bias correction", adamNoBiasCorrection{newNaive()}, []string{"Adam"}, "param"},
		{"adam with epsilon hat", adamEpsHat{newNaive()}, []string{"Adam"}, "param"},
		{"sgd ignores momentum", sgdIgnoresMomentum{newNaive()}, []string{"SGD"}, "vel"},
		{"copy ignores n", copyIgnoresN{newNaive()}, []string{"Copy"}, "Copy["},
		{"pool does not clear recycled buffers", dirty, []string{"Alloc"}, "not zero-filled"},
		{"free does not update stats", leaky, []string{"Fill"}, "leak"},
		{"mul panics on short buffers", mulPanicsOnShort{newNaive()}, []string{"Errors"}, "panicked"},
		{"error without backend name", errorsWithoutName{newNaive()}, []string{"Errors"}, "does not name the backend"},
		{"softmax not implemented", softmaxNotImplemented{newNaive()}, []string{"Softmax"}, "not implemented"},
		{"Ops misses an op", opsMissingOne{newNaive()}, []string{"Contract"}, "does not list Alloc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for si, s := range tc.suites {
				fails := checkSuite(tc.b, s)
				if len(fails) == 0 {
					t.Errorf("suite %s passed a backend with the bug %q", s, tc.name)
					continue
				}
				var report strings.Builder
				for _, err := range fails {
					report.WriteString(err.Error())
				}
				if si == 0 && !strings.Contains(report.String(), tc.want) {
					t.Errorf("suite %s failed, but no report mentions %q:\n%.2000s", s, tc.want, report.String())
				}
			}
		})
	}
}

// TestSuiteNamesEveryOp checks that every op of the contract has a suite of
// its own (besides Errors and GradCheck), so Run names failures by op.
func TestSuiteNamesEveryOp(t *testing.T) {
	have := map[string]bool{}
	for _, s := range suites() {
		have[s.name] = len(s.cases) > 0
	}
	for _, op := range backend.AllOps() {
		name := op
		if op == backend.OpUpload || op == backend.OpDownload {
			name = "UploadDownload"
		}
		if !have[name] {
			t.Errorf("no suite covers %s", op)
		}
	}
}

// TestRunCaseReportsPanics checks that a panicking case becomes a failure
// and that its buffers are still freed.
func TestRunCaseReportsPanics(t *testing.T) {
	b := newNaive()
	err := runCase(b, "panics", func(e *env) {
		e.output(10, 0)
		panic("boom")
	})
	if err == nil || !strings.Contains(err.Error(), "panic: boom") {
		t.Fatalf("runCase = %v, want a panic report", err)
	}
	if live := b.Stats().LiveBuffers; live != 0 {
		t.Errorf("%d buffers left live after a panicking case", live)
	}
}
