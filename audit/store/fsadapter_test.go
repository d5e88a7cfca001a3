package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"testing"
	"testing/fstest"
)

func TestFSOverS3(t *testing.T) {
	f := newFakeS3(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	f.put(t, "walarchive", "root/bk1/base.tar", big)
	f.put(t, "walarchive", "root/bk1/backup_manifest", []byte("{}"))
	f.put(t, "walarchive", "root/bk1/pg_wal/000000010000000000000001", []byte("wal"))
	f.put(t, "walarchive", "root/notes", []byte("x"))
	ctx := context.Background()
	st := f.open(t, "walarchive", "root", S3Options{})
	fsys := FS(ctx, st)
	if err := fstest.TestFS(fsys, "bk1/base.tar", "bk1/backup_manifest", "bk1/pg_wal/000000010000000000000001", "notes"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(fsys, "bk2"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
	if _, err := fs.ReadDir(fsys, "notes"); err == nil {
		t.Error("ReadDir of a file succeeded")
	}

	// Seeks far ahead are range requests, not downloads.
	fl, err := fsys.Open("bk1/base.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	sk, ok := fl.(io.Seeker)
	if !ok {
		t.Fatal("S3 file is not an io.Seeker")
	}
	var p [16]byte
	f.resetCounts()
	for _, off := range []int64{3 << 20, 16, 0, 3<<20 + 16} {
		if _, err := sk.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(fl, p[:]); err != nil || !bytes.Equal(p[:], big[off:off+16]) {
			t.Fatalf("at %d: %q %v", off, p, err)
		}
	}
	if n := f.requests.Load(); n > 4 {
		t.Errorf("%d requests for 4 reads", n)
	}
	if pos, err := sk.Seek(0, io.SeekEnd); err != nil || pos != int64(len(big)) {
		t.Errorf("seek end: %d %v", pos, err)
	}
	if n, err := fl.Read(p[:]); n != 0 || err != io.EOF {
		t.Errorf("read at end: %d %v", n, err)
	}
}
