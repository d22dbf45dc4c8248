package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestFlat: an image of one colour is flat in any number of channels (pure
// red too); one value off by more than 1/255 in any channel is not.
func TestFlat(t *testing.T) {
	tests := []struct {
		name string
		x    []float32
		c    int
		want bool
	}{
		{"black gray", []float32{0, 0, 0, 0}, 1, true},
		{"gray within 1/255", []float32{0.5, 0.5 + 0.5/255, 0.5}, 1, true},
		{"gray stroke", []float32{0, 0, 1, 0}, 1, false},
		{"pure red", []float32{1, 0, 0, 1, 0, 0, 1, 0, 0}, 3, true},
		{"red with a green pixel", []float32{1, 0, 0, 0, 1, 0, 1, 0, 0}, 3, false},
		{"one channel off", []float32{1, 0, 0, 1, 0, 0.1}, 3, false},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, flat(tc.x, tc.c), tc.name)
	}
}
