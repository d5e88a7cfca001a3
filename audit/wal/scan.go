package wal

import (
	"context"
	"errors"
	"io"
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
// error is for failing reads and for WAL of an unsupported version.
func ScanSegment(r io.Reader, name string, opts Options) (*SegmentSummary, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	bufs := scanBufPool.Get().(*scanBufs)
	s := &stream{
		ctx:    context.Background(),
		opts:   opts,
		sysID:  opts.SystemID,
		buf:    bufs.chunk,
		asm:    bufs.asm,
		events: bufs.events[:0],
	}
	sum, err := s.scan(r, name)
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
}

// maxPooledAsm bounds the reassembly buffers kept for reuse.
const maxPooledAsm = 1 << 20

var scanBufPool = sync.Pool{New: func() any { return &scanBufs{chunk: make([]byte, chunkSize)} }}

func (s *stream) scan(r io.Reader, name string) (*SegmentSummary, error) {
	sum := &SegmentSummary{File: name}
	s.seg = newSegFile(r, name, 0, s.buf)
	s.segTLI = nameTLI(name)

	fail := func(err error) (*SegmentSummary, error) {
		var ce *ContentError
		if !errors.As(err, &ce) {
			return nil, err
		}
		if errors.Is(err, ErrUnsupportedVersion) {
			return sum, err
		}
		sum.Stop = ce
		if !IsEndOfWAL(ce) {
			sum.Problems = append(sum.Problems, *ce)
		}
		switch {
		case errors.Is(ce, ErrTruncated):
		case sum.SegmentSize == 0:
			// Size unknown: just count the bytes.
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
		return sum, nil
	}

	start, known, err := s.scanStart(sum)
	if err != nil {
		return fail(err)
	}
	if known {
		sum.SegmentSize = walname.SegmentSize(s.segSize)
	}
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
	sum.Events = slices.Clone(s.events)
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
		} else if sum.Records == 0 && sum.ContinuedFrom {
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
		return sum, nil
	}
	return fail(stopErr)
}

// scanStart learns the segment size from the first page and works out
// which segment the file holds: the one its name says, or else the one its
// first page address says.
func (s *stream) scanStart(sum *SegmentSummary) (start walname.LSN, known bool, err error) {
	f := s.seg
	b, err := f.page(0, LongPageHeaderSize)
	if errors.Is(err, errShortFile) {
		return 0, false, &ContentError{File: f.name, Offset: f.read,
			Err: errorf(ErrTruncated, "segment file is truncated: %d bytes, too short for a page header", f.read)}
	} else if err != nil {
		return 0, false, err
	}
	h, _ := DecodePageHeader(b)
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
