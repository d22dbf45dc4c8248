// Package backend defines the contract every kiln compute backend implements
// (CPU, OpenCL, CUDA), the registry backends add themselves to, and the
// selection logic behind --backend auto.
//
// A backend owns its buffers, runs ops in order on one queue, and only Sync
// and Download wait. All tensors are float32, row-major, NHWC. Every op takes
// explicit sizes and works on the leading elements of the buffers it is
// given, so a buffer sized for the largest batch serves smaller ones too.
package backend

// Buffer is an opaque block of float32 elements owned by a backend. It is
// valid only with the backend that allocated it and must be released with
// Free once it is no longer needed; calls to Free after the first are no-ops.
// Ops given a freed buffer return an error matching ErrShape.
type Buffer interface {
	// Len is the capacity of the buffer in float32 elements; 0 once freed.
	Len() int
	// Free returns the buffer to its backend. Freeing twice (or freeing a
	// nil buffer of a backend's type) is a no-op.
	Free()
}

// DeviceInfo describes the device a backend runs on.
type DeviceInfo struct {
	Backend      string `json:"backend"`
	Name         string `json:"name"`
	Vendor       string `json:"vendor,omitempty"`
	Driver       string `json:"driver,omitempty"`
	MemoryBytes  int64  `json:"memory_bytes"`
	ComputeUnits int    `json:"compute_units"`
	// Features says, where a backend has more than one code path for the
	// same device, which one runs (the cpu backend: its SGEMM and
	// convolution kernels, "avx512", "avx2" or "generic"); empty otherwise.
	Features string `json:"features,omitempty"`
}

// Stats reports live allocations, so tests can check that every Alloc was
// freed.
type Stats struct {
	LiveBuffers  int   // buffers allocated and not yet freed
	LiveElements int64 // float32 elements held by live buffers
	Allocs       int64 // total Alloc calls that succeeded
}

// ConvParams describes a 2-D convolution over NHWC input with an HWIO filter
// (KH, KW, C, F), as Keras stores it. Output is N×OutH×OutW×F.
type ConvParams struct {
	N, H, W, C       int // input
	KH, KW, F        int // filter height, width, output channels
	StrideH, StrideW int
	PadTop, PadLeft  int // zero padding before the first row / column
	OutH, OutW       int // output spatial size
	// Inference, set on a forward convolution, says that no backward pass
	// will follow it: nothing takes a ReLU mask or a pooling's argmax from
	// its output to send gradients back. A backend may then use an
	// algorithm that is as accurate but does not keep exact ties (it may
	// give ±1e-8 or so for an output whose window holds only zeros, or
	// slightly different values for outputs whose windows lie in one
	// uniform region). Without it, a forward convolution must keep those
	// two kinds of tie, as a direct one does: exactly 0 for a window of
	// zeros, and equal outputs for windows in a uniform region (an image's
	// background), because training amplifies a tie broken the other way
	// (see backend/backendtest's ties cases). The backward ops ignore it.
	Inference bool
}

// PoolParams describes a 2-D max pooling over NHWC input.
type PoolParams struct {
	N, H, W, C       int
	KH, KW           int
	StrideH, StrideW int
	OutH, OutW       int
}

// AdamParams holds the hyper-parameters of one Adam step (Keras semantics):
//
//	m = m + (g - m)(1-β1); v = v + (g² - v)(1-β2)
//	p = p - lr·sqrt(1-β2^t)/(1-β1^t) · m / (sqrt(v) + ε)
type AdamParams struct {
	LR, Beta1, Beta2, Eps float32
	Step                  int // t, starting at 1
}

// SGDParams holds the hyper-parameters of one SGD step with momentum (Keras
// semantics): v = momentum·v - lr·g; p = p + v.
type SGDParams struct {
	LR, Momentum float32
}

// Backend is the contract a compute backend implements. Methods that queue
// work may return errors early (bad sizes) or report device errors on a later
// Sync or Download. Every error names the backend and the op. Every size
// argument (n, rows, cols, m, n, k and every ConvParams/PoolParams field but
// padding) must be positive: zero or negative sizes return an error matching
// ErrShape, as do buffers smaller than an op needs. The output of Gemm, of
// the convolution ops and of the pooling ops (and MaxPool2D's argmax,
// SoftmaxCrossEntropy's grad and stats, and BiasGrad's db) must not be one
// of the op's other buffers: the op reads them while it writes
// it, so that too is an ErrShape error. Element-wise ops may run in place.
type Backend interface {
	// Name is the registry name ("cpu", "opencl", "cuda").
	Name() string
	// Device describes the device in use.
	Device() DeviceInfo
	// Ops lists the ops this backend implements (see the Op* constants).
	Ops() []string
	// Stats reports live allocations.
	Stats() Stats
	// Close releases the device; every buffer should be freed first.
	Close() error

	// Alloc returns a zero-filled buffer of n float32 elements.
	Alloc(n int) (Buffer, error)
	// Upload copies src into the first len(src) elements of dst.
	Upload(dst Buffer, src []float32) error
	// Download copies the first len(dst) elements of src into dst; it waits
	// for queued work.
	Download(dst []float32, src Buffer) error
	// Fill sets the first n elements of dst to v.
	Fill(dst Buffer, n int, v float32) error
	// Copy copies the first n elements of src into dst.
	Copy(dst, src Buffer, n int) error
	// Sync waits for all queued work and reports any deferred error.
	Sync() error

	// Gemm computes C = alpha·op(A)·op(B) + beta·C, row-major, where op(A)
	// is m×k and op(B) is k×n. A is stored m×k (k×m when transA), B is
	// stored k×n (n×k when transB), C is m×n.
	Gemm(transA, transB bool, m, n, k int, alpha float32, a, b Buffer, beta float32, c Buffer) error

	// Conv2D computes y = conv(x, w) (no bias).
	Conv2D(p ConvParams, x, w, y Buffer) error
	// Conv2DBackwardData computes dx = ∂L/∂x from dy and w (overwrites dx).
	Conv2DBackwardData(p ConvParams, dy, w, dx Buffer) error
	// Conv2DBackwardFilter computes dw = ∂L/∂w from x and dy (overwrites dw).
	Conv2DBackwardFilter(p ConvParams, x, dy, dw Buffer) error

	// MaxPool2D computes y and, for each output element, the offset of the
	// winning input inside its window (ky·KW + kx) stored as a float32 in
	// argmax. Ties go to the first element in row-major window order.
	MaxPool2D(p PoolParams, x, y, argmax Buffer) error
	// MaxPool2DBackward computes dx from dy and argmax (overwrites dx).
	// Argmax entries that are not a window offset (an integer in
	// [0, KH·KW)) contribute nothing.
	MaxPool2DBackward(p PoolParams, dy, argmax, dx Buffer) error

	// BiasAdd adds bias[c] to x[r·cols+c] for r < rows, in place.
	BiasAdd(x, bias Buffer, rows, cols int) error
	// BiasGrad sets db[c] = Σ_r dy[r·cols+c].
	BiasGrad(dy, db Buffer, rows, cols int) error
	// ReLU sets y = max(x, 0) over n elements (x and y may be the same).
	ReLU(x, y Buffer, n int) error
	// ReLUBackward sets dx = dy where y > 0, else 0 (y is the ReLU output).
	ReLUBackward(y, dy, dx Buffer, n int) error
	// Mul sets c = a·b element-wise over n elements.
	Mul(a, b, c Buffer, n int) error
	// DropoutMask sets mask[i] to 0 with probability rate and to 1/(1-rate)
	// otherwise, from a counter-based hash of (seed, i) (see DropoutKeep),
	// so every backend draws the same mask.
	DropoutMask(mask Buffer, n int, rate float32, seed uint64) error

	// Softmax sets y to the row-wise softmax of x (rows×cols).
	Softmax(x, y Buffer, rows, cols int) error
	// SoftmaxCrossEntropy takes logits (rows×cols) and integer class labels
	// stored as float32 (rows), writes grad = (softmax - onehot)/rows, and
	// writes stats[0] = Σ loss (natural log) and stats[1] = number of rows
	// whose argmax (first maximum) equals the label.
	SoftmaxCrossEntropy(logits, labels Buffer, rows, cols int, grad, stats Buffer) error

	// Adam applies one Adam step to n parameters.
	Adam(p AdamParams, param, grad, m, v Buffer, n int) error
	// SGD applies one SGD-with-momentum step to n parameters.
	SGD(p SGDParams, param, grad, vel Buffer, n int) error
}

// Discarder is implemented by backends that can use a hint that a buffer's
// values are dead. Discard(buf) declares that buf's values will not be
// read again before an op overwrites them (the engine says so at
// inference for a convolution's output once it has been pooled, and for
// the pooling's argmax), so work already queued that would store them may
// skip it. buf's values are undefined afterwards until an op writes it;
// it stays allocated and usable. A backend may ignore the hint; buffers it
// does not know are ignored. Discard is not an op: it never fails, and it
// is not listed by Ops.
type Discarder interface {
	Discard(buf Buffer)
}

// Rester is implemented by backends whose worker threads wait actively
// for the next op for a while after each one (the CPU backend: handing
// work to a spinning thread is much cheaper than waking a sleeping one).
// Rest says that no op follows soon, so those threads sleep at once and
// leave the cores to the caller's other work; the next op wakes them as
// usual. A server calls it when its queue is empty after a batch. Rest
// is a hint, not an op: it never fails and changes no result.
type Rester interface {
	Rest()
}

// Op names, as listed by Backend.Ops and named in errors.
const (
	OpAlloc                = "Alloc"
	OpUpload               = "Upload"
	OpDownload             = "Download"
	OpFill                 = "Fill"
	OpCopy                 = "Copy"
	OpGemm                 = "Gemm"
	OpConv2D               = "Conv2D"
	OpConv2DBackwardData   = "Conv2DBackwardData"
	OpConv2DBackwardFilter = "Conv2DBackwardFilter"
	OpMaxPool2D            = "MaxPool2D"
	OpMaxPool2DBackward    = "MaxPool2DBackward"
	OpBiasAdd              = "BiasAdd"
	OpBiasGrad             = "BiasGrad"
	OpReLU                 = "ReLU"
	OpReLUBackward         = "ReLUBackward"
	OpMul                  = "Mul"
	OpDropoutMask          = "DropoutMask"
	OpSoftmax              = "Softmax"
	OpSoftmaxCrossEntropy  = "SoftmaxCrossEntropy"
	OpAdam                 = "Adam"
	OpSGD                  = "SGD"
)

// AllOps lists every op of the contract.
func AllOps() []string {
	return []string{OpAlloc, OpUpload, OpDownload, OpFill, OpCopy, OpGemm,
		OpConv2D, OpConv2DBackwardData, OpConv2DBackwardFilter,
		OpMaxPool2D, OpMaxPool2DBackward, OpBiasAdd, OpBiasGrad,
		OpReLU, OpReLUBackward, OpMul, OpDropoutMask, OpSoftmax,
		OpSoftmaxCrossEntropy, OpAdam, OpSGD}
}

// DropoutKeep is the reference for DropoutMask: it reports whether element i
// is kept for the given seed and rate. It hashes (seed, i) with SplitMix64
// and compares the top 24 bits, as a uniform number in [0,1), with rate.
// Device kernels implement the same arithmetic.
func DropoutKeep(seed uint64, i int, rate float32) bool {
	z := seed + uint64(i)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	u := float32(z>>40) * (1.0 / (1 << 24))
	return u >= rate
}

// ConvOutSize returns the output size and leading padding of one spatial
// dimension for the given input size, kernel, stride and padding mode
// ("valid" or "same", as Keras/TensorFlow define them).
func ConvOutSize(in, k, stride int, padding string) (out, padBefore int, err error) {
	if in <= 0 || k <= 0 || stride <= 0 {
		return 0, 0, errorf("output size", "input %d, kernel %d and stride %d must be positive", in, k, stride)
	}
	switch padding {
	case "valid", "":
		if k > in {
			return 0, 0, errorf("output size", "kernel %d is larger than input %d with valid padding", k, in)
		}
		return (in-k)/stride + 1, 0, nil
	case "same":
		out = (in-1)/stride + 1 // ceil(in/stride), without overflow
		total := (out-1)*stride + k - in
		if total < 0 {
			total = 0
		}
		return out, total / 2, nil
	default:
		return 0, 0, errorf("output size", "unknown padding %q (want valid or same)", padding)
	}
}
