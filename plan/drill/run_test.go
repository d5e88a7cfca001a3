package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/pgserver"
	"github.com/walaudit/walaudit/walname"
)

// The drill's integration tests: drill.Run end to end with a real
// PostgreSQL server replaying the fixture's archive through the real
// walaudit binary as restore_command.

var (
	walauditOnce sync.Once
	walauditPath string
	walauditErr  error
	walauditDir  string // removed by TestMain
)

// drillBinary returns the walaudit binary for restore_command:
// $WALAUDIT_BIN, or one built once for the whole package (and published
// in $WALAUDIT_BIN for the other tests). Never the test binary.
func drillBinary(t *testing.T) string {
	t.Helper()
	walauditOnce.Do(func() {
		if p := os.Getenv("WALAUDIT_BIN"); p != "" {
			walauditPath = p
			return
		}
		dir, err := os.MkdirTemp("", "wabin")
		if err != nil {
			walauditErr = err
			return
		}
		walauditDir = dir
		if err := os.Chmod(dir, 0o755); err != nil {
			walauditErr = err
			return
		}
		bin := filepath.Join(dir, "walaudit")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/walaudit/walaudit/cmd/walaudit").CombinedOutput(); err != nil {
			walauditErr = fmt.Errorf("go build walaudit: %v\n%s", err, out)
			return
		}
		walauditPath = bin
		os.Setenv("WALAUDIT_BIN", bin)
	})
	if walauditErr != nil {
		t.Fatal(walauditErr)
	}
	return walauditPath
}

// drillParent makes a short scratch parent the server's OS user can
// traverse, removed after the test.
func drillParent(t *testing.T) string {
	t.Helper()
	d := newScratch(t)
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// loadArchive loads an archive directory with the fixture's backups.
func (f *fixture) loadArchive(t *testing.T, dir string) *audit.Archive {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := audit.Load(ctx, st, audit.LoadOptions{BackupsDir: f.lab.Backups})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var (
	labArchOnce sync.Once
	labArch     *audit.Archive
)

// labArchive is the fixture's own archive, loaded once (drills only read it).
func (f *fixture) labArchive(t *testing.T) *audit.Archive {
	t.Helper()
	labArchOnce.Do(func() { labArch = f.loadArchive(t, f.lab.Archive) })
	if labArch == nil {
		t.Fatal("the fixture's archive did not load")
	}
	return labArch
}

// copyLabArchive copies the fixture's archive so that a test can damage it.
func (f *fixture) copyLabArchive(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(newScratch(t), "archive")
	if err := f.user.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := pgserver.CopyTree(f.lab.Archive, dir, f.user); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (f *fixture) request(t *testing.T, archive, backupID, target string, inclusive bool) plan.Request {
	t.Helper()
	tg, err := plan.ParseTarget(target)
	if err != nil {
		t.Fatal(err)
	}
	return plan.Request{Archive: archive, Backups: f.lab.Backups, BackupID: backupID, Target: tg, Inclusive: inclusive,
		Timeline: plan.TimelineSetting{Kind: "latest"}}
}

// writeChecks writes a checks file: rows in t_ts (in the tablespace),
// rows found through its index, and the shop database's customers.
func writeChecks(t *testing.T, rows int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "checks.yaml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf(`checks:
  - name: t_ts_rows
    sql: SELECT count(*) FROM t_ts
    expect_value: %d
  - name: t_ts_by_index
    sql: SELECT count(*) FROM t_ts WHERE id BETWEEN 1 AND 1000
    expect_value: 1000
  - name: customers
    database: shop
    sql: SELECT id, email, deleted_at FROM customers ORDER BY id
    expect_rows:
      - [1, alice@example.com, null]
      - [2, bob@example.com, "2026-03-01 10:00:00+00"]
      - [3, null, null]
`, rows)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runDrill runs drill.Run with the test's defaults (the fixture's archive
// loaded once per call, the real walaudit binary, a fresh scratch parent).
func (f *fixture) runDrill(t *testing.T, opts Options) (*Outcome, error) {
	t.Helper()
	if opts.Archive == nil {
		if opts.Request.Archive != f.lab.Archive {
			t.Fatal("runDrill: pass the loaded archive of a copy")
		}
		opts.Archive = f.labArchive(t)
	}
	if opts.Scratch == "" {
		opts.Scratch = drillParent(t)
	}
	if opts.Self == "" {
		opts.Self = drillBinary(t)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	started := time.Now()
	out, err := Run(ctx, opts)
	if out != nil {
		t.Logf("drill to %s: %s (plan %ss, restore %ss, replay %ss, verify %ss)", opts.Request.Target, time.Since(started).Round(10*time.Millisecond),
			ev(out, EvPlanSeconds), ev(out, EvRestoreSeconds), ev(out, EvReplaySeconds), ev(out, EvVerifySeconds))
	}
	return out, err
}

// ev returns the last value recorded under name in a drill's evidence.
func ev(out *Outcome, name string) string {
	v := ""
	for _, s := range out.Report.Sessions {
		for _, kv := range s.Evidence {
			if kv.Name == name {
				v = kv.Value
			}
		}
	}
	return v
}

// hasEv reports whether name was recorded at all.
func hasEv(out *Outcome, name string) bool {
	for _, s := range out.Report.Sessions {
		for _, kv := range s.Evidence {
			if kv.Name == name {
				return true
			}
		}
	}
	return false
}

func transcriptOf(out *Outcome) string {
	var b strings.Builder
	_ = WriteTranscript(&b, out.Report.Sessions)
	return b.String()
}

// assertEmptyDir fails unless dir exists and is empty: a drill leaves
// nothing in its scratch parent.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("scratch parent %s is not empty after the drill: %v", dir, names)
	}
}

// TestRunTargets drills the fixture's archive to every kind of target,
// each from another backup format, with verification checks that must
// all pass: PostgreSQL stops exactly where the plan predicted, with the
// data expected there, the tablespace remapped into the scratch
// directory, and nothing left behind or written outside it.
func TestRunTargets(t *testing.T) {
	f := realFixture(t)
	drillBinary(t)
	cases := []struct {
		name, backup, target string
		inclusive            bool
		rows                 int
		stopLine             string
		state                string
	}{
		{"name", "", "name:" + f.rpName, true, 1200, `recovery stopping at restore point "` + f.rpName + `"`, "paused"},
		{"time", "plain", "time:" + f.midTime, true, 1200, "recovery stopping before commit of transaction " + f.xid2, "paused"},
		{"xid", "tar", "xid:" + f.xid1, false, 1000, "recovery stopping before commit of transaction " + f.xid1, "paused"},
		{"lsn", "tar_gz_stream", "lsn:" + f.midLSN, true, 1200, `recovery stopping after WAL location (LSN) "` + f.midLSN + `"`, "paused"},
		{"immediate", "tar_lz4_fetch", "immediate", true, 1000, "recovery stopping after reaching consistency", "paused"},
		{"latest", "", "latest", true, 1500, "", "promoted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.backup != "" {
				f.backup(t, c.backup)
			}
			parent := drillParent(t)
			var progress bytes.Buffer
			out, err := f.runDrill(t, Options{Request: f.request(t, f.lab.Archive, c.backup, c.target, c.inclusive),
				VerifyFile: writeChecks(t, c.rows), Scratch: parent, Progress: &progress})
			if err != nil {
				t.Fatalf("drill: %v", err)
			}
			if !out.Pass || out.Failure != "" {
				t.Fatalf("drill FAILED: %s\n%s", out.Failure, transcriptOf(out))
			}
			pred, act := ev(out, EvPredictedStopLSN), ev(out, EvActualStopLSN)
			if pred == "" || pred != act || act != out.StopLSN.String() || out.StopLSN == 0 {
				t.Errorf("predicted_stop_lsn %q, actual_stop_lsn %q, Outcome.StopLSN %s: want all equal", pred, act, out.StopLSN)
			}
			if got := ev(out, EvRecoveryState); got != c.state {
				t.Errorf("recovery_state %q, want %q", got, c.state)
			}
			if got := ev(out, EvStopLine); !strings.HasPrefix(got, c.stopLine) {
				t.Errorf("stop_line %q, want it to start with %q", got, c.stopLine)
			}
			if c.backup != "" && ev(out, EvBackupID) != c.backup {
				t.Errorf("backup_id %q, want %q", ev(out, EvBackupID), c.backup)
			}
			if got := ev(out, EvTarget); got != f.request(t, "", "", c.target, true).Target.String() {
				t.Errorf("target evidence %q for %s", got, c.target)
			}
			for name, want := range map[string]string{
				EvVerdict: "PASS", EvChecksPassed: "3", EvChecksFailed: "0", EvTablespacesRemapped: "1", EvManifestProblems: "0",
				"check_t_ts_rows": "pass", "check_customers": "pass", EvTimeline: "1", EvPGVersion: f.bin.Version,
			} {
				if got := ev(out, name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if n, err := strconv.Atoi(ev(out, EvWALFilesFetched)); err != nil || n < 1 {
				t.Errorf("wal_files_fetched %q", ev(out, EvWALFilesFetched))
			}
			if out.Timeline != 1 || out.Report.Fingerprint == "" || ev(out, EvFingerprint) != out.Report.Fingerprint || len(out.Report.Checks) != 3 {
				t.Errorf("timeline %d, fingerprint %q (evidence %q), %d checks", out.Timeline, out.Report.Fingerprint, ev(out, EvFingerprint), len(out.Report.Checks))
			}
			scratch := ev(out, EvScratchDir)
			if filepath.Dir(scratch) != parent || !strings.HasPrefix(filepath.Base(scratch), "wadrill") {
				t.Errorf("scratch_dir %q is not a new directory in %s", scratch, parent)
			}
			if out.Scratch != "" {
				t.Errorf("Outcome.Scratch %q without Keep", out.Scratch)
			}
			assertEmptyDir(t, parent)
			if !strings.Contains(progress.String(), "restoring backup") || !strings.Contains(progress.String(), "starting PostgreSQL "+f.bin.Version) {
				t.Errorf("progress lines: %q", progress.String())
			}
			if !strings.Contains(out.Report.Summary, "reached the predicted stop "+out.StopLSN.String()) || !strings.Contains(out.Report.Summary, "all 3 verification checks passed") {
				t.Errorf("summary %q", out.Report.Summary)
			}
			if c.name == "name" {
				checkReportFiles(t, out, "PASS")
			}
		})
	}
	f.assertLabUnchanged(t)
}

// checkReportFiles writes the report and reads it back: the transcript
// parses to the same sessions, report.json carries the verdict and the
// key evidence, report.md the stop LSN.
func checkReportFiles(t *testing.T, out *Outcome, verdict string) {
	t.Helper()
	dir := t.TempDir()
	if err := WriteReport(dir, out.Report); err != nil {
		t.Fatal(err)
	}
	tf, err := os.Open(filepath.Join(dir, TranscriptFile))
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	sessions, err := ParseTranscript(tf)
	if err != nil {
		t.Fatalf("%s does not parse: %v", TranscriptFile, err)
	}
	if !reflect.DeepEqual(sessions, out.Report.Sessions) {
		t.Errorf("%s parses to %+v\nwant %+v", TranscriptFile, sessions, out.Report.Sessions)
	}
	if sessions[len(sessions)-1].Command != "verdict" || sessions[len(sessions)-1].Evidence[0] != (KV{EvVerdict, verdict}) {
		t.Errorf("last session %+v, want the verdict %s", sessions[len(sessions)-1], verdict)
	}
	js, err := os.ReadFile(filepath.Join(dir, ReportJSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var rj struct {
		Verdict     string            `json:"verdict"`
		KeyEvidence map[string]string `json:"key_evidence"`
		Summary     string            `json:"summary"`
		Checks      []json.RawMessage `json:"checks"`
	}
	if err := json.Unmarshal(js, &rj); err != nil {
		t.Fatalf("%s: %v", ReportJSONFile, err)
	}
	if rj.Verdict != verdict || rj.KeyEvidence[EvVerdict] != verdict || rj.Summary != out.Report.Summary || len(rj.Checks) != len(out.Report.Checks) {
		t.Errorf("%s: verdict %q, key_evidence %v, summary %q, %d checks", ReportJSONFile, rj.Verdict, rj.KeyEvidence, rj.Summary, len(rj.Checks))
	}
	if verdict == "PASS" && (rj.KeyEvidence[EvActualStopLSN] != out.StopLSN.String() || rj.KeyEvidence[EvPredictedStopLSN] != out.StopLSN.String()) {
		t.Errorf("%s: key evidence %v, want both stop LSNs %s", ReportJSONFile, rj.KeyEvidence, out.StopLSN)
	}
	md, err := os.ReadFile(filepath.Join(dir, ReportMDFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(md), "# walaudit drill: "+verdict) {
		t.Errorf("%s starts %q", ReportMDFile, string(md)[:min(len(md), 60)])
	}
	if verdict == "PASS" && !strings.Contains(string(md), "| "+EvActualStopLSN+" | "+out.StopLSN.String()+" |") {
		t.Errorf("%s does not give the stop LSN %s:\n%s", ReportMDFile, out.StopLSN, md)
	}
}

// progressHook records a drill's progress lines and runs an action, once,
// on the first line starting with a prefix.
type progressHook struct {
	mu      sync.Mutex
	lines   []string
	actions map[string]func(line string)
}

func (h *progressHook) on(prefix string, fn func(line string)) *progressHook {
	if h.actions == nil {
		h.actions = map[string]func(string){}
	}
	h.actions[prefix] = fn
	return h
}

func (h *progressHook) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	line := strings.TrimRight(string(p), "\n")
	h.lines = append(h.lines, line)
	for prefix, fn := range h.actions {
		if strings.HasPrefix(line, prefix) {
			delete(h.actions, prefix)
			fn(line)
		}
	}
	return len(p), nil
}

func (h *progressHook) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.lines, "\n")
}

// scratchOf returns the scratch directory named by a "restoring backup
// ID into DIR" progress line.
func scratchOf(line string) string {
	_, dir, _ := strings.Cut(line, " into ")
	return dir
}

// assertNothingRestored fails if a drill got past planning.
func assertNothingRestored(t *testing.T, out *Outcome, parent string) {
	t.Helper()
	if hasEv(out, EvScratchDir) || hasEv(out, EvFilesRestored) || hasEv(out, EvActualStopLSN) {
		t.Errorf("the drill restored although the plan said no:\n%s", transcriptOf(out))
	}
	assertEmptyDir(t, parent)
}

// planFor evaluates a request on the fixture's intact archive.
func (f *fixture) planFor(t *testing.T, req plan.Request) *plan.Result {
	t.Helper()
	res, err := plan.Evaluate(context.Background(), f.labArchive(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != plan.Reachable || len(res.Backups) == 0 || res.Stop == nil {
		t.Fatalf("the fixture's plan for %s: %s (%s)", req.Target, res.Verdict, res.Reason)
	}
	return res
}

// TestRunFailingCheck: the restore reaches its target, but one check
// expects another value: the drill fails, naming the check, the expected
// and the actual value, in the outcome, the transcript and the reports.
func TestRunFailingCheck(t *testing.T) {
	f := realFixture(t)
	parent := drillParent(t)
	out, err := f.runDrill(t, Options{Request: f.request(t, f.lab.Archive, "", "name:"+f.rpName, true),
		VerifyFile: writeChecks(t, 999), Scratch: parent})
	if err != nil {
		t.Fatal(err)
	}
	if out.Pass {
		t.Fatalf("a drill with a failing check passed:\n%s", transcriptOf(out))
	}
	if want := `check t_ts_rows failed: expected "999", got "1200"`; out.Failure != want {
		t.Errorf("failure %q, want %q", out.Failure, want)
	}
	for name, want := range map[string]string{
		"check_t_ts_rows": `FAIL: expected "999", got "1200"`, "check_customers": "pass", "check_t_ts_by_index": "pass",
		EvChecksPassed: "2", EvChecksFailed: "1", EvVerdict: "FAIL", EvRecoveryState: "paused",
	} {
		if got := ev(out, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	// The recovery itself was right: only the data check failed.
	if ev(out, EvPredictedStopLSN) != ev(out, EvActualStopLSN) {
		t.Errorf("stop LSNs differ: %s vs %s", ev(out, EvPredictedStopLSN), ev(out, EvActualStopLSN))
	}
	if !strings.HasPrefix(out.Report.Summary, "The drill FAILED: check t_ts_rows failed") {
		t.Errorf("summary %q", out.Report.Summary)
	}
	checkReportFiles(t, out, "FAIL")
	assertEmptyDir(t, parent)
}

// TestRunMissingSegment: a segment between the backup and the target is
// gone. The drill fails before restoring anything and names it; with
// Force it restores, PostgreSQL's own recovery fails at the gap, and its
// FATAL line is in the report.
func TestRunMissingSegment(t *testing.T) {
	f := realFixture(t)
	req := f.request(t, f.lab.Archive, "plain", "name:"+f.rpName, true)
	files := f.planFor(t, req).Backups[0].Files
	if len(files) < 4 {
		t.Fatalf("the plain backup needs only %v", files)
	}
	gone := files[2]
	dir := f.copyLabArchive(t)
	if err := os.Remove(filepath.Join(dir, gone)); err != nil {
		t.Fatal(err)
	}
	arch := f.loadArchive(t, dir)
	req.Archive = dir

	parent := drillParent(t)
	hook := &progressHook{}
	out, err := f.runDrill(t, Options{Request: req, Archive: arch, VerifyFile: writeChecks(t, 1200), Scratch: parent, Progress: hook})
	if err != nil {
		t.Fatal(err)
	}
	if out.Pass || !strings.Contains(out.Failure, gone) || !strings.Contains(out.Failure, "unreachable") {
		t.Fatalf("pass %v, failure %q: want a failure naming %s", out.Pass, out.Failure, gone)
	}
	assertNothingRestored(t, out, parent)
	if hook.String() != "" {
		t.Errorf("progress although nothing was restored: %q", hook.String())
	}
	if !strings.Contains(strings.Join(out.Report.Conclusions, " "), "No restore was attempted") || ev(out, EvVerdict) != "FAIL" {
		t.Errorf("conclusions %q, verdict %q", out.Report.Conclusions, ev(out, EvVerdict))
	}

	// --force: PostgreSQL finds the gap itself.
	out, err = f.runDrill(t, Options{Request: req, Archive: arch, VerifyFile: writeChecks(t, 1200), Scratch: parent, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if out.Pass || !strings.Contains(out.Failure, gone) {
		t.Fatalf("forced drill: pass %v, failure %q", out.Pass, out.Failure)
	}
	const fatal = "FATAL:  recovery ended before configured recovery target was reached"
	tr := transcriptOf(out)
	if ev(out, EvRecoveryState) != "failed" || ev(out, EvBackupID) != "plain" || !strings.Contains(tr, fatal) || len(out.Report.Checks) != 0 {
		t.Errorf("forced drill: state %q, backup %q, %d checks run; transcript lacks %q?\n%s", ev(out, EvRecoveryState), ev(out, EvBackupID), len(out.Report.Checks), fatal, tr)
	}
	if n, _ := strconv.Atoi(ev(out, EvWALFilesFetched)); n != 2 {
		t.Errorf("forced drill fetched %s WAL files, want the 2 before the gap %s", ev(out, EvWALFilesFetched), gone)
	}
	checkReportFiles(t, out, "FAIL")
	rdir := t.TempDir()
	if err := WriteReport(rdir, out.Report); err != nil {
		t.Fatal(err)
	}
	if md, _ := os.ReadFile(filepath.Join(rdir, ReportMDFile)); !strings.Contains(string(md), fatal) {
		t.Errorf("%s lacks PostgreSQL's %q:\n%s", ReportMDFile, fatal, md)
	}
	assertEmptyDir(t, parent)
}

// corruptOffset is an offset inside the WAL records of the segment
// holding lsn, before lsn and away from page headers.
func corruptOffset(lsn walname.LSN, segSize uint64) int64 {
	off := int64(uint64(lsn)%segSize) / 2
	if off%8192 < 64 {
		off += 100
	}
	return off
}

// TestRunCorruptSegment: a record damaged in the archive before the drill
// is caught by the plan (nothing restored, the segment named); damaged
// after the plan was made, PostgreSQL replays up to the damage and, with
// no target to miss, promotes there: the drill must notice that it
// stopped short of the prediction.
func TestRunCorruptSegment(t *testing.T) {
	f := realFixture(t)
	res := f.planFor(t, f.request(t, f.lab.Archive, "", "name:"+f.rpName, true))
	segSize := uint64(f.labArchive(t).Inv.SegmentSize)
	last := res.Backups[0].Files[len(res.Backups[0].Files)-1]
	off := corruptOffset(res.Stop.LSN, segSize)

	t.Run("before", func(t *testing.T) {
		dir := f.copyLabArchive(t)
		flipByte(t, filepath.Join(dir, last), off)
		parent := drillParent(t)
		out, err := f.runDrill(t, Options{Request: f.request(t, dir, "", "name:"+f.rpName, true), Archive: f.loadArchive(t, dir), Scratch: parent})
		if err != nil {
			t.Fatal(err)
		}
		if out.Pass || !strings.Contains(out.Failure, "corrupt WAL in "+last) {
			t.Fatalf("pass %v, failure %q: want a failure naming the corrupt %s", out.Pass, out.Failure, last)
		}
		assertNothingRestored(t, out, parent)
	})
	t.Run("after", func(t *testing.T) {
		dir := f.copyLabArchive(t)
		arch := f.loadArchive(t, dir)
		parent := drillParent(t)
		hook := (&progressHook{}).on("restoring backup", func(string) { flipByte(t, filepath.Join(dir, last), off) })
		out, err := f.runDrill(t, Options{Request: f.request(t, dir, "", "latest", true), Archive: arch, Scratch: parent, Progress: hook})
		if err != nil {
			t.Fatal(err)
		}
		if out.Pass {
			t.Fatalf("a drill over a damaged segment passed:\n%s", transcriptOf(out))
		}
		pred, err := walname.ParseLSN(ev(out, EvPredictedStopLSN))
		if err != nil || out.StopLSN == 0 || out.StopLSN >= pred {
			t.Errorf("PostgreSQL stopped at %s, the plan predicted %s: want it short of the prediction", out.StopLSN, ev(out, EvPredictedStopLSN))
		}
		if want := fmt.Sprintf("stop LSN mismatch: predicted %s, PostgreSQL stopped at %s", pred, out.StopLSN); out.Failure != want {
			t.Errorf("failure %q, want %q", out.Failure, want)
		}
		assertEmptyDir(t, parent)
	})
}

// TestRunStoreFailsMidDrill: after the plan was made, a segment that
// recovery needs later can no longer be read from the store (a directory
// where the file was). wal-fetch must exit 128, not "absent", so that
// PostgreSQL aborts recovery instead of ending it early, and the drill
// fails with PostgreSQL's FATAL line.
func TestRunStoreFailsMidDrill(t *testing.T) {
	f := realFixture(t)
	req := f.request(t, f.lab.Archive, "tar", "name:"+f.rpName, true)
	files := f.planFor(t, req).Backups[0].Files
	if len(files) < 3 {
		t.Fatalf("the tar backup needs only %v", files)
	}
	broken := files[len(files)-2]
	dir := f.copyLabArchive(t)
	arch := f.loadArchive(t, dir)
	req.Archive = dir
	parent := drillParent(t)
	hook := (&progressHook{}).on("restoring backup", func(string) {
		p := filepath.Join(dir, broken)
		if err := os.Remove(p); err != nil {
			t.Error(err)
		}
		if err := f.user.MkdirAll(filepath.Join(p, "x"), 0o755); err != nil {
			t.Error(err)
		}
	})
	out, err := f.runDrill(t, Options{Request: req, Archive: arch, Scratch: parent, Progress: hook, VerifyFile: writeChecks(t, 1200),
		StoreFlags: []string{"--retries", "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Pass {
		t.Fatalf("the drill passed although the store failed:\n%s", transcriptOf(out))
	}
	want := `could not restore file "` + broken + `" from archive: child process exited with exit code 128`
	if !strings.Contains(out.Failure, "PostgreSQL's recovery failed") || !strings.Contains(out.Failure, want) {
		t.Errorf("failure %q, want PostgreSQL's FATAL %q", out.Failure, want)
	}
	if n, _ := strconv.Atoi(ev(out, EvWALFilesFetched)); n < 1 || ev(out, EvRecoveryState) != "failed" || len(out.Report.Checks) != 0 {
		t.Errorf("%s WAL files fetched before the failure, state %q, %d checks run", ev(out, EvWALFilesFetched), ev(out, EvRecoveryState), len(out.Report.Checks))
	}
	assertEmptyDir(t, parent)
}

// TestRunTablespaceKeep drills the plain backup, whose tablespace lies
// outside the data directory, keeping the scratch directory: the
// tablespace was restored into scratch/tblspc/<oid>, the link points
// there, the server is stopped, and nothing outside the scratch
// directory changed (the production tablespace and the backup's own
// tablespace copy included).
func TestRunTablespaceKeep(t *testing.T) {
	f := realFixture(t)
	f.backup(t, "plain")
	parent := drillParent(t)
	out, err := f.runDrill(t, Options{Request: f.request(t, f.lab.Archive, "plain", "name:"+f.rpName, true),
		VerifyFile: writeChecks(t, 1200), Scratch: parent, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	if out.Scratch != "" {
		t.Cleanup(func() { os.RemoveAll(out.Scratch) })
	}
	if !out.Pass {
		t.Fatalf("drill FAILED: %s\n%s", out.Failure, transcriptOf(out))
	}
	if out.Scratch == "" || filepath.Dir(out.Scratch) != parent || out.Scratch != ev(out, EvScratchDir) {
		t.Fatalf("kept scratch %q, evidence %q, parent %s", out.Scratch, ev(out, EvScratchDir), parent)
	}
	data := filepath.Join(out.Scratch, "data")
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the kept cluster's server was not stopped: postmaster.pid: %v", err)
	}
	oid := strconv.FormatUint(uint64(f.tsOID), 10)
	want := filepath.Join(out.Scratch, "tblspc", oid)
	if l, err := os.Readlink(filepath.Join(data, "pg_tblspc", oid)); err != nil || l != want {
		t.Errorf("pg_tblspc/%s -> %q (%v), want %s", oid, l, err, want)
	}
	if m, _ := filepath.Glob(filepath.Join(want, "PG_15_*", "*")); len(m) == 0 {
		t.Errorf("no tablespace files in %s", want)
	}
	if _, err := os.Stat(filepath.Join(data, "tablespace_map")); err == nil {
		t.Errorf("tablespace_map was left in the data directory")
	}
	if ev(out, EvTablespacesRemapped) != "1" {
		t.Errorf("tablespaces_remapped %q", ev(out, EvTablespacesRemapped))
	}
	f.assertLabUnchanged(t)
}

// slowFetcher writes a restore_command binary that logs the file asked
// for, waits, and then runs the real walaudit: replay takes long enough
// to be interrupted. It returns the binary and its call log.
func slowFetcher(t *testing.T, delay string) (string, string) {
	t.Helper()
	dir := drillParent(t)
	p, calls := filepath.Join(dir, "slow-walaudit"), filepath.Join(dir, "calls.log")
	if err := os.WriteFile(calls, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(calls, 0o666); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\nsleep %s\nexec %s \"$@\"\n", calls, delay, drillBinary(t))
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p, calls
}

// callsFor returns the calls logged by slowFetcher (one line each, all
// arguments) that ask for name ("" for all).
func callsFor(log, name string) []string {
	b, _ := os.ReadFile(log)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && strings.Contains(l, " "+name) {
			out = append(out, l)
		}
	}
	return out
}

// processesMentioning lists the running processes whose command line
// contains s.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	out, err := exec.Command("ps", "-eo", "pid=,args=").Output()
	if err != nil {
		t.Fatal(err)
	}
	var ps []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, s) && !strings.Contains(l, " ps -eo") {
			ps = append(ps, strings.TrimSpace(l))
		}
	}
	return ps
}

// alive reports whether a process exists (and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// waitGone waits up to d for cond to become true.
func waitGone(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// TestRunCancel cancels drills while PostgreSQL replays (restore_command
// made slow) and just before the server starts: Run reports the
// interruption as an error, never as a verdict; the server is stopped,
// no process of the drill is left and the scratch directory is gone.
func TestRunCancel(t *testing.T) {
	f := realFixture(t)
	slow, calls := slowFetcher(t, "0.5")
	req := f.request(t, f.lab.Archive, "plain", "name:"+f.rpName, true)
	files := f.planFor(t, req).Backups[0].Files
	t.Run("replay", func(t *testing.T) {
		parent := drillParent(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var scratch string
		pidc := make(chan int, 1)
		hook := (&progressHook{}).on("restoring backup", func(l string) { scratch = scratchOf(l) }).
			on("starting PostgreSQL", func(string) {
				data := scratch + "/data"
				go func() {
					defer close(pidc)
					// Wait for the postmaster, then for replay to be under
					// way: restore_command was called.
					var pid int
					waitGone(30*time.Second, func() bool {
						b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
						if err != nil {
							return false
						}
						l, _, _ := strings.Cut(string(b), "\n")
						pid, _ = strconv.Atoi(strings.TrimSpace(l))
						return pid > 0 && len(callsFor(calls, "")) > 0
					})
					pidc <- pid
					cancel()
				}()
			})
		out, err := Run(ctx, Options{Request: req, Archive: f.labArchive(t), Scratch: parent, Self: slow, Progress: hook, Timeout: time.Minute})
		pid := <-pidc
		if err == nil || !errors.Is(err, context.Canceled) || out != nil {
			t.Fatalf("cancelled drill: outcome %+v, err %v; want an interruption error", out, err)
		}
		if !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("error %q does not say the drill was interrupted", err)
		}
		if pid <= 0 {
			t.Fatalf("the postmaster never started (progress %q)", hook.String())
		}
		if alive(pid) {
			t.Errorf("the postmaster %d is still running after the cancelled drill", pid)
		}
		t.Logf("restore_command calls before the interruption: %d of at least %d", len(callsFor(calls, "")), len(files))
		if last := files[len(files)-1]; len(callsFor(calls, last)) > 0 {
			t.Errorf("recovery had already asked for the last segment %s: the drill was not interrupted during replay", last)
		}
		if !waitGone(5*time.Second, func() bool { return len(processesMentioning(t, scratch)) == 0 }) {
			t.Errorf("processes of the cancelled drill still run: %v", processesMentioning(t, scratch))
		}
		assertEmptyDir(t, parent)
	})
	t.Run("start", func(t *testing.T) {
		parent := drillParent(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var scratch string
		hook := (&progressHook{}).on("restoring backup", func(l string) { scratch = scratchOf(l) }).
			on("starting PostgreSQL", func(string) { cancel() })
		out, err := Run(ctx, Options{Request: f.request(t, f.lab.Archive, "", "name:"+f.rpName, true), Archive: f.labArchive(t),
			Scratch: parent, Self: drillBinary(t), Progress: hook})
		if err == nil || !errors.Is(err, context.Canceled) || out != nil {
			t.Fatalf("drill cancelled at start: outcome %+v, err %v; want an interruption error, not a verdict", out, err)
		}
		if !waitGone(5*time.Second, func() bool { return len(processesMentioning(t, scratch)) == 0 }) {
			t.Errorf("processes of the cancelled drill still run: %v", processesMentioning(t, scratch))
		}
		assertEmptyDir(t, parent)
	})
}

// TestRunRefusals: drills that must not start return ErrRefused before
// creating anything.
func TestRunRefusals(t *testing.T) {
	f := realFixture(t)
	self := drillBinary(t)
	req := f.request(t, f.lab.Archive, "", "name:"+f.rpName, true)
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fakeData := t.TempDir()
	if err := os.WriteFile(filepath.Join(fakeData, "PG_VERSION"), []byte("15\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inFake := filepath.Join(fakeData, "sub", "dir")
	if err := os.MkdirAll(inFake, 0o755); err != nil {
		t.Fatal(err)
	}
	badChecks := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badChecks, []byte("checks:\n  - name: x\n    sql: SELECT 1\n    expect_row: [[1]]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noBackups := f.loadArchive(t, f.lab.Archive)
	noBackups.Backups = nil
	st, err := store.Open(context.Background(), f.lab.Archive)
	if err != nil {
		t.Fatal(err)
	}
	historyOnly, err := audit.Load(context.Background(), st, audit.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	parent := drillParent(t)
	for _, c := range []struct {
		name   string
		opts   Options
		want   string
		dir    string // must stay empty
		noSelf bool   // neither Self nor $WALAUDIT_BIN: this test binary
	}{
		{"no archive", Options{Request: req, Scratch: parent}, "no archive loaded", parent, false},
		{"scratch in a data directory", Options{Request: req, Archive: f.labArchive(t), Scratch: inFake}, "is inside the PostgreSQL data directory " + fakeData, inFake, false},
		{"scratch in the primary's data directory", Options{Request: req, Archive: f.labArchive(t), Scratch: filepath.Join(f.lab.Root, "p", "base")}, "is inside the PostgreSQL data directory " + filepath.Join(f.lab.Root, "p"), "", false},
		{"scratch is a file", Options{Request: req, Archive: f.labArchive(t), Scratch: notDir}, "is not a directory", "", false},
		{"scratch missing", Options{Request: req, Archive: f.labArchive(t), Scratch: filepath.Join(parent, "nope")}, "no such file or directory", parent, false},
		{"backup known only from the archive", Options{Request: plan.Request{Archive: f.lab.Archive, Target: req.Target, Inclusive: true, Timeline: req.Timeline},
			Archive: historyOnly, Scratch: parent}, "pass --backups DIR", parent, false},
		{"bad checks file", Options{Request: req, Archive: f.labArchive(t), Scratch: parent, VerifyFile: badChecks}, "expect_row", parent, false},
		{"no pg binaries", Options{Request: req, Archive: f.labArchive(t), Scratch: parent, PGBin: t.TempDir()}, "", parent, false},
		{"test binary as restore_command", Options{Request: req, Archive: f.labArchive(t), Scratch: parent}, "not the test binary " + os.Args[0], parent, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Self = self
			if c.noSelf {
				c.opts.Self = ""
				t.Setenv("WALAUDIT_BIN", "")
			}
			hook := &progressHook{}
			c.opts.Progress = hook
			out, err := Run(context.Background(), c.opts)
			if !errors.Is(err, ErrRefused) || out != nil {
				t.Fatalf("outcome %+v, err %v; want ErrRefused", out, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("refusal %q does not say %q", err, c.want)
			}
			if hook.String() != "" {
				t.Errorf("a refused drill made progress: %q", hook.String())
			}
			if c.dir != "" {
				assertEmptyDir(t, c.dir)
			}
		})
	}
	f.assertLabUnchanged(t)
}

// TestSameEvidence compares repeated drills' outcomes.
func TestSameEvidence(t *testing.T) {
	mk := func(pass bool, lsn walname.LSN, tli walname.TimelineID, fp string) *Outcome {
		return &Outcome{Pass: pass, StopLSN: lsn, Timeline: tli, Report: &Report{Fingerprint: fp}}
	}
	a := mk(true, 0x1010448, 1, "abc")
	for _, c := range []struct {
		outs []*Outcome
		same bool
		why  string
	}{
		{nil, true, ""},
		{[]*Outcome{a}, true, ""},
		{[]*Outcome{a, mk(true, 0x1010448, 1, "abc"), mk(true, 0x1010448, 1, "abc")}, true, " (stop 0/1010448, timeline 1, fingerprint abc)"},
		{[]*Outcome{a, mk(false, 0x1010448, 1, "abc")}, false, " (run 2: pass false, run 1: true)"},
		{[]*Outcome{a, a, mk(true, 0x1010450, 1, "abc")}, false, " (run 3 stopped at 0/1010450, run 1 at 0/1010448)"},
		{[]*Outcome{a, mk(true, 0x1010448, 2, "abc")}, false, " (run 2 on timeline 2, run 1 on 1)"},
		{[]*Outcome{a, mk(true, 0x1010448, 1, "abd")}, false, " (run 2 fingerprint abd, run 1 abc)"},
	} {
		same, why := SameEvidence(c.outs)
		if same != c.same || why != c.why {
			t.Errorf("SameEvidence(%d outcomes) = %v %q, want %v %q", len(c.outs), same, why, c.same, c.why)
		}
	}
}
