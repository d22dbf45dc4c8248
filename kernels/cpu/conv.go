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
func Conv2DForward(p *Pool, ws *Workspace, s ConvShape, x, w, y []float32) {
	k, pix := s.patchCols(), s.OutH*s.OutW
	if s.isPointwise() {
		Sgemm(p, &ws.Gemm, false, false, s.N*pix, s.F, k, 1, x, k, w, s.F, 0, y, s.F)
		return
	}
	step := s.chunk()
	for n0 := 0; n0 < s.N; n0 += step {
		nb := min(step, s.N-n0)
		rows := nb * pix
		col := ws.colBuf(rows * k)
		im2col(p, s, x, col, n0, nb)
		Sgemm(p, &ws.Gemm, false, false, rows, s.F, k, 1, col, k, w, s.F, 0, y[n0*pix*s.F:], s.F)
	}
}

// Conv2DBackwardData computes dx = ∂L/∂x from dy and w, overwriting dx.
func Conv2DBackwardData(p *Pool, ws *Workspace, s ConvShape, dy, w, dx []float32) {
	k, pix := s.patchCols(), s.OutH*s.OutW
	if s.isPointwise() {
		Sgemm(p, &ws.Gemm, false, true, s.N*pix, k, s.F, 1, dy, s.F, w, s.F, 0, dx, k)
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

// Conv2DBackwardFilter computes dw = ∂L/∂w from x and dy, summed over the
// batch, overwriting dw.
func Conv2DBackwardFilter(p *Pool, ws *Workspace, s ConvShape, x, dy, dw []float32) {
	k, pix := s.patchCols(), s.OutH*s.OutW
	if s.isPointwise() {
		Sgemm(p, &ws.Gemm, true, false, k, s.F, s.N*pix, 1, x, k, dy, s.F, 0, dw, s.F)
		return
	}
	step := s.chunk()
	for n0 := 0; n0 < s.N; n0 += step {
		nb := min(step, s.N-n0)
		rows := nb * pix
		col := ws.colBuf(rows * k)
		im2col(p, s, x, col, n0, nb)
		var beta float32
		if n0 > 0 {
			beta = 1
		}
		Sgemm(p, &ws.Gemm, true, false, k, s.F, rows, 1, col, k, dy[n0*pix*s.F:], s.F, beta, dw, s.F)
	}
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

// im2col fills col (rows = nb·OutH·OutW, cols = KH·KW·C) with the patches
// of images n0..n0+nb-1.
func im2col(p *Pool, s ConvShape, x, col []float32, n0, nb int) {
	rows := nb * s.OutH * s.OutW
	const grain = 64
	if p.serial(rows, grain) || rows*s.patchCols() < 1<<14 {
		im2colRows(s, x, col, n0, 0, rows)
		return
	}
	a := p.args()
	convArgs(a, s)
	a.s[0], a.s[1] = x, col
	a.i[13] = n0
	p.run(rows, grain, a, im2colTask)
}

func im2colTask(a *args, _, lo, hi int) {
	s := convFromArgs(a)
	im2colRows(s, a.s[0], a.s[1], a.i[13], lo, hi)
}

func im2colRows(s ConvShape, x, col []float32, n0, lo, hi int) {
	k := s.patchCols()
	pix := s.OutH * s.OutW
	c := s.C
	for r := lo; r < hi; r++ {
		img := n0 + r/pix
		rem := r % pix
		oh, ow := rem/s.OutW, rem%s.OutW
		dst := col[r*k : r*k+k]
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
			kx0 := max(0, -iw0)
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
				kx0 := max(0, -iw0)
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
