//go:build cuda

// Command plugin is the CUDA backend built as a Go plugin (kiln-cuda.so):
//
//	go build -buildmode=plugin -tags cuda -o bin/kiln-cuda.so ./backend/cuda/plugin
//
// It is the only artifact that links gorgonia.org/cu and libcuda. The main
// binary's loader (github.com/kiln-ml/kiln/backend/cuda/loader) opens it only
// after probing the driver, and calls the two functions below.
package main

import (
	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/cuda"
)

// Open opens the CUDA backend (loader.SymOpen).
func Open(opts backend.Options) (backend.Backend, error) { return cuda.Open(opts) }

// Probe lists the CUDA devices (loader.SymProbe).
func Probe() ([]backend.DeviceInfo, error) { return cuda.Devices() }

func main() {}
