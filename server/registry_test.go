package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/cpu"
	"github.com/kiln-ml/kiln/engine"
	"github.com/kiln-ml/kiln/engine/modelfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// versionPath is the model file of version num of model name in repo.
func versionPath(repo, name string, num int) string {
	return filepath.Join(repo, name, fmt.Sprint(num), ModelFileName)
}

// corruptModel flips a byte of the tensor data of the model file at path
// (its checksum then fails) and moves its modification time, so that the
// repository sees a changed file of the same size.
func corruptModel(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Greater(t, len(b), 16)
	b[len(b)-10] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o644))
	later := time.Now().Add(2 * time.Second)
	require.NoError(t, os.Chtimes(path, later, later))
}

// logLine returns the one line of log that starts with prefix.
func logLine(t *testing.T, log, prefix string) string {
	t.Helper()
	var found []string
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, prefix) {
			found = append(found, l)
		}
	}
	require.Len(t, found, 1, "lines starting with %q in log:\n%s", prefix, log)
	return found[0]
}

// servedVersion is the model_version an infer request on tiny answers with.
func servedVersion(t *testing.T, ts *testServer) string {
	t.Helper()
	r := ts.do(t, "POST", "/v2/models/tiny/infer", inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 0), ``))
	require.Equal(t, 200, r.code, "body %s", r.body)
	var m struct {
		V string `json:"model_version"`
	}
	require.NoError(t, json.Unmarshal(r.body, &m))
	return m.V
}

// TestReloadLogSaysWhatServes: when a version fails to load, the log line
// names the version that actually serves afterwards (and a swap is logged
// as such), whether the failing file is a new version's or the serving
// version's own.
func TestReloadLogSaysWhatServes(t *testing.T) {
	tests := []struct {
		name string
		// good versions at start; bad ones are corrupt from the start
		// (never tried while a higher good one serves)
		good, bad []int
		before    string // serving at start
		change    func(t *testing.T, repo string)
		after     string            // serving after the change
		logs      map[string]string // failure line prefix -> its whole ending
		swap      string            // the swap line expected, if any
	}{
		{
			name: "serving file corrupt, older version takes over", good: []int{1, 2}, before: "2",
			change: func(t *testing.T, repo string) { corruptModel(t, versionPath(repo, "tiny", 2)) },
			after:  "1",
			logs:   map[string]string{"model tiny version 2: ": "checksum mismatch: file is corrupt; version 1 serves instead"},
			swap:   "version 1 (%s) now serving, replacing version 2",
		},
		{
			name: "serving file corrupt, no other version", good: []int{1}, before: "1",
			change: func(t *testing.T, repo string) { corruptModel(t, versionPath(repo, "tiny", 1)) },
			after:  "1",
			logs:   map[string]string{"model tiny version 1: ": "; version 1 keeps serving the copy loaded before its file changed"},
		},
		{
			name: "serving file corrupt, older version broken too", good: []int{2}, bad: []int{1}, before: "2",
			change: func(t *testing.T, repo string) { corruptModel(t, versionPath(repo, "tiny", 2)) },
			after:  "2",
			logs: map[string]string{
				"model tiny version 2: ": "; version 2 keeps serving the copy loaded before its file changed",
				"model tiny version 1: ": "; version 2 keeps serving the copy loaded before its file changed",
			},
		},
		{
			name: "new version broken", good: []int{1}, before: "1",
			change: func(t *testing.T, repo string) {
				writeModel(t, versionPath(repo, "tiny", 2), 2)
				corruptModel(t, versionPath(repo, "tiny", 2))
			},
			after: "1",
			logs:  map[string]string{"model tiny version 2: ": "checksum mismatch: file is corrupt; version 1 keeps serving"},
		},
		{
			name: "new version broken, a lower new one takes over", good: []int{1}, before: "1",
			change: func(t *testing.T, repo string) {
				writeModel(t, versionPath(repo, "tiny", 3), 3)
				corruptModel(t, versionPath(repo, "tiny", 3))
				writeModel(t, versionPath(repo, "tiny", 2), 2)
			},
			after: "2",
			logs:  map[string]string{"model tiny version 3: ": "; version 2 serves instead"},
			swap:  "version 2 (%s) now serving, replacing version 1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := t.TempDir()
			for _, n := range tc.good {
				writeModel(t, versionPath(repo, "tiny", n), uint64(n))
			}
			for _, n := range tc.bad {
				writeModel(t, versionPath(repo, "tiny", n), uint64(n))
				corruptModel(t, versionPath(repo, "tiny", n))
			}
			var logBuf syncBuffer
			ts := startServer(t, Config{MaxBatch: 4, Log: &logBuf}, func(s *Server) error { return s.LoadRepo(repo) })
			require.Equal(t, tc.before, servedVersion(t, ts))
			require.NotContains(t, logBuf.String(), "model tiny version", "nothing failed at start")

			tc.change(t, repo)
			require.Error(t, ts.s.Poll())
			require.NoError(t, ts.s.Poll(), "a failed file is not retried until it changes")
			log := logBuf.String()
			for prefix, end := range tc.logs {
				assert.True(t, strings.HasSuffix(logLine(t, log, prefix), end), "want the line starting %q to end %q; log:\n%s", prefix, end, log)
			}
			if tc.swap != "" {
				assert.Contains(t, log, fmt.Sprintf(tc.swap, versionPath(repo, "tiny", mustAtoi(t, tc.after))))
			} else {
				assert.NotContains(t, log, "now serving, replacing")
			}
			assert.Equal(t, tc.after, servedVersion(t, ts))
		})
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	_, err := fmt.Sscan(s, &n)
	require.NoError(t, err)
	return n
}

// TestRepoSkippedEntries: entries that do not fit DIR/<name>/<version>/
// model.kiln are logged once each, naming the path and why, and the
// models that fit still serve. An incomplete numeric version directory is
// reported too when the first scan finds it (later ones: see
// TestRepoVersionsWithoutModelFile).
func TestRepoSkippedEntries(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, versionPath(repo, "tiny", 1), 1)
	mkdir := func(rel string) {
		require.NoError(t, os.MkdirAll(filepath.Join(repo, rel), 0o755))
	}
	touch := func(rel string) {
		require.NoError(t, os.WriteFile(filepath.Join(repo, rel), []byte("x"), 0o644))
	}
	writeModel(t, filepath.Join(repo, "my model", "1", ModelFileName), 1)
	mkdir("tiny/v2")
	mkdir("tiny/latest")
	mkdir("tiny/007")
	mkdir("tiny/0")
	mkdir("tiny/5") // incomplete at the first scan: reported
	touch("tiny/" + ModelFileName)
	touch("README")
	require.NoError(t, os.Symlink(filepath.Join(repo, "tiny"), filepath.Join(repo, "alias")))

	var logBuf syncBuffer
	ts := startServer(t, Config{MaxBatch: 4, Log: &logBuf}, func(s *Server) error { return s.LoadRepo(repo) })
	for range 3 {
		require.NoError(t, ts.s.Poll())
	}
	tests := []struct{ rel, why string }{
		{"my model", `invalid model name "my model"`},
		{"tiny/v2", `version directory name "v2" is not a positive integer`},
		{"tiny/latest", `version directory name "latest" is not a positive integer`},
		{"tiny/007", `version directory name "007" is not a positive integer without leading zeros`},
		{"tiny/0", `version directory name "0" is not a positive integer`},
		{"tiny/5", "no " + ModelFileName + " in it (yet); the layout is " + filepath.Join(repo, "<name>", "<version>", ModelFileName)},
		{"tiny/" + ModelFileName, "not a version directory; the layout is " + filepath.Join(repo, "<name>", "<version>", ModelFileName)},
		{"README", "not a model directory"},
		{"alias", "a symbolic link, not a model directory"},
	}
	log := logBuf.String()
	for _, tc := range tests {
		t.Run(tc.rel, func(t *testing.T) {
			line := logLine(t, log, "model repository: skipping "+filepath.Join(repo, tc.rel)+": ")
			assert.Contains(t, line, tc.why)
		})
	}
	assert.Equal(t, len(tests), strings.Count(log, "model repository: skipping"), "log:\n%s", log)
	assert.Equal(t, "1", servedVersion(t, ts))

	// An entry that goes away and comes back is reported again.
	require.NoError(t, os.Remove(filepath.Join(repo, "tiny", "v2")))
	require.NoError(t, ts.s.Poll())
	mkdir("tiny/v2")
	require.NoError(t, ts.s.Poll())
	assert.Equal(t, 2, strings.Count(logBuf.String(), "skipping "+filepath.Join(repo, "tiny", "v2")+":"))
}

// TestLoadRepoErrors: LoadRepo's errors say "model repository" once.
func TestLoadRepoErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nonexist")
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	broken := filepath.Join(dir, "broken")
	writeModel(t, versionPath(broken, "m", 1), 1)
	corruptModel(t, versionPath(broken, "m", 1))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.Mkdir(empty, 0o755))
	tests := []struct{ name, repo, want string }{
		{"missing", missing, "model repository: open " + missing + ": no such file or directory"},
		{"not a directory", file, "model repository: "},
		{"empty", empty, "model repository " + empty + ": no model found"},
		{"only broken models", broken, "model repository " + broken + ": model m version 1: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := cpu.New()
			defer b.Close()
			s, err := New(b, Config{})
			require.NoError(t, err)
			defer func() { require.NoError(t, s.Shutdown(context.Background())) }()
			err = s.LoadRepo(tc.repo)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tc.want), "error %q, want it to start with %q", err, tc.want)
			assert.Equal(t, 1, strings.Count(err.Error(), "model repository"), "error %q", err)
		})
	}
}

// TestReadyWithRepoChanges pins what GET /v2/health/ready answers: 200
// from SetReady (which needs one model serving) until Shutdown, even when
// some repository model failed to load at start or models are removed
// later.
func TestReadyWithRepoChanges(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, versionPath(repo, "tiny", 1), 1)
	writeModel(t, versionPath(repo, "other", 1), 1)
	writeModel(t, versionPath(repo, "fm", 1), 1)
	corruptModel(t, versionPath(repo, "fm", 1))
	var loadErr error
	ts := startServer(t, Config{MaxBatch: 4}, func(s *Server) error {
		loadErr = s.LoadRepo(repo)
		return nil
	})
	require.ErrorContains(t, loadErr, "model fm version 1")
	ready := func() int { return ts.do(t, "GET", "/v2/health/ready", nil).code }
	assert.Equal(t, 200, ready(), "one model failed at start, the others serve")
	assert.Equal(t, 404, ts.do(t, "GET", "/v2/models/fm/ready", nil).code)

	require.NoError(t, os.RemoveAll(filepath.Join(repo, "tiny", "1")))
	require.NoError(t, ts.s.Poll())
	assert.Equal(t, 404, ts.do(t, "GET", "/v2/models/tiny/ready", nil).code, "its last version removed, tiny is unloaded")
	assert.Equal(t, 200, ready())

	require.NoError(t, os.RemoveAll(filepath.Join(repo, "other")))
	require.NoError(t, ts.s.Poll())
	assert.Empty(t, ts.s.Models())
	assert.Equal(t, 200, ready(), "ready stays set with no model serving")

	require.NoError(t, ts.s.Shutdown(context.Background()))
	ts.closed = true
	assert.False(t, ts.s.ready.Load())
}

// TestUnreadableRepoIsLogged: when the repository directory cannot be read
// during background polling, the log says so once (the loaded model keeps
// serving), and says so again when it can be read.
func TestUnreadableRepoIsLogged(t *testing.T) {
	parent := t.TempDir()
	repo := filepath.Join(parent, "repo")
	writeModel(t, versionPath(repo, "tiny", 1), 1)
	var logBuf syncBuffer
	ts := startServer(t, Config{MaxBatch: 4, Log: &logBuf, PollInterval: 5 * time.Millisecond},
		func(s *Server) error { return s.LoadRepo(repo) })
	require.Equal(t, "1", servedVersion(t, ts))
	moved := filepath.Join(parent, "moved")
	require.NoError(t, os.Rename(repo, moved))
	failing := "model repository: open " + repo
	require.Eventually(t, func() bool { return strings.Contains(logBuf.String(), failing) }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // several more polls
	require.NoError(t, os.Rename(moved, repo))
	require.Eventually(t, func() bool { return strings.Contains(logBuf.String(), "is readable again") }, 5*time.Second, 5*time.Millisecond)
	log := logBuf.String()
	assert.Equal(t, 1, strings.Count(log, failing), log)
	assert.Contains(t, log, "; the loaded models keep serving")
	assert.Equal(t, "1", servedVersion(t, ts))
}

// TestShutdownWaitsForReplacedVersions: a version replaced by a reload
// while a request still holds it is retired in the background; Shutdown
// waits for that too, so every device buffer is freed when it returns
// (the cleanup checks), and no model is added or polled in afterwards.
func TestShutdownWaitsForReplacedVersions(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, versionPath(repo, "tiny", 1), 1)
	ts := startServer(t, Config{MaxBatch: 4}, func(s *Server) error { return s.LoadRepo(repo) })
	v1 := servingVersion(t, ts.s)
	require.True(t, v1.acquire(), "a request in flight on version 1")
	writeModel(t, versionPath(repo, "tiny", 2), 2)
	require.NoError(t, ts.s.Poll())
	require.Equal(t, "2", servingVersion(t, ts.s).version)

	done := make(chan error, 1)
	go func() { done <- ts.s.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while version 1 was still being retired", err)
	case <-time.After(200 * time.Millisecond):
	}
	v1.release()
	require.NoError(t, <-done)
	ts.closed = true

	path := filepath.Join(t.TempDir(), "late.kiln")
	writeModel(t, path, 3)
	assert.ErrorIs(t, ts.s.AddModel("late", path), errShutDown)
	assert.ErrorIs(t, ts.s.Poll(), errShutDown)
	assert.Empty(t, ts.s.Models())
}

// TestShutdownPastGrace: when the grace period ends with a request in
// flight, Shutdown says so and returns holding the backend lock, so no
// backend call runs afterwards and the backend can be closed; the request
// still gets its 504 at its deadline.
func TestShutdownPastGrace(t *testing.T) {
	b := cpu.New()
	defer b.Close() // the models are not freed after a timed-out Shutdown: no leak check
	s, err := New(b, Config{MaxBatch: 4, Timeout: 500 * time.Millisecond})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(ln) }()
	require.NoError(t, singleModel(t)(s))
	require.NoError(t, s.SetReady())
	ts := &testServer{s: s, b: b, base: "http://" + ln.Addr().String(), client: &http.Client{Timeout: 30 * time.Second}}
	v := servingVersion(t, s)
	good := inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 0), ``)

	s.bmu.Lock()
	got := make(chan response, 1)
	go func() { got <- ts.do(t, "POST", "/v2/models/tiny/infer", good) }()
	require.Eventually(t, func() bool { return v.pending.Load() == 1 }, 10*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	r := <-got // its deadline passes while the backend is held
	assert.Equal(t, 504, r.code)
	s.bmu.Unlock()
	err = <-done
	require.Error(t, err)
	assert.Contains(t, err.Error(), "requests still in flight were not answered")
	assert.False(t, s.bmu.TryLock(), "Shutdown keeps the backend lock")
}

// writeModelSpec saves a randomly initialised model of the test model's
// layers with input h x w x c and the given number of classes to path.
func writeModelSpec(t *testing.T, path string, h, w, c, classes int) {
	t.Helper()
	spec := testSpec()
	spec.Input = []int{h, w, c}
	spec.Layers[len(spec.Layers)-1].Units = classes
	names := make([]string, classes)
	for i := range names {
		names[i] = fmt.Sprintf("class%d", i)
	}
	b := cpu.New()
	defer b.Close()
	m, err := engine.New(b, spec, 7)
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, m.Save(path, engine.ModelMeta{ClassNames: names, Scale: 1.0 / 255}))
}

// TestReloadWarnsOfInterfaceChange: a version that replaces another with
// a different input shape or number of classes is logged with a warning
// naming both (clients of the old one break); one with the same shape and
// classes is not.
func TestReloadWarnsOfInterfaceChange(t *testing.T) {
	tests := []struct {
		name             string
		h, w, c, classes int
		want             string // the warning's ending after "version 2 ", "" for none
	}{
		{"same interface", testH, testW, testC, testClasses, ""},
		{"more classes", testH, testW, testC, 5, "changes what the model takes or gives: 5 classes (version 1: 3); clients built for version 1 will break"},
		{"other input", 6, 6, 1, testClasses, "changes what the model takes or gives: input 6x6x1 (version 1: 8x8x1); clients built for version 1 will break"},
		{"other channels", testH, testW, 3, testClasses, "input 8x8x3 (version 1: 8x8x1)"},
		{"both", 10, 12, 1, 2, "changes what the model takes or gives: input 10x12x1 (version 1: 8x8x1), 2 classes (version 1: 3); clients built for version 1 will break"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := t.TempDir()
			writeModel(t, versionPath(repo, "tiny", 1), 1)
			var logBuf syncBuffer
			ts := startServer(t, Config{MaxBatch: 4, Log: &logBuf}, func(s *Server) error { return s.LoadRepo(repo) })
			require.Equal(t, "1", servedVersion(t, ts))

			writeModelSpec(t, versionPath(repo, "tiny", 2), tc.h, tc.w, tc.c, tc.classes)
			require.NoError(t, ts.s.Poll())
			log := logBuf.String()
			assert.Contains(t, log, fmt.Sprintf("model tiny: version 2 (%s) now serving, replacing version 1\n", versionPath(repo, "tiny", 2)))
			if tc.want == "" {
				assert.NotContains(t, log, "warning:")
				return
			}
			line := logLine(t, log, "warning: model tiny: version 2 ")
			assert.Contains(t, line, tc.want)
			// The warning follows the swap line.
			assert.Less(t, strings.Index(log, "now serving, replacing version 1"), strings.Index(log, line))
			m := ts.do(t, "GET", "/v2/models/tiny", nil).json(t)
			assert.Equal(t, []any{-1.0, float64(tc.h), float64(tc.w), float64(tc.c)}, m["inputs"].([]any)[0].(map[string]any)["shape"])
		})
	}
}

// loadFaultBackend is the CPU backend with faults in Alloc, which only
// model loads call: while failMsg is set Alloc fails with it as a device
// out of memory does, and while gate is set Alloc waits for it to close
// (sending on entered, without blocking, as it starts to wait).
type loadFaultBackend struct {
	*cpu.Backend
	failMsg atomic.Pointer[string]
	mu      sync.Mutex
	gate    chan struct{}
	entered chan struct{} // buffered 1
}

func newLoadFaultBackend() *loadFaultBackend {
	return &loadFaultBackend{Backend: cpu.New(), entered: make(chan struct{}, 1)}
}

func (b *loadFaultBackend) Alloc(n int) (backend.Buffer, error) {
	if msg := b.failMsg.Load(); msg != nil {
		return nil, backend.Wrap("cpu", backend.OpAlloc, errors.New(*msg))
	}
	b.mu.Lock()
	gate := b.gate
	b.mu.Unlock()
	if gate != nil {
		select {
		case b.entered <- struct{}{}:
		default:
		}
		<-gate
	}
	return b.Backend.Alloc(n)
}

// hold makes loads wait in Alloc until the returned function is called.
func (b *loadFaultBackend) hold() (release func()) {
	gate := make(chan struct{})
	b.mu.Lock()
	b.gate = gate
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.gate = nil
			b.mu.Unlock()
			close(gate)
		})
	}
}

// TestFileContentError: load failures about the model file's contents
// are told from those of the moment (reading the file, the device).
func TestFileContentError(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		content bool
	}{
		{"checksum", fmt.Errorf("modelfile: read x: %w", modelfile.ErrCorrupt), true},
		{"not a model file", fmt.Errorf("modelfile: read x: %w", modelfile.ErrNotModelFile), true},
		{"format version", fmt.Errorf("modelfile: read x: %w", modelfile.ErrVersion), true},
		{"missing tensor", fmt.Errorf("x: %w", modelfile.ErrTensorNotFound), true},
		{"spec", errors.New("x: model spec: no layers"), true},
		{"warm-up outputs", errors.New("warm-up inference produced non-finite outputs (broken weights?)"), true},
		{"permission", fmt.Errorf("modelfile: %w", &fs.PathError{Op: "open", Path: "x", Err: fs.ErrPermission}), false},
		{"I/O error", fmt.Errorf("modelfile: %w", &fs.PathError{Op: "read", Path: "x", Err: syscall.EIO}), false},
		{"device out of memory", fmt.Errorf("x: build layer 0 (conv): allocate k: %w", backend.Wrap("cuda", backend.OpAlloc, errors.New("out of memory"))), false},
		{"device too small", fmt.Errorf("allocate activations: %w", backend.ShapeError("cuda", backend.OpAlloc, "exceeds the device")), false},
		{"warm-up on a failing device", fmt.Errorf("warm-up inference: %w", backend.Wrap("cuda", "Gemm", errors.New("device lost"))), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.content, fileContentError(tc.err), "%v", tc.err)
		})
	}
}

// TestLoadFailureOfTheMomentIsRetried: a load that fails for a reason
// other than the file's contents (here the device out of memory) is
// retried at every scan, not remembered until the file changes, and
// logged once per distinct message; the version loads once the cause is
// gone. A failure about the contents is still not retried (see
// TestReloadLogSaysWhatServes).
func TestLoadFailureOfTheMomentIsRetried(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, versionPath(repo, "tiny", 1), 1)
	fb := newLoadFaultBackend()
	var logBuf syncBuffer
	ts := startServerOn(t, fb, Config{MaxBatch: 4, Log: &logBuf}, func(s *Server) error { return s.LoadRepo(repo) })
	oom := "out of device memory"
	fb.failMsg.Store(&oom)
	writeModel(t, versionPath(repo, "tiny", 2), 2)
	for range 3 {
		err := ts.s.Poll()
		require.Error(t, err, "retried at every scan")
		assert.Contains(t, err.Error(), "model tiny version 2: ")
		assert.Contains(t, err.Error(), oom)
	}
	assert.Equal(t, "1", servedVersion(t, ts))
	prefix := "model tiny version 2: "
	line := logLine(t, logBuf.String(), prefix) // logged once
	assert.True(t, strings.HasSuffix(line, oom+"; version 1 keeps serving; retried at every scan (not a problem of the file's contents)"), line)

	lost := "device lost"
	fb.failMsg.Store(&lost)
	require.Error(t, ts.s.Poll())
	require.Error(t, ts.s.Poll())
	assert.Equal(t, 2, strings.Count(logBuf.String(), prefix), "a new message is logged, once; log:\n%s", logBuf.String())

	fb.failMsg.Store(nil)
	require.NoError(t, ts.s.Poll())
	assert.Equal(t, "2", servedVersion(t, ts))
	metrics := string(ts.do(t, "GET", "/metrics", nil).body)
	assert.Contains(t, metrics, `kiln_model_load_failures_total{model="tiny"} 5`)
}

// TestServingFileRemoved: when the serving version's model file is gone
// but its directory is there (rm then cp, install, a rename), the copy
// in memory keeps serving, without falling back to an older version, and
// the log says so once; the file is loaded once a scan finds it again.
// Removing a version's directory still unloads it.
func TestServingFileRemoved(t *testing.T) {
	tests := []struct {
		name     string
		versions []int
		remove   func(t *testing.T, dir string) // dir: the serving version's directory
		after    string                         // serving after the change, "" for none (404)
		kept     bool                           // the copy in memory keeps serving
	}{
		{"only version, file removed", []int{1}, func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, ModelFileName)))
		}, "1", true},
		{"older version there, file removed", []int{1, 2}, func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, ModelFileName)))
		}, "2", true},
		{"file renamed", []int{1, 2}, func(t *testing.T, dir string) {
			require.NoError(t, os.Rename(filepath.Join(dir, ModelFileName), filepath.Join(dir, "old.kiln")))
		}, "2", true},
		{"version directory removed", []int{1, 2}, func(t *testing.T, dir string) {
			require.NoError(t, os.RemoveAll(dir))
		}, "1", false},
		{"only version directory removed", []int{1}, func(t *testing.T, dir string) {
			require.NoError(t, os.RemoveAll(dir))
		}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := t.TempDir()
			for _, n := range tc.versions {
				writeModel(t, versionPath(repo, "tiny", n), uint64(n))
			}
			var logBuf syncBuffer
			ts := startServer(t, Config{MaxBatch: 4, Log: &logBuf}, func(s *Server) error { return s.LoadRepo(repo) })
			top := tc.versions[len(tc.versions)-1]
			path := versionPath(repo, "tiny", top)
			tc.remove(t, filepath.Dir(path))
			for range 3 {
				require.NoError(t, ts.s.Poll())
			}
			if tc.after == "" {
				assert.Equal(t, 404, ts.do(t, "GET", "/v2/models/tiny/ready", nil).code)
				return
			}
			assert.Equal(t, tc.after, servedVersion(t, ts))
			kept := fmt.Sprintf("model tiny: version %d keeps serving the copy loaded before its file %s was removed; a scan loads the file once it is there again", top, path)
			if !tc.kept {
				assert.NotContains(t, logBuf.String(), "keeps serving the copy")
				return
			}
			assert.Equal(t, 1, strings.Count(logBuf.String(), kept), "logged once; log:\n%s", logBuf.String())
			assert.NotContains(t, logBuf.String(), "removed from the repository, unloading")

			// the file comes back (cp): it is loaded and serves
			writeModel(t, path, 7)
			require.NoError(t, ts.s.Poll())
			assert.Contains(t, logBuf.String(), fmt.Sprintf("model tiny: version %d (%s) now serving, replacing version %d\n", top, path, top))
			assert.Equal(t, tc.after, servedVersion(t, ts))
		})
	}
}

// TestShutdownDuringSlowLoad: a model load in progress (one that the
// repository poll started and that takes long) does not hold up
// Shutdown: the listener closes at once, Shutdown returns within its
// grace period (past it, with ctx's error saying a load was in
// progress), and the version loaded after shutdown began is freed, not
// served; nothing runs on the backend after that load.
func TestShutdownDuringSlowLoad(t *testing.T) {
	// startSlowLoad serves repo's version 1 on fb, then writes version 2
	// and returns once the poll loop's load of it waits in Alloc.
	startSlowLoad := func(t *testing.T, s *Server, fb *loadFaultBackend, repo string) (release func()) {
		t.Helper()
		release = fb.hold()
		t.Cleanup(release)
		writeModel(t, versionPath(repo, "tiny", 2), 2)
		select {
		case <-fb.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the poll did not start loading version 2")
		}
		return release
	}
	refused := func(base string) bool {
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		_, err := c.Get(base + "/v2/health/live")
		return err != nil
	}

	t.Run("load ends within the grace period", func(t *testing.T) {
		repo := t.TempDir()
		writeModel(t, versionPath(repo, "tiny", 1), 1)
		fb := newLoadFaultBackend()
		ts := startServerOn(t, fb, Config{MaxBatch: 4, PollInterval: 5 * time.Millisecond}, func(s *Server) error { return s.LoadRepo(repo) })
		release := startSlowLoad(t, ts.s, fb, repo)
		done := make(chan error, 1)
		go func() { done <- ts.s.Shutdown(context.Background()) }()
		require.Eventually(t, func() bool { return refused(ts.base) }, 10*time.Second, 5*time.Millisecond,
			"the listener stays open while a model loads")
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned (%v) while the load ran", err)
		default:
		}
		release()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("Shutdown did not return after the load ended")
		}
		ts.closed = true
		assert.Empty(t, ts.s.Models(), "the version loaded during shutdown is not served")
		// the cleanup checks that every buffer, version 2's included, was freed
	})

	t.Run("load outlasts the grace period", func(t *testing.T) {
		repo := t.TempDir()
		writeModel(t, versionPath(repo, "tiny", 1), 1)
		fb := newLoadFaultBackend()
		defer fb.Close() // version 1 is not freed after a timed-out Shutdown: no leak check
		s, err := New(fb, Config{MaxBatch: 4, PollInterval: 5 * time.Millisecond})
		require.NoError(t, err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		go func() { _ = s.Serve(ln) }()
		require.NoError(t, s.LoadRepo(repo))
		base := "http://" + ln.Addr().String()
		live := fb.Stats().LiveBuffers
		release := startSlowLoad(t, s, fb, repo)

		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- s.Shutdown(ctx) }()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			release()
			t.Fatal("Shutdown waited for the load past its grace period")
		}
		assert.Less(t, time.Since(start), 5*time.Second)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "a model load was still in progress")
		assert.True(t, refused(base), "the listener is closed")

		release()
		select {
		case <-s.pollDone:
		case <-time.After(10 * time.Second):
			t.Fatal("the poll loop did not end after the load")
		}
		assert.Equal(t, live, fb.Stats().LiveBuffers, "version 2, loaded after Shutdown, is freed")
		assert.Equal(t, "1", s.Models()[0].Version)
		assert.False(t, s.bmu.TryLock(), "the load that ended last keeps the backend lock")
		assert.ErrorIs(t, s.Poll(), errShutDown)
	})
}
