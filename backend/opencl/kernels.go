//go:build opencl

package opencl

import (
	"fmt"

	clb "github.com/kiln-ml/kiln/bindings/opencl"
)

// kernels holds one kernel object per OpenCL kernel function.
type kernels struct {
	gemmTiled, gemmNaive             *clb.Kernel
	im2col, col2im                   *clb.Kernel
	poolFwd, poolBwd                 *clb.Kernel
	biasAdd, biasGrad, relu, reluBwd *clb.Kernel
	mul, dropout                     *clb.Kernel
	softmax, xentRows, xentReduce    *clb.Kernel
	adam, sgd                        *clb.Kernel
	all                              []*clb.Kernel
}

func (k *kernels) create(progs map[string]*clb.Program) error {
	for _, e := range []struct {
		prog, name string
		dst        **clb.Kernel
	}{
		{"gemm.cl", "sgemm_tiled", &k.gemmTiled},
		{"gemm.cl", "sgemm_naive", &k.gemmNaive},
		{"conv.cl", "im2col", &k.im2col},
		{"conv.cl", "col2im", &k.col2im},
		{"pool.cl", "maxpool_fwd", &k.poolFwd},
		{"pool.cl", "maxpool_bwd", &k.poolBwd},
		{"elementwise.cl", "bias_add", &k.biasAdd},
		{"elementwise.cl", "bias_grad", &k.biasGrad},
		{"elementwise.cl", "relu", &k.relu},
		{"elementwise.cl", "relu_bwd", &k.reluBwd},
		{"elementwise.cl", "mul", &k.mul},
		{"elementwise.cl", "dropout_mask", &k.dropout},
		{"softmax.cl", "softmax", &k.softmax},
		{"softmax.cl", "softmax_xent_rows", &k.xentRows},
		{"softmax.cl", "softmax_xent_reduce", &k.xentReduce},
		{"optim.cl", "adam", &k.adam},
		{"optim.cl", "sgd", &k.sgd},
	} {
		p := progs[e.prog]
		if p == nil {
			return fmt.Errorf("program %s missing", e.prog)
		}
		kern, err := p.Kernel(e.name)
		if err != nil {
			return err
		}
		*e.dst = kern
		k.all = append(k.all, kern)
	}
	for _, kern := range []*clb.Kernel{k.gemmTiled, k.biasGrad} {
		wg, err := kern.WorkGroupSize()
		if err != nil {
			return err
		}
		if wg < 256 {
			return fmt.Errorf("kernel %s runs at most %d work-items per group on this device; it needs 256", kern.Name(), wg)
		}
	}
	return nil
}

func (k *kernels) release() []error {
	var errs []error
	for _, kern := range k.all {
		errs = append(errs, kern.Release())
	}
	k.all = nil
	return errs
}
