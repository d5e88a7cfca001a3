package drill

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestTranscriptGolden pins the exact block format of the issue.
func TestTranscriptGolden(t *testing.T) {
	sessions := []Session{
		{
			Command: "walaudit drill --backups /srv/backups --target lsn:0/3000148",
			Result:  "paused at 0/3000148 on timeline 1",
			Evidence: []KV{
				{EvBackupID, "20260401T0930"},
				{EvTarget, "lsn:0/3000148"},
				{EvActualStopLSN, "0/3000148"},
				{EvStopLine, `recovery stopping after WAL location (LSN) "0/3000148"`},
				{CheckEvidenceName("orders=total, ok"), "pass"},
			},
		},
		{
			Command:  "SELECT id, email\nFROM customers WHERE note = 'a, b=c'",
			Result:   "",
			Evidence: nil,
		},
		{
			Command:  `SELECT "Id" FROM t`,
			Result:   ` leading space`,
			Evidence: []KV{{"x", ""}, {"y", " pad "}, {"z", "a\tb"}, {"w", `back\slash`}, {"v", "naïve"}},
		},
	}
	var b bytes.Buffer
	if err := WriteTranscript(&b, sessions); err != nil {
		t.Fatal(err)
	}
	want := `SESSION_START
command: walaudit drill --backups /srv/backups --target lsn:0/3000148
result: paused at 0/3000148 on timeline 1
KEY_EVIDENCE: backup_id=20260401T0930, target=lsn:0/3000148, actual_stop_lsn=0/3000148, stop_line="recovery stopping after WAL location (LSN) \"0/3000148\"", check_orders_total__ok=pass
SESSION_END

SESSION_START
command: "SELECT id, email\nFROM customers WHERE note = 'a, b=c'"
result: ""
KEY_EVIDENCE:
SESSION_END

SESSION_START
command: SELECT "Id" FROM t
result: " leading space"
KEY_EVIDENCE: x="", y=" pad ", z="a\tb", w="back\\slash", v=naïve
SESSION_END
`
	if b.String() != want {
		t.Fatalf("transcript differs:\n--- got\n%s\n--- want\n%s", b.String(), want)
	}
	got, err := ParseTranscript(strings.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sessions) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, sessions)
	}
}

// TestEvidenceQuoting checks each quoting trigger alone.
func TestEvidenceQuoting(t *testing.T) {
	for _, c := range []struct {
		v      string
		quoted bool
	}{
		{"plain", false}, {"0/3000148", false}, {"time:2026-04-01T09:41:23Z", false}, {"naïve", false},
		{"", true}, {"a,b", true}, {"a=b", true}, {`a"b`, true}, {`a\b`, true}, {"a\nb", true},
		{"a\rb", true}, {" a", true}, {"a ", true}, {"a\x7fb", true}, {"\xff", true}, {"a\u00a0", true},
		{"a\u2028b", true},
	} {
		s := Session{Evidence: []KV{{"k", c.v}}}
		out, err := s.Format()
		if err != nil {
			t.Fatal(err)
		}
		line := strings.Split(out, "\n")[3]
		if got := strings.HasPrefix(line, `KEY_EVIDENCE: k="`); got != c.quoted {
			t.Errorf("%q: line %q, quoted=%v want %v", c.v, line, got, c.quoted)
		}
		back, err := ParseEvidence(strings.TrimPrefix(line, "KEY_EVIDENCE:"))
		if err != nil || len(back) != 1 || back[0].Value != c.v {
			t.Errorf("%q: parsed back %#v, %v", c.v, back, err)
		}
	}
	// Commas and '=' stay bare on the command line, a leading quote does not.
	for _, c := range []struct {
		v    string
		line string
	}{
		{"a, b = c", "command: a, b = c"},
		{`"quoted"`, `command: "\"quoted\""`},
		{`x "y"`, `command: x "y"`},
	} {
		out, _ := Session{Command: c.v}.Format()
		if got := strings.Split(out, "\n")[1]; got != c.line {
			t.Errorf("command %q: got %q want %q", c.v, got, c.line)
		}
	}
	if _, err := (Session{Evidence: []KV{{"bad name", "x"}}}).Format(); err == nil {
		t.Error("a name with a space was accepted")
	}
	for _, bad := range []string{"a", "=x", "a=b c=d", `a="x`, "a=x,", "a=x y=z", "a=b=c", `a=x"y`, " a= x", "a=x , b=y"} {
		if _, err := ParseEvidence(bad); err == nil {
			t.Errorf("ParseEvidence(%q) accepted", bad)
		}
	}
	if got, err := ParseEvidence("a=1,b=2,   c=\"3\""); err != nil || len(got) != 3 || got[2].Value != "3" {
		t.Errorf("lenient spacing: %v %v", got, err)
	}
}

func TestParseTranscriptErrors(t *testing.T) {
	for _, bad := range []string{
		"junk\n",
		"SESSION_START\nresult: x\n",
		"SESSION_START\ncommand: x\nresult: y\nKEY_EVIDENCE: a=1\n",
		"SESSION_START\ncommand: x\nresult: y\nKEY_EVIDENCE: a=1\nEND\n",
		"SESSION_START\ncommand: \"x\nresult: y\nKEY_EVIDENCE:\nSESSION_END\n",
	} {
		if _, err := ParseTranscript(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// FuzzEvidence: whatever the command, result and evidence values, the
// transcript parses back to the same sessions.
func FuzzEvidence(f *testing.F) {
	for _, s := range []string{"", "a", "a, b", "x=y", `"`, `\`, "\n", " x ", "\xff\xfe", "naïve", "\u2028", "a\r", "SESSION_END"} {
		f.Add(s, s, "name", s)
	}
	f.Fuzz(func(t *testing.T, cmd, result, name, value string) {
		if !evNameRe.MatchString(name) {
			name = CheckEvidenceName(name)
		}
		in := []Session{{Command: cmd, Result: result, Evidence: []KV{{name, value}, {"second", value + ","}}}}
		var b bytes.Buffer
		if err := WriteTranscript(&b, append(in, in...)); err != nil {
			t.Fatal(err)
		}
		got, err := ParseTranscript(&b)
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, b.String())
		}
		if len(got) != 2 || !reflect.DeepEqual(got[0], in[0]) || !reflect.DeepEqual(got[1], in[0]) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, in)
		}
		for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
			if strings.ContainsAny(line, "\r") {
				t.Fatalf("raw CR in transcript line %q", line)
			}
		}
	})
}

func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	r := &Report{
		Pass:    false,
		Summary: "Restored backup b1 to lsn:0/3000148; one check failed.",
		Started: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC), Finished: time.Date(2026, 4, 1, 9, 5, 0, 0, time.UTC),
		Sessions: []Session{
			{Command: "restore b1", Result: "ok", Evidence: []KV{{EvBackupID, "b1"}, {EvRestoreSeconds, "1.500"}}},
			{Command: "SELECT 1 ```", Result: "fail", Evidence: []KV{{CheckEvidenceName("c1"), "fail"}, {EvRestoreSeconds, "2.000"}}},
		},
		Checks:      []CheckResult{{Name: "c1", Database: "postgres", Expected: `"1"`, Actual: "\"2|3\"\nmore", Duration: 1500 * time.Millisecond}},
		Fingerprint: "abc",
		Conclusions: []string{"The restore reached 0/3000148 as planned."},
	}
	if err := WriteReport(dir, r); err != nil {
		t.Fatal(err)
	}
	tr, err := os.ReadFile(filepath.Join(dir, TranscriptFile))
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTranscript(bytes.NewReader(tr))
	if err != nil || !reflect.DeepEqual(back, r.Sessions) {
		t.Fatalf("transcript.txt does not parse back: %v\n%s", err, tr)
	}
	md, _ := os.ReadFile(filepath.Join(dir, ReportMDFile))
	for _, want := range []string{"# walaudit drill: FAIL", "| verdict | **FAIL** |", "| restore_seconds | 2.000 |",
		`| c1 | postgres | **FAIL** | "1" | "2\|3"<br>more | 1.500 |`, "- The restore reached 0/3000148 as planned.",
		"````text\nSESSION_START\ncommand: SELECT 1 ```\n"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	js, _ := os.ReadFile(filepath.Join(dir, ReportJSONFile))
	var got struct {
		Verdict     string            `json:"verdict"`
		KeyEvidence map[string]string `json:"key_evidence"`
		Sessions    []Session         `json:"sessions"`
		Checks      []CheckResult     `json:"checks"`
		Conclusions []string          `json:"conclusions"`
		Summary     string            `json:"summary"`
	}
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatalf("report.json: %v\n%s", err, js)
	}
	if got.Verdict != "FAIL" || got.KeyEvidence[EvRestoreSeconds] != "2.000" || got.KeyEvidence["check_c1"] != "fail" ||
		len(got.Sessions) != 2 || len(got.Checks) != 1 || got.Checks[0].Duration != 1500*time.Millisecond || got.Summary != r.Summary {
		t.Fatalf("report.json content: %+v", got)
	}
	r.Pass = true
	if !strings.HasPrefix(r.Markdown(), "# walaudit drill: PASS") {
		t.Error("PASS verdict not rendered")
	}
}
