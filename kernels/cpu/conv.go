package cpu

// ConvShape describes a 2-D convolution over NHWC input with an HWIO filter
// (KH, KW, C, F) and NHWC output (N, OutH, OutW, F). Its fields match
// backend.ConvParams one for one, so the backend converts with a plain type
// conversion. Positions outside the input (top/left padding, and anything
// past the bottom/right edge) read as zero.
type ConvShape struct {
	N, H, W, C       int
	KH, KW, F        int
	StrideH, StrideW int
	PadTop, PadLeft  int
	OutH, OutW       int
	// Inference says that no backward pass follows the forward one (see
	// backend.ConvParams): it may then run as Winograd F(4×4, 3×3), whose
	// rounding breaks the exact ties a training step's ReLU masks and
	// pooling argmaxes depend on (winoTile). The backward passes ignore it.
	Inference bool
}

// MaxColBytes caps the im2col patch matrix; larger batches are processed in
// chunks of images.
const MaxColBytes = 64 << 20

// Workspace holds the reusable scratch memory of the kernels that need it:
// GEMM packing buffers, the im2col patch matrix and reduction partials. It
// only grows, so steady-state calls allocate nothing. The zero value is
// ready to use; a Workspace must be used from one goroutine at a time.
type Workspace struct {
	Gemm GemmWorkspace
	col  []float32
	f64  []float64
	conv convWork
}

func (ws *Workspace) colBuf(n int) []float32 {
	if len(ws.col) < n {
		ws.col = make([]float32, n)
	}
	return ws.col[:n]
}

func (ws *Workspace) f64Buf(n int) []float64 {
	if len(ws.f64) < n {
		ws.f64 = make([]float64, n)
	}
	return ws.f64[:n]
}

// patchCols is KH·KW·C, the width of the patch matrix.
func (s ConvShape) patchCols() int { return s.KH * s.KW * s.C }

// isPointwise reports whether the patch matrix is x itself (1×1 filter,
// stride 1, no padding, same size output).
func (s ConvShape) isPointwise() bool {
	return s.KH == 1 && s.KW == 1 && s.StrideH == 1 && s.StrideW == 1 &&
		s.PadTop == 0 && s.PadLeft == 0 && s.OutH == s.H && s.OutW == s.W
}

// chunk returns how many images one im2col pass covers.
func (s ConvShape) chunk() int {
	per := s.OutH * s.OutW * s.patchCols()
	imgs := MaxColBytes / 4 / max(per, 1)
	return max(1, min(imgs, s.N))
}

// Conv2DForward computes y = conv(x, w) (no bias), overwriting y. x holds
// N·H·W·C elements, w KH·KW·C·F, y N·OutH·OutW·F.
//
// The output rows (pixels) are cut into chunks small enough that a chunk's
// patch matrix stays in the L2 cache; each worker lowers its chunks with
// im2col into its own buffer and multiplies them by w with a serial SGEMM,
// so the whole op is one parallel pass. Every output element is computed
// by one worker in the same order whatever the chunking.
func Conv2DForward(p *Pool, ws *Workspace, s ConvShape, x, w, y []float32) {
	Conv2DForwardBiasReLU(p, ws, s, x, w, nil, false, y)
}

// Conv2DForwardBiasReLU is Conv2DForward followed by BiasAdd(y, bias) (when
// bias is not nil; it holds F values) and ReLU(y, y) (when relu), with the
// bias and ReLU applied to each chunk of output rows right after it is
// computed, while it is in cache. The results are the same, bit for bit,
// as those of the three calls.
func Conv2DForwardBiasReLU(p *Pool, ws *Workspace, s ConvShape, x, w, bias []float32, relu bool, y []float32) {
	Conv2DForwardEpilogue(p, ws, s, x, w, y, ConvEpilogue{Bias: bias, ReLU: relu})
}

// ConvEpilogue is what Conv2DForwardEpilogue does to the output after the
// convolution: add Bias (F values; nil for none), apply ReLU, then max-pool
// y with Pool (Pool.N == 0 for none; Pool.N, H, W, C must be N, OutH, OutW,
// F) into PoolY and PoolArg as MaxPool2DForward does.
//
// FilterID, when not 0, identifies the values of w: a caller that passes
// the same FilterID with the same w slice and shape again promises that w
// has not changed, so the Winograd path may reuse the filter it
// transformed then. 0 promises nothing.
type ConvEpilogue struct {
	Bias           []float32
	ReLU           bool
	Pool           PoolShape
	PoolY, PoolArg []float32
	FilterID       uint64
	// ScratchY and NoArg say that y's and PoolArg's values will not be
	// read (inference): where the pooling runs in the epilogue, y then
	// goes only to per-worker scratch memory, read by the pooling while in
	// cache, and the argmax is not stored, which saves their passes over
	// memory; y and PoolArg are then left undefined. Elsewhere both are
	// written as usual.
	ScratchY, NoArg bool
}

// Conv2DForwardEpilogue is Conv2DForward followed by the epilogue e, which
// runs on each chunk of output rows right after it is computed, while it is
// in cache. On the direct path (and the implicit one when a row of pooling
// windows covers a whole number of its 6-row panels) the chunks are then
// whole rows of pooling windows (when the windows do not overlap
// vertically), so the pooling reads y from cache too; otherwise it is a
// pass of its own.
// The results are the bits of Conv2DForward, BiasAdd, ReLU and
// MaxPool2DForward called in turn.
func Conv2DForwardEpilogue(p *Pool, ws *Workspace, s ConvShape, x, w, y []float32, e ConvEpilogue) {
	k, pix := s.patchCols(), s.OutH*s.OutW
	bias, relu := e.Bias, e.ReLU
	if e.Pool.N > 0 {
		s.checkLens(x, w, y)
		e.Pool.checkLens(y, e.PoolY, e.PoolArg)
	}
	if s.isPointwise() {
		Sgemm(p, &ws.Gemm, false, false, s.N*pix, s.F, k, 1, x, k, w, s.F, 0, y, s.F)
		if bias != nil {
			BiasAdd(p, y, bias, s.N*pix, s.F)
		}
		if relu {
			ReLU(p, y[:s.N*pix*s.F], y[:s.N*pix*s.F])
		}
		if e.Pool.N > 0 {
			MaxPool2DForward(p, e.Pool, y, e.PoolY, e.PoolArg)
		}
		return
	}
	if bias != nil {
		bias = bias[:s.F]
	}
	j := ws.conv.start(ws, s)
	j.x, j.w, j.y = x, w, y
	j.bias, j.relu = bias, relu
	j.rows = s.N * pix
	if j.rows == 0 {
		j.clear()
		return
	}
	if ws.conv.useWinograd(s, j.kern) {
		j.winoForward(p, s, e)
		return
	}
	fusePool := e.Pool.N > 0 && e.Pool.StrideH >= e.Pool.KH && e.Pool.OutH > 0
	if s.implicitFwd(j.kern) {
		s.checkLens(x, w, y)
		j.chunk = implicitChunkRows(j.rows)
		// The 6-row panels must not move: whether a panel reads whole
		// windows or goes tap by tap changes the order of the sums.
		unit := e.Pool.StrideH * s.OutW
		fuse := fusePool && unit%imr == 0 && e.Pool.OutH*e.Pool.StrideH == s.OutH
		if fuse {
			j.poolChunks(e)
		}
		ws.conv.growImplicit(p.Workers(), j.maxChunkRows())
		j.runChunks(p, j.chunkCount(), (*convJob).implicitFwdChunk)
		j.clear()
		if e.Pool.N > 0 && !fuse {
			MaxPool2DForward(p, e.Pool, y, e.PoolY, e.PoolArg)
		}
		return
	}
	if s.direct() && e.ScratchY && e.NoArg && relu && asmConvOK(j.kern) && s.directPool(e.Pool) {
		// only the pooled values are kept: pool in registers
		j.pool, j.py = e.Pool, e.PoolY
		units := s.N * e.Pool.OutH
		workers := p.Workers()
		j.chunk = max(1, (units+4*workers-1)/(4*workers))
		j.runChunks(p, (units+j.chunk-1)/j.chunk, (*convJob).directPoolChunk)
		j.clear()
		return
	}
	if s.direct() {
		j.chunk = convChunkRows(j.rows, k, 1)
		ws.conv.grow(p.Workers(), k, nil, 0)
		if fusePool {
			j.poolChunks(e)
			j.scratch(p.Workers(), e, j.maxChunkRows())
		}
		j.runChunks(p, j.chunkCount(), (*convJob).directChunk)
		j.clear()
		if e.Pool.N > 0 && !fusePool {
			// overlapping or stride-1 windows: pool the stored output
			MaxPool2DForward(p, e.Pool, y, e.PoolY, e.PoolArg)
		}
		return
	}
	j.chunk = convChunkRows(j.rows, k, j.kern.mr)
	chunks := (j.rows + j.chunk - 1) / j.chunk
	ws.conv.grow(p.Workers(), min(j.chunk, j.rows)*k, j.kern, s.F)
	if s.F <= j.kern.nc && chunks > 1 {
		// pack w once for every chunk
		ws.conv.pb = growF32(ws.conv.pb, packedBLen(j.kern, s.F, k))
		j.pb = ws.conv.pb
		packBWhole(j.kern, j.pb, w, s.F, s.F, k)
	}
	j.runChunks(p, chunks, (*convJob).fwdChunk)
	j.clear()
	if e.Pool.N > 0 {
		MaxPool2DForward(p, e.Pool, y, e.PoolY, e.PoolArg)
	}
}

// directMaxK is the widest patch (KH·KW·C) the direct convolution takes:
// its 64-filter slice of w (directMaxK·64 floats) stays in the L1 cache,
// and below it the GEMM's packing and tile overheads dominate.
const directMaxK = 64

// direct reports whether the forward pass runs as a direct convolution
// (few input channels, like a first layer on grey or RGB images).
func (s ConvShape) direct() bool {
	return hasFMA && s.F%64 == 0 && s.patchCols() <= directMaxK
}

// directChunk computes output rows [t·chunk, (t+1)·chunk) directly from x:
// pixels whose window lies inside the input with the vector loop, the
// others (padding) through a one-pixel patch and gemv64.
func (j *convJob) directChunk(w, t int) {
	s := j.s
	k := s.patchCols()
	pix := s.OutH * s.OutW
	lo, hi := j.rowsOf(t)
	// output columns whose window lies inside the input horizontally
	inA := (s.PadLeft + s.StrideW - 1) / s.StrideW
	inB := 0
	if s.W-s.KW+s.PadLeft >= 0 {
		inB = (s.W-s.KW+s.PadLeft)/s.StrideW + 1
	}
	l := &j.cw.wk[w]
	col := l.col[:k]
	yb, y0 := j.y, 0 // y's row r is yb's row r-y0
	if j.ys {
		yb, y0 = l.ysc, lo
	}
	var acc [64]float32
	for r := lo; r < hi; {
		n, rem := r/pix, r%pix
		oh, ow0 := rem/s.OutW, rem%s.OutW
		ow1 := min(s.OutW, ow0+hi-r)
		ih0 := oh*s.StrideH - s.PadTop
		a, b := ow0, ow0
		if ih0 >= 0 && ih0+s.KH <= s.H {
			a = min(max(inA, ow0), ow1)
			b = min(max(inB, a), ow1)
		}
		rowBase := (n*s.OutH + oh) * s.OutW
		for ow := ow0; ow < ow1; ow++ {
			if ow == a && b > a {
				first := ((n*s.H+ih0)*s.W + a*s.StrideW - s.PadLeft) * s.C
				for f := 0; f < s.F; f += 64 {
					convRowsVec(s, j.x[first:], j.w[f:], yb[(rowBase+a-y0)*s.F+f:], b-a, j.biasAt(f), j.relu, implicitOK(j.kern))
				}
				ow = b - 1
				continue
			}
			rr := rowBase + ow
			im2colRows(s, j.x, col, rr, rr+1)
			yr := yb[(rr-y0)*s.F : (rr-y0+1)*s.F]
			for f := 0; f < s.F; f += 64 {
				gemv64(col, j.w[f:], s.F, &acc)
				copy(yr[f:f+64], acc[:])
			}
			j.epilogue(yr)
		}
		r += ow1 - ow0
	}
	j.poolChunk(w, t, yb, y0)
}

// directPool reports whether the forward pass can pool ps (2×2 windows,
// stride 2) in registers: every pixel of every window lies inside the
// input (no padding).
func (s ConvShape) directPool(ps PoolShape) bool {
	return s.pools2x2(ps) && s.PadTop == 0 && s.PadLeft == 0 &&
		(2*ps.OutH-1)*s.StrideH+s.KH <= s.H && (2*ps.OutW-1)*s.StrideW+s.KW <= s.W
}

// pools2x2 reports whether ps is a 2×2, stride-2 max pooling of s's
// output whose windows all lie inside it.
func (s ConvShape) pools2x2(ps PoolShape) bool {
	return ps.N == s.N && ps.H == s.OutH && ps.W == s.OutW && ps.C == s.F &&
		ps.KH == 2 && ps.KW == 2 && ps.StrideH == 2 && ps.StrideW == 2 && ps.OutH > 0 && ps.OutW > 0 &&
		2*ps.OutH <= s.OutH && 2*ps.OutW <= s.OutW
}

// directPoolChunk computes the pooled rows [t·chunk, (t+1)·chunk) (over
// the batch) of the fused convolution, ReLU and 2×2 pooling.
func (j *convJob) directPoolChunk(_, t int) {
	s, ps := j.s, j.pool
	lo := t * j.chunk
	hi := min(lo+j.chunk, s.N*ps.OutH)
	for u := lo; u < hi; u++ {
		n, ph := u/ps.OutH, u%ps.OutH
		first := (n*s.H + 2*ph*s.StrideH) * s.W * s.C
		for f := 0; f < s.F; f += 64 {
			convPoolVec(s, j.x[first:], j.w[f:], j.py[u*ps.OutW*s.F+f:], ps.OutW, j.biasAt(f), implicitOK(j.kern))
		}
	}
}

// biasAt returns the 64 bias values from filter f, or nil.
func (j *convJob) biasAt(f int) []float32 {
	if j.bias == nil {
		return nil
	}
	return j.bias[f : f+64]
}

// scratch sets up the scratch memory of e's ScratchY (rows of y per chunk)
// and NoArg, once the pooling is known to run in the chunks' epilogue.
func (j *convJob) scratch(workers int, e ConvEpilogue, rows int) {
	j.ys, j.noArg = e.ScratchY, e.NoArg
	for w := 0; w < workers; w++ {
		l := &j.cw.wk[w]
		if j.ys {
			l.ysc = growF32(l.ysc, rows*j.s.F)
		}
		if j.noArg {
			l.argsc = growF32(l.argsc, e.Pool.OutW*e.Pool.C)
		}
	}
}

// poolChunks makes the forward chunks whole rows of e's pooling windows
// (units: the conv rows from one pooling row's first input row to the next
// one's, the rows after the last one going with it), about as many rows as
// j.chunk, and pools each chunk in its epilogue.
func (j *convJob) poolChunks(e ConvEpilogue) {
	s, ps := j.s, e.Pool
	total := s.N * ps.OutH
	per := max(1, j.chunk/max(1, ps.StrideH*s.OutW))
	chunks := (total + per - 1) / per
	j.units = (total + chunks - 1) / chunks
	j.pool, j.py, j.parg = ps, e.PoolY, e.PoolArg
}

// unitRow is the first conv row of pooling unit u (j.rows past the last).
func (j *convJob) unitRow(u int) int {
	if u >= j.s.N*j.pool.OutH {
		return j.rows
	}
	n, oh := u/j.pool.OutH, u%j.pool.OutH
	return n*j.s.OutH*j.s.OutW + oh*j.pool.StrideH*j.s.OutW
}

// rowsOf returns the output rows [lo, hi) of forward chunk t.
func (j *convJob) rowsOf(t int) (lo, hi int) {
	if j.units == 0 {
		lo = t * j.chunk
		return lo, min(lo+j.chunk, j.rows)
	}
	return j.unitRow(t * j.units), j.unitRow((t + 1) * j.units)
}

// chunkCount is the number of forward chunks.
func (j *convJob) chunkCount() int {
	if j.units == 0 {
		return (j.rows + j.chunk - 1) / j.chunk
	}
	total := j.s.N * j.pool.OutH
	return (total + j.units - 1) / j.units
}

// maxChunkRows bounds the rows of a forward chunk.
func (j *convJob) maxChunkRows() int {
	if j.units == 0 {
		return min(j.chunk, j.rows)
	}
	s := j.s
	return min(j.rows, j.units*(j.pool.StrideH*s.OutW+max(0, s.OutH-j.pool.OutH*j.pool.StrideH)*s.OutW))
}

// poolChunk pools the units of forward chunk t on worker w, when the
// pooling is fused; yb holds y from row y0 on.
func (j *convJob) poolChunk(w, t int, yb []float32, y0 int) {
	if j.units == 0 {
		return
	}
	u0 := t * j.units
	u1 := min(u0+j.units, j.s.N*j.pool.OutH)
	maxPoolRowsAt(j.pool, yb, y0*j.s.F, j.py, j.parg, j.argRow(w), u0, u1)
}

// argRow is worker w's scratch row for the pooling's argmax when it is not
// stored (ConvEpilogue.NoArg), else nil.
func (j *convJob) argRow(w int) []float32 {
	if !j.noArg {
		return nil
	}
	return j.cw.wk[w].argsc[:j.pool.OutW*j.pool.C]
}

// epilogue applies the bias and ReLU of a forward pass to whole output
// rows y.
func (j *convJob) epilogue(y []float32) {
	if j.bias != nil {
		biasAddRows(y, j.bias, j.s.F, 0, len(y)/j.s.F)
	}
	if j.relu {
		reluRange(y, y)
	}
}

// fwdChunk computes output rows [t·chunk, (t+1)·chunk) on worker w.
func (j *convJob) fwdChunk(w, t int) {
	s := j.s
	k := s.patchCols()
	lo := t * j.chunk
	hi := min(lo+j.chunk, j.rows)
	l := &j.cw.wk[w]
	col := l.col[:(hi-lo)*k]
	im2colRows(s, j.x, col, lo, hi)
	l.gemm.kern = j.kern
	if j.pb != nil {
		sgemmPackedB(&l.gemm, j.kern, hi-lo, s.F, k, col, k, j.pb, 0, j.y[lo*s.F:], s.F)
	} else {
		Sgemm(nil, &l.gemm, false, false, hi-lo, s.F, k, 1, col, k, j.w, s.F, 0, j.y[lo*s.F:], s.F)
	}
	j.epilogue(j.y[lo*s.F : hi*s.F])
}

// Conv2DBackwardData computes dx = ∂L/∂x from dy and w, overwriting dx.
//
// With stride 1 and enough channels it is the forward convolution of dy,
// padded by KH-1-PadTop and KW-1-PadLeft, with the filter rotated by 180°
// and its channel axes swapped (a "full" convolution): no col2im scatter,
// and the same parallel one-pass structure as the forward op. Otherwise
// the patch-matrix gradient dy·wᵀ is scattered back with col2im.
func Conv2DBackwardData(p *Pool, ws *Workspace, s ConvShape, dy, w, dx []float32) {
	k, pix := s.patchCols(), s.OutH*s.OutW
	if s.isPointwise() {
		Sgemm(p, &ws.Gemm, false, true, s.N*pix, k, s.F, 1, dy, s.F, w, s.F, 0, dx, k)
		return
	}
	if t, ok := s.transposedShape(); ok && ws.conv.useWinograd(t, ws.Gemm.kernel()) {
		// the transposed convolution as Winograd: fewer multiply-adds than
		// the scatter below even with its larger output
		wt := ws.conv.transposedTaps(s, w, true)
		Conv2DForward(p, ws, t, dy, wt, dx)
		return
	}
	if kr := ws.Gemm.kernel(); s.implicitData(kr) && s.N > 0 {
		s.checkLens(dx, w, dy)
		wt := ws.conv.transposedTaps(s, w, false)
		j := ws.conv.start(ws, s)
		j.x, j.w, j.y = dy, wt, dx
		j.rows = s.N * pix
		j.chunk = s.implicitDataImages()
		ws.conv.growImplicit(p.Workers(), j.chunk*pix)
		j.runChunks(p, (s.N+j.chunk-1)/j.chunk, (*convJob).implicitDataChunk)
		j.clear()
		return
	}
	if t, ok := s.transposed(); ok {
		wt := ws.conv.transposedTaps(s, w, true)
		Conv2DForward(p, ws, t, dy, wt, dx)
		return
	}
	step := s.chunk()
	img := s.H * s.W * s.C
	for n0 := 0; n0 < s.N; n0 += step {
		nb := min(step, s.N-n0)
		rows := nb * pix
		col := ws.colBuf(rows * k)
		Sgemm(p, &ws.Gemm, false, true, rows, k, s.F, 1, dy[n0*pix*s.F:], s.F, w, s.F, 0, col, k)
		col2im(p, s, col, dx[n0*img:(n0+nb)*img], nb)
	}
}

// minTransposedC is the fewest input channels for which backward-data runs
// as a forward convolution (its GEMM has C columns; with very few the
// padded micro-kernel tiles waste most of their work).
const minTransposedC = 8

// transposed returns the forward convolution that computes this one's
// backward-data pass, when there is one and it pays (stride 1, padding at
// most the filter size less one, C at least minTransposedC, and an input
// at most 1/8 larger than the output: the transposed convolution does
// H·W/(OutH·OutW) times the multiply-adds of dy·wᵀ, so for a "valid"
// convolution on a small image, 13×13 from 11×11, the col2im path wins).
func (s ConvShape) transposed() (ConvShape, bool) {
	if s.C < minTransposedC || 8*s.H*s.W > 9*s.OutH*s.OutW {
		return ConvShape{}, false
	}
	return s.transposedShape()
}

// transposedShape returns the forward convolution of dy that computes
// this one's backward-data pass, when there is one (stride 1, padding at
// most the filter size less one).
func (s ConvShape) transposedShape() (ConvShape, bool) {
	if s.StrideH != 1 || s.StrideW != 1 || s.PadTop > s.KH-1 || s.PadLeft > s.KW-1 ||
		s.PadTop < 0 || s.PadLeft < 0 {
		return ConvShape{}, false
	}
	// Inference: the transposed pass's output is dx, from which nothing
	// takes a ReLU mask or a pooling's argmax (those come from the forward
	// pass's outputs), so it need not keep exact ties and may run as
	// F(4×4, 3×3) where that costs less.
	return ConvShape{N: s.N, H: s.OutH, W: s.OutW, C: s.F, KH: s.KH, KW: s.KW, F: s.C,
		StrideH: 1, StrideW: 1, PadTop: s.KH - 1 - s.PadTop, PadLeft: s.KW - 1 - s.PadLeft,
		OutH: s.H, OutW: s.W, Inference: true}, true
}

// Conv2DBackwardFilter computes dw = ∂L/∂w from x and dy, summed over the
// batch, overwriting dw.
//
// The rows (output pixels of the batch) are cut into at most
// filterMaxChunks chunks by shape alone; each chunk's product patchesᵀ·dy
// goes to its own partial buffer on one worker (lowered in L2-sized pieces),
// and the partials are summed in chunk order, so the result is the same
// run to run and for any number of workers.
func Conv2DBackwardFilter(p *Pool, ws *Workspace, s ConvShape, x, dy, dw []float32) {
	k, pix := s.patchCols(), s.OutH*s.OutW
	if s.isPointwise() {
		Sgemm(p, &ws.Gemm, true, false, k, s.F, s.N*pix, 1, x, k, dy, s.F, 0, dw, s.F)
		return
	}
	j := ws.conv.start(ws, s)
	j.x, j.y, j.dw = x, dy, dw
	j.rows = s.N * pix
	if s.winogradGrad(j.kern) && !ws.conv.noWinograd && j.rows >= winoGradMinRows {
		j.winoFilterGrad(p, s)
		return
	}
	chunks := min(filterMaxChunks, (j.rows+filterMinRows-1)/filterMinRows)
	units, task := j.rows, (*convJob).filterChunk
	switch {
	case s.directFilter():
		// chunks of whole output rows
		units, task = s.N*s.OutH, (*convJob).directFilterChunk
	case s.implicitFilter(j.kern) && j.rows > 0:
		s.checkLens(x, dw, dy)
		task = (*convJob).gatherFilterChunk
		ws.conv.growImplicit(p.Workers(), gatherRows)
	default:
		j.sub = convChunkRows(j.rows, k, 1)
	}
	j.chunk = (units + chunks - 1) / chunks
	chunks = (units + j.chunk - 1) / j.chunk
	kf := k * s.F
	ws.conv.grow(p.Workers(), min(j.sub, j.chunk)*k, j.kern, s.F)
	if chunks == 1 {
		j.part = dw[:kf]
		task(j, 0, 0)
		j.clear()
		return
	}
	ws.conv.part = growF32(ws.conv.part, chunks*kf)
	j.part = ws.conv.part[:chunks*kf]
	j.runChunks(p, chunks, task)
	// dw = Σ_t part[t], in chunk order, elements in parallel.
	j.chunks = chunks
	p.run(kf, ewGrain/chunks, j.cw.args(), convFilterSumTask)
	j.clear()
}

const (
	// filterMaxChunks caps the partial products of backward-filter.
	filterMaxChunks = 8
	// filterMinRows is the fewest rows a backward-filter chunk covers.
	filterMinRows = 128
)

func convFilterSumTask(a *args, _, lo, hi int) {
	j := a.cj
	kf := len(j.part) / j.chunks
	dst := j.dw[lo:hi]
	copy(dst, j.part[lo:hi])
	for t := 1; t < j.chunks; t++ {
		addTo(dst, j.part[t*kf+lo:t*kf+hi])
	}
}

// directFilter reports whether backward-filter reads x directly: direct
// shapes with one input channel, unit horizontal stride and no padding,
// where one filter tap's inputs along an output row are contiguous.
func (s ConvShape) directFilter() bool {
	return s.direct() && s.C == 1 && s.StrideW == 1 && s.PadTop == 0 && s.PadLeft == 0 &&
		(s.OutH-1)*s.StrideH+s.KH <= s.H && s.OutW-1+s.KW <= s.W
}

// directFilterChunk computes the partial filter gradient of output rows
// [t·chunk, (t+1)·chunk): for each output row and tap, the tap's inputs
// along the row (contiguous in x) times that row of dy, added in order.
func (j *convJob) directFilterChunk(_, t int) {
	s := j.s
	kf := s.KH * s.KW * s.F
	lines := s.N * s.OutH
	dst := j.part[t*kf : t*kf+kf]
	clear(dst)
	for line := t * j.chunk; line < min(lines, (t+1)*j.chunk); line++ {
		n, oh := line/s.OutH, line%s.OutH
		g := j.y[line*s.OutW*s.F:]
		for ky := 0; ky < s.KH; ky++ {
			row := j.x[((n*s.H)+oh*s.StrideH+ky)*s.W:]
			for kx := 0; kx < s.KW; kx++ {
				a := row[kx : kx+s.OutW]
				tap := dst[(ky*s.KW+kx)*s.F:]
				for f := 0; f < s.F; f += 64 {
					gemv64Add(a, g[f:], s.F, tap[f:])
				}
			}
		}
	}
}

// filterChunk computes the partial filter gradient of chunk t on worker w,
// in sub-chunks whose patch matrix fits the L2 cache.
func (j *convJob) filterChunk(w, t int) {
	s := j.s
	k := s.patchCols()
	kf := k * s.F
	lo := t * j.chunk
	hi := min(lo+j.chunk, j.rows)
	l := &j.cw.wk[w]
	l.gemm.kern = j.kern
	dst := j.part[t*kf : t*kf+kf]
	for r0 := lo; r0 < hi; r0 += j.sub {
		r1 := min(r0+j.sub, hi)
		col := l.col[:(r1-r0)*k]
		im2colRows(s, j.x, col, r0, r1)
		var beta float32
		if r0 > lo {
			beta = 1
		}
		Sgemm(nil, &l.gemm, true, false, k, s.F, r1-r0, 1, col, k, j.y[r0*s.F:], s.F, beta, dst, s.F)
	}
}

// convWork is the convolution state of a Workspace: per-worker patch
// buffers and SGEMM workspaces, backward-filter partials, the filter of
// backward-data with its taps transposed (see transposedTaps), the packed
// filter of the forward pass, and the current job.
type convWork struct {
	wk     []convLocal
	part   []float32
	rot    []float32                     // transposedTaps
	pb     []float32                     // the packed filter of the forward pass
	wu     [winoCacheLen]winoFilterEntry // Winograd-transformed filters
	wuNext int                           // the entry to replace next
	wuTmp  []float32                     // a transformed filter not kept
	zero   []float32                     // C zeros, read (never written) outside the image
	job    convJob
	// noWinograd makes the forward pass take the path it would without
	// the Winograd one (tests compare the two).
	noWinograd bool
	// winoM, when not 0, makes the forward pass run as Winograd with
	// this output tile size (2 or 4) wherever the micro-kernel's Winograd
	// kernels take the shape, whatever the costs say (tests and
	// benchmarks compare the paths).
	winoM int
	a     args
}

// useWinograd reports whether the forward pass of s runs as Winograd with
// micro-kernel kr: as the costs choose (ConvShape.winograd), never with
// noWinograd, and wherever kr's kernels take s with winoM set.
func (cw *convWork) useWinograd(s ConvShape, kr *gemmKernel) bool {
	switch {
	case cw.noWinograd:
		return false
	case cw.winoM != 0:
		f2, f4, _ := winoKernels(kr)
		return f2 && f4 && s.winoShape()
	}
	return s.winograd(kr)
}

// convLocal is one worker's scratch memory.
type convLocal struct {
	gemm  GemmWorkspace
	col   []float32
	org   []int              // window origins (implicit kernels)
	list  []int              // offset pairs (gather kernel)
	tile  [imr * inr]float32 // discarded rows (implicit kernels)
	wv    []float32          // transformed input tiles (Winograd)
	wm    []float32          // transformed products (Winograd)
	dump  []float32          // output pixels past the edge (Winograd)
	wg    []float32          // a chunk's sums of the filter gradient (Winograd)
	ysc   []float32          // a chunk of y not stored (ConvEpilogue.ScratchY)
	wt    []float32          // the Winograd F(4×4, 3×3) transforms' scratch (36·16 floats, 64-byte aligned)
	argsc []float32          // a row of argmax not stored (ConvEpilogue.NoArg)
}

// convJob describes the current convolution call to the workers.
type convJob struct {
	cw          *convWork
	kern        *gemmKernel
	s           ConvShape
	x, w, y, dw []float32
	part        []float32
	pb          []float32 // w packed by packBWhole, or nil
	wu          []float32 // w transformed for Winograd
	bias        []float32 // forward epilogue: bias to add, or nil
	relu        bool      // forward epilogue: ReLU
	units       int       // forward epilogue: pooling rows per chunk, or 0
	ys, noArg   bool      // forward epilogue: y to scratch, argmax not stored
	pool        PoolShape // forward epilogue: the pooling of y
	py, parg    []float32 // forward epilogue: its output and argmax
	tm          int       // Winograd forward: output tile size
	poolReg     bool      // Winograd forward: pool in registers, store nothing else
	rows        int       // output pixels in the batch
	chunk       int       // rows per parallel chunk
	sub         int       // rows per lowering (backward-filter)
	chunks      int
	chunkFn     func(j *convJob, w, t int) // what runChunks runs
}

func (cw *convWork) start(ws *Workspace, s ConvShape) *convJob {
	j := &cw.job
	*j = convJob{cw: cw, kern: ws.Gemm.kernel(), s: s}
	return j
}

// args returns the workspace's argument block for the current job (the
// pool's own is not used: a nil pool has none).
func (cw *convWork) args() *args {
	cw.a = args{cj: &cw.job}
	return &cw.a
}

// clear drops the job's references to the caller's slices.
func (j *convJob) clear() {
	j.x, j.w, j.y, j.dw, j.part, j.pb, j.bias, j.py, j.parg, j.wu = nil, nil, nil, nil, nil, nil, nil, nil, nil, nil
}

// grow sizes every worker's patch buffer for colLen elements and, when kr
// is not nil, its serial SGEMM workspace for products with n columns, up
// front: a worker that takes no chunk in the first call (it woke late)
// must not allocate when it takes one later.
func (cw *convWork) grow(workers, colLen int, kr *gemmKernel, n int) {
	for len(cw.wk) < workers {
		cw.wk = append(cw.wk, convLocal{})
	}
	for w := 0; w < workers; w++ {
		l := &cw.wk[w]
		l.col = growF32(l.col, colLen)
		if kr != nil {
			l.gemm.grow(kr, 1, kr.kc, min(n, kr.nc), false)
		}
	}
}

// runChunks runs chunk(j, w, t) for chunks t = 0..chunks-1 on the pool (w
// the worker), or serially when there is one chunk or one worker, or too
// little work to be worth waking workers.
func (j *convJob) runChunks(p *Pool, chunks int, chunk func(j *convJob, w, t int)) {
	j.chunkFn = chunk
	a := j.cw.args()
	s := j.s
	if p.serial(chunks, 1) || float64(j.rows)*float64(s.patchCols())*float64(s.F) < serialMACs {
		convChunkTask(a, 0, 0, chunks)
		return
	}
	p.run(chunks, 1, a, convChunkTask)
}

func convChunkTask(a *args, w, lo, hi int) {
	j := a.cj
	for t := lo; t < hi; t++ {
		j.chunkFn(j, w, t)
	}
}

// transposedTaps returns w (KH, KW, C, F) with the channel axes of each
// tap swapped, (KH, KW, F, C), and, when rotate, the taps in reverse order
// (the filter rotated by 180°): with rotate, the filter of the transposed
// convolution; without, the B operand of the implicit backward-data pass.
func (cw *convWork) transposedTaps(s ConvShape, w []float32, rotate bool) []float32 {
	n := s.KH * s.KW * s.C * s.F
	cw.rot = growF32(cw.rot, n)
	r := cw.rot[:n]
	taps := s.KH * s.KW
	for t := 0; t < taps; t++ {
		st := t
		if rotate {
			st = taps - 1 - t
		}
		src := w[st*s.C*s.F : (st+1)*s.C*s.F]
		dst := r[t*s.C*s.F : (t+1)*s.C*s.F]
		for c := 0; c < s.C; c++ {
			row := src[c*s.F : c*s.F+s.F]
			for f, v := range row {
				dst[f*s.C+c] = v
			}
		}
	}
	return r
}

// convMaxColElems bounds a worker's patch-matrix piece so that it stays in
// the L2 cache next to the SGEMM packing buffers.
const convMaxColElems = 48 << 10

// convMaxChunkRows caps the rows of one chunk (for tiny patch widths).
const convMaxChunkRows = 1024

// convChunkRows returns the rows of one chunk of a rows×k patch matrix: a
// multiple of mr (the micro-kernel height) that keeps the chunk within
// convMaxColElems, with at least two chunks when there are two mr-panels.
// It depends on the shape alone.
func convChunkRows(rows, k, mr int) int {
	maxRows := max(mr, min(convMaxChunkRows, convMaxColElems/max(k, 1))/mr*mr)
	panels := (rows + mr - 1) / mr
	chunks := max((rows+maxRows-1)/maxRows, min(panels, 2))
	return (panels + chunks - 1) / chunks * mr
}

// convArgs stores s in a.i[0:13].
func convArgs(a *args, s ConvShape) {
	a.i = [16]int{s.N, s.H, s.W, s.C, s.KH, s.KW, s.F, s.StrideH, s.StrideW, s.PadTop, s.PadLeft, s.OutH, s.OutW}
}

func convFromArgs(a *args) ConvShape {
	i := a.i
	return ConvShape{N: i[0], H: i[1], W: i[2], C: i[3], KH: i[4], KW: i[5], F: i[6],
		StrideH: i[7], StrideW: i[8], PadTop: i[9], PadLeft: i[10], OutH: i[11], OutW: i[12]}
}

// im2colRows writes the patches of rows lo..hi-1 to col, row lo first.
func im2colRows(s ConvShape, x, col []float32, lo, hi int) {
	k := s.patchCols()
	pix := s.OutH * s.OutW
	c := s.C
	for r := lo; r < hi; r++ {
		img := r / pix
		rem := r % pix
		oh, ow := rem/s.OutW, rem%s.OutW
		dst := col[(r-lo)*k : (r-lo)*k+k]
		base := img * s.H * s.W * c
		ih0 := oh*s.StrideH - s.PadTop
		iw0 := ow*s.StrideW - s.PadLeft
		d := 0
		for ky := 0; ky < s.KH; ky++ {
			ih := ih0 + ky
			if ih < 0 || ih >= s.H {
				clear(dst[d : d+s.KW*c])
				d += s.KW * c
				continue
			}
			rowBase := base + ih*s.W*c
			// contiguous run of in-range kx
			kx0 := min(s.KW, max(0, -iw0))
			kx1 := min(s.KW, s.W-iw0)
			if kx1 < kx0 {
				kx1 = kx0
			}
			clear(dst[d : d+kx0*c])
			if kx1 > kx0 {
				src := x[rowBase+(iw0+kx0)*c : rowBase+(iw0+kx1)*c]
				copy(dst[d+kx0*c:], src)
			}
			clear(dst[d+kx1*c : d+s.KW*c])
			d += s.KW * c
		}
	}
}

// col2im overwrites dx (nb images) with the sum of the patch-matrix entries
// that read each input element.
func col2im(p *Pool, s ConvShape, col, dx []float32, nb int) {
	if p.serial(nb, 1) {
		col2imImages(s, col, dx, 0, nb)
		return
	}
	a := p.args()
	convArgs(a, s)
	a.s[0], a.s[1] = col, dx
	p.run(nb, 1, a, col2imTask)
}

func col2imTask(a *args, _, lo, hi int) {
	s := convFromArgs(a)
	col2imImages(s, a.s[0], a.s[1], lo, hi)
}

func col2imImages(s ConvShape, col, dx []float32, lo, hi int) {
	k := s.patchCols()
	pix := s.OutH * s.OutW
	c := s.C
	img := s.H * s.W * c
	clear(dx[lo*img : hi*img])
	for n := lo; n < hi; n++ {
		base := n * img
		for rem := 0; rem < pix; rem++ {
			r := n*pix + rem
			oh, ow := rem/s.OutW, rem%s.OutW
			src := col[r*k : r*k+k]
			ih0 := oh*s.StrideH - s.PadTop
			iw0 := ow*s.StrideW - s.PadLeft
			for ky := 0; ky < s.KH; ky++ {
				ih := ih0 + ky
				if ih < 0 || ih >= s.H {
					continue
				}
				kx0 := min(s.KW, max(0, -iw0))
				kx1 := min(s.KW, s.W-iw0)
				if kx1 <= kx0 {
					continue
				}
				rowBase := base + ih*s.W*c
				d := dx[rowBase+(iw0+kx0)*c : rowBase+(iw0+kx1)*c]
				sv := src[(ky*s.KW+kx0)*c : (ky*s.KW+kx1)*c]
				for i, v := range sv {
					d[i] += v
				}
			}
		}
	}
}
