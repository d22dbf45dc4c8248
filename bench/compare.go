package bench

import (
	"bytes"
	"fmt"
	"io"
	"math"
)

// MinRuns is the fewest timed runs each side of a comparison needs before
// Compare calls a change real rather than noise ("~"). The test is whether
// the two runs' min–max ranges are disjoint; if nothing changed (the runs of
// both sides exchangeable), that happens by chance with probability
// 2/C(2n, n) for n runs a side: always with one run, 1 in 3 with two, 1 in
// 10 with three (what --quick takes), about 1 in 92,000 with ten (the
// default). Below three a clean separation says nothing, as benchstat
// declines to call a difference from too few samples.
const MinRuns = 3

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
	// Overlap is true when the min–max ranges of the two runs overlap, so
	// the difference may be noise (benchstat prints "~").
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
	// other CPUs, other devices for a case, a case listed twice.
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
		r := Ratio{Backend: n.Backend, Case: n.Case, Size: n.Size,
			OldSeconds: o.MedianSeconds, NewSeconds: n.MedianSeconds,
			OldRuns: o.Runs, NewRuns: n.Runs,
			Speedup:      o.MedianSeconds / n.MedianSeconds,
			DeltaPercent: 100 * (n.MedianSeconds/o.MedianSeconds - 1),
			Overlap:      rangesOverlap(o, n),
			TooFewRuns:   o.Runs < MinRuns || n.Runs < MinRuns}
		logSum += math.Log(r.Speedup)
		c.Ratios = append(c.Ratios, r)
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

// rangesOverlap reports whether the min–max ranges of a and b overlap;
// results without a range use their median.
func rangesOverlap(a, b Result) bool {
	lo := func(r Result) float64 {
		if r.MinSeconds > 0 {
			return r.MinSeconds
		}
		return r.MedianSeconds
	}
	hi := func(r Result) float64 {
		if r.MaxSeconds > 0 {
			return r.MaxSeconds
		}
		return r.MedianSeconds
	}
	return lo(a) <= hi(b) && lo(b) <= hi(a)
}

// WriteMarkdown writes the comparison as a Markdown table. A change that
// may be noise shows "~" with the delta and why: too few runs (either
// side below MinRuns) or overlapping ranges.
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
		case r.Overlap:
			delta = "~ (" + delta + ", ranges overlap)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %.2fx |\n", r.Backend, r.Case, r.Size,
			FormatSeconds(r.OldSeconds), FormatSeconds(r.NewSeconds), delta, r.Speedup)
	}
	if c.GeomeanSpeedup > 0 {
		fmt.Fprintf(&b, "| geomean | | | | | | %.2fx |\n", c.GeomeanSpeedup)
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
