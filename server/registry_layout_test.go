package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRepoVersionsWithoutModelFile: a version directory without model.kiln
// (a model file under another name, or none) and a model directory without
// versions were skipped silently. They are reported once, naming the path
// and the layout: at once when the first scan finds them or when the
// directory holds another *.kiln file; a directory that appears later with
// no model file yet (a deployment still copying it) only when the next
// scan finds it so too. None is reported on every scan.
func TestRepoVersionsWithoutModelFile(t *testing.T) {
	layout := func(repo string) string { return filepath.Join(repo, "<name>", "<version>", ModelFileName) }
	tests := []struct {
		name string
		// atStart: present at the first scan; otherwise created after it
		atStart bool
		rel     string // the skipped entry, relative to the repository
		setup   func(t *testing.T, dir string)
		// reported after each of the scans that follow setup (1: the
		// scan right after it, 2: the next)
		wantAfter1, wantAfter2 bool
		why                    func(repo string) string
	}{
		{"misnamed file at start", true, "b/1", writeAs("Model.kiln"), true, true,
			func(repo string) string {
				return "no model.kiln, but Model.kiln; the layout is " + layout(repo) + " (rename the file to model.kiln)"
			}},
		{"other kiln file at start", true, "d/1", writeAs("mnist.kiln"), true, true,
			func(string) string { return "no model.kiln, but mnist.kiln;" }},
		{"model directory without versions at start", true, "c", func(*testing.T, string) {}, true, true,
			func(repo string) string { return "no version directory in it; the layout is " + layout(repo) }},
		{"empty version at start", true, "e/1", func(*testing.T, string) {}, true, true,
			func(repo string) string {
				return "no model.kiln in it (yet); the layout is " + layout(repo) + " (it is loaded once the file is there)"
			}},
		{"other file only at start", true, "f/2", writeAs("notes.txt"), true, true,
			func(string) string { return "no model.kiln in it (yet)" }},
		{"model file is a directory", true, "g/1", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(filepath.Join(dir, ModelFileName), 0o755))
		}, true, true, func(string) string { return "its model.kiln is not a regular file" }},
		{"misnamed file later", false, "h/1", writeAs("model.KILN"), true, true,
			func(string) string { return "no model.kiln, but model.KILN;" }},
		{"empty version later", false, "i/1", func(*testing.T, string) {}, false, true,
			func(string) string { return "no model.kiln in it (yet)" }},
		{"model directory without versions later", false, "j", func(*testing.T, string) {}, false, true,
			func(string) string { return "no version directory in it" }},
		{"version being written later", false, "k/3", writeAs(".model.kiln.tmp-123"), false, true,
			func(string) string { return "no model.kiln in it (yet)" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := t.TempDir()
			writeModel(t, versionPath(repo, "tiny", 1), 1)
			dir := filepath.Join(repo, tc.rel)
			create := func() {
				require.NoError(t, os.MkdirAll(dir, 0o755))
				tc.setup(t, dir)
			}
			if tc.atStart {
				create()
			}
			var logBuf syncBuffer
			ts := startServer(t, Config{MaxBatch: 4, Log: &logBuf}, func(s *Server) error { return s.LoadRepo(repo) })
			prefix := "model repository: skipping " + dir + ": "
			count := func() int { return strings.Count(logBuf.String(), prefix) }
			if !tc.atStart {
				assert.Zero(t, count())
				create()
				require.NoError(t, ts.s.Poll())
			}
			assert.Equal(t, tc.wantAfter1, count() == 1, "after the scan that found it; log:\n%s", logBuf.String())
			require.NoError(t, ts.s.Poll())
			assert.Equal(t, tc.wantAfter2, count() == 1, "after the next scan; log:\n%s", logBuf.String())
			for range 3 {
				require.NoError(t, ts.s.Poll())
			}
			require.Equal(t, 1, count(), "reported once, not on every scan; log:\n%s", logBuf.String())
			line := logLine(t, logBuf.String(), prefix)
			assert.Contains(t, line, tc.why(repo))
			assert.Equal(t, "1", servedVersion(t, ts), "the model that fits serves")
		})
	}
}

// TestRepoVersionCompletedIsLoaded: a version directory reported for
// lacking its model file is loaded once the file is there, and reported
// again if it loses it; a misnamed file renamed to model.kiln is served.
func TestRepoVersionCompletedIsLoaded(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, versionPath(repo, "tiny", 1), 1)
	v2 := filepath.Join(repo, "tiny", "2")
	writeModel(t, filepath.Join(v2, "Model.kiln"), 2)
	var logBuf syncBuffer
	ts := startServer(t, Config{MaxBatch: 4, Log: &logBuf}, func(s *Server) error { return s.LoadRepo(repo) })
	prefix := "model repository: skipping " + v2 + ": "
	assert.Contains(t, logLine(t, logBuf.String(), prefix), "no model.kiln, but Model.kiln")
	assert.Equal(t, "1", servedVersion(t, ts))

	require.NoError(t, os.Rename(filepath.Join(v2, "Model.kiln"), filepath.Join(v2, ModelFileName)))
	require.NoError(t, ts.s.Poll())
	assert.Equal(t, "2", servedVersion(t, ts))
	assert.Equal(t, 1, strings.Count(logBuf.String(), prefix))

	// It loses its file again: the change of reason is reported.
	require.NoError(t, os.Rename(filepath.Join(v2, ModelFileName), filepath.Join(v2, "old.kiln")))
	require.NoError(t, ts.s.Poll())
	require.NoError(t, ts.s.Poll())
	assert.Equal(t, 2, strings.Count(logBuf.String(), prefix), "log:\n%s", logBuf.String())
	assert.Contains(t, logBuf.String(), prefix+"no model.kiln, but old.kiln")
}

// writeAs returns a setup that creates dir and writes a small file named
// name in it.
func writeAs(name string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644))
	}
}
