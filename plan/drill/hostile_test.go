package drill

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/walaudit/walaudit/audit/backup"
)

// tarEntry describes one entry of a test archive.
type tarEntry struct {
	name, link, body string
	typ              byte
}

func reg(name, body string) tarEntry { return tarEntry{name: name, body: body, typ: tar.TypeReg} }

func buildTar(t *testing.T, path string, gz bool, ents ...tarEntry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o600, Size: int64(len(e.body)), Format: tar.FormatPAX}
		switch e.typ {
		case tar.TypeDir:
			h.Mode = 0o700
		case tar.TypeReg:
		default:
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if gz {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		data = z.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// snapshot records every path below root with its type, mode, size,
// modification time, link target and (for files) content hash, skipping
// the paths for which skip returns true.
func snapshot(t *testing.T, root string, skip func(string) bool) map[string]string {
	t.Helper()
	out, err := snapshotDir(root, skip)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func snapshotDir(root string, skip func(string) bool) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if skip != nil && skip(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(s[:8])
		}
		out[p] = desc
		return nil
	})
	return out, err
}

func diffSnapshots(before, after map[string]string) []string {
	var d []string
	for p, v := range before {
		if w, ok := after[p]; !ok {
			d = append(d, "removed "+p)
		} else if w != v {
			d = append(d, fmt.Sprintf("changed %s: %s -> %s", p, v, w))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			d = append(d, "created "+p)
		}
	}
	sort.Strings(d)
	return d
}

// TestHostileTars feeds archives that try to write outside the scratch
// directory: each is refused naming the entry, and nothing outside the
// scratch directory changes.
func TestHostileTars(t *testing.T) {
	outer, err := os.MkdirTemp("/tmp", "wdh")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(outer)
	if err := os.WriteFile(filepath.Join(outer, "secret"), []byte("production secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(outer, "prod_ts"), 0o700); err != nil {
		t.Fatal(err)
	}
	etcX := "/etc/walaudit-drill-hostile-test"
	if _, err := os.Lstat(etcX); err == nil {
		t.Fatalf("%s exists before the test", etcX)
	}
	ok := reg("PG_VERSION", "15\n")
	cases := []struct {
		name    string
		files   map[string][]tarEntry // archive file name -> entries
		gz      bool
		entry   string // the entry the error must name
		because string
	}{
		{"dotdot", map[string][]tarEntry{"base.tar": {ok, reg("../x", "pwned")}}, false, "../x", "climbs out"},
		{"dotdot2", map[string][]tarEntry{"base.tar": {ok, reg("../../x", "pwned")}}, false, "../../x", "climbs out"},
		{"dotdot-inner", map[string][]tarEntry{"base.tar": {ok, reg("a/../../../x", "pwned")}}, false, "a/../../../x", "climbs out"},
		{"dotdot-gzip", map[string][]tarEntry{"base.tar.gz": {ok, reg("global/../../../x", "pwned")}}, true, "global/../../../x", "climbs out"},
		{"absolute-outer", map[string][]tarEntry{"base.tar": {ok, reg(filepath.Join(outer, "abs"), "pwned")}}, false, filepath.Join(outer, "abs"), "absolute"},
		{"absolute-etc", map[string][]tarEntry{"base.tar": {ok, reg(etcX, "pwned")}}, false, etcX, "absolute"},
		{"symlink-root", map[string][]tarEntry{"base.tar": {ok, {name: "evil", link: "/", typ: tar.TypeSymlink}, reg("evil"+outer+"/pwned", "x")}}, false, "evil", `symbolic link to "/"`},
		{"symlink-up", map[string][]tarEntry{"base.tar": {ok, {name: "up", link: "../..", typ: tar.TypeSymlink}, reg("up/pwned", "x")}}, false, "up", "climbs out"},
		{"symlink-sneaky", map[string][]tarEntry{"base.tar": {ok, {name: "d/s", link: "x/../../..", typ: tar.TypeSymlink}}}, false, "d/s", "climbs out"},
		{"through-symlink", map[string][]tarEntry{"base.tar": {ok, {name: "sub", typ: tar.TypeDir}, {name: "l", link: "sub", typ: tar.TypeSymlink}, reg("l/x", "x")}}, false, "l/x", "through the symbolic link"},
		{"hardlink-out", map[string][]tarEntry{"base.tar": {ok, {name: "h", link: "../../secret", typ: tar.TypeLink}}}, false, "h", "hard link"},
		{"hardlink-abs", map[string][]tarEntry{"base.tar": {ok, {name: "h", link: filepath.Join(outer, "secret"), typ: tar.TypeLink}}}, false, "h", "hard link"},
		{"hardlink-unseen", map[string][]tarEntry{"base.tar": {ok, {name: "h", link: "global/pg_control", typ: tar.TypeLink}}}, false, "h", "not a file extracted earlier"},
		{"chardev", map[string][]tarEntry{"base.tar": {ok, {name: "dev/null", typ: tar.TypeChar}}}, false, "dev/null", "character device"},
		{"blockdev", map[string][]tarEntry{"base.tar": {ok, {name: "sda", typ: tar.TypeBlock}}}, false, "sda", "block device"},
		{"fifo", map[string][]tarEntry{"base.tar": {ok, {name: "pipe", typ: tar.TypeFifo}}}, false, "pipe", "FIFO"},
		{"tablespace-tar-out", map[string][]tarEntry{"base.tar": {ok}, "16385.tar": {reg("../../x", "pwned")}}, false, "../../x", "climbs out"},
		{"wal-tar-out", map[string][]tarEntry{"base.tar": {ok}, "pg_wal.tar": {reg("../postgresql.conf", "archive_command='x'")}}, false, "../postgresql.conf", "climbs out"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bdir := filepath.Join(outer, "backup-"+c.name)
			if err := os.Mkdir(bdir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, ents := range c.files {
				buildTar(t, filepath.Join(bdir, name), c.gz, ents...)
			}
			scratch := filepath.Join(outer, "scratch-"+c.name)
			if err := os.Mkdir(scratch, 0o755); err != nil { // created beforehand, as the drill does
				t.Fatal(err)
			}
			before := snapshot(t, outer, func(p string) bool { return p == scratch })
			r, err := Restore(context.Background(), &backup.Backup{ID: c.name, Path: bdir, Format: backup.FormatTar}, scratch, nil)
			if err == nil || !errors.Is(err, ErrUnsafeEntry) {
				t.Fatalf("not refused: %v (%+v)", err, r)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", c.entry)) || !strings.Contains(err.Error(), c.because) {
				t.Fatalf("error %q does not name entry %q and say %q", err, c.entry, c.because)
			}
			after := snapshot(t, outer, func(p string) bool { return p == scratch })
			if d := diffSnapshots(before, after); len(d) > 0 {
				t.Fatalf("written outside the scratch directory: %v", d)
			}
			if _, err := os.Lstat(etcX); err == nil {
				os.Remove(etcX)
				t.Fatalf("%s was created", etcX)
			}
			// Only the data directory may hold what was extracted.
			for _, p := range []string{filepath.Join(scratch, "x"), filepath.Join(scratch, "pwned")} {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("%s was created", p)
				}
			}
		})
	}
}

// TestTarExtraction restores a well-formed synthetic tar backup: files,
// directories, an in-tree link, a hard link, a pg_tblspc link to a
// production path and its tablespace tar, pg_wal.tar.
func TestTarExtraction(t *testing.T) {
	outer, err := os.MkdirTemp("/tmp", "wdt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(outer)
	prod := filepath.Join(outer, "prod_ts")
	if err := os.Mkdir(prod, 0o700); err != nil {
		t.Fatal(err)
	}
	bdir := filepath.Join(outer, "b")
	os.Mkdir(bdir, 0o755)
	seg := "000000010000000000000003"
	buildTar(t, filepath.Join(bdir, "base.tar.gz"), true,
		reg("PG_VERSION", "15\n"),
		tarEntry{name: "./global/", typ: tar.TypeDir},
		reg("global/pg_control", "control"),
		tarEntry{name: "pg_tblspc/", typ: tar.TypeDir},
		tarEntry{name: "pg_tblspc/16385", link: prod, typ: tar.TypeSymlink},
		tarEntry{name: "pg_wal", typ: tar.TypeDir},
		reg("base/1/1259", "rel"),
		tarEntry{name: "base/1/link", link: "1259", typ: tar.TypeSymlink},
		tarEntry{name: "base/1/hard", link: "base/1/1259", typ: tar.TypeLink},
		reg("base/1/1259", "rewritten"), // a later entry replaces an earlier one
		reg("tablespace_map", "16385 "+prod+"\n"),
	)
	buildTar(t, filepath.Join(bdir, "pg_wal.tar"), false, reg(seg, "wal"), tarEntry{name: "archive_status", typ: tar.TypeDir})
	buildTar(t, filepath.Join(bdir, "16385.tar"), false, tarEntry{name: "PG_15_202209061", typ: tar.TypeDir}, reg("PG_15_202209061/5/16386", "ts data"))
	before := snapshot(t, prod, nil)
	scratch := filepath.Join(outer, "s")
	r, err := Restore(context.Background(), &backup.Backup{ID: "b", Path: bdir, Format: backup.FormatTar}, scratch, nil)
	if err != nil {
		t.Fatal(err)
	}
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(r.DataDir, rel))
		if err != nil {
			t.Fatalf("read %s: %v", rel, err)
		}
		return string(b)
	}
	if got := read("base/1/1259"); got != "rewritten" {
		t.Errorf("base/1/1259 = %q", got)
	}
	if got := read("base/1/hard"); got != "rel" {
		t.Errorf("hard link copy = %q, want the content at the time of the link", got)
	}
	if l, _ := os.Readlink(filepath.Join(r.DataDir, "base/1/link")); l != "1259" {
		t.Errorf("in-tree link = %q", l)
	}
	if got := read("pg_wal/" + seg); got != "wal" || len(r.WALFiles) != 1 || r.WALFiles[0] != seg {
		t.Errorf("WAL: %q %v", got, r.WALFiles)
	}
	tsDir := filepath.Join(scratch, "tblspc", "16385")
	if l, _ := os.Readlink(filepath.Join(r.DataDir, "pg_tblspc/16385")); l != tsDir {
		t.Errorf("pg_tblspc/16385 -> %q, want %q", l, tsDir)
	}
	if got := read("pg_tblspc/16385/PG_15_202209061/5/16386"); got != "ts data" {
		t.Errorf("tablespace file = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(r.DataDir, "tablespace_map")); err == nil || !r.TablespaceMapRemoved {
		t.Error("tablespace_map not removed")
	}
	if r.OriginalTablespaces[16385] != prod || r.Tablespaces[16385] != tsDir {
		t.Errorf("tablespaces %v / %v", r.OriginalTablespaces, r.Tablespaces)
	}
	if fi, _ := os.Stat(r.DataDir); fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %v", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(r.DataDir, "pg_wal/archive_status")); err != nil {
		t.Error(err)
	}
	if d := diffSnapshots(before, snapshot(t, prod, nil)); len(d) > 0 {
		t.Errorf("production tablespace touched: %v", d)
	}
	if r.Files != 8 || r.Manifest { // 1259 counts twice: written, then replaced
		t.Errorf("files %d manifest %v", r.Files, r.Manifest)
	}
	// A second restore into the same scratch directory is refused, and so
	// is any existing directory with something in it (it would be chowned).
	if _, err := Restore(context.Background(), &backup.Backup{ID: "b", Path: bdir, Format: backup.FormatTar}, scratch, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore over an existing data directory: %v", err)
	}
	fi, _ := os.Stat(outer)
	if _, err := Restore(context.Background(), &backup.Backup{ID: "b", Path: bdir, Format: backup.FormatTar}, outer, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore into a non-empty directory: %v", err)
	}
	if fi2, _ := os.Stat(outer); fi2.Mode() != fi.Mode() {
		t.Errorf("a refused scratch directory was changed: %v -> %v", fi.Mode(), fi2.Mode())
	}
	// A tablespace listed in tablespace_map without its tar is incomplete.
	os.Remove(filepath.Join(bdir, "16385.tar"))
	if _, err := Restore(context.Background(), &backup.Backup{ID: "b", Path: bdir, Format: backup.FormatTar}, filepath.Join(outer, "s2"), nil); err == nil || !strings.Contains(err.Error(), "has no 16385.tar") {
		t.Errorf("missing tablespace tar: %v", err)
	}
}

// TestHostilePlain applies the same rules to a plain-format backup
// directory: links out, special files and an unparsable manifest are
// refused.
func TestHostilePlain(t *testing.T) {
	outer, err := os.MkdirTemp("/tmp", "wdp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(outer)
	for _, c := range []struct {
		name, want string
		make       func(dir string) error
	}{
		{"symlink-root", `entry "etc" of`, func(d string) error { return os.Symlink("/", filepath.Join(d, "etc")) }},
		{"symlink-up", `entry "global/up" of`, func(d string) error {
			os.Mkdir(filepath.Join(d, "global"), 0o700)
			return os.Symlink("../..", filepath.Join(d, "global/up"))
		}},
		{"fifo", "FIFO", func(d string) error { return syscallMkfifo(filepath.Join(d, "pipe")) }},
		{"bad-manifest", "could not be parsed", func(d string) error {
			return os.WriteFile(filepath.Join(d, "backup_manifest"), []byte("{not json"), 0o600)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(outer, c.name)
			os.Mkdir(dir, 0o700)
			os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600)
			if err := c.make(dir); err != nil {
				t.Fatal(err)
			}
			os.Mkdir(filepath.Join(outer, "s-"+c.name), 0o700)
			before := snapshot(t, outer, func(p string) bool { return strings.HasPrefix(p, filepath.Join(outer, "s-")) })
			_, err := Restore(context.Background(), &backup.Backup{ID: c.name, Path: dir, Format: backup.FormatPlain}, filepath.Join(outer, "s-"+c.name), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if c.name != "bad-manifest" && !errors.Is(err, ErrUnsafeEntry) || c.name == "bad-manifest" && !errors.Is(err, ErrVerification) {
				t.Fatalf("wrong error kind: %v", err)
			}
			if d := diffSnapshots(before, snapshot(t, outer, func(p string) bool { return strings.HasPrefix(p, filepath.Join(outer, "s-")) })); len(d) > 0 {
				t.Fatalf("written outside the scratch directory: %v", d)
			}
		})
	}
}
