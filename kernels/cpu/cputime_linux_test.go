//go:build linux

package cpu

import "golang.org/x/sys/unix"

// cpuSeconds returns the CPU time this process has used, so benchmarks on a
// shared, loaded machine can report work per CPU-second next to wall-clock
// rates.
func cpuSeconds() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}
