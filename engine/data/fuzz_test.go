package data

import (
	"bytes"
	"image"
	"image/color"
	"testing"
)

func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes(f, []int{2, 2, 2}, pixels(2, 2, 2), false))
	f.Add(idxBytes(f, []int{2, 2, 2}, pixels(2, 2, 2), true))
	f.Add(idxBytes(f, []int{3}, []byte{1, 2, 3}, false))
	f.Add(idxBytes(f, []int{3}, []byte{1, 2, 3}, true))
	f.Add([]byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 8, 1, 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		dims, data, err := ReadIDX(bytes.NewReader(b))
		if err != nil {
			return
		}
		total := 1
		for _, d := range dims {
			total *= d
		}
		if total != len(data) {
			t.Fatalf("dims %v but %d bytes", dims, len(data))
		}
	})
}

func FuzzReadCIFAR10(f *testing.F) {
	f.Add(cifarBytes(1))
	f.Add(cifarBytes(2))
	f.Add(cifarBytes(1)[:100])
	f.Add([]byte{})
	bad := cifarBytes(1)
	bad[0] = 200
	f.Add(bad)
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := ReadCIFAR10(bytes.NewReader(b), "fuzz.bin")
		if err != nil {
			return
		}
		if err := ds.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeImage(f *testing.F) {
	g := image.NewGray(image.Rect(0, 0, 5, 3))
	g.SetGray(1, 1, color.Gray{200})
	rgba := image.NewNRGBA(image.Rect(0, 0, 3, 4))
	rgba.Set(0, 0, color.NRGBA{10, 20, 30, 128})
	f.Add(encodePNG(f, g), uint8(1))
	f.Add(encodePNG(f, rgba), uint8(3))
	f.Add(encodeJPEG(f, g), uint8(1))
	f.Add(encodeJPEG(f, rgba), uint8(3))
	f.Add(withSegment(encodeJPEG(f, rgba), exifSegment("MM", 3, 1, 6)), uint8(3))
	f.Add(pngWithSize(60000, 60000), uint8(1))
	f.Add(pngWithSize(0, 3), uint8(3))
	f.Add([]byte("not an image"), uint8(3))
	f.Add(encodePNG(f, rgba), uint8(0x83))
	// c's low bits are the channel count, its top bit asks for inversion
	f.Fuzz(func(t *testing.T, b []byte, c uint8) {
		ch := int(c & 0x7f)
		out, err := DecodeImage(bytes.NewReader(b), 7, 5, ch, c&0x80 != 0)
		if err != nil {
			return
		}
		if len(out) != 7*5*ch {
			t.Fatalf("got %d values for c=%d", len(out), c)
		}
		for _, v := range out {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("value %v outside [0,1]", v)
			}
		}
	})
}
