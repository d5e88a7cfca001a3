package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/plan/pgserver"
	"github.com/walaudit/walaudit/plan/pgserver/pgtest"
	"github.com/walaudit/walaudit/plan/policy"
	"github.com/walaudit/walaudit/walname"
)

// retentionFixture is a real archive with history: three base backups,
// timeline 1 (base1, base2) and, after a point-in-time recovery of base2
// that ends on timeline 2, base3 on timeline 2, with commits between
// them at distinct seconds. The timeline 2 primary keeps running.
type retentionFixture struct {
	lab     *pgserver.Lab
	primary *pgserver.Server
	// Windows of time targets per backup ID (from an evaluation of latest).
	from, to map[string]time.Time
	start    map[string]walname.LSN
	ids      map[string]string // base1 → its ID without --backups (the .backup file name)
	hist     string            // 00000002.history
	orphans  []string          // segments older than base1
}

func buildRetentionFixture(t *testing.T) *retentionFixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab := pgtest.NewLab(ctx, t, nil)
	fx := &retentionFixture{lab: lab}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("build retention fixture: %v", err)
		}
	}
	commits := func(s *pgserver.Server, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			must(s.Exec(ctx, `INSERT INTO t SELECT g, repeat('x', 300) FROM generate_series(1, 1500) g`))
		}
	}
	pause := func() { time.Sleep(1100 * time.Millisecond) }

	p, err := lab.InitPrimary(ctx, "pp", 1, nil)
	must(err)
	must(p.Exec(ctx, `CREATE TABLE t(i int, pad text)`))
	commits(p, 1)
	_, err = lab.SwitchAndWait(ctx, p)
	must(err)
	pause()
	_, err = lab.BaseBackup(ctx, p, "base1")
	must(err)
	pause()
	commits(p, 3)
	_, err = lab.SwitchAndWait(ctx, p)
	must(err)
	pause()
	base2, err := lab.BaseBackup(ctx, p, "base2")
	must(err)
	pause()
	commits(p, 3)
	_, err = lab.SwitchAndWait(ctx, p)
	must(err)
	must(p.Stop(ctx))

	// Recover base2 to the end of timeline 1: it promotes to timeline 2
	// and archives from there on.
	p2, err := lab.Restore(ctx, base2, "p2", "", map[string]string{"archive_mode": "on", "archive_command": pgserver.Quote(lab.ArchiveCommand())})
	must(err)
	must(p2.Start(ctx, false))
	rr, err := p2.WaitRecovery(ctx)
	must(err)
	if rr.State != pgserver.RecoveryPromoted {
		t.Fatalf("recovery of base2 did not promote: %+v\n%s", rr, p2.LogTail(20))
	}
	must(p2.WaitReady(ctx))
	fx.primary = p2
	fx.hist = "00000002.history"
	must(lab.WaitArchived(ctx, fx.hist))
	pause()
	commits(p2, 3)
	_, err = lab.SwitchAndWait(ctx, p2)
	must(err)
	pause()
	_, err = lab.BaseBackup(ctx, p2, "base3")
	must(err)
	pause()
	commits(p2, 3)
	_, err = lab.SwitchAndWait(ctx, p2)
	must(err)

	// What each backup reaches, for the assertions.
	st, err := store.Open(ctx, lab.Archive)
	must(err)
	arch, err := audit.Load(ctx, st, audit.LoadOptions{BackupsDir: lab.Backups})
	must(err)
	rep, err := policy.Evaluate(ctx, arch, &policy.Policy{}, policy.Options{})
	must(err)
	fx.from, fx.to, fx.start, fx.ids = map[string]time.Time{}, map[string]time.Time{}, map[string]walname.LSN{}, map[string]string{}
	for _, b := range rep.Backups {
		if b.Window == nil || b.Window.FromTime == nil || b.Window.ToTime == nil {
			t.Fatalf("backup %s has no time window: %+v", b.ID, b)
		}
		fx.from[b.ID], fx.to[b.ID], fx.start[b.ID] = b.Window.FromTime.Time, b.Window.ToTime.Time, b.StartLSN
		fx.ids[b.ID] = walname.BackupHistoryName(b.Timeline, b.StartLSN, arch.Inv.SegmentSize)
	}
	for _, id := range []string{"base1", "base2", "base3"} {
		if _, ok := fx.from[id]; !ok {
			t.Fatalf("fixture lacks backup %s: %+v", id, rep.Backups)
		}
	}
	sz := arch.Inv.SegmentSize
	for _, seg := range arch.Inv.SegNos(1) {
		if seg < fx.start["base1"].Segment(sz) {
			fx.orphans = append(fx.orphans, walname.SegmentName(1, seg, sz))
		}
	}
	if len(fx.orphans) == 0 {
		t.Fatal("fixture has no segment older than base1")
	}
	return fx
}

// copyDir copies the fixture's archive so a test can change it.
func (fx *retentionFixture) copyArchive(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(fx.lab.Root, "copy-"+strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := pgserver.CopyTree(fx.lab.Archive, dir, fx.lab.User); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runStdin runs the app, as run does, with stdin.
func runStdin(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	app := newApp(&out, &errb)
	app.Reader = strings.NewReader(stdin)
	err := app.RunContext(ctx, append([]string{"walaudit"}, args...))
	if err != nil && !isVerdict(err) {
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), exitCode(err)
}

// checkHasPolicy reports whether cmd_check.go wires in the policy flags
// (the small edits documented with policy_flags.go).
func checkHasPolicy() bool {
	for _, f := range newCheckCommand().Flags {
		for _, n := range f.Names() {
			if n == "max-archive-age" {
				return true
			}
		}
	}
	return false
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// stopClock fixes the policy clock for the rest of the test.
func stopClock(t *testing.T, at time.Time) {
	t.Helper()
	old := nowFunc
	nowFunc = func() time.Time { return at }
	t.Cleanup(func() { nowFunc = old })
}

func writeList(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "delete.txt")
	if err := os.WriteFile(p, []byte("# files the retention job would delete\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type pruneJSON struct {
	Safe      bool   `json:"safe"`
	Undecided bool   `json:"undecided"`
	Message   string `json:"message"`
	Culprit   *struct {
		Key string `json:"key"`
	} `json:"culprit"`
	Violation *struct {
		Part  string `json:"part"`
		What  string `json:"what"`
		Cause string `json:"cause"`
	} `json:"violation"`
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

func pruneCheckJSON(t *testing.T, args ...string) (pruneJSON, int) {
	t.Helper()
	out, stderr, code := run(t, append([]string{"prune-check", "--format", "json"}, args...)...)
	var r pruneJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("prune-check %v: exit %d, output is not JSON (%v): %s\n%s", args, code, err, out, stderr)
	}
	return r, code
}

func segName(tli walname.TimelineID, seg walname.SegNo) string {
	return walname.SegmentName(tli, seg, walname.SegmentSize(1<<20))
}

// segmentsBetween lists the fixture's timeline-1 segments from a to b.
func segmentsBetween(a, b walname.SegNo) []string {
	var out []string
	for s := a; s <= b; s++ {
		out = append(out, segName(1, s))
	}
	return out
}

func TestRetentionPolicy(t *testing.T) {
	fx := buildRetentionFixture(t)
	lab := fx.lab
	sz := walname.SegmentSize(1 << 20)
	base1Seg, base2Seg, base3Seg := fx.start["base1"].Segment(sz), fx.start["base2"].Segment(sz), fx.start["base3"].Segment(sz)
	end := fx.to["base3"]
	// base1's own files: its WAL up to base2's start and its .backup file.
	base1Files := append(append([]string{}, fx.orphans...), segmentsBetween(base1Seg, base2Seg-1)...)
	base1Files = append(base1Files, fx.ids["base1"])
	sinceBase1 := ts(fx.from["base1"].Add(500 * time.Millisecond))
	sinceBase2 := ts(fx.from["base2"].Add(500 * time.Millisecond))
	sinceBase3 := ts(fx.from["base3"].Add(500 * time.Millisecond))
	arch := []string{"--archive", lab.Archive, "--backups", lab.Backups}

	t.Run("windows agree with time targets", func(t *testing.T) {
		for _, tc := range []struct {
			at   time.Time
			want string
		}{
			{fx.from["base1"].Add(-2 * time.Second), "unreachable"},
			{fx.from["base1"].Add(300 * time.Millisecond), "reachable"},
			{fx.from["base3"].Add(-300 * time.Millisecond), "reachable"},
			{end.Add(-time.Millisecond), "reachable"},
			{end, "unreachable"},
		} {
			r, _ := checkAsJSON(t, append(arch, "--target", "time:"+ts(tc.at))...)
			if r.Verdict != tc.want {
				t.Errorf("time:%s: %s (%s), want %s", ts(tc.at), r.Verdict, r.Reason, tc.want)
			}
		}
	})

	t.Run("safe: files older than every needed backup", func(t *testing.T) {
		r, code := pruneCheckJSON(t, append(arch, "--delete", writeList(t, fx.orphans...), "--keep-since", sinceBase1)...)
		if code != 0 || !r.Safe || r.Files != len(fx.orphans) {
			t.Fatalf("orphans under keep-since base1: exit %d %+v", code, r)
		}
		r, code = pruneCheckJSON(t, append(arch, "--delete", writeList(t, base1Files...), "--keep-since", sinceBase2, "--min-backups", "2")...)
		if code != 0 || !r.Safe {
			t.Fatalf("base1's files under keep-since base2: exit %d %+v", code, r)
		}
		out, _, code := run(t, append([]string{"prune-check", "--delete", writeList(t, base1Files...), "--keep-since", sinceBase2}, arch...)...)
		if code != 0 || !strings.HasPrefix(out, "SAFE: deleting 5 files") {
			t.Fatalf("table output (exit %d):\n%s", code, out)
		}
	})

	t.Run("unsafe only under a longer window", func(t *testing.T) {
		now := end.Add(time.Minute)
		stopClock(t, now)
		short := fmt.Sprintf("%dms", now.Sub(fx.from["base2"].Add(500*time.Millisecond)).Milliseconds())
		long := fmt.Sprintf("%dms", now.Sub(fx.from["base1"].Add(500*time.Millisecond)).Milliseconds())
		list := writeList(t, base1Files...)
		if r, code := pruneCheckJSON(t, append(arch, "--delete", list, "--keep-window", short)...); code != 0 || !r.Safe {
			t.Fatalf("short window: exit %d %+v", code, r)
		}
		r, code := pruneCheckJSON(t, append(arch, "--delete", list, "--keep-window", long)...)
		if code != 1 || r.Safe || r.Culprit == nil {
			t.Fatalf("long window: exit %d %+v", code, r)
		}
		first := segName(1, base1Seg)
		want := fmt.Sprintf("deleting %s breaks recovery to any time between %s and %s UTC: no other backup covers it",
			first, fx.from["base1"].Add(500*time.Millisecond).UTC().Format("2006-01-02 15:04:05"), fx.from["base2"].UTC().Format("2006-01-02 15:04:05"))
		if r.Culprit.Key != first || !strings.HasPrefix(r.Message, want) || r.Violation.Part != "keep-window" {
			t.Fatalf("message %q (culprit %+v, violation %+v), want it to start with %q", r.Message, r.Culprit, r.Violation, want)
		}
	})

	t.Run("unsafe: a middle segment", func(t *testing.T) {
		mid := segName(1, base2Seg+2) // on timeline 1, after base2, before the switch
		r, code := pruneCheckJSON(t, append(arch, "--delete", writeList(t, mid), "--keep-since", sinceBase1)...)
		if code != 1 || r.Culprit == nil || r.Culprit.Key != mid {
			t.Fatalf("exit %d %+v", code, r)
		}
		for _, want := range []string{"deleting " + mid + " breaks recovery to any time between", "no other backup covers it",
			"segment " + mid + " is missing", "the next backup, base3, is recoverable only from " + fx.from["base3"].UTC().Format("2006-01-02 15:04:05")} {
			if !strings.Contains(r.Message, want) {
				t.Errorf("message %q lacks %q", r.Message, want)
			}
		}
		// Only base3 needed: the same segment is safe to delete.
		if r, code := pruneCheckJSON(t, append(arch, "--delete", writeList(t, mid), "--keep-since", sinceBase3)...); code != 0 || !r.Safe {
			t.Fatalf("keep-since base3: exit %d %+v", code, r)
		}
	})

	t.Run("unsafe: a needed history file", func(t *testing.T) {
		r, code := pruneCheckJSON(t, append(arch, "--delete", writeList(t, fx.hist), "--keep-since", sinceBase2)...)
		if code != 1 || r.Culprit == nil || r.Culprit.Key != fx.hist || !strings.HasPrefix(r.Message, "deleting "+fx.hist+" breaks recovery to any time between") {
			t.Fatalf("exit %d %+v", code, r)
		}
		// A backup on timeline 2 needs no parent history.
		if r, code := pruneCheckJSON(t, append(arch, "--delete", writeList(t, fx.hist), "--keep-since", sinceBase3)...); code != 0 || !r.Safe {
			t.Fatalf("keep-since base3: exit %d %+v", code, r)
		}
	})

	t.Run("unsafe: the only backup's .backup file", func(t *testing.T) {
		clab := getCheckFixture(t)
		var bfile string
		ents, _ := os.ReadDir(clab.Archive)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".backup") {
				bfile = e.Name()
			}
		}
		r, code := pruneCheckJSON(t, "--archive", clab.Archive, "--delete", writeList(t, bfile), "--min-backups", "1")
		if code != 1 || r.Culprit == nil || r.Culprit.Key != bfile || !strings.Contains(r.Message, "is the only description of backup") ||
			!strings.Contains(r.Message, "only 0 backups are restorable") {
			t.Fatalf("exit %d %+v", code, r)
		}
	})

	t.Run("a plain name stands for every stored form", func(t *testing.T) {
		dir := fx.copyArchive(t)
		mid := segName(1, base2Seg+1)
		gzipCopy(t, filepath.Join(dir, mid), filepath.Join(dir, mid+".gz"))
		args := []string{"--archive", dir, "--backups", lab.Backups, "--keep-since", sinceBase1}
		if r, code := pruneCheckJSON(t, append(args, "--delete", writeList(t, mid+".gz"))...); code != 0 || !r.Safe || r.Files != 1 {
			t.Fatalf("deleting the .gz copy: exit %d %+v", code, r)
		}
		if r, code := pruneCheckJSON(t, append(args, "--delete", writeList(t, filepath.Join(dir, mid)))...); code != 0 || !r.Safe || r.Files != 1 {
			t.Fatalf("deleting the plain copy by path: exit %d %+v", code, r)
		}
		wd, _ := os.Getwd()
		relPath, err := filepath.Rel(wd, filepath.Join(dir, mid+".gz"))
		if err != nil {
			t.Fatal(err)
		}
		if r, code := pruneCheckJSON(t, append(args, "--delete", writeList(t, relPath, "file://"+filepath.Join(dir, mid+".gz")))...); code != 0 || !r.Safe || r.Files != 1 {
			t.Fatalf("deleting the .gz copy by relative path and URL: exit %d %+v", code, r)
		}
		r, code := pruneCheckJSON(t, append(args, "--delete", writeList(t, mid))...)
		if code != 1 || r.Files != 2 || r.Culprit == nil || !strings.HasPrefix(r.Culprit.Key, mid) {
			t.Fatalf("deleting every form: exit %d %+v", code, r)
		}
	})

	t.Run("deleting a backup directory removes the backup", func(t *testing.T) {
		dir2 := filepath.Join(lab.Backups, "base2")
		if r, code := pruneCheckJSON(t, append(arch, "--delete", writeList(t, dir2), "--keep-since", sinceBase1)...); code != 0 || !r.Safe {
			t.Fatalf("base2's directory under keep-since base1: exit %d %+v", code, r)
		}
		r, code := pruneCheckJSON(t, append(arch, "--delete", writeList(t, filepath.Join(dir2, "backup_label")), "--min-backups", "3")...)
		if code != 1 || r.Culprit == nil || r.Culprit.Key != dir2 ||
			!strings.HasPrefix(r.Message, "deleting backup base2 ("+dir2+") breaks keeping 3 restorable backups: only 2 backups are restorable (") {
			t.Fatalf("base2's directory under min-backups 3: exit %d %+v", code, r)
		}
	})

	t.Run("files that do not exist: exit 2", func(t *testing.T) {
		_, stderr, code := run(t, append([]string{"prune-check", "--delete", writeList(t, segName(1, 0x99), "nope.txt", fx.orphans[0]), "--keep-since", sinceBase1}, arch...)...)
		if code != 2 || !strings.Contains(stderr, segName(1, 0x99)) || !strings.Contains(stderr, "nope.txt") || strings.Contains(stderr, fx.orphans[0]) {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		_, stderr, code = run(t, append([]string{"prune-check", "--delete", filepath.Join(t.TempDir(), "absent"), "--keep-since", sinceBase1}, arch...)...)
		if code != 2 || !strings.Contains(stderr, "deletion list") {
			t.Fatalf("unreadable list: exit %d: %s", code, stderr)
		}
		_, stderr, code = run(t, append([]string{"prune-check", "--delete", writeList(t, fx.orphans...)}, arch...)...)
		if code != 2 || !strings.Contains(stderr, "no recovery policy") {
			t.Fatalf("no policy: exit %d: %s", code, stderr)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		out, stderr, code := runStdin(t, strings.Join(fx.orphans, "\n")+"\n", append([]string{"prune-check", "--delete", "-", "--keep-since", sinceBase1}, arch...)...)
		if code != 0 || !strings.HasPrefix(out, "SAFE") {
			t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
		}
	})

	t.Run("prune-plan output is accepted by prune-check and safe", func(t *testing.T) {
		stopClock(t, end.Add(time.Minute))
		for _, tc := range []struct {
			policy  []string
			backups bool
			has     []string
			hasNot  []string
			kept    int
		}{
			{[]string{"--keep-since", sinceBase1}, true, fx.orphans, []string{segName(1, base1Seg)}, 3},
			{[]string{"--keep-since", sinceBase2}, true, base1Files, []string{segName(1, base2Seg), fx.ids["base2"]}, 2},
			{[]string{"--keep-since", sinceBase2}, false, base1Files, []string{segName(1, base2Seg)}, 2},
			{[]string{"--keep-since", sinceBase3}, true, []string{segName(1, base3Seg-3), segName(2, base3Seg-1), fx.ids["base2"]}, []string{fx.hist, segName(2, base3Seg)}, 1},
			{[]string{"--min-backups", "2"}, true, base1Files, []string{segName(1, base2Seg)}, 2},
			{[]string{"--min-backups", "1", "--keep-target", "time:" + ts(fx.from["base2"].Add(time.Second))}, true, base1Files, []string{segName(1, base2Seg)}, 2},
			{[]string{"--keep-window", fmt.Sprintf("%dms", time.Minute.Milliseconds()+end.Sub(fx.from["base3"]).Milliseconds()-500)}, true, []string{fx.ids["base2"]}, []string{segName(2, base3Seg)}, 1},
		} {
			a := []string{"--archive", lab.Archive}
			if tc.backups {
				a = append(a, "--backups", lab.Backups)
			}
			out, stderr, code := run(t, append(append([]string{"prune-plan"}, a...), tc.policy...)...)
			if code != 0 {
				t.Fatalf("%v: prune-plan exit %d\n%s\n%s", tc.policy, code, out, stderr)
			}
			got := strings.Fields(out)
			for _, f := range tc.has {
				if !contains(got, f) {
					t.Errorf("%v: plan lacks %s: %v", tc.policy, f, got)
				}
			}
			for _, f := range tc.hasNot {
				if contains(got, f) {
					t.Errorf("%v: plan deletes %s: %v", tc.policy, f, got)
				}
			}
			if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i][8:24] < got[j][8:24] }) {
				t.Errorf("%v: plan is not oldest first: %v", tc.policy, got)
			}
			if !strings.Contains(stderr, "BACKUPS KEPT") || !strings.Contains(stderr, fmt.Sprintf(" %d (", tc.kept)) {
				t.Errorf("%v: summary on stderr does not keep %d backups:\n%s", tc.policy, tc.kept, stderr)
			}
			r, code := pruneCheckJSON(t, append(append(a, "--delete", writeList(t, got...)), tc.policy...)...)
			if code != 0 || !r.Safe || r.Files != len(got) {
				t.Errorf("%v: prune-check of the plan: exit %d %+v", tc.policy, code, r)
			}
		}
		// A policy that does not hold now: nothing is planned, exit 1.
		out, stderr, code := run(t, append([]string{"prune-plan", "--keep-window", "1w"}, arch...)...)
		if code != 1 || out != "" || !strings.Contains(stderr, "nothing can be proven safe") {
			t.Fatalf("failing policy: exit %d\n%s\n%s", code, out, stderr)
		}
		// --output writes the list; JSON has the summary.
		p := filepath.Join(t.TempDir(), "plan.txt")
		out, _, code = run(t, append([]string{"prune-plan", "--keep-since", sinceBase2, "--output", p}, arch...)...)
		b, err := os.ReadFile(p)
		if code != 0 || err != nil || strings.Fields(string(b))[0] != fx.orphans[0] || !strings.Contains(out, "BACKUPS KEPT") {
			t.Fatalf("--output: exit %d %v\n%s\n%s", code, err, b, out)
		}
		out, _, code = run(t, append([]string{"prune-plan", "--keep-since", sinceBase2, "--format", "json"}, arch...)...)
		var pj struct {
			Holds   bool     `json:"holds"`
			Files   int      `json:"files"`
			Bytes   int64    `json:"bytes"`
			Kept    []string `json:"backups_kept"`
			Dropped []string `json:"backups_dropped"`
			Cut     string   `json:"cut"`
		}
		if err := json.Unmarshal([]byte(out), &pj); err != nil || code != 0 || !pj.Holds || pj.Files != len(base1Files) || pj.Bytes < int64(len(base1Files)-1)<<20 ||
			pj.Cut != "base2" || len(pj.Kept) != 2 || len(pj.Dropped) != 1 || pj.Dropped[0] != "base1" {
			t.Fatalf("json (exit %d, %v): %+v\n%s", code, err, pj, out)
		}
	})

	t.Run("backup tools' repositories are refused", func(t *testing.T) {
		for _, tc := range []struct{ file, tool string }{
			{"archive/main/archive.info", "pgbackrest"},
			{"basebackups_005/base_000000010000000000000002_backup_stop_sentinel.json", "wal-g"},
			{"main/base/20261118T020000/backup.info", "barman"},
		} {
			dir := t.TempDir()
			p := filepath.Join(dir, filepath.FromSlash(tc.file))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range [][]string{{"prune-check", "--delete", writeList(t, "000000010000000000000001")}, {"prune-plan"}} {
				_, stderr, code := run(t, append(cmd, "--archive", dir, "--min-backups", "1")...)
				if code != 2 || !strings.Contains(strings.ToLower(stderr), tc.tool) || !strings.Contains(stderr, "walaudit check") {
					t.Errorf("%s in %s: exit %d: %s", cmd[0], tc.file, code, stderr)
				}
			}
		}
	})

	t.Run("acknowledged gaps", func(t *testing.T) {
		dir := fx.copyArchive(t)
		gap := segName(1, base1Seg+1)
		if err := os.Remove(filepath.Join(dir, gap)); err != nil {
			t.Fatal(err)
		}
		ack := gap + "; reason=lost in the 2026-10 storage migration; by=alice; at=2026-10-02"
		a := []string{"--archive", dir, "--keep-since", sinceBase1}
		m := metricsOf(t, a...)
		if m.value(t, "walaudit_policy_ok") != 0 || m.value(t, "walaudit_policy_uncovered_seconds") <= 0 {
			t.Fatalf("gap without acknowledgment: policy ok %v", m.value(t, "walaudit_policy_ok"))
		}
		m = metricsOf(t, append(a, "--acknowledged-gap", ack)...)
		if m.value(t, "walaudit_policy_ok") != 1 || m.value(t, "walaudit_wal_gaps_acknowledged", "timeline", "1") != 1 || m.value(t, "walaudit_findings", "severity", "warning") < 1 {
			t.Fatalf("acknowledged gap: policy ok %v", m.value(t, "walaudit_policy_ok"))
		}
		// The same in a config file.
		cfg := filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf("keep-since: %s\nacknowledged-gap:\n  - first: %s\n    reason: lost in the 2026-10 storage migration\n    by: alice\n    at: 2026-10-02\n", sinceBase1, gap)), 0o644); err != nil {
			t.Fatal(err)
		}
		if m := metricsOf(t, "--archive", dir, "--config", cfg); m.value(t, "walaudit_policy_ok") != 1 {
			t.Fatal("acknowledged gap from the config file is not applied")
		}
		// Deleting the backup after the gap would widen what the gap costs.
		r, code := pruneCheckJSON(t, append(a, "--acknowledged-gap", ack, "--delete", writeList(t, fx.ids["base2"]))...)
		if code != 1 || r.Culprit == nil || r.Culprit.Key != fx.ids["base2"] {
			t.Fatalf("deleting base2's .backup behind an acknowledged gap: exit %d %+v", code, r)
		}
		if !checkHasPolicy() {
			t.Skip("cmd_check.go does not wire in the policy flags yet")
		}
		r2, code := checkAsJSON(t, a...)
		if code != 1 || !hasFinding(r2, "POLICY_UNCOVERED", "error") {
			t.Fatalf("check without acknowledgment: exit %d %+v", code, r2.Findings)
		}
		r2, code = checkAsJSON(t, append(a, "--acknowledged-gap", ack)...)
		if code != 0 || !hasFinding(r2, "WAL_GAP_ACKNOWLEDGED", "warning") || hasFinding(r2, "WAL_GAP", "") {
			t.Fatalf("check with acknowledgment: exit %d %+v", code, r2.Findings)
		}
		// A new gap still fails.
		if err := os.Remove(filepath.Join(dir, segName(1, base2Seg+1))); err != nil {
			t.Fatal(err)
		}
		r2, code = checkAsJSON(t, append(a, "--acknowledged-gap", ack)...)
		if code != 1 || !hasFinding(r2, "POLICY_UNCOVERED", "error") || !hasFinding(r2, "WAL_GAP_ACKNOWLEDGED", "") {
			t.Fatalf("check with a new gap: exit %d %+v", code, r2.Findings)
		}
	})

	t.Run("metrics", func(t *testing.T) { testRetentionMetrics(t, fx) })
	t.Run("check with a policy", func(t *testing.T) { testCheckPolicy(t, fx) })
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasFinding(r checkJSON, code, severity string) bool {
	for _, f := range r.Findings {
		if f.Code == code && (severity == "" || f.Severity == severity) {
			return true
		}
	}
	return false
}

func gzipCopy(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
