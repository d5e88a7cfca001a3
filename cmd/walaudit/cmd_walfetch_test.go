package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWalFetch(t *testing.T) {
	lab := getCheckFixture(t)
	dir := copyArchive(t, lab)
	segs := segmentsIn(t, dir)
	name := segs[1]
	want, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()

	// A plain segment is delivered byte for byte.
	dest := filepath.Join(out, "RECOVERYXLOG")
	if _, stderr, code := run(t, "wal-fetch", "--archive", dir, name, dest); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, want) {
		t.Fatal("delivered segment differs from the archived one")
	}

	// A gzip-compressed segment is decompressed.
	gzName := segs[2]
	raw, _ := os.ReadFile(filepath.Join(dir, gzName))
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	os.Remove(filepath.Join(dir, gzName))
	if err := os.WriteFile(filepath.Join(dir, gzName+".gz"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dest2 := filepath.Join(out, "gz")
	if _, stderr, code := run(t, "wal-fetch", "--archive", dir, "--segment-size", "1MB", gzName, dest2); code != 0 {
		t.Fatalf("gz: exit %d: %s", code, stderr)
	}
	if got, _ := os.ReadFile(dest2); !bytes.Equal(got, raw) {
		t.Fatal("decompressed segment differs")
	}

	// Absent: exit 1, and nothing written.
	if _, _, code := run(t, "wal-fetch", "--archive", dir, "0000000100000000000000FF", filepath.Join(out, "x")); code != 1 {
		t.Fatalf("absent segment: exit %d, want 1", code)
	}
	if _, err := os.Stat(filepath.Join(out, "x")); err == nil {
		t.Fatal("a file was written for an absent segment")
	}
	// History probes that miss are normal and also exit 1.
	if _, _, code := run(t, "wal-fetch", "--archive", dir, "00000009.history", filepath.Join(out, "h")); code != 1 {
		t.Fatalf("absent history: exit %d, want 1", code)
	}
	// Names that are no WAL file names are refused.
	for _, bad := range []string{"../../etc/passwd", "backup_label", name + ".partial", "00000001000000000000000a", "00000001.HISTORY"} {
		if _, _, code := run(t, "wal-fetch", "--archive", dir, bad, filepath.Join(out, "y")); code != fetchFatal {
			t.Fatalf("%q: exit %d, want %d (abort recovery)", bad, code, fetchFatal)
		}
	}
	// A restore_command with a bad flag must abort recovery too.
	if _, _, code := run(t, "wal-fetch", "--archive", dir, "--no-such-flag", name, filepath.Join(out, "y")); code != fetchFatal {
		t.Fatalf("bad flag: exit %d, want %d", code, fetchFatal)
	}
	// A truncated segment is not handed to PostgreSQL as if it were whole,
	// and a store that keeps failing exits above 125 (abort recovery).
	if err := os.Truncate(filepath.Join(dir, segs[0]), 4096); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run(t, "wal-fetch", "--archive", dir, "--retries", "1", segs[0], filepath.Join(out, "t"))
	if code != fetchFatal || !strings.Contains(stderr, "not the segment size") {
		t.Fatalf("truncated: exit %d (%s), want %d", code, stderr, fetchFatal)
	}
	notDir := filepath.Join(out, "file-not-dir")
	os.WriteFile(notDir, []byte("x"), 0o644)
	if _, _, code := run(t, "wal-fetch", "--archive", notDir, "--retries", "1", name, filepath.Join(out, "z")); code != fetchFatal {
		t.Fatalf("broken archive location: exit %d, want %d", code, fetchFatal)
	}
}

// TestWalFetchPrefetch runs the real binary, as PostgreSQL would: the
// detached prefetch worker fills the spool, and a later request is served
// from it even after the archive lost the file.
func TestWalFetchPrefetch(t *testing.T) {
	lab := getCheckFixture(t)
	dir := copyArchive(t, lab)
	segs := segmentsIn(t, dir)
	bin := filepath.Join(t.TempDir(), "walaudit")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	spool := filepath.Join(t.TempDir(), "spool")
	out := t.TempDir()
	cmd := exec.Command(bin, "wal-fetch", "--archive", dir, "--segment-size", "1MB", "--spool", spool, "--prefetch", "2", segs[0], filepath.Join(out, "a"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wal-fetch: %v\n%s", err, b)
	}
	next := filepath.Join(spool, segs[1])
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(next); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prefetch never delivered %s", segs[1])
		}
		time.Sleep(50 * time.Millisecond)
	}
	want, _ := os.ReadFile(filepath.Join(dir, segs[1]))
	os.Remove(filepath.Join(dir, segs[1]))
	cmd = exec.Command(bin, "wal-fetch", "--archive", dir, "--spool", spool, segs[1], filepath.Join(out, "b"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("served from spool: %v\n%s", err, b)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "b")); !bytes.Equal(got, want) {
		t.Fatal("spooled segment differs from the archived one")
	}
	// A worker that starts after the drill removed its scratch directory
	// does not bring it back.
	gone := filepath.Join(t.TempDir(), "scratch-removed")
	cmd = exec.Command(bin, "wal-fetch", "--prefetch-worker", "--archive", dir, "--segment-size", "1MB", "--spool", filepath.Join(gone, "spool"), segs[2])
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("late worker: %v\n%s", err, b)
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Fatalf("a late prefetch worker recreated %s: %v", gone, err)
	}
}
