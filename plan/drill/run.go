package drill

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/pgserver"
	"github.com/walaudit/walaudit/walname"
)

// ErrRefused is wrapped by [Run] errors for drills that must not start
// (bad usage, a scratch directory that is a data directory, a server of the
// wrong major version): nothing was touched.
var ErrRefused = errors.New("drill refused")

// Options configure a drill.
type Options struct {
	// Request is the target and the archive, as for check.
	Request plan.Request
	// Archive is the loaded archive (nil: Run loads Request.Archive).
	Archive *audit.Archive
	// StoreFlags are extra wal-fetch arguments for the archive (S3 options).
	StoreFlags []string
	// VerifyFile is a checks file (see the package documentation).
	VerifyFile string
	// PGBin is the server binaries' directory ("" finds them).
	PGBin string
	// Scratch is the parent directory of the drill's own scratch directory
	// (default: the system temporary directory); only that new directory is
	// ever deleted.
	Scratch string
	// OSUser runs the server when walaudit is root (default postgres).
	OSUser string
	// Keep leaves the scratch directory; Force restores even when the plan
	// says unreachable (PostgreSQL's own failure becomes evidence);
	// Promote sets recovery_target_action = 'promote'; Amcheck runs
	// bt_index_check over every btree index.
	Keep, Force, Promote, Amcheck bool
	// Timeout bounds the replay (default 30m).
	Timeout time.Duration
	// Self is the walaudit binary used as restore_command (default:
	// $WALAUDIT_BIN, else this executable).
	Self string
	// Progress receives one line per progress step (nil: none).
	Progress io.Writer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Outcome is one drill's result.
type Outcome struct {
	Pass     bool
	Report   *Report
	Scratch  string // kept when Options.Keep
	StopLSN  walname.LSN
	Timeline walname.TimelineID
	// Failure is the first reason the drill failed, "" when it passed.
	Failure string
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// Run executes one drill: plan exactly as check does, restore the chosen
// backup into a new scratch directory, replay WAL with a real PostgreSQL
// server to the target, confirm the stop against the plan, run the
// verification checks, and always stop the server and remove the scratch
// directory (unless Keep), also when ctx is cancelled. The error is for
// drills that could not be carried out; a drill that ran and failed returns
// an Outcome with Pass false.
func Run(ctx context.Context, opts Options) (*Outcome, error) {
	var err error
	started := opts.now()
	rep := &Report{Title: "walaudit drill", Started: started}
	out := &Outcome{Report: rep}
	fail := func(format string, args ...any) {
		if out.Failure == "" {
			out.Failure = fmt.Sprintf(format, args...)
		}
	}
	req := opts.Request

	// 1. Plan, exactly as check does.
	t0 := opts.now()
	arch := opts.Archive
	if arch == nil {
		return nil, fmt.Errorf("%w: no archive loaded", ErrRefused)
	}
	// A bad checks file is refused before anything is restored.
	var checks []Check
	if opts.VerifyFile != "" {
		if checks, err = LoadChecks(opts.VerifyFile); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRefused, err)
		}
	}
	res, err := plan.Evaluate(ctx, arch, req)
	if err != nil {
		return nil, err
	}
	if res.Verdict == plan.Reachable && req.Timeline.Kind != "number" && res.Target.ResolvedTimeline != 0 {
		// Pin the resolved timeline: the drill's recovery must follow the
		// path that was planned, whatever appears in the archive meanwhile.
		pinned := req
		pinned.Timeline = plan.TimelineSetting{Kind: "number", TLI: res.Target.ResolvedTimeline}
		if r2, err := plan.Evaluate(ctx, arch, pinned); err == nil && r2.Verdict == plan.Reachable {
			res, req = r2, pinned
		}
	}
	planSecs := opts.now().Sub(t0).Seconds()
	target := req.Target.String()
	planSess := Session{Command: fmt.Sprintf("walaudit check --archive %s --target %s --inclusive=%v --target-timeline %s", res.Archive, target, req.Inclusive, req.Timeline),
		Result: fmt.Sprintf("%s: %s", res.Verdict, res.Reason)}
	planSess.Evidence = append(planSess.Evidence, KV{EvTarget, target}, KV{EvVerdict, string(res.Verdict)}, KV{EvPlanSeconds, secs(planSecs)})
	var chosen *plan.BackupAnswer
	for i := range res.Backups {
		if res.Backup != nil && res.Backups[i].ID == res.Backup.ID {
			chosen = &res.Backups[i]
		}
	}
	if chosen == nil && opts.Force && len(res.Backups) > 0 {
		chosen = &res.Backups[0] // the newest: PostgreSQL's own failure becomes evidence
	}
	if chosen != nil {
		planSess.Evidence = append(planSess.Evidence, KV{EvBackupID, chosen.ID})
		if chosen.Stop != nil {
			planSess.Evidence = append(planSess.Evidence, KV{EvPredictedStopLSN, chosen.Stop.LSN.String()}, KV{EvTimeline, chosen.Stop.Timeline.String()})
		}
	}
	rep.Sessions = append(rep.Sessions, planSess)
	if res.Verdict != plan.Reachable {
		fail("the plan says %s: %s", res.Verdict, res.Reason)
		if len(res.Missing) > 0 {
			fail("missing: %s", strings.Join(res.Missing, ", "))
		}
		if !opts.Force || chosen == nil {
			rep.Conclusions = append(rep.Conclusions, fmt.Sprintf("No restore was attempted: %s.", out.Failure),
				"Rerun with --force to let PostgreSQL's own recovery fail and record its log as evidence.")
			return finish(out, rep, opts), nil
		}
	}
	var b *backup.Backup
	for _, x := range arch.Backups {
		if x.ID == chosen.ID {
			b = x
		}
	}
	if b == nil || b.Source == backup.SourceArchiveHistory {
		return nil, fmt.Errorf("%w: walaudit has not seen backup %s's files (only its .backup file in the archive): pass --backups DIR with the pg_basebackup outputs", ErrRefused, chosen.ID)
	}

	// 2. The server binaries must match the backup's major version.
	bin, err := pgserver.FindBin(ctx, opts.PGBin, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if b.PGMajor != 0 && bin.Major != b.PGMajor {
		return nil, fmt.Errorf("%w: backup %s is PostgreSQL %d but the server in %s is %s: pass --pg-bin with PostgreSQL %d binaries", ErrRefused, b.ID, b.PGMajor, bin.Dir, bin.Version, b.PGMajor)
	}
	user, err := pgserver.LookupOSUser(opts.OSUser)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}

	// The walaudit binary for restore_command, before anything is touched.
	self := opts.Self
	if self == "" {
		self = os.Getenv("WALAUDIT_BIN")
	}
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("locate the walaudit binary for restore_command: %w", err)
		}
		// A test binary would run its whole suite as restore_command, and
		// a copy of it (no longer named *.test) would drill again from
		// there, recursively: test binaries register the test.v flag.
		if strings.HasSuffix(self, ".test") || flag.Lookup("test.v") != nil {
			return nil, fmt.Errorf("%w: restore_command needs the walaudit binary, not the test binary %s: set WALAUDIT_BIN", ErrRefused, self)
		}
	}

	// 3. A new scratch directory inside the parent; never a data directory.
	parent := opts.Scratch
	if parent == "" {
		parent = os.TempDir()
	}
	if err := checkScratchParent(parent); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	walBytes := int64(chosen.SegmentsNeeded) * int64(arch.Inv.SegmentSize)
	if IsToolBackup(b) {
		if err := ToolSpaceCheck(ctx, arch, parent, b, walBytes); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRefused, err)
		}
	} else if err := SpaceCheck(parent, b, walBytes); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	scratch, err := os.MkdirTemp(parent, "wadrill")
	if err != nil {
		return nil, fmt.Errorf("create scratch directory in %s: %w", parent, err)
	}
	out.Scratch = scratch
	var srv *pgserver.Server
	defer func() {
		// Always: stop the server and remove the scratch directory, also
		// on failure and cancellation.
		if srv != nil {
			_ = srv.Stop(context.Background())
		}
		if !opts.Keep {
			_ = os.RemoveAll(scratch)
			out.Scratch = ""
		}
	}()
	rep.Sessions = append(rep.Sessions, Session{Command: "mkdir " + scratch, Result: "scratch directory created",
		Evidence: []KV{{EvScratchDir, scratch}}})

	// 4. Restore.
	t0 = opts.now()
	opts.progress("restoring backup %s into %s", b.ID, scratch)
	var restored *Restored
	if IsToolBackup(b) {
		restored, err = RestoreFromTool(ctx, arch, b, scratch, user)
	} else {
		restored, err = Restore(ctx, b, scratch, user)
	}
	if err != nil {
		if errors.Is(err, ErrVerification) && restored != nil {
			fail("the restored files do not match backup_manifest: %s", strings.Join(restored.Problems, "; "))
			rep.Sessions = append(rep.Sessions, Session{Command: "restore " + b.ID + " and verify against backup_manifest",
				Result: "FAILED: " + out.Failure, Evidence: []KV{{EvManifestProblems, fmt.Sprint(len(restored.Problems))}}})
			return finish(out, rep, opts), nil
		}
		return nil, fmt.Errorf("restore backup %s: %w", b.ID, err)
	}
	restoreSecs := opts.now().Sub(t0).Seconds()
	rs := Session{Command: fmt.Sprintf("restore %s (%s) into %s", b.ID, b.Path, restored.DataDir),
		Result: fmt.Sprintf("%d files, %d bytes", restored.Files, restored.Bytes),
		Evidence: []KV{{EvFilesRestored, fmt.Sprint(restored.Files)}, {EvBytesRestored, fmt.Sprint(restored.Bytes)},
			{EvTablespacesRemapped, fmt.Sprint(len(restored.Tablespaces))}, {EvRestoreSeconds, secs(restoreSecs)}}}
	if restored.Manifest {
		rs.Evidence = append(rs.Evidence, KV{EvManifestVerified, fmt.Sprint(restored.Verified)}, KV{EvManifestProblems, "0"})
	}
	rep.Sessions = append(rep.Sessions, rs)

	// 5. restore_command: this binary (found above), copied where the
	// server's user can run it, fetching from the same archive with
	// prefetch into a spool.
	binDir := filepath.Join(scratch, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	fetcher := filepath.Join(binDir, "walaudit")
	if err := copyExecutable(self, fetcher); err != nil {
		return nil, fmt.Errorf("copy walaudit into the scratch directory for restore_command: %w", err)
	}
	spool := filepath.Join(scratch, "spool")
	if err := user.MkdirAll(spool, 0o700); err != nil {
		return nil, err
	}
	planFile := filepath.Join(scratch, "wal-plan.txt")
	if err := os.WriteFile(planFile, []byte(strings.Join(chosen.Requests, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	for _, p := range []string{scratch, binDir, fetcher, planFile} {
		_ = user.Chown(p)
	}
	archiveLoc := res.Archive
	fetchArgs := []string{plan.ShellQuote(fetcher), "wal-fetch", "--archive", plan.ShellQuote(archiveLoc), "--segment-size", fmt.Sprintf("%d", arch.Inv.SegmentSize),
		"--spool", plan.ShellQuote(spool), "--plan", plan.ShellQuote(planFile)}
	for _, f := range opts.StoreFlags {
		fetchArgs = append(fetchArgs, plan.ShellQuote(f))
	}
	restoreCommand := strings.Join(fetchArgs, " ") + " %f %p"

	// 6. Recovery configuration.
	control := b.Control
	if control == nil {
		control = RestoredControl(restored) // backup tools' catalogues do not carry it
	}
	cfg, err := WriteRecoveryConfig(restored.DataDir, Settings{
		RestoreCommand: restoreCommand, Target: req.Target, Exclusive: !req.Inclusive, Timeline: req.Timeline,
		Promote: opts.Promote, SocketDir: scratch, Port: 5432, PGMajor: bin.Major, Control: control, Bin: bin, User: user,
	})
	if err != nil {
		return nil, fmt.Errorf("write recovery configuration: %w", err)
	}
	rep.Sessions = append(rep.Sessions, Session{Command: "write " + cfg.ConfFile + " and recovery.signal",
		Result: fmt.Sprintf("%d settings; restore_command = %s", len(cfg.Settings), restoreCommand),
		Evidence: []KV{{EvNeutralised, strings.Join(cfg.Neutralised, " ")}, {EvPreloadKept, strings.Join(cfg.PreloadKept, " ")},
			{EvPreloadDropped, strings.Join(cfg.PreloadDropped, " ")}, {EvPGVersion, bin.Version}}})

	// 7. Replay with the real server.
	srv, err = pgserver.New(bin, user, restored.DataDir, scratch, 5432)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	t0 = opts.now()
	opts.progress("starting PostgreSQL %s recovery to %s (predicted stop %s)", bin.Version, target, predicted(chosen))
	if err := srv.Start(ctx, false); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("drill interrupted: %w", ctx.Err())
		}
		fail("PostgreSQL did not start: %v", err)
		rep.Sessions = append(rep.Sessions, Session{Command: "pg_ctl start", Result: "FAILED: " + out.Failure})
		return finish(out, rep, opts), nil
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	stopProgress := watchProgress(wctx, srv, opts, chosen)
	rec, err := srv.WaitRecovery(wctx)
	stopProgress()
	cancel()
	replaySecs := opts.now().Sub(t0).Seconds()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("drill interrupted: %w", ctx.Err())
		}
		fail("recovery did not finish within %s: %v", timeout, err)
		rep.Sessions = append(rep.Sessions, Session{Command: "wait for recovery", Result: "FAILED: " + out.Failure,
			Evidence: []KV{{EvReplaySeconds, secs(replaySecs)}}})
		return finish(out, rep, opts), nil
	}
	fetched := len(srv.LogLines("restored log file"))
	replay := Session{Command: fmt.Sprintf("pg_ctl start (recovery to %s); SELECT pg_last_wal_replay_lsn()", target),
		Result: fmt.Sprintf("%s at %s", rec.State, rec.ReplayLSN),
		Evidence: []KV{{EvRecoveryState, string(rec.State)}, {EvActualStopLSN, rec.ReplayLSN.String()}, {EvStopLine, rec.StopLine},
			{EvWALFilesFetched, fmt.Sprint(fetched)}, {EvWALBytesFetched, fmt.Sprint(int64(fetched) * int64(arch.Inv.SegmentSize))},
			{EvReplaySeconds, secs(replaySecs)}}}
	if rec.LastRestored != "" {
		if n, err := walname.Parse(rec.LastRestored); err == nil {
			out.Timeline = n.TLI
			replay.Evidence = append(replay.Evidence, KV{EvTimeline, n.TLI.String()})
		}
	}
	out.StopLSN = rec.ReplayLSN
	rep.Sessions = append(rep.Sessions, replay)

	// 8. Confirm the stop against the plan, side by side.
	switch {
	case rec.State == pgserver.RecoveryFailed:
		fail("PostgreSQL's recovery failed: %s", strings.Join(rec.FatalLines, " | "))
		rep.Sessions = append(rep.Sessions, Session{Command: "server log (FATAL lines)", Result: strings.Join(rec.FatalLines, " | ")})
	case chosen.Stop == nil:
		fail("no predicted stop to compare with")
	default:
		if rec.ReplayLSN != chosen.Stop.LSN {
			fail("stop LSN mismatch: predicted %s, PostgreSQL stopped at %s", chosen.Stop.LSN, rec.ReplayLSN)
		}
		if chosen.Stop.LogLine != "" && !strings.HasPrefix(rec.StopLine, chosen.Stop.LogLine) {
			fail("stop mismatch: predicted %q, PostgreSQL logged %q", chosen.Stop.LogLine, rec.StopLine)
		}
		wantState := pgserver.RecoveryPaused
		if opts.Promote || req.Target.Kind == plan.TargetLatest {
			wantState = pgserver.RecoveryPromoted
		}
		if rec.State != wantState {
			fail("recovery ended %s, expected %s", rec.State, wantState)
		}
	}

	// 9. Verification checks.
	t0 = opts.now()
	if out.Failure == "" && (opts.VerifyFile != "" || opts.Amcheck) {
		conn := srv.ConnString("")
		if opts.VerifyFile != "" {
			rep.Checks = append(rep.Checks, RunChecks(ctx, conn, checks)...)
		}
		if opts.Amcheck {
			rep.Checks = append(rep.Checks, Amcheck(ctx, conn, AmcheckOptions{CreateExtension: opts.Promote})...)
		}
		passed, failed := 0, 0
		vs := Session{Command: "verification checks (" + opts.VerifyFile + ")"}
		for _, c := range rep.Checks {
			v := "pass"
			if !c.Pass {
				v = "FAIL: expected " + c.Expected + ", got " + c.Actual
				if c.Err != "" {
					v = "FAIL: " + c.Err
				}
				failed++
				fail("check %s failed: expected %s, got %s%s", c.Name, c.Expected, c.Actual, errSuffix(c.Err))
			} else {
				passed++
			}
			vs.Evidence = append(vs.Evidence, KV{CheckEvidenceName(c.Name), v})
		}
		rep.Fingerprint = Fingerprint(rep.Checks)
		vs.Result = fmt.Sprintf("%d passed, %d failed", passed, failed)
		vs.Evidence = append(vs.Evidence, KV{EvChecksPassed, fmt.Sprint(passed)}, KV{EvChecksFailed, fmt.Sprint(failed)},
			KV{EvFingerprint, rep.Fingerprint}, KV{EvVerifySeconds, secs(opts.now().Sub(t0).Seconds())})
		rep.Sessions = append(rep.Sessions, vs)
	}

	if ctx.Err() != nil {
		// Checks cut short by the interruption prove nothing.
		return nil, fmt.Errorf("drill interrupted: %w", ctx.Err())
	}

	// 10. The recovery point against the newest archived commit.
	if chosen.Window != nil && chosen.Window.ToTime != nil {
		ev := []KV{{EvNewestArchivedCommit, chosen.Window.ToTime.Format(plan.TimestampFormat)}}
		if chosen.Stop != nil && chosen.Stop.Time != nil {
			ev = append(ev, KV{EvRecoveryPointLagSeconds, secs(chosen.Window.ToTime.Sub(chosen.Stop.Time.Time).Seconds())})
		}
		rep.Sessions = append(rep.Sessions, Session{Command: "compare the recovery point with the newest archived commit", Result: "recorded", Evidence: ev})
	}
	return finish(out, rep, opts), nil
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return " (" + e + ")"
}

func predicted(a *plan.BackupAnswer) string {
	if a == nil || a.Stop == nil {
		return "none"
	}
	return a.Stop.LSN.String()
}

func secs(s float64) string { return fmt.Sprintf("%.3f", s) }

// finish sets the verdict, summary and conclusions.
func finish(out *Outcome, rep *Report, opts Options) *Outcome {
	out.Pass = out.Failure == ""
	rep.Pass = out.Pass
	rep.Finished = opts.now()
	verdict := "PASS"
	if !out.Pass {
		verdict = "FAIL"
	}
	rep.Sessions = append(rep.Sessions, Session{Command: "verdict", Result: verdict + orDefault(out.Failure, ""), Evidence: []KV{{EvVerdict, verdict}}})
	if out.Pass {
		rep.Summary = fmt.Sprintf("Recovery to %s reached the predicted stop %s", opts.Request.Target, out.StopLSN)
		if len(rep.Checks) > 0 {
			rep.Summary += fmt.Sprintf(" and all %d verification checks passed", len(rep.Checks))
		}
		rep.Summary += "."
		rep.Conclusions = append(rep.Conclusions,
			fmt.Sprintf("The archive can restore this cluster to %s: a real PostgreSQL server replayed the WAL and stopped at %s, as planned.", opts.Request.Target, out.StopLSN),
			"Every value above can be re-checked from the transcript: the stop LSN against pg_last_wal_replay_lsn(), the stop line against the server log, the checks against their SQL.")
	} else {
		rep.Summary = "The drill FAILED: " + out.Failure
		rep.Conclusions = append(rep.Conclusions, "Do not rely on this recovery target until the failure above is fixed: "+out.Failure)
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return ": " + s
}

// checkScratchParent refuses a parent that is, or lies inside, a
// PostgreSQL data directory: a drill never writes into a live cluster.
func checkScratchParent(parent string) error {
	abs, err := filepath.Abs(parent)
	if err != nil {
		return err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("scratch parent %s: %w", abs, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("scratch parent %s is not a directory", abs)
	}
	for d := abs; ; d = filepath.Dir(d) {
		for _, marker := range []string{"PG_VERSION", "postmaster.pid", "global/pg_control"} {
			if _, err := os.Stat(filepath.Join(d, marker)); err == nil {
				return fmt.Errorf("scratch parent %s is inside the PostgreSQL data directory %s: a drill never writes into a cluster's directory; choose another --scratch", abs, d)
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// watchProgress reports the WAL files fetched and the replay position
// while recovery runs, every two seconds.
func watchProgress(ctx context.Context, srv *pgserver.Server, opts Options, a *plan.BackupAnswer) func() {
	if opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				n := len(srv.LogLines("restored log file"))
				lsn := "?"
				if v, err := srv.QueryString(ctx, `SELECT coalesce(pg_last_wal_replay_lsn()::text, '?')`); err == nil {
					lsn = v
				}
				opts.progress("replayed to %s of %s, %d of %d WAL files fetched", lsn, predicted(a), n, len(a.Files))
			}
		}
	}()
	return func() { close(done) }
}

// SameEvidence reports whether repeated drills produced the same evidence:
// stop LSN, timeline, check results and the fingerprint of the verified
// rows; why names the first difference.
func SameEvidence(outs []*Outcome) (bool, string) {
	if len(outs) < 2 {
		return true, ""
	}
	a := outs[0]
	for i, b := range outs[1:] {
		switch {
		case a.Pass != b.Pass:
			return false, fmt.Sprintf(" (run %d: pass %v, run 1: %v)", i+2, b.Pass, a.Pass)
		case a.StopLSN != b.StopLSN:
			return false, fmt.Sprintf(" (run %d stopped at %s, run 1 at %s)", i+2, b.StopLSN, a.StopLSN)
		case a.Timeline != b.Timeline:
			return false, fmt.Sprintf(" (run %d on timeline %d, run 1 on %d)", i+2, b.Timeline, a.Timeline)
		case a.Report.Fingerprint != b.Report.Fingerprint:
			return false, fmt.Sprintf(" (run %d fingerprint %s, run 1 %s)", i+2, b.Report.Fingerprint, a.Report.Fingerprint)
		}
	}
	return true, fmt.Sprintf(" (stop %s, timeline %d, fingerprint %s)", a.StopLSN, a.Timeline, a.Report.Fingerprint)
}
