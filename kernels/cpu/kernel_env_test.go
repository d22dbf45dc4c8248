package cpu

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckKernelEnv: a KILN_CPU_KERNEL the package ignores (a typo, or a
// kernel this CPU lacks) is reported, with what runs instead; an empty or
// supported value is not.
func TestCheckKernelEnv(t *testing.T) {
	names := KernelNames()
	best := names[0]
	type tc struct {
		value string
		want  []string // nil: no problem
	}
	tests := []tc{
		{"", nil},
		{"  ", nil},
		{"generic", nil},
		{" Generic ", nil},
		{"bogus", []string{`KILN_CPU_KERNEL="bogus" is not a cpu kernel name (want one of avx512, avx2, generic); it is ignored and the ` + best + " kernels run"}},
		{"avx-512", []string{`KILN_CPU_KERNEL="avx-512" is not a cpu kernel name`, "the " + best + " kernels run"}},
		{"AVX_2", []string{`"AVX_2" is not a cpu kernel name`}},
	}
	for _, k := range []string{"avx512", "avx2"} {
		if slices.Contains(names, k) {
			tests = append(tests, tc{k, nil})
			continue
		}
		tests = append(tests, tc{k, []string{`KILN_CPU_KERNEL="` + k + `": this CPU cannot run the ` + k + " kernels (it runs ", "it is ignored and the " + best + " kernels run"}})
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			err := CheckKernelEnv(tc.value)
			if tc.want == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			// what the warning says runs is what runs
			assert.Equal(t, best, chooseKernel(tc.value).name)
		})
	}
}
