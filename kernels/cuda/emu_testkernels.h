//go:build cudaemu && linux

// emu_testkernels.h: deliberately wrong kernels for the emulator's own tests
// (kernels/cuda/emu_test.go), to show that it reports what a GPU would
// deadlock on or compute wrongly. Never compiled by NVRTC.

// kiln_emutest_split_barrier: the two halves of the block wait at different
// __syncthreads.
KILN_KERNEL void kiln_emutest_split_barrier(int* out) {
	if (threadIdx.x < 16) {
		__syncthreads();
	} else {
		__syncthreads();
	}
	out[threadIdx.x] = 1;
}

// kiln_emutest_exit_barrier: thread 0 leaves before a barrier the others
// wait at.
KILN_KERNEL void kiln_emutest_exit_barrier(int* out) {
	if (threadIdx.x == 0) return;
	__syncthreads();
	out[threadIdx.x] = 1;
}

// kiln_emutest_race: every thread writes its slot of shared memory and
// reads its neighbour's, with a barrier between the two only when sync is
// set. out[t] should be (t+1) % blockDim.x + 1 + salt.
KILN_KERNEL void kiln_emutest_race(int* out, int sync, int salt) {
	__shared__ int s[256];
	const int t = threadIdx.x;
	s[t] = t + 1 + salt;
	if (sync) __syncthreads();
	out[t] = s[(t + 1) % blockDim.x];
}

// kiln_emutest_blocks: each block reads what the block before it wrote in
// the same launch, which no GPU orders. out[b] should be b + 1.
KILN_KERNEL void kiln_emutest_blocks(int* out) {
	const int b = blockIdx.x;
	if (threadIdx.x == 0) out[b] = b == 0 ? 1 : out[b - 1] + 1;
}

// kiln_emutest_bcast: thread 0 publishes a value in shared memory and every
// thread reads it, with no barrier between. out[t] should be salt.
KILN_KERNEL void kiln_emutest_bcast(int* out, int salt) {
	__shared__ int v;
	if (threadIdx.x == 0) v = salt;
	out[threadIdx.x] = v;
}

// kiln_emutest_unwritten: block 0 writes a shared variable and block 1
// does not, then every thread reads it. Shared memory is per block, so on a
// GPU block 1 reads whatever was there; the emulator fills it with 0xff
// bytes before each block, so out[blockDim.x + t] should be -1 (and out[t]
// salt), in either block order.
KILN_KERNEL void kiln_emutest_unwritten(int* out, int salt) {
	__shared__ int v;
	if (blockIdx.x == 0 && threadIdx.x == 0) v = salt;
	__syncthreads();
	out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}
