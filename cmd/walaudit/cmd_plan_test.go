package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlanRunbook(t *testing.T) {
	lab := getCheckFixture(t)
	out, stderr, code := run(t, "plan", "--archive", lab.Archive, "--backups", lab.Backups, "--target", "name:rp1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"# Restore plan: name:rp1", "Use **base1**", "## 3. WAL files recovery will request",
		"recovery_target_name = 'rp1'", "recovery_target_action = 'pause'", "archive_mode = off",
		"wal-fetch --archive", `recovery stopping at restore point "rp1"`, "pg_last_wal_replay_lsn"} {
		if !strings.Contains(out, want) {
			t.Errorf("runbook lacks %q:\n%s", want, out)
		}
	}
	var rb struct {
		Verdict  string   `json:"verdict"`
		Requests []string `json:"wal_requests"`
		Settings []struct {
			Name, Value string
		} `json:"recovery_settings"`
		Stop *struct {
			LSN     string `json:"lsn"`
			LogLine string `json:"log_line"`
		} `json:"stop"`
	}
	out, _, code = run(t, "plan", "--format", "json", "--archive", lab.Archive, "--backups", lab.Backups, "--target", "immediate")
	if err := json.Unmarshal([]byte(out), &rb); err != nil || code != 0 {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	if rb.Verdict != "reachable" || len(rb.Requests) == 0 || rb.Stop == nil || rb.Stop.LogLine != "recovery stopping after reaching consistency" {
		t.Fatalf("json runbook: %+v", rb)
	}
	targets := 0
	for _, s := range rb.Settings {
		if strings.HasPrefix(s.Name, "recovery_target") && s.Name != "recovery_target_timeline" && s.Name != "recovery_target_action" && s.Name != "recovery_target_inclusive" {
			targets++
		}
	}
	if targets != 1 {
		t.Fatalf("want exactly one recovery target setting, got %d: %+v", targets, rb.Settings)
	}
	// Unreachable: exit 1 and the runbook says why instead of steps.
	dir := copyArchive(t, lab)
	segs := segmentsIn(t, dir)
	os.Remove(filepath.Join(dir, segs[len(segs)-1]))
	out, _, code = run(t, "plan", "--archive", dir, "--backups", lab.Backups, "--target", "name:rp1")
	if code != 1 || !strings.Contains(out, "nothing to restore") || !strings.Contains(out, segs[len(segs)-1]) {
		t.Fatalf("unreachable plan: exit %d\n%s", code, out)
	}
}
