// common.cuh: definitions shared by every kiln CUDA kernel. The Go package
// concatenates this header in front of the .cu files into one translation
// unit, so NVRTC needs no include paths.
//
// Conventions: every kernel is extern "C" (unmangled names the backend looks
// up), takes int sizes (the backend rejects sizes of 2^31 elements or more),
// and checks its own bounds, so any grid that covers the work is valid.

#define KILN_KERNEL extern "C" __global__

// Grid-stride loop over [0, n).
#define KILN_FOR(i, n) \
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += blockDim.x * gridDim.x)

// NVRTC has no <math.h>, so no INFINITY macro.
#define KILN_NEG_INF __int_as_float(0xff800000)
