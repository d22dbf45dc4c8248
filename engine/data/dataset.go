// Package data loads and prepares the datasets kiln trains on: MNIST and
// Fashion-MNIST (IDX files), CIFAR-10 (the binary version) and a synthetic,
// learnable dataset for fast tests. It also provides the training-time helpers
// that feed a backend: seeded shuffling, batching into caller-owned buffers,
// CIFAR-style augmentation, and decoding PNG/JPEG files for prediction.
//
// Every image is stored as float32 in NHWC order, scaled from bytes to [0,1]
// by 1/255, matching the Keras reference models. All randomness comes from an
// explicit seed (math/rand/v2 PCG); the package has no global mutable state.
//
// Note on MNIST-style data: MNIST and Fashion-MNIST images are light
// foreground on a black (0) background. Nothing in this package inverts
// images automatically; a dark-on-light photo of a digit must be inverted by
// the caller (1-x) before it looks like MNIST.
package data

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Dataset is an in-memory labelled image dataset in NHWC layout.
type Dataset struct {
	// Name describes the dataset and split, e.g. "mnist/train".
	Name string
	// N is the number of examples; H, W, C the height, width and channels
	// of each image.
	N, H, W, C int
	// Images holds N*H*W*C values in NHWC order, already scaled to [0,1].
	Images []float32
	// Labels holds N class indices in [0, Classes).
	Labels []int32
	// Classes is the number of classes.
	Classes int
	// ClassNames holds a human-readable name per class (len == Classes when set).
	ClassNames []string
}

// ImageSize returns the number of float32 values in one image (H*W*C).
func (d *Dataset) ImageSize() int { return d.H * d.W * d.C }

// Image returns the i-th image as a slice sharing the dataset's memory, or
// nil when i is out of range.
func (d *Dataset) Image(i int) []float32 {
	if i < 0 || i >= d.N {
		return nil
	}
	sz := d.ImageSize()
	return d.Images[i*sz : (i+1)*sz : (i+1)*sz]
}

// Validate checks that the dataset's fields are consistent: non-negative
// shape, slice lengths matching N*H*W*C and N, and labels in [0, Classes).
func (d *Dataset) Validate() error {
	if d == nil {
		return errors.New("dataset is nil")
	}
	if d.N < 0 || d.H <= 0 || d.W <= 0 || d.C <= 0 {
		return fmt.Errorf("dataset %q: invalid shape N=%d H=%d W=%d C=%d", d.Name, d.N, d.H, d.W, d.C)
	}
	if d.Classes <= 0 {
		return fmt.Errorf("dataset %q: Classes=%d, want > 0", d.Name, d.Classes)
	}
	if want := d.N * d.ImageSize(); len(d.Images) != want {
		return fmt.Errorf("dataset %q: len(Images)=%d, want N*H*W*C=%d", d.Name, len(d.Images), want)
	}
	if len(d.Labels) != d.N {
		return fmt.Errorf("dataset %q: len(Labels)=%d, want N=%d", d.Name, len(d.Labels), d.N)
	}
	if len(d.ClassNames) != 0 && len(d.ClassNames) != d.Classes {
		return fmt.Errorf("dataset %q: %d class names for %d classes", d.Name, len(d.ClassNames), d.Classes)
	}
	for i, l := range d.Labels {
		if l < 0 || int(l) >= d.Classes {
			return fmt.Errorf("dataset %q: label %d of example %d is outside [0,%d)", d.Name, l, i, d.Classes)
		}
	}
	return nil
}

// Subset returns the first n examples (n is clamped to [0, N]). The result
// shares Images and Labels memory with d.
func (d *Dataset) Subset(n int) *Dataset {
	n = max(0, min(n, d.N))
	sz := d.ImageSize()
	out := *d
	out.N = n
	out.Images = d.Images[: n*sz : n*sz]
	out.Labels = d.Labels[:n:n]
	return &out
}

// Select returns a new dataset holding copies of the examples at idx, in
// that order.
func (d *Dataset) Select(idx []int) (*Dataset, error) {
	sz := d.ImageSize()
	out := *d
	out.N = len(idx)
	out.Images = make([]float32, len(idx)*sz)
	out.Labels = make([]int32, len(idx))
	for j, i := range idx {
		if i < 0 || i >= d.N {
			return nil, fmt.Errorf("dataset %q: select index %d outside [0,%d)", d.Name, i, d.N)
		}
		copy(out.Images[j*sz:(j+1)*sz], d.Images[i*sz:(i+1)*sz])
		out.Labels[j] = d.Labels[i]
	}
	return &out, nil
}

// Split shuffles the examples with the given seed and splits them into a
// training part and a validation part holding round(valFrac*N) examples.
// valFrac must lie in [0,1); with 0 the validation set is empty. Both
// results are copies; d is not modified.
func (d *Dataset) Split(valFrac float64, seed uint64) (train, val *Dataset, err error) {
	if !(valFrac >= 0 && valFrac < 1) { // also rejects NaN
		return nil, nil, fmt.Errorf("dataset %q: validation fraction %v outside [0,1)", d.Name, valFrac)
	}
	perm := Permutation(d.N, NewRand(seed))
	nVal := int(valFrac*float64(d.N) + 0.5)
	if nVal >= d.N && d.N > 0 {
		nVal = d.N - 1 // keep at least one training example
	}
	if val, err = d.Select(perm[:nVal]); err != nil {
		return nil, nil, err
	}
	if train, err = d.Select(perm[nVal:]); err != nil {
		return nil, nil, err
	}
	train.Name, val.Name = d.Name+"[train-split]", d.Name+"[val-split]"
	return train, val, nil
}

// streamPCG is the fixed PCG stream selector combined with user seeds.
const streamPCG = 0x9e3779b97f4a7c15

// NewRand returns a deterministic random source for seed (PCG).
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^streamPCG))
}
