//go:build amd64

#include "textflag.h"

// func maxPoolRowAVX2(x, y, arg *float32, c, outW, kh, kw, rowStride, colStep int)
// Max pools one output row of NHWC data, c channels (a multiple of 8) at a
// time in 8-wide chunks. x points at the top-left element of the first
// window; windows are colStep floats apart, window rows rowStride floats
// apart and window columns c floats apart. For every output pixel and
// channel it writes the maximum to y and the window offset ky·kw+kx of the
// first maximum (row-major order) to arg, as float32. A candidate replaces
// the best so far only when best < v (ordered), which keeps the first of
// equal values and never lets a NaN after the first element win, exactly
// as the Go loop does. The first element is compared with itself (never
// less), so the tap loop needs no special case.
TEXT ·maxPoolRowAVX2(SB), NOSPLIT, $0-72
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ arg+16(FP), DX
	MOVQ c+24(FP), R8
	MOVQ outW+32(FP), R9
	MOVQ rowStride+56(FP), R12
	MOVQ colStep+64(FP), R13
	SHLQ $2, R8
	SHLQ $2, R12
	SHLQ $2, R13
	MOVL $0x3f800000, AX
	VMOVD AX, X3
	VBROADCASTSS X3, Y3 // 1.0
	TESTQ R9, R9
	JEQ mp_done

mp_pixel:
	XORQ BX, BX // channel offset in bytes

mp_chan:
	LEAQ (SI)(BX*1), R10 // window row pointer
	VMOVUPS (R10), Y0    // best
	VXORPS Y1, Y1, Y1    // arg
	VXORPS Y2, Y2, Y2    // idx
	MOVQ kh+40(FP), CX

mp_ky:
	MOVQ R10, R11 // tap pointer
	MOVQ kw+48(FP), AX

mp_kx:
	VMOVUPS (R11), Y4
	VCMPPS $0x11, Y4, Y0, Y5 // best < v
	VBLENDVPS Y5, Y4, Y0, Y0
	VBLENDVPS Y5, Y2, Y1, Y1
	VADDPS Y3, Y2, Y2
	ADDQ R8, R11
	DECQ AX
	JNE mp_kx
	ADDQ R12, R10
	DECQ CX
	JNE mp_ky

	VMOVUPS Y0, (DI)(BX*1)
	VMOVUPS Y1, (DX)(BX*1)
	ADDQ $32, BX
	CMPQ BX, R8
	JLT mp_chan

	ADDQ R13, SI
	ADDQ R8, DI
	ADDQ R8, DX
	DECQ R9
	JNE mp_pixel

mp_done:
	VZEROUPPER
	RET

// func maxPoolBackRowAVX2(dy, arg, dx *float32, c, outW, kh, kw, rowStride, colStep int)
// The backward pass of one output row for windows that do not overlap: for
// every window position (ky, kx) it stores dy where arg == ky·kw+kx and 0
// elsewhere, overwriting dx. Pointers and strides are as in maxPoolRowAVX2
// (dx takes x's place); c is a multiple of 8.
TEXT ·maxPoolBackRowAVX2(SB), NOSPLIT, $0-72
	MOVQ dy+0(FP), SI
	MOVQ arg+8(FP), DX
	MOVQ dx+16(FP), DI
	MOVQ c+24(FP), R8
	MOVQ outW+32(FP), R9
	MOVQ rowStride+56(FP), R12
	MOVQ colStep+64(FP), R13
	SHLQ $2, R8
	SHLQ $2, R12
	SHLQ $2, R13
	MOVL $0x3f800000, AX
	VMOVD AX, X3
	VBROADCASTSS X3, Y3 // 1.0
	TESTQ R9, R9
	JEQ mb_done

mb_pixel:
	XORQ BX, BX

mb_chan:
	VMOVUPS (SI)(BX*1), Y0 // dy
	VMOVUPS (DX)(BX*1), Y1 // arg
	VXORPS Y2, Y2, Y2      // idx
	LEAQ (DI)(BX*1), R10
	MOVQ kh+40(FP), CX

mb_ky:
	MOVQ R10, R11
	MOVQ kw+48(FP), AX

mb_kx:
	VCMPPS $0x00, Y2, Y1, Y5 // arg == idx
	VANDPS Y0, Y5, Y5
	VMOVUPS Y5, (R11)
	VADDPS Y3, Y2, Y2
	ADDQ R8, R11
	DECQ AX
	JNE mb_kx
	ADDQ R12, R10
	DECQ CX
	JNE mb_ky

	ADDQ $32, BX
	CMPQ BX, R8
	JLT mb_chan

	ADDQ R8, SI
	ADDQ R8, DX
	ADDQ R13, DI
	DECQ R9
	JNE mb_pixel

mb_done:
	VZEROUPPER
	RET

// func biasAddAVX2(x, bias *float32, rows, cols int)
// x[r·cols+c] += bias[c] for r < rows, c < cols; cols is a multiple of 8.
TEXT ·biasAddAVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), DI
	MOVQ bias+8(FP), SI
	MOVQ rows+16(FP), CX
	MOVQ cols+24(FP), R8
	SHLQ $2, R8
	TESTQ CX, CX
	JEQ ba_done

ba_row:
	XORQ BX, BX

ba_col:
	VMOVUPS (DI)(BX*1), Y0
	VADDPS (SI)(BX*1), Y0, Y0
	VMOVUPS Y0, (DI)(BX*1)
	ADDQ $32, BX
	CMPQ BX, R8
	JLT ba_col
	ADDQ R8, DI
	DECQ CX
	JNE ba_row

ba_done:
	VZEROUPPER
	RET

// func gemv64AVX2(k int, a, b *float32, ldb int, acc *float32, add int)
// acc[j] = Σ_{p<k} a[p]·b[p·ldb+j] for j < 64 (added to acc when add is
// non-zero), summed in order of p: eight 8-wide accumulators, one
// broadcast of a[p] per row of b. k > 0.
TEXT ·gemv64AVX2(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R8
	MOVQ acc+32(FP), DX
	MOVQ add+40(FP), AX
	SHLQ $2, R8
	TESTQ AX, AX
	JEQ gv_zero
	VMOVUPS 0(DX), Y0
	VMOVUPS 32(DX), Y1
	VMOVUPS 64(DX), Y2
	VMOVUPS 96(DX), Y3
	VMOVUPS 128(DX), Y4
	VMOVUPS 160(DX), Y5
	VMOVUPS 192(DX), Y6
	VMOVUPS 224(DX), Y7
	JMP gv_loop

gv_zero:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

gv_loop:
	VBROADCASTSS (SI), Y8
	VFMADD231PS 0(DI), Y8, Y0
	VFMADD231PS 32(DI), Y8, Y1
	VFMADD231PS 64(DI), Y8, Y2
	VFMADD231PS 96(DI), Y8, Y3
	VFMADD231PS 128(DI), Y8, Y4
	VFMADD231PS 160(DI), Y8, Y5
	VFMADD231PS 192(DI), Y8, Y6
	VFMADD231PS 224(DI), Y8, Y7
	ADDQ $4, SI
	ADDQ R8, DI
	DECQ CX
	JNE gv_loop

	VMOVUPS Y0, 0(DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VMOVUPS Y4, 128(DX)
	VMOVUPS Y5, 160(DX)
	VMOVUPS Y6, 192(DX)
	VMOVUPS Y7, 224(DX)
	VZEROUPPER
	RET

// func biasGradAVX2(dy *float32, acc *float64, rows, cols int)
// acc[c] += Σ_{r<rows} float64(dy[r·cols+c]) for c < cols, cols a multiple
// of 16, each column summed in order of r (as the Go loop does): per block
// of 16 columns, four 4-wide float64 accumulators walk down the rows.
TEXT ·biasGradAVX2(SB), NOSPLIT, $0-32
	MOVQ dy+0(FP), SI
	MOVQ acc+8(FP), DI
	MOVQ rows+16(FP), R9
	MOVQ cols+24(FP), R8
	MOVQ R8, R10
	SHLQ $2, R8 // row stride in bytes
	SHRQ $4, R10 // column blocks
	TESTQ R9, R9
	JEQ bg_done
	TESTQ R10, R10
	JEQ bg_done

bg_block:
	VMOVUPD 0(DI), Y0
	VMOVUPD 32(DI), Y1
	VMOVUPD 64(DI), Y2
	VMOVUPD 96(DI), Y3
	MOVQ SI, AX
	MOVQ R9, CX

bg_row:
	VCVTPS2PD 0(AX), Y4
	VCVTPS2PD 16(AX), Y5
	VCVTPS2PD 32(AX), Y6
	VCVTPS2PD 48(AX), Y7
	VADDPD Y4, Y0, Y0
	VADDPD Y5, Y1, Y1
	VADDPD Y6, Y2, Y2
	VADDPD Y7, Y3, Y3
	ADDQ R8, AX
	DECQ CX
	JNE bg_row

	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	ADDQ $64, SI
	ADDQ $128, DI
	DECQ R10
	JNE bg_block

bg_done:
	VZEROUPPER
	RET

// func convRowsAVX2(x *float32, rowStride, kh, run int, w *float32, ldw int, y *float32, npix, pixStep int, bias *float32, relu int)
// Direct convolution of npix output pixels whose windows lie inside the
// input, 64 filters: for pixel q (x advanced by q·pixStep floats, y by q·ldw)
// y[f] = Σ_{ky<kh} Σ_{j<run} x[ky·rowStride+j]·w[(ky·run+j)·ldw+f] for
// f < 64, summed in that order. A window row is run = KW·C contiguous
// floats in NHWC, and the matching filter rows are contiguous in HWIO, so
// nothing is gathered or packed: one broadcast of x and eight 8-wide FMAs
// (w read from L1) per step. When bias is not nil, bias[f] is added to
// each sum before it is stored, and when relu is non-zero the result is
// max(·, 0) as reluAVX2 computes it: the bits of BiasAdd and ReLU after.
TEXT ·convRowsAVX2(SB), NOSPLIT, $0-88
	MOVQ x+0(FP), SI
	MOVQ rowStride+8(FP), R12
	MOVQ ldw+40(FP), R8
	MOVQ y+48(FP), DX
	MOVQ npix+56(FP), R9
	MOVQ pixStep+64(FP), R13
	SHLQ $2, R12
	SHLQ $2, R8
	SHLQ $2, R13
	TESTQ R9, R9
	JEQ cr_done

cr_pixel:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ w+32(FP), DI
	MOVQ kh+16(FP), CX
	MOVQ SI, R10

cr_ky:
	MOVQ R10, R11
	MOVQ run+24(FP), AX

cr_j:
	VBROADCASTSS (R11), Y8
	VFMADD231PS 0(DI), Y8, Y0
	VFMADD231PS 32(DI), Y8, Y1
	VFMADD231PS 64(DI), Y8, Y2
	VFMADD231PS 96(DI), Y8, Y3
	VFMADD231PS 128(DI), Y8, Y4
	VFMADD231PS 160(DI), Y8, Y5
	VFMADD231PS 192(DI), Y8, Y6
	VFMADD231PS 224(DI), Y8, Y7
	ADDQ $4, R11
	ADDQ R8, DI
	DECQ AX
	JNE cr_j
	ADDQ R12, R10
	DECQ CX
	JNE cr_ky

	MOVQ bias+72(FP), BX
	TESTQ BX, BX
	JEQ cr_nobias
	VADDPS 0(BX), Y0, Y0
	VADDPS 32(BX), Y1, Y1
	VADDPS 64(BX), Y2, Y2
	VADDPS 96(BX), Y3, Y3
	VADDPS 128(BX), Y4, Y4
	VADDPS 160(BX), Y5, Y5
	VADDPS 192(BX), Y6, Y6
	VADDPS 224(BX), Y7, Y7

cr_nobias:
	MOVQ relu+80(FP), BX
	TESTQ BX, BX
	JEQ cr_store
	VXORPS Y9, Y9, Y9
	VMAXPS Y9, Y0, Y0
	VMAXPS Y9, Y1, Y1
	VMAXPS Y9, Y2, Y2
	VMAXPS Y9, Y3, Y3
	VMAXPS Y9, Y4, Y4
	VMAXPS Y9, Y5, Y5
	VMAXPS Y9, Y6, Y6
	VMAXPS Y9, Y7, Y7

cr_store:
	VMOVUPS Y0, 0(DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VMOVUPS Y4, 128(DX)
	VMOVUPS Y5, 160(DX)
	VMOVUPS Y6, 192(DX)
	VMOVUPS Y7, 224(DX)
	ADDQ R13, SI
	ADDQ R8, DX
	DECQ R9
	JNE cr_pixel

cr_done:
	VZEROUPPER
	RET

// func maxPoolRowAVX512(x, y, arg *float32, c, outW, kh, kw, rowStride, colStep int)
// maxPoolRowAVX2 with AVX-512 for c a multiple of 64: 64 channels (four
// independent compare-and-select chains, the selection under a mask) per
// step, with the same comparisons in the same order, so the same results.
TEXT ·maxPoolRowAVX512(SB), NOSPLIT, $0-72
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ arg+16(FP), DX
	MOVQ c+24(FP), R8
	MOVQ outW+32(FP), R9
	MOVQ rowStride+56(FP), R12
	MOVQ colStep+64(FP), R13
	SHLQ $2, R8
	SHLQ $2, R12
	SHLQ $2, R13
	MOVL $0x3f800000, AX
	VMOVD AX, X9
	VBROADCASTSS X9, Z9 // 1.0
	TESTQ R9, R9
	JEQ mpz_done

mpz_pixel:
	XORQ BX, BX // channel offset in bytes

mpz_chan:
	LEAQ (SI)(BX*1), R10 // window row pointer
	VMOVUPS 0(R10), Z0   // best
	VMOVUPS 64(R10), Z1
	VMOVUPS 128(R10), Z2
	VMOVUPS 192(R10), Z3
	VPXORD Z4, Z4, Z4    // arg
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8    // idx
	MOVQ kh+40(FP), CX

mpz_ky:
	MOVQ R10, R11 // tap pointer
	MOVQ kw+48(FP), AX

mpz_kx:
	VMOVUPS 0(R11), Z12
	VMOVUPS 64(R11), Z13
	VMOVUPS 128(R11), Z14
	VMOVUPS 192(R11), Z15
	VCMPPS $0x11, Z12, Z0, K1 // best < v
	VCMPPS $0x11, Z13, Z1, K2
	VCMPPS $0x11, Z14, Z2, K3
	VCMPPS $0x11, Z15, Z3, K4
	VMOVAPS Z12, K1, Z0
	VMOVAPS Z13, K2, Z1
	VMOVAPS Z14, K3, Z2
	VMOVAPS Z15, K4, Z3
	VMOVAPS Z8, K1, Z4
	VMOVAPS Z8, K2, Z5
	VMOVAPS Z8, K3, Z6
	VMOVAPS Z8, K4, Z7
	VADDPS Z9, Z8, Z8
	ADDQ R8, R11
	DECQ AX
	JNE mpz_kx
	ADDQ R12, R10
	DECQ CX
	JNE mpz_ky

	VMOVUPS Z0, 0(DI)(BX*1)
	VMOVUPS Z1, 64(DI)(BX*1)
	VMOVUPS Z2, 128(DI)(BX*1)
	VMOVUPS Z3, 192(DI)(BX*1)
	VMOVUPS Z4, 0(DX)(BX*1)
	VMOVUPS Z5, 64(DX)(BX*1)
	VMOVUPS Z6, 128(DX)(BX*1)
	VMOVUPS Z7, 192(DX)(BX*1)
	ADDQ $256, BX
	CMPQ BX, R8
	JLT mpz_chan

	ADDQ R13, SI
	ADDQ R8, DI
	ADDQ R8, DX
	DECQ R9
	JNE mpz_pixel

mpz_done:
	VZEROUPPER
	RET

// PACK4x4 transposes four k values of four rows of A (16-byte loads from
// R0–R3) into four 16-byte groups of d at DI+OFF, DI+OFF+48, +96, +144 (d
// holds 12 values per k).
#define PACK4x4(R0, R1, R2, R3, OFF) \
	MOVUPS R0, X0; \
	MOVUPS R1, X1; \
	MOVUPS R2, X2; \
	MOVUPS R3, X3; \
	MOVAPS X0, X4; \
	UNPCKLPS X1, X4; \
	UNPCKHPS X1, X0; \
	MOVAPS X2, X5; \
	UNPCKLPS X3, X5; \
	UNPCKHPS X3, X2; \
	MOVAPS X4, X6; \
	MOVLHPS X5, X6; \
	MOVHLPS X4, X5; \
	MOVAPS X0, X7; \
	MOVLHPS X2, X7; \
	MOVHLPS X0, X2; \
	MOVUPS X6, OFF(DI); \
	MOVUPS X5, (OFF+48)(DI); \
	MOVUPS X7, (OFF+96)(DI); \
	MOVUPS X2, (OFF+144)(DI)

// func packA12SSE(d, a *float32, lda, kc4 int)
// Interleaves 12 rows of A (row i at a + i·lda floats) into d, 12 values
// per k: d[p·12 + i] = a[i·lda + p] for p < 4·kc4, four k at a time, as
// three 4×4 transposes (rows 0–3, 4–7, 8–11) of 16-byte loads: for each
// group, (a0 a1 a2 a3), (b0 …), (c0 …), (d0 …) unpack to (a0 b0 a1 b1),
// (a2 b2 a3 b3), (c0 d0 c1 d1), (c2 d2 c3 d3), then combine halves into
// (a0 b0 c0 d0) … (a3 b3 c3 d3).
TEXT ·packA12SSE(SB), NOSPLIT, $0-32
	MOVQ d+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ kc4+24(FP), CX
	SHLQ $2, R8              // lda in bytes
	LEAQ (R8)(R8*2), R9      // 3·lda
	LEAQ (R8)(R8*4), R10     // 5·lda
	LEAQ (R9)(R8*4), R11     // 7·lda
	LEAQ (R8)(R8*8), R12     // 9·lda
	LEAQ (R11)(R8*4), R13    // 11·lda
	TESTQ CX, CX
	JEQ packA12SSE_done
packA12SSE_loop:
	PACK4x4((SI), (SI)(R8*1), (SI)(R8*2), (SI)(R9*1), 0)
	PACK4x4((SI)(R8*4), (SI)(R10*1), (SI)(R9*2), (SI)(R11*1), 16)
	PACK4x4((SI)(R8*8), (SI)(R12*1), (SI)(R10*2), (SI)(R13*1), 32)
	ADDQ $16, SI
	ADDQ $192, DI
	DECQ CX
	JNE packA12SSE_loop
packA12SSE_done:
	RET
