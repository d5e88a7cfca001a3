package wal

import (
	"fmt"
	"strings"
	"time"

	"github.com/walaudit/walaudit/walname"
)

// EventKind classifies the records that matter for recovery targets and
// timeline analysis.
type EventKind uint8

// Event kinds.
const (
	EventCommit EventKind = iota + 1
	EventAbort
	EventCommitPrepared
	EventAbortPrepared
	EventPrepare
	EventRestorePoint
	EventCheckpointShutdown
	EventCheckpointOnline
	EventEndOfRecovery
	EventBackupEnd
	EventSwitch
	EventParameterChange
	EventOverwriteContrecord
	EventCheckpointRedo // 17+
)

var eventNames = [...]string{
	EventCommit:              "commit",
	EventAbort:               "abort",
	EventCommitPrepared:      "commit_prepared",
	EventAbortPrepared:       "abort_prepared",
	EventPrepare:             "prepare",
	EventRestorePoint:        "restore_point",
	EventCheckpointShutdown:  "checkpoint_shutdown",
	EventCheckpointOnline:    "checkpoint_online",
	EventEndOfRecovery:       "end_of_recovery",
	EventBackupEnd:           "backup_end",
	EventSwitch:              "switch",
	EventParameterChange:     "parameter_change",
	EventOverwriteContrecord: "overwrite_contrecord",
	EventCheckpointRedo:      "checkpoint_redo",
}

// String returns the kind's snake_case name.
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// MarshalText implements encoding.TextMarshaler.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// IsXactEnd reports whether recovery_target_xid and recovery_target_time
// look at events of this kind: commits and aborts, prepared or not. A
// PREPARE is never a stop point.
func (k EventKind) IsXactEnd() bool {
	return k == EventCommit || k == EventAbort || k == EventCommitPrepared || k == EventAbortPrepared
}

// Event is a record relevant to recovery targets, decoded.
type Event struct {
	Kind   EventKind   // what the record is
	LSN    walname.LSN // record start
	EndLSN walname.LSN // record end (EndRecPtr)
	// PrevEnd is the end (EndLSN) of the record before this one: what
	// pg_last_wal_replay_lsn() returns when recovery stops before this
	// record. See [Record.PrevEnd].
	PrevEnd walname.LSN
	// XID is the transaction a recovery_target_xid is compared with: the
	// record's xl_xid for COMMIT and ABORT (always the top-level xid), the
	// prepared transaction's xid for COMMIT_PREPARED, ABORT_PREPARED and
	// PREPARE.
	XID uint32
	// Time is xact_time for commits and aborts, prepared_at for PREPARE,
	// rp_time, the checkpoint time (whole seconds), end_time or
	// overwrite_time; zero for kinds without one.
	Time time.Time
	// Name is the restore point name or the two-phase GID.
	Name string
	// TLI and PrevTLI are ThisTimeLineID and PrevTimeLineID of checkpoints
	// and end-of-recovery records.
	TLI, PrevTLI walname.TimelineID
	// Redo is a checkpoint's redo pointer.
	Redo walname.LSN
	// BackupStart is the start LSN named by XLOG_BACKUP_END.
	BackupStart walname.LSN
	// Overwritten is the abandoned record named by XLOG_OVERWRITE_CONTRECORD.
	Overwritten walname.LSN
	// Params holds XLOG_PARAMETER_CHANGE settings.
	Params *ParameterChange
	// WalLevel is the wal_level of checkpoints and end-of-recovery records
	// (17+) and of XLOG_CHECKPOINT_REDO; -1 when the record has none.
	WalLevel int32
}

// EventOf decodes rec if it is an event, reporting false for every other
// record. major selects the payload layouts; 0 means rec.Major. A record
// of an event kind whose main data does not decode returns an error
// wrapping [ErrPayload].
func EventOf(rec *Record, major int) (Event, bool, error) {
	if major == 0 {
		major = rec.Major
	}
	lay, err := layoutFor(major)
	if err != nil {
		return Event{}, false, err
	}
	return eventOf(rec, lay)
}

// mayBeEvent reports whether a record with header h can be an event:
// eventOf looks at its main data.
func (l *layout) mayBeEvent(h recordHeader) bool {
	switch h.rmid {
	case RmXLOG:
		switch h.info &^ XLRInfoMask {
		case XLOGCheckpointShutdown, XLOGCheckpointOnline, XLOGSwitch, XLOGBackupEnd, XLOGRestorePoint,
			XLOGEndOfRecovery, XLOGParameterChange, XLOGOverwriteContrecord:
			return true
		case XLOGCheckpointRedo:
			return l.walLevelInCheckpoint()
		}
	case RmXact:
		switch h.info & XactOpMask {
		case XactOpCommit, XactOpAbort, XactOpCommitPrepared, XactOpAbortPrepared, XactOpPrepare:
			return true
		}
	}
	return false
}

func eventOf(rec *Record, lay *layout) (Event, bool, error) {
	ev := Event{LSN: rec.StartLSN, EndLSN: rec.EndLSN, PrevEnd: rec.PrevEnd, WalLevel: -1}
	switch rec.RmID {
	case RmXLOG:
		return xlogEvent(ev, rec, lay)
	case RmXact:
		return xactEvent(ev, rec, lay)
	}
	return ev, false, nil
}

func xlogEvent(ev Event, rec *Record, lay *layout) (Event, bool, error) {
	data := rec.MainData
	switch rec.Info &^ XLRInfoMask {
	case XLOGCheckpointShutdown, XLOGCheckpointOnline:
		c, err := decodeCheckPoint(data, lay)
		if err != nil {
			return ev, false, err
		}
		ev.Kind = EventCheckpointOnline
		if rec.Info&^XLRInfoMask == XLOGCheckpointShutdown {
			ev.Kind = EventCheckpointShutdown
		}
		ev.Time, ev.TLI, ev.PrevTLI, ev.Redo, ev.WalLevel = c.Time, c.ThisTLI, c.PrevTLI, c.Redo, c.WalLevel
	case XLOGSwitch:
		if len(data) != 0 {
			return ev, false, errorf(ErrPayload, "switch record has %d bytes of data, want none", len(data))
		}
		ev.Kind = EventSwitch
	case XLOGBackupEnd:
		start, err := DecodeBackupEnd(data)
		if err != nil {
			return ev, false, err
		}
		ev.Kind, ev.BackupStart = EventBackupEnd, start
	case XLOGRestorePoint:
		rp, err := DecodeRestorePoint(data)
		if err != nil {
			return ev, false, err
		}
		ev.Kind, ev.Time, ev.Name = EventRestorePoint, rp.Time, rp.Name
	case XLOGEndOfRecovery:
		e, err := decodeEndOfRecovery(data, lay)
		if err != nil {
			return ev, false, err
		}
		ev.Kind, ev.Time, ev.TLI, ev.PrevTLI, ev.WalLevel = EventEndOfRecovery, e.Time, e.ThisTLI, e.PrevTLI, e.WalLevel
	case XLOGParameterChange:
		p, err := DecodeParameterChange(data)
		if err != nil {
			return ev, false, err
		}
		ev.Kind, ev.Params = EventParameterChange, &p
	case XLOGOverwriteContrecord:
		o, err := DecodeOverwriteContrecord(data)
		if err != nil {
			return ev, false, err
		}
		ev.Kind, ev.Time, ev.Overwritten = EventOverwriteContrecord, o.Time, o.Overwritten
	case XLOGCheckpointRedo:
		if !lay.walLevelInCheckpoint() {
			return ev, false, nil
		}
		lvl, err := DecodeCheckpointRedo(data)
		if err != nil {
			return ev, false, err
		}
		ev.Kind, ev.WalLevel = EventCheckpointRedo, lvl
	default:
		return ev, false, nil
	}
	return ev, true, nil
}

func xactEvent(ev Event, rec *Record, lay *layout) (Event, bool, error) {
	switch op := rec.Info & XactOpMask; op {
	case XactOpCommit, XactOpAbort, XactOpCommitPrepared, XactOpAbortPrepared:
		var x XactEnd
		if err := parseXactEnd(&x, rec.Info, rec.MainData, lay, false); err != nil {
			return ev, false, err
		}
		ev.Time, ev.XID = x.Time, rec.XID
		switch op {
		case XactOpCommit:
			ev.Kind = EventCommit
		case XactOpAbort:
			ev.Kind = EventAbort
		case XactOpCommitPrepared, XactOpAbortPrepared:
			if x.XInfo&XactXinfoHasTwoPhase == 0 {
				return ev, false, errorf(ErrPayload, "%s record without the prepared transaction's xid", xactOpName(op))
			}
			ev.Kind, ev.XID, ev.Name = EventCommitPrepared, x.TwoPhaseXID, x.GID
			if op == XactOpAbortPrepared {
				ev.Kind = EventAbortPrepared
			}
		}
	case XactOpPrepare:
		p, err := decodeXactPrepare(rec.MainData, lay)
		if err != nil {
			return ev, false, err
		}
		ev.Kind, ev.XID, ev.Time, ev.Name = EventPrepare, p.XID, p.Time, p.GID
	default:
		return ev, false, nil
	}
	return ev, true, nil
}

func xactOpName(op uint8) string {
	switch op & XactOpMask {
	case XactOpCommit:
		return "COMMIT"
	case XactOpPrepare:
		return "PREPARE"
	case XactOpAbort:
		return "ABORT"
	case XactOpCommitPrepared:
		return "COMMIT_PREPARED"
	case XactOpAbortPrepared:
		return "ABORT_PREPARED"
	case XactOpAssignment:
		return "ASSIGNMENT"
	case XactOpInvalidations:
		return "INVALIDATION"
	}
	return fmt.Sprintf("UNKNOWN (%02X)", op)
}

func xlogOpName(info uint8) string {
	switch info &^ XLRInfoMask {
	case XLOGCheckpointShutdown:
		return "CHECKPOINT_SHUTDOWN"
	case XLOGCheckpointOnline:
		return "CHECKPOINT_ONLINE"
	case XLOGNoop:
		return "NOOP"
	case XLOGNextOID:
		return "NEXTOID"
	case XLOGSwitch:
		return "SWITCH"
	case XLOGBackupEnd:
		return "BACKUP_END"
	case XLOGParameterChange:
		return "PARAMETER_CHANGE"
	case XLOGRestorePoint:
		return "RESTORE_POINT"
	case XLOGFPWChange:
		return "FPW_CHANGE"
	case XLOGEndOfRecovery:
		return "END_OF_RECOVERY"
	case XLOGFPIForHint:
		return "FPI_FOR_HINT"
	case XLOGFPI:
		return "FPI"
	case XLOGOverwriteContrecord:
		return "OVERWRITE_CONTRECORD"
	case XLOGCheckpointRedo:
		return "CHECKPOINT_REDO"
	}
	return fmt.Sprintf("UNKNOWN (%02X)", info&^XLRInfoMask)
}

// pgTime formats a time as pg_waldump does (timestamptz_to_str in UTC).
func pgTime(t time.Time) string {
	s := t.UTC().Format("2006-01-02 15:04:05.999999")
	return s + " UTC"
}

// Describe returns a concise pg_waldump-like description of rec: the
// resource manager, then what pg_waldump prints after "desc:", e.g.
//
//	Transaction COMMIT 2026-11-21 01:58:52.522029 UTC; subxacts: 729 730
//	XLOG CHECKPOINT_ONLINE redo 0/600370; tli 1; prev tli 1; fpw true; ...
//	Heap len 150, blocks 1
//
// XLOG and Transaction records are decoded; others give their length and
// number of block references. Payloads that do not decode say so.
func Describe(rec *Record) string {
	var desc string
	switch rec.RmID {
	case RmXLOG:
		desc = describeXLOG(rec)
	case RmXact:
		desc = describeXact(rec)
	default:
		desc = fmt.Sprintf("len %d, blocks %d", rec.TotLen, len(rec.Blocks))
	}
	return rec.RmID.String() + " " + desc
}

func describeXLOG(rec *Record) string {
	name := xlogOpName(rec.Info)
	lay, err := layoutFor(rec.Major)
	if err != nil {
		return name
	}
	data := rec.MainData
	bad := func(err error) string { return fmt.Sprintf("%s (undecodable: %v)", name, err) }
	switch rec.Info &^ XLRInfoMask {
	case XLOGCheckpointShutdown, XLOGCheckpointOnline:
		c, err := decodeCheckPoint(data, lay)
		if err != nil {
			return bad(err)
		}
		s := fmt.Sprintf("%s redo %s; tli %d; prev tli %d; fpw %t; xid %d:%d; oid %d; time %s",
			name, c.Redo, c.ThisTLI, c.PrevTLI, c.FullPageWrites, c.NextXID>>32, uint32(c.NextXID), c.NextOID, c.Time.Format(time.DateTime))
		if c.WalLevel >= 0 {
			s += "; wal_level " + WalLevelName(c.WalLevel)
		}
		return s
	case XLOGRestorePoint:
		rp, err := DecodeRestorePoint(data)
		if err != nil {
			return bad(err)
		}
		return fmt.Sprintf("%s %s", name, rp.Name)
	case XLOGBackupEnd:
		start, err := DecodeBackupEnd(data)
		if err != nil {
			return bad(err)
		}
		return fmt.Sprintf("%s %s", name, start)
	case XLOGEndOfRecovery:
		e, err := decodeEndOfRecovery(data, lay)
		if err != nil {
			return bad(err)
		}
		return fmt.Sprintf("%s tli %d; prev tli %d; time %s", name, e.ThisTLI, e.PrevTLI, pgTime(e.Time))
	case XLOGParameterChange:
		p, err := DecodeParameterChange(data)
		if err != nil {
			return bad(err)
		}
		return fmt.Sprintf("%s max_connections=%d max_worker_processes=%d max_wal_senders=%d max_prepared_xacts=%d max_locks_per_xact=%d wal_level=%s wal_log_hints=%s track_commit_timestamp=%s",
			name, p.MaxConnections, p.MaxWorkerProcesses, p.MaxWalSenders, p.MaxPreparedXacts, p.MaxLocksPerXact,
			WalLevelName(p.WalLevel), onOff(p.WalLogHints), onOff(p.TrackCommitTimestamp))
	case XLOGOverwriteContrecord:
		o, err := DecodeOverwriteContrecord(data)
		if err != nil {
			return bad(err)
		}
		return fmt.Sprintf("%s lsn %s; time %s", name, o.Overwritten, pgTime(o.Time))
	case XLOGNextOID:
		if len(data) == 4 {
			return fmt.Sprintf("%s %d", name, uint32(data[0])|uint32(data[1])<<8|uint32(data[2])<<16|uint32(data[3])<<24)
		}
	case XLOGFPWChange:
		if len(data) == 1 {
			return fmt.Sprintf("%s %t", name, data[0] != 0)
		}
	case XLOGCheckpointRedo:
		if lvl, err := DecodeCheckpointRedo(data); err == nil {
			return fmt.Sprintf("%s wal_level %s", name, WalLevelName(lvl))
		}
	}
	if len(rec.Blocks) > 0 {
		return fmt.Sprintf("%s, blocks %d", name, len(rec.Blocks))
	}
	return name
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func describeXact(rec *Record) string {
	op := rec.Info & XactOpMask
	name := xactOpName(op)
	lay, err := layoutFor(rec.Major)
	if err != nil {
		return name
	}
	switch op {
	case XactOpCommit, XactOpAbort, XactOpCommitPrepared, XactOpAbortPrepared:
		var x XactEnd
		if err := parseXactEnd(&x, rec.Info, rec.MainData, lay, true); err != nil {
			return fmt.Sprintf("%s (undecodable: %v)", name, err)
		}
		var b strings.Builder
		b.WriteString(name)
		if x.XInfo&XactXinfoHasTwoPhase != 0 {
			fmt.Fprintf(&b, " %d:", x.TwoPhaseXID)
		}
		b.WriteString(" " + pgTime(x.Time))
		if len(x.Rels) > 0 {
			b.WriteString("; rels:")
			for _, r := range x.Rels {
				fmt.Fprintf(&b, " %s", r)
			}
		}
		if len(x.DroppedStats) > 0 {
			b.WriteString("; dropped stats:")
			for _, s := range x.DroppedStats {
				fmt.Fprintf(&b, " %d/%d/%d", s.Kind, s.DBOID, s.ObjID)
			}
		}
		if len(x.Subxacts) > 0 {
			b.WriteString("; subxacts:")
			for _, s := range x.Subxacts {
				fmt.Fprintf(&b, " %d", s)
			}
		}
		if x.NInvals > 0 {
			fmt.Fprintf(&b, "; inval msgs: %d", x.NInvals)
		}
		if x.GID != "" {
			fmt.Fprintf(&b, "; gid %s", x.GID)
		}
		return b.String()
	case XactOpPrepare:
		p, err := decodeXactPrepare(rec.MainData, lay)
		if err != nil {
			return fmt.Sprintf("%s (undecodable: %v)", name, err)
		}
		return fmt.Sprintf("%s gid %s: %s", name, p.GID, pgTime(p.Time))
	}
	return name
}
