package pgserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/walaudit/walaudit/walname"
)

// LowLevelBackup takes a non-exclusive low-level base backup of s into the
// lab's backups/<name>, the way PostgreSQL's documentation describes it
// ("Making a Base Backup Using the Low Level API") and without
// pg_basebackup, which the npm builds lack: on one connection held open it
// calls pg_backup_start (15+) or pg_start_backup (13, 14) with a fast
// checkpoint, copies the data directory (global/pg_control last, as
// pg_basebackup does), calls pg_backup_stop / pg_stop_backup, which waits
// until the WAL the backup needs is archived, and writes the returned
// label as backup_label (and the tablespace map as tablespace_map when
// there is one) into the copy. Tablespace symlinks are copied as they are:
// their contents are not part of the copy.
func (l *Lab) LowLevelBackup(ctx context.Context, s *Server, name string) (dir string, err error) {
	dir = filepath.Join(l.Backups, name)
	if _, err := os.Stat(dir); err == nil {
		return "", fmt.Errorf("backup directory %s already exists", dir)
	}
	c, err := s.Connect(ctx, "")
	if err != nil {
		return "", err
	}
	defer c.Close(context.Background())
	var num int
	if err := c.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&num); err != nil {
		return "", fmt.Errorf("read server version: %w", err)
	}
	label := "walaudit " + name
	start, stop := `SELECT pg_backup_start($1, true)::text`, `SELECT lsn::text, labelfile, coalesce(spcmapfile, '') FROM pg_backup_stop()`
	if num < 150000 {
		start, stop = `SELECT pg_start_backup($1, true, false)::text`, `SELECT lsn::text, labelfile, coalesce(spcmapfile, '') FROM pg_stop_backup(false)`
	}
	var startLSN string
	if err := c.QueryRow(ctx, start, label).Scan(&startLSN); err != nil {
		return "", fmt.Errorf("start backup: %w", err)
	}
	// Should anything below fail, closing the connection ends the
	// non-exclusive backup.
	if err := l.User.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := copyDataDir(ctx, s.DataDir, dir, l.User); err != nil {
		return "", fmt.Errorf("copy %s to %s: %w", s.DataDir, dir, err)
	}
	var stopLSN, labelFile, spcMap string
	if err := c.QueryRow(ctx, stop).Scan(&stopLSN, &labelFile, &spcMap); err != nil {
		return "", fmt.Errorf("stop backup: %w", err)
	}
	if err := writeOwned(filepath.Join(dir, "backup_label"), labelFile, l.User); err != nil {
		return "", err
	}
	if spcMap != "" {
		if err := writeOwned(filepath.Join(dir, "tablespace_map"), spcMap, l.User); err != nil {
			return "", err
		}
	}
	// The stop waited for archiving; make sure the history file is there.
	var segSize int64
	if err := c.QueryRow(ctx, `SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'`).Scan(&segSize); err != nil {
		return "", err
	}
	hist, err := backupHistoryName(labelFile, walname.SegmentSize(segSize))
	if err != nil {
		return "", err
	}
	if err := l.WaitArchived(ctx, hist); err != nil {
		return "", err
	}
	return dir, nil
}

// backupHistoryName is the archived NAME.OFFSET.backup file of a label.
func backupHistoryName(label string, sz walname.SegmentSize) (string, error) {
	var hi, lo uint32
	var file string
	for _, line := range strings.Split(label, "\n") {
		if strings.HasPrefix(line, "START WAL LOCATION:") {
			if _, err := fmt.Sscanf(line, "START WAL LOCATION: %X/%X (file %24s)", &hi, &lo, &file); err != nil {
				return "", fmt.Errorf("parse backup_label line %q: %w", line, err)
			}
			lsn := uint64(hi)<<32 | uint64(lo)
			return fmt.Sprintf("%s.%08X.backup", file, lsn%uint64(sz)), nil
		}
	}
	return "", fmt.Errorf("backup_label has no START WAL LOCATION: %q", label)
}

func writeOwned(p, content string, u *OSUser) error {
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		return err
	}
	return u.Chown(p)
}

// lowLevelSkipContents are the directories whose contents a base backup
// leaves out (the directories themselves are kept).
var lowLevelSkipContents = map[string]bool{
	"pg_wal": true, "pg_replslot": true, "pg_dynshmem": true, "pg_notify": true, "pg_serial": true,
	"pg_snapshots": true, "pg_stat_tmp": true, "pg_subtrans": true,
}

// lowLevelSkipFiles are files a base backup leaves out, at any depth.
var lowLevelSkipFiles = map[string]bool{
	"postmaster.pid": true, "postmaster.opts": true, "backup_label": true, "tablespace_map": true,
	"backup_manifest": true, "postgresql.auto.conf.tmp": true, "current_logfiles.tmp": true,
	"pg_internal.init": true, "backup_label.old": true,
}

// copyDataDir copies a running cluster's data directory for a base
// backup: files that vanish while copying are skipped, files that change
// are copied as read (WAL replay repairs them), and global/pg_control is
// copied last.
func copyDataDir(ctx context.Context, src, dst string, u *OSUser) error {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		target := filepath.Join(dst, rel)
		base := d.Name()
		parent := filepath.ToSlash(filepath.Dir(rel))
		if lowLevelSkipContents[parent] && !(parent == "pg_wal" && base == "archive_status") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if lowLevelSkipFiles[base] || strings.HasPrefix(base, "pgsql_tmp") || filepath.ToSlash(rel) == "global/pg_control" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if parent == "pg_wal/archive_status" {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(p, target, info.Mode().Perm()); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
		default:
			return nil
		}
		return u.Chown(target)
	})
	if err != nil {
		return err
	}
	ctl := filepath.Join(dst, "global", "pg_control")
	if err := copyFile(filepath.Join(src, "global", "pg_control"), ctl, 0o600); err != nil {
		return err
	}
	return u.Chown(ctl)
}
