package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestResumeOfAnotherRun: --resume continues only the run that wrote the
// checkpoint; another --limit, optimizer or dataset is named, not trained on.
func TestResumeOfAnotherRun(t *testing.T) {
	dir := t.TempDir()
	writeIDXDataset(t, dir, 64, 16)
	other := t.TempDir()
	writeIDXDataset(t, other, 48, 16)
	spec := filepath.Join(dir, "spec.json")
	require.NoError(t, os.WriteFile(spec, []byte(smallSpecJSON), 0o644))
	ck := filepath.Join(dir, "ck")
	base := []string{"train", "--model", spec, "--batch", "16", "--backend", "cpu", "--checkpoint-dir", ck, "--out", filepath.Join(dir, "m.kiln")}
	code, _, errOut := kiln(t, append(base, "--data", dir, "--epochs", "1")...)
	require.Equal(t, 0, code, errOut)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"limit", []string{"--data", dir, "--limit", "32"}, "(64 images) there"},
		{"optimizer", []string{"--data", dir, "--optimizer", "sgd"}, "optimizer adam there, sgd here"},
		{"dataset", []string{"--data", other}, "(48 images) here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := kiln(t, append(append(base, "--resume", "--epochs", "2"), tc.args...)...)
			assert.Equal(t, 1, code, errOut)
			assert.Contains(t, errOut, "was written by a different run")
			assert.Contains(t, errOut, tc.want)
		})
	}
	code, _, errOut = kiln(t, append(base, "--data", dir, "--resume", "--epochs", "2")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "1 of 2 epochs done")
}

func TestCheckpointDirCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	code, _, errOut := kiln(t, "train", "--data", filepath.Join(dir, "no-such-data"), "--checkpoint-dir", filepath.Join(file, "ck"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "--checkpoint-dir: mkdir "+file+": not a directory")
	assert.NotContains(t, errOut, "no-such-data", "refused before the data is read")
}

// TestInterruptedTraining runs kiln train as a child process (this test
// binary, which acts as kiln when KILN_TEST_AS_KILN is set), sends it
// SIGINT once its first epoch is under way, and checks that it stops, says
// what it kept and exits 130.
func TestInterruptedTraining(t *testing.T) {
	if os.Getenv("KILN_TEST_AS_KILN") == "1" {
		os.Exit(run(strings.Fields(os.Getenv("KILN_TEST_ARGS")), os.Stdout, os.Stderr))
	}
	dir := t.TempDir()
	writeIDXDataset(t, dir, 4000, 16)
	args := "train --data " + dir + " --batch 8 --epochs 50 --backend cpu --checkpoint-dir " + filepath.Join(dir, "ck") +
		" --out " + filepath.Join(dir, "m.kiln")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestInterruptedTraining$")
	cmd.Env = append(os.Environ(), "KILN_TEST_AS_KILN=1", "KILN_TEST_ARGS="+args)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	signalled := false
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if !signalled && strings.Contains(sc.Text(), "epoch 2/50") {
			require.NoError(t, cmd.Process.Signal(os.Interrupt))
			signalled = true
		}
	}
	err = cmd.Wait()
	require.True(t, signalled, "training never reached epoch 2:\n%s", log.String())
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, log.String())
	assert.Equal(t, 130, ee.ExitCode(), log.String())
	// the signal lands in epoch 2 unless the host stalls for a whole epoch
	assert.Regexp(t, `training interrupted during epoch \d+, after \d+ of 500 steps: the checkpoint in \S+ holds epoch \d+; to continue, run the same command with --resume`, log.String())
	_, err = os.Stat(filepath.Join(dir, "m.kiln"))
	assert.True(t, os.IsNotExist(err), "no model is saved from an interrupted run")
}

// TestAugmentOnGrayscaleWarns: --augment (flips and shifts, for CIFAR-10's
// photos) on grayscale images trains, with a warning that it usually costs
// accuracy there.
func TestAugmentOnGrayscaleWarns(t *testing.T) {
	dir, spec := tinyData(t, 16, 8)
	out := filepath.Join(t.TempDir(), "m.kiln")
	code, _, errOut := kiln(t, "train", "--data", dir, "--model", spec, "--batch", "8", "--backend", "cpu", "--augment", "--out", out)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "warning: --augment flips images left to right")
	code, _, errOut = kiln(t, "train", "--data", dir, "--model", spec, "--batch", "8", "--backend", "cpu", "--out", out)
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, errOut, "--augment")
}

// TestCatchInterrupt: the first SIGINT while caught closes the channel
// (an evaluation then stops between batches and says what it left),
// instead of killing kiln.
func TestCatchInterrupt(t *testing.T) {
	stop, release := catchInterrupt()
	defer release()
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
	select {
	case <-stop:
	case <-time.After(10 * time.Second):
		t.Fatal("SIGINT did not close the channel")
	}
	release() // twice is fine
}
