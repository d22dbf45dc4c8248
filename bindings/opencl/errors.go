//go:build opencl

package opencl

import (
	"errors"
	"fmt"

	"github.com/go-gl/cl/v1.2/cl"
)

// Status codes this package tests for (OpenCL's cl_int values).
const (
	statusSuccess              = 0
	statusDeviceNotFound       = -1
	statusMemAllocFailure      = -4
	statusOutOfResources       = -5
	statusOutOfHostMemory      = -6
	statusBuildProgramFailure  = -11
	statusInvalidBinary        = -42
	statusInvalidBufferSize    = -61
	statusPlatformNotFoundKHR  = -1001
	statusInvalidWorkGroupSize = -54
)

// ErrNoPlatform is matched (errors.Is) when the ICD loader finds no OpenCL
// platform, i.e. no driver (ICD) is installed.
var ErrNoPlatform = errors.New("no OpenCL platform found (no ICD installed)")

// ErrNoDevice is matched when the platforms expose no device.
var ErrNoDevice = errors.New("no OpenCL device found")

// ErrOutOfMemory is matched by errors from allocations or launches that ran
// out of device or host memory.
var ErrOutOfMemory = errors.New("out of device memory")

// ErrReleased is matched when an object is used after Release.
var ErrReleased = errors.New("OpenCL object already released")

// Error is a failed OpenCL call.
type Error struct {
	Call   string // the OpenCL function, e.g. "clCreateBuffer"
	Status int32  // the cl_int status it returned
	Detail string // optional context, e.g. the size requested
}

// Error formats the error as "call: CL_STATUS (code)", then the detail if any.
func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s (%d)", e.Call, StatusName(e.Status), e.Status)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is lets errors.Is match ErrOutOfMemory, ErrNoPlatform and ErrNoDevice.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrOutOfMemory:
		return e.Status == statusMemAllocFailure || e.Status == statusOutOfResources || e.Status == statusOutOfHostMemory
	case ErrNoPlatform:
		return e.Status == statusPlatformNotFoundKHR
	case ErrNoDevice:
		return e.Status == statusDeviceNotFound
	}
	return false
}

// StatusName returns the symbolic name of an OpenCL status code.
func StatusName(status int32) string {
	switch status {
	case statusPlatformNotFoundKHR:
		return "CL_PLATFORM_NOT_FOUND_KHR"
	}
	if s := cl.ErrToStr(cl.ErrorCode(status)); s != "" {
		return "CL_" + s
	}
	return "unknown status"
}

// check turns a status into an *Error (nil on success).
func check(call string, status cl.ErrorCode) error {
	if status == statusSuccess {
		return nil
	}
	return &Error{Call: call, Status: int32(status)}
}

// checkf is check with a detail message.
func checkf(call string, status cl.ErrorCode, format string, args ...any) error {
	if status == statusSuccess {
		return nil
	}
	return &Error{Call: call, Status: int32(status), Detail: fmt.Sprintf(format, args...)}
}

// BuildError is a program that failed to build: it carries the compiler's
// log for the device.
type BuildError struct {
	Program string // the program's name
	Device  string // the device it was built for
	Err     error  // the failed clBuildProgram call
	Log     string // the build log
}

// Error names the program and device, then gives the build log.
func (e *BuildError) Error() string {
	return fmt.Sprintf("build program %q for %s: %v; build log:\n%s", e.Program, e.Device, e.Err, e.Log)
}

// Unwrap returns the failed call.
func (e *BuildError) Unwrap() error { return e.Err }
