// Package store reads archive objects from where they live. A Store is
// read-only by construction: it has no method that writes, copies or
// deletes, so walaudit cannot alter an archive by accident.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// ErrNotExist is wrapped by every store's error for an object that does not exist.
var ErrNotExist = errors.New("store: object does not exist")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	// Key is the object's path relative to the store root, with forward slashes.
	Key     string
	Size    int64
	ModTime time.Time
}

// Store is a read-only view of an archive location.
type Store interface {
	// List calls fn exactly once for each object whose key starts with
	// prefix, on the caller's goroutine, in no guaranteed order. An error
	// from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Stat returns the object's metadata, or an error wrapping ErrNotExist.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Open returns the object's content; the caller closes it. A missing
	// object gives an error wrapping ErrNotExist.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// String names the location for messages, without credentials.
	String() string
}

// IsNotExist reports whether err says an object does not exist.
func IsNotExist(err error) bool { return errors.Is(err, ErrNotExist) }

// Opener constructs a Store for a URL with a given scheme.
type Opener func(ctx context.Context, u *url.URL) (Store, error)

var openers = map[string]Opener{}

// Register makes a scheme available to [Open]. It is meant to be called
// from init functions of store implementations.
func Register(scheme string, o Opener) { openers[scheme] = o }

// Open resolves an archive location: a plain path, file:///path, or a URL
// whose scheme a store implementation registered (s3://bucket/prefix).
func Open(ctx context.Context, location string) (Store, error) {
	if location == "" {
		return nil, errors.New("no archive location given")
	}
	if i := strings.Index(location, "://"); i > 0 {
		u, err := url.Parse(location)
		if err != nil {
			return nil, fmt.Errorf("parse archive URL %q: %w", location, err)
		}
		if u.Scheme == "file" {
			if u.Host != "" && u.Host != "localhost" {
				return nil, fmt.Errorf("file URL %q names host %q: use file:///absolute/path", location, u.Host)
			}
			return NewLocal(u.Path)
		}
		o, ok := openers[u.Scheme]
		if !ok {
			return nil, fmt.Errorf("unsupported archive URL scheme %q in %q: use a directory path, file:// or s3://", u.Scheme, location)
		}
		return o(ctx, u)
	}
	return NewLocal(filepath.Clean(location))
}
