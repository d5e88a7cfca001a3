package wal

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// testLane covers the longest lane of the amd64 code, and more.
const testLane = 4096

// crcUpdate must agree with hash/crc32 for every length, alignment and
// starting value.
func TestCRCUpdateMatchesHashCRC32(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 3*testLane*2+64)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	check := func(init uint32, p []byte) {
		t.Helper()
		if got, want := crcUpdate(init, p), crc32.Update(init, castagnoli, p); got != want {
			t.Fatalf("len %d init %08x: crcUpdate %08x, hash/crc32 %08x", len(p), init, got, want)
		}
	}
	for n := 0; n <= 3*testLane+64; n++ {
		off := n % 8
		check(rng.Uint32(), buf[off:off+n])
	}
	for range 2000 {
		n := rng.IntN(len(buf))
		off := rng.IntN(len(buf) - n + 1)
		check(rng.Uint32(), buf[off:off+n])
	}
	check(0, buf)
	check(0xffffffff, make([]byte, 3*testLane+24))
}
