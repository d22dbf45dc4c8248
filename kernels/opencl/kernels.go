// Package opencl holds kiln's hand-written OpenCL C kernels (OpenCL C 1.2),
// embedded into the binary with go:embed. It has no cgo and no OpenCL
// dependency: backend/opencl builds these sources on the device.
//
// Each Program is one .cl file; its Source is the shared header common.h
// followed by the file, ready to hand to clCreateProgramWithSource.
package opencl

import (
	_ "embed" // the kernel sources
	"fmt"
	"regexp"
)

var (
	//go:embed common.h
	header string
	//go:embed conv.cl
	convSrc string
	//go:embed elementwise.cl
	elementwiseSrc string
	//go:embed gemm.cl
	gemmSrc string
	//go:embed optim.cl
	optimSrc string
	//go:embed pool.cl
	poolSrc string
	//go:embed softmax.cl
	softmaxSrc string
)

// Program is one OpenCL program: a .cl file with the shared header.
type Program struct {
	// Name is the file name, e.g. "gemm.cl".
	Name string
	// Source is common.h followed by the file's text.
	Source string
	// Kernels lists the __kernel functions the file defines, in order.
	Kernels []string
}

// Header returns the text of common.h, the definitions every program shares.
func Header() string { return header }

var kernelRE = regexp.MustCompile(`(?m)__kernel\s+(?:__attribute__\s*\(\(.*\)\)\s*)?void\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(`)

// KernelNames lists the __kernel functions a source defines, in order.
func KernelNames(src string) []string {
	var out []string
	for _, m := range kernelRE.FindAllStringSubmatch(src, -1) {
		out = append(out, m[1])
	}
	return out
}

// Programs returns every program, sorted by name.
func Programs() []Program {
	files := []struct{ name, src string }{
		{"conv.cl", convSrc},
		{"elementwise.cl", elementwiseSrc},
		{"gemm.cl", gemmSrc},
		{"optim.cl", optimSrc},
		{"pool.cl", poolSrc},
		{"softmax.cl", softmaxSrc},
	}
	out := make([]Program, 0, len(files))
	for _, f := range files {
		out = append(out, Program{Name: f.name, Source: header + "\n#line 1\n" + f.src, Kernels: KernelNames(f.src)})
	}
	return out
}

// Lookup returns the named program.
func Lookup(name string) (Program, error) {
	for _, p := range Programs() {
		if p.Name == name {
			return p, nil
		}
	}
	return Program{}, fmt.Errorf("kernels/opencl: no program %q", name)
}
