// softmax.cu: row-wise softmax and softmax cross-entropy, one warp a row
// (blocks of 256 threads = 8 rows), reductions with warp shuffles.

#define KILN_FULL_MASK 0xffffffffu

// kiln_softmax: y = softmax(x) row-wise, the row maximum subtracted first.
KILN_KERNEL void __launch_bounds__(256) kiln_softmax(const float* x, float* y, int rows, int cols) {  // x may be y (in place): no __restrict__
	const int lane = threadIdx.x & 31;
	const int row = blockIdx.x * 8 + (threadIdx.x >> 5);
	if (row >= rows) return;  // whole warps leave together
	const float* xr = x + (size_t)row * cols;
	float* yr = y + (size_t)row * cols;
	float m = KILN_NEG_INF;
	for (int i = lane; i < cols; i += 32) m = fmaxf(m, xr[i]);
	for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(KILN_FULL_MASK, m, o));
	float s = 0.f;
	for (int i = lane; i < cols; i += 32) {
		const float e = expf(xr[i] - m);
		yr[i] = e;
		s += e;
	}
	for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(KILN_FULL_MASK, s, o);
	const float inv = 1.f / s;
	for (int i = lane; i < cols; i += 32) yr[i] *= inv;
}

// kiln_softmax_xent: grad = (softmax(logits) - onehot(label)) / rows;
// stats[0] += Σ (logsumexp - logit[label]); stats[1] += rows whose first
// maximum is at the label. stats must be zeroed first. A label that is not
// an integer in [0, cols) contributes no loss and no one-hot term, and the
// smallest such row is recorded with atomicMin in *bad (the host reports it
// as an error at the next Sync/Download).
KILN_KERNEL void __launch_bounds__(256)
    kiln_softmax_xent(const float* __restrict__ logits, const float* __restrict__ labels, int rows, int cols,
                      float* __restrict__ grad, float* __restrict__ stats, int* __restrict__ bad) {
	const int lane = threadIdx.x & 31;
	const int row = blockIdx.x * 8 + (threadIdx.x >> 5);
	if (row >= rows) return;
	const float* xr = logits + (size_t)row * cols;
	float* gr = grad + (size_t)row * cols;
	// first maximum: each lane scans increasing columns, keeping the first
	float m = KILN_NEG_INF;
	int am = 0x7fffffff;
	for (int i = lane; i < cols; i += 32) {
		const float v = xr[i];
		if (v > m || am == 0x7fffffff) {
			m = v;
			am = i;
		}
	}
	for (int o = 16; o > 0; o >>= 1) {
		const float om = __shfl_xor_sync(KILN_FULL_MASK, m, o);
		const int oa = __shfl_xor_sync(KILN_FULL_MASK, am, o);
		if (om > m || (om == m && oa < am)) {
			m = om;
			am = oa;
		}
	}
	float s = 0.f;
	for (int i = lane; i < cols; i += 32) s += expf(xr[i] - m);
	for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(KILN_FULL_MASK, s, o);
	const float l = labels[row];
	int label = -1;
	if (l >= 0.f && l < (float)cols && l == truncf(l)) {
		label = (int)l;
	} else if (lane == 0) {
		atomicMin(bad, row);
	}
	const float inv = 1.f / s;
	const float scale = 1.f / (float)rows;
	for (int i = lane; i < cols; i += 32) {
		float p = expf(xr[i] - m) * inv;
		if (i == label) p -= 1.f;
		gr[i] = p * scale;
	}
	if (lane == 0 && label >= 0) {
		atomicAdd(stats, m + logf(s) - xr[label]);
		if (am == label) atomicAdd(stats + 1, 1.f);
	}
}
