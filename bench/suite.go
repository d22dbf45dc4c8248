package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/engine"
)

// Suite names, in the order they run.
const (
	SuiteSGEMM = "sgemm"
	SuiteConv  = "conv"
	SuitePool  = "pool"
	SuiteTrain = "train"
	SuiteInfer = "infer"
)

// AllSuites lists every suite in run order.
func AllSuites() []string {
	return []string{SuiteSGEMM, SuiteConv, SuitePool, SuiteTrain, SuiteInfer}
}

// DefaultSGEMMSizes and QuickSGEMMSizes are the square SGEMM sizes run by
// default and with Quick.
var (
	DefaultSGEMMSizes = []int{256, 512, 1024, 2048}
	QuickSGEMMSizes   = []int{64, 128, 256}
)

// Config selects what Run measures. Zero fields take the defaults noted.
type Config struct {
	// Backends lists backend names; "all" (or empty) means every backend
	// that backend.ProbeAll finds usable.
	Backends []string
	// Device selects the device within each backend (backend.Options).
	Device string
	// Suites lists the suites to run (default AllSuites).
	Suites []string
	// Quick uses smaller SGEMM sizes, fewer runs and shorter runs.
	Quick bool
	// Repeat is the number of timed runs per case (default 10; Quick 3).
	Repeat int
	// Warmup is the number of untimed runs before timing (default 2;
	// Quick 1).
	Warmup int
	// MinRunTime is the least time one timed run lasts: short ops repeat
	// inside a run until it does (default 50ms; Quick 5ms).
	MinRunTime time.Duration
	// SGEMMSizes are the square SGEMM sizes (default DefaultSGEMMSizes;
	// Quick QuickSGEMMSizes).
	SGEMMSizes []int
	// Batch is the batch of the conv, pool and train cases (default 32).
	Batch int
	// InferBatch is the batch of the inference throughput case (default 64).
	InferBatch int
	// LatencyCalls is the number of timed batch-1 calls of the latency case
	// (default 200; Quick 30).
	LatencyCalls int
	// Progress, when set, is called before and after every case.
	Progress func(Progress)
}

// Progress reports where a run is. Result.PeakPercent is not set yet: the
// peak is measured again after the last case.
type Progress struct {
	Index, Total  int    // 1-based case number, number of cases
	Backend, Case string // what runs
	Size          string
	Done          bool    // false: starting; true: finished
	Result        *Result // the result when Done and it succeeded
	Skipped       string  // why the case was skipped, when Done and skipped
	// Interrupted is true when Done because the run's context ended while
	// the case ran: it has no result, and no case follows.
	Interrupted bool
}

// defaults fills the zero fields of c and validates it.
func (c Config) defaults() (Config, error) {
	if len(c.Backends) == 0 {
		c.Backends = []string{"all"}
	}
	if len(c.Suites) == 0 {
		c.Suites = AllSuites()
	}
	for _, s := range c.Suites {
		if !slices.Contains(AllSuites(), s) {
			return c, fmt.Errorf("unknown suite %q (want some of %s)", s, strings.Join(AllSuites(), ","))
		}
	}
	pick := func(v *int, def, quick int, name string) error {
		switch {
		case *v < 0:
			return fmt.Errorf("%s must not be negative, got %d", name, *v)
		case *v == 0 && c.Quick:
			*v = quick
		case *v == 0:
			*v = def
		}
		return nil
	}
	for _, p := range []struct {
		v          *int
		def, quick int
		name       string
	}{
		{&c.Repeat, 10, 3, "repeat"},
		{&c.Warmup, 2, 1, "warm-up runs"},
		{&c.Batch, 32, 32, "batch"},
		{&c.InferBatch, 64, 64, "inference batch"},
		{&c.LatencyCalls, 200, 30, "latency calls"},
	} {
		if err := pick(p.v, p.def, p.quick, p.name); err != nil {
			return c, err
		}
	}
	switch {
	case c.MinRunTime < 0:
		return c, fmt.Errorf("minimum run time must not be negative, got %v", c.MinRunTime)
	case c.MinRunTime == 0 && c.Quick:
		c.MinRunTime = 5 * time.Millisecond
	case c.MinRunTime == 0:
		c.MinRunTime = 50 * time.Millisecond
	}
	if len(c.SGEMMSizes) == 0 {
		c.SGEMMSizes = DefaultSGEMMSizes
		if c.Quick {
			c.SGEMMSizes = QuickSGEMMSizes
		}
	}
	for _, s := range c.SGEMMSizes {
		if s <= 0 {
			return c, fmt.Errorf("SGEMM sizes must be positive, got %d", s)
		}
	}
	return c, nil
}

// benchCase is one measurement, defined independently of the backend.
type benchCase struct {
	suite, name, size string
	batch             int
	flops             float64 // per op
	bytes             float64 // per op, for memory-bound ops
	images            int     // per op, for images/s
	latency           bool    // time single calls and report p50/p99
	// setup allocates what the op needs on b and returns it with a
	// cleanup; the op itself only queues work.
	setup func(b backend.Backend) (op func() error, cleanup func(), err error)
}

// plan lists the cases of the selected suites.
func plan(c Config) ([]benchCase, error) {
	spec := engine.ReferenceSpec(28, 28, 1, 10)
	var cases []benchCase
	for _, s := range c.Suites {
		switch s {
		case SuiteSGEMM:
			for _, n := range c.SGEMMSizes {
				cases = append(cases, sgemmCase(n))
			}
		case SuiteConv:
			cs, err := convCases(spec, c.Batch)
			if err != nil {
				return nil, err
			}
			cases = append(cases, cs...)
		case SuitePool:
			cs, err := poolCases(spec, c.Batch)
			if err != nil {
				return nil, err
			}
			cases = append(cases, cs...)
		case SuiteTrain:
			cases = append(cases, trainCase(spec, c.Batch))
		case SuiteInfer:
			cases = append(cases, inferCase(spec, c.InferBatch, false), inferCase(spec, 1, true))
		}
	}
	return cases, nil
}

// usableBackends resolves "all" through backend.ProbeAll. It returns the
// names to open and, for "all", the backends skipped with their reasons.
func usableBackends(names []string) ([]string, []Skip) {
	var out []string
	var skipped []Skip
	for _, n := range names {
		if n != "all" {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
			continue
		}
		for _, r := range backend.ProbeAll() {
			switch {
			case r.Err != nil:
				skipped = append(skipped, Skip{Backend: r.Name, Reason: r.Err.Error()})
			case len(r.Devices) == 0:
				skipped = append(skipped, Skip{Backend: r.Name, Reason: "no device found"})
			case !slices.Contains(out, r.Name):
				out = append(out, r.Name)
			}
		}
	}
	return out, skipped
}

// Run measures the selected suites on every selected backend and returns
// the report. A backend named explicitly that cannot be opened is an error;
// with "all", unusable backends are listed in Report.Skipped. A case whose
// op a backend does not implement is skipped and listed too.
//
// When ctx ends before the last case (Ctrl-C), Run returns the partial
// report, the cases measured so far with Report.Interrupted saying where
// it stopped, together with an error that wraps ctx.Err() and names the
// case that was running. Any other error returns a nil report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.defaults()
	if err != nil {
		return nil, err
	}
	cases, err := plan(cfg)
	if err != nil {
		return nil, err
	}
	names, skipped := usableBackends(cfg.Backends)
	if len(names) == 0 {
		return nil, fmt.Errorf("no usable backend to benchmark: %s", skipReasons(skipped))
	}
	var backends []backend.Backend
	defer func() {
		for _, b := range backends {
			b.Close()
		}
	}()
	for _, n := range names {
		b, _, err := backend.Open(n, backend.Options{Device: cfg.Device})
		switch {
		case err != nil && slices.Contains(cfg.Backends, n):
			return nil, fmt.Errorf("open backend %s: %w", n, err)
		case err != nil:
			// Found by "all" but failed to open: skip it, say why.
			skipped = append(skipped, Skip{Backend: n, Reason: err.Error()})
		default:
			backends = append(backends, b)
		}
	}
	if len(backends) == 0 {
		return nil, fmt.Errorf("no usable backend to benchmark: %s", skipReasons(skipped))
	}

	rep := &Report{
		Schema:  SchemaVersion,
		Host:    hostInfo(),
		Started: time.Now().UTC().Truncate(time.Second),
		Quick:   cfg.Quick,
		Suites:  cfg.Suites,
		Skipped: skipped,
	}
	// The CPU peak is measured before and after the cases (many short
	// trials each, best counts), so a busy moment on a shared machine does
	// not lower it.
	measurePeak := func() Peak {
		if !slices.Contains(names, "cpu") {
			return Peak{}
		}
		if cfg.Quick {
			return MeasurePeak(10, 5*time.Millisecond)
		}
		return MeasurePeak(40, 5*time.Millisecond)
	}
	load0, loadOK := readCPUTimes(linuxProc)
	rep.Peak = measurePeak()
	// finish completes the report with the host load and % of peak.
	finish := func() {
		if load1, ok := readCPUTimes(linuxProc); ok && loadOK {
			rep.Load = loadBetween(load0, load1)
		}
		for i := range rep.Results {
			r := &rep.Results[i]
			if r.Backend == "cpu" && rep.Peak.GFLOPS > 0 && r.GFLOPS > 0 {
				r.PeakPercent = 100 * r.GFLOPS / rep.Peak.GFLOPS
			}
		}
	}

	total := len(cases) * len(backends)
	idx := 0
	for _, b := range backends {
		for _, c := range cases {
			idx++
			ev := Progress{Index: idx, Total: total, Backend: b.Name(), Case: c.name, Size: c.size}
			// interrupted ends the run with what was measured before case
			// idx: the partial report and an error naming the case. when is
			// "during" or "before" the case.
			interrupted := func(when string, cause error) (*Report, error) {
				what := fmt.Sprintf("%s %s %s", b.Name(), c.name, c.size)
				rep.Interrupted = fmt.Sprintf("after %d of %d cases, %s %s", idx-1, total, when, what)
				// The peak is not measured again: the run is to end now.
				finish()
				return rep, fmt.Errorf("interrupted %s case %d of %d (%s), %d measured before: %w",
					when, idx, total, what, len(rep.Results), cause)
			}
			if err := ctx.Err(); err != nil {
				return interrupted("before", err)
			}
			if cfg.Progress != nil {
				cfg.Progress(ev)
			}
			res, err := measureCase(ctx, cfg, b, c)
			ev.Done = true
			switch {
			case err != nil && ctx.Err() != nil:
				// The case stopped because the run was interrupted; whatever
				// failed then is a consequence, not the cause.
				ev.Interrupted = true
				if cfg.Progress != nil {
					cfg.Progress(ev)
				}
				return interrupted("during", ctx.Err())
			case errors.Is(err, backend.ErrNotImplemented):
				s := Skip{Backend: b.Name(), Case: c.name, Reason: err.Error()}
				rep.Skipped = append(rep.Skipped, s)
				ev.Skipped = s.Reason
			case err != nil:
				return nil, fmt.Errorf("%s %s %s: %w", b.Name(), c.name, c.size, err)
			default:
				res.Host = rep.Host.Name
				rep.Results = append(rep.Results, res)
				ev.Result = &rep.Results[len(rep.Results)-1]
			}
			if cfg.Progress != nil {
				cfg.Progress(ev)
			}
		}
	}
	rep.Peak = rep.Peak.Merge(measurePeak())
	finish()
	return rep, nil
}

func skipReasons(s []Skip) string {
	var parts []string
	for _, k := range s {
		parts = append(parts, k.Backend+": "+k.Reason)
	}
	if len(parts) == 0 {
		return "none requested"
	}
	return strings.Join(parts, "; ")
}

// measureCase sets up one case on b, warms it up and times it.
func measureCase(ctx context.Context, cfg Config, b backend.Backend, c benchCase) (Result, error) {
	op, cleanup, err := c.setup(b)
	if err != nil {
		return Result{}, fmt.Errorf("set up: %w", err)
	}
	defer cleanup()
	// batch runs op n times and syncs once, as a timed run does.
	batch := func(n int) (time.Duration, error) {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			if err := op(); err != nil {
				return 0, err
			}
		}
		if err := b.Sync(); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	}
	for i := 0; i < cfg.Warmup; i++ {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		if _, err := batch(1); err != nil {
			return Result{}, err
		}
	}
	iters, runs := 1, cfg.Repeat
	if c.latency {
		runs = cfg.LatencyCalls
	} else if iters, err = calibrate(ctx, batch, cfg.MinRunTime); err != nil {
		return Result{}, err
	}
	samples := make([]float64, 0, runs)
	for r := 0; r < runs; r++ {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		d, err := batch(iters)
		if err != nil {
			return Result{}, err
		}
		samples = append(samples, d.Seconds()/float64(iters))
	}
	st := summarize(samples)
	dev := b.Device()
	res := Result{
		Backend: b.Name(), Device: dev.Name, Features: dev.Features, Suite: c.suite, Case: c.name, Size: c.size,
		Batch: c.batch, Runs: runs, ItersPerRun: iters,
		MedianSeconds: st.median, MinSeconds: st.min, MaxSeconds: st.max,
		Q1Seconds: st.q1, Q3Seconds: st.q3, Flops: c.flops,
	}
	if c.flops > 0 {
		res.GFLOPS = c.flops / st.median / 1e9
	}
	if c.bytes > 0 {
		res.GBytesPerSecond = c.bytes / st.median / 1e9
	}
	if c.images > 0 {
		res.ImagesPerSecond = float64(c.images) / st.median
	}
	if c.latency {
		res.P50Ms = percentile(samples, 50) * 1e3
		res.P99Ms = percentile(samples, 99) * 1e3
	}
	return res, nil
}

// calibrate returns how many ops a timed run repeats so that it lasts at
// least minRun. It times batches of warm ops (batch(n) runs n and syncs
// once, as a timed run does) and grows n until a batch lasts minRun: a
// single call, least of all the cold first one (allocation, a filter
// transform, a first launch), is no measure of the ops that follow, and a
// count predicted from one call may fall short, so only a batch that ran
// long enough ends the search. Each prediction aims 20 % past minRun and
// grows n at least by one and at most 100-fold.
func calibrate(ctx context.Context, batch func(n int) (time.Duration, error), minRun time.Duration) (int, error) {
	n := 1
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		d, err := batch(n)
		if err != nil {
			return 0, err
		}
		if d >= minRun {
			return n, nil
		}
		next := 100 * n
		if d > 0 {
			next = int(math.Ceil(1.2 * float64(minRun) / float64(d) * float64(n)))
		}
		n = min(max(next, n+1), 100*n)
	}
}

// buffers allocates device buffers filled with uniform [-1, 1) values from
// a fixed seed and frees them together.
type buffers struct {
	b    backend.Backend
	bufs []backend.Buffer
	rng  *rand.Rand
}

func newBuffers(b backend.Backend) *buffers {
	return &buffers{b: b, rng: rand.New(rand.NewPCG(1, 2))}
}

func (o *buffers) random(n int) (backend.Buffer, error) {
	buf, err := o.b.Alloc(n)
	if err != nil {
		return nil, err
	}
	o.bufs = append(o.bufs, buf)
	host := make([]float32, n)
	for i := range host {
		host[i] = o.rng.Float32()*2 - 1
	}
	if err := o.b.Upload(buf, host); err != nil {
		return nil, err
	}
	return buf, nil
}

func (o *buffers) free() {
	for _, b := range o.bufs {
		b.Free()
	}
	o.bufs = nil
}

// alloc runs f with a fresh buffer set and frees it when f fails.
func alloc(b backend.Backend, f func(o *buffers) (func() error, error)) (func() error, func(), error) {
	o := newBuffers(b)
	op, err := f(o)
	if err != nil {
		o.free()
		return nil, nil, err
	}
	return op, o.free, nil
}

func sgemmCase(n int) benchCase {
	return benchCase{
		suite: SuiteSGEMM, name: "sgemm", size: fmt.Sprintf("%dx%dx%d", n, n, n),
		flops: 2 * float64(n) * float64(n) * float64(n),
		setup: func(b backend.Backend) (func() error, func(), error) {
			return alloc(b, func(o *buffers) (func() error, error) {
				a, err := o.random(n * n)
				if err != nil {
					return nil, err
				}
				bb, err := o.random(n * n)
				if err != nil {
					return nil, err
				}
				c, err := o.random(n * n)
				if err != nil {
					return nil, err
				}
				return func() error { return b.Gemm(false, false, n, n, n, 1, a, bb, 0, c) }, nil
			})
		},
	}
}

// layerShape walks a spec and calls f with each layer and its input shape.
func layerShapes(spec engine.Spec, f func(i int, l engine.LayerSpec, in []int) error) error {
	shapes, err := spec.Shapes()
	if err != nil {
		return err
	}
	in := spec.Input
	for i, l := range spec.Layers {
		if err := f(i, l, in); err != nil {
			return err
		}
		in = shapes[i]
	}
	return nil
}

func pairOr(v []int, def int) (int, int) {
	if len(v) == 2 {
		return v[0], v[1]
	}
	return def, def
}

// convParams derives the ConvParams of a conv2d layer as the engine does.
func convParams(l engine.LayerSpec, in []int, n int) (backend.ConvParams, error) {
	kh, kw := pairOr(l.Kernel, 0)
	sh, sw := pairOr(l.Strides, 1)
	oh, pt, err := backend.ConvOutSize(in[0], kh, sh, l.Padding)
	if err != nil {
		return backend.ConvParams{}, err
	}
	ow, pl, err := backend.ConvOutSize(in[1], kw, sw, l.Padding)
	if err != nil {
		return backend.ConvParams{}, err
	}
	return backend.ConvParams{N: n, H: in[0], W: in[1], C: in[2], KH: kh, KW: kw, F: l.Filters,
		StrideH: sh, StrideW: sw, PadTop: pt, PadLeft: pl, OutH: oh, OutW: ow}, nil
}

// poolParams derives the PoolParams of a maxpool2d layer as the engine does.
func poolParams(l engine.LayerSpec, in []int, n int) backend.PoolParams {
	ph, pw := pairOr(l.Pool, 2)
	sh, sw := pairOr(l.Strides, 0)
	if sh == 0 {
		sh, sw = ph, pw
	}
	return backend.PoolParams{N: n, H: in[0], W: in[1], C: in[2], KH: ph, KW: pw, StrideH: sh, StrideW: sw,
		OutH: (in[0]-ph)/sh + 1, OutW: (in[1]-pw)/sw + 1}
}

// convFlops is 2·N·OutH·OutW·F·KH·KW·C, the flops of each of the three
// convolution passes.
func convFlops(p backend.ConvParams) float64 {
	return 2 * float64(p.N) * float64(p.OutH*p.OutW) * float64(p.F) * float64(p.KH*p.KW*p.C)
}

func convCases(spec engine.Spec, batch int) ([]benchCase, error) {
	var cases []benchCase
	err := layerShapes(spec, func(i int, l engine.LayerSpec, in []int) error {
		if l.Type != "conv2d" {
			return nil
		}
		p, err := convParams(l, in, batch)
		if err != nil {
			return err
		}
		name := l.Name
		if name == "" {
			name = fmt.Sprintf("conv%d", i)
		}
		size := fmt.Sprintf("%dx%dx%dx%d k%dx%dx%d", p.N, p.H, p.W, p.C, p.KH, p.KW, p.F)
		xn, wn, yn := p.N*p.H*p.W*p.C, p.KH*p.KW*p.C*p.F, p.N*p.OutH*p.OutW*p.F
		// fwd is the forward pass of a training step, fwd-inference that
		// of inference (backend.ConvParams.Inference: the CPU backend's
		// Winograd F(4×4, 3×3) may run there).
		for _, pass := range []string{"fwd", "fwd-inference", "bwd-data", "bwd-filter"} {
			p := p
			p.Inference = pass == "fwd-inference"
			cases = append(cases, benchCase{
				suite: SuiteConv, name: name + " " + pass, size: size, batch: batch, flops: convFlops(p),
				setup: func(b backend.Backend) (func() error, func(), error) {
					return alloc(b, func(o *buffers) (func() error, error) {
						x, err := o.random(xn)
						if err != nil {
							return nil, err
						}
						w, err := o.random(wn)
						if err != nil {
							return nil, err
						}
						y, err := o.random(yn)
						if err != nil {
							return nil, err
						}
						switch pass {
						case "fwd", "fwd-inference":
							return func() error { return b.Conv2D(p, x, w, y) }, nil
						case "bwd-data":
							return func() error { return b.Conv2DBackwardData(p, y, w, x) }, nil
						default:
							return func() error { return b.Conv2DBackwardFilter(p, x, y, w) }, nil
						}
					})
				},
			})
		}
		return nil
	})
	return cases, err
}

// poolCovered is how many of in input rows (or columns) out windows of k
// rows, stride s, cover.
func poolCovered(out, k, s, in int) int {
	if out <= 0 {
		return 0
	}
	if s >= k {
		return min(in, out*k)
	}
	return min(in, (out-1)*s+k)
}

func poolCases(spec engine.Spec, batch int) ([]benchCase, error) {
	var cases []benchCase
	err := layerShapes(spec, func(i int, l engine.LayerSpec, in []int) error {
		if l.Type != "maxpool2d" {
			return nil
		}
		p := poolParams(l, in, batch)
		name := l.Name
		if name == "" {
			name = fmt.Sprintf("pool%d", i)
		}
		size := fmt.Sprintf("%dx%dx%dx%d p%dx%d", p.N, p.H, p.W, p.C, p.KH, p.KW)
		xn, yn := p.N*p.H*p.W*p.C, p.N*p.OutH*p.OutW*p.C
		// the forward pass reads only the input its windows cover (11×11
		// pooled 2×2 to 5×5 leaves the last row and column unread); the
		// backward pass writes all of dx
		read := p.N * poolCovered(p.OutH, p.KH, p.StrideH, p.H) * poolCovered(p.OutW, p.KW, p.StrideW, p.W) * p.C
		for _, pass := range []string{"fwd", "bwd"} {
			bytes := 4 * float64(xn+2*yn)
			if pass == "fwd" {
				bytes = 4 * float64(read+2*yn)
			}
			cases = append(cases, benchCase{
				suite: SuitePool, name: name + " " + pass, size: size, batch: batch, bytes: bytes,
				setup: func(b backend.Backend) (func() error, func(), error) {
					return alloc(b, func(o *buffers) (func() error, error) {
						x, err := o.random(xn)
						if err != nil {
							return nil, err
						}
						y, err := o.random(yn)
						if err != nil {
							return nil, err
						}
						arg, err := o.random(yn)
						if err != nil {
							return nil, err
						}
						// A forward pass leaves valid argmax offsets for the backward.
						if err := b.MaxPool2D(p, x, y, arg); err != nil {
							return nil, err
						}
						if pass == "fwd" {
							return func() error { return b.MaxPool2D(p, x, y, arg) }, nil
						}
						return func() error { return b.MaxPool2DBackward(p, y, arg, x) }, nil
					})
				},
			})
		}
		return nil
	})
	return cases, err
}

// modelFlops counts the conv and dense multiply-adds (×2) of one sample:
// forward only, or forward plus both backward passes (the first layer
// computes no input gradient).
func modelFlops(spec engine.Spec, train bool) float64 {
	total := 0.0
	_ = layerShapes(spec, func(i int, l engine.LayerSpec, in []int) error {
		var f float64
		switch l.Type {
		case "conv2d":
			p, err := convParams(l, in, 1)
			if err != nil {
				return err
			}
			f = convFlops(p)
		case "dense":
			n := 1
			for _, d := range in {
				n *= d
			}
			f = 2 * float64(n) * float64(l.Units)
		default:
			return nil
		}
		total += f
		if train {
			total += f // backward-filter
			if i > 0 {
				total += f // backward-data
			}
		}
		return nil
	})
	return total
}

// randomBatch returns n images of spec's input shape with pixels in [0,1)
// and n labels below classes, from a fixed seed.
func randomBatch(spec engine.Spec, n, classes int) (images, labels []float32) {
	rng := rand.New(rand.NewPCG(3, 4))
	per := spec.Input[0] * spec.Input[1] * spec.Input[2]
	images = make([]float32, n*per)
	for i := range images {
		images[i] = rng.Float32()
	}
	labels = make([]float32, n)
	for i := range labels {
		labels[i] = float32(rng.IntN(classes))
	}
	return images, labels
}

func specSize(spec engine.Spec, batch int) string {
	return fmt.Sprintf("%dx%dx%dx%d", batch, spec.Input[0], spec.Input[1], spec.Input[2])
}

func trainCase(spec engine.Spec, batch int) benchCase {
	return benchCase{
		suite: SuiteTrain, name: "train step adam", size: specSize(spec, batch), batch: batch,
		flops: float64(batch) * modelFlops(spec, true), images: batch,
		setup: func(b backend.Backend) (func() error, func(), error) {
			m, err := engine.New(b, spec, 1)
			if err != nil {
				return nil, nil, err
			}
			if err := m.Setup(batch); err != nil {
				m.Close()
				return nil, nil, err
			}
			opt, err := engine.NewOptimizer(b, engine.OptimizerConfig{Name: "adam"}, m.Params())
			if err != nil {
				m.Close()
				return nil, nil, err
			}
			images, labels := randomBatch(spec, batch, m.Classes())
			op := func() error {
				_, _, err := m.TrainStep(images, labels, batch, opt, 1)
				return err
			}
			return op, func() { opt.Close(); m.Close() }, nil
		},
	}
}

func inferCase(spec engine.Spec, batch int, latency bool) benchCase {
	c := benchCase{
		suite: SuiteInfer, name: "infer throughput", size: specSize(spec, batch), batch: batch,
		flops: float64(batch) * modelFlops(spec, false), images: batch, latency: latency,
	}
	if latency {
		c.name = "infer latency"
	}
	c.setup = func(b backend.Backend) (func() error, func(), error) {
		m, err := engine.New(b, spec, 1)
		if err != nil {
			return nil, nil, err
		}
		if err := m.Setup(batch); err != nil {
			m.Close()
			return nil, nil, err
		}
		images, _ := randomBatch(spec, batch, m.Classes())
		probs := make([]float32, batch*m.Classes())
		return func() error { return m.Predict(images, batch, probs) }, func() { m.Close() }, nil
	}
	return c
}
