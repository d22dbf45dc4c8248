// The cuda build of this package links gorgonia.org/cu, whose init exits
// the test binary on a host without a GPU; the owner is pure Go and is
// tested in the default build.

//go:build !cuda

package cuda

import (
	"errors"
	"sync"
	"testing"
)

// startOwner runs an owner's goroutine as Context's loop does.
func startOwner() *owner {
	o := newOwner()
	go func() {
		defer close(o.done)
		o.serve()
	}()
	return &o
}

// TestOwnerCallsAfterShutdown: calls after Close and a second Close return
// ErrClosed and nil. Context used to close its calls channel, so a call
// after Close chose at random between the closed done channel and a send on
// the closed calls channel, and panicked about half the time.
func TestOwnerCallsAfterShutdown(t *testing.T) {
	o := startOwner()
	if err := o.do(func() error { return nil }); err != nil {
		t.Fatalf("do: %v", err)
	}
	want := errors.New("destroy failed")
	if err := o.shutdown(func() error { return want }); err != want {
		t.Fatalf("shutdown returned %v, want %v", err, want)
	}
	for i := 0; i < 200; i++ {
		if err := o.do(func() error { t.Error("ran after shutdown"); return nil }); !errors.Is(err, ErrClosed) {
			t.Fatalf("call %d after shutdown: %v, want ErrClosed", i, err)
		}
		if err := o.shutdown(func() error { t.Error("shut down twice"); return nil }); err != nil {
			t.Fatalf("second shutdown: %v", err)
		}
	}
}

// TestOwnerCallsRacingShutdown: calls from other goroutines racing with
// Close (Context promises any goroutine may call it) either run before it
// or get ErrClosed; none panics or runs after the shutdown.
func TestOwnerCallsRacingShutdown(t *testing.T) {
	for round := 0; round < 50; round++ {
		o := startOwner()
		shut := false // only touched on the owner goroutine
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					err := o.do(func() error {
						if shut {
							t.Error("call ran after shutdown")
						}
						return nil
					})
					if err != nil && !errors.Is(err, ErrClosed) {
						t.Errorf("call: %v", err)
					}
				}
			}()
		}
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := o.shutdown(func() error { shut = true; return nil }); err != nil {
					t.Errorf("shutdown: %v", err)
				}
			}()
		}
		wg.Wait()
	}
}
