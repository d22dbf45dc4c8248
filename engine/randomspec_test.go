package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
)

// randomSpec draws a small model: up to three layers among convolutions
// (odd kernels, strides, both paddings, filter counts that take each CPU
// path: 64 filters over a few taps is the direct kernel), max poolings
// (overlapping, strided, asymmetric) and ReLUs, then flatten and one or two
// dense layers.
func randomSpec(r *rand.Rand) Spec {
	h, w := 1+r.IntN(24), 1+r.IntN(24)
	c := []int{1, 2, 3, 16, 32}[r.IntN(5)]
	s := Spec{Name: "random", Input: []int{h, w, c}}
	name := func() string { return fmt.Sprintf("l%d", len(s.Layers)) }
	for range r.IntN(4) {
		switch r.IntN(5) {
		case 0, 1:
			kh, kw := []int{1, 2, 3, 3, 3, 5}[r.IntN(6)], []int{1, 2, 3, 3, 3, 4}[r.IntN(6)]
			sh, sw := []int{1, 1, 1, 1, 2, 3, 7}[r.IntN(7)], []int{1, 1, 1, 1, 2, 3, 9}[r.IntN(7)]
			if r.IntN(2) == 0 {
				kw, sw = kh, sh
			}
			s.Layers = append(s.Layers, LayerSpec{Type: "conv2d", Name: name(),
				Filters: []int{1, 5, 16, 64, 64, 64, 65}[r.IntN(7)], Kernel: []int{kh, kw}, Strides: []int{sh, sw},
				Padding: []string{"same", "valid"}[r.IntN(2)], Activation: []string{"", "relu", "relu"}[r.IntN(3)]})
		case 2, 3:
			s.Layers = append(s.Layers, LayerSpec{Type: "maxpool2d", Name: name(),
				Pool: []int{1 + r.IntN(3), 1 + r.IntN(3)}, Strides: []int{1 + r.IntN(3), 1 + r.IntN(3)}})
		case 4:
			s.Layers = append(s.Layers, LayerSpec{Type: "relu", Name: name()})
		}
	}
	s.Layers = append(s.Layers, LayerSpec{Type: "flatten", Name: name()})
	if r.IntN(2) == 0 {
		s.Layers = append(s.Layers, LayerSpec{Type: "dense", Name: name(), Units: 1 + r.IntN(20), Activation: "relu"})
	}
	s.Layers = append(s.Layers, LayerSpec{Type: "dense", Name: name(), Units: 2 + r.IntN(9), Activation: "softmax"})
	return s
}

// refForward is the float64 forward pass of one sample x through spec with
// the given parameters (by Param name); it returns the class
// probabilities.
func refForward(t *testing.T, spec Spec, params map[string][]float32, x []float64) []float64 {
	shape := spec.Input
	for _, l := range spec.Layers {
		switch l.Type {
		case "conv2d":
			H, W, C, F := shape[0], shape[1], shape[2], l.Filters
			sh, sw := l.Strides[0], l.Strides[1]
			kh, kw := l.Kernel[0], l.Kernel[1]
			oh, pt, err := backend.ConvOutSize(H, kh, sh, l.Padding)
			require.NoError(t, err)
			ow, pl, err := backend.ConvOutSize(W, kw, sw, l.Padding)
			require.NoError(t, err)
			k, bias := params[l.Name+"/kernel"], params[l.Name+"/bias"]
			y := make([]float64, oh*ow*F)
			for oy := range oh {
				for ox := range ow {
					for f := range F {
						s := float64(bias[f])
						for ky := range kh {
							iy := oy*sh + ky - pt
							for kx := range kw {
								ix := ox*sw + kx - pl
								if iy < 0 || iy >= H || ix < 0 || ix >= W {
									continue
								}
								for c := range C {
									s += x[(iy*W+ix)*C+c] * float64(k[((ky*kw+kx)*C+c)*F+f])
								}
							}
						}
						if l.Activation == "relu" {
							s = max(s, 0)
						}
						y[(oy*ow+ox)*F+f] = s
					}
				}
			}
			x, shape = y, []int{oh, ow, F}
		case "maxpool2d":
			H, W, C := shape[0], shape[1], shape[2]
			ph, pw, sh, sw := l.Pool[0], l.Pool[1], l.Strides[0], l.Strides[1]
			oh, ow := (H-ph)/sh+1, (W-pw)/sw+1
			y := make([]float64, oh*ow*C)
			for oy := range oh {
				for ox := range ow {
					for c := range C {
						m := math.Inf(-1)
						for a := range ph {
							for b := range pw {
								m = max(m, x[((oy*sh+a)*W+ox*sw+b)*C+c])
							}
						}
						y[(oy*ow+ox)*C+c] = m
					}
				}
			}
			x, shape = y, []int{oh, ow, C}
		case "relu":
			y := make([]float64, len(x))
			for i, v := range x {
				y[i] = max(v, 0)
			}
			x = y
		case "flatten":
			shape = []int{len(x)}
		case "dense":
			k, bias := params[l.Name+"/kernel"], params[l.Name+"/bias"]
			y := make([]float64, l.Units)
			for u := range y {
				s := float64(bias[u])
				for i, v := range x {
					s += v * float64(k[i*l.Units+u])
				}
				if l.Activation == "relu" {
					s = max(s, 0)
				}
				y[u] = s
			}
			if l.Activation == "softmax" {
				m := math.Inf(-1)
				for _, v := range y {
					m = max(m, v)
				}
				sum := 0.0
				for i := range y {
					y[i] = math.Exp(y[i] - m)
					sum += y[i]
				}
				for i := range y {
					y[i] /= sum
				}
			}
			x, shape = y, []int{l.Units}
		default:
			t.Fatalf("refForward: layer type %q", l.Type)
		}
	}
	return x
}

// TestRandomSpecsMatchFloat64 runs random models on the CPU backend, as
// inference (Predict) and as a training step (the loss of its forward
// pass, which takes other kernels: F(2×2, 3×3) Winograd, pooling with an
// argmax), against a float64 forward pass with the same parameters
// (random biases, so ReLUs and poolings meet values of both signs). It
// found a 64-filter convolution followed by an overlapping pool whose
// pooled output was never written (300 models catch it twice; the
// generator leans to 64 filters, stride 1 and pools for that).
func TestRandomSpecsMatchFloat64(t *testing.T) {
	b := newCPU(t)
	r := rand.New(rand.NewPCG(7, 5))
	tried := 0
	for iter := 0; tried < 300; iter++ {
		spec := randomSpec(r)
		if _, err := spec.Shapes(); err != nil {
			continue // a pool or kernel larger than its input
		}
		tried++
		t.Run(fmt.Sprintf("%d", iter), func(t *testing.T) {
			m, err := New(b, spec, uint64(iter))
			require.NoError(t, err)
			defer m.Close()
			params := map[string][]float32{}
			for _, p := range m.Params() {
				v := make([]float32, p.Len())
				require.NoError(t, b.Download(v, p.W))
				if len(p.Shape) == 1 { // biases: random, not Keras' zeros
					for i := range v {
						v[i] = r.Float32() - 0.5
					}
					require.NoError(t, b.Upload(p.W, v))
				}
				params[p.Name] = v
			}
			n, in, cl := 1+r.IntN(40), m.InputLen(), m.Classes()
			img := make([]float32, n*in)
			for i := range img {
				img[i] = r.Float32()
			}
			labels := make([]float32, n)
			for i := range labels {
				labels[i] = float32(r.IntN(cl))
			}
			probs := make([]float32, n*cl)
			require.NoError(t, m.Predict(img, n, probs))
			var lossSum float64
			for s := range n {
				x := make([]float64, in)
				for i := range x {
					x[i] = float64(img[s*in+i])
				}
				want := refForward(t, spec, params, x)
				for k, v := range want {
					if !assert.InDelta(t, v, probs[s*cl+k], 1e-4, "sample %d class %d of %v", s, k, spec.Layers) {
						return
					}
				}
				lossSum -= math.Log(max(want[int(labels[s])], 1e-30))
			}
			opt, err := NewOptimizer(b, OptimizerConfig{}, m.Params())
			require.NoError(t, err)
			defer opt.Close()
			got, _, err := m.TrainStep(img, labels, n, opt, 1)
			require.NoError(t, err)
			assert.InDelta(t, lossSum, got, 1e-4*float64(n)+1e-4*math.Abs(lossSum), "training forward pass of %v", spec.Layers)
		})
	}
}
