package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/kiln-ml/kiln/engine"
)

// progress shows training progress: a live bar (step, loss, accuracy,
// images/s, ETA) on a terminal, and a plain line every tenth of an epoch
// otherwise (logs, CI).
type progress struct {
	w        io.Writer
	tty      bool
	bar      *progressbar.ProgressBar
	epoch    int
	epochs   int
	samples  int
	batch    int
	start    time.Time
	nextLine int
}

func newProgress(w io.Writer, batch int) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progress{w: w, tty: tty, batch: batch}
}

// Resumed says what --resume found.
func (p *progress) Resumed(path string, found bool, done, epochs int) {
	switch {
	case !found:
		fmt.Fprintf(p.w, "no checkpoint at %s: training from the first epoch\n", path)
	case done >= epochs:
		fmt.Fprintf(p.w, "resuming from %s: all %d epochs are done, nothing left to train\n", path, epochs)
	default:
		fmt.Fprintf(p.w, "resuming from %s: %d of %d epochs done\n", path, done, epochs)
	}
}

// Interrupted ends a live bar's line, so that what follows starts on its own.
func (p *progress) Interrupted() {
	if p.tty && p.bar != nil {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) EpochStart(epoch, epochs, samples int) {
	p.epoch, p.epochs, p.samples = epoch, epochs, samples
	p.start = time.Now()
	p.nextLine = samples / 10
	if p.tty {
		p.bar = progressbar.NewOptions(samples,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", epoch, epochs)),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("img"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(24),
		)
	} else {
		fmt.Fprintf(p.w, "epoch %d/%d: %d images, batch %d\n", epoch, epochs, samples, p.batch)
	}
}

func (p *progress) Step(seen int, loss, acc float64) {
	step := (seen + p.batch - 1) / p.batch
	steps := (p.samples + p.batch - 1) / p.batch
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("epoch %d/%d step %d/%d loss %.4f acc %.4f", p.epoch, p.epochs, step, steps, loss, acc))
		_ = p.bar.Set(seen)
		return
	}
	if seen >= p.nextLine && seen < p.samples {
		el := time.Since(p.start).Seconds()
		rate := float64(seen) / el
		eta := time.Duration(float64(p.samples-seen)/rate) * time.Second
		fmt.Fprintf(p.w, "  step %d/%d  loss %.4f  acc %.4f  %.0f img/s  ETA %s\n",
			step, steps, loss, acc, rate, eta.Round(time.Second))
		p.nextLine += p.samples / 10
	}
}

func (p *progress) EpochEnd(s engine.EpochStats) {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
	line := fmt.Sprintf("epoch %d/%d done in %.1fs: loss %.4f  acc %.4f  %.0f img/s",
		s.Epoch, p.epochs, s.Seconds, s.TrainLoss, s.TrainAccuracy, s.ImagesPerSecond)
	if s.ValAccuracy != nil {
		line += fmt.Sprintf("  val_loss %.4f  val_acc %.4f", *s.ValLoss, *s.ValAccuracy)
	}
	fmt.Fprintln(p.w, line)
}

// evalProgress returns a callback for engine.EvaluateProgress that stays
// quiet for a quick evaluation and, once one has run for a few seconds
// (a slow backend, a big test set), prints a line every few seconds with
// the count, the rate and the time left.
func evalProgress(w io.Writer, total int) func(done int) {
	start := time.Now()
	next := start.Add(3 * time.Second)
	return func(done int) {
		now := time.Now()
		if now.Before(next) || done >= total {
			return
		}
		next = now.Add(5 * time.Second)
		el := now.Sub(start).Seconds()
		rate := float64(done) / el
		eta := time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second)
		fmt.Fprintf(w, "evaluating: %d/%d test images, %.0f img/s, ETA %v\n", done, total, rate, eta)
	}
}

// catchInterrupt catches the first Ctrl-C or SIGTERM and closes the
// returned channel, so that long work (an evaluation) stops between steps
// and says what it left; release stops catching (a second signal ends kiln
// at once, as does one after release).
func catchInterrupt() (stop <-chan struct{}, release func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ch, done := make(chan struct{}), make(chan struct{})
	go func() {
		select {
		case <-sigs:
			signal.Stop(sigs)
			close(ch)
		case <-done:
		}
	}()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
		})
	}
}
