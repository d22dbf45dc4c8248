package main

// The CPU backend is always compiled in; OpenCL and CUDA join it from files
// behind their build tags.
import _ "github.com/kiln-ml/kiln/backend/cpu"
