package backendtest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kiln-ml/kiln/backend"
)

// bufOp is an op call over buffers of the given (valid) lengths. The Errors
// suite derives from it one case per buffer that is one element short and
// one per buffer that is nil.
type bufOp struct {
	op    string
	tag   string // distinguishes several calls of one op
	names []string
	sizes []int
	call  func(b backend.Backend, bufs []backend.Buffer) error
}

// sizeCase calls an op with valid, generously sized buffers and bad sizes
// or parameters.
type sizeCase struct {
	op, name string
	call     func(b backend.Backend, big func() backend.Buffer) error
}

const bigLen = 10000

func errorSuites() []suite {
	cp := convShape{2, 6, 6, 3, 3, 3, 4, 1, 1, "same"}.params()
	pp := poolShape{2, 6, 6, 3, 2, 2, 2, 2}.params()
	conv := func(op string, f func(b backend.Backend, p backend.ConvParams, x, y, z backend.Buffer) error, names []string, sizes []int) bufOp {
		return bufOp{op, "", names, sizes, func(b backend.Backend, bs []backend.Buffer) error { return f(b, cp, bs[0], bs[1], bs[2]) }}
	}
	pool := func(op string, f func(b backend.Backend, p backend.PoolParams, x, y, z backend.Buffer) error, names []string, sizes []int) bufOp {
		return bufOp{op, "", names, sizes, func(b backend.Backend, bs []backend.Buffer) error { return f(b, pp, bs[0], bs[1], bs[2]) }}
	}
	adam := backend.AdamParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-7, Step: 1}
	sgd := backend.SGDParams{LR: 0.1, Momentum: 0.9}
	var bufOps []bufOp
	for _, tr := range [][2]bool{{false, false}, {true, true}} {
		bufOps = append(bufOps, bufOp{backend.OpGemm, tn(tr[0]) + tn(tr[1]), []string{"A", "B", "C"}, []int{3 * 4, 4 * 5, 3 * 5},
			func(b backend.Backend, bs []backend.Buffer) error {
				return b.Gemm(tr[0], tr[1], 3, 5, 4, 1, bs[0], bs[1], 0, bs[2])
			}})
	}
	bufOps = append(bufOps,
		bufOp{backend.OpUpload, "", []string{"dst"}, []int{5}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.Upload(bs[0], make([]float32, 5))
		}},
		bufOp{backend.OpDownload, "", []string{"src"}, []int{5}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.Download(make([]float32, 5), bs[0])
		}},
		bufOp{backend.OpFill, "", []string{"dst"}, []int{5}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.Fill(bs[0], 5, 1)
		}},
		bufOp{backend.OpCopy, "", []string{"dst", "src"}, []int{5, 5}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.Copy(bs[0], bs[1], 5)
		}},
		conv(backend.OpConv2D, backend.Backend.Conv2D, []string{"x", "w", "y"}, []int{cp.InLen(), cp.FilterLen(), cp.OutLen()}),
		conv(backend.OpConv2DBackwardData, backend.Backend.Conv2DBackwardData, []string{"dy", "w", "dx"}, []int{cp.OutLen(), cp.FilterLen(), cp.InLen()}),
		conv(backend.OpConv2DBackwardFilter, backend.Backend.Conv2DBackwardFilter, []string{"x", "dy", "dw"}, []int{cp.InLen(), cp.OutLen(), cp.FilterLen()}),
		pool(backend.OpMaxPool2D, backend.Backend.MaxPool2D, []string{"x", "y", "argmax"}, []int{pp.InLen(), pp.OutLen(), pp.OutLen()}),
		pool(backend.OpMaxPool2DBackward, backend.Backend.MaxPool2DBackward, []string{"dy", "argmax", "dx"}, []int{pp.OutLen(), pp.OutLen(), pp.InLen()}),
		bufOp{backend.OpBiasAdd, "", []string{"x", "bias"}, []int{4 * 6, 6}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.BiasAdd(bs[0], bs[1], 4, 6)
		}},
		bufOp{backend.OpBiasGrad, "", []string{"dy", "db"}, []int{4 * 6, 6}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.BiasGrad(bs[0], bs[1], 4, 6)
		}},
		bufOp{backend.OpReLU, "", []string{"x", "y"}, []int{9, 9}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.ReLU(bs[0], bs[1], 9)
		}},
		bufOp{backend.OpReLUBackward, "", []string{"y", "dy", "dx"}, []int{9, 9, 9}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.ReLUBackward(bs[0], bs[1], bs[2], 9)
		}},
		bufOp{backend.OpMul, "", []string{"a", "b", "c"}, []int{9, 9, 9}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.Mul(bs[0], bs[1], bs[2], 9)
		}},
		bufOp{backend.OpDropoutMask, "", []string{"mask"}, []int{9}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.DropoutMask(bs[0], 9, 0.5, 1)
		}},
		bufOp{backend.OpSoftmax, "", []string{"x", "y"}, []int{4 * 6, 4 * 6}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.Softmax(bs[0], bs[1], 4, 6)
		}},
		bufOp{backend.OpSoftmaxCrossEntropy, "", []string{"logits", "labels", "grad", "stats"}, []int{4 * 6, 4, 4 * 6, 2}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.SoftmaxCrossEntropy(bs[0], bs[1], 4, 6, bs[2], bs[3])
		}},
		bufOp{backend.OpAdam, "", []string{"param", "grad", "m", "v"}, []int{9, 9, 9, 9}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.Adam(adam, bs[0], bs[1], bs[2], bs[3], 9)
		}},
		bufOp{backend.OpSGD, "", []string{"param", "grad", "vel"}, []int{9, 9, 9}, func(b backend.Backend, bs []backend.Buffer) error {
			return b.SGD(sgd, bs[0], bs[1], bs[2], 9)
		}},
	)

	var cases []testCase
	for _, o := range bufOps {
		prefix := o.op + "/"
		if o.tag != "" {
			prefix += o.tag + "_"
		}
		for i, name := range o.names {
			for _, mode := range []string{"short", "nil"} {
				cases = append(cases, testCase{prefix + mode + "_" + name, func(e *env) {
					bufs := make([]backend.Buffer, len(o.sizes))
					for j, n := range o.sizes {
						switch {
						case j != i:
							bufs[j] = e.raw(n).b
						case mode == "short":
							bufs[j] = e.raw(n - 1).b
						}
					}
					e.expectShapeError(o.op, func() error { return o.call(e.b, bufs) })
				}})
			}
		}
	}

	badConv := func(f func(p *backend.ConvParams)) backend.ConvParams { p := cp; f(&p); return p }
	badPool := func(f func(p *backend.PoolParams)) backend.PoolParams { p := pp; f(&p); return p }
	var sizeCases []sizeCase
	for _, bc := range []struct {
		name string
		p    backend.ConvParams
	}{
		{"OutH_too_large", badConv(func(p *backend.ConvParams) { p.OutH = p.H + p.PadTop + 1 })},
		{"OutW_too_large", badConv(func(p *backend.ConvParams) { p.OutW = p.W + p.PadLeft + 1 })},
		{"zero_C", badConv(func(p *backend.ConvParams) { p.C = 0 })},
		{"negative_N", badConv(func(p *backend.ConvParams) { p.N = -1 })},
		{"zero_F", badConv(func(p *backend.ConvParams) { p.F = 0 })},
		{"zero_stride", badConv(func(p *backend.ConvParams) { p.StrideH = 0 })},
		{"negative_pad", badConv(func(p *backend.ConvParams) { p.PadLeft = -1 })},
		{"zero_OutW", badConv(func(p *backend.ConvParams) { p.OutW = 0 })},
	} {
		sizeCases = append(sizeCases,
			sizeCase{backend.OpConv2D, bc.name, func(b backend.Backend, big func() backend.Buffer) error {
				return b.Conv2D(bc.p, big(), big(), big())
			}},
			sizeCase{backend.OpConv2DBackwardData, bc.name, func(b backend.Backend, big func() backend.Buffer) error {
				return b.Conv2DBackwardData(bc.p, big(), big(), big())
			}},
			sizeCase{backend.OpConv2DBackwardFilter, bc.name, func(b backend.Backend, big func() backend.Buffer) error {
				return b.Conv2DBackwardFilter(bc.p, big(), big(), big())
			}})
	}
	for _, bc := range []struct {
		name string
		p    backend.PoolParams
	}{
		{"window_past_bottom", badPool(func(p *backend.PoolParams) { p.OutH++ })},
		{"window_past_right", badPool(func(p *backend.PoolParams) { p.OutW++ })},
		{"zero_KH", badPool(func(p *backend.PoolParams) { p.KH = 0 })},
		{"zero_stride", badPool(func(p *backend.PoolParams) { p.StrideW = 0 })},
		{"negative_C", badPool(func(p *backend.PoolParams) { p.C = -2 })},
	} {
		sizeCases = append(sizeCases,
			sizeCase{backend.OpMaxPool2D, bc.name, func(b backend.Backend, big func() backend.Buffer) error {
				return b.MaxPool2D(bc.p, big(), big(), big())
			}},
			sizeCase{backend.OpMaxPool2DBackward, bc.name, func(b backend.Backend, big func() backend.Buffer) error {
				return b.MaxPool2DBackward(bc.p, big(), big(), big())
			}})
	}
	for _, s := range [][3]int{{0, 5, 4}, {3, -1, 4}, {3, 5, 0}, {-3, 5, 4}} {
		sizeCases = append(sizeCases, sizeCase{backend.OpGemm, fmt.Sprintf("m%d_n%d_k%d", s[0], s[1], s[2]), func(b backend.Backend, big func() backend.Buffer) error {
			return b.Gemm(false, false, s[0], s[1], s[2], 1, big(), big(), 0, big())
		}})
	}
	for _, n := range []int{0, -1} {
		tag := fmt.Sprintf("n%d", n)
		sizeCases = append(sizeCases,
			sizeCase{backend.OpFill, tag, func(b backend.Backend, big func() backend.Buffer) error { return b.Fill(big(), n, 1) }},
			sizeCase{backend.OpCopy, tag, func(b backend.Backend, big func() backend.Buffer) error { return b.Copy(big(), big(), n) }},
			sizeCase{backend.OpReLU, tag, func(b backend.Backend, big func() backend.Buffer) error { return b.ReLU(big(), big(), n) }},
			sizeCase{backend.OpReLUBackward, tag, func(b backend.Backend, big func() backend.Buffer) error {
				return b.ReLUBackward(big(), big(), big(), n)
			}},
			sizeCase{backend.OpMul, tag, func(b backend.Backend, big func() backend.Buffer) error { return b.Mul(big(), big(), big(), n) }},
			sizeCase{backend.OpDropoutMask, tag, func(b backend.Backend, big func() backend.Buffer) error {
				return b.DropoutMask(big(), n, 0.5, 1)
			}},
			sizeCase{backend.OpAdam, tag, func(b backend.Backend, big func() backend.Buffer) error {
				return b.Adam(adam, big(), big(), big(), big(), n)
			}},
			sizeCase{backend.OpSGD, tag, func(b backend.Backend, big func() backend.Buffer) error {
				return b.SGD(sgd, big(), big(), big(), n)
			}},
		)
	}
	for _, rc := range [][2]int{{0, 6}, {4, 0}, {-1, 6}, {4, -6}} {
		tag := fmt.Sprintf("rows%d_cols%d", rc[0], rc[1])
		r, c := rc[0], rc[1]
		sizeCases = append(sizeCases,
			sizeCase{backend.OpBiasAdd, tag, func(b backend.Backend, big func() backend.Buffer) error { return b.BiasAdd(big(), big(), r, c) }},
			sizeCase{backend.OpBiasGrad, tag, func(b backend.Backend, big func() backend.Buffer) error { return b.BiasGrad(big(), big(), r, c) }},
			sizeCase{backend.OpSoftmax, tag, func(b backend.Backend, big func() backend.Buffer) error { return b.Softmax(big(), big(), r, c) }},
			sizeCase{backend.OpSoftmaxCrossEntropy, tag, func(b backend.Backend, big func() backend.Buffer) error {
				return b.SoftmaxCrossEntropy(big(), big(), r, c, big(), big())
			}},
		)
	}
	// An output that is also one of the op's other buffers: the op would
	// read what it is overwriting (on a GPU, threads race). Every argument
	// is a distinct, generous buffer except the two named, which are one.
	type alias struct {
		op, out, in string
		call        func(b backend.Backend, bs map[string]backend.Buffer) error
	}
	var aliases []alias
	gemm := func(b backend.Backend, bs map[string]backend.Buffer) error {
		return b.Gemm(false, false, 3, 5, 4, 1, bs["A"], bs["B"], 0, bs["C"])
	}
	convF := func(b backend.Backend, bs map[string]backend.Buffer) error {
		return b.Conv2D(cp, bs["x"], bs["w"], bs["y"])
	}
	convD := func(b backend.Backend, bs map[string]backend.Buffer) error {
		return b.Conv2DBackwardData(cp, bs["dy"], bs["w"], bs["dx"])
	}
	convW := func(b backend.Backend, bs map[string]backend.Buffer) error {
		return b.Conv2DBackwardFilter(cp, bs["x"], bs["dy"], bs["dw"])
	}
	poolF := func(b backend.Backend, bs map[string]backend.Buffer) error {
		return b.MaxPool2D(pp, bs["x"], bs["y"], bs["argmax"])
	}
	poolB := func(b backend.Backend, bs map[string]backend.Buffer) error {
		return b.MaxPool2DBackward(pp, bs["dy"], bs["argmax"], bs["dx"])
	}
	xent := func(b backend.Backend, bs map[string]backend.Buffer) error {
		return b.SoftmaxCrossEntropy(bs["logits"], bs["labels"], 4, 6, bs["grad"], bs["stats"])
	}
	biasGrad := func(b backend.Backend, bs map[string]backend.Buffer) error {
		return b.BiasGrad(bs["dy"], bs["db"], 4, 6)
	}
	aliases = append(aliases,
		alias{backend.OpBiasGrad, "db", "dy", biasGrad},
		alias{backend.OpSoftmaxCrossEntropy, "grad", "logits", xent}, alias{backend.OpSoftmaxCrossEntropy, "stats", "logits", xent},
		alias{backend.OpSoftmaxCrossEntropy, "stats", "grad", xent},
		alias{backend.OpGemm, "C", "A", gemm}, alias{backend.OpGemm, "C", "B", gemm},
		alias{backend.OpConv2D, "y", "x", convF}, alias{backend.OpConv2D, "y", "w", convF},
		alias{backend.OpConv2DBackwardData, "dx", "dy", convD}, alias{backend.OpConv2DBackwardData, "dx", "w", convD},
		alias{backend.OpConv2DBackwardFilter, "dw", "x", convW}, alias{backend.OpConv2DBackwardFilter, "dw", "dy", convW},
		alias{backend.OpMaxPool2D, "y", "x", poolF}, alias{backend.OpMaxPool2D, "argmax", "x", poolF}, alias{backend.OpMaxPool2D, "argmax", "y", poolF},
		alias{backend.OpMaxPool2DBackward, "dx", "dy", poolB}, alias{backend.OpMaxPool2DBackward, "dx", "argmax", poolB},
	)
	for _, a := range aliases {
		cases = append(cases, testCase{a.op + "/" + a.out + "_is_" + a.in, func(e *env) {
			bs := map[string]backend.Buffer{}
			for _, n := range []string{"A", "B", "C", "x", "w", "y", "dy", "dx", "dw", "argmax", "logits", "grad", "stats", "db"} {
				bs[n] = e.raw(bigLen).b
			}
			bs["labels"] = e.input(make([]float32, bigLen)).b // class 0: valid labels
			bs[a.out] = bs[a.in]
			e.expectShapeError(a.op, func() error { return a.call(e.b, bs) })
		}})
	}
	for _, sc := range sizeCases {
		cases = append(cases, testCase{sc.op + "/" + sc.name, func(e *env) {
			e.expectShapeError(sc.op, func() error {
				return sc.call(e.b, func() backend.Buffer { return e.raw(bigLen).b })
			})
		}})
	}
	cases = append(cases, testCase{backend.OpAlloc + "/negative", func(e *env) {
		var buf backend.Buffer
		e.expectShapeError(backend.OpAlloc, func() error {
			var err error
			buf, err = e.b.Alloc(-1)
			return err
		})
		if buf != nil {
			buf.Free()
		}
	}})
	cases = append(cases, testCase{"still_works_after_errors", func(e *env) {
		// A rejected call must not poison the queue: Sync succeeds and a
		// valid op still runs.
		d := e.raw(4)
		_ = e.b.Fill(d.b, 5, 1)
		e.do("Sync", e.b.Sync())
		out := e.output(4, 0)
		e.do(backend.OpFill, e.b.Fill(out.b, 4, 2))
		e.exact("Fill after error", e.read("Fill", out), []float64{2, 2, 2, 2})
	}})
	return []suite{{name: "Errors", cases: cases}}
}

// expectShapeError runs call, which must return an error matching
// backend.ErrShape whose message names the backend and op, and must not
// panic. The backend must still Sync cleanly afterwards.
func (e *env) expectShapeError(op string, call func() error) {
	var err error
	panicked := func() (p any) {
		defer func() { p = recover() }()
		err = call()
		return nil
	}()
	switch {
	case panicked != nil:
		e.fatalf("%s panicked instead of returning an ErrShape error: %v", op, panicked)
	case err == nil:
		e.fatalf("%s accepted bad sizes: want an error matching backend.ErrShape", op)
	case errors.Is(err, backend.ErrNotImplemented):
		e.fatalf("%s: not implemented (conformance requires every op): %v", op, err)
	case !errors.Is(err, backend.ErrShape):
		e.failf("%s: error %q does not match backend.ErrShape", op, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, e.b.Name()) {
		e.failf("%s: error %q does not name the backend %q", op, msg, e.b.Name())
	}
	if !strings.Contains(msg, op) {
		e.failf("%s: error %q does not name the op", op, msg)
	}
	if err := e.b.Sync(); err != nil {
		e.failf("%s: Sync after a rejected call: %v", op, err)
	}
}
