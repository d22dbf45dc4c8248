// conv.cu: 2-D convolution over NHWC input with an HWIO filter, forward and
// both backward passes, as implicit GEMMs on gemm_core (gemm.cu): the
// im2col matrix is never stored; loaders gather its elements on the fly.
//
// Shapes (backend.ConvParams): x N×H×W×C, w KH×KW×C×F, y N×OH×OW×F.
//   forward:          y  (N·OH·OW × F) = im2col(x) (N·OH·OW × KH·KW·C) · w (KH·KW·C × F)
//   backward filter:  dw (KH·KW·C × F) = im2col(x)ᵀ · dy            (split-K, atomic)
//   backward data:    dx (N·H·W × C)   = col2im-gather(dy) (N·H·W × KH·KW·F) · wᵀ-gather (KH·KW·F × C)

// ConvShape carries the convolution sizes into the loaders.
struct ConvShape {
	int N, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW;
};

// im2col returns element (m, kd) of the im2col matrix of x: m = (n, oh, ow),
// kd = (kh, kw, c); zero in the padding.
__device__ __forceinline__ float im2col(const float* __restrict__ x, const ConvShape s, int m, int kd) {
	const int ow = m % s.OW;
	const int t = m / s.OW;
	const int oh = t % s.OH;
	const int n = t / s.OH;
	const int c = kd % s.C;
	const int t2 = kd / s.C;
	const int kw = t2 % s.KW;
	const int kh = t2 / s.KW;
	const int ih = oh * s.SH - s.PT + kh;
	const int iw = ow * s.SW - s.PL + kw;
	if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) return 0.f;
	return x[(((size_t)n * s.H + ih) * s.W + iw) * s.C + c];
}

// ConvFwdA is op(A) of the forward GEMM: im2col(x), K index contiguous (c).
struct ConvFwdA {
	const float* __restrict__ x;
	ConvShape s;
	__device__ __forceinline__ float operator()(int i, int k) const { return im2col(x, s, i, k); }
};

// ConvBwdFilterA is op(A) of the backward-filter GEMM: im2col(x)ᵀ, row index
// contiguous (c).
struct ConvBwdFilterA {
	const float* __restrict__ x;
	ConvShape s;
	__device__ __forceinline__ float operator()(int i, int k) const { return im2col(x, s, k, i); }
};

// ConvBwdDataA is op(A) of the backward-data GEMM: element (i, k) with
// i = (n, h, w) and k = (kh, kw, f) is dy at the output position whose window
// puts tap (kh, kw) on input (h, w), or 0 when there is none.
struct ConvBwdDataA {
	const float* __restrict__ dy;
	ConvShape s;
	__device__ __forceinline__ float operator()(int i, int k) const {
		const int w = i % s.W;
		const int t = i / s.W;
		const int h = t % s.H;
		const int n = t / s.H;
		const int f = k % s.F;
		const int t2 = k / s.F;
		const int kw = t2 % s.KW;
		const int kh = t2 / s.KW;
		const int ohs = h + s.PT - kh;
		const int ows = w + s.PL - kw;
		if (ohs < 0 || ows < 0) return 0.f;
		const int oh = ohs / s.SH;
		const int ow = ows / s.SW;
		if (oh * s.SH != ohs || ow * s.SW != ows || oh >= s.OH || ow >= s.OW) return 0.f;
		return dy[(((size_t)n * s.OH + oh) * s.OW + ow) * s.F + f];
	}
};

// ConvBwdDataB is op(B) of the backward-data GEMM: element (k, c) with
// k = (kh, kw, f) is w[kh][kw][c][f]; k's f is contiguous.
struct ConvBwdDataB {
	const float* __restrict__ w;
	ConvShape s;
	__device__ __forceinline__ float operator()(int k, int c) const {
		const int f = k % s.F;
		const int khw = k / s.F;
		return w[((size_t)khw * s.C + c) * s.F + f];
	}
};

#define KILN_CONV_TILE 64, 64, 16, 4, 4
#define KILN_CONV_THREADS 256
// Two blocks an SM (<= 128 registers a thread): without the minimum, ptxas
// for sm_80 caps the forward kernel at 64 registers and spills.
#define KILN_CONV_BOUNDS __launch_bounds__(KILN_CONV_THREADS, 2)
#define KILN_CONV_ARGS                                                                                  \
	int N, int H, int W, int C, int KH, int KW, int F, int SH, int SW, int PT, int PL, int OH, int OW
#define KILN_CONV_SHAPE {N, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW}

// kiln_conv2d_fwd: grid x = ceil(N·OH·OW/64)·ceil(F/64), 256 threads.
KILN_KERNEL void KILN_CONV_BOUNDS
    kiln_conv2d_fwd(KILN_CONV_ARGS, const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y) {
	const ConvShape s = KILN_CONV_SHAPE;
	const ConvFwdA la = {x, s};
	const Mat<false> lb = {w, F};
	gemm_core<KILN_CONV_TILE, true, false, false>(N * OH * OW, F, 0, KH * KW * C, 1.f, la, lb, 0.f, y, F);
}

// kiln_conv2d_bwd_filter: dw must be zeroed first; grid x =
// ceil(KH·KW·C/64)·ceil(F/64), z = number of k chunks of kChunk (a multiple
// of 16) rows of N·OH·OW each, accumulated with atomicAdd.
KILN_KERNEL void KILN_CONV_BOUNDS
    kiln_conv2d_bwd_filter(KILN_CONV_ARGS, int kChunk, const float* __restrict__ x, const float* __restrict__ dy,
                           float* __restrict__ dw) {
	const ConvShape s = KILN_CONV_SHAPE;
	const ConvBwdFilterA la = {x, s};
	const Mat<false> lb = {dy, F};
	const int K = N * OH * OW;
	const int kBegin = blockIdx.z * kChunk;
	const int kEnd = min(K, kBegin + kChunk);
	gemm_core<KILN_CONV_TILE, false, false, true>(KH * KW * C, F, kBegin, kEnd, 1.f, la, lb, 0.f, dw, F);
}

// kiln_conv2d_bwd_data: grid x = ceil(N·H·W/64)·ceil(C/64); overwrites dx.
KILN_KERNEL void KILN_CONV_BOUNDS
    kiln_conv2d_bwd_data(KILN_CONV_ARGS, const float* __restrict__ dy, const float* __restrict__ w,
                         float* __restrict__ dx) {
	const ConvShape s = KILN_CONV_SHAPE;
	const ConvBwdDataA la = {dy, s};
	const ConvBwdDataB lb = {w, s};
	gemm_core<KILN_CONV_TILE, true, true, false>(N * H * W, C, 0, KH * KW * F, 1.f, la, lb, 0.f, dx, C);
}
