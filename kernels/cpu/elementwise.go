package cpu

import "math"

// ewGrain is the chunk size of parallel element-wise loops; smaller loops
// run serially.
const ewGrain = 1 << 16

// parallel runs fn over [0, n) in chunks of ewGrain, serially when small.
func parallel(p *Pool, n int, a *args, fn func(a *args, w, lo, hi int)) {
	p.run(n, ewGrain, a, fn)
}

// Fill sets every element of dst to v.
func Fill(p *Pool, dst []float32, v float32) {
	if p.serial(len(dst), ewGrain) {
		fillRange(dst, v)
		return
	}
	a := p.args()
	a.s[0], a.f[0] = dst, v
	parallel(p, len(dst), a, func(a *args, _, lo, hi int) { fillRange(a.s[0][lo:hi], a.f[0]) })
}

func fillRange(dst []float32, v float32) {
	if v == 0 {
		clear(dst)
		return
	}
	for i := range dst {
		dst[i] = v
	}
}

// Copy copies src into dst (len(dst) elements).
func Copy(p *Pool, dst, src []float32) {
	if p.serial(len(dst), ewGrain) {
		copy(dst, src)
		return
	}
	a := p.args()
	a.s[0], a.s[1] = dst, src
	parallel(p, len(dst), a, func(a *args, _, lo, hi int) { copy(a.s[0][lo:hi], a.s[1][lo:hi]) })
}

// ReLU sets y[i] = max(x[i], 0) for i < len(y); x and y may be the same
// slice.
func ReLU(p *Pool, x, y []float32) {
	if p.serial(len(y), ewGrain) {
		reluRange(x[:len(y)], y)
		return
	}
	a := p.args()
	a.s[0], a.s[1] = x, y
	parallel(p, len(y), a, func(a *args, _, lo, hi int) { reluRange(a.s[0][lo:hi], a.s[1][lo:hi]) })
}

// reluRange is branch-free (the sign of activations is random, so a branch
// mispredicts half the time): the comparison becomes an all-ones or zero
// mask that selects v or +0. NaN compares false and gives 0.
func reluRange(x, y []float32) {
	x = x[:len(y)]
	done := reluVec(x, y)
	x, y = x[done:], y[done:]
	for i, v := range x {
		y[i] = math.Float32frombits(math.Float32bits(v) & gtZeroMask(v))
	}
}

// gtZeroMask returns all ones when v > 0 and zero otherwise, without a
// branch.
func gtZeroMask(v float32) uint32 {
	var b uint32
	if v > 0 {
		b = 1
	}
	return -b
}

// ReLUBackward sets dx[i] = dy[i] where y[i] > 0, else 0, for i < len(dx).
func ReLUBackward(p *Pool, y, dy, dx []float32) {
	if p.serial(len(dx), ewGrain) {
		reluBackRange(y, dy, dx)
		return
	}
	a := p.args()
	a.s[0], a.s[1], a.s[2] = y, dy, dx
	parallel(p, len(dx), a, func(a *args, _, lo, hi int) {
		reluBackRange(a.s[0][lo:hi], a.s[1][lo:hi], a.s[2][lo:hi])
	})
}

func reluBackRange(y, dy, dx []float32) {
	y = y[:len(dx)]
	dy = dy[:len(dx)]
	done := reluBackVec(y, dy, dx)
	y, dy, dx = y[done:], dy[done:], dx[done:]
	for i, v := range y {
		dx[i] = math.Float32frombits(math.Float32bits(dy[i]) & gtZeroMask(v))
	}
}

// Mul sets c[i] = a[i]·b[i] for i < len(c).
func Mul(p *Pool, a, b, c []float32) {
	if p.serial(len(c), ewGrain) {
		mulRange(a, b, c)
		return
	}
	ar := p.args()
	ar.s[0], ar.s[1], ar.s[2] = a, b, c
	parallel(p, len(c), ar, func(ar *args, _, lo, hi int) {
		mulRange(ar.s[0][lo:hi], ar.s[1][lo:hi], ar.s[2][lo:hi])
	})
}

func mulRange(a, b, c []float32) {
	a = a[:len(c)]
	b = b[:len(c)]
	for i, v := range a {
		c[i] = v * b[i]
	}
}

// BiasAdd adds bias[c] to x[r·cols+c] for r < rows, in place.
func BiasAdd(p *Pool, x, bias []float32, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	grain := max(1, ewGrain/cols)
	if p.serial(rows, grain) {
		biasAddRows(x, bias, cols, 0, rows)
		return
	}
	a := p.args()
	a.s[0], a.s[1], a.i[0] = x, bias, cols
	p.run(rows, grain, a, func(a *args, _, lo, hi int) { biasAddRows(a.s[0], a.s[1], a.i[0], lo, hi) })
}

func biasAddRows(x, bias []float32, cols, lo, hi int) {
	if biasAddVec(x[lo*cols:hi*cols], bias, hi-lo, cols) {
		return
	}
	bias = bias[:cols]
	for r := lo; r < hi; r++ {
		row := x[r*cols : r*cols+cols]
		for c, b := range bias {
			row[c] += b
		}
	}
}

// BiasGrad sets db[c] = Σ_r dy[r·cols+c], accumulating in float64. Rows
// are cut into chunks by shape alone and the chunk sums are added in order,
// so the result does not depend on the number of workers or on which worker
// ran which chunk.
func BiasGrad(p *Pool, ws *Workspace, dy, db []float32, rows, cols int) {
	biasGrad(p, ws, nil, nil, dy, db, rows, cols)
}

// ReLUBackwardBiasGrad is ReLUBackward(y, dy, dx) over rows·cols elements
// followed by BiasGrad(dx, db), fused: each chunk of rows of dx is summed
// right after it is computed, while it is in cache. The results are the
// bits of the two calls.
func ReLUBackwardBiasGrad(p *Pool, ws *Workspace, y, dy, dx, db []float32, rows, cols int) {
	n := rows * cols
	biasGrad(p, ws, y[:n], dy[:n], dx[:n], db, rows, cols)
}

// biasGrad is BiasGrad of dx; when y is not nil, it first sets each chunk
// of dx to the ReLU gradient of y and dy.
func biasGrad(p *Pool, ws *Workspace, y, dy, dx, db []float32, rows, cols int) {
	if cols <= 0 {
		return
	}
	grain := max(1, ewGrain/cols)
	chunks := max(1, (rows+grain-1)/grain)
	acc := ws.f64Buf(chunks * cols)
	clear(acc)
	if p.serial(rows, grain) {
		for t := 0; t < chunks; t++ {
			biasGradChunk(y, dy, dx, acc[t*cols:t*cols+cols], cols, t*grain, min(rows, (t+1)*grain))
		}
	} else {
		a := p.args()
		a.s[0], a.s[1], a.s[2], a.i[0], a.i[1], a.i[2] = dx, y, dy, cols, grain, rows
		a.d = acc
		p.run(chunks, 1, a, func(a *args, _, lo, hi int) {
			c, g := a.i[0], a.i[1]
			for t := lo; t < hi; t++ {
				biasGradChunk(a.s[1], a.s[2], a.s[0], a.d[t*c:t*c+c], c, t*g, min(a.i[2], (t+1)*g))
			}
		})
	}
	db = db[:cols]
	for c := range db {
		s := 0.0
		for t := 0; t < chunks; t++ {
			s += acc[t*cols+c]
		}
		db[c] = float32(s)
	}
}

// biasGradChunk adds the column sums of rows lo..hi-1 of dx to acc, after
// setting them to the ReLU gradient of y and dy when y is not nil.
func biasGradChunk(y, dy, dx []float32, acc []float64, cols, lo, hi int) {
	if y != nil {
		reluBackRange(y[lo*cols:hi*cols], dy[lo*cols:hi*cols], dx[lo*cols:hi*cols])
	}
	biasGradRows(dx, acc, cols, lo, hi)
}

func biasGradRows(dy []float32, acc []float64, cols, lo, hi int) {
	if hi > lo && biasGradVec(dy[lo*cols:hi*cols], acc, hi-lo, cols) {
		return
	}
	acc = acc[:cols]
	for r := lo; r < hi; r++ {
		row := dy[r*cols : r*cols+cols]
		for c, v := range row {
			acc[c] += float64(v)
		}
	}
}

// DropoutKeep reports whether element i is kept for the given seed and rate:
// SplitMix64 of (seed, i), top 24 bits as a uniform number in [0,1),
// compared with rate. It is bit-for-bit backend.DropoutKeep.
func DropoutKeep(seed uint64, i int, rate float32) bool {
	z := seed + uint64(i)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	u := float32(z>>40) * (1.0 / (1 << 24))
	return u >= rate
}

// DropoutMask sets mask[i] to 1/(1-rate) when DropoutKeep(seed, i, rate)
// and to 0 otherwise, for i < len(mask).
func DropoutMask(p *Pool, mask []float32, rate float32, seed uint64) {
	if p.serial(len(mask), ewGrain) {
		dropoutRange(mask, rate, seed, 0)
		return
	}
	a := p.args()
	a.s[0], a.f[0], a.u = mask, rate, seed
	parallel(p, len(mask), a, func(a *args, _, lo, hi int) { dropoutRange(a.s[0][lo:hi], a.f[0], a.u, lo) })
}

func dropoutRange(mask []float32, rate float32, seed uint64, off int) {
	scale := float32(0)
	if rate < 1 {
		scale = 1 / (1 - rate)
	}
	for i := range mask {
		if DropoutKeep(seed, off+i, rate) {
			mask[i] = scale
		} else {
			mask[i] = 0
		}
	}
}

// Softmax sets each row of y (rows×cols) to the softmax of the same row of
// x, subtracting the row maximum first.
func Softmax(p *Pool, x, y []float32, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	grain := max(1, ewGrain/(8*cols))
	if p.serial(rows, grain) {
		softmaxRows(x, y, cols, 0, rows)
		return
	}
	a := p.args()
	a.s[0], a.s[1], a.i[0] = x, y, cols
	p.run(rows, grain, a, func(a *args, _, lo, hi int) { softmaxRows(a.s[0], a.s[1], a.i[0], lo, hi) })
}

func softmaxRows(x, y []float32, cols, lo, hi int) {
	for r := lo; r < hi; r++ {
		xr := x[r*cols : r*cols+cols]
		yr := y[r*cols : r*cols+cols]
		m := xr[0]
		for _, v := range xr[1:] {
			if v > m {
				m = v
			}
		}
		sum := 0.0
		for i, v := range xr {
			e := math.Exp(float64(v - m))
			yr[i] = float32(e)
			sum += e
		}
		inv := 1 / sum
		for i, v := range yr {
			yr[i] = float32(float64(v) * inv)
		}
	}
}

// BadLabel returns the index of the first of labels[:rows] that is not an
// integer class index in [0, cols), or -1 when all are valid.
func BadLabel(labels []float32, rows, cols int) int {
	for r, l := range labels[:rows] {
		if !(l >= 0 && l < float32(cols)) || l != float32(math.Trunc(float64(l))) {
			return r
		}
	}
	return -1
}

// SoftmaxCrossEntropy writes grad = (softmax(logits) - onehot(labels))/rows
// and returns the summed loss Σ(logsumexp - logit[label]) and the number of
// rows whose first maximum is at the label. Labels must be valid (see
// BadLabel); a row with an invalid label contributes no loss and a gradient
// without the one-hot term.
func SoftmaxCrossEntropy(logits, labels, grad []float32, rows, cols int) (loss float64, correct int) {
	inv := 1 / float64(rows)
	for r := 0; r < rows; r++ {
		xr := logits[r*cols : r*cols+cols]
		gr := grad[r*cols : r*cols+cols]
		m, am := xr[0], 0
		for i, v := range xr[1:] {
			if v > m {
				m, am = v, i+1
			}
		}
		sum := 0.0
		for _, v := range xr {
			sum += math.Exp(float64(v) - float64(m))
		}
		lse := float64(m) + math.Log(sum)
		label := -1
		if l := labels[r]; l >= 0 && l < float32(cols) {
			label = int(l)
		}
		for i, v := range xr {
			pr := math.Exp(float64(v)-float64(m)) / sum
			if i == label {
				pr--
			}
			gr[i] = float32(pr * inv)
		}
		if label >= 0 {
			loss += lse - float64(xr[label])
			if am == label {
				correct++
			}
		}
	}
	return loss, correct
}

// Adam applies one Adam step (Keras semantics) to the parameters:
//
//	m = m + (g - m)(1-β1); v = v + (g² - v)(1-β2)
//	p = p - lr·sqrt(1-β2^t)/(1-β1^t) · m / (sqrt(v) + ε)
//
// over len(param) elements. step is t, starting at 1.
func Adam(p *Pool, lr, beta1, beta2, eps float32, step int, param, grad, m, v []float32) {
	t := float64(step)
	lrt := float32(float64(lr) * math.Sqrt(1-math.Pow(float64(beta2), t)) / (1 - math.Pow(float64(beta1), t)))
	if p.serial(len(param), ewGrain) {
		adamRange(lrt, 1-beta1, 1-beta2, eps, param, grad, m, v)
		return
	}
	a := p.args()
	a.s[0], a.s[1], a.s[2], a.s[3] = param, grad, m, v
	a.f = [4]float32{lrt, 1 - beta1, 1 - beta2, eps}
	parallel(p, len(param), a, func(a *args, _, lo, hi int) {
		adamRange(a.f[0], a.f[1], a.f[2], a.f[3], a.s[0][lo:hi], a.s[1][lo:hi], a.s[2][lo:hi], a.s[3][lo:hi])
	})
}

func adamRange(lrt, omb1, omb2, eps float32, param, grad, m, v []float32) {
	n := len(param)
	grad, m, v = grad[:n], m[:n], v[:n]
	done := adamVec(lrt, omb1, omb2, eps, param, grad, m, v)
	adamScalar(lrt, omb1, omb2, eps, param[done:], grad[done:], m[done:], v[done:])
}

// adamScalar is adamRange without the vector loop.
func adamScalar(lrt, omb1, omb2, eps float32, param, grad, m, v []float32) {
	n := len(param)
	grad, m, v = grad[:n], m[:n], v[:n]
	for i, g := range grad {
		mi := m[i] + (g-m[i])*omb1
		vi := v[i] + (g*g-v[i])*omb2
		m[i], v[i] = mi, vi
		param[i] -= lrt * mi / (float32(math.Sqrt(float64(vi))) + eps)
	}
}

// SGD applies one SGD-with-momentum step (Keras semantics):
// v = momentum·v - lr·g; p = p + v, over len(param) elements.
func SGD(p *Pool, lr, momentum float32, param, grad, vel []float32) {
	if p.serial(len(param), ewGrain) {
		sgdRange(lr, momentum, param, grad, vel)
		return
	}
	a := p.args()
	a.s[0], a.s[1], a.s[2] = param, grad, vel
	a.f[0], a.f[1] = lr, momentum
	parallel(p, len(param), a, func(a *args, _, lo, hi int) {
		sgdRange(a.f[0], a.f[1], a.s[0][lo:hi], a.s[1][lo:hi], a.s[2][lo:hi])
	})
}

func sgdRange(lr, momentum float32, param, grad, vel []float32) {
	n := len(param)
	grad, vel = grad[:n], vel[:n]
	for i, g := range grad {
		v := momentum*vel[i] - lr*g
		vel[i] = v
		param[i] += v
	}
}
