package modelfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func seq(n int, scale float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(i) * scale
	}
	return out
}

func sampleFile() *File {
	return &File{
		Kind: KindModel,
		Spec: json.RawMessage(`{"name":"lenet","input":[28,28,1],"layers":[{"type":"conv2d"}]}`),
		Meta: json.RawMessage(`{"labels":["a","b"],"epoch":3}`),
		Tensors: []Tensor{
			{Name: "conv1/kernel", Shape: []int{3, 3, 1, 4}, Data: seq(36, 0.5)},
			{Name: "conv1/bias", Shape: []int{4}, Data: []float32{1, -2, float32(math.Inf(1)), -0}},
			{Name: "dense/kernel", Shape: []int{2, 3}, Data: seq(6, -1.25)},
		},
	}
}

func mustEncode(t testing.TB, f *File) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, Encode(&buf, f))
	return buf.Bytes()
}

// rawFile builds a file from a header JSON and tensor floats with correct
// lengths and checksum, so that header-table validation can be tested.
func rawFile(hdr string, data []float32) []byte {
	b := []byte(Magic)
	b = binary.LittleEndian.AppendUint32(b, Version)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(hdr)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data))*4)
	b = append(b, hdr...)
	for _, v := range data {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return fixCRC(append(b, 0, 0, 0, 0))
}

// fixCRC recomputes the trailing checksum of b in place.
func fixCRC(b []byte) []byte {
	n := len(b) - checksumLen
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// sameFile compares two Files bit-exactly (NaN-safe), treating nil and empty
// Data/Shape alike.
func sameFile(t *testing.T, want, got *File) {
	t.Helper()
	assert.Equal(t, want.Kind, got.Kind)
	assert.JSONEq(t, string(want.Spec), string(got.Spec))
	if len(want.Meta) == 0 {
		assert.Nil(t, got.Meta)
	} else {
		assert.JSONEq(t, string(want.Meta), string(got.Meta))
	}
	require.Len(t, got.Tensors, len(want.Tensors))
	for i, w := range want.Tensors {
		g := got.Tensors[i]
		assert.Equal(t, w.Name, g.Name)
		assert.Equal(t, len(w.Shape), len(g.Shape), w.Name)
		if len(w.Shape) > 0 {
			assert.Equal(t, w.Shape, g.Shape, w.Name)
		}
		require.Equal(t, len(w.Data), len(g.Data), w.Name)
		for j := range w.Data {
			if math.Float32bits(w.Data[j]) != math.Float32bits(g.Data[j]) {
				t.Fatalf("tensor %q[%d]: want %v got %v", w.Name, j, w.Data[j], g.Data[j])
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	nan := math.Float32frombits(0x7fc00001)
	tests := []struct {
		name string
		file *File
	}{
		{"sample", sampleFile()},
		{"zero tensors", &File{Kind: KindModel, Spec: json.RawMessage(`{}`)}},
		{"empty meta", &File{Kind: KindCheckpoint, Spec: json.RawMessage(`{"a":1}`), Meta: json.RawMessage{},
			Tensors: []Tensor{{Name: "w", Shape: []int{2}, Data: []float32{1, 2}}}}},
		{"meta is a list", &File{Kind: KindCheckpoint, Spec: json.RawMessage(`{"a":1}`), Meta: json.RawMessage(`[1,2,"<&>"]`)}},
		{"scalar and empty tensors", &File{Kind: KindModel, Spec: json.RawMessage(`{"x":"y"}`), Tensors: []Tensor{
			{Name: "scalar", Shape: nil, Data: []float32{42}},
			{Name: "empty", Shape: []int{0, 5}, Data: nil},
			{Name: "nan", Shape: []int{3}, Data: []float32{nan, float32(math.Inf(-1)), math.SmallestNonzeroFloat32}},
		}}},
		{"unicode names", &File{Kind: KindModel, Spec: json.RawMessage(`{}`), Tensors: []Tensor{
			{Name: "слой/ядро \"q\"", Shape: []int{1}, Data: []float32{3}},
		}}},
		{"large", &File{Kind: KindModel, Spec: json.RawMessage(`{}`), Tensors: []Tensor{
			{Name: "big", Shape: []int{600, 1000}, Data: seq(600000, 0.001)},
			{Name: "small", Shape: []int{3}, Data: seq(3, 1)},
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustEncode(t, tc.file)
			got, err := DecodeBytes(b)
			require.NoError(t, err)
			sameFile(t, tc.file, got)

			got2, err := Decode(bytes.NewReader(b))
			require.NoError(t, err)
			sameFile(t, tc.file, got2)

			// Re-encoding the decoded file gives the same bytes.
			assert.Equal(t, b, mustEncode(t, got))
		})
	}
}

func TestDecodedTensorsDoNotAlias(t *testing.T) {
	got, err := DecodeBytes(mustEncode(t, sampleFile()))
	require.NoError(t, err)
	a := got.Tensors[0].Data
	before := got.Tensors[1].Data[0]
	_ = append(a, 99) // must not write into the next tensor
	assert.Equal(t, before, got.Tensors[1].Data[0])
}

func TestDeterministic(t *testing.T) {
	first := mustEncode(t, sampleFile())
	for range 5 {
		assert.Equal(t, first, mustEncode(t, sampleFile()))
	}
	// Whitespace in Spec does not change the bytes.
	f := sampleFile()
	f.Spec = json.RawMessage("{ \"name\" : \"lenet\",\n \"input\":[28, 28, 1], \"layers\":[{\"type\":\"conv2d\"}] }")
	assert.Equal(t, first, mustEncode(t, f))
}

func TestTensorLookup(t *testing.T) {
	f := sampleFile()
	tt, err := f.Tensor("conv1/bias")
	require.NoError(t, err)
	assert.Equal(t, []int{4}, tt.Shape)

	_, err = f.Tensor("nope")
	require.ErrorIs(t, err, ErrTensorNotFound)
	assert.Contains(t, err.Error(), `"nope"`)
	assert.Contains(t, err.Error(), `"conv1/kernel"`)

	_, err = (&File{Kind: KindModel}).Tensor("x")
	require.ErrorIs(t, err, ErrTensorNotFound)
	assert.Contains(t, err.Error(), "no tensors")
}

func TestEncodeInvalid(t *testing.T) {
	spec := json.RawMessage(`{}`)
	tests := []struct {
		name string
		file *File
		msg  string
	}{
		{"nil", nil, "nil File"},
		{"bad kind", &File{Kind: "weights", Spec: spec}, `unknown kind "weights"`},
		{"no spec", &File{Kind: KindModel}, "spec is missing"},
		{"spec not object", &File{Kind: KindModel, Spec: json.RawMessage(`[1]`)}, "not a JSON object"},
		{"spec invalid", &File{Kind: KindModel, Spec: json.RawMessage(`{"a":`)}, "not a JSON object"},
		{"meta invalid", &File{Kind: KindModel, Spec: spec, Meta: json.RawMessage(`{`)}, "meta is not valid JSON"},
		{"empty name", &File{Kind: KindModel, Spec: spec, Tensors: []Tensor{{Shape: []int{1}, Data: []float32{1}}}}, "empty name"},
		{"bad utf8", &File{Kind: KindModel, Spec: spec, Tensors: []Tensor{{Name: "\xff", Shape: []int{1}, Data: []float32{1}}}}, "UTF-8"},
		{"dup", &File{Kind: KindModel, Spec: spec, Tensors: []Tensor{
			{Name: "a", Shape: []int{1}, Data: []float32{1}}, {Name: "a", Shape: []int{1}, Data: []float32{1}}}}, `duplicate tensor name "a"`},
		{"negative dim", &File{Kind: KindModel, Spec: spec, Tensors: []Tensor{{Name: "a", Shape: []int{2, -1}}}}, "negative dimension -1"},
		{"length mismatch", &File{Kind: KindModel, Spec: spec, Tensors: []Tensor{{Name: "a", Shape: []int{2, 2}, Data: []float32{1}}}},
			`tensor "a": shape [2 2] needs 4 floats, data has 1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Encode(&buf, tc.file)
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tc.msg)
			assert.Zero(t, buf.Len(), "nothing written for an invalid file")
		})
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestEncodeWriteError(t *testing.T) {
	for after := range 3 {
		err := Encode(&failWriter{after: after}, sampleFile())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "disk full")
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := mustEncode(t, sampleFile())
	mutate := func(fn func(b []byte) []byte) []byte {
		return fn(bytes.Clone(valid))
	}
	hdrLen := int(binary.LittleEndian.Uint32(valid[12:]))
	dataStart := prefixLen + hdrLen
	spec := `"kind":"model","spec":{}`

	tests := []struct {
		name string
		in   []byte
		is   error
		msg  string
	}{
		{"empty", nil, ErrNotModelFile, "empty"},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"), ErrNotModelFile, "not a kiln model file (bad magic)"},
		{"text", []byte("hello, this is a text file\n"), ErrNotModelFile, "bad magic"},
		{"json", []byte(`{"kind":"model"}`), ErrNotModelFile, "bad magic"},
		{"short foreign", []byte("KX"), ErrNotModelFile, "bad magic"},
		{"version 7", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 7); return b }),
			ErrVersion, "unsupported format version 7 (this kiln reads 1)"},
		{"version 0", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 0); return b }),
			ErrVersion, "version 0"},
		{"flip data byte", mutate(func(b []byte) []byte { b[dataStart+5] ^= 0x10; return b }),
			ErrCorrupt, "checksum mismatch: file is corrupt"},
		{"flip header byte", mutate(func(b []byte) []byte { b[prefixLen+3] ^= 0x01; return b }),
			ErrCorrupt, "checksum mismatch"},
		{"flip checksum", mutate(func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }),
			ErrCorrupt, "checksum mismatch"},
		{"trailing garbage", append(bytes.Clone(valid), 'x'), ErrCorrupt, "after the checksum"},
		{"truncated data", valid[:dataStart+10], ErrCorrupt,
			"file is truncated: header says 184 bytes of tensor data, only 10 present"},
		{"truncated checksum", valid[:len(valid)-2], ErrCorrupt, "checksum missing (2 of 4 bytes present)"},
		{"truncated header", valid[:prefixLen+5], ErrCorrupt, "only 5 present"},
		{"huge header length", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 0xffffffff); return b }),
			ErrCorrupt, "exceeds the 67108864-byte limit"},
		{"zero header length", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 0); return b }),
			ErrCorrupt, "header length is 0"},
		{"huge data length", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[16:], math.MaxUint64); return b }),
			ErrCorrupt, "impossibly large"},
		{"big data length", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[16:], 1<<40); return b }),
			ErrCorrupt, "header says 1099511627776 bytes of tensor data, only 188 present"},
		{"odd data length", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[16:], 183); return b }),
			ErrCorrupt, "not a multiple of 4"},
		{"header not json", rawFile(`{"kind":`, nil), ErrCorrupt, "header is not valid JSON"},
		{"bad kind", rawFile(`{"kind":"zip","spec":{}}`, nil), ErrCorrupt, `unknown kind "zip"`},
		{"missing spec", rawFile(`{"kind":"model"}`, nil), ErrCorrupt, "spec is missing"},
		{"spec not object", rawFile(`{"kind":"model","spec":"x"}`, nil), ErrCorrupt, "not a JSON object"},
		{"shape mismatch", rawFile(`{`+spec+`,"tensors":[{"name":"conv1/kernel","shape":[3,3,1,64],"offset":0,"length":500}]}`, seq(500, 1)),
			ErrCorrupt, `tensor "conv1/kernel": shape [3 3 1 64] needs 576 floats, table says 500`},
		{"duplicate", rawFile(`{`+spec+`,"tensors":[{"name":"a","shape":[1],"offset":0,"length":1},{"name":"a","shape":[1],"offset":1,"length":1}]}`, seq(2, 1)),
			ErrCorrupt, `duplicate tensor name "a"`},
		{"empty name", rawFile(`{`+spec+`,"tensors":[{"name":"","shape":[1],"offset":0,"length":1}]}`, seq(1, 1)),
			ErrCorrupt, "tensor 0 has an empty name"},
		{"negative dim", rawFile(`{`+spec+`,"tensors":[{"name":"a","shape":[-2,-3],"offset":0,"length":6}]}`, seq(6, 1)),
			ErrCorrupt, `tensor "a": negative dimension -2 in shape [-2 -3]`},
		{"overflow shape", rawFile(`{`+spec+`,"tensors":[{"name":"a","shape":[4294967296,4294967296],"offset":0,"length":1}]}`, seq(1, 1)),
			ErrCorrupt, "too large"},
		{"out of range", rawFile(`{`+spec+`,"tensors":[{"name":"a","shape":[4],"offset":2,"length":4}]}`, seq(4, 1)),
			ErrCorrupt, `tensor "a": floats [2, 6) are outside the 4 floats of tensor data`},
		{"negative offset", rawFile(`{`+spec+`,"tensors":[{"name":"a","shape":[2],"offset":-1,"length":2}]}`, seq(2, 1)),
			ErrCorrupt, "outside"},
		{"overlap", rawFile(`{`+spec+`,"tensors":[{"name":"a","shape":[3],"offset":0,"length":3},{"name":"b","shape":[3],"offset":2,"length":3}]}`, seq(6, 1)),
			ErrCorrupt, `tensors "a" and "b" overlap`},
		{"gap", rawFile(`{`+spec+`,"tensors":[{"name":"a","shape":[2],"offset":0,"length":2},{"name":"b","shape":[2],"offset":3,"length":2}]}`, seq(5, 1)),
			ErrCorrupt, "floats [2, 3) of tensor data belong to no tensor"},
		{"unused tail", rawFile(`{`+spec+`,"tensors":[{"name":"a","shape":[2],"offset":0,"length":2}]}`, seq(5, 1)),
			ErrCorrupt, "floats [2, 5) of tensor data belong to no tensor"},
		{"offset not int", rawFile(`{`+spec+`,"tensors":[{"name":"a","shape":[2],"offset":1e99,"length":2}]}`, seq(2, 1)),
			ErrCorrupt, "not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if strconv.IntSize < 64 && tc.name == "overflow shape" {
				t.Skip("the dimensions do not fit a 32-bit int: JSON decoding refuses them first")
			}
			for _, dec := range []struct {
				name string
				fn   func([]byte) (*File, error)
			}{
				{"bytes", DecodeBytes},
				{"reader", func(b []byte) (*File, error) { return Decode(io.MultiReader(bytes.NewReader(b))) }},
			} {
				f, err := dec.fn(tc.in)
				require.Error(t, err, dec.name)
				assert.Nil(t, f)
				assert.ErrorIs(t, err, tc.is, dec.name)
				assert.Contains(t, err.Error(), tc.msg, dec.name)
			}
		})
	}
}

func TestDecodeTruncatedEverywhere(t *testing.T) {
	valid := mustEncode(t, sampleFile())
	for cut := 0; cut < len(valid); cut++ {
		in := valid[:cut]
		for _, dec := range []func([]byte) (*File, error){
			DecodeBytes,
			func(b []byte) (*File, error) { return Decode(iotestOneByte(b)) },
		} {
			f, err := dec(in)
			require.Error(t, err, "cut %d", cut)
			assert.Nil(t, f)
			if cut == 0 {
				assert.ErrorIs(t, err, ErrNotModelFile)
				continue
			}
			assert.ErrorIs(t, err, ErrCorrupt, "cut %d", cut)
			assert.Contains(t, err.Error(), "file is truncated", "cut %d", cut)
		}
	}
}

// iotestOneByte returns a reader that yields one byte per Read, to exercise
// incremental reading.
func iotestOneByte(b []byte) io.Reader { return &oneByteReader{b: b} }

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("device gone") }

func TestDecodeReaderError(t *testing.T) {
	valid := mustEncode(t, sampleFile())
	_, err := Decode(io.MultiReader(bytes.NewReader(valid[:40]), errReader{}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "device gone")
}

// A hostile header claiming a huge data section must not make the streaming
// decoder allocate in proportion to the claim.
func TestDecodeHostileLengthsBoundedMemory(t *testing.T) {
	b := rawFile(`{"kind":"model","spec":{}}`, nil)
	binary.LittleEndian.PutUint64(b[16:], 1<<50)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Decode(bytes.NewReader(b))
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, ErrCorrupt)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "allocated too much for a tiny file")
}

func writeTestFile(t *testing.T, path string, f *File) {
	t.Helper()
	require.NoError(t, WriteFile(path, f))
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.kiln")
	f := sampleFile()
	writeTestFile(t, path, f)
	got, err := ReadFile(path)
	require.NoError(t, err)
	sameFile(t, f, got)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())

	// A successful write replaces the file.
	f2 := &File{Kind: KindCheckpoint, Spec: json.RawMessage(`{"v":2}`), Tensors: []Tensor{{Name: "x", Shape: []int{1}, Data: []float32{7}}}}
	writeTestFile(t, path, f2)
	got, err = ReadFile(path)
	require.NoError(t, err)
	sameFile(t, f2, got)
	assert.Equal(t, []string{"model.kiln"}, dirNames(t, dir), "no temp files left")

	_, err = ReadFile(dir)
	assert.EqualError(t, err, "modelfile: "+dir+" is a directory, not a model file")
}

func TestWriteFileRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeTestFile(t, "m.kiln", sampleFile())
	_, err := ReadFile("m.kiln")
	require.NoError(t, err)
	assert.Equal(t, []string{"m.kiln"}, dirNames(t, dir))
}

func TestWriteFileFailureLeavesExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.kiln")
	writeTestFile(t, path, sampleFile())
	orig, err := os.ReadFile(path)
	require.NoError(t, err)

	tests := []struct {
		name string
		path string
		file *File
		msg  string
	}{
		{"encode error", path, &File{Kind: "bogus", Spec: json.RawMessage(`{}`)}, `unknown kind "bogus"`},
		{"empty tensor name", path, &File{Kind: KindModel, Spec: json.RawMessage(`{}`), Tensors: []Tensor{{Shape: []int{1}, Data: []float32{1}}}}, "empty name"},
		{"missing dir", filepath.Join(dir, "nope", "model.kiln"), sampleFile(), "nope"},
		{"path is a dir", dir, sampleFile(), dir},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteFile(tc.path, tc.file)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.msg)
			assert.Contains(t, err.Error(), tc.path)
			now, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, orig, now, "existing file untouched")
			assert.Equal(t, []string{"model.kiln"}, dirNames(t, dir), "no temp file left behind")
		})
	}
}

func TestReadFileErrorsNamePath(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.kiln")
	_, err := ReadFile(missing)
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), missing)

	png := filepath.Join(dir, "cat.png")
	require.NoError(t, os.WriteFile(png, []byte("\x89PNG\r\n\x1a\nrest"), 0o644))
	_, err = ReadFile(png)
	require.ErrorIs(t, err, ErrNotModelFile)
	assert.Contains(t, err.Error(), png)
	assert.Contains(t, err.Error(), "bad magic")

	trunc := filepath.Join(dir, "trunc.kiln")
	valid := mustEncode(t, sampleFile())
	require.NoError(t, os.WriteFile(trunc, valid[:len(valid)-20], 0o644))
	_, err = ReadFile(trunc)
	require.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), trunc)
	assert.Contains(t, err.Error(), "header says 184 bytes of tensor data, only 168 present")

	_, err = ReadFile(dir) // a directory
	require.Error(t, err)
	assert.Contains(t, err.Error(), dir)
	assert.False(t, strings.Contains(err.Error(), "panic"))
}

func seedCorpus(f *testing.F) {
	files := []*File{
		sampleFile(),
		{Kind: KindModel, Spec: json.RawMessage(`{}`)},
		{Kind: KindCheckpoint, Spec: json.RawMessage(`{"a":[1,2]}`), Meta: json.RawMessage(`null`), Tensors: []Tensor{
			{Name: "s", Data: []float32{1}}, {Name: "e", Shape: []int{0}}}},
	}
	for _, mf := range files {
		var buf bytes.Buffer
		if err := Encode(&buf, mf); err != nil {
			f.Fatal(err)
		}
		b := buf.Bytes()
		f.Add(b)
		for _, cut := range []int{1, 8, 12, 20, 24, 30, len(b) / 2, len(b) - 5, len(b) - 1} {
			if cut < len(b) {
				f.Add(b[:cut])
			}
		}
	}
	f.Add([]byte{})
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add(rawFile(`{"kind":"model","spec":{},"tensors":[{"name":"a","shape":[3],"offset":0,"length":3},{"name":"b","shape":[1],"offset":2,"length":1}]}`, seq(4, 1)))
}

func FuzzDecode(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		// Also try the input with a correct checksum, so that mutations reach
		// the header and tensor-table validation instead of stopping at the CRC.
		if len(b) >= checksumLen {
			checkDecode(t, fixCRC(bytes.Clone(b)))
		}
	})
}

func checkDecode(t *testing.T, b []byte) {
	{
		got, err := DecodeBytes(b)
		got2, err2 := Decode(bytes.NewReader(b))
		if (err == nil) != (err2 == nil) {
			t.Fatalf("DecodeBytes err=%v, Decode err=%v", err, err2)
		}
		if err != nil {
			if !errors.Is(err, ErrNotModelFile) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		_ = got2
		// A decoded file is valid: it re-encodes and decodes to the same thing.
		var buf bytes.Buffer
		if err := Encode(&buf, got); err != nil {
			t.Fatalf("re-encode of decoded file failed: %v", err)
		}
		again, err := DecodeBytes(buf.Bytes())
		if err != nil {
			t.Fatalf("decode of re-encoded file failed: %v", err)
		}
		var buf2 bytes.Buffer
		if err := Encode(&buf2, again); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
			t.Fatal("encoding is not stable across a round trip")
		}
	}
}

func benchFile() *File {
	return &File{Kind: KindModel, Spec: json.RawMessage(`{"name":"bench"}`), Tensors: []Tensor{
		{Name: "w1", Shape: []int{1000, 1000}, Data: seq(1000000, 0.001)},
		{Name: "b1", Shape: []int{1000}, Data: seq(1000, 1)},
	}}
}

func BenchmarkEncode1M(b *testing.B) {
	f := benchFile()
	b.SetBytes(int64(1001000 * 4))
	for b.Loop() {
		if err := Encode(io.Discard, f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode1M(b *testing.B) {
	data := mustEncode(b, benchFile())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeBytes(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeStream1M(b *testing.B) {
	data := mustEncode(b, benchFile())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
