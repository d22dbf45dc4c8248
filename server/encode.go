package server

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Output names every kiln model offers.
const (
	// OutputProbabilities is the softmax output, FP32 [N, classes].
	OutputProbabilities = "probabilities"
	// OutputClass is the arg-max class index, INT64 [N].
	OutputClass = "class"
	// InputName is the name of the single image input, [N, H, W, C].
	InputName = "input"
)

// appendString appends s as a JSON string, escaping what JSON requires
// plus <, > and & (safe inside HTML) and replacing invalid UTF-8.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendFloat appends a float32 in the shortest form that round-trips. The
// handlers refuse non-finite outputs before they encode them (nonFinite),
// so the null written for one here never reaches a client.
func appendFloat(b []byte, f float32) []byte {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, float64(f), 'g', -1, 32)
}

// outputSel is one output chosen for a response.
type outputSel struct {
	name   string
	binary bool
}

// selectOutputs resolves the request's "outputs" against the model's; an
// output requested twice is refused.
func selectOutputs(dst []outputSel, req *InferRequest) ([]outputSel, error) {
	dst = dst[:0]
	if len(req.Outputs) == 0 {
		return append(dst,
			outputSel{OutputProbabilities, req.BinaryOutput},
			outputSel{OutputClass, req.BinaryOutput}), nil
	}
	for _, o := range req.Outputs {
		if o.Name != OutputProbabilities && o.Name != OutputClass {
			return nil, fmt.Errorf("unknown output %q (the model has %q and %q)", o.Name, OutputProbabilities, OutputClass)
		}
		for _, prev := range dst {
			if prev.name == o.Name {
				return nil, fmt.Errorf("output %q is requested twice", o.Name)
			}
		}
		bin := req.BinaryOutput
		if o.HasBinary {
			bin = o.Binary
		}
		dst = append(dst, outputSel{o.Name, bin})
	}
	return dst, nil
}

// appendInferResponse writes the JSON part of an infer response into js and
// the binary outputs (if any) into bin, for n samples of classes
// probabilities each.
func appendInferResponse(js, bin []byte, model, version string, req *InferRequest, outs []outputSel, n, classes int, probs []float32) ([]byte, []byte) {
	js = append(js, `{"model_name":`...)
	js = appendString(js, model)
	js = append(js, `,"model_version":`...)
	js = appendString(js, version)
	if req.HasID {
		js = append(js, `,"id":`...)
		js = appendString(js, req.ID)
	}
	js = append(js, `,"outputs":[`...)
	for k, o := range outs {
		if k > 0 {
			js = append(js, ',')
		}
		js = append(js, `{"name":`...)
		js = appendString(js, o.name)
		if o.name == OutputProbabilities {
			js = append(js, `,"datatype":"FP32","shape":[`...)
			js = strconv.AppendInt(js, int64(n), 10)
			js = append(js, ',')
			js = strconv.AppendInt(js, int64(classes), 10)
			js = append(js, ']')
			if o.binary {
				js = append(js, `,"parameters":{"binary_data_size":`...)
				js = strconv.AppendInt(js, int64(4*n*classes), 10)
				js = append(js, "}}"...)
				for _, p := range probs[:n*classes] {
					bin = binary.LittleEndian.AppendUint32(bin, math.Float32bits(p))
				}
				continue
			}
			js = append(js, `,"data":[`...)
			for i, p := range probs[:n*classes] {
				if i > 0 {
					js = append(js, ',')
				}
				js = appendFloat(js, p)
			}
			js = append(js, "]}"...)
			continue
		}
		js = append(js, `,"datatype":"INT64","shape":[`...)
		js = strconv.AppendInt(js, int64(n), 10)
		js = append(js, ']')
		if o.binary {
			js = append(js, `,"parameters":{"binary_data_size":`...)
			js = strconv.AppendInt(js, int64(8*n), 10)
			js = append(js, "}}"...)
			for i := range n {
				bin = binary.LittleEndian.AppendUint64(bin, uint64(argmax(probs[i*classes:(i+1)*classes])))
			}
			continue
		}
		js = append(js, `,"data":[`...)
		for i := range n {
			if i > 0 {
				js = append(js, ',')
			}
			js = strconv.AppendInt(js, int64(argmax(probs[i*classes:(i+1)*classes])), 10)
		}
		js = append(js, "]}"...)
	}
	js = append(js, "]}"...)
	return js, bin
}

func argmax(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

// appendError writes {"error": msg}.
func appendError(b []byte, msg string) []byte {
	b = append(b, `{"error":`...)
	b = appendString(b, msg)
	return append(b, '}')
}
