package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	_ "github.com/kiln-ml/kiln/backend/cpu"
)

// tinyConfig runs every suite on the CPU backend with the least work.
func tinyConfig() Config {
	return Config{
		Backends: []string{"cpu"}, Quick: true, Repeat: 2, Warmup: 1,
		MinRunTime: time.Microsecond, SGEMMSizes: []int{8, 33},
		Batch: 2, InferBatch: 2, LatencyCalls: 3,
	}
}

func TestRunQuickCPU(t *testing.T) {
	var events []Progress
	cfg := tinyConfig()
	cfg.Progress = func(p Progress) { events = append(events, p) }
	rep, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	// 2 SGEMM + 2 conv layers × 4 passes (fwd, fwd-inference, bwd-data,
	// bwd-filter) + 2 pool layers × 2 + train + 2 infer.
	require.Len(t, rep.Results, 2+8+4+1+2)
	require.Len(t, events, 2*len(rep.Results))
	assert.Equal(t, len(rep.Results), events[len(events)-1].Total)
	assert.Equal(t, SchemaVersion, rep.Schema)
	assert.Greater(t, rep.Peak.GFLOPS, 0.0)
	assert.NotEmpty(t, rep.Peak.Source)
	if runtime.GOOS == "linux" {
		require.NotNil(t, rep.Load, "a Linux run reports the host's load")
		assert.Positive(t, rep.Load.CPUs)
		assert.GreaterOrEqual(t, rep.Load.OtherCPUs, 0.0)
	}

	cpu, _, err := backend.Open("cpu", backend.Options{})
	require.NoError(t, err)
	features := cpu.Device().Features
	cpu.Close()
	require.NotEmpty(t, features, "the cpu backend names its kernels")
	for _, r := range rep.Results {
		assert.Equal(t, "cpu", r.Backend, r.Key())
		assert.NotEmpty(t, r.Device, r.Key())
		assert.Equal(t, features, r.Features, r.Key())
		assert.Greater(t, r.MedianSeconds, 0.0, r.Key())
		assert.LessOrEqual(t, r.MinSeconds, r.MedianSeconds, r.Key())
		assert.GreaterOrEqual(t, r.MaxSeconds, r.MedianSeconds, r.Key())
		switch r.Suite {
		case SuiteSGEMM, SuiteConv:
			assert.Greater(t, r.GFLOPS, 0.0, r.Key())
			assert.Greater(t, r.PeakPercent, 0.0, r.Key())
		case SuitePool:
			assert.Greater(t, r.GBytesPerSecond, 0.0, r.Key())
		case SuiteTrain:
			assert.Greater(t, r.ImagesPerSecond, 0.0, r.Key())
		}
	}
	lat := rep.Results[len(rep.Results)-1]
	assert.Equal(t, "infer latency", lat.Case)
	assert.Greater(t, lat.P50Ms, 0.0)
	assert.GreaterOrEqual(t, lat.P99Ms, lat.P50Ms)
	assert.Equal(t, 3, lat.Runs)

	// JSON: stable field names, and it reads back.
	var js bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	var raw map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &raw))
	for _, k := range []string{"schema", "host", "peak", "results", "skipped"} {
		assert.Contains(t, raw, k)
	}
	first := raw["results"].([]any)[0].(map[string]any)
	for _, k := range []string{"host", "backend", "device", "case", "size", "median_seconds", "min_seconds",
		"max_seconds", "q1_seconds", "q3_seconds", "gflops", "peak_percent", "images_per_second", "p50_ms", "p99_ms"} {
		assert.Contains(t, first, k)
	}
	back, err := ReadJSON(&js)
	require.NoError(t, err)
	assert.Equal(t, rep.Results, back.Results)

	// Empty lists are written as [], not null, and the report is not
	// changed by writing it.
	empty := *rep
	empty.Skipped, empty.Results = nil, nil
	js.Reset()
	require.NoError(t, empty.WriteJSON(&js))
	assert.Contains(t, js.String(), `"skipped": []`)
	assert.Contains(t, js.String(), `"results": []`)
	assert.Nil(t, empty.Skipped)

	// Markdown: a header row and one row per result.
	var md bytes.Buffer
	require.NoError(t, rep.WriteMarkdown(&md))
	rows := 0
	for _, l := range strings.Split(md.String(), "\n") {
		if strings.HasPrefix(l, "| cpu |") {
			rows++
		}
	}
	assert.Equal(t, len(rep.Results), rows)
	assert.Contains(t, md.String(), "| backend | case | size | median |")
	assert.Contains(t, md.String(), "Devices: cpu `"+rep.Results[0].Device+"` ("+features+").")
	assert.Empty(t, rep.Interrupted)

	// PNG: decodes and is not empty.
	var pic bytes.Buffer
	require.NoError(t, rep.WritePNG(&pic))
	img, err := png.Decode(&pic)
	require.NoError(t, err)
	assert.Greater(t, img.Bounds().Dx(), 100)
	assert.Greater(t, img.Bounds().Dy(), 100)
}

func TestRunNoLeaks(t *testing.T) {
	b, _, err := backend.Open("cpu", backend.Options{})
	require.NoError(t, err)
	defer b.Close()
	cfg, err := tinyConfig().defaults()
	require.NoError(t, err)
	cases, err := plan(cfg)
	require.NoError(t, err)
	for _, c := range cases {
		_, err := measureCase(context.Background(), cfg, b, c)
		require.NoError(t, err, c.name)
	}
	assert.Zero(t, b.Stats().LiveBuffers, "every benchmark buffer is freed")
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown suite", Config{Suites: []string{"gemm"}}, `unknown suite "gemm"`},
		{"negative repeat", Config{Repeat: -1}, "repeat must not be negative"},
		{"bad size", Config{SGEMMSizes: []int{0}}, "SGEMM sizes must be positive"},
		{"negative run time", Config{MinRunTime: -time.Second}, "minimum run time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := Run(context.Background(), Config{Backends: []string{"nope"}, Suites: []string{"sgemm"}, SGEMMSizes: []int{4}})
	require.Error(t, err)
	assert.ErrorIs(t, err, backend.ErrUnavailable)
}

func TestFlopCounts(t *testing.T) {
	cfg, err := Config{Suites: []string{"sgemm", "conv", "train", "infer"}, SGEMMSizes: []int{100}}.defaults()
	require.NoError(t, err)
	cases, err := plan(cfg)
	require.NoError(t, err)
	got := map[string]float64{}
	for _, c := range cases {
		got[c.name+" "+c.size] = c.flops
	}
	conv1 := 2.0 * 32 * 26 * 26 * 64 * 9 * 1
	conv2 := 2.0 * 32 * 11 * 11 * 64 * 9 * 64
	dense1 := 2.0 * 32 * 1600 * 64
	dense2 := 2.0 * 32 * 64 * 10
	for _, tc := range []struct {
		key  string
		want float64
	}{
		{"sgemm 100x100x100", 2e6},
		{"conv1 fwd 32x28x28x1 k3x3x64", conv1},
		{"conv1 bwd-data 32x28x28x1 k3x3x64", conv1},
		{"conv2 bwd-filter 32x13x13x64 k3x3x64", conv2},
		// conv1 has no backward-data pass in training.
		{"train step adam 32x28x28x1", 2*conv1 + 3*(conv2+dense1+dense2)},
		{"infer throughput 64x28x28x1", 2 * (conv1 + conv2 + dense1 + dense2)},
	} {
		assert.InDelta(t, tc.want, got[tc.key], 0.5, tc.key)
	}
}

// TestPoolBytes: the forward pass is credited with the input its windows
// read (10 of 11 rows and columns for the reference model's second
// pooling), the backward pass with all of dx.
func TestPoolBytes(t *testing.T) {
	cfg, err := Config{Suites: []string{"pool"}}.defaults()
	require.NoError(t, err)
	cases, err := plan(cfg)
	require.NoError(t, err)
	got := map[string]float64{}
	for _, c := range cases {
		got[c.name] = c.bytes
	}
	assert.Equal(t, 4.0*(32*26*26*64+2*32*13*13*64), got["pool1 fwd"], "26 pools to 13 exactly")
	assert.Equal(t, 4.0*(32*10*10*64+2*32*5*5*64), got["pool2 fwd"])
	assert.Equal(t, 4.0*(32*11*11*64+2*32*5*5*64), got["pool2 bwd"])

	for _, tc := range []struct{ out, k, s, in, want int }{
		{5, 2, 2, 11, 10}, {13, 2, 2, 26, 26}, {4, 3, 2, 9, 9}, {3, 3, 3, 10, 9}, {0, 2, 2, 1, 0}, {6, 2, 2, 11, 11},
	} {
		assert.Equal(t, tc.want, poolCovered(tc.out, tc.k, tc.s, tc.in), "%+v", tc)
	}
}

func TestFormatSeconds(t *testing.T) {
	for _, tc := range []struct {
		s    float64
		want string
	}{
		{0, "-"}, {12.34e-6, "12.3 µs"}, {999.6e-6, "999.6 µs"}, {0.99996e-3, "1 ms"},
		{0.0125, "12.5 ms"}, {0.9994, "999 ms"}, {0.9996, "1 s"}, {142.4, "142 s"}, {1234.4, "1234 s"},
	} {
		assert.Equal(t, tc.want, FormatSeconds(tc.s), "%g", tc.s)
	}
}

func TestStats(t *testing.T) {
	s := summarize([]float64{5, 1, 4, 2, 3})
	assert.Equal(t, stats{median: 3, min: 1, max: 5, q1: 2, q3: 4}, s)
	assert.Equal(t, 2.5, summarize([]float64{4, 1, 2, 3}).median)
	samples := make([]float64, 100)
	for i := range samples {
		samples[i] = float64(100 - i)
	}
	assert.Equal(t, 50.0, percentile(samples, 50))
	assert.Equal(t, 99.0, percentile(samples, 99))
	assert.Equal(t, 7.0, percentile([]float64{7}, 99))
}

func report(results ...Result) *Report {
	return &Report{Schema: SchemaVersion, Results: results}
}

func TestCompare(t *testing.T) {
	old := report(
		Result{Backend: "cpu", Case: "sgemm", Size: "1024", Runs: 10, MedianSeconds: 0.02, MinSeconds: 0.019, MaxSeconds: 0.021},
		Result{Backend: "cpu", Case: "train", Size: "32", Runs: 10, MedianSeconds: 0.010, MinSeconds: 0.009, MaxSeconds: 0.02},
		Result{Backend: "cpu", Case: "gone", Size: "1", Runs: 10, MedianSeconds: 1},
	)
	cur := report(
		Result{Backend: "cpu", Case: "sgemm", Size: "1024", Runs: 10, MedianSeconds: 0.01, MinSeconds: 0.009, MaxSeconds: 0.011},
		Result{Backend: "cpu", Case: "train", Size: "32", Runs: 10, MedianSeconds: 0.0125, MinSeconds: 0.011, MaxSeconds: 0.013},
		Result{Backend: "opencl", Case: "sgemm", Size: "1024", Runs: 10, MedianSeconds: 1},
	)
	c := Compare(old, cur)
	require.Len(t, c.Ratios, 2)
	assert.InDelta(t, 2.0, c.Ratios[0].Speedup, 1e-12)
	assert.InDelta(t, -50.0, c.Ratios[0].DeltaPercent, 1e-9)
	assert.False(t, c.Ratios[0].Overlap)
	assert.InDelta(t, 0.8, c.Ratios[1].Speedup, 1e-12)
	assert.InDelta(t, 25.0, c.Ratios[1].DeltaPercent, 1e-9)
	assert.True(t, c.Ratios[1].Overlap)
	assert.InDelta(t, math.Sqrt(2*0.8), c.GeomeanSpeedup, 1e-12)
	assert.Equal(t, []string{"cpu gone 1"}, c.OnlyOld)
	assert.Equal(t, []string{"opencl sgemm 1024"}, c.OnlyNew)

	var md bytes.Buffer
	require.NoError(t, c.WriteMarkdown(&md))
	assert.Contains(t, md.String(), "| cpu | sgemm | 1024 | 20 ms | 10 ms | -50.0% | 2.00x |")
	assert.Contains(t, md.String(), "~ (+25.0%, ranges overlap)")
	assert.Contains(t, md.String(), "only in old: cpu gone 1")
	assert.Empty(t, c.Warnings)

	// Other CPUs, another device for a case, a case listed twice and a
	// case the new run skipped are all said.
	old.Host.CPU, cur.Host.CPU = "Xeon A", "Xeon B"
	old.Results[0].Device = "dev0"
	old.Results = append(old.Results, old.Results[1])
	cur.Skipped = []Skip{{Backend: "cpu", Case: "gone", Reason: "not implemented"}}
	c = Compare(old, cur)
	require.Len(t, c.Warnings, 3)
	assert.Contains(t, c.Warnings[0], "different CPUs (old: Xeon A; new: Xeon B)")
	assert.Contains(t, c.Warnings[1], "lists cpu train 32 2 times; its last entry is compared")
	assert.Contains(t, c.Warnings[2], "cpu sgemm 1024 ran on different devices (old: dev0; new: )")
	assert.Equal(t, []string{"cpu gone 1 (skipped in new: not implemented)"}, c.OnlyOld)
	md.Reset()
	require.NoError(t, c.WriteMarkdown(&md))
	assert.Contains(t, md.String(), "Note: the runs were on different CPUs")
}

func TestReadJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"not json", "hello", "not a kiln bench JSON report"},
		{"no schema", `{"results":[]}`, `no "schema" field`},
		{"future schema", `{"schema":99}`, "newer than this kiln"},
		{"zero median", `{"schema":1,"results":[{"backend":"cpu","case":"sgemm","median_seconds":0}]}`, "median_seconds"},
		{"no backend", `{"schema":1,"results":[{"case":"sgemm","median_seconds":1}]}`, "no backend or case"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadJSON(strings.NewReader(tc.body))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := ReadJSONFile(filepath.Join(t.TempDir(), "missing.json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestCalibrate: the repeat count comes from batches that lasted long
// enough, not from a prediction off one call, so a slow or fast outlier
// batch is corrected by the next.
func TestCalibrate(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		perOp  func(n int) time.Duration // the time a batch of n takes
		minRun time.Duration
		want   int
		sizes  []int // batch sizes timed, in order
	}{
		{"steady 1ms op", func(n int) time.Duration { return time.Duration(n) * ms }, 10 * ms, 12, []int{1, 12}},
		{"op longer than a run", func(n int) time.Duration { return time.Duration(n) * 20 * ms }, 10 * ms, 1, []int{1}},
		{"slow single call corrected", func(n int) time.Duration {
			if n == 1 {
				return 5 * ms // a GC pause, a late page fault
			}
			return time.Duration(n) * ms
		}, 10 * ms, 12, []int{1, 3, 12}},
		{"no measurable time grows 100-fold", func(n int) time.Duration {
			if n < 100 {
				return 0
			}
			return time.Duration(n) * time.Microsecond
		}, 50 * time.Microsecond, 100, []int{1, 100}},
		{"grows at least by one", func(n int) time.Duration { return time.Duration(n) * 9 * ms }, 10 * ms, 2, []int{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sizes []int
			n, err := calibrate(context.Background(), func(n int) (time.Duration, error) {
				sizes = append(sizes, n)
				return tc.perOp(n), nil
			}, tc.minRun)
			require.NoError(t, err)
			assert.Equal(t, tc.want, n)
			assert.Equal(t, tc.sizes, sizes)
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := calibrate(ctx, func(int) (time.Duration, error) { return 0, nil }, time.Second)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestMeasureCaseCalibratesOnWarmCalls: a case whose first call is slow
// (allocation, a filter transform, a first launch) still times runs of at
// least MinRunTime; calibrated on that call it ran one fast op per run.
func TestMeasureCaseCalibratesOnWarmCalls(t *testing.T) {
	b, _, err := backend.Open("cpu", backend.Options{})
	require.NoError(t, err)
	defer b.Close()
	for _, tc := range []struct {
		name       string
		first, op  time.Duration
		warmup     int
		minIters   int
		exactIters int
	}{
		{"slow first call, one warm-up (--quick)", 30 * time.Millisecond, time.Millisecond, 1, 5, 0},
		{"slow first call, two warm-ups", 30 * time.Millisecond, time.Millisecond, 2, 5, 0},
		{"op longer than a run", 12 * time.Millisecond, 12 * time.Millisecond, 1, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Config{Backends: []string{"cpu"}, Quick: true, Repeat: 3, Warmup: tc.warmup,
				MinRunTime: 10 * time.Millisecond}.defaults()
			require.NoError(t, err)
			calls := 0
			c := benchCase{suite: SuiteSGEMM, name: "fake", size: "1",
				setup: func(backend.Backend) (func() error, func(), error) {
					return func() error {
						calls++
						if calls == 1 {
							time.Sleep(tc.first)
						} else {
							time.Sleep(tc.op)
						}
						return nil
					}, func() {}, nil
				}}
			res, err := measureCase(context.Background(), cfg, b, c)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, res.ItersPerRun, tc.minIters)
			if tc.exactIters > 0 {
				assert.Equal(t, tc.exactIters, res.ItersPerRun)
			}
			// Every timed run lasted MinRunTime (half of it, for a loaded
			// machine's sleeps that overran while calibrating).
			run := time.Duration(float64(res.ItersPerRun) * res.MinSeconds * float64(time.Second))
			assert.GreaterOrEqual(t, run, cfg.MinRunTime/2, "iters %d × fastest %v", res.ItersPerRun, FormatSeconds(res.MinSeconds))
		})
	}
}

// TestRunInterruptedKeepsMeasuredCases: a run whose context ends returns
// the cases measured so far, marked, with an error that wraps the cause
// and names the case that was running.
func TestRunInterruptedKeepsMeasuredCases(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cancelAt    func(p Progress) bool
		results     int
		interrupted string
		err         string
		progress    bool // an Interrupted event closes the running case
	}{
		{
			name:        "between cases",
			cancelAt:    func(p Progress) bool { return p.Done && p.Index == 2 },
			results:     2,
			interrupted: "after 2 of 3 cases, before cpu sgemm 33x33x33",
			err:         "interrupted before case 3 of 3 (cpu sgemm 33x33x33), 2 measured before: context canceled",
		},
		{
			name:        "during a case",
			cancelAt:    func(p Progress) bool { return !p.Done && p.Index == 2 },
			results:     1,
			interrupted: "after 1 of 3 cases, during cpu sgemm 16x16x16",
			err:         "interrupted during case 2 of 3 (cpu sgemm 16x16x16), 1 measured before: context canceled",
			progress:    true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := tinyConfig()
			cfg.Suites, cfg.SGEMMSizes = []string{SuiteSGEMM}, []int{8, 16, 33}
			var events []Progress
			cfg.Progress = func(p Progress) {
				events = append(events, p)
				if tc.cancelAt(p) {
					cancel()
				}
			}
			rep, err := Run(ctx, cfg)
			require.Error(t, err)
			assert.ErrorIs(t, err, context.Canceled)
			assert.EqualError(t, err, tc.err)
			require.NotNil(t, rep, "the partial report comes back")
			assert.Len(t, rep.Results, tc.results)
			assert.Equal(t, tc.interrupted, rep.Interrupted)
			for _, r := range rep.Results {
				assert.Greater(t, r.PeakPercent, 0.0, "%s: the measured cases are complete", r.Key())
			}
			last := events[len(events)-1]
			assert.Equal(t, tc.progress, last.Interrupted)

			var md bytes.Buffer
			require.NoError(t, rep.WriteMarkdown(&md))
			assert.Contains(t, md.String(), "**Interrupted "+tc.interrupted+": only the cases measured before are listed.**")
			var js bytes.Buffer
			require.NoError(t, rep.WriteJSON(&js))
			back, err := ReadJSON(&js)
			require.NoError(t, err)
			assert.Equal(t, tc.interrupted, back.Interrupted)
		})
	}
}

// TestReportFeaturesAndLatencyRow: a result names the kernels that ran,
// in the JSON and by the device in the Markdown; the batch-1 latency row
// shows p50/p99, not images/s (as the progress line and the chart).
func TestReportFeaturesAndLatencyRow(t *testing.T) {
	rep := report(
		Result{Backend: "cpu", Device: "amd64", Features: "avx2 kernels", Case: "infer throughput", Size: "64",
			Runs: 10, MedianSeconds: 0.001, ImagesPerSecond: 64000},
		Result{Backend: "cpu", Device: "amd64", Features: "avx2 kernels", Case: "infer latency", Size: "1",
			Runs: 30, MedianSeconds: 0.0001, ImagesPerSecond: 10000, P50Ms: 0.1, P99Ms: 0.3},
		Result{Backend: "opencl", Device: "gfx1100", Case: "sgemm", Size: "64", Runs: 10, MedianSeconds: 0.001},
	)
	var md bytes.Buffer
	require.NoError(t, rep.WriteMarkdown(&md))
	assert.Contains(t, md.String(), "Devices: cpu `amd64` (avx2 kernels); opencl `gfx1100`.\n")
	assert.Contains(t, md.String(), "| cpu | infer throughput | 64 | 1 ms | -–- |  |  |  | 64000 |  |  |", "the throughput row has images/s")
	assert.Contains(t, md.String(), "| cpu | infer latency | 1 | 100.0 µs | -–- |  |  |  |  | 0.100 | 0.300 |")

	var js bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	var raw struct {
		Results []map[string]any `json:"results"`
	}
	require.NoError(t, json.Unmarshal(js.Bytes(), &raw))
	assert.Equal(t, "avx2 kernels", raw.Results[0]["features"])
	assert.NotContains(t, raw.Results[2], "features", "no features, no field")
	assert.NotContains(t, js.String(), `"interrupted"`, "a finished run has no interrupted field")
}
