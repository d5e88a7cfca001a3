package audit

import (
	"context"
	"io"
	"os"

	"github.com/walaudit/walaudit/audit/codec"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/walname"
)

// PlainHead reads the first bytes of f, a file without a compression
// suffix, when its content is not compressed either (as codec.Open sniffs
// it): then they are the first bytes of the content. ok is false when the
// content needs codec.Open, or the read failed (codec.Open reports it).
func PlainHead(f *os.File) (head []byte, ok bool) {
	buf := make([]byte, wal.LongPageHeaderSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return nil, false
	}
	// Magics are shorter than a page header: Sniff decides on these bytes
	// as codec.Open does on its shorter peek.
	if c, _ := codec.Sniff(buf[:n]); c != codec.None {
		return nil, false
	}
	return buf[:n], true
}

// OpenPlainFile returns the local file of an object that [Inventory.Open]
// would pass through unchanged (a local store, no compression suffix, no
// compressed content under the plain name), so that it can be scanned in
// place with [wal.ScanSegmentFile] instead of copied through a reader; nil
// otherwise (use Open then).
func (inv *Inventory) OpenPlainFile(ctx context.Context, o *Object) *os.File {
	if inv.Encrypted != "" || o.Name.Compression != walname.CompressNone {
		return nil
	}
	if _, ok := inv.Store.(*store.Local); !ok {
		return nil
	}
	rc, err := inv.Store.Open(ctx, o.Key)
	if err != nil {
		return nil
	}
	f, ok := rc.(*os.File)
	if !ok {
		rc.Close()
		return nil
	}
	if _, ok := PlainHead(f); !ok {
		f.Close()
		return nil
	}
	return f
}
