// Package enginetest holds checks that a backend trains like the CPU
// backend, for the backends' own tests (OpenCL, CUDA).
package enginetest

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/cpu"
	"github.com/kiln-ml/kiln/engine"
	"github.com/kiln-ml/kiln/engine/data"
)

// trainRun trains spec on ds for steps batches from seed and returns the
// mean loss of every step and the final evaluation accuracy.
func trainRun(t *testing.T, b backend.Backend, spec engine.Spec, ds *data.Dataset, opt engine.OptimizerConfig, steps, batch int, seed uint64) (losses []float64, acc float64) {
	t.Helper()
	m, err := engine.New(b, spec, seed)
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	require.NoError(t, m.Setup(batch))
	o, err := engine.NewOptimizer(b, opt, m.Params())
	require.NoError(t, err)
	defer o.Close()
	per := ds.H * ds.W * ds.C
	images := make([]float32, batch*per)
	labels := make([]float32, batch)
	idx := make([]int, batch)
	for s := 0; s < steps; s++ {
		for i := range idx {
			idx[i] = (s*batch + i) % ds.N
		}
		require.NoError(t, data.Batch(ds, idx, images, labels))
		l, _, err := m.TrainStep(images, labels, batch, o, seed^uint64(s))
		require.NoError(t, err, "step %d", s)
		losses = append(losses, l/float64(batch))
	}
	_, acc, err = engine.Evaluate(m, ds, batch)
	require.NoError(t, err)
	return losses, acc
}

// TrainMatchesCPU trains the same models from the same seed on the CPU
// backend and on the backend open returns (called name in messages; open
// must close it with t.Cleanup), and compares the loss of every step and
// the accuracy after training: a small CNN (two convolutions, one with same
// padding and stride 2, pooling, dropout, two dense layers) with Adam and
// with SGD, and a few Adam steps of the reference CNN at MNIST's shape,
// whose 64-filter layers fill whole GEMM and convolution tiles. Float32
// rounding differs between backends (summation order), so the trajectories
// agree closely but not bit for bit.
func TrainMatchesCPU(t *testing.T, name string, open func(t *testing.T) backend.Backend) {
	small := engine.Spec{
		Name:  "small",
		Input: []int{12, 12, 1},
		Layers: []engine.LayerSpec{
			{Type: "conv2d", Filters: 8, Kernel: []int{3, 3}, Padding: "same", Activation: "relu"},
			{Type: "maxpool2d", Pool: []int{2, 2}},
			{Type: "conv2d", Filters: 8, Kernel: []int{3, 3}, Strides: []int{2, 2}, Padding: "same", Activation: "relu"},
			{Type: "flatten"},
			{Type: "dense", Units: 32, Activation: "relu"},
			{Type: "dropout", Rate: 0.25},
			{Type: "dense", Units: 10, Activation: "softmax"},
		},
	}
	smallData := data.Synthetic(256, 12, 12, 1, 10, 7)
	tests := []struct {
		name         string
		spec         engine.Spec
		ds           *data.Dataset
		opt          engine.OptimizerConfig
		steps, batch int
	}{
		{"adam", small, smallData, engine.OptimizerConfig{Name: "adam", LR: 5e-3}, 40, 16},
		{"sgd", small, smallData, engine.OptimizerConfig{Name: "sgd", LR: 0.05, Momentum: 0.9}, 40, 16},
		{"reference", engine.ReferenceSpec(28, 28, 1, 10), data.Synthetic(8, 28, 28, 1, 10, 7),
			engine.OptimizerConfig{Name: "adam"}, 5, 8}, // one batch, five times
	}
	const seed = 42
	// Tolerance: relative 2e-3 on each step's mean loss. The float32 sums
	// of the two backends differ in order (~1e-6 relative per op); over 40
	// Adam steps that drift stays well below 1e-3.
	const rel = 2e-3
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cpuB := cpu.New()
			defer cpuB.Close()
			want, wantAcc := trainRun(t, cpuB, tc.spec, tc.ds, tc.opt, tc.steps, tc.batch, seed)
			b := open(t) // open closes it (t.Cleanup)
			got, gotAcc := trainRun(t, b, tc.spec, tc.ds, tc.opt, tc.steps, tc.batch, seed)
			require.Len(t, got, tc.steps)
			for s := range want {
				assert.InDelta(t, want[s], got[s], rel*math.Abs(want[s]), "step %d: cpu %.6f %s %.6f", s, want[s], name, got[s])
			}
			assert.Less(t, got[tc.steps-1], got[0], "the loss falls")
			assert.InDelta(t, wantAcc, gotAcc, 2.0/float64(tc.ds.N), "accuracy after training: cpu %.4f %s %.4f", wantAcc, name, gotAcc)
			t.Logf("%s: loss %.4f -> %.4f (cpu %.4f -> %.4f), accuracy %s %.4f cpu %.4f",
				tc.name, got[0], got[tc.steps-1], want[0], want[tc.steps-1], name, gotAcc, wantAcc)
		})
	}
}
