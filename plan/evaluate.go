package plan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/audit/walcache"
	"github.com/walaudit/walaudit/timeline"
	"github.com/walaudit/walaudit/walname"
)

// maxMissingListed bounds the missing-file list of one answer.
const maxMissingListed = 1000

type evaluator struct {
	arch     *audit.Archive
	req      Request
	cache    *walcache.Cache
	findings []finding.Finding
	// collect, when set, sees every event replayed after the backup's
	// consistency point, with the timeline the path assigns to it.
	collect func(b *backup.Backup, e *wal.Event, tli walname.TimelineID)

	locOnce sync.Once
	loc     string

	// batch, while set, collects the summaries to store, so that a cold
	// scan of many segments stores them in one transaction.
	putMu sync.Mutex
	batch *[]walcache.Entry
}

func (ev *evaluator) addFinding(f finding.Finding) { ev.findings = append(ev.findings, f) }

func timelineTarget(s TimelineSetting) timeline.Target {
	switch s.Kind {
	case "current":
		return timeline.Target{Kind: timeline.TargetCurrent}
	case "number":
		return timeline.Target{Kind: timeline.TargetNumeric, TLI: s.TLI}
	}
	return timeline.Target{Kind: timeline.TargetLatest}
}

func settingOf(t timeline.Target) string {
	switch t.Kind {
	case timeline.TargetCurrent:
		return "current"
	case timeline.TargetNumeric:
		return t.TLI.String()
	}
	return "latest"
}

// answer decides one backup's reachability of the target.
func (ev *evaluator) answer(ctx context.Context, b *backup.Backup) (*BackupAnswer, error) {
	ans := &BackupAnswer{BackupRef: backupRef(b), TimelinePath: []PathEntry{}, Missing: []string{}}
	unreachable := func(format string, args ...any) (*BackupAnswer, error) {
		ans.Verdict, ans.Reason = Unreachable, fmt.Sprintf(format, args...)
		return ans, nil
	}
	switch {
	case b.Incremental:
		return unreachable("incremental backup (PostgreSQL 17+): never restorable on its own; combine it with its chain using pg_combinebackup")
	case b.StartLSN == 0 || b.StartTLI == 0:
		return unreachable("backup metadata has no start LSN or timeline (unreadable backup_label)")
	case !b.Usable():
		for _, f := range b.Findings {
			if f.Severity == finding.Error {
				return unreachable("backup is damaged: %s", f.Message)
			}
		}
	}
	inv := ev.arch.Inv
	sz := inv.SegmentSize
	ckpt := b.CheckpointLSN
	if ckpt == 0 {
		ckpt = b.StartLSN
	}
	tb := timeline.Backup{CheckpointLSN: ckpt, CheckpointTLI: b.StartTLI}
	if b.FromStandby && b.Control != nil && b.Control.CRCValid {
		tb.MinRecoveryPoint, tb.MinRecoveryPointTLI = b.Control.MinRecoveryPoint, b.Control.MinRecoveryPointTLI
	}
	tt := timelineTarget(ev.req.Timeline)
	r, err := ev.arch.Timelines.Resolve(tt, tb)
	if err != nil {
		ans.Verdict, ans.Reason = Undecided, fmt.Sprintf("cannot resolve the target timeline: %v", err)
		return ans, nil
	}
	ans.ResolvedTimeline = r.TLI
	if !r.OK() {
		msg, detail := r.Fatal()
		ans.Verdict = Unreachable
		ans.Reason = r.Describe()
		if msg != "" {
			ans.Reason += fmt.Sprintf(" (PostgreSQL: FATAL: %s", msg)
			if detail != "" {
				ans.Reason += "; " + detail
			}
			ans.Reason += ")"
		}
		if alts, err := ev.arch.Timelines.WorkingTargets(tb); err == nil && len(alts) > 0 {
			var s []string
			for _, a := range alts {
				s = append(s, "--target-timeline "+settingOf(a))
			}
			ans.Suggestion = "this backup recovers with " + strings.Join(s, " or ")
		}
		return ans, nil
	}
	h := r.History

	exists := func(tli walname.TimelineID, seg walname.SegNo) bool {
		if inv.Segment(tli, seg) != nil {
			return true
		}
		return carries(b, walname.SegmentName(tli, seg, sz))
	}
	partial := func(tli walname.TimelineID, seg walname.SegNo) bool { return inv.Partial(tli, seg) != nil }
	startSeg := b.StartLSN.Segment(sz)
	fp, err := h.Plan(timeline.PlanRequest{Size: sz, Start: startSeg, Exists: exists, Partial: partial})
	if err != nil {
		return nil, fmt.Errorf("plan WAL files for backup %s: %w", b.ID, err)
	}
	var w *walkResult
	if ev.req.NamesOnly {
		switch ev.req.Target.Kind {
		case TargetTime, TargetXID, TargetName:
			ans.Verdict = Undecided
			ans.Reason = fmt.Sprintf("a %s target needs WAL content decoding: run without --names-only", ev.req.Target.Kind)
			return ans, nil
		}
		w = ev.namesOnlyWalk(b, h, fp)
	} else {
		w, err = ev.walk(ctx, b, h, fp)
		if err != nil {
			return nil, err
		}
	}
	ans.EndOfWAL = w.end

	// The path recovery follows, from the backup's start to where it stops.
	until := walname.InvalidLSN
	if w.stop != nil {
		until = w.stop.LSN
	}
	for _, sp := range h.Path(b.StartLSN, walname.InvalidLSN) {
		pe := PathEntry{Timeline: sp.Timeline, BeginLSN: sp.BeginLSN}
		if sp.EndLSN != 0 {
			e := sp.EndLSN
			pe.EndLSN = &e
		}
		ans.TimelinePath = append(ans.TimelinePath, pe)
		if until != 0 && sp.EndLSN != 0 && sp.EndLSN >= until {
			break
		}
	}
	if w.consistent {
		win := &Window{FromLSN: w.consistencyLSN, ToLSN: w.end}
		win.FromTime = NewTimestamp(w.fromTime)
		win.ToTime = NewTimestamp(w.lastXactTime)
		ans.Window = win
	}
	lastNeeded := w.end.EndSegment(sz)
	if w.stop != nil {
		lastNeeded = w.stop.LSN.EndSegment(sz)
	}
	for _, st := range fp.Steps {
		if st.Read != 0 && st.Seg <= lastNeeded {
			ans.Files = append(ans.Files, walname.SegmentName(st.Read, st.Seg, sz))
		}
	}
	names, _ := timeline.RestoreSequence(r, fp)
	for _, n := range names {
		if nm, err := walname.Parse(n); err == nil && nm.Kind == walname.KindSegment {
			if seg, err := nm.SegNo(sz); err == nil && seg > lastNeeded {
				continue
			}
		}
		ans.Requests = append(ans.Requests, n)
	}

	// The furthest segment the archive holds on this path: 'latest' must
	// reach it, and missing files before it are listed.
	lastSeg := lastSegmentOnPath(inv, h, startSeg, sz, ev.sameSystem(b))
	endSeg := w.end.EndSegment(sz)
	if w.end <= sz.StartLSN(startSeg) {
		endSeg = startSeg
	}

	missingFrom := func(from, to walname.SegNo) {
		for s := from; s <= to && len(ans.Missing) < maxMissingListed; s++ {
			tli := h.TLIAt(segEndLSN(s, sz) - 1)
			name := walname.SegmentName(tli, s, sz)
			if inv.Segment(tli, s) == nil && !carries(b, name) && !contains(ans.Missing, name) {
				ans.Missing = append(ans.Missing, name)
			}
		}
	}
	breakReason := ev.describeEnd(b, w, fp, sz)

	if w.stop != nil {
		ans.Stop = w.stop
		ans.Stop.Timeline = h.TLIAt(w.stop.LSN - 1)
		ans.SegmentsNeeded = int(w.stop.LSN.EndSegment(sz)-startSeg) + 1
		if w.stopErr != "" {
			return unreachable("%s", w.stopErr)
		}
		proof, msg, err := ev.timeBeforeBackup(ctx, b, h)
		if err != nil {
			return nil, err
		}
		if msg != "" {
			return unreachable("%s", msg)
		}
		ans.Verdict = Reachable
		ans.Reason = fmt.Sprintf("recovery %s", w.stop.Reason)
		if proof != nil {
			ans.PreBackup = proof
			ans.Reason += fmt.Sprintf("; the target lies before this backup's start, but the archive's WAL from %s to the backup's start %s proves that no transaction committed in between (last transaction end before the target: %s at %s), so the restored data is the state at the target",
				proof.FromLSN, proof.ToLSN, proof.LastBefore.Kind, proof.LastBefore.LSN)
		}
		if w.wrongBranchWarn != "" {
			ev.addFinding(finding.Finding{Severity: finding.Warning, Code: "WRONG_BRANCH", File: w.wrongBranchFile, LSN: w.wrongBranchAt,
				Message: w.wrongBranchWarn, Hint: "restore the child timeline's copy of this segment; any later target on this timeline is unreachable"})
		}
		return ans, nil
	}

	// No stop decided: the WAL ended first.
	if !w.consistent {
		missingFrom(endSeg, endSeg+1)
		ans.SegmentsNeeded = int(endSeg-startSeg) + 1
		// Damaged WAL before consistency is a finding too, naming the file.
		var ce *wal.ContentError
		if w.err != nil && !wal.IsEndOfWAL(w.err) && errors.As(w.err, &ce) {
			ev.addFinding(audit.ContentFinding(ce.File, ce, 0))
		}
		if w.checkpointMissing {
			return unreachable("could not locate the backup's checkpoint record at %s: %s", ckpt, breakReason)
		}
		cons := "the end of the online backup"
		if l, ok := b.ConsistencyLSN(); ok {
			cons = fmt.Sprintf("the backup's consistency point %s", l)
		}
		return unreachable("WAL ends at %s before %s (PostgreSQL: FATAL: WAL ends before end of online backup): %s", w.end, cons, breakReason)
	}
	if ev.req.Target.Kind == TargetLatest {
		ans.Stop = &Stop{LSN: w.end, Timeline: h.TLIAt(w.end - 1),
			Reason: fmt.Sprintf("replays all archived WAL to %s and ends recovery there", w.end)}
		ans.SegmentsNeeded = int(endSeg-startSeg) + 1
		if lastSeg > endSeg || w.damage {
			missingFrom(endSeg, lastSeg)
			ans.Verdict = Unreachable
			ans.Reason = fmt.Sprintf("latest is not reachable: %s; PostgreSQL would end recovery quietly at %s and call it success, losing the WAL archived after it (up to %s)",
				breakReason, w.end, walname.SegmentName(h.TLIAt(segEndLSN(lastSeg, sz)-1), lastSeg, sz))
			if w.broken != "" {
				ans.Reason = fmt.Sprintf("latest is not reachable: %s; recovery stops with FATAL when it reaches %s", breakReason, w.end)
			}
			ans.Stop.Reason = fmt.Sprintf("recovery would really end at %s (%s)", w.end, breakReason)
			ev.breakFindings(w, b)
			return ans, nil
		}
		ans.Verdict = Reachable
		ans.Reason = fmt.Sprintf("recovery replays all archived WAL on timeline %d to %s", h.TLIAt(w.end-1), w.end)
		if note := ev.systemNote(b, w, h, endSeg); note != "" {
			ans.Reason += "; " + note
		}
		return ans, nil
	}
	if ev.req.NamesOnly && ev.req.Target.Kind == TargetLSN && ev.req.Target.LSN < w.end {
		ans.Verdict = Undecided
		ans.Reason = fmt.Sprintf("the target %s lies in the last archived segment before %s: only decoding the records can show whether one starts at or after it (run without --names-only)", ev.req.Target.LSN, w.end)
		return ans, nil
	}
	// Another target was not reached before the end of WAL.
	if w.missingFile != "" {
		ans.Missing = append(ans.Missing, w.missingFile)
		endSeg = w.missingSeg
	}
	toSeg := lastSeg
	if ev.req.Target.Kind == TargetLSN && ev.req.Target.LSN.Segment(sz) > toSeg {
		toSeg = ev.req.Target.LSN.Segment(sz)
	}
	if toSeg >= endSeg {
		missingFrom(endSeg, toSeg)
	} else {
		toSeg = endSeg
	}
	ans.SegmentsNeeded = int(toSeg-startSeg) + 1
	ev.breakFindings(w, b)
	if note := ev.systemNote(b, w, h, endSeg); note != "" && w.systemEnd == "" {
		breakReason += "; " + note
	}
	return unreachable("recovery ended before the target was reached (PostgreSQL: FATAL: recovery ended before configured recovery target was reached): WAL ends at %s: %s", w.end, breakReason)
}

// backupSystem is the backup's database system identifier: from its
// pg_control or the tool's metadata, else from the archive's segment
// holding its start; 0 when unknown.
func (ev *evaluator) backupSystem(b *backup.Backup) uint64 {
	if b.SystemID != 0 {
		return b.SystemID
	}
	id, _ := ev.arch.Systems.Of(b.StartTLI, b.StartLSN.Segment(ev.arch.Inv.SegmentSize))
	return id
}

// sameSystem accepts the segments of the backup's database system (all
// of them when the archive holds one system or the backup's is unknown).
func (ev *evaluator) sameSystem(b *backup.Backup) func(walname.TimelineID, walname.SegNo) bool {
	bsys := ev.backupSystem(b)
	if bsys == 0 || !ev.arch.Systems.Multiple() {
		return func(walname.TimelineID, walname.SegNo) bool { return true }
	}
	return func(tli walname.TimelineID, seg walname.SegNo) bool {
		id, ok := ev.arch.Systems.Of(tli, seg)
		return !ok || id == bsys
	}
}

// systemNote says, when the archive holds several database systems and
// the backup's WAL ends before another system's begins, that the WAL
// after belongs to that system: not lost WAL of this one.
func (ev *evaluator) systemNote(b *backup.Backup, w *walkResult, h *timeline.History, endSeg walname.SegNo) string {
	if w.systemEnd != "" {
		return w.systemEnd
	}
	bsys := ev.backupSystem(b)
	if bsys == 0 || !ev.arch.Systems.Multiple() {
		return ""
	}
	sz := ev.arch.Inv.SegmentSize
	for _, r := range ev.arch.Systems.Ranges {
		if r.SystemID != bsys && r.First > endSeg && h.Contains(r.TLI) {
			return fmt.Sprintf("the archive's WAL from %s on belongs to database system %d, not this backup's system %d (as after a pg_upgrade into the same archive): this system's archived WAL ends at %s",
				walname.SegmentName(r.TLI, r.First, sz), r.SystemID, bsys, w.end)
		}
	}
	return ""
}

// carries reports whether the backup holds the segment in its own pg_wal,
// which recovery reads when the archive lacks it.
func carries(b *backup.Backup, name string) bool {
	for _, s := range b.WALSegments {
		if s == name {
			return true
		}
	}
	return false
}

func segEndLSN(s walname.SegNo, sz walname.SegmentSize) walname.LSN { return sz.StartLSN(s + 1) }

// lastSegmentOnPath is the highest segment number from start on that the
// archive holds on the timeline the target history assigns to it, among
// the segments keep accepts (those of the backup's database system).
func lastSegmentOnPath(inv *audit.Inventory, h *timeline.History, start walname.SegNo, sz walname.SegmentSize, keep func(walname.TimelineID, walname.SegNo) bool) walname.SegNo {
	last := start
	for _, e := range h.Entries() {
		for _, s := range inv.SegNos(e.TLI) {
			if s < start || s <= last || !keep(e.TLI, s) {
				continue
			}
			if e.Covers(sz.StartLSN(s)) || e.Covers(segEndLSN(s, sz)-1) {
				last = s
			}
		}
	}
	return last
}

// describeEnd says, for people, why the WAL ends where it does.
func (ev *evaluator) describeEnd(b *backup.Backup, w *walkResult, fp *timeline.Plan, sz walname.SegmentSize) string {
	switch {
	case w.wrongBranchFile != "" && w.end == w.wrongBranchAt:
		return w.wrongBranchWarn
	case w.systemEnd != "":
		return w.systemEnd
	case w.err != nil && !wal.IsEndOfWAL(w.err):
		return w.err.Error()
	}
	if w.broken != "" {
		return w.broken
	}
	if w.missingFile != "" {
		msg := fmt.Sprintf("segment %s is missing", w.missingFile)
		for _, st := range fp.Steps {
			if walname.SegmentName(st.Want, st.Seg, sz) == w.missingFile && st.PartialOnly {
				msg += fmt.Sprintf(" (only %s.partial exists: recovery never requests .partial files; rename it to %s by hand to use it)", w.missingFile, w.missingFile)
			}
		}
		return msg
	}
	return fmt.Sprintf("no valid record after %s (%v)", w.end, w.err)
}

// breakFindings raises what stopped the WAL to an error finding.
func (ev *evaluator) breakFindings(w *walkResult, b *backup.Backup) {
	var ce *wal.ContentError
	if w.err != nil && !wal.IsEndOfWAL(w.err) && w.systemEnd == "" && errors.As(w.err, &ce) {
		ev.addFinding(audit.ContentFinding(ce.File, ce, 0))
	}
	if w.wrongBranchFile != "" {
		ev.addFinding(finding.Finding{Severity: finding.Error, Code: "WRONG_BRANCH", File: w.wrongBranchFile, LSN: w.wrongBranchAt,
			Message: w.wrongBranchWarn, Hint: "restore the child timeline's copy of this segment"})
	}
	if w.missingFile != "" && w.broken == "" {
		ev.addFinding(finding.Finding{Severity: finding.Error, Code: "WAL_MISSING", File: w.missingFile, LSN: w.end,
			Message: fmt.Sprintf("segment %s, needed by backup %s, is missing", w.missingFile, b.ID),
			Hint:    "restore it from another copy of the archive; without it no target after " + w.end.String() + " is reachable from this backup"})
	}
}

// walkResult is what decoding the WAL of one backup's path found.
type walkResult struct {
	end        walname.LSN // where valid WAL ends (EndRecPtr of the last good record)
	err        error       // why reading stopped
	damage     bool        // stopped at damaged WAL, not a clean end
	consistent bool
	// consistencyLSN is where the backup became consistent.
	consistencyLSN         walname.LSN
	checkpointMissing      bool
	stop                   *Stop
	stopErr                string // a stop that PostgreSQL turns into FATAL
	fromTime, lastXactTime time.Time
	wrongBranchFile        string
	wrongBranchAt          walname.LSN
	wrongBranchWarn        string
	missingFile            string
	missingSeg             walname.SegNo
	// broken is set when the "missing" file exists but recovery cannot use
	// it (e.g. wrong size: PostgreSQL stops with FATAL, not quietly).
	broken string
	// systemEnd is set when the WAL ends where another database system's
	// run of segments begins (pg_upgrade into the same archive): the end
	// of this system's WAL, not damage.
	systemEnd string
}

// segSource serves the files of a timeline plan to the WAL reader.
type segSource struct {
	inv   *audit.Inventory
	b     *backup.Backup
	sz    walname.SegmentSize
	steps map[walname.SegNo]timeline.Step
}

func (s *segSource) OpenSegment(ctx context.Context, seg walname.SegNo) (io.ReadCloser, string, error) {
	st, ok := s.steps[seg]
	if !ok || st.Read == 0 {
		tli := walname.TimelineID(1)
		if ok {
			tli = st.Want
		}
		name := walname.SegmentName(tli, seg, s.sz)
		return nil, name, fmt.Errorf("%s: %w", name, wal.ErrSegmentMissing)
	}
	name := walname.SegmentName(st.Read, seg, s.sz)
	if o := s.inv.Segment(st.Read, seg); o != nil {
		rc, err := s.inv.Open(ctx, o)
		return rc, name, err
	}
	rc, err := backup.OpenWAL(ctx, s.b, name)
	if err != nil {
		return nil, name, fmt.Errorf("read %s from backup %s: %w", name, s.b.ID, err)
	}
	return rc, name, nil
}

// walk decodes the backup's WAL from its redo point along the plan,
// tracking consistency and applying the target's stop rules exactly as
// recoveryStopsBefore/recoveryStopsAfter do (FORMATS §5.3, §5.4).
func (ev *evaluator) walk(ctx context.Context, b *backup.Backup, h *timeline.History, fp *timeline.Plan) (*walkResult, error) {
	return ev.walkWith(ctx, b, h, fp, ev.cache != nil)
}

func (ev *evaluator) walkWith(ctx context.Context, b *backup.Backup, h *timeline.History, fp *timeline.Plan, useCache bool) (*walkResult, error) {
	sz := ev.arch.Inv.SegmentSize
	src := &segSource{inv: ev.arch.Inv, b: b, sz: sz, steps: map[walname.SegNo]timeline.Step{}}
	for _, st := range fp.Steps {
		src.steps[st.Seg] = st
	}
	ropts := wal.Options{SegmentSize: sz, SystemID: b.SystemID,
		AllowedTLI: func(tli walname.TimelineID, _ walname.LSN) bool { return h.Contains(tli) }}

	w := &walkResult{}
	tg, incl := ev.req.Target, ev.req.Inclusive
	ckptSeen := b.CheckpointLSN == 0
	backupEndDone := b.FromStandby // standby backups have no BACKUP_END record
	minRP, _ := b.ConsistencyLSN()
	if !b.FromStandby {
		minRP = 0
		if b.Control != nil && b.Control.CRCValid {
			minRP = b.Control.MinRecoveryPoint
		}
	}
	if st, ok := timestampOf(b.StartTime); ok {
		w.fromTime = st
	}
	decided := false
	isConsistent := func(at walname.LSN) bool { return backupEndDone && at >= minRP }

	decide := func(stopLSN walname.LSN, before bool, start walname.LSN, e *wal.Event, what string) {
		decided = true
		s := &Stop{LSN: stopLSN, RecordLSN: start}
		if e != nil {
			s.Time = NewTimestamp(e.Time)
			s.XID = e.XID
		}
		if before {
			s.Reason = "stops before " + what
		} else {
			s.Reason = "stops after " + what
		}
		s.LogLine = pgStopLine(tg, before, start, e)
		w.stop = s
		if !isConsistent(stopLSN) {
			l, _ := b.ConsistencyLSN()
			w.stopErr = fmt.Sprintf("the stop point %s lies before the backup's consistency point %s (PostgreSQL: FATAL: requested recovery stop point is before consistent recovery point); %s", stopLSN, l, s.Reason)
		}
	}

	// handle applies one replayed record (rec is nil on the summary path,
	// which sees only event records: then the target is never an LSN and
	// no segment is a wrong-branch copy). It returns true to stop reading.
	done := false
	handle := func(start, end, prevEnd walname.LSN, rec *wal.Record, e wal.Event, isEvent bool) bool {
		// A parent's copy of a switch segment is right only before the
		// switch point; past it, the server would replay another branch.
		if st, ok := src.steps[start.Segment(sz)]; ok && st.Status == timeline.StepWrongBranch && start >= st.ValidEnd {
			w.wrongBranchFile = walname.SegmentName(st.Want, st.Seg, sz)
			w.wrongBranchAt = st.ValidEnd
			w.wrongBranchWarn = fmt.Sprintf("segment %s is missing: recovery would read %s instead and replay timeline %d's records past the switch point %s, on the wrong branch",
				w.wrongBranchFile, walname.SegmentName(st.Read, st.Seg, sz), st.Read, st.ValidEnd)
			w.end = start
			return true
		}
		if !ckptSeen && start >= b.CheckpointLSN {
			isCkpt := isEvent && (e.Kind == wal.EventCheckpointOnline || e.Kind == wal.EventCheckpointShutdown)
			if rec != nil {
				isCkpt = rec.RmID == 0 && (rec.Info&0xF0 == 0x00 || rec.Info&0xF0 == 0x10)
			}
			if start != b.CheckpointLSN || !isCkpt {
				w.err = fmt.Errorf("no checkpoint record starts at the backup's CHECKPOINT LOCATION %s", b.CheckpointLSN)
				w.damage, w.checkpointMissing = true, true
				w.end = start
				ev.addFinding(finding.Finding{Severity: finding.Error, Code: "CHECKPOINT_NOT_FOUND", LSN: b.CheckpointLSN,
					Message: fmt.Sprintf("backup %s: %v", b.ID, w.err), Hint: "the backup's label does not match this archive's WAL"})
				done = true
				return true
			}
			ckptSeen = true
		}
		xactEnd := isEvent && e.Kind.IsXactEnd()
		describe := func() string {
			if rec != nil {
				return wal.Describe(rec)
			}
			return e.Kind.String()
		}

		if !decided {
			switch tg.Kind {
			case TargetLSN:
				if !incl && start >= tg.LSN {
					decide(prevEnd, true, start, evp(isEvent, &e), fmt.Sprintf("the first record at or after %s (%s at %s)", tg.LSN, describe(), start))
				}
			case TargetXID:
				if !incl && xactEnd && e.XID == tg.XID {
					decide(prevEnd, true, start, &e, xactWhat(&e))
				}
			case TargetTime:
				if xactEnd && (e.Time.After(tg.Time) || (!incl && e.Time.Equal(tg.Time))) {
					decide(prevEnd, true, start, &e, xactWhat(&e))
				}
			}
		}
		// Replay the record.
		if isEvent && e.Kind == wal.EventBackupEnd && e.BackupStart == b.StartLSN && !b.FromStandby {
			backupEndDone = true
			if b.StopLSN != 0 && end != b.StopLSN {
				ev.addFinding(finding.Finding{Severity: finding.Warning, Code: "BACKUP_STOP_MISMATCH", LSN: end,
					Message: fmt.Sprintf("backup %s: the end-of-backup record ends at %s but the backup's metadata says %s", b.ID, end, b.StopLSN)})
			}
		}
		if !w.consistent && isConsistent(end) {
			w.consistent, w.consistencyLSN = true, end
		}
		if ev.collect != nil && isEvent && w.consistent {
			ev.collect(b, &e, h.TLIAt(start))
		}
		if xactEnd {
			if !w.consistent {
				if e.Time.After(w.fromTime) {
					w.fromTime = e.Time.UTC()
				}
			} else {
				w.lastXactTime = e.Time.UTC()
			}
		}
		if !decided {
			switch tg.Kind {
			case TargetName:
				if isEvent && e.Kind == wal.EventRestorePoint && e.Name == tg.Name {
					decide(end, false, start, &e, fmt.Sprintf("restore point %q at %s", e.Name, start))
				}
			case TargetLSN:
				if incl && start >= tg.LSN {
					decide(end, false, start, evp(isEvent, &e), fmt.Sprintf("the first record at or after %s (%s at %s)", tg.LSN, describe(), start))
				}
			case TargetXID:
				if incl && xactEnd && e.XID == tg.XID {
					decide(end, false, start, &e, xactWhat(&e))
				}
			case TargetImmediate:
				if w.consistent {
					decide(end, false, start, nil, fmt.Sprintf("reaching consistency at %s", end))
				}
			}
		}
		return false
	}

	var endLSN walname.LSN
	var endErr error
	// read replays records with the reader from start (a record start;
	// prevEnd is the end of the record before it) until handle stops, the
	// WAL ends, or enough reports the records that needed the reader are
	// done. ended is set when the walk is over (a stop or the end of WAL;
	// endLSN and endErr are then set); last is the end of the last record
	// replayed.
	read := func(start, prevEnd walname.LSN, enough func() bool) (ended bool, last walname.LSN, err error) {
		rd, err := wal.NewReader(ctx, src, start, ropts)
		if err != nil {
			return false, 0, fmt.Errorf("read WAL of backup %s: %w", b.ID, err)
		}
		defer rd.Close()
		for rd.Next() {
			rec := rd.Record()
			e, isEvent, perr := wal.EventOf(rec, rd.Major())
			if perr != nil {
				isEvent = false
			}
			last = rec.EndLSN
			if handle(rec.StartLSN, rec.EndLSN, prevEnd, rec, e, isEvent) {
				break
			}
			prevEnd = rec.EndLSN
			if enough != nil && enough() {
				return false, last, nil
			}
		}
		endLSN, endErr = rd.EndOfWAL(), rd.Err()
		return true, last, nil
	}
	steps, ok := ev.summarySteps(b, fp, useCache)
	if !ok {
		if _, _, err := read(b.StartLSN, b.StartLSN, nil); err != nil {
			return nil, err
		}
	} else {
		evs, end, err, ok := ev.chainEvents(ctx, b, h, steps, ropts)
		if !ok {
			// The summaries cannot answer like the reader: read the WAL.
			return ev.walkWith(ctx, b, h, fp, false)
		}
		// Events come from the chain. Where a decision depends on records
		// that are not events (an LSN target's stop; consistency at a
		// minimum recovery point, for standby backups) the reader replays
		// the records from a record start shortly before that point until
		// it is decided, and the events go on after them.
		type exact struct {
			at     walname.LSN
			enough func() bool
		}
		var points []exact
		if minRP != 0 && end > minRP {
			points = append(points, exact{minRP, func() bool { return w.consistent }})
		}
		if tg.Kind == TargetLSN && end > tg.LSN {
			points = append(points, exact{tg.LSN, func() bool { return decided }})
		}
		sort.Slice(points, func(i, j int) bool { return points[i].at < points[j].at })
		next, ended := 0, false
		replay := func(before walname.LSN) {
			for ; next < len(evs) && !ended; next++ {
				e := &evs[next]
				if before != 0 && e.LSN >= before {
					return
				}
				if handle(e.LSN, e.EndLSN, e.PrevEnd, nil, *e, true) {
					// Where WalkChain stops when its callback refuses.
					endLSN, endErr, ended = e.EndLSN, nil, true
				}
			}
		}
		var readTo walname.LSN // end of the last record the reader replayed
		for _, p := range points {
			if ended || done || p.enough() {
				continue
			}
			from, prevEnd, ok := ev.restartBefore(ctx, b, steps, evs, p.at)
			if !ok {
				return ev.walkWith(ctx, b, h, fp, false)
			}
			if from < readTo {
				from, prevEnd = readTo, readTo
			}
			replay(from)
			if ended || done {
				break
			}
			if p.enough() {
				continue // an event before the restart decided it
			}
			fin, last, err := read(from, prevEnd, p.enough)
			if err != nil {
				return nil, err
			}
			ended, readTo = fin, last
			for next < len(evs) && evs[next].LSN < readTo {
				next++
			}
		}
		if !ended && !done {
			endLSN, endErr = end, err
			replay(0)
		}
	}
	if done {
		return w, nil
	}
	if w.end == 0 {
		w.end = endLSN
	}
	if w.err == nil {
		w.err = endErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var ce *wal.ContentError
	if w.err != nil && !errors.As(w.err, &ce) && !errors.Is(w.err, wal.ErrSegmentMissing) {
		// Not a content problem: the archive could not be read.
		return nil, fmt.Errorf("read WAL of backup %s: %w", b.ID, w.err)
	}
	if ce != nil && errors.Is(w.err, wal.ErrSysID) {
		seg := ce.LSN.Segment(sz)
		tli := h.TLIAt(ce.LSN)
		if st, ok := src.steps[seg]; ok && st.Read != 0 {
			tli = st.Read
		}
		bsys := ev.backupSystem(b)
		if from, to, ok := ev.arch.Systems.Boundary(tli, seg); ok && (bsys == 0 || bsys == from) {
			w.systemEnd = fmt.Sprintf("the WAL from %s on belongs to database system %d, not this backup's system %d (as after a pg_upgrade into the same archive): this system's archived WAL ends at %s",
				walname.SegmentName(tli, seg, sz), to, from, w.end)
		}
	}
	w.damage = w.damage || (w.err != nil && !wal.IsEndOfWAL(w.err) && w.systemEnd == "") || w.wrongBranchFile != ""
	if errors.Is(w.err, wal.ErrSegmentMissing) {
		// The reader names the start of the segment it could not open.
		seg := w.end.Segment(sz)
		if ce != nil {
			seg = ce.LSN.Segment(sz)
		}
		if st, ok := src.steps[seg]; ok && st.Status == timeline.StepMissing {
			w.missingFile, w.missingSeg = walname.SegmentName(st.Want, seg, sz), seg
		} else if !ok {
			w.missingFile, w.missingSeg = walname.SegmentName(h.TLIAt(w.end), seg, sz), seg
		}
		if w.missingFile != "" {
			if n, err := walname.Parse(w.missingFile); err == nil {
				if o := ev.arch.Inv.AnySegment(n.TLI, seg); o != nil && o.Broken != "" {
					w.broken = fmt.Sprintf("%s cannot be restored: %s", o.Key, o.Broken)
				}
			}
		}
	}
	if !ckptSeen && b.CheckpointLSN != 0 {
		w.checkpointMissing = true
	}
	return w, nil
}

func evp(ok bool, e *wal.Event) *wal.Event {
	if ok {
		return e
	}
	return nil
}

// xactWhat reads like PostgreSQL's "recovery stopping" log line.
func xactWhat(e *wal.Event) string {
	kind := "commit"
	switch e.Kind {
	case wal.EventAbort:
		kind = "abort"
	case wal.EventCommitPrepared:
		kind = "commit of prepared transaction"
	case wal.EventAbortPrepared:
		kind = "abort of prepared transaction"
	}
	return fmt.Sprintf("%s of transaction %d at %s (%s)", kind, e.XID, e.LSN, e.Time.UTC().Format("2006-01-02 15:04:05.999999Z07:00"))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// plural renders "1 segment" / "3 segments".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// pgStopLine is what PostgreSQL logs when it stops (xlogrecovery.c,
// recoveryStopsBefore/After), without the trailing ", time …".
func pgStopLine(tg Target, before bool, start walname.LSN, e *wal.Event) string {
	dir := "after"
	if before {
		dir = "before"
	}
	switch tg.Kind {
	case TargetLSN:
		return fmt.Sprintf("recovery stopping %s WAL location (LSN) \"%s\"", dir, start)
	case TargetImmediate:
		return "recovery stopping after reaching consistency"
	case TargetName:
		if e != nil {
			return fmt.Sprintf("recovery stopping at restore point \"%s\"", e.Name)
		}
	case TargetTime, TargetXID:
		if e != nil {
			kind := "commit"
			if e.Kind == wal.EventAbort || e.Kind == wal.EventAbortPrepared {
				kind = "abort"
			}
			return fmt.Sprintf("recovery stopping %s %s of transaction %d", dir, kind, e.XID)
		}
	}
	return ""
}

// namesOnlyWalk judges from file names alone (FORMATS §5.7's cheap
// pre-check): contiguous presence of the planned segments from the
// backup's start proves the WAL is there; the backup's metadata gives the
// consistency point. Record-exact stops are not known: an LSN stop is
// reported at the target LSN and marked approximate.
func (ev *evaluator) namesOnlyWalk(b *backup.Backup, h *timeline.History, fp *timeline.Plan) *walkResult {
	sz := ev.arch.Inv.SegmentSize
	w := &walkResult{end: fp.End}
	if fp.Stop >= 0 {
		st := fp.Steps[fp.Stop]
		switch st.Status {
		case timeline.StepMissing:
			w.missingFile, w.missingSeg = walname.SegmentName(st.Want, st.Seg, sz), st.Seg
			w.err = fmt.Errorf("%s: %w", w.missingFile, wal.ErrSegmentMissing)
			if o := ev.arch.Inv.AnySegment(st.Want, st.Seg); o != nil && o.Broken != "" {
				w.broken = fmt.Sprintf("%s cannot be restored: %s", o.Key, o.Broken)
			}
		case timeline.StepWrongBranch:
			w.wrongBranchFile = walname.SegmentName(st.Want, st.Seg, sz)
			w.wrongBranchAt = st.ValidEnd
			w.end = st.ValidEnd
			w.wrongBranchWarn = fmt.Sprintf("segment %s is missing: recovery would read %s instead and replay timeline %d's records past the switch point %s, on the wrong branch",
				w.wrongBranchFile, walname.SegmentName(st.Read, st.Seg, sz), st.Read, st.ValidEnd)
			w.damage = true
		}
	}
	cons, ok := b.ConsistencyLSN()
	if !ok {
		return w // consistency unknown: unreachable, with the reason from answer
	}
	if w.end >= cons {
		w.consistent, w.consistencyLSN = true, cons
	}
	tg := ev.req.Target
	switch tg.Kind {
	case TargetImmediate:
		if w.consistent {
			w.stop = &Stop{LSN: cons, Reason: fmt.Sprintf("stops after reaching consistency at %s", cons), LogLine: "recovery stopping after reaching consistency"}
		}
	case TargetLSN:
		// Some record must start at or after the target inside WAL that
		// is present: only certain when a whole segment follows it.
		if w.end >= sz.StartLSN(tg.LSN.Segment(sz)+2) || (w.end > tg.LSN && !ev.req.Inclusive) {
			w.stop = &Stop{LSN: tg.LSN, Approximate: true,
				Reason: fmt.Sprintf("stops %s the first record at or after %s (names only: the exact record was not decoded)", map[bool]string{true: "after", false: "before"}[ev.req.Inclusive], tg.LSN)}
			if tg.LSN < cons {
				w.stopErr = fmt.Sprintf("the target %s lies before the backup's consistency point %s (PostgreSQL: FATAL: requested recovery stop point is before consistent recovery point)", tg.LSN, cons)
			}
		}
	}
	return w
}

// summarySteps returns the plan's steps when the summary path can answer
// exactly like the reader: not for wrong-branch copies. WAL carried in a
// backup's pg_wal is summarised too, but not cached (its files have no
// identity in the archive to key it by).
func (ev *evaluator) summarySteps(b *backup.Backup, fp *timeline.Plan, use bool) ([]timeline.Step, bool) {
	if !use || ev.cache == nil {
		return nil, false
	}
	inv := ev.arch.Inv
	sz := inv.SegmentSize
	var steps []timeline.Step
	for _, st := range fp.Steps {
		if st.Status == timeline.StepWrongBranch {
			return nil, false
		}
		if st.Read == 0 {
			break
		}
		if inv.Segment(st.Read, st.Seg) == nil && !carries(b, walname.SegmentName(st.Read, st.Seg, sz)) {
			return nil, false
		}
		steps = append(steps, st)
	}
	return steps, true
}

// chainEvents returns every event [wal.WalkChain] yields over the steps'
// summaries from the backup's start, and where and why the chain ends
// (always a *wal.ContentError). ok is false when the summaries cannot
// answer like the reader.
//
// The walk itself is cached too (the "walk memo"), keyed by every file's
// identity on the path, the start and the reader's options: a repeated
// check of an unchanged archive then reads one row instead of loading and
// chaining a summary per segment.
func (ev *evaluator) chainEvents(ctx context.Context, b *backup.Backup, h *timeline.History, steps []timeline.Step, opts wal.Options) (evs []wal.Event, end walname.LSN, err error, ok bool) {
	key, memo := ev.walkMemoKey(b, h, steps, opts)
	if memo && !ev.req.Reverify {
		if m, hit, gerr := ev.cache.Get(ctx, key); gerr == nil && hit && m.Stop != nil {
			return m.Events, m.End, m.Stop, true
		}
	}
	sums, ok := ev.loadSummaries(ctx, b, steps)
	if !ok {
		return nil, 0, nil, false
	}
	end, err = wal.WalkChain(sums, b.StartLSN, opts, func(e *wal.Event) bool {
		evs = append(evs, *e)
		return true
	})
	if errors.Is(err, wal.ErrSummaryIncomplete) {
		return nil, 0, nil, false
	}
	var ce *wal.ContentError
	if memo && errors.As(err, &ce) {
		_ = ev.cache.Put(ctx, key, &wal.SegmentSummary{File: "walk", Events: evs, End: end, Stop: ce})
	}
	return evs, end, err, true
}

// walkMemoKey names a backup's walk memo: one row per backup start and
// target history (rewritten when anything changes), valid only for the
// exact files, start and options hashed into its ETag. ok is false when a
// file on the path is not in the archive (carried in the backup).
func (ev *evaluator) walkMemoKey(b *backup.Backup, h *timeline.History, steps []timeline.Step, opts wal.Options) (walcache.Key, bool) {
	inv := ev.arch.Inv
	buf := make([]byte, 0, 64+80*len(steps))
	buf = fmt.Appendf(buf, "walk v%d seg %d start %d sys %d tlis", wal.SummaryVersion, opts.SegmentSize, b.StartLSN, opts.SystemID)
	for _, e := range h.Entries() {
		buf = strconv.AppendUint(append(buf, ' '), uint64(e.TLI), 10)
	}
	for _, st := range steps {
		o := inv.Segment(st.Read, st.Seg)
		if o == nil {
			return walcache.Key{}, false
		}
		buf = append(append(buf, '\n'), o.Key...)
		buf = strconv.AppendInt(append(buf, ' '), o.Size, 10)
		buf = strconv.AppendInt(append(buf, ' '), o.ModTime.UnixNano(), 10)
		buf = append(append(buf, ' '), o.Name.Checksum...)
	}
	sum := sha256.Sum256(buf)
	return walcache.Key{Location: "walk:" + ev.location(), Object: fmt.Sprintf("%s/%d/%d", b.StartLSN, b.StartTLI, h.TLI()),
		Size: int64(len(steps)), ModTime: time.Unix(0, 0), ETag: hex.EncodeToString(sum[:])}, true
}

// restartBefore is where the reader takes over from the chain before an
// exact point (an LSN target, a minimum recovery point): the latest record
// start at or before the point that the chain knows, after the backup's
// checkpoint record: the end of an event, or the first record of the
// point's segment or of one of the two before it. Every record that
// starts before it ends at or before the point; prevEnd is the end of the
// record before it when known, else the start itself (the record there
// cannot decide). ok is false when there is none: read the WAL from the
// backup's start then.
func (ev *evaluator) restartBefore(ctx context.Context, b *backup.Backup, steps []timeline.Step, evs []wal.Event, point walname.LSN) (start, prevEnd walname.LSN, ok bool) {
	floor := max(b.CheckpointLSN, b.StartLSN)
	for i := range evs {
		if e := evs[i].EndLSN; e > point {
			break
		} else if e > floor && e > start {
			start, prevEnd = e, e
		}
	}
	sz := ev.arch.Inv.SegmentSize
	seg := point.Segment(sz)
	for i := len(steps) - 1; i >= 0; i-- {
		st := steps[i]
		if st.Seg > seg {
			continue
		}
		if st.Seg+2 < seg || sz.StartLSN(st.Seg+1) <= start {
			break
		}
		sum, _, err := ev.segmentSummary(ctx, b, st.Read, st.Seg)
		if err != nil || sum == nil {
			return 0, 0, false
		}
		if r := sum.FirstRecord; r != 0 && r < point && r > floor {
			if r > start {
				start, prevEnd = r, r
			}
			break
		}
	}
	return start, prevEnd, start != 0
}

// loadSummaries returns the cached (or freshly scanned and cached)
// summary of every step's segment.
func (ev *evaluator) loadSummaries(ctx context.Context, b *backup.Backup, steps []timeline.Step) ([]*wal.SegmentSummary, bool) {
	// Cold segments are scanned in parallel, on every core; each summary
	// depends only on its own file.
	sums := make([]*wal.SegmentSummary, len(steps))
	failed := make([]bool, len(steps))
	var fresh []walcache.Entry
	ev.putMu.Lock()
	ev.batch = &fresh
	ev.putMu.Unlock()
	defer func() {
		ev.putMu.Lock()
		ev.batch = nil
		ev.putMu.Unlock()
		_ = ev.cache.PutAll(ctx, fresh) // a cache that cannot store only costs speed
	}()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				sum, _, err := ev.segmentSummary(ctx, b, steps[i].Read, steps[i].Seg)
				sums[i], failed[i] = sum, err != nil || sum == nil
			}
		}()
	}
	for i := range steps {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for _, f := range failed {
		if f {
			return nil, false
		}
	}
	return sums, true
}
