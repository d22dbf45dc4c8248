package loader

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kiln-ml/kiln/backend"
)

func TestPluginOpenError(t *testing.T) {
	for _, tc := range []struct {
		name, err, want string
	}{
		{"no NVRTC", `plugin.Open("/opt/kiln/kiln-cuda"): libnvrtc.so.11.2: cannot open shared object file: No such file or directory`,
			"cannot load CUDA backend plugin /opt/kiln/kiln-cuda.so: it needs libnvrtc.so.11.2, which the dynamic loader did not find: install the CUDA toolkit's NVRTC"},
		{"another library", `plugin.Open("/opt/kiln/kiln-cuda"): libfoo.so.1: cannot open shared object file: No such file or directory`,
			"it needs libfoo.so.1, which the dynamic loader did not find: install the library or put its directory on LD_LIBRARY_PATH"},
		{"toolchain", `plugin.Open("/opt/kiln/kiln-cuda"): plugin was built with a different version of package runtime`,
			"(it must be built by the same Go toolchain and source as this binary): plugin.Open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := pluginOpenError("/opt/kiln/kiln-cuda.so", errors.New(tc.err))
			assert.ErrorIs(t, err, backend.ErrUnavailable)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
