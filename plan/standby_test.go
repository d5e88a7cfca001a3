package plan_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walaudit/walaudit/plan/pgserver/pgtest"
	"github.com/walaudit/walaudit/walname"
)

// TestStandbyBackupAgreesWithPostgreSQL: a pg_basebackup taken from a
// standby has no end-of-backup record: recovery is consistent at the
// minimum recovery point pg_control carries. walaudit's verdict and stop
// for every kind of target on such a backup must be what PostgreSQL's
// real recovery of it reaches.
func TestStandbyBackupAgreesWithPostgreSQL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab := pgtest.NewLab(ctx, t, nil)
	p, err := lab.InitPrimary(ctx, "p", 1, map[string]string{"track_commit_timestamp": "on", "autovacuum": "off", "hot_standby": "on"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, `CREATE TABLE t(i int, pad text)`, `INSERT INTO t SELECT g, repeat('a', 200) FROM generate_series(1, 3000) g`); err != nil {
		t.Fatal(err)
	}
	b0, err := lab.BaseBackup(ctx, p, "b0")
	if err != nil {
		t.Fatal(err)
	}
	// An archive-fed standby (restore_command only, as many sites run a
	// delayed or DR replica).
	sby, err := lab.Restore(ctx, b0, "sby", "", map[string]string{"hot_standby": "on", "archive_mode": "off"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(sby.DataDir, "recovery.signal"), filepath.Join(sby.DataDir, "standby.signal")); err != nil {
		t.Fatal(err)
	}
	if err := sby.Start(ctx, true); err != nil {
		t.Fatalf("standby: %v\n%s", err, sby.LogTail(20))
	}
	if err := p.Exec(ctx, `INSERT INTO t SELECT g, repeat('b', 200) FROM generate_series(1, 3000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.SwitchAndWait(ctx, p); err != nil {
		t.Fatal(err)
	}
	caughtUp := lsnOf(t, p, `SELECT pg_current_wal_lsn()`)
	for {
		if got := lsnOf(t, sby, `SELECT pg_last_wal_replay_lsn()`); got >= caughtUp-walname.LSN(1<<20) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("standby did not catch up to %s:\n%s", caughtUp, sby.LogTail(20))
		case <-time.After(200 * time.Millisecond):
		}
	}
	sb, err := lab.BaseBackup(ctx, sby, "sb")
	if err != nil {
		t.Fatal(err)
	}
	label, err := os.ReadFile(filepath.Join(sb, "backup_label"))
	if err != nil {
		t.Fatal(err)
	}
	var sbStart walname.LSN
	var a, b uint32
	if _, err := fmt.Sscanf(string(label), "START WAL LOCATION: %X/%X", &a, &b); err != nil {
		t.Fatal(err)
	}
	sbStart = walname.LSN(uint64(a)<<32 | uint64(b))
	t.Logf("standby backup label:\n%s", label)
	if err := sby.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// WAL after the backup (a second later: label times have whole
	// seconds): commits, a restore point, more rows.
	time.Sleep(1100 * time.Millisecond)
	for i := 0; i < 3; i++ {
		if err := p.Exec(ctx, fmt.Sprintf(`INSERT INTO t SELECT g, repeat('c', 300) FROM generate_series(1, 2000) g`)); err != nil {
			t.Fatal(err)
		}
	}
	mid := lsnOf(t, p, `SELECT pg_current_wal_insert_lsn()`)
	x, err := xact(ctx, p, `INSERT INTO t VALUES (-1, 'x')`)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := commitTime(ctx, p, x)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("commit of %d at %s", x, tx)
	if err := p.Exec(ctx, `SELECT pg_create_restore_point('sbrp')`, `INSERT INTO t SELECT g, repeat('d', 300) FROM generate_series(1, 2000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.SwitchAndWait(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	f := &fixture{lab: lab, sb: sb}
	cases := []oracleCase{
		{name: "immediate", target: "immediate", inclusive: true},
		{name: "latest", target: "latest", inclusive: true},
		{name: "name", target: "name:sbrp", inclusive: true},
		{name: "xid-incl", target: fmt.Sprintf("xid:%d", x), inclusive: true},
		{name: "xid-excl", target: fmt.Sprintf("xid:%d", x), inclusive: false},
		{name: "time-on-commit-excl", target: "time:" + ts(tx), inclusive: false},
		{name: "time-after-commit", target: "time:" + ts(tx.Add(time.Millisecond)), inclusive: true},
		{name: "lsn-mid-incl", target: "lsn:" + mid.String(), inclusive: true},
		{name: "lsn-mid-excl", target: "lsn:" + mid.String(), inclusive: false},
		{name: "lsn-inside-backup", target: "lsn:" + (sbStart + 8).String(), inclusive: true},
	}
	for _, c := range cases {
		c.backup = "sb"
		t.Run(c.name, func(t *testing.T) { runOracle(t, f, c) })
	}
}
