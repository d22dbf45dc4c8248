//go:build (cudaemu && linux && !cuda) || (cuda && gpu)

package cuda

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	bind "github.com/kiln-ml/kiln/bindings/cuda"
	kern "github.com/kiln-ml/kiln/kernels/cuda"
)

// checkGridLimits checks on b that a launch past a device's grid limits is
// a clear error before it reaches the driver, and that a convolution whose
// output rows need more than 65,535 tiles of 64 (the limit of a grid's y)
// runs and is right, because the GEMM kernels number their tiles along x
// alone. It closes b.
func checkGridLimits(t *testing.T, b *Backend) {
	defer func() {
		require.Zero(t, b.Stats().LiveBuffers, "leaked buffers")
		require.NoError(t, b.Close())
	}()
	err := b.launch("test", kern.ReLU, bind.Dim{X: 1, Y: 70000}, bind.Dim{X: 256})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a grid of 1×70000×1 blocks is past the device's limits")

	// 1×2050×2050×1 input, a 1×1 filter with 2 outputs: 4,202,500 output
	// rows, 65,665 tiles of 64 (the y limit is 65,535).
	p := backend.ConvParams{N: 1, H: 2050, W: 2050, C: 1, KH: 1, KW: 1, F: 2, StrideH: 1, StrideW: 1, OutH: 2050, OutW: 2050}
	n := p.N * p.H * p.W
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(i%13) - 6
	}
	ws := []float32{0.5, -2}
	x, err := b.Alloc(n)
	require.NoError(t, err)
	defer x.Free()
	w, err := b.Alloc(2)
	require.NoError(t, err)
	defer w.Free()
	y, err := b.Alloc(2 * n)
	require.NoError(t, err)
	defer y.Free()
	require.NoError(t, b.Upload(x, xs))
	require.NoError(t, b.Upload(w, ws))
	require.NoError(t, b.Conv2D(p, x, w, y))
	got := make([]float32, 2*n)
	require.NoError(t, b.Download(got, y))
	for i, v := range xs {
		if got[2*i] != v*ws[0] || got[2*i+1] != v*ws[1] {
			t.Fatalf("pixel %d: got %v, %v, want %v, %v", i, got[2*i], got[2*i+1], v*ws[0], v*ws[1])
		}
	}
}
