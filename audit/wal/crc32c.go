package wal

import (
	"hash/crc32"
	"sync"
)

// CRC-32C arithmetic for records whose bytes sit in different segment
// summaries: each summary keeps the CRC of its part only, and the parts'
// CRCs are combined without the bytes.
//
// The method is zlib's crc32_combine (1.2.12 and later): a CRC register
// is a polynomial over GF(2) in reflected bit order; appending n zero
// bytes to a message multiplies its register by x^(8n) modulo the CRC
// polynomial, so
//
//	crc(A || B) = crc(A)·x^(8|B|) mod P  XOR  crc(B)
//
// The pre- and post-inversion of the standard CRC cancel out in this
// identity (zlib's proof). x^(8n) is built from the table of x^(2^k) by
// square-and-multiply, so a combine costs O(log n) multiplications of 32
// bit polynomials.

// crcPoly is the reflected Castagnoli polynomial (crc32.Castagnoli).
const crcPoly = crc32.Castagnoli

// x2nTable[k] is x^(2^k) mod P, reflected.
var x2nTable = sync.OnceValue(func() [32]uint32 {
	var t [32]uint32
	p := uint32(1) << 30 // x^1, reflected
	t[0] = p
	for k := 1; k < 32; k++ {
		p = multModP(p, p)
		t[k] = p
	}
	return t
})

// multModP returns a(x)·b(x) mod P for reflected polynomials.
func multModP(a, b uint32) uint32 {
	if a == 0 {
		return 0
	}
	m := uint32(1) << 31 // x^0
	var p uint32
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
	return p
}

// x8nModP returns x^(8n) mod P: the operator that appends n zero bytes.
func x8nModP(n uint64) uint32 {
	t := x2nTable()
	p := uint32(1) << 31 // x^0
	k := 3               // 8n = n·2^3
	for n != 0 {
		if n&1 != 0 {
			p = multModP(t[k&31], p)
		}
		n >>= 1
		k++
	}
	return p
}

// crcCombine returns the CRC-32C of A || B from crc1 = CRC(A), crc2 =
// CRC(B) and len2 = len(B).
func crcCombine(crc1, crc2 uint32, len2 uint64) uint32 {
	return multModP(x8nModP(len2), crc1) ^ crc2
}

// crcStrip returns CRC(B) from crcAB = CRC(A || B), crcA = CRC(A) and
// lenB = len(B): the inverse of crcCombine in its second argument.
func crcStrip(crcAB, crcA uint32, lenB uint64) uint32 {
	return crcAB ^ multModP(x8nModP(lenB), crcA)
}

// xnModP returns x^n mod P.
func xnModP(n uint64) uint32 {
	t := x2nTable()
	p := uint32(1) << 31 // x^0
	for k := 0; n != 0; k++ {
		if n&1 != 0 {
			p = multModP(t[k&31], p)
		}
		n >>= 1
	}
	return p
}
