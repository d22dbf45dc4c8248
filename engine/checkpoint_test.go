package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/engine/modelfile"
)

// TestResumeSameModelOtherSpelling: a checkpoint resumes with a spec that
// describes the same model in other words: another spec name (kiln train
// names an unnamed spec after its file), defaults spelled out or left out
// (conv2d padding "valid", strides [1, 1], maxpool2d pool [2, 2] and its
// strides), a one-value kernel, layer names left to their defaults. The
// whole spec JSON was compared, refusing these with the same model
// described twice.
func TestResumeSameModelOtherSpelling(t *testing.T) {
	b := newCPU(t)
	train, _ := synthetic(t)
	train = train.Subset(96)
	base := smallSpec()
	base.Layers[2].Name = "" // flatten_2, by default

	tests := []struct {
		name        string
		there, here func(s *Spec) // nil: base
	}{
		{"spec name", nil, func(s *Spec) { s.Name = "renamed-file" }},
		{"no spec name", nil, func(s *Spec) { s.Name = "" }},
		{"padding valid", nil, func(s *Spec) { s.Layers[0].Padding = "valid" }},
		{"strides 1", nil, func(s *Spec) { s.Layers[0].Strides = []int{1, 1} }},
		{"one-value kernel", nil, func(s *Spec) { s.Layers[0].Kernel = []int{3} }},
		{"default pool", nil, func(s *Spec) { s.Layers[1].Pool = nil }},
		{"pool strides", nil, func(s *Spec) { s.Layers[1].Strides = []int{2} }},
		{"pool padding valid", nil, func(s *Spec) { s.Layers[1].Padding = "valid" }},
		{"default layer name", nil, func(s *Spec) { s.Layers[2].Name = "flatten_2" }},
		{"linear activation", func(s *Spec) { s.Layers[3].Activation = "" }, func(s *Spec) { s.Layers[3].Activation = "linear" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			spec := func(edit func(*Spec)) Spec {
				s := base
				s.Layers = append([]LayerSpec(nil), base.Layers...)
				if edit != nil {
					edit(&s)
				}
				return s
			}
			there, here := spec(tc.there), spec(tc.here)
			require.NoError(t, func() error { _, err := here.Shapes(); return err }())

			cfg := TrainConfig{Epochs: 1, Batch: 32, Seed: 5, CheckpointDir: dir}
			m, err := New(b, there, 5)
			require.NoError(t, err)
			_, err = Train(m, train, nil, cfg, nil)
			require.NoError(t, m.Close())
			require.NoError(t, err)

			m2, err := New(b, here, 6)
			require.NoError(t, err)
			defer m2.Close()
			cfg.Epochs, cfg.Resume = 2, true
			hist, err := Train(m2, train, nil, cfg, nil)
			require.NoError(t, err, "the same model resumes")
			assert.Len(t, hist, 2)
		})
	}
}

// TestResumeRefusesAnotherModel: a checkpoint of another model is still
// refused, before anything is restored, and the error names each
// difference (layer, field, both values) rather than printing the two
// models, which looked the same when only a setting differed.
func TestResumeRefusesAnotherModel(t *testing.T) {
	b := newCPU(t)
	train, _ := synthetic(t)
	train = train.Subset(96)
	dir := t.TempDir()
	cfg := TrainConfig{Epochs: 1, Batch: 32, Seed: 5, CheckpointDir: dir}
	m, err := New(b, smallSpec(), 5)
	require.NoError(t, err)
	_, err = Train(m, train, nil, cfg, nil)
	require.NoError(t, m.Close())
	require.NoError(t, err)
	ck := filepath.Join(dir, CheckpointName)
	before, err := os.ReadFile(ck)
	require.NoError(t, err)

	tests := []struct {
		name string
		edit func(s *Spec)
		want string
	}{
		{"filters", func(s *Spec) { s.Layers[0].Filters = 6 }, `layer 0 (conv2d "c1"): filters 8 there, 6 here`},
		{"padding", func(s *Spec) { s.Layers[0].Padding = "same" }, `layer 0 (conv2d "c1"): padding "valid" there, "same" here`},
		{"strides", func(s *Spec) { s.Layers[0].Strides = []int{1, 2} }, `layer 0 (conv2d "c1"): strides [1 1] there, [1 2] here`},
		{"activation", func(s *Spec) { s.Layers[3].Activation = "" }, `layer 3 (dense "d1"): activation "relu" there, none here`},
		{"layer name", func(s *Spec) { s.Layers[3].Name = "hidden" }, `layer 3 (dense "hidden"): named "d1" there`},
		{"layer type", func(s *Spec) {
			s.Layers = append(s.Layers[:4:4], LayerSpec{Type: "dropout", Name: "d2", Rate: 0.5}, LayerSpec{Type: "dense", Name: "out", Units: 4, Activation: "softmax"})
		}, `5 layers there, 6 here; layer 4: dense "d2" there, dropout "d2" here`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			here := smallSpec()
			tc.edit(&here)
			m2, err := New(b, here, 7)
			require.NoError(t, err)
			defer m2.Close()
			fresh := downloadAll(t, m2)
			c := cfg
			c.Epochs, c.Resume = 2, true
			_, err = Train(m2, train, nil, c, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "resume: "+ck+" holds a different model: ")
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "(resume with the model spec it was trained with, or use another checkpoint directory)")
			assert.NotContains(t, err.Error(), "input [8 8 1] →", "the models are not printed whole")
			assert.Equal(t, fresh, downloadAll(t, m2), "nothing restored into the model")
			after, err := os.ReadFile(ck)
			require.NoError(t, err)
			assert.Equal(t, before, after, "checkpoint untouched")
		})
	}
}

// TestModelDifferences: the input and the layer count are named, and a
// long list is cut after maxModelDifferences with a count of the rest.
func TestModelDifferences(t *testing.T) {
	a := smallSpec()
	assert.Empty(t, modelDifferences(a, a))
	b := smallSpec()
	b.Input = []int{9, 9, 1}
	assert.Equal(t, []string{"input [8 8 1] there, [9 9 1] here"}, modelDifferences(a, b))

	c := smallSpec()
	c.Layers[0].Filters, c.Layers[0].Kernel, c.Layers[0].Strides, c.Layers[0].Padding = 2, []int{2, 2}, []int{2, 2}, "same"
	c.Layers[3].Units, c.Layers[4].Units = 7, 5
	d := modelDifferences(a, c)
	require.Len(t, d, maxModelDifferences+1)
	assert.Equal(t, `layer 0 (conv2d "c1"): filters 8 there, 2 here`, d[0])
	assert.Equal(t, "2 more differences", d[maxModelDifferences])
}

// brokenCheckpointDir is a Progress that, when the epoch at ends, puts a
// regular file where the checkpoint directory was (moving the directory
// aside), so that the epoch's checkpoint cannot be written; restore puts
// the directory back.
type brokenCheckpointDir struct {
	at       int
	dir      string
	t        *testing.T
	replaced bool
}

func (p *brokenCheckpointDir) EpochStart(int, int, int)   {}
func (p *brokenCheckpointDir) Step(int, float64, float64) {}
func (p *brokenCheckpointDir) EpochEnd(s EpochStats) {
	if s.Epoch != p.at {
		return
	}
	require.NoError(p.t, os.Rename(p.dir, p.dir+".aside"))
	require.NoError(p.t, os.WriteFile(p.dir, []byte("in the way"), 0o644))
	p.replaced = true
}

func (p *brokenCheckpointDir) restore() {
	require.True(p.t, p.replaced)
	require.NoError(p.t, os.Remove(p.dir))
	require.NoError(p.t, os.Rename(p.dir+".aside", p.dir))
}

// checkpointEpoch reads the completed epochs a checkpoint file records.
func checkpointEpoch(t *testing.T, path string) int {
	t.Helper()
	f, err := modelfile.ReadFile(path)
	require.NoError(t, err)
	var cm checkpointMeta
	require.NoError(t, json.Unmarshal(f.Meta, &cm))
	return cm.Epoch
}

// TestCheckpointWriteFailure: when an epoch's checkpoint cannot be written,
// Train stops with a CheckpointError naming the epoch and the file (and
// the cause), returns the history up to that epoch, and the checkpoint of
// the epoch before is kept whole: resuming from it ends with the weights
// of a run that never failed.
func TestCheckpointWriteFailure(t *testing.T) {
	b := newCPU(t)
	train, _ := synthetic(t)
	train = train.Subset(96)
	cfg := TrainConfig{Epochs: 3, Batch: 32, Seed: 5}

	straight, err := New(b, smallSpec(), 5)
	require.NoError(t, err)
	defer straight.Close()
	_, err = Train(straight, train, nil, cfg, nil)
	require.NoError(t, err)

	dir := filepath.Join(t.TempDir(), "ck")
	ck := filepath.Join(dir, CheckpointName)
	m, err := New(b, smallSpec(), 5)
	require.NoError(t, err)
	p := &brokenCheckpointDir{at: 2, dir: dir, t: t}
	c := cfg
	c.CheckpointDir = dir
	hist, err := Train(m, train, nil, c, p)
	require.NoError(t, m.Close())
	var ce *CheckpointError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 2, ce.Epoch)
	assert.Equal(t, ck, ce.Path)
	assert.Contains(t, err.Error(), "write the checkpoint of epoch 2: mkdir "+dir+": not a directory")
	assert.NotErrorIs(t, err, ErrInterrupted)
	assert.Len(t, hist, 2, "the history holds the epoch whose checkpoint failed")

	p.restore()
	assert.Equal(t, 1, checkpointEpoch(t, ck), "the checkpoint of epoch 1 is kept")
	resumed, err := New(b, smallSpec(), 9)
	require.NoError(t, err)
	defer resumed.Close()
	c.Resume = true
	hist, err = Train(resumed, train, nil, c, nil)
	require.NoError(t, err)
	assert.Len(t, hist, 3)
	assert.Equal(t, downloadAll(t, straight), downloadAll(t, resumed), "resumed from epoch 1: as if nothing failed")
	assert.Equal(t, 3, checkpointEpoch(t, ck))

	// the first epoch's checkpoint failing leaves none
	dir2 := filepath.Join(t.TempDir(), "ck")
	m2, err := New(b, smallSpec(), 5)
	require.NoError(t, err)
	defer m2.Close()
	c2 := cfg
	c2.CheckpointDir = dir2
	require.NoError(t, os.MkdirAll(dir2, 0o755))
	p2 := &brokenCheckpointDir{at: 1, dir: dir2, t: t}
	hist, err = Train(m2, train, nil, c2, p2)
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 1, ce.Epoch)
	assert.True(t, strings.HasPrefix(err.Error(), "write the checkpoint of epoch 1: "), err.Error())
	assert.Len(t, hist, 1)
	p2.restore()
	assert.NoFileExists(t, filepath.Join(dir2, CheckpointName))
}
