package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"iter"
	"slices"
	"sync"

	"github.com/walaudit/walaudit/walname"
)

// SegmentSummary describes one segment file scanned on its own.
type SegmentSummary struct {
	File        string              // the name passed to ScanSegment
	TLI         walname.TimelineID  // xlp_tli of the first page
	SegNo       walname.SegNo       // from the file name, else from the first page address
	SystemID    uint64              // database system identifier (long header)
	SegmentSize walname.SegmentSize // xlp_seg_size; 0 if no valid long header was found
	PageSize    uint32              // xlp_xlog_blcksz
	Magic       uint16              // xlp_magic
	Major       int                 // PostgreSQL major version, from Magic
	Size        int64               // bytes in the file

	// ContinuedFrom is set when the segment starts with the tail of a
	// record begun in an earlier segment; ContinuationLen is the first
	// page's xlp_rem_len.
	ContinuedFrom   bool
	ContinuationLen uint32

	FirstRecord walname.LSN // first record starting in the segment, 0 if none
	LastRecord  walname.LSN // last complete record, 0 if none
	Records     int         // complete records starting in the segment
	// RecordsByRmgr counts the records per resource manager name
	// ("Heap", "Transaction", ...).
	RecordsByRmgr map[string]int
	// Events are the records that matter for recovery targets, in order.
	Events []Event
	// Switch is set when the segment ends with an XLOG_SWITCH record.
	Switch bool
	// ContinuesIntoNext is set when the segment's last record goes on in
	// the next segment (not an error); PartialRecord is its start, 0 when
	// it began in an earlier segment.
	ContinuesIntoNext bool
	PartialRecord     walname.LSN
	// End is where the record after the last complete one starts: the end
	// of valid WAL if the segment is the last one read.
	End walname.LSN
	// Stop is why the scan ended before the segment's last record: nil
	// when the segment was read to its end, an end-of-WAL error
	// ([IsEndOfWAL]) for zeroed space, or the first invalid data (also in
	// Problems).
	Stop *ContentError
	// Problems are the findings: the invalid data the scan stopped at,
	// payloads that do not decode, and a wrong file size.
	Problems []ContentError

	// The fields below let [Chain] and [ChainEnd] continue a read across
	// the segment's boundaries without the file (format version
	// [SummaryVersion]).

	// Header is the file's first bytes, up to the 40 of the long page
	// header: a reader entering the segment validates them against what
	// it learned from earlier segments.
	Header []byte
	// ZeroPrefix counts the zero bytes the file starts with, up to 64 KiB.
	ZeroPrefix uint32
	// BlockSize is the BLCKSZ full-page images were checked against, and
	// ScanSystemID the system identifier the scan was told to expect (0:
	// learned).
	BlockSize    uint32
	ScanSystemID uint64
	// Head describes the record continued from the previous segment.
	Head SegmentHead
	// Tail describes the record that continues in the next segment, when
	// it starts in this one.
	Tail SegmentTail
	// Pages is how many pages the scan validated, from the first on;
	// PageTLIs gives their timelines (an entry where it changes).
	Pages    int
	PageTLIs []PageTLI
	// Starts are the starts of the complete records ([RecordStarts]).
	Starts RecordStarts
	// Links are the back-links of the records read before the first
	// complete one (a scan can check them only for plausibility).
	Links []RecordLink
	// Abandoned are records inside the segment given up at an
	// XLP_FIRST_IS_OVERWRITE_CONTRECORD page.
	Abandoned []walname.LSN
	// FirstOverwritten is the record named by the first complete record
	// when that is an XLOG_OVERWRITE_CONTRECORD, else 0.
	FirstOverwritten walname.LSN
}

// StartLSN is the segment's first byte.
func (s *SegmentSummary) StartLSN() walname.LSN {
	return walname.LSN(uint64(s.SegNo) * uint64(s.SegmentSize))
}

// LastPageTLI is the timeline of the last page the scan validated, 0 if
// none.
func (s *SegmentSummary) LastPageTLI() walname.TimelineID {
	if len(s.PageTLIs) == 0 {
		return 0
	}
	return s.PageTLIs[len(s.PageTLIs)-1].TLI
}

// RecordStarts yields the starts of the segment's complete records in
// order.
func (s *SegmentSummary) RecordStarts() iter.Seq[walname.LSN] {
	return s.Starts.All(s.StartLSN())
}

// IsRecordStart reports whether a complete record of the segment starts
// at lsn.
func (s *SegmentSummary) IsRecordStart(lsn walname.LSN) bool {
	for at := range s.RecordStarts() {
		if at >= lsn {
			return at == lsn
		}
	}
	return false
}

// RecordAtOrAfter returns the first record of the segment starting at or
// after lsn: a complete one, or the one continuing in the next segment.
func (s *SegmentSummary) RecordAtOrAfter(lsn walname.LSN) (walname.LSN, bool) {
	for at := range s.RecordStarts() {
		if at >= lsn {
			return at, true
		}
	}
	if s.Tail.Start >= lsn {
		return s.Tail.Start, s.Tail.Start != 0
	}
	return 0, false
}

// ScanSegment validates one segment file by itself, without its
// predecessor: it skips a continued record at the start, reads every
// record the way recovery would, stops at the first invalid one (as
// PostgreSQL does) and reports how far it got. A record continuing into
// the next segment is noted, not an error. The file must be exactly the
// segment size recorded in its long header.
//
// name is the file's name: when it parses as a segment name, the page
// addresses must match its segment number and page timelines must not
// exceed its timeline. Content problems are reported in the summary; the
// error is for failing reads and for WAL of an unsupported version (the
// summary is returned with it then, for its Header, Size and Stop).
//
// Summaries are made to be kept: each depends only on the file and opts,
// and [WalkChain] replays a [Reader] over a series of them. Scan for that
// with opts.SegmentSize set and nothing else: a chain applies the system
// identifier and timeline rules of its own options.
func ScanSegment(r io.Reader, name string, opts Options) (*SegmentSummary, error) {
	return scanSegment(r, nil, name, opts)
}

// ScanSegmentBytes is [ScanSegment] of a file held in memory (read whole,
// or mapped): the same summary as ScanSegment(bytes.NewReader(data), name,
// opts), without copying the bytes. data is only read, and the summary
// does not refer to it.
func ScanSegmentBytes(data []byte, name string, opts Options) (*SegmentSummary, error) {
	if data == nil {
		data = []byte{} // nil means "read from r" to scanSegment
	}
	return scanSegment(nil, data, name, opts)
}

func scanSegment(r io.Reader, data []byte, name string, opts Options) (*SegmentSummary, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	bufs := scanBufPool.Get().(*scanBufs)
	bufs.cap.reset()
	s := &stream{
		ctx:    context.Background(),
		opts:   opts,
		sysID:  opts.SystemID,
		buf:    bufs.chunk,
		asm:    bufs.asm,
		events: bufs.events[:0],
		cap:    &bufs.cap,
	}
	sum, err := s.scan(r, data, name)
	if cap(s.asm) <= maxPooledAsm {
		bufs.asm, bufs.events = s.asm[:0], s.events[:0]
		clear(bufs.events[:cap(bufs.events)]) // drop references to names and parameters
		scanBufPool.Put(bufs)
	}
	return sum, err
}

// scanBufs are the buffers of one scan, reused by later scans: a scan of
// many segments then allocates little more than its summaries.
type scanBufs struct {
	chunk  []byte
	asm    []byte
	events []Event
	cap    capture
}

// maxPooledAsm bounds the reassembly buffers kept for reuse.
const maxPooledAsm = 1 << 20

var scanBufPool = sync.Pool{New: func() any { return &scanBufs{chunk: make([]byte, chunkSize)} }}

func (s *stream) scan(r io.Reader, data []byte, name string) (*SegmentSummary, error) {
	sum := &SegmentSummary{File: name}
	s.seg = newSegFile(r, name, 0, s.buf)
	s.seg.data = data
	s.segTLI = nameTLI(name)

	fail := func(err error) (*SegmentSummary, error) {
		var ce *ContentError
		if !errors.As(err, &ce) {
			return nil, err
		}
		sum.Stop = ce
		unsupported := errors.Is(err, ErrUnsupportedVersion)
		if !IsEndOfWAL(ce) && !unsupported {
			sum.Problems = append(sum.Problems, *ce)
		}
		switch {
		case errors.Is(ce, ErrTruncated):
		case sum.SegmentSize == 0 || unsupported:
			// Size unknown or irrelevant: just count the bytes.
			for !s.seg.eof {
				if err := s.seg.fill(); err != nil {
					return nil, err
				}
			}
		default:
			if err := s.seg.finish(s.segSize); err != nil && !errors.As(err, &ce) {
				return nil, err
			} else if err != nil {
				sum.Problems = append(sum.Problems, *ce)
			}
		}
		sum.Size = s.seg.read
		s.fillChain(sum)
		if unsupported {
			return sum, err
		}
		return sum, nil
	}

	start, known, err := s.scanStart(sum)
	if err != nil {
		return fail(err)
	}
	if known {
		sum.SegmentSize = walname.SegmentSize(s.segSize)
	}
	s.cap.segStart, s.cap.lastStart = start, start
	if err := s.loadFirstPage(start); err != nil {
		return fail(err)
	}
	sum.TLI, sum.SystemID, sum.PageSize = s.hdr.TLI, s.sysID, uint32(s.pageSize)
	sum.Magic, sum.Major = s.lay.magic, s.lay.major
	if s.hdr.Info&XLPFirstIsContRecord != 0 {
		sum.ContinuedFrom, sum.ContinuationLen = true, s.hdr.RemLen
	}

	var counts [256]int
	s.next, s.skipCont = start, true
	var stopErr error
	for {
		err := s.readRecord()
		if err != nil {
			stopErr = err
			break
		}
		rec := &s.rec
		if sum.Records == 0 {
			sum.FirstRecord = rec.StartLSN
		}
		sum.Records++
		sum.LastRecord = rec.StartLSN
		counts[rec.RmID]++
		if rec.RmID > RmXact {
			continue // the only rmgrs with events
		}
		ev, ok, err := eventOf(rec, s.lay)
		if err != nil {
			sum.Problems = append(sum.Problems, ContentError{File: name, Offset: int64(uint64(rec.StartLSN) % s.segSize), LSN: rec.StartLSN, Err: err})
		} else if ok {
			s.events = append(s.events, ev)
			sum.Switch = ev.Kind == EventSwitch
		}
	}
	// Collected in a reused buffer, copied once at its final size.
	sum.Events = cloneOrNil(s.events)
	sum.RecordsByRmgr = make(map[string]int)
	for id, n := range counts {
		if n > 0 {
			sum.RecordsByRmgr[RmgrID(id).String()] = n
		}
	}
	sum.End = s.next
	if errors.Is(stopErr, errNextSegment) {
		if s.partial != 0 {
			sum.ContinuesIntoNext, sum.PartialRecord = true, s.partial
		} else if s.cap.head.State == HeadContinues {
			// The continued record fills the whole segment.
			sum.ContinuesIntoNext = true
		}
		if err := s.seg.finish(s.segSize); err != nil {
			var ce *ContentError
			if !errors.As(err, &ce) {
				return nil, err
			}
			sum.Problems = append(sum.Problems, *ce)
		}
		sum.Size = s.seg.read
		s.fillChain(sum)
		return sum, nil
	}
	return fail(stopErr)
}

// cloneOrNil copies s, nil when empty: whether a pooled scan buffer was
// fresh (nil) or reused (empty) must not show in a summary.
func cloneOrNil[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// fillChain copies what the scan kept for Chain into the summary.
func (s *stream) fillChain(sum *SegmentSummary) {
	c := s.cap
	sum.BlockSize = s.opts.BlockSize
	if sum.BlockSize == 0 {
		sum.BlockSize = DefaultBlockSize
	}
	sum.ScanSystemID = s.opts.SystemID
	sum.Head = c.head
	if c.head.State != HeadNone {
		sum.Head.Part = c.headPart.part(false)
	}
	if s.partial != 0 {
		sum.Tail = c.tail
	}
	sum.Pages = c.pages
	sum.PageTLIs = cloneOrNil(c.tlis)
	sum.Starts = cloneOrNil(c.starts)
	sum.Links = cloneOrNil(c.links)
	sum.Abandoned = cloneOrNil(c.abandoned)
	sum.FirstOverwritten = c.overwritten
}

// scanStart learns the segment size from the first page and works out
// which segment the file holds: the one its name says, or else the one its
// first page address says.
func (s *stream) scanStart(sum *SegmentSummary) (start walname.LSN, known bool, err error) {
	f := s.seg
	b, err := f.page(0, LongPageHeaderSize)
	if errors.Is(err, errShortFile) {
		sum.Header = slices.Clone(f.buf[:f.bufLen])
		sum.ZeroPrefix = uint32(zeroPrefix(f.buf[:f.bufLen]))
		return 0, false, &ContentError{File: f.name, Offset: f.read,
			Err: errorf(ErrTruncated, "segment file is truncated: %d bytes, too short for a page header", f.read)}
	} else if err != nil {
		return 0, false, err
	}
	h, _ := DecodePageHeader(b)
	sum.Header = slices.Clone(b)
	sum.ZeroPrefix = uint32(zeroPrefix(f.buf[:f.bufLen]))
	size := s.opts.SegmentSize
	if h.IsLong() && h.Magic != 0 {
		hs := walname.SegmentSize(h.SegSize)
		if err := hs.Validate(); err != nil {
			if size == 0 {
				return 0, false, &ContentError{File: f.name, Err: errorf(ErrSegmentSize, "invalid segment size %d in page header", h.SegSize)}
			}
		} else if size == 0 {
			size = hs
		}
	}
	known = size != 0
	if !known {
		// No usable long header: loadFirstPage with a nominal size says
		// what is wrong with the page.
		size = walname.MinSegmentSize
	}
	s.segSize = uint64(size)

	segno := walname.SegNo(uint64(h.PageAddr) / s.segSize)
	if n, err := walname.Parse(f.name); err == nil && (n.Kind == walname.KindSegment || n.Kind == walname.KindPartial) {
		if no, err := n.SegNo(size); err == nil {
			segno = no
		}
	}
	f.segno = segno
	sum.SegNo = segno
	return walname.LSN(uint64(segno) * s.segSize), known, nil
}

// zeroPrefix counts the zero bytes b starts with.
func zeroPrefix(b []byte) int {
	n := 0
	for n+8 <= len(b) && binary.LittleEndian.Uint64(b[n:]) == 0 {
		n += 8
	}
	for n < len(b) && b[n] == 0 {
		n++
	}
	return n
}
