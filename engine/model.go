package engine

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/kiln-ml/kiln/backend"
)

// Model is a Sequential model whose weights live on a backend. It is used by
// one goroutine at a time.
type Model struct {
	Spec    Spec
	B       backend.Backend
	layers  []layer
	shapes  [][]int
	inLen   int // per-sample input elements
	classes int

	maxBatch                       int
	in, labels, grad, stats, probs backend.Buffer
	io                             bufs
	hostStats                      [2]float32
	paramsCache                    []*Param
}

// New builds the model described by spec on b. Weights are initialised
// Glorot-uniform from seed (zero biases), as Keras does.
func New(b backend.Backend, spec Spec, seed uint64) (*Model, error) {
	return build(b, spec, rand.New(rand.NewPCG(seed, 0x6b696c6e)))
}

// build constructs the layers; a nil rng leaves weights at zero (for loading).
func build(b backend.Backend, spec Spec, rng *rand.Rand) (*Model, error) {
	shapes, err := spec.Shapes()
	if err != nil {
		return nil, err
	}
	if err := fitsDevice(b, spec); err != nil {
		return nil, err
	}
	m := &Model{Spec: spec, B: b, shapes: shapes, io: bufs{b: b}}
	m.inLen = prod(spec.Input)
	last := shapes[len(shapes)-1]
	m.classes = last[len(last)-1]
	in := spec.Input
	for i, l := range spec.Layers {
		name := spec.layerName(i)
		var ly layer
		switch l.Type {
		case "conv2d":
			ly, err = newConv2D(b, name, l, in, rng)
		case "dense":
			ly, err = newDense(b, name, l, in, rng)
		case "maxpool2d":
			ly = newMaxPool(b, l, in)
		case "flatten":
			ly = flatten{}
		case "relu":
			ly = &relu{bufs: bufs{b: b}, per: prod(in)}
		case "dropout":
			ly = &dropout{bufs: bufs{b: b}, per: prod(in), rate: float32(l.Rate)}
		}
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("build layer %d (%s): %w", i, name, err)
		}
		m.layers = append(m.layers, ly)
		in = shapes[i]
	}
	m.poolTakesReLU(true)
	for _, l := range m.layers {
		m.paramsCache = append(m.paramsCache, l.params()...)
	}
	return m, nil
}

// fitsDevice checks that the spec's weights and their gradients fit in the
// device's memory (when the backend knows it) before any is allocated, so
// that a huge spec is an error rather than an out-of-memory crash.
func fitsDevice(b backend.Backend, spec Spec) error {
	mem := b.Device().MemoryBytes
	if mem <= 0 {
		return nil
	}
	ps, err := spec.paramShapes()
	if err != nil {
		return err
	}
	var n int64
	for _, p := range ps {
		n += int64(prod(p.shape))
	}
	if need := n * 4 * 2; need > mem {
		return fmt.Errorf("model spec: %d parameters need %d bytes for weights and gradients, more than the %d bytes of %s's device", n, need, mem, b.Name())
	}
	return nil
}

// poolTakesReLU moves the ReLU gradient of every convolution with a fused
// ReLU whose output goes straight into a max pooling from the
// convolution's backward pass (over its whole output) to the pooling's
// (over the pooled gradient, before it is scattered), or back when on is
// false. The results are the same bits: the pooling routes each gradient
// to its window's argmax, where the ReLU output is the pooled value, so
// masking by "pooled value > 0" before the scatter equals masking by
// "ReLU output > 0" after it. The full-size pass over the convolution's
// output (the largest tensors of the reference CNN) becomes one over a
// quarter of it.
func (m *Model) poolTakesReLU(on bool) {
	for i := 1; i < len(m.layers); i++ {
		pool, ok := m.layers[i].(*maxpool2d)
		conv, ok2 := m.layers[i-1].(*conv2d)
		if ok && ok2 && conv.relu {
			pool.reluBack, conv.reluInPool = on, on
		}
	}
}

// Params lists every trainable tensor in layer order.
func (m *Model) Params() []*Param { return m.paramsCache }

// Classes is the number of output classes.
func (m *Model) Classes() int { return m.classes }

// InputLen is the number of float32 elements of one input sample.
func (m *Model) InputLen() int { return m.inLen }

// NumParams counts the trainable scalars.
func (m *Model) NumParams() int {
	n := 0
	for _, p := range m.Params() {
		n += p.Len()
	}
	return n
}

// Setup sizes every activation buffer for batches of up to maxBatch samples.
// It is cheap when the model is already set up for at least maxBatch. A
// Setup that fails (a batch too large for the device's memory) leaves the
// model usable for the batches it was set up for before: each buffer is
// replaced only once its larger successor is allocated, and the size the
// model works at grows only when every buffer has. The larger buffers a
// failed Setup did allocate stay owned by the model (Close frees them).
func (m *Model) Setup(maxBatch int) error {
	if maxBatch <= 0 {
		return fmt.Errorf("batch size must be positive, got %d", maxBatch)
	}
	if maxBatch <= m.maxBatch {
		return nil
	}
	if err := m.activationsFit(maxBatch); err != nil {
		return err
	}
	for i, l := range m.layers {
		if err := l.setup(maxBatch); err != nil {
			return fmt.Errorf("allocate activations of layer %d for batch %d: %w", i, maxBatch, err)
		}
	}
	var err error
	for _, b := range []struct {
		name string
		buf  *backend.Buffer
		n    int
	}{
		{"input", &m.in, maxBatch * m.inLen}, {"labels", &m.labels, maxBatch},
		{"loss gradient", &m.grad, maxBatch * m.classes}, {"probabilities", &m.probs, maxBatch * m.classes},
	} {
		if *b.buf, err = m.io.realloc(*b.buf, b.n); err != nil {
			return fmt.Errorf("allocate the model's %s for batch %d: %w", b.name, maxBatch, err)
		}
	}
	if m.stats == nil {
		if m.stats, err = m.io.alloc(2); err != nil {
			return fmt.Errorf("allocate the model's loss statistics: %w", err)
		}
	}
	m.maxBatch = maxBatch
	return nil
}

// activationsFit refuses a batch whose activations alone (the input and
// every layer's output, a lower bound of what Setup allocates) exceed the
// device's memory, before any is allocated: a spec with a huge input fits
// its weights in a few bytes, and allocating buffer by buffer would only
// fail (or, on the host, be killed) after gigabytes.
func (m *Model) activationsFit(maxBatch int) error {
	mem := m.B.Device().MemoryBytes
	if mem <= 0 {
		return nil
	}
	shapes, err := m.Spec.Shapes()
	if err != nil {
		return err
	}
	per := int64(m.inLen)
	for _, sh := range shapes {
		per += int64(prod(sh))
	}
	if need := per * int64(maxBatch) * 4; need/int64(maxBatch) != per*4 || need > mem {
		return fmt.Errorf("batch %d needs at least %d bytes for its activations (%d values a sample), more than the %d bytes of %s's device: use a smaller batch", maxBatch, need, per, mem, m.B.Name())
	}
	return nil
}

// layerSeed is the random seed of layer i in a step with seed seed. The
// layer index goes through a hash, not a plain offset: DropoutKeep spaces
// its elements by the golden-ratio constant, so an offset of i times that
// constant made layer b's mask layer a's shifted by b−a elements.
func layerSeed(seed uint64, i int) uint64 {
	return mix64(seed ^ mix64(uint64(i)+1))
}

// mix64 is SplitMix64's finaliser: a bijection of uint64 whose output bits
// each depend on every input bit.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// forward runs every layer on the n samples already in m.in.
func (m *Model) forward(n int, train bool, seed uint64) (backend.Buffer, error) {
	x := m.in
	var err error
	for i, l := range m.layers {
		if x, err = l.forward(x, n, train, layerSeed(seed, i)); err != nil {
			return nil, fmt.Errorf("forward layer %d (%s): %w", i, m.Spec.layerName(i), err)
		}
	}
	return x, nil
}

func (m *Model) backward(dy backend.Buffer, n int) error {
	var err error
	for i := len(m.layers) - 1; i >= 0; i-- {
		if dy, err = m.layers[i].backward(dy, n, i > 0); err != nil {
			return fmt.Errorf("backward layer %d (%s): %w", i, m.Spec.layerName(i), err)
		}
	}
	return nil
}

func (m *Model) upload(images, labels []float32, n int) error {
	if n <= 0 || n > m.maxBatch {
		return fmt.Errorf("batch of %d samples does not fit the model's buffers (set up for %d)", n, m.maxBatch)
	}
	if len(images) < n*m.inLen {
		return fmt.Errorf("batch images hold %d values, %d samples of shape %v need %d", len(images), n, m.Spec.Input, n*m.inLen)
	}
	if err := m.B.Upload(m.in, images[:n*m.inLen]); err != nil {
		return err
	}
	if labels != nil {
		if len(labels) < n {
			return fmt.Errorf("batch has %d labels for %d samples", len(labels), n)
		}
		if err := m.B.Upload(m.labels, labels[:n]); err != nil {
			return err
		}
	}
	return nil
}

// lossStats runs the fused softmax cross-entropy and downloads the two
// numbers a step reports.
func (m *Model) lossStats(logits backend.Buffer, n int) (loss float64, correct int, err error) {
	if err := m.B.SoftmaxCrossEntropy(logits, m.labels, n, m.classes, m.grad, m.stats); err != nil {
		return 0, 0, err
	}
	if err := m.B.Download(m.hostStats[:], m.stats); err != nil {
		return 0, 0, err
	}
	return float64(m.hostStats[0]), int(m.hostStats[1] + 0.5), nil
}

// TrainStep runs forward, loss, backward and one optimizer update on a
// batch of n samples (images NHWC, labels as float32 class indices). It
// returns the summed loss and the number of correct predictions.
func (m *Model) TrainStep(images, labels []float32, n int, opt Optimizer, seed uint64) (lossSum float64, correct int, err error) {
	if err := m.upload(images, labels, n); err != nil {
		return 0, 0, err
	}
	logits, err := m.forward(n, true, seed)
	if err != nil {
		return 0, 0, err
	}
	if lossSum, correct, err = m.lossStats(logits, n); err != nil {
		return 0, 0, err
	}
	if math.IsNaN(lossSum) || math.IsInf(lossSum, 0) {
		return 0, 0, fmt.Errorf("%w: the batch's loss is %v (try a lower --lr)", ErrDiverged, lossSum)
	}
	if err := m.backward(m.grad, n); err != nil {
		return 0, 0, err
	}
	if err := opt.Step(m.B, m.Params()); err != nil {
		return 0, 0, fmt.Errorf("optimizer %s: %w", opt.Name(), err)
	}
	return lossSum, correct, nil
}

// EvalStep runs inference on a labelled batch and returns the summed loss
// and the number of correct predictions.
func (m *Model) EvalStep(images, labels []float32, n int) (lossSum float64, correct int, err error) {
	if err := m.upload(images, labels, n); err != nil {
		return 0, 0, err
	}
	logits, err := m.forward(n, false, 0)
	if err != nil {
		return 0, 0, err
	}
	return m.lossStats(logits, n)
}

// Predict writes class probabilities (n×Classes) for n samples into probs.
func (m *Model) Predict(images []float32, n int, probs []float32) error {
	if err := m.Setup(n); err != nil {
		return err
	}
	if len(probs) < n*m.classes {
		return fmt.Errorf("probabilities buffer holds %d values, need %d", len(probs), n*m.classes)
	}
	if err := m.upload(images, nil, n); err != nil {
		return err
	}
	logits, err := m.forward(n, false, 0)
	if err != nil {
		return err
	}
	if err := m.B.Softmax(logits, m.probs, n, m.classes); err != nil {
		return err
	}
	return m.B.Download(probs[:n*m.classes], m.probs)
}

// Close frees every device buffer the model holds. The backend stays open.
func (m *Model) Close() error {
	for _, l := range m.layers {
		l.free()
	}
	m.layers = nil
	m.io.free()
	m.maxBatch = 0
	return nil
}
