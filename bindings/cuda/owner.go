package cuda

// The owner goroutine behind Context, with no build tag and no driver
// calls, so that its tests run on hosts without a GPU.

import "errors"

// ErrClosed is returned by calls on a closed Context.
var ErrClosed = errors.New("cuda: context is closed")

// owner runs the functions sent to it one at a time on the goroutine that
// runs serve. Its channels are never closed: once a call has shut it down,
// serve returns, its goroutine closes done, and every later call (on any
// goroutine, even one racing with the shutdown) gets ErrClosed. Closing
// calls instead, as Context once did, made a call that raced with Close or
// came after it panic (a send on a closed channel).
type owner struct {
	calls  chan func()
	done   chan struct{} // closed by the owner goroutine when it ends
	closed bool          // only read and written on the owner goroutine
}

func newOwner() owner { return owner{calls: make(chan func()), done: make(chan struct{})} }

// serve runs calls until one of them shuts the owner down. The goroutine
// that calls it closes done after it returns (or without calling it, when
// it fails to start).
func (o *owner) serve() {
	for !o.closed {
		(<-o.calls)()
	}
}

// do runs f on the owner goroutine and returns its error, or ErrClosed.
func (o *owner) do(f func() error) error {
	var err error
	ran := make(chan struct{})
	select {
	case <-o.done:
		return ErrClosed
	case o.calls <- func() {
		if o.closed {
			err = ErrClosed
		} else {
			err = f()
		}
		close(ran)
	}:
	}
	<-ran
	return err
}

// shutdown runs f on the owner goroutine as its last call and waits for the
// goroutine to end. Later calls, shutdown included, do nothing: shutdown
// returns nil and every other call ErrClosed.
func (o *owner) shutdown(f func() error) error {
	last := false
	err := o.do(func() error {
		last = true
		o.closed = true
		return f()
	})
	if !last {
		return nil
	}
	<-o.done
	return err
}
