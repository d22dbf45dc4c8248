package rtc

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeyCoversEveryInput(t *testing.T) {
	base := Request{Source: "src", Name: "p.cu", Arch: "compute_90", Options: []string{"--fmad=false"}}
	k0 := Key(base, "11.8")
	tests := []struct {
		name string
		req  Request
		ver  string
	}{
		{"source", Request{Source: "src2", Name: "p.cu", Arch: "compute_90", Options: []string{"--fmad=false"}}, "11.8"},
		{"arch", Request{Source: "src", Name: "p.cu", Arch: "compute_80", Options: []string{"--fmad=false"}}, "11.8"},
		{"options", Request{Source: "src", Name: "p.cu", Arch: "compute_90"}, "11.8"},
		{"nvrtc version", base, "12.4"},
		{"field boundaries", Request{Source: "sr", Name: "p.cu", Arch: "ccompute_90", Options: []string{"--fmad=false"}}, "11.8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.NotEqual(t, k0, Key(tc.req, tc.ver))
		})
	}
	assert.Equal(t, k0, Key(base, "11.8"), "the key is deterministic")
	assert.Len(t, k0, 64)
}

func TestCachePutGetAtomic(t *testing.T) {
	c := Cache{Dir: t.TempDir() + "/nested"}
	_, ok := c.Get("k", "compute_90")
	assert.False(t, ok)
	require.NoError(t, c.Put("k", "compute_90", ".version 7.8\n"))
	got, ok := c.Get("k", "compute_90")
	require.True(t, ok)
	assert.Equal(t, ".version 7.8\n", got)
	ents, err := os.ReadDir(c.Dir)
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), ".tmp-"), "temporary file %s left behind", e.Name())
	}
	// The zero cache stores nothing and finds nothing.
	require.NoError(t, Cache{}.Put("k", "compute_90", "x"))
	_, ok = Cache{}.Get("k", "compute_90")
	assert.False(t, ok)
}

func TestArchesFor(t *testing.T) {
	assert.Equal(t, []string{"compute_90", "compute_89", "compute_87", "compute_86", "compute_80", "compute_75",
		"compute_72", "compute_70", "compute_62", "compute_61", "compute_60", "compute_53", "compute_52"}, ArchesFor(9, 0))
	a := ArchesFor(10, 0)
	assert.Equal(t, "compute_100", a[0])
	assert.Equal(t, "compute_90", a[1])
	assert.Equal(t, []string{"compute_80", "compute_75", "compute_72", "compute_70", "compute_62", "compute_61",
		"compute_60", "compute_53", "compute_52"}, ArchesFor(8, 0))
}

const tiny = `extern "C" __global__ void kiln_tiny(float *x) { x[threadIdx.x] += 1.f; }`

func TestCompileAndCache(t *testing.T) {
	if _, err := Version(); errors.Is(err, ErrNoNVRTC) {
		c := Cache{Dir: t.TempDir()}
		_, err := c.Compile(Request{Source: tiny, Name: "tiny.cu", Arch: "compute_90"})
		assert.ErrorIs(t, err, ErrNoNVRTC, "builds without -tags cuda must say NVRTC is missing")
		return
	}
	c := Cache{Dir: t.TempDir()}
	req := Request{Source: tiny, Name: "tiny.cu", Arch: "compute_80"}
	r1, err := c.Compile(req)
	require.NoError(t, err)
	assert.False(t, r1.Cached)
	assert.Contains(t, r1.PTX, ".entry kiln_tiny")
	assert.NotContains(t, r1.PTX, "\x00")
	r2, err := c.Compile(req)
	require.NoError(t, err)
	assert.True(t, r2.Cached)
	assert.Equal(t, r1.PTX, r2.PTX)

	_, err = c.Compile(Request{Source: "this is not CUDA", Name: "bad.cu", Arch: "compute_80"})
	var ce *CompileError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, ce.Error(), "bad.cu")

	// An architecture NVRTC does not know falls back to the next one.
	res, err := c.CompileBest(Request{Source: tiny, Name: "tiny.cu"}, []string{"compute_999", "compute_80"})
	require.NoError(t, err)
	assert.Equal(t, "compute_80", res.Arch)
}
