//go:build cudaemu && linux

package cuda

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmulatorHasEveryKernel(t *testing.T) {
	var got []string
	for _, k := range EmulatedKernels() {
		if !strings.HasPrefix(k, "kiln_emutest_") {
			got = append(got, k)
		}
	}
	assert.ElementsMatch(t, Kernels(), got)
}

func TestEmulatorIncludesFilesInOrder(t *testing.T) {
	src, err := os.ReadFile("emu_kernels.h")
	require.NoError(t, err)
	var got []string
	for _, m := range regexp.MustCompile(`(?m)^#include "([^"]+)"`).FindAllStringSubmatch(string(src), -1) {
		if m[1] != "emu.h" && m[1] != "emu_testkernels.h" {
			got = append(got, m[1])
		}
	}
	assert.Equal(t, Files, got, "emu_kernels.h must include the kernel sources in the order of Files")
}

func TestEmulatorLaunch(t *testing.T) {
	e := NewEmulator()
	const n = 1000
	x, err := e.Alloc(n * 4)
	require.NoError(t, err)
	y, err := e.Alloc(n * 4)
	require.NoError(t, err)
	in := make([]float32, n)
	for i := range in {
		in[i] = float32(i%7) - 3
	}
	require.NoError(t, e.Upload(x, in))

	require.NoError(t, e.Launch(ReLU, [3]int{3}, [3]int{128}, []uint64{uint64(x), uint64(y), n}))
	out := make([]float32, n)
	require.NoError(t, e.Download(out, y))
	for i, v := range in {
		require.Equal(t, max(v, 0), out[i], "relu of element %d", i)
	}

	for _, c := range []struct {
		name         string
		kernel       string
		grid, block  [3]int
		args         []uint64
		wantContains string
	}{
		{"unknown kernel", "kiln_nope", [3]int{1}, [3]int{32}, nil, "no kernel named kiln_nope"},
		{"missing argument", ReLU, [3]int{1}, [3]int{32}, []uint64{uint64(x), uint64(y)}, "takes 3 arguments, launched with 2"},
		{"block too large", ReLU, [3]int{1}, [3]int{2048}, []uint64{uint64(x), uint64(y), n}, "invalid launch"},
		// one warp a row: a 16-thread block leaves the shuffle half a warp
		{"partial warp shuffle", Softmax, [3]int{1}, [3]int{16}, []uint64{uint64(x), uint64(y), 1, 10}, "reached by 16 of 32 lanes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := e.Launch(c.kernel, c.grid, c.block, c.args)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.wantContains)
		})
	}

	// Softmax over 10 columns with full warps: each row sums to 1.
	require.NoError(t, e.Launch(Softmax, [3]int{1}, [3]int{256}, []uint64{uint64(x), uint64(y), 8, 10}))
	require.NoError(t, e.Download(out[:80], y))
	for r := 0; r < 8; r++ {
		var s float64
		for _, v := range out[r*10 : r*10+10] {
			s += float64(v)
		}
		assert.InDelta(t, 1, s, 1e-6, "row %d", r)
	}

	assert.Error(t, e.Upload(y+4, in), "an upload past the end of a buffer is refused")
	assert.Error(t, e.Free(x+4), "freeing an address that was not allocated")
	require.NoError(t, e.Free(x))
	require.NoError(t, e.Free(y))
	assert.Zero(t, e.Live())
}

// TestEmulatorCatchesBadKernels: the emulator reports barriers a GPU would
// deadlock on, and a missing barrier shows as a wrong result.
func TestEmulatorCatchesBadKernels(t *testing.T) {
	e := NewEmulator()
	out, err := e.Alloc(256 * 4)
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Free(out)) }()
	for _, c := range []struct{ kernel, want string }{
		{"kiln_emutest_split_barrier", "wait at different __syncthreads"},
		{"kiln_emutest_exit_barrier", "__syncthreads can never complete: 31 threads wait at it, 0 at a shuffle, 1 have exited"},
	} {
		err := e.Launch(c.kernel, [3]int{1}, [3]int{32}, []uint64{uint64(out)})
		require.Error(t, err, c.kernel)
		assert.Contains(t, err.Error(), c.want)
	}

	race := func(sync bool, salt int) (wrong int) {
		s := uint64(0)
		if sync {
			s = 1
		}
		require.NoError(t, e.Launch("kiln_emutest_race", [3]int{1}, [3]int{256}, []uint64{uint64(out), s, uint64(salt)}))
		got := make([]int32, 256)
		require.NoError(t, e.DownloadInt32(got, out))
		for i, v := range got {
			if v != int32((i+1)%256+1+salt) {
				wrong++
			}
		}
		return wrong
	}
	assert.Zero(t, race(true, 1000), "with the barrier every thread reads its neighbour's value")
	assert.NotZero(t, race(false, 2000), "without it, the emulator's thread order exposes the race")

	// Thread 0 publishes a value and the others read it with no barrier:
	// one of two launches in a row runs the block's first stretch backward,
	// so its readers see the last launch's value.
	bcastWrong := func(salt int) (wrong int) {
		require.NoError(t, e.Launch("kiln_emutest_bcast", [3]int{1}, [3]int{256}, []uint64{uint64(out), uint64(salt)}))
		got := make([]int32, 256)
		require.NoError(t, e.DownloadInt32(got, out))
		for _, v := range got {
			if v != int32(salt) {
				wrong++
			}
		}
		return wrong
	}
	assert.NotZero(t, bcastWrong(3000)+bcastWrong(4000), "a thread-0 broadcast without a barrier is caught in one launch of two")

	// Block 1 reads shared memory only block 0 wrote: it finds the 0xff
	// fill (-1), not block 0's value, in both block orders.
	for launch := 0; launch < 2; launch++ {
		salt := 5000 + launch
		require.NoError(t, e.Launch("kiln_emutest_unwritten", [3]int{2}, [3]int{32}, []uint64{uint64(out), uint64(salt)}))
		got := make([]int32, 64)
		require.NoError(t, e.DownloadInt32(got, out))
		for i, v := range got {
			want := int32(salt)
			if i >= 32 {
				want = -1
			}
			require.Equal(t, want, v, "launch %d, thread %d of block %d", launch, i%32, i/32)
		}
	}

	// Blocks that read each other's writes: right in one block order only,
	// and two launches in a row run both orders.
	blocksRight := func() bool {
		require.NoError(t, e.Memset32(out, 0, 8))
		require.NoError(t, e.Launch("kiln_emutest_blocks", [3]int{8}, [3]int{32}, []uint64{uint64(out)}))
		got := make([]int32, 8)
		require.NoError(t, e.DownloadInt32(got, out))
		for b, v := range got {
			if v != int32(b+1) {
				return false
			}
		}
		return true
	}
	first, second := blocksRight(), blocksRight()
	assert.NotEqual(t, first, second, "one of two launches runs the blocks in an order that exposes the race between them")
}
