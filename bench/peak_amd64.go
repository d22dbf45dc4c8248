package bench

import "golang.org/x/sys/cpu"

//go:noescape
func fmaLoopAVX512(n int)

//go:noescape
func fmaLoopAVX2(n int)

// peakKernels lists the FMA loops this CPU can run, widest first.
func peakKernels() []peakKernel {
	var ks []peakKernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, peakKernel{name: PeakAVX512, flopsPerIter: 12 * 16 * 2, run: fmaLoopAVX512})
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, peakKernel{name: PeakAVX2, flopsPerIter: 12 * 8 * 2, run: fmaLoopAVX2})
	}
	return append(ks, goKernel())
}
