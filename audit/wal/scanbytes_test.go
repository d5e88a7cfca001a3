package wal_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/walname"
)

// ScanSegmentBytes and ScanSegmentFile must summarise exactly as
// ScanSegment does, for whole, short, overlong and damaged files.
func TestScanSegmentBytesSameAsScanSegment(t *testing.T) {
	type input struct {
		name string
		data []byte
	}
	var inputs []input
	for _, s := range realSegments(t) {
		inputs = append(inputs,
			input{s.name, s.data},
			input{s.name, s.data[:16<<10]},
			input{s.name, s.data[:40]},
			input{s.name, s.data[:10]},
			input{s.name, nil},
			input{s.name, append(bytes.Clone(s.data), make([]byte, 100)...)},
			input{s.name, append(bytes.Clone(s.data), make([]byte, 200<<10)...)},
			input{"not-a-segment", s.data})
		damaged := bytes.Clone(s.data)
		damaged[300<<10] ^= 0x40
		inputs = append(inputs, input{s.name, damaged})
	}
	for i, seed := range fuzzSeeds(t) {
		seg := make([]byte, fuzzSegSize)
		copy(seg, seed)
		inputs = append(inputs, input{"fuzz", seg}, input{walname.SegmentName(1, walname.SegNo(i+1), walname.MinSegmentSize), seed})
	}
	dir := t.TempDir()
	for i, in := range inputs {
		want, wantErr := wal.ScanSegment(bytes.NewReader(in.data), in.name, wal.Options{})
		got, gotErr := wal.ScanSegmentBytes(in.data, in.name, wal.Options{})
		same(t, i, "ScanSegmentBytes", want, wantErr, got, gotErr)

		p := filepath.Join(dir, "seg")
		if err := os.WriteFile(p, in.data, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		got, gotErr = wal.ScanSegmentFile(f, in.name, wal.Options{})
		f.Close()
		same(t, i, "ScanSegmentFile", want, wantErr, got, gotErr)
	}
}

func same(t *testing.T, i int, what string, want *wal.SegmentSummary, wantErr error, got *wal.SegmentSummary, gotErr error) {
	t.Helper()
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("input %d: %s error %v, ScanSegment %v", i, what, gotErr, wantErr)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("input %d: %s summary differs from ScanSegment's:\n%+v\n%+v", i, what, got, want)
	}
}

// A scan checks records that cross pages and have no payload it decodes
// without assembling them: damage in such a record must stop it as it
// stops the Reader, which assembles every record.
func TestScanSpanningRecordDamage(t *testing.T) {
	seg := realSegments(t)[0]
	start := walname.MinSegmentSize.StartLSN(seg.seg)
	src := &memSource{tli: 1, size: walname.MinSegmentSize, segs: map[walname.SegNo][]byte{seg.seg: seg.data}}
	r, err := wal.NewReader(context.Background(), src, start, wal.Options{SegmentSize: walname.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	const page = 8192
	var rec *wal.Record
	for r.Next() {
		x := r.Record()
		off := uint64(x.StartLSN - start)
		if x.RmID > wal.RmXact && len(x.Blocks) > 0 && off/page != (off+uint64(x.TotLen)+wal.ShortPageHeaderSize)/page &&
			off%page+wal.RecordHeaderSize+64 < page && off+uint64(x.TotLen)+2*page < uint64(len(seg.data)) {
			rec = x
			break
		}
	}
	if rec == nil {
		t.Fatal("no record crossing a page in the fixture")
	}
	lsn, totLen := rec.StartLSN, int(rec.TotLen)
	// Where each byte of the record is in the file.
	var at []int
	for off := int(lsn - start); len(at) < totLen; off++ {
		if off%page == 0 {
			off += wal.ShortPageHeaderSize
		}
		at = append(at, off)
	}
	recBytes := func(d []byte) []byte {
		b := make([]byte, totLen)
		for i, o := range at {
			b[i] = d[o]
		}
		return b
	}
	reseal := func(d []byte) {
		b := recBytes(d)
		c := crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), b[wal.RecordHeaderSize:])
		c = crc32.Update(c, crc32.MakeTable(crc32.Castagnoli), b[:20])
		var le [4]byte
		binary.LittleEndian.PutUint32(le[:], c)
		for i := range 4 {
			d[at[20+i]] = le[i]
		}
	}
	cases := []struct {
		name string
		want error
		edit func(d []byte)
	}{
		// A byte of the part on the next page.
		{"crc", wal.ErrChecksum, func(d []byte) { d[at[totLen-1]] ^= 1 }},
		// An invalid block id, with a CRC that matches.
		{"format", wal.ErrRecordFormat, func(d []byte) { d[at[wal.RecordHeaderSize]] = 200; reseal(d) }},
	}
	for _, tc := range cases {
		d := bytes.Clone(seg.data)
		tc.edit(d)
		sum, err := wal.ScanSegmentBytes(d, seg.name, wal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Stop == nil || sum.Stop.LSN != lsn || !errors.Is(sum.Stop, tc.want) {
			t.Fatalf("%s: scan stopped at %v, want %v at %s", tc.name, sum.Stop, tc.want, lsn)
		}
		src.segs[seg.seg] = d
		r, err := wal.NewReader(context.Background(), src, start, wal.Options{SegmentSize: walname.MinSegmentSize})
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
		}
		var ce *wal.ContentError
		if !errors.As(r.Err(), &ce) || ce.LSN != lsn || ce.Err.Error() != sum.Stop.Err.Error() {
			t.Fatalf("%s: reader stopped with %v, scan with %v", tc.name, r.Err(), sum.Stop)
		}
	}
}
