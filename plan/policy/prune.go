package policy

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/walname"
)

// CheckResult is the answer of [CheckDeletion].
type CheckResult struct {
	// Safe: the policy holds after the deletion.
	Safe bool `json:"safe"`
	// Undecided: walaudit could not decide (Message says why).
	Undecided bool `json:"undecided,omitempty"`
	// Message is one sentence for people.
	Message string `json:"message"`
	// AlreadyBroken: the policy does not hold even without the deletion.
	AlreadyBroken bool `json:"already_broken,omitempty"`
	// Culprit is the first item, in LSN order, whose deletion (with those
	// before it) breaks the policy.
	Culprit   *Item      `json:"culprit,omitempty"`
	Violation *Violation `json:"violation,omitempty"`
	Files     int        `json:"files"`
	Bytes     int64      `json:"bytes"`
	Items     []Item     `json:"items"`
	Before    *Report    `json:"before"`
	After     *Report    `json:"after"`
}

// fixed returns opts with the clock stopped at one instant, so that every
// evaluation of a simulation sees the same window.
func fixed(opts Options) Options {
	t := opts.now()
	opts.Now = func() time.Time { return t }
	return opts
}

// simOptions are the options of an evaluation after a deletion: the base
// archive's right edge and excuses, not the simulated ones.
func simOptions(opts Options, base *Report) Options {
	opts.Latest = nil
	opts.PerTimeline = false
	if base.NewestCommit != nil {
		t := base.NewestCommit.Time
		opts.End = &t
	}
	opts.Excuses = append([]Excuse{}, base.Excuses...)
	return opts
}

// CheckDeletion proves whether the policy still holds after deleting d,
// and if not names the first item, in LSN order, whose deletion breaks it.
func CheckDeletion(ctx context.Context, src *Source, d *Deletion, pol *Policy, opts Options) (*CheckResult, error) {
	opts = fixed(opts)
	res := &CheckResult{Files: d.Len(), Bytes: d.Bytes(), Items: d.Items}
	base, err := Evaluate(ctx, src.Base, pol, opts)
	if err != nil {
		return nil, err
	}
	res.Before = base
	if base.Undecided {
		res.Undecided, res.Message = true, "cannot decide the policy on the archive as it is: "+base.Reason
		return res, nil
	}
	sim := simOptions(opts, base)
	eval := func(dd *Deletion) (*Report, error) {
		arch, err := src.Without(ctx, dd)
		if err != nil {
			return nil, err
		}
		return Evaluate(ctx, arch, pol, sim)
	}
	after, err := eval(d)
	if err != nil {
		return nil, err
	}
	res.After = after
	if after.Holds {
		res.Safe = true
		res.Message = fmt.Sprintf("deleting %d %s (%s) is safe: %s", d.Len(), pluralWord(d.Len(), "file", "files"), FormatBytes(d.Bytes()), after.Reason)
		return res, nil
	}
	if !base.Holds {
		res.AlreadyBroken = true
		res.Message = "the policy does not hold even before deleting anything: " + base.Reason
		if len(base.Violations) > 0 {
			v := base.Violations[0]
			res.Violation = &v
		}
		return res, nil
	}
	// The smallest prefix that breaks the policy: its last item is the culprit.
	lo, hi := 1, d.Len()
	broken := after
	for lo < hi {
		mid := (lo + hi) / 2
		r, err := eval(d.Prefix(mid))
		if err != nil {
			return nil, err
		}
		if r.Holds {
			lo = mid + 1
		} else {
			hi, broken = mid, r
		}
	}
	// broken is the report of prefix hi: hi changes only together with it.
	it := d.Items[hi-1]
	res.Culprit = &it
	name := it.Key
	if it.Backup != "" {
		name = "backup " + it.Backup + " (" + it.Key + ")"
	}
	if broken.Undecided {
		res.Undecided = true
		res.Message = fmt.Sprintf("deleting %s makes the policy undecidable: %s", name, broken.Reason)
		return res, nil
	}
	v := broken.Violations[0]
	res.Violation = &v
	cause := v.Cause
	if v.NoCover {
		cause = strings.Replace(cause, "no backup covers it", "no other backup covers it", 1)
	}
	res.Message = fmt.Sprintf("deleting %s breaks %s: %s", name, v.What, cause)
	if note := removedBackupNote(src, it); note != "" {
		res.Message += "; " + note
	}
	return res, nil
}

// removedBackupNote says when deleting a .backup file removes the only
// description of a backup.
func removedBackupNote(src *Source, it Item) string {
	if it.kind != walname.KindBackupHistory || it.Backup != "" {
		return ""
	}
	for _, b := range src.Base.Backups {
		if b.Source == backup.SourceArchiveHistory && b.ID == path.Base(it.Key) {
			return fmt.Sprintf("%s is the only description of backup %s walaudit has (pass --backups DIR if its data directory still exists)", path.Base(it.Key), b.ID)
		}
	}
	return ""
}

// Plan is the answer of [PlanDeletion].
type Plan struct {
	// Holds: the policy holds now, so a plan could be made.
	Holds  bool   `json:"holds"`
	Reason string `json:"reason"`
	// Items are the files to delete, oldest first.
	Items []Item `json:"items"`
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
	// Kept are the backups that stay restorable; Dropped those that no
	// longer are after the deletion (their directories may go too).
	Kept    []string `json:"backups_kept"`
	Dropped []string `json:"backups_dropped"`
	// Cut is the oldest backup whose WAL is kept, if any.
	Cut    string  `json:"cut,omitempty"`
	Before *Report `json:"before"`
	After  *Report `json:"after"`
}

// PlanDeletion finds the largest deletion of the form "every WAL file
// older than backup B and the .backup files of older backups" under which
// the policy still holds, and returns it oldest first. Timeline history
// files and files walaudit does not recognise are never planned.
func PlanDeletion(ctx context.Context, src *Source, pol *Policy, opts Options) (*Plan, error) {
	opts = fixed(opts)
	p := &Plan{Items: []Item{}, Kept: []string{}, Dropped: []string{}}
	base, err := Evaluate(ctx, src.Base, pol, opts)
	if err != nil {
		return nil, err
	}
	p.Before, p.After = base, base
	if !base.Holds {
		p.Reason = "nothing can be proven safe to delete: " + base.Reason
		return p, nil
	}
	p.Holds = true
	sim := simOptions(opts, base)
	sz := src.Base.Inv.SegmentSize

	var starts []walname.LSN
	startOf := map[walname.LSN]string{}
	for _, b := range src.Base.Backups {
		if b.StartLSN == 0 {
			continue
		}
		if _, ok := startOf[b.StartLSN]; !ok {
			starts = append(starts, b.StartLSN)
			startOf[b.StartLSN] = b.ID
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	cut := func(start walname.LSN) *Deletion {
		var keys []string
		first := start.Segment(sz)
		for _, o := range src.Objects {
			n, err := walname.Parse(path.Base(o.Key))
			if err != nil {
				continue
			}
			switch n.Kind {
			case walname.KindSegment, walname.KindPartial:
				if seg, err := n.SegNo(sz); err == nil && seg < first {
					keys = append(keys, o.Key)
				}
			case walname.KindBackupHistory:
				if seg, err := n.SegNo(sz); err == nil && sz.StartLSN(seg)+walname.LSN(n.Offset) < start {
					keys = append(keys, o.Key)
				}
			}
		}
		return src.DeletionOf(keys)
	}
	holds := map[int]*Report{}
	try := func(i int) (bool, error) {
		if r, ok := holds[i]; ok {
			return r != nil, nil
		}
		d := cut(starts[i])
		arch, err := src.Without(ctx, d)
		if err != nil {
			return false, err
		}
		r, err := Evaluate(ctx, arch, pol, sim)
		if err != nil {
			return false, err
		}
		if !r.Holds {
			r = nil
		}
		holds[i] = r
		return r != nil, nil
	}
	best := -1
	if len(starts) > 0 {
		ok, err := try(0)
		if err != nil {
			return nil, err
		}
		if ok {
			lo, hi := 0, len(starts)-1 // invariant: lo holds
			for lo < hi {
				mid := (lo + hi + 1) / 2
				ok, err := try(mid)
				if err != nil {
					return nil, err
				}
				if ok {
					lo = mid
				} else {
					hi = mid - 1
				}
			}
			best = lo
		}
	}
	if best < 0 {
		p.Reason = "nothing can be deleted: the policy needs every archived file"
		if len(starts) == 0 {
			p.Reason = "nothing can be deleted: no base backup is known"
		}
		for _, b := range base.Backups {
			if b.Restorable {
				p.Kept = append(p.Kept, b.ID)
			}
		}
		return p, nil
	}
	d := cut(starts[best])
	p.Items, p.Files, p.Bytes = d.Items, d.Len(), d.Bytes()
	if p.Items == nil {
		p.Items = []Item{}
	}
	p.After = holds[best]
	p.Cut = startOf[starts[best]]
	restorable := map[string]bool{}
	for _, b := range p.After.Backups {
		if b.Restorable {
			restorable[b.ID] = true
			p.Kept = append(p.Kept, b.ID)
		}
	}
	for _, b := range base.Backups {
		if b.Restorable && !restorable[b.ID] {
			p.Dropped = append(p.Dropped, b.ID)
		}
	}
	p.Reason = fmt.Sprintf("%d %s (%s) can be deleted: %s", p.Files, pluralWord(p.Files, "file", "files"), FormatBytes(p.Bytes), p.After.Reason)
	return p, nil
}

// FormatBytes renders a size for people (binary units).
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
