//go:build cudaemu && linux

// emu.cc: a CPU emulator for kiln's CUDA kernels, for tests on hosts
// without a GPU (build tag cudaemu; see emu.go). The kernel sources are
// included unchanged (emu_kernels.h), in the order of Files in cuda.go (a
// test checks it).
//
// A launch runs every block of the grid one after another on the calling
// OS thread, in order or in reverse order (the Go side alternates), so a
// kernel whose blocks depend on each other's writes (a race between blocks
// on a GPU) computes differently from one launch to the next.
// A block's threads are fibers; the scheduler runs each until it finishes,
// reaches __syncthreads or a warp shuffle. When every live thread waits at
// __syncthreads they all go on; when every lane of a warp waits at a
// shuffle, the values are exchanged and the warp goes on. A barrier some
// threads can never reach (they have exited, or wait elsewhere) is a
// deadlock on a GPU: here it is reported as the launch's error.

// NVRTC compiles with --fmad=false: no contraction of a*b+c into an FMA
// except where the source writes fmaf. The same here (GCC, then clang).
#pragma GCC optimize("fp-contract=off")
#pragma STDC FP_CONTRACT OFF

// _longjmp between fiber stacks is what the scheduler does; the fortified
// longjmp would take it for a jump into a dead frame.
#undef _FORTIFY_SOURCE

#include "emu.h"

#include <setjmp.h>
#include <ucontext.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <mutex>
#include <utility>
#include <vector>

// The kernels, compiled twice: once for x86-64 CPUs with FMA (fmaf is then
// one instruction instead of a library call, which makes the emulator about
// seven times faster) and once for any CPU; emu_table picks at run time.
#if defined(__x86_64__)
namespace kiln_fma {
#pragma GCC push_options
#pragma GCC target("fma")
#include "emu_kernels.h"
#pragma GCC pop_options
}  // namespace kiln_fma
#endif
namespace kiln_base {
#include "emu_kernels.h"
}  // namespace kiln_base

namespace kiln_emu {

// The __shared__ statics of every kernel (emu.h), bounds from the linker.
extern "C" char __start_kiln_shared[], __stop_kiln_shared[];
// launch_mu serialises launches: the statics are one set for the process.
std::mutex launch_mu;

thread_local uint3 thread_idx, block_idx;
thread_local dim3 block_dim, grid_dim;

namespace {

enum State { kRun, kSync, kShfl, kDone };

struct Fiber {
	ucontext_t ctx;     // for the first start on this OS thread only
	jmp_buf start;      // the top of fiber_main: where a new block's thread begins
	jmp_buf at;         // where the fiber waits at a barrier or shuffle
	bool started;       // fiber_main runs on its stack
	bool fresh;         // the current block's thread has not begun
	State st;
	int site;  // the source line of the __syncthreads it waits at
	uint32_t val, res, mask;
	int lane_mask;
};

// Each fiber's stack is kStack bytes above an inaccessible guard page, so an
// overflow faults instead of corrupting the next fiber's stack.
constexpr size_t kStack = 64 << 10;

// Switching: a fiber is entered once per OS thread with setcontext (which
// costs a system call for the signal mask); after that every switch, and
// every new block's start (a jump back to the top of fiber_main, whose
// frame never returns), is a _setjmp/_longjmp pair, which keeps the mask.
struct Sched {
	jmp_buf main;
	std::vector<Fiber> fibers;
	char* stacks = nullptr;  // fibers.size() × (guard page + kStack)
	size_t stride = 0;
	int cur = 0;
	void (*entry)(const uint64_t*) = nullptr;
	const uint64_t* args = nullptr;
};

thread_local Sched sched;

void fiber_main() {
	_setjmp(sched.fibers[sched.cur].start);
	// first start or a new block: sched.cur is this fiber either way
	sched.entry(sched.args);
	sched.fibers[sched.cur].st = kDone;
	_longjmp(sched.main, 1);
}

void yield(State st) {
	Fiber& f = sched.fibers[sched.cur];
	f.st = st;
	if (_setjmp(f.at) == 0) _longjmp(sched.main, 1);
}

// resume runs fiber t until it finishes or waits.
void resume(int t) {
	Fiber& f = sched.fibers[t];
	sched.cur = t;
	if (_setjmp(sched.main) != 0) return;
	if (!f.started) {
		f.started = true;
		f.fresh = false;
		getcontext(&f.ctx);
		f.ctx.uc_stack.ss_sp = sched.stacks + (size_t)t * sched.stride + (sched.stride - kStack);
		f.ctx.uc_stack.ss_size = kStack;
		f.ctx.uc_link = nullptr;  // fiber_main never returns
		makecontext(&f.ctx, fiber_main, 0);
		setcontext(&f.ctx);
	}
	if (f.fresh) {
		f.fresh = false;
		_longjmp(f.start, 1);
	}
	_longjmp(f.at, 1);
}

// fail writes the launch's error message.
template <class... A>
bool fail(char* err, int errlen, const char* format, A... args) {
	int off = snprintf(err, errlen, "block (%u,%u,%u): ", block_idx.x, block_idx.y, block_idx.z);
	if (off < errlen) snprintf(err + off, errlen - off, format, args...);
	return false;
}

// run_block runs one block to completion; it returns false with err set on
// a barrier or shuffle that cannot complete. Between barriers the fibers
// run one after another, forward on even phases and backward on odd ones,
// or the other way round when flip is 1, so that a kernel missing a
// __syncthreads sees its threads in two orders. The launcher flips every
// other block, and each block between launches (the block order
// alternates): a stretch of code before its first barrier, too, runs in
// both orders, whichever thread writes and whichever reads.
bool run_block(int n, char* err, int errlen, int flip) {
	const unsigned bx = block_dim.x, by = block_dim.y;
	for (int t = 0; t < n; ++t) {
		sched.fibers[t].st = kRun;
		sched.fibers[t].fresh = true;
	}
	for (int phase = 0;; ++phase) {
		for (int i = 0; i < n; ++i) {
			const int t = (phase + flip) % 2 == 0 ? i : n - 1 - i;
			if (sched.fibers[t].st != kRun) continue;
			thread_idx = {(unsigned)t % bx, (unsigned)t / bx % by, (unsigned)t / (bx * by)};
			resume(t);
		}
		int done = 0, sync = 0, shfl = 0;
		for (int t = 0; t < n; ++t) {
			const State st = sched.fibers[t].st;
			done += st == kDone;
			sync += st == kSync;
			shfl += st == kShfl;
		}
		if (done == n) return true;
		bool moved = false;
		// Warps whose 32 lanes all wait at a shuffle exchange values.
		for (int w = 0; w * 32 < n && shfl > 0; ++w) {
			const int lo = w * 32, hi = lo + 32 < n ? lo + 32 : n;
			int waiting = 0, exited = 0;
			for (int t = lo; t < hi; ++t) {
				waiting += sched.fibers[t].st == kShfl;
				exited += sched.fibers[t].st == kDone;
			}
			if (waiting == 0) continue;
			if (waiting != 32) {
				// A lane waiting at __syncthreads cannot go on while its
				// warp-mates wait at a shuffle that needs it: a deadlock.
				return fail(err, errlen, "warp %d: __shfl_xor_sync reached by %d of 32 lanes (%d have exited, %d wait at __syncthreads, %d lanes in a partial warp)",
				            w, waiting, exited, hi - lo - waiting - exited, 32 - (hi - lo));
			}
			const Fiber& f0 = sched.fibers[lo];
			for (int t = lo; t < hi; ++t) {
				const Fiber& f = sched.fibers[t];
				if (f.mask != 0xffffffffu || f.lane_mask != f0.lane_mask) {
					return fail(err, errlen, "warp %d: lanes disagree on the shuffle (mask %#x, lane mask %d vs %d)",
					            w, f.mask, f.lane_mask, f0.lane_mask);
				}
			}
			for (int t = lo; t < hi; ++t) {
				const int src = lo + ((t - lo) ^ f0.lane_mask);
				sched.fibers[t].res = sched.fibers[src].val;
			}
			for (int t = lo; t < hi; ++t) sched.fibers[t].st = kRun;
			moved = true;
		}
		if (moved) continue;
		if (sync == n) {
			for (int t = 1; t < n; ++t) {
				if (sched.fibers[t].site != sched.fibers[0].site) {
					return fail(err, errlen, "threads 0 and %d wait at different __syncthreads (lines %d and %d)", t,
					            sched.fibers[0].site, sched.fibers[t].site);
				}
			}
			for (int t = 0; t < n; ++t) sched.fibers[t].st = kRun;
			continue;
		}
		return fail(err, errlen, "__syncthreads can never complete: %d threads wait at it, %d at a shuffle, %d have exited", sync,
		            shfl, done);
	}
}

}  // namespace

void sync_threads(int site) {
	sched.fibers[sched.cur].site = site;
	yield(kSync);
}

uint32_t shfl_xor(uint32_t mask, uint32_t v, int lane_mask) {
	Fiber& f = sched.fibers[sched.cur];
	f.val = v;
	f.mask = mask;
	f.lane_mask = lane_mask & 31;
	yield(kShfl);
	return sched.fibers[sched.cur].res;
}

// Argument slots as bindings/cuda packs them: 8 bytes each, 4-byte values
// in the low half.
template <class T>
struct Unpack;
template <>
struct Unpack<int> {
	static int get(uint64_t v) { return (int)(uint32_t)v; }
};
template <>
struct Unpack<float> {
	static float get(uint64_t v) {
		const uint32_t b = (uint32_t)v;
		float f;
		memcpy(&f, &b, 4);
		return f;
	}
};
template <>
struct Unpack<unsigned long long> {
	static unsigned long long get(uint64_t v) { return v; }
};
template <class T>
struct Unpack<T*> {
	static T* get(uint64_t v) { return (T*)(uintptr_t)v; }
};

template <auto F>
struct Thunk;
template <class... P, void (*F)(P...)>
struct Thunk<F> {
	static constexpr int nargs = sizeof...(P);
	template <size_t... I>
	static void call_impl(const uint64_t* a, std::index_sequence<I...>) {
		F(Unpack<P>::get(a[I])...);
	}
	static void call(const uint64_t* a) { call_impl(a, std::index_sequence_for<P...>{}); }
};

struct Entry {
	const char* name;
	int nargs;
	void (*call)(const uint64_t*);
};

#define KILN_EMU_ENTRY(f) \
	{ #f, Thunk<KILN_EMU_NS::f>::nargs, &Thunk<KILN_EMU_NS::f>::call }
#define KILN_EMU_TABLE                                                                                              \
	{                                                                                                               \
		KILN_EMU_ENTRY(kiln_sgemm_nn_128), KILN_EMU_ENTRY(kiln_sgemm_nt_128), KILN_EMU_ENTRY(kiln_sgemm_tn_128),    \
		    KILN_EMU_ENTRY(kiln_sgemm_tt_128), KILN_EMU_ENTRY(kiln_sgemm_nn_32), KILN_EMU_ENTRY(kiln_sgemm_nt_32),  \
		    KILN_EMU_ENTRY(kiln_sgemm_tn_32), KILN_EMU_ENTRY(kiln_sgemm_tt_32), KILN_EMU_ENTRY(kiln_conv2d_fwd),    \
		    KILN_EMU_ENTRY(kiln_conv2d_bwd_filter), KILN_EMU_ENTRY(kiln_conv2d_bwd_data),                         \
		    KILN_EMU_ENTRY(kiln_maxpool2d_fwd), KILN_EMU_ENTRY(kiln_maxpool2d_bwd), KILN_EMU_ENTRY(kiln_bias_add), \
		    KILN_EMU_ENTRY(kiln_bias_grad), KILN_EMU_ENTRY(kiln_relu), KILN_EMU_ENTRY(kiln_relu_bwd),             \
		    KILN_EMU_ENTRY(kiln_mul), KILN_EMU_ENTRY(kiln_dropout_mask), KILN_EMU_ENTRY(kiln_softmax),            \
		    KILN_EMU_ENTRY(kiln_softmax_xent), KILN_EMU_ENTRY(kiln_adam), KILN_EMU_ENTRY(kiln_sgd),               \
		    KILN_EMU_ENTRY(kiln_emutest_split_barrier), KILN_EMU_ENTRY(kiln_emutest_exit_barrier),                \
		    KILN_EMU_ENTRY(kiln_emutest_race), KILN_EMU_ENTRY(kiln_emutest_blocks), KILN_EMU_ENTRY(kiln_emutest_bcast), KILN_EMU_ENTRY(kiln_emutest_unwritten),                                \
	}

constexpr int kNumEntries = 29;

#define KILN_EMU_NS kiln_base
const Entry kBase[kNumEntries] = KILN_EMU_TABLE;
#undef KILN_EMU_NS
#if defined(__x86_64__)
#define KILN_EMU_NS kiln_fma
const Entry kFMA[kNumEntries] = KILN_EMU_TABLE;
#undef KILN_EMU_NS
#endif

// emu_table is the kernel table for this CPU.
const Entry* emu_table() {
#if defined(__x86_64__)
	if (__builtin_cpu_supports("fma")) return kFMA;
#endif
	return kBase;
}

}  // namespace kiln_emu

extern "C" {

// kiln_emu_kernels writes the names of every kernel the emulator has,
// separated by spaces, into buf (for the test that it matches the Go
// table); it returns the number of kernels.
int kiln_emu_kernels(char* buf, int len) {
	int off = 0;
	const kiln_emu::Entry* t = kiln_emu::emu_table();
	for (int i = 0; i < kiln_emu::kNumEntries; ++i) {
		off += snprintf(buf + off, off < len ? len - off : 0, "%s ", t[i].name);
	}
	return kiln_emu::kNumEntries;
}

// kiln_emu_launch runs kernel name over the grid, its blocks in reverse
// order when reverse is set; 0 on success, else -1 with a message in err.
int kiln_emu_launch(const char* name, int gx, int gy, int gz, int bx, int by, int bz, const uint64_t* args, int nargs,
                    int reverse, char* err, int errlen) {
	using namespace kiln_emu;
	const Entry* e = nullptr;
	const Entry* t = emu_table();
	for (int i = 0; i < kNumEntries; ++i) {
		if (strcmp(t[i].name, name) == 0) e = &t[i];
	}
	if (!e) {
		snprintf(err, errlen, "no kernel named %s", name);
		return -1;
	}
	if (nargs != e->nargs) {
		snprintf(err, errlen, "%s takes %d arguments, launched with %d", name, e->nargs, nargs);
		return -1;
	}
	std::lock_guard<std::mutex> lock(launch_mu);
	const long n = (long)bx * by * bz;
	if (gx < 1 || gy < 1 || gz < 1 || bx < 1 || by < 1 || bz < 1 || n > 1024 || bz > 64 || gy > 65535 || gz > 65535) {
		snprintf(err, errlen, "%s: invalid launch: grid (%d,%d,%d), block (%d,%d,%d)", name, gx, gy, gz, bx, by, bz);
		return -1;
	}
	if (sched.fibers.size() < (size_t)n) {
		// new stacks: every fiber starts afresh on them
		const size_t page = (size_t)sysconf(_SC_PAGESIZE);
		const size_t stride = page + kStack;
		char* st = (char*)mmap(nullptr, (size_t)n * stride, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (st == MAP_FAILED) {
			snprintf(err, errlen, "%s: cannot map %ld fiber stacks", name, n);
			return -1;
		}
		for (long t = 0; t < n; ++t) mprotect(st + t * stride, page, PROT_NONE);
		if (sched.stacks) munmap(sched.stacks, sched.fibers.size() * sched.stride);
		sched.stacks = st;
		sched.stride = stride;
		sched.fibers.assign(n, Fiber{});
	}
	sched.entry = e->call;
	sched.args = args;
	block_dim = {(unsigned)bx, (unsigned)by, (unsigned)bz};
	grid_dim = {(unsigned)gx, (unsigned)gy, (unsigned)gz};
	const long blocks = (long)gx * gy * gz;
	for (long i = 0; i < blocks; ++i) {
		const long b = reverse ? blocks - 1 - i : i;
		block_idx = {(unsigned)(b % gx), (unsigned)(b / gx % gy), (unsigned)(b / ((long)gx * gy))};
		// shared memory as a new block finds it: not the last block's values
		memset(__start_kiln_shared, 0xff, (size_t)(__stop_kiln_shared - __start_kiln_shared));
		if (!run_block((int)n, err, errlen, (int)((b + reverse) & 1))) {
			sched.args = nullptr;
			return -1;
		}
	}
	sched.args = nullptr;  // Go memory: not kept past the call
	return 0;
}

// kiln_emu_alloc maps bytes of "device" memory that end exactly at an
// inaccessible guard page (and start after one), so a kernel that reads or
// writes past either end of a buffer faults at once instead of corrupting
// memory. It returns 0 when the mapping fails.
uintptr_t kiln_emu_alloc(int64_t bytes) {
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	const size_t data = ((size_t)bytes + page - 1) / page * page;
	char* base = (char*)mmap(nullptr, data + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) return 0;
	if (mprotect(base + page, data, PROT_READ | PROT_WRITE) != 0) {
		munmap(base, data + 2 * page);
		return 0;
	}
	return (uintptr_t)(base + page + data - (size_t)bytes);
}

// kiln_emu_free unmaps a block from kiln_emu_alloc of the same size.
void kiln_emu_free(uintptr_t p, int64_t bytes) {
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	const size_t data = ((size_t)bytes + page - 1) / page * page;
	char* end = (char*)p + bytes;  // the start of the trailing guard page
	munmap(end - data - page, data + 2 * page);
}

void kiln_emu_copy(uintptr_t dst, const void* src, int64_t bytes) { memmove((void*)dst, src, (size_t)bytes); }
void kiln_emu_read(void* dst, uintptr_t src, int64_t bytes) { memmove(dst, (const void*)src, (size_t)bytes); }
void kiln_emu_move(uintptr_t dst, uintptr_t src, int64_t bytes) { memmove((void*)dst, (const void*)src, (size_t)bytes); }
void kiln_emu_memset32(uintptr_t dst, uint32_t v, int64_t n) {
	uint32_t* p = (uint32_t*)dst;
	for (int64_t i = 0; i < n; ++i) p[i] = v;
}

}  // extern "C"
