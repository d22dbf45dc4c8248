// Package rtc compiles CUDA C to PTX with NVRTC and caches the PTX on disk.
//
// It links only libnvrtc (through gorgonia.org/cu/nvrtc, which has no init
// side effects), never the CUDA driver, so it works on hosts without a GPU:
// CI uses it to prove every kernel compiles. The NVRTC calls need the build
// tag cuda; without it Compile reports ErrNoNVRTC and the cache logic still
// builds and is tested.
//
// Cache entries are keyed by the SHA-256 of the source, the options, the
// architecture and the NVRTC version, so a compiler upgrade or an edited
// kernel never serves stale PTX. Entries are written to a temporary file,
// synced and renamed, so concurrent processes never read a torn file.
package rtc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoNVRTC is returned by Compile in builds without the cuda tag.
var ErrNoNVRTC = errors.New("NVRTC not compiled in (build with -tags cuda)")

// Request is one compilation.
type Request struct {
	Source  string   // the CUDA C program
	Name    string   // program name used in compiler messages
	Arch    string   // virtual architecture, e.g. "compute_90"
	Options []string // NVRTC options besides --gpu-architecture
}

// Result is a compiled program.
type Result struct {
	PTX    string // the PTX text, without the trailing NUL NVRTC appends
	Log    string // compiler log (warnings), trimmed
	Cached bool   // true when the PTX came from the disk cache
	Key    string // the cache key (hex SHA-256)
	Arch   string // the architecture compiled for
}

// Key returns the cache key of a request for an NVRTC version ("11.8").
func Key(r Request, nvrtcVersion string) string {
	h := sha256.New()
	field := func(s string) {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	field("kiln-ptx-v1")
	field(r.Source)
	field(r.Arch)
	field(nvrtcVersion)
	for _, o := range r.Options {
		field(o)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Cache is an on-disk PTX cache in Dir. The zero Dir disables caching.
type Cache struct {
	Dir string
}

// DefaultDir returns <user cache dir>/kiln/cuda-ptx.
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("rtc: no user cache directory: %w", err)
	}
	return filepath.Join(d, "kiln", "cuda-ptx"), nil
}

func (c Cache) path(key, arch string) string {
	return filepath.Join(c.Dir, arch+"-"+key+".ptx")
}

// Get returns the cached PTX for key, if present.
func (c Cache) Get(key, arch string) (string, bool) {
	if c.Dir == "" {
		return "", false
	}
	data, err := os.ReadFile(c.path(key, arch))
	if err != nil || len(data) == 0 {
		return "", false
	}
	return string(data), true
}

// Put stores ptx under key atomically (temp file, fsync, rename).
func (c Cache) Put(key, arch, ptx string) error {
	if c.Dir == "" {
		return nil
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return fmt.Errorf("rtc: create cache dir: %w", err)
	}
	f, err := os.CreateTemp(c.Dir, ".tmp-*.ptx")
	if err != nil {
		return fmt.Errorf("rtc: create cache file: %w", err)
	}
	tmp := f.Name()
	_, werr := f.WriteString(ptx)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, c.path(key, arch))
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("rtc: write cache entry: %w", werr)
	}
	return nil
}

// Compile returns the PTX for r, from the cache when present, otherwise by
// running NVRTC and storing the result. A cache that cannot be written is
// not an error (the PTX is still returned).
func (c Cache) Compile(r Request) (Result, error) {
	ver, err := Version()
	if err != nil {
		return Result{}, err
	}
	key := Key(r, ver)
	if ptx, ok := c.Get(key, r.Arch); ok {
		return Result{PTX: ptx, Cached: true, Key: key, Arch: r.Arch}, nil
	}
	ptx, log, err := compile(r)
	if err != nil {
		return Result{Log: log, Key: key, Arch: r.Arch}, err
	}
	_ = c.Put(key, r.Arch, ptx) // best effort: a read-only cache must not stop the backend
	return Result{PTX: ptx, Log: log, Key: key, Arch: r.Arch}, nil
}

// CompileBest compiles for the first architecture in archs that this NVRTC
// accepts, so a device newer than the compiler still gets PTX (the driver
// JIT-compiles PTX of an older virtual architecture). It returns the error
// of the first architecture when none is accepted.
func (c Cache) CompileBest(r Request, archs []string) (Result, error) {
	var first error
	for _, a := range archs {
		r.Arch = a
		res, err := c.Compile(r)
		if err == nil {
			return res, nil
		}
		if first == nil {
			first = err
		}
		if !IsArchError(err) {
			return res, err
		}
	}
	if first == nil {
		first = errors.New("rtc: no architecture to compile for")
	}
	return Result{}, first
}

// ArchError reports that NVRTC rejected the architecture option.
type ArchError struct {
	Arch string // the architecture asked for, e.g. "compute_90"
	Err  error  // the NVRTC error
}

// Error names the rejected architecture and NVRTC's error.
func (e *ArchError) Error() string {
	return fmt.Sprintf("rtc: NVRTC does not support --gpu-architecture=%s: %v", e.Arch, e.Err)
}

// Unwrap returns the NVRTC error.
func (e *ArchError) Unwrap() error { return e.Err }

// IsArchError reports whether err says the architecture is unsupported.
func IsArchError(err error) bool {
	var ae *ArchError
	return errors.As(err, &ae)
}

// CompileError is a compilation failure with the compiler's log.
type CompileError struct {
	Name, Arch string // the program's name and the architecture it was compiled for
	Log        string // the compiler's log
	Err        error  // the NVRTC error
}

// Error names the program and architecture, then gives the compiler's log.
func (e *CompileError) Error() string {
	return fmt.Sprintf("rtc: nvrtcCompileProgram %s for %s: %v\n%s", e.Name, e.Arch, e.Err, strings.TrimSpace(e.Log))
}

// Unwrap returns the NVRTC error.
func (e *CompileError) Unwrap() error { return e.Err }

// ArchesFor lists the virtual architectures to try for a device of compute
// capability major.minor: its own first, then older ones down to
// compute_52, newest first.
func ArchesFor(major, minor int) []string {
	known := []int{90, 89, 87, 86, 80, 75, 72, 70, 62, 61, 60, 53, 52}
	cc := major*10 + minor
	out := []string{fmt.Sprintf("compute_%d", cc)}
	for _, k := range known {
		if k < cc {
			out = append(out, fmt.Sprintf("compute_%d", k))
		}
	}
	return out
}

// trimNUL drops the NUL terminator NVRTC includes in PTX and log sizes.
func trimNUL(s string) string { return strings.TrimRight(s, "\x00") }
