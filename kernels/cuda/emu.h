//go:build cudaemu && linux

// emu.h: the CUDA built-ins kiln's kernels use, defined for a CPU so the
// unchanged .cu sources compile as C++ (g++) and run in emu.cc's emulator.
// Every thread of a block is a fiber (ucontext) on the calling OS thread;
// blocks run one after another, so __shared__ variables are function
// statics, all in one section (kiln_shared) that the launcher fills with
// 0xff bytes before each block (NaN as a float, -1 as an int): a read of
// shared memory no thread of the block wrote shows, instead of finding the
// last block's value. Launches are serialised (one set of statics), and
// atomics need no hardware atomics. Barriers and warp shuffles switch fibers; emu.cc checks
// that every live thread of the block (or warp) reaches the same one, as
// CUDA requires.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

struct uint3 {
	unsigned int x, y, z;
};
struct dim3 {
	unsigned int x, y, z;
};

namespace kiln_emu {
extern thread_local uint3 thread_idx, block_idx;
extern thread_local dim3 block_dim, grid_dim;
void sync_threads(int site);
uint32_t shfl_xor(uint32_t mask, uint32_t v, int lane_mask);
}  // namespace kiln_emu

#define threadIdx kiln_emu::thread_idx
#define blockIdx kiln_emu::block_idx
#define blockDim kiln_emu::block_dim
#define gridDim kiln_emu::grid_dim

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static __attribute__((section("kiln_shared"), aligned(16)))
#define __launch_bounds__(...)
#define __syncthreads() kiln_emu::sync_threads(__LINE__)

static inline float __int_as_float(int v) {
	float f;
	memcpy(&f, &v, 4);
	return f;
}

static inline float __shfl_xor_sync(unsigned mask, float v, int o) {
	uint32_t b;
	memcpy(&b, &v, 4);
	b = kiln_emu::shfl_xor(mask, b, o);
	memcpy(&v, &b, 4);
	return v;
}

static inline int __shfl_xor_sync(unsigned mask, int v, int o) {
	return (int)kiln_emu::shfl_xor(mask, (uint32_t)v, o);
}

// Fibers of one launch share an OS thread and only switch at barriers and
// shuffles, so a read-modify-write is atomic here.
static inline float atomicAdd(float* p, float v) {
	const float old = *p;
	*p = old + v;
	return old;
}

static inline int atomicMin(int* p, int v) {
	const int old = *p;
	if (v < old) *p = v;
	return old;
}

static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
