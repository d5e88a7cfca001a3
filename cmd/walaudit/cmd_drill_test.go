package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walaudit/walaudit/plan/drill"
	"github.com/walaudit/walaudit/plan/pgserver"
)

// The drill through the real CLI: exit codes 0 (pass), 1 (fail) and 2
// (refused, interrupted), the report directory, --repeat and Ctrl-C.

// drillScratch makes a short scratch parent the server's OS user can
// traverse.
func drillScratch(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "wdc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in the scratch parent %s: %s", dir, e.Name())
	}
}

// drillChecks writes a checks file expecting rows rows in t.
func drillChecks(t *testing.T, rows int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "checks.yaml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf(`checks:
  - name: rows
    sql: SELECT count(*) FROM t
    expect_value: %d
  - name: widest_pad
    sql: SELECT max(length(pad)) FROM t
    expect_value: 400
`, rows)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type reportJSON struct {
	Verdict     string            `json:"verdict"`
	KeyEvidence map[string]string `json:"key_evidence"`
	Summary     string            `json:"summary"`
}

func readReport(t *testing.T, dir string) (reportJSON, []drill.Session, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, drill.ReportJSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var r reportJSON
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", drill.ReportJSONFile, err)
	}
	f, err := os.Open(filepath.Join(dir, drill.TranscriptFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sessions, err := drill.ParseTranscript(f)
	if err != nil {
		t.Fatalf("%s does not parse: %v", drill.TranscriptFile, err)
	}
	md, err := os.ReadFile(filepath.Join(dir, drill.ReportMDFile))
	if err != nil {
		t.Fatal(err)
	}
	return r, sessions, string(md)
}

func sessionEvidence(ss []drill.Session, name string) string {
	v := ""
	for _, s := range ss {
		for _, kv := range s.Evidence {
			if kv.Name == name {
				v = kv.Value
			}
		}
	}
	return v
}

// TestDrillCLIRepeatPass drills to the restore point twice with passing
// checks: exit 0, identical evidence, one report directory per run.
func TestDrillCLIRepeatPass(t *testing.T) {
	lab := getCheckFixture(t)
	parent, reports := drillScratch(t), t.TempDir()
	out, stderr, code := run(t, "drill", "--archive", lab.Archive, "--backups", lab.Backups, "--target", "name:rp1",
		"--verify", drillChecks(t, 6000), "--scratch", parent, "--report-dir", reports, "--repeat", "2")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"==> drill run 1 of 2", "==> drill run 2 of 2", "check_rows=pass", "verdict=PASS",
		"repeat: 2 runs, evidence identical: true (stop ", "\ndrill PASSED: Recovery to name:rp1 reached the predicted stop "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	var stops []string
	for i := 1; i <= 2; i++ {
		r, ss, md := readReport(t, filepath.Join(reports, fmt.Sprintf("run-%d", i)))
		pred, act := r.KeyEvidence[drill.EvPredictedStopLSN], r.KeyEvidence[drill.EvActualStopLSN]
		if r.Verdict != "PASS" || pred == "" || pred != act || sessionEvidence(ss, drill.EvActualStopLSN) != act {
			t.Errorf("run %d: verdict %s, predicted %q, actual %q, transcript %q", i, r.Verdict, pred, act, sessionEvidence(ss, drill.EvActualStopLSN))
		}
		if !strings.Contains(md, act) || !strings.Contains(md, "recovery stopping at restore point \"rp1\"") {
			t.Errorf("run %d: report.md does not give the stop %s and PostgreSQL's stop line", i, act)
		}
		if r.KeyEvidence[drill.EvChecksPassed] != "2" || r.KeyEvidence[drill.EvFingerprint] == "" {
			t.Errorf("run %d: key evidence %v", i, r.KeyEvidence)
		}
		stops = append(stops, act)
	}
	rep, err := os.ReadFile(filepath.Join(reports, "repeat.txt"))
	if err != nil || !strings.HasPrefix(string(rep), "runs=2 identical=true (stop "+stops[0]+", timeline 1, fingerprint ") {
		t.Errorf("repeat.txt %q (%v), stops %v", rep, err, stops)
	}
	assertEmpty(t, parent)
}

// TestDrillCLIFailingCheck: a check expecting a wrong value fails the
// drill with exit 1, naming the check and both values.
func TestDrillCLIFailingCheck(t *testing.T) {
	lab := getCheckFixture(t)
	parent, reports := drillScratch(t), t.TempDir()
	out, stderr, code := run(t, "drill", "--archive", lab.Archive, "--backups", lab.Backups, "--target", "name:rp1",
		"--verify", drillChecks(t, 5999), "--scratch", parent, "--report-dir", reports)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{`check_rows="FAIL: expected \"5999\", got \"6000\""`, "check_widest_pad=pass", "verdict=FAIL"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "drill PASSED") {
		t.Errorf("a failed drill says PASSED:\n%s", out)
	}
	r, _, md := readReport(t, reports)
	if r.Verdict != "FAIL" || !strings.Contains(r.Summary, `check rows failed: expected "5999", got "6000"`) || !strings.Contains(md, "**FAIL**") {
		t.Errorf("report: verdict %s, summary %q", r.Verdict, r.Summary)
	}
	assertEmpty(t, parent)
}

// TestDrillCLIMissingSegment: a segment between the backup and the
// target is gone: exit 1 before anything is restored, the segment named;
// with --force PostgreSQL fails at the gap and its FATAL line is in the
// report.
func TestDrillCLIMissingSegment(t *testing.T) {
	lab := getCheckFixture(t)
	dir := copyArchive(t, lab)
	segs := segmentsIn(t, dir)
	gone := segs[len(segs)-2]
	if err := os.Remove(filepath.Join(dir, gone)); err != nil {
		t.Fatal(err)
	}
	parent := drillScratch(t)
	args := []string{"drill", "--archive", dir, "--backups", lab.Backups, "--target", "name:rp1", "--scratch", parent}
	out, stderr, code := run(t, args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "result: FAIL: the plan says unreachable") || !strings.Contains(out, "segment "+gone+" is missing") {
		t.Errorf("output does not name %s:\n%s", gone, out)
	}
	if strings.Contains(out, drill.EvScratchDir+"=") || strings.Contains(stderr, "restoring backup") {
		t.Errorf("something was restored:\n%s\n%s", out, stderr)
	}
	assertEmpty(t, parent)

	reports := t.TempDir()
	out, stderr, code = run(t, append(args, "--force", "--report-dir", reports)...)
	if code != 1 {
		t.Fatalf("--force: exit %d, want 1\n%s\n%s", code, out, stderr)
	}
	const fatal = "FATAL:  recovery ended before configured recovery target was reached"
	if !strings.Contains(out, fatal) || !strings.Contains(out, drill.EvRecoveryState+"=failed") {
		t.Errorf("--force output lacks PostgreSQL's %q:\n%s", fatal, out)
	}
	r, _, md := readReport(t, reports)
	if r.Verdict != "FAIL" || !strings.Contains(md, fatal) || r.KeyEvidence[drill.EvFilesRestored] == "" {
		t.Errorf("--force report: verdict %s, files restored %q; report.md has the FATAL line: %v", r.Verdict, r.KeyEvidence[drill.EvFilesRestored], strings.Contains(md, fatal))
	}
	assertEmpty(t, parent)
}

// TestDrillCLIRefusals: drills that must not start exit 2 and create
// nothing.
func TestDrillCLIRefusals(t *testing.T) {
	lab := getCheckFixture(t)
	fakeData := t.TempDir()
	if err := os.WriteFile(filepath.Join(fakeData, "PG_VERSION"), []byte("15\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inData := filepath.Join(fakeData, "base")
	if err := os.Mkdir(inData, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	parent := drillScratch(t)
	base := []string{"drill", "--archive", lab.Archive, "--backups", lab.Backups, "--target", "name:rp1"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"scratch in a data directory", []string{"--scratch", inData}, "inside the PostgreSQL data directory " + fakeData},
		{"scratch is a file", []string{"--scratch", file}, "is not a directory"},
		{"repeat 0", []string{"--scratch", parent, "--repeat", "0"}, "--repeat must be at least 1"},
		{"bad checks", []string{"--scratch", parent, "--verify", filepath.Join(t.TempDir(), "nope.yaml")}, "nope.yaml"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if pg16, err := pgserver.Provide(ctx, 16); err == nil {
		cases = append(cases, struct {
			name string
			args []string
			want string
		}{"PostgreSQL 16 binaries", []string{"--scratch", parent, "--pg-bin", pg16.Dir},
			"backup base1 is PostgreSQL 15 but the server in " + pg16.Dir + " is " + pg16.Version + ": pass --pg-bin with PostgreSQL 15 binaries"})
	} else {
		t.Logf("PostgreSQL 16 not available, no major-version mismatch case: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, code := run(t, append(base, c.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\n%s\n%s", code, out, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q does not say %q", stderr, c.want)
			}
			if strings.Contains(stderr, "restoring backup") || strings.Contains(out, "verdict=") {
				t.Errorf("a refused drill ran:\n%s\n%s", out, stderr)
			}
		})
	}
	assertEmpty(t, parent)
	assertEmpty(t, inData)
}

// TestDrillCLIInterrupt runs the real binary, with a restore_command made
// slow, and sends SIGINT while PostgreSQL replays: walaudit exits 2
// saying it was interrupted, the server is stopped, no process of the
// drill is left and the scratch directory is gone.
func TestDrillCLIInterrupt(t *testing.T) {
	lab := getCheckFixture(t)
	real := os.Getenv("WALAUDIT_BIN")
	if real == "" {
		t.Fatal("WALAUDIT_BIN is not set (TestMain builds walaudit)")
	}
	parent := drillScratch(t)
	tools := drillScratch(t)
	slow, calls := filepath.Join(tools, "slow-walaudit"), filepath.Join(tools, "calls.log")
	if err := os.WriteFile(calls, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(calls, 0o666); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\nsleep 0.5\nexec %s \"$@\"\n", calls, real)
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	segs := segmentsIn(t, lab.Archive)
	last := segs[len(segs)-1]

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, real, "drill", "--archive", lab.Archive, "--backups", lab.Backups, "--target", "name:rp1", "--scratch", parent)
	cmd.Env = append(os.Environ(), "WALAUDIT_BIN="+slow) // restore_command: the slow wrapper
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errLines []string
	scratch, pid := "", 0
	sc := bufio.NewScanner(stderr)
	into := regexp.MustCompile(`^restoring backup \S+ into (\S+)$`)
	for sc.Scan() {
		l := sc.Text()
		errLines = append(errLines, l)
		if m := into.FindStringSubmatch(l); m != nil {
			scratch = m[1]
		}
		if strings.HasPrefix(l, "starting PostgreSQL") {
			break
		}
	}
	if scratch == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the drill did not get to start PostgreSQL:\n%s", strings.Join(errLines, "\n"))
	}
	// Wait until the postmaster runs and restore_command has been called.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(scratch, "data", "postmaster.pid")); err == nil {
			l, _, _ := strings.Cut(string(b), "\n")
			pid, _ = strconv.Atoi(strings.TrimSpace(l))
		}
		if b, _ := os.ReadFile(calls); pid > 0 && len(b) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
			errLines = append(errLines, sc.Text())
		}
	}()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Errorf("the interrupted drill did not exit within 90s")
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("interrupted drill: %v, want exit 2\n%s\n%s", err, stdout.String(), strings.Join(errLines, "\n"))
	}
	if !strings.Contains(strings.Join(errLines, "\n"), "walaudit: drill interrupted: context canceled") || strings.Contains(stdout.String(), "verdict=") {
		t.Errorf("interrupted drill's output:\n%s\n%s", stdout.String(), strings.Join(errLines, "\n"))
	}
	if pid <= 0 {
		t.Fatalf("the postmaster never started")
	}
	if syscall.Kill(pid, 0) == nil {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(b), ") Z ") {
			t.Errorf("the postmaster %d still runs after the interrupted drill", pid)
		}
	}
	b, _ := os.ReadFile(calls)
	if strings.Contains(string(b), last) {
		t.Errorf("recovery had asked for the last segment %s already: not interrupted during replay\n%s", last, b)
	}
	var left string
	for end := time.Now().Add(5 * time.Second); ; {
		ps, err := exec.Command("ps", "-eo", "pid=,args=").Output()
		if err != nil {
			t.Fatal(err)
		}
		left = ""
		for _, l := range strings.Split(string(ps), "\n") {
			if strings.Contains(l, scratch) {
				left += l + "\n"
			}
		}
		if left == "" || time.Now().After(end) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if left != "" {
		t.Errorf("processes of the interrupted drill still run:\n%s", left)
	}
	assertEmpty(t, parent)
}
