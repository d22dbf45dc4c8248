//go:build opencl

package opencl_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	clb "github.com/kiln-ml/kiln/bindings/opencl"
	kcl "github.com/kiln-ml/kiln/kernels/opencl"
)

// TestProgramsBuild compiles every program on every OpenCL device present
// (PoCL in CI) and creates each kernel it declares.
func TestProgramsBuild(t *testing.T) {
	devs, err := clb.Devices()
	require.NoError(t, err)
	for _, d := range devs {
		c, err := clb.NewContext(d, false)
		require.NoError(t, err)
		for _, p := range kcl.Programs() {
			t.Run(d.Name+"/"+p.Name, func(t *testing.T) {
				prog, err := c.BuildProgram(p.Name, p.Source, "-cl-std=CL1.2")
				require.NoError(t, err)
				defer prog.Release()
				for _, name := range p.Kernels {
					k, err := prog.Kernel(name)
					require.NoError(t, err, name)
					require.NoError(t, k.Release())
				}
			})
		}
		require.NoError(t, c.Release())
	}
}
