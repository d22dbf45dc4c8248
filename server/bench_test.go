package server

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/backend/cpu"
	"github.com/kiln-ml/kiln/engine"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// The overhead benchmarks serve MNIST-shaped models (28×28×1 input, 10
// classes): "dense" (flatten → dense softmax), whose engine call takes a
// few microseconds so that the server's own cost is not buried in the
// model's, and "reference" (the reference CNN, 140,682 parameters).
const benchH, benchW, benchC, benchClasses = 28, 28, 1, 10

func benchModels() []struct {
	name string
	spec engine.Spec
} {
	return []struct {
		name string
		spec engine.Spec
	}{
		{"dense", engine.Spec{Name: "dense", Input: []int{benchH, benchW, benchC}, Layers: []engine.LayerSpec{
			{Type: "flatten"}, {Type: "dense", Units: benchClasses, Activation: "softmax"},
		}}},
		{"reference", engine.ReferenceSpec(benchH, benchW, benchC, benchClasses)},
	}
}

// writeBenchModel saves spec with random weights under dir.
func writeBenchModel(b *testing.B, dir string, spec engine.Spec) string {
	b.Helper()
	path := filepath.Join(dir, spec.Name+".kiln")
	be := cpu.New()
	defer be.Close()
	m, err := engine.New(be, spec, 1)
	require.NoError(b, err)
	defer m.Close()
	require.NoError(b, m.Save(path, engine.ModelMeta{Scale: 1.0 / 255}))
	return path
}

// benchPixels is one raw 28×28×1 image.
func benchPixels() []byte {
	px := make([]byte, benchH*benchW*benchC)
	for i := range px {
		px[i] = byte(i * 37 % 256)
	}
	return px
}

// benchBody is an infer request for px: JSON, or the binary tensor data
// extension (binary input and binary outputs). It returns the body and,
// for binary, the JSON header length.
func benchBody(px []byte, bin bool) ([]byte, int) {
	shape := fmt.Sprintf("[1,%d,%d,%d]", benchH, benchW, benchC)
	if bin {
		hdr := fmt.Sprintf(`{"id":"bench","inputs":[{"name":"input","shape":%s,"datatype":"UINT8","parameters":{"binary_data_size":%d}}],"parameters":{"binary_data_output":true}}`, shape, len(px))
		return append([]byte(hdr), px...), len(hdr)
	}
	vals := make([]byte, 0, 4*len(px))
	for i, p := range px {
		if i > 0 {
			vals = append(vals, ',')
		}
		vals = strconv.AppendInt(vals, int64(p), 10)
	}
	return fmt.Appendf(nil, `{"id":"bench","inputs":[{"name":"input","shape":%s,"datatype":"UINT8","data":[%s]}]}`, shape, vals), 0
}

// servedProbs extracts the probabilities from an infer response.
func servedProbs(resp *fasthttp.Response) ([]float32, error) {
	body := resp.Body()
	if hl := resp.Header.Peek("Inference-Header-Content-Length"); hl != nil {
		n, err := strconv.Atoi(string(hl))
		if err != nil || n > len(body) {
			return nil, fmt.Errorf("bad Inference-Header-Content-Length %q", hl)
		}
		raw := body[n:]
		out := make([]float32, benchClasses)
		if len(raw) < 4*benchClasses {
			return nil, fmt.Errorf("binary part holds %d bytes", len(raw))
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out, nil
	}
	var r struct {
		Outputs []struct {
			Name string    `json:"name"`
			Data []float32 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	for _, o := range r.Outputs {
		if o.Name == OutputProbabilities {
			return o.Data, nil
		}
	}
	return nil, fmt.Errorf("no probabilities in %s", body)
}

// histSum returns the sum and count of a histogram of the server's
// registry (all label values together).
func histSum(b testing.TB, s *Server, name string) (float64, uint64) {
	b.Helper()
	mfs, err := s.met.reg.Gather()
	require.NoError(b, err)
	var sum float64
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetHistogram().GetSampleSum()
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return sum, n
}

func median(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2]) / float64(time.Microsecond)
}

// BenchmarkServedOverhead measures the per-request overhead of serving at
// low load: one client, sequential requests, a real loopback listener and
// a fasthttp client. Each iteration makes, in turn, (1) the direct engine
// call on the served model itself (batch 1, same input, under the server's
// backend lock), (2) the same inference as an HTTP infer request, and (3)
// GET /v2/health/live, the cheapest round trip through the same client,
// connection and server. Alternating the three keeps machine noise common
// to all. Reported (medians over all iterations, µs):
//
//	engine-µs/op    the direct engine call
//	served-µs/op    the infer request as the client sees it
//	overhead-µs/op  served − engine: everything serving adds, client included
//	http-µs/op      the GET round trip (client, loopback, fasthttp)
//	server-µs/op    overhead − http: what the infer path adds beyond a bare
//	                round trip (body decode, checks, batcher hand-off,
//	                response encoding, the bigger body's copies)
//	handler-µs/op   mean time inside the infer handler not spent in the
//	                backend call (from the server's own histograms)
//
// Variants: JSON or binary tensor data (binary input, binary outputs), and
// --max-queue-delay 0 or 500 µs; with a delay, a lone request waits the
// whole delay for company that never comes.
func BenchmarkServedOverhead(b *testing.B) {
	dir := b.TempDir()
	for _, m := range benchModels() {
		path := writeBenchModel(b, dir, m.spec)
		for _, c := range []struct {
			name  string
			bin   bool
			delay time.Duration
		}{
			{"json/delay=0", false, 0},
			{"binary/delay=0", true, 0},
			{"json/delay=500us", false, 500 * time.Microsecond},
		} {
			b.Run(m.name+"/"+c.name, func(b *testing.B) { benchOverhead(b, path, c.bin, c.delay) })
		}
	}
}

func benchOverhead(b *testing.B, path string, bin bool, delay time.Duration) {
	be := cpu.New()
	defer be.Close()
	s, err := New(be, Config{MaxBatch: 64, MaxQueueDelay: delay})
	require.NoError(b, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	go func() { _ = s.Serve(ln) }()
	defer func() { require.NoError(b, s.Shutdown(context.Background())) }()
	require.NoError(b, s.AddModel("m", path))
	require.NoError(b, s.SetReady())
	s.mu.RLock()
	v := s.models["m"]
	s.mu.RUnlock()

	px := benchPixels()
	images := make([]float32, len(px))
	for i, p := range px {
		images[i] = float32(p) * float32(v.meta.Scale)
	}
	probs := make([]float32, v.classes)
	direct := func() error {
		s.bmu.Lock()
		defer s.bmu.Unlock()
		defer s.rest() // as the server does after a batch when idle
		return v.model.Predict(images, 1, probs)
	}

	addr := ln.Addr().String()
	c := &fasthttp.HostClient{Addr: addr, MaxConns: 1, ReadTimeout: 10 * time.Second}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + "/v2/models/m/infer")
	req.Header.SetMethod(fasthttp.MethodPost)
	body, hdrLen := benchBody(px, bin)
	if bin {
		req.Header.Set("Inference-Header-Content-Length", strconv.Itoa(hdrLen))
		req.Header.SetContentType("application/octet-stream")
	} else {
		req.Header.SetContentType("application/json")
	}
	req.SetBody(body)
	live, liveResp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(live)
	defer fasthttp.ReleaseResponse(liveResp)
	live.SetRequestURI("http://" + addr + "/v2/health/live")

	// The served answer must be the direct one: same model, same input.
	require.NoError(b, direct())
	require.NoError(b, c.Do(req, resp))
	require.Equal(b, fasthttp.StatusOK, resp.StatusCode(), "%s", resp.Body())
	got, err := servedProbs(resp)
	require.NoError(b, err)
	require.InDeltaSlice(b, probs, got, 1e-6)

	h0, n0 := histSum(b, s, "kiln_request_duration_seconds")
	c0, _ := histSum(b, s, "kiln_compute_duration_seconds")
	var eng, srv, rt []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := direct(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != fasthttp.StatusOK {
			b.Fatalf("infer: %v %d %s", err, resp.StatusCode(), resp.Body())
		}
		t2 := time.Now()
		if err := c.Do(live, liveResp); err != nil || liveResp.StatusCode() != fasthttp.StatusOK {
			b.Fatalf("live: %v %d", err, liveResp.StatusCode())
		}
		t3 := time.Now()
		eng, srv, rt = append(eng, t1.Sub(t0)), append(srv, t2.Sub(t1)), append(rt, t3.Sub(t2))
	}
	b.StopTimer()
	h1, n1 := histSum(b, s, "kiln_request_duration_seconds")
	c1, _ := histSum(b, s, "kiln_compute_duration_seconds")
	e, sv, h := median(eng), median(srv), median(rt)
	b.ReportMetric(e, "engine-µs/op")
	b.ReportMetric(sv, "served-µs/op")
	b.ReportMetric(sv-e, "overhead-µs/op")
	b.ReportMetric(h, "http-µs/op")
	b.ReportMetric(sv-e-h, "server-µs/op")
	if n := float64(n1 - n0); n > 0 {
		b.ReportMetric(((h1-h0)-(c1-c0))/n*1e6, "handler-µs/op")
		b.ReportMetric((c1-c0)/n*1e6, "compute-µs/op")
	}
}

// BenchmarkInferHandler runs the infer handler in process, without a
// network or client (the request context is reused as fasthttp reuses
// it), on the dense model: the server's own CPU time and allocations per
// request, batcher hand-off and batch-1 engine call included. Use it with
// -cpuprofile to see where serving time goes.
func BenchmarkInferHandler(b *testing.B) {
	dir := b.TempDir()
	path := writeBenchModel(b, dir, benchModels()[0].spec)
	for _, bin := range []bool{false, true} {
		name := "json"
		if bin {
			name = "binary"
		}
		b.Run(name, func(b *testing.B) {
			be := cpu.New()
			defer be.Close()
			s, err := New(be, Config{MaxBatch: 64})
			require.NoError(b, err)
			defer func() { require.NoError(b, s.Shutdown(context.Background())) }()
			require.NoError(b, s.AddModel("m", path))
			body, hdrLen := benchBody(benchPixels(), bin)
			var ctx fasthttp.RequestCtx
			var req fasthttp.Request
			req.SetRequestURI("/v2/models/m/infer")
			req.Header.SetMethod(fasthttp.MethodPost)
			if bin {
				req.Header.Set("Inference-Header-Content-Length", strconv.Itoa(hdrLen))
			}
			req.SetBody(body)
			ctx.Init(&req, nil, nil)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				ctx.Response.Reset()
				s.handle(&ctx)
				if ctx.Response.StatusCode() != fasthttp.StatusOK {
					b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
			}
		})
	}
}

// BenchmarkDecodeInferRequest decodes a 784-value UINT8 JSON request.
func BenchmarkDecodeInferRequest(b *testing.B) {
	px := make([]int, 28*28)
	for i := range px {
		px[i] = i * 37 % 256
	}
	benchDecodeJSON(b, inferBody(b, "UINT8", []int{1, 28, 28, 1}, px, `"id":"x",`))
}

// BenchmarkDecodeFP32Request decodes a 784-value FP32 JSON request of
// pixels scaled to [0, 1] as a client writes them (shortest decimal form of
// each float32, like "0.14509805").
func BenchmarkDecodeFP32Request(b *testing.B) {
	vals := make([]byte, 0, 12*28*28)
	for i := range 28 * 28 {
		if i > 0 {
			vals = append(vals, ',')
		}
		vals = strconv.AppendFloat(vals, float64(float32(i*37%256)/255), 'g', -1, 32)
	}
	benchDecodeJSON(b, fmt.Appendf(nil, `{"id":"x","inputs":[{"name":"input","shape":[1,28,28,1],"datatype":"FP32","data":[%s]}]}`, vals))
}

// benchDecodeJSON times DecodeInferRequest on body.
func benchDecodeJSON(b *testing.B, body []byte) {
	var r InferRequest
	lim := DefaultLimits()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeInferRequest(body, &r, lim); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBinaryRequest decodes the same image sent as binary
// tensor data.
func BenchmarkDecodeBinaryRequest(b *testing.B) {
	body, n := benchBody(benchPixels(), true)
	var r InferRequest
	lim := DefaultLimits()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeBinaryRequest(body, n, &r, lim); err != nil {
			b.Fatal(err)
		}
	}
}
