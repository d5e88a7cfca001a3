package wal

import (
	"errors"
	"fmt"

	"github.com/walaudit/walaudit/walname"
)

// Sentinel errors. Test for them with errors.Is; the reader wraps them in a
// [ContentError] that says where the problem is.
var (
	// ErrUnsupportedVersion: the page magic belongs to a PostgreSQL release
	// this package does not decode (12 and older, or newer than 18).
	ErrUnsupportedVersion = errors.New("walaudit/wal: unsupported WAL version")
	// ErrBadMagic: a page header whose magic is not the expected one, as in
	// a page of foreign or random data.
	ErrBadMagic = errors.New("walaudit/wal: invalid page magic")
	// ErrPageFlags: xlp_info has bits outside XLP_ALL_FLAGS, or the first
	// page of a segment lacks the long header.
	ErrPageFlags = errors.New("walaudit/wal: invalid page info bits")
	// ErrBadPageAddr: xlp_pageaddr is not the page's own position, typical
	// of a recycled segment that was not fully rewritten, or a misnamed file.
	ErrBadPageAddr = errors.New("walaudit/wal: unexpected page address")
	// ErrSysID: a long page header carries another database system identifier.
	ErrSysID = errors.New("walaudit/wal: WAL file is from a different database system")
	// ErrSegmentSize: xlp_seg_size is invalid or differs from the expected size.
	ErrSegmentSize = errors.New("walaudit/wal: unexpected segment size in page header")
	// ErrPageSize: xlp_xlog_blcksz is invalid or differs from earlier segments.
	ErrPageSize = errors.New("walaudit/wal: unexpected WAL page size in page header")
	// ErrTimeline: a page timeline went backwards, is newer than the file
	// name's timeline, or was refused by [Options.AllowedTLI].
	ErrTimeline = errors.New("walaudit/wal: unexpected page timeline")
	// ErrStartLSN: the position to read from cannot be a record start.
	ErrStartLSN = errors.New("walaudit/wal: invalid record start position")
	// ErrContRecord: continuation bookkeeping is inconsistent (xlp_rem_len
	// does not match the record, or a continuation appears where a record
	// should start).
	ErrContRecord = errors.New("walaudit/wal: invalid continuation record")
	// ErrTornRecord: a record's continuation is missing: the next page is
	// zeroed or starts something else. This is what a crash in the middle
	// of writing a multi-page record leaves behind.
	ErrTornRecord = errors.New("walaudit/wal: torn record")
	// ErrRecordLength: xl_tot_len is below the header size or above the
	// largest record PostgreSQL writes.
	ErrRecordLength = errors.New("walaudit/wal: invalid record length")
	// ErrRmID: xl_rmid is not a resource manager of the WAL's version.
	ErrRmID = errors.New("walaudit/wal: invalid resource manager id")
	// ErrPrevLink: xl_prev is not the previous record's start.
	ErrPrevLink = errors.New("walaudit/wal: record with incorrect prev-link")
	// ErrChecksum: the record CRC-32C does not match its contents.
	ErrChecksum = errors.New("walaudit/wal: record checksum mismatch")
	// ErrRecordFormat: the fragment headers of a record are inconsistent
	// (block ids, lengths, image flags).
	ErrRecordFormat = errors.New("walaudit/wal: invalid record body")
	// ErrOverwrite: an XLP_FIRST_IS_OVERWRITE_CONTRECORD page does not start
	// with the XLOG_OVERWRITE_CONTRECORD record naming the abandoned record.
	ErrOverwrite = errors.New("walaudit/wal: overwritten contrecord mismatch")
	// ErrPayload: the main data of an XLOG or Transaction record does not
	// have the layout its opcode and version call for.
	ErrPayload = errors.New("walaudit/wal: invalid record payload")
	// ErrTruncated: the segment file is shorter than the segment size.
	// PostgreSQL refuses such a restored file (FATAL "has wrong size").
	ErrTruncated = errors.New("walaudit/wal: segment file is truncated")
	// ErrTrailingData: the segment file is longer than the segment size.
	ErrTrailingData = errors.New("walaudit/wal: segment file is longer than the segment size")
	// ErrZeroTail: zeroed space where a record or page should start. This is
	// the normal end of WAL that was never written (benign).
	ErrZeroTail = errors.New("walaudit/wal: zeroed space, end of WAL")
	// ErrSegmentMissing: the next segment is not available. A
	// [SegmentSource] returns an error wrapping it for a file that does not
	// exist (benign: the archive simply ends there).
	ErrSegmentMissing = errors.New("walaudit/wal: WAL segment missing")
)

// IsEndOfWAL reports whether err marks a benign end of WAL: zeroed space
// where a record should start ([ErrZeroTail]) or a next segment that does
// not exist ([ErrSegmentMissing]). Every other content error is damage,
// although PostgreSQL's recovery stops at it in the same way.
func IsEndOfWAL(err error) bool {
	return errors.Is(err, ErrZeroTail) || errors.Is(err, ErrSegmentMissing)
}

// ContentError locates a problem in WAL content. Err wraps one of the
// sentinels above.
type ContentError struct {
	// File is the segment file name as the source named it; empty when no
	// file could be opened.
	File string
	// Offset is the byte offset in File.
	Offset int64
	// LSN is the WAL position of the problem.
	LSN walname.LSN
	// Err is the cause; it wraps one of the sentinels.
	Err error
}

// Error formats the problem with its place: "corrupt WAL in FILE at
// offset N (lsn X/Y): cause", or "end of WAL ..." for benign ends and
// "unsupported WAL ..." for other versions.
func (e *ContentError) Error() string {
	what := "corrupt WAL"
	switch {
	case IsEndOfWAL(e.Err):
		what = "end of WAL"
	case errors.Is(e.Err, ErrUnsupportedVersion):
		what = "unsupported WAL"
	}
	if e.File == "" {
		return fmt.Sprintf("%s at lsn %s: %v", what, e.LSN, e.Err)
	}
	return fmt.Sprintf("%s in %s at offset %d (lsn %s): %v", what, e.File, e.Offset, e.LSN, e.Err)
}

// Unwrap returns the cause.
func (e *ContentError) Unwrap() error { return e.Err }

// detailError carries a specific message while matching its sentinel, so
// that messages read "record CRC mismatch: got ..." rather than repeating
// the sentinel text.
type detailError struct {
	kind error
	msg  string
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &detailError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
