package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// SchemaVersion is the version of the JSON report layout. Field names are
// stable; a new field may be added without changing it, a renamed or
// removed one changes it.
const SchemaVersion = 1

// Report is the outcome of one Run, written as bench.json.
type Report struct {
	Schema  int       `json:"schema"`
	Host    HostInfo  `json:"host"`
	Started time.Time `json:"started"`
	Quick   bool      `json:"quick"`
	Suites  []string  `json:"suites"`
	// Peak is the host CPU's measured FP32 peak (zero when the cpu backend
	// was not run).
	Peak Peak `json:"peak"`
	// Load is how busy the machine was with other work during the run
	// (absent where it cannot be read: only Linux reports it).
	Load    *HostLoad `json:"load,omitempty"`
	Results []Result  `json:"results"`
	// Skipped lists backends and cases that did not run, with the reason.
	Skipped []Skip `json:"skipped"`
	// Interrupted, when not empty, says that the run was stopped before
	// its last case (Ctrl-C) and where, as "after 3 of 17 cases, during
	// cpu conv1 fwd 32x28x28x1": Results holds only the cases measured
	// before.
	Interrupted string `json:"interrupted,omitempty"`
}

// HostInfo describes the machine a report was measured on.
type HostInfo struct {
	Name       string `json:"name"`
	CPU        string `json:"cpu"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	GoVersion  string `json:"go_version"`
}

// Result is one case on one backend. Every field but Features is always
// present; a metric that does not apply to the case is 0. Times are per op.
type Result struct {
	Host    string `json:"host"`
	Backend string `json:"backend"`
	Device  string `json:"device"`
	// Features is the device's backend.DeviceInfo.Features: which of the
	// backend's code paths ran (the cpu backend's kernels, as "avx2
	// kernels"). Absent where the backend has one path, and in reports
	// written before the field was added.
	Features string `json:"features,omitempty"`
	Suite    string `json:"suite"`
	Case     string `json:"case"`
	Size     string `json:"size"`
	Batch    int    `json:"batch"`
	// Runs is the number of timed runs; ItersPerRun the ops in each.
	Runs          int     `json:"runs"`
	ItersPerRun   int     `json:"iters_per_run"`
	MedianSeconds float64 `json:"median_seconds"`
	MinSeconds    float64 `json:"min_seconds"`
	MaxSeconds    float64 `json:"max_seconds"`
	Q1Seconds     float64 `json:"q1_seconds"`
	Q3Seconds     float64 `json:"q3_seconds"`
	// Flops is the flop count of one op (see the package doc for formulas).
	Flops           float64 `json:"flops"`
	GFLOPS          float64 `json:"gflops"`
	PeakPercent     float64 `json:"peak_percent"`
	GBytesPerSecond float64 `json:"gbytes_per_second"`
	ImagesPerSecond float64 `json:"images_per_second"`
	P50Ms           float64 `json:"p50_ms"`
	P99Ms           float64 `json:"p99_ms"`
}

// Key identifies a case across reports: backend, case and size.
func (r Result) Key() string { return r.Backend + " " + r.Case + " " + r.Size }

// throughput is the images/s a report shows: none for a latency case
// (P50Ms set), whose batch-1 images/s is only 1/median and is given as
// p50/p99 instead (Markdown, progress line and chart alike).
func (r Result) throughput() float64 {
	if r.P50Ms > 0 {
		return 0
	}
	return r.ImagesPerSecond
}

// devices lists each backend's device once, in result order, as
// "cpu `amd64` (avx2 kernels)": the features name the code path that ran.
func (r *Report) devices() []string {
	var out []string
	for _, res := range r.Results {
		d := fmt.Sprintf("%s `%s`", res.Backend, res.Device)
		if res.Features != "" {
			d += " (" + res.Features + ")"
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// Skip records a backend or case that did not run.
type Skip struct {
	Backend string `json:"backend"`
	Case    string `json:"case,omitempty"`
	Reason  string `json:"reason"`
}

func hostInfo() HostInfo {
	h := HostInfo{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, GoVersion: runtime.Version()}
	h.Name, _ = os.Hostname()
	h.CPU = cpuModel("/proc/cpuinfo")
	if h.CPU == "" {
		h.CPU = runtime.GOARCH
	}
	return h
}

// cpuModel returns the first "model name" line of a cpuinfo file.
func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// WriteJSON writes the report as indented JSON. Its results and skipped
// lists are lists even when empty ([], not null), so readers need not
// tell the two apart.
func (r *Report) WriteJSON(w io.Writer) error {
	out := *r
	if out.Skipped == nil {
		out.Skipped = []Skip{}
	}
	if out.Results == nil {
		out.Results = []Result{}
	}
	b, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ReadJSON decodes and checks a report written by WriteJSON.
func ReadJSON(r io.Reader) (*Report, error) {
	var rep Report
	dec := json.NewDecoder(r)
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("not a kiln bench JSON report: %w", err)
	}
	if rep.Schema == 0 {
		return nil, errors.New(`not a kiln bench JSON report: no "schema" field`)
	}
	if rep.Schema > SchemaVersion {
		return nil, fmt.Errorf("report schema %d is newer than this kiln (%d)", rep.Schema, SchemaVersion)
	}
	for i, res := range rep.Results {
		if res.Backend == "" || res.Case == "" {
			return nil, fmt.Errorf("result %d has no backend or case", i)
		}
		if !(res.MedianSeconds > 0) {
			return nil, fmt.Errorf("result %d (%s) has median_seconds %v, want > 0", i, res.Key(), res.MedianSeconds)
		}
	}
	return &rep, nil
}

// ReadJSONFile reads a report from a file.
func ReadJSONFile(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rep, err := ReadJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}

// FormatSeconds renders a duration in seconds with a readable unit.
func FormatSeconds(s float64) string {
	switch {
	case s <= 0:
		return "-"
	case s < 0.99995e-3: // below what rounds to 1000.0 µs
		return fmt.Sprintf("%.1f µs", s*1e6)
	case s < 0.9995: // below what rounds to 1000 ms
		return trimG(s*1e3, " ms")
	default:
		return trimG(s, " s")
	}
}

// trimG formats v with three significant digits, in plain notation
// however large (1234 s, not 1.23e+03 s).
func trimG(v float64, unit string) string {
	if v >= 1000 {
		return fmt.Sprintf("%.0f%s", v, unit)
	}
	return fmt.Sprintf("%.3g%s", v, unit)
}

func num(v float64, format string) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf(format, v)
}

// WriteMarkdown writes the report as a Markdown section: host, peak, and
// one table row per result.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "## kiln bench — %s\n\n", r.Started.Format(time.RFC3339))
	fmt.Fprintf(&b, "Host `%s`: %s, %d CPUs, GOMAXPROCS %d, %s/%s, %s.",
		r.Host.Name, r.Host.CPU, r.Host.CPUs, r.Host.GOMAXPROCS, r.Host.GOOS, r.Host.GOARCH, r.Host.GoVersion)
	if r.Quick {
		b.WriteString(" Quick mode.")
	}
	b.WriteString("\n")
	if devs := r.devices(); len(devs) > 0 {
		fmt.Fprintf(&b, "Devices: %s.\n", strings.Join(devs, "; "))
	}
	if r.Interrupted != "" {
		fmt.Fprintf(&b, "**Interrupted %s: only the cases measured before are listed.**\n", r.Interrupted)
	}
	if r.Peak.GFLOPS > 0 {
		var ks []string
		for _, k := range r.Peak.Kernels {
			ks = append(ks, fmt.Sprintf("%s %.1f", k.Source, k.GFLOPS))
		}
		fmt.Fprintf(&b, "Measured FP32 peak (%d threads, best of trials): **%.1f GFLOP/s** (%s); %% peak is against it (cpu backend only).\n",
			r.Peak.Threads, r.Peak.GFLOPS, strings.Join(ks, ", "))
	}
	if r.Load != nil {
		fmt.Fprintf(&b, "Host load during the run: %s.", r.Load)
		if r.Load.Busy() {
			b.WriteString(" **The machine was busy with other work: single figures are less reliable than usual; compare ratios measured in one run.**")
		}
		b.WriteString("\n")
	}
	b.WriteString("\nTimes are per op: median of the timed runs, spread min–max. GFLOP/s and images/s use the median (the batch-1 latency row gives p50/p99 instead).")
	b.WriteString(" GFLOP/s counts a convolution's work as the direct convolution's, in the conv rows and in the training step and inference that contain them; run as Winograd a convolution does less, so these effective figures can pass 100 % of the FMA peak.")
	b.WriteString(" p50/p99 are nearest-rank over the single batch-1 calls (the latency row's median interpolates between the middle two); with fewer than 100 calls p99 is the slowest call.\n\n")
	b.WriteString("| backend | case | size | median | min–max | GFLOP/s | % peak | GB/s | images/s | p50 ms | p99 ms |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, res := range r.Results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s–%s | %s | %s | %s | %s | %s | %s |\n",
			res.Backend, res.Case, res.Size, FormatSeconds(res.MedianSeconds),
			FormatSeconds(res.MinSeconds), FormatSeconds(res.MaxSeconds),
			num(res.GFLOPS, "%.1f"), num(res.PeakPercent, "%.0f%%"), num(res.GBytesPerSecond, "%.1f"),
			num(res.throughput(), "%.0f"), num(res.P50Ms, "%.3f"), num(res.P99Ms, "%.3f"))
	}
	if len(r.Skipped) > 0 {
		b.WriteString("\nSkipped:\n\n")
		for _, s := range r.Skipped {
			what := s.Backend
			if s.Case != "" {
				what += " " + s.Case
			}
			fmt.Fprintf(&b, "- %s: %s\n", what, s.Reason)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}
