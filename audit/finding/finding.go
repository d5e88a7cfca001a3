// Package finding defines the findings walaudit reports: values that say
// what is wrong, where (file, byte offset, LSN, timeline) and what to do.
// An error, by contrast, means the audit itself could not be done.
package finding

import (
	"fmt"
	"sort"

	"github.com/walaudit/walaudit/walname"
)

// Severity of a finding.
type Severity string

// Severities, most severe first.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
	Info    Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case Error:
		return 0
	case Warning:
		return 1
	}
	return 2
}

// Finding is one observation about an archive. Code is stable and listed in
// README.md: scripts filter on it, so codes are never renamed.
type Finding struct {
	Severity Severity           `json:"severity"`
	Code     string             `json:"code"`
	File     string             `json:"file,omitempty"`
	Offset   *int64             `json:"offset,omitempty"`
	LSN      walname.LSN        `json:"lsn,omitempty"`
	Timeline walname.TimelineID `json:"timeline,omitempty"`
	Message  string             `json:"message"`
	// Hint says what to do next, for the person reading at 3 a.m.
	Hint string `json:"hint,omitempty"`
}

// At returns a copy of f with the byte offset set.
func (f Finding) At(off int64) Finding {
	f.Offset = &off
	return f
}

// String renders the finding on one line: severity, code, place, message.
func (f Finding) String() string {
	place := f.File
	if f.Offset != nil {
		place += fmt.Sprintf(" @%d", *f.Offset)
	}
	if f.LSN != 0 {
		place += " lsn " + f.LSN.String()
	}
	if place != "" {
		place = " [" + place + "]"
	}
	s := fmt.Sprintf("%s %s%s: %s", f.Severity, f.Code, place, f.Message)
	if f.Hint != "" {
		s += " (" + f.Hint + ")"
	}
	return s
}

// Sort orders findings by severity, then LSN, then file, then code, so that
// output is deterministic.
func Sort(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity.rank() != b.Severity.rank() {
			return a.Severity.rank() < b.Severity.rank()
		}
		if a.LSN != b.LSN {
			return a.LSN < b.LSN
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Code < b.Code
	})
}

// Count returns how many findings have severity s.
func Count(fs []Finding, s Severity) int {
	n := 0
	for _, f := range fs {
		if f.Severity == s {
			n++
		}
	}
	return n
}
