package cuda

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
)

func TestOpKernelsCoverTheContract(t *testing.T) {
	ops := OpKernels()
	var got []string
	for op := range ops {
		got = append(got, op)
	}
	want := backend.AllOps()
	sort.Strings(got)
	sort.Strings(want)
	assert.Equal(t, want, got, "every op of backend.AllOps needs an entry")

	known := map[string]bool{}
	for _, k := range Kernels() {
		known[k] = true
	}
	for op, ks := range ops {
		for _, k := range ks {
			assert.True(t, known[k], "op %s names unknown kernel %s", op, k)
		}
	}
	for _, k := range HeavyKernels() {
		assert.True(t, known[k], "heavy kernel %s is not in Kernels", k)
	}
}

func TestSourceDeclaresEveryKernelExternC(t *testing.T) {
	src, err := Source()
	require.NoError(t, err)
	require.Contains(t, src, `#define KILN_KERNEL extern "C" __global__`)
	for _, k := range Kernels() {
		t.Run(k, func(t *testing.T) {
			// Either declared directly after KILN_KERNEL or through the
			// KILN_GEMM macro, which expands to a KILN_KERNEL.
			direct := regexp.MustCompile(`KILN_KERNEL void\s+(?:\w+(?:\([^)]*\))?\s+)?` + k + `\(`)
			viaGemm := regexp.MustCompile(`(?m)^KILN_GEMM\(` + k + `,`)
			assert.True(t, direct.MatchString(src) || viaGemm.MatchString(src), "kernel %s not declared with KILN_KERNEL", k)
		})
	}
}

func TestGemmNames(t *testing.T) {
	tests := []struct {
		ta, tb bool
		tile   int
		want   string
	}{
		{false, false, 128, SgemmNN128},
		{false, true, 128, SgemmNT128},
		{true, false, 32, SgemmTN32},
		{true, true, 32, SgemmTT32},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, Gemm(tc.ta, tc.tb, tc.tile))
	}
}

func TestSourceHasLineDirectivesInOrder(t *testing.T) {
	src, err := Source()
	require.NoError(t, err)
	last := -1
	for _, f := range Files {
		i := strings.Index(src, `#line 1 "`+f+`"`)
		require.GreaterOrEqual(t, i, 0, "no #line for %s", f)
		assert.Greater(t, i, last, "%s out of order", f)
		last = i
	}
}
