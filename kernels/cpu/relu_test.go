package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReLUVector checks the vector ReLU loops (and their scalar tails)
// against the definition, including NaN, ±0 and ±Inf.
func TestReLUVector(t *testing.T) {
	special := []float32{float32(math.NaN()), float32(math.Copysign(0, -1)), 0,
		float32(math.Inf(1)), float32(math.Inf(-1)), 1e-45, -1e-45}
	for _, n := range []int{0, 1, 31, 32, 33, 64, 100, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(n), 7))
			x := randSlice(r, n)
			dy := randSlice(r, n)
			for i := range x {
				if i%5 == 0 {
					x[i] = special[(i/5)%len(special)]
				}
			}
			y := make([]float32, n)
			dx := make([]float32, n)
			reluRange(x, y)
			reluBackRange(x, dy, dx)
			for i, v := range x {
				want, wantD := float32(0), float32(0)
				if v > 0 {
					want, wantD = v, dy[i]
				}
				require.Equal(t, math.Float32bits(want), math.Float32bits(y[i]), "relu(%v) at %d", v, i)
				require.Equal(t, math.Float32bits(wantD), math.Float32bits(dx[i]), "relu'(%v) at %d", v, i)
			}
		})
	}
}
