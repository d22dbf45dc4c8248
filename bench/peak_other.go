//go:build !amd64

package bench

// peakKernels lists the FMA loops this CPU can run: only the plain-Go one
// off amd64.
func peakKernels() []peakKernel { return []peakKernel{goKernel()} }
