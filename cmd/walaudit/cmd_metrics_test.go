package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/walaudit/walaudit/plan/pgserver/pgtest"
	"github.com/walaudit/walaudit/plan/policy"
)

type metricSet map[string]*dto.MetricFamily

func parseMetrics(t *testing.T, text string) metricSet {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, text)
	}
	return fams
}

// metricsOf runs `walaudit metrics` and parses its output.
func metricsOf(t *testing.T, args ...string) metricSet {
	t.Helper()
	out, stderr, code := run(t, append([]string{"metrics"}, args...)...)
	if code != 0 {
		t.Fatalf("metrics %v: exit %d\n%s\n%s", args, code, out, stderr)
	}
	return parseMetrics(t, out)
}

// value returns the metric's value for the label pairs given (name, value…).
func (m metricSet) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := m.lookup(name, labels...)
	if !ok {
		t.Fatalf("no metric %s%v", name, labels)
	}
	return v
}

func (m metricSet) lookup(name string, labels ...string) (float64, bool) {
	f := m[name]
	if f == nil {
		return 0, false
	}
next:
	for _, mt := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range mt.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case mt.Gauge != nil:
			return mt.Gauge.GetValue(), true
		case mt.Counter != nil:
			return mt.Counter.GetValue(), true
		case mt.Untyped != nil:
			return mt.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func near(a, b, eps float64) bool { return a-b < eps && b-a < eps }

var metricNameRe = regexp.MustCompile(`^walaudit_[a-z_]+$`)

func TestMetricNamesFollowConventions(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range policy.MetricNames() {
		if !metricNameRe.MatchString(n) {
			t.Errorf("metric %s: want walaudit_ and lower-case words", n)
		}
		if strings.Contains(n, "timestamp") && !strings.HasSuffix(n, "_timestamp_seconds") {
			t.Errorf("metric %s: timestamps end in _timestamp_seconds", n)
		}
		if (strings.Contains(n, "age") || strings.Contains(n, "duration")) && !strings.HasSuffix(n, "_seconds") {
			t.Errorf("metric %s: durations end in _seconds", n)
		}
		if !strings.Contains(string(readme), "`"+n+"`") {
			t.Errorf("metric %s is not documented in README.md", n)
		}
	}
}

func testRetentionMetrics(t *testing.T, fx *retentionFixture) {
	lab := fx.lab
	now := fx.to["base3"].Add(time.Minute)
	stopClock(t, now)
	m := metricsOf(t, "--archive", lab.Archive, "--backups", lab.Backups,
		"--keep-since", ts(fx.from["base2"].Add(time.Second)), "--min-backups", "2", "--max-archive-age", "1h")
	end := unix(fx.to["base3"])
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"walaudit_check_success", nil, 1},
		{"walaudit_policy_ok", nil, 1},
		{"walaudit_policy_violations", nil, 0},
		{"walaudit_policy_uncovered_seconds", nil, 0},
		{"walaudit_latest_reachable", nil, 1},
		{"walaudit_backups", nil, 3},
		{"walaudit_backups_restorable", nil, 3},
		{"walaudit_archive_newest_commit_timestamp_seconds", nil, end},
		{"walaudit_recoverable_until_timestamp_seconds", []string{"timeline", "2"}, end},
		{"walaudit_recoverable_from_timestamp_seconds", []string{"timeline", "2"}, unix(fx.from["base1"])},
		{"walaudit_recoverable_from_timestamp_seconds", []string{"timeline", "1"}, unix(fx.from["base1"])},
		{"walaudit_wal_gaps", []string{"timeline", "1"}, 0},
		{"walaudit_findings", []string{"severity", "error"}, 0},
		{"walaudit_archive_max_age_seconds", nil, 3600},
		{"walaudit_check_timestamp_seconds", nil, unix(now)},
		{"walaudit_policy_required_from_timestamp_seconds", nil, unix(fx.from["base2"].Add(time.Second))},
	} {
		if got := m.value(t, tc.name, tc.labels...); !near(got, tc.want, 1e-3) {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// Timeline 1 ends where the old primary stopped, before timeline 2's commits.
	if u1 := m.value(t, "walaudit_recoverable_until_timestamp_seconds", "timeline", "1"); !(u1 < end && u1 > unix(fx.from["base2"])) {
		t.Errorf("timeline 1 recoverable until %v, want between base2's start and %v", u1, end)
	}
	if lsn := m.value(t, "walaudit_archive_newest_segment_end_lsn_bytes", "timeline", "2"); lsn != m.value(t, "walaudit_recoverable_until_lsn_bytes", "timeline", "2") {
		t.Errorf("newest segment ends at %v but recovery reaches %v", lsn, m.value(t, "walaudit_recoverable_until_lsn_bytes", "timeline", "2"))
	}
	age := m.value(t, "walaudit_backup_newest_age_seconds")
	if bts := m.value(t, "walaudit_backup_newest_timestamp_seconds"); !near(age, unix(now)-bts, 1e-3) || age <= 0 || bts < unix(fx.from["base3"])-2 {
		t.Errorf("newest backup at %v, age %v", bts, age)
	}
	walTS := m.value(t, "walaudit_archive_newest_wal_timestamp_seconds")
	if !near(m.value(t, "walaudit_archive_newest_wal_age_seconds"), unix(now)-walTS, 1e-3) {
		t.Errorf("newest WAL age does not match its timestamp")
	}
	// Every metric carries the archive label.
	for name, f := range m {
		for _, mt := range f.Metric {
			ok := false
			for _, lp := range mt.Label {
				ok = ok || (lp.GetName() == "archive" && lp.GetValue() == lab.Archive)
			}
			if !ok {
				t.Errorf("%s lacks the archive label", name)
			}
		}
	}

	// A policy that does not hold.
	m = metricsOf(t, "--archive", lab.Archive, "--keep-window", "1h", "--min-backups", "4")
	if m.value(t, "walaudit_policy_ok") != 0 || m.value(t, "walaudit_policy_violations") != 2 {
		t.Errorf("failing policy: ok %v, violations %v", m.value(t, "walaudit_policy_ok"), m.value(t, "walaudit_policy_violations"))
	}
	if unc := m.value(t, "walaudit_policy_uncovered_seconds"); !near(unc, unix(fx.from["base1"])-unix(now.Add(-time.Hour)), 1e-3) {
		t.Errorf("uncovered %v s, want %v", unc, unix(fx.from["base1"])-unix(now.Add(-time.Hour)))
	}

	// --output writes the textfile atomically; the evaluation uses (and
	// fills) the WAL summary cache, and a second run from it writes the
	// same metrics.
	p := filepath.Join(t.TempDir(), "walaudit.prom")
	cacheDir := t.TempDir()
	var first string
	for i := 0; i < 2; i++ {
		if _, stderr, code := run(t, "metrics", "--archive", lab.Archive, "--output", p, "--cache-dir", cacheDir); code != 0 {
			t.Fatalf("--output: exit %d: %s", code, stderr)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if parseMetrics(t, string(b)).value(t, "walaudit_backups") != 3 {
			t.Errorf("textfile: %s", b)
		}
		// The check time differs between runs; the rest must not.
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, "_seconds") && !strings.Contains(l, "timestamp") {
				keep = append(keep, l)
			}
		}
		if i == 0 {
			first = strings.Join(keep, "\n")
		} else if got := strings.Join(keep, "\n"); got != first {
			t.Errorf("metrics from the cache differ:\n%s\nfirst run:\n%s", got, first)
		}
	}
	if st, err := os.Stat(filepath.Join(cacheDir, "summaries.sqlite")); err != nil || st.Size() == 0 {
		t.Errorf("metrics did not use the summary cache in %s: %v", cacheDir, err)
	}

	// An archive that cannot be read: exit 2, and the failure is a metric.
	out, _, code := run(t, "metrics", "--archive", filepath.Join(t.TempDir(), "nope"))
	if code != 2 || parseMetrics(t, out).value(t, "walaudit_check_success") != 0 {
		t.Errorf("unreadable archive: exit %d\n%s", code, out)
	}

	t.Run("listen", func(t *testing.T) { testMetricsListen(t, lab.Archive) })
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testMetricsListen(t *testing.T, archive string) {
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- newApp(&out, &errb).RunContext(ctx, []string{"walaudit", "metrics", "--archive", archive, "--listen", "127.0.0.1:0", "--min-interval", "1h"})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("metrics --listen ended with %v", err)
		}
	}()
	re := regexp.MustCompile(`http://(\S+)/metrics`)
	var url string
	for i := 0; i < 100 && url == ""; i++ {
		if m := re.FindStringSubmatch(errb.String()); m != nil {
			url = "http://" + m[1] + "/metrics"
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if url == "" {
		t.Fatalf("no listen address announced: %s", errb.String())
	}
	scrape := func() metricSet {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("scrape: %s\n%s", resp.Status, b)
		}
		return parseMetrics(t, string(b))
	}
	a := scrape()
	b := scrape()
	if a.value(t, "walaudit_backups") != 3 || a.value(t, "walaudit_check_success") != 1 {
		t.Fatalf("served metrics: backups %v", a.value(t, "walaudit_backups"))
	}
	if a.value(t, "walaudit_check_timestamp_seconds") != b.value(t, "walaudit_check_timestamp_seconds") {
		t.Errorf("a scrape within --min-interval re-checked the archive")
	}
}

// TestPrimaryLiveView compares a running primary with its archive, then
// breaks its archive_command and watches pg_stat_archiver report it.
func TestPrimaryLiveView(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab := pgtest.NewLab(ctx, t, nil)
	p, err := lab.InitPrimary(ctx, "live", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lab.BaseBackup(ctx, p, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.SwitchAndWait(ctx, p); err != nil {
		t.Fatal(err)
	}
	dsn := p.ConnString("")
	cur, err := p.QueryString(ctx, `SELECT pg_walfile_name(pg_current_wal_lsn())`)
	if err != nil {
		t.Fatal(err)
	}
	m := metricsOf(t, "--archive", lab.Archive, "--primary", dsn)
	if m.value(t, "walaudit_primary_up") != 1 || m.value(t, "walaudit_primary_unarchived_segments") != 0 ||
		m.value(t, "walaudit_primary_archiver_failing") != 0 || m.value(t, "walaudit_primary_archiver_archived_total") < 1 {
		t.Fatalf("healthy primary: up %v unarchived %v failing %v", m.value(t, "walaudit_primary_up"),
			m.value(t, "walaudit_primary_unarchived_segments"), m.value(t, "walaudit_primary_archiver_failing"))
	}
	if _, ok := m.lookup("walaudit_primary_current_lsn_bytes", "timeline", "1"); !ok {
		t.Fatal("no walaudit_primary_current_lsn_bytes")
	}
	if checkHasPolicy() {
		r, code := checkAsJSON(t, "--archive", lab.Archive, "--primary", dsn)
		found := false
		for _, f := range r.Findings {
			found = found || (f.Code == "PRIMARY_WAL_POSITION" && f.File == cur)
		}
		if code != 0 || !found {
			t.Fatalf("check --primary: exit %d, findings %+v (current file %s)", code, r.Findings, cur)
		}
	}

	// The archiver fails from now on.
	if err := p.Exec(ctx, `ALTER SYSTEM SET archive_command = 'false'`, `SELECT pg_reload_conf()`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	var failed string
	for i := 0; i < 3; i++ {
		if err := p.Exec(ctx, `CREATE TABLE IF NOT EXISTS x(i int)`, `INSERT INTO x VALUES (1)`, `SELECT pg_switch_wal()`); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		failed, err = p.QueryString(ctx, `SELECT coalesce(last_failed_wal, '') FROM pg_stat_archiver WHERE failed_count > 0`)
		if err == nil && failed != "" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if failed == "" {
		t.Fatalf("the archiver never failed: %v", err)
	}
	m = metricsOf(t, "--archive", lab.Archive, "--primary", dsn)
	if m.value(t, "walaudit_primary_archiver_failing") != 1 || m.value(t, "walaudit_primary_archiver_failed_total") < 1 ||
		m.value(t, "walaudit_primary_unarchived_segments") < 1 || m.value(t, "walaudit_findings", "severity", "error") < 1 {
		t.Fatalf("failing archiver: failing %v failed %v unarchived %v", m.value(t, "walaudit_primary_archiver_failing"),
			m.value(t, "walaudit_primary_archiver_failed_total"), m.value(t, "walaudit_primary_unarchived_segments"))
	}
	if _, ok := m.lookup("walaudit_primary_archiver_last_failed_timestamp_seconds"); !ok {
		t.Error("no walaudit_primary_archiver_last_failed_timestamp_seconds")
	}
	if checkHasPolicy() {
		r, code := checkAsJSON(t, "--archive", lab.Archive, "--primary", dsn)
		found := false
		for _, f := range r.Findings {
			found = found || (f.Code == "ARCHIVER_FAILING" && f.Severity == "error" && f.File == failed)
		}
		if code != 1 || !found {
			t.Fatalf("check --primary with a failing archiver: exit %d, findings %+v", code, r.Findings)
		}
		out, _, code := run(t, "check", "--archive", lab.Archive, "--primary", dsn, "--format", "nagios")
		if code != 2 || !strings.HasPrefix(out, "WALAUDIT CRITICAL - ARCHIVER_FAILING") {
			t.Fatalf("nagios: exit %d: %s", code, out)
		}
	}
	_, stderr, code := run(t, "metrics", "--archive", lab.Archive, "--primary", "host=/nonexistent port=1 user=postgres connect_timeout=2")
	if code != 0 || !strings.Contains(stderr, "primary") {
		t.Errorf("unreachable primary: exit %d: %s", code, stderr)
	}
}
