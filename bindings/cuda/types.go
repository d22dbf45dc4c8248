package cuda

// The plain types of this package carry no build tag and link nothing, so
// code that is compiled without the driver (the CUDA backend's CPU-side
// emulation in kernels/cuda, build tag cudaemu) shares them with the real Context.

import "math"

// Error is a failed driver call.
type Error struct {
	Call string // the driver API function, e.g. "cuMemAlloc"
	Err  error  // the driver's error
}

// Error formats the error as "cuda: call: cause".
func (e *Error) Error() string { return "cuda: " + e.Call + ": " + e.Err.Error() }

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
