package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/engine/data"
	"github.com/kiln-ml/kiln/internal/atomicfile"
	kern "github.com/kiln-ml/kiln/kernels/cpu"
)

// backendFlags are shared by every command that computes.
type backendFlags struct {
	name    string
	device  string
	profile string
}

func (f *backendFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "backend", "auto", "compute backend: auto, cpu, opencl or cuda (auto tries cuda, opencl, cpu; $KILN_BACKEND overrides auto)")
	fs.StringVar(&f.device, "device", "", "device index or name substring within the backend (default: its best device)")
	fs.StringVar(&f.profile, "cpuprofile", "", "write a Go CPU profile of the whole command to `FILE` when it ends (read it with go tool pprof)")
}

// startProfile starts the CPU profile --cpuprofile asks for. The returned
// stop ends it and writes the file (atomically, as every output); it
// reports a failure on stderr, since the command's own work is done by
// then. Without --cpuprofile both are no-ops.
func (f *backendFlags) startProfile(stderr io.Writer) (stop func(), err error) {
	if f.profile == "" {
		return func() {}, nil
	}
	if err := f.checkProfile(); err != nil {
		return nil, err
	}
	buf := new(bytes.Buffer)
	if err := pprof.StartCPUProfile(buf); err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		err := atomicfile.Write(f.profile, func(w io.Writer) error {
			_, err := w.Write(buf.Bytes())
			return err
		})
		if err != nil {
			fmt.Fprintf(stderr, "kiln: --cpuprofile: %v\n", err)
			return
		}
		fmt.Fprintf(stderr, "CPU profile written to %s (go tool pprof %s)\n", f.profile, f.profile)
	}, nil
}

// checkProfile refuses a --cpuprofile file that could not be written, before
// the work (and before a dataset loads), not after it.
func (f *backendFlags) checkProfile() error {
	if f.profile == "" {
		return nil
	}
	if st, err := os.Stat(filepath.Dir(f.profile)); err != nil || !st.IsDir() {
		return fmt.Errorf("--cpuprofile %s: its directory does not exist", f.profile)
	}
	if st, err := os.Stat(f.profile); err == nil && st.IsDir() {
		return fmt.Errorf("--cpuprofile %s is a directory: give a file name", f.profile)
	}
	if err := checkWritable(filepath.Dir(f.profile)); err != nil {
		return fmt.Errorf("--cpuprofile %s: %w", f.profile, err)
	}
	return nil
}

// checkModelFile refuses a --model file that cannot be opened before a
// backend opens (on a GPU host, before the device initialises); engine.Load
// checks what is inside.
func checkModelFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("--model: %w", err)
	}
	if st.IsDir() {
		return fmt.Errorf("--model %s is a directory, not a model file", path)
	}
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--model: %w", err)
	}
	return fh.Close()
}

// check refuses a --backend that names no compiled-in backend before any
// slow work (loading a dataset) runs; open would refuse it only after. It
// also checks --cpuprofile's file.
func (f *backendFlags) check() error {
	if err := f.checkProfile(); err != nil {
		return err
	}
	if f.name == "" || f.name == "auto" || slices.Contains(backend.Registered(), f.name) {
		return nil
	}
	// Open looks an unregistered name up, opens nothing and says why.
	b, _, err := backend.Open(f.name, backend.Options{Device: f.device})
	if b != nil {
		return b.Close()
	}
	return err
}

// open opens the backend and tells the user which one runs and why.
func (f *backendFlags) open(stderr io.Writer) (backend.Backend, error) {
	b, rep, err := backend.Open(f.name, backend.Options{Device: f.device})
	if err != nil {
		if len(rep.Attempts) > 1 {
			fmt.Fprintln(stderr, rep)
		}
		return nil, err
	}
	if f.name == "auto" || f.name == "" {
		fmt.Fprintln(stderr, autoSummary(rep))
	}
	d := b.Device()
	if d.Features != "" {
		fmt.Fprintf(stderr, "backend %s on %s (%d compute units, %s)\n", b.Name(), d.Name, d.ComputeUnits, d.Features)
	} else {
		fmt.Fprintf(stderr, "backend %s on %s (%d compute units)\n", b.Name(), d.Name, d.ComputeUnits)
	}
	if f.device != "" && b.Name() == "cpu" {
		fmt.Fprintf(stderr, "note: --device %q ignored: the cpu backend has one device (all cores)\n", f.device)
	}
	if b.Name() == "cpu" {
		warnCPUKernelEnv(stderr)
	}
	return b, nil
}

// warnCPUKernelEnv prints a one-line warning when $KILN_CPU_KERNEL is set
// to a value the cpu kernels ignore (a name that is no kernel's, or a
// kernel this CPU cannot run), saying which kernels run instead.
func warnCPUKernelEnv(w io.Writer) {
	if err := kern.CheckKernelEnv(os.Getenv(kern.KernelEnv)); err != nil {
		fmt.Fprintf(w, "warning: %v\n", err)
	}
}

// dataFlags select a dataset.
type dataFlags struct {
	name string
	dir  string
}

func (f *dataFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "data", "mnist", "dataset: mnist, fashion-mnist, cifar10, or a directory of IDX files or CIFAR-10 binary batches")
	fs.StringVar(&f.dir, "data-dir", "", "directory holding the dataset files (default: found automatically for mnist and fashion-mnist)")
}

func (f *dataFlags) load(train bool) (*data.Dataset, error) {
	return data.Load(f.name, f.dir, train)
}

// writeJSON writes v as indented JSON to path atomically (temp file, fsync,
// rename), so an interrupted run never leaves half a report.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	b = append(b, '\n')
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// noArgs rejects stray arguments for commands that take none.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() == 0 {
		return nil
	}
	a := fs.Arg(0)
	if (fs.Name() == "kiln eval" || fs.Name() == "kiln serve") && strings.HasSuffix(a, ".kiln") {
		return fmt.Errorf("unexpected argument %q: give the model file with --model %s", a, a)
	}
	for _, f := range fs.Args()[1:] {
		if strings.HasPrefix(f, "-") {
			return fmt.Errorf("unexpected argument %q: %s takes only flags, and the ones after it (%s …) were not read (see %s --help)", a, fs.Name(), f, fs.Name())
		}
	}
	if !hasFlags(fs) {
		return fmt.Errorf("unexpected argument %q: %s takes no arguments (see %s --help)", a, fs.Name(), fs.Name())
	}
	return fmt.Errorf("unexpected argument %q: %s takes only flags (see %s --help)", a, fs.Name(), fs.Name())
}

// namedPath is a file a flag names.
type namedPath struct{ flag, path string }

// checkOutputs fails when an output file is also an input (the model, a
// spec) or another output: writing it would destroy what is there (an eval
// --report naming the model file replaced the model by the report). Empty
// paths are not given and skipped.
func checkOutputs(outputs, inputs []namedPath) error {
	for i, o := range outputs {
		if o.path == "" {
			continue
		}
		for _, other := range append(outputs[i+1:len(outputs):len(outputs)], inputs...) {
			if other.path != "" && sameFile(o.path, other.path) {
				return fmt.Errorf("--%s %s is also given as --%s: writing it would destroy that file (give another name)", o.flag, o.path, other.flag)
			}
		}
	}
	return nil
}

// sameFile reports whether paths a and b name one file: the same absolute
// path, or (both existing) the same inode, as through a link. A path that
// does not exist yet (an output a run will write) names the same file as
// another when both have one name in the same directory, reached through
// a link or another spelling: writing one then creates the other.
func sameFile(a, b string) bool {
	aa, errA := filepath.Abs(a)
	ab, errB := filepath.Abs(b)
	if errA == nil && errB == nil && aa == ab {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	ca, cb := filepath.Clean(a), filepath.Clean(b)
	name := filepath.Base(ca)
	if name != filepath.Base(cb) || name == "." || name == ".." || name == string(filepath.Separator) {
		return false
	}
	da, errA := os.Stat(filepath.Dir(ca))
	db, errB := os.Stat(filepath.Dir(cb))
	return errA == nil && errB == nil && os.SameFile(da, db)
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// autoSummary is --backend auto's report of what it tried, with the
// backends this binary was built without on one line (kiln devices says
// how to add them) rather than a line of error each.
func autoSummary(rep backend.Report) string {
	var lines, absent []string
	for _, a := range rep.Attempts {
		switch {
		case a.Err == nil:
			lines = append(lines, fmt.Sprintf("backend %s: chosen (%s)", a.Name, a.Reason))
		case errors.Is(a.Err, backend.ErrNotCompiled):
			absent = append(absent, a.Name)
		default:
			lines = append(lines, fmt.Sprintf("backend %s: skipped: %v", a.Name, a.Err))
		}
	}
	if len(absent) > 0 {
		lines = append([]string{fmt.Sprintf("backend %s: not in this build (kiln devices says how to add it)", strings.Join(absent, ", "))}, lines...)
	}
	return strings.Join(lines, "\n")
}
