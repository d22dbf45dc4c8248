package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOutputsNeverOverwriteInputs: an output flag (--out, --report,
// --cpuprofile) naming the model, the spec or another output is refused
// before any work, and the file named twice is left as it was.
func TestOutputsNeverOverwriteInputs(t *testing.T) {
	dir, spec := tinyData(t, 16, 8)
	model := filepath.Join(dir, "m.kiln")
	saveTinyModel(t, model)
	link := filepath.Join(dir, "link.kiln")
	require.NoError(t, os.Symlink(model, link))
	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("secret\n"), 0o600))
	fresh := filepath.Join(dir, "fresh.kiln")

	tests := []struct {
		name string
		args []string
		want string
		kept string // the file named twice, unchanged afterwards
	}{
		{"eval report over the model", []string{"eval", "--model", model, "--data", dir, "--backend", "cpu", "--report", model},
			"--report " + model + " is also given as --model", model},
		{"eval report over the model by another spelling", []string{"eval", "--model", model, "--data", dir, "--backend", "cpu", "--report", filepath.Join(dir, ".", "m.kiln")},
			"is also given as --model", model},
		{"eval report over the model through a link", []string{"eval", "--model", model, "--data", dir, "--backend", "cpu", "--report", link},
			"--report " + link + " is also given as --model", model},
		{"eval profile over the model", []string{"eval", "--model", model, "--data", dir, "--backend", "cpu", "--cpuprofile", model},
			"--cpuprofile " + model + " is also given as --model", model},
		{"train report over the saved model", []string{"train", "--data", dir, "--model", spec, "--backend", "cpu", "--out", fresh, "--report", fresh},
			"--out " + fresh + " is also given as --report", ""},
		{"train model over its spec", []string{"train", "--data", dir, "--model", spec, "--backend", "cpu", "--out", spec},
			"--out " + spec + " is also given as --model", spec},
		{"train profile over the model", []string{"train", "--data", dir, "--model", spec, "--backend", "cpu", "--out", model, "--cpuprofile", model},
			"--out " + model + " is also given as --cpuprofile", model},
		{"predict profile over the model", []string{"predict", "--model", model, "--backend", "cpu", "--cpuprofile", model, spec},
			"--cpuprofile " + model + " is also given as --model", model},
		{"serve profile over the token", []string{"serve", "--model", model, "--backend", "cpu", "--addr", "127.0.0.1:0", "--auth-token-file", token, "--cpuprofile", token},
			"--cpuprofile " + token + " is also given as --auth-token-file", token},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before []byte
			if tc.kept != "" {
				var err error
				before, err = os.ReadFile(tc.kept)
				require.NoError(t, err)
			}
			code, out, errOut := kiln(t, tc.args...)
			assert.Equal(t, 1, code, errOut)
			assert.Contains(t, errOut, tc.want)
			assert.Empty(t, out, "refused before any work")
			if tc.kept != "" {
				after, err := os.ReadFile(tc.kept)
				require.NoError(t, err)
				assert.Equal(t, before, after, "%s is left as it was", tc.kept)
			}
			assert.NoFileExists(t, fresh)
		})
	}
}

// TestReportDirectoryCheckedFirst: a --report that cannot be written fails
// before training or evaluating, not after (losing the report of a long
// run), and before train saves a model.
func TestReportDirectoryCheckedFirst(t *testing.T) {
	dir, spec := tinyData(t, 16, 8)
	model := filepath.Join(dir, "m.kiln")
	saveTinyModel(t, model)
	out := filepath.Join(dir, "out.kiln")
	missing := filepath.Join(dir, "nope", "r.json")
	ro := unwritableDir(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"train, missing directory", []string{"train", "--data", dir, "--model", spec, "--batch", "8", "--backend", "cpu", "--out", out, "--report", missing},
			"--report: cannot save " + missing},
		{"train, report is a directory", []string{"train", "--data", dir, "--model", spec, "--batch", "8", "--backend", "cpu", "--out", out, "--report", dir},
			"--report: cannot save " + dir + ": it is a directory"},
		{"eval, missing directory", []string{"eval", "--model", model, "--data", dir, "--backend", "cpu", "--report", missing},
			"--report: cannot save " + missing},
		{"train, read-only report directory", []string{"train", "--data", dir, "--model", spec, "--batch", "8", "--backend", "cpu", "--out", out, "--report", filepath.Join(ro, "r.json")},
			"--report: cannot save " + filepath.Join(ro, "r.json") + ": cannot write in " + ro},
		{"train, read-only out directory", []string{"train", "--data", dir, "--model", spec, "--batch", "8", "--backend", "cpu", "--out", filepath.Join(ro, "m.kiln")},
			"--out: cannot save " + filepath.Join(ro, "m.kiln") + ": cannot write in " + ro},
		{"train, read-only checkpoint directory", []string{"train", "--data", dir, "--model", spec, "--batch", "8", "--backend", "cpu", "--out", out, "--checkpoint-dir", ro},
			"--checkpoint-dir: cannot write in " + ro},
		{"train, read-only profile directory", []string{"train", "--data", dir, "--model", spec, "--batch", "8", "--backend", "cpu", "--out", out, "--cpuprofile", filepath.Join(ro, "p.prof")},
			"--cpuprofile " + filepath.Join(ro, "p.prof") + ": cannot write in " + ro},
		{"eval, read-only report directory", []string{"eval", "--model", model, "--data", dir, "--backend", "cpu", "--report", filepath.Join(ro, "r.json")},
			"--report: cannot save " + filepath.Join(ro, "r.json") + ": cannot write in " + ro},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, errOut := kiln(t, tc.args...)
			assert.Equal(t, 1, code, errOut)
			assert.Contains(t, errOut, tc.want)
			assert.NotContains(t, stdout, "test accuracy", "nothing was trained or evaluated")
			assert.NotContains(t, errOut, "epoch 1/1")
			assert.NoFileExists(t, out)
		})
	}
}

// unwritableDir returns an existing directory in which no file can be
// created: a temporary directory without write permission, or, where that
// does not stop this user (root), /proc.
func unwritableDir(t *testing.T) string {
	t.Helper()
	canCreate := func(dir string) bool {
		f, err := os.CreateTemp(dir, "probe-*")
		if err != nil {
			return false
		}
		f.Close()
		os.Remove(f.Name())
		return true
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o500))
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if !canCreate(dir) {
		return dir
	}
	if st, err := os.Stat("/proc"); err == nil && st.IsDir() && !canCreate("/proc") {
		return "/proc"
	}
	t.Skip("no unwritable directory here: this user writes into a mode 0500 directory and there is no /proc")
	return ""
}
