package engine

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/kiln-ml/kiln/backend"
)

// Param is one trainable tensor of a layer: its weights and the gradient the
// last backward pass wrote, both on the device.
type Param struct {
	Name  string // layer/kind, e.g. "conv1/kernel"
	Shape []int
	W, G  backend.Buffer
}

// Len is the number of elements.
func (p *Param) Len() int { return prod(p.Shape) }

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// layer is implemented by every layer kind. Buffers are sized once by setup
// for up to maxBatch samples; forward and backward use the first n. A setup
// that fails leaves every buffer at least as large as before (see
// bufs.realloc), so the layer still works for the batches it did.
type layer interface {
	params() []*Param
	setup(maxBatch int) error
	// forward returns the layer's output buffer (possibly x itself).
	forward(x backend.Buffer, n int, train bool, seed uint64) (backend.Buffer, error)
	// backward writes parameter gradients and, when needDX, returns dx.
	backward(dy backend.Buffer, n int, needDX bool) (backend.Buffer, error)
	free()
}

// bufs owns a layer's device buffers so free releases them all.
type bufs struct {
	b    backend.Backend
	list []backend.Buffer
}

func (o *bufs) alloc(n int) (backend.Buffer, error) {
	buf, err := o.b.Alloc(n)
	if err != nil {
		return nil, err
	}
	o.list = append(o.list, buf)
	return buf, nil
}

// realloc replaces old (nil: none) by a new buffer of n elements. The new
// buffer is allocated before old is freed: when the allocation fails,
// realloc returns old itself, still owned and usable, with the error, so
// that a caller assigning the result keeps the buffer it had (freeing old
// first left nil buffers behind a failed allocation).
func (o *bufs) realloc(old backend.Buffer, n int) (backend.Buffer, error) {
	buf, err := o.alloc(n)
	if err != nil {
		return old, err
	}
	if old != nil {
		for i, b := range o.list {
			if b == old {
				o.list = append(o.list[:i], o.list[i+1:]...)
				break
			}
		}
		old.Free()
	}
	return buf, nil
}

func (o *bufs) free() {
	for _, b := range o.list {
		b.Free()
	}
	o.list = nil
}

// glorot fills w with Glorot-uniform values (Keras' default initializer).
func glorot(rng *rand.Rand, w []float32, fanIn, fanOut int) {
	limit := math.Sqrt(6 / float64(fanIn+fanOut))
	for i := range w {
		w[i] = float32((rng.Float64()*2 - 1) * limit)
	}
}

func newParam(o *bufs, name string, shape []int, init []float32) (*Param, error) {
	p := &Param{Name: name, Shape: shape}
	var err error
	if p.W, err = o.alloc(p.Len()); err != nil {
		return nil, fmt.Errorf("allocate %s: %w", name, err)
	}
	if p.G, err = o.alloc(p.Len()); err != nil {
		return nil, fmt.Errorf("allocate %s gradient: %w", name, err)
	}
	if init != nil {
		if err := o.b.Upload(p.W, init); err != nil {
			return nil, fmt.Errorf("upload %s: %w", name, err)
		}
	}
	return p, nil
}

// conv2d is Conv2D + bias, with an optional fused ReLU.
type conv2d struct {
	bufs
	p          backend.ConvParams // N is set per call
	relu       bool
	kernel     *Param
	bias       *Param
	x          backend.Buffer // input of the last forward
	y, dz, dx  backend.Buffer
	outPerItem int
	inPerItem  int
	reluInPool bool // the next layer (a max pooling) applies the ReLU gradient
}

func newConv2D(b backend.Backend, name string, l LayerSpec, in []int, rng *rand.Rand) (*conv2d, error) {
	kh, kw, _ := pair(l.Kernel, 0, "kernel")
	sh, sw, _ := pair(l.Strides, 1, "strides")
	oh, pt, err := backend.ConvOutSize(in[0], kh, sh, l.Padding)
	if err != nil {
		return nil, err
	}
	ow, pl, err := backend.ConvOutSize(in[1], kw, sw, l.Padding)
	if err != nil {
		return nil, err
	}
	c := &conv2d{bufs: bufs{b: b}, relu: l.Activation == "relu"}
	c.p = backend.ConvParams{H: in[0], W: in[1], C: in[2], KH: kh, KW: kw, F: l.Filters,
		StrideH: sh, StrideW: sw, PadTop: pt, PadLeft: pl, OutH: oh, OutW: ow}
	c.inPerItem = in[0] * in[1] * in[2]
	c.outPerItem = oh * ow * l.Filters
	var w []float32
	if rng != nil {
		w = make([]float32, kh*kw*in[2]*l.Filters)
		glorot(rng, w, kh*kw*in[2], kh*kw*l.Filters)
	}
	if c.kernel, err = newParam(&c.bufs, name+"/kernel", []int{kh, kw, in[2], l.Filters}, w); err != nil {
		c.free()
		return nil, err
	}
	if c.bias, err = newParam(&c.bufs, name+"/bias", []int{l.Filters}, nil); err != nil {
		c.free()
		return nil, err
	}
	return c, nil
}

func (c *conv2d) params() []*Param { return []*Param{c.kernel, c.bias} }

func (c *conv2d) setup(maxBatch int) error {
	var err error
	if c.y, err = c.realloc(c.y, maxBatch*c.outPerItem); err != nil {
		return err
	}
	if c.dz, err = c.realloc(c.dz, maxBatch*c.outPerItem); err != nil {
		return err
	}
	c.dx, err = c.realloc(c.dx, maxBatch*c.inPerItem)
	return err
}

func (c *conv2d) forward(x backend.Buffer, n int, train bool, _ uint64) (backend.Buffer, error) {
	p := c.p
	p.N = n
	// Training's backward pass reads the ties in y (the ReLU's mask, the
	// pooling's argmax); at inference the backend need not keep them.
	p.Inference = !train
	c.x = x
	if err := c.b.Conv2D(p, x, c.kernel.W, c.y); err != nil {
		return nil, err
	}
	if err := c.b.BiasAdd(c.y, c.bias.W, n*p.OutH*p.OutW, p.F); err != nil {
		return nil, err
	}
	if c.relu {
		if err := c.b.ReLU(c.y, c.y, n*c.outPerItem); err != nil {
			return nil, err
		}
	}
	return c.y, nil
}

func (c *conv2d) backward(dy backend.Buffer, n int, needDX bool) (backend.Buffer, error) {
	p := c.p
	p.N = n
	dz := dy
	if c.relu && !c.reluInPool {
		if err := c.b.ReLUBackward(c.y, dy, c.dz, n*c.outPerItem); err != nil {
			return nil, err
		}
		dz = c.dz
	}
	if err := c.b.BiasGrad(dz, c.bias.G, n*p.OutH*p.OutW, p.F); err != nil {
		return nil, err
	}
	if err := c.b.Conv2DBackwardFilter(p, c.x, dz, c.kernel.G); err != nil {
		return nil, err
	}
	if !needDX {
		return nil, nil
	}
	if err := c.b.Conv2DBackwardData(p, dz, c.kernel.W, c.dx); err != nil {
		return nil, err
	}
	return c.dx, nil
}

// dense is x·W + b with an optional fused ReLU.
type dense struct {
	bufs
	in, out   int
	relu      bool
	kernel    *Param
	bias      *Param
	x         backend.Buffer
	y, dz, dx backend.Buffer
}

func newDense(b backend.Backend, name string, l LayerSpec, in []int, rng *rand.Rand) (*dense, error) {
	d := &dense{bufs: bufs{b: b}, in: in[0], out: l.Units, relu: l.Activation == "relu"}
	var w []float32
	if rng != nil {
		w = make([]float32, d.in*d.out)
		glorot(rng, w, d.in, d.out)
	}
	var err error
	if d.kernel, err = newParam(&d.bufs, name+"/kernel", []int{d.in, d.out}, w); err != nil {
		d.free()
		return nil, err
	}
	if d.bias, err = newParam(&d.bufs, name+"/bias", []int{d.out}, nil); err != nil {
		d.free()
		return nil, err
	}
	return d, nil
}

func (d *dense) params() []*Param { return []*Param{d.kernel, d.bias} }

func (d *dense) setup(maxBatch int) error {
	var err error
	if d.y, err = d.realloc(d.y, maxBatch*d.out); err != nil {
		return err
	}
	if d.dz, err = d.realloc(d.dz, maxBatch*d.out); err != nil {
		return err
	}
	d.dx, err = d.realloc(d.dx, maxBatch*d.in)
	return err
}

func (d *dense) forward(x backend.Buffer, n int, _ bool, _ uint64) (backend.Buffer, error) {
	d.x = x
	if err := d.b.Gemm(false, false, n, d.out, d.in, 1, x, d.kernel.W, 0, d.y); err != nil {
		return nil, err
	}
	if err := d.b.BiasAdd(d.y, d.bias.W, n, d.out); err != nil {
		return nil, err
	}
	if d.relu {
		if err := d.b.ReLU(d.y, d.y, n*d.out); err != nil {
			return nil, err
		}
	}
	return d.y, nil
}

func (d *dense) backward(dy backend.Buffer, n int, needDX bool) (backend.Buffer, error) {
	dz := dy
	if d.relu {
		if err := d.b.ReLUBackward(d.y, dy, d.dz, n*d.out); err != nil {
			return nil, err
		}
		dz = d.dz
	}
	if err := d.b.BiasGrad(dz, d.bias.G, n, d.out); err != nil {
		return nil, err
	}
	if err := d.b.Gemm(true, false, d.in, d.out, n, 1, d.x, dz, 0, d.kernel.G); err != nil {
		return nil, err
	}
	if !needDX {
		return nil, nil
	}
	if err := d.b.Gemm(false, true, n, d.in, d.out, 1, dz, d.kernel.W, 0, d.dx); err != nil {
		return nil, err
	}
	return d.dx, nil
}

// maxpool2d is max pooling without padding.
type maxpool2d struct {
	bufs
	p             backend.PoolParams
	y, arg, dx    backend.Buffer
	dyr           backend.Buffer // the ReLU gradient of dy, when reluBack
	inLen, outLen int
	reluBack      bool // apply the previous layer's ReLU gradient (Model.poolTakesReLU)
}

func newMaxPool(b backend.Backend, l LayerSpec, in []int) *maxpool2d {
	ph, pw, _ := pair(l.Pool, 2, "pool")
	sh, sw, _ := pair(l.Strides, 0, "strides")
	if sh == 0 {
		sh, sw = ph, pw
	}
	m := &maxpool2d{bufs: bufs{b: b}}
	m.p = backend.PoolParams{H: in[0], W: in[1], C: in[2], KH: ph, KW: pw, StrideH: sh, StrideW: sw,
		OutH: (in[0]-ph)/sh + 1, OutW: (in[1]-pw)/sw + 1}
	m.inLen = in[0] * in[1] * in[2]
	m.outLen = m.p.OutH * m.p.OutW * in[2]
	return m
}

func (m *maxpool2d) params() []*Param { return nil }

func (m *maxpool2d) setup(maxBatch int) error {
	var err error
	if m.y, err = m.realloc(m.y, maxBatch*m.outLen); err != nil {
		return err
	}
	if m.arg, err = m.realloc(m.arg, maxBatch*m.outLen); err != nil {
		return err
	}
	if m.reluBack {
		if m.dyr, err = m.realloc(m.dyr, maxBatch*m.outLen); err != nil {
			return err
		}
	}
	m.dx, err = m.realloc(m.dx, maxBatch*m.inLen)
	return err
}

func (m *maxpool2d) forward(x backend.Buffer, n int, train bool, _ uint64) (backend.Buffer, error) {
	p := m.p
	p.N = n
	if err := m.b.MaxPool2D(p, x, m.y, m.arg); err != nil {
		return nil, err
	}
	if d, ok := m.b.(backend.Discarder); ok && !train {
		// At inference nothing reads the pooled input (the layer before's
		// output) or the argmax again: the backend need not store them.
		d.Discard(x)
		d.Discard(m.arg)
	}
	return m.y, nil
}

func (m *maxpool2d) backward(dy backend.Buffer, n int, needDX bool) (backend.Buffer, error) {
	if !needDX {
		return nil, nil
	}
	p := m.p
	p.N = n
	if m.reluBack {
		if err := m.b.ReLUBackward(m.y, dy, m.dyr, n*m.outLen); err != nil {
			return nil, err
		}
		dy = m.dyr
	}
	if err := m.b.MaxPool2DBackward(p, dy, m.arg, m.dx); err != nil {
		return nil, err
	}
	return m.dx, nil
}

// flatten only changes the shape; data is already contiguous.
type flatten struct{}

func (flatten) params() []*Param { return nil }
func (flatten) setup(int) error  { return nil }
func (flatten) free()            {}
func (flatten) forward(x backend.Buffer, _ int, _ bool, _ uint64) (backend.Buffer, error) {
	return x, nil
}
func (flatten) backward(dy backend.Buffer, _ int, _ bool) (backend.Buffer, error) { return dy, nil }

// relu is a standalone ReLU layer.
type relu struct {
	bufs
	per   int
	y, dx backend.Buffer
}

func (r *relu) params() []*Param { return nil }

func (r *relu) setup(maxBatch int) error {
	var err error
	if r.y, err = r.realloc(r.y, maxBatch*r.per); err != nil {
		return err
	}
	r.dx, err = r.realloc(r.dx, maxBatch*r.per)
	return err
}

func (r *relu) forward(x backend.Buffer, n int, _ bool, _ uint64) (backend.Buffer, error) {
	if err := r.b.ReLU(x, r.y, n*r.per); err != nil {
		return nil, err
	}
	return r.y, nil
}

func (r *relu) backward(dy backend.Buffer, n int, needDX bool) (backend.Buffer, error) {
	if !needDX {
		return nil, nil
	}
	if err := r.b.ReLUBackward(r.y, dy, r.dx, n*r.per); err != nil {
		return nil, err
	}
	return r.dx, nil
}

// dropout zeroes a fraction rate of its inputs while training and scales the
// rest by 1/(1-rate) (inverted dropout, as Keras); it is the identity at
// inference.
type dropout struct {
	bufs
	per         int
	rate        float32
	mask, y, dx backend.Buffer
	trained     bool // the last forward was a training one
}

func (d *dropout) params() []*Param { return nil }

func (d *dropout) setup(maxBatch int) error {
	var err error
	if d.mask, err = d.realloc(d.mask, maxBatch*d.per); err != nil {
		return err
	}
	if d.y, err = d.realloc(d.y, maxBatch*d.per); err != nil {
		return err
	}
	d.dx, err = d.realloc(d.dx, maxBatch*d.per)
	return err
}

func (d *dropout) forward(x backend.Buffer, n int, train bool, seed uint64) (backend.Buffer, error) {
	d.trained = train && d.rate > 0
	if !d.trained {
		return x, nil
	}
	if err := d.b.DropoutMask(d.mask, n*d.per, d.rate, seed); err != nil {
		return nil, err
	}
	if err := d.b.Mul(x, d.mask, d.y, n*d.per); err != nil {
		return nil, err
	}
	return d.y, nil
}

func (d *dropout) backward(dy backend.Buffer, n int, needDX bool) (backend.Buffer, error) {
	if !needDX || !d.trained {
		return dy, nil
	}
	if err := d.b.Mul(dy, d.mask, d.dx, n*d.per); err != nil {
		return nil, err
	}
	return d.dx, nil
}
