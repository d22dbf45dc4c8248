package data

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Augmenter applies CIFAR-style training augmentation to NHWC images: a
// random horizontal flip (probability 1/2) and a random crop of the original
// size out of the image zero-padded by Pad pixels on every side. It is
// seeded and deterministic: the same seed and the same sequence of calls give
// the same output. An Augmenter is not safe for concurrent use.
type Augmenter struct {
	// H, W, C describe one image.
	H, W, C int
	// Pad is the zero padding for random crops; 0 disables cropping.
	Pad int
	// Flip enables random horizontal flips.
	Flip bool

	rng     *rand.Rand
	scratch []float32
}

// NewAugmenter returns an Augmenter for h×w×c images with the defaults used
// for CIFAR-10: Pad 4 and Flip enabled.
func NewAugmenter(h, w, c int, seed uint64) *Augmenter {
	return &Augmenter{H: h, W: w, C: c, Pad: 4, Flip: true, rng: NewRand(seed)}
}

// Apply writes an augmented copy of the image src into dst. Both must hold
// exactly H*W*C values and must not overlap. It does not allocate.
func (a *Augmenter) Apply(dst, src []float32) error {
	if err := a.check(); err != nil {
		return err
	}
	sz := a.H * a.W * a.C
	if len(dst) != sz || len(src) != sz {
		return fmt.Errorf("augmenter: len(dst)=%d len(src)=%d, want H*W*C=%d", len(dst), len(src), sz)
	}
	if a.rng == nil {
		a.rng = NewRand(0)
	}
	dy, dx := 0, 0
	if a.Pad > 0 {
		dy = a.rng.IntN(2*a.Pad+1) - a.Pad
		dx = a.rng.IntN(2*a.Pad+1) - a.Pad
	}
	flip := a.Flip && a.rng.IntN(2) == 1
	h, w, c := a.H, a.W, a.C
	for y := 0; y < h; y++ {
		sy := y + dy
		row := dst[y*w*c : (y+1)*w*c]
		if sy < 0 || sy >= h {
			clear(row)
			continue
		}
		for x := 0; x < w; x++ {
			ox := x
			if flip {
				ox = w - 1 - x
			}
			sx := x + dx
			o := row[ox*c : (ox+1)*c]
			if sx < 0 || sx >= w {
				clear(o)
				continue
			}
			copy(o, src[(sy*w+sx)*c:(sy*w+sx+1)*c])
		}
	}
	return nil
}

// ApplyBatch augments the first n images of images in place, each with its
// own random draw. It reuses an internal one-image buffer, allocated on the
// first call, so steady-state calls do not allocate.
func (a *Augmenter) ApplyBatch(images []float32, n int) error {
	if err := a.check(); err != nil {
		return err
	}
	sz := a.H * a.W * a.C
	if n < 0 || n > len(images)/sz { // not len < n*sz: n*sz can wrap
		return fmt.Errorf("augmenter: batch of %d images of %d values needs %d values, buffer holds %d", n, sz, n*sz, len(images))
	}
	if len(a.scratch) != sz {
		a.scratch = make([]float32, sz)
	}
	for i := 0; i < n; i++ {
		img := images[i*sz : (i+1)*sz]
		copy(a.scratch, img)
		if err := a.Apply(img, a.scratch); err != nil {
			return err
		}
	}
	return nil
}

// maxPad is the largest Pad for which the crop offset range 2*Pad+1 fits in
// an int.
const maxPad = (math.MaxInt - 1) / 2

// check validates the configuration before any size is computed from it.
func (a *Augmenter) check() error {
	if a.H <= 0 || a.W <= 0 || a.C <= 0 || a.Pad < 0 || a.Pad > maxPad ||
		a.W > math.MaxInt/a.H || a.C > math.MaxInt/(a.H*a.W) {
		return fmt.Errorf("augmenter: invalid config H=%d W=%d C=%d Pad=%d", a.H, a.W, a.C, a.Pad)
	}
	return nil
}
