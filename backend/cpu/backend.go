package cpu

import (
	"errors"
	"math"
	"sync/atomic"

	"github.com/kiln-ml/kiln/backend"
	kern "github.com/kiln-ml/kiln/kernels/cpu"
)

// Name is the registry name of this backend.
const Name = "cpu"

// errClosed is wrapped by every op called after Close.
var errClosed = errors.New("backend is closed")

// Backend is the CPU backend. Create it with New (or backend.Open("cpu"))
// and release it with Close. It must be used from one goroutine at a time.
type Backend struct {
	pool   *kern.Pool
	ws     kern.Workspace
	dev    backend.DeviceInfo
	closed bool

	live      atomic.Int64
	liveElems atomic.Int64
	allocs    atomic.Int64

	pending     pendingConv
	pendingBack pendingReLUBack

	gens uint64 // the last Buffer.gen handed out
}

// pendingReLUBack is a ReLUBackward that has been queued but not run, so
// that a BiasGrad of its whole output that directly follows it (the
// backward pass of a layer with a fused ReLU) sums each chunk of rows right
// after it is computed, while it is in cache (kern.ReLUBackwardBiasGrad;
// the bits of the two ops). At most one op is queued at a time.
type pendingReLUBack struct {
	on        bool
	y, dy, dx []float32
	dxBuf     *Buffer
}

// pendingConv is a forward convolution that Conv2D has queued but not run.
// Its work is deferred to the next op (or Sync, Download, Close,
// Buffer.Data), so that a BiasAdd of its whole output and a ReLU of its
// whole output in place that directly follow it (the calls of a
// convolution layer), and then a MaxPool2D of its output, run in its
// epilogue, on each chunk of output rows while it is in cache, instead of
// as more passes over memory. The contract allows this: ops run in order
// on one queue and only Sync and Download wait. The results are the bits
// of the separate ops.
type pendingConv struct {
	on                   bool
	s                    kern.ConvShape
	x, w, y              []float32
	xBuf, wBuf, yBuf     *Buffer
	biasBuf              backend.Buffer
	e                    kern.ConvEpilogue
	poolYBuf, poolArgBuf backend.Buffer
}

// flush runs the queued op, if any.
func (b *Backend) flush() {
	if q := &b.pending; q.on {
		kern.Conv2DForwardEpilogue(b.pool, &b.ws, q.s, q.x, q.w, q.y, q.e)
		*q = pendingConv{}
	}
	if q := &b.pendingBack; q.on {
		kern.ReLUBackward(b.pool, q.y, q.dy, q.dx)
		*q = pendingReLUBack{}
	}
}

// New returns a CPU backend with a worker pool of GOMAXPROCS workers.
func New() *Backend {
	return &Backend{pool: kern.NewPool(0), dev: deviceInfo()}
}

var (
	_ backend.Backend   = (*Backend)(nil)
	_ backend.Discarder = (*Backend)(nil)
	_ backend.Rester    = (*Backend)(nil)
)

// Name returns "cpu".
func (b *Backend) Name() string { return Name }

// Device describes the host CPU.
func (b *Backend) Device() backend.DeviceInfo { return b.dev }

// Ops lists every op of the contract: the CPU backend implements them all.
func (b *Backend) Ops() []string { return backend.AllOps() }

// Stats reports live buffers and elements and the number of Alloc calls.
func (b *Backend) Stats() backend.Stats {
	return backend.Stats{
		LiveBuffers:  int(b.live.Load()),
		LiveElements: b.liveElems.Load(),
		Allocs:       b.allocs.Load(),
	}
}

// Close stops the worker pool. Buffers still live stay readable by the Go
// garbage collector's rules but every op returns an error afterwards.
// Closing twice is a no-op.
func (b *Backend) Close() error {
	if b.closed {
		return nil
	}
	b.flush()
	b.closed = true
	b.pool.Close()
	b.ws = kern.Workspace{} // drop the scratch memory: live Buffers keep b reachable
	return nil
}

// Sync runs the queued op, if any, and returns nil: every op has
// finished when it returns.
func (b *Backend) Sync() error {
	if b.closed {
		return backend.Wrap(Name, "Sync", errClosed)
	}
	b.flush()
	return nil
}

// maxElems bounds a single allocation: the host's memory when known.
func (b *Backend) maxElems() int64 {
	lim := int64(math.MaxInt32) * 16 // 32 Gi elements
	if b.dev.MemoryBytes > 0 {
		lim = b.dev.MemoryBytes / 4
	}
	return lim
}

// Alloc returns a zero-filled buffer of n float32 elements.
func (b *Backend) Alloc(n int) (backend.Buffer, error) {
	if b.closed {
		return nil, backend.Wrap(Name, backend.OpAlloc, errClosed)
	}
	if n < 0 {
		return nil, backend.ShapeError(Name, backend.OpAlloc, "negative size %d", n)
	}
	if int64(n) > b.maxElems() {
		return nil, backend.ShapeError(Name, backend.OpAlloc, "%d elements (%d bytes) exceed the host memory of %d bytes",
			n, int64(n)*4, b.dev.MemoryBytes)
	}
	buf := &Buffer{data: make([]float32, n), owner: b}
	b.touch(buf)
	b.live.Add(1)
	b.liveElems.Add(int64(n))
	b.allocs.Add(1)
	return buf, nil
}

// check validates the buffers an op uses (see validate) and then runs the
// queued op, if any (see flush), so that the op sees its results.
func (b *Backend) check(op string, reqs ...backend.Req) error {
	if err := b.validate(op, reqs...); err != nil {
		return err
	}
	b.flush()
	return nil
}

// validate checks the buffers an op uses: each must be a live buffer of
// this backend holding at least the required elements. Sizes are checked by
// backend.Need so every backend words these errors alike.
func (b *Backend) validate(op string, reqs ...backend.Req) error {
	if b.closed {
		return backend.Wrap(Name, op, errClosed)
	}
	for i := range reqs {
		r := &reqs[i]
		if r.Buf == nil {
			continue // Need reports it
		}
		cb, ok := r.Buf.(*Buffer)
		switch {
		case !ok:
			return backend.ShapeError(Name, op, "%s: buffer of type %T does not belong to the cpu backend", r.Name, r.Buf)
		case cb == nil:
			r.Buf = nil
		case cb.owner != b:
			return backend.ShapeError(Name, op, "%s: buffer belongs to another cpu backend", r.Name)
		case cb.freed.Load():
			return backend.ShapeError(Name, op, "%s: buffer was freed", r.Name)
		}
	}
	if err := backend.Need(Name, op, reqs...); err != nil {
		return err
	}
	for _, r := range reqs {
		if r.Buf != nil {
			b.touch(r.Buf.(*Buffer))
		}
	}
	return nil
}

// touch gives buf a new generation: every buffer an op is given, read or
// written, gets one (see validate), so a generation that has not changed
// since an earlier op proves that no op has written the buffer since. The
// forward convolution keeps its filter's (see Conv2D) and passes it to the
// kernels, which reuse work done on the same filter values (Winograd's
// transformed filter). Buffers whose slice Data has handed out have none.
func (b *Backend) touch(buf *Buffer) {
	if buf.exposed {
		return
	}
	b.gens++
	buf.gen = b.gens
}

// data returns the backing slice of a buffer that check accepted.
func data(buf backend.Buffer) []float32 { return buf.(*Buffer).data }

// Upload copies src into the first len(src) elements of dst.
func (b *Backend) Upload(dst backend.Buffer, src []float32) error {
	if err := b.check(backend.OpUpload, backend.Req{Name: "dst", Buf: dst, N: len(src)}); err != nil {
		return err
	}
	kern.Copy(b.pool, data(dst)[:len(src)], src)
	return nil
}

// Download copies the first len(dst) elements of src into dst.
func (b *Backend) Download(dst []float32, src backend.Buffer) error {
	if err := b.check(backend.OpDownload, backend.Req{Name: "src", Buf: src, N: len(dst)}); err != nil {
		return err
	}
	kern.Copy(b.pool, dst, data(src)[:len(dst)])
	return nil
}

// Fill sets the first n elements of dst to v.
func (b *Backend) Fill(dst backend.Buffer, n int, v float32) error {
	if err := b.check(backend.OpFill, backend.Req{Name: "dst", Buf: dst, N: n}); err != nil {
		return err
	}
	kern.Fill(b.pool, data(dst)[:n], v)
	return nil
}

// Copy copies the first n elements of src into dst.
func (b *Backend) Copy(dst, src backend.Buffer, n int) error {
	if err := b.check(backend.OpCopy, backend.Req{Name: "dst", Buf: dst, N: n},
		backend.Req{Name: "src", Buf: src, N: n}); err != nil {
		return err
	}
	kern.Copy(b.pool, data(dst)[:n], data(src)[:n])
	return nil
}

// Gemm computes C = alpha·op(A)·op(B) + beta·C (see backend.Backend).
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a, bb backend.Buffer, beta float32, c backend.Buffer) error {
	if err := b.check(backend.OpGemm,
		backend.Req{Name: "A", Buf: a, N: backend.Prod(m, k)},
		backend.Req{Name: "B", Buf: bb, N: backend.Prod(k, n)},
		backend.Req{Name: "C", Buf: c, N: backend.Prod(m, n), Out: true}); err != nil {
		return err
	}
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	kern.Sgemm(b.pool, &b.ws.Gemm, transA, transB, m, n, k, alpha, data(a), lda, data(bb), ldb, beta, data(c), n)
	return nil
}

// convCheck validates p and the three buffers of a convolution op.
func (b *Backend) convCheck(op string, p backend.ConvParams, xName string, x backend.Buffer,
	wName string, w backend.Buffer, yName string, y backend.Buffer) error {
	if err := p.Validate(Name, op); err != nil {
		return err
	}
	reqs := backend.ConvReqs(op, p, xName, x, wName, w, yName, y)
	return b.check(op, reqs[:]...)
}

// Conv2D computes y = conv(x, w) (no bias).
func (b *Backend) Conv2D(p backend.ConvParams, x, w, y backend.Buffer) error {
	var gen uint64
	if wb, ok := w.(*Buffer); ok && wb != nil {
		gen = wb.gen
	}
	if err := b.convCheck(backend.OpConv2D, p, "x", x, "w", w, "y", y); err != nil {
		return err
	}
	wb := w.(*Buffer)
	if w != y && !wb.exposed {
		wb.gen = gen // only read: its values are the same
	}
	b.pending = pendingConv{on: true, s: kern.ConvShape(p), x: data(x), w: data(w), y: data(y),
		xBuf: x.(*Buffer), wBuf: wb, yBuf: y.(*Buffer)}
	b.pending.e.FilterID = wb.gen
	return nil
}

// Conv2DBackwardData computes dx from dy and w (overwrites dx).
func (b *Backend) Conv2DBackwardData(p backend.ConvParams, dy, w, dx backend.Buffer) error {
	if err := b.convCheck(backend.OpConv2DBackwardData, p, "dx", dx, "w", w, "dy", dy); err != nil {
		return err
	}
	kern.Conv2DBackwardData(b.pool, &b.ws, kern.ConvShape(p), data(dy), data(w), data(dx))
	return nil
}

// Conv2DBackwardFilter computes dw from x and dy (overwrites dw).
func (b *Backend) Conv2DBackwardFilter(p backend.ConvParams, x, dy, dw backend.Buffer) error {
	if err := b.convCheck(backend.OpConv2DBackwardFilter, p, "x", x, "dw", dw, "dy", dy); err != nil {
		return err
	}
	kern.Conv2DBackwardFilter(b.pool, &b.ws, kern.ConvShape(p), data(x), data(dy), data(dw))
	return nil
}

func poolLens(p backend.PoolParams) (in, out int) {
	return backend.Prod(p.N, p.H, p.W, p.C), backend.Prod(p.N, p.OutH, p.OutW, p.C)
}

// MaxPool2D computes y and the argmax offsets of each window.
func (b *Backend) MaxPool2D(p backend.PoolParams, x, y, argmax backend.Buffer) error {
	op := backend.OpMaxPool2D
	if err := p.Validate(Name, op); err != nil {
		return err
	}
	in, out := poolLens(p)
	if err := b.validate(op, backend.Req{Name: "x", Buf: x, N: in}, backend.Req{Name: "y", Buf: y, N: out, Out: true},
		backend.Req{Name: "argmax", Buf: argmax, N: out, Out: true}); err != nil {
		return err
	}
	if b.fusePool(p, x, y, argmax) {
		return nil
	}
	b.flush()
	kern.MaxPool2DForward(b.pool, kern.PoolShape(p), data(x), data(y), data(argmax))
	return nil
}

// fusePool joins a MaxPool2D of the queued convolution's whole output to
// it, when its outputs are buffers the convolution does not use.
func (b *Backend) fusePool(p backend.PoolParams, x, y, argmax backend.Buffer) bool {
	q := &b.pending
	if !q.on || q.e.Pool.N != 0 || x != backend.Buffer(q.yBuf) ||
		p.N != q.s.N || p.H != q.s.OutH || p.W != q.s.OutW || p.C != q.s.F || y == argmax {
		return false
	}
	for _, out := range []backend.Buffer{y, argmax} {
		if out == backend.Buffer(q.xBuf) || out == backend.Buffer(q.wBuf) || out == backend.Buffer(q.yBuf) || out == q.biasBuf {
			return false
		}
	}
	q.e.Pool, q.e.PoolY, q.e.PoolArg = kern.PoolShape(p), data(y), data(argmax)
	q.poolYBuf, q.poolArgBuf = y, argmax
	return true
}

// Rest implements backend.Rester: the worker pool's helpers stop waiting
// actively for the next op and sleep until it comes.
func (b *Backend) Rest() {
	if !b.closed {
		b.pool.Rest()
	}
}

// Discard implements backend.Discarder: when the queued convolution pools
// its output in its epilogue, a discarded output or pooling argmax is not
// stored (kern.ConvEpilogue's ScratchY and NoArg). Other buffers keep
// their values.
func (b *Backend) Discard(buf backend.Buffer) {
	q := &b.pending
	if b.closed || !q.on || q.e.Pool.N == 0 || buf == nil {
		return
	}
	switch buf {
	case backend.Buffer(q.yBuf):
		q.e.ScratchY = true
	case q.poolArgBuf:
		q.e.NoArg = true
	}
}

// MaxPool2DBackward computes dx from dy and argmax (overwrites dx). Argmax
// entries that are not a window offset contribute nothing.
func (b *Backend) MaxPool2DBackward(p backend.PoolParams, dy, argmax, dx backend.Buffer) error {
	op := backend.OpMaxPool2DBackward
	if err := p.Validate(Name, op); err != nil {
		return err
	}
	in, out := poolLens(p)
	if err := b.check(op, backend.Req{Name: "dy", Buf: dy, N: out}, backend.Req{Name: "argmax", Buf: argmax, N: out},
		backend.Req{Name: "dx", Buf: dx, N: in, Out: true}); err != nil {
		return err
	}
	kern.MaxPool2DBackward(b.pool, kern.PoolShape(p), data(dy), data(argmax), data(dx))
	return nil
}

// BiasAdd adds bias[c] to x[r·cols+c] for r < rows, in place.
func (b *Backend) BiasAdd(x, bias backend.Buffer, rows, cols int) error {
	if err := b.validate(backend.OpBiasAdd, backend.Req{Name: "x", Buf: x, N: backend.Prod(rows, cols)}, backend.Req{Name: "bias", Buf: bias, N: cols}); err != nil {
		return err
	}
	if q := &b.pending; q.on && q.e.Bias == nil && !q.e.ReLU && q.e.Pool.N == 0 && x == backend.Buffer(q.yBuf) && bias != x &&
		rows == q.s.N*q.s.OutH*q.s.OutW && cols == q.s.F {
		q.e.Bias, q.biasBuf = data(bias)[:cols], bias
		return nil
	}
	b.flush()
	kern.BiasAdd(b.pool, data(x), data(bias), rows, cols)
	return nil
}

// BiasGrad sets db[c] = Σ_r dy[r·cols+c].
func (b *Backend) BiasGrad(dy, db backend.Buffer, rows, cols int) error {
	if err := b.validate(backend.OpBiasGrad, backend.Req{Name: "dy", Buf: dy, N: backend.Prod(rows, cols)}, backend.Req{Name: "db", Buf: db, N: cols, Out: true}); err != nil {
		return err
	}
	if q := &b.pendingBack; q.on && dy == backend.Buffer(q.dxBuf) && rows*cols == len(q.dx) {
		kern.ReLUBackwardBiasGrad(b.pool, &b.ws, q.y, q.dy, q.dx, data(db), rows, cols)
		*q = pendingReLUBack{}
		return nil
	}
	b.flush()
	kern.BiasGrad(b.pool, &b.ws, data(dy), data(db), rows, cols)
	return nil
}

// ReLU sets y = max(x, 0) over n elements.
func (b *Backend) ReLU(x, y backend.Buffer, n int) error {
	if err := b.validate(backend.OpReLU, backend.Req{Name: "x", Buf: x, N: n}, backend.Req{Name: "y", Buf: y, N: n}); err != nil {
		return err
	}
	if q := &b.pending; q.on && !q.e.ReLU && q.e.Pool.N == 0 && x == backend.Buffer(q.yBuf) && y == x &&
		n == q.s.N*q.s.OutH*q.s.OutW*q.s.F {
		q.e.ReLU = true
		return nil
	}
	b.flush()
	kern.ReLU(b.pool, data(x)[:n], data(y)[:n])
	return nil
}

// ReLUBackward sets dx = dy where y > 0, else 0.
func (b *Backend) ReLUBackward(y, dy, dx backend.Buffer, n int) error {
	if err := b.check(backend.OpReLUBackward, backend.Req{Name: "y", Buf: y, N: n},
		backend.Req{Name: "dy", Buf: dy, N: n}, backend.Req{Name: "dx", Buf: dx, N: n}); err != nil {
		return err
	}
	b.pendingBack = pendingReLUBack{on: true, y: data(y)[:n], dy: data(dy)[:n], dx: data(dx)[:n], dxBuf: dx.(*Buffer)}
	return nil
}

// Mul sets c = a·b element-wise over n elements.
func (b *Backend) Mul(a, bb, c backend.Buffer, n int) error {
	if err := b.check(backend.OpMul, backend.Req{Name: "a", Buf: a, N: n},
		backend.Req{Name: "b", Buf: bb, N: n}, backend.Req{Name: "c", Buf: c, N: n}); err != nil {
		return err
	}
	kern.Mul(b.pool, data(a)[:n], data(bb)[:n], data(c)[:n])
	return nil
}

// DropoutMask sets mask[i] = 1/(1-rate) when backend.DropoutKeep(seed, i,
// rate), else 0, for i < n. rate must lie in [0, 1].
func (b *Backend) DropoutMask(mask backend.Buffer, n int, rate float32, seed uint64) error {
	op := backend.OpDropoutMask
	if !(rate >= 0 && rate <= 1) {
		return backend.ShapeError(Name, op, "rate %v is not in [0, 1]", rate)
	}
	if err := b.check(op, backend.Req{Name: "mask", Buf: mask, N: n}); err != nil {
		return err
	}
	kern.DropoutMask(b.pool, data(mask)[:n], rate, seed)
	return nil
}

// Softmax sets y to the row-wise softmax of x (rows×cols).
func (b *Backend) Softmax(x, y backend.Buffer, rows, cols int) error {
	if err := b.check(backend.OpSoftmax, backend.Req{Name: "x", Buf: x, N: backend.Prod(rows, cols)}, backend.Req{Name: "y", Buf: y, N: backend.Prod(rows, cols)}); err != nil {
		return err
	}
	kern.Softmax(b.pool, data(x), data(y), rows, cols)
	return nil
}

// SoftmaxCrossEntropy writes grad = (softmax - onehot)/rows, stats[0] = Σ
// loss and stats[1] = correct count. Every label must be an integer class
// index in [0, cols); otherwise nothing is written and a shape error names
// the row.
func (b *Backend) SoftmaxCrossEntropy(logits, labels backend.Buffer, rows, cols int, grad, stats backend.Buffer) error {
	op := backend.OpSoftmaxCrossEntropy
	if rows <= 0 || cols <= 0 {
		return backend.ShapeError(Name, op, "rows %d and cols %d must be positive", rows, cols)
	}
	if err := b.check(op, backend.Req{Name: "logits", Buf: logits, N: backend.Prod(rows, cols)},
		backend.Req{Name: "labels", Buf: labels, N: rows},
		backend.Req{Name: "grad", Buf: grad, N: backend.Prod(rows, cols), Out: true},
		backend.Req{Name: "stats", Buf: stats, N: 2, Out: true}); err != nil {
		return err
	}
	lab := data(labels)
	if r := kern.BadLabel(lab, rows, cols); r >= 0 {
		return backend.ShapeError(Name, op, "label %v at row %d is not a class index in [0, %d)", lab[r], r, cols)
	}
	loss, correct := kern.SoftmaxCrossEntropy(data(logits), lab, data(grad), rows, cols)
	st := data(stats)
	st[0], st[1] = float32(loss), float32(correct)
	return nil
}

// Adam applies one Adam step to n parameters (see backend.AdamParams).
func (b *Backend) Adam(p backend.AdamParams, param, grad, m, v backend.Buffer, n int) error {
	op := backend.OpAdam
	if p.Step < 1 {
		return backend.ShapeError(Name, op, "step %d must be at least 1", p.Step)
	}
	if !(p.Beta1 >= 0 && p.Beta1 < 1) || !(p.Beta2 >= 0 && p.Beta2 < 1) {
		return backend.ShapeError(Name, op, "betas %v, %v must lie in [0, 1)", p.Beta1, p.Beta2)
	}
	if err := b.check(op, backend.Req{Name: "param", Buf: param, N: n}, backend.Req{Name: "grad", Buf: grad, N: n},
		backend.Req{Name: "m", Buf: m, N: n}, backend.Req{Name: "v", Buf: v, N: n}); err != nil {
		return err
	}
	kern.Adam(b.pool, p.LR, p.Beta1, p.Beta2, p.Eps, p.Step, data(param)[:n], data(grad)[:n], data(m)[:n], data(v)[:n])
	return nil
}

// SGD applies one SGD-with-momentum step to n parameters.
func (b *Backend) SGD(p backend.SGDParams, param, grad, vel backend.Buffer, n int) error {
	if err := b.check(backend.OpSGD, backend.Req{Name: "param", Buf: param, N: n},
		backend.Req{Name: "grad", Buf: grad, N: n}, backend.Req{Name: "vel", Buf: vel, N: n}); err != nil {
		return err
	}
	kern.SGD(b.pool, p.LR, p.Momentum, data(param)[:n], data(grad)[:n], data(vel)[:n])
	return nil
}
