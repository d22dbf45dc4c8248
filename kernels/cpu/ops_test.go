package cpu

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPoolFor(t *testing.T) {
	p := NewPool(4)
	defer p.Close()
	for _, tc := range []struct{ n, grain int }{{0, 1}, {1, 1}, {10, 3}, {1000, 7}, {100, 0}, {5, 100}} {
		seen := make([]int32, tc.n)
		p.For(tc.n, tc.grain, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				atomic.AddInt32(&seen[i], 1)
			}
		})
		for i, v := range seen {
			require.EqualValues(t, 1, v, "n=%d item %d", tc.n, i)
		}
	}
	p.Close()
	p.Close()
	var count int
	p.For(10, 1, func(lo, hi int) { count += hi - lo })
	assert.Equal(t, 10, count)
	var nilPool *Pool
	assert.Equal(t, 1, nilPool.Workers())
}

// TestPoolRest checks that Rest only hints: jobs after it run every item
// once (their helpers are woken, not found spinning), every helper joins
// the first job after Rest, and the next job ends the rest.
func TestPoolRest(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	for round := range 200 {
		n := 1 + round%37
		seen := make([]int32, n)
		p.For(n, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				atomic.AddInt32(&seen[i], 1)
			}
		})
		for i, v := range seen {
			require.EqualValues(t, 1, v, "round %d item %d", round, i)
		}
		if n > 1 { // a one-item job runs on the caller and leaves the helpers be
			assert.False(t, p.rest.Load(), "a job ends the rest")
		}
		if round%2 == 0 {
			p.Rest()
		}
	}
	// Each of three chunks waits until all three have started: only if
	// both helpers join the job (the caller runs one chunk) do they all
	// start; a helper missed after Rest leaves the chunks waiting.
	for range 20 {
		p.Rest()
		var started atomic.Int32
		deadline := time.Now().Add(20 * time.Second)
		p.For(3, 1, func(lo, hi int) {
			started.Add(1)
			for started.Load() < 3 && time.Now().Before(deadline) {
				runtime.Gosched()
			}
		})
		require.EqualValues(t, 3, started.Load())
		require.True(t, time.Now().Before(deadline), "a helper did not join the job after Rest")
	}
	p.Rest()
	assert.Zero(t, p.spin(p.gen.Load()), "a resting pool's helpers stop spinning")
	assert.Equal(t, p.gen.Load(), p.spin(p.gen.Load()-1), "a newer job wins over the rest")
	var nilPool *Pool
	nilPool.Rest()
	p.Close()
	p.Rest()
}

func TestMaxPool(t *testing.T) {
	s := PoolShape{N: 2, H: 5, W: 6, C: 3, KH: 3, KW: 2, StrideH: 1, StrideW: 2, OutH: 3, OutW: 3}
	r := rand.New(rand.NewPCG(1, 1))
	x := randSlice(r, s.N*s.H*s.W*s.C)
	// A tie in the first window of channel 0: (ky=1,kx=0) and (ky=2,kx=1).
	for ky := 0; ky < s.KH; ky++ {
		for kx := 0; kx < s.KW; kx++ {
			x[(ky*s.W+kx)*s.C] = -1
		}
	}
	x[(1*s.W+0)*s.C], x[(2*s.W+1)*s.C] = 0.5, 0.5
	for _, p := range []*Pool{nil, NewPool(2)} {
		y := make([]float32, s.N*s.OutH*s.OutW*s.C)
		am := make([]float32, len(y))
		MaxPool2DForward(p, s, x, y, am)
		dy := randSlice(r, len(y))
		dx := make([]float32, len(x))
		for i := range dx {
			dx[i] = 7
		}
		MaxPool2DBackward(p, s, dy, am, dx)
		want := make([]float64, len(x))
		for n := 0; n < s.N; n++ {
			for oh := 0; oh < s.OutH; oh++ {
				for ow := 0; ow < s.OutW; ow++ {
					for c := 0; c < s.C; c++ {
						best, arg, at := float32(math.Inf(-1)), -1, -1
						for ky := 0; ky < s.KH; ky++ {
							for kx := 0; kx < s.KW; kx++ {
								i := ((n*s.H+oh*s.StrideH+ky)*s.W+ow*s.StrideW+kx)*s.C + c
								if x[i] > best {
									best, arg, at = x[i], ky*s.KW+kx, i
								}
							}
						}
						o := ((n*s.OutH+oh)*s.OutW+ow)*s.C + c
						require.Equal(t, best, y[o])
						require.Equal(t, float32(arg), am[o])
						want[at] += float64(dy[o])
					}
				}
			}
		}
		for i := range want {
			require.InDelta(t, want[i], dx[i], 1e-6)
		}
		assert.Equal(t, float32(2), am[0])
		p.Close()
	}
}

func TestElementwise(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	n := 3*ewGrain + 17
	r := rand.New(rand.NewPCG(2, 2))
	a, b, c := randSlice(r, n), randSlice(r, n), make([]float32, n)
	Mul(p, a, b, c)
	for i := range c {
		require.Equal(t, a[i]*b[i], c[i])
	}
	ReLU(p, a, c)
	for i := range c {
		require.Equal(t, float32(math.Max(float64(a[i]), 0)), c[i])
	}
	ReLUBackward(p, c, b, a)
	for i := range c {
		if c[i] > 0 {
			require.Equal(t, b[i], a[i])
		} else {
			require.Zero(t, a[i])
		}
	}
	Fill(p, c, 2.5)
	for _, v := range c {
		require.Equal(t, float32(2.5), v)
	}
	Copy(p, c, b)
	require.Equal(t, b, c)
	DropoutMask(p, c, 0.25, 99)
	kept := 0
	for i, v := range c {
		if DropoutKeep(99, i, 0.25) {
			require.Equal(t, float32(1/0.75), v)
			kept++
		} else {
			require.Zero(t, v)
		}
	}
	assert.InDelta(t, 0.75, float64(kept)/float64(n), 0.02)

	rows, cols := 3000, 33
	x := randSlice(r, rows*cols)
	bias := randSlice(r, cols)
	y := append([]float32(nil), x...)
	BiasAdd(p, y, bias, rows, cols)
	for i := range y {
		require.Equal(t, x[i]+bias[i%cols], y[i])
	}
	var ws Workspace
	db := make([]float32, cols)
	BiasGrad(p, &ws, x, db, rows, cols)
	for cc := 0; cc < cols; cc++ {
		s := 0.0
		for rr := 0; rr < rows; rr++ {
			s += float64(x[rr*cols+cc])
		}
		require.InDelta(t, s, db[cc], 1e-4)
	}
}

func TestSoftmaxAndCrossEntropy(t *testing.T) {
	rows, cols := 5, 4
	logits := []float32{
		1, 2, 3, 4,
		1000, 999, 0, -5, // large values: stability
		0, 0, 0, 0, // ties: argmax is the first
		-3, 5, 5, 1,
		2, 1, 0, -1,
	}
	labels := []float32{3, 0, 0, 2, 1}
	y := make([]float32, rows*cols)
	Softmax(NewPool(1), logits, y, rows, cols)
	grad := make([]float32, rows*cols)
	loss, correct := SoftmaxCrossEntropy(logits, labels, grad, rows, cols)
	wantLoss := 0.0
	for r := 0; r < rows; r++ {
		m := 0.0
		for c := 0; c < cols; c++ {
			m = math.Max(m, float64(logits[r*cols+c]))
		}
		sum := 0.0
		for c := 0; c < cols; c++ {
			sum += math.Exp(float64(logits[r*cols+c]) - m)
		}
		rowSum := 0.0
		for c := 0; c < cols; c++ {
			pr := math.Exp(float64(logits[r*cols+c])-m) / sum
			rowSum += float64(y[r*cols+c])
			require.InDelta(t, pr, y[r*cols+c], 1e-6)
			g := pr
			if c == int(labels[r]) {
				g--
			}
			require.InDelta(t, g/float64(rows), grad[r*cols+c], 1e-6)
		}
		require.InDelta(t, 1, rowSum, 1e-5)
		wantLoss += m + math.Log(sum) - float64(logits[r*cols+int(labels[r])])
	}
	require.InDelta(t, wantLoss, loss, 1e-4)
	assert.Equal(t, 3, correct) // rows 0, 1, 2 (first max); row 3's first max is 1
	assert.Equal(t, -1, BadLabel(labels, rows, cols))
	assert.Equal(t, 1, BadLabel([]float32{0, 4}, 2, 4))
	assert.Equal(t, 0, BadLabel([]float32{-1}, 1, 4))
	assert.Equal(t, 0, BadLabel([]float32{1.5}, 1, 4))
	assert.Equal(t, 0, BadLabel([]float32{float32(math.NaN())}, 1, 4))
}

func TestOptimizers(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	n := 2*ewGrain + 5
	r := rand.New(rand.NewPCG(3, 3))
	param, grad := randSlice(r, n), randSlice(r, n)
	m, v := randSlice(r, n), randSlice(r, n)
	for i := range v {
		v[i] = float32(math.Abs(float64(v[i])))
	}
	p0, m0, v0 := append([]float32(nil), param...), append([]float32(nil), m...), append([]float32(nil), v...)
	lr, b1, b2, eps, step := 0.01, 0.9, 0.999, 1e-7, 3
	Adam(p, float32(lr), float32(b1), float32(b2), float32(eps), step, param, grad, m, v)
	lrt := lr * math.Sqrt(1-math.Pow(b2, float64(step))) / (1 - math.Pow(b1, float64(step)))
	for i := 0; i < n; i += 101 {
		g := float64(grad[i])
		mi := float64(m0[i]) + (g-float64(m0[i]))*(1-b1)
		vi := float64(v0[i]) + (g*g-float64(v0[i]))*(1-b2)
		require.InDelta(t, mi, m[i], 1e-6)
		require.InDelta(t, vi, v[i], 1e-6)
		require.InDelta(t, float64(p0[i])-lrt*mi/(math.Sqrt(vi)+eps), param[i], 1e-4)
	}
	vel := randSlice(r, n)
	p0, vel0 := append([]float32(nil), param...), append([]float32(nil), vel...)
	SGD(p, 0.1, 0.9, param, grad, vel)
	for i := 0; i < n; i += 101 {
		want := 0.9*float64(vel0[i]) - 0.1*float64(grad[i])
		require.InDelta(t, want, vel[i], 1e-6)
		require.InDelta(t, float64(p0[i])+want, param[i], 1e-6)
	}
}

func TestElementwiseNoAllocs(t *testing.T) {
	p := NewPool(0)
	defer p.Close()
	n := 4 * ewGrain
	a, b, c, d := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	var ws Workspace
	run := func() {
		ReLU(p, a, b)
		ReLUBackward(p, a, b, c)
		Mul(p, a, b, c)
		Fill(p, a, 1)
		DropoutMask(p, d, 0.5, 1)
		BiasAdd(p, a, b, n/64, 64)
		BiasGrad(p, &ws, a, b, n/64, 64)
		Softmax(p, a, b, n/64, 64)
		Adam(p, 0.1, 0.9, 0.99, 1e-7, 1, a, b, c, d)
		SGD(p, 0.1, 0.9, a, b, c)
		MaxPool2DForward(p, PoolShape{N: 8, H: 16, W: 16, C: 8, KH: 2, KW: 2, StrideH: 2, StrideW: 2, OutH: 8, OutW: 8}, a, b, c)
		MaxPool2DBackward(p, PoolShape{N: 8, H: 16, W: 16, C: 8, KH: 2, KW: 2, StrideH: 2, StrideW: 2, OutH: 8, OutW: 8}, b, c, d)
	}
	run()
	require.Zero(t, testing.AllocsPerRun(3, run))
}
