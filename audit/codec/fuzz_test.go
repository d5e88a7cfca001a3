package codec

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/walaudit/walaudit/walname"
)

// fuzzLimit is the output bound FuzzOpen enforces.
const fuzzLimit = 1 << 20

// fuzzSuffixes are the suffixes FuzzOpen picks from (by index), including
// an unknown one.
var fuzzSuffixes = []walname.Compression{walname.CompressNone, walname.CompressGzip, walname.CompressLZ4,
	walname.CompressZstd, walname.CompressBrotli, walname.CompressBzip2, walname.CompressXZ,
	walname.CompressLZMA, walname.CompressLZO, walname.CompressSnappy, "7z"}

// FuzzOpen: whatever the bytes and suffix, Open and Read never panic (a
// library panic surfaces as errPanic), never yield more than the limit
// plus one byte, and fail only with this package's sentinels or io errors.
//
//	go test ./audit/codec -run '^$' -fuzz FuzzOpen -fuzztime 60s
func FuzzOpen(f *testing.F) {
	seg := realSegment(f, "000000010000000000000009")
	small := seg[:16<<10]
	for _, c := range writable {
		comp := compress(f, c, small)
		f.Add(comp, uint8(c.id))
		f.Add(comp, uint8(0))
	}
	for _, name := range []string{"000000010000000000000009.bz2", "000000010000000000000009.lzma", "000000010000000000000009.br"} {
		data := toolFixture(f, name)
		c, _ := ForSuffix(walname.Compression(name[len(name)-len("bz2"):]))
		if c == None {
			c, _ = ForSuffix(walname.Compression(name[len(name)-len("lzma"):]))
		}
		f.Add(data, uint8(c.id))
	}
	f.Add(small[:64], uint8(0))
	f.Add([]byte("1\t0/3000000\tno recovery target specified\n"), uint8(0))
	f.Add([]byte{}, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, suffix uint8) {
		s := fuzzSuffixes[int(suffix)%len(fuzzSuffixes)]
		rc, c, err := Open(bytes.NewReader(data), s)
		if err == nil {
			if s != walname.CompressNone && c.Suffix() != s {
				t.Fatalf("suffix %q opened as %v", s, c)
			}
			var n int64
			n, err = io.Copy(io.Discard, LimitReader(rc, fuzzLimit))
			if n > fuzzLimit+1 {
				t.Fatalf("%d bytes out, limit %d", n, fuzzLimit)
			}
			if cerr := rc.Close(); cerr != nil {
				t.Fatalf("close: %v", cerr)
			}
			if c == None && err == nil && n != int64(len(data)) && n <= fuzzLimit {
				t.Fatalf("pass-through changed the size: %d of %d", n, len(data))
			}
		}
		if errors.Is(err, errPanic) {
			t.Fatalf("decompressor panic: %v", err)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrMismatch) &&
			!errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}
