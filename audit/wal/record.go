package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/walaudit/walaudit/walname"
)

// Record layout constants (xlogrecord.h). Wire format: do not change.
const (
	RecordHeaderSize = 24 // SizeOfXLogRecord

	// MaxRecordSize is XLogRecordMaxSize (1020 MiB, PG 16+). Older
	// releases are bounded by their 1 GB allocation limit; no release
	// writes more than this.
	MaxRecordSize = 1020 << 20

	// DefaultBlockSize is BLCKSZ, the data page size, which full-page
	// image checks need and which WAL itself does not record.
	DefaultBlockSize = 8192

	// XLRInfoMask selects the generic low bits of xl_info; the rmgr owns
	// the high four (XLR_RMGR_INFO_MASK).
	XLRInfoMask = 0x0F

	xlrMaxBlockID       = 32
	xlrBlockIDTopXID    = 252
	xlrBlockIDOrigin    = 253
	xlrBlockIDDataLong  = 254
	xlrBlockIDDataShort = 255

	bkpBlockForkMask = 0x0F
	bkpBlockHasImage = 0x10
	bkpBlockHasData  = 0x20
	bkpBlockSameRel  = 0x80
	bkpImageHasHole  = 0x01
)

// BKPBLOCK_* flags of [BlockRef.Flags].
const (
	BlockHasImage = bkpBlockHasImage
	BlockHasData  = bkpBlockHasData
	BlockWillInit = 0x40
	BlockSameRel  = bkpBlockSameRel
)

// castagnoli is the CRC-32C table PostgreSQL's pg_crc32c uses.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// RelFileLocator mirrors RelFileLocator (RelFileNode before 16): the
// tablespace, database and relation file number of a relation.
type RelFileLocator struct {
	Spc uint32 // spcOid
	DB  uint32 // dbOid
	Rel uint32 // relNumber
}

// String formats the locator as pg_waldump does, "1663/5/16384".
func (r RelFileLocator) String() string { return fmt.Sprintf("%d/%d/%d", r.Spc, r.DB, r.Rel) }

// ForkNumber is a relation fork (main, fsm, vm, init).
type ForkNumber uint8

var forkNames = [...]string{"main", "fsm", "vm", "init"}

// String returns PostgreSQL's fork name.
func (f ForkNumber) String() string {
	if int(f) < len(forkNames) {
		return forkNames[f]
	}
	return fmt.Sprintf("fork(%d)", uint8(f))
}

// BlockRef summarises one block reference (XLogRecordBlockHeader and what
// follows it).
type BlockRef struct {
	ID       uint8          // block reference id, 0-32
	Rel      RelFileLocator // the relation (repeated from the previous block for SAME_REL)
	Fork     ForkNumber     // the relation fork
	Block    uint32         // block number
	Flags    uint8          // BKPBLOCK_* bits of fork_flags (high nibble)
	DataLen  uint16         // bytes of per-block data in the record
	HasImage bool           // a full-page image is included
	// Image details, valid when HasImage.
	ImageLen   uint16 // stored image bytes
	HoleOffset uint16 // where the page's unstored hole of zeroes starts
	HoleLength uint16 // its length
	BimgInfo   uint8  // BKPIMAGE_* bits (their values depend on the version)
	Apply      bool   // BKPIMAGE_APPLY: redo restores the image
	Compressed bool   // pglz, lz4 or zstd (15+), pglz before
}

// Record is one decoded WAL record.
type Record struct {
	StartLSN walname.LSN // where the record header begins
	// EndLSN is PostgreSQL's EndRecPtr: just past the last byte, page
	// headers included, rounded up to 8 — where the next record starts.
	// For XLOG_SWITCH it is the start of the next segment.
	EndLSN walname.LSN
	// PrevEnd is the EndLSN of the record read before this one: where
	// recovery stands when it stops before this record
	// (pg_last_wal_replay_lsn). For the first record of a read it is
	// derived from the position (the record's start, or the start of its
	// page when it begins right after the page header).
	PrevEnd walname.LSN
	TLI     walname.TimelineID // xlp_tli of the page the record begins on
	Major   int                // PostgreSQL major version of the WAL

	TotLen uint32      // xl_tot_len
	XID    uint32      // xl_xid
	Prev   walname.LSN // xl_prev
	Info   uint8       // xl_info
	RmID   RmgrID      // xl_rmid
	CRC    uint32      // xl_crc

	Origin      uint16 // replication origin id (XLR_BLOCK_ID_ORIGIN), 0 if none
	ToplevelXID uint32 // top-level xid of a subtransaction's first record (14+), 0 if none

	Blocks   []BlockRef // block references in block id order
	MainData []byte     // the rmgr's main data (the payload decoders' input)
	// Raw holds the xl_tot_len bytes of the record without page headers.
	Raw []byte
}

// ImageBytes is the number of full-page image bytes in the record; the
// rest of TotLen is what pg_waldump calls the record length.
func (r *Record) ImageBytes() int {
	n := 0
	for i := range r.Blocks {
		n += int(r.Blocks[i].ImageLen)
	}
	return n
}

// VerifyCRC checks xl_crc of a complete record: CRC-32C of bytes 24 to the
// end, then of bytes 0 to 19 (everything before xl_crc).
func VerifyCRC(raw []byte) error {
	if len(raw) < RecordHeaderSize {
		return errorf(ErrRecordLength, "record of %d bytes is shorter than its header", len(raw))
	}
	c := crcUpdate(0, raw[RecordHeaderSize:])
	c = crcUpdate(c, raw[:20])
	if want := binary.LittleEndian.Uint32(raw[20:]); c != want {
		return errorf(ErrChecksum, "record CRC mismatch: got %08x, want %08x", c, want)
	}
	return nil
}

// recordHeader are the fields checked before the whole record is read.
type recordHeader struct {
	totLen uint32
	xid    uint32
	prev   walname.LSN
	info   uint8
	rmid   RmgrID
	crc    uint32
}

// parse sets h from the header at the start of b, field by field (see
// decodeFragments).
func (h *recordHeader) parse(b []byte) {
	h.totLen = binary.LittleEndian.Uint32(b[0:])
	h.xid = binary.LittleEndian.Uint32(b[4:])
	h.prev = walname.LSN(binary.LittleEndian.Uint64(b[8:]))
	h.info = b[16]
	h.rmid = RmgrID(b[17])
	h.crc = binary.LittleEndian.Uint32(b[20:])
}

func parseRecordHeader(b []byte) recordHeader {
	return recordHeader{
		totLen: binary.LittleEndian.Uint32(b[0:]),
		xid:    binary.LittleEndian.Uint32(b[4:]),
		prev:   walname.LSN(binary.LittleEndian.Uint64(b[8:])),
		info:   b[16],
		rmid:   RmgrID(b[17]),
		crc:    binary.LittleEndian.Uint32(b[20:]),
	}
}

// DecodeRecord decodes a complete record (xl_tot_len bytes, page headers
// removed) of the given major version into rec, applying PostgreSQL's
// DecodeXLogRecord checks: block ids strictly increasing, HAS_DATA set iff
// data follows, image hole and compression rules, SAME_REL only after a
// block with a relation, fragment lengths adding up to xl_tot_len.
// blockSize is BLCKSZ (0 means [DefaultBlockSize]).
//
// It does not verify the CRC (see [VerifyCRC]) and does not set the
// positional fields StartLSN, EndLSN and TLI. rec.Blocks is reused, and
// rec.MainData and rec.Raw alias raw.
func DecodeRecord(raw []byte, major int, blockSize uint32, rec *Record) error {
	lay, err := layoutFor(major)
	if err != nil {
		return err
	}
	return decodeRecord(raw, lay, blockSize, rec)
}

func decodeRecord(raw []byte, lay *layout, blockSize uint32, rec *Record) error {
	if len(raw) < RecordHeaderSize {
		return errorf(ErrRecordLength, "invalid record length: expected at least %d, got %d", RecordHeaderSize, len(raw))
	}
	mainLen, err := decodeFragments(raw, len(raw), lay, blockSize, rec)
	if err != nil {
		return err
	}
	if mainLen > 0 {
		rec.MainData = raw[len(raw)-mainLen:]
	}
	return nil
}

// errNeedBytes: decodeFragments needs more of the record than it was
// given.
var errNeedBytes = errors.New("record prefix too short to decode")

// decodeFragments applies DecodeXLogRecord's checks to a record of totLen
// bytes of which b holds the first ones (all of them when decoding a
// whole record): the header fields, then the fragment headers and their
// lengths. It returns the main data length; rec.MainData and rec.Raw are
// left nil. When the fragment headers run past b it returns errNeedBytes.
func decodeFragments(b []byte, totLen int, lay *layout, blockSize uint32, rec *Record) (int, error) {
	if blockSize == 0 {
		blockSize = DefaultBlockSize
	}
	if len(b) < RecordHeaderSize {
		return 0, errNeedBytes
	}
	hTotLen, rmid := binary.LittleEndian.Uint32(b), RmgrID(b[17])
	if int64(hTotLen) != int64(totLen) {
		return 0, errorf(ErrRecordLength, "xl_tot_len %d does not match the %d bytes of the record", hTotLen, totLen)
	}
	if !lay.validRmgr(rmid) {
		return 0, errorf(ErrRmID, "invalid resource manager ID %d", uint8(rmid))
	}
	// Field by field, straight from the bytes: this runs for every record,
	// and a struct built first and then copied costs more (the copy's
	// wide loads cannot be forwarded from the narrow stores).
	rec.Major = lay.major
	rec.TotLen, rec.RmID = hTotLen, rmid
	rec.XID = binary.LittleEndian.Uint32(b[4:])
	rec.Prev = walname.LSN(binary.LittleEndian.Uint64(b[8:]))
	rec.Info = b[16]
	rec.CRC = binary.LittleEndian.Uint32(b[20:])
	rec.Origin, rec.ToplevelXID = 0, 0
	rec.Blocks = rec.Blocks[:0]
	rec.MainData = nil
	rec.Raw = nil
	if len(b) == totLen {
		rec.Raw = b
	}

	// Fragment headers, then the data area in the same order. pos walks
	// the headers; every read is bounds-checked against the record end,
	// then against the bytes at hand.
	pos, end := RecordHeaderSize, totLen
	var datatotal, mainLen uint64
	maxID := -1
	short := func() error {
		return errorf(ErrRecordFormat, "record with invalid length: fragment headers run past xl_tot_len %d", hTotLen)
	}
	// need reports a field of n bytes at pos that the record has but b
	// does not hold.
	need := func(n int) bool { return pos+n > len(b) }
loop:
	for uint64(end-pos) > datatotal {
		if need(1) {
			return 0, errNeedBytes
		}
		id := b[pos]
		pos++
		switch {
		case id == xlrBlockIDDataShort:
			if end-pos < 1 {
				return 0, short()
			}
			if need(1) {
				return 0, errNeedBytes
			}
			mainLen = uint64(b[pos])
			pos++
			datatotal += mainLen
			break loop // by convention the main data header is last
		case id == xlrBlockIDDataLong:
			if end-pos < 4 {
				return 0, short()
			}
			if need(4) {
				return 0, errNeedBytes
			}
			mainLen = uint64(binary.LittleEndian.Uint32(b[pos:]))
			pos += 4
			datatotal += mainLen
			break loop
		case id == xlrBlockIDOrigin:
			if end-pos < 2 {
				return 0, short()
			}
			if need(2) {
				return 0, errNeedBytes
			}
			rec.Origin = binary.LittleEndian.Uint16(b[pos:])
			pos += 2
		case id == xlrBlockIDTopXID && lay.toplevelXID():
			if end-pos < 4 {
				return 0, short()
			}
			if need(4) {
				return 0, errNeedBytes
			}
			rec.ToplevelXID = binary.LittleEndian.Uint32(b[pos:])
			pos += 4
		case id <= xlrMaxBlockID:
			if int(id) <= maxID {
				return 0, errorf(ErrRecordFormat, "out-of-order block_id %d", id)
			}
			maxID = int(id)
			if end-pos < 3 {
				return 0, short()
			}
			if need(3) {
				return 0, errNeedBytes
			}
			ff := b[pos]
			// Filled in place, for the same reason as the header fields;
			// a block that fails its checks is dropped again.
			rec.Blocks = append(rec.Blocks, BlockRef{})
			n, err := decodeBlock(&rec.Blocks, id, ff, b, pos, end, lay, blockSize)
			if err != nil {
				rec.Blocks = rec.Blocks[:len(rec.Blocks)-1]
				return 0, err
			}
			blk := &rec.Blocks[len(rec.Blocks)-1]
			pos += n
			datatotal += uint64(blk.DataLen) + uint64(blk.ImageLen)
		default:
			return 0, errorf(ErrRecordFormat, "invalid block_id %d", id)
		}
	}
	if remaining := uint64(end - pos); remaining != datatotal {
		return 0, errorf(ErrRecordFormat, "record with invalid length: fragments need %d bytes, %d remain", datatotal, remaining)
	}
	return int(mainLen), nil
}

// decodeBlock fills in the last of blocks, with block id, from its block
// header at b[pos:] up to a record end end, whose first byte, fork_flags,
// is ff; it returns the header's length. The relation of a SAME_REL block
// is that of the block before it.
func decodeBlock(blocks *[]BlockRef, id, ff uint8, b []byte, pos, end int, lay *layout, blockSize uint32) (int, error) {
	bs := *blocks
	blk := &bs[len(bs)-1]
	start := pos
	short := func() error {
		return errorf(ErrRecordFormat, "record with invalid length: fragment headers run past xl_tot_len %d", end)
	}
	blk.ID, blk.Fork, blk.Flags = id, ForkNumber(ff&bkpBlockForkMask), ff&^bkpBlockForkMask
	blk.DataLen = binary.LittleEndian.Uint16(b[pos+1:])
	pos += 3
	hasData := ff&bkpBlockHasData != 0
	if hasData && blk.DataLen == 0 {
		return 0, errorf(ErrRecordFormat, "BKPBLOCK_HAS_DATA set, but no data included (block %d)", id)
	}
	if !hasData && blk.DataLen != 0 {
		return 0, errorf(ErrRecordFormat, "BKPBLOCK_HAS_DATA not set, but data length is %d (block %d)", blk.DataLen, id)
	}
	if ff&bkpBlockHasImage != 0 {
		n, err := decodeImageHeader(blk, b[pos:min(end, len(b))], end-pos, lay, blockSize)
		if err != nil {
			return 0, err
		}
		pos += n
	}
	if ff&bkpBlockSameRel == 0 {
		if end-pos < 12 {
			return 0, short()
		}
		if pos+12 > len(b) {
			return 0, errNeedBytes
		}
		blk.Rel.Spc = binary.LittleEndian.Uint32(b[pos:])
		blk.Rel.DB = binary.LittleEndian.Uint32(b[pos+4:])
		blk.Rel.Rel = binary.LittleEndian.Uint32(b[pos+8:])
		pos += 12
	} else {
		if len(bs) < 2 {
			return 0, errorf(ErrRecordFormat, "BKPBLOCK_SAME_REL set but no previous rel (block %d)", id)
		}
		blk.Rel = bs[len(bs)-2].Rel
	}
	if end-pos < 4 {
		return 0, short()
	}
	if pos+4 > len(b) {
		return 0, errNeedBytes
	}
	blk.Block = binary.LittleEndian.Uint32(b[pos:])
	return pos + 4 - start, nil
}

// decodeImageHeader decodes XLogRecordBlockImageHeader (and the hole
// length of a compressed image) at the start of b, returning its size.
func decodeImageHeader(blk *BlockRef, b []byte, room int, lay *layout, blockSize uint32) (int, error) {
	if room < 5 {
		return 0, errorf(ErrRecordFormat, "record with invalid length: image header of block %d runs past the record", blk.ID)
	}
	if len(b) < 5 {
		return 0, errNeedBytes
	}
	n := 5
	blk.HasImage = true
	blk.ImageLen = binary.LittleEndian.Uint16(b[0:])
	blk.HoleOffset = binary.LittleEndian.Uint16(b[2:])
	blk.BimgInfo = b[4]
	blk.Apply = blk.BimgInfo&lay.bimgApply() != 0
	blk.Compressed = lay.bimgCompressed(blk.BimgInfo)
	hasHole := blk.BimgInfo&bkpImageHasHole != 0
	var holeLen uint32
	if blk.Compressed {
		if hasHole {
			if room < 7 {
				return 0, errorf(ErrRecordFormat, "record with invalid length: hole length of block %d runs past the record", blk.ID)
			}
			if len(b) < 7 {
				return 0, errNeedBytes
			}
			holeLen = uint32(binary.LittleEndian.Uint16(b[5:]))
			n = 7
		}
	} else {
		// An image longer than BLCKSZ must fail here rather than wrap
		// around in the hole computation.
		if uint32(blk.ImageLen) > blockSize {
			return 0, errorf(ErrRecordFormat, "block image length %d exceeds the block size %d (block %d)", blk.ImageLen, blockSize, blk.ID)
		}
		holeLen = blockSize - uint32(blk.ImageLen)
	}
	blk.HoleLength = uint16(holeLen)
	switch {
	case hasHole && (blk.HoleOffset == 0 || holeLen == 0 || uint32(blk.ImageLen) == blockSize):
		return 0, errorf(ErrRecordFormat, "BKPIMAGE_HAS_HOLE set, but hole offset %d length %d block image length %d (block %d)",
			blk.HoleOffset, holeLen, blk.ImageLen, blk.ID)
	case !hasHole && (blk.HoleOffset != 0 || holeLen != 0):
		return 0, errorf(ErrRecordFormat, "BKPIMAGE_HAS_HOLE not set, but hole offset %d length %d (block %d)", blk.HoleOffset, holeLen, blk.ID)
	case blk.Compressed && uint32(blk.ImageLen) == blockSize:
		return 0, errorf(ErrRecordFormat, "BKPIMAGE_COMPRESSED set, but block image length %d (block %d)", blk.ImageLen, blk.ID)
	case !hasHole && !blk.Compressed && uint32(blk.ImageLen) != blockSize:
		return 0, errorf(ErrRecordFormat, "neither BKPIMAGE_HAS_HOLE nor BKPIMAGE_COMPRESSED set, but block image length is %d (block %d)", blk.ImageLen, blk.ID)
	}
	return n, nil
}
