package server

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/kiln-ml/kiln/engine/data"
)

// Config holds the server's settings. Zero fields take the defaults of
// DefaultConfig when passed through New.
type Config struct {
	// MaxBatch is the largest number of samples one backend call runs.
	MaxBatch int
	// MaxQueueDelay is how long the batcher waits after the first queued
	// request for more to join the batch. Zero (the default) batches what
	// queued while the previous batch ran, which under load forms the same
	// batches (measured: bench/results/server.md) without making a lone
	// request wait; a positive delay trades low-load latency for bigger
	// batches when requests arrive spread out.
	MaxQueueDelay time.Duration
	// QueueSize bounds the requests waiting per model version; a request
	// arriving at a full queue is answered 503 at once.
	QueueSize int
	// Timeout is the per-request deadline for queueing and inference;
	// a request still queued when it passes is answered 504.
	Timeout time.Duration
	// MaxBodyBytes bounds request bodies (413 beyond).
	MaxBodyBytes int
	// MaxHeaderBytes bounds a request's line and headers together (431
	// beyond): it is the size of each connection's read buffer. The
	// default, 16 KiB, leaves room for a bearer token of a few kilobytes
	// (a JWT) beside the headers proxies and tracing add.
	MaxHeaderBytes int
	// ReadTimeout, WriteTimeout and IdleTimeout bound connections.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConns bounds concurrent connections (fasthttp Concurrency).
	MaxConns int
	// AuthToken, when not empty, is the bearer token every endpoint but
	// the health checks requires.
	AuthToken string
	// PollInterval is how often a model repository is rescanned for new
	// versions; zero disables polling (Poll can still be called).
	PollInterval time.Duration
	// Log receives load, reload and error reports (nil discards them),
	// one line per Write, from several goroutines (batchers, the
	// repository poller, the HTTP server's connections): it must be safe
	// for concurrent use, as os.Stderr is.
	Log io.Writer
	// Limits bound the request decoders; each zero field takes its
	// default (see Limits).
	Limits Limits
}

// DefaultConfig returns the defaults used by kiln serve.
func DefaultConfig() Config {
	return Config{
		MaxBatch:       64,
		MaxQueueDelay:  0,
		QueueSize:      256,
		Timeout:        10 * time.Second,
		MaxBodyBytes:   8 << 20,
		MaxHeaderBytes: 16 << 10,
		ReadTimeout:    30 * time.Second,
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxConns:       4096,
		Limits:         DefaultLimits(),
	}
}

// withDefaults fills zero fields from DefaultConfig and validates.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.MaxBatch == 0 {
		c.MaxBatch = d.MaxBatch
	}
	if c.QueueSize == 0 {
		c.QueueSize = d.QueueSize
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = d.MaxConns
	}
	// each limit on its own: a zero one would refuse every request
	if c.Limits.MaxElements == 0 {
		c.Limits.MaxElements = d.Limits.MaxElements
	}
	if c.Limits.MaxTensors == 0 {
		c.Limits.MaxTensors = d.Limits.MaxTensors
	}
	if c.Limits.MaxDims == 0 {
		c.Limits.MaxDims = d.Limits.MaxDims
	}
	if c.Limits.MaxDepth == 0 {
		c.Limits.MaxDepth = d.Limits.MaxDepth
	}
	switch {
	case c.MaxBatch < 0:
		return c, fmt.Errorf("max batch must be positive, got %d", c.MaxBatch)
	case c.QueueSize < 0:
		return c, fmt.Errorf("queue size must be positive, got %d", c.QueueSize)
	case c.MaxQueueDelay < 0:
		return c, fmt.Errorf("max queue delay must not be negative, got %v", c.MaxQueueDelay)
	case c.Timeout < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0:
		return c, fmt.Errorf("timeouts must not be negative")
	case c.MaxBodyBytes < 0 || c.MaxConns < 0:
		return c, fmt.Errorf("max body size and max connections must be positive")
	case c.MaxHeaderBytes < 0:
		return c, fmt.Errorf("max header size must be positive, got %d", c.MaxHeaderBytes)
	case c.Limits.MaxImagePixels < 0 || c.Limits.MaxImagePixels > data.MaxImagePixels:
		return c, fmt.Errorf("max image pixels must be 1 to %d (or 0 to derive it from each model), got %d", data.MaxImagePixels, c.Limits.MaxImagePixels)
	case c.Limits.MaxImageDecodes < 0:
		return c, fmt.Errorf("max image decodes must be positive (or 0 for GOMAXPROCS), got %d", c.Limits.MaxImageDecodes)
	case c.PollInterval < 0:
		return c, fmt.Errorf("poll interval must not be negative, got %v", c.PollInterval)
	}
	if c.Limits.MaxImageDecodes == 0 {
		c.Limits.MaxImageDecodes = runtime.GOMAXPROCS(0)
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c, nil
}
