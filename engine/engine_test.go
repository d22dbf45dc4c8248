package engine

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/cpu"
	"github.com/kiln-ml/kiln/engine/data"
	"github.com/kiln-ml/kiln/engine/modelfile"
)

func newCPU(t *testing.T) backend.Backend {
	t.Helper()
	b := cpu.New()
	t.Cleanup(func() {
		assert.Equal(t, 0, b.Stats().LiveBuffers, "device buffers leaked")
		assert.NoError(t, b.Close())
	})
	return b
}

func TestReferenceSpecShapesAndParams(t *testing.T) {
	s := ReferenceSpec(28, 28, 1, 10)
	shapes, err := s.Shapes()
	require.NoError(t, err)
	want := [][]int{{26, 26, 64}, {13, 13, 64}, {11, 11, 64}, {5, 5, 64}, {1600}, {64}, {10}}
	assert.Equal(t, want, shapes)
	b := newCPU(t)
	m, err := New(b, s, 1)
	require.NoError(t, err)
	defer m.Close()
	// Keras' model.summary() of the same model on 28x28x1 input.
	assert.Equal(t, 640+36928+102464+650, m.NumParams())

	c := ReferenceSpec(32, 32, 3, 10)
	shapes, err = c.Shapes()
	require.NoError(t, err)
	assert.Equal(t, []int{2304}, shapes[4])
}

func TestSpecErrors(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"no input", `{"layers":[{"type":"dense","units":10,"activation":"softmax"}]}`, "input must be [height, width, channels]"},
		{"dense before flatten", `{"input":[8,8,1],"layers":[{"type":"dense","units":10,"activation":"softmax"}]}`, "needs a flat input, got [8 8 1]"},
		{"kernel too big", `{"input":[4,4,1],"layers":[{"type":"conv2d","filters":2,"kernel":[5,5]},{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax"}]}`, "kernel 5 is larger than input 4"},
		{"conv after flatten", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"conv2d","filters":2,"kernel":[3,3]},{"type":"dense","units":2,"activation":"softmax"}]}`, "needs a 3-D input"},
		{"unknown type", `{"input":[4,4,1],"layers":[{"type":"lstm"}]}`, "unknown layer type"},
		{"unknown field", `{"input":[4,4,1],"layers":[{"type":"flatten","unitz":3}]}`, "unknown field"},
		{"softmax not last", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dense","units":3,"activation":"softmax"},{"type":"dense","units":2,"activation":"softmax"}]}`, "only allowed on the last layer"},
		{"no classifier", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dense","units":3}]}`, "last layer must be dense with softmax"},
		{"bad dropout", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dropout","rate":1.5},{"type":"dense","units":2,"activation":"softmax"}]}`, "rate must be in (0, 1), got 1.5"},
		{"pool too big", `{"input":[2,2,1],"layers":[{"type":"maxpool2d","pool":[3,3]},{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax"}]}`, "larger than its input"},
		{"not json", `layers: []`, "model spec"},
		{"empty", " \n", "model spec: the file is empty"},
		{"string for a number", `{"input":[4,4,1],"layers":[{"type":"conv2d","filters":"64"}]}`, `model spec: "layers.filters" near line 1, column 58: want a whole number, got a JSON string`},
		{"number for a list", "{\"input\":[4,4,1],\n \"layers\":[{\"type\":\"conv2d\",\"kernel\":3}]}", `"layers.kernel" near line 2, column 38: want a list such as [3, 3], got a JSON number`},
		{"misspelled field", `{"input":[4,4,1],"layers":[{"type":"conv2d","kernal":[3,3]}]}`, `model spec: unknown field "kernal" at line 1, column 46 (a spec takes name, input, layers; a layer takes type,`},
		{"trailing comma", `{"input":[4,4,1],}`, "model spec: invalid JSON at line 1, column 18: invalid character '}'"},
		{"cut short", `{"input":[4,4,1],"layers":[`, "model spec: the JSON ends early, at line 1, column 28 (a missing ] or }?)"},
		{"dropout rounding to 1", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dropout","rate":0.99999999},{"type":"dense","units":2,"activation":"softmax"}]}`, "rate 0.99999999 rounds to 1 in float32"},
		{"trailing brace", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax"}]}}`, "data after the spec's JSON object"},
		{"second object", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax"}]} {"input":[1,1,1]}`, "data after the spec's JSON object"},
		// sizes that would overflow an int or ask for more than 8 GiB
		// (these crashed train with makeslice and out-of-memory errors)
		{"pool stride 0", `{"input":[8,8,1],"layers":[{"type":"maxpool2d","pool":[2,2],"strides":[2,0]},{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax"}]}`, "strides must be positive, got [2 0]"},
		{"huge filters", `{"input":[4,4,1],"layers":[{"type":"conv2d","filters":4611686018427387904,"kernel":[3,3]},{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax"}]}`, "has more than 2147483647 weights"},
		{"huge units", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dense","units":3000000000},{"type":"dense","units":2,"activation":"softmax"}]}`, "16 inputs by 3000000000 units is more than 2147483647 weights"},
		{"huge input", `{"input":[100000,100000,1000],"layers":[{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax"}]}`, "more than 2147483647 values per sample"},
		{"huge activations", `{"input":[8192,8192,1],"layers":[{"type":"conv2d","filters":64,"kernel":[1,1]},{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax"}]}`, "its output [8192 8192 64] has more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if strconv.IntSize < 64 && (tc.name == "huge filters" || tc.name == "huge units") {
				t.Skip("the value does not fit a 32-bit int: JSON decoding refuses it first")
			}
			_, err := ParseSpec([]byte(tc.json))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// gradSpec exercises every layer kind with odd sizes, same padding and
// strides.
func gradSpec() Spec {
	return Spec{Name: "grad", Input: []int{7, 6, 2}, Layers: []LayerSpec{
		{Type: "conv2d", Name: "c1", Filters: 3, Kernel: []int{3, 3}, Padding: "same", Activation: "relu"},
		{Type: "maxpool2d", Name: "p1", Pool: []int{2, 2}},
		{Type: "conv2d", Name: "c2", Filters: 4, Kernel: []int{2, 2}, Strides: []int{1, 1}},
		{Type: "relu", Name: "r"},
		{Type: "flatten", Name: "f"},
		{Type: "dense", Name: "d1", Units: 5, Activation: "relu"},
		{Type: "dropout", Name: "drop", Rate: 0.25},
		{Type: "dense", Name: "d2", Units: 3, Activation: "softmax"},
	}}
}

// TestGradientCheck compares every parameter gradient of a whole model with
// a central finite difference of the training loss.
func TestGradientCheck(t *testing.T) { gradCheck(t, gradSpec()) }

func gradCheck(t *testing.T, spec Spec) {
	b := newCPU(t)
	m, err := New(b, spec, 3)
	require.NoError(t, err)
	defer m.Close()
	const n = 4
	require.NoError(t, m.Setup(n))
	rng := rand.New(rand.NewPCG(9, 9))
	images := make([]float32, n*m.InputLen())
	for i := range images {
		images[i] = rng.Float32()
	}
	labels := []float32{0, 2, 1, 2}
	const seed = 77
	loss := func() float64 {
		require.NoError(t, m.upload(images, labels, n))
		logits, err := m.forward(n, true, seed)
		require.NoError(t, err)
		l, _, err := m.lossStats(logits, n)
		require.NoError(t, err)
		return l / n
	}
	base := loss()
	require.NoError(t, m.backward(m.grad, n))
	const eps = 1e-3
	checked := 0
	for _, p := range m.Params() {
		w := make([]float32, p.Len())
		g := make([]float32, p.Len())
		require.NoError(t, b.Download(w, p.W))
		require.NoError(t, b.Download(g, p.G))
		for i := 0; i < p.Len(); i += 1 + p.Len()/12 {
			orig := w[i]
			w[i] = orig + eps
			require.NoError(t, b.Upload(p.W, w))
			up := loss()
			w[i] = orig - eps
			require.NoError(t, b.Upload(p.W, w))
			down := loss()
			w[i] = orig
			require.NoError(t, b.Upload(p.W, w))
			// Max pooling and ReLU have kinks: when one lies inside
			// [-eps, eps] the central difference mixes two slopes, so the
			// analytic gradient must match the central or one of the
			// one-sided differences (a wrong gradient matches none).
			ana := float64(g[i])
			near := func(num float64) bool { return math.Abs(num-ana) <= 2e-3+0.05*math.Abs(num) }
			central, fwd, bwd := (up-down)/(2*eps), (up-base)/eps, (base-down)/eps
			assert.True(t, near(central) || near(fwd) || near(bwd),
				"%s[%d]: analytic %g, numeric central %g forward %g backward %g", p.Name, i, ana, central, fwd, bwd)
			checked++
		}
	}
	assert.Greater(t, checked, 20)
}

func synthetic(t *testing.T) (*data.Dataset, *data.Dataset) {
	train := data.Synthetic(600, 8, 8, 1, 4, 1)
	test := data.Synthetic(200, 8, 8, 1, 4, 1)
	// Same prototypes, different noise: the test set comes from the same
	// generator with another slice.
	return train, test
}

func smallSpec() Spec {
	return Spec{Name: "small", Input: []int{8, 8, 1}, Layers: []LayerSpec{
		{Type: "conv2d", Name: "c1", Filters: 8, Kernel: []int{3, 3}, Activation: "relu"},
		{Type: "maxpool2d", Name: "p1", Pool: []int{2, 2}},
		{Type: "flatten", Name: "f"},
		{Type: "dense", Name: "d1", Units: 16, Activation: "relu"},
		{Type: "dense", Name: "d2", Units: 4, Activation: "softmax"},
	}}
}

func TestTrainLearnsSynthetic(t *testing.T) {
	for _, opt := range []string{"adam", "sgd"} {
		t.Run(opt, func(t *testing.T) {
			b := newCPU(t)
			train, test := synthetic(t)
			m, err := New(b, smallSpec(), 1)
			require.NoError(t, err)
			defer m.Close()
			hist, err := Train(m, train, nil, TrainConfig{Epochs: 3, Batch: 16, Seed: 1,
				Optimizer: OptimizerConfig{Name: opt, Momentum: 0.9}}, nil)
			require.NoError(t, err)
			require.Len(t, hist, 3)
			assert.Less(t, hist[2].TrainLoss, hist[0].TrainLoss)
			_, acc, err := Evaluate(m, test, 50)
			require.NoError(t, err)
			assert.Greater(t, acc, 0.9)
			var seen []int
			_, acc2, err := EvaluateProgress(m, test, 50, func(n int) { seen = append(seen, n) })
			require.NoError(t, err)
			assert.Equal(t, acc, acc2)
			require.Len(t, seen, (test.N+49)/50, "one call a batch")
			assert.Equal(t, test.N, seen[len(seen)-1])
			assert.IsIncreasing(t, seen)
		})
	}
}

func downloadAll(t *testing.T, m *Model) [][]float32 {
	var out [][]float32
	for _, p := range m.Params() {
		w := make([]float32, p.Len())
		require.NoError(t, m.B.Download(w, p.W))
		out = append(out, w)
	}
	return out
}

// TestResumeIsExact: 1 epoch + resume for 1 more equals 2 epochs straight,
// bit for bit, on the CPU backend with the same seed.
func TestResumeIsExact(t *testing.T) {
	b := newCPU(t)
	train, _ := synthetic(t)
	spec := smallSpec()
	spec.Layers = append(spec.Layers[:4:4], LayerSpec{Type: "dropout", Name: "drop", Rate: 0.2}, spec.Layers[4])
	cfg := TrainConfig{Epochs: 2, Batch: 32, Seed: 5}

	straight, err := New(b, spec, 5)
	require.NoError(t, err)
	defer straight.Close()
	_, err = Train(straight, train, nil, cfg, nil)
	require.NoError(t, err)

	dir := t.TempDir()
	first, err := New(b, spec, 5)
	require.NoError(t, err)
	c1 := cfg
	c1.Epochs, c1.CheckpointDir = 1, dir
	_, err = Train(first, train, nil, c1, nil)
	require.NoError(t, err)
	require.NoError(t, first.Close())
	_, err = os.Stat(filepath.Join(dir, CheckpointName))
	require.NoError(t, err)

	resumed, err := New(b, spec, 99) // different init: everything must come from the checkpoint
	require.NoError(t, err)
	defer resumed.Close()
	c2 := cfg
	c2.CheckpointDir, c2.Resume = dir, true
	hist, err := Train(resumed, train, nil, c2, nil)
	require.NoError(t, err)
	assert.Len(t, hist, 2, "history includes the restored epoch")
	assert.Equal(t, downloadAll(t, straight), downloadAll(t, resumed))

	// A resume with another batch size is refused with a clear error.
	c3 := c2
	c3.Batch = 16
	_, err = Train(resumed, train, nil, c3, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "batch 32 there, 16 here")
}

// TestResumeRefusesAnotherRun: a checkpoint continues only the run that
// wrote it. Each difference is named before anything is restored, and the
// checkpoint file is left as it was.
func TestResumeRefusesAnotherRun(t *testing.T) {
	b := newCPU(t)
	train, _ := synthetic(t)
	dir := t.TempDir()
	cfg := TrainConfig{Epochs: 2, Batch: 32, Seed: 5, CheckpointDir: dir}
	m, err := New(b, smallSpec(), 5)
	require.NoError(t, err)
	defer m.Close()
	_, err = Train(m, train, nil, cfg, nil)
	require.NoError(t, err)
	ck := filepath.Join(dir, CheckpointName)
	before, err := os.ReadFile(ck)
	require.NoError(t, err)

	other := data.Synthetic(600, 8, 8, 1, 4, 2) // same size and name, other images
	tests := []struct {
		name  string
		train *data.Dataset
		edit  func(c *TrainConfig)
		want  string
	}{
		{"optimizer", train, func(c *TrainConfig) { c.Optimizer = OptimizerConfig{Name: "sgd"} }, "optimizer adam there, sgd here"},
		{"fewer images", train.Subset(500), nil, "training data synthetic-600x8x8x1-c4 (600 images) there, synthetic-600x8x8x1-c4 (500 images) here"},
		{"other images", other, nil, "training data synthetic-600x8x8x1-c4 (600 images) with other contents"},
		{"augmentation", train, func(c *TrainConfig) { c.Augment = true }, "augmentation false there, true here"},
		{"learning rate", train, func(c *TrainConfig) { c.Optimizer.LR = 0.01 }, "learning rate 0.001 there, 0.01 here"},
		{"seed and batch", train, func(c *TrainConfig) { c.Seed, c.Batch = 6, 16 }, "seed 5 there, 6 here; batch 32 there, 16 here"},
		{"fewer epochs", train, func(c *TrainConfig) { c.Epochs = 1 }, "has 2 epochs done, more than the 1 this run asks for"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.Resume, c.Epochs = true, 3
			if tc.edit != nil {
				tc.edit(&c)
			}
			m2, err := New(b, smallSpec(), 7)
			require.NoError(t, err)
			defer m2.Close()
			fresh := downloadAll(t, m2)
			_, err = Train(m2, tc.train, nil, c, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, fresh, downloadAll(t, m2), "nothing restored into the model")
			after, err := os.ReadFile(ck)
			require.NoError(t, err)
			assert.Equal(t, before, after, "checkpoint untouched")
		})
	}
}

// TestTrainStop: closing Stop ends training after the current step with
// ErrInterrupted; the epochs done so far come back and their checkpoint
// stays.
func TestTrainStop(t *testing.T) {
	b := newCPU(t)
	train, _ := synthetic(t)
	dir := t.TempDir()
	stop := make(chan struct{})
	m, err := New(b, smallSpec(), 5)
	require.NoError(t, err)
	defer m.Close()
	p := &stopAt{epoch: 2, seen: 64, stop: stop}
	hist, err := Train(m, train, nil, TrainConfig{Epochs: 3, Batch: 32, Seed: 5, CheckpointDir: dir, Stop: stop}, p)
	require.ErrorIs(t, err, ErrInterrupted)
	assert.Contains(t, err.Error(), "during epoch 2, after 2 of 19 steps")
	assert.Len(t, hist, 1)
	f, err := modelfile.ReadFile(filepath.Join(dir, CheckpointName))
	require.NoError(t, err)
	var cm checkpointMeta
	require.NoError(t, json.Unmarshal(f.Meta, &cm))
	assert.Equal(t, 1, cm.Epoch, "the checkpoint holds the last whole epoch")

	// a stop that arrives with the epoch's last step ends after its checkpoint
	stop2 := make(chan struct{})
	dir2 := t.TempDir()
	p2 := &stopAt{epoch: 1, seen: 600, stop: stop2}
	hist, err = Train(m, train, nil, TrainConfig{Epochs: 3, Batch: 32, Seed: 5, CheckpointDir: dir2, Stop: stop2}, p2)
	require.ErrorIs(t, err, ErrInterrupted)
	assert.Contains(t, err.Error(), "after epoch 1")
	assert.Len(t, hist, 1)
	_, err = os.Stat(filepath.Join(dir2, CheckpointName))
	assert.NoError(t, err)
}

// TestResumeOldCheckpoint: a checkpoint written before the run's
// augmentation and data were recorded resumes (nothing to compare).
func TestResumeOldCheckpoint(t *testing.T) {
	on := true
	old := checkpointMeta{Seed: 1, Batch: 32, Optimizer: "adam"}
	lr := 1e-3
	run := checkpointMeta{Seed: 1, Batch: 32, Optimizer: "adam", Augment: &on, Data: "x", Samples: 5, DataHash: "ab", LR: &lr}
	assert.Empty(t, old.differences(run))
}

// TestResumeRefusesOtherMomentum: an SGD checkpoint resumes only with the
// momentum it was trained with (and the same learning rate).
func TestResumeRefusesOtherMomentum(t *testing.T) {
	b := newCPU(t)
	train, _ := synthetic(t)
	dir := t.TempDir()
	sgd := OptimizerConfig{Name: "sgd", LR: 1e-3, Momentum: 0.9}
	m, err := New(b, smallSpec(), 5)
	require.NoError(t, err)
	defer m.Close()
	_, err = Train(m, train, nil, TrainConfig{Epochs: 1, Batch: 32, Seed: 5, CheckpointDir: dir, Optimizer: sgd}, nil)
	require.NoError(t, err)
	other := sgd
	other.Momentum = 0
	_, err = Train(m, train, nil, TrainConfig{Epochs: 2, Batch: 32, Seed: 5, CheckpointDir: dir, Optimizer: other, Resume: true}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "momentum 0.9 there, 0 here")
	hist, err := Train(m, train, nil, TrainConfig{Epochs: 2, Batch: 32, Seed: 5, CheckpointDir: dir, Optimizer: sgd, Resume: true}, nil)
	require.NoError(t, err)
	assert.Len(t, hist, 2, "the same settings resume")
}

// stopAt closes stop once training reaches seen samples of epoch.
type stopAt struct {
	epoch, cur, seen int
	stop             chan struct{}
}

func (s *stopAt) EpochStart(epoch, _, _ int) { s.cur = epoch }
func (s *stopAt) EpochEnd(EpochStats)        {}
func (s *stopAt) Step(seen int, _, _ float64) {
	if s.cur == s.epoch && seen == s.seen {
		close(s.stop)
	}
}

func TestSaveLoadPredict(t *testing.T) {
	b := newCPU(t)
	train, test := synthetic(t)
	m, err := New(b, smallSpec(), 2)
	require.NoError(t, err)
	defer m.Close()
	_, err = Train(m, train, nil, TrainConfig{Epochs: 1, Batch: 32, Seed: 2}, nil)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "m.kiln")
	require.NoError(t, m.Save(path, ModelMeta{ClassNames: []string{"a", "b", "c", "d"}, Scale: 1.0 / 255}))

	l2, meta, err := Load(b, path)
	require.NoError(t, err)
	defer l2.Close()
	assert.Equal(t, []string{"a", "b", "c", "d"}, meta.ClassNames)
	p1 := make([]float32, 5*4)
	p2 := make([]float32, 5*4)
	require.NoError(t, m.Predict(test.Images, 5, p1))
	require.NoError(t, l2.Predict(test.Images, 5, p2))
	assert.Equal(t, p1, p2)
	var sum float32
	for _, v := range p1[:4] {
		sum += v
	}
	assert.InDelta(t, 1, sum, 1e-5)

	_, acc1, err := Evaluate(m, test, 64)
	require.NoError(t, err)
	_, acc2, err := Evaluate(l2, test, 64)
	require.NoError(t, err)
	assert.Equal(t, acc1, acc2)

	// Corrupt the file: loading must fail and say so.
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	raw[len(raw)/2] ^= 0xff
	bad := filepath.Join(t.TempDir(), "bad.kiln")
	require.NoError(t, os.WriteFile(bad, raw, 0o644))
	_, _, err = Load(b, bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad.kiln")
}

// smallMemory reports a device of a few megabytes.
type smallMemory struct{ backend.Backend }

func (s smallMemory) Device() backend.DeviceInfo {
	d := s.Backend.Device()
	d.MemoryBytes = 4 << 20
	return d
}

func TestModelMustFitDevice(t *testing.T) {
	b := newCPU(t)
	spec := Spec{Input: []int{28, 28, 1}, Layers: []LayerSpec{
		{Type: "flatten"}, {Type: "dense", Units: 1000, Activation: "relu"}, {Type: "dense", Units: 10, Activation: "softmax"}}}
	_, err := New(smallMemory{b}, spec, 1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "795010 parameters need 6360080 bytes for weights and gradients, more than the 4194304 bytes")
	m, err := New(b, spec, 1) // the host has the room
	require.NoError(t, err)
	m.Close()
}

// TestActivationsMustFitDevice: a model whose weights fit but whose
// activations at the batch asked for do not is refused before Setup
// allocates them, and stays usable at a batch that fits.
func TestActivationsMustFitDevice(t *testing.T) {
	b := newCPU(t)
	spec := Spec{Input: []int{64, 64, 1}, Layers: []LayerSpec{
		{Type: "conv2d", Filters: 64, Kernel: []int{1, 1}}, {Type: "maxpool2d", Pool: []int{64, 64}},
		{Type: "flatten"}, {Type: "dense", Units: 10, Activation: "softmax"}}}
	m, err := New(smallMemory{b}, spec, 1) // 1,428 parameters
	require.NoError(t, err)
	defer m.Close()
	allocs := b.Stats().Allocs
	err = m.Setup(64) // 266,378 values a sample: 68 MB
	require.Error(t, err)
	assert.Contains(t, err.Error(), "batch 64 needs at least 68192768 bytes for its activations (266378 values a sample), more than the 4194304 bytes")
	assert.Equal(t, allocs, b.Stats().Allocs, "nothing allocated")
	require.NoError(t, m.Setup(2))
}

// TestLoadChecksTensorsFirst: a model file whose spec asks for far more than
// its tensors hold is refused before the spec's buffers are allocated.
func TestLoadChecksTensorsFirst(t *testing.T) {
	b := newCPU(t)
	m, err := New(b, smallSpec(), 1)
	require.NoError(t, err)
	defer m.Close()
	f, err := m.file("model", ModelMeta{})
	require.NoError(t, err)
	huge := smallSpec()
	for i := range huge.Layers {
		if huge.Layers[i].Type == "dense" && huge.Layers[i].Activation != "softmax" {
			huge.Layers[i].Units = 1 << 24 // 1.2 G weights, 4.8 GB
		}
	}
	f.Spec, err = json.Marshal(huge)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "huge.kiln")
	require.NoError(t, modelfile.WriteFile(path, f))
	allocs := b.Stats().Allocs
	_, _, err = Load(b, path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the model spec needs")
	assert.Equal(t, allocs, b.Stats().Allocs, "nothing allocated")
}

func TestTrainRejectsBadInput(t *testing.T) {
	b := newCPU(t)
	train, _ := synthetic(t)
	m, err := New(b, smallSpec(), 1)
	require.NoError(t, err)
	defer m.Close()
	_, err = Train(m, train, nil, TrainConfig{Epochs: 1, Batch: 0}, nil)
	assert.ErrorContains(t, err, "batch size must be positive")
	wrong := data.Synthetic(10, 9, 9, 1, 4, 1)
	_, err = Train(m, wrong, nil, TrainConfig{Epochs: 1, Batch: 4}, nil)
	assert.ErrorContains(t, err, "has images of 9x9x1, the model expects 8x8x1")
}

// TestPoolTakesReLU checks that moving a convolution's ReLU gradient into
// the max pooling after it (Model.poolTakesReLU) changes no bit: the
// reference CNN trained for a few steps either way has the same losses,
// correct counts and weights.
func TestPoolTakesReLU(t *testing.T) {
	const batch, steps = 8, 4
	train := func(fused bool) ([]float64, [][]float32) {
		be := cpu.New()
		defer be.Close()
		m, err := New(be, ReferenceSpec(28, 28, 1, 10), 3)
		require.NoError(t, err)
		defer m.Close()
		if !fused {
			m.poolTakesReLU(false)
		}
		require.NoError(t, m.Setup(batch))
		opt, err := NewOptimizer(be, OptimizerConfig{}, m.Params())
		require.NoError(t, err)
		defer opt.Close()
		var losses []float64
		for s := range steps {
			images, labels := benchBatch(batch, m.InputLen())
			for i := range images {
				images[i] = float32(math.Mod(float64(images[i])*float64(s+1)*7, 1))
			}
			loss, correct, err := m.TrainStep(images, labels, batch, opt, uint64(s))
			require.NoError(t, err)
			losses = append(losses, loss, float64(correct))
		}
		var ws [][]float32
		for _, p := range m.Params() {
			w := make([]float32, p.Len())
			require.NoError(t, be.Download(w, p.W))
			ws = append(ws, w)
		}
		return losses, ws
	}
	lossA, wA := train(true)
	lossB, wB := train(false)
	require.Equal(t, lossB, lossA, "losses and correct counts")
	for i := range wA {
		for j := range wA[i] {
			if math.Float32bits(wA[i][j]) != math.Float32bits(wB[i][j]) {
				require.Failf(t, "weights differ", "param %d element %d: %v vs %v", i, j, wA[i][j], wB[i][j])
			}
		}
	}
}

// TestBatchLargerThanData: a batch larger than the data trains and
// evaluates as one partial batch, with buffers for the data only (a batch
// of 2^28 would need far more memory than the host has), and matches the
// run with a batch of exactly the data's size.
func TestBatchLargerThanData(t *testing.T) {
	train := data.Synthetic(20, 8, 8, 1, 4, 1)
	run := func(batch int) (EpochStats, float64) {
		b := cpu.New()
		defer b.Close()
		m, err := New(b, smallSpec(), 1)
		require.NoError(t, err)
		defer m.Close()
		hist, err := Train(m, train, nil, TrainConfig{Epochs: 1, Batch: batch, Seed: 1}, nil)
		require.NoError(t, err)
		require.Len(t, hist, 1)
		_, acc, err := Evaluate(m, train, batch)
		require.NoError(t, err)
		return hist[0], acc
	}
	huge, hugeAcc := run(1 << 28)
	exact, exactAcc := run(20)
	assert.Equal(t, exact.TrainLoss, huge.TrainLoss)
	assert.Equal(t, exactAcc, hugeAcc)
}

// TestLayerSeedsIndependent: two dropout layers of one step draw masks
// that agree about as often as independent ones would (half the time at
// rate 0.5), at every shift between them. With the layer index added as a
// multiple of DropoutKeep's element spacing, layer b's mask was layer a's
// shifted by b−a elements (agreement 1 at that shift).
func TestLayerSeedsIndependent(t *testing.T) {
	const n, rate = 4096, 0.5
	for _, seed := range []uint64{0, 1, 0xdeadbeef} {
		for _, pair := range [][2]int{{2, 5}, {0, 1}, {3, 4}} {
			sa, sb := layerSeed(seed, pair[0]), layerSeed(seed, pair[1])
			for shift := -8; shift <= 8; shift++ {
				agree, total := 0, 0
				for j := 8; j < n-8; j++ {
					if backend.DropoutKeep(sa, j+shift, rate) == backend.DropoutKeep(sb, j, rate) {
						agree++
					}
					total++
				}
				frac := float64(agree) / float64(total)
				assert.InDelta(t, 0.5, frac, 0.05, "seed %d layers %v shift %d", seed, pair, shift)
			}
		}
	}
}

// TestSpecTrailingWhitespace: a spec file ends with a newline (editors
// write one); only data after the object is refused.
func TestSpecTrailingWhitespace(t *testing.T) {
	_, err := ParseSpecStrict([]byte("{\"input\":[4,4,1],\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":2,\"activation\":\"softmax\"}]}\n \t\n"))
	require.NoError(t, err)
}

// TestNonFiniteLoss: a model whose weights are no longer numbers stops
// training at the first step (as Keras' TerminateOnNaN) and gets no
// accuracy from Evaluate, where NaN outputs' argmax, class 0, would count
// the rows labelled 0 as right.
func TestNonFiniteLoss(t *testing.T) {
	b := newCPU(t)
	train, test := synthetic(t)
	m, err := New(b, smallSpec(), 1)
	require.NoError(t, err)
	defer m.Close()
	p := m.Params()[len(m.Params())-1] // the output layer's bias
	w := make([]float32, p.Len())
	for i := range w {
		w[i] = float32(math.NaN())
	}
	require.NoError(t, b.Upload(p.W, w))
	_, _, err = Evaluate(m, test, 50)
	require.ErrorIs(t, err, ErrNotFinite)
	assert.Contains(t, err.Error(), "samples 0 to 49")
	hist, err := Train(m, train, nil, TrainConfig{Epochs: 2, Batch: 16, Seed: 1, Optimizer: OptimizerConfig{Name: "adam"}}, nil)
	require.ErrorIs(t, err, ErrDiverged)
	assert.Contains(t, err.Error(), "epoch 1, step 1")
	assert.Empty(t, hist)
}

// TestEvaluateUntil: a closed stop channel ends the evaluation between
// batches with ErrEvalInterrupted, saying how far it got.
func TestEvaluateUntil(t *testing.T) {
	b := newCPU(t)
	_, test := synthetic(t)
	m, err := New(b, smallSpec(), 1)
	require.NoError(t, err)
	defer m.Close()
	stop := make(chan struct{})
	_, _, err = EvaluateUntil(m, test, 50, func(n int) {
		if n == 100 {
			close(stop)
		}
	}, stop)
	require.ErrorIs(t, err, ErrEvalInterrupted)
	assert.EqualError(t, err, "evaluation interrupted after 100 of 200 images")
	loss, acc, err := EvaluateUntil(m, test, 50, nil, make(chan struct{}))
	require.NoError(t, err)
	wl, wa, err := Evaluate(m, test, 50)
	require.NoError(t, err)
	assert.Equal(t, wl, loss)
	assert.Equal(t, wa, acc)
}

// TestLoadSpecOfAModelFile: a saved model given where a spec goes (a
// user hoping to train on from it) is named for what it is.
func TestLoadSpecOfAModelFile(t *testing.T) {
	b := newCPU(t)
	m, err := New(b, smallSpec(), 1)
	require.NoError(t, err)
	defer m.Close()
	path := filepath.Join(t.TempDir(), "m.kiln")
	require.NoError(t, m.Save(path, ModelMeta{}))
	_, err = LoadSpec(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path+" is a kiln model file, not a JSON model spec")
}
