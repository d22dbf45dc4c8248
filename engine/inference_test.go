package engine

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
)

// convModes is a backend that records ConvParams.Inference of every
// forward convolution.
type convModes struct {
	backend.Backend
	modes []bool
}

func (c *convModes) Conv2D(p backend.ConvParams, x, w, y backend.Buffer) error {
	c.modes = append(c.modes, p.Inference)
	return c.Backend.Conv2D(p, x, w, y)
}

// TestConvInferenceFlag: a training step's forward convolutions are not
// marked Inference (its backward pass reads their ties: the ReLU's mask,
// the pooling's argmax), while Predict's and Evaluate's are, so the CPU
// backend may run Winograd F(4×4, 3×3) only there.
func TestConvInferenceFlag(t *testing.T) {
	rec := &convModes{Backend: newCPU(t)}
	train, test := synthetic(t)
	m, err := New(rec, smallSpec(), 1)
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Setup(8))
	opt, err := NewOptimizer(rec, OptimizerConfig{Name: "adam", LR: 1e-3}, m.Params())
	require.NoError(t, err)
	defer opt.Close()
	labels := make([]float32, 8)
	for i := range labels {
		labels[i] = float32(train.Labels[i])
	}
	_, _, err = m.TrainStep(train.Images[:8*train.ImageSize()], labels, 8, opt, 0)
	require.NoError(t, err)
	require.NotEmpty(t, rec.modes, "the model has convolutions")
	for i, inf := range rec.modes {
		require.False(t, inf, "training step, convolution %d marked Inference", i)
	}
	rec.modes = nil
	require.NoError(t, m.Predict(test.Images, 5, make([]float32, 5*4)))
	_, _, err = Evaluate(m, test, 16)
	require.NoError(t, err)
	require.NotEmpty(t, rec.modes)
	for i, inf := range rec.modes {
		require.True(t, inf, "Predict or Evaluate, convolution %d not marked Inference", i)
	}
}
