// gemm.cu: tiled SGEMM with shared memory, register blocking and a
// register-staged double buffer, written once as a template over "loaders"
// so that convolution (conv.cu) reuses it as an implicit GEMM.
//
// C (M×N, leading dimension ldc) = alpha · op(A) · op(B) + beta · C, row-major.
// A loader la(i, k) returns op(A)[i][k] and B loader lb(k, j) returns
// op(B)[k][j]; gemm_core only calls them for in-range indices and uses 0 for
// the ragged edges, so any M, N, K work. A_KFAST / B_KFAST say which index is
// contiguous in memory so tile loads are coalesced.

// Mat is a plain row-major matrix seen directly (T = false, element (r, c) at
// p[r·ld + c]) or transposed (T = true, element (r, c) at p[c·ld + r]).
template <bool T>
struct Mat {
	const float* __restrict__ p;
	int ld;
	__device__ __forceinline__ float operator()(int r, int c) const {
		return T ? p[(size_t)c * ld + r] : p[(size_t)r * ld + c];
	}
};

// gemm_core computes one BM×BN tile of C, over the k range [kBegin, kEnd).
// The tiles are numbered row by row along blockIdx.x alone (tile t is row
// t / tilesN, column t % tilesN), so a grid of ceil(M/BM)·ceil(N/BN) blocks
// covers C whatever its shape: blockIdx.y and .z are limited to 65,535,
// which a convolution's N·OH·OW rows would pass at 64 rows a tile. ATOMIC
// adds alpha·acc into C with atomicAdd (split-K; C must be zeroed first and
// beta is unused).
template <int BM, int BN, int BK, int TM, int TN, bool A_KFAST, bool B_KFAST, bool ATOMIC, class LA, class LB>
__device__ __forceinline__ void gemm_core(int M, int N, int kBegin, int kEnd, float alpha,
                                          const LA& la, const LB& lb, float beta, float* __restrict__ C, int ldc) {
	constexpr int TX = BN / TN;  // threads along the columns of the tile
	constexpr int TY = BM / TM;  // threads along the rows
	constexpr int THREADS = TX * TY;
	constexpr int NA = BM * BK / THREADS;  // A elements each thread loads per k-step
	constexpr int NB = BK * BN / THREADS;
	constexpr int PADA = 4;  // breaks bank conflicts of the transposing A store
	static_assert(NA * THREADS == BM * BK, "A tile must split evenly over the threads");
	static_assert(NB * THREADS == BK * BN, "B tile must split evenly over the threads");

	__shared__ float As[2][BK][BM + PADA];
	__shared__ float Bs[2][BK][BN];

	const int tid = threadIdx.x;
	const int tx = tid % TX;
	const int ty = tid / TX;
	const int tilesN = (N + BN - 1) / BN;
	const int row0 = (int)(blockIdx.x / tilesN) * BM;
	const int col0 = (int)(blockIdx.x % tilesN) * BN;

	float acc[TM][TN];
#pragma unroll
	for (int i = 0; i < TM; ++i)
#pragma unroll
		for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;

	float ra[NA], rb[NB];

#define KILN_LOAD_TILES(k0)                                                        \
	do {                                                                           \
		_Pragma("unroll") for (int r = 0; r < NA; ++r) {                           \
			const int e = tid + r * THREADS;                                       \
			const int i = A_KFAST ? e / BK : e % BM;                               \
			const int kk = A_KFAST ? e % BK : e / BM;                              \
			const int gi = row0 + i, gk = (k0) + kk;                               \
			ra[r] = (gi < M && gk < kEnd) ? la(gi, gk) : 0.f;                      \
		}                                                                          \
		_Pragma("unroll") for (int r = 0; r < NB; ++r) {                           \
			const int e = tid + r * THREADS;                                       \
			const int j = B_KFAST ? e / BK : e % BN;                               \
			const int kk = B_KFAST ? e % BK : e / BN;                              \
			const int gj = col0 + j, gk = (k0) + kk;                               \
			rb[r] = (gj < N && gk < kEnd) ? lb(gk, gj) : 0.f;                      \
		}                                                                          \
	} while (0)

#define KILN_STORE_TILES(buf)                                                      \
	do {                                                                           \
		_Pragma("unroll") for (int r = 0; r < NA; ++r) {                           \
			const int e = tid + r * THREADS;                                       \
			const int i = A_KFAST ? e / BK : e % BM;                               \
			const int kk = A_KFAST ? e % BK : e / BM;                              \
			As[buf][kk][i] = ra[r];                                                \
		}                                                                          \
		_Pragma("unroll") for (int r = 0; r < NB; ++r) {                           \
			const int e = tid + r * THREADS;                                       \
			const int j = B_KFAST ? e / BK : e % BN;                               \
			const int kk = B_KFAST ? e % BK : e / BN;                              \
			Bs[buf][kk][j] = rb[r];                                                \
		}                                                                          \
	} while (0)

	if (kBegin < kEnd) {
		KILN_LOAD_TILES(kBegin);
		KILN_STORE_TILES(0);
	}
	__syncthreads();

	int cur = 0;
	for (int k0 = kBegin; k0 < kEnd; k0 += BK) {
		const bool more = k0 + BK < kEnd;
		if (more) KILN_LOAD_TILES(k0 + BK);  // global loads overlap the math below
#pragma unroll
		for (int kk = 0; kk < BK; ++kk) {
			float a[TM], b[TN];
#pragma unroll
			for (int i = 0; i < TM; ++i) a[i] = As[cur][kk][ty + TY * i];
#pragma unroll
			for (int j = 0; j < TN; ++j) b[j] = Bs[cur][kk][tx + TX * j];
#pragma unroll
			for (int i = 0; i < TM; ++i)
#pragma unroll
				for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
		}
		if (more) KILN_STORE_TILES(cur ^ 1);
		__syncthreads();
		cur ^= 1;
	}
#undef KILN_LOAD_TILES
#undef KILN_STORE_TILES

#pragma unroll
	for (int i = 0; i < TM; ++i) {
		const int gi = row0 + ty + TY * i;
		if (gi >= M) continue;
#pragma unroll
		for (int j = 0; j < TN; ++j) {
			const int gj = col0 + tx + TX * j;
			if (gj >= N) continue;
			float* c = C + (size_t)gi * ldc + gj;
			const float v = alpha * acc[i][j];
			if (ATOMIC) {
				atomicAdd(c, v);
			} else {
				*c = (beta == 0.f) ? v : fmaf(beta, *c, v);  // beta 0 never reads C
			}
		}
	}
}

// Two tile shapes: 128×128 with 8×8 per thread for large products, 32×32
// with 2×2 per thread for small ones (dense layers, thin outputs), both 256
// threads a block. Grid: x = ceil(M/BM)·ceil(N/BN) (see gemm_core).
#define KILN_GEMM(name, TA, TB, BM, BN, BK, TM, TN)                                                       \
	KILN_KERNEL void __launch_bounds__((BM / TM) * (BN / TN))                                           \
	    name(int M, int N, int K, float alpha, const float* __restrict__ A, const float* __restrict__ B, \
	         float beta, float* __restrict__ C) {                                                        \
		const Mat<TA> la = {A, TA ? M : K};                                                             \
		const Mat<TB> lb = {B, TB ? K : N};                                                             \
		gemm_core<BM, BN, BK, TM, TN, !TA, TB, false>(M, N, 0, K, alpha, la, lb, beta, C, N);          \
	}

KILN_GEMM(kiln_sgemm_nn_128, false, false, 128, 128, 8, 8, 8)
KILN_GEMM(kiln_sgemm_nt_128, false, true, 128, 128, 8, 8, 8)
KILN_GEMM(kiln_sgemm_tn_128, true, false, 128, 128, 8, 8, 8)
KILN_GEMM(kiln_sgemm_tt_128, true, true, 128, 128, 8, 8, 8)
KILN_GEMM(kiln_sgemm_nn_32, false, false, 32, 32, 8, 2, 2)
KILN_GEMM(kiln_sgemm_nt_32, false, true, 32, 32, 8, 2, 2)
KILN_GEMM(kiln_sgemm_tn_32, true, false, 32, 32, 8, 2, 2)
KILN_GEMM(kiln_sgemm_tt_32, true, true, 32, 32, 8, 2, 2)
