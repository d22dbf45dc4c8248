//go:build opencl

package opencl_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	clb "github.com/kiln-ml/kiln/bindings/opencl"
	kcl "github.com/kiln-ml/kiln/kernels/opencl"
)

// TestReLUKeepsSubnormalsWhenDenormalsFlush: many GPUs flush float32
// denormals to zero (OpenCL 1.2 allows it). PoCL keeps them, so this builds
// elementwise.cl with -cl-denorms-are-zero to act as such a device: relu
// and relu_bwd, which test the sign on the float's bits, must still keep a
// positive subnormal (as the CPU backend and the conformance suite do).
func TestReLUKeepsSubnormalsWhenDenormalsFlush(t *testing.T) {
	devs, err := clb.Devices()
	require.NoError(t, err)
	var src string
	for _, p := range kcl.Programs() {
		if p.Name == "elementwise.cl" {
			src = p.Source
		}
	}
	require.NotEmpty(t, src)
	sub := math.Float32frombits(1)        // the smallest positive subnormal
	big := math.Float32frombits(0x7fffff) // the largest
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	x := []float32{sub, big, -sub, 0, float32(math.Copysign(0, -1)), 1, -1, nan, inf, float32(math.Inf(-1))}
	wantY := []float32{sub, big, 0, 0, 0, 1, 0, 0, inf, 0}
	for _, d := range devs {
		t.Run(d.Name, func(t *testing.T) {
			c, err := clb.NewContext(d, false)
			require.NoError(t, err)
			defer c.Release()
			prog, err := c.BuildProgram("elementwise.cl", src, "-cl-std=CL1.2 -cl-denorms-are-zero")
			require.NoError(t, err)
			defer prog.Release()
			n := len(x)
			bx, err := c.NewBuffer(int64(4 * n))
			require.NoError(t, err)
			defer bx.Release()
			by, err := c.NewBuffer(int64(4 * n))
			require.NoError(t, err)
			defer by.Release()
			bd, err := c.NewBuffer(int64(4 * n))
			require.NoError(t, err)
			defer bd.Release()
			require.NoError(t, c.Write(bx, 0, x))
			relu, err := prog.Kernel("relu")
			require.NoError(t, err)
			defer relu.Release()
			require.NoError(t, relu.SetArgs(bx, by, int32(n)))
			require.NoError(t, c.Launch(relu, []int{n}, nil))
			y := make([]float32, n)
			require.NoError(t, c.Read(y, by, 0))
			for i := range y {
				assert.Equal(t, math.Float32bits(wantY[i]), math.Float32bits(y[i]), "relu(%g) = %g", x[i], y[i])
			}
			// relu_bwd: the gradient passes where y > 0, subnormal y included
			dy := make([]float32, n)
			for i := range dy {
				dy[i] = float32(i + 1)
			}
			require.NoError(t, c.Write(by, 0, wantY))
			require.NoError(t, c.Write(bx, 0, dy))
			bwd, err := prog.Kernel("relu_bwd")
			require.NoError(t, err)
			defer bwd.Release()
			require.NoError(t, bwd.SetArgs(by, bx, bd, int32(n)))
			require.NoError(t, c.Launch(bwd, []int{n}, nil))
			dx := make([]float32, n)
			require.NoError(t, c.Read(dx, bd, 0))
			for i := range dx {
				want := float32(0)
				if wantY[i] > 0 {
					want = dy[i]
				}
				assert.Equal(t, want, dx[i], "relu_bwd at y = %g", wantY[i])
			}
		})
	}
}
