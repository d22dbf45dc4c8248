package data

import "encoding/binary"

// jpegOrientation returns the EXIF orientation (1–8) a JPEG file declares
// in its APP1 "Exif" segment, or 1 (as stored) when it declares none or the
// EXIF data is damaged: a bad tag never stops the image from being read.
// Phone cameras store the sensor's pixels and record the turn a viewer must
// apply in this tag.
func jpegOrientation(b []byte) int {
	if len(b) < 2 || b[0] != 0xff || b[1] != 0xd8 {
		return 1
	}
	for p := 2; p+4 <= len(b); {
		if b[p] != 0xff {
			return 1
		}
		marker := b[p+1]
		switch {
		case marker == 0xff: // fill byte
			p++
			continue
		case marker == 0xd8 || marker >= 0xd0 && marker <= 0xd7 || marker == 0x01: // no length
			p += 2
			continue
		case marker == 0xda || marker == 0xd9: // start of scan, end of image: no EXIF before
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[p+2:]))
		if n < 2 || p+2+n > len(b) {
			return 1
		}
		seg := b[p+4 : p+2+n]
		if marker == 0xe1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			if o := tiffOrientation(seg[6:]); o != 0 {
				return o
			}
		}
		p += 2 + n
	}
	return 1
}

// tiffOrientation reads tag 0x0112 (Orientation) from IFD0 of a TIFF
// structure (EXIF's payload), or returns 0 when it is missing or invalid.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(t[2:]) != 42 {
		return 0
	}
	off := uint64(bo.Uint32(t[4:]))
	if off+2 > uint64(len(t)) {
		return 0
	}
	count := uint64(bo.Uint16(t[off:]))
	for i := uint64(0); i < count; i++ {
		e := off + 2 + 12*i
		if e+12 > uint64(len(t)) {
			return 0
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		// type SHORT (3), one value, held in the entry's value field
		if bo.Uint16(t[e+2:]) != 3 || bo.Uint32(t[e+4:]) != 1 {
			return 0
		}
		if o := int(bo.Uint16(t[e+8:])); o >= 1 && o <= 8 {
			return o
		}
		return 0
	}
	return 0
}

// orient applies EXIF orientation o to an sh×sw×c HWC image and returns
// the image as it is meant to be seen, with its height and width (swapped
// for orientations 5–8, which turn it by a quarter).
func orient(src []float32, sh, sw, c, o int) ([]float32, int, int) {
	if o < 2 || o > 8 {
		return src, sh, sw
	}
	h, w := sh, sw
	if o >= 5 {
		h, w = sw, sh
	}
	out := make([]float32, len(src))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var sy, sx int
			switch o {
			case 2: // mirrored left to right
				sy, sx = y, sw-1-x
			case 3: // turned 180°
				sy, sx = sh-1-y, sw-1-x
			case 4: // mirrored top to bottom
				sy, sx = sh-1-y, x
			case 5: // mirrored along the main diagonal
				sy, sx = x, y
			case 6: // to be turned 90° clockwise
				sy, sx = sh-1-x, y
			case 7: // mirrored along the other diagonal
				sy, sx = sh-1-x, sw-1-y
			case 8: // to be turned 90° anticlockwise
				sy, sx = x, sw-1-y
			}
			copy(out[(y*w+x)*c:(y*w+x+1)*c], src[(sy*sw+sx)*c:(sy*sw+sx+1)*c])
		}
	}
	return out, h, w
}
