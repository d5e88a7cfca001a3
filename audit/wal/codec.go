package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/walaudit/walaudit/walname"
)

// SummaryVersion is the version of [SegmentSummary]'s content and of its
// binary encoding. It changes whenever either does (or what ScanSegment
// records changes meaning), so that caches keyed by it re-read the files.
const SummaryVersion = 1

// summaryMagic starts every encoded summary.
const summaryMagic = "WSUM"

// ErrSummaryEncoding: bytes that are not an encoded summary of this
// version.
var ErrSummaryEncoding = errors.New("walaudit/wal: invalid encoded segment summary")

// errorKinds numbers the sentinels for the encoding of ContentError
// causes. Append only: the index is part of the format.
var errorKinds = []error{
	nil, ErrUnsupportedVersion, ErrBadMagic, ErrPageFlags, ErrBadPageAddr, ErrSysID,
	ErrSegmentSize, ErrPageSize, ErrTimeline, ErrStartLSN, ErrContRecord, ErrTornRecord,
	ErrRecordLength, ErrRmID, ErrPrevLink, ErrChecksum, ErrRecordFormat, ErrOverwrite,
	ErrPayload, ErrTruncated, ErrTrailingData, ErrZeroTail, ErrSegmentMissing,
}

// MarshalBinary encodes the summary compactly: varints, positions of
// events as distances, and a leading magic and [SummaryVersion]. Causes
// of content errors keep their sentinel (errors.Is still works after
// decoding) and their message.
func (s *SegmentSummary) MarshalBinary() ([]byte, error) {
	e := encoder{b: make([]byte, 0, 256+len(s.Starts)+16*len(s.Events)+len(s.Head.Part.Prefix)+len(s.Head.Part.Suffix)+len(s.Tail.Part.Prefix)+len(s.Tail.Part.Suffix))}
	e.b = append(e.b, summaryMagic...)
	e.u(SummaryVersion)
	e.str(s.File)
	e.u(uint64(s.TLI))
	e.u(uint64(s.SegNo))
	e.u(s.SystemID)
	e.u(uint64(s.SegmentSize))
	e.u(uint64(s.PageSize))
	e.u(uint64(s.Magic))
	e.i(int64(s.Major))
	e.i(s.Size)
	e.bool(s.ContinuedFrom)
	e.u(uint64(s.ContinuationLen))
	e.u(uint64(s.FirstRecord))
	e.u(uint64(s.LastRecord))
	e.i(int64(s.Records))
	e.u(uint64(len(s.RecordsByRmgr)))
	for _, id := range rmgrOrder(s.RecordsByRmgr) {
		e.str(id)
		e.i(int64(s.RecordsByRmgr[id]))
	}
	e.u(uint64(len(s.Events)))
	prev := walname.LSN(0)
	for i := range s.Events {
		e.event(&s.Events[i], prev)
		prev = s.Events[i].LSN
	}
	e.bool(s.Switch)
	e.bool(s.ContinuesIntoNext)
	e.u(uint64(s.PartialRecord))
	e.u(uint64(s.End))
	e.bool(s.Stop != nil)
	if s.Stop != nil {
		e.contentErr(s.Stop)
	}
	e.u(uint64(len(s.Problems)))
	for i := range s.Problems {
		e.contentErr(&s.Problems[i])
	}
	e.bytes(s.Header)
	e.u(uint64(s.ZeroPrefix))
	e.u(uint64(s.BlockSize))
	e.u(s.ScanSystemID)
	e.u(uint64(s.Head.State))
	e.u(uint64(s.Head.RemLen))
	e.u(uint64(s.Head.End))
	e.u(uint64(s.Head.Abandoned))
	e.part(&s.Head.Part)
	e.u(uint64(s.Tail.Start))
	e.u(uint64(s.Tail.TotLen))
	e.part(&s.Tail.Part)
	e.i(int64(s.Pages))
	e.u(uint64(len(s.PageTLIs)))
	for _, p := range s.PageTLIs {
		e.u(uint64(p.Page))
		e.u(uint64(p.TLI))
	}
	e.bytes(s.Starts)
	e.u(uint64(len(s.Links)))
	for _, l := range s.Links {
		e.u(uint64(l.LSN))
		e.u(uint64(l.Prev))
	}
	e.u(uint64(len(s.Abandoned)))
	for _, a := range s.Abandoned {
		e.u(uint64(a))
	}
	e.u(uint64(s.FirstOverwritten))
	return e.b, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded. Bytes of another
// version or damaged ones give an error wrapping [ErrSummaryEncoding]
// (never a panic), so that a cache can treat them as a miss.
func (s *SegmentSummary) UnmarshalBinary(b []byte) (err error) {
	if len(b) < len(summaryMagic) || string(b[:len(summaryMagic)]) != summaryMagic {
		return fmt.Errorf("%w: no summary magic", ErrSummaryEncoding)
	}
	// One copy of the input backs every byte slice of the summary
	// (Header, span parts, Starts), instead of one allocation each: a
	// warm check decodes thousands of summaries.
	d := decoder{b: bytes.Clone(b[len(summaryMagic):])}
	if v := d.u(); v != SummaryVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrSummaryEncoding, v, SummaryVersion)
	}
	var o SegmentSummary
	o.File = d.str()
	o.TLI = walname.TimelineID(d.u32())
	o.SegNo = walname.SegNo(d.u())
	o.SystemID = d.u()
	o.SegmentSize = walname.SegmentSize(d.u32())
	o.PageSize = d.u32()
	o.Magic = uint16(d.uMax(math.MaxUint16))
	o.Major = int(d.iMax(1 << 20))
	o.Size = d.i()
	o.ContinuedFrom = d.bool()
	o.ContinuationLen = d.u32()
	o.FirstRecord = walname.LSN(d.u())
	o.LastRecord = walname.LSN(d.u())
	o.Records = int(d.iMax(math.MaxInt32))
	if n := d.count(2); n > 0 {
		o.RecordsByRmgr = make(map[string]int, n)
		for range n {
			k := d.rmgrName()
			o.RecordsByRmgr[k] = int(d.iMax(math.MaxInt32))
		}
	} else if !d.bad {
		o.RecordsByRmgr = map[string]int{}
	}
	if n := d.count(4); n > 0 {
		o.Events = make([]Event, n)
		prev := walname.LSN(0)
		for i := range o.Events {
			d.event(&o.Events[i], prev)
			prev = o.Events[i].LSN
		}
	}
	o.Switch = d.bool()
	o.ContinuesIntoNext = d.bool()
	o.PartialRecord = walname.LSN(d.u())
	o.End = walname.LSN(d.u())
	if d.bool() {
		o.Stop = new(ContentError)
		d.contentErr(o.Stop)
	}
	if n := d.count(4); n > 0 {
		o.Problems = make([]ContentError, n)
		for i := range o.Problems {
			d.contentErr(&o.Problems[i])
		}
	}
	o.Header = d.bytes()
	o.ZeroPrefix = d.u32()
	o.BlockSize = d.u32()
	o.ScanSystemID = d.u()
	o.Head.State = HeadState(d.uMax(uint64(HeadBroken)))
	o.Head.RemLen = d.u32()
	o.Head.End = walname.LSN(d.u())
	o.Head.Abandoned = walname.LSN(d.u())
	d.part(&o.Head.Part)
	o.Tail.Start = walname.LSN(d.u())
	o.Tail.TotLen = d.u32()
	d.part(&o.Tail.Part)
	o.Pages = int(d.iMax(math.MaxInt32))
	if n := d.count(2); n > 0 {
		o.PageTLIs = make([]PageTLI, n)
		for i := range o.PageTLIs {
			o.PageTLIs[i] = PageTLI{Page: d.u32(), TLI: walname.TimelineID(d.u32())}
		}
	}
	o.Starts = d.bytes()
	if n := d.count(2); n > 0 {
		o.Links = make([]RecordLink, n)
		for i := range o.Links {
			o.Links[i] = RecordLink{LSN: walname.LSN(d.u()), Prev: walname.LSN(d.u())}
		}
	}
	if n := d.count(1); n > 0 {
		o.Abandoned = make([]walname.LSN, n)
		for i := range o.Abandoned {
			o.Abandoned[i] = walname.LSN(d.u())
		}
	}
	o.FirstOverwritten = walname.LSN(d.u())
	switch {
	case d.bad:
		return fmt.Errorf("%w: %s", ErrSummaryEncoding, d.why)
	case len(d.b) != 0:
		return fmt.Errorf("%w: %d bytes after the summary", ErrSummaryEncoding, len(d.b))
	}
	*s = o
	return nil
}

// rmgrOrder lists the keys in a fixed order, so that equal summaries
// encode to equal bytes.
func rmgrOrder(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

type encoder struct{ b []byte }

func (e *encoder) u(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) i(v int64)  { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *encoder) bytes(v []byte) { e.u(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) str(v string)   { e.u(uint64(len(v))); e.b = append(e.b, v...) }

func (e *encoder) part(p *SpanPart) {
	e.u(uint64(p.Len))
	e.b = binary.LittleEndian.AppendUint32(e.b, p.CRC)
	e.bytes(p.Prefix)
	e.bytes(p.Suffix)
}

func (e *encoder) time(t time.Time) {
	e.bool(!t.IsZero())
	if !t.IsZero() {
		e.i(t.Unix())
		e.u(uint64(t.Nanosecond()))
	}
}

// event encodes positions as distances: from the previous event's start,
// to the record's end, back to the previous record's end.
func (e *encoder) event(ev *Event, prev walname.LSN) {
	e.u(uint64(ev.Kind))
	e.i(int64(ev.LSN - prev))
	e.i(int64(ev.EndLSN - ev.LSN))
	e.i(int64(ev.LSN - ev.PrevEnd))
	e.u(uint64(ev.XID))
	e.time(ev.Time)
	e.str(ev.Name)
	e.u(uint64(ev.TLI))
	e.u(uint64(ev.PrevTLI))
	e.u(uint64(ev.Redo))
	e.u(uint64(ev.BackupStart))
	e.u(uint64(ev.Overwritten))
	e.bool(ev.Params != nil)
	if p := ev.Params; p != nil {
		for _, v := range []int32{p.MaxConnections, p.MaxWorkerProcesses, p.MaxWalSenders, p.MaxPreparedXacts, p.MaxLocksPerXact, p.WalLevel} {
			e.i(int64(v))
		}
		e.bool(p.WalLogHints)
		e.bool(p.TrackCommitTimestamp)
	}
	e.i(int64(ev.WalLevel))
}

func (e *encoder) contentErr(ce *ContentError) {
	e.str(ce.File)
	e.i(ce.Offset)
	e.u(uint64(ce.LSN))
	kind := 0
	for i, k := range errorKinds[1:] {
		if errors.Is(ce.Err, k) {
			kind = i + 1
			break
		}
	}
	e.u(uint64(kind))
	msg := ""
	if ce.Err != nil {
		msg = ce.Err.Error()
	}
	e.str(msg)
}

// decoder reads with a sticky error: after the first problem every read
// returns zero, and nothing is allocated beyond what the input can hold.
type decoder struct {
	b   []byte
	bad bool
	why string
}

func (d *decoder) fail(why string) {
	if !d.bad {
		d.bad, d.why = true, why
	}
	d.b = nil
}

func (d *decoder) u() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) i() int64 {
	if d.bad {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uMax(max uint64) uint64 {
	v := d.u()
	if v > max {
		d.fail(fmt.Sprintf("value %d out of range", v))
		return 0
	}
	return v
}

func (d *decoder) iMax(max int64) int64 {
	v := d.i()
	if v > max || v < -max {
		d.fail(fmt.Sprintf("value %d out of range", v))
		return 0
	}
	return v
}

func (d *decoder) u32() uint32 { return uint32(d.uMax(math.MaxUint32)) }

func (d *decoder) bool() bool {
	if d.bad || len(d.b) == 0 {
		d.fail("truncated")
		return false
	}
	v := d.b[0]
	d.b = d.b[1:]
	if v > 1 {
		d.fail("bad bool")
	}
	return v == 1
}

// count reads a length of items that take at least min bytes each.
func (d *decoder) count(min int) int {
	n := d.u()
	if n > uint64(len(d.b)/min) {
		d.fail("count exceeds the data")
		return 0
	}
	return int(n)
}

func (d *decoder) raw(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail("truncated")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// bytes returns a slice of the decoder's own copy of the input (capped,
// so that an append reallocates), nil when empty.
func (d *decoder) bytes() []byte {
	v := d.raw(d.u())
	if len(v) == 0 {
		return nil
	}
	return v
}

// rmgrName reads a resource manager name, sharing the built-in names'
// strings rather than allocating one per summary.
func (d *decoder) rmgrName() string {
	v := d.raw(d.u())
	for _, n := range rmgrNames {
		if string(v) == n {
			return n
		}
	}
	return string(v)
}

func (d *decoder) str() string { return string(d.raw(d.u())) }

func (d *decoder) part(p *SpanPart) {
	p.Len = d.u32()
	if c := d.raw(4); len(c) == 4 {
		p.CRC = binary.LittleEndian.Uint32(c)
	}
	p.Prefix = d.bytes()
	p.Suffix = d.bytes()
}

func (d *decoder) time() time.Time {
	if !d.bool() {
		return time.Time{}
	}
	sec := d.i()
	nsec := d.uMax(999999999)
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) event(ev *Event, prev walname.LSN) {
	ev.Kind = EventKind(d.uMax(255))
	ev.LSN = prev + walname.LSN(d.i())
	ev.EndLSN = ev.LSN + walname.LSN(d.i())
	ev.PrevEnd = ev.LSN - walname.LSN(d.i())
	ev.XID = d.u32()
	ev.Time = d.time()
	ev.Name = d.str()
	ev.TLI = walname.TimelineID(d.u32())
	ev.PrevTLI = walname.TimelineID(d.u32())
	ev.Redo = walname.LSN(d.u())
	ev.BackupStart = walname.LSN(d.u())
	ev.Overwritten = walname.LSN(d.u())
	if d.bool() {
		var p ParameterChange
		for _, f := range []*int32{&p.MaxConnections, &p.MaxWorkerProcesses, &p.MaxWalSenders, &p.MaxPreparedXacts, &p.MaxLocksPerXact, &p.WalLevel} {
			*f = int32(d.iMax(math.MaxInt32 + 1))
		}
		p.WalLogHints = d.bool()
		p.TrackCommitTimestamp = d.bool()
		ev.Params = &p
	}
	ev.WalLevel = int32(d.iMax(math.MaxInt32 + 1))
}

func (d *decoder) contentErr(ce *ContentError) {
	ce.File = d.str()
	ce.Offset = d.i()
	ce.LSN = walname.LSN(d.u())
	kind := d.uMax(uint64(len(errorKinds) - 1))
	msg := d.str()
	if k := errorKinds[kind]; k != nil {
		ce.Err = &detailError{kind: k, msg: msg}
	} else {
		ce.Err = errors.New(msg)
	}
}
