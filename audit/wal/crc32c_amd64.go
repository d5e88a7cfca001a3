package wal

import (
	"hash/crc32"
	"sync"

	"golang.org/x/sys/cpu"
)

//go:noescape
func crc32cLanes(crc uint32, p *byte, n int, k uint64) uint32

// Record CRCs are mostly over 100 bytes to a few KiB: too short for most
// of hash/crc32's three-way split (fixed 504 and 4032-byte blocks), so
// one chain of CRC32 instructions, each waiting for the one before, does
// most of the work. crcUpdate splits every span into three lanes of its
// own length instead.
const (
	minLanesLen = 256  // below this, joining the lanes costs more than it saves
	maxLane     = 4080 // longest lane: bounds the table of constants
	laneStep    = 24   // lane lengths are multiples of 3 words (the loop takes 3 at a time)
	numLaneK    = maxLane / laneStep
)

var useLanes = cpu.X86.HasSSE42 && cpu.X86.HasPCLMULQDQ

// laneK[i] joins lanes of n = 24(i+1) bytes: x^(8n-33) mod P in the low
// half, x^(16n-33) mod P in the high half.
var laneK = sync.OnceValue(func() *[numLaneK]uint64 {
	t := new([numLaneK]uint64)
	step := xnModP(8 * laneStep)  // from one lane length to the next
	lo := xnModP(8*laneStep - 33) // x^(8n-33) for the shortest lane
	hi := xnModP(16*laneStep - 33)
	step2 := multModP(step, step)
	for i := range t {
		t[i] = uint64(lo) | uint64(hi)<<32
		lo, hi = multModP(lo, step), multModP(hi, step2)
	}
	return t
})

// crcUpdate is crc32.Update(crc, castagnoli, p).
func crcUpdate(crc uint32, p []byte) uint32 {
	if !useLanes || len(p) < minLanesLen {
		return crc32.Update(crc, castagnoli, p)
	}
	k := laneK()
	c := ^crc
	for len(p) >= minLanesLen {
		n := min(len(p)/(3*laneStep)*laneStep, maxLane)
		c = crc32cLanes(c, &p[0], n, k[n/laneStep-1])
		p = p[3*n:]
	}
	return crc32.Update(^c, castagnoli, p)
}
