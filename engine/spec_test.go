package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/engine/modelfile"
)

// specWith returns a small valid spec JSON whose layer at index 1 (between a
// conv2d on [8 8 1] and a flatten) is mid.
func specWith(mid string) string {
	return `{"input":[8,8,1],"layers":[{"type":"conv2d","filters":2,"kernel":[3,3]},` + mid +
		`,{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax"}]}`
}

// TestSpecFieldsThatDoNotApply: a field set on a layer type it does not
// apply to had no effect (a maxpool2d "activation":"relu" applied no ReLU
// yet the summary printed it; "kernel":[4,4] gave a 2×2 pool); it is
// refused, naming the layer, its type and the field. So is a dropout layer
// without a rate, and max pooling with "same" padding, which kiln does not
// have.
func TestSpecFieldsThatDoNotApply(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"maxpool activation", specWith(`{"type":"maxpool2d","pool":[2,2],"activation":"relu"}`),
			`layer 1 (maxpool2d "maxpool2d_1"): "activation" does not apply to maxpool2d (give the layer before it "activation":"relu", or add a {"type":"relu"} layer)`},
		{"maxpool linear activation", specWith(`{"type":"maxpool2d","activation":"linear"}`), `"activation" does not apply to maxpool2d`},
		{"maxpool kernel", specWith(`{"type":"maxpool2d","kernel":[4,4]}`), `layer 1 (maxpool2d "maxpool2d_1"): "kernel" does not apply to maxpool2d (a max pooling's window is "pool")`},
		{"maxpool filters", specWith(`{"type":"maxpool2d","filters":3}`), `"filters" does not apply to maxpool2d`},
		{"maxpool same padding", specWith(`{"type":"maxpool2d","pool":[2,2],"padding":"same"}`), `layer 1 (maxpool2d "maxpool2d_1"): padding "same" is not supported: max pooling has no padding (only "valid", the default, which drops the rows and columns no whole window covers)`},
		{"maxpool other padding", specWith(`{"type":"maxpool2d","padding":"full"}`), `padding "full" is not supported`},
		{"conv units", specWith(`{"type":"conv2d","filters":2,"kernel":[3,3],"units":4}`), `layer 1 (conv2d "conv2d_1"): "units" does not apply to conv2d (a conv2d layer's width is "filters")`},
		{"conv pool", specWith(`{"type":"conv2d","filters":2,"kernel":[3,3],"pool":[2,2]}`), `"pool" does not apply to conv2d`},
		{"conv rate", specWith(`{"type":"conv2d","filters":2,"kernel":[3,3],"rate":0.5}`), `"rate" does not apply to conv2d`},
		{"relu activation", specWith(`{"type":"relu","activation":"relu"}`), `layer 1 (relu "relu_1"): "activation" does not apply to relu (only conv2d and dense layers take one)`},
		{"relu strides", specWith(`{"type":"relu","strides":[2,2]}`), `"strides" does not apply to relu`},
		{"flatten units", `{"input":[4,4,1],"layers":[{"type":"flatten","units":3},{"type":"dense","units":2,"activation":"softmax"}]}`,
			`layer 0 (flatten "flatten_0"): "units" does not apply to flatten`},
		{"dense rate", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax","rate":0.5}]}`,
			`layer 1 (dense "dense_1"): "rate" does not apply to dense`},
		{"dense filters", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax","filters":8}]}`,
			`"filters" does not apply to dense (a dense layer's width is "units")`},
		{"dense kernel", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax","kernel":[3,3]}]}`,
			`"kernel" does not apply to dense`},
		{"dense padding", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax","padding":"same"}]}`,
			`"padding" does not apply to dense`},
		{"dropout without rate", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dropout"},{"type":"dense","units":2,"activation":"softmax"}]}`,
			`layer 1 (dropout "dropout_1"): "rate" is required: the fraction of inputs dropped, in (0, 1)`},
		{"dropout rate 0", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dropout","rate":0},{"type":"dense","units":2,"activation":"softmax"}]}`,
			`"rate" is required`},
		{"dropout negative rate", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dropout","rate":-0.1},{"type":"dense","units":2,"activation":"softmax"}]}`,
			"rate must be in (0, 1), got -0.1"},
		{"dropout rate 1", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dropout","rate":1},{"type":"dense","units":2,"activation":"softmax"}]}`,
			"rate must be in (0, 1), got 1"},
		{"dropout activation", `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dropout","rate":0.5,"activation":"relu"},{"type":"dense","units":2,"activation":"softmax"}]}`,
			`"activation" does not apply to dropout`},
		{"several fields", specWith(`{"type":"maxpool2d","pool":[2,2],"kernel":[4,4],"activation":"relu"}`),
			`layer 1 (maxpool2d "maxpool2d_1"): "kernel" does not apply to maxpool2d (a max pooling's window is "pool"); "activation" does not apply to maxpool2d`},
		{"named layer", `{"input":[4,4,1],"layers":[{"type":"flatten","name":"flat","pool":[2,2]},{"type":"dense","units":2,"activation":"softmax"}]}`,
			`layer 0 (flatten "flat"): "pool" does not apply to flatten`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpecStrict([]byte(tc.json))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)

			path := filepath.Join(t.TempDir(), "spec.json")
			require.NoError(t, os.WriteFile(path, []byte(tc.json), 0o644))
			_, err = LoadSpec(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), tc.want)

			// The same spec built in Go is refused by Shapes and New.
			var s Spec
			require.NoError(t, json.Unmarshal([]byte(tc.json), &s))
			_, err = s.Shapes()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			_, err = New(newCPU(t), s, 1)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestSpecsInUseStillValidate: the reference CNN, the README's example, the
// fuzz seeds and the specs the tests build all set only fields that apply.
func TestSpecsInUseStillValidate(t *testing.T) {
	specs := map[string]string{
		"README example": `{"input":[28,28,1],"layers":[{"type":"conv2d",
  "filters":64,"kernel":[3,3],"activation":"relu"},{"type":"maxpool2d","pool":[2,2]},
  {"type":"flatten"},{"type":"dense","units":10,"activation":"softmax"}]}`,
		"fuzz seed 1":           `{"input":[28,28,1],"layers":[{"type":"conv2d","filters":4,"kernel":[3,3],"activation":"relu"},{"type":"maxpool2d"},{"type":"flatten"},{"type":"dense","units":10,"activation":"softmax"}]}`,
		"fuzz seed 2":           `{"input":[7,6,2],"layers":[{"type":"conv2d","filters":3,"kernel":[3,3],"padding":"same","strides":[2,1]},{"type":"relu"},{"type":"flatten"},{"type":"dropout","rate":0.5},{"type":"dense","units":3,"activation":"softmax"}]}`,
		"maxpool valid padding": specWith(`{"type":"maxpool2d","pool":[2,2],"strides":[1,1],"padding":"valid"}`),
		"cmd/kiln smallSpecJSON": `{"name":"tiny","input":[28,28,1],"layers":[
 {"type":"conv2d","filters":4,"kernel":[3,3],"strides":[2,2],"activation":"relu"},
 {"type":"maxpool2d","pool":[2,2]},
 {"type":"flatten"},
 {"type":"dense","units":10,"activation":"softmax"}]}`,
		"linear activation": `{"input":[4,4,1],"layers":[{"type":"flatten"},{"type":"dense","units":3,"activation":"linear"},{"type":"dense","units":2,"activation":"softmax"}]}`,
	}
	for _, s := range []Spec{ReferenceSpec(28, 28, 1, 10), ReferenceSpec(32, 32, 3, 10), gradSpec(), smallSpec()} {
		b, err := json.Marshal(s)
		require.NoError(t, err)
		specs[fmt.Sprintf("Go spec %s %v", s.Name, s.Input)] = string(b)
	}
	for name, js := range specs {
		t.Run(name, func(t *testing.T) {
			_, err := ParseSpecStrict([]byte(js))
			assert.NoError(t, err)
			_, err = ParseSpec([]byte(js))
			assert.NoError(t, err)
		})
	}
}

// legacySpec is smallSpec with a dropout layer and, as older kiln versions
// accepted and ignored them, fields that do not apply: a ReLU, a kernel and
// "same" padding on the max pooling, units on the flatten, and no rate on
// the dropout. The model it describes is smallSpec with a dropout that
// does nothing.
func legacySpec(t *testing.T) []byte {
	t.Helper()
	s := smallSpec()
	s.Layers = append(s.Layers[:4:4], LayerSpec{Type: "dropout", Name: "drop"}, s.Layers[4])
	s.Layers[1].Activation, s.Layers[1].Kernel, s.Layers[1].Padding = "relu", []int{4, 4}, "same"
	s.Layers[2].Units = 7
	b, err := json.Marshal(s)
	require.NoError(t, err)
	_, err = ParseSpecStrict(b)
	require.Error(t, err, "the legacy spec is no longer valid to write")
	return b
}

// TestStoredSpecsWithFieldsThatDoNotApplyStillLoad: a model file saved
// before such fields were refused still loads, as the model it always was
// (the fields dropped, so the summary no longer claims them), and predicts
// what it did.
func TestStoredSpecsWithFieldsThatDoNotApplyStillLoad(t *testing.T) {
	b := newCPU(t)
	_, test := synthetic(t)
	spec := smallSpec()
	spec.Layers = append(spec.Layers[:4:4], LayerSpec{Type: "dropout", Name: "drop", Rate: 0.5}, spec.Layers[4])
	m, err := New(b, spec, 3)
	require.NoError(t, err)
	defer m.Close()
	f, err := m.file("model", ModelMeta{})
	require.NoError(t, err)
	f.Spec = legacySpec(t)
	path := filepath.Join(t.TempDir(), "old.kiln")
	require.NoError(t, modelfile.WriteFile(path, f))

	old, _, err := Load(b, path)
	require.NoError(t, err)
	defer old.Close()
	assert.Equal(t, "input [8 8 1] → conv2d(relu)[6 6 8] → maxpool2d[3 3 8] → flatten[72] → dense(relu)[16] → dropout[16] → dense(softmax)[4]", old.Spec.String())
	assert.Empty(t, old.Spec.Layers[1].Activation)
	assert.Nil(t, old.Spec.Layers[1].Kernel)
	assert.Empty(t, old.Spec.Layers[1].Padding)
	assert.Zero(t, old.Spec.Layers[2].Units)
	p1 := make([]float32, 5*4)
	p2 := make([]float32, 5*4)
	require.NoError(t, m.Predict(test.Images, 5, p1))
	require.NoError(t, old.Predict(test.Images, 5, p2))
	assert.Equal(t, p1, p2)
}

// TestLegacyCheckpointResumes: a checkpoint whose spec carries fields that
// do not apply (ignored when it was written) resumes with the spec
// corrected, rather than being lost.
func TestLegacyCheckpointResumes(t *testing.T) {
	b := newCPU(t)
	train, _ := synthetic(t)
	dir := t.TempDir()
	m, err := New(b, smallSpec(), 5)
	require.NoError(t, err)
	defer m.Close()
	cfg := TrainConfig{Epochs: 1, Batch: 32, Seed: 5, CheckpointDir: dir}
	_, err = Train(m, train, nil, cfg, nil)
	require.NoError(t, err)
	path := filepath.Join(dir, CheckpointName)
	f, err := modelfile.ReadFile(path)
	require.NoError(t, err)
	legacy := smallSpec()
	legacy.Layers[1].Activation = "relu"
	f.Spec, err = json.Marshal(legacy)
	require.NoError(t, err)
	require.NoError(t, modelfile.WriteFile(path, f))

	cfg.Epochs, cfg.Resume = 2, true
	hist, err := Train(m, train, nil, cfg, nil)
	require.NoError(t, err)
	assert.Len(t, hist, 2, "the checkpoint's epoch is kept")
}
