//go:build !linux

package cpu

// cpuSeconds is unavailable here; benchmarks then skip the per-CPU-second
// metric.
func cpuSeconds() float64 { return 0 }
