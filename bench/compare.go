package bench

import (
	"bytes"
	"fmt"
	"io"
	"math"
)

// Ratio compares one case of two reports.
type Ratio struct {
	Backend, Case, Size string
	// OldSeconds and NewSeconds are the medians per op.
	OldSeconds, NewSeconds float64
	// Speedup is OldSeconds/NewSeconds: above 1 the new run is faster.
	Speedup float64
	// DeltaPercent is the change of the median time, 100·(new/old − 1):
	// negative is faster.
	DeltaPercent float64
	// Overlap is true when the min–max ranges of the two runs overlap, so
	// the difference may be noise (benchstat prints "~").
	Overlap bool
}

// Comparison is the outcome of Compare.
type Comparison struct {
	Ratios []Ratio
	// OnlyOld and OnlyNew list case keys present in one report only.
	OnlyOld, OnlyNew []string
	// GeomeanSpeedup is the geometric mean of the speedups (0 when there
	// are none).
	GeomeanSpeedup float64
	// Warnings name what makes the ratios compare more than the change:
	// other CPUs, other devices for a case, a case listed twice.
	Warnings []string
}

// Compare matches the results of old and new by backend, case and size,
// in the order of new.
func Compare(old, new *Report) Comparison {
	var c Comparison
	if old.Host.CPU != "" && new.Host.CPU != "" && old.Host.CPU != new.Host.CPU {
		c.Warnings = append(c.Warnings, fmt.Sprintf("the runs were on different CPUs (old: %s; new: %s)", old.Host.CPU, new.Host.CPU))
	}
	oldBy := map[string]Result{}
	for _, r := range old.Results {
		if _, dup := oldBy[r.Key()]; dup {
			c.Warnings = append(c.Warnings, fmt.Sprintf("the old report lists %s more than once; its last entry is compared", r.Key()))
		}
		oldBy[r.Key()] = r
	}
	skipped := map[string]string{}
	for _, s := range new.Skipped {
		skipped[s.Backend+" "+s.Case] = s.Reason
	}
	seen := map[string]bool{}
	logSum := 0.0
	for _, n := range new.Results {
		k := n.Key()
		o, ok := oldBy[k]
		if !ok {
			c.OnlyNew = append(c.OnlyNew, k)
			continue
		}
		seen[k] = true
		if o.Device != n.Device {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s ran on different devices (old: %s; new: %s)", k, o.Device, n.Device))
		}
		r := Ratio{Backend: n.Backend, Case: n.Case, Size: n.Size,
			OldSeconds: o.MedianSeconds, NewSeconds: n.MedianSeconds,
			Speedup:      o.MedianSeconds / n.MedianSeconds,
			DeltaPercent: 100 * (n.MedianSeconds/o.MedianSeconds - 1),
			Overlap:      rangesOverlap(o, n)}
		logSum += math.Log(r.Speedup)
		c.Ratios = append(c.Ratios, r)
	}
	for _, o := range old.Results {
		if !seen[o.Key()] {
			k := o.Key()
			if why, ok := skipped[o.Backend+" "+o.Case]; ok {
				k += " (skipped in new: " + why + ")"
			}
			c.OnlyOld = append(c.OnlyOld, k)
			seen[o.Key()] = true // once, though listed twice
		}
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

// WriteMarkdown writes the comparison as a Markdown table.
func (c Comparison) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	for _, w := range c.Warnings {
		fmt.Fprintf(&b, "Note: %s.\n\n", w)
	}
	b.WriteString("| backend | case | size | old median | new median | delta | speedup old/new |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|\n")
	for _, r := range c.Ratios {
		delta := fmt.Sprintf("%+.1f%%", r.DeltaPercent)
		if r.Overlap {
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
