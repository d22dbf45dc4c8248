// Package opencl is kiln's OpenCL backend: it runs the hand-written OpenCL C
// kernels of kernels/opencl through the thin go-gl/cl adapter in
// bindings/opencl, on a GPU, an accelerator or (through PoCL) the CPU.
//
// It is compiled only with the build tag `opencl` (see mk/opencl.mk for the
// cgo flags go-gl/cl needs); without the tag this package is empty and the
// registry reports the backend as not compiled in. With the tag, importing
// it registers the backend "opencl".
//
// # Devices
//
// Open picks the best device: a GPU before an accelerator before a CPU; among
// GPUs a discrete one before an integrated one (CL_DEVICE_HOST_UNIFIED_MEMORY),
// then the larger compute units × global memory; otherwise in platform order. backend.Options.Device, or else the
// environment variable KILN_OPENCL_DEVICE, selects one by index (as listed
// by `kiln devices`) or by a case-insensitive substring of its name. With no
// OpenCL platform installed, Open returns an error wrapping
// backend.ErrUnavailable that says what to install.
//
// # Memory
//
// Buffers come from a size-bucketed free list: Free returns a buffer's
// device memory to its bucket, Alloc reuses it (zero-filled), and Close
// releases everything. Stats counts the user's live buffers only (the
// convolution workspace is internal). An allocation the device cannot hold
// returns an error naming the backend, Alloc and the sizes.
//
// # Kernel cache
//
// Each .cl program is built once per device and its binary cached under
// backend.Options.CacheDir, or os.UserCacheDir()/kiln/opencl. The file name
// is a SHA-256 of the source, the build options, the device name, vendor
// and version, the driver version and the platform, so a driver upgrade
// never serves a stale binary. Files are written atomically (temporary
// file, fsync, rename) and carry a checksum; a corrupt or rejected binary
// is rebuilt from source and rewritten.
//
// # Numerics
//
// Everything is float32. Reductions (bias gradient, softmax sums, loss
// totals) accumulate in double where the device supports it. Every op
// validates its sizes with backend.Need / Validate first and returns
// errors matching backend.ErrShape that name "opencl" and the op. Buffers
// hold at most 2³¹−1 elements (the kernels index with 32-bit ints).
package opencl
