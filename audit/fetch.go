package audit

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/walaudit/walaudit/audit/layout"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// ErrNotInArchive is wrapped by [FetchWAL] when the archive provably does
// not hold the file: restore_command may then say "not found".
var ErrNotInArchive = errors.New("audit: file not in archive")

// FetchWAL opens the WAL file name (a 24-hex segment or TTTTTTTT.history
// name, as PostgreSQL passes %f) from the archive, whose layout is
// detected, in whatever stored form it has (plain first, then compressed),
// decompressed and bounded to the segment size. It returns the key it
// read. A name that no stored form answers gives an error wrapping
// [ErrNotInArchive]; any other error (a store that could not be asked, an
// encrypted repository) is transient or fatal, never "absent".
func FetchWAL(ctx context.Context, st store.Store, name string, sz walname.SegmentSize) (io.ReadCloser, string, error) {
	return FetchWALWith(ctx, st, name, sz, ScanOptions{})
}

// FetchWALWith is [FetchWAL] with the layout options of opts (Layout,
// Stanza, ArchiveID; the rest is ignored). Forcing the layout saves the
// detection's listings on every call.
func FetchWALWith(ctx context.Context, st store.Store, name string, sz walname.SegmentSize, opts ScanOptions) (io.ReadCloser, string, error) {
	if !walname.IsSegmentName(name) && !walname.IsHistoryName(name) {
		return nil, "", fmt.Errorf("refusing %q: not a WAL segment or timeline history file name", name)
	}
	lo := opts.layoutOptions()
	lo.VerifyChecksums = false
	locs, _, err := layout.Locate(ctx, st, name, lo)
	if err != nil {
		return nil, "", err
	}
	if len(locs) == 0 {
		return nil, "", fmt.Errorf("%s in %s: %w", name, st, ErrNotInArchive)
	}
	loc := locs[0]
	limit := int64(sz)
	if sz == 0 {
		limit = int64(walname.MaxSegmentSize)
	}
	if walname.IsHistoryName(name) {
		limit = maxMetaFile
	}
	rc, err := openDecompressed(ctx, st, loc.Key, loc.Compression, limit)
	if err != nil {
		// Even a file removed since the look-up is no proof of absence
		// here: the caller retries, and the next look-up decides.
		return nil, loc.Key, err
	}
	return rc, loc.Key, nil
}
