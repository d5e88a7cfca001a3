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
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while listing
			}
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		return fn(ObjectInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()})
	})
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
