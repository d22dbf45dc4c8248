package cpu_test

import (
	"errors"
	"math"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/cpu"
	kern "github.com/kiln-ml/kiln/kernels/cpu"
)

func open(t *testing.T) *cpu.Backend {
	t.Helper()
	b := cpu.New()
	t.Cleanup(func() {
		assert.Zero(t, b.Stats().LiveBuffers, "leaked buffers")
		assert.Zero(t, b.Stats().LiveElements, "leaked elements")
		require.NoError(t, b.Close())
	})
	return b
}

func alloc(t *testing.T, b backend.Backend, vals ...float32) backend.Buffer {
	t.Helper()
	buf, err := b.Alloc(len(vals))
	require.NoError(t, err)
	require.NoError(t, b.Upload(buf, vals))
	return buf
}

func download(t *testing.T, b backend.Backend, buf backend.Buffer, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	require.NoError(t, b.Download(out, buf))
	return out
}

func requireShape(t *testing.T, err error, op string) {
	t.Helper()
	require.Error(t, err)
	assert.True(t, errors.Is(err, backend.ErrShape), "%v is not a shape error", err)
	assert.Contains(t, err.Error(), "cpu: "+op+": ")
}

func TestRegistered(t *testing.T) {
	b, rep, err := backend.Open("cpu", backend.Options{})
	require.NoError(t, err)
	assert.Equal(t, "cpu", rep.Chosen)
	assert.Equal(t, "cpu", b.Name())
	d := b.Device()
	assert.Equal(t, "cpu", d.Backend)
	assert.NotEmpty(t, d.Name)
	assert.Positive(t, d.ComputeUnits)
	assert.Equal(t, kern.DefaultKernel()+" kernels", d.Features, "the kernels that run, for the user")
	assert.Equal(t, backend.AllOps(), b.Ops())
	require.NoError(t, b.Sync())
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	for _, r := range backend.ProbeAll() {
		if r.Name == "cpu" {
			require.NoError(t, r.Err)
			require.Len(t, r.Devices, 1)
		}
	}
}

func TestStatsAndFree(t *testing.T) {
	b := open(t)
	x, err := b.Alloc(10)
	require.NoError(t, err)
	y, err := b.Alloc(5)
	require.NoError(t, err)
	assert.Equal(t, backend.Stats{LiveBuffers: 2, LiveElements: 15, Allocs: 2}, b.Stats())
	assert.Equal(t, make([]float32, 10), download(t, b, x, 10), "Alloc zero-fills")
	x.Free()
	x.Free()
	assert.Equal(t, backend.Stats{LiveBuffers: 1, LiveElements: 5, Allocs: 2}, b.Stats())
	requireShape(t, b.Fill(x, 1, 0), backend.OpFill)
	requireShape(t, b.Copy(y, x, 1), backend.OpCopy)
	assert.Contains(t, b.Fill(x, 1, 0).Error(), "freed")
	y.Free()
	_, err = b.Alloc(-1)
	requireShape(t, err, backend.OpAlloc)
	_, err = b.Alloc(math.MaxInt)
	requireShape(t, err, backend.OpAlloc)
}

type foreign struct{}

func (foreign) Len() int { return 100 }
func (foreign) Free()    {}

func TestForeignAndNilBuffers(t *testing.T) {
	b := open(t)
	other := cpu.New()
	defer other.Close()
	ob, err := other.Alloc(4)
	require.NoError(t, err)
	defer ob.Free()
	x := alloc(t, b, 1, 2, 3, 4)
	defer x.Free()
	requireShape(t, b.ReLU(ob, x, 4), backend.OpReLU)
	requireShape(t, b.ReLU(foreign{}, x, 4), backend.OpReLU)
	requireShape(t, b.ReLU(nil, x, 4), backend.OpReLU)
	var typedNil *cpu.Buffer
	requireShape(t, b.ReLU(typedNil, x, 4), backend.OpReLU)
	assert.Zero(t, typedNil.Len())
}

// TestUndersized calls every op with one buffer too small, or bad sizes,
// and expects shape errors, never a panic.
func TestUndersized(t *testing.T) {
	b := open(t)
	big, err := b.Alloc(4096)
	require.NoError(t, err)
	defer big.Free()
	small, err := b.Alloc(3)
	require.NoError(t, err)
	defer small.Free()
	conv := backend.ConvParams{N: 2, H: 5, W: 5, C: 3, KH: 3, KW: 3, F: 4, StrideH: 1, StrideW: 1, OutH: 3, OutW: 3}
	pool := backend.PoolParams{N: 2, H: 4, W: 4, C: 3, KH: 2, KW: 2, StrideH: 2, StrideW: 2, OutH: 2, OutW: 2}
	badConv := conv
	badConv.OutH = 9
	badPool := pool
	badPool.OutW = 3
	cases := map[string][]error{
		backend.OpUpload:   {b.Upload(small, make([]float32, 4))},
		backend.OpDownload: {b.Download(make([]float32, 4), small)},
		backend.OpFill:     {b.Fill(small, 4, 1), b.Fill(small, -1, 1)},
		backend.OpCopy:     {b.Copy(big, small, 4), b.Copy(small, big, 4)},
		backend.OpGemm: {b.Gemm(false, false, 2, 2, 2, 1, small, big, 0, big), b.Gemm(true, true, 2, 2, 2, 1, big, big, 0, small),
			b.Gemm(false, false, -1, 2, 2, 1, big, big, 0, big), b.Gemm(false, false, math.MaxInt/2, 4, 2, 1, big, big, 0, big)},
		backend.OpConv2D:               {b.Conv2D(conv, small, big, big), b.Conv2D(conv, big, small, big), b.Conv2D(conv, big, big, small), b.Conv2D(badConv, big, big, big), b.Conv2D(backend.ConvParams{}, big, big, big)},
		backend.OpConv2DBackwardData:   {b.Conv2DBackwardData(conv, small, big, big), b.Conv2DBackwardData(conv, big, big, small)},
		backend.OpConv2DBackwardFilter: {b.Conv2DBackwardFilter(conv, big, big, small), b.Conv2DBackwardFilter(badConv, big, big, big)},
		backend.OpMaxPool2D:            {b.MaxPool2D(pool, small, big, big), b.MaxPool2D(pool, big, big, small), b.MaxPool2D(badPool, big, big, big)},
		backend.OpMaxPool2DBackward:    {b.MaxPool2DBackward(pool, big, big, small), b.MaxPool2DBackward(pool, small, big, big)},
		backend.OpBiasAdd:              {b.BiasAdd(small, big, 2, 2), b.BiasAdd(big, small, 2, 4), b.BiasAdd(big, big, -1, 2)},
		backend.OpBiasGrad:             {b.BiasGrad(small, big, 2, 2), b.BiasGrad(big, small, 2, 4)},
		backend.OpReLU:                 {b.ReLU(small, big, 4), b.ReLU(big, small, 4)},
		backend.OpReLUBackward:         {b.ReLUBackward(big, big, small, 4)},
		backend.OpMul:                  {b.Mul(big, small, big, 4)},
		backend.OpDropoutMask:          {b.DropoutMask(small, 4, 0.5, 1), b.DropoutMask(big, 4, 1.5, 1), b.DropoutMask(big, 4, float32(math.NaN()), 1)},
		backend.OpSoftmax:              {b.Softmax(small, big, 2, 2), b.Softmax(big, big, 2, -2)},
		backend.OpSoftmaxCrossEntropy: {b.SoftmaxCrossEntropy(small, big, 2, 2, big, big), b.SoftmaxCrossEntropy(big, big, 2, 2, small, big),
			b.SoftmaxCrossEntropy(big, big, 0, 2, big, big)},
		backend.OpAdam: {b.Adam(backend.AdamParams{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Step: 1}, big, big, big, small, 4),
			b.Adam(backend.AdamParams{LR: 0.1, Beta1: 0.9, Beta2: 0.999}, big, big, big, big, 4)},
		backend.OpSGD: {b.SGD(backend.SGDParams{LR: 0.1}, big, small, big, 4)},
	}
	require.Len(t, cases, len(backend.AllOps())-1) // every op but Alloc
	for op, errs := range cases {
		for i, err := range errs {
			t.Run(op, func(t *testing.T) {
				require.Error(t, err, "case %d", i)
				requireShape(t, err, op)
			})
		}
	}
}

func TestBadLabel(t *testing.T) {
	b := open(t)
	logits := alloc(t, b, 1, 2, 3, 4, 5, 6)
	grad := alloc(t, b, 0, 0, 0, 0, 0, 0)
	stats := alloc(t, b, 0, 0)
	defer func() { logits.Free(); grad.Free(); stats.Free() }()
	for _, bad := range []float32{3, -1, 1.5, float32(math.NaN()), float32(math.Inf(1))} {
		labels := alloc(t, b, 0, bad)
		err := b.SoftmaxCrossEntropy(logits, labels, 2, 3, grad, stats)
		requireShape(t, err, backend.OpSoftmaxCrossEntropy)
		assert.Contains(t, err.Error(), "row 1")
		labels.Free()
	}
	labels := alloc(t, b, 2, 0)
	require.NoError(t, b.SoftmaxCrossEntropy(logits, labels, 2, 3, grad, stats))
	labels.Free()
	st := download(t, b, stats, 2)
	lse := math.Log(math.Exp(-2) + math.Exp(-1) + 1)
	assert.InDelta(t, lse+lse+2, st[0], 1e-5)
	assert.Equal(t, float32(1), st[1])
}

func TestOpsSmall(t *testing.T) {
	b := open(t)
	// Gemm: [1 2; 3 4]·[5 6; 7 8] = [19 22; 43 50], transposes included.
	a := alloc(t, b, 1, 2, 3, 4)
	bm := alloc(t, b, 5, 6, 7, 8)
	c := alloc(t, b, float32(math.NaN()), 0, 0, 0)
	defer func() { a.Free(); bm.Free(); c.Free() }()
	require.NoError(t, b.Gemm(false, false, 2, 2, 2, 1, a, bm, 0, c))
	assert.Equal(t, []float32{19, 22, 43, 50}, download(t, b, c, 4))
	require.NoError(t, b.Gemm(true, true, 2, 2, 2, 1, a, bm, 0, c))
	assert.Equal(t, []float32{23, 31, 34, 46}, download(t, b, c, 4))
	require.NoError(t, b.Gemm(false, true, 1, 1, 2, 2, a, bm, 1, c))
	assert.Equal(t, []float32{23 + 2*17, 31, 34, 46}, download(t, b, c, 4))

	// Dropout matches backend.DropoutKeep.
	m, err := b.Alloc(1000)
	require.NoError(t, err)
	defer m.Free()
	require.NoError(t, b.DropoutMask(m, 1000, 0.3, 42))
	for i, v := range download(t, b, m, 1000) {
		if backend.DropoutKeep(42, i, 0.3) {
			require.InDelta(t, 1/0.7, v, 1e-6)
		} else {
			require.Zero(t, v)
		}
	}

	// Conv 1×1 over a 1×2×2×1 image equals scaling.
	p := backend.ConvParams{N: 1, H: 2, W: 2, C: 1, KH: 1, KW: 1, F: 1, StrideH: 1, StrideW: 1, OutH: 2, OutW: 2}
	w := alloc(t, b, 3)
	defer w.Free()
	require.NoError(t, b.Conv2D(p, a, w, c))
	assert.Equal(t, []float32{3, 6, 9, 12}, download(t, b, c, 4))
}

func TestSteadyStateNoAllocs(t *testing.T) {
	b := open(t)
	p := backend.ConvParams{N: 4, H: 12, W: 12, C: 8, KH: 3, KW: 3, F: 8, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 12, OutW: 12}
	x, _ := b.Alloc(p.InLen())
	w, _ := b.Alloc(p.FilterLen())
	y, _ := b.Alloc(p.OutLen())
	bias, _ := b.Alloc(8)
	labels, _ := b.Alloc(p.OutLen() / 8)
	stats, _ := b.Alloc(2)
	am, _ := b.Alloc(p.OutLen())
	defer func() {
		x.Free()
		w.Free()
		y.Free()
		bias.Free()
		labels.Free()
		stats.Free()
		am.Free()
	}()
	pp := backend.PoolParams{N: 4, H: 12, W: 12, C: 8, KH: 2, KW: 2, StrideH: 2, StrideW: 2, OutH: 6, OutW: 6}
	host := make([]float32, 8)
	step := func() {
		must := func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		must(b.Conv2D(p, x, w, y))
		must(b.BiasAdd(y, bias, p.OutLen()/8, 8))
		must(b.ReLU(y, y, p.OutLen()))
		must(b.ReLUBackward(y, y, y, p.OutLen()))
		must(b.BiasGrad(y, bias, p.OutLen()/8, 8))
		must(b.Conv2DBackwardData(p, y, w, x))
		must(b.Conv2DBackwardFilter(p, x, y, w))
		must(b.MaxPool2D(pp, x, y, am))
		must(b.MaxPool2DBackward(pp, y, am, x))
		must(b.SoftmaxCrossEntropy(y, labels, p.OutLen()/8, 8, x, stats))
		must(b.Adam(backend.AdamParams{LR: 0.001, Beta1: 0.9, Beta2: 0.999, Eps: 1e-7, Step: 1}, x, y, w, bias, 8))
		must(b.SGD(backend.SGDParams{LR: 0.1, Momentum: 0.9}, x, y, w, 8))
		must(b.Gemm(false, true, 16, 16, 16, 1, x, y, 0, am))
		must(b.Upload(stats, host[:2]))
		must(b.Download(host, y))
	}
	step()
	assert.Zero(t, testing.AllocsPerRun(5, step))
}

// TestConvFusedEpilogue checks that Conv2D, BiasAdd and ReLU give the same
// bits whether they run fused (Conv2D queues its work and the two ops that
// follow join its epilogue) or one by one (a Sync after each), and that the
// queued convolution runs before any other op reads or writes its buffers.
func TestConvFusedEpilogue(t *testing.T) {
	b := open(t)
	for _, p := range []backend.ConvParams{
		{N: 3, H: 13, W: 13, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 11, OutW: 11},
		{N: 2, H: 28, W: 28, C: 1, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 26, OutW: 26},
		{N: 2, H: 9, W: 8, C: 5, KH: 3, KW: 3, F: 7, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OutH: 9, OutW: 8},
		{N: 2, H: 4, W: 4, C: 3, KH: 1, KW: 1, F: 5, StrideH: 1, StrideW: 1, OutH: 4, OutW: 4},
	} {
		rows, n := p.N*p.OutH*p.OutW, p.OutLen()
		vals := func(n int, seed float32) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(math.Sin(float64(seed) + float64(i)*0.7))
			}
			return v
		}
		x, w, bias := alloc(t, b, vals(p.InLen(), 1)...), alloc(t, b, vals(p.FilterLen(), 2)...), alloc(t, b, vals(p.F, 3)...)
		y, err := b.Alloc(n)
		require.NoError(t, err)
		y2, err := b.Alloc(n)
		require.NoError(t, err)
		// one by one
		run := func(steps ...func() error) []float32 {
			for _, s := range steps {
				require.NoError(t, s())
			}
			return download(t, b, y, n)
		}
		conv := func() error { return b.Conv2D(p, x, w, y) }
		addBias := func() error { return b.BiasAdd(y, bias, rows, p.F) }
		relu := func() error { return b.ReLU(y, y, n) }
		sync := b.Sync
		for _, tc := range []struct {
			name        string
			fused, want []func() error
		}{
			{"bias+relu", []func() error{conv, addBias, relu}, []func() error{conv, sync, addBias, sync, relu}},
			{"bias", []func() error{conv, addBias}, []func() error{conv, sync, addBias}},
			{"relu", []func() error{conv, relu}, []func() error{conv, sync, relu}},
			{"relu then bias", []func() error{conv, relu, addBias}, []func() error{conv, sync, relu, sync, addBias}},
			{"bias twice", []func() error{conv, addBias, addBias, relu}, []func() error{conv, sync, addBias, sync, addBias, sync, relu}},
			{"part of the rows", []func() error{conv, func() error { return b.BiasAdd(y, bias, rows-1, p.F) }},
				[]func() error{conv, sync, func() error { return b.BiasAdd(y, bias, rows-1, p.F) }}},
			{"relu elsewhere", []func() error{conv, addBias, func() error { return b.ReLU(y, y2, n) }},
				[]func() error{conv, sync, addBias, sync, func() error { return b.ReLU(y, y2, n) }}},
		} {
			want := run(tc.want...)
			got := run(tc.fused...)
			for i := range want {
				if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
					t.Fatalf("%+v %s: y[%d] = %v fused, %v one by one", p, tc.name, i, got[i], want[i])
				}
			}
		}
		// A MaxPool2D of the output joins the queued convolution too.
		pp := backend.PoolParams{N: p.N, H: p.OutH, W: p.OutW, C: p.F, KH: 2, KW: 2, StrideH: 2, StrideW: 2,
			OutH: p.OutH / 2, OutW: p.OutW / 2}
		pn := pp.N * pp.OutH * pp.OutW * pp.C
		py, err := b.Alloc(pn)
		require.NoError(t, err)
		pa, err := b.Alloc(pn)
		require.NoError(t, err)
		for _, tc := range []struct {
			name   string
			py, pa backend.Buffer
		}{{"pool", py, pa}, {"pool into the input", x, pa}, {"pool into the filter", py, w}} {
			if tc.py.Len() < pn || tc.pa.Len() < pn {
				continue
			}
			pool := func() error { return b.MaxPool2D(pp, y, tc.py, tc.pa) }
			steps := func(fused bool) []float32 {
				require.NoError(t, b.Upload(x, vals(p.InLen(), 1)))
				require.NoError(t, b.Upload(w, vals(p.FilterLen(), 2)))
				ops := []func() error{conv, addBias, relu, pool}
				for _, op := range ops {
					require.NoError(t, op())
					if !fused {
						require.NoError(t, b.Sync())
					}
				}
				out := download(t, b, y, n)
				out = append(out, download(t, b, tc.py, pn)...)
				return append(out, download(t, b, tc.pa, pn)...)
			}
			want, got := steps(false), steps(true)
			for i := range want {
				if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
					t.Fatalf("%+v %s: element %d = %v fused, %v one by one", p, tc.name, i, got[i], want[i])
				}
			}
		}
		for _, buf := range []backend.Buffer{py, pa} {
			buf.Free()
		}
		require.NoError(t, b.Upload(x, vals(p.InLen(), 1)))
		require.NoError(t, b.Upload(w, vals(p.FilterLen(), 2)))
		// An op that writes the input after Conv2D runs after it.
		want := run(conv)
		require.NoError(t, b.Conv2D(p, x, w, y))
		require.NoError(t, b.Upload(x, vals(p.InLen(), 5)))
		assert.Equal(t, want, download(t, b, y, n), "%+v: Upload ran before the queued Conv2D", p)
		// Data sees the queued work.
		require.NoError(t, b.Upload(x, vals(p.InLen(), 1)))
		require.NoError(t, b.Conv2D(p, x, w, y))
		require.NoError(t, b.BiasAdd(y, bias, rows, p.F))
		got := append([]float32(nil), y.(*cpu.Buffer).Data()[:n]...)
		assert.Equal(t, run(conv, sync, addBias), got, "%+v: Data before the queued work ran", p)
		for _, buf := range []backend.Buffer{x, w, bias, y, y2} {
			buf.Free()
		}
	}
}

// TestReLUBackBiasGradFused checks that ReLUBackward followed by BiasGrad
// of its output gives the same bits fused (ReLUBackward is queued and the
// BiasGrad joins it) as one by one, and that the queued ReLUBackward runs
// before any other op.
func TestReLUBackBiasGradFused(t *testing.T) {
	b := open(t)
	for _, sh := range []struct{ rows, cols int }{{32 * 26 * 26, 64}, {7, 10}, {3000, 13}} {
		n := sh.rows * sh.cols
		vals := func(seed float64) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(math.Sin(seed + float64(i)*0.37))
			}
			return v
		}
		y, dy := alloc(t, b, vals(1)...), alloc(t, b, vals(2)...)
		dx, err := b.Alloc(n)
		require.NoError(t, err)
		db, err := b.Alloc(sh.cols)
		require.NoError(t, err)
		run := func(sync bool, rows int) ([]float32, []float32) {
			require.NoError(t, b.ReLUBackward(y, dy, dx, n))
			if sync {
				require.NoError(t, b.Sync())
			}
			require.NoError(t, b.BiasGrad(dx, db, rows, sh.cols))
			return download(t, b, dx, n), download(t, b, db, sh.cols)
		}
		for _, rows := range []int{sh.rows, sh.rows - 1} {
			wantDX, wantDB := run(true, rows)
			gotDX, gotDB := run(false, rows)
			for i := range wantDX {
				if math.Float32bits(wantDX[i]) != math.Float32bits(gotDX[i]) {
					t.Fatalf("%+v rows %d: dx[%d] = %v fused, %v one by one", sh, rows, i, gotDX[i], wantDX[i])
				}
			}
			for i := range wantDB {
				if math.Float32bits(wantDB[i]) != math.Float32bits(gotDB[i]) {
					t.Fatalf("%+v rows %d: db[%d] = %v fused, %v one by one", sh, rows, i, gotDB[i], wantDB[i])
				}
			}
		}
		// An op that writes dy after ReLUBackward runs after it.
		require.NoError(t, b.ReLUBackward(y, dy, dx, n))
		want := download(t, b, dx, n)
		require.NoError(t, b.ReLUBackward(y, dy, dx, n))
		require.NoError(t, b.Upload(dy, vals(3)))
		assert.Equal(t, want, download(t, b, dx, n), "%+v: Upload ran before the queued ReLUBackward", sh)
		for _, buf := range []backend.Buffer{y, dy, dx, db} {
			buf.Free()
		}
	}
}

// TestCloseReleasesScratch: once a backend is closed and its buffers freed,
// its scratch memory (im2col patches, packing buffers, the pool's last job)
// is garbage even while a caller still holds a Buffer value, which points
// back at the backend. Before Close dropped it, 14.6 MiB stayed reachable
// here.
func TestCloseReleasesScratch(t *testing.T) {
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	base := heap()
	b := cpu.New()
	p := backend.ConvParams{N: 64, H: 32, W: 32, C: 8, KH: 5, KW: 5, F: 8, StrideH: 2, StrideW: 2, PadTop: 2, PadLeft: 2, OutH: 16, OutW: 16}
	x, err := b.Alloc(p.InLen())
	require.NoError(t, err)
	w, err := b.Alloc(p.FilterLen())
	require.NoError(t, err)
	y, err := b.Alloc(p.OutLen())
	require.NoError(t, err)
	require.NoError(t, b.Conv2DBackwardData(p, y, w, x)) // col2im: a large patch matrix
	require.NoError(t, b.Sync())
	x.Free()
	w.Free()
	y.Free()
	require.NoError(t, b.Close())
	held := heap() - base
	assert.Less(t, held, int64(2<<20), "%.1f MiB still reachable after Close through a held Buffer", float64(held)/(1<<20))
	runtime.KeepAlive(y)
}
