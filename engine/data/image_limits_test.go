package data

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// toFloatAt is toFloat as it was before it read the pixel slices of the
// decoders' image types: img.At(x, y).RGBA() for every pixel, except for
// *image.Gray to one channel. toFloat must give exactly its values.
func toFloatAt(img image.Image, c int, invert bool) []float32 {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	out := make([]float32, sw*sh*c)
	if g, ok := img.(*image.Gray); ok && c == 1 {
		for y := 0; y < sh; y++ {
			row := g.Pix[y*g.Stride : y*g.Stride+sw]
			scaleBytes(out[y*sw:(y+1)*sw], row)
		}
		if invert {
			for i, v := range out {
				out[i] = 1 - v
			}
		}
		return out
	}
	const inv = 1.0 / 65535
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			if invert {
				r, g, bl = a-r, a-g, a-bl
			}
			if c == 1 {
				lum := (19595*r + 38470*g + 7471*bl + 1<<15) >> 16
				out[i] = float32(float64(lum) * inv)
				i++
				continue
			}
			out[i] = float32(float64(r) * inv)
			out[i+1] = float32(float64(g) * inv)
			out[i+2] = float32(float64(bl) * inv)
			i += 3
		}
	}
	return out
}

// randomImages returns images of every type toFloat reads directly (and
// one it does not), w×h, filled with random bytes: alpha values included,
// so the non-premultiplied types hold every mix of colour and coverage,
// and, for the premultiplied ones, colours above their alpha (invalid, but
// a file can say so and the conversion must still agree).
func randomImages(rng *rand.Rand, w, h int) map[string]image.Image {
	r := image.Rect(0, 0, w, h)
	fill := func(b []byte) {
		for i := range b {
			switch rng.IntN(8) {
			case 0:
				b[i] = 0
			case 1:
				b[i] = 255
			default:
				b[i] = byte(rng.UintN(256))
			}
		}
	}
	imgs := map[string]image.Image{}
	gray := image.NewGray(r)
	fill(gray.Pix)
	imgs["Gray"] = gray
	gray16 := image.NewGray16(r)
	fill(gray16.Pix)
	imgs["Gray16"] = gray16
	rgba := image.NewRGBA(r)
	fill(rgba.Pix)
	imgs["RGBA"] = rgba
	nrgba := image.NewNRGBA(r)
	fill(nrgba.Pix)
	imgs["NRGBA"] = nrgba
	rgba64 := image.NewRGBA64(r)
	fill(rgba64.Pix)
	imgs["RGBA64"] = rgba64
	nrgba64 := image.NewNRGBA64(r)
	fill(nrgba64.Pix)
	imgs["NRGBA64"] = nrgba64
	cmyk := image.NewCMYK(r)
	fill(cmyk.Pix)
	imgs["CMYK"] = cmyk
	alpha := image.NewAlpha(r) // not read directly: the At path
	fill(alpha.Pix)
	imgs["Alpha"] = alpha
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		m := image.NewYCbCr(r, ratio)
		fill(m.Y)
		fill(m.Cb)
		fill(m.Cr)
		imgs[ratio.String()] = m
	}
	pal := make(color.Palette, 200)
	for k := range pal {
		switch k % 3 {
		case 0:
			pal[k] = color.NRGBA{byte(rng.UintN(256)), byte(rng.UintN(256)), byte(rng.UintN(256)), byte(rng.UintN(256))}
		case 1:
			pal[k] = color.RGBA{byte(k), byte(k / 2), byte(k / 3), 255}
		default:
			pal[k] = color.Gray{byte(rng.UintN(256))}
		}
	}
	pm := image.NewPaletted(r, pal)
	for i := range pm.Pix {
		pm.Pix[i] = byte(rng.IntN(len(pal)))
	}
	imgs["Paletted"] = pm
	return imgs
}

// TestToFloatMatchesAt: toFloat, which reads the decoders' image types
// from their pixel slices, gives the values of the per-pixel At path bit
// for bit, for every type, both channel counts, with and without invert,
// and for sub-images whose bounds do not start at the origin.
func TestToFloatMatchesAt(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for name, img := range randomImages(rng, 37, 23) {
		sub := img.(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(image.Rect(5, 3, 30, 20))
		for _, tc := range []struct {
			name string
			img  image.Image
		}{{name, img}, {name + "/sub-image", sub}} {
			for _, c := range []int{1, 3} {
				for _, invert := range []bool{false, true} {
					want, got := toFloatAt(tc.img, c, invert), toFloat(tc.img, c, invert)
					require.Len(t, got, len(want))
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%s c=%d invert=%v: value %d is %v, the At path gives %v", tc.name, c, invert, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestToFloatPalettedOutOfRange: a pixel whose index is past the palette
// reads as opaque black (image/png pads short palettes so), where At
// would have panicked.
func TestToFloatPalettedOutOfRange(t *testing.T) {
	m := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.White})
	m.Pix[1] = 7
	var out []float32
	require.NotPanics(t, func() { out = toFloat(m, 3, false) })
	assert.Equal(t, []float32{1, 1, 1, 0, 0, 0}, out)
	assert.Equal(t, []float32{0, 1}, toFloat(m, 1, true))
}

// TestDecodeImageMatchesAtPath: decoding, orienting and resizing encoded
// files of every type the PNG and JPEG decoders return gives, bit for bit,
// what the per-pixel At conversion followed by the same steps gives, when
// shrinking, enlarging and keeping the size.
func TestDecodeImageMatchesAtPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	imgs := randomImages(rng, 41, 29)
	files := map[string][]byte{}
	for _, name := range []string{"Gray", "Gray16", "RGBA", "NRGBA", "RGBA64", "NRGBA64", "Paletted"} {
		var b bytes.Buffer
		require.NoError(t, png.Encode(&b, imgs[name]), name)
		files["PNG "+name] = b.Bytes()
	}
	opaque := image.NewRGBA(imgs["RGBA"].Bounds()) // PNG stores it as RGB: decodes to *image.RGBA
	for i := range opaque.Pix {
		opaque.Pix[i] = byte(rng.UintN(256)) | byte(i%4/3*255)
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, opaque))
	files["PNG opaque RGBA"] = b.Bytes()
	for _, name := range []string{"Gray", "YCbCrSubsampleRatio420", "YCbCrSubsampleRatio444"} {
		var b bytes.Buffer
		require.NoError(t, jpeg.Encode(&b, imgs[name], &jpeg.Options{Quality: 90}), name)
		files["JPEG "+name] = b.Bytes()
	}
	files["JPEG turned"] = withSegment(files["JPEG YCbCrSubsampleRatio420"], exifSegment("II", 3, 1, 6))
	for name, file := range files {
		img, _, err := image.Decode(bytes.NewReader(file))
		require.NoError(t, err, name)
		t.Logf("%s decodes to %T", name, img)
		for _, size := range [][2]int{{28, 28}, {29, 41}, {96, 64}} {
			for _, c := range []int{1, 3} {
				for _, invert := range []bool{false, true} {
					b := img.Bounds()
					sh, sw := b.Dy(), b.Dx()
					src := toFloatAt(img, c, invert)
					if file[0] == 0xff {
						src, sh, sw = orient(src, sh, sw, c, jpegOrientation(file))
					}
					want := resize(src, sh, sw, c, size[0], size[1])
					got, err := DecodeImageBytes(file, size[0], size[1], c, invert, MaxImagePixels)
					require.NoError(t, err)
					require.Len(t, got, len(want))
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%s to %dx%dx%d invert=%v: value %d is %v, the At path gives %v", name, size[0], size[1], c, invert, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestDecodeImageFewAllocations: converting the decoded pixels costs one
// allocation (the output), not one per pixel (img.At boxed most types'
// colours: a 4096×4096 NRGBA PNG cost 16.7 M allocations), and a whole
// decode of a 256×256 file far fewer than its 65,536 pixels.
func TestDecodeImageFewAllocations(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	imgs := randomImages(rng, 256, 256)
	for name, img := range imgs {
		if name == "Alpha" {
			continue // not a type the decoders return: the At path
		}
		for _, c := range []int{1, 3} {
			allocs := testing.AllocsPerRun(3, func() { toFloat(img, c, true) })
			assert.LessOrEqual(t, allocs, 1.0, "%s to %d channels", name, c)
		}
	}
	files := map[string][]byte{}
	for _, name := range []string{"NRGBA", "RGBA", "Gray16", "NRGBA64", "Paletted"} {
		var b bytes.Buffer
		require.NoError(t, png.Encode(&b, imgs[name]))
		files["PNG "+name] = b.Bytes()
	}
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, imgs["YCbCrSubsampleRatio420"], nil))
	files["JPEG"] = b.Bytes()
	for name, file := range files {
		allocs := testing.AllocsPerRun(3, func() {
			_, err := DecodeImageBytes(file, 28, 28, 3, false, MaxImagePixels)
			require.NoError(t, err)
		})
		assert.Less(t, allocs, 2000.0, "%s: %v allocations to decode a 256x256 image", name, allocs)
	}
}

// TestDecodeImageBytesPixelLimit: an image over the caller's pixel limit
// is refused from its header with an *ImageTooLargeError naming its size
// and the limit, and allocates next to nothing; one at the limit decodes.
func TestDecodeImageBytesPixelLimit(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 40, 25))
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, g))
	file := b.Bytes()
	out, err := DecodeImageBytes(file, 8, 8, 1, false, 1000)
	require.NoError(t, err)
	assert.Len(t, out, 64)

	out, err = DecodeImageBytes(file, 8, 8, 1, false, 999)
	assert.Nil(t, out)
	var tl *ImageTooLargeError
	require.True(t, errors.As(err, &tl), "%v", err)
	assert.Equal(t, ImageTooLargeError{Format: "PNG", Width: 40, Height: 25, MaxPixels: 999}, *tl)
	assert.EqualError(t, err, "decode image: PNG image is 40x25 (1000 pixels), more than the limit of 999 pixels")

	var j bytes.Buffer
	require.NoError(t, jpeg.Encode(&j, g, nil))
	_, err = DecodeImageBytes(j.Bytes(), 8, 8, 1, false, 500)
	require.True(t, errors.As(err, &tl), "%v", err)
	assert.Equal(t, "JPEG", tl.Format)

	// a 4096×4096 header, the default limit's size: refused at a lower
	// limit before a byte of pixels is allocated
	huge := pngWithSize(4096, 4096)
	allocs := testing.AllocsPerRun(3, func() {
		_, err = DecodeImageBytes(huge, 28, 28, 1, false, 1<<22)
	})
	require.True(t, errors.As(err, &tl), "%v", err)
	assert.Contains(t, err.Error(), "4096x4096 (16777216 pixels), more than the limit of 4194304 pixels")
	assert.Less(t, allocs, 50.0)

	// DecodeImage keeps its limit of MaxImagePixels
	_, err = DecodeImage(bytes.NewReader(pngWithSize(1<<13, 1<<11+1)), 28, 28, 1, false)
	require.True(t, errors.As(err, &tl), "%v", err)
	assert.Equal(t, MaxImagePixels, tl.MaxPixels)

	for _, bad := range []int{0, -1, MaxImagePixels + 1} {
		_, err = DecodeImageBytes(file, 8, 8, 1, false, bad)
		assert.ErrorContains(t, err, "invalid pixel limit", "limit %d", bad)
	}
	_, err = DecodeImageBytes(file, 8, 8, 2, false, 1000)
	assert.ErrorContains(t, err, "unsupported channel count 2")
}

// BenchmarkToFloat converts a 1024×1024 image of each type the decoders
// return to 3 channels; the /At cases are the per-pixel At path it
// replaced.
func BenchmarkToFloat(b *testing.B) {
	imgs := randomImages(rand.New(rand.NewPCG(7, 8)), 1024, 1024)
	for _, name := range []string{"Gray", "NRGBA", "RGBA", "Paletted", "YCbCrSubsampleRatio420"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				toFloat(imgs[name], 3, false)
			}
		})
		b.Run(name+"/At", func(b *testing.B) {
			for b.Loop() {
				toFloatAt(imgs[name], 3, false)
			}
		})
	}
}
