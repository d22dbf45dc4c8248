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

// TestAdamVector checks that the vector Adam loop (and its scalar tail)
// gives the bits of adamScalar, over several steps and lengths, with zero
// and large gradients.
func TestAdamVector(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 31, 100, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(n), 9))
			param := randSlice(r, n)
			m, v := make([]float32, n), make([]float32, n)
			wantP := append([]float32(nil), param...)
			wantM, wantV := make([]float32, n), make([]float32, n)
			for step := 0; step < 3; step++ {
				grad := randSlice(r, n)
				for i := range grad {
					switch i % 7 {
					case 0:
						grad[i] = 0
					case 1:
						grad[i] *= 1e4
					}
				}
				adamRange(1e-3, 0.1, 1e-3, 1e-7, param, grad, m, v)
				adamScalar(1e-3, 0.1, 1e-3, 1e-7, wantP, grad, wantM, wantV)
				for i := range param {
					require.Equal(t, math.Float32bits(wantP[i]), math.Float32bits(param[i]), "param[%d] step %d", i, step)
					require.Equal(t, math.Float32bits(wantM[i]), math.Float32bits(m[i]), "m[%d] step %d", i, step)
					require.Equal(t, math.Float32bits(wantV[i]), math.Float32bits(v[i]), "v[%d] step %d", i, step)
				}
			}
		})
	}
}
