package bench

import (
	"fmt"
	"io"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// panel is one chart: a metric per case, one bar per backend.
type panel struct {
	title  string
	metric func(Result) float64
}

func panels() []panel {
	return []panel{
		{"GFLOP/s, convolutions counted as direct (higher is better)", func(r Result) float64 { return r.GFLOPS }},
		{"images/s (higher is better)", Result.throughput},
		{"latency p50 ms, batch 1 (lower is better)", func(r Result) float64 { return r.P50Ms }},
		{"max-pool GB/s (higher is better)", func(r Result) float64 { return r.GBytesPerSecond }},
	}
}

// WritePNG draws the report as a PNG: one horizontal grouped bar chart per
// metric (GFLOP/s, images/s, latency, GB/s), cases down the side and one
// bar per backend, so backends compare case by case.
func (r *Report) WritePNG(w io.Writer) error {
	var backends []string
	for _, res := range r.Results {
		if !slices.Contains(backends, res.Backend) {
			backends = append(backends, res.Backend)
		}
	}
	type drawn struct {
		p *plot.Plot
		h vg.Length
	}
	var plots []drawn
	total := vg.Length(0)
	for _, pn := range panels() {
		p, n, err := r.panelPlot(pn, backends)
		if err != nil {
			return err
		}
		if p != nil {
			// Height grows with the bars, so every bar has the same thickness.
			h := vg.Points(70 + 18*float64(n*max(1, len(backends))))
			plots = append(plots, drawn{p, h})
			total += h
		}
	}
	if len(plots) == 0 {
		return fmt.Errorf("draw chart: the report has no results")
	}
	width := vg.Points(820)
	img := vgimg.New(width, total)
	dc := draw.New(img)
	top := total
	for _, d := range plots {
		c := dc
		c.Rectangle = vg.Rectangle{Min: vg.Point{X: 0, Y: top - d.h}, Max: vg.Point{X: width, Y: top}}
		c = draw.Crop(c, vg.Millimeter*2, -vg.Millimeter*4, vg.Millimeter*3, -vg.Millimeter*2)
		d.p.Draw(c)
		top -= d.h
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("encode chart: %w", err)
	}
	return nil
}

// panelPlot builds one panel, or nil when no result has its metric. It
// returns the number of case rows.
func (r *Report) panelPlot(pn panel, backends []string) (*plot.Plot, int, error) {
	var labels []string
	idx := map[string]int{}
	for _, res := range r.Results {
		if pn.metric(res) <= 0 {
			continue
		}
		l := res.Case + " " + res.Size
		if _, ok := idx[l]; !ok {
			idx[l] = len(labels)
			labels = append(labels, l)
		}
	}
	if len(labels) == 0 {
		return nil, 0, nil
	}
	p := plot.New()
	p.Title.Text = pn.title
	p.Legend.Top = true
	barW := vg.Points(14)
	maxVal := 0.0
	for bi, be := range backends {
		vals := make(plotter.Values, len(labels))
		found := false
		for _, res := range r.Results {
			if res.Backend != be || pn.metric(res) <= 0 {
				continue
			}
			vals[idx[res.Case+" "+res.Size]] = pn.metric(res)
			maxVal = max(maxVal, pn.metric(res))
			found = true
		}
		if !found {
			continue
		}
		bars, err := plotter.NewBarChart(vals, barW)
		if err != nil {
			return nil, 0, fmt.Errorf("draw chart %q: %w", pn.title, err)
		}
		bars.Horizontal = true
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(bi)
		bars.Offset = vg.Length(float64(bi)-float64(len(backends)-1)/2) * barW
		p.Add(bars)
		p.Legend.Add(be, bars)
	}
	// Cases read top-down in run order.
	p.NominalY(labels...)
	p.Y.Scale = plot.InvertedScale{Normalizer: p.Y.Scale}
	p.X.Min = 0
	// Room on the right for the legend.
	p.X.Max = 1.3 * maxVal
	return p, len(labels), nil
}
