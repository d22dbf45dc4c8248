package server

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeInferRequest(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, r *InferRequest)
	}{
		{"flat FP32 with id", `{"id":"a\"b\u00e9\ud83d\ude00","inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1.5,-2e-3]}]}`,
			func(t *testing.T, r *InferRequest) {
				assert.True(t, r.HasID)
				assert.Equal(t, "a\"bé😀", r.ID)
				require.Len(t, r.Inputs, 1)
				assert.Equal(t, []int64{1, 2}, r.Inputs[0].Shape)
				assert.Equal(t, []float32{1.5, -2e-3}, r.Inputs[0].Data)
			}},
		{"nested UINT8", ` { "inputs" : [ { "name":"input","datatype":"UINT8","shape":[1,2,2,1],"data":[[[[0],[255]],[[7],[8]]]] } ] } `,
			func(t *testing.T, r *InferRequest) {
				assert.Equal(t, []float32{0, 255, 7, 8}, r.Inputs[0].Data)
				assert.False(t, r.HasID)
			}},
		{"outputs and parameters", `{"parameters":{"binary_data_output":true,"timeout":500,"x":[1,{"y":null}]},"unknown":{"a":[true,false]},"inputs":[{"name":"i","shape":[1],"datatype":"FP32","data":[0],"parameters":{"z":"q"}}],"outputs":[{"name":"class","parameters":{"binary_data":false}},{"name":"probabilities"}]}`,
			func(t *testing.T, r *InferRequest) {
				assert.True(t, r.BinaryOutput)
				assert.Equal(t, int64(500), r.TimeoutMicros)
				require.Len(t, r.Outputs, 2)
				assert.Equal(t, RequestedOutput{Name: "class", Binary: false, HasBinary: true}, r.Outputs[0])
				assert.Equal(t, RequestedOutput{Name: "probabilities"}, r.Outputs[1])
			}},
	}
	var r InferRequest
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, DecodeInferRequest([]byte(tc.body), &r, DefaultLimits()))
			tc.check(t, &r)
		})
	}
}

func TestDecodeInferRequestErrors(t *testing.T) {
	in := func(extra string) string {
		return `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32"` + extra + `}]}`
	}
	tests := []struct{ name, body, want string }{
		{"empty", ``, "empty request body"},
		{"not an object", `[1]`, "must be a JSON object"},
		{"truncated", `{"inputs":[{"name":"input"`, "malformed JSON"},
		{"trailing", in(`,"data":[1,2]`) + `x`, "unexpected data after"},
		{"no inputs", `{"id":"x"}`, `no "inputs"`},
		{"no data", in(``), `has no "data"`},
		{"NaN", in(`,"data":[NaN,1]`), "NaN"},
		{"Infinity", in(`,"data":[Infinity,1]`), "NaN and Infinity"},
		{"string data", in(`,"data":["1",2]`), "found a string"},
		{"overflow", in(`,"data":[1e39,2]`), "out of FP32 range"},
		{"huge exponent", in(`,"data":[1e999,2]`), "out of range"},
		{"leading zero", in(`,"data":[01,2]`), "want ',' or ']'"},
		{"bad datatype", `{"inputs":[{"name":"input","shape":[1],"datatype":"INT32","data":[1]}]}`, `datatype "INT32" is not supported`},
		{"uint8 range", `{"inputs":[{"name":"input","shape":[1],"datatype":"UINT8","data":[256]}]}`, "not an integer in 0..255"},
		{"uint8 fraction", `{"inputs":[{"name":"input","shape":[1],"datatype":"UINT8","data":[1.5]}]}`, "not an integer in 0..255"},
		{"uint8 negative", `{"inputs":[{"name":"input","shape":[1],"datatype":"UINT8","data":[-1]}]}`, "not an integer in 0..255"},
		{"uint8 small fraction", `{"inputs":[{"name":"input","shape":[2],"datatype":"UINT8","data":[0,-0.5]}]}`, "not an integer in 0..255"},
		{"uint8 past int32", `{"inputs":[{"name":"input","shape":[2],"datatype":"UINT8","data":[1,4294967296]}]}`, "not an integer in 0..255"},
		{"uint8 past 2^31", `{"inputs":[{"name":"input","shape":[1],"datatype":"UINT8","data":[2147483648]}]}`, "not an integer in 0..255"},
		{"uint8 large", `{"inputs":[{"name":"input","shape":[1],"datatype":"UINT8","data":[1e30]}]}`, "not an integer in 0..255"},
		{"negative shape", `{"inputs":[{"name":"input","shape":[-1],"datatype":"FP32","data":[1]}]}`, "non-negative integers"},
		{"no name", `{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}`, `no "name"`},
		{"binary without header", in(`,"parameters":{"binary_data_size":8}`), "no binary data"},
		{"bad escape", `{"id":"\q","inputs":[]}`, "invalid escape"},
		{"deep nesting", in(`,"data":` + repeat("[", 40) + `1` + repeat("]", 40)), "nesting deeper"},
		{"too many elements", in(`,"data":[1,2,3,4,5]`), "too many elements"},
	}
	lim := DefaultLimits()
	lim.MaxElements = 4
	var r InferRequest
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := DecodeInferRequest([]byte(tc.body), &r, lim)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestDecodeDataNesting: "data" is taken flat (its length is checked
// later, against the model) or nested exactly as the input's shape says,
// whatever the order of the members; nesting that is uneven, or even but
// unlike the shape, is refused naming the input (it was only counted:
// [[64 values],[]] passed for [1,8,8,1]).
func TestDecodeDataNesting(t *testing.T) {
	in := func(shape, data string) string {
		return `{"inputs":[{"name":"x","datatype":"FP32","shape":` + shape + `,"data":` + data + `}]}`
	}
	tests := []struct {
		name, body string
		want       []float32
		err        string
	}{
		{"flat", in(`[1,2,2,1]`, `[1,2,3,4]`), []float32{1, 2, 3, 4}, ""},
		{"flat, another length", in(`[1,2,2,1]`, `[1,2,3]`), []float32{1, 2, 3}, ""},
		{"nested as the shape", in(`[1,2,2,1]`, `[[[[1],[2]],[[3],[4]]]]`), []float32{1, 2, 3, 4}, ""},
		{"nested as a shape without batch", in(`[2,2,1]`, ` [ [ [1] , [2] ] , [ [3] , [4] ] ] `), []float32{1, 2, 3, 4}, ""},
		{"data before shape", `{"inputs":[{"name":"x","datatype":"FP32","data":[[1,2],[3,4]],"shape":[2,2]}]}`, []float32{1, 2, 3, 4}, ""},
		{"empty nested as the shape", in(`[2,0]`, `[[],[]]`), []float32{}, ""},
		{"a shorter array", in(`[2,2]`, `[[1,2],[3]]`), nil, `input "x": "data" is nested unevenly (arrays at depth 2 hold 2 and 1 elements); nest it as its shape [2,2] says, or send it flat`},
		{"an empty array", in(`[2,2]`, `[[1,2,3,4],[]]`), nil, "arrays at depth 2 hold 4 and 0 elements"},
		{"numbers beside arrays", in(`[2,2]`, `[1,[2,3],4]`), nil, "an array at depth 1 holds both numbers and arrays"},
		{"numbers at two depths", in(`[2,1]`, `[[1],[[2]]]`), nil, "numbers at depths 2 and 3"},
		{"even but not as the shape", in(`[2,2]`, `[[1,2,3,4]]`), nil, `input "x": "data" is nested as [1,4] but the input's shape is [2,2]; nest it as the shape says, or send it flat`},
		{"nested for a flat shape", in(`[4]`, `[[1,2],[3,4]]`), nil, "is nested as [2,2] but the input's shape is [4]"},
		{"deeper than the shape", in(`[2,2]`, `[[[1],[2]],[[3],[4]]]`), nil, "is nested as [2,2,1] but the input's shape is [2,2]"},
		{"a second input", `{"inputs":[{"name":"a","datatype":"FP32","shape":[2,1],"data":[[1],[2]]},{"name":"b","datatype":"UINT8","shape":[2,2],"data":[[1,2],[3]]}]}`, nil,
			`input "b": "data" is nested unevenly`},
	}
	var r InferRequest
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := DecodeInferRequest([]byte(tc.body), &r, DefaultLimits())
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, r.Inputs[0].Data)
		})
	}
}

// TestDecodeShapeDims: a shape dimension is decoded exactly up to the
// largest int64 when written in plain digits (the model check then says
// what is wrong with a huge one), and one that cannot be decoded is
// refused with a message that says why: not an integer, negative, or too
// large.
func TestDecodeShapeDims(t *testing.T) {
	tests := []struct {
		name, dims string
		want       []int64
		err        string // when the decoder refuses it
	}{
		{"small", `1,28,28,1`, []int64{1, 28, 28, 1}, ""},
		{"zero and minus zero", `0,-0`, []int64{0, 0}, ""},
		{"integral fraction and exponent", `28.0,2.8e1`, []int64{28, 28}, ""},
		{"2^53-1", `9007199254740991`, []int64{1<<53 - 1}, ""},
		{"2^53", `9007199254740992`, []int64{1 << 53}, ""},
		{"2^53+1 in digits", `9007199254740993`, []int64{1<<53 + 1}, ""},
		{"max int64", `9223372036854775807,784`, []int64{math.MaxInt64, 784}, ""},
		{"huge batch", `100000000000,28,28,1`, []int64{100000000000, 28, 28, 1}, ""},
		{"product overflows int64", `4294967296,4294967296,28,1`, []int64{1 << 32, 1 << 32, 28, 1}, ""},
		{"max int64 plus one", `9223372036854775808,784`, nil, "input shape dimension 9223372036854775808 is too large (at most 9223372036854775807)"},
		{"twenty digits", `99999999999999999999`, nil, "input shape dimension 99999999999999999999 is too large (at most 9223372036854775807)"},
		{"beyond float64", `1e400`, nil, "input shape dimension 1e400 is too large (at most 9223372036854775807)"},
		{"exponent beyond 2^53", `1e18`, nil, "input shape dimension 1e18 is too large (at most 9007199254740991, or 9223372036854775807 in plain digits)"},
		{"long number clipped", strings.Repeat("9", 100), nil, "input shape dimension " + strings.Repeat("9", 32) + "... is too large"},
		{"negative", `-1`, nil, "input shape must hold non-negative integers, found -1"},
		{"negative huge", `-9223372036854775809`, nil, "input shape must hold non-negative integers, found -9223372036854775809"},
		{"negative beyond float64", `-1e400`, nil, "input shape must hold non-negative integers"},
		{"fraction", `1.5`, nil, "input shape must hold non-negative integers, found 1.5"},
		{"string", `"1"`, nil, "input shape must hold non-negative integers"},
		{"malformed number", `1.`, nil, "input shape must hold non-negative integers"},
	}
	var r InferRequest
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"inputs":[{"name":"input","shape":[` + tc.dims + `],"datatype":"FP32","data":[1]}]}`
			err := DecodeInferRequest([]byte(body), &r, DefaultLimits())
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				if strings.Contains(tc.err, "too large") {
					assert.NotContains(t, err.Error(), "non-negative", "the sign of a positive value is not what is wrong")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, r.Inputs[0].Shape)
		})
	}
}

// TestDecodeDataNumbers checks the decoder's fast paths for small integers
// and short decimals against encoding/json: every array below decodes to
// the same float32 values, or is rejected as encoding/json rejects it.
func TestDecodeDataNumbers(t *testing.T) {
	arrays := []string{
		`[0,1,2,255,0]`, `[7]`, `[0]`, `[12,34 ,56, 78,9]`, `[1,-2,3]`, `[1.5,2,3e2,4E-1,0.0]`,
		`[999999999,1]`, `[1000000000,1]`, `[4294967295,4294967296,1]`, `[16777217,16777219,1]`,
		`[123456789012345678901234567890,1]`, `[-0,0,-0]`, `[-0.0,0.0e5,-0e-3]`,
		`[0.1,0.2,0.3,1e22,1e23,1e-22,1e-23,4503599627370495,4503599627370496,4503599627370497]`,
		`[0.000000000000000000001,123456789.987654321,9007199254740993,1.00000000000000011102230246251565]`,
		`[1e400,1]`, `[1e-400,1]`, `[3.4028235e38,-3.4028235e38]`,
		`[0,1,9,10,99,100,255,999,1000,0,5]`, `[0,05]`, `[1,012]`, `[100,0100]`, `[10,]`, `[100,]`, `[7,1a]`,
		`[01,2]`, `[00,1]`, `[1,,2]`, `[,1]`, `[1,]`, `[1 2]`, `[1,2`, `[1,2,`, `[+1,2]`, `[1.,2]`, `[.5,1]`,
	}
	lim := DefaultLimits()
	var r InferRequest
	for _, a := range arrays {
		body := `{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":` + a + `}]}`
		var want []float64
		jerr := json.Unmarshal([]byte(a), &want)
		err := DecodeInferRequest([]byte(body), &r, lim)
		if jerr != nil {
			assert.Error(t, err, "%s is not valid JSON", a)
			continue
		}
		require.NoError(t, err, a)
		got := r.Inputs[0].Data
		require.Len(t, got, len(want), a)
		for i := range want {
			assert.Equal(t, math.Float32bits(float32(want[i])), math.Float32bits(got[i]), "%s element %d", a, i)
		}
	}
	// Random image-like arrays, with and without spaces.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := 1 + rng.IntN(50)
		vals := make([]uint32, n)
		text := "["
		for i := range vals {
			vals[i] = rng.Uint32() >> rng.IntN(32)
			if i > 0 {
				text += []string{",", ", ", " ,"}[rng.IntN(3)]
			}
			text += strconv.FormatUint(uint64(vals[i]), 10)
		}
		text += "]"
		body := `{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":` + text + `}]}`
		require.NoError(t, DecodeInferRequest([]byte(body), &r, lim), text)
		require.Len(t, r.Inputs[0].Data, n)
		for i, v := range vals {
			require.Equal(t, float32(float64(v)), r.Inputs[0].Data[i], text)
		}
	}
	// Random decimals, exactly as encoding/json reads them (float64, then
	// float32): the shortest forms of float32 and float64 values, fixed and
	// exponent forms, signs, and exponents at and past the exact range.
	for range 300 {
		n := 1 + rng.IntN(40)
		text := "["
		for i := range n {
			if i > 0 {
				text += ","
			}
			v := rng.Float64() * math.Pow(10, float64(rng.IntN(60)-30))
			if rng.IntN(2) == 0 {
				v = -v
			}
			switch rng.IntN(5) {
			case 0:
				text += strconv.FormatFloat(float64(float32(v)), 'g', -1, 32)
			case 1:
				text += strconv.FormatFloat(v, 'g', -1, 64)
			case 2:
				text += strconv.FormatFloat(v, 'e', rng.IntN(20), 64)
			case 3:
				text += strconv.FormatFloat(v, 'f', rng.IntN(25), 64)
			default:
				text += strconv.FormatInt(rng.Int64N(1<<62)>>rng.IntN(62), 10) + "e" + strconv.Itoa(rng.IntN(40)-25)
			}
		}
		text += "]"
		var want []float64
		require.NoError(t, json.Unmarshal([]byte(text), &want), text)
		body := `{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":` + text + `}]}`
		require.NoError(t, DecodeInferRequest([]byte(body), &r, lim), text)
		for i := range want {
			require.Equal(t, math.Float32bits(float32(want[i])), math.Float32bits(r.Inputs[0].Data[i]), "%s element %d", text, i)
		}
	}
	// The element limit holds on the fast path too.
	lim.MaxElements = 3
	err := DecodeInferRequest([]byte(`{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":[1,2,3,4,5]}]}`), &r, lim)
	assert.ErrorContains(t, err, "too many elements")
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func binaryBody(header string, tensors ...[]byte) ([]byte, int) {
	b := []byte(header)
	for _, t := range tensors {
		b = append(b, t...)
	}
	return b, len(header)
}

func fp32Bytes(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func TestDecodeBinaryRequest(t *testing.T) {
	var r InferRequest
	body, hl := binaryBody(`{"inputs":[{"name":"a","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},{"name":"b","shape":[3],"datatype":"UINT8","parameters":{"binary_data_size":3}},{"name":"c","shape":[1],"datatype":"FP32","data":[9]}]}`,
		fp32Bytes(1.5, -2), []byte{0, 7, 255})
	require.NoError(t, DecodeBinaryRequest(body, hl, &r, DefaultLimits()))
	require.Len(t, r.Inputs, 3)
	assert.Equal(t, []float32{1.5, -2}, r.Inputs[0].Data)
	assert.Equal(t, []float32{0, 7, 255}, r.Inputs[1].Data)
	assert.Equal(t, []float32{9}, r.Inputs[2].Data)

	errs := []struct {
		name string
		body []byte
		hl   int
		want string
	}{
		{"header length too big", []byte(`{}`), 10, "Inference-Header-Content-Length is 10"},
		{"header length zero", []byte(`{}`), 0, "Inference-Header-Content-Length is 0"},
		{"short binary", body[:len(body)-1], hl, "only 2 bytes"},
		{"left over", append(append([]byte(nil), body...), 1), hl, "left over"},
		{"not multiple of 4", func() []byte {
			b, _ := binaryBody(`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":3}}]}`, []byte{1, 2, 3})
			return b
		}(), len(`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":3}}]}`), "not a multiple of 4"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			err := DecodeBinaryRequest(tc.body, tc.hl, &r, DefaultLimits())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s\n\r\t\x01<>&", "é😀\u2028", "\xff\xfe bad"} {
		var back string
		require.NoError(t, json.Unmarshal(appendString(nil, s), &back), s)
		if utf8.ValidString(s) {
			assert.Equal(t, s, back)
		}
	}
}

// checkDecoded asserts invariants every successful decode must hold.
func checkDecoded(t *testing.T, r *InferRequest, lim Limits) {
	require.NotEmpty(t, r.Inputs)
	require.LessOrEqual(t, len(r.Inputs), lim.MaxTensors)
	for _, in := range r.Inputs {
		require.LessOrEqual(t, len(in.Data), lim.MaxElements)
		require.LessOrEqual(t, len(in.Shape), lim.MaxDims)
		require.Contains(t, []string{DatatypeFP32, DatatypeUINT8}, in.Datatype)
	}
	if r.HasID && utf8.ValidString(r.ID) {
		var back string
		require.NoError(t, json.Unmarshal(appendString(nil, r.ID), &back))
		require.Equal(t, r.ID, back)
	}
}

func fuzzLimits() Limits {
	return Limits{MaxElements: 1 << 12, MaxTensors: 4, MaxDims: 8, MaxDepth: 16}
}

// FuzzDecodeInferRequest feeds arbitrary bodies to the JSON decoder: it
// must never panic, and what it accepts must respect the limits and agree
// with encoding/json on validity.
func FuzzDecodeInferRequest(f *testing.F) {
	f.Add([]byte(`{"id":"x","inputs":[{"name":"input","shape":[1,2,2,1],"datatype":"UINT8","data":[[[[1],[2]],[[3],[4]]]]}],"outputs":[{"name":"class"}]}`))
	f.Add([]byte(`{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1.5e-3,-0.0]}],"parameters":{"binary_data_output":true}}`))
	f.Add([]byte(`{"id":"\ud83d\ude00\n","inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1],"parameters":{"k":[{}]}}]}`))
	f.Add([]byte(`{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":[NaN]}]}`))
	f.Add([]byte(`{"inputs":[`))
	lim := fuzzLimits()
	f.Fuzz(func(t *testing.T, body []byte) {
		var r InferRequest
		if err := DecodeInferRequest(body, &r, lim); err != nil {
			return
		}
		checkDecoded(t, &r, lim)
		require.True(t, json.Valid(body), "accepted invalid JSON %q", body)
	})
}

// FuzzDecodeBinaryRequest feeds arbitrary bodies and header lengths to the
// binary-extension decoder: it must never panic and must account for every
// byte of binary data.
func FuzzDecodeBinaryRequest(f *testing.F) {
	h := `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`
	b, hl := binaryBody(h, fp32Bytes(1, 2))
	f.Add(b, hl)
	h2 := `{"inputs":[{"name":"input","shape":[3],"datatype":"UINT8","parameters":{"binary_data_size":3}}],"outputs":[{"name":"class","parameters":{"binary_data":true}}]}`
	b2, hl2 := binaryBody(h2, []byte{1, 2, 3})
	f.Add(b2, hl2)
	f.Add([]byte(`{}`), 5)
	lim := fuzzLimits()
	f.Fuzz(func(t *testing.T, body []byte, headerLen int) {
		var r InferRequest
		if err := DecodeBinaryRequest(body, headerLen, &r, lim); err != nil {
			return
		}
		checkDecoded(t, &r, lim)
		var bin int64
		for _, in := range r.Inputs {
			if in.BinarySize >= 0 {
				bin += in.BinarySize
			}
		}
		require.Equal(t, int64(len(body)-headerLen), bin)
	})
}
