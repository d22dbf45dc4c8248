// Package backendtest is the conformance suite every kiln backend runs, in
// the manner of testing/fstest:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backend.Backend { return cpu.New() })
//	}
//
// Run opens the backend once, runs one subtest per op (Gemm, Conv2D, …) with
// one nested subtest per case, and closes the backend at the end, failing if
// Close returns an error. Each case allocates its buffers with Alloc,
// uploads seeded random data (math/rand/v2, seeded from the case name, so
// every run and every backend sees the same numbers), runs the op, downloads
// the result and compares it with a float64 reference written with plain
// loops in this package. Every case then checks, whatever the op:
//
//   - prefix: every buffer is 5 elements longer than the op is told; the
//     extra elements hold a sentinel that must survive the op;
//   - inputs: buffers the op only reads are bit-for-bit unchanged;
//   - overwrite: outputs the contract says the op sets are pre-filled with
//     NaN, which must not leak into the result (Gemm with beta = 0 too);
//   - errors: any error fails the case; ErrNotImplemented says that
//     conformance requires every op; Sync must return nil;
//   - leaks: Stats().LiveBuffers and LiveElements are back to their values
//     at the start of the case once the suite has freed its buffers;
//   - panics are recovered and reported as failures.
//
// # Tolerances
//
// S is the sum of the absolute values of the terms of the reference value
// (for Gemm also |beta·C|), K the number of terms. A float32 dot product has
// a worst-case error near K·ε·S (ε = 6e-8) and a typical one near √K·ε·S;
// 1e-5·√K·S covers the worst case for every K below 27,000 while still
// catching a missing or doubled term.
//
//	op                         tolerance on |got − want|
//	Alloc, Upload/Download     exact (bitwise, incl. NaN, ±Inf, −0, subnormals)
//	Fill, Copy                 exact (bitwise)
//	Gemm                       1e-5·√k·S
//	Gemm, exact_fp32 cases     1e-6·S; inputs 1+j·2⁻¹² times {−1,0,1}, so every
//	                           product and partial sum is exact in float32 and a
//	                           float32 backend is exact; TF32/fp16 paths fail
//	Conv2D                     1e-5·√(KH·KW·C)·S
//	Conv2DBackwardData         1e-5·√(KH·KW·F)·S
//	Conv2DBackwardFilter       1e-5·√(N·OutH·OutW)·S
//	Conv2D*, exact_fp32 cases  1e-6·S, as for Gemm
//	MaxPool2D (y and argmax)   exact
//	MaxPool2DBackward          1e-5·√(KH·KW)·S
//	BiasAdd                    1e-6·(|x| + |bias|)
//	BiasGrad                   1e-5·√rows·S
//	ReLU, ReLUBackward         exact
//	Mul                        1e-6·|want|
//	DropoutMask                keep/drop pattern exact (backend.DropoutKeep);
//	                           kept value 1/(1−rate) within 1e-6 relative
//	Softmax                    1e-5·|want| + 1e-7
//	SoftmaxCrossEntropy grad   (1e-5·(p+1) + 1e-7)/rows, p the softmax value
//	  stats[0] (loss sum)      Σ_rows 1e-5·(1+|loss|) + 2e-6·max|logit|
//	  stats[1] (correct)       exact (argmax is the first maximum)
//	Adam (per step, from the   m: 2e-6·(|m|+|g|); v: 2e-6·(v+g²);
//	  backend's own state)     param: 1e-6·|p| + 1e-4·|step| (β₂ᵗ in float32
//	                           loses digits in 1−β₂ᵗ)
//	SGD (per step)             vel: 2e-6·(|μ·v|+|lr·g|); param: 2e-6·(|p|+|v|) + that
//
// The naive float32 reference backend in this package's tests passes every
// case with all these tolerances divided by 10.
//
// # Gradient checks
//
// The GradCheck suite compares backward ops with central finite differences.
// Per op, the numerical derivative uses the backend's own forward op and a
// loss L = <G, f(x)> (G random, L summed in float64 from the downloaded
// float32 output):
//
//	Gemm (dA = G·Bᵀ, dB = Aᵀ·G)   step 1e-2   1e-2·S + 1e-4
//	Conv2D (dx, dw)               step 1e-2   1e-2·S + 1e-3 (first, last, 6 random coordinates each)
//	MaxPool2D                     step 1e-3   1e-5·(1+|g|); inputs distinct, 0.05 apart: no ties
//	ReLU                          step 1e-3   1e-4·|G| + 1e-6; inputs ≥ 0.05 from the kink
//	BiasAdd/BiasGrad              step 1e-2   1e-3·Σ|G| + 1e-4
//	SoftmaxCrossEntropy (mean)    step 1e-2   1e-3/rows + 1e-2·|g|
//
// Linear ops (Gemm, Conv2D, BiasAdd) have no truncation error, so the step
// only has to dwarf float32 rounding. The CNN case runs a small network
// (conv same → BiasAdd → ReLU → MaxPool → Gemm → BiasAdd →
// SoftmaxCrossEntropy) forward and backward on the backend and checks the
// gradient of the mean loss with respect to every input and parameter
// against central differences (step 1e-4) of a float64 reference forward
// pass, with tolerance 1e-3·|num| + 1e-4·max|num| + 1e-7.
//
// # Errors
//
// The Errors suite calls every op with each buffer one element short, each
// buffer nil, zero and negative sizes (n, rows, cols, m/n/k; Alloc(-1)) and
// inconsistent ConvParams/PoolParams. Each call must return, without
// panicking, an error matching backend.ErrShape whose message contains the
// backend's Name() and the op name, and Sync must succeed afterwards.
package backendtest
