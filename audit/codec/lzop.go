package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"io"
)

// The lzop container (lzop 1.0x, src/lzop.c and conf.h; wire format, do
// not change). WAL-E compressed WAL by piping it through the lzop command;
// WAL-G's legacy lzo support (github.com/cyberdelia/lzo, cgo over liblzo2)
// reads and writes the same container. All integers are big-endian.
//
//	magic                  89 4C 5A 4F 00 0D 0A 1A 0A
//	version                u16  lzop version, >= 0x0900
//	lib_version            u16
//	version_needed         u16  only if version >= 0x0940
//	method                 u8   1 LZO1X_1, 2 LZO1X_1_15, 3 LZO1X_999
//	level                  u8   only if version >= 0x0940
//	flags                  u32  see lzopFlag*
//	filter                 u32  only with F_H_FILTER
//	mode                   u32
//	mtime_low              u32
//	mtime_high             u32  only if version >= 0x0940
//	name_len, name         u8, bytes
//	header checksum        u32  Adler-32 (CRC-32 with F_H_CRC32) of version..name
//	blocks:
//	  dst_len              u32  uncompressed size; 0 ends the stream; <= 64 MiB
//	  src_len              u32  compressed size; == dst_len: block stored as is
//	  d_adler32, d_crc32   u32  with F_ADLER32_D, F_CRC32_D: of the uncompressed block
//	  c_adler32, c_crc32   u32  with F_ADLER32_C, F_CRC32_C and src_len < dst_len
//	  data                 src_len bytes
const (
	lzopFlagAdler32D    = 0x0001
	lzopFlagAdler32C    = 0x0002
	lzopFlagExtraField  = 0x0040
	lzopFlagCRC32D      = 0x0100
	lzopFlagCRC32C      = 0x0200
	lzopFlagMultipart   = 0x0400
	lzopFlagFilter      = 0x0800
	lzopFlagHeaderCRC32 = 0x1000
	// lzopFlagReserved: bits outside F_MASK (0x3FFF), F_CS_MASK
	// (0x00F00000) and F_OS_MASK (0xFF000000); lzop refuses them.
	lzopFlagReserved = 0x000fc000

	// lzopMaxBlock is lzop's MAX_BLOCK_SIZE.
	lzopMaxBlock = 64 << 20
	// lzopMaxVersionNeeded is the newest lzop format (1.04) whose
	// version_needed_to_extract is accepted.
	lzopMaxVersionNeeded = 0x1040
)

var lzopMagic = infos[idLZO].magic

// lzopReader decompresses an lzop stream block by block: at most one block
// (lzop writes 256 KiB; the format allows 64 MiB) is held in memory.
type lzopReader struct {
	r       io.Reader
	flags   uint32
	off     int64 // compressed bytes consumed
	comp    []byte
	block   []byte
	pending []byte
	err     error
}

// newLzopReader reads and checks the lzop header.
func newLzopReader(r io.Reader) (*lzopReader, error) {
	z := &lzopReader{r: r}
	if err := z.readHeader(); err != nil {
		return nil, err
	}
	return z, nil
}

// read reads exactly len(p) bytes.
func (z *lzopReader) read(p []byte) error {
	n, err := io.ReadFull(z.r, p)
	z.off += int64(n)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func (z *lzopReader) readHeader() error {
	var magic [9]byte
	if err := z.read(magic[:]); err != nil {
		return fmt.Errorf("lzop: reading magic: %w", err)
	}
	if !bytes.Equal(magic[:], lzopMagic) {
		return fmt.Errorf("lzop: bad magic %x", magic)
	}
	// Everything up to the header checksum is hashed.
	var hdr bytes.Buffer
	field := func(n int) ([]byte, error) {
		b := make([]byte, n)
		if err := z.read(b); err != nil {
			return nil, fmt.Errorf("lzop: reading header: %w", err)
		}
		hdr.Write(b)
		return b, nil
	}
	u16 := func() (uint16, error) {
		b, err := field(2)
		if err != nil {
			return 0, err
		}
		return binary.BigEndian.Uint16(b), nil
	}
	u32 := func() (uint32, error) {
		b, err := field(4)
		if err != nil {
			return 0, err
		}
		return binary.BigEndian.Uint32(b), nil
	}
	u8 := func() (byte, error) {
		b, err := field(1)
		if err != nil {
			return 0, err
		}
		return b[0], nil
	}

	version, err := u16()
	if err != nil {
		return err
	}
	if version < 0x0900 {
		return fmt.Errorf("lzop: header version %#04x is older than any lzop release", version)
	}
	if _, err := u16(); err != nil { // lib_version
		return err
	}
	if version >= 0x0940 {
		needed, err := u16()
		if err != nil {
			return err
		}
		if needed > lzopMaxVersionNeeded {
			return fmt.Errorf("%w: lzop: file needs lzop version %#04x to extract", ErrUnsupported, needed)
		}
		if needed < 0x0900 {
			return fmt.Errorf("lzop: invalid version needed to extract %#04x", needed)
		}
	}
	method, err := u8()
	if err != nil {
		return err
	}
	if version >= 0x0940 {
		if _, err := u8(); err != nil { // level
			return err
		}
	}
	flags, err := u32()
	if err != nil {
		return err
	}
	if flags&lzopFlagReserved != 0 {
		return fmt.Errorf("lzop: unknown header flags %#08x", flags&lzopFlagReserved)
	}
	if flags&lzopFlagFilter != 0 {
		if _, err := u32(); err != nil {
			return err
		}
	}
	if _, err := u32(); err != nil { // mode
		return err
	}
	if _, err := u32(); err != nil { // mtime_low
		return err
	}
	if version >= 0x0940 {
		if _, err := u32(); err != nil { // mtime_high
			return err
		}
	}
	nameLen, err := u8()
	if err != nil {
		return err
	}
	if _, err := field(int(nameLen)); err != nil {
		return err
	}
	want := adler32.Checksum(hdr.Bytes())
	if flags&lzopFlagHeaderCRC32 != 0 {
		want = crc32.ChecksumIEEE(hdr.Bytes())
	}
	var sum [4]byte
	if err := z.read(sum[:]); err != nil {
		return fmt.Errorf("lzop: reading header checksum: %w", err)
	}
	if got := binary.BigEndian.Uint32(sum[:]); got != want {
		return fmt.Errorf("lzop: header checksum %08x, computed %08x", got, want)
	}
	switch {
	case method < 1 || method > 3:
		return fmt.Errorf("%w: lzop: compression method %d (only LZO1X methods 1-3 are decoded)", ErrUnsupported, method)
	case flags&lzopFlagFilter != 0:
		return fmt.Errorf("%w: lzop: filter (lzop --filter) not supported", ErrUnsupported)
	case flags&lzopFlagExtraField != 0:
		return fmt.Errorf("%w: lzop: header extra field not supported", ErrUnsupported)
	case flags&lzopFlagMultipart != 0:
		return fmt.Errorf("%w: lzop: multipart file not supported", ErrUnsupported)
	}
	z.flags = flags
	return nil
}

// Read implements io.Reader.
func (z *lzopReader) Read(p []byte) (int, error) {
	for len(z.pending) == 0 {
		if z.err != nil {
			return 0, z.err
		}
		z.err = z.nextBlock()
	}
	n := copy(p, z.pending)
	z.pending = z.pending[n:]
	return n, nil
}

func (z *lzopReader) u32() (uint32, error) {
	var b [4]byte
	if err := z.read(b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

// nextBlock reads and decompresses one block into z.pending; io.EOF at the
// end-of-stream marker.
func (z *lzopReader) nextBlock() error {
	start := z.off
	fail := func(format string, args ...any) error {
		return fmt.Errorf("lzop: block at compressed offset %d: %s", start, fmt.Sprintf(format, args...))
	}
	failErr := func(what string, err error) error {
		return fmt.Errorf("lzop: block at compressed offset %d: %s: %w", start, what, err)
	}
	dstLen, err := z.u32()
	if err != nil {
		return failErr("reading block size (end-of-stream marker missing?)", err)
	}
	if dstLen == 0 {
		return io.EOF
	}
	if dstLen > lzopMaxBlock {
		return fail("uncompressed size %d exceeds lzop's maximum %d", dstLen, lzopMaxBlock)
	}
	srcLen, err := z.u32()
	if err != nil {
		return failErr("reading compressed size", err)
	}
	if srcLen == 0 || srcLen > dstLen {
		return fail("compressed size %d invalid for uncompressed size %d", srcLen, dstLen)
	}
	var dAdler, dCRC, cAdler, cCRC uint32
	sums := []struct {
		flag uint32
		dst  *uint32
		cond bool
	}{
		{lzopFlagAdler32D, &dAdler, true},
		{lzopFlagCRC32D, &dCRC, true},
		{lzopFlagAdler32C, &cAdler, srcLen < dstLen},
		{lzopFlagCRC32C, &cCRC, srcLen < dstLen},
	}
	for _, s := range sums {
		if z.flags&s.flag != 0 && s.cond {
			if *s.dst, err = z.u32(); err != nil {
				return failErr("reading checksum", err)
			}
		}
	}
	// Grow the buffer as data arrives, so that a forged size cannot make
	// us allocate more than the input holds.
	z.comp = z.comp[:0]
	for remaining := int(srcLen); remaining > 0; {
		chunk := min(remaining, 1<<20)
		n := len(z.comp)
		z.comp = append(z.comp, make([]byte, chunk)...)
		if err := z.read(z.comp[n:]); err != nil {
			return failErr(fmt.Sprintf("reading %d compressed bytes", srcLen), err)
		}
		remaining -= chunk
	}
	comp := z.comp
	if srcLen < dstLen {
		if z.flags&lzopFlagAdler32C != 0 {
			if got := adler32.Checksum(comp); got != cAdler {
				return fail("Adler-32 of compressed data %08x, header says %08x", got, cAdler)
			}
		}
		if z.flags&lzopFlagCRC32C != 0 {
			if got := crc32.ChecksumIEEE(comp); got != cCRC {
				return fail("CRC-32 of compressed data %08x, header says %08x", got, cCRC)
			}
		}
		if cap(z.block) < int(dstLen) {
			z.block = make([]byte, dstLen)
		}
		z.block = z.block[:dstLen]
		if err := lzo1xDecompress(comp, z.block); err != nil {
			return failErr("decompressing", err)
		}
	} else {
		z.block = append(z.block[:0], comp...)
	}
	if z.flags&lzopFlagAdler32D != 0 {
		if got := adler32.Checksum(z.block); got != dAdler {
			return fail("Adler-32 of uncompressed data %08x, header says %08x", got, dAdler)
		}
	}
	if z.flags&lzopFlagCRC32D != 0 {
		if got := crc32.ChecksumIEEE(z.block); got != dCRC {
			return fail("CRC-32 of uncompressed data %08x, header says %08x", got, dCRC)
		}
	}
	z.pending = z.block
	return nil
}
