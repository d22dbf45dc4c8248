// Command kiln trains, evaluates, serves and benchmarks convolutional
// networks on the CPU, OpenCL and CUDA backends.
//
// Usage:
//
//	kiln train    [flags]          train a model and save it
//	kiln eval     --model FILE     evaluate a saved model on a test set
//	kiln predict  --model FILE IMAGE...
//	kiln serve    --model FILE     serve models over HTTP
//	kiln bench                     compare backends on the same work
//	kiln devices                   list backends and devices
//
// Run `kiln COMMAND --help` for each command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kiln-ml/kiln/engine"
	"github.com/kiln-ml/kiln/server"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"train", "train a model on a dataset and save it", runTrain},
		{"eval", "evaluate a saved model on a dataset's test split", runEval},
		{"predict", "classify PNG/JPEG images with a saved model", runPredict},
		{"serve", "serve models over HTTP (Open Inference Protocol v2)", runServe},
		{"bench", "benchmark kernels, training and inference on every usable backend", runBench},
		{"devices", "list every known backend (compiled in or not), its devices, and why any is unusable", runDevices},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "kiln: train, evaluate and serve convolutional networks on CPU, OpenCL and CUDA backends.")
	fmt.Fprintln(w, "\nUsage: kiln COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'kiln COMMAND --help' for the flags of a command, 'kiln --version' for the version.")
	fmt.Fprintln(w, "\nEnvironment:")
	for _, e := range [][2]string{
		{"KILN_BACKEND", "overrides --backend auto (cpu, opencl or cuda)"},
		{"KILN_DATA_DIR", "directory searched for datasets (e.g. $KILN_DATA_DIR/mnist)"},
		{"KILN_CPU_KERNEL", "forces the cpu kernels (SGEMM and convolution): generic, avx2 or avx512 (ignored, with a warning, if unknown or the CPU lacks it)"},
		{"KILN_OPENCL_DEVICE", "picks the OpenCL device (index or name substring) when --device is empty"},
		{"KILN_CUDA_PLUGIN", "path of the CUDA backend plugin (default: kiln-cuda.so next to the kiln executable)"},
	} {
		fmt.Fprintf(w, "  %-19s %s\n", e[0], e[1])
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "help" && len(args) > 1 { // kiln help train
		args = []string{args[1], "--help"}
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "kiln %s\n", server.Version)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			case errors.Is(err, engine.ErrInterrupted), errors.Is(err, engine.ErrEvalInterrupted), errors.Is(err, context.Canceled): // Ctrl-C in train, eval or bench
				fmt.Fprintf(stderr, "kiln %s: %v\n", c.name, err)
				return 130 // as a shell reports a process ended by Ctrl-C
			default:
				fmt.Fprintf(stderr, "kiln %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "kiln: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// errUsage marks a flag error that the flag package already printed.
var errUsage = errors.New("usage error")

// newFlags returns a flag set that prints its usage to stderr (stdout for
// --help) and returns errors instead of exiting.
func newFlags(name, synopsis string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kiln "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: kiln %s %s\n", name, synopsis)
		if hasFlags(fs) {
			fmt.Fprintf(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// hasFlags reports whether fs defines any flag.
func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parse parses args, sending --help to stdout.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
		if a == "--" {
			break
		}
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	return nil
}
