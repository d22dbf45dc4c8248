package bench

import (
	"math"
	"slices"
)

// stats summarises timing samples in seconds.
type stats struct {
	median, min, max, q1, q3 float64
}

// summarize returns the median, extremes and quartiles of samples (linear
// interpolation between order statistics). It does not modify samples.
func summarize(samples []float64) stats {
	if len(samples) == 0 {
		return stats{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return stats{
		median: quantile(s, 0.5), min: s[0], max: s[len(s)-1],
		q1: quantile(s, 0.25), q3: quantile(s, 0.75),
	}
}

// quantile interpolates linearly in sorted s (q in [0,1]).
func quantile(s []float64, q float64) float64 {
	if len(s) == 1 {
		return s[0]
	}
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	frac := pos - float64(lo)
	return s[lo] + frac*(s[lo+1]-s[lo])
}

// percentile is the nearest-rank percentile p (0–100] of samples: the
// smallest sample with at least p per cent of the samples at or below it.
func percentile(samples []float64, p float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}
