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

// Fuzz targets: arbitrary bytes must give errors, never panics, endless
// loops or allocations beyond the input's size. Run with e.g.
//
//	go test ./audit/wal -run '^$' -fuzz '^FuzzScanSegment$' -fuzztime 30s -fuzzminimizetime 5s
//
// (inputs are large, so the default minute of minimizing each new input
// would use up a short run).

const fuzzSegSize = 1 << 20

// fuzzSeeds are the first 16 kB of every real segment and of a few
// synthetic ones (continuations, overwrite, switch).
func fuzzSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, s := range realSegments(t) {
		out = append(out, s.data[:16<<10])
	}
	w := walfixture.New(walfixture.Config{})
	w.Append(mainRec(21, 0, 1, 20000, 'a'))
	w.FillTo(pageEnd(w) - 8)
	w.Append(mainRec(10, 0, 2, 100, 'b'))
	w.FillTo(pageEnd(w) - 64)
	ab := w.AppendTorn(mainRec(21, 0, 3, 500, 'c'))
	w.Append(walfixture.Rec{RmID: 0, Info: wal.XLOGOverwriteContrecord, Body: walfixture.MainData(append(le64(ab), le64(0)...))})
	w.Switch()
	out = append(out, w.Segment(1)[:16<<10])
	return out
}

func FuzzScanSegment(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(fuzzBody)
}

func fuzzBody(t *testing.T, data []byte) {
	if len(data) > fuzzSegSize {
		return
	}
	// As is: usually a short file.
	if sum, err := wal.ScanSegment(bytes.NewReader(data), "fuzz", wal.Options{}); err == nil {
		checkSummary(t, sum)
	}
	// Padded with zeroes to a whole segment, so that the mutated
	// prefix is read like a real file.
	seg := make([]byte, fuzzSegSize)
	copy(seg, data)
	sum, err := wal.ScanSegment(bytes.NewReader(seg), "fuzz", wal.Options{})
	// The zero-copy scan (files mapped into memory) summarises alike.
	for _, in := range [][]byte{data, seg} {
		want, wantErr := wal.ScanSegment(bytes.NewReader(in), "fuzz", wal.Options{})
		got, gotErr := wal.ScanSegmentBytes(in, "fuzz", wal.Options{})
		same(t, len(in), "ScanSegmentBytes", want, wantErr, got, gotErr)
	}
	if err != nil {
		if !errors.Is(err, wal.ErrUnsupportedVersion) {
			t.Fatalf("error %v for in-memory input", err)
		}
		return
	}
	checkSummary(t, sum)

	// The Reader runs the same engine across a segment boundary.
	if len(data) < 16 {
		return
	}
	segno := walname.SegNo(binary.LittleEndian.Uint64(data[8:]) / fuzzSegSize)
	src := &memSource{tli: 1, size: fuzzSegSize, segs: map[walname.SegNo][]byte{segno: seg, segno + 1: seg}}
	start := walname.LSN(uint64(segno) * fuzzSegSize)
	if start == 0 {
		return
	}
	r, err := wal.NewReader(context.Background(), src, start, wal.Options{SegmentSize: fuzzSegSize})
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; r.Next(); n++ {
		rec := r.Record()
		if rec.EndLSN <= rec.StartLSN || n > fuzzSegSize/8 {
			t.Fatalf("record %d at %s ends at %s", n, rec.StartLSN, rec.EndLSN)
		}
		_ = wal.Describe(rec)
	}
	if r.Err() == nil {
		t.Fatal("reader stopped without an error")
	}

	// Summaries of the two files stand in for them.
	opts := wal.Options{SegmentSize: fuzzSegSize}
	sameOutcome(t, "fuzz input", readerOutcome(t, src, start, opts), chainOutcome(summaries(t, src), start, opts))
}

func checkSummary(t *testing.T, sum *wal.SegmentSummary) {
	t.Helper()
	if sum.Stop != nil && !wal.IsEndOfWAL(sum.Stop) && len(sum.Problems) == 0 {
		t.Fatalf("stopped at %v without reporting a problem", sum.Stop)
	}
	if sum.Records > 0 && (sum.FirstRecord == 0 || sum.LastRecord < sum.FirstRecord || sum.End <= sum.LastRecord) {
		t.Fatalf("inconsistent summary: first %s last %s end %s", sum.FirstRecord, sum.LastRecord, sum.End)
	}
	for _, p := range sum.Problems {
		if p.Err == nil || p.Error() == "" {
			t.Fatalf("empty problem %+v", p)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	// Real records of every kind in the fixtures, and synthetic ones with
	// images, origins and top-level xids.
	seen := map[[2]uint8]int{}
	src := realSource(f)
	r, err := wal.NewReader(context.Background(), src, walname.MinSegmentSize.StartLSN(realSegments(f)[0].seg), wal.Options{SegmentSize: walname.MinSegmentSize})
	if err != nil {
		f.Fatal(err)
	}
	for r.Next() {
		rec := r.Record()
		k := [2]uint8{uint8(rec.RmID), rec.Info}
		if seen[k] < 2 && len(rec.Raw) < 64<<10 {
			seen[k]++
			f.Add(bytes.Clone(rec.Raw), uint8(15))
		}
	}
	top, origin := uint32(9), uint16(3)
	f.Add(encode(walfixture.BodySpec{
		Blocks: []walfixture.Block{
			{ID: 0, Rel: rel, Data: []byte("abc")},
			{ID: 5, SameRel: true, Image: make([]byte, 100), HoleOffset: 8, BimgInfo: 0x05, Compressed: true, HoleLength: 9},
		},
		ToplevelXID: &top, Origin: &origin, Main: []byte("main"),
	}), uint8(14))
	f.Fuzz(func(t *testing.T, raw []byte, v uint8) {
		major := 13 + int(v%6)
		var rec wal.Record
		for _, fix := range []bool{false, true} {
			if fix && len(raw) >= wal.RecordHeaderSize {
				raw = bytes.Clone(raw)
				binary.LittleEndian.PutUint32(raw, uint32(len(raw)))
				walfixture.FixCRC(raw)
				if err := wal.VerifyCRC(raw); err != nil {
					t.Fatalf("fixed CRC rejected: %v", err)
				}
			}
			if err := wal.DecodeRecord(raw, major, 0, &rec); err != nil {
				continue
			}
			if int(rec.TotLen) != len(raw) || len(rec.MainData) > len(raw) || len(rec.Blocks) > 33 {
				t.Fatalf("decoded %d bytes into %+v", len(raw), rec)
			}
			_, _, _ = wal.EventOf(&rec, major)
			_ = wal.Describe(&rec)
		}
	})
}

func FuzzXactParse(f *testing.F) {
	src := realSource(f)
	r, err := wal.NewReader(context.Background(), src, walname.MinSegmentSize.StartLSN(realSegments(f)[0].seg), wal.Options{SegmentSize: walname.MinSegmentSize})
	if err != nil {
		f.Fatal(err)
	}
	for r.Next() {
		if rec := r.Record(); rec.RmID == wal.RmXact {
			f.Add(rec.Info, bytes.Clone(rec.MainData), uint8(15))
		}
	}
	f.Add(uint8(wal.XactOpCommitPrepared|wal.XactHasInfo), commitAllParts(le(int32(2), uint32(5), uint32(16391), uint32(1))), uint8(18))
	f.Add(uint8(wal.XactOpPrepare), prepareData(14, 731, "gid"), uint8(14))
	f.Fuzz(func(t *testing.T, info uint8, data []byte, v uint8) {
		major := 13 + int(v%6)
		if x, err := wal.DecodeXactEnd(info, data, major); err == nil {
			// Every part read must come from the data.
			if 4*len(x.Subxacts)+12*len(x.Rels)+12*len(x.DroppedStats)+16*x.NInvals+len(x.GID) > len(data) {
				t.Fatalf("parsed more than %d bytes: %+v", len(data), x)
			}
		}
		if p, err := wal.DecodeXactPrepare(data, major); err == nil && len(p.GID) > len(data) {
			t.Fatalf("GID longer than the data")
		}
		rec := &wal.Record{RmID: wal.RmXact, Info: info, MainData: data, Major: major}
		ev, ok, err := wal.EventOf(rec, 0)
		if ok && (err != nil || ev.Kind == 0) {
			t.Fatalf("event %+v with error %v", ev, err)
		}
		_ = wal.Describe(rec)
		rec.RmID = wal.RmXLOG
		_, _, _ = wal.EventOf(rec, 0)
		_ = wal.Describe(rec)
	})
}
