// Package opencl is kiln's thin adapter over the OpenCL 1.2 API of
// github.com/go-gl/cl: platforms and devices, one context with one in-order
// command queue, buffers, program builds (from source or from a binary, with
// the build log in the error), kernel launches with typed arguments, and
// events for timing. It knows nothing about kiln's ops.
//
// Every OpenCL call is checked; a failure becomes an *Error naming the call
// and the status code. The package is compiled only with the build tag
// `opencl`, which needs the OpenCL headers and the ICD loader (see
// scripts/install-opencl.sh and mk/opencl.mk for the cgo flags). Without the
// tag it is empty.
//
// Values of this package are not safe for concurrent use: a Context, its
// buffers, programs and kernels belong to one goroutine at a time.
package opencl
