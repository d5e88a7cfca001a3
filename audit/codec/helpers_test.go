package codec

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/adler32"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// segment is one real WAL segment.
type segment struct {
	name string
	data []byte
}

var (
	segmentsOnce sync.Once
	segmentsVal  []segment
	segmentsErr  error
)

// realSegments returns the real PostgreSQL 15 segments (1 MiB) of
// audit/wal/testdata, gunzipped, sorted by name.
func realSegments(t testing.TB) []segment {
	t.Helper()
	segmentsOnce.Do(func() {
		paths, err := filepath.Glob(filepath.Join("..", "wal", "testdata", "*.gz"))
		if err != nil || len(paths) == 0 {
			segmentsErr = err
			if err == nil {
				segmentsErr = os.ErrNotExist
			}
			return
		}
		sort.Strings(paths)
		for _, p := range paths {
			raw, err := os.ReadFile(p)
			if err != nil {
				segmentsErr = err
				return
			}
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				segmentsErr = err
				return
			}
			data, err := io.ReadAll(zr)
			if err != nil {
				segmentsErr = err
				return
			}
			segmentsVal = append(segmentsVal, segment{strings.TrimSuffix(filepath.Base(p), ".gz"), data})
		}
	})
	if segmentsErr != nil {
		t.Fatalf("real WAL segments: %v", segmentsErr)
	}
	return segmentsVal
}

// realSegment returns one real segment by name.
func realSegment(t testing.TB, name string) []byte {
	t.Helper()
	for _, s := range realSegments(t) {
		if s.name == name {
			return s.data
		}
	}
	t.Fatalf("no real segment %s", name)
	return nil
}

// writable are the codecs compress can produce in Go (bzip2 has no Go
// writer; its data comes from the committed fixtures of the bzip2 tool).
var writable = []Codec{Gzip, LZ4, Zstd, Brotli, XZ, LZMA, LZO, Snappy}

// compress compresses data as the backup tools' libraries do.
func compress(t testing.TB, c Codec, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch c {
	case Gzip:
		w = kgzip.NewWriter(&buf)
	case LZ4:
		w = lz4.NewWriter(&buf)
	case Zstd:
		w, err = zstd.NewWriter(&buf)
	case Brotli:
		w = brotli.NewWriter(&buf)
	case XZ:
		w, err = xz.NewWriter(&buf)
	case LZMA:
		w, err = lzma.NewWriter(&buf) // WAL-G's internal/compression/lzma
	case LZO:
		return lzopCompress(data, lzopOptions{flags: lzopFlagAdler32D | lzopFlagAdler32C})
	case Snappy:
		w = snappy.NewBufferedWriter(&buf) // framing format, like python-snappy
	default:
		t.Fatalf("compress: no writer for %s", c)
	}
	if err != nil {
		t.Fatalf("%s writer: %v", c, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("%s write: %v", c, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("%s close: %v", c, err)
	}
	return buf.Bytes()
}

// toolFixture reads testdata/tools/<name>.
func toolFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "tools", name))
	if err != nil {
		t.Fatalf("fixture: %v (run testdata/gen.sh)", err)
	}
	return data
}

// lzoCompressBlock is an independent, simple LZO1X compressor (greedy,
// hash of 3 bytes) used to test the decompressor on real data. It emits
// every instruction form the decompressor knows except the 2-byte match,
// which only liblzo's LZO1X-999 emits (covered by the lzop -9 fixtures and
// TestLZO1XHandmade).
func lzoCompressBlock(src []byte) []byte {
	const (
		hashBits = 14
		maxDist  = 49151
	)
	var out []byte
	var table [1 << hashBits]int32
	for i := range table {
		table[i] = -1
	}
	hash := func(p int) int {
		v := uint32(src[p]) | uint32(src[p+1])<<8 | uint32(src[p+2])<<16
		return int((v * 2654435761) >> (32 - hashBits))
	}
	sPos := -1 // index in out of the byte holding the last match's SS bits
	state := 0 // literals copied by the last instruction (4 = 4 or more)
	first := true
	long := func(v int) { // v >= 1
		for v > 255 {
			out = append(out, 0)
			v -= 255
		}
		out = append(out, byte(v))
	}
	literals := func(lit []byte) {
		n := len(lit)
		switch {
		case n == 0:
			state = 0
			first = false
			return
		case first && n <= 238:
			out = append(out, byte(17+n))
		case !first && n <= 3:
			out[sPos] |= byte(n)
		case n-3 <= 15:
			out = append(out, byte(n-3))
		default:
			out = append(out, 0)
			long(n - 18)
		}
		out = append(out, lit...)
		state = min(n, 4)
		first = false
	}
	match := func(dist, n int) {
		switch {
		case state == 4 && n == 3 && dist >= 2049 && dist <= 3072:
			d := dist - 2049
			out = append(out, byte(d&3)<<2, byte(d>>2))
			sPos = len(out) - 2
		case n <= 8 && dist <= 2048:
			d := dist - 1
			out = append(out, byte(n-1)<<5|byte(d&7)<<2, byte(d>>3))
			sPos = len(out) - 2
		case dist <= 16384:
			if n-2 <= 31 {
				out = append(out, byte(32|(n-2)))
			} else {
				out = append(out, 32)
				long(n - 2 - 31)
			}
			out = binary.LittleEndian.AppendUint16(out, uint16((dist-1)<<2))
			sPos = len(out) - 2
		default:
			d := dist - 16384
			h := byte(d>>14) << 3
			if n-2 <= 7 {
				out = append(out, 16|h|byte(n-2))
			} else {
				out = append(out, 16|h)
				long(n - 2 - 7)
			}
			out = binary.LittleEndian.AppendUint16(out, uint16((d&0x3fff)<<2))
			sPos = len(out) - 2
		}
		state = 0
	}
	lit := 0
	for ip := 0; ip+3 <= len(src); {
		h := hash(ip)
		cand := int(table[h])
		table[h] = int32(ip)
		if cand < 0 || ip-cand > maxDist || src[cand] != src[ip] || src[cand+1] != src[ip+1] || src[cand+2] != src[ip+2] {
			ip++
			continue
		}
		n := 3
		for ip+n < len(src) && src[cand+n] == src[ip+n] {
			n++
		}
		literals(src[lit:ip])
		match(ip-cand, n)
		ip += n
		lit = ip
	}
	literals(src[lit:])
	return append(out, 0x11, 0, 0)
}

// lzopOptions shapes an lzop file written by lzopCompress.
type lzopOptions struct {
	flags     uint32
	blockSize int // default 256 KiB, lzop's
	name      string
	version   uint16 // default 0x1040
}

// lzopCompress writes an lzop file the way lzop 1.04 lays it out, with
// lzoCompressBlock as the compressor (method 1).
func lzopCompress(data []byte, o lzopOptions) []byte {
	if o.blockSize == 0 {
		o.blockSize = 256 << 10
	}
	if o.version == 0 {
		o.version = 0x1040
	}
	out := append([]byte(nil), lzopMagic...)
	var h []byte
	h = binary.BigEndian.AppendUint16(h, o.version)
	h = binary.BigEndian.AppendUint16(h, 0x20a0) // LZO 2.10
	if o.version >= 0x0940 {
		h = binary.BigEndian.AppendUint16(h, 0x0940)
	}
	h = append(h, 1) // M_LZO1X_1
	if o.version >= 0x0940 {
		h = append(h, 5)
	}
	h = binary.BigEndian.AppendUint32(h, o.flags|0x03000000) // F_OS_UNIX
	h = binary.BigEndian.AppendUint32(h, 0o100600)
	h = binary.BigEndian.AppendUint32(h, 1763690000)
	if o.version >= 0x0940 {
		h = binary.BigEndian.AppendUint32(h, 0)
	}
	h = append(h, byte(len(o.name)))
	h = append(h, o.name...)
	sum := adler32.Checksum(h)
	if o.flags&lzopFlagHeaderCRC32 != 0 {
		sum = crc32.ChecksumIEEE(h)
	}
	out = append(out, h...)
	out = binary.BigEndian.AppendUint32(out, sum)
	for off := 0; off < len(data); off += o.blockSize {
		blk := data[off:min(off+o.blockSize, len(data))]
		comp := lzoCompressBlock(blk)
		if len(comp) >= len(blk) {
			comp = blk
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(blk)))
		out = binary.BigEndian.AppendUint32(out, uint32(len(comp)))
		if o.flags&lzopFlagAdler32D != 0 {
			out = binary.BigEndian.AppendUint32(out, adler32.Checksum(blk))
		}
		if o.flags&lzopFlagCRC32D != 0 {
			out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(blk))
		}
		if len(comp) < len(blk) {
			if o.flags&lzopFlagAdler32C != 0 {
				out = binary.BigEndian.AppendUint32(out, adler32.Checksum(comp))
			}
			if o.flags&lzopFlagCRC32C != 0 {
				out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(comp))
			}
		}
		out = append(out, comp...)
	}
	return binary.BigEndian.AppendUint32(out, 0)
}
