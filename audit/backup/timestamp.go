package backup

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// timestampLayout is the wall-clock part PostgreSQL writes with
// pg_strftime("%Y-%m-%d %H:%M:%S %Z") in the server's log_timezone.
const timestampLayout = "2006-01-02 15:04:05"

// Timestamp is a START TIME or STOP TIME value, "YYYY-MM-DD HH:MM:SS ZZZ".
//
// ZZZ is whatever abbreviation the server's log_timezone gives, e.g. "UTC",
// "CEST", "IST" or, for zones without a letter abbreviation, a numeric one
// such as "-03" or "+0530". Letter abbreviations are ambiguous (IST is India,
// Israel or Ireland), so only UTC/GMT/UCT/Z and numeric offsets are
// resolved. For any other abbreviation Resolved is false and Time is zero;
// use [Timestamp.In] with the server's log_timezone to resolve it. The zero
// Timestamp means the line was absent.
type Timestamp struct {
	// Text is the value as written.
	Text string `json:"text"`
	// Zone is the zone abbreviation or offset as written ("" if none).
	Zone string `json:"zone,omitempty"`
	// Time is the instant, set only when Resolved.
	Time time.Time `json:"time,omitzero"`
	// Resolved reports whether Zone could be turned into an offset without
	// guessing.
	Resolved bool `json:"resolved"`
}

// ParseTimestamp parses "YYYY-MM-DD HH:MM:SS ZZZ". A malformed date or time
// is an error; an unknown zone abbreviation is not (see [Timestamp]).
func ParseTimestamp(s string) (Timestamp, error) {
	if len(s) < len(timestampLayout) {
		return Timestamp{}, fmt.Errorf("time %q: want YYYY-MM-DD HH:MM:SS ZONE", clip(s))
	}
	wall, err := time.ParseInLocation(timestampLayout, s[:len(timestampLayout)], time.UTC)
	if err != nil {
		return Timestamp{}, fmt.Errorf("time %q: want YYYY-MM-DD HH:MM:SS ZONE", clip(s))
	}
	ts := Timestamp{Text: s}
	rest := s[len(timestampLayout):]
	if rest != "" {
		if rest[0] != ' ' || len(rest) == 1 || strings.ContainsAny(rest[1:], " \t") {
			return Timestamp{}, fmt.Errorf("time %q: want one zone abbreviation after the time", clip(s))
		}
		ts.Zone = rest[1:]
	}
	if off, ok := zoneOffset(ts.Zone); ok {
		ts.Time = wall.Add(-time.Duration(off) * time.Second)
		ts.Resolved = true
	}
	return ts, nil
}

// IsZero reports whether the timestamp is absent.
func (t Timestamp) IsZero() bool { return t.Text == "" }

// String returns the text as written.
func (t Timestamp) String() string { return t.Text }

// In returns the instant the timestamp denotes. A resolved timestamp needs
// no location. Otherwise the wall-clock reading is interpreted in loc (the
// server's log_timezone) and accepted only if loc uses the written
// abbreviation at that instant; this also picks the right instant in the
// repeated hour when daylight saving time ends (CEST vs CET).
func (t Timestamp) In(loc *time.Location) (time.Time, error) {
	if t.Resolved {
		return t.Time, nil
	}
	if t.Text == "" {
		return time.Time{}, fmt.Errorf("resolve time: no timestamp")
	}
	if loc == nil {
		return time.Time{}, fmt.Errorf("resolve time %q: no location given", t.Text)
	}
	wall, err := time.ParseInLocation(timestampLayout, t.Text[:len(timestampLayout)], time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("resolve time %q: %w", t.Text, err)
	}
	// Candidate offsets: those in effect around the wall-clock reading.
	guess := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), 0, loc)
	for _, probe := range []time.Time{guess, guess.Add(-3 * time.Hour), guess.Add(3 * time.Hour)} {
		name, off := probe.Zone()
		if name != t.Zone {
			continue
		}
		inst := wall.Add(-time.Duration(off) * time.Second)
		if n2, _ := inst.In(loc).Zone(); n2 == t.Zone && inst.In(loc).Format(timestampLayout) == wall.Format(timestampLayout) {
			return inst.In(loc), nil
		}
	}
	return time.Time{}, fmt.Errorf("resolve time %q: %s does not use the abbreviation %q at that time", t.Text, loc, t.Zone)
}

// zoneOffset returns the offset east of UTC in seconds for the zones that
// can be resolved without guessing.
func zoneOffset(z string) (int, bool) {
	switch z {
	case "UTC", "GMT", "UCT", "Z":
		return 0, true
	}
	if len(z) < 3 || (z[0] != '+' && z[0] != '-') {
		return 0, false
	}
	digits := strings.Replace(z[1:], ":", "", 1)
	if len(z) == 6 && z[3] != ':' {
		return 0, false
	}
	if (len(digits) != 2 && len(digits) != 4) || strings.ContainsFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) {
		return 0, false
	}
	h, _ := strconv.Atoi(digits[:2])
	m := 0
	if len(digits) == 4 {
		m, _ = strconv.Atoi(digits[2:])
	}
	if h > 15 || m > 59 {
		return 0, false
	}
	off := h*3600 + m*60
	if z[0] == '-' {
		off = -off
	}
	return off, true
}
