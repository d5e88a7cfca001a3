package walname

import (
	"errors"
	"testing"
)

const (
	mib1  = SegmentSize(1 << 20)
	mib16 = SegmentSize(16 << 20)
	gib1  = SegmentSize(1 << 30)
)

func TestSegmentSizeValidate(t *testing.T) {
	for _, sz := range []SegmentSize{mib1, 2 << 20, 4 << 20, mib16, 64 << 20, 512 << 20, gib1} {
		if err := sz.Validate(); err != nil {
			t.Errorf("Validate(%d): %v", uint32(sz), err)
		}
	}
	for _, sz := range []SegmentSize{0, 1, 512 << 10, (1 << 20) + 1, 3 << 20, 24 << 20, 1 << 31, 0xFFFFFFFF} {
		if err := sz.Validate(); !errors.Is(err, ErrInvalidSegmentSize) {
			t.Errorf("Validate(%d) = %v, want ErrInvalidSegmentSize", uint32(sz), err)
		}
	}
}

func TestSegmentsPerXLogID(t *testing.T) {
	// FORMATS §1.2: 4096 for 1 MiB, 256 for 16 MiB, 64 for 64 MiB, 4 for 1 GiB.
	for _, c := range []struct {
		sz   SegmentSize
		want uint64
	}{{mib1, 4096}, {mib16, 256}, {64 << 20, 64}, {gib1, 4}} {
		if got := c.sz.SegmentsPerXLogID(); got != c.want {
			t.Errorf("%s.SegmentsPerXLogID() = %d, want %d", c.sz, got, c.want)
		}
	}
}

func TestSegmentSizeString(t *testing.T) {
	for _, c := range []struct {
		sz   SegmentSize
		want string
	}{{mib1, "1MB"}, {mib16, "16MB"}, {gib1, "1024MB"}, {1000, "1000B"}} {
		if got := c.sz.String(); got != c.want {
			t.Errorf("String(%d) = %q, want %q", uint32(c.sz), got, c.want)
		}
	}
}

// TestSegmentMath checks LSN → segment → name against the examples of
// FORMATS §1.2/§1.3, which were measured with pg_walfile_name on a 1 MiB
// cluster, plus the same arithmetic at 16 MiB and 1 GiB.
func TestSegmentMath(t *testing.T) {
	for _, c := range []struct {
		name     string
		sz       SegmentSize
		lsn      string
		face     SegNo  // lsn / size
		faceName string // SegmentName(1, face)
		end      SegNo  // (lsn-1) / size: pg_walfile_name
		endName  string // SegmentName(1, end)
		offset   uint64
	}{
		{"1MiB 0/A002E8", mib1, "0/A002E8", 10, "00000001000000000000000A", 10, "00000001000000000000000A", 0x2E8},
		{"1MiB 1/100000", mib1, "1/100000", 4097, "000000010000000100000001", 4096, "000000010000000100000000", 0},
		{"1MiB 1/0", mib1, "1/0", 4096, "000000010000000100000000", 4095, "000000010000000000000FFF", 0},
		{"1MiB 0/A00000 boundary", mib1, "0/A00000", 10, "00000001000000000000000A", 9, "000000010000000000000009", 0},
		{"1MiB 0/A00001", mib1, "0/A00001", 10, "00000001000000000000000A", 10, "00000001000000000000000A", 1},
		{"1MiB 0/900028 backup start", mib1, "0/900028", 9, "000000010000000000000009", 9, "000000010000000000000009", 0x28},
		{"16MiB 0/16B3748", mib16, "0/16B3748", 1, "000000010000000000000001", 1, "000000010000000000000001", 0x6B3748},
		{"16MiB 1/0", mib16, "1/0", 256, "000000010000000100000000", 255, "0000000100000000000000FF", 0},
		{"16MiB 285/89001F88", mib16, "285/89001F88", 0x285*256 + 0x89, "000000010000028500000089", 0x285*256 + 0x89, "000000010000028500000089", 0x1F88},
		{"16MiB 0/FF000000", mib16, "0/FF000000", 255, "0000000100000000000000FF", 254, "0000000100000000000000FE", 0},
		{"1GiB 0/C0000000", gib1, "0/C0000000", 3, "000000010000000000000003", 2, "000000010000000000000002", 0},
		{"1GiB 1/40000001", gib1, "1/40000001", 5, "000000010000000100000001", 5, "000000010000000100000001", 1},
		{"1GiB 1/0", gib1, "1/0", 4, "000000010000000100000000", 3, "000000010000000000000003", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := ParseLSN(c.lsn)
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Segment(c.sz); got != c.face {
				t.Errorf("Segment = %d, want %d", got, c.face)
			}
			if got := SegmentName(1, l.Segment(c.sz), c.sz); got != c.faceName {
				t.Errorf("face-value name = %s, want %s", got, c.faceName)
			}
			if got := l.EndSegment(c.sz); got != c.end {
				t.Errorf("EndSegment = %d, want %d", got, c.end)
			}
			if got := SegmentName(1, l.EndSegment(c.sz), c.sz); got != c.endName {
				t.Errorf("end-pointer name = %s, want %s", got, c.endName)
			}
			if got := l.Offset(c.sz); got != c.offset {
				t.Errorf("Offset = %#x, want %#x", got, c.offset)
			}
			// The segment's first byte is at or before l, the next one's after.
			if start := c.sz.StartLSN(c.face); start > l || l-start >= LSN(c.sz) {
				t.Errorf("StartLSN(%d) = %s does not bracket %s", c.face, start, l)
			}
			// And the name parses back to the same segment number.
			n, err := Parse(c.faceName)
			if err != nil {
				t.Fatal(err)
			}
			if seg, err := n.SegNo(c.sz); err != nil || seg != c.face {
				t.Errorf("Parse(%s).SegNo = %d, %v; want %d", c.faceName, seg, err, c.face)
			}
		})
	}
}

func TestEndSegmentOfZero(t *testing.T) {
	// InvalidLSN has no "previous byte"; the helper must not wrap around.
	if got := InvalidLSN.EndSegment(mib16); got != 0 {
		t.Errorf("EndSegment(0) = %d, want 0", got)
	}
}

func TestStartLSN(t *testing.T) {
	for _, c := range []struct {
		sz   SegmentSize
		seg  SegNo
		want string
	}{
		{mib1, 10, "0/A00000"},
		{mib1, 4096, "1/0"},
		{mib16, 1, "0/1000000"},
		{mib16, 256, "1/0"},
		{gib1, 5, "1/40000000"},
	} {
		if got := c.sz.StartLSN(c.seg).String(); got != c.want {
			t.Errorf("%s.StartLSN(%d) = %s, want %s", c.sz, c.seg, got, c.want)
		}
	}
}

func TestSegmentNameTimelineIsHex(t *testing.T) {
	if got := SegmentName(11, 10, mib1); got != "0000000B000000000000000A" {
		t.Errorf("SegmentName(11, 10) = %s", got)
	}
	if got := SegmentName(0xFFFFFFFF, 0xFFFFFFFF*256+0xFF, mib16); got != "FFFFFFFFFFFFFFFF000000FF" {
		t.Errorf("SegmentName(max) = %s", got)
	}
}
