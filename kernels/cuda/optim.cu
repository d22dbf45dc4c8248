// optim.cu: optimizer steps (Keras semantics, as backend.AdamParams and
// backend.SGDParams state them). The host folds the bias corrections into
// lrt = lr·sqrt(1-β2^t)/(1-β1^t), computed in float64 as the CPU backend does.

// kiln_adam: m += (g-m)(1-β1); v += (g²-v)(1-β2); p -= lrt·m/(sqrt(v)+ε).
KILN_KERNEL void kiln_adam(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                           float* __restrict__ v, int n, float lrt, float omb1, float omb2, float eps) {
	KILN_FOR(i, n) {
		const float gi = g[i];
		const float mi = m[i] + (gi - m[i]) * omb1;
		const float vi = v[i] + (gi * gi - v[i]) * omb2;
		m[i] = mi;
		v[i] = vi;
		p[i] -= lrt * mi / (sqrtf(vi) + eps);
	}
}

// kiln_sgd: vel = momentum·vel - lr·g; p += vel.
KILN_KERNEL void kiln_sgd(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ vel, int n, float lr,
                          float momentum) {
	KILN_FOR(i, n) {
		const float v = momentum * vel[i] - lr * g[i];
		vel[i] = v;
		p[i] += v;
	}
}
