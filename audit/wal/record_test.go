package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/audit/wal/internal/walfixture"
)

func encode(spec walfixture.BodySpec) []byte {
	return walfixture.Rec{RmID: 10, XID: 5, Body: spec.Bytes()}.Encode(0x1000)
}

func u16p(v uint16) *uint16 { return &v }

var rel = [3]uint32{1663, 5, 16384}

func TestDecodeRecord(t *testing.T) {
	top := uint32(99)
	raw := encode(walfixture.BodySpec{
		Blocks: []walfixture.Block{
			{ID: 0, Rel: rel, BlockNo: 7, Data: []byte("abc"), Flags: wal.BlockWillInit},
			{ID: 3, SameRel: true, BlockNo: 8, Image: bytes.Repeat([]byte{1}, 100), HoleOffset: 40, BimgInfo: 0x05, Compressed: true, HoleLength: 5000},
			{ID: 4, Rel: [3]uint32{1, 2, 3}, Fork: 1, Image: bytes.Repeat([]byte{2}, 8192), BimgInfo: 0x02},
		},
		ToplevelXID: &top,
		Main:        []byte("main"),
	})
	var rec wal.Record
	if err := wal.VerifyCRC(raw); err != nil {
		t.Fatal(err)
	}
	if err := wal.DecodeRecord(raw, 15, 0, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.TotLen != uint32(len(raw)) || rec.XID != 5 || rec.Prev != 0x1000 || rec.RmID != wal.RmHeap || rec.Major != 15 ||
		rec.ToplevelXID != 99 || string(rec.MainData) != "main" || len(rec.Blocks) != 3 || &rec.Raw[0] != &raw[0] {
		t.Fatalf("decoded %+v", rec)
	}
	b0, b1, b2 := rec.Blocks[0], rec.Blocks[1], rec.Blocks[2]
	if b0.ID != 0 || b0.Block != 7 || b0.DataLen != 3 || b0.HasImage || b0.Flags&wal.BlockWillInit == 0 || b0.Rel.String() != "1663/5/16384" {
		t.Errorf("block 0: %+v", b0)
	}
	if b1.ID != 3 || b1.Rel != b0.Rel || !b1.HasImage || !b1.Compressed || b1.HoleLength != 5000 || b1.ImageLen != 100 || b1.Apply {
		t.Errorf("block 3: %+v", b1)
	}
	if b2.Fork != 1 || b2.Fork.String() != "fsm" || b2.HoleLength != 0 || !b2.Apply || b2.Compressed || rec.ImageBytes() != 8292 {
		t.Errorf("block 4: %+v, image bytes %d", b2, rec.ImageBytes())
	}

	// The same image bits mean something else before 15: 0x05 is
	// HAS_HOLE|APPLY there, an uncompressed image whose hole is computed.
	raw14 := encode(walfixture.BodySpec{Blocks: []walfixture.Block{
		{ID: 0, Rel: rel, Image: bytes.Repeat([]byte{1}, 100), HoleOffset: 40, BimgInfo: 0x05},
	}})
	if err := wal.DecodeRecord(raw14, 14, 0, &rec); err != nil {
		t.Fatal(err)
	}
	if b := rec.Blocks[0]; b.Compressed || !b.Apply || b.HoleLength != 8092 {
		t.Errorf("14 image: %+v", b)
	}
	if err := wal.DecodeRecord(raw14, 15, 0, &rec); !errors.Is(err, wal.ErrRecordFormat) {
		t.Errorf("15 reading 0x05 as compressed with no hole length: %v", err)
	}

	// A 4 kB BLCKSZ build.
	raw4k := encode(walfixture.BodySpec{Blocks: []walfixture.Block{{ID: 0, Rel: rel, Image: make([]byte, 4096), BimgInfo: 0x02}}})
	if err := wal.DecodeRecord(raw4k, 15, 4096, &rec); err != nil {
		t.Errorf("4 kB image: %v", err)
	}
	if err := wal.DecodeRecord(raw4k, 15, 0, &rec); !errors.Is(err, wal.ErrRecordFormat) {
		t.Errorf("4 kB image with 8 kB blocks: %v", err)
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	img := func(n int) []byte { return bytes.Repeat([]byte{7}, n) }
	top := uint32(1)
	tests := []struct {
		name  string
		major int
		raw   []byte
		want  error
	}{
		{"out_of_order_block", 15, encode(walfixture.BodySpec{Blocks: []walfixture.Block{{ID: 2, Rel: rel}, {ID: 1, Rel: rel}}}), wal.ErrRecordFormat},
		{"duplicate_block", 15, encode(walfixture.BodySpec{Blocks: []walfixture.Block{{ID: 1, Rel: rel}, {ID: 1, Rel: rel}}}), wal.ErrRecordFormat},
		{"has_data_without_data", 15, encode(walfixture.BodySpec{Blocks: []walfixture.Block{{ID: 0, Rel: rel, Data: []byte("x"), DataLen: u16p(0)}}, Main: []byte("x")}), wal.ErrRecordFormat},
		{"data_without_has_data", 15, encode(walfixture.BodySpec{Blocks: []walfixture.Block{{ID: 0, Rel: rel, DataLen: u16p(1)}}, Main: []byte("x")}), wal.ErrRecordFormat},
		{"hole_at_offset_0", 15, encode(walfixture.BodySpec{Blocks: []walfixture.Block{{ID: 0, Rel: rel, Image: img(100), BimgInfo: 0x01}}}), wal.ErrRecordFormat},
		{"hole_flag_full_image", 15, encode(walfixture.BodySpec{Blocks: []walfixture.Block{{ID: 0, Rel: rel, Image: img(8192), HoleOffset: 10, BimgInfo: 0x01}}}), wal.ErrRecordFormat},
		{"hole_offset_without_flag", 15, encode(walfixture.BodySpec{Blocks: []walfixture.Block{{ID: 0, Rel: rel, Image: img(8192), HoleOffset: 10}}}), wal.ErrRecordFormat},
		{"short_image_without_hole", 15, encode(walfixture.BodySpec{Blocks: []walfixture.Block{{ID: 0, Rel: rel, Image: img(8000)}}}), wal.ErrRecordFormat},
		{"compressed_full_size", 15, encode(walfixture.BodySpec{Blocks: []walfixture.Block{{ID: 0, Rel: rel, Image: img(8192), BimgInfo: 0x04, Compressed: true}}}), wal.ErrRecordFormat},
		{"image_longer_than_block", 15, encode(walfixture.BodySpec{Blocks: []walfixture.Block{{ID: 0, Rel: rel, Image: img(9000), HoleOffset: 8, BimgInfo: 0x01}}}), wal.ErrRecordFormat},
		{"same_rel_on_first_block", 15, encode(walfixture.BodySpec{Blocks: []walfixture.Block{{ID: 0, SameRel: true}}}), wal.ErrRecordFormat},
		{"toplevel_xid_in_13", 13, encode(walfixture.BodySpec{ToplevelXID: &top}), wal.ErrRecordFormat},
		{"unsupported_major", 12, encode(walfixture.BodySpec{}), wal.ErrUnsupportedVersion},
		{"custom_rmgr_in_14", 14, walfixture.Rec{RmID: 200}.Encode(0), wal.ErrRmID},
		{"builtin_rmgr_gap", 18, walfixture.Rec{RmID: 22}.Encode(0), wal.ErrRmID},
		{"shorter_than_header", 15, make([]byte, 20), wal.ErrRecordLength},
		{"tot_len_mismatch", 15, func() []byte { b := encode(walfixture.BodySpec{Main: []byte("x")}); return b[:len(b)-1] }(), wal.ErrRecordLength},
		{"invalid_block_id", 15, walfixture.Rec{Body: []byte{33, 0, 0, 0}}.Encode(0), wal.ErrRecordFormat},
		{"fragment_header_past_end", 15, walfixture.Rec{Body: []byte{0, 0x00, 0, 0, 1, 2}}.Encode(0), wal.ErrRecordFormat},
		{"main_data_longer_than_record", 15, walfixture.Rec{Body: []byte{255, 10, 1, 2}}.Encode(0), wal.ErrRecordFormat},
		{"bytes_after_main_data", 15, walfixture.Rec{Body: []byte{255, 1, 1, 2}}.Encode(0), wal.ErrRecordFormat},
		{"long_main_data_length_overflow", 15, walfixture.Rec{Body: []byte{254, 0xff, 0xff, 0xff, 0xff, 1}}.Encode(0), wal.ErrRecordFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rec wal.Record
			err := wal.DecodeRecord(tc.raw, tc.major, 0, &rec)
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
	// The same record is fine where the rules allow it.
	var rec wal.Record
	if err := wal.DecodeRecord(encode(walfixture.BodySpec{ToplevelXID: &top}), 14, 0, &rec); err != nil || rec.ToplevelXID != 1 {
		t.Errorf("toplevel xid in 14: %v", err)
	}
	if err := wal.DecodeRecord(walfixture.Rec{RmID: 200}.Encode(0), 15, 0, &rec); err != nil || rec.RmID.String() != "custom200" {
		t.Errorf("custom rmgr in 15: %v", err)
	}
}

func TestVerifyCRC(t *testing.T) {
	raw := walfixture.Noop(100).Encode(0x1234)
	if err := wal.VerifyCRC(raw); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{0, 18, 19, 24, 99} { // padding bytes 18-19 are covered too
		b := bytes.Clone(raw)
		b[off] ^= 0x40
		if err := wal.VerifyCRC(b); !errors.Is(err, wal.ErrChecksum) {
			t.Errorf("flip at %d: %v", off, err)
		}
	}
	b := bytes.Clone(raw)
	binary.LittleEndian.PutUint32(b[20:], 0)
	if err := wal.VerifyCRC(b); err == nil {
		t.Error("zero CRC accepted")
	}
}

func TestRmgrNames(t *testing.T) {
	for id, want := range map[uint8]string{0: "XLOG", 1: "Transaction", 2: "Storage", 9: "Heap2", 10: "Heap", 11: "Btree", 19: "ReplicationOrigin", 21: "LogicalMessage", 22: "rmgr(22)", 128: "custom128"} {
		if got := wal.RmgrName(id); got != want {
			t.Errorf("RmgrName(%d) = %q, want %q", id, got, want)
		}
	}
}

func TestMajorFromMagic(t *testing.T) {
	for magic, want := range map[uint16]int{0xD106: 13, 0xD10D: 14, 0xD110: 15, 0xD113: 16, 0xD116: 17, 0xD118: 18} {
		got, err := wal.MajorFromMagic(magic)
		if err != nil || got != want {
			t.Errorf("MajorFromMagic(%04X) = %d, %v", magic, got, err)
		}
		if m, err := wal.PageMagic(want); err != nil || m != magic {
			t.Errorf("PageMagic(%d) = %04X, %v", want, m, err)
		}
	}
	for magic, want := range map[uint16]error{0xD101: wal.ErrUnsupportedVersion, 0xD098: wal.ErrUnsupportedVersion, 0xD11A: wal.ErrUnsupportedVersion, 0x1234: wal.ErrBadMagic, 0: wal.ErrBadMagic} {
		if _, err := wal.MajorFromMagic(magic); !errors.Is(err, want) {
			t.Errorf("MajorFromMagic(%04X): %v, want %v", magic, err, want)
		}
	}
}

func TestPageHeaderCheck(t *testing.T) {
	w := walfixture.New(walfixture.Config{})
	w.Append(walfixture.Noop(9000))
	seg := w.Segment(1)
	h, err := wal.DecodePageHeader(seg)
	if err != nil {
		t.Fatal(err)
	}
	if !h.IsLong() || h.Size() != 40 || h.SysID != 7000000000000000001 || h.SegSize != 1<<20 || h.BlockSize != 8192 || h.PageAddr != 0x100000 {
		t.Fatalf("long header %+v", h)
	}
	want := wal.PageExpect{Addr: 0x100000, SysID: h.SysID, SegSize: 1 << 20, PageSize: 8192, MinTLI: 1}
	if err := h.Check(want); err != nil {
		t.Errorf("valid header: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*wal.PageExpect)
		want error
	}{
		{"magic", func(e *wal.PageExpect) { e.Magic = 0xD113 }, wal.ErrBadMagic},
		{"addr", func(e *wal.PageExpect) { e.Addr = 0x200000 }, wal.ErrBadPageAddr},
		{"sysid", func(e *wal.PageExpect) { e.SysID = 1 }, wal.ErrSysID},
		{"segsize", func(e *wal.PageExpect) { e.SegSize = 16 << 20 }, wal.ErrSegmentSize},
		{"pagesize", func(e *wal.PageExpect) { e.PageSize = 16384 }, wal.ErrPageSize},
		{"tli", func(e *wal.PageExpect) { e.MinTLI = 2 }, wal.ErrTimeline},
	} {
		e := want
		tc.mod(&e)
		if err := h.Check(e); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	short, _ := wal.DecodePageHeader(seg[8192:])
	if short.IsLong() || short.Size() != 24 || short.Info&wal.XLPFirstIsContRecord == 0 || short.RemLen == 0 {
		t.Errorf("short header %+v", short)
	}
	// A short header where a segment starts is invalid.
	if err := short.Check(wal.PageExpect{Addr: short.PageAddr - 8192, SegSize: 1 << 20}); !errors.Is(err, wal.ErrPageFlags) {
		t.Errorf("short header at a segment start: %v", err)
	}
	if _, err := wal.DecodePageHeader(seg[:30]); !errors.Is(err, wal.ErrTruncated) {
		t.Errorf("30-byte long header: %v", err)
	}
}
