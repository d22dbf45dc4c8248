package opencl_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kcl "github.com/kiln-ml/kiln/kernels/opencl"
)

func TestPrograms(t *testing.T) {
	want := map[string][]string{
		"conv.cl":        {"im2col", "col2im"},
		"elementwise.cl": {"bias_add", "bias_grad", "relu", "relu_bwd", "mul", "dropout_mask"},
		"gemm.cl":        {"sgemm_tiled", "sgemm_naive"},
		"optim.cl":       {"adam", "sgd"},
		"pool.cl":        {"maxpool_fwd", "maxpool_bwd"},
		"softmax.cl":     {"softmax", "softmax_xent_rows", "softmax_xent_reduce"},
	}
	progs := kcl.Programs()
	require.Len(t, progs, len(want))
	for _, p := range progs {
		t.Run(p.Name, func(t *testing.T) {
			assert.Equal(t, want[p.Name], p.Kernels)
			assert.True(t, strings.HasPrefix(p.Source, kcl.Header()), "source starts with common.h")
			got, err := kcl.Lookup(p.Name)
			require.NoError(t, err)
			assert.Equal(t, p, got)
		})
	}
	_, err := kcl.Lookup("missing.cl")
	assert.ErrorContains(t, err, "missing.cl")
}

func TestKernelNames(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{"__kernel void a(int x) {}", []string{"a"}},
		{"__kernel __attribute__((reqd_work_group_size(16, 16, 1)))\nvoid b (int x)", []string{"b"}},
		{"void helper(int x) {}", nil},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, kcl.KernelNames(tc.src), tc.src)
	}
}
