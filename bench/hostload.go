package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// HostLoad says how busy the machine was with other work while a report
// was measured: on a shared machine the same binary's figures swing with
// it, so a report carries it. It is read from Linux's /proc and absent
// from a report made elsewhere.
type HostLoad struct {
	// OtherCPUs is the CPU time that processes other than kiln used
	// during the run, in CPUs on average (0.5: half a core all along).
	OtherCPUs float64 `json:"other_cpus"`
	// StealPercent is the share of the CPUs' time the hypervisor gave to
	// other machines during the run (/proc/stat's steal column).
	StealPercent float64 `json:"steal_percent"`
	// CPUs is the number of CPUs /proc/stat counted.
	CPUs int `json:"cpus"`
	// LoadAvgStart and LoadAvgEnd are the 1-minute load averages when the
	// run began and ended.
	LoadAvgStart float64 `json:"loadavg_start"`
	LoadAvgEnd   float64 `json:"loadavg_end"`
}

// Busy reports whether the load was high enough to make the figures
// noticeably less reliable: other work took more than a tenth of the
// CPUs, or the hypervisor more than 5 % of their time.
func (l *HostLoad) Busy() bool {
	return l != nil && (l.OtherCPUs > 0.1*float64(l.CPUs) || l.StealPercent > 5)
}

// String describes the load in one sentence.
func (l *HostLoad) String() string {
	return fmt.Sprintf("other processes used %.2f of %d CPUs on average, the hypervisor took %.1f %% of their time (steal); 1-minute load average %.2f at the start, %.2f at the end",
		l.OtherCPUs, l.CPUs, l.StealPercent, l.LoadAvgStart, l.LoadAvgEnd)
}

// cpuTimes is one reading of the whole machine's CPU time and this
// process's, in the same clock ticks.
type cpuTimes struct {
	busy, idle, steal, total uint64 // all CPUs, from /proc/stat
	cpus                     int
	self                     uint64 // this process: user + system
	loadAvg                  float64
}

// procPaths are the files a reading comes from (tests substitute them).
type procPaths struct{ stat, selfStat, loadAvg string }

var linuxProc = procPaths{"/proc/stat", "/proc/self/stat", "/proc/loadavg"}

// readCPUTimes takes a reading; ok is false where the files are missing or
// unreadable (not Linux).
func readCPUTimes(p procPaths) (t cpuTimes, ok bool) {
	stat, err1 := os.ReadFile(p.stat)
	self, err2 := os.ReadFile(p.selfStat)
	avg, err3 := os.ReadFile(p.loadAvg)
	if err1 != nil || err2 != nil || err3 != nil {
		return t, false
	}
	if !parseProcStat(string(stat), &t) {
		return t, false
	}
	if t.self, ok = parseSelfStat(string(self)); !ok {
		return t, false
	}
	f := strings.Fields(string(avg))
	if len(f) == 0 {
		return t, false
	}
	t.loadAvg, err1 = strconv.ParseFloat(f[0], 64)
	return t, err1 == nil
}

// parseProcStat reads the aggregate "cpu" line of /proc/stat (user nice
// system idle iowait irq softirq steal ...) and counts the "cpuN" lines.
// Busy time is user+nice+system+irq+softirq (guest time is already in
// user); idle counts iowait.
func parseProcStat(s string, t *cpuTimes) bool {
	found := false
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			t.cpus++
			continue
		}
		if len(f) < 9 {
			return false
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return false
			}
			v[i] = n
		}
		t.busy = v[0] + v[1] + v[2] + v[5] + v[6]
		t.idle = v[3] + v[4]
		t.steal = v[7]
		t.total = t.busy + t.idle + t.steal
		found = true
	}
	return found && t.cpus > 0
}

// parseSelfStat returns utime+stime from /proc/self/stat (fields 14 and
// 15; the command name in field 2 may hold spaces, so fields are counted
// after its closing parenthesis).
func parseSelfStat(s string) (uint64, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return u + st, true
}

// loadBetween is the load from reading a to reading b; nil when no CPU
// time passed between them (or the counters went backwards).
func loadBetween(a, b cpuTimes) *HostLoad {
	if b.total <= a.total || b.busy < a.busy || b.steal < a.steal || b.self < a.self {
		return nil
	}
	total := float64(b.total - a.total)
	other := float64(b.busy-a.busy) - float64(b.self-a.self)
	return &HostLoad{
		OtherCPUs:    max(0, other/total*float64(b.cpus)),
		StealPercent: float64(b.steal-a.steal) / total * 100,
		CPUs:         b.cpus,
		LoadAvgStart: a.loadAvg,
		LoadAvgEnd:   b.loadAvg,
	}
}
