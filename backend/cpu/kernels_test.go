package cpu

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/backendtest"
	kern "github.com/kiln-ml/kiln/kernels/cpu"
)

// TestConformanceEveryKernel runs the conformance suite with each SGEMM
// micro-kernel this CPU has besides the default one (TestConformance runs
// that): the convolution paths differ by kernel (AVX-512, AVX2 and generic
// forms), so on an AVX-512 host this checks the AVX2 and generic paths
// against the float64 references too, and on an AVX2 host the generic one.
func TestConformanceEveryKernel(t *testing.T) {
	others := 0
	for _, name := range kern.KernelNames() {
		if name == kern.DefaultKernel() {
			continue
		}
		others++
		t.Run(name, func(t *testing.T) {
			backendtest.Run(t, func(t *testing.T) backend.Backend {
				b := New()
				require.NoError(t, b.ws.Gemm.SetKernel(name))
				require.Equal(t, name, b.ws.Gemm.Kernel())
				return b
			})
		})
	}
	if others == 0 {
		t.Skipf("this CPU has only the %q kernel, which TestConformance runs", kern.DefaultKernel())
	}
}
