package cpu

// Block sizes of the packed SGEMM. The micro-kernel computes an mr×nr tile
// of C; packed panels of A (mc×kc) stay in L2 and a kc×nr sliver of packed B
// in L1 while the micro-kernel sweeps it.
const (
	mr      = 4    // rows of the micro-kernel tile
	nr      = 4    // columns of the micro-kernel tile
	kcBlock = 256  // depth of a packed block
	mcBlock = 128  // rows of a packed A block (multiple of mr)
	ncBlock = 3072 // columns of a packed B block (multiple of nr)
)

// kernel4x4 and the fast path of storeTile are written for a 4×4 tile;
// these fail to compile if mr or nr change without them.
var (
	_ [mr - 4]struct{}
	_ [4 - mr]struct{}
	_ [nr - 4]struct{}
	_ [4 - nr]struct{}
)

// GemmWorkspace holds the packing buffers and job state of Sgemm. It grows
// on first use and is reused afterwards, so steady-state calls allocate
// nothing. A workspace must be used from one goroutine at a time. The zero
// value is ready to use.
type GemmWorkspace struct {
	packB []float32
	packA [][]float32 // one per worker
	last  []int       // per worker: index of the A block held in packA
	job   gemmJob
}

// gemmJob describes the current (jc, pc) block of an Sgemm call to the
// workers.
type gemmJob struct {
	ws             *GemmWorkspace
	transA         bool
	m              int
	a              []float32
	lda            int
	c              []float32
	ldc            int
	alpha, beta    float32
	pc, kc, jc, nc int
	nIB, nSlices   int // A blocks, column slices per block
	slicePanels    int // nr-panels per slice
	gen            int // distinguishes (jc, pc) blocks in last
}

func (ws *GemmWorkspace) grow(workers, kc, nc int) {
	if need := kc * roundUp(nc, nr); len(ws.packB) < need {
		ws.packB = make([]float32, need)
	}
	for len(ws.packA) < workers {
		ws.packA = append(ws.packA, nil)
		ws.last = append(ws.last, -1)
	}
	need := mcBlock * kcBlock
	for w := 0; w < workers; w++ {
		if len(ws.packA[w]) < need {
			ws.packA[w] = make([]float32, need)
		}
	}
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices,
// where op(A) is m×k and op(B) is k×n. A is stored m×k (k×m when transA)
// with leading dimension lda, B is stored k×n (n×k when transB) with
// leading dimension ldb, and C is m×n with leading dimension ldc. When beta
// is 0, C is overwritten without being read (NaNs in C do not survive).
// ws holds the packing buffers; p may be nil to run serially. The caller
// guarantees the slices are large enough.
func Sgemm(p *Pool, ws *GemmWorkspace, transA, transB bool, m, n, k int,
	alpha float32, a []float32, lda int, b []float32, ldb int,
	beta float32, c []float32, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	if k <= 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	workers := p.Workers()
	kcMax := min(k, kcBlock)
	ncMax := min(n, ncBlock)
	ws.grow(workers, kcMax, ncMax)
	for w := range ws.last {
		ws.last[w] = -1
	}
	j := &ws.job
	*j = gemmJob{ws: ws, transA: transA, m: m, a: a, lda: lda, c: c, ldc: ldc, alpha: alpha}
	j.nIB = (m + mcBlock - 1) / mcBlock
	for jc := 0; jc < n; jc += ncBlock {
		nc := min(ncBlock, n-jc)
		panels := (nc + nr - 1) / nr
		want := 4 * workers
		if workers == 1 {
			want = 1
		}
		ns := max(1, min(panels, (want+j.nIB-1)/j.nIB))
		j.slicePanels = (panels + ns - 1) / ns
		j.nSlices = (panels + j.slicePanels - 1) / j.slicePanels
		for pc := 0; pc < k; pc += kcBlock {
			kc := min(kcBlock, k-pc)
			packB(p, ws.packB, b, ldb, transB, pc, kc, jc, nc)
			j.pc, j.kc, j.jc, j.nc = pc, kc, jc, nc
			j.beta = beta
			if pc > 0 {
				j.beta = 1
			}
			j.gen++
			tasks := j.nIB * j.nSlices
			if p.serial(tasks, 1) {
				for t := 0; t < tasks; t++ {
					j.task(0, t)
				}
				continue
			}
			a := p.args()
			a.g = j
			p.run(tasks, 1, a, gemmTask)
		}
	}
	j.a, j.c = nil, nil
}

func gemmTask(a *args, w, lo, hi int) {
	for t := lo; t < hi; t++ {
		a.g.task(w, t)
	}
}

// task computes one (A block, column slice) tile of the current block on
// worker w.
func (j *gemmJob) task(w, t int) {
	ib, js := t/j.nSlices, t%j.nSlices
	ic := ib * mcBlock
	mc := min(mcBlock, j.m-ic)
	ws := j.ws
	pa := ws.packA[w]
	key := j.gen*j.nIB + ib
	if ws.last[w] != key {
		packA(pa, j.a, j.lda, j.transA, ic, mc, j.pc, j.kc)
		ws.last[w] = key
	}
	kc := j.kc
	j0 := js * j.slicePanels * nr
	j1 := min(j.nc, j0+j.slicePanels*nr)
	var acc [mr * nr]float32
	for jr := j0; jr < j1; jr += nr {
		nb := min(nr, j1-jr)
		bp := ws.packB[jr*kc : jr*kc+kc*nr]
		for ir := 0; ir < mc; ir += mr {
			mb := min(mr, mc-ir)
			ap := pa[ir*kc : ir*kc+kc*mr]
			kernel4x4(kc, ap, bp, &acc)
			off := (ic+ir)*j.ldc + j.jc + jr
			storeTile(&acc, mb, nb, j.alpha, j.beta, j.c[off:], j.ldc)
		}
	}
}

// storeTile writes C[i][j] = alpha·acc[i][j] + beta·C[i][j] for the mb×nb
// valid part of a tile; beta == 0 overwrites.
func storeTile(acc *[mr * nr]float32, mb, nb int, alpha, beta float32, c []float32, ldc int) {
	if mb == mr && nb == nr && alpha == 1 && (beta == 0 || beta == 1) {
		for i := 0; i < mr; i++ {
			row := c[i*ldc : i*ldc+nr : i*ldc+nr]
			r := acc[i*nr : i*nr+nr : i*nr+nr]
			if beta == 0 {
				row[0], row[1], row[2], row[3] = r[0], r[1], r[2], r[3]
			} else {
				row[0] += r[0]
				row[1] += r[1]
				row[2] += r[2]
				row[3] += r[3]
			}
		}
		return
	}
	for i := 0; i < mb; i++ {
		row := c[i*ldc : i*ldc+nb]
		r := acc[i*nr : i*nr+nb]
		switch {
		case beta == 0:
			for jj := range row {
				row[jj] = alpha * r[jj]
			}
		case beta == 1:
			for jj := range row {
				row[jj] += alpha * r[jj]
			}
		default:
			for jj := range row {
				row[jj] = alpha*r[jj] + beta*row[jj]
			}
		}
	}
}

// scaleC sets C = beta·C (beta == 0 overwrites with zeros).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for jj := range row {
			row[jj] *= beta
		}
	}
}

// packA packs the mc×kc block of op(A) starting at (ic, pc) into panels of
// mr rows: dst[panel·kc·mr + p·mr + r] = op(A)[ic+panel·mr+r][pc+p], with
// rows past mc zero.
func packA(dst, a []float32, lda int, transA bool, ic, mc, pc, kc int) {
	for ir := 0; ir < mc; ir += mr {
		mb := min(mr, mc-ir)
		d := dst[ir*kc : ir*kc+kc*mr]
		if transA {
			// op(A)[i][p] = a[p·lda + i]: rows of the panel are contiguous.
			for p := 0; p < kc; p++ {
				src := a[(pc+p)*lda+ic+ir:]
				dp := d[p*mr : p*mr+mr]
				if mb == mr {
					dp[0], dp[1], dp[2], dp[3] = src[0], src[1], src[2], src[3]
				} else {
					for r := 0; r < mr; r++ {
						if r < mb {
							dp[r] = src[r]
						} else {
							dp[r] = 0
						}
					}
				}
			}
			continue
		}
		for r := 0; r < mr; r++ {
			if r >= mb {
				for p := 0; p < kc; p++ {
					d[p*mr+r] = 0
				}
				continue
			}
			src := a[(ic+ir+r)*lda+pc : (ic+ir+r)*lda+pc+kc]
			for p, v := range src {
				d[p*mr+r] = v
			}
		}
	}
}

// packB packs the kc×nc block of op(B) starting at (pc, jc) into panels of
// nr columns: dst[panel·kc·nr + p·nr + c] = op(B)[pc+p][jc+panel·nr+c], with
// columns past nc zero. Large blocks are packed in parallel.
func packB(pool *Pool, dst, b []float32, ldb int, transB bool, pc, kc, jc, nc int) {
	panels := (nc + nr - 1) / nr
	if kc*nc < 1<<15 || pool.serial(panels, 1) {
		packBRange(dst, b, ldb, transB, pc, kc, jc, nc, 0, panels)
		return
	}
	a := pool.args()
	a.s[0], a.s[1] = dst, b
	a.i[0], a.i[1], a.i[2], a.i[3], a.i[4] = ldb, pc, kc, jc, nc
	if transB {
		a.i[5] = 1
	}
	pool.run(panels, 0, a, packBTask)
}

func packBTask(a *args, _, lo, hi int) {
	packBRange(a.s[0], a.s[1], a.i[0], a.i[5] == 1, a.i[1], a.i[2], a.i[3], a.i[4], lo, hi)
}

func packBRange(dst, b []float32, ldb int, transB bool, pc, kc, jc, nc, lo, hi int) {
	for jp := lo; jp < hi; jp++ {
		jr := jp * nr
		nb := min(nr, nc-jr)
		d := dst[jr*kc : jr*kc+kc*nr]
		if !transB {
			for p := 0; p < kc; p++ {
				src := b[(pc+p)*ldb+jc+jr:]
				dp := d[p*nr : p*nr+nr]
				if nb == nr {
					copy(dp, src[:nr])
				} else {
					copy(dp, src[:nb])
					clear(dp[nb:])
				}
			}
			continue
		}
		// op(B)[p][j] = b[j·ldb + p]
		for cc := 0; cc < nr; cc++ {
			if cc >= nb {
				for p := 0; p < kc; p++ {
					d[p*nr+cc] = 0
				}
				continue
			}
			src := b[(jc+jr+cc)*ldb+pc : (jc+jr+cc)*ldb+pc+kc]
			for p, v := range src {
				d[p*nr+cc] = v
			}
		}
	}
}
