package wal_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/audit/wal/internal/walfixture"
	"github.com/walaudit/walaudit/walname"
)

func scan(t *testing.T, seg []byte, name string, opts wal.Options) *wal.SegmentSummary {
	t.Helper()
	s, err := wal.ScanSegment(bytes.NewReader(seg), name, opts)
	if err != nil {
		t.Fatalf("ScanSegment(%s): %v", name, err)
	}
	return s
}

func TestScanSegmentBoundaries(t *testing.T) {
	// Segment 1 ends in a record that fills all of segment 2 and ends in
	// segment 3.
	w := walfixture.New(walfixture.Config{})
	first, _ := w.Append(mainRec(21, 0, 1, 100, 'a'))
	for w.Pos() < 0x200000-20000 {
		w.Append(walfixture.Noop(4000))
	}
	lastComplete := w.Prev()
	big, bigEnd := w.Append(mainRec(21, 0, 2, 1200000, 'b'))
	after, _ := w.Append(mainRec(21, 0, 3, 10, 'c'))
	segs := w.Segments()
	if len(segs) != 3 {
		t.Fatalf("fixture has %d segments", len(segs))
	}

	s1 := scan(t, segs[0], "000000010000000000000001", wal.Options{})
	if s1.FirstRecord != walname.LSN(first) || s1.LastRecord != walname.LSN(lastComplete) || !s1.ContinuesIntoNext ||
		s1.PartialRecord != walname.LSN(big) || s1.End != walname.LSN(big) || s1.ContinuedFrom || s1.Stop != nil || len(s1.Problems) != 0 {
		t.Errorf("segment 1: %+v", s1)
	}
	if s1.SegNo != 1 || s1.TLI != 1 || s1.SystemID != 7000000000000000001 || s1.SegmentSize != walname.MinSegmentSize ||
		s1.PageSize != 8192 || s1.Major != 15 || s1.Magic != 0xD110 || s1.Size != 1<<20 {
		t.Errorf("segment 1 identity: %+v", s1)
	}
	if s1.RecordsByRmgr["XLOG"]+s1.RecordsByRmgr["LogicalMessage"] != s1.Records || s1.RecordsByRmgr["LogicalMessage"] != 1 {
		t.Errorf("segment 1 counts: %d records, %v", s1.Records, s1.RecordsByRmgr)
	}

	s2 := scan(t, segs[1], "000000010000000000000002", wal.Options{})
	if s2.Records != 0 || s2.FirstRecord != 0 || !s2.ContinuedFrom || !s2.ContinuesIntoNext || s2.PartialRecord != 0 || s2.Stop != nil || len(s2.Problems) != 0 {
		t.Errorf("segment 2 (all continuation): %+v", s2)
	}
	s3 := scan(t, segs[2], "000000010000000000000003", wal.Options{})
	// Segment 2 carries the record's bytes on all its pages after their
	// headers (one long, 127 short).
	if d := s2.ContinuationLen - s3.ContinuationLen; d != 1<<20-40-127*24 {
		t.Errorf("continuation lengths %d and %d differ by %d", s2.ContinuationLen, s3.ContinuationLen, d)
	}
	endOff := bigEnd - 0x300000
	if want := endOff - 40 - endOff/8192*24; uint64(s3.ContinuationLen) != want {
		t.Errorf("segment 3 continuation length %d, want %d", s3.ContinuationLen, want)
	}
	if !s3.ContinuedFrom || s3.FirstRecord != align(bigEnd) || s3.FirstRecord != walname.LSN(after) || s3.Records != 1 || s3.ContinuesIntoNext {
		t.Errorf("segment 3: %+v", s3)
	}
	if s3.Stop == nil || !wal.IsEndOfWAL(s3.Stop) || len(s3.Problems) != 0 {
		t.Errorf("segment 3 should end in zeroes: stop %v problems %v", s3.Stop, s3.Problems)
	}
}

func TestScanSegmentSwitch(t *testing.T) {
	w := walfixture.New(walfixture.Config{})
	w.Append(mainRec(21, 0, 1, 100, 'a'))
	sw := w.Switch()
	s := scan(t, w.Segment(1), "000000010000000000000001", wal.Options{})
	if !s.Switch || s.Stop != nil || len(s.Problems) != 0 || s.End != 0x200000 || s.LastRecord != walname.LSN(sw) || s.Records != 2 {
		t.Errorf("switch segment: %+v", s)
	}
	if len(s.Events) != 1 || s.Events[0].Kind != wal.EventSwitch || s.Events[0].EndLSN != 0x200000 {
		t.Errorf("switch events: %+v", s.Events)
	}
}

func TestScanSegmentProblems(t *testing.T) {
	const name = "000000010000000000000001"
	base := func() (*walfixture.Writer, []uint64) { return corruptionBase(walfixture.Config{}) }

	t.Run("crc_flip", func(t *testing.T) {
		w, st := base()
		seg := w.Segment(1)
		seg[st[3]-0x100000+30] ^= 0x80
		s := scan(t, seg, name, wal.Options{})
		if s.Stop == nil || !errors.Is(s.Stop, wal.ErrChecksum) || len(s.Problems) != 1 || !errors.Is(&s.Problems[0], wal.ErrChecksum) {
			t.Fatalf("stop %v problems %v", s.Stop, s.Problems)
		}
		if s.Stop.LSN != walname.LSN(st[3]) || s.End != walname.LSN(st[3]) || s.Records != 3 || s.LastRecord != walname.LSN(st[2]) {
			t.Errorf("stopped at %s, end %s, %d records", s.Stop.LSN, s.End, s.Records)
		}
	})
	t.Run("truncated_file", func(t *testing.T) {
		w, _ := base()
		s := scan(t, w.Segment(1)[:600000], name, wal.Options{})
		if len(s.Problems) != 1 || !errors.Is(&s.Problems[0], wal.ErrTruncated) || s.Problems[0].Offset != 600000 || s.Records != 5 || s.Size != 600000 {
			t.Errorf("truncated: %d records, problems %v", s.Records, s.Problems)
		}
		if !wal.IsEndOfWAL(s.Stop) {
			t.Errorf("WAL itself ends in zeroes, stop %v", s.Stop)
		}
	})
	t.Run("truncated_in_records", func(t *testing.T) {
		w, st := base()
		s := scan(t, w.Segment(1)[:10000], name, wal.Options{})
		if s.Stop == nil || !errors.Is(s.Stop, wal.ErrTruncated) || len(s.Problems) != 1 || s.End != walname.LSN(st[2]) {
			t.Errorf("stop %v problems %v end %s", s.Stop, s.Problems, s.End)
		}
	})
	t.Run("trailing_data", func(t *testing.T) {
		w, _ := base()
		s := scan(t, append(w.Segment(1), 0), name, wal.Options{})
		if len(s.Problems) != 1 || !errors.Is(&s.Problems[0], wal.ErrTrailingData) {
			t.Errorf("problems %v", s.Problems)
		}
	})
	t.Run("misnamed_file", func(t *testing.T) {
		// Content of segment 1 under the name of segment 5.
		w, _ := base()
		s := scan(t, w.Segment(1), "000000010000000000000005", wal.Options{})
		if s.Stop == nil || !errors.Is(s.Stop, wal.ErrBadPageAddr) || s.Stop.Offset != 0 || s.Records != 0 {
			t.Errorf("stop %v", s.Stop)
		}
	})
	t.Run("page_timeline_above_file_timeline", func(t *testing.T) {
		w, _ := corruptionBase(walfixture.Config{TLI: 3})
		s := scan(t, w.Segment(1), "000000020000000000000001", wal.Options{})
		if s.Stop == nil || !errors.Is(s.Stop, wal.ErrTimeline) {
			t.Errorf("stop %v", s.Stop)
		}
		// A parent's timeline in a child's file is normal (copied prefix).
		s = scan(t, w.Segment(1), "000000040000000000000001", wal.Options{})
		if !wal.IsEndOfWAL(s.Stop) || s.Records != 5 {
			t.Errorf("stop %v, %d records", s.Stop, s.Records)
		}
	})
	t.Run("expected_segment_size", func(t *testing.T) {
		w, _ := base()
		s := scan(t, w.Segment(1), name, wal.Options{SegmentSize: 16 << 20})
		if s.Stop == nil || !errors.Is(s.Stop, wal.ErrSegmentSize) {
			t.Errorf("stop %v", s.Stop)
		}
	})
	t.Run("wrong_sysid", func(t *testing.T) {
		w, _ := base()
		s := scan(t, w.Segment(1), name, wal.Options{SystemID: 1})
		if s.Stop == nil || !errors.Is(s.Stop, wal.ErrSysID) || len(s.Problems) != 1 {
			t.Errorf("stop %v", s.Stop)
		}
	})
	t.Run("zero_file", func(t *testing.T) {
		s := scan(t, make([]byte, 1<<20), name, wal.Options{})
		if s.Stop == nil || !errors.Is(s.Stop, wal.ErrZeroTail) || len(s.Problems) != 0 || s.Size != 1<<20 {
			t.Errorf("stop %v problems %v", s.Stop, s.Problems)
		}
	})
	t.Run("tiny_file", func(t *testing.T) {
		s := scan(t, []byte{1, 2, 3}, name, wal.Options{})
		if s.Stop == nil || !errors.Is(s.Stop, wal.ErrTruncated) {
			t.Errorf("stop %v", s.Stop)
		}
	})
	t.Run("unsupported_version", func(t *testing.T) {
		w, _ := corruptionBase(walfixture.Config{Magic: 0xD101})
		_, err := wal.ScanSegment(bytes.NewReader(w.Segment(1)), name, wal.Options{})
		var ce *wal.ContentError
		if !errors.Is(err, wal.ErrUnsupportedVersion) || !errors.As(err, &ce) || ce.File != name {
			t.Errorf("error %v", err)
		}
	})
	t.Run("payload_problem_is_reported_and_scan_continues", func(t *testing.T) {
		w := walfixture.New(walfixture.Config{})
		bad, _ := w.Append(walfixture.Rec{RmID: 0, Info: wal.XLOGRestorePoint, Body: walfixture.MainData([]byte("short"))})
		w.Append(mainRec(21, 0, 1, 10, 'a'))
		s := scan(t, w.Segment(1), name, wal.Options{})
		if s.Records != 2 || len(s.Problems) != 1 || !errors.Is(&s.Problems[0], wal.ErrPayload) || s.Problems[0].LSN != walname.LSN(bad) {
			t.Errorf("%d records, problems %v", s.Records, s.Problems)
		}
	})
}

func TestScanSegmentSkipsAbandonedContinuation(t *testing.T) {
	// Segment 2 starts with an OVERWRITE_CONTRECORD page: the record begun
	// in segment 1 was abandoned.
	w := walfixture.New(walfixture.Config{})
	for w.Pos() < 0x200000-5000 {
		w.Append(walfixture.Noop(4000))
	}
	w.FillTo(pageEnd(w) - 64)
	aborted := w.AppendTorn(mainRec(21, 0, 1, 500, 'x'))
	payload := append(le64(aborted), le64(0)...)
	ow, _ := w.Append(walfixture.Rec{RmID: 0, Info: wal.XLOGOverwriteContrecord, Body: walfixture.MainData(payload)})
	s := scan(t, w.Segment(2), "000000010000000000000002", wal.Options{})
	if s.ContinuedFrom || s.FirstRecord != walname.LSN(ow) || s.FirstRecord != 0x200028 || len(s.Events) != 1 ||
		s.Events[0].Kind != wal.EventOverwriteContrecord || s.Events[0].Overwritten != walname.LSN(aborted) {
		t.Errorf("summary %+v", s)
	}
	// Segment 1 on its own ends in a record that seems to continue.
	s1 := scan(t, w.Segment(1), "000000010000000000000001", wal.Options{})
	if !s1.ContinuesIntoNext || s1.PartialRecord != walname.LSN(aborted) {
		t.Errorf("segment 1: %+v", s1)
	}
}

func le64(v uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

// TestScanSegmentContinuationChecks damages the pages a segment's leading
// continuation runs over: the skip must validate them, not just jump.
func TestScanSegmentContinuationChecks(t *testing.T) {
	w := walfixture.New(walfixture.Config{})
	for w.Pos() < 0x200000-5000 {
		w.Append(walfixture.Noop(4000))
	}
	w.Append(mainRec(21, 0, 1, 30000, 'x')) // continues over pages 0-3 of segment 2
	next, _ := w.Append(mainRec(21, 0, 2, 10, 'y'))
	const name = "000000010000000000000002"
	s := scan(t, w.Segment(2), name, wal.Options{})
	if s.FirstRecord != walname.LSN(next) || s.FirstRecord.Offset(walname.MinSegmentSize) < 3*8192 || !s.ContinuedFrom {
		t.Fatalf("undamaged: %+v", s)
	}
	for _, tc := range []struct {
		name  string
		patch func(seg []byte)
		want  error
	}{
		{"rem_len", func(seg []byte) { seg[8192+16]++ }, wal.ErrContRecord},
		{"no_contrecord_flag", func(seg []byte) { seg[8192+2] &^= 0x01 }, wal.ErrTornRecord},
		{"zeroed_page", func(seg []byte) { clear(seg[8192 : 2*8192]) }, wal.ErrTornRecord},
		{"pageaddr", func(seg []byte) { seg[8192+8]++ }, wal.ErrBadPageAddr},
	} {
		seg := w.Segment(2)
		tc.patch(seg)
		s := scan(t, seg, name, wal.Options{})
		if s.Stop == nil || !errors.Is(s.Stop, tc.want) || s.Stop.Offset != 8192 || s.Records != 0 {
			t.Errorf("%s: stop %v, %d records", tc.name, s.Stop, s.Records)
		}
	}
}

func TestEventKindNames(t *testing.T) {
	for k := wal.EventCommit; k <= wal.EventCheckpointRedo; k++ {
		if s := k.String(); s == "" || s[0] == 'e' && s != "end_of_recovery" {
			t.Errorf("kind %d named %q", k, s)
		}
		if txt, _ := k.MarshalText(); string(txt) != k.String() {
			t.Errorf("MarshalText(%s) = %s", k, txt)
		}
		want := k == wal.EventCommit || k == wal.EventAbort || k == wal.EventCommitPrepared || k == wal.EventAbortPrepared
		if k.IsXactEnd() != want {
			t.Errorf("%s.IsXactEnd() = %v", k, !want)
		}
	}
	if wal.EventKind(99).String() != "event(99)" {
		t.Error("unknown kind name")
	}
}
