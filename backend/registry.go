package backend

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
)

// Options are passed to a backend when it is opened.
type Options struct {
	// Device selects a device by index ("0") or by a case-insensitive
	// substring of its name; empty picks the backend's best device.
	Device string
	// CacheDir is where compiled kernels are cached; empty means the user
	// cache directory.
	CacheDir string
	// Auto is set by Open when it tries backends for "auto". A backend may
	// then decline (with ErrUnavailable, saying why) a device it knows to be
	// a poor choice, such as an OpenCL driver that runs on the CPU, where
	// the native cpu backend does the same work faster.
	Auto bool
}

// Factory is what a backend registers.
type Factory struct {
	// Name is the registry name used by --backend.
	Name string
	// Open creates the backend. It returns an error wrapping ErrUnavailable
	// when the backend cannot run on this host, saying why.
	Open func(Options) (Backend, error)
	// Probe lists the devices this backend could use here, without keeping
	// them open; it returns an error saying why none can be used.
	Probe func() ([]DeviceInfo, error)
}

// Known lists the backends kiln has, in the order auto tries them, with the
// build tag that compiles each in.
var Known = []struct{ Name, Tag string }{
	{"cuda", "cuda"},
	{"opencl", "opencl"},
	{"cpu", ""},
}

// EnvBackend is the environment variable that overrides --backend auto.
const EnvBackend = "KILN_BACKEND"

var (
	regMu    sync.RWMutex
	registry = map[string]Factory{}
)

// Register adds a backend. Backends call it from init in files behind their
// build tags. Registering a name twice panics: it is a programming error
// caught at start-up, not a runtime condition.
func Register(f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[f.Name]; dup {
		panic("backend: Register called twice for " + f.Name)
	}
	registry[f.Name] = f
}

// Registered returns the names of compiled-in backends, sorted.
func Registered() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookup(name string) (Factory, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := registry[name]
	return f, ok
}

// Attempt records why a backend was or was not chosen.
type Attempt struct {
	Name   string
	Err    error // nil for the chosen backend
	Reason string
}

// Report says which backend Open chose and why the others were skipped.
type Report struct {
	Requested string
	Chosen    string
	Attempts  []Attempt
}

// String renders the report in one or more human lines.
func (r Report) String() string {
	var b strings.Builder
	for _, a := range r.Attempts {
		if a.Err == nil {
			fmt.Fprintf(&b, "backend %s: chosen (%s)\n", a.Name, a.Reason)
		} else {
			fmt.Fprintf(&b, "backend %s: skipped: %v\n", a.Name, a.Err)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// ErrNotCompiled is wrapped (with ErrUnavailable) by the error of a known
// backend that this binary was built without.
var ErrNotCompiled = errors.New("not compiled into this binary")

// notCompiled is the error for a known backend that this binary lacks.
func notCompiled(name string) error {
	for _, k := range Known {
		if k.Name == name && k.Tag != "" {
			return fmt.Errorf("%w: %s backend %w (build with -tags %s)", ErrUnavailable, name, ErrNotCompiled, k.Tag)
		}
	}
	return fmt.Errorf("%w: unknown backend %q (known: %s)", ErrUnavailable, name, knownNames())
}

func knownNames() string {
	var s []string
	for _, k := range Known {
		s = append(s, k.Name)
	}
	return strings.Join(s, ", ")
}

// Open opens a backend by name. "auto" (or "") tries cuda, then opencl, then
// cpu, unless KILN_BACKEND names one. The report says what was tried.
func Open(name string, opts Options) (Backend, Report, error) {
	rep := Report{Requested: name}
	fromEnv := ""
	if name == "" || name == "auto" {
		if env := os.Getenv(EnvBackend); env != "" && env != "auto" {
			name = env
			rep.Requested = env + " (from " + EnvBackend + ")"
			fromEnv = " (named by $" + EnvBackend + ")"
		}
	}
	if name != "" && name != "auto" {
		f, ok := lookup(name)
		if !ok {
			err := notCompiled(name)
			if fromEnv != "" {
				err = fmt.Errorf("%w%s", err, fromEnv)
			}
			rep.Attempts = append(rep.Attempts, Attempt{Name: name, Err: err})
			return nil, rep, err
		}
		b, err := f.Open(opts)
		if err != nil {
			rep.Attempts = append(rep.Attempts, Attempt{Name: name, Err: err})
			return nil, rep, fmt.Errorf("open backend %s%s: %w", name, fromEnv, err)
		}
		rep.Chosen = name
		rep.Attempts = append(rep.Attempts, Attempt{Name: name, Reason: "requested"})
		return b, rep, nil
	}
	var errs []error
	autoOpts := opts
	autoOpts.Auto = true
	for _, k := range Known {
		f, ok := lookup(k.Name)
		if !ok {
			rep.Attempts = append(rep.Attempts, Attempt{Name: k.Name, Err: notCompiled(k.Name)})
			continue
		}
		b, err := f.Open(autoOpts)
		if err != nil {
			rep.Attempts = append(rep.Attempts, Attempt{Name: k.Name, Err: err})
			errs = append(errs, err)
			continue
		}
		rep.Chosen = k.Name
		rep.Attempts = append(rep.Attempts, Attempt{Name: k.Name, Reason: "first usable in order " + knownNames()})
		return b, rep, nil
	}
	return nil, rep, fmt.Errorf("no usable backend: %w", errors.Join(errs...))
}

// ProbeResult is one line of `kiln devices`.
type ProbeResult struct {
	Name     string
	Compiled bool
	Devices  []DeviceInfo
	Err      error
}

// ProbeAll probes every known backend, compiled in or not.
func ProbeAll() []ProbeResult {
	var out []ProbeResult
	for _, k := range Known {
		f, ok := lookup(k.Name)
		if !ok {
			out = append(out, ProbeResult{Name: k.Name, Err: notCompiled(k.Name)})
			continue
		}
		r := ProbeResult{Name: k.Name, Compiled: true}
		if f.Probe != nil {
			r.Devices, r.Err = f.Probe()
		} else {
			b, err := f.Open(Options{})
			if err != nil {
				r.Err = err
			} else {
				r.Devices = []DeviceInfo{b.Device()}
				r.Err = b.Close()
			}
		}
		out = append(out, r)
	}
	return out
}
