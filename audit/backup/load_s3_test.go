package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/audit/store/s3test"
	"github.com/walaudit/walaudit/plan/pgserver/pgtest"
)

// TestLoadBackupsS3 gives audit.Load an s3:// --backups location holding
// a copy of a lab's pg_basebackup outputs and checks that the backups
// merge with the archive's history files as those of the local directory
// do.
func TestLoadBackupsS3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	lab := pgtest.NewLab(ctx, t, nil)
	p, err := lab.InitPrimary(ctx, "p1", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lab.BaseBackup(ctx, p, "b1", "-Ft", "-X", "stream"); err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, `CREATE TABLE t AS SELECT 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.BaseBackup(ctx, p, "b2", "-Ft", "-X", "fetch", "-z"); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.SwitchAndWait(ctx, p); err != nil {
		t.Fatal(err)
	}

	// The fake S3 server, with the SDK isolated from the machine.
	be, endpoint := s3test.Serve(t, "bk")
	err = filepath.WalkDir(lab.Backups, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(lab.Backups, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = be.PutObject("bk", "pg/"+filepath.ToSlash(rel), map[string]string{}, bytes.NewReader(b), int64(len(b)), nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	st, err := store.Open(ctx, lab.Archive)
	if err != nil {
		t.Fatal(err)
	}
	local, err := audit.Load(ctx, st, audit.LoadOptions{BackupsDir: lab.Backups})
	if err != nil {
		t.Fatal(err)
	}
	remote, err := audit.Load(ctx, st, audit.LoadOptions{BackupsDir: fmt.Sprintf("s3://bk/pg/?endpoint=%s&path-style=true&region=us-east-1", endpoint)})
	if err != nil {
		t.Fatal(err)
	}
	if len(remote.Backups) != len(local.Backups) || len(local.Backups) != 2 {
		t.Fatalf("S3: %d backups, local %d", len(remote.Backups), len(local.Backups))
	}
	for i, lb := range local.Backups {
		rb := remote.Backups[i]
		if rb.ID != lb.ID || rb.Source != lb.Source || rb.StartLSN != lb.StartLSN || rb.StopLSN != lb.StopLSN ||
			rb.ManifestVerified != lb.ManifestVerified || !rb.ManifestVerified || rb.Path != "s3://bk/pg/"+lb.ID ||
			fmt.Sprint(rb.WALSegments) != fmt.Sprint(lb.WALSegments) || rb.Usable() != lb.Usable() {
			t.Errorf("backup %d: S3 %s %s %s..%s verified %v path %s WAL %v; local %s %s %s..%s verified %v WAL %v",
				i, rb.ID, rb.Source, rb.StartLSN, rb.StopLSN, rb.ManifestVerified, rb.Path, rb.WALSegments,
				lb.ID, lb.Source, lb.StartLSN, lb.StopLSN, lb.ManifestVerified, lb.WALSegments)
		}
		for _, name := range lb.WALSegments {
			rc, err := backup.OpenWAL(ctx, rb, name)
			if err != nil {
				t.Errorf("%s %s: %v", rb.ID, name, err)
				continue
			}
			rc.Close()
		}
	}
	if len(remote.Findings) != len(local.Findings) {
		t.Errorf("findings: S3 %v, local %v", remote.Findings, local.Findings)
	}

	// A location that does not exist is an error, naming it.
	if _, err := audit.Load(ctx, st, audit.LoadOptions{BackupsDir: fmt.Sprintf("s3://bk/nope?endpoint=%s&path-style=true&region=us-east-1", endpoint)}); err == nil {
		t.Error("missing s3 backups location accepted")
	}
}
