package audit

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// ErrNotInArchive is wrapped by [FetchWAL] when the archive provably does
// not hold the file: restore_command may then say "not found".
var ErrNotInArchive = errors.New("audit: file not in archive")

// FetchWAL opens the WAL file name (a 24-hex segment or TTTTTTTT.history
// name, as PostgreSQL passes %f) from a plain archive, in whatever stored
// form it has (plain first, then compressed), decompressed and bounded to
// the segment size. It returns the key it read. A name that no stored
// form answers gives an error wrapping [ErrNotInArchive]; any other error
// (a store that could not be asked) is transient or fatal, never "absent".
func FetchWAL(ctx context.Context, st store.Store, name string, sz walname.SegmentSize) (io.ReadCloser, string, error) {
	if !walname.IsSegmentName(name) && !walname.IsHistoryName(name) {
		return nil, "", fmt.Errorf("refusing %q: not a WAL segment or timeline history file name", name)
	}
	suffixes := []walname.Compression{walname.CompressNone, walname.CompressGzip, walname.CompressLZ4, walname.CompressZstd,
		walname.CompressBzip2, walname.CompressXZ, walname.CompressBrotli, walname.CompressLZMA, walname.CompressLZO, walname.CompressSnappy}
	for _, c := range suffixes {
		key := name
		if c != walname.CompressNone {
			key += "." + string(c)
		}
		if _, err := st.Stat(ctx, key); err != nil {
			if store.IsNotExist(err) {
				continue
			}
			return nil, "", fmt.Errorf("look up %s in %s: %w", key, st, err)
		}
		limit := int64(sz)
		if sz == 0 {
			limit = int64(walname.MaxSegmentSize)
		}
		if walname.IsHistoryName(name) {
			limit = maxMetaFile
		}
		rc, err := openDecompressed(ctx, st, key, c, limit)
		if err != nil {
			return nil, key, err
		}
		return rc, key, nil
	}
	return nil, "", fmt.Errorf("%s in %s: %w", name, st, ErrNotInArchive)
}
