package policy

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/audit/walcache"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/walname"
)

// Finding codes of the policy layer (documented in README.md).
const (
	CodeUncovered         = "POLICY_UNCOVERED"
	CodeTargetUnreachable = "POLICY_TARGET_UNREACHABLE"
	CodeMinBackups        = "POLICY_MIN_BACKUPS"
	CodeGapAcknowledged   = "WAL_GAP_ACKNOWLEDGED"
)

// Parts of a policy, as violations name them.
const (
	PartKeepWindow = "keep-window"
	PartKeepSince  = "keep-since"
	PartKeepTarget = "keep-target"
	PartMinBackups = "min-backups"
)

// Options tune [Evaluate].
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Timeline is recovery_target_timeline for windows and targets
	// (default latest).
	Timeline plan.TimelineSetting
	// Latest, when set, is plan.Evaluate's answer for target latest with
	// Timeline on this very archive: it is reused instead of recomputed.
	Latest *plan.Result
	// End, when set, is the right edge of the required interval instead
	// of this archive's newest commit: a simulated deletion must not
	// shrink what it has to keep by deleting the newest WAL.
	End *time.Time
	// Excuses, when set, are the acknowledged-gap excuses to apply instead
	// of those computed on this archive: a simulated deletion must not
	// widen them by deleting a later backup.
	Excuses []Excuse
	// PerTimeline also computes every timeline's recoverable range
	// (metrics); it costs one more evaluation per timeline.
	PerTimeline bool
	// Cache and Reverify are as in plan.Request: a metrics server and cron
	// checks share one summary cache, so repeated evaluations of an
	// unchanged archive decode nothing again.
	Cache    *walcache.Cache
	Reverify bool
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Interval is a half-open interval of time [From, To).
type Interval struct {
	From plan.Timestamp `json:"from"`
	To   plan.Timestamp `json:"to"`
}

func interval(a, b time.Time) Interval {
	return Interval{From: plan.Timestamp{Time: a.UTC()}, To: plan.Timestamp{Time: b.UTC()}}
}

func (iv Interval) contains(o Interval) bool {
	return !o.From.Before(iv.From.Time) && !o.To.After(iv.To.Time)
}

// Excuse is the stretch of time an acknowledged gap makes unrecoverable:
// from the last commit before the gap to the first moment a backup taken
// after the gap reaches.
type Excuse struct {
	Interval
	Gap AckGap `json:"gap"`
}

// Uncovered is a stretch of the required interval that no backup reaches.
type Uncovered struct {
	Interval
	// Parts are the policy parts that require it.
	Parts []string `json:"parts"`
	// Cause says why no backup reaches it.
	Cause string `json:"cause"`
	// Acknowledged is the acknowledged gap that excuses it, if any.
	Acknowledged *AckGap `json:"acknowledged,omitempty"`
	// File is the missing file that ends the previous window, if any.
	File string `json:"file,omitempty"`
}

// Violation is one part of the policy that does not hold.
type Violation struct {
	Part string `json:"part"`
	// What is broken, e.g. "recovery to any time between … UTC".
	What string `json:"what"`
	// Cause says why, e.g. "no backup covers it (…)".
	Cause string `json:"cause"`
	// Uncovered is set for window violations.
	Uncovered *Interval `json:"uncovered,omitempty"`
	// Target is set for target violations.
	Target string `json:"target,omitempty"`
	// NoCover marks a window violation whose cause is that no backup
	// covers the stretch ("no other backup covers it" after a deletion).
	NoCover bool `json:"-"`
}

// String renders the violation for people.
func (v Violation) String() string { return v.What + " is not possible: " + v.Cause }

// BackupStatus is one backup's recoverable window on the policy's
// timeline path.
type BackupStatus struct {
	plan.BackupRef
	// Restorable: the backup reaches its consistency point.
	Restorable bool         `json:"restorable"`
	Window     *plan.Window `json:"window,omitempty"`
	// Latest is the backup's verdict for target latest, with its reason.
	Latest plan.Verdict `json:"latest"`
	Reason string       `json:"reason"`
	// EndFile is the missing segment that ends the window, if that is why.
	EndFile string `json:"end_file,omitempty"`
}

// TargetStatus is a keep-target's answer.
type TargetStatus struct {
	Target  string       `json:"target"`
	Verdict plan.Verdict `json:"verdict"`
	Backup  string       `json:"backup,omitempty"`
	Reason  string       `json:"reason"`
}

// TimelineRange is what the backups reach along one target timeline.
type TimelineRange struct {
	Timeline walname.TimelineID `json:"timeline"`
	From     *plan.Timestamp    `json:"from,omitempty"`
	Until    *plan.Timestamp    `json:"until,omitempty"`
	FromLSN  walname.LSN        `json:"from_lsn,omitempty"`
	UntilLSN walname.LSN        `json:"until_lsn,omitempty"`
	Backups  int                `json:"backups"`
}

// Report is the answer of [Evaluate].
type Report struct {
	// Holds: every part of the policy holds (acknowledged gaps excused).
	Holds bool `json:"holds"`
	// Undecided: some part could not be decided (Reason says why).
	Undecided bool           `json:"undecided,omitempty"`
	Reason    string         `json:"reason"`
	Now       plan.Timestamp `json:"now"`
	Policy    *Policy        `json:"policy"`
	// NewestCommit is the newest archived commit on the policy's timeline
	// path: the right edge of every window.
	NewestCommit *plan.Timestamp `json:"newest_commit,omitempty"`
	// Required is the interval every moment of which must be recoverable.
	Required *Interval `json:"required,omitempty"`
	// Covered is the union of the backups' recoverable windows.
	Covered   []Interval     `json:"covered"`
	Uncovered []Uncovered    `json:"uncovered"`
	Excuses   []Excuse       `json:"excuses,omitempty"`
	Targets   []TargetStatus `json:"targets"`
	Backups   []BackupStatus `json:"backups"`
	// RestorableBackups counts the backups that reach consistency.
	RestorableBackups int               `json:"restorable_backups"`
	Violations        []Violation       `json:"violations"`
	Timelines         []TimelineRange   `json:"timelines,omitempty"`
	Findings          []finding.Finding `json:"findings"`
	// Latest is the evaluation of target latest the windows come from.
	Latest *plan.Result `json:"-"`
	// usedGaps are the acknowledged gaps that excused required moments.
	usedGaps map[string]bool
}

type window struct {
	from, to time.Time
	b        *BackupStatus
}

// Evaluate decides the policy on an archive, loaded or simulated.
func Evaluate(ctx context.Context, arch *audit.Archive, pol *Policy, opts Options) (*Report, error) {
	if pol == nil {
		pol = &Policy{}
	}
	if opts.Timeline.Kind == "" {
		opts.Timeline = plan.TimelineSetting{Kind: "latest"}
	}
	now := opts.now().UTC()
	rep := &Report{Now: plan.Timestamp{Time: now}, Policy: pol, Covered: []Interval{}, Uncovered: []Uncovered{},
		Targets: []TargetStatus{}, Backups: []BackupStatus{}, Violations: []Violation{}, Findings: []finding.Finding{},
		usedGaps: map[string]bool{}}
	latestReq := plan.Request{Target: plan.Target{Kind: plan.TargetLatest}, Inclusive: true, Timeline: opts.Timeline, Cache: opts.Cache, Reverify: opts.Reverify}
	latest := opts.Latest
	if latest == nil {
		var err error
		if latest, err = plan.Evaluate(ctx, arch, latestReq); err != nil {
			return nil, err
		}
	}
	rep.Latest = latest
	sz := arch.Inv.SegmentSize

	var wins []window
	for i := range latest.Backups {
		a := &latest.Backups[i]
		bs := BackupStatus{BackupRef: a.BackupRef, Restorable: a.Window != nil, Window: a.Window, Latest: a.Verdict, Reason: a.Reason}
		if a.Verdict != plan.Reachable && len(a.Missing) > 0 {
			if n, err := walname.Parse(a.Missing[0]); err == nil {
				if seg, err := n.SegNo(sz); err == nil && seg <= a.EndOfWAL.Segment(sz)+1 {
					bs.EndFile = a.Missing[0]
				}
			}
		}
		rep.Backups = append(rep.Backups, bs)
		if bs.Restorable {
			rep.RestorableBackups++
		}
	}
	for i := range rep.Backups {
		bs := &rep.Backups[i]
		w := bs.Window
		if w == nil || w.FromTime == nil || w.ToTime == nil || !w.FromTime.Before(w.ToTime.Time) {
			continue
		}
		wins = append(wins, window{from: w.FromTime.Time, to: w.ToTime.Time, b: bs})
	}
	sort.SliceStable(wins, func(i, j int) bool { return wins[i].from.Before(wins[j].from) })
	// Restorable backups whose window has no start time: their label's
	// START TIME is in a zone walaudit cannot resolve, and no commit came
	// before their consistency point.
	var noTime []string
	for _, b := range rep.Backups {
		if b.Restorable && b.Window.FromTime == nil && b.Window.ToTime != nil {
			noTime = append(noTime, b.ID)
		}
	}
	for _, iv := range union(wins) {
		rep.Covered = append(rep.Covered, iv)
	}

	// The right edge: the newest archived commit.
	var end time.Time
	if opts.End != nil {
		end = *opts.End
	} else {
		var err error
		if end, err = NewestCommit(ctx, arch, latest); err != nil {
			return nil, err
		}
	}
	if !end.IsZero() {
		rep.NewestCommit = &plan.Timestamp{Time: end.UTC()}
	}

	// Acknowledged gaps: what they excuse.
	if opts.Excuses != nil {
		rep.Excuses = opts.Excuses
	} else {
		rep.Excuses = excuses(pol, rep.Backups, sz)
	}

	// Windows of time.
	type need struct {
		part string
		from time.Time
	}
	var needs []need
	if pol.KeepWindow > 0 {
		needs = append(needs, need{PartKeepWindow, now.Add(-pol.KeepWindow)})
	}
	if !pol.KeepSince.IsZero() {
		needs = append(needs, need{PartKeepSince, pol.KeepSince.UTC()})
	}
	if len(needs) > 0 {
		switch {
		case end.IsZero() && rep.RestorableBackups == 0:
			cause := "no backup is restorable"
			if len(latest.Backups) == 0 {
				cause = "no base backup is known"
			}
			rep.Violations = append(rep.Violations, Violation{Part: needs[0].part, What: "recovery to any time in the " + describeNeed(pol),
				Cause: cause, NoCover: true})
		case end.IsZero():
			// No commit is archived at all: no time target exists, and
			// every moment's state is the one latest restores.
		default:
			from := needs[0].from
			for _, n := range needs[1:] {
				if n.from.Before(from) {
					from = n.from
				}
			}
			if from.Before(end) {
				req := interval(from, end)
				rep.Required = &req
				for _, gap := range subtract(req, rep.Covered) {
					u := Uncovered{Interval: gap}
					for _, n := range needs {
						if n.from.Before(gap.To.Time) {
							u.Parts = append(u.Parts, n.part)
						}
					}
					u.Cause, u.File = causeOf(gap, wins)
					for _, e := range rep.Excuses {
						if e.contains(gap) {
							g := e.Gap
							u.Acknowledged = &g
							rep.usedGaps[g.First+g.Last] = true
							break
						}
					}
					rep.Uncovered = append(rep.Uncovered, u)
					what := fmt.Sprintf("recovery to any time between %s and %s UTC", fmtTime(gap.From.Time), fmtTime(gap.To.Time))
					if u.Acknowledged != nil {
						file := u.File
						if file == "" {
							file = u.Acknowledged.First
						}
						rep.Findings = append(rep.Findings, finding.Finding{Severity: finding.Warning, Code: CodeGapAcknowledged, File: file,
							Message: fmt.Sprintf("%s is not possible: %s; accepted as %s", what, u.Cause, u.Acknowledged.Describe())})
						continue
					}
					iv := gap
					cause := u.Cause
					if len(noTime) > 0 {
						cause += fmt.Sprintf("; %s no known start time (START TIME in a zone walaudit cannot resolve), so %s window counts for nothing",
							strings.Join(noTime, ", ")+pluralWord(len(noTime), " has", " have"), pluralWord(len(noTime), "its", "their"))
					}
					rep.Violations = append(rep.Violations, Violation{Part: u.Parts[0], What: what, Cause: cause, Uncovered: &iv, NoCover: true})
				}
			}
		}
	}

	// Targets.
	for _, t := range pol.KeepTargets {
		res := latest
		if t.Kind != plan.TargetLatest {
			var err error
			if res, err = plan.Evaluate(ctx, arch, plan.Request{Target: t, Inclusive: true, Timeline: opts.Timeline, Cache: opts.Cache, Reverify: opts.Reverify}); err != nil {
				return nil, err
			}
		}
		ts := TargetStatus{Target: t.String(), Verdict: res.Verdict, Reason: res.Reason}
		if res.Backup != nil {
			ts.Backup = res.Backup.ID
		}
		rep.Targets = append(rep.Targets, ts)
		switch res.Verdict {
		case plan.Undecided:
			rep.Undecided = true
			if rep.Reason == "" {
				rep.Reason = fmt.Sprintf("keep-target %s: %s", t, res.Reason)
			}
		case plan.Unreachable:
			rep.Violations = append(rep.Violations, Violation{Part: PartKeepTarget, What: "recovery to target " + t.String(), Cause: res.Reason, Target: t.String()})
		}
	}

	// Backups.
	if pol.MinBackups > 0 && rep.RestorableBackups < pol.MinBackups {
		var ids []string
		for _, b := range rep.Backups {
			if b.Restorable {
				ids = append(ids, b.ID)
			}
		}
		cause := fmt.Sprintf("only %d %s restorable", rep.RestorableBackups, pluralWord(rep.RestorableBackups, "backup is", "backups are"))
		if len(ids) > 0 {
			cause += " (" + strings.Join(ids, ", ") + ")"
		}
		rep.Violations = append(rep.Violations, Violation{Part: PartMinBackups,
			What: fmt.Sprintf("keeping %d restorable %s", pol.MinBackups, pluralWord(pol.MinBackups, "backup", "backups")), Cause: cause})
	}

	for _, v := range rep.Violations {
		f := finding.Finding{Severity: finding.Error, Message: "policy " + v.Part + ": " + v.String()}
		switch v.Part {
		case PartKeepTarget:
			f.Code = CodeTargetUnreachable
			f.Hint = "restore the missing WAL or backup from another copy; retention must keep what this target needs"
		case PartMinBackups:
			f.Code = CodeMinBackups
			f.Hint = "take a base backup, or restore the WAL the older backups need"
		default:
			f.Code = CodeUncovered
			f.Hint = "restore the missing files from another copy, or acknowledge the gap (--acknowledged-gap) if it is known and accepted"
		}
		rep.Findings = append(rep.Findings, f)
	}
	rep.Holds = len(rep.Violations) == 0 && !rep.Undecided
	switch {
	case rep.Undecided:
	case rep.Holds:
		rep.Reason = "the policy holds: " + pol.Summary()
	default:
		rep.Reason = "policy " + rep.Violations[0].Part + ": " + rep.Violations[0].String()
	}

	if opts.PerTimeline {
		var err error
		if rep.Timelines, err = perTimeline(ctx, arch, latest, opts); err != nil {
			return nil, err
		}
	}
	finding.Sort(rep.Findings)
	return rep, nil
}

func describeNeed(p *Policy) string {
	var s []string
	if p.KeepWindow > 0 {
		s = append(s, "last "+FormatDuration(p.KeepWindow))
	}
	if !p.KeepSince.IsZero() {
		s = append(s, "time since "+fmtTime(p.KeepSince))
	}
	return strings.Join(s, " and ")
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// union merges the windows into disjoint intervals.
func union(wins []window) []Interval {
	var out []Interval
	for _, w := range wins {
		if n := len(out); n > 0 && !w.from.After(out[n-1].To.Time) {
			if w.to.After(out[n-1].To.Time) {
				out[n-1].To = plan.Timestamp{Time: w.to.UTC()}
			}
			continue
		}
		out = append(out, interval(w.from, w.to))
	}
	return out
}

// subtract returns the parts of req that no interval covers.
func subtract(req Interval, covered []Interval) []Interval {
	var out []Interval
	cur := req.From.Time
	for _, c := range covered {
		if !c.To.After(cur) {
			continue
		}
		if !c.From.Before(req.To.Time) {
			break
		}
		if c.From.After(cur) {
			out = append(out, interval(cur, c.From.Time))
		}
		cur = c.To.Time
		if !cur.Before(req.To.Time) {
			return out
		}
	}
	if cur.Before(req.To.Time) {
		out = append(out, interval(cur, req.To.Time))
	}
	return out
}

// causeOf explains why no window covers the gap: the window that ends at
// its start and the one that begins at its end.
func causeOf(gap Interval, wins []window) (string, string) {
	var prev, next *window
	for i := range wins {
		w := &wins[i]
		if !w.to.After(gap.From.Time) && (prev == nil || !w.to.Before(prev.to)) {
			prev = w
		}
		if !w.from.Before(gap.To.Time) && (next == nil || w.from.Before(next.from)) {
			next = w
		}
	}
	var why []string
	file := ""
	if prev != nil {
		s := fmt.Sprintf("backup %s's recovery ends at %s", prev.b.ID, prev.b.Window.ToLSN)
		if prev.b.EndFile != "" {
			s += fmt.Sprintf(" (segment %s is missing)", prev.b.EndFile)
			file = prev.b.EndFile
		} else if prev.b.Latest != plan.Reachable && prev.b.Reason != "" {
			s += " (" + strings.TrimPrefix(prev.b.Reason, "latest is not reachable: ") + ")"
		}
		why = append(why, s)
	}
	switch {
	case next != nil:
		why = append(why, fmt.Sprintf("the next backup, %s, is recoverable only from %s", next.b.ID, fmtTime(next.from)))
	case prev != nil:
		why = append(why, "no later backup is recoverable")
	}
	if len(wins) == 0 {
		return "no backup covers it (no backup has a recoverable window)", ""
	}
	return "no backup covers it (" + strings.Join(why, "; ") + ")", file
}

// excuses computes what each acknowledged gap excuses: from where the
// backups it breaks stop recovering (the end of their window, or its
// start when no commit lies between their consistency point and the gap)
// to the start of the first window of a backup taken after the gap. A gap
// with no backup after it excuses nothing: a new base backup is the remedy.
func excuses(pol *Policy, backups []BackupStatus, sz walname.SegmentSize) []Excuse {
	var out []Excuse
	for _, g := range pol.Acknowledged {
		n, err := walname.Parse(g.Last)
		if err != nil {
			continue
		}
		lastSeg, err := n.SegNo(sz)
		if err != nil {
			continue
		}
		var start time.Time
		for _, b := range backups {
			if !b.Restorable || b.EndFile == "" || !g.Contains(b.EndFile) || b.Window == nil {
				continue
			}
			t := b.Window.ToTime
			if t == nil {
				t = b.Window.FromTime
			}
			if t != nil && (start.IsZero() || t.Before(start)) {
				start = t.Time
			}
		}
		if start.IsZero() {
			continue
		}
		// The first backup taken after the gap, whether or not its own
		// window is intact: a later gap must not widen the excuse.
		var end time.Time
		var first *BackupStatus
		for i := range backups {
			b := &backups[i]
			if b.StartLSN.Segment(sz) > lastSeg && (first == nil || b.StartLSN < first.StartLSN) {
				first = b
			}
		}
		if first != nil {
			switch {
			case first.Window != nil && first.Window.FromTime != nil:
				end = first.Window.FromTime.Time
			case first.StartTime != nil:
				end = first.StartTime.Time
			}
		}
		if end.IsZero() || !end.After(start) {
			continue
		}
		out = append(out, Excuse{Interval: interval(start, end), Gap: g})
	}
	return out
}

// Acknowledge rewrites gap findings (WAL_GAP, WAL_MISSING) whose files lie
// inside an acknowledged gap to WAL_GAP_ACKNOWLEDGED: a warning when the
// gap excused moments the policy requires, else info.
func (r *Report) Acknowledge(fs []finding.Finding, inv *audit.Inventory) []finding.Finding {
	if r == nil || r.Policy == nil || len(r.Policy.Acknowledged) == 0 {
		return fs
	}
	out := make([]finding.Finding, 0, len(fs))
	for _, f := range fs {
		var names []string
		switch f.Code {
		case "WAL_GAP":
			names = gapFiles(inv, f.File)
		case "WAL_MISSING":
			names = []string{f.File}
		}
		if g, ok := r.Policy.AckFor(names...); ok && len(names) > 0 {
			sev := finding.Info
			if r.usedGaps[g.First+g.Last] {
				sev = finding.Warning
			}
			f = finding.Finding{Severity: sev, Code: CodeGapAcknowledged, File: f.File, LSN: f.LSN, Timeline: f.Timeline,
				Message: f.Message + "; accepted as " + g.Describe()}
		}
		out = append(out, f)
	}
	// One finding per acknowledged gap is enough.
	dedup := out[:0]
	seen := map[string]bool{}
	for _, f := range out {
		k := f.Code + "|" + f.File + "|" + f.Message
		if f.Code == CodeGapAcknowledged && seen[k] {
			continue
		}
		seen[k] = true
		dedup = append(dedup, f)
	}
	finding.Sort(dedup)
	return dedup
}

// gapFiles lists the missing segments of the gap that starts at first.
func gapFiles(inv *audit.Inventory, first string) []string {
	n, err := walname.Parse(first)
	if err != nil || n.Kind != walname.KindSegment {
		return nil
	}
	sz := inv.SegmentSize
	seg, err := n.SegNo(sz)
	if err != nil {
		return nil
	}
	segs := inv.SegNos(n.TLI)
	if len(segs) == 0 {
		return []string{first}
	}
	out := []string{first}
	for s := seg + 1; s < segs[len(segs)-1] && inv.Segments[n.TLI][s] == nil && len(out) < 1<<16; s++ {
		out = append(out, walname.SegmentName(n.TLI, s, sz))
	}
	return out
}

// maxCommitScan bounds how many segments [NewestCommit] decodes when no
// backup reaches the end of the archive.
const maxCommitScan = 32

// NewestCommit returns the time of the newest commit or abort archived on
// the timeline path of latest: the last commit a backup that reaches the
// end replays, or else the newest found by decoding the newest segments
// on their own. Zero when none is found.
func NewestCommit(ctx context.Context, arch *audit.Archive, latest *plan.Result) (time.Time, error) {
	var best time.Time
	for _, a := range latest.Backups {
		if a.Verdict == plan.Reachable && a.Window != nil && a.Window.ToTime != nil && a.Window.ToTime.After(best) {
			best = a.Window.ToTime.Time
		}
	}
	if !best.IsZero() {
		return best, nil
	}
	t, err := scanNewestCommit(ctx, arch, latest)
	if err != nil || !t.IsZero() {
		return t, err
	}
	for _, a := range latest.Backups {
		if a.Window != nil && a.Window.ToTime != nil && a.Window.ToTime.After(best) {
			best = a.Window.ToTime.Time
		}
	}
	return best, nil
}

func scanNewestCommit(ctx context.Context, arch *audit.Archive, latest *plan.Result) (time.Time, error) {
	inv := arch.Inv
	sz := inv.SegmentSize
	tli := latest.Target.ResolvedTimeline
	if tli == 0 {
		tls := inv.Timelines()
		if len(tls) == 0 {
			return time.Time{}, nil
		}
		tli = tls[len(tls)-1]
	}
	h, err := arch.Timelines.History(tli)
	if err != nil {
		return time.Time{}, nil
	}
	type cand struct {
		tli walname.TimelineID
		seg walname.SegNo
	}
	var cands []cand
	for t, m := range inv.Segments {
		if !h.Contains(t) {
			continue
		}
		for seg := range m {
			if h.TLIAt(sz.StartLSN(seg+1)-1) == t {
				cands = append(cands, cand{t, seg})
			}
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].seg > cands[j].seg })
	for i, c := range cands {
		if i >= maxCommitScan {
			break
		}
		o := inv.Segment(c.tli, c.seg)
		if o == nil {
			continue
		}
		rc, err := inv.Open(ctx, o)
		if err != nil {
			return time.Time{}, fmt.Errorf("read %s: %w", o.Key, err)
		}
		sum, err := wal.ScanSegment(rc, walname.SegmentName(c.tli, c.seg, sz), wal.Options{SegmentSize: sz})
		rc.Close()
		if err != nil {
			continue
		}
		for j := len(sum.Events) - 1; j >= 0; j-- {
			if e := sum.Events[j]; e.Kind.IsXactEnd() && !e.Time.IsZero() {
				return e.Time.UTC(), nil
			}
		}
	}
	return time.Time{}, nil
}

// perTimeline computes, for every timeline, what the backups reach along it.
func perTimeline(ctx context.Context, arch *audit.Archive, latest *plan.Result, opts Options) ([]TimelineRange, error) {
	var out []TimelineRange
	for _, tli := range arch.Inv.Timelines() {
		res := latest
		if tli != latest.Target.ResolvedTimeline {
			var err error
			res, err = plan.Evaluate(ctx, arch, plan.Request{Target: plan.Target{Kind: plan.TargetLatest}, Inclusive: true,
				Timeline: plan.TimelineSetting{Kind: "number", TLI: tli}, Cache: opts.Cache, Reverify: opts.Reverify})
			if err != nil {
				return nil, err
			}
		}
		tr := TimelineRange{Timeline: tli}
		for _, a := range res.Backups {
			if a.Window == nil || a.ResolvedTimeline != tli {
				continue
			}
			tr.Backups++
			w := a.Window
			if tr.FromLSN == 0 || w.FromLSN < tr.FromLSN {
				tr.FromLSN = w.FromLSN
			}
			if w.ToLSN > tr.UntilLSN {
				tr.UntilLSN = w.ToLSN
			}
			if w.FromTime != nil && w.ToTime != nil && w.FromTime.Before(w.ToTime.Time) {
				if tr.From == nil || w.FromTime.Before(tr.From.Time) {
					f := *w.FromTime
					tr.From = &f
				}
				if tr.Until == nil || w.ToTime.After(tr.Until.Time) {
					u := *w.ToTime
					tr.Until = &u
				}
			}
		}
		out = append(out, tr)
	}
	return out, nil
}
