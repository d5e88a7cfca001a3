package policy

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/walname"
)

// Snapshot is the state of one check, as metrics export it.
type Snapshot struct {
	Time     time.Time
	Duration time.Duration
	// Err is set when the check could not be done; the other fields are
	// then nil.
	Err       error
	Arch      *audit.Archive
	Report    *Report
	Freshness *Freshness
	// Primary is the live view (nil without --primary); PrimaryErr is why
	// the primary could not be asked.
	Primary    *Primary
	PrimaryErr error
	// PrimaryAsked: a primary was configured.
	PrimaryAsked bool
}

// Findings are every finding of the check: the evaluation's (with
// acknowledged gaps rewritten), the policy's, freshness and the primary's.
func (s *Snapshot) Findings() []finding.Finding {
	if s.Report == nil {
		return nil
	}
	var out []finding.Finding
	if s.Report.Latest != nil {
		out = append(out, s.Report.Acknowledge(s.Report.Latest.Findings, s.Arch.Inv)...)
	}
	out = append(out, s.Report.Findings...)
	if s.Freshness != nil {
		out = append(out, s.Freshness.Findings...)
	}
	if s.Primary != nil {
		out = append(out, s.Primary.Findings...)
	}
	finding.Sort(out)
	return out
}

// SnapshotRequest says what a snapshot checks.
type SnapshotRequest struct {
	// Load loads the archive.
	Load    func(ctx context.Context) (*audit.Archive, error)
	Policy  *Policy
	Options Options
	// PrimaryDSN, when set, adds the primary's live view.
	PrimaryDSN string
}

// TakeSnapshot runs one check: load, policy with every timeline's range,
// freshness and the primary.
func TakeSnapshot(ctx context.Context, req SnapshotRequest) *Snapshot {
	now := req.Options.now()
	s := &Snapshot{Time: now, PrimaryAsked: req.PrimaryDSN != ""}
	start := time.Now()
	defer func() { s.Duration = time.Since(start) }()
	arch, err := req.Load(ctx)
	if err != nil {
		s.Err = err
		return s
	}
	opts := req.Options
	opts.Now = func() time.Time { return now }
	opts.PerTimeline = true
	rep, err := Evaluate(ctx, arch, req.Policy, opts)
	if err != nil {
		s.Err = err
		return s
	}
	s.Arch, s.Report = arch, rep
	var maxAge time.Duration
	if req.Policy != nil {
		maxAge = req.Policy.MaxArchiveAge
	}
	s.Freshness = CheckFreshness(arch.Inv, now, maxAge)
	if req.PrimaryDSN != "" {
		s.Primary, s.PrimaryErr = QueryPrimary(ctx, req.PrimaryDSN, arch.Inv)
	}
	return s
}

// Collector exports snapshots as Prometheus metrics. With a Check
// function it re-checks on a scrape when the last snapshot is older than
// MinInterval; otherwise it exports the one snapshot it was given.
type Collector struct {
	// Check takes a new snapshot (nil: never re-check).
	Check func(ctx context.Context) *Snapshot
	// MinInterval is the least time between two checks.
	MinInterval time.Duration
	// Timeout bounds one check.
	Timeout time.Duration

	mu      sync.Mutex
	last    *Snapshot
	lastRun time.Time
	running chan struct{}
	descs   map[string]*prometheus.Desc
}

// NewCollector returns a collector for the archive named archive (the
// value of every metric's archive label).
func NewCollector(archive string, snap *Snapshot) *Collector {
	c := &Collector{last: snap, descs: map[string]*prometheus.Desc{}}
	cl := prometheus.Labels{"archive": archive}
	for _, m := range metricDefs {
		c.descs[m.name] = prometheus.NewDesc(m.name, m.help, m.labels, cl)
	}
	return c
}

type metricDef struct {
	name, help string
	labels     []string
}

// metricDefs are every metric walaudit exports (README documents them).
var metricDefs = []metricDef{
	{"walaudit_check_success", "1 when the last check could read the archive and decide, 0 when it could not.", nil},
	{"walaudit_check_duration_seconds", "How long the last check took.", nil},
	{"walaudit_check_timestamp_seconds", "When the last check ran.", nil},
	{"walaudit_latest_reachable", "1 when recovery to latest (the end of the archived WAL) is reachable from some backup.", nil},
	{"walaudit_policy_ok", "1 when the recovery policy holds (acknowledged gaps excused), 0 when it does not or cannot be decided.", nil},
	{"walaudit_policy_violations", "Parts of the recovery policy that do not hold.", nil},
	{"walaudit_policy_uncovered_seconds", "Seconds of the policy's required window that no backup can recover to (acknowledged gaps excluded).", nil},
	{"walaudit_policy_required_from_timestamp_seconds", "Start of the interval every moment of which the policy requires to be recoverable.", nil},
	{"walaudit_archive_objects", "Objects in the archive.", nil},
	{"walaudit_archive_segments", "WAL segment files in the archive (all timelines, one per segment).", nil},
	{"walaudit_archive_bytes", "Total size of the archive's objects.", nil},
	{"walaudit_archive_newest_wal_timestamp_seconds", "Store time (mtime or LastModified) of the most recently stored WAL file.", nil},
	{"walaudit_archive_newest_wal_age_seconds", "Age of the most recently stored WAL file at the check.", nil},
	{"walaudit_archive_max_age_seconds", "The freshness limit (--max-archive-age).", nil},
	{"walaudit_archive_newest_segment_timestamp_seconds", "Store time of the archived segment with the highest LSN.", []string{"timeline"}},
	{"walaudit_archive_newest_segment_end_lsn_bytes", "End LSN (as a byte position) of the archived segment with the highest LSN.", []string{"timeline"}},
	{"walaudit_archive_newest_commit_timestamp_seconds", "Time of the newest archived commit or abort on the latest timeline path.", nil},
	{"walaudit_recoverable_from_timestamp_seconds", "Earliest time a time target can recover to along this target timeline.", []string{"timeline"}},
	{"walaudit_recoverable_until_timestamp_seconds", "Time targets along this target timeline are recoverable up to (excluding) this time: the last commit some backup replays.", []string{"timeline"}},
	{"walaudit_recoverable_until_lsn_bytes", "End of the WAL some backup replays along this target timeline.", []string{"timeline"}},
	{"walaudit_wal_gaps", "Holes inside a timeline's archived segments.", []string{"timeline"}},
	{"walaudit_wal_gaps_acknowledged", "Holes inside a timeline's archived segments that lie in an acknowledged gap.", []string{"timeline"}},
	{"walaudit_findings", "Findings of the check by severity.", []string{"severity"}},
	{"walaudit_backups", "Base backups known.", nil},
	{"walaudit_backups_restorable", "Base backups that reach their consistency point with the archived WAL.", nil},
	{"walaudit_backup_newest_timestamp_seconds", "Stop time (else start time) of the newest base backup.", nil},
	{"walaudit_backup_newest_age_seconds", "Age of the newest base backup at the check.", nil},
	{"walaudit_primary_up", "1 when the primary (--primary) answered, 0 when it could not be asked.", nil},
	{"walaudit_primary_current_lsn_bytes", "The primary's current WAL insert position.", []string{"timeline"}},
	{"walaudit_primary_unarchived_segments", "Completed segments of the primary after the archive's newest one.", nil},
	{"walaudit_primary_unarchived_bytes", "WAL written by the primary after the end of the archive's newest segment.", nil},
	{"walaudit_primary_archiver_archived_total", "pg_stat_archiver.archived_count.", nil},
	{"walaudit_primary_archiver_failed_total", "pg_stat_archiver.failed_count.", nil},
	{"walaudit_primary_archiver_last_archived_timestamp_seconds", "pg_stat_archiver.last_archived_time.", nil},
	{"walaudit_primary_archiver_last_failed_timestamp_seconds", "pg_stat_archiver.last_failed_time.", nil},
	{"walaudit_primary_archiver_failing", "1 when the archiver's last attempt failed and nothing was archived since.", nil},
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Snapshot returns the current snapshot, re-checking when the last check
// started MinInterval ago or more and a Check function is set. While a
// check runs, other callers get the previous snapshot (or wait for the
// first one), so slow checks never pile up.
func (c *Collector) Snapshot() *Snapshot {
	c.mu.Lock()
	if c.Check == nil || (c.last != nil && time.Since(c.lastRun) < c.MinInterval) {
		s := c.last
		c.mu.Unlock()
		return s
	}
	if c.running != nil {
		if c.last != nil {
			s := c.last
			c.mu.Unlock()
			return s
		}
		ch := c.running
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.last
	}
	ch := make(chan struct{})
	c.running, c.lastRun = ch, time.Now()
	c.mu.Unlock()
	ctx := context.Background()
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	s := c.Check(ctx)
	c.mu.Lock()
	c.last, c.running = s, nil
	c.mu.Unlock()
	close(ch)
	return s
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.Snapshot()
	if s == nil {
		return
	}
	gauge := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, labels...)
	}
	counter := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, v, labels...)
	}
	ts := func(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge("walaudit_check_success", b2f(s.Err == nil))
	gauge("walaudit_check_duration_seconds", s.Duration.Seconds())
	gauge("walaudit_check_timestamp_seconds", ts(s.Time))
	if s.Err != nil {
		gauge("walaudit_policy_ok", 0)
		return
	}
	rep, inv := s.Report, s.Arch.Inv
	latestOK := rep.Latest != nil && rep.Latest.Verdict == "reachable"
	gauge("walaudit_latest_reachable", b2f(latestOK))
	gauge("walaudit_policy_ok", b2f(rep.Holds))
	gauge("walaudit_policy_violations", float64(len(rep.Violations)))
	var unc time.Duration
	for _, u := range rep.Uncovered {
		if u.Acknowledged == nil {
			unc += u.To.Sub(u.From.Time)
		}
	}
	gauge("walaudit_policy_uncovered_seconds", unc.Seconds())
	if rep.Required != nil {
		gauge("walaudit_policy_required_from_timestamp_seconds", ts(rep.Required.From.Time))
	}

	// The archive.
	var objects, segments int
	var bytes int64
	var newestSeg *audit.Object
	var newestSegNo walname.SegNo
	for _, m := range inv.Segments {
		for seg, forms := range m {
			segments++
			for _, o := range forms {
				objects++
				bytes += o.Size
			}
			if o := forms[0]; newestSeg == nil || seg > newestSegNo || (seg == newestSegNo && o.Name.TLI > newestSeg.Name.TLI) {
				newestSeg, newestSegNo = o, seg
			}
		}
	}
	for _, m := range inv.Partials {
		for _, forms := range m {
			for _, o := range forms {
				objects++
				bytes += o.Size
			}
		}
	}
	for _, o := range inv.Histories {
		objects++
		bytes += o.Size
	}
	for _, list := range [][]*audit.Object{inv.BackupHistories, inv.Unknown} {
		for _, o := range list {
			objects++
			bytes += o.Size
		}
	}
	gauge("walaudit_archive_objects", float64(objects))
	gauge("walaudit_archive_segments", float64(segments))
	gauge("walaudit_archive_bytes", float64(bytes))
	if f := s.Freshness; f != nil {
		if f.NewestTime != nil {
			gauge("walaudit_archive_newest_wal_timestamp_seconds", ts(f.NewestTime.Time))
			gauge("walaudit_archive_newest_wal_age_seconds", f.AgeSeconds)
		}
		if f.maxAge > 0 {
			gauge("walaudit_archive_max_age_seconds", f.maxAge.Seconds())
		}
	}
	if newestSeg != nil {
		tl := newestSeg.Name.TLI.String()
		gauge("walaudit_archive_newest_segment_timestamp_seconds", ts(newestSeg.ModTime), tl)
		gauge("walaudit_archive_newest_segment_end_lsn_bytes", float64(inv.SegmentSize.StartLSN(newestSegNo+1)), tl)
	}
	if rep.NewestCommit != nil {
		gauge("walaudit_archive_newest_commit_timestamp_seconds", ts(rep.NewestCommit.Time))
	}
	for _, tr := range rep.Timelines {
		tl := tr.Timeline.String()
		if tr.From != nil {
			gauge("walaudit_recoverable_from_timestamp_seconds", ts(tr.From.Time), tl)
		}
		if tr.Until != nil {
			gauge("walaudit_recoverable_until_timestamp_seconds", ts(tr.Until.Time), tl)
		}
		if tr.UntilLSN != 0 {
			gauge("walaudit_recoverable_until_lsn_bytes", float64(tr.UntilLSN), tl)
		}
	}
	if rep.Latest != nil {
		for _, t := range rep.Latest.Timelines {
			acked := 0
			for _, g := range t.Gaps {
				if _, ok := rep.Policy.AckFor(g.First, g.Last); ok {
					acked++
				}
			}
			gauge("walaudit_wal_gaps", float64(len(t.Gaps)), t.Timeline.String())
			gauge("walaudit_wal_gaps_acknowledged", float64(acked), t.Timeline.String())
		}
	}
	fs := s.Findings()
	for _, sev := range []finding.Severity{finding.Error, finding.Warning, finding.Info} {
		gauge("walaudit_findings", float64(finding.Count(fs, sev)), string(sev))
	}

	// Backups.
	gauge("walaudit_backups", float64(len(s.Arch.Backups)))
	gauge("walaudit_backups_restorable", float64(rep.RestorableBackups))
	var newest *backup.Backup
	for _, b := range s.Arch.Backups {
		if newest == nil || b.StartLSN > newest.StartLSN {
			newest = b
		}
	}
	if newest != nil {
		t := newest.StopTime
		if !t.Resolved {
			t = newest.StartTime
		}
		if t.Resolved {
			gauge("walaudit_backup_newest_timestamp_seconds", ts(t.Time))
			gauge("walaudit_backup_newest_age_seconds", s.Time.Sub(t.Time).Seconds())
		}
	}

	// The primary.
	if s.PrimaryAsked {
		gauge("walaudit_primary_up", b2f(s.Primary != nil))
	}
	if p := s.Primary; p != nil {
		if p.CurrentLSN != 0 {
			gauge("walaudit_primary_current_lsn_bytes", float64(p.CurrentLSN), p.Timeline.String())
			gauge("walaudit_primary_unarchived_segments", float64(p.UnarchivedSegments))
			gauge("walaudit_primary_unarchived_bytes", float64(p.UnarchivedBytes))
		}
		counter("walaudit_primary_archiver_archived_total", float64(p.ArchivedCount))
		counter("walaudit_primary_archiver_failed_total", float64(p.FailedCount))
		if p.LastArchivedTime != nil {
			gauge("walaudit_primary_archiver_last_archived_timestamp_seconds", ts(p.LastArchivedTime.Time))
		}
		if p.LastFailedTime != nil {
			gauge("walaudit_primary_archiver_last_failed_timestamp_seconds", ts(p.LastFailedTime.Time))
		}
		gauge("walaudit_primary_archiver_failing", b2f(p.Failing))
	}
}

// MetricNames lists every metric name, for documentation tests.
func MetricNames() []string {
	out := make([]string, len(metricDefs))
	for i, m := range metricDefs {
		out[i] = m.name
	}
	return out
}
