package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/backend/cpu"
	"github.com/kiln-ml/kiln/engine"
	"github.com/kiln-ml/kiln/engine/data"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// pngOf encodes img at the best compression: a flat image of millions
// of pixels takes a few kilobytes.
func pngOf(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&b, img))
	return b.Bytes()
}

// TestClassifyImagePixelLimit: a :classify image with more pixels than the
// model takes (by default 256 times its input, at least 2048×2048) is
// refused 413 from its header, naming its size and the limit, without
// decoding it: a 2 KB PNG of 4096×4096 1-bit pixels cost 80 MB and 0.4 s
// to decode and convert for an 8×8 model. Limits.MaxImagePixels sets the
// bound for every model.
func TestClassifyImagePixelLimit(t *testing.T) {
	ts := startServer(t, Config{MaxBatch: 4}, singleModel(t))
	huge := pngOf(t, image.NewPaletted(image.Rect(0, 0, 4096, 4096), color.Palette{color.Black, color.White}))
	require.Less(t, len(huge), 4096, "the test image is small on the wire")
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	r := ts.do(t, "POST", "/v1/models/tiny:classify", huge)
	runtime.ReadMemStats(&m1)
	require.Equal(t, fasthttp.StatusRequestEntityTooLarge, r.code, "%s", r.body)
	assert.Equal(t, "image is 4096x4096 (16777216 pixels), more than the 4194304 pixels :classify takes for model tiny (input 8x8); scale it down", r.json(t)["error"])
	assert.Less(t, m1.TotalAlloc-m0.TotalAlloc, uint64(8<<20), "the refused image's pixels were allocated")

	// the bound itself decodes, one pixel more does not
	atLimit := pngOf(t, image.NewGray(image.Rect(0, 0, 2048, 2048)))
	assert.Equal(t, 200, ts.do(t, "POST", "/v1/models/tiny:classify", atLimit).code)
	r = ts.do(t, "POST", "/v1/models/tiny:classify", pngOf(t, image.NewGray(image.Rect(0, 0, 2049, 2048))))
	assert.Equal(t, fasthttp.StatusRequestEntityTooLarge, r.code, "%s", r.body)
	assert.Contains(t, r.json(t)["error"], "2049x2048 (4196352 pixels), more than the 4194304 pixels")

	// a server-wide bound
	ts2 := startServer(t, Config{MaxBatch: 4, Limits: Limits{MaxImagePixels: 100}}, singleModel(t))
	assert.Equal(t, 200, ts2.do(t, "POST", "/v1/models/tiny:classify", pngOf(t, image.NewGray(image.Rect(0, 0, 10, 10)))).code)
	r = ts2.do(t, "POST", "/v1/models/tiny:classify", pngOf(t, image.NewGray(image.Rect(0, 0, 11, 10))))
	assert.Equal(t, fasthttp.StatusRequestEntityTooLarge, r.code, "%s", r.body)
	assert.Contains(t, r.json(t)["error"], "image is 11x10 (110 pixels), more than the 100 pixels")
}

// TestImagePixelLimit: the default bound is 256 times the model's input
// pixels, at least MinImagePixels and at most data.MaxImagePixels.
func TestImagePixelLimit(t *testing.T) {
	b := cpu.New()
	defer b.Close()
	s, err := New(b, Config{})
	require.NoError(t, err)
	for _, tc := range []struct{ h, w, want int }{
		{8, 8, MinImagePixels},
		{28, 28, MinImagePixels},
		{128, 128, MinImagePixels},
		{129, 128, 256 * 129 * 128},
		{224, 224, 256 * 224 * 224},
		{256, 256, data.MaxImagePixels},
		{4096, 4096, data.MaxImagePixels},
	} {
		assert.Equal(t, tc.want, s.imagePixelLimit(&modelVersion{h: tc.h, w: tc.w}), "%dx%d", tc.h, tc.w)
	}
	s.cfg.Limits.MaxImagePixels = 1000
	assert.Equal(t, 1000, s.imagePixelLimit(&modelVersion{h: 224, w: 224}))
}

// TestClassifyDecodeSlots: at most Limits.MaxImageDecodes images are
// decoded at once; a request finding every slot busy waits for one, and
// is answered 504 when its deadline passes first.
func TestClassifyDecodeSlots(t *testing.T) {
	ts := startServer(t, Config{MaxBatch: 4, Timeout: 300 * time.Millisecond, Limits: Limits{MaxImageDecodes: 1}}, singleModel(t))
	require.Equal(t, 1, cap(ts.s.decodes))
	img := pngOf(t, image.NewGray(image.Rect(0, 0, 16, 16)))
	assert.Equal(t, 200, ts.do(t, "POST", "/v1/models/tiny:classify", img).code)

	ts.s.decodes <- struct{}{} // the only slot is busy
	start := time.Now()
	r := ts.do(t, "POST", "/v1/models/tiny:classify", img)
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	assert.Equal(t, fasthttp.StatusGatewayTimeout, r.code, "%s", r.body)
	assert.Equal(t, "request deadline exceeded while waiting to decode the image for model tiny (the server decodes 1 images at a time)", r.json(t)["error"])

	// a waiting request goes on once the slot is free
	done := make(chan response, 1)
	go func() {
		r, err := ts.try(ts.client, "POST", "/v1/models/tiny:classify", img)
		assert.NoError(t, err)
		done <- r
	}()
	time.Sleep(50 * time.Millisecond)
	<-ts.s.decodes
	assert.Equal(t, 200, (<-done).code)
	assert.Empty(t, ts.s.decodes, "the slot was given back")

	// the default is GOMAXPROCS
	b := cpu.New()
	defer b.Close()
	s, err := New(b, Config{})
	require.NoError(t, err)
	assert.Equal(t, runtime.GOMAXPROCS(0), cap(s.decodes))
}

// TestClassifyConcurrentBurst: the reviewer's burst of 8 concurrent
// 4096×4096 PNGs is refused from the headers: it neither takes the
// hundreds of megabytes its pixels would, nor holds up an infer request.
func TestClassifyConcurrentBurst(t *testing.T) {
	ts := startServer(t, Config{MaxBatch: 4}, singleModel(t))
	huge := pngOf(t, image.NewNRGBA(image.Rect(0, 0, 4096, 4096)))
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r, err := ts.try(ts.client, "POST", "/v1/models/tiny:classify", huge)
			assert.NoError(t, err)
			assert.Equal(t, fasthttp.StatusRequestEntityTooLarge, r.code)
		})
	}
	good := inferBody(t, "UINT8", []int{1, testH, testW, testC}, pixels(1, 0), ``)
	assert.Equal(t, 200, ts.do(t, "POST", "/v2/models/tiny/infer", good).code)
	wg.Wait()
	runtime.ReadMemStats(&m1)
	assert.Less(t, m1.TotalAlloc-m0.TotalAlloc, uint64(32<<20))
}

// TestClassifyBodyOverImageCap: with --max-body-bytes raised above the
// image decoder's cap (data.MaxImageBytes, 64 MiB), a :classify body over
// that cap is refused 413 naming both sizes, as a body over the server's
// own limit is, not 400 "bad image".
func TestClassifyBodyOverImageCap(t *testing.T) {
	ts := startServer(t, Config{MaxBatch: 4, MaxBodyBytes: data.MaxImageBytes + 1<<10}, singleModel(t))
	body := make([]byte, data.MaxImageBytes+1)
	copy(body, "\x89PNG\r\n\x1a\n")
	for _, tc := range []struct {
		name string
		size int
		code int
		want string
	}{
		{"at the cap", data.MaxImageBytes, 400, "bad image: "},
		{"one byte over", data.MaxImageBytes + 1, 413, "image is 67108865 bytes, more than the 67108864 bytes :classify decodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// straight to the handler: 64 MiB need not cross a socket
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod("POST")
			ctx.Request.SetRequestURI("/v1/models/tiny:classify")
			ctx.Request.SetBodyRaw(body[:tc.size])
			ts.s.handle(&ctx)
			assert.Equal(t, tc.code, ctx.Response.StatusCode(), "%s", ctx.Response.Body())
			var m map[string]string
			require.NoError(t, json.Unmarshal(ctx.Response.Body(), &m))
			assert.Contains(t, m["error"], tc.want)
		})
	}
}

// TestLimitsValidated: New refuses negative or out-of-range bounds, and
// fills each zero limit from DefaultLimits (a Limits setting only the
// image bounds left MaxElements zero, which refused every request).
func TestLimitsValidated(t *testing.T) {
	b := cpu.New()
	defer b.Close()
	s, err := New(b, Config{Limits: Limits{MaxImagePixels: 5000, MaxDepth: 3}})
	require.NoError(t, err)
	want := DefaultLimits()
	want.MaxImagePixels, want.MaxDepth, want.MaxImageDecodes = 5000, 3, runtime.GOMAXPROCS(0)
	assert.Equal(t, want, s.cfg.Limits)

	lim := DefaultLimits()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative pixels", Config{Limits: func() Limits { l := lim; l.MaxImagePixels = -1; return l }()}, "max image pixels must be 1 to 16777216"},
		{"pixels over data's", Config{Limits: func() Limits { l := lim; l.MaxImagePixels = data.MaxImagePixels + 1; return l }()}, "max image pixels must be 1 to 16777216"},
		{"negative decodes", Config{Limits: func() Limits { l := lim; l.MaxImageDecodes = -2; return l }()}, "max image decodes must be positive"},
		{"negative header size", Config{MaxHeaderBytes: -1}, "max header size must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := cpu.New()
			defer b.Close()
			_, err := New(b, tc.cfg)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

const secretToken = "s3cret-t0ken-Value"

// TestHTTPErrorsHideToken: a request fasthttp cannot parse is answered
// and logged without the request bytes fasthttp's error quotes, which
// held the Authorization header's bearer token: a malformed header line
// after it, a header line without a colon holding the token itself, and
// headers over the read buffer.
func TestHTTPErrorsHideToken(t *testing.T) {
	for _, tc := range []struct {
		name, req, code, msg, logged string
	}{
		{"malformed line after the token",
			"GET /v2/models/tiny HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secretToken + "\r\nX-Bad header\r\n\r\n",
			"400", "bad request: error when reading request headers: malformed mime header: missing colon",
			"error when reading request headers: malformed mime header: missing colon"},
		{"token in a line without a colon",
			"GET /v2/models/tiny HTTP/1.1\r\nHost: x\r\nAuthorization Bearer " + secretToken + "\r\n\r\n",
			"400", "bad request: error when reading request headers: malformed mime header: missing colon", ""},
		{"token in the request line",
			"GET /v2/models/tiny?t=" + secretToken + " HTTP/1.1 x\r\nHost: x\r\n\r\n",
			"400", "", ""},
		{"headers over the buffer",
			headersOf("GET /v2/models/tiny HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+secretToken+"\r\n", 16384),
			"431", "request line and headers are larger than the limit of 16384 bytes", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logBuf syncBuffer
			ts := startServer(t, Config{MaxBatch: 4, AuthToken: secretToken, Log: &logBuf}, singleModel(t))
			r := rawRequest(t, ts, tc.req)
			require.True(t, strings.HasPrefix(r, "HTTP/1.1 "+tc.code+" "), "%q", r)
			assert.NotContains(t, r, secretToken)
			assert.NotContains(t, r, "contents")
			if tc.msg != "" {
				_, body, _ := strings.Cut(r, "\r\n\r\n")
				var e struct{ Error string }
				require.NoError(t, json.Unmarshal([]byte(body), &e), body)
				assert.Equal(t, tc.msg, e.Error)
			}
			assert.NotContains(t, logBuf.String(), secretToken)
			assert.NotContains(t, logBuf.String(), "contents")
			if tc.logged != "" {
				assert.Contains(t, logBuf.String(), tc.logged)
			}
			assert.Equal(t, 200, ts.do(t, "GET", "/v2/models/tiny", nil, "Authorization", "Bearer "+secretToken).code)
		})
	}
}

// headersOf pads the start of a request with a header to exactly n bytes,
// unterminated: a server whose read buffer holds n bytes reads them all,
// finds no end, and answers 431. (With more bytes than it reads, its
// close resets the connection, which can lose the answer.)
func headersOf(start string, n int) string {
	const name = "X-Pad: "
	return start + name + strings.Repeat("p", n-len(start)-len(name))
}

// TestRedactHTTPError: the request bytes fasthttp quotes in its errors
// are cut off, and what names the problem is kept.
func TestRedactHTTPError(t *testing.T) {
	for in, want := range map[string]string{
		`error when reading request headers: malformed mime header: missing colon: "Authorization Bearer x": buffer size=97, contents: "GET / HTTP/1.1\r\nAuthorization Bearer x\r\n\r\n"`: "error when reading request headers: malformed mime header: missing colon",
		`error when reading request headers: invalid header value "Bearer x\x01": buffer size=50, contents: "..."`:                                                                         "error when reading request headers: invalid header value",
		`error when reading request headers: fasthttp: small read buffer. increase readbuffersize: buffer size=4096, contents: "GET"..."aaa"`:                                              "error when reading request headers: fasthttp: small read buffer. increase readbuffersize",
		`error when reading request headers: cannot find http request method`:                                                                                                              "error when reading request headers: cannot find http request method",
		`timeout`: "timeout",
	} {
		assert.Equal(t, want, redactHTTPError(in))
	}
	// the logger redacts the error it is given
	var buf bytes.Buffer
	l := newHTTPLogger(&buf, time.Second)
	l.Printf(connErrorFormat, "127.0.0.1:8000", "10.0.0.7:1234", errors.New(`error when reading request headers: malformed mime header: missing colon: "X": buffer size=9, contents: "Authorization: Bearer `+secretToken+`"`))
	assert.Equal(t, "http: closed the connection from 10.0.0.7:1234: error when reading request headers: malformed mime header: missing colon\n", buf.String())
}

// TestHeaderLimit: request headers up to Config.MaxHeaderBytes (16 KiB by
// default: fasthttp's 4 KiB refused a large bearer token beside a few
// proxy headers) are read; beyond, the answer is 431 naming the limit
// (it was 400 advising to "increase readbuffersize", with the raw headers
// echoed).
func TestHeaderLimit(t *testing.T) {
	jwt := strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 300) // 6000 bytes
	ts := startServer(t, Config{MaxBatch: 4, AuthToken: jwt}, singleModel(t))
	r := ts.do(t, "GET", "/v2/models/tiny", nil, "Authorization", "Bearer "+jwt, "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	assert.Equal(t, 200, r.code, "%s", r.body)
	raw := rawRequest(t, ts, headersOf("GET /v2/models/tiny HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+jwt+"\r\n", 16384))
	assert.True(t, strings.HasPrefix(raw, "HTTP/1.1 431 Request Header Fields Too Large\r\n"), "%q", raw)
	assert.True(t, strings.HasSuffix(raw, "\r\n\r\n"+`{"error":"request line and headers are larger than the limit of 16384 bytes"}`), "%q", raw)

	ts2 := startServer(t, Config{MaxBatch: 4, MaxHeaderBytes: 1024}, singleModel(t))
	assert.Equal(t, 200, ts2.do(t, "GET", "/v2/health/live", nil, "X-Pad", strings.Repeat("p", 800)).code)
	raw = rawRequest(t, ts2, headersOf("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n", 1024))
	assert.True(t, strings.HasPrefix(raw, "HTTP/1.1 431 "), "%q", raw)
	assert.Contains(t, raw, `{"error":"request line and headers are larger than the limit of 1024 bytes"}`)
}

// TestDecodeMemberTypes: a member of the wrong JSON type is reported by
// name (it was "malformed JSON at byte 10: found '{', want '['"), while a
// member whose value is not well-formed JSON is still reported as
// malformed JSON.
func TestDecodeMemberTypes(t *testing.T) {
	const in = `{"name":"input","shape":[1],"datatype":"UINT8","data":[1]}`
	for _, tc := range []struct{ body, want string }{
		{`{"inputs":{"name":"input"}}`, `"inputs" must be an array, found an object`},
		{`{"inputs":"x"}`, `"inputs" must be an array, found a string`},
		{`{"inputs":[1]}`, `each of "inputs" must be an object, found a number`},
		{`{"inputs":[null]}`, `each of "inputs" must be an object, found null`},
		{`{"inputs":[{"name":"input","shape":"1,8,8,1","datatype":"UINT8","data":[1]}]}`, `input "shape" must be an array, found a string`},
		{`{"inputs":[{"name":"input","shape":{},"datatype":"UINT8","data":[1]}]}`, `input "shape" must be an array, found an object`},
		{`{"inputs":[{"name":7,"shape":[1],"datatype":"UINT8","data":[1]}]}`, `input "name" must be a string, found a number`},
		{`{"inputs":[{"name":"input","shape":[1],"datatype":null,"data":[1]}]}`, `input "datatype" must be a string, found null`},
		{`{"inputs":[{"name":"input","shape":[1],"datatype":"UINT8","data":"1"}]}`, `input "data" must be an array, found a string`},
		{`{"inputs":[{"name":"input","shape":[1],"datatype":"UINT8","data":[1],"parameters":null}]}`, `input "parameters" must be an object, found null`},
		{`{"inputs":[` + in + `],"outputs":{"name":"class"}}`, `"outputs" must be an array, found an object`},
		{`{"inputs":[` + in + `],"outputs":["class"]}`, `each of "outputs" must be an object, found a string`},
		{`{"inputs":[` + in + `],"outputs":[{"name":["class"]}]}`, `output "name" must be a string, found an array`},
		{`{"inputs":[` + in + `],"outputs":[{"name":"class","parameters":null}]}`, `output "parameters" must be an object, found null`},
		{`{"inputs":[` + in + `],"outputs":[{"name":"class","parameters":{"binary_data":"yes"}}]}`, `output parameter "binary_data" must be a boolean, found a string`},
		{`{"inputs":[` + in + `],"parameters":null}`, `"parameters" must be an object, found null`},
		{`{"inputs":[` + in + `],"parameters":[]}`, `"parameters" must be an object, found an array`},
		{`{"inputs":[` + in + `],"parameters":{"binary_data_output":1}}`, `parameter "binary_data_output" must be a boolean, found a number`},
		{`{"id":null,"inputs":[` + in + `]}`, `"id" must be a string, found null`},
		{`{"id":{"a":[1,{}]},"inputs":[` + in + `]}`, `"id" must be a string, found an object`},
		// not well-formed: malformed JSON, as before
		{`{"inputs":{"name":}}`, `malformed JSON at byte 18: unexpected '}', want a value`},
		{`{"inputs":nul}`, `malformed JSON at byte 10: invalid literal, want null`},
		{`{"inputs":x}`, `malformed JSON at byte 10: unexpected 'x', want a value`},
		{`{"inputs":`, `malformed JSON at byte 10: unexpected end of input, want a value`},
		{`{"inputs":[{"name":"input","shape":"1,8`, `malformed JSON at byte 39: unterminated string`},
		{`{"inputs":[{"name":"input","shape":[1],"datatype":"UINT8","data":[1],"parameters":tru}]}`, `malformed JSON at byte 82: invalid literal, want true`},
	} {
		var r InferRequest
		err := DecodeInferRequest([]byte(tc.body), &r, DefaultLimits())
		assert.EqualError(t, err, tc.want, "%s", tc.body)
		assert.False(t, json.Valid([]byte(tc.body)) && strings.HasPrefix(tc.want, "malformed"), "%s is valid JSON", tc.body)
	}
	// the binary extension's JSON header is read by the same parser
	var r InferRequest
	h := `{"inputs":[{"name":"input","shape":[1],"datatype":"UINT8","parameters":[1]}]}`
	assert.EqualError(t, DecodeBinaryRequest([]byte(h+"\x01"), len(h), &r, DefaultLimits()), `input "parameters" must be an object, found an array`)
}

// TestDecodeSurrogatesMatchEncodingJSON: \u escapes of UTF-16 surrogates
// decode as encoding/json decodes them: a pair to its character, a half
// without its other half to U+FFFD, keeping what follows (a lone high
// surrogate followed by \u0041 lost the "A").
func TestDecodeSurrogatesMatchEncodingJSON(t *testing.T) {
	for _, id := range []string{
		`a\ud800\u0041b`,
		`\ud83d\ude00`,
		`\ud83d\ude00\ud83d`,
		`\ud800`,
		`\udc00`,
		`\udc00\ud800`,
		`\udc00\ud800\udc00`,
		`\ud800\ud800\udc00`,
		`\ud800x`,
		`\ud800\n`,
		`\ud800\\u0041`,
		`\ud800\u00e9`,
		`\uD83D\uDE00`,
		`\ud800\uffff`,
		`x\ud800`,
	} {
		body := `{"id":"` + id + `","inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":[1]}]}`
		var want struct{ ID string }
		require.NoError(t, json.Unmarshal([]byte(body), &want), id)
		var r InferRequest
		require.NoError(t, DecodeInferRequest([]byte(body), &r, DefaultLimits()), id)
		assert.Equal(t, want.ID, r.ID, "%s", id)
	}
	// a bad escape after a lone half is an error, as in encoding/json
	for _, id := range []string{`\ud800\u00`, `\ud800\uzzzz`, `\ud800\u`} {
		body := `{"id":"` + id + `","inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":[1]}]}`
		require.False(t, json.Valid([]byte(body)), id)
		var r InferRequest
		assert.ErrorContains(t, DecodeInferRequest([]byte(body), &r, DefaultLimits()), `invalid \u escape`, id)
	}
}

// TestCompressedOrMultipartBody: a gzip body or a multipart form (curl -F)
// is answered 415 saying what to send, not read as malformed JSON or a
// file that is no image; a plain body with Content-Encoding identity is
// served.
func TestCompressedOrMultipartBody(t *testing.T) {
	ts := startServer(t, Config{MaxBatch: 4}, singleModel(t))
	infer := inferBody(t, "FP32", []int{1, 8, 8, 1}, make([]float32, 64), "")
	img := pngOf(t, image.NewGray(image.Rect(0, 0, 8, 8)))
	for _, tc := range []struct {
		name, path string
		body       []byte
		hdr        []string
		code       int
		want       string
	}{
		{"gzip infer", "/v2/models/tiny/infer", infer, []string{"Content-Encoding", "gzip"}, 415,
			`Content-Encoding "gzip" is not supported: send the JSON request (or the binary extension's body) uncompressed`},
		{"gzip classify", "/v1/models/tiny:classify", img, []string{"Content-Encoding", "gzip"}, 415,
			`Content-Encoding "gzip" is not supported: send the PNG or JPEG file itself`},
		{"form classify", "/v1/models/tiny:classify", img, []string{"Content-Type", "multipart/form-data; boundary=x"}, 415,
			"a multipart body (multipart/form-data) is not read: send the PNG or JPEG file itself (curl --data-binary @IMAGE.png) as the whole body"},
		{"form infer", "/v2/models/tiny/infer", infer, []string{"Content-Type", "Multipart/Form-Data; boundary=x"}, 415,
			"a multipart body (Multipart/Form-Data) is not read"},
		{"identity", "/v2/models/tiny/infer", infer, []string{"Content-Encoding", "identity"}, 200, ""},
		{"plain classify", "/v1/models/tiny:classify", img, nil, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, "POST", tc.path, tc.body, tc.hdr...)
			require.Equal(t, tc.code, r.code, "%s", r.body)
			if tc.want != "" {
				assert.Contains(t, r.json(t)["error"], tc.want)
			}
		})
	}
}

// TestClassifyFourChannelModel: :classify on a model whose input has
// neither 1 nor 3 channels names the model's input, not the image.
func TestClassifyFourChannelModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rgba.kiln")
	b := cpu.New()
	spec := testSpec()
	spec.Input = []int{8, 8, 4}
	m, err := engine.New(b, spec, 1)
	require.NoError(t, err)
	require.NoError(t, m.Save(path, engine.ModelMeta{Scale: 1.0 / 255}))
	m.Close()
	b.Close()
	ts := startServer(t, Config{MaxBatch: 4}, func(s *Server) error { return s.AddModel("rgba", path) })
	r := ts.do(t, "POST", "/v1/models/rgba:classify", pngOf(t, image.NewGray(image.Rect(0, 0, 8, 8))))
	require.Equal(t, 400, r.code, "%s", r.body)
	assert.Equal(t, "model rgba takes 4-channel inputs, and :classify makes images grey (1 channel) or RGB (3): send its tensors to /v2/models/rgba/infer", r.json(t)["error"])
}
