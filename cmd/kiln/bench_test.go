package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/bench"
)

func TestBenchQuickCPUWritesReportsAndCompares(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run1")
	code, stdout, stderr := kiln(t, "bench", "--backend", "cpu", "--quick", "--sgemm-sizes", "16,32",
		"--repeat", "2", "--out", out)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "| backend | case | size | median |")
	assert.Contains(t, stdout, "| cpu | sgemm | 32x32x32 |")
	assert.Contains(t, stdout, "| cpu | train step adam | 32x28x28x1 |")
	assert.Contains(t, stderr, "[ 1/17] cpu sgemm 16x16x16", "progress names each case")

	md, err := os.ReadFile(filepath.Join(out, "bench.md"))
	require.NoError(t, err)
	assert.Equal(t, stdout, string(md))

	raw, err := os.ReadFile(filepath.Join(out, "bench.json"))
	require.NoError(t, err)
	var rep struct {
		Schema  int              `json:"schema"`
		Results []map[string]any `json:"results"`
	}
	require.NoError(t, json.Unmarshal(raw, &rep))
	assert.Equal(t, 1, rep.Schema)
	require.Len(t, rep.Results, 17) // 2 SGEMM, 2 conv layers × 4 passes, 2 pools × 2, train, 2 infer
	for _, r := range rep.Results {
		for _, k := range []string{"host", "backend", "device", "case", "size", "median_seconds",
			"gflops", "images_per_second", "p50_ms", "p99_ms"} {
			assert.Contains(t, r, k)
		}
		assert.Greater(t, r["median_seconds"].(float64), 0.0)
	}

	f, err := os.Open(filepath.Join(out, "bench.png"))
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Greater(t, img.Bounds().Dx()*img.Bounds().Dy(), 0)

	// A second, smaller run compared with the first.
	code, stdout, stderr = kiln(t, "bench", "--backend", "cpu", "--quick", "--suite", "sgemm",
		"--sgemm-sizes", "16,64", "--repeat", "2", "--out", filepath.Join(dir, "run2"),
		"--compare", filepath.Join(out, "bench.json"))
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "speedup old/new")
	assert.Regexp(t, `\| cpu \| sgemm \| 16x16x16 \| [^|]+ \| [^|]+ \| [^|]+ \| [0-9.]+x \|`, stdout)
	assert.Contains(t, stdout, "only in new: cpu sgemm 64x64x64")
	assert.Contains(t, stdout, "only in old: cpu train step adam 32x28x28x1")
}

func TestBenchBadFlags(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.json")
	require.NoError(t, os.WriteFile(garbage, []byte("not json"), 0o644))
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown backend", []string{"--backend", "tpu"}, 1, `unknown backend "tpu"`},
		{"empty backend", []string{"--backend", ","}, 1, "--backend is empty"},
		{"unknown suite", []string{"--suite", "sgemm,gemv"}, 1, `unknown suite "gemv"`},
		{"bad size", []string{"--sgemm-sizes", "12,x"}, 1, `--sgemm-sizes: "x" is not a positive integer`},
		{"zero size", []string{"--sgemm-sizes", "0"}, 1, `"0" is not a positive integer`},
		{"empty size item", []string{"--sgemm-sizes", "64,,128"}, 1, `--sgemm-sizes: item 2 of "64,,128" is empty`},
		{"trailing comma in sizes", []string{"--sgemm-sizes", "64, 128,"}, 1, `--sgemm-sizes: item 3 of "64, 128," is empty`},
		{"blank first size", []string{"--sgemm-sizes", " ,64"}, 1, `--sgemm-sizes: item 1 of " ,64" is empty`},
		{"negative repeat", []string{"--repeat", "-2"}, 1, "--repeat must not be negative"},
		{"missing compare file", []string{"--compare", filepath.Join(dir, "nope.json")}, 1, "--compare: open"},
		{"bad compare file", []string{"--compare", garbage}, 1, "not a kiln bench JSON report"},
		{"stray argument", []string{"cpu"}, 1, `unexpected argument "cpu"`},
		{"unknown flag", []string{"--fast"}, 2, "flag provided but not defined: -fast"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"bench", "--out", filepath.Join(dir, "out")}, tc.args...)
			code, _, stderr := kiln(t, args...)
			assert.Equal(t, tc.code, code, stderr)
			assert.Contains(t, stderr, tc.want)
		})
	}
	_, err := os.Stat(filepath.Join(dir, "out"))
	assert.ErrorIs(t, err, os.ErrNotExist, "a rejected run writes nothing")
}

func TestBenchCPUDeviceIsNoted(t *testing.T) {
	code, _, stderr := kiln(t, "bench", "--backend", "cpu", "--device", "3", "--quick", "--suite", "sgemm",
		"--sgemm-sizes", "16", "--repeat", "1", "--out", "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, `note: --device "3" ignored: the cpu backend has one device (all cores)`)

	code, _, stderr = kiln(t, "bench", "--backend", "cpu", "--quick", "--suite", "sgemm",
		"--sgemm-sizes", "16", "--repeat", "1", "--out", "")
	require.Equal(t, 0, code, stderr)
	assert.NotContains(t, stderr, "note: --device")
}

func TestCPUDeviceNote(t *testing.T) {
	assert.Equal(t, `note: --device "3" ignored: the cpu backend has one device (all cores)`,
		cpuDeviceNote([]string{"cpu"}, "3"))
	assert.Equal(t, `note: --device "gpu" ignored for the cpu backend: it has one device (all cores)`,
		cpuDeviceNote([]string{"all"}, "gpu"))
	assert.Equal(t, `note: --device "1" ignored for the cpu backend: it has one device (all cores)`,
		cpuDeviceNote([]string{"opencl", "cpu"}, "1"))
	assert.Empty(t, cpuDeviceNote([]string{"cpu"}, ""))
	assert.Empty(t, cpuDeviceNote([]string{"opencl", "cuda"}, "1"))
}

// TestBenchUnwritableOut: an --out directory that cannot be written fails
// before the suites run, not after.
func TestBenchUnwritableOut(t *testing.T) {
	ro := unwritableDir(t)
	code, stdout, stderr := kiln(t, "bench", "--backend", "cpu", "--suite", "sgemm", "--sgemm-sizes", "16", "--repeat", "1", "--out", ro)
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "--out: cannot write in "+ro)
	assert.NotContains(t, stdout+stderr, "sgemm 16x16x16", "nothing ran")
}

// TestBenchCompareNotOverwritten: --compare naming the bench.json that --out
// would rewrite is refused before the run (it destroyed the baseline).
func TestBenchCompareNotOverwritten(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "b1")
	code, _, stderr := kiln(t, "bench", "--backend", "cpu", "--suite", "sgemm", "--sgemm-sizes", "16", "--repeat", "1", "--out", out)
	require.Equal(t, 0, code, stderr)
	before, err := os.ReadFile(filepath.Join(out, "bench.json"))
	require.NoError(t, err)
	link := filepath.Join(dir, "baseline.json") // the same file by another name
	require.NoError(t, os.Symlink(filepath.Join(out, "bench.json"), link))
	for _, cmp := range []string{filepath.Join(out, "bench.json"), out + "/./bench.json", link} {
		code, stdout, stderr := kiln(t, "bench", "--backend", "cpu", "--suite", "sgemm", "--sgemm-sizes", "32", "--repeat", "1", "--out", out, "--compare", cmp)
		assert.Equal(t, 1, code, stderr)
		assert.Contains(t, stderr, "writing it would destroy the baseline")
		assert.NotContains(t, stdout+stderr, "sgemm 32x32x32", "nothing ran")
	}
	after, err := os.ReadFile(filepath.Join(out, "bench.json"))
	require.NoError(t, err)
	assert.Equal(t, before, after, "the baseline is untouched")
	code, _, stderr = kiln(t, "bench", "--backend", "cpu", "--suite", "sgemm", "--sgemm-sizes", "16", "--repeat", "1", "--out", out+"-new", "--compare", filepath.Join(out, "bench.json"))
	assert.Equal(t, 0, code, stderr)
}

// TestBenchBackendNotCompiledIn: naming a backend this binary lacks fails
// before any other backend runs (it aborted after them), pointing at
// --backend all.
func TestBenchBackendNotCompiledIn(t *testing.T) {
	missing := ""
	for _, b := range []string{"cuda", "opencl"} {
		if !slices.Contains(backend.Registered(), b) {
			missing = b
			break
		}
	}
	if missing == "" {
		t.Skip("this test binary has every backend compiled in (built with the cuda and opencl tags)")
	}
	code, stdout, stderr := kiln(t, "bench", "--backend", missing+",cpu", "--suite", "sgemm", "--sgemm-sizes", "16", "--repeat", "1", "--out", "")
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "--backend "+missing+": the "+missing+" backend is not compiled into this binary")
	assert.Contains(t, stderr, "--backend all runs every usable backend")
	assert.NotContains(t, stdout+stderr, "sgemm 16x16x16", "nothing ran")
}

// failingWriter fails every write, as a closed pipe does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// TestBenchStdoutFailureKeepsFiles: when stdout cannot be written (a
// closed pipe), the finished run's files are still written (they were
// written after stdout, so the run was lost) and kiln fails saying so.
func TestBenchStdoutFailureKeepsFiles(t *testing.T) {
	out := filepath.Join(t.TempDir(), "b")
	var stderr bytes.Buffer
	err := runBench([]string{"--backend", "cpu", "--quick", "--suite", "sgemm", "--sgemm-sizes", "16", "--repeat", "1", "--out", out},
		failingWriter{}, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "write the report to standard output: broken pipe (the files in "+out+" were written)")
	for _, name := range []string{"bench.md", "bench.json", "bench.png"} {
		assert.FileExists(t, filepath.Join(out, name))
	}
	rep, err := bench.ReadJSONFile(filepath.Join(out, "bench.json"))
	require.NoError(t, err)
	assert.Len(t, rep.Results, 1)
	assert.Contains(t, stderr.String(), "wrote "+filepath.Join(out, "bench.md"))
}

// interruptAfter makes kiln bench's run end as Ctrl-C does once the
// progress event stop returns true, for the rest of the test.
func interruptAfter(t *testing.T, stop func(bench.Progress) bool) {
	t.Helper()
	t.Cleanup(func() { benchRun = bench.Run })
	benchRun = func(ctx context.Context, cfg bench.Config) (*bench.Report, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		show := cfg.Progress
		cfg.Progress = func(p bench.Progress) {
			show(p)
			if stop(p) {
				cancel()
			}
		}
		return bench.Run(ctx, cfg)
	}
}

// TestBenchInterruptedReportsMeasuredCases: Ctrl-C keeps the cases
// measured before it: they are printed and written, marked as a partial
// run, the log names the case that was running, and kiln still fails.
func TestBenchInterruptedReportsMeasuredCases(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stop    func(bench.Progress) bool
		results int
		mark    string
		err     string
	}{
		{
			name:    "during the third case",
			stop:    func(p bench.Progress) bool { return !p.Done && p.Index == 3 },
			results: 2,
			mark:    "after 2 of 3 cases, during cpu sgemm 32x32x32",
			err:     "kiln bench: interrupted during case 3 of 3 (cpu sgemm 32x32x32), 2 measured before: context canceled",
		},
		{
			name:    "between cases",
			stop:    func(p bench.Progress) bool { return p.Done && p.Index == 1 },
			results: 1,
			mark:    "after 1 of 3 cases, before cpu sgemm 24x24x24",
			err:     "kiln bench: interrupted before case 2 of 3 (cpu sgemm 24x24x24), 1 measured before: context canceled",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			interruptAfter(t, tc.stop)
			out := filepath.Join(t.TempDir(), "b")
			code, stdout, stderr := kiln(t, "bench", "--backend", "cpu", "--quick", "--suite", "sgemm",
				"--sgemm-sizes", "16,24,32", "--repeat", "1", "--out", out)
			assert.Equal(t, 130, code, stderr) // as a shell reports Ctrl-C
			assert.Contains(t, stderr, tc.err)
			assert.Contains(t, stderr, "kiln bench: interrupted "+tc.mark+"; reporting the")
			assert.Contains(t, stdout, "**Interrupted "+tc.mark+": only the cases measured before are listed.**")
			assert.Contains(t, stdout, "| cpu | sgemm | 16x16x16 |")
			assert.NotContains(t, stdout, "| cpu | sgemm | 32x32x32 |")

			md, err := os.ReadFile(filepath.Join(out, "bench.md"))
			require.NoError(t, err)
			assert.Equal(t, stdout, string(md))
			rep, err := bench.ReadJSONFile(filepath.Join(out, "bench.json"))
			require.NoError(t, err)
			assert.Len(t, rep.Results, tc.results)
			assert.Equal(t, tc.mark, rep.Interrupted)
			assert.FileExists(t, filepath.Join(out, "bench.png"))
		})
	}
}

// TestBenchInterruptedFirstCaseWritesNothing: Ctrl-C before any case
// finished writes no empty report over the last run's.
func TestBenchInterruptedFirstCaseWritesNothing(t *testing.T) {
	interruptAfter(t, func(p bench.Progress) bool { return !p.Done && p.Index == 1 })
	out := filepath.Join(t.TempDir(), "b")
	code, stdout, stderr := kiln(t, "bench", "--backend", "cpu", "--quick", "--suite", "sgemm",
		"--sgemm-sizes", "16", "--repeat", "1", "--out", out)
	assert.Equal(t, 130, code, stderr)
	assert.Contains(t, stderr, "[1/1] cpu sgemm 16x16x16: interrupted", "a log that is not a terminal names the case too")
	assert.Contains(t, stderr, "interrupted during case 1 of 1 (cpu sgemm 16x16x16), 0 measured before: context canceled; no case finished, so no report was written")
	assert.Empty(t, stdout)
	assert.NoFileExists(t, filepath.Join(out, "bench.json"))
}
