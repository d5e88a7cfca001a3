package timeline

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/walaudit/walaudit/walname"
)

// Code is a stable identifier of a [Problem]; scripts filter on it, so codes
// are never renamed.
type Code string

// Problem codes.
const (
	// CodeHistoryMalformed: a history file the server cannot parse
	// (syntax error, timeline IDs not increasing). Recovery that reads it
	// stops with FATAL. Severity error.
	CodeHistoryMalformed Code = "HISTORY_MALFORMED"
	// CodeHistoryInconsistent: a child's history file does not repeat its
	// parent's history file line for line, or names timeline 1 as parent
	// after other lines. Severity error.
	CodeHistoryInconsistent Code = "HISTORY_INCONSISTENT"
	// CodeHistoryMissing: a timeline above 1 has segments but no history
	// file; the server then assumes it has no parent. Severity error.
	CodeHistoryMissing Code = "HISTORY_MISSING"
	// CodeHistoryGap: history files are missing below a higher one that
	// exists, so 'latest' probing from below the gap never reaches it.
	// Severity warning.
	CodeHistoryGap Code = "HISTORY_GAP"
	// CodeHistorySwitchBackwards: a line's switch point is lower than the
	// previous line's (see [Entry.Backwards]). Legal; severity warning.
	CodeHistorySwitchBackwards Code = "HISTORY_SWITCH_BACKWARDS"
	// CodeHistoryUnexpected: a history file for timeline 1, which the server
	// never reads. Severity warning.
	CodeHistoryUnexpected Code = "HISTORY_UNEXPECTED"
)

// Severity of a [Problem]; the values match walaudit's finding severities.
type Severity string

// Severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Problem is a validation finding about the archive's timeline history.
// Problems are values: building a [Set] never fails because of them.
type Problem struct {
	Code     Code               `json:"code"`
	Severity Severity           `json:"severity"`
	TLI      walname.TimelineID `json:"tli"`
	File     string             `json:"file,omitempty"`
	Line     int                `json:"line,omitempty"`
	LSN      walname.LSN        `json:"lsn,omitempty"`
	Message  string             `json:"message"`
}

// String renders the problem on one line.
func (p Problem) String() string {
	place := p.File
	if p.Line > 0 {
		place += fmt.Sprintf(" line %d", p.Line)
	}
	if place != "" {
		place = " [" + place + "]"
	}
	return fmt.Sprintf("%s %s%s: %s", p.Severity, p.Code, place, p.Message)
}

// node is one timeline in the tree.
type node struct {
	tli       walname.TimelineID
	parent    walname.TimelineID // 0 for a root
	fork      walname.LSN        // where tli began on parent
	reason    string
	from      walname.TimelineID // history file the parent link was read from
	backwards bool
	children  []walname.TimelineID
}

// Set is the timeline structure of one archive: every history file, the
// timelines that have segments, the parent/child tree and the problems
// found. A Set is immutable after [NewSet] and safe for concurrent use.
type Set struct {
	raw      map[walname.TimelineID][]byte
	parsed   map[walname.TimelineID]*History
	bad      map[walname.TimelineID]error
	segments map[walname.TimelineID]bool
	nodes    map[walname.TimelineID]*node
	problems []Problem
}

// NewSet builds the timeline set of an archive from the contents of its
// history files (keyed by the timeline in the file name) and the timelines
// that have at least one segment or .partial file. A file for timeline 1 is
// reported and otherwise ignored, as the server never reads it.
func NewSet(histories map[walname.TimelineID][]byte, withSegments []walname.TimelineID) *Set {
	s := &Set{
		raw:      map[walname.TimelineID][]byte{},
		parsed:   map[walname.TimelineID]*History{},
		bad:      map[walname.TimelineID]error{},
		segments: map[walname.TimelineID]bool{},
		nodes:    map[walname.TimelineID]*node{},
	}
	for tli, data := range histories {
		if tli == 0 {
			continue
		}
		if tli == 1 {
			s.problems = append(s.problems, Problem{Code: CodeHistoryUnexpected, Severity: SeverityWarning, TLI: 1,
				File: walname.HistoryName(1), Message: "timeline 1 has no parent; the server never reads 00000001.history"})
			continue
		}
		s.raw[tli] = append([]byte(nil), data...)
		h, err := ParseHistory(tli, data)
		if err != nil {
			s.bad[tli] = err
			line := 0
			var pe *ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			s.problems = append(s.problems, Problem{Code: CodeHistoryMalformed, Severity: SeverityError, TLI: tli,
				File: walname.HistoryName(tli), Line: line,
				Message: fmt.Sprintf("the server cannot read this file and stops recovery that needs it: %v", err)})
			continue
		}
		s.parsed[tli] = h
		for _, e := range h.Backwards() {
			s.problems = append(s.problems, Problem{Code: CodeHistorySwitchBackwards, Severity: SeverityWarning, TLI: tli,
				File: walname.HistoryName(tli), Line: e.Line, LSN: e.End,
				Message: fmt.Sprintf("switch point %s from timeline %d is lower than the previous line's %s; timeline %d holds no WAL in this history (recovery ended before its fork point)",
					e.End, e.TLI, e.Begin, e.TLI)})
		}
	}
	for _, t := range withSegments {
		if t != 0 {
			s.segments[t] = true
		}
	}
	s.buildTree()
	s.checkConsistency()
	s.checkMissing()
	sort.SliceStable(s.problems, func(i, j int) bool {
		a, b := s.problems[i], s.problems[j]
		if a.TLI != b.TLI {
			return a.TLI < b.TLI
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Code < b.Code
	})
	return s
}

// HasHistoryFile reports whether the archive has a history file for tli
// (parseable or not). This is what the server's existence probe sees.
func (s *Set) HasHistoryFile(tli walname.TimelineID) bool {
	_, ok := s.raw[tli]
	return ok
}

// History returns tli's history as the server reads it: for timeline 1 or a
// timeline without history file, the single entry (tli, 0, end); for a file
// the server cannot parse, the *[ParseError].
func (s *Set) History(tli walname.TimelineID) (*History, error) {
	if h, ok := s.parsed[tli]; ok {
		return h, nil
	}
	if err, ok := s.bad[tli]; ok {
		return nil, err
	}
	return ParseHistory(tli, nil)
}

// Timelines returns every timeline the set knows, sorted: those with a
// history file or segments, and the ancestors named in history files.
func (s *Set) Timelines() []walname.TimelineID {
	out := make([]walname.TimelineID, 0, len(s.nodes))
	for t := range s.nodes {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Parent returns tli's parent timeline and the switch point at which tli
// forked from it, read from tli's own history file or, when that is missing
// or unreadable, from a descendant's copy. ok is false for a root.
func (s *Set) Parent(tli walname.TimelineID) (parent walname.TimelineID, fork walname.LSN, ok bool) {
	n := s.nodes[tli]
	if n == nil || n.parent == 0 {
		return 0, 0, false
	}
	return n.parent, n.fork, true
}

// Children returns the timelines that forked from tli, sorted.
func (s *Set) Children(tli walname.TimelineID) []walname.TimelineID {
	if n := s.nodes[tli]; n != nil {
		return append([]walname.TimelineID(nil), n.children...)
	}
	return nil
}

// Problems returns the validation findings, sorted by timeline and line.
func (s *Set) Problems() []Problem { return append([]Problem(nil), s.problems...) }

func (s *Set) node(t walname.TimelineID) *node {
	n := s.nodes[t]
	if n == nil {
		n = &node{tli: t}
		s.nodes[t] = n
	}
	return n
}

// buildTree links every timeline to its parent. A timeline's own file wins;
// otherwise the lowest-numbered descendant file that mentions it is used.
func (s *Set) buildTree() {
	for t := range s.raw {
		s.node(t)
	}
	for t := range s.segments {
		s.node(t)
	}
	known := map[walname.TimelineID]bool{} // parent link decided
	for _, t := range sortedKeys(s.parsed) {
		h := s.parsed[t]
		n := s.node(t)
		if p, fork, ok := h.Parent(); ok {
			e := h.entries[len(h.entries)-2]
			n.parent, n.fork, n.reason, n.from, n.backwards = p, fork, e.Reason, t, e.Backwards()
		}
		known[t] = true
	}
	for _, t := range sortedKeys(s.parsed) {
		es := s.parsed[t].entries
		for i := 0; i < len(es)-1; i++ {
			n := s.node(es[i].TLI)
			if known[n.tli] {
				continue
			}
			known[n.tli] = true
			if i > 0 {
				prev := es[i-1]
				n.parent, n.fork, n.reason, n.from, n.backwards = prev.TLI, prev.End, prev.Reason, t, prev.Backwards()
			}
		}
	}
	for _, t := range s.Timelines() { // sorted, so children come out sorted
		if n := s.nodes[t]; n.parent != 0 {
			p := s.node(n.parent)
			p.children = append(p.children, t)
		}
	}
}

// checkConsistency compares every child's history file with its parent's:
// the child's lines before the last must equal the parent's lines.
func (s *Set) checkConsistency() {
	for _, c := range sortedKeys(s.parsed) {
		ch := s.parsed[c]
		lines := ch.entries[:len(ch.entries)-1]
		if len(lines) == 0 {
			continue
		}
		p := lines[len(lines)-1].TLI
		inherited := lines[:len(lines)-1]
		var want []Entry
		switch {
		case p == 1:
		case s.parsed[p] != nil:
			ph := s.parsed[p]
			want = ph.entries[:len(ph.entries)-1]
		default:
			continue // parent file missing or unreadable: reported elsewhere
		}
		file := walname.HistoryName(c)
		// With p == 1 both are empty: parse order rules out lines before a
		// timeline-1 line, so only real parents can disagree in length.
		if len(inherited) != len(want) {
			msg := fmt.Sprintf("%s has %d line(s) before its last, but its parent's %s has %d",
				file, len(inherited), walname.HistoryName(p), len(want))
			s.problems = append(s.problems, Problem{Code: CodeHistoryInconsistent, Severity: SeverityError, TLI: c, File: file,
				Line: lines[len(lines)-1].Line, Message: msg})
			continue
		}
		for i := range want {
			a, b := inherited[i], want[i]
			if a.TLI != b.TLI || a.End != b.End {
				s.problems = append(s.problems, Problem{Code: CodeHistoryInconsistent, Severity: SeverityError, TLI: c, File: file,
					Line: a.Line, LSN: a.End,
					Message: fmt.Sprintf("line %d says timeline %d ended at %s, but %s line %d says timeline %d ended at %s; the child's file must repeat its parent's",
						a.Line, a.TLI, a.End, walname.HistoryName(p), b.Line, b.TLI, b.End)})
				break
			}
		}
	}
}

// checkMissing reports timelines with segments but no history file, and
// gaps in the history file numbering below the highest file.
func (s *Set) checkMissing() {
	for _, t := range s.Timelines() {
		if t <= 1 || s.HasHistoryFile(t) || !s.segments[t] {
			continue
		}
		s.problems = append(s.problems, Problem{Code: CodeHistoryMissing, Severity: SeverityError, TLI: t,
			File: walname.HistoryName(t),
			Message: fmt.Sprintf("timeline %d has WAL segments but no history file: the server assumes it has no parent, so recovery along it from an ancestor's backup fails, and 'latest' probing stops below it",
				t)})
	}
	var top walname.TimelineID
	for t := range s.raw {
		top = max(top, t)
	}
	// gap reports [from, to), a run of timelines with neither history file
	// nor segments below the highest history file.
	gap := func(from, to walname.TimelineID) {
		names := walname.HistoryName(from)
		if to-1 > from {
			names += " to " + walname.HistoryName(to-1)
		}
		s.problems = append(s.problems, Problem{Code: CodeHistoryGap, Severity: SeverityWarning, TLI: from,
			File: walname.HistoryName(from),
			Message: fmt.Sprintf("%s missing while %s exists: recovery_target_timeline 'latest' from a backup on timeline %d or below stops probing at %d and never sees timeline %d",
				names, walname.HistoryName(top), from-1, from-1, top)})
	}
	// Walk only the known timelines, so the cost does not depend on how
	// large the IDs are. One with segments ends a run: it is reported as
	// HISTORY_MISSING above.
	prev := walname.TimelineID(1)
	for _, t := range s.Timelines() {
		if t <= prev || t > top || !(s.HasHistoryFile(t) || s.segments[t]) {
			continue
		}
		if t > prev+1 {
			gap(prev+1, t)
		}
		prev = t
	}
}

// WriteTree renders the timeline tree as ASCII, one timeline per line with
// the switch point it began at and the reason from the history file, e.g.
//
//	1
//	|-- 2 @ 0/A002E8 (at restore point "rp1")
//	|   `-- 3 @ 0/C00120 (no recovery target specified)
//	`-- 4 @ 0/A00368 (before 2026-11-21 00:34:28.537138+00)
//
// Bracketed notes flag timelines without a history file, unreadable files,
// parent links read from a descendant's file, and backwards switch points.
func (s *Set) WriteTree(w io.Writer) error {
	var b strings.Builder
	for _, t := range s.Timelines() {
		if s.nodes[t].parent == 0 {
			s.writeNode(&b, t, "", "", true)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Tree returns [Set.WriteTree]'s output as a string.
func (s *Set) Tree() string {
	var b strings.Builder
	_ = s.WriteTree(&b) // a strings.Builder does not fail
	return b.String()
}

func (s *Set) writeNode(b *strings.Builder, t walname.TimelineID, first, rest string, root bool) {
	n := s.nodes[t]
	b.WriteString(first)
	fmt.Fprintf(b, "%d", t)
	if !root {
		fmt.Fprintf(b, " @ %s", n.fork)
		if n.reason != "" {
			fmt.Fprintf(b, " (%s)", n.reason)
		}
	}
	var notes []string
	switch {
	case t == 1:
	case s.bad[t] != nil:
		notes = append(notes, "history file unreadable")
	case !s.HasHistoryFile(t):
		notes = append(notes, "no history file")
	}
	if n.parent != 0 && n.from != t {
		notes = append(notes, "parent from "+walname.HistoryName(n.from))
	}
	if n.parent == 0 && t != 1 && s.parsed[t] == nil {
		notes = append(notes, "parent unknown")
	}
	if n.backwards {
		notes = append(notes, "switch point goes backwards")
	}
	if len(notes) > 0 {
		b.WriteString(" [" + strings.Join(notes, "; ") + "]")
	}
	b.WriteByte('\n')
	for i, c := range n.children {
		if i == len(n.children)-1 {
			s.writeNode(b, c, rest+"`-- ", rest+"    ", false)
		} else {
			s.writeNode(b, c, rest+"|-- ", rest+"|   ", false)
		}
	}
}

func sortedKeys[V any](m map[walname.TimelineID]V) []walname.TimelineID {
	out := make([]walname.TimelineID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
