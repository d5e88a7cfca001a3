package drill_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/drill"
	"github.com/walaudit/walaudit/plan/pgserver"
	"github.com/walaudit/walaudit/plan/pgserver/pgtest"
	"github.com/walaudit/walaudit/walname"
)

// TestDrillVersions runs one real drill per supported major version
// (subtests pg13 … pg18, two at a time on two cores): a primary of that
// version (pgserver.Provide), a low-level base backup (backup_label, no
// backup_manifest, as pgserver.LowLevelBackup makes it), a restore point
// between two batches of rows, then drill.Run to name:<restore point>
// with PGBin set to that version's binaries and a checks file. The drill
// must pass and stop exactly where the plan predicted, which is where
// pg_create_restore_point said the record ended. A second drill of the
// same backup with the binaries of another major version must be refused
// (drill.ErrRefused) before anything is restored.
func TestDrillVersions(t *testing.T) {
	self := walauditBinary(t)
	for _, major := range pgserver.SupportedMajors() {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			drillVersion(t, major, self)
		})
	}
}

// walauditBinary returns $WALAUDIT_BIN or builds walaudit once into a
// directory the server's OS user can read: restore_command runs it (a test
// binary would run this suite instead).
func walauditBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WALAUDIT_BIN"); p != "" {
		return p
	}
	dir, err := os.MkdirTemp("", "wabin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "walaudit")
	started := time.Now()
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/walaudit/walaudit/cmd/walaudit").CombinedOutput(); err != nil {
		t.Fatalf("go build walaudit: %v\n%s", err, out)
	}
	t.Logf("built %s in %s", bin, time.Since(started).Round(100*time.Millisecond))
	return bin
}

// otherMajor is a supported major version other than major.
func otherMajor(major int) int {
	ms := pgserver.SupportedMajors()
	for i, m := range ms {
		if m == major {
			return ms[(i+1)%len(ms)]
		}
	}
	return ms[0]
}

// scratchParent makes a short parent directory for drill scratch
// directories that the server's OS user can traverse.
func scratchParent(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "wdv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func drillVersion(t *testing.T, major int, self string) {
	started := time.Now()
	bin := pgtest.Provide(t, major)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab := pgtest.NewLab(ctx, t, bin)

	// The cluster: rows, a low-level backup, rows, the restore point, rows.
	p, err := lab.InitPrimary(ctx, "p", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, `CREATE TABLE t(i int, pad text)`, `INSERT INTO t SELECT g, repeat('a', 100) FROM generate_series(1, 1000) g`); err != nil {
		t.Fatal(err)
	}
	bdir, err := lab.LowLevelBackup(ctx, p, "b1")
	if err != nil {
		t.Fatal(err)
	}
	rpName := fmt.Sprintf("before batch 3 on pg%d", major)
	if err := p.Exec(ctx, `INSERT INTO t SELECT g, repeat('b', 100) FROM generate_series(1001, 1500) g`); err != nil {
		t.Fatal(err)
	}
	rpEndText, err := p.QueryString(ctx, fmt.Sprintf(`SELECT pg_create_restore_point('%s')::text`, rpName))
	if err != nil {
		t.Fatal(err)
	}
	rpEnd, err := walname.ParseLSN(rpEndText)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, `INSERT INTO t SELECT g, repeat('c', 100) FROM generate_series(1501, 1800) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.SwitchAndWait(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	labSecs := time.Since(started)

	// The low-level copy is a plain backup to ScanDir: backup_label, no
	// manifest, its major version from PG_VERSION, nothing wrong with it.
	bs, _, err := backup.ScanDir(ctx, lab.Backups)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 || bs[0].ID != "b1" || bs[0].Path != bdir {
		t.Fatalf("ScanDir(%s): %+v", lab.Backups, bs)
	}
	b := bs[0]
	if b.Format != backup.FormatPlain || b.Manifest != nil || b.BackupLabel == nil || b.PGMajor != major || b.Control == nil || !b.Usable() {
		t.Fatalf("low-level backup as ScanDir sees it: format %q, manifest %v, label %v, PG %d, control %v, usable %v, findings %+v",
			b.Format, b.Manifest != nil, b.BackupLabel != nil, b.PGMajor, b.Control != nil, b.Usable(), b.Findings)
	}

	st, err := store.Open(ctx, lab.Archive)
	if err != nil {
		t.Fatal(err)
	}
	arch, err := audit.Load(ctx, st, audit.LoadOptions{BackupsDir: lab.Backups})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := plan.ParseTarget("name:" + rpName)
	if err != nil {
		t.Fatal(err)
	}
	req := plan.Request{Archive: lab.Archive, Backups: lab.Backups, Target: tg, Inclusive: true, Timeline: plan.TimelineSetting{Kind: "latest"}}
	res, err := plan.Evaluate(ctx, arch, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != plan.Reachable || res.Stop == nil || res.Backup == nil || res.Backup.ID != "b1" {
		t.Fatalf("plan for %s: %s (%s), stop %+v", tg, res.Verdict, res.Reason, res.Stop)
	}
	predicted := res.Stop.LSN
	if predicted.Align() != rpEnd.Align() {
		t.Errorf("plan predicts the stop at %s, pg_create_restore_point returned %s", predicted, rpEnd)
	}

	checks := filepath.Join(t.TempDir(), "checks.yaml")
	if err := os.WriteFile(checks, []byte(fmt.Sprintf(`checks:
  - name: rows_at_restore_point
    sql: SELECT count(*) FROM t
    expect_value: 1500
  - name: server_major
    sql: SELECT current_setting('server_version_num')::int / 10000
    expect_value: %d
`, major)), 0o644); err != nil {
		t.Fatal(err)
	}

	// The drill, with this version's binaries.
	parent := scratchParent(t)
	d0 := time.Now()
	out, err := drill.Run(ctx, drill.Options{Request: req, Archive: arch, VerifyFile: checks, PGBin: bin.Dir, Scratch: parent,
		Self: self, Timeout: 2 * time.Minute})
	drillSecs := time.Since(d0)
	if err != nil {
		t.Fatalf("drill with PostgreSQL %s (%s): %v", bin.Version, bin.Dir, err)
	}
	if !out.Pass {
		t.Fatalf("drill with PostgreSQL %s FAILED: %s\n%s", bin.Version, out.Failure, transcript(out))
	}
	if out.StopLSN != predicted {
		t.Errorf("drill stopped at %s, the plan predicted %s", out.StopLSN, predicted)
	}
	if got := evidence(out, drill.EvPredictedStopLSN); got != predicted.String() {
		t.Errorf("evidence %s = %q, want %s", drill.EvPredictedStopLSN, got, predicted)
	}
	if got := evidence(out, drill.EvActualStopLSN); got != predicted.String() {
		t.Errorf("evidence %s = %q, want %s", drill.EvActualStopLSN, got, predicted)
	}
	if got := evidence(out, drill.EvPGVersion); got != bin.Version {
		t.Errorf("evidence %s = %q, want %s", drill.EvPGVersion, got, bin.Version)
	}
	if got := evidence(out, drill.EvStopLine); !strings.Contains(got, `recovery stopping at restore point "`+rpName+`"`) {
		t.Errorf("stop line %q", got)
	}
	if len(out.Report.Checks) != 2 || out.Timeline != 1 {
		t.Errorf("%d checks, timeline %d", len(out.Report.Checks), out.Timeline)
	}
	if out.Scratch != "" || dirEntries(t, parent) != 0 {
		t.Errorf("scratch directory left behind: %q, %d entries in %s", out.Scratch, dirEntries(t, parent), parent)
	}

	// The same backup with another major version's binaries: refused,
	// nothing restored.
	y := otherMajor(major)
	other := pgtest.Provide(t, y)
	parent2 := scratchParent(t)
	m0 := time.Now()
	out2, err := drill.Run(ctx, drill.Options{Request: req, Archive: arch, VerifyFile: checks, PGBin: other.Dir, Scratch: parent2, Self: self})
	mismatchSecs := time.Since(m0)
	if !errors.Is(err, drill.ErrRefused) || out2 != nil {
		t.Fatalf("drill of a PostgreSQL %d backup with PostgreSQL %s binaries: outcome %+v, err %v, want an error wrapping drill.ErrRefused", major, other.Version, out2, err)
	}
	for _, want := range []string{fmt.Sprintf("backup b1 is PostgreSQL %d", major), other.Dir, other.Version, fmt.Sprintf("PostgreSQL %d binaries", major)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	if n := dirEntries(t, parent2); n != 0 {
		t.Errorf("a refused drill created %d entries in the scratch parent %s", n, parent2)
	}
	t.Logf("PostgreSQL %s: lab %s, drill %s (restore %ss, replay %ss, %s WAL files), refusal with %s %s; total %s",
		bin.Version, labSecs.Round(100*time.Millisecond), drillSecs.Round(100*time.Millisecond), evidence(out, drill.EvRestoreSeconds),
		evidence(out, drill.EvReplaySeconds), evidence(out, drill.EvWALFilesFetched), other.Version, mismatchSecs.Round(time.Millisecond),
		time.Since(started).Round(100*time.Millisecond))
}

// evidence returns the first value recorded under name in the drill's
// transcript.
func evidence(out *drill.Outcome, name string) string {
	for _, s := range out.Report.Sessions {
		for _, kv := range s.Evidence {
			if kv.Name == name {
				return kv.Value
			}
		}
	}
	return ""
}

func transcript(out *drill.Outcome) string {
	var b strings.Builder
	_ = drill.WriteTranscript(&b, out.Report.Sessions)
	return b.String()
}

func dirEntries(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
