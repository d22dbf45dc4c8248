//go:build cudaemu && linux

package cuda

/*
#cgo CXXFLAGS: -std=c++17 -O2 -Wno-unknown-pragmas
#include <stdint.h>
#include <stdlib.h>

int kiln_emu_kernels(char* buf, int len);
int kiln_emu_launch(const char* name, int gx, int gy, int gz, int bx, int by, int bz, const uint64_t* args, int nargs,
                    int reverse, char* err, int errlen);
uintptr_t kiln_emu_alloc(int64_t bytes);
void kiln_emu_free(uintptr_t p, int64_t bytes);
void kiln_emu_copy(uintptr_t dst, const void* src, int64_t bytes);
void kiln_emu_read(void* dst, uintptr_t src, int64_t bytes);
void kiln_emu_move(uintptr_t dst, uintptr_t src, int64_t bytes);
void kiln_emu_memset32(uintptr_t dst, uint32_t v, int64_t n);
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// Emulator runs the kernels of this package on the CPU (build tag
// cudaemu; it needs a C++17 compiler). The .cu sources are compiled
// unchanged as C++ against emu.h, which defines the CUDA built-ins they use;
// each block's threads run as fibers, switching only at __syncthreads and
// warp shuffles, so those behave as on a GPU, and a barrier that cannot
// complete (or that threads reach at different call sites) is an error
// rather than a hang. Between two barriers the fibers run one after another,
// in forward order and in reverse order on alternate phases (which order
// comes first alternates between blocks and between launches), so a missing
// __syncthreads between a write and another thread's read is likely, though
// not certain, to give a wrong result. Shared memory is filled with 0xff
// bytes (NaN, -1) before each block, so a read of shared memory the block
// never wrote shows too. Device memory is host memory between
// guard pages, each allocation ending where its trailing guard page begins:
// a kernel that reads or writes past the end of a buffer faults at once
// (before its start, only when the access reaches the leading guard page).
//
// It exists so that the CUDA backend's launch code and kernels run against
// the conformance suite on hosts without a GPU. It checks semantics, not
// speed, and it does not model what only a GPU shows: blocks racing on the
// same memory at the same time (blocks run one after another here, in both
// orders, see Launch), threads racing in ways the two orders miss, the
// order of float atomics (a GPU's sums vary from run to run; the emulator's
// follow its two block orders), limits of __launch_bounds__, or the
// precision of the device's expf and logf. Launches are serialised.
type Emulator struct {
	mu       sync.Mutex
	live     map[uintptr]int64 // allocation → bytes
	launches map[string]int    // launches of each kernel so far
	reverse  int               // 1: each kernel's first launch runs its blocks in reverse
}

// BlockOrderEnv names the environment variable that, set to "reverse",
// makes every kernel's first launch on a new emulator run its blocks in
// reverse order (then alternating as always), so a test suite run twice,
// with and without it, runs each launch in both orders.
const BlockOrderEnv = "KILN_EMU_BLOCK_ORDER"

// NewEmulator returns an emulator with no memory allocated.
func NewEmulator() *Emulator {
	e := &Emulator{live: map[uintptr]int64{}, launches: map[string]int{}}
	if os.Getenv(BlockOrderEnv) == "reverse" {
		e.reverse = 1
	}
	return e
}

// EmulatedKernels lists the kernels the emulator was compiled with.
func EmulatedKernels() []string {
	buf := make([]byte, 4096)
	C.kiln_emu_kernels((*C.char)(unsafe.Pointer(&buf[0])), C.int(len(buf)))
	s := string(buf)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return strings.Fields(s)
}

// Alloc returns bytes of emulated device memory, zeroed.
func (e *Emulator) Alloc(bytes int64) (uintptr, error) {
	if bytes < 0 {
		return 0, fmt.Errorf("emulator: alloc of %d bytes", bytes)
	}
	p := uintptr(C.kiln_emu_alloc(C.int64_t(bytes)))
	if p == 0 {
		return 0, fmt.Errorf("emulator: cannot map %d bytes", bytes)
	}
	e.mu.Lock()
	e.live[p] = bytes
	e.mu.Unlock()
	return p, nil
}

// Free releases an allocation.
func (e *Emulator) Free(p uintptr) error {
	e.mu.Lock()
	bytes, ok := e.live[p]
	delete(e.live, p)
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("emulator: free of %#x, which is not allocated", p)
	}
	C.kiln_emu_free(C.uintptr_t(p), C.int64_t(bytes))
	return nil
}

// Live is the number of allocations not yet freed.
func (e *Emulator) Live() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.live)
}

// FreeAll releases every allocation still live and returns how many there
// were.
func (e *Emulator) FreeAll() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.live)
	for p, bytes := range e.live {
		C.kiln_emu_free(C.uintptr_t(p), C.int64_t(bytes))
	}
	clear(e.live)
	return n
}

// check verifies that [p, p+bytes) lies inside one allocation.
func (e *Emulator) check(p uintptr, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("emulator: negative size %d", bytes)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for base, n := range e.live {
		if p >= base && p+uintptr(bytes) <= base+uintptr(n) {
			return nil
		}
	}
	return fmt.Errorf("emulator: %d bytes at %#x are not inside one allocation", bytes, p)
}

// Upload copies src to dst.
func (e *Emulator) Upload(dst uintptr, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	if err := e.check(dst, int64(len(src))*4); err != nil {
		return err
	}
	C.kiln_emu_copy(C.uintptr_t(dst), unsafe.Pointer(&src[0]), C.int64_t(len(src)*4))
	return nil
}

// Download copies len(dst) floats from src.
func (e *Emulator) Download(dst []float32, src uintptr) error { return download(e, dst, src) }

// DownloadInt32 copies len(dst) int32s from src.
func (e *Emulator) DownloadInt32(dst []int32, src uintptr) error { return download(e, dst, src) }

func download[T float32 | int32](e *Emulator, dst []T, src uintptr) error {
	if len(dst) == 0 {
		return nil
	}
	if err := e.check(src, int64(len(dst))*4); err != nil {
		return err
	}
	// &dst[0] written out here, so that cgo's pointer check covers the
	// slice only, not whatever object the slice lives in.
	C.kiln_emu_read(unsafe.Pointer(&dst[0]), C.uintptr_t(src), C.int64_t(len(dst)*4))
	return nil
}

// CopyDtoD copies bytes from src to dst.
func (e *Emulator) CopyDtoD(dst, src uintptr, bytes int64) error {
	if err := e.check(dst, bytes); err != nil {
		return err
	}
	if err := e.check(src, bytes); err != nil {
		return err
	}
	C.kiln_emu_move(C.uintptr_t(dst), C.uintptr_t(src), C.int64_t(bytes))
	return nil
}

// Memset32 sets n 32-bit words at dst to v.
func (e *Emulator) Memset32(dst uintptr, v uint32, n int64) error {
	if err := e.check(dst, n*4); err != nil {
		return err
	}
	C.kiln_emu_memset32(C.uintptr_t(dst), C.uint32_t(v), C.int64_t(n))
	return nil
}

// Launch runs kernel name over grid × block threads with args packed as
// bindings/cuda packs them (8 bytes a slot; 4-byte values in the low half;
// pointers are addresses from Alloc). It returns when the kernel is done.
// Each kernel's launches alternate between running the grid's blocks in
// order and in reverse order, so that blocks that depend on each other's
// writes (a race on a GPU) show.
func (e *Emulator) Launch(name string, grid, block [3]int, args []uint64) error {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var errbuf [512]byte
	if len(args) == 0 {
		args = []uint64{0} // kernels all take arguments; this keeps &args[0] valid
		args = args[:0]
	}
	g := func(v int) C.int { return C.int(max(v, 1)) }
	e.mu.Lock()
	reverse := C.int((e.launches[name] + e.reverse) % 2)
	e.launches[name]++
	e.mu.Unlock()
	// &args[0] and &errbuf[0] written out in the call, so that cgo's pointer
	// check covers those arrays only.
	if C.kiln_emu_launch(cname, g(grid[0]), g(grid[1]), g(grid[2]), g(block[0]), g(block[1]), g(block[2]),
		(*C.uint64_t)(unsafe.Pointer(&args[:1][0])), C.int(len(args)), reverse, (*C.char)(unsafe.Pointer(&errbuf[0])), C.int(len(errbuf))) != 0 {
		msg := string(errbuf[:])
		if i := strings.IndexByte(msg, 0); i >= 0 {
			msg = msg[:i]
		}
		return fmt.Errorf("emulator: %s", msg)
	}
	return nil
}
