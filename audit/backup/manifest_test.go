package backup

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestParseManifestReal parses the manifests pg_basebackup wrote and
// verifies the real files kept next to them, as pg_verifybackup would.
func TestParseManifestReal(t *testing.T) {
	tests := []struct {
		dir        string
		algo       ChecksumAlgorithm
		encoded    bool
		start, end string
		verify     []string // fixture file -> manifest path below
	}{
		{"plain_none", ChecksumCRC32C, false, "0/700028", "0/700100",
			[]string{"backup_label", "PG_VERSION", "pg_control", "postgresql.auto.conf", "pg_ident.conf", "pg_filenode.map"}},
		{"tar_stream", ChecksumSHA256, false, "0/900028", "0/900100", []string{"backup_label", "PG_VERSION", "pg_control", "tablespace_map"}},
		{"tar_gzip_fetch", ChecksumCRC32C, true, "0/B00028", "0/B00100", []string{"backup_label", "PG_VERSION", "pg_control", "tablespace_map"}},
		{"tar_lz4", ChecksumCRC32C, false, "0/D00028", "0/D00100", []string{"backup_label", "pg_control", "tablespace_map"}},
		{"tar_zstd", ChecksumSHA512, false, "0/E00028", "0/E00100", []string{"backup_label", "pg_control", "tablespace_map"}},
		{"standby_tar", ChecksumCRC32C, false, "0/1011180", "0/1011230", []string{"backup_label", "pg_control", "tablespace_map"}},
	}
	manifestPath := map[string]string{"pg_control": "global/pg_control", "pg_filenode.map": "global/pg_filenode.map"}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			m, err := ParseManifest(fixture(t, tc.dir+"/backup_manifest.gz"))
			if err != nil {
				t.Fatal(err)
			}
			if m.Version != 1 || m.HasSystemIdentifier || !m.ChecksumVerified || len(m.Checksum) != 64 {
				t.Errorf("version %d sysid %v verified %v checksum %q", m.Version, m.HasSystemIdentifier, m.ChecksumVerified, m.Checksum)
			}
			if len(m.Files) < 900 {
				t.Errorf("only %d files", len(m.Files))
			}
			for _, f := range m.Files {
				if f.Algorithm != tc.algo || f.EncodedPath != tc.encoded || len(f.Checksum) != 2*tc.algo.Size() {
					t.Fatalf("entry %+v: want %s encoded=%v", f, tc.algo, tc.encoded)
				}
				// WAL is never listed; -X fetch does list the .done
				// status files it adds (tar_gzip_fetch).
				if rest, ok := strings.CutPrefix(f.Path, "pg_wal/"); ok && !strings.HasPrefix(rest, "archive_status/") {
					t.Fatalf("manifest lists WAL file %s", f.Path)
				}
			}
			lsn, tli, ok := m.StopPoint()
			if !ok || lsn.String() != tc.end || tli != 1 {
				t.Errorf("stop %s tli %d", lsn, tli)
			}
			if lsn, _, _ := m.StartPoint(); lsn.String() != tc.start {
				t.Errorf("start %s", lsn)
			}
			for _, name := range tc.verify {
				p := name
				if mp, ok := manifestPath[name]; ok {
					p = mp
				}
				entry, ok := m.File(p)
				if !ok {
					t.Fatalf("%s not in manifest", p)
				}
				if err := VerifyFile(entry, bytes.NewReader(fixture(t, tc.dir+"/"+name))); err != nil {
					t.Errorf("verify real %s: %v", name, err)
				}
			}
		})
	}
}

// TestVerifyFileCRC32CByteOrder pins the example of FORMATS.md §2.3: "15\n"
// has CRC-32C 0x2247748A, written little-endian as 8a744722.
func TestVerifyFileCRC32CByteOrder(t *testing.T) {
	e := ManifestFile{Path: "PG_VERSION", Size: 3, Algorithm: ChecksumCRC32C, Checksum: "8a744722"}
	if err := VerifyFile(e, strings.NewReader("15\n")); err != nil {
		t.Fatal(err)
	}
	e.Checksum = "2247748a" // big-endian: wrong
	if err := VerifyFile(e, strings.NewReader("15\n")); !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("big-endian checksum accepted: %v", err)
	}
}

func TestVerifyFile(t *testing.T) {
	data := []byte("some file content\n")
	entry := func(a ChecksumAlgorithm) ManifestFile {
		e := ManifestFile{Path: "f", Size: uint64(len(data)), Algorithm: a}
		if a != ChecksumNone {
			e.Checksum = checksumHex(a, data)
		}
		return e
	}
	for _, a := range []ChecksumAlgorithm{ChecksumNone, ChecksumCRC32C, ChecksumSHA224, ChecksumSHA256} {
		if err := VerifyFile(entry(a), bytes.NewReader(data)); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
	// SHA384/512 are checked against the real tar_zstd manifest above; here
	// a flipped byte must fail for every algorithm.
	for _, a := range []ChecksumAlgorithm{ChecksumCRC32C, ChecksumSHA224, ChecksumSHA256} {
		bad := bytes.Clone(data)
		bad[0] ^= 1
		if err := VerifyFile(entry(a), bytes.NewReader(bad)); !errors.Is(err, ErrChecksumMismatch) {
			t.Errorf("%s flipped byte: %v", a, err)
		}
	}
	if err := VerifyFile(entry(ChecksumNone), bytes.NewReader(data[1:])); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("short file with NONE: %v", err)
	}
	if err := VerifyFile(entry(ChecksumCRC32C), bytes.NewReader(append(bytes.Clone(data), 'x'))); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("long file: %v", err)
	}
	e := entry(ChecksumSHA256)
	e.Checksum = e.Checksum[:62]
	if err := VerifyFile(e, bytes.NewReader(data)); !errors.Is(err, ErrChecksumMismatch) || !strings.Contains(err.Error(), "62 hex digits") {
		t.Errorf("short checksum: %v", err)
	}
	readErr := errors.New("disk on fire")
	if err := VerifyFile(entry(ChecksumCRC32C), iotest.ErrReader(readErr)); !errors.Is(err, readErr) {
		t.Errorf("read error not wrapped: %v", err)
	}
	if err := VerifyFile(ManifestFile{Algorithm: "MD5"}, bytes.NewReader(nil)); err == nil {
		t.Error("unknown algorithm accepted")
	}
}

func TestParseManifestBuilt(t *testing.T) {
	files := []manifestEntry{
		{path: "backup_label", data: []byte("label\n"), algo: ChecksumCRC32C},
		{path: "base/1/\xff\xfe", data: []byte("x"), algo: ChecksumSHA224, encoded: true},
		{path: "PG_VERSION", data: []byte("17\n")},
	}
	ranges := []WALRange{{Timeline: 3, StartLSN: 0x3000000, EndLSN: 0x3000100}, {Timeline: 2, StartLSN: 0x2000028, EndLSN: 0x3000000}}
	data := buildManifest(2, 7710438471936545784, files, ranges)
	m, err := ParseManifest(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if m.Version != 2 || !m.HasSystemIdentifier || m.SystemIdentifier != 7710438471936545784 || !m.ChecksumVerified {
		t.Errorf("%+v", m)
	}
	if f, ok := m.File("base/1/\xff\xfe"); !ok || !f.EncodedPath || f.Algorithm != ChecksumSHA224 || f.Size != 1 {
		t.Errorf("encoded entry %+v %v", f, ok)
	}
	if f, ok := m.File("PG_VERSION"); !ok || f.Algorithm != ChecksumNone || f.Checksum != "" {
		t.Errorf("NONE entry %+v", f)
	}
	if lsn, tli, _ := m.StopPoint(); lsn != 0x3000100 || tli != 3 {
		t.Errorf("stop %s/%d", lsn, tli)
	}
	if lsn, tli, _ := m.StartPoint(); lsn != 0x2000028 || tli != 2 {
		t.Errorf("start %s/%d", lsn, tli)
	}
	if _, ok := m.File("missing"); ok {
		t.Error("found a missing file")
	}
}

func TestParseManifestChecksum(t *testing.T) {
	good := fixture(t, "plain_none/backup_manifest.gz")
	// Flip one byte of a file checksum: still valid JSON, wrong checksum.
	bad := bytes.Replace(good, []byte(`"Checksum": "44cd2572"`), []byte(`"Checksum": "44cd2573"`), 1)
	if bytes.Equal(bad, good) {
		t.Fatal("fixture changed: backup_label checksum not found")
	}
	m, err := ParseManifest(bad)
	if !errors.Is(err, ErrManifestChecksum) {
		t.Fatalf("err = %v, want ErrManifestChecksum", err)
	}
	if m == nil || m.ChecksumVerified || len(m.Files) == 0 {
		t.Fatalf("manifest not returned with checksum error: %+v", m)
	}
	if errors.Is(err, ErrInvalidManifest) {
		t.Error("checksum mismatch must not claim the manifest is invalid")
	}
	// Changing the last line only (the checksum itself) is also caught.
	i := bytes.LastIndex(good, []byte(`"Manifest-Checksum": "`)) + len(`"Manifest-Checksum": "`)
	bad = bytes.Clone(good)
	if bad[i] == '0' {
		bad[i] = '1'
	} else {
		bad[i] = '0'
	}
	if _, err := ParseManifest(bad); !errors.Is(err, ErrManifestChecksum) {
		t.Errorf("altered Manifest-Checksum: %v", err)
	}
}

func TestParseManifestMalformed(t *testing.T) {
	valid := string(buildManifest(1, 0, []manifestEntry{{path: "a", data: []byte("x"), algo: ChecksumCRC32C}},
		[]WALRange{{Timeline: 1, StartLSN: 0x100, EndLSN: 0x200}}))
	tests := []struct {
		name    string
		in      string
		version bool // also ErrManifestVersion
		want    string
	}{
		{"not json", "hello\n", false, ""},
		{"empty", "", false, "ended unexpectedly"},
		{"array", "[]\n", false, "expected \"{\""},
		{"version not first", strings.Replace(valid, "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\"", "{ \"Files\"", 1), false, "version indicator first"},
		{"version 3", strings.Replace(valid, "Version\": 1", "Version\": 3", 1), true, "version 3"},
		{"version text", strings.Replace(valid, "Version\": 1", "Version\": \"x\"", 1), false, "not an integer"},
		{"sysid in v1", strings.Replace(valid, "\"Files\"", "\"System-Identifier\": 1,\n\"Files\"", 1), false, "System-Identifier in a version 1"},
		{"unknown top field", strings.Replace(valid, "\"Files\"", "\"Extra\": 1,\n\"Files\"", 1), false, "unrecognized top-level field"},
		{"unknown file field", strings.Replace(valid, "\"Size\"", "\"Mode\": 1, \"Size\"", 1), false, "unexpected file field"},
		{"missing size", strings.Replace(valid, "\"Size\": 1, ", "", 1), false, "missing size"},
		{"negative size", strings.Replace(valid, "\"Size\": 1", "\"Size\": -1", 1), false, "not an integer"},
		{"missing path", strings.Replace(valid, "\"Path\": \"a\", ", "", 1), false, "missing path name"},
		{"both paths", strings.Replace(valid, "\"Path\": \"a\", ", "\"Path\": \"a\", \"Encoded-Path\": \"61\", ", 1), false, "both path name"},
		{"odd encoded path", strings.Replace(valid, "\"Path\": \"a\"", "\"Encoded-Path\": \"616\"", 1), false, "could not decode file name"},
		{"checksum without algorithm", strings.Replace(valid, "\"Checksum-Algorithm\": \"CRC32C\", ", "", 1), false, "checksum without algorithm"},
		{"unknown algorithm", strings.Replace(valid, "\"CRC32C\"", "\"MD5\"", 1), false, "unrecognized checksum algorithm"},
		{"bad file checksum hex", strings.Replace(valid, "\"Checksum\": \"", "\"Checksum\": \"zz", 1), false, "invalid checksum for file"},
		{"nested object", strings.Replace(valid, "\"Size\": 1", "\"Size\": {}", 1), false, "expected a string or number"},
		{"null value", strings.Replace(valid, "\"Size\": 1", "\"Size\": null", 1), false, "expected a string or number"},
		{"bad lsn", strings.Replace(valid, "\"0/100\"", "\"0/10G\"", 1), false, "unable to parse start LSN"},
		{"missing end lsn", strings.Replace(valid, ", \"End-LSN\": \"0/200\"", "", 1), false, "missing end LSN"},
		{"timeline zero", strings.Replace(valid, "\"Timeline\": 1", "\"Timeline\": 0", 1), false, "timeline"},
		{"end before start", strings.Replace(valid, "\"0/200\"", "\"0/50\"", 1), false, "before start LSN"},
		{"missing WAL-Ranges", strings.Replace(valid, "\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/100\", \"End-LSN\": \"0/200\" }\n],\n", "", 1), false, "missing WAL-Ranges"},
		{"short manifest checksum", valid[:strings.LastIndex(valid, "\"}")-2] + "\"}\n", false, "invalid manifest checksum"},
		{"field after checksum", strings.TrimSuffix(valid, "}\n") + ", \"Files\": []}\n", false, "after Manifest-Checksum"},
		{"trailing data", valid + "{}\n", false, "after the manifest object"},
		{"no final newline", strings.TrimSuffix(valid, "\n"), false, "last line not newline-terminated"},
		{"one line", strings.ReplaceAll(valid, "\n", " ") + "\n", false, "at least 2 lines"},
		{"duplicate path", strings.Replace(valid, "\n],\n\"WAL-Ranges\"", ",\n"+valid[strings.Index(valid, "{ \"Path\""):strings.Index(valid, " }\n],")+2]+"\n],\n\"WAL-Ranges\"", 1), false, "duplicate path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in == valid {
				t.Fatal("test case does not change the manifest")
			}
			m, err := ParseManifest([]byte(tc.in))
			if !errors.Is(err, ErrInvalidManifest) || m != nil {
				t.Fatalf("err = %v (manifest %v), want ErrInvalidManifest and nil", err, m != nil)
			}
			if tc.version != errors.Is(err, ErrManifestVersion) {
				t.Errorf("ErrManifestVersion = %v: %v", !tc.version, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want %q", err, tc.want)
			}
		})
	}
	if _, err := ParseManifest([]byte(valid)); err != nil {
		t.Fatalf("base case invalid: %v", err)
	}
}

func TestParseChecksumAlgorithm(t *testing.T) {
	for in, want := range map[string]ChecksumAlgorithm{"crc32c": ChecksumCRC32C, "Sha512": ChecksumSHA512, "NONE": ChecksumNone} {
		if got, err := ParseChecksumAlgorithm(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParseChecksumAlgorithm("md5"); err == nil {
		t.Error("md5 accepted")
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(buildManifest(1, 0, []manifestEntry{{path: "a", data: []byte("x"), algo: ChecksumCRC32C}},
		[]WALRange{{Timeline: 1, StartLSN: 0x100, EndLSN: 0x200}}))
	f.Add(buildManifest(2, 42, []manifestEntry{{path: "\xff", data: nil, encoded: true}},
		[]WALRange{{Timeline: 2, StartLSN: 0x200, EndLSN: 0x300}, {Timeline: 1, StartLSN: 0x100, EndLSN: 0x200}}))
	raw := fixture(f, "standby_tar/backup_manifest.gz")
	f.Add(raw[:4096])
	f.Add([]byte("{\"PostgreSQL-Backup-Manifest-Version\": 2, \"System-Identifier\": 18446744073709551615}\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		switch {
		case err == nil:
			if !m.ChecksumVerified {
				t.Fatal("accepted without verified checksum")
			}
		case errors.Is(err, ErrManifestChecksum):
			if m == nil || m.ChecksumVerified {
				t.Fatal("checksum error without manifest")
			}
		case errors.Is(err, ErrInvalidManifest):
			if m != nil {
				t.Fatal("invalid manifest returned")
			}
			return
		default:
			t.Fatalf("unclassified error: %v", err)
		}
		for _, f := range m.Files {
			_ = VerifyFile(f, io.LimitReader(bytes.NewReader(data), 64))
		}
		_, _, _ = m.StopPoint()
	})
}
