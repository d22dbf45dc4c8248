package cuda

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInstallScriptDriverGuard: on a host whose NVIDIA kernel driver is
// loaded, scripts/install-cuda.sh refuses an install that would add or
// change the driver's user-space packages (Debian's toolkit depends on its
// own libcuda1; one that does not match the kernel module breaks every CUDA
// program), unless told to go on. apt is stubbed: the test installs
// nothing.
func TestInstallScriptDriverGuard(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found: the installer is a bash script")
	}
	dir := t.TempDir()
	proc := filepath.Join(dir, "version")
	require.NoError(t, os.WriteFile(proc, []byte("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14\n"), 0o644))
	driverPkgs := `Inst libcuda1 (535.261.03-1 Debian [amd64])\nInst nvidia-cuda-dev (11.8.89 Debian [amd64])\nInst libnvidia-ptxjitcompiler1 (535.261.03-1 Debian [amd64])\n`
	toolkitOnly := `Inst nvidia-cuda-dev (11.8.89 Debian [amd64])\n`
	for _, tc := range []struct {
		name, proc, sim, allow string
		ok                     bool
		want                   string
	}{
		{"driver loaded, driver packages", proc, driverPkgs, "", false, "would install or change the NVIDIA driver's packages (libcuda1 libnvidia-ptxjitcompiler1) on a host\nwhose driver is loaded (NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14)"},
		{"told to go on", proc, driverPkgs, "1", true, ""},
		{"driver loaded, toolkit only", proc, toolkitOnly, "", true, ""},
		{"no driver loaded", filepath.Join(dir, "none"), driverPkgs, "", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := `set -euo pipefail
source ../../scripts/install-cuda.sh
kiln_apt() { printf '` + tc.sim + `'; }
driver_guard`
			cmd := exec.Command("bash", "-c", script)
			cmd.Env = append(os.Environ(), "KILN_NVIDIA_PROC="+tc.proc, "KILN_CUDA_ALLOW_DRIVER_PACKAGES="+tc.allow)
			out, err := cmd.CombinedOutput()
			if tc.ok {
				assert.NoError(t, err, "%s", out)
				assert.Empty(t, string(out))
				return
			}
			assert.Error(t, err)
			assert.Contains(t, string(out), tc.want)
		})
	}
}
