package cpu

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// KernelEnv names the environment variable that forces the SGEMM
// micro-kernel ("generic", "avx2" or "avx512"), and with it the forms of
// the convolution kernels that go with it. An unknown or unsupported name
// is ignored and the fastest kernel the CPU supports is used; CheckKernelEnv
// says so, for a warning.
const KernelEnv = "KILN_CPU_KERNEL"

// microKernel computes one mr×nr tile of C over kc steps from a packed
// mr-row panel of A (kc groups of mr values) and a packed nr-column panel of
// B (kc groups of nr values): c[i·ldc+j] = Σ_p a[p·mr+i]·b[p·nr+j], added to
// c when add is true and overwriting it otherwise.
type microKernel func(kc int, a, b, c []float32, ldc int, add bool)

// gemmKernel is one micro-kernel with the tile and block sizes tuned for it.
// mc is a multiple of mr and nc of nr.
type gemmKernel struct {
	name       string
	mr, nr     int
	kc, mc, nc int
	fn         microKernel
}

// genericKernel is the pure-Go fallback used on every CPU.
var genericKernel = gemmKernel{name: "generic", mr: 4, nr: 4, kc: 256, mc: 128, nc: 3072, fn: kernelGeneric}

// kernelGeneric adapts kernel4x4 to the microKernel contract.
func kernelGeneric(kc int, a, b, c []float32, ldc int, add bool) {
	var acc [16]float32
	kernel4x4(kc, a, b, &acc)
	for i := 0; i < 4; i++ {
		row := c[i*ldc : i*ldc+4 : i*ldc+4]
		r := acc[i*4 : i*4+4 : i*4+4]
		if add {
			row[0] += r[0]
			row[1] += r[1]
			row[2] += r[2]
			row[3] += r[3]
		} else {
			row[0], row[1], row[2], row[3] = r[0], r[1], r[2], r[3]
		}
	}
}

// defaultKernel is chosen once, at package initialisation, from the CPU's
// features and KernelEnv. It is never changed afterwards.
var defaultKernel = chooseKernel(os.Getenv(KernelEnv))

// chooseKernel returns the kernel named by env when this CPU supports it,
// else the fastest supported one.
func chooseKernel(env string) *gemmKernel {
	avail := supportedKernels()
	name := strings.ToLower(strings.TrimSpace(env))
	for _, k := range avail {
		if k.name == name {
			return k
		}
	}
	return avail[0]
}

// allKernelNames lists every SGEMM micro-kernel kiln has, fastest first,
// whether this CPU runs it or not.
func allKernelNames() []string { return []string{"avx512", "avx2", "generic"} }

// CheckKernelEnv reports what is wrong with value as the setting of
// KernelEnv (normally os.Getenv(KernelEnv)), which the package then
// ignores: nil when value is empty or names a kernel this CPU runs (in any
// case, with spaces around it, as the package reads it); otherwise an error
// that names the value, the kernels it could name (every one for an
// unknown name, this CPU's for one it lacks) and the kernels that run
// instead.
func CheckKernelEnv(value string) error {
	name := strings.ToLower(strings.TrimSpace(value))
	if name == "" {
		return nil
	}
	for _, k := range supportedKernels() {
		if k.name == name {
			return nil
		}
	}
	used := chooseKernel(value).name
	if !slices.Contains(allKernelNames(), name) {
		return fmt.Errorf("%s=%q is not a cpu kernel name (want one of %s); it is ignored and the %s kernels run",
			KernelEnv, value, strings.Join(allKernelNames(), ", "), used)
	}
	return fmt.Errorf("%s=%q: this CPU cannot run the %s kernels (it runs %s); it is ignored and the %s kernels run",
		KernelEnv, value, name, strings.Join(KernelNames(), ", "), used)
}

// KernelNames lists the SGEMM micro-kernels this CPU supports, fastest first;
// "generic" is always last.
func KernelNames() []string {
	var names []string
	for _, k := range supportedKernels() {
		names = append(names, k.name)
	}
	return names
}

// DefaultKernel names the micro-kernel Sgemm uses unless a workspace says
// otherwise: the fastest one this CPU supports, or the one KernelEnv names.
func DefaultKernel() string { return defaultKernel.name }

// SetKernel makes Sgemm calls with this workspace use the named
// micro-kernel; "" restores the default. It fails for a name this CPU does
// not support.
func (ws *GemmWorkspace) SetKernel(name string) error {
	if name == "" {
		ws.kern = nil
		return nil
	}
	for _, k := range supportedKernels() {
		if k.name == name {
			ws.kern = k
			return nil
		}
	}
	return fmt.Errorf("sgemm kernel %q is not supported on this CPU (have %s)", name, strings.Join(KernelNames(), ", "))
}

// Kernel names the micro-kernel Sgemm uses with this workspace.
func (ws *GemmWorkspace) Kernel() string { return ws.kernel().name }

func (ws *GemmWorkspace) kernel() *gemmKernel {
	if ws.kern != nil {
		return ws.kern
	}
	return defaultKernel
}

// FMALoop runs iters iterations of the register-FMA loop of the named
// micro-kernel's vector width ("avx512": 24 independent 512-bit FMAs an
// iteration; "avx2": 12 independent 256-bit FMAs) and returns the flops it
// did; 0, running nothing, for a name this CPU has no such loop for. It
// measures the FMA peak that kiln bench reports percentages against.
func FMALoop(name string, iters int) float64 {
	for _, k := range supportedKernels() {
		if k.name == name {
			return fmaPeak(name, iters)
		}
	}
	return 0
}
