package wal

import (
	"encoding/binary"
	"iter"
	"math/bits"
	"slices"

	"github.com/walaudit/walaudit/walname"
)

// What a summary keeps of the part of a record that crosses a segment
// boundary: the whole part when it is at most SpanPrefix+SpanSuffix
// bytes, else its first SpanPrefix bytes (the record's header and block
// headers, which are checked, when the part is the record's start) and
// its last SpanSuffix bytes (the main data, which events are decoded
// from, when the part is the record's end). A part that starts a record
// that can be no event keeps only its prefix. The CRC needs none of the
// bytes: it is combined from the parts' CRCs.
const (
	SpanPrefix = 2 << 10
	SpanSuffix = 8 << 10
)

// SpanPart is the part of a record that lies in one segment, page headers
// excluded.
type SpanPart struct {
	Len    uint32 // bytes of the record in this segment
	CRC    uint32 // CRC-32C of them
	Prefix []byte // the first bytes: all Len of them, or SpanPrefix
	Suffix []byte // the last SpanSuffix bytes when Prefix is not all, or none
}

// Complete reports whether the part's bytes are all kept.
func (p *SpanPart) Complete() bool { return uint64(len(p.Prefix)) == uint64(p.Len) }

// HeadState says how the record continued from the previous segment ends.
type HeadState uint8

// Head states.
const (
	// HeadNone: the first page has no XLP_FIRST_IS_CONTRECORD (or the
	// scan did not get that far).
	HeadNone HeadState = iota
	// HeadEnds: the continued record ends in this segment, at Head.End.
	HeadEnds
	// HeadAbandoned: a page with XLP_FIRST_IS_OVERWRITE_CONTRECORD, at
	// Head.Abandoned, cuts the continuation short.
	HeadAbandoned
	// HeadContinues: the continuation fills the segment and goes on.
	HeadContinues
	// HeadBroken: the scan stopped inside the continuation (see Stop).
	HeadBroken
)

// SegmentHead describes the continuation a segment starts with.
type SegmentHead struct {
	State  HeadState
	RemLen uint32 // xlp_rem_len of the first page
	// End is just past the continued record's last byte (not aligned),
	// for HeadEnds.
	End walname.LSN
	// Abandoned is the page where the continuation was given up, for
	// HeadAbandoned.
	Abandoned walname.LSN
	// Part holds the continuation bytes in this segment.
	Part SpanPart
}

// SegmentTail describes a record that starts in the segment and goes on
// in the next one.
type SegmentTail struct {
	Start  walname.LSN // the record's start; 0 if no record goes on
	TotLen uint32      // its xl_tot_len
	Part   SpanPart    // its bytes in this segment
}

// RecordLink is the xl_prev of a record that a scan read before its first
// complete record, when it could only check it for plausibility.
type RecordLink struct {
	LSN  walname.LSN // the record's start
	Prev walname.LSN // its xl_prev
}

// PageTLI says that pages from Page (an index in the segment) on have
// timeline TLI, up to the next entry.
type PageTLI struct {
	Page uint32
	TLI  walname.TimelineID
}

// RecordStarts are the start positions of the complete records of a
// segment, in order, as unsigned varints of the distance from the
// previous start (the segment start for the first) in units of 8 bytes:
// one byte per record below 1 KiB.
type RecordStarts []byte

// All yields the starts, given the segment's first byte.
func (r RecordStarts) All(segStart walname.LSN) iter.Seq[walname.LSN] {
	return func(yield func(walname.LSN) bool) {
		at := segStart
		for b := []byte(r); len(b) > 0; {
			d, n := binary.Uvarint(b)
			if n <= 0 {
				return
			}
			b = b[n:]
			at += walname.LSN(d * MaxAlign)
			if !yield(at) {
				return
			}
		}
	}
}

func (r RecordStarts) appendStart(prev, at walname.LSN) RecordStarts {
	return binary.AppendUvarint(r, uint64(at-prev)/MaxAlign)
}

// spanBuilder collects a SpanPart from the bytes as they are read. The
// part's length is known before its first byte (what is left of the
// segment, or of the continuation), so that only the bytes that are kept
// are copied.
type spanBuilder struct {
	n, total uint64
	crc      uint32
	prefix   []byte // the first bytes: up to total when it is small, else SpanPrefix
	suffix   []byte // SpanSuffix bytes: the last ones, filled as they pass
}

// start readies the builder for a part of total bytes.
func (b *spanBuilder) start(total uint64) {
	b.n, b.total, b.crc, b.prefix = 0, total, 0, b.prefix[:0]
	if b.suffix == nil {
		b.suffix = make([]byte, SpanSuffix)
	}
}

func (b *spanBuilder) add(p []byte) {
	const keep = SpanPrefix + SpanSuffix
	b.crc = crcUpdate(b.crc, p)
	off := b.n
	b.n += uint64(len(p))
	if b.total <= keep {
		if k := min(len(p), keep-len(b.prefix)); k > 0 {
			b.prefix = append(b.prefix, p[:k]...)
		}
		return
	}
	if k := min(len(p), SpanPrefix-len(b.prefix)); k > 0 {
		b.prefix = append(b.prefix, p[:k]...)
	}
	// Copy what falls into the last SpanSuffix bytes of the part.
	lo := b.total - SpanSuffix
	if end := off + uint64(len(p)); end > lo && end <= b.total {
		from := max(lo, off)
		copy(b.suffix[from-lo:], p[from-off:])
	}
}

// part returns what is kept; frontOnly keeps only the prefix. A part
// that did not reach its announced length keeps nothing but its length
// and CRC (a read never continues past it).
func (b *spanBuilder) part(frontOnly bool) SpanPart {
	p := SpanPart{Len: uint32(b.n), CRC: b.crc}
	switch {
	case b.n != b.total:
	case frontOnly:
		p.Prefix = slices.Clone(b.prefix[:min(len(b.prefix), SpanPrefix)])
	case b.n <= SpanPrefix+SpanSuffix:
		p.Prefix = slices.Clone(b.prefix)
	default:
		p.Prefix = slices.Clone(b.prefix)
		p.Suffix = slices.Clone(b.suffix)
	}
	return p
}

// capture is what a scan keeps for Chain while it reads.
type capture struct {
	segStart walname.LSN
	pages    int // pages validated, from page 0
	tlis     []PageTLI
	head     SegmentHead
	headPart spanBuilder
	tail     SegmentTail
	tailPart spanBuilder
	links    []RecordLink
	// abandoned are the records inside the segment given up at an
	// XLP_FIRST_IS_OVERWRITE_CONTRECORD page.
	abandoned   []walname.LSN
	starts      RecordStarts
	lastStart   walname.LSN
	records     int
	overwritten walname.LSN // named by the first complete record, if an XLOG_OVERWRITE_CONTRECORD
}

// reset readies a capture for the next scan, keeping its buffers.
func (c *capture) reset() {
	*c = capture{
		tlis:      c.tlis[:0],
		links:     c.links[:0],
		abandoned: c.abandoned[:0],
		starts:    c.starts[:0],
		headPart:  c.headPart,
		tailPart:  c.tailPart,
	}
}

func (c *capture) onPage(s *stream, ptr walname.LSN, tli walname.TimelineID) {
	idx := uint32((uint64(ptr) - uint64(c.segStart)) >> bits.TrailingZeros64(s.pageSize)) // a power of two
	if int(idx) >= c.pages {
		c.pages = int(idx) + 1
	}
	if len(c.tlis) == 0 || c.tlis[len(c.tlis)-1].TLI != tli {
		c.tlis = append(c.tlis, PageTLI{Page: idx, TLI: tli})
	}
}

func (c *capture) onRecord(rec *Record) {
	if c.records == 0 {
		c.overwritten = overwriteTarget(rec)
	}
	c.records++
	c.starts = c.starts.appendStart(c.lastStart, rec.StartLSN)
	c.lastStart = rec.StartLSN
}

func (c *capture) startTail(total uint64) *spanBuilder {
	c.tailPart.start(total)
	return &c.tailPart
}

// overwriteTarget is the record an XLOG_OVERWRITE_CONTRECORD names, 0 for
// any other record.
func overwriteTarget(rec *Record) walname.LSN {
	if rec.RmID != RmXLOG || rec.Info&^XLRInfoMask != XLOGOverwriteContrecord || len(rec.MainData) < 8 {
		return 0
	}
	return walname.LSN(binary.LittleEndian.Uint64(rec.MainData))
}
