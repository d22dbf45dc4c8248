//go:build amd64

package cpu

import "golang.org/x/sys/cpu"

//go:noescape
func packA12SSE(d, a *float32, lda, kc4 int)

// packA12Vec packs the first kc&^3 values of 12 rows of A (see packA12)
// with 4×4 SSE transposes and returns how many it did.
func packA12Vec(d, a []float32, lda, off, kc int) int {
	kc4 := kc / 4
	if kc4 == 0 {
		return 0
	}
	_, _ = d[kc4*48-1], a[off+11*lda+kc4*4-1]
	packA12SSE(&d[0], &a[off], lda, kc4)
	return kc4 * 4
}

//go:noescape
func maxPoolRowAVX2(x, y, arg *float32, c, outW, kh, kw, rowStride, colStep int)

//go:noescape
func maxPoolRowAVX512(x, y, arg *float32, c, outW, kh, kw, rowStride, colStep int)

//go:noescape
func maxPoolBackRowAVX2(dy, arg, dx *float32, c, outW, kh, kw, rowStride, colStep int)

//go:noescape
func biasAddAVX2(x, bias *float32, rows, cols int)

//go:noescape
func biasGradAVX2(dy *float32, acc *float64, rows, cols int)

// biasGradVec adds the column sums of dy (rows×cols) to acc with AVX2 when
// cols is a multiple of 16 and reports whether it did.
func biasGradVec(dy []float32, acc []float64, rows, cols int) bool {
	if !hasAVX2 || cols%16 != 0 || rows == 0 {
		return false
	}
	_, _ = dy[rows*cols-1], acc[cols-1]
	biasGradAVX2(&dy[0], &acc[0], rows, cols)
	return true
}

//go:noescape
func convRowsAVX2(x *float32, rowStride, kh, run int, w *float32, ldw int, y *float32, npix, pixStep int, bias *float32, relu int)

//go:noescape
func convDirectAVX512(x *float32, rowStride, kh, run int, w *float32, ldw int, y *float32, npix, pixStep int, bias *float32, relu int)

// convRowsVec computes npix interior output pixels of one output row, 64
// filters starting at w[0] and y[0], with AVX-512 when wide (see
// convDirectAVX512 in gen_amd64.go) and AVX2+FMA otherwise (see
// convRowsAVX2), in the same order of sums: x starts at the first window's
// top-left element. The caller checked hasFMA (and, for wide, AVX-512);
// bounds are checked here. bias (64 values, or nil) is added and ReLU
// applied (when relu) to each pixel before it is stored.
func convRowsVec(s ConvShape, x, w, y []float32, npix int, bias []float32, relu, wide bool) {
	run := s.KW * s.C
	_ = x[(npix-1)*s.StrideW*s.C+(s.KH-1)*s.W*s.C+run-1]
	_ = w[(s.KH*run-1)*s.F+63]
	_ = y[(npix-1)*s.F+63]
	bp := biasPtr(bias, 64)
	if wide {
		convDirectAVX512(&x[0], s.W*s.C, s.KH, run, &w[0], s.F, &y[0], npix, s.StrideW*s.C, bp, b2i(relu))
		return
	}
	convRowsAVX2(&x[0], s.W*s.C, s.KH, run, &w[0], s.F, &y[0], npix, s.StrideW*s.C, bp, b2i(relu))
}

//go:noescape
func convDirectPoolAVX512(x *float32, rowStride, kh, run int, w *float32, ldw int, y *float32, npool, pixStep, convRowStep int, bias *float32)

// convPoolVec computes npool pixels of one row of a 2×2, stride-2 max
// pooling of the convolution s with ReLU, 64 filters starting at w[0] and
// py[0], straight from x (which starts at the first window's top-left
// input element), with convDirectPoolAVX512 (wide) or convDirectPoolAVX2
// (see gen_amd64.go): the convolution's own output is never stored. bias
// (64 values, or nil) is added before the ReLU. The caller checked the CPU
// (asmConvOK) and s.directPool; bounds are checked here.
func convPoolVec(s ConvShape, x, w, py []float32, npool int, bias []float32, wide bool) {
	run := s.KW * s.C
	_ = x[((2*npool-1)*s.StrideW*s.C)+(s.StrideH+s.KH-1)*s.W*s.C+run-1]
	_ = w[(s.KH*run-1)*s.F+63]
	_ = py[(npool-1)*s.F+63]
	bp := biasPtr(bias, 64)
	if !wide {
		convDirectPoolAVX2(&x[0], s.W*s.C, s.KH, run, &w[0], s.F, &py[0], npool, s.StrideW*s.C, s.StrideH*s.W*s.C, bp)
		return
	}
	convDirectPoolAVX512(&x[0], s.W*s.C, s.KH, run, &w[0], s.F, &py[0], npool, s.StrideW*s.C, s.StrideH*s.W*s.C, bp)
}

//go:noescape
func convDirectPoolAVX2(x *float32, rowStride, kh, run int, w *float32, ldw int, y *float32, npool, pixStep, convRowStep int, bias *float32)

//go:noescape
func gemv64AVX2(k int, a, b *float32, ldb int, acc *float32, add int)

// hasAVX512 selects the AVX-512 pooling loop; fixed at start.
var hasAVX512 = cpu.X86.HasAVX512F

// hasFMA selects the FMA vector loops; fixed at start.
var hasFMA = hasAVX2 && cpu.X86.HasFMA

// gemv64 sets acc[j] = Σ_p a[p]·b[p·ldb+j] for j < 64 and p < len(a) with
// AVX2+FMA and reports whether it could.
func gemv64(a, b []float32, ldb int, acc *[64]float32) bool {
	k := len(a)
	if !hasFMA || k == 0 {
		return false
	}
	_ = b[(k-1)*ldb+63]
	gemv64AVX2(k, &a[0], &b[0], ldb, &acc[0], 0)
	return true
}

// gemv64Add adds Σ_p a[p]·b[p·ldb+j] to acc[j] for j < 64 (len(acc) ≥ 64)
// with AVX2+FMA; the caller checked hasFMA and len(a) > 0.
func gemv64Add(a, b []float32, ldb int, acc []float32) {
	k := len(a)
	_, _ = b[(k-1)*ldb+63], acc[63]
	gemv64AVX2(k, &a[0], &b[0], ldb, &acc[0], 1)
}

// poolVec reports whether the vector pooling loops handle c channels.
func poolVec(c int) bool { return hasAVX2 && c%8 == 0 }

// maxPoolRowVec pools one output row with AVX-512 (c a multiple of 64) or
// AVX2; x starts at the first window's top-left element and y, arg at the
// row's first output. The caller checked poolVec and the bounds (see
// maxPoolRowBounds).
func maxPoolRowVec(s PoolShape, x, y, arg []float32) {
	if hasAVX512 && s.C%64 == 0 {
		maxPoolRowAVX512(&x[0], &y[0], &arg[0], s.C, s.OutW, s.KH, s.KW, s.W*s.C, s.StrideW*s.C)
		return
	}
	maxPoolRowAVX2(&x[0], &y[0], &arg[0], s.C, s.OutW, s.KH, s.KW, s.W*s.C, s.StrideW*s.C)
}

// maxPoolBackRowVec is the backward pass of one output row for windows
// that do not overlap (see maxPoolBackRowAVX2).
func maxPoolBackRowVec(s PoolShape, dy, arg, dx []float32) {
	maxPoolBackRowAVX2(&dy[0], &arg[0], &dx[0], s.C, s.OutW, s.KH, s.KW, s.W*s.C, s.StrideW*s.C)
}

// biasAddVec adds bias to every row of x (rows×cols) with AVX2 when cols
// is a multiple of 8 and reports whether it did.
func biasAddVec(x, bias []float32, rows, cols int) bool {
	if !hasAVX2 || cols%8 != 0 || rows == 0 {
		return false
	}
	_, _ = x[rows*cols-1], bias[cols-1]
	biasAddAVX2(&x[0], &bias[0], rows, cols)
	return true
}

// biasPtr returns &bias[0] after checking that bias holds n values, or nil
// for no bias, for the assembly kernels' bias arguments.
func biasPtr(bias []float32, n int) *float32 {
	if bias == nil {
		return nil
	}
	_ = bias[n-1]
	return &bias[0]
}
