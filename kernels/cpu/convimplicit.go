package cpu

// Implicit-GEMM convolution: the kernels convRowsAVX512 and
// convGather*AVX512, and their AVX2+FMA forms convRowsImplicitAVX2 and
// convGather*AVX2 (the same 6×64 tile as four 16-column passes), read the
// patch matrix straight from the NHWC image, through a pointer (or offset)
// per patch row, so there is no im2col copy and no packing of A. They are
// used with the avx512 and avx2 micro-kernels (the form matching the
// kernel) for filter counts (and, for backward-data, channel counts) that
// are multiples of 64.
//
//   - Forward: y[r][f] = Σ_tap Σ_c x[pixel(r, tap)][c]·w[tap][c][f]. One
//     call of the rows kernel computes 6 output pixels × 64 filters over
//     their whole windows (KH runs of KW·C contiguous floats) where they lie
//     inside the image; elsewhere one call per tap and up to implicitKC
//     channels adds to y, reading zeros outside the image.
//     (Layers with few channels, like a first layer on grey images, keep
//     the direct kernel, which loops over a row's pixels in one call: the
//     rows kernel's per-call overhead is higher there. 3×3 stride-1 layers
//     with 16·k channels run as Winograd instead: see winograd.go.)
//   - Backward-data: dx[pixel(r, tap)][c] += Σ_f dy[r][f]·w[tap][c][f], the
//     rows kernel with the output pointers scattered instead, over chunks
//     of whole images so that no two workers write the same element.
//   - Backward-filter: dw[tap][c][f] = Σ_r x[pixel(r, tap)][c]·dy[r][f], the
//     gather kernel, which reads an (input pixel, output pixel) offset pair
//     per step of the reduction.
//
// Every output element is summed by one worker in an order fixed by the
// shape (taps, then channel blocks), so results do not depend on the
// number of workers.

const (
	// imr×inr is the tile of the implicit kernels.
	imr = 6
	inr = 64
	// implicitKC is the deepest reduction of one rows-kernel call that
	// reads zeros (padding) or scatters its output: 64 rows of 64 filters
	// (16 KiB) stay in the L1 cache.
	implicitKC = 64
	// windowMaxK is the widest patch (KH·KW·C) the forward pass reads in
	// one call per window: w's 64-filter slice (256 KiB) stays in L2.
	windowMaxK = 1024
	// implicitChunkPanels caps the 6-row panels of one forward chunk.
	implicitChunkPanels = 16
	// implicitDataRows is the most output rows a backward-data chunk
	// takes (it always takes at least one whole image).
	implicitDataRows = 256
	// gatherRows is the reduction depth of one gather-kernel call.
	gatherRows = 64
)

// zeroRow is read (never written) in place of the input outside the image.
var zeroRow [implicitKC]float32

// implicitFwd reports whether the forward pass runs on the implicit
// kernels with micro-kernel kr.
func (s ConvShape) implicitFwd(kr *gemmKernel) bool {
	return asmConvOK(kr) && s.F%inr == 0 && s.C >= 16
}

// implicitData reports whether backward-data runs on the implicit kernels.
func (s ConvShape) implicitData(kr *gemmKernel) bool {
	return asmConvOK(kr) && s.C%inr == 0
}

// implicitFilter reports whether backward-filter runs on the gather kernel.
func (s ConvShape) implicitFilter(kr *gemmKernel) bool {
	return asmConvOK(kr) && s.F%inr == 0 && s.C >= 16
}

// implicitChunkRows returns the rows of one forward chunk: whole 6-row
// panels, at most implicitChunkPanels of them, and at least two chunks when
// there are two panels. It depends on the shape alone.
func implicitChunkRows(rows int) int {
	panels := (rows + imr - 1) / imr
	chunks := max((panels+implicitChunkPanels-1)/implicitChunkPanels, min(panels, 2))
	return (panels + chunks - 1) / chunks * imr
}

// checkLens panics (like an index out of range) when a slice is shorter
// than s needs, so that the kernels' pointers stay inside them.
func (s ConvShape) checkLens(x, w, y []float32) {
	if s.N*s.OutH*s.OutW*s.F == 0 {
		return // nothing is read or written
	}
	_ = x[s.N*s.H*s.W*s.C-1]
	_ = w[s.KH*s.KW*s.C*s.F-1]
	_ = y[s.N*s.OutH*s.OutW*s.F-1]
}

// origins fills l.org with (offset of the window's top-left input pixel,
// times C; its row; its column) for output rows lo..hi-1; the pixel may
// lie outside the image where there is padding.
func (l *convLocal) origins(s ConvShape, lo, hi int) []int {
	org := l.org[:3*(hi-lo)]
	pix := s.OutH * s.OutW
	n, rem := lo/pix, lo%pix
	oh, ow := rem/s.OutW, rem%s.OutW
	for i := 0; i < hi-lo; i++ {
		ih0, iw0 := oh*s.StrideH-s.PadTop, ow*s.StrideW-s.PadLeft
		o := org[3*i : 3*i+3 : 3*i+3]
		o[0], o[1], o[2] = ((n*s.H+ih0)*s.W+iw0)*s.C, ih0, iw0
		if ow++; ow == s.OutW {
			ow = 0
			if oh++; oh == s.OutH {
				oh = 0
				n++
			}
		}
	}
	return org
}

func (cw *convWork) growImplicit(workers, rows int) {
	for len(cw.wk) < workers {
		cw.wk = append(cw.wk, convLocal{})
	}
	for w := 0; w < workers; w++ {
		l := &cw.wk[w]
		if len(l.org) < 3*rows {
			l.org = make([]int, 3*rows)
		}
		if len(l.list) < 2*gatherRows {
			l.list = make([]int, 2*gatherRows)
		}
	}
}

// implicitFwdChunk computes output rows [t·chunk, (t+1)·chunk) on worker w,
// 6-row panel by panel: a panel whose windows all lie inside the image is
// one call over the whole window (KH runs of KW·C contiguous floats, with
// all of w, up to windowMaxK·64 floats, streamed from L2), others one call
// per tap and channel block, reading zeros outside the image.
func (j *convJob) implicitFwdChunk(w, t int) {
	s := j.s
	lo, hi := j.rowsOf(t)
	l := &j.cw.wk[w]
	org := l.origins(s, lo, hi)
	var a, c [imr]*float32
	run := s.KW * s.C
	win := s.patchCols() <= windowMaxK
	step := (s.W*s.C - run) * 4
	for f0 := 0; f0 < s.F; f0 += inr {
		for r0 := lo; r0 < hi; r0 += imr {
			inside := win
			for i := range imr {
				r := r0 + i
				if r >= hi {
					c[i] = &l.tile[i*inr]
					continue
				}
				o := org[3*(r-lo) : 3*(r-lo)+3 : 3*(r-lo)+3]
				if o[1] < 0 || o[1]+s.KH > s.H || o[2] < 0 || o[2]+s.KW > s.W {
					inside = false
				}
				c[i] = &j.y[r*s.F+f0]
			}
			if inside {
				for i := range imr {
					if r := r0 + i; r < hi {
						a[i] = &j.x[org[3*(r-lo)]]
					} else {
						a[i] = a[0]
					}
				}
				rowsKernel(j.kern, run, s.KH, step, &a, &j.w[f0], s.F, &c, false, j.biasAt(f0), j.relu)
				continue
			}
			for tap := 0; tap < s.KH*s.KW; tap++ {
				ky, kx := tap/s.KW, tap%s.KW
				toff := (ky*s.W + kx) * s.C
				for c0 := 0; c0 < s.C; c0 += implicitKC {
					for i := range imr {
						a[i] = &zeroRow[0]
						if r := r0 + i; r < hi {
							o := org[3*(r-lo) : 3*(r-lo)+3 : 3*(r-lo)+3]
							if uint(o[1]+ky) < uint(s.H) && uint(o[2]+kx) < uint(s.W) {
								a[i] = &j.x[o[0]+toff+c0]
							}
						}
					}
					var bias []float32
					relu := false
					if tap == s.KH*s.KW-1 && c0+implicitKC >= s.C {
						bias, relu = j.biasAt(f0), j.relu // the last call of the panel
					}
					rowsKernel(j.kern, min(implicitKC, s.C-c0), 1, 0, &a, &j.w[(tap*s.C+c0)*s.F+f0], s.F, &c, tap > 0 || c0 > 0, bias, relu)
				}
			}
		}
	}
	j.poolChunk(w, t, j.y, 0)
}

// implicitDataImages returns the images of one backward-data chunk.
func (s ConvShape) implicitDataImages() int {
	return max(1, implicitDataRows/max(1, s.OutH*s.OutW))
}

// implicitDataChunk computes dx (j.y) for images [t·chunk, (t+1)·chunk)
// from dy (j.x) and the per-tap transposed filter wt (j.w, tap-major,
// F×C per tap) on worker w.
func (j *convJob) implicitDataChunk(w, t int) {
	s := j.s
	pix := s.OutH * s.OutW
	n0 := t * j.chunk
	n1 := min(n0+j.chunk, s.N)
	img := s.H * s.W * s.C
	clear(j.y[n0*img : n1*img])
	lo, hi := n0*pix, n1*pix
	l := &j.cw.wk[w]
	org := l.origins(s, lo, hi)
	var a, c [imr]*float32
	for c0 := 0; c0 < s.C; c0 += inr {
		for tap := 0; tap < s.KH*s.KW; tap++ {
			ky, kx := tap/s.KW, tap%s.KW
			toff := (ky*s.W + kx) * s.C
			for f0 := 0; f0 < s.F; f0 += implicitKC {
				kc := min(implicitKC, s.F-f0)
				b := &j.w[(tap*s.F+f0)*s.C+c0]
				for r0 := lo; r0 < hi; r0 += imr {
					for i := range imr {
						r := r0 + i
						if r >= hi {
							a[i], c[i] = &zeroRow[0], &l.tile[i*inr]
							continue
						}
						o := org[3*(r-lo) : 3*(r-lo)+3 : 3*(r-lo)+3]
						a[i] = &j.x[r*s.F+f0]
						if uint(o[1]+ky) < uint(s.H) && uint(o[2]+kx) < uint(s.W) {
							c[i] = &j.y[o[0]+toff+c0]
						} else {
							c[i] = &l.tile[i*inr]
						}
					}
					rowsKernel(j.kern, kc, 1, 0, &a, b, s.C, &c, true, nil, false)
				}
			}
		}
	}
}

// gatherFilterChunk computes the partial filter gradient of rows
// [t·chunk, (t+1)·chunk) on worker w: in blocks of gatherRows rows, for
// each tap, the (input pixel, output pixel) pairs that tap reads, then the
// gather kernel over 6-channel × 64-filter tiles.
func (j *convJob) gatherFilterChunk(w, t int) {
	s := j.s
	kf := s.patchCols() * s.F
	lo := t * j.chunk
	hi := min(lo+j.chunk, j.rows)
	dst := j.part[t*kf : t*kf+kf]
	clear(dst)
	l := &j.cw.wk[w]
	for b0 := lo; b0 < hi; b0 += gatherRows {
		b1 := min(b0+gatherRows, hi)
		org := l.origins(s, b0, b1)
		for tap := 0; tap < s.KH*s.KW; tap++ {
			ky, kx := tap/s.KW, tap%s.KW
			toff := (ky*s.W + kx) * s.C
			list := l.list[:2*(b1-b0)]
			nv := 0
			for r := b0; r < b1; r++ {
				o := org[3*(r-b0) : 3*(r-b0)+3 : 3*(r-b0)+3]
				if uint(o[1]+ky) < uint(s.H) && uint(o[2]+kx) < uint(s.W) {
					list[2*nv], list[2*nv+1] = o[0]+toff, r*s.F
					nv++
				}
			}
			if nv == 0 {
				continue
			}
			for f0 := 0; f0 < s.F; f0 += inr {
				for c0 := 0; c0 < s.C; c0 += imr {
					mr := min(imr, s.C-c0)
					gatherKernel(j.kern, mr, nv, list, &j.x[c0], &j.y[f0], &dst[(tap*s.C+c0)*s.F+f0], s.F, true)
				}
			}
		}
	}
}
