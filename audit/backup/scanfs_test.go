package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/audit/store/s3test"
	"github.com/walaudit/walaudit/plan/pgserver/pgtest"
)

// fakeS3 starts gofakes3 on loopback with the bucket "bk", the AWS SDK
// isolated from the machine's configuration, and returns its backend and
// endpoint.
func fakeS3(t *testing.T) (*s3mem.Backend, string) {
	t.Helper()
	return s3test.Serve(t, "bk")
}

// uploadTree puts every regular file of dir under prefix.
func uploadTree(t *testing.T, be *s3mem.Backend, dir, prefix string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = be.PutObject("bk", prefix+filepath.ToSlash(rel), map[string]string{}, bytes.NewReader(b), int64(len(b)), nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// compareS3 uploads the backups directory dir to a fake S3 server, scans
// it there with ScanFS and checks that it finds what ScanDir finds in dir
// (Path and findings named by URL instead of directory) and that OpenWAL
// gives the same bytes. It returns the backups found on S3.
func compareS3(t *testing.T, dir string) []*Backup {
	t.Helper()
	ctx := context.Background()
	local, localFs, err := ScanDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	be, endpoint := fakeS3(t)
	uploadTree(t, be, dir, "site/backups/")
	st, err := store.Open(ctx, fmt.Sprintf("s3://bk/site/backups?endpoint=%s&path-style=true&region=us-east-1", endpoint))
	if err != nil {
		t.Fatal(err)
	}
	const where = "s3://bk/site/backups"
	remote, remoteFs, err := ScanFS(ctx, store.FS(ctx, st), ".", where)
	if err != nil {
		t.Fatal(err)
	}
	if len(remote) != len(local) || len(local) == 0 {
		t.Fatalf("S3: %d backups, local: %d", len(remote), len(local))
	}
	asS3 := func(v any) string {
		j, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		return strings.ReplaceAll(string(j), dir, where)
	}
	for i, lb := range local {
		rb := remote[i]
		if !strings.HasPrefix(rb.Path, where+"/") || rb.Path != where+"/"+rb.ID {
			t.Errorf("S3 backup path %q", rb.Path)
		}
		if lj, rj := asS3(lb), asS3(rb); lj != rj {
			t.Errorf("backup %s differs:\nlocal %s\nS3    %s", lb.ID, lj, rj)
		}
		for _, name := range append(append([]string(nil), lb.WALSegments...), lb.WALHistoryFiles...) {
			want, err := readWAL(t, lb, name)
			if err != nil {
				t.Fatalf("local %s %s: %v", lb.ID, name, err)
			}
			got, err := readWAL(t, rb, name)
			if err != nil {
				t.Errorf("S3 %s %s: %v", rb.ID, name, err)
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("S3 %s %s: %d bytes differ from the local %d", rb.ID, name, len(got), len(want))
			}
		}
		if _, err := OpenWAL(ctx, rb, "0000000100000000000000FF"); err == nil || !strings.Contains(err.Error(), ErrWALNotInBackup.Error()) {
			t.Errorf("S3 %s: absent segment: %v", rb.ID, err)
		}
	}
	if lj, rj := asS3(localFs), asS3(remoteFs); lj != rj {
		t.Errorf("findings differ:\nlocal %s\nS3    %s", lj, rj)
	}

	// One backup given as the location itself.
	one := remote[0]
	sub, err := store.Open(ctx, fmt.Sprintf("s3://bk/site/backups/%s?endpoint=%s&path-style=true&region=us-east-1", one.ID, endpoint))
	if err != nil {
		t.Fatal(err)
	}
	bs, _, err := ScanFS(ctx, store.FS(ctx, sub), ".", where+"/"+one.ID)
	if err != nil || len(bs) != 1 || bs[0].ID != one.ID || bs[0].Path != one.Path || bs[0].StartLSN != one.StartLSN {
		t.Errorf("single backup location: %v %v", bs, err)
	}
	if _, _, err := ScanFS(ctx, store.FS(ctx, st), "nope", where+"/nope"); err == nil || !strings.Contains(err.Error(), where+"/nope") {
		t.Errorf("missing root: %v", err)
	}
	return remote
}

// TestScanFSS3Lab takes real pg_basebackup backups (tar with streamed WAL,
// gzip tar with fetched WAL, plain with streamed WAL) and compares ScanFS
// over a fake S3 server with ScanDir.
func TestScanFSS3Lab(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	lab := pgtest.NewLab(ctx, t, nil)
	p, err := lab.InitPrimary(ctx, "p1", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, `CREATE TABLE t AS SELECT g FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		name string
		args []string
	}{
		{"tar_stream", []string{"-Ft", "-X", "stream"}},
		{"tar_gzip_fetch", []string{"-Ft", "-X", "fetch", "-z"}},
		{"plain_stream", []string{"-X", "stream"}},
	} {
		if _, err := lab.BaseBackup(ctx, p, b.name, b.args...); err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
	}
	bs := compareS3(t, lab.Backups)
	for _, b := range bs {
		if !b.ManifestVerified || !b.Usable() || len(b.WALSegments) == 0 {
			t.Errorf("%s: verified %v usable %v WAL %v findings %v", b.ID, b.ManifestVerified, b.Usable(), b.WALSegments, b.Findings)
		}
	}
}

// TestScanFSS3Real compares ScanFS over S3 with ScanDir on the outputs
// gen.sh leaves in /tmp/bkfix/bk; it runs only when WALAUDIT_PG15_BACKUPS
// points there.
func TestScanFSS3Real(t *testing.T) {
	dir := os.Getenv("WALAUDIT_PG15_BACKUPS")
	if dir == "" {
		t.Skip("set WALAUDIT_PG15_BACKUPS to the bk directory gen.sh created")
	}
	// Tar backups only: a plain backup's tablespace is a symlink out of the
	// backup, which an upload to object storage leaves behind.
	root := t.TempDir()
	for _, id := range []string{"tar_stream", "tar_gzip_fetch", "tar_lz4", "tar_zstd", "standby_tar"} {
		if err := os.CopyFS(filepath.Join(root, id), os.DirFS(filepath.Join(dir, id))); err != nil {
			t.Fatal(err)
		}
	}
	if bs := compareS3(t, root); len(bs) != 5 {
		t.Errorf("%d backups", len(bs))
	}
}

// TestScanFSTarFixtures compares ScanFS over S3 with ScanDir on tar
// backups built from the pg15 fixtures, in every compression.
func TestScanFSTarFixtures(t *testing.T) {
	label, tsmap, version, control, manifest := realTarFiles(t, "tar_stream")
	root := t.TempDir()
	for _, comp := range []string{"", ".gz", ".lz4", ".zst"} {
		c := tarCompressionSuffixes[comp]
		dir := filepath.Join(root, "b"+strings.TrimPrefix(comp, "."))
		writeFiles(t, dir, map[string][]byte{
			"base.tar" + comp:   buildTar(t, c, baseEntries(label, tsmap, version, control)),
			"pg_wal.tar" + comp: buildTar(t, c, []tarEntry{{name: "000000010000000000000009", data: realWAL(t, "000000010000000000000009")}}),
			"backup_manifest":   manifest,
		})
	}
	writeFiles(t, root, map[string][]byte{"notes.txt": []byte("x")})
	bs := compareS3(t, root)
	if len(bs) != 4 {
		t.Fatalf("%d backups", len(bs))
	}
}
