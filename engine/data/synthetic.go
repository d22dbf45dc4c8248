package data

import "fmt"

// Synthetic returns a learnable dataset of n images of h×w×c with the given
// number of classes: each class has a fixed random prototype image and every
// example is its class prototype plus Gaussian noise (σ=0.15), clamped to
// [0,1]. Labels cycle through the classes and are then shuffled. The same
// arguments always give the same data. Non-positive sizes are treated as 1
// (n may be 0).
func Synthetic(n, h, w, c, classes int, seed uint64) *Dataset {
	n = max(n, 0)
	h, w, c, classes = max(h, 1), max(w, 1), max(c, 1), max(classes, 1)
	rng := NewRand(seed)
	sz := h * w * c
	protos := make([]float32, classes*sz)
	for i := range protos {
		protos[i] = rng.Float32()
	}
	ds := &Dataset{
		Name: fmt.Sprintf("synthetic-%dx%dx%dx%d-c%d", n, h, w, c, classes),
		N:    n, H: h, W: w, C: c,
		Images:  make([]float32, n*sz),
		Labels:  make([]int32, n),
		Classes: classes,
	}
	for i := range ds.Labels {
		ds.Labels[i] = int32(i % classes)
	}
	for i := n - 1; i > 0; i-- {
		j := rng.IntN(i + 1)
		ds.Labels[i], ds.Labels[j] = ds.Labels[j], ds.Labels[i]
	}
	for i := 0; i < n; i++ {
		p := protos[int(ds.Labels[i])*sz : (int(ds.Labels[i])+1)*sz]
		img := ds.Images[i*sz : (i+1)*sz]
		for k := range img {
			v := p[k] + 0.15*float32(rng.NormFloat64())
			img[k] = min(max(v, 0), 1)
		}
	}
	ds.ClassNames = make([]string, classes)
	for k := range ds.ClassNames {
		ds.ClassNames[k] = fmt.Sprintf("class%d", k)
	}
	return ds
}
