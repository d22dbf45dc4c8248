package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
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
// the aspect ratio. It reads at most MaxImageBytes and accepts images of up
// to MaxImagePixels pixels.
func DecodeImage(r io.Reader, h, w, c int, invert bool) ([]float32, error) {
	if err := checkTarget(h, w, c); err != nil {
		return nil, err
	}
	buf, err := io.ReadAll(io.LimitReader(r, MaxImageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("decode image: read: %w", err)
	}
	if len(buf) > MaxImageBytes {
		return nil, fmt.Errorf("decode image: input larger than %d bytes", MaxImageBytes)
	}
	return DecodeImageBytes(buf, h, w, c, invert, MaxImagePixels)
}

// ImageTooLargeError is the error of DecodeImageBytes (and DecodeImage) for
// an image whose header declares more pixels than allowed. It is returned
// before any pixel is decoded, so such an image costs next to nothing.
type ImageTooLargeError struct {
	// Format is "PNG" or "JPEG".
	Format string
	// Width and Height are the image's size as its header declares it.
	Width, Height int
	// MaxPixels is the limit the image exceeds.
	MaxPixels int
}

// Error names the image's size and the limit.
func (e *ImageTooLargeError) Error() string {
	return fmt.Sprintf("decode image: %s image is %dx%d (%d pixels), more than the limit of %d pixels",
		e.Format, e.Width, e.Height, int64(e.Width)*int64(e.Height), e.MaxPixels)
}

// DecodeImageBytes is DecodeImage for an encoded image already in memory
// (it is not copied; at most MaxImageBytes) with a bound of its own on the
// image's size: an image whose header declares more than maxPixels pixels
// (width×height; maxPixels is at most MaxImagePixels) is refused with an
// *ImageTooLargeError before any pixel is decoded. A server sets maxPixels
// from the model's input size, so that a small compressed file (a PNG of
// one flat colour) cannot make it allocate and convert millions of pixels
// a small model never needed.
func DecodeImageBytes(buf []byte, h, w, c int, invert bool, maxPixels int) ([]float32, error) {
	if err := checkTarget(h, w, c); err != nil {
		return nil, err
	}
	if maxPixels <= 0 || maxPixels > MaxImagePixels {
		return nil, fmt.Errorf("decode image: invalid pixel limit %d (want 1 to %d)", maxPixels, MaxImagePixels)
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
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return nil, &ImageTooLargeError{Format: format, Width: cfg.Width, Height: cfg.Height, MaxPixels: maxPixels}
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

// checkTarget validates the output size and channels of DecodeImage.
func checkTarget(h, w, c int) error {
	if c != 1 && c != 3 {
		return fmt.Errorf("decode image: unsupported channel count %d (want 1 for grayscale or 3 for RGB)", c)
	}
	if h <= 0 || w <= 0 || h > MaxImagePixels/w { // not h*w: it can wrap
		return fmt.Errorf("decode image: invalid target size %dx%d", h, w)
	}
	return nil
}

// toFloat converts img to HWC float32 in [0,1] with c channels (1 or 3),
// transparent pixels composited onto black, or with invert onto white and
// then inverted (1−x). The types the PNG and JPEG decoders return are read
// from their pixel slices, each pixel converted as its colour type's RGBA
// method gives it (which img.At(x, y).RGBA() calls, with an allocation per
// pixel for most types); the values are the same bit for bit.
func toFloat(img image.Image, c int, invert bool) []float32 {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	out := make([]float32, sw*sh*c)
	i := 0
	switch m := img.(type) {
	case *image.Gray:
		if c == 1 {
			for y := b.Min.Y; y < b.Max.Y; y++ {
				o := (y - b.Min.Y) * sw
				scaleBytes(out[o:o+sw], m.Pix[m.PixOffset(b.Min.X, y):][:sw])
			}
			if invert {
				for i, v := range out {
					out[i] = 1 - v
				}
			}
			return out
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for _, v := range m.Pix[m.PixOffset(b.Min.X, y):][:sw] {
				r, g, bl, a := color.Gray{Y: v}.RGBA()
				i = putPixel(out, i, c, invert, r, g, bl, a)
			}
		}
	case *image.Gray16:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:2*sw]
			for x := 0; x < len(row); x += 2 {
				r, g, bl, a := color.Gray16{Y: uint16(row[x])<<8 | uint16(row[x+1])}.RGBA()
				i = putPixel(out, i, c, invert, r, g, bl, a)
			}
		}
	case *image.RGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:4*sw]
			for x := 0; x < len(row); x += 4 {
				p := row[x : x+4 : x+4]
				r, g, bl, a := color.RGBA{R: p[0], G: p[1], B: p[2], A: p[3]}.RGBA()
				i = putPixel(out, i, c, invert, r, g, bl, a)
			}
		}
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:4*sw]
			for x := 0; x < len(row); x += 4 {
				p := row[x : x+4 : x+4]
				r, g, bl, a := color.NRGBA{R: p[0], G: p[1], B: p[2], A: p[3]}.RGBA()
				i = putPixel(out, i, c, invert, r, g, bl, a)
			}
		}
	case *image.RGBA64:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:8*sw]
			for x := 0; x < len(row); x += 8 {
				r, g, bl, a := color.RGBA64{R: be16(row[x:]), G: be16(row[x+2:]), B: be16(row[x+4:]), A: be16(row[x+6:])}.RGBA()
				i = putPixel(out, i, c, invert, r, g, bl, a)
			}
		}
	case *image.NRGBA64:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:8*sw]
			for x := 0; x < len(row); x += 8 {
				r, g, bl, a := color.NRGBA64{R: be16(row[x:]), G: be16(row[x+2:]), B: be16(row[x+4:]), A: be16(row[x+6:])}.RGBA()
				i = putPixel(out, i, c, invert, r, g, bl, a)
			}
		}
	case *image.CMYK:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:4*sw]
			for x := 0; x < len(row); x += 4 {
				p := row[x : x+4 : x+4]
				r, g, bl, a := color.CMYK{C: p[0], M: p[1], Y: p[2], K: p[3]}.RGBA()
				i = putPixel(out, i, c, invert, r, g, bl, a)
			}
		}
	case *image.YCbCr:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				r, g, bl, a := color.YCbCr{Y: m.Y[yi], Cb: m.Cb[ci], Cr: m.Cr[ci]}.RGBA()
				i = putPixel(out, i, c, invert, r, g, bl, a)
			}
		}
	case *image.Paletted:
		// Each palette entry converted once. An index past the palette
		// (which image/png never leaves: it pads the palette) reads as
		// opaque black, as image/png's padding does.
		var table [256 * 3]float32
		for k := range 256 {
			var r, g, bl, a uint32 = 0, 0, 0, 0xffff
			if k < len(m.Palette) && m.Palette[k] != nil {
				r, g, bl, a = m.Palette[k].RGBA()
			}
			putPixel(table[:], k*c, c, invert, r, g, bl, a)
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for _, k := range m.Pix[m.PixOffset(b.Min.X, y):][:sw] {
				copy(out[i:i+c], table[int(k)*c:])
				i += c
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bl, a := img.At(x, y).RGBA()
				i = putPixel(out, i, c, invert, r, g, bl, a)
			}
		}
	}
	return out
}

// be16 reads a big-endian uint16 (the byte order of image.Gray16's and
// image.RGBA64's pixels).
func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

// putPixel writes at out[i:] the c values (1 or 3) of a pixel whose colour
// is r, g, bl, a as color.Color's RGBA method returns it (16 bits,
// premultiplied: transparent is black) and returns the index after them.
// With invert the pixel is composited onto white and inverted.
func putPixel(out []float32, i, c int, invert bool, r, g, bl, a uint32) int {
	const inv = 1.0 / 65535
	if invert {
		// onto white, premultiplied colour + (1 − alpha), then
		// 1 − x: alpha − colour (never negative, colour ≤ alpha)
		r, g, bl = a-r, a-g, a-bl
	}
	if c == 1 {
		lum := (19595*r + 38470*g + 7471*bl + 1<<15) >> 16
		out[i] = float32(float64(lum) * inv)
		return i + 1
	}
	o := out[i : i+3 : i+3]
	o[0] = float32(float64(r) * inv)
	o[1] = float32(float64(g) * inv)
	o[2] = float32(float64(bl) * inv)
	return i + 3
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
