package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/engine"
	"github.com/kiln-ml/kiln/engine/data"
	"github.com/kiln-ml/kiln/engine/modelfile"
)

// trainReport is the --report JSON of kiln train. Field names are stable.
type trainReport struct {
	Command      string              `json:"command"`
	Backend      string              `json:"backend"`
	Device       backend.DeviceInfo  `json:"device"`
	Model        string              `json:"model"`
	Params       int                 `json:"params"`
	Data         string              `json:"data"`
	TrainSamples int                 `json:"train_samples"`
	ValSamples   int                 `json:"val_samples"`
	TestSamples  int                 `json:"test_samples"`
	Batch        int                 `json:"batch"`
	Optimizer    string              `json:"optimizer"`
	LR           float64             `json:"lr"`
	Momentum     *float64            `json:"momentum,omitempty"` // sgd only
	Seed         uint64              `json:"seed"`
	EpochsAsked  int                 `json:"epochs_requested"`
	Augment      bool                `json:"augment"`
	Limit        int                 `json:"limit,omitempty"` // --limit; 0: every training image
	ValSplit     float64             `json:"val_split"`
	TestAccuracy float64             `json:"test_accuracy"`
	TestLoss     float64             `json:"test_loss"`
	Epochs       []engine.EpochStats `json:"epochs"`
	ModelFile    string              `json:"model_file"`
}

func runTrain(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train", "[flags]", stdout, stderr)
	var bf backendFlags
	var df dataFlags
	bf.register(fs)
	df.register(fs)
	modelFlag := fs.String("model", "reference", "model: reference (the Keras CIFAR-10 CNN) or a JSON spec file")
	epochs := fs.Int("epochs", 1, "training epochs")
	batch := fs.Int("batch", 32, "batch size")
	lr := fs.Float64("lr", 0, "learning rate (default 1e-3 for adam, 1e-2 for sgd)")
	optName := fs.String("optimizer", "adam", "optimizer: adam or sgd")
	momentum := fs.Float64("momentum", 0.9, "SGD momentum")
	seed := fs.Uint64("seed", 1, "random seed (weights, shuffling, dropout, augmentation)")
	valSplit := fs.Float64("val-split", 0, "fraction of the training set held out for validation, in [0, 1)")
	augment := fs.Bool("augment", false, "random flips and padded crops of training images (for cifar10)")
	out := fs.String("out", "model.kiln", "where to save the trained model")
	ckDir := fs.String("checkpoint-dir", "", "write a checkpoint here after every epoch")
	resume := fs.Bool("resume", false, "continue from the checkpoint in --checkpoint-dir")
	report := fs.String("report", "", "write a JSON report of the run to this file")
	limit := fs.Int("limit", 0, "use only the first N training images (0: all); for quick runs")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	switch {
	case *batch <= 0:
		return fmt.Errorf("--batch must be positive, got %d", *batch)
	case *epochs <= 0:
		return fmt.Errorf("--epochs must be positive, got %d", *epochs)
	case !(*valSplit >= 0 && *valSplit < 1): // NaN too
		return fmt.Errorf("--val-split must be in [0, 1), got %g", *valSplit)
	case *resume && *ckDir == "":
		return fmt.Errorf("--resume needs --checkpoint-dir")
	case *limit < 0:
		return fmt.Errorf("--limit must not be negative, got %d", *limit)
	case isSet(fs, "lr") && *lr == 0: // 0 is the flag's "unset" (the optimizer's default)
		return fmt.Errorf("--lr 0: the learning rate must be positive (leave --lr out for the optimizer's default)")
	}
	optCfg := engine.OptimizerConfig{Name: *optName, LR: *lr, Momentum: *momentum}
	if err := optCfg.Validate(); err != nil {
		return fmt.Errorf("--optimizer/--lr/--momentum: %w", err)
	}
	if isSet(fs, "momentum") && optCfg.Name != "sgd" {
		return fmt.Errorf("--momentum only applies to --optimizer sgd (this run uses %s)", optCfg.Name)
	}
	optCfg = optCfg.WithDefaults()
	specFile := namedPath{"model", *modelFlag}
	if *modelFlag == "reference" {
		specFile.path = ""
	}
	outputs := []namedPath{{"out", *out}, {"report", *report}, {"cpuprofile", bf.profile}}
	// before checkOutDir: --out in a --checkpoint-dir not made yet is
	// refused for what it is, not for its missing directory
	if err := checkCheckpointClash(*ckDir, outputs, []namedPath{specFile}); err != nil {
		return err
	}
	if err := checkOutDir(*out); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := checkReport(*report); err != nil { // before training, not after it
		return err
	}
	if err := checkOutputs(outputs, []namedPath{specFile}); err != nil {
		return err
	}
	if *ckDir != "" { // before the data loads and an epoch runs
		if err := os.MkdirAll(*ckDir, 0o755); err != nil {
			return fmt.Errorf("--checkpoint-dir: %w", err)
		}
		if err := checkWritable(*ckDir); err != nil {
			return fmt.Errorf("--checkpoint-dir: %w", err)
		}
		if !*resume {
			if err := checkNoCheckpoint(*ckDir); err != nil {
				return err
			}
		}
	}

	if err := bf.check(); err != nil { // before the data loads
		return err
	}
	if specFile.path != "" { // a missing or malformed spec, before the data loads
		if _, err := engine.LoadSpec(specFile.path); err != nil {
			return err
		}
	}
	train, err := df.load(true)
	if err != nil {
		return err
	}
	test, err := df.load(false)
	if err != nil {
		return err
	}
	if *limit > 0 && *limit < train.N {
		train = train.Subset(*limit)
	} else if *limit > train.N {
		fmt.Fprintf(stderr, "note: --limit %d is more than the %d training images of %s: all of them are used\n", *limit, train.N, train.Name)
	}
	var val *data.Dataset
	if *valSplit > 0 {
		n := train.N
		if train, val, err = train.Split(*valSplit, *seed); err != nil {
			return err
		}
		if val.N == 0 {
			return valSplitTooSmall(*valSplit, n, *limit)
		}
	}
	spec, err := loadModelSpec(*modelFlag, train)
	if err != nil {
		return err
	}
	if err := checkTestSet(test, train, spec); err != nil { // now, not after the epochs
		return err
	}
	if *augment && train.C == 1 {
		fmt.Fprintf(stderr, "warning: --augment flips images left to right and shifts them, as suits CIFAR-10's photos; on %s's grayscale images it usually costs accuracy (a flipped digit is another shape)\n", train.Name)
	}

	stopProfile, err := bf.startProfile(stderr)
	if err != nil {
		return err
	}
	defer stopProfile()
	b, err := bf.open(stderr)
	if err != nil {
		return err
	}
	defer b.Close()
	m, err := engine.New(b, spec, *seed)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintf(stderr, "model %s: %s, %d parameters\n", spec.Name, spec, m.NumParams())
	nVal := 0
	if val != nil {
		nVal = val.N
	}
	fmt.Fprintln(stderr, dataLine(train, test, nVal))

	meta := engine.ModelMeta{ClassNames: train.ClassNames, Dataset: train.Name, Scale: 1.0 / 255}
	// Ctrl-C or SIGTERM while training stops after the current step and
	// says what is saved; during the evaluation after it, between batches
	// (the model is saved by then). Only the first signal is caught: a
	// second one ends kiln at once.
	stop, release := catchInterrupt()
	cfg := engine.TrainConfig{Epochs: *epochs, Batch: *batch, Seed: *seed,
		Optimizer: optCfg,
		Augment:   *augment, CheckpointDir: *ckDir, Resume: *resume, Meta: meta, Stop: stop}
	prog := newProgress(stderr, *batch)
	hist, err := engine.Train(m, train, val, cfg, prog)
	release()
	select {
	case <-stop:
		if err == nil { // the signal came after the last step
			err = fmt.Errorf("%w after the last epoch, before evaluation", engine.ErrInterrupted)
		}
	default:
	}
	if errors.Is(err, engine.ErrInterrupted) {
		prog.Interrupted()
		switch {
		case *ckDir == "":
			return fmt.Errorf("%w: nothing was saved (with --checkpoint-dir DIR a run can be resumed)", err)
		case len(hist) == 0:
			return fmt.Errorf("%w: no epoch had finished, so %s holds no checkpoint of this run", err, *ckDir)
		default:
			return fmt.Errorf("%w: the checkpoint in %s holds epoch %d; to continue, run the same command with --resume", err, *ckDir, len(hist))
		}
	}
	var ce *engine.CheckpointError
	if errors.As(err, &ce) {
		return checkpointFailure(err, ce.Path, *out)
	}
	if err != nil {
		return err
	}
	meta.Epochs = len(hist)
	testLoss, testAcc, err := saveAndEvaluate(m, *out, meta, stdout, func() (float64, float64, error) {
		stop, release := catchInterrupt()
		defer release()
		return engine.EvaluateUntil(m, test, max(*batch, 64), evalProgress(stderr, test.N), stop)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "test accuracy %.4f  test loss %.4f  (%d images)\n", testAcc, testLoss, test.N)
	if *report != "" {
		r := trainReport{Command: "train", Backend: b.Name(), Device: b.Device(), Model: spec.Name,
			Params: m.NumParams(), Data: train.Name, TrainSamples: train.N, ValSamples: nVal,
			TestSamples: test.N, Batch: *batch, Optimizer: optCfg.Name, LR: optCfg.LR, Seed: *seed,
			EpochsAsked: *epochs, Augment: *augment, Limit: *limit, ValSplit: *valSplit,
			TestAccuracy: testAcc, TestLoss: testLoss, Epochs: hist, ModelFile: *out}
		if optCfg.Name == "sgd" {
			r.Momentum = &optCfg.Momentum
		}
		if err := writeJSON(*report, r); err != nil {
			return err
		}
	}
	return nil
}

// saveAndEvaluate saves the trained model m to out, then evaluates it with
// evaluate and saves it again with the test accuracy in meta. Saving first
// keeps the run when the evaluation fails or is interrupted (Ctrl-C acts
// as usual once training is over): the error then says the model is saved,
// without a test accuracy.
func saveAndEvaluate(m *engine.Model, out string, meta engine.ModelMeta, stdout io.Writer, evaluate func() (loss, acc float64, err error)) (loss, acc float64, err error) {
	if err := m.Save(out, meta); err != nil {
		return 0, 0, err
	}
	fmt.Fprintf(stdout, "saved model to %s\n", out)
	loss, acc, err = evaluate()
	if err != nil {
		return 0, 0, fmt.Errorf("evaluate: %w (the trained model is saved in %s, without a test accuracy; kiln eval --model %s evaluates it)", err, out, out)
	}
	meta.TestAccuracy = &acc
	if err := m.Save(out, meta); err != nil {
		return 0, 0, fmt.Errorf("record the test accuracy %.4f in %s: %w (the file holds the trained model without it)", acc, out, err)
	}
	return loss, acc, nil
}

// checkNoCheckpoint fails when dir already holds a checkpoint, which a run
// without --resume would overwrite with its first epoch, and says what the
// checkpoint holds and how to go on.
func checkNoCheckpoint(dir string) error {
	path := filepath.Join(dir, engine.CheckpointName)
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--checkpoint-dir: %w", err)
	}
	return fmt.Errorf("--checkpoint-dir %s already holds %s (%s, written %s), which this run would overwrite: add --resume to continue it, or remove it or choose another --checkpoint-dir",
		dir, engine.CheckpointName, describeCheckpoint(path), st.ModTime().Format("2006-01-02 15:04"))
}

// readCheckpoint returns the number of epochs the checkpoint file at path
// had done and the name of its training data, or an error that says what
// the file is instead (as describeCheckpoint shows it); it wraps
// os.ErrNotExist when there is no file.
func readCheckpoint(path string) (epoch int, data string, err error) {
	f, err := modelfile.ReadFile(path)
	if err != nil {
		return 0, "", fmt.Errorf("unreadable: %w", err)
	}
	if f.Kind != "checkpoint" {
		return 0, "", fmt.Errorf("a %q file, not a checkpoint", f.Kind)
	}
	var cm struct {
		Epoch int    `json:"epoch"`
		Data  string `json:"data"`
	}
	if err := json.Unmarshal(f.Meta, &cm); err != nil {
		return 0, "", fmt.Errorf("its metadata is unreadable: %w", err)
	}
	return cm.Epoch, cm.Data, nil
}

// describeCheckpoint says what the checkpoint file at path holds: the
// epochs its run had done and on which data, or why it cannot tell.
func describeCheckpoint(path string) string {
	epoch, data, err := readCheckpoint(path)
	if err != nil {
		return err.Error()
	}
	desc := fmt.Sprintf("%d epoch", epoch)
	if epoch != 1 {
		desc += "s"
	}
	desc += " done"
	if data != "" {
		desc += " on " + data
	}
	return desc
}

// checkTestSet fails, before any training, when the test split could not
// be evaluated on the model trained on train: images of another size than
// the model takes, or more classes than it outputs (the check ran only after
// the last epoch, which then ended without saving the model).
func checkTestSet(test, train *data.Dataset, spec engine.Spec) error {
	in := spec.Input
	switch {
	case test.N == 0:
		return fmt.Errorf("test set %s holds no images", test.Name)
	case test.H != in[0] || test.W != in[1] || test.C != in[2]:
		return fmt.Errorf("test set %s has %dx%dx%d images, but the training set %s and the model have %dx%dx%d: the trained model could not be evaluated on it (are its files from another dataset?)",
			test.Name, test.H, test.W, test.C, train.Name, in[0], in[1], in[2])
	}
	if c := spec.Classes(); test.Classes > c {
		return fmt.Errorf("test set %s has %d classes, but the model has %d outputs (the training set %s has %d classes)", test.Name, test.Classes, c, train.Name, train.Classes)
	}
	return nil
}

// dataLine is the line train prints about its data: the training set's
// name, each split's size and the image size, the test set's own when it
// differs.
func dataLine(train, test *data.Dataset, nVal int) string {
	if test.H == train.H && test.W == train.W && test.C == train.C {
		return fmt.Sprintf("data %s: %d training, %d validation, %d test images of %dx%dx%d",
			train.Name, train.N, nVal, test.N, train.H, train.W, train.C)
	}
	return fmt.Sprintf("data %s: %d training, %d validation images of %dx%dx%d; %d test images of %dx%dx%d",
		train.Name, train.N, nVal, train.H, train.W, train.C, test.N, test.H, test.W, test.C)
}

// checkReport is checkOutDir for an optional --report file (empty: not
// given), its error naming the flag.
func checkReport(path string) error {
	if path == "" {
		return nil
	}
	if err := checkOutDir(path); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	return nil
}

// checkWritable fails when no file can be created in dir (read-only, no
// permission): it creates and removes a temporary file there, as saving
// will.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".kiln-write-check-*")
	if err != nil {
		return fmt.Errorf("cannot write in %s: %w", dir, err)
	}
	name := f.Name()
	err = f.Close()
	if rmErr := os.Remove(name); err == nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("cannot write in %s: %w", dir, err)
	}
	return nil
}

// checkOutDir fails early, before any training, when path's directory does
// not exist, is not a directory or cannot be written to.
func checkOutDir(path string) error {
	if path == "" || strings.HasSuffix(path, string(filepath.Separator)) {
		return fmt.Errorf("%q is not a file name", path)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("cannot save %s: it is a directory", path)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cannot save %s: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("cannot save %s: %s is not a directory", path, dir)
	}
	if err := checkWritable(dir); err != nil {
		return fmt.Errorf("cannot save %s: %w", path, err)
	}
	return nil
}

// loadModelSpec returns the reference CNN shaped for ds, or the spec file.
func loadModelSpec(name string, ds *data.Dataset) (engine.Spec, error) {
	if name == "reference" {
		return engine.ReferenceSpec(ds.H, ds.W, ds.C, ds.Classes), nil
	}
	spec, err := engine.LoadSpec(name)
	if err != nil {
		return spec, err
	}
	if spec.Name == "" { // "name" is optional in a spec: the file's name then
		base := filepath.Base(name)
		spec.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	in := spec.Input
	if in[0] != ds.H || in[1] != ds.W || in[2] != ds.C {
		return spec, fmt.Errorf("model spec %s takes %v inputs, dataset %s has %dx%dx%d images", name, in, ds.Name, ds.H, ds.W, ds.C)
	}
	if c := spec.Classes(); c < ds.Classes {
		return spec, fmt.Errorf("model spec %s has %d outputs, dataset %s has %d classes", name, c, ds.Name, ds.Classes)
	}
	return spec, nil
}

// checkCheckpointClash fails, before any training, when an output names
// the --checkpoint-dir directory (the run trained to the end, then could not
// save: a directory was in the way) or the checkpoint file in it (writing
// there replaced the checkpoint, so a later --resume could not continue the
// run, and at the end of a resumed run it destroyed a long run's
// checkpoint), or when an input is that file, which every epoch
// overwrites. Paths compare as checkOutputs compares them (sameFile).
func checkCheckpointClash(ckDir string, outputs, inputs []namedPath) error {
	if ckDir == "" {
		return nil
	}
	ckFile := filepath.Join(ckDir, engine.CheckpointName)
	for _, o := range outputs {
		switch {
		case o.path == "":
		case sameFile(o.path, ckDir):
			return fmt.Errorf("--%s %s is also given as --checkpoint-dir, the directory that holds the checkpoint: --%s names a file to write (give another name)", o.flag, o.path, o.flag)
		case sameFile(o.path, ckFile):
			return fmt.Errorf("--%s %s is the checkpoint file of --checkpoint-dir %s: writing it would destroy the checkpoint, and --resume could not continue the run (give another name)", o.flag, o.path, ckDir)
		}
	}
	for _, in := range inputs {
		if in.path != "" && sameFile(in.path, ckFile) {
			return fmt.Errorf("--%s %s is the checkpoint file of --checkpoint-dir %s, which every epoch overwrites: that would destroy it (move it, or choose another --checkpoint-dir)", in.flag, in.path, ckDir)
		}
	}
	return nil
}

// valSplitTooSmall is the error for a --val-split f that holds out none of
// the n training images (limit: the --limit that cut them, 0 if none). It
// names the smallest fraction that holds one out, or, for a training set
// of fewer than two images (data.Split always keeps one to train on), says
// that no fraction can.
func valSplitTooSmall(f float64, n, limit int) error {
	if n < 2 {
		images := fmt.Sprintf("%d image", n)
		if n != 1 {
			images += "s"
		}
		if limit > 0 {
			return fmt.Errorf("--val-split %g: the training set has %s (--limit %d); a validation split needs at least 2, one to train on and one to hold out (raise --limit or leave out --val-split)", f, images, limit)
		}
		return fmt.Errorf("--val-split %g: the training set has %s; a validation split needs at least 2, one to train on and one to hold out (leave out --val-split)", f, images)
	}
	return fmt.Errorf("--val-split %g of %d training images holds out no image (at least %s would hold out one)", f, n, minValSplit(n))
}

// minValSplit is the smallest fraction, to two significant digits, that
// holds out at least one of n ≥ 1 training images as data.Split rounds
// (round(f·n) images).
func minValSplit(n int) string {
	least := 0.5 / float64(n)
	unit := math.Pow(10, math.Floor(math.Log10(least))-1) // two significant digits
	for k := math.Ceil(least / unit); ; k++ {
		s := strconv.FormatFloat(k*unit, 'g', 2, 64)
		if v, err := strconv.ParseFloat(s, 64); err == nil && int(v*float64(n)+0.5) >= 1 {
			return s
		}
	}
}

// checkpointFailure adds to err, Train's error when the checkpoint at path
// could not be written, what the run kept and how to go on, as the error
// of an interrupted run does: the checkpoint file is replaced whole, so it
// still holds the last epoch written (read from the file itself), which
// --resume continues once the cause (a full disk) is fixed. The trained
// model is not saved to out: it is short of the epochs asked for, as after
// Ctrl-C.
func checkpointFailure(err error, path, out string) error {
	dir := filepath.Dir(path)
	epoch, _, rerr := readCheckpoint(path)
	switch {
	case errors.Is(rerr, os.ErrNotExist):
		return fmt.Errorf("%w: no epoch's checkpoint was written, so %s holds no checkpoint of this run and nothing was saved to --out %s; fix the cause (is the disk full?) and run the command again", err, dir, out)
	case rerr != nil:
		return fmt.Errorf("%w: the checkpoint file there is %v, and nothing was saved to --out %s", err, rerr, out)
	}
	return fmt.Errorf("%w: the checkpoint in %s holds epoch %d and nothing was saved to --out %s; to continue, fix the cause (is the disk full?), then run the same command with --resume", err, dir, epoch, out)
}
