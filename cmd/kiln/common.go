package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/bench"
	"github.com/kiln-ml/kiln/engine/data"
)

// backendFlags are shared by every command that computes.
type backendFlags struct {
	name   string
	device string
}

func (f *backendFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "backend", "auto", "compute backend: auto, cpu, opencl or cuda (auto tries cuda, opencl, cpu; $KILN_BACKEND overrides auto)")
	fs.StringVar(&f.device, "device", "", "device index or name substring within the backend (default: its best device)")
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
		fmt.Fprintln(stderr, rep)
	}
	d := b.Device()
	fmt.Fprintf(stderr, "backend %s on %s (%d compute units)\n", b.Name(), d.Name, d.ComputeUnits)
	if f.device != "" && b.Name() == "cpu" {
		fmt.Fprintf(stderr, "note: --device %q ignored: the cpu backend has one device (all cores)\n", f.device)
	}
	return b, nil
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
	return bench.WriteFileAtomic(path, func(w io.Writer) error {
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
	return fmt.Errorf("unexpected argument %q: %s takes only flags (see %s --help)", a, fs.Name(), fs.Name())
}
