//go:build opencl

package opencl

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	_ "github.com/kiln-ml/kiln/backend/cpu" // for the auto fall-back test
	clb "github.com/kiln-ml/kiln/bindings/opencl"
	kcl "github.com/kiln-ml/kiln/kernels/opencl"
)

func TestRegisteredAndProbe(t *testing.T) {
	b, rep, err := backend.Open(Name, backend.Options{CacheDir: sharedCache(t)})
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, Name, rep.Chosen)
	assert.Equal(t, Name, b.Name())
	d := b.Device()
	assert.Equal(t, Name, d.Backend)
	assert.NotEmpty(t, d.Name)
	assert.Positive(t, d.ComputeUnits)
	assert.Positive(t, d.MemoryBytes)
	assert.Equal(t, backend.AllOps(), b.Ops())
	require.NoError(t, b.Sync())

	found := false
	for _, r := range backend.ProbeAll() {
		if r.Name == Name {
			found = true
			require.NoError(t, r.Err)
			require.NotEmpty(t, r.Devices)
			assert.Contains(t, r.Devices, d, "the chosen device is among those probed")
		}
	}
	assert.True(t, found, "ProbeAll lists opencl")
}

func TestSelectDevice(t *testing.T) {
	devs := []clb.Device{
		{Index: 0, Name: "pthread-generic CPU", Type: clb.TypeCPU, Available: true},
		{Index: 1, Name: "Some FPGA", Type: clb.TypeAccelerator, Available: true},
		{Index: 2, Name: "Radeon RX 7900", Type: clb.TypeGPU, Available: false},
		{Index: 3, Name: "GeForce RTX 4090", Type: clb.TypeGPU, Available: true},
	}
	const gib = 1 << 30
	gpus := []clb.Device{ // an integrated GPU with plenty of (host) memory first
		{Index: 0, Name: "Intel Iris Xe", Type: clb.TypeGPU, Available: true, UnifiedMemory: true, ComputeUnits: 96, GlobalMem: 51 * gib},
		{Index: 1, Name: "GeForce RTX 3060", Type: clb.TypeGPU, Available: true, ComputeUnits: 28, GlobalMem: 12 * gib},
		{Index: 2, Name: "GeForce RTX 4090", Type: clb.TypeGPU, Available: true, ComputeUnits: 128, GlobalMem: 24 * gib},
		{Index: 3, Name: "GeForce RTX 4090", Type: clb.TypeGPU, Available: true, ComputeUnits: 128, GlobalMem: 24 * gib},
		{Index: 4, Name: "Radeon Pro W7900", Type: clb.TypeGPU, Available: false, ComputeUnits: 96, GlobalMem: 48 * gib},
	}
	igpu := gpus[0]
	igpu.Index = 1
	twins := []clb.Device{
		{Index: 0, Name: "GeForce GTX 1080", Type: clb.TypeGPU, Available: false},
		{Index: 1, Name: "GeForce GTX 1080", Type: clb.TypeGPU, Available: true},
	}
	tests := []struct {
		name, want string
		devs       []clb.Device
		index      int
		err        string
	}{
		{"best is the available GPU", "", devs, 3, ""},
		{"accelerator before CPU", "", devs[:2], 1, ""},
		{"CPU alone", "", devs[:1], 0, ""},
		{"discrete before integrated", "", gpus[:2], 1, ""},
		{"larger compute units x memory, first of equals", "", gpus, 2, ""},
		{"integrated GPU alone", "", gpus[:1], 0, ""},
		{"integrated GPU before CPU", "", []clb.Device{devs[0], igpu}, 1, ""},
		{"by index", "0", devs, 0, ""},
		{"by index with blanks", " 3 ", devs, 3, ""},
		{"by name substring, any case", "rtx", devs, 3, ""},
		{"index out of range", "7", devs, 0, "no OpenCL device with index 7"},
		{"negative index", "-1", devs, 0, "no OpenCL device with index -1"},
		{"unknown name", "tpu", devs, 0, `no OpenCL device name contains "tpu"`},
		{"none available", "", devs[2:3], 0, "no OpenCL device is available"},
		{"by index, not available", "2", devs, 0, "OpenCL device [2] Radeon RX 7900 (GPU, "},
		{"by name, not available", "radeon", devs, 0, "OpenCL device [2] Radeon RX 7900 (GPU, "},
		{"by name, the first available match", "geforce", twins, 1, ""},
		{"by name, no match available", "geforce", twins[:1], 0, "OpenCL device [0] GeForce GTX 1080 (GPU, "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := selectDevice(tc.devs, tc.want)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				if strings.HasPrefix(tc.err, "OpenCL device [") {
					assert.ErrorContains(t, err, "is not available")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.index, d.Index)
		})
	}
}

func TestDeviceOption(t *testing.T) {
	devs, err := clb.Devices()
	require.NoError(t, err)
	last := devs[len(devs)-1]
	for _, tc := range []struct{ name, opt, env string }{
		{"option index", "-index-", ""},
		{"env name", "", "-name-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := func(s string) string {
				return strings.NewReplacer("-index-", last.String()[1:2], "-name-", last.Name).Replace(s)
			}
			t.Setenv(EnvDevice, sub(tc.env))
			b, err := Open(backend.Options{Device: sub(tc.opt), CacheDir: sharedCache(t)})
			require.NoError(t, err)
			assert.Equal(t, last.Name, b.Device().Name)
			require.NoError(t, b.Close())
		})
	}
	t.Setenv(EnvDevice, "")
	_, err = Open(backend.Options{Device: "no-such-device", CacheDir: sharedCache(t)})
	require.Error(t, err)
	assert.True(t, errors.Is(err, backend.ErrUnavailable))
	assert.Contains(t, err.Error(), "opencl: Open: ")
	assert.Contains(t, err.Error(), "no-such-device")
}

func TestBucketBytes(t *testing.T) {
	tests := []struct {
		n    int
		want int64
	}{
		{0, 256}, {1, 256}, {64, 256}, {65, 512}, {1000, 4096}, {1024, 4096},
		{1025, 5120}, {1280, 5120}, {1281, 6144}, {4096, 16384}, {4097, 20480},
	}
	for _, tc := range tests {
		got := bucketBytes(tc.n, 0)
		assert.Equal(t, tc.want, got, "n=%d", tc.n)
		assert.GreaterOrEqual(t, got, int64(tc.n)*4)
		limit := 1.25 * 4 * float64(tc.n) // quarter steps above 4 KiB
		if tc.n*4 <= 4096 {
			limit = math.Max(256, 2*4*float64(tc.n)) // powers of two below
		}
		assert.LessOrEqual(t, float64(got), limit, "n=%d", tc.n)
	}
}

// TestBucketBytesCapped: rounding up never passes the device's largest
// allocation (which need not be a power of two); the exact size is used
// then. maxElems() lets n elements through whenever 4n ≤ maxAlloc.
func TestBucketBytesCapped(t *testing.T) {
	const intel = 4294959104 // Intel's CL_DEVICE_MAX_MEM_ALLOC_SIZE
	tests := []struct {
		name     string
		n        int
		maxAlloc int64
		want     int64
	}{
		{"Intel, largest buffer", intel / 4, intel, intel},
		{"Intel, rounding would pass it", 939524097, intel, 3758096388},
		{"Intel, power of two below it", 1 << 29, intel, 1 << 31},
		{"Intel, small buffers still rounded", 1000, intel, 4096},
		{"3 GiB + 4 KiB, just above a step", 3<<28 + 1, 3<<30 + 4096, 3<<30 + 4},
		{"3 GiB + 4 KiB, on a step", 3 << 28, 3<<30 + 4096, 3 << 30},
		{"10^9 bytes, rounding would pass it", 250_000_000, 1_000_000_000, 1_000_000_000},
		{"10^9 bytes, rounding stays below", 200_000_000, 1_000_000_000, 805306368},
		{"unknown limit: uncapped", intel / 4, 0, 1 << 32},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &Backend{dev: clb.Device{MaxAlloc: tc.maxAlloc}}
			require.LessOrEqual(t, int64(tc.n), b.maxElems(), "Alloc lets n through")
			got := bucketBytes(tc.n, tc.maxAlloc)
			assert.Equal(t, tc.want, got)
			assert.GreaterOrEqual(t, got, int64(tc.n)*4)
			if tc.maxAlloc > 0 {
				assert.LessOrEqual(t, got, tc.maxAlloc)
			}
		})
	}
}

// TestConvIm2colTooLarge: a convolution whose one-image im2col matrix
// passes the largest buffer (or int32) is refused with a shape error naming
// the op and the ConvParams, before any buffer is looked at; one that fits,
// or needs no im2col, goes on to the buffer checks.
func TestConvIm2colTooLarge(t *testing.T) {
	conv := func(n, hw, c, k, pad int) backend.ConvParams {
		return backend.ConvParams{N: n, H: hw, W: hw, C: c, KH: k, KW: k, F: 8, StrideH: 1, StrideW: 1,
			PadTop: pad, PadLeft: pad, OutH: hw + 2*pad - k + 1, OutW: hw + 2*pad - k + 1}
	}
	ops := []struct {
		name string
		run  func(b *Backend, p backend.ConvParams) error
	}{
		{backend.OpConv2D, func(b *Backend, p backend.ConvParams) error { return b.Conv2D(p, nil, nil, nil) }},
		{backend.OpConv2DBackwardData, func(b *Backend, p backend.ConvParams) error { return b.Conv2DBackwardData(p, nil, nil, nil) }},
		{backend.OpConv2DBackwardFilter, func(b *Backend, p backend.ConvParams) error { return b.Conv2DBackwardFilter(p, nil, nil, nil) }},
	}
	tests := []struct {
		name     string
		maxAlloc int64
		p        backend.ConvParams
		size     string // "" when accepted
	}{
		{"past int32 on a 40 GiB allocation", 40 << 30, conv(1, 512, 1024, 3, 1), "512·512·3·3·1024 = 2415919104 elements"},
		{"past the device's max allocation", 256 << 20, conv(1, 256, 128, 3, 1), "256·256·3·3·128 = 75497472 elements"},
		{"one image above colLimit fits", 256 << 20, conv(2, 128, 128, 3, 1), ""},
		{"1x1 needs no im2col", 40 << 30, conv(1, 512, 1024, 1, 0), ""},
	}
	for _, tc := range tests {
		for _, op := range ops {
			t.Run(tc.name+"/"+op.name, func(t *testing.T) {
				b := &Backend{dev: clb.Device{Name: "Big GPU", MaxAlloc: tc.maxAlloc}}
				err := op.run(b, tc.p)
				require.Error(t, err)
				assert.True(t, errors.Is(err, backend.ErrShape))
				if tc.size == "" {
					assert.Contains(t, err.Error(), "nil buffer", "accepted: the buffer checks come next")
					if !direct(tc.p) {
						per := int64(tc.p.OutH * tc.p.OutW * tc.p.KH * tc.p.KW * tc.p.C)
						assert.LessOrEqual(t, int64(b.chunk(tc.p))*per, b.maxElems(), "the workspace fits")
					}
					return
				}
				for _, want := range []string{"opencl: " + op.name + ": the im2col matrix of one image", tc.size,
					"exceeds the largest buffer this backend allows on Big GPU", fmt.Sprintf("%+v", tc.p)} {
					assert.Contains(t, err.Error(), want)
				}
			})
		}
	}
}

// TestCrossEntropyScratchLimit: the loss scratch holds 2·rows elements
// indexed with int32; more rows than fit are a shape error before any
// buffer is looked at.
func TestCrossEntropyScratchLimit(t *testing.T) {
	tests := []struct {
		name     string
		maxAlloc int64
		rows     int
		refused  bool
	}{
		{"fits 100 elements", 400, 50, false},
		{"one row too many for 100 elements", 400, 51, true},
		{"Intel, largest", 4294959104, 536869888, false},
		{"Intel, one row too many", 4294959104, 536869889, true},
		{"int32, largest", 40 << 30, (math.MaxInt32 - 1) / 2, false},
		{"int32, one row too many", 40 << 30, math.MaxInt32/2 + 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &Backend{dev: clb.Device{Name: "Some GPU", MaxAlloc: tc.maxAlloc}}
			err := b.SoftmaxCrossEntropy(nil, nil, tc.rows, 1, nil, nil)
			require.Error(t, err)
			assert.True(t, errors.Is(err, backend.ErrShape))
			if !tc.refused {
				assert.Contains(t, err.Error(), "nil buffer")
				return
			}
			assert.Contains(t, err.Error(), fmt.Sprintf("opencl: SoftmaxCrossEntropy: rows %d (cols 1) need a loss scratch of 2·rows = %d elements", tc.rows, 2*tc.rows))
			assert.Contains(t, err.Error(), "largest buffer this backend allows on Some GPU")
		})
	}
}

// faultQueue passes Alloc's device calls through to the context, except
// that the i-th call of a kind returns fail[kind][i] when that is not nil.
type faultQueue struct {
	allocQueue
	fail  map[string][]error
	calls []string
}

func (q *faultQueue) next(call string) error {
	q.calls = append(q.calls, call)
	errs := q.fail[call]
	if len(errs) == 0 {
		return nil
	}
	q.fail[call] = errs[1:]
	return errs[0]
}

func (q *faultQueue) NewBuffer(size int64) (*clb.Buffer, error) {
	if err := q.next("NewBuffer"); err != nil {
		return nil, err
	}
	return q.allocQueue.NewBuffer(size)
}

func (q *faultQueue) Fill(m *clb.Buffer, offset, n int, v float32) error {
	if err := q.next("Fill"); err != nil {
		return err
	}
	return q.allocQueue.Fill(m, offset, n, v)
}

func (q *faultQueue) Finish() error {
	if err := q.next("Finish"); err != nil {
		return err
	}
	return q.allocQueue.Finish()
}

// TestAllocDeviceErrors: a failure of earlier queued work is reported as
// such before a new buffer is made (not as this allocation's out of
// memory), and running out of memory while creating, filling or first
// touching a new buffer gives the free list back and retries once.
func TestAllocDeviceErrors(t *testing.T) {
	b := open(t)
	const n = 1000
	oom := &clb.Error{Call: "clFinish", Status: -4}       // CL_MEM_OBJECT_ALLOCATION_FAILURE
	resources := &clb.Error{Call: "clFinish", Status: -5} // CL_OUT_OF_RESOURCES (a bad kernel, say)
	create := &clb.Error{Call: "clCreateBuffer", Status: -4}
	fill := &clb.Error{Call: "clEnqueueFillBuffer", Status: -4}
	touch := []string{"NewBuffer", "Fill", "Finish"}
	tests := []struct {
		name    string
		fail    map[string][]error
		calls   [][]string // Alloc's device calls, in order
		drained bool       // the free list was given back
		err     []string   // nil: Alloc succeeds
	}{
		{"earlier work failed", map[string][]error{"Finish": {resources}}, [][]string{{"Finish"}}, false,
			[]string{"opencl: Alloc: work queued by earlier ops failed (reported before allocating 1000 elements): clFinish: CL_OUT_OF_RESOURCES"}},
		{"earlier work ran out of memory", map[string][]error{"Finish": {oom}}, [][]string{{"Finish"}}, false,
			[]string{"work queued by earlier ops failed (reported before allocating 1000 elements): clFinish: CL_MEM_OBJECT_ALLOCATION_FAILURE"}},
		{"no failure", nil, [][]string{{"Finish"}, touch}, false, nil},
		{"create out of memory, retried", map[string][]error{"NewBuffer": {create}},
			[][]string{{"Finish", "NewBuffer"}, touch}, true, nil},
		{"fill out of memory, retried", map[string][]error{"Fill": {fill}},
			[][]string{{"Finish", "NewBuffer", "Fill"}, touch}, true, nil},
		{"first touch out of memory, retried", map[string][]error{"Finish": {nil, oom}},
			[][]string{{"Finish"}, touch, touch}, true, nil},
		{"first touch out of memory twice", map[string][]error{"Finish": {nil, oom, oom}},
			[][]string{{"Finish"}, touch, touch}, true,
			[]string{"opencl: Alloc: out of device memory allocating 1000 elements (4000 bytes)", "1 live buffers holding 10 elements"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b.mu.Lock()
			require.NoError(t, b.pool.drain())
			b.mu.Unlock()
			keep, err := b.Alloc(10)
			require.NoError(t, err)
			defer keep.Free()
			pooled, err := b.Alloc(20) // another bucket: only a drain releases it
			require.NoError(t, err)
			pooled.Free()
			q := &faultQueue{allocQueue: b.ctx, fail: tc.fail}
			b.aq = q
			defer func() { b.aq = b.ctx }()

			x, err := b.Alloc(n)
			assert.Equal(t, slices.Concat(tc.calls...), q.calls)
			b.mu.Lock()
			assert.Equal(t, tc.drained, b.pool.bytes == 0, "the free list is given back when retrying")
			b.mu.Unlock()
			if tc.err != nil {
				require.Error(t, err)
				for _, want := range tc.err {
					assert.Contains(t, err.Error(), want)
				}
				if strings.Contains(err.Error(), "earlier ops") {
					assert.NotContains(t, err.Error(), "out of device memory allocating")
				}
				assert.Equal(t, 1, b.Stats().LiveBuffers)
				return
			}
			require.NoError(t, err)
			defer x.Free()
			got := make([]float32, n)
			require.NoError(t, b.Download(got, x))
			assert.Equal(t, make([]float32, n), got, "zero-filled")
		})
	}
}

// TestCloseRacesFree: Free from another goroutine while the owner fails
// an allocation and closes the backend. Run with -race: Close sets closed,
// and allocError reads the live counters, under the mutex Free takes.
func TestCloseRacesFree(t *testing.T) {
	b := open(t)
	var bufs []backend.Buffer
	for i := 0; i < 64; i++ {
		x, err := b.Alloc(16)
		require.NoError(t, err)
		bufs = append(bufs, x)
	}
	oom := &clb.Error{Call: "clCreateBuffer", Status: -4}
	b.aq = &faultQueue{allocQueue: b.ctx, fail: map[string][]error{"NewBuffer": {oom, oom}}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, x := range bufs {
			x.Free()
		}
	}()
	_, err := b.Alloc(1 << 20)
	assert.True(t, errors.Is(err, clb.ErrOutOfMemory))
	require.NoError(t, b.Close())
	wg.Wait()
	assert.Equal(t, backend.Stats{Allocs: 64}, b.Stats())
	assert.Zero(t, b.pool.bytes, "nothing is pooled after Close")
	for _, x := range bufs {
		assert.Zero(t, x.Len())
	}
}

// TestMaxPoolBackwardBadArgmax: an argmax entry that is not a window
// offset (out of range, NaN, or not an integer) routes nothing, as on the
// CPU backend.
func TestMaxPoolBackwardBadArgmax(t *testing.T) {
	b := open(t)
	cpuB, _, err := backend.Open("cpu", backend.Options{})
	require.NoError(t, err)
	defer cpuB.Close()
	p := backend.PoolParams{N: 1, H: 2, W: 2, C: 1, KH: 2, KW: 2, StrideH: 2, StrideW: 2, OutH: 1, OutW: 1}
	nan := float32(math.NaN())
	tests := []struct {
		arg  float32
		want []float32
	}{
		{0, []float32{5, 0, 0, 0}},
		{3, []float32{0, 0, 0, 5}},
		{1.5, []float32{0, 0, 0, 0}},
		{0.25, []float32{0, 0, 0, 0}},
		{3.5, []float32{0, 0, 0, 0}},
		{4, []float32{0, 0, 0, 0}},
		{-0.5, []float32{0, 0, 0, 0}},
		{nan, []float32{0, 0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.arg), func(t *testing.T) {
			for _, be := range []backend.Backend{b, cpuB} {
				dy, arg, dx := mustAlloc(t, be, 1), mustAlloc(t, be, 1), mustAlloc(t, be, 4)
				require.NoError(t, be.Upload(dy, []float32{5}))
				require.NoError(t, be.Upload(arg, []float32{tc.arg}))
				require.NoError(t, be.Fill(dx, 4, 7))
				require.NoError(t, be.MaxPool2DBackward(p, dy, arg, dx))
				got := make([]float32, 4)
				require.NoError(t, be.Download(got, dx))
				assert.Equal(t, tc.want, got, be.Name())
			}
		})
	}
}

// mustAlloc allocates n elements on be, freed at the end of the test.
func mustAlloc(t *testing.T, be backend.Backend, n int) backend.Buffer {
	t.Helper()
	x, err := be.Alloc(n)
	require.NoError(t, err)
	t.Cleanup(x.Free)
	return x
}

func TestBuffersAndErrors(t *testing.T) {
	b := open(t)
	x, err := b.Alloc(1000)
	require.NoError(t, err)
	y, err := b.Alloc(10)
	require.NoError(t, err)
	assert.Equal(t, backend.Stats{LiveBuffers: 2, LiveElements: 1010, Allocs: 2}, b.Stats())
	require.NoError(t, b.Fill(x, 1000, 3))
	x.Free()
	x.Free()
	assert.Equal(t, backend.Stats{LiveBuffers: 1, LiveElements: 10, Allocs: 2}, b.Stats())
	assert.ErrorContains(t, b.Fill(x, 1, 0), "opencl: Fill: dst: buffer was freed") // freed buffers are rejected
	// The freed memory is reused, zero-filled.
	z, err := b.Alloc(999)
	require.NoError(t, err)
	got := make([]float32, 999)
	require.NoError(t, b.Download(got, z))
	assert.Equal(t, make([]float32, 999), got)
	z.Free()

	_, err = b.Alloc(-1)
	assert.True(t, errors.Is(err, backend.ErrShape))
	_, err = b.Alloc(math.MaxInt32 + 1)
	require.Error(t, err)
	assert.True(t, errors.Is(err, backend.ErrShape))
	assert.Contains(t, err.Error(), "opencl: Alloc: ")
	assert.Contains(t, err.Error(), "exceed the largest buffer")

	// Out-of-memory errors name the backend, the op and the sizes.
	oom := b.allocError(1<<28, &clb.Error{Call: "clCreateBuffer", Status: -4})
	assert.Contains(t, oom.Error(), "opencl: Alloc: out of device memory allocating 268435456 elements (1073741824 bytes)")
	assert.Contains(t, oom.Error(), "CL_MEM_OBJECT_ALLOCATION_FAILURE")
	assert.True(t, errors.Is(oom, clb.ErrOutOfMemory))

	// Buffers of another backend are rejected.
	cpuB, _, err := backend.Open("cpu", backend.Options{})
	require.NoError(t, err)
	defer cpuB.Close()
	foreign, err := cpuB.Alloc(10)
	require.NoError(t, err)
	defer foreign.Free()
	err = b.ReLU(foreign, y, 10)
	assert.True(t, errors.Is(err, backend.ErrShape))
	assert.Contains(t, err.Error(), "does not belong to the opencl backend")
	other := open(t)
	ob, err := other.Alloc(10)
	require.NoError(t, err)
	assert.ErrorContains(t, b.ReLU(ob, y, 10), "belongs to another opencl backend")
	ob.Free()

	// Close releases what is still live; ops fail afterwards.
	require.NoError(t, b.Close())
	assert.Zero(t, y.Len())
	assert.ErrorContains(t, b.Sync(), "closed")
	_, err = b.Alloc(1)
	assert.ErrorContains(t, err, "opencl: Alloc: ")
	require.NoError(t, b.Close())
}

func TestBadLabelsRejectedBeforeLaunch(t *testing.T) {
	b := open(t)
	logits, _ := b.Alloc(6)
	grad, _ := b.Alloc(6)
	stats, _ := b.Alloc(2)
	labels, _ := b.Alloc(2)
	defer func() { logits.Free(); grad.Free(); stats.Free(); labels.Free() }()
	require.NoError(t, b.Upload(logits, []float32{1, 2, 3, 4, 5, 6}))
	require.NoError(t, b.Fill(grad, 6, 7))
	for _, bad := range []float32{3, -1, 1.5, float32(math.NaN()), float32(math.Inf(1))} {
		require.NoError(t, b.Upload(labels, []float32{0, bad}))
		err := b.SoftmaxCrossEntropy(logits, labels, 2, 3, grad, stats)
		require.Error(t, err)
		assert.True(t, errors.Is(err, backend.ErrShape))
		assert.Contains(t, err.Error(), "opencl: SoftmaxCrossEntropy: ")
		assert.Contains(t, err.Error(), "row 1")
	}
	g := make([]float32, 6)
	require.NoError(t, b.Download(g, grad))
	assert.Equal(t, []float32{7, 7, 7, 7, 7, 7}, g, "nothing was launched")
	require.NoError(t, b.Upload(labels, []float32{2, 0}))
	require.NoError(t, b.SoftmaxCrossEntropy(logits, labels, 2, 3, grad, stats))
	st := make([]float32, 2)
	require.NoError(t, b.Download(st, stats))
	lse := math.Log(math.Exp(-2) + math.Exp(-1) + 1)
	assert.InDelta(t, lse+lse+2, st[0], 1e-5)
	assert.Equal(t, float32(1), st[1])
}

func TestProgramCache(t *testing.T) {
	dir := t.TempDir()
	openLoads := func() []ProgramLoad {
		t.Helper()
		b, err := Open(backend.Options{CacheDir: dir})
		require.NoError(t, err)
		loads := b.Programs()
		require.NoError(t, b.Close())
		require.Len(t, loads, len(kcl.Programs()))
		return loads
	}
	for _, ld := range openLoads() {
		assert.False(t, ld.FromCache, "%s: first Open builds from source", ld.Program)
		assert.Equal(t, "not cached yet; built from source", ld.Note)
		assert.FileExists(t, ld.CacheFile)
		assert.Equal(t, dir, filepath.Dir(ld.CacheFile))
	}
	loads := openLoads()
	for _, ld := range loads {
		assert.True(t, ld.FromCache, "%s: second Open hits the cache (%s)", ld.Program, ld.Note)
	}
	tmp, err := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	require.NoError(t, err)
	assert.Empty(t, tmp, "no temporary files are left behind")

	// A corrupted file (a flipped byte) fails its checksum and is rebuilt.
	victim := loads[0].CacheFile
	data, err := os.ReadFile(victim)
	require.NoError(t, err)
	data[len(data)/2] ^= 0xFF
	require.NoError(t, os.WriteFile(victim, data, 0o644))
	// A truncated file, too.
	victim2 := loads[1].CacheFile
	require.NoError(t, os.WriteFile(victim2, []byte("KILNCLB1short"), 0o644))
	// A file with a valid checksum whose binary the driver rejects.
	victim3 := loads[2].CacheFile
	require.NoError(t, writeCache(victim3, []byte("this is not a device binary")))

	after := openLoads()
	assert.False(t, after[0].FromCache)
	assert.Contains(t, after[0].Note, "checksum mismatch")
	assert.False(t, after[1].FromCache)
	assert.Contains(t, after[1].Note, "cache file unusable")
	assert.False(t, after[2].FromCache)
	assert.Contains(t, after[2].Note, "rejected by the driver")
	for _, ld := range after[3:] {
		assert.True(t, ld.FromCache, ld.Program)
	}
	// Each was rewritten: the next Open hits the cache everywhere.
	for _, ld := range openLoads() {
		assert.True(t, ld.FromCache, "%s after rebuild (%s)", ld.Program, ld.Note)
	}
}

func TestCacheKey(t *testing.T) {
	d := clb.Device{Name: "dev", Vendor: "v", Driver: "1.0", Version: "OpenCL 3.0", Platform: clb.Platform{Name: "p", Version: "3.0"}}
	base := cacheKey("src", "-O", d)
	assert.Len(t, base, 64)
	assert.Equal(t, base, cacheKey("src", "-O", d), "deterministic")
	newer := d
	newer.Driver = "1.1"
	otherPlat := d
	otherPlat.Platform.Version = "3.1"
	for name, k := range map[string]string{
		"source":   cacheKey("src2", "-O", d),
		"options":  cacheKey("src", "-O2", d),
		"driver":   cacheKey("src", "-O", newer),
		"platform": cacheKey("src", "-O", otherPlat),
		"boundary": cacheKey("sr", "c-O", d),
	} {
		assert.NotEqual(t, base, k, name)
	}
}

func TestKernelBuildFailure(t *testing.T) {
	progs := kcl.Programs()
	for i := range progs {
		if progs[i].Name == "pool.cl" {
			progs[i].Source += "\n__kernel void broken(__global float *x) { x[0] = undeclared_identifier_kiln; }\n"
		}
	}
	_, err := openWith(backend.Options{CacheDir: t.TempDir()}, config{programs: progs})
	require.Error(t, err)
	msg := err.Error()
	assert.True(t, errors.Is(err, backend.ErrUnavailable), "a build failure makes the backend unavailable (auto falls back)")
	var be *clb.BuildError
	require.True(t, errors.As(err, &be))
	assert.Equal(t, "pool.cl", be.Program)
	for _, want := range []string{"opencl: Open: ", "kernel program pool.cl", "MaxPool2D", "MaxPool2DBackward",
		"CL_BUILD_PROGRAM_FAILURE", "build log:", "undeclared_identifier_kiln"} {
		assert.Contains(t, msg, want)
	}
}

// TestNoPlatform runs a child test process whose ICD loader finds no driver
// (OCL_ICD_VENDORS points at an empty folder): Open must fail with
// ErrUnavailable saying what to install, and auto must fall back to cpu.
func TestNoPlatform(t *testing.T) {
	if os.Getenv("KILN_OPENCL_CHILD") == "1" {
		_, err := Open(backend.Options{CacheDir: t.TempDir()})
		require.Error(t, err)
		assert.True(t, errors.Is(err, backend.ErrUnavailable))
		assert.True(t, errors.Is(err, clb.ErrNoPlatform))
		assert.Contains(t, err.Error(), "opencl: Open: no OpenCL platform found; install an OpenCL driver")
		assert.Contains(t, err.Error(), "pocl-opencl-icd")
		_, err = Probe()
		assert.True(t, errors.Is(err, backend.ErrUnavailable))
		t.Setenv(backend.EnvBackend, "")
		b, rep, err := backend.Open("auto", backend.Options{})
		require.NoError(t, err)
		defer b.Close()
		assert.Equal(t, "cpu", rep.Chosen)
		assert.Contains(t, rep.String(), "backend opencl: skipped: opencl: Open: no OpenCL platform found")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoPlatform$", "-test.count=1")
	cmd.Env = append(os.Environ(), "KILN_OPENCL_CHILD=1", "OCL_ICD_VENDORS="+t.TempDir())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child test failed:\n%s", out)
	assert.Contains(t, string(out), "PASS")
}

// TestAutoSkipsCPUDevice checks that --backend auto does not pick an OpenCL
// driver running on the CPU (PoCL here) over the native cpu backend, says
// why, and that naming the backend or the device still opens it.
func TestAutoSkipsCPUDevice(t *testing.T) {
	devs, err := clb.Devices()
	require.NoError(t, err)
	best, err := selectDevice(devs, "")
	require.NoError(t, err)
	if best.Type != clb.TypeCPU {
		t.Skipf("the best OpenCL device here is %s (%s), not a CPU: auto keeps it", best.Name, best.Type)
	}
	t.Setenv(backend.EnvBackend, "")
	t.Setenv(EnvDevice, "")
	_, err = Open(backend.Options{CacheDir: sharedCache(t), Auto: true})
	require.Error(t, err)
	assert.True(t, errors.Is(err, backend.ErrUnavailable))
	assert.Contains(t, err.Error(), "auto skips OpenCL here: its best device, "+best.Name+", is a CPU")

	b, rep, err := backend.Open("auto", backend.Options{CacheDir: sharedCache(t)})
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, "cpu", rep.Chosen)
	assert.Contains(t, rep.String(), "backend opencl: skipped: opencl: Open: auto skips OpenCL here")

	named, err := Open(backend.Options{CacheDir: sharedCache(t), Auto: true, Device: "0"})
	require.NoError(t, err, "an explicit device is honoured under auto")
	require.NoError(t, named.Close())
}

// TestConvIndicesPastInt32: the kernels index rows and columns with 32-bit
// ints, padding and strides included; a shape whose padded extent or last
// window passes 2^31-1 is a shape error before any buffer is looked at (a
// padding near 2^31 wrapped col2im's index and dropped a gradient).
func TestConvIndicesPastInt32(t *testing.T) {
	base := backend.ConvParams{N: 1, H: 4, W: 1, C: 1, KH: 1, KW: 1, F: 1, StrideH: 1, StrideW: 1, OutH: 4, OutW: 1}
	tests := []struct {
		name string
		edit func(p *backend.ConvParams)
	}{
		{"padding near 2^31", func(p *backend.ConvParams) { p.StrideH, p.PadTop, p.OutH = 1<<30+1, 1<<31-1, 3 }},
		{"left padding near 2^31", func(p *backend.ConvParams) { p.PadLeft, p.OutW = 1<<31-1, 2 }},
		{"last window past 2^31", func(p *backend.ConvParams) { p.StrideH, p.PadTop, p.OutH = 1<<30, 1<<31-3, 3 }},
	}
	for _, tc := range tests {
		p := base
		tc.edit(&p)
		require.NoError(t, p.Validate("test", "Conv2D"), "%s: valid for the contract", tc.name)
		b := &Backend{dev: clb.Device{Name: "Big GPU", MaxAlloc: 40 << 30}}
		for _, run := range []func() error{
			func() error { return b.Conv2D(p, nil, nil, nil) },
			func() error { return b.Conv2DBackwardData(p, nil, nil, nil) },
			func() error { return b.Conv2DBackwardFilter(p, nil, nil, nil) },
		} {
			err := run()
			require.Error(t, err, tc.name)
			assert.ErrorIs(t, err, backend.ErrShape)
			assert.Contains(t, err.Error(), "kernels index with 32-bit ints", tc.name)
		}
	}
	require.ErrorContains(t, (&Backend{dev: clb.Device{Name: "Big GPU", MaxAlloc: 40 << 30}}).Conv2D(base, nil, nil, nil), "nil buffer", "an ordinary shape passes to the buffer checks")
}
