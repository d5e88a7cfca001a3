package walname

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidName is returned (wrapped) by [Parse] for a name that is none of
// the files a WAL archive holds.
var ErrInvalidName = errors.New("walname: invalid WAL file name")

// TimelineID identifies a timeline (TimeLineID in xlogdefs.h). 0 is invalid.
type TimelineID uint32

// String prints the timeline in decimal, as history file contents and
// PostgreSQL's messages do (file names use hex, see [HistoryName]).
func (t TimelineID) String() string { return strconv.FormatUint(uint64(t), 10) }

// ParseTimelineID parses a decimal timeline id (as in recovery_target_timeline).
func ParseTimelineID(s string) (TimelineID, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("invalid timeline id %q: want a decimal number from 1 to 4294967295", s)
	}
	return TimelineID(v), nil
}

// Kind classifies an archive file name.
type Kind uint8

// File kinds found in a WAL archive.
const (
	KindUnknown         Kind = iota
	KindSegment              // 24 hex digits: a WAL segment
	KindPartial              // <segment>.partial: end of an old timeline, never requested by recovery
	KindBackupHistory        // <segment>.<offset 8 hex>.backup
	KindTimelineHistory      // <tli 8 hex>.history
)

var kindNames = [...]string{"unknown", "segment", "partial", "backup_history", "timeline_history"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Compression is the suffix a backup tool appends to a compressed file,
// without the dot ("" for none).
type Compression string

// Known compression suffixes (pgBackRest, WAL-G, barman-cloud, plain gzip archive_command).
const (
	CompressNone   Compression = ""
	CompressGzip   Compression = "gz"
	CompressLZ4    Compression = "lz4"
	CompressZstd   Compression = "zst"
	CompressBrotli Compression = "br"
	CompressBzip2  Compression = "bz2"
	CompressXZ     Compression = "xz"
	CompressLZMA   Compression = "lzma"
	CompressLZO    Compression = "lzo"
	CompressSnappy Compression = "snappy"
)

var compressions = []Compression{CompressGzip, CompressLZ4, CompressZstd, CompressBrotli,
	CompressBzip2, CompressXZ, CompressLZMA, CompressLZO, CompressSnappy}

// Name is a parsed archive file name.
//
// Grammar (the first 24 characters are upper-case hex, as PostgreSQL
// requires; TTTTTTTT is the timeline, LLLLLLLL and SSSSSSSS the two halves
// of the segment number):
//
//	segment          TTTTTTTTLLLLLLLLSSSSSSSS
//	partial          TTTTTTTTLLLLLLLLSSSSSSSS.partial
//	backup history   TTTTTTTTLLLLLLLLSSSSSSSS.OOOOOOOO.backup   (O: start offset)
//	timeline history TTTTTTTT.history
//
// Segments and partials may carry pgBackRest's "-<40 hex sha1>" suffix, and
// any kind a compression suffix such as ".gz" or ".zst".
type Name struct {
	Kind Kind
	TLI  TimelineID
	// Log and Seg are the two 8-hex halves of the segment number as written;
	// the segment number itself needs the segment size, see [Name.SegNo].
	Log, Seg uint32
	// Offset is the start LSN's offset inside its segment (backup history only).
	Offset uint32
	// Checksum is pgBackRest's SHA-1 of the uncompressed content, lower-case hex, or "".
	Checksum    string
	Compression Compression
}

// Parse classifies and parses a base file name (no directory). Names that
// are no archive file, including lower-case hex names that PostgreSQL would
// never request, return an error wrapping [ErrInvalidName].
func Parse(s string) (Name, error) {
	var n Name
	rest := s
	for _, c := range compressions {
		// No "."+c concatenation: Parse runs per listed file and per
		// segment of a chain walk.
		if k := len(rest) - len(c) - 1; k >= 0 && rest[k] == '.' && rest[k+1:] == string(c) {
			n.Compression = c
			rest = rest[:k]
			break
		}
	}
	if h, ok := strings.CutSuffix(rest, ".history"); ok {
		if len(h) != 8 || !allUpperHex(h) {
			return Name{}, fmt.Errorf("%w %q: a history file is named TTTTTTTT.history with 8 upper-case hex digits", ErrInvalidName, s)
		}
		v, _ := strconv.ParseUint(h, 16, 32)
		if v == 0 {
			return Name{}, fmt.Errorf("%w %q: timeline 0 does not exist", ErrInvalidName, s)
		}
		n.Kind, n.TLI = KindTimelineHistory, TimelineID(v)
		return n, nil
	}
	if len(rest) < 24 || !allUpperHex(rest[:24]) {
		return Name{}, fmt.Errorf("%w %q", ErrInvalidName, s)
	}
	tli, _ := strconv.ParseUint(rest[0:8], 16, 32)
	lg, _ := strconv.ParseUint(rest[8:16], 16, 32)
	sg, _ := strconv.ParseUint(rest[16:24], 16, 32)
	if tli == 0 {
		return Name{}, fmt.Errorf("%w %q: timeline 0 does not exist", ErrInvalidName, s)
	}
	n.TLI, n.Log, n.Seg = TimelineID(tli), uint32(lg), uint32(sg)
	tail := rest[24:]
	switch {
	case tail == "":
		n.Kind = KindSegment
	case tail == ".partial":
		n.Kind = KindPartial
	case len(tail) == 41 && tail[0] == '-' && allLowerHex(tail[1:]):
		n.Kind, n.Checksum = KindSegment, tail[1:]
	case strings.HasPrefix(tail, ".partial-") && len(tail) == 49 && allLowerHex(tail[9:]):
		n.Kind, n.Checksum = KindPartial, tail[9:]
	case len(tail) == 16 && tail[0] == '.' && allUpperHex(tail[1:9]) && tail[9:] == ".backup":
		off, _ := strconv.ParseUint(tail[1:9], 16, 32)
		n.Kind, n.Offset = KindBackupHistory, uint32(off)
	default:
		return Name{}, fmt.Errorf("%w %q", ErrInvalidName, s)
	}
	return n, nil
}

// SegNo returns the segment number for segment size sz, refusing a seg half
// that cannot occur with that size (e.g. ...00000100 with 16 MiB segments).
func (n Name) SegNo(sz SegmentSize) (SegNo, error) {
	if n.Kind == KindTimelineHistory || n.Kind == KindUnknown {
		return 0, fmt.Errorf("%w: %s files have no segment number", ErrInvalidName, n.Kind)
	}
	if err := sz.Validate(); err != nil {
		return 0, fmt.Errorf("segment number of %s: %w", n.Base(), err)
	}
	per := sz.SegmentsPerXLogID()
	if uint64(n.Seg) >= per {
		return 0, fmt.Errorf("%w %s: segment field %08X is not below %d, impossible with %s segments",
			ErrInvalidName, n.Base(), n.Seg, per, sz)
	}
	return SegNo(uint64(n.Log)*per + uint64(n.Seg)), nil
}

// Base returns the name as PostgreSQL knows it, without checksum or
// compression suffix: what restore_command is asked for (for segments and
// history files).
func (n Name) Base() string {
	switch n.Kind {
	case KindTimelineHistory:
		return HistoryName(n.TLI)
	case KindSegment:
		return fmt.Sprintf("%08X%08X%08X", uint32(n.TLI), n.Log, n.Seg)
	case KindPartial:
		return fmt.Sprintf("%08X%08X%08X.partial", uint32(n.TLI), n.Log, n.Seg)
	case KindBackupHistory:
		return fmt.Sprintf("%08X%08X%08X.%08X.backup", uint32(n.TLI), n.Log, n.Seg, n.Offset)
	}
	return ""
}

// SegmentBase returns the 24-hex segment part of a segment, partial or
// backup history name.
func (n Name) SegmentBase() string {
	return fmt.Sprintf("%08X%08X%08X", uint32(n.TLI), n.Log, n.Seg)
}

// SegmentName formats the 24-hex name of segment seg on timeline tli
// (XLogFileName in xlog_internal.h).
func SegmentName(tli TimelineID, seg SegNo, sz SegmentSize) string {
	per := sz.SegmentsPerXLogID()
	// Hand-formatted (%08X%08X%08X): names are built per segment in every
	// plan and report, and fmt dominated warm checks.
	var b [24]byte
	for i, v := range [3]uint32{uint32(tli), uint32(uint64(seg) / per), uint32(uint64(seg) % per)} {
		for j := 7; j >= 0; j-- {
			b[8*i+j] = "0123456789ABCDEF"[v&15]
			v >>= 4
		}
	}
	return string(b[:])
}

// HistoryName formats the history file name of timeline tli (hex!).
func HistoryName(tli TimelineID) string { return fmt.Sprintf("%08X.history", uint32(tli)) }

// BackupHistoryName formats the .backup file name of a backup that started
// at start and stopped on timeline tli (BackupHistoryFileName).
func BackupHistoryName(tli TimelineID, start LSN, sz SegmentSize) string {
	return fmt.Sprintf("%s.%08X.backup", SegmentName(tli, start.Segment(sz), sz), uint32(start.Offset(sz)))
}

// IsSegmentName reports whether s is exactly a 24-hex segment name as
// PostgreSQL passes it to restore_command.
func IsSegmentName(s string) bool { return len(s) == 24 && allUpperHex(s) }

// IsHistoryName reports whether s is exactly a TTTTTTTT.history name.
func IsHistoryName(s string) bool {
	h, ok := strings.CutSuffix(s, ".history")
	return ok && len(h) == 8 && allUpperHex(h) && h != "00000000"
}

func allUpperHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isUpperHex(s[i]) {
			return false
		}
	}
	return true
}

func allLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9') && !('a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
