package server

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-ml/kiln/engine"
	"github.com/prometheus/client_golang/prometheus"
)

// Task states: queued, claimed by the batcher, abandoned by its handler.
const (
	taskQueued int32 = iota
	taskClaimed
	taskAbandoned
)

var (
	errQueueFull = errors.New("queue full")
	errDeadline  = errors.New("deadline exceeded while queued")
)

// task is one request's samples on their way through a batcher.
type task struct {
	n        int
	in       []float32 // n × inLen, already scaled
	out      []float32 // n × classes
	enq      time.Time
	deadline time.Time
	state    atomic.Int32
	done     chan error  // buffered 1
	timer    *time.Timer // the handler's deadline timer, reused with the task
	queueDur time.Duration
	compDur  time.Duration
}

// modelVersion is one loaded version of a model with its batcher. The
// batcher's worker goroutine is the only user of model, and it takes the
// server's backend lock around every backend call.
type modelVersion struct {
	name, version string
	num           int64
	path          string
	stamp         fileStamp
	model         *engine.Model
	meta          engine.ModelMeta
	h, w, c       int
	inLen         int
	classes       int
	maxBatch      int
	delay         time.Duration
	loadedAt      time.Time
	rest          func()        // Server.rest
	log           io.Writer     // Server's Config.Log
	bwait         *atomic.Int32 // Server.bwait

	queue   chan *task
	pending atomic.Int64 // accepted and not yet answered

	mu       sync.Mutex
	refs     int
	retiring bool
	idle     chan struct{} // closed once retiring with no references left

	stop, done chan struct{}

	qObs, cObs, bObs, dObs prometheus.Observer
}

// acquire takes a reference that keeps the version serving; it fails once
// the version is being retired.
func (v *modelVersion) acquire() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.retiring {
		return false
	}
	v.refs++
	return true
}

// release drops a reference taken by acquire.
func (v *modelVersion) release() {
	v.mu.Lock()
	v.refs--
	if v.retiring && v.refs == 0 {
		close(v.idle)
	}
	v.mu.Unlock()
}

// retire waits until no request holds the version, stops its worker and
// frees the model under the backend lock.
func (v *modelVersion) retire(bmu *sync.Mutex) {
	v.mu.Lock()
	v.retiring = true
	if v.refs == 0 {
		close(v.idle)
	}
	v.mu.Unlock()
	<-v.idle
	close(v.stop)
	<-v.done
	bmu.Lock()
	v.model.Close()
	bmu.Unlock()
}

// submit queues t without blocking; a full queue is errQueueFull.
func (v *modelVersion) submit(t *task) error {
	select {
	case v.queue <- t:
		v.pending.Add(1)
		return nil
	default:
		return errQueueFull
	}
}

// runInline runs t on the calling goroutine instead of the batcher when
// that changes nothing for other requests and saves the two goroutine
// hand-offs (a good part of a small model's latency at low load): the
// version batches with no delay, nothing is queued, no batcher waits for
// the backend, and the backend is free at this instant. It reports
// whether it ran t, and t's error (errDeadline when t's deadline had
// already passed, as the batcher would answer).
func (v *modelVersion) runInline(bmu *sync.Mutex, t *task) (bool, error) {
	if v.delay != 0 || len(v.queue) != 0 || v.bwait.Load() != 0 || !bmu.TryLock() {
		return false, nil
	}
	start := time.Now()
	if start.After(t.deadline) {
		bmu.Unlock()
		return true, errDeadline
	}
	err := v.predict(t.in[:t.n*v.inLen], t.n, t.out[:t.n*v.classes])
	v.restIfIdle()
	bmu.Unlock()
	v.bObs.Observe(float64(t.n))
	v.record(t, start, time.Since(start))
	return true, inferErr(err)
}

// predict runs the model on n samples; the caller holds the backend lock.
// A panic in the backend becomes an error (and a log line), so the lock
// is released and every request of the batch is answered, on the inline
// path as on the batcher's.
func (v *modelVersion) predict(images []float32, n int, probs []float32) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(v.log, "model %s: version %s: backend panic during inference of %d samples: %v\n", v.name, v.version, n, r)
			err = fmt.Errorf("backend panic: %v", r)
		}
	}()
	return v.model.Predict(images, n, probs)
}

// stopTimer stops t and drains a tick it may hold, so that a later Reset
// starts clean even under the pre-Go-1.23 timer semantics (a program
// embedding this package with an older go.mod, or GODEBUG
// asynctimerchan=1).
func stopTimer(t *time.Timer) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
}

// restIfIdle lets the backend's threads sleep when nothing is queued for
// v and no other batcher waits for the backend (the caller holds the
// backend lock and has just run a batch): at low load their wait for a
// next op that does not come would take the cores the network path needs
// to answer this request and read the next one.
func (v *modelVersion) restIfIdle() {
	if len(v.queue) == 0 {
		v.rest()
	}
}

// record sets and observes the queue and compute times of t, whose batch
// started computing at start and took comp.
func (v *modelVersion) record(t *task, start time.Time, comp time.Duration) {
	t.queueDur = start.Sub(t.enq)
	t.compDur = comp
	v.qObs.Observe(t.queueDur.Seconds())
	v.cObs.Observe(comp.Seconds())
}

// inferErr wraps a backend error from Predict for the client.
func inferErr(err error) error {
	if err != nil {
		return fmt.Errorf("inference failed: %w", err)
	}
	return nil
}

// wait blocks until t is answered or its deadline passes while it is still
// queued. It reports whether t may be reused (false when abandoned).
func (v *modelVersion) wait(t *task) (error, bool) {
	defer v.pending.Add(-1)
	d := time.Until(t.deadline)
	if d <= 0 {
		d = time.Nanosecond
	}
	if t.timer == nil {
		t.timer = time.NewTimer(d)
	} else {
		t.timer.Reset(d) // stopped and drained when last used (stopTimer)
	}
	defer stopTimer(t.timer)
	select {
	case err := <-t.done:
		return err, true
	case <-t.timer.C:
		if t.state.CompareAndSwap(taskQueued, taskAbandoned) {
			return errDeadline, false
		}
		return <-t.done, true // already in a batch: it finishes shortly
	}
}

// run is the batcher's worker: it gathers queued tasks into batches of up
// to maxBatch samples, waiting at most delay after the first, runs one
// backend call per batch and scatters the results.
func (v *modelVersion) run(bmu *sync.Mutex) {
	defer close(v.done)
	images := make([]float32, v.maxBatch*v.inLen)
	probs := make([]float32, v.maxBatch*v.classes)
	batch := make([]*task, 0, v.maxBatch)
	timer := time.NewTimer(time.Hour)
	stopTimer(timer)
	var carry *task
	for {
		var first *task
		if carry != nil {
			first, carry = carry, nil
		} else {
			select {
			case first = <-v.queue:
			case <-v.stop:
				return
			}
		}
		// Gather: pop tasks up to maxBatch samples. They are claimed only
		// once the backend is ours, so a handler whose deadline passes
		// while the batch waits for the backend (another model's batch, a
		// model loading) can still give up and answer 504 in time.
		batch = append(batch[:0], first)
		total := first.n
		until := first.enq.Add(v.delay)
	gather:
		for total < v.maxBatch {
			var t *task
			select {
			case t = <-v.queue:
			default:
				rem := time.Until(until)
				if v.delay == 0 || rem <= 0 {
					break gather
				}
				timer.Reset(rem)
				select {
				case t = <-v.queue:
					stopTimer(timer)
				case <-timer.C:
					break gather
				case <-v.stop:
					stopTimer(timer)
					break gather
				}
			}
			if total+t.n > v.maxBatch {
				carry = t
				break
			}
			batch = append(batch, t)
			total += t.n
		}
		v.bwait.Add(1)
		bmu.Lock()
		v.bwait.Add(-1)
		// Claim: keep the tasks whose handlers still wait and whose
		// deadlines have not passed, and copy their inputs in.
		start := time.Now()
		live, n := batch[:0], 0
		for _, t := range batch {
			if !t.state.CompareAndSwap(taskQueued, taskClaimed) {
				continue // abandoned by its handler: never touched again
			}
			if start.After(t.deadline) {
				t.done <- errDeadline
				continue
			}
			copy(images[n*v.inLen:], t.in[:t.n*v.inLen])
			n += t.n
			live = append(live, t)
		}
		batch = live
		if n == 0 {
			bmu.Unlock()
			continue
		}
		err := v.predict(images, n, probs)
		if carry == nil {
			v.restIfIdle()
		}
		bmu.Unlock()
		comp := time.Since(start)
		err = inferErr(err)
		v.bObs.Observe(float64(n))
		off := 0
		for _, t := range batch {
			copy(t.out[:t.n*v.classes], probs[off*v.classes:])
			off += t.n
			v.record(t, start, comp)
			t.done <- err
		}
	}
}

// warmUp sizes the model for maxBatch and runs one full batch of zeros,
// checking that the outputs are finite probabilities.
func warmUp(m *engine.Model, maxBatch int) error {
	if err := m.Setup(maxBatch); err != nil {
		return err
	}
	images := make([]float32, maxBatch*m.InputLen())
	probs := make([]float32, maxBatch*m.Classes())
	if err := m.Predict(images, maxBatch, probs); err != nil {
		return fmt.Errorf("warm-up inference: %w", err)
	}
	if nonFinite(probs) >= 0 {
		return errors.New("warm-up inference produced non-finite outputs (broken weights?)")
	}
	return nil
}
