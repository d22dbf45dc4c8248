// Package modelfile reads and writes kiln model and checkpoint files: a
// versioned, checksummed container holding a model spec (opaque JSON), optional
// extra JSON metadata and a set of named float32 tensors. The engine decides
// what goes in; this package only guarantees that what comes out is exactly
// what went in, or a clear error.
//
// # Format (version 1)
//
// All integers are little-endian.
//
//	offset      size  field
//	0           8     magic, the ASCII bytes "KILNMODL"
//	8           4     uint32 format version, currently 1
//	12          4     uint32 header length H in bytes (at most 64 MiB)
//	16          8     uint64 tensor data length D in bytes (a multiple of 4)
//	24          H     header, UTF-8 JSON (see below)
//	24+H        D     tensor data: raw IEEE-754 float32 values
//	24+H+D      4     uint32 CRC-32C (Castagnoli) of bytes [0, 24+H+D)
//
// The header is a JSON object:
//
//	{
//	  "kind":    "model" | "checkpoint",
//	  "spec":    {...},            // the model spec, a JSON object
//	  "meta":    ...,              // optional, any JSON value
//	  "tensors": [{"name": "conv1/kernel", "shape": [3,3,1,64],
//	               "offset": 0, "length": 576}, ...]
//	}
//
// A tensor's offset and length count float32 elements (not bytes) from the
// start of the tensor data section. Its length must equal the product of its
// shape (an empty shape is a scalar with one element). Tensor names are
// non-empty and unique; tensor ranges must lie inside the data section, must
// not overlap, and together must cover it exactly. Nothing may follow the
// checksum.
//
// Encode writes tensors in the order given, back to back, so the same File
// always produces the same bytes. Spec and Meta are stored compacted, so a
// pretty-printed Spec decodes as its compact form.
//
// Decode validates everything and never trusts a length field for
// allocation: the header is bounded by [MaxHeaderLen] and tensor data is read
// incrementally, so a hostile file can only make Decode allocate memory in
// proportion to the bytes it actually contains.
package modelfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/kiln-ml/kiln/internal/atomicfile"
)

// Magic is the 8-byte signature every kiln model file starts with.
const Magic = "KILNMODL"

// Version is the format version this package writes and reads.
const Version = 1

// MaxHeaderLen bounds the JSON header length Decode accepts (64 MiB).
const MaxHeaderLen = 64 << 20

// Kind values for File.Kind.
const (
	// KindModel marks a trained model ready for inference.
	KindModel = "model"
	// KindCheckpoint marks a training checkpoint that can be resumed.
	KindCheckpoint = "checkpoint"
)

const (
	prefixLen   = 24 // magic + version + header length + data length
	checksumLen = 4
	chunkBytes  = 1 << 20  // write batch size and ReadFile buffer size
	readChunk   = 64 << 10 // initial/streaming read size when the input size is unknown
)

// Sentinel errors. Errors returned by this package wrap one of them (when
// applicable) together with a description of what exactly is wrong, so
// callers can test with errors.Is and show err.Error() to users.
var (
	// ErrNotModelFile means the input is not a kiln model file at all.
	ErrNotModelFile = errors.New("not a kiln model file")
	// ErrVersion means the file is a kiln model file of a format version
	// this build cannot read.
	ErrVersion = errors.New("unsupported model file format version")
	// ErrCorrupt means the file claims to be a kiln model file but is
	// truncated, fails its checksum or has an inconsistent header.
	ErrCorrupt = errors.New("model file is corrupt")
	// ErrInvalid means a File passed to Encode or WriteFile is not valid.
	ErrInvalid = errors.New("invalid model file content")
	// ErrTensorNotFound means File.Tensor found no tensor of that name.
	ErrTensorNotFound = errors.New("tensor not found")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// File is the decoded content of a kiln model or checkpoint file.
type File struct {
	// Kind is KindModel ("model") or KindCheckpoint ("checkpoint").
	Kind string
	// Spec is the model spec, a JSON object. It is opaque to this package.
	Spec json.RawMessage
	// Meta is optional extra JSON (training state, labels, ...); may be nil.
	Meta json.RawMessage
	// Tensors are the named tensors, in file order.
	Tensors []Tensor
}

// Tensor is one named float32 tensor. len(Data) equals the product of Shape
// (1 for an empty shape).
type Tensor struct {
	// Name identifies the tensor, e.g. "conv1/kernel"; unique in a File.
	Name string
	// Shape lists the dimensions; none may be negative.
	Shape []int
	// Data holds the values in row-major order.
	Data []float32
}

// Tensor returns the tensor called name, or an error wrapping
// ErrTensorNotFound that lists what the file does contain.
func (f *File) Tensor(name string) (*Tensor, error) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], nil
		}
	}
	names := make([]string, 0, 8)
	for i := range f.Tensors {
		if i == 8 {
			names = append(names, "...")
			break
		}
		names = append(names, fmt.Sprintf("%q", f.Tensors[i].Name))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: %q (the %s file has no tensors)", ErrTensorNotFound, name, f.Kind)
	}
	return nil, fmt.Errorf("%w: %q (the %s file has %d tensors: %s)",
		ErrTensorNotFound, name, f.Kind, len(f.Tensors), strings.Join(names, ", "))
}

// header is the JSON header as stored in the file.
type header struct {
	Kind    string          `json:"kind"`
	Spec    json.RawMessage `json:"spec"`
	Meta    json.RawMessage `json:"meta,omitempty"`
	Tensors []tensorEntry   `json:"tensors"`
}

type tensorEntry struct {
	Name   string `json:"name"`
	Shape  []int  `json:"shape"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
}

// numElements returns the product of shape, or an error for negative
// dimensions or a product that overflows int64.
func numElements(shape []int) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %v", d, shape)
		}
		if d == 0 {
			n = 0
		}
	}
	if n == 0 {
		return 0, nil
	}
	for _, d := range shape {
		if int64(d) > math.MaxInt64/n {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= int64(d)
	}
	return n, nil
}

func checkKind(kind string) error {
	if kind != KindModel && kind != KindCheckpoint {
		return fmt.Errorf("unknown kind %q (want %q or %q)", kind, KindModel, KindCheckpoint)
	}
	return nil
}

func checkSpec(spec json.RawMessage) error {
	s := bytes.TrimLeft(spec, " \t\r\n")
	if len(s) == 0 {
		return errors.New("model spec is missing")
	}
	if s[0] != '{' || !json.Valid(s) {
		return errors.New("model spec is not a JSON object")
	}
	return nil
}

// validate checks f and returns its header with offsets assigned.
func (f *File) validate() (*header, int64, error) {
	if err := checkKind(f.Kind); err != nil {
		return nil, 0, err
	}
	if err := checkSpec(f.Spec); err != nil {
		return nil, 0, err
	}
	if len(f.Meta) > 0 && !json.Valid(f.Meta) {
		return nil, 0, errors.New("meta is not valid JSON")
	}
	h := &header{Kind: f.Kind, Spec: f.Spec, Meta: f.Meta, Tensors: make([]tensorEntry, len(f.Tensors))}
	seen := make(map[string]struct{}, len(f.Tensors))
	var off int64
	for i, t := range f.Tensors {
		if t.Name == "" {
			return nil, 0, fmt.Errorf("tensor %d has an empty name", i)
		}
		if !utf8.ValidString(t.Name) {
			return nil, 0, fmt.Errorf("tensor %d: name %q is not valid UTF-8", i, t.Name)
		}
		if _, dup := seen[t.Name]; dup {
			return nil, 0, fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		seen[t.Name] = struct{}{}
		n, err := numElements(t.Shape)
		if err != nil {
			return nil, 0, fmt.Errorf("tensor %q: %v", t.Name, err)
		}
		if int64(len(t.Data)) != n {
			return nil, 0, fmt.Errorf("tensor %q: shape %v needs %d floats, data has %d", t.Name, t.Shape, n, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		h.Tensors[i] = tensorEntry{Name: t.Name, Shape: shape, Offset: off, Length: n}
		off += n
	}
	return h, off, nil
}

// Encode writes f to w in the kiln model file format. It validates f first
// and writes nothing if f is invalid (the error then wraps ErrInvalid). The
// output is deterministic: the same File always yields the same bytes.
func Encode(w io.Writer, f *File) error {
	if err := encode(w, f); err != nil {
		return fmt.Errorf("modelfile: %w", err)
	}
	return nil
}

// encode does the work of Encode; its errors carry no package prefix.
func encode(w io.Writer, f *File) error {
	if f == nil {
		return detail(ErrInvalid, "invalid model file: nil File")
	}
	h, nfloats, err := f.validate()
	if err != nil {
		return detail(ErrInvalid, "invalid model file: %v", err)
	}
	var hb bytes.Buffer
	enc := json.NewEncoder(&hb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		return detail(ErrInvalid, "invalid model file: encode header: %v", err)
	}
	hdr := bytes.TrimSuffix(hb.Bytes(), []byte("\n"))
	if len(hdr) > MaxHeaderLen {
		return detail(ErrInvalid, "invalid model file: header is %d bytes, limit is %d", len(hdr), MaxHeaderLen)
	}

	crc := crc32.New(castagnoli)
	out := io.MultiWriter(w, crc)
	prefix := make([]byte, prefixLen, prefixLen+len(hdr))
	copy(prefix, Magic)
	binary.LittleEndian.PutUint32(prefix[8:], Version)
	binary.LittleEndian.PutUint32(prefix[12:], uint32(len(hdr)))
	binary.LittleEndian.PutUint64(prefix[16:], uint64(nfloats)*4)
	prefix = append(prefix, hdr...)
	if _, err := out.Write(prefix); err != nil {
		return fmt.Errorf("write header: %w", err)
	}

	buf := make([]byte, 0, min(chunkBytes, int(nfloats)*4))
	for _, t := range f.Tensors {
		data := t.Data
		for len(data) > 0 {
			n := min(len(data), (cap(buf)-len(buf))/4)
			for _, v := range data[:n] {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			}
			data = data[n:]
			if len(buf) == cap(buf) {
				if _, err := out.Write(buf); err != nil {
					return fmt.Errorf("write tensor data: %w", err)
				}
				buf = buf[:0]
			}
		}
	}
	if len(buf) > 0 {
		if _, err := out.Write(buf); err != nil {
			return fmt.Errorf("write tensor data: %w", err)
		}
	}
	var sum [checksumLen]byte
	binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
	if _, err := w.Write(sum[:]); err != nil {
		return fmt.Errorf("write checksum: %w", err)
	}
	return nil
}

// Decode reads a complete kiln model file from r (through to EOF) and
// validates it: magic, version, lengths, checksum and tensor table. Errors
// wrap ErrNotModelFile, ErrVersion or ErrCorrupt and say what is wrong; I/O
// errors from r are wrapped as they are.
func Decode(r io.Reader) (*File, error) {
	f, err := decode(r, -1)
	if err != nil {
		return nil, fmt.Errorf("modelfile: %w", err)
	}
	return f, nil
}

// DecodeBytes is Decode for a file already in memory.
func DecodeBytes(b []byte) (*File, error) {
	f, err := decode(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("modelfile: %w", err)
	}
	return f, nil
}

// detailError is an error whose message is a full description on its own
// and which matches a sentinel under errors.Is.
type detailError struct {
	sentinel error
	msg      string
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.sentinel }

func detail(sentinel error, format string, args ...any) error {
	return &detailError{sentinel: sentinel, msg: fmt.Sprintf(format, args...)}
}

func truncated(format string, args ...any) error {
	return detail(ErrCorrupt, "file is truncated: "+format, args...)
}

func corrupt(format string, args ...any) error {
	return detail(ErrCorrupt, "corrupt model file: "+format, args...)
}

// readFull reads len(p) bytes and returns how many it got; a short read
// (io.EOF / io.ErrUnexpectedEOF) is not an error, other I/O errors are.
func readFull(r io.Reader, p []byte) (int, error) {
	n, err := io.ReadFull(r, p)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return n, err // an *os.PathError already says "read PATH: …"
}

// readBytes reads up to n bytes, growing its buffer only as data arrives.
// hint, if > 0, is how many bytes are known to be available.
func readBytes(r io.Reader, n int64, hint int64) ([]byte, error) {
	initial := min(n, readChunk)
	if hint >= n {
		initial = n
	}
	buf := make([]byte, 0, initial)
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow (amortized doubling)
		}
		want := min(int64(cap(buf)-len(buf)), n-int64(len(buf)))
		m, err := readFull(r, buf[len(buf):len(buf)+int(want)])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, err
		}
		if int64(m) < want {
			break
		}
	}
	return buf, nil
}

// readFloats reads up to n bytes of little-endian float32 data, hashing them
// into crc, in fixed-size chunks so that memory grows only with the bytes
// actually present. It returns the floats and the number of bytes read.
func readFloats(r io.Reader, n int64, sizeKnown bool, crc hash.Hash32) ([]float32, int64, error) {
	capHint := min(n/4, readChunk/4)
	if sizeKnown {
		capHint = n / 4
	}
	out := make([]float32, 0, capHint)
	scratch := make([]byte, min(n, readChunk))
	var got int64
	for got < n {
		want := min(int64(len(scratch)), n-got)
		m, err := readFull(r, scratch[:want])
		crc.Write(scratch[:m])
		k := m / 4
		if cap(out)-len(out) < k {
			// Double rather than let append grow by 1.25x: fewer copies.
			out = slices.Grow(out, max(k, len(out)))
		}
		dst := out[len(out) : len(out)+k]
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(scratch[4*i:]))
		}
		out = out[:len(out)+k]
		got += int64(m)
		if err != nil {
			return nil, got, err
		}
		if int64(m) < want {
			break
		}
	}
	return out, got, nil
}

// decode does the work of Decode. size is the total input size if known,
// else -1.
func decode(r io.Reader, size int64) (*File, error) {
	var prefix [prefixLen]byte
	n, err := readFull(r, prefix[:])
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, detail(ErrNotModelFile, "not a kiln model file (the file is empty)")
	}
	if m := min(n, len(Magic)); string(prefix[:m]) != Magic[:m] {
		return nil, detail(ErrNotModelFile, "not a kiln model file (bad magic)")
	}
	if n < len(Magic)+4 {
		return nil, truncated("only %d bytes, too short for the %d-byte fixed header", n, prefixLen)
	}
	if v := binary.LittleEndian.Uint32(prefix[8:]); v != Version {
		return nil, detail(ErrVersion, "unsupported format version %d (this kiln reads %d)", v, Version)
	}
	if n < prefixLen {
		return nil, truncated("only %d bytes, too short for the %d-byte fixed header", n, prefixLen)
	}
	hlen := int64(binary.LittleEndian.Uint32(prefix[12:]))
	dlen64 := binary.LittleEndian.Uint64(prefix[16:])
	if hlen > MaxHeaderLen {
		return nil, corrupt("header length %d exceeds the %d-byte limit", hlen, MaxHeaderLen)
	}
	if hlen == 0 {
		return nil, corrupt("header length is 0")
	}
	if dlen64 > math.MaxInt64-prefixLen-MaxHeaderLen-checksumLen || dlen64/4 > math.MaxInt {
		return nil, corrupt("tensor data length %d is impossibly large", dlen64)
	}
	dlen := int64(dlen64)
	if dlen%4 != 0 {
		return nil, corrupt("tensor data length %d is not a multiple of 4 (float32)", dlen)
	}
	total := prefixLen + hlen + dlen + checksumLen
	if size >= 0 && size < total {
		// Report the shortfall precisely without reading anything.
		switch have := size - prefixLen; {
		case have < hlen:
			return nil, truncated("header says the JSON header is %d bytes, only %d present", hlen, have)
		case have-hlen < dlen:
			return nil, truncated("header says %d bytes of tensor data, only %d present", dlen, have-hlen)
		default:
			return nil, truncated("checksum missing (%d of %d bytes present)", have-hlen-dlen, checksumLen)
		}
	}

	crc := crc32.New(castagnoli)
	crc.Write(prefix[:])
	hdr, err := readBytes(r, hlen, size-prefixLen)
	if err != nil {
		return nil, err
	}
	if int64(len(hdr)) < hlen {
		return nil, truncated("header says the JSON header is %d bytes, only %d present", hlen, len(hdr))
	}
	crc.Write(hdr)
	data, got, err := readFloats(r, dlen, size >= 0, crc)
	if err != nil {
		return nil, err
	}
	if got < dlen {
		return nil, truncated("header says %d bytes of tensor data, only %d present", dlen, got)
	}
	var sum [checksumLen + 1]byte // one extra byte to detect trailing data
	n, err = readFull(r, sum[:])
	if err != nil {
		return nil, err
	}
	if n < checksumLen {
		return nil, truncated("checksum missing (%d of %d bytes present)", n, checksumLen)
	}
	if n > checksumLen {
		return nil, corrupt("unexpected data after the checksum")
	}
	if binary.LittleEndian.Uint32(sum[:]) != crc.Sum32() {
		return nil, detail(ErrCorrupt, "checksum mismatch: file is corrupt")
	}

	var h header
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, corrupt("header is not valid JSON: %v", err)
	}
	return build(&h, data)
}

// build validates the decoded header against the tensor data and assembles
// the File. Tensor Data slices share one backing array (capacity-limited, so
// appending to one never overwrites another).
func build(h *header, data []float32) (*File, error) {
	if err := checkKind(h.Kind); err != nil {
		return nil, corrupt("%v", err)
	}
	if err := checkSpec(h.Spec); err != nil {
		return nil, corrupt("%v", err)
	}
	f := &File{Kind: h.Kind, Spec: h.Spec, Meta: h.Meta, Tensors: make([]Tensor, len(h.Tensors))}
	if len(f.Meta) == 0 {
		f.Meta = nil
	}
	nfloats := int64(len(data))
	seen := make(map[string]struct{}, len(h.Tensors))
	for i, e := range h.Tensors {
		if e.Name == "" {
			return nil, corrupt("tensor %d has an empty name", i)
		}
		if _, dup := seen[e.Name]; dup {
			return nil, corrupt("duplicate tensor name %q", e.Name)
		}
		seen[e.Name] = struct{}{}
		n, err := numElements(e.Shape)
		if err != nil {
			return nil, corrupt("tensor %q: %v", e.Name, err)
		}
		if n != e.Length {
			return nil, corrupt("tensor %q: shape %v needs %d floats, table says %d", e.Name, e.Shape, n, e.Length)
		}
		if e.Offset < 0 || e.Offset > nfloats || e.Length > nfloats-e.Offset {
			return nil, corrupt("tensor %q: floats [%d, %d) are outside the %d floats of tensor data",
				e.Name, e.Offset, e.Offset+e.Length, nfloats)
		}
		shape := e.Shape
		if shape == nil {
			shape = []int{}
		}
		t := Tensor{Name: e.Name, Shape: shape}
		if e.Length > 0 {
			t.Data = data[e.Offset : e.Offset+e.Length : e.Offset+e.Length]
		}
		f.Tensors[i] = t
	}
	// Ranges must not overlap and must cover the data exactly.
	order := make([]int, len(h.Tensors))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return h.Tensors[order[a]].Offset < h.Tensors[order[b]].Offset })
	var end int64
	prev := -1
	for _, i := range order {
		e := h.Tensors[i]
		if e.Length == 0 {
			continue
		}
		if e.Offset < end {
			return nil, corrupt("tensors %q and %q overlap in the tensor data", h.Tensors[prev].Name, e.Name)
		}
		if e.Offset > end {
			return nil, corrupt("floats [%d, %d) of tensor data belong to no tensor", end, e.Offset)
		}
		end = e.Offset + e.Length
		prev = i
	}
	if end != nfloats {
		return nil, corrupt("floats [%d, %d) of tensor data belong to no tensor", end, nfloats)
	}
	return f, nil
}

// ReadFile reads and decodes the model file at path. Errors name the path.
func ReadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("modelfile: %w", err) // "open PATH: …"
	}
	defer fh.Close()
	size := int64(-1)
	if st, err := fh.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("modelfile: %s is a directory, not a model file", path)
	} else if err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	f, err := decode(bufio.NewReaderSize(fh, chunkBytes), size)
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe):
		return nil, fmt.Errorf("modelfile: %w", err) // "read PATH: …" already
	case err != nil:
		return nil, fmt.Errorf("modelfile: read %s: %w", path, err)
	}
	return f, nil
}

// WriteFile writes f to path atomically (internal/atomicfile): it encodes
// into a temporary file in the same directory, fsyncs and closes it,
// renames it over path and fsyncs the directory. On any error the
// temporary file is removed and an existing file at path is left
// untouched. A new file gets mode 0644, an existing one keeps its
// permissions, and a path that is a symbolic link is written through.
func WriteFile(path string, f *File) error {
	if err := atomicfile.Write(path, func(w io.Writer) error { return encode(w, f) }); err != nil {
		return fmt.Errorf("modelfile: %w", err)
	}
	return nil
}
