package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend/cpu"
)

// TestSteadyStateAllocs checks that, once buffers are sized and the first
// step has grown the backend's workspaces, a training step and an inference
// call allocate nothing on the Go heap (CPU backend, reference CNN on
// 28x28x1).
func TestSteadyStateAllocs(t *testing.T) {
	tests := []struct {
		name  string
		batch int
		train bool
	}{
		{"TrainStep/batch32", 32, true},
		{"TrainStep/batch7", 7, true},
		{"Predict/batch1", 1, false},
		{"Predict/batch64", 64, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newCPU(t)
			m, err := New(b, ReferenceSpec(28, 28, 1, 10), 1)
			require.NoError(t, err)
			defer m.Close()
			require.NoError(t, m.Setup(tc.batch))
			r := rand.New(rand.NewPCG(1, 2))
			images := make([]float32, tc.batch*m.InputLen())
			for i := range images {
				images[i] = r.Float32()
			}
			labels := make([]float32, tc.batch)
			for i := range labels {
				labels[i] = float32(r.IntN(10))
			}
			probs := make([]float32, tc.batch*m.Classes())
			var step func()
			if tc.train {
				opt, err := NewOptimizer(b, OptimizerConfig{}, m.Params())
				require.NoError(t, err)
				defer opt.Close()
				seed := uint64(0)
				step = func() {
					seed++
					_, _, err := m.TrainStep(images, labels, tc.batch, opt, seed)
					require.NoError(t, err)
				}
			} else {
				step = func() { require.NoError(t, m.Predict(images, tc.batch, probs)) }
			}
			step() // warm-up: workspaces grow to their steady size
			allocs := testing.AllocsPerRun(5, step)
			require.Zero(t, allocs, "heap allocations per call in steady state")
		})
	}
}

// BenchmarkTrainStep measures one training step of the reference CNN on
// 28x28x1 at batch 32 with the CPU backend, and BenchmarkPredict one
// inference call at batch 1 and 64.
func BenchmarkTrainStep(b *testing.B) {
	be := cpu.New()
	defer be.Close()
	m, err := New(be, ReferenceSpec(28, 28, 1, 10), 1)
	require.NoError(b, err)
	defer m.Close()
	const batch = 32
	require.NoError(b, m.Setup(batch))
	images, labels := benchBatch(batch, m.InputLen())
	opt, err := NewOptimizer(be, OptimizerConfig{}, m.Params())
	require.NoError(b, err)
	defer opt.Close()
	_, _, err = m.TrainStep(images, labels, batch, opt, 0)
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := m.TrainStep(images, labels, batch, opt, uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkPredict times inference of the reference CNN, MNIST-shaped and
// CIFAR-10-shaped, at batch 1, at the small batches the server forms under
// load (2, 4, 8, 16) and at 64.
func BenchmarkPredict(b *testing.B) {
	for _, in := range []struct {
		name    string
		h, w, c int
	}{{"mnist", 28, 28, 1}, {"cifar10", 32, 32, 3}} {
		for _, batch := range []int{1, 2, 4, 8, 16, 64} {
			b.Run(fmt.Sprintf("%s/batch%d", in.name, batch), func(b *testing.B) {
				be := cpu.New()
				defer be.Close()
				m, err := New(be, ReferenceSpec(in.h, in.w, in.c, 10), 1)
				require.NoError(b, err)
				defer m.Close()
				images, _ := benchBatch(batch, m.InputLen())
				probs := make([]float32, batch*m.Classes())
				require.NoError(b, m.Predict(images, batch, probs))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := m.Predict(images, batch, probs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
			})
		}
	}
}

func benchBatch(batch, inLen int) (images, labels []float32) {
	r := rand.New(rand.NewPCG(1, 2))
	images = make([]float32, batch*inLen)
	for i := range images {
		images[i] = r.Float32()
	}
	labels = make([]float32, batch)
	for i := range labels {
		labels[i] = float32(r.IntN(10))
	}
	return images, labels
}
