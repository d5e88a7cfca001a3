package timeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/walaudit/walaudit/walname"
)

// ErrSyntax is wrapped by the [ParseError] for a history file line that is
// not blank, not a comment and not "<decimal TLI> <blanks> <X/Y>". The
// server stops with "syntax error in history file" on such a line.
var ErrSyntax = errors.New("timeline: syntax error in history file")

// ErrNotIncreasing is wrapped by the [ParseError] for a history file whose
// timeline IDs do not increase from line to line, or whose last line's ID is
// not below the file's own timeline. The server stops with "invalid data in
// history file" on such a file.
var ErrNotIncreasing = errors.New("timeline: timeline IDs in history file do not increase")

// ParseError locates a fatal problem in a history file. Test the class with
// errors.Is(err, [ErrSyntax]) or errors.Is(err, [ErrNotIncreasing]).
type ParseError struct {
	TLI  walname.TimelineID // the timeline whose history file this is
	Line int                // 1-based line number
	Text string             // the offending line, without its newline
	Err  error              // wraps ErrSyntax or ErrNotIncreasing
}

// Error names the file and line, e.g.
// `00000003.history line 2: timeline: syntax error in history file: want a switch point X/Y after the timeline ID (line "2")`.
func (e *ParseError) Error() string {
	text := e.Text
	if len(text) > 80 {
		text = text[:77] + "..."
	}
	return fmt.Sprintf("%s line %d: %v (line %q)", walname.HistoryName(e.TLI), e.Line, e.Err, text)
}

// Unwrap returns the classified cause.
func (e *ParseError) Unwrap() error { return e.Err }

// Entry is one element of a timeline history, mirroring TimeLineHistoryEntry
// (src/include/access/timeline.h): timeline TLI holds the WAL from Begin
// (inclusive) to End (exclusive).
//
// As in the server, 0 is a wildcard: Begin == 0 means "from the start of
// WAL" and End == 0 means "no end"; the tip, the history's own timeline,
// always has End == 0.
type Entry struct {
	TLI   walname.TimelineID `json:"tli"`
	Begin walname.LSN        `json:"begin"`
	End   walname.LSN        `json:"end"`
	// Reason is the text after the switch point on the line (the reason the
	// server recorded), trimmed; "" for the tip.
	Reason string `json:"reason,omitempty"`
	// Line is the 1-based line in the history file; 0 for the tip.
	Line int `json:"line,omitempty"`
}

// IsTip reports whether e is the implicit last entry: the history's own
// timeline, which no line of the file describes.
func (e Entry) IsTip() bool { return e.Line == 0 }

// Covers reports whether lsn falls in [Begin, End) with the server's
// wildcard rules (tliOfPointInHistory).
func (e Entry) Covers(lsn walname.LSN) bool {
	return (e.Begin == walname.InvalidLSN || e.Begin <= lsn) &&
		(e.End == walname.InvalidLSN || lsn < e.End)
}

// Backwards reports whether the line's switch point is lower than the
// previous line's, leaving the entry an empty range. PostgreSQL writes such
// lines when recovery along a timeline ends before that timeline's own fork
// point; the history stays valid.
func (e Entry) Backwards() bool { return !e.IsTip() && e.End < e.Begin }

// MarshalJSON encodes the entry with "end": null for no end; LSNs are
// "X/Y" strings. The default decoding reads it back.
func (e Entry) MarshalJSON() ([]byte, error) {
	type entry Entry // no methods: avoids recursion
	return json.Marshal(struct {
		entry
		End *walname.LSN `json:"end"`
	}{entry(e), openEnd(e.End)})
}

// openEnd maps the "no end" 0 to nil for JSON.
func openEnd(l walname.LSN) *walname.LSN {
	if l == walname.InvalidLSN {
		return nil
	}
	return &l
}

// String renders the entry as "TLI [begin, end)", with "end" for no end.
func (e Entry) String() string {
	return fmt.Sprintf("%d [%s, %s)", e.TLI, e.Begin, endString(e.End))
}

func endString(l walname.LSN) string {
	if l == walname.InvalidLSN {
		return "end"
	}
	return l.String()
}

// History is the parsed history of one timeline: the entries the server
// builds from its history file plus the tip. A History is immutable and
// safe for concurrent use.
type History struct {
	tli     walname.TimelineID
	entries []Entry // oldest first; the last is the tip
	// sorted is set when every line's switch point is nonzero and not below
	// the previous line's: then the ranges are disjoint and ordered, and
	// TLIAt can binary-search instead of scanning newest first.
	sorted bool
}

// ParseHistory parses the content of tli's history file the way the server's
// readTimeLineHistory does (see the package documentation for the grammar).
// Empty or nil data gives the single entry (tli, 0, end): what the server
// assumes for timeline 1 and for a timeline whose history file is missing.
// Errors are *[ParseError] values wrapping [ErrSyntax] or [ErrNotIncreasing].
func ParseHistory(tli walname.TimelineID, data []byte) (*History, error) {
	if tli == 0 {
		return nil, fmt.Errorf("parse history: timeline 0 does not exist")
	}
	h := &History{tli: tli}
	var prevEnd walname.LSN
	lineNo := 0
	for len(data) > 0 {
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			raw, data = data, nil
		}
		lineNo++
		text := string(raw)
		e, skip, err := parseLine(text)
		if skip {
			continue
		}
		if err != nil {
			return nil, &ParseError{TLI: tli, Line: lineNo, Text: text, Err: err}
		}
		if n := len(h.entries); n > 0 && e.TLI <= h.entries[n-1].TLI {
			return nil, &ParseError{TLI: tli, Line: lineNo, Text: text,
				Err: fmt.Errorf("%w: timeline %d follows timeline %d", ErrNotIncreasing, e.TLI, h.entries[n-1].TLI)}
		}
		e.Begin, e.Line = prevEnd, lineNo
		prevEnd = e.End
		h.entries = append(h.entries, e)
	}
	if n := len(h.entries); n > 0 && h.entries[n-1].TLI >= tli {
		last := h.entries[n-1]
		return nil, &ParseError{TLI: tli, Line: last.Line, Text: lineText(last),
			Err: fmt.Errorf("%w: timeline %d is not below the file's own timeline %d", ErrNotIncreasing, last.TLI, tli)}
	}
	h.entries = append(h.entries, Entry{TLI: tli, Begin: prevEnd})
	h.sorted = true
	for _, e := range h.entries[:len(h.entries)-1] {
		if e.End == walname.InvalidLSN || e.End < e.Begin {
			h.sorted = false
		}
	}
	return h, nil
}

// lineText reconstructs a line for an error message that is reported after
// the whole file was read.
func lineText(e Entry) string {
	s := fmt.Sprintf("%d\t%s", e.TLI, e.End)
	if e.Reason != "" {
		s += "\t" + e.Reason
	}
	return s
}

// isCSpace is C's isspace in the "C" locale, which the server uses.
func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func trimCSpace(s string) string {
	i, j := 0, len(s)
	for i < j && isCSpace(s[i]) {
		i++
	}
	for j > i && isCSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// parseLine parses one history file line. skip is true for lines the server
// ignores: empty, whitespace-only, or starting (after blanks) with '#'.
func parseLine(line string) (e Entry, skip bool, err error) {
	// The server reads lines into C strings: a NUL ends the line.
	if i := strings.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	s := line
	for len(s) > 0 && isCSpace(s[0]) {
		s = s[1:]
	}
	if s == "" || s[0] == '#' {
		return Entry{}, true, nil
	}
	n := 0
	for n < len(s) && '0' <= s[n] && s[n] <= '9' {
		n++
	}
	if n == 0 {
		return Entry{}, false, fmt.Errorf("%w: want a numeric timeline ID", ErrSyntax)
	}
	tli, perr := strconv.ParseUint(s[:n], 10, 32)
	if perr != nil {
		return Entry{}, false, fmt.Errorf("%w: timeline ID %s does not fit in 32 bits", ErrSyntax, s[:n])
	}
	if tli == 0 {
		return Entry{}, false, fmt.Errorf("%w: timeline 0 does not exist", ErrSyntax)
	}
	s = s[n:]
	blanks := 0
	for blanks < len(s) && isCSpace(s[blanks]) {
		blanks++
	}
	if blanks == len(s) {
		return Entry{}, false, fmt.Errorf("%w: want a switch point X/Y after the timeline ID", ErrSyntax)
	}
	if blanks == 0 {
		return Entry{}, false, fmt.Errorf("%w: want blanks between the timeline ID and the switch point", ErrSyntax)
	}
	s = s[blanks:]
	tok := s
	for i := 0; i < len(s); i++ {
		if isCSpace(s[i]) {
			tok = s[:i]
			break
		}
	}
	lsn, lerr := walname.ParseLSN(tok)
	if lerr != nil {
		return Entry{}, false, fmt.Errorf("%w: switch point %q is not X/Y with 1 to 8 hex digits each", ErrSyntax, tok)
	}
	return Entry{TLI: walname.TimelineID(tli), End: lsn, Reason: trimCSpace(s[len(tok):])}, false, nil
}

// TLI returns the timeline this history belongs to (the tip's timeline).
func (h *History) TLI() walname.TimelineID { return h.tli }

// Entries returns a copy of the entries, oldest first; the last one is the
// tip. There is always at least one entry.
func (h *History) Entries() []Entry { return append([]Entry(nil), h.entries...) }

// Tip returns the last entry: the history's own timeline from its fork
// point on.
func (h *History) Tip() Entry { return h.entries[len(h.entries)-1] }

// Parent returns the timeline named on the file's last line and the switch
// point at which h's timeline forked from it. ok is false for a history
// without lines (timeline 1, a missing or an empty file).
func (h *History) Parent() (parent walname.TimelineID, fork walname.LSN, ok bool) {
	if len(h.entries) < 2 {
		return 0, 0, false
	}
	e := h.entries[len(h.entries)-2]
	return e.TLI, e.End, true
}

// TLIAt returns the timeline that holds WAL position lsn in this history,
// with the server's rules (tliOfPointInHistory): entries are tried newest
// first and the first whose range covers lsn wins. Every position maps to
// some timeline.
func (h *History) TLIAt(lsn walname.LSN) walname.TimelineID {
	return tliAt(h.entries, h.sorted, lsn)
}

// tliAt is tliOfPointInHistory over entries (oldest first, the last one
// open-ended). With sorted entries (see History.sorted) the first entry
// ending after lsn is the newest one covering it, found by binary search;
// otherwise the server's newest-first scan is used.
func tliAt(entries []Entry, sorted bool, lsn walname.LSN) walname.TimelineID {
	if sorted {
		tip := len(entries) - 1
		return entries[sort.Search(tip, func(i int) bool { return lsn < entries[i].End })].TLI
	}
	return tliAtScan(entries, lsn)
}

// tliAtScan is the server's loop: newest first, the first entry covering
// lsn wins.
func tliAtScan(entries []Entry, lsn walname.LSN) walname.TimelineID {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Covers(lsn) {
			return entries[i].TLI
		}
	}
	// Unreachable for histories built by ParseHistory: the first entry
	// starts at the wildcard 0 and the tip never ends.
	return entries[len(entries)-1].TLI
}

// SwitchPoint returns where this history leaves timeline tli and the timeline
// it switches to, as the server's tliSwitchPoint: for the tip it returns
// (0, 0, true), "not left". ok is false when tli is not in the history; the
// server then fails with "requested timeline N is not in this server's
// history".
func (h *History) SwitchPoint(tli walname.TimelineID) (at walname.LSN, next walname.TimelineID, ok bool) {
	for i := len(h.entries) - 1; i >= 0; i-- {
		if h.entries[i].TLI == tli {
			return h.entries[i].End, next, true
		}
		next = h.entries[i].TLI
	}
	return 0, 0, false
}

// Contains reports whether tli is in the history (tliInHistory).
func (h *History) Contains(tli walname.TimelineID) bool {
	_, _, ok := h.SwitchPoint(tli)
	return ok
}

// Entry returns the entry of timeline tli.
func (h *History) Entry(tli walname.TimelineID) (Entry, bool) {
	for _, e := range h.entries {
		if e.TLI == tli {
			return e, true
		}
	}
	return Entry{}, false
}

// Backwards returns the entries whose switch point is lower than the
// previous line's (see [Entry.Backwards]), oldest first.
func (h *History) Backwards() []Entry {
	var out []Entry
	for _, e := range h.entries {
		if e.Backwards() {
			out = append(out, e)
		}
	}
	return out
}

// Span is a stretch of WAL replayed from one timeline.
type Span struct {
	Timeline walname.TimelineID `json:"timeline"`
	BeginLSN walname.LSN        `json:"begin_lsn"`
	// EndLSN is exclusive; 0 means no end.
	EndLSN walname.LSN `json:"end_lsn"`
}

// MarshalJSON encodes the span as {"timeline", "begin_lsn", "end_lsn"} with
// "end_lsn": null for no end. The default decoding reads it back.
func (s Span) MarshalJSON() ([]byte, error) {
	type span Span // no methods: avoids recursion
	return json.Marshal(struct {
		span
		EndLSN *walname.LSN `json:"end_lsn"`
	}{span(s), openEnd(s.EndLSN)})
}

// String renders the span as "TLI [begin, end)".
func (s Span) String() string {
	return fmt.Sprintf("%d [%s, %s)", s.Timeline, s.BeginLSN, endString(s.EndLSN))
}

// Path returns the timelines recovery replays between from and until
// (exclusive; 0 for no end), in order: the WAL at each position comes from
// the timeline [History.TLIAt] gives it. Lines with backwards switch points
// make some timelines vanish from the path; the result reflects that.
func (h *History) Path(from, until walname.LSN) []Span {
	if until != walname.InvalidLSN && until <= from {
		return nil
	}
	var out []Span
	cur := Span{Timeline: h.TLIAt(from), BeginLSN: from}
	for _, p := range breakpoints(h.entries, from, until) {
		if t := h.TLIAt(p); t != cur.Timeline {
			cur.EndLSN = p
			out = append(out, cur)
			cur = Span{Timeline: t, BeginLSN: p}
		}
	}
	cur.EndLSN = until
	return append(out, cur)
}

// breakpoints returns the sorted, distinct entry bounds strictly inside
// (lo, hi) (hi 0: open): the only places where tliAt can change.
func breakpoints(entries []Entry, lo, hi walname.LSN) []walname.LSN {
	var ps []walname.LSN
	add := func(p walname.LSN) {
		if p != walname.InvalidLSN && p > lo && (hi == walname.InvalidLSN || p < hi) {
			ps = append(ps, p)
		}
	}
	for _, e := range entries {
		add(e.Begin)
		add(e.End)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	out := ps[:0]
	for i, p := range ps {
		if i == 0 || p != ps[i-1] {
			out = append(out, p)
		}
	}
	return out
}
