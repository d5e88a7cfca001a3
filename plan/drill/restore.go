package drill

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/plan/pgserver"
	"github.com/walaudit/walaudit/walname"
)

// ErrUnsafeEntry is wrapped by every refusal of a backup entry that would
// place something outside the scratch directory or that a backup never
// legitimately holds (a device file, a FIFO). The restore stops at the
// first one.
var ErrUnsafeEntry = errors.New("unsafe backup entry")

// ErrVerification is wrapped when the restored files do not match the
// backup's backup_manifest, or the manifest itself cannot be trusted.
var ErrVerification = errors.New("backup does not match its backup_manifest")

// Restored describes a base backup restored into a scratch directory.
type Restored struct {
	// Scratch is the absolute scratch directory; DataDir is Scratch/data.
	Scratch string `json:"scratch"`
	DataDir string `json:"data_dir"` // Scratch/data
	// Tablespaces maps each tablespace OID to its directory in the scratch
	// directory (Scratch/tblspc/<oid>); DataDir/pg_tblspc/<oid> links there.
	Tablespaces map[uint32]string `json:"tablespaces,omitempty"`
	// OriginalTablespaces maps each tablespace OID to the location the
	// backup named (tablespace_map, or the link of a plain backup): a
	// production path, never written.
	OriginalTablespaces map[uint32]string `json:"original_tablespaces,omitempty"`
	// TablespaceMapRemoved reports that the restored tablespace_map was
	// removed after the links were made.
	TablespaceMapRemoved bool `json:"tablespace_map_removed"`
	// Files and Bytes count the regular files written and their bytes.
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"` // bytes written
	// WALFiles are the WAL segments and timeline history files the backup
	// carried, now in DataDir/pg_wal, sorted.
	WALFiles []string `json:"wal_files,omitempty"`
	// Manifest reports that a backup_manifest was checked; Verified counts
	// the files whose size and checksum (size only for algorithm NONE)
	// matched it, and Problems lists every mismatch, naming the file.
	Manifest bool     `json:"manifest"`
	Verified int      `json:"verified"`           // files that matched the manifest
	Problems []string `json:"problems,omitempty"` // mismatches, each naming its file
	// Notes say what the restore changed on purpose.
	Notes []string `json:"notes,omitempty"`
}

// Restore restores base backup b (plain or tar format, as [backup.ScanDir]
// describes it) into scratch: the data directory becomes scratch/data
// (mode 0700) and each tablespace scratch/tblspc/<oid>, everything owned by
// user (nil: the current user). scratch must be missing (it is created) or
// an empty directory; it is made mode 0700 and owned by user, since the
// server's socket and log live there.
//
// Entries are streamed, never held in memory, and refused (an error
// wrapping [ErrUnsafeEntry] that names the entry) when they would land
// outside scratch; see the package documentation. pg_tblspc/<oid> links
// are made to point into scratch and tablespace_map is removed, so
// PostgreSQL never touches a production path.
//
// With a backup_manifest every file is verified while it streams. On a
// mismatch the Restored value is returned with Problems set, together
// with an error wrapping [ErrVerification]: do not start PostgreSQL on it.
// A manifest whose own checksum fails, or a backup_manifest file that
// [backup.ScanDir] could not parse, is a verification failure too. Any
// other error returns a nil Restored; the caller removes scratch.
func Restore(ctx context.Context, b *backup.Backup, scratch string, user *pgserver.OSUser) (*Restored, error) {
	if b == nil {
		return nil, errors.New("restore: no backup")
	}
	if b.Incremental {
		return nil, fmt.Errorf("restore %s: an incremental backup cannot be restored alone; combine it with pg_combinebackup first", b.ID)
	}
	if b.Format != backup.FormatPlain && b.Format != backup.FormatTar {
		return nil, fmt.Errorf("restore %s: no backup files to restore (known only from %s)", b.ID, b.Source)
	}
	if user == nil {
		user = &pgserver.OSUser{}
	}
	abs, err := filepath.Abs(scratch)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", b.ID, err)
	}
	r := &Restored{Scratch: abs, DataDir: filepath.Join(abs, "data"),
		Tablespaces: map[uint32]string{}, OriginalTablespaces: map[uint32]string{}}
	if err := prepareScratch(r, user); err != nil {
		return nil, fmt.Errorf("restore %s: %w", b.ID, err)
	}

	x := &extractor{ctx: ctx, user: user, r: r, dirs: map[string]bool{r.DataDir: true},
		files: map[string]bool{}, tsLinks: map[uint32]string{}, tarOIDs: map[uint32]bool{},
		buf: make([]byte, 256<<10)}
	if b.Manifest != nil {
		x.chk = newChecker(b.Manifest)
		r.Manifest = true
		if !b.ManifestVerified {
			x.chk.add("backup_manifest: its Manifest-Checksum does not match its content; the manifest cannot be trusted")
		}
		if m := b.Manifest; m.HasSystemIdentifier && b.Control != nil && b.Control.SystemIdentifier != m.SystemIdentifier {
			x.chk.add(fmt.Sprintf("global/pg_control: system identifier %d, but the manifest says %d", b.Control.SystemIdentifier, m.SystemIdentifier))
		}
	} else if _, err := os.Stat(filepath.Join(b.Path, "backup_manifest")); err == nil {
		return nil, fmt.Errorf("%w: backup %s has a backup_manifest that could not be parsed (run walaudit inspect); refusing to restore it unverified", ErrVerification, b.ID)
	}

	base := &area{kind: areaBase, root: r.DataDir, source: b.Path}
	switch b.Format {
	case backup.FormatPlain:
		err = x.walkDir(b.Path, base, true)
	default:
		err = x.restoreTar(b.Path, base)
	}
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", b.ID, err)
	}
	if err := x.finishTablespaces(base, b.Format); err != nil {
		return nil, fmt.Errorf("restore %s: %w", b.ID, err)
	}
	if _, err := x.mkdirs(base, "pg_wal/archive_status", "pg_wal/archive_status"); err != nil {
		return nil, fmt.Errorf("restore %s: %w", b.ID, err)
	}
	sort.Strings(r.WALFiles)
	if x.chk != nil {
		r.Problems = x.chk.finish()
		r.Verified = x.chk.verified
		if len(r.Problems) > 0 {
			return r, fmt.Errorf("%w: backup %s: %d problem(s): %s", ErrVerification, b.ID, len(r.Problems), summarize(r.Problems, 5))
		}
	}
	return r, nil
}

// prepareScratch creates or adopts the scratch directory and the data
// directory inside it.
func prepareScratch(r *Restored, user *pgserver.OSUser) error {
	fi, err := os.Lstat(r.Scratch)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(r.Scratch, 0o700); err != nil {
			return fmt.Errorf("create scratch directory: %w", err)
		}
	case err != nil:
		return fmt.Errorf("scratch directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("scratch directory %s is not a directory", r.Scratch)
	default:
		// It is about to be handed to the server's user with mode 0700:
		// only a new, empty directory may be.
		ents, err := os.ReadDir(r.Scratch)
		if err != nil {
			return fmt.Errorf("scratch directory: %w", err)
		}
		if len(ents) > 0 {
			return fmt.Errorf("scratch directory %s exists and is not empty: restore into a new directory", r.Scratch)
		}
	}
	if err := os.Chmod(r.Scratch, 0o700); err != nil {
		return err
	}
	if err := user.Chown(r.Scratch); err != nil {
		return err
	}
	if err := os.Mkdir(r.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if err := os.Chmod(r.DataDir, 0o700); err != nil { // whatever the umask
		return err
	}
	return user.Chown(r.DataDir)
}

// summarize lists up to n items and says how many more there are.
func summarize(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:n], "; "), len(items)-n)
}

// areaKind says which part of the restore an entry belongs to.
type areaKind int

const (
	areaBase       areaKind = iota // the data directory
	areaWAL                        // pg_wal (pg_wal.tar, or a plain backup's linked pg_wal)
	areaTablespace                 // one tablespace
)

// area is one extraction destination.
type area struct {
	kind   areaKind
	root   string // absolute destination directory, created by the extractor
	source string // for messages: a tar file or directory
	prefix string // manifest path prefix: "", "pg_wal/", "pg_tblspc/<oid>/"
}

type entryKind int

const (
	kindReg entryKind = iota
	kindDir
	kindSymlink
	kindHardlink
	kindOther
)

// entry is one file, directory or link of a tar archive or a plain
// backup directory.
type entry struct {
	name string // as the source spells it (untrusted)
	kind entryKind
	what string // kindOther: what it is, for the refusal
	size int64  // kindReg: the size the source declares (-1 unknown)
	link string // kindSymlink, kindHardlink: the target (untrusted)
	body io.Reader
}

// extractor writes entries below area roots and nowhere else.
type extractor struct {
	ctx  context.Context
	user *pgserver.OSUser
	r    *Restored
	chk  *checker
	// dirs are real directories (never links) created or checked by this
	// extractor; nothing but the extractor writes below the scratch
	// directory while it runs, so they stay real directories.
	dirs map[string]bool
	// files are the regular files written, for hard links.
	files map[string]bool
	// tsLinks are pg_tblspc/<oid> links of the base: OID -> original target.
	tsLinks map[uint32]string
	// tarOIDs are the tablespaces restored from <oid>.tar files.
	tarOIDs map[uint32]bool
	buf     []byte
}

func (x *extractor) refuse(a *area, name, why string) error {
	return fmt.Errorf("%w: entry %q of %s %s; restore stopped", ErrUnsafeEntry, name, a.source, why)
}

// cleanName turns an untrusted entry name into a clean relative slash
// path, or says why it is unsafe.
func cleanName(name string) (string, string) {
	switch {
	case name == "":
		return "", "has an empty name"
	case strings.ContainsRune(name, 0):
		return "", "has a NUL byte in its name"
	case strings.HasPrefix(name, "/"):
		return "", "is an absolute path"
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", "climbs out of the directory it is extracted into (\"..\")"
	}
	return c, ""
}

// unsafeLinkTarget says why a symbolic link target may resolve outside the
// link's own directory tree, or returns "". A relative target without any
// ".." component resolves below the link's directory whatever links it
// passes through, as long as those links obey the same rule.
func unsafeLinkTarget(t string) string {
	switch {
	case t == "":
		return "is empty"
	case strings.ContainsRune(t, 0):
		return "contains a NUL byte"
	case strings.HasPrefix(t, "/"):
		return "is an absolute path outside the scratch directory"
	}
	for _, c := range strings.Split(t, "/") {
		if c == ".." {
			return "climbs out with \"..\""
		}
	}
	return ""
}

// tablespaceLinkName recognises pg_tblspc/<oid>.
func tablespaceLinkName(rel string) (uint32, bool) {
	s, ok := strings.CutPrefix(rel, "pg_tblspc/")
	if !ok || s == "" || strings.Contains(s, "/") {
		return 0, false
	}
	return parseOID(s)
}

func parseOID(s string) (uint32, bool) {
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 {
		return 0, false
	}
	return uint32(v), true
}

// put writes one entry below a.root, or refuses it.
func (x *extractor) put(a *area, e entry) error {
	if err := x.ctx.Err(); err != nil {
		return err
	}
	rel, why := cleanName(e.name)
	if why != "" {
		return x.refuse(a, e.name, why)
	}
	if e.kind == kindOther {
		return x.refuse(a, e.name, "is a "+e.what+"; a backup holds only files, directories and links")
	}
	if rel == "." {
		if e.kind == kindDir {
			return nil
		}
		return x.refuse(a, e.name, "names the directory it is extracted into")
	}
	if a.kind == areaBase {
		if rel == "backup_manifest" && e.kind == kindReg {
			return nil // verified from the backup directory, not restored
		}
		if oid, ok := tablespaceLinkName(rel); ok && e.kind == kindSymlink {
			// The one legitimate link out: remembered, and replaced by a
			// link into the scratch directory (finishTablespaces).
			x.tsLinks[oid] = e.link
			return nil
		}
	}
	dst := filepath.Join(a.root, filepath.FromSlash(rel))
	switch e.kind {
	case kindDir:
		_, err := x.mkdirs(a, e.name, rel)
		return err
	case kindReg:
		return x.writeFile(a, e, rel, dst)
	case kindSymlink:
		if why := unsafeLinkTarget(e.link); why != "" {
			return x.refuse(a, e.name, fmt.Sprintf("is a symbolic link to %q, which %s", e.link, why))
		}
		if err := x.clearLeaf(a, e.name, rel, dst); err != nil {
			return err
		}
		if err := os.Symlink(e.link, dst); err != nil {
			return err
		}
		return x.user.Chown(dst)
	case kindHardlink:
		lrel, why := cleanName(e.link)
		if why != "" {
			return x.refuse(a, e.name, fmt.Sprintf("is a hard link to %q, which %s", e.link, why))
		}
		src := filepath.Join(a.root, filepath.FromSlash(lrel))
		if !x.files[src] {
			return x.refuse(a, e.name, fmt.Sprintf("is a hard link to %q, which is not a file extracted earlier from the same archive", e.link))
		}
		// Copied, not linked: a later entry rewriting one name must not
		// change the other.
		f, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		e.size, e.body = fi.Size(), f
		return x.writeFile(a, e, rel, dst)
	}
	return fmt.Errorf("entry %q: unknown kind", e.name)
}

// mkdirs makes sure every component of rel below a.root is a real
// directory, creating missing ones; a symbolic link on the way is refused.
func (x *extractor) mkdirs(a *area, name, rel string) (string, error) {
	cur := a.root
	if rel == "." || rel == "" {
		return cur, nil
	}
	for _, c := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, c)
		if x.dirs[cur] {
			continue
		}
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(cur, 0o700); err != nil {
				return "", err
			}
			if err := x.user.Chown(cur); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink != 0:
			return "", x.refuse(a, name, fmt.Sprintf("would be written through the symbolic link %s", x.display(a, cur)))
		case !fi.IsDir():
			return "", fmt.Errorf("entry %q of %s: %s exists and is not a directory", name, a.source, x.display(a, cur))
		}
		x.dirs[cur] = true
	}
	return cur, nil
}

// display names an absolute path inside the scratch directory for messages.
func (x *extractor) display(a *area, p string) string {
	if rel, err := filepath.Rel(x.r.Scratch, p); err == nil {
		return rel
	}
	return p
}

// clearLeaf prepares dst for a new file or link: its parents must be real
// directories, and an existing non-directory is removed (a later tar entry
// replaces an earlier one).
func (x *extractor) clearLeaf(a *area, name, rel, dst string) error {
	if _, err := x.mkdirs(a, name, path.Dir(rel)); err != nil {
		return err
	}
	fi, err := os.Lstat(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("entry %q of %s: a directory %s exists already", name, a.source, x.display(a, dst))
	}
	delete(x.files, dst)
	return os.Remove(dst)
}

// writeFile streams a regular file to dst, verifying it against the
// manifest on the way.
func (x *extractor) writeFile(a *area, e entry, rel, dst string) error {
	if err := x.clearLeaf(a, e.name, rel, dst); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	n, err := x.chk.copy(a.prefix+rel, e.size, ctxReader{x.ctx, e.body}, f, x.buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s from entry %q of %s: %w", x.display(a, dst), e.name, a.source, err)
	}
	if err := x.user.Chown(dst); err != nil {
		return err
	}
	x.files[dst] = true
	x.r.Files++
	x.r.Bytes += n
	wal := ""
	switch a.kind {
	case areaWAL:
		wal = rel
	case areaBase:
		wal, _ = strings.CutPrefix(rel, "pg_wal/")
	}
	if walname.IsSegmentName(wal) || walname.IsHistoryName(wal) {
		x.r.WALFiles = append(x.r.WALFiles, wal)
	}
	return nil
}

// tablespaceDir creates scratch/tblspc/<oid>.
func (x *extractor) tablespaceDir(oid uint32) (string, error) {
	top := &area{kind: areaTablespace, root: x.r.Scratch, source: "the scratch directory"}
	dir, err := x.mkdirs(top, "tblspc", "tblspc/"+strconv.FormatUint(uint64(oid), 10))
	if err != nil {
		return "", err
	}
	x.r.Tablespaces[oid] = dir
	return dir, nil
}

// walkDir restores a plain backup directory (or a tablespace or pg_wal
// directory it links to) into a.
func (x *extractor) walkDir(src string, a *area, top bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		t := d.Type()
		switch {
		case t.IsDir():
			return x.put(a, entry{name: rel, kind: kindDir})
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if top && a.kind == areaBase {
				if rel == "pg_wal" { // pg_basebackup --waldir
					return x.linkedDir(a, rel, p, target, areaWAL, "pg_wal/")
				}
				if oid, ok := tablespaceLinkName(rel); ok {
					x.tsLinks[oid] = target
					return x.linkedDir(a, rel, p, target, areaTablespace, rel+"/")
				}
			}
			return x.put(a, entry{name: rel, kind: kindSymlink, link: target})
		case t.IsRegular():
			f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				return x.put(a, entry{name: rel, kind: kindOther, what: describeMode(fi.Mode())})
			}
			return x.put(a, entry{name: rel, kind: kindReg, size: fi.Size(), body: f})
		default:
			return x.put(a, entry{name: rel, kind: kindOther, what: describeMode(t)})
		}
	})
}

// linkedDir restores the directory a plain backup's pg_wal or
// pg_tblspc/<oid> link points to. The target is only read.
func (x *extractor) linkedDir(base *area, rel, linkPath, target string, kind areaKind, prefix string) error {
	t := target
	if !filepath.IsAbs(t) {
		t = filepath.Join(filepath.Dir(linkPath), t)
	}
	fi, err := os.Stat(t)
	if err != nil {
		return fmt.Errorf("%s links to %s: %w", rel, target, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s links to %s, which is not a directory", rel, target)
	}
	var root string
	if kind == areaWAL {
		root, err = x.mkdirs(base, rel, rel)
	} else {
		oid, _ := tablespaceLinkName(rel)
		root, err = x.tablespaceDir(oid)
	}
	if err != nil {
		return err
	}
	return x.walkDir(t, &area{kind: kind, root: root, source: t, prefix: prefix}, false)
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return fmt.Sprintf("special file (%s)", m.Type())
}

// tarName recognises stem.tar with an optional compression suffix.
func tarName(n, stem string) bool {
	rest, ok := strings.CutPrefix(n, stem+".tar")
	return ok && (rest == "" || rest == ".gz" || rest == ".lz4" || rest == ".zst")
}

// tablespaceTarOID recognises <oid>.tar with an optional compression suffix.
func tablespaceTarOID(n string) (uint32, bool) {
	i := strings.Index(n, ".tar")
	if i <= 0 || !tarName(n, n[:i]) {
		return 0, false
	}
	return parseOID(n[:i])
}

// restoreTar restores base.tar, pg_wal.tar and the tablespace tars.
func (x *extractor) restoreTar(dir string, base *area) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var bases, wals []string
	tars := map[uint32]string{}
	for _, e := range ents {
		n := e.Name()
		switch {
		case tarName(n, "base"):
			bases = append(bases, n)
		case tarName(n, "pg_wal"):
			wals = append(wals, n)
		default:
			if oid, ok := tablespaceTarOID(n); ok {
				if prev, dup := tars[oid]; dup {
					return fmt.Errorf("both %s and %s hold tablespace %d", prev, n, oid)
				}
				tars[oid] = n
			}
		}
	}
	switch {
	case len(bases) == 0:
		return fmt.Errorf("tar-format backup %s has no base.tar", dir)
	case len(bases) > 1:
		return fmt.Errorf("tar-format backup %s has several base archives: %s", dir, strings.Join(bases, ", "))
	case len(wals) > 1:
		return fmt.Errorf("tar-format backup %s has several WAL archives: %s", dir, strings.Join(wals, ", "))
	}
	base.source = bases[0]
	if err := x.tarFile(filepath.Join(dir, bases[0]), base); err != nil {
		return err
	}
	if len(wals) == 1 {
		root, err := x.mkdirs(base, "pg_wal", "pg_wal")
		if err != nil {
			return err
		}
		if err := x.tarFile(filepath.Join(dir, wals[0]), &area{kind: areaWAL, root: root, source: wals[0], prefix: "pg_wal/"}); err != nil {
			return err
		}
	}
	oids := make([]uint32, 0, len(tars))
	for oid := range tars {
		oids = append(oids, oid)
	}
	sort.Slice(oids, func(i, j int) bool { return oids[i] < oids[j] })
	for _, oid := range oids {
		root, err := x.tablespaceDir(oid)
		if err != nil {
			return err
		}
		a := &area{kind: areaTablespace, root: root, source: tars[oid], prefix: fmt.Sprintf("pg_tblspc/%d/", oid)}
		if err := x.tarFile(filepath.Join(dir, tars[oid]), a); err != nil {
			return err
		}
		x.tarOIDs[oid] = true
	}
	return nil
}

// tarFile streams one (possibly compressed) tar archive into a.
func (x *extractor) tarFile(p string, a *area) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	r, closeFn, err := decompress(x.ctx, f)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	defer closeFn()
	tr := tar.NewReader(r)
	last := "(start of archive)"
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if hdr != nil && errors.Is(err, tar.ErrInsecurePath) {
				if _, why := cleanName(hdr.Name); why != "" {
					return x.refuse(a, hdr.Name, why)
				}
				// Otherwise insecure only by Go's stricter rules; the
				// extractor's own rules decide below.
			} else {
				return fmt.Errorf("read %s after entry %q: %w (the archive is damaged or truncated)", p, last, err)
			}
		}
		last = hdr.Name
		e := entry{name: hdr.Name, size: hdr.Size, body: tr, link: hdr.Linkname}
		switch hdr.Typeflag {
		case tar.TypeReg, '\x00', tar.TypeCont, tar.TypeGNUSparse: // '\x00' is the old TypeRegA
			e.kind = kindReg
		case tar.TypeDir:
			e.kind = kindDir
		case tar.TypeSymlink:
			e.kind = kindSymlink
		case tar.TypeLink:
			e.kind = kindHardlink
		case tar.TypeChar:
			e.kind, e.what = kindOther, "character device"
		case tar.TypeBlock:
			e.kind, e.what = kindOther, "block device"
		case tar.TypeFifo:
			e.kind, e.what = kindOther, "FIFO"
		case tar.TypeXGlobalHeader:
			continue
		default:
			e.kind, e.what = kindOther, fmt.Sprintf("tar entry of type %q", hdr.Typeflag)
		}
		if err := x.put(a, e); err != nil {
			return err
		}
	}
}

// Compression magic numbers (wire format).
var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicLZ4  = []byte{0x04, 0x22, 0x4d, 0x18}
)

// decompress recognises gzip, zstd and lz4 by content, whatever the name
// says, and returns a streaming reader.
func decompress(ctx context.Context, f *os.File) (io.Reader, func(), error) {
	nop := func() {}
	br := bufio.NewReaderSize(ctxReader{ctx, f}, 256<<10)
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nop, err
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nop, fmt.Errorf("gzip: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.Equal(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, nop, fmt.Errorf("zstd: %w", err)
		}
		return zr, zr.Close, nil
	case bytes.Equal(head, magicLZ4):
		return lz4.NewReader(br), nop, nil
	}
	return br, nop, nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

// Read reads unless the context is done.
func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// finishTablespaces points every pg_tblspc/<oid> into the scratch
// directory and removes tablespace_map.
func (x *extractor) finishTablespaces(base *area, format backup.Format) error {
	r := x.r
	mapPath := filepath.Join(r.DataDir, "tablespace_map")
	fi, err := os.Lstat(mapPath)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("restored tablespace_map is not a regular file")
	case err == nil:
		data, err := readSmall(mapPath, 1<<20)
		if err != nil {
			return err
		}
		ents, err := backup.ParseTablespaceMap(data)
		if err != nil {
			return fmt.Errorf("restored tablespace_map: %w", err)
		}
		for _, e := range ents {
			r.OriginalTablespaces[e.OID] = e.Path
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	for oid, t := range x.tsLinks {
		if _, ok := r.OriginalTablespaces[oid]; !ok {
			r.OriginalTablespaces[oid] = t
		}
	}
	all := map[uint32]bool{}
	for oid := range r.OriginalTablespaces {
		all[oid] = true
	}
	for oid := range r.Tablespaces {
		all[oid] = true
	}
	oids := make([]uint32, 0, len(all))
	for oid := range all {
		oids = append(oids, oid)
	}
	sort.Slice(oids, func(i, j int) bool { return oids[i] < oids[j] })
	for _, oid := range oids {
		if _, ok := r.Tablespaces[oid]; !ok {
			if format == backup.FormatTar {
				return fmt.Errorf("tablespace %d (%s) has no %d.tar in the backup: the restore would be incomplete", oid, r.OriginalTablespaces[oid], oid)
			}
			return fmt.Errorf("tablespace %d (%s) has no pg_tblspc/%d link to its files in the backup: the restore would be incomplete", oid, r.OriginalTablespaces[oid], oid)
		}
		if _, ok := r.OriginalTablespaces[oid]; !ok {
			r.Notes = append(r.Notes, fmt.Sprintf("tablespace %d has %d.tar but no tablespace_map entry; linked anyway", oid, oid))
		}
		dir := r.Tablespaces[oid]
		tsDir, err := x.mkdirs(base, "pg_tblspc", "pg_tblspc")
		if err != nil {
			return err
		}
		link := filepath.Join(tsDir, strconv.FormatUint(uint64(oid), 10))
		if fi, err := os.Lstat(link); err == nil {
			if fi.IsDir() {
				return fmt.Errorf("pg_tblspc/%d is a directory in the backup and a tablespace too", oid)
			}
			if err := os.Remove(link); err != nil {
				return err
			}
		}
		if err := os.Symlink(dir, link); err != nil {
			return err
		}
		if err := x.user.Chown(link); err != nil {
			return err
		}
		r.Notes = append(r.Notes, fmt.Sprintf("tablespace %d (originally %s) restored into %s", oid, r.OriginalTablespaces[oid], dir))
	}
	if fi != nil { // the backup had a tablespace_map
		if err := os.Remove(mapPath); err != nil {
			return err
		}
		r.TablespaceMapRemoved = true
		r.Notes = append(r.Notes, "tablespace_map removed: PostgreSQL would recreate pg_tblspc links to the production locations it lists; the links now point into the scratch directory")
	}
	return nil
}

func readSmall(p string, max int64) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, max)
	}
	return data, nil
}

// ignoredPath applies pg_verifybackup's default ignore list: the path or
// one of its parent directories is one of these.
func ignoredPath(rel string) bool {
	for _, ig := range []string{"backup_manifest", "pg_wal", "postgresql.auto.conf", "recovery.signal", "standby.signal"} {
		if rel == ig || strings.HasPrefix(rel, ig+"/") {
			return true
		}
	}
	return false
}

// checker matches files against a manifest as pg_verifybackup does.
type checker struct {
	m        *backup.Manifest
	matched  map[string]bool
	skip     map[string]bool // listed files deliberately not on disk
	problems []string
	verified int
}

func newChecker(m *backup.Manifest) *checker {
	return &checker{m: m, matched: map[string]bool{}, skip: map[string]bool{}}
}

func (c *checker) add(p string) { c.problems = append(c.problems, p) }

// copy copies src to dst and checks the file mrel (its manifest path) on
// the way; a nil checker only copies. size is the size the source
// declares, -1 if unknown.
func (c *checker) copy(mrel string, size int64, src io.Reader, dst io.Writer, buf []byte) (int64, error) {
	cw := &countWriter{w: dst}
	plain := func() (int64, error) {
		_, err := io.CopyBuffer(cw, src, buf)
		return cw.n, err
	}
	if c == nil || ignoredPath(mrel) {
		return plain()
	}
	ent, ok := c.m.File(mrel)
	if !ok {
		c.add(fmt.Sprintf("%q is present in the backup but not in the manifest", mrel))
		return plain()
	}
	c.matched[mrel] = true
	if size >= 0 && uint64(size) != ent.Size {
		c.add(fmt.Sprintf("%q has size %d in the backup but %d in the manifest", mrel, size, ent.Size))
		return plain()
	}
	err := backup.VerifyFile(ent, io.TeeReader(src, cw))
	switch {
	case err == nil:
		c.verified++
	case errors.Is(err, backup.ErrChecksumMismatch), errors.Is(err, backup.ErrSizeMismatch):
		c.add(strings.TrimPrefix(err.Error(), "backup: "))
	default:
		return cw.n, err
	}
	return cw.n, nil
}

// finish reports the listed files never seen and returns every problem.
func (c *checker) finish() []string {
	for _, f := range c.m.Files {
		if !c.matched[f.Path] && !c.skip[f.Path] && !ignoredPath(f.Path) {
			c.add(fmt.Sprintf("%q is present in the manifest but not in the backup", f.Path))
		}
	}
	return c.problems
}

type countWriter struct {
	w io.Writer
	n int64
}

// Write writes and counts.
func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// VerifyRestored checks the restored files on disk against manifest m the
// way pg_verifybackup checks a plain backup (following the pg_tblspc links
// into the scratch directory), and returns how many files matched and
// every problem, each naming the file. tablespace_map is not expected on
// disk when [Restore] removed it. Call it before [WriteRecoveryConfig],
// which rewrites postgresql.conf and pg_hba.conf. err reports only I/O
// failures and ctx.
func VerifyRestored(ctx context.Context, r *Restored, m *backup.Manifest) (verified int, problems []string, err error) {
	c := newChecker(m)
	if r.TablespaceMapRemoved {
		c.skip["tablespace_map"] = true
	}
	var walk func(root, prefix string) error
	walk = func(root, prefix string) error {
		return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			if rel == "." {
				return nil
			}
			rel = prefix + filepath.ToSlash(rel)
			if ignoredPath(rel) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			t := d.Type()
			switch {
			case t.IsDir():
				return nil
			case t&fs.ModeSymlink != 0:
				if oid, ok := tablespaceLinkName(rel); ok && prefix == "" {
					target, err := os.Readlink(p)
					if err != nil {
						return err
					}
					if want, ok := r.Tablespaces[oid]; !ok || target != want {
						c.add(fmt.Sprintf("%q links to %s, not into the scratch directory", rel, target))
						return nil
					}
					return walk(target, rel+"/")
				}
				c.add(fmt.Sprintf("%q is a symbolic link, not a regular file or directory", rel))
				return nil
			case !t.IsRegular():
				c.add(fmt.Sprintf("%q is not a regular file or directory", rel))
				return nil
			}
			f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			_, err = c.copy(rel, fi.Size(), f, io.Discard, nil)
			return err
		})
	}
	if err := walk(r.DataDir, ""); err != nil {
		return 0, nil, err
	}
	return c.verified, c.finish(), nil
}
