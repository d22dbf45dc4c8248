package engine

import (
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/backend"
)

// Optimizer updates parameters from their gradients on the device. Its
// state (moments, velocities) lives on the device too and is saved in
// checkpoints.
type Optimizer interface {
	// Name is "adam" or "sgd".
	Name() string
	// Step applies one update to every parameter.
	Step(b backend.Backend, params []*Param) error
	// State returns the optimizer's tensors per parameter slot, in a fixed
	// order, plus its step counter, for checkpoints.
	State() (slots map[string][]backend.Buffer, step int)
	// SetStep restores the step counter after loading state.
	SetStep(step int)
	// Close frees the optimizer's device buffers.
	Close()
}

// OptimizerConfig selects and configures an optimizer.
type OptimizerConfig struct {
	Name     string  // adam (default) or sgd
	LR       float64 // learning rate; 0 means the default (1e-3 Adam, 1e-2 SGD)
	Momentum float64 // SGD momentum, 0 (none, as Keras' default) unless set; kiln train's --momentum defaults to 0.9
}

// WithDefaults returns c with the defaults filled in: adam when Name is
// empty, learning rate 1e-3 (adam) or 1e-2 (sgd) when LR is 0.
func (c OptimizerConfig) WithDefaults() OptimizerConfig {
	if c.Name == "" {
		c.Name = "adam"
	}
	if c.LR == 0 {
		switch c.Name {
		case "adam":
			c.LR = 1e-3
		case "sgd":
			c.LR = 1e-2
		}
	}
	return c
}

// Validate reports a configuration NewOptimizer would refuse: an unknown
// name, a negative learning rate, an SGD momentum outside [0, 1).
func (c OptimizerConfig) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.Name != "adam" && c.Name != "sgd":
		return fmt.Errorf("unknown optimizer %q (want adam or sgd)", c.Name)
	case !(c.LR >= 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("learning rate must be positive and finite, got %g", c.LR)
	case c.Name == "sgd" && !(c.Momentum >= 0 && c.Momentum < 1):
		return fmt.Errorf("momentum must be in [0, 1), got %g", c.Momentum)
	}
	return nil
}

// NewOptimizer creates an optimizer with Keras defaults. Its state is
// allocated lazily on the first step for the params it sees.
func NewOptimizer(b backend.Backend, cfg OptimizerConfig, params []*Param) (Optimizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if cfg.Name == "sgd" {
		s := &SGD{P: backend.SGDParams{LR: float32(cfg.LR), Momentum: float32(cfg.Momentum)}, o: bufs{b: b}}
		for _, p := range params {
			v, err := s.o.alloc(p.Len())
			if err != nil {
				s.Close()
				return nil, err
			}
			s.vel = append(s.vel, v)
		}
		return s, nil
	}
	a := &Adam{P: backend.AdamParams{LR: float32(cfg.LR), Beta1: 0.9, Beta2: 0.999, Eps: 1e-7}, o: bufs{b: b}}
	if err := a.alloc(params); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Adam is the Adam optimizer with Keras' defaults (β1 0.9, β2 0.999, ε 1e-7).
type Adam struct {
	P    backend.AdamParams
	o    bufs
	m, v []backend.Buffer
	t    int
}

func (a *Adam) alloc(params []*Param) error {
	for _, p := range params {
		m, err := a.o.alloc(p.Len())
		if err != nil {
			return err
		}
		v, err := a.o.alloc(p.Len())
		if err != nil {
			return err
		}
		a.m = append(a.m, m)
		a.v = append(a.v, v)
	}
	return nil
}

// Name is "adam".
func (a *Adam) Name() string { return "adam" }

// Step applies one Adam update to every parameter.
func (a *Adam) Step(b backend.Backend, params []*Param) error {
	if len(params) != len(a.m) {
		return fmt.Errorf("optimizer was built for %d parameters, got %d", len(a.m), len(params))
	}
	a.t++
	p := a.P
	p.Step = a.t
	for i, prm := range params {
		if err := b.Adam(p, prm.W, prm.G, a.m[i], a.v[i], prm.Len()); err != nil {
			return fmt.Errorf("%s: %w", prm.Name, err)
		}
	}
	return nil
}

// State returns the first and second moments.
func (a *Adam) State() (map[string][]backend.Buffer, int) {
	return map[string][]backend.Buffer{"m": a.m, "v": a.v}, a.t
}

// SetStep restores the step counter.
func (a *Adam) SetStep(t int) { a.t = t }

// Close frees the moments.
func (a *Adam) Close() { a.o.free(); a.m, a.v = nil, nil }

// SGD is stochastic gradient descent with momentum (Keras semantics).
type SGD struct {
	P   backend.SGDParams
	o   bufs
	vel []backend.Buffer
	t   int
}

// Name is "sgd".
func (s *SGD) Name() string { return "sgd" }

// Step applies one SGD update to every parameter.
func (s *SGD) Step(b backend.Backend, params []*Param) error {
	if len(params) != len(s.vel) {
		return fmt.Errorf("optimizer was built for %d parameters, got %d", len(s.vel), len(params))
	}
	s.t++
	for i, prm := range params {
		if err := b.SGD(s.P, prm.W, prm.G, s.vel[i], prm.Len()); err != nil {
			return fmt.Errorf("%s: %w", prm.Name, err)
		}
	}
	return nil
}

// State returns the velocities.
func (s *SGD) State() (map[string][]backend.Buffer, int) {
	return map[string][]backend.Buffer{"velocity": s.vel}, s.t
}

// SetStep restores the step counter.
func (s *SGD) SetStep(t int) { s.t = t }

// Close frees the velocities.
func (s *SGD) Close() { s.o.free(); s.vel = nil }
