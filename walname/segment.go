package walname

import (
	"errors"
	"fmt"
)

// ErrInvalidSegmentSize is returned (wrapped) by [SegmentSize.Validate].
var ErrInvalidSegmentSize = errors.New("walname: invalid WAL segment size")

// SegNo is a segment number: LSN / segment size (XLogSegNo).
type SegNo uint64

// SegmentSize is wal_segment_size in bytes, fixed at initdb: a power of two
// from 1 MiB to 1 GiB. It is a value passed along, never a global, so one
// process can audit clusters of different sizes.
type SegmentSize uint32

// Common segment sizes.
const (
	MinSegmentSize     SegmentSize = 1 << 20
	DefaultSegmentSize SegmentSize = 16 << 20
	MaxSegmentSize     SegmentSize = 1 << 30
)

// Validate reports whether sz is a size PostgreSQL accepts.
func (sz SegmentSize) Validate() error {
	if sz < MinSegmentSize || sz > MaxSegmentSize || sz&(sz-1) != 0 {
		return fmt.Errorf("%w %d: must be a power of two from 1 MiB to 1 GiB", ErrInvalidSegmentSize, uint32(sz))
	}
	return nil
}

// SegmentsPerXLogID is how many segments share one "log" half of a file name
// (0x100000000 / size).
func (sz SegmentSize) SegmentsPerXLogID() uint64 { return (1 << 32) / uint64(sz) }

// StartLSN is the LSN of the first byte of segment seg.
func (sz SegmentSize) StartLSN(seg SegNo) LSN { return LSN(uint64(seg) * uint64(sz)) }

// String prints the size in MiB, e.g. "16MB", as PostgreSQL's SHOW does.
func (sz SegmentSize) String() string {
	if sz >= 1<<20 && sz%(1<<20) == 0 {
		return fmt.Sprintf("%dMB", uint32(sz)>>20)
	}
	return fmt.Sprintf("%dB", uint32(sz))
}
