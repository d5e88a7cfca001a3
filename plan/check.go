package plan

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/audit/walcache"
	"github.com/walaudit/walaudit/walname"
)

// Request is what a check asks.
type Request struct {
	Archive  string
	Backups  string
	BackupID string
	Target   Target
	// Inclusive is recovery_target_inclusive.
	Inclusive bool
	Timeline  TimelineSetting
	// SegmentSize overrides what the archive says (0: detect).
	SegmentSize walname.SegmentSize
	// Cache holds per-segment WAL summaries between runs (nil: decode every
	// time); Reverify re-reads every segment and refreshes the cache (bit
	// rot changes neither size nor time).
	Cache    *walcache.Cache
	Reverify bool
	// NamesOnly judges from file names and backup metadata without
	// decoding WAL: fast on huge archives; time, xid and name targets are
	// then undecided and LSN stops approximate.
	NamesOnly bool
}

// Check loads the archive and answers the request.
func Check(ctx context.Context, req Request) (*Result, error) {
	st, err := store.Open(ctx, req.Archive)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	arch, err := audit.Load(ctx, st, audit.LoadOptions{ScanOptions: audit.ScanOptions{SegmentSize: req.SegmentSize}, BackupsDir: req.Backups})
	if err != nil {
		return nil, err
	}
	return Evaluate(ctx, arch, req)
}

// Evaluate answers the request on a loaded archive: every backup's answer,
// the chosen (newest reaching) backup, coverage and findings.
func Evaluate(ctx context.Context, arch *audit.Archive, req Request) (*Result, error) {
	inv := arch.Inv
	res := &Result{
		Archive:     inv.Store.String(),
		SegmentSize: uint32(inv.SegmentSize),
		Target: TargetJSON{Type: string(req.Target.Kind), Value: req.Target.Value(), Inclusive: req.Inclusive,
			Timeline: req.Timeline.String()},
		Backups:  []BackupAnswer{},
		Missing:  []string{},
		Findings: append([]finding.Finding(nil), arch.Findings...),
	}
	if inv.SystemID != 0 {
		res.SystemID = strconv.FormatUint(inv.SystemID, 10)
	}
	if inv.Encrypted != "" {
		// Encrypted WAL cannot be read: neither reachable nor unreachable is proven.
		res.Verdict, res.Reason = Undecided, inv.Encrypted
		finding.Sort(res.Findings)
		return res, nil
	}
	res.Timelines = summarizeTimelines(arch)
	res.Findings = append(res.Findings, gapFindings(arch)...)

	var backups []*backup.Backup
	for _, b := range arch.Backups {
		if req.BackupID != "" && b.ID != req.BackupID {
			continue
		}
		backups = append(backups, b)
	}
	if req.BackupID != "" && len(backups) == 0 {
		var ids []string
		for _, b := range arch.Backups {
			ids = append(ids, b.ID)
		}
		return nil, fmt.Errorf("no backup with id %q (known: %v)", req.BackupID, ids)
	}
	// Newest first: the newest backup that reaches the target is chosen,
	// because it replays the least WAL.
	sort.SliceStable(backups, func(i, j int) bool { return backups[i].StartLSN > backups[j].StartLSN })

	ev := &evaluator{arch: arch, req: req, cache: req.Cache}
	for _, b := range backups {
		ans, err := ev.answer(ctx, b)
		if err != nil {
			return nil, err
		}
		if id := ev.backupSystem(b); id != 0 {
			ans.SystemID = strconv.FormatUint(id, 10)
		}
		res.Backups = append(res.Backups, *ans)
	}
	if arch.Systems.Multiple() {
		sz := inv.SegmentSize
		for _, r := range arch.Systems.Ranges {
			id := strconv.FormatUint(r.SystemID, 10)
			sj := SystemJSON{SystemID: id, Timeline: r.TLI, FirstSegment: walname.SegmentName(r.TLI, r.First, sz),
				LastSegment: walname.SegmentName(r.TLI, r.Last, sz), Segments: r.Segments, Backups: []string{}}
			for _, a := range res.Backups {
				if a.SystemID == id && !contains(sj.Backups, a.ID) {
					sj.Backups = append(sj.Backups, a.ID)
				}
			}
			res.Systems = append(res.Systems, sj)
		}
	}
	var chosen *BackupAnswer
	undecided := false
	for i := range res.Backups {
		a := &res.Backups[i]
		if a.Verdict == Reachable && chosen == nil {
			chosen = a
		}
		if a.Verdict == Undecided {
			undecided = true
		}
	}
	switch {
	case chosen != nil:
		res.Verdict = Reachable
		ref := chosen.BackupRef
		res.Backup = &ref
		res.TimelinePath = chosen.TimelinePath
		res.Stop = chosen.Stop
		res.SegmentsNeeded = chosen.SegmentsNeeded
		res.Missing = chosen.Missing
		res.Target.ResolvedTimeline = chosen.ResolvedTimeline
		res.Reason = chosen.Reason
		if chosen.SystemID != "" {
			res.SystemID = chosen.SystemID
		}
	case len(res.Backups) == 0:
		res.Verdict = Unreachable
		res.Reason = "no base backup is known: the archive holds no .backup file"
		hint := "pass --backups DIR with your pg_basebackup outputs (backups taken from a standby leave no .backup file)"
		if req.Backups != "" {
			res.Reason = fmt.Sprintf("no base backup found in the archive or in %s", req.Backups)
			hint = "take a base backup: nothing can be restored without one"
		}
		res.Findings = append(res.Findings, finding.Finding{Severity: finding.Error, Code: "NO_BACKUP", Message: res.Reason, Hint: hint})
	case undecided:
		res.Verdict = Undecided
		for _, a := range res.Backups {
			if a.Verdict == Undecided {
				res.Reason = fmt.Sprintf("backup %s: %s", a.ID, a.Reason)
				break
			}
		}
	default:
		res.Verdict = Unreachable
		a := res.Backups[0]
		res.Reason = fmt.Sprintf("no backup reaches the target; newest backup %s: %s", a.ID, a.Reason)
		res.TimelinePath = a.TimelinePath
		res.Missing = a.Missing
		res.SegmentsNeeded = a.SegmentsNeeded
		res.Target.ResolvedTimeline = a.ResolvedTimeline
		for _, a := range res.Backups {
			if len(a.Missing) > 0 {
				res.Missing = a.Missing
				break
			}
		}
	}
	res.Findings = append(res.Findings, ev.findings...)
	res.Findings = append(res.Findings, archiveNotes(arch, backups, req)...)
	res.Findings = dedupFindings(res.Findings)
	finding.Sort(res.Findings)
	return res, nil
}

func dedupFindings(fs []finding.Finding) []finding.Finding {
	seen := map[string]bool{}
	out := fs[:0]
	for _, f := range fs {
		k := f.String()
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	return out
}

func backupRef(b *backup.Backup) BackupRef {
	r := BackupRef{ID: b.ID, Label: b.Label, StartLSN: b.StartLSN, StopLSN: b.StopLSN, Timeline: b.StartTLI,
		Source: b.Source, DataSeen: b.Source != backup.SourceArchiveHistory}
	if t, ok := timestampOf(b.StartTime); ok {
		r.StartTime = NewTimestamp(t)
	}
	if t, ok := timestampOf(b.StopTime); ok {
		r.StopTime = NewTimestamp(t)
	}
	return r
}

func timestampOf(ts backup.Timestamp) (time.Time, bool) {
	if ts.IsZero() || !ts.Resolved {
		return time.Time{}, false
	}
	return ts.Time.UTC(), true
}

// summarizeTimelines lists every timeline's coverage, parent and gaps.
func summarizeTimelines(arch *audit.Archive) []TimelineSummary {
	inv := arch.Inv
	sz := inv.SegmentSize
	var out []TimelineSummary
	for _, tli := range inv.Timelines() {
		ts := TimelineSummary{Timeline: tli, HasHistory: arch.Timelines.HasHistoryFile(tli), Ranges: []SegmentRange{}, Gaps: []SegmentRange{}}
		if p, at, ok := arch.Timelines.Parent(tli); ok {
			ts.Parent = p
			at := at
			ts.SwitchLSN = &at
		}
		segs := inv.SegNos(tli)
		ts.Segments = len(segs)
		for _, r := range runs(segs) {
			ts.Ranges = append(ts.Ranges, segRange(tli, r[0], r[1], sz))
		}
		for i := 1; i < len(ts.Ranges); i++ {
			prevLast := ts.Ranges[i-1].EndLSN.Segment(sz) - 1
			nextFirst := ts.Ranges[i].StartLSN.Segment(sz)
			ts.Gaps = append(ts.Gaps, segRange(tli, prevLast+1, nextFirst-1, sz))
		}
		for seg := range inv.Partials[tli] {
			ts.Partials = append(ts.Partials, walname.SegmentName(tli, seg, sz)+".partial")
		}
		sort.Strings(ts.Partials)
		if len(segs) > 0 {
			ts.NewestFile = walname.SegmentName(tli, segs[len(segs)-1], sz)
		}
		out = append(out, ts)
	}
	return out
}

func runs(segs []walname.SegNo) [][2]walname.SegNo {
	var out [][2]walname.SegNo
	for i, s := range segs {
		if i == 0 || s != segs[i-1]+1 {
			out = append(out, [2]walname.SegNo{s, s})
			continue
		}
		out[len(out)-1][1] = s
	}
	return out
}

func segRange(tli walname.TimelineID, first, last walname.SegNo, sz walname.SegmentSize) SegmentRange {
	return SegmentRange{First: walname.SegmentName(tli, first, sz), Last: walname.SegmentName(tli, last, sz),
		StartLSN: sz.StartLSN(first), EndLSN: sz.StartLSN(last + 1), Count: int(last-first) + 1}
}

// gapFindings reports holes inside each timeline's coverage as warnings;
// the evaluator raises the ones that break an asked target to errors.
func gapFindings(arch *audit.Archive) []finding.Finding {
	var out []finding.Finding
	sz := arch.Inv.SegmentSize
	for _, tli := range arch.Inv.Timelines() {
		segs := arch.Inv.SegNos(tli)
		rs := runs(segs)
		for i := 1; i < len(rs); i++ {
			first, last := rs[i-1][1]+1, rs[i][0]-1
			msg := fmt.Sprintf("timeline %d has no segment %s", tli, walname.SegmentName(tli, first, sz))
			if last > first {
				msg = fmt.Sprintf("timeline %d lacks %d segments %s..%s", tli, last-first+1, walname.SegmentName(tli, first, sz), walname.SegmentName(tli, last, sz))
			}
			if from, to, ok := arch.Systems.Boundary(tli, rs[i][0]); ok {
				// The old system's last segment (its shutdown checkpoint)
				// is never archived before a pg_upgrade: no backup of
				// either system replays across here.
				out = append(out, finding.Finding{Severity: finding.Info, Code: "WAL_GAP", File: walname.SegmentName(tli, first, sz),
					LSN: sz.StartLSN(first), Timeline: tli, Message: msg + fmt.Sprintf(", where database system %d's WAL ends and system %d's begins", from, to),
					Hint: "expected after a pg_upgrade: the old system's last segment holds its shutdown checkpoint and is not archived"})
				continue
			}
			out = append(out, finding.Finding{Severity: finding.Warning, Code: "WAL_GAP", File: walname.SegmentName(tli, first, sz),
				LSN: sz.StartLSN(first), Timeline: tli, Message: msg,
				Hint: "recovery through this range stops here; restore the missing files from another copy if any backup needs them"})
		}
	}
	return out
}

// archiveNotes reports what is worth knowing but breaks nothing: .partial
// files, segments older than every backup, backups whose data was not seen.
func archiveNotes(arch *audit.Archive, backups []*backup.Backup, req Request) []finding.Finding {
	var out []finding.Finding
	inv := arch.Inv
	sz := inv.SegmentSize
	for _, tli := range inv.Timelines() {
		for seg, objs := range inv.Partials[tli] {
			name := walname.SegmentName(tli, seg, sz)
			msg := fmt.Sprintf("%s holds the end of timeline %d's WAL (written at promotion); recovery never requests .partial files", objs[0].Key, tli)
			hint := ""
			if inv.Segment(tli, seg) == nil {
				hint = fmt.Sprintf("if a recovery along timeline %d needs this WAL, copy it to %s by hand", tli, name)
			}
			out = append(out, finding.Finding{Severity: finding.Info, Code: "PARTIAL_FILE", File: objs[0].Key, Timeline: tli, LSN: sz.StartLSN(seg), Message: msg, Hint: hint})
		}
	}
	if len(backups) > 0 {
		oldest := backups[0].StartLSN
		for _, b := range backups {
			if b.StartLSN < oldest {
				oldest = b.StartLSN
			}
		}
		first := oldest.Segment(sz)
		for _, tli := range inv.Timelines() {
			n := 0
			var lo, hi walname.SegNo
			for _, s := range inv.SegNos(tli) {
				if s >= first {
					break
				}
				if n == 0 {
					lo = s
				}
				hi = s
				n++
			}
			if n > 0 && req.BackupID == "" {
				out = append(out, finding.Finding{Severity: finding.Info, Code: "ORPHAN_SEGMENTS", File: walname.SegmentName(tli, lo, sz), Timeline: tli, LSN: sz.StartLSN(lo),
					Message: fmt.Sprintf("%s on timeline %d (%s..%s) older than every known backup: no recovery from these backups needs them", plural(n, "segment"), tli, walname.SegmentName(tli, lo, sz), walname.SegmentName(tli, hi, sz)),
					Hint:    "retention may delete them unless an older backup that walaudit does not know of still needs them"})
			}
		}
	}
	for _, b := range backups {
		if b.Source == backup.SourceArchiveHistory {
			hint := "pass --backups DIR to verify the backup's own files"
			if req.Backups != "" {
				hint = fmt.Sprintf("no backup in %s matches it: was it deleted?", req.Backups)
			}
			out = append(out, finding.Finding{Severity: finding.Info, Code: "BACKUP_DATA_NOT_SEEN", File: b.ID, LSN: b.StartLSN, Timeline: b.StartTLI,
				Message: fmt.Sprintf("backup %s is known only from its .backup file in the archive; its data was not seen", b.ID), Hint: hint})
		}
	}
	return out
}
