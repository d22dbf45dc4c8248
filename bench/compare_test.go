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
