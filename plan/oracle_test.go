package plan_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/pgserver"
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
	p1, err := lab.InitPrimary(ctx, "p1", 1, nil)
	if err != nil {
		return err
	}
	if err := p1.Exec(ctx, `CREATE TABLE t(i int, pad text)`, `INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g`); err != nil {
		return err
	}
	if _, err := lab.SwitchAndWait(ctx, p1); err != nil {
		return err
	}
	if fx.b1, err = lab.BaseBackup(ctx, p1, "b1"); err != nil {
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
	fx.rp = "rp1"
	if err := p1.Exec(ctx, `INSERT INTO t VALUES (-1, 'before rp')`, `SELECT pg_create_restore_point('rp1')`, `INSERT INTO t VALUES (-2, 'after rp')`); err != nil {
		return err
	}
	if _, err := lab.SwitchAndWait(ctx, p1); err != nil {
		return err
	}
	// Fork timeline 2 by a real PITR to rp1 with promotion, archiving into the same archive.
	fork, err := lab.Restore(ctx, fx.b1, "fork", "", map[string]string{
		"recovery_target_name":   "'rp1'",
		"recovery_target_action": "'promote'",
		"archive_mode":           "on",
		"archive_command":        pgserver.Quote(lab.ArchiveCommand()),
	})
	if err != nil {
		return err
	}
	if err := fork.Start(ctx, false); err != nil {
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	res, err := fork.WaitRecovery(wctx)
	wcancel()
	if err != nil {
		return err
	}
	if res.State != pgserver.RecoveryPromoted {
		return fmt.Errorf("fork did not promote: %+v\n%s", res, fork.LogTail(30))
	}
	if err := fork.WaitReady(ctx); err != nil {
		return err
	}
	if err := fork.Exec(ctx, `INSERT INTO t SELECT g, repeat('z', 300) FROM generate_series(1, 2000) g`); err != nil {
		return err
	}
	fx.tli2LSN = lsnOf(t, fork, `SELECT pg_current_wal_insert_lsn()`)
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
	if err := p1.Exec(ctx, `INSERT INTO t VALUES (-4, 'late tli1')`); err != nil {
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
	hist, err := os.ReadFile(filepath.Join(lab.Archive, "00000002.history"))
	if err != nil {
		return err
	}
	if _, err := fmt.Sscanf(string(hist), "1\t%X/%X", &a, &b); err != nil {
		return fmt.Errorf("parse 00000002.history %q: %w", hist, err)
	}
	fx.forkLSN = walname.LSN(uint64(a)<<32 | uint64(b))
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
}

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
	if c.archive == "gap" {
		archive = f.gapDir
	}
	bdir := f.b1
	if c.backup == "b2" {
		bdir = f.b2
	}
	tg, err := plan.ParseTarget(c.target)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := plan.ParseTimelineSetting(c.timeline)
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Check(ctx, plan.Request{Archive: archive, Backups: f.lab.Backups, BackupID: c.backup,
		Target: tg, Inclusive: c.inclusive, Timeline: tl})
	if err != nil {
		t.Fatalf("walaudit check: %v", err)
	}
	if len(res.Backups) != 1 {
		t.Fatalf("want one backup answer, got %d", len(res.Backups))
	}
	ans := res.Backups[0]

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
	}
	pg, log, err := f.lab.Recover(ctx, bdir, archive, settings)
	if err != nil {
		t.Fatalf("real recovery: %v\n%s", err, log)
	}
	pgOK := pg.State != pgserver.RecoveryFailed
	t.Logf("walaudit: %s (%s) stop=%v end=%s; PostgreSQL: %s replay=%s %q %v", ans.Verdict, ans.Reason, stopLSN(ans.Stop), ans.EndOfWAL, pg.State, pg.ReplayLSN, pg.StopLine, pg.FatalLines)
	if testing.Verbose() {
		t.Log(tail(log))
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
	if (ans.Verdict == plan.Reachable) != pgOK {
		t.Fatalf("walaudit says %s (%s) but PostgreSQL %s: %v\n%s", ans.Verdict, ans.Reason, pg.State, pg.FatalLines, tail(log))
	}
	if pgOK {
		if ans.Stop == nil || ans.Stop.LSN != pg.ReplayLSN {
			t.Fatalf("walaudit predicts stop at %v, PostgreSQL stopped at %s (%s)", stopLSN(ans.Stop), pg.ReplayLSN, pg.StopLine)
		}
		if res.Verdict != plan.Reachable || res.Stop == nil || res.Stop.LSN != pg.ReplayLSN {
			t.Fatalf("overall result %s / %v disagrees with the backup's answer", res.Verdict, res.Stop)
		}
	}
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
