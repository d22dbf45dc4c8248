package engine

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/cpu"
)

// errInjected is the allocation failure failingAlloc injects.
var errInjected = errors.New("out of device memory (injected)")

// failingAlloc is a backend whose Alloc fails, as a device out of memory
// does, once left allocations have succeeded (left < 0: never fails).
type failingAlloc struct {
	backend.Backend
	left int
}

func (f *failingAlloc) Alloc(n int) (backend.Buffer, error) {
	if f.left == 0 {
		return nil, errInjected
	}
	if f.left > 0 {
		f.left--
	}
	return f.Backend.Alloc(n)
}

// setupSpec is smallSpec with a layer of every kind that owns activation
// buffers (conv2d, maxpool2d, relu, dropout, dense).
func setupSpec() Spec {
	s := smallSpec()
	s.Layers = []LayerSpec{s.Layers[0], s.Layers[1], {Type: "relu", Name: "r"}, s.Layers[2],
		{Type: "dropout", Name: "drop", Rate: 0.25}, s.Layers[3], s.Layers[4]}
	return s
}

// TestSetupFailureKeepsModelUsable: a Setup that fails part way (every
// allocation it makes, in turn, fails) leaves the model working for the
// batches it was set up for before, with the same weights and results,
// refusing larger ones; a later Setup that can allocate succeeds; and no
// buffer is leaked, however often it fails. Freeing the old buffers before
// allocating the new ones left nil buffers behind ("Conv2D: y: nil
// buffer") with the model still claiming its old size.
func TestSetupFailureKeepsModelUsable(t *testing.T) {
	inner := cpu.New()
	t.Cleanup(func() { assert.NoError(t, inner.Close()) })
	b := &failingAlloc{Backend: inner, left: -1}
	spec := setupSpec()
	const small, large = 4, 9

	r := rand.New(rand.NewPCG(3, 4))
	images := make([]float32, large*8*8)
	for i := range images {
		images[i] = r.Float32()
	}
	labels := make([]float32, large)
	for i := range labels {
		labels[i] = float32(r.IntN(4))
	}

	// the reference: a model that never failed, and the allocations a
	// Setup from small to large makes
	ref, err := New(b, spec, 1)
	require.NoError(t, err)
	want := make([]float32, small*4)
	require.NoError(t, ref.Predict(images, small, want))
	before := inner.Stats().Allocs
	require.NoError(t, ref.Setup(large))
	grow := int(inner.Stats().Allocs - before)
	require.NoError(t, ref.Close())
	require.Positive(t, grow)
	require.Zero(t, inner.Stats().LiveBuffers)

	for k := range grow {
		m, err := New(b, spec, 1)
		require.NoError(t, err)
		require.NoError(t, m.Setup(small))
		live := inner.Stats().LiveBuffers
		for try := range 3 { // failing again and again holds no more buffers
			b.left = k
			err = m.Setup(large)
			b.left = -1
			require.ErrorIs(t, err, errInjected, "allocation %d of %d fails", k+1, grow)
			assert.Contains(t, err.Error(), "for batch 9", "the error says which batch did not fit")
			if try == 0 {
				live = inner.Stats().LiveBuffers
			}
			assert.Equal(t, live, inner.Stats().LiveBuffers, "allocation %d: try %d", k+1, try)
		}

		got := make([]float32, small*4)
		require.NoError(t, m.Predict(images, small, got), "allocation %d failed: the model still predicts batches of %d", k+1, small)
		assert.Equal(t, want, got, "allocation %d: same results", k+1)
		require.NoError(t, m.upload(images, labels, small))
		err = m.upload(images, labels, small+1)
		assert.ErrorContains(t, err, "set up for 4", "allocation %d: still set up for the old size only", k+1)

		opt, err := NewOptimizer(b, OptimizerConfig{}, m.Params())
		require.NoError(t, err)
		_, _, err = m.TrainStep(images, labels, small, opt, 1)
		require.NoError(t, err, "allocation %d: the model still trains on batches of %d", k+1, small)
		opt.Close()

		require.NoError(t, m.Setup(large), "allocation %d: a Setup that can allocate succeeds", k+1)
		require.NoError(t, m.Predict(images, large, make([]float32, large*4)))
		require.NoError(t, m.Close())
		require.Zero(t, inner.Stats().LiveBuffers, "allocation %d: buffers leaked", k+1)
	}

	// a first Setup that fails leaves a model that is set up for nothing
	// but can still be set up
	m, err := New(b, spec, 1)
	require.NoError(t, err)
	b.left = 2
	require.ErrorIs(t, m.Setup(small), errInjected)
	b.left = -1
	assert.ErrorContains(t, m.upload(images, labels, 1), "set up for 0")
	got := make([]float32, small*4)
	require.NoError(t, m.Predict(images, small, got))
	assert.Equal(t, want, got)
	require.NoError(t, m.Close())
	require.Zero(t, inner.Stats().LiveBuffers)
}

// TestSetupPastHostMemory is the reviewer's case on the plain CPU backend:
// a Setup for a batch far past the host's memory fails with an error, and
// the reference CNN then still predicts the batch it was set up for.
func TestSetupPastHostMemory(t *testing.T) {
	b := newCPU(t)
	m, err := New(b, ReferenceSpec(28, 28, 1, 10), 1)
	require.NoError(t, err)
	defer m.Close()
	img := make([]float32, 784)
	probs := make([]float32, 10)
	require.NoError(t, m.Predict(img, 1, probs))
	err = m.Setup(1 << 28) // conv1's output alone: 2^28·43264 values
	require.Error(t, err)
	assert.Contains(t, err.Error(), "batch 268435456 needs at least")
	assert.Contains(t, err.Error(), "bytes of cpu's device: use a smaller batch")
	require.NoError(t, m.Predict(img, 1, probs), "the model still works for batch 1")
}
