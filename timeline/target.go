package timeline

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/walaudit/walaudit/walname"
)

// ErrInvalidTarget is wrapped by [ParseTarget] errors.
var ErrInvalidTarget = errors.New("timeline: invalid recovery_target_timeline")

// Resolution failure classes, wrapped by [Resolution.Err].
var (
	// ErrTimelineNotFound: a numeric target other than 1 without a history
	// file ("recovery target timeline N does not exist").
	ErrTimelineNotFound = errors.New("timeline: recovery target timeline does not exist")
	// ErrHistoryUnreadable: the target's history file cannot be parsed.
	ErrHistoryUnreadable = errors.New("timeline: target timeline's history file unreadable")
	// ErrNotAChild: the backup's checkpoint is not on the target's path
	// ("requested timeline N is not a child of this server's history", or
	// "... is not in this server's history").
	ErrNotAChild = errors.New("timeline: backup is not an ancestor of the target timeline")
	// ErrMinRecoveryPoint: a standby backup's minimum recovery point is not
	// on the target's path.
	ErrMinRecoveryPoint = errors.New("timeline: target timeline does not contain the minimum recovery point")
)

// TargetKind is the form of a recovery_target_timeline setting.
type TargetKind string

// Target kinds.
const (
	TargetLatest  TargetKind = "latest"  // the newest timeline found by probing (default since PG 12)
	TargetCurrent TargetKind = "current" // the timeline of the backup's checkpoint
	TargetNumeric TargetKind = "numeric" // a timeline number
)

// Target is a recovery_target_timeline setting.
type Target struct {
	Kind TargetKind         `json:"kind"`
	TLI  walname.TimelineID `json:"tli,omitempty"` // for TargetNumeric
}

// String renders the setting as written in postgresql.conf: "latest",
// "current" or the decimal number.
func (t Target) String() string {
	if t.Kind == TargetNumeric {
		return t.TLI.String()
	}
	return string(t.Kind)
}

// ParseTarget parses a recovery_target_timeline value: "latest", "current"
// or a number, which the server reads with C's strtoul in base 0: "0x10"
// is 16 and "010" is octal 8. Signs, blanks and trailing text are refused,
// as is 0.
func ParseTarget(s string) (Target, error) {
	switch s {
	case string(TargetLatest):
		return Target{Kind: TargetLatest}, nil
	case string(TargetCurrent):
		return Target{Kind: TargetCurrent}, nil
	}
	digits, base := s, 10
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		digits, base = s[2:], 16
	case len(s) > 1 && s[0] == '0':
		digits, base = s[1:], 8
	}
	valid := digits != ""
	for i := 0; i < len(digits) && valid; i++ {
		c := digits[i] | 0x20 // lower-case letters
		switch {
		case '0' <= c && c <= '9':
			valid = int(c-'0') < base
		case 'a' <= c && c <= 'f':
			valid = base == 16
		default:
			valid = false
		}
	}
	if !valid {
		return Target{}, fmt.Errorf("%w %q: want latest, current or a timeline number", ErrInvalidTarget, s)
	}
	v, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		return Target{}, fmt.Errorf("%w %q: timeline number out of range", ErrInvalidTarget, s)
	}
	if v == 0 {
		return Target{}, fmt.Errorf("%w %q: timeline 0 does not exist", ErrInvalidTarget, s)
	}
	return Target{Kind: TargetNumeric, TLI: walname.TimelineID(v)}, nil
}

// Backup is what target resolution needs to know about a base backup.
type Backup struct {
	// CheckpointLSN is the backup_label's CHECKPOINT LOCATION.
	CheckpointLSN walname.LSN `json:"checkpoint_lsn"`
	// CheckpointTLI is the checkpoint's timeline (the backup's START
	// TIMELINE, also pg_control's); 'latest' probes upward from it.
	CheckpointTLI walname.TimelineID `json:"checkpoint_tli"`
	// MinRecoveryPoint and MinRecoveryPointTLI come from pg_control; set for
	// standby backups, 0 otherwise.
	MinRecoveryPoint    walname.LSN        `json:"min_recovery_point,omitempty"`
	MinRecoveryPointTLI walname.TimelineID `json:"min_recovery_point_tli,omitempty"`
}

// ResolveStatus is the outcome of target timeline resolution.
type ResolveStatus string

// Resolution outcomes. Everything but ResolveOK makes the server stop with
// FATAL before replaying any WAL.
const (
	ResolveOK ResolveStatus = "ok"
	// ResolveNotFound: numeric target ≠ 1 without history file.
	ResolveNotFound ResolveStatus = "timeline_not_found"
	// ResolveUnreadable: the target's history file cannot be parsed.
	ResolveUnreadable ResolveStatus = "history_unreadable"
	// ResolveNotAChild: the target's history leaves the checkpoint's
	// timeline before the checkpoint (or enters it after).
	ResolveNotAChild ResolveStatus = "not_a_child"
	// ResolveNotInHistory: the checkpoint's timeline is not in the target's
	// history at all.
	ResolveNotInHistory ResolveStatus = "not_in_history"
	// ResolveMinRecoveryPoint: the backup's minimum recovery point is not on
	// the target's path.
	ResolveMinRecoveryPoint ResolveStatus = "min_recovery_point_not_on_path"
)

// maxAfterRequests bounds [Resolution.After] for absurd timeline numbers.
const maxAfterRequests = 4096

// Resolution is the result of resolving a recovery_target_timeline setting
// for a backup, with the data needed to explain a failure.
type Resolution struct {
	Target Target `json:"target"`
	Backup Backup `json:"backup"`
	// TLI is the target timeline the server settles on (for
	// ResolveNotFound, the number asked for).
	TLI    walname.TimelineID `json:"tli"`
	Status ResolveStatus      `json:"status"`
	// Probed lists, for 'latest', the timelines whose history file was
	// probed, in order; the last one was missing.
	Probed []walname.TimelineID `json:"probed,omitempty"`
	// History is the target's history as the server reads it; nil for
	// ResolveNotFound and ResolveUnreadable.
	History *History `json:"-"`
	// HistoryMissing is set when the target is above timeline 1 but has no
	// history file: the server silently assumes it has no parent.
	HistoryMissing bool `json:"history_missing,omitempty"`
	// CheckpointOn is the timeline the target's history assigns to the
	// checkpoint LSN.
	CheckpointOn walname.TimelineID `json:"checkpoint_on,omitempty"`
	// LeftAt and LeftTo, for ResolveNotAChild, say where the target's history
	// leaves the checkpoint's timeline and for which timeline (the server's
	// tliSwitchPoint). LeftAt is 0 when the checkpoint's timeline is the tip.
	LeftAt walname.LSN        `json:"left_at,omitempty"`
	LeftTo walname.TimelineID `json:"left_to,omitempty"`
	// Cause is the parse error for ResolveUnreadable.
	Cause error `json:"-"`
	// Before lists the history files recovery asks restore_command for
	// before it reads the checkpoint's segment: the 'latest' probes or the
	// existence check of a numeric target, then the target's own file.
	Before []string `json:"before,omitempty"`
	// After lists the history files recovery fetches once the checkpoint was
	// read and accepted (restoreTimeLineHistoryFiles: every timeline from the
	// checkpoint's up to, not including, the target; timeline 1 skipped).
	After []string `json:"after,omitempty"`
}

// Resolve determines the target timeline exactly as the server does
// (validateRecoveryParameters, then the checks in InitWalRecovery) and
// checks the backup against its history. Failures the server would report
// are in the result's Status; the error is only for unusable input.
func (s *Set) Resolve(t Target, b Backup) (Resolution, error) {
	r := Resolution{Target: t, Backup: b}
	if b.CheckpointTLI == 0 {
		return r, fmt.Errorf("resolve %s: the backup's checkpoint timeline is 0", t)
	}
	switch t.Kind {
	case TargetLatest:
		r.TLI = b.CheckpointTLI
		for probe := b.CheckpointTLI + 1; probe != 0; probe++ { // 0: wrapped around
			r.Probed = append(r.Probed, probe)
			r.Before = append(r.Before, walname.HistoryName(probe))
			if !s.HasHistoryFile(probe) {
				break
			}
			r.TLI = probe
		}
	case TargetCurrent:
		r.TLI = b.CheckpointTLI
	case TargetNumeric:
		if t.TLI == 0 {
			return r, fmt.Errorf("resolve %s: timeline 0 does not exist", t)
		}
		r.TLI = t.TLI
		if t.TLI != 1 {
			r.Before = append(r.Before, walname.HistoryName(t.TLI))
			if !s.HasHistoryFile(t.TLI) {
				r.Status = ResolveNotFound
				return r, nil
			}
		}
	default:
		return r, fmt.Errorf("resolve: unknown target kind %q", t.Kind)
	}
	if r.TLI != 1 {
		r.Before = append(r.Before, walname.HistoryName(r.TLI))
	}
	h, err := s.History(r.TLI)
	if err != nil {
		r.Status, r.Cause = ResolveUnreadable, err
		return r, nil
	}
	r.History = h
	r.HistoryMissing = r.TLI != 1 && !s.HasHistoryFile(r.TLI)
	r.CheckpointOn = h.TLIAt(b.CheckpointLSN)
	if r.CheckpointOn != b.CheckpointTLI {
		if at, next, ok := h.SwitchPoint(b.CheckpointTLI); ok {
			r.Status, r.LeftAt, r.LeftTo = ResolveNotAChild, at, next
		} else {
			r.Status = ResolveNotInHistory
		}
		return r, nil
	}
	if b.MinRecoveryPoint != walname.InvalidLSN && h.TLIAt(b.MinRecoveryPoint-1) != b.MinRecoveryPointTLI {
		r.Status = ResolveMinRecoveryPoint
		return r, nil
	}
	r.Status = ResolveOK
	for tli := b.CheckpointTLI; tli < r.TLI && len(r.After) < maxAfterRequests; tli++ {
		if tli != 1 {
			r.After = append(r.After, walname.HistoryName(tli))
		}
	}
	return r, nil
}

// OK reports whether recovery gets past timeline resolution.
func (r Resolution) OK() bool { return r.Status == ResolveOK }

// subject names the target for messages: "latest picks TLI 3".
func (r Resolution) subject() string {
	switch r.Target.Kind {
	case TargetLatest:
		return fmt.Sprintf("latest picks TLI %d", r.TLI)
	case TargetCurrent:
		return fmt.Sprintf("current is TLI %d", r.TLI)
	}
	return fmt.Sprintf("TLI %d", r.TLI)
}

// Describe explains the outcome in one sentence, e.g. "latest picks TLI 3,
// which forked from TLI 2 at 0/C00120, before this backup's checkpoint
// 0/D00060 on TLI 2". Pair it with [Set.WorkingTargets] to suggest a fix.
func (r Resolution) Describe() string {
	b := r.Backup
	c := b.CheckpointTLI
	switch r.Status {
	case ResolveOK:
		msg := fmt.Sprintf("%s, whose history holds this backup's checkpoint %s on TLI %d", r.subject(), b.CheckpointLSN, c)
		if r.HistoryMissing {
			msg += fmt.Sprintf("; %s is missing, so recovery reads only TLI %d's own segments", walname.HistoryName(r.TLI), r.TLI)
		}
		return msg
	case ResolveNotFound:
		return fmt.Sprintf("recovery target timeline %d does not exist: %s is not in the archive", r.TLI, walname.HistoryName(r.TLI))
	case ResolveUnreadable:
		return fmt.Sprintf("%s, but the server cannot read %s: %v", r.subject(), walname.HistoryName(r.TLI), r.Cause)
	case ResolveNotAChild:
		// Explain with the effective path, not tliSwitchPoint: with a
		// backwards switch point the two differ.
		spans := r.History.Path(walname.InvalidLSN, walname.InvalidLSN)
		last, seen := -1, false
		for i, sp := range spans {
			if sp.Timeline == c {
				seen = true
				if sp.BeginLSN <= b.CheckpointLSN {
					last = i
				}
			}
		}
		switch {
		case last >= 0 && last+1 < len(spans):
			end, next := spans[last].EndLSN, spans[last+1].Timeline
			if next == r.TLI {
				return fmt.Sprintf("%s, which forked from TLI %d at %s, before this backup's checkpoint %s on TLI %d",
					r.subject(), c, end, b.CheckpointLSN, c)
			}
			return fmt.Sprintf("%s, whose history leaves TLI %d at %s (for TLI %d), before this backup's checkpoint %s on TLI %d",
				r.subject(), c, end, next, b.CheckpointLSN, c)
		case seen:
			return fmt.Sprintf("%s, in whose history TLI %d begins after this backup's checkpoint %s on TLI %d",
				r.subject(), c, b.CheckpointLSN, c)
		}
		return fmt.Sprintf("%s, in whose history TLI %d holds no WAL (a later line's switch point goes backwards), so this backup's checkpoint %s on TLI %d is not on its path",
			r.subject(), c, b.CheckpointLSN, c)
	case ResolveNotInHistory:
		return fmt.Sprintf("%s, whose history does not include TLI %d, the timeline of this backup's checkpoint %s",
			r.subject(), c, b.CheckpointLSN)
	case ResolveMinRecoveryPoint:
		return fmt.Sprintf("%s, whose history does not hold this backup's minimum recovery point %s on TLI %d",
			r.subject(), b.MinRecoveryPoint, b.MinRecoveryPointTLI)
	}
	return string(r.Status)
}

// Fatal returns the FATAL message (and DETAIL, if any) the server logs for
// this outcome, or "" for ResolveOK.
func (r Resolution) Fatal() (message, detail string) {
	b := r.Backup
	switch r.Status {
	case ResolveNotFound:
		return fmt.Sprintf("recovery target timeline %d does not exist", r.TLI), ""
	case ResolveUnreadable:
		var pe *ParseError
		if errors.As(r.Cause, &pe) {
			if errors.Is(pe.Err, ErrSyntax) {
				return "syntax error in history file: " + pe.Text, ""
			}
			return "invalid data in history file: " + pe.Text, ""
		}
		return "invalid data in history file " + walname.HistoryName(r.TLI), ""
	case ResolveNotAChild:
		return fmt.Sprintf("requested timeline %d is not a child of this server's history", r.TLI),
			fmt.Sprintf("Latest checkpoint is at %s on timeline %d, but in the history of the requested timeline, the server forked off from that timeline at %s.",
				b.CheckpointLSN, b.CheckpointTLI, r.LeftAt)
	case ResolveNotInHistory:
		return fmt.Sprintf("requested timeline %d is not in this server's history", b.CheckpointTLI), ""
	case ResolveMinRecoveryPoint:
		return fmt.Sprintf("requested timeline %d does not contain minimum recovery point %s on timeline %d",
			r.TLI, b.MinRecoveryPoint, b.MinRecoveryPointTLI), ""
	}
	return "", ""
}

// Err returns nil for ResolveOK, else an error wrapping the class
// ([ErrTimelineNotFound], [ErrHistoryUnreadable], [ErrNotAChild],
// [ErrMinRecoveryPoint]) whose text is [Resolution.Describe].
func (r Resolution) Err() error {
	switch r.Status {
	case ResolveOK:
		return nil
	case ResolveNotFound:
		return fmt.Errorf("%w: %s", ErrTimelineNotFound, r.Describe())
	case ResolveUnreadable:
		return fmt.Errorf("%w: %s: %w", ErrHistoryUnreadable, r.subject(), r.Cause)
	case ResolveNotAChild, ResolveNotInHistory:
		return fmt.Errorf("%w: %s", ErrNotAChild, r.Describe())
	case ResolveMinRecoveryPoint:
		return fmt.Errorf("%w: %s", ErrMinRecoveryPoint, r.Describe())
	}
	return fmt.Errorf("resolve %s: unknown status %q", r.Target, r.Status)
}

// TargetOptions resolves, for backup b, 'latest', 'current' and every
// numeric target the archive offers (timeline 1 and each timeline with a
// history file), in that order. Filter with [Resolution.OK].
func (s *Set) TargetOptions(b Backup) ([]Resolution, error) {
	targets := []Target{{Kind: TargetLatest}, {Kind: TargetCurrent}, {Kind: TargetNumeric, TLI: 1}}
	for _, t := range sortedKeys(s.raw) {
		targets = append(targets, Target{Kind: TargetNumeric, TLI: t})
	}
	out := make([]Resolution, 0, len(targets))
	for _, t := range targets {
		r, err := s.Resolve(t, b)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// WorkingTargets lists the recovery_target_timeline settings that pass
// resolution for backup b: 'latest' and 'current' first if they work, then
// timeline numbers ascending.
func (s *Set) WorkingTargets(b Backup) ([]Target, error) {
	opts, err := s.TargetOptions(b)
	if err != nil {
		return nil, err
	}
	var out []Target
	for _, r := range opts {
		if r.OK() {
			out = append(out, r.Target)
		}
	}
	return out, nil
}

// CheckpointMissing is the FATAL message of recovery that cannot read the
// backup's checkpoint record, here because its segment is missing.
const CheckpointMissing = "could not locate required checkpoint record"

// RestoreSequence lists every name recovery passes to restore_command, in
// order, given a resolution and p, the plan made from r.History for the
// backup's start segment (nil when r.History is nil): history probes and
// reads, the checkpoint's segment, the history files fetched once the
// checkpoint was accepted, then the remaining segments. It stops where the
// server stops and returns the FATAL message it would log first ("" when
// startup succeeds; running out of WAL later is not a startup failure):
// resolution failures that need no WAL come before the checkpoint's segment
// is read, a missing checkpoint segment ([CheckpointMissing]) before the
// not-a-child checks.
func RestoreSequence(r Resolution, p *Plan) (names []string, fatal string) {
	names = append([]string(nil), r.Before...)
	if r.History == nil || p == nil || len(p.Steps) == 0 {
		fatal, _ = r.Fatal()
		return names, fatal
	}
	first := p.Steps[0]
	for _, t := range first.Tried {
		names = append(names, walname.SegmentName(t, first.Seg, p.Size))
	}
	if first.Status == StepMissing {
		return names, CheckpointMissing
	}
	if !r.OK() {
		fatal, _ = r.Fatal()
		return names, fatal
	}
	names = append(names, r.After...)
	for _, st := range p.Steps[1:] {
		for _, t := range st.Tried {
			names = append(names, walname.SegmentName(t, st.Seg, p.Size))
		}
	}
	return names, ""
}
