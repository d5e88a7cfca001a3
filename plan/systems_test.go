package plan_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/pgserver"
	"github.com/walaudit/walaudit/plan/pgserver/pgtest"
)

// TestPgUpgradeArchiveTwoSystems: a cluster is upgraded in place with the
// real pg_upgrade and goes on archiving into the same plain archive, as
// many sites do. The archive then holds two system identifiers on one
// timeline. walaudit must report the two systems, check each backup
// against its own system's WAL (no foreign-segment errors), and say where
// the old backup's recovery really ends: PostgreSQL's own recovery of it
// is the oracle.
func TestPgUpgradeArchiveTwoSystems(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := pgserver.FindBin(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bin.Has("pg_upgrade") {
		t.Fatalf("%s has no pg_upgrade", bin.Dir)
	}
	lab := pgtest.NewLab(ctx, t, bin)

	old, err := lab.InitPrimary(ctx, "old", 1, map[string]string{"autovacuum": "off"})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Exec(ctx, `CREATE TABLE a(i int, pad text)`, `INSERT INTO a SELECT g, repeat('o', 200) FROM generate_series(1, 3000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.BaseBackup(ctx, old, "bold"); err != nil {
		t.Fatal(err)
	}
	if err := old.Exec(ctx, `INSERT INTO a SELECT g, repeat('p', 200) FROM generate_series(1, 3000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.SwitchAndWait(ctx, old); err != nil {
		t.Fatal(err)
	}
	oldSys, err := old.QueryString(ctx, `SELECT system_identifier::text FROM pg_control_system()`)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	nw, err := pgserver.InitDB(ctx, bin, lab.User, filepath.Join(lab.Root, "new"), lab.Root, pgserver.InitOptions{WALSegSizeMB: 1})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := nw.Run(ctx, "pg_upgrade", "-b", bin.Dir, "-B", bin.Dir, "-d", old.DataDir, "-D", nw.DataDir,
		"-U", "postgres", "-s", lab.Root, "-p", "50432", "-P", "50433"); err != nil {
		t.Fatalf("pg_upgrade: %v\n%s", err, out)
	}
	nw.Port = old.Port // the old cluster is gone
	if err := nw.SetConf(map[string]string{
		"port": strconv.Itoa(nw.Port), "archive_mode": "on", "archive_command": pgserver.Quote(lab.ArchiveCommand()),
		"wal_level": "replica", "max_wal_senders": "5", "autovacuum": "off", "fsync": "off",
	}); err != nil {
		t.Fatal(err)
	}
	if err := nw.Start(ctx, true); err != nil {
		t.Fatal(err)
	}
	defer nw.Stop(context.Background())
	if err := nw.Exec(ctx, `INSERT INTO a SELECT g, repeat('n', 200) FROM generate_series(1, 3000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.BaseBackup(ctx, nw, "bnew"); err != nil {
		t.Fatal(err)
	}
	if err := nw.Exec(ctx, `INSERT INTO a SELECT g, repeat('m', 200) FROM generate_series(1, 3000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.SwitchAndWait(ctx, nw); err != nil {
		t.Fatal(err)
	}
	newSys, err := nw.QueryString(ctx, `SELECT system_identifier::text FROM pg_control_system()`)
	if err != nil {
		t.Fatal(err)
	}
	if newSys == oldSys {
		t.Fatalf("pg_upgrade kept the system identifier %s", oldSys)
	}
	if err := nw.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	tg, _ := plan.ParseTarget("latest")
	for _, pass := range []string{"reader", "cold", "warm"} {
		req := plan.Request{Archive: lab.Archive, Backups: lab.Backups, Target: tg, Inclusive: true}
		if pass != "reader" {
			req.Cache = testCache(t)
		}
		res, err := plan.Check(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != plan.Reachable || res.Backup == nil || res.Backup.ID != "bnew" || res.SystemID != newSys {
			t.Fatalf("%s: verdict %s backup %+v system %s: %s", pass, res.Verdict, res.Backup, res.SystemID, res.Reason)
		}
		systems := map[string][]string{}
		for _, s := range res.Systems {
			systems[s.SystemID] = append(systems[s.SystemID], s.Backups...)
		}
		if fmt.Sprint(systems[oldSys]) != "[bold]" || fmt.Sprint(systems[newSys]) != "[bnew]" || len(systems) != 2 {
			t.Fatalf("%s: systems %+v, want %s with bold and %s with bnew", pass, res.Systems, oldSys, newSys)
		}
		multiple := false
		for _, f := range res.Findings {
			if f.Severity == "error" || f.Code == "WAL_FOREIGN_SEGMENT" || f.Code == "BACKUP_SYSID_MISMATCH" {
				t.Fatalf("%s: finding %s", pass, f)
			}
			multiple = multiple || f.Code == "MULTIPLE_SYSTEMS"
		}
		if !multiple {
			t.Fatalf("%s: no MULTIPLE_SYSTEMS finding: %+v", pass, res.Findings)
		}
		var oldAns *plan.BackupAnswer
		for i := range res.Backups {
			if res.Backups[i].ID == "bold" {
				oldAns = &res.Backups[i]
			}
		}
		if oldAns == nil || oldAns.Verdict != plan.Reachable || oldAns.SystemID != oldSys || oldAns.Stop == nil {
			t.Fatalf("%s: old backup answered %+v", pass, oldAns)
		}
		if pass != "reader" {
			continue
		}
		// PostgreSQL recovers the old backup to the end of its own
		// system's WAL, where walaudit says.
		pg, log, err := lab.Recover(ctx, filepath.Join(lab.Backups, "bold"), lab.Archive, map[string]string{"recovery_target_action": "'pause'"})
		if err != nil {
			t.Fatalf("real recovery: %v\n%s", err, log)
		}
		t.Logf("walaudit: %s; PostgreSQL: %s at %s", oldAns.Reason, pg.State, pg.ReplayLSN)
		if pg.State == pgserver.RecoveryFailed || pg.ReplayLSN != oldAns.Stop.LSN {
			t.Fatalf("walaudit says the old backup's recovery ends at %s; PostgreSQL: %s at %s %v", oldAns.Stop.LSN, pg.State, pg.ReplayLSN, pg.FatalLines)
		}
		if !strings.Contains(oldAns.Reason, "belongs to database system "+newSys) {
			t.Fatalf("the old backup's answer does not say where its system's WAL ends: %s", oldAns.Reason)
		}
	}
}
