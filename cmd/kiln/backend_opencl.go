//go:build opencl

package main

// The OpenCL backend registers itself as "opencl" when compiled in
// (go build -tags opencl; see mk/opencl.mk for the cgo flags).
import _ "github.com/kiln-ml/kiln/backend/opencl"
