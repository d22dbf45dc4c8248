package backendtest

import (
	"math"

	"github.com/kiln-ml/kiln/backend"
)

// naive is a test-only reference backend: float32 storage, direct loops,
// float32 arithmetic where a real backend would use it. It exists to
// validate the suite itself.
type naive struct {
	name  string
	stats backend.Stats
	// dirtyPool, when set, recycles freed storage without clearing it (a
	// deliberate bug for TestSuiteCatchesBugs).
	dirtyPool bool
	// leakyFree, when set, makes Free forget to update the stats (a bug).
	leakyFree bool
	pool      map[int][][]float32
}

type nbuf struct {
	d     []float32
	owner *naive
	freed bool
}

func (b *nbuf) Len() int { return len(b.d) }

func (b *nbuf) Free() {
	if b.freed {
		return
	}
	b.freed = true
	o := b.owner
	if !o.leakyFree {
		o.stats.LiveBuffers--
		o.stats.LiveElements -= int64(len(b.d))
	}
	if o.dirtyPool {
		o.pool[len(b.d)] = append(o.pool[len(b.d)], b.d)
	}
}

func newNaive() *naive { return &naive{name: "naive", pool: map[int][][]float32{}} }

func (n *naive) Name() string { return n.name }

func (n *naive) Device() backend.DeviceInfo {
	return backend.DeviceInfo{Backend: n.name, Name: "test reference", ComputeUnits: 1}
}

func (n *naive) Ops() []string { return backend.AllOps() }

func (n *naive) Stats() backend.Stats { return n.stats }

func (n *naive) Close() error { return nil }

func (n *naive) Sync() error { return nil }

func (n *naive) Alloc(size int) (backend.Buffer, error) {
	if size < 0 {
		return nil, backend.ShapeError(n.name, backend.OpAlloc, "negative size %d", size)
	}
	var d []float32
	if p := n.pool[size]; n.dirtyPool && len(p) > 0 {
		d, n.pool[size] = p[len(p)-1], p[:len(p)-1]
	} else {
		d = make([]float32, size)
	}
	n.stats.LiveBuffers++
	n.stats.LiveElements += int64(size)
	n.stats.Allocs++
	return &nbuf{d: d, owner: n}, nil
}

func data(b backend.Buffer) []float32 { return b.(*nbuf).d }

func (n *naive) need(op string, reqs ...backend.Req) error { return backend.Need(n.name, op, reqs...) }

func (n *naive) positive(op string, sizes map[string]int) error {
	return backend.Positive(n.name, op, sizes)
}

func (n *naive) Upload(dst backend.Buffer, src []float32) error {
	if err := n.need(backend.OpUpload, backend.Req{Name: "dst", Buf: dst, N: len(src)}); err != nil {
		return err
	}
	copy(data(dst), src)
	return nil
}

func (n *naive) Download(dst []float32, src backend.Buffer) error {
	if err := n.need(backend.OpDownload, backend.Req{Name: "src", Buf: src, N: len(dst)}); err != nil {
		return err
	}
	copy(dst, data(src))
	return nil
}

func (n *naive) Fill(dst backend.Buffer, size int, v float32) error {
	if err := n.positive(backend.OpFill, map[string]int{"n": size}); err != nil {
		return err
	}
	if err := n.need(backend.OpFill, backend.Req{Name: "dst", Buf: dst, N: size}); err != nil {
		return err
	}
	d := data(dst)
	for i := 0; i < size; i++ {
		d[i] = v
	}
	return nil
}

func (n *naive) Copy(dst, src backend.Buffer, size int) error {
	if err := n.positive(backend.OpCopy, map[string]int{"n": size}); err != nil {
		return err
	}
	if err := n.need(backend.OpCopy, backend.Req{Name: "dst", Buf: dst, N: size}, backend.Req{Name: "src", Buf: src, N: size}); err != nil {
		return err
	}
	copy(data(dst)[:size], data(src)[:size])
	return nil
}

func (n *naive) Gemm(transA, transB bool, m, nn, k int, alpha float32, a, b backend.Buffer, beta float32, c backend.Buffer) error {
	if err := n.positive(backend.OpGemm, map[string]int{"m": m, "n": nn, "k": k}); err != nil {
		return err
	}
	if err := n.need(backend.OpGemm, backend.Req{Name: "A", Buf: a, N: m * k}, backend.Req{Name: "B", Buf: b, N: k * nn},
		backend.Req{Name: "C", Buf: c, N: m * nn, Out: true}); err != nil {
		return err
	}
	A, B, C := data(a), data(b), data(c)
	for i := 0; i < m; i++ {
		for j := 0; j < nn; j++ {
			var s float32
			for p := 0; p < k; p++ {
				av, bv := A[i*k+p], B[p*nn+j]
				if transA {
					av = A[p*m+i]
				}
				if transB {
					bv = B[j*k+p]
				}
				s += av * bv
			}
			if beta == 0 {
				C[i*nn+j] = alpha * s
			} else {
				C[i*nn+j] = alpha*s + beta*C[i*nn+j]
			}
		}
	}
	return nil
}

func (n *naive) convCheck(op string, p backend.ConvParams, reqs ...backend.Req) error {
	if err := p.Validate(n.name, op); err != nil {
		return err
	}
	return n.need(op, reqs...)
}

// convLoop calls f(xi, wi, yi) for every contributing triple.
func convLoop(p backend.ConvParams, f func(xi, wi, yi int)) {
	for b := 0; b < p.N; b++ {
		for oy := 0; oy < p.OutH; oy++ {
			for ox := 0; ox < p.OutW; ox++ {
				for ky := 0; ky < p.KH; ky++ {
					iy := oy*p.StrideH + ky - p.PadTop
					if iy < 0 || iy >= p.H {
						continue
					}
					for kx := 0; kx < p.KW; kx++ {
						ix := ox*p.StrideW + kx - p.PadLeft
						if ix < 0 || ix >= p.W {
							continue
						}
						for c := 0; c < p.C; c++ {
							for f2 := 0; f2 < p.F; f2++ {
								f(((b*p.H+iy)*p.W+ix)*p.C+c, ((ky*p.KW+kx)*p.C+c)*p.F+f2, ((b*p.OutH+oy)*p.OutW+ox)*p.F+f2)
							}
						}
					}
				}
			}
		}
	}
}

func (n *naive) Conv2D(p backend.ConvParams, x, w, y backend.Buffer) error {
	if err := n.convCheck(backend.OpConv2D, p, backend.Req{Name: "x", Buf: x, N: p.InLen()},
		backend.Req{Name: "w", Buf: w, N: p.FilterLen()}, backend.Req{Name: "y", Buf: y, N: p.OutLen(), Out: true}); err != nil {
		return err
	}
	X, W, Y := data(x), data(w), data(y)
	clear(Y[:p.OutLen()])
	convLoop(p, func(xi, wi, yi int) { Y[yi] += X[xi] * W[wi] })
	return nil
}

func (n *naive) Conv2DBackwardData(p backend.ConvParams, dy, w, dx backend.Buffer) error {
	if err := n.convCheck(backend.OpConv2DBackwardData, p, backend.Req{Name: "dy", Buf: dy, N: p.OutLen()},
		backend.Req{Name: "w", Buf: w, N: p.FilterLen()}, backend.Req{Name: "dx", Buf: dx, N: p.InLen(), Out: true}); err != nil {
		return err
	}
	DY, W, DX := data(dy), data(w), data(dx)
	clear(DX[:p.InLen()])
	convLoop(p, func(xi, wi, yi int) { DX[xi] += DY[yi] * W[wi] })
	return nil
}

func (n *naive) Conv2DBackwardFilter(p backend.ConvParams, x, dy, dw backend.Buffer) error {
	if err := n.convCheck(backend.OpConv2DBackwardFilter, p, backend.Req{Name: "x", Buf: x, N: p.InLen()},
		backend.Req{Name: "dy", Buf: dy, N: p.OutLen()}, backend.Req{Name: "dw", Buf: dw, N: p.FilterLen(), Out: true}); err != nil {
		return err
	}
	X, DY, DW := data(x), data(dy), data(dw)
	clear(DW[:p.FilterLen()])
	convLoop(p, func(xi, wi, yi int) { DW[wi] += X[xi] * DY[yi] })
	return nil
}

func (n *naive) poolCheck(op string, p backend.PoolParams, reqs ...backend.Req) error {
	if err := p.Validate(n.name, op); err != nil {
		return err
	}
	return n.need(op, reqs...)
}

func (n *naive) MaxPool2D(p backend.PoolParams, x, y, argmax backend.Buffer) error {
	if err := n.poolCheck(backend.OpMaxPool2D, p, backend.Req{Name: "x", Buf: x, N: p.InLen()},
		backend.Req{Name: "y", Buf: y, N: p.OutLen(), Out: true}, backend.Req{Name: "argmax", Buf: argmax, N: p.OutLen(), Out: true}); err != nil {
		return err
	}
	X, Y, A := data(x), data(y), data(argmax)
	for b := 0; b < p.N; b++ {
		for oy := 0; oy < p.OutH; oy++ {
			for ox := 0; ox < p.OutW; ox++ {
				for c := 0; c < p.C; c++ {
					best, bi := float32(0), -1
					for ky := 0; ky < p.KH; ky++ {
						for kx := 0; kx < p.KW; kx++ {
							v := X[((b*p.H+oy*p.StrideH+ky)*p.W+ox*p.StrideW+kx)*p.C+c]
							if bi < 0 || v > best {
								best, bi = v, ky*p.KW+kx
							}
						}
					}
					o := ((b*p.OutH+oy)*p.OutW+ox)*p.C + c
					Y[o], A[o] = best, float32(bi)
				}
			}
		}
	}
	return nil
}

func (n *naive) MaxPool2DBackward(p backend.PoolParams, dy, argmax, dx backend.Buffer) error {
	if err := n.poolCheck(backend.OpMaxPool2DBackward, p, backend.Req{Name: "dy", Buf: dy, N: p.OutLen()},
		backend.Req{Name: "argmax", Buf: argmax, N: p.OutLen()}, backend.Req{Name: "dx", Buf: dx, N: p.InLen(), Out: true}); err != nil {
		return err
	}
	DY, A, DX := data(dy), data(argmax), data(dx)
	clear(DX[:p.InLen()])
	for b := 0; b < p.N; b++ {
		for oy := 0; oy < p.OutH; oy++ {
			for ox := 0; ox < p.OutW; ox++ {
				for c := 0; c < p.C; c++ {
					o := ((b*p.OutH+oy)*p.OutW+ox)*p.C + c
					a, ok := windowOffset(A[o], p.KH*p.KW)
					if !ok {
						continue
					}
					DX[((b*p.H+oy*p.StrideH+a/p.KW)*p.W+ox*p.StrideW+a%p.KW)*p.C+c] += DY[o]
				}
			}
		}
	}
	return nil
}

func (n *naive) BiasAdd(x, bias backend.Buffer, rows, cols int) error {
	if err := n.positive(backend.OpBiasAdd, map[string]int{"rows": rows, "cols": cols}); err != nil {
		return err
	}
	if err := n.need(backend.OpBiasAdd, backend.Req{Name: "x", Buf: x, N: rows * cols}, backend.Req{Name: "bias", Buf: bias, N: cols}); err != nil {
		return err
	}
	X, B := data(x), data(bias)
	for i := 0; i < rows*cols; i++ {
		X[i] += B[i%cols]
	}
	return nil
}

func (n *naive) BiasGrad(dy, db backend.Buffer, rows, cols int) error {
	if err := n.positive(backend.OpBiasGrad, map[string]int{"rows": rows, "cols": cols}); err != nil {
		return err
	}
	if err := n.need(backend.OpBiasGrad, backend.Req{Name: "dy", Buf: dy, N: rows * cols}, backend.Req{Name: "db", Buf: db, N: cols, Out: true}); err != nil {
		return err
	}
	DY, DB := data(dy), data(db)
	for c := 0; c < cols; c++ {
		var s float32
		for r := 0; r < rows; r++ {
			s += DY[r*cols+c]
		}
		DB[c] = s
	}
	return nil
}

func (n *naive) elem(op string, size int, names string, bufs ...backend.Buffer) error {
	if err := n.positive(op, map[string]int{"n": size}); err != nil {
		return err
	}
	reqs := make([]backend.Req, len(bufs))
	for i, b := range bufs {
		reqs[i] = backend.Req{Name: names[i : i+1], Buf: b, N: size}
	}
	return n.need(op, reqs...)
}

func (n *naive) ReLU(x, y backend.Buffer, size int) error {
	if err := n.elem(backend.OpReLU, size, "xy", x, y); err != nil {
		return err
	}
	X, Y := data(x), data(y)
	for i := 0; i < size; i++ {
		Y[i] = max(X[i], 0)
	}
	return nil
}

func (n *naive) ReLUBackward(y, dy, dx backend.Buffer, size int) error {
	if err := n.elem(backend.OpReLUBackward, size, "ydx", y, dy, dx); err != nil {
		return err
	}
	Y, DY, DX := data(y), data(dy), data(dx)
	for i := 0; i < size; i++ {
		if Y[i] > 0 {
			DX[i] = DY[i]
		} else {
			DX[i] = 0
		}
	}
	return nil
}

func (n *naive) Mul(a, b, c backend.Buffer, size int) error {
	if err := n.elem(backend.OpMul, size, "abc", a, b, c); err != nil {
		return err
	}
	A, B, C := data(a), data(b), data(c)
	for i := 0; i < size; i++ {
		C[i] = A[i] * B[i]
	}
	return nil
}

func (n *naive) DropoutMask(mask backend.Buffer, size int, rate float32, seed uint64) error {
	if err := n.elem(backend.OpDropoutMask, size, "m", mask); err != nil {
		return err
	}
	M := data(mask)
	keep := 1 / (1 - rate)
	for i := 0; i < size; i++ {
		if backend.DropoutKeep(seed, i, rate) {
			M[i] = keep
		} else {
			M[i] = 0
		}
	}
	return nil
}

func (n *naive) Softmax(x, y backend.Buffer, rows, cols int) error {
	if err := n.positive(backend.OpSoftmax, map[string]int{"rows": rows, "cols": cols}); err != nil {
		return err
	}
	if err := n.need(backend.OpSoftmax, backend.Req{Name: "x", Buf: x, N: rows * cols}, backend.Req{Name: "y", Buf: y, N: rows * cols}); err != nil {
		return err
	}
	X, Y := data(x), data(y)
	for r := 0; r < rows; r++ {
		softmaxRow(X[r*cols:(r+1)*cols], Y[r*cols:(r+1)*cols])
	}
	return nil
}

func softmaxRow(x, y []float32) {
	mx := x[0]
	for _, v := range x {
		mx = max(mx, v)
	}
	var s float32
	for j, v := range x {
		y[j] = float32(math.Exp(float64(v - mx)))
		s += y[j]
	}
	for j := range y {
		y[j] /= s
	}
}

func (n *naive) SoftmaxCrossEntropy(logits, labels backend.Buffer, rows, cols int, grad, stats backend.Buffer) error {
	op := backend.OpSoftmaxCrossEntropy
	if err := n.positive(op, map[string]int{"rows": rows, "cols": cols}); err != nil {
		return err
	}
	if err := n.need(op, backend.Req{Name: "logits", Buf: logits, N: rows * cols}, backend.Req{Name: "labels", Buf: labels, N: rows},
		backend.Req{Name: "grad", Buf: grad, N: rows * cols, Out: true}, backend.Req{Name: "stats", Buf: stats, N: 2, Out: true}); err != nil {
		return err
	}
	X, L, G, S := data(logits), data(labels), data(grad), data(stats)
	var loss, correct float32
	for r := 0; r < rows; r++ {
		x, g := X[r*cols:(r+1)*cols], G[r*cols:(r+1)*cols]
		lab := int(L[r])
		am := 0
		for j, v := range x {
			if v > x[am] {
				am = j
			}
		}
		if am == lab {
			correct++
		}
		var s float64
		for _, v := range x {
			s += math.Exp(float64(v - x[am]))
		}
		loss += float32(math.Log(s)) - (x[lab] - x[am])
		softmaxRow(x, g)
		g[lab]--
		for j := range g {
			g[j] /= float32(rows)
		}
	}
	S[0], S[1] = loss, correct
	return nil
}

func (n *naive) Adam(p backend.AdamParams, param, grad, m, v backend.Buffer, size int) error {
	if err := n.elem(backend.OpAdam, size, "pgmv", param, grad, m, v); err != nil {
		return err
	}
	P, G, M, V := data(param), data(grad), data(m), data(v)
	t := float64(p.Step)
	lr := float32(float64(p.LR) * math.Sqrt(1-math.Pow(float64(p.Beta2), t)) / (1 - math.Pow(float64(p.Beta1), t)))
	for i := 0; i < size; i++ {
		g := G[i]
		M[i] += (g - M[i]) * (1 - p.Beta1)
		V[i] += (g*g - V[i]) * (1 - p.Beta2)
		P[i] -= lr * M[i] / (float32(math.Sqrt(float64(V[i]))) + p.Eps)
	}
	return nil
}

func (n *naive) SGD(p backend.SGDParams, param, grad, vel backend.Buffer, size int) error {
	if err := n.elem(backend.OpSGD, size, "pgv", param, grad, vel); err != nil {
		return err
	}
	P, G, V := data(param), data(grad), data(vel)
	for i := 0; i < size; i++ {
		V[i] = p.Momentum*V[i] - p.LR*G[i]
		P[i] += V[i]
	}
	return nil
}
