package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
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
