//go:build opencl

package opencl

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	_ "github.com/kiln-ml/kiln/backend/cpu" // for the auto fall-back test
	clb "github.com/kiln-ml/kiln/bindings/opencl"
	kcl "github.com/kiln-ml/kiln/kernels/opencl"
)

func TestRegisteredAndProbe(t *testing.T) {
	b, rep, err := backend.Open(Name, backend.Options{CacheDir: sharedCache(t)})
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, Name, rep.Chosen)
	assert.Equal(t, Name, b.Name())
	d := b.Device()
	assert.Equal(t, Name, d.Backend)
	assert.NotEmpty(t, d.Name)
	assert.Positive(t, d.ComputeUnits)
	assert.Positive(t, d.MemoryBytes)
	assert.Equal(t, backend.AllOps(), b.Ops())
	require.NoError(t, b.Sync())

	found := false
	for _, r := range backend.ProbeAll() {
		if r.Name == Name {
			found = true
			require.NoError(t, r.Err)
			require.NotEmpty(t, r.Devices)
			assert.Contains(t, r.Devices, d, "the chosen device is among those probed")
		}
	}
	assert.True(t, found, "ProbeAll lists opencl")
}

func TestSelectDevice(t *testing.T) {
	devs := []clb.Device{
		{Index: 0, Name: "pthread-generic CPU", Type: clb.TypeCPU, Available: true},
		{Index: 1, Name: "Some FPGA", Type: clb.TypeAccelerator, Available: true},
		{Index: 2, Name: "Radeon RX 7900", Type: clb.TypeGPU, Available: false},
		{Index: 3, Name: "GeForce RTX 4090", Type: clb.TypeGPU, Available: true},
	}
	tests := []struct {
		name, want string
		devs       []clb.Device
		index      int
		err        string
	}{
		{"best is the available GPU", "", devs, 3, ""},
		{"accelerator before CPU", "", devs[:2], 1, ""},
		{"CPU alone", "", devs[:1], 0, ""},
		{"by index", "0", devs, 0, ""},
		{"by index with blanks", " 2 ", devs, 2, ""},
		{"by name substring, any case", "rtx", devs, 3, ""},
		{"index out of range", "7", devs, 0, "no OpenCL device with index 7"},
		{"negative index", "-1", devs, 0, "no OpenCL device with index -1"},
		{"unknown name", "tpu", devs, 0, `no OpenCL device name contains "tpu"`},
		{"none available", "", devs[2:3], 0, "no OpenCL device is available"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := selectDevice(tc.devs, tc.want)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.index, d.Index)
		})
	}
}

func TestDeviceOption(t *testing.T) {
	devs, err := clb.Devices()
	require.NoError(t, err)
	last := devs[len(devs)-1]
	for _, tc := range []struct{ name, opt, env string }{
		{"option index", "-index-", ""},
		{"env name", "", "-name-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := func(s string) string {
				return strings.NewReplacer("-index-", last.String()[1:2], "-name-", last.Name).Replace(s)
			}
			t.Setenv(EnvDevice, sub(tc.env))
			b, err := Open(backend.Options{Device: sub(tc.opt), CacheDir: sharedCache(t)})
			require.NoError(t, err)
			assert.Equal(t, last.Name, b.Device().Name)
			require.NoError(t, b.Close())
		})
	}
	t.Setenv(EnvDevice, "")
	_, err = Open(backend.Options{Device: "no-such-device", CacheDir: sharedCache(t)})
	require.Error(t, err)
	assert.True(t, errors.Is(err, backend.ErrUnavailable))
	assert.Contains(t, err.Error(), "opencl: Open: ")
	assert.Contains(t, err.Error(), "no-such-device")
}

func TestBucketBytes(t *testing.T) {
	tests := []struct {
		n    int
		want int64
	}{
		{0, 256}, {1, 256}, {64, 256}, {65, 512}, {1000, 4096}, {1024, 4096},
		{1025, 5120}, {1280, 5120}, {1281, 6144}, {4096, 16384}, {4097, 20480},
	}
	for _, tc := range tests {
		got := bucketBytes(tc.n)
		assert.Equal(t, tc.want, got, "n=%d", tc.n)
		assert.GreaterOrEqual(t, got, int64(tc.n)*4)
		limit := 1.25 * 4 * float64(tc.n) // quarter steps above 4 KiB
		if tc.n*4 <= 4096 {
			limit = math.Max(256, 2*4*float64(tc.n)) // powers of two below
		}
		assert.LessOrEqual(t, float64(got), limit, "n=%d", tc.n)
	}
}

func TestBuffersAndErrors(t *testing.T) {
	b := open(t)
	x, err := b.Alloc(1000)
	require.NoError(t, err)
	y, err := b.Alloc(10)
	require.NoError(t, err)
	assert.Equal(t, backend.Stats{LiveBuffers: 2, LiveElements: 1010, Allocs: 2}, b.Stats())
	require.NoError(t, b.Fill(x, 1000, 3))
	x.Free()
	x.Free()
	assert.Equal(t, backend.Stats{LiveBuffers: 1, LiveElements: 10, Allocs: 2}, b.Stats())
	assert.ErrorContains(t, b.Fill(x, 1, 0), "opencl: Fill: dst: buffer was freed") // freed buffers are rejected
	// The freed memory is reused, zero-filled.
	z, err := b.Alloc(999)
	require.NoError(t, err)
	got := make([]float32, 999)
	require.NoError(t, b.Download(got, z))
	assert.Equal(t, make([]float32, 999), got)
	z.Free()

	_, err = b.Alloc(-1)
	assert.True(t, errors.Is(err, backend.ErrShape))
	_, err = b.Alloc(math.MaxInt32 + 1)
	require.Error(t, err)
	assert.True(t, errors.Is(err, backend.ErrShape))
	assert.Contains(t, err.Error(), "opencl: Alloc: ")
	assert.Contains(t, err.Error(), "exceed the largest buffer")

	// Out-of-memory errors name the backend, the op and the sizes.
	oom := b.allocError(1<<28, &clb.Error{Call: "clCreateBuffer", Status: -4})
	assert.Contains(t, oom.Error(), "opencl: Alloc: out of device memory allocating 268435456 elements (1073741824 bytes)")
	assert.Contains(t, oom.Error(), "CL_MEM_OBJECT_ALLOCATION_FAILURE")
	assert.True(t, errors.Is(oom, clb.ErrOutOfMemory))

	// Buffers of another backend are rejected.
	cpuB, _, err := backend.Open("cpu", backend.Options{})
	require.NoError(t, err)
	defer cpuB.Close()
	foreign, err := cpuB.Alloc(10)
	require.NoError(t, err)
	defer foreign.Free()
	err = b.ReLU(foreign, y, 10)
	assert.True(t, errors.Is(err, backend.ErrShape))
	assert.Contains(t, err.Error(), "does not belong to the opencl backend")
	other := open(t)
	ob, err := other.Alloc(10)
	require.NoError(t, err)
	assert.ErrorContains(t, b.ReLU(ob, y, 10), "belongs to another opencl backend")
	ob.Free()

	// Close releases what is still live; ops fail afterwards.
	require.NoError(t, b.Close())
	assert.Zero(t, y.Len())
	assert.ErrorContains(t, b.Sync(), "closed")
	_, err = b.Alloc(1)
	assert.ErrorContains(t, err, "opencl: Alloc: ")
	require.NoError(t, b.Close())
}

func TestBadLabelsRejectedBeforeLaunch(t *testing.T) {
	b := open(t)
	logits, _ := b.Alloc(6)
	grad, _ := b.Alloc(6)
	stats, _ := b.Alloc(2)
	labels, _ := b.Alloc(2)
	defer func() { logits.Free(); grad.Free(); stats.Free(); labels.Free() }()
	require.NoError(t, b.Upload(logits, []float32{1, 2, 3, 4, 5, 6}))
	require.NoError(t, b.Fill(grad, 6, 7))
	for _, bad := range []float32{3, -1, 1.5, float32(math.NaN()), float32(math.Inf(1))} {
		require.NoError(t, b.Upload(labels, []float32{0, bad}))
		err := b.SoftmaxCrossEntropy(logits, labels, 2, 3, grad, stats)
		require.Error(t, err)
		assert.True(t, errors.Is(err, backend.ErrShape))
		assert.Contains(t, err.Error(), "opencl: SoftmaxCrossEntropy: ")
		assert.Contains(t, err.Error(), "row 1")
	}
	g := make([]float32, 6)
	require.NoError(t, b.Download(g, grad))
	assert.Equal(t, []float32{7, 7, 7, 7, 7, 7}, g, "nothing was launched")
	require.NoError(t, b.Upload(labels, []float32{2, 0}))
	require.NoError(t, b.SoftmaxCrossEntropy(logits, labels, 2, 3, grad, stats))
	st := make([]float32, 2)
	require.NoError(t, b.Download(st, stats))
	lse := math.Log(math.Exp(-2) + math.Exp(-1) + 1)
	assert.InDelta(t, lse+lse+2, st[0], 1e-5)
	assert.Equal(t, float32(1), st[1])
}

func TestProgramCache(t *testing.T) {
	dir := t.TempDir()
	openLoads := func() []ProgramLoad {
		t.Helper()
		b, err := Open(backend.Options{CacheDir: dir})
		require.NoError(t, err)
		loads := b.Programs()
		require.NoError(t, b.Close())
		require.Len(t, loads, len(kcl.Programs()))
		return loads
	}
	for _, ld := range openLoads() {
		assert.False(t, ld.FromCache, "%s: first Open builds from source", ld.Program)
		assert.Equal(t, "not cached yet; built from source", ld.Note)
		assert.FileExists(t, ld.CacheFile)
		assert.Equal(t, dir, filepath.Dir(ld.CacheFile))
	}
	loads := openLoads()
	for _, ld := range loads {
		assert.True(t, ld.FromCache, "%s: second Open hits the cache (%s)", ld.Program, ld.Note)
	}
	tmp, err := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	require.NoError(t, err)
	assert.Empty(t, tmp, "no temporary files are left behind")

	// A corrupted file (a flipped byte) fails its checksum and is rebuilt.
	victim := loads[0].CacheFile
	data, err := os.ReadFile(victim)
	require.NoError(t, err)
	data[len(data)/2] ^= 0xFF
	require.NoError(t, os.WriteFile(victim, data, 0o644))
	// A truncated file, too.
	victim2 := loads[1].CacheFile
	require.NoError(t, os.WriteFile(victim2, []byte("KILNCLB1short"), 0o644))
	// A file with a valid checksum whose binary the driver rejects.
	victim3 := loads[2].CacheFile
	require.NoError(t, writeCache(victim3, []byte("this is not a device binary")))

	after := openLoads()
	assert.False(t, after[0].FromCache)
	assert.Contains(t, after[0].Note, "checksum mismatch")
	assert.False(t, after[1].FromCache)
	assert.Contains(t, after[1].Note, "cache file unusable")
	assert.False(t, after[2].FromCache)
	assert.Contains(t, after[2].Note, "rejected by the driver")
	for _, ld := range after[3:] {
		assert.True(t, ld.FromCache, ld.Program)
	}
	// Each was rewritten: the next Open hits the cache everywhere.
	for _, ld := range openLoads() {
		assert.True(t, ld.FromCache, "%s after rebuild (%s)", ld.Program, ld.Note)
	}
}

func TestCacheKey(t *testing.T) {
	d := clb.Device{Name: "dev", Vendor: "v", Driver: "1.0", Version: "OpenCL 3.0", Platform: clb.Platform{Name: "p", Version: "3.0"}}
	base := cacheKey("src", "-O", d)
	assert.Len(t, base, 64)
	assert.Equal(t, base, cacheKey("src", "-O", d), "deterministic")
	newer := d
	newer.Driver = "1.1"
	otherPlat := d
	otherPlat.Platform.Version = "3.1"
	for name, k := range map[string]string{
		"source":   cacheKey("src2", "-O", d),
		"options":  cacheKey("src", "-O2", d),
		"driver":   cacheKey("src", "-O", newer),
		"platform": cacheKey("src", "-O", otherPlat),
		"boundary": cacheKey("sr", "c-O", d),
	} {
		assert.NotEqual(t, base, k, name)
	}
}

func TestKernelBuildFailure(t *testing.T) {
	progs := kcl.Programs()
	for i := range progs {
		if progs[i].Name == "pool.cl" {
			progs[i].Source += "\n__kernel void broken(__global float *x) { x[0] = undeclared_identifier_kiln; }\n"
		}
	}
	_, err := openWith(backend.Options{CacheDir: t.TempDir()}, config{programs: progs})
	require.Error(t, err)
	msg := err.Error()
	assert.True(t, errors.Is(err, backend.ErrUnavailable), "a build failure makes the backend unavailable (auto falls back)")
	var be *clb.BuildError
	require.True(t, errors.As(err, &be))
	assert.Equal(t, "pool.cl", be.Program)
	for _, want := range []string{"opencl: Open: ", "kernel program pool.cl", "MaxPool2D", "MaxPool2DBackward",
		"CL_BUILD_PROGRAM_FAILURE", "build log:", "undeclared_identifier_kiln"} {
		assert.Contains(t, msg, want)
	}
}

// TestNoPlatform runs a child test process whose ICD loader finds no driver
// (OCL_ICD_VENDORS points at an empty folder): Open must fail with
// ErrUnavailable saying what to install, and auto must fall back to cpu.
func TestNoPlatform(t *testing.T) {
	if os.Getenv("KILN_OPENCL_CHILD") == "1" {
		_, err := Open(backend.Options{CacheDir: t.TempDir()})
		require.Error(t, err)
		assert.True(t, errors.Is(err, backend.ErrUnavailable))
		assert.True(t, errors.Is(err, clb.ErrNoPlatform))
		assert.Contains(t, err.Error(), "opencl: Open: no OpenCL platform found; install an OpenCL driver")
		assert.Contains(t, err.Error(), "pocl-opencl-icd")
		_, err = Probe()
		assert.True(t, errors.Is(err, backend.ErrUnavailable))
		t.Setenv(backend.EnvBackend, "")
		b, rep, err := backend.Open("auto", backend.Options{})
		require.NoError(t, err)
		defer b.Close()
		assert.Equal(t, "cpu", rep.Chosen)
		assert.Contains(t, rep.String(), "backend opencl: skipped: opencl: Open: no OpenCL platform found")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoPlatform$", "-test.count=1")
	cmd.Env = append(os.Environ(), "KILN_OPENCL_CHILD=1", "OCL_ICD_VENDORS="+t.TempDir())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child test failed:\n%s", out)
	assert.Contains(t, string(out), "PASS")
}

// TestAutoSkipsCPUDevice checks that --backend auto does not pick an OpenCL
// driver running on the CPU (PoCL here) over the native cpu backend, says
// why, and that naming the backend or the device still opens it.
func TestAutoSkipsCPUDevice(t *testing.T) {
	devs, err := clb.Devices()
	require.NoError(t, err)
	best, err := selectDevice(devs, "")
	require.NoError(t, err)
	if best.Type != clb.TypeCPU {
		t.Skipf("the best OpenCL device here is %s (%s), not a CPU: auto keeps it", best.Name, best.Type)
	}
	t.Setenv(backend.EnvBackend, "")
	t.Setenv(EnvDevice, "")
	_, err = Open(backend.Options{CacheDir: sharedCache(t), Auto: true})
	require.Error(t, err)
	assert.True(t, errors.Is(err, backend.ErrUnavailable))
	assert.Contains(t, err.Error(), "auto skips OpenCL here: its best device, "+best.Name+", is a CPU")

	b, rep, err := backend.Open("auto", backend.Options{CacheDir: sharedCache(t)})
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, "cpu", rep.Chosen)
	assert.Contains(t, rep.String(), "backend opencl: skipped: opencl: Open: auto skips OpenCL here")

	named, err := Open(backend.Options{CacheDir: sharedCache(t), Auto: true, Device: "0"})
	require.NoError(t, err, "an explicit device is honoured under auto")
	require.NoError(t, named.Close())
}
