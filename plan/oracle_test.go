package plan_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/audit/walcache"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/pgserver"
	"github.com/walaudit/walaudit/timeline"
	"github.com/walaudit/walaudit/walname"
)

// fixture is a real archive built once for the package: PostgreSQL 15 with
// 1 MiB segments, a base backup on timeline 1, a fork to timeline 2 by a
// real point-in-time recovery with promotion, a second backup on timeline
// 2, and WAL on both timelines after the fork.
type fixture struct {
	lab      *pgserver.Lab
	b1, b2   string // plain backup directories
	b1Start  walname.LSN
	midLSN   walname.LSN // an LSN on timeline 1 after b1's consistency, before the fork
	forkLSN  walname.LSN // switch point 1 -> 2
	tli1Late walname.LSN // an LSN on timeline 1 after the fork point
	tli2LSN  walname.LSN // an LSN on timeline 2 after the fork
	endLSN   walname.LSN // beyond everything
	rp       string
	gapSeg   string // a timeline-1 segment between b1's start and the fork
	gapDir   string // a copy of the archive without gapSeg
	err      error

	// Transactions on timeline 1 between b1 and rp1 (so also on timeline 2's history).
	xCommit, xAbort, xCommitPrep, xAbortPrep, xSub uint32
	tCommit                                        time.Time // commit time of xCommit
	tCommitNext                                    time.Time // the commit after it
	tLastCommit                                    time.Time // the last commit archived on timeline 1
	tBetween                                       time.Time // a commit time between b0 and b1
	tLastPre                                       time.Time // the last commit before b1 (then only an abort, then b1 a second later)
	xTLI2                                          uint32    // a commit on timeline 2 only
	b0                                             string    // an older backup
	xAfterRP                                       uint32    // a timeline-1 commit after the fork point, in the switch segment
	bs                                             string    // a plain backup with its WAL streamed into pg_wal
	sb                                             string    // a backup taken from a standby (TestStandbyBackupAgreesWithPostgreSQL)
}

var (
	fxOnce sync.Once
	fx     fixture
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fx.lab != nil {
		_ = fx.lab.Close()
	}
	os.Exit(code)
}

// switchPoint reads where timeline tli's parent switched to it, from the
// archived history file.
func switchPoint(archive string, tli walname.TimelineID) (walname.LSN, error) {
	data, err := os.ReadFile(filepath.Join(archive, walname.HistoryName(tli)))
	if err != nil {
		return 0, err
	}
	h, err := timeline.ParseHistory(tli, data)
	if err != nil {
		return 0, err
	}
	_, at, ok := h.Parent()
	if !ok {
		return 0, fmt.Errorf("%s names no parent", walname.HistoryName(tli))
	}
	return at, nil
}

func lsnOf(t testing.TB, s *pgserver.Server, q string) walname.LSN {
	t.Helper()
	v, err := s.QueryString(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	l, err := walname.ParseLSN(v)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func getFixture(t *testing.T) *fixture {
	t.Helper()
	fxOnce.Do(func() { fx.err = buildFixture(t) })
	if fx.err != nil {
		t.Fatalf("build real-PostgreSQL fixture: %v", fx.err)
	}
	return &fx
}

func buildFixture(t *testing.T) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := pgserver.FindBin(ctx, "", 0)
	if err != nil {
		return err
	}
	u, err := pgserver.LookupOSUser("")
	if err != nil {
		return err
	}
	lab, err := pgserver.NewLab(ctx, "", bin, u)
	if err != nil {
		return err
	}
	fx.lab = lab
	// autovacuum off: no background commit may land between the fixture's
	// known transactions and b1.
	p1, err := lab.InitPrimary(ctx, "p1", 1, map[string]string{"track_commit_timestamp": "on", "autovacuum": "off"})
	if err != nil {
		return err
	}
	if err := p1.Exec(ctx, `CREATE TABLE early(i int)`); err != nil {
		return err
	}
	if fx.b0, err = lab.BaseBackup(ctx, p1, "b0"); err != nil {
		return err
	}
	if _, err := xact(ctx, p1, `INSERT INTO early VALUES (1)`); err != nil {
		return err
	}
	time.Sleep(10 * time.Millisecond)
	between, err := xact(ctx, p1, `INSERT INTO early VALUES (2)`)
	if err != nil {
		return err
	}
	if fx.tBetween, err = commitTime(ctx, p1, between); err != nil {
		return err
	}
	time.Sleep(1100 * time.Millisecond) // b1 starts a second later: label times have 1 s precision
	if err := p1.Exec(ctx, `CREATE TABLE t(i int, pad text)`); err != nil {
		return err
	}
	lastPre, err := xact(ctx, p1, `INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g`)
	if err != nil {
		return err
	}
	if fx.tLastPre, err = commitTime(ctx, p1, lastPre); err != nil {
		return err
	}
	// Then only an abort before b1, which starts more than a second later:
	// a time target in between lies before b1 and is provably b1's state.
	time.Sleep(20 * time.Millisecond)
	if err := abortXact(ctx, p1, `INSERT INTO t VALUES (-5, 'aborted before b1')`); err != nil {
		return err
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := lab.SwitchAndWait(ctx, p1); err != nil {
		return err
	}
	if fx.b1, err = lab.BaseBackup(ctx, p1, "b1"); err != nil {
		return err
	}
	if fx.bs, err = lab.BaseBackup(ctx, p1, "bs", "-X", "stream"); err != nil {
		return err
	}
	label, err := os.ReadFile(filepath.Join(fx.b1, "backup_label"))
	if err != nil {
		return err
	}
	var a, b uint32
	if _, err := fmt.Sscanf(string(label), "START WAL LOCATION: %X/%X", &a, &b); err != nil {
		return fmt.Errorf("parse backup_label: %w", err)
	}
	fx.b1Start = walname.LSN(uint64(a)<<32 | uint64(b))
	// WAL after the backup: a few segments of commits.
	for i := 0; i < 4; i++ {
		if err := p1.Exec(ctx, fmt.Sprintf(`INSERT INTO t SELECT g, repeat('y', 300) FROM generate_series(1, 2000) g`)); err != nil {
			return err
		}
		if i == 1 {
			fx.midLSN = lsnOf(t, p1, `SELECT pg_current_wal_insert_lsn()`)
		}
	}
	if _, err := lab.SwitchAndWait(ctx, p1); err != nil {
		return err
	}
	if err := buildXacts(ctx, p1); err != nil {
		return err
	}
	fx.rp = "rp1"
	if err := p1.Exec(ctx, `INSERT INTO t VALUES (-1, 'before rp')`, `SELECT pg_create_restore_point('rp1')`); err != nil {
		return err
	}
	// Timeline 2 forks at rp1: this commit exists only on timeline 1, in
	// the segment that holds the switch point.
	if fx.xAfterRP, err = xact(ctx, p1, `INSERT INTO t VALUES (-2, 'after rp')`); err != nil {
		return err
	}
	if _, err := lab.SwitchAndWait(ctx, p1); err != nil {
		return err
	}
	// Fork timeline 2 by a real PITR to rp1 with promotion, archiving into the same archive.
	fork, err := lab.Fork(ctx, fx.b1, "fork", "rp1")
	if err != nil {
		return err
	}
	if err := fork.Exec(ctx, `INSERT INTO t SELECT g, repeat('z', 300) FROM generate_series(1, 2000) g`); err != nil {
		return err
	}
	fx.tli2LSN = lsnOf(t, fork, `SELECT pg_current_wal_insert_lsn()`)
	if fx.xTLI2, err = xact(ctx, fork, `INSERT INTO t VALUES (-10, 'tli2 only')`); err != nil {
		return err
	}
	if err := fork.Exec(ctx, `INSERT INTO t SELECT g, repeat('w', 300) FROM generate_series(1, 1000) g`); err != nil {
		return err
	}
	if _, err := lab.SwitchAndWait(ctx, fork); err != nil {
		return err
	}
	if err := lab.WaitArchived(ctx, "00000002.history"); err != nil {
		return err
	}
	if fx.b2, err = lab.BaseBackup(ctx, fork, "b2"); err != nil {
		return err
	}
	if err := fork.Exec(ctx, `INSERT INTO t VALUES (-3, 'after b2')`); err != nil {
		return err
	}
	if _, err := lab.SwitchAndWait(ctx, fork); err != nil {
		return err
	}
	// Timeline 1 goes on after the fork point.
	if err := p1.Exec(ctx, `INSERT INTO t SELECT g, repeat('v', 300) FROM generate_series(1, 3000) g`); err != nil {
		return err
	}
	fx.tli1Late = lsnOf(t, p1, `SELECT pg_current_wal_insert_lsn()`)
	last, err := xact(ctx, p1, `INSERT INTO t VALUES (-4, 'late tli1')`)
	if err != nil {
		return err
	}
	if fx.tLastCommit, err = commitTime(ctx, p1, last); err != nil {
		return err
	}
	if _, err := lab.SwitchAndWait(ctx, p1); err != nil {
		return err
	}
	if err := fork.Stop(ctx); err != nil {
		return err
	}
	if err := p1.Stop(ctx); err != nil {
		return err
	}
	if fx.forkLSN, err = switchPoint(lab.Archive, 2); err != nil {
		return err
	}
	fx.endLSN = fx.tli1Late + 64<<20
	// The gap copy: remove a timeline-1 segment after the backup's start
	// and before the fork point.
	sz := walname.SegmentSize(1 << 20)
	gap := fx.midLSN.Segment(sz) + 1
	if gap >= fx.forkLSN.Segment(sz) {
		return fmt.Errorf("fixture too small for a gap: mid %s fork %s", fx.midLSN, fx.forkLSN)
	}
	fx.gapSeg = walname.SegmentName(1, gap, sz)
	fx.gapDir = filepath.Join(lab.Root, "archive-gap")
	if err := u.MkdirAll(fx.gapDir, 0o755); err != nil {
		return err
	}
	if err := pgserver.CopyTree(lab.Archive, fx.gapDir, u); err != nil {
		return err
	}
	return os.Remove(filepath.Join(fx.gapDir, fx.gapSeg))
}

// xact runs statements in one transaction and returns its xid.
func xact(ctx context.Context, s *pgserver.Server, stmts ...string) (uint32, error) {
	c, err := s.Connect(ctx, "")
	if err != nil {
		return 0, err
	}
	defer c.Close(context.Background())
	tx, err := c.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.Background())
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return 0, fmt.Errorf("%s: %w", q, err)
		}
	}
	var xid int64
	if err := tx.QueryRow(ctx, `SELECT txid_current()`).Scan(&xid); err != nil {
		return 0, err
	}
	return uint32(xid), tx.Commit(ctx)
}

// abortXact runs stmts in a transaction that gets an xid and rolls back:
// an abort record.
func abortXact(ctx context.Context, s *pgserver.Server, stmts ...string) error {
	c, err := s.Connect(ctx, "")
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return tx.Rollback(ctx)
}

func commitTime(ctx context.Context, s *pgserver.Server, xid uint32) (time.Time, error) {
	c, err := s.Connect(ctx, "")
	if err != nil {
		return time.Time{}, err
	}
	defer c.Close(context.Background())
	var t time.Time
	err = c.QueryRow(ctx, `SELECT pg_xact_commit_timestamp($1::text::xid)`, fmt.Sprint(xid)).Scan(&t)
	return t.UTC(), err
}

// buildXacts writes commits, an abort, prepared transactions committed and
// rolled back, a transaction with a subtransaction, and restore points
// (one name used twice), noting their xids and times.
func buildXacts(ctx context.Context, p *pgserver.Server) error {
	var err error
	if fx.xCommit, err = xact(ctx, p, `INSERT INTO t VALUES (-100, 'commit')`); err != nil {
		return err
	}
	if fx.tCommit, err = commitTime(ctx, p, fx.xCommit); err != nil {
		return err
	}
	c, err := p.Connect(ctx, "")
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	var x int64
	run := func(qs ...string) error {
		for _, q := range qs {
			if _, err := c.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}
	// An abort: the insert assigns an xid, so ROLLBACK writes an abort record.
	if err := run(`BEGIN`, `INSERT INTO t VALUES (-101, 'abort')`); err != nil {
		return err
	}
	if err := c.QueryRow(ctx, `SELECT txid_current()`).Scan(&x); err != nil {
		return err
	}
	fx.xAbort = uint32(x)
	if err := run(`ROLLBACK`); err != nil {
		return err
	}
	next, err := xact(ctx, p, `INSERT INTO t VALUES (-102, 'next commit')`)
	if err != nil {
		return err
	}
	if fx.tCommitNext, err = commitTime(ctx, p, next); err != nil {
		return err
	}
	// Prepared transactions: one committed, one rolled back.
	if err := run(`BEGIN`, `INSERT INTO t VALUES (-103, 'prepared commit')`); err != nil {
		return err
	}
	if err := c.QueryRow(ctx, `SELECT txid_current()`).Scan(&x); err != nil {
		return err
	}
	fx.xCommitPrep = uint32(x)
	if err := run(`PREPARE TRANSACTION 'pc'`, `COMMIT PREPARED 'pc'`); err != nil {
		return err
	}
	if err := run(`BEGIN`, `INSERT INTO t VALUES (-104, 'prepared abort')`); err != nil {
		return err
	}
	if err := c.QueryRow(ctx, `SELECT txid_current()`).Scan(&x); err != nil {
		return err
	}
	fx.xAbortPrep = uint32(x)
	if err := run(`PREPARE TRANSACTION 'pa'`, `ROLLBACK PREPARED 'pa'`); err != nil {
		return err
	}
	// A subtransaction: its xid appears only inside the parent's commit.
	if err := run(`BEGIN`, `INSERT INTO t VALUES (-105, 'parent')`, `SAVEPOINT s`, `INSERT INTO t VALUES (-106, 'child')`); err != nil {
		return err
	}
	// The row the subtransaction inserted carries the subtransaction's xid.
	if err := c.QueryRow(ctx, `SELECT xmin::text::bigint FROM t WHERE i = -106`).Scan(&x); err != nil {
		return err
	}
	fx.xSub = uint32(x)
	if err := run(`COMMIT`); err != nil {
		return err
	}
	return run(`SELECT pg_create_restore_point('dup')`, `INSERT INTO t VALUES (-107, 'between dups')`, `SELECT pg_create_restore_point('dup')`)
}

// oracleCase is one recovery target run both through walaudit and through
// a real PostgreSQL recovery of the same backup from the same archive.
type oracleCase struct {
	name      string
	archive   string // "" = the full archive
	backup    string // b1 or b2
	target    string
	inclusive bool
	timeline  string // "" = latest
	// stricter: walaudit says unreachable where PostgreSQL quietly ends at
	// a gap; then walaudit's end_of_wal must equal PostgreSQL's stop.
	stricter bool
	// stricterTime: a time before the backup; PostgreSQL "succeeds" with a
	// later state, walaudit refuses this backup.
	stricterTime bool
	// preBackup: a time before the backup that the WAL before it proves
	// reachable: walaudit must agree with PostgreSQL and show the proof.
	preBackup bool
	// wrongBranch: PostgreSQL "succeeds" on the wrong branch; walaudit
	// refuses with a WRONG_BRANCH error.
	wrongBranch bool
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999Z") }

func TestReachabilityAgreesWithPostgreSQL(t *testing.T) {
	f := getFixture(t)
	cases := []oracleCase{
		{name: "latest", backup: "b1", target: "latest", inclusive: true},
		{name: "immediate", backup: "b1", target: "immediate", inclusive: true},
		{name: "lsn-mid-incl", backup: "b1", target: "lsn:" + f.midLSN.String(), inclusive: true},
		{name: "lsn-mid-excl", backup: "b1", target: "lsn:" + f.midLSN.String(), inclusive: false},
		{name: "lsn-inside-backup", backup: "b1", target: "lsn:" + (f.b1Start + 8).String(), inclusive: true},
		{name: "lsn-inside-backup-excl", backup: "b1", target: "lsn:" + (f.b1Start + 8).String(), inclusive: false},
		{name: "lsn-tli2", backup: "b1", target: "lsn:" + f.tli2LSN.String(), inclusive: true},
		{name: "lsn-tli1-after-fork-tl1", backup: "b1", target: "lsn:" + f.tli1Late.String(), inclusive: true, timeline: "1"},
		{name: "lsn-tli1-after-fork-latest", backup: "b1", target: "lsn:" + f.tli1Late.String(), inclusive: true},
		{name: "lsn-beyond-end", backup: "b1", target: "lsn:" + f.endLSN.String(), inclusive: true},
		{name: "latest-tl1", backup: "b1", target: "latest", inclusive: true, timeline: "1"},
		{name: "b2-latest", backup: "b2", target: "latest", inclusive: true},
		{name: "b2-timeline-1-not-child", backup: "b2", target: "latest", inclusive: true, timeline: "1"},
		{name: "name-rp1", backup: "b1", target: "name:rp1", inclusive: true},
		{name: "name-absent", backup: "b1", target: "name:nope", inclusive: true},
		{name: "time-on-commit-incl", backup: "b1", target: "time:" + ts(f.tCommit), inclusive: true},
		{name: "time-on-commit-excl", backup: "b1", target: "time:" + ts(f.tCommit), inclusive: false},
		{name: "time-between-commits", backup: "b1", target: "time:" + ts(f.tCommit.Add(f.tCommitNext.Sub(f.tCommit)/2)), inclusive: true},
		{name: "time-after-last-commit", backup: "b1", target: "time:" + ts(f.tLastCommit.Add(time.Second)), inclusive: true, timeline: "1"},
		{name: "time-before-backup", backup: "b1", target: "time:" + ts(f.tBetween), inclusive: true, stricterTime: true},
		{name: "time-older-backup", backup: "b0", target: "time:" + ts(f.tBetween), inclusive: true},
		// Before b1's start, but only an abort lies between: proven from the WAL before b1.
		{name: "time-before-backup-proven", backup: "b1", target: "time:" + ts(f.tLastPre.Add(10*time.Millisecond)), inclusive: true, preBackup: true},
		{name: "time-before-backup-proven-excl", backup: "b1", target: "time:" + ts(f.tLastPre.Add(10*time.Millisecond)), inclusive: false, preBackup: true},
		{name: "time-on-last-commit-before-backup-incl", backup: "b1", target: "time:" + ts(f.tLastPre), inclusive: true, preBackup: true},
		// Exclusive, the commit at the target is excluded but b1 holds it.
		{name: "time-on-last-commit-before-backup-excl", backup: "b1", target: "time:" + ts(f.tLastPre), inclusive: false, stricterTime: true},
		// Without the WAL before b1 nothing proves the target's state.
		{name: "time-before-backup-no-earlier-wal", archive: "noprefix", backup: "b1", target: "time:" + ts(f.tLastPre.Add(10*time.Millisecond)), inclusive: true, stricterTime: true},
		{name: "xid-commit-incl", backup: "b1", target: fmt.Sprintf("xid:%d", f.xCommit), inclusive: true},
		{name: "xid-commit-excl", backup: "b1", target: fmt.Sprintf("xid:%d", f.xCommit), inclusive: false},
		{name: "xid-abort", backup: "b1", target: fmt.Sprintf("xid:%d", f.xAbort), inclusive: true},
		{name: "xid-commit-prepared", backup: "b1", target: fmt.Sprintf("xid:%d", f.xCommitPrep), inclusive: true},
		{name: "xid-abort-prepared-excl", backup: "b1", target: fmt.Sprintf("xid:%d", f.xAbortPrep), inclusive: false},
		{name: "xid-subtransaction", backup: "b1", target: fmt.Sprintf("xid:%d", f.xSub), inclusive: true, timeline: "1"},
		{name: "xid-tli2", backup: "b1", target: fmt.Sprintf("xid:%d", f.xTLI2), inclusive: true},
		{name: "xid-tli2-on-tl1", backup: "b1", target: fmt.Sprintf("xid:%d", f.xTLI2), inclusive: true, timeline: "1"},
		{name: "name-duplicate", backup: "b1", target: "name:dup", inclusive: true},
		{name: "gap-latest", archive: "gap", backup: "b1", target: "latest", inclusive: true, stricter: true},
		{name: "gap-lsn-before", archive: "gap", backup: "b1", target: "lsn:" + f.midLSN.String(), inclusive: true},
		{name: "gap-lsn-after", archive: "gap", backup: "b1", target: "lsn:" + f.tli2LSN.String(), inclusive: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOracle(t, f, c) })
	}
}

func runOracle(t *testing.T, f *fixture, c oracleCase) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	archive := f.lab.Archive
	switch c.archive {
	case "":
	case "gap":
		archive = f.gapDir
	default:
		archive = f.variant(t, c.archive)
	}
	bdir := map[string]string{"b0": f.b0, "b1": f.b1, "b2": f.b2, "bs": f.bs, "sb": f.sb}[c.backup]
	tg, tl, res := checkCase(ctx, t, archive, f.lab.Backups, c)
	ans := res.Backups[0]
	// The summary-cache path must answer exactly like the reader, cold
	// (scanning and storing) and warm (from the cache alone).
	for _, pass := range []string{"cold", "warm"} {
		cres, err := plan.Check(ctx, plan.Request{Archive: archive, Backups: f.lab.Backups, BackupID: c.backup,
			Target: tg, Inclusive: c.inclusive, Timeline: tl, Cache: testCache(t)})
		if err != nil {
			t.Fatalf("walaudit check with cache (%s): %v", pass, err)
		}
		if got, want := answerKey(cres.Backups[0]), answerKey(ans); got != want {
			t.Fatalf("summary path (%s) answers\n%s\nreader answers\n%s", pass, got, want)
		}
	}

	settings := recoverySettings(c, tg)
	pg, log, err := f.lab.Recover(ctx, bdir, archive, settings)
	if err != nil {
		t.Fatalf("real recovery: %v\n%s", err, log)
	}
	pgOK := pg.State != pgserver.RecoveryFailed
	t.Logf("walaudit: %s (%s) stop=%v end=%s; PostgreSQL: %s replay=%s %q %v", ans.Verdict, ans.Reason, stopLSN(ans.Stop), ans.EndOfWAL, pg.State, pg.ReplayLSN, pg.StopLine, pg.FatalLines)
	if testing.Verbose() {
		t.Log(tail(log))
	}
	if c.stricter && pgOK && c.archive != "gap" {
		// Damaged WAL: PostgreSQL ends recovery quietly at the damage,
		// walaudit refuses latest and says where recovery really ends.
		if ans.Verdict != plan.Unreachable || ans.EndOfWAL != pg.ReplayLSN {
			t.Fatalf("walaudit %s, end of WAL %s; PostgreSQL ended at %s", ans.Verdict, ans.EndOfWAL, pg.ReplayLSN)
		}
		return
	}
	if c.stricter && c.archive != "gap" {
		// PostgreSQL failed outright: walaudit must not call it reachable.
		if ans.Verdict == plan.Reachable {
			t.Fatalf("walaudit reachable, PostgreSQL failed: %v", pg.FatalLines)
		}
		return
	}
	if c.stricter {
		if ans.Verdict != plan.Unreachable {
			t.Fatalf("walaudit verdict %s, want unreachable (stricter than PostgreSQL)", ans.Verdict)
		}
		if !pgOK {
			t.Fatalf("PostgreSQL failed where walaudit expected it to end quietly: %v", pg.FatalLines)
		}
		if ans.EndOfWAL != pg.ReplayLSN {
			t.Fatalf("walaudit says recovery really ends at %s, PostgreSQL ended at %s", ans.EndOfWAL, pg.ReplayLSN)
		}
		if len(res.Missing) == 0 || res.Missing[0] != f.gapSeg {
			t.Fatalf("missing = %v, want %s first", res.Missing, f.gapSeg)
		}
		return
	}
	if c.wrongBranch {
		if ans.Verdict != plan.Unreachable || !strings.Contains(ans.Reason, "wrong branch") {
			t.Fatalf("walaudit: %s (%s), want unreachable on the wrong branch", ans.Verdict, ans.Reason)
		}
		found := false
		for _, fd := range res.Findings {
			found = found || (fd.Code == "WRONG_BRANCH" && fd.Severity == "error")
		}
		if !found {
			t.Fatalf("no WRONG_BRANCH error: %+v", res.Findings)
		}
		if !pgOK {
			t.Fatalf("PostgreSQL failed (%v); the hazard is that it succeeds", pg.FatalLines)
		}
		return
	}
	if c.stricterTime {
		if ans.Verdict != plan.Unreachable || !strings.Contains(ans.Reason, "before this backup started") {
			t.Fatalf("walaudit: %s (%s), want unreachable: time before the backup", ans.Verdict, ans.Reason)
		}
		if !pgOK {
			t.Fatalf("PostgreSQL failed (%v) where it should stop at the first commit after the backup", pg.FatalLines)
		}
		return
	}
	if c.preBackup && (ans.Verdict != plan.Reachable || ans.PreBackup == nil || !strings.Contains(ans.Reason, "no transaction committed")) {
		t.Fatalf("walaudit: %s (%s) proof %+v, want reachable with a pre-backup proof", ans.Verdict, ans.Reason, ans.PreBackup)
	}
	if !c.preBackup && ans.PreBackup != nil {
		t.Fatalf("unexpected pre-backup proof %+v", ans.PreBackup)
	}
	if (ans.Verdict == plan.Reachable) != pgOK {
		t.Fatalf("walaudit says %s (%s) but PostgreSQL %s: %v\n%s", ans.Verdict, ans.Reason, pg.State, pg.FatalLines, tail(log))
	}
	if pgOK {
		if pg.StopLine != "" && ans.Stop != nil && !sameStopKind(ans.Stop.Reason, pg.StopLine) {
			t.Fatalf("walaudit %q, PostgreSQL %q: different stop", ans.Stop.Reason, pg.StopLine)
		}
		if pg.StopLine != "" && ans.Stop != nil && !strings.HasPrefix(pg.StopLine, ans.Stop.LogLine) {
			t.Fatalf("walaudit predicts the log line %q, PostgreSQL logged %q", ans.Stop.LogLine, pg.StopLine)
		}
		if ans.Stop == nil || ans.Stop.LSN != pg.ReplayLSN {
			t.Fatalf("walaudit predicts stop at %v, PostgreSQL stopped at %s (%s)", stopLSN(ans.Stop), pg.ReplayLSN, pg.StopLine)
		}
		if res.Verdict != plan.Reachable || res.Stop == nil || res.Stop.LSN != pg.ReplayLSN {
			t.Fatalf("overall result %s / %v disagrees with the backup's answer", res.Verdict, res.Stop)
		}
	}
}

// checkCase runs walaudit's check for one oracle case (the reader, no
// cache) and requires exactly one backup answer.
func checkCase(ctx context.Context, t *testing.T, archive, backups string, c oracleCase) (plan.Target, plan.TimelineSetting, *plan.Result) {
	t.Helper()
	tg, err := plan.ParseTarget(c.target)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := plan.ParseTimelineSetting(c.timeline)
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Check(ctx, plan.Request{Archive: archive, Backups: backups, BackupID: c.backup,
		Target: tg, Inclusive: c.inclusive, Timeline: tl})
	if err != nil {
		t.Fatalf("walaudit check: %v", err)
	}
	if len(res.Backups) != 1 {
		t.Fatalf("want one backup answer, got %d", len(res.Backups))
	}
	return tg, tl, res
}

// recoverySettings are the real recovery's settings for an oracle case,
// written here independently of walaudit's own runbook: pause at the
// target so that the stop can be read.
func recoverySettings(c oracleCase, tg plan.Target) map[string]string {
	settings := map[string]string{"recovery_target_action": "'pause'", "recovery_target_inclusive": fmt.Sprint(c.inclusive)}
	if c.timeline != "" {
		settings["recovery_target_timeline"] = pgserver.Quote(c.timeline)
	}
	switch tg.Kind {
	case plan.TargetLSN:
		settings["recovery_target_lsn"] = pgserver.Quote(tg.LSN.String())
	case plan.TargetName:
		settings["recovery_target_name"] = pgserver.Quote(tg.Name)
	case plan.TargetImmediate:
		settings["recovery_target"] = "'immediate'"
	case plan.TargetTime:
		settings["recovery_target_time"] = pgserver.Quote(tg.Time.Format("2006-01-02 15:04:05.999999-07:00"))
	case plan.TargetXID:
		settings["recovery_target_xid"] = pgserver.Quote(fmt.Sprint(tg.XID))
	}
	return settings
}

func stopLSN(s *plan.Stop) string {
	if s == nil {
		return "none"
	}
	return s.LSN.String()
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// sameStopKind compares walaudit's stop reason with PostgreSQL's
// "recovery stopping before/after …" line: same direction, same record kind
// and, when PostgreSQL names one, same transaction.
func sameStopKind(ours, pgLine string) bool {
	dir := "after"
	if strings.Contains(pgLine, "stopping before") {
		dir = "before"
	}
	if !strings.Contains(ours, "stops "+dir) {
		return false
	}
	for _, kind := range []string{"abort of transaction", "commit of transaction", "restore point", "reaching consistency"} {
		if strings.Contains(pgLine, kind) {
			if kind == "commit of transaction" && strings.Contains(ours, "prepared transaction") {
				return strings.Contains(ours, "commit of prepared")
			}
			if !strings.Contains(ours, kind) && !(kind == "abort of transaction" && strings.Contains(ours, "abort of prepared")) {
				return false
			}
		}
	}
	var x uint32
	if i := strings.Index(pgLine, "transaction "); i >= 0 {
		if _, err := fmt.Sscanf(pgLine[i:], "transaction %d", &x); err == nil && !strings.Contains(ours, fmt.Sprintf("transaction %d ", x)) {
			return false
		}
	}
	return true
}

// TestTimeTargetPicksOlderBackup: a time between two backups is reached
// from the older one; the newer one is refused, not chosen.
func TestTimeTargetPicksOlderBackup(t *testing.T) {
	f := getFixture(t)
	tg, err := plan.ParseTarget("time:" + ts(f.tBetween))
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Check(context.Background(), plan.Request{Archive: f.lab.Archive, Backups: f.lab.Backups, Target: tg, Inclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != plan.Reachable || res.Backup == nil || res.Backup.ID != "b0" {
		t.Fatalf("verdict %s backup %+v: %s", res.Verdict, res.Backup, res.Reason)
	}
	for _, a := range res.Backups {
		if a.ID == "b1" && (a.Verdict != plan.Unreachable || !strings.Contains(a.Reason, "before this backup started")) {
			t.Fatalf("b1 answered %s: %s", a.Verdict, a.Reason)
		}
	}
}

var (
	variantMu sync.Mutex
	variants  = map[string]string{}
)

// variant returns a damaged copy of the archive: "flip" (one byte flipped
// inside a record of the segment after midLSN's), "trunc" (that segment cut
// to half its size) or "foreign" (that segment replaced by the
// same-named segment of another cluster).
func (f *fixture) variant(t *testing.T, kind string) string {
	t.Helper()
	variantMu.Lock()
	defer variantMu.Unlock()
	if d, ok := variants[kind]; ok {
		return d
	}
	ctx := context.Background()
	dir := filepath.Join(f.lab.Root, "archive-"+kind)
	if err := f.lab.User.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := pgserver.CopyTree(f.lab.Archive, dir, f.lab.User); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, f.gapSeg)
	switch kind {
	case "flip":
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		b[0x3000] ^= 0x40 // the middle of page 1: record data, not a page header
		if err := os.WriteFile(seg, b, 0o600); err != nil {
			t.Fatal(err)
		}
	case "trunc":
		if err := os.Truncate(seg, 1<<19); err != nil {
			t.Fatal(err)
		}
	case "nochild":
		// The child timeline's copy of the segment holding the switch point.
		sz := walname.SegmentSize(1 << 20)
		if err := os.Remove(filepath.Join(dir, walname.SegmentName(2, f.forkLSN.Segment(sz), sz))); err != nil {
			t.Fatal(err)
		}
	case "noprefix":
		// Retention removed every segment before b1's start segment.
		sz := walname.SegmentSize(1 << 20)
		for seg := walname.SegNo(1); seg < f.b1Start.Segment(sz); seg++ {
			if err := os.Remove(filepath.Join(dir, walname.SegmentName(1, seg, sz))); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
	case "nobs":
		// The WAL of backup bs is only in its pg_wal.
		ents, err := os.ReadDir(filepath.Join(f.bs, "pg_wal"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ents {
			if walname.IsSegmentName(e.Name()) {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
					t.Fatal(err)
				}
				n++
			}
		}
		if n == 0 {
			t.Fatal("backup bs carries no WAL")
		}
	case "foreign":
		other := filepath.Join(f.lab.Root, "other-archive")
		if err := f.lab.User.MkdirAll(other, 0o755); err != nil {
			t.Fatal(err)
		}
		o, err := f.lab.InitPrimary(ctx, "other", 1, map[string]string{
			"archive_command": pgserver.Quote(fmt.Sprintf("cp %%p %s/%%f", other)),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer o.Stop(ctx)
		want := filepath.Join(other, f.gapSeg)
		for i := 0; i < 64; i++ {
			// archive_command's cp may still be writing: wait for the whole segment.
			if st, err := os.Stat(want); err == nil && st.Size() == 1<<20 {
				break
			}
			if err := o.Exec(ctx, `CREATE TABLE IF NOT EXISTS x(i int)`, `INSERT INTO x VALUES (1)`, `SELECT pg_switch_wal()`); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		b, err := os.ReadFile(want)
		if err != nil {
			t.Fatalf("the other cluster never archived %s: %v", f.gapSeg, err)
		}
		if err := os.WriteFile(seg, b, 0o600); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown archive variant %q", kind)
	}
	variants[kind] = dir
	return dir
}

func TestWrongBranchAndCarriedWAL(t *testing.T) {
	f := getFixture(t)
	cases := []oracleCase{
		// Without timeline 2's copy of the switch segment, PostgreSQL reads
		// timeline 1's and "reaches" a timeline-1 transaction on the
		// timeline-2 path: walaudit must refuse.
		{name: "wrong-branch-xid", archive: "nochild", backup: "b1", target: fmt.Sprintf("xid:%d", f.xAfterRP), inclusive: true, wrongBranch: true},
		// Before the switch point the parent's copy is right.
		{name: "wrong-branch-before-switch", archive: "nochild", backup: "b1", target: fmt.Sprintf("xid:%d", f.xCommit), inclusive: true},
		// A backup taken with -X stream carries its WAL: recovery reads it
		// from pg_wal when the archive lacks it.
		{name: "carried-wal-immediate", archive: "nobs", backup: "bs", target: "immediate", inclusive: true},
		{name: "carried-wal-rp1", archive: "nobs", backup: "bs", target: "name:rp1", inclusive: true, timeline: "1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOracle(t, f, c) })
	}
}

func TestCorruptionAgreesWithPostgreSQL(t *testing.T) {
	f := getFixture(t)
	cases := []oracleCase{
		{name: "flip-latest", archive: "flip", backup: "b1", target: "latest", inclusive: true, timeline: "1", stricter: true},
		{name: "flip-before", archive: "flip", backup: "b1", target: "lsn:" + f.midLSN.String(), inclusive: true, timeline: "1"},
		{name: "flip-after", archive: "flip", backup: "b1", target: "name:rp1", inclusive: true, timeline: "1"},
		{name: "trunc-latest", archive: "trunc", backup: "b1", target: "latest", inclusive: true, timeline: "1", stricter: true},
		{name: "trunc-after", archive: "trunc", backup: "b1", target: "name:rp1", inclusive: true, timeline: "1"},
		{name: "foreign-latest", archive: "foreign", backup: "b1", target: "latest", inclusive: true, timeline: "1", stricter: true},
		{name: "foreign-after", archive: "foreign", backup: "b1", target: "name:rp1", inclusive: true, timeline: "1"},
		{name: "foreign-before", archive: "foreign", backup: "b1", target: "lsn:" + f.midLSN.String(), inclusive: true, timeline: "1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOracle(t, f, c) })
	}
	// Each damage is reported as an error finding that names the file.
	for kind, code := range map[string]string{"flip": "WAL_CRC_MISMATCH", "trunc": "SEGMENT_WRONG_SIZE", "foreign": "WAL_FOREIGN_SEGMENT"} {
		res, err := plan.Check(context.Background(), plan.Request{Archive: f.variant(t, kind), Backups: f.lab.Backups, BackupID: "b1",
			Target: plan.Target{Kind: plan.TargetLatest}, Inclusive: true, Timeline: plan.TimelineSetting{Kind: "number", TLI: 1}})
		if err != nil {
			t.Fatal(err)
		}
		ok := false
		for _, fd := range res.Findings {
			if fd.Code == code && fd.Severity == "error" && strings.HasSuffix(fd.File, f.gapSeg) {
				ok = true
				if kind == "flip" && (fd.Offset == nil || *fd.Offset < 0x2000 || *fd.Offset > 0x3000) {
					t.Errorf("flip: finding offset %v, want the damaged record's offset (page 1, before 0x3000)", fd.Offset)
				}
			}
		}
		if !ok {
			t.Errorf("%s: no %s error naming %s in %v", kind, code, f.gapSeg, res.Findings)
		}
	}
}

func TestTargetsListing(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()
	st, err := store.Open(ctx, f.lab.Archive)
	if err != nil {
		t.Fatal(err)
	}
	arch, err := audit.Load(ctx, st, audit.LoadOptions{BackupsDir: f.lab.Backups})
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Targets(ctx, arch, plan.TargetsRequest{Around: f.tCommit, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	// From the summary cache, cold and warm: the same listing.
	want, _ := json.Marshal(res)
	for _, pass := range []string{"cold", "warm"} {
		cres, err := plan.Targets(ctx, arch, plan.TargetsRequest{Around: f.tCommit, Count: 2, Cache: testCache(t)})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := json.Marshal(cres); string(got) != string(want) {
			t.Fatalf("targets from the cache (%s):\n%s\nfrom the WAL:\n%s", pass, got, want)
		}
	}
	names := map[string]int{}
	dups := 0
	for _, rp := range res.RestorePoints {
		names[rp.Name]++
		if rp.Duplicate {
			dups++
			if rp.Name != "dup" {
				t.Errorf("restore point %s marked duplicate", rp.Name)
			}
		}
		if rp.Name == "rp1" && !contains(rp.Backups, "b1") {
			t.Errorf("rp1 not reachable from b1: %v", rp.Backups)
		}
	}
	// rp1 once; dup twice on timeline 1 (before the fork, so also on
	// timeline 2's path, where it is the same WAL: listed per timeline).
	if names["rp1"] < 1 || names["dup"] < 2 || dups < 1 {
		t.Fatalf("restore points %+v", res.RestorePoints)
	}
	tls := map[walname.TimelineID]bool{}
	for _, tl := range res.Timelines {
		for _, r := range tl.Ranges {
			if r.Backup == "b1" {
				tls[tl.Timeline] = true
			}
		}
	}
	if !tls[1] || !tls[2] {
		t.Fatalf("b1 should reach timelines 1 and 2: %+v", res.Timelines)
	}
	if len(res.Before) == 0 || res.Before[len(res.Before)-1].XID != f.xCommit {
		t.Fatalf("last transaction before %s should be xid %d: %+v", f.tCommit, f.xCommit, res.Before)
	}
	if len(res.After) == 0 || res.After[0].XID != f.xAbort || res.After[0].Kind != "abort" {
		t.Fatalf("first transaction after %s should be the abort of xid %d: %+v", f.tCommit, f.xAbort, res.After)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestNamesOnlyNeverContradictsDecoding: the fast names-only judgement is
// either undecided or agrees with the full decoding, on healthy, gapped,
// forked and damaged archives (damage inside a file is invisible to names,
// so there names-only may only be more optimistic about latest; that case
// is excluded and documented).
func TestNamesOnlyNeverContradictsDecoding(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()
	archives := map[string]string{"full": f.lab.Archive, "gap": f.gapDir, "nochild": f.variant(t, "nochild"), "nobs": f.variant(t, "nobs"), "trunc": f.variant(t, "trunc")}
	targets := []string{"latest", "immediate", "lsn:" + f.midLSN.String(), "lsn:" + f.tli2LSN.String(), "lsn:" + (f.b1Start + 8).String(), "name:rp1"}
	for an, dir := range archives {
		for _, bk := range []string{"b0", "b1", "b2", "bs"} {
			for _, ts := range targets {
				tg, _ := plan.ParseTarget(ts)
				req := plan.Request{Archive: dir, Backups: f.lab.Backups, BackupID: bk, Target: tg, Inclusive: true, Timeline: plan.TimelineSetting{Kind: "latest"}}
				full, err := plan.Check(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				req.NamesOnly = true
				fast, err := plan.Check(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if fast.Verdict == plan.Undecided {
					if tg.Kind != plan.TargetName && tg.Kind != plan.TargetLSN {
						t.Errorf("%s %s %s: names-only undecided: %s", an, bk, ts, fast.Reason)
					}
					continue
				}
				if fast.Verdict != full.Verdict {
					t.Errorf("%s %s %s: names-only %s (%s), decoded %s (%s)", an, bk, ts, fast.Verdict, fast.Reason, full.Verdict, full.Reason)
					continue
				}
				if tg.Kind == plan.TargetImmediate && full.Verdict == plan.Reachable && fast.Stop.LSN != full.Stop.LSN {
					t.Errorf("%s %s immediate: names-only stop %s, decoded %s", an, bk, fast.Stop.LSN, full.Stop.LSN)
				}
			}
		}
	}
}

var (
	cacheOnce sync.Once
	cacheVal  *walcache.Cache
)

// testCache is one summary cache for the package's tests.
func testCache(t *testing.T) *walcache.Cache {
	cacheOnce.Do(func() {
		dir, err := os.MkdirTemp("", "walaudit-cache")
		if err != nil {
			t.Fatal(err)
		}
		if cacheVal, err = walcache.Open(dir); err != nil {
			t.Fatal(err)
		}
	})
	return cacheVal
}

// answerKey is what must not differ between the reader and summary paths.
func answerKey(a plan.BackupAnswer) string {
	stop := "none"
	if a.Stop != nil {
		stop = fmt.Sprintf("%s %q %q", a.Stop.LSN, a.Stop.LogLine, a.Stop.Reason)
	}
	win := "none"
	if a.Window != nil {
		win = fmt.Sprintf("%s-%s %v %v", a.Window.FromLSN, a.Window.ToLSN, a.Window.FromTime, a.Window.ToTime)
	}
	return fmt.Sprintf("verdict %s\nreason %s\nstop %s\nend %s\nmissing %v\nwindow %s", a.Verdict, a.Reason, stop, a.EndOfWAL, a.Missing, win)
}

// TestPreBackupProofSameData: where walaudit proves a time target before
// a backup's start reachable from it, PostgreSQL's recovery of that backup
// and of the older b0 to the target restore the same data.
func TestPreBackupProofSameData(t *testing.T) {
	f := getFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	target := f.tLastPre.Add(10 * time.Millisecond)
	tg, err := plan.ParseTarget("time:" + ts(target))
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Check(ctx, plan.Request{Archive: f.lab.Archive, Backups: f.lab.Backups, Target: tg, Inclusive: true, Cache: testCache(t)})
	if err != nil {
		t.Fatal(err)
	}
	// bs, taken right after b1, is newer still: the newest proven backup wins.
	if res.Verdict != plan.Reachable || res.Backup == nil || res.Backup.ID != "bs" {
		t.Fatalf("verdict %s backup %+v: %s", res.Verdict, res.Backup, res.Reason)
	}
	state := func(bdir string) string {
		s, err := f.lab.Restore(ctx, bdir, fmt.Sprintf("same%d", time.Now().UnixNano()%100000), f.lab.Archive, map[string]string{
			"recovery_target_time":   pgserver.Quote(target.Format("2006-01-02 15:04:05.999999-07:00")),
			"recovery_target_action": "'pause'",
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = s.Stop(context.Background())
			_ = os.RemoveAll(s.DataDir)
		}()
		if err := s.Start(ctx, false); err != nil {
			t.Fatal(err)
		}
		if r, err := s.WaitRecovery(ctx); err != nil || r.State != pgserver.RecoveryPaused {
			t.Fatalf("recovery of %s: %+v %v\n%s", bdir, r, err, s.LogTail(20))
		}
		v, err := s.QueryString(ctx, `SELECT (SELECT count(*) || '/' || coalesce(sum(i), 0) FROM early) || ' ' || (SELECT count(*) || '/' || coalesce(sum(i), 0) FROM t)`)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	from1, from0 := state(f.bs), state(f.b0)
	if from1 != from0 || from1 == "" {
		t.Fatalf("bs restores %q, b0 restores %q at the same target", from1, from0)
	}
	t.Logf("both restore early and t as %s", from1)
}

// TestCacheSeesChangedFiles: the summary cache and the walk memo are
// keyed by every file's identity. A segment replaced by a damaged copy
// (new size or time) is re-read on the next check; bit rot that keeps
// size and time is invisible to the cache until --reverify, which must
// then report it exactly as reading the WAL does.
func TestCacheSeesChangedFiles(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()
	dir := filepath.Join(f.lab.Root, "archive-cachetest")
	if err := f.lab.User.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := pgserver.CopyTree(f.lab.Archive, dir, f.lab.User); err != nil {
		t.Fatal(err)
	}
	cdir, err := os.MkdirTemp("", "walaudit-cache")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(cdir)
	cache, err := walcache.Open(cdir)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	tg, _ := plan.ParseTarget("latest")
	tl, _ := plan.ParseTimelineSetting("1")
	check := func(c *walcache.Cache, reverify bool) plan.BackupAnswer {
		t.Helper()
		res, err := plan.Check(ctx, plan.Request{Archive: dir, Backups: f.lab.Backups, BackupID: "b1", Target: tg, Inclusive: true,
			Timeline: tl, Cache: c, Reverify: reverify})
		if err != nil {
			t.Fatal(err)
		}
		return res.Backups[0]
	}
	healthy := check(cache, false)
	if healthy.Verdict != plan.Reachable || answerKey(check(cache, false)) != answerKey(healthy) {
		t.Fatalf("healthy archive: %s (%s)", healthy.Verdict, healthy.Reason)
	}

	// Bit rot: one byte flipped inside a record, size and time kept.
	seg := filepath.Join(dir, f.gapSeg)
	st, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[0x3000] ^= 0x40
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(seg, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	reader := check(nil, false)
	if reader.Verdict == plan.Reachable {
		t.Fatalf("reading the WAL must see the flipped byte: %s", reader.Reason)
	}
	if got := check(cache, false); answerKey(got) != answerKey(healthy) {
		t.Fatalf("unchanged size and time: the cache answers as before, got\n%s", answerKey(got))
	}
	if got := check(cache, true); answerKey(got) != answerKey(reader) {
		t.Fatalf("--reverify answers\n%s\nreading the WAL answers\n%s", answerKey(got), answerKey(reader))
	}
	// After --reverify refreshed the rows, a plain warm check sees the damage too.
	if got := check(cache, false); answerKey(got) != answerKey(reader) {
		t.Fatalf("after --reverify the cache answers\n%s\nreading the WAL answers\n%s", answerKey(got), answerKey(reader))
	}

	// A replaced file (new time) is re-read without --reverify.
	b[0x3000] ^= 0x40
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	later := st.ModTime().Add(time.Minute)
	if err := os.Chtimes(seg, later, later); err != nil {
		t.Fatal(err)
	}
	if got := check(cache, false); answerKey(got) != answerKey(healthy) {
		t.Fatalf("repaired file: cache answers\n%s\nwant\n%s", answerKey(got), answerKey(healthy))
	}
}
