package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/audit/walcache"
	"github.com/walaudit/walaudit/timeline"
	"github.com/walaudit/walaudit/walname"
)

// maxPreBackupSegments bounds how far before a backup walaudit looks for
// the WAL that shows a time target lies there: an idle cluster may not
// have committed for a long time, and a proof that needs more than this
// is left unproven (the backup refused) rather than made slow.
const maxPreBackupSegments = 4096

// PreBackupProof is the evidence that a backup reaches a time target that
// lies before (or within the second of) its start: the archive's WAL from
// FromLSN to the backup's start holds no commit that the target excludes,
// so the backup's data already is the state at the target.
type PreBackupProof struct {
	// FromLSN and ToLSN bound the WAL read (ToLSN is the backup's start).
	FromLSN walname.LSN `json:"from_lsn"`
	ToLSN   walname.LSN `json:"to_lsn"`
	// LastBefore is the last transaction end before the target: the WAL
	// read reaches back past the target.
	LastBefore XactRef `json:"last_before_target"`
	// StopRecord is where PostgreSQL would have stopped replaying from an
	// older backup: an abort, which changes no data; nil when no record
	// before the backup's start is at or after the target.
	StopRecord *XactRef `json:"abort_after_target,omitempty"`
	// Segments is the number of segments read.
	Segments int `json:"segments"`
}

// XactRef names one transaction end.
type XactRef struct {
	XID  uint32      `json:"xid"`
	LSN  walname.LSN `json:"lsn"`
	Time *Timestamp  `json:"time"`
	Kind string      `json:"kind"`
}

func xactRef(e *wal.Event) XactRef {
	return XactRef{XID: e.XID, LSN: e.LSN, Time: NewTimestamp(e.Time), Kind: e.Kind.String()}
}

// needsPreBackupProof reports whether a time target may lie before the
// backup's start. The label's START TIME is truncated to whole seconds
// and is stamped after the backup's checkpoint, so every record before
// the backup's start LSN carries a time before START TIME + 1 s: a target
// at or after that needs no proof.
func (ev *evaluator) needsPreBackupProof(b *backup.Backup) (time.Time, bool) {
	if ev.req.Target.Kind != TargetTime {
		return time.Time{}, false
	}
	st, ok := timestampOf(b.StartTime)
	if !ok {
		return time.Time{}, false
	}
	return st, ev.req.Target.Time.Before(st.Add(time.Second))
}

// timeBeforeBackup applies walaudit's stricter rule (FORMATS §5.4): a time
// target before the backup started is "reached" by PostgreSQL at the first
// commit after the backup, with a later state than asked, unless the WAL
// before the backup proves that no transaction committed in between. It
// returns the proof, or why the backup cannot be used.
func (ev *evaluator) timeBeforeBackup(ctx context.Context, b *backup.Backup, h *timeline.History) (*PreBackupProof, string, error) {
	st, ok := ev.needsPreBackupProof(b)
	if !ok {
		return nil, "", nil
	}
	proof, why, err := ev.provePreBackup(ctx, b, h)
	if err != nil || proof != nil {
		return proof, "", err
	}
	when := "before this backup started"
	if !ev.req.Target.Time.Before(st) {
		when = "within the second this backup started (its label's START TIME has whole seconds), so possibly before it started"
	}
	return nil, fmt.Sprintf("target time %s is %s (%s): PostgreSQL would stop at the first commit after the backup and report success, with a later state than asked, unless no transaction committed in between, and %s; use an older backup",
		ev.req.Target.Time.Format(time.RFC3339Nano), when, st.Format(time.RFC3339), why), nil
}

// stopsBefore is recoveryStopsBefore's time rule for one transaction end.
func (ev *evaluator) stopsBefore(e *wal.Event) bool {
	t := ev.req.Target.Time
	return e.Kind.IsXactEnd() && (e.Time.After(t) || (!ev.req.Inclusive && e.Time.Equal(t)))
}

// provePreBackup reads the archive's WAL before the backup's start: back
// to the last transaction end before the target (the evidence that the
// read reaches past it), then forward to the backup's start, verifying it
// as recovery would (record CRCs, back-links, system identifier, page
// timelines). The target state equals the backup's when, from the record
// PostgreSQL would stop before (replaying from an older backup) to the
// backup's start, no transaction committed. It returns nil and the reason
// when that is not proven.
func (ev *evaluator) provePreBackup(ctx context.Context, b *backup.Backup, h *timeline.History) (*PreBackupProof, string, error) {
	inv := ev.arch.Inv
	sz := inv.SegmentSize
	redo := b.StartLSN
	redoSeg := redo.Segment(sz)

	// Back from the backup's start, segment by segment, to one holding a
	// transaction end before the target.
	from := walname.SegNo(0)
	found := false
	sysid := b.SystemID
	read := 0
	for seg := redoSeg; read < maxPreBackupSegments; seg-- {
		read++
		sum, name, err := ev.preBackupSummary(ctx, b, h, seg)
		if err != nil {
			return nil, "", err
		}
		if sum == nil {
			if seg == redoSeg {
				return nil, fmt.Sprintf("the segment holding the backup's start (%s) cannot be read", name), nil
			}
			return nil, fmt.Sprintf("the archive's WAL before the backup ends at %s (%s is missing or unreadable) without a transaction end before the target, so nothing shows that no transaction committed after it", sz.StartLSN(seg+1), name), nil
		}
		if seg == redoSeg && sysid == 0 {
			sysid = sum.SystemID
		}
		for i := range sum.Events {
			e := &sum.Events[i]
			if e.LSN < redo && e.Kind.IsXactEnd() && !ev.stopsBefore(e) {
				found = true
				break
			}
		}
		if found {
			from = seg
			break
		}
		if seg == 0 {
			break
		}
	}
	if !found {
		return nil, fmt.Sprintf("the archive's WAL before the backup (read back %s from %s) holds no transaction end before the target", plural(read, "segment"), redo), nil
	}

	// Forward from that segment to the backup's start, as recovery from an
	// older backup would replay it.
	exists := func(tli walname.TimelineID, seg walname.SegNo) bool {
		return inv.Segment(tli, seg) != nil || carries(b, walname.SegmentName(tli, seg, sz))
	}
	fp, err := h.Plan(timeline.PlanRequest{Size: sz, Start: from, Until: redo, Exists: exists})
	if err != nil {
		return nil, "", fmt.Errorf("plan WAL before backup %s: %w", b.ID, err)
	}
	if !fp.Complete {
		if fp.Stop < 0 || fp.Stop >= len(fp.Steps) {
			return nil, fmt.Sprintf("the WAL before the backup ends at %s", fp.End), nil
		}
		st := fp.Steps[fp.Stop]
		return nil, fmt.Sprintf("the WAL before the backup is not contiguous: %s is %s", walname.SegmentName(st.Want, st.Seg, sz), st.Status), nil
	}
	ropts := wal.Options{SegmentSize: sz, SystemID: sysid,
		AllowedTLI: func(tli walname.TimelineID, _ walname.LSN) bool { return h.Contains(tli) }}
	proof := &PreBackupProof{FromLSN: sz.StartLSN(from), ToLSN: redo, Segments: len(fp.Steps)}
	var lastBefore *wal.Event
	var stop, commit *wal.Event
	visit := func(e *wal.Event) bool {
		if e.LSN >= redo {
			return false
		}
		if !e.Kind.IsXactEnd() {
			return true
		}
		if stop == nil && ev.stopsBefore(e) {
			c := *e
			stop = &c
		}
		if stop == nil {
			c := *e
			lastBefore = &c
		}
		if stop != nil && (e.Kind == wal.EventCommit || e.Kind == wal.EventCommitPrepared) {
			c := *e
			commit = &c
			return false
		}
		return true
	}
	end, werr := ev.walkPreBackup(ctx, b, fp, proof.FromLSN, ropts, visit)
	if werr != nil {
		return nil, "", werr
	}
	switch {
	case commit != nil:
		return nil, fmt.Sprintf("the WAL before the backup shows %s, which the target excludes but the backup's data already includes", xactWhat(commit)), nil
	case end < redo:
		return nil, fmt.Sprintf("the WAL before the backup cannot be read past %s", end), nil
	case lastBefore == nil:
		return nil, fmt.Sprintf("the WAL before the backup (from %s) starts with a transaction end after the target, so it does not reach back past it", proof.FromLSN), nil
	}
	proof.LastBefore = xactRef(lastBefore)
	if stop != nil {
		r := xactRef(stop)
		proof.StopRecord = &r
	}
	return proof, "", nil
}

// walkPreBackup calls visit for the events of the WAL in fp from start,
// from the segment summaries when they answer like the reader, else by
// reading the WAL. It returns where reading ended: at the first event
// visit refused (its start), else at the end of readable WAL.
func (ev *evaluator) walkPreBackup(ctx context.Context, b *backup.Backup, fp *timeline.Plan, start walname.LSN, opts wal.Options, visit func(*wal.Event) bool) (walname.LSN, error) {
	sz := ev.arch.Inv.SegmentSize
	var sums []*wal.SegmentSummary
	for _, st := range fp.Steps {
		sum, _, err := ev.segmentSummary(ctx, b, st.Read, st.Seg)
		if err != nil {
			return 0, err
		}
		if sum == nil {
			sums = nil
			break
		}
		sums = append(sums, sum)
	}
	if sums != nil {
		var at walname.LSN
		end, err := wal.WalkChain(sums, start, opts, func(e *wal.Event) bool {
			at = e.LSN
			return visit(e)
		})
		switch {
		case err == nil:
			return at, nil
		case !errors.Is(err, wal.ErrSummaryIncomplete):
			return end, nil
		}
	}
	src := &segSource{inv: ev.arch.Inv, b: b, sz: sz, steps: map[walname.SegNo]timeline.Step{}}
	for _, st := range fp.Steps {
		src.steps[st.Seg] = st
	}
	rd, err := wal.NewReader(ctx, src, start, opts)
	if err != nil {
		return 0, fmt.Errorf("read WAL before backup %s: %w", b.ID, err)
	}
	defer rd.Close()
	for rd.Next() {
		rec := rd.Record()
		e, ok, perr := wal.EventOf(rec, rd.Major())
		if !ok || perr != nil {
			continue
		}
		if !visit(&e) {
			return e.LSN, nil
		}
	}
	var ce *wal.ContentError
	if err := rd.Err(); err != nil && !errors.As(err, &ce) && !errors.Is(err, wal.ErrSegmentMissing) {
		return 0, fmt.Errorf("read WAL before backup %s: %w", b.ID, err)
	}
	return rd.EndOfWAL(), nil
}

// preBackupSummary summarizes the segment recovery would read for seg
// along h: the newest timeline of h whose WAL the segment holds and whose
// file exists. A nil summary means no such file can be read.
func (ev *evaluator) preBackupSummary(ctx context.Context, b *backup.Backup, h *timeline.History, seg walname.SegNo) (*wal.SegmentSummary, string, error) {
	sz := ev.arch.Inv.SegmentSize
	lo, hi := sz.StartLSN(seg), sz.StartLSN(seg+1)-1
	name := walname.SegmentName(h.TLIAt(lo), seg, sz)
	ents := h.Entries()
	for i := len(ents) - 1; i >= 0; i-- {
		e := ents[i]
		if !e.Covers(lo) && !e.Covers(hi) {
			continue
		}
		sum, n, err := ev.segmentSummary(ctx, b, e.TLI, seg)
		if err != nil || sum != nil {
			return sum, n, err
		}
	}
	return nil, name, nil
}

// location names the archive in cache keys, computed once per check.
func (ev *evaluator) location() string {
	ev.locOnce.Do(func() { ev.loc = ev.arch.Inv.Store.String() })
	return ev.loc
}

// segmentSummary returns the summary of one segment file, from the cache
// when it holds one for this very file, else by scanning it (and storing
// the result). A nil summary with a nil error means the file is absent or
// unreadable as WAL; errors are reserved for an archive that cannot be
// read.
func (ev *evaluator) segmentSummary(ctx context.Context, b *backup.Backup, tli walname.TimelineID, seg walname.SegNo) (*wal.SegmentSummary, string, error) {
	inv := ev.arch.Inv
	sz := inv.SegmentSize
	o := inv.Segment(tli, seg)
	var rc io.ReadCloser
	var key walcache.Key
	if o != nil {
		key = walcache.Key{Location: ev.location(), Object: o.Key, Size: o.Size, ModTime: o.ModTime, ETag: o.Name.Checksum}
		if ev.cache != nil && !ev.req.Reverify {
			// A warm check does this per segment: no name formatting here.
			if sum, ok, err := ev.cache.Get(ctx, key); err == nil && ok {
				return sum, sum.File, nil
			}
		}
	}
	name := walname.SegmentName(tli, seg, sz)
	if o != nil {
		// An uncompressed local file is scanned in place, not copied.
		if f := inv.OpenPlainFile(ctx, o); f != nil {
			sum, err := wal.ScanSegmentFile(f, name, wal.Options{SegmentSize: sz})
			f.Close()
			return ev.keep(ctx, key, sum, name, err)
		}
	}
	switch {
	case o != nil:
		r, err := inv.Open(ctx, o)
		if err != nil {
			return nil, name, nil
		}
		rc = r
	case carries(b, name):
		r, err := backup.OpenWAL(ctx, b, name)
		if err != nil {
			return nil, name, nil
		}
		rc = r
	default:
		return nil, name, nil
	}
	sum, err := wal.ScanSegment(rc, name, wal.Options{SegmentSize: sz})
	rc.Close()
	if o == nil {
		key = walcache.Key{} // carried in a backup: not cached
	}
	return ev.keep(ctx, key, sum, name, err)
}

// keep stores a fresh summary in the cache (unless key is zero) and
// returns it as segmentSummary does.
func (ev *evaluator) keep(ctx context.Context, key walcache.Key, sum *wal.SegmentSummary, name string, err error) (*wal.SegmentSummary, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, name, err
	}
	if err != nil || sum == nil {
		return nil, name, nil
	}
	if key.Object != "" && ev.cache != nil {
		ev.putMu.Lock()
		if ev.batch != nil {
			*ev.batch = append(*ev.batch, walcache.Entry{Key: key, Summary: sum})
			ev.putMu.Unlock()
			return sum, name, nil
		}
		ev.putMu.Unlock()
		_ = ev.cache.Put(ctx, key, sum) // a cache that cannot store only costs speed
	}
	return sum, name, nil
}
