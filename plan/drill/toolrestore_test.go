package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/layout"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/pgserver"
)

// pgbrFixture is a real pgBackRest repository: a full backup, then an
// incremental one whose manifest references the full backup's files, a
// restore point after it, in a tablespace and the default one.
type pgbrFixture struct {
	lab       *pgserver.Lab
	conf      string
	repo      string
	full      string // labels
	incr      string
	bundled   string // a full backup with repo-bundle
	rp        string
	rowsAtRP  string
	tsOID     string
	closeOnce sync.Once
}

var (
	pgbrOnce sync.Once
	pgbrFx   *pgbrFixture
	pgbrErr  error
)

func pgbrLab(t *testing.T) *pgbrFixture {
	t.Helper()
	if _, err := exec.LookPath("pgbackrest"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgbackrest is not installed: %v", err)
		}
		t.Skipf("pgbackrest is not installed (apt-get install -y pgbackrest): %v", err)
	}
	pgbrOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		pgbrFx, pgbrErr = buildPgbrFixture(ctx)
	})
	if pgbrErr != nil {
		t.Fatalf("pgBackRest fixture: %v", pgbrErr)
	}
	return pgbrFx
}

func (f *pgbrFixture) pgbackrest(ctx context.Context, args ...string) (string, error) {
	cmd := f.lab.User.Command("pgbackrest", f.lab.Root, append([]string{"--config=" + f.conf, "--stanza=demo"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("pgbackrest %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

func buildPgbrFixture(ctx context.Context) (*pgbrFixture, error) {
	bin, err := pgserver.FindBin(ctx, "", 0)
	if err != nil {
		return nil, err
	}
	u, err := pgserver.LookupOSUser("")
	if err != nil {
		return nil, err
	}
	l, err := pgserver.NewLab(ctx, "", bin, u)
	if err != nil {
		return nil, err
	}
	f := &pgbrFixture{lab: l, rp: "tool rp"}
	ok := false
	defer func() {
		if !ok {
			l.Close()
		}
	}()
	pgbr := filepath.Join(l.Root, "pgbr")
	f.conf, f.repo = filepath.Join(pgbr, "pgbackrest.conf"), filepath.Join(pgbr, "repo")
	ts := filepath.Join(l.Root, "ts")
	for _, d := range []string{pgbr, f.repo, filepath.Join(pgbr, "log"), filepath.Join(pgbr, "lock"), filepath.Join(pgbr, "spool"), ts} {
		if err := u.MkdirAll(d, 0o750); err != nil {
			return nil, err
		}
	}
	archive := fmt.Sprintf("pgbackrest --config=%s --stanza=demo archive-push %%p && cp %%p %s/%%f", f.conf, l.Archive)
	p, err := l.InitPrimary(ctx, "p1", 1, map[string]string{"archive_command": pgserver.Quote(archive)})
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("[global]\nrepo1-path=%s\nlog-path=%s/log\nlock-path=%s/lock\nspool-path=%s/spool\nlog-level-console=warn\nlog-level-file=off\nstart-fast=y\ncompress-type=zst\nrepo1-retention-full=9\n\n[demo]\npg1-path=%s\npg1-socket-path=%s\npg1-port=%d\n",
		f.repo, pgbr, pgbr, pgbr, p.DataDir, p.SocketDir, p.Port)
	if err := os.WriteFile(f.conf, []byte(conf), 0o640); err != nil {
		return nil, err
	}
	if err := u.Chown(f.conf); err != nil {
		return nil, err
	}
	if err := p.Exec(ctx,
		"CREATE TABLESPACE ts LOCATION '"+ts+"'",
		"CREATE TABLE t_full (i int, pad text) TABLESPACE ts",
		"INSERT INTO t_full SELECT g, repeat('f', 50) FROM generate_series(1, 5000) g",
		"CREATE TABLE t_base (i int)",
		"INSERT INTO t_base SELECT generate_series(1, 3000)"); err != nil {
		return nil, err
	}
	if f.tsOID, err = p.QueryString(ctx, "SELECT oid::text FROM pg_tablespace WHERE spcname = 'ts'"); err != nil {
		return nil, err
	}
	if _, err := f.pgbackrest(ctx, "stanza-create"); err != nil {
		return nil, err
	}
	if _, err := f.pgbackrest(ctx, "backup", "--type=full"); err != nil {
		return nil, err
	}
	// Only t_incr changes: the incremental backup references everything
	// else from the full one.
	if err := p.Exec(ctx, "CREATE TABLE t_incr (i int)", "INSERT INTO t_incr SELECT generate_series(1, 2000)"); err != nil {
		return nil, err
	}
	if _, err := f.pgbackrest(ctx, "backup", "--type=incr"); err != nil {
		return nil, err
	}
	if err := p.Exec(ctx, "INSERT INTO t_incr SELECT generate_series(2001, 2500)",
		"SELECT pg_create_restore_point('"+f.rp+"')",
		"INSERT INTO t_incr SELECT generate_series(2501, 4000)"); err != nil {
		return nil, err
	}
	f.rowsAtRP = "2500"
	// A bundled full backup (repo-bundle): small files packed into bundle/<n>.
	if _, err := f.pgbackrest(ctx, "backup", "--type=full", "--repo1-bundle"); err != nil {
		return nil, err
	}
	if _, err := l.SwitchAndWait(ctx, p); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(f.repo, "backup", "demo"))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		switch n := e.Name(); {
		case e.IsDir() && strings.HasSuffix(n, "F") && !strings.Contains(n, "_") && f.full == "":
			f.full = n
		case e.IsDir() && strings.HasSuffix(n, "F") && !strings.Contains(n, "_"):
			f.bundled = n
		case e.IsDir() && strings.HasSuffix(n, "I"):
			f.incr = n
		}
	}
	if f.full == "" || f.incr == "" {
		return nil, fmt.Errorf("pgBackRest did not make a full and an incremental backup: %v", ents)
	}
	if err := p.Stop(ctx); err != nil {
		return nil, err
	}
	ok = true
	return f, nil
}

func (f *pgbrFixture) load(t *testing.T, repo string) *audit.Archive {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	a, err := audit.Load(ctx, st, audit.LoadOptions{ScanOptions: audit.ScanOptions{Layout: "auto"}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestToolRestorePgBackRest drills, restores and attacks a real pgBackRest
// repository; the lab is removed at the end.
func TestToolRestorePgBackRest(t *testing.T) {
	f := pgbrLab(t)
	t.Cleanup(func() { f.closeOnce.Do(func() { f.lab.Close() }) })
	t.Run("drill", func(t *testing.T) { testToolDrill(t, f) })
	t.Run("verifies", func(t *testing.T) { testToolVerifies(t, f) })
	t.Run("escapes", func(t *testing.T) { testToolEscapes(t, f) })
	t.Run("bundle", func(t *testing.T) { testToolBundle(t, f) })
	t.Run("pgbackrest-restore", func(t *testing.T) { testToolPgBackRestCommand(t, f) })
}

func backupByID(t *testing.T, a *audit.Archive, id string) *backup.Backup {
	t.Helper()
	for _, b := range a.Backups {
		if b.ID == id {
			return b
		}
	}
	t.Fatalf("backup %s not loaded", id)
	return nil
}

func testToolDrill(t *testing.T, f *pgbrFixture) {
	a := f.load(t, f.repo)
	b := backupByID(t, a, f.incr)
	if b.Source != layout.SourcePgBackRest || !IsToolBackup(b) {
		t.Fatalf("backup %s: source %q format %q", b.ID, b.Source, b.Format)
	}
	if m := a.BackupMeta[f.incr]; m == nil || m.Prior != f.full {
		t.Fatalf("incremental backup meta: %+v", m)
	}
	tg, err := plan.ParseTarget("name:" + f.rp)
	if err != nil {
		t.Fatal(err)
	}
	checks := filepath.Join(t.TempDir(), "checks.yaml")
	if err := os.WriteFile(checks, []byte(fmt.Sprintf(`checks:
  - name: incr_rows
    sql: SELECT count(*) FROM t_incr
    expect_value: %s
  - name: full_rows_in_tablespace
    sql: SELECT count(*) FROM t_full
    expect_value: 5000
  - name: base_rows
    sql: SELECT sum(i) FROM t_base
    expect_value: 4501500
`, f.rowsAtRP)), 0o644); err != nil {
		t.Fatal(err)
	}
	req := plan.Request{Archive: f.repo, BackupID: f.incr, Target: tg, Inclusive: true, Timeline: plan.TimelineSetting{Kind: "latest"}}
	parent := drillParent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, err := Run(ctx, Options{Request: req, Archive: a, Scratch: parent, Self: drillBinary(t), VerifyFile: checks, Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("transcript:\n%s", transcriptOf(out))
	if !out.Pass {
		t.Fatalf("drill failed: %s", out.Failure)
	}
	if got, want := out.StopLSN.String(), ev(out, EvPredictedStopLSN); want == "" || got != want {
		t.Fatalf("stop LSN %s, predicted %q", got, want)
	}
	if ev(out, EvBackupID) != f.incr {
		t.Fatalf("backup used: %s", ev(out, EvBackupID))
	}
	if ev(out, EvTablespacesRemapped) != "1" {
		t.Fatalf("tablespaces remapped: %s", ev(out, EvTablespacesRemapped))
	}
	assertEmptyDir(t, parent)
}

// copyRepo copies the fixture's repository so that a test can damage it.
func (f *pgbrFixture) copyRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if out, err := exec.Command("cp", "-a", f.repo, dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dir
}

func testToolVerifies(t *testing.T, f *pgbrFixture) {
	user, err := pgserver.LookupOSUser("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Intact: every file matches, the tablespace is remapped, backup_label
	// and the referenced files are there.
	a := f.load(t, f.repo)
	scratch := filepath.Join(drillParent(t), "s")
	r, err := RestoreFromTool(ctx, a, backupByID(t, a, f.incr), scratch, user)
	if err != nil {
		t.Fatal(err)
	}
	if r.Verified != r.Files || r.Files == 0 || len(r.Problems) > 0 {
		t.Fatalf("verified %d of %d files: %v", r.Verified, r.Files, r.Problems)
	}
	for _, p := range []string{"backup_label", "PG_VERSION", "global/pg_control", "pg_wal/archive_status", "pg_stat_tmp"} {
		if _, err := os.Stat(filepath.Join(r.DataDir, p)); err != nil {
			t.Errorf("restored data directory lacks %s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(r.DataDir, "tablespace_map")); err == nil || !r.TablespaceMapRemoved {
		t.Errorf("tablespace_map not removed")
	}
	link, err := os.Readlink(filepath.Join(r.DataDir, "pg_tblspc", f.tsOID))
	if err != nil || !strings.HasPrefix(link, r.Scratch+"/tblspc/") {
		t.Errorf("pg_tblspc/%s -> %q (%v), want into the scratch directory", f.tsOID, link, err)
	}
	if c := RestoredControl(r); c == nil {
		t.Errorf("restored pg_control unreadable")
	}

	// A referenced file of the full backup damaged: the incremental
	// restore names it.
	repo := f.copyRepo(t)
	ver := filepath.Join(repo, "backup", "demo", f.full, "pg_data", "PG_VERSION.zst")
	if _, err := os.Stat(ver); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(repo, "backup", "demo", f.incr, "pg_data", "PG_VERSION.zst")
	if _, err := os.Stat(zero); err == nil {
		t.Fatalf("PG_VERSION was copied again by the incremental backup; the test expects a reference")
	}
	// Same length, different content: a valid zstd frame of "14\n".
	if err := os.WriteFile(ver, zstdOf(t, []byte("14\n")), 0o640); err != nil {
		t.Fatal(err)
	}

	a2 := f.load(t, repo)
	r2, err := RestoreFromTool(ctx, a2, backupByID(t, a2, f.incr), filepath.Join(drillParent(t), "s"), user)
	if !errors.Is(err, ErrVerification) || r2 == nil || len(r2.Problems) != 1 || !strings.Contains(r2.Problems[0], "pg_data/PG_VERSION") {
		t.Fatalf("damaged referenced file: err %v, restored %+v", err, r2)
	}
	t.Logf("damaged: %v", err)
}

// testToolEscapes feeds a manifest whose references and
// names try to leave the scratch directory.
func testToolEscapes(t *testing.T, f *pgbrFixture) {
	user, err := pgserver.LookupOSUser("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"reference", `"reference":"` + "FULL" + `"`, `"reference":"../../../etc"`},
		{"name", "pg_data/PG_VERSION=", "pg_data/../../escape="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := f.copyRepo(t)
			for _, mf := range []string{"backup.manifest", "backup.manifest.copy"} {
				p := filepath.Join(repo, "backup", "demo", f.incr, mf)
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				from := strings.ReplaceAll(tc.from, "FULL", f.full)
				s := strings.Replace(string(data), from, strings.ReplaceAll(tc.to, "FULL", f.full), 1)
				if s == string(data) {
					t.Fatalf("%q not in the manifest", from)
				}
				// Drop the checksum line: the damage must be caught by
				// the path rules, not by the manifest checksum.
				var kept []string
				for _, l := range strings.Split(s, "\n") {
					if !strings.HasPrefix(l, "backrest-checksum=") {
						kept = append(kept, l)
					}
				}
				if err := os.WriteFile(p, []byte(strings.Join(kept, "\n")), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			a := f.load(t, repo)
			parent := drillParent(t)
			_, err := RestoreFromTool(context.Background(), a, backupByID(t, a, f.incr), filepath.Join(parent, "s"), user)
			if !errors.Is(err, ErrUnsafeEntry) {
				t.Fatalf("got %v, want ErrUnsafeEntry", err)
			}
			if _, err := os.Stat(filepath.Join(parent, "escape")); err == nil {
				t.Fatal("a file escaped the scratch directory")
			}
		})
	}
}

func zstdOf(t *testing.T, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

func testToolBundle(t *testing.T, f *pgbrFixture) {
	if _, err := os.Stat(filepath.Join(f.repo, "backup", "demo", f.bundled, "bundle", "1")); err != nil {
		t.Fatalf("backup %s has no bundle: %v", f.bundled, err)
	}
	user, err := pgserver.LookupOSUser("")
	if err != nil {
		t.Fatal(err)
	}
	a := f.load(t, f.repo)
	r, err := RestoreFromTool(context.Background(), a, backupByID(t, a, f.bundled), filepath.Join(drillParent(t), "s"), user)
	if err != nil {
		t.Fatal(err)
	}
	if r.Verified != r.Files || r.Files == 0 || len(r.Problems) > 0 {
		t.Fatalf("verified %d of %d files: %v", r.Verified, r.Files, r.Problems)
	}
	if got, err := os.ReadFile(filepath.Join(r.DataDir, "PG_VERSION")); err != nil || len(got) == 0 {
		t.Fatalf("PG_VERSION: %q %v", got, err)
	}
}

// testToolPgBackRestCommand runs the fallback used for backups walaudit
// does not restore itself (block incremental, encrypted).
func testToolPgBackRestCommand(t *testing.T, f *pgbrFixture) {
	user, err := pgserver.LookupOSUser("")
	if err != nil {
		t.Fatal(err)
	}
	a := f.load(t, f.repo)
	r, err := runPgBackRestRestore(context.Background(), a.Inv.Store, backupByID(t, a, f.incr), filepath.Join(drillParent(t), "s"), user, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"backup_label", "PG_VERSION", "global/pg_control"} {
		if _, err := os.Stat(filepath.Join(r.DataDir, p)); err != nil {
			t.Errorf("restored data directory lacks %s: %v", p, err)
		}
	}
	link, err := os.Readlink(filepath.Join(r.DataDir, "pg_tblspc", f.tsOID))
	if err != nil || !strings.HasPrefix(link, r.Scratch+"/tblspc/") {
		t.Errorf("pg_tblspc/%s -> %q (%v), want into the scratch directory", f.tsOID, link, err)
	}
	if r.Files == 0 || len(r.Tablespaces) != 1 {
		t.Errorf("restored %+v", r)
	}
}
