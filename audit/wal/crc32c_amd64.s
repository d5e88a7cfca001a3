#include "textflag.h"

// crc32cLanes advances the non-inverted CRC-32C register crc over 3*n
// bytes at p, n a positive multiple of 24: as three lanes of n bytes whose
// CRC32 instructions overlap (each waits only for its own lane), joined
// with k, whose low half is x^(8n-33) mod P and high half x^(16n-33) mod P
// (reflected): a carry-less product by x^(8m-33), reduced by one CRC32Q,
// is the register shifted over m zero bytes.
//
// func crc32cLanes(crc uint32, p *byte, n int, k uint64) uint32
TEXT ·crc32cLanes(SB),NOSPLIT,$0-36
	MOVL crc+0(FP), AX
	MOVQ p+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ k+24(FP), DX
	LEAQ (SI)(CX*1), DI
	LEAQ (DI)(CX*1), R8
	XORL BX, BX
	XORL R9, R9

loop:
	CRC32Q (SI), AX
	CRC32Q (DI), BX
	CRC32Q (R8), R9
	CRC32Q 8(SI), AX
	CRC32Q 8(DI), BX
	CRC32Q 8(R8), R9
	CRC32Q 16(SI), AX
	CRC32Q 16(DI), BX
	CRC32Q 16(R8), R9
	ADDQ $24, SI
	ADDQ $24, DI
	ADDQ $24, R8
	SUBQ $24, CX
	JNZ loop

	// AX shifted over 2n bytes, BX over n, then R9.
	MOVL DX, R10
	SHRQ $32, DX
	MOVL AX, AX
	MOVQ AX, X0
	MOVQ DX, X1
	PCLMULQDQ $0x00, X1, X0
	MOVL BX, BX
	MOVQ BX, X2
	MOVQ R10, X3
	PCLMULQDQ $0x00, X3, X2
	PXOR X2, X0
	MOVQ X0, AX
	XORL BX, BX
	CRC32Q AX, BX
	XORL R9, BX
	MOVL BX, ret+32(FP)
	RET

