package backend

import (
	"errors"
	"fmt"
)

// ErrNotImplemented is matched (errors.Is) by every error a backend returns
// for an op it does not implement.
var ErrNotImplemented = errors.New("not implemented")

// ErrShape is matched by errors about sizes, shapes and buffer capacities.
var ErrShape = errors.New("bad shape")

// ErrUnavailable is matched by errors saying a backend cannot run here.
var ErrUnavailable = errors.New("backend unavailable")

// Error is the error type backends return: it names the backend and the op.
type Error struct {
	Backend string // "cpu", "opencl", "cuda"; may be empty for shared helpers
	Op      string // the op, e.g. "Gemm"
	Kind    error  // ErrShape, ErrNotImplemented, ErrUnavailable or nil
	Err     error  // the underlying cause, may be nil
	Msg     string // what went wrong, e.g. "buffer too small"
}

// Error formats the error as "backend: op: message: cause", leaving out the
// empty parts.
func (e *Error) Error() string {
	s := ""
	if e.Backend != "" {
		s = e.Backend + ": "
	}
	s += e.Op + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap lets errors.Is match the kind and the cause.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// NotImplemented returns the typed error for an op a backend lacks.
func NotImplemented(backend, op string) error {
	return &Error{Backend: backend, Op: op, Kind: ErrNotImplemented, Msg: "op not implemented by this backend"}
}

// ShapeError returns an ErrShape error naming the backend and op.
func ShapeError(backend, op, format string, args ...any) error {
	return &Error{Backend: backend, Op: op, Kind: ErrShape, Msg: fmt.Sprintf(format, args...)}
}

// Wrap wraps a device error with the backend and op; nil stays nil.
func Wrap(backend, op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Backend: backend, Op: op, Err: err, Msg: "failed"}
}

func errorf(op, format string, args ...any) error {
	return &Error{Op: op, Kind: ErrShape, Msg: fmt.Sprintf(format, args...)}
}
