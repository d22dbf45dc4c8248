package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const statSample = `cpu  4540725 441 490766 3637818 14087 0 31408 118406 0 0
cpu0 2244324 221 239191 1855695 3152 0 15485 59244 0 0
cpu1 2296401 220 251574 1782123 10934 0 15923 59162 0 0
intr 1234 0 0
ctxt 99
`

func TestParseProcStat(t *testing.T) {
	var c cpuTimes
	require.True(t, parseProcStat(statSample, &c))
	assert.Equal(t, 2, c.cpus)
	assert.Equal(t, uint64(4540725+441+490766+0+31408), c.busy)
	assert.Equal(t, uint64(3637818+14087), c.idle)
	assert.Equal(t, uint64(118406), c.steal)
	assert.Equal(t, c.busy+c.idle+c.steal, c.total)

	for name, s := range map[string]string{
		"empty":          "",
		"no cpu line":    "cpu0 1 2 3 4 5 6 7 8\n",
		"short cpu line": "cpu 1 2 3\ncpu0 1 2 3 4 5 6 7 8\n",
		"not a number":   "cpu 1 2 x 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\n",
		"no cpuN lines":  "cpu 1 2 3 4 5 6 7 8\n",
	} {
		var c cpuTimes
		assert.False(t, parseProcStat(s, &c), name)
	}
}

func TestParseSelfStat(t *testing.T) {
	// The command name may hold spaces and parentheses; utime and stime
	// are fields 14 and 15.
	v, ok := parseSelfStat("4242 (kiln (test) x) R 1 4242 4242 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 3 0")
	require.True(t, ok)
	assert.Equal(t, uint64(287), v)
	for _, s := range []string{"", "4242 kiln R 1", "4242 (kiln) R 1 2 3", "4242 (kiln) R 1 4242 4242 0 -1 4194560 100 0 0 0 x 37"} {
		_, ok := parseSelfStat(s)
		assert.False(t, ok, s)
	}
}

func TestLoadBetween(t *testing.T) {
	a := cpuTimes{busy: 1000, idle: 5000, steal: 100, total: 6100, cpus: 2, self: 300, loadAvg: 0.5}
	tests := []struct {
		name      string
		b         cpuTimes
		other     float64
		steal     float64
		busy, nil bool
	}{
		// 200 ticks pass on 2 CPUs: kiln alone kept both busy.
		{"kiln alone", cpuTimes{busy: 1200, idle: 5000, steal: 100, total: 6300, cpus: 2, self: 500, loadAvg: 1}, 0, 0, false, false},
		// Half the busy time was someone else's: 50 of 200 ticks on 2 CPUs = 0.5 CPUs.
		{"shared", cpuTimes{busy: 1150, idle: 5040, steal: 110, total: 6300, cpus: 2, self: 400, loadAvg: 1}, 0.5, 5, true, false},
		// The hypervisor took 20 of 200 ticks (10 %).
		{"steal", cpuTimes{busy: 1180, idle: 5000, steal: 120, total: 6300, cpus: 2, self: 480, loadAvg: 1}, 0, 10, true, false},
		{"no time passed", a, 0, 0, false, true},
		{"counters went back", cpuTimes{busy: 900, idle: 5500, steal: 100, total: 6500, cpus: 2, self: 400}, 0, 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := loadBetween(a, tc.b)
			if tc.nil {
				assert.Nil(t, l)
				assert.False(t, l.Busy())
				return
			}
			require.NotNil(t, l)
			assert.InDelta(t, tc.other, l.OtherCPUs, 1e-9)
			assert.InDelta(t, tc.steal, l.StealPercent, 1e-9)
			assert.Equal(t, tc.busy, l.Busy())
			assert.Equal(t, 2, l.CPUs)
			assert.Equal(t, 0.5, l.LoadAvgStart)
			assert.Equal(t, 1.0, l.LoadAvgEnd)
		})
	}
}

func TestReadCPUTimes(t *testing.T) {
	dir := t.TempDir()
	p := procPaths{filepath.Join(dir, "stat"), filepath.Join(dir, "self"), filepath.Join(dir, "loadavg")}
	_, ok := readCPUTimes(p)
	assert.False(t, ok, "missing files")
	require.NoError(t, os.WriteFile(p.stat, []byte(statSample), 0o644))
	require.NoError(t, os.WriteFile(p.selfStat, []byte("1 (k) R 1 1 1 0 -1 0 0 0 0 0 7 3 0 0"), 0o644))
	require.NoError(t, os.WriteFile(p.loadAvg, []byte("0.42 0.47 0.73 1/200 9999\n"), 0o644))
	c, ok := readCPUTimes(p)
	require.True(t, ok)
	assert.Equal(t, uint64(10), c.self)
	assert.Equal(t, 0.42, c.loadAvg)
	require.NoError(t, os.WriteFile(p.loadAvg, []byte("x\n"), 0o644))
	_, ok = readCPUTimes(p)
	assert.False(t, ok, "bad loadavg")

	if runtime.GOOS != "linux" {
		t.Skipf("/proc is Linux's; on %s a report carries no host load", runtime.GOOS)
	}
	c, ok = readCPUTimes(linuxProc)
	require.True(t, ok, "this Linux machine's /proc")
	assert.Positive(t, c.total)
	assert.Positive(t, c.cpus)
}

func TestReportHostLoad(t *testing.T) {
	rep := &Report{Schema: SchemaVersion, Load: &HostLoad{OtherCPUs: 0.8, StealPercent: 1, CPUs: 2, LoadAvgStart: 1.5, LoadAvgEnd: 2}}
	var md bytes.Buffer
	require.NoError(t, rep.WriteMarkdown(&md))
	assert.Contains(t, md.String(), "other processes used 0.80 of 2 CPUs")
	assert.Contains(t, md.String(), "The machine was busy")
	var js bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	back, err := ReadJSON(&js)
	require.NoError(t, err)
	assert.Equal(t, rep.Load, back.Load)

	rep.Load = &HostLoad{OtherCPUs: 0.05, CPUs: 2}
	md.Reset()
	require.NoError(t, rep.WriteMarkdown(&md))
	assert.Contains(t, md.String(), "Host load during the run")
	assert.NotContains(t, md.String(), "busy")
	rep.Load = nil
	md.Reset()
	require.NoError(t, rep.WriteMarkdown(&md))
	assert.NotContains(t, md.String(), "Host load")
}
