package wal_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/audit/wal/internal/walfixture"
	"github.com/walaudit/walaudit/walname"
)

// codecSamples are summaries of every shape: the real segments, and
// synthetic ones with long continuations, events of all payloads,
// problems and stops.
func codecSamples(t testing.TB) []*wal.SegmentSummary {
	var out []*wal.SegmentSummary
	add := func(data []byte, name string) {
		sum, err := wal.ScanSegment(bytes.NewReader(data), name, wal.Options{})
		if err != nil && !errors.Is(err, wal.ErrUnsupportedVersion) {
			t.Fatal(err)
		}
		out = append(out, sum)
	}
	for _, s := range realSegments(t) {
		add(s.data, s.name)
	}
	w := walfixture.New(walfixture.Config{})
	w.Append(mainRec(21, 0, 1, 100, 'a'))
	w.Append(walfixture.Rec{RmID: 0, Info: wal.XLOGParameterChange, Body: walfixture.MainData(le(int32(100), int32(8), int32(10), int32(5), int32(64), int32(2), uint8(1), uint8(0), uint16(0)))})
	w.Append(walfixture.Rec{RmID: 0, Info: wal.XLOGCheckpointOnline, Body: walfixture.MainData(checkpointData(0))})
	w.Append(walfixture.Rec{RmID: 1, Info: wal.XactOpCommit, XID: 5, Body: walfixture.MainData([]byte{1})}) // undecodable payload
	for w.Pos() < 0x200000-3000 {
		w.Append(walfixture.Noop(4000))
	}
	w.Append(mainRec(21, 0, 2, 1200000, 'b')) // through segment 2 into 3
	w.Append(mainRec(21, 0, 3, 100000, 'c'))
	for i, seg := range w.Segments() {
		add(seg, walname.SegmentName(1, walname.SegNo(1+i), walname.MinSegmentSize))
	}
	bad := w.Segment(1)
	bad[0x200] ^= 1
	add(bad[:700000], "000000010000000000000001")
	add(make([]byte, 100), "000000010000000000000009")
	v12 := w.Segment(1)
	v12[0], v12[1] = 0x01, 0xD1
	add(v12, "000000010000000000000001")
	return out
}

// sameSummary compares two summaries; causes of content errors compare by
// class and message.
func sameSummary(t *testing.T, a, b *wal.SegmentSummary) {
	t.Helper()
	ce := func(x *wal.ContentError) string {
		if x == nil {
			return "nil"
		}
		return errClass(x) + "|" + x.Error()
	}
	if ce(a.Stop) != ce(b.Stop) || len(a.Problems) != len(b.Problems) {
		t.Errorf("%s: stop %s / %s, %d / %d problems", a.File, ce(a.Stop), ce(b.Stop), len(a.Problems), len(b.Problems))
	}
	for i := range min(len(a.Problems), len(b.Problems)) {
		if x, y := ce(&a.Problems[i]), ce(&b.Problems[i]); x != y {
			t.Errorf("%s: problem %d: %s / %s", a.File, i, x, y)
		}
	}
	x, y := normalize(*a), normalize(*b)
	if !reflect.DeepEqual(x, y) {
		t.Errorf("%s: decoded summary differs:\n%+v\n%+v", a.File, x, y)
	}
}

func TestSummaryRoundTrip(t *testing.T) {
	for _, sum := range codecSamples(t) {
		b, err := sum.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back wal.SegmentSummary
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: %v", sum.File, err)
		}
		sameSummary(t, sum, &back)
		b2, _ := back.MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Errorf("%s: encoding is not stable", sum.File)
		}
		// Damaged bytes are an error, never a panic or a huge allocation.
		for i := 0; i < len(b); i += 1 + len(b)/300 {
			var s wal.SegmentSummary
			if err := s.UnmarshalBinary(b[:i]); !errors.Is(err, wal.ErrSummaryEncoding) {
				t.Fatalf("%s: truncated to %d bytes: %v", sum.File, i, err)
			}
			d := bytes.Clone(b)
			d[i] ^= 0xA5
			_ = s.UnmarshalBinary(d)
		}
	}
	var s wal.SegmentSummary
	if err := s.UnmarshalBinary([]byte("WSUM\x63")); !errors.Is(err, wal.ErrSummaryEncoding) {
		t.Errorf("another version: %v", err)
	}
}

// TestSummarySizes reports what summaries cost in a cache.
func TestSummarySizes(t *testing.T) {
	total, n := 0, 0
	for _, s := range realSegments(t) {
		sum, err := wal.ScanSegment(bytes.NewReader(s.data), s.name, wal.Options{SegmentSize: walname.MinSegmentSize})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := sum.MarshalBinary()
		t.Logf("%s: %d records, %d events, starts %d B, head %d+%d B, tail %d+%d B: %d bytes encoded",
			s.name, sum.Records, len(sum.Events), len(sum.Starts), len(sum.Head.Part.Prefix), len(sum.Head.Part.Suffix),
			len(sum.Tail.Part.Prefix), len(sum.Tail.Part.Suffix), len(b))
		total += len(b)
		n++
	}
	t.Logf("real fixtures: %d bytes per segment on average", total/n)
	if total/n > 16<<10 {
		t.Errorf("summaries of %d bytes per segment", total/n)
	}
}

func FuzzSummaryUnmarshal(f *testing.F) {
	for _, sum := range codecSamples(f) {
		b, _ := sum.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s wal.SegmentSummary
		if err := s.UnmarshalBinary(b); err != nil {
			return
		}
		// What decodes encodes back to the same bytes.
		b2, _ := s.MarshalBinary()
		var s2 wal.SegmentSummary
		if err := s2.UnmarshalBinary(b2); err != nil {
			t.Fatalf("re-encoded summary does not decode: %v", err)
		}
	})
}

// normalize drops what encoding does not keep: the difference between
// empty and nil, and the causes of errors (compared apart).
func normalize(s wal.SegmentSummary) wal.SegmentSummary {
	s.Stop, s.Problems = nil, nil
	if len(s.RecordsByRmgr) == 0 {
		s.RecordsByRmgr = nil
	}
	if len(s.Events) == 0 {
		s.Events = nil
	}
	for _, b := range []*[]byte{&s.Header, (*[]byte)(&s.Starts), &s.Head.Part.Prefix, &s.Head.Part.Suffix, &s.Tail.Part.Prefix, &s.Tail.Part.Suffix} {
		if len(*b) == 0 {
			*b = nil
		}
	}
	if len(s.PageTLIs) == 0 {
		s.PageTLIs = nil
	}
	if len(s.Links) == 0 {
		s.Links = nil
	}
	if len(s.Abandoned) == 0 {
		s.Abandoned = nil
	}
	return s
}
