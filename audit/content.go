package audit

import (
	"errors"

	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/walname"
)

// Finding codes for damaged WAL content, shared by check and inspect.
const (
	CodeCorrupt            = "WAL_CORRUPT" // damage without a more specific code
	CodeForeignSegment     = "WAL_FOREIGN_SEGMENT"
	CodeTruncated          = "SEGMENT_TRUNCATED"
	CodeWrongSize          = "SEGMENT_WRONG_SIZE"
	CodeUnsupportedVersion = "WAL_UNSUPPORTED_VERSION"
	CodeBadMagic           = "WAL_BAD_MAGIC"
	CodeBadPageAddr        = "WAL_BAD_PAGEADDR"
	CodeCRCMismatch        = "WAL_CRC_MISMATCH"
	CodePrevLink           = "WAL_PREV_LINK"
	CodeTornRecord         = "WAL_TORN_RECORD"
	CodeBadPayload         = "WAL_BAD_PAYLOAD"
)

// ContentFinding turns a WAL content problem into an error finding naming
// the file, byte offset and LSN, with a stable code per kind of damage and
// what to do about it.
func ContentFinding(file string, ce *wal.ContentError, tli walname.TimelineID) finding.Finding {
	code, hint := CodeCorrupt, "PostgreSQL stops recovery at invalid WAL: restore an intact copy of this segment"
	switch err := ce.Err; {
	case errors.Is(err, wal.ErrUnsupportedVersion):
		code, hint = CodeUnsupportedVersion, "walaudit reads WAL of PostgreSQL 13 to 18"
	case errors.Is(err, wal.ErrTruncated):
		code, hint = CodeTruncated, "PostgreSQL refuses a restored segment of the wrong size: restore a complete copy"
	case errors.Is(err, wal.ErrTrailingData):
		code, hint = CodeWrongSize, "PostgreSQL refuses a restored segment of the wrong size: restore an intact copy"
	case errors.Is(err, wal.ErrSysID):
		code, hint = CodeForeignSegment, "this file belongs to another cluster (different system identifier): find this cluster's own copy"
	case errors.Is(err, wal.ErrBadMagic):
		code, hint = CodeBadMagic, "this page is not WAL (overwritten or foreign data): restore an intact copy"
	case errors.Is(err, wal.ErrBadPageAddr):
		code, hint = CodeBadPageAddr, "a misnamed file, or a recycled segment that was not completely rewritten"
	case errors.Is(err, wal.ErrChecksum):
		code, hint = CodeCRCMismatch, "the record was damaged after it was written: restore an intact copy of this segment"
	case errors.Is(err, wal.ErrPrevLink):
		code, hint = CodePrevLink, "the record does not follow the previous one: stale or mixed-up data"
	case errors.Is(err, wal.ErrTornRecord):
		code, hint = CodeTornRecord, "a record whose continuation was never written (a crash while writing it) or was lost"
	case errors.Is(err, wal.ErrPayload):
		code, hint = CodeBadPayload, "the record's CRC is valid but its content does not decode: report it with the file"
	}
	if file == "" {
		file = ce.File
	}
	f := finding.Finding{Severity: finding.Error, Code: code, File: file, LSN: ce.LSN, Timeline: tli, Message: ce.Err.Error(), Hint: hint}
	if file != "" {
		f = f.At(ce.Offset)
	}
	return f
}
