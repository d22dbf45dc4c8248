//go:build opencl

package opencl

import (
	"fmt"
	"testing"

	"github.com/kiln-ml/kiln/backend"
)

// BenchmarkGemm compares the tiled SGEMM kernel with the naive one on
// square sizes; each iteration is one GEMM followed by Sync. Report the
// ratio of the two from one run (the machine may be loaded):
//
//	go test -tags opencl -run '^$' -bench Gemm -benchtime 5x ./backend/opencl/
func BenchmarkGemm(b *testing.B) {
	be, err := Open(backend.Options{CacheDir: sharedCache(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	for _, n := range []int{128, 256, 512, 1024} {
		bufs := make([]backend.Buffer, 3)
		for i := range bufs {
			if bufs[i], err = be.Alloc(n * n); err != nil {
				b.Fatal(err)
			}
			defer bufs[i].Free()
		}
		host := make([]float32, n*n)
		for i := range host {
			host[i] = float32(i%17) / 17
		}
		for _, buf := range bufs[:2] {
			if err := be.Upload(buf, host); err != nil {
				b.Fatal(err)
			}
		}
		for _, kind := range []string{"tiled", "naive"} {
			gemm := be.Gemm
			if kind == "naive" {
				gemm = be.GemmNaive
			}
			b.Run(fmt.Sprintf("%s/n%d", kind, n), func(b *testing.B) {
				// Warm up: the driver compiles the kernel for its work-group size.
				if err := gemm(false, false, n, n, n, 1, bufs[0], bufs[1], 0, bufs[2]); err != nil {
					b.Fatal(err)
				}
				if err := be.Sync(); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := gemm(false, false, n, n, n, 1, bufs[0], bufs[1], 0, bufs[2]); err != nil {
						b.Fatal(err)
					}
					if err := be.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
