package layout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walaudit/walaudit/walname"
)

func TestDetect(t *testing.T) {
	s1 := segment(1, 1)
	cases := []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"plain", map[string][]byte{segName(1, 1): s1}, Plain},
		{"plain gz", map[string][]byte{segName(1, 1) + ".gz": gz(t, s1)}, Plain},
		{"pgbackrest archive", map[string][]byte{"archive/demo/archive.info": []byte("[db]\n")}, PgBackRest},
		{"pgbackrest backup only", map[string][]byte{"backup/demo/backup.info": []byte("[db]\n")}, PgBackRest},
		{"pgbackrest archive id", map[string][]byte{"archive/demo/15-1/0000000100000000/" + segName(1, 1) + "-" + sha(s1): s1}, PgBackRest},
		{"walg wal", map[string][]byte{"wal_005/" + segName(1, 1) + ".lz4": lz4c(t, s1)}, WALG},
		{"walg backups", map[string][]byte{"basebackups_005/base_000000010000000000000001_backup_stop_sentinel.json": []byte("{}")}, WALG},
		{"barman", map[string][]byte{"wals/0000000100000000/" + segName(1, 1): s1, "base/x/backup.info": nil}, Barman},
		{"not pgbackrest: archive/ of something else", map[string][]byte{"archive/" + segName(1, 1): s1}, Plain},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, st := tree(t, c.files)
			l, err := Detect(context.Background(), st, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if l.Name() != c.want {
				t.Fatalf("detected %s, want %s", l.Name(), c.want)
			}
		})
	}
}

func TestUnrecognised(t *testing.T) {
	_, st := tree(t, map[string][]byte{"notes.txt": []byte("x"), "photos/cat.jpg": []byte("y")})
	_, err := Scan(context.Background(), st, Options{})
	if !errors.Is(err, ErrUnrecognized) {
		t.Fatalf("want ErrUnrecognized, got %v", err)
	}
	for _, want := range []string{"not an archive I recognise", "notes.txt", "photos/cat.jpg", "archive/<stanza>/archive.info", "wal_005/", "wals/"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// Forcing the plain layout reads it anyway (everything unknown).
	l, err := Scan(context.Background(), st, Options{Layout: Plain})
	if err != nil || len(l.Unknown) != 2 {
		t.Fatalf("forced plain: %v, %d unknown", err, len(l.Unknown))
	}
	// An empty store is an empty plain archive, not an error.
	_, empty := tree(t, nil)
	if l := scan(t, empty, Options{}); l.Layout != Plain || len(l.WAL) != 0 {
		t.Fatalf("empty store: %+v", l)
	}
}

// pgbrTree builds a pgBackRest repository around the real archive.info and
// backup.info pgBackRest 2.45 wrote (testdata): segments 7..F on timeline 1,
// gzip, with their SHA-1 in the name, the two backups' manifests and .backup
// files.
func pgbrTree(t *testing.T) map[string][]byte {
	files := map[string][]byte{
		"archive/demo/archive.info":                                     testdata(t, "pgbackrest-2.45/archive.info"),
		"archive/demo/archive.info.copy":                                testdata(t, "pgbackrest-2.45/archive.info"),
		"backup/demo/backup.info":                                       testdata(t, "pgbackrest-2.45/backup.info"),
		"backup/demo/backup.info.copy":                                  testdata(t, "pgbackrest-2.45/backup.info"),
		"backup/demo/20261121-025105F/backup.manifest":                  testdata(t, "pgbackrest-2.45/backup.manifest.head"),
		"backup/demo/20261121-025105F_20261121-025114I/backup.manifest": testdata(t, "pgbackrest-2.45/backup.manifest.head"),
		"backup/demo/20261121-025105F/pg_data/PG_VERSION.gz":            gz(t, []byte("15\n")),
		"archive/demo/15-1/0000000100000000/000000010000000000000007.00000028.backup": []byte(
			"START WAL LOCATION: 0/700028 (file 000000010000000000000007)\nSTOP WAL LOCATION: 0/700100 (file 000000010000000000000007)\n" +
				"CHECKPOINT LOCATION: 0/700060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-21 02:51:06 UTC\n" +
				"LABEL: pgBackRest backup started at 2026-11-21 02:51:06.241114+00\nSTART TIMELINE: 1\nSTOP TIME: 2026-11-21 02:51:13 UTC\nSTOP TIMELINE: 1\n"),
	}
	for s := walname.SegNo(7); s <= 0xF; s++ {
		b := segment(1, s)
		files[fmt.Sprintf("archive/demo/15-1/0000000100000000/%s-%s.gz", segName(1, s), sha(b))] = gz(t, b)
	}
	return files
}

func TestPgBackRestScan(t *testing.T) {
	_, st := tree(t, pgbrTree(t))
	l := scan(t, st, Options{})
	if l.Layout != PgBackRest || l.Cluster != "demo/15-1" || l.SystemID != testSysID || l.PGVersion != 15 {
		t.Fatalf("listing %s %s %d %d", l.Layout, l.Cluster, l.SystemID, l.PGVersion)
	}
	if len(l.WAL) != 10 || len(l.Unknown) != 0 {
		t.Fatalf("WAL %v, unknown %d", walKeys(l), len(l.Unknown))
	}
	for _, o := range l.WAL {
		if o.Name.Kind == walname.KindSegment && (o.Name.Checksum == "" || o.Name.Compression != walname.CompressGzip) {
			t.Errorf("%s: checksum %q compression %q", o.Key, o.Name.Checksum, o.Name.Compression)
		}
	}
	if len(l.Backups) != 2 {
		t.Fatalf("%d backups", len(l.Backups))
	}
	full, incr := l.Backups[0], l.Backups[1]
	if full.ID != "20261121-025105F" || full.StartLSN != 0x700028 || full.StopLSN != 0x700100 || full.StartTLI != 1 || full.SystemID != testSysID ||
		full.Source != SourcePgBackRest || full.StartTime.Text != "2026-11-21 02:51:05 UTC" || !full.StartTime.Resolved {
		t.Errorf("full backup %+v", full)
	}
	if incr.StartLSN != 0xF00028 || incr.StopLSN != 0xF00100 || incr.Incremental || !incr.Usable() {
		t.Errorf("incr backup %+v", incr)
	}
	if m := l.Meta[incr.ID]; m.Type != "incr" || m.Prior != full.ID || len(m.References) != 1 || m.References[0] != full.ID {
		t.Errorf("incr meta %+v", m)
	}
	if len(l.Findings) != 0 {
		t.Errorf("findings %v", l.Findings)
	}
	// Locate: one list of the 16-hex directory.
	locs, _, err := Locate(context.Background(), st, "00000001000000000000000A", Options{})
	if err != nil || len(locs) != 1 || !strings.HasPrefix(locs[0].Key, "archive/demo/15-1/0000000100000000/00000001000000000000000A-") ||
		locs[0].Compression != walname.CompressGzip || locs[0].Checksum == "" {
		t.Fatalf("locate: %v %+v", err, locs)
	}
	locs, _, err = Locate(context.Background(), st, "000000010000000000000010", Options{})
	if err != nil || len(locs) != 0 {
		t.Fatalf("locate absent: %v %+v", err, locs)
	}
}

func TestPgBackRestDamagedInfoUsesCopy(t *testing.T) {
	files := pgbrTree(t)
	files["archive/demo/archive.info"] = []byte(strings.Replace(string(files["archive/demo/archive.info"]), "db-id=1", "db-id=2", 1))
	_, st := tree(t, files)
	l := scan(t, st, Options{})
	if fs := findingsWith(l.Findings, CodeMetadataCopy); len(fs) != 1 || !strings.Contains(fs[0].Message, "fails its backrest-checksum") {
		t.Fatalf("findings %v", l.Findings)
	}
	if l.Cluster != "demo/15-1" || len(l.WAL) != 10 {
		t.Fatalf("cluster %s, %d WAL", l.Cluster, len(l.WAL))
	}
}

func TestPgBackRestStanzas(t *testing.T) {
	files := pgbrTree(t)
	files["archive/other/archive.info"] = testdata(t, "pgbackrest-2.45/archive.info")
	_, st := tree(t, files)
	_, err := Scan(context.Background(), st, Options{})
	if err == nil || !strings.Contains(err.Error(), "several stanzas: demo, other") || !strings.Contains(err.Error(), "--stanza") {
		t.Fatalf("want a stanza error, got %v", err)
	}
	l := scan(t, st, Options{Stanza: "demo"})
	if l.Cluster != "demo/15-1" || len(l.WAL) != 10 {
		t.Fatalf("stanza demo: %s %d", l.Cluster, len(l.WAL))
	}
}

func TestPgBackRestArchiveIDs(t *testing.T) {
	// A pg_upgrade from 14 to 15: archive id 14-1 holds the old cluster's WAL.
	info := "[backrest]\nbackrest-format=5\nbackrest-version=\"2.45\"\n\n[db]\ndb-id=2\ndb-system-id=222\ndb-version=\"15\"\n\n" +
		"[db:history]\n1={\"db-id\":111,\"db-version\":\"14\"}\n2={\"db-id\":222,\"db-version\":\"15\"}\n"
	old, cur := segment(1, 3), segment(1, 1)
	_, st := tree(t, map[string][]byte{
		"archive/demo/archive.info": []byte(info),
		"archive/demo/14-1/0000000100000000/" + segName(1, 3) + "-" + sha(old): old,
		"archive/demo/15-2/0000000100000000/" + segName(1, 1) + "-" + sha(cur): cur,
		"archive/demo/15-2/00000002.history":                                   []byte("1\t0/1000000\tno recovery target specified\n"),
	})
	l := scan(t, st, Options{})
	if l.Cluster != "demo/15-2" || len(l.WAL) != 2 || l.SystemID != 222 {
		t.Fatalf("current cluster: %s %v %d", l.Cluster, walKeys(l), l.SystemID)
	}
	if fs := findingsWith(l.Findings, CodeOtherCluster); len(fs) != 1 || !strings.Contains(fs[0].Message, "14-1") || !strings.Contains(fs[0].Hint, "--archive-id 14-1") {
		t.Fatalf("findings %v", l.Findings)
	}
	l = scan(t, st, Options{ArchiveID: "14-1"})
	if l.Cluster != "demo/14-1" || len(l.WAL) != 1 || l.SystemID != 111 || l.PGVersion != 14 {
		t.Fatalf("old cluster: %s %v", l.Cluster, walKeys(l))
	}
	if _, err := Scan(context.Background(), st, Options{ArchiveID: "13-9"}); err == nil || !strings.Contains(err.Error(), "14-1, 15-2") {
		t.Fatalf("unknown archive id: %v", err)
	}
}

func TestPgBackRestEncrypted(t *testing.T) {
	files := pgbrTree(t)
	enc := append([]byte("Salted__"), make([]byte, 64)...)
	for _, k := range []string{"archive/demo/archive.info", "archive/demo/archive.info.copy", "backup/demo/backup.info", "backup/demo/backup.info.copy"} {
		files[k] = enc
	}
	_, st := tree(t, files)
	l := scan(t, st, Options{})
	if l.Encrypted == "" || len(findingsWith(l.Findings, CodeEncrypted)) != 1 || len(l.WAL) != 10 || len(l.Backups) != 0 {
		t.Fatalf("encrypted: %q %v %d WAL", l.Encrypted, l.Findings, len(l.WAL))
	}
	if _, _, err := Locate(context.Background(), st, segName(1, 7), Options{}); !errors.Is(err, ErrEncrypted) {
		t.Fatalf("locate: %v", err)
	}
}

func TestPgBackRestVerifyChecksums(t *testing.T) {
	files := pgbrTree(t)
	var badKey, corruptKey string
	for k := range files {
		if strings.Contains(k, segName(1, 9)+"-") {
			b := segment(1, 9)
			b[5000] = 0xFF // content differs from the SHA-1 in the name
			files[k] = gz(t, b)
			badKey = k
		}
		if strings.Contains(k, segName(1, 0xB)+"-") {
			g := append([]byte(nil), files[k]...)
			g[len(g)/2] ^= 0xFF // the compressed stream itself is damaged
			files[k] = g
			corruptKey = k
		}
	}
	_, st := tree(t, files)
	if l := scan(t, st, Options{}); len(findingsWith(l.Findings, CodeChecksumMismatch)) != 0 {
		t.Fatal("checksums verified without VerifyChecksums")
	}
	l := scan(t, st, Options{VerifyChecksums: true})
	fs := findingsWith(l.Findings, CodeChecksumMismatch)
	if len(fs) != 2 {
		t.Fatalf("want 2 mismatches, got %v", fs)
	}
	byFile := map[string]string{}
	for _, f := range fs {
		byFile[f.File] = f.Message
	}
	if !strings.Contains(byFile[badKey], "has SHA-1") || !strings.Contains(byFile[corruptKey], "cannot be decompressed") {
		t.Fatalf("findings %v", fs)
	}
}

func TestPgBackRestMisplacedAndMissingBackup(t *testing.T) {
	files := pgbrTree(t)
	s := segment(2, 0x10)
	files["archive/demo/15-1/0000000100000000/"+segName(2, 0x10)+"-"+sha(s)] = s     // wrong directory
	files["archive/demo/15-1/0000000100000000/"+segName(1, 0x10)] = segment(1, 0x10) // no checksum
	delete(files, "backup/demo/20261121-025105F/backup.manifest")
	_, st := tree(t, files)
	l := scan(t, st, Options{})
	if fs := findingsWith(l.Findings, CodeMisplaced); len(fs) != 2 {
		t.Fatalf("misplaced: %v", l.Findings)
	}
	if len(l.WAL) != 10 || len(l.Unknown) != 2 {
		t.Fatalf("%d WAL, %d unknown", len(l.WAL), len(l.Unknown))
	}
	full := l.Backups[0]
	if full.Usable() || len(findingsWith(full.Findings, CodeBackupMissing)) != 1 {
		t.Fatalf("full backup without manifest: %+v", full.Findings)
	}
}

func TestPgBackRestOldManifestLSNs(t *testing.T) {
	// pgBackRest before backup-lsn-* in backup.info: the LSNs come from
	// the manifest.
	files := pgbrTree(t)
	bi := string(files["backup/demo/backup.info"])
	bi = strings.ReplaceAll(bi, `"backup-lsn-start":"0/F00028","backup-lsn-stop":"0/F00100",`, "")
	bi = bi[:strings.LastIndex(bi, "[backrest]")] // no checksum: older files are accepted unverified
	files["backup/demo/backup.info"] = []byte(bi)
	delete(files, "backup/demo/backup.info.copy")
	_, st := tree(t, files)
	l := scan(t, st, Options{})
	incr := l.Backups[1]
	if incr.StartLSN != 0xF00028 || incr.StopLSN != 0xF00100 {
		t.Fatalf("incr from manifest: %s %s (%v)", incr.StartLSN, incr.StopLSN, l.Findings)
	}
}

func walgTree(t *testing.T) map[string][]byte {
	files := map[string][]byte{
		"wal_005/00000002.history.lz4":                         lz4c(t, []byte("1\t0/5000000\tno recovery target specified\n")),
		"wal_005/000000010000000000000003_delta.lz4":           []byte("not WAL"),
		"wal_005/000000010000000000000002.00000028.backup.lz4": lz4c(t, []byte("START WAL LOCATION: 0/200028 (file 000000010000000000000002)\n")),
		"basebackups_005/base_000000010000000000000002_backup_stop_sentinel.json": []byte(`{"LSN":2097192,"Timeline":1,"PgVersion":150018,"FinishLSN":2097408,` +
			`"SystemIdentifier":7710451828975925204,"UncompressedSize":1,"CompressedSize":1,"Spec":null,"Version":2,` +
			`"StartTime":"2026-11-21T02:51:05.123456Z","FinishTime":"2026-11-21T02:51:07.5Z","DateFmt":"%Y-%m-%dT%H:%M:%S.%fZ","Hostname":"h","DataDir":"/d","IsPermanent":false}`),
		"basebackups_005/base_000000010000000000000002/metadata.json":                 []byte(`{}`),
		"basebackups_005/base_000000010000000000000002/tar_partitions/part_1.tar.lz4": []byte("x"),
		// An old sentinel without FinishLSN or times: metadata.json has them.
		"basebackups_005/base_000000010000000000000004_D_000000010000000000000002_backup_stop_sentinel.json": []byte(
			`{"LSN":4194344,"DeltaLSN":2097192,"DeltaFrom":"base_000000010000000000000002","DeltaFullName":"base_000000010000000000000002","DeltaCount":1,"PgVersion":150018}`),
		"basebackups_005/base_000000010000000000000004_D_000000010000000000000002/metadata.json": []byte(
			`{"start_time":"2026-11-21T03:00:00Z","finish_time":"2026-11-21T03:00:02Z","start_lsn":4194344,"finish_lsn":4194560,"system_identifier":7710451828975925204,"pg_version":150018}`),
		// A delta whose base is gone, and a backup that never finished.
		"basebackups_005/base_000000010000000000000005_D_000000010000000000000001_backup_stop_sentinel.json": []byte(
			`{"LSN":5242920,"FinishLSN":5243136,"DeltaLSN":1048616,"DeltaFrom":"base_000000010000000000000001","DeltaFullName":"base_000000010000000000000001","DeltaCount":1,"PgVersion":150018}`),
		"basebackups_005/base_000000010000000000000006/tar_partitions/part_1.tar.lz4": []byte("x"),
	}
	for s := walname.SegNo(1); s <= 6; s++ {
		files["wal_005/"+segName(1, s)+".lz4"] = lz4c(t, segment(1, s))
	}
	return files
}

func TestWALG(t *testing.T) {
	_, st := tree(t, walgTree(t))
	l := scan(t, st, Options{})
	if l.Layout != WALG || len(l.WAL) != 8 || len(l.Unknown) != 0 || l.Encrypted != "" {
		t.Fatalf("listing %s %v unknown %d %q", l.Layout, walKeys(l), len(l.Unknown), l.Encrypted)
	}
	if len(l.Backups) != 3 {
		t.Fatalf("%d backups", len(l.Backups))
	}
	full, delta, orphan := l.Backups[0], l.Backups[1], l.Backups[2]
	if full.ID != "base_000000010000000000000002" || full.StartLSN != 0x200028 || full.StopLSN != 0x200100 || full.StartTLI != 1 ||
		full.SystemID != testSysID || full.PGMajor != 15 || full.StartTime.Time.Nanosecond() != 123456000 || !full.Usable() {
		t.Errorf("full %+v", full)
	}
	if delta.StopLSN != 0x400100 || delta.StartTime.Text != "2026-11-21 03:00:00 UTC" || delta.SystemID != testSysID || !delta.Usable() {
		t.Errorf("delta %+v", delta)
	}
	if m := l.Meta[delta.ID]; m.Type != "delta" || m.Prior != full.ID {
		t.Errorf("delta meta %+v", m)
	}
	if orphan.Usable() || len(findingsWith(orphan.Findings, CodeBackupMissing)) != 1 {
		t.Errorf("delta of a missing base: %+v", orphan.Findings)
	}
	if fs := findingsWith(l.Findings, CodeBackupNotDone); len(fs) != 1 || !strings.Contains(fs[0].Message, "base_000000010000000000000006") {
		t.Errorf("unfinished backup: %v", l.Findings)
	}
	locs, _, err := Locate(context.Background(), st, segName(1, 3), Options{})
	if err != nil || len(locs) != 1 || locs[0].Key != "wal_005/"+segName(1, 3)+".lz4" || locs[0].Compression != walname.CompressLZ4 {
		t.Fatalf("locate %v %+v", err, locs)
	}
	locs, _, err = Locate(context.Background(), st, "00000002.history", Options{})
	if err != nil || len(locs) != 1 {
		t.Fatalf("locate history %v %+v", err, locs)
	}
}

func TestWALGEncrypted(t *testing.T) {
	files := walgTree(t)
	// libsodium: a 24-byte secretstream header then ciphertext; OpenPGP: a
	// public-key encrypted session key packet. Both keep the .lz4 name.
	for name, head := range map[string][]byte{
		"libsodium": []byte("\x9a\x11\x02\x7f\x33\x81\xc4\x10\xde\xad\xbe\xef\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"),
		"openpgp":   []byte("\xc1\x4c\x03\x12\x34\x56\x78\x9a\xbc\xde\xf0\x01\x08\x00\xaa\xbb"),
	} {
		t.Run(name, func(t *testing.T) {
			f := map[string][]byte{}
			for k, v := range files {
				f[k] = v
			}
			for s := walname.SegNo(1); s <= 6; s++ {
				f["wal_005/"+segName(1, s)+".lz4"] = append(append([]byte(nil), head...), make([]byte, 300)...)
			}
			_, st := tree(t, f)
			l := scan(t, st, Options{})
			fs := findingsWith(l.Findings, CodeEncrypted)
			if l.Encrypted == "" || len(fs) != 1 || !strings.Contains(fs[0].Message, "not supported") {
				t.Fatalf("encrypted: %q %v", l.Encrypted, l.Findings)
			}
			if name == "openpgp" && !strings.Contains(l.Encrypted, "OpenPGP") {
				t.Errorf("%q", l.Encrypted)
			}
			if _, _, err := Locate(context.Background(), st, segName(1, 2), Options{}); !errors.Is(err, ErrEncrypted) {
				t.Fatalf("locate: %v", err)
			}
		})
	}
}

func barmanTree(t *testing.T) map[string][]byte {
	info := string(testdata(t, "barman-3.4/backup.info"))
	files := map[string][]byte{
		"wals/xlog.db":                         testdata(t, "barman-3.4/xlog.db"),
		"base/20261121T025802/backup.info":     []byte(info),
		"base/20261121T025802/data/PG_VERSION": []byte("15\n"),
		// A failed backup, one that never started copying, one waiting for WAL.
		"base/20261121T030000/backup.info": []byte(strings.ReplaceAll(strings.ReplaceAll(info, "status=DONE", "status=FAILED"), "0/1100028", "0/1300028")),
		"base/20261121T030100/backup.info": []byte("status=STARTED\nbegin_xlog=None\nsystemid=7710451828975925204\n"),
		"base/20261121T030200/backup.info": []byte(strings.ReplaceAll(strings.ReplaceAll(info, "status=DONE", "status=WAITING_FOR_WALS"), "0/1100028", "0/1400028")),
		"wals/00000002.history":            []byte("1\t0/1500000\tno recovery target specified\n"),
	}
	seg := segment(1, 0x11)
	g := gz(t, seg)
	files["wals/0000000100000000/000000010000000000000011"] = g
	files["wals/0000000100000000/000000010000000000000011.00000028.backup"] = gz(t, []byte("START WAL LOCATION: 0/1100028 (file 000000010000000000000011)\n"))
	files["wals/0000000100000000/000000010000000000000012"] = segment(1, 0x12)        // not in xlog.db, uncompressed
	files["wals/0000000100000000/000000010000000000000013"] = gz(t, segment(1, 0x13)) // not in xlog.db, compressed
	// The real xlog.db says 1211 bytes for segment 11: rewrite it with this
	// file's size.
	db := strings.Replace(string(files["wals/xlog.db"]), "000000010000000000000011\t1211", fmt.Sprintf("000000010000000000000011\t%d", len(g)), 1)
	db = strings.Replace(db, "000000010000000000000011.00000028.backup\t199", fmt.Sprintf("000000010000000000000011.00000028.backup\t%d",
		len(files["wals/0000000100000000/000000010000000000000011.00000028.backup"])), 1)
	files["wals/xlog.db"] = []byte(db)
	return files
}

func TestBarman(t *testing.T) {
	_, st := tree(t, barmanTree(t))
	l := scan(t, st, Options{})
	if l.Layout != Barman || len(l.WAL) != 5 || len(l.Unknown) != 0 {
		t.Fatalf("listing %s %v %d", l.Layout, walKeys(l), len(l.Unknown))
	}
	comp := map[string]walname.Compression{}
	for _, o := range l.WAL {
		comp[filepath.Base(o.Key)] = o.Name.Compression
	}
	if comp["000000010000000000000011"] != walname.CompressGzip || comp["000000010000000000000011.00000028.backup"] != walname.CompressGzip ||
		comp["000000010000000000000012"] != walname.CompressNone || comp["000000010000000000000013"] != walname.CompressGzip {
		t.Fatalf("compression %v", comp)
	}
	if fs := findingsWith(l.Findings, CodeXlogDB); len(fs) != 1 || !strings.Contains(fs[0].Message, "2 segment(s) in wals/ are not in xlog.db") {
		t.Fatalf("xlog.db findings %v", l.Findings)
	}
	if len(l.Backups) != 3 || l.SegmentSize != testSeg || l.SystemID != testSysID {
		t.Fatalf("%d backups, size %s", len(l.Backups), l.SegmentSize)
	}
	done := l.Backups[0]
	if done.ID != "20261121T025802" || done.StartLSN != 0x1100028 || done.CheckpointLSN != 0x1100060 || done.StopLSN != 0x1200000 ||
		done.BackupLabel == nil || done.BackupLabel.Label != "pg_basebackup base backup" || !done.Usable() ||
		done.StartTime.Time.UTC().Format("15:04:05.000000") != "02:58:02.561471" {
		t.Errorf("done backup %+v", done)
	}
	for _, b := range l.Backups[1:] {
		if b.Usable() || len(findingsWith(b.Findings, CodeBackupNotDone)) != 1 {
			t.Errorf("backup %s (%s) is usable: %v", b.ID, l.Meta[b.ID].Status, b.Findings)
		}
	}
	if fs := findingsWith(l.Findings, CodeBackupNotDone); len(fs) != 1 || !strings.Contains(fs[0].Message, "20261121T030100") {
		t.Errorf("never-started backup: %v", l.Findings)
	}
	locs, _, err := Locate(context.Background(), st, "000000010000000000000011", Options{})
	if err != nil || len(locs) != 1 || locs[0].Key != "wals/0000000100000000/000000010000000000000011" {
		t.Fatalf("locate %v %+v", err, locs)
	}
}

func TestBarmanCloudNested(t *testing.T) {
	// barman-cloud: <destination>/<server>/wals/<16 hex>/<name>.gz, the
	// store opened at the destination.
	seg := segment(1, 0x11)
	files := map[string][]byte{
		"pg1/wals/0000000100000000/000000010000000000000011.gz": gz(t, seg),
		"pg1/wals/00000002.history.gz":                          gz(t, []byte("1\t0/1500000\tno recovery target specified\n")),
		"pg1/base/20261121T025802/backup.info":                  testdata(t, "barman-3.4/backup.info"),
		"pg1/base/20261121T025802/data.tar.gz":                  gz(t, []byte("tar")),
	}
	_, st := tree(t, files)
	l := scan(t, st, Options{})
	if l.Layout != Barman || l.Prefix != "pg1/" || l.Cluster != "pg1" || len(l.WAL) != 2 || len(l.Backups) != 1 {
		t.Fatalf("nested barman-cloud: %s %q %q %v %d", l.Layout, l.Prefix, l.Cluster, walKeys(l), len(l.Backups))
	}
	// Two servers: --stanza picks one.
	files["pg2/wals/0000000100000000/000000010000000000000011.gz"] = gz(t, seg)
	_, st = tree(t, files)
	if _, err := Scan(context.Background(), st, Options{}); err == nil || !strings.Contains(err.Error(), "pg1 (barman), pg2 (barman)") {
		t.Fatalf("two servers: %v", err)
	}
	if l := scan(t, st, Options{Stanza: "pg2"}); l.Cluster != "pg2" || len(l.WAL) != 1 {
		t.Fatalf("server pg2: %+v", l)
	}
	locs, _, err := Locate(context.Background(), st, "000000010000000000000011", Options{Layout: Barman, Prefix: "pg1/"})
	if err != nil || len(locs) != 1 || locs[0].Compression != walname.CompressGzip {
		t.Fatalf("locate %v %+v", err, locs)
	}
}

func TestBarmanEncrypted(t *testing.T) {
	files := barmanTree(t)
	files["wals/xlog.db"] = append(files["wals/xlog.db"], []byte("000000010000000000000014\t100\t1795229883.0\tgzip\tgpg\n")...)
	_, st := tree(t, files)
	l := scan(t, st, Options{})
	if l.Encrypted == "" || len(findingsWith(l.Findings, CodeEncrypted)) != 1 {
		t.Fatalf("encrypted %q %v", l.Encrypted, l.Findings)
	}
}

func TestPythonString(t *testing.T) {
	for in, want := range map[string]string{
		`'START WAL LOCATION: 0/1100028\nLABEL: it\'s'`: "START WAL LOCATION: 0/1100028\nLABEL: it's",
		`b'a\\b\x41'`: `a\bA`,
		`"x"`:         "x",
	} {
		got, ok := pythonString(in)
		if !ok || got != want {
			t.Errorf("pythonString(%s) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := pythonString("None"); ok {
		t.Error("None is no string")
	}
}

func TestXlogDB(t *testing.T) {
	db, bad := parseXlogDB([]byte("a 1 2\nb 3 4.5 gzip\nc 5 6 None None\nd x 1 gzip\ne\n\n"))
	if bad != 2 || len(db) != 3 || db["b"].compression != "gzip" || db["c"].encryption != "None" || db["a"].size != 1 {
		t.Fatalf("%v %d", db, bad)
	}
}

func TestRealInfoFilesVerify(t *testing.T) {
	for _, name := range []string{"pgbackrest-2.45/archive.info", "pgbackrest-2.45/backup.info"} {
		f, err := parseINI(testdata(t, name), nil)
		if err != nil {
			t.Fatal(err)
		}
		if match, ok := f.checksumOK(); !ok || !match {
			t.Errorf("%s: backrest-checksum not verified (ok %v, match %v)", name, ok, match)
		}
	}
	if _, err := os.Stat("testdata/pgbackrest-2.45/backup.manifest.head"); err != nil {
		t.Fatal(err)
	}
}

func TestLocateNeverGuessesAbsent(t *testing.T) {
	ctx := context.Background()
	// A barman-cloud destination: the server directory is found.
	_, st := tree(t, map[string][]byte{"pg1/wals/0000000100000000/000000010000000000000011.gz": gz(t, segment(1, 0x11))})
	locs, l, err := Locate(ctx, st, "000000010000000000000011", Options{})
	if err != nil || len(locs) != 1 || l.Name() != Barman || locs[0].Key != "pg1/wals/0000000100000000/000000010000000000000011.gz" {
		t.Fatalf("nested: %v %+v", err, locs)
	}
	if locs, _, err := Locate(ctx, st, "000000010000000000000012", Options{}); err != nil || len(locs) != 0 {
		t.Fatalf("nested, absent: %v %+v", err, locs)
	}
	// A store holding no WAL: an error, not "absent".
	_, st = tree(t, map[string][]byte{"notes.txt": []byte("x")})
	if _, _, err := Locate(ctx, st, "000000010000000000000011", Options{}); !errors.Is(err, ErrUnrecognized) {
		t.Fatalf("unrecognised store: %v", err)
	}
	// An empty archive, or a plain one without the file: absent.
	_, st = tree(t, nil)
	if locs, _, err := Locate(ctx, st, "000000010000000000000011", Options{}); err != nil || len(locs) != 0 {
		t.Fatalf("empty: %v %+v", err, locs)
	}
	_, st = tree(t, map[string][]byte{segName(1, 1): segment(1, 1), segName(1, 2) + ".zst": []byte("x")})
	if locs, _, err := Locate(ctx, st, segName(1, 3), Options{}); err != nil || len(locs) != 0 {
		t.Fatalf("plain, absent: %v %+v", err, locs)
	}
	if locs, _, err := Locate(ctx, st, segName(1, 2), Options{}); err != nil || len(locs) != 1 || locs[0].Compression != walname.CompressZstd {
		t.Fatalf("plain zst: %v %+v", err, locs)
	}
	if _, _, err := Locate(ctx, st, "../etc/passwd", Options{}); err == nil {
		t.Fatal("a name that is no WAL file name was accepted")
	}
}
