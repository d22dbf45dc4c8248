//go:build !amd64

package cpu

// supportedKernels lists the kernels this CPU runs: only the generic Go one
// off amd64.
func supportedKernels() []*gemmKernel { return []*gemmKernel{&genericKernel} }

// fmaPeak has no assembly loop off amd64.
func fmaPeak(string, int) float64 { return 0 }

// reluVec has no vector loop off amd64.
func reluVec(_, _ []float32) int { return 0 }

// adamVec has no vector loop off amd64.
func adamVec(_, _, _, _ float32, _, _, _, _ []float32) int { return 0 }

// reluBackVec has no vector loop off amd64.
func reluBackVec(_, _, _ []float32) int { return 0 }

// implicitOK: the AVX-512-only kernel is amd64 only.
func implicitOK(*gemmKernel) bool { return false }

// asmConvOK: the assembly convolution kernels are amd64 only.
func asmConvOK(*gemmKernel) bool { return false }

func rowsKernel(*gemmKernel, int, int, int, *[6]*float32, *float32, int, *[6]*float32, bool, []float32, bool) {
}

func gatherKernel(*gemmKernel, int, int, []int, *float32, *float32, *float32, int, bool) {}

func winoInput(*gemmKernel, *[16]*float32, int, *float32, int) {}

func winoOutput(*gemmKernel, *float32, int, int, *[4]*float32, []float32, bool) {}

func winoFilter(*gemmKernel, []float32, int, []float32, int, int, int) {}

func winoGemm(int, int, *float32, int, *float32, int, *float32, int) {}

func winoProduct(*gemmKernel, int, int, *float32, int, *float32, int, *float32, int) {}

// winoKernels: no Winograd kernels off amd64.
func winoKernels(*gemmKernel) (f2, f4, grad bool) { return false, false, false }

// winoCostsFor: no Winograd kernels off amd64 (winograd never asks).
func winoCostsFor(*gemmKernel) winoCosts { return winoCosts{p2: 10, p4: 12, direct: 9} }

func winoGemmT(*gemmKernel, int, *float32, int, *float32, int, *float32, int, bool) {}

func winoDy(*gemmKernel, *[4]*float32, int, *float32, int) {}

func winoGradOut(*gemmKernel, *float32, int, int, *float32, int) {}

func winoInput43(*gemmKernel, *[36]*float32, int, *float32, int, []float32) {}

func winoOutput43(*gemmKernel, *float32, int, int, *[16]*float32, []float32, bool, []float32) {}

func winoFilter43(*gemmKernel, []float32, int, []float32, int, int, int) {}

func winoOutput43Pool(*gemmKernel, *float32, int, int, *[4]*float32, []float32, []float32) {}
