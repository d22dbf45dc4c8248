package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/backend/cpu"
	"github.com/kiln-ml/kiln/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func saveTinyModel(t *testing.T, path string) {
	t.Helper()
	b := cpu.New()
	defer b.Close()
	spec := engine.Spec{Input: []int{6, 6, 1}, Layers: []engine.LayerSpec{
		{Type: "flatten"}, {Type: "dense", Units: 4, Activation: "softmax"},
	}}
	m, err := engine.New(b, spec, 3)
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, m.Save(path, engine.ModelMeta{Scale: 1.0 / 255}))
}

func TestServeFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no model", nil, "exactly one of --model FILE or --model-repo DIR"},
		{"both", []string{"--model", "a", "--model-repo", "b"}, "exactly one of"},
		{"name without model", []string{"--model-repo", "b", "--name", "x"}, "--name only applies"},
		{"poll with model", []string{"--model", "a", "--poll", "2s"}, "--poll only applies to --model-repo"},
		{"empty addr", []string{"--model", "a", "--addr", ""}, "--addr is empty"},
		{"bad batch", []string{"--model", "a", "--max-batch", "0"}, "--max-batch must be positive, got 0"},
		{"bad queue", []string{"--model", "a", "--queue", "-1"}, "--queue must be positive, got -1"},
		{"negative grace", []string{"--model", "a", "--grace", "-1s"}, "--grace must not be negative"},
		{"negative timeout", []string{"--model", "a", "--idle-timeout", "-1s"}, "--idle-timeout must not be negative"},
		{"stray arg", []string{"--model", "a", "extra"}, "unexpected argument"},
		{"missing token file", []string{"--model", "a", "--auth-token-file", "/nonexistent/tok"}, "auth-token-file"},
		{"file name is no model name", []string{"--model", "/tmp/my model.kiln"}, `invalid model name "my model" (letters, digits, '_', '.', '-'): the name comes from the file name; give one with --name`},
		{"bad --name", []string{"--model", "a.kiln", "--name", "a b"}, `invalid model name "a b"`},
		{"duration without unit", []string{"--model", "a", "--timeout", "5"}, `invalid value "5" for flag -timeout: want a duration with a unit, such as 5s or 500ms`},
		{"bad queue delay", []string{"--model", "a", "--max-queue-delay", "abc"}, "want microseconds (500) or a duration with a unit (500us, 2ms)"},
		{"negative queue delay", []string{"--model", "a", "--max-queue-delay", "-5"}, "--max-queue-delay must not be negative, got -5µs"},
		{"queue delay as long as the timeout", []string{"--model", "a", "--max-queue-delay", "10s"}, "--max-queue-delay 10s must be shorter than --timeout 10s"},
		{"queue delay beyond the timeout", []string{"--model", "a", "--max-queue-delay", "2s", "--timeout", "1s"}, "--max-queue-delay 2s must be shorter than --timeout 1s"},
		{"negative image pixels", []string{"--model", "a", "--max-image-pixels", "-1"}, "--max-image-pixels must be 1 to 16777216 (or 0 to derive it from each model's input), got -1"},
		{"image pixels past the cap", []string{"--model", "a", "--max-image-pixels", "16777217"}, "--max-image-pixels must be 1 to 16777216"},
		{"missing model before the backend", []string{"--model", "/nonexistent/m.kiln", "--backend", "tpu"}, "--model: stat /nonexistent/m.kiln: no such file or directory"},
		{"negative image decodes", []string{"--model", "a", "--max-image-decodes", "-2"}, "--max-image-decodes must be positive (or 0 for the number of CPUs), got -2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := runServe(tc.args, &out, &errb)
			require.Error(t, err)
			// flag parse errors go to stderr with the usage
			assert.Contains(t, err.Error()+"\n"+errb.String(), tc.want)
		})
	}
	var out, errb bytes.Buffer
	err := runServe([]string{"--backend", "cpu", "--model", filepath.Join(t.TempDir(), "missing.kiln"), "--addr", "127.0.0.1:0"}, &out, &errb)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.kiln")
}

// TestDurationFlags: --max-queue-delay takes microseconds or a duration;
// the other duration flags need a unit.
func TestDurationFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	delay := durationFlag(fs, "delay", 7*time.Microsecond, time.Microsecond, "")
	grace := durationFlag(fs, "grace", time.Second, 0, "")
	assert.Equal(t, 7*time.Microsecond, *delay, "the default")
	for _, tc := range []struct {
		args  []string
		delay time.Duration
		grace time.Duration
	}{
		{[]string{"--delay", "500"}, 500 * time.Microsecond, time.Second},
		{[]string{"--delay", "2ms", "--grace", "1m30s"}, 2 * time.Millisecond, 90 * time.Second},
		{[]string{"--delay", "0"}, 0, 90 * time.Second},
	} {
		require.NoError(t, fs.Parse(tc.args))
		assert.Equal(t, tc.delay, *delay, tc.args)
		assert.Equal(t, tc.grace, *grace, tc.args)
	}
	assert.Error(t, fs.Parse([]string{"--grace", "30"}))
}

// TestServeCommand runs kiln serve in this process on a random loopback
// port, checks the printed curl line works, and stops it with SIGTERM.
func TestServeCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "digits.kiln")
	saveTinyModel(t, path)
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("tok123\n"), 0o600))

	pr, pw := io.Pipe()
	var errb serveLog
	done := make(chan error, 1)
	go func() {
		err := runServe([]string{"--backend", "cpu", "--model", path, "--addr", "127.0.0.1:0", "--auth-token-file", tok, "--max-batch", "4",
			"--max-image-pixels", "500", "--max-image-decodes", "1"}, pw, &errb)
		pw.Close()
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	var lines []string
	var base, curl, classify string
	for sc.Scan() {
		l := sc.Text()
		lines = append(lines, l)
		if m := regexp.MustCompile(`^ready: (http://[^/]+)/v2/health/ready$`).FindStringSubmatch(l); m != nil {
			base = m[1]
		}
		if strings.HasPrefix(l, "  curl ") {
			if curl != "" {
				classify = strings.TrimSpace(l)
				break
			}
			curl = strings.TrimSpace(l)
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	require.NotEmpty(t, base, "output: %q stderr: %s", lines, errb.String())
	require.NotEmpty(t, curl)
	assert.Contains(t, lines[0], "serving model digits version 1")

	resp, err := http.Get(base + "/v2/health/ready")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)

	// --max-image-pixels 500: a 30×30 image (900 pixels) is refused with
	// 413 from its header, a 20×20 one (400) is classified.
	for _, c := range []struct{ side, status int }{{30, 413}, {20, 200}} {
		var buf bytes.Buffer
		require.NoError(t, png.Encode(&buf, image.NewGray(image.Rect(0, 0, c.side, c.side))))
		req, err := http.NewRequest("POST", base+"/v1/models/digits:classify", &buf)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer tok123")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, c.status, resp.StatusCode, "%d×%d image: %s", c.side, c.side, body)
		if c.status == 413 {
			assert.Contains(t, string(body), "500", "the answer names the limit")
		}
	}

	// The printed curl line works as printed (when bash and curl exist).
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("curl not installed: the printed curl line was not run")
	} else {
		out, err := exec.Command("bash", "-c", curl).CombinedOutput()
		require.NoError(t, err, "%s", out)
		var r struct {
			Outputs []struct {
				Name string    `json:"name"`
				Data []float64 `json:"data"`
			} `json:"outputs"`
		}
		require.NoError(t, json.Unmarshal(out, &r), "%s", out)
		require.Len(t, r.Outputs, 2)
		assert.Equal(t, "class", r.Outputs[0].Name)
		assert.Len(t, r.Outputs[1].Data, 4)

		// and so does the classify line, with a real image for IMAGE.png
		require.Contains(t, classify, "@IMAGE.png")
		img := filepath.Join(t.TempDir(), "digit.png")
		f, err := os.Create(img)
		require.NoError(t, err)
		require.NoError(t, png.Encode(f, image.NewGray(image.Rect(0, 0, 20, 20))))
		require.NoError(t, f.Close())
		out, err = exec.Command("bash", "-c", strings.Replace(classify, "@IMAGE.png", "@"+img, 1)).CombinedOutput()
		require.NoError(t, err, "%s", out)
		var c struct {
			Predictions []struct {
				Label string `json:"label"`
			} `json:"predictions"`
		}
		require.NoError(t, json.Unmarshal(out, &c), "%s", out)
		assert.Len(t, c.Predictions, 3)
	}

	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("kiln serve did not stop on SIGTERM")
	}
	assert.Contains(t, errb.String(), "shutting down")
}

// serveLog is a bytes.Buffer safe for concurrent use.
type serveLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *serveLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *serveLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
