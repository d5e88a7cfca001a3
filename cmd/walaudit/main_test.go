package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walaudit/walaudit/plan/pgserver"
)

// run executes the real app, as main does, and returns stdout, stderr and
// the exit code main would use.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := newApp(&out, &errb).RunContext(ctx, append([]string{"walaudit"}, args...))
	if err != nil && !isVerdict(err) {
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), exitCode(err)
}

func TestUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"check"}, `Required flag "archive" not set`},
		{[]string{"check", "--archive", dir, "--target", "time:2026-04-01 09:41:23"}, "time:2026-04-01T09:41:23Z"},
		{[]string{"check", "--archive", dir, "--target", "lsn:0/16B3748xyz"}, "invalid LSN"},
		{[]string{"check", "--archive", dir, "--target", "tomorrow"}, "want time:TIMESTAMP"},
		{[]string{"check", "--archive", dir, "--target-timeline", "zero"}, "invalid target timeline"},
		{[]string{"check", "--archive", dir, "--format", "xml"}, "invalid --format"},
		{[]string{"check", "--archive", filepath.Join(dir, "nope")}, "does not exist"},
		{[]string{"check", "--archive", dir, "--no-such-flag"}, "flag provided but not defined"},
	}
	for _, c := range cases {
		_, stderr, code := run(t, c.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", c.args, code, stderr)
		}
		if !strings.Contains(stderr, c.want) {
			t.Errorf("%v: stderr %q does not say %q", c.args, stderr, c.want)
		}
	}
}

// checkFixture is a small real archive: a primary with 1 MiB segments, a
// base backup, some commits and a restore point, all archived.
type checkFixture struct {
	lab *pgserver.Lab
	err error
}

var (
	cfOnce sync.Once
	cf     checkFixture
)

func TestMain(m *testing.M) {
	// Drills need the real binary as restore_command (the test binary
	// would run this suite again): build it once.
	var binDir string
	if os.Getenv("WALAUDIT_BIN") == "" {
		dir, err := os.MkdirTemp("", "walaudit-bin")
		if err == nil {
			binDir = dir
			bin := filepath.Join(dir, "walaudit")
			if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err == nil {
				os.Chmod(dir, 0o755)
				os.Setenv("WALAUDIT_BIN", bin)
			} else {
				fmt.Fprintf(os.Stderr, "build walaudit for drills: %v\n%s", err, out)
			}
		}
	}
	// The CLI's default summary cache goes to a directory of this run:
	// tests neither read a developer's cache nor share one with other test
	// processes. (Not XDG_CACHE_HOME: that would also empty Go's build
	// cache for the builds tests run.)
	cacheHome, err := os.MkdirTemp("", "walaudit-cache")
	if err == nil {
		os.Setenv("WALAUDIT_CACHE_DIR", cacheHome)
	}
	code := m.Run()
	if cacheHome != "" {
		os.RemoveAll(cacheHome)
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if cf.lab != nil {
		_ = cf.lab.Close()
	}
	os.Exit(code)
}

func getCheckFixture(t *testing.T) *pgserver.Lab {
	t.Helper()
	cfOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cf.err = func() error {
			bin, err := pgserver.FindBin(ctx, "", 0)
			if err != nil {
				return err
			}
			u, err := pgserver.LookupOSUser("")
			if err != nil {
				return err
			}
			if cf.lab, err = pgserver.NewLab(ctx, "", bin, u); err != nil {
				return err
			}
			p, err := cf.lab.InitPrimary(ctx, "p", 1, nil)
			if err != nil {
				return err
			}
			if err := p.Exec(ctx, `CREATE TABLE t(i int, pad text)`); err != nil {
				return err
			}
			if _, err := cf.lab.BaseBackup(ctx, p, "base1"); err != nil {
				return err
			}
			for i := 0; i < 3; i++ {
				if err := p.Exec(ctx, `INSERT INTO t SELECT g, repeat('x', 400) FROM generate_series(1, 2000) g`); err != nil {
					return err
				}
			}
			if err := p.Exec(ctx, `SELECT pg_create_restore_point('rp1')`); err != nil {
				return err
			}
			if _, err := cf.lab.SwitchAndWait(ctx, p); err != nil {
				return err
			}
			return p.Stop(ctx)
		}()
	})
	if cf.err != nil {
		t.Fatalf("build real-PostgreSQL archive: %v", cf.err)
	}
	return cf.lab
}

type checkJSON struct {
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	Target  struct {
		Type             string `json:"type"`
		Value            string `json:"value"`
		Inclusive        bool   `json:"inclusive"`
		Timeline         string `json:"timeline"`
		ResolvedTimeline int    `json:"resolved_timeline"`
	} `json:"target"`
	Backup *struct {
		ID       string `json:"id"`
		Label    string `json:"label"`
		StartLSN string `json:"start_lsn"`
		StopLSN  string `json:"stop_lsn"`
		Timeline int    `json:"timeline"`
	} `json:"backup"`
	Backups []struct {
		ID      string `json:"id"`
		Verdict string `json:"verdict"`
		Reason  string `json:"reason"`
	} `json:"backups"`
	TimelinePath []struct {
		Timeline int     `json:"timeline"`
		BeginLSN string  `json:"begin_lsn"`
		EndLSN   *string `json:"end_lsn"`
	} `json:"timeline_path"`
	Stop *struct {
		LSN    string `json:"lsn"`
		Reason string `json:"reason"`
	} `json:"stop"`
	SegmentsNeeded int      `json:"segments_needed"`
	Missing        []string `json:"missing"`
	Findings       []struct {
		Severity string `json:"severity"`
		Code     string `json:"code"`
		File     string `json:"file"`
		Message  string `json:"message"`
	} `json:"findings"`
}

func checkAsJSON(t *testing.T, args ...string) (checkJSON, int) {
	t.Helper()
	out, stderr, code := run(t, append([]string{"check", "--format", "json"}, args...)...)
	var r checkJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("check output is not JSON (%v): %s\n%s", err, out, stderr)
	}
	return r, code
}

func TestCheckHealthyArchive(t *testing.T) {
	lab := getCheckFixture(t)
	for _, tc := range []struct {
		target string
		args   []string
	}{
		{"latest", []string{"--backups", lab.Backups}},
		{"latest", nil}, // backups known only from the archive's .backup file
		{"name:rp1", []string{"--backups", lab.Backups}},
		{"immediate", nil},
	} {
		r, code := checkAsJSON(t, append([]string{"--archive", lab.Archive, "--target", tc.target}, tc.args...)...)
		if code != 0 || r.Verdict != "reachable" {
			t.Fatalf("%s %v: exit %d verdict %s: %s", tc.target, tc.args, code, r.Verdict, r.Reason)
		}
		if r.Backup == nil || r.Backup.StartLSN == "" || r.Backup.Timeline != 1 || r.Stop == nil || r.Stop.LSN == "" {
			t.Fatalf("%s: incomplete JSON: %+v", tc.target, r)
		}
		if r.Target.Type != strings.SplitN(tc.target, ":", 2)[0] || !r.Target.Inclusive || r.Target.Timeline != "latest" || r.Target.ResolvedTimeline != 1 {
			t.Fatalf("%s: target %+v", tc.target, r.Target)
		}
		if len(r.TimelinePath) != 1 || r.TimelinePath[0].EndLSN != nil || r.SegmentsNeeded < 1 || r.Missing == nil || len(r.Missing) != 0 {
			t.Fatalf("%s: path %+v segments %d missing %v", tc.target, r.TimelinePath, r.SegmentsNeeded, r.Missing)
		}
		wantID := "base1"
		if tc.args == nil {
			wantID = ".backup"
		}
		if !strings.Contains(r.Backup.ID, wantID) {
			t.Fatalf("%s: backup id %q, want it to name %q", tc.target, r.Backup.ID, wantID)
		}
	}
	// The table output is the human's version of the same verdict.
	out, _, code := run(t, "check", "--archive", lab.Archive)
	if code != 0 || !strings.Contains(out, "verdict   REACHABLE") || !strings.Contains(out, "TIMELINES") {
		t.Fatalf("table output (exit %d):\n%s", code, out)
	}
}

// copyArchive copies the fixture's archive so a test can damage it.
func copyArchive(t *testing.T, lab *pgserver.Lab) string {
	t.Helper()
	dir := filepath.Join(lab.Root, "copy-"+strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := pgserver.CopyTree(lab.Archive, dir, lab.User); err != nil {
		t.Fatal(err)
	}
	return dir
}

func segmentsIn(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var segs []string
	for _, e := range ents {
		if len(e.Name()) == 24 {
			segs = append(segs, e.Name())
		}
	}
	return segs
}

func TestCheckGapExit1(t *testing.T) {
	lab := getCheckFixture(t)
	dir := copyArchive(t, lab)
	segs := segmentsIn(t, dir)
	if len(segs) < 4 {
		t.Fatalf("fixture has only %d segments", len(segs))
	}
	// The second-to-last segment lies after the backup: removing it breaks latest.
	gone := segs[len(segs)-2]
	if err := os.Remove(filepath.Join(dir, gone)); err != nil {
		t.Fatal(err)
	}
	r, code := checkAsJSON(t, "--archive", dir, "--backups", lab.Backups)
	if code != 1 || r.Verdict != "unreachable" {
		t.Fatalf("exit %d verdict %s, want 1 unreachable: %s", code, r.Verdict, r.Reason)
	}
	if len(r.Missing) == 0 || r.Missing[0] != gone {
		t.Fatalf("missing %v, want %s first", r.Missing, gone)
	}
	found := false
	for _, f := range r.Findings {
		if f.Code == "WAL_MISSING" && f.Severity == "error" && f.File == gone {
			found = true
		}
	}
	if !found {
		t.Fatalf("no WAL_MISSING error naming %s in %+v", gone, r.Findings)
	}
	if !strings.Contains(r.Reason, gone) {
		t.Fatalf("reason %q does not name %s", r.Reason, gone)
	}
	// A target before the gap is still reachable: the gap is then only a warning.
	r, code = checkAsJSON(t, "--archive", dir, "--target", "immediate")
	if code != 0 || r.Verdict != "reachable" {
		t.Fatalf("immediate with a later gap: exit %d %s", code, r.Reason)
	}
	for _, f := range r.Findings {
		if f.Severity == "error" {
			t.Fatalf("a gap that breaks nothing asked must not be an error: %+v", f)
		}
	}
}

func TestCheckUnknownFileWarns(t *testing.T) {
	lab := getCheckFixture(t)
	dir := copyArchive(t, lab)
	if err := os.WriteFile(filepath.Join(dir, "archive_command.tmp"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, code := checkAsJSON(t, "--archive", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, r.Reason)
	}
	for _, f := range r.Findings {
		if f.Code == "UNKNOWN_FILE" && f.Severity == "warning" && f.File == "archive_command.tmp" {
			return
		}
	}
	t.Fatalf("no UNKNOWN_FILE warning: %+v", r.Findings)
}

func TestDemo(t *testing.T) {
	out, stderr, code := run(t, "demo")
	if code != 0 {
		t.Fatalf("demo exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"erroneous maintenance job", "walaudit check", "REACHABLE", "walaudit drill",
		"check_ca_muni_reservations_open_again=pass", "check_index_table_agrees_with_base_table=pass",
		"recovery stopping at restore point", "recovery stopping before commit", "verdict=PASS", "CA-MUNI reservations are open again"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "verdict=FAIL") {
		t.Fatalf("a demo drill failed:\n%s", out)
	}
}

func TestDemoFailure(t *testing.T) {
	out, stderr, code := run(t, "demo", "--failure")
	if code != 1 {
		t.Fatalf("demo --failure exit %d, want 1\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"--failure: deleting ", "WAL_MISSING", "verdict=FAIL", "UNREACHABLE"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo --failure output lacks %q:\n%s", want, out)
		}
	}
}

// TestCheckSummaryCache: a time target answered from the summary cache is
// the answer decoding gives; the cache file is created and reused.
func TestCheckSummaryCache(t *testing.T) {
	lab := getCheckFixture(t)
	cacheDir := t.TempDir()
	args := []string{"--archive", lab.Archive, "--backups", lab.Backups, "--target", "name:rp1"}
	fresh, code := checkAsJSON(t, append([]string{"--no-cache"}, args...)...)
	if code != 0 {
		t.Fatalf("no-cache: exit %d: %s", code, fresh.Reason)
	}
	for _, pass := range []string{"cold", "warm", "reverify"} {
		a := append([]string{"--cache-dir", cacheDir}, args...)
		if pass == "reverify" {
			a = append(a, "--reverify")
		}
		got, code := checkAsJSON(t, a...)
		if code != 0 || got.Verdict != fresh.Verdict || got.Stop == nil || got.Stop.LSN != fresh.Stop.LSN || got.Reason != fresh.Reason {
			t.Fatalf("%s cache: exit %d %+v, without cache %+v", pass, code, got.Stop, fresh.Stop)
		}
		ents, err := os.ReadDir(cacheDir)
		if err != nil || len(ents) == 0 {
			t.Fatalf("%s: no cache file in %s (%v)", pass, cacheDir, err)
		}
	}
}
