package data

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exifSegment returns an APP1 segment holding a TIFF IFD0 with one
// Orientation entry (type typ, count n, value o) in byte order bo.
func exifSegment(bo string, typ uint16, n uint32, o uint16) []byte {
	var order binary.AppendByteOrder = binary.LittleEndian
	if bo == "MM" {
		order = binary.BigEndian
	}
	t := []byte(bo)
	t = order.AppendUint16(t, 42)
	t = order.AppendUint32(t, 8)      // IFD0 right after the header
	t = order.AppendUint16(t, 2)      // two entries
	t = order.AppendUint16(t, 0x010f) // Make, skipped
	t = order.AppendUint16(t, 2)
	t = order.AppendUint32(t, 4)
	t = append(t, 'k', 'i', 'l', 0)
	t = order.AppendUint16(t, 0x0112)
	t = order.AppendUint16(t, typ)
	t = order.AppendUint32(t, n)
	t = order.AppendUint16(t, o)
	t = append(t, 0, 0)
	t = order.AppendUint32(t, 0) // no next IFD
	payload := append([]byte("Exif\x00\x00"), t...)
	seg := []byte{0xff, 0xe1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(2+len(payload)))
	return append(seg, payload...)
}

// withSegment inserts seg into a JPEG file right after its SOI marker.
func withSegment(jpg, seg []byte) []byte {
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// TestDecodeImageEXIFOrientation: a JPEG's EXIF orientation is applied
// before resizing, so a phone photo stored sideways is read upright. The
// stored image is 32 wide and 16 high with its top-left 16×8 quarter white;
// each orientation moves that quarter to a known corner (and 5–8 make the
// image 16 wide and 32 high).
func TestDecodeImageEXIFOrientation(t *testing.T) {
	src := image.NewGray(image.Rect(0, 0, 32, 16))
	for y := 0; y < 8; y++ {
		for x := 0; x < 16; x++ {
			src.SetGray(x, y, color.Gray{255})
		}
	}
	jpg := encodeJPEG(t, src)
	// corner of the white quarter: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right
	want := map[int]int{1: 0, 2: 1, 3: 3, 4: 2, 5: 0, 6: 1, 7: 3, 8: 2}
	for o := 1; o <= 8; o++ {
		for _, bo := range []string{"II", "MM"} {
			h, w := 16, 32
			if o >= 5 {
				h, w = 32, 16
			}
			img := withSegment(jpg, exifSegment(bo, 3, 1, uint16(o)))
			require.Equal(t, o, jpegOrientation(img), "orientation %d (%s)", o, bo)
			out, err := DecodeImage(bytes.NewReader(img), h, w, 1, false)
			require.NoError(t, err)
			for q := 0; q < 4; q++ {
				mean := quarterMean(out, h, w, q)
				if q == want[o] {
					assert.Greater(t, mean, 0.9, "orientation %d (%s): quarter %d should be white", o, bo, q)
				} else {
					assert.Less(t, mean, 0.1, "orientation %d (%s): quarter %d should be black", o, bo, q)
				}
			}
		}
	}
}

// quarterMean averages one quarter (0 top-left, 1 top-right, 2 bottom-left,
// 3 bottom-right) of an h×w grayscale image.
func quarterMean(img []float32, h, w, q int) float64 {
	y0, x0 := q/2*h/2, q%2*w/2
	var s float64
	for y := y0; y < y0+h/2; y++ {
		for x := x0; x < x0+w/2; x++ {
			s += float64(img[y*w+x])
		}
	}
	return s / float64(h/2*w/2)
}

// TestJPEGOrientationDamaged: a missing, invalid or damaged EXIF tag
// leaves the image as stored (orientation 1) and never fails or panics.
func TestJPEGOrientationDamaged(t *testing.T) {
	jpg := encodeJPEG(t, image.NewGray(image.Rect(0, 0, 4, 4)))
	good := withSegment(jpg, exifSegment("II", 3, 1, 6))
	require.Equal(t, 6, jpegOrientation(good))
	tests := []struct {
		name string
		b    []byte
	}{
		{"no EXIF", jpg},
		{"orientation 0", withSegment(jpg, exifSegment("II", 3, 1, 0))},
		{"orientation 9", withSegment(jpg, exifSegment("MM", 3, 1, 9))},
		{"type LONG", withSegment(jpg, exifSegment("II", 4, 1, 6))},
		{"two values", withSegment(jpg, exifSegment("II", 3, 2, 6))},
		{"bad byte order", withSegment(jpg, bytes.Replace(exifSegment("II", 3, 1, 6), []byte("II*"), []byte("XX*"), 1))},
		{"segment length past the end", append(append([]byte{}, good[:4]...), 0xff, 0xff)},
		{"not a JPEG", []byte("not a jpeg")},
		{"empty", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, 1, jpegOrientation(tc.b))
		})
	}
	for n := range good {
		require.NotPanics(t, func() { jpegOrientation(good[:n]) }, "truncated to %d bytes", n)
	}
	seg := exifSegment("MM", 3, 1, 8)
	for i := 4; i < len(seg); i++ { // every header byte, length and offset changed
		bad := append([]byte{}, seg...)
		bad[i] ^= 0xff
		require.NotPanics(t, func() { jpegOrientation(withSegment(jpg, bad)) }, "byte %d flipped", i)
	}
}
