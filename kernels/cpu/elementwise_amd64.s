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
