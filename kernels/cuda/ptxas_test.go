//go:build cuda

package cuda

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/bindings/cuda/rtc"
)

// ptxasStats is what ptxas -v reports for one kernel.
type ptxasStats struct {
	Registers, SharedBytes, StackBytes, SpillStores, SpillLoads int
}

var (
	reEntry = regexp.MustCompile(`Compiling entry function '(\w+)' for '(\w+)'`)
	reProps = regexp.MustCompile(`(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads`)
	reUsed  = regexp.MustCompile(`Used (\d+) registers(?:, (\d+) bytes smem)?`)
)

// parsePtxas reads ptxas -v output into per-kernel stats.
func parsePtxas(out string) map[string]ptxasStats {
	res := map[string]ptxasStats{}
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := reEntry.FindStringSubmatch(line); m != nil {
			cur = m[1]
			res[cur] = ptxasStats{}
			continue
		}
		if cur == "" {
			continue
		}
		s := res[cur]
		if m := reProps.FindStringSubmatch(line); m != nil {
			s.StackBytes, _ = strconv.Atoi(m[1])
			s.SpillStores, _ = strconv.Atoi(m[2])
			s.SpillLoads, _ = strconv.Atoi(m[3])
		}
		if m := reUsed.FindStringSubmatch(line); m != nil {
			s.Registers, _ = strconv.Atoi(m[1])
			if m[2] != "" {
				s.SharedBytes, _ = strconv.Atoi(m[2])
			}
		}
		res[cur] = s
	}
	return res
}

func TestParsePtxas(t *testing.T) {
	out := `ptxas info    : Compiling entry function 'kiln_relu' for 'sm_90'
ptxas info    : Function properties for kiln_relu
    0 bytes stack frame, 4 bytes spill stores, 8 bytes spill loads
ptxas info    : Used 10 registers, 1056 bytes smem, 372 bytes cmem[0]
`
	got := parsePtxas(out)
	assert.Equal(t, ptxasStats{Registers: 10, SharedBytes: 1056, SpillStores: 4, SpillLoads: 8}, got["kiln_relu"])
}

// TestKernelsCompileWithoutSpills compiles the whole program with NVRTC for
// compute_80 and compute_90, assembles the PTX with ptxas for sm_80 and
// sm_90, and fails on any compile error, on a missing kernel, and on
// register spills in the GEMM and convolution kernels. No GPU is needed.
// With KILN_PTXAS_REPORT=FILE it also writes the sm_90 table as Markdown.
func TestKernelsCompileWithoutSpills(t *testing.T) {
	ptxas, err := exec.LookPath("ptxas")
	require.NoError(t, err, "ptxas not found: install the CUDA toolkit (scripts/install-cuda.sh)")
	src, err := Source()
	require.NoError(t, err)
	ver, err := rtc.Version()
	require.NoError(t, err)

	heavy := map[string]bool{}
	for _, k := range HeavyKernels() {
		heavy[k] = true
	}
	cache := rtc.Cache{Dir: t.TempDir()}
	for _, sm := range []int{80, 90} {
		t.Run(fmt.Sprintf("sm_%d", sm), func(t *testing.T) {
			res, err := cache.Compile(rtc.Request{Source: src, Name: ProgramName,
				Arch: fmt.Sprintf("compute_%d", sm), Options: CompileOptions()})
			require.NoError(t, err, "NVRTC %s", ver)
			assert.NotContains(t, res.PTX, "\x00", "PTX must not carry NVRTC's NUL")
			dir := t.TempDir()
			ptxFile := filepath.Join(dir, "kiln.ptx")
			require.NoError(t, os.WriteFile(ptxFile, []byte(res.PTX), 0o644))
			cmd := exec.Command(ptxas, fmt.Sprintf("-arch=sm_%d", sm), "-v", "-o", filepath.Join(dir, "kiln.cubin"), ptxFile)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "ptxas failed:\n%s", out)
			stats := parsePtxas(string(out))
			for _, k := range Kernels() {
				s, ok := stats[k]
				if !assert.True(t, ok, "kernel %s missing from ptxas output", k) {
					continue
				}
				assert.Positive(t, s.Registers, "kernel %s: no register count parsed", k)
				if heavy[k] {
					assert.Zero(t, s.SpillStores, "kernel %s spills (stores) on sm_%d", k, sm)
					assert.Zero(t, s.SpillLoads, "kernel %s spills (loads) on sm_%d", k, sm)
				}
			}
			if path := os.Getenv("KILN_PTXAS_REPORT"); path != "" && sm == 90 {
				require.NoError(t, os.WriteFile(path, []byte(table(stats, ver)), 0o644))
			}
		})
	}
}

// table renders per-kernel stats as Markdown.
func table(stats map[string]ptxasStats, ver string) string {
	names := make([]string, 0, len(stats))
	for k := range stats {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "| kernel (sm_90, NVRTC %s) | registers | shared memory (bytes) | stack (bytes) | spill stores (bytes) | spill loads (bytes) |\n", ver)
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, k := range names {
		s := stats[k]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", k, s.Registers, s.SharedBytes, s.StackBytes, s.SpillStores, s.SpillLoads)
	}
	return b.String()
}
