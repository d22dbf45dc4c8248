package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/cpu"
	"github.com/kiln-ml/kiln/engine"
	"github.com/kiln-ml/kiln/engine/data"
)

// kiln runs the CLI in-process and returns exit code, stdout and stderr.
func kiln(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// writeIDXDataset writes a small, learnable MNIST-shaped dataset in the
// four standard IDX files: each class is a bright square at its own place.
func writeIDXDataset(t *testing.T, dir string, nTrain, nTest int) {
	t.Helper()
	write := func(name string, dims []int, payload []byte) {
		f, err := os.Create(filepath.Join(dir, name))
		require.NoError(t, err)
		require.NoError(t, data.WriteIDX(f, dims, payload))
		require.NoError(t, f.Close())
	}
	gen := func(n int, seed int) ([]byte, []byte) {
		img := make([]byte, n*28*28)
		lab := make([]byte, n)
		for i := 0; i < n; i++ {
			c := (i*7 + seed) % 4
			lab[i] = byte(c)
			y0, x0 := 4+(c/2)*12, 4+(c%2)*12
			for y := y0; y < y0+8; y++ {
				for x := x0; x < x0+8; x++ {
					img[i*784+y*28+x] = byte(200 + (i+y+x)%50)
				}
			}
		}
		return img, lab
	}
	img, lab := gen(nTrain, 0)
	write("train-images-idx3-ubyte", []int{nTrain, 28, 28}, img)
	write("train-labels-idx1-ubyte", []int{nTrain}, lab)
	img, lab = gen(nTest, 3)
	write("t10k-images-idx3-ubyte", []int{nTest, 28, 28}, img)
	write("t10k-labels-idx1-ubyte", []int{nTest}, lab)
}

// tinyData writes a tiny IDX dataset (see writeIDXDataset) and the
// smallSpecJSON model spec into a new directory; it returns both paths.
func tinyData(t *testing.T, nTrain, nTest int) (dir, spec string) {
	t.Helper()
	dir = t.TempDir()
	writeIDXDataset(t, dir, nTrain, nTest)
	spec = filepath.Join(dir, "spec.json")
	require.NoError(t, os.WriteFile(spec, []byte(smallSpecJSON), 0o644))
	return dir, spec
}

const smallSpecJSON = `{"name":"tiny","input":[28,28,1],"layers":[
 {"type":"conv2d","filters":4,"kernel":[3,3],"strides":[2,2],"activation":"relu"},
 {"type":"maxpool2d","pool":[2,2]},
 {"type":"flatten"},
 {"type":"dense","units":10,"activation":"softmax"}]}`

func TestHelpOnEverySubcommand(t *testing.T) {
	for _, c := range commands() {
		code, out, _ := kiln(t, c.name, "--help")
		assert.Equal(t, 0, code, c.name)
		assert.Contains(t, out, "Usage: kiln "+c.name, c.name)
	}
	for _, c := range commands() { // kiln help COMMAND is kiln COMMAND --help
		code, out, _ := kiln(t, "help", c.name)
		assert.Equal(t, 0, code, c.name)
		assert.Contains(t, out, "Usage: kiln "+c.name, c.name)
	}
	code, _, errOut := kiln(t, "help", "frobnicate")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `unknown command "frobnicate"`)
	code, out, _ := kiln(t, "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "train")
	code, _, errOut = kiln(t, "frobnicate")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `unknown command "frobnicate"`)
}

var accRe = regexp.MustCompile(`test accuracy ([0-9.]+)`)

// TestTrainEvalPredictEndToEnd trains a tiny spec on an IDX directory,
// checks the report, that eval reproduces the accuracy train printed, and
// that predict classifies a PNG.
func TestTrainEvalPredictEndToEnd(t *testing.T) {
	dir, spec := tinyData(t, 400, 100)
	model := filepath.Join(dir, "m.kiln")
	report := filepath.Join(dir, "r.json")
	ck := filepath.Join(dir, "ck")
	code, out, errOut := kiln(t, "train", "--data", dir, "--model", spec, "--epochs", "2", "--batch", "16",
		"--backend", "cpu", "--out", model, "--report", report, "--checkpoint-dir", ck, "--val-split", "0.1")
	require.Equal(t, 0, code, errOut)
	m := accRe.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	assert.Contains(t, errOut, "epoch 2/2 done")

	var r map[string]any
	raw, err := os.ReadFile(report)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &r))
	for _, k := range []string{"backend", "model", "data", "test_accuracy", "test_loss", "epochs"} {
		assert.Contains(t, r, k)
	}
	assert.Equal(t, 1e-3, r["lr"], "the report gives the learning rate used (Adam's default), not the flag's 0")
	// what the run was asked for, so it can be repeated
	for _, k := range []string{"epochs_requested", "augment", "val_split", "seed", "batch", "optimizer"} {
		assert.Contains(t, r, k)
	}
	assert.NotContains(t, r, "momentum", "adam has none")
	assert.Equal(t, 2.0, r["epochs_requested"])
	epochs := r["epochs"].([]any)
	require.Len(t, epochs, 2)
	for _, k := range []string{"seconds", "train_loss", "train_accuracy", "images_per_second", "val_accuracy"} {
		assert.Contains(t, epochs[0], k)
	}
	assert.Greater(t, r["test_accuracy"].(float64), 0.9, "the tiny dataset is easy")

	code, evalOut, errOut := kiln(t, "eval", "--model", model, "--data", dir, "--backend", "cpu")
	require.Equal(t, 0, code, errOut)
	m2 := accRe.FindStringSubmatch(evalOut)
	require.NotNil(t, m2)
	assert.Equal(t, m[1], m2[1], "eval reproduces the accuracy train printed")

	// A PNG of class 3 (square at the bottom right).
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for y := 16; y < 24; y++ {
		for x := 16; x < 24; x++ {
			img.SetGray(x, y, color.Gray{Y: 230})
		}
	}
	pngPath := filepath.Join(dir, "three.png")
	f, err := os.Create(pngPath)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, img))
	require.NoError(t, f.Close())
	code, pout, errOut := kiln(t, "predict", "--model", model, "--top", "2", "--backend", "cpu", pngPath)
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `three.png:\s+3 `, pout)

	// --invert: the same digit drawn dark on light reads the same.
	dark := image.NewGray(img.Bounds())
	for i, v := range img.Pix {
		dark.Pix[i] = 255 - v
	}
	darkPath := filepath.Join(dir, "three-dark.png")
	f, err = os.Create(darkPath)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, dark))
	require.NoError(t, f.Close())
	code, pout, errOut = kiln(t, "predict", "--model", model, "--top", "1", "--invert", "--backend", "cpu", darkPath)
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `three-dark.png:\s+3 `, pout)
	// Black strokes on transparency without --invert composite onto black
	// and vanish: predict says so; with --invert it reads the digit.
	transparent := image.NewNRGBA(img.Bounds())
	for y := 16; y < 24; y++ {
		for x := 16; x < 24; x++ {
			transparent.Set(x, y, color.NRGBA{A: 255})
		}
	}
	clearPath := filepath.Join(dir, "three-transparent.png")
	f, err = os.Create(clearPath)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, transparent))
	require.NoError(t, f.Close())
	code, _, errOut = kiln(t, "predict", "--model", model, "--top", "1", "--backend", "cpu", clearPath)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "three-transparent.png is blank (one flat colour) as the model sees it: if it is a drawing on a transparent background, add --invert")
	code, pout, errOut = kiln(t, "predict", "--model", model, "--top", "1", "--invert", "--backend", "cpu", clearPath)
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, errOut, "blank")
	assert.Regexp(t, `three-transparent.png:\s+3 `, pout)
	// A bad image among good ones: the good ones are still answered.
	code, pout, errOut = kiln(t, "predict", "--model", model, "--backend", "cpu", pngPath, filepath.Join(dir, "nope.png"), darkPath)
	assert.Equal(t, 1, code)
	assert.Regexp(t, `three.png:\s+3 `, pout)
	assert.Contains(t, pout, "three-dark.png:")
	assert.Contains(t, errOut, "nope.png")
	assert.Contains(t, errOut, "1 of 3 images could not be classified")
	// A flag after the images is named, not opened as a file.
	code, pout, errOut = kiln(t, "predict", "--model", model, "--backend", "cpu", pngPath, "--top", "2")
	assert.Equal(t, 1, code)
	assert.Empty(t, pout)
	assert.Contains(t, errOut, `"--top" after the images: flags go before them`)

	// Resume from the checkpoint with more epochs continues, not restarts.
	code, _, errOut = kiln(t, "train", "--data", dir, "--model", spec, "--epochs", "3", "--batch", "16",
		"--backend", "cpu", "--out", model, "--checkpoint-dir", ck, "--resume", "--val-split", "0.1")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "resuming from "+filepath.Join(ck, "checkpoint.kiln")+": 2 of 3 epochs done")
	assert.Contains(t, errOut, "epoch 3/3")
	assert.NotContains(t, errOut, "epoch 1/3")

	// Resume from an empty directory says it starts from the beginning.
	empty := filepath.Join(dir, "empty")
	code, _, errOut = kiln(t, "train", "--data", dir, "--model", spec, "--epochs", "1", "--batch", "16",
		"--backend", "cpu", "--out", model, "--checkpoint-dir", empty, "--resume")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "no checkpoint at "+filepath.Join(empty, "checkpoint.kiln")+": training from the first epoch")
}

func TestBadInputsGiveClearErrors(t *testing.T) {
	dir, spec := tinyData(t, 64, 32)
	model := filepath.Join(dir, "m.kiln")
	code, _, errOut := kiln(t, "train", "--data", dir, "--model", spec, "--batch", "16", "--backend", "cpu", "--out", model)
	require.Equal(t, 0, code, errOut)

	missing := t.TempDir()
	truncated := t.TempDir()
	writeIDXDataset(t, truncated, 64, 32)
	p := filepath.Join(truncated, "train-images-idx3-ubyte")
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, raw[:len(raw)/2], 0o644))
	notIDX := t.TempDir()
	writeIDXDataset(t, notIDX, 64, 32)
	require.NoError(t, os.WriteFile(filepath.Join(notIDX, "train-images-idx3-ubyte"), []byte("hello, this is not an IDX file at all"), 0o644))

	corrupt := filepath.Join(dir, "corrupt.kiln")
	mraw, err := os.ReadFile(model)
	require.NoError(t, err)
	mraw[len(mraw)-10] ^= 0x55
	require.NoError(t, os.WriteFile(corrupt, mraw, 0o644))
	truncModel := filepath.Join(dir, "trunc.kiln")
	require.NoError(t, os.WriteFile(truncModel, mraw[:len(mraw)/3], 0o644))

	badSpec := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(badSpec, []byte(`{"input":[28,28,1],"layers":[{"type":"conv2d","filters":4,"kernel":[3,3]},{"type":"dense","units":10,"activation":"softmax"}]}`), 0o644))
	otherInput := filepath.Join(dir, "other.json")
	require.NoError(t, os.WriteFile(otherInput, []byte(strings.Replace(smallSpecJSON, "[28,28,1]", "[32,32,3]", 1)), 0o644))
	textImage := filepath.Join(dir, "photo.png")
	require.NoError(t, os.WriteFile(textImage, []byte("not a picture"), 0o644))

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"batch 0", []string{"train", "--data", dir, "--batch", "0"}, "--batch must be positive"},
		{"val split holds out nothing", []string{"train", "--data", dir, "--backend", "cpu", "--limit", "40", "--val-split", "0.01"}, "--val-split 0.01 of 40 training images holds out no image"},
		{"missing dataset", []string{"train", "--data", missing, "--backend", "cpu"}, "train-images-idx3-ubyte"},
		{"truncated dataset", []string{"train", "--data", truncated, "--backend", "cpu"}, "truncated"},
		{"not IDX", []string{"train", "--data", notIDX, "--backend", "cpu"}, "not an IDX file"},
		{"cifar without dir", []string{"train", "--data", "cifar10", "--backend", "cpu"}, "--data-dir"},
		{"spec shape mismatch", []string{"train", "--data", dir, "--model", badSpec, "--backend", "cpu"}, "needs a flat input"},
		{"spec input mismatch", []string{"train", "--data", dir, "--model", otherInput, "--backend", "cpu"}, "takes [32 32 3] inputs"},
		{"corrupt model", []string{"eval", "--model", corrupt, "--data", dir, "--backend", "cpu"}, "corrupt"},
		{"truncated model", []string{"eval", "--model", truncModel, "--data", dir, "--backend", "cpu"}, "truncated"},
		{"model is a dataset file", []string{"eval", "--model", filepath.Join(dir, "t10k-labels-idx1-ubyte"), "--data", dir, "--backend", "cpu"}, "not a kiln model file"},
		{"image of the wrong kind", []string{"predict", "--model", model, "--backend", "cpu", textImage}, "photo.png"},
		{"unknown backend", []string{"train", "--data", dir, "--backend", "tpu"}, `unknown backend "tpu"`},
		{"unknown backend before the data", []string{"train", "--data", missing, "--backend", "tpu"}, `unknown backend "tpu"`},
		{"missing spec before the data", []string{"train", "--data", missing, "--model", filepath.Join(missing, "nope.json"), "--backend", "cpu"}, "read model spec: open " + filepath.Join(missing, "nope.json")},
		{"profile before the data", []string{"train", "--data", missing, "--backend", "cpu", "--cpuprofile", filepath.Join(missing, "nope", "cpu.prof")}, "its directory does not exist"},
		{"missing model before the backend", []string{"eval", "--model", filepath.Join(missing, "m.kiln"), "--backend", "tpu"}, "--model: stat " + filepath.Join(missing, "m.kiln")},
		{"predict's missing model before the backend", []string{"predict", "--model", filepath.Join(missing, "m.kiln"), "--backend", "tpu", textImage}, "--model: stat " + filepath.Join(missing, "m.kiln")},
		{"model is a directory", []string{"eval", "--model", missing, "--data", dir}, "--model " + missing + " is a directory"},
		{"resume without dir", []string{"train", "--data", dir, "--resume"}, "--resume needs --checkpoint-dir"},
		{"eval without model", []string{"eval", "--data", dir}, "--model is required"},
		{"unknown optimizer", []string{"train", "--data", dir, "--optimizer", "rmsprop"}, `--optimizer/--lr/--momentum: unknown optimizer "rmsprop"`},
		{"negative learning rate", []string{"train", "--data", dir, "--lr", "-1"}, "learning rate must be positive"},
		{"zero learning rate", []string{"train", "--data", dir, "--lr", "0"}, "--lr 0: the learning rate must be positive (leave --lr out for the optimizer's default)"},
		{"NaN learning rate", []string{"train", "--data", dir, "--lr", "NaN"}, "learning rate must be positive and finite"},
		{"out is a directory", []string{"train", "--data", dir, "--out", dir}, "it is a directory"},
		{"bad momentum", []string{"train", "--data", dir, "--optimizer", "sgd", "--momentum", "1"}, "momentum must be in [0, 1)"},
		{"out in a missing directory", []string{"train", "--data", dir, "--out", filepath.Join(dir, "nope", "m.kiln")}, "--out: cannot save"},
		{"devices takes no arguments", []string{"devices", "extra"}, `unexpected argument "extra": kiln devices takes no arguments`},
		{"model as an argument", []string{"eval", "m.kiln"}, "give the model file with --model m.kiln"},
		{"profile is a directory", []string{"eval", "--data", dir, "--model", model, "--cpuprofile", dir}, "--cpuprofile " + dir + " is a directory"},
		{"profile in a missing directory", []string{"eval", "--data", dir, "--model", model, "--cpuprofile", filepath.Join(dir, "nope", "cpu.prof")}, "--cpuprofile " + filepath.Join(dir, "nope", "cpu.prof") + ": its directory does not exist"},
		{"flag after an argument", []string{"train", "mnist", "--epochs", "2"}, `kiln train takes only flags, and the ones after it (--epochs …) were not read`},
		{"NaN val split", []string{"train", "--data", dir, "--model", spec, "--out", filepath.Join(dir, "nan.kiln"), "--val-split", "NaN"}, "--val-split must be in [0, 1), got NaN"},
		{"momentum with adam", []string{"train", "--data", dir, "--model", spec, "--out", filepath.Join(dir, "adam.kiln"), "--momentum", "0.5"}, "--momentum only applies to --optimizer sgd (this run uses adam)"},
		{"predict's --model after the image", []string{"predict", textImage, "--model", model}, `"--model" after the images: flags go before them`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := kiln(t, tc.args...)
			assert.Equal(t, 1, code, errOut)
			assert.Contains(t, errOut, tc.want)
			assert.NotContains(t, errOut, "panic")
			assert.NotContains(t, errOut, "goroutine ")
		})
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		code, out, _ := kiln(t, arg)
		assert.Equal(t, 0, code)
		assert.Regexp(t, `^kiln \d+\.\d+\.\d+\n$`, out)
	}
}

func TestDevicesListsEveryBackend(t *testing.T) {
	code, out, _ := kiln(t, "devices")
	require.Equal(t, 0, code)
	for _, name := range []string{"cpu", "opencl", "cuda"} {
		assert.Contains(t, out, name)
	}
	assert.Contains(t, out, "--backend auto would choose")
	assert.Regexp(t, `\((avx512|avx2|generic) kernels\)`, out, "the cpu device names its kernels")
}

// TestEvalDefaultsToTheModelsDataset: without --data, eval uses the
// built-in dataset the model was trained on and says so; --data wins.
func TestEvalDefaultsToTheModelsDataset(t *testing.T) {
	for _, tc := range []struct{ recorded, want string }{
		{"mnist/train", "mnist"}, {"fashion-mnist/train", "fashion-mnist"}, {"cifar10/train[train-split]", "cifar10"},
		{"digits/train", ""}, {"./mnist/train", ""}, {"synthetic-8x28x28x1-c4", ""}, {"", ""},
	} {
		assert.Equal(t, tc.want, data.Builtin(tc.recorded), tc.recorded)
	}

	dir := t.TempDir()
	be := cpu.New()
	defer be.Close()
	spec, err := engine.ParseSpec([]byte(smallSpecJSON))
	require.NoError(t, err)
	m, err := engine.New(be, spec, 1)
	require.NoError(t, err)
	path := filepath.Join(dir, "m.kiln")
	require.NoError(t, m.Save(path, engine.ModelMeta{Dataset: "cifar10/train", Scale: 1.0 / 255}))
	m.Close()
	// a CIFAR-10 model evaluated with no --data goes to cifar10, which
	// needs --data-dir: the error proves the choice
	code, _, errOut := kiln(t, "eval", "--model", path, "--backend", "cpu")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "data: cifar10, the model's training set (--data overrides)")
	assert.Contains(t, errOut, "--data-dir")
	// --data wins
	writeIDXDataset(t, dir, 8, 8)
	code, out, errOut := kiln(t, "eval", "--model", path, "--data", dir, "--backend", "cpu")
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, errOut, "the model's training set")
	assert.Contains(t, out, "test accuracy")
}

// TestUnnamedSpecTakesFileName: a spec without "name" is named after its
// file in the output and the report.
func TestUnnamedSpecTakesFileName(t *testing.T) {
	dir := t.TempDir()
	writeIDXDataset(t, dir, 16, 8)
	spec := filepath.Join(dir, "digits.json")
	require.NoError(t, os.WriteFile(spec, []byte(strings.Replace(smallSpecJSON, `"name":"tiny",`, ``, 1)), 0o644))
	report := filepath.Join(dir, "r.json")
	code, _, errOut := kiln(t, "train", "--data", dir, "--model", spec, "--epochs", "1", "--batch", "8",
		"--backend", "cpu", "--out", filepath.Join(dir, "m.kiln"), "--report", report)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "model digits:")
	b, err := os.ReadFile(report)
	require.NoError(t, err)
	var r map[string]any
	require.NoError(t, json.Unmarshal(b, &r))
	assert.Equal(t, "digits", r["model"])
}

func TestCPUProfile(t *testing.T) {
	dir, spec := tinyData(t, 16, 8)
	prof := filepath.Join(dir, "train.prof")
	code, _, errOut := kiln(t, "train", "--data", dir, "--model", spec, "--epochs", "1", "--batch", "8",
		"--backend", "cpu", "--out", filepath.Join(dir, "m.kiln"), "--cpuprofile", prof)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "CPU profile written to "+prof)
	raw, err := os.ReadFile(prof)
	require.NoError(t, err)
	// a pprof profile is a gzipped protocol buffer
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	require.NoError(t, err)
	body, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.NotEmpty(t, body)
}

func TestDarkOnLightHint(t *testing.T) {
	assert.True(t, darkOnLightExpected("mnist/train"))
	assert.True(t, darkOnLightExpected("fashion-mnist/train[train-split]"))
	assert.False(t, darkOnLightExpected("cifar10/train"))
	assert.False(t, darkOnLightExpected("digits/train"))
	assert.InDelta(t, 0.5, mean([]float32{0, 1, 0.25, 0.75}), 1e-9)
	assert.Zero(t, mean(nil))
}

func TestUsageListsEnvironmentAndAllBackends(t *testing.T) {
	code, stdout, _ := kiln(t, "--help")
	require.Equal(t, 0, code)
	for _, env := range []string{"KILN_BACKEND", "KILN_DATA_DIR", "KILN_CPU_KERNEL", "KILN_OPENCL_DEVICE", "KILN_CUDA_PLUGIN"} {
		assert.Contains(t, stdout, "  "+env+" ", "usage describes $%s", env)
	}
	assert.NotContains(t, stdout, "compiled-in", "kiln devices lists every known backend, not only compiled-in ones")
	code, stdout, _ = kiln(t, "devices", "--help")
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "compiled into this binary or not")
	assert.NotContains(t, stdout, "Flags:", "kiln devices has no flags, so its usage lists none")
	code, stdout, _ = kiln(t, "eval", "--help")
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "Flags:")
}

// TestAutoSummary: --backend auto's report puts the backends this build
// lacks on one line, and keeps every other attempt's line and reason.
func TestAutoSummary(t *testing.T) {
	rep := backend.Report{Attempts: []backend.Attempt{
		{Name: "cuda", Err: fmt.Errorf("%w: cuda backend %w (build with -tags cuda)", backend.ErrUnavailable, backend.ErrNotCompiled)},
		{Name: "opencl", Err: fmt.Errorf("%w: no OpenCL platform", backend.ErrUnavailable)},
		{Name: "cpu", Reason: "first usable in order cuda, opencl, cpu"},
	}}
	assert.Equal(t, "backend cuda: not in this build (kiln devices says how to add it)\n"+
		"backend opencl: skipped: backend unavailable: no OpenCL platform\n"+
		"backend cpu: chosen (first usable in order cuda, opencl, cpu)", autoSummary(rep))
}

// TestDataNotes: a --limit past the training set and an evaluation on
// another built-in dataset than the model's are run, with a note each.
func TestDataNotes(t *testing.T) {
	dir, spec := tinyData(t, 40, 20)
	out := filepath.Join(t.TempDir(), "m.kiln")
	code, _, errOut := kiln(t, "train", "--data", "mnist", "--data-dir", dir, "--model", spec, "--batch", "8",
		"--backend", "cpu", "--limit", "1000", "--out", out)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "note: --limit 1000 is more than the 40 training images of mnist")
	code, _, errOut = kiln(t, "eval", "--model", out, "--data", "fashion-mnist", "--data-dir", dir, "--backend", "cpu")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "note: the model was trained on mnist; evaluating it on fashion-mnist as --data asks")
	code, _, errOut = kiln(t, "eval", "--model", out, "--data", "mnist", "--data-dir", dir, "--backend", "cpu")
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, errOut, "note: the model was trained on")
}
