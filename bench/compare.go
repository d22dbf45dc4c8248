package bench

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// MinRuns is the fewest timed runs each side of a comparison needs before
// Compare calls a change real rather than noise ("~"). The test is whether
// the two runs' min–max ranges are disjoint; if nothing changed (the runs
// of both sides exchangeable), that happens by chance with probability
// 2/C(2n, n) for n runs a side: always with one run, 1 in 3 with two, 1 in
// 10 with three (what --quick takes), about 1 in 92,000 with ten (the
// default). Below three a clean separation says nothing, as benchstat
// declines to call a difference from too few samples. From IQRMinRuns
// runs a side the interquartile ranges are tested instead.
const MinRuns = 3

// IQRMinRuns is the fewest timed runs each side needs for Compare to test
// the interquartile ranges (Q1–Q3) instead of min–max. The extremes of
// many runs are single outliers (the batch-1 latency case times 200 single
// calls, 30 with --quick, with a long tail), so min–max ranges of many
// runs overlap whatever changed. Disjoint interquartile ranges arise by
// chance for an unchanged case about 1 time in 9,000 with 30 runs a side
// (the latency case with --quick) and under 1 in 100,000 from 40 (200 by
// default); simulated, for uniform and exponential times alike. With ten
// runs a side they would arise 1 time in 29, so the ten-run cases keep
// min–max.
const IQRMinRuns = 30

// Spreads that Compare tests, named in Ratio.Spread.
const (
	SpreadMinMax = "min–max"
	SpreadIQR    = "Q1–Q3"
)

// Ratio compares one case of two reports.
type Ratio struct {
	Backend, Case, Size string
	// OldSeconds and NewSeconds are the medians per op.
	OldSeconds, NewSeconds float64
	// OldRuns and NewRuns are the timed runs behind each median.
	OldRuns, NewRuns int
	// Speedup is OldSeconds/NewSeconds: above 1 the new run is faster.
	Speedup float64
	// DeltaPercent is the change of the median time, 100·(new/old − 1):
	// negative is faster.
	DeltaPercent float64
	// Spread is the range tested: SpreadIQR when both sides have at least
	// IQRMinRuns runs, else SpreadMinMax.
	Spread string
	// Overlap is true when the two runs' Spread ranges overlap, so the
	// difference may be noise (benchstat prints "~").
	Overlap bool
	// TooFewRuns is true when either side has fewer than MinRuns timed
	// runs: the difference cannot be told from noise whatever the ranges.
	TooFewRuns bool
}

// Noise reports whether the difference may be noise: the ranges overlap
// or there were too few runs to tell.
func (r Ratio) Noise() bool { return r.Overlap || r.TooFewRuns }

// Comparison is the outcome of Compare.
type Comparison struct {
	// Ratios has one entry per case in both reports.
	Ratios []Ratio
	// OnlyOld and OnlyNew list case keys present in one report only, once
	// each, with the other run's reason when it skipped the case or its
	// whole backend.
	OnlyOld, OnlyNew []string
	// GeomeanSpeedup is the geometric mean of the speedups, each case
	// counted once (0 when there are none).
	GeomeanSpeedup float64
	// Warnings name what makes the ratios compare more than the change:
	// other CPUs, other devices or kernels for a case, a quick run against
	// a full one, an old report from before the fwd-inference rows, an
	// interrupted run, a case listed twice.
	Warnings []string
}

// byKey indexes results by Key, keeping the last entry of a key listed
// more than once; keys lists each key once, in first-seen order, and
// count how often each was listed.
func byKey(results []Result) (last map[string]Result, keys []string, count map[string]int) {
	last, count = map[string]Result{}, map[string]int{}
	for _, r := range results {
		k := r.Key()
		if count[k] == 0 {
			keys = append(keys, k)
		}
		count[k]++
		last[k] = r
	}
	return last, keys, count
}

// skipReason is why skips leave out r: the case's own reason, else its
// backend's (a Skip without a case); ok is false when neither is listed.
func skipReason(skips []Skip, r Result) (string, bool) {
	for _, s := range skips {
		if s.Backend == r.Backend && s.Case != "" && s.Case == r.Case {
			return s.Reason, true
		}
	}
	for _, s := range skips {
		if s.Backend == r.Backend && s.Case == "" {
			return "the " + s.Backend + " backend: " + s.Reason, true
		}
	}
	return "", false
}

// Compare matches the results of old and new by backend, case and size,
// in the order of new. A case listed more than once in a report is
// compared (and counted in the geomean) once, with its last entry, and
// warned about once.
func Compare(old, new *Report) Comparison {
	var c Comparison
	if old.Host.CPU != "" && new.Host.CPU != "" && old.Host.CPU != new.Host.CPU {
		c.Warnings = append(c.Warnings, fmt.Sprintf("the runs were on different CPUs (old: %s; new: %s)", old.Host.CPU, new.Host.CPU))
	}
	if old.Quick != new.Quick {
		mode := map[bool]string{true: "--quick", false: "full"}
		c.Warnings = append(c.Warnings, fmt.Sprintf("one run is --quick and the other is not (old: %s; new: %s): quick runs are fewer and shorter, after fewer warm-ups, so the ratios mix the change with the mode", mode[old.Quick], mode[new.Quick]))
	}
	for _, side := range []struct {
		name string
		rep  *Report
	}{{"old", old}, {"new", new}} {
		if side.rep.Interrupted != "" {
			c.Warnings = append(c.Warnings, fmt.Sprintf("the %s run was interrupted (%s): it has only the cases measured before", side.name, side.rep.Interrupted))
		}
	}
	if hasConvPass(old.Results, "fwd") && !hasConvPass(old.Results, "fwd-inference") && hasConvPass(new.Results, "fwd-inference") {
		c.Warnings = append(c.Warnings, "the old report has conv fwd rows but no fwd-inference rows: it predates them, and its fwd rows timed the inference path; compare its fwd rows with the new fwd-inference rows, not the new fwd rows (the training path)")
	}
	oldBy, oldKeys, oldCount := byKey(old.Results)
	newBy, newKeys, newCount := byKey(new.Results)
	for _, side := range []struct {
		name  string
		keys  []string
		count map[string]int
	}{{"old", oldKeys, oldCount}, {"new", newKeys, newCount}} {
		for _, k := range side.keys {
			if n := side.count[k]; n > 1 {
				c.Warnings = append(c.Warnings, fmt.Sprintf("the %s report lists %s %d times; its last entry is compared", side.name, k, n))
			}
		}
	}
	// Other kernels are warned about once per backend and pair of
	// feature sets, not once per case.
	type kernels struct{ backend, old, new string }
	var kernelOrder []kernels
	kernelCases := map[kernels]int{}
	logSum := 0.0
	for _, k := range newKeys {
		n := newBy[k]
		o, ok := oldBy[k]
		if !ok {
			if why, ok := skipReason(old.Skipped, n); ok {
				k += " (skipped in old: " + why + ")"
			}
			c.OnlyNew = append(c.OnlyNew, k)
			continue
		}
		if o.Device != n.Device {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s ran on different devices (old: %s; new: %s)", k, o.Device, n.Device))
		}
		if o.Features != "" && n.Features != "" && o.Features != n.Features {
			kk := kernels{n.Backend, o.Features, n.Features}
			if kernelCases[kk] == 0 {
				kernelOrder = append(kernelOrder, kk)
			}
			kernelCases[kk]++
		}
		spread := SpreadMinMax
		if o.Runs >= IQRMinRuns && n.Runs >= IQRMinRuns {
			spread = SpreadIQR
		}
		r := Ratio{Backend: n.Backend, Case: n.Case, Size: n.Size,
			OldSeconds: o.MedianSeconds, NewSeconds: n.MedianSeconds,
			OldRuns: o.Runs, NewRuns: n.Runs,
			Speedup:      o.MedianSeconds / n.MedianSeconds,
			DeltaPercent: 100 * (n.MedianSeconds/o.MedianSeconds - 1),
			Spread:       spread,
			Overlap:      rangesOverlap(o, n, spread),
			TooFewRuns:   o.Runs < MinRuns || n.Runs < MinRuns}
		logSum += math.Log(r.Speedup)
		c.Ratios = append(c.Ratios, r)
	}
	for _, kk := range kernelOrder {
		what := "1 case"
		if n := kernelCases[kk]; n > 1 {
			what = fmt.Sprintf("%d cases", n)
		}
		c.Warnings = append(c.Warnings, fmt.Sprintf("the %s backend ran other code paths in %s (old: %s; new: %s): the ratios compare those as well as the change", kk.backend, what, kk.old, kk.new))
	}
	for _, k := range oldKeys {
		if _, ok := newBy[k]; ok {
			continue
		}
		if why, ok := skipReason(new.Skipped, oldBy[k]); ok {
			k += " (skipped in new: " + why + ")"
		}
		c.OnlyOld = append(c.OnlyOld, k)
	}
	if len(c.Ratios) > 0 {
		c.GeomeanSpeedup = math.Exp(logSum / float64(len(c.Ratios)))
	}
	return c
}

// hasConvPass reports whether results hold a conv suite row of the given
// pass ("fwd", "fwd-inference"), named "<layer> <pass>".
func hasConvPass(results []Result, pass string) bool {
	for _, r := range results {
		if r.Suite == SuiteConv && strings.HasSuffix(r.Case, " "+pass) {
			return true
		}
	}
	return false
}

// rangesOverlap reports whether the spread ranges (SpreadMinMax or
// SpreadIQR) of a and b overlap; an end a result lacks is its median.
func rangesOverlap(a, b Result, spread string) bool {
	or := func(v, med float64) float64 {
		if v > 0 {
			return v
		}
		return med
	}
	lo := func(r Result) float64 {
		if spread == SpreadIQR {
			return or(r.Q1Seconds, r.MedianSeconds)
		}
		return or(r.MinSeconds, r.MedianSeconds)
	}
	hi := func(r Result) float64 {
		if spread == SpreadIQR {
			return or(r.Q3Seconds, r.MedianSeconds)
		}
		return or(r.MaxSeconds, r.MedianSeconds)
	}
	return lo(a) <= hi(b) && lo(b) <= hi(a)
}

// WriteMarkdown writes the comparison as a Markdown table. A change that
// may be noise shows "~" with the delta and why: too few runs (either
// side below MinRuns) or overlapping ranges (min–max, or interquartile
// where both sides have IQRMinRuns runs, with a note under the table).
func (c Comparison) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	for _, w := range c.Warnings {
		fmt.Fprintf(&b, "Note: %s.\n\n", w)
	}
	if len(c.Ratios) == 0 {
		b.WriteString("No case is in both runs: there is nothing to compare.\n")
	} else {
		b.WriteString("| backend | case | size | old median | new median | delta | speedup old/new |\n")
		b.WriteString("|---|---|---|---:|---:|---:|---:|\n")
	}
	for _, r := range c.Ratios {
		delta := fmt.Sprintf("%+.1f%%", r.DeltaPercent)
		switch {
		case r.TooFewRuns:
			delta = fmt.Sprintf("~ (%s, too few runs: old n=%d, new n=%d)", delta, r.OldRuns, r.NewRuns)
		case r.Overlap && r.Spread == SpreadIQR:
			delta = "~ (" + delta + ", interquartile ranges overlap)"
		case r.Overlap:
			delta = "~ (" + delta + ", ranges overlap)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %.2fx |\n", r.Backend, r.Case, r.Size,
			FormatSeconds(r.OldSeconds), FormatSeconds(r.NewSeconds), delta, r.Speedup)
	}
	if c.GeomeanSpeedup > 0 {
		fmt.Fprintf(&b, "| geomean | | | | | | %.2fx |\n", c.GeomeanSpeedup)
	}
	if slices.ContainsFunc(c.Ratios, func(r Ratio) bool { return r.Spread == SpreadIQR }) {
		fmt.Fprintf(&b, "\nA change is real when the two runs' ranges are disjoint: min–max ranges, but interquartile ranges (Q1–Q3) where both sides have %d runs or more (the batch-1 latency row): the extremes of many single calls are outliers.\n", IQRMinRuns)
	}
	for _, k := range c.OnlyOld {
		fmt.Fprintf(&b, "\nonly in old: %s", k)
	}
	for _, k := range c.OnlyNew {
		fmt.Fprintf(&b, "\nonly in new: %s", k)
	}
	if len(c.OnlyOld)+len(c.OnlyNew) > 0 {
		b.WriteString("\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}
