package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/engine/data"
	"github.com/kiln-ml/kiln/engine/modelfile"
)

// TrainConfig configures Train.
type TrainConfig struct {
	Epochs    int
	Batch     int
	Seed      uint64
	Optimizer OptimizerConfig
	// Augment applies random flips and padded crops to training batches
	// (meant for CIFAR-10).
	Augment bool
	// CheckpointDir, when set, receives checkpoint.kiln after every epoch.
	CheckpointDir string
	// Resume continues from CheckpointDir's checkpoint when one exists.
	Resume bool
	// Meta is stored in checkpoints (class names, dataset).
	Meta ModelMeta
	// Stop, when closed, ends training after the current step: Train
	// returns the epochs completed so far and an error wrapping
	// ErrInterrupted. The last checkpoint (if any) is untouched.
	Stop <-chan struct{}
}

// ErrInterrupted is wrapped by Train's error when TrainConfig.Stop closed.
var ErrInterrupted = errors.New("training interrupted")

// EpochStats is one epoch of training history. Field names are stable: the
// --report JSON and benchmarks read them.
type EpochStats struct {
	Epoch           int      `json:"epoch"`
	Seconds         float64  `json:"seconds"`
	TrainLoss       float64  `json:"train_loss"`
	TrainAccuracy   float64  `json:"train_accuracy"`
	ValLoss         *float64 `json:"val_loss,omitempty"`
	ValAccuracy     *float64 `json:"val_accuracy,omitempty"`
	ImagesPerSecond float64  `json:"images_per_second"`
}

// Progress receives training progress. Any method may be a no-op.
type Progress interface {
	// EpochStart is called before the first step of an epoch.
	EpochStart(epoch, epochs, samples int)
	// Step is called after every step with the running mean loss and
	// accuracy of the epoch so far and the samples seen.
	Step(seen int, loss, acc float64)
	// EpochEnd is called with the finished epoch's stats.
	EpochEnd(s EpochStats)
}

// ResumeReporter is implemented by a Progress that wants to know what
// TrainConfig.Resume found: the checkpoint's path, whether it exists, and
// how many of the run's epochs it had completed.
type ResumeReporter interface {
	Resumed(path string, found bool, done, epochs int)
}

// CheckpointName is the file written into TrainConfig.CheckpointDir.
const CheckpointName = "checkpoint.kiln"

// CheckpointError is Train's error when the checkpoint after an epoch could
// not be written (a full disk, a directory that went away). Training stops
// there; the history Train returns includes that epoch. A checkpoint is
// replaced whole (written aside, then renamed over the old one), so the
// file at Path keeps what it held before: the checkpoint of the epoch before
// Epoch, the one the run resumed from, or none.
type CheckpointError struct {
	Epoch int    // the epoch whose checkpoint was not written
	Path  string // the checkpoint file
	Err   error
}

// Error names the epoch whose checkpoint failed and the cause.
func (e *CheckpointError) Error() string {
	return fmt.Sprintf("write the checkpoint of epoch %d: %v", e.Epoch, e.Err)
}

// Unwrap returns the error that stopped the write.
func (e *CheckpointError) Unwrap() error { return e.Err }

type checkpointMeta struct {
	Epoch     int    `json:"epoch"` // completed epochs
	Seed      uint64 `json:"seed"`
	Batch     int    `json:"batch"`
	Optimizer string `json:"optimizer"`
	OptStep   int    `json:"optimizer_step"`
	// The optimizer's hyperparameters, defaults filled in (nil in
	// checkpoints written before they were recorded).
	LR       *float64     `json:"lr,omitempty"`
	Momentum *float64     `json:"momentum,omitempty"` // sgd only
	History  []EpochStats `json:"history"`
	Model    ModelMeta    `json:"model"`
	// The run's training data and augmentation: a resumed run must see
	// the same (checkpoints written before these fields have none).
	Augment  *bool  `json:"augment,omitempty"`   // nil in older checkpoints
	Data     string `json:"data,omitempty"`      // the training set's name
	Samples  int    `json:"samples,omitempty"`   // its number of images
	DataHash string `json:"data_hash,omitempty"` // FNV-1a of its images and labels
}

// dataHash fingerprints a dataset's contents.
func dataHash(ds *data.Dataset) string {
	h := fnv.New64a()
	var buf [4096]byte
	write := func(n int, word func(i int) uint32) {
		for i := 0; i < n; {
			k := min(n-i, len(buf)/4)
			for j := range k {
				binary.LittleEndian.PutUint32(buf[4*j:], word(i+j))
			}
			h.Write(buf[:4*k])
			i += k
		}
	}
	write(len(ds.Images), func(i int) uint32 { return math.Float32bits(ds.Images[i]) })
	write(len(ds.Labels), func(i int) uint32 { return uint32(ds.Labels[i]) })
	return fmt.Sprintf("%016x", h.Sum64())
}

// differences lists how the run that wrote a checkpoint (cm) differs from
// this one (run), or is empty when a resume can continue it exactly.
func (cm checkpointMeta) differences(run checkpointMeta) []string {
	var d []string
	if cm.Seed != run.Seed {
		d = append(d, fmt.Sprintf("seed %d there, %d here", cm.Seed, run.Seed))
	}
	if cm.Batch != run.Batch {
		d = append(d, fmt.Sprintf("batch %d there, %d here", cm.Batch, run.Batch))
	}
	if cm.Optimizer != run.Optimizer {
		d = append(d, fmt.Sprintf("optimizer %s there, %s here", cm.Optimizer, run.Optimizer))
	}
	if cm.LR != nil && run.LR != nil && *cm.LR != *run.LR {
		d = append(d, fmt.Sprintf("learning rate %g there, %g here", *cm.LR, *run.LR))
	}
	if cm.Momentum != nil && run.Momentum != nil && *cm.Momentum != *run.Momentum {
		d = append(d, fmt.Sprintf("momentum %g there, %g here", *cm.Momentum, *run.Momentum))
	}
	if cm.Augment != nil && run.Augment != nil && *cm.Augment != *run.Augment {
		d = append(d, fmt.Sprintf("augmentation %v there, %v here", *cm.Augment, *run.Augment))
	}
	if cm.DataHash != "" && cm.DataHash != run.DataHash {
		if cm.Data == run.Data && cm.Samples == run.Samples {
			d = append(d, fmt.Sprintf("training data %s (%d images) with other contents", cm.Data, cm.Samples))
		} else {
			d = append(d, fmt.Sprintf("training data %s (%d images) there, %s (%d images) here", cm.Data, cm.Samples, run.Data, run.Samples))
		}
	}
	return d
}

// epochRNG is the random stream of one epoch: a pure function of the seed
// and the epoch number, so a resumed run draws exactly what an
// uninterrupted one would.
func epochRNG(seed uint64, epoch int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x65706f6368^uint64(epoch)))
}

// Train fits m on train for cfg.Epochs epochs, evaluating on val (may be
// nil) after each. It returns the full history (including epochs restored
// from a checkpoint). When an epoch's checkpoint cannot be written, it
// stops with a *CheckpointError (the earlier checkpoint is kept whole).
func Train(m *Model, train, val *data.Dataset, cfg TrainConfig, prog Progress) ([]EpochStats, error) {
	if cfg.Batch <= 0 {
		return nil, fmt.Errorf("batch size must be positive, got %d", cfg.Batch)
	}
	if cfg.Epochs <= 0 {
		return nil, fmt.Errorf("epochs must be positive, got %d", cfg.Epochs)
	}
	if err := checkData(m, train); err != nil {
		return nil, err
	}
	if val != nil {
		if err := checkData(m, val); err != nil {
			return nil, err
		}
	}
	// a batch larger than the data is one partial batch: size the buffers
	// for what a step can hold, not for the flag
	room := max(1, min(cfg.Batch, train.N))
	if err := m.Setup(room); err != nil {
		return nil, err
	}
	opt, err := NewOptimizer(m.B, cfg.Optimizer, m.Params())
	if err != nil {
		return nil, err
	}
	defer opt.Close()

	var history []EpochStats
	start := 0
	var run checkpointMeta // what this run's checkpoints record about it
	if cfg.CheckpointDir != "" {
		oc := cfg.Optimizer.WithDefaults()
		run = checkpointMeta{Seed: cfg.Seed, Batch: cfg.Batch, Optimizer: opt.Name(), Model: cfg.Meta,
			Epoch: cfg.Epochs, Augment: &cfg.Augment, Data: train.Name, Samples: train.N, DataHash: dataHash(train),
			LR: &oc.LR}
		if oc.Name == "sgd" {
			run.Momentum = &oc.Momentum
		}
	}
	if cfg.Resume && cfg.CheckpointDir != "" {
		path := filepath.Join(cfg.CheckpointDir, CheckpointName)
		cm, ok, err := loadCheckpoint(m, opt, path, run)
		if err != nil {
			return nil, err
		}
		if ok {
			start, history = cm.Epoch, cm.History
		}
		if r, isR := prog.(ResumeReporter); isR {
			r.Resumed(path, ok, min(start, cfg.Epochs), cfg.Epochs)
		}
	}

	n := train.N
	per := m.inLen
	images := make([]float32, room*per)
	labels := make([]float32, room)
	for epoch := start; epoch < cfg.Epochs; epoch++ {
		rng := epochRNG(cfg.Seed, epoch)
		perm := rng.Perm(n)
		var aug *data.Augmenter
		if cfg.Augment {
			aug = data.NewAugmenter(train.H, train.W, train.C, rng.Uint64())
		}
		if prog != nil {
			prog.EpochStart(epoch+1, cfg.Epochs, n)
		}
		t0 := time.Now()
		var lossSum float64
		var correct, seen int
		for s := 0; s < n; s += cfg.Batch {
			select {
			case <-cfg.Stop:
				return history, fmt.Errorf("%w during epoch %d, after %d of %d steps", ErrInterrupted,
					epoch+1, s/cfg.Batch, (n+cfg.Batch-1)/cfg.Batch)
			default:
			}
			bn := min(cfg.Batch, n-s)
			idx := perm[s : s+bn]
			if err := data.Batch(train, idx, images, labels); err != nil {
				return history, fmt.Errorf("epoch %d, step %d: %w", epoch+1, s/cfg.Batch+1, err)
			}
			if aug != nil {
				if err := aug.ApplyBatch(images[:bn*per], bn); err != nil {
					return history, fmt.Errorf("epoch %d, step %d: augmentation: %w", epoch+1, s/cfg.Batch+1, err)
				}
			}
			stepSeed := cfg.Seed ^ (uint64(epoch)<<32 | uint64(s/cfg.Batch))
			l, c, err := m.TrainStep(images, labels, bn, opt, stepSeed)
			if err != nil {
				return history, fmt.Errorf("epoch %d, step %d: %w", epoch+1, s/cfg.Batch+1, err)
			}
			lossSum += l
			correct += c
			seen += bn
			if prog != nil {
				prog.Step(seen, lossSum/float64(seen), float64(correct)/float64(seen))
			}
		}
		secs := time.Since(t0).Seconds()
		st := EpochStats{Epoch: epoch + 1, Seconds: secs, TrainLoss: lossSum / float64(n),
			TrainAccuracy: float64(correct) / float64(n), ImagesPerSecond: float64(n) / secs}
		if val != nil && val.N > 0 {
			vl, va, err := Evaluate(m, val, cfg.Batch)
			if err != nil {
				return history, fmt.Errorf("epoch %d validation: %w", epoch+1, err)
			}
			st.ValLoss, st.ValAccuracy = &vl, &va
		}
		history = append(history, st)
		if prog != nil {
			prog.EpochEnd(st)
		}
		if cfg.CheckpointDir != "" {
			cm := run
			cm.Epoch, cm.History = epoch+1, history
			if err := saveCheckpoint(m, opt, cm, cfg.CheckpointDir); err != nil {
				return history, &CheckpointError{Epoch: epoch + 1, Path: filepath.Join(cfg.CheckpointDir, CheckpointName), Err: err}
			}
		}
		select {
		case <-cfg.Stop:
			if epoch+1 < cfg.Epochs {
				return history, fmt.Errorf("%w after epoch %d", ErrInterrupted, epoch+1)
			}
		default:
		}
	}
	return history, nil
}

func checkData(m *Model, ds *data.Dataset) error {
	in := m.Spec.Input
	if ds.H != in[0] || ds.W != in[1] || ds.C != in[2] {
		return fmt.Errorf("dataset %s has images of %dx%dx%d, the model expects %dx%dx%d",
			ds.Name, ds.H, ds.W, ds.C, in[0], in[1], in[2])
	}
	if ds.Classes > m.classes {
		return fmt.Errorf("dataset %s has %d classes, the model outputs only %d", ds.Name, ds.Classes, m.classes)
	}
	if ds.N == 0 {
		return fmt.Errorf("dataset %s is empty", ds.Name)
	}
	return nil
}

// ErrDiverged is returned (wrapped) by TrainStep, and so Train, when a
// step's loss is NaN or infinite (as Keras' TerminateOnNaN stops).
var ErrDiverged = errors.New("training diverged")

// ErrNotFinite is returned (wrapped) by Evaluate when the model's loss on a
// batch is NaN or infinite.
var ErrNotFinite = errors.New("the model's outputs are not finite")

// Evaluate returns the mean loss and the accuracy of m on ds.
func Evaluate(m *Model, ds *data.Dataset, batch int) (loss, acc float64, err error) {
	return EvaluateProgress(m, ds, batch, nil)
}

// EvaluateProgress is Evaluate calling done, when not nil, after each batch
// with the number of samples evaluated so far.
func EvaluateProgress(m *Model, ds *data.Dataset, batch int, done func(n int)) (loss, acc float64, err error) {
	return EvaluateUntil(m, ds, batch, done, nil)
}

// ErrEvalInterrupted is wrapped by EvaluateUntil's error when its stop
// channel closed.
var ErrEvalInterrupted = errors.New("evaluation interrupted")

// EvaluateUntil is EvaluateProgress that stops between batches once stop
// (when not nil) is closed, returning an error that wraps
// ErrEvalInterrupted and says how far it got.
func EvaluateUntil(m *Model, ds *data.Dataset, batch int, done func(n int), stop <-chan struct{}) (loss, acc float64, err error) {
	if batch <= 0 {
		return 0, 0, fmt.Errorf("batch size must be positive, got %d", batch)
	}
	if err := checkData(m, ds); err != nil {
		return 0, 0, err
	}
	batch = max(1, min(batch, ds.N)) // no room beyond the data
	if err := m.Setup(batch); err != nil {
		return 0, 0, err
	}
	per := m.inLen
	labels := make([]float32, batch)
	idx := make([]int, batch)
	images := make([]float32, batch*per)
	var lossSum float64
	var correct int
	for s := 0; s < ds.N; s += batch {
		select {
		case <-stop:
			return 0, 0, fmt.Errorf("%w after %d of %d images", ErrEvalInterrupted, s, ds.N)
		default:
		}
		bn := min(batch, ds.N-s)
		for i := range bn {
			idx[i] = s + i
		}
		if err := data.Batch(ds, idx[:bn], images, labels); err != nil {
			return 0, 0, err
		}
		l, c, err := m.EvalStep(images, labels, bn)
		if err != nil {
			return 0, 0, err
		}
		if math.IsNaN(l) || math.IsInf(l, 0) {
			// a NaN output's argmax is class 0, which would count the
			// rows labelled 0 as right: no accuracy is better than that one
			return 0, 0, fmt.Errorf("samples %d to %d: %w: the loss is %v (the model's weights hold NaN or Inf, or these inputs overflow it)", s, s+bn-1, ErrNotFinite, l)
		}
		lossSum += l
		correct += c
		if done != nil {
			done(s + bn)
		}
	}
	return lossSum / float64(ds.N), float64(correct) / float64(ds.N), nil
}

// saveCheckpoint writes m's weights, opt's state and cm to dir's
// checkpoint file, replacing it whole; Train wraps its error in a
// CheckpointError.
func saveCheckpoint(m *Model, opt Optimizer, cm checkpointMeta, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	slots, step := opt.State()
	cm.OptStep = step
	f, err := m.file("checkpoint", cm)
	if err != nil {
		return err
	}
	params := m.Params()
	for _, slot := range sortedKeys(slots) {
		for i, buf := range slots[slot] {
			d := make([]float32, params[i].Len())
			if err := m.B.Download(d, buf); err != nil {
				return fmt.Errorf("download optimizer state: %w", err)
			}
			f.Tensors = append(f.Tensors, modelfile.Tensor{Name: "optimizer/" + slot + "/" + params[i].Name,
				Shape: append([]int(nil), params[i].Shape...), Data: d})
		}
	}
	return modelfile.WriteFile(filepath.Join(dir, CheckpointName), f)
}

// loadCheckpoint restores weights and optimizer state; ok is false when no
// checkpoint exists yet. A checkpoint written by a run that differs from
// run (seed, batch, optimizer, augmentation, training data), for another
// model, or with more epochs done than run.Epoch (the epochs this run asks
// for) is refused before anything is restored.
func loadCheckpoint(m *Model, opt Optimizer, path string, run checkpointMeta) (checkpointMeta, bool, error) {
	var cm checkpointMeta
	f, err := modelfile.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cm, false, nil
	}
	if err != nil {
		return cm, false, fmt.Errorf("resume: %w", err)
	}
	if f.Kind != "checkpoint" {
		return cm, false, fmt.Errorf("resume: %s is a %q file, not a checkpoint", path, f.Kind)
	}
	if err := json.Unmarshal(f.Meta, &cm); err != nil {
		return cm, false, fmt.Errorf("resume: %s: checkpoint metadata: %w", path, err)
	}
	spec, err := ParseSpec(f.Spec)
	if err != nil {
		return cm, false, fmt.Errorf("resume: %s: %w", path, err)
	}
	if d := modelDifferences(spec, m.Spec); len(d) > 0 {
		return cm, false, fmt.Errorf("resume: %s holds a different model: %s (resume with the model spec it was trained with, or use another checkpoint directory)",
			path, strings.Join(d, "; "))
	}
	if cm.Epoch > run.Epoch {
		return cm, false, fmt.Errorf("resume: %s has %d epochs done, more than the %d this run asks for", path, cm.Epoch, run.Epoch)
	}
	if d := cm.differences(run); len(d) > 0 {
		return cm, false, fmt.Errorf("resume: %s was written by a different run: %s (resume with the flags it was trained with, or use another checkpoint directory)",
			path, strings.Join(d, "; "))
	}
	params := m.Params()
	for _, p := range params {
		if err := uploadTensor(m.B, f, p.Name, p.Shape, p.W); err != nil {
			return cm, false, fmt.Errorf("resume: %s: %w", path, err)
		}
	}
	slots, _ := opt.State()
	for _, slot := range sortedKeys(slots) {
		for i, buf := range slots[slot] {
			name := "optimizer/" + slot + "/" + params[i].Name
			if err := uploadTensor(m.B, f, name, params[i].Shape, buf); err != nil {
				return cm, false, fmt.Errorf("resume: %s: %w", path, err)
			}
		}
	}
	opt.SetStep(cm.OptStep)
	return cm, true, nil
}

// maxModelDifferences bounds the differences modelDifferences lists.
const maxModelDifferences = 4

// modelDifferences lists how the model of spec there (a checkpoint's)
// differs from the model of spec here (this run's), or is empty when they
// are the same model: same input, and layer for layer the same type, name
// (as the weights are named: a layer without one is named by its type and
// index) and settings, compared with their defaults filled in (conv2d's
// padding "valid" and none are one padding, a kernel [3] is [3, 3]). The
// spec's own name, which kiln train takes from the spec file's name when it
// has none, is not part of the model. Each difference names the layer and
// field; after maxModelDifferences the rest are counted.
func modelDifferences(there, here Spec) []string {
	var d []string
	if !slices.Equal(there.Input, here.Input) {
		d = append(d, fmt.Sprintf("input %v there, %v here", there.Input, here.Input))
	}
	if len(there.Layers) != len(here.Layers) {
		d = append(d, fmt.Sprintf("%d layers there, %d here", len(there.Layers), len(here.Layers)))
	}
	a, b := there.canonicalLayers(), here.canonicalLayers()
	for i := range min(len(a), len(b)) {
		la, lb := a[i], b[i]
		at := fmt.Sprintf("layer %d (%s %q)", i, lb.Type, lb.Name)
		if la.Type != lb.Type {
			d = append(d, fmt.Sprintf("layer %d: %s %q there, %s %q here", i, la.Type, la.Name, lb.Type, lb.Name))
			continue
		}
		if la.Name != lb.Name {
			d = append(d, fmt.Sprintf("%s: named %q there", at, la.Name))
		}
		sa, sb := la.settings(), lb.settings()
		for k, f := range sa {
			if !reflect.DeepEqual(f.value, sb[k].value) {
				d = append(d, fmt.Sprintf("%s: %s %s there, %s here", at, f.name, showField(f.value), showField(sb[k].value)))
			}
		}
	}
	if len(d) > maxModelDifferences {
		d = append(d[:maxModelDifferences:maxModelDifferences], fmt.Sprintf("%d more differences", len(d)-maxModelDifferences))
	}
	return d
}

// showField renders a layer setting for modelDifferences: an empty
// activation as none.
func showField(v any) string {
	if s, ok := v.(string); ok {
		if s == "" {
			return "none"
		}
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// canonicalLayers returns s's layers as the model they build sees them:
// each named as its weights are, fields that do not apply to its type
// cleared, and defaults filled in (kernel, strides and pool as [H, W];
// padding "valid" where none is given; the activation "linear" as none).
func (s Spec) canonicalLayers() []LayerSpec {
	c := s.withoutMisplaced()
	out := c.Layers
	for i := range out {
		l := &out[i]
		l.Name = c.layerName(i)
		if l.Activation == "linear" {
			l.Activation = ""
		}
		hw := func(v []int, def int) []int {
			h, w, err := pair(v, def, "")
			if err != nil {
				return v // Shapes refuses it; shown as written
			}
			return []int{h, w}
		}
		switch l.Type {
		case "conv2d":
			l.Kernel, l.Strides = hw(l.Kernel, 0), hw(l.Strides, 1)
			if l.Padding == "" {
				l.Padding = "valid"
			}
		case "maxpool2d":
			l.Pool = hw(l.Pool, 2)
			if len(l.Strides) == 0 { // the pool's own size
				l.Strides = l.Pool
			}
			l.Strides = hw(l.Strides, 0)
			l.Padding = "valid"
		}
	}
	return out
}

func sortedKeys(m map[string][]backend.Buffer) []string {
	return slices.Sorted(maps.Keys(m))
}
