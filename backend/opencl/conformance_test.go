//go:build opencl

package opencl

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/backendtest"
)

// open opens the backend with a per-test kernel cache and checks at cleanup
// that every buffer was freed.
func open(t *testing.T) *Backend {
	t.Helper()
	b, err := Open(backend.Options{CacheDir: sharedCache(t)})
	require.NoError(t, err)
	t.Cleanup(func() {
		if !b.closed {
			require.Zero(t, b.Stats().LiveBuffers, "leaked buffers")
			require.NoError(t, b.Close())
		}
	})
	return b
}

// TestConformance runs the shared conformance suite on the selected OpenCL
// device (PoCL in CI), with the suite's stated tolerances.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return open(t) })
}
