package drill

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/walaudit/walaudit/audit/backup"
)

// Space is what restoring a backup needs and what the file system has.
type Space struct {
	// DataBytes and DataFiles are what the restore writes: the data files
	// and the WAL the backup carries. Source says where the numbers come
	// from: "manifest", "plain directory" or "tar headers".
	DataBytes int64  `json:"data_bytes"`
	DataFiles int64  `json:"data_files"` // files the restore writes
	Source    string `json:"source"`     // where DataBytes and DataFiles come from
	// WALBytes is the WAL recovery will fetch, as the caller estimated it.
	WALBytes int64 `json:"wal_bytes"`
	// MarginBytes covers what PostgreSQL writes itself while it recovers
	// (new and recycled WAL segments, the log): 5% of the rest, at least
	// 64 MiB.
	MarginBytes int64 `json:"margin_bytes"`
	// NeedBytes is DataBytes + WALBytes + MarginBytes.
	NeedBytes int64 `json:"need_bytes"`
	// AvailBytes and AvailFiles are statfs's Bavail*Bsize and Ffree for
	// the parent directory.
	AvailBytes int64 `json:"avail_bytes"`
	AvailFiles int64 `json:"avail_files"` // free inodes; 0 when the file system has no limit
}

// SpaceCheck checks that parent, the directory the scratch directory will
// be created in, has room for backup b (sizes from its backup_manifest,
// plus the WAL it carries) plus walBytes of WAL to replay and a margin,
// and enough free inodes. The error says what is needed and what is
// there. See [MeasureSpace] for the numbers.
func SpaceCheck(parent string, b *backup.Backup, walBytes int64) error {
	s, err := MeasureSpace(context.Background(), parent, b, walBytes)
	if err != nil {
		return err
	}
	if s.AvailBytes < s.NeedBytes {
		return fmt.Errorf("not enough space in %s to restore backup %s: %s needed (backup %s from the %s, WAL to replay %s, margin %s), %s available",
			parent, b.ID, human(s.NeedBytes), human(s.DataBytes), s.Source, human(s.WALBytes), human(s.MarginBytes), human(s.AvailBytes))
	}
	// Some file systems (btrfs) report no inode limit at all: Ffree 0.
	if s.AvailFiles > 0 && s.AvailFiles < s.DataFiles+64 {
		return fmt.Errorf("not enough inodes in %s to restore backup %s: %d files needed, %d free", parent, b.ID, s.DataFiles+64, s.AvailFiles)
	}
	return nil
}

// MeasureSpace computes what [SpaceCheck] compares. Without a manifest a
// plain backup is measured by walking it and a tar backup by reading its
// tar headers (which decompresses a compressed one completely).
func MeasureSpace(ctx context.Context, parent string, b *backup.Backup, walBytes int64) (*Space, error) {
	s := &Space{WALBytes: walBytes}
	var err error
	s.DataBytes, s.DataFiles, s.Source, err = restoreSize(ctx, b)
	if err != nil {
		return nil, err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(parent, &st); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", parent, err)
	}
	s.AvailBytes = int64(st.Bavail) * int64(st.Bsize)
	s.AvailFiles = int64(st.Ffree)
	s.MarginBytes = max((s.DataBytes+s.WALBytes)/20, 64<<20)
	s.NeedBytes = s.DataBytes + s.WALBytes + s.MarginBytes
	return s, nil
}

// restoreSize is what restoring b writes, in bytes and files.
func restoreSize(ctx context.Context, b *backup.Backup) (bytes, files int64, source string, err error) {
	if b.Manifest != nil {
		for _, f := range b.Manifest.Files {
			bytes += int64(f.Size)
			files++
		}
		// The manifest leaves out pg_wal; the WAL carried is restored too.
		bytes += int64(len(b.WALSegments)) * int64(b.SegmentSize)
		files += int64(len(b.WALSegments))
		return bytes, files, "manifest", nil
	}
	switch b.Format {
	case backup.FormatPlain:
		bytes, files, err = dirSize(ctx, b.Path, true)
		return bytes, files, "plain directory", err
	case backup.FormatTar:
		ents, err := os.ReadDir(b.Path)
		if err != nil {
			return 0, 0, "", err
		}
		for _, e := range ents {
			n := e.Name()
			if _, ok := tablespaceTarOID(n); !ok && !tarName(n, "base") && !tarName(n, "pg_wal") {
				continue
			}
			nb, nf, err := tarSize(ctx, filepath.Join(b.Path, n))
			if err != nil {
				return 0, 0, "", err
			}
			bytes += nb
			files += nf
		}
		return bytes, files, "tar headers", nil
	}
	return 0, 0, "", fmt.Errorf("backup %s: no files to measure (known only from %s)", b.ID, b.Source)
}

// dirSize sums regular files below dir, following pg_wal and pg_tblspc
// links at the top.
func dirSize(ctx context.Context, dir string, top bool) (bytes, files int64, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			bytes += fi.Size()
			files++
		case d.Type()&fs.ModeSymlink != 0 && top && (rel == "pg_wal" || strings.HasPrefix(rel, "pg_tblspc/")):
			t, err := filepath.EvalSymlinks(p)
			if err != nil {
				return err
			}
			nb, nf, err := dirSize(ctx, t, false)
			if err != nil {
				return err
			}
			bytes += nb
			files += nf
		}
		return nil
	})
	return bytes, files, err
}

// tarSize sums the regular-file entries of a (possibly compressed) tar.
func tarSize(ctx context.Context, p string) (bytes, files int64, err error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r, closeFn, err := decompress(ctx, f)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", p, err)
	}
	defer closeFn()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return bytes, files, nil
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return 0, 0, fmt.Errorf("read %s: %w", p, err)
		}
		if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == '\x00' {
			bytes += hdr.Size
			files++
		}
	}
}

// human renders a byte count in binary units.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
