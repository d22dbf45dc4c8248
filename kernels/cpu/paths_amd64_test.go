//go:build amd64

package cpu

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAVX2Paths pins which convolution paths the AVX2 micro-kernel takes
// for the reference CNN's layers (the kernels exist on every amd64 CPU
// build; whether this CPU runs them does not matter here): conv2's
// forward pass and backward-data as Winograd F(4×4, 3×3), its filter
// gradient as F(3×3, 2×2), the implicit kernels where Winograd does not
// apply, conv1's fused pooling and the dense layers' unpacked product
// (sgemmRows); and for smaller outputs at batch 32, F(2×2, 3×3) on 2×2
// and 5×5 ones, F(4×4, 3×3) on 3×3 and 7×7, while a 1×1 output stays off
// Winograd (16 points a tile against 9 multiply-adds a pixel), as do the
// few tiles of a 3×3 output at batch 1 (see winoCostsFor).
func TestAVX2Paths(t *testing.T) {
	kr := &avx2Kernel
	conv2 := ConvShape{N: 32, H: 13, W: 13, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 11, OutW: 11}
	require.True(t, conv2.winograd(kr), "conv2 forward, training")
	require.Equal(t, 2, conv2.winoTileFor(kr, 0), "training")
	conv2.Inference = true
	require.True(t, conv2.winograd(kr), "conv2 forward, inference")
	require.Equal(t, 4, conv2.winoTileFor(kr, 0), "inference")
	require.Equal(t, 2, conv2.winoTileFor(kr, 2), "forced")
	conv2.Inference = false
	tr, ok := conv2.transposedShape()
	require.True(t, ok)
	require.True(t, tr.winograd(kr), "conv2 backward-data (13×13 output)")
	require.Equal(t, 4, tr.winoTileFor(kr, 0), "backward-data keeps no ties: F(4×4, 3×3) where it costs less")
	require.True(t, conv2.winogradGrad(kr), "conv2 filter gradient")
	require.True(t, conv2.implicitFwd(kr) && conv2.implicitData(kr) && conv2.implicitFilter(kr))
	one := ConvShape{N: 1, H: 3, W: 3, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 1, OutW: 1}
	require.False(t, one.winograd(kr), "1×1 output")
	require.False(t, one.winograd(&avx512Kernel), "1×1 output, AVX-512")
	// AVX-512 weighs a direct multiply-add 0.9 of an F(2×2, 3×3) point
	require.Equal(t, winoCosts{p2: 10, p4: 12, direct: 9}, winoCostsFor(&avx512Kernel), "TestWinoTile's AVX-512 costs")
	require.Equal(t, winoCosts{p2: 10, p4: 12, direct: 7}, winoCostsFor(kr), "TestWinoTile's AVX2 costs")
	for _, c := range []struct{ n, out, tile int }{{32, 1, 0}, {32, 2, 2}, {32, 3, 4}, {32, 5, 2}, {32, 7, 4}, {1, 3, 0}, {1, 5, 2}, {1, 9, 2}, {1, 11, 4}} {
		s := ConvShape{N: c.n, H: c.out + 2, W: c.out + 2, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: c.out, OutW: c.out, Inference: true}
		require.Equal(t, c.tile != 0, s.winograd(&avx512Kernel), "%d×%d output, batch %d: Winograd on AVX-512", c.out, c.out, c.n)
		if c.tile != 0 {
			require.Equal(t, c.tile, s.winoTileFor(&avx512Kernel, 0), "%d×%d output, batch %d, AVX-512", c.out, c.out, c.n)
		}
	}
	for _, c := range []struct{ n, out, tile int }{{32, 1, 0}, {32, 2, 2}, {32, 3, 4}, {32, 5, 2}, {32, 7, 4}, {1, 3, 0}, {1, 9, 2}, {1, 11, 4}} {
		s := ConvShape{N: c.n, H: c.out + 2, W: c.out + 2, C: 64, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: c.out, OutW: c.out, Inference: true}
		require.Equal(t, c.tile != 0, s.winograd(kr), "%d×%d output, batch %d: Winograd", c.out, c.out, c.n)
		if c.tile != 0 {
			require.Equal(t, c.tile, s.winoTileFor(kr, 0), "%d×%d output, batch %d", c.out, c.out, c.n)
		}
	}
	require.True(t, asmConvOK(kr), "conv1's fused pooling and the dense layers' sgemmRows")
	require.False(t, implicitOK(kr), "the wide direct kernel is AVX-512 only")
	require.False(t, asmConvOK(&genericKernel))
	require.False(t, conv2.winograd(&genericKernel))
}
