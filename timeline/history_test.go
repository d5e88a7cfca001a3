package timeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/walaudit/walaudit/walname"
)

func lsn(t testing.TB, s string) walname.LSN {
	t.Helper()
	l, err := walname.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// entriesString renders entries compactly for table tests.
func entriesString(es []Entry) string {
	var parts []string
	for _, e := range es {
		parts = append(parts, e.String())
	}
	return strings.Join(parts, " ")
}

func TestParseHistoryAccepts(t *testing.T) {
	for _, c := range []struct {
		name string
		tli  walname.TimelineID
		data string
		want string // entriesString
	}{
		{"nil is a root", 5, "", "5 [0/0, end)"},
		{"timeline 1", 1, "", "1 [0/0, end)"},
		{"one line", 2, "1\t0/A002E8\tat restore point \"rp1\"\n", "1 [0/0, 0/A002E8) 2 [0/A002E8, end)"},
		{"copied parent, blank line between", 3, "1\t0/A002E8\tx\n\n2\t0/C00120\ty\n",
			"1 [0/0, 0/A002E8) 2 [0/A002E8, 0/C00120) 3 [0/C00120, end)"},
		{"no final newline", 2, "1\t0/A002E8", "1 [0/0, 0/A002E8) 2 [0/A002E8, end)"},
		{"blanks instead of tabs", 2, "1 0/A002E8 reason with  blanks\n", "1 [0/0, 0/A002E8) 2 [0/A002E8, end)"},
		{"leading blanks", 2, "  \t1\t0/A002E8\n", "1 [0/0, 0/A002E8) 2 [0/A002E8, end)"},
		{"comment and whitespace-only lines", 2, "# made by hand\n   \n\t\n\v\f\r\n  # indented comment\n1\t0/A002E8\n", "1 [0/0, 0/A002E8) 2 [0/A002E8, end)"},
		{"CRLF", 2, "1\t0/A002E8\treason\r\n", "1 [0/0, 0/A002E8) 2 [0/A002E8, end)"},
		{"lower-case hex", 2, "1\t0/a002e8\n", "1 [0/0, 0/A002E8) 2 [0/A002E8, end)"},
		{"zero-padded low half (%X/%08X, newer servers)", 2, "1\t0/00A002E8\n", "1 [0/0, 0/A002E8) 2 [0/A002E8, end)"},
		{"gaps in TLIs are fine", 9, "1\t0/A\n4\t0/B\n", "1 [0/0, 0/A) 4 [0/A, 0/B) 9 [0/B, end)"},
		{"backwards switch point is legal", 4, "1\t0/A002E8\n2\t0/C00120\n3\t0/B00100\n",
			"1 [0/0, 0/A002E8) 2 [0/A002E8, 0/C00120) 3 [0/C00120, 0/B00100) 4 [0/B00100, end)"},
		{"NUL ends the line as in a C string", 2, "1\t0/A002E8\x00garbage\n", "1 [0/0, 0/A002E8) 2 [0/A002E8, end)"},
		{"line starting with NUL is empty", 2, "\x00junk\n1\t0/A\n", "1 [0/0, 0/A) 2 [0/A, end)"},
		{"a comment may follow a blank", 2, "1\t0/A\t# not a comment, the reason\n", "1 [0/0, 0/A) 2 [0/A, end)"},
		{"max timeline", 0xFFFFFFFF, "4294967294\tFFFFFFFF/FFFFFFFF\n", "4294967294 [0/0, FFFFFFFF/FFFFFFFF) 4294967295 [FFFFFFFF/FFFFFFFF, end)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := ParseHistory(c.tli, []byte(c.data))
			if err != nil {
				t.Fatalf("ParseHistory: %v", err)
			}
			if got := entriesString(h.Entries()); got != c.want {
				t.Errorf("entries = %s\nwant      %s", got, c.want)
			}
			if h.TLI() != c.tli || h.Tip().TLI != c.tli || !h.Tip().IsTip() || h.Tip().End != 0 {
				t.Errorf("tip = %+v, want timeline %d open-ended", h.Tip(), c.tli)
			}
		})
	}
}

func TestParseHistoryReasonsAndLines(t *testing.T) {
	h, err := ParseHistory(4, []byte("1\t0/A002E8\tat restore point \"rp1\"\n\n2\t0/C00120\tbefore 2026-11-21 00:34:28.537138+00\n\n\n3\t0/C00200\n"))
	if err != nil {
		t.Fatal(err)
	}
	es := h.Entries()
	for i, want := range []struct {
		line   int
		reason string
	}{{1, `at restore point "rp1"`}, {3, "before 2026-11-21 00:34:28.537138+00"}, {6, ""}, {0, ""}} {
		if es[i].Line != want.line || es[i].Reason != want.reason {
			t.Errorf("entry %d: line %d reason %q, want line %d reason %q", i, es[i].Line, es[i].Reason, want.line, want.reason)
		}
	}
	// Entries returns a copy.
	es[0].TLI = 99
	if h.Entries()[0].TLI != 1 {
		t.Error("Entries exposes the history's own slice")
	}
}

func TestParseHistoryRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		tli  walname.TimelineID
		data string
		is   error
		line int
		msg  string // substring of the error
	}{
		{"only a TLI", 2, "1\n", ErrSyntax, 1, "want a switch point"},
		{"only a TLI and blanks", 2, "1 \t\n", ErrSyntax, 1, "want a switch point"},
		{"garbage", 2, "garbage\n", ErrSyntax, 1, "want a numeric timeline ID"},
		{"garbage on line 3", 3, "1\t0/A\n\nfoo 0/B\n", ErrSyntax, 3, "want a numeric timeline ID"},
		{"sign", 2, "+1\t0/A\n", ErrSyntax, 1, "want a numeric timeline ID"},
		{"negative", 2, "-1\t0/A\n", ErrSyntax, 1, "want a numeric timeline ID"},
		{"no blank after TLI", 2, "1A/B\n", ErrSyntax, 1, "want blanks"},
		{"TLI 0", 2, "0\t0/A\n", ErrSyntax, 1, "timeline 0"},
		{"TLI too big", 2, "4294967296\t0/A\n", ErrSyntax, 1, "32 bits"},
		{"switch point garbage", 2, "1\tfoo\n", ErrSyntax, 1, "switch point"},
		{"switch point without slash", 2, "1\tA002E8\n", ErrSyntax, 1, "switch point"},
		{"switch point with text glued on", 2, "1\t0/A002E8xyz\n", ErrSyntax, 1, "switch point"},
		{"switch point with 9 digits", 2, "1\t0/123456789\n", ErrSyntax, 1, "switch point"},
		{"switch point 0x", 2, "1\t0x0/A\n", ErrSyntax, 1, "switch point"},
		{"TLIs equal", 3, "1\t0/A\n1\t0/B\n", ErrNotIncreasing, 2, "timeline 1 follows timeline 1"},
		{"TLIs decrease", 3, "2\t0/A\n1\t0/B\n", ErrNotIncreasing, 2, "timeline 1 follows timeline 2"},
		{"TLI equals own", 2, "2\t0/A\n", ErrNotIncreasing, 1, "not below the file's own timeline 2"},
		{"TLI above own", 2, "1\t0/A\n5\t0/B\n", ErrNotIncreasing, 2, "not below the file's own timeline 2"},
		{"timeline 1 file with a line", 1, "1\t0/A\n", ErrNotIncreasing, 1, "not below"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := ParseHistory(c.tli, []byte(c.data))
			if err == nil {
				t.Fatalf("ParseHistory = %s, want an error", entriesString(h.Entries()))
			}
			if !errors.Is(err, c.is) {
				t.Errorf("error %v does not wrap %v", err, c.is)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if pe.Line != c.line || pe.TLI != c.tli {
				t.Errorf("ParseError at %s line %d, want line %d", walname.HistoryName(pe.TLI), pe.Line, c.line)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.msg) || !strings.HasPrefix(msg, walname.HistoryName(c.tli)+" line ") {
				t.Errorf("error %q lacks %q or the file/line prefix", msg, c.msg)
			}
		})
	}
	if _, err := ParseHistory(0, nil); err == nil {
		t.Error("ParseHistory(0) accepted timeline 0")
	}
}

func TestParseErrorTruncatesLongLines(t *testing.T) {
	_, err := ParseHistory(2, []byte("x"+strings.Repeat("y", 500)+"\n"))
	if err == nil || len(err.Error()) > 250 {
		t.Fatalf("error = %v, want a short message", err)
	}
}

// history3 is the real 00000003.history of FORMATS §1.6.
const history3 = "1\t0/A002E8\tat restore point \"rp1\"\n\n2\t0/C00120\tno recovery target specified\n"

func TestTLIAtAndSwitchPoint(t *testing.T) {
	h, err := ParseHistory(3, []byte(history3))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   string
		want walname.TimelineID
	}{
		{"0/0", 1}, {"0/1", 1}, {"0/A002E7", 1}, {"0/A002E8", 2}, {"0/C0011F", 2}, {"0/C00120", 3},
		{"FFFFFFFF/FFFFFFFF", 3},
	} {
		if got := h.TLIAt(lsn(t, c.at)); got != c.want {
			t.Errorf("TLIAt(%s) = %d, want %d", c.at, got, c.want)
		}
	}
	for _, c := range []struct {
		tli  walname.TimelineID
		at   string
		next walname.TimelineID
		ok   bool
	}{
		{1, "0/A002E8", 2, true},
		{2, "0/C00120", 3, true},
		{3, "0/0", 0, true}, // the tip: not left
		{4, "0/0", 0, false},
	} {
		at, next, ok := h.SwitchPoint(c.tli)
		if at != lsn(t, c.at) || next != c.next || ok != c.ok {
			t.Errorf("SwitchPoint(%d) = %s, %d, %v; want %s, %d, %v", c.tli, at, next, ok, c.at, c.next, c.ok)
		}
		if h.Contains(c.tli) != c.ok {
			t.Errorf("Contains(%d) = %v", c.tli, !c.ok)
		}
	}
	if p, fork, ok := h.Parent(); p != 2 || fork != lsn(t, "0/C00120") || !ok {
		t.Errorf("Parent = %d, %s, %v; want 2, 0/C00120", p, fork, ok)
	}
	root, _ := ParseHistory(1, nil)
	if _, _, ok := root.Parent(); ok {
		t.Error("timeline 1 has a parent")
	}
	if e, ok := h.Entry(2); !ok || e.Begin != lsn(t, "0/A002E8") || e.Reason != "no recovery target specified" {
		t.Errorf("Entry(2) = %+v, %v", e, ok)
	}
	if _, ok := h.Entry(7); ok {
		t.Error("Entry(7) found")
	}
	if len(h.Backwards()) != 0 {
		t.Errorf("Backwards = %v, want none", h.Backwards())
	}
}

// TestTLIAtBackwards follows tliOfPointInHistory through a file whose last
// switch point is lower than the one before: entries are tried newest first.
func TestTLIAtBackwards(t *testing.T) {
	h, err := ParseHistory(4, []byte("1\t0/A002E8\n2\t0/C00120\n3\t0/B00100\n"))
	if err != nil {
		t.Fatal(err)
	}
	for at, want := range map[string]walname.TimelineID{
		"0/A002E7": 1, "0/A002E8": 2, "0/B000FF": 2, "0/B00100": 4, "0/C00120": 4, "0/C00200": 4,
	} {
		if got := h.TLIAt(lsn(t, at)); got != want {
			t.Errorf("TLIAt(%s) = %d, want %d", at, got, want)
		}
	}
	bw := h.Backwards()
	if len(bw) != 1 || bw[0].TLI != 3 || bw[0].Line != 3 || !bw[0].Backwards() {
		t.Errorf("Backwards = %v, want TLI 3 on line 3", bw)
	}
	// The server's tliSwitchPoint still says TLI 2 was left at 0/C00120.
	if at, next, _ := h.SwitchPoint(2); at != lsn(t, "0/C00120") || next != 3 {
		t.Errorf("SwitchPoint(2) = %s, %d", at, next)
	}
	// The effective path skips TLI 3.
	if got := fmt.Sprint(h.Path(lsn(t, "0/900000"), 0)); got != "[1 [0/900000, 0/A002E8) 2 [0/A002E8, 0/B00100) 4 [0/B00100, end)]" {
		t.Errorf("Path = %s", got)
	}
}

func TestPathBounds(t *testing.T) {
	h, _ := ParseHistory(3, []byte(history3))
	for _, c := range []struct {
		from, until string
		want        string
	}{
		{"0/0", "0/0", "[1 [0/0, 0/A002E8) 2 [0/A002E8, 0/C00120) 3 [0/C00120, end)]"},
		{"0/A002E8", "0/C00120", "[2 [0/A002E8, 0/C00120)]"},
		{"0/A002E7", "0/A002E9", "[1 [0/A002E7, 0/A002E8) 2 [0/A002E8, 0/A002E9)]"},
		{"0/D00000", "0/0", "[3 [0/D00000, end)]"},
		{"0/D00000", "0/D00000", "[]"},
		{"0/D00000", "0/C00000", "[]"},
	} {
		if got := fmt.Sprint(h.Path(lsn(t, c.from), lsn(t, c.until))); got != c.want {
			t.Errorf("Path(%s, %s) = %s, want %s", c.from, c.until, got, c.want)
		}
	}
}

func TestEntryCoversWildcards(t *testing.T) {
	// Begin 0 and End 0 are wildcards, as InvalidXLogRecPtr in the server.
	e := Entry{TLI: 1}
	for _, l := range []walname.LSN{0, 1, 0xFFFFFFFFFFFFFFFF} {
		if !e.Covers(l) {
			t.Errorf("(1, 0, 0).Covers(%s) = false", l)
		}
	}
	e = Entry{TLI: 2, Begin: 10, End: 20, Line: 1}
	for l, want := range map[walname.LSN]bool{9: false, 10: true, 19: true, 20: false} {
		if e.Covers(l) != want {
			t.Errorf("(2, 10, 20).Covers(%d) = %v", l, !want)
		}
	}
	if e.IsTip() || e.Backwards() {
		t.Error("(2, 10, 20) is a tip or backwards")
	}
	if !(Entry{TLI: 3, Begin: 20, End: 10, Line: 2}).Backwards() {
		t.Error("(3, 20, 10) is not backwards")
	}
}

// FuzzParseHistory checks that the parser never panics and that accepted
// histories keep their invariants: the tip is the file's timeline, TLIs
// increase, ranges chain, the text re-serialises to the same entries, and
// TLIAt and Path agree.
func FuzzParseHistory(f *testing.F) {
	for _, s := range []string{
		"", history3, "1\t0/A002E8\tat restore point \"rp1\"\n", "1\n", "garbage", "2\t0/A\n1\t0/B\n",
		"# c\n  \n1 0/a\r\n", "1\t0/A002E8\x00x\n", "1\t0/A002E8\n2\t0/C00120\n3\t0/B00100\n", "1A/B\n",
		"4294967295\t0/0\n", "1\t0/0\n2\t0/0\n",
	} {
		f.Add(uint32(4), s)
	}
	f.Fuzz(func(t *testing.T, tli uint32, data string) {
		if tli == 0 {
			tli = 1
		}
		if len(data) > 64<<10 {
			return // real files are a few lines; the checks below are quadratic in unsorted histories
		}
		h, err := ParseHistory(walname.TimelineID(tli), []byte(data))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !(errors.Is(err, ErrSyntax) || errors.Is(err, ErrNotIncreasing)) {
				t.Fatalf("error %v is not a classified *ParseError", err)
			}
			return
		}
		es := h.Entries()
		if len(es) == 0 || es[len(es)-1].TLI != walname.TimelineID(tli) || es[0].Begin != 0 {
			t.Fatalf("bad entries %v", es)
		}
		var b strings.Builder
		for i, e := range es {
			if i > 0 && (e.TLI <= es[i-1].TLI || e.Begin != es[i-1].End) {
				t.Fatalf("entries do not chain: %v", es)
			}
			if !e.IsTip() {
				fmt.Fprintf(&b, "%d\t%s\t%s\n", e.TLI, e.End, e.Reason)
			}
		}
		again, err := ParseHistory(walname.TimelineID(tli), []byte(b.String()))
		if err != nil {
			t.Fatalf("re-serialised %q: %v", b.String(), err)
		}
		if entriesString(again.Entries()) != entriesString(es) {
			t.Fatalf("round trip changed %v into %v", es, again.Entries())
		}
		for i, e := range again.Entries() {
			if e.Reason != es[i].Reason {
				t.Fatalf("reason %q became %q", es[i].Reason, e.Reason)
			}
		}
		for _, p := range breakpoints(es, 0, 0) {
			for _, x := range []walname.LSN{p - 1, p} {
				if got, want := h.TLIAt(x), tliAtScan(es, x); got != want {
					t.Fatalf("TLIAt(%s) = %d, the server's scan gives %d (entries %v)", x, got, want, es)
				}
			}
		}
		spans := h.Path(0, 0)
		for i, sp := range spans {
			if h.TLIAt(sp.BeginLSN) != sp.Timeline {
				t.Fatalf("span %v disagrees with TLIAt", sp)
			}
			if i > 0 && (sp.BeginLSN != spans[i-1].EndLSN || sp.Timeline == spans[i-1].Timeline) {
				t.Fatalf("spans not contiguous or not maximal: %v", spans)
			}
			if sp.EndLSN != 0 && h.TLIAt(sp.EndLSN-1) != sp.Timeline {
				t.Fatalf("span %v disagrees with TLIAt at its end", sp)
			}
		}
		if spans[len(spans)-1].EndLSN != 0 {
			t.Fatalf("path %v does not run to the end", spans)
		}
	})
}

func TestJSONOpenEnd(t *testing.T) {
	h, _ := ParseHistory(3, []byte(history3))
	b, err := json.Marshal(h.Path(0x900028, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"timeline":1,"begin_lsn":"0/900028","end_lsn":"0/A002E8"},{"timeline":2,"begin_lsn":"0/A002E8","end_lsn":"0/C00120"},{"timeline":3,"begin_lsn":"0/C00120","end_lsn":null}]`
	if string(b) != want {
		t.Errorf("Path JSON = %s\nwant        %s", b, want)
	}
	var back []Span
	if err := json.Unmarshal(b, &back); err != nil || fmt.Sprint(back) != fmt.Sprint(h.Path(0x900028, 0)) {
		t.Errorf("decoded %v, %v", back, err)
	}
	b, err = json.Marshal(h.Entries())
	if err != nil {
		t.Fatal(err)
	}
	want = `[{"tli":1,"begin":"0/0","reason":"at restore point \"rp1\"","line":1,"end":"0/A002E8"},{"tli":2,"begin":"0/A002E8","reason":"no recovery target specified","line":3,"end":"0/C00120"},{"tli":3,"begin":"0/C00120","end":null}]`
	if string(b) != want {
		t.Errorf("Entries JSON = %s\nwant           %s", b, want)
	}
}

// TestPathLargeHistory is a regression test: Path scanned every entry at
// every switch point, so a crafted 50,000-line file took seconds (and
// stalled the fuzzer). Sorted histories now use a binary search.
func TestPathLargeHistory(t *testing.T) {
	var b strings.Builder
	const n = 50000
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d\t0/%X\n", i, i*16)
	}
	h, err := ParseHistory(n+1, []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	spans := h.Path(0, 0)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Path over %d entries took %s", n, d)
	}
	if len(spans) != n+1 || spans[n].Timeline != n+1 || spans[12345].Timeline != 12346 {
		t.Errorf("Path has %d spans", len(spans))
	}
}
