package backup

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"weak"
)

// source is where a backups directory is read from: a file system, the
// directory of the scan within it and how to name its files in findings
// and Backup.Path.
type source struct {
	fsys fs.FS
	// location names the scan root (fs name root) for messages: a local
	// directory (joined with filepath) or a URL (joined with "/").
	location string
	root     string
}

// name returns the fs name of rel (slash-separated, relative to the scan
// root).
func (s *source) name(rel string) string {
	return path.Join(s.root, rel)
}

// display names rel (relative to the scan root) for findings.
func (s *source) display(rel string) string {
	if rel == "" || rel == "." {
		return s.location
	}
	if strings.Contains(s.location, "://") {
		return strings.TrimSuffix(s.location, "/") + "/" + rel
	}
	return filepath.Join(s.location, filepath.FromSlash(rel))
}

// fixErr names the file of an *fs.PathError by its display name, so that
// errors read as those of the os package did before file systems (os.DirFS
// reports names relative to its root).
func fixErr(err error, display string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && err == error(pe) {
		return &fs.PathError{Op: pe.Op, Path: display, Err: pe.Err}
	}
	return err
}

// backupSource records where a backup found by a scan lives, so that
// [OpenWAL] reads it through the same file system. A weak key keeps the
// registry from holding backups alive.
type backupLoc struct {
	src *source
	rel string // the backup's directory, relative to src's root
}

var backupSources sync.Map // weak.Pointer[Backup] -> backupLoc

func rememberSource(b *Backup, src *source, rel string) {
	wp := weak.Make(b)
	backupSources.Store(wp, backupLoc{src: src, rel: rel})
	runtime.AddCleanup(b, func(k weak.Pointer[Backup]) { backupSources.Delete(k) }, wp)
}

// locate returns the file system and fs name of b's directory: the ones
// of the scan that found b, or b.Path on the local file system for a
// Backup built otherwise.
func locate(b *Backup) (*source, string) {
	if v, ok := backupSources.Load(weak.Make(b)); ok {
		l := v.(backupLoc)
		return l.src, l.rel
	}
	return &source{fsys: os.DirFS(b.Path), location: b.Path, root: "."}, "."
}
