package walname

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidLSN is returned (wrapped) by [ParseLSN] for text that is not an
// LSN in PostgreSQL's X/Y form.
var ErrInvalidLSN = errors.New("walname: invalid LSN")

// LSN is a byte position in the WAL stream (XLogRecPtr, src/include/access/xlogdefs.h).
// 0 is invalid: no record ever starts there.
type LSN uint64

// InvalidLSN is the zero LSN, which PostgreSQL uses for "none".
const InvalidLSN LSN = 0

// ParseLSN parses PostgreSQL's text form "HI/LO": two groups of 1 to 8 hex
// digits, either case, separated by a slash. Anything else, including
// surrounding blanks or trailing garbage, is refused.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("%w %q: want X/Y, e.g. 0/16B3748", ErrInvalidLSN, s)
	}
	h, err1 := parseHex32(hi)
	l, err2 := parseHex32(lo)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%w %q: each half must be 1 to 8 hex digits", ErrInvalidLSN, s)
	}
	return LSN(uint64(h)<<32 | uint64(l)), nil
}

// parseHex32 accepts exactly 1..8 hex digits; strconv alone would also take
// a sign, underscores or a 0x prefix.
func parseHex32(s string) (uint32, error) {
	if len(s) == 0 || len(s) > 8 {
		return 0, ErrInvalidLSN
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return 0, ErrInvalidLSN
		}
	}
	v, err := strconv.ParseUint(s, 16, 32)
	return uint32(v), err
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func isUpperHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('A' <= c && c <= 'F')
}

// String formats the LSN as PostgreSQL prints it: upper-case hex halves
// without leading zeros, e.g. "0/A002E8".
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}

// MarshalText implements encoding.TextMarshaler so that JSON carries "X/Y".
func (l LSN) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *LSN) UnmarshalText(b []byte) error {
	v, err := ParseLSN(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Segment is the number of the segment holding the byte at l ("face value").
func (l LSN) Segment(sz SegmentSize) SegNo { return SegNo(uint64(l) / uint64(sz)) }

// EndSegment is the segment holding the last byte before l, the rule
// PostgreSQL applies to end pointers (XLByteToPrevSeg, pg_walfile_name):
// an end LSN exactly on a segment boundary belongs to the previous segment.
func (l LSN) EndSegment(sz SegmentSize) SegNo {
	if l == 0 {
		return 0
	}
	return SegNo((uint64(l) - 1) / uint64(sz))
}

// Offset is the byte offset of l inside its segment.
func (l LSN) Offset(sz SegmentSize) uint64 { return uint64(l) % uint64(sz) }

// Align rounds l up to the next multiple of 8 (MAXALIGN), where the next
// record starts.
func (l LSN) Align() LSN { return (l + 7) &^ 7 }
