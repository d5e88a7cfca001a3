package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/walname"
)

const mib = 1 << 20

// realTarFiles returns the real metadata files of a tar-format fixture.
func realTarFiles(t *testing.T, dir string) (label, tsmap, version, control, manifest []byte) {
	t.Helper()
	return fixture(t, dir+"/backup_label"), fixture(t, dir+"/tablespace_map"), []byte("15\n"),
		fixture(t, dir+"/pg_control"), fixture(t, dir+"/backup_manifest.gz")
}

// baseEntries lays out base.tar the way PostgreSQL does: backup_label and
// tablespace_map first, pg_control last, then (-X fetch) WAL.
func baseEntries(label, tsmap, version, control []byte, after ...tarEntry) []tarEntry {
	e := []tarEntry{{name: "backup_label", data: label}}
	if tsmap != nil {
		e = append(e, tarEntry{name: "tablespace_map", data: tsmap})
	}
	e = append(e,
		tarEntry{name: "pg_stat/"},
		tarEntry{name: "PG_VERSION", data: version},
		tarEntry{name: "pg_wal/"},
		tarEntry{name: "./pg_wal/archive_status/"},
		tarEntry{name: "base/1/1259", data: bytes.Repeat([]byte{7}, 8192)},
		tarEntry{name: "global/pg_control", data: control},
	)
	return append(e, after...)
}

func scanOne(t *testing.T, dir string) (*Backup, []finding.Finding) {
	t.Helper()
	bs, fs, err := ScanDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 {
		t.Fatalf("want 1 backup, got %d (findings %v)", len(bs), fs)
	}
	return bs[0], fs
}

func TestScanDirTarCompressions(t *testing.T) {
	label, tsmap, version, control, manifest := realTarFiles(t, "tar_stream")
	segment := make([]byte, mib)
	for _, comp := range []walname.Compression{walname.CompressNone, walname.CompressGzip, walname.CompressLZ4, walname.CompressZstd} {
		t.Run(compressionName(comp), func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "b1")
			suffix := ""
			if comp != walname.CompressNone {
				suffix = "." + string(comp)
			}
			writeFiles(t, dir, map[string][]byte{
				"base.tar" + suffix:   buildTar(t, comp, baseEntries(label, tsmap, version, control)),
				"pg_wal.tar" + suffix: buildTar(t, comp, []tarEntry{{name: "000000010000000000000009", data: segment}}),
				"16384.tar" + suffix:  buildTar(t, comp, []tarEntry{{name: "PG_15_202209061/5/16385", data: []byte("x")}}),
				"backup_manifest":     manifest,
			})
			b, fs := scanOne(t, root)
			if len(fs) != 0 {
				t.Fatalf("findings: %v", fs)
			}
			if b.ID != "b1" || b.Path != dir || b.Format != FormatTar || b.Compression != comp || b.Source != SourceBackupsDir {
				t.Errorf("identity %+v", b)
			}
			if b.StartLSN != 0x900028 || b.CheckpointLSN != 0x900060 || b.StartTLI != 1 ||
				b.StopLSN != 0x900100 || b.StopTLI != 1 || b.StopSource != StopFromManifest {
				t.Errorf("points start %s ckpt %s stop %s/%d (%s)", b.StartLSN, b.CheckpointLSN, b.StopLSN, b.StopTLI, b.StopSource)
			}
			if b.Label != "tar stream" || b.BackupMethod != "streamed" || b.FromStandby || b.StartTime.Zone != "CET" {
				t.Errorf("label fields %+v", b)
			}
			if b.PGMajor != 15 || b.SystemID != 7710438471936545784 || b.SegmentSize != walname.MinSegmentSize {
				t.Errorf("pg %d sysid %d segsize %d", b.PGMajor, b.SystemID, b.SegmentSize)
			}
			if !b.ManifestVerified || b.Manifest == nil || b.Control == nil || b.BackupLabel == nil {
				t.Error("manifest/control/label not kept")
			}
			if !slices.Equal(b.WALSegments, []string{"000000010000000000000009"}) {
				t.Errorf("WAL %v", b.WALSegments)
			}
			if len(b.TablespaceMap) != 1 || b.TablespaceMap[0] != (TablespaceEntry{16384, "/tmp/bkfix/ts one"}) {
				t.Errorf("tablespaces %v", b.TablespaceMap)
			}
			if !b.Usable() {
				t.Error("not usable")
			}
			j, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`"start_lsn":"0/900028"`, `"stop_lsn":"0/900100"`, `"format":"tar"`, `"state":"in production"`} {
				if !strings.Contains(string(j), want) {
					t.Errorf("JSON lacks %s: %s", want, j)
				}
			}
		})
	}
}

// TestScanDirTarStopsEarly: with a separate pg_wal.tar, base.tar is read
// only up to global/pg_control, so damage after it goes unseen; without
// pg_wal.tar (-X fetch), the rest is read for WAL and the damage is found.
func TestScanDirTarStopsEarly(t *testing.T) {
	label, tsmap, version, control, manifest := realTarFiles(t, "tar_stream")
	full := buildTar(t, walname.CompressNone, baseEntries(label, tsmap, version, control,
		tarEntry{name: "pg_wal/000000010000000000000009", data: make([]byte, mib)}))
	cut := full[:len(full)-mib/2] // truncated inside the WAL entry after pg_control
	for _, withWALTar := range []bool{true, false} {
		root := t.TempDir()
		files := map[string][]byte{"base.tar": cut, "backup_manifest": manifest, "16384.tar": buildTar(t, "", nil)}
		if withWALTar {
			files["pg_wal.tar"] = buildTar(t, "", []tarEntry{{name: "000000010000000000000009", data: make([]byte, mib)}})
		}
		writeFiles(t, root, files)
		b, fs := scanOne(t, root)
		corrupt := findCode(fs, CodeArchiveCorrupt)
		if withWALTar && (corrupt != nil || len(fs) != 0) {
			t.Errorf("stream layout read past pg_control: %v", fs)
		}
		if !withWALTar && (corrupt == nil || corrupt.Severity != finding.Error || !strings.HasSuffix(corrupt.File, "base.tar")) {
			t.Errorf("fetch layout: want %s on base.tar, got %v", CodeArchiveCorrupt, fs)
		}
		if b.StartLSN != 0x900028 || b.Control == nil {
			t.Errorf("metadata before the damage lost: %+v", b)
		}
	}
}

func TestScanDirTarFetchGzip(t *testing.T) {
	label, tsmap, version, control, manifest := realTarFiles(t, "tar_gzip_fetch")
	root := t.TempDir()
	writeFiles(t, root, map[string][]byte{
		"base.tar.gz": buildTar(t, walname.CompressGzip, baseEntries(label, tsmap, version, control,
			tarEntry{name: "pg_wal/00000001000000000000000B", data: make([]byte, mib)},
			tarEntry{name: "pg_wal/archive_status/00000001000000000000000B.done"})),
		"16384.tar.gz":    buildTar(t, walname.CompressGzip, nil),
		"backup_manifest": manifest,
	})
	b, fs := scanOne(t, root)
	if len(fs) != 0 {
		t.Fatalf("findings %v", fs)
	}
	if b.Compression != walname.CompressGzip || !slices.Equal(b.WALSegments, []string{"00000001000000000000000B"}) {
		t.Errorf("compression %q WAL %v", b.Compression, b.WALSegments)
	}
	if b.StartTime.Zone != "-03" || !b.StartTime.Resolved {
		t.Errorf("start time %+v", b.StartTime)
	}
	// The manifest hex-encodes every path; lookups use the decoded path.
	if e, ok := b.Manifest.File("backup_label"); !ok || !e.EncodedPath {
		t.Errorf("encoded manifest entry %+v %v", e, ok)
	}
}

func TestScanDirTarStandby(t *testing.T) {
	label, tsmap, version, control, manifest := realTarFiles(t, "standby_tar")
	for _, withManifest := range []bool{true, false} {
		root := t.TempDir()
		files := map[string][]byte{
			"base.tar":   buildTar(t, "", baseEntries(label, tsmap, version, control)),
			"pg_wal.tar": buildTar(t, "", []tarEntry{{name: "000000010000000000000010", data: make([]byte, mib)}}),
			"16384.tar":  buildTar(t, "", nil),
		}
		if withManifest {
			files["backup_manifest"] = manifest
		}
		writeFiles(t, root, files)
		b, fs := scanOne(t, root)
		wantSource := StopFromManifest
		if !withManifest {
			wantSource = StopFromControl
			if got := findingCodes(fs); !slices.Equal(got, []string{CodeManifestMissing}) {
				t.Errorf("findings %v", got)
			}
		} else if len(fs) != 0 {
			t.Errorf("findings %v", fs)
		}
		if !b.FromStandby || b.StopLSN != 0x1011230 || b.StopTLI != 1 || b.StopSource != wantSource {
			t.Errorf("manifest=%v: standby %v stop %s/%d from %q", withManifest, b.FromStandby, b.StopLSN, b.StopTLI, b.StopSource)
		}
		if lsn, ok := b.ConsistencyLSN(); !ok || lsn != 0x1011230 {
			t.Errorf("ConsistencyLSN %s %v", lsn, ok)
		}
		if b.Control.State != DBInArchiveRecovery || b.Control.MinRecoveryPoint != 0x1011230 {
			t.Errorf("control %v %s", b.Control.State, b.Control.MinRecoveryPoint)
		}
	}
}

func TestScanDirTarProblems(t *testing.T) {
	label, tsmap, version, control, manifest := realTarFiles(t, "tar_stream")
	okWAL := buildTar(t, "", []tarEntry{{name: "000000010000000000000009", data: make([]byte, mib)}})
	okTS := buildTar(t, "", nil)
	gz := buildTar(t, walname.CompressGzip, baseEntries(label, tsmap, version, control))
	tests := []struct {
		name  string
		files map[string][]byte
		want  []string // codes, sorted as finding.Sort orders them
	}{
		{"no base.tar", map[string][]byte{"pg_wal.tar": okWAL, "backup_manifest": manifest, "16384.tar": okTS},
			[]string{CodeIncomplete}},
		{"truncated gzip", map[string][]byte{"base.tar.gz": gz[:len(gz)/2], "pg_wal.tar": okWAL, "backup_manifest": manifest, "16384.tar": okTS},
			[]string{CodeArchiveCorrupt}},
		{"unknown compression", map[string][]byte{"base.tar.bz2": []byte("BZh91AY&SY"), "pg_wal.tar": okWAL, "backup_manifest": manifest, "16384.tar": okTS},
			[]string{CodeUnknownFormat}},
		{"misnamed compression", map[string][]byte{"base.tar.gz": buildTar(t, walname.CompressLZ4, baseEntries(label, tsmap, version, control)),
			"pg_wal.tar": okWAL, "backup_manifest": manifest, "16384.tar": okTS},
			[]string{CodeUnknownFormat}},
		{"two base archives", map[string][]byte{"base.tar": buildTar(t, "", nil), "base.tar.gz": gz, "backup_manifest": manifest},
			[]string{CodeUnknownFormat}},
		{"tablespace tar missing", map[string][]byte{"base.tar.gz": gz, "pg_wal.tar": okWAL, "backup_manifest": manifest},
			[]string{CodeTablespaceMissing}},
		{"tablespace tar not in map", map[string][]byte{"base.tar.gz": gz, "pg_wal.tar": okWAL, "backup_manifest": manifest, "16384.tar": okTS, "16999.tar": okTS},
			[]string{CodeInconsistent}},
		{"no backup_label", map[string][]byte{"base.tar": buildTar(t, "", baseEntries(label, tsmap, version, control)[1:]),
			"pg_wal.tar": okWAL, "backup_manifest": manifest, "16384.tar": okTS},
			[]string{CodeLabelMissing}},
		{"hostile names ignored", map[string][]byte{"base.tar": buildTar(t, "", append([]tarEntry{
			{name: "/backup_label", data: []byte("bogus")},
			{name: "../backup_label", data: []byte("bogus")},
			{name: "../../global/pg_control", data: []byte("bogus")}},
			baseEntries(label, tsmap, version, control)...)),
			"pg_wal.tar": okWAL, "backup_manifest": manifest, "16384.tar": okTS},
			nil},
		{"label differs from manifest", map[string][]byte{"base.tar": buildTar(t, "", baseEntries(
			bytes.Replace(label, []byte("LABEL: tar stream"), []byte("LABEL: tar strean"), 1), tsmap, version, control)),
			"pg_wal.tar": okWAL, "backup_manifest": manifest, "16384.tar": okTS},
			[]string{CodeFileMismatch}},
		{"tablespace_map invalid", map[string][]byte{"base.tar": buildTar(t, "", baseEntries(label, []byte("16384"), version, control)),
			"pg_wal.tar": okWAL, "backup_manifest": manifest, "16384.tar": okTS},
			[]string{CodeFileMismatch, CodeTablespaceMapInvalid}},
		{"short WAL segment", map[string][]byte{"base.tar.gz": gz, "backup_manifest": manifest, "16384.tar": okTS,
			"pg_wal.tar": buildTar(t, "", []tarEntry{{name: "000000010000000000000009", data: make([]byte, 4096)}})},
			[]string{CodeWALIncomplete}},
		{"WAL segment missing", map[string][]byte{"base.tar.gz": gz, "backup_manifest": manifest, "16384.tar": okTS,
			"pg_wal.tar": buildTar(t, "", []tarEntry{{name: "00000001000000000000000A", data: make([]byte, mib)}})},
			[]string{CodeWALIncomplete}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "bk")
			writeFiles(t, dir, tc.files)
			b, fs := scanOne(t, root)
			if got := findingCodes(fs); !slices.Equal(got, tc.want) {
				t.Fatalf("codes %v, want %v\n%v", got, tc.want, fs)
			}
			if !slices.Equal(findingCodes(b.Findings), tc.want) {
				t.Errorf("backup findings %v differ from returned %v", b.Findings, fs)
			}
			for _, f := range fs {
				if !strings.HasPrefix(f.File, dir) {
					t.Errorf("finding %v does not name a file of the backup", f)
				}
			}
			if tc.want == nil && b.StartLSN != 0x900028 {
				t.Errorf("start %s", b.StartLSN)
			}
		})
	}
}

// plainFixture writes a clean plain-format backup built from the real
// plain_none files, with a manifest covering exactly those files.
func plainFixture(t *testing.T, dir string) (files map[string][]byte, tablespace string) {
	t.Helper()
	files = map[string][]byte{
		"backup_label":           fixture(t, "plain_none/backup_label"),
		"PG_VERSION":             fixture(t, "plain_none/PG_VERSION"),
		"global/pg_control":      fixture(t, "plain_none/pg_control"),
		"global/pg_filenode.map": fixture(t, "plain_none/pg_filenode.map"),
		"pg_ident.conf":          fixture(t, "plain_none/pg_ident.conf"),
		"postgresql.auto.conf":   fixture(t, "plain_none/postgresql.auto.conf"),
	}
	writeFiles(t, dir, files)
	writePlainManifest(t, dir, files, 1, 0, []WALRange{{Timeline: 1, StartLSN: 0x700028, EndLSN: 0x700100}})
	writeFiles(t, dir, map[string][]byte{"pg_wal/000000010000000000000007": make([]byte, mib)})
	if err := os.MkdirAll(filepath.Join(dir, "pg_wal", "archive_status"), 0o755); err != nil {
		t.Fatal(err)
	}
	ts := filepath.Join(t.TempDir(), "ts1") // outside the backups directory
	if err := os.MkdirAll(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "pg_tblspc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ts, filepath.Join(dir, "pg_tblspc", "16384")); err != nil {
		t.Fatal(err)
	}
	return files, ts
}

func writePlainManifest(t *testing.T, dir string, files map[string][]byte, version int, sysid uint64, ranges []WALRange) {
	t.Helper()
	var entries []manifestEntry
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		entries = append(entries, manifestEntry{path: p, data: files[p], algo: ChecksumCRC32C})
	}
	writeFiles(t, dir, map[string][]byte{"backup_manifest": buildManifest(version, sysid, entries, ranges)})
}

func TestScanDirPlain(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "plain1")
	_, ts := plainFixture(t, dir)
	b, fs := scanOne(t, root)
	if len(fs) != 0 {
		t.Fatalf("findings %v", fs)
	}
	if b.Format != FormatPlain || b.Compression != "" || b.StartLSN != 0x700028 || b.StopLSN != 0x700100 ||
		b.PGMajor != 15 || b.SegmentSize != walname.MinSegmentSize || !b.ManifestVerified || !b.Usable() {
		t.Errorf("%+v", b)
	}
	if !slices.Equal(b.WALSegments, []string{"000000010000000000000007"}) {
		t.Errorf("WAL %v", b.WALSegments)
	}
	if len(b.TablespaceMap) != 1 || b.TablespaceMap[0] != (TablespaceEntry{16384, ts}) {
		t.Errorf("tablespaces %v", b.TablespaceMap)
	}
	if b.StartTime.Zone != "UTC" || !b.StartTime.Resolved {
		t.Errorf("start time %+v", b.StartTime)
	}
}

func TestScanDirPlainProblems(t *testing.T) {
	realControl := fixture(t, "plain_none/pg_control")
	tests := []struct {
		name     string
		edit     func(t *testing.T, dir string, files map[string][]byte, ts string)
		want     []string
		unusable bool
	}{
		{"label missing", func(t *testing.T, dir string, _ map[string][]byte, ts string) {
			os.Remove(filepath.Join(dir, "backup_label"))
		}, []string{CodeIncomplete, CodeLabelMissing}, true},
		{"label edited", func(t *testing.T, dir string, f map[string][]byte, ts string) {
			writeFiles(t, dir, map[string][]byte{"backup_label": bytes.Replace(f["backup_label"], []byte("plain none"), []byte("plain nine"), 1)})
		}, []string{CodeFileMismatch}, true},
		{"label invalid", func(t *testing.T, dir string, f map[string][]byte, ts string) {
			f["backup_label"] = []byte("START WAL LOCATION: nonsense\n")
			writeFiles(t, dir, f)
			writePlainManifest(t, dir, f, 1, 0, []WALRange{{Timeline: 1, StartLSN: 0x700028, EndLSN: 0x700100}})
		}, []string{CodeLabelInvalid}, true},
		{"manifest missing", func(t *testing.T, dir string, _ map[string][]byte, ts string) {
			os.Remove(filepath.Join(dir, "backup_manifest"))
		}, []string{CodeManifestMissing}, false},
		{"manifest checksum", func(t *testing.T, dir string, _ map[string][]byte, ts string) {
			p := filepath.Join(dir, "backup_manifest")
			data, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(data, []byte("\"Size\": 3,"), []byte("\"Size\": 4,"), 1), 0o644)
		}, []string{CodeIncomplete, CodeFileMismatch, CodeManifestChecksum}, true},
		{"manifest not json", func(t *testing.T, dir string, _ map[string][]byte, ts string) {
			os.WriteFile(filepath.Join(dir, "backup_manifest"), []byte("{\n"), 0o644)
		}, []string{CodeManifestInvalid}, true},
		{"pg_control CRC", func(t *testing.T, dir string, _ map[string][]byte, ts string) {
			d := bytes.Clone(realControl)
			d[100] ^= 1
			writeFiles(t, dir, map[string][]byte{"global/pg_control": d})
		}, []string{CodeFileMismatch, CodeControlCRC}, true},
		{"pg_control truncated", func(t *testing.T, dir string, f map[string][]byte, ts string) {
			f["global/pg_control"] = realControl[:200]
			writeFiles(t, dir, f)
			writePlainManifest(t, dir, f, 1, 0, []WALRange{{Timeline: 1, StartLSN: 0x700028, EndLSN: 0x700100}})
		}, []string{CodeControlInvalid}, true},
		{"pg_control missing", func(t *testing.T, dir string, _ map[string][]byte, ts string) {
			os.Remove(filepath.Join(dir, "global", "pg_control"))
		}, []string{CodeIncomplete, CodeIncomplete}, true},
		{"data file missing", func(t *testing.T, dir string, _ map[string][]byte, ts string) {
			os.Remove(filepath.Join(dir, "pg_ident.conf"))
		}, []string{CodeIncomplete}, true},
		{"PG_VERSION 17 with 1300 pg_control", func(t *testing.T, dir string, f map[string][]byte, ts string) {
			f["PG_VERSION"] = []byte("17\n")
			writeFiles(t, dir, f)
			writePlainManifest(t, dir, f, 1, 0, []WALRange{{Timeline: 1, StartLSN: 0x700028, EndLSN: 0x700100}})
		}, []string{CodeInconsistent}, true},
		{"PG_VERSION garbage", func(t *testing.T, dir string, f map[string][]byte, ts string) {
			f["PG_VERSION"] = []byte("9.6\n")
			writeFiles(t, dir, f)
			writePlainManifest(t, dir, f, 1, 0, []WALRange{{Timeline: 1, StartLSN: 0x700028, EndLSN: 0x700100}})
		}, []string{CodePGVersionInvalid}, true},
		{"tablespace link dangling", func(t *testing.T, dir string, _ map[string][]byte, ts string) {
			os.Remove(ts)
		}, []string{CodeTablespaceMissing}, true},
		{"manifest v2 other system", func(t *testing.T, dir string, f map[string][]byte, ts string) {
			writePlainManifest(t, dir, f, 2, 42, []WALRange{{Timeline: 1, StartLSN: 0x700028, EndLSN: 0x700100}})
		}, []string{CodeSysIDMismatch}, true},
		{"manifest v2 same system", func(t *testing.T, dir string, f map[string][]byte, ts string) {
			writePlainManifest(t, dir, f, 2, 7710438471936545784, []WALRange{{Timeline: 1, StartLSN: 0x700028, EndLSN: 0x700100}})
		}, nil, false},
		{"manifest of another backup", func(t *testing.T, dir string, f map[string][]byte, ts string) {
			writePlainManifest(t, dir, f, 1, 0, []WALRange{{Timeline: 1, StartLSN: 0x600028, EndLSN: 0x700100}})
		}, []string{CodeInconsistent, CodeWALIncomplete}, true},
		{"WAL ranges do not chain", func(t *testing.T, dir string, f map[string][]byte, ts string) {
			writePlainManifest(t, dir, f, 1, 0, []WALRange{{Timeline: 2, StartLSN: 0x700800, EndLSN: 0x700900}, {Timeline: 1, StartLSN: 0x700028, EndLSN: 0x700100}})
		}, []string{CodeInconsistent, CodeWALIncomplete}, true},
		{"WAL segment short", func(t *testing.T, dir string, _ map[string][]byte, ts string) {
			writeFiles(t, dir, map[string][]byte{"pg_wal/000000010000000000000007": make([]byte, 100)})
		}, []string{CodeWALIncomplete}, false},
		{"incremental", func(t *testing.T, dir string, f map[string][]byte, ts string) {
			f["backup_label"] = append(bytes.Clone(f["backup_label"]), "INCREMENTAL FROM LSN: 0/500028\nINCREMENTAL FROM TLI: 1\n"...)
			writeFiles(t, dir, f)
			writePlainManifest(t, dir, f, 1, 0, []WALRange{{Timeline: 1, StartLSN: 0x700028, EndLSN: 0x700100}})
		}, []string{CodeIncremental}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "p")
			files, ts := plainFixture(t, dir)
			tc.edit(t, dir, files, ts)
			b, fs := scanOne(t, root)
			if got := findingCodes(fs); !slices.Equal(got, tc.want) {
				t.Fatalf("codes %v, want %v\n%v", got, tc.want, fs)
			}
			if b.Usable() == tc.unusable {
				t.Errorf("Usable() = %v", b.Usable())
			}
		})
	}
}

func TestScanDirMixed(t *testing.T) {
	root := t.TempDir()
	plainFixture(t, filepath.Join(root, "zz_plain"))
	label, tsmap, version, control, manifest := realTarFiles(t, "tar_stream")
	writeFiles(t, filepath.Join(root, "aa_tar"), map[string][]byte{
		"base.tar": buildTar(t, "", baseEntries(label, tsmap, version, control)), "16384.tar": buildTar(t, "", nil),
		"backup_manifest": manifest, "pg_wal.tar": buildTar(t, "", []tarEntry{{name: "000000010000000000000009", data: make([]byte, mib)}}),
	})
	writeFiles(t, filepath.Join(root, "notes"), map[string][]byte{"README": []byte("hi")})
	writeFiles(t, root, map[string][]byte{"list.txt": []byte("x")})
	writeFiles(t, filepath.Join(root, "both"), map[string][]byte{"backup_label": label, "base.tar": nil})
	writeFiles(t, filepath.Join(root, "manifest_only"), map[string][]byte{"backup_manifest": manifest})
	// Sub-directories named like data-directory parts are not markers of
	// the backups directory itself.
	writeFiles(t, filepath.Join(root, "global"), map[string][]byte{"README": []byte("hi")})
	writeFiles(t, filepath.Join(root, "base"), map[string][]byte{"README": []byte("hi")})
	writeFiles(t, root, map[string][]byte{"backup_manifest": manifest})

	bs, fs, err := ScanDir(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range bs {
		ids = append(ids, b.ID)
	}
	// both and manifest_only have no start LSN and sort first; then by LSN
	// (0/700028 before 0/900028), not by name.
	if want := []string{"both", "manifest_only", "zz_plain", "aa_tar"}; !slices.Equal(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	want := []string{CodeUnknownFormat, CodeUnknownFormat, CodeNotABackup, CodeNotABackup, CodeNotABackup, CodeNotABackup, CodeNotABackup}
	if got := findingCodes(fs); !slices.Equal(got, want) {
		t.Errorf("codes %v, want %v\n%v", got, want, fs)
	}
	for _, f := range fs {
		if f.Code == CodeNotABackup && f.Severity != finding.Info {
			t.Errorf("not-a-backup must be info: %v", f)
		}
	}

	// The single-backup form.
	b, fs := scanOne(t, filepath.Join(root, "aa_tar"))
	if b.ID != "aa_tar" || len(fs) != 0 {
		t.Errorf("single: id %s findings %v", b.ID, fs)
	}
}

func TestScanDirErrors(t *testing.T) {
	if _, _, err := ScanDir(context.Background(), filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, _, err := ScanDir(context.Background(), f); err == nil {
		t.Error("file accepted as directory")
	}
	root := t.TempDir()
	plainFixture(t, filepath.Join(root, "p"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := ScanDir(ctx, root); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

// TestRealBackupsDir scans the full pg_basebackup outputs gen.sh leaves in
// /tmp/bkfix/bk; it runs only when WALAUDIT_PG15_BACKUPS points there.
func TestRealBackupsDir(t *testing.T) {
	dir := os.Getenv("WALAUDIT_PG15_BACKUPS")
	if dir == "" {
		t.Skip("set WALAUDIT_PG15_BACKUPS to the bk directory gen.sh created")
	}
	bs, fs, err := ScanDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Severity != finding.Info || f.Code != CodeNotABackup {
			t.Errorf("finding %v", f)
		}
	}
	want := map[string]struct {
		comp   walname.Compression
		wal    int
		stop   string
		format Format
	}{
		"plain_none":     {"", 0, "0/700100", FormatPlain},
		"tar_stream":     {"", 1, "0/900100", FormatTar},
		"tar_gzip_fetch": {walname.CompressGzip, 1, "0/B00100", FormatTar},
		"tar_lz4":        {walname.CompressLZ4, 1, "0/D00100", FormatTar},
		"tar_zstd":       {walname.CompressZstd, 0, "0/E00100", FormatTar},
		"standby_tar":    {"", 1, "0/1011230", FormatTar},
	}
	if len(bs) != len(want) {
		t.Fatalf("%d backups, want %d", len(bs), len(want))
	}
	for _, b := range bs {
		w, ok := want[b.ID]
		if !ok {
			t.Errorf("unexpected backup %s", b.ID)
			continue
		}
		if b.Compression != w.comp || len(b.WALSegments) != w.wal || b.StopLSN.String() != w.stop || b.Format != w.format ||
			!b.ManifestVerified || !b.Usable() || len(b.TablespaceMap) != 1 {
			t.Errorf("%s: comp %q wal %v stop %s format %s verified %v usable %v ts %v",
				b.ID, b.Compression, b.WALSegments, b.StopLSN, b.Format, b.ManifestVerified, b.Usable(), b.TablespaceMap)
		}
		// Every WAL file carried is readable, whole, and segments start
		// with a WAL page header.
		checkListedOpen(t, b)
		for _, name := range b.WALSegments {
			data, err := readWAL(t, b, name)
			if err != nil || len(data) < 4 || data[1] != 0xd1 {
				t.Errorf("%s: %s: %d bytes, err %v", b.ID, name, len(data), err)
			}
		}
	}
}
