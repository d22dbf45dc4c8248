//go:build cudaemu && linux && !cuda

package cuda

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	bind "github.com/kiln-ml/kiln/bindings/cuda"
	kern "github.com/kiln-ml/kiln/kernels/cuda"
)

// TestFlatBlocksIndexFits: a grid-stride kernel's last step (index n-1 plus
// one stride of blocks·256 threads) must not pass MaxInt32 for any size the
// backend accepts, or the kernel's int index wraps negative, passes its
// i < n check and faults. With 32 blocks an SM and no other bound, a
// buffer of 2^31-1 elements overflowed on every device.
func TestFlatBlocksIndexFits(t *testing.T) {
	for _, sms := range []int{0, 1, 2, 132, 1 << 20} {
		for _, n := range []int{1, 255, 256, 257, 1 << 20, 1 << 30, maxElems - 1, maxElems} {
			blocks := flatBlocks(n, sms)
			require.GreaterOrEqual(t, blocks, 1, "n=%d sms=%d", n, sms)
			require.LessOrEqual(t, blocks, maxGridX, "n=%d sms=%d", n, sms)
			require.GreaterOrEqual(t, blocks*flatThreads, min(n, flatThreads), "n=%d sms=%d", n, sms)
			last := int64(n-1) + int64(blocks)*flatThreads
			require.LessOrEqual(t, last, int64(math.MaxInt32), "n=%d sms=%d: blocks %d", n, sms, blocks)
		}
	}
}

// TestSizeLimitLeavesIndexSlack: the largest size the backend accepts
// leaves room for a tile or grid stride past it, and anything larger is a
// shape error before any memory is allocated.
func TestSizeLimitLeavesIndexSlack(t *testing.T) {
	require.LessOrEqual(t, int64(maxElems)+indexSlack, int64(math.MaxInt32))
	b, err := OpenEmulated()
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	_, err = b.Alloc(math.MaxInt32 - 100)
	require.Error(t, err)
	assert.True(t, errors.Is(err, backend.ErrShape), "%v", err)
}

// faultyDevice is the emulator with driver errors injected.
type faultyDevice struct {
	device
	failMemset bool
	closeErr   error // what the emulator's Close reported
	closed     bool
}

var errInjected = errors.New("injected driver error")

func (d *faultyDevice) Memset32(dst bind.DevicePtr, v uint32, n int64) error {
	if d.failMemset {
		return errInjected
	}
	return d.device.Memset32(dst, v, n)
}

func (d *faultyDevice) Close() error {
	d.closed = true
	d.closeErr = d.device.Close()
	return d.closeErr
}

func newFaulty() *faultyDevice {
	return &faultyDevice{device: &emuDevice{e: kern.NewEmulator()}}
}

// TestAllocZeroingErrorFreesBlock: when zeroing a new block fails, Alloc
// returns the error and releases the block (it leaked: the emulator then
// reported an allocation still live at Close), with the pool and without.
func TestAllocZeroingErrorFreesBlock(t *testing.T) {
	for _, exact := range []bool{false, true} {
		dev := newFaulty()
		b, err := newBackend(dev, backend.DeviceInfo{Backend: Name, ComputeUnits: emuSMs})
		require.NoError(t, err)
		b.exact = exact
		dev.failMemset = true
		_, err = b.Alloc(300)
		require.Error(t, err)
		assert.True(t, errors.Is(err, errInjected), "%v", err)
		assert.Contains(t, err.Error(), "cuda: Alloc")
		assert.Zero(t, b.Stats().LiveBuffers)
		dev.failMemset = false
		buf, err := b.Alloc(300) // the backend still works
		require.NoError(t, err)
		buf.Free()
		require.NoError(t, b.Close(), "exact=%v", exact)
	}
}

// TestOpenErrorFreesFlag: when Open fails after allocating the bad-label
// flag, the flag is freed before the device is closed, and the device's
// Close error is not dropped.
func TestOpenErrorFreesFlag(t *testing.T) {
	dev := newFaulty()
	dev.failMemset = true
	_, err := newBackend(dev, backend.DeviceInfo{Backend: Name})
	require.Error(t, err)
	assert.True(t, errors.Is(err, errInjected), "%v", err)
	require.True(t, dev.closed, "device not closed")
	require.NoError(t, dev.closeErr, "the flag was not freed before Close")
}

// TestParamsBeyondInt32: strides and padding are passed to the kernels as
// 32-bit ints. Values past int32 were truncated at launch, so the kernels
// silently computed another convolution or pooling (and a stride truncated
// to a negative int read before the input). They are shape errors: Validate
// now refuses them too, and the backend's own check (which also bounds the
// rows and columns reached) stays as a second guard.
func TestParamsBeyondInt32(t *testing.T) {
	b, err := OpenEmulated()
	require.NoError(t, err)
	defer func() {
		require.Zero(t, b.Stats().LiveBuffers, "leaked buffers")
		require.NoError(t, b.Close())
	}()
	bufs := make([]backend.Buffer, 4)
	for i := range bufs {
		bufs[i], err = b.Alloc(64)
		require.NoError(t, err)
		defer bufs[i].Free()
	}
	x, w, y, a := bufs[0], bufs[1], bufs[2], bufs[3]

	// Padding 2^32+1 was truncated to 1: every output
	// row reads padding (zeros on the CPU backend), but the kernel shifted x.
	cp := backend.ConvParams{N: 1, H: 4, W: 4, C: 1, KH: 1, KW: 1, F: 1, StrideH: 1, StrideW: 1,
		PadTop: 1<<32 + 1, OutH: 4, OutW: 4}
	for name, f := range map[string]func() error{
		"Conv2D":               func() error { return b.Conv2D(cp, x, w, y) },
		"Conv2DBackwardData":   func() error { return b.Conv2DBackwardData(cp, y, w, x) },
		"Conv2DBackwardFilter": func() error { return b.Conv2DBackwardFilter(cp, x, y, w) },
	} {
		err := f()
		require.Error(t, err, name)
		assert.True(t, errors.Is(err, backend.ErrShape), "%s: %v", name, err)
		assert.Regexp(t, "32-bit|at most 2147483647", err.Error(), name)
	}

	// Stride 2^62 with 3 output rows: 2·2^62 overflows, so Validate passed,
	// and the stride was truncated to 0 (every window at row 0).
	pp := backend.PoolParams{N: 1, H: 4, W: 4, C: 1, KH: 1, KW: 1, StrideH: 1 << 62, StrideW: 1, OutH: 3, OutW: 4}
	for name, f := range map[string]func() error{
		"MaxPool2D":         func() error { return b.MaxPool2D(pp, x, y, a) },
		"MaxPool2DBackward": func() error { return b.MaxPool2DBackward(pp, y, a, x) },
	} {
		err := f()
		require.Error(t, err, name)
		assert.True(t, errors.Is(err, backend.ErrShape), "%s: %v", name, err)
		assert.Regexp(t, "32-bit|at most 2147483647", err.Error(), name)
	}
	require.NoError(t, b.Sync())
}
