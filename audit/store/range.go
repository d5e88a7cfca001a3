package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
)

// RangeOpener is implemented by stores that can read part of an object
// without transferring the rest: an HTTP range request for [S3], a section of
// the file for [Local]. A header-only audit uses it to fetch the first 8 KiB
// of each segment. Call it through [OpenRange], which falls back to
// [Store.Open] for stores without it.
type RangeOpener interface {
	// OpenRange returns the object's bytes from offset off, at most n of
	// them, or all the rest when n < 0; the caller closes it. An object
	// shorter than off+n gives fewer bytes (none when off is at or past its
	// end), not an error. n == 0 gives an empty reader after checking that
	// the object exists. A missing object gives an error wrapping
	// [ErrNotExist]; a negative off is an error.
	OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
}

var (
	_ RangeOpener = (*Local)(nil)
	_ RangeOpener = (*S3)(nil)
)

// OpenRange reads part of an object with the [RangeOpener] contract. It uses
// s's own OpenRange when s implements [RangeOpener], and otherwise opens the
// whole object, skips off bytes and stops after n.
func OpenRange(ctx context.Context, s Store, key string, off, n int64) (io.ReadCloser, error) {
	if off < 0 {
		return nil, fmt.Errorf("open %s at offset %d: negative offset", key, off)
	}
	if r, ok := s.(RangeOpener); ok {
		return r.OpenRange(ctx, key, off, n)
	}
	rc, err := s.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	if off > 0 {
		if _, err := io.CopyN(io.Discard, rc, off); err != nil && !errors.Is(err, io.EOF) {
			rc.Close()
			return nil, fmt.Errorf("skip to offset %d of %s: %w", off, key, err)
		}
	}
	return limitReadCloser(rc, n), nil
}

// readCloser joins a reader with the Close of the stream it reads from.
type readCloser struct {
	io.Reader
	io.Closer
}

// limitReadCloser stops rc after n bytes; n < 0 means no limit.
func limitReadCloser(rc io.ReadCloser, n int64) io.ReadCloser {
	if n < 0 {
		return rc
	}
	return readCloser{Reader: io.LimitReader(rc, n), Closer: rc}
}

// OpenRange implements [RangeOpener] with a section of the file.
func (l *Local) OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if off < 0 {
		return nil, fmt.Errorf("open %s at offset %d: negative offset", key, off)
	}
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
	if n < 0 {
		n = math.MaxInt64 // NewSectionReader clamps off+n
	}
	return readCloser{Reader: io.NewSectionReader(f, off, n), Closer: f}, nil
}
