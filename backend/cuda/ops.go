//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/backend"
	bind "github.com/kiln-ml/kiln/bindings/cuda"
	kern "github.com/kiln-ml/kiln/kernels/cuda"
)

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// launch queues kernel name and wraps its error with op.
func (b *Backend) launch(op, name string, grid, block bind.Dim, args ...bind.Arg) error {
	if grid.X > maxGridX || grid.Y > maxGridYZ || grid.Z > maxGridYZ {
		return backend.Wrap(Name, op, fmt.Errorf("%s: a grid of %d×%d×%d blocks is past the device's limits (x at most %d, y and z at most %d): the operands are too large for one launch",
			name, max(grid.X, 1), max(grid.Y, 1), max(grid.Z, 1), maxGridX, maxGridYZ))
	}
	return backend.Wrap(Name, op, b.ctx.Launch(name, grid, block, args...))
}

// The grid limits of every CUDA device since compute capability 3.0.
const (
	maxGridX  = 1<<31 - 1
	maxGridYZ = 65535
)

// flat launches a grid-stride kernel over n elements.
func (b *Backend) flat(op, name string, n int, args ...bind.Arg) error {
	if n == 0 {
		return nil
	}
	return b.launch(op, name, bind.Dim{X: flatBlocks(n, b.dev.ComputeUnits)}, bind.Dim{X: flatThreads}, args...)
}

// flatThreads is the block size of every grid-stride kernel.
const flatThreads = 256

// flatBlocks is the grid of a grid-stride kernel over n elements on a
// device with sms multiprocessors: 32 blocks an SM, fewer when n is small,
// and at most indexSlack/flatThreads, so that the loop's last step (an
// index up to n-1 plus one stride) never passes MaxInt32 for n ≤ maxElems.
func flatBlocks(n, sms int) int {
	return max(1, min(ceilDiv(n, flatThreads), max(1, sms)*32, indexSlack/flatThreads))
}

// convInt32 checks that the convolution's strides, padding and the input
// coordinates they reach fit the kernels' 32-bit ints, with the index
// slack maxElems leaves. Validate bounds each field by MaxInt32 only, not
// the rows and columns reached, and bind.Int would truncate a value past
// int32: a launch with truncated values computes another convolution, or
// indexes outside the buffers.
func convInt32(op string, p backend.ConvParams) error {
	ext := p.Extents()
	if in32(p.StrideH, p.StrideW, p.PadTop, p.PadLeft, p.OutH, p.OutW, p.KH, p.KW, p.H, p.W) && in32(ext[:]...) {
		return nil
	}
	return backend.ShapeError(Name, op, "strides, padding and the input rows and columns they reach must be at most %d (kernels index with 32-bit ints): %+v", maxElems, p)
}

// poolInt32 is convInt32 for pooling.
func poolInt32(op string, p backend.PoolParams) error {
	if in32(p.StrideH, p.StrideW, p.OutH, p.OutW, p.KH, p.KW) &&
		in32(int64(p.OutH-1)*int64(p.StrideH)+int64(p.KH), int64(p.OutW-1)*int64(p.StrideW)+int64(p.KW)) {
		return nil
	}
	return backend.ShapeError(Name, op, "strides and the input rows and columns they reach must be at most %d (kernels index with 32-bit ints): %+v", maxElems, p)
}

// in32 reports whether every v lies in [0, maxElems].
func in32[T int | int64](vs ...T) bool {
	for _, v := range vs {
		if v < 0 || v > maxElems {
			return false
		}
	}
	return true
}

func (b *Backend) zero(op string, p bind.DevicePtr, n int) error {
	return backend.Wrap(Name, op, b.ctx.Memset32(p, 0, int64(n)))
}

// Upload copies src into the first len(src) elements of dst.
func (b *Backend) Upload(dst backend.Buffer, src []float32) error {
	if err := b.check(backend.OpUpload, backend.Req{Name: "dst", Buf: dst, N: len(src)}); err != nil {
		return err
	}
	return backend.Wrap(Name, backend.OpUpload, b.ctx.Upload(ptr(dst), src))
}

// Download waits for queued work and copies the first len(dst) elements of
// src into dst. It also reports a deferred SoftmaxCrossEntropy label error.
func (b *Backend) Download(dst []float32, src backend.Buffer) error {
	if err := b.check(backend.OpDownload, backend.Req{Name: "src", Buf: src, N: len(dst)}); err != nil {
		return err
	}
	if err := b.ctx.Download(dst, ptr(src)); err != nil {
		return backend.Wrap(Name, backend.OpDownload, err)
	}
	return b.checkBad(backend.OpDownload)
}

// Fill sets the first n elements of dst to v (a 32-bit memset).
func (b *Backend) Fill(dst backend.Buffer, n int, v float32) error {
	if err := b.check(backend.OpFill, backend.Req{Name: "dst", Buf: dst, N: n}); err != nil {
		return err
	}
	return backend.Wrap(Name, backend.OpFill, b.ctx.Memset32(ptr(dst), math.Float32bits(v), int64(n)))
}

// Copy copies the first n elements of src into dst.
func (b *Backend) Copy(dst, src backend.Buffer, n int) error {
	if err := b.check(backend.OpCopy, backend.Req{Name: "dst", Buf: dst, N: n},
		backend.Req{Name: "src", Buf: src, N: n}); err != nil {
		return err
	}
	if ptr(dst) == ptr(src) {
		return nil
	}
	return backend.Wrap(Name, backend.OpCopy, b.ctx.CopyDtoD(ptr(dst), ptr(src), int64(n)*4))
}

// Gemm computes C = alpha·op(A)·op(B) + beta·C with the 128×128 tile when
// that fills the device, else the 32×32 tile.
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a, bb backend.Buffer, beta float32, c backend.Buffer) error {
	op := backend.OpGemm
	if err := b.check(op,
		backend.Req{Name: "A", Buf: a, N: backend.Prod(m, k)},
		backend.Req{Name: "B", Buf: bb, N: backend.Prod(k, n)},
		backend.Req{Name: "C", Buf: c, N: backend.Prod(m, n), Out: true}); err != nil {
		return err
	}
	if m == 0 || n == 0 {
		return nil
	}
	tile := kern.GemmTile
	if ceilDiv(m, tile)*ceilDiv(n, tile) < b.dev.ComputeUnits {
		tile = kern.GemmTile32
	}
	return b.launch(op, kern.Gemm(transA, transB, tile),
		bind.Dim{X: ceilDiv(m, tile) * ceilDiv(n, tile)}, bind.Dim{X: kern.GemmThreads},
		bind.Int(m), bind.Int(n), bind.Int(k), bind.F32(alpha), bind.Ptr(ptr(a)), bind.Ptr(ptr(bb)),
		bind.F32(beta), bind.Ptr(ptr(c)))
}

func convArgs(p backend.ConvParams) []bind.Arg {
	return []bind.Arg{bind.Int(p.N), bind.Int(p.H), bind.Int(p.W), bind.Int(p.C), bind.Int(p.KH), bind.Int(p.KW),
		bind.Int(p.F), bind.Int(p.StrideH), bind.Int(p.StrideW), bind.Int(p.PadTop), bind.Int(p.PadLeft),
		bind.Int(p.OutH), bind.Int(p.OutW)}
}

func (b *Backend) convCheck(op string, p backend.ConvParams, xName string, x backend.Buffer,
	wName string, w backend.Buffer, yName string, y backend.Buffer) error {
	if err := p.Validate(Name, op); err != nil {
		return err
	}
	if err := convInt32(op, p); err != nil {
		return err
	}
	reqs := backend.ConvReqs(op, p, xName, x, wName, w, yName, y)
	return b.check(op, reqs[:]...)
}

// Conv2D computes y = conv(x, w) as an implicit GEMM.
func (b *Backend) Conv2D(p backend.ConvParams, x, w, y backend.Buffer) error {
	op := backend.OpConv2D
	if err := b.convCheck(op, p, "x", x, "w", w, "y", y); err != nil {
		return err
	}
	args := append(convArgs(p), bind.Ptr(ptr(x)), bind.Ptr(ptr(w)), bind.Ptr(ptr(y)))
	return b.launch(op, kern.Conv2DFwd, bind.Dim{X: ceilDiv(p.N*p.OutH*p.OutW, kern.ConvTile) * ceilDiv(p.F, kern.ConvTile)},
		bind.Dim{X: kern.GemmThreads}, args...)
}

// Conv2DBackwardData computes dx from dy and w (overwrites dx).
func (b *Backend) Conv2DBackwardData(p backend.ConvParams, dy, w, dx backend.Buffer) error {
	op := backend.OpConv2DBackwardData
	if err := b.convCheck(op, p, "dx", dx, "w", w, "dy", dy); err != nil {
		return err
	}
	args := append(convArgs(p), bind.Ptr(ptr(dy)), bind.Ptr(ptr(w)), bind.Ptr(ptr(dx)))
	return b.launch(op, kern.Conv2DBwdData, bind.Dim{X: ceilDiv(p.N*p.H*p.W, kern.ConvTile) * ceilDiv(p.C, kern.ConvTile)},
		bind.Dim{X: kern.GemmThreads}, args...)
}

// Conv2DBackwardFilter computes dw from x and dy (overwrites dw), splitting
// the long N·OH·OW reduction across blocks that add into a zeroed dw.
func (b *Backend) Conv2DBackwardFilter(p backend.ConvParams, x, dy, dw backend.Buffer) error {
	op := backend.OpConv2DBackwardFilter
	if err := b.convCheck(op, p, "x", x, "dw", dw, "dy", dy); err != nil {
		return err
	}
	if err := b.zero(op, ptr(dw), p.FilterLen()); err != nil {
		return err
	}
	k := p.N * p.OutH * p.OutW
	tiles := ceilDiv(p.F, kern.ConvTile) * ceilDiv(p.KH*p.KW*p.C, kern.ConvTile)
	splits := max(1, min(2*max(1, b.dev.ComputeUnits)/tiles, ceilDiv(k, 8*kern.ConvBK)))
	chunk := ceilDiv(ceilDiv(k, splits), kern.ConvBK) * kern.ConvBK
	splits = ceilDiv(k, chunk)
	args := append(convArgs(p), bind.Int(chunk), bind.Ptr(ptr(x)), bind.Ptr(ptr(dy)), bind.Ptr(ptr(dw)))
	return b.launch(op, kern.Conv2DBwdFilter,
		bind.Dim{X: tiles, Z: splits},
		bind.Dim{X: kern.GemmThreads}, args...)
}

func poolArgs(p backend.PoolParams) []bind.Arg {
	return []bind.Arg{bind.Int(p.N), bind.Int(p.H), bind.Int(p.W), bind.Int(p.C), bind.Int(p.KH), bind.Int(p.KW),
		bind.Int(p.StrideH), bind.Int(p.StrideW), bind.Int(p.OutH), bind.Int(p.OutW)}
}

// MaxPool2D computes y and the argmax offsets of each window.
func (b *Backend) MaxPool2D(p backend.PoolParams, x, y, argmax backend.Buffer) error {
	op := backend.OpMaxPool2D
	if err := p.Validate(Name, op); err != nil {
		return err
	}
	if err := poolInt32(op, p); err != nil {
		return err
	}
	in, out := p.InLen(), p.OutLen()
	if err := b.check(op, backend.Req{Name: "x", Buf: x, N: in}, backend.Req{Name: "y", Buf: y, N: out, Out: true},
		backend.Req{Name: "argmax", Buf: argmax, N: out, Out: true}); err != nil {
		return err
	}
	return b.flat(op, kern.MaxPool2DFwd, out, append(poolArgs(p), bind.Ptr(ptr(x)), bind.Ptr(ptr(y)), bind.Ptr(ptr(argmax)))...)
}

// MaxPool2DBackward computes dx from dy and argmax (overwrites dx).
func (b *Backend) MaxPool2DBackward(p backend.PoolParams, dy, argmax, dx backend.Buffer) error {
	op := backend.OpMaxPool2DBackward
	if err := p.Validate(Name, op); err != nil {
		return err
	}
	if err := poolInt32(op, p); err != nil {
		return err
	}
	in, out := p.InLen(), p.OutLen()
	if err := b.check(op, backend.Req{Name: "dy", Buf: dy, N: out}, backend.Req{Name: "argmax", Buf: argmax, N: out},
		backend.Req{Name: "dx", Buf: dx, N: in, Out: true}); err != nil {
		return err
	}
	return b.flat(op, kern.MaxPool2DBwd, in, append(poolArgs(p), bind.Ptr(ptr(dy)), bind.Ptr(ptr(argmax)), bind.Ptr(ptr(dx)))...)
}

// BiasAdd adds bias[c] to x[r·cols+c] for r < rows, in place.
func (b *Backend) BiasAdd(x, bias backend.Buffer, rows, cols int) error {
	op := backend.OpBiasAdd
	if err := b.check(op, backend.Req{Name: "x", Buf: x, N: backend.Prod(rows, cols)}, backend.Req{Name: "bias", Buf: bias, N: cols}); err != nil {
		return err
	}
	return b.flat(op, kern.BiasAdd, rows*cols, bind.Ptr(ptr(x)), bind.Ptr(ptr(bias)), bind.Int(rows), bind.Int(cols))
}

// BiasGrad sets db[c] = Σ_r dy[r·cols+c].
func (b *Backend) BiasGrad(dy, db backend.Buffer, rows, cols int) error {
	op := backend.OpBiasGrad
	if err := b.check(op, backend.Req{Name: "dy", Buf: dy, N: backend.Prod(rows, cols)}, backend.Req{Name: "db", Buf: db, N: cols, Out: true}); err != nil {
		return err
	}
	if cols == 0 {
		return nil
	}
	if err := b.zero(op, ptr(db), cols); err != nil {
		return err
	}
	if rows == 0 {
		return nil
	}
	return b.launch(op, kern.BiasGrad, bind.Dim{X: ceilDiv(cols, 32), Y: min(ceilDiv(rows, 64), 1024)}, bind.Dim{X: 32, Y: 8},
		bind.Ptr(ptr(dy)), bind.Ptr(ptr(db)), bind.Int(rows), bind.Int(cols))
}

// ReLU sets y = max(x, 0) over n elements.
func (b *Backend) ReLU(x, y backend.Buffer, n int) error {
	op := backend.OpReLU
	if err := b.check(op, backend.Req{Name: "x", Buf: x, N: n}, backend.Req{Name: "y", Buf: y, N: n}); err != nil {
		return err
	}
	return b.flat(op, kern.ReLU, n, bind.Ptr(ptr(x)), bind.Ptr(ptr(y)), bind.Int(n))
}

// ReLUBackward sets dx = dy where y > 0, else 0.
func (b *Backend) ReLUBackward(y, dy, dx backend.Buffer, n int) error {
	op := backend.OpReLUBackward
	if err := b.check(op, backend.Req{Name: "y", Buf: y, N: n}, backend.Req{Name: "dy", Buf: dy, N: n},
		backend.Req{Name: "dx", Buf: dx, N: n}); err != nil {
		return err
	}
	return b.flat(op, kern.ReLUBwd, n, bind.Ptr(ptr(y)), bind.Ptr(ptr(dy)), bind.Ptr(ptr(dx)), bind.Int(n))
}

// Mul sets c = a·b element-wise over n elements.
func (b *Backend) Mul(a, bb, c backend.Buffer, n int) error {
	op := backend.OpMul
	if err := b.check(op, backend.Req{Name: "a", Buf: a, N: n}, backend.Req{Name: "b", Buf: bb, N: n},
		backend.Req{Name: "c", Buf: c, N: n}); err != nil {
		return err
	}
	return b.flat(op, kern.Mul, n, bind.Ptr(ptr(a)), bind.Ptr(ptr(bb)), bind.Ptr(ptr(c)), bind.Int(n))
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
	scale := float32(0)
	if rate < 1 {
		scale = 1 / (1 - rate)
	}
	return b.flat(op, kern.DropoutMask, n, bind.Ptr(ptr(mask)), bind.Int(n), bind.F32(rate), bind.F32(scale), bind.U64(seed))
}

// Softmax sets y to the row-wise softmax of x (rows×cols).
func (b *Backend) Softmax(x, y backend.Buffer, rows, cols int) error {
	op := backend.OpSoftmax
	if err := b.check(op, backend.Req{Name: "x", Buf: x, N: backend.Prod(rows, cols)}, backend.Req{Name: "y", Buf: y, N: backend.Prod(rows, cols)}); err != nil {
		return err
	}
	if rows == 0 || cols == 0 {
		return nil
	}
	return b.launch(op, kern.Softmax, bind.Dim{X: ceilDiv(rows, 8)}, bind.Dim{X: 256},
		bind.Ptr(ptr(x)), bind.Ptr(ptr(y)), bind.Int(rows), bind.Int(cols))
}

// SoftmaxCrossEntropy writes grad, stats[0] = Σ loss and stats[1] = correct
// count. Labels live on the device, so a label that is not a class index is
// reported by the next Sync or Download (the row contributes no loss).
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
	if err := b.zero(op, ptr(stats), 2); err != nil {
		return err
	}
	return b.launch(op, kern.SoftmaxXent, bind.Dim{X: ceilDiv(rows, 8)}, bind.Dim{X: 256},
		bind.Ptr(ptr(logits)), bind.Ptr(ptr(labels)), bind.Int(rows), bind.Int(cols),
		bind.Ptr(ptr(grad)), bind.Ptr(ptr(stats)), bind.Ptr(b.bad))
}

// Adam applies one Adam step to n parameters; the bias corrections are
// folded into the step size in float64, as the CPU backend does.
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
	t := float64(p.Step)
	lrt := float32(float64(p.LR) * math.Sqrt(1-math.Pow(float64(p.Beta2), t)) / (1 - math.Pow(float64(p.Beta1), t)))
	return b.flat(op, kern.Adam, n, bind.Ptr(ptr(param)), bind.Ptr(ptr(grad)), bind.Ptr(ptr(m)), bind.Ptr(ptr(v)),
		bind.Int(n), bind.F32(lrt), bind.F32(1-p.Beta1), bind.F32(1-p.Beta2), bind.F32(p.Eps))
}

// SGD applies one SGD-with-momentum step to n parameters.
func (b *Backend) SGD(p backend.SGDParams, param, grad, vel backend.Buffer, n int) error {
	op := backend.OpSGD
	if err := b.check(op, backend.Req{Name: "param", Buf: param, N: n}, backend.Req{Name: "grad", Buf: grad, N: n},
		backend.Req{Name: "vel", Buf: vel, N: n}); err != nil {
		return err
	}
	return b.flat(op, kern.SGD, n, bind.Ptr(ptr(param)), bind.Ptr(ptr(grad)), bind.Ptr(ptr(vel)), bind.Int(n),
		bind.F32(p.LR), bind.F32(p.Momentum))
}
