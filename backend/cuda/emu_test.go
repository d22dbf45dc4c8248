//go:build cudaemu && linux && !cuda

// The CUDA backend on the CPU emulator (kernels/cuda, build tag cudaemu):
// the conformance suite runs this package's launch code and the unchanged
// CUDA C kernels, so a wrong index, a missing bound or a bad launch shape
// shows here, on hosts without a GPU. make test runs it:
//
//	go test -tags cudaemu ./backend/cuda
package cuda

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/backendtest"
	"github.com/kiln-ml/kiln/engine/enginetest"
)

func TestEmulatedConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		b, err := OpenEmulated()
		require.NoError(t, err)
		return b
	})
}

// TestEmulatedTrainMatchesCPU: the small CNN trains on the emulated CUDA
// backend as on the CPU backend, step by step.
func TestEmulatedTrainMatchesCPU(t *testing.T) {
	enginetest.TrainMatchesCPU(t, "cuda (emulated)", func(t *testing.T) backend.Backend {
		b, err := OpenEmulated()
		require.NoError(t, err)
		t.Cleanup(func() {
			require.Zero(t, b.Stats().LiveBuffers, "leaked buffers")
			require.NoError(t, b.Close())
		})
		return b
	})
}

// TestEmulatedGridLimits: checkGridLimits on the emulator, which enforces
// a device's grid limits.
func TestEmulatedGridLimits(t *testing.T) {
	b, err := OpenEmulated()
	require.NoError(t, err)
	checkGridLimits(t, b)
}
