// Package codec decompresses archived WAL files: the formats pgBackRest,
// WAL-G, WAL-E, Barman, barman-cloud and plain archive_command scripts
// write. [Open] picks the format from the file-name suffix and confirms it
// by magic bytes, or sniffs the magic when there is no suffix, and returns a
// streaming reader; [LimitReader] bounds the output.
//
// # Formats
//
//	codec   suffix  magic (hex)                     written by                       decoded with
//	gzip    .gz     1f 8b 08                        pgBackRest, Barman, scripts      klauspost/compress/gzip
//	lz4     .lz4    04 22 4d 18 (frame)             pgBackRest, WAL-G, Barman        pierrec/lz4/v4
//	zstd    .zst    28 b5 2f fd                     pgBackRest, WAL-G, Barman        klauspost/compress/zstd
//	brotli  .br     none                            WAL-G                            andybalholm/brotli
//	bzip2   .bz2    "BZh" '1'..'9'                  pgBackRest, Barman, barman-cloud compress/bzip2
//	xz      .xz     fd "7zXZ" 00                    Barman, scripts                  ulikunitz/xz
//	lzma    .lzma   none (LZMA_alone header)        WAL-G                            ulikunitz/xz/lzma
//	lzo     .lzo    89 "LZO" 00 0d 0a 1a 0a (lzop)  WAL-E, WAL-G (legacy)            this package
//	snappy  .snappy ff 06 00 00 "sNaPpY" (framed)   barman-cloud                     klauspost/compress/snappy
//
// Notes on the formats whose tool dictates details:
//
//   - lzma: WAL-G's lzma compressor is github.com/ulikunitz/xz/lzma's
//     NewWriter (internal/compression/lzma), which writes the classic
//     LZMA_alone container: a 13-byte header (properties byte 0x5D,
//     dictionary size 8 MiB little-endian, uncompressed size -1) and an
//     end-of-stream marker, as "xz --format=lzma" does. The header is not
//     distinctive enough to sniff.
//   - lzo: WAL-E piped WAL through the lzop command and WAL-G decodes those
//     files with github.com/cyberdelia/lzo, a cgo binding of liblzo2 that
//     reads and writes the lzop container. No pure-Go library decodes lzop
//     with bounds checks (github.com/rasky/go-lzo decodes bare LZO1X blocks
//     but indexes past its input on damaged data and is unmaintained), so
//     this package implements the lzop container and a bounds-checked
//     LZO1X decompressor (lzop.go, lzo1x.go); header and block checksums
//     (Adler-32 or CRC-32) are verified. Filters, extra fields and multipart
//     files, which lzop does not write by default, are refused.
//   - snappy: barman-cloud-wal-archive --snappy calls python-snappy's
//     stream_compress (barman/clients/cloud_compression.py), which writes
//     the Snappy framing format (stream identifier chunk, CRC-32C per
//     chunk), not the bare block format.
//   - brotli has no magic bytes, so it is only decoded with a .br suffix.
//
// # Integrity
//
// gzip, bzip2, xz, snappy and lzop (Adler-32 by default) carry checksums,
// and so do lz4 and zstd when the writer adds one (the lz4 and zstd tools,
// pierrec/lz4 and klauspost/compress do by default; python-lz4 and
// python-zstandard, used by Barman, do not), so damage yields [ErrCorrupt].
// brotli and lzma carry none:
// damage is usually, but not always, detected by the decoder; the CRCs of
// the WAL records are then what catches it. Streams without an end marker
// (snappy) cannot reveal a truncation at a chunk boundary: check the
// decompressed size, as [LimitReader] and the WAL reader do. Data after the
// end of a stream is an error.
//
// # Resource limits
//
// Output is bounded by [LimitReader]. Memory is bounded by the format:
// lzop blocks (at most 64 MiB, allocated only as compressed data arrives),
// bzip2 blocks (900 kB), snappy chunks (64 KiB), brotli windows (16 MiB),
// the zstd window ([MaxZstdWindow]) and the lzma or xz dictionary
// ([MaxDictSize]; for xz only the first block's header is checked before
// the library allocates, which covers single-block files such as those xz
// writes for a WAL segment). Larger parameters are refused with
// [ErrUnsupported].
package codec
