package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"strings"
)

// Limits applied by DecodeImage to outside input.
const (
	// MaxImageBytes bounds the encoded size of an image given to DecodeImage.
	MaxImageBytes = 64 << 20
	// MaxImagePixels bounds the decoded width×height; larger images are
	// rejected from their header, before any pixel memory is allocated.
	MaxImagePixels = 1 << 24
)

// DecodeImage decodes a PNG or JPEG image (detected from its leading bytes)
// and returns it as h×w×c float32 values in HWC order scaled to [0,1]: c=1
// converts to grayscale (ITU-R 601 luma, as image/color's GrayModel), c=3 to
// RGB. Transparent pixels are composited onto black. With invert, for a dark
// drawing on a light or transparent background given to a model trained on
// light-on-dark images (MNIST), they are composited onto white instead and
// every value becomes 1−x. A JPEG is first turned or mirrored as its EXIF
// orientation tag says (as photo viewers do; a phone photo is stored
// sideways with that tag). The image is resized to h×w with area averaging
// when shrinking and bilinear interpolation when enlarging, without keeping
// the aspect ratio.
func DecodeImage(r io.Reader, h, w, c int, invert bool) ([]float32, error) {
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("decode image: unsupported channel count %d (want 1 for grayscale or 3 for RGB)", c)
	}
	if h <= 0 || w <= 0 || h > MaxImagePixels/w { // not h*w: it can wrap
		return nil, fmt.Errorf("decode image: invalid target size %dx%d", h, w)
	}
	buf, err := io.ReadAll(io.LimitReader(r, MaxImageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("decode image: read: %w", err)
	}
	if len(buf) > MaxImageBytes {
		return nil, fmt.Errorf("decode image: input larger than %d bytes", MaxImageBytes)
	}
	var decodeCfg func(io.Reader) (image.Config, error)
	var decode func(io.Reader) (image.Image, error)
	var format string
	switch {
	case bytes.HasPrefix(buf, []byte("\x89PNG\r\n\x1a\n")):
		decodeCfg, decode, format = png.DecodeConfig, png.Decode, "PNG"
	case bytes.HasPrefix(buf, []byte{0xff, 0xd8, 0xff}):
		decodeCfg, decode, format = jpeg.DecodeConfig, jpeg.Decode, "JPEG"
	case len(buf) == 0:
		return nil, errors.New("decode image: empty input (accepted formats: PNG, JPEG)")
	default:
		return nil, errors.New("decode image: not a PNG or JPEG image (accepted formats: PNG, JPEG)")
	}
	cfg, err := decodeCfg(bytes.NewReader(buf))
	if err != nil {
		return nil, decodeErr(format+" header", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("decode image: %s image is zero-sized (%dx%d)", format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return nil, fmt.Errorf("decode image: %s image is %dx%d, more than %d pixels", format, cfg.Width, cfg.Height, MaxImagePixels)
	}
	img, err := decode(bufio.NewReader(bytes.NewReader(buf)))
	if err != nil {
		return nil, decodeErr(format, err)
	}
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	if sw <= 0 || sh <= 0 {
		return nil, fmt.Errorf("decode image: %s image is zero-sized (%dx%d)", format, sw, sh)
	}
	src := toFloat(img, c, invert)
	if format == "JPEG" {
		src, sh, sw = orient(src, sh, sw, c, jpegOrientation(buf))
	}
	return resize(src, sh, sw, c, h, w), nil
}

// toFloat converts img to HWC float32 in [0,1] with c channels (1 or 3),
// transparent pixels composited onto black, or with invert onto white and
// then inverted (1−x).
func toFloat(img image.Image, c int, invert bool) []float32 {
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
			r, g, bl, a := img.At(x, y).RGBA() // premultiplied: transparent → black
			if invert {
				// onto white, premultiplied colour + (1 − alpha), then
				// 1 − x: alpha − colour (never negative, colour ≤ alpha)
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

// tap is one source index and its weight in a resampling filter.
type tap struct {
	i int
	w float32
}

// axisTaps returns, for each of the dst output positions, the source taps
// along an axis of length src: area (box) averaging when shrinking, bilinear
// interpolation (pixel centres aligned) when enlarging or keeping size.
func axisTaps(src, dst int) [][]tap {
	out := make([][]tap, dst)
	scale := float64(src) / float64(dst)
	for o := range out {
		if src > dst {
			lo, hi := float64(o)*scale, float64(o+1)*scale
			for s := int(lo); s < src && float64(s) < hi; s++ {
				ov := math.Min(hi, float64(s+1)) - math.Max(lo, float64(s))
				if ov > 0 {
					out[o] = append(out[o], tap{s, float32(ov / scale)})
				}
			}
			continue
		}
		pos := (float64(o)+0.5)*scale - 0.5
		pos = math.Max(0, math.Min(pos, float64(src-1)))
		s0 := int(pos)
		f := pos - float64(s0)
		if s0+1 < src && f > 0 {
			out[o] = []tap{{s0, float32(1 - f)}, {s0 + 1, float32(f)}}
		} else {
			out[o] = []tap{{s0, 1}}
		}
	}
	return out
}

// resize resamples an sh×sw×c HWC image to h×w×c.
func resize(src []float32, sh, sw, c, h, w int) []float32 {
	if sh == h && sw == w {
		return src
	}
	ty, tx := axisTaps(sh, h), axisTaps(sw, w)
	out := make([]float32, h*w*c)
	acc := make([]float32, c)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			clear(acc)
			for _, a := range ty[y] {
				for _, bt := range tx[x] {
					wt := a.w * bt.w
					p := src[(a.i*sw+bt.i)*c:]
					for k := 0; k < c; k++ {
						acc[k] += wt * p[k]
					}
				}
			}
			o := out[(y*w+x)*c:]
			for k := 0; k < c; k++ {
				o[k] = min(max(acc[k], 0), 1)
			}
		}
	}
	return out
}

// decodeErr wraps an error of the image/png or image/jpeg decoder for the
// image part what ("PNG", "JPEG header"), without repeating the format the
// message already names ("png: invalid format: …", "invalid JPEG format: …").
func decodeErr(what string, err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "png: "); ok {
		return fmt.Errorf("decode image: %s: %s", what, rest)
	}
	if strings.Contains(msg, "JPEG") {
		if _, part, ok := strings.Cut(what, " "); ok { // "JPEG header": keep "header"
			return fmt.Errorf("decode image: %s: %w", part, err)
		}
		return fmt.Errorf("decode image: %w", err)
	}
	return fmt.Errorf("decode image: %s: %w", what, err)
}
