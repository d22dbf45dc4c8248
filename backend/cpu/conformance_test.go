package cpu_test

import (
	"testing"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/backendtest"
	"github.com/kiln-ml/kiln/backend/cpu"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return cpu.New() })
}
