package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/engine"
)

// fileSizeLimiter passes stderr through and, once a line holding trigger
// goes by, caps the size of the files this process may write (the soft
// RLIMIT_FSIZE) to limit bytes: every later write past it fails with
// EFBIG, as a full disk fails a write (Go ignores SIGXFSZ). Progress lines
// are written before the epoch's checkpoint, so the cap lands between
// an epoch's end and its checkpoint.
type fileSizeLimiter struct {
	w       io.Writer
	trigger []byte
	limit   uint64
	done    bool
}

func (l *fileSizeLimiter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if !l.done && bytes.Contains(p, l.trigger) {
		l.done = true
		var lim syscall.Rlimit
		if e := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); e == nil {
			lim.Cur = l.limit
			_ = syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim)
		}
	}
	return n, err
}

// TestCheckpointWriteFailureSaysWhatIsKept runs kiln train as a child
// process (this test binary) whose file writes start failing after an
// epoch, before its checkpoint: the run ends (exit 1) saying which
// checkpoint failed and why, what the checkpoint directory still holds
// (the epoch before, read from the file) and that --resume continues it,
// or that nothing of the run is saved; the --resume it advises then
// continues the run. It ended with the write error alone.
func TestCheckpointWriteFailureSaysWhatIsKept(t *testing.T) {
	if os.Getenv("KILN_TEST_FSIZE_AS_KILN") == "1" {
		stderr := &fileSizeLimiter{w: os.Stderr, trigger: []byte(os.Getenv("KILN_TEST_FSIZE_AFTER")), limit: 512}
		os.Exit(run(strings.Split(os.Getenv("KILN_TEST_ARGS"), "\n"), os.Stdout, stderr))
	}
	dir, spec := tinyData(t, 48, 8)
	kilnChild := func(t *testing.T, after string, args ...string) (int, string) {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestCheckpointWriteFailureSaysWhatIsKept$")
		cmd.Env = append(os.Environ(), "KILN_TEST_FSIZE_AS_KILN=1", "KILN_TEST_FSIZE_AFTER="+after, "KILN_TEST_ARGS="+strings.Join(args, "\n"))
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), errb.String()
		}
		require.NoError(t, err, errb.String())
		return 0, errb.String()
	}

	for _, tc := range []struct {
		name, after string
		want        []string
		resumeFrom  int // the epoch the checkpoint holds afterwards; 0: none
	}{
		{"second epoch", "epoch 2/3 done", []string{
			"write the checkpoint of epoch 2: modelfile: write ",
			"file too large: the checkpoint in CK holds epoch 1 and nothing was saved to --out OUT; to continue, fix the cause (is the disk full?), then run the same command with --resume",
		}, 1},
		{"first epoch", "epoch 1/3 done", []string{
			"write the checkpoint of epoch 1: modelfile: write ",
			"file too large: no epoch's checkpoint was written, so CK holds no checkpoint of this run and nothing was saved to --out OUT; fix the cause (is the disk full?) and run the command again",
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			ck, out := filepath.Join(work, "ck"), filepath.Join(work, "m.kiln")
			args := []string{"train", "--data", dir, "--model", spec, "--batch", "8", "--epochs", "3", "--backend", "cpu", "--checkpoint-dir", ck, "--out", out}
			code, errOut := kilnChild(t, tc.after, args...)
			assert.Equal(t, 1, code, errOut)
			for _, w := range tc.want {
				assert.Contains(t, errOut, strings.NewReplacer("CK", ck, "OUT", out).Replace(w))
			}
			assert.NoFileExists(t, out)
			ckFile := filepath.Join(ck, engine.CheckpointName)
			if tc.resumeFrom == 0 {
				assert.NoFileExists(t, ckFile)
				return
			}
			epoch, _, err := readCheckpoint(ckFile)
			require.NoError(t, err)
			assert.Equal(t, tc.resumeFrom, epoch)
			code, _, errOut = kiln(t, append(args, "--resume")...)
			require.Equal(t, 0, code, errOut)
			assert.Contains(t, errOut, "resuming from "+ckFile+": 1 of 3 epochs done")
			assert.FileExists(t, out)
		})
	}
}

// TestCheckpointFailureUnreadable: when the checkpoint file that should
// be kept cannot be read either, the error says so rather than promising
// a --resume.
func TestCheckpointFailureUnreadable(t *testing.T) {
	ck := filepath.Join(t.TempDir(), engine.CheckpointName)
	require.NoError(t, os.WriteFile(ck, []byte("garbage"), 0o644))
	cause := &engine.CheckpointError{Epoch: 3, Path: ck, Err: syscall.ENOSPC}
	err := checkpointFailure(cause, ck, "m.kiln")
	require.ErrorIs(t, err, syscall.ENOSPC)
	assert.Contains(t, err.Error(), "write the checkpoint of epoch 3: no space left on device: the checkpoint file there is unreadable: ")
	assert.Contains(t, err.Error(), "and nothing was saved to --out m.kiln")
	assert.NotContains(t, err.Error(), "--resume")
}
