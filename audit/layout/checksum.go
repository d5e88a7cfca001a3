package layout

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/walaudit/walaudit/audit/codec"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// checksumWorkers bounds the files verified at once: enough to hide a
// remote store's latency, few enough for two cores.
const checksumWorkers = 4

// maxChecksummed bounds the decompressed bytes hashed per file: the largest
// segment size.
const maxChecksummed = int64(walname.MaxSegmentSize)

// verifyChecksums reads every object that carries a pgBackRest SHA-1 in
// its name, decompressed, and reports each whose content differs (or
// cannot be decompressed) as PGBACKREST_CHECKSUM_MISMATCH.
func verifyChecksums(ctx context.Context, st store.Store, objs []*Object) ([]finding.Finding, error) {
	work := make(chan *Object)
	var mu sync.Mutex
	var out []finding.Finding
	var firstErr error
	var wg sync.WaitGroup
	for i := 0; i < checksumWorkers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				f, err := verifyOne(ctx, st, o)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if f != nil {
					out = append(out, *f)
				}
				mu.Unlock()
			}
		}()
	}
	for _, o := range objs {
		if o.Name.Checksum == "" {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		work <- o
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	finding.Sort(out)
	return out, nil
}

// verifyOne hashes one object. A store error is returned; bad content is a
// finding.
func verifyOne(ctx context.Context, st store.Store, o *Object) (*finding.Finding, error) {
	rc, err := st.Open(ctx, o.Key)
	if err != nil {
		return nil, fmt.Errorf("verify checksum of %s: %w", o.Key, err)
	}
	defer rc.Close()
	mismatch := func(msg string) *finding.Finding {
		return &finding.Finding{Severity: finding.Error, Code: CodeChecksumMismatch, File: o.Key, Timeline: o.Name.TLI,
			Message: msg, Hint: "the stored file was damaged after pgBackRest archived it: recovery through it fails or replays wrong data; restore it from another repository (repo2) or a copy"}
	}
	undecodable := func(err error) (*finding.Finding, error) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !isContent(err) {
			return nil, fmt.Errorf("verify checksum of %s: %w", o.Key, err) // the store failed, not the file
		}
		return mismatch(fmt.Sprintf("%s cannot be decompressed to check its SHA-1 %s: %v", o.Name.Base(), o.Name.Checksum, err)), nil
	}
	dec, _, err := codec.Open(rc, o.Name.Compression)
	if err != nil {
		return undecodable(err)
	}
	defer dec.Close()
	h := sha1.New()
	if _, err := io.Copy(h, codec.LimitReader(dec, maxChecksummed)); err != nil {
		return undecodable(err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != o.Name.Checksum {
		return mismatch(fmt.Sprintf("content of %s has SHA-1 %s, not %s as its name says", o.Name.Base(), got, o.Name.Checksum)), nil
	}
	return nil, nil
}

// isContent reports errors about a file's bytes (damaged or mislabelled
// compression, too long), as opposed to a store that failed.
func isContent(err error) bool {
	return errors.Is(err, codec.ErrCorrupt) || errors.Is(err, codec.ErrMismatch) || errors.Is(err, codec.ErrUnsupported) ||
		errors.Is(err, codec.ErrTooLarge) || errors.Is(err, io.ErrUnexpectedEOF)
}
