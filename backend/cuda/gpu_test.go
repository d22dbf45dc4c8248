//go:build cuda && gpu

// These tests and benchmarks link gorgonia.org/cu, whose init exits the
// process on a host without a usable GPU, so they sit behind the extra tag
// gpu and run only on GPU hosts (bench/gpu-check.sh):
//
//	go test -tags 'cuda gpu' -run Conformance ./backend/cuda
//	go test -tags 'cuda gpu' -run '^$' -bench Sgemm4096 ./backend/cuda
//
// The GPU-less CI runs the same conformance suite through the loader
// (backend/cuda/loader), where it skips saying that no device is present.
package cuda

import (
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas"
	"gorgonia.org/cu"
	cublas "gorgonia.org/cu/blas"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/backendtest"
	bind "github.com/kiln-ml/kiln/bindings/cuda"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		b, err := Open(backend.Options{CacheDir: t.TempDir()})
		require.NoError(t, err)
		return b
	})
}

// TestGridLimits: checkGridLimits on the device.
func TestGridLimits(t *testing.T) {
	b, err := Open(backend.Options{CacheDir: t.TempDir()})
	require.NoError(t, err)
	checkGridLimits(t, b.(*Backend))
}

// deviceSlice views device memory as a []float32 for gorgonia.org/cu/blas,
// which passes &s[0] to cuBLAS as the device pointer; it is never read by Go.
func deviceSlice(p bind.DevicePtr, n int) []float32 {
	return unsafe.Slice(*(**float32)(unsafe.Pointer(&p)), n)
}

// BenchmarkSgemm4096 times C = A·B at 4096³ with kiln's kernel and with
// cuBLAS on the same buffers and stream order, reporting GFLOP/s.
func BenchmarkSgemm4096(b *testing.B) {
	const n = 4096
	bk, err := Open(backend.Options{})
	require.NoError(b, err)
	be := bk.(*Backend)
	defer be.Close()
	bufs := make([]backend.Buffer, 3)
	for i := range bufs {
		bufs[i], err = be.Alloc(n * n)
		require.NoError(b, err)
		require.NoError(b, be.Fill(bufs[i], n*n, 0.5))
		defer bufs[i].Free()
	}
	flops := 2.0 * n * n * n
	// Both are timed by the wall clock around b.N launches and a
	// context-wide synchronize, since cuBLAS runs on the legacy default
	// stream and kiln on its own.
	syncAll := func() error { return be.ctx.(*driverDevice).Run(func() error { return cu.Synchronize() }) }
	measure := func(b *testing.B, run func() error) {
		require.NoError(b, run()) // warm-up
		require.NoError(b, syncAll())
		b.ResetTimer()
		t0 := time.Now()
		for i := 0; i < b.N; i++ {
			require.NoError(b, run())
		}
		require.NoError(b, syncAll())
		b.ReportMetric(flops*float64(b.N)/time.Since(t0).Seconds()/1e9, "GFLOP/s")
	}
	b.Run("kiln", func(b *testing.B) {
		measure(b, func() error { return be.Gemm(false, false, n, n, n, 1, bufs[0], bufs[1], 0, bufs[2]) })
	})
	b.Run("cublas", func(b *testing.B) {
		var h *cublas.Standard
		require.NoError(b, be.ctx.(*driverDevice).Run(func() error {
			h = &cublas.Standard{}
			return h.Init()
		}))
		defer be.ctx.(*driverDevice).Run(h.Close)
		a, bb, c := deviceSlice(ptr(bufs[0]), n*n), deviceSlice(ptr(bufs[1]), n*n), deviceSlice(ptr(bufs[2]), n*n)
		// Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ.
		measure(b, func() error {
			return be.ctx.(*driverDevice).Run(func() error {
				h.Sgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, bb, n, a, n, 0, c, n)
				return h.Err()
			})
		})
	})
}
