package backup

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/walaudit/walaudit/walname"
)

// OpenWAL returns the content of the WAL segment or timeline history file
// name (e.g. "000000010000000000000009", "00000002.history") carried in
// the backup's pg_wal, as [ScanDir] or [ScanFS] lists it in WALSegments and
// WALHistoryFiles:
//
//   - plain format: the file pg_wal/NAME (pg_wal may be a symlink, as with
//     pg_basebackup --waldir; NAME must be a regular file);
//   - tar format with pg_wal.tar[.gz|.lz4|.zst] (-X stream): its top-level
//     entry NAME (or pg_wal/NAME); base.tar is then not searched, as
//     pg_basebackup puts WAL only in pg_wal.tar;
//   - tar format without pg_wal.tar (-X fetch): the entry pg_wal/NAME of
//     base.tar[.gz|.lz4|.zst], which pg_basebackup appends after the data
//     files.
//
// A tar is read sequentially up to the entry and the content streams from
// it: nothing is extracted to disk, and only regular-file entries whose
// cleaned name matches exactly are taken (entry names are untrusted: names
// that are absolute or climb out with ".." never match). Should a tar hold
// the same name twice, the first entry is returned.
//
// The error wraps [ErrWALNotInBackup] when the backup does not carry the
// file, including backups described by a history file, which carry no
// files. Other errors are an invalid name, an unreadable or corrupt archive
// (found before the entry) and ctx being done; reading stops with ctx's
// error once it is done. The caller closes the reader.
func OpenWAL(ctx context.Context, b *Backup, name string) (io.ReadCloser, error) {
	if !walname.IsSegmentName(name) && !walname.IsHistoryName(name) {
		return nil, fmt.Errorf("open WAL in backup %s: %q is not a WAL segment or timeline history file name", b.ID, name)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch b.Format {
	case FormatPlain:
		return openPlainWAL(ctx, b, name)
	case FormatTar:
		return openTarWAL(ctx, b, name)
	}
	return nil, fmt.Errorf("open WAL %s in backup %s: %w (the %s description carries no files)", name, b.ID, ErrWALNotInBackup, b.Source)
}

func openPlainWAL(ctx context.Context, b *Backup, name string) (io.ReadCloser, error) {
	src, dir := locate(b)
	bs := &backupSrc{source: src, rel: dir}
	rel := relWAL + "/" + name
	p := bs.display(rel)
	f, err := bs.fsys.Open(bs.name(rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open WAL %s in backup %s: %w (no %s)", name, b.ID, ErrWALNotInBackup, p)
	}
	if err != nil {
		return nil, fmt.Errorf("open WAL %s in backup %s: %w", name, b.ID, fixErr(err, p))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open WAL %s in backup %s: %w", name, b.ID, fixErr(err, p))
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open WAL %s in backup %s: %w (%s is not a regular file)", name, b.ID, ErrWALNotInBackup, p)
	}
	return &walReader{ctx: ctx, r: f, display: p, closeFn: f.Close}, nil
}

func openTarWAL(ctx context.Context, b *Backup, name string) (io.ReadCloser, error) {
	src, dir := locate(b)
	bs := &backupSrc{source: src, rel: dir}
	entries, err := fs.ReadDir(bs.fsys, bs.name("."))
	if err != nil {
		return nil, fmt.Errorf("open WAL %s in backup %s: %w", name, b.ID, fixErr(err, bs.display(".")))
	}
	var bases, wals []string
	for _, e := range entries {
		switch n := e.Name(); {
		case n == "base.tar" || strings.HasPrefix(n, "base.tar."):
			bases = append(bases, n)
		case n == "pg_wal.tar" || strings.HasPrefix(n, "pg_wal.tar."):
			wals = append(wals, n)
		}
	}
	tars, want := bases, []string{relWAL + "/" + name}
	if len(wals) > 0 {
		tars, want = wals, []string{name, relWAL + "/" + name}
	}
	sort.Strings(tars)
	for _, t := range tars {
		rc, err := openTarEntry(ctx, bs, t, want)
		if err != nil {
			return nil, fmt.Errorf("open WAL %s in backup %s: %w", name, b.ID, err)
		}
		if rc != nil {
			return rc, nil
		}
	}
	where := "no base.tar"
	if len(tars) > 0 {
		where = "not in " + strings.Join(tars, ", ")
	}
	return nil, fmt.Errorf("open WAL %s in backup %s: %w (%s)", name, b.ID, ErrWALNotInBackup, where)
}

// openTarEntry streams the tar t of the backup up to the first regular
// entry whose cleaned name is one of want and returns a reader of its
// content; nil and no error if there is none.
func openTarEntry(ctx context.Context, bs *backupSrc, t string, want []string) (io.ReadCloser, error) {
	p := bs.display(t)
	f, err := bs.fsys.Open(bs.name(t))
	if err != nil {
		return nil, fixErr(err, p)
	}
	r, _, closeArchive, err := openArchive(ctx, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: cannot start decompressing: %w", p, err)
	}
	cleanup := func() error {
		closeArchive()
		return f.Close()
	}
	tr := tar.NewReader(r)
	last := "(start of archive)"
	for {
		if err := ctx.Err(); err != nil {
			cleanup()
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			cleanup()
			return nil, nil
		}
		if err != nil {
			cleanup()
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr
			}
			return nil, fmt.Errorf("%s: cannot read tar entry after %s: %w", p, last, err)
		}
		last = hdr.Name
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			continue
		}
		rel, ok := cleanTarName(hdr.Name)
		if !ok {
			continue
		}
		for _, w := range want {
			if rel == w {
				return &walReader{ctx: ctx, r: tr, display: p + ":" + hdr.Name, closeFn: cleanup}, nil
			}
		}
	}
}

// walReader reads one WAL file of a backup and stops once ctx is done.
type walReader struct {
	ctx     context.Context
	r       io.Reader
	display string
	closeFn func() error
	closed  bool
}

// Read implements io.Reader.
func (w *walReader) Read(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("reading %s: %w", w.display, os.ErrClosed)
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		if cerr := w.ctx.Err(); cerr != nil {
			return n, cerr
		}
		err = fmt.Errorf("reading %s: %w", w.display, err)
	}
	return n, err
}

// Close releases the decompressor and closes the file.
func (w *walReader) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return w.closeFn()
}
