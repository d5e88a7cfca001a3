package wal

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/walaudit/walaudit/walname"
)

// SegmentSource supplies segment files to a [Reader].
type SegmentSource interface {
	// OpenSegment opens the file holding segment seg. The caller decides
	// which timeline's copy that is. name is the file name used in error
	// messages (its timeline, if it parses as a segment name, bounds the
	// page timelines). For a file that does not exist it returns an error
	// wrapping [ErrSegmentMissing]; any other error aborts the read. The
	// reader closes r.
	OpenSegment(ctx context.Context, seg walname.SegNo) (r io.ReadCloser, name string, err error)
}

// Options configure a [Reader] and [ScanSegment]. The zero value learns
// everything from the WAL.
type Options struct {
	// SystemID is the expected database system identifier; 0 learns it
	// from the first long page header and then requires it everywhere.
	SystemID uint64
	// SegmentSize is the WAL segment size. [ScanSegment] learns it from
	// the long header when 0; [NewReader] needs it to number segments.
	SegmentSize walname.SegmentSize
	// BlockSize is BLCKSZ, the data page size, for full-page image checks;
	// 0 means [DefaultBlockSize].
	BlockSize uint32
	// AllowedTLI, when set, is asked about every page read: a false answer
	// stops the read with [ErrTimeline]. Use it to require page timelines
	// to belong to the recovery target's history at that LSN.
	AllowedTLI func(tli walname.TimelineID, page walname.LSN) bool
}

func (o *Options) validate() error {
	if o.SegmentSize != 0 {
		if err := o.SegmentSize.Validate(); err != nil {
			return err
		}
	}
	if o.BlockSize != 0 && (o.BlockSize < 1024 || o.BlockSize > 32768 || o.BlockSize&(o.BlockSize-1) != 0) {
		return fmt.Errorf("invalid block size %d: must be a power of two from 1 kB to 32 kB", o.BlockSize)
	}
	return nil
}

// Reader yields the records of a WAL stream in order, starting at a record
// start and pulling segments from a [SegmentSource] as it crosses into
// them. It is not safe for concurrent use.
//
//	r, err := wal.NewReader(ctx, src, redo, wal.Options{SegmentSize: sz})
//	...
//	defer r.Close()
//	for r.Next() {
//		rec := r.Record()
//		...
//	}
//	if wal.IsEndOfWAL(r.Err()) { ... } // clean end at r.EndOfWAL()
type Reader struct {
	s    stream
	err  error
	done bool
}

// NewReader returns a reader starting at start, which must be a record
// start (e.g. a checkpoint's redo pointer or a record's EndLSN) or the
// first byte of a page: then reading begins at the first record that
// starts on or after that page, skipping the tail of a record continued
// from earlier pages (so a segment's start LSN reads its first record).
// opts.SegmentSize is required. The reader keeps ctx for the calls to
// src.
func NewReader(ctx context.Context, src SegmentSource, start walname.LSN, opts Options) (*Reader, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.SegmentSize == 0 {
		return nil, errors.New("wal reader needs the segment size to number segments; learn it with ScanSegment or DecodePageHeader")
	}
	if start == 0 || uint64(start)%MaxAlign != 0 {
		return nil, fmt.Errorf("%w: %s is not a multiple of %d", ErrStartLSN, start, MaxAlign)
	}
	r := &Reader{s: stream{
		ctx:      ctx,
		src:      src,
		opts:     opts,
		segSize:  uint64(opts.SegmentSize),
		sysID:    opts.SystemID,
		buf:      make([]byte, chunkSize),
		next:     start,
		skipCont: true,
	}}
	return r, nil
}

// Next reads the next record. It returns false when reading stops; then
// [Reader.Err] says why and [Reader.EndOfWAL] where.
func (r *Reader) Next() bool {
	if r.err != nil || r.done {
		return false
	}
	err := r.s.readRecord()
	if err == nil {
		return true
	}
	if IsEndOfWAL(err) {
		// A benign end still needs a segment of the right size: recovery
		// refuses a short file before reading any of it.
		if serr := r.s.closeSegment(true); serr != nil {
			err = serr
		}
	}
	r.s.closeSegment(false)
	r.err = err
	return false
}

// Record returns the record read by the last successful [Reader.Next]. The
// record and the slices in it (Raw, MainData, Blocks) are valid only until
// the next call to Next.
func (r *Reader) Record() *Record { return &r.s.rec }

// Err returns why reading stopped: nil while reading, otherwise a
// *[ContentError] for WAL content ([IsEndOfWAL] tells a clean end from
// damage), the context's error, or an error from the source or a read.
func (r *Reader) Err() error { return r.err }

// EndOfWAL is where the record after the last one returned starts
// (PostgreSQL's EndRecPtr), or the start position before any record was
// read. When reading has stopped, this is where recovery would stop.
func (r *Reader) EndOfWAL() walname.LSN { return r.s.next }

// Major is the PostgreSQL major version of the WAL, 0 before the first
// page was read.
func (r *Reader) Major() int {
	if r.s.lay == nil {
		return 0
	}
	return r.s.lay.major
}

// SystemID is the database system identifier expected or learned, 0 before
// the first page was read.
func (r *Reader) SystemID() uint64 { return r.s.sysID }

// Close releases the open segment, if any. Reading stops; Close is safe to
// call more than once.
func (r *Reader) Close() error {
	r.done = true
	return r.s.closeSegment(false)
}
