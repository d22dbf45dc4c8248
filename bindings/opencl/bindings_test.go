//go:build opencl

package opencl_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	clb "github.com/kiln-ml/kiln/bindings/opencl"
)

// newContext opens a context on the first device (PoCL in CI).
func newContext(t *testing.T, profiling bool) *clb.Context {
	t.Helper()
	devs, err := clb.Devices()
	require.NoError(t, err)
	c, err := clb.NewContext(devs[0], profiling)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Release()) })
	return c
}

func TestPlatformsAndDevices(t *testing.T) {
	plats, err := clb.Platforms()
	require.NoError(t, err)
	require.NotEmpty(t, plats)
	for _, p := range plats {
		assert.NotEmpty(t, p.Name)
		assert.Contains(t, p.Version, "OpenCL")
	}
	devs, err := clb.Devices()
	require.NoError(t, err)
	require.NotEmpty(t, devs)
	for i, d := range devs {
		assert.Equal(t, i, d.Index)
		assert.NotEmpty(t, d.Name)
		assert.NotEmpty(t, d.Driver)
		assert.Positive(t, d.GlobalMem)
		assert.Positive(t, d.MaxAlloc)
		assert.Positive(t, d.ComputeUnits)
		assert.Positive(t, d.MaxWorkGroup)
		assert.Contains(t, d.String(), d.Name)
		if d.Type == clb.TypeCPU {
			assert.True(t, d.UnifiedMemory, "a CPU device shares the host's memory")
		}
	}
}

func TestBuffers(t *testing.T) {
	c := newContext(t, false)
	b, err := c.NewBuffer(64 * 4)
	require.NoError(t, err)
	defer b.Release()
	assert.Equal(t, int64(256), b.Size())
	src := make([]float32, 64)
	for i := range src {
		src[i] = float32(i) - 0.5
	}
	src[3] = float32(math.NaN())
	require.NoError(t, c.Write(b, 0, src))
	require.NoError(t, c.Fill(b, 10, 5, -2))
	got := make([]float32, 64)
	require.NoError(t, c.Read(got, b, 0))
	for i := range got {
		want := src[i]
		if i >= 10 && i < 15 {
			want = -2
		}
		assert.Equal(t, math.Float32bits(want), math.Float32bits(got[i]), "element %d", i)
	}
	part := make([]float32, 4)
	require.NoError(t, c.Read(part, b, 60))
	assert.Equal(t, src[60:], part)

	d, err := c.NewBuffer(64 * 4)
	require.NoError(t, err)
	require.NoError(t, c.Copy(d, b, 64))
	require.NoError(t, c.Read(got, d, 0))
	assert.Equal(t, float32(-2), got[12])
	require.NoError(t, d.Release())
	require.NoError(t, d.Release(), "releasing twice is a no-op")
	assert.ErrorIs(t, c.Write(d, 0, src), clb.ErrReleased)

	// Out-of-range transfers and sizes are errors, never crashes.
	assert.ErrorContains(t, c.Read(make([]float32, 65), b, 0), "outside a buffer of 256")
	assert.ErrorContains(t, c.Write(b, 63, []float32{1, 2}), "clEnqueueWriteBuffer")
	_, err = c.NewBuffer(0)
	assert.ErrorContains(t, err, "clCreateBuffer: CL_INVALID_BUFFER_SIZE")
	_, err = c.NewBuffer(c.Device().MaxAlloc + 1)
	assert.ErrorContains(t, err, "CL_DEVICE_MAX_MEM_ALLOC_SIZE")
	require.NoError(t, c.Finish())
	require.NoError(t, c.Flush())
}

// inStruct holds a slice next to a Go pointer: cgo refuses a pointer into
// such an allocation, so Read and Write must go through their own buffer.
type inStruct struct {
	next *inStruct
	vals [4]float32
}

func TestTransfersFromStructs(t *testing.T) {
	c := newContext(t, false)
	b, err := c.NewBuffer(16)
	require.NoError(t, err)
	defer b.Release()
	s := &inStruct{vals: [4]float32{1, 2, 3, 4}}
	s.next = s
	require.NoError(t, c.Write(b, 0, s.vals[:]))
	s.vals = [4]float32{}
	require.NoError(t, c.Read(s.vals[:], b, 0))
	assert.Equal(t, [4]float32{1, 2, 3, 4}, s.vals)
}

const saxpy = `
__kernel void saxpy(__global float *y, __global const float *x, const float a, const int n, const ulong tag, __local float *tmp) {
	int i = get_global_id(0);
	tmp[get_local_id(0)] = x[i];
	barrier(CLK_LOCAL_MEM_FENCE);
	if (i < n) y[i] += a * tmp[get_local_id(0)] + (float)(tag >> 62);
}
`

func TestProgramKernelLaunch(t *testing.T) {
	c := newContext(t, true)
	p, err := c.BuildProgram("saxpy", saxpy, "-cl-std=CL1.2")
	require.NoError(t, err)
	defer p.Release()
	assert.Equal(t, "saxpy", p.Name())
	k, err := p.Kernel("saxpy")
	require.NoError(t, err)
	defer k.Release()
	wg, err := k.WorkGroupSize()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, wg, 16)

	const n = 100
	x, _ := c.NewBuffer(128 * 4)
	y, _ := c.NewBuffer(128 * 4)
	defer x.Release()
	defer y.Release()
	xs := make([]float32, 128)
	for i := range xs {
		xs[i] = float32(i)
	}
	require.NoError(t, c.Write(x, 0, xs))
	require.NoError(t, c.Fill(y, 0, 128, 1))
	require.NoError(t, k.SetArgs(y, x, float32(2), int32(n), uint64(1)<<62, clb.Local(16*4)))
	require.NoError(t, c.Launch(k, []int{128}, []int{16}))
	d, err := c.LaunchTimed(k, []int{128}, []int{16})
	require.NoError(t, err)
	assert.Positive(t, int64(d))
	got := make([]float32, 128)
	require.NoError(t, c.Read(got, y, 0))
	for i := 0; i < 128; i++ {
		want := float32(1)
		if i < n {
			want = 1 + 2*(2*float32(i)+1)
		}
		require.Equal(t, want, got[i], "y[%d]", i)
	}

	// Binary round trip.
	bin, err := p.Binary()
	require.NoError(t, err)
	require.NotEmpty(t, bin)
	p2, err := c.ProgramFromBinary("saxpy-bin", bin, "-cl-std=CL1.2")
	require.NoError(t, err)
	k2, err := p2.Kernel("saxpy")
	require.NoError(t, err)
	require.NoError(t, k2.Release())
	require.NoError(t, p2.Release())

	// Errors name the call.
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"int is ambiguous", k.SetArgs(7), "unsupported type int"},
		{"arg index", k.SetArgs(y, x, float32(2), int32(n), uint64(0), clb.Local(64), int32(1)), "clSetKernelArg: CL_INVALID_ARG_INDEX"},
		{"unknown kernel", func() error { _, err := p.Kernel("nope"); return err }(), `clCreateKernel: CL_INVALID_KERNEL_NAME (-46): kernel "nope"`},
		{"bad local size", c.Launch(k, []int{100}, []int{16}), "not a multiple"},
		{"no dims", c.Launch(k, nil, nil), "bad work sizes"},
		{"empty binary", func() error { _, err := c.ProgramFromBinary("x", nil, ""); return err }(), "empty binary"},
		{"garbage binary", func() error { _, err := c.ProgramFromBinary("x", []byte("garbage"), ""); return err }(), "clCreateProgramWithBinary"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, tc.err)
			assert.Contains(t, tc.err.Error(), tc.want)
		})
	}
	require.NoError(t, k.Release())
	assert.ErrorIs(t, k.SetArgs(int32(1)), clb.ErrReleased)
	assert.ErrorIs(t, c.Launch(k, []int{1}, nil), clb.ErrReleased)
}

func TestBuildError(t *testing.T) {
	c := newContext(t, false)
	_, err := c.BuildProgram("broken.cl", "__kernel void f(__global float *x) { x[0] = missing_symbol_kiln; }", "")
	require.Error(t, err)
	var be *clb.BuildError
	require.True(t, errors.As(err, &be))
	assert.Equal(t, "broken.cl", be.Program)
	assert.Contains(t, be.Log, "missing_symbol_kiln")
	assert.Contains(t, err.Error(), `build program "broken.cl" for `)
	assert.Contains(t, err.Error(), "clBuildProgram: CL_BUILD_PROGRAM_FAILURE (-11)")
	assert.True(t, strings.Contains(err.Error(), "build log:\n"))
	_, err = c.BuildProgram("empty", "", "")
	assert.ErrorContains(t, err, "empty source")
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		status      int32
		name        string
		oom, noPlat bool
	}{
		{-4, "CL_MEM_OBJECT_ALLOCATION_FAILURE", true, false},
		{-5, "CL_OUT_OF_RESOURCES", true, false},
		{-6, "CL_OUT_OF_HOST_MEMORY", true, false},
		{-1001, "CL_PLATFORM_NOT_FOUND_KHR", false, true},
		{-11, "CL_BUILD_PROGRAM_FAILURE", false, false},
		{-9999, "unknown status", false, false},
	}
	for _, tc := range tests {
		err := &clb.Error{Call: "clX", Status: tc.status, Detail: "d"}
		assert.Equal(t, tc.name, clb.StatusName(tc.status))
		assert.Contains(t, err.Error(), "clX: "+tc.name)
		assert.Equal(t, tc.oom, errors.Is(err, clb.ErrOutOfMemory), tc.name)
		assert.Equal(t, tc.noPlat, errors.Is(err, clb.ErrNoPlatform), tc.name)
	}
}

func TestReleasedContext(t *testing.T) {
	devs, err := clb.Devices()
	require.NoError(t, err)
	c, err := clb.NewContext(devs[0], false)
	require.NoError(t, err)
	require.NoError(t, c.Release())
	require.NoError(t, c.Release())
	assert.ErrorIs(t, c.Finish(), clb.ErrReleased)
	_, err = c.NewBuffer(4)
	assert.ErrorIs(t, err, clb.ErrReleased)
	_, err = c.LaunchTimed(nil, []int{1}, nil)
	assert.Error(t, err)
}
