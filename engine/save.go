package engine

import (
	"encoding/json"
	"fmt"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/engine/modelfile"
)

// ModelMeta is what a model file records beside the weights.
type ModelMeta struct {
	// ClassNames labels the outputs (may be empty).
	ClassNames []string `json:"class_names,omitempty"`
	// Dataset the model was trained on.
	Dataset string `json:"dataset,omitempty"`
	// Scale is the factor raw 0..255 pixels are multiplied by (1/255).
	Scale float64 `json:"scale"`
	// Epochs trained.
	Epochs int `json:"epochs,omitempty"`
	// TestAccuracy measured right after training, if evaluated.
	TestAccuracy *float64 `json:"test_accuracy,omitempty"`
}

// downloadParams copies every parameter to the host as file tensors.
func (m *Model) downloadParams() ([]modelfile.Tensor, error) {
	var ts []modelfile.Tensor
	for _, p := range m.Params() {
		d := make([]float32, p.Len())
		if err := m.B.Download(d, p.W); err != nil {
			return nil, fmt.Errorf("download %s: %w", p.Name, err)
		}
		ts = append(ts, modelfile.Tensor{Name: p.Name, Shape: append([]int(nil), p.Shape...), Data: d})
	}
	return ts, nil
}

// uploadTensor finds name in f, checks its shape and uploads it into buf.
func uploadTensor(b backend.Backend, f *modelfile.File, name string, shape []int, buf backend.Buffer) error {
	t, err := tensorOfShape(f, name, shape)
	if err != nil {
		return err
	}
	return b.Upload(buf, t.Data)
}

// tensorOfShape returns f's tensor called name, which must have shape.
func tensorOfShape(f *modelfile.File, name string, shape []int) (*modelfile.Tensor, error) {
	t, err := f.Tensor(name)
	if err != nil {
		return t, err
	}
	if !equalInts(t.Shape, shape) {
		return t, fmt.Errorf("tensor %q has shape %v, the model spec needs %v", name, t.Shape, shape)
	}
	return t, nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Save writes the model and meta to path atomically.
func (m *Model) Save(path string, meta ModelMeta) error {
	f, err := m.file("model", meta)
	if err != nil {
		return err
	}
	if err := modelfile.WriteFile(path, f); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return nil
}

func (m *Model) file(kind string, meta any) (*modelfile.File, error) {
	spec, err := json.Marshal(m.Spec)
	if err != nil {
		return nil, err
	}
	mj, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	ts, err := m.downloadParams()
	if err != nil {
		return nil, err
	}
	return &modelfile.File{Kind: kind, Spec: spec, Meta: mj, Tensors: ts}, nil
}

// fromFile builds a model from a decoded file's spec and weights.
func fromFile(b backend.Backend, f *modelfile.File) (*Model, error) {
	spec, err := ParseSpec(f.Spec)
	if err != nil {
		return nil, err
	}
	// The tensor table must match the spec before anything is allocated:
	// a small file must not make the loader allocate a spec's worth.
	ps, err := spec.paramShapes()
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if _, err := tensorOfShape(f, p.name, p.shape); err != nil {
			return nil, err
		}
	}
	m, err := build(b, spec, nil)
	if err != nil {
		return nil, err
	}
	for _, p := range m.Params() {
		if err := uploadTensor(b, f, p.Name, p.Shape, p.W); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// Load reads a model file written by Save and builds it on b.
func Load(b backend.Backend, path string) (*Model, ModelMeta, error) {
	var meta ModelMeta
	f, err := modelfile.ReadFile(path)
	if err != nil {
		return nil, meta, err
	}
	if f.Kind != "model" && f.Kind != "checkpoint" {
		return nil, meta, fmt.Errorf("%s: file kind is %q, want a model", path, f.Kind)
	}
	m, err := fromFile(b, f)
	if err != nil {
		return nil, meta, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.Meta) > 0 {
		if f.Kind == "checkpoint" {
			var cm checkpointMeta
			if err := json.Unmarshal(f.Meta, &cm); err == nil {
				meta = cm.Model
			}
		} else if err := json.Unmarshal(f.Meta, &meta); err != nil {
			m.Close()
			return nil, meta, fmt.Errorf("%s: model metadata: %w", path, err)
		}
	}
	if meta.Scale == 0 {
		meta.Scale = 1.0 / 255
	}
	return m, meta, nil
}
