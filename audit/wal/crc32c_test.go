package wal

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestCRCCombine checks the combine and strip identities against
// hash/crc32 on random splits, lengths 0 to 200 KiB.
func TestCRCCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 200<<10)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for range 300 {
		n := rng.IntN(len(buf))
		if rng.IntN(4) == 0 {
			n = rng.IntN(64)
		}
		k := rng.IntN(n + 1)
		a, b := buf[:k], buf[k:n]
		whole := crc32.Checksum(buf[:n], castagnoli)
		ca, cb := crc32.Checksum(a, castagnoli), crc32.Checksum(b, castagnoli)
		if got := crcCombine(ca, cb, uint64(len(b))); got != whole {
			t.Fatalf("combine %d+%d: %08x, want %08x", len(a), len(b), got, whole)
		}
		if got := crcStrip(whole, ca, uint64(len(b))); got != cb {
			t.Fatalf("strip %d from %d: %08x, want %08x", len(a), n, got, cb)
		}
	}
	// A record's CRC from its parts, header last (FORMATS §3.6).
	rec := buf[:5000]
	want := crc32.Update(crc32.Checksum(rec[24:], castagnoli), castagnoli, rec[:20])
	c := crcCombine(crc32.Checksum(rec[:8], castagnoli), crc32.Checksum(rec[8:3000], castagnoli), 2992)
	c = crcCombine(c, crc32.Checksum(rec[3000:], castagnoli), 2000)
	c = crcStrip(c, crc32.Checksum(rec[:24], castagnoli), 5000-24)
	if got := crc32.Update(c, castagnoli, rec[:20]); got != want {
		t.Errorf("record CRC from parts %08x, want %08x", got, want)
	}
	if multModP(0, 12345) != 0 || crcCombine(7, 0, 0) != 7 {
		t.Error("degenerate operands")
	}
}
