// Package engine holds kiln's models: tensors on a backend, layers, the
// Sequential model and its JSON spec, losses, optimizers, the trainer and
// model files. It talks to devices only through backend.Backend.
package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/engine/modelfile"
)

// Spec describes a Sequential model. It is stored as JSON inside model files
// and can be written by hand (kiln train --model spec.json).
type Spec struct {
	// Name is a free-form model name.
	Name string `json:"name,omitempty"`
	// Input is the per-sample input shape [H, W, C] (NHWC without N).
	Input []int `json:"input"`
	// Layers run in order.
	Layers []LayerSpec `json:"layers"`

	// rateless is set by ParseSpec on a spec from a model or checkpoint
	// file that has a dropout layer without a rate: older kiln versions
	// accepted one (as the identity), and a file they saved must still
	// load. Specs built any other way must give every dropout a rate.
	rateless bool
}

// LayerSpec describes one layer. Type is one of conv2d, maxpool2d, flatten,
// dense, relu, dropout. Fields that do not apply to a type must be zero:
// Shapes refuses a spec that sets one (it would have no effect), naming the
// layer and the field.
type LayerSpec struct {
	Type       string  `json:"type"`
	Name       string  `json:"name,omitempty"`
	Filters    int     `json:"filters,omitempty"`    // conv2d
	Kernel     []int   `json:"kernel,omitempty"`     // conv2d [KH, KW]
	Strides    []int   `json:"strides,omitempty"`    // conv2d, maxpool2d [SH, SW]
	Padding    string  `json:"padding,omitempty"`    // conv2d: valid (default) or same; maxpool2d: valid only
	Pool       []int   `json:"pool,omitempty"`       // maxpool2d [PH, PW]
	Units      int     `json:"units,omitempty"`      // dense
	Activation string  `json:"activation,omitempty"` // conv2d, dense: "", relu, softmax (last layer only)
	Rate       float64 `json:"rate,omitempty"`       // dropout: in (0, 1), required
}

// layerFields lists the LayerSpec fields (by JSON name) that apply to a
// layer type besides type and name; known is false for an unknown type.
func layerFields(typ string) (fields []string, known bool) {
	switch typ {
	case "conv2d":
		return []string{"filters", "kernel", "strides", "padding", "activation"}, true
	case "maxpool2d":
		return []string{"pool", "strides", "padding"}, true
	case "dense":
		return []string{"units", "activation"}, true
	case "dropout":
		return []string{"rate"}, true
	case "flatten", "relu":
		return nil, true
	}
	return nil, false
}

// layerSetting is one of a LayerSpec's settings: its JSON name and value
// (an int, []int, string or float64).
type layerSetting struct {
	name  string
	value any
}

// set reports whether the setting is given (not zero; a slice not empty).
func (f layerSetting) set() bool {
	switch v := f.value.(type) {
	case int:
		return v != 0
	case []int:
		return len(v) > 0
	case string:
		return v != ""
	case float64:
		return v != 0
	}
	return false
}

// settings lists l's settings besides type and name, in declaration
// order: the one list setFields and the resume check (modelDifferences)
// both read.
func (l LayerSpec) settings() []layerSetting {
	return []layerSetting{
		{"filters", l.Filters}, {"kernel", l.Kernel}, {"strides", l.Strides},
		{"padding", l.Padding}, {"pool", l.Pool}, {"units", l.Units},
		{"activation", l.Activation}, {"rate", l.Rate},
	}
}

// setFields lists the fields of l (by JSON name, in declaration order)
// that are not zero, besides type and name.
func (l LayerSpec) setFields() []string {
	var set []string
	for _, f := range l.settings() {
		if f.set() {
			set = append(set, f.name)
		}
	}
	return set
}

// misplaced describes each field set on l that does not apply to its type,
// with a hint at what was probably meant, or returns nil when there is none
// (or the type is unknown, which Shapes reports itself).
func (l LayerSpec) misplaced() []string {
	apply, known := layerFields(l.Type)
	if !known {
		return nil
	}
	var out []string
	for _, f := range l.setFields() {
		if slices.Contains(apply, f) {
			continue
		}
		hint := ""
		switch {
		case l.Type == "maxpool2d" && f == "kernel":
			hint = ` (a max pooling's window is "pool")`
		case l.Type == "maxpool2d" && f == "activation":
			hint = ` (give the layer before it "activation":"relu", or add a {"type":"relu"} layer)`
		case l.Type == "dense" && f == "filters":
			hint = ` (a dense layer's width is "units")`
		case l.Type == "conv2d" && f == "units":
			hint = ` (a conv2d layer's width is "filters")`
		case f == "activation":
			hint = " (only conv2d and dense layers take one)"
		}
		out = append(out, fmt.Sprintf("%q does not apply to %s%s", f, l.Type, hint))
	}
	return out
}

// withoutMisplaced returns a copy of s without the fields its layers set
// that do not apply to their type, and with maxpool2d's padding "same"
// dropped: versions of kiln before these were refused ignored them, so
// the model a file saved then holds never had them.
func (s Spec) withoutMisplaced() Spec {
	out := s
	out.Layers = append([]LayerSpec(nil), s.Layers...)
	for i := range out.Layers {
		l := &out.Layers[i]
		apply, known := layerFields(l.Type)
		if !known {
			continue
		}
		keep := func(f string) bool { return slices.Contains(apply, f) }
		if !keep("filters") {
			l.Filters = 0
		}
		if !keep("kernel") {
			l.Kernel = nil
		}
		if !keep("strides") {
			l.Strides = nil
		}
		if !keep("padding") || (l.Type == "maxpool2d" && l.Padding != "valid") {
			l.Padding = ""
		}
		if !keep("pool") {
			l.Pool = nil
		}
		if !keep("units") {
			l.Units = 0
		}
		if !keep("activation") {
			l.Activation = ""
		}
		if !keep("rate") {
			l.Rate = 0
		}
	}
	return out
}

// ReferenceSpec is the classic small Keras CNN every kiln figure is measured
// on: Conv2D(64,3x3,relu) → MaxPool(2x2) → Conv2D(64,3x3,relu) →
// MaxPool(2x2) → Flatten → Dense(64,relu) → Dense(classes,softmax).
func ReferenceSpec(h, w, c, classes int) Spec {
	return Spec{
		Name:  "reference-cnn",
		Input: []int{h, w, c},
		Layers: []LayerSpec{
			{Type: "conv2d", Name: "conv1", Filters: 64, Kernel: []int{3, 3}, Activation: "relu"},
			{Type: "maxpool2d", Name: "pool1", Pool: []int{2, 2}},
			{Type: "conv2d", Name: "conv2", Filters: 64, Kernel: []int{3, 3}, Activation: "relu"},
			{Type: "maxpool2d", Name: "pool2", Pool: []int{2, 2}},
			{Type: "flatten", Name: "flatten"},
			{Type: "dense", Name: "dense1", Units: 64, Activation: "relu"},
			{Type: "dense", Name: "dense2", Units: classes, Activation: "softmax"},
		},
	}
}

// decodeSpec decodes a JSON spec strictly: unknown fields are errors.
func decodeSpec(b []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("model spec: %w", specJSONError(b, dec, err))
	}
	// One object and nothing after it: a stray brace or a second object
	// left by an edit is a mistake, not something to ignore.
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return Spec{}, fmt.Errorf("model spec: data after the spec's JSON object ends at byte %d", dec.InputOffset())
	}
	return s, nil
}

// specJSONError turns encoding/json's error for a spec into one that
// names the place (line and column) and the problem in the spec's own
// terms rather than Go's.
func specJSONError(b []byte, dec *json.Decoder, err error) error {
	at := func(off int64) string {
		off = min(max(off, 0), int64(len(b)))
		line := 1 + bytes.Count(b[:off], []byte("\n"))
		col := off - int64(bytes.LastIndexByte(b[:off], '\n'))
		return fmt.Sprintf("line %d, column %d", line, col)
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case len(bytes.TrimSpace(b)) == 0:
		return errors.New("the file is empty (want a JSON object: {\"input\": [H, W, C], \"layers\": [...]})")
	case errors.As(err, &syn):
		return fmt.Errorf("invalid JSON at %s: %v", at(syn.Offset-1), err)
	case errors.As(err, &typ):
		want := typ.Type.String()
		switch typ.Type.Kind() {
		case reflect.Int:
			want = "a whole number"
		case reflect.Float64:
			want = "a number"
		case reflect.String:
			want = "a string"
		case reflect.Slice:
			want = "a list such as [3, 3]"
		}
		return fmt.Errorf("%q near %s: want %s, got a JSON %s", typ.Field, at(typ.Offset-1), want, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return fmt.Errorf("the JSON ends early, at %s (a missing ] or }?)", at(int64(len(b))))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.TrimPrefix(err.Error(), "json: unknown field ") // quoted
		off := dec.InputOffset()
		if i := bytes.Index(b, []byte(field)); i >= 0 { // its first use: the decoder is past it
			off = int64(i) + 1
		}
		fields := []string{"type", "name"}
		for _, f := range (LayerSpec{}).settings() {
			fields = append(fields, f.name)
		}
		return fmt.Errorf("unknown field %s at %s (a spec takes name, input, layers; a layer takes %s)", field, at(off), strings.Join(fields, ", "))
	}
	return err
}

// ParseSpecStrict decodes a JSON spec a person wrote (unknown fields are
// errors) and validates it with Shapes: among other things, a field that
// does not apply to its layer's type, or a dropout layer without a rate,
// is refused.
func ParseSpecStrict(b []byte) (Spec, error) {
	s, err := decodeSpec(b)
	if err != nil {
		return Spec{}, err
	}
	if _, err := s.Shapes(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// ParseSpec decodes the JSON spec of a model or checkpoint file (unknown
// fields are errors) and validates it. Files saved by kiln versions that
// did not yet refuse fields that do not apply to a layer's type, nor a
// dropout layer without a rate, still load as the model they always were:
// such fields are dropped (they never had an effect) and such a dropout
// stays the identity. A spec a person wrote goes through ParseSpecStrict
// or LoadSpec, which refuse both.
func ParseSpec(b []byte) (Spec, error) {
	s, err := decodeSpec(b)
	if err != nil {
		return Spec{}, err
	}
	s = s.withoutMisplaced()
	for _, l := range s.Layers {
		s.rateless = s.rateless || (l.Type == "dropout" && l.Rate == 0)
	}
	if _, err := s.Shapes(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// LoadSpec reads a JSON spec file and validates it as ParseSpecStrict does.
func LoadSpec(path string) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("read model spec: %w", err)
	}
	if bytes.HasPrefix(b, []byte(modelfile.Magic)) {
		return Spec{}, fmt.Errorf("%s is a kiln model file, not a JSON model spec: --model takes a spec (or reference); kiln does not train on from a saved model", path)
	}
	s, err := ParseSpecStrict(b)
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Classes is the width of the last layer's output.
func (s Spec) Classes() int {
	shapes, err := s.Shapes()
	if err != nil || len(shapes) == 0 {
		return 0
	}
	last := shapes[len(shapes)-1]
	return last[len(last)-1]
}

// layerName returns the layer's name or a positional one.
func (s Spec) layerName(i int) string {
	if s.Layers[i].Name != "" {
		return s.Layers[i].Name
	}
	return fmt.Sprintf("%s_%d", s.Layers[i].Type, i)
}

func pair(v []int, def int, field string) (int, int, error) {
	switch len(v) {
	case 0:
		return def, def, nil
	case 1:
		return v[0], v[0], nil
	case 2:
		return v[0], v[1], nil
	}
	return 0, 0, fmt.Errorf("%s must have 1 or 2 values, got %v", field, v)
}

// MaxTensorElems bounds every tensor a spec describes: one sample's input or
// a layer's output, and a layer's weights (2^31−1 float32 values, just
// under 8 GiB).
// Beyond it a spec is a mistake, not a model; checking it here turns what
// would be an integer overflow or an out-of-memory crash into an error
// that names the layer.
const MaxTensorElems = 1<<31 - 1

// capProd multiplies positive sizes, reporting false once the product
// passes MaxTensorElems (so it never overflows).
func capProd(dims ...int) (int, bool) {
	n := 1
	for _, d := range dims {
		if d <= 0 || n > MaxTensorElems/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// paramShape is the name and shape of one trainable tensor.
type paramShape struct {
	name  string
	shape []int
}

// paramShapes lists the trainable tensors the spec's layers own, in layer
// order, as the layers name them (layer/kernel, layer/bias).
func (s Spec) paramShapes() ([]paramShape, error) {
	shapes, err := s.Shapes()
	if err != nil {
		return nil, err
	}
	var ps []paramShape
	in := s.Input
	for i, l := range s.Layers {
		name := s.layerName(i)
		switch l.Type {
		case "conv2d":
			kh, kw, _ := pair(l.Kernel, 0, "kernel")
			ps = append(ps, paramShape{name + "/kernel", []int{kh, kw, in[2], l.Filters}}, paramShape{name + "/bias", []int{l.Filters}})
		case "dense":
			ps = append(ps, paramShape{name + "/kernel", []int{in[0], l.Units}}, paramShape{name + "/bias", []int{l.Units}})
		}
		in = shapes[i]
	}
	return ps, nil
}

// Shapes validates the spec and returns the per-sample output shape of every
// layer. Errors name the layer and the mismatch.
func (s Spec) Shapes() ([][]int, error) {
	if len(s.Input) != 3 {
		return nil, fmt.Errorf("model spec: input must be [height, width, channels], got %v", s.Input)
	}
	for _, d := range s.Input {
		if d <= 0 {
			return nil, fmt.Errorf("model spec: input dimensions must be positive, got %v", s.Input)
		}
	}
	if _, ok := capProd(s.Input...); !ok {
		return nil, fmt.Errorf("model spec: input %v has more than %d values per sample", s.Input, MaxTensorElems)
	}
	if len(s.Layers) == 0 {
		return nil, fmt.Errorf("model spec: no layers")
	}
	cur := append([]int(nil), s.Input...)
	var out [][]int
	seen := map[string]bool{}
	for i, l := range s.Layers {
		name := s.layerName(i)
		if seen[name] {
			return nil, fmt.Errorf("model spec: layer %d: duplicate layer name %q", i, name)
		}
		seen[name] = true
		fail := func(format string, args ...any) ([][]int, error) {
			return nil, fmt.Errorf("model spec: layer %d (%s %q): %s", i, l.Type, name, fmt.Sprintf(format, args...))
		}
		if l.Type == "maxpool2d" && l.Padding != "" && l.Padding != "valid" {
			return fail("padding %q is not supported: max pooling has no padding (only \"valid\", the default, which drops the rows and columns no whole window covers)", l.Padding)
		}
		if m := l.misplaced(); len(m) > 0 {
			return fail("%s", strings.Join(m, "; "))
		}
		switch l.Activation {
		case "", "linear", "relu":
		case "softmax":
			if i != len(s.Layers)-1 {
				return fail("softmax activation is only allowed on the last layer")
			}
			if l.Type != "dense" {
				return fail("softmax activation needs a dense layer")
			}
		default:
			return fail("unknown activation %q (want relu, softmax or none)", l.Activation)
		}
		switch l.Type {
		case "conv2d":
			if len(cur) != 3 {
				return fail("needs a 3-D input [H W C], got %v (is there a flatten before it?)", cur)
			}
			if l.Filters <= 0 {
				return fail("filters must be positive, got %d", l.Filters)
			}
			kh, kw, err := pair(l.Kernel, 0, "kernel")
			if err != nil || kh <= 0 || kw <= 0 {
				return fail("kernel must be [KH, KW] with positive sizes, got %v", l.Kernel)
			}
			sh, sw, err := pair(l.Strides, 1, "strides")
			if err != nil || sh <= 0 || sw <= 0 {
				return fail("strides must be positive, got %v", l.Strides)
			}
			oh, _, err := backend.ConvOutSize(cur[0], kh, sh, l.Padding)
			if err != nil {
				return fail("height %d: %v", cur[0], err)
			}
			ow, _, err := backend.ConvOutSize(cur[1], kw, sw, l.Padding)
			if err != nil {
				return fail("width %d: %v", cur[1], err)
			}
			if _, ok := capProd(kh, kw, cur[2], l.Filters); !ok {
				return fail("a %dx%d kernel over %d channels with %d filters has more than %d weights", kh, kw, cur[2], l.Filters, MaxTensorElems)
			}
			cur = []int{oh, ow, l.Filters}
		case "maxpool2d":
			if len(cur) != 3 {
				return fail("needs a 3-D input [H W C], got %v", cur)
			}
			ph, pw, err := pair(l.Pool, 2, "pool")
			if err != nil || ph <= 0 || pw <= 0 {
				return fail("pool must be positive, got %v", l.Pool)
			}
			sh, sw, err := pair(l.Strides, 0, "strides")
			if len(l.Strides) == 0 { // the pool's own size
				sh, sw = ph, pw
			}
			if err != nil || sh <= 0 || sw <= 0 {
				return fail("strides must be positive, got %v", l.Strides)
			}
			if ph > cur[0] || pw > cur[1] {
				return fail("pool %dx%d is larger than its input %dx%d", ph, pw, cur[0], cur[1])
			}
			cur = []int{(cur[0]-ph)/sh + 1, (cur[1]-pw)/sw + 1, cur[2]}
		case "flatten":
			n, ok := capProd(cur...)
			if !ok {
				return fail("its input %v has more than %d values per sample", cur, MaxTensorElems)
			}
			cur = []int{n}
		case "dense":
			if len(cur) != 1 {
				return fail("needs a flat input, got %v (add a flatten layer before it)", cur)
			}
			if l.Units <= 0 {
				return fail("units must be positive, got %d", l.Units)
			}
			if _, ok := capProd(cur[0], l.Units); !ok {
				return fail("%d inputs by %d units is more than %d weights", cur[0], l.Units, MaxTensorElems)
			}
			cur = []int{l.Units}
		case "relu":
		case "dropout":
			if l.Rate == 0 && !s.rateless {
				return fail(`"rate" is required: the fraction of inputs dropped, in (0, 1)`)
			}
			if !(l.Rate >= 0 && l.Rate < 1) { // NaN too
				return fail("rate must be in (0, 1), got %g", l.Rate)
			}
			if float32(l.Rate) >= 1 { // the backends draw in float32: it would drop everything
				return fail("rate %v rounds to 1 in float32 and would drop every input: use at most %v", l.Rate, float64(math.Nextafter32(1, 0)))
			}
		default:
			return fail("unknown layer type (want conv2d, maxpool2d, flatten, dense, relu or dropout)")
		}
		if _, ok := capProd(cur...); !ok {
			return fail("its output %v has more than %d values per sample", cur, MaxTensorElems)
		}
		out = append(out, append([]int(nil), cur...))
	}
	last := s.Layers[len(s.Layers)-1]
	if last.Type != "dense" || last.Activation != "softmax" {
		return nil, fmt.Errorf("model spec: the last layer must be dense with softmax activation (a classifier), got %s with activation %q", last.Type, last.Activation)
	}
	return out, nil
}

// String renders the spec as a compact layer list.
func (s Spec) String() string {
	shapes, _ := s.Shapes()
	var b strings.Builder
	fmt.Fprintf(&b, "input %v", s.Input)
	for i, l := range s.Layers {
		fmt.Fprintf(&b, " → %s", l.Type)
		if l.Activation != "" {
			fmt.Fprintf(&b, "(%s)", l.Activation)
		}
		if i < len(shapes) {
			fmt.Fprintf(&b, "%v", shapes[i])
		}
	}
	return b.String()
}
