package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/walname"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1d12h": 36 * time.Hour, "90m": 90 * time.Minute,
		"1w2d3h4m5s": (9*24+3)*time.Hour + 4*time.Minute + 5*time.Second, "1.5h": 90 * time.Minute, "250ms": 250 * time.Millisecond,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "7", "7 days", "d", "-1d", "0s", "1y"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	for d, want := range map[time.Duration]string{7 * 24 * time.Hour: "1w", 36 * time.Hour: "1d12h", 15 * time.Minute: "15m", 1500 * time.Millisecond: "1s500ms"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestAckGap(t *testing.T) {
	g, err := ParseAckGap("000000010000000A000000F0..000000010000000A000000F3; reason=lost; by=alice; at=2026-10-02")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"000000010000000A000000F0": true, "000000010000000A000000F3.zst": true, "000000010000000A000000F2.partial": true,
		"000000010000000A000000EF": false, "000000010000000A000000F4": false, "000000020000000A000000F1": false, "00000002.history": false,
	} {
		if g.Contains(name) != want {
			t.Errorf("Contains(%s) = %v", name, !want)
		}
	}
	if s := g.Describe(); s != "acknowledged gap 000000010000000A000000F0..000000010000000A000000F3 (lost, by alice, on 2026-10-02)" {
		t.Errorf("Describe: %s", s)
	}
	if g2, err := ParseAckGap(g.String()); err != nil || g2 != g {
		t.Errorf("round trip: %+v %v", g2, err)
	}
	if g, err := ParseAckGap("000000010000000A000000F0"); err != nil || g.Last != g.First {
		t.Errorf("single file: %+v %v", g, err)
	}
	for _, bad := range []string{"F0", "000000010000000A000000F0; note=x", "000000010000000A000000F0; reason"} {
		if _, err := ParseAckGap(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseConfig(t *testing.T) {
	p, err := ParseConfig([]byte("keep-window: 7d\nkeep-since: 2026-11-01T00:00:00Z\nmin-backups: 2\nkeep-target: [\"name:x\", latest]\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.KeepWindow != 7*24*time.Hour || p.MinBackups != 2 || len(p.KeepTargets) != 2 || !p.KeepSince.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v", p)
	}
	if p, err := ParseConfig(nil, "empty.yaml"); err != nil || !p.Empty() {
		t.Fatalf("empty config: %+v %v", p, err)
	}
	for _, bad := range []string{"keep_window: 7d", "keep-window: soon", "keep-since: 2026-11-01", "acknowledged-gap: [{first: x}]", "min-backups: -2"} {
		if _, err := ParseConfig([]byte(bad), "bad.yaml"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func at(s int) time.Time { return time.Date(2026, 11, 18, 2, 0, s, 0, time.UTC) }

func TestIntervals(t *testing.T) {
	b := func(id string) *BackupStatus {
		return &BackupStatus{BackupRef: plan.BackupRef{ID: id}, Restorable: true, Window: &plan.Window{}}
	}
	wins := []window{{from: at(0), to: at(10), b: b("a")}, {from: at(5), to: at(12), b: b("b")}, {from: at(20), to: at(30), b: b("c")}}
	cov := union(wins)
	if len(cov) != 2 || !cov[0].To.Equal(at(12)) || !cov[1].From.Equal(at(20)) {
		t.Fatalf("union: %+v", cov)
	}
	for _, tc := range []struct {
		from, to int
		want     [][2]int
	}{
		{0, 30, [][2]int{{12, 20}}},
		{-5, 30, [][2]int{{-5, 0}, {12, 20}}},
		{13, 15, [][2]int{{13, 15}}},
		{21, 29, nil},
		{25, 40, [][2]int{{30, 40}}},
	} {
		got := subtract(interval(at(tc.from), at(tc.to)), cov)
		if len(got) != len(tc.want) {
			t.Errorf("[%d,%d): %+v", tc.from, tc.to, got)
			continue
		}
		for i, w := range tc.want {
			if !got[i].From.Equal(at(w[0])) || !got[i].To.Equal(at(w[1])) {
				t.Errorf("[%d,%d): piece %d = %+v, want %v", tc.from, tc.to, i, got[i], w)
			}
		}
	}
	wins[1].b.EndFile = "00000001000000000000000A"
	wins[1].b.Window.ToLSN = 0xA00000
	cause, file := causeOf(interval(at(12), at(20)), wins)
	if file != "00000001000000000000000A" || !strings.Contains(cause, "backup b's recovery ends at 0/A00000 (segment 00000001000000000000000A is missing)") ||
		!strings.Contains(cause, "the next backup, c, is recoverable only from 2026-11-18 02:00:20") {
		t.Errorf("cause: %q %q", cause, file)
	}
	// The acknowledged gap excuses from the end of b to the start of c, c
	// starting after the gap; a gap with no backup after it excuses nothing.
	wins[2].b.StartLSN = 0xB00028
	wins[2].b.Window.FromTime = &plan.Timestamp{Time: at(20)}
	wins[1].b.Window.ToTime = &plan.Timestamp{Time: at(12)}
	pol := &Policy{Acknowledged: []AckGap{{First: "00000001000000000000000A", Last: "00000001000000000000000A"}}}
	backups := []BackupStatus{*wins[0].b, *wins[1].b, *wins[2].b}
	ex := excuses(pol, backups, walname.SegmentSize(1<<20))
	if len(ex) != 1 || !ex[0].From.Equal(at(12)) || !ex[0].To.Equal(at(20)) {
		t.Errorf("excuses: %+v", ex)
	}
	// A backup with no commit before the gap is excused from its start.
	backups[1].Window = &plan.Window{FromTime: &plan.Timestamp{Time: at(5)}}
	if ex := excuses(pol, backups, walname.SegmentSize(1<<20)); len(ex) != 1 || !ex[0].From.Equal(at(5)) {
		t.Errorf("excuses from a window without commits: %+v", ex)
	}
	backups[2].StartLSN = 0x900028
	if ex := excuses(pol, backups, walname.SegmentSize(1<<20)); len(ex) != 0 {
		t.Errorf("excuse without a later backup: %+v", ex)
	}
}

func TestDetectTool(t *testing.T) {
	for _, tc := range []struct {
		keys []string
		tool string
	}{
		{[]string{"000000010000000000000001", "000000010000000000000002.gz"}, ""},
		{[]string{"archive/db/archive.info", "archive/db/15-1/0000000100000000/000000010000000000000001-0123456789abcdef0123456789abcdef01234567.gz"}, "pgBackRest"},
		{[]string{"000000010000000000000001-0123456789abcdef0123456789abcdef01234567.gz"}, "pgBackRest"},
		{[]string{"wal_005/000000010000000000000001.lz4"}, "WAL-G"},
		{[]string{"basebackups_005/base_000000010000000000000002_backup_stop_sentinel.json"}, "WAL-G"},
		{[]string{"pg/wals/0000000100000000/000000010000000000000001", "pg/base/20261118T020000/backup.info"}, "Barman"},
		{[]string{"wals/xlog.db"}, "Barman"},
	} {
		var objs []store.ObjectInfo
		for _, k := range tc.keys {
			objs = append(objs, store.ObjectInfo{Key: k})
		}
		got := DetectTool(objs)
		switch {
		case tc.tool == "" && got != nil:
			t.Errorf("%v: detected %s", tc.keys, got.Name)
		case tc.tool != "" && (got == nil || got.Name != tc.tool):
			t.Errorf("%v: got %+v, want %s", tc.keys, got, tc.tool)
		case got != nil && !strings.Contains(got.RefusalMessage("prune-check"), "walaudit check"):
			t.Errorf("refusal: %s", got.RefusalMessage("prune-check"))
		}
	}
}

func TestParseList(t *testing.T) {
	got, err := ParseList(strings.NewReader("# retention run 2026-11-18\n000000010000000000000001\r\n\n  archive/000000010000000000000002.gz  \n"))
	if err != nil || len(got) != 2 || got[1] != "archive/000000010000000000000002.gz" {
		t.Fatalf("%q %v", got, err)
	}
}
