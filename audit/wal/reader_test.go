package wal_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/audit/wal/internal/walfixture"
	"github.com/walaudit/walaudit/walname"
)

// TestReaderRoundTrip writes records in every awkward position (header
// split across pages, exact page fill, spanning pages and segments) and
// reads them back.
func TestReaderRoundTrip(t *testing.T) {
	w := walfixture.New(walfixture.Config{})
	type placed struct {
		start, end uint64
		rec        walfixture.Rec
		what       string
	}
	var want []placed
	add := func(what string, r walfixture.Rec) {
		s, e := w.Append(r)
		want = append(want, placed{s, e, r, what})
	}
	origin, top := uint16(7), uint32(4242)
	add("small", mainRec(10, 0x00, 730, 10, 'a'))
	add("full-page image with hole", walfixture.Rec{RmID: 10, Info: 0x00, XID: 731, Body: walfixture.BodySpec{
		Blocks: []walfixture.Block{
			{ID: 0, Rel: [3]uint32{1663, 5, 16384}, BlockNo: 0, Image: bytes.Repeat([]byte{'i'}, 96), HoleOffset: 32, BimgInfo: 0x03},
			{ID: 2, SameRel: true, BlockNo: 9, Fork: 2, Data: []byte("blockdata")},
		},
		Main: []byte{1, 2, 3},
	}.Bytes()})
	add("three pages", mainRec(21, 0x00, 732, 20000, 'b'))
	w.FillTo(pageEnd(w) - 8)
	add("header split after 8 bytes", mainRec(10, 0x10, 733, 100, 'c'))
	w.FillTo(pageEnd(w) - 16)
	add("header split after 16 bytes", walfixture.Rec{RmID: 9, XID: 734, Body: walfixture.BodySpec{Origin: &origin, ToplevelXID: &top, Main: []byte("sub")}.Bytes()})
	w.FillTo(pageEnd(w) - 48)
	add("exactly to the page end", mainRec(10, 0x00, 735, 48-26, 'd'))
	add("right after a page header", mainRec(10, 0x00, 736, 5, 'e'))
	for pe := w.Config().SegSize * 2; pe-w.Pos() > 6000; {
		w.Append(walfixture.Noop(4000))
	}
	add("across the segment boundary", mainRec(21, 0x00, 737, 9000, 'f'))
	add("first whole record of segment 2", walfixture.Rec{RmID: 11, XID: 738, Body: walfixture.BodySpec{Main: bytes.Repeat([]byte{'g'}, 300), LongMain: true}.Bytes()})

	src := sourceOf(w)
	recs, r := readAll(t, src, 0x100000, wal.Options{})
	ce := contentErr(t, r.Err(), wal.ErrZeroTail)
	last := want[len(want)-1]
	if ce.LSN != align(last.end) || r.EndOfWAL() != align(last.end) {
		t.Errorf("stopped at %s (EndOfWAL %s), want %s", ce.LSN, r.EndOfWAL(), align(last.end))
	}
	if !wal.IsEndOfWAL(r.Err()) {
		t.Errorf("zeroed tail is not a benign end: %v", r.Err())
	}
	byStart := map[walname.LSN]got{}
	for _, g := range recs {
		byStart[g.Start] = g
	}
	prevEnd := walname.LSN(0)
	for i, g := range recs {
		if i > 0 && g.Prev != recs[i-1].Start {
			t.Errorf("record %d at %s: Prev %s, want %s", i, g.Start, g.Prev, recs[i-1].Start)
		}
		if prevEnd != 0 && g.Start < prevEnd {
			t.Errorf("record %d at %s starts before the previous end %s", i, g.Start, prevEnd)
		}
		prevEnd = g.End
	}
	for _, p := range want {
		g, ok := byStart[walname.LSN(p.start)]
		if !ok {
			t.Errorf("%s: no record at %X", p.what, p.start)
			continue
		}
		wantEnc := p.rec.Encode(0)
		if g.End != align(p.end) || g.TotLen != uint32(len(wantEnc)) || g.XID != p.rec.XID || g.RmID != wal.RmgrID(p.rec.RmID) || g.Info != p.rec.Info || g.TLI != 1 {
			t.Errorf("%s: got %+v, want end %s len %d xid %d", p.what, g, align(p.end), len(wantEnc), p.rec.XID)
		}
	}
	// Spot checks of decoded content.
	if g := byStart[walname.LSN(want[1].start)]; len(g.Blocks) != 2 || !g.Blocks[0].HasImage || g.Blocks[0].HoleLength != 8192-96 ||
		!g.Blocks[0].Apply || g.Blocks[1].Rel != (wal.RelFileLocator{Spc: 1663, DB: 5, Rel: 16384}) || g.Blocks[1].Block != 9 ||
		g.Blocks[1].Fork != 2 || g.Blocks[1].DataLen != 9 || !bytes.Equal(g.Main, []byte{1, 2, 3}) {
		t.Errorf("image record decoded as %+v", g)
	}
	if g := byStart[walname.LSN(want[2].start)]; len(g.Main) != 20000 || g.Main[0] != 'b' || g.Main[19999] != 'b' {
		t.Errorf("three-page record main data %d bytes", len(g.Main))
	}
	if g := byStart[walname.LSN(want[4].start)]; g.Origin != 7 || g.TopXID != 4242 || string(g.Main) != "sub" {
		t.Errorf("origin/toplevel record decoded as %+v", g)
	}
	if g := byStart[walname.LSN(want[5].start)]; g.End%8192 != 0 {
		t.Errorf("page-filling record ends at %s, want a page boundary", g.End)
	}
	if g := byStart[walname.LSN(want[7].start)]; g.Start.Segment(walname.MinSegmentSize) != 1 || g.End.Segment(walname.MinSegmentSize) != 2 || len(g.Main) != 9000 {
		t.Errorf("segment-crossing record %s..%s", g.Start, g.End)
	}
	if len(src.opened) != 2 {
		t.Errorf("segments opened: %v, want 1 and 2", src.opened)
	}

	// Starting at a record start in the middle reads the same records.
	mid := want[3].start
	recs2, _ := readAll(t, src, walname.LSN(mid), wal.Options{})
	if len(recs2) == 0 || recs2[0].Start != walname.LSN(mid) || recs2[len(recs2)-1].Start != recs[len(recs)-1].Start {
		t.Errorf("reading from %X: %d records", mid, len(recs2))
	}
	// Starting at segment 2's first byte skips the continued record.
	recs3, _ := readAll(t, src, 0x200000, wal.Options{})
	if len(recs3) != 1 || recs3[0].Start != walname.LSN(want[8].start) {
		t.Errorf("reading from segment 2: %d records, first %v", len(recs3), recs3)
	}
}

// corruptionBase writes five records: r2 spans pages 0 and 1 of segment 1.
func corruptionBase(cfg walfixture.Config) (*walfixture.Writer, []uint64) {
	w := walfixture.New(cfg)
	var starts []uint64
	for i, n := range []int{100, 200, 9000, 50, 60} {
		s, _ := w.Append(mainRec(21, 0, uint32(800+i), n, byte('a'+i)))
		starts = append(starts, s)
	}
	return w, starts
}

func TestReaderCorruption(t *testing.T) {
	const seg1 = 0x100000
	const page1 = seg1 + 8192
	type result struct {
		err      error // sentinel
		lsn      walname.LSN
		file     string
		offset   int64
		end      walname.LSN // EndOfWAL
		nrecs    int
		endOfWAL bool
	}
	file1 := "000000010000000000000001"
	tests := []struct {
		name  string
		build func(t *testing.T) (*memSource, wal.Options, result)
	}{
		{"zero_tail", func(t *testing.T) (*memSource, wal.Options, result) {
			w, _ := corruptionBase(walfixture.Config{})
			end := align(w.Pos())
			return sourceOf(w), wal.Options{}, result{wal.ErrZeroTail, end, file1, int64(end - seg1), end, 5, true}
		}},
		{"torn_tail", func(t *testing.T) (*memSource, wal.Options, result) {
			// A crash while r2 was written: page 1 never reached disk.
			w, st := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			clear(src.segs[1][8192:16384])
			return src, wal.Options{}, result{wal.ErrTornRecord, page1, file1, 8192, walname.LSN(st[2]), 2, false}
		}},
		{"bad_pageaddr", func(t *testing.T) (*memSource, wal.Options, result) {
			// Page 1 still holds an older segment's page (recycled file).
			w, st := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			binary.LittleEndian.PutUint64(src.segs[1][8192+8:], 0x2000)
			return src, wal.Options{}, result{wal.ErrBadPageAddr, page1, file1, 8192, walname.LSN(st[2]), 2, false}
		}},
		{"crc_flip", func(t *testing.T) (*memSource, wal.Options, result) {
			w, st := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			src.segs[1][st[3]-seg1+30] ^= 0x01
			return src, wal.Options{}, result{wal.ErrChecksum, walname.LSN(st[3]), file1, int64(st[3] - seg1), walname.LSN(st[3]), 3, false}
		}},
		{"bad_prev", func(t *testing.T) (*memSource, wal.Options, result) {
			// A stale but otherwise valid record: only xl_prev gives it away.
			w, st := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			rec := src.segs[1][st[3]-seg1:]
			binary.LittleEndian.PutUint64(rec[8:], st[1])
			walfixture.FixCRC(rec[:binary.LittleEndian.Uint32(rec)])
			return src, wal.Options{}, result{wal.ErrPrevLink, walname.LSN(st[3]), file1, int64(st[3] - seg1), walname.LSN(st[3]), 3, false}
		}},
		{"wrong_sysid", func(t *testing.T) (*memSource, wal.Options, result) {
			w, _ := corruptionBase(walfixture.Config{})
			return sourceOf(w), wal.Options{SystemID: 42}, result{wal.ErrSysID, seg1, file1, 0, seg1, 0, false}
		}},
		{"wrong_sysid_next_segment", func(t *testing.T) (*memSource, wal.Options, result) {
			// Learned from segment 1, then segment 2 is from another cluster.
			w, _ := corruptionBase(walfixture.Config{})
			w.Switch()
			w.Append(mainRec(21, 0, 900, 10, 'z'))
			src := sourceOf(w)
			src.segs[2][24] ^= 0xFF
			return src, wal.Options{}, result{wal.ErrSysID, 0x200000, "000000010000000000000002", 0, 0x200000, 6, false}
		}},
		{"truncated_file", func(t *testing.T) (*memSource, wal.Options, result) {
			w, st := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			src.segs[1] = src.segs[1][:12000]
			return src, wal.Options{}, result{wal.ErrTruncated, seg1 + 12000, file1, 12000, walname.LSN(st[2]), 2, false}
		}},
		{"truncated_after_end_of_wal", func(t *testing.T) (*memSource, wal.Options, result) {
			// All records are there, but recovery refuses a short file.
			w, _ := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			src.segs[1] = src.segs[1][:512<<10]
			return src, wal.Options{}, result{wal.ErrTruncated, seg1 + 512<<10, file1, 512 << 10, align(w.Pos()), 5, false}
		}},
		{"trailing_data", func(t *testing.T) (*memSource, wal.Options, result) {
			w, _ := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			src.segs[1] = append(src.segs[1], 1, 2, 3)
			return src, wal.Options{}, result{wal.ErrTrailingData, seg1 + 1<<20, file1, 1 << 20, align(w.Pos()), 5, false}
		}},
		{"zero_tail_after_switch", func(t *testing.T) (*memSource, wal.Options, result) {
			// The rest of a switched segment is zero, page headers included:
			// not corruption. Segment 2 is not archived yet.
			w, _ := corruptionBase(walfixture.Config{})
			w.Switch()
			return sourceOf(w), wal.Options{}, result{wal.ErrSegmentMissing, 0x200000, "", 0, 0x200000, 6, true}
		}},
		{"missing_segment_mid_record", func(t *testing.T) (*memSource, wal.Options, result) {
			w, _ := corruptionBase(walfixture.Config{})
			for w.Pos() < 0x200000-5000 {
				w.Append(walfixture.Noop(4000))
			}
			s, _ := w.Append(mainRec(21, 0, 1, 9000, 'x'))
			src := sourceOf(w)
			delete(src.segs, 2)
			// Benign: the archive ends inside the record; recovery stops
			// before it.
			return src, wal.Options{}, result{wal.ErrSegmentMissing, 0x200000, "", 0, walname.LSN(s), -1, true}
		}},
		{"contrecord_length_mismatch", func(t *testing.T) (*memSource, wal.Options, result) {
			w, st := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			binary.LittleEndian.PutUint32(src.segs[1][8192+16:], 1234)
			return src, wal.Options{}, result{wal.ErrContRecord, page1, file1, 8192, walname.LSN(st[2]), 2, false}
		}},
		{"no_contrecord_flag", func(t *testing.T) (*memSource, wal.Options, result) {
			w, st := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			src.segs[1][8192+2] &^= 0x01
			return src, wal.Options{}, result{wal.ErrTornRecord, page1, file1, 8192, walname.LSN(st[2]), 2, false}
		}},
		{"bad_magic", func(t *testing.T) (*memSource, wal.Options, result) {
			w, st := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			binary.LittleEndian.PutUint16(src.segs[1][8192:], 0xD113)
			return src, wal.Options{}, result{wal.ErrBadMagic, page1, file1, 8192, walname.LSN(st[2]), 2, false}
		}},
		{"bad_info_bits", func(t *testing.T) (*memSource, wal.Options, result) {
			w, st := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			src.segs[1][8192+2] |= 0x10
			return src, wal.Options{}, result{wal.ErrPageFlags, page1, file1, 8192, walname.LSN(st[2]), 2, false}
		}},
		{"timeline_backwards", func(t *testing.T) (*memSource, wal.Options, result) {
			w, st := corruptionBase(walfixture.Config{TLI: 3})
			src := sourceOf(w)
			binary.LittleEndian.PutUint32(src.segs[1][8192+4:], 2)
			return src, wal.Options{}, result{wal.ErrTimeline, page1, "000000030000000000000001", 8192, walname.LSN(st[2]), 2, false}
		}},
		{"timeline_not_allowed", func(t *testing.T) (*memSource, wal.Options, result) {
			w, st := corruptionBase(walfixture.Config{})
			opts := wal.Options{AllowedTLI: func(tli walname.TimelineID, page walname.LSN) bool { return page < page1 }}
			return sourceOf(w), opts, result{wal.ErrTimeline, page1, file1, 8192, walname.LSN(st[2]), 2, false}
		}},
		{"unsupported_version", func(t *testing.T) (*memSource, wal.Options, result) {
			w, _ := corruptionBase(walfixture.Config{Magic: 0xD101})
			return sourceOf(w), wal.Options{}, result{wal.ErrUnsupportedVersion, seg1, file1, 0, seg1, 0, false}
		}},
		{"invalid_rmid", func(t *testing.T) (*memSource, wal.Options, result) {
			w, st := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			rec := src.segs[1][st[3]-seg1:]
			rec[17] = 22
			walfixture.FixCRC(rec[:binary.LittleEndian.Uint32(rec)])
			return src, wal.Options{}, result{wal.ErrRmID, walname.LSN(st[3]), file1, int64(st[3] - seg1), walname.LSN(st[3]), 3, false}
		}},
		{"huge_tot_len", func(t *testing.T) (*memSource, wal.Options, result) {
			// 0xFFFFFFF0 bytes would be a 4 GiB allocation if trusted.
			w, st := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			binary.LittleEndian.PutUint32(src.segs[1][st[3]-seg1:], 0xFFFFFFF0)
			return src, wal.Options{}, result{wal.ErrRecordLength, walname.LSN(st[3]), file1, int64(st[3] - seg1), walname.LSN(st[3]), 3, false}
		}},
		{"zero_tot_len_before_garbage", func(t *testing.T) (*memSource, wal.Options, result) {
			w, st := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			binary.LittleEndian.PutUint32(src.segs[1][st[4]-seg1:], 0)
			return src, wal.Options{}, result{wal.ErrRecordLength, walname.LSN(st[4]), file1, int64(st[4] - seg1), walname.LSN(st[4]), 4, false}
		}},
		{"invalid_block_id", func(t *testing.T) (*memSource, wal.Options, result) {
			w, st := corruptionBase(walfixture.Config{})
			src := sourceOf(w)
			rec := src.segs[1][st[3]-seg1:]
			rec[24] = 40 // was 255, the main data header
			walfixture.FixCRC(rec[:binary.LittleEndian.Uint32(rec)])
			return src, wal.Options{}, result{wal.ErrRecordFormat, walname.LSN(st[3]), file1, int64(st[3] - seg1), walname.LSN(st[3]), 3, false}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, opts, want := tc.build(t)
			recs, r := readAll(t, src, seg1, opts)
			ce := contentErr(t, r.Err(), want.err)
			if ce.LSN != want.lsn || ce.File != want.file || ce.Offset != want.offset {
				t.Errorf("error at %s in %q offset %d, want %s in %q offset %d: %v", ce.LSN, ce.File, ce.Offset, want.lsn, want.file, want.offset, ce)
			}
			if r.EndOfWAL() != want.end {
				t.Errorf("EndOfWAL %s, want %s", r.EndOfWAL(), want.end)
			}
			if want.nrecs >= 0 && len(recs) != want.nrecs {
				t.Errorf("read %d records before stopping, want %d", len(recs), want.nrecs)
			}
			if len(recs) > 0 && recs[len(recs)-1].End != r.EndOfWAL() {
				t.Errorf("last record ends at %s, EndOfWAL is %s", recs[len(recs)-1].End, r.EndOfWAL())
			}
			if wal.IsEndOfWAL(r.Err()) != want.endOfWAL {
				t.Errorf("IsEndOfWAL = %v, want %v (%v)", !want.endOfWAL, want.endOfWAL, r.Err())
			}
			if r.Next() {
				t.Error("Next after the end returned true")
			}
		})
	}
}

// TestReaderOverwriteContrecord: a crash left half of a record; after
// restart the server wrote XLOG_OVERWRITE_CONTRECORD where the rest should
// have been. The reader must drop the partial record and go on.
func TestReaderOverwriteContrecord(t *testing.T) {
	build := func(named uint64) (*memSource, uint64, uint64) {
		w := walfixture.New(walfixture.Config{})
		r0, _ := w.Append(mainRec(21, 0, 1, 100, 'a'))
		w.FillTo(pageEnd(w) - 200)
		aborted := w.AppendTorn(mainRec(21, 0, 2, 5000, 'b'))
		if named == 0 {
			named = aborted
		}
		payload := binary.LittleEndian.AppendUint64(nil, named)
		payload = binary.LittleEndian.AppendUint64(payload, 848536468535585)
		ow, _ := w.Append(walfixture.Rec{RmID: 0, Info: wal.XLOGOverwriteContrecord, Body: walfixture.MainData(payload)})
		w.Append(mainRec(21, 0, 3, 100, 'c'))
		if r0 != 0x100028 {
			panic("fixture layout changed")
		}
		return sourceOf(w), aborted, ow
	}
	src, aborted, ow := build(0)
	recs, r := readAll(t, src, 0x100000, wal.Options{})
	if !wal.IsEndOfWAL(r.Err()) {
		t.Fatalf("read stopped with %v", r.Err())
	}
	if len(recs) != 4 { // r0, NOOP filler, overwrite, r3
		t.Fatalf("read %d records, want 4", len(recs))
	}
	o := recs[2]
	if o.Start != walname.LSN(ow) || o.Start != walname.LSN(0x100000+8192+24) || o.RmID != wal.RmXLOG || o.Prev != recs[1].Start {
		t.Errorf("overwrite record %+v, want at %X with prev %s", o, ow, recs[1].Start)
	}
	ev, ok, err := wal.EventOf(&wal.Record{RmID: o.RmID, Info: o.Info, MainData: o.Main, StartLSN: o.Start, Major: 15}, 0)
	if err != nil || !ok || ev.Kind != wal.EventOverwriteContrecord || ev.Overwritten != walname.LSN(aborted) ||
		ev.Time.Format("2006-01-02 15:04:05.000000") != "2026-11-21 00:34:28.535585" {
		t.Errorf("event %+v %v %v", ev, ok, err)
	}

	// The overwrite record must name the abandoned record.
	src, _, ow = build(0x100028)
	recs, r = readAll(t, src, 0x100000, wal.Options{})
	ce := contentErr(t, r.Err(), wal.ErrOverwrite)
	if ce.LSN != walname.LSN(ow) || len(recs) != 2 || r.EndOfWAL() != recs[1].End {
		t.Errorf("mismatch reported at %s after %d records, EndOfWAL %s", ce.LSN, len(recs), r.EndOfWAL())
	}
}

func TestReaderHeaderSplitChecks(t *testing.T) {
	// Only 8 bytes of the header fit on the first page: the rest of it is
	// validated after the continuation arrives.
	w := walfixture.New(walfixture.Config{})
	w.Append(mainRec(21, 0, 1, 10, 'a'))
	w.FillTo(pageEnd(w) - 8)
	s, _ := w.Append(mainRec(21, 0, 2, 100, 'b'))
	src := sourceOf(w)
	// xl_rmid lives on the second page (record offset 17, page offset 24+9).
	src.segs[1][8192+24+9] = 99
	_, r := readAll(t, src, 0x100000, wal.Options{})
	ce := contentErr(t, r.Err(), wal.ErrRmID)
	if ce.LSN != walname.LSN(s) || r.EndOfWAL() != walname.LSN(s) {
		t.Errorf("split header error at %s, EndOfWAL %s, want %X", ce.LSN, r.EndOfWAL(), s)
	}
}

func TestReaderRmgrVersions(t *testing.T) {
	// Custom resource managers (128-255) exist from 15 on.
	for _, tc := range []struct {
		magic uint16
		ok    bool
	}{{0xD110, true}, {0xD10D, false}} {
		w := walfixture.New(walfixture.Config{Magic: tc.magic})
		w.Append(mainRec(130, 0, 1, 10, 'a'))
		_, r := readAll(t, sourceOf(w), 0x100000, wal.Options{})
		if got := errors.Is(r.Err(), wal.ErrRmID); got == tc.ok {
			t.Errorf("magic %04X: rmid 130 error %v", tc.magic, r.Err())
		}
	}
}

func TestReaderContext(t *testing.T) {
	w, _ := corruptionBase(walfixture.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := wal.NewReader(ctx, sourceOf(w), 0x100000, wal.Options{SegmentSize: walname.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	if r.Next() || !errors.Is(r.Err(), context.Canceled) {
		t.Errorf("cancelled read: %v", r.Err())
	}
}

func TestNewReaderArgs(t *testing.T) {
	src := &memSource{}
	for _, tc := range []struct {
		start walname.LSN
		opts  wal.Options
	}{
		{0x100004, wal.Options{SegmentSize: walname.MinSegmentSize}},
		{0, wal.Options{SegmentSize: walname.MinSegmentSize}},
		{0x100000, wal.Options{}},
		{0x100000, wal.Options{SegmentSize: 12345}},
		{0x100000, wal.Options{SegmentSize: walname.MinSegmentSize, BlockSize: 3000}},
	} {
		if _, err := wal.NewReader(context.Background(), src, tc.start, tc.opts); err == nil {
			t.Errorf("NewReader(%s, %+v) accepted", tc.start, tc.opts)
		}
	}
	// A start inside a page header is refused when reading.
	w, _ := corruptionBase(walfixture.Config{})
	_, r := readAll(t, sourceOf(w), 0x100000+8192+8, wal.Options{})
	contentErr(t, r.Err(), wal.ErrStartLSN)
}

func TestContentErrorMessage(t *testing.T) {
	rec := walfixture.Noop(40).Encode(0)
	rec[30] ^= 1
	e := &wal.ContentError{File: "000000010000000A000000FE", Offset: 8192, LSN: 0xAFE002000, Err: wal.VerifyCRC(rec)}
	want := "corrupt WAL in 000000010000000A000000FE at offset 8192 (lsn A/FE002000): record CRC mismatch: got "
	if got := e.Error(); len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("message %q, want prefix %q", got, want)
	}
	if !errors.Is(e, wal.ErrChecksum) || wal.IsEndOfWAL(e) {
		t.Errorf("classification of %v", e)
	}
	w, _ := corruptionBase(walfixture.Config{Magic: 0xD101})
	_, r := readAll(t, sourceOf(w), 0x100000, wal.Options{})
	if got, want := r.Err().Error(), "unsupported WAL in 000000010000000000000001 at offset 0 (lsn 0/100000): page magic D101 is PostgreSQL 12, which is not supported (13 to 18 are)"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	z := &wal.ContentError{LSN: 0x200000, Err: wal.ErrSegmentMissing}
	if got := z.Error(); got != "end of WAL at lsn 0/200000: walaudit/wal: WAL segment missing" {
		t.Errorf("message %q", got)
	}
}
