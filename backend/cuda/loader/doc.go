// Package loader registers kiln's "cuda" backend without linking the CUDA
// driver: its Open and Probe first check the driver through dlopen
// ("libcuda.so.1", cuInit, cuDeviceGetCount) in a tiny cgo shim that links
// only libdl, and only when a device is present load the real backend from
// the Go plugin kiln-cuda.so (next to the executable, or $KILN_CUDA_PLUGIN).
// Every failure is an error wrapping backend.ErrUnavailable that says why,
// so --backend auto falls back to OpenCL or the CPU. See
// github.com/kiln-ml/kiln/backend/cuda for the whole design.
//
// Everything except this file needs the build tag cuda.
package loader
