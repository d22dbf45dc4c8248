package cpu

// The packed SGEMM follows BLIS/GotoBLAS. For each kc-deep, nc-wide block
// of op(B), packed once into nr-column panels and shared by the workers,
// every worker packs an A block (a run of mr-row panels, kc deep) and sweeps
// it: for each A panel (which stays in L1) the micro-kernel runs over every
// B panel of the block (which stays in L2). The micro-kernel, its tile
// (mr×nr) and block sizes come from the workspace's gemmKernel.
//
// Results do not depend on the number of workers: every element of C is
// summed over the same kc blocks in the same order whichever worker computes
// it, and the split-k path below partitions k by shape alone.

const (
	// serialMACs: products with fewer multiply-adds than this run on the
	// calling goroutine (waking workers costs more than it saves).
	serialMACs = 1 << 20
	// splitMaxMN and splitMinK select the split-k path: a small C (at most
	// splitMaxMN elements) over a long reduction (at least splitMinK)
	// is computed as per-chunk partial products summed in a fixed order.
	splitMaxMN = 1 << 16
	splitMinK  = 2048
	// splitChunk is the preferred k depth of one split-k chunk; at most
	// splitMaxChunks chunks are used.
	splitChunk     = 1024
	splitMaxChunks = 32
	// rowsMaxM and rowsMaxB select the unpacked path (sgemmRows): at most
	// rowsMaxM rows of A, and B at most rowsMaxB floats (512 KiB).
	rowsMaxM = 512
	rowsMaxB = 128 << 10
	// rowsFewM: below this many rows sgemmRows also runs for a B past
	// rowsMaxB (up to rowsFewMaxB). Packing B reads and writes all of it
	// once per call, and a few 6-row panels read it about as many times
	// again: the CIFAR-10 model's dense layer (2304×64) at inference
	// batches of 2–23.
	rowsFewM = 24
	// rowsFewMaxB bounds B on that path (2 MiB): the rows of a product
	// under 6 rows run on one thread there, and a larger B is worth
	// packing for all the workers.
	rowsFewMaxB = 512 << 10
)

// sgemmRows runs C = A·B (no transposes, alpha 1, beta 0) for n a
// multiple of 64 on the strided 6×64 kernel (winoProduct, AVX-512 or
// AVX2), straight from A and B: nothing is packed. It pays when B is small
// enough to stay in L2 for every 6-row panel (rowsMaxB) and A has few rows
// (rowsMaxM), like a dense layer at inference: packing A and B there costs
// more than the product. Each element of C is summed by one call in k
// order; the rows
// past the last whole panel go through a zero-padded copy. That includes
// products of 2 to 5 rows (a dense layer at a small inference batch), which
// the packed path served 5–10× slower: it packs all of B on every call.
func sgemmRows(p *Pool, ws *GemmWorkspace, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	kr := ws.kernel()
	panels := m / imr
	_ = a[(m-1)*lda+k-1]
	_ = b[(k-1)*ldb+n-1]
	_ = c[(m-1)*ldc+n-1]
	tasks := panels * (n / inr)
	if tasks == 0 {
		// fewer than 6 rows: only the padded copy below
	} else if p.serial(tasks, 1) || float64(m)*float64(n)*float64(k) < serialMACs {
		var ar args
		rowsArgs(&ar, kr, a, b, c, k, lda, ldb, ldc, n)
		rowsTask(&ar, 0, 0, tasks)
	} else {
		ar := p.args()
		rowsArgs(ar, kr, a, b, c, k, lda, ldb, ldc, n)
		p.run(tasks, 1, ar, rowsTask)
	}
	if rem := m - panels*imr; rem > 0 {
		// the last rows through a 6-row copy (zeros below them)
		ws.rows = growF32(ws.rows, imr*(k+n))
		pa, pc := ws.rows[:imr*k], ws.rows[imr*k:imr*(k+n)]
		clear(pa[rem*k:])
		for i := range rem {
			copy(pa[i*k:(i+1)*k], a[(panels*imr+i)*lda:])
		}
		for f0 := 0; f0 < n; f0 += inr {
			winoProduct(kr, k, 1, &pa[0], k, &b[f0], ldb, &pc[f0], n)
		}
		for i := range rem {
			copy(c[(panels*imr+i)*ldc:(panels*imr+i)*ldc+n], pc[i*n:(i+1)*n])
		}
	}
}

func rowsArgs(ar *args, kr *gemmKernel, a, b, c []float32, k, lda, ldb, ldc, n int) {
	ar.kr = kr
	ar.s[0], ar.s[1], ar.s[2] = a, b, c
	ar.i[0], ar.i[1], ar.i[2], ar.i[3], ar.i[4] = k, lda, ldb, ldc, n/inr
}

// rowsTask computes tasks [lo, hi) of sgemmRows: task t is 6 rows by 64
// columns of C.
func rowsTask(ar *args, _, lo, hi int) {
	a, b, c := ar.s[0], ar.s[1], ar.s[2]
	k, lda, ldb, ldc, nb := ar.i[0], ar.i[1], ar.i[2], ar.i[3], ar.i[4]
	for t := lo; t < hi; t++ {
		r0, f0 := t/nb*imr, t%nb*inr
		winoProduct(ar.kr, k, 1, &a[r0*lda], lda, &b[f0], ldb, &c[r0*ldc+f0], ldc)
	}
}

// GemmWorkspace holds the packing buffers and job state of Sgemm. It grows
// on first use and is reused afterwards, so steady-state calls allocate
// nothing. A workspace must be used from one goroutine at a time. The zero
// value is ready to use and runs the default micro-kernel (see SetKernel).
type GemmWorkspace struct {
	kern  *gemmKernel
	packB []float32   // the shared packed B block
	rows  []float32   // sgemmRows' last, partial panel: 6 rows of A, then of C
	wk    []gemmLocal // per worker
	part  []float32   // split-k partial products
	job   gemmJob
}

// gemmLocal is one worker's scratch memory.
type gemmLocal struct {
	packA []float32
	packB []float32 // split-k only
	tile  []float32 // an mr×nr edge tile
	last  int       // key of the A block held in packA
}

// gemmJob describes the current Sgemm call to the workers.
type gemmJob struct {
	ws             *GemmWorkspace
	kr             *gemmKernel
	transA, transB bool
	m, n, k        int
	a, b, c        []float32
	lda, ldb, ldc  int
	alpha, beta    float32
	pc, kc, jc, nc int
	panelsA        int // mr-panels of A
	nIB, nSlices   int // A blocks, column slices per block
	slicePanels    int // nr-panels per slice
	gen            int // distinguishes (jc, pc) blocks in gemmLocal.last
	chunk, chunks  int // split-k
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

func growF32(s []float32, n int) []float32 {
	if len(s) < n {
		return make([]float32, n)
	}
	return s
}

func (ws *GemmWorkspace) grow(kr *gemmKernel, workers, kc, nc int, splitB bool) {
	ws.packB = growF32(ws.packB, kc*roundUp(nc, kr.nr))
	for len(ws.wk) < workers {
		ws.wk = append(ws.wk, gemmLocal{last: -1})
	}
	for w := 0; w < workers; w++ {
		l := &ws.wk[w]
		l.packA = growF32(l.packA, kr.mc*kr.kc)
		l.tile = growF32(l.tile, kr.mr*kr.nr)
		if splitB {
			l.packB = growF32(l.packB, kc*roundUp(nc, kr.nr))
		}
		l.last = -1
	}
}

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
	if m == 1 && !transB && (!transA || lda == 1) && ws.kern == nil {
		sgemv(p, ws, n, k, alpha, a, b, ldb, beta, c)
		return
	}
	if float64(m)*float64(n)*float64(k) < serialMACs {
		p = nil
	}
	kr := ws.kernel()
	if asmConvOK(kr) && !transA && !transB && alpha == 1 && beta == 0 && n%inr == 0 &&
		m <= rowsMaxM && (k*n <= rowsMaxB || m < rowsFewM && k*n <= rowsFewMaxB) {
		sgemmRows(p, ws, m, n, k, a, lda, b, ldb, c, ldc)
		return
	}
	sgemmPacked(p, ws, kr, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemmPacked is Sgemm on packed panels of A and B with micro-kernel kr
// (the general path).
func sgemmPacked(p *Pool, ws *GemmWorkspace, kr *gemmKernel, transA, transB bool, m, n, k int,
	alpha float32, a []float32, lda int, b []float32, ldb int,
	beta float32, c []float32, ldc int) {
	workers := p.Workers()
	j := &ws.job
	*j = gemmJob{ws: ws, kr: kr, transA: transA, transB: transB, m: m, n: n, k: k,
		a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc, alpha: alpha, beta: beta}
	defer func() { j.a, j.b, j.c = nil, nil, nil }()
	if m*n <= splitMaxMN && k >= splitMinK {
		sgemmSplitK(p, ws, j, workers)
		return
	}
	kcMax, ncMax := min(k, kr.kc), min(n, kr.nc)
	ws.grow(kr, workers, kcMax, ncMax, false)
	j.panelsA = (m + kr.mr - 1) / kr.mr
	mcPanels := kr.mc / kr.mr
	j.nIB = (j.panelsA + mcPanels - 1) / mcPanels
	if workers > 1 {
		j.nIB = min(j.panelsA, roundUp(j.nIB, workers))
	}
	for jc := 0; jc < n; jc += kr.nc {
		nc := min(kr.nc, n-jc)
		panels := (nc + kr.nr - 1) / kr.nr
		ns := 1
		if j.nIB < 2*workers && workers > 1 {
			ns = min(panels, (2*workers+j.nIB-1)/j.nIB)
		}
		j.slicePanels = (panels + ns - 1) / ns
		j.nSlices = (panels + j.slicePanels - 1) / j.slicePanels
		for pc := 0; pc < k; pc += kr.kc {
			kc := min(kr.kc, k-pc)
			packB(p, kr.nr, ws.packB, b, ldb, transB, pc, kc, jc, nc)
			j.pc, j.kc, j.jc, j.nc = pc, kc, jc, nc
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
}

func gemmTask(a *args, w, lo, hi int) {
	for t := lo; t < hi; t++ {
		a.g.task(w, t)
	}
}

// task computes one (A block, column slice) tile of the current block on
// worker w.
func (j *gemmJob) task(w, t int) {
	kr := j.kr
	ib, js := t/j.nSlices, t%j.nSlices
	p0 := ib * j.panelsA / j.nIB
	p1 := (ib + 1) * j.panelsA / j.nIB
	ic := p0 * kr.mr
	mc := min(p1*kr.mr, j.m) - ic
	l := &j.ws.wk[w]
	key := j.gen*j.nIB + ib
	if l.last != key {
		packA(kr.mr, l.packA, j.a, j.lda, j.transA, ic, mc, j.pc, j.kc)
		l.last = key
	}
	beta := j.beta
	if j.pc > 0 {
		beta = 1
	}
	j0 := js * j.slicePanels * kr.nr
	j1 := min(j.nc, j0+j.slicePanels*kr.nr)
	macroKernel(kr, j.kc, mc, j1-j0, l.packA, j.ws.packB[j0*j.kc:], j.alpha, beta,
		j.c[ic*j.ldc+j.jc+j0:], j.ldc, l.tile)
}

// macroKernel multiplies a packed mc×kc A block by a packed kc×nc B block
// into C (C = alpha·A·B + beta·C), A panel by A panel.
func macroKernel(kr *gemmKernel, kc, mc, nc int, pa, pb []float32, alpha, beta float32, c []float32, ldc int, tile []float32) {
	mr, nr := kr.mr, kr.nr
	fast := alpha == 1 && (beta == 0 || beta == 1)
	add := beta == 1
	for ir := 0; ir < mc; ir += mr {
		mb := min(mr, mc-ir)
		ap := pa[ir*kc : ir*kc+kc*mr]
		for jr := 0; jr < nc; jr += nr {
			nb := min(nr, nc-jr)
			bp := pb[jr*kc : jr*kc+kc*nr]
			off := ir*ldc + jr
			if fast && mb == mr && nb == nr {
				kr.fn(kc, ap, bp, c[off:], ldc, add)
				continue
			}
			kr.fn(kc, ap, bp, tile, nr, false)
			storeTile(tile, nr, mb, nb, alpha, beta, c[off:], ldc)
		}
	}
}

// storeTile writes C[i][j] = alpha·t[i][j] + beta·C[i][j] for the mb×nb
// valid part of a tile with row stride ldt; beta == 0 overwrites.
func storeTile(t []float32, ldt, mb, nb int, alpha, beta float32, c []float32, ldc int) {
	for i := 0; i < mb; i++ {
		row := c[i*ldc : i*ldc+nb]
		r := t[i*ldt : i*ldt+nb]
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

// sgemmSplitK computes a small C over a long reduction: k is cut into
// chunks (by shape alone, so the result does not depend on the number of
// workers), each chunk's product goes to its own partial buffer on one
// worker, and the partials are summed in chunk order.
func sgemmSplitK(p *Pool, ws *GemmWorkspace, j *gemmJob, workers int) {
	kr := j.kr
	chunk := max(splitChunk, roundUp((j.k+splitMaxChunks-1)/splitMaxChunks, kr.kc))
	j.chunk = chunk
	j.chunks = (j.k + chunk - 1) / chunk
	mn := j.m * j.n
	ws.part = growF32(ws.part, j.chunks*mn)
	ws.grow(kr, workers, min(j.k, kr.kc), min(j.n, kr.nc), true)
	if p.serial(j.chunks, 1) {
		for t := 0; t < j.chunks; t++ {
			j.splitTask(0, t)
		}
	} else {
		a := p.args()
		a.g = j
		p.run(j.chunks, 1, a, splitTask)
	}
	// reduce: C = alpha·Σ_t part[t] + beta·C, rows in parallel.
	if p.serial(j.m, max(1, 4096/j.n)) {
		j.reduceRows(0, j.m)
		return
	}
	a := p.args()
	a.g = j
	p.run(j.m, max(1, 4096/j.n), a, reduceTask)
}

func splitTask(a *args, w, lo, hi int) {
	for t := lo; t < hi; t++ {
		a.g.splitTask(w, t)
	}
}

func reduceTask(a *args, _, lo, hi int) { a.g.reduceRows(lo, hi) }

// splitTask computes chunk t's partial product serially on worker w.
func (j *gemmJob) splitTask(w, t int) {
	kr := j.kr
	l := &j.ws.wk[w]
	p0 := t * j.chunk
	kLen := min(j.chunk, j.k-p0)
	mn := j.m * j.n
	dst := j.ws.part[t*mn : (t+1)*mn]
	for jc := 0; jc < j.n; jc += kr.nc {
		nc := min(kr.nc, j.n-jc)
		for pc := p0; pc < p0+kLen; pc += kr.kc {
			kc := min(kr.kc, p0+kLen-pc)
			packB(nil, kr.nr, l.packB, j.b, j.ldb, j.transB, pc, kc, jc, nc)
			var beta float32
			if pc > p0 {
				beta = 1
			}
			for ic := 0; ic < j.m; ic += kr.mc {
				mc := min(kr.mc, j.m-ic)
				packA(kr.mr, l.packA, j.a, j.lda, j.transA, ic, mc, pc, kc)
				macroKernel(kr, kc, mc, nc, l.packA, l.packB, 1, beta, dst[ic*j.n+jc:], j.n, l.tile)
			}
		}
	}
}

// reduceRows sums the partials of rows lo..hi-1 into C.
func (j *gemmJob) reduceRows(lo, hi int) {
	n, mn := j.n, j.m*j.n
	part := j.ws.part
	for i := lo; i < hi; i++ {
		row := j.c[i*j.ldc : i*j.ldc+n]
		acc := part[i*n : i*n+n]
		switch {
		case j.beta == 0 && j.alpha == 1:
			copy(row, acc)
		case j.beta == 0:
			for x, v := range acc {
				row[x] = j.alpha * v
			}
		}
		for t := 1; t < j.chunks; t++ {
			if j.beta == 0 && j.alpha == 1 {
				addTo(row, part[t*mn+i*n:t*mn+i*n+n])
			} else {
				addTo(acc, part[t*mn+i*n:t*mn+i*n+n])
			}
		}
		if j.beta != 0 || j.alpha != 1 {
			for x, v := range acc {
				if j.beta == 0 {
					row[x] = j.alpha * v
				} else {
					row[x] = j.alpha*v + j.beta*row[x]
				}
			}
		}
	}
}

func addTo(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}

// packA packs the mc×kc block of op(A) starting at (ic, pc) into panels of
// mr rows: dst[panel·kc·mr + p·mr + r] = op(A)[ic+panel·mr+r][pc+p], with
// rows past mc zero.
func packA(mr int, dst, a []float32, lda int, transA bool, ic, mc, pc, kc int) {
	for ir := 0; ir < mc; ir += mr {
		mb := min(mr, mc-ir)
		d := dst[ir*kc : ir*kc+kc*mr]
		if transA {
			// op(A)[i][p] = a[p·lda + i]: rows of the panel are contiguous.
			for p := 0; p < kc; p++ {
				src := a[(pc+p)*lda+ic+ir:]
				dp := d[p*mr : p*mr+mr]
				copy(dp, src[:mb])
				if mb < mr {
					clear(dp[mb:])
				}
			}
			continue
		}
		if mb < mr {
			clear(d)
		}
		switch {
		case mb == 12 && mr == 12:
			packA12(d, a, lda, (ic+ir)*lda+pc, kc)
		case mb == 6 && mr == 6:
			packA6(d, a, lda, (ic+ir)*lda+pc, kc)
		default:
			for r := 0; r < mb; r++ {
				src := a[(ic+ir+r)*lda+pc : (ic+ir+r)*lda+pc+kc]
				for p, v := range src {
					d[p*mr+r] = v
				}
			}
		}
	}
}

// packA12 interleaves 12 rows of A (kc values each, starting at a[off],
// rows lda apart) into d: d[p·12+r] = row r's value p.
func packA12(d, a []float32, lda, off, kc int) {
	r0, r1, r2, r3 := a[off:off+kc], a[off+lda:off+lda+kc], a[off+2*lda:off+2*lda+kc], a[off+3*lda:off+3*lda+kc]
	r4, r5, r6, r7 := a[off+4*lda:off+4*lda+kc], a[off+5*lda:off+5*lda+kc], a[off+6*lda:off+6*lda+kc], a[off+7*lda:off+7*lda+kc]
	r8, r9, r10, r11 := a[off+8*lda:off+8*lda+kc], a[off+9*lda:off+9*lda+kc], a[off+10*lda:off+10*lda+kc], a[off+11*lda:off+11*lda+kc]
	d = d[:kc*12]
	for p := packA12Vec(d, a, lda, off, kc); p < kc; p++ {
		dp := d[p*12 : p*12+12 : p*12+12]
		dp[0], dp[1], dp[2], dp[3] = r0[p], r1[p], r2[p], r3[p]
		dp[4], dp[5], dp[6], dp[7] = r4[p], r5[p], r6[p], r7[p]
		dp[8], dp[9], dp[10], dp[11] = r8[p], r9[p], r10[p], r11[p]
	}
}

// packA6 is packA12 for 6 rows.
func packA6(d, a []float32, lda, off, kc int) {
	r0, r1, r2 := a[off:off+kc], a[off+lda:off+lda+kc], a[off+2*lda:off+2*lda+kc]
	r3, r4, r5 := a[off+3*lda:off+3*lda+kc], a[off+4*lda:off+4*lda+kc], a[off+5*lda:off+5*lda+kc]
	d = d[:kc*6]
	for p := 0; p < kc; p++ {
		dp := d[p*6 : p*6+6 : p*6+6]
		dp[0], dp[1], dp[2] = r0[p], r1[p], r2[p]
		dp[3], dp[4], dp[5] = r3[p], r4[p], r5[p]
	}
}

// packB packs the kc×nc block of op(B) starting at (pc, jc) into panels of
// nr columns: dst[panel·kc·nr + p·nr + c] = op(B)[pc+p][jc+panel·nr+c], with
// columns past nc zero. Large blocks are packed in parallel.
func packB(pool *Pool, nr int, dst, b []float32, ldb int, transB bool, pc, kc, jc, nc int) {
	panels := (nc + nr - 1) / nr
	if kc*nc < 1<<15 || pool.serial(panels, 1) {
		packBRange(nr, dst, b, ldb, transB, pc, kc, jc, nc, 0, panels)
		return
	}
	a := pool.args()
	a.s[0], a.s[1] = dst, b
	a.i[0], a.i[1], a.i[2], a.i[3], a.i[4], a.i[6] = ldb, pc, kc, jc, nc, nr
	if transB {
		a.i[5] = 1
	}
	pool.run(panels, 0, a, packBTask)
}

func packBTask(a *args, _, lo, hi int) {
	packBRange(a.i[6], a.s[0], a.s[1], a.i[0], a.i[5] == 1, a.i[1], a.i[2], a.i[3], a.i[4], lo, hi)
}

func packBRange(nr int, dst, b []float32, ldb int, transB bool, pc, kc, jc, nc, lo, hi int) {
	if !transB {
		// row by row of B, so that its reads are sequential (panel by
		// panel, they step down B a row at a time, which the hardware
		// prefetchers do not follow: a cache miss per chunk)
		for p := 0; p < kc; p++ {
			src := b[(pc+p)*ldb+jc : (pc+p)*ldb+jc+nc]
			for jp := lo; jp < hi; jp++ {
				jr := jp * nr
				dp := dst[jr*kc+p*nr : jr*kc+p*nr+nr]
				if n := copy(dp, src[jr:min(jr+nr, nc)]); n < nr {
					clear(dp[n:])
				}
			}
		}
		return
	}
	for jp := lo; jp < hi; jp++ {
		jr := jp * nr
		nb := min(nr, nc-jr)
		d := dst[jr*kc : jr*kc+kc*nr]
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

// sgemv computes the m = 1 product c = alpha·a·B + beta·c (a holds k
// values, B is k×n with leading dimension ldb) straight from the rows of B,
// without packing: 64 columns at a time with the vector loop where there is
// one, the rest in Go. Column blocks run in parallel on p. Each element is
// summed in order of k, so the result does not depend on the workers.
//
// A long product over few columns (k ≥ sgemvSplitMinK, n ≤ 64, like a
// dense layer at batch 1) is summed instead in sgemvSplitK chunks of k,
// in parallel, whose partial sums are then added in order: the same bits
// with any number of workers, and each worker reads only its part of B.
func sgemv(p *Pool, ws *GemmWorkspace, n, k int, alpha float32, a, b []float32, ldb int, beta float32, c []float32) {
	blocks := (n + 63) / 64
	if k >= sgemvSplitMinK && blocks == 1 {
		sgemvSplit(p, ws, n, k, alpha, a, b, ldb, beta, c)
		return
	}
	if float64(n)*float64(k) < serialMACs {
		p = nil
	}
	if p.serial(blocks, 1) {
		sgemvCols(0, blocks, n, alpha, a[:k], b, ldb, beta, c)
		return
	}
	ar := p.args()
	ar.s[0], ar.s[1], ar.s[2] = a[:k], b, c
	ar.i[0], ar.i[1] = n, ldb
	ar.f[0], ar.f[1] = alpha, beta
	p.run(blocks, 0, ar, sgemvTask)
}

func sgemvTask(ar *args, _, lo, hi int) {
	sgemvCols(lo, hi, ar.i[0], ar.f[0], ar.s[0], ar.s[1], ar.i[1], ar.f[1], ar.s[2])
}

// sgemvSplitMinK and sgemvSplitK: sgemv over at most 64 columns splits k
// into sgemvSplitK chunks from a depth of sgemvSplitMinK on.
const (
	sgemvSplitMinK = 1024
	sgemvSplitK    = 2
)

// sgemvSplit is sgemv for one block of columns over a long k: the
// sgemvSplitK chunks of k (cut by shape alone) in parallel into partial
// sums, then c = alpha·Σ partials (in chunk order) + beta·c.
func sgemvSplit(p *Pool, ws *GemmWorkspace, n, k int, alpha float32, a, b []float32, ldb int, beta float32, c []float32) {
	ws.part = growF32(ws.part, sgemvSplitK*n)
	part := ws.part[:sgemvSplitK*n]
	if p.serial(sgemvSplitK, 1) {
		for t := 0; t < sgemvSplitK; t++ {
			sgemvChunk(t, n, k, a, b, ldb, part)
		}
	} else {
		ar := p.args()
		ar.s[0], ar.s[1], ar.s[2] = a[:k], b, part
		ar.i[0], ar.i[1] = n, ldb
		p.run(sgemvSplitK, 1, ar, sgemvSplitTask)
	}
	for j := 0; j < n; j++ {
		v := part[j]
		for t := 1; t < sgemvSplitK; t++ {
			v += part[t*n+j]
		}
		switch beta {
		case 0:
			c[j] = alpha * v
		case 1:
			c[j] += alpha * v
		default:
			c[j] = alpha*v + beta*c[j]
		}
	}
}

func sgemvSplitTask(ar *args, _, lo, hi int) {
	for t := lo; t < hi; t++ {
		sgemvChunk(t, ar.i[0], len(ar.s[0]), ar.s[0], ar.s[1], ar.i[1], ar.s[2])
	}
}

// sgemvChunk sums chunk t of k of sgemvSplit into part[t·n:(t+1)·n].
func sgemvChunk(t, n, k int, a, b []float32, ldb int, part []float32) {
	lo, hi := t*k/sgemvSplitK, (t+1)*k/sgemvSplitK
	sgemvCols(0, 1, n, 1, a[lo:hi], b[lo*ldb:], ldb, 0, part[t*n:(t+1)*n])
}

// sgemvCols computes the 64-column blocks lo..hi-1 of sgemv.
func sgemvCols(lo, hi, n int, alpha float32, a, b []float32, ldb int, beta float32, c []float32) {
	var acc [64]float32
	for blk := lo; blk < hi; blk++ {
		j := blk * 64
		w := min(64, n-j)
		t := acc[:w]
		if w < 64 || !gemv64(a, b[j:], ldb, &acc) {
			clear(t)
			for p, av := range a {
				row := b[p*ldb+j : p*ldb+j+w]
				for q, bv := range row {
					t[q] += av * bv
				}
			}
		}
		storeTile(t, w, 1, w, alpha, beta, c[j:], n)
	}
}

// packedBLen is the length of B (k×n, n at most kr.nc) packed whole by
// packBWhole.
func packedBLen(kr *gemmKernel, n, k int) int { return k * roundUp(n, kr.nr) }

// packBWhole packs all of B (k×n, row-major, leading dimension ldb) for
// sgemmPackedB: the kc-deep blocks one after another, block pc starting at
// pc·roundUp(n, nr). n must be at most kr.nc.
func packBWhole(kr *gemmKernel, dst, b []float32, ldb, n, k int) {
	nn := roundUp(n, kr.nr)
	for pc := 0; pc < k; pc += kr.kc {
		kc := min(kr.kc, k-pc)
		packBRange(kr.nr, dst[pc*nn:], b, ldb, false, pc, kc, 0, n, 0, nn/kr.nr)
	}
}

// sgemmPackedB computes C = A·B + beta·C serially, with A (m×k, leading
// dimension lda, not transposed) packed here and B already packed by
// packBWhole. It sums exactly as Sgemm does, so results match it bit for
// bit. ws supplies worker 0's packing buffers.
func sgemmPackedB(ws *GemmWorkspace, kr *gemmKernel, m, n, k int, a []float32, lda int, pb []float32, beta float32, c []float32, ldc int) {
	ws.grow(kr, 1, 0, 0, false)
	l := &ws.wk[0]
	nn := roundUp(n, kr.nr)
	for pc := 0; pc < k; pc += kr.kc {
		kc := min(kr.kc, k-pc)
		bt := beta
		if pc > 0 {
			bt = 1
		}
		for ic := 0; ic < m; ic += kr.mc {
			mc := min(kr.mc, m-ic)
			packA(kr.mr, l.packA, a, lda, false, ic, mc, pc, kc)
			macroKernel(kr, kc, mc, n, l.packA, pb[pc*nn:], 1, bt, c[ic*ldc:], ldc, l.tile)
		}
	}
}
