// elementwise.cu: bias, ReLU, Mul and dropout kernels (grid-stride loops),
// and the bias-gradient column reduction.

// kiln_bias_add: x[r·cols + c] += bias[c].
KILN_KERNEL void kiln_bias_add(float* __restrict__ x, const float* __restrict__ bias, int rows, int cols) {
	const int total = rows * cols;
	KILN_FOR(i, total) { x[i] += bias[i % cols]; }
}

// kiln_bias_grad: db[c] += Σ over this block's rows of dy[r·cols + c].
// Block (32, 8): threadIdx.x picks the column inside a 32-column strip
// (blockIdx.x), threadIdx.y and blockIdx.y stride over the rows; partial sums
// meet in shared memory and one atomicAdd a column a block. db must be
// zeroed first.
KILN_KERNEL void __launch_bounds__(256)
    kiln_bias_grad(const float* __restrict__ dy, float* __restrict__ db, int rows, int cols) {
	__shared__ float part[8][33];
	const int c = blockIdx.x * 32 + threadIdx.x;
	float s = 0.f;
	if (c < cols) {
		for (int r = blockIdx.y * 8 + threadIdx.y; r < rows; r += gridDim.y * 8) s += dy[(size_t)r * cols + c];
	}
	part[threadIdx.y][threadIdx.x] = s;
	__syncthreads();
	if (threadIdx.y == 0 && c < cols) {
		float t = 0.f;
#pragma unroll
		for (int k = 0; k < 8; ++k) t += part[k][threadIdx.x];
		atomicAdd(db + c, t);
	}
}

// kiln_relu: y = max(x, 0); x and y may alias.
KILN_KERNEL void kiln_relu(const float* x, float* y, int n) {
	KILN_FOR(i, n) {
		const float v = x[i];
		y[i] = v > 0.f ? v : 0.f;
	}
}

// kiln_relu_bwd: dx = dy where y > 0, else 0.
KILN_KERNEL void kiln_relu_bwd(const float* y, const float* dy, float* dx, int n) {
	KILN_FOR(i, n) { dx[i] = y[i] > 0.f ? dy[i] : 0.f; }
}

// kiln_mul: c = a·b.
KILN_KERNEL void kiln_mul(const float* a, const float* b, float* c, int n) {
	KILN_FOR(i, n) { c[i] = a[i] * b[i]; }
}

// kiln_dropout_mask: mask[i] = scale when SplitMix64(seed, i)'s top 24 bits,
// as a number in [0,1), are >= rate, else 0 (backend.DropoutKeep, bit for
// bit). scale is 1/(1-rate) computed in float32 by the host.
KILN_KERNEL void kiln_dropout_mask(float* __restrict__ mask, int n, float rate, float scale, unsigned long long seed) {
	KILN_FOR(i, n) {
		unsigned long long z = seed + (unsigned long long)i * 0x9E3779B97F4A7C15ULL;
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
		z ^= z >> 31;
		const float u = (float)(z >> 40) * (1.0f / 16777216.0f);
		mask[i] = u >= rate ? scale : 0.f;
	}
}
