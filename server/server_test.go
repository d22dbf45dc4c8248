package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/cpu"
	"github.com/kiln-ml/kiln/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// Test models are tiny: 8x8x1 input, one conv, one dense softmax layer.
const testH, testW, testC, testClasses = 8, 8, 1, 3

func testSpec() engine.Spec {
	return engine.Spec{Name: "tiny", Input: []int{testH, testW, testC}, Layers: []engine.LayerSpec{
		{Type: "conv2d", Filters: 4, Kernel: []int{3, 3}, Activation: "relu"},
		{Type: "maxpool2d", Pool: []int{2, 2}},
		{Type: "flatten"},
		{Type: "dense", Units: testClasses, Activation: "softmax"},
	}}
}

// writeModel saves a randomly initialised test model to path.
func writeModel(t testing.TB, path string, seed uint64) {
	t.Helper()
	b := cpu.New()
	defer b.Close()
	m, err := engine.New(b, testSpec(), seed)
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, m.Save(path, engine.ModelMeta{ClassNames: []string{"cat", "dog", "eel"}, Scale: 1.0 / 255, Dataset: "test"}))
}

type testServer struct {
	s      *Server
	b      backend.Backend
	base   string
	client *http.Client
	closed bool
}

// startServer serves on a random loopback port with a CPU backend; add
// loads the models. The cleanup shuts it down and checks that every device
// buffer was freed.
func startServer(t *testing.T, cfg Config, add func(s *Server) error) *testServer {
	t.Helper()
	return startServerOn(t, cpu.New(), cfg, add)
}

// startServerOn is startServer on backend b, which the cleanup closes.
func startServerOn(t *testing.T, b backend.Backend, cfg Config, add func(s *Server) error) *testServer {
	t.Helper()
	s, err := New(b, cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(ln) }()
	ts := &testServer{s: s, b: b, base: "http://" + ln.Addr().String(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	t.Cleanup(func() {
		if !ts.closed {
			require.NoError(t, s.Shutdown(context.Background()))
		}
		ts.client.CloseIdleConnections()
		assert.Zero(t, b.Stats().LiveBuffers, "device buffers leaked")
		b.Close()
	})
	if add != nil {
		require.NoError(t, add(s))
		require.NoError(t, s.SetReady())
	}
	return ts
}

func singleModel(t *testing.T) func(s *Server) error {
	path := filepath.Join(t.TempDir(), "tiny.kiln")
	writeModel(t, path, 1)
	return func(s *Server) error { return s.AddModel("tiny", path) }
}

type response struct {
	code   int
	body   []byte
	header http.Header
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body %s", r.body)
	return m
}

func (ts *testServer) do(t testing.TB, method, path string, body []byte, hdr ...string) response {
	t.Helper()
	r, err := ts.try(ts.client, method, path, body, hdr...)
	require.NoError(t, err)
	return r
}

// try sends one request with client and reads the whole response; unlike
// do it reports a transport error instead of failing the test, so it can
// be used from goroutines other than the test's.
func (ts *testServer) try(client *http.Client, method, path string, body []byte, hdr ...string) (response, error) {
	req, err := http.NewRequest(method, ts.base+path, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{resp.StatusCode, b, resp.Header}, nil
}

// doEarly sends a request whose body the server answers before reading
// (one over its size limit) on a connection of its own: the headers, then
// the body from another goroutine, ignoring its write error, while the
// response is read. Through http.Client the server's early answer and
// close could surface as a "broken pipe" on the body's write instead of
// the response (seen in CI).
func (ts *testServer) doEarly(t testing.TB, method, path string, body []byte) response {
	t.Helper()
	u, err := url.Parse(ts.base + path)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	req, err := http.NewRequest(method, ts.base+path, nil)
	require.NoError(t, err)
	_, err = fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", method, u.RequestURI(), u.Host, len(body))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = conn.Write(body) // may fail once the server has answered and closed
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	conn.Close()
	<-done
	return response{resp.StatusCode, b, resp.Header}
}

// inferRequests counts the infer requests the server's handler answered
// (every status code), from its own kiln_requests_total counter.
func inferRequests(t *testing.T, s *Server) int {
	t.Helper()
	mfs, err := s.met.reg.Gather()
	require.NoError(t, err)
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "kiln_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" && l.GetValue() == "infer" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int(n)
}

// heapAfterGC is the live heap after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// pixels returns n test images of raw 0..255 values.
func pixels(n int, seed int) []int {
	p := make([]int, n*testH*testW*testC)
	for i := range p {
		p[i] = (i*37 + seed*11) % 256
	}
	return p
}

func inferBody(t testing.TB, datatype string, shape []int, data any, extra string) []byte {
	t.Helper()
	d, err := json.Marshal(data)
	require.NoError(t, err)
	s, err := json.Marshal(shape)
	require.NoError(t, err)
	return []byte(fmt.Sprintf(`{%s"inputs":[{"name":"input","shape":%s,"datatype":%q,"data":%s}]}`, extra, s, datatype, d))
}

func probsOf(t *testing.T, r response) []float64 {
	t.Helper()
	require.Equal(t, http.StatusOK, r.code, "body %s", r.body)
	var out struct {
		Outputs []struct {
			Name  string    `json:"name"`
			Shape []int     `json:"shape"`
			Data  []float64 `json:"data"`
		} `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal(r.body, &out))
	for _, o := range out.Outputs {
		if o.Name == OutputProbabilities {
			return o.Data
		}
	}
	t.Fatalf("no probabilities in %s", r.body)
	return nil
}

func TestEndpoints(t *testing.T) {
	ts := startServer(t, Config{MaxBatch: 8, MaxQueueDelay: 100 * time.Microsecond}, singleModel(t))
	px := pixels(2, 0)
	scaled := make([]float32, len(px))
	for i, p := range px {
		scaled[i] = float32(p) * float32(1.0/255)
	}
	nested := make([][][][]int, 2)
	for n := range nested {
		nested[n] = make([][][]int, testH)
		for y := range nested[n] {
			nested[n][y] = make([][]int, testW)
			for x := range nested[n][y] {
				nested[n][y][x] = []int{px[(n*testH+y)*testW+x]}
			}
		}
	}
	shape := []int{2, testH, testW, testC}
	ref := probsOf(t, ts.do(t, "POST", "/v2/models/tiny/infer", inferBody(t, "FP32", shape, scaled, ``)))
	require.Len(t, ref, 2*testClasses)
	for n := range 2 {
		sum := 0.0
		for _, p := range ref[n*testClasses : (n+1)*testClasses] {
			sum += p
		}
		assert.InDelta(t, 1, sum, 1e-5)
	}

	t.Run("health and metadata", func(t *testing.T) {
		assert.Equal(t, 200, ts.do(t, "GET", "/v2/health/live", nil).code)
		assert.Equal(t, 200, ts.do(t, "GET", "/v2/health/ready", nil).code)
		srv := ts.do(t, "GET", "/v2", nil).json(t)
		assert.Equal(t, "kiln", srv["name"])
		assert.Contains(t, srv["extensions"], "binary_tensor_data")
		for _, p := range []string{"/v2/models/tiny", "/v2/models/tiny/versions/1"} {
			r := ts.do(t, "GET", p, nil)
			require.Equal(t, 200, r.code, p)
			m := r.json(t)
			assert.Equal(t, "tiny", m["name"])
			assert.Equal(t, []any{"1"}, m["versions"])
			in := m["inputs"].([]any)[0].(map[string]any)
			assert.Equal(t, "input", in["name"])
			assert.Equal(t, "FP32", in["datatype"])
			assert.Equal(t, []any{-1.0, 8.0, 8.0, 1.0}, in["shape"])
			outs := m["outputs"].([]any)
			assert.Equal(t, []any{-1.0, 3.0}, outs[0].(map[string]any)["shape"])
		}
		for _, p := range []string{"/v2/models/tiny/ready", "/v2/models/tiny/versions/1/ready"} {
			r := ts.do(t, "GET", p, nil)
			require.Equal(t, 200, r.code, p)
			assert.Equal(t, true, r.json(t)["ready"])
		}
	})

	t.Run("UINT8 nested equals FP32 flat, id echoed", func(t *testing.T) {
		r := ts.do(t, "POST", "/v2/models/tiny/versions/1/infer", inferBody(t, "UINT8", shape, nested, `"id":"req-7",`))
		got := probsOf(t, r)
		assert.InDeltaSlice(t, ref, got, 1e-6)
		m := r.json(t)
		assert.Equal(t, "req-7", m["id"])
		assert.Equal(t, "tiny", m["model_name"])
		assert.Equal(t, "1", m["model_version"])
		cls := m["outputs"].([]any)[1].(map[string]any)
		assert.Equal(t, "class", cls["name"])
		assert.Equal(t, "INT64", cls["datatype"])
		assert.Len(t, cls["data"], 2)
	})

	t.Run("requested outputs", func(t *testing.T) {
		r := ts.do(t, "POST", "/v2/models/tiny/infer", inferBody(t, "UINT8", []int{1, testH, testW, testC}, px[:testH*testW], `"outputs":[{"name":"class"}],`))
		require.Equal(t, 200, r.code, "%s", r.body)
		outs := r.json(t)["outputs"].([]any)
		require.Len(t, outs, 1)
		assert.Equal(t, "class", outs[0].(map[string]any)["name"])
	})

	t.Run("binary tensors in and out", func(t *testing.T) {
		hdr := fmt.Sprintf(`{"inputs":[{"name":"input","shape":[2,%d,%d,%d],"datatype":"FP32","parameters":{"binary_data_size":%d}}],"outputs":[{"name":"probabilities","parameters":{"binary_data":true}},{"name":"class"}]}`, testH, testW, testC, 4*len(scaled))
		body := append([]byte(hdr), fp32Bytes(scaled...)...)
		r := ts.do(t, "POST", "/v2/models/tiny/infer", body, "Inference-Header-Content-Length", fmt.Sprint(len(hdr)), "Content-Type", "application/octet-stream")
		require.Equal(t, 200, r.code, "%s", r.body)
		var jl int
		_, err := fmt.Sscan(r.header.Get("Inference-Header-Content-Length"), &jl)
		require.NoError(t, err)
		var head struct {
			Outputs []struct {
				Name       string         `json:"name"`
				Parameters map[string]int `json:"parameters"`
				Data       []int          `json:"data"`
			} `json:"outputs"`
		}
		require.NoError(t, json.Unmarshal(r.body[:jl], &head))
		require.Len(t, head.Outputs, 2)
		assert.Equal(t, 4*2*testClasses, head.Outputs[0].Parameters["binary_data_size"])
		assert.Len(t, head.Outputs[1].Data, 2)
		bin := r.body[jl:]
		require.Len(t, bin, 4*2*testClasses)
		for i := range ref {
			assert.InDelta(t, ref[i], math.Float32frombits(binary.LittleEndian.Uint32(bin[4*i:])), 1e-6)
		}
		// UINT8 binary input, request-level binary output.
		hdr = fmt.Sprintf(`{"parameters":{"binary_data_output":true},"inputs":[{"name":"input","shape":[1,%d,%d,%d],"datatype":"UINT8","parameters":{"binary_data_size":%d}}]}`, testH, testW, testC, testH*testW)
		raw := make([]byte, testH*testW)
		for i := range raw {
			raw[i] = byte(px[i])
		}
		r = ts.do(t, "POST", "/v2/models/tiny/infer", append([]byte(hdr), raw...), "Inference-Header-Content-Length", fmt.Sprint(len(hdr)))
		require.Equal(t, 200, r.code, "%s", r.body)
		_, err = fmt.Sscan(r.header.Get("Inference-Header-Content-Length"), &jl)
		require.NoError(t, err)
		assert.Len(t, r.body[jl:], 4*testClasses+8)
		assert.InDelta(t, ref[0], math.Float32frombits(binary.LittleEndian.Uint32(r.body[jl:])), 1e-6)
	})

	t.Run("classify image", func(t *testing.T) {
		img := image.NewGray(image.Rect(0, 0, 16, 16))
		for i := range img.Pix {
			img.Pix[i] = uint8(i)
		}
		img.Set(3, 3, color.Gray{Y: 255})
		var buf bytes.Buffer
		require.NoError(t, png.Encode(&buf, img))
		r := ts.do(t, "POST", "/v1/models/tiny:classify?top=2", buf.Bytes(), "Content-Type", "image/png")
		require.Equal(t, 200, r.code, "%s", r.body)
		var out struct {
			Predictions []prediction `json:"predictions"`
		}
		require.NoError(t, json.Unmarshal(r.body, &out))
		require.Len(t, out.Predictions, 2)
		assert.GreaterOrEqual(t, out.Predictions[0].Score, out.Predictions[1].Score)
		assert.Contains(t, []string{"cat", "dog", "eel"}, out.Predictions[0].Label)

		// The same image drawn dark on light, with invert=true, gets the
		// same answer.
		for i, v := range img.Pix {
			img.Pix[i] = 255 - v
		}
		buf.Reset()
		require.NoError(t, png.Encode(&buf, img))
		r = ts.do(t, "POST", "/v1/models/tiny:classify?top=2&invert=true", buf.Bytes(), "Content-Type", "image/png")
		require.Equal(t, 200, r.code, "%s", r.body)
		var inv struct {
			Predictions []prediction `json:"predictions"`
		}
		require.NoError(t, json.Unmarshal(r.body, &inv))
		require.Len(t, inv.Predictions, 2)
		for i, p := range inv.Predictions { // 1 − (1 − x) rounds in float32
			assert.Equal(t, out.Predictions[i].Class, p.Class)
			assert.InDelta(t, out.Predictions[i].Score, p.Score, 1e-5)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		r := ts.do(t, "GET", "/metrics", nil)
		require.Equal(t, 200, r.code)
		for _, name := range []string{"kiln_requests_total", "kiln_queue_duration_seconds_bucket", "kiln_compute_duration_seconds_bucket",
			"kiln_batch_size_bucket", "kiln_queue_depth", "kiln_models_loaded 1", `code="200"`, `model="tiny"`} {
			assert.Contains(t, string(r.body), name)
		}
	})

	t.Run("routing errors", func(t *testing.T) {
		r := ts.do(t, "GET", "/v3/nothing", nil)
		assert.Equal(t, 404, r.code)
		assert.Contains(t, r.json(t)["error"], "no such endpoint")
		r = ts.do(t, "GET", "/v2/models/tiny/infer", nil)
		assert.Equal(t, 405, r.code)
		assert.Equal(t, "POST", r.header.Get("Allow"))
		r = ts.do(t, "POST", "/v2/models/tiny", nil)
		assert.Equal(t, 405, r.code)
	})
}

func TestReadyOnlyAfterLoad(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	assert.Equal(t, 200, ts.do(t, "GET", "/v2/health/live", nil).code)
	assert.Equal(t, 503, ts.do(t, "GET", "/v2/health/ready", nil).code)
	require.Error(t, ts.s.SetReady(), "no model loaded")
	require.NoError(t, singleModel(t)(ts.s))
	require.NoError(t, ts.s.SetReady())
	assert.Equal(t, 200, ts.do(t, "GET", "/v2/health/ready", nil).code)
}

func TestBadInputs(t *testing.T) {
	ts := startServer(t, Config{MaxBatch: 4, MaxBodyBytes: 64 << 10}, singleModel(t))
	one := []int{1, testH, testW, testC}
	good := inferBody(t, "UINT8", one, pixels(1, 0), ``)
	nanHdr := fmt.Sprintf(`{"inputs":[{"name":"input","shape":[1,%d,%d,%d],"datatype":"FP32","parameters":{"binary_data_size":%d}}]}`, testH, testW, testC, 4*testH*testW)
	nanVals := make([]float32, testH*testW)
	nanVals[5] = float32(math.NaN())
	tests := []struct {
		name   string
		method string
		path   string
		body   []byte
		hdr    []string
		code   int
		want   string
	}{
		{"malformed JSON", "POST", "/v2/models/tiny/infer", []byte(`{"inputs":[{"name":`), nil, 400, "malformed JSON"},
		{"wrong datatype", "POST", "/v2/models/tiny/infer", inferBody(t, "INT32", one, pixels(1, 0), ``), nil, 400, `datatype "INT32" is not supported`},
		{"wrong shape", "POST", "/v2/models/tiny/infer", inferBody(t, "UINT8", []int{1, 9, 7, 1}, pixels(1, 0), ``), nil, 400, "input shape [1,9,7,1] does not match the model's [N, 8, 8, 1]"},
		{"too many elements", "POST", "/v2/models/tiny/infer", inferBody(t, "UINT8", one, pixels(2, 0), ``), nil, 400, "too many elements"},
		{"too few elements", "POST", "/v2/models/tiny/infer", inferBody(t, "UINT8", one, pixels(1, 0)[:10], ``), nil, 400, "too few elements"},
		{"NaN literal", "POST", "/v2/models/tiny/infer", []byte(`{"inputs":[{"name":"input","shape":[1,8,8,1],"datatype":"FP32","data":[NaN]}]}`), nil, 400, "NaN"},
		{"NaN binary", "POST", "/v2/models/tiny/infer", append([]byte(nanHdr), fp32Bytes(nanVals...)...), []string{"Inference-Header-Content-Length", fmt.Sprint(len(nanHdr))}, 400, "input value 5 is NaN"},
		{"bad header length", "POST", "/v2/models/tiny/infer", good, []string{"Inference-Header-Content-Length", "abc"}, 400, "Inference-Header-Content-Length"},
		{"empty body", "POST", "/v2/models/tiny/infer", nil, nil, 400, "empty request body"},
		{"oversized body", "POST", "/v2/models/tiny/infer", bytes.Repeat([]byte(" "), 100<<10), nil, 413, "larger than the limit of 65536 bytes"},
		{"batch over max", "POST", "/v2/models/tiny/infer", inferBody(t, "UINT8", []int{5, testH, testW, testC}, pixels(5, 0), ``), nil, 400, "more than the server's max batch 4"},
		{"huge batch", "POST", "/v2/models/tiny/infer", rawShape("100000000000,8,8,1"), nil, 400, "input shape [100000000000,8,8,1] holds 100000000000 samples, more than the server's max batch 4"},
		{"max int64 batch", "POST", "/v2/models/tiny/infer", rawShape("9223372036854775807,8,8,1"), nil, 400, "input shape [9223372036854775807,8,8,1] holds 9223372036854775807 samples, more than the server's max batch 4"},
		{"max int64 flat shape", "POST", "/v2/models/tiny/infer", rawShape("9223372036854775807,64"), nil, 400, "input shape [9223372036854775807,64] does not match the model's [N, 8, 8, 1]"},
		{"shape product overflows", "POST", "/v2/models/tiny/infer", rawShape("4611686018427387904,4611686018427387904,8,1"), nil, 400, "input shape [4611686018427387904,4611686018427387904,8,1] does not match the model's [N, 8, 8, 1]"},
		{"shape beyond int64", "POST", "/v2/models/tiny/infer", []byte(`{"inputs":[{"name":"input","shape":[99999999999999999999,8,8,1],"datatype":"UINT8","data":[1]}]}`), nil, 400, "input shape dimension 99999999999999999999 is too large (at most 9223372036854775807)"},
		{"UINT8 out of range", "POST", "/v2/models/tiny/infer", inferBody(t, "UINT8", []int{1, 1, 1, 1}, []int{300}, ``), nil, 400, "not an integer in 0..255"},
		{"wrong input name", "POST", "/v2/models/tiny/infer", bytes.Replace(good, []byte(`"name":"input"`), []byte(`"name":"x"`), 1), nil, 400, `unknown input "x"`},
		{"unknown output", "POST", "/v2/models/tiny/infer", inferBody(t, "UINT8", one, pixels(1, 0), `"outputs":[{"name":"logits"}],`), nil, 400, `unknown output "logits"`},
		{"output requested twice", "POST", "/v2/models/tiny/infer", inferBody(t, "UINT8", one, pixels(1, 0), `"outputs":[{"name":"class"},{"name":"probabilities"},{"name":"class","parameters":{"binary_data":true}}],`), nil, 400, `output "class" is requested twice`},
		{"unevenly nested data", "POST", "/v2/models/tiny/infer", inferBody(t, "UINT8", one, [][]int{pixels(1, 0), {}}, ``), nil, 400, `input "input": "data" is nested unevenly (arrays at depth 2 hold 64 and 0 elements); nest it as its shape [1,8,8,1] says, or send it flat`},
		{"data nested unlike the shape", "POST", "/v2/models/tiny/infer", inferBody(t, "UINT8", one, [][]int{pixels(1, 0)}, ``), nil, 400, `input "input": "data" is nested as [1,64] but the input's shape is [1,8,8,1]; nest it as the shape says, or send it flat`},
		{"unknown model", "POST", "/v2/models/nope/infer", good, nil, 404, `unknown model "nope"`},
		{"unknown model metadata", "GET", "/v2/models/nope", nil, nil, 404, `unknown model "nope"`},
		{"unknown version", "POST", "/v2/models/tiny/versions/9/infer", good, nil, 404, `no version "9"`},
		{"unknown version ready", "GET", "/v2/models/tiny/versions/9/ready", nil, nil, 404, `no version "9"`},
		{"bad image", "POST", "/v1/models/tiny:classify", []byte("GIF89a...."), nil, 400, "bad image: decode image: not a PNG or JPEG"},
		{"empty image", "POST", "/v1/models/tiny:classify", nil, nil, 400, "empty input"},
		{"truncated PNG", "POST", "/v1/models/tiny:classify", []byte("\x89PNG\r\n\x1a\nxx"), nil, 400, "bad image"},
		{"bad top", "POST", "/v1/models/tiny:classify?top=0", nil, nil, 400, "top must be a positive integer"},
		{"bad invert", "POST", "/v1/models/tiny:classify?invert=maybe", nil, nil, 400, `invert must be true or false (or 1 or 0), got "maybe"`},
		{"unknown classify parameter", "POST", "/v1/models/tiny:classify?top_k=3", nil, nil, 400, `unknown query parameter "top_k" (classify takes top and invert)`},
		{"classify unknown model", "POST", "/v1/models/nope:classify", nil, nil, 404, `unknown model "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if tc.code == 413 {
				r = ts.doEarly(t, tc.method, tc.path, tc.body)
			} else {
				r = ts.do(t, tc.method, tc.path, tc.body, tc.hdr...)
			}
			assert.Equal(t, tc.code, r.code, "body %s", r.body)
			assert.Contains(t, r.json(t)["error"], tc.want)
			// The server keeps serving.
			assert.Equal(t, 200, ts.do(t, "POST", "/v2/models/tiny/infer", good).code)
		})
	}
}

func TestAuth(t *testing.T) {
	ts := startServer(t, Config{AuthToken: "s3cret"}, singleModel(t))
	good := inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 0), ``)
	tests := []struct {
		name string
		hdr  []string
		code int
	}{
		{"no token", nil, 401},
		{"wrong token", []string{"Authorization", "Bearer nope"}, 401},
		{"prefix of token", []string{"Authorization", "Bearer s3cre"}, 401},
		{"basic scheme", []string{"Authorization", "Basic s3cret"}, 401},
		{"token without scheme", []string{"Authorization", "s3cret"}, 401},
		{"scheme without token", []string{"Authorization", "Bearer"}, 401},
		{"scheme and space without token", []string{"Authorization", "Bearer "}, 401},
		{"scheme glued to token", []string{"Authorization", "Bearers3cret"}, 401},
		{"longer scheme", []string{"Authorization", "Bearerx s3cret"}, 401},
		{"lower-case scheme, wrong token", []string{"Authorization", "bearer nope"}, 401},
		{"token case matters", []string{"Authorization", "Bearer S3CRET"}, 401},
		{"right token", []string{"Authorization", "Bearer s3cret"}, 200},
		{"lower-case scheme", []string{"Authorization", "bearer s3cret"}, 200},
		{"upper-case scheme", []string{"Authorization", "BEARER s3cret"}, 200},
		{"mixed-case scheme", []string{"Authorization", "bEaReR s3cret"}, 200},
		{"extra spaces", []string{"Authorization", "Bearer   s3cret "}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []string{"/v2", "/v2/models/tiny", "/metrics", "/v2/models/nope/ready", "/nowhere"} {
				r := ts.do(t, "GET", p, nil, tc.hdr...)
				if tc.code == 401 {
					assert.Equal(t, 401, r.code, p)
					assert.Equal(t, `Bearer realm="kiln"`, r.header.Get("WWW-Authenticate"), p)
				} else {
					assert.NotEqual(t, 401, r.code, p)
					assert.Empty(t, r.header.Get("WWW-Authenticate"), p)
				}
			}
			r := ts.do(t, "POST", "/v2/models/tiny/infer", good, tc.hdr...)
			assert.Equal(t, tc.code, r.code)
			if tc.code == 401 {
				assert.Contains(t, r.json(t)["error"], "bearer token")
				assert.Equal(t, `Bearer realm="kiln"`, r.header.Get("WWW-Authenticate"))
			}
		})
	}
	for _, p := range []string{"/v2/health/live", "/v2/health/ready"} {
		assert.Equal(t, 200, ts.do(t, "GET", p, nil).code, p)
		assert.Equal(t, 200, ts.do(t, "GET", p, nil, "Authorization", "Bearer nope").code, p)
	}
}

// servingVersion returns the serving version of the tiny model.
func servingVersion(t *testing.T, s *Server) *modelVersion {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	v := s.models["tiny"]
	require.NotNil(t, v)
	return v
}

// TestOverload holds the backend so nothing completes, fills the queue and
// checks that every further request is refused with 503 at once (it never
// blocks), that memory and goroutines stay flat however many requests are
// refused, then that every accepted request completes.
func TestOverload(t *testing.T) {
	const queue = 3
	ts := startServer(t, Config{MaxBatch: 1, QueueSize: queue}, singleModel(t))
	v := servingVersion(t, ts.s)
	good := inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 0), ``)

	ts.s.bmu.Lock()
	locked := true
	defer func() {
		if locked {
			ts.s.bmu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	accepted := make(chan int, queue+1)
	send := func(ch chan<- int) {
		defer wg.Done()
		ch <- ts.do(t, "POST", "/v2/models/tiny/infer", good).code
	}
	// One request is taken by the worker (blocked on the backend), then
	// the queue fills up.
	wg.Add(1)
	go send(accepted)
	require.Eventually(t, func() bool { return v.pending.Load() == 1 && len(v.queue) == 0 }, 10*time.Second, time.Millisecond)
	for i := range queue {
		wg.Add(1)
		go send(accepted)
		require.Eventually(t, func() bool { return len(v.queue) == i+1 }, 10*time.Second, time.Millisecond)
	}
	// Far more clients than the queue holds: all refused at once.
	const extra = 40
	refused := make(chan int, extra)
	var rg sync.WaitGroup
	for range extra {
		rg.Add(1)
		go func() {
			defer rg.Done()
			r := ts.do(t, "POST", "/v2/models/tiny/infer", good)
			if r.code == 503 {
				assert.Contains(t, r.json(t)["error"], "queue of 3 requests is full")
				assert.Equal(t, "1", r.header.Get("Retry-After"))
			}
			refused <- r.code
		}()
	}
	rg.Wait() // returns while the backend is still held: no refusal waited
	close(refused)
	for c := range refused {
		assert.Equal(t, 503, c)
	}
	assert.Equal(t, int64(queue+1), v.pending.Load())

	// Sustained overload: the same clients keep sending, still while the
	// backend is held. Refused requests leave nothing behind: the live
	// heap and the goroutine count after 50 more refusals per client equal
	// those after 5 (1 MiB of slack, i.e. < 600 B per refused request).
	overload := func(rounds int) []string {
		var mu sync.Mutex
		var bad []string
		var g sync.WaitGroup
		for range extra {
			g.Add(1)
			go func() {
				defer g.Done()
				for range rounds {
					r, err := ts.try(ts.client, "POST", "/v2/models/tiny/infer", good)
					if err != nil || r.code != 503 {
						mu.Lock()
						bad = append(bad, fmt.Sprintf("%d %v", r.code, err))
						mu.Unlock()
					}
				}
			}()
		}
		g.Wait()
		return bad
	}
	require.Empty(t, overload(5))
	heap0, gor0 := heapAfterGC(), runtime.NumGoroutine()
	require.Empty(t, overload(50))
	heap1, gor1 := heapAfterGC(), runtime.NumGoroutine()
	t.Logf("%d refusals: live heap %d -> %d bytes, goroutines %d -> %d", 50*extra, heap0, heap1, gor0, gor1)
	assert.Less(t, heap1, heap0+1<<20, "live heap grew under overload")
	assert.LessOrEqual(t, gor1, gor0+extra/4, "goroutines grew under overload")
	assert.Equal(t, int64(queue+1), v.pending.Load(), "refused requests must not count as accepted")
	assert.Len(t, v.queue, queue)
	ts.s.bmu.Unlock()
	locked = false
	wg.Wait()
	close(accepted)
	n := 0
	for c := range accepted {
		assert.Equal(t, 200, c)
		n++
	}
	assert.Equal(t, queue+1, n)
}

// TestDeadline: a request whose deadline passes while it waits gets 504
// at its deadline, whether it is still in the queue or already gathered
// into a batch that waits for the backend (held here, as another model's
// batch or a model loading holds it): both answers arrive while the
// backend is still held. The batch then skips the abandoned request and
// the server serves on.
func TestDeadline(t *testing.T) {
	ts := startServer(t, Config{MaxBatch: 1, Timeout: 250 * time.Millisecond}, singleModel(t))
	good := inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 0), ``)
	ts.s.bmu.Lock()
	codes := make(chan response, 1)
	v := servingVersion(t, ts.s)
	go func() { codes <- ts.do(t, "POST", "/v2/models/tiny/infer", good) }()
	require.Eventually(t, func() bool { return v.pending.Load() == 1 && len(v.queue) == 0 && ts.s.bwait.Load() == 1 }, 10*time.Second, time.Millisecond,
		"the first request is gathered and its batch waits for the backend")
	// The second waits in the queue behind it until its deadline.
	r := ts.do(t, "POST", "/v2/models/tiny/infer", good)
	assert.Equal(t, 504, r.code)
	assert.Contains(t, r.json(t)["error"], "deadline exceeded")
	first := <-codes
	assert.Equal(t, 504, first.code, "%s", first.body)
	assert.Contains(t, first.json(t)["error"], "deadline exceeded")
	ts.s.bmu.Unlock()
	assert.Equal(t, 200, ts.do(t, "POST", "/v2/models/tiny/infer", good).code)
	require.Eventually(t, func() bool { return v.pending.Load() == 0 && ts.s.bwait.Load() == 0 }, 10*time.Second, time.Millisecond)
}

// TestInlineGuards: the inline path answers a request whose deadline has
// passed as the batcher would (504), and does not run while a batcher
// waits for the backend (that batch was there first).
func TestInlineGuards(t *testing.T) {
	ts := startServer(t, Config{MaxBatch: 4}, singleModel(t))
	v := servingVersion(t, ts.s)
	task := func(deadline time.Time) *task {
		tk := ts.s.newTask(v, 1, time.Second)
		tk.deadline = deadline
		return tk
	}
	ran, err := v.runInline(&ts.s.bmu, task(time.Now().Add(-time.Millisecond)))
	assert.True(t, ran)
	assert.ErrorIs(t, err, errDeadline)
	assert.True(t, ts.s.bmu.TryLock(), "the backend lock is released")
	ts.s.bmu.Unlock()

	ts.s.bwait.Add(1)
	ran, _ = v.runInline(&ts.s.bmu, task(time.Now().Add(time.Minute)))
	assert.False(t, ran, "a batcher waits for the backend")
	ts.s.bwait.Add(-1)
	ran, err = v.runInline(&ts.s.bmu, task(time.Now().Add(time.Minute)))
	assert.True(t, ran)
	assert.NoError(t, err)
}

// TestBackendPanic: a panic in the backend during inference answers that
// request 500 and is logged, on the inline path and on the batcher's, and
// leaves the backend lock free: the next request is answered 200.
func TestBackendPanic(t *testing.T) {
	pb := &panickyBackend{Backend: cpu.New()}
	var logBuf syncBuffer
	ts := startServerOn(t, pb, Config{MaxBatch: 4, Timeout: 10 * time.Second, Log: &logBuf}, singleModel(t))
	v := servingVersion(t, ts.s)
	good := inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 0), ``)

	// Inline: the backend is free.
	pb.arm.Store(1)
	r := ts.do(t, "POST", "/v2/models/tiny/infer", good)
	assert.Equal(t, 500, r.code)
	assert.Contains(t, r.json(t)["error"], "backend panic: injected")
	assert.Equal(t, 200, ts.do(t, "POST", "/v2/models/tiny/infer", good).code)

	// Batched: hold the backend so the request queues for the batcher.
	pb.arm.Store(1)
	ts.s.bmu.Lock()
	got := make(chan response, 1)
	go func() { got <- ts.do(t, "POST", "/v2/models/tiny/infer", good) }()
	require.Eventually(t, func() bool { return v.pending.Load() == 1 }, 10*time.Second, time.Millisecond)
	ts.s.bmu.Unlock()
	r = <-got
	assert.Equal(t, 500, r.code)
	assert.Contains(t, r.json(t)["error"], "backend panic: injected")
	assert.Equal(t, 200, ts.do(t, "POST", "/v2/models/tiny/infer", good).code)
	assert.True(t, ts.s.bmu.TryLock(), "the backend lock is free")
	ts.s.bmu.Unlock()
	assert.Equal(t, 2, strings.Count(logBuf.String(), "backend panic during inference"), logBuf.String())
}

// panickyBackend panics once in Softmax each time the test arms it.
type panickyBackend struct {
	*cpu.Backend
	arm atomic.Int32
}

func (b *panickyBackend) Softmax(x, y backend.Buffer, rows, cols int) error {
	if b.arm.CompareAndSwap(1, 0) {
		panic("injected")
	}
	return b.Backend.Softmax(x, y, rows, cols)
}

// TestShutdownFinishesInFlight: requests accepted before Shutdown are all
// answered 200; Shutdown waits for them; afterwards nothing is accepted.
func TestShutdownFinishesInFlight(t *testing.T) {
	const n = 12
	ts := startServer(t, Config{MaxBatch: 4, QueueSize: 64}, singleModel(t))
	v := servingVersion(t, ts.s)
	good := inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 0), ``)
	ts.s.bmu.Lock()
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- ts.do(t, "POST", "/v2/models/tiny/infer", good).code
		}()
	}
	require.Eventually(t, func() bool { return v.pending.Load() == n }, 10*time.Second, time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- ts.s.Shutdown(context.Background()) }()
	require.Eventually(t, func() bool { return !ts.s.ready.Load() }, 10*time.Second, time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with %d requests in flight", err, v.pending.Load())
	default:
	}
	ts.s.bmu.Unlock()
	wg.Wait()
	require.NoError(t, <-done)
	ts.closed = true
	close(codes)
	for c := range codes {
		assert.Equal(t, 200, c)
	}
	_, err := http.Post(ts.base+"/v2/models/tiny/infer", "application/json", bytes.NewReader(good))
	assert.Error(t, err, "a request after shutdown must not be accepted")
}

// TestSIGTERMUnderLoad: clients keep sending while the process receives
// SIGTERM, handled as kiln serve handles it (signal.NotifyContext, then
// Shutdown with a grace period; cmd/kiln's TestServeCommand checks that
// wiring in the command itself). When the signal arrives every client has
// a request accepted and held in the batcher. Afterwards: every request
// the server accepted (its handler ran) reached its client as a 200, no
// client got an error status, and requests failed only by not getting a
// connection once shutdown had begun.
func TestSIGTERMUnderLoad(t *testing.T) {
	const clients = 8
	ts := startServer(t, Config{MaxBatch: 4, QueueSize: 256}, singleModel(t))
	v := servingVersion(t, ts.s)
	good := inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 0), ``)

	sigCtx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stopSignals()
	shutdown := make(chan error, 1)
	go func() {
		<-sigCtx.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shutdown <- ts.s.Shutdown(ctx)
	}()

	var signalled, stop atomic.Bool
	var ok, unconnected atomic.Int64
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One keep-alive connection per client, as a load tool has.
			c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{}}
			defer c.CloseIdleConnections()
			for !stop.Load() {
				r, err := ts.try(c, "POST", "/v2/models/tiny/infer", good)
				switch {
				case err == nil && r.code == 200:
					ok.Add(1)
					continue
				case err != nil && signalled.Load():
					unconnected.Add(1) // the listener is closed: expected
					return
				}
				mu.Lock()
				bad = append(bad, fmt.Sprintf("code %d, error %v, body %s", r.code, err, r.body))
				mu.Unlock()
				return
			}
		}()
	}
	require.Eventually(t, func() bool { return ok.Load() >= 50 }, 30*time.Second, time.Millisecond)
	// Hold the backend until every client has a request in flight.
	ts.s.bmu.Lock()
	locked := true
	defer func() {
		if locked {
			ts.s.bmu.Unlock()
		}
	}()
	require.Eventually(t, func() bool { return v.pending.Load() == clients }, 30*time.Second, time.Millisecond)
	signalled.Store(true)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	require.Eventually(t, func() bool { return !ts.s.ready.Load() }, 30*time.Second, time.Millisecond)
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) with %d accepted requests unanswered", err, v.pending.Load())
	default:
	}
	ts.s.bmu.Unlock()
	locked = false
	select {
	case err := <-shutdown:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("Shutdown did not return")
	}
	ts.closed = true
	stop.Store(true)
	wg.Wait()
	assert.Empty(t, bad)
	accepted := inferRequests(t, ts.s)
	t.Logf("%d requests accepted and answered, %d clients found the listener closed", accepted, unconnected.Load())
	assert.Equal(t, int64(accepted), ok.Load(), "every accepted request must reach its client as a 200")
	assert.GreaterOrEqual(t, accepted, 50+clients)
}

// TestHotReload swaps versions under load (four clients sending without
// pause): no request fails or goes missing, a new version takes over, the
// replaced one is retired once its requests are answered, and a broken one
// is reported while the old keeps serving.
func TestHotReload(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, filepath.Join(repo, "tiny", "1", ModelFileName), 1)
	require.NoError(t, os.MkdirAll(filepath.Join(repo, "tiny", "notaversion"), 0o755))
	var logBuf syncBuffer
	ts := startServer(t, Config{MaxBatch: 8, QueueSize: 1024, Log: &logBuf}, func(s *Server) error { return s.LoadRepo(repo) })
	good := inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 0), ``)

	var stop atomic.Bool
	var mu sync.Mutex
	seen := map[string]int{}
	var failures []string
	answered := 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				r, err := ts.try(ts.client, "POST", "/v2/models/tiny/infer", good)
				mu.Lock()
				if err != nil || r.code != 200 {
					failures = append(failures, fmt.Sprintf("%d %s %v", r.code, r.body, err))
				} else {
					answered++
					var m struct {
						V string `json:"model_version"`
					}
					_ = json.Unmarshal(r.body, &m)
					seen[m.V]++
				}
				mu.Unlock()
			}
		}()
	}
	waitSeen := func(ver string) {
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return seen[ver] > 0
		}, 30*time.Second, time.Millisecond)
	}
	waitSeen("1")
	v1 := servingVersion(t, ts.s)
	// A half-written version (no model file yet) is ignored.
	require.NoError(t, os.MkdirAll(filepath.Join(repo, "tiny", "2"), 0o755))
	require.NoError(t, ts.s.Poll())
	writeModel(t, filepath.Join(repo, "tiny", "2", ModelFileName), 2)
	require.NoError(t, ts.s.Poll())
	waitSeen("2")
	select { // the replaced version is retired once its requests are answered
	case <-v1.done:
	case <-time.After(30 * time.Second):
		t.Fatal("version 1 was not retired")
	}
	// A broken version 3 is reported; version 2 keeps serving.
	require.NoError(t, os.MkdirAll(filepath.Join(repo, "tiny", "3"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "tiny", "3", ModelFileName), []byte("not a model"), 0o644))
	err := ts.s.Poll()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "model tiny version 3")
	assert.NoError(t, ts.s.Poll(), "a known-bad file is not retried until it changes")
	mu.Lock()
	seen = map[string]int{}
	mu.Unlock()
	waitSeen("2")
	stop.Store(true)
	wg.Wait()
	assert.Empty(t, failures)
	// No request was dropped: the server answered exactly the requests
	// the clients got 200s for.
	assert.Equal(t, answered, inferRequests(t, ts.s))
	mu.Lock()
	assert.Zero(t, seen["3"])
	mu.Unlock()
	m := ts.do(t, "GET", "/v2/models/tiny", nil).json(t)
	assert.Equal(t, []any{"2"}, m["versions"])
	assert.Contains(t, logBuf.String(), "version 2 keeps serving")
	metrics := string(ts.do(t, "GET", "/metrics", nil).body)
	assert.Contains(t, metrics, `kiln_model_load_failures_total{model="tiny"} 1`)
	assert.Contains(t, metrics, `kiln_model_loads_total{model="tiny"} 2`)

	// Removing the model directory unloads it.
	require.NoError(t, os.RemoveAll(filepath.Join(repo, "tiny")))
	require.NoError(t, ts.s.Poll())
	assert.Equal(t, 404, ts.do(t, "POST", "/v2/models/tiny/infer", good).code)
}

func TestConfigAndLoadErrors(t *testing.T) {
	b := cpu.New()
	defer b.Close()
	_, err := New(nil, Config{})
	assert.ErrorContains(t, err, "no backend")
	_, err = New(b, Config{MaxBatch: -1})
	assert.ErrorContains(t, err, "max batch")
	s, err := New(b, Config{})
	require.NoError(t, err)
	assert.ErrorContains(t, s.AddModel("bad name!", "x"), "invalid model name")
	assert.ErrorContains(t, s.AddModel("m", filepath.Join(t.TempDir(), "missing.kiln")), "no such file")
	assert.ErrorContains(t, s.LoadRepo(t.TempDir()), "no model found")
	require.NoError(t, s.Shutdown(context.Background()))
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestParseModelPath(t *testing.T) {
	tests := []struct {
		rest, name, ver, action string
		ok                      bool
	}{
		{"tiny", "tiny", "", "", true},
		{"tiny/ready", "tiny", "", "ready", true},
		{"tiny/infer", "tiny", "", "infer", true},
		{"tiny/versions/1", "tiny", "1", "", true},
		{"tiny/versions/1/infer", "tiny", "1", "infer", true},
		{"tiny/versions/12/ready", "tiny", "12", "ready", true},
		{"tiny/versions/ready", "tiny", "ready", "", true},
		{"", "", "", "", false},
		{"/infer", "", "", "", false},
		{"tiny/", "", "", "", false},
		{"tiny/versions", "", "", "", false},
		{"tiny/versions/", "", "", "", false},
		{"tiny/versions//infer", "", "", "", false},
		{"tiny/versions/1/", "", "", "", false},
		{"tiny/versions/1/infer/x", "", "", "", false},
		{"tiny/versions/versions/1", "", "", "", false},
		{"tiny/ready/x", "", "", "", false},
		{"tiny/metadata", "", "", "", false},
	}
	for _, tc := range tests {
		name, ver, action, ok := parseModelPath(tc.rest)
		assert.Equal(t, []any{tc.name, tc.ver, tc.action, tc.ok}, []any{name, ver, action, ok}, tc.rest)
	}
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _, _, _ = parseModelPath("tiny/versions/1/infer") }))
}

// TestInlineAndBatchedAgree: a request run inline and one run by the
// batcher get the same answer, and after each (the queue then empty) the
// server lets the backend's threads sleep.
func TestInlineAndBatchedAgree(t *testing.T) {
	rb := &restingBackend{Backend: cpu.New()}
	ts := startServerOn(t, rb, Config{MaxBatch: 4}, singleModel(t))
	v := servingVersion(t, ts.s)
	body := inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 3), ``)
	_, batches0 := histSum(t, ts.s, "kiln_batch_size")

	r0 := rb.rests.Load()
	inline := probsOf(t, ts.do(t, "POST", "/v2/models/tiny/infer", body))
	r1 := rb.rests.Load()
	assert.Equal(t, int32(1), r1-r0, "one rest after an inline run")

	// With the backend held, the request must queue for the batcher.
	ts.s.bmu.Lock()
	got := make(chan response, 1)
	go func() {
		r, err := ts.try(ts.client, "POST", "/v2/models/tiny/infer", body)
		assert.NoError(t, err)
		got <- r
	}()
	require.Eventually(t, func() bool { return v.pending.Load() == 1 }, 10*time.Second, time.Millisecond)
	ts.s.bmu.Unlock()
	batched := probsOf(t, <-got)
	assert.Equal(t, int32(1), rb.rests.Load()-r1, "one rest after the batcher's run")

	assert.Equal(t, inline, batched)
	_, batches1 := histSum(t, ts.s, "kiln_batch_size")
	assert.Equal(t, uint64(2), batches1-batches0)
}

// restingBackend counts the Rest hints the server gives its backend.
type restingBackend struct {
	*cpu.Backend
	rests atomic.Int32
}

func (b *restingBackend) Rest() { b.rests.Add(1); b.Backend.Rest() }

// TestNoRestWhileAnotherBatchWaits checks that a batcher does not let the
// backend's threads sleep while another model's batcher waits for the
// backend with a batch: of two batches queued at once, only the second
// rests it.
func TestNoRestWhileAnotherBatchWaits(t *testing.T) {
	rb := &restingBackend{Backend: cpu.New()}
	dir := t.TempDir()
	ts := startServerOn(t, rb, Config{MaxBatch: 4}, func(s *Server) error {
		for _, name := range []string{"a", "b"} {
			path := filepath.Join(dir, name+".kiln")
			writeModel(t, path, 1)
			if err := s.AddModel(name, path); err != nil {
				return err
			}
		}
		return nil
	})
	s := ts.s
	body := inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 3), ``)

	s.bmu.Lock()
	r0 := rb.rests.Load()
	done := make(chan response, 2)
	for _, name := range []string{"a", "b"} {
		go func() {
			r, err := ts.try(ts.client, "POST", "/v2/models/"+name+"/infer", body)
			assert.NoError(t, err)
			done <- r
		}()
	}
	require.Eventually(t, func() bool { return s.bwait.Load() == 2 }, 10*time.Second, time.Millisecond,
		"both batchers wait for the backend")
	s.bmu.Unlock()
	for range 2 {
		assert.Equal(t, 200, (<-done).code)
	}
	assert.Equal(t, int32(1), rb.rests.Load()-r0, "only the last batch rests the backend")
}

// TestBrokenRepoModel: a repository model whose only version cannot load is
// reported, the others serve, and requests for it say why it is missing
// (until a good version appears).
func TestBrokenRepoModel(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, filepath.Join(repo, "tiny", "1", ModelFileName), 1)
	bad := filepath.Join(repo, "fm", "1", ModelFileName)
	require.NoError(t, os.MkdirAll(filepath.Dir(bad), 0o755))
	require.NoError(t, os.WriteFile(bad, []byte("not a model"), 0o644))
	var logBuf syncBuffer
	var loadErr error
	ts := startServer(t, Config{MaxBatch: 4, Log: &logBuf}, func(s *Server) error {
		loadErr = s.LoadRepo(repo)
		return nil
	})
	require.Error(t, loadErr)
	assert.Contains(t, loadErr.Error(), "model fm version 1")
	assert.Equal(t, 1, strings.Count(logBuf.String(), "model fm version 1"), "logged once: %s", logBuf.String())
	body := inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 0), ``)
	assert.Equal(t, 200, ts.do(t, "POST", "/v2/models/tiny/infer", body).code)
	r := ts.do(t, "POST", "/v2/models/fm/infer", body)
	assert.Equal(t, 404, r.code)
	assert.Contains(t, string(r.body), `model \"fm\" is not loaded: version 1 failed to load (the server log says why)`)
	assert.NotContains(t, string(r.body), repo, "no server paths to clients")
	r = ts.do(t, "POST", "/v2/models/nope/infer", body)
	assert.Contains(t, string(r.body), `unknown model \"nope\"`)

	// a good version 2 replaces the message with a serving model
	writeModel(t, filepath.Join(repo, "fm", "2", ModelFileName), 2)
	require.NoError(t, ts.s.Poll())
	assert.Equal(t, 200, ts.do(t, "POST", "/v2/models/fm/infer", body).code)
}

// TestBodyLimitBelowOneInputWarns: a body limit smaller than one input of a
// model (binary UINT8, its most compact form) is logged when the model
// loads, and its requests are refused with 413 naming the limit.
func TestBodyLimitBelowOneInputWarns(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		warn  bool
	}{
		{"below one input", testH*testW*testC - 1, true},
		{"one input but no room for a header", testH*testW*testC + 50, true},
		{"roomy", 64 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logBuf syncBuffer
			ts := startServer(t, Config{MaxBatch: 4, MaxBodyBytes: tc.limit, Log: &logBuf}, singleModel(t))
			if !tc.warn {
				assert.NotContains(t, logBuf.String(), "request body limit")
				return
			}
			assert.Contains(t, logBuf.String(), fmt.Sprintf("warning: model tiny: one input is %d values (%d bytes as binary UINT8", testH*testW*testC, testH*testW*testC))
			assert.Contains(t, logBuf.String(), fmt.Sprintf("the request body limit is %d bytes", tc.limit))
			r := ts.do(t, "POST", "/v2/models/tiny/infer", inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 0), ``))
			assert.Equal(t, 413, r.code, string(r.body))
		})
	}
}

// TestClassifyInvertValues: invert takes exactly what strconv.ParseBool
// accepts, and anything else is answered 400 naming the parameter and the
// value (fasthttp's Args.GetBool took "yes" as true and "maybe" as false).
func TestClassifyInvertValues(t *testing.T) {
	ts := startServer(t, Config{MaxBatch: 4}, singleModel(t))
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = 255 - uint8(i) // dark on light
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	classify := func(t *testing.T, query string) response {
		t.Helper()
		return ts.do(t, "POST", "/v1/models/tiny:classify?top=3"+query, buf.Bytes(), "Content-Type", "image/png")
	}
	scores := func(t *testing.T, r response) []prediction {
		t.Helper()
		require.Equal(t, 200, r.code, "%s", r.body)
		var out struct {
			Predictions []prediction `json:"predictions"`
		}
		require.NoError(t, json.Unmarshal(r.body, &out))
		return out.Predictions
	}
	plain, inverted := scores(t, classify(t, "")), scores(t, classify(t, "&invert=true"))
	require.NotEqual(t, plain, inverted, "the test image must classify differently inverted")
	for _, tc := range []struct {
		value string
		want  []prediction // nil: refused
	}{
		{"true", inverted}, {"TRUE", inverted}, {"True", inverted}, {"t", inverted}, {"T", inverted}, {"1", inverted},
		{"false", plain}, {"FALSE", plain}, {"False", plain}, {"f", plain}, {"F", plain}, {"0", plain},
		{"maybe", nil}, {"yes", nil}, {"y", nil}, {"no", nil}, {"on", nil}, {"2", nil}, {"tRUE", nil}, {"", nil}, {"%20true", nil},
	} {
		t.Run("invert="+tc.value, func(t *testing.T) {
			r := classify(t, "&invert="+tc.value)
			if tc.want == nil {
				assert.Equal(t, 400, r.code, "%s", r.body)
				val, err := url.QueryUnescape(tc.value)
				require.NoError(t, err)
				assert.Equal(t, fmt.Sprintf("invert must be true or false (or 1 or 0), got %q", val), r.json(t)["error"])
				return
			}
			assert.Equal(t, tc.want, scores(t, r))
		})
	}
}

// TestHTTPLogger: fasthttp's messages go to the server log prefixed
// "http: ", a body over the limit (already answered 413) is not logged,
// and at most one message a second is, the next one logged counting those
// dropped meanwhile, or flush (at Shutdown) when none follows.
func TestHTTPLogger(t *testing.T) {
	var buf bytes.Buffer
	l := newHTTPLogger(&buf, time.Second)
	t0 := time.Date(2026, 12, 2, 3, 48, 33, 0, time.UTC)
	now := t0
	l.now = func() time.Time { return now }
	local, remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8000}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 18470}
	conn := func(err error) []any { return []any{local, remote, err} }
	steps := []struct {
		at     time.Duration
		format string
		args   []any
		want   string // the line written, "" for none
	}{
		{0, connErrorFormat, conn(fasthttp.ErrBodyTooLarge), ""},
		{0, connErrorFormat, conn(fmt.Errorf("reading body: %w", fasthttp.ErrBodyTooLarge)), ""},
		{0, "error: %s", []any{"fasthttp: body size exceeds the given limit"}, ""},
		{0, connErrorFormat, conn(errors.New("error when reading request headers: bad")),
			"http: closed the connection from 10.0.0.7:18470: error when reading request headers: bad\n"},
		{500 * time.Millisecond, connErrorFormat, conn(errors.New("second")), ""},
		{900 * time.Millisecond, "Timeout error when accepting new connections: %v\n", []any{"third"}, ""},
		{900 * time.Millisecond, connErrorFormat, conn(fasthttp.ErrBodyTooLarge), ""},
		{1200 * time.Millisecond, "Permanent error when accepting new connections: %v\n", []any{"fourth"},
			"http: Permanent error when accepting new connections: fourth (2 more HTTP server messages in the last 1.2s were not logged: at most one is logged per 1s)\n"},
		{2500 * time.Millisecond, connErrorFormat, conn(errors.New("fifth")), "http: closed the connection from 10.0.0.7:18470: fifth\n"},
	}
	for i, st := range steps {
		now = t0.Add(st.at)
		before := buf.Len()
		l.Printf(st.format, st.args...)
		assert.Equal(t, st.want, buf.String()[before:], "step %d", i)
	}
	// a count no later message carries is written by flush (at Shutdown),
	// once; with nothing dropped flush writes nothing
	now = t0.Add(2700 * time.Millisecond)
	l.Printf(connErrorFormat, conn(errors.New("sixth"))...)
	now = t0.Add(3 * time.Second)
	before := buf.Len()
	l.flush()
	assert.Equal(t, "http: 1 more HTTP server messages in the last 500ms were not logged: at most one is logged per 1s\n", buf.String()[before:])
	before = buf.Len()
	l.flush()
	assert.Equal(t, "", buf.String()[before:], "flush with nothing dropped")
}

// rawRequest sends raw on a new connection to ts and reads the answer
// until the server closes the connection (fasthttp logs a connection's
// error before it closes it).
func rawRequest(t *testing.T, ts *testServer, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	_, err = io.WriteString(c, raw)
	require.NoError(t, err)
	b, err := io.ReadAll(c)
	require.NoError(t, err)
	return string(b)
}

// TestHTTPErrorsLogged: a served request refused for its body size leaves
// nothing in the log (fasthttp printed a raw "error when serving
// connection ... body size exceeds the given limit" line to stderr for
// each), and a client sending malformed requests gets them logged at most
// once a second.
func TestHTTPErrorsLogged(t *testing.T) {
	var logBuf syncBuffer
	ts := startServer(t, Config{MaxBatch: 4, MaxBodyBytes: 100, Log: &logBuf}, singleModel(t))
	httpLines := func() []string {
		var lines []string
		for _, l := range strings.Split(logBuf.String(), "\n") {
			if strings.HasPrefix(l, "http: ") {
				lines = append(lines, l)
			}
		}
		return lines
	}
	for range 5 {
		r := rawRequest(t, ts, "POST /v2/models/tiny/infer HTTP/1.1\r\nHost: kiln\r\nContent-Length: 1000\r\n\r\n")
		assert.True(t, strings.HasPrefix(r, "HTTP/1.1 413 "), r)
		assert.Contains(t, r, `{"error":"request body is larger than the limit of 100 bytes"}`)
	}
	assert.Empty(t, httpLines())
	assert.NotContains(t, logBuf.String(), "body size")

	start := time.Now()
	const n = 10
	for range n {
		r := rawRequest(t, ts, "GARBAGE\r\n\r\n")
		assert.True(t, strings.HasPrefix(r, "HTTP/1.1 400 "), r)
	}
	elapsed := time.Since(start)
	lines := httpLines()
	require.NotEmpty(t, lines, "log:\n%s", logBuf.String())
	assert.Regexp(t, `^http: closed the connection from 127\.0\.0\.1:\d+: error when reading request headers: cannot find http request method`, lines[0])
	assert.LessOrEqual(t, len(lines), 1+int(elapsed/time.Second), "log:\n%s", logBuf.String())
	if elapsed < time.Second {
		assert.Len(t, lines, 1)
	}
	for _, l := range lines[1:] {
		assert.Contains(t, l, "were not logged: at most one is logged per 1s")
	}
	assert.Equal(t, 200, ts.do(t, "GET", "/v2/health/live", nil).code)
}

// rawShape is an infer request body for one UINT8 input with the given
// shape, written out as JSON digits (values past a 32-bit int stay in the
// text, so the test builds on every platform).
func rawShape(shape string) []byte {
	return []byte(`{"inputs":[{"name":"input","shape":[` + shape + `],"datatype":"UINT8","data":[1]}]}`)
}
