package backendtest

import (
	"testing"

	"github.com/kiln-ml/kiln/backend"
)

func TestSuiteOnNaive(t *testing.T) {
	Run(t, func(t *testing.T) backend.Backend { return newNaive() })
}
