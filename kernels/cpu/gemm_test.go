package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

// naiveGemm is the float64 reference for Sgemm.
func naiveGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			v := float64(alpha) * s
			if beta != 0 {
				v += float64(beta) * float64(c[i*ldc+j])
			}
			out[i*n+j] = v
		}
	}
	return out
}

func checkGemm(t *testing.T, p *Pool, ws *GemmWorkspace, transA, transB bool, m, n, k, pad int, alpha, beta float32, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	lda, ldb, ldc := ac+pad, bc+pad, n+pad
	a := randSlice(r, ar*lda)
	b := randSlice(r, br*ldb)
	c := randSlice(r, m*ldc)
	if beta == 0 {
		for i := range c {
			c[i] = float32(math.NaN())
		}
	}
	want := naiveGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	orig := append([]float32(nil), c...)
	Sgemm(p, ws, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	tol := 1e-5 * float64(k+1) * 4
	for i := 0; i < m; i++ {
		for j := 0; j < ldc; j++ {
			got := c[i*ldc+j]
			if j >= n {
				if !(math.IsNaN(float64(orig[i*ldc+j])) && math.IsNaN(float64(got))) {
					require.Equal(t, orig[i*ldc+j], got, "padding column touched at %d,%d", i, j)
				}
				continue
			}
			w := want[i*n+j]
			if math.Abs(float64(got)-w) > tol*(1+math.Abs(w)) {
				require.InDeltaf(t, w, got, tol, "C[%d][%d] tA=%v tB=%v m=%d n=%d k=%d", i, j, transA, transB, m, n, k)
			}
		}
	}
}

func TestSgemm(t *testing.T) {
	sizes := []struct{ m, n, k int }{
		{1, 1, 1}, {1, 7, 3}, {3, 1, 5}, {3, 3, 3}, {17, 17, 17}, {5, 13, 1},
		{12, 32, 8}, {13, 33, 9}, {11, 31, 257}, {24, 64, 300}, {6, 16, 5}, {7, 17, 4},
		{63, 65, 17}, {65, 63, 127}, {127, 129, 65}, {257, 17, 300}, {2, 257, 3},
		{300, 70, 9}, {129, 3100, 5}, {9, 64, 2500}, {37, 21, 4100},
		{13, 64, 1600}, {64, 64, 1600}, {30, 128, 77}, // the unpacked path (sgemmRows), with and without leftover rows
		{2, 64, 1600}, {5, 128, 77}, {1, 64, 300}, // sgemmRows with fewer rows than one panel
		{3, 64, 2304}, {23, 64, 2304}, {24, 64, 2304}, // a B past rowsMaxB: sgemmRows below rowsFewM rows, packed from it
		{2, 128, 4200}, // a B past rowsFewMaxB: packed
	}
	pools := map[string]*Pool{"serial": nil, "pool": NewPool(4)}
	defer pools["pool"].Close()
	for _, kern := range KernelNames() {
		for name, p := range pools {
			var ws GemmWorkspace
			require.NoError(t, ws.SetKernel(kern))
			for si, s := range sizes {
				for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
					// padded leading dimensions with alpha 1, beta 0 too: the
					// unpacked paths take only those
					for pi, pad := range []int{0, 3, 5} {
						alpha, beta := float32(1), float32(0)
						if pi == 1 {
							alpha, beta = 0.5, -1.5
						}
						t.Run(fmt.Sprintf("%s/%s/%dx%dx%d/tA=%v,tB=%v/pad=%d", kern, name, s.m, s.n, s.k, tr[0], tr[1], pad), func(t *testing.T) {
							checkGemm(t, p, &ws, tr[0], tr[1], s.m, s.n, s.k, pad, alpha, beta, uint64(si*10+pi))
						})
					}
				}
			}
		}
	}
}

func TestSgemmKernelSelection(t *testing.T) {
	names := KernelNames()
	require.NotEmpty(t, names)
	assert.Equal(t, "generic", names[len(names)-1])
	assert.Contains(t, names, DefaultKernel())
	var ws GemmWorkspace
	assert.Equal(t, DefaultKernel(), ws.Kernel())
	require.Error(t, ws.SetKernel("no-such-kernel"))
	for _, name := range names {
		require.NoError(t, ws.SetKernel(name))
		assert.Equal(t, name, ws.Kernel())
	}
	require.NoError(t, ws.SetKernel(""))
	assert.Equal(t, DefaultKernel(), ws.Kernel())
	for _, tc := range []struct{ env, want string }{
		{"generic", "generic"}, {" GENERIC ", "generic"}, {"", names[0]}, {"bogus", names[0]},
	} {
		assert.Equal(t, tc.want, chooseKernel(tc.env).name, "env %q", tc.env)
	}
}

// TestSgemmDeterministic checks that results are bit-identical whatever the
// number of workers, on both the blocked and the split-k path.
func TestSgemmDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, kern := range KernelNames() {
		for _, s := range []struct {
			tA      bool
			m, n, k int
		}{{false, 200, 150, 700}, {true, 9, 64, 21632}, {true, 576, 64, 3872}} {
			a := randSlice(r, s.m*s.k)
			b := randSlice(r, s.k*s.n)
			lda := s.k
			if s.tA {
				lda = s.m
			}
			var want []float32
			for _, workers := range []int{1, 2, 3} {
				p := NewPool(workers)
				var ws GemmWorkspace
				require.NoError(t, ws.SetKernel(kern))
				for rep := 0; rep < 2; rep++ {
					c := make([]float32, s.m*s.n)
					Sgemm(p, &ws, s.tA, false, s.m, s.n, s.k, 1, a, lda, b, s.n, 0, c, s.n)
					if want == nil {
						want = c
					}
					require.Equal(t, want, c, "%s %+v workers=%d", kern, s, workers)
				}
				p.Close()
			}
		}
	}
}

func TestSgemmBetaOne(t *testing.T) {
	var ws GemmWorkspace
	p := NewPool(2)
	defer p.Close()
	checkGemm(t, p, &ws, false, true, 100, 40, 600, 1, 1, 1, 9)
	checkGemm(t, p, &ws, true, false, 33, 20, 0, 0, 1, 0, 9)
	checkGemm(t, p, &ws, true, false, 33, 20, 5, 0, 0, 2, 9)
}

func TestSgemmNoAllocs(t *testing.T) {
	var ws GemmWorkspace
	p := NewPool(0)
	defer p.Close()
	n := 200
	a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	Sgemm(p, &ws, false, false, n, n, n, 1, a, n, b, n, 0, c, n)
	allocs := testing.AllocsPerRun(5, func() {
		Sgemm(p, &ws, true, false, n, n, n, 1, a, n, b, n, 0, c, n)
	})
	require.Zero(t, allocs)
}

// BenchmarkSgemm measures square SGEMM with every micro-kernel this CPU
// supports, on a pool of GOMAXPROCS workers.
func BenchmarkSgemm(b *testing.B) {
	for _, kern := range KernelNames() {
		for _, n := range []int{256, 512, 1024, 2048} {
			b.Run(fmt.Sprintf("%s/%d", kern, n), func(b *testing.B) {
				p := NewPool(0)
				defer p.Close()
				var ws GemmWorkspace
				require.NoError(b, ws.SetKernel(kern))
				r := rand.New(rand.NewPCG(1, 2))
				x, y, z := randSlice(r, n*n), randSlice(r, n*n), make([]float32, n*n)
				Sgemm(p, &ws, false, false, n, n, n, 1, x, n, y, n, 0, z, n)
				b.ResetTimer()
				cpu0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					Sgemm(p, &ws, false, false, n, n, n, 1, x, n, y, n, 0, z, n)
				}
				reportRates(b, 2*float64(n)*float64(n)*float64(n)*float64(b.N), cpu0)
			})
		}
	}
}

// BenchmarkMicroKernel measures each micro-kernel alone on one thread, on
// packed panels and a C tile that stay in L1 (kc 256): the ceiling the
// packed SGEMM approaches. Compare it with BenchmarkFMAPeak run with -cpu 1.
func BenchmarkMicroKernel(b *testing.B) {
	for _, kern := range KernelNames() {
		b.Run(kern, func(b *testing.B) {
			var ws GemmWorkspace
			require.NoError(b, ws.SetKernel(kern))
			kr := ws.kernel()
			const kc = 256
			r := rand.New(rand.NewPCG(1, 2))
			a, bp, c := randSlice(r, kr.mr*kc), randSlice(r, kr.nr*kc), make([]float32, kr.mr*kr.nr)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				kr.fn(kc, a, bp, c, kr.nr, true)
			}
			b.ReportMetric(2*float64(kr.mr*kr.nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkFMAPeak measures the FMA peak of each assembly kernel's vector
// width with a loop of independent register FMAs on every worker of a pool.
func BenchmarkFMAPeak(b *testing.B) {
	for _, kern := range KernelNames() {
		perIter := fmaPeak(kern, 1)
		if perIter == 0 {
			continue
		}
		b.Run(kern, func(b *testing.B) {
			p := NewPool(0)
			defer p.Close()
			const iters = 1 << 20
			b.ResetTimer()
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				p.For(p.Workers(), 1, func(lo, hi int) {
					for w := lo; w < hi; w++ {
						fmaPeak(kern, iters)
					}
				})
			}
			flops := perIter * iters * float64(p.Workers()) * float64(b.N)
			reportRates(b, flops, cpu0)
		})
	}
}

// reportRates reports GFLOP/s over wall time and GFLOP per CPU-second
// (process CPU time; on a loaded machine this is the per-core rate the code
// reaches while it runs).
func reportRates(b *testing.B, flops, cpu0 float64) {
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := cpuSeconds() - cpu0; cpu0 > 0 && cpu > 0 {
		b.ReportMetric(flops/cpu/1e9, "GFLOP/cpu-s")
	}
}

// TestSgemv covers the unpacked m = 1 path (default workspace): column
// counts around the 64-wide vector block, long and short reductions,
// parallel column blocks, alpha/beta and padded leading dimensions.
func TestSgemv(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	for _, pool := range []*Pool{nil, p} {
		var ws GemmWorkspace
		for _, n := range []int{1, 7, 10, 63, 64, 65, 128, 130, 2000} {
			for _, k := range []int{1, 3, 64, 1600} {
				for pi, pad := range []int{0, 5} {
					alpha, beta := float32(1), float32(0)
					if pi == 1 {
						alpha, beta = -0.75, 0.5
					}
					for _, tA := range []bool{false, true} {
						t.Run(fmt.Sprintf("%d/n%d/k%d/pad%d/tA=%v", pool.Workers(), n, k, pad, tA), func(t *testing.T) {
							checkGemm(t, pool, &ws, tA, false, 1, n, k, pad, alpha, beta, uint64(n*k+pi))
						})
					}
				}
			}
		}
	}
}

// TestSgemmPackedB checks that multiplying by a B packed once
// (packBWhole + sgemmPackedB) gives the packed Sgemm's result bit for bit, for every
// micro-kernel, with edge tiles, several k blocks and beta 0 and 1.
func TestSgemmPackedB(t *testing.T) {
	for _, name := range KernelNames() {
		var ws GemmWorkspace
		require.NoError(t, ws.SetKernel(name))
		kr := ws.kernel()
		for _, s := range []struct{ m, n, k int }{{1, 1, 1}, {13, 33, 9}, {84, 64, 576}, {121, 70, 600}, {7, 5, 257}, {250, 64, 27}} {
			for _, beta := range []float32{0, 1} {
				r := rand.New(rand.NewPCG(uint64(s.m), uint64(s.k)))
				a := randSlice(r, s.m*s.k)
				b := randSlice(r, s.k*s.n)
				c0 := randSlice(r, s.m*s.n)
				want := append([]float32(nil), c0...)
				sgemmPacked(nil, &ws, kr, false, false, s.m, s.n, s.k, 1, a, s.k, b, s.n, beta, want, s.n)
				pb := make([]float32, packedBLen(kr, s.n, s.k))
				packBWhole(kr, pb, b, s.n, s.n, s.k)
				got := append([]float32(nil), c0...)
				var ws2 GemmWorkspace
				sgemmPackedB(&ws2, kr, s.m, s.n, s.k, a, s.k, pb, beta, got, s.n)
				require.Equal(t, want, got, "%s %+v beta=%v", name, s, beta)
			}
		}
	}
}

// TestSgemvSplit checks the split-k path of one-row products over at most
// 64 columns (a dense layer at batch 1) against float64, with alpha and
// beta, and that it gives the same bits serially and on 2 and 3 workers.
func TestSgemvSplit(t *testing.T) {
	for _, c := range []struct {
		n, k        int
		alpha, beta float32
	}{{64, 1600, 1, 0}, {10, 1024, 1, 0}, {1, 3001, 0.5, 1}, {37, 2048, -2, 0.25}} {
		r := rand.New(rand.NewPCG(uint64(c.n), uint64(c.k)))
		a, b, c0 := randSlice(r, c.k), randSlice(r, c.k*c.n), randSlice(r, c.n)
		want, scale := make([]float64, c.n), make([]float64, c.n)
		for j := range want {
			var s, abs float64
			for p := 0; p < c.k; p++ {
				s += float64(a[p]) * float64(b[p*c.n+j])
				abs += math.Abs(float64(a[p]) * float64(b[p*c.n+j]))
			}
			want[j] = float64(c.alpha)*s + float64(c.beta)*float64(c0[j])
			scale[j] = math.Abs(float64(c.alpha))*abs + math.Abs(float64(c.beta)*float64(c0[j]))
		}
		var first []float32
		for _, workers := range []int{1, 2, 3} {
			var p *Pool
			if workers > 1 {
				p = NewPool(workers)
			}
			var ws GemmWorkspace
			got := append([]float32(nil), c0...)
			Sgemm(p, &ws, false, false, 1, c.n, c.k, c.alpha, a, c.k, b, c.n, c.beta, got, c.n)
			p.Close()
			for j := range want {
				require.InDelta(t, want[j], got[j], 1e-5*math.Sqrt(float64(c.k))*scale[j], "n %d k %d: c[%d]", c.n, c.k, j)
			}
			if first == nil {
				first = got
				continue
			}
			requireSameBits(t, first, got, fmt.Sprintf("n %d k %d on %d workers", c.n, c.k, workers))
		}
	}
}

// TestPackA12 checks the packing of 12 rows of A, vector part and scalar
// tail, against its definition for depths around multiples of 4.
func TestPackA12(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, kc := range []int{1, 3, 4, 5, 8, 17, 255, 256} {
		const lda, off = 300, 7
		a := randSlice(r, off+12*lda)
		a = a[: off+11*lda+kc : off+11*lda+kc] // the last row ends the slice
		d := make([]float32, kc*12)
		packA12(d, a, lda, off, kc)
		for p := 0; p < kc; p++ {
			for i := 0; i < 12; i++ {
				require.Equal(t, a[off+i*lda+p], d[p*12+i], "kc %d, k %d, row %d", kc, p, i)
			}
		}
	}
}

// BenchmarkPackA12 packs a 12×256 panel of a 1024-wide A.
func BenchmarkPackA12(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	const lda, kc = 1024, 256
	a := randSlice(r, 12*lda)
	d := make([]float32, kc*12)
	b.SetBytes(kc * 12 * 4)
	for i := 0; i < b.N; i++ {
		packA12(d, a, lda, 0, kc)
	}
}
