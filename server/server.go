package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/engine/data"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Version is reported by GET /v2.
const Version = "0.1.0"

// Server serves kiln models over HTTP. Create it with New, add models with
// AddModel or LoadRepo, then Serve; Shutdown stops it gracefully.
type Server struct {
	cfg Config
	b   backend.Backend
	// bmu serialises every use of the backend: model loads, warm-ups,
	// batches and frees. Backends are single-goroutine, and all models of
	// a process share one.
	bmu sync.Mutex
	// rest tells b that no op follows soon (backend.Rester), or does
	// nothing; called under bmu when a batcher finds its queue empty.
	rest func()
	// bwait counts batchers blocked on bmu with a batch to run (another
	// model's or version's): while one waits, the backend is not told to
	// rest.
	bwait atomic.Int32

	mu     sync.RWMutex
	models map[string]*modelVersion
	// broken holds, for a repository model with no version serving, which
	// of its versions (the newest) failed to load, for clients (guarded by
	// mu; the reason, with paths, goes to the log only)
	broken map[string]string

	repo   string
	pollMu sync.Mutex
	// shut is set when Shutdown begins: no model is added, reloaded or
	// installed after it (install checks it under mu).
	shut atomic.Bool
	// lmu guards loads and abandoned.
	lmu sync.Mutex
	// loads counts model loads in progress, from loadVersion to the
	// install that ends them.
	loads int
	// abandoned is set when Shutdown returns past its deadline: no load
	// starts after it, and when a load was in progress then, the last one
	// to end takes the backend lock for good in Shutdown's stead.
	abandoned bool
	// retires counts versions being retired in the background (replaced
	// or removed); Shutdown waits for them.
	retires sync.WaitGroup
	// failed holds, for each model file whose load failed for its
	// contents, the state that failed: it is not retried until the file
	// changes (guarded by pollMu)
	failed map[string]fileStamp
	// skipped holds the repository entries that do not fit the layout,
	// each reported once (guarded by pollMu)
	skipped  map[string]bool
	stopPoll chan struct{}
	pollDone chan struct{}

	ready    atomic.Bool
	http     *fasthttp.Server
	httpLog  *httpLogger // fasthttp's messages, rate-limited
	met      *metrics
	metricsH fasthttp.RequestHandler
	token    [sha256.Size]byte
	hasToken bool
	// decodes holds a token per :classify image being decoded
	// (Limits.MaxImageDecodes of them at most).
	decodes chan struct{}

	statePool sync.Pool
	taskPool  sync.Pool
}

// reqState is the per-request scratch reused across requests.
type reqState struct {
	req  InferRequest
	outs []outputSel
	js   []byte
	bin  []byte
}

// New creates a server computing on b. The server never closes b.
func New(b backend.Backend, cfg Config) (*Server, error) {
	if b == nil {
		return nil, errors.New("server: no backend")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, b: b, rest: func() {}, models: map[string]*modelVersion{}, broken: map[string]string{}, failed: map[string]fileStamp{},
		decodes: make(chan struct{}, cfg.Limits.MaxImageDecodes)}
	if r, ok := b.(backend.Rester); ok {
		s.rest = func() {
			if s.bwait.Load() == 0 {
				r.Rest()
			}
		}
	}
	if cfg.AuthToken != "" {
		s.token, s.hasToken = sha256.Sum256([]byte(cfg.AuthToken)), true
	}
	s.met = newMetrics(s)
	s.metricsH = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{}))
	s.statePool.New = func() any { return &reqState{} }
	s.taskPool.New = func() any { return &task{done: make(chan error, 1)} }
	s.httpLog = newHTTPLogger(cfg.Log, time.Second)
	s.http = &fasthttp.Server{
		Handler:              s.handle,
		ErrorHandler:         s.handleError,
		Name:                 "kiln",
		Logger:               s.httpLog,
		ReadTimeout:          cfg.ReadTimeout,
		WriteTimeout:         cfg.WriteTimeout,
		IdleTimeout:          cfg.IdleTimeout,
		MaxRequestBodySize:   cfg.MaxBodyBytes,
		ReadBufferSize:       cfg.MaxHeaderBytes,
		Concurrency:          cfg.MaxConns,
		CloseOnShutdown:      true,
		NoDefaultContentType: true,
		// A multipart body is refused by name (bodyEncoding), not parsed
		// (and, past 16 MiB, spooled to disk) before the handler runs.
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: false,
	}
	return s, nil
}

// LoadRepo serves the model repository dir (layout
// dir/<name>/<version>/model.kiln): it loads the newest good version of
// every model and, when Config.PollInterval is set, keeps polling for new
// versions until Shutdown. It fails when no model could be loaded.
func (s *Server) LoadRepo(dir string) error {
	if s.repo != "" {
		return errors.New("a model repository is already loaded")
	}
	s.repo = dir
	err := s.Poll()
	if len(s.serving()) == 0 {
		if errors.As(err, new(repoDirError)) {
			return err // it already says "model repository"
		}
		if err == nil {
			err = fmt.Errorf("no model found (want %s/<name>/<version>/%s)", dir, ModelFileName)
		}
		return fmt.Errorf("model repository %s: %w", dir, err)
	}
	if s.cfg.PollInterval > 0 {
		s.stopPoll, s.pollDone = make(chan struct{}), make(chan struct{})
		go s.pollLoop(s.cfg.PollInterval, s.stopPoll, s.pollDone)
	}
	return err
}

// SetReady marks the server ready (GET /v2/health/ready answers 200) once
// every model was added; it fails when none is loaded.
func (s *Server) SetReady() error {
	if len(s.serving()) == 0 {
		return errors.New("no model loaded")
	}
	s.ready.Store(true)
	return nil
}

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.http.Serve(ln) }

// errShutDown refuses to add or reload models after Shutdown.
var errShutDown = errors.New("the server is shut down")

// Shutdown stops accepting connections, waits for every in-flight request
// to be answered (or ctx to end), then stops the batchers and frees the
// models, those being replaced or removed in the background included.
// Serve returns as soon as Shutdown starts. No model is added, reloaded or
// swapped in once Shutdown has begun: a repository poll loading one then
// frees it, and Shutdown waits for that poll only until ctx ends. When ctx
// ends first, Shutdown returns an error wrapping ctx's; the requests still
// in flight are not answered and the models are not freed, but no backend
// call runs or starts after Shutdown returns (it keeps the backend lock),
// so the caller may close the backend — unless a model load was still in
// progress (the error says so): that load runs on, frees what it loaded
// and then keeps the backend lock itself, so nothing runs after it.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.shut.Store(true)
	var pollDone chan struct{}
	if s.stopPoll != nil {
		close(s.stopPoll)
		pollDone = s.pollDone
		s.stopPoll = nil
	}
	defer s.httpLog.flush()
	httpErr := s.http.ShutdownWithContext(ctx)
	var pollErr error
	if pollDone != nil && httpErr == nil {
		select {
		case <-pollDone:
		case <-ctx.Done():
			select {
			case <-pollDone:
			default:
				pollErr = ctx.Err()
			}
		}
	}
	if httpErr != nil || pollErr != nil {
		s.lmu.Lock()
		s.abandoned = true
		loading := s.loads > 0
		s.lmu.Unlock()
		if !loading {
			s.bmu.Lock() // for good: the backend stays idle
		}
		var why []string
		if httpErr != nil {
			why = append(why, "requests still in flight were not answered")
		}
		if loading {
			why = append(why, "a model load was still in progress: it frees what it loads when it ends, and nothing runs on the backend after it")
		}
		err := httpErr
		if err == nil {
			err = pollErr
		}
		if len(why) == 0 { // the poll was past its loads
			why = append(why, "the model repository scan in progress was not waited for")
		}
		return fmt.Errorf("shutdown: %w (%s)", err, strings.Join(why, "; "))
	}
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	s.mu.Lock()
	vs := s.models
	s.models = map[string]*modelVersion{}
	s.mu.Unlock()
	for _, v := range vs {
		v.retire(&s.bmu)
	}
	s.retires.Wait()
	return nil
}

// handleError answers requests fasthttp could not read. The message
// leaves out the request bytes fasthttp's error quotes (redactHTTPError):
// they may hold the bearer token.
func (s *Server) handleError(ctx *fasthttp.RequestCtx, err error) {
	code, msg := fasthttp.StatusBadRequest, "bad request: "+redactHTTPError(err.Error())
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		code, msg = fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than the limit of %d bytes", s.cfg.MaxBodyBytes)
	case errors.As(err, &small):
		code, msg = fasthttp.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request line and headers are larger than the limit of %d bytes", s.cfg.MaxHeaderBytes)
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		code, msg = fasthttp.StatusRequestTimeout, "timed out reading the request"
	}
	writeError(ctx, code, msg)
	s.met.requests.WithLabelValues("", "other", strconv.Itoa(code)).Inc()
}

func writeError(ctx *fasthttp.RequestCtx, code int, msg string) {
	ctx.Response.Reset()
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	ctx.SetBody(appendError(nil, msg))
}

func writeJSON(ctx *fasthttp.RequestCtx, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, fasthttp.StatusInternalServerError, err.Error())
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// authorized checks the bearer token in constant time. The scheme name is
// case-insensitive (RFC 7235 section 2.1: "bearer", "BEARER").
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	if !s.hasToken {
		return true
	}
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	scheme, tok, ok := bytes.Cut(bytes.TrimSpace(h), []byte(" "))
	if !ok || !bytes.EqualFold(scheme, []byte("Bearer")) {
		return false
	}
	got := sha256.Sum256(bytes.TrimSpace(tok))
	return subtle.ConstantTimeCompare(got[:], s.token[:]) == 1
}

// handle routes a request.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	model, endpoint := "", "other"
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(s.cfg.Log, "panic serving %s %s: %v\n", ctx.Method(), ctx.Path(), r)
			writeError(ctx, fasthttp.StatusInternalServerError, "internal error")
		}
		s.met.requests.WithLabelValues(model, endpoint, codeLabel(ctx.Response.StatusCode())).Inc()
	}()
	path := string(ctx.Path())
	get, post := ctx.IsGet() || ctx.IsHead(), ctx.IsPost()
	switch path {
	case "/v2/health/live":
		endpoint = "health"
		if allow(ctx, get, "GET") {
			writeJSON(ctx, map[string]bool{"live": true})
		}
		return
	case "/v2/health/ready":
		endpoint = "health"
		if allow(ctx, get, "GET") {
			if !s.ready.Load() {
				ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			}
			writeJSON(ctx, map[string]bool{"ready": s.ready.Load()})
		}
		return
	}
	if !s.authorized(ctx) {
		writeError(ctx, fasthttp.StatusUnauthorized, "missing or wrong bearer token (send Authorization: Bearer TOKEN)")
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="kiln"`)
		return
	}
	switch {
	case path == "/metrics":
		endpoint = "metrics"
		if allow(ctx, get, "GET") {
			s.metricsH(ctx)
		}
	case path == "/v2" || path == "/v2/":
		endpoint = "metadata"
		if allow(ctx, get, "GET") {
			writeJSON(ctx, map[string]any{"name": "kiln", "version": Version, "extensions": []string{"binary_tensor_data"}})
		}
	case strings.HasPrefix(path, "/v2/models/"):
		name, ver, action, ok := parseModelPath(path[len("/v2/models/"):])
		if !ok {
			writeError(ctx, fasthttp.StatusNotFound, "no such endpoint: "+path)
			return
		}
		if s.known(name) {
			model = name
		}
		switch action {
		case "":
			endpoint = "metadata"
			if allow(ctx, get, "GET") {
				s.metadata(ctx, name, ver)
			}
		case "ready":
			endpoint = "ready"
			if allow(ctx, get, "GET") {
				s.modelReady(ctx, name, ver)
			}
		case "infer":
			endpoint = "infer"
			if allow(ctx, post, "POST") {
				s.infer(ctx, name, ver)
			}
		}
	case strings.HasPrefix(path, "/v1/models/") && strings.HasSuffix(path, ":classify"):
		endpoint = "classify"
		name := strings.TrimSuffix(path[len("/v1/models/"):], ":classify")
		if s.known(name) {
			model = name
		}
		if allow(ctx, post, "POST") {
			s.classify(ctx, name)
		}
	default:
		writeError(ctx, fasthttp.StatusNotFound, "no such endpoint: "+path)
	}
}

// codeLabel is the status code as a metric label, without allocating for
// the codes the server itself sends.
func codeLabel(code int) string {
	switch code {
	case fasthttp.StatusOK:
		return "200"
	case fasthttp.StatusBadRequest:
		return "400"
	case fasthttp.StatusNotFound:
		return "404"
	case fasthttp.StatusServiceUnavailable:
		return "503"
	case fasthttp.StatusGatewayTimeout:
		return "504"
	}
	return strconv.Itoa(code)
}

// allow answers 405 when the method is not the one the endpoint takes.
func allow(ctx *fasthttp.RequestCtx, ok bool, method string) bool {
	if !ok {
		writeError(ctx, fasthttp.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed here (use %s)", ctx.Method(), method))
		ctx.Response.Header.Set(fasthttp.HeaderAllow, method)
	}
	return ok
}

// parseModelPath splits "{name}[/versions/{v}][/ready|/infer]" (without
// allocating: it runs on every request).
func parseModelPath(rest string) (name, ver, action string, ok bool) {
	name, rest, more := strings.Cut(rest, "/")
	if name == "" {
		return "", "", "", false
	}
	if !more {
		return name, "", "", true
	}
	if after, isVer := strings.CutPrefix(rest, "versions/"); isVer {
		if v, tail, _ := strings.Cut(after, "/"); v != "" {
			ver, rest = v, tail
			more = len(after) > len(v)
		}
	}
	switch {
	case ver != "" && !more:
		return name, ver, "", true
	case rest == "ready" || rest == "infer":
		return name, ver, rest, true
	}
	return "", "", "", false
}

func (s *Server) known(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.models[name] != nil
}

// tensorMeta is one entry of a model metadata response.
type tensorMeta struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Shape    []int  `json:"shape"`
}

func (s *Server) metadata(ctx *fasthttp.RequestCtx, name, ver string) {
	v, err := s.acquire(name, ver)
	if err != nil {
		writeError(ctx, fasthttp.StatusNotFound, err.Error())
		return
	}
	defer v.release()
	params := map[string]any{
		"input_datatypes": []string{DatatypeFP32, DatatypeUINT8},
		"scale":           v.meta.Scale,
		"max_batch":       v.maxBatch,
		"backend":         s.b.Name(),
	}
	if len(v.meta.ClassNames) > 0 {
		params["class_names"] = v.meta.ClassNames
	}
	if v.meta.Dataset != "" {
		params["dataset"] = v.meta.Dataset
	}
	writeJSON(ctx, map[string]any{
		"name":       v.name,
		"versions":   []string{v.version},
		"platform":   "kiln",
		"inputs":     []tensorMeta{{InputName, DatatypeFP32, []int{-1, v.h, v.w, v.c}}},
		"outputs":    []tensorMeta{{OutputProbabilities, DatatypeFP32, []int{-1, v.classes}}, {OutputClass, DatatypeINT64, []int{-1}}},
		"parameters": params,
	})
}

func (s *Server) modelReady(ctx *fasthttp.RequestCtx, name, ver string) {
	v, err := s.acquire(name, ver)
	if err != nil {
		writeError(ctx, fasthttp.StatusNotFound, err.Error())
		return
	}
	defer v.release()
	writeJSON(ctx, map[string]any{"name": v.name, "version": v.version, "ready": true})
}

// check validates the single input against the model and returns the
// number of samples it holds.
func (v *modelVersion) check(req *InferRequest) (int, error) {
	if len(req.Inputs) != 1 {
		return 0, fmt.Errorf("model %s takes one input %q, the request has %d", v.name, InputName, len(req.Inputs))
	}
	in := &req.Inputs[0]
	if in.Name != InputName {
		return 0, fmt.Errorf("unknown input %q (the model's input is %q)", in.Name, InputName)
	}
	var n int64
	switch sh := in.Shape; {
	case len(sh) == 4 && sh[1] == int64(v.h) && sh[2] == int64(v.w) && sh[3] == int64(v.c):
		n = sh[0]
	case len(sh) == 3 && sh[0] == int64(v.h) && sh[1] == int64(v.w) && sh[2] == int64(v.c):
		n = 1
	default:
		return 0, fmt.Errorf("input shape %s does not match the model's [N, %d, %d, %d]", fmtShape(in.Shape), v.h, v.w, v.c)
	}
	if n < 1 {
		return 0, fmt.Errorf("input shape %s holds no samples", fmtShape(in.Shape))
	}
	if n > int64(v.maxBatch) {
		return 0, fmt.Errorf("input shape %s holds %d samples, more than the server's max batch %d", fmtShape(in.Shape), n, v.maxBatch)
	}
	if need := int(n) * v.inLen; len(in.Data) != need {
		what := "too many"
		if len(in.Data) < need {
			what = "too few"
		}
		return 0, fmt.Errorf("input has %s elements: %d values, shape %s needs %d", what, len(in.Data), fmtShape(in.Shape), need)
	}
	if in.Datatype == DatatypeFP32 {
		if i := nonFinite(in.Data); i >= 0 {
			return 0, fmt.Errorf("input value %d is %v (values must be finite)", i, in.Data[i])
		}
	}
	return int(n), nil
}

// newTask takes a pooled task sized for n samples of v, whose deadline is
// timeout from now.
func (s *Server) newTask(v *modelVersion, n int, timeout time.Duration) *task {
	t := s.taskPool.Get().(*task)
	t.n = n
	t.in = grow(t.in, n*v.inLen)
	t.out = grow(t.out, n*v.classes)
	t.state.Store(taskQueued)
	t.enq = time.Now()
	t.deadline = t.enq.Add(timeout)
	return t
}

// writeTaskError answers a request whose task failed: 504 for a deadline
// that passed before its batch ran, 500 for a failed inference.
func (s *Server) writeTaskError(ctx *fasthttp.RequestCtx, v *modelVersion, err error) {
	if errors.Is(err, errDeadline) {
		writeError(ctx, fasthttp.StatusGatewayTimeout, fmt.Sprintf("request deadline exceeded while queued for model %s", v.name))
		return
	}
	writeError(ctx, fasthttp.StatusInternalServerError, err.Error())
}

// execute queues t on v and waits for it. It writes the error response and
// returns false when t did not complete; t is then not to be used.
func (s *Server) execute(ctx *fasthttp.RequestCtx, v *modelVersion, t *task) bool {
	if ran, err := v.runInline(&s.bmu, t); ran {
		if err == nil {
			return true
		}
		s.writeTaskError(ctx, v, err)
		s.taskPool.Put(t)
		return false
	}
	if err := v.submit(t); err != nil {
		s.taskPool.Put(t)
		writeError(ctx, fasthttp.StatusServiceUnavailable, fmt.Sprintf("model %s is overloaded: its queue of %d requests is full; retry later", v.name, cap(v.queue)))
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		return false
	}
	err, reusable := v.wait(t)
	if err == nil {
		return true
	}
	s.writeTaskError(ctx, v, err)
	if reusable {
		s.taskPool.Put(t)
	}
	return false
}

func (s *Server) timeout(req *InferRequest) time.Duration {
	d := s.cfg.Timeout
	if req != nil && req.TimeoutMicros > 0 {
		if r := time.Duration(req.TimeoutMicros) * time.Microsecond; r < d {
			d = r
		}
	}
	return d
}

// infer serves POST /v2/models/{name}[/versions/{v}]/infer.
func (s *Server) infer(ctx *fasthttp.RequestCtx, name, ver string) {
	start := time.Now()
	v, err := s.acquire(name, ver)
	if err != nil {
		writeError(ctx, fasthttp.StatusNotFound, err.Error())
		return
	}
	defer v.release()
	if msg := bodyEncoding(ctx, "the JSON request (or the binary extension's body)"); msg != "" {
		writeError(ctx, fasthttp.StatusUnsupportedMediaType, msg)
		return
	}
	st := s.statePool.Get().(*reqState)
	defer s.statePool.Put(st)
	req := &st.req
	body := ctx.PostBody()
	if hl := ctx.Request.Header.Peek("Inference-Header-Content-Length"); hl != nil {
		n, perr := strconv.Atoi(string(bytes.TrimSpace(hl)))
		if perr != nil {
			writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("Inference-Header-Content-Length %q is not a number", hl))
			return
		}
		err = DecodeBinaryRequest(body, n, req, s.cfg.Limits)
	} else {
		err = DecodeInferRequest(body, req, s.cfg.Limits)
	}
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	n, err := v.check(req)
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	if st.outs, err = selectOutputs(st.outs, req); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	t := s.newTask(v, n, s.timeout(req))
	src := req.Inputs[0].Data
	if req.Inputs[0].Datatype == DatatypeUINT8 {
		scale := float32(v.meta.Scale)
		for i, x := range src {
			t.in[i] = x * scale
		}
	} else {
		copy(t.in, src)
	}
	if !s.execute(ctx, v, t) {
		return
	}
	if i := nonFinite(t.out[:n*v.classes]); i >= 0 {
		writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf(
			"the output of model %s for this input is not finite (sample %d, class %d: %v): inputs far outside the range the model was trained on overflow it",
			v.name, i/v.classes, i%v.classes, t.out[i]))
		s.taskPool.Put(t)
		return
	}
	st.js, st.bin = appendInferResponse(st.js[:0], st.bin[:0], v.name, v.version, req, st.outs, n, v.classes, t.out)
	s.taskPool.Put(t)
	if len(st.bin) > 0 {
		ctx.Response.Header.Set("Inference-Header-Content-Length", strconv.Itoa(len(st.js)))
		ctx.SetContentType("application/octet-stream")
		ctx.Response.SetBodyRaw(nil)
		ctx.Response.AppendBody(st.js)
		ctx.Response.AppendBody(st.bin)
	} else {
		ctx.SetContentType("application/json")
		ctx.SetBody(st.js)
	}
	v.dObs.Observe(time.Since(start).Seconds())
}

// prediction is one entry of a classify response.
type prediction struct {
	Class int     `json:"class"`
	Label string  `json:"label"`
	Score float32 `json:"score"`
}

// classify serves POST /v1/models/{name}:classify with a PNG or JPEG body.
// Query parameters: top (default 5), invert=true for dark-on-light images
// (invert takes what strconv.ParseBool accepts: 1, t, T, TRUE, true, True,
// 0, f, F, FALSE, false, False; anything else is answered 400).
func (s *Server) classify(ctx *fasthttp.RequestCtx, name string) {
	start := time.Now()
	v, err := s.acquire(name, "")
	if err != nil {
		writeError(ctx, fasthttp.StatusNotFound, err.Error())
		return
	}
	defer v.release()
	if msg := bodyEncoding(ctx, "the PNG or JPEG file itself (curl --data-binary @IMAGE.png)"); msg != "" {
		writeError(ctx, fasthttp.StatusUnsupportedMediaType, msg)
		return
	}
	args := ctx.QueryArgs()
	var unknown []byte
	args.VisitAll(func(k, _ []byte) {
		if unknown == nil && string(k) != "top" && string(k) != "invert" {
			unknown = append([]byte(nil), k...)
		}
	})
	if unknown != nil {
		writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("unknown query parameter %q (classify takes top and invert)", unknown))
		return
	}
	top := 5
	if a := args.Peek("top"); a != nil {
		if top, err = strconv.Atoi(string(a)); err != nil || top < 1 {
			writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("top must be a positive integer, got %q", a))
			return
		}
	}
	top = min(top, v.classes)
	invert := false
	if a := args.Peek("invert"); a != nil {
		if invert, err = strconv.ParseBool(string(a)); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("invert must be true or false (or 1 or 0), got %q", a))
			return
		}
	}
	if v.c != 1 && v.c != 3 {
		writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf(
			"model %s takes %d-channel inputs, and :classify makes images grey (1 channel) or RGB (3): send its tensors to /v2/models/%s/infer", v.name, v.c, v.name))
		return
	}
	if n := len(ctx.PostBody()); n > data.MaxImageBytes {
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf(
			"image is %d bytes, more than the %d bytes :classify decodes", n, data.MaxImageBytes))
		return
	}
	img, ok := s.decodeImage(ctx, v, start.Add(s.cfg.Timeout), invert)
	if !ok {
		return
	}
	left := s.cfg.Timeout - time.Since(start)
	if left <= 0 {
		writeError(ctx, fasthttp.StatusGatewayTimeout, fmt.Sprintf("request deadline exceeded while decoding the image for model %s", v.name))
		return
	}
	t := s.newTask(v, 1, left)
	factor := float32(255 * v.meta.Scale)
	for i, x := range img {
		t.in[i] = x * factor
	}
	if !s.execute(ctx, v, t) {
		return
	}
	if i := nonFinite(t.out[:v.classes]); i >= 0 {
		writeError(ctx, fasthttp.StatusInternalServerError, fmt.Sprintf(
			"model %s produced non-finite outputs (class %d: %v) for an image whose values are all in [0, 1]: the model is broken",
			v.name, i, t.out[i]))
		s.taskPool.Put(t)
		return
	}
	idx := make([]int, v.classes)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return t.out[idx[a]] > t.out[idx[b]] })
	preds := make([]prediction, top)
	for k, c := range idx[:top] {
		label := strconv.Itoa(c)
		if c < len(v.meta.ClassNames) {
			label = v.meta.ClassNames[c]
		}
		preds[k] = prediction{c, label, t.out[c]}
	}
	s.taskPool.Put(t)
	writeJSON(ctx, map[string]any{"model_name": v.name, "model_version": v.version, "predictions": preds})
	v.dObs.Observe(time.Since(start).Seconds())
}

// imagePixelLimit is the most pixels (width×height) a :classify image for
// v may have: Limits.MaxImagePixels, or when it is zero
// ImagePixelsPerInput times v's input pixels, at least MinImagePixels and
// at most data.MaxImagePixels.
func (s *Server) imagePixelLimit(v *modelVersion) int {
	if n := s.cfg.Limits.MaxImagePixels; n > 0 {
		return n
	}
	if in := v.h * v.w; in < data.MaxImagePixels/ImagePixelsPerInput {
		return max(MinImagePixels, ImagePixelsPerInput*in)
	}
	return data.MaxImagePixels
}

// decodeImage decodes the request's image for v, at most
// Limits.MaxImageDecodes at once: it waits for a turn until deadline. It
// writes the error response and returns false when it could not: 413 for
// an image with more pixels than v takes, 400 for one that does not
// decode, 504 when the deadline passed first.
func (s *Server) decodeImage(ctx *fasthttp.RequestCtx, v *modelVersion, deadline time.Time, invert bool) ([]float32, bool) {
	select {
	case s.decodes <- struct{}{}:
	default:
		wait := time.NewTimer(time.Until(deadline))
		select {
		case s.decodes <- struct{}{}:
			wait.Stop()
		case <-wait.C:
			writeError(ctx, fasthttp.StatusGatewayTimeout, fmt.Sprintf(
				"request deadline exceeded while waiting to decode the image for model %s (the server decodes %d images at a time)", v.name, cap(s.decodes)))
			return nil, false
		}
	}
	limit := s.imagePixelLimit(v)
	img, err := func() ([]float32, error) {
		defer func() { <-s.decodes }()
		return data.DecodeImageBytes(ctx.PostBody(), v.h, v.w, v.c, invert, limit)
	}()
	var tl *data.ImageTooLargeError
	switch {
	case errors.As(err, &tl):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf(
			"image is %dx%d (%d pixels), more than the %d pixels :classify takes for model %s (input %dx%d); scale it down",
			tl.Width, tl.Height, int64(tl.Width)*int64(tl.Height), limit, v.name, v.h, v.w))
		return nil, false
	case err != nil:
		writeError(ctx, fasthttp.StatusBadRequest, "bad image: "+err.Error())
		return nil, false
	}
	return img, true
}

// bodyEncoding names what is wrong with a request body that comes
// compressed or as a multipart form, neither of which the endpoints read
// (a gzip body read as JSON was "malformed JSON at byte 0", a form read as
// an image "not a PNG or JPEG image"); want says what to send instead. It
// returns "" for a plain body.
func bodyEncoding(ctx *fasthttp.RequestCtx, want string) string {
	if enc := bytes.TrimSpace(ctx.Request.Header.Peek(fasthttp.HeaderContentEncoding)); len(enc) > 0 && !bytes.EqualFold(enc, []byte("identity")) {
		return fmt.Sprintf("Content-Encoding %q is not supported: send %s uncompressed", enc, want)
	}
	if ct := ctx.Request.Header.ContentType(); len(ct) >= 10 && bytes.EqualFold(ct[:10], []byte("multipart/")) {
		return fmt.Sprintf("a multipart body (%s) is not read: send %s as the whole body", bytes.SplitN(ct, []byte(";"), 2)[0], want)
	}
	return ""
}

// nonFinite returns the index of the first NaN or ±Inf in p, or -1 when
// every value is finite.
func nonFinite(p []float32) int {
	for i, x := range p {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}

// fmtShape renders a shape as JSON does.
func fmtShape(sh []int64) string {
	b := []byte{'['}
	for i, d := range sh {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	return string(append(b, ']'))
}
