package backend

import (
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConvOutSize(t *testing.T) {
	tests := []struct {
		in, k, s  int
		pad       string
		out, padB int
		wantErr   bool
	}{
		{28, 3, 1, "valid", 26, 0, false},
		{28, 3, 1, "same", 28, 1, false},
		{28, 2, 2, "valid", 14, 0, false},
		{5, 3, 2, "same", 3, 1, false},
		{6, 3, 2, "same", 3, 0, false},
		{2, 3, 1, "valid", 0, 0, true},
		{5, 3, 1, "full", 0, 0, true},
		{0, 3, 1, "valid", 0, 0, true},
		{4, 3, math.MaxInt, "same", 1, 0, false}, // in+stride-1 would overflow
	}
	for _, tc := range tests {
		out, pb, err := ConvOutSize(tc.in, tc.k, tc.s, tc.pad)
		if tc.wantErr {
			assert.Error(t, err, "%+v", tc)
			assert.True(t, errors.Is(err, ErrShape))
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.out, out, "%+v", tc)
		assert.Equal(t, tc.padB, pb, "%+v", tc)
	}
}

func TestOpenUnknownAndNotCompiled(t *testing.T) {
	_, rep, err := Open("tpu", Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown backend "tpu"`)
	assert.Len(t, rep.Attempts, 1)
	if _, ok := lookup("cuda"); !ok {
		_, _, err = Open("cuda", Options{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "-tags cuda")
		assert.True(t, errors.Is(err, ErrUnavailable))
	}
}

func TestErrorNamesBackendAndOp(t *testing.T) {
	err := NotImplemented("opencl", OpAdam)
	assert.Equal(t, "opencl: Adam: op not implemented by this backend", err.Error())
	assert.True(t, errors.Is(err, ErrNotImplemented))
	err = ShapeError("cpu", OpGemm, "m=%d", -1)
	assert.True(t, errors.Is(err, ErrShape))
	assert.Contains(t, err.Error(), "cpu: Gemm: m=-1")
}

func TestDropoutKeepRate(t *testing.T) {
	kept := 0
	const n = 100000
	for i := 0; i < n; i++ {
		if DropoutKeep(7, i, 0.3) {
			kept++
		}
	}
	frac := float64(kept) / n
	assert.InDelta(t, 0.7, frac, 0.01)
	assert.True(t, DropoutKeep(1, 5, 0))
	assert.False(t, DropoutKeep(1, 5, 1))
}

func TestProd(t *testing.T) {
	big := math.MaxInt/2 + 1
	for _, c := range []struct {
		name string
		xs   []int
		want int
	}{
		{"empty", nil, 1},
		{"sizes", []int{2, 3, 4}, 24},
		{"zero", []int{5, 0, 7}, 0},
		{"negative", []int{3, -1}, -1},
		{"overflow", []int{big, 2}, -1},
		{"overflow after zero is still zero", []int{0, big, 4}, 0},
	} {
		t.Run(c.name, func(t *testing.T) { assert.Equal(t, c.want, Prod(c.xs...)) })
	}
	p := ConvParams{N: math.MaxInt / 4, H: 4, W: 4, C: 4}
	assert.Equal(t, -1, p.InLen(), "an overflowing size is rejected, not wrapped")
}

// TestEnvBackendNamedInErrors: a backend chosen by $KILN_BACKEND says so
// when it cannot be used, so the user knows where the name came from.
func TestEnvBackendNamedInErrors(t *testing.T) {
	t.Setenv(EnvBackend, "nosuch")
	_, rep, err := Open("auto", Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "(named by $KILN_BACKEND)")
	assert.Contains(t, rep.Requested, "from KILN_BACKEND")
}

// Strides and padding so large that Validate's window arithmetic would
// wrap around are refused as shape errors: a stride of 2^62 over 5 outputs
// gives (5−1)·2^62, which wraps to 0 and passed the window checks.
func TestValidateRefusesWrappingParams(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("strides past 2^31 cannot be written on a 32-bit platform")
	}
	const shift = 62 * (strconv.IntSize / 64) // 62 (0 on 32-bit platforms, which skip)
	conv := ConvParams{N: 1, H: 4, W: 4, C: 1, KH: 1, KW: 1, F: 1, StrideH: 1, StrideW: 1, OutH: 4, OutW: 4}
	require.NoError(t, conv.Validate("test", "Conv2D"))
	pool := PoolParams{N: 1, H: 4, W: 4, C: 1, KH: 2, KW: 2, StrideH: 2, StrideW: 2, OutH: 2, OutW: 2}
	require.NoError(t, pool.Validate("test", "MaxPool2D"))

	c := conv
	c.StrideH, c.OutH = 1<<shift, 5
	assert.ErrorContains(t, c.Validate("test", "Conv2D"), "at most")
	c = conv
	c.PadTop = 1<<(shift/2+1) + 1
	assert.ErrorContains(t, c.Validate("test", "Conv2D"), "at most")
	p := pool
	p.StrideH, p.OutH = 1<<shift, 5
	assert.ErrorContains(t, p.Validate("test", "MaxPool2D"), "at most")
}

// lenBuf is a Buffer of a given length, for Need.
type lenBuf struct{ n int }

func (b *lenBuf) Len() int { return b.n }
func (b *lenBuf) Free()    {}

// TestNeedRefusesAliasedOutputs: an output (Req.Out) that is also another
// of the op's buffers is a shape error naming both; two inputs may be one.
func TestNeedRefusesAliasedOutputs(t *testing.T) {
	a, b, c := &lenBuf{8}, &lenBuf{8}, &lenBuf{8}
	tests := []struct {
		name string
		reqs []Req
		want string // "" when accepted
	}{
		{"distinct", []Req{{Name: "x", Buf: a, N: 8}, {Name: "w", Buf: b, N: 8}, {Name: "y", Buf: c, N: 8, Out: true}}, ""},
		{"inputs alike", []Req{{Name: "A", Buf: a, N: 8}, {Name: "B", Buf: a, N: 8}, {Name: "C", Buf: c, N: 8, Out: true}}, ""},
		{"output is an input", []Req{{Name: "x", Buf: a, N: 8}, {Name: "w", Buf: b, N: 8}, {Name: "y", Buf: b, N: 8, Out: true}},
			"w and y are the same buffer: the op reads its inputs while it writes y"},
		{"two outputs", []Req{{Name: "x", Buf: a, N: 8}, {Name: "y", Buf: c, N: 8, Out: true}, {Name: "argmax", Buf: c, N: 8, Out: true}},
			"y and argmax are the same buffer: both are outputs of the op"},
	}
	for _, tc := range tests {
		err := Need("test", "Op", tc.reqs...)
		if tc.want == "" {
			assert.NoError(t, err, tc.name)
			continue
		}
		assert.ErrorIs(t, err, ErrShape, tc.name)
		assert.ErrorContains(t, err, tc.want, tc.name)
	}
}
