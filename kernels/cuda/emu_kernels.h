//go:build cudaemu && linux

// emu_kernels.h: the kernel sources in the order of Files in cuda.go, for
// emu.cc, which includes this inside a namespace once per CPU variant. The
// kernels get internal linkage (static) instead of extern "C", so the
// variants do not clash.
#undef KILN_KERNEL
#include "common.cuh"
#undef KILN_KERNEL
#define KILN_KERNEL static __global__
#include "gemm.cu"
#include "conv.cu"
#include "pool.cu"
#include "elementwise.cu"
#include "softmax.cu"
#include "optim.cu"

// not a kernel source: the emulator's own test kernels
#include "emu_testkernels.h"
