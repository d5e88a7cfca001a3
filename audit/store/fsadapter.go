package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// FS presents st as a read-only [fs.FS] (also [fs.ReadDirFS] and
// [fs.StatFS]) whose names are object keys: "a/b" is the key "a/b" and "."
// the store root. Directories are implied by keys: "a" is a directory when
// some key starts with "a/" (an S3 "directory marker" object "a/" is not
// listed as an entry), and the root "." exists when the store holds at
// least one object (an empty S3 prefix is no directory). Every call uses
// ctx.
//
// Nothing is cached: Stat costs one Stat of the store (and, for a
// directory, one List stopped at its first object), ReadDir one List of
// everything under the directory (stores list recursively), Open of a file
// one Open when it is first read. When st implements [RangeOpener], opened
// files also implement [io.Seeker]: a forward seek of up to 1 MiB is read
// through, a longer one (or a backward one) reopens the object at the new
// offset with one range request, so a tar reader skips large entry bodies
// without transferring them.
//
// Modification times are whole seconds (S3 lists them to the millisecond
// but HEAD gives seconds). Errors are [*fs.PathError]s; a missing object or directory wraps
// [fs.ErrNotExist] (and, when the store said so, its [ErrNotExist] error
// text).
func FS(ctx context.Context, st Store) fs.FS {
	return &storeFS{ctx: ctx, st: st}
}

// seekReadThrough is the largest forward seek read through rather than
// answered with a new range request.
const seekReadThrough = 1 << 20

type storeFS struct {
	ctx context.Context
	st  Store
}

var (
	_ fs.ReadDirFS = (*storeFS)(nil)
	_ fs.StatFS    = (*storeFS)(nil)
)

// notExist wraps err so that it matches fs.ErrNotExist.
type notExist struct{ err error }

func (e notExist) Error() string {
	if e.err == nil {
		return fs.ErrNotExist.Error()
	}
	return e.err.Error()
}
func (e notExist) Is(target error) bool { return target == fs.ErrNotExist || target == ErrNotExist }
func (e notExist) Unwrap() error        { return e.err }

func (s *storeFS) pathErr(op, name string, err error) error {
	if IsNotExist(err) && !errors.Is(err, fs.ErrNotExist) {
		err = notExist{err}
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// hasChildren reports whether some key starts with name + "/" (with
// anything, for "").
func (s *storeFS) hasChildren(name string) (bool, error) {
	stop := errors.New("stop")
	found := false
	prefix := ""
	if name != "" {
		prefix = name + "/"
	}
	err := s.st.List(s.ctx, prefix, func(ObjectInfo) error {
		found = true
		return stop
	})
	if err != nil && !errors.Is(err, stop) {
		return false, err
	}
	return found, nil
}

// Stat implements fs.StatFS.
func (s *storeFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	if err := s.ctx.Err(); err != nil {
		return nil, s.pathErr("stat", name, err)
	}
	if name == "." {
		ok, err := s.hasChildren("")
		if err != nil {
			return nil, s.pathErr("stat", name, err)
		}
		if !ok {
			return nil, s.pathErr("stat", name, notExist{fmt.Errorf("no object under %s: %w", s.st, ErrNotExist)})
		}
		return dirInfo{name: "."}, nil
	}
	oi, err := s.st.Stat(s.ctx, name)
	if err == nil {
		return fileInfo{oi}, nil
	}
	if !IsNotExist(err) {
		return nil, s.pathErr("stat", name, err)
	}
	ok, lerr := s.hasChildren(name)
	if lerr != nil {
		return nil, s.pathErr("stat", name, lerr)
	}
	if !ok {
		return nil, s.pathErr("stat", name, notExist{err})
	}
	return dirInfo{name: path.Base(name)}, nil
}

// ReadDir implements fs.ReadDirFS: the entries sorted by name.
func (s *storeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	if err := s.ctx.Err(); err != nil {
		return nil, s.pathErr("readdir", name, err)
	}
	prefix := ""
	if name != "." {
		prefix = name + "/"
	}
	files := map[string]ObjectInfo{}
	dirs := map[string]bool{}
	err := s.st.List(s.ctx, prefix, func(o ObjectInfo) error {
		rest, ok := strings.CutPrefix(o.Key, prefix)
		if !ok || rest == "" {
			return nil
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			if i > 0 {
				dirs[rest[:i]] = true
			}
			return nil
		}
		files[rest] = o
		return nil
	})
	if err != nil {
		return nil, s.pathErr("readdir", name, err)
	}
	if len(files) == 0 && len(dirs) == 0 {
		if name == "." {
			return nil, s.pathErr("readdir", name, notExist{fmt.Errorf("no object under %s: %w", s.st, ErrNotExist)})
		}
		if _, err := s.st.Stat(s.ctx, name); err == nil {
			return nil, s.pathErr("readdir", name, errors.New("not a directory"))
		}
		return nil, s.pathErr("readdir", name, fs.ErrNotExist)
	}
	out := make([]fs.DirEntry, 0, len(files)+len(dirs))
	for n := range dirs {
		out = append(out, fs.FileInfoToDirEntry(dirInfo{name: n})) // a directory wins over an object of the same name
	}
	for n, o := range files {
		if !dirs[n] {
			out = append(out, fs.FileInfoToDirEntry(fileInfo{o}))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Open implements fs.FS. A file is opened in the store when first read.
func (s *storeFS) Open(name string) (fs.File, error) {
	fi, err := s.Stat(name)
	if err != nil {
		if pe, ok := err.(*fs.PathError); ok {
			pe.Op = "open"
		}
		return nil, err
	}
	if fi.IsDir() {
		return &dirFile{fsys: s, name: name, info: fi}, nil
	}
	oi := fi.(fileInfo).o
	f := &file{ctx: s.ctx, st: s.st, name: name, info: oi}
	if _, ok := s.st.(RangeOpener); ok {
		return &seekFile{f}, nil
	}
	return f, nil
}

// file is an object opened through FS.
type file struct {
	ctx    context.Context
	st     Store
	name   string
	info   ObjectInfo
	rc     io.ReadCloser // current stream, nil until needed
	rpos   int64         // offset rc reads next
	pos    int64         // offset Read returns next
	closed bool
}

func (f *file) Stat() (fs.FileInfo, error) { return fileInfo{f.info}, nil }

func (f *file) Read(p []byte) (int, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrClosed}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if f.rc != nil && f.rpos != f.pos {
		if gap := f.pos - f.rpos; gap > 0 && gap <= seekReadThrough {
			n, err := io.CopyN(io.Discard, f.rc, gap)
			f.rpos += n
			if err != nil && !errors.Is(err, io.EOF) {
				return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
			}
		}
		if f.rpos != f.pos {
			f.rc.Close()
			f.rc = nil
		}
	}
	if f.rc == nil {
		if f.pos >= f.info.Size && f.pos > 0 {
			return 0, io.EOF
		}
		var rc io.ReadCloser
		var err error
		if f.pos == 0 {
			rc, err = f.st.Open(f.ctx, f.name)
		} else {
			rc, err = OpenRange(f.ctx, f.st, f.name, f.pos, -1)
		}
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
		}
		f.rc, f.rpos = rc, f.pos
	}
	n, err := f.rc.Read(p)
	f.rpos += int64(n)
	f.pos = f.rpos
	return n, err
}

func (f *file) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if f.rc != nil {
		return f.rc.Close()
	}
	return nil
}

// seekFile is a file of a store with range reads.
type seekFile struct{ *file }

// Seek implements io.Seeker; the store is read at the new offset on the
// next Read.
func (f *seekFile) Seek(offset int64, whence int) (int64, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrClosed}
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = f.pos + offset
	case io.SeekEnd:
		abs = f.info.Size + offset
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	if abs < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: errors.New("negative position")}
	}
	f.pos = abs
	return abs, nil
}

// dirFile is a directory opened through FS.
type dirFile struct {
	fsys    *storeFS
	name    string
	info    fs.FileInfo
	entries []fs.DirEntry
	read    bool
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}
func (d *dirFile) Close() error { return nil }

// ReadDir implements fs.ReadDirFile.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		es, err := d.fsys.ReadDir(d.name)
		if err != nil {
			return nil, err
		}
		d.entries, d.read = es, true
	}
	if n <= 0 {
		es := d.entries
		d.entries = nil
		return es, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	es := d.entries[:n]
	d.entries = d.entries[n:]
	return es, nil
}

type fileInfo struct{ o ObjectInfo }

func (fi fileInfo) Name() string       { return path.Base(fi.o.Key) }
func (fi fileInfo) Size() int64        { return fi.o.Size }
func (fi fileInfo) Mode() fs.FileMode  { return 0o444 }
func (fi fileInfo) ModTime() time.Time { return fi.o.ModTime.Truncate(time.Second) } // S3: LIST has ms, HEAD s
func (fi fileInfo) IsDir() bool        { return false }
func (fi fileInfo) Sys() any           { return fi.o }

type dirInfo struct{ name string }

func (di dirInfo) Name() string       { return di.name }
func (di dirInfo) Size() int64        { return 0 }
func (di dirInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o555 }
func (di dirInfo) ModTime() time.Time { return time.Time{} }
func (di dirInfo) IsDir() bool        { return true }
func (di dirInfo) Sys() any           { return nil }
