// Package cuda is kiln's thin layer over the CUDA driver API
// (gorgonia.org/cu): one context owned by one goroutine locked to its OS
// thread, one stream, modules loaded from PTX, kernel launches, device
// memory, copies and events. It knows nothing of op semantics. Every error
// names the driver call that failed.
//
// Everything except this file needs the build tag cuda, and any binary that
// links it links gorgonia.org/cu, whose init calls cuInit and exits the
// process when that fails, and needs libcuda.so.1 at load time. kiln
// therefore links it only into the CUDA backend plugin (see
// github.com/kiln-ml/kiln/backend/cuda), loaded after a dlopen probe has
// shown that a driver and a device are present.
//
// PTX compilation with NVRTC lives in the subpackage rtc, which links only
// libnvrtc and works without a GPU.
package cuda
