package backup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walaudit/walaudit/walname"
)

const realHistory = `START WAL LOCATION: 0/900028 (file 000000010000000000000009)
STOP WAL LOCATION: 0/900100 (file 000000010000000000000009)
CHECKPOINT LOCATION: 0/900060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-11-21 02:59:16 CET
LABEL: tar stream
START TIMELINE: 1
STOP TIME: 2026-11-21 02:59:16 CET
STOP TIMELINE: 1
`

const realLabel = `START WAL LOCATION: 0/700028 (file 000000010000000000000007)
CHECKPOINT LOCATION: 0/700060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-11-21 01:59:14 UTC
LABEL: plain none
START TIMELINE: 1
`

// TestParseHistoryFileReal parses every .backup file the PostgreSQL 15
// cluster archived and checks it against its own name.
func TestParseHistoryFileReal(t *testing.T) {
	dir := filepath.Join("testdata", "pg15", "archive")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) < 5 {
		t.Fatalf("want at least 5 archived .backup files, got %d", len(ents))
	}
	for _, e := range ents {
		t.Run(e.Name(), func(t *testing.T) {
			hf, err := ParseHistoryFile(fixture(t, "archive/"+e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if !hf.HasStop || hf.StopLSN <= hf.StartLSN || hf.CheckpointLSN < hf.StartLSN {
				t.Errorf("implausible points: %+v", hf)
			}
			if hf.BackupMethod != MethodStreamed || hf.BackupFrom != FromPrimary || hf.FromStandby() {
				t.Errorf("method/from = %q/%q", hf.BackupMethod, hf.BackupFrom)
			}
			if hf.StartTLI != 1 || hf.StopTLI != 1 || hf.Incremental() {
				t.Errorf("tli %d/%d incremental %v", hf.StartTLI, hf.StopTLI, hf.Incremental())
			}
			if got := walname.BackupHistoryName(hf.StopTLI, hf.StartLSN, walname.MinSegmentSize); got != e.Name() {
				t.Errorf("name from content = %s, file is %s", got, e.Name())
			}
			if fs := CheckHistoryFile(e.Name(), hf, walname.MinSegmentSize); len(fs) != 0 {
				t.Errorf("CheckHistoryFile: %v", fs)
			}
			if len(hf.Extra) != 0 {
				t.Errorf("unexpected extra keys %v", hf.Extra)
			}
		})
	}
}

func TestParseHistoryFileValues(t *testing.T) {
	hf, err := ParseHistoryFile([]byte(realHistory))
	if err != nil {
		t.Fatal(err)
	}
	want := Label{
		StartLSN: 0x900028, StartWALFile: "000000010000000000000009",
		StopLSN: 0x900100, StopWALFile: "000000010000000000000009",
		CheckpointLSN: 0x900060, BackupMethod: "streamed", BackupFrom: "primary",
		Label: "tar stream", StartTLI: 1, StopTLI: 1, HasStop: true,
	}
	got := *hf
	got.StartTime, got.StopTime = Timestamp{}, Timestamp{}
	if got.StartLSN != want.StartLSN || got.StopLSN != want.StopLSN || got.CheckpointLSN != want.CheckpointLSN ||
		got.StartWALFile != want.StartWALFile || got.StopWALFile != want.StopWALFile || got.Label != want.Label ||
		got.BackupMethod != want.BackupMethod || got.BackupFrom != want.BackupFrom ||
		got.StartTLI != want.StartTLI || got.StopTLI != want.StopTLI || !got.HasStop {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if hf.StartTime.Text != "2026-11-21 02:59:16 CET" || hf.StartTime.Zone != "CET" || hf.StartTime.Resolved || !hf.StartTime.Time.IsZero() {
		t.Errorf("CET must stay unresolved: %+v", hf.StartTime)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	at, err := hf.StopTime.In(berlin)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 21, 1, 59, 16, 0, time.UTC); !at.Equal(want) {
		t.Errorf("In(Berlin) = %v, want %v", at, want)
	}
	if _, err := hf.StopTime.In(time.UTC); err == nil {
		t.Error("In(UTC) accepted a CET timestamp")
	}
}

func TestParseLabel(t *testing.T) {
	for _, dir := range []string{"plain_none", "tar_stream", "tar_gzip_fetch", "tar_lz4", "tar_zstd", "standby_tar"} {
		t.Run(dir, func(t *testing.T) {
			l, err := ParseLabel(fixture(t, dir+"/backup_label"))
			if err != nil {
				t.Fatal(err)
			}
			cd := controlData(t, dir)
			if l.HasStop || l.StopLSN != 0 {
				t.Error("backup_label has stop data")
			}
			if got := l.CheckpointLSN.String(); got != cd["Latest checkpoint location"] {
				t.Errorf("checkpoint %s, pg_controldata %s", got, cd["Latest checkpoint location"])
			}
			if got := l.StartLSN.String(); got != cd["Latest checkpoint's REDO location"] {
				t.Errorf("start %s, pg_controldata redo %s", got, cd["Latest checkpoint's REDO location"])
			}
			if l.StartWALFile != cd["Latest checkpoint's REDO WAL file"] {
				t.Errorf("start file %s, pg_controldata %s", l.StartWALFile, cd["Latest checkpoint's REDO WAL file"])
			}
			if err := l.CheckFileNames(walname.MinSegmentSize); err != nil {
				t.Error(err)
			}
			if l.FromStandby() != (dir == "standby_tar") {
				t.Errorf("FromStandby = %v", l.FromStandby())
			}
		})
	}
	// Zones as the server wrote them: UTC, CET, -03, IST.
	zones := map[string]struct {
		zone     string
		resolved bool
		utc      string
	}{
		"plain_none":     {"UTC", true, "2026-11-21T01:59:14Z"},
		"tar_stream":     {"CET", false, ""},
		"tar_gzip_fetch": {"-03", true, "2026-11-21T01:59:17Z"},
		"tar_lz4":        {"IST", false, ""},
	}
	for dir, w := range zones {
		l, err := ParseLabel(fixture(t, dir+"/backup_label"))
		if err != nil {
			t.Fatal(err)
		}
		st := l.StartTime
		if st.Zone != w.zone || st.Resolved != w.resolved {
			t.Errorf("%s: zone %q resolved %v, want %q %v", dir, st.Zone, st.Resolved, w.zone, w.resolved)
		}
		if w.resolved && st.Time.UTC().Format(time.RFC3339) != w.utc {
			t.Errorf("%s: time %v, want %s", dir, st.Time, w.utc)
		}
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err == nil {
		l, _ := ParseLabel(fixture(t, "tar_lz4/backup_label"))
		at, err := l.StartTime.In(kolkata)
		if err != nil || !at.Equal(time.Date(2026, 11, 21, 1, 59, 18, 0, time.UTC)) {
			t.Errorf("IST in Asia/Kolkata = %v, %v", at, err)
		}
	}
}

func TestParseLabelVariants(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		check func(t *testing.T, l *Label)
	}{
		{"pg13 master, exclusive", strings.Replace(strings.Replace(realLabel, "primary", "master", 1), "streamed", "pg_start_backup", 1),
			func(t *testing.T, l *Label) {
				if l.BackupFrom != FromMaster || l.FromStandby() || l.BackupMethod != MethodPgStartBackup {
					t.Errorf("%+v", l)
				}
			}},
		{"pg17 incremental", realLabel + "INCREMENTAL FROM LSN: 0/500028\nINCREMENTAL FROM TLI: 1\n",
			func(t *testing.T, l *Label) {
				if !l.Incremental() || l.IncrementalFromLSN != 0x500028 || l.IncrementalFromTLI != 1 {
					t.Errorf("%+v", l)
				}
			}},
		{"pg18 zero-padded LSN", strings.Replace(realLabel, "CHECKPOINT LOCATION: 0/700060", "CHECKPOINT LOCATION: 0/00700060", 1),
			func(t *testing.T, l *Label) {
				if l.CheckpointLSN != 0x700060 {
					t.Errorf("checkpoint %s", l.CheckpointLSN)
				}
			}},
		{"CRLF", strings.ReplaceAll(realLabel, "\n", "\r\n"),
			func(t *testing.T, l *Label) {
				if l.Label != "plain none" || l.StartTLI != 1 {
					t.Errorf("%+v", l)
				}
			}},
		{"no trailing newline", strings.TrimSuffix(realLabel, "\n"),
			func(t *testing.T, l *Label) {
				if l.StartTLI != 1 {
					t.Errorf("%+v", l)
				}
			}},
		{"multi-line label", strings.Replace(realLabel, "LABEL: plain none", "LABEL: line one\nline: two\n\nthree", 1),
			func(t *testing.T, l *Label) {
				if l.Label != "line one\nline: two\n\nthree" || len(l.Extra) != 0 || l.StartTLI != 1 {
					t.Errorf("label %q extra %v", l.Label, l.Extra)
				}
			}},
		{"empty label", strings.Replace(realLabel, "LABEL: plain none", "LABEL:", 1),
			func(t *testing.T, l *Label) {
				if l.Label != "" {
					t.Errorf("label %q", l.Label)
				}
			}},
		{"unknown key kept", realLabel + "FUTURE KEY: some value\n",
			func(t *testing.T, l *Label) {
				if len(l.Extra) != 1 || l.Extra[0] != (Field{Line: 8, Key: "FUTURE KEY", Value: "some value"}) {
					t.Errorf("extra %v", l.Extra)
				}
			}},
		{"optional lines missing", "START WAL LOCATION: 0/700028 (file 000000020000000000000007)\nCHECKPOINT LOCATION: 0/700060\n",
			func(t *testing.T, l *Label) {
				if l.StartTLI != 2 || l.BackupMethod != "" || !l.StartTime.IsZero() {
					t.Errorf("%+v", l)
				}
			}},
		{"numeric offset with minutes", strings.Replace(realLabel, "01:59:14 UTC", "07:29:14 +0530", 1),
			func(t *testing.T, l *Label) {
				if !l.StartTime.Resolved || !l.StartTime.Time.Equal(time.Date(2026, 11, 21, 1, 59, 14, 0, time.UTC)) {
					t.Errorf("%+v", l.StartTime)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseLabel([]byte(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, l)
		})
	}
}

func TestParseLabelMalformed(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		history bool
		want    string // substring of the error
	}{
		{"empty", "", false, "missing START WAL LOCATION"},
		{"missing checkpoint", "START WAL LOCATION: 0/700028 (file 000000010000000000000007)\n", false, "missing CHECKPOINT LOCATION"},
		{"history missing stop", realLabel, true, "missing STOP WAL LOCATION"},
		{"stop in label", realHistory, false, "line 2: STOP WAL LOCATION appears only"},
		{"bad start lsn", strings.Replace(realLabel, "0/700028 (", "0/70002G (", 1), false, "line 1: START WAL LOCATION"},
		{"lsn with garbage", strings.Replace(realLabel, "0/700060", "0/700060xyz", 1), false, "line 2: CHECKPOINT LOCATION"},
		{"no file part", strings.Replace(realLabel, " (file 000000010000000000000007)", "", 1), false, "line 1:"},
		{"lower-case file", strings.Replace(realLabel, "(file 000000010000000000000007)", "(file 00000001000000000000000a)", 1), false, "line 1:"},
		{"timeline mismatch", strings.Replace(realLabel, "START TIMELINE: 1", "START TIMELINE: 2", 1), false, "line 7: START TIMELINE 2 differs"},
		{"bad timeline", strings.Replace(realLabel, "START TIMELINE: 1", "START TIMELINE: 1x", 1), false, "line 7:"},
		{"timeline zero", strings.Replace(realLabel, "START TIMELINE: 1", "START TIMELINE: 0", 1), false, "line 7:"},
		{"bad time", strings.Replace(realLabel, "2026-11-21 01:59:14", "2026-13-21 01:59:14", 1), false, "line 5: START TIME"},
		{"time with two zones", strings.Replace(realLabel, "01:59:14 UTC", "01:59:14 UTC UTC", 1), false, "line 5:"},
		{"duplicate key", realLabel + "LABEL: again\n", false, "duplicate LABEL"},
		{"not a key line", "garbage\n" + realLabel, false, "line 1:"},
		{"checkpoint before start", strings.Replace(realLabel, "CHECKPOINT LOCATION: 0/700060", "CHECKPOINT LOCATION: 0/600060", 1), false, "line 2: CHECKPOINT LOCATION 0/600060 is before"},
		{"stop before start", strings.Replace(realHistory, "STOP WAL LOCATION: 0/900100", "STOP WAL LOCATION: 0/800100", 1), true, "line 2: STOP WAL LOCATION 0/800100 is before"},
		{"stop timeline mismatch", strings.Replace(realHistory, "STOP TIMELINE: 1", "STOP TIMELINE: 3", 1), true, "line 10: STOP TIMELINE 3 differs"},
		{"incremental lsn alone", realLabel + "INCREMENTAL FROM LSN: 0/500028\n", false, "must appear together"},
		{"incremental lsn zero", realLabel + "INCREMENTAL FROM LSN: 0/0\nINCREMENTAL FROM TLI: 1\n", false, "line 8:"},
		{"two-word method", strings.Replace(realLabel, "BACKUP METHOD: streamed", "BACKUP METHOD: two words", 1), false, "line 3:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.history {
				_, err = ParseHistoryFile([]byte(tc.text))
			} else {
				_, err = ParseLabel([]byte(tc.text))
			}
			if !errors.Is(err, ErrInvalidLabel) {
				t.Fatalf("err = %v, want ErrInvalidLabel", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCheckFileNames(t *testing.T) {
	// 0/A00000 is a segment boundary with 1 MiB segments: 13-15 name the
	// stop file ...09 (end-pointer rule), 16+ ...0A (face value).
	base := "START WAL LOCATION: 0/900028 (file 000000010000000000000009)\nSTOP WAL LOCATION: 0/A00000 (file %s)\nCHECKPOINT LOCATION: 0/900060\n"
	for _, stopFile := range []string{"000000010000000000000009", "00000001000000000000000A"} {
		hf, err := ParseHistoryFile([]byte(strings.Replace(base, "%s", stopFile, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if err := hf.CheckFileNames(walname.MinSegmentSize); err != nil {
			t.Errorf("%s: %v", stopFile, err)
		}
	}
	hf, _ := ParseHistoryFile([]byte(strings.Replace(base, "%s", "00000001000000000000000B", 1)))
	if err := hf.CheckFileNames(walname.MinSegmentSize); !errors.Is(err, ErrInvalidLabel) {
		t.Errorf("wrong stop file accepted: %v", err)
	}
	// With 16 MiB segments 0/900028 is in segment 0, not 9.
	if err := hf.CheckFileNames(walname.DefaultSegmentSize); !errors.Is(err, ErrInvalidLabel) || !strings.Contains(err.Error(), "START WAL LOCATION") {
		t.Errorf("16 MiB: %v", err)
	}
	if err := hf.CheckFileNames(12345); err == nil {
		t.Error("invalid segment size accepted")
	}
}

func TestCheckHistoryFile(t *testing.T) {
	hf, err := ParseHistoryFile([]byte(realHistory))
	if err != nil {
		t.Fatal(err)
	}
	if fs := CheckHistoryFile("000000010000000000000009.00000028.backup.gz", hf, walname.MinSegmentSize); len(fs) != 0 {
		t.Errorf("compressed name: %v", fs)
	}
	fs := CheckHistoryFile("000000010000000000000009.00000030.backup", hf, walname.MinSegmentSize)
	if got := findingCodes(fs); len(got) != 1 || got[0] != CodeHistoryNameMismatch {
		t.Errorf("renamed file: %v", got)
	}
	inc, _ := ParseHistoryFile([]byte(realHistory + "INCREMENTAL FROM LSN: 0/700028\nINCREMENTAL FROM TLI: 1\n"))
	fs = CheckHistoryFile("000000010000000000000009.00000028.backup", inc, walname.MinSegmentSize)
	if f := findCode(fs, CodeIncremental); f == nil || f.Severity != "info" {
		t.Errorf("incremental: %v", fs)
	}
	fs = CheckHistoryFile("000000010000000000000009.00000028.backup", hf, walname.DefaultSegmentSize)
	if findCode(fs, CodeInconsistent) == nil || findCode(fs, CodeHistoryNameMismatch) == nil {
		t.Errorf("wrong segment size: %v", findingCodes(fs))
	}
}

func TestFromHistoryFile(t *testing.T) {
	hf, err := ParseHistoryFile(fixture(t, "archive/000000010000000000000009.00000028.backup"))
	if err != nil {
		t.Fatal(err)
	}
	b := FromHistoryFile("000000010000000000000009.00000028.backup", hf, walname.MinSegmentSize)
	if b.Source != SourceArchiveHistory || b.ID != "000000010000000000000009.00000028.backup" ||
		b.StartLSN != 0x900028 || b.StopLSN != 0x900100 || b.StopTLI != 1 || b.StopSource != StopFromHistoryFile ||
		b.CheckpointLSN != 0x900060 || b.Label != "tar stream" || b.SegmentSize != walname.MinSegmentSize ||
		b.Format != FormatUnknown || b.Incremental || b.FromStandby {
		t.Errorf("%+v", b)
	}
	if !b.Usable() {
		t.Error("history-file backup not usable")
	}
	if lsn, ok := b.ConsistencyLSN(); !ok || lsn != 0x900100 {
		t.Errorf("ConsistencyLSN = %s %v", lsn, ok)
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in       string
		resolved bool
		utc      string
		err      bool
	}{
		{"2026-11-21 00:34:22 UTC", true, "2026-11-21T00:34:22Z", false},
		{"2026-11-21 00:34:22 GMT", true, "2026-11-21T00:34:22Z", false},
		{"2026-11-20 21:34:22 -03", true, "2026-11-21T00:34:22Z", false},
		{"2026-11-21 06:04:22 +05:30", true, "2026-11-21T00:34:22Z", false},
		{"2026-11-21 06:04:22 +0530", true, "2026-11-21T00:34:22Z", false},
		{"2026-11-21 00:34:22 CEST", false, "", false},
		{"2026-11-21 00:34:22 +053", false, "", false},
		{"2026-11-21 00:34:22 +99", false, "", false},
		{"2026-11-21 00:34:22", false, "", false},
		{"2026-11-21 00:34", false, "", true},
		{"2026-11-21T00:34:22 UTC", false, "", true},
		{"2026-11-21 00:34:22UTC", false, "", true},
		{"2026-11-21 00:34:22 ", false, "", true},
	}
	for _, tc := range tests {
		ts, err := ParseTimestamp(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if err != nil {
			continue
		}
		if ts.Resolved != tc.resolved || ts.Text != tc.in {
			t.Errorf("%q: %+v", tc.in, ts)
		}
		if tc.resolved && ts.Time.UTC().Format(time.RFC3339) != tc.utc {
			t.Errorf("%q: %v, want %s", tc.in, ts.Time, tc.utc)
		}
		if !tc.resolved && !ts.Time.IsZero() {
			t.Errorf("%q: unresolved but time %v", tc.in, ts.Time)
		}
	}
}

// TestTimestampInFallBack: 02:30 happens twice in Berlin on 2026-10-25;
// the abbreviation decides which.
func TestTimestampInFallBack(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	for zone, utc := range map[string]string{"CEST": "2026-10-25T00:30:00Z", "CET": "2026-10-25T01:30:00Z"} {
		ts, err := ParseTimestamp("2026-10-25 02:30:00 " + zone)
		if err != nil {
			t.Fatal(err)
		}
		at, err := ts.In(berlin)
		if err != nil {
			t.Fatalf("%s: %v", zone, err)
		}
		if got := at.UTC().Format(time.RFC3339); got != utc {
			t.Errorf("%s: %s, want %s", zone, got, utc)
		}
	}
	if _, err := (Timestamp{}).In(berlin); err == nil {
		t.Error("zero timestamp resolved")
	}
}

func FuzzParseHistoryFile(f *testing.F) {
	f.Add([]byte(realHistory))
	f.Add([]byte(realHistory + "INCREMENTAL FROM LSN: 0/700028\nINCREMENTAL FROM TLI: 1\n"))
	f.Add([]byte(strings.ReplaceAll(realHistory, "\n", "\r\n")))
	f.Add([]byte("LABEL: x\nSTART WAL LOCATION: 0/1 (file 000000010000000000000000)\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		hf, err := ParseHistoryFile(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidLabel) {
				t.Fatalf("error does not wrap ErrInvalidLabel: %v", err)
			}
			return
		}
		if !hf.HasStop || hf.StartTLI == 0 || hf.StopTLI == 0 || hf.StopLSN < hf.StartLSN || hf.CheckpointLSN < hf.StartLSN {
			t.Fatalf("accepted inconsistent history file: %+v", hf)
		}
		_ = hf.CheckFileNames(walname.MinSegmentSize)
		_ = CheckHistoryFile("x.backup", hf, walname.DefaultSegmentSize)
	})
}

func FuzzParseLabel(f *testing.F) {
	f.Add([]byte(realLabel))
	f.Add([]byte(realLabel + "INCREMENTAL FROM LSN: 0/500028\nINCREMENTAL FROM TLI: 1\n"))
	f.Add([]byte(strings.Replace(realLabel, "LABEL: plain none", "LABEL: a\nb: c", 1)))
	f.Add([]byte("START WAL LOCATION: 0/0 (file 000000010000000000000000)\nCHECKPOINT LOCATION: 0/0\nSTART TIME: 2026-11-21 00:34:22 +05:30\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLabel(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidLabel) {
				t.Fatalf("error does not wrap ErrInvalidLabel: %v", err)
			}
			return
		}
		if l.HasStop || l.StopLSN != 0 || l.StartTLI == 0 || l.StartWALFile == "" {
			t.Fatalf("accepted inconsistent label: %+v", l)
		}
		if !l.StartTime.Resolved && !l.StartTime.Time.IsZero() {
			t.Fatalf("unresolved time with an instant: %+v", l.StartTime)
		}
	})
}
