package cpu

// PoolShape describes a 2-D max pooling over NHWC input (no padding). Its
// fields match backend.PoolParams one for one.
type PoolShape struct {
	N, H, W, C       int
	KH, KW           int
	StrideH, StrideW int
	OutH, OutW       int
}

func poolArgs(a *args, s PoolShape) {
	a.i = [16]int{s.N, s.H, s.W, s.C, s.KH, s.KW, s.StrideH, s.StrideW, s.OutH, s.OutW}
}

func poolFromArgs(a *args) PoolShape {
	i := a.i
	return PoolShape{N: i[0], H: i[1], W: i[2], C: i[3], KH: i[4], KW: i[5],
		StrideH: i[6], StrideW: i[7], OutH: i[8], OutW: i[9]}
}

// MaxPool2DForward writes y (N·OutH·OutW·C) and argmax, the offset
// ky·KW+kx of the winner inside its window stored as float32. Ties go to the
// first element in row-major window order.
func MaxPool2DForward(p *Pool, s PoolShape, x, y, argmax []float32) {
	s.checkLens(x, y, argmax)
	rows := s.N * s.OutH
	grain := max(1, poolGrainElems/max(1, s.OutW*s.C*s.KH*s.KW))
	if p.serial(rows, grain) {
		maxPoolRows(s, x, y, argmax, 0, rows)
		return
	}
	a := p.args()
	poolArgs(a, s)
	a.s[0], a.s[1], a.s[2] = x, y, argmax
	p.run(rows, grain, a, maxPoolTask)
}

// checkLens panics (like an index out of range) when a slice is shorter
// than s needs: the row kernels slice y and argmax up to their capacity,
// so a short slice would otherwise be written past its length.
func (s PoolShape) checkLens(x, y, argmax []float32) {
	out := s.N * s.OutH * s.OutW * s.C
	if out == 0 {
		return
	}
	_ = x[s.N*s.H*s.W*s.C-1]
	_ = y[out-1]
	_ = argmax[out-1]
}

func maxPoolTask(a *args, _, lo, hi int) {
	maxPoolRows(poolFromArgs(a), a.s[0], a.s[1], a.s[2], lo, hi)
}

// poolGrainElems is about how many input elements one parallel chunk of a
// pooling pass reads; smaller passes run serially.
const poolGrainElems = 1 << 16

// maxPoolRows handles output rows lo..hi-1, a row being (n, oh).
func maxPoolRows(s PoolShape, x, y, argmax []float32, lo, hi int) {
	maxPoolRowsAt(s, x, 0, y, argmax, nil, lo, hi)
}

// maxPoolRowsAt is maxPoolRows with x holding the input from element xoff
// on (x[i] is element xoff+i), and, when argRow is not nil, every row's
// argmax written to argRow (OutW·C values) instead of argmax.
func maxPoolRowsAt(s PoolShape, x []float32, xoff int, y, argmax, argRow []float32, lo, hi int) {
	c := s.C
	if poolVec(c) && s.OutW > 0 {
		// elements from a row's first window's top-left to its last read
		span := ((s.KH-1)*s.W+(s.OutW-1)*s.StrideW+s.KW-1)*c + c
		out := s.OutW * c
		for r := lo; r < hi; r++ {
			n, oh := r/s.OutH, r%s.OutH
			first := ((n*s.H)+oh*s.StrideH)*s.W*c - xoff
			o := r * out
			arg := argRow
			if arg == nil {
				arg = argmax[o : o+out]
			}
			maxPoolRowVec(s, x[first:first+span], y[o:o+out], arg[:out])
		}
		return
	}
	for r := lo; r < hi; r++ {
		n, oh := r/s.OutH, r%s.OutH
		for ow := 0; ow < s.OutW; ow++ {
			o := ((n*s.OutH+oh)*s.OutW + ow) * c
			best := y[o : o+c]
			var arg []float32
			if argRow != nil {
				arg = argRow[ow*c : ow*c+c]
			} else {
				arg = argmax[o : o+c]
			}
			ih0, iw0 := oh*s.StrideH, ow*s.StrideW
			first := (((n*s.H)+ih0)*s.W+iw0)*c - xoff
			copy(best, x[first:first+c])
			clear(arg)
			for ky := 0; ky < s.KH; ky++ {
				for kx := 0; kx < s.KW; kx++ {
					if ky == 0 && kx == 0 {
						continue
					}
					off := (((n*s.H)+ih0+ky)*s.W+iw0+kx)*c - xoff
					src := x[off : off+c]
					idx := float32(ky*s.KW + kx)
					for i, v := range src {
						if v > best[i] {
							best[i] = v
							arg[i] = idx
						}
					}
				}
			}
		}
	}
}

// MaxPool2DBackward overwrites dx with zeros and adds each dy to the input
// element its argmax names; overlapping windows accumulate. Argmax entries
// that are not a valid window offset (an integer in [0, KH·KW)) are
// ignored.
func MaxPool2DBackward(p *Pool, s PoolShape, dy, argmax, dx []float32) {
	if p.serial(s.N, 1) {
		maxPoolBackImages(s, dy, argmax, dx, 0, s.N)
		return
	}
	a := p.args()
	poolArgs(a, s)
	a.s[0], a.s[1], a.s[2] = dy, argmax, dx
	p.run(s.N, 1, a, maxPoolBackTask)
}

func maxPoolBackTask(a *args, _, lo, hi int) {
	maxPoolBackImages(poolFromArgs(a), a.s[0], a.s[1], a.s[2], lo, hi)
}

func maxPoolBackImages(s PoolShape, dy, argmax, dx []float32, lo, hi int) {
	c := s.C
	img := s.H * s.W * c
	if poolVec(c) && s.StrideH >= s.KH && s.StrideW >= s.KW && s.OutW > 0 {
		// Windows do not overlap: every covered input element is written
		// exactly once, so only the uncovered ones need clearing.
		if s.StrideH != s.KH || s.StrideW != s.KW || s.OutH*s.KH != s.H || s.OutW*s.KW != s.W {
			clear(dx[lo*img : hi*img])
		}
		span := ((s.KH-1)*s.W+(s.OutW-1)*s.StrideW+s.KW-1)*c + c
		out := s.OutW * c
		for r := lo * s.OutH; r < hi*s.OutH; r++ {
			n, oh := r/s.OutH, r%s.OutH
			first := ((n * s.H) + oh*s.StrideH) * s.W * c
			o := r * out
			maxPoolBackRowVec(s, dy[o:o+out], argmax[o:o+out], dx[first:first+span])
		}
		return
	}
	clear(dx[lo*img : hi*img])
	win := float32(s.KH * s.KW)
	for n := lo; n < hi; n++ {
		for oh := 0; oh < s.OutH; oh++ {
			for ow := 0; ow < s.OutW; ow++ {
				o := ((n*s.OutH+oh)*s.OutW + ow) * c
				g := dy[o : o+c]
				arg := argmax[o : o+c]
				base := ((n*s.H+oh*s.StrideH)*s.W + ow*s.StrideW) * c
				for i, v := range g {
					af := arg[i]
					if !(af >= 0 && af < win) {
						continue
					}
					idx := int(af)
					if float32(idx) != af {
						continue // not a window offset (as in the vector path)
					}
					ky, kx := idx/s.KW, idx%s.KW
					dx[base+(ky*s.W+kx)*c+i] += v
				}
			}
		}
	}
}
