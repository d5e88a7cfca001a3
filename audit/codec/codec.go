package codec

import (
	"bytes"
	"encoding/hex"

	"github.com/walaudit/walaudit/walname"
)

// Codec is one compression format. The zero value is [None]. Codecs are
// comparable: compare them with ==.
type Codec struct {
	id codecID
}

type codecID uint8

const (
	idNone codecID = iota
	idGzip
	idLZ4
	idZstd
	idBrotli
	idBzip2
	idXZ
	idLZMA
	idLZO
	idSnappy
	numCodecs
)

// The codecs, one per [walname.Compression] suffix.
var (
	// None is uncompressed content (no suffix).
	None = Codec{idNone}
	// Gzip is RFC 1952 gzip (.gz), possibly several members.
	Gzip = Codec{idGzip}
	// LZ4 is the LZ4 frame format (.lz4), possibly several frames.
	LZ4 = Codec{idLZ4}
	// Zstd is the Zstandard frame format (.zst), possibly several frames.
	Zstd = Codec{idZstd}
	// Brotli is RFC 7932 brotli (.br). It has no magic bytes.
	Brotli = Codec{idBrotli}
	// Bzip2 is bzip2 (.bz2), possibly several streams.
	Bzip2 = Codec{idBzip2}
	// XZ is the .xz container (LZMA2 and the usual filters).
	XZ = Codec{idXZ}
	// LZMA is the legacy LZMA_alone container (.lzma) that WAL-G writes
	// with github.com/ulikunitz/xz/lzma. It has no magic bytes.
	LZMA = Codec{idLZMA}
	// LZO is the lzop container (.lzo) with LZO1X blocks, written by WAL-E
	// (the lzop command) and by WAL-G's legacy lzo support.
	LZO = Codec{idLZO}
	// Snappy is the Snappy framing format (.snappy) that barman-cloud
	// writes with python-snappy's stream_compress.
	Snappy = Codec{idSnappy}
)

type codecInfo struct {
	name   string
	suffix walname.Compression
	// magic starts every stream; nil when the format has none.
	magic []byte
	// alt are further accepted starts when confirming a suffix (never used
	// for sniffing because they are ambiguous), e.g. skippable frames.
	alt func(head []byte) bool
}

var infos = [numCodecs]codecInfo{
	idNone:   {name: "none", suffix: walname.CompressNone},
	idGzip:   {name: "gzip", suffix: walname.CompressGzip, magic: []byte{0x1f, 0x8b, 0x08}},
	idLZ4:    {name: "lz4", suffix: walname.CompressLZ4, magic: []byte{0x04, 0x22, 0x4d, 0x18}, alt: skippableFrame},
	idZstd:   {name: "zstd", suffix: walname.CompressZstd, magic: []byte{0x28, 0xb5, 0x2f, 0xfd}, alt: skippableFrame},
	idBrotli: {name: "brotli", suffix: walname.CompressBrotli},
	idBzip2:  {name: "bzip2", suffix: walname.CompressBzip2, magic: []byte("BZh")},
	idXZ:     {name: "xz", suffix: walname.CompressXZ, magic: []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	idLZMA:   {name: "lzma", suffix: walname.CompressLZMA},
	idLZO:    {name: "lzo", suffix: walname.CompressLZO, magic: []byte{0x89, 'L', 'Z', 'O', 0x00, 0x0d, 0x0a, 0x1a, 0x0a}},
	idSnappy: {name: "snappy", suffix: walname.CompressSnappy, magic: []byte{0xff, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P', 'p', 'Y'}},
}

// sniffLen is the number of leading bytes [Open] looks at: the longest
// magic.
const sniffLen = 10

// skippableFrame reports a skippable frame (magic 0x184D2A50..5F little
// endian), which both LZ4 and Zstandard define and pzstd writes first.
func skippableFrame(head []byte) bool {
	return len(head) >= 4 && head[0]&0xf0 == 0x50 && head[1] == 0x2a && head[2] == 0x4d && head[3] == 0x18
}

func (c Codec) info() *codecInfo {
	if c.id >= numCodecs {
		return &infos[idNone]
	}
	return &infos[c.id]
}

// Name returns the format's name: "none", "gzip", "lz4", "zstd", "brotli",
// "bzip2", "xz", "lzma", "lzo" or "snappy".
func (c Codec) Name() string { return c.info().name }

// String returns [Codec.Name].
func (c Codec) String() string { return c.Name() }

// Suffix returns the file-name suffix (without the dot) that promises the
// format; "" for [None].
func (c Codec) Suffix() walname.Compression { return c.info().suffix }

// Magic returns a copy of the bytes every stream of the format starts
// with, or nil when the format has none: brotli and lzma (LZMA_alone) have
// no magic, and [None]'s uncompressed WAL is recognised by its page header
// rather than fixed bytes (see [Sniff]). bzip2's magic "BZh" is followed by
// a block-size digit '1'..'9', which [Sniff] also checks.
func (c Codec) Magic() []byte { return bytes.Clone(c.info().magic) }

// All returns every codec, [None] first.
func All() []Codec {
	out := make([]Codec, 0, numCodecs)
	for id := idNone; id < numCodecs; id++ {
		out = append(out, Codec{id})
	}
	return out
}

// ForSuffix returns the codec a file-name suffix promises. ok is false for
// a suffix this package does not know; [walname.CompressNone] gives [None].
func ForSuffix(s walname.Compression) (c Codec, ok bool) {
	for id := idNone; id < numCodecs; id++ {
		if infos[id].suffix == s {
			return Codec{id}, true
		}
	}
	return None, false
}

// Sniff recognises a format by the leading bytes of a file. header should
// hold at least the first 10 bytes (fewer only if the file is shorter).
//
// It returns [None] with ok true for uncompressed WAL: a page header whose
// xlp_magic (little-endian uint16 at offset 0) is 0xD1xx (PostgreSQL 12 and
// later) and whose xlp_info (offset 2) has no bits outside XLP_ALL_FLAGS,
// i.e. bytes "xx D1 0y 00" with y <= 7. It never recognises brotli or lzma,
// which have no magic bytes, nor uncompressed text such as history files:
// ok is then false.
func Sniff(header []byte) (c Codec, ok bool) {
	for id := idNone + 1; id < numCodecs; id++ {
		if hasMagic(Codec{id}, header) {
			return Codec{id}, true
		}
	}
	if isWALPage(header) {
		return None, true
	}
	return None, false
}

// hasMagic reports whether header starts with c's magic (bzip2: and a
// block-size digit).
func hasMagic(c Codec, header []byte) bool {
	m := c.info().magic
	if m == nil || !bytes.HasPrefix(header, m) {
		return false
	}
	if c == Bzip2 {
		return len(header) > len(m) && header[len(m)] >= '1' && header[len(m)] <= '9'
	}
	return true
}

// isWALPage recognises the start of an uncompressed WAL page.
func isWALPage(header []byte) bool {
	return len(header) >= 4 && header[1] == 0xd1 && header[2]&^0x07 == 0 && header[3] == 0
}

// describe names what header looks like, for mismatch messages.
func describe(header []byte) string {
	if c, ok := Sniff(header); ok {
		if c == None {
			return "uncompressed WAL (page magic 0x" + hex.EncodeToString([]byte{header[1], header[0]}) + ")"
		}
		return c.Name() + " data"
	}
	if len(header) == 0 {
		return "empty"
	}
	return "data starting with " + hex.EncodeToString(header)
}
