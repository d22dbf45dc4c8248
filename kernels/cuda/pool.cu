// pool.cu: 2-D max pooling over NHWC input (no padding), forward with argmax
// and backward. argmax holds the winner's offset ky·KW + kx inside its window
// as a float; ties go to the first element in row-major window order.

#define KILN_POOL_ARGS int N, int H, int W, int C, int KH, int KW, int SH, int SW, int OH, int OW

// kiln_maxpool2d_fwd: one thread per output element (grid-stride).
KILN_KERNEL void kiln_maxpool2d_fwd(KILN_POOL_ARGS, const float* __restrict__ x, float* __restrict__ y,
                                    float* __restrict__ argmax) {
	const int total = N * OH * OW * C;
	KILN_FOR(o, total) {
		const int c = o % C;
		int t = o / C;
		const int ow = t % OW;
		t /= OW;
		const int oh = t % OH;
		const int n = t / OH;
		const float* base = x + (((size_t)n * H + oh * SH) * W + ow * SW) * C + c;
		float best = base[0];
		int arg = 0;
		for (int ky = 0; ky < KH; ++ky) {
			for (int kx = 0; kx < KW; ++kx) {
				const float v = base[((size_t)ky * W + kx) * C];
				if (v > best) {
					best = v;
					arg = ky * KW + kx;
				}
			}
		}
		y[o] = best;
		argmax[o] = (float)arg;
	}
}

// kiln_maxpool2d_bwd: one thread per input element; it gathers dy from every
// window that covers it and whose argmax names it, in output order (the
// order the CPU backend adds them), so overlapping windows need no atomics.
// Argmax entries that are not a valid window offset are ignored.
KILN_KERNEL void kiln_maxpool2d_bwd(KILN_POOL_ARGS, const float* __restrict__ dy, const float* __restrict__ argmax,
                                    float* __restrict__ dx) {
	const int total = N * H * W * C;
	KILN_FOR(i, total) {
		const int c = i % C;
		int t = i / C;
		const int w = t % W;
		t /= W;
		const int h = t % H;
		const int n = t / H;
		const int oh0 = h >= KH ? (h - KH) / SH + 1 : 0;
		const int oh1 = min(OH - 1, h / SH);
		const int ow0 = w >= KW ? (w - KW) / SW + 1 : 0;
		const int ow1 = min(OW - 1, w / SW);
		float g = 0.f;
		for (int oh = oh0; oh <= oh1; ++oh) {
			const int ky = h - oh * SH;
			for (int ow = ow0; ow <= ow1; ++ow) {
				const int kx = w - ow * SW;
				const size_t o = (((size_t)n * OH + oh) * OW + ow) * C + c;
				const float af = argmax[o];
				if (af == (float)(ky * KW + kx)) g += dy[o]; // exact: a fraction or NaN names no offset
			}
		}
		dx[i] = g;
	}
}
