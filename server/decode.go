package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Datatypes accepted for inputs and produced for outputs.
const (
	// DatatypeFP32 is 32-bit IEEE float.
	DatatypeFP32 = "FP32"
	// DatatypeUINT8 is an unsigned byte (raw pixel value).
	DatatypeUINT8 = "UINT8"
	// DatatypeINT64 is a signed 64-bit integer (used for the class output).
	DatatypeINT64 = "INT64"
)

// Limits bound what the request decoders accept from outside bytes, and
// what decoding it may cost.
type Limits struct {
	// MaxElements is the largest number of values one input tensor may hold.
	MaxElements int
	// MaxTensors bounds the number of inputs and of requested outputs.
	MaxTensors int
	// MaxDims bounds the rank of a shape.
	MaxDims int
	// MaxDepth bounds JSON nesting.
	MaxDepth int
	// MaxImagePixels bounds the width×height of a :classify image (413
	// beyond, from the image's header, before its pixels are decoded): a
	// PNG of a few kilobytes can declare 16 million pixels. Zero (the
	// default) derives the bound from the model: ImagePixelsPerInput
	// times its input's H×W, at least MinImagePixels, at most
	// data.MaxImagePixels (which also caps a value set here).
	MaxImagePixels int
	// MaxImageDecodes bounds the :classify images decoded at once; a
	// request finding them all busy waits for one until its deadline
	// (Config.Timeout, 504 beyond). Zero (the default) is GOMAXPROCS:
	// decoding is CPU-bound, so more at once would not finish sooner, and
	// each holds its image's pixels in memory.
	MaxImageDecodes int
}

// The bound on a :classify image's pixels when Limits.MaxImagePixels is
// zero: ImagePixelsPerInput times the model's input pixels (an image 16
// times its height and width), but at least MinImagePixels (2048×2048), so
// that a small model still takes an ordinary photo or scan scaled to a few
// megapixels, and at most data.MaxImagePixels (4096×4096).
const (
	// ImagePixelsPerInput is the multiple of the model's input pixels.
	ImagePixelsPerInput = 256
	// MinImagePixels is the least bound, whatever the model's input.
	MinImagePixels = 1 << 22
)

// DefaultLimits are generous for image models and still keep a hostile body
// from costing more than a few times its own size.
func DefaultLimits() Limits {
	return Limits{MaxElements: 1 << 24, MaxTensors: 16, MaxDims: 8, MaxDepth: 32}
}

// InferRequest is a decoded Open Inference Protocol v2 infer request.
// Decoders reuse its slices, so one value can serve many requests.
type InferRequest struct {
	// ID is echoed in the response when HasID is set.
	ID    string
	HasID bool
	// Inputs in request order.
	Inputs []InputTensor
	// Outputs lists the requested outputs; empty means all of them.
	Outputs []RequestedOutput
	// BinaryOutput is the request-level "binary_data_output" parameter.
	BinaryOutput bool
	// TimeoutMicros is the optional "timeout" parameter (µs); 0 if absent.
	TimeoutMicros int64
}

// InputTensor is one input of an infer request. Data holds the values as
// sent (UINT8 values unscaled, 0..255).
type InputTensor struct {
	Name     string
	Datatype string
	Shape    []int64
	Data     []float32
	// HasData reports that a JSON "data" member was present.
	HasData bool
	// BinarySize is the "binary_data_size" parameter, or -1 if absent.
	BinarySize int64
}

// RequestedOutput is one entry of the request's "outputs".
type RequestedOutput struct {
	Name string
	// Binary is the output's "binary_data" parameter.
	Binary    bool
	HasBinary bool
}

// reset empties r for reuse, keeping allocated slices.
func (r *InferRequest) reset() {
	r.ID, r.HasID, r.BinaryOutput, r.TimeoutMicros = "", false, false, 0
	r.Inputs = r.Inputs[:0]
	r.Outputs = r.Outputs[:0]
}

// newInput appends an empty input, reusing the slices of an earlier request.
func (r *InferRequest) newInput() *InputTensor {
	if len(r.Inputs) < cap(r.Inputs) {
		r.Inputs = r.Inputs[:len(r.Inputs)+1]
	} else {
		r.Inputs = append(r.Inputs, InputTensor{})
	}
	in := &r.Inputs[len(r.Inputs)-1]
	*in = InputTensor{Shape: in.Shape[:0], Data: in.Data[:0], BinarySize: -1}
	return in
}

// DecodeInferRequest decodes a JSON infer request body into r. Errors name
// the offending member and are meant for the client.
func DecodeInferRequest(body []byte, r *InferRequest, lim Limits) error {
	r.reset()
	if len(body) == 0 {
		return errors.New("empty request body (want a JSON infer request)")
	}
	p := parser{b: body, lim: lim}
	if err := p.request(r); err != nil {
		return err
	}
	for i := range r.Inputs {
		in := &r.Inputs[i]
		if in.BinarySize >= 0 {
			if in.HasData {
				return fmt.Errorf("input %q has both \"data\" and \"binary_data_size\"", in.Name)
			}
			return fmt.Errorf("input %q has \"binary_data_size\" but the request carries no binary data (missing Inference-Header-Content-Length header?)", in.Name)
		}
		if !in.HasData {
			return fmt.Errorf("input %q has no \"data\"", in.Name)
		}
	}
	return nil
}

// DecodeBinaryRequest decodes a request that uses the binary tensor data
// extension: a JSON header of headerLen bytes followed by the raw tensors
// of every input that has a "binary_data_size" parameter, in input order,
// little-endian.
func DecodeBinaryRequest(body []byte, headerLen int, r *InferRequest, lim Limits) error {
	r.reset()
	if headerLen <= 0 || headerLen > len(body) {
		return fmt.Errorf("Inference-Header-Content-Length is %d but the body has %d bytes", headerLen, len(body))
	}
	p := parser{b: body[:headerLen], lim: lim}
	if err := p.request(r); err != nil {
		return err
	}
	rest := body[headerLen:]
	for i := range r.Inputs {
		in := &r.Inputs[i]
		if in.BinarySize < 0 {
			if !in.HasData {
				return fmt.Errorf("input %q has neither \"data\" nor \"binary_data_size\"", in.Name)
			}
			continue
		}
		if in.HasData {
			return fmt.Errorf("input %q has both \"data\" and \"binary_data_size\"", in.Name)
		}
		if in.BinarySize > int64(len(rest)) {
			return fmt.Errorf("input %q: binary_data_size is %d but only %d bytes of binary data remain", in.Name, in.BinarySize, len(rest))
		}
		raw := rest[:in.BinarySize]
		rest = rest[in.BinarySize:]
		switch in.Datatype {
		case DatatypeFP32:
			if len(raw)%4 != 0 {
				return fmt.Errorf("input %q: binary_data_size %d is not a multiple of 4 (FP32)", in.Name, len(raw))
			}
			n := len(raw) / 4
			if n > lim.MaxElements {
				return fmt.Errorf("input %q: too many elements (%d, at most %d)", in.Name, n, lim.MaxElements)
			}
			in.Data = grow(in.Data, n)
			for j := range n {
				in.Data[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
			}
		case DatatypeUINT8:
			if len(raw) > lim.MaxElements {
				return fmt.Errorf("input %q: too many elements (%d, at most %d)", in.Name, len(raw), lim.MaxElements)
			}
			in.Data = grow(in.Data, len(raw))
			for j, c := range raw {
				in.Data[j] = float32(c)
			}
		default:
			return fmt.Errorf("input %q: datatype %q is not supported (use FP32 or UINT8)", in.Name, in.Datatype)
		}
	}
	if len(rest) > 0 {
		return fmt.Errorf("%d bytes of binary data left over after the last binary input", len(rest))
	}
	return nil
}

// intern returns the one of known that equals b, or b as a new string:
// the names every request repeats then cost no allocation.
func intern(b []byte, known ...string) string {
	for _, k := range known {
		if string(b) == k {
			return k
		}
	}
	return string(b)
}

func grow(s []float32, n int) []float32 {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]float32, n)
}

// parser is a small JSON reader tailored to infer requests: it reads the
// tensor data straight into float32 slices and skips unknown members.
type parser struct {
	b   []byte
	i   int
	lim Limits
	tmp []byte // unescape scratch
	// The nesting of the input "data" read last (see noteArray): nest[l]
	// is the length of the arrays at level l (0: the outer array), leaf
	// the level of the arrays that hold the numbers (-1 before the first),
	// and uneven says how the nesting is uneven ("" when it is not).
	nest   []int64
	leaf   int
	uneven string
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("malformed JSON at byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (p *parser) peek() byte {
	p.ws()
	if p.i >= len(p.b) {
		return 0
	}
	return p.b[p.i]
}

func (p *parser) expect(c byte) error {
	if p.peek() != c {
		if p.i >= len(p.b) {
			return p.errorf("unexpected end of input, want %q", c)
		}
		return p.errorf("found %q, want %q", p.b[p.i], c)
	}
	p.i++
	return nil
}

// request parses the top-level object.
func (p *parser) request(r *InferRequest) error {
	if p.peek() != '{' {
		return p.errorf("the body must be a JSON object")
	}
	sawInputs := false
	err := p.object(0, func(key []byte, depth int) error {
		switch string(key) {
		case "id":
			if err := p.mustBe(kindString, depth, `"id"`); err != nil {
				return err
			}
			s, err := p.str()
			if err != nil {
				return fmt.Errorf("\"id\": %w", err)
			}
			r.ID, r.HasID = string(s), true
		case "inputs":
			sawInputs = true
			if err := p.mustBe(kindArray, depth, `"inputs"`); err != nil {
				return err
			}
			return p.array(depth, func(depth int) error {
				if len(r.Inputs) >= p.lim.MaxTensors {
					return fmt.Errorf("too many inputs (at most %d)", p.lim.MaxTensors)
				}
				if err := p.mustBe(kindObject, depth, `each of "inputs"`); err != nil {
					return err
				}
				return p.input(r.newInput(), depth)
			})
		case "outputs":
			if err := p.mustBe(kindArray, depth, `"outputs"`); err != nil {
				return err
			}
			return p.array(depth, func(depth int) error {
				if len(r.Outputs) >= p.lim.MaxTensors {
					return fmt.Errorf("too many outputs requested (at most %d)", p.lim.MaxTensors)
				}
				if err := p.mustBe(kindObject, depth, `each of "outputs"`); err != nil {
					return err
				}
				r.Outputs = append(r.Outputs, RequestedOutput{})
				return p.output(&r.Outputs[len(r.Outputs)-1], depth)
			})
		case "parameters":
			if err := p.mustBe(kindObject, depth, `"parameters"`); err != nil {
				return err
			}
			return p.object(depth, func(key []byte, depth int) error {
				switch string(key) {
				case "binary_data_output":
					if err := p.mustBe(kindBoolean, depth, `parameter "binary_data_output"`); err != nil {
						return err
					}
					b, err := p.boolean()
					if err != nil {
						return fmt.Errorf("parameter binary_data_output: %w", err)
					}
					r.BinaryOutput = b
				case "timeout":
					v, err := p.integer()
					if err != nil || v < 0 {
						return fmt.Errorf("parameter timeout must be a non-negative integer (microseconds)")
					}
					r.TimeoutMicros = v
				default:
					return p.skip(depth)
				}
				return nil
			})
		default:
			return p.skip(depth)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if p.peek() != 0 {
		return p.errorf("unexpected data after the request object")
	}
	if !sawInputs || len(r.Inputs) == 0 {
		return errors.New("the request has no \"inputs\"")
	}
	return nil
}

func (p *parser) input(in *InputTensor, depth int) error {
	var sawName, sawType, sawShape bool
	err := p.object(depth, func(key []byte, depth int) error {
		switch string(key) {
		case "name":
			if err := p.mustBe(kindString, depth, `input "name"`); err != nil {
				return err
			}
			s, err := p.str()
			if err != nil {
				return fmt.Errorf("input \"name\": %w", err)
			}
			in.Name, sawName = intern(s, InputName), true
		case "datatype":
			if err := p.mustBe(kindString, depth, `input "datatype"`); err != nil {
				return err
			}
			s, err := p.str()
			if err != nil {
				return fmt.Errorf("input \"datatype\": %w", err)
			}
			in.Datatype, sawType = intern(s, DatatypeUINT8, DatatypeFP32), true
		case "shape":
			sawShape = true
			in.Shape = in.Shape[:0]
			if err := p.mustBe(kindArray, depth, `input "shape"`); err != nil {
				return err
			}
			return p.array(depth, func(int) error {
				if len(in.Shape) >= p.lim.MaxDims {
					return fmt.Errorf("input shape has more than %d dimensions", p.lim.MaxDims)
				}
				v, err := p.dim()
				if err != nil {
					return err
				}
				in.Shape = append(in.Shape, v)
				return nil
			})
		case "data":
			in.HasData = true
			in.Data = in.Data[:0]
			if err := p.mustBe(kindArray, depth, `input "data"`); err != nil {
				return err
			}
			return p.data(in, depth)
		case "parameters":
			if err := p.mustBe(kindObject, depth, `input "parameters"`); err != nil {
				return err
			}
			return p.object(depth, func(key []byte, depth int) error {
				if string(key) != "binary_data_size" {
					return p.skip(depth)
				}
				v, err := p.integer()
				if err != nil || v < 0 {
					return fmt.Errorf("parameter binary_data_size must be a non-negative integer")
				}
				in.BinarySize = v
				return nil
			})
		default:
			return p.skip(depth)
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case !sawName:
		return errors.New("an input has no \"name\"")
	case !sawType:
		return fmt.Errorf("input %q has no \"datatype\"", in.Name)
	case !sawShape:
		return fmt.Errorf("input %q has no \"shape\"", in.Name)
	}
	if in.Datatype != DatatypeFP32 && in.Datatype != DatatypeUINT8 {
		return fmt.Errorf("input %q: datatype %q is not supported (use FP32 or UINT8)", in.Name, in.Datatype)
	}
	if in.HasData {
		if err := p.checkNesting(in); err != nil {
			return err
		}
	}
	if in.HasData && in.Datatype == DatatypeUINT8 {
		for _, v := range in.Data {
			// One conversion each way: i in 0..255 and float32(i) == v
			// hold only for an integer v in 0..255 (or -0), whatever an
			// out-of-range v converts to (it differs by architecture).
			if i := int32(v); uint32(i) > 255 || float32(i) != v {
				return fmt.Errorf("input %q: UINT8 value %g is not an integer in 0..255", in.Name, v)
			}
		}
	}
	return nil
}

func (p *parser) output(o *RequestedOutput, depth int) error {
	sawName := false
	err := p.object(depth, func(key []byte, depth int) error {
		switch string(key) {
		case "name":
			if err := p.mustBe(kindString, depth, `output "name"`); err != nil {
				return err
			}
			s, err := p.str()
			if err != nil {
				return fmt.Errorf("output \"name\": %w", err)
			}
			o.Name, sawName = intern(s, OutputProbabilities, OutputClass), true
		case "parameters":
			if err := p.mustBe(kindObject, depth, `output "parameters"`); err != nil {
				return err
			}
			return p.object(depth, func(key []byte, depth int) error {
				if string(key) != "binary_data" {
					return p.skip(depth)
				}
				if err := p.mustBe(kindBoolean, depth, `output parameter "binary_data"`); err != nil {
					return err
				}
				b, err := p.boolean()
				if err != nil {
					return fmt.Errorf("output parameter binary_data: %w", err)
				}
				o.Binary, o.HasBinary = b, true
				return nil
			})
		default:
			return p.skip(depth)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !sawName {
		return errors.New("a requested output has no \"name\"")
	}
	return nil
}

// data reads a flat or nested array of numbers into in.Data, recording
// its nesting for checkNesting.
func (p *parser) data(in *InputTensor, depth int) error {
	p.nest, p.leaf, p.uneven = p.nest[:0], -1, ""
	return p.dataArray(in, depth, 0)
}

// checkNesting checks the nesting of in's "data", just read by data,
// against in's shape: flat data is checked by its length only (later, by
// the model), nested data must be nested as the shape says, every array
// of one level as long as that dimension.
func (p *parser) checkNesting(in *InputTensor) error {
	if p.uneven != "" {
		return fmt.Errorf("input %q: \"data\" is nested unevenly (%s); nest it as its shape %s says, or send it flat", in.Name, p.uneven, fmtShape(in.Shape))
	}
	if len(p.nest) > 1 && !slices.Equal(p.nest, in.Shape) {
		return fmt.Errorf("input %q: \"data\" is nested as %s but the input's shape is %s; nest it as the shape says, or send it flat", in.Name, fmtShape(p.nest), fmtShape(in.Shape))
	}
	return nil
}

// noteArray records an array of "data" at level (0: the outer array) that
// held nums numbers and subs arrays; the first unevenness found is kept.
func (p *parser) noteArray(level, nums, subs int) {
	if p.uneven != "" {
		return
	}
	if nums > 0 {
		switch {
		case subs > 0:
			p.uneven = fmt.Sprintf("an array at depth %d holds both numbers and arrays", level+1)
			return
		case p.leaf < 0:
			p.leaf = level
		case p.leaf != level:
			p.uneven = fmt.Sprintf("numbers at depths %d and %d", min(p.leaf, level)+1, max(p.leaf, level)+1)
			return
		}
	}
	for len(p.nest) <= level {
		p.nest = append(p.nest, -1)
	}
	switch n, want := int64(nums+subs), p.nest[level]; {
	case want < 0:
		p.nest[level] = n
	case n != want:
		p.uneven = fmt.Sprintf("arrays at depth %d hold %d and %d elements", level+1, want, n)
	}
}

// dataArray reads an array of "data" at level (0: the outer array) into
// in.Data.
func (p *parser) dataArray(in *InputTensor, depth, level int) error {
	if depth >= p.lim.MaxDepth {
		return p.errorf("nesting deeper than %d", p.lim.MaxDepth)
	}
	if err := p.expect('['); err != nil {
		return fmt.Errorf("input \"data\" must be an array: %w", err)
	}
	if p.peek() == ']' {
		p.i++
		p.noteArray(level, 0, 0)
		return nil
	}
	nums, subs := 0, 0
	for {
		// Fast path for the bulk of an image request: a run of small
		// unsigned integers each followed directly by ','. Anything else
		// (spaces, signs, fractions, exponents, the last element) takes
		// the general path below, which accepts and rejects exactly what
		// this one does.
		before := len(in.Data)
		p.uintRun(in)
		nums += len(in.Data) - before
		c := p.peek()
		switch {
		case c == '[':
			if err := p.dataArray(in, depth+1, level+1); err != nil {
				return err
			}
			subs++
		case c == '-' || (c >= '0' && c <= '9'):
			if len(in.Data) >= p.lim.MaxElements {
				return fmt.Errorf("input %q: too many elements (more than %d)", in.Name, p.lim.MaxElements)
			}
			v, err := p.number()
			if err != nil {
				return err
			}
			f := float32(v)
			if math.IsInf(float64(f), 0) {
				return fmt.Errorf("input data value %g is out of FP32 range", v)
			}
			in.Data = append(in.Data, f)
			nums++
		case c == 'N' || c == 'I':
			return p.errorf("NaN and Infinity are not valid input values")
		case c == '"':
			return p.errorf("input \"data\" must hold numbers, found a string")
		case c == 0:
			return p.errorf("unexpected end of input inside \"data\"")
		default:
			return p.errorf("input \"data\" must hold numbers, found %q", c)
		}
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			p.noteArray(level, nums, subs)
			return nil
		default:
			return p.errorf("want ',' or ']' in \"data\"")
		}
	}
}

// uintRun appends to in.Data the run of JSON integers at p.i that have
// at most 9 digits (so exact in float32 only up to 2^24, rounded like the
// general path beyond), no leading zero, and a ',' right after them, and
// moves p.i past it; it stops before the first element that is not one,
// and at MaxElements.
func (p *parser) uintRun(in *InputTensor) {
	b, i, data, limit := p.b, p.i, in.Data, p.lim.MaxElements
	for len(data) < limit {
		// Elements of one to three digits (every UINT8 pixel) unrolled:
		// about half the time per element of the loop below.
		if i+4 <= len(b) {
			q := b[i : i+4 : i+4]
			if c0 := q[0] - '0'; c0 <= 9 {
				if q[1] == ',' {
					data = append(data, float32(c0))
					i += 2
					continue
				}
				if c1 := q[1] - '0'; c1 <= 9 && c0 != 0 {
					if q[2] == ',' {
						data = append(data, float32(uint32(c0)*10+uint32(c1)))
						i += 3
						continue
					}
					if c2 := q[2] - '0'; c2 <= 9 && q[3] == ',' {
						data = append(data, float32(uint32(c0)*100+uint32(c1)*10+uint32(c2)))
						i += 4
						continue
					}
				}
			}
		}
		j, v := i, uint32(0)
		for j < len(b) && j-i < 10 {
			c := b[j] - '0'
			if c > 9 {
				break
			}
			v = v*10 + uint32(c)
			j++
		}
		n := j - i
		if n == 0 || n > 9 || j >= len(b) || b[j] != ',' || (n > 1 && b[i] == '0') {
			break
		}
		data = append(data, float32(v))
		i = j + 1
	}
	p.i, in.Data = i, data
}

// object calls fn for each member with the parser positioned at its value.
// key is only valid until fn reads another string, so fn must inspect it
// first.
func (p *parser) object(depth int, fn func(key []byte, depth int) error) error {
	if depth >= p.lim.MaxDepth {
		return p.errorf("nesting deeper than %d", p.lim.MaxDepth)
	}
	if err := p.expect('{'); err != nil {
		return err
	}
	if p.peek() == '}' {
		p.i++
		return nil
	}
	for {
		if p.peek() != '"' {
			return p.errorf("want a member name")
		}
		key, err := p.str()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		if err := fn(key, depth+1); err != nil {
			return err
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.errorf("want ',' or '}' after a member")
		}
	}
}

// array calls fn for each element with the parser positioned at it.
func (p *parser) array(depth int, fn func(depth int) error) error {
	if depth >= p.lim.MaxDepth {
		return p.errorf("nesting deeper than %d", p.lim.MaxDepth)
	}
	if err := p.expect('['); err != nil {
		return err
	}
	if p.peek() == ']' {
		p.i++
		return nil
	}
	for {
		p.ws()
		if err := fn(depth + 1); err != nil {
			return err
		}
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return p.errorf("want ',' or ']' in an array")
		}
	}
}

// JSON value kinds, as mustBe names them.
const (
	kindObject  = "an object"
	kindArray   = "an array"
	kindString  = "a string"
	kindNumber  = "a number"
	kindBoolean = "a boolean"
	kindNull    = "null"
)

// kindOf names the kind of JSON value that starts with c, or returns ""
// when no value starts so.
func kindOf(c byte) string {
	switch {
	case c == '{':
		return kindObject
	case c == '[':
		return kindArray
	case c == '"':
		return kindString
	case c == '-' || (c >= '0' && c <= '9'):
		return kindNumber
	case c == 't' || c == 'f':
		return kindBoolean
	case c == 'n':
		return kindNull
	}
	return ""
}

// mustBe checks that the value at p.i, the member name of the request
// ("inputs", input "shape"), is of kind want. When it is another
// well-formed JSON value, the error names the member, the kind it must be
// and the kind it is (`"inputs" must be an array, found an object`); when
// it is not well-formed, the error reports the malformed JSON. It costs
// one look at the next byte when the kind is right.
func (p *parser) mustBe(want string, depth int, name string) error {
	c := p.peek()
	got := kindOf(c)
	if got == want {
		return nil
	}
	if err := p.skip(depth); err != nil {
		return err
	}
	return fmt.Errorf("%s must be %s, found %s", name, want, got)
}

// skip consumes any JSON value.
func (p *parser) skip(depth int) error {
	switch c := p.peek(); {
	case c == '{':
		return p.object(depth, func(_ []byte, d int) error { return p.skip(d) })
	case c == '[':
		return p.array(depth, p.skip)
	case c == '"':
		_, err := p.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := p.number()
		return err
	case c == 't' || c == 'f':
		_, err := p.boolean()
		return err
	case c == 'n':
		return p.literal("null")
	case c == 0:
		return p.errorf("unexpected end of input, want a value")
	default:
		return p.errorf("unexpected %q, want a value", c)
	}
}

func (p *parser) literal(s string) error {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return p.errorf("invalid literal, want %s", s)
	}
	p.i += len(s)
	return nil
}

func (p *parser) boolean() (bool, error) {
	switch p.peek() {
	case 't':
		return true, p.literal("true")
	case 'f':
		return false, p.literal("false")
	}
	return false, p.errorf("want true or false")
}

// integer reads a JSON number that must be an integer.
func (p *parser) integer() (int64, error) {
	c := p.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, p.errorf("want an integer")
	}
	v, err := p.number()
	if err != nil {
		return 0, err
	}
	if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
		return 0, p.errorf("%g is not an integer", v)
	}
	return int64(v), nil
}

// dim reads one dimension of an input shape: a non-negative integer, exact
// up to math.MaxInt64 when written in plain digits, below 2^53 otherwise
// (beyond, a float64 no longer tells whether "9007199254740993.5" was an
// integer). Whether the shape fits the model, and the server's max batch,
// is checked later with the whole shape in view (modelVersion.check),
// which then names the shape; here an error says what is wrong with the
// value itself.
func (p *parser) dim() (int64, error) {
	const notInt = "input shape must hold non-negative integers"
	if c := p.peek(); c != '-' && (c < '0' || c > '9') {
		return 0, errors.New(notInt)
	}
	start := p.i
	v, err := p.number()
	text := p.b[start:p.i]
	if err != nil {
		// number fails on malformed text, and on a number beyond
		// float64 ("1e400"), which ParseFloat then reports as ErrRange.
		if _, perr := strconv.ParseFloat(string(text), 64); errors.Is(perr, strconv.ErrRange) && text[0] != '-' {
			return 0, fmt.Errorf("input shape dimension %s is too large (at most %d)", clip(text), int64(math.MaxInt64))
		}
		return 0, errors.New(notInt)
	}
	switch {
	case v < 0 || v != math.Trunc(v):
		return 0, fmt.Errorf("%s, found %s", notInt, clip(text))
	case v < 1<<53:
		return int64(v), nil
	}
	plain := true
	for _, c := range text {
		plain = plain && c >= '0' && c <= '9'
	}
	if !plain {
		return 0, fmt.Errorf("input shape dimension %s is too large (at most %d, or %d in plain digits)", clip(text), int64(1<<53-1), int64(math.MaxInt64))
	}
	n, err := strconv.ParseInt(string(text), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("input shape dimension %s is too large (at most %d)", clip(text), int64(math.MaxInt64))
	}
	return n, nil
}

// clip renders number text for a message: a number can be a megabyte
// long.
func clip(text []byte) string {
	if len(text) > 40 {
		return string(text[:32]) + "..."
	}
	return string(text)
}

// number reads a JSON number with the strict JSON grammar. Numbers whose
// digits fit in 52 bits with a decimal exponent within ±22 (pixel values,
// and floats written with up to 15 significant digits: what clients
// send) are converted here by Clinger's exact method, one correctly rounded
// multiplication or division of two exact float64 values, so the result is
// the correctly rounded float64 that strconv.ParseFloat gives; others go to
// strconv.ParseFloat.
func (p *parser) number() (float64, error) {
	p.ws()
	start := p.i
	b := p.b
	i := p.i
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	if i >= len(b) || b[i] < '0' || b[i] > '9' {
		p.i = i
		return 0, p.errorf("invalid number")
	}
	var acc uint64 // the digits, while they fit in 52 bits
	over := false  // a digit did not fit
	exp := 0
	if b[i] == '0' {
		i++
	} else {
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if acc >= (1<<52)/10 {
				over = true
				continue
			}
			acc = acc*10 + uint64(b[i]-'0')
		}
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			p.i = i
			return 0, p.errorf("invalid number: digits must follow '.'")
		}
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if acc >= (1<<52)/10 {
				over = true
				continue
			}
			acc = acc*10 + uint64(b[i]-'0')
			exp--
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			p.i = i
			return 0, p.errorf("invalid number: digits must follow the exponent")
		}
		e := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if e < 10000 {
				e = e*10 + int(b[i]-'0')
			}
			i++
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	p.i = i
	if !over && exp >= -22 && exp <= 22 {
		v := float64(acc)
		if exp > 0 {
			v *= pow10[exp]
		} else if exp < 0 {
			v /= pow10[-exp]
		}
		if neg {
			v = -v
		}
		return v, nil
	}
	s := b[start:i]
	v, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(s), len(s)), 64)
	if err != nil {
		// Only ErrRange is possible for text matching the grammar.
		return 0, fmt.Errorf("number %s is out of range", s)
	}
	return v, nil
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// str reads a JSON string and returns its unescaped bytes. The result
// aliases the input or the parser's scratch and is valid until the next call.
func (p *parser) str() ([]byte, error) {
	if p.peek() != '"' {
		return nil, p.errorf("want a string")
	}
	p.i++
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !utf8.Valid(s) {
				return nil, p.errorf("string is not valid UTF-8")
			}
			return s, nil
		case c == '\\':
			return p.strSlow(start)
		case c < 0x20:
			return nil, p.errorf("control character in string")
		}
		p.i++
	}
	return nil, p.errorf("unterminated string")
}

// strSlow unescapes a string that contains backslashes.
func (p *parser) strSlow(start int) ([]byte, error) {
	out := append(p.tmp[:0], p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			p.tmp = out
			if !utf8.Valid(out) {
				return nil, p.errorf("string is not valid UTF-8")
			}
			return out, nil
		case c < 0x20:
			return nil, p.errorf("control character in string")
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.b) {
			break
		}
		e := p.b[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, p.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// Half of a UTF-16 pair: with the other half in the
				// \u escape that follows, the pair's character; else,
				// as encoding/json decodes it, U+FFFD, and the escape
				// that follows (if any) is read on its own.
				r = p.lowSurrogate(r)
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, p.errorf("invalid escape \\%c", e)
		}
	}
	return nil, p.errorf("unterminated string")
}

// lowSurrogate returns the character of the UTF-16 surrogate pair that
// starts with r (read from a \u escape) when p.i is at a \u escape of its
// second half, which it consumes; otherwise U+FFFD, consuming nothing.
func (p *parser) lowSurrogate(r rune) rune {
	if p.i+1 >= len(p.b) || p.b[p.i] != '\\' || p.b[p.i+1] != 'u' {
		return utf8.RuneError
	}
	start := p.i
	p.i += 2
	if r2, ok := p.hex4(); ok {
		if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
			return pair
		}
	}
	p.i = start
	return utf8.RuneError
}

func (p *parser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}
