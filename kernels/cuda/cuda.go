// Package cuda holds kiln's hand-written CUDA C kernels, embedded in the
// binary with go:embed, and the table of kernel names the CUDA backend looks
// up. In normal builds it has no cgo: the sources are plain data, compiled
// at start by NVRTC (see github.com/kiln-ml/kiln/bindings/cuda/rtc) for the
// device's architecture. With the build tag cudaemu it also compiles them as
// C++ into a CPU emulator (Emulator, emu.cc) for tests on hosts without a
// GPU; the emulator lives here, beside the sources it includes, because the
// go command rebuilds a package when its embedded files change, and so
// rebuilds the emulator whenever a kernel changes.
//
// The files form one translation unit: common.cuh first, then the .cu files
// in the order of Files. Every kernel is extern "C", so its PTX name is the
// name in Kernels.
package cuda

import (
	"embed"
	"fmt"
	"strings"
)

//go:embed common.cuh *.cu
var sources embed.FS

// Files lists the kernel sources in the order Source concatenates them.
var Files = []string{"common.cuh", "gemm.cu", "conv.cu", "pool.cu", "elementwise.cu", "softmax.cu", "optim.cu"}

// ProgramName is the name NVRTC reports in its logs for the program.
const ProgramName = "kiln_kernels.cu"

// Source returns the complete CUDA C program: every file of Files, each
// preceded by a #line directive so compiler messages name the right file.
func Source() (string, error) {
	var b strings.Builder
	for _, f := range Files {
		data, err := sources.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("kernels/cuda: read embedded %s: %w", f, err)
		}
		fmt.Fprintf(&b, "#line 1 %q\n", f)
		b.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String(), nil
}

// Kernel names, as the PTX exports them.
const (
	SgemmNN128           = "kiln_sgemm_nn_128"
	SgemmNT128           = "kiln_sgemm_nt_128"
	SgemmTN128           = "kiln_sgemm_tn_128"
	SgemmTT128           = "kiln_sgemm_tt_128"
	SgemmNN32            = "kiln_sgemm_nn_32"
	SgemmNT32            = "kiln_sgemm_nt_32"
	SgemmTN32            = "kiln_sgemm_tn_32"
	SgemmTT32            = "kiln_sgemm_tt_32"
	Conv2DFwd            = "kiln_conv2d_fwd"
	Conv2DBwdFilter      = "kiln_conv2d_bwd_filter"
	Conv2DBwdData        = "kiln_conv2d_bwd_data"
	MaxPool2DFwd         = "kiln_maxpool2d_fwd"
	MaxPool2DBwd         = "kiln_maxpool2d_bwd"
	BiasAdd              = "kiln_bias_add"
	BiasGrad             = "kiln_bias_grad"
	ReLU                 = "kiln_relu"
	ReLUBwd              = "kiln_relu_bwd"
	Mul                  = "kiln_mul"
	DropoutMask          = "kiln_dropout_mask"
	Softmax              = "kiln_softmax"
	SoftmaxXent          = "kiln_softmax_xent"
	Adam                 = "kiln_adam"
	SGD                  = "kiln_sgd"
	GemmTile, GemmTile32 = 128, 32 // output tile edges of the two SGEMM shapes
	GemmThreads          = 256     // threads a block for every GEMM and conv kernel
	ConvTile             = 64      // output tile edge of the convolution kernels
	ConvBK               = 16      // k-step of the convolution kernels (split-K chunks are multiples)
)

// Kernels lists every kernel in the program.
func Kernels() []string {
	return []string{SgemmNN128, SgemmNT128, SgemmTN128, SgemmTT128,
		SgemmNN32, SgemmNT32, SgemmTN32, SgemmTT32,
		Conv2DFwd, Conv2DBwdFilter, Conv2DBwdData, MaxPool2DFwd, MaxPool2DBwd,
		BiasAdd, BiasGrad, ReLU, ReLUBwd, Mul, DropoutMask, Softmax, SoftmaxXent, Adam, SGD}
}

// HeavyKernels lists the GEMM and convolution kernels: the ones whose
// register allocation must not spill (CI checks it with ptxas -v).
func HeavyKernels() []string {
	return []string{SgemmNN128, SgemmNT128, SgemmTN128, SgemmTT128,
		SgemmNN32, SgemmNT32, SgemmTN32, SgemmTT32,
		Conv2DFwd, Conv2DBwdFilter, Conv2DBwdData}
}

// Gemm returns the SGEMM kernel for the transposes and tile edge (128 or 32).
func Gemm(transA, transB bool, tile int) string {
	t := "n"
	if transA {
		t = "t"
	}
	if transB {
		t += "t"
	} else {
		t += "n"
	}
	return fmt.Sprintf("kiln_sgemm_%s_%d", t, tile)
}

// CompileOptions are the NVRTC options every build uses besides the
// architecture: fused multiply-add only where the source writes fmaf (so the
// element-wise and optimizer kernels round like the CPU backend), C++17.
func CompileOptions() []string {
	return []string{"--fmad=false", "--std=c++17"}
}

// OpKernels maps each op of the backend contract to the kernels that
// implement it; ops done with driver calls alone (memset, memcpy) map to an
// empty list.
func OpKernels() map[string][]string {
	return map[string][]string{
		"Alloc": nil, "Upload": nil, "Download": nil, "Fill": nil, "Copy": nil,
		"Gemm":                 {SgemmNN128, SgemmNT128, SgemmTN128, SgemmTT128, SgemmNN32, SgemmNT32, SgemmTN32, SgemmTT32},
		"Conv2D":               {Conv2DFwd},
		"Conv2DBackwardData":   {Conv2DBwdData},
		"Conv2DBackwardFilter": {Conv2DBwdFilter},
		"MaxPool2D":            {MaxPool2DFwd},
		"MaxPool2DBackward":    {MaxPool2DBwd},
		"BiasAdd":              {BiasAdd},
		"BiasGrad":             {BiasGrad},
		"ReLU":                 {ReLU},
		"ReLUBackward":         {ReLUBwd},
		"Mul":                  {Mul},
		"DropoutMask":          {DropoutMask},
		"Softmax":              {Softmax},
		"SoftmaxCrossEntropy":  {SoftmaxXent},
		"Adam":                 {Adam},
		"SGD":                  {SGD},
	}
}
