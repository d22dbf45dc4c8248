//go:build opencl

package opencl

import (
	"testing"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/engine/enginetest"
)

// TestTrainMatchesCPU: the small CNN trains on OpenCL as on the CPU backend,
// step by step (see enginetest.TrainMatchesCPU).
func TestTrainMatchesCPU(t *testing.T) {
	enginetest.TrainMatchesCPU(t, "opencl", func(t *testing.T) backend.Backend { return open(t) })
}
