package data

import (
	"fmt"
	"math/rand/v2"
)

// Permutation returns a random permutation of [0,n) drawn from rng.
func Permutation(n int, rng *rand.Rand) []int {
	p := make([]int, max(n, 0))
	for i := range p {
		p[i] = i
	}
	shuffle(p, rng)
	return p
}

func shuffle(p []int, rng *rand.Rand) {
	for i := len(p) - 1; i > 0; i-- {
		j := rng.IntN(i + 1)
		p[i], p[j] = p[j], p[i]
	}
}

// Shuffler produces a fresh seeded permutation of [0,n) for every epoch,
// reusing one slice so that epochs after the first allocate nothing.
type Shuffler struct {
	rng  *rand.Rand
	perm []int
}

// NewShuffler returns a Shuffler over n examples seeded with seed.
func NewShuffler(n int, seed uint64) *Shuffler {
	p := make([]int, max(n, 0))
	for i := range p {
		p[i] = i
	}
	return &Shuffler{rng: NewRand(seed), perm: p}
}

// Next reshuffles and returns the epoch order. The slice is owned by the
// Shuffler and is overwritten by the next call.
func (s *Shuffler) Next() []int {
	shuffle(s.perm, s.rng)
	return s.perm
}

// Batch copies the examples at idx into caller-owned buffers: images
// receives len(idx) images in NHWC order and labels their class indices as
// float32 (the form the backend's loss ops take). images must hold at least
// len(idx)*H*W*C values and labels at least len(idx). It never allocates.
func Batch(ds *Dataset, idx []int, images, labels []float32) error {
	sz := ds.ImageSize()
	if len(images) < len(idx)*sz {
		return fmt.Errorf("batch of %d from %q: images buffer holds %d values, need %d", len(idx), ds.Name, len(images), len(idx)*sz)
	}
	if len(labels) < len(idx) {
		return fmt.Errorf("batch of %d from %q: labels buffer holds %d values, need %d", len(idx), ds.Name, len(labels), len(idx))
	}
	for j, i := range idx {
		if i < 0 || i >= ds.N {
			return fmt.Errorf("batch from %q: index %d outside [0,%d)", ds.Name, i, ds.N)
		}
		copy(images[j*sz:(j+1)*sz], ds.Images[i*sz:(i+1)*sz])
		labels[j] = float32(ds.Labels[i])
	}
	return nil
}
