package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/kiln-ml/kiln/engine"
	"github.com/kiln-ml/kiln/engine/data"
)

type evalReport struct {
	Command      string  `json:"command"`
	Backend      string  `json:"backend"`
	Model        string  `json:"model"`
	ModelFile    string  `json:"model_file"`
	Data         string  `json:"data"`
	TestSamples  int     `json:"test_samples"`
	TestAccuracy float64 `json:"test_accuracy"`
	TestLoss     float64 `json:"test_loss"`
}

func runEval(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", "--model FILE [flags]", stdout, stderr)
	var bf backendFlags
	var df dataFlags
	bf.register(fs)
	df.register(fs)
	// eval's --data defaults to the model's training set, not to mnist
	dataFlag := fs.Lookup("data")
	dataFlag.Usage = "dataset to evaluate on: mnist, fashion-mnist, cifar10 or a directory (default: the built-in dataset the model was trained on; a model trained on a directory needs --data)"
	dataFlag.DefValue = ""
	modelFile := fs.String("model", "", "model file written by kiln train (required)")
	batch := fs.Int("batch", 64, "batch size")
	report := fs.String("report", "", "write a JSON report to this file")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *modelFile == "" {
		return fmt.Errorf("--model is required")
	}
	if *batch <= 0 {
		return fmt.Errorf("--batch must be positive, got %d", *batch)
	}
	if err := checkReport(*report); err != nil { // before the evaluation, not after it
		return err
	}
	if err := checkOutputs([]namedPath{{"report", *report}, {"cpuprofile", bf.profile}}, []namedPath{{"model", *modelFile}}); err != nil {
		return err
	}
	if err := checkModelFile(*modelFile); err != nil {
		return err
	}
	if err := bf.check(); err != nil {
		return err
	}
	dataSet := isSet(fs, "data")
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
	m, meta, err := engine.Load(b, *modelFile)
	if err != nil {
		return err
	}
	defer m.Close()
	if trained, asked := data.Builtin(meta.Dataset), data.Builtin(df.name); dataSet && trained != "" && asked != "" && trained != asked {
		fmt.Fprintf(stderr, "note: the model was trained on %s; evaluating it on %s as --data asks\n", trained, asked)
	}
	if !dataSet {
		switch d := data.Builtin(meta.Dataset); {
		case d != "":
			df.name = d
			fmt.Fprintf(stderr, "data: %s, the model's training set (--data overrides)\n", d)
		case meta.Dataset != "":
			// a directory or synthetic data: mnist would be a silent guess
			// (an MNIST-shaped model from a folder of Fashion-MNIST files
			// scored 0.15 on it)
			return fmt.Errorf("the model was trained on %q, not a built-in dataset: give --data (that directory, or mnist, fashion-mnist or cifar10)", meta.Dataset)
		default:
			fmt.Fprintf(stderr, "data: %s (the model file does not say what it was trained on; --data overrides)\n", df.name)
		}
	}
	test, err := df.load(false)
	if err != nil {
		return err
	}
	stop, release := catchInterrupt()
	loss, acc, err := engine.EvaluateUntil(m, test, *batch, evalProgress(stderr, test.N), stop)
	release()
	if errors.Is(err, engine.ErrEvalInterrupted) && *report != "" {
		return fmt.Errorf("%w: no accuracy, and %s was not written", err, *report)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "test accuracy %.4f  test loss %.4f  (%d images)\n", acc, loss, test.N)
	if *report != "" {
		return writeJSON(*report, evalReport{Command: "eval", Backend: b.Name(), Model: m.Spec.Name,
			ModelFile: *modelFile, Data: test.Name, TestSamples: test.N, TestAccuracy: acc, TestLoss: loss})
	}
	return nil
}
