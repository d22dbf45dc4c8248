//go:build cuda

package loader

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/backendtest"
)

func TestProbeMissingLibrary(t *testing.T) {
	_, err := probeLib("libkiln-does-not-exist.so.1")
	require.Error(t, err)
	assert.True(t, errors.Is(err, backend.ErrUnavailable))
	assert.Contains(t, err.Error(), "no CUDA driver: cannot load libkiln-does-not-exist.so.1")
}

func TestProbeNotADriver(t *testing.T) {
	// libdl/libc load fine but export no cuInit.
	_, err := probeLib("libc.so.6")
	require.Error(t, err)
	assert.True(t, errors.Is(err, backend.ErrUnavailable))
	// The library probed is named (it said libcuda.so.1 whatever was loaded).
	assert.Contains(t, err.Error(), "libc.so.6 is not a usable CUDA driver")
}

func TestOpenPluginErrors(t *testing.T) {
	dir := t.TempDir()
	bogus := filepath.Join(dir, "bogus.so")
	require.NoError(t, os.WriteFile(bogus, []byte("not an ELF file"), 0o644))
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "kiln-cuda.so"), "is missing"},
		{"not a plugin", bogus, "cannot load CUDA backend plugin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openPlugin(tc.path)
			require.Error(t, err)
			assert.True(t, errors.Is(err, backend.ErrUnavailable))
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestPluginPathFromEnv(t *testing.T) {
	t.Setenv(EnvPlugin, "/opt/kiln/custom.so")
	p, err := PluginPath()
	require.NoError(t, err)
	assert.Equal(t, "/opt/kiln/custom.so", p)
}

// goBuild builds a package of this module with -tags cuda into dir.
func goBuild(t *testing.T, out string, extra ...string) {
	t.Helper()
	args := append([]string{"build", "-tags", "cuda", "-o", out}, extra...)
	cmd := exec.Command("go", args...)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), b)
}

// kilnBinary returns the -tags cuda kiln binary: $KILN_CUDA_BIN (make builds
// it once), else one built here.
func kilnBinary(t *testing.T) string {
	if p := os.Getenv("KILN_CUDA_BIN"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "kiln")
	goBuild(t, out, "github.com/kiln-ml/kiln/cmd/kiln")
	return out
}

// TestFallbackWithoutGPU runs the -tags cuda kiln binary on a host without a
// usable CUDA device: it must start, list cuda as unusable with the reason,
// train on another backend under --backend auto saying why cuda was
// skipped, and refuse --backend cuda with a clear error and exit status 1.
func TestFallbackWithoutGPU(t *testing.T) {
	if st, err := ProbeDriver(); err == nil {
		t.Skipf("a CUDA device is present (%d devices): the fallback path is tested on hosts without one", st.Devices)
	}
	_, reason := ProbeDriver()
	bin := kilnBinary(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"devices", []string{"devices"}, 0, []string{"cuda", "unusable", reason.Error(), "--backend auto would choose"}},
		{"train auto", []string{"train", "--backend", "auto", "--limit", "500", "--epochs", "1", "--out", filepath.Join(t.TempDir(), "m.kiln")},
			0, []string{"backend cuda: skipped: " + reason.Error(), "chosen", "test accuracy"}},
		{"train cuda", []string{"train", "--backend", "cuda", "--limit", "500", "--epochs", "1"},
			1, []string{"kiln train: open backend cuda: " + reason.Error()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.wantCode, code, "exit status; output:\n%s", out)
			for _, w := range tc.want {
				assert.Contains(t, string(out), w)
			}
			assert.NotContains(t, string(out), "panic")
			assert.NotContains(t, string(out), "Error in initialization") // gorgonia.org/cu's init message
		})
	}
}

// gpuPlugin probes the driver and returns the plugin's entry points,
// building the plugin when $KILN_CUDA_PLUGIN is not set; it skips when no
// CUDA device is present.
func gpuPlugin(t *testing.T) entry {
	if _, err := ProbeDriver(); err != nil {
		t.Skipf("no CUDA device present, so this GPU test cannot run here: %v", err)
	}
	path := os.Getenv(EnvPlugin)
	if path == "" {
		path = filepath.Join(t.TempDir(), PluginFile)
		goBuild(t, path, "-buildmode=plugin", "github.com/kiln-ml/kiln/backend/cuda/plugin")
	}
	e, err := openPlugin(path)
	require.NoError(t, err)
	return e
}

// TestConformanceOnGPU runs the backend conformance suite on the CUDA device.
func TestConformanceOnGPU(t *testing.T) {
	e := gpuPlugin(t)
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		b, err := e.open(backend.Options{CacheDir: t.TempDir()})
		require.NoError(t, err)
		return b
	})
}

// TestTrainingParityOnGPU trains the reference CNN on the same MNIST subset
// with the same seed on cuda and cpu and compares test accuracy.
func TestTrainingParityOnGPU(t *testing.T) {
	gpuPlugin(t)
	bin := kilnBinary(t)
	if os.Getenv(EnvPlugin) == "" {
		t.Skipf("set %s to the plugin built with the kiln binary in KILN_CUDA_BIN (bench/gpu-check.sh does)", EnvPlugin)
	}
	acc := map[string]float64{}
	for _, be := range []string{"cuda", "cpu"} {
		rep := filepath.Join(t.TempDir(), be+".json")
		out, err := exec.Command(bin, "train", "--backend", be, "--limit", "10000", "--epochs", "1", "--seed", "1",
			"--out", filepath.Join(t.TempDir(), be+".kiln"), "--report", rep).CombinedOutput()
		require.NoError(t, err, "%s", out)
		data, err := os.ReadFile(rep)
		require.NoError(t, err)
		var r struct {
			TestAccuracy float64 `json:"test_accuracy"`
		}
		require.NoError(t, json.Unmarshal(data, &r))
		acc[be] = r.TestAccuracy
	}
	t.Logf("test accuracy after 10000 images: cuda %.4f, cpu %.4f", acc["cuda"], acc["cpu"])
	assert.LessOrEqual(t, math.Abs(acc["cuda"]-acc["cpu"]), 0.01, "accuracy differs by more than 1 point")
}
