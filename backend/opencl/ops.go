//go:build opencl

package opencl

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/backend"
	clb "github.com/kiln-ml/kiln/bindings/opencl"
)

// ewGroup is the work-group size of the 1-D kernels (EW_GROUP in common.h).
const ewGroup = 64

// gemm tile geometry (gemm.cl): 64x64 tiles, 16x16 work-items.
const (
	gemmTile  = 64
	gemmGroup = 16
)

// colLimit is the im2col workspace size in elements (64 MiB) that chunk
// aims for: convolutions over larger batches run in chunks of images. One
// image's matrix may be larger; it is then a chunk of its own, up to
// maxElems() (convCheck refuses more).
const colLimit = 16 << 20

func i32(x int) int32 { return int32(x) }

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// run1 launches a 1-D kernel over n work-items (rounded up).
func (b *Backend) run1(op string, k *clb.Kernel, n int, args ...any) error {
	if err := k.SetArgs(args...); err != nil {
		return backend.Wrap(Name, op, err)
	}
	return backend.Wrap(Name, op, b.ctx.Launch(k, []int{roundUp(n, ewGroup)}, []int{ewGroup}))
}

// gemmCall is one GEMM launch on buffer slices (offsets in elements).
type gemmCall struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        *clb.Buffer
	aoff, boff     int
	coff           int
}

func b2i(v bool) int32 {
	if v {
		return 1
	}
	return 0
}

// gemm queues the tiled (or naive) SGEMM kernel.
func (b *Backend) gemm(op string, g gemmCall, naive bool) error {
	k := b.k.gemmTiled
	if naive {
		k = b.k.gemmNaive
	}
	if err := k.SetArgs(i32(g.m), i32(g.n), i32(g.k), b2i(g.transA), b2i(g.transB), g.alpha,
		g.a, i32(g.aoff), g.b, i32(g.boff), g.beta, g.c, i32(g.coff)); err != nil {
		return backend.Wrap(Name, op, err)
	}
	var global, local []int
	if naive {
		global = []int{roundUp(g.n, gemmGroup), roundUp(g.m, gemmGroup)}
		local = []int{gemmGroup, gemmGroup}
	} else {
		// every tile along dimension 0 (see gemm.cl), one group high
		tiles := ((g.n + gemmTile - 1) / gemmTile) * ((g.m + gemmTile - 1) / gemmTile)
		global = []int{tiles * gemmGroup, gemmGroup}
		local = []int{gemmGroup, gemmGroup}
	}
	return backend.Wrap(Name, op, b.ctx.Launch(k, global, local))
}

// Gemm computes C = alpha·op(A)·op(B) + beta·C (see backend.Backend) with
// the tiled kernel.
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a, bb backend.Buffer, beta float32, c backend.Buffer) error {
	return b.gemmOp(transA, transB, m, n, k, alpha, a, bb, beta, c, false)
}

// GemmNaive is Gemm with the naive one-work-item-per-element kernel; it
// exists for benchmarks that measure the tiled kernel's speedup.
func (b *Backend) GemmNaive(transA, transB bool, m, n, k int, alpha float32, a, bb backend.Buffer, beta float32, c backend.Buffer) error {
	return b.gemmOp(transA, transB, m, n, k, alpha, a, bb, beta, c, true)
}

func (b *Backend) gemmOp(transA, transB bool, m, n, k int, alpha float32, a, bb backend.Buffer, beta float32, c backend.Buffer, naive bool) error {
	op := backend.OpGemm
	mems, err := b.check(op,
		backend.Req{Name: "A", Buf: a, N: backend.Prod(m, k)},
		backend.Req{Name: "B", Buf: bb, N: backend.Prod(k, n)},
		backend.Req{Name: "C", Buf: c, N: backend.Prod(m, n), Out: true})
	if err != nil {
		return err
	}
	return b.gemm(op, gemmCall{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
		a: mems[0], b: mems[1], c: mems[2]}, naive)
}

// convCheck validates p and the three buffers of a convolution op. A
// convolution that needs the im2col workspace is refused when one image's
// matrix does not fit the largest buffer (its kernels index it with 32-bit
// ints).
func (b *Backend) convCheck(op string, p backend.ConvParams, xName string, x backend.Buffer,
	wName string, w backend.Buffer, yName string, y backend.Buffer) ([]*clb.Buffer, error) {
	if err := p.Validate(Name, op); err != nil {
		return nil, err
	}
	// The kernels index rows and columns with 32-bit ints, padding and
	// strides included (col2im's ih+PadTop-ky wrapped with a padding near
	// 2^31 and dropped a gradient).
	for _, v := range p.Extents() {
		if v > math.MaxInt32 {
			return nil, backend.ShapeError(Name, op, "strides, padding and the input rows and columns they reach must be at most %d (kernels index with 32-bit ints): %+v", math.MaxInt32, p)
		}
	}
	if per := backend.Prod(p.OutH, p.OutW, p.KH, p.KW, p.C); !direct(p) && (per < 0 || int64(per) > b.maxElems()) {
		size := "more than the int range"
		if per >= 0 {
			size = fmt.Sprint(per)
		}
		return nil, backend.ShapeError(Name, op, "the im2col matrix of one image (OutH·OutW·KH·KW·C = %d·%d·%d·%d·%d = %s elements) exceeds the largest buffer this backend allows on %s: %d elements (device max allocation %d bytes, 32-bit kernel indices): %+v",
			p.OutH, p.OutW, p.KH, p.KW, p.C, size, b.dev.Name, b.maxElems(), b.dev.MaxAlloc, p)
	}
	reqs := backend.ConvReqs(op, p, xName, x, wName, w, yName, y)
	return b.check(op, reqs[:]...)
}

// direct reports whether the convolution is a plain GEMM over the input
// (1x1 kernel, stride 1, no padding): then no im2col is needed.
func direct(p backend.ConvParams) bool {
	return p.KH == 1 && p.KW == 1 && p.StrideH == 1 && p.StrideW == 1 && p.PadTop == 0 && p.PadLeft == 0 &&
		p.OutH == p.H && p.OutW == p.W
}

// chunk returns how many images one im2col pass covers: as many as fit
// colLimit, at least one (convCheck has checked that one fits maxElems).
func (b *Backend) chunk(p backend.ConvParams) int {
	per := p.OutH * p.OutW * p.KH * p.KW * p.C
	lim := min(int64(colLimit), b.maxElems())
	return max(1, min(p.N, int(lim/int64(per))))
}

// workspace grows *ws to hold at least n elements.
func (b *Backend) workspace(op string, ws **clb.Buffer, n int) (*clb.Buffer, error) {
	size := int64(max(n, 1)) * 4
	if *ws != nil && (*ws).Size() >= size {
		return *ws, nil
	}
	if *ws != nil {
		if err := b.ctx.Finish(); err != nil { // queued work may still read it
			return nil, backend.Wrap(Name, op, err)
		}
		(*ws).Release()
		*ws = nil
	}
	m, err := b.ctx.NewBuffer(bucketBytes(n, b.dev.MaxAlloc))
	if err != nil {
		return nil, &backend.Error{Backend: Name, Op: op, Err: err, Msg: "allocating the workspace failed"}
	}
	*ws = m
	return m, nil
}

// convArgs are the geometry arguments of im2col and col2im after the two
// buffers: n0, nb, H, W, C, KH, KW, SH, SW, PT, PL, OH, OW.
func convArgs(p backend.ConvParams, n0, nb int) []any {
	return []any{i32(n0), i32(nb), i32(p.H), i32(p.W), i32(p.C), i32(p.KH), i32(p.KW),
		i32(p.StrideH), i32(p.StrideW), i32(p.PadTop), i32(p.PadLeft), i32(p.OutH), i32(p.OutW)}
}

// Conv2D computes y = conv(x, w) (no bias): im2col of a chunk of images,
// then one GEMM (rows × KH·KW·C) · (KH·KW·C × F) into y.
func (b *Backend) Conv2D(p backend.ConvParams, x, w, y backend.Buffer) error {
	op := backend.OpConv2D
	mems, err := b.convCheck(op, p, "x", x, "w", w, "y", y)
	if err != nil {
		return err
	}
	mx, mw, my := mems[0], mems[1], mems[2]
	kkc, pix := p.KH*p.KW*p.C, p.OutH*p.OutW
	if direct(p) {
		return b.gemm(op, gemmCall{m: p.N * pix, n: p.F, k: kkc, alpha: 1, a: mx, b: mw, c: my}, false)
	}
	nb := b.chunk(p)
	col, err := b.workspace(op, &b.col, nb*pix*kkc)
	if err != nil {
		return err
	}
	for n0 := 0; n0 < p.N; n0 += nb {
		cnt := min(nb, p.N-n0)
		if err := b.run1(op, b.k.im2col, cnt*pix*kkc, append([]any{mx, col}, convArgs(p, n0, cnt)...)...); err != nil {
			return err
		}
		if err := b.gemm(op, gemmCall{m: cnt * pix, n: p.F, k: kkc, alpha: 1, a: col, b: mw, c: my, coff: n0 * pix * p.F}, false); err != nil {
			return err
		}
	}
	return nil
}

// Conv2DBackwardData computes dx from dy and w (overwrites dx): a GEMM
// dcol = dy · wᵀ per chunk, then col2im (a gather, no atomics).
func (b *Backend) Conv2DBackwardData(p backend.ConvParams, dy, w, dx backend.Buffer) error {
	op := backend.OpConv2DBackwardData
	mems, err := b.convCheck(op, p, "dx", dx, "w", w, "dy", dy)
	if err != nil {
		return err
	}
	mdx, mw, mdy := mems[0], mems[1], mems[2]
	kkc, pix := p.KH*p.KW*p.C, p.OutH*p.OutW
	if direct(p) {
		return b.gemm(op, gemmCall{transB: true, m: p.N * pix, n: kkc, k: p.F, alpha: 1, a: mdy, b: mw, c: mdx}, false)
	}
	nb := b.chunk(p)
	col, err := b.workspace(op, &b.col, nb*pix*kkc)
	if err != nil {
		return err
	}
	for n0 := 0; n0 < p.N; n0 += nb {
		cnt := min(nb, p.N-n0)
		if err := b.gemm(op, gemmCall{transB: true, m: cnt * pix, n: kkc, k: p.F, alpha: 1, a: mdy, aoff: n0 * pix * p.F, b: mw, c: col}, false); err != nil {
			return err
		}
		if err := b.run1(op, b.k.col2im, cnt*p.H*p.W*p.C, append([]any{col, mdx}, convArgs(p, n0, cnt)...)...); err != nil {
			return err
		}
	}
	return nil
}

// Conv2DBackwardFilter computes dw from x and dy (overwrites dw): per chunk
// of images, dw (+)= colᵀ · dy.
func (b *Backend) Conv2DBackwardFilter(p backend.ConvParams, x, dy, dw backend.Buffer) error {
	op := backend.OpConv2DBackwardFilter
	mems, err := b.convCheck(op, p, "x", x, "dw", dw, "dy", dy)
	if err != nil {
		return err
	}
	mx, mdw, mdy := mems[0], mems[1], mems[2]
	kkc, pix := p.KH*p.KW*p.C, p.OutH*p.OutW
	if direct(p) {
		return b.gemm(op, gemmCall{transA: true, m: kkc, n: p.F, k: p.N * pix, alpha: 1, a: mx, b: mdy, c: mdw}, false)
	}
	nb := b.chunk(p)
	col, err := b.workspace(op, &b.col, nb*pix*kkc)
	if err != nil {
		return err
	}
	for n0 := 0; n0 < p.N; n0 += nb {
		cnt := min(nb, p.N-n0)
		if err := b.run1(op, b.k.im2col, cnt*pix*kkc, append([]any{mx, col}, convArgs(p, n0, cnt)...)...); err != nil {
			return err
		}
		beta := float32(1)
		if n0 == 0 {
			beta = 0
		}
		if err := b.gemm(op, gemmCall{transA: true, m: kkc, n: p.F, k: cnt * pix, alpha: 1, beta: beta, a: col, b: mdy, boff: n0 * pix * p.F, c: mdw}, false); err != nil {
			return err
		}
	}
	return nil
}

func poolArgs(p backend.PoolParams) []any {
	return []any{i32(p.N), i32(p.H), i32(p.W), i32(p.C), i32(p.KH), i32(p.KW), i32(p.StrideH), i32(p.StrideW), i32(p.OutH), i32(p.OutW)}
}

// MaxPool2D computes y and the argmax offsets of each window.
func (b *Backend) MaxPool2D(p backend.PoolParams, x, y, argmax backend.Buffer) error {
	op := backend.OpMaxPool2D
	if err := p.Validate(Name, op); err != nil {
		return err
	}
	in, out := p.InLen(), p.OutLen()
	m, err := b.check(op, backend.Req{Name: "x", Buf: x, N: in}, backend.Req{Name: "y", Buf: y, N: out, Out: true},
		backend.Req{Name: "argmax", Buf: argmax, N: out, Out: true})
	if err != nil {
		return err
	}
	return b.run1(op, b.k.poolFwd, out, append([]any{m[0], m[1], m[2]}, poolArgs(p)...)...)
}

// MaxPool2DBackward computes dx from dy and argmax (overwrites dx). Argmax
// entries that are not a window offset contribute nothing.
func (b *Backend) MaxPool2DBackward(p backend.PoolParams, dy, argmax, dx backend.Buffer) error {
	op := backend.OpMaxPool2DBackward
	if err := p.Validate(Name, op); err != nil {
		return err
	}
	in, out := p.InLen(), p.OutLen()
	m, err := b.check(op, backend.Req{Name: "dy", Buf: dy, N: out}, backend.Req{Name: "argmax", Buf: argmax, N: out},
		backend.Req{Name: "dx", Buf: dx, N: in, Out: true})
	if err != nil {
		return err
	}
	return b.run1(op, b.k.poolBwd, in, append([]any{m[0], m[1], m[2]}, poolArgs(p)...)...)
}

// BiasAdd adds bias[c] to x[r·cols+c] for r < rows, in place.
func (b *Backend) BiasAdd(x, bias backend.Buffer, rows, cols int) error {
	op := backend.OpBiasAdd
	m, err := b.check(op, backend.Req{Name: "x", Buf: x, N: backend.Prod(rows, cols)}, backend.Req{Name: "bias", Buf: bias, N: cols})
	if err != nil {
		return err
	}
	return b.run1(op, b.k.biasAdd, rows*cols, m[0], m[1], i32(rows*cols), i32(cols))
}

// BiasGrad sets db[c] = Σ_r dy[r·cols+c] (a fixed-order tree reduction).
func (b *Backend) BiasGrad(dy, db backend.Buffer, rows, cols int) error {
	op := backend.OpBiasGrad
	m, err := b.check(op, backend.Req{Name: "dy", Buf: dy, N: backend.Prod(rows, cols)}, backend.Req{Name: "db", Buf: db, N: cols, Out: true})
	if err != nil {
		return err
	}
	if err := b.k.biasGrad.SetArgs(m[0], m[1], i32(rows), i32(cols)); err != nil {
		return backend.Wrap(Name, op, err)
	}
	return backend.Wrap(Name, op, b.ctx.Launch(b.k.biasGrad, []int{roundUp(cols, 16), 16}, []int{16, 16}))
}

// ReLU sets y = max(x, 0) over n elements.
func (b *Backend) ReLU(x, y backend.Buffer, n int) error {
	op := backend.OpReLU
	m, err := b.check(op, backend.Req{Name: "x", Buf: x, N: n}, backend.Req{Name: "y", Buf: y, N: n})
	if err != nil {
		return err
	}
	return b.run1(op, b.k.relu, n, m[0], m[1], i32(n))
}

// ReLUBackward sets dx = dy where y > 0, else 0.
func (b *Backend) ReLUBackward(y, dy, dx backend.Buffer, n int) error {
	op := backend.OpReLUBackward
	m, err := b.check(op, backend.Req{Name: "y", Buf: y, N: n}, backend.Req{Name: "dy", Buf: dy, N: n}, backend.Req{Name: "dx", Buf: dx, N: n})
	if err != nil {
		return err
	}
	return b.run1(op, b.k.reluBwd, n, m[0], m[1], m[2], i32(n))
}

// Mul sets c = a·b element-wise over n elements.
func (b *Backend) Mul(a, bb, c backend.Buffer, n int) error {
	op := backend.OpMul
	m, err := b.check(op, backend.Req{Name: "a", Buf: a, N: n}, backend.Req{Name: "b", Buf: bb, N: n}, backend.Req{Name: "c", Buf: c, N: n})
	if err != nil {
		return err
	}
	return b.run1(op, b.k.mul, n, m[0], m[1], m[2], i32(n))
}

// DropoutMask sets mask[i] = 1/(1-rate) when backend.DropoutKeep(seed, i,
// rate), else 0, for i < n. rate must lie in [0, 1].
func (b *Backend) DropoutMask(mask backend.Buffer, n int, rate float32, seed uint64) error {
	op := backend.OpDropoutMask
	if !(rate >= 0 && rate <= 1) {
		return backend.ShapeError(Name, op, "rate %v is not in [0, 1]", rate)
	}
	m, err := b.check(op, backend.Req{Name: "mask", Buf: mask, N: n})
	if err != nil {
		return err
	}
	scale := float32(0)
	if rate < 1 {
		scale = 1 / (1 - rate)
	}
	return b.run1(op, b.k.dropout, n, m[0], i32(n), rate, scale, seed)
}

// Softmax sets y to the row-wise softmax of x (rows×cols).
func (b *Backend) Softmax(x, y backend.Buffer, rows, cols int) error {
	op := backend.OpSoftmax
	m, err := b.check(op, backend.Req{Name: "x", Buf: x, N: backend.Prod(rows, cols)}, backend.Req{Name: "y", Buf: y, N: backend.Prod(rows, cols)})
	if err != nil {
		return err
	}
	return b.run1(op, b.k.softmax, rows, m[0], m[1], i32(rows), i32(cols))
}

// badLabel returns the first row whose label is not an integer class index
// in [0, cols), or -1.
func badLabel(labels []float32, cols int) int {
	for r, l := range labels {
		if !(l >= 0 && l < float32(cols)) || l != float32(math.Trunc(float64(l))) {
			return r
		}
	}
	return -1
}

// SoftmaxCrossEntropy writes grad = (softmax - onehot)/rows, stats[0] = Σ
// loss and stats[1] = correct count. The labels are downloaded and checked
// first: a label that is not an integer class index in [0, cols) is a shape
// error naming the row, and nothing is launched.
func (b *Backend) SoftmaxCrossEntropy(logits, labels backend.Buffer, rows, cols int, grad, stats backend.Buffer) error {
	op := backend.OpSoftmaxCrossEntropy
	if rows <= 0 || cols <= 0 {
		return backend.ShapeError(Name, op, "rows %d and cols %d must be positive", rows, cols)
	}
	// The per-row loss/correct scratch holds 2·rows elements, indexed with
	// 32-bit ints (maxElems is within int32).
	if int64(rows) > b.maxElems()/2 {
		return backend.ShapeError(Name, op, "rows %d (cols %d) need a loss scratch of 2·rows = %d elements, more than the largest buffer this backend allows on %s: %d elements (device max allocation %d bytes, 32-bit kernel indices)",
			rows, cols, 2*int64(rows), b.dev.Name, b.maxElems(), b.dev.MaxAlloc)
	}
	m, err := b.check(op, backend.Req{Name: "logits", Buf: logits, N: backend.Prod(rows, cols)},
		backend.Req{Name: "labels", Buf: labels, N: rows},
		backend.Req{Name: "grad", Buf: grad, N: backend.Prod(rows, cols), Out: true},
		backend.Req{Name: "stats", Buf: stats, N: 2, Out: true})
	if err != nil {
		return err
	}
	if cap(b.labels) < rows {
		b.labels = make([]float32, rows)
	}
	lab := b.labels[:rows]
	if err := b.ctx.Read(lab, m[1], 0); err != nil {
		return backend.Wrap(Name, op, err)
	}
	if r := badLabel(lab, cols); r >= 0 {
		return backend.ShapeError(Name, op, "label %v at row %d is not a class index in [0, %d)", lab[r], r, cols)
	}
	part, err := b.workspace(op, &b.part, 2*rows)
	if err != nil {
		return err
	}
	if err := b.run1(op, b.k.xentRows, rows, m[0], m[1], m[2], part, i32(rows), i32(cols)); err != nil {
		return err
	}
	if err := b.k.xentReduce.SetArgs(part, m[3], i32(rows)); err != nil {
		return backend.Wrap(Name, op, err)
	}
	return backend.Wrap(Name, op, b.ctx.Launch(b.k.xentReduce, []int{64}, []int{64}))
}

// Adam applies one Adam step to n parameters (see backend.AdamParams). The
// bias-corrected rate is computed in float64 as the CPU backend does.
func (b *Backend) Adam(p backend.AdamParams, param, grad, m, v backend.Buffer, n int) error {
	op := backend.OpAdam
	if p.Step < 1 {
		return backend.ShapeError(Name, op, "step %d must be at least 1", p.Step)
	}
	if !(p.Beta1 >= 0 && p.Beta1 < 1) || !(p.Beta2 >= 0 && p.Beta2 < 1) {
		return backend.ShapeError(Name, op, "betas %v, %v must lie in [0, 1)", p.Beta1, p.Beta2)
	}
	mems, err := b.check(op, backend.Req{Name: "param", Buf: param, N: n}, backend.Req{Name: "grad", Buf: grad, N: n},
		backend.Req{Name: "m", Buf: m, N: n}, backend.Req{Name: "v", Buf: v, N: n})
	if err != nil {
		return err
	}
	t := float64(p.Step)
	lrt := float32(float64(p.LR) * math.Sqrt(1-math.Pow(float64(p.Beta2), t)) / (1 - math.Pow(float64(p.Beta1), t)))
	return b.run1(op, b.k.adam, n, mems[0], mems[1], mems[2], mems[3], i32(n), lrt, 1-p.Beta1, 1-p.Beta2, p.Eps)
}

// SGD applies one SGD-with-momentum step to n parameters.
func (b *Backend) SGD(p backend.SGDParams, param, grad, vel backend.Buffer, n int) error {
	op := backend.OpSGD
	m, err := b.check(op, backend.Req{Name: "param", Buf: param, N: n},
		backend.Req{Name: "grad", Buf: grad, N: n}, backend.Req{Name: "vel", Buf: vel, N: n})
	if err != nil {
		return err
	}
	return b.run1(op, b.k.sgd, n, m[0], m[1], m[2], i32(n), p.LR, p.Momentum)
}
