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
