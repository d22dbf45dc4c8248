package cuda

// The plain types of this package carry no build tag and link nothing, so
// code that is compiled without the driver (the CUDA backend's CPU-side
// emulation in kernels/cuda, build tag cudaemu) shares them with the real Context.

import (
	"math"
	"strconv"
	"strings"
)

// Error is a failed driver call.
type Error struct {
	Call string // the driver API function, e.g. "cuMemAlloc"
	Err  error  // the driver's error
}

// Error formats the error as "cuda: call: cause", with the driver's name
// and meaning for the codes gorgonia.org/cu prints only as numbers
// ("UnknownErrorCode:222").
func (e *Error) Error() string {
	msg := "cuda: " + e.Call + ": " + e.Err.Error()
	if hint := codeHint(e.Err.Error()); hint != "" {
		msg += " (" + hint + ")"
	}
	return msg
}

// unknownCodes names the driver's results (CUresult) that
// gorgonia.org/cu v0.9.6 has no name for and a user on a GPU host meets
// first: a driver too old for the toolkit, a stub libcuda, a device held
// by another process.
var unknownCodes = map[int]string{
	34:  "CUDA_ERROR_STUB_LIBRARY: the libcuda loaded is the toolkit's stub, not the driver's; put the driver's library first on the loader path (remove the toolkit's stubs directory from LD_LIBRARY_PATH)",
	36:  "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER: the call needs a newer NVIDIA driver",
	46:  "CUDA_ERROR_DEVICE_UNAVAILABLE: the device is busy or unavailable, as in exclusive-process compute mode with another process on it (see nvidia-smi), or prohibited mode",
	222: "CUDA_ERROR_UNSUPPORTED_PTX_VERSION: the driver is older than the PTX the toolkit's NVRTC emits (CUDA 11.8's needs driver 520 or newer): upgrade the driver, or build kiln's plugin with the toolkit that matches it",
	223: "CUDA_ERROR_JIT_COMPILATION_DISABLED: the driver's PTX JIT is disabled (CUDA_DISABLE_PTX_JIT?), and kiln loads its kernels as PTX",
	224: "CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY: the device does not support the execution affinity asked for",
	225: "CUDA_ERROR_UNSUPPORTED_DEVSIDE_SYNC: the PTX calls cudaDeviceSynchronize from the device",
}

// codeHint returns what unknownCodes says of a "UnknownErrorCode:N"
// message, or "".
func codeHint(msg string) string {
	const p = "UnknownErrorCode:"
	i := strings.Index(msg, p)
	if i < 0 {
		return ""
	}
	digits := msg[i+len(p):]
	end := 0
	for end < len(digits) && digits[end] >= '0' && digits[end] <= '9' {
		end++
	}
	code, err := strconv.Atoi(digits[:end])
	if err != nil {
		return ""
	}
	return unknownCodes[code]
}

// Unwrap returns the driver's error.
func (e *Error) Unwrap() error { return e.Err }

// DeviceInfo describes one device.
type DeviceInfo struct {
	Ordinal      int    // the driver's device number
	Name         string // the device's name, e.g. "NVIDIA H100 80GB HBM3"
	MemoryBytes  int64  // total device memory
	SMs          int    // multiprocessors
	Major, Minor int    // compute capability
	Driver       int    // driver version, e.g. 12040
}

// DevicePtr is a device address.
type DevicePtr uintptr

// Dim is a grid or block size.
type Dim struct{ X, Y, Z int }

// Arg is one kernel argument in the 8-byte slot gorgonia.org/cu's Launch
// reads (it copies 8 bytes from behind every argument pointer). Build them
// with Int, F32, U64 and Ptr; on little-endian hosts a 4-byte parameter
// reads the low half.
type Arg uint64

// Int is a C int argument.
func Int(v int) Arg { return Arg(uint64(uint32(int32(v)))) }

// F32 is a C float argument.
func F32(v float32) Arg { return Arg(math.Float32bits(v)) }

// U64 is an unsigned long long argument.
func U64(v uint64) Arg { return Arg(v) }

// Ptr is a device pointer argument.
func Ptr(p DevicePtr) Arg { return Arg(p) }
