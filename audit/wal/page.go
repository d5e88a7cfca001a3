package wal

import (
	"encoding/binary"

	"github.com/walaudit/walaudit/walname"
)

// Page header sizes and xlp_info bits (xlog_internal.h). Wire format: do
// not change.
const (
	ShortPageHeaderSize = 24 // SizeOfXLogShortPHD, MAXALIGNed
	LongPageHeaderSize  = 40 // SizeOfXLogLongPHD, MAXALIGNed

	XLPFirstIsContRecord          = 0x0001 // page starts with the rest of an earlier record
	XLPLongHeader                 = 0x0002 // long header (first page of a segment)
	XLPBkpRemovable               = 0x0004 // no backup was running when the page was started
	XLPFirstIsOverwriteContRecord = 0x0008 // the expected continuation was abandoned (14+)
)

// MaxAlign is MAXALIGN on every platform PostgreSQL ships for: records
// start at multiples of it.
const MaxAlign = 8

func maxAlign(n uint64) uint64 { return (n + MaxAlign - 1) &^ (MaxAlign - 1) }

// PageHeader mirrors XLogPageHeaderData and, when [PageHeader.IsLong],
// XLogLongPageHeaderData (src/include/access/xlog_internal.h).
type PageHeader struct {
	Magic    uint16             // xlp_magic: identifies the major version
	Info     uint16             // xlp_info: XLP* bits
	TLI      walname.TimelineID // xlp_tli: timeline of the first record that begins on the page
	PageAddr walname.LSN        // xlp_pageaddr: LSN of the page's first byte
	RemLen   uint32             // xlp_rem_len: bytes of a continued record still to come

	// Long header only.
	SysID     uint64 // xlp_sysid: database system identifier
	SegSize   uint32 // xlp_seg_size
	BlockSize uint32 // xlp_xlog_blcksz: WAL page size
}

// IsLong reports whether the header has the long form.
func (h *PageHeader) IsLong() bool { return h.Info&XLPLongHeader != 0 }

// Size is the header's size on the page: where page data starts.
func (h *PageHeader) Size() int {
	if h.IsLong() {
		return LongPageHeaderSize
	}
	return ShortPageHeaderSize
}

// DecodePageHeader decodes the header at the start of b, which must hold
// at least [ShortPageHeaderSize] bytes, or [LongPageHeaderSize] when
// XLP_LONG_HEADER is set. It does not validate anything; see
// [PageHeader.Check].
func DecodePageHeader(b []byte) (PageHeader, error) {
	var h PageHeader
	if len(b) < ShortPageHeaderSize {
		return h, errorf(ErrTruncated, "page header needs %d bytes, have %d", ShortPageHeaderSize, len(b))
	}
	h.Magic = binary.LittleEndian.Uint16(b[0:])
	h.Info = binary.LittleEndian.Uint16(b[2:])
	h.TLI = walname.TimelineID(binary.LittleEndian.Uint32(b[4:]))
	h.PageAddr = walname.LSN(binary.LittleEndian.Uint64(b[8:]))
	h.RemLen = binary.LittleEndian.Uint32(b[16:])
	if h.IsLong() {
		if len(b) < LongPageHeaderSize {
			return h, errorf(ErrTruncated, "long page header needs %d bytes, have %d", LongPageHeaderSize, len(b))
		}
		h.SysID = binary.LittleEndian.Uint64(b[24:])
		h.SegSize = binary.LittleEndian.Uint32(b[32:])
		h.BlockSize = binary.LittleEndian.Uint32(b[36:])
	}
	return h, nil
}

// PageExpect is what [PageHeader.Check] compares a header with. Zero
// fields are not checked.
type PageExpect struct {
	Magic    uint16              // expected xlp_magic; 0: any supported version
	Addr     walname.LSN         // the page's position, compared with xlp_pageaddr
	SysID    uint64              // expected system identifier (long header)
	SegSize  walname.SegmentSize // expected segment size (long header)
	PageSize uint32              // expected WAL page size (long header)
	// MinTLI is the timeline of the page read before this one; a page
	// timeline must never be lower (child timelines have higher ids).
	MinTLI walname.TimelineID
}

// Check validates h the way PostgreSQL's XLogReaderValidatePageHeader does:
// magic, flags, long-header identity, page address and timeline order. The
// first page of a segment (Addr a multiple of SegSize) must have the long
// header. Errors wrap the sentinel of the first failed check.
func (h *PageHeader) Check(want PageExpect) error {
	if want.Magic != 0 {
		if h.Magic != want.Magic {
			return errorf(ErrBadMagic, "invalid page magic %04X, want %04X", h.Magic, want.Magic)
		}
	} else if _, err := layoutForMagic(h.Magic); err != nil {
		return err
	}
	if h.Info&^xlpAllFlags != 0 {
		return errorf(ErrPageFlags, "invalid page info bits %04X", h.Info)
	}
	if h.IsLong() {
		if want.SysID != 0 && h.SysID != want.SysID {
			return errorf(ErrSysID, "WAL file is from a different database system: system identifier %d, want %d", h.SysID, want.SysID)
		}
		if want.SegSize != 0 && h.SegSize != uint32(want.SegSize) {
			return errorf(ErrSegmentSize, "segment size in page header is %d, want %d", h.SegSize, uint32(want.SegSize))
		}
		if want.PageSize != 0 && h.BlockSize != want.PageSize {
			return errorf(ErrPageSize, "WAL page size in page header is %d, want %d", h.BlockSize, want.PageSize)
		}
	} else if want.SegSize != 0 && want.Addr.Offset(want.SegSize) == 0 {
		return errorf(ErrPageFlags, "invalid page info bits %04X: first page of a segment without long header", h.Info)
	}
	if h.PageAddr != want.Addr {
		return errorf(ErrBadPageAddr, "unexpected pageaddr %s, want %s", h.PageAddr, want.Addr)
	}
	if h.TLI < want.MinTLI {
		return errorf(ErrTimeline, "out-of-sequence timeline ID %d (after %d)", h.TLI, want.MinTLI)
	}
	return nil
}

// validPageSize reports whether n is an XLOG_BLCKSZ PostgreSQL can be
// built with (configure --with-wal-blocksize: 1 to 64 kB, powers of two).
func validPageSize(n uint32) bool {
	return n >= 1024 && n <= 65536 && n&(n-1) == 0
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
