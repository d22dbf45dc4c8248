package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kiln-ml/kiln/engine/data"
	"github.com/kiln-ml/kiln/server"
)

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "--model FILE | --model-repo DIR [flags]", stdout, stderr)
	var bf backendFlags
	bf.register(fs)
	d := server.DefaultConfig()
	modelFile := fs.String("model", "", "model file written by kiln train, served as version 1")
	name := fs.String("name", "", "model name for --model (default: the file name without extension)")
	repo := fs.String("model-repo", "", "model repository: DIR/<name>/<version>/model.kiln; the highest good version of each model serves")
	poll := durationFlag(fs, "poll", 5*time.Second, 0, "how often (a `duration`) --model-repo is rescanned for new versions (0 disables)")
	addr := fs.String("addr", "127.0.0.1:8000", "listen address (use :8000 to listen on every interface)")
	maxBatch := fs.Int("max-batch", d.MaxBatch, "largest number of samples one backend call runs")
	delay := durationFlag(fs, "max-queue-delay", d.MaxQueueDelay, time.Microsecond, "how long the batcher waits after the first queued request for more to join: microseconds (500) or a `duration` (500us, 2ms) (0: batch only what queued while the previous batch ran; a lone request runs at once)")
	queue := fs.Int("queue", d.QueueSize, "requests that may wait per model; beyond that the server answers 503 at once")
	timeout := durationFlag(fs, "timeout", d.Timeout, 0, "per-request deadline for queueing, a `duration` such as 5s (504 beyond; 0: the default)")
	maxBody := fs.Int("max-body-bytes", d.MaxBodyBytes, "largest request body accepted (413 beyond)")
	readTO := durationFlag(fs, "read-timeout", d.ReadTimeout, 0, "time (a `duration`) allowed to read a request (0: the default)")
	writeTO := durationFlag(fs, "write-timeout", d.WriteTimeout, 0, "time (a `duration`) allowed to write a response (0: the default)")
	idleTO := durationFlag(fs, "idle-timeout", d.IdleTimeout, 0, "how long (a `duration`) an idle keep-alive connection stays open (0: the default)")
	maxConns := fs.Int("max-conns", d.MaxConns, "largest number of connections served at once")
	maxPixels := fs.Int("max-image-pixels", 0, fmt.Sprintf("largest width×height of a :classify image (413 beyond, read from its header before decoding); 0: %d× the model's input pixels, at least %d, at most %d", server.ImagePixelsPerInput, server.MinImagePixels, data.MaxImagePixels))
	maxDecodes := fs.Int("max-image-decodes", 0, "largest number of :classify images decoded at once; 0: the number of CPUs Go uses (GOMAXPROCS)")
	tokenFile := fs.String("auth-token-file", "", "file holding a bearer token every endpoint but /v2/health/* requires")
	grace := durationFlag(fs, "grace", 30*time.Second, 0, "on SIGTERM/SIGINT, how long (a `duration`) in-flight requests may take to finish")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if (*modelFile == "") == (*repo == "") {
		return errors.New("give exactly one of --model FILE or --model-repo DIR")
	}
	if *name != "" && *modelFile == "" {
		return errors.New("--name only applies to --model")
	}
	if isSet(fs, "poll") && *modelFile != "" {
		return errors.New("--poll only applies to --model-repo (a --model file is not rescanned)")
	}
	if strings.TrimSpace(*addr) == "" {
		return errors.New("--addr is empty: give HOST:PORT (127.0.0.1:8000 by default, :8000 for every interface)")
	}
	cfg := server.Config{
		MaxBatch: *maxBatch, MaxQueueDelay: *delay, QueueSize: *queue,
		Timeout: *timeout, MaxBodyBytes: *maxBody, ReadTimeout: *readTO, WriteTimeout: *writeTO,
		IdleTimeout: *idleTO, MaxConns: *maxConns, PollInterval: *poll, Log: stderr, Limits: server.DefaultLimits(),
	}
	cfg.Limits.MaxImagePixels, cfg.Limits.MaxImageDecodes = *maxPixels, *maxDecodes
	if *maxPixels < 0 || *maxPixels > data.MaxImagePixels {
		return fmt.Errorf("--max-image-pixels must be 1 to %d (or 0 to derive it from each model's input), got %d", data.MaxImagePixels, *maxPixels)
	}
	if *maxDecodes < 0 {
		return fmt.Errorf("--max-image-decodes must be positive (or 0 for the number of CPUs), got %d", *maxDecodes)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"max-batch", *maxBatch}, {"queue", *queue}, {"max-body-bytes", *maxBody}, {"max-conns", *maxConns}} {
		if f.v <= 0 {
			return fmt.Errorf("--%s must be positive, got %d", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"max-queue-delay", *delay}, {"timeout", *timeout}, {"read-timeout", *readTO}, {"write-timeout", *writeTO}, {"idle-timeout", *idleTO}, {"grace", *grace}, {"poll", *poll}} {
		if f.v < 0 {
			return fmt.Errorf("--%s must not be negative, got %v", f.name, f.v)
		}
	}
	// The batcher waits --max-queue-delay for a batch to fill; a request
	// whose deadline comes first is answered 504, so at low load every one.
	if effTimeout := cmp.Or(*timeout, d.Timeout); *delay > 0 && *delay >= effTimeout {
		return fmt.Errorf("--max-queue-delay %v must be shorter than --timeout %v: a request waiting for its batch to fill would time out (504) first", *delay, effTimeout)
	}
	if err := checkOutputs([]namedPath{{"cpuprofile", bf.profile}}, []namedPath{{"model", *modelFile}, {"auth-token-file", *tokenFile}}); err != nil {
		return err
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("read --auth-token-file: %w", err)
		}
		cfg.AuthToken = strings.TrimSpace(string(b))
		if cfg.AuthToken == "" {
			return fmt.Errorf("--auth-token-file %s is empty", *tokenFile)
		}
	}
	if *modelFile != "" {
		derived := *name == ""
		if derived {
			base := filepath.Base(*modelFile)
			*name = strings.TrimSuffix(base, filepath.Ext(base))
		}
		if err := server.CheckModelName(*name); err != nil {
			if derived {
				return fmt.Errorf("%w: the name comes from the file name; give one with --name", err)
			}
			return err
		}
		if err := checkModelFile(*modelFile); err != nil { // before the backend opens
			return err
		}
	}

	// Listen first, so liveness answers while the models load and warm up.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopProfile, err := bf.startProfile(stderr)
	if err != nil {
		return err
	}
	defer stopProfile()
	b, err := bf.open(stderr)
	if err != nil {
		return err
	}
	// A shutdown past --grace may leave a model load running on the
	// backend (server.Shutdown's error says so): the process exits then,
	// and the backend is not closed under it.
	closeBackend := true
	defer func() {
		if closeBackend {
			b.Close()
		}
	}()
	srv, err := server.New(b, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), *grace)
		defer cancel()
		err := srv.Shutdown(sctx)
		closeBackend = err == nil
		return err
	}
	if *modelFile != "" {
		err = srv.AddModel(*name, *modelFile)
	} else if err = srv.LoadRepo(*repo); err != nil && len(srv.Models()) > 0 {
		// some models loaded: serve them (the server logged each failure)
		fmt.Fprintf(stderr, "warning: not every model in %s loaded (see above); serving the %d that did\n", *repo, len(srv.Models()))
		err = nil
	}
	if err == nil {
		err = srv.SetReady()
	}
	if err != nil {
		_ = shutdown()
		return err
	}
	base := "http://" + ln.Addr().String()
	auth := ""
	if cfg.AuthToken != "" {
		auth = fmt.Sprintf(` -H "Authorization: Bearer $(cat %s)"`, *tokenFile)
	}
	for _, m := range srv.Models() {
		fmt.Fprintf(stdout, "serving model %s version %s (%s) on %s with backend %s\n", m.Name, m.Version, m.Path, base, b.Name())
	}
	fmt.Fprintf(stdout, "ready: %s/v2/health/ready\n", base)
	if ms := srv.Models(); len(ms) > 0 {
		fmt.Fprintln(stdout, "try (bash):")
		fmt.Fprintln(stdout, "  "+curlExample(base, auth, ms[0]))
		fmt.Fprintf(stdout, "or classify a PNG/JPEG (add &invert=true for a dark drawing on a light background):\n  curl -s%s --data-binary @IMAGE.png '%s/v1/models/%s:classify?top=3'\n", auth, base, ms[0].Name)
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(stderr, "shutting down: finishing in-flight requests")
	case err := <-served:
		if err != nil {
			_ = shutdown()
			return fmt.Errorf("serve: %w", err)
		}
	}
	if err := shutdown(); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "stopped")
	return nil
}

// curlExample is a ready-to-paste bash command that classifies an all-black
// image with m.
func curlExample(base, auth string, m server.ModelInfo) string {
	n := m.Input[0] * m.Input[1] * m.Input[2]
	return fmt.Sprintf(`curl -s%s %s/v2/models/%s/infer -H 'Content-Type: application/json' -d "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,%d,%d,%d],\"datatype\":\"UINT8\",\"data\":[$(printf '0,%%.0s' {1..%d})0]}],\"outputs\":[{\"name\":\"class\"},{\"name\":\"probabilities\"}]}"`,
		auth, base, m.Name, m.Input[0], m.Input[1], m.Input[2], n-1)
}

// durFlag is a duration flag whose parse error says what a duration looks
// like; with bare set (only time.Microsecond is used) a plain number is also
// accepted, in that unit.
type durFlag struct {
	d    *time.Duration
	bare time.Duration
}

func (f durFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durFlag) Set(s string) error {
	if f.bare > 0 {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			*f.d = time.Duration(n) * f.bare
			return nil
		}
	}
	d, err := time.ParseDuration(s)
	switch {
	case err == nil:
		*f.d = d
		return nil
	case f.bare == time.Microsecond:
		return errors.New("want microseconds (500) or a duration with a unit (500us, 2ms)")
	default:
		return errors.New("want a duration with a unit, such as 5s or 500ms")
	}
}

// durationFlag defines a durFlag on fs.
func durationFlag(fs *flag.FlagSet, name string, def, bare time.Duration, usage string) *time.Duration {
	d := def
	fs.Var(durFlag{&d, bare}, name, usage)
	return &d
}
