package plan

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/walaudit/walaudit/walname"
)

// ErrBadTarget is wrapped by every target parse error.
var ErrBadTarget = errors.New("invalid recovery target")

// TargetKind is the kind of recovery target, named like PostgreSQL's
// recovery_target_* settings.
type TargetKind string

// Target kinds.
const (
	TargetTime      TargetKind = "time"
	TargetLSN       TargetKind = "lsn"
	TargetXID       TargetKind = "xid"
	TargetName      TargetKind = "name"
	TargetImmediate TargetKind = "immediate"
	TargetLatest    TargetKind = "latest"
)

// Target is a parsed recovery target. The grammar, shared by every command:
//
//	time:TIMESTAMP   RFC 3339 or "YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM]"; a zone is required
//	lsn:X/Y
//	xid:N            decimal; an epoch-qualified 64-bit value keeps its low 32 bits
//	name:TEXT        a restore point name, under 64 bytes
//	immediate        the backup's consistency point
//	latest           the end of the archived WAL on the target timeline
type Target struct {
	Kind TargetKind
	Time time.Time // UTC, microsecond precision
	LSN  walname.LSN
	XID  uint32
	Name string
}

// String renders the target in the grammar ParseTarget accepts.
func (t Target) String() string {
	switch t.Kind {
	case TargetTime:
		return "time:" + t.Time.UTC().Format("2006-01-02T15:04:05.999999Z07:00")
	case TargetLSN:
		return "lsn:" + t.LSN.String()
	case TargetXID:
		return "xid:" + strconv.FormatUint(uint64(t.XID), 10)
	case TargetName:
		return "name:" + t.Name
	}
	return string(t.Kind)
}

// Value is the target's value as JSON and PostgreSQL settings print it.
func (t Target) Value() string {
	s := t.String()
	if _, v, ok := strings.Cut(s, ":"); ok {
		return v
	}
	return ""
}

var (
	pgTimeRe  = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d{1,9})?\s*(Z|z|[+-]\d{2}(?::?\d{2})?|UTC|GMT)?$`)
	zoneNumRe = regexp.MustCompile(`^([+-])(\d{2}):?(\d{2})?$`)
)

// ParseTarget parses the target grammar documented on [Target].
func ParseTarget(s string) (Target, error) {
	kind, val, hasVal := strings.Cut(s, ":")
	switch TargetKind(kind) {
	case TargetImmediate, TargetLatest:
		if hasVal {
			return Target{}, fmt.Errorf("%w %q: %s takes no value", ErrBadTarget, s, kind)
		}
		return Target{Kind: TargetKind(kind)}, nil
	case TargetTime:
		tm, err := ParseTargetTime(val)
		if err != nil {
			return Target{}, err
		}
		return Target{Kind: TargetTime, Time: tm}, nil
	case TargetLSN:
		l, err := walname.ParseLSN(val)
		if err != nil {
			return Target{}, fmt.Errorf("%w %q: %w", ErrBadTarget, s, err)
		}
		return Target{Kind: TargetLSN, LSN: l}, nil
	case TargetXID:
		if val == "" || strings.TrimLeft(val, "0123456789") != "" {
			return Target{}, fmt.Errorf("%w %q: xid must be a decimal number, e.g. xid:751", ErrBadTarget, s)
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return Target{}, fmt.Errorf("%w %q: xid out of range: %w", ErrBadTarget, s, err)
		}
		x := uint32(v) // PostgreSQL truncates to 32 bits as well
		if x < 3 {
			return Target{}, fmt.Errorf("%w %q: xid %d is a special transaction id (normal ids start at 3)", ErrBadTarget, s, x)
		}
		return Target{Kind: TargetXID, XID: x}, nil
	case TargetName:
		if val == "" {
			return Target{}, fmt.Errorf("%w %q: empty restore point name", ErrBadTarget, s)
		}
		if len(val) >= 64 {
			return Target{}, fmt.Errorf("%w %q: restore point names are under 64 bytes (got %d)", ErrBadTarget, s, len(val))
		}
		if strings.ContainsRune(val, 0) {
			return Target{}, fmt.Errorf("%w %q: NUL byte in name", ErrBadTarget, s)
		}
		return Target{Kind: TargetName, Name: val}, nil
	}
	return Target{}, fmt.Errorf("%w %q: want time:TIMESTAMP, lsn:X/Y, xid:N, name:TEXT, immediate or latest", ErrBadTarget, s)
}

// ParseTargetTime parses a timestamp with an explicit zone. PostgreSQL
// would read a zoneless value in the server's timezone setting, which is a
// classic way to recover to the wrong hour, so walaudit refuses it.
func ParseTargetTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	low := strings.ToLower(v)
	switch low {
	case "now", "today", "tomorrow", "yesterday", "epoch", "infinity", "-infinity":
		return time.Time{}, fmt.Errorf("%w time:%s: PostgreSQL rejects special values for recovery_target_time; give an absolute timestamp such as time:2026-04-01T09:41:23Z", ErrBadTarget, v)
	}
	if tm, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return checkYear(v, tm.UTC().Round(time.Microsecond))
	}
	m := pgTimeRe.FindStringSubmatch(v)
	if m == nil {
		return time.Time{}, fmt.Errorf("%w time:%s: want RFC 3339 (2026-04-01T09:41:23Z) or YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM]", ErrBadTarget, v)
	}
	if m[4] == "" {
		return time.Time{}, fmt.Errorf("%w time:%s: no time zone; write it in UTC as time:%sT%s%sZ (or add an offset such as +02:00)", ErrBadTarget, v, m[1], m[2], m[3])
	}
	tm, err := time.Parse("2006-01-02 15:04:05", m[1]+" "+m[2])
	if err != nil {
		return time.Time{}, fmt.Errorf("%w time:%s: %w", ErrBadTarget, v, err)
	}
	if m[3] != "" {
		frac := (m[3][1:] + "000000000")[:9]
		ns, _ := strconv.Atoi(frac)
		tm = tm.Add(time.Duration(ns))
	}
	off := 0
	if z := zoneNumRe.FindStringSubmatch(m[4]); z != nil {
		h, _ := strconv.Atoi(z[2])
		mi := 0
		if z[3] != "" {
			mi, _ = strconv.Atoi(z[3])
		}
		if h > 15 || mi > 59 {
			return time.Time{}, fmt.Errorf("%w time:%s: zone offset %s out of range", ErrBadTarget, v, m[4])
		}
		off = h*3600 + mi*60
		if z[1] == "-" {
			off = -off
		}
	}
	return checkYear(v, tm.Add(-time.Duration(off)*time.Second).UTC().Round(time.Microsecond))
}

// checkYear keeps targets to years WAL can hold (TimestampTz counts from
// 2000; nothing committed before 1970 is in any archive).
func checkYear(v string, tm time.Time) (time.Time, error) {
	if tm.Year() < 1970 || tm.Year() > 9999 {
		return time.Time{}, fmt.Errorf("%w time:%s: year %d is outside 1970-9999", ErrBadTarget, v, tm.Year())
	}
	return tm, nil
}

// TimelineSetting is recovery_target_timeline: latest, current or a number.
type TimelineSetting struct {
	Kind string // "latest", "current" or "number"
	TLI  walname.TimelineID
}

// String renders the setting as PostgreSQL takes it.
func (t TimelineSetting) String() string {
	if t.Kind == "number" {
		return t.TLI.String()
	}
	return t.Kind
}

// ParseTimelineSetting parses --target-timeline.
func ParseTimelineSetting(s string) (TimelineSetting, error) {
	switch s {
	case "", "latest":
		return TimelineSetting{Kind: "latest"}, nil
	case "current":
		return TimelineSetting{Kind: "current"}, nil
	}
	tli, err := walname.ParseTimelineID(s)
	if err != nil {
		return TimelineSetting{}, fmt.Errorf("invalid target timeline: %w (or latest, current)", err)
	}
	return TimelineSetting{Kind: "number", TLI: tli}, nil
}
