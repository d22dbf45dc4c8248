package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/term"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/bench"
	"github.com/kiln-ml/kiln/internal/atomicfile"
)

// runBench implements `kiln bench`: the same suite on every usable backend,
// reported as Markdown (stdout and DIR/bench.md), JSON (DIR/bench.json) and
// a PNG chart (DIR/bench.png), optionally compared with an older JSON.
func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "[--backend all|cpu|opencl|cuda] [--device D] [--quick] [--suite LIST] [--sgemm-sizes LIST] [--repeat N] [--out DIR] [--compare OLD.json]", stdout, stderr)
	backends := fs.String("backend", "all", "backends to measure: all (every usable one), or a comma list of cpu, opencl, cuda")
	device := fs.String("device", "", "device index or name substring within each backend (default: its best device)")
	quick := fs.Bool("quick", false, "smaller SGEMM sizes, fewer and shorter runs (a minute or less)")
	out := fs.String("out", "out/bench", "directory for bench.md, bench.json and bench.png (created if missing)")
	compare := fs.String("compare", "", "an older bench.json to compare with: prints old/new ratios per case")
	repeat := fs.Int("repeat", 0, "timed runs per case (0: the default, 10, or 3 with --quick); the batch-1 latency case always times 200 single calls (30 with --quick), for its p50/p99")
	suites := fs.String("suite", strings.Join(bench.AllSuites(), ","), "comma list of suites to run: "+strings.Join(bench.AllSuites(), ", "))
	sizes := fs.String("sgemm-sizes", "", "comma list of square SGEMM sizes (default 256,512,1024,2048; 64,128,256 with --quick)")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *repeat < 0 {
		return fmt.Errorf("--repeat must not be negative (0 takes the default), got %d", *repeat)
	}
	cfg := bench.Config{Device: *device, Quick: *quick, Repeat: *repeat}
	for _, b := range benchList(*backends) {
		switch b {
		case "all", "cpu", "opencl", "cuda":
			cfg.Backends = append(cfg.Backends, b)
		default:
			return fmt.Errorf("--backend: unknown backend %q (want all, cpu, opencl or cuda)", b)
		}
	}
	if len(cfg.Backends) == 0 {
		return fmt.Errorf("--backend is empty (want all, cpu, opencl or cuda)")
	}
	for _, b := range cfg.Backends { // a backend not in this binary fails now, not after the others ran
		if b != "all" && !slices.Contains(backend.Registered(), b) {
			return fmt.Errorf("--backend %s: the %s backend is not compiled into this binary (make %s builds one with it; --backend all runs every usable backend and skips the rest)", b, b, map[string]string{"cuda": "cuda", "opencl": "build-opencl"}[b])
		}
	}
	for _, s := range benchList(*suites) {
		if !slices.Contains(bench.AllSuites(), s) {
			return fmt.Errorf("--suite: unknown suite %q (want some of %s)", s, strings.Join(bench.AllSuites(), ","))
		}
		cfg.Suites = append(cfg.Suites, s)
	}
	if len(cfg.Suites) == 0 {
		return fmt.Errorf("--suite is empty (want some of %s)", strings.Join(bench.AllSuites(), ","))
	}
	// A suite or size given twice runs once: each copy ran again, and the
	// comparison and the chart then held the case twice.
	var notes []string
	var dupSuites []string
	cfg.Suites, dupSuites = uniqueInOrder(cfg.Suites)
	for _, s := range dupSuites {
		notes = append(notes, fmt.Sprintf("note: --suite lists %s more than once; it runs once", s))
	}
	if note := sgemmSizesNote(*sizes, cfg.Suites); note != "" {
		notes = append(notes, note)
	}
	if strings.TrimSpace(*sizes) != "" { // empty: the default sizes
		for i, s := range strings.Split(*sizes, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				return fmt.Errorf("--sgemm-sizes: item %d of %q is empty", i+1, *sizes)
			}
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return fmt.Errorf("--sgemm-sizes: %q is not a positive integer", s)
			}
			cfg.SGEMMSizes = append(cfg.SGEMMSizes, n)
		}
		var dupSizes []int
		cfg.SGEMMSizes, dupSizes = uniqueInOrder(cfg.SGEMMSizes)
		for _, n := range dupSizes {
			notes = append(notes, fmt.Sprintf("note: --sgemm-sizes lists %d more than once; it runs once", n))
		}
	}
	// The outputs must not replace the report compared with (the default
	// --out holds the last run's bench.json: comparing with it and writing
	// over it lost the baseline).
	if *out != "" && *compare != "" {
		for _, name := range []string{"bench.json", "bench.md", "bench.png"} {
			if f := filepath.Join(*out, name); sameFile(f, *compare) {
				return fmt.Errorf("--compare %s is the %s this run would write into --out %s: writing it would destroy the baseline (give another --out, e.g. --out %s-new)", *compare, name, *out, filepath.Clean(*out))
			}
		}
	}
	// Read the old report first, so a bad file fails before a long run.
	var old *bench.Report
	if *compare != "" {
		var err error
		if old, err = bench.ReadJSONFile(*compare); err != nil {
			return fmt.Errorf("--compare: %w", err)
		}
	}
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		if err := checkWritable(*out); err != nil { // before a long run
			return fmt.Errorf("--out: %w", err)
		}
	}

	for _, note := range notes {
		fmt.Fprintln(stderr, note)
	}
	if note := cpuDeviceNote(cfg.Backends, *device); note != "" {
		fmt.Fprintln(stderr, note)
	}
	if slices.Contains(cfg.Backends, "all") || slices.Contains(cfg.Backends, "cpu") {
		warnCPUKernelEnv(stderr)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg.Progress = newBenchProgress(stderr).show
	fmt.Fprintf(stderr, "kiln bench: suites %s on %s\n", strings.Join(cfg.Suites, ","), strings.Join(cfg.Backends, ","))
	// runErr with a report is an interruption (Ctrl-C): the report holds
	// the cases measured before it.
	rep, runErr := benchRun(ctx, cfg)
	stop() // a second Ctrl-C ends kiln at once (the reports are written whole or not at all)
	switch {
	case rep == nil:
		return runErr
	case runErr != nil && len(rep.Results) == 0:
		return fmt.Errorf("%w; no case finished, so no report was written", runErr)
	case runErr != nil:
		// The cases measured before Ctrl-C are reported, marked as a
		// partial run (bench.md and bench.json say so); kiln still fails.
		fmt.Fprintf(stderr, "kiln bench: interrupted %s; reporting the %d measured\n", rep.Interrupted, len(rep.Results))
	}
	if rep.Load.Busy() {
		fmt.Fprintf(stderr, "kiln bench: note: the machine was busy during the run (%s); single figures are less reliable than usual\n", rep.Load)
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		return err
	}
	var cmp bytes.Buffer
	if old != nil {
		fmt.Fprintf(&cmp, "\n### Compared with %s (%s)\n\n", *compare, old.Started.Format("2006-01-02 15:04 MST"))
		for _, r := range []struct {
			name string
			l    *bench.HostLoad
		}{{"old", old.Load}, {"new", rep.Load}} {
			if r.l.Busy() {
				fmt.Fprintf(&cmp, "The %s run's machine was busy (%s): these ratios mix the change with the load.\n\n", r.name, r.l)
			}
		}
		if err := bench.Compare(old, rep).WriteMarkdown(&cmp); err != nil {
			return err
		}
	}
	// The files are written before stdout, so a closed or full stdout
	// (kiln bench | head) does not lose the finished run.
	var fileErr error
	if *out != "" {
		files := []struct {
			name  string
			write func(io.Writer) error
		}{
			{"bench.md", func(w io.Writer) error { _, err := w.Write(append(md.Bytes(), cmp.Bytes()...)); return err }},
			{"bench.json", rep.WriteJSON},
			{"bench.png", rep.WritePNG},
		}
		for _, f := range files {
			if fileErr = atomicfile.Write(filepath.Join(*out, f.name), f.write); fileErr != nil {
				break
			}
		}
	}
	var outErr error
	if _, err := stdout.Write(append(md.Bytes(), cmp.Bytes()...)); err != nil {
		outErr = fmt.Errorf("write the report to standard output: %w", err)
		if *out != "" && fileErr == nil {
			outErr = fmt.Errorf("%w (the files in %s were written)", outErr, *out)
		}
	}
	if *out != "" && fileErr == nil {
		fmt.Fprintf(stderr, "wrote %s, %s and %s\n", filepath.Join(*out, "bench.md"), filepath.Join(*out, "bench.json"), filepath.Join(*out, "bench.png"))
	}
	return errors.Join(fileErr, outErr, runErr)
}

// benchRun is bench.Run; tests replace it to interrupt a run.
var benchRun = bench.Run

// cpuDeviceNote is the note, like train's, that --device does not apply to
// the cpu backend (it has one device, all cores); "" when cpu is not run or
// no device was asked for.
func cpuDeviceNote(backends []string, device string) string {
	if device == "" || !slices.Contains(backends, "cpu") && !slices.Contains(backends, "all") {
		return ""
	}
	for _, b := range backends {
		if b != "cpu" {
			return fmt.Sprintf("note: --device %q ignored for the cpu backend: it has one device (all cores)", device)
		}
	}
	return fmt.Sprintf("note: --device %q ignored: the cpu backend has one device (all cores)", device)
}

// sgemmSizesNote is the note that --sgemm-sizes does not apply when
// --suite leaves out sgemm; "" when no sizes were given or sgemm runs.
func sgemmSizesNote(sizes string, suites []string) string {
	if strings.TrimSpace(sizes) == "" || slices.Contains(suites, bench.SuiteSGEMM) {
		return ""
	}
	return fmt.Sprintf("note: --sgemm-sizes %s ignored: --suite %s leaves out sgemm", sizes, strings.Join(suites, ","))
}

// benchList splits a comma list, dropping blanks.
func benchList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// uniqueInOrder returns s without repeats, each value at its first place,
// and the values that were repeated (once each, in the same order).
func uniqueInOrder[T comparable](s []T) (unique, repeated []T) {
	seen := map[T]int{}
	for _, v := range s {
		seen[v]++
		switch seen[v] {
		case 1:
			unique = append(unique, v)
		case 2:
			repeated = append(repeated, v)
		}
	}
	return unique, repeated
}

// benchProgress prints which case runs and how far the run is: a line that
// is rewritten in place on a terminal, one line per finished case always.
type benchProgress struct {
	w   io.Writer
	tty bool
}

func newBenchProgress(w io.Writer) *benchProgress {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &benchProgress{w: w, tty: tty}
}

func (p *benchProgress) show(ev bench.Progress) {
	head := fmt.Sprintf("[%*d/%d] %s %s %s", len(strconv.Itoa(ev.Total)), ev.Index, ev.Total, ev.Backend, ev.Case, ev.Size)
	if !ev.Done {
		if p.tty {
			fmt.Fprintf(p.w, "\r\033[K%s ...", head)
		}
		return
	}
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	switch {
	case ev.Interrupted:
		fmt.Fprintf(p.w, "%s: interrupted\n", head)
	case ev.Skipped != "":
		fmt.Fprintf(p.w, "%s: skipped: %s\n", head, ev.Skipped)
	case ev.Result != nil:
		r := ev.Result
		line := fmt.Sprintf("%s: %s", head, bench.FormatSeconds(r.MedianSeconds))
		if r.GFLOPS > 0 {
			line += fmt.Sprintf("  %.1f GFLOP/s", r.GFLOPS)
		}
		if r.ImagesPerSecond > 0 && r.P50Ms == 0 {
			line += fmt.Sprintf("  %.0f images/s", r.ImagesPerSecond)
		}
		if r.P50Ms > 0 {
			line += fmt.Sprintf("  p50 %.3f ms  p99 %.3f ms", r.P50Ms, r.P99Ms)
		}
		if r.GBytesPerSecond > 0 {
			line += fmt.Sprintf("  %.1f GB/s", r.GBytesPerSecond)
		}
		fmt.Fprintln(p.w, line)
	}
}
