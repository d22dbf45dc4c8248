//go:build amd64

package cpu

import "golang.org/x/sys/cpu"

//go:generate go run gen_amd64.go

//go:noescape
func sgemmKernelAVX512(kc int, a, b, c *float32, ldc int, add int)

//go:noescape
func sgemmKernelAVX2(kc int, a, b, c *float32, ldc int, add int)

//go:noescape
func reluAVX2(x, y *float32, n int)

//go:noescape
func reluBackAVX2(y, dy, dx *float32, n int)

//go:noescape
func adamAVX2(param, grad, m, v *float32, n int, lrt, omb1, omb2, eps float32)

//go:noescape
func fmaPeakAVX512(iters int)

//go:noescape
func winoGemmAVX512(kc, npanel int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)

//go:noescape
func winoGemmTAVX512(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, add int)

//go:noescape
func winoDyAVX512(p *[4]*float32, nblk int, d *float32, dstride int)

//go:noescape
func winoGradOutAVX512(m *float32, mstride, nblk int, w *float32, wstride int, half float32)

//go:noescape
func winoInputAVX512(p *[16]*float32, nblk int, v *float32, vstride int)

//go:noescape
func winoOutputAVX512(m *float32, mstride, nblk int, y *[4]*float32, bias *float32, relu int)

//go:noescape
func winoFilterAVX512(w *float32, cf int, u *float32, ustride, n16 int, half float32)

//go:noescape
func winoInput43AVX512(p *[36]*float32, nblk int, v *float32, vstride int, tmp *float32)

//go:noescape
func winoOutput43AVX512(m *float32, mstride, nblk int, y *[16]*float32, bias *float32, relu int, tmp *float32)

//go:noescape
func winoOutput43PoolAVX512(m *float32, mstride, nblk int, y *[4]*float32, bias *float32, tmp *float32)

//go:noescape
func winoFilter43AVX512(w *float32, cf int, u *float32, ustride, n16 int)

//go:noescape
func convRowsAVX512(kc, nseg, segStep int, a **float32, b *float32, ldb int, c **float32, add int, bias *float32, relu int)

//go:noescape
func convGather1AVX512(kc int, off *int, x, dy, c *float32, ldc int, add int)

//go:noescape
func convGather2AVX512(kc int, off *int, x, dy, c *float32, ldc int, add int)

//go:noescape
func convGather3AVX512(kc int, off *int, x, dy, c *float32, ldc int, add int)

//go:noescape
func convGather4AVX512(kc int, off *int, x, dy, c *float32, ldc int, add int)

//go:noescape
func convGather5AVX512(kc int, off *int, x, dy, c *float32, ldc int, add int)

//go:noescape
func convGather6AVX512(kc int, off *int, x, dy, c *float32, ldc int, add int)

//go:noescape
func fmaPeakAVX2(iters int)

//go:noescape
func winoInput43AVX2(p *[36]*float32, nblk int, v *float32, vstride int, tmp *float32)

//go:noescape
func winoOutput43AVX2(m *float32, mstride, nblk int, y *[16]*float32, bias *float32, relu int, tmp *float32)

//go:noescape
func winoOutput43PoolAVX2(m *float32, mstride, nblk int, y *[4]*float32, bias *float32, tmp *float32)

//go:noescape
func winoGemmAVX2(kc, npanel int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)

//go:noescape
func winoGemmTAVX2(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, add int)

//go:noescape
func winoInputAVX2(p *[16]*float32, nblk int, v *float32, vstride int)

//go:noescape
func winoDyAVX2(p *[4]*float32, nblk int, d *float32, dstride int)

//go:noescape
func winoGradOutAVX2(m *float32, mstride, nblk int, w *float32, wstride int, half float32)

//go:noescape
func winoOutputAVX2(m *float32, mstride, nblk int, y *[4]*float32, bias *float32, relu int)

//go:noescape
func winoFilterAVX2(w *float32, cf int, u *float32, ustride, n16 int, half float32)

//go:noescape
func winoFilter43AVX2(w *float32, cf int, u *float32, ustride, n16 int)

//go:noescape
func convRowsImplicitAVX2(kc, nseg, segStep int, a **float32, b *float32, ldb int, c **float32, add int, bias *float32, relu int)

//go:noescape
func convGather1AVX2(kc int, off *int, x, dy, c *float32, ldc int, add int)

//go:noescape
func convGather2AVX2(kc int, off *int, x, dy, c *float32, ldc int, add int)

//go:noescape
func convGather3AVX2(kc int, off *int, x, dy, c *float32, ldc int, add int)

//go:noescape
func convGather4AVX2(kc int, off *int, x, dy, c *float32, ldc int, add int)

//go:noescape
func convGather5AVX2(kc int, off *int, x, dy, c *float32, ldc int, add int)

//go:noescape
func convGather6AVX2(kc int, off *int, x, dy, c *float32, ldc int, add int)

// The assembly kernels' A blocks are two panels (avx512) or four (avx2)
// deep: the macro-kernel keeps one A panel in L1 and streams B past it, so
// a taller block saves nothing, while short blocks give the workers many
// tasks per B block to share out at its barrier. On the 2-core AVX-512 VM,
// 24 rows against 120 ran two-thread SGEMM 1024³ and 2048³ 1.18× and 1.15×
// as fast (medians of 11 interleaved runs), one thread level (BENCHMARKS.md).
var (
	avx512Kernel = gemmKernel{name: "avx512", mr: 12, nr: 32, kc: 256, mc: 24, nc: 3072, fn: kernelAVX512}
	avx2Kernel   = gemmKernel{name: "avx2", mr: 6, nr: 16, kc: 256, mc: 24, nc: 3072, fn: kernelAVX2}
)

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// kernelAVX512 runs the 12×32 AVX-512 micro-kernel after checking bounds.
func kernelAVX512(kc int, a, b, c []float32, ldc int, add bool) {
	_, _, _ = a[kc*12-1], b[kc*32-1], c[11*ldc+31]
	sgemmKernelAVX512(kc, &a[0], &b[0], &c[0], ldc, b2i(add))
}

// kernelAVX2 runs the 6×16 AVX2+FMA micro-kernel after checking bounds.
func kernelAVX2(kc int, a, b, c []float32, ldc int, add bool) {
	_, _, _ = a[kc*6-1], b[kc*16-1], c[5*ldc+15]
	sgemmKernelAVX2(kc, &a[0], &b[0], &c[0], ldc, b2i(add))
}

// supportedKernels lists the kernels this CPU runs, fastest first. AVX-512
// needs the F extension (and the OS saving zmm state, which cpu checks);
// AVX2 needs FMA too.
func supportedKernels() []*gemmKernel {
	var ks []*gemmKernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, &avx512Kernel)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, &avx2Kernel)
	}
	return append(ks, &genericKernel)
}

// fmaPeak runs iters iterations of the named kernel's FMA peak loop and
// returns the floating-point operations done, or 0 when the kernel has no
// such loop.
func fmaPeak(name string, iters int) float64 {
	switch name {
	case "avx512":
		fmaPeakAVX512(iters)
		return float64(iters) * 24 * 32
	case "avx2":
		fmaPeakAVX2(iters)
		return float64(iters) * 12 * 16
	}
	return 0
}

// hasAVX2 selects the AVX2 element-wise loops; fixed at start.
var hasAVX2 = cpu.X86.HasAVX2

// reluVec handles the leading multiple of 32 elements of reluRange with
// AVX2 and returns how many it did.
func reluVec(x, y []float32) int {
	n := len(y) &^ 31
	if !hasAVX2 || n == 0 {
		return 0
	}
	_ = x[n-1]
	reluAVX2(&x[0], &y[0], n)
	return n
}

// adamVec runs the leading multiple of 8 elements of adamRange with AVX2
// (the bits of adamScalar) and returns how many it did.
func adamVec(lrt, omb1, omb2, eps float32, param, grad, m, v []float32) int {
	n := len(param) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _, _ = grad[n-1], m[n-1], v[n-1]
	adamAVX2(&param[0], &grad[0], &m[0], &v[0], n, lrt, omb1, omb2, eps)
	return n
}

// reluBackVec is reluVec for reluBackRange.
func reluBackVec(y, dy, dx []float32) int {
	n := len(dx) &^ 31
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _ = y[n-1], dy[n-1]
	reluBackAVX2(&y[0], &dy[0], &dx[0], n)
	return n
}

// implicitOK reports whether the one AVX-512-only convolution kernel, the
// wide direct convolution, runs with micro-kernel kr.
func implicitOK(kr *gemmKernel) bool { return kr == &avx512Kernel }

// asmConvOK reports whether micro-kernel kr is one of the assembly ones
// (avx512, avx2), whose convolution kernels come in an AVX-512 and an
// AVX2+FMA form: the implicit-GEMM rows and gather kernels, the direct
// convolution fused with a 2×2 max pooling, and the Winograd F(2×2, 3×3),
// F(4×4, 3×3) and F(3×3, 2×2) passes (implicitOK names the AVX-512-only
// one).
func asmConvOK(kr *gemmKernel) bool { return kr == &avx512Kernel || kr == &avx2Kernel }

// rowsKernel runs convRowsAVX512, or convRowsImplicitAVX2 when kr is not
// the AVX-512 kernel (see gen_amd64.go). The caller guarantees every
// pointer it passes has the data the kernel reads and writes. bias (64
// values, or nil) is added and ReLU applied (when relu) to the tile, after
// adding it to C (when add), before it is stored.
func rowsKernel(kr *gemmKernel, kc, nseg, segStep int, a *[6]*float32, b *float32, ldb int, c *[6]*float32, add bool, bias []float32, relu bool) {
	bp := biasPtr(bias, 64)
	if kr != &avx512Kernel {
		convRowsImplicitAVX2(kc, nseg, segStep, &a[0], b, ldb, &c[0], b2i(add), bp, b2i(relu))
		return
	}
	convRowsAVX512(kc, nseg, segStep, &a[0], b, ldb, &c[0], b2i(add), bp, b2i(relu))
}

// gatherKernel runs convGather<mr>AVX512, or convGather<mr>AVX2 when kr
// is not the AVX-512 kernel (see gen_amd64.go), for 1 ≤ mr ≤ 6. The caller
// guarantees the offsets and pointers are in bounds.
func gatherKernel(kr *gemmKernel, mr, kc int, off []int, x, dy, c *float32, ldc int, add bool) {
	o, ad := &off[0], b2i(add)
	if kr != &avx512Kernel {
		switch mr {
		case 6:
			convGather6AVX2(kc, o, x, dy, c, ldc, ad)
		case 5:
			convGather5AVX2(kc, o, x, dy, c, ldc, ad)
		case 4:
			convGather4AVX2(kc, o, x, dy, c, ldc, ad)
		case 3:
			convGather3AVX2(kc, o, x, dy, c, ldc, ad)
		case 2:
			convGather2AVX2(kc, o, x, dy, c, ldc, ad)
		default:
			convGather1AVX2(kc, o, x, dy, c, ldc, ad)
		}
		return
	}
	switch mr {
	case 6:
		convGather6AVX512(kc, o, x, dy, c, ldc, ad)
	case 5:
		convGather5AVX512(kc, o, x, dy, c, ldc, ad)
	case 4:
		convGather4AVX512(kc, o, x, dy, c, ldc, ad)
	case 3:
		convGather3AVX512(kc, o, x, dy, c, ldc, ad)
	case 2:
		convGather2AVX512(kc, o, x, dy, c, ldc, ad)
	default:
		convGather1AVX512(kc, o, x, dy, c, ldc, ad)
	}
}

// winoKernels reports which Winograd passes micro-kernel kr has kernels
// for: the F(2×2, 3×3) and F(4×4, 3×3) forward passes and the F(3×3, 2×2)
// filter gradient (grad), each on AVX-512 and AVX2+FMA.
func winoKernels(kr *gemmKernel) (f2, f4, grad bool) {
	ok := asmConvOK(kr)
	return ok, ok, ok
}

// winoCostsFor returns the costs Winograd's forward pass is chosen by on
// micro-kernel kr (see winoCosts): a point of F(4×4, 3×3) 1.2 of
// F(2×2, 3×3)'s, over the batch's tiles in whole panels, and a direct
// multiply-add 0.9 of an F(2×2, 3×3) point on AVX-512, 0.7 on AVX2.
// Measured with BenchmarkWinogradTiles (CPU time a call on one worker,
// C = F = 64, square outputs of 1–15 pixels, batches 1 and 32, medians of
// five interleaved runs; near-ties may go either way between runs).
//
// AVX-512 (a Zen 5, 2026-12-02; the costs pick the fastest path on every
// output but near-ties, 9×9 and 13×13 at batch 1): at batch 1 the
// implicit kernel ran 1×1 and 2×2 outputs 1.8× faster than F(2×2, 3×3)
// and 3×3 level with it (2.2× faster than F(4×4, 3×3), which the earlier
// per-image costs took there), F(2×2, 3×3) 5×5 1.2× faster than the
// implicit kernel; at batch 32 the implicit kernel ran 1×1 2.1× faster
// than F(2×2, 3×3), and F(4×4, 3×3) 13×13 1.18× faster than F(2×2, 3×3)
// (which the earlier costs took: it is backward-data's shape for the
// reference CNN's conv2), 3×3 1.5×, 11×11 1.67× and 15×15 1.59×.
//
// AVX2 (an AVX2-only Zen 3; the figures moved by up to a fifth between
// runs on the shared host, the 9×9 output at batch 32 from level to 1.25×
// in F(2×2, 3×3)'s favour): at batch 32, F(2×2, 3×3) ran a 2×2
// output 1.7× and a 5×5 one 1.19× faster than the implicit kernel,
// F(4×4, 3×3) a 3×3 one 1.5× faster, a 13×13 one 1.2× faster than
// F(2×2, 3×3), the two level on 9×9; at batch 1, whose few tiles fill
// few of the 6-tile panels, the implicit kernel ran 1×1 to 3×3 outputs
// 2.1–2.3× faster than the tile the point costs alone pick, level with
// F(2×2, 3×3) on 5×5, and Winograd took 9×9 and up (0.79× the time on
// 9×9).
func winoCostsFor(kr *gemmKernel) winoCosts {
	if kr == &avx512Kernel {
		return winoCosts{p2: 10, p4: 12, direct: 9}
	}
	return winoCosts{p2: 10, p4: 12, direct: 7}
}

// winoProduct runs npanel 6×64 tiles of C = A·B, rows evenly spaced, for
// the Winograd products and sgemmRows: winoGemmAVX512 on the AVX-512
// kernel, else winoGemmAVX2 (see gen_amd64.go; the same sums in the same
// order). The caller guarantees the pointers have the data the kernel
// reads and writes.
func winoProduct(kr *gemmKernel, kc, npanel int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int) {
	if kr == &avx512Kernel {
		winoGemmAVX512(kc, npanel, a, lda, b, ldb, c, ldc)
		return
	}
	winoGemmAVX2(kc, npanel, a, lda, b, ldb, c, ldc)
}

// winoGemm runs winoGemmAVX512 (see gen_amd64.go): npanel 6×64 tiles of
// C = A·B, rows evenly spaced. The caller guarantees the pointers have the
// data the kernel reads and writes.
func winoGemm(kc, npanel int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int) {
	winoGemmAVX512(kc, npanel, a, lda, b, ldb, c, ldc)
}

// winoGemmT runs winoGemmTAVX512, or winoGemmTAVX2 when kr is not the
// AVX-512 kernel (see gen_amd64.go): a 6×64 tile of C (+)= Aᵀ·B over kc
// rows. The caller guarantees the pointers have the data the kernel reads
// and writes.
func winoGemmT(kr *gemmKernel, kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, add bool) {
	if kr != &avx512Kernel {
		winoGemmTAVX2(kc, a, lda, b, ldb, c, ldc, b2i(add))
		return
	}
	winoGemmTAVX512(kc, a, lda, b, ldb, c, ldc, b2i(add))
}

// winoDy runs winoDyAVX512, or winoDyAVX2 when kr is not the AVX-512
// kernel (see gen_amd64.go): the transform of one 2×2 tile of the output
// gradient, nblk blocks of 16 filters.
func winoDy(kr *gemmKernel, p *[4]*float32, nblk int, d *float32, dstride int) {
	if kr != &avx512Kernel {
		winoDyAVX2(p, nblk, d, dstride)
		return
	}
	winoDyAVX512(p, nblk, d, dstride)
}

// winoGradOut runs winoGradOutAVX512, or winoGradOutAVX2 when kr is not
// the AVX-512 kernel (see gen_amd64.go): the 16 product planes of nblk
// blocks of 16 (channel, filter) pairs into 3×3 filter taps wstride
// floats apart.
func winoGradOut(kr *gemmKernel, m *float32, mstride, nblk int, w *float32, wstride int) {
	if kr != &avx512Kernel {
		winoGradOutAVX2(m, mstride, nblk, w, wstride, 0.5)
		return
	}
	winoGradOutAVX512(m, mstride, nblk, w, wstride, 0.5)
}

// winoInput runs winoInputAVX512, or winoInputAVX2 when kr is not the
// AVX-512 kernel (see gen_amd64.go): the input transform of one tile,
// nblk blocks of 16 channels. The caller guarantees every pointer has the
// data the kernel reads and writes.
func winoInput(kr *gemmKernel, p *[16]*float32, nblk int, v *float32, vstride int) {
	if kr != &avx512Kernel {
		winoInputAVX2(p, nblk, v, vstride)
		return
	}
	winoInputAVX512(p, nblk, v, vstride)
}

// winoOutput runs winoOutputAVX512, or winoOutputAVX2 when kr is not the
// AVX-512 kernel (see gen_amd64.go): the output transform of one tile,
// nblk blocks of 16 filters, with the bias (nil for none, else one value
// per filter) and ReLU of the epilogue.
func winoOutput(kr *gemmKernel, m *float32, mstride, nblk int, y *[4]*float32, bias []float32, relu bool) {
	bp := biasPtr(bias, 16*nblk)
	if kr != &avx512Kernel {
		winoOutputAVX2(m, mstride, nblk, y, bp, b2i(relu))
		return
	}
	winoOutputAVX512(m, mstride, nblk, y, bp, b2i(relu))
}

// winoFilter runs winoFilterAVX512, or winoFilterAVX2 when kr is not the
// AVX-512 kernel (see gen_amd64.go): the filter transform of the 16-column
// blocks [lo, hi) of an HWIO 3×3 filter's cf = C·F columns into u, whose
// 16 planes are ustride floats apart.
func winoFilter(kr *gemmKernel, w []float32, cf int, u []float32, ustride, lo, hi int) {
	if hi <= lo {
		return
	}
	_ = w[8*cf+16*hi-1]
	_ = u[15*ustride+16*hi-1]
	if kr != &avx512Kernel {
		winoFilterAVX2(&w[16*lo], cf, &u[16*lo], ustride, hi-lo, 0.5)
		return
	}
	winoFilterAVX512(&w[16*lo], cf, &u[16*lo], ustride, hi-lo, 0.5)
}

// winoInput43 runs winoInput43AVX512, or winoInput43AVX2 when kr is not
// the AVX-512 kernel (see gen_amd64.go): the F(4×4, 3×3)
// input transform of one 6×6 tile, nblk blocks of 16 channels, through
// tmp (36·16 floats). The caller guarantees every pointer has the data
// the kernel reads and writes.
func winoInput43(kr *gemmKernel, p *[36]*float32, nblk int, v *float32, vstride int, tmp []float32) {
	_ = tmp[36*16-1]
	if kr != &avx512Kernel {
		winoInput43AVX2(p, nblk, v, vstride, &tmp[0])
		return
	}
	winoInput43AVX512(p, nblk, v, vstride, &tmp[0])
}

// winoOutput43 runs winoOutput43AVX512, or winoOutput43AVX2 when kr is
// not the AVX-512 kernel (see gen_amd64.go): the F(4×4,
// 3×3) output transform of one tile into 16 output pixels, nblk blocks of
// 16 filters, with the bias (nil for none, else one value per filter) and
// ReLU of the epilogue, through tmp (24·16 floats).
func winoOutput43(kr *gemmKernel, m *float32, mstride, nblk int, y *[16]*float32, bias []float32, relu bool, tmp []float32) {
	bp := biasPtr(bias, 16*nblk)
	_ = tmp[24*16-1]
	if kr != &avx512Kernel {
		winoOutput43AVX2(m, mstride, nblk, y, bp, b2i(relu), &tmp[0])
		return
	}
	winoOutput43AVX512(m, mstride, nblk, y, bp, b2i(relu), &tmp[0])
}

// winoFilter43 runs winoFilter43AVX512, or winoFilter43AVX2 when kr is
// not the AVX-512 kernel (see gen_amd64.go): the F(4×4,
// 3×3) filter transform of the 16-column blocks [lo, hi) of an HWIO 3×3
// filter's cf = C·F columns into u, whose 36 planes are ustride floats
// apart.
func winoFilter43(kr *gemmKernel, w []float32, cf int, u []float32, ustride, lo, hi int) {
	if hi <= lo {
		return
	}
	_ = w[8*cf+16*hi-1]
	_ = u[35*ustride+16*hi-1]
	if kr != &avx512Kernel {
		winoFilter43AVX2(&w[16*lo], cf, &u[16*lo], ustride, hi-lo)
		return
	}
	winoFilter43AVX512(&w[16*lo], cf, &u[16*lo], ustride, hi-lo)
}

// winoOutput43Pool runs winoOutput43PoolAVX512, or winoOutput43PoolAVX2
// when kr is not the AVX-512 kernel (see gen_amd64.go): the
// F(4×4, 3×3) output transform of one tile, the bias (nil for none), the
// ReLU and the 2×2, stride-2 max pooling of the tile into its 4 pooled
// pixels y, nblk blocks of 16 filters, through tmp (24·16 floats).
func winoOutput43Pool(kr *gemmKernel, m *float32, mstride, nblk int, y *[4]*float32, bias []float32, tmp []float32) {
	bp := biasPtr(bias, 16*nblk)
	_ = tmp[24*16-1]
	if kr != &avx512Kernel {
		winoOutput43PoolAVX2(m, mstride, nblk, y, bp, &tmp[0])
		return
	}
	winoOutput43PoolAVX512(m, mstride, nblk, y, bp, &tmp[0])
}
