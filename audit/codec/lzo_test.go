package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/adler32"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/walaudit/walaudit/walname"
)

// TestLZO1XHandmade decodes hand-assembled LZO1X blocks, one per
// instruction form and error.
func TestLZO1XHandmade(t *testing.T) {
	end := []byte{0x11, 0, 0}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	lit2100 := make([]byte, 2100)
	for i := range lit2100 {
		lit2100[i] = byte(i % 251)
	}
	abab := bytes.Repeat([]byte("ab"), 51)
	tests := []struct {
		name string
		in   []byte
		want string // expected output; with err, the output length
		len  int
		err  error
	}{
		{"empty stream", end, "", 0, nil},
		{"first-byte literals, 2-byte match (state 1-3)", cat([]byte{20, 'a', 'b', 'c', 0x00, 0x00}, end), "abccc", 0, nil},
		{"2-byte match with 2 trailing literals", cat([]byte{20, 'a', 'b', 'c', 0x02, 0x00, 'x', 'y'}, end), "abcccxy", 0, nil},
		{"overlapping 8-byte match at distance 1", cat([]byte{18, 'a', 0xe0, 0x00}, end), "aaaaaaaaa", 0, nil},
		{"3-4 byte match (01L)", cat([]byte{21, 'w', 'x', 'y', 'z', 0x6c, 0x00}, end), "wxyzwxyz", 0, nil},
		{"long 001 match", cat([]byte{19, 'a', 'b', 32, 67, 0x04, 0x00}, end), "ab" + string(abab[:100]), 0, nil},
		{"literal run after a match (state 0)", cat([]byte{18, 'a', 0x60, 0x00, 0x01, 'q', 'r', 's', 't'}, end), "aaaaaqrst", 0, nil},
		{"long literal run, then 3-byte match at 2049+ (state 4)",
			cat([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 42}, lit2100, []byte{0x04, 0x01}, end),
			string(lit2100) + string(lit2100[46:49]), 0, nil},
		{"end marker with extended length", cat([]byte{18, 'a', 0x10, 0x00, 0x05, 0x00, 0x00}), "a", 0, nil},

		{"empty input", nil, "", 0, errLZOInputOverrun},
		{"match before start", cat([]byte{18, 'a', 0xe4, 0x00}, end), "", 9, errLZOLookBehind},
		{"far match into empty dictionary", []byte{0x11, 0x04, 0x00}, "", 3, errLZOLookBehind},
		{"output overrun", cat([]byte{18, 'a', 0xe0, 0x00}, end), "", 5, errLZOOutputOverrun},
		{"input overrun in literals", []byte{20, 'a', 'b'}, "", 3, errLZOInputOverrun},
		{"input overrun in distance", []byte{19, 'a', 'b', 33, 0x04}, "", 5, errLZOInputOverrun},
		{"input overrun in length", []byte{18, 'a', 0x10, 0x00, 0x00}, "", 5, errLZOInputOverrun},
		{"missing end marker", []byte{20, 'a', 'b', 'c'}, "", 3, errLZONoEnd},
		{"input after end marker", cat([]byte{18, 'a'}, end, []byte{0x99}), "", 1, nil},
		{"output shorter than header says", cat([]byte{18, 'a'}, end), "", 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(tt.want)
			if tt.len != 0 || tt.want == "" && tt.err != nil {
				n = tt.len
			}
			out := make([]byte, n)
			err := lzo1xDecompress(tt.in, out)
			wantErr := tt.err != nil || tt.len != 0
			switch {
			case !wantErr && err != nil:
				t.Fatalf("error %v", err)
			case !wantErr && string(out) != tt.want:
				t.Fatalf("got %q, want %q", out, tt.want)
			case wantErr && err == nil:
				t.Fatalf("no error, output %q", out)
			case tt.err != nil && !errors.Is(err, tt.err):
				t.Fatalf("error %v, want %v", err, tt.err)
			}
		})
	}
}

// TestLZO1XRoundTrip decodes what the independent test compressor makes of
// real WAL and of random data.
func TestLZO1XRoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rnd.IntN(256))
	}
	mixed := append(append([]byte(nil), random[:70000]...), make([]byte, 70000)...)
	mixed = append(mixed, random[100:60000]...)
	inputs := [][]byte{random, mixed, []byte("a"), []byte("abcabcabcabc")}
	for _, s := range realSegments(t) {
		inputs = append(inputs, s.data)
	}
	for i, in := range inputs {
		for off := 0; off < len(in); off += 256 << 10 {
			blk := in[off:min(off+256<<10, len(in))]
			out := make([]byte, len(blk))
			if err := lzo1xDecompress(lzoCompressBlock(blk), out); err != nil || !bytes.Equal(out, blk) {
				t.Fatalf("input %d block at %d: err %v, equal %v", i, off, err, bytes.Equal(out, blk))
			}
		}
	}
}

func TestLzopContainer(t *testing.T) {
	seg := realSegment(t, "000000010000000000000006")
	rnd := rand.New(rand.NewPCG(5, 6))
	random := make([]byte, 100000)
	for i := range random {
		random[i] = byte(rnd.IntN(256))
	}
	tests := []struct {
		name string
		data []byte
		o    lzopOptions
	}{
		{"WAL-E: stdin, Adler-32 of uncompressed data", seg, lzopOptions{flags: lzopFlagAdler32D | 0x04 | 0x08}},
		{"no checksums", seg, lzopOptions{}},
		{"all checksums, CRC-32 header, name", seg, lzopOptions{flags: lzopFlagAdler32D | lzopFlagAdler32C | lzopFlagCRC32D | lzopFlagCRC32C | lzopFlagHeaderCRC32, name: "000000010000000000000006"}},
		{"pre-0.9.4 header layout", seg, lzopOptions{flags: lzopFlagAdler32D, version: 0x0930}},
		{"small blocks", seg[:300000], lzopOptions{flags: lzopFlagCRC32D | lzopFlagCRC32C, blockSize: 4096}},
		{"stored (incompressible) blocks", random, lzopOptions{flags: lzopFlagAdler32D | lzopFlagAdler32C}},
		{"empty", nil, lzopOptions{flags: lzopFlagAdler32D}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, c, err := readAll(lzopCompress(tt.data, tt.o), walname.CompressLZO)
			if err != nil || c != LZO || !bytes.Equal(got, tt.data) {
				t.Fatalf("codec %v err %v equal %v", c, err, bytes.Equal(got, tt.data))
			}
		})
	}
}

func TestLzopErrors(t *testing.T) {
	seg := realSegment(t, "000000010000000000000009")
	good := lzopCompress(seg[:100000], lzopOptions{flags: lzopFlagAdler32D | lzopFlagAdler32C, blockSize: 65536})
	// Header: magic 9, version 2, lib 2, needed 2, method 1, level 1,
	// flags 4 (@17), mode 4, mtime 8, name_len 1 (@33), checksum 4: 38
	// bytes; the first block starts at 38.
	const hdrEnd = 38
	rehash := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[34:], adler32.Checksum(b[9:34]))
		return b
	}
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		data []byte
		is   error
		word string
	}{
		{"bad header checksum", edit(func(b []byte) []byte { b[29]++; return b }), ErrCorrupt, "header checksum"},
		{"reserved flag", edit(func(b []byte) []byte { b[18] |= 0x01; return rehash(b) }), ErrCorrupt, "unknown header flags"},
		{"method NRV2B", edit(func(b []byte) []byte { b[15] = 0x2b; return rehash(b) }), ErrUnsupported, "method 43"},
		{"extra field", edit(func(b []byte) []byte { b[20] |= lzopFlagExtraField; return rehash(b) }), ErrUnsupported, "extra field"},
		{"multipart", edit(func(b []byte) []byte { b[19] |= lzopFlagMultipart >> 8; return rehash(b) }), ErrUnsupported, "multipart"},
		{"needs newer lzop", edit(func(b []byte) []byte { b[13], b[14] = 0x20, 0x00; return rehash(b) }), ErrUnsupported, "0x2000"},
		{"ancient version", edit(func(b []byte) []byte { b[9], b[10] = 0x08, 0x00; return rehash(b) }), ErrCorrupt, "header version"},
		{"truncated header", good[:20], ErrCorrupt, "truncated"},
		{"block too large", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[hdrEnd:], 65<<20); return b }), ErrCorrupt, "exceeds"},
		{"compressed larger than uncompressed", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[hdrEnd+4:], 65537); return b }), ErrCorrupt, "compressed size"},
		{"compressed checksum", edit(func(b []byte) []byte { b[hdrEnd+16] ^= 1; return b }), ErrCorrupt, "Adler-32 of compressed"},
		{"uncompressed checksum", edit(func(b []byte) []byte { b[hdrEnd+8] ^= 1; return b }), ErrCorrupt, "Adler-32 of uncompressed"},
		{"no end marker", good[:len(good)-4], ErrCorrupt, "end-of-stream marker missing"},
		{"huge forged block, short file", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[hdrEnd:], 64<<20)
			binary.BigEndian.PutUint32(b[hdrEnd+4:], 64<<20-1)
			return b[:hdrEnd+100]
		}), ErrCorrupt, "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readAll(tt.data, walname.CompressLZO)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.word) {
				t.Fatalf("err %v, want %v mentioning %q", err, tt.is, tt.word)
			}
		})
	}
	// The test layout matches what lzop writes.
	if _, _, err := readAll(good, walname.CompressLZO); err != nil {
		t.Fatal(err)
	}
	// The filter flag makes the header 4 bytes longer; still refused.
	o := lzopCompress(seg[:1000], lzopOptions{})
	h := append(append([]byte(nil), o[:21]...), 0, 0, 0, 1)
	h = append(h, o[21:34]...)
	h[20] |= lzopFlagFilter & 0xff
	h[19] |= lzopFlagFilter >> 8
	h = binary.BigEndian.AppendUint32(h, adler32.Checksum(h[9:]))
	h = append(h, o[38:]...)
	if _, err := NewReader(LZO, bytes.NewReader(h)); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "filter") {
		t.Errorf("filter: %v", err)
	}
	// Reading stops at the first error and keeps returning it.
	rc, err := NewReader(LZO, bytes.NewReader(good[:len(good)-4]))
	if err != nil {
		t.Fatal(err)
	}
	_, err1 := io.ReadAll(rc)
	_, err2 := rc.Read(make([]byte, 1))
	if err1 == nil || err1 != err2 {
		t.Errorf("errors %v then %v", err1, err2)
	}
}
