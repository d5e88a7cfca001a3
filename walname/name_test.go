package walname

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// sha1Hex is a 40-character lower-case hex string as pgBackRest appends.
const sha1Hex = "0123456789abcdef0123456789abcdef01234567"

func TestParseNames(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Name
		base string
	}{
		{"00000001000000000000000A", Name{Kind: KindSegment, TLI: 1, Log: 0, Seg: 0xA}, "00000001000000000000000A"},
		{"0000000B0000028500000089", Name{Kind: KindSegment, TLI: 11, Log: 0x285, Seg: 0x89}, "0000000B0000028500000089"},
		{"00000002000000000000000C.partial", Name{Kind: KindPartial, TLI: 2, Seg: 0xC}, "00000002000000000000000C.partial"},
		{"000000010000000000000009.00000028.backup", Name{Kind: KindBackupHistory, TLI: 1, Seg: 9, Offset: 0x28}, "000000010000000000000009.00000028.backup"},
		{"00000002.history", Name{Kind: KindTimelineHistory, TLI: 2}, "00000002.history"},
		{"0000000B.history", Name{Kind: KindTimelineHistory, TLI: 11}, "0000000B.history"},
		// pgBackRest: -<sha1> with and without compression.
		{"00000001000000000000000A-" + sha1Hex, Name{Kind: KindSegment, TLI: 1, Seg: 0xA, Checksum: sha1Hex}, "00000001000000000000000A"},
		{"00000001000000000000000A-" + sha1Hex + ".gz", Name{Kind: KindSegment, TLI: 1, Seg: 0xA, Checksum: sha1Hex, Compression: CompressGzip}, "00000001000000000000000A"},
		{"00000001000000000000000A-" + sha1Hex + ".lz4", Name{Kind: KindSegment, TLI: 1, Seg: 0xA, Checksum: sha1Hex, Compression: CompressLZ4}, "00000001000000000000000A"},
		{"00000001000000000000000A-" + sha1Hex + ".zst", Name{Kind: KindSegment, TLI: 1, Seg: 0xA, Checksum: sha1Hex, Compression: CompressZstd}, "00000001000000000000000A"},
		{"00000001000000000000000A-" + sha1Hex + ".br", Name{Kind: KindSegment, TLI: 1, Seg: 0xA, Checksum: sha1Hex, Compression: CompressBrotli}, "00000001000000000000000A"},
		{"00000001000000000000000A-" + sha1Hex + ".bz2", Name{Kind: KindSegment, TLI: 1, Seg: 0xA, Checksum: sha1Hex, Compression: CompressBzip2}, "00000001000000000000000A"},
		{"00000001000000000000000A-" + sha1Hex + ".xz", Name{Kind: KindSegment, TLI: 1, Seg: 0xA, Checksum: sha1Hex, Compression: CompressXZ}, "00000001000000000000000A"},
		{"00000002000000000000000C.partial-" + sha1Hex + ".zst", Name{Kind: KindPartial, TLI: 2, Seg: 0xC, Checksum: sha1Hex, Compression: CompressZstd}, "00000002000000000000000C.partial"},
		{"00000002000000000000000C.partial-" + sha1Hex, Name{Kind: KindPartial, TLI: 2, Seg: 0xC, Checksum: sha1Hex}, "00000002000000000000000C.partial"},
		// WAL-G / barman-cloud: plain name plus compression.
		{"00000001000000000000000A.lz4", Name{Kind: KindSegment, TLI: 1, Seg: 0xA, Compression: CompressLZ4}, "00000001000000000000000A"},
		{"00000001000000000000000A.lzma", Name{Kind: KindSegment, TLI: 1, Seg: 0xA, Compression: CompressLZMA}, "00000001000000000000000A"},
		{"00000001000000000000000A.snappy", Name{Kind: KindSegment, TLI: 1, Seg: 0xA, Compression: CompressSnappy}, "00000001000000000000000A"},
		{"00000002.history.gz", Name{Kind: KindTimelineHistory, TLI: 2, Compression: CompressGzip}, "00000002.history"},
		{"00000002000000000000000C.partial.br", Name{Kind: KindPartial, TLI: 2, Seg: 0xC, Compression: CompressBrotli}, "00000002000000000000000C.partial"},
		{"000000010000000000000009.00000028.backup.lz4", Name{Kind: KindBackupHistory, TLI: 1, Seg: 9, Offset: 0x28, Compression: CompressLZ4}, "000000010000000000000009.00000028.backup"},
	} {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("Parse(%q) = %+v, want %+v", c.in, got, c.want)
		}
		if b := got.Base(); b != c.base {
			t.Errorf("Parse(%q).Base() = %q, want %q", c.in, b, c.base)
		}
		if r := render(got); r != c.in {
			t.Errorf("render(Parse(%q)) = %q", c.in, r)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, in := range []string{
		"",
		"00000001000000000000000a",  // lower-case hex: PostgreSQL never asks for it
		"0000000100000000000000aA",  // mixed case
		"00000000000000000000000A",  // timeline 0
		"00000000.history",          // timeline 0
		"0000000a.history",          // lower-case history
		"2.history",                 // short history name
		"000000002.history",         // 9 digits
		"00000001000000000000000",   // 23 characters
		"00000001000000000000000AB", // 25 characters
		"00000001000000000000000A.partial.partial",             // doubled suffix
		"00000001000000000000000A.Partial",                     // wrong case
		"00000001000000000000000A-" + sha1Hex[:39],             // short checksum
		"00000001000000000000000A-" + sha1Hex + "0",            // long checksum
		"00000001000000000000000A-" + strings.ToUpper(sha1Hex), // upper-case checksum
		"00000001000000000000000A_" + sha1Hex,                  // wrong separator
		"00000001000000000000000A-" + sha1Hex + ".rar",         // unknown compression
		"00000001000000000000000A.00000028.backup.partial",     // nonsense
		"000000010000000000000009.0000002.backup",              // 7-digit offset
		"000000010000000000000009.0000002g.backup",             // lower/non-hex offset
		"000000010000000000000009.00000028.BACKUP",             // wrong case
		"backup_label",
		"RECOVERYXLOG",
		"archive_status",
		"00000001000000000000000A.ready",
		"00000001000000000000000A.done",
		".history",
		".gz",
	} {
		n, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", in, n)
			continue
		}
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("Parse(%q) error %v does not wrap ErrInvalidName", in, err)
		}
	}
}

func TestNameSegNo(t *testing.T) {
	n, err := Parse("000000010000000000000100")
	if err != nil {
		t.Fatal(err)
	}
	// ...00000100 cannot exist with 16 MiB segments (only 00..FF per log).
	if seg, err := n.SegNo(mib16); !errors.Is(err, ErrInvalidName) {
		t.Errorf("SegNo(16MiB) of ...00000100 = %d, %v; want ErrInvalidName", seg, err)
	}
	// ... but is segment 256 with 1 MiB segments (4096 per log).
	if seg, err := n.SegNo(mib1); err != nil || seg != 256 {
		t.Errorf("SegNo(1MiB) of ...00000100 = %d, %v; want 256", seg, err)
	}
	// With 1 GiB segments the seg field only goes to 3.
	n4, _ := Parse("000000010000000000000004")
	if _, err := n4.SegNo(gib1); !errors.Is(err, ErrInvalidName) {
		t.Errorf("SegNo(1GiB) of ...00000004 = %v, want ErrInvalidName", err)
	}
	n3, _ := Parse("000000010000000100000003")
	if seg, err := n3.SegNo(gib1); err != nil || seg != 7 {
		t.Errorf("SegNo(1GiB) of ...0000000100000003 = %d, %v; want 7", seg, err)
	}
	// Partial and .backup names carry a segment number too.
	p, _ := Parse("00000002000000000000000C.partial")
	if seg, err := p.SegNo(mib1); err != nil || seg != 12 {
		t.Errorf("SegNo of partial = %d, %v; want 12", seg, err)
	}
	b, _ := Parse("000000010000000000000009.00000028.backup")
	if seg, err := b.SegNo(mib1); err != nil || seg != 9 {
		t.Errorf("SegNo of .backup = %d, %v; want 9", seg, err)
	}
	// History files do not.
	h, _ := Parse("00000002.history")
	if _, err := h.SegNo(mib1); !errors.Is(err, ErrInvalidName) {
		t.Errorf("SegNo of history = %v, want ErrInvalidName", err)
	}
}

// TestNameSegNoInvalidSize is a regression test: SegNo used to divide
// 2^32 by the size, so a zero size panicked with "integer divide by zero"
// and a non-power-of-two size silently produced a wrong segment number.
func TestNameSegNoInvalidSize(t *testing.T) {
	n, _ := Parse("00000001000000000000000A")
	for _, sz := range []SegmentSize{0, 3 << 20} {
		if seg, err := n.SegNo(sz); !errors.Is(err, ErrInvalidSegmentSize) {
			t.Errorf("SegNo(%d) = %d, %v; want ErrInvalidSegmentSize", uint32(sz), seg, err)
		}
	}
}

func TestNameHelpers(t *testing.T) {
	if got := HistoryName(11); got != "0000000B.history" {
		t.Errorf("HistoryName(11) = %s", got)
	}
	if got := BackupHistoryName(1, 0x900028, mib1); got != "000000010000000000000009.00000028.backup" {
		t.Errorf("BackupHistoryName = %s", got) // FORMATS §1.5 example
	}
	for s, want := range map[string]bool{
		"00000001000000000000000A": true, "00000001000000000000000a": false,
		"00000001000000000000000A.partial": false, "00000002.history": false,
	} {
		if got := IsSegmentName(s); got != want {
			t.Errorf("IsSegmentName(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{
		"00000002.history": true, "00000000.history": false, "0000000a.history": false,
		"00000002.history.gz": false, "2.history": false,
	} {
		if got := IsHistoryName(s); got != want {
			t.Errorf("IsHistoryName(%q) = %v", s, got)
		}
	}
	n, _ := Parse("00000002000000000000000C.partial-" + sha1Hex + ".zst")
	if got := n.SegmentBase(); got != "00000002000000000000000C" {
		t.Errorf("SegmentBase = %s", got)
	}
}

func TestParseTimelineID(t *testing.T) {
	for s, want := range map[string]TimelineID{"1": 1, "11": 11, "4294967295": 0xFFFFFFFF} {
		if got, err := ParseTimelineID(s); err != nil || got != want {
			t.Errorf("ParseTimelineID(%q) = %d, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "0", "-1", "+1", "0x2", "4294967296", "1 ", "B"} {
		if got, err := ParseTimelineID(s); err == nil {
			t.Errorf("ParseTimelineID(%q) = %d, want an error", s, got)
		}
	}
	if TimelineID(11).String() != "11" {
		t.Errorf("TimelineID(11).String() = %s, want decimal 11", TimelineID(11))
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{
		KindUnknown: "unknown", KindSegment: "segment", KindPartial: "partial",
		KindBackupHistory: "backup_history", KindTimelineHistory: "timeline_history", Kind(99): "kind(99)",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

// render rebuilds the full object name (with checksum and compression
// suffixes) from a parsed Name.
func render(n Name) string {
	var s string
	switch n.Kind {
	case KindSegment:
		s = n.SegmentBase()
		if n.Checksum != "" {
			s += "-" + n.Checksum
		}
	case KindPartial:
		s = n.SegmentBase() + ".partial"
		if n.Checksum != "" {
			s += "-" + n.Checksum
		}
	default:
		s = n.Base()
	}
	if n.Compression != CompressNone {
		s += "." + string(n.Compression)
	}
	return s
}

// FuzzParse checks that Parse never panics and that every accepted name
// re-renders: its Base is a prefix of the input and the full rendering,
// suffixes included, is the input itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"00000001000000000000000A", "00000002000000000000000C.partial", "00000002.history",
		"000000010000000000000009.00000028.backup", "00000001000000000000000A-" + sha1Hex + ".zst",
		"00000002000000000000000C.partial-" + sha1Hex + ".gz", "00000001000000000000000a", "00000000.history",
		"00000001000000000000000A.lz4", ".gz", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalidName", s, err)
			}
			return
		}
		if n.TLI == 0 {
			t.Fatalf("Parse(%q) accepted timeline 0", s)
		}
		if b := n.Base(); b == "" || !strings.HasPrefix(s, b) {
			t.Fatalf("Parse(%q).Base() = %q is not a prefix of the input", s, b)
		}
		if r := render(n); r != s {
			t.Fatalf("Parse(%q) renders back as %q", s, r)
		}
		for _, sz := range []SegmentSize{mib1, mib16, gib1} {
			seg, err := n.SegNo(sz)
			if err != nil {
				continue
			}
			if got := SegmentName(n.TLI, seg, sz); got != n.SegmentBase() {
				t.Fatalf("Parse(%q): SegmentName(SegNo(%s)) = %s", s, sz, got)
			}
		}
	})
}

// TestSegmentNameMatchesPrintf: the hand formatting equals the server's
// "%08X%08X%08X" for every segment size and edge values.
func TestSegmentNameMatchesPrintf(t *testing.T) {
	for sz := SegmentSize(1 << 20); sz <= 1<<30; sz <<= 1 {
		per := sz.SegmentsPerXLogID()
		for _, tli := range []TimelineID{1, 2, 0xA, 0xFFFFFFFF} {
			for _, seg := range []SegNo{0, 1, 0xFF, SegNo(per - 1), SegNo(per), SegNo(per*0x1234 + 7), SegNo(per*0xFFFFFFFF + per - 1)} {
				want := fmt.Sprintf("%08X%08X%08X", uint32(tli), uint32(uint64(seg)/per), uint32(uint64(seg)%per))
				if got := SegmentName(tli, seg, sz); got != want {
					t.Fatalf("SegmentName(%d, %d, %s) = %s, want %s", tli, seg, sz, got, want)
				}
			}
		}
	}
}
