package loader

import (
	"fmt"
	"strings"

	"github.com/kiln-ml/kiln/backend"
)

// pluginOpenError says why plugin.Open refused the CUDA backend plugin at
// path. The dynamic loader's "cannot open shared object file" names a
// library the plugin links (NVRTC, from the CUDA toolkit: a host with only
// the driver lacks it), which is not the toolchain mismatch every other
// failure is.
func pluginOpenError(path string, err error) error {
	msg := err.Error()
	const missing = ": cannot open shared object file"
	if i := strings.Index(msg, missing); i >= 0 {
		lib := msg[:i]
		if j := strings.LastIndex(lib, ": "); j >= 0 {
			lib = lib[j+2:]
		}
		hint := "install the library or put its directory on LD_LIBRARY_PATH"
		if strings.HasPrefix(lib, "libnvrtc") {
			hint = "install the CUDA toolkit's NVRTC (scripts/install-cuda.sh), or put the lib64 of NVIDIA's toolkit on LD_LIBRARY_PATH; the driver alone does not have it"
		}
		return fmt.Errorf("%w: cannot load CUDA backend plugin %s: it needs %s, which the dynamic loader did not find: %s", backend.ErrUnavailable, path, lib, hint)
	}
	return fmt.Errorf("%w: cannot load CUDA backend plugin %s (it must be built by the same Go toolchain and source as this binary): %v", backend.ErrUnavailable, path, err)
}
