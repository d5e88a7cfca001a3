package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ulikunitz/xz"

	"github.com/walaudit/walaudit/walname"
)

// readAll opens data with suffix and reads everything.
func readAll(data []byte, suffix walname.Compression) ([]byte, Codec, error) {
	rc, c, err := Open(bytes.NewReader(data), suffix)
	if err != nil {
		return nil, c, err
	}
	defer rc.Close()
	out, err := io.ReadAll(rc)
	return out, c, err
}

func TestForSuffixNamesMagic(t *testing.T) {
	all := All()
	if len(all) != 10 || all[0] != None {
		t.Fatalf("All() = %v", all)
	}
	var zero Codec
	if zero != None || zero.Name() != "none" || zero.Suffix() != walname.CompressNone {
		t.Errorf("zero Codec is %q/%q, want none", zero.Name(), zero.Suffix())
	}
	want := map[Codec][2]string{
		Gzip: {"gzip", "gz"}, LZ4: {"lz4", "lz4"}, Zstd: {"zstd", "zst"}, Brotli: {"brotli", "br"},
		Bzip2: {"bzip2", "bz2"}, XZ: {"xz", "xz"}, LZMA: {"lzma", "lzma"}, LZO: {"lzo", "lzo"}, Snappy: {"snappy", "snappy"},
	}
	for c, w := range want {
		if c.Name() != w[0] || c.String() != w[0] || string(c.Suffix()) != w[1] {
			t.Errorf("%v: name %q suffix %q, want %v", c, c.Name(), c.Suffix(), w)
		}
		got, ok := ForSuffix(walname.Compression(w[1]))
		if !ok || got != c {
			t.Errorf("ForSuffix(%q) = %v, %v", w[1], got, ok)
		}
	}
	// Every suffix walname knows has a codec.
	for _, s := range []walname.Compression{walname.CompressNone, walname.CompressGzip, walname.CompressLZ4,
		walname.CompressZstd, walname.CompressBrotli, walname.CompressBzip2, walname.CompressXZ,
		walname.CompressLZMA, walname.CompressLZO, walname.CompressSnappy} {
		if _, ok := ForSuffix(s); !ok {
			t.Errorf("ForSuffix(%q) unknown", s)
		}
	}
	if _, ok := ForSuffix("7z"); ok {
		t.Error("ForSuffix(7z) known")
	}
	for _, c := range []Codec{None, Brotli, LZMA} {
		if c.Magic() != nil {
			t.Errorf("%v has magic %x", c, c.Magic())
		}
	}
	m := Gzip.Magic()
	m[0] = 0
	if Gzip.Magic()[0] != 0x1f {
		t.Error("Magic returns the package's slice")
	}
}

func TestSniff(t *testing.T) {
	seg := realSegment(t, "000000010000000000000009")
	tests := []struct {
		name   string
		header []byte
		want   Codec
		ok     bool
	}{
		{"gzip", []byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3}, Gzip, true},
		{"gzip other method", []byte{0x1f, 0x8b, 0x07, 0, 0, 0, 0, 0, 0, 3}, None, false},
		{"lz4", []byte{0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7}, LZ4, true},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0x04}, Zstd, true},
		{"skippable frame is ambiguous", []byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0}, None, false},
		{"bzip2", []byte("BZh91AY&SY"), Bzip2, true},
		{"bzip2 bad level", []byte("BZh01AY&SY"), None, false},
		{"bzip2 short", []byte("BZh"), None, false},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 4}, XZ, true},
		{"lzo", append([]byte(nil), lzopMagic...), LZO, true},
		{"snappy", []byte{0xff, 6, 0, 0, 's', 'N', 'a', 'P', 'p', 'Y'}, Snappy, true},
		{"snappy short", []byte{0xff, 6, 0, 0, 's', 'N', 'a'}, None, false},
		{"s2 is not snappy", []byte{0xff, 6, 0, 0, 'S', '2', 's', 'T', 'w', 'O'}, None, false},
		{"real WAL segment", seg[:10], None, true},
		{"WAL page magic of PostgreSQL 17", []byte{0x16, 0xd1, 0x05, 0x00}, None, true},
		{"WAL magic with bad xlp_info", []byte{0x10, 0xd1, 0x08, 0x00}, None, false},
		{"history file", []byte("1\t0/3000"), None, false},
		{"brotli", toolFixture(t, "000000010000000000000009.br")[:10], None, false},
		{"lzma", toolFixture(t, "000000010000000000000009.lzma")[:10], None, false},
		{"empty", nil, None, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Sniff(tt.header)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Sniff(%x) = %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestRoundTrip compresses every real segment with each library the backup
// tools use and reads it back, by suffix and (where a magic exists) by
// sniffing.
func TestRoundTrip(t *testing.T) {
	for _, c := range writable {
		t.Run(c.Name(), func(t *testing.T) {
			for _, seg := range realSegments(t) {
				comp := compress(t, c, seg.data)
				got, gotCodec, err := readAll(comp, c.Suffix())
				if err != nil || gotCodec != c {
					t.Fatalf("%s: Open by suffix: codec %v, err %v", seg.name, gotCodec, err)
				}
				if !bytes.Equal(got, seg.data) {
					t.Fatalf("%s: by suffix: %d bytes differ from the %d original", seg.name, len(got), len(seg.data))
				}
				got, gotCodec, err = readAll(comp, walname.CompressNone)
				if err != nil {
					t.Fatalf("%s: Open without suffix: %v", seg.name, err)
				}
				if c.Magic() == nil {
					// brotli, lzma: not recognisable, passed through.
					if gotCodec != None || !bytes.Equal(got, comp) {
						t.Fatalf("%s: without suffix: codec %v, want none and the bytes unchanged", seg.name, gotCodec)
					}
					continue
				}
				if gotCodec != c || !bytes.Equal(got, seg.data) {
					t.Fatalf("%s: sniffed codec %v, equal %v", seg.name, gotCodec, bytes.Equal(got, seg.data))
				}
			}
		})
	}
}

// TestStreamingSmallReads feeds the compressed data one byte at a time and
// reads the output in small, odd-sized pieces.
func TestStreamingSmallReads(t *testing.T) {
	seg := realSegment(t, "000000010000000000000007")
	for _, c := range writable {
		t.Run(c.Name(), func(t *testing.T) {
			comp := compress(t, c, seg)
			rc, err := NewReader(c, iotest.OneByteReader(bytes.NewReader(comp)))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			var out bytes.Buffer
			buf := make([]byte, 777)
			if _, err := io.CopyBuffer(&out, struct{ io.Reader }{rc}, buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), seg) {
				t.Fatalf("output differs (%d bytes)", out.Len())
			}
		})
	}
}

// TestToolFixtures reads what the real tools wrote (testdata/gen.sh).
func TestToolFixtures(t *testing.T) {
	tests := []struct {
		file    string
		segment string
		c       Codec
	}{
		{"000000010000000000000009.gz", "000000010000000000000009", Gzip},
		{"000000010000000000000009.bz2", "000000010000000000000009", Bzip2},
		{"000000010000000000000006.bz2", "000000010000000000000006", Bzip2},
		{"000000010000000000000009.xz", "000000010000000000000009", XZ},
		{"000000010000000000000009.lzma", "000000010000000000000009", LZMA},
		{"000000010000000000000009.zst", "000000010000000000000009", Zstd},
		{"000000010000000000000009.lz4", "000000010000000000000009", LZ4},
		{"000000010000000000000009.br", "000000010000000000000009", Brotli},
		{"000000010000000000000009.lzo", "000000010000000000000009", LZO},
		{"000000010000000000000009.9.lzo", "000000010000000000000009", LZO},
		{"000000010000000000000009.crc32.lzo", "000000010000000000000009", LZO},
		{"000000010000000000000006.9.lzo", "000000010000000000000006", LZO},
		{"000000010000000000000009.snappy", "000000010000000000000009", Snappy},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := toolFixture(t, tt.file)
			want := realSegment(t, tt.segment)
			got, c, err := readAll(data, tt.c.Suffix())
			if err != nil || c != tt.c {
				t.Fatalf("codec %v, err %v", c, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%d bytes differ from the %d of %s", len(got), len(want), tt.segment)
			}
			if tt.c.Magic() == nil {
				return
			}
			// Barman: compressed content under the plain name.
			got, c, err = readAll(data, walname.CompressNone)
			if err != nil || c != tt.c || !bytes.Equal(got, want) {
				t.Fatalf("sniffed: codec %v, err %v, equal %v", c, err, bytes.Equal(got, want))
			}
		})
	}
}

func TestPassThrough(t *testing.T) {
	seg := realSegment(t, "00000001000000000000000A")
	history := []byte("1\t0/3000000\tno recovery target specified\n")
	for _, data := range [][]byte{seg, history, nil, {0x10}} {
		got, c, err := readAll(data, walname.CompressNone)
		if err != nil || c != None || !bytes.Equal(got, data) {
			t.Errorf("%.10q: codec %v, err %v, equal %v", data, c, err, bytes.Equal(got, data))
		}
	}
	rc, err := NewReader(None, bytes.NewReader(seg))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, seg) {
		t.Errorf("NewReader(None): err %v", err)
	}
}

func TestMismatch(t *testing.T) {
	seg := realSegment(t, "000000010000000000000009")
	zst := compress(t, Zstd, seg)
	xzData := compress(t, XZ, seg)
	gz := compress(t, Gzip, seg)
	tests := []struct {
		name   string
		data   []byte
		suffix walname.Compression
		is     error
		words  []string
	}{
		{"gz holding zstd", zst, walname.CompressGzip, ErrMismatch, []string{".gz", "gzip", "zstd"}},
		{"zst holding plain WAL", seg, walname.CompressZstd, ErrMismatch, []string{"zstd", "uncompressed WAL", "0xd110"}},
		{"br holding gzip", gz, walname.CompressBrotli, ErrMismatch, []string{"brotli", "gzip"}},
		{"lzma holding xz", xzData, walname.CompressLZMA, ErrMismatch, []string{"lzma", "xz"}},
		{"lzma holding plain WAL", seg, walname.CompressLZMA, ErrMismatch, []string{"lzma", "uncompressed WAL"}},
		{"snappy holding lzo", toolFixture(t, "000000010000000000000009.lzo"), walname.CompressSnappy, ErrMismatch, []string{"snappy", "lzo"}},
		{"gz holding garbage", []byte("not compressed at all"), walname.CompressGzip, ErrCorrupt, []string{"gzip", "1f8b08", "6e6f7420"}},
		{"xz empty", nil, walname.CompressXZ, ErrCorrupt, []string{"xz", "empty"}},
		{"unknown suffix", gz, "7z", ErrUnsupported, []string{`"7z"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, c, err := Open(bytes.NewReader(tt.data), tt.suffix)
			if !errors.Is(err, tt.is) || rc != nil || c != None {
				t.Fatalf("Open: rc %v codec %v err %v, want %v", rc, c, err, tt.is)
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// A brotli or lzma stream is not confirmed by magic but still decoded.
	for _, c := range []Codec{Brotli, LZMA} {
		if got, _, err := readAll(compress(t, c, seg), c.Suffix()); err != nil || !bytes.Equal(got, seg) {
			t.Errorf("%v: %v", c, err)
		}
	}
	// pzstd starts with a skippable frame: accepted for .zst.
	var skip bytes.Buffer
	skip.Write([]byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4})
	skip.Write(zst)
	if got, c, err := readAll(skip.Bytes(), walname.CompressZstd); err != nil || c != Zstd || !bytes.Equal(got, seg) {
		t.Errorf("zstd after skippable frame: codec %v err %v", c, err)
	}
}

// corruptInput is compressed data for the corruption tests: the dense real
// segment 06.
func corruptInput(t *testing.T, c Codec) (comp, plain []byte) {
	plain = realSegment(t, "000000010000000000000006")
	if c == Bzip2 {
		return toolFixture(t, "000000010000000000000006.bz2"), plain
	}
	return compress(t, c, plain), plain
}

// checksummed are the codecs whose writers (as used by the backup tools)
// protect the content, so any damaged byte past the header is detected.
var checksummed = map[Codec]bool{Gzip: true, LZ4: true, Zstd: true, Bzip2: true, XZ: true, LZO: true, Snappy: true}

// wantCorrupt checks err for a corruption error naming the codec.
func wantCorrupt(t *testing.T, c Codec, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("%s: err %v, want ErrCorrupt", what, err)
		return
	}
	if errors.Is(err, errPanic) {
		t.Errorf("%s: decompressor panicked: %v", what, err)
	}
	if !strings.Contains(err.Error(), c.Name()) {
		t.Errorf("%s: error %q does not name %s", what, err, c.Name())
	}
}

func TestCorrupt(t *testing.T) {
	for _, c := range append([]Codec{Bzip2}, writable...) {
		t.Run(c.Name(), func(t *testing.T) {
			comp, plain := corruptInput(t, c)
			cuts := []int{len(comp) / 3, len(comp) / 2, len(comp) - 1}
			for n := range 64 {
				cuts = append(cuts, n)
			}
			for _, n := range cuts {
				if c == Snappy && snappyChunkEnd(comp, n) {
					continue // no end marker: a cut between chunks is undetectable
				}
				_, _, err := readAll(comp[:n], c.Suffix())
				wantCorrupt(t, c, fmt.Sprintf("truncated to %d of %d", n, len(comp)), err)
				if err != nil && n > 12 && !strings.Contains(err.Error(), "truncated") && !strings.Contains(err.Error(), "corrupt") {
					t.Errorf("truncated: %v", err)
				}
			}
			trailing := append(append([]byte(nil), comp...), "garbage"...)
			_, _, err := readAll(trailing, c.Suffix())
			wantCorrupt(t, c, "trailing garbage", err)

			for _, frac := range []int{4, 2} {
				pos := len(comp) * (frac - 1) / frac
				bad := append([]byte(nil), comp...)
				bad[pos] ^= 0x55
				got, _, err := readAll(bad, c.Suffix())
				switch {
				case err == nil && bytes.Equal(got, plain):
					// The damage did not change the content (e.g. another
					// offset into a run of zeros): nothing to detect.
				case err == nil && checksummed[c]:
					t.Errorf("byte %d flipped: no error and different output", pos)
				case err != nil:
					wantCorrupt(t, c, fmt.Sprintf("byte %d of %d flipped", pos, len(comp)), err)
				}
			}
		})
	}
}

// TestCorruptNoPanic flips and truncates at many random places: the
// result is the original, a changed output (brotli, lzma carry no
// checksum) or an error wrapping ErrCorrupt/ErrUnsupported, never a panic
// nor more output than the limit allows.
func TestCorruptNoPanic(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	seg := realSegment(t, "000000010000000000000008")
	for _, c := range append([]Codec{Bzip2}, writable...) {
		t.Run(c.Name(), func(t *testing.T) {
			comp := compress2(t, c, seg)
			for i := range 90 {
				bad := append([]byte(nil), comp...)
				switch i % 3 {
				case 0:
					bad[rnd.IntN(len(bad))] ^= byte(1 + rnd.IntN(255))
				case 1:
					for range 8 {
						bad[rnd.IntN(len(bad))] = byte(rnd.IntN(256))
					}
				case 2:
					bad = bad[:rnd.IntN(len(bad))]
				}
				rc, _, err := Open(bytes.NewReader(bad), c.Suffix())
				if err == nil {
					var n int64
					n, err = io.Copy(io.Discard, LimitReader(rc, int64(len(seg))))
					rc.Close()
					if n > int64(len(seg))+1 {
						t.Fatalf("case %d: %d bytes out", i, n)
					}
				}
				if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) &&
					!errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMismatch) {
					t.Fatalf("case %d: unclassified error %v", i, err)
				}
				if errors.Is(err, errPanic) {
					t.Fatalf("case %d: %v", i, err)
				}
			}
		})
	}
}

// snappyChunkEnd reports whether n is the end of a chunk of the framed
// snappy stream.
func snappyChunkEnd(comp []byte, n int) bool {
	for off := 0; off+4 <= len(comp); {
		off += 4 + (int(comp[off+1]) | int(comp[off+2])<<8 | int(comp[off+3])<<16)
		if off == n {
			return true
		}
	}
	return false
}

// compress2 is compress with bzip2 (no Go writer) taken from a fixture.
func compress2(t *testing.T, c Codec, seg []byte) []byte {
	if c == Bzip2 {
		return toolFixture(t, "000000010000000000000009.bz2")
	}
	return compress(t, c, seg)
}

func TestLimitReader(t *testing.T) {
	// A bomb: 16 MiB of zeros in a few kilobytes.
	zeros := make([]byte, 16<<20)
	for _, c := range []Codec{Zstd, Gzip, XZ, LZO} {
		t.Run(c.Name(), func(t *testing.T) {
			bomb := compress(t, c, zeros)
			rc, _, err := Open(bytes.NewReader(bomb), c.Suffix())
			if err != nil {
				t.Fatal(err)
			}
			const limit = 1 << 20
			got, err := io.ReadAll(LimitReader(rc, limit))
			if !errors.Is(err, ErrTooLarge) || len(got) != limit+1 {
				t.Fatalf("got %d bytes, err %v; want %d and ErrTooLarge", len(got), err, limit+1)
			}
			if !strings.Contains(err.Error(), "1048576") {
				t.Errorf("error %q does not give the limit", err)
			}
			if err := rc.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	seg := realSegment(t, "000000010000000000000009")
	for _, limit := range []int64{int64(len(seg)), int64(len(seg)) + 100} {
		rc, _, _ := Open(bytes.NewReader(compress(t, Gzip, seg)), walname.CompressGzip)
		got, err := io.ReadAll(LimitReader(rc, limit))
		if err != nil || !bytes.Equal(got, seg) {
			t.Errorf("limit %d: %d bytes, err %v", limit, len(got), err)
		}
	}
	got, err := io.ReadAll(LimitReader(io.NopCloser(bytes.NewReader(seg)), -5))
	if !errors.Is(err, ErrTooLarge) || len(got) != 1 {
		t.Errorf("negative limit: %d bytes, %v", len(got), err)
	}
}

// askCounter records how many bytes readers asked for.
type askCounter struct {
	io.Reader
	asked int64
}

func (a *askCounter) Read(p []byte) (int, error) {
	a.asked += int64(len(p))
	return a.Reader.Read(p)
}

func (a *askCounter) Close() error { return nil }

func TestLimitReaderAsksNoMore(t *testing.T) {
	src := &askCounter{Reader: bytes.NewReader(make([]byte, 10000))}
	got, err := io.ReadAll(LimitReader(src, 4096))
	if !errors.Is(err, ErrTooLarge) || len(got) != 4097 || src.asked != 4097 {
		t.Errorf("got %d bytes, asked %d, err %v", len(got), src.asked, err)
	}
}

// TestZstdDecoderReuse: pooled decoders decode later files correctly,
// also after a failed one and concurrently.
func TestZstdDecoderReuse(t *testing.T) {
	var inputs [][]byte
	for _, s := range realSegments(t) {
		inputs = append(inputs, s.data)
	}
	comps := make([][]byte, len(inputs))
	for i, in := range inputs {
		comps[i] = compress(t, Zstd, in)
	}
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			for round := range 5 {
				for i := range comps {
					if (i+g+round)%3 == 0 { // a damaged file now and then
						bad := append([]byte(nil), comps[i]...)
						bad[len(bad)/2] ^= 0xff
						readAll(bad, walname.CompressZstd)
					}
					got, _, err := readAll(comps[i], walname.CompressZstd)
					if err != nil || !bytes.Equal(got, inputs[i]) {
						errs <- fmt.Errorf("goroutine %d round %d file %d: err %v", g, round, i, err)
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestSourceError: an I/O error of the source is returned as is, not as
// corruption.
func TestSourceError(t *testing.T) {
	seg := realSegment(t, "000000010000000000000006")
	boom := errors.New("network down")
	for _, c := range writable {
		comp := compress(t, c, seg)
		src := io.MultiReader(bytes.NewReader(comp[:len(comp)/2]), iotest.ErrReader(boom))
		rc, _, err := Open(src, c.Suffix())
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
			t.Errorf("%v: err %v, want the source's error only", c, err)
		}
	}
	if _, _, err := Open(iotest.ErrReader(boom), walname.CompressNone); !errors.Is(err, boom) {
		t.Errorf("Open on failing source: %v", err)
	}
}

func TestReadAfterClose(t *testing.T) {
	rc, _, err := Open(bytes.NewReader(compress(t, Zstd, []byte("hello"))), walname.CompressZstd)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if err := rc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := rc.Read(make([]byte, 10)); err == nil {
		t.Error("Read after Close succeeded")
	}
}

func TestDictionaryLimits(t *testing.T) {
	seg := realSegment(t, "000000010000000000000009")
	// lzma: header asking for a 1 GiB dictionary.
	lz := compress(t, LZMA, seg)
	lz[1], lz[2], lz[3], lz[4] = 0, 0, 0, 0x40
	_, _, err := readAll(lz, walname.CompressLZMA)
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("lzma 1 GiB dictionary: %v", err)
	}
	// xz: first block with a 128 MiB LZMA2 dictionary.
	var buf bytes.Buffer
	w, err := xz.WriterConfig{DictCap: 128 << 20}.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(seg[:4096])
	w.Close()
	_, _, err = readAll(buf.Bytes(), walname.CompressXZ)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "dictionary") {
		t.Errorf("xz 128 MiB dictionary: %v", err)
	}
	// The default (8 MiB) and xz -9 (64 MiB, from the fixture's tool) pass.
	if _, _, err := readAll(compress(t, XZ, seg), walname.CompressXZ); err != nil {
		t.Error(err)
	}
	// zstd: a frame declaring a 256 MiB window (descriptor 0x90: 2^(10+18))
	// holding one raw block "hello".
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x90, 5<<3 | 1, 0, 0, 'h', 'e', 'l', 'l', 'o'}
	_, _, err = readAll(frame, walname.CompressZstd)
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("zstd 256 MiB window: %v", err)
	}
	frame[5] = 0x80 // 128 MiB: accepted
	if got, _, err := readAll(frame, walname.CompressZstd); err != nil || string(got) != "hello" {
		t.Errorf("zstd 128 MiB window: %q, %v", got, err)
	}
}
