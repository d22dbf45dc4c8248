package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestEvalHelpSaysItsDataDefault: eval's --data defaults to the model's
// training set, and its help must not claim mnist.
func TestEvalHelpSaysItsDataDefault(t *testing.T) {
	code, out, _ := kiln(t, "eval", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "default: the built-in dataset the model was trained on, else mnist")
	assert.NotContains(t, out, `(default "mnist")`)
}
