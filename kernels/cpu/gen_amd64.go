//go:build ignore

// gen_amd64 writes kernel_amd64.s: the AVX-512 and AVX2+FMA SGEMM
// micro-kernels, the convolution kernels (implicit GEMM, direct with
// pooling, Winograd transforms and products) in AVX-512 and AVX2+FMA forms,
// and the FMA peak loops. Run it with `go generate` in kernels/cpu; the
// output is committed, so building never needs it.
//
// The micro-kernels share one contract (see kernel.go): over kc steps they
// accumulate a packed mr-row panel of A (kc groups of mr values) times a
// packed nr-column panel of B (kc groups of nr values) into registers, then
// store the mr×nr tile to C with row stride ldc (in elements), adding to C
// when add is non-zero and overwriting it otherwise.
package main

import (
	"bytes"
	"fmt"
	"log"
	"math"
	"os"
)

type gen struct {
	b bytes.Buffer
	// ymm switches the Winograd transform helpers (add, sub, mov, mul,
	// fma, fnma and the F(4×4, 3×3) bt6 and at6 built on them) to AVX2
	// ymm registers; cmem then names the memory operands (8 copies of a
	// constant) that stand for the "registers" the helpers take their
	// constants from, AVX2 having 16 registers against AVX-512's 32.
	ymm  bool
	cmem map[int]string
	// pfC makes kernel prefetch its C tile (every cache line of its mr
	// rows) before the k loop, so the update at the end finds C in cache:
	// +3 % at 2048³ on two threads, level at 1024³ (AVX-512, measured
	// interleaved against the same kernel without it).
	pfC bool
	// bcstOdd makes kernel read the A values of odd rows as embedded
	// broadcasts of its FMAs (AVX-512 only) instead of VBROADCASTSS into a
	// register. A k step of the 12×32 kernel then issues 34 fused µops
	// instead of 40 (its 24 FMAs need 12 cycles) for 22 loads instead of
	// 16: it had been close to the front end's 4 µops a cycle. Measured
	// interleaved against the kernel without it: BenchmarkMicroKernel
	// +5 % (four pairs), BenchmarkSgemm on two workers medians of eight
	// pair ratios 1.12 at 1024³ and 1.04 at 2048³ (2026-12-01).
	bcstOdd bool
}

func (g *gen) p(format string, args ...any) { fmt.Fprintf(&g.b, format+"\n", args...) }

// kernel emits one micro-kernel. reg is the register prefix ("Z" or "Y"),
// vec the floats per vector register, mr×(nv·vec) the tile, bcast the
// registers used for broadcasts of A, unroll the k-loop unroll factor, pfB
// how far ahead (bytes) the unrolled loop prefetches B, one PREFETCHT0 per
// cache line of B it reads. B is the operand the kernel streams (from L2 or
// L3: a packed block is swept once per A panel); the hardware prefetchers
// alone left the product 10–15 % slower at 1024³ and 2048³ (AVX-512) and
// 5–9 % (AVX2), measured against the same kernel without it.
func (g *gen) kernel(name, reg string, vec, mr, nv int, bcast []int, unroll, pfB int) {
	nr := nv * vec
	acc := func(i, j int) string { return fmt.Sprintf("%s%d", reg, i*nv+j) }
	bv := func(j int) string { return fmt.Sprintf("%s%d", reg, mr*nv+j) }
	vb := vec * 4 // bytes per vector
	g.p("// func %s(kc int, a, b, c *float32, ldc int, add int)", name)
	g.p("// computes a %d×%d tile; see gen_amd64.go.", mr, nr)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-48", name)
	g.p("\tMOVQ kc+0(FP), CX")
	g.p("\tMOVQ a+8(FP), SI")
	g.p("\tMOVQ b+16(FP), DI")
	g.p("\tMOVQ c+24(FP), DX")
	g.p("\tMOVQ ldc+32(FP), R8")
	g.p("\tSHLQ $2, R8")
	if g.pfC {
		// every line a row of the tile touches, aligned or not: its first
		// byte, each 64 bytes on, and its last byte
		g.p("\tMOVQ DX, R9")
		for i := 0; i < mr; i++ {
			for j := 0; j < nr*4; j += 64 {
				g.p("\tPREFETCHT0 %d(R9)", j)
			}
			g.p("\tPREFETCHT0 %d(R9)", nr*4-1)
			if i < mr-1 {
				g.p("\tADDQ R8, R9")
			}
		}
	}
	for i := 0; i < mr*nv; i++ {
		r := fmt.Sprintf("%s%d", reg, i)
		if reg == "Z" {
			g.p("\tVPXORD %s, %s, %s", r, r, r)
		} else {
			g.p("\tVXORPS %s, %s, %s", r, r, r)
		}
	}
	step := func(k int, pf bool) {
		for j := 0; j < nv; j++ {
			g.p("\tVMOVUPS %d(DI), %s", k*nr*4+j*vb, bv(j))
		}
		for j := 0; pf && j < nr*4; j += 64 {
			g.p("\tPREFETCHT0 %d(DI)", pfB+k*nr*4+j)
		}
		for i := 0; i < mr; i++ {
			if g.bcstOdd && i%2 == 1 {
				// the A value as the FMAs' embedded-broadcast operand:
				// no separate broadcast µop
				for j := 0; j < nv; j++ {
					g.p("\tVFMADD231PS.BCST %d(SI), %s, %s", (k*mr+i)*4, bv(j), acc(i, j))
				}
				continue
			}
			br := fmt.Sprintf("%s%d", reg, bcast[i%len(bcast)])
			g.p("\tVBROADCASTSS %d(SI), %s", (k*mr+i)*4, br)
			for j := 0; j < nv; j++ {
				g.p("\tVFMADD231PS %s, %s, %s", bv(j), br, acc(i, j))
			}
		}
	}
	g.p("\tCMPQ CX, $%d", unroll)
	g.p("\tJLT %s_tail", name)
	g.p("%s_loop%d:", name, unroll)
	g.p("\tPREFETCHT0 %d(SI)", unroll*mr*4*4)
	for k := 0; k < unroll; k++ {
		step(k, pfB > 0)
	}
	g.p("\tADDQ $%d, SI", unroll*mr*4)
	g.p("\tADDQ $%d, DI", unroll*nr*4)
	g.p("\tSUBQ $%d, CX", unroll)
	g.p("\tCMPQ CX, $%d", unroll)
	g.p("\tJGE %s_loop%d", name, unroll)
	g.p("%s_tail:", name)
	g.p("\tTESTQ CX, CX")
	g.p("\tJEQ %s_store", name)
	g.p("%s_loop1:", name)
	step(0, false)
	g.p("\tADDQ $%d, SI", mr*4)
	g.p("\tADDQ $%d, DI", nr*4)
	g.p("\tDECQ CX")
	g.p("\tJNE %s_loop1", name)
	g.p("%s_store:", name)
	g.p("\tMOVQ add+40(FP), AX")
	g.p("\tTESTQ AX, AX")
	g.storeTile(name, mr, nv, vb, acc)
}

// fmaRows emits one reduction step of the mr×64 convolution and Winograd
// kernels: the 64 B values at DI into Z24..Z27, DI advanced by bstep, then
// row i's A value broadcast from the address row(i) and multiplied into
// its accumulators Z4i..Z4i+3, for i < mr.
func (g *gen) fmaRows(mr int, bstep string, row func(i int) string) {
	g.rowsStep(mr, bstep, row, false)
}

// rowsStep is fmaRows, or with mul the first step of a reduction: the
// products are written to the accumulators (VMULPS) instead of added.
func (g *gen) rowsStep(mr int, bstep string, row func(i int) string, mul bool) {
	for j := 0; j < 4; j++ {
		g.p("\tVMOVUPS %d(DI), Z%d", j*64, 24+j)
	}
	g.p("\tADDQ %s, DI", bstep)
	for i := 0; i < mr; i++ {
		br := fmt.Sprintf("Z%d", 28+i%4)
		g.p("\tVBROADCASTSS %s, %s", row(i), br)
		for j := 0; j < 4; j++ {
			if mul {
				g.p("\tVMULPS Z%d, %s, Z%d", 24+j, br, 4*i+j)
			} else {
				g.p("\tVFMADD231PS Z%d, %s, Z%d", 24+j, br, 4*i+j)
			}
		}
	}
}

// kLoop emits the reduction loop of the 6×64 kernels over kc (read from
// the arguments into CX) steps: unroll steps at a time, then one at a
// time, the registers of rows advanced 4 bytes a step, jumping to done
// when kc is used up.
func (g *gen) kLoop(name string, unroll int, rows []string, step func(k int), done string) {
	g.p("\tMOVQ kc+0(FP), CX")
	g.p("\tCMPQ CX, $%d", unroll)
	g.p("\tJLT %s_tail", name)
	g.p("%s_loop%d:", name, unroll)
	for k := 0; k < unroll; k++ {
		step(k)
	}
	for _, r := range rows {
		g.p("\tADDQ $%d, %s", unroll*4, r)
	}
	g.p("\tSUBQ $%d, CX", unroll)
	g.p("\tCMPQ CX, $%d", unroll)
	g.p("\tJGE %s_loop%d", name, unroll)
	g.p("%s_tail:", name)
	g.p("\tTESTQ CX, CX")
	g.p("\tJEQ %s", done)
	g.p("%s_loop1:", name)
	step(0)
	for _, r := range rows {
		g.p("\tADDQ $4, %s", r)
	}
	g.p("\tDECQ CX")
	g.p("\tJNE %s_loop1", name)
}

// rowsKernel emits the AVX-512 "rows" kernel: a 6×64 tile whose six A rows
// are given by pointers (a[0..5], contiguous along k) and whose six C rows
// are given by pointers (c[0..5]); B rows are ldb floats apart, 64 columns
// wide. The k loop runs nseg segments of kc steps; after each segment the
// A row pointers move on by segStep bytes (past the kc·4 bytes read), so a
// window of an NHWC image (KH runs of KW·C contiguous floats, rowStride
// apart) is one call. B rows follow on across segments. Before the tile
// is stored (after C is added to it when add is non-zero), bias[j] is added
// to column j when bias is not nil, and max(·, 0) is taken when relu is
// non-zero, as BiasAdd and reluAVX2 would (VMAXPS returns +0 for NaN and
// -0).
func (g *gen) rowsKernel(name string) {
	const mr, nv, unroll = 6, 4, 4
	rows := []string{"SI", "BX", "R9", "R10", "R11", "R12"}
	acc := func(i, j int) string { return fmt.Sprintf("Z%d", i*nv+j) }
	g.p("// func %s(kc, nseg, segStep int, a **float32, b *float32, ldb int, c **float32, add int, bias *float32, relu int)", name)
	g.p("// computes a %d×%d tile from row pointers; see gen_amd64.go.", mr, nv*16)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-80", name)
	g.p("\tMOVQ a+24(FP), DX")
	for i, r := range rows {
		g.p("\tMOVQ %d(DX), %s", i*8, r)
	}
	g.p("\tMOVQ b+32(FP), DI")
	g.p("\tMOVQ ldb+40(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ segStep+16(FP), AX")
	g.p("\tMOVQ nseg+8(FP), R13")
	for i := 0; i < mr*nv; i++ {
		g.p("\tVPXORD Z%d, Z%d, Z%d", i, i, i)
	}
	step := func(k int) {
		g.fmaRows(mr, "R8", func(i int) string { return fmt.Sprintf("%d(%s)", k*4, rows[i]) })
	}
	g.p("\tTESTQ R13, R13")
	g.p("\tJEQ %s_store", name)
	g.p("%s_seg:", name)
	g.kLoop(name, unroll, rows, step, name+"_next")
	g.p("%s_next:", name)
	for _, r := range rows {
		g.p("\tADDQ AX, %s", r)
	}
	g.p("\tDECQ R13")
	g.p("\tJNE %s_seg", name)
	g.p("%s_store:", name)
	g.p("\tMOVQ c+48(FP), DX")
	g.p("\tMOVQ add+56(FP), CX")
	g.p("\tMOVQ bias+64(FP), BX")
	g.p("\tMOVQ relu+72(FP), R13")
	g.p("\tTESTQ BX, BX")
	g.p("\tJEQ %s_nobias", name)
	for j := 0; j < nv; j++ {
		g.p("\tVMOVUPS %d(BX), Z%d", j*64, 24+j)
	}
	g.p("%s_nobias:", name)
	g.p("\tVPXORD Z28, Z28, Z28")
	for i := 0; i < mr; i++ {
		g.p("\tMOVQ %d(DX), AX", i*8)
		g.p("\tTESTQ CX, CX")
		g.p("\tJEQ %s_ow%d", name, i)
		for j := 0; j < nv; j++ {
			g.p("\tVADDPS %d(AX), %s, %s", j*64, acc(i, j), acc(i, j))
		}
		g.p("%s_ow%d:", name, i)
		g.p("\tTESTQ BX, BX")
		g.p("\tJEQ %s_nb%d", name, i)
		for j := 0; j < nv; j++ {
			g.p("\tVADDPS Z%d, %s, %s", 24+j, acc(i, j), acc(i, j))
		}
		g.p("%s_nb%d:", name, i)
		g.p("\tTESTQ R13, R13")
		g.p("\tJEQ %s_nr%d", name, i)
		for j := 0; j < nv; j++ {
			g.p("\tVMAXPS Z28, %s, %s", acc(i, j), acc(i, j))
		}
		g.p("%s_nr%d:", name, i)
		for j := 0; j < nv; j++ {
			g.p("\tVMOVUPS %s, %d(AX)", acc(i, j), j*64)
		}
	}
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// gatherKernel emits an AVX-512 kernel for an mr×64 tile of C (rows ldc
// floats apart) += Σ_t x[off[2t]+i]·dy[off[2t+1]+j] over kc steps t: each
// step reads its own pair of offsets (in floats) from the list, so the
// rows of the reduction (output pixels of a convolution, with the input
// pixel each reads) need not be evenly spaced. Used for the filter
// gradient, C = patchesᵀ·dy, with the patches read straight from x.
func (g *gen) gatherKernel(name string, mr int) {
	const nv = 4
	acc := func(i, j int) string { return fmt.Sprintf("Z%d", i*nv+j) }
	g.p("// func %s(kc int, off *int, x, dy, c *float32, ldc int, add int)", name)
	g.p("// computes a %d×%d tile from an offset list; see gen_amd64.go.", mr, nv*16)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-56", name)
	g.p("\tMOVQ kc+0(FP), CX")
	g.p("\tMOVQ off+8(FP), SI")
	g.p("\tMOVQ x+16(FP), DI")
	g.p("\tMOVQ dy+24(FP), R9")
	for i := 0; i < mr*nv; i++ {
		g.p("\tVPXORD Z%d, Z%d, Z%d", i, i, i)
	}
	step := func(xr, dr string, k int) {
		g.p("\tMOVQ %d(SI), %s", k*16, xr)
		g.p("\tMOVQ %d(SI), %s", k*16+8, dr)
		for j := 0; j < nv; j++ {
			g.p("\tVMOVUPS %d(R9)(%s*4), Z%d", j*64, dr, 24+j)
		}
		for i := 0; i < mr; i++ {
			br := fmt.Sprintf("Z%d", 28+i%4)
			g.p("\tVBROADCASTSS %d(DI)(%s*4), %s", i*4, xr, br)
			for j := 0; j < nv; j++ {
				g.p("\tVFMADD231PS Z%d, %s, %s", 24+j, br, acc(i, j))
			}
		}
	}
	g.gatherLoop(name, step)
	g.p("\tMOVQ c+32(FP), DX")
	g.p("\tMOVQ ldc+40(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ add+48(FP), CX")
	g.p("\tTESTQ CX, CX")
	g.storeTile(name, mr, nv, 64, acc)
}

// fmaRowsY emits one reduction step of the AVX2 kernels that compute
// mr×16 blocks of a 64-column tile: the 16 B values at b0 and b1 into
// Y12 and Y13, then row i's A value broadcast from row(i) (into Y14 or
// Y15) and multiplied into its accumulators Y2i and Y2i+1, for i < mr.
func (g *gen) fmaRowsY(mr int, b0, b1 string, row func(i int) string) {
	g.p("\tVMOVUPS %s, Y12", b0)
	g.p("\tVMOVUPS %s, Y13", b1)
	for i := 0; i < mr; i++ {
		br := fmt.Sprintf("Y%d", 14+i%2)
		g.p("\tVBROADCASTSS %s, %s", row(i), br)
		g.p("\tVFMADD231PS Y12, %s, Y%d", br, 2*i)
		g.p("\tVFMADD231PS Y13, %s, Y%d", br, 2*i+1)
	}
}

// rowsKernelAVX2 emits the AVX2+FMA rows kernel, with convRowsAVX512's
// arguments and result (see rowsKernel): the 6×64 tile is computed as four
// 6×16 column blocks, one after another, each a whole pass over the
// segments with 12 ymm accumulators (AVX2 has 16 registers, too few for
// the tile at once); the A rows, read again by each pass, stay in L1.
// Each element is summed in the same order as by the AVX-512 kernel.
func (g *gen) rowsKernelAVX2(name string) {
	const mr, unroll = 6, 4
	rows := []string{"SI", "BX", "R9", "R10", "R11", "R12"}
	acc := func(i, j int) string { return fmt.Sprintf("Y%d", 2*i+j) }
	g.p("// func %s(kc, nseg, segStep int, a **float32, b *float32, ldb int, c **float32, add int, bias *float32, relu int)", name)
	g.p("// computes a %d×64 tile from row pointers, 16 columns at a time; see gen_amd64.go.", mr)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-80", name)
	g.p("\tMOVQ ldb+40(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tXORQ AX, AX") // byte offset of the column block
	g.p("%s_block:", name)
	g.p("\tMOVQ a+24(FP), DX")
	for i, r := range rows {
		g.p("\tMOVQ %d(DX), %s", i*8, r)
	}
	g.p("\tMOVQ b+32(FP), DI")
	g.p("\tADDQ AX, DI")
	g.p("\tMOVQ nseg+8(FP), R13")
	for i := 0; i < 2*mr; i++ {
		g.p("\tVXORPS Y%d, Y%d, Y%d", i, i, i)
	}
	step := func(k int) {
		g.fmaRowsY(mr, "0(DI)", "32(DI)", func(i int) string { return fmt.Sprintf("%d(%s)", k*4, rows[i]) })
		g.p("\tADDQ R8, DI")
	}
	g.p("\tTESTQ R13, R13")
	g.p("\tJEQ %s_store", name)
	g.p("%s_seg:", name)
	g.kLoop(name, unroll, rows, step, name+"_next")
	g.p("%s_next:", name)
	for _, r := range rows {
		g.p("\tADDQ segStep+16(FP), %s", r)
	}
	g.p("\tDECQ R13")
	g.p("\tJNE %s_seg", name)
	g.p("%s_store:", name)
	g.p("\tMOVQ c+48(FP), DX")
	g.p("\tMOVQ add+56(FP), CX")
	g.p("\tMOVQ bias+64(FP), BX")
	g.p("\tMOVQ relu+72(FP), R13")
	g.p("\tTESTQ BX, BX")
	g.p("\tJEQ %s_nobias", name)
	g.p("\tVMOVUPS 0(BX)(AX*1), Y12")
	g.p("\tVMOVUPS 32(BX)(AX*1), Y13")
	g.p("%s_nobias:", name)
	g.p("\tVXORPS Y14, Y14, Y14")
	for i := 0; i < mr; i++ {
		g.p("\tMOVQ %d(DX), SI", i*8)
		g.p("\tADDQ AX, SI")
		g.p("\tTESTQ CX, CX")
		g.p("\tJEQ %s_ow%d", name, i)
		for j := 0; j < 2; j++ {
			g.p("\tVADDPS %d(SI), %s, %s", j*32, acc(i, j), acc(i, j))
		}
		g.p("%s_ow%d:", name, i)
		g.p("\tTESTQ BX, BX")
		g.p("\tJEQ %s_nb%d", name, i)
		for j := 0; j < 2; j++ {
			g.p("\tVADDPS Y%d, %s, %s", 12+j, acc(i, j), acc(i, j))
		}
		g.p("%s_nb%d:", name, i)
		g.p("\tTESTQ R13, R13")
		g.p("\tJEQ %s_nr%d", name, i)
		for j := 0; j < 2; j++ {
			g.p("\tVMAXPS Y14, %s, %s", acc(i, j), acc(i, j))
		}
		g.p("%s_nr%d:", name, i)
		for j := 0; j < 2; j++ {
			g.p("\tVMOVUPS %s, %d(SI)", acc(i, j), j*32)
		}
	}
	g.p("\tADDQ $64, AX")
	g.p("\tCMPQ AX, $256")
	g.p("\tJLT %s_block", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// gatherLoop emits the reduction loop of the gather kernels over CX steps
// of the offset list at SI (two steps at a time, their offsets in AX, BX
// and R10, R11, then one), step emitting one step; it ends at the label
// name_store.
func (g *gen) gatherLoop(name string, step func(xr, dr string, k int)) {
	g.p("\tCMPQ CX, $2")
	g.p("\tJLT %s_tail", name)
	g.p("%s_loop2:", name)
	step("AX", "BX", 0)
	step("R10", "R11", 1)
	g.p("\tADDQ $32, SI")
	g.p("\tSUBQ $2, CX")
	g.p("\tCMPQ CX, $2")
	g.p("\tJGE %s_loop2", name)
	g.p("%s_tail:", name)
	g.p("\tTESTQ CX, CX")
	g.p("\tJEQ %s_store", name)
	step("AX", "BX", 0)
	g.p("%s_store:", name)
}

// gatherKernelAVX2 emits the AVX2+FMA gather kernel, with
// convGather<mr>AVX512's arguments and result (see gatherKernel): the
// mr×64 tile as four mr×16 column blocks, each a whole pass over the
// offset list, summed in the same order as by the AVX-512 kernel.
func (g *gen) gatherKernelAVX2(name string, mr int) {
	acc := func(i, j int) string { return fmt.Sprintf("Y%d", 2*i+j) }
	g.p("// func %s(kc int, off *int, x, dy, c *float32, ldc int, add int)", name)
	g.p("// computes a %d×64 tile from an offset list, 16 columns at a time; see gen_amd64.go.", mr)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-56", name)
	g.p("\tXORQ R12, R12") // byte offset of the column block
	g.p("%s_block:", name)
	g.p("\tMOVQ kc+0(FP), CX")
	g.p("\tMOVQ off+8(FP), SI")
	g.p("\tMOVQ x+16(FP), DI")
	g.p("\tMOVQ dy+24(FP), R9")
	g.p("\tADDQ R12, R9")
	for i := 0; i < 2*mr; i++ {
		g.p("\tVXORPS Y%d, Y%d, Y%d", i, i, i)
	}
	step := func(xr, dr string, k int) {
		g.p("\tMOVQ %d(SI), %s", k*16, xr)
		g.p("\tMOVQ %d(SI), %s", k*16+8, dr)
		g.fmaRowsY(mr, fmt.Sprintf("0(R9)(%s*4)", dr), fmt.Sprintf("32(R9)(%s*4)", dr),
			func(i int) string { return fmt.Sprintf("%d(DI)(%s*4)", i*4, xr) })
	}
	g.gatherLoop(name, step)
	g.p("\tMOVQ c+32(FP), DX")
	g.p("\tADDQ R12, DX")
	g.p("\tMOVQ ldc+40(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ add+48(FP), CX")
	g.p("\tTESTQ CX, CX")
	g.p("\tJEQ %s_overwrite", name)
	for i := 0; i < mr; i++ {
		for j := 0; j < 2; j++ {
			g.p("\tVADDPS %d(DX), %s, %s", j*32, acc(i, j), acc(i, j))
			g.p("\tVMOVUPS %s, %d(DX)", acc(i, j), j*32)
		}
		g.p("\tADDQ R8, DX")
	}
	g.p("\tJMP %s_next", name)
	g.p("%s_overwrite:", name)
	for i := 0; i < mr; i++ {
		for j := 0; j < 2; j++ {
			g.p("\tVMOVUPS %s, %d(DX)", acc(i, j), j*32)
		}
		g.p("\tADDQ R8, DX")
	}
	g.p("%s_next:", name)
	g.p("\tADDQ $64, R12")
	g.p("\tCMPQ R12, $256")
	g.p("\tJLT %s_block", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// storeTile emits the end of a tile kernel whose flags say whether to add
// (JEQ falls through to adding): the mr×nv accumulators acc(i, j) are added
// to, or written over, C rows starting at DX, R8 bytes apart, vb bytes per
// vector; both ways end in VZEROUPPER and RET.
func (g *gen) storeTile(name string, mr, nv, vb int, acc func(i, j int) string) {
	g.p("\tJEQ %s_overwrite", name)
	for i := 0; i < mr; i++ {
		for j := 0; j < nv; j++ {
			g.p("\tVADDPS %d(DX), %s, %s", j*vb, acc(i, j), acc(i, j))
			g.p("\tVMOVUPS %s, %d(DX)", acc(i, j), j*vb)
		}
		if i < mr-1 {
			g.p("\tADDQ R8, DX")
		}
	}
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("%s_overwrite:", name)
	for i := 0; i < mr; i++ {
		for j := 0; j < nv; j++ {
			g.p("\tVMOVUPS %s, %d(DX)", acc(i, j), j*vb)
		}
		if i < mr-1 {
			g.p("\tADDQ R8, DX")
		}
	}
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// peak emits a loop of independent FMAs over nacc accumulators, iters times,
// for measuring the FMA peak.
func (g *gen) peak(name, reg string, nacc int) {
	g.p("// func %s(iters int)", name)
	g.p("// runs iters×%d independent FMAs.", nacc)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-8", name)
	g.p("\tMOVQ iters+0(FP), CX")
	for i := 0; i < nacc+2; i++ {
		r := fmt.Sprintf("%s%d", reg, i)
		if reg == "Z" {
			g.p("\tVPXORD %s, %s, %s", r, r, r)
		} else {
			g.p("\tVXORPS %s, %s, %s", r, r, r)
		}
	}
	g.p("\tTESTQ CX, CX")
	g.p("\tJEQ %s_done", name)
	g.p("%s_loop:", name)
	for i := 0; i < nacc; i++ {
		g.p("\tVFMADD231PS %s%d, %s%d, %s%d", reg, nacc, reg, nacc+1, reg, i)
	}
	g.p("\tDECQ CX")
	g.p("\tJNE %s_loop", name)
	g.p("%s_done:", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// Winograd F(2×2, 3×3) transforms (see winograd.go), 16 lanes (channels or
// filters) per zmm register. z(i) names Zi; sub(a, b, d) emits Zd = Za − Zb
// and add(a, b, d) Zd = Za + Zb.
func z(i int) string { return fmt.Sprintf("Z%d", i) }

func (g *gen) sub(a, b, d int) { g.p("\tVSUBPS %s, %s, %s", g.v(b), g.v(a), g.v(d)) }
func (g *gen) add(a, b, d int) { g.p("\tVADDPS %s, %s, %s", g.v(b), g.v(a), g.v(d)) }

// at2 emits one row or column of F(2×2, 3×3)'s Aᵀ = [1 1 1 0; 0 1 −1 −1]
// applied to the values in registers m: s0 = m0 + m1 + m2, s1 = m1 − m2 −
// m3, summed in that order (both register files).
func (g *gen) at2(m [4]int, s0, s1 int) {
	g.add(m[0], m[1], s0)
	g.add(s0, m[2], s0)
	g.sub(m[1], m[2], s1)
	g.sub(s1, m[3], s1)
}

// gt3 emits one row or column of F(2×2, 3×3)'s G = [1 0 0; ½ ½ ½; ½ −½ ½;
// 0 0 1] applied to the values in registers b0, b1, b2 (the first and last
// outputs are b0 and b2 themselves): t = b0 + b2, u1 = ½(t + b1), u2 =
// ½(t − b1), with ½ in register half (both register files).
func (g *gen) gt3(b0, b1, b2, t, u1, u2, half int) {
	g.add(b0, b2, t)
	g.add(t, b1, u1)
	g.mul(u1, half, u1)
	g.sub(t, b1, u2)
	g.mul(u2, half, u2)
}

// v names register i for the helpers: Zi, or with ymm Yi or the memory
// operand cmem gives for i.
func (g *gen) v(i int) string {
	if !g.ymm {
		return z(i)
	}
	if m, ok := g.cmem[i]; ok {
		return m
	}
	return fmt.Sprintf("Y%d", i)
}

// planes emits loads (load) or stores of the registers Z<regs[i]> from or
// to consecutive planes: the address in ptr, advanced by stride between
// planes.
func (g *gen) planes(load bool, ptr, stride string, regs []int) {
	for i, r := range regs {
		if load {
			g.p("\tVMOVUPS (%s), %s", ptr, g.v(r))
		} else {
			g.p("\tVMOVUPS %s, (%s)", g.v(r), ptr)
		}
		if i < len(regs)-1 {
			g.p("\tADDQ %s, %s", stride, ptr)
		}
	}
}

// seq returns first, first+1, …, first+n−1.
func seq(first, n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = first + i
	}
	return r
}

// blockLoop opens the loop of the transform kernels over CX blocks of 16
// lanes, AX the byte offset of the current block; blockLoopEnd closes it
// and returns.
func (g *gen) blockLoop(name string) {
	g.p("\tXORQ AX, AX")
	g.p("\tTESTQ CX, CX")
	g.p("\tJEQ %s_done", name)
	g.p("%s_loop:", name)
}

func (g *gen) blockLoopEnd(name string) {
	if g.ymm {
		g.p("\tADDQ $32, AX") // blocks of 8 lanes
	} else {
		g.p("\tADDQ $64, AX")
	}
	g.p("\tDECQ CX")
	g.p("\tJNE %s_loop", name)
	g.p("%s_done:", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// winoInput emits the input transform V = Bᵀ·d·B of 4×4 input tiles, with
// Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]: d[i][j] is read from
// p[4i+j] + 16·b floats and V[ξ] stored at v + ξ·vstride + 16·b floats,
// for channel blocks b < nblk.
func (g *gen) winoInput(name string) {
	g.p("// func %s(p *[16]*float32, nblk int, v *float32, vstride int)", name)
	g.p("// Winograd F(2×2,3×3) input transform; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-32", name)
	g.p("\tMOVQ p+0(FP), SI")
	g.p("\tMOVQ nblk+8(FP), CX")
	g.p("\tMOVQ v+16(FP), DI")
	g.p("\tMOVQ vstride+24(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.blockLoop(name)
	for e := 0; e < 16; e++ {
		g.p("\tMOVQ %d(SI), DX", e*8)
		g.p("\tVMOVUPS (DX)(AX*1), Z%d", e)
	}
	// Bᵀ·d, one column j at a time: rows r0..r3 in Z16+j, Z20+j, Z24+j, Z28+j
	for j := 0; j < 4; j++ {
		g.sub(j, 8+j, 16+j)
		g.add(4+j, 8+j, 20+j)
		g.sub(8+j, 4+j, 24+j)
		g.sub(4+j, 12+j, 28+j)
	}
	// (Bᵀ·d)·B, one row i at a time, into Z4i..Z4i+3
	for i := 0; i < 4; i++ {
		r := 16 + 4*i
		g.sub(r, r+2, 4*i)
		g.add(r+1, r+2, 4*i+1)
		g.sub(r+2, r+1, 4*i+2)
		g.sub(r+1, r+3, 4*i+3)
	}
	g.p("\tLEAQ (DI)(AX*1), BX")
	g.planes(false, "BX", "R8", seq(0, 16))
	g.blockLoopEnd(name)
}

// winoOutput emits the output transform Y = Aᵀ·M·A of 4×4 product tiles,
// with Aᵀ = [1 1 1 0; 0 1 −1 −1]: M[ξ] is read from m + ξ·mstride + 16·b
// floats and Y[i][j] stored at y[2i+j] + 16·b floats for filter blocks
// b < nblk, after adding bias (when not nil) and applying ReLU (when relu
// is non-zero) as the separate ops do.
func (g *gen) winoOutput(name string) {
	g.p("// func %s(m *float32, mstride, nblk int, y *[4]*float32, bias *float32, relu int)", name)
	g.p("// Winograd F(2×2,3×3) output transform; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-48", name)
	g.p("\tMOVQ m+0(FP), SI")
	g.p("\tMOVQ mstride+8(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ nblk+16(FP), CX")
	g.p("\tMOVQ y+24(FP), DI")
	out := []string{"R9", "R10", "R11", "R12"}
	for i, r := range out {
		g.p("\tMOVQ %d(DI), %s", i*8, r)
	}
	g.p("\tMOVQ bias+32(FP), BX")
	g.p("\tMOVQ relu+40(FP), R13")
	g.p("\tVPXORD Z31, Z31, Z31")
	g.blockLoop(name)
	g.p("\tLEAQ (SI)(AX*1), DX")
	g.planes(true, "DX", "R8", seq(0, 16))
	// Aᵀ·M, one column j at a time: rows s0, s1 in Z16+j, Z20+j
	for j := 0; j < 4; j++ {
		g.at2([4]int{j, 4 + j, 8 + j, 12 + j}, 16+j, 20+j)
	}
	// (Aᵀ·M)·A: Y[i][0] in Z24+i, Y[i][1] in Z26+i
	for i := 0; i < 2; i++ {
		r := 16 + 4*i
		g.at2([4]int{r, r + 1, r + 2, r + 3}, 24+i, 26+i)
	}
	res := []int{24, 26, 25, 27} // Y[0][0], Y[0][1], Y[1][0], Y[1][1]
	g.p("\tTESTQ BX, BX")
	g.p("\tJEQ %s_nobias", name)
	g.p("\tVMOVUPS (BX)(AX*1), Z28")
	for _, r := range res {
		g.p("\tVADDPS Z28, %s, %s", z(r), z(r))
	}
	g.p("%s_nobias:", name)
	g.p("\tTESTQ R13, R13")
	g.p("\tJEQ %s_store", name)
	for _, r := range res {
		g.p("\tVMAXPS Z31, %s, %s", z(r), z(r))
	}
	g.p("%s_store:", name)
	for i, r := range res {
		g.p("\tVMOVUPS %s, (%s)(AX*1)", z(r), out[i])
	}
	g.blockLoopEnd(name)
}

// winoFilter emits the filter transform U = G·g·Gᵀ of 3×3 filters, with
// G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]: g[ky][kx] is read from w + (3ky+kx)·cf
// + 16·b floats and U[ξ] stored at u + ξ·ustride + 16·b floats, for blocks
// b < n16 (an HWIO filter's taps are cf = C·F floats apart).
func (g *gen) winoFilter(name string) {
	g.p("// func %s(w *float32, cf int, u *float32, ustride, n16 int, half float32)", name)
	g.p("// Winograd F(2×2,3×3) filter transform; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-44", name)
	g.p("\tMOVQ w+0(FP), SI")
	g.p("\tMOVQ cf+8(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ u+16(FP), DI")
	g.p("\tMOVQ ustride+24(FP), R9")
	g.p("\tSHLQ $2, R9")
	g.p("\tMOVQ n16+32(FP), CX")
	g.p("\tVBROADCASTSS half+40(FP), Z31")
	g.blockLoop(name)
	g.p("\tLEAQ (SI)(AX*1), DX")
	g.planes(true, "DX", "R8", seq(0, 9))
	// G·g, one column k at a time: rows g0 (Z0+k), ½(g0+g2+g1) (Z12+k),
	// ½(g0+g2−g1) (Z15+k), g2 (Z6+k)
	for k := 0; k < 3; k++ {
		g.gt3(k, 3+k, 6+k, 9+k, 12+k, 15+k, 31)
	}
	g.winoFilterRows([4]int{0, 12, 15, 6}, 18, 19, 20, 31)
	g.blockLoopEnd(name)
}

// winoFilterRows emits (G·g)·Gᵀ of winoFilter from the rows of G·g, whose
// three values start at the registers rows, with temporaries t, u1, u2
// and ½ in half, storing the 16 planes at DI + AX on, R9 bytes apart.
func (g *gen) winoFilterRows(rows [4]int, t, u1, u2, half int) {
	g.p("\tLEAQ (DI)(AX*1), DX")
	for i, b0 := range rows {
		g.gt3(b0, b0+1, b0+2, t, u1, u2, half)
		for j, r := range []int{b0, u1, u2, b0 + 2} {
			g.p("\tVMOVUPS %s, (DX)", g.v(r))
			if i < 3 || j < 3 {
				g.p("\tADDQ R9, DX")
			}
		}
	}
}

// winoGemm emits winoGemmAVX512, the products of the Winograd transform
// domain: C[r][0:64] = Σ_k A[r][k]·B[k][0:64] for the rows r of npanel
// panels of 6, A's rows lda floats apart, B's ldb, C's ldc. Like the rows
// kernel (6×64 tile, the same order of sums) but with evenly spaced rows,
// so a whole column of panels is one call.
func (g *gen) winoGemm(name string) {
	const mr, nv, unroll = 6, 4, 4
	acc := func(i, j int) string { return fmt.Sprintf("Z%d", i*nv+j) }
	// row i of A (and C) relative to its base registers
	rowA := []string{"(SI)", "(SI)(R8*1)", "(SI)(R8*2)", "(R9)", "(R9)(R8*1)", "(R9)(R8*2)"}
	rowC := []string{"(DX)", "(DX)(R12*1)", "(DX)(R12*2)", "(R13)", "(R13)(R12*1)", "(R13)(R12*2)"}
	g.p("// func %s(kc, npanel int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)", name)
	g.p("// computes npanel 6×64 tiles of evenly spaced rows; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-64", name)
	g.p("\tMOVQ a+16(FP), AX")
	g.p("\tMOVQ lda+24(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ b+32(FP), R11")
	g.p("\tMOVQ ldb+40(FP), R10")
	g.p("\tSHLQ $2, R10")
	g.p("\tMOVQ c+48(FP), DX")
	g.p("\tMOVQ ldc+56(FP), R12")
	g.p("\tSHLQ $2, R12")
	g.p("\tMOVQ npanel+8(FP), BX")
	g.p("\tTESTQ BX, BX")
	g.p("\tJEQ %s_done", name)
	g.p("%s_panel:", name)
	g.p("\tMOVQ AX, SI")
	g.p("\tLEAQ (SI)(R8*2), R9")
	g.p("\tADDQ R8, R9")
	g.p("\tMOVQ R11, DI")
	for i := 0; i < mr*nv; i++ {
		g.p("\tVPXORD Z%d, Z%d, Z%d", i, i, i)
	}
	step := func(k int) {
		g.fmaRows(mr, "R10", func(i int) string { return fmt.Sprintf("%d%s", k*4, rowA[i]) })
	}
	g.kLoop(name, unroll, []string{"SI", "R9"}, step, name+"_store")
	g.p("%s_store:", name)
	g.p("\tLEAQ (DX)(R12*2), R13")
	g.p("\tADDQ R12, R13")
	for i := 0; i < mr; i++ {
		for j := 0; j < nv; j++ {
			g.p("\tVMOVUPS %s, %d%s", acc(i, j), j*64, rowC[i])
		}
	}
	// next panel: A and C 6 rows on
	g.p("\tLEAQ (R12)(R12*2), R13")
	g.p("\tADDQ R13, DX")
	g.p("\tADDQ R13, DX")
	g.p("\tLEAQ (R8)(R8*2), R13")
	g.p("\tADDQ R13, AX")
	g.p("\tADDQ R13, AX")
	g.p("\tDECQ BX")
	g.p("\tJNE %s_panel", name)
	g.p("%s_done:", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// directKernel emits convDirectAVX512, the direct convolution of npix
// output pixels of one row whose windows lie inside the input, 64 filters
// (the AVX-512 form of simd_amd64.s's convRowsAVX2, same arguments, same
// order of sums): for pixel q (x advanced by q·pixStep floats, y by
// q·ldw) y[f] = Σ_{ky<kh} Σ_{j<run} x[ky·rowStride+j]·w[(ky·run+j)·ldw+f],
// then bias (when not nil) and ReLU (when relu is non-zero). Six pixels at
// a time share each load of w (24 zmm accumulators), then one at a time.
func (g *gen) directKernel(name string) {
	const nv = 4
	acc := func(i, j int) string { return fmt.Sprintf("Z%d", i*nv+j) }
	pixA := []string{"(R11)", "(R11)(R13*1)", "(R11)(R13*2)", "(AX)", "(AX)(R13*1)", "(AX)(R13*2)"}
	pixY := []string{"(DX)", "(DX)(R8*1)", "(DX)(R8*2)", "(R9)", "(R9)(R8*1)", "(R9)(R8*2)"}
	g.p("// func %s(x *float32, rowStride, kh, run int, w *float32, ldw int, y *float32, npix, pixStep int, bias *float32, relu int)", name)
	g.p("// direct convolution of npix pixels, 64 filters; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-88", name)
	g.p("\tMOVQ x+0(FP), SI")
	g.p("\tMOVQ rowStride+8(FP), R12")
	g.p("\tSHLQ $2, R12")
	g.p("\tMOVQ ldw+40(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ y+48(FP), DX")
	g.p("\tMOVQ npix+56(FP), BX")
	g.p("\tMOVQ pixStep+64(FP), R13")
	g.p("\tSHLQ $2, R13")
	// body emits one group of mr pixels (mr = 6 or 1)
	body := func(mr int, label string) {
		for i := 0; i < mr*nv; i++ {
			g.p("\tVPXORD %s, %s, %s", acc(i/nv, i%nv), acc(i/nv, i%nv), acc(i/nv, i%nv))
		}
		g.p("\tMOVQ w+32(FP), DI")
		g.p("\tMOVQ kh+16(FP), CX")
		g.p("\tMOVQ SI, R10")
		g.p("%s_ky:", label)
		g.p("\tMOVQ R10, R11")
		if mr > 3 {
			g.p("\tLEAQ (R11)(R13*2), AX")
			g.p("\tADDQ R13, AX")
		}
		g.p("\tMOVQ run+24(FP), R9")
		g.p("%s_j:", label)
		g.fmaRows(mr, "R8", func(i int) string { return pixA[i] })
		g.p("\tADDQ $4, R11")
		if mr > 3 {
			g.p("\tADDQ $4, AX")
		}
		g.p("\tDECQ R9")
		g.p("\tJNE %s_j", label)
		g.p("\tADDQ R12, R10")
		g.p("\tDECQ CX")
		g.p("\tJNE %s_ky", label)
		g.p("\tMOVQ bias+72(FP), R10")
		g.p("\tTESTQ R10, R10")
		g.p("\tJEQ %s_nobias", label)
		for j := 0; j < nv; j++ {
			g.p("\tVMOVUPS %d(R10), Z%d", j*64, 24+j)
		}
		for i := 0; i < mr; i++ {
			for j := 0; j < nv; j++ {
				g.p("\tVADDPS Z%d, %s, %s", 24+j, acc(i, j), acc(i, j))
			}
		}
		g.p("%s_nobias:", label)
		g.p("\tMOVQ relu+80(FP), R10")
		g.p("\tTESTQ R10, R10")
		g.p("\tJEQ %s_store", label)
		g.p("\tVPXORD Z28, Z28, Z28")
		for i := 0; i < mr*nv; i++ {
			g.p("\tVMAXPS Z28, %s, %s", acc(i/nv, i%nv), acc(i/nv, i%nv))
		}
		g.p("%s_store:", label)
		if mr > 3 {
			g.p("\tLEAQ (DX)(R8*2), R9")
			g.p("\tADDQ R8, R9")
		}
		for i := 0; i < mr; i++ {
			for j := 0; j < nv; j++ {
				g.p("\tVMOVUPS %s, %d%s", acc(i, j), j*64, pixY[i])
			}
		}
	}
	g.p("%s_six:", name)
	g.p("\tCMPQ BX, $6")
	g.p("\tJLT %s_one", name)
	body(6, name+"6")
	// next six pixels
	g.p("\tLEAQ (R13)(R13*2), R10")
	g.p("\tADDQ R10, SI")
	g.p("\tADDQ R10, SI")
	g.p("\tLEAQ (R8)(R8*2), R10")
	g.p("\tADDQ R10, DX")
	g.p("\tADDQ R10, DX")
	g.p("\tSUBQ $6, BX")
	g.p("\tJMP %s_six", name)
	g.p("%s_one:", name)
	g.p("\tTESTQ BX, BX")
	g.p("\tJEQ %s_done", name)
	body(1, name+"1")
	g.p("\tADDQ R13, SI")
	g.p("\tADDQ R8, DX")
	g.p("\tDECQ BX")
	g.p("\tJMP %s_one", name)
	g.p("%s_done:", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// directPoolKernel emits convDirectPoolAVX512: the direct convolution of
// the 2×2 windows of npool pixels of a 2×2, stride-2 max pooling, 64
// filters, every window's four pixels inside the input, with bias (when
// not nil) and ReLU applied to each pixel as directKernel does, then the
// window's maximum stored: for pooled pixel q (x advanced by 2q·pixStep
// floats, y by q·ldw) the pixel (a, b) of its window reads from x +
// a·convRowStep + b·pixStep, its taps as in directKernel. Only the pooled
// values are stored (inference, where the convolution's output and the
// pooling's argmax are not kept). The stored values have the bits of
// ReLU(pixel + bias) pooled by MaxPool2DForward, NaN and signed zeros
// included (see the epilogue).
func (g *gen) directPoolKernel(name string) {
	const nv, mr = 4, 4
	acc := func(i, j int) string { return fmt.Sprintf("Z%d", i*nv+j) }
	pixA := []string{"(R11)", "(R11)(R13*1)", "(AX)", "(AX)(R13*1)"}
	g.p("// func %s(x *float32, rowStride, kh, run int, w *float32, ldw int, y *float32, npool, pixStep, convRowStep int, bias *float32)", name)
	g.p("// direct convolution and ReLU of npool 2×2 pooling windows, 64 filters, max stored; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-88", name)
	g.p("\tMOVQ x+0(FP), SI")
	g.p("\tMOVQ rowStride+8(FP), R12")
	g.p("\tSHLQ $2, R12")
	g.p("\tMOVQ ldw+40(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ y+48(FP), DX")
	g.p("\tMOVQ npool+56(FP), BX")
	g.p("\tMOVQ pixStep+64(FP), R13")
	g.p("\tSHLQ $2, R13")
	// the bias in Z16..Z19 (zeros without one: adding +0 changes only a
	// −0, which the ReLU makes +0 anyway)
	for j := 0; j < nv; j++ {
		g.p("\tVPXORD Z%d, Z%d, Z%d", 16+j, 16+j, 16+j)
	}
	g.p("\tMOVQ bias+80(FP), AX")
	g.p("\tTESTQ AX, AX")
	g.p("\tJEQ %s_nobias", name)
	for j := 0; j < nv; j++ {
		g.p("\tVMOVUPS %d(AX), Z%d", j*64, 16+j)
	}
	g.p("%s_nobias:", name)
	g.p("\tTESTQ BX, BX")
	g.p("\tJEQ %s_done", name)
	g.p("%s_pool:", name)
	g.p("\tMOVQ w+32(FP), DI")
	g.p("\tMOVQ kh+16(FP), CX")
	g.p("\tMOVQ SI, R10")
	rowStart := func() {
		g.p("\tMOVQ R10, R11")
		g.p("\tMOVQ convRowStep+72(FP), AX")
		g.p("\tLEAQ (R11)(AX*4), AX")
		g.p("\tMOVQ run+24(FP), R9")
	}
	advance := func() {
		g.p("\tADDQ $4, R11")
		g.p("\tADDQ $4, AX")
		g.p("\tDECQ R9")
	}
	// the first tap sets the accumulators (a product is what 0 plus it
	// rounds to, but for the sign of a zero, which the ReLU clears)
	rowStart()
	g.rowsStep(mr, "R8", func(i int) string { return pixA[i] }, true)
	advance()
	g.p("\tJEQ %s_nextky", name)
	g.p("%s_j:", name)
	g.fmaRows(mr, "R8", func(i int) string { return pixA[i] })
	advance()
	g.p("\tJNE %s_j", name)
	g.p("%s_nextky:", name)
	g.p("\tADDQ R12, R10")
	g.p("\tDECQ CX")
	g.p("\tJEQ %s_epi", name)
	rowStart()
	g.p("\tJMP %s_j", name)
	g.p("%s_epi:", name)
	// max over the window skipping NaNs (VMAXPS returns its second source
	// when either is NaN), from −Inf; then the bias and the ReLU. This is
	// the maximum of ReLU(pixel + bias) over the window, bit for bit:
	// adding the bias is monotone, and the ReLU maps NaN and −0 to +0.
	g.p("\tVPXORD Z28, Z28, Z28")
	g.p("\tMOVL $0xff800000, AX")
	g.p("\tVPBROADCASTD AX, Z29")
	for j := 0; j < nv; j++ {
		g.p("\tVMAXPS Z29, %s, %s", acc(0, j), acc(0, j))
		for i := 1; i < mr; i++ {
			g.p("\tVMAXPS %s, %s, %s", acc(0, j), acc(i, j), acc(0, j))
		}
		g.p("\tVADDPS Z%d, %s, %s", 16+j, acc(0, j), acc(0, j))
		g.p("\tVMAXPS Z28, %s, %s", acc(0, j), acc(0, j))
		g.p("\tVMOVUPS %s, %d(DX)", acc(0, j), j*64)
	}
	// next window: two pixels on
	g.p("\tADDQ R13, SI")
	g.p("\tADDQ R13, SI")
	g.p("\tADDQ R8, DX")
	g.p("\tDECQ BX")
	g.p("\tJNE %s_pool", name)
	g.p("%s_done:", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// winoGemmT emits winoGemmTAVX512, the products of the Winograd filter
// gradient: C[i][0:64] (+)= Σ_k A[k][i]·B[k][0:64] for the 6 rows i of one
// panel, A's columns i consecutive floats and its rows k lda floats apart,
// B's rows ldb floats apart, C's rows ldc floats apart; C is added to when
// add is non-zero and overwritten otherwise.
func (g *gen) winoGemmT(name string) {
	const mr, nv = 6, 4
	acc := func(i, j int) string { return fmt.Sprintf("Z%d", i*nv+j) }
	rowC := []string{"(DX)", "(DX)(R12*1)", "(DX)(R12*2)", "(R13)", "(R13)(R12*1)", "(R13)(R12*2)"}
	g.p("// func %s(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, add int)", name)
	g.p("// computes a 6×64 tile of Aᵀ·B; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-64", name)
	g.p("\tMOVQ a+8(FP), SI")
	g.p("\tMOVQ lda+16(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ b+24(FP), DI")
	g.p("\tMOVQ ldb+32(FP), R10")
	g.p("\tSHLQ $2, R10")
	g.p("\tMOVQ c+40(FP), DX")
	g.p("\tMOVQ ldc+48(FP), R12")
	g.p("\tSHLQ $2, R12")
	for i := 0; i < mr*nv; i++ {
		g.p("\tVPXORD Z%d, Z%d, Z%d", i, i, i)
	}
	g.p("\tMOVQ kc+0(FP), CX")
	g.p("\tTESTQ CX, CX")
	g.p("\tJEQ %s_store", name)
	g.p("%s_loop:", name)
	g.fmaRows(mr, "R10", func(i int) string { return fmt.Sprintf("%d(SI)", i*4) })
	g.p("\tADDQ R8, SI")
	g.p("\tDECQ CX")
	g.p("\tJNE %s_loop", name)
	g.p("%s_store:", name)
	g.p("\tLEAQ (DX)(R12*2), R13")
	g.p("\tADDQ R12, R13")
	g.p("\tMOVQ add+56(FP), CX")
	g.p("\tTESTQ CX, CX")
	g.p("\tJEQ %s_over", name)
	for i := 0; i < mr; i++ {
		for j := 0; j < nv; j++ {
			g.p("\tVADDPS %d%s, %s, %s", j*64, rowC[i], acc(i, j), acc(i, j))
		}
	}
	g.p("%s_over:", name)
	for i := 0; i < mr; i++ {
		for j := 0; j < nv; j++ {
			g.p("\tVMOVUPS %s, %d%s", acc(i, j), j*64, rowC[i])
		}
	}
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// winoDy emits the output-gradient transform of the Winograd filter
// gradient, D = A·g·Aᵀ of 2×2 tiles g of dy, with A = [1 0; 1 1; 1 −1;
// 0 −1]: g[i][j] is read from p[2i+j] + 16·b floats and D[ξ] stored at
// d + ξ·dstride + 16·b floats, for filter blocks b < nblk.
func (g *gen) winoDy(name string) {
	g.p("// func %s(p *[4]*float32, nblk int, d *float32, dstride int)", name)
	g.p("// Winograd F(3×3,2×2) output-gradient transform; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-32", name)
	g.p("\tMOVQ p+0(FP), SI")
	g.p("\tMOVQ 0(SI), R9")
	g.p("\tMOVQ 8(SI), R10")
	g.p("\tMOVQ 16(SI), R11")
	g.p("\tMOVQ 24(SI), R12")
	g.p("\tMOVQ nblk+8(FP), CX")
	g.p("\tMOVQ d+16(FP), DI")
	g.p("\tMOVQ dstride+24(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tVPXORD Z31, Z31, Z31")
	g.blockLoop(name)
	for i, r := range []string{"R9", "R10", "R11", "R12"} {
		g.p("\tVMOVUPS (%s)(AX*1), Z%d", r, i) // g00 g01 g10 g11 in Z0..Z3
	}
	// A·g: rows r0..r3 of 2 values, in Z4+2i, Z5+2i
	g.p("\tVMOVAPS Z0, Z4")
	g.p("\tVMOVAPS Z1, Z5")
	g.add(0, 2, 6)
	g.add(1, 3, 7)
	g.sub(0, 2, 8)
	g.sub(1, 3, 9)
	g.sub(31, 2, 10)
	g.sub(31, 3, 11)
	// (A·g)·Aᵀ: row i is [r0, r0+r1, r0−r1, −r1], into Z12+4i..Z15+4i
	for i := 0; i < 4; i++ {
		r0, r1 := 4+2*i, 5+2*i
		o := 12 + 4*i
		g.p("\tVMOVAPS Z%d, Z%d", r0, o)
		g.add(r0, r1, o+1)
		g.sub(r0, r1, o+2)
		g.sub(31, r1, o+3)
	}
	g.p("\tLEAQ (DI)(AX*1), BX")
	g.planes(false, "BX", "R8", seq(12, 16))
	g.blockLoopEnd(name)
}

// winoGradOut emits the output transform of the Winograd filter gradient,
// W = Gᵀ·M·G of 4×4 product tiles into 3×3 filter taps, with Gᵀ = [1 ½ ½
// 0; 0 ½ −½ 0; 0 ½ ½ 1]: M[ξ] is read from m + ξ·mstride + 16·b floats and
// W[ky][kx] stored at w + (3ky+kx)·wstride + 16·b floats, for blocks b <
// nblk.
func (g *gen) winoGradOut(name string) {
	g.p("// func %s(m *float32, mstride, nblk int, w *float32, wstride int, half float32)", name)
	g.p("// Winograd F(3×3,2×2) output transform; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-44", name)
	g.p("\tMOVQ m+0(FP), SI")
	g.p("\tMOVQ mstride+8(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ nblk+16(FP), CX")
	g.p("\tMOVQ w+24(FP), DI")
	g.p("\tMOVQ wstride+32(FP), R9")
	g.p("\tSHLQ $2, R9")
	g.p("\tVBROADCASTSS half+40(FP), Z31")
	g.blockLoop(name)
	g.p("\tLEAQ (SI)(AX*1), DX")
	g.planes(true, "DX", "R8", seq(0, 16))
	// Gᵀ·M, one column j at a time: rows s0, s1, s2 in Z16+j, Z20+j, Z24+j
	for j := 0; j < 4; j++ {
		g.add(4+j, 8+j, 28)                       // m1 + m2
		g.p("\tVMULPS Z31, Z28, Z28")             // ½(m1 + m2)
		g.add(j, 28, 16+j)                        // s0 = m0 + ½(m1+m2)
		g.sub(4+j, 8+j, 20+j)                     // m1 − m2
		g.p("\tVMULPS Z31, Z%d, Z%d", 20+j, 20+j) // s1 = ½(m1 − m2)
		g.add(28, 12+j, 24+j)                     // s2 = ½(m1+m2) + m3
	}
	// (Gᵀ·M)·G, one row i at a time, into Z0..Z8 (tap 3i+k)
	for i := 0; i < 3; i++ {
		r := 16 + 4*i
		g.add(r+1, r+2, 28)
		g.p("\tVMULPS Z31, Z28, Z28")
		g.add(r, 28, 3*i)
		g.sub(r+1, r+2, 3*i+1)
		g.p("\tVMULPS Z31, Z%d, Z%d", 3*i+1, 3*i+1)
		g.add(28, r+3, 3*i+2)
	}
	g.p("\tLEAQ (DI)(AX*1), DX")
	g.planes(false, "DX", "R9", seq(0, 9))
	g.blockLoopEnd(name)
}

// Winograd F(4×4, 3×3) transforms (see winograd.go): 6×6 input tiles, 4×4
// output tiles, 36 points. The 2-D transforms run as two passes of 1-D
// ones through a scratch area (tmp, 36 vectors): the columns first, then
// the rows. Constants are broadcast from immediates.

// fma emits Zd += Za·Zb, fnma Zd −= Za·Zb, mov Zd = Za, mul Zd = Za·Zb.
func (g *gen) fma(a, b, d int)  { g.p("\tVFMADD231PS %s, %s, %s", g.v(a), g.v(b), g.v(d)) }
func (g *gen) fnma(a, b, d int) { g.p("\tVFNMADD231PS %s, %s, %s", g.v(a), g.v(b), g.v(d)) }
func (g *gen) mov(a, d int)     { g.p("\tVMOVAPS %s, %s", g.v(a), g.v(d)) }
func (g *gen) mul(a, b, d int)  { g.p("\tVMULPS %s, %s, %s", g.v(b), g.v(a), g.v(d)) }

// const32 broadcasts the float32 v into Zreg through the register gpr.
func (g *gen) const32(v float32, reg int, gpr string) {
	g.p("\tMOVL $0x%08x, %s", math.Float32bits(v), gpr)
	g.p("\tVPBROADCASTD %s, Z%d", gpr, reg)
}

// bt6 emits o = Bᵀ·d for F(4×4, 3×3), Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0;
// 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1], with the
// constants 4, 5 and 2 in Z28, Z29 and Z30 and t1, t2 free.
func (g *gen) bt6(d, o [6]int, t1, t2 int) {
	const c4, c5, c2 = 28, 29, 30
	g.mov(d[4], o[0])
	g.fnma(c5, d[2], o[0])
	g.fma(c4, d[0], o[0]) // 4d0 − 5d2 + d4
	g.mov(d[4], t1)
	g.fnma(c4, d[2], t1) // d4 − 4d2
	g.mov(d[3], t2)
	g.fnma(c4, d[1], t2) // d3 − 4d1
	g.add(t1, t2, o[1])
	g.sub(t1, t2, o[2])
	g.sub(d[4], d[2], t1) // d4 − d2
	g.sub(d[3], d[1], t2) // d3 − d1
	g.mov(t1, o[3])
	g.fma(c2, t2, o[3])
	g.mov(t1, o[4])
	g.fnma(c2, t2, o[4])
	g.mov(d[5], o[5])
	g.fnma(c5, d[3], o[5])
	g.fma(c4, d[1], o[5]) // 4d1 − 5d3 + d5
}

// at6 emits o = Aᵀ·m for F(4×4, 3×3), Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0;
// 0 1 1 4 4 0; 0 1 −1 8 −8 1], with the constants 2, 4 and 8 in Z28, Z29
// and Z30 and Z12..Z15 free.
func (g *gen) at6(m [6]int, o [4]int) {
	const c2, c4, c8 = 28, 29, 30
	const a, b, c, d = 12, 13, 14, 15
	g.add(m[1], m[2], a)
	g.sub(m[1], m[2], b)
	g.add(m[3], m[4], c)
	g.sub(m[3], m[4], d)
	g.add(m[0], a, o[0])
	g.add(o[0], c, o[0]) // m0 + a + c
	g.mov(b, o[1])
	g.fma(c2, d, o[1]) // b + 2d
	g.mov(a, o[2])
	g.fma(c4, c, o[2]) // a + 4c
	g.add(b, m[5], o[3])
	g.fma(c8, d, o[3]) // b + 8d + m5
}

// winoInput43 emits the input transform V = Bᵀ·d·B of 6×6 input tiles:
// d[i][j] is read from p[6i+j] + 16·b floats and V[ξ] stored at v +
// ξ·vstride + 16·b floats, for channel blocks b < nblk; tmp is 36·16
// floats of scratch. With g.ymm it emits the AVX2 form (see
// winoInput43AVX2).
func (g *gen) winoInput43(name string) {
	g.p("// func %s(p *[36]*float32, nblk int, v *float32, vstride int, tmp *float32)", name)
	g.p("// Winograd F(4×4,3×3) input transform%s; see gen_amd64.go.", g.isa())
	g.p("TEXT ·%s(SB), NOSPLIT, $0-40", name)
	g.p("\tMOVQ p+0(FP), SI")
	g.p("\tMOVQ nblk+8(FP), CX")
	g.blocksOf8()
	g.p("\tMOVQ v+16(FP), DI")
	g.p("\tMOVQ vstride+24(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ tmp+32(FP), R9")
	if !g.ymm {
		g.const32(4, 28, "DX")
		g.const32(5, 29, "DX")
		g.const32(2, 30, "DX")
	}
	g.blockLoop(name)
	in, out := [6]int{0, 1, 2, 3, 4, 5}, [6]int{6, 7, 8, 9, 10, 11}
	vb := g.vb()
	// Bᵀ·d, one column j at a time, into tmp[i][j]
	for j := 0; j < 6; j++ {
		for i := 0; i < 6; i++ {
			g.p("\tMOVQ %d(SI), DX", (6*i+j)*8)
			g.p("\tVMOVUPS (DX)(AX*1), %s", g.v(i))
		}
		g.bt6(in, out, 12, 13)
		for i := 0; i < 6; i++ {
			g.p("\tVMOVUPS %s, %d(R9)", g.v(out[i]), (6*i+j)*vb)
		}
	}
	// (Bᵀ·d)·B, one row i at a time, into planes 6i..6i+5
	g.p("\tLEAQ (DI)(AX*1), BX")
	for i := 0; i < 6; i++ {
		for j := 0; j < 6; j++ {
			g.p("\tVMOVUPS %d(R9), %s", (6*i+j)*vb, g.v(j))
		}
		g.bt6(in, out, 12, 13)
		for j := 0; j < 6; j++ {
			g.p("\tVMOVUPS %s, (BX)", g.v(out[j]))
			if i < 5 || j < 5 {
				g.p("\tADDQ R8, BX")
			}
		}
	}
	g.blockLoopEnd(name)
}

// at6Prologue emits the argument loads the F(4×4, 3×3) output transforms
// share (m in SI, mstride in bytes in R8 and six times that in R10, nblk
// in CX, y in DI, bias in BX, tmp, at argument offset tmpOff, in R9) and
// their constants (2, 4, 8 in Z28..Z30, zeros in at6Zero; with g.ymm the
// constants come from memory and at6Bias is zeroed too).
func (g *gen) at6Prologue(tmpOff int) {
	g.p("\tMOVQ m+0(FP), SI")
	g.p("\tMOVQ mstride+8(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tLEAQ (R8)(R8*2), R10")
	g.p("\tADDQ R10, R10") // six planes
	g.p("\tMOVQ nblk+16(FP), CX")
	g.blocksOf8()
	g.p("\tMOVQ y+24(FP), DI")
	g.p("\tMOVQ bias+32(FP), BX")
	g.p("\tMOVQ tmp+%d(FP), R9", tmpOff)
	if g.ymm {
		g.p("\tVXORPS Y%d, Y%d, Y%d", g.at6Zero(), g.at6Zero(), g.at6Zero())
		g.p("\tVXORPS Y%d, Y%d, Y%d", g.at6Bias(), g.at6Bias(), g.at6Bias())
		return
	}
	g.const32(2, 28, "DX")
	g.const32(4, 29, "DX")
	g.const32(8, 30, "DX")
	g.p("\tVPXORD Z31, Z31, Z31")
}

// at6Zero and at6Bias are the registers of the F(4×4, 3×3) output
// transforms' zeros (for the ReLU) and bias: Z31 and Z27, or with g.ymm
// Y10 and Y11 (at6 uses the others).
func (g *gen) at6Zero() int {
	if g.ymm {
		return 10
	}
	return 31
}

func (g *gen) at6Bias() int {
	if g.ymm {
		return 11
	}
	return 27
}

// vb returns the bytes of one vector register: 64, or 32 with g.ymm.
func (g *gen) vb() int {
	if g.ymm {
		return 32
	}
	return 64
}

// isa returns ", AVX2" with g.ymm (for the kernels' comments), else "".
func (g *gen) isa() string {
	if g.ymm {
		return ", AVX2"
	}
	return ""
}

// blocksOf8 emits, with g.ymm, the doubling of CX: a count of 16-lane
// blocks becomes one of the 8-lane blocks the AVX2 transforms loop over.
func (g *gen) blocksOf8() {
	if g.ymm {
		g.p("\tSHLQ $1, CX")
	}
}

// at6Columns emits the first pass of the F(4×4, 3×3) output transforms
// for the block at AX: Aᵀ·M, one column j of the planes at SI (R8 bytes
// apart, R10 = 6·R8) at a time, into tmp[i][j] at R9; then the block's
// bias from BX (when not nil) into at6Bias. It returns the registers at6
// reads and writes.
func (g *gen) at6Columns(name string) (m [6]int, o [4]int) {
	m, o = [6]int{0, 1, 2, 3, 4, 5}, [4]int{6, 7, 8, 9}
	g.p("\tLEAQ (SI)(AX*1), R11")
	for j := 0; j < 6; j++ {
		g.p("\tMOVQ R11, R12")
		g.planes(true, "R12", "R10", m[:])
		g.at6(m, o)
		for i := 0; i < 4; i++ {
			g.p("\tVMOVUPS %s, %d(R9)", g.v(o[i]), (6*i+j)*g.vb())
		}
		if j < 5 {
			g.p("\tADDQ R8, R11")
		}
	}
	g.p("\tTESTQ BX, BX")
	g.p("\tJEQ %s_nobias", name)
	g.p("\tVMOVUPS (BX)(AX*1), %s", g.v(g.at6Bias()))
	g.p("%s_nobias:", name)
	return m, o
}

// winoOutput43 emits the output transform Y = Aᵀ·M·A of 6×6 product
// tiles: M[ξ] is read from m + ξ·mstride + 16·b floats and Y[i][j] stored
// at y[4i+j] + 16·b floats for filter blocks b < nblk, after adding bias
// (when not nil) and applying ReLU (when relu is non-zero) as the separate
// ops do; tmp is 24·16 floats of scratch.
func (g *gen) winoOutput43(name string) {
	g.p("// func %s(m *float32, mstride, nblk int, y *[16]*float32, bias *float32, relu int, tmp *float32)", name)
	g.p("// Winograd F(4×4,3×3) output transform%s; see gen_amd64.go.", g.isa())
	g.p("TEXT ·%s(SB), NOSPLIT, $0-56", name)
	g.at6Prologue(48)
	g.p("\tMOVQ relu+40(FP), R13")
	g.blockLoop(name)
	m, o := g.at6Columns(name)
	bias, zero := g.v(g.at6Bias()), g.v(g.at6Zero())
	// (Aᵀ·M)·A, one row i at a time, to y[4i..4i+3]
	for i := 0; i < 4; i++ {
		for j := 0; j < 6; j++ {
			g.p("\tVMOVUPS %d(R9), %s", (6*i+j)*g.vb(), g.v(j))
		}
		g.at6(m, o)
		g.p("\tTESTQ BX, BX")
		g.p("\tJEQ %s_nb%d", name, i)
		for _, r := range o {
			g.p("\tVADDPS %s, %s, %s", bias, g.v(r), g.v(r))
		}
		g.p("%s_nb%d:", name, i)
		g.p("\tTESTQ R13, R13")
		g.p("\tJEQ %s_st%d", name, i)
		for _, r := range o {
			g.p("\tVMAXPS %s, %s, %s", zero, g.v(r), g.v(r))
		}
		g.p("%s_st%d:", name, i)
		for k, r := range o {
			g.p("\tMOVQ %d(DI), R12", (4*i+k)*8)
			g.p("\tVMOVUPS %s, (R12)(AX*1)", g.v(r))
		}
	}
	g.blockLoopEnd(name)
}

// winoOutput43Pool emits the output transform of winoOutput43 fused with
// a 2×2, stride-2 max pooling of the 4×4 output tile and the ReLU: the
// pooled pixel (a, b) of the tile is stored at y[2a+b] + 16·b floats, the
// maximum over its window of ReLU(Y + bias) (bias zeros when nil). Only
// the pooled values are stored (inference). As in directPoolKernel, the
// maximum is taken first, skipping NaNs, then the bias and the ReLU: the
// same bits.
func (g *gen) winoOutput43Pool(name string) {
	g.p("// func %s(m *float32, mstride, nblk int, y *[4]*float32, bias *float32, tmp *float32)", name)
	g.p("// Winograd F(4×4,3×3) output transform, ReLU and 2×2 max pooling; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-48", name)
	g.at6Prologue(40)
	g.p("\tMOVL $0xff800000, DX")
	g.p("\tVPBROADCASTD DX, Z26")
	g.p("\tVPXORD Z27, Z27, Z27")
	g.blockLoop(name)
	m, o := g.at6Columns(name)
	// (Aᵀ·M)·A, two rows at a time, pooled
	for a := 0; a < 2; a++ {
		for r := 0; r < 2; r++ {
			i := 2*a + r
			for j := 0; j < 6; j++ {
				g.p("\tVMOVUPS %d(R9), Z%d", (6*i+j)*64, j)
			}
			g.at6(m, o)
			if r == 0 {
				for k, reg := range o {
					g.mov(reg, 16+k) // the window's top row
				}
			}
		}
		// windows (a, 0) and (a, 1): top row in Z16..Z19, bottom in o
		for b := 0; b < 2; b++ {
			d := 20 + b
			g.p("\tVMAXPS Z26, Z%d, Z%d", 16+2*b, d)
			g.p("\tVMAXPS Z%d, Z%d, Z%d", d, 17+2*b, d)
			g.p("\tVMAXPS Z%d, Z%d, Z%d", d, o[2*b], d)
			g.p("\tVMAXPS Z%d, Z%d, Z%d", d, o[2*b+1], d)
			g.p("\tVADDPS Z27, Z%d, Z%d", d, d)
			g.p("\tVMAXPS Z31, Z%d, Z%d", d, d)
			g.p("\tMOVQ %d(DI), R12", (2*a+b)*8)
			g.p("\tVMOVUPS Z%d, (R12)(AX*1)", d)
		}
	}
	g.blockLoopEnd(name)
}

// winoFilter43 emits the filter transform U = G·g·Gᵀ of 3×3 filters for
// F(4×4, 3×3), G = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙;
// 0 0 1]: g[ky][kx] is read from w + (3ky+kx)·cf + 16·b floats and U[ξ]
// stored at u + ξ·ustride + 16·b floats, for blocks b < n16.
func (g *gen) winoFilter43(name string) {
	const cq, cm6, c24, c12, c6 = 27, 28, 29, 30, 31
	g.p("// func %s(w *float32, cf int, u *float32, ustride, n16 int)", name)
	g.p("// Winograd F(4×4,3×3) filter transform; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-40", name)
	g.p("\tMOVQ w+0(FP), SI")
	g.p("\tMOVQ cf+8(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tLEAQ (R8)(R8*2), R11") // three taps: one row of the filter
	g.p("\tMOVQ u+16(FP), DI")
	g.p("\tMOVQ ustride+24(FP), R9")
	g.p("\tSHLQ $2, R9")
	g.p("\tMOVQ n16+32(FP), CX")
	g.const32(0.25, cq, "DX")
	g.const32(-1.0/6, cm6, "DX")
	g.const32(1.0/24, c24, "DX")
	g.const32(1.0/12, c12, "DX")
	g.const32(1.0/6, c6, "DX")
	g.blockLoop(name)
	// g1d emits r = G·(g0, g1, g2) with Z3, Z4 free.
	g1d := func(g0, g1, g2 int, r [6]int) {
		g.mul(cq, g0, r[0])
		g.add(g0, g2, 3)
		g.add(3, g1, r[1])
		g.mul(cm6, r[1], r[1])
		g.sub(3, g1, r[2])
		g.mul(cm6, r[2], r[2])
		g.mul(c24, g0, 3)
		g.fma(c6, g2, 3)
		g.mul(c12, g1, 4)
		g.add(3, 4, r[3])
		g.sub(3, 4, r[4])
		if r[5] != g2 {
			g.mov(g2, r[5])
		}
	}
	// G·g, one column k at a time: T[i][k] in Z5+3i+k
	g.p("\tLEAQ (SI)(AX*1), R10")
	for k := 0; k < 3; k++ {
		g.p("\tVMOVUPS (R10), Z0")
		g.p("\tVMOVUPS (R10)(R11*1), Z1")
		g.p("\tVMOVUPS (R10)(R11*2), Z2")
		var r [6]int
		for i := range r {
			r[i] = 5 + 3*i + k
		}
		g1d(0, 1, 2, r)
		if k < 2 {
			g.p("\tADDQ R8, R10")
		}
	}
	// (G·g)·Gᵀ, one row i at a time, into planes 6i..6i+5
	g.p("\tLEAQ (DI)(AX*1), BX")
	for i := 0; i < 6; i++ {
		t := 5 + 3*i
		r := [6]int{0, 1, 2, 23, 24, t + 2}
		g1d(t, t+1, t+2, r)
		for j := 0; j < 6; j++ {
			g.p("\tVMOVUPS Z%d, (BX)", r[j])
			if i < 5 || j < 5 {
				g.p("\tADDQ R9, BX")
			}
		}
	}
	g.blockLoopEnd(name)
}

// wino43c is the AVX2 F(4×4, 3×3) transforms' table of constants, 8
// copies of each (a ymm memory operand): 2, 4, 5, 8 and −∞ for the input
// and output transforms, G's ¼, −⅙, 1/24, 1/12 and ⅙ for the filter's.
var wino43c = []float32{2, 4, 5, 8, float32(math.Inf(-1)), 0.25, -1.0 / 6, 1.0 / 24, 1.0 / 12, 1.0 / 6}

// wc returns the memory operand of constant v in wino43c.
func wc(v float32) string {
	for i, c := range wino43c {
		if c == v {
			return fmt.Sprintf("wino43c<>+%d(SB)", 32*i)
		}
	}
	panic(fmt.Sprint("no constant ", v))
}

// winoConstsAVX2 emits the wino43c table.
func (g *gen) winoConstsAVX2() {
	for i, c := range wino43c {
		for l := 0; l < 8; l++ {
			g.p("DATA wino43c<>+%d(SB)/4, $0x%08x", 32*i+4*l, math.Float32bits(c))
		}
	}
	g.p("GLOBL wino43c<>(SB), RODATA|NOPTR, $%d", 32*len(wino43c))
	g.p("")
}

// winoInput43AVX2 emits winoInput43's transform for AVX2: the same
// arguments (nblk counts blocks of 16 channels, done as two of 8), the
// same sums in the same order (bt6 with its constants read from wino43c),
// tmp holding 36 vectors of 8.
func (g *gen) winoInput43AVX2(name string) {
	g.ymm, g.cmem = true, map[int]string{28: wc(4), 29: wc(5), 30: wc(2)}
	defer func() { g.ymm, g.cmem = false, nil }()
	g.winoInput43(name)
}

// winoOutput43AVX2 emits winoOutput43's transform for AVX2 (see
// winoInput43AVX2): bias in Y11, zeros for the ReLU in Y10, tmp holding
// 24 vectors of 8.
func (g *gen) winoOutput43AVX2(name string) {
	g.ymm, g.cmem = true, map[int]string{28: wc(2), 29: wc(4), 30: wc(8)}
	defer func() { g.ymm, g.cmem = false, nil }()
	g.winoOutput43(name)
}

// winoOutput43PoolAVX2 emits winoOutput43Pool's transform and pooling for
// AVX2 (see winoInput43AVX2): the windows' top rows wait in tmp (vectors
// 24..27) instead of registers; the maxima are taken in the same order
// with the same operands, so NaNs are skipped the same way.
func (g *gen) winoOutput43PoolAVX2(name string) {
	g.ymm, g.cmem = true, map[int]string{28: wc(2), 29: wc(4), 30: wc(8)}
	defer func() { g.ymm, g.cmem = false, nil }()
	g.p("// func %s(m *float32, mstride, nblk int, y *[4]*float32, bias *float32, tmp *float32)", name)
	g.p("// Winograd F(4×4,3×3) output transform, ReLU and 2×2 max pooling, AVX2; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-48", name)
	g.at6Prologue(40)
	g.blockLoop(name)
	m, o := g.at6Columns(name)
	for a := 0; a < 2; a++ {
		for r := 0; r < 2; r++ {
			i := 2*a + r
			for j := 0; j < 6; j++ {
				g.p("\tVMOVUPS %d(R9), Y%d", (6*i+j)*32, j)
			}
			g.at6(m, o)
			if r == 0 {
				for k, reg := range o {
					g.p("\tVMOVUPS Y%d, %d(R9)", reg, (24+k)*32) // the window's top row
				}
			}
		}
		for b := 0; b < 2; b++ {
			g.p("\tVMOVUPS %d(R9), Y12", (24+2*b)*32)
			g.p("\tVMAXPS %s, Y12, Y12", wc(float32(math.Inf(-1))))
			g.p("\tVMOVUPS %d(R9), Y13", (25+2*b)*32)
			g.p("\tVMAXPS Y12, Y13, Y12")
			g.p("\tVMAXPS Y12, Y%d, Y12", o[2*b])
			g.p("\tVMAXPS Y12, Y%d, Y12", o[2*b+1])
			g.p("\tVADDPS Y11, Y12, Y12")
			g.p("\tVMAXPS Y10, Y12, Y12")
			g.p("\tMOVQ %d(DI), R12", (2*a+b)*8)
			g.p("\tVMOVUPS Y12, (R12)(AX*1)")
		}
	}
	g.blockLoopEnd(name)
}

// winoFilter43AVX2 emits winoFilter43's transform for AVX2: the same
// arguments (n16 blocks of 16 columns, done as two of 8). With 16
// registers it cannot hold G·g whole (18 vectors) as the AVX-512 kernel
// does, so it keeps the 9 filter taps and forms row i of G·g (3 vectors)
// for one row of U at a time; the constants come from wino43c.
func (g *gen) winoFilter43AVX2(name string) {
	cq, cm6, c24, c12, c6 := wc(0.25), wc(-1.0/6), wc(1.0/24), wc(1.0/12), wc(1.0/6)
	g.p("// func %s(w *float32, cf int, u *float32, ustride, n16 int)", name)
	g.p("// Winograd F(4×4,3×3) filter transform, AVX2; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-40", name)
	g.p("\tMOVQ w+0(FP), SI")
	g.p("\tMOVQ cf+8(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ u+16(FP), DI")
	g.p("\tMOVQ ustride+24(FP), R9")
	g.p("\tSHLQ $2, R9")
	g.p("\tMOVQ n16+32(FP), CX")
	g.p("\tSHLQ $1, CX")
	g.ymm = true
	g.blockLoop(name)
	g.ymm = false
	// the taps g[ky][kx] into Y(3ky+kx)
	g.p("\tLEAQ (SI)(AX*1), R10")
	for t := 0; t < 9; t++ {
		g.p("\tVMOVUPS (R10), Y%d", t)
		if t < 8 {
			g.p("\tADDQ R8, R10")
		}
	}
	// row i of G·(column k of g) into Y(9+k), Y12 and Y13 scratch
	gRow := func(i, k, d int) {
		g0, g1, g2 := k, 3+k, 6+k
		switch i {
		case 0:
			g.p("\tVMULPS %s, Y%d, Y%d", cq, g0, d)
		case 1, 2:
			g.p("\tVADDPS Y%d, Y%d, Y12", g2, g0)
			if i == 1 {
				g.p("\tVADDPS Y%d, Y12, Y12", g1)
			} else {
				g.p("\tVSUBPS Y%d, Y12, Y12", g1)
			}
			g.p("\tVMULPS %s, Y12, Y%d", cm6, d)
		case 3, 4:
			g.p("\tVMULPS %s, Y%d, Y12", c24, g0)
			g.p("\tVFMADD231PS %s, Y%d, Y12", c6, g2)
			g.p("\tVMULPS %s, Y%d, Y13", c12, g1)
			if i == 3 {
				g.p("\tVADDPS Y13, Y12, Y%d", d)
			} else {
				g.p("\tVSUBPS Y13, Y12, Y%d", d)
			}
		case 5:
			g.p("\tVMOVAPS Y%d, Y%d", g2, d)
		}
	}
	g.p("\tLEAQ (DI)(AX*1), BX")
	for i := 0; i < 6; i++ {
		for k := 0; k < 3; k++ {
			gRow(i, k, 9+k)
		}
		// U[i][·] = G·(Y9, Y10, Y11), stored plane by plane
		st := func(r int, last bool) {
			g.p("\tVMOVUPS Y%d, (BX)", r)
			if !last {
				g.p("\tADDQ R9, BX")
			}
		}
		g.p("\tVMULPS %s, Y9, Y14", cq)
		st(14, false)
		g.p("\tVADDPS Y11, Y9, Y12")
		g.p("\tVADDPS Y10, Y12, Y13")
		g.p("\tVMULPS %s, Y13, Y14", cm6)
		st(14, false)
		g.p("\tVSUBPS Y10, Y12, Y13")
		g.p("\tVMULPS %s, Y13, Y14", cm6)
		st(14, false)
		g.p("\tVMULPS %s, Y9, Y12", c24)
		g.p("\tVFMADD231PS %s, Y11, Y12", c6)
		g.p("\tVMULPS %s, Y10, Y13", c12)
		g.p("\tVADDPS Y13, Y12, Y14")
		st(14, false)
		g.p("\tVSUBPS Y13, Y12, Y14")
		st(14, false)
		st(11, i == 5)
	}
	g.ymm = true
	g.blockLoopEnd(name)
	g.ymm = false
}

// directPoolKernelAVX2 emits convDirectPoolAVX2, convDirectPoolAVX512's
// AVX2 form (same arguments, same pooled values): the 64 filters as four
// blocks of 16, one after another, each over every window (8 ymm
// accumulators: the window's 4 pixels × 16 filters). Each pixel is summed
// as convRowsAVX2 sums it (from zeros, every tap an FMA, in the same
// order), and the epilogue is the AVX-512 kernel's, so the stored values
// have the bits of convRowsAVX2 with bias and ReLU, pooled by
// MaxPool2DForward. The block's byte offset lives in the frame.
func (g *gen) directPoolKernelAVX2(name string) {
	const mr = 4
	acc := func(i, j int) string { return fmt.Sprintf("Y%d", 2*i+j) }
	pixA := []string{"(R11)", "(R11)(R13*1)", "(AX)", "(AX)(R13*1)"}
	g.p("// func %s(x *float32, rowStride, kh, run int, w *float32, ldw int, y *float32, npool, pixStep, convRowStep int, bias *float32)", name)
	g.p("// direct convolution and ReLU of npool 2×2 pooling windows, 64 filters as four blocks of 16, max stored; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $8-88", name)
	g.p("\tMOVQ rowStride+8(FP), R12")
	g.p("\tSHLQ $2, R12")
	g.p("\tMOVQ ldw+40(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ pixStep+64(FP), R13")
	g.p("\tSHLQ $2, R13")
	g.p("\tMOVQ $0, cb-8(SP)")
	g.p("%s_block:", name)
	g.p("\tMOVQ x+0(FP), SI")
	g.p("\tMOVQ y+48(FP), DX")
	g.p("\tADDQ cb-8(SP), DX")
	g.p("\tMOVQ npool+56(FP), BX")
	// the block's bias in Y8, Y9 (zeros without one)
	g.p("\tVXORPS Y8, Y8, Y8")
	g.p("\tVXORPS Y9, Y9, Y9")
	g.p("\tMOVQ bias+80(FP), AX")
	g.p("\tTESTQ AX, AX")
	g.p("\tJEQ %s_nobias", name)
	g.p("\tADDQ cb-8(SP), AX")
	g.p("\tVMOVUPS 0(AX), Y8")
	g.p("\tVMOVUPS 32(AX), Y9")
	g.p("%s_nobias:", name)
	g.p("\tTESTQ BX, BX")
	g.p("\tJEQ %s_next", name)
	g.p("%s_pool:", name)
	for i := 0; i < 2*mr; i++ {
		g.p("\tVXORPS Y%d, Y%d, Y%d", i, i, i)
	}
	g.p("\tMOVQ w+32(FP), DI")
	g.p("\tADDQ cb-8(SP), DI")
	g.p("\tMOVQ kh+16(FP), CX")
	g.p("\tMOVQ SI, R10")
	g.p("%s_ky:", name)
	g.p("\tMOVQ R10, R11")
	g.p("\tMOVQ convRowStep+72(FP), AX")
	g.p("\tLEAQ (R11)(AX*4), AX")
	g.p("\tMOVQ run+24(FP), R9")
	g.p("%s_j:", name)
	g.fmaRowsY(mr, "0(DI)", "32(DI)", func(i int) string { return pixA[i] })
	g.p("\tADDQ R8, DI")
	g.p("\tADDQ $4, R11")
	g.p("\tADDQ $4, AX")
	g.p("\tDECQ R9")
	g.p("\tJNE %s_j", name)
	g.p("\tADDQ R12, R10")
	g.p("\tDECQ CX")
	g.p("\tJNE %s_ky", name)
	// as convDirectPoolAVX512: the maximum skipping NaNs from −Inf, then
	// the bias and the ReLU
	g.p("\tVXORPS Y14, Y14, Y14")
	g.p("\tVBROADCASTSS %s, Y15", wc(float32(math.Inf(-1))))
	for j := 0; j < 2; j++ {
		g.p("\tVMAXPS Y15, %s, %s", acc(0, j), acc(0, j))
		for i := 1; i < mr; i++ {
			g.p("\tVMAXPS %s, %s, %s", acc(0, j), acc(i, j), acc(0, j))
		}
		g.p("\tVADDPS Y%d, %s, %s", 8+j, acc(0, j), acc(0, j))
		g.p("\tVMAXPS Y14, %s, %s", acc(0, j), acc(0, j))
		g.p("\tVMOVUPS %s, %d(DX)", acc(0, j), j*32)
	}
	g.p("\tADDQ R13, SI")
	g.p("\tADDQ R13, SI")
	g.p("\tADDQ R8, DX")
	g.p("\tDECQ BX")
	g.p("\tJNE %s_pool", name)
	g.p("%s_next:", name)
	g.p("\tMOVQ cb-8(SP), AX")
	g.p("\tADDQ $64, AX")
	g.p("\tMOVQ AX, cb-8(SP)")
	g.p("\tCMPQ AX, $256")
	g.p("\tJLT %s_block", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// winoGemmTAVX2 emits winoGemmTAVX512's AVX2 form (same arguments, same
// sums in the same order): the 6×64 tile as four 6×16 column blocks, one
// after another, each a whole pass over kc.
func (g *gen) winoGemmTAVX2(name string) {
	const mr = 6
	acc := func(i, j int) string { return fmt.Sprintf("Y%d", 2*i+j) }
	rowC := []string{"(DX)", "(DX)(R12*1)", "(DX)(R12*2)", "(R13)", "(R13)(R12*1)", "(R13)(R12*2)"}
	g.p("// func %s(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, add int)", name)
	g.p("// computes a 6×64 tile of Aᵀ·B, 16 columns at a time; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-64", name)
	g.p("\tMOVQ lda+16(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ ldb+32(FP), R10")
	g.p("\tSHLQ $2, R10")
	g.p("\tMOVQ ldc+48(FP), R12")
	g.p("\tSHLQ $2, R12")
	g.p("\tXORQ R11, R11") // byte offset of the column block
	g.p("%s_block:", name)
	g.p("\tMOVQ a+8(FP), SI")
	g.p("\tMOVQ b+24(FP), DI")
	g.p("\tADDQ R11, DI")
	for i := 0; i < 2*mr; i++ {
		g.p("\tVXORPS Y%d, Y%d, Y%d", i, i, i)
	}
	g.p("\tMOVQ kc+0(FP), CX")
	g.p("\tTESTQ CX, CX")
	g.p("\tJEQ %s_store", name)
	g.p("%s_loop:", name)
	g.fmaRowsY(mr, "0(DI)", "32(DI)", func(i int) string { return fmt.Sprintf("%d(SI)", i*4) })
	g.p("\tADDQ R10, DI")
	g.p("\tADDQ R8, SI")
	g.p("\tDECQ CX")
	g.p("\tJNE %s_loop", name)
	g.p("%s_store:", name)
	g.p("\tMOVQ c+40(FP), DX")
	g.p("\tADDQ R11, DX")
	g.p("\tLEAQ (DX)(R12*2), R13")
	g.p("\tADDQ R12, R13")
	g.p("\tMOVQ add+56(FP), CX")
	g.p("\tTESTQ CX, CX")
	g.p("\tJEQ %s_over", name)
	for i := 0; i < mr; i++ {
		for j := 0; j < 2; j++ {
			g.p("\tVADDPS %d%s, %s, %s", j*32, rowC[i], acc(i, j), acc(i, j))
		}
	}
	g.p("%s_over:", name)
	for i := 0; i < mr; i++ {
		for j := 0; j < 2; j++ {
			g.p("\tVMOVUPS %s, %d%s", acc(i, j), j*32, rowC[i])
		}
	}
	g.p("\tADDQ $64, R11")
	g.p("\tCMPQ R11, $256")
	g.p("\tJLT %s_block", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// winoInputAVX2 emits winoInput's F(2×2, 3×3) input transform for AVX2
// (same arguments, nblk blocks of 16 channels done as two of 8, the same
// sums): the column pass writes Bᵀ·d into the output planes and the row
// pass transforms them there, in place, so that 16 registers suffice.
func (g *gen) winoInputAVX2(name string) {
	g.ymm = true
	defer func() { g.ymm = false }()
	g.p("// func %s(p *[16]*float32, nblk int, v *float32, vstride int)", name)
	g.p("// Winograd F(2×2,3×3) input transform, AVX2; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-32", name)
	g.p("\tMOVQ p+0(FP), SI")
	g.p("\tMOVQ nblk+8(FP), CX")
	g.p("\tSHLQ $1, CX")
	g.p("\tMOVQ v+16(FP), DI")
	g.p("\tMOVQ vstride+24(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tLEAQ (R8)(R8*2), R12") // 3 planes
	g.p("\tLEAQ (R8*4), R9")      // 4 planes: one row of the tile
	g.p("\tLEAQ (R9)(R9*2), R11") // 12 planes
	g.blockLoop(name)
	// Bᵀ·d, one column j at a time, into planes 4r+j
	g.p("\tLEAQ (DI)(AX*1), BX")
	for j := 0; j < 4; j++ {
		for i := 0; i < 4; i++ {
			g.p("\tMOVQ %d(SI), DX", (4*i+j)*8)
			g.p("\tVMOVUPS (DX)(AX*1), Y%d", i)
		}
		g.sub(0, 2, 4)
		g.add(1, 2, 5)
		g.sub(2, 1, 6)
		g.sub(1, 3, 7)
		g.p("\tVMOVUPS Y4, (BX)")
		g.p("\tVMOVUPS Y5, (BX)(R9*1)")
		g.p("\tVMOVUPS Y6, (BX)(R9*2)")
		g.p("\tVMOVUPS Y7, (BX)(R11*1)")
		if j < 3 {
			g.p("\tADDQ R8, BX")
		}
	}
	// (Bᵀ·d)·B, one row i at a time, planes 4i..4i+3 in place
	g.p("\tLEAQ (DI)(AX*1), BX")
	for i := 0; i < 4; i++ {
		g.p("\tVMOVUPS (BX), Y0")
		g.p("\tVMOVUPS (BX)(R8*1), Y1")
		g.p("\tVMOVUPS (BX)(R8*2), Y2")
		g.p("\tVMOVUPS (BX)(R12*1), Y3")
		g.sub(0, 2, 4)
		g.add(1, 2, 5)
		g.sub(2, 1, 6)
		g.sub(1, 3, 7)
		g.p("\tVMOVUPS Y4, (BX)")
		g.p("\tVMOVUPS Y5, (BX)(R8*1)")
		g.p("\tVMOVUPS Y6, (BX)(R8*2)")
		g.p("\tVMOVUPS Y7, (BX)(R12*1)")
		if i < 3 {
			g.p("\tADDQ R9, BX")
		}
	}
	g.blockLoopEnd(name)
}

// winoDyAVX2 emits winoDy's output-gradient transform for AVX2 (same
// arguments and sums; nblk blocks of 16 filters done as two of 8).
func (g *gen) winoDyAVX2(name string) {
	g.ymm = true
	defer func() { g.ymm = false }()
	g.p("// func %s(p *[4]*float32, nblk int, d *float32, dstride int)", name)
	g.p("// Winograd F(3×3,2×2) output-gradient transform, AVX2; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-32", name)
	g.p("\tMOVQ p+0(FP), SI")
	g.p("\tMOVQ 0(SI), R9")
	g.p("\tMOVQ 8(SI), R10")
	g.p("\tMOVQ 16(SI), R11")
	g.p("\tMOVQ 24(SI), R12")
	g.p("\tMOVQ nblk+8(FP), CX")
	g.p("\tSHLQ $1, CX")
	g.p("\tMOVQ d+16(FP), DI")
	g.p("\tMOVQ dstride+24(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tVXORPS Y15, Y15, Y15")
	g.blockLoop(name)
	for i, r := range []string{"R9", "R10", "R11", "R12"} {
		g.p("\tVMOVUPS (%s)(AX*1), Y%d", r, i)
	}
	// A·g: rows r0..r3 of 2 values, in Y4+2i, Y5+2i
	g.p("\tVMOVAPS Y0, Y4")
	g.p("\tVMOVAPS Y1, Y5")
	g.add(0, 2, 6)
	g.add(1, 3, 7)
	g.sub(0, 2, 8)
	g.sub(1, 3, 9)
	g.sub(15, 2, 10)
	g.sub(15, 3, 11)
	// (A·g)·Aᵀ: row i is [r0, r0+r1, r0−r1, −r1], into Y0..Y3, stored
	g.p("\tLEAQ (DI)(AX*1), BX")
	for i := 0; i < 4; i++ {
		r0, r1 := 4+2*i, 5+2*i
		g.p("\tVMOVAPS Y%d, Y0", r0)
		g.add(r0, r1, 1)
		g.sub(r0, r1, 2)
		g.sub(15, r1, 3)
		for k := 0; k < 4; k++ {
			g.p("\tVMOVUPS Y%d, (BX)", k)
			if i < 3 || k < 3 {
				g.p("\tADDQ R8, BX")
			}
		}
	}
	g.blockLoopEnd(name)
}

// planeStrides4 loads the argument mstride of a 4×4 transform's planes
// as bytes into R8, one row of the tile (4 planes) into R10 and 12 planes
// into R11, for column4Y.
func (g *gen) planeStrides4() {
	g.p("\tMOVQ mstride+8(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tLEAQ (R8*4), R10")
	g.p("\tLEAQ (R10)(R10*2), R11")
}

// column4Y loads one column of a 4×4 tile's planes, from DX on, into
// Y0..Y3 (see planeStrides4).
func (g *gen) column4Y() {
	g.p("\tVMOVUPS (DX), Y0")
	g.p("\tVMOVUPS (DX)(R10*1), Y1")
	g.p("\tVMOVUPS (DX)(R10*2), Y2")
	g.p("\tVMOVUPS (DX)(R11*1), Y3")
}

// winoGradOutAVX2 emits winoGradOut's transform for AVX2 (same arguments
// and sums; nblk blocks of 16 done as two of 8): the planes are read a
// column at a time and ½ is broadcast from the argument where needed, so
// that 16 registers suffice.
func (g *gen) winoGradOutAVX2(name string) {
	g.ymm = true
	defer func() { g.ymm = false }()
	g.p("// func %s(m *float32, mstride, nblk int, w *float32, wstride int, half float32)", name)
	g.p("// Winograd F(3×3,2×2) output transform, AVX2; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-44", name)
	g.p("\tMOVQ m+0(FP), SI")
	g.planeStrides4()
	g.p("\tMOVQ nblk+16(FP), CX")
	g.p("\tSHLQ $1, CX")
	g.p("\tMOVQ w+24(FP), DI")
	g.p("\tMOVQ wstride+32(FP), R9")
	g.p("\tSHLQ $2, R9")
	g.blockLoop(name)
	// Gᵀ·M, one column j at a time (m0..m3 in Y0..Y3): s0, s1, s2 in
	// Y4+j, Y8+j, Y12+j
	g.p("\tLEAQ (SI)(AX*1), DX")
	for j := 0; j < 4; j++ {
		g.column4Y()
		g.sub(1, 2, 8+j) // m1 − m2
		g.add(1, 2, 1)   // m1 + m2
		g.p("\tVBROADCASTSS half+40(FP), Y2")
		g.p("\tVMULPS Y2, Y1, Y1")             // ½(m1 + m2)
		g.p("\tVMULPS Y2, Y%d, Y%d", 8+j, 8+j) // s1 = ½(m1 − m2)
		g.add(0, 1, 4+j)                       // s0 = m0 + ½(m1+m2)
		g.add(1, 3, 12+j)                      // s2 = ½(m1+m2) + m3
		if j < 3 {
			g.p("\tADDQ R8, DX")
		}
	}
	// (Gᵀ·M)·G, one row i at a time, into taps 3i..3i+2
	g.p("\tLEAQ (DI)(AX*1), DX")
	g.p("\tVBROADCASTSS half+40(FP), Y1")
	for i := 0; i < 3; i++ {
		r := 4 + 4*i
		g.add(r+1, r+2, 0)
		g.p("\tVMULPS Y1, Y0, Y0")
		g.add(r, 0, 2)
		g.p("\tVMOVUPS Y2, (DX)")
		g.p("\tADDQ R9, DX")
		g.sub(r+1, r+2, 3)
		g.p("\tVMULPS Y1, Y3, Y3")
		g.p("\tVMOVUPS Y3, (DX)")
		g.p("\tADDQ R9, DX")
		g.add(0, r+3, 2)
		g.p("\tVMOVUPS Y2, (DX)")
		if i < 2 {
			g.p("\tADDQ R9, DX")
		}
	}
	g.blockLoopEnd(name)
}

// winoGemmAVX2 emits winoGemmAVX512's AVX2 form (same arguments, same
// sums in the same order): npanel 6×64 tiles of C = A·B whose 6 rows are
// lda (A) and ldc (C) floats apart, each tile as four 6×16 column blocks,
// one after another, each a whole pass over kc. The rows are addressed
// from two registers (rows 0–2 and 3–5) and lda, so that the panel and
// block loops stay in assembly.
func (g *gen) winoGemmAVX2(name string) {
	const mr, unroll = 6, 4
	acc := func(i, j int) string { return fmt.Sprintf("Y%d", 2*i+j) }
	rowA := []string{"(AX)", "(AX)(R8*1)", "(AX)(R8*2)", "(R13)", "(R13)(R8*1)", "(R13)(R8*2)"}
	rowC := []string{"(R9)", "(R9)(R12*1)", "(R9)(R12*2)"}
	g.p("// func %s(kc, npanel int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)", name)
	g.p("// computes npanel 6×64 tiles of evenly spaced rows, 16 columns at a time; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-64", name)
	g.p("\tMOVQ a+16(FP), SI")
	g.p("\tMOVQ lda+24(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ ldb+40(FP), R10")
	g.p("\tSHLQ $2, R10")
	g.p("\tMOVQ c+48(FP), DX")
	g.p("\tMOVQ ldc+56(FP), R12")
	g.p("\tSHLQ $2, R12")
	g.p("\tMOVQ npanel+8(FP), BX")
	g.p("\tTESTQ BX, BX")
	g.p("\tJEQ %s_done", name)
	g.p("%s_panel:", name)
	g.p("\tXORQ R11, R11") // byte offset of the column block
	g.p("%s_block:", name)
	g.p("\tMOVQ SI, AX")
	g.p("\tLEAQ (SI)(R8*2), R13")
	g.p("\tADDQ R8, R13")
	g.p("\tMOVQ b+32(FP), DI")
	g.p("\tADDQ R11, DI")
	for i := 0; i < 2*mr; i++ {
		g.p("\tVXORPS Y%d, Y%d, Y%d", i, i, i)
	}
	step := func(k int) {
		g.fmaRowsY(mr, "0(DI)", "32(DI)", func(i int) string { return fmt.Sprintf("%d%s", k*4, rowA[i]) })
		g.p("\tADDQ R10, DI")
	}
	g.kLoop(name, unroll, []string{"AX", "R13"}, step, name+"_store")
	g.p("%s_store:", name)
	g.p("\tLEAQ (DX)(R11*1), R9")
	for i := 0; i < mr; i++ {
		if i == 3 {
			g.p("\tLEAQ (R9)(R12*2), R9")
			g.p("\tADDQ R12, R9")
		}
		for j := 0; j < 2; j++ {
			g.p("\tVMOVUPS %s, %d%s", acc(i, j), j*32, rowC[i%3])
		}
	}
	g.p("\tADDQ $64, R11")
	g.p("\tCMPQ R11, $256")
	g.p("\tJLT %s_block", name)
	// next panel: 6 rows on
	g.p("\tLEAQ (R8)(R8*2), R9")
	g.p("\tLEAQ (SI)(R9*2), SI")
	g.p("\tLEAQ (R12)(R12*2), R9")
	g.p("\tLEAQ (DX)(R9*2), DX")
	g.p("\tDECQ BX")
	g.p("\tJNE %s_panel", name)
	g.p("%s_done:", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// winoOutputAVX2 emits winoOutput's F(2×2, 3×3) output transform for AVX2
// (same arguments, nblk blocks of 16 filters done as two of 8, the same
// sums in the same order): the planes are read a column at a time, so
// that 16 registers suffice, and the output pointers are read from y as
// they are stored to, leaving the general registers to the plane strides.
func (g *gen) winoOutputAVX2(name string) {
	g.ymm = true
	defer func() { g.ymm = false }()
	g.p("// func %s(m *float32, mstride, nblk int, y *[4]*float32, bias *float32, relu int)", name)
	g.p("// Winograd F(2×2,3×3) output transform, AVX2; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-48", name)
	g.p("\tMOVQ m+0(FP), SI")
	g.planeStrides4()
	g.p("\tMOVQ nblk+16(FP), CX")
	g.p("\tSHLQ $1, CX")
	g.p("\tMOVQ y+24(FP), DI")
	g.p("\tMOVQ bias+32(FP), BX")
	g.p("\tMOVQ relu+40(FP), R13")
	g.p("\tVXORPS Y15, Y15, Y15")
	g.blockLoop(name)
	// Aᵀ·M, one column j at a time (m0..m3 in Y0..Y3): rows s0, s1 in
	// Y4+j, Y8+j
	g.p("\tLEAQ (SI)(AX*1), DX")
	for j := 0; j < 4; j++ {
		g.column4Y()
		g.at2([4]int{0, 1, 2, 3}, 4+j, 8+j)
		if j < 3 {
			g.p("\tADDQ R8, DX")
		}
	}
	// (Aᵀ·M)·A: Y[0][0], Y[0][1], Y[1][0], Y[1][1] in Y0..Y3
	for i := 0; i < 2; i++ {
		r := 4 + 4*i
		g.at2([4]int{r, r + 1, r + 2, r + 3}, 2*i, 2*i+1)
	}
	g.p("\tTESTQ BX, BX")
	g.p("\tJEQ %s_nobias", name)
	g.p("\tVMOVUPS (BX)(AX*1), Y12")
	for r := 0; r < 4; r++ {
		g.p("\tVADDPS Y12, Y%d, Y%d", r, r)
	}
	g.p("%s_nobias:", name)
	g.p("\tTESTQ R13, R13")
	g.p("\tJEQ %s_store", name)
	for r := 0; r < 4; r++ {
		g.p("\tVMAXPS Y15, Y%d, Y%d", r, r)
	}
	g.p("%s_store:", name)
	for r := 0; r < 4; r++ {
		g.p("\tMOVQ %d(DI), DX", 8*r)
		g.p("\tVMOVUPS Y%d, (DX)(AX*1)", r)
	}
	g.blockLoopEnd(name)
}

// winoFilterAVX2 emits winoFilter's F(2×2, 3×3) filter transform for AVX2
// (same arguments, n16 blocks of 16 columns done as two of 8, the same sums
// in the same order): the rows of G·g in Y0–Y2 (g0), Y6–Y8 (½(g0+g2+g1)),
// Y3–Y5 (½(g0+g2−g1), where g1 was) and Y9–Y11 (g2), ½ in Y15.
func (g *gen) winoFilterAVX2(name string) {
	g.ymm = true
	defer func() { g.ymm = false }()
	g.p("// func %s(w *float32, cf int, u *float32, ustride, n16 int, half float32)", name)
	g.p("// Winograd F(2×2,3×3) filter transform, AVX2; see gen_amd64.go.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-44", name)
	g.p("\tMOVQ w+0(FP), SI")
	g.p("\tMOVQ cf+8(FP), R8")
	g.p("\tSHLQ $2, R8")
	g.p("\tMOVQ u+16(FP), DI")
	g.p("\tMOVQ ustride+24(FP), R9")
	g.p("\tSHLQ $2, R9")
	g.p("\tMOVQ n16+32(FP), CX")
	g.p("\tSHLQ $1, CX")
	g.p("\tVBROADCASTSS half+40(FP), Y15")
	g.blockLoop(name)
	g.p("\tLEAQ (SI)(AX*1), DX")
	g.planes(true, "DX", "R8", []int{0, 1, 2, 3, 4, 5, 9, 10, 11})
	// G·g, one column k at a time
	for k := 0; k < 3; k++ {
		g.gt3(k, 3+k, 9+k, 12, 6+k, 3+k, 15)
	}
	g.winoFilterRows([4]int{0, 6, 3, 9}, 12, 13, 14, 15)
	g.blockLoopEnd(name)
}

func main() {
	var g gen
	g.p("// Code generated by gen_amd64.go; DO NOT EDIT.")
	g.p("")
	g.p("//go:build amd64")
	g.p("")
	g.p(`#include "textflag.h"`)
	g.p("")
	// AVX-512: 12×32 tile, 24 zmm accumulators, 2 for B, 6 for broadcasts.
	g.pfC, g.bcstOdd = true, true
	g.kernel("sgemmKernelAVX512", "Z", 16, 12, 2, []int{26, 27, 28, 29, 30, 31}, 4, 2048)
	g.pfC, g.bcstOdd = false, false
	// AVX2+FMA: 6×16 tile, 12 ymm accumulators, 2 for B, 2 for broadcasts.
	g.kernel("sgemmKernelAVX2", "Y", 8, 6, 2, []int{14, 15}, 4, 1024)
	// Convolution kernels that read the patches straight from the image.
	g.rowsKernel("convRowsAVX512")
	for mr := 1; mr <= 6; mr++ {
		g.gatherKernel(fmt.Sprintf("convGather%dAVX512", mr), mr)
	}
	g.rowsKernelAVX2("convRowsImplicitAVX2")
	for mr := 1; mr <= 6; mr++ {
		g.gatherKernelAVX2(fmt.Sprintf("convGather%dAVX2", mr), mr)
	}
	g.directKernel("convDirectAVX512")
	g.directPoolKernel("convDirectPoolAVX512")
	g.winoGemm("winoGemmAVX512")
	g.winoInput("winoInputAVX512")
	g.winoGemmT("winoGemmTAVX512")
	g.winoDy("winoDyAVX512")
	g.winoGradOut("winoGradOutAVX512")
	g.winoOutput("winoOutputAVX512")
	g.winoFilter("winoFilterAVX512")
	g.winoInput43("winoInput43AVX512")
	g.winoOutput43("winoOutput43AVX512")
	g.winoOutput43Pool("winoOutput43PoolAVX512")
	g.winoFilter43("winoFilter43AVX512")
	g.winoConstsAVX2()
	g.winoInput43AVX2("winoInput43AVX2")
	g.winoOutput43AVX2("winoOutput43AVX2")
	g.winoOutput43PoolAVX2("winoOutput43PoolAVX2")
	g.winoFilter43AVX2("winoFilter43AVX2")
	g.directPoolKernelAVX2("convDirectPoolAVX2")
	g.winoGemmTAVX2("winoGemmTAVX2")
	g.winoGemmAVX2("winoGemmAVX2")
	g.winoInputAVX2("winoInputAVX2")
	g.winoDyAVX2("winoDyAVX2")
	g.winoGradOutAVX2("winoGradOutAVX2")
	g.winoOutputAVX2("winoOutputAVX2")
	g.winoFilterAVX2("winoFilterAVX2")
	g.peak("fmaPeakAVX512", "Z", 24)
	g.peak("fmaPeakAVX2", "Y", 12)
	if err := os.WriteFile("kernel_amd64.s", g.b.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
