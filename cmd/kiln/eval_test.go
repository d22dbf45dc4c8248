package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEvalHelpSaysItsDataDefault: eval's --data defaults to the model's
// training set, and its help must not claim mnist.
func TestEvalHelpSaysItsDataDefault(t *testing.T) {
	code, out, _ := kiln(t, "eval", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "default: the built-in dataset the model was trained on; a model trained on a directory needs --data")
	assert.NotContains(t, out, `(default "mnist")`)
}

// TestEvalDirectoryModelNeedsData: a model trained on a directory of files
// is not evaluated on mnist by default (a silent guess that scored an
// MNIST-shaped Fashion-MNIST model 0.15): eval asks for --data.
func TestEvalDirectoryModelNeedsData(t *testing.T) {
	dir, spec := tinyData(t, 16, 8)
	model := filepath.Join(t.TempDir(), "m.kiln")
	code, _, errOut := kiln(t, "train", "--data", dir, "--model", spec, "--batch", "8", "--backend", "cpu", "--out", model)
	require.Equal(t, 0, code, errOut)
	code, stdout, errOut := kiln(t, "eval", "--model", model, "--backend", "cpu")
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, "not a built-in dataset: give --data")
	assert.NotContains(t, stdout, "test accuracy")
	code, stdout, errOut = kiln(t, "eval", "--model", model, "--backend", "cpu", "--data", dir)
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, stdout, "test accuracy")

	// a directory named like a built-in dataset is not taken for it
	named := filepath.Join(t.TempDir(), "mnist")
	require.NoError(t, os.Mkdir(named, 0o755))
	writeIDXDataset(t, named, 16, 8)
	code, _, errOut = kiln(t, "train", "--data", named, "--model", spec, "--batch", "8", "--backend", "cpu", "--out", model)
	require.Equal(t, 0, code, errOut)
	code, stdout, errOut = kiln(t, "eval", "--model", model, "--backend", "cpu")
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, `the model was trained on "./mnist/train", not a built-in dataset: give --data`)
	assert.NotContains(t, stdout, "test accuracy")
}
