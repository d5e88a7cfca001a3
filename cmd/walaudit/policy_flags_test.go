package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func TestRejoinSplitValues(t *testing.T) {
	got := rejoin([]string{"name:a", "b", "latest", "time:2026-11-18T02:00:00Z"}, startsTarget)
	want := []string{"name:a,b", "latest", "time:2026-11-18T02:00:00Z"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	got = rejoin([]string{"000000010000000A000000F0..000000010000000A000000F3; reason=disk lost", " restored later; by=alice"}, startsGap)
	if len(got) != 1 || !strings.Contains(got[0], "disk lost, restored later") {
		t.Fatalf("gap: %q", got)
	}
}

func policyContext(t *testing.T, args ...string) *cli.Context {
	t.Helper()
	set := flag.NewFlagSet("t", flag.ContinueOnError)
	for _, f := range checkPolicyFlags() {
		if err := f.Apply(set); err != nil {
			t.Fatal(err)
		}
	}
	if err := set.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cli.NewContext(cli.NewApp(), set, nil)
}

func TestPolicyFromFlags(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(cfg, []byte(`# walaudit recovery policy
keep-window: 7d
min-backups: 2
keep-target:
  - name:before-migration
max-archive-age: 15m
acknowledged-gap:
  - first: 000000010000000A000000F0
    last: 000000010000000A000000F3
    reason: lost in the 2026-10 storage migration
    by: alice
    at: 2026-10-02
  - "000000020000000B00000001; reason=disk"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := policyFromFlags(policyContext(t, "--config", cfg, "--keep-window", "2w", "--keep-target", "name:a,b", "--keep-target", "xid:751"))
	if err != nil {
		t.Fatal(err)
	}
	if pol.KeepWindow != 14*24*time.Hour || pol.MinBackups != 2 || pol.MaxArchiveAge != 15*time.Minute || len(pol.KeepTargets) != 3 || len(pol.Acknowledged) != 2 {
		t.Fatalf("merged policy: %+v", pol)
	}
	if pol.KeepTargets[1].Name != "a,b" {
		t.Fatalf("a comma inside a target was split: %+v", pol.KeepTargets)
	}
	g := pol.Acknowledged[0]
	if g.Last != "000000010000000A000000F3" || g.By != "alice" || g.At != "2026-10-02" || !g.Contains("000000010000000A000000F1.gz") || g.Contains("000000010000000A000000F4") {
		t.Fatalf("acknowledged gap: %+v", g)
	}
	b, err := json.Marshal(pol)
	if err != nil || !strings.Contains(string(b), `"keep_window":"2w"`) || !strings.Contains(string(b), `"keep_targets":["name:before-migration","name:a,b","xid:751"]`) {
		t.Fatalf("policy JSON %s (%v)", b, err)
	}
	for _, bad := range [][]string{
		{"--keep-window", "7 days"},
		{"--keep-since", "2026-11-01 00:00:00"},
		{"--keep-target", "tomorrow"},
		{"--acknowledged-gap", "000000010000000A000000F3..000000010000000A000000F0"},
		{"--acknowledged-gap", "000000010000000A000000F0..000000020000000A000000F3"},
		{"--min-backups", "-1"},
		{"--config", filepath.Join(t.TempDir(), "absent.yaml")},
	} {
		if _, err := policyFromFlags(policyContext(t, bad...)); err == nil || exitCode(err) != 2 {
			t.Errorf("%v: err %v, want a usage error", bad, err)
		}
	}
	typo := filepath.Join(t.TempDir(), "typo.yaml")
	os.WriteFile(typo, []byte("keep_window: 7d\n"), 0o644)
	if _, err := policyFromFlags(policyContext(t, "--config", typo)); err == nil || !strings.Contains(err.Error(), "keep_window") {
		t.Errorf("unknown config key: %v", err)
	}
}

// ageArchive copies the check fixture's archive and makes every file
// look stored age ago.
func ageArchive(t *testing.T, age time.Duration) string {
	t.Helper()
	dir := copyArchive(t, getCheckFixture(t))
	when := time.Now().Add(-age)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.Chtimes(filepath.Join(dir, e.Name()), when, when); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCheckFreshnessAndNagios(t *testing.T) {
	if !checkHasPolicy() {
		t.Skip("cmd_check.go does not wire in the policy flags yet")
	}
	dir := ageArchive(t, 2*time.Hour)
	r, code := checkAsJSON(t, "--archive", dir, "--max-archive-age", "15m")
	if code != 1 || !hasFinding(r, "ARCHIVE_STALE", "error") || r.Verdict != "reachable" {
		t.Fatalf("stale archive: exit %d %s %+v", code, r.Verdict, r.Findings)
	}
	r, code = checkAsJSON(t, "--archive", dir, "--max-archive-age", "3h")
	if code != 0 || !hasFinding(r, "ARCHIVE_AGING", "warning") || hasFinding(r, "ARCHIVE_STALE", "") {
		t.Fatalf("aging archive: exit %d %+v", code, r.Findings)
	}
	out, _, code := run(t, "check", "--archive", dir, "--max-archive-age", "15m")
	if code != 1 || !strings.Contains(out, "FRESHNESS STALE") || !strings.Contains(out, "error ARCHIVE_STALE") {
		t.Fatalf("table (exit %d):\n%s", code, out)
	}

	for _, tc := range []struct {
		args  []string
		code  int
		state string
	}{
		{[]string{"--archive", dir, "--max-archive-age", "5h"}, 0, "OK"},
		{[]string{"--archive", dir, "--max-archive-age", "3h"}, 1, "WARNING"},
		{[]string{"--archive", dir, "--max-archive-age", "15m"}, 2, "CRITICAL"},
		{[]string{"--archive", dir, "--min-backups", "2"}, 2, "CRITICAL"},
		{[]string{"--archive", dir, "--target", "name:no-such-point"}, 2, "CRITICAL"},
		{[]string{"--archive", filepath.Join(dir, "nope")}, 3, "UNKNOWN"},
		{[]string{"--archive", dir, "--keep-window", "forever"}, 3, "UNKNOWN"},
	} {
		out, _, code := run(t, append([]string{"check", "--format", "nagios"}, tc.args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != tc.code || len(lines) != 1 || !strings.HasPrefix(out, "WALAUDIT "+tc.state+" - ") {
			t.Errorf("%v: exit %d, output %q; want exit %d %s on one line", tc.args, code, out, tc.code, tc.state)
			continue
		}
		if tc.code < 3 && (!strings.Contains(out, " | ") || !strings.Contains(out, "backups=1;;;0") || !strings.Contains(out, "newest_wal_age=")) {
			t.Errorf("%v: no performance data: %s", tc.args, out)
		}
	}
	out, _, _ = run(t, "check", "--format", "nagios", "--archive", dir, "--max-archive-age", "3h")
	if !strings.Contains(out, "newest_wal_age=7200s;5400;10800;0") && !strings.Contains(out, "newest_wal_age=7201s;5400;10800;0") {
		t.Errorf("freshness perfdata: %s", out)
	}
}

func testCheckPolicy(t *testing.T, fx *retentionFixture) {
	if !checkHasPolicy() {
		t.Skip("cmd_check.go does not wire in the policy flags yet")
	}
	lab := fx.lab
	stopClock(t, fx.to["base3"].Add(time.Minute))
	out, _, code := run(t, "check", "--archive", lab.Archive, "--backups", lab.Backups, "--format", "json", "--keep-since", ts(fx.from["base1"].Add(time.Second)),
		"--keep-target", "time:"+ts(fx.from["base2"].Add(time.Second)), "--min-backups", "3")
	var r struct {
		Verdict string `json:"verdict"`
		Policy  struct {
			Holds    bool `json:"holds"`
			Required struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"required"`
			Targets []struct {
				Verdict string `json:"verdict"`
				Backup  string `json:"backup"`
			} `json:"targets"`
			RestorableBackups int `json:"restorable_backups"`
		} `json:"policy"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || r.Verdict != "reachable" || !r.Policy.Holds ||
		r.Policy.RestorableBackups != 3 || len(r.Policy.Targets) != 1 || r.Policy.Targets[0].Backup != "base2" ||
		!strings.HasPrefix(r.Policy.Required.To, fx.to["base3"].UTC().Format("2006-01-02T15:04:05")) {
		t.Fatalf("check with a policy that holds (exit %d, %v): %+v\n%s", code, err, r, out)
	}
	out, _, code = run(t, "check", "--archive", lab.Archive, "--keep-window", "1h")
	if code != 1 || !strings.Contains(out, "POLICY    DOES NOT HOLD (keep-window 1h)") || !strings.Contains(out, "error POLICY_UNCOVERED") {
		t.Fatalf("check with a failing policy (exit %d):\n%s", code, out)
	}
	out, _, code = run(t, "check", "--archive", lab.Archive, "--keep-target", "name:a,b", "--format", "nagios")
	if code != 2 || !strings.Contains(out, "recovery to target name:a,b") {
		t.Fatalf("nagios keep-target with a comma (exit %d): %s", code, out)
	}
}
