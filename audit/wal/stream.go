package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"

	"github.com/walaudit/walaudit/walname"
)

// maxPrealloc bounds the reassembly buffer reserved ahead of the data.
const maxPrealloc = 4 << 20

// errNextSegment tells a single-segment scan that reading needs the next
// segment, which it never opens.
var errNextSegment = errors.New("next segment needed")

// stream is the engine shared by Reader and ScanSegment: it validates pages
// as they are needed and assembles records across page and segment
// boundaries, following PostgreSQL's XLogDecodeNextRecord.
type stream struct {
	ctx  context.Context
	src  SegmentSource // nil for a single-segment scan
	opts Options

	segSize  uint64  // learned from the first long header unless given
	pageSize uint64  // XLOG_BLCKSZ, learned from the first long header
	sysID    uint64  // expected system identifier, learned unless given
	lay      *layout // version details, from the first page magic

	seg    *segFile
	closer io.Closer // of seg, nil in scans
	segTLI walname.TimelineID
	buf    []byte // chunk buffer reused for every segment

	// The validated page most recently loaded.
	page    []byte
	pagePtr walname.LSN
	hdr     PageHeader
	// Page timelines must not decrease along the read (XLogReaderState
	// latestPagePtr / latestPageTLI).
	lastPagePtr walname.LSN
	lastTLI     walname.TimelineID

	next     walname.LSN // where the next record starts (NextRecPtr)
	skipCont bool        // next is a page start that may hold the tail of an unknown record
	prev     walname.LSN // start of the last record returned
	havePrev bool        // prev is known: xl_prev must equal it exactly
	partial  walname.LSN // scan: start of a record that continues into the next segment
	// abandoned is the start of a record given up because the page its
	// continuation should be on has XLP_FIRST_IS_OVERWRITE_CONTRECORD.
	abandoned walname.LSN

	// lastEnd is the EndLSN of the last record read, 0 before the first:
	// the PrevEnd of the next one.
	lastEnd walname.LSN

	rec    Record
	asm    []byte   // reassembly buffer for records that cross pages
	events []Event  // scan: events found so far
	cap    *capture // scan: what Chain needs, nil for a Reader
}

// ce attaches the position of a problem to err; file is the segment file
// holding the bytes at lsn.
func (s *stream) ce(file string, lsn walname.LSN, err error) error {
	var off int64
	if s.segSize != 0 {
		off = int64(uint64(lsn) % s.segSize)
	}
	return &ContentError{File: file, Offset: off, LSN: lsn, Err: err}
}

// openSegment replaces the current segment by segment segno, checking the
// old file's size on the way: PostgreSQL refuses a restored file of the
// wrong size.
func (s *stream) openSegment(segno walname.SegNo) error {
	if s.src == nil {
		return errNextSegment
	}
	if err := s.closeSegment(true); err != nil {
		return err
	}
	if err := s.ctx.Err(); err != nil {
		return err
	}
	start := walname.LSN(uint64(segno) * s.segSize)
	rc, name, err := s.src.OpenSegment(s.ctx, segno)
	if err != nil {
		if errors.Is(err, ErrSegmentMissing) {
			return &ContentError{LSN: start, Err: err}
		}
		return fmt.Errorf("open WAL segment %d (lsn %s): %w", segno, start, err)
	}
	s.seg, s.closer = newSegFile(rc, name, segno, s.buf), rc
	s.segTLI = nameTLI(name)
	return s.loadFirstPage(start)
}

// closeSegment closes the current segment, first reading it to the end to
// check its size when checkSize is set.
func (s *stream) closeSegment(checkSize bool) error {
	if s.seg == nil {
		return nil
	}
	var err error
	if checkSize {
		err = s.seg.finish(s.segSize)
	}
	if s.closer != nil {
		if cerr := s.closer.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", s.seg.name, cerr)
		}
	}
	s.seg, s.closer, s.page = nil, nil, nil
	return err
}

// nameTLI returns the timeline of a segment file name, 0 if the name is
// not one.
func nameTLI(name string) walname.TimelineID {
	n, err := walname.Parse(name)
	if err != nil || (n.Kind != walname.KindSegment && n.Kind != walname.KindPartial) {
		return 0
	}
	return n.TLI
}

// loadFirstPage reads and validates the first page of the current segment,
// learning the version, page size and system identifier from the first
// segment of the read.
func (s *stream) loadFirstPage(start walname.LSN) error {
	f := s.seg
	b, err := f.page(0, LongPageHeaderSize)
	if err != nil && !errors.Is(err, errShortFile) {
		return err
	}
	var ioErr error
	zeroes := func(n int) (avail, zero bool) {
		pg, err := f.page(0, n)
		if err != nil {
			if !errors.Is(err, errShortFile) && ioErr == nil {
				ioErr = err
			}
			return false, false
		}
		return true, allZero(pg)
	}
	trunc := func() error { return s.seg.truncated(s.segSize) }
	h, err := s.checkFirstPage(f.name, start, b, zeroes, trunc)
	if ioErr != nil {
		return ioErr
	}
	if err != nil {
		return err
	}
	pg, err := f.page(0, int(s.pageSize))
	if err != nil {
		return s.pageReadErr(err)
	}
	s.setPage(start, pg, h)
	return nil
}

// checkFirstPage validates the first page of a segment starting at start
// from its first bytes hdr (up to [LongPageHeaderSize]; fewer when the
// file is that short); zeroes says whether the file holds n bytes and
// whether they are all zero, trunc makes the error for a file too short.
// It learns the version, page size and system identifier on the first
// call. Readers pass the file, chains what a summary kept of it.
func (s *stream) checkFirstPage(name string, start walname.LSN, hdr []byte, zeroes func(n int) (avail, zero bool), trunc func() error) (PageHeader, error) {
	if len(hdr) < LongPageHeaderSize {
		return PageHeader{}, trunc()
	}
	h, _ := DecodePageHeader(hdr)
	if allZero(hdr) {
		n := DefaultBlockSize
		if s.pageSize != 0 {
			n = int(s.pageSize)
		}
		if avail, zero := zeroes(n); avail && zero {
			return h, s.ce(name, start, errorf(ErrZeroTail, "zeroed page at the start of the segment"))
		}
	}
	if s.lay == nil {
		lay, err := layoutForMagic(h.Magic)
		if err != nil {
			return h, s.ce(name, start, err)
		}
		s.lay = lay
	}
	if s.pageSize == 0 && h.IsLong() && h.Magic == s.lay.magic {
		if !validPageSize(h.BlockSize) || uint64(h.BlockSize) > s.segSize {
			return h, s.ce(name, start, errorf(ErrPageSize, "invalid WAL page size %d in page header", h.BlockSize))
		}
		s.pageSize = uint64(h.BlockSize)
	}
	if s.sysID == 0 && h.IsLong() && h.Magic == s.lay.magic {
		s.sysID = h.SysID
	}
	if s.pageSize == 0 {
		// Learning failed: let Check say why.
		err := h.Check(s.expect(start))
		if err == nil {
			err = errorf(ErrPageFlags, "invalid page info bits %04X: first page of a segment without long header", h.Info)
		}
		return h, s.ce(name, start, err)
	}
	avail, zero := zeroes(int(s.pageSize))
	if !avail {
		return h, trunc()
	}
	return h, s.checkPage(name, start, h, zero)
}

func (s *stream) expect(ptr walname.LSN) PageExpect {
	e := PageExpect{
		Magic:    s.lay.magic,
		Addr:     ptr,
		SysID:    s.sysID,
		SegSize:  walname.SegmentSize(s.segSize),
		PageSize: uint32(s.pageSize),
	}
	if ptr > s.lastPagePtr {
		e.MinTLI = s.lastTLI
	}
	return e
}

func (s *stream) pageReadErr(err error) error {
	if errors.Is(err, errShortFile) {
		return s.seg.truncated(s.segSize)
	}
	return err
}

// acceptPage validates page pg found at ptr and makes it current.
func (s *stream) acceptPage(ptr walname.LSN, pg []byte) error {
	s.page = nil
	h, _ := DecodePageHeader(pg)
	if err := s.checkPage(s.seg.name, ptr, h, allZero(pg[:ShortPageHeaderSize]) && allZero(pg)); err != nil {
		return err
	}
	s.setPage(ptr, pg, h)
	return nil
}

// checkPage validates the header h of the page at ptr in file name;
// zeroPage says that the whole page is zero. On success the page counts as
// read for the timeline order.
func (s *stream) checkPage(name string, ptr walname.LSN, h PageHeader, zeroPage bool) error {
	if zeroPage {
		return s.ce(name, ptr, errorf(ErrZeroTail, "zeroed page"))
	}
	if err := h.Check(s.expect(ptr)); err != nil {
		return s.ce(name, ptr, err)
	}
	if s.segTLI != 0 && h.TLI > s.segTLI {
		return s.ce(name, ptr, errorf(ErrTimeline, "page timeline %d is newer than the file's timeline %d", h.TLI, s.segTLI))
	}
	if s.opts.AllowedTLI != nil && !s.opts.AllowedTLI(h.TLI, ptr) {
		return s.ce(name, ptr, errorf(ErrTimeline, "page timeline %d is not allowed at %s", h.TLI, ptr))
	}
	if ptr > s.lastPagePtr {
		s.lastPagePtr, s.lastTLI = ptr, h.TLI
	}
	return nil
}

// setPage makes the validated page current.
func (s *stream) setPage(ptr walname.LSN, pg []byte, h PageHeader) {
	s.page, s.pagePtr, s.hdr = pg, ptr, h
	if s.cap != nil {
		s.cap.onPage(s, ptr, h.TLI)
	}
}

// loadPage makes the page at ptr current, opening its segment if needed.
func (s *stream) loadPage(ptr walname.LSN) error {
	if s.page != nil && s.pagePtr == ptr {
		return nil
	}
	// Page and segment sizes are powers of two: masks and shifts, not
	// divisions, on this path taken for every page.
	segno := walname.SegNo(uint64(ptr) >> bits.TrailingZeros64(s.segSize))
	if s.seg == nil || s.seg.segno != segno {
		if err := s.openSegment(segno); err != nil {
			return err
		}
		if s.pagePtr == ptr {
			return nil
		}
	}
	off := int64(uint64(ptr) & (s.segSize - 1))
	pg, err := s.seg.page(off, int(s.pageSize))
	if err != nil {
		return s.pageReadErr(err)
	}
	return s.acceptPage(ptr, pg)
}

// skipContinuation returns the first record start at or after the page at
// pagePtr, which is current and begins with the tail of a record whose
// start is unknown (XLogFindNextRecord). The tail may span pages. The
// pages after the first are checked as the record's own reading would
// check them, so that skipping and reading agree: a page with
// XLP_FIRST_IS_OVERWRITE_CONTRECORD abandons the tail (the first record
// starts on it), a continuation page without it must say how much is left.
func (s *stream) skipContinuation(pagePtr walname.LSN) (walname.LSN, error) {
	c := s.cap
	rem := uint64(s.hdr.RemLen)
	if c != nil {
		c.head.State, c.head.RemLen = HeadBroken, s.hdr.RemLen
		c.headPart.start(min(rem, s.dataToSegmentEnd(pagePtr+walname.LSN(s.hdr.Size()))))
	}
	if rem == 0 {
		return 0, s.ce(s.seg.name, pagePtr, errorf(ErrContRecord, "contrecord flag set with xlp_rem_len 0 at %s", pagePtr))
	}
	for {
		hs := uint64(s.hdr.Size())
		room := s.pageSize - hs
		n := min(rem, room)
		if c != nil {
			c.headPart.add(s.page[hs : hs+n])
		}
		if maxAlign(rem) < room {
			if c != nil {
				c.head.State, c.head.End = HeadEnds, pagePtr+walname.LSN(hs+rem)
			}
			return pagePtr + walname.LSN(hs+maxAlign(rem)), nil
		}
		left := rem - n
		if left == 0 && c != nil {
			c.head.State, c.head.End = HeadEnds, pagePtr+walname.LSN(hs+rem)
		}
		pagePtr += walname.LSN(s.pageSize)
		if err := s.loadPage(pagePtr); err != nil {
			if left > 0 {
				if c != nil && errors.Is(err, errNextSegment) {
					c.head.State = HeadContinues
				}
				// Zeroes where the continued record's rest should be: it
				// was never completed.
				return 0, s.continuationErr(err, 0, pagePtr)
			}
			return 0, err
		}
		cont := s.hdr.Info&XLPFirstIsContRecord != 0
		switch {
		case left == 0 && !cont:
			return pagePtr + walname.LSN(s.hdr.Size()), nil
		case left == 0:
			return 0, s.ce(s.seg.name, pagePtr, errorf(ErrContRecord, "contrecord flag at %s, but no record continues there", pagePtr))
		case s.hdr.Info&XLPFirstIsOverwriteContRecord != 0:
			// The continued record was abandoned; a new one starts here,
			// which a continuation cannot.
			if cont {
				return 0, s.ce(s.seg.name, pagePtr, errorf(ErrContRecord, "contrecord is requested by %s", pagePtr))
			}
			if c != nil {
				c.head.State, c.head.Abandoned = HeadAbandoned, pagePtr
			}
			return pagePtr + walname.LSN(s.hdr.Size()), nil
		case !cont:
			return 0, s.ce(s.seg.name, pagePtr, errorf(ErrTornRecord, "there is no contrecord flag at %s, %d bytes of a record are missing", pagePtr, left))
		case uint64(s.hdr.RemLen) != left:
			return 0, s.ce(s.seg.name, pagePtr, errorf(ErrContRecord, "invalid contrecord length %d (expected %d) at %s", s.hdr.RemLen, left, pagePtr))
		}
		rem = left
	}
}

// checkHeader applies ValidXLogRecordHeader to a record at recPtr.
func (s *stream) checkHeader(h *recordHeader, recPtr walname.LSN) error {
	if h.totLen < RecordHeaderSize {
		return errorf(ErrRecordLength, "invalid record length at %s: expected at least %d, got %d", recPtr, RecordHeaderSize, h.totLen)
	}
	if h.totLen > MaxRecordSize {
		return errorf(ErrRecordLength, "record length %d at %s too long", h.totLen, recPtr)
	}
	if !s.lay.validRmgr(h.rmid) {
		return errorf(ErrRmID, "invalid resource manager ID %d at %s", uint8(h.rmid), recPtr)
	}
	if s.havePrev {
		if h.prev != s.prev {
			return errorf(ErrPrevLink, "record with incorrect prev-link %s at %s, want %s", h.prev, recPtr, s.prev)
		}
	} else if h.prev >= recPtr {
		// Reading from an arbitrary position: the back-link can only be
		// checked for plausibility.
		return errorf(ErrPrevLink, "record with incorrect prev-link %s at %s", h.prev, recPtr)
	}
	return nil
}

// readRecord reads the record at s.next into s.rec. On error s.next still
// points just past the last good record: PostgreSQL's end of WAL.
func (s *stream) readRecord() error {
	s.partial = 0
	recPtr := s.next
	if s.pageSize == 0 {
		// The page size comes from the first long header.
		if err := s.openSegment(walname.SegNo(uint64(recPtr) / s.segSize)); err != nil {
			return err
		}
	}
	var overwritten walname.LSN // start of a record abandoned by OVERWRITE_CONTRECORD
	for {
		err := s.readRecordAt(&recPtr, overwritten)
		if err == errRestart {
			overwritten = s.abandoned
			if s.cap != nil {
				s.cap.abandoned = append(s.cap.abandoned, overwritten)
			}
			continue
		}
		return err
	}
}

// errRestart asks readRecord to read again at the updated position: the
// record being assembled was abandoned (XLP_FIRST_IS_OVERWRITE_CONTRECORD).
var errRestart = errors.New("restart at overwrite contrecord")

func (s *stream) readRecordAt(recPtrp *walname.LSN, overwritten walname.LSN) error {
	recPtr := *recPtrp
	pageSize := s.pageSize
	pageOff := uint64(recPtr) & (pageSize - 1) // a power of two
	pagePtr := recPtr - walname.LSN(pageOff)
	if err := s.loadPage(pagePtr); err != nil {
		return err
	}
	if pageOff == 0 {
		if s.hdr.Info&XLPFirstIsContRecord != 0 {
			if !s.skipCont || overwritten != 0 {
				return s.ce(s.seg.name, recPtr, errorf(ErrContRecord, "contrecord is requested by %s", recPtr))
			}
			var err error
			if recPtr, err = s.skipContinuation(pagePtr); err != nil {
				return err
			}
			pageOff = uint64(recPtr) & (pageSize - 1)
			pagePtr = recPtr - walname.LSN(pageOff)
		} else {
			pageOff = uint64(s.hdr.Size())
			recPtr += walname.LSN(pageOff)
		}
	} else if pageOff < uint64(s.hdr.Size()) {
		return s.ce(s.seg.name, recPtr, errorf(ErrStartLSN, "invalid record offset at %s: expected at least %d, got %d", recPtr, s.hdr.Size(), pageOff))
	}
	s.skipCont = false

	// Only xl_tot_len is sure to be on this page; the rest of the header
	// may continue on the next one.
	pg := s.page
	file, tli := s.seg.name, s.hdr.TLI
	avail := pageSize - pageOff
	totLen := binary.LittleEndian.Uint32(pg[pageOff:])
	if totLen == 0 {
		if allZero(pg[pageOff:]) {
			return s.ce(file, recPtr, errorf(ErrZeroTail, "zeroed record header at %s", recPtr))
		}
		return s.ce(file, recPtr, errorf(ErrRecordLength, "invalid record length at %s: expected at least %d, got 0, and the rest of the page is not zeroed", recPtr, RecordHeaderSize))
	}
	var h recordHeader
	gotHeader := false
	if avail >= RecordHeaderSize {
		h.parse(pg[pageOff:])
		s.noteLink(&h, recPtr)
		if err := s.checkHeader(&h, recPtr); err != nil {
			return s.ce(file, recPtr, err)
		}
		gotHeader = true
	} else if totLen < RecordHeaderSize || totLen > MaxRecordSize {
		return s.ce(file, recPtr, errorf(ErrRecordLength, "invalid record length at %s: %d", recPtr, totLen))
	}

	var raw []byte
	var end walname.LSN
	var lean leanCheck
	if uint64(totLen) <= avail {
		raw = pg[pageOff : pageOff+uint64(totLen)]
		end = recPtr + walname.LSN(totLen)
	} else {
		// The buffer grows only with data that passed the xlp_rem_len
		// cross-check, so a garbage xl_tot_len cannot make it huge. A
		// single-segment scan cannot complete a record longer than the
		// rest of the segment: it checks the pages but keeps only the
		// header bytes.
		keep := s.src != nil || uint64(totLen) <= s.segSize-uint64(recPtr)%s.segSize
		asm := append(s.asm[:0], pg[pageOff:]...)
		// A scan needs the whole record only for the payloads it decodes
		// (XLOG and Transaction records): the others it checks without
		// copying them.
		leanOK := keep && s.cap != nil
		if gotHeader && leanOK && h.rmid > RmXact {
			lean.start(asm, totLen, s.lay, s.opts.BlockSize, &s.rec)
		}
		// A scan keeps what Chain needs of a record that may go on in
		// the next segment: from asm when it holds all bytes, else here.
		var part *spanBuilder
		if s.cap != nil && !keep {
			part = s.cap.startTail(s.dataToSegmentEnd(recPtr))
			part.add(pg[pageOff:])
		}
		got := avail
		for got < uint64(totLen) {
			pagePtr += walname.LSN(pageSize)
			if err := s.loadPage(pagePtr); err != nil {
				s.asm = asm
				if s.cap != nil && errors.Is(err, errNextSegment) {
					if part == nil {
						part = s.cap.startTail(uint64(len(asm)))
						part.add(asm)
					}
					// A record that can be no event needs only its front.
					front := len(asm) >= RecordHeaderSize && !s.lay.mayBeEvent(parseRecordHeader(asm))
					s.cap.tail = SegmentTail{Start: recPtr, TotLen: totLen, Part: part.part(front)}
				}
				return s.continuationErr(err, recPtr, pagePtr)
			}
			if s.hdr.Info&XLPFirstIsOverwriteContRecord != 0 {
				s.asm = asm
				s.abandoned = recPtr
				*recPtrp = pagePtr
				return errRestart
			}
			if s.hdr.Info&XLPFirstIsContRecord == 0 {
				s.asm = asm
				return s.ce(s.seg.name, pagePtr, errorf(ErrTornRecord, "there is no contrecord flag at %s: record at %s is incomplete", pagePtr, recPtr))
			}
			rem := uint64(s.hdr.RemLen)
			if rem == 0 || uint64(totLen) != got+rem {
				s.asm = asm
				return s.ce(s.seg.name, pagePtr, errorf(ErrContRecord, "invalid contrecord length %d (expected %d) at %s", rem, int64(totLen)-int64(got), pagePtr))
			}
			if keep && !lean.on && got == avail {
				// xl_tot_len passed the cross-check: reserve for it (up to
				// a bound, so that crafted input cannot force a huge
				// allocation before its data is seen).
				asm = slices.Grow(asm, int(min(uint64(totLen), maxPrealloc))-len(asm))
			}
			hs := uint64(s.hdr.Size())
			n := min(rem, pageSize-hs)
			if part != nil {
				part.add(s.page[hs : hs+n])
			}
			if lean.on {
				asm = lean.add(asm, s.page[hs:hs+n], totLen, s.lay, s.opts.BlockSize, &s.rec)
			} else if keep {
				asm = append(asm, s.page[hs:hs+n]...)
			} else if len(asm) < RecordHeaderSize {
				asm = append(asm, s.page[hs:hs+min(n, RecordHeaderSize)]...)
			}
			got += n
			end = pagePtr + walname.LSN(hs+n)
			if !gotHeader && got >= RecordHeaderSize {
				h.parse(asm)
				s.noteLink(&h, recPtr)
				if err := s.checkHeader(&h, recPtr); err != nil {
					s.asm = asm
					return s.ce(file, recPtr, err)
				}
				gotHeader = true
				if leanOK && h.rmid > RmXact {
					lean.start(asm, totLen, s.lay, s.opts.BlockSize, &s.rec)
				}
			}
		}
		s.asm = asm
		if !keep {
			return fmt.Errorf("internal error: record at %s of %d bytes ended inside its segment", recPtr, totLen)
		}
		raw = asm
	}

	if lean.on {
		if err := lean.finish(s.asm); err != nil {
			return s.ce(file, recPtr, err)
		}
	} else {
		if err := VerifyCRC(raw); err != nil {
			return s.ce(file, recPtr, err)
		}
		if err := decodeRecord(raw, s.lay, s.opts.BlockSize, &s.rec); err != nil {
			return s.ce(file, recPtr, err)
		}
	}
	next := walname.LSN(maxAlign(uint64(end)))
	if s.rec.RmID == RmXLOG && s.rec.Info&^XLRInfoMask == XLOGSwitch {
		// The switch record owns the rest of its segment.
		next = walname.LSN((uint64(next) + s.segSize - 1) / s.segSize * s.segSize)
	}
	s.rec.StartLSN, s.rec.EndLSN, s.rec.TLI = recPtr, next, tli
	s.rec.PrevEnd = s.lastEnd
	if s.rec.PrevEnd == 0 {
		s.rec.PrevEnd = derivedPrevEnd(recPtr, s.pageSize, s.segSize)
	}
	if overwritten != 0 {
		if err := checkOverwrite(&s.rec, overwritten); err != nil {
			return s.ce(file, recPtr, err)
		}
	}
	if s.cap != nil {
		s.cap.onRecord(&s.rec)
	}
	s.next, s.prev, s.havePrev, s.lastEnd = next, recPtr, true, next
	return nil
}

// dataToSegmentEnd counts the record bytes from at to the end of its
// segment, page headers excluded.
func (s *stream) dataToSegmentEnd(at walname.LSN) uint64 {
	pageEnd := (uint64(at)/s.pageSize + 1) * s.pageSize
	segEnd := (uint64(at)/s.segSize + 1) * s.segSize
	return pageEnd - uint64(at) + (segEnd-pageEnd)/s.pageSize*(s.pageSize-ShortPageHeaderSize)
}

// noteLink lets a scan remember the back-link of a record read before the
// first complete one, which it can only check for plausibility; Chain
// compares it with the record read before the segment.
func (s *stream) noteLink(h *recordHeader, recPtr walname.LSN) {
	if s.cap == nil || s.havePrev || h.totLen < RecordHeaderSize || h.totLen > MaxRecordSize || !s.lay.validRmgr(h.rmid) {
		return
	}
	s.cap.links = append(s.cap.links, RecordLink{LSN: recPtr, Prev: h.prev})
}

// derivedPrevEnd is the EndLSN of the record before the one at rec when
// nothing else is known: records follow each other at 8-byte alignment,
// except that one ending at a page boundary is followed by one after the
// next page header.
func derivedPrevEnd(rec walname.LSN, pageSize, segSize uint64) walname.LSN {
	off := uint64(rec) % pageSize
	page := uint64(rec) - off
	hs := uint64(ShortPageHeaderSize)
	if page%segSize == 0 {
		hs = LongPageHeaderSize
	}
	if off == hs {
		return walname.LSN(page)
	}
	return rec
}

// continuationErr classifies a failure to load the page a record continues
// on; recPtr is the record's start, 0 when it began before
// the read did.
func (s *stream) continuationErr(err error, recPtr, pagePtr walname.LSN) error {
	switch {
	case errors.Is(err, errNextSegment):
		s.partial = recPtr
	case errors.Is(err, ErrZeroTail):
		// Zeroes where the rest of a record should be: the record was
		// never completed.
		var ce *ContentError
		if errors.As(err, &ce) {
			what := "a continued record"
			if recPtr != 0 {
				what = "record at " + recPtr.String()
			}
			return &ContentError{File: ce.File, Offset: ce.Offset, LSN: ce.LSN,
				Err: errorf(ErrTornRecord, "%s is incomplete: the page at %s is zeroed", what, pagePtr)}
		}
	}
	return err
}

// checkOverwrite verifies that the record found after abandoning the one
// at overwritten is the XLOG_OVERWRITE_CONTRECORD naming it
// (VerifyOverwriteContrecord).
func checkOverwrite(rec *Record, overwritten walname.LSN) error {
	if rec.RmID != RmXLOG || rec.Info&^XLRInfoMask != XLOGOverwriteContrecord {
		return errorf(ErrOverwrite, "record at %s abandoned, but the page does not start with XLOG_OVERWRITE_CONTRECORD (found %s info %02X)",
			overwritten, rec.RmID, rec.Info)
	}
	if len(rec.MainData) < 8 {
		return errorf(ErrOverwrite, "XLOG_OVERWRITE_CONTRECORD with %d bytes of data", len(rec.MainData))
	}
	if got := walname.LSN(binary.LittleEndian.Uint64(rec.MainData)); got != overwritten {
		return errorf(ErrOverwrite, "mismatching overwritten LSN %s -> %s", overwritten, got)
	}
	return nil
}

// leanCheck applies VerifyCRC and decodeRecord's checks to a record that
// crosses pages without assembling it: the CRC is taken over the parts as
// they pass, and only the front of the record that holds the fragment
// headers is kept. The record's Raw and MainData are not set; scans use
// it for records whose payloads they do not decode.
type leanCheck struct {
	on   bool
	crc  uint32 // of the record's bytes after its header, so far
	done bool   // the fragment headers are decoded, with outcome err
	err  error
}

// start begins with the front asm of the record, which holds the header.
func (l *leanCheck) start(asm []byte, totLen uint32, lay *layout, blockSize uint32, rec *Record) {
	l.on, l.crc = true, crcUpdate(0, asm[RecordHeaderSize:])
	l.decode(asm, totLen, lay, blockSize, rec)
}

// add takes the next part p of the record, returning the front.
func (l *leanCheck) add(asm, p []byte, totLen uint32, lay *layout, blockSize uint32, rec *Record) []byte {
	l.crc = crcUpdate(l.crc, p)
	if !l.done {
		// The fragment headers go on in p.
		asm = append(asm, p...)
		l.decode(asm, totLen, lay, blockSize, rec)
	}
	return asm
}

// decode decodes the fragment headers from the front asm; decodeFragments
// reaches the same outcome from a front as from the whole record, unless
// it needs more of it.
func (l *leanCheck) decode(asm []byte, totLen uint32, lay *layout, blockSize uint32, rec *Record) {
	_, l.err = decodeFragments(asm, int(totLen), lay, blockSize, rec)
	l.done = l.err != errNeedBytes
}

// finish completes the CRC with the header in asm and reports the first
// problem, in VerifyCRC's then decodeRecord's order.
func (l *leanCheck) finish(asm []byte) error {
	c := crcUpdate(l.crc, asm[:20])
	if want := binary.LittleEndian.Uint32(asm[20:]); c != want {
		return errorf(ErrChecksum, "record CRC mismatch: got %08x, want %08x", c, want)
	}
	if !l.done {
		// Unreachable: with all its bytes a record never needs more.
		return errorf(ErrRecordFormat, "record with invalid length: fragment headers run past xl_tot_len")
	}
	return l.err
}
