//go:build amd64

#include "textflag.h"

// func reluAVX2(x, y *float32, n int)
// y[i] = max(x[i], 0) for i < n, n a multiple of 32. MAXPS returns its
// second source when the first is not greater, so NaN and -0 give +0.
TEXT ·reluAVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y15, Y15, Y15
	SHRQ $5, CX
	JEQ relu_done
relu_loop:
	VMOVUPS 0(SI), Y0
	VMAXPS Y15, Y0, Y0
	VMOVUPS 32(SI), Y1
	VMAXPS Y15, Y1, Y1
	VMOVUPS 64(SI), Y2
	VMAXPS Y15, Y2, Y2
	VMOVUPS 96(SI), Y3
	VMAXPS Y15, Y3, Y3
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	DECQ CX
	JNE relu_loop
relu_done:
	VZEROUPPER
	RET

// func reluBackAVX2(y, dy, dx *float32, n int)
// dx[i] = dy[i] where y[i] > 0, else 0, for i < n, n a multiple of 32.
// The compare is 0 < y (ordered, so NaN gives 0).
TEXT ·reluBackAVX2(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), SI
	MOVQ dy+8(FP), DX
	MOVQ dx+16(FP), DI
	MOVQ n+24(FP), CX
	VXORPS Y15, Y15, Y15
	SHRQ $5, CX
	JEQ back_done
back_loop:
	VCMPPS $0x11, 0(SI), Y15, Y0
	VCMPPS $0x11, 32(SI), Y15, Y1
	VCMPPS $0x11, 64(SI), Y15, Y2
	VCMPPS $0x11, 96(SI), Y15, Y3
	VANDPS 0(DX), Y0, Y0
	VANDPS 32(DX), Y1, Y1
	VANDPS 64(DX), Y2, Y2
	VANDPS 96(DX), Y3, Y3
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ $128, DI
	DECQ CX
	JNE back_loop
back_done:
	VZEROUPPER
	RET

// func adamAVX2(param, grad, m, v *float32, n int, lrt, omb1, omb2, eps float32)
// One Adam step over n elements, n a multiple of 8, with the operations of
// adamScalar in the same order and no fused multiply-adds, so the results
// are its bits (VSQRTPS rounds as float32(math.Sqrt(float64(x))) does):
//	m = m + (g-m)·omb1; v = v + (g·g-v)·omb2; p = p - lrt·m/(sqrt(v)+eps)
TEXT ·adamAVX2(SB), NOSPLIT, $0-56
	MOVQ param+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	VBROADCASTSS lrt+40(FP), Y12
	VBROADCASTSS omb1+44(FP), Y13
	VBROADCASTSS omb2+48(FP), Y14
	VBROADCASTSS eps+52(FP), Y15
	SHRQ $3, CX
	JEQ adam_done
adam_loop:
	VMOVUPS (SI), Y0
	VMOVUPS (R8), Y1
	VSUBPS Y1, Y0, Y2
	VMULPS Y13, Y2, Y2
	VADDPS Y2, Y1, Y1
	VMOVUPS Y1, (R8)
	VMOVUPS (R9), Y3
	VMULPS Y0, Y0, Y4
	VSUBPS Y3, Y4, Y4
	VMULPS Y14, Y4, Y4
	VADDPS Y4, Y3, Y3
	VMOVUPS Y3, (R9)
	VSQRTPS Y3, Y5
	VADDPS Y15, Y5, Y5
	VMULPS Y1, Y12, Y6
	VDIVPS Y5, Y6, Y6
	VMOVUPS (DI), Y7
	VSUBPS Y6, Y7, Y7
	VMOVUPS Y7, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNE adam_loop
adam_done:
	VZEROUPPER
	RET
