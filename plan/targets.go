package plan

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/audit/walcache"
	"github.com/walaudit/walaudit/walname"
)

// TargetsRequest asks what an operator can aim at.
type TargetsRequest struct {
	BackupID string
	// Around, when set, lists the commits and aborts nearest this moment.
	Around time.Time
	// Count is how many transactions to list on each side of Around.
	Count int
	// Cache and Reverify are as in [Request].
	Cache    *walcache.Cache
	Reverify bool
}

// RestorePointTarget is a restore point and the backups that reach it.
type RestorePointTarget struct {
	Name     string             `json:"name"`
	Time     *Timestamp         `json:"time"`
	LSN      walname.LSN        `json:"lsn"`
	Timeline walname.TimelineID `json:"timeline"`
	Backups  []string           `json:"backups"`
	// Duplicate is set when an earlier restore point on the same path has
	// the same name: recovery to this name stops at the earlier one.
	Duplicate bool `json:"duplicate,omitempty"`
}

// RecoverableRange is what one backup reaches along one target timeline.
type RecoverableRange struct {
	Backup   string      `json:"backup"`
	FromLSN  walname.LSN `json:"from_lsn"`
	ToLSN    walname.LSN `json:"to_lsn"`
	FromTime *Timestamp  `json:"from_time,omitempty"`
	ToTime   *Timestamp  `json:"to_time,omitempty"`
}

// TimelineTargets lists, for one target timeline, what each backup reaches.
type TimelineTargets struct {
	Timeline walname.TimelineID `json:"timeline"`
	Ranges   []RecoverableRange `json:"ranges"`
}

// XactTarget is a commit or abort an operator may stop before or after.
type XactTarget struct {
	Kind     string             `json:"kind"`
	XID      uint32             `json:"xid"`
	Time     *Timestamp         `json:"time"`
	LSN      walname.LSN        `json:"lsn"`
	Timeline walname.TimelineID `json:"timeline"`
}

// TargetsResult is the answer of `walaudit targets`.
type TargetsResult struct {
	Archive       string               `json:"archive"`
	RestorePoints []RestorePointTarget `json:"restore_points"`
	Timelines     []TimelineTargets    `json:"timelines"`
	Around        *Timestamp           `json:"around,omitempty"`
	Before        []XactTarget         `json:"before,omitempty"`
	After         []XactTarget         `json:"after,omitempty"`
	Findings      []finding.Finding    `json:"findings"`
}

// Targets lists every restore point, every timeline's recoverable ranges
// per backup, and optionally the transactions around a moment.
func Targets(ctx context.Context, arch *audit.Archive, req TargetsRequest) (*TargetsResult, error) {
	res := &TargetsResult{Archive: arch.Inv.Store.String(), RestorePoints: []RestorePointTarget{}, Timelines: []TimelineTargets{}, Findings: []finding.Finding{}}
	if req.Count <= 0 {
		req.Count = 5
	}
	if !req.Around.IsZero() {
		res.Around = NewTimestamp(req.Around)
	}
	type rpKey struct {
		lsn walname.LSN
		tli walname.TimelineID
	}
	rps := map[rpKey]*RestorePointTarget{}
	type xKey struct {
		lsn walname.LSN
		tli walname.TimelineID
	}
	before := map[xKey]XactTarget{}
	after := map[xKey]XactTarget{}

	ev := &evaluator{arch: arch, cache: req.Cache}
	ev.collect = func(b *backup.Backup, e *wal.Event, tli walname.TimelineID) {
		switch {
		case e.Kind == wal.EventRestorePoint:
			k := rpKey{e.LSN, tli}
			rp := rps[k]
			if rp == nil {
				rp = &RestorePointTarget{Name: e.Name, Time: NewTimestamp(e.Time), LSN: e.LSN, Timeline: tli}
				rps[k] = rp
			}
			if !contains(rp.Backups, b.ID) {
				rp.Backups = append(rp.Backups, b.ID)
			}
		case e.Kind.IsXactEnd() && !req.Around.IsZero():
			x := XactTarget{Kind: e.Kind.String(), XID: e.XID, Time: NewTimestamp(e.Time), LSN: e.LSN, Timeline: tli}
			if e.Time.After(req.Around) {
				after[xKey{e.LSN, tli}] = x
			} else {
				before[xKey{e.LSN, tli}] = x
			}
		}
	}
	for _, tli := range arch.Inv.Timelines() {
		tt := TimelineTargets{Timeline: tli, Ranges: []RecoverableRange{}}
		ev.req = Request{Target: Target{Kind: TargetLatest}, Inclusive: true, Timeline: TimelineSetting{Kind: "number", TLI: tli}, Reverify: req.Reverify}
		for _, b := range arch.Backups {
			if req.BackupID != "" && b.ID != req.BackupID {
				continue
			}
			ans, err := ev.answer(ctx, b)
			if err != nil {
				return nil, err
			}
			if ans.Window == nil || ans.ResolvedTimeline != tli {
				continue
			}
			tt.Ranges = append(tt.Ranges, RecoverableRange{Backup: b.ID, FromLSN: ans.Window.FromLSN, ToLSN: ans.Window.ToLSN,
				FromTime: ans.Window.FromTime, ToTime: ans.Window.ToTime})
		}
		if len(tt.Ranges) > 0 {
			res.Timelines = append(res.Timelines, tt)
		}
	}
	for _, rp := range rps {
		sort.Strings(rp.Backups)
		res.RestorePoints = append(res.RestorePoints, *rp)
	}
	sort.Slice(res.RestorePoints, func(i, j int) bool {
		a, b := res.RestorePoints[i], res.RestorePoints[j]
		if a.LSN != b.LSN {
			return a.LSN < b.LSN
		}
		return a.Timeline < b.Timeline
	})
	// A name recovery stops at the first restore point with that name on
	// the path: mark later ones on the same or a descendant timeline.
	seen := map[string][]RestorePointTarget{}
	for i := range res.RestorePoints {
		rp := &res.RestorePoints[i]
		for _, prev := range seen[rp.Name] {
			if prev.Timeline <= rp.Timeline {
				rp.Duplicate = true
			}
		}
		seen[rp.Name] = append(seen[rp.Name], *rp)
	}
	res.Before = nearest(before, req.Count, true)
	res.After = nearest(after, req.Count, false)
	res.Findings = append(res.Findings, ev.findings...)
	res.Findings = dedupFindings(res.Findings)
	finding.Sort(res.Findings)
	return res, nil
}

// nearest keeps the n transactions closest in time to the moment.
func nearest[K comparable](m map[K]XactTarget, n int, before bool) []XactTarget {
	out := make([]XactTarget, 0, len(m))
	for _, x := range m {
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time.Time) {
			return out[i].Time.Before(out[j].Time.Time)
		}
		return out[i].LSN < out[j].LSN
	})
	if before && len(out) > n {
		out = out[len(out)-n:]
	}
	if !before && len(out) > n {
		out = out[:n]
	}
	return out
}

// String renders a transaction for people.
func (x XactTarget) String() string {
	return fmt.Sprintf("%s xid %d at %s lsn %s (timeline %d)", x.Kind, x.XID, x.Time.Format("2006-01-02 15:04:05.000000Z07:00"), x.LSN, x.Timeline)
}
