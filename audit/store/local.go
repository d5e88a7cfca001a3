package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/walaudit/walaudit/audit/internal/par"
)

// Local is a Store over a directory tree.
type Local struct {
	root string
}

var _ Store = (*Local)(nil)

// NewLocal opens the directory root; it must exist and be a directory.
func NewLocal(root string) (*Local, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("resolve archive directory %s: %w", root, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("archive directory %s: %w", abs, ErrNotExist)
		}
		return nil, fmt.Errorf("archive directory %s: %w", abs, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("archive location %s is not a directory", abs)
	}
	return &Local{root: abs}, nil
}

// Root returns the absolute directory.
func (l *Local) Root() string { return l.root }

func (l *Local) String() string { return l.root }

// statBatch is how many files List stats at a time.
const statBatch = 4096

type statJob struct {
	key, path string
	info      fs.FileInfo // nil when the file is gone
	err       error
}

// statAll lstats every job's path on several goroutines; the first error
// in job order (other than a file removed since the walk named it) is
// returned.
func statAll(ctx context.Context, jobs []statJob) error {
	if err := par.For(ctx, len(jobs), func(i int) {
		j := &jobs[i]
		info, err := os.Lstat(j.path)
		switch {
		case err == nil:
			j.info = info
		case !errors.Is(err, fs.ErrNotExist):
			j.err = fmt.Errorf("stat %s: %w", j.path, err)
		}
	}); err != nil {
		return err
	}
	for _, j := range jobs {
		if j.err != nil {
			return j.err
		}
	}
	return nil
}

// List walks the tree below root. Symbolic links are not followed (a
// pgBackRest "latest" link would otherwise list a backup twice).
func (l *Local) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	// Start at the deepest directory the prefix names, to avoid walking
	// the whole tree for a narrow prefix.
	start := l.root
	if dir := path.Dir(prefix); prefix != "" && dir != "." {
		start = filepath.Join(l.root, filepath.FromSlash(dir))
		if strings.HasSuffix(prefix, "/") {
			start = filepath.Join(l.root, filepath.FromSlash(prefix))
		}
	}
	// The walk only names the files; their stats (one system call each,
	// the bulk of listing a large archive) are taken in parallel batches
	// and reported in walk order.
	var batch []statJob
	flush := func() error {
		if err := statAll(ctx, batch); err != nil {
			return err
		}
		for _, j := range batch {
			if j.info == nil || !j.info.Mode().IsRegular() {
				continue // removed while listing, or not a file
			}
			if err := fn(ObjectInfo{Key: j.key, Size: j.info.Size(), ModTime: j.info.ModTime()}); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return fmt.Errorf("list %s: %w", p, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		rel, err := filepath.Rel(l.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		batch = append(batch, statJob{key: key, path: p})
		if len(batch) == statBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", l.root, err)
	}
	return nil
}

func (l *Local) path(key string) (string, error) {
	clean := path.Clean("/" + key)
	if clean == "/" || strings.Contains(key, "\x00") {
		return "", fmt.Errorf("invalid object key %q", key)
	}
	return filepath.Join(l.root, filepath.FromSlash(clean[1:])), nil
}

// Stat implements Store.
func (l *Local) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	p, err := l.path(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ObjectInfo{}, fmt.Errorf("stat %s: %w", p, ErrNotExist)
		}
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", p, err)
	}
	return ObjectInfo{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Open implements Store.
func (l *Local) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open %s: %w", p, ErrNotExist)
		}
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	return f, nil
}
