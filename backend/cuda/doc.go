// Package cuda is kiln's CUDA backend: hand-written kernels
// (github.com/kiln-ml/kiln/kernels/cuda) compiled at start by NVRTC for the
// device's architecture (PTX cached on disk, keyed by source, options,
// architecture and NVRTC version), run through the driver API
// (github.com/kiln-ml/kiln/bindings/cuda, over gorgonia.org/cu). Everything
// but this file needs the build tag cuda, or cudaemu for the emulated device
// below.
//
// # Execution
//
// One context and one stream per Backend. The context belongs to one
// goroutine locked to its OS thread, which executes every driver call sent
// to it. Ops check their arguments on the host, queue a kernel (or a memset
// or copy) and return; only Sync and Download wait. Device buffers come
// from a size-bucketed free list (powers of two in four steps, at least 1
// KiB), are zeroed on Alloc, go back to the list on Free and are released on
// Close; Stats counts live user buffers. SoftmaxCrossEntropy reads labels on
// the device, so an invalid label is reported by the next Sync or Download.
//
// # Testing without a GPU: the emulated device
//
// The backend reaches the GPU through a small interface (device.go): the
// driver's context and loaded kernels (tag cuda), or, with the build tag
// cudaemu and without cuda, kernels/cuda's CPU emulator, which runs the
// same CUDA C kernels compiled as C++ (OpenEmulated). The conformance
// suite and a step-by-step training comparison with the CPU backend run on
// it in make test (`go test -tags cudaemu ./backend/cuda`), so this
// package's launch code and the kernels are exercised on GPU-less hosts.
//
// # Why a plugin: starting without a GPU
//
// Operators deploy one GPU build across a fleet, so a `-tags cuda` kiln must
// start on hosts with no driver or no GPU and fall back under --backend
// auto. gorgonia.org/cu prevents that if it is linked into the binary: its
// init calls cuInit and exits the process when that fails, and it makes
// libcuda.so.1 a load-time dependency (the binary would not even start
// without the driver library). So kiln keeps everything that links it out
// of the main binary:
//
//   - This package, the driver bindings and gorgonia.org/cu are built into a
//     Go plugin, bin/kiln-cuda.so (package
//     github.com/kiln-ml/kiln/backend/cuda/plugin,
//     `go build -buildmode=plugin -tags cuda`), which exports Open and Probe.
//   - The main binary (cmd/kiln/backend_cuda.go, `-tags cuda`) links only
//     github.com/kiln-ml/kiln/backend/cuda/loader. It registers "cuda" with a
//     factory whose Open and Probe first probe the driver through a tiny cgo
//     shim that links only libdl: dlopen("libcuda.so.1"), dlsym cuInit and
//     cuDeviceGetCount, cuInit(0), count devices. Only when that succeeds do
//     they plugin.Open kiln-cuda.so (next to the executable, or
//     $KILN_CUDA_PLUGIN) and call its Open/Probe, whose cuInit (in cu's init)
//     can then no longer fail.
//   - Otherwise they return an error wrapping backend.ErrUnavailable that
//     says exactly why: no libcuda.so.1 (with dlerror's text), cuInit's error
//     code and name (for example 100 CUDA_ERROR_NO_DEVICE), no devices, or
//     the plugin missing or built from different sources. `kiln devices`
//     prints it and --backend auto moves on to OpenCL or the CPU.
//
// This is the approach ggml takes to load its backends dynamically. The
// costs: the plugin must be built by the same Go toolchain from the same
// sources and flags as the binary (plugin.Open checks and says so), plugins
// need cgo and Linux or macOS, and the binary is dynamically linked (libdl).
// Tests that need a GPU live where they link no driver (the loader's tests)
// or behind the extra tag gpu, because a test binary that links
// gorgonia.org/cu exits before running on a GPU-less host.
package cuda
