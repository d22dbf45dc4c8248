package server

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// httpLogger is the fasthttp.Server's Logger: it writes what fasthttp
// reports (mostly connections it closed on an error: malformed requests)
// to Config.Log, one line each prefixed "http: ".
//
// The request bytes fasthttp's errors quote are left out (see
// redactHTTPError): they may hold the bearer token.
//
// A request refused for a body over the limit is not logged: fasthttp
// reports it as a connection error, but the client already got its 413
// answer and the requests metric counts it. Every other message is
// logged at most once per interval, so that a client sending malformed
// requests cannot flood the log; the next line logged says how many were
// dropped meanwhile (or, when none follows, a line at Shutdown).
type httpLogger struct {
	w        io.Writer
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	last    time.Time // when the last line was written; zero before
	dropped int       // messages not logged since then for the rate limit
}

// connErrorFormat is the format of fasthttp's message for a connection
// it closed on an error (workerpool.go), with the local and remote
// addresses and the error; it is logged as "closed the connection from
// REMOTE: ERROR". Other messages are logged as fasthttp words them.
const connErrorFormat = "error when serving connection %q<->%q: %v"

func newHTTPLogger(w io.Writer, interval time.Duration) *httpLogger {
	return &httpLogger{w: w, interval: interval, now: time.Now}
}

// Printf logs one fasthttp message (log.Printf semantics, as
// fasthttp.Logger requires; the calls come from many goroutines).
func (l *httpLogger) Printf(format string, args ...any) {
	if bodyTooLarge(args) {
		return
	}
	args = append([]any(nil), args...)
	for i, a := range args {
		if err, ok := a.(error); ok {
			args[i] = redactHTTPError(err.Error())
		}
	}
	var msg string
	if format == connErrorFormat && len(args) == 3 {
		msg = fmt.Sprintf("closed the connection from %v: %v", args[1], args[2])
	} else {
		msg = strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	}
	if strings.Contains(msg, fasthttp.ErrBodyTooLarge.Error()) {
		return // the error came formatted into the message
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.dropped++
		return
	}
	if l.dropped > 0 {
		msg = fmt.Sprintf("%s (%d more HTTP server messages in the last %v were not logged: at most one is logged per %v)",
			msg, l.dropped, now.Sub(l.last).Round(time.Millisecond), l.interval)
	}
	l.last, l.dropped = now, 0
	fmt.Fprintf(l.w, "http: %s\n", msg)
}

// flush logs how many messages were dropped since the last line, if any,
// so that a count with no later message to carry it is not lost
// (Server.Shutdown calls it).
func (l *httpLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropped == 0 {
		return
	}
	now := l.now()
	fmt.Fprintf(l.w, "http: %d more HTTP server messages in the last %v were not logged: at most one is logged per %v\n",
		l.dropped, now.Sub(l.last).Round(time.Millisecond), l.interval)
	l.last, l.dropped = now, 0
}

// redactHTTPError returns a fasthttp error message without the request
// bytes it quotes. fasthttp appends to a header it could not parse
// "buffer size=N, contents: " and the raw request (the Authorization
// header's token, cookies), and quotes the offending part before that (a
// header line without a colon, a header value, the request line), which
// may be the token too. What is left names the problem ("error when
// reading request headers: malformed mime header: missing colon"), for
// the log and the client alike.
func redactHTTPError(msg string) string {
	for _, cut := range []string{"buffer size=", "contents:", `"`} {
		if i := strings.Index(msg, cut); i >= 0 {
			msg = msg[:i]
		}
	}
	return strings.TrimRight(msg, " :,;")
}

// bodyTooLarge reports whether a message's arguments carry fasthttp's
// error for a request body over the limit.
func bodyTooLarge(args []any) bool {
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, fasthttp.ErrBodyTooLarge) {
			return true
		}
	}
	return false
}
