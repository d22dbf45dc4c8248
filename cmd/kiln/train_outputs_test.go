package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/engine"
	"github.com/kiln-ml/kiln/engine/data"
)

// TestTrainOutputsSpareTheCheckpoint: an output (--out, --report,
// --cpuprofile) that names the checkpoint file of --checkpoint-dir, by any
// spelling or through a link, existing yet or not, is refused before any
// training, and an existing checkpoint is left as it was. Such a run
// replaced the checkpoint by the model or the report, after which --resume
// failed, and at the end of a --resume run it destroyed a long run's
// checkpoint.
func TestTrainOutputsSpareTheCheckpoint(t *testing.T) {
	dir, spec := tinyData(t, 16, 8)
	base := []string{"train", "--data", dir, "--model", spec, "--batch", "8", "--backend", "cpu"}
	work := t.TempDir()
	ck := filepath.Join(work, "ck")
	ckFile := filepath.Join(ck, engine.CheckpointName)
	out := filepath.Join(work, "m.kiln")
	code, _, errOut := kiln(t, append(base, "--checkpoint-dir", ck, "--out", out)...)
	require.Equal(t, 0, code, errOut)
	before := mustRead(t, ckFile)
	link := filepath.Join(work, "link")
	require.NoError(t, os.Symlink(ck, link))

	fresh := filepath.Join(work, "fresh") // a checkpoint directory not made yet
	real := filepath.Join(work, "real")   // and one reached through a link, still empty
	require.NoError(t, os.Mkdir(real, 0o755))
	realLink := filepath.Join(work, "real-link")
	require.NoError(t, os.Symlink(real, realLink))

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"out, resumed run", []string{"--checkpoint-dir", ck, "--resume", "--epochs", "2", "--out", ckFile},
			"--out " + ckFile + " is the checkpoint file of --checkpoint-dir " + ck + ": writing it would destroy the checkpoint, and --resume could not continue the run (give another name)"},
		{"report, resumed run", []string{"--checkpoint-dir", ck, "--resume", "--epochs", "2", "--out", filepath.Join(work, "m2.kiln"), "--report", ckFile},
			"--report " + ckFile + " is the checkpoint file of --checkpoint-dir " + ck},
		{"profile", []string{"--checkpoint-dir", ck, "--resume", "--epochs", "2", "--out", filepath.Join(work, "m2.kiln"), "--cpuprofile", ckFile},
			"--cpuprofile " + ckFile + " is the checkpoint file"},
		{"out through a link", []string{"--checkpoint-dir", link, "--resume", "--epochs", "2", "--out", ckFile},
			"--out " + ckFile + " is the checkpoint file of --checkpoint-dir " + link},
		{"out by another spelling", []string{"--checkpoint-dir", ck, "--resume", "--epochs", "2", "--out", filepath.Join(ck, "..", "ck", ".", engine.CheckpointName)},
			"is the checkpoint file of --checkpoint-dir " + ck},
		{"new checkpoint directory", []string{"--checkpoint-dir", fresh, "--out", filepath.Join(fresh, engine.CheckpointName)},
			"is the checkpoint file of --checkpoint-dir " + fresh},
		{"checkpoint not written yet, through a link", []string{"--checkpoint-dir", realLink, "--out", filepath.Join(real, engine.CheckpointName)},
			"--out " + filepath.Join(real, engine.CheckpointName) + " is the checkpoint file of --checkpoint-dir " + realLink},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, errOut := kiln(t, append(base, tc.args...)...)
			assert.Equal(t, 1, code, errOut)
			assert.Contains(t, errOut, tc.want)
			assert.NotContains(t, errOut, "epoch 1/", "refused before any training")
			assert.Empty(t, stdout)
			assert.Equal(t, before, mustRead(t, ckFile), "the checkpoint is kept")
			assert.NoFileExists(t, filepath.Join(real, engine.CheckpointName))
			assert.NoDirExists(t, fresh)
		})
	}

	// a spec (an input) that is the checkpoint file, which every epoch overwrites
	specCk := filepath.Join(t.TempDir(), "ck")
	require.NoError(t, os.Mkdir(specCk, 0o755))
	specFile := filepath.Join(specCk, engine.CheckpointName)
	require.NoError(t, os.WriteFile(specFile, []byte(smallSpecJSON), 0o644))
	code, _, errOut = kiln(t, "train", "--data", dir, "--model", specFile, "--backend", "cpu", "--out", out, "--checkpoint-dir", specCk)
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, "--model "+specFile+" is the checkpoint file of --checkpoint-dir "+specCk+", which every epoch overwrites")
	assert.Equal(t, smallSpecJSON, string(mustRead(t, specFile)))

	// the checkpoint resumes: nothing above touched it
	code, _, errOut = kiln(t, append(base, "--checkpoint-dir", ck, "--resume", "--epochs", "2", "--out", out)...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "1 of 2 epochs done")
}

// TestTrainOutIsNoDirectory: an output naming the --checkpoint-dir
// directory (made by the run, so perhaps not there yet) or any existing
// directory is refused before any training, naming the clash. The run
// trained to the end, then failed to save ("rename …: file exists"),
// losing the model.
func TestTrainOutIsNoDirectory(t *testing.T) {
	dir, spec := tinyData(t, 16, 8)
	base := []string{"train", "--data", dir, "--model", spec, "--batch", "8", "--backend", "cpu"}
	work := t.TempDir()
	run := filepath.Join(work, "run")
	existing := t.TempDir()

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"out is the new checkpoint directory", []string{"--checkpoint-dir", run, "--out", run},
			"--out " + run + " is also given as --checkpoint-dir, the directory that holds the checkpoint: --out names a file to write (give another name)"},
		{"trailing slash", []string{"--checkpoint-dir", run + "/", "--out", run},
			"--out " + run + " is also given as --checkpoint-dir"},
		{"report is the checkpoint directory", []string{"--checkpoint-dir", run, "--out", filepath.Join(work, "m.kiln"), "--report", run},
			"--report " + run + " is also given as --checkpoint-dir"},
		{"profile is the checkpoint directory", []string{"--checkpoint-dir", run, "--out", filepath.Join(work, "m.kiln"), "--cpuprofile", run},
			"--cpuprofile " + run + " is also given as --checkpoint-dir"},
		{"out is the existing checkpoint directory", []string{"--checkpoint-dir", existing, "--out", existing},
			"--out " + existing + " is also given as --checkpoint-dir"},
		{"out is a directory", []string{"--out", existing},
			"--out: cannot save " + existing + ": it is a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, errOut := kiln(t, append(base, tc.args...)...)
			assert.Equal(t, 1, code, errOut)
			assert.Contains(t, errOut, tc.want)
			assert.NotContains(t, errOut, "epoch 1/", "refused before any training")
			assert.Empty(t, stdout)
			assert.NoDirExists(t, run, "not even the checkpoint directory was made")
			entries, err := os.ReadDir(existing)
			require.NoError(t, err)
			assert.Empty(t, entries)
		})
	}
}

// TestSameFileNotWrittenYet: sameFile (which checkOutputs uses) takes two
// paths that do not exist yet for one file when they name it in one
// directory by two spellings or through a link, and not otherwise.
func TestSameFileNotWrittenYet(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(sub, link))
	assert.True(t, sameFile(filepath.Join(sub, "m.kiln"), filepath.Join(link, "m.kiln")))
	assert.True(t, sameFile(filepath.Join(sub, "m.kiln"), filepath.Join(dir, ".", "sub", "m.kiln")))
	assert.False(t, sameFile(filepath.Join(sub, "m.kiln"), filepath.Join(link, "n.kiln")))
	assert.False(t, sameFile(filepath.Join(sub, "m.kiln"), filepath.Join(dir, "m.kiln")))
	assert.False(t, sameFile(filepath.Join(dir, "nope", "m.kiln"), filepath.Join(dir, "nada", "m.kiln")), "missing directories are not one")
}

// TestResumeWithRenamedSpec: a run resumes with the same model described
// by a spec file of another name (an unnamed spec is named after its
// file) that spells out a default (conv2d padding "valid"); another model
// is refused naming the layer and the field that differ.
func TestResumeWithRenamedSpec(t *testing.T) {
	dir, _ := tinyData(t, 32, 8)
	unnamed := strings.Replace(smallSpecJSON, `"name":"tiny",`, ``, 1)
	first := filepath.Join(dir, "first.json")
	require.NoError(t, os.WriteFile(first, []byte(unnamed), 0o644))
	second := filepath.Join(dir, "second.json")
	require.NoError(t, os.WriteFile(second, []byte(strings.Replace(unnamed, `"strides":[2,2],`, `"strides":[2,2],"padding":"valid",`, 1)), 0o644))
	other := filepath.Join(dir, "other.json")
	require.NoError(t, os.WriteFile(other, []byte(strings.Replace(unnamed, `"filters":4`, `"filters":5`, 1)), 0o644))
	ck := filepath.Join(t.TempDir(), "ck")
	base := []string{"train", "--data", dir, "--batch", "8", "--backend", "cpu", "--checkpoint-dir", ck, "--out", filepath.Join(t.TempDir(), "m.kiln")}
	code, _, errOut := kiln(t, append(base, "--model", first)...)
	require.Equal(t, 0, code, errOut)

	code, _, errOut = kiln(t, append(base, "--model", other, "--resume", "--epochs", "2")...)
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, `holds a different model: layer 0 (conv2d "conv2d_0"): filters 4 there, 5 here (resume with the model spec it was trained with`)

	code, _, errOut = kiln(t, append(base, "--model", second, "--resume", "--epochs", "2")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "model second:")
	assert.Contains(t, errOut, "1 of 2 epochs done")
}

// TestValSplitOnTooFewImages: --val-split on a training set of one image
// (data.Split keeps one to train on) says that no fraction can hold one
// out, rather than naming one that would; on more images it names a
// fraction that does hold one out.
func TestValSplitOnTooFewImages(t *testing.T) {
	dir, spec := tinyData(t, 7, 8)
	one := t.TempDir()
	writeIDXDataset(t, one, 1, 8)
	base := []string{"train", "--model", spec, "--batch", "8", "--backend", "cpu", "--out", filepath.Join(t.TempDir(), "m.kiln")}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"--limit 1", []string{"--data", dir, "--limit", "1", "--val-split", "0.5"},
			"--val-split 0.5: the training set has 1 image (--limit 1); a validation split needs at least 2, one to train on and one to hold out (raise --limit or leave out --val-split)"},
		{"one image", []string{"--data", one, "--val-split", "0.9"},
			"--val-split 0.9: the training set has 1 image; a validation split needs at least 2, one to train on and one to hold out (leave out --val-split)"},
		{"seven images", []string{"--data", dir, "--val-split", "0.071"}, // 0.5/7 = 0.0714…
			"--val-split 0.071 of 7 training images holds out no image (at least 0.072 would hold out one)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := kiln(t, append(base, tc.args...)...)
			assert.Equal(t, 1, code, errOut)
			assert.Contains(t, errOut, tc.want)
			assert.NotContains(t, errOut, "epoch 1/")
		})
	}
	code, _, errOut := kiln(t, append(base, "--data", dir, "--val-split", "0.072")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "6 training, 1 validation")
}

// TestMinValSplit: the fraction the error names holds out an image as
// data.Split counts them, for every training set size, and is at most a
// tenth above the exact bound (two significant digits).
func TestMinValSplit(t *testing.T) {
	sizes := []int{2, 3, 7, 9, 11, 13, 19, 49, 60000, 1 << 20}
	for n := 2; n <= 300; n++ {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		s := minValSplit(n)
		f, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err, s)
		assert.LessOrEqual(t, f, 0.5/float64(n)*1.1, "n=%d: %s", n, s)
		if n > 300 { // as data.Split rounds
			assert.GreaterOrEqual(t, int(f*float64(n)+0.5), 1, "n=%d: %s", n, s)
			continue
		}
		ds := data.Synthetic(n, 1, 1, 1, 2, 1)
		_, val, err := ds.Split(f, 1)
		require.NoError(t, err)
		assert.Equal(t, 1, val.N, fmt.Sprintf("n=%d: --val-split %s holds out one image", n, s))
	}
}
