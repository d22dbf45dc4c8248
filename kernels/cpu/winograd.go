package cpu

import "unsafe"

// Winograd forward convolution (Lavin and Gray, "Fast Algorithms for
// Convolutional Neural Networks", 2016) for 3×3 filters with stride 1.
// Each m×m block of output pixels (a tile) comes from the (m+2)×(m+2)
// block of input under it:
//
//	Y = Aᵀ·[ Σ_c (G·g_cf·Gᵀ) ⊙ (Bᵀ·d_c·B) ]·A
//
// F(2×2, 3×3) takes 16 multiply-adds per tile, channel and filter instead
// of 36 (2.25× fewer); F(4×4, 3×3) takes 36 instead of 144 (4× fewer),
// with larger transforms and tiles that waste more past the output's
// edge, so at inference winoTile picks the one that costs less for the
// shape (an 11×11 output: 9 tiles of 36 points against 36 tiles of 16,
// 1.78× fewer multiply-adds); training takes F(2×2, 3×3) (see below).
// The element-wise products over the channels are one
// GEMM per point ξ of the transform domain, (tiles × C)·(C × F), which a
// 6×64 product kernel (winoGemm, the implicit rows kernel's twin for
// evenly spaced rows) runs straight from the transformed tiles.
//
// F(2×2, 3×3)'s transforms only add, subtract and halve, so its result is
// as accurate as a float32 direct convolution to within a few units in
// the last place of the sums' size (exact where every partial sum is).
// F(4×4, 3×3)'s use the points 0, ±1, ±2 (coefficients up to 8 and 1/24),
// which costs some accuracy: measured against float64 on the conformance
// suite's exact-arithmetic case, its worst error is 1.4e-7 of the sum of
// the terms' absolute values (the suite allows 1e-6 there; 2.4e-4 on
// random inputs).
//
// Training needs more than accuracy: exact ties. Where a window of the
// input is all zeros (an image's background after a ReLU), the direct
// convolution gives exactly 0, and windows in a uniform region (the
// background after a bias) give equal outputs; a ReLU's mask (x > 0) and
// a max pooling's argmax then pick what the float64 reference picks.
// F(2×2, 3×3) keeps both: a transformed point reads only inputs that
// every output it feeds reads (so a zero window gives exactly 0), and a
// tile in a uniform region transforms exactly. (It does not make any two
// equal windows elsewhere give equal bits, as the direct convolution
// does: each position of a tile is summed differently. Real data does
// not tie there.) F(4×4, 3×3)
// spreads every input over all 36 points, so a zero window under a tile
// that also covers the digit comes out as ±1e-8 or so: a ReLU passes
// half of those, the pooling picks them, and the bias gradient gains
// terms the reference does not have. Adam's first steps, which move
// every weight by about the learning rate whatever its gradient's size,
// made that a loss difference of 1.7e-4 at step 2 and 1.6e-3 at step 6 in
// the step-by-step check against PyTorch (bench/peers/stepcheck), against
// at most 1.4e-6 over 10 steps with F(2×2, 3×3). So F(4×4, 3×3) serves only inference
// (ConvShape.Inference) and backward-data, where nothing reads the ties
// and a ReLU or pooling of a near-tie is as accurate as the sums.
//
// Work is cut into chunks of whole tile rows (m output rows of one
// image), sized so that a chunk's transformed input V and products M stay
// in L2; each worker transforms, multiplies and transforms back its own
// chunks, and applies the epilogue (bias, ReLU and a 2×2 max pooling)
// while the output is in cache. Every output element is computed the same
// way whatever the chunking and the number of workers.

// winoChunkBytes bounds a chunk's V and M ((m+2)² planes of tiles × C
// and tiles × F floats each).
const winoChunkBytes = 384 << 10

// winograd reports whether the forward pass runs as Winograd (F(2×2, 3×3)
// or F(4×4, 3×3), see winoTileFor) with micro-kernel kr: a 3×3 filter,
// stride 1, channels in blocks of 16 and filters in blocks of 64, where kr
// has Winograd kernels (AVX-512 and AVX2), and only where the chosen
// tile's weighted points cost no more than the direct convolution's
// multiply-adds (winoCosts). The reference CNN's 11×11
// output (324 points against 1089 multiply-adds) ran 1.6× faster as
// Winograd than on the implicit rows kernel: BenchmarkWinograd/batch64,
// winograd-kept against implicit, 2.1 ms and 3.5 ms, two threads of an
// AVX2-only Zen 3; a 1×1 output (16 points against 9) stays direct there.
func (s ConvShape) winograd(kr *gemmKernel) bool {
	f2, f4, _ := winoKernels(kr)
	if !s.winoShape() || !f2 || !f4 {
		return false
	}
	c := winoCostsFor(kr)
	return s.winoCost(c, s.winoTile(c, 0)) <= 9*s.N*s.OutH*s.OutW*c.direct
}

// winoShape reports whether s has the shape the Winograd passes take: a
// 3×3 filter, stride 1, channels in blocks of 16, filters in blocks of
// 64, a non-empty output.
func (s ConvShape) winoShape() bool {
	return s.KH == 3 && s.KW == 3 && s.StrideH == 1 && s.StrideW == 1 &&
		s.C%16 == 0 && s.F%inr == 0 && s.OutH > 0 && s.OutW > 0
}

// winogradGrad reports whether the filter gradient can run as Winograd
// F(3×3, 2×2) with micro-kernel kr (AVX-512 or AVX2); the caller also
// checks the length of its sums (winoGradMinRows).
func (s ConvShape) winogradGrad(kr *gemmKernel) bool {
	_, _, grad := winoKernels(kr)
	return grad && s.winoShape()
}

// winoCosts weighs a micro-kernel's Winograd forward passes against each
// other and against the direct convolution: p2 and p4 are the costs of a
// tile's transform point (for one channel and filter) in F(2×2, 3×3) and
// F(4×4, 3×3), whose transforms cost more per point, and direct that of a
// multiply-add of the direct convolution. The tiles of the whole batch
// count, rounded up to the product kernel's panels of 6 tiles (at batch 1
// a 3×3 output's one F(4×4, 3×3) tile is computed as 6), and the cheaper
// tile must cost no more than the direct convolution. winoCostsFor gives
// the measured ones.
type winoCosts struct{ p2, p4, direct int }

// point returns the cost of a transform point of F(m×m, 3×3).
func (c winoCosts) point(m int) int {
	if m == 4 {
		return c.p4 * 36
	}
	return c.p2 * 16
}

// winoCost returns the cost of s's forward pass as F(m×m, 3×3) with costs
// c (see winoCosts).
func (s ConvShape) winoCost(c winoCosts, m int) int {
	th, tw := s.winoTiles(m)
	return roundUp(s.N*th*tw, imr) * c.point(m)
}

// winoTileFor is winoTile with micro-kernel kr's costs (winoCostsFor).
func (s ConvShape) winoTileFor(kr *gemmKernel, force int) int {
	return s.winoTile(winoCostsFor(kr), force)
}

// winoTile returns the output tile size of s's forward pass: 4 (F(4×4,
// 3×3), 36 transform points per tile) or 2 (F(2×2, 3×3), 16 points per
// tile), whichever costs less with costs c: on AVX-512 and AVX2 a point
// of F(4×4, 3×3) counts 1.2 of F(2×2, 3×3)'s (see winoCostsFor; the
// reference CNN's 11×11 output at batch 32 ran 1.67× faster as F(4×4,
// 3×3) on AVX-512, 13×13 1.18×, 15×15 1.59×). That choice is for inference
// (s.Inference); a forward pass that training's backward pass follows
// always takes F(2×2, 3×3), which keeps exact ties (see the top of this
// file). force, when not 0, overrides the choice (tests compare the two).
func (s ConvShape) winoTile(c winoCosts, force int) int {
	if force != 0 {
		return force
	}
	if !s.Inference {
		return 2
	}
	if s.winoCost(c, 4) < s.winoCost(c, 2) {
		return 4
	}
	return 2
}

// winoTiles returns the tile rows and columns of s's output for m×m tiles.
func (s ConvShape) winoTiles(m int) (th, tw int) { return (s.OutH + m - 1) / m, (s.OutW + m - 1) / m }

// winoForward runs the forward pass of j (x, w, y, bias and ReLU set) as
// Winograd F(m×m, 3×3), m from winoTile, with the pooling of e fused when
// its windows lie within the tile rows (2 rows high at most, stride 2
// vertically), else a pass of its own after.
func (j *convJob) winoForward(p *Pool, s ConvShape, e ConvEpilogue) {
	s.checkLens(j.x, j.w, j.y)
	cw := j.cw
	m := s.winoTileFor(j.kern, cw.winoM)
	pts := (m + 2) * (m + 2)
	j.tm = m
	th, tw := s.winoTiles(m)
	units := s.N * th
	workers := p.Workers()
	// chunks of per tile rows: per·tw tiles, a whole number of the
	// product kernel's 6-row panels where possible (the rows past the
	// last tile of a panel are computed and thrown away)
	step := imr / gcd(tw, imr)
	per := max(1, winoChunkBytes/(pts*4*(s.C+s.F)*tw))
	if per >= step {
		per -= per % step
	}
	chunks := max((units+per-1)/per, min(units, workers))
	per = (units + chunks - 1) / chunks
	if r := roundUp(per, step); per >= step && (units+r-1)/r >= min(units, workers) {
		per = r // (not when that would leave a worker idle)
	}
	j.chunk = per
	cw.growWino(workers, roundUp(per*tw, imr), s, pts)
	for w := 0; w < workers; w++ {
		cw.wk[w].dump = growF32(cw.wk[w].dump, s.F)
	}
	if len(cw.zero) < s.C {
		cw.zero = make([]float32, s.C)
	}
	if ent := cw.winoEntry(s, j.w, e.FilterID, m); ent != nil {
		j.wu = ent.u // transformed in an earlier call
	} else {
		if e.FilterID == 0 {
			cw.wuTmp = growF32(cw.wuTmp, pts*s.winoUStride())
			j.wu = cw.wuTmp
		} else {
			ent = &cw.wu[cw.wuNext]
			cw.wuNext = (cw.wuNext + 1) % winoCacheLen
			*ent = winoFilterEntry{id: e.FilterID, w: &j.w[0], c: s.C, f: s.F, m: m, u: growF32(ent.u, pts*s.winoUStride())}
			j.wu = ent.u
		}
		j.sub = (s.C*s.F/16 + workers - 1) / workers
		j.runChunks(p, workers, (*convJob).winoFilterChunk)
	}
	fuse := e.Pool.N > 0 && e.Pool.StrideH == 2 && e.Pool.KH <= 2 && e.Pool.OutH > 0
	if fuse {
		j.pool, j.py, j.parg = e.Pool, e.PoolY, e.PoolArg
		// at inference, an F(4×4, 3×3) tile holds whole 2×2 windows:
		// pool them in registers, storing nothing else
		j.poolReg = m == 4 && e.ScratchY && e.NoArg && j.relu && s.pools2x2(e.Pool)
		if !j.poolReg {
			j.scratch(workers, e, m*per*s.OutW)
		}
	}
	y := j.y
	j.runChunks(p, (units+per-1)/per, (*convJob).winoChunk)
	j.clear()
	if e.Pool.N > 0 && !fuse {
		MaxPool2DForward(p, e.Pool, y, e.PoolY, e.PoolArg)
	}
}

// winoCacheLen is how many transformed filters a Workspace keeps (one per
// Winograd layer of a model, for inference with fixed weights).
const winoCacheLen = 4

// winoFilterEntry is a transformed filter: u ((m+2)² planes winoUStride
// apart) is the F(m×m, 3×3) transform of the C×F filter at w whose values
// FilterID id identified (0: none, never reused).
type winoFilterEntry struct {
	id      uint64
	w       *float32
	c, f, m int
	u       []float32
}

// winoEntry returns the cached F(m×m, 3×3) transform of w for shape s
// when the caller identified w's values with the id it was made from,
// else nil.
func (cw *convWork) winoEntry(s ConvShape, w []float32, id uint64, m int) *winoFilterEntry {
	if id == 0 {
		return nil
	}
	for i := range cw.wu {
		if e := &cw.wu[i]; e.id == id && e.w == &w[0] && e.c == s.C && e.f == s.F && e.m == m {
			return e
		}
	}
	return nil
}

// winoTileStride is the distance between tiles in V (n = C) and M (n =
// F): their pts planes of n floats and 16 more, so that the rows one
// product pass reads (and writes), a tile apart, do not all fall in the
// same sets of the L1 cache.
func winoTileStride(n, pts int) int { return pts*n + 16 }

// winoUStride is the distance between the planes of the transformed
// filter: C·F floats and 16 more, so that the stores of one block do not
// all fall in one set of the L1 cache.
func (s ConvShape) winoUStride() int { return s.C*s.F + 16 }

// winoFilterChunk transforms the filter's 16-column blocks [t·sub,
// (t+1)·sub).
func (j *convJob) winoFilterChunk(_, t int) {
	s := j.s
	n16 := s.C * s.F / 16
	lo, hi := min(t*j.sub, n16), min((t+1)*j.sub, n16)
	if j.tm == 4 {
		winoFilter43(j.kern, j.w, s.C*s.F, j.wu, s.winoUStride(), lo, hi)
		return
	}
	winoFilter(j.kern, j.w, s.C*s.F, j.wu, s.winoUStride(), lo, hi)
}

// growWino sizes the workers' transformed tiles (V and M, or the filter
// gradient's V and D) for the given number of tiles of pts points.
func (cw *convWork) growWino(workers, tiles int, s ConvShape, pts int) {
	for len(cw.wk) < workers {
		cw.wk = append(cw.wk, convLocal{})
	}
	for w := 0; w < workers; w++ {
		l := &cw.wk[w]
		l.wv = growF32(l.wv, tiles*winoTileStride(s.C, pts))
		l.wm = growF32(l.wm, tiles*winoTileStride(s.F, pts))
		if l.wt == nil {
			l.wt = alignedF32(36 * 16)
		}
	}
}

// alignedF32 returns n floats starting on a 64-byte boundary (a cache
// line), so that the transforms' 64-byte loads and stores of it never
// straddle two lines.
func alignedF32(n int) []float32 {
	buf := make([]float32, n+15)
	off := int((64 - uintptr(unsafe.Pointer(&buf[0]))%64) % 64 / 4)
	return buf[off : off+n : off+n]
}

// blockPtrs sets p (len m·m) to the first channel of pixels (r0+a, c0+b),
// a, b < m, of image n in buf, an NHWC tensor of rows×cols pixels of ch
// floats whose pixel q is buf's pixel q−off; pixels past the bottom or
// right edge get outside instead.
func blockPtrs(p []*float32, m int, buf []float32, off, n, rows, cols, ch, r0, c0 int, outside *float32) {
	for a := range m {
		for b := range m {
			if r, c := r0+a, c0+b; r < rows && c < cols {
				p[m*a+b] = &buf[((n*rows+r)*cols+c-off)*ch]
			} else {
				p[m*a+b] = outside
			}
		}
	}
}

// winoTileIn sets d (len (m+2)²) to the input pixels (their first
// channel) of the (m+2)×(m+2) tile under output tile (tr, tc) of image n,
// m×m output pixels a tile: the zero row where the tile lies outside the
// image.
func (j *convJob) winoTileIn(d []*float32, m, n, tr, tc int) {
	s := j.s
	k := m + 2
	ih0, iw0 := m*tr-s.PadTop, m*tc-s.PadLeft
	_ = d[k*k-1]
	for a := range k {
		ih := ih0 + a
		if uint(ih) >= uint(s.H) {
			for b := range k {
				d[k*a+b] = &j.cw.zero[0]
			}
			continue
		}
		row := (n*s.H + ih) * s.W
		for b := range k {
			if iw := iw0 + b; uint(iw) < uint(s.W) {
				d[k*a+b] = &j.x[(row+iw)*s.C]
			} else {
				d[k*a+b] = &j.cw.zero[0]
			}
		}
	}
}

// winoChunk computes the output tile rows [t·chunk, (t+1)·chunk) (over
// the batch) on worker w.
func (j *convJob) winoChunk(w, t int) {
	s := j.s
	l := &j.cw.wk[w]
	th, tw := s.winoTiles(j.tm)
	lo := t * j.chunk
	hi := min(lo+j.chunk, s.N*th)
	pts := (j.tm + 2) * (j.tm + 2)
	tiles := roundUp((hi-lo)*tw, imr)
	v, m := l.wv[:tiles*winoTileStride(s.C, pts)], l.wm[:tiles*winoTileStride(s.F, pts)]
	j.winoIn(l, lo, hi, v)
	j.winoProducts(v, m, tiles, 0, pts)
	j.winoOut(w, lo, hi, m)
}

// winoIn transforms the input tiles of tile rows [lo, hi) into v, tile
// after tile (V[tile][ξ][c]), with worker l's scratch memory.
func (j *convJob) winoIn(l *convLocal, lo, hi int, v []float32) {
	s := j.s
	m := j.tm
	pts := (m + 2) * (m + 2)
	th, tw := s.winoTiles(m)
	vts := winoTileStride(s.C, pts)
	var d [36]*float32
	for u := lo; u < hi; u++ {
		n, tr := u/th, u%th
		for tc := 0; tc < tw; tc++ {
			j.winoTileIn(d[:pts], m, n, tr, tc)
			vp := &v[((u-lo)*tw+tc)*vts]
			if m == 4 {
				winoInput43(j.kern, &d, s.C/16, vp, s.C, l.wt)
			} else {
				winoInput(j.kern, (*[16]*float32)(d[:16]), s.C/16, vp, s.C)
			}
		}
	}
}

// winoProducts computes the products of points [xi0, xi1) of tiles
// transformed tiles (a multiple of 6) of v into m (M[tile][ξ][f]), 6
// tiles × 64 filters at a time; the rows past the tiles in use are
// computed from stale data and never read.
func (j *convJob) winoProducts(v, m []float32, tiles, xi0, xi1 int) {
	s := j.s
	pts := (j.tm + 2) * (j.tm + 2)
	vts, mts := winoTileStride(s.C, pts), winoTileStride(s.F, pts)
	_, _ = v[tiles*vts-1], m[tiles*mts-1]
	ust := s.winoUStride()
	_ = j.wu[pts*ust-1]
	for xi := xi0; xi < xi1; xi++ {
		for f0 := 0; f0 < s.F; f0 += inr {
			winoProduct(j.kern, s.C, tiles/imr, &v[xi*s.C], vts, &j.wu[xi*ust+f0], s.F, &m[xi*s.F+f0], mts)
		}
	}
}

// winoOut transforms the products m of tile rows [lo, hi) back into
// output pixels and applies the epilogue, on worker w; pixels past the
// output's bottom or right edge go to the dump row.
func (j *convJob) winoOut(w, lo, hi int, mm []float32) {
	s := j.s
	l := &j.cw.wk[w]
	m := j.tm
	pts := (m + 2) * (m + 2)
	th, tw := s.winoTiles(m)
	mts := winoTileStride(s.F, pts)
	if j.poolReg {
		j.winoOutPooled(l, lo, hi, mm)
		return
	}
	yb, y0 := j.y, 0 // y's pixel p is yb's pixel p-y0
	if j.ys {
		n, tr := lo/th, lo%th
		yb, y0 = l.ysc, (n*s.OutH+m*tr)*s.OutW
	}
	var y [16]*float32
	for u := lo; u < hi; u++ {
		n, tr := u/th, u%th
		for tc := 0; tc < tw; tc++ {
			blockPtrs(y[:m*m], m, yb, y0, n, s.OutH, s.OutW, s.F, m*tr, m*tc, &l.dump[0])
			mp := &mm[((u-lo)*tw+tc)*mts]
			if m == 4 {
				winoOutput43(j.kern, mp, s.F, s.F/16, &y, j.bias, j.relu, l.wt)
			} else {
				winoOutput(j.kern, mp, s.F, s.F/16, (*[4]*float32)(y[:4]), j.bias, j.relu)
			}
		}
		if j.py != nil {
			// the pooling rows whose windows lie in this tile row
			r0, r1 := tr*m/2, min((tr+1)*m/2, j.pool.OutH)
			if r0 < r1 {
				base := n * j.pool.OutH
				maxPoolRowsAt(j.pool, yb, y0*s.F, j.py, j.parg, j.argRow(w), base+r0, base+r1)
			}
		}
	}
}

// winoOutPooled is winoOut for F(4×4, 3×3) tiles whose 2×2 pooling
// windows are pooled in registers (convJob.poolReg): each tile's four
// pooled pixels go to PoolY, those past its edge to the dump row.
func (j *convJob) winoOutPooled(l *convLocal, lo, hi int, mm []float32) {
	s, ps := j.s, j.pool
	_ = j.py[ps.N*ps.OutH*ps.OutW*ps.C-1] // the kernel writes F = C floats a pixel
	th, tw := s.winoTiles(4)
	mts := winoTileStride(s.F, 36)
	var y [4]*float32
	for u := lo; u < hi; u++ {
		n, tr := u/th, u%th
		for tc := 0; tc < tw; tc++ {
			blockPtrs(y[:], 2, j.py, 0, n, ps.OutH, ps.OutW, ps.C, 2*tr, 2*tc, &l.dump[0])
			winoOutput43Pool(j.kern, &mm[((u-lo)*tw+tc)*mts], s.F, s.F/16, &y, j.bias, l.wt)
		}
	}
}

// The filter gradient as Winograd F(3×3, 2×2). With the forward pass's
// 2×2 output tiles, each tile's share of the filter gradient is
//
//	dW = Gᵀ·[ (A·g·Aᵀ) ⊙ (Bᵀ·d·B) ]·G
//
// for its 4×4 input tile d and 2×2 output-gradient tile g, with the
// forward pass's matrices (the transposition principle turns F(2×2, 3×3)
// into F(3×3, 2×2)): 16 multiply-adds per tile, channel and filter instead
// of 36. Summed over the tiles, the products are 16 GEMMs, (C × tiles)·
// (tiles × F), reduced over the tiles. The tiles are cut into
// filterMaxChunks chunks by shape; each chunk's sum goes to its own
// partial (transformed back to 3×3 taps), and the partials are added in
// chunk order, as on the other paths.

// winoGradMinRows is the fewest output pixels (N·OutH·OutW, the length of
// each gradient element's sum) for which the filter gradient runs as
// Winograd. The transforms mix a tile's 16 inputs, so an element's
// rounding error scales with its tile's values rather than its own terms.
// The conformance suite's tolerance grows with the square root of the
// sum's length, and from this length on it covers that mixing (a single
// output pixel missed it by 10 %).
const winoGradMinRows = 64

// winoGradTiles is about how many tiles one pass of a chunk transforms
// before multiplying (their V and D stay in L2 beside the chunk's sums).
const winoGradTiles = 48

// winoGradPlane is the distance between the 16 planes of a chunk's sums:
// C rounded up to the 6-row panels of the product kernel, times F, and 16
// more.
func (s ConvShape) winoGradPlane() int { return roundUp(s.C, imr)*s.F + 16 }

// winoFilterGrad computes dw from j.x and j.y (the output gradient) as
// Winograd F(3×3, 2×2).
func (j *convJob) winoFilterGrad(p *Pool, s ConvShape) {
	s.checkLens(j.x, j.dw, j.y)
	cw := j.cw
	th, tw := s.winoTiles(2)
	units := s.N * th
	chunks := min(filterMaxChunks, units)
	j.chunk = (units + chunks - 1) / chunks
	chunks = (units + j.chunk - 1) / j.chunk
	tiles := min(max(1, winoGradTiles/tw), j.chunk) * tw
	workers := p.Workers()
	cw.growWino(workers, tiles, s, 16)
	for w := 0; w < workers; w++ {
		cw.wk[w].wg = growF32(cw.wk[w].wg, 16*s.winoGradPlane())
	}
	if len(cw.zero) < max(s.C, s.F) {
		cw.zero = make([]float32, max(s.C, s.F))
	}
	kf := 9 * s.C * s.F
	if chunks == 1 {
		j.part = j.dw[:kf]
		j.winoGradChunk(0, 0)
		j.clear()
		return
	}
	cw.part = growF32(cw.part, chunks*kf)
	j.part = cw.part[:chunks*kf]
	j.runChunks(p, chunks, (*convJob).winoGradChunk)
	// dw = Σ_t part[t], in chunk order, elements in parallel.
	j.chunks = chunks
	p.run(kf, ewGrain/chunks, cw.args(), convFilterSumTask)
	j.clear()
}

// winoGradChunk sums the filter gradient of the tile rows [t·chunk,
// (t+1)·chunk) into partial t on worker w.
func (j *convJob) winoGradChunk(w, t int) {
	s, cw := j.s, j.cw
	l := &cw.wk[w]
	th, tw := s.winoTiles(2)
	lo := t * j.chunk
	hi := min(lo+j.chunk, s.N*th)
	vts, dts := winoTileStride(s.C, 16), winoTileStride(s.F, 16)
	plane := s.winoGradPlane()
	m := l.wg[:16*plane]
	sub := max(1, winoGradTiles/tw)
	var xd [16]*float32
	var g [4]*float32
	for u0 := lo; u0 < hi; u0 += sub {
		u1 := min(u0+sub, hi)
		nt := (u1 - u0) * tw
		v, d := l.wv[:nt*vts], l.wm[:nt*dts]
		for u := u0; u < u1; u++ {
			n, tr := u/th, u%th
			for tc := 0; tc < tw; tc++ {
				idx := (u-u0)*tw + tc
				j.winoTileIn(xd[:], 2, n, tr, tc)
				winoInput(j.kern, &xd, s.C/16, &v[idx*vts], s.C)
				blockPtrs(g[:], 2, j.y, 0, n, s.OutH, s.OutW, s.F, 2*tr, 2*tc, &cw.zero[0])
				winoDy(j.kern, &g, s.F/16, &d[idx*dts], s.F)
			}
		}
		// the products, 6 channels × 64 filters at a time; the rows past
		// C read the next plane (or the padding) and are never used
		_ = v[(nt-1)*vts+15*s.C+roundUp(s.C, imr)-1]
		for xi := range 16 {
			for f0 := 0; f0 < s.F; f0 += inr {
				for c0 := 0; c0 < s.C; c0 += imr {
					winoGemmT(j.kern, nt, &v[xi*s.C+c0], vts, &d[xi*s.F+f0], dts, &m[xi*plane+c0*s.F+f0], s.F, u0 > lo)
				}
			}
		}
	}
	cf := s.C * s.F
	part := j.part[t*9*cf : (t+1)*9*cf]
	for c := 0; c < s.C; c++ {
		winoGradOut(j.kern, &m[c*s.F], plane, s.F/16, &part[c*s.F], cf)
	}
}

// gcd returns the greatest common divisor of a and b (positive).
func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
