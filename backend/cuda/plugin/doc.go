//go:build !cuda

// Command plugin is the CUDA backend as a Go plugin, kiln-cuda.so. It needs
// the build tag cuda and -buildmode=plugin (see main.go); built without the
// tag it is a stub that says so, so `go build ./...` works everywhere.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "build the CUDA backend plugin with: go build -buildmode=plugin -tags cuda -o bin/kiln-cuda.so ./backend/cuda/plugin")
	os.Exit(2)
}
