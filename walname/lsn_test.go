package walname

import (
	"errors"
	"strings"
	"testing"
)

func TestParseLSNRoundTrip(t *testing.T) {
	for _, l := range []LSN{
		0,
		1,
		0xA002E8,              // 0/A002E8, FORMATS §1.5
		0x1_0010_0000,         // 1/100000, FORMATS §1.3
		0x285_89001F88,        // 285/89001F88, FORMATS §1.1
		0xFFFFFFFF,            // 0/FFFFFFFF
		0x1_0000_0000,         // 1/0
		0xFFFFFFFF_FFFFFFFF,   // the largest LSN
		0x0000_0001_0000_0001, // 1/1
		0x8000_0000_0000_0000, // high bit set
		0x1234_5678_9ABC_DEF0, // all hex digits in play
		0x0000_0000_FFFF_FFFF, // 0/FFFFFFFF
		0x0000_FFFF_0000_FFFF, // FFFF/FFFF
		0x0000_0000_0000_0010, // 0/10
		0x0000_0000_00A0_0000, // 0/A00000
		0x0000_0000_0100_0000, // 0/1000000, one 16 MiB segment
		0x0000_0003_C000_0000, // 3/C0000000, last 1 GiB segment of log 3
		0x0000_00FF_FF00_0000, // FF/FF000000
		0x0000_0001_0000_0000, // 1/0 again, explicitly
		0x0000_0000_0000_0008, // 0/8
		0x0000_0000_0000_0028, // 0/28, first record offset in a segment
		0x0000_0000_0090_0028, // 0/900028
		0x0000_0000_0090_0100, // 0/900100
		0x0000_0000_00C0_0120, // 0/C00120
		0x0000_0000_00D0_0060, // 0/D00060
		0x0000_0000_00A0_0368, // 0/A00368
		0x0000_0000_0016_B374, // 0/16B374
		0x0000_0000_016B_3748, // 0/16B3748
		0x0000_0016_B374_D848, // 16/B374D848, pg_lsn docs example
		0x0000_0000_0000_0001, // 0/1
		0x0000_0000_8000_0000, // 0/80000000
		0x0000_0001_8000_0000, // 1/80000000
		0x7FFF_FFFF_FFFF_FFFF, // 7FFFFFFF/FFFFFFFF
		0xFFFF_FFFF_0000_0000, // FFFFFFFF/0
		0x0000_0000_FFFF_FFFE, // 0/FFFFFFFE
		0x0000_000A_0000_000A, // A/A
		0x0000_0100_0000_0000, // 100/0
		0x0000_0000_0000_0100, // 0/100
		0x0000_0000_1000_0000, // 0/10000000
		0x1000_0000_1000_0000, // 10000000/10000000
	} {
		got, err := ParseLSN(l.String())
		if err != nil {
			t.Errorf("ParseLSN(%q): %v", l.String(), err)
			continue
		}
		if got != l {
			t.Errorf("ParseLSN(%q) = %#x, want %#x", l.String(), uint64(got), uint64(l))
		}
	}
}

func TestParseLSNAccepts(t *testing.T) {
	for _, c := range []struct {
		in   string
		want LSN
	}{
		{"0/A002E8", 0xA002E8},
		{"0/a002e8", 0xA002E8},                    // either case, as pg_lsn_in
		{"00000000/00A002E8", 0xA002E8},           // zero padding (newer servers pad the low half)
		{"0/00A002E8", 0xA002E8},                  // %X/%08X as written by newer timeline.c
		{"285/89001F88", 0x285_89001F88},          // FORMATS §1.1
		{"FFFFFFFF/FFFFFFFF", 0xFFFFFFFFFFFFFFFF}, // 8 digits each
		{"1/0", 1 << 32},
		{"0/0", 0},
	} {
		got, err := ParseLSN(c.in)
		if err != nil {
			t.Errorf("ParseLSN(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseLSN(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestParseLSNRefuses(t *testing.T) {
	for _, in := range []string{
		"0/16B3748xyz", // trailing garbage that fmt.Sscanf("%X/%X") accepts
		"1/ 2",         // blank inside, also accepted by Sscanf
		" 1/2",         // leading blank
		"1/2 ",         // trailing blank
		"1/2\n",        // trailing newline
		"+1/2",         // sign, strconv.ParseUint would not but ParseInt would
		"1/+2",         // sign in the low half
		"-1/2",         // negative
		"0x1/2",        // C-style prefix
		"1/0x2",        // C-style prefix in the low half
		"1_0/2",        // Go digit separator
		"123456789/0",  // 9 digits in the high half
		"0/123456789",  // 9 digits in the low half
		"000000000/0",  // 9 digits even if zero
		"/",            // both halves empty
		"/1",           // empty high half
		"1/",           // empty low half
		"",             // nothing
		"1",            // no slash
		"A002E8",       // no slash
		"1/2/3",        // two slashes
		"G/0",          // non-hex
		"0/G",          // non-hex
		"0/A002E8\x00", // NUL
		"０/1",          // full-width digit
		"1\\2",         // wrong separator
		"1:2",          // wrong separator
	} {
		got, err := ParseLSN(in)
		if err == nil {
			t.Errorf("ParseLSN(%q) = %s, want an error", in, got)
			continue
		}
		if !errors.Is(err, ErrInvalidLSN) {
			t.Errorf("ParseLSN(%q) error %v does not wrap ErrInvalidLSN", in, err)
		}
		if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] {
			t.Errorf("ParseLSN(%q) error %q does not start in lower case", in, msg)
		}
	}
}

func TestLSNString(t *testing.T) {
	for _, c := range []struct {
		l    LSN
		want string
	}{
		{0, "0/0"},
		{0xA002E8, "0/A002E8"},
		{1 << 32, "1/0"},
		{0x285_89001F88, "285/89001F88"},
		{0xFFFFFFFF_FFFFFFFF, "FFFFFFFF/FFFFFFFF"},
		{0x0000000A_0000000B, "A/B"},
	} {
		if got := c.l.String(); got != c.want {
			t.Errorf("LSN(%#x).String() = %q, want %q", uint64(c.l), got, c.want)
		}
	}
}

func TestLSNTextMarshaling(t *testing.T) {
	l := LSN(0xC00120)
	b, err := l.MarshalText()
	if err != nil || string(b) != "0/C00120" {
		t.Fatalf("MarshalText = %q, %v; want 0/C00120", b, err)
	}
	var back LSN
	if err := back.UnmarshalText(b); err != nil || back != l {
		t.Fatalf("UnmarshalText(%q) = %s, %v; want %s", b, back, err, l)
	}
	before := LSN(42)
	if err := before.UnmarshalText([]byte("0/XYZ")); !errors.Is(err, ErrInvalidLSN) {
		t.Errorf("UnmarshalText(0/XYZ) error = %v, want ErrInvalidLSN", err)
	}
	if before != 42 {
		t.Errorf("UnmarshalText changed the value on error: %s", before)
	}
}

func TestLSNAlign(t *testing.T) {
	for _, c := range []struct{ in, want LSN }{
		{0, 0}, {1, 8}, {7, 8}, {8, 8}, {9, 16},
		{0x9000D8 + 34, 0x900100}, // BACKUP_END at 0/9000D8, 34 bytes, ends at 0/900100 (FORMATS §5.4)
		{0xA00280 + 98, 0xA002E8}, // restore point at 0/A00280, 98 bytes, next record at 0/A002E8 (§1.6)
	} {
		if got := c.in.Align(); got != c.want {
			t.Errorf("LSN(%s).Align() = %s, want %s", c.in, got, c.want)
		}
	}
}

// FuzzParseLSN checks that every accepted text round-trips through String
// and that the accepted language is exactly "1-8 hex digits / 1-8 hex digits".
func FuzzParseLSN(f *testing.F) {
	for _, s := range []string{
		"0/A002E8", "285/89001F88", "FFFFFFFF/FFFFFFFF", "0/0", "00000000/00000000",
		"0/16B3748xyz", "1/ 2", "+1/2", "0x1/2", "123456789/0", "/", "1/", "/1", "", "a/b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLSN(s)
		hi, lo, ok := strings.Cut(s, "/")
		wellFormed := ok && isHexRun(hi) && isHexRun(lo)
		if err != nil {
			if wellFormed {
				t.Fatalf("ParseLSN(%q) refused a well-formed LSN: %v", s, err)
			}
			if !errors.Is(err, ErrInvalidLSN) {
				t.Fatalf("ParseLSN(%q) error %v does not wrap ErrInvalidLSN", s, err)
			}
			return
		}
		if !wellFormed {
			t.Fatalf("ParseLSN(%q) = %s, accepted text that is not X/Y", s, l)
		}
		back, err := ParseLSN(l.String())
		if err != nil || back != l {
			t.Fatalf("round trip of %q: ParseLSN(%q) = %s, %v; want %s", s, l.String(), back, err, l)
		}
		if !strings.EqualFold(trimZeros(hi)+"/"+trimZeros(lo), l.String()) {
			t.Fatalf("ParseLSN(%q) = %s, digits do not match the input", s, l)
		}
	})
}

// isHexRun reports whether s is 1 to 8 hex digits.
func isHexRun(s string) bool {
	if len(s) < 1 || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// trimZeros drops leading zeros but keeps one digit.
func trimZeros(s string) string {
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return "0"
	}
	return t
}
