package backup

import (
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

	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/internal/par"
	"github.com/walaudit/walaudit/walname"
)

// Size limits for the files read into memory. Real files are far smaller
// (backup_label ~250 bytes, pg_control 8 KiB); the limits stop a damaged or
// hostile backup from exhausting memory.
const (
	maxLabelSize    = 1 << 20
	maxMapSize      = 1 << 20
	maxVersionSize  = 4 << 10
	maxControlSize  = 64 << 10
	maxManifestSize = 2 << 30
)

// Paths of the files a backup is recognised by, relative to the data
// directory (wire format: these are PostgreSQL's names).
const (
	relLabel    = "backup_label"
	relMap      = "tablespace_map"
	relVersion  = "PG_VERSION"
	relControl  = "global/pg_control"
	relManifest = "backup_manifest"
	relWAL      = "pg_wal"
	relTblspc   = "pg_tblspc"
)

// ScanDir lists the base backups in dir, a --backups directory holding one
// pg_basebackup output per sub-directory. dir may also be a single backup
// directory (it holds backup_label, base.tar, ... itself); its ID is then
// its base name.
//
// Each backup is read as little as possible: small metadata files, the
// manifest, directory listings, and from a tar only what precedes the last
// of backup_label, PG_VERSION and global/pg_control (PostgreSQL writes
// backup_label and tablespace_map first and pg_control last); pg_wal.tar is
// listed completely, and so is base.tar when there is no pg_wal.tar, because
// -X fetch appends WAL to base.tar after pg_control. A plain backup's
// manifest entries are checked with stat (size only); file contents are
// verified only for the metadata files read anyway (use [VerifyFile] for the
// rest).
//
// Problems become findings, attached to the backup (Backup.Findings) and
// returned in one flat list sorted by [finding.Sort]; an entry of dir that
// is not a backup is an info finding. The error is non-nil only if dir
// itself cannot be listed or ctx is done. Backups are sorted by start LSN,
// then ID.
func ScanDir(ctx context.Context, dir string) ([]*Backup, []finding.Finding, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("scan backups directory: %w", err)
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("scan backups directory: %s is not a directory", dir)
	}
	src := &source{fsys: os.DirFS(dir), location: dir, root: "."}
	return scanSource(ctx, src, filepath.Base(filepath.Clean(dir)))
}

// ScanFS is [ScanDir] for the directory root of fsys (an fs name, "." for
// the top), e.g. a backups location in object storage seen through
// [store.FS]. location names root in findings and becomes the base of
// Backup.Path: a local directory path (joined with [filepath.Join]) or a
// URL such as s3://bucket/prefix (joined with "/"). When root is itself one
// backup its ID is the last element of location.
//
// Reading works as in ScanDir, with fs.Stat, fs.ReadDir and fsys.Open;
// tablespace links of a plain backup are read with [fs.ReadLink] (a file
// system without links, such as object storage, has none). An uncompressed
// tar is skipped through with Seek when fsys's files implement
// [io.Seeker], and read through otherwise. [OpenWAL] reads the backups
// found through fsys, which must therefore stay usable as long as they
// are.
//
// [store.FS]: https://pkg.go.dev/github.com/walaudit/walaudit/audit/store#FS
func ScanFS(ctx context.Context, fsys fs.FS, root, location string) ([]*Backup, []finding.Finding, error) {
	if root == "" {
		root = "."
	}
	st, err := fs.Stat(fsys, root)
	if err != nil {
		return nil, nil, fmt.Errorf("scan backups directory: %w", fixErr(err, location))
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("scan backups directory: %s is not a directory", location)
	}
	id := location
	if i := strings.IndexAny(id, "?#"); i >= 0 && strings.Contains(id, "://") {
		id = id[:i]
	}
	id = strings.TrimRight(id, "/"+string(filepath.Separator))
	if strings.Contains(id, "://") {
		id = path.Base(id)
	} else {
		id = filepath.Base(filepath.Clean(id))
	}
	return scanSource(ctx, &source{fsys: fsys, location: location, root: root}, id)
}

// scanSource scans src's root; rootID is the ID the root gets when it is
// itself a backup.
func scanSource(ctx context.Context, src *source, rootID string) ([]*Backup, []finding.Finding, error) {
	entries, err := fs.ReadDir(src.fsys, src.root)
	if err != nil {
		return nil, nil, fmt.Errorf("scan backups directory: %w", fixErr(err, src.location))
	}
	// dir is itself one backup? (A lone backup_manifest does not count: it
	// could sit beside the backup directories.)
	if kind := classify(src, ".", entries); kind != kindNone && kind != kindManifestOnly {
		b := scanBackup(ctx, src, ".", rootID, entries, kind)
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		return []*Backup{b}, append([]finding.Finding(nil), b.Findings...), nil
	}

	var backups []*Backup
	var all []finding.Finding
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		rel := e.Name()
		p := src.display(rel)
		fi, err := fs.Stat(src.fsys, src.name(rel)) // follows symlinks to backup directories
		if err != nil {
			all = append(all, finding.Finding{Severity: finding.Error, Code: CodeUnreadable, File: p,
				Message: fmt.Sprintf("cannot inspect entry of backups directory: %v", fixErr(err, p))})
			continue
		}
		if !fi.IsDir() {
			all = append(all, finding.Finding{Severity: finding.Info, Code: CodeNotABackup, File: p,
				Message: "not a backup: a file, not a backup directory"})
			continue
		}
		sub, err := fs.ReadDir(src.fsys, src.name(rel))
		if err != nil {
			all = append(all, finding.Finding{Severity: finding.Error, Code: CodeUnreadable, File: p,
				Message: fmt.Sprintf("cannot list backup directory: %v", fixErr(err, p))})
			continue
		}
		kind := classify(src, rel, sub)
		if kind == kindNone {
			all = append(all, finding.Finding{Severity: finding.Info, Code: CodeNotABackup, File: p,
				Message: "not a backup: no backup_label, PG_VERSION, global/pg_control, base.tar, pg_wal.tar or backup_manifest"})
			continue
		}
		b := scanBackup(ctx, src, rel, e.Name(), sub, kind)
		backups = append(backups, b)
		all = append(all, b.Findings...)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	sort.SliceStable(backups, func(i, j int) bool {
		if backups[i].StartLSN != backups[j].StartLSN {
			return backups[i].StartLSN < backups[j].StartLSN
		}
		return backups[i].ID < backups[j].ID
	})
	finding.Sort(all)
	return backups, all, nil
}

type dirKind int

const (
	kindNone         dirKind = iota // not a backup
	kindPlain                       // a data directory
	kindTar                         // base.tar and friends
	kindAmbiguous                   // both plain and tar markers
	kindManifestOnly                // only a backup_manifest
)

// classify decides from a directory listing what kind of backup dir
// holds. A plain backup is recognised by backup_label, PG_VERSION or
// global/pg_control (not by a directory merely named base or global, which
// could be a backup in a backups directory); a tar backup by base.tar*,
// pg_wal.tar* or <oid>.tar*.
func classify(src *source, dir string, entries []fs.DirEntry) dirKind {
	plain, tarBase, tarOther, manifest := false, false, false, false
	for _, e := range entries {
		n := e.Name()
		switch {
		case n == relLabel || n == relVersion:
			plain = true
		case n == "global" && e.IsDir():
			if fi, err := fs.Stat(src.fsys, src.name(path.Join(dir, relControl))); err == nil && fi.Mode().IsRegular() {
				plain = true
			}
		case n == "base.tar" || strings.HasPrefix(n, "base.tar."):
			tarBase = true
		case n == "pg_wal.tar" || strings.HasPrefix(n, "pg_wal.tar."):
			tarOther = true
		case n == relManifest:
			manifest = true
		default:
			if _, ok := tablespaceTarOID(n); ok {
				tarOther = true
			}
		}
	}
	switch {
	case plain && tarBase:
		return kindAmbiguous
	case plain:
		return kindPlain
	case tarBase || tarOther:
		return kindTar
	case manifest:
		return kindManifestOnly
	}
	return kindNone
}

// tablespaceTarOID recognises "<oid>.tar" with an optional compression
// suffix.
func tablespaceTarOID(name string) (uint32, bool) {
	i := strings.Index(name, ".tar")
	if i <= 0 {
		return 0, false
	}
	if rest := name[i+len(".tar"):]; rest != "" && !knownTarSuffix(rest) {
		return 0, false
	}
	v, err := strconv.ParseUint(name[:i], 10, 32)
	if err != nil || v == 0 || name[0] == '+' {
		return 0, false
	}
	return uint32(v), true
}

// tarCompressionSuffixes maps the suffixes pg_basebackup appends to tar
// names to the compression they promise.
var tarCompressionSuffixes = map[string]walname.Compression{
	"":     walname.CompressNone,
	".gz":  walname.CompressGzip,
	".lz4": walname.CompressLZ4,
	".zst": walname.CompressZstd,
}

func knownTarSuffix(s string) bool { _, ok := tarCompressionSuffixes[s]; return ok }

// fileData is one small file read from a backup.
type fileData struct {
	found   bool
	data    []byte
	display string // for findings: a path, or "tarfile:entry"
}

// walFile is one file carried in the backup's pg_wal.
type walFile struct {
	size    int64
	display string
}

// collected is what a format reader gathered for assemble.
type collected struct {
	label, tsmap, version, control, manifest fileData
	// baseBroken: the base tar could not be read to the end of what was
	// needed, so "missing" files may simply not have been reached.
	baseBroken bool
	wal        map[string]walFile // segment or history file name -> file
	// tablespaceTars: OIDs with an <oid>.tar (tar format).
	tablespaceTars map[uint32]string
	// plainTablespaces: pg_tblspc entries of a plain backup.
	plainTablespaces []TablespaceEntry
	// statManifest checks a plain backup's files against the manifest.
	statManifest func(ctx context.Context, m *Manifest) []finding.Finding
}

// scanBackup reads one backup directory of the given kind.
// rel is the backup's directory relative to src's root.
func scanBackup(ctx context.Context, src *source, rel, id string, entries []fs.DirEntry, kind dirKind) *Backup {
	path := src.display(rel)
	b := &Backup{Source: SourceBackupsDir, ID: id, Path: path}
	rememberSource(b, src, rel)
	bs := &backupSrc{source: src, rel: rel}
	c := &collected{wal: map[string]walFile{}, tablespaceTars: map[uint32]string{}}
	switch kind {
	case kindAmbiguous:
		b.add(finding.Error, CodeUnknownFormat, path,
			"directory holds both a data directory (backup_label, PG_VERSION or global/pg_control) and base.tar; cannot tell the format",
			"keep one pg_basebackup output per directory")
		return b
	case kindManifestOnly:
		b.add(finding.Error, CodeUnknownFormat, path,
			"directory holds a backup_manifest but neither a data directory nor base.tar",
			"the backup's data files are missing or stored elsewhere")
		return b
	case kindPlain:
		b.Format = FormatPlain
		readPlain(ctx, b, bs, c)
	case kindTar:
		b.Format = FormatTar
		readTarFormat(ctx, b, bs, c, entries)
	}
	assemble(ctx, b, c)
	finding.Sort(b.Findings)
	return b
}

// add records a finding about b.
func (b *Backup) add(sev finding.Severity, code, file, msg, hint string) *finding.Finding {
	b.Findings = append(b.Findings, finding.Finding{Severity: sev, Code: code, File: file, Message: msg, Hint: hint})
	return &b.Findings[len(b.Findings)-1]
}

// backupSrc is one backup's directory in a source.
type backupSrc struct {
	*source
	rel string // relative to the source's root
}

// name returns the fs name of rel, relative to the backup's directory.
func (s *backupSrc) name(rel string) string { return s.source.name(path.Join(s.rel, rel)) }

// display names rel, relative to the backup's directory, for findings.
func (s *backupSrc) display(rel string) string { return s.source.display(path.Join(s.rel, rel)) }

// readSmall reads the file rel (relative to the backup's directory) of at
// most max bytes; found is false if it does not exist.
func readSmall(b *Backup, bs *backupSrc, rel string, max int64) fileData {
	path := bs.display(rel)
	fd := fileData{display: path}
	f, err := bs.fsys.Open(bs.name(rel))
	if errors.Is(err, fs.ErrNotExist) {
		return fd
	}
	if err != nil {
		b.add(finding.Error, CodeUnreadable, path, fmt.Sprintf("cannot open: %v", fixErr(err, path)), "")
		return fd
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		b.add(finding.Error, CodeUnreadable, path, fmt.Sprintf("cannot read: %v", fixErr(err, path)), "")
		return fd
	}
	if int64(len(data)) > max {
		b.add(finding.Error, CodeUnreadable, path, fmt.Sprintf("larger than %d bytes, not read", max), "")
		return fd
	}
	fd.found, fd.data = true, data
	return fd
}

// readPlain gathers a plain-format backup (a data directory).
func readPlain(ctx context.Context, b *Backup, bs *backupSrc, c *collected) {
	c.label = readSmall(b, bs, relLabel, maxLabelSize)
	c.tsmap = readSmall(b, bs, relMap, maxMapSize)
	c.version = readSmall(b, bs, relVersion, maxVersionSize)
	c.control = readSmall(b, bs, relControl, maxControlSize)
	c.manifest = readSmall(b, bs, relManifest, maxManifestSize)

	walDir := bs.display(relWAL)
	if ents, err := fs.ReadDir(bs.fsys, bs.name(relWAL)); err == nil {
		for _, e := range ents {
			n := e.Name()
			if !walname.IsSegmentName(n) && !walname.IsHistoryName(n) {
				continue // archive_status/, .partial, temp files
			}
			fi, err := fs.Stat(bs.fsys, bs.name(relWAL+"/"+n))
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			c.wal[n] = walFile{size: fi.Size(), display: bs.display(relWAL + "/" + n)}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		b.add(finding.Error, CodeUnreadable, walDir, fmt.Sprintf("cannot list pg_wal: %v", fixErr(err, walDir)), "")
	}

	tsDir := bs.display(relTblspc)
	if ents, err := fs.ReadDir(bs.fsys, bs.name(relTblspc)); err == nil {
		for _, e := range ents {
			oid, err := strconv.ParseUint(e.Name(), 10, 32)
			if err != nil || oid == 0 {
				continue
			}
			rel := relTblspc + "/" + e.Name()
			p := bs.display(rel)
			entry := TablespaceEntry{OID: uint32(oid)}
			if e.Type()&fs.ModeSymlink != 0 {
				target, err := fs.ReadLink(bs.fsys, bs.name(rel))
				if err != nil {
					b.add(finding.Error, CodeUnreadable, p, fmt.Sprintf("cannot read tablespace link: %v", fixErr(err, p)), "")
					continue
				}
				entry.Path = target
				if _, err := fs.Stat(bs.fsys, bs.name(rel)); err != nil {
					b.add(finding.Error, CodeTablespaceMissing, p,
						fmt.Sprintf("tablespace %d links to %s, which is not accessible: %v", oid, target, fixErr(err, p)),
						"a plain backup stores each tablespace outside the data directory (pg_basebackup -T); restore it there too")
				}
			}
			c.plainTablespaces = append(c.plainTablespaces, entry)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		b.add(finding.Error, CodeUnreadable, tsDir, fmt.Sprintf("cannot list pg_tblspc: %v", fixErr(err, tsDir)), "")
	}

	c.statManifest = func(ctx context.Context, m *Manifest) []finding.Finding {
		// One stat per file (a thousand in an empty cluster), taken in
		// parallel: every check of a backup pays them.
		type stat struct {
			fi  fs.FileInfo
			err error
		}
		stats := make([]stat, len(m.Files))
		if par.For(ctx, len(m.Files), func(i int) {
			if p := m.Files[i].Path; filepath.IsLocal(filepath.FromSlash(p)) {
				stats[i].fi, stats[i].err = fs.Stat(bs.fsys, bs.name(p))
			}
		}) != nil {
			return nil
		}
		var bad []string
		for i, f := range m.Files {
			if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
				bad = append(bad, f.Path+" (path leaves the data directory)")
				continue
			}
			fi, err := stats[i].fi, stats[i].err
			switch {
			case err != nil:
				bad = append(bad, f.Path+" (missing)")
			case !fi.Mode().IsRegular():
				bad = append(bad, f.Path+" (not a regular file)")
			case uint64(fi.Size()) != f.Size:
				bad = append(bad, fmt.Sprintf("%s (size %d, manifest %d)", f.Path, fi.Size(), f.Size))
			}
		}
		if len(bad) == 0 {
			return nil
		}
		return []finding.Finding{{Severity: finding.Error, Code: CodeIncomplete, File: b.Path,
			Message: fmt.Sprintf("%d of %d files listed in backup_manifest are missing or have the wrong size: %s",
				len(bad), len(m.Files), summarize(bad, 5)),
			Hint: "the copy is incomplete or was modified; run pg_verifybackup and use another backup"}}
	}
}

// summarize lists up to n items and says how many more there are.
func summarize(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
