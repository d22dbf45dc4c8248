package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// IDX magic numbers for unsigned-byte files.
const (
	// IDXLabelsMagic is the magic of a 1-D unsigned-byte IDX file (labels).
	IDXLabelsMagic = 0x00000801
	// IDXImagesMagic is the magic of a 3-D unsigned-byte IDX file (images).
	IDXImagesMagic = 0x00000803
	// MaxIDXElements bounds the element count a header may declare; larger
	// headers are rejected before anything is allocated. It fits an int on
	// every platform, 32-bit ones too.
	MaxIDXElements = 1<<31 - 1
	// maxIDXDims bounds the number of dimensions in a header.
	maxIDXDims = 8
	// readChunk is the initial payload buffer; it grows only as bytes arrive.
	readChunk = 1 << 20
)

// ReadIDX reads an unsigned-byte IDX file (the MNIST format) from r, which
// may be gzip-compressed (detected from the 1f 8b magic). It returns the
// dimensions from the header and the raw payload, whose length is checked to
// be exactly the product of the dimensions. Memory is allocated as bytes
// arrive, so a hostile header cannot make it allocate more than the input
// provides (and never more than MaxIDXElements).
func ReadIDX(r io.Reader) (dims []int, data []byte, err error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(2)
	if len(head) == 0 {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, nil, errors.New("empty input: not an IDX file")
		}
		return nil, nil, fmt.Errorf("reading IDX header: %w", err)
	}
	var src io.Reader = br
	gz := len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b
	if gz {
		// Multistream (the default): a gzip file may hold several
		// concatenated members (RFC 1952 2.2), and anything after the
		// last one must be another member, so trailing junk is an error
		// here as it is for a raw file.
		zr, err := gzip.NewReader(br)
		if errors.Is(err, gzip.ErrHeader) {
			return nil, nil, errors.New("input starts with the gzip magic 1f 8b but has an invalid gzip header")
		}
		if err != nil {
			return nil, nil, fmt.Errorf("gzip header: %w", err)
		}
		defer zr.Close()
		src = zr
	}
	var hdr [4]byte
	if n, err := io.ReadFull(src, hdr[:]); err != nil {
		return nil, nil, fmt.Errorf("IDX header: expected 4 magic bytes, got %d: %w", n, err)
	}
	magic := binary.BigEndian.Uint32(hdr[:])
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, nil, fmt.Errorf("not an IDX file: magic 0x%08x (want 0x%08x for labels or 0x%08x for images)", magic, IDXLabelsMagic, IDXImagesMagic)
	}
	if hdr[2] != 0x08 {
		return nil, nil, fmt.Errorf("unsupported IDX data type 0x%02x in magic 0x%08x (only unsigned byte, 0x08, is supported)", hdr[2], magic)
	}
	nd := int(hdr[3])
	if nd < 1 || nd > maxIDXDims {
		return nil, nil, fmt.Errorf("IDX magic 0x%08x declares %d dimensions (want 1..%d)", magic, nd, maxIDXDims)
	}
	dimBytes := make([]byte, 4*nd)
	if n, err := io.ReadFull(src, dimBytes); err != nil {
		return nil, nil, fmt.Errorf("IDX header truncated: expected %d dimension bytes, got %d", len(dimBytes), n)
	}
	dims = make([]int, nd)
	total := 1
	for i := range dims {
		d := binary.BigEndian.Uint32(dimBytes[4*i:])
		if d > MaxIDXElements || d != 0 && total > MaxIDXElements/int(d) {
			return nil, nil, fmt.Errorf("IDX dimensions %v exceed the limit of %d elements", dimBytes2Dims(dimBytes), MaxIDXElements)
		}
		dims[i] = int(d)
		total *= int(d)
	}
	data = make([]byte, 0, min(total, readChunk))
	for len(data) < total {
		if len(data) == cap(data) {
			grown := make([]byte, len(data), min(total, 2*cap(data)))
			copy(grown, data)
			data = grown
		}
		n, err := io.ReadFull(src, data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, nil, fmt.Errorf("IDX payload truncated: dimensions %v need %d bytes, got %d", dims, total, len(data))
			}
			return nil, nil, fmt.Errorf("reading IDX payload (%d of %d bytes read): %w", len(data), total, err)
		}
	}
	var extra [1]byte
	if n, err := io.ReadFull(src, extra[:]); n > 0 {
		return nil, nil, fmt.Errorf("IDX payload too long: dimensions %v need %d bytes, but more data follows", dims, total)
	} else if gz && (errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return nil, nil, fmt.Errorf("IDX payload too long: dimensions %v need %d bytes, but data that is not a gzip member follows the gzip stream", dims, total)
	} else if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("reading end of IDX data: %w", err)
	}
	return dims, data, nil
}

func dimBytes2Dims(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return out
}

// WriteIDX writes data as an unsigned-byte IDX file with the given
// dimensions (uncompressed). len(data) must equal the product of dims.
func WriteIDX(w io.Writer, dims []int, data []byte) error {
	if len(dims) < 1 || len(dims) > maxIDXDims {
		return fmt.Errorf("write IDX: %d dimensions (want 1..%d)", len(dims), maxIDXDims)
	}
	total := 1
	hdr := make([]byte, 4+4*len(dims))
	hdr[2], hdr[3] = 0x08, byte(len(dims))
	for i, d := range dims {
		if d < 0 || int64(d) > 1<<32-1 {
			return fmt.Errorf("write IDX: dimension %d is %d", i, d)
		}
		binary.BigEndian.PutUint32(hdr[4+4*i:], uint32(d))
		if d != 0 && total > MaxIDXElements/d { // also keeps total from wrapping
			return fmt.Errorf("write IDX: dimensions %v exceed the limit of %d elements", dims, MaxIDXElements)
		}
		total *= d
	}
	if total != len(data) {
		return fmt.Errorf("write IDX: dimensions %v need %d bytes, got %d", dims, total, len(data))
	}
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("write IDX header: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("write IDX payload: %w", err)
	}
	return nil
}

func readIDXFile(path string) ([]int, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err // *PathError already names the file
	}
	defer f.Close()
	dims, data, err := ReadIDX(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return dims, data, nil
}

// LoadIDXPair loads an images IDX file (N×H×W) and a labels IDX file (N)
// into a single-channel Dataset with 10 classes, scaling pixels by 1/255.
// Errors name the offending file.
func LoadIDXPair(imagesPath, labelsPath string) (*Dataset, error) {
	return LoadIDXPairClasses(imagesPath, labelsPath, 10)
}

// LoadIDXPairClasses is LoadIDXPair for datasets with a class count other
// than 10; every label must be < classes.
func LoadIDXPairClasses(imagesPath, labelsPath string, classes int) (*Dataset, error) {
	if classes <= 0 {
		return nil, fmt.Errorf("load IDX %s: class count %d, want > 0", imagesPath, classes)
	}
	idims, pix, err := readIDXFile(imagesPath)
	if err != nil {
		return nil, err
	}
	if len(idims) != 3 {
		return nil, fmt.Errorf("images file %s has %d dimensions %v, want 3 (N×H×W, magic 0x%08x)", imagesPath, len(idims), idims, IDXImagesMagic)
	}
	if idims[0] == 0 || idims[1] == 0 || idims[2] == 0 {
		return nil, fmt.Errorf("images file %s holds no pixels (dimensions %v)", imagesPath, idims)
	}
	ldims, labs, err := readIDXFile(labelsPath)
	if err != nil {
		return nil, err
	}
	if len(ldims) != 1 {
		return nil, fmt.Errorf("labels file %s has %d dimensions %v, want 1 (magic 0x%08x)", labelsPath, len(ldims), ldims, IDXLabelsMagic)
	}
	if ldims[0] != idims[0] {
		return nil, fmt.Errorf("labels file %s has %d labels but images file %s has %d images", labelsPath, ldims[0], imagesPath, idims[0])
	}
	ds := &Dataset{
		Name: filepath.Base(imagesPath),
		N:    idims[0], H: idims[1], W: idims[2], C: 1,
		Images:  make([]float32, len(pix)),
		Labels:  make([]int32, len(labs)),
		Classes: classes,
	}
	for i, l := range labs {
		if int(l) >= classes {
			return nil, fmt.Errorf("labels file %s: label %d of example %d is not < %d classes", labelsPath, l, i, classes)
		}
		ds.Labels[i] = int32(l)
	}
	scaleBytes(ds.Images, pix)
	return ds, nil
}

// byteScale maps a byte v to v/255 exactly as float32 division would.
var byteScale = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// scaleBytes writes b/255 into dst (len(dst) >= len(b)).
func scaleBytes(dst []float32, b []byte) {
	for i, v := range b {
		dst[i] = byteScale[v]
	}
}
