package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/drill"
	"github.com/walaudit/walaudit/plan/pgserver"
	"github.com/walaudit/walaudit/plan/pgserver/pgtest"
	"github.com/walaudit/walaudit/walname"
)

// archiveCopy copies the check fixture's archive into a new directory and
// returns it with its segment names, sorted, and the segment the backup
// base1 starts in (from its .backup file).
func archiveCopy(t *testing.T, lab *pgserver.Lab) (dir string, segs []string, startSeg string) {
	t.Helper()
	dir = t.TempDir()
	ents, err := os.ReadDir(lab.Archive)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(lab.Archive, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
		n, err := walname.Parse(e.Name())
		switch {
		case err != nil:
		case n.Kind == walname.KindSegment:
			segs = append(segs, e.Name())
		case n.Kind == walname.KindBackupHistory:
			startSeg = e.Name()[:24]
		}
	}
	sort.Strings(segs)
	if startSeg == "" || len(segs) < 3 || segs[len(segs)-1] <= startSeg {
		t.Fatalf("archive %s: segments %v, backup history in %q", lab.Archive, segs, startSeg)
	}
	return dir, segs, startSeg
}

// setMagic overwrites xlp_magic of the page at off in file p.
func setMagic(t *testing.T, p string, off int64, magic uint16) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], magic)
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// namesMagic reports whether a message gives the magic in hex (D1FF,
// 0xD1FF, d1ff).
func namesMagic(msg string, magic uint16) bool {
	return strings.Contains(strings.ToUpper(msg), fmt.Sprintf("%04X", magic))
}

// TestUnknownPageMagicFinding gives one page of a real PostgreSQL 15
// segment a page magic no release writes, one of the 0xD1xx family
// (0xD1FF, past 18) and one outside it (0x4B1D), in the backup's first
// segment (where the reader learns the version) and in a later one (first
// and sixth page), and wants an error finding that names the file and the
// magic in hex from inspect (the file alone), from plan.Check (an archive
// copy) and from check --format json.
func TestUnknownPageMagicFinding(t *testing.T) {
	lab := getCheckFixture(t)
	for _, magic := range []uint16{0xD1FF, 0x4B1D} {
		for _, c := range []struct {
			which string
			page  int64
		}{{"start", 0}, {"next", 0}, {"next", 5}} {
			t.Run(fmt.Sprintf("%04X_%s_page%d", magic, c.which, c.page), func(t *testing.T) {
				dir, segs, start := archiveCopy(t, lab)
				victim := start
				if c.which == "next" {
					for _, s := range segs {
						if s > start {
							victim = s
							break
						}
					}
				}
				p := filepath.Join(dir, victim)
				off := c.page * 8192
				setMagic(t, p, off, magic)
				magicCodes := []string{audit.CodeBadMagic, audit.CodeUnsupportedVersion}
				isMagicFinding := func(f finding.Finding, file string) bool {
					return f.Severity == finding.Error && slices.Contains(magicCodes, f.Code) && f.File == file &&
						namesMagic(f.Message, magic) && f.Offset != nil && *f.Offset == off
				}

				// inspect: the file on its own (exit 2 when the magic reads
				// as another PostgreSQL version, 1 for damage).
				stdout, stderr, code := run(t, "inspect", "--format", "json", p)
				var out []inspectOut
				if code == 0 || json.Unmarshal([]byte(stdout), &out) != nil || len(out) != 1 {
					t.Fatalf("inspect %s: exit %d\n%s\n%s", p, code, stdout, stderr)
				}
				found := false
				for _, f := range out[0].Findings {
					found = found || isMagicFinding(f, p)
				}
				if !found {
					t.Errorf("inspect: no error finding naming %s and magic %04X at offset %d: %+v", p, magic, off, out[0].Findings)
				}

				// plan.Check on the archive copy.
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				res, err := plan.Check(ctx, plan.Request{Archive: dir, Backups: lab.Backups, Target: plan.Target{Kind: plan.TargetLatest},
					Inclusive: true, Timeline: plan.TimelineSetting{Kind: "latest"}})
				if err != nil {
					t.Fatal(err)
				}
				if res.Verdict != plan.Unreachable || !strings.Contains(res.Reason, victim) || !namesMagic(res.Reason, magic) {
					t.Errorf("check: %s (%s)", res.Verdict, res.Reason)
				}
				found = false
				for _, f := range res.Findings {
					found = found || isMagicFinding(f, victim)
				}
				if !found {
					t.Errorf("plan.Check: no error finding naming %s and magic %04X at offset %d: %+v", victim, magic, off, res.Findings)
				}

				// The same through the command line.
				r, code := checkAsJSON(t, "--archive", dir, "--backups", lab.Backups)
				found = false
				for _, f := range r.Findings {
					found = found || (f.Severity == "error" && f.File == victim && namesMagic(f.Message, magic))
				}
				if code != exitNotOK || r.Verdict != "unreachable" || !found {
					t.Errorf("check --format json: exit %d, %s, findings %+v", code, r.Verdict, r.Findings)
				}
			})
		}
	}
}

// TestDrillCLIPGBin runs `walaudit drill` on backups of versions other
// than the server on PATH: a PostgreSQL 15 backup with --pg-bin of 13 is
// refused (exit 2) before anything is restored; a PostgreSQL 18 low-level
// backup is refused without --pg-bin (when the binaries found by default
// are not 18) and passes with --pg-bin of 18, stopping where the plan
// predicted.
func TestDrillCLIPGBin(t *testing.T) {
	if os.Getenv("WALAUDIT_BIN") == "" {
		t.Fatal("WALAUDIT_BIN is not set: TestMain could not build walaudit for restore_command")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	provide := func(major int) *pgserver.Bin {
		t.Helper()
		b, err := pgserver.Provide(ctx, major)
		if err != nil {
			if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
				t.Fatal(err)
			}
			t.Skipf("PostgreSQL %d cannot be provided: %v", major, err)
		}
		return b
	}
	scratch := func() string {
		d, err := os.MkdirTemp("/tmp", "wdc")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		os.Chmod(d, 0o755)
		return d
	}
	empty := func(d string) bool {
		ents, err := os.ReadDir(d)
		return err == nil && len(ents) == 0
	}

	t.Run("mismatch", func(t *testing.T) {
		lab := getCheckFixture(t)
		pg13 := provide(13)
		s := scratch()
		started := time.Now()
		_, stderr, code := run(t, "drill", "--archive", lab.Archive, "--backups", lab.Backups, "--target", "name:rp1",
			"--pg-bin", pg13.Dir, "--scratch", s)
		if code != 2 || !strings.Contains(stderr, "drill refused") || !strings.Contains(stderr, "is PostgreSQL 15") ||
			!strings.Contains(stderr, pg13.Dir) || !strings.Contains(stderr, "pass --pg-bin with PostgreSQL 15 binaries") {
			t.Errorf("drill of a PostgreSQL 15 backup with --pg-bin %s: exit %d, stderr %q", pg13.Dir, code, stderr)
		}
		if !empty(s) {
			t.Errorf("a refused drill wrote into --scratch %s", s)
		}
		t.Logf("refused in %s", time.Since(started).Round(time.Millisecond))
	})

	t.Run("pg18", func(t *testing.T) {
		started := time.Now()
		bin := provide(18)
		lab := pgtest.NewLab(ctx, t, bin)
		p, err := lab.InitPrimary(ctx, "p", 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Exec(ctx, `CREATE TABLE t(i int)`, `INSERT INTO t SELECT generate_series(1, 700)`); err != nil {
			t.Fatal(err)
		}
		if _, err := lab.LowLevelBackup(ctx, p, "ll"); err != nil {
			t.Fatal(err)
		}
		if err := p.Exec(ctx, `INSERT INTO t SELECT generate_series(701, 900)`); err != nil {
			t.Fatal(err)
		}
		rp, err := p.QueryString(ctx, `SELECT pg_create_restore_point('cli rp')::text`)
		if err != nil {
			t.Fatal(err)
		}
		rpEnd, err := walname.ParseLSN(rp)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Exec(ctx, `INSERT INTO t SELECT generate_series(901, 1000)`); err != nil {
			t.Fatal(err)
		}
		if _, err := lab.SwitchAndWait(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := p.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		checks := filepath.Join(t.TempDir(), "checks.yaml")
		if err := os.WriteFile(checks, []byte("checks:\n  - name: rows\n    sql: SELECT count(*) FROM t\n    expect_value: 900\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		labTime := time.Since(started)
		args := []string{"drill", "--archive", lab.Archive, "--backups", lab.Backups, "--target", "name:cli rp", "--verify", checks}

		if def, err := pgserver.FindBin(ctx, "", 0); err == nil && def.Major != 18 {
			s := scratch()
			_, stderr, code := run(t, append(args, "--scratch", s)...)
			if code != 2 || !strings.Contains(stderr, "drill refused") || !strings.Contains(stderr, "pass --pg-bin with PostgreSQL 18 binaries") || !empty(s) {
				t.Errorf("drill of a PostgreSQL 18 backup with the default PostgreSQL %s: exit %d, stderr %q", def.Version, code, stderr)
			}
		}

		s := scratch()
		d0 := time.Now()
		stdout, stderr, code := run(t, append(args, "--pg-bin", bin.Dir, "--scratch", s)...)
		drillTime := time.Since(d0)
		if code != 0 || !strings.Contains(stdout, "\ndrill PASSED: ") {
			t.Fatalf("drill --pg-bin %s: exit %d\n%s\n%s", bin.Dir, code, stdout, stderr)
		}
		sessions, err := drill.ParseTranscript(strings.NewReader(stdout[:strings.Index(stdout, "\ndrill PASSED: ")]))
		if err != nil {
			t.Fatalf("transcript: %v\n%s", err, stdout)
		}
		ev := map[string]string{} // the last value of each name: verdict is the plan's, then the drill's
		for _, ss := range sessions {
			for _, kv := range ss.Evidence {
				ev[kv.Name] = kv.Value
			}
		}
		if ev[drill.EvPredictedStopLSN] == "" || ev[drill.EvActualStopLSN] != ev[drill.EvPredictedStopLSN] || ev[drill.EvPGVersion] != bin.Version ||
			ev[drill.EvVerdict] != "PASS" || ev[drill.EvChecksPassed] != "1" {
			t.Errorf("evidence %v", ev)
		}
		if stop, err := walname.ParseLSN(ev[drill.EvActualStopLSN]); err != nil || stop.Align() != rpEnd.Align() {
			t.Errorf("stopped at %s, pg_create_restore_point returned %s", ev[drill.EvActualStopLSN], rpEnd)
		}
		if !empty(s) {
			t.Errorf("scratch directory left in %s", s)
		}
		t.Logf("PostgreSQL %s: lab %s, drill %s", bin.Version, labTime.Round(100*time.Millisecond), drillTime.Round(100*time.Millisecond))
	})
}
