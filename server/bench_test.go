package server

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/backend/cpu"
	"github.com/kiln-ml/kiln/engine"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// BenchmarkOverhead compares one batch-1 inference of the reference CNN
// (MNIST shape) called directly on the engine with the same inference
// served over loopback HTTP (JSON UINT8 body, no batching delay). The
// difference is the server's per-request overhead plus the client's.
func BenchmarkOverhead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "ref.kiln")
	be := cpu.New()
	defer be.Close()
	m, err := engine.New(be, engine.ReferenceSpec(28, 28, 1, 10), 1)
	require.NoError(b, err)
	require.NoError(b, m.Save(path, engine.ModelMeta{Scale: 1.0 / 255}))
	defer m.Close()
	px := make([]int, 28*28)
	for i := range px {
		px[i] = i * 37 % 256
	}
	body := inferBody(b, "UINT8", []int{1, 28, 28, 1}, px, ``)

	b.Run("engine", func(b *testing.B) {
		images := make([]float32, 28*28)
		probs := make([]float32, 10)
		for b.Loop() {
			if err := m.Predict(images, 1, probs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("served", func(b *testing.B) {
		s, err := New(be, Config{MaxQueueDelay: 0, MaxBatch: 64})
		require.NoError(b, err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(b, err)
		go func() { _ = s.Serve(ln) }()
		defer func() { require.NoError(b, s.Shutdown(context.Background())) }()
		require.NoError(b, s.AddModel("ref", path))
		c := &fasthttp.HostClient{Addr: ln.Addr().String(), ReadTimeout: 10 * time.Second}
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + ln.Addr().String() + "/v2/models/ref/infer")
		req.Header.SetMethod("POST")
		req.SetBody(body)
		for b.Loop() {
			if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Fatalf("%v %d %s", err, resp.StatusCode(), resp.Body())
			}
		}
	})
}

// BenchmarkDecodeInferRequest decodes a 784-value UINT8 JSON request.
func BenchmarkDecodeInferRequest(b *testing.B) {
	px := make([]int, 28*28)
	for i := range px {
		px[i] = i * 37 % 256
	}
	body := inferBody(b, "UINT8", []int{1, 28, 28, 1}, px, `"id":"x",`)
	var r InferRequest
	lim := DefaultLimits()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := DecodeInferRequest(body, &r, lim); err != nil {
			b.Fatal(err)
		}
	}
}
