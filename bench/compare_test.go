package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// timed is a result of backend/case/size with n runs whose median is med
// and whose min–max range is med ± 1 %.
func timed(backend, name, size string, n int, med float64) Result {
	return Result{Backend: backend, Case: name, Size: size, Runs: n,
		MedianSeconds: med, MinSeconds: 0.99 * med, MaxSeconds: 1.01 * med}
}

// TestCompareDuplicates: a case listed more than once on either side is
// compared once, counted once in the geomean and warned about once.
func TestCompareDuplicates(t *testing.T) {
	for _, tc := range []struct {
		name      string
		old, cur  []Result
		ratios    int
		geomean   float64
		warnings  []string
		onlyOld   []string
		onlyNew   []string
		notInWarn string
	}{
		{
			name:    "new side twice",
			old:     []Result{timed("cpu", "sgemm", "64", 10, 2), timed("cpu", "sgemm", "128", 10, 1)},
			cur:     []Result{timed("cpu", "sgemm", "64", 10, 1), timed("cpu", "sgemm", "64", 10, 1), timed("cpu", "sgemm", "128", 10, 1)},
			ratios:  2,
			geomean: math.Sqrt(2 * 1),
			warnings: []string{
				"the new report lists cpu sgemm 64 2 times; its last entry is compared",
			},
		},
		{
			name:    "old side three times",
			old:     []Result{timed("cpu", "sgemm", "64", 10, 2), timed("cpu", "sgemm", "64", 10, 2), timed("cpu", "sgemm", "64", 10, 4)},
			cur:     []Result{timed("cpu", "sgemm", "64", 10, 1)},
			ratios:  1,
			geomean: 4,
			warnings: []string{
				"the old report lists cpu sgemm 64 3 times; its last entry is compared",
			},
		},
		{
			name:    "both sides, and only-in lists once",
			old:     []Result{timed("cpu", "a", "1", 10, 1), timed("cpu", "a", "1", 10, 1), timed("cpu", "gone", "1", 10, 1), timed("cpu", "gone", "1", 10, 1)},
			cur:     []Result{timed("cpu", "a", "1", 10, 1), timed("cpu", "a", "1", 10, 1), timed("cpu", "new", "1", 10, 1), timed("cpu", "new", "1", 10, 1)},
			ratios:  1,
			geomean: 1,
			warnings: []string{
				"the old report lists cpu a 1 2 times; its last entry is compared",
				"the old report lists cpu gone 1 2 times; its last entry is compared",
				"the new report lists cpu a 1 2 times; its last entry is compared",
				"the new report lists cpu new 1 2 times; its last entry is compared",
			},
			onlyOld: []string{"cpu gone 1"},
			onlyNew: []string{"cpu new 1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Compare(report(tc.old...), report(tc.cur...))
			assert.Len(t, c.Ratios, tc.ratios)
			assert.InDelta(t, tc.geomean, c.GeomeanSpeedup, 1e-12)
			assert.Equal(t, tc.warnings, c.Warnings)
			assert.Equal(t, tc.onlyOld, c.OnlyOld)
			assert.Equal(t, tc.onlyNew, c.OnlyNew)
		})
	}
}

// TestCompareTooFewRuns: with fewer than MinRuns runs on either side a
// change is shown as "~" with the counts, whatever the ranges; the ratio
// is still given.
func TestCompareTooFewRuns(t *testing.T) {
	for _, tc := range []struct {
		name           string
		oldRuns, nRuns int
		tooFew         bool
		note           string
	}{
		{"one run each", 1, 1, true, "~ (-50.0%, too few runs: old n=1, new n=1)"},
		{"two old runs", 2, 10, true, "~ (-50.0%, too few runs: old n=2, new n=10)"},
		{"two new runs", 10, 2, true, "~ (-50.0%, too few runs: old n=10, new n=2)"},
		{"unknown run count", 0, 10, true, "~ (-50.0%, too few runs: old n=0, new n=10)"},
		{"three each", 3, 3, false, "| -50.0% |"},
		{"ten each", 10, 10, false, "| -50.0% |"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Disjoint ranges: only the run counts decide.
			c := Compare(report(timed("cpu", "sgemm", "64", tc.oldRuns, 0.02)), report(timed("cpu", "sgemm", "64", tc.nRuns, 0.01)))
			require.Len(t, c.Ratios, 1)
			r := c.Ratios[0]
			assert.Equal(t, tc.tooFew, r.TooFewRuns)
			assert.False(t, r.Overlap)
			assert.Equal(t, tc.tooFew, r.Noise())
			assert.Equal(t, tc.oldRuns, r.OldRuns)
			assert.Equal(t, tc.nRuns, r.NewRuns)
			var md bytes.Buffer
			require.NoError(t, c.WriteMarkdown(&md))
			assert.Contains(t, md.String(), tc.note)
			assert.Contains(t, md.String(), "| 2.00x |", "the ratio column stays")
		})
	}
}

// TestCompareSkippedReasons: a case only in one run says why the other
// skipped it, whether the case or its whole backend was skipped.
func TestCompareSkippedReasons(t *testing.T) {
	old := report(timed("cpu", "sgemm", "64", 10, 1), timed("opencl", "sgemm", "64", 10, 1), timed("opencl", "conv fwd", "2", 10, 1))
	old.Skipped = []Skip{{Backend: "cuda", Reason: "no CUDA driver"}}
	cur := report(timed("cpu", "sgemm", "64", 10, 1), timed("cuda", "sgemm", "64", 10, 1))
	cur.Skipped = []Skip{
		{Backend: "opencl", Reason: "no OpenCL platform found"},
		{Backend: "opencl", Case: "conv fwd", Reason: "not implemented"}, // the case's own reason wins
	}
	c := Compare(old, cur)
	assert.Equal(t, []string{
		"opencl sgemm 64 (skipped in new: the opencl backend: no OpenCL platform found)",
		"opencl conv fwd 2 (skipped in new: not implemented)",
	}, c.OnlyOld)
	assert.Equal(t, []string{"cuda sgemm 64 (skipped in old: the cuda backend: no CUDA driver)"}, c.OnlyNew)
	var md bytes.Buffer
	require.NoError(t, c.WriteMarkdown(&md))
	assert.Contains(t, md.String(), "only in old: opencl sgemm 64 (skipped in new: the opencl backend: no OpenCL platform found)")
}

// TestCompareNothingInCommon: two runs without a common case say so
// instead of printing an empty table.
func TestCompareNothingInCommon(t *testing.T) {
	c := Compare(report(timed("cpu", "sgemm", "64", 10, 1)), report(timed("cpu", "sgemm", "128", 10, 1)))
	assert.Empty(t, c.Ratios)
	var md bytes.Buffer
	require.NoError(t, c.WriteMarkdown(&md))
	assert.Contains(t, md.String(), "No case is in both runs")
	assert.NotContains(t, md.String(), "| backend |")
	assert.Contains(t, md.String(), "only in old: cpu sgemm 64")
	assert.Contains(t, md.String(), "only in new: cpu sgemm 128")
	assert.Equal(t, 1, strings.Count(md.String(), "No case is in both runs"))
}

// latencyResult is a batch-1 latency row summarised from n single calls
// around med with a long tail: the two slowest calls take 5 and 9 times
// the median, as a preemption or a page fault makes them.
func latencyResult(n int, med float64) Result {
	samples := make([]float64, n)
	for i := range samples {
		samples[i] = med * (0.9 + 0.2*float64(i)/float64(n-1))
	}
	samples[n-2], samples[n-1] = 5*med, 9*med
	st := summarize(samples)
	return Result{Backend: "cpu", Suite: SuiteInfer, Case: "infer latency", Size: "1x28x28x1", Runs: n,
		MedianSeconds: st.median, MinSeconds: st.min, MaxSeconds: st.max, Q1Seconds: st.q1, Q3Seconds: st.q3,
		P50Ms: 1e3 * percentile(samples, 50), P99Ms: 1e3 * percentile(samples, 99)}
}

// scaled is r with every time multiplied by f.
func scaled(r Result, f float64) Result {
	r.MedianSeconds *= f
	r.MinSeconds *= f
	r.MaxSeconds *= f
	r.Q1Seconds *= f
	r.Q3Seconds *= f
	r.P50Ms *= f
	r.P99Ms *= f
	return r
}

// TestCompareManyRunsUseIQR: the latency row's extremes are single calls
// out of 30 or 200, so its min–max ranges overlap even across a 2×
// regression; from IQRMinRuns runs a side the interquartile ranges decide.
// Ten-run rows keep min–max.
func TestCompareManyRunsUseIQR(t *testing.T) {
	for _, tc := range []struct {
		name   string
		runs   int
		factor float64
		spread string
		noise  bool
		note   string
	}{
		{"quick latency 2x slower", 30, 2, SpreadIQR, false, "| +100.0% |"},
		{"latency 2x slower", 200, 2, SpreadIQR, false, "| +100.0% |"},
		{"latency 2x faster", 200, 0.5, SpreadIQR, false, "| -50.0% |"},
		{"latency unchanged", 200, 1, SpreadIQR, true, "~ (+0.0%, interquartile ranges overlap)"},
		{"latency 5% slower", 30, 1.05, SpreadIQR, true, "~ (+5.0%, interquartile ranges overlap)"},
		{"ten runs keep min–max", 10, 2, SpreadMinMax, true, "~ (+100.0%, ranges overlap)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := latencyResult(tc.runs, 1e-4)
			c := Compare(report(old), report(scaled(old, tc.factor)))
			require.Len(t, c.Ratios, 1)
			r := c.Ratios[0]
			assert.Equal(t, tc.spread, r.Spread)
			assert.Equal(t, tc.noise, r.Noise())
			var md bytes.Buffer
			require.NoError(t, c.WriteMarkdown(&md))
			assert.Contains(t, md.String(), tc.note)
			assert.Equal(t, tc.spread == SpreadIQR, strings.Contains(md.String(), "interquartile ranges (Q1–Q3) where both sides have 30 runs or more"),
				"the note on the criterion is there when a row used the IQR")
		})
	}
	// One side with few runs: min–max, as the fewer runs decide.
	c := Compare(report(latencyResult(200, 1e-4)), report(scaled(latencyResult(10, 1e-4), 2)))
	assert.Equal(t, SpreadMinMax, c.Ratios[0].Spread)
}

// TestCompareWarnings: Compare says when the two runs are not comparable
// as they stand: other kernels, a quick run against a full one, an old
// report from before the fwd-inference rows, an interrupted run.
func TestCompareWarnings(t *testing.T) {
	feat := func(r Result, f string) Result { r.Features = f; return r }
	conv := func(pass string) Result {
		r := timed("cpu", "conv2 "+pass, "32x13x13x64 k3x3x64", 10, 1)
		r.Suite = SuiteConv
		return r
	}
	for _, tc := range []struct {
		name     string
		old, cur *Report
		want     []string
	}{
		{
			name: "same kernels",
			old:  report(feat(timed("cpu", "sgemm", "64", 10, 1), "avx2 kernels")),
			cur:  report(feat(timed("cpu", "sgemm", "64", 10, 1), "avx2 kernels")),
		},
		{
			name: "other kernels, said once per backend",
			old:  report(feat(timed("cpu", "sgemm", "64", 10, 1), "avx512 kernels"), feat(timed("cpu", "sgemm", "128", 10, 1), "avx512 kernels")),
			cur:  report(feat(timed("cpu", "sgemm", "64", 10, 1), "avx2 kernels"), feat(timed("cpu", "sgemm", "128", 10, 1), "avx2 kernels")),
			want: []string{"the cpu backend ran other code paths in 2 cases (old: avx512 kernels; new: avx2 kernels): the ratios compare those as well as the change"},
		},
		{
			name: "old report without features",
			old:  report(timed("cpu", "sgemm", "64", 10, 1)),
			cur:  report(feat(timed("cpu", "sgemm", "64", 10, 1), "generic kernels")),
		},
		{
			name: "quick against full",
			old:  &Report{Schema: SchemaVersion, Quick: true, Results: []Result{timed("cpu", "sgemm", "64", 3, 1)}},
			cur:  report(timed("cpu", "sgemm", "64", 10, 1)),
			want: []string{"one run is --quick and the other is not (old: --quick; new: full): quick runs are fewer and shorter, after fewer warm-ups, so the ratios mix the change with the mode"},
		},
		{
			name: "old report from before fwd-inference",
			old:  report(conv("fwd"), conv("bwd-data")),
			cur:  report(conv("fwd"), conv("fwd-inference"), conv("bwd-data")),
			want: []string{"the old report has conv fwd rows but no fwd-inference rows: it predates them, and its fwd rows timed the inference path; compare its fwd rows with the new fwd-inference rows, not the new fwd rows (the training path)"},
		},
		{
			name: "both with fwd-inference",
			old:  report(conv("fwd"), conv("fwd-inference")),
			cur:  report(conv("fwd"), conv("fwd-inference")),
		},
		{
			name: "neither with conv",
			old:  report(timed("cpu", "sgemm", "64", 10, 1)),
			cur:  report(timed("cpu", "sgemm", "64", 10, 1)),
		},
		{
			name: "interrupted new run",
			old:  report(timed("cpu", "sgemm", "64", 10, 1)),
			cur:  &Report{Schema: SchemaVersion, Interrupted: "after 1 of 3 cases, during cpu sgemm 128", Results: []Result{timed("cpu", "sgemm", "64", 10, 1)}},
			want: []string{"the new run was interrupted (after 1 of 3 cases, during cpu sgemm 128): it has only the cases measured before"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Compare(tc.old, tc.cur)
			assert.Equal(t, tc.want, c.Warnings)
			var md bytes.Buffer
			require.NoError(t, c.WriteMarkdown(&md))
			for _, w := range tc.want {
				assert.Contains(t, md.String(), "Note: "+w+".")
			}
		})
	}
}
