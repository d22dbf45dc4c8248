package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Pool is a fixed set of worker goroutines that run parallel loops. It is
// created once (NewPool) and stopped with Close; For never spawns
// goroutines. The goroutine calling For takes part in the work, so a Pool of
// n workers starts n-1 goroutines. A Pool must be used from one goroutine at
// a time; a nil *Pool runs everything serially.
type Pool struct {
	workers int
	wake    []chan struct{}
	closed  bool

	// mu guards open and active: a helper joins the current job only while
	// it is open, and the caller closes it and waits for active helpers
	// before returning. A helper that wakes late (its thread was not
	// scheduled in time on a loaded machine) finds the job closed and goes
	// back to sleep, so the caller never waits for a thread that has no
	// work left to do.
	mu     sync.Mutex
	idle   sync.Cond
	open   bool
	active atomic.Int32
	gen    atomic.Uint64 // counts the jobs opened (see spin)
	rest   atomic.Bool   // set by Rest until the next job: helpers do not spin

	// the current job
	next   atomic.Int64
	n      int
	grain  int
	chunks int64
	fn     func(lo, hi int)
	afn    func(a *args, w, lo, hi int)
	a      *args

	// scratch arguments for the package's own parallel kernels, so they
	// can use static functions instead of allocating closures.
	scratch args
}

// args carries the operands of a parallel kernel to a static range
// function; see Pool.run.
type args struct {
	s  [6][]float32
	f  [4]float32
	i  [16]int
	u  uint64
	d  []float64
	g  *gemmJob
	cj *convJob
	kr *gemmKernel
}

// NewPool starts a pool with the given number of workers; workers <= 0
// means runtime.GOMAXPROCS(0).
func NewPool(workers int) *Pool {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	p := &Pool{workers: workers}
	p.idle.L = &p.mu
	p.wake = make([]chan struct{}, workers-1)
	for i := range p.wake {
		ch := make(chan struct{}, 1)
		p.wake[i] = ch
		go p.loop(ch, i+1)
	}
	return p
}

// Workers reports the number of workers, counting the calling goroutine; a
// nil or closed Pool has one.
func (p *Pool) Workers() int {
	if p == nil || p.closed {
		return 1
	}
	return p.workers
}

// Close stops the worker goroutines. Later calls to For run serially.
// Closing twice is a no-op.
func (p *Pool) Close() {
	if p == nil || p.closed {
		return
	}
	p.closed = true
	p.scratch = args{}
	for _, ch := range p.wake {
		close(ch)
	}
	p.wake = nil
}

func (p *Pool) loop(ch chan struct{}, w int) {
	var seen uint64
	for {
		if g := p.spin(seen); g != 0 {
			seen = g
		} else if _, ok := <-ch; !ok {
			return
		} else {
			seen = p.gen.Load()
		}
		p.mu.Lock()
		if !p.open {
			p.mu.Unlock()
			continue
		}
		p.active.Add(1)
		p.mu.Unlock()
		p.work(w)
		if p.active.Add(-1) == 0 {
			p.mu.Lock()
			p.idle.Signal()
			p.mu.Unlock()
		}
	}
}

// spinTime is how long a helper that has finished a job watches for the
// next one before it blocks, and how long the caller watches for its
// helpers to finish before it blocks: the ops of one inference or
// training step follow each other within microseconds, and putting a
// thread to sleep and waking it costs tens of them on a VM (the trade of
// OpenMP's wait policy, with a much shorter wait).
const spinTime = 50 * time.Microsecond

// Rest tells the pool that no job follows soon: helpers waiting for the
// next job sleep at once instead of spinning for up to spinTime, which
// leaves the cores to other goroutines and processes (a server's network
// handling between requests). The next job wakes them as usual. A nil
// pool ignores it.
func (p *Pool) Rest() {
	if p != nil {
		p.rest.Store(true)
	}
}

// spin watches for a job newer than generation seen for up to spinTime
// and returns its generation, or 0 when none opened or the pool was told
// to rest.
func (p *Pool) spin(seen uint64) uint64 {
	start := time.Now()
	for i := 1; ; i++ {
		if g := p.gen.Load(); g != seen {
			return g
		}
		if p.rest.Load() {
			return 0
		}
		if i%32 == 0 {
			if time.Since(start) > spinTime {
				return 0
			}
			runtime.Gosched() // let other goroutines (a server's) have the thread
		}
	}
}

// work runs chunks of the current job until none are left.
func (p *Pool) work(w int) {
	for {
		c := p.next.Add(1) - 1
		if c >= p.chunks {
			return
		}
		lo := int(c) * p.grain
		hi := min(lo+p.grain, p.n)
		if p.fn != nil {
			p.fn(lo, hi)
		} else {
			p.afn(p.a, w, lo, hi)
		}
	}
}

// For calls fn over disjoint ranges [lo, hi) that cover [0, n), each at most
// grain long, spread over the workers, and returns when all are done. When
// the work fits in one grain, or the pool has one worker, fn(0, n) runs on
// the calling goroutine. fn must be safe to call concurrently on disjoint
// ranges. grain <= 0 splits n evenly over the workers. For itself allocates
// nothing, but a closure that captures variables escapes to the heap at its
// call site; this package's kernels use static range functions instead.
func (p *Pool) For(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = p.grainFor(n, grain)
	if grain >= n {
		fn(0, n)
		return
	}
	p.fn, p.afn, p.a = fn, nil, nil
	p.dispatch(n, grain)
	p.fn = nil
}

// run is For for the package's kernels: fn is a static function and a holds
// its operands, so nothing is allocated per call. fn also receives the index
// of the worker running it, in [0, Workers()).
func (p *Pool) run(n, grain int, a *args, fn func(a *args, w, lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = p.grainFor(n, grain)
	if grain >= n {
		fn(a, 0, 0, n)
		return
	}
	p.fn, p.afn, p.a = nil, fn, a
	p.dispatch(n, grain)
	p.afn, p.a = nil, nil
}

func (p *Pool) grainFor(n, grain int) int {
	w := p.Workers()
	if w == 1 {
		return n
	}
	if grain <= 0 {
		grain = (n + w - 1) / w
	}
	return grain
}

func (p *Pool) dispatch(n, grain int) {
	p.n, p.grain = n, grain
	p.chunks = int64((n + grain - 1) / grain)
	p.next.Store(0)
	helpers := min(len(p.wake), int(p.chunks)-1)
	p.mu.Lock()
	p.open = true
	p.mu.Unlock()
	p.rest.Store(false)
	p.gen.Add(1) // spinning helpers join now; sleeping ones are woken
	for i := 0; i < helpers; i++ {
		select {
		case p.wake[i] <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	p.work(0)
	p.mu.Lock()
	p.open = false
	p.mu.Unlock()
	start := time.Now()
	for i := 1; p.active.Load() > 0; i++ {
		if i%32 == 0 && time.Since(start) > spinTime {
			p.mu.Lock()
			for p.active.Load() > 0 {
				p.idle.Wait()
			}
			p.mu.Unlock()
			break
		}
	}
}

// args returns the pool's scratch argument block, cleared. A nil pool has
// none; callers use a local block then (which is fine: a nil pool runs
// serially and nothing escapes).
func (p *Pool) args() *args {
	if p == nil {
		return nil
	}
	p.scratch = args{}
	return &p.scratch
}

// serial reports whether a loop of n items with the given grain should run
// on the calling goroutine.
func (p *Pool) serial(n, grain int) bool {
	return p.Workers() == 1 || n <= grain
}
