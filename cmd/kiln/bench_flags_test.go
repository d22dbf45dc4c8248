package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/bench"
)

func TestUniqueInOrder(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         []int
		want, dups []int
	}{
		{"empty", nil, nil, nil},
		{"no repeats", []int{64, 128}, []int{64, 128}, nil},
		{"repeats keep first place", []int{128, 64, 128, 64, 64, 256}, []int{128, 64, 256}, []int{128, 64}},
		{"all the same", []int{32, 32, 32}, []int{32}, []int{32}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, dups := uniqueInOrder(tc.in)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.dups, dups)
		})
	}
	s, dups := uniqueInOrder([]string{"sgemm", "conv", "sgemm"})
	assert.Equal(t, []string{"sgemm", "conv"}, s)
	assert.Equal(t, []string{"sgemm"}, dups)
}

// TestBenchDuplicateSuitesAndSizesRunOnce: a suite or SGEMM size given
// twice runs once (each ran once per copy), with a note; the JSON's
// "skipped" is a list even when empty; and a comparison with a run that
// has no case in common says so.
func TestBenchDuplicateSuitesAndSizesRunOnce(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "dup")
	code, _, stderr := kiln(t, "bench", "--backend", "cpu", "--quick", "--suite", "sgemm,sgemm",
		"--sgemm-sizes", "16,32,16, 16", "--repeat", "1", "--out", out)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "note: --suite lists sgemm more than once; it runs once")
	assert.Contains(t, stderr, "note: --sgemm-sizes lists 16 more than once; it runs once")
	assert.Contains(t, stderr, "[1/2] cpu sgemm 16x16x16")
	assert.Contains(t, stderr, "kiln bench: suites sgemm on cpu")

	raw, err := os.ReadFile(filepath.Join(out, "bench.json"))
	require.NoError(t, err)
	var rep struct {
		Suites  []string          `json:"suites"`
		Results []map[string]any  `json:"results"`
		Skipped *[]map[string]any `json:"skipped"`
	}
	require.NoError(t, json.Unmarshal(raw, &rep))
	assert.Equal(t, []string{"sgemm"}, rep.Suites)
	require.Len(t, rep.Results, 2)
	assert.Equal(t, "16x16x16", rep.Results[0]["size"])
	assert.Equal(t, "32x32x32", rep.Results[1]["size"])
	require.NotNil(t, rep.Skipped, `"skipped" is [] when nothing was skipped, not null`)
	assert.Empty(t, *rep.Skipped)

	code, stdout, stderr := kiln(t, "bench", "--backend", "cpu", "--quick", "--suite", "sgemm",
		"--sgemm-sizes", "8", "--repeat", "1", "--out", "", "--compare", filepath.Join(out, "bench.json"))
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "No case is in both runs")
	assert.Contains(t, stdout, "only in old: cpu sgemm 16x16x16")
	assert.Contains(t, stdout, "only in new: cpu sgemm 8x8x8")
}

// TestBenchCompareTooFewRuns: one run a side gives "~" with the counts,
// not a claimed change.
func TestBenchCompareTooFewRuns(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := kiln(t, "bench", "--backend", "cpu", "--quick", "--suite", "sgemm",
		"--sgemm-sizes", "16", "--repeat", "1", "--out", dir)
	require.Equal(t, 0, code, stderr)
	code, stdout, stderr := kiln(t, "bench", "--backend", "cpu", "--quick", "--suite", "sgemm",
		"--sgemm-sizes", "16", "--repeat", "1", "--out", "", "--compare", filepath.Join(dir, "bench.json"))
	require.Equal(t, 0, code, stderr)
	assert.Regexp(t, `\| cpu \| sgemm \| 16x16x16 \| [^|]+ \| [^|]+ \| ~ \([+-][0-9.]+%, too few runs: old n=1, new n=1\) \| [0-9.]+x \|`, stdout)
}

// TestBenchRepeatHelpNamesLatency: --repeat's help says the batch-1 latency
// case is not governed by it.
func TestBenchRepeatHelpNamesLatency(t *testing.T) {
	code, stdout, _ := kiln(t, "bench", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "the batch-1 latency case always times 200 single calls (30 with --quick)")
}

// TestSGEMMSizesNote: --sgemm-sizes with a --suite that leaves out sgemm
// is noted, not ignored silently.
func TestSGEMMSizesNote(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sizes  string
		suites []string
		want   string
	}{
		{"no sizes", "", []string{"pool"}, ""},
		{"blank sizes", " ", []string{"pool"}, ""},
		{"sgemm runs", "64", []string{"conv", "sgemm"}, ""},
		{"sgemm left out", "64,128", []string{"conv", "pool"}, "note: --sgemm-sizes 64,128 ignored: --suite conv,pool leaves out sgemm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, sgemmSizesNote(tc.sizes, tc.suites))
		})
	}
	interruptAfter(t, func(p bench.Progress) bool { return true }) // the note comes before the run; no case need run
	code, _, stderr := kiln(t, "bench", "--backend", "cpu", "--quick", "--suite", "pool", "--sgemm-sizes", "64", "--out", "")
	assert.Equal(t, 130, code, stderr)
	assert.Contains(t, stderr, "note: --sgemm-sizes 64 ignored: --suite pool leaves out sgemm")
}
