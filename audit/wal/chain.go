package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/walaudit/walaudit/walname"
)

// ErrSummaryIncomplete: the segment summaries do not hold what a chain
// needs to decide like the Reader (see [WalkChain]); read the WAL itself.
// It is never a [ContentError].
var ErrSummaryIncomplete = errors.New("walaudit/wal: the segment summaries cannot decide this; read the WAL")

// ChainEnd returns where a [Reader] started at start over the files the
// summaries describe would stop ([Reader.EndOfWAL]) and why
// ([Reader.Err]), without reading any file. See [WalkChain].
func ChainEnd(sums []*SegmentSummary, start walname.LSN, opts Options) (walname.LSN, error) {
	return WalkChain(sums, start, opts, nil)
}

// WalkChain replays a [Reader] started at start with opts over the
// segments that sums describe, one [ScanSegment] summary per segment
// (a segment without one is missing from the archive), and calls fn for
// the event of every record the Reader would return, in order, with
// PrevEnd set as the Reader sets it. It verifies across every segment
// boundary what the Reader verifies there: page header identity (magic,
// system identifier, sizes), page timelines never decreasing and allowed
// by opts.AllowedTLI, file sizes, continuation lengths, the CRC and body
// of the record that crosses the boundary (its CRC combined from the
// parts' CRCs), back-links, and abandoned continuations.
//
// start must be a record start in the first segment (a checkpoint's redo
// pointer, a record's EndLSN) or that segment's first byte, and
// opts.SegmentSize is required, as for [NewReader].
//
// It returns what Reader.EndOfWAL and Reader.Err would say when reading
// stops: err is then never nil, a *[ContentError] ([IsEndOfWAL] tells a
// clean end from damage). When fn returns false the walk stops there and
// returns that record's EndLSN and a nil error.
//
// An error wrapping [ErrSummaryIncomplete] means the summaries cannot
// answer like the Reader: start is not a record start the summary knows
// (damage before it in its segment, or a position inside a record), a
// summary was scanned with other options, or an event record crossing a
// boundary keeps its main data outside the kept windows ([SpanWindow]).
// Read the WAL with a Reader then.
func WalkChain(sums []*SegmentSummary, start walname.LSN, opts Options, fn func(ev *Event) bool) (walname.LSN, error) {
	if err := opts.validate(); err != nil {
		return start, err
	}
	if opts.SegmentSize == 0 {
		return start, errors.New("wal chain needs the segment size to number segments")
	}
	if start == 0 || uint64(start)%MaxAlign != 0 {
		return start, fmt.Errorf("%w: %s is not a multiple of %d", ErrStartLSN, start, MaxAlign)
	}
	w := newWalker(sums, opts, fn)
	w.s.next = start
	end, err := w.run(start)
	if err == errHalt {
		return end, nil
	}
	return end, err
}

// Chain verifies what a [Reader] verifies when it passes from the
// segment prev describes into the one next describes: the size of prev's
// file; next's first page against what prev established (magic, system
// identifier, segment and page size, timeline not decreasing); the record
// crossing the boundary (xlp_rem_len against xl_tot_len, and when it
// starts in prev and ends in next its header, CRC and body); the
// back-link of next's first record; and that next starts fresh after an
// XLOG_SWITCH. It returns nil when the boundary is sound, else the
// *[ContentError] the Reader would stop with there (prev.Stop when the
// read cannot even reach the boundary).
//
// A pair knows less than a chain: a record that began before prev is
// checked for its lengths only (its CRC needs its first part), and the
// back-link of a record after one that began before prev is not checked.
// [ChainEnd] checks everything.
func Chain(prev, next *SegmentSummary) error {
	if prev == nil || next == nil {
		return errors.New("wal chain: nil summary")
	}
	// A segment whose only record is the end of a switch record (its
	// header split over the boundary before it) is zero after it: the
	// switch owns the rest, and the next segment must start fresh.
	afterSwitch := prev.Stop != nil && prev.Records == 0 && prev.Head.State == HeadEnds &&
		prev.Tail.Start == 0 && IsEndOfWAL(prev.Stop) && prev.Stop.LSN == walname.LSN(maxAlign(uint64(prev.Head.End)))
	if prev.Stop != nil && !afterSwitch {
		return copyErr(prev.Stop)
	}
	lay, err := layoutForMagic(prev.Magic)
	if err != nil || prev.SegmentSize == 0 || prev.PageSize == 0 || prev.Pages == 0 {
		return fmt.Errorf("%w: %s has no usable page header", ErrSummaryIncomplete, prev.File)
	}
	if next.SegNo != prev.SegNo+1 {
		return fmt.Errorf("wal chain: %s (segment %d) does not follow %s (segment %d)", next.File, next.SegNo, prev.File, prev.SegNo)
	}
	w := newWalker([]*SegmentSummary{prev, next}, Options{SegmentSize: prev.SegmentSize, BlockSize: prev.BlockSize}, nil)
	w.boundaryOnly = true
	s := &w.s
	s.lay, s.pageSize, s.sysID = lay, uint64(prev.PageSize), prev.SystemID
	s.lastTLI = prev.LastPageTLI()
	s.lastPagePtr = prev.StartLSN() + walname.LSN(uint64(prev.Pages-1)*s.pageSize)
	s.next = prev.End
	if prev.Records > 0 {
		s.prev, s.havePrev, s.lastEnd = prev.LastRecord, true, prev.End
	}
	switch {
	case afterSwitch:
		s.next = prev.StartLSN() + walname.LSN(s.segSize)
	case prev.Tail.Start != 0:
		if prev.Records == 0 {
			s.next = prev.Tail.Start
		}
		w.pendFromTail(prev)
	case prev.Head.State == HeadContinues:
		w.pend = pending{kind: pendSkip, left: uint64(prev.Head.RemLen) - uint64(prev.Head.Part.Len)}
	}
	_, err = w.leave(prev)
	if err == nil || err == errHalt || err == errBoundaryDone {
		return nil
	}
	return err
}

// errHalt: fn asked to stop; errBoundaryDone: Chain has seen the
// boundary.
var (
	errHalt         = errors.New("walk stopped by its callback")
	errBoundaryDone = errors.New("boundary verified")
)

type pendKind uint8

const (
	pendNone pendKind = iota
	pendRecord
	pendSkip // the tail of a record whose start the read does not know
)

// pending is the record the read is in the middle of when it enters the
// next segment.
type pending struct {
	kind    pendKind
	start   walname.LSN
	file    string // the segment file it starts in
	totLen  uint32
	got     uint64 // bytes read so far
	parts   []SpanPart
	hdrDone bool        // its header was checked
	next    walname.LSN // the read's NextRecPtr while it is read: the end of WAL if it fails
	prevEnd walname.LSN // its PrevEnd
	// overwritten: the record must be the XLOG_OVERWRITE_CONTRECORD
	// naming this abandoned record.
	overwritten walname.LSN
	left        uint64 // pendSkip: bytes still to come
}

type walker struct {
	s            stream // page and header checks, what was learned, NextRecPtr and the back-link
	sums         map[walname.SegNo]*SegmentSummary
	fn           func(*Event) bool
	pend         pending
	rec          Record
	boundaryOnly bool // Chain: stop once the next segment's entry is verified
}

func newWalker(sums []*SegmentSummary, opts Options, fn func(*Event) bool) *walker {
	w := &walker{fn: fn, sums: make(map[walname.SegNo]*SegmentSummary, len(sums))}
	for _, s := range sums {
		if s != nil {
			w.sums[s.SegNo] = s
		}
	}
	w.s = stream{opts: opts, segSize: uint64(opts.SegmentSize), sysID: opts.SystemID}
	return w
}

func (w *walker) segStart(seg walname.SegNo) walname.LSN {
	return walname.LSN(uint64(seg) * w.s.segSize)
}

func (w *walker) pageOf(sum *SegmentSummary, lsn walname.LSN) int {
	return int((uint64(lsn) - uint64(sum.StartLSN())) / w.s.pageSize)
}

func (w *walker) pagePtr(sum *SegmentSummary, page int) walname.LSN {
	return sum.StartLSN() + walname.LSN(uint64(page)*w.s.pageSize)
}

func incomplete(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSummaryIncomplete, fmt.Sprintf(format, args...))
}

// stop ends the walk with err, as Reader.Next does: a benign end is still
// refused when the current segment (cur, nil if none is open) has the
// wrong size.
func (w *walker) stop(cur *SegmentSummary, err error) (walname.LSN, error) {
	if cur != nil && IsEndOfWAL(err) {
		if serr := w.sizeErr(cur); serr != nil {
			err = serr
		}
	}
	return w.s.next, err
}

// sizeErr is segFile.finish's verdict on the file's size.
func (w *walker) sizeErr(sum *SegmentSummary) error {
	start := sum.StartLSN()
	if start == 0 {
		start = w.segStart(sum.SegNo)
	}
	size := uint64(w.s.segSize)
	switch {
	case uint64(sum.Size) < size:
		return &ContentError{File: sum.File, Offset: sum.Size, LSN: start + walname.LSN(sum.Size),
			Err: errorf(ErrTruncated, "segment file is truncated: %d bytes, want %d", sum.Size, size)}
	case uint64(sum.Size) > size:
		return &ContentError{File: sum.File, Offset: int64(size), LSN: start + walname.LSN(size),
			Err: errorf(ErrTrailingData, "segment file has more than %d bytes", size)}
	}
	return nil
}

func (w *walker) missing(seg walname.SegNo) error {
	name := walname.SegmentName(1, seg, walname.SegmentSize(w.s.segSize))
	return &ContentError{LSN: w.segStart(seg), Err: errorf(ErrSegmentMissing, "%s: no summary of segment %d", name, seg)}
}

// firstPage validates the first page of sum's segment from what the scan
// kept, exactly as the Reader validates the file's.
func (w *walker) firstPage(sum *SegmentSummary, seg walname.SegNo) (PageHeader, error) {
	start := w.segStart(seg)
	w.s.segTLI = nameTLI(sum.File)
	zeroes := func(n int) (bool, bool) {
		avail := sum.Size >= int64(n)
		return avail, avail && int64(sum.ZeroPrefix) >= int64(n)
	}
	trunc := func() error {
		return &ContentError{File: sum.File, Offset: sum.Size, LSN: start + walname.LSN(sum.Size),
			Err: errorf(ErrTruncated, "segment file is truncated: %d bytes, want %d", sum.Size, w.s.segSize)}
	}
	return w.s.checkFirstPage(sum.File, start, sum.Header, zeroes, trunc)
}

// usable tells whether the scan behind sum saw what the Reader sees, once
// the first page passed.
func (w *walker) usable(sum *SegmentSummary) error {
	bs := w.s.opts.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	switch {
	case uint64(sum.SegmentSize) != w.s.segSize:
		return incomplete("%s was scanned with segment size %d", sum.File, sum.SegmentSize)
	case uint64(sum.PageSize) != w.s.pageSize || sum.Pages == 0:
		return incomplete("%s: the scan did not read its first page", sum.File)
	case sum.BlockSize != bs:
		return incomplete("%s was scanned with block size %d", sum.File, sum.BlockSize)
	case sum.ScanSystemID != 0 && sum.ScanSystemID != w.s.sysID:
		return incomplete("%s was scanned expecting system identifier %d", sum.File, sum.ScanSystemID)
	}
	return nil
}

// pageTLI is the timeline of page p of the segment.
func pageTLI(sum *SegmentSummary, p int) walname.TimelineID {
	var tli walname.TimelineID
	for _, t := range sum.PageTLIs {
		if int(t.Page) > p {
			break
		}
		tli = t.TLI
	}
	return tli
}

// tliFail returns the first page from `from` on, among those the scan
// validated, whose timeline opts.AllowedTLI refuses, or -1.
func (w *walker) tliFail(sum *SegmentSummary, from, to int) int {
	allowed := w.s.opts.AllowedTLI
	if allowed == nil {
		return -1
	}
	to = min(to, sum.Pages-1)
	for i, t := range sum.PageTLIs {
		lo, hi := int(t.Page), to
		if i+1 < len(sum.PageTLIs) {
			hi = min(hi, int(sum.PageTLIs[i+1].Page)-1)
		}
		for p := max(lo, from); p <= hi; p++ {
			if !allowed(t.TLI, w.pagePtr(sum, p)) {
				return p
			}
		}
	}
	return -1
}

func (w *walker) tliErr(sum *SegmentSummary, p int) error {
	ptr := w.pagePtr(sum, p)
	tli := pageTLI(sum, p)
	return w.s.ce(sum.File, ptr, errorf(ErrTimeline, "page timeline %d is not allowed at %s", tli, ptr))
}

// setLastPage records page p of sum as the last page read.
func (w *walker) setLastPage(sum *SegmentSummary, p int) {
	ptr := w.pagePtr(sum, p)
	if ptr > w.s.lastPagePtr {
		w.s.lastPagePtr, w.s.lastTLI = ptr, pageTLI(sum, p)
	}
}

func (w *walker) emit(ev *Event) error {
	if w.fn == nil {
		return nil
	}
	if !w.fn(ev) {
		w.s.next = ev.EndLSN
		return errHalt
	}
	return nil
}

func (w *walker) run(start walname.LSN) (walname.LSN, error) {
	seg := walname.SegNo(uint64(start) / w.s.segSize)
	sum := w.sums[seg]
	if sum == nil {
		return w.stop(nil, w.missing(seg))
	}
	if _, err := w.firstPage(sum, seg); err != nil {
		return w.stop(sum, err)
	}
	if err := w.usable(sum); err != nil {
		return w.s.next, err
	}
	segStart := w.segStart(seg)
	off := uint64(start) % w.s.pageSize
	page := w.pageOf(sum, start)
	hs := uint64(ShortPageHeaderSize)
	if page == 0 {
		hs = LongPageHeaderSize
	}
	switch {
	case start == segStart:
		// The Reader skips a continuation here just as the scan did.
		h0, _ := DecodePageHeader(sum.Header)
		if h0.Info&XLPFirstIsContRecord != 0 {
			w.pend = pending{kind: pendSkip, next: start, left: uint64(h0.RemLen)}
			return w.head(sum)
		}
		return w.records(sum, entry{pageFrom: 1})
	case off == 0:
		return start, incomplete("%s is a page start inside segment %s; start at a record", start, sum.File)
	case off < hs:
		if page >= sum.Pages {
			return start, incomplete("%s: the scan did not validate the page of %s", sum.File, start)
		}
		if p := w.tliFail(sum, page, page); p >= 0 {
			return w.stop(sum, w.tliErr(sum, p))
		}
		return w.stop(sum, w.s.ce(sum.File, start, errorf(ErrStartLSN, "invalid record offset at %s: expected at least %d, got %d", start, hs, off)))
	case sum.IsRecordStart(start):
		return w.records(sum, entry{from: start, pageFrom: max(page, 1)})
	case start == sum.Tail.Start && sum.Stop == nil:
		w.pendFromTail(sum)
		if p := w.tliFail(sum, max(page, 1), sum.Pages-1); p >= 0 {
			return w.stop(sum, w.tliErr(sum, p))
		}
		w.setLastPage(sum, sum.Pages-1)
		return w.leave(sum)
	}
	return start, incomplete("no record of %s is known to start at %s", sum.File, start)
}

// pendFromTail makes the record continuing past sum the one being read;
// w.s.next is the Reader's NextRecPtr meanwhile.
func (w *walker) pendFromTail(sum *SegmentSummary) {
	t := &sum.Tail
	pe := w.s.lastEnd
	if pe == 0 {
		pe = derivedPrevEnd(t.Start, w.s.pageSize, w.s.segSize)
	}
	w.pend = pending{kind: pendRecord, start: t.Start, file: sum.File, totLen: t.TotLen, got: uint64(t.Part.Len),
		parts: []SpanPart{t.Part}, hdrDone: t.Part.Len >= RecordHeaderSize, next: w.s.next, prevEnd: pe}
}

// leave passes from sum's segment into the next one, as the Reader does
// when it needs the next segment's first page.
func (w *walker) leave(sum *SegmentSummary) (walname.LSN, error) {
	// Opening the next file closes this one, checking its size.
	if err := w.sizeErr(sum); err != nil {
		return w.stop(nil, err)
	}
	seg := sum.SegNo + 1
	next := w.sums[seg]
	if next == nil {
		return w.stop(nil, w.missing(seg))
	}
	h0, err := w.firstPage(next, seg)
	if err != nil {
		if w.pend.kind != pendNone {
			// Zeroes where a record's rest should be: it was never
			// completed.
			err = w.s.continuationErr(err, w.pend.start, w.segStart(seg))
		}
		return w.stop(next, err)
	}
	if err := w.usable(next); err != nil {
		return w.s.next, err
	}
	segStart := w.segStart(seg)
	cont := h0.Info&XLPFirstIsContRecord != 0
	switch w.pend.kind {
	case pendNone:
		if cont {
			return w.stop(next, w.s.ce(next.File, segStart, errorf(ErrContRecord, "contrecord is requested by %s", segStart)))
		}
		return w.records(next, entry{checkLinks: w.s.havePrev, pageFrom: 1})
	case pendSkip:
		switch {
		case h0.Info&XLPFirstIsOverwriteContRecord != 0:
			if cont {
				return w.stop(next, w.s.ce(next.File, segStart, errorf(ErrContRecord, "contrecord is requested by %s", segStart)))
			}
			w.pend = pending{}
			return w.records(next, entry{pageFrom: 1})
		case !cont:
			return w.stop(next, w.s.ce(next.File, segStart, errorf(ErrTornRecord, "there is no contrecord flag at %s, %d bytes of a record are missing", segStart, w.pend.left)))
		case uint64(h0.RemLen) != w.pend.left:
			return w.stop(next, w.s.ce(next.File, segStart, errorf(ErrContRecord, "invalid contrecord length %d (expected %d) at %s", h0.RemLen, w.pend.left, segStart)))
		}
		return w.head(next)
	}
	// A record is being read.
	p := &w.pend
	if h0.Info&XLPFirstIsOverwriteContRecord != 0 {
		// The record was abandoned: read again at this page.
		abandoned := p.start
		w.pend = pending{}
		if cont {
			return w.stop(next, w.s.ce(next.File, segStart, errorf(ErrContRecord, "contrecord is requested by %s", segStart)))
		}
		return w.records(next, entry{checkLinks: w.s.havePrev, overwritten: abandoned, pageFrom: 1})
	}
	if !cont {
		return w.stop(next, w.s.ce(next.File, segStart, errorf(ErrTornRecord, "there is no contrecord flag at %s: record at %s is incomplete", segStart, p.start)))
	}
	rem := uint64(h0.RemLen)
	if rem == 0 || uint64(p.totLen) != p.got+rem {
		return w.stop(next, w.s.ce(next.File, segStart, errorf(ErrContRecord, "invalid contrecord length %d (expected %d) at %s", rem, int64(p.totLen)-int64(p.got), segStart)))
	}
	if !p.hdrDone {
		// The header ends on this page: the Reader checks it now.
		pre, _, _ := spanBytes(append(p.parts[:len(p.parts):len(p.parts)], next.Head.Part))
		if len(pre) < RecordHeaderSize {
			return w.s.next, incomplete("%s: header of the record at %s not kept", next.File, p.start)
		}
		h := parseRecordHeader(pre)
		if err := w.s.checkHeader(&h, p.start); err != nil {
			return w.stop(next, w.s.ce(p.file, p.start, err))
		}
		p.hdrDone = true
	}
	return w.head(next)
}

// entry says how the Reader comes to the records a scan read.
type entry struct {
	from        walname.LSN // the first record read: a chain's start, 0 for the scan's first
	checkLinks  bool        // the scan's links must equal the Reader's back-link
	overwritten walname.LSN // the first record must name this abandoned record
	pageFrom    int         // the first page whose timeline is not checked yet
}

// head follows the continuation sum's segment starts with, reading the
// pending record (or skipping an unknown one) as the scan recorded.
func (w *walker) head(sum *SegmentSummary) (walname.LSN, error) {
	hd := &sum.Head
	p := &w.pend
	switch hd.State {
	case HeadBroken:
		// The scan stopped inside the continuation, where the Reader
		// does too, after the pages before it.
		if q := w.tliFail(sum, 1, sum.Pages-1); q >= 0 {
			return w.stop(sum, w.tliErr(sum, q))
		}
		if sum.Stop == nil {
			return w.s.next, incomplete("%s: scan without a stop inside the continuation", sum.File)
		}
		return w.stop(sum, copyErr(sum.Stop))
	case HeadContinues:
		if q := w.tliFail(sum, 1, sum.Pages-1); q >= 0 {
			return w.stop(sum, w.tliErr(sum, q))
		}
		w.setLastPage(sum, sum.Pages-1)
		if p.kind == pendRecord {
			p.got += uint64(hd.Part.Len)
			p.parts = append(p.parts, hd.Part)
		} else {
			p.left -= uint64(hd.Part.Len)
		}
		if w.boundaryOnly {
			return w.s.next, errBoundaryDone
		}
		return w.leave(sum)
	case HeadAbandoned:
		q := w.pageOf(sum, hd.Abandoned)
		if f := w.tliFail(sum, 1, q); f >= 0 {
			return w.stop(sum, w.tliErr(sum, f))
		}
		e := entry{checkLinks: w.s.havePrev, pageFrom: q + 1}
		if p.kind == pendRecord {
			e.overwritten = p.start
		}
		w.pend = pending{}
		return w.records(sum, e)
	case HeadEnds:
	default:
		return w.s.next, incomplete("%s: the scan did not follow the continuation", sum.File)
	}
	last := w.pageOf(sum, hd.End-1)
	if f := w.tliFail(sum, 1, last); f >= 0 {
		return w.stop(sum, w.tliErr(sum, f))
	}
	if p.kind == pendSkip {
		w.pend = pending{}
		return w.records(sum, entry{pageFrom: last + 1})
	}
	// The record is complete: the Reader checks and decodes it.
	p.parts = append(p.parts, hd.Part)
	p.got += uint64(hd.Part.Len)
	rec, err := w.finishSpan(sum, hd.End)
	if err != nil {
		var ce *ContentError
		if errors.As(err, &ce) {
			return w.stop(sum, err)
		}
		return w.s.next, err
	}
	if w.boundaryOnly {
		return w.s.next, errBoundaryDone
	}
	isSwitch := rec.RmID == RmXLOG && rec.Info&^XLRInfoMask == XLOGSwitch
	w.s.next, w.s.prev, w.s.havePrev, w.s.lastEnd = rec.EndLSN, rec.StartLSN, true, rec.EndLSN
	w.pend = pending{}
	if ev, ok, err := eventOf(rec, w.s.lay); err == nil && ok {
		if err := w.emit(&ev); err != nil {
			return w.s.next, err
		}
	}
	if isSwitch {
		// The switch record owns the rest of the segment it ends in.
		w.setLastPage(sum, last)
		return w.leave(sum)
	}
	return w.records(sum, entry{checkLinks: true, pageFrom: last + 1})
}

// finishSpan verifies the pending record, complete with the segment's
// head part, as the Reader verifies a record it assembled: CRC, then body
// (and the overwrite target if it follows an abandoned record). end is
// just past its last byte.
func (w *walker) finishSpan(sum *SegmentSummary, end walname.LSN) (*Record, error) {
	p := &w.pend
	var total uint64
	for _, part := range p.parts {
		total += uint64(part.Len)
	}
	if total != uint64(p.totLen) {
		return nil, incomplete("record at %s: parts of %d bytes for xl_tot_len %d", p.start, total, p.totLen)
	}
	pre, suf, full := spanBytes(p.parts)
	if len(pre) < RecordHeaderSize {
		return nil, incomplete("record at %s: header not kept", p.start)
	}
	c := p.parts[0].CRC
	for _, part := range p.parts[1:] {
		c = crcCombine(c, part.CRC, uint64(part.Len))
	}
	// xl_crc covers the bytes after the header, then the header up to
	// xl_crc: take the header's CRC out of the front, add it at the back.
	c = crcStrip(c, crc32.Checksum(pre[:RecordHeaderSize], castagnoli), uint64(p.totLen)-RecordHeaderSize)
	c = crc32.Update(c, castagnoli, pre[:20])
	if want := binary.LittleEndian.Uint32(pre[20:]); c != want {
		return nil, w.s.ce(p.file, p.start, errorf(ErrChecksum, "record CRC mismatch: got %08x, want %08x", c, want))
	}
	rec := &w.rec
	haveMain := true
	if full {
		if err := decodeRecord(pre, w.s.lay, w.s.opts.BlockSize, rec); err != nil {
			return nil, w.s.ce(p.file, p.start, err)
		}
	} else {
		mainLen, err := decodeFragments(pre, int(p.totLen), w.s.lay, w.s.opts.BlockSize, rec)
		switch {
		case err == errNeedBytes:
			return nil, incomplete("record at %s: its block headers run past the kept %d bytes", p.start, len(pre))
		case err != nil:
			return nil, w.s.ce(p.file, p.start, err)
		case mainLen <= len(suf):
			rec.MainData = suf[len(suf)-mainLen:]
		default:
			haveMain = false
		}
	}
	next := walname.LSN(maxAlign(uint64(end)))
	if rec.RmID == RmXLOG && rec.Info&^XLRInfoMask == XLOGSwitch {
		next = walname.LSN((uint64(next) + w.s.segSize - 1) / w.s.segSize * w.s.segSize)
	}
	rec.StartLSN, rec.EndLSN, rec.PrevEnd = p.start, next, p.prevEnd
	if !haveMain {
		// Only records that are no events can do without their data, and
		// after an abandoned record only those that cannot be the
		// XLOG_OVERWRITE_CONTRECORD due there.
		isOverwrite := rec.RmID == RmXLOG && rec.Info&^XLRInfoMask == XLOGOverwriteContrecord
		if _, ok, err := eventOf(rec, w.s.lay); ok || err != nil || p.overwritten != 0 && isOverwrite {
			return nil, incomplete("record at %s: main data not kept (%d bytes of %d kept)", p.start, len(suf), p.totLen)
		}
	}
	if p.overwritten != 0 {
		if err := checkOverwrite(rec, p.overwritten); err != nil {
			return nil, w.s.ce(p.file, p.start, err)
		}
	}
	return rec, nil
}

// spanBytes joins the kept bytes of a record's parts: all of them when
// every part is complete, else the longest known front and back.
func spanBytes(parts []SpanPart) (prefix, suffix []byte, full bool) {
	full = true
	for i := range parts {
		prefix = append(prefix, parts[i].Prefix...)
		if !parts[i].Complete() {
			full = false
			break
		}
	}
	if full {
		return prefix, nil, true
	}
	for i := len(parts) - 1; i >= 0; i-- {
		if parts[i].Complete() {
			suffix = append(append([]byte(nil), parts[i].Prefix...), suffix...)
			continue
		}
		suffix = append(append([]byte(nil), parts[i].Suffix...), suffix...)
		break
	}
	return prefix, suffix, false
}

// attempt is a record the Reader starts to read, as far as the scan's
// summary tells: complete, abandoned, continuing in the next segment, or
// failing.
type attempt struct {
	start    walname.LSN
	lastPage int         // the last page it loads
	next     walname.LSN // NextRecPtr while it is read
}

// attempts lists the records the Reader reads in sum's segment from
// `from` on (0: from the scan's first), with the pages they load; first
// is the NextRecPtr before the first.
func (w *walker) attempts(sum *SegmentSummary, from, first walname.LSN) []attempt {
	type st struct {
		at        walname.LSN
		abandoned bool
	}
	var seq []st
	ab := sum.Abandoned
	for at := range sum.RecordStarts() {
		for len(ab) > 0 && ab[0] < at {
			if ab[0] >= from {
				seq = append(seq, st{ab[0], true})
			}
			ab = ab[1:]
		}
		if at >= from {
			seq = append(seq, st{at: at})
		}
	}
	for _, a := range ab {
		if a >= from {
			seq = append(seq, st{a, true})
		}
	}
	switch {
	case sum.Tail.Start != 0:
		seq = append(seq, st{at: sum.Tail.Start})
	case sum.Stop != nil && sum.Records > 0:
		seq = append(seq, st{at: sum.End})
	}
	out := make([]attempt, len(seq))
	for i, a := range seq {
		out[i].start = a.at
		switch {
		case i+1 == len(seq):
			out[i].lastPage = sum.Pages - 1
		case a.abandoned:
			out[i].lastPage = w.pageOf(sum, seq[i+1].at)
		default:
			out[i].lastPage = w.pageOf(sum, derivedPrevEnd(seq[i+1].at, w.s.pageSize, w.s.segSize)-1)
		}
		switch {
		case i == 0:
			out[i].next = first
		case seq[i-1].abandoned:
			out[i].next = out[i-1].next
		default:
			out[i].next = derivedPrevEnd(a.at, w.s.pageSize, w.s.segSize)
		}
	}
	return out
}

// records replays the Reader over the records the scan read in sum's
// segment, then passes into the next segment.
func (w *walker) records(sum *SegmentSummary, e entry) (walname.LSN, error) {
	fail := w.tliFail(sum, e.pageFrom, sum.Pages-1)
	var atts []attempt
	loader := func(p int) attempt {
		if atts == nil {
			atts = w.attempts(sum, e.from, w.s.next)
		}
		for _, a := range atts {
			if a.lastPage >= p {
				return a
			}
		}
		return attempt{start: w.s.next, next: w.s.next}
	}
	// tliBefore stops at the refused page if the Reader loads it before
	// a check made once page `page` is loaded (split: the header ends on
	// the next page).
	tliBefore := func(page int) bool { return fail >= 0 && fail <= page }
	tliStop := func() (walname.LSN, error) {
		a := loader(fail)
		if err := w.emitUpTo(sum, e, a.start); err != nil {
			return w.s.next, err
		}
		w.s.next = a.next
		return w.stop(sum, w.tliErr(sum, fail))
	}

	if e.checkLinks {
		for _, l := range sum.Links {
			page := w.pageOf(sum, l.LSN)
			if uint64(l.LSN)%w.s.pageSize+RecordHeaderSize > w.s.pageSize {
				page++
			}
			if tliBefore(page) {
				return tliStop()
			}
			if l.Prev != w.s.prev {
				return w.stop(sum, w.s.ce(sum.File, l.LSN, errorf(ErrPrevLink, "record with incorrect prev-link %s at %s, want %s", l.Prev, l.LSN, w.s.prev)))
			}
		}
	}
	if e.overwritten != 0 && sum.Records > 0 {
		// The record after an abandoned one must be the
		// XLOG_OVERWRITE_CONTRECORD naming it.
		a := loader(w.pageOf(sum, sum.FirstRecord))
		if tliBefore(a.lastPage) {
			return tliStop()
		}
		if sum.FirstOverwritten != e.overwritten {
			return w.stop(sum, w.s.ce(sum.File, sum.FirstRecord, errorf(ErrOverwrite, "record at %s abandoned, but the record after it names %s", e.overwritten, sum.FirstOverwritten)))
		}
	}
	if w.boundaryOnly {
		return w.s.next, errBoundaryDone
	}
	if fail >= 0 {
		return tliStop()
	}
	if err := w.emitUpTo(sum, e, walname.LSN(^uint64(0))); err != nil {
		return w.s.next, err
	}
	if sum.Records > 0 {
		w.s.prev, w.s.havePrev = sum.LastRecord, true
		w.s.next, w.s.lastEnd = sum.End, sum.End
	}
	if sum.Stop != nil {
		return w.stop(sum, copyErr(sum.Stop))
	}
	w.setLastPage(sum, sum.Pages-1)
	if sum.Tail.Start != 0 {
		w.pendFromTail(sum)
		if e.overwritten != 0 && sum.Records == 0 {
			w.pend.overwritten = e.overwritten
		}
	} else if sum.Records == 0 && e.overwritten != 0 {
		return w.s.next, incomplete("%s: no record after the abandoned one", sum.File)
	}
	return w.leave(sum)
}

// emitUpTo passes the scan's events of records from e.from up to (not
// including) before to fn; the first record read gets the Reader's
// PrevEnd.
func (w *walker) emitUpTo(sum *SegmentSummary, e entry, before walname.LSN) error {
	if w.fn == nil {
		return nil
	}
	first := e.from
	if first == 0 {
		first = sum.FirstRecord
	}
	for i := range sum.Events {
		ev := sum.Events[i]
		if ev.LSN < e.from || ev.LSN >= before {
			continue
		}
		if ev.LSN == first {
			ev.PrevEnd = w.s.lastEnd
			if ev.PrevEnd == 0 {
				ev.PrevEnd = derivedPrevEnd(ev.LSN, w.s.pageSize, w.s.segSize)
			}
		}
		if err := w.emit(&ev); err != nil {
			return err
		}
	}
	return nil
}

func copyErr(ce *ContentError) error {
	c := *ce
	return &c
}
