// Package walfixture writes small synthetic PostgreSQL WAL streams for
// tests: correct page headers (long on segment starts, continuation flags
// and xlp_rem_len), records placed and split the way XLogInsert places
// them, and CRC-32C. Tests then patch bytes to build corruption cases.
//
// It is deliberately independent of package wal, so that a mistake in one
// does not hide the same mistake in the other.
package walfixture

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Config describes the stream. Zero fields take the defaults noted.
type Config struct {
	Magic    uint16 // 0xD110 (PostgreSQL 15)
	TLI      uint32 // 1
	SysID    uint64 // 7000000000000000001
	SegSize  uint64 // 1 MiB
	PageSize uint64 // 8192
	StartSeg uint64 // 1
}

// Writer accumulates WAL from the start of segment StartSeg.
type Writer struct {
	cfg      Config
	data     []byte // WAL bytes from base
	base     uint64 // LSN of data[0]
	pos      uint64 // insert position (absolute LSN)
	prev     uint64 // start of the last complete record
	tli      uint32
	pageFlag uint16 // extra xlp_info bits for the next page header
}

// New returns a writer positioned at the start of segment cfg.StartSeg.
func New(cfg Config) *Writer {
	if cfg.Magic == 0 {
		cfg.Magic = 0xD110
	}
	if cfg.TLI == 0 {
		cfg.TLI = 1
	}
	if cfg.SysID == 0 {
		cfg.SysID = 7000000000000000001
	}
	if cfg.SegSize == 0 {
		cfg.SegSize = 1 << 20
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = 8192
	}
	if cfg.StartSeg == 0 {
		cfg.StartSeg = 1
	}
	base := cfg.StartSeg * cfg.SegSize
	return &Writer{cfg: cfg, base: base, pos: base, tli: cfg.TLI}
}

// Config returns the configuration with defaults filled in.
func (w *Writer) Config() Config { return w.cfg }

// Pos is the current insert position (not aligned).
func (w *Writer) Pos() uint64 { return w.pos }

// Prev is the start of the last complete record.
func (w *Writer) Prev() uint64 { return w.prev }

// SetTLI sets the timeline written into page headers from the next page on.
func (w *Writer) SetTLI(tli uint32) { w.tli = tli }

// Rec is one record to write.
type Rec struct {
	XID  uint32
	Info uint8
	RmID uint8
	// Body is everything after the 24-byte header: fragment headers,
	// block data, main data (see [Body]).
	Body []byte
	// Prev overrides xl_prev when non-nil.
	Prev *uint64
}

// Encode returns the record's bytes with tot_len and CRC filled in.
func (r Rec) Encode(prev uint64) []byte {
	b := make([]byte, 24+len(r.Body))
	binary.LittleEndian.PutUint32(b[0:], uint32(len(b)))
	binary.LittleEndian.PutUint32(b[4:], r.XID)
	if r.Prev != nil {
		prev = *r.Prev
	}
	binary.LittleEndian.PutUint64(b[8:], prev)
	b[16], b[17] = r.Info, r.RmID
	copy(b[24:], r.Body)
	FixCRC(b)
	return b
}

// FixCRC recomputes xl_crc of a complete record in place.
func FixCRC(rec []byte) {
	c := crc32.Update(0, castagnoli, rec[24:])
	c = crc32.Update(c, castagnoli, rec[:20])
	binary.LittleEndian.PutUint32(rec[20:], c)
}

func (w *Writer) grow(upto uint64) {
	if need := upto - w.base; uint64(len(w.data)) < need {
		w.data = append(w.data, make([]byte, need-uint64(len(w.data)))...)
	}
}

// pageHeader writes the header of the page starting at w.pos.
func (w *Writer) pageHeader(remLen uint32) {
	long := w.pos%w.cfg.SegSize == 0
	size := uint64(24)
	info := uint16(0x0004) | w.pageFlag // XLP_BKP_REMOVABLE, as servers set without a backup running
	if long {
		size = 40
		info |= 0x0002
	}
	if remLen > 0 {
		info |= 0x0001
	}
	w.pageFlag = 0
	w.grow(w.pos + size)
	h := w.data[w.pos-w.base:]
	binary.LittleEndian.PutUint16(h[0:], w.cfg.Magic)
	binary.LittleEndian.PutUint16(h[2:], info)
	binary.LittleEndian.PutUint32(h[4:], w.tli)
	binary.LittleEndian.PutUint64(h[8:], w.pos)
	binary.LittleEndian.PutUint32(h[16:], remLen)
	if long {
		binary.LittleEndian.PutUint64(h[24:], w.cfg.SysID)
		binary.LittleEndian.PutUint32(h[32:], uint32(w.cfg.SegSize))
		binary.LittleEndian.PutUint32(h[36:], uint32(w.cfg.PageSize))
	}
	w.pos += size
}

// startRecord aligns the insert position and writes a page header if it
// is at a page start.
func (w *Writer) startRecord() {
	w.pos = (w.pos + 7) &^ 7
	if w.pos%w.cfg.PageSize == 0 {
		w.pageHeader(0)
	}
}

// write copies b at the insert position, continuing on new pages; it stops
// after limit bytes when limit >= 0.
func (w *Writer) write(b []byte, limit int) {
	written := 0
	for len(b) > 0 {
		if limit >= 0 && written >= limit {
			return
		}
		if w.pos%w.cfg.PageSize == 0 {
			w.pageHeader(uint32(len(b)))
		}
		room := w.cfg.PageSize - w.pos%w.cfg.PageSize
		n := min(uint64(len(b)), room)
		w.grow(w.pos + n)
		copy(w.data[w.pos-w.base:], b[:n])
		w.pos += n
		b = b[n:]
		written += int(n)
	}
}

// Append writes r and returns its start and its end (just past the last
// byte, not aligned).
func (w *Writer) Append(r Rec) (start, end uint64) {
	w.startRecord()
	start = w.pos
	w.write(r.Encode(w.prev), -1)
	w.prev = start
	return start, w.pos
}

// AppendTorn writes r only up to the end of the page it starts on, as a
// crash would leave it, and marks the next page
// XLP_FIRST_IS_OVERWRITE_CONTRECORD. It returns the abandoned record's
// start. r must not fit on its page.
func (w *Writer) AppendTorn(r Rec) uint64 {
	w.startRecord()
	start := w.pos
	room := w.cfg.PageSize - w.pos%w.cfg.PageSize
	b := r.Encode(w.prev)
	if uint64(len(b)) <= room {
		panic("walfixture: AppendTorn record fits on its page")
	}
	w.write(b, int(room))
	w.pageFlag = 0x0008
	return start
}

// Switch appends an XLOG_SWITCH record and moves to the next segment; the
// rest of the segment stays zero, page headers included.
func (w *Writer) Switch() (start uint64) {
	start, _ = w.Append(Rec{RmID: 0, Info: 0x40})
	w.pos = (w.pos + 7) &^ 7
	if r := w.pos % w.cfg.SegSize; r != 0 {
		w.pos += w.cfg.SegSize - r
	}
	w.grow(w.pos)
	return start
}

// Noop returns an XLOG_NOOP record of exactly totLen bytes (24, or at
// least 26).
func Noop(totLen int) Rec {
	switch {
	case totLen == 24:
		return Rec{RmID: 0, Info: 0x20}
	case totLen >= 26 && totLen <= 24+2+255:
		return Rec{RmID: 0, Info: 0x20, Body: MainData(make([]byte, totLen-26))}
	case totLen >= 24+5+256:
		return Rec{RmID: 0, Info: 0x20, Body: MainData(make([]byte, totLen-29))}
	}
	panic(fmt.Sprintf("walfixture: no NOOP record of %d bytes", totLen))
}

// FillTo appends NOOP records until the next record would start at target,
// which must be 8-aligned and on the page of the (aligned) insert position.
func (w *Writer) FillTo(target uint64) {
	w.startRecord()
	if target == w.pos {
		return
	}
	page := w.pos - w.pos%w.cfg.PageSize
	if target < w.pos || target%8 != 0 || target >= page+w.cfg.PageSize || target-w.pos < 24 {
		panic(fmt.Sprintf("walfixture: cannot fill from %X to %X", w.pos, target))
	}
	w.Append(Noop(int(target - w.pos)))
}

// Segment returns a copy of segment seg, zero beyond what was written.
func (w *Writer) Segment(seg uint64) []byte {
	out := make([]byte, w.cfg.SegSize)
	start := seg * w.cfg.SegSize
	if start >= w.base && start-w.base < uint64(len(w.data)) {
		copy(out, w.data[start-w.base:])
	}
	return out
}

// Segments returns every segment that holds written WAL, in order.
func (w *Writer) Segments() [][]byte {
	var out [][]byte
	last := (w.base + uint64(len(w.data)) - 1) / w.cfg.SegSize
	if len(w.data) == 0 {
		last = w.cfg.StartSeg
	}
	for s := w.cfg.StartSeg; s <= last; s++ {
		out = append(out, w.Segment(s))
	}
	return out
}

// Block is one block reference for [Body].
type Block struct {
	ID      uint8
	Fork    uint8
	Flags   uint8 // extra fork_flags bits, e.g. 0x40 WILL_INIT; HAS_IMAGE, HAS_DATA and SAME_REL are set from the fields
	SameRel bool
	Rel     [3]uint32 // spc, db, rel
	BlockNo uint32
	Data    []byte
	// Image, when not nil, is the stored page image with HoleOffset and
	// BimgInfo; HoleLength is written only for compressed images with a
	// hole (Compressed).
	Image      []byte
	HoleOffset uint16
	BimgInfo   uint8
	Compressed bool
	HoleLength uint16
	// DataLen overrides the data length written in the header (for
	// inconsistent records) when non-nil.
	DataLen *uint16
}

// BodySpec is the part of a record after its header.
type BodySpec struct {
	Blocks      []Block
	Origin      *uint16
	ToplevelXID *uint32
	Main        []byte
	// LongMain forces the 5-byte main data header.
	LongMain bool
}

// Bytes encodes the fragment headers, then images and block data, then the
// main data, as XLogRecordAssemble does.
func (s BodySpec) Bytes() []byte {
	var h, d []byte
	for _, b := range s.Blocks {
		ff := b.Fork | b.Flags
		if b.Image != nil {
			ff |= 0x10
		}
		if len(b.Data) > 0 {
			ff |= 0x20
		}
		if b.SameRel {
			ff |= 0x80
		}
		dl := uint16(len(b.Data))
		if b.DataLen != nil {
			dl = *b.DataLen
		}
		h = append(h, b.ID, ff)
		h = binary.LittleEndian.AppendUint16(h, dl)
		if b.Image != nil {
			h = binary.LittleEndian.AppendUint16(h, uint16(len(b.Image)))
			h = binary.LittleEndian.AppendUint16(h, b.HoleOffset)
			h = append(h, b.BimgInfo)
			if b.Compressed && b.BimgInfo&0x01 != 0 {
				h = binary.LittleEndian.AppendUint16(h, b.HoleLength)
			}
		}
		if !b.SameRel {
			for _, v := range b.Rel {
				h = binary.LittleEndian.AppendUint32(h, v)
			}
		}
		h = binary.LittleEndian.AppendUint32(h, b.BlockNo)
		d = append(d, b.Image...)
		d = append(d, b.Data...)
	}
	if s.Origin != nil {
		h = append(h, 253)
		h = binary.LittleEndian.AppendUint16(h, *s.Origin)
	}
	if s.ToplevelXID != nil {
		h = append(h, 252)
		h = binary.LittleEndian.AppendUint32(h, *s.ToplevelXID)
	}
	if len(s.Main) > 0 {
		if len(s.Main) <= 255 && !s.LongMain {
			h = append(h, 255, byte(len(s.Main)))
		} else {
			h = append(h, 254)
			h = binary.LittleEndian.AppendUint32(h, uint32(len(s.Main)))
		}
		d = append(d, s.Main...)
	}
	return append(h, d...)
}

// MainData is the body of a record with only main data.
func MainData(main []byte) []byte { return BodySpec{Main: main}.Bytes() }
