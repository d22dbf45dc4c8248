package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestResumeOfAnotherRun: --resume continues only the run that wrote the
// checkpoint; another --limit, optimizer or dataset is named, not trained on.
func TestResumeOfAnotherRun(t *testing.T) {
	dir := t.TempDir()
	writeIDXDataset(t, dir, 64, 16)
	other := t.TempDir()
	writeIDXDataset(t, other, 48, 16)
	spec := filepath.Join(dir, "spec.json")
	require.NoError(t, os.WriteFile(spec, []byte(smallSpecJSON), 0o644))
	ck := filepath.Join(dir, "ck")
	base := []string{"train", "--model", spec, "--batch", "16", "--backend", "cpu", "--checkpoint-dir", ck, "--out", filepath.Join(dir, "m.kiln")}
	code, _, errOut := kiln(t, append(base, "--data", dir, "--epochs", "1")...)
	require.Equal(t, 0, code, errOut)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"limit", []string{"--data", dir, "--limit", "32"}, "(64 images) there"},
		{"optimizer", []string{"--data", dir, "--optimizer", "sgd"}, "optimizer adam there, sgd here"},
		{"dataset", []string{"--data", other}, "(48 images) here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := kiln(t, append(append(base, "--resume", "--epochs", "2"), tc.args...)...)
			assert.Equal(t, 1, code, errOut)
			assert.Contains(t, errOut, "was written by a different run")
			assert.Contains(t, errOut, tc.want)
		})
	}
	code, _, errOut = kiln(t, append(base, "--data", dir, "--resume", "--epochs", "2")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "1 of 2 epochs done")
}

func TestCheckpointDirCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	code, _, errOut := kiln(t, "train", "--data", filepath.Join(dir, "no-such-data"), "--checkpoint-dir", filepath.Join(file, "ck"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "--checkpoint-dir: mkdir "+file+": not a directory")
	assert.NotContains(t, errOut, "no-such-data", "refused before the data is read")
}
