package pgserver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLabRecovery drives a real archiving primary, a base backup and a
// real point-in-time recovery to a restore point: the harness every
// integration test relies on must itself be proven.
func TestLabRecovery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, err := FindBin(ctx, "", 0)
	if err != nil {
		t.Fatalf("PostgreSQL binaries are required: %v", err)
	}
	u, err := LookupOSUser("")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := NewLab(ctx, "", bin, u)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	p, err := lab.InitPrimary(ctx, "p1", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, `CREATE TABLE t(i int)`, `INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	bdir, err := lab.BaseBackup(ctx, p, "b1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(bdir, "backup_label")); err != nil {
		t.Fatalf("backup has no backup_label: %v", err)
	}
	if err := p.Exec(ctx, `INSERT INTO t VALUES (2)`, `SELECT pg_create_restore_point('rp1')`, `INSERT INTO t VALUES (3)`); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.SwitchAndWait(ctx, p); err != nil {
		t.Fatal(err)
	}
	res, log, err := lab.Recover(ctx, bdir, "", map[string]string{"recovery_target_name": "'rp1'"})
	if err != nil {
		t.Fatalf("recover: %v\n%s", err, log)
	}
	if res.State != RecoveryPaused {
		t.Fatalf("state %s, want paused; log:\n%s", res.State, log)
	}
	if !strings.Contains(res.StopLine, `recovery stopping at restore point "rp1"`) {
		t.Fatalf("stop line %q", res.StopLine)
	}
	if res.ReplayLSN == 0 {
		t.Fatal("no replay LSN")
	}
	res, log, err = lab.Recover(ctx, bdir, "", map[string]string{"recovery_target_name": "'nope'"})
	if err != nil {
		t.Fatal(err)
	}
	if res.State != RecoveryFailed || len(res.FatalLines) == 0 || !strings.Contains(strings.Join(res.FatalLines, "\n"), "recovery ended before configured recovery target was reached") {
		t.Fatalf("want FATAL not reached, got %+v\n%s", res, log)
	}
}
