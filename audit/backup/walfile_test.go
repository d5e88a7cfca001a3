package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/walaudit/walaudit/walname"
)

// realWAL returns a real PostgreSQL 15 segment (1 MiB) from
// audit/wal/testdata.
func realWAL(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "wal", "testdata", name+".gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// historyFile is a timeline history file as PostgreSQL writes it.
var historyFile = []byte("1\t0/B000198\tno recovery target specified\n")

// readWAL opens name in b and reads it completely.
func readWAL(t *testing.T, b *Backup, name string) ([]byte, error) {
	t.Helper()
	rc, err := OpenWAL(context.Background(), b, name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := rc.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	return io.ReadAll(rc)
}

func TestOpenWALTar(t *testing.T) {
	label, tsmap, version, control, manifest := realTarFiles(t, "tar_stream")
	seg9 := realWAL(t, "000000010000000000000009")
	seg10 := realWAL(t, "00000001000000000000000A")
	for _, comp := range []walname.Compression{walname.CompressNone, walname.CompressGzip, walname.CompressLZ4, walname.CompressZstd} {
		suffix := ""
		if comp != walname.CompressNone {
			suffix = "." + string(comp)
		}
		t.Run("stream/"+compressionName(comp), func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string][]byte{
				"base.tar" + suffix: buildTar(t, comp, baseEntries(label, tsmap, version, control,
					// Not searched: with pg_wal.tar, WAL is only there.
					tarEntry{name: "pg_wal/00000001000000000000000A", data: seg10})),
				"pg_wal.tar" + suffix: buildTar(t, comp, []tarEntry{
					{name: "archive_status/"},
					{name: "00000002.history", data: historyFile},
					{name: "archive_status/000000010000000000000009.done"},
					{name: "000000010000000000000009", data: seg9},
				}),
				"16384.tar" + suffix: buildTar(t, comp, nil),
				"backup_manifest":    manifest,
			})
			b, _ := scanOne(t, dir)
			if got, err := readWAL(t, b, "000000010000000000000009"); err != nil || !bytes.Equal(got, seg9) {
				t.Errorf("segment: %d bytes, err %v", len(got), err)
			}
			if got, err := readWAL(t, b, "00000002.history"); err != nil || !bytes.Equal(got, historyFile) {
				t.Errorf("history: %q, err %v", got, err)
			}
			for _, name := range []string{"00000001000000000000000A", "00000001000000000000000B", "00000003.history"} {
				if _, err := readWAL(t, b, name); !errors.Is(err, ErrWALNotInBackup) {
					t.Errorf("%s: err %v, want ErrWALNotInBackup", name, err)
				}
			}
			checkListedOpen(t, b)
		})
		t.Run("fetch/"+compressionName(comp), func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string][]byte{
				"base.tar" + suffix: buildTar(t, comp, baseEntries(label, tsmap, version, control,
					tarEntry{name: "pg_wal/000000010000000000000009", data: seg9},
					tarEntry{name: "./pg_wal/00000001000000000000000A", data: seg10},
					tarEntry{name: "pg_wal/00000002.history", data: historyFile},
					tarEntry{name: "pg_wal/archive_status/00000001000000000000000A.done"})),
				"16384.tar" + suffix: buildTar(t, comp, nil),
				"backup_manifest":    manifest,
			})
			b, _ := scanOne(t, dir)
			if len(b.WALSegments) != 2 {
				t.Fatalf("scan lists %v", b.WALSegments)
			}
			for name, want := range map[string][]byte{"000000010000000000000009": seg9, "00000001000000000000000A": seg10, "00000002.history": historyFile} {
				if got, err := readWAL(t, b, name); err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes, err %v", name, len(got), err)
				}
			}
			if _, err := readWAL(t, b, "00000001000000000000000B"); !errors.Is(err, ErrWALNotInBackup) {
				t.Errorf("missing: %v", err)
			}
			checkListedOpen(t, b)
		})
	}
}

// checkListedOpen opens every WAL file ScanDir listed.
func checkListedOpen(t *testing.T, b *Backup) {
	t.Helper()
	for _, name := range append(append([]string(nil), b.WALSegments...), b.WALHistoryFiles...) {
		got, err := readWAL(t, b, name)
		if err != nil {
			t.Errorf("listed %s does not open: %v", name, err)
			continue
		}
		if walname.IsSegmentName(name) && b.SegmentSize != 0 && len(got) != int(b.SegmentSize) {
			t.Errorf("listed %s: %d bytes, segment size %d", name, len(got), b.SegmentSize)
		}
	}
}

func TestOpenWALPlain(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "plain1")
	plainFixture(t, dir)
	seg := realWAL(t, "00000001000000000000000B")
	writeFiles(t, dir, map[string][]byte{
		"pg_wal/00000001000000000000000B": seg,
		"pg_wal/00000002.history":         historyFile,
	})
	if err := os.MkdirAll(filepath.Join(dir, "pg_wal", "00000001000000000000000C"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := scanOne(t, root)
	if got, err := readWAL(t, b, "00000001000000000000000B"); err != nil || !bytes.Equal(got, seg) {
		t.Errorf("segment: %d bytes, err %v", len(got), err)
	}
	if got, err := readWAL(t, b, "00000002.history"); err != nil || !bytes.Equal(got, historyFile) {
		t.Errorf("history: %q, err %v", got, err)
	}
	for _, name := range []string{"00000001000000000000000C", "00000001000000000000000D"} {
		if _, err := readWAL(t, b, name); !errors.Is(err, ErrWALNotInBackup) {
			t.Errorf("%s: err %v, want ErrWALNotInBackup", name, err)
		}
	}
	checkListedOpen(t, b)

	// pg_wal may be a symlink (pg_basebackup --waldir).
	walDir := filepath.Join(t.TempDir(), "wal")
	if err := os.Rename(filepath.Join(dir, "pg_wal"), walDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(walDir, filepath.Join(dir, "pg_wal")); err != nil {
		t.Fatal(err)
	}
	if got, err := readWAL(t, b, "00000001000000000000000B"); err != nil || !bytes.Equal(got, seg) {
		t.Errorf("through symlinked pg_wal: %d bytes, err %v", len(got), err)
	}
}

// rawTar writes tar entries with arbitrary headers.
func rawTar(t *testing.T, hdrs []*tar.Header, data [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if data[i] != nil {
			if _, err := tw.Write(data[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestOpenWALUntrustedNames: entries that are not plainly the file never
// match.
func TestOpenWALUntrustedNames(t *testing.T) {
	const name = "000000010000000000000009"
	seg := realWAL(t, name)
	reg := func(n string) *tar.Header {
		return &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(seg))}
	}
	hdrs := []*tar.Header{
		reg("../" + name),
		reg("/" + name),
		reg("/pg_wal/" + name),
		reg("x/../../" + name),
		reg("archive_status/" + name),
		{Name: name, Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		{Name: "pg_wal/" + name, Typeflag: tar.TypeLink, Linkname: "base/1/1259"},
		{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o700},
	}
	data := [][]byte{seg, seg, seg, seg, seg, nil, nil, nil}
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"base.tar": buildTar(t, "", []tarEntry{{name: "PG_VERSION", data: []byte("15\n")}}),
		"pg_wal.tar": rawTar(t, hdrs, data)})
	b := &Backup{Source: SourceBackupsDir, ID: "b", Path: dir, Format: FormatTar}
	if _, err := readWAL(t, b, name); !errors.Is(err, ErrWALNotInBackup) {
		t.Fatalf("err %v, want ErrWALNotInBackup", err)
	}
	// A name that cleans to the file is the file.
	writeFiles(t, dir, map[string][]byte{"pg_wal.tar": rawTar(t, append(hdrs, reg("pg_wal/../"+name)), append(data, seg))})
	if got, err := readWAL(t, b, name); err != nil || !bytes.Equal(got, seg) {
		t.Errorf("pg_wal/../NAME: %d bytes, err %v", len(got), err)
	}
}

func TestOpenWALErrors(t *testing.T) {
	label, tsmap, version, control, _ := realTarFiles(t, "tar_gzip_fetch")
	seg := realWAL(t, "00000001000000000000000B")
	gz := buildTar(t, walname.CompressGzip, baseEntries(label, tsmap, version, control,
		tarEntry{name: "pg_wal/00000001000000000000000B", data: seg}))
	dir := t.TempDir()
	b := &Backup{Source: SourceBackupsDir, ID: "b", Path: dir, Format: FormatTar}

	for _, bad := range []string{"", "../../etc/passwd", "00000001000000000000000B.partial", "00000001000000000000000b", "pg_wal/00000001000000000000000B"} {
		if _, err := OpenWAL(context.Background(), b, bad); err == nil || errors.Is(err, ErrWALNotInBackup) {
			t.Errorf("name %q: err %v, want an invalid-name error", bad, err)
		}
	}
	// No base.tar at all.
	if _, err := readWAL(t, b, "00000001000000000000000B"); !errors.Is(err, ErrWALNotInBackup) {
		t.Errorf("empty directory: %v", err)
	}
	// Damage before the entry: an error, not "not in backup".
	writeFiles(t, dir, map[string][]byte{"base.tar.gz": gz[:len(gz)/3]})
	if _, err := readWAL(t, b, "00000001000000000000000B"); err == nil || errors.Is(err, ErrWALNotInBackup) ||
		!strings.Contains(err.Error(), "base.tar.gz") {
		t.Errorf("truncated before the entry: %v", err)
	}
	// Damage inside the entry: reading fails.
	raw := buildTar(t, "", baseEntries(label, tsmap, version, control,
		tarEntry{name: "pg_wal/00000001000000000000000B", data: seg}))
	os.Remove(filepath.Join(dir, "base.tar.gz"))
	writeFiles(t, dir, map[string][]byte{"base.tar": raw[:len(raw)-len(seg)/2]})
	if _, err := readWAL(t, b, "00000001000000000000000B"); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated inside the entry: %v", err)
	}
	// A history-file description carries no files.
	hb := &Backup{Source: SourceArchiveHistory, ID: "000000010000000000000009.00000028.backup"}
	if _, err := OpenWAL(context.Background(), hb, "000000010000000000000009"); !errors.Is(err, ErrWALNotInBackup) {
		t.Errorf("history-file backup: %v", err)
	}
	// Cancellation: before opening and while reading.
	writeFiles(t, dir, map[string][]byte{"base.tar": raw})
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := OpenWAL(ctx, b, "00000001000000000000000B")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Read(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v", err)
	}
	rc.Close()
	if _, err := rc.Read(make([]byte, 1)); err == nil {
		t.Error("read after close succeeded")
	}
	if _, err := OpenWAL(ctx, b, "00000001000000000000000B"); !errors.Is(err, context.Canceled) {
		t.Errorf("open after cancel: %v", err)
	}
}
