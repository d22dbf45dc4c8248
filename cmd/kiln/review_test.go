package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend/cpu"
	"github.com/kiln-ml/kiln/engine"
	"github.com/kiln-ml/kiln/engine/data"
	kern "github.com/kiln-ml/kiln/kernels/cpu"
)

// writeIDXTest replaces the test split of the IDX dataset in dir by n
// images of h×w.
func writeIDXTest(t *testing.T, dir string, n, h, w int) {
	t.Helper()
	write := func(name string, dims []int, payload []byte) {
		f, err := os.Create(filepath.Join(dir, name))
		require.NoError(t, err)
		require.NoError(t, data.WriteIDX(f, dims, payload))
		require.NoError(t, f.Close())
	}
	write("t10k-images-idx3-ubyte", []int{n, h, w}, make([]byte, n*h*w))
	write("t10k-labels-idx1-ubyte", []int{n}, make([]byte, n))
}

// writeCIFARDir writes the six CIFAR-10 binary batches, n records each,
// into a new directory named name under a temporary directory.
func writeCIFARDir(t *testing.T, name string, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.Mkdir(dir, 0o755))
	rec := make([]byte, n*data.CIFARRecordSize)
	for i := range n {
		rec[i*data.CIFARRecordSize] = byte(i % 10)
		for p := 1; p < data.CIFARRecordSize; p++ {
			rec[i*data.CIFARRecordSize+p] = byte(i * p)
		}
	}
	for _, f := range append([]string{data.CIFAR10TestFile}, data.CIFAR10TrainFiles...) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), rec, 0o644))
	}
	return dir
}

// TestTrainRefusesUnusableInputsFirst: inputs that cannot work are refused
// before any epoch runs, with the problem named: a test split of another
// image size than the training set (it was found only after the last
// epoch, and the run then ended without saving the model), a spec field
// that does not apply to its layer, and --data-dir with a directory.
func TestTrainRefusesUnusableInputsFirst(t *testing.T) {
	dir, spec := tinyData(t, 32, 8)
	otherTest := t.TempDir()
	writeIDXDataset(t, otherTest, 32, 8)
	writeIDXTest(t, otherTest, 8, 14, 14)
	poolReLU := filepath.Join(t.TempDir(), "pool-relu.json")
	require.NoError(t, os.WriteFile(poolReLU, []byte(strings.Replace(smallSpecJSON, `{"type":"maxpool2d","pool":[2,2]}`, `{"type":"maxpool2d","pool":[2,2],"activation":"relu"}`, 1)), 0o644))
	noRate := filepath.Join(t.TempDir(), "no-rate.json")
	require.NoError(t, os.WriteFile(noRate, []byte(strings.Replace(smallSpecJSON, `{"type":"flatten"},`, `{"type":"flatten"},{"type":"dropout"},`, 1)), 0o644))
	dataDir := t.TempDir()

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"test images of another size", []string{"--data", otherTest, "--model", spec},
			[]string{"test set " + filepath.Base(otherTest) + "/test has 14x14x1 images, but the training set " + filepath.Base(otherTest) + "/train and the model have 28x28x1"}},
		{"test images of another size, reference model", []string{"--data", otherTest},
			[]string{"has 14x14x1 images, but the training set"}},
		{"maxpool with an activation", []string{"--data", dir, "--model", poolReLU},
			[]string{poolReLU, `layer 1 (maxpool2d "maxpool2d_1"): "activation" does not apply to maxpool2d`}},
		{"dropout without a rate", []string{"--data", dir, "--model", noRate},
			[]string{`layer 3 (dropout "dropout_3"): "rate" is required`}},
		{"data dir with a directory", []string{"--data", dir, "--data-dir", dataDir},
			[]string{"--data-dir " + dataDir + " applies only to the built-in datasets (mnist, fashion-mnist and cifar10), and dataset " + dir + " is a directory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m.kiln")
			code, _, errOut := kiln(t, append([]string{"train", "--backend", "cpu", "--batch", "8", "--out", out}, tc.args...)...)
			assert.Equal(t, 1, code, errOut)
			for _, w := range tc.want {
				assert.Contains(t, errOut, w)
			}
			assert.NotContains(t, errOut, "epoch 1/", "refused before training")
			assert.NotContains(t, errOut, "unknown dataset")
			_, err := os.Stat(out)
			assert.ErrorIs(t, err, os.ErrNotExist)
		})
	}
}

// TestCheckTestSet covers what the command line cannot reach: an empty
// test split and one with more classes than the model outputs.
func TestCheckTestSet(t *testing.T) {
	ds := func(name string, n, h, w, c, classes int) *data.Dataset {
		return &data.Dataset{Name: name, N: n, H: h, W: w, C: c, Classes: classes}
	}
	train := ds("x/train", 10, 28, 28, 1, 10)
	spec := engine.ReferenceSpec(28, 28, 1, 10)
	tests := []struct {
		name string
		test *data.Dataset
		want string // "" for none
	}{
		{"fits", ds("x/test", 5, 28, 28, 1, 10), ""},
		{"fewer classes", ds("x/test", 5, 28, 28, 1, 4), ""},
		{"other height", ds("x/test", 5, 27, 28, 1, 10), "test set x/test has 27x28x1 images, but the training set x/train and the model have 28x28x1"},
		{"other channels", ds("x/test", 5, 28, 28, 3, 10), "has 28x28x3 images"},
		{"more classes", ds("x/test", 5, 28, 28, 1, 12), "test set x/test has 12 classes, but the model has 10 outputs (the training set x/train has 10 classes)"},
		{"empty", ds("x/test", 0, 28, 28, 1, 10), "test set x/test holds no images"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkTestSet(tc.test, train, spec)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// TestDataLine: the data line gives the test images' own size when it
// differs from the training images' (it gave the training set's).
func TestDataLine(t *testing.T) {
	train := &data.Dataset{Name: "d/train", N: 100, H: 28, W: 28, C: 1}
	tests := []struct {
		name string
		test *data.Dataset
		want string
	}{
		{"same size", &data.Dataset{N: 20, H: 28, W: 28, C: 1}, "data d/train: 100 training, 5 validation, 20 test images of 28x28x1"},
		{"other size", &data.Dataset{N: 20, H: 32, W: 32, C: 3}, "data d/train: 100 training, 5 validation images of 28x28x1; 20 test images of 32x32x3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, dataLine(train, tc.test, 5))
		})
	}
}

// TestSaveAndEvaluate: the trained model is saved before it is evaluated,
// so an evaluation that fails keeps it (without a test accuracy) and says
// so; one that succeeds records the accuracy in the file.
func TestSaveAndEvaluate(t *testing.T) {
	tests := []struct {
		name    string
		evalErr error
		wantErr string
	}{
		{"evaluation succeeds", nil, ""},
		{"evaluation fails", errors.New("device lost"), "evaluate: device lost (the trained model is saved in "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := cpu.New()
			defer b.Close()
			spec, err := engine.ParseSpecStrict([]byte(smallSpecJSON))
			require.NoError(t, err)
			m, err := engine.New(b, spec, 1)
			require.NoError(t, err)
			defer m.Close()
			out := filepath.Join(t.TempDir(), "m.kiln")
			var stdout bytes.Buffer
			evaluated := false
			_, acc, err := saveAndEvaluate(m, out, engine.ModelMeta{Dataset: "d/train", Epochs: 3}, &stdout, func() (float64, float64, error) {
				evaluated = true
				_, statErr := os.Stat(out)
				assert.NoError(t, statErr, "saved before the evaluation")
				return 0.5, 0.75, tc.evalErr
			})
			assert.True(t, evaluated)
			assert.Contains(t, stdout.String(), "saved model to "+out)
			loaded, meta, loadErr := engine.Load(b, out)
			require.NoError(t, loadErr, "the model is saved either way")
			defer loaded.Close()
			assert.Equal(t, 3, meta.Epochs)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr+out+", without a test accuracy")
				assert.Nil(t, meta.TestAccuracy)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 0.75, acc)
			require.NotNil(t, meta.TestAccuracy)
			assert.Equal(t, 0.75, *meta.TestAccuracy)
		})
	}
}

// TestCheckpointDirNotOverwritten: a --checkpoint-dir that holds a
// checkpoint is not written over by a run without --resume (it lost long
// runs): the run is refused before the data loads, saying what the
// checkpoint holds and how to go on, and the checkpoint is kept.
func TestCheckpointDirNotOverwritten(t *testing.T) {
	dir, spec := tinyData(t, 32, 8)
	ck := filepath.Join(t.TempDir(), "ck")
	out := filepath.Join(t.TempDir(), "m.kiln")
	base := []string{"train", "--model", spec, "--batch", "8", "--backend", "cpu", "--out", out, "--checkpoint-dir", ck}
	code, _, errOut := kiln(t, append(base, "--data", dir, "--epochs", "2")...)
	require.Equal(t, 0, code, errOut)
	ckFile := filepath.Join(ck, engine.CheckpointName)
	before, err := os.ReadFile(ckFile)
	require.NoError(t, err)

	corrupt := filepath.Join(t.TempDir(), "corrupt")
	require.NoError(t, os.MkdirAll(corrupt, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(corrupt, engine.CheckpointName), []byte("not a checkpoint"), 0o644))
	model := filepath.Join(t.TempDir(), "model")
	require.NoError(t, os.MkdirAll(model, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(model, engine.CheckpointName), mustRead(t, out), 0o644))

	tests := []struct {
		name, ckDir string
		args        []string
		want        string
	}{
		{"same command", ck, []string{"--data", dir, "--epochs", "2"}, "(2 epochs done on " + filepath.Base(dir) + "/train, written "},
		{"before the data loads", ck, []string{"--data", filepath.Join(dir, "no-such-data")}, "2 epochs done"},
		{"unreadable checkpoint", corrupt, []string{"--data", dir}, "(unreadable: "},
		{"a model file", model, []string{"--data", dir}, `(a "model" file, not a checkpoint, written `},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"train", "--model", spec, "--batch", "8", "--backend", "cpu", "--out", out, "--checkpoint-dir", tc.ckDir}, tc.args...)
			code, _, errOut := kiln(t, args...)
			assert.Equal(t, 1, code, errOut)
			assert.Contains(t, errOut, "--checkpoint-dir "+tc.ckDir+" already holds checkpoint.kiln ")
			assert.Contains(t, errOut, tc.want)
			assert.Contains(t, errOut, "which this run would overwrite: add --resume to continue it, or remove it or choose another --checkpoint-dir")
			assert.NotContains(t, errOut, "no-such-data", "refused before the data is read")
			assert.NotContains(t, errOut, "epoch 1/")
		})
	}
	after, err := os.ReadFile(ckFile)
	require.NoError(t, err)
	assert.Equal(t, before, after, "the checkpoint is kept")

	code, _, errOut = kiln(t, append(base, "--data", dir, "--epochs", "3", "--resume")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "2 of 3 epochs done")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// TestEvalCIFARDirectoryModelNeedsData: a model trained on a directory of
// CIFAR-10 batches records the directory's name, not cifar10's, so eval
// without --data asks for it instead of evaluating on whatever
// $KILN_DATA_DIR/cifar10 holds.
func TestEvalCIFARDirectoryModelNeedsData(t *testing.T) {
	cifarSpec := filepath.Join(t.TempDir(), "c.json")
	require.NoError(t, os.WriteFile(cifarSpec, []byte(`{"input":[32,32,3],"layers":[{"type":"maxpool2d","pool":[4,4]},{"type":"flatten"},{"type":"dense","units":10,"activation":"softmax"}]}`), 0o644))
	decoy := t.TempDir() // what $KILN_DATA_DIR/cifar10 would be
	require.NoError(t, os.Rename(writeCIFARDir(t, "batches", 2), filepath.Join(decoy, "cifar10")))
	t.Setenv(data.DataDirEnv, decoy)
	for _, name := range []string{"photos", "cifar10"} {
		t.Run(name, func(t *testing.T) {
			dir := writeCIFARDir(t, name, 3)
			model := filepath.Join(t.TempDir(), "m.kiln")
			code, _, errOut := kiln(t, "train", "--data", dir, "--model", cifarSpec, "--batch", "4", "--backend", "cpu", "--out", model)
			require.Equal(t, 0, code, errOut)
			recorded := name + "/train"
			if name == "cifar10" {
				recorded = "./" + recorded
			}
			assert.Contains(t, errOut, "data "+recorded+":")
			code, stdout, errOut := kiln(t, "eval", "--model", model, "--backend", "cpu")
			assert.Equal(t, 1, code, errOut)
			assert.Contains(t, errOut, `the model was trained on "`+recorded+`", not a built-in dataset: give --data`)
			assert.NotContains(t, stdout, "test accuracy")
			code, stdout, errOut = kiln(t, "eval", "--model", model, "--backend", "cpu", "--data", dir)
			assert.Equal(t, 0, code, errOut)
			assert.Contains(t, stdout, "(3 images)")
		})
	}
}

// TestCPUKernelEnvWarning: a KILN_CPU_KERNEL the cpu kernels ignore (a
// typo, or a kernel this CPU lacks) is said in one warning line by the
// commands that run on the cpu backend and by devices; a good one is not.
func TestCPUKernelEnvWarning(t *testing.T) {
	dir, spec := tinyData(t, 16, 8)
	lacked := ""
	for _, k := range []string{"avx512", "avx2"} {
		if !strings.Contains(strings.Join(kern.KernelNames(), ","), k) {
			lacked = k
			break
		}
	}
	tests := []struct {
		value string
		want  string // "" for no warning
	}{
		{"", ""},
		{"generic", ""},
		{"bogus", `warning: KILN_CPU_KERNEL="bogus" is not a cpu kernel name (want one of avx512, avx2, generic); it is ignored and the ` + kern.KernelNames()[0] + " kernels run"},
		{"avx-512", `warning: KILN_CPU_KERNEL="avx-512" is not a cpu kernel name`},
	}
	if lacked != "" {
		tests = append(tests, struct{ value, want string }{lacked, `warning: KILN_CPU_KERNEL="` + lacked + `": this CPU cannot run the ` + lacked + " kernels"})
	}
	commands := map[string][]string{
		"devices": {"devices"},
		"train":   {"train", "--data", dir, "--model", spec, "--batch", "8", "--backend", "cpu", "--out", filepath.Join(t.TempDir(), "m.kiln")},
	}
	for _, tc := range tests {
		for cmd, args := range commands {
			t.Run(cmd+"/"+tc.value, func(t *testing.T) {
				t.Setenv(kern.KernelEnv, tc.value)
				code, _, errOut := kiln(t, args...)
				require.Equal(t, 0, code, errOut)
				if tc.want == "" {
					assert.NotContains(t, errOut, "KILN_CPU_KERNEL")
					return
				}
				assert.Contains(t, errOut, tc.want)
				assert.Equal(t, 1, strings.Count(errOut, "KILN_CPU_KERNEL"), "one line:\n%s", errOut)
			})
		}
	}
}
