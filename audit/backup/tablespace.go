package backup

import (
	"fmt"
	"strconv"
	"strings"
)

// TablespaceEntry is one user tablespace of a backup: a line of
// tablespace_map, or (plain format) a pg_tblspc/<oid> link.
type TablespaceEntry struct {
	OID uint32 `json:"oid"`
	// Path is the tablespace location on the server that was backed up
	// (tablespace_map), or the link target in a plain backup; "" for an
	// in-place tablespace directory.
	Path string `json:"path"`
}

// ParseTablespaceMap parses a tablespace_map file: one "<oid> <path>" line
// per tablespace, where a backslash in the path escapes the next character
// (PostgreSQL escapes backslash, CR and LF this way). The path may contain
// and even start with blanks; only the first blank separates. Like
// PostgreSQL's read_tablespace_map, an unterminated last line is an error.
func ParseTablespaceMap(data []byte) ([]TablespaceEntry, error) {
	var out []TablespaceEntry
	var cur []byte
	line := 1
	escaped := false
	for _, c := range data {
		switch {
		case !escaped && (c == '\n' || c == '\r'):
			if len(cur) == 0 {
				if c == '\n' {
					line++
				}
				continue // CR LF, or an empty line
			}
			e, err := parseTablespaceLine(string(cur))
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrInvalidTablespaceMap, line, err)
			}
			out = append(out, e)
			cur = cur[:0]
			if c == '\n' {
				line++
			}
		case !escaped && c == '\\':
			escaped = true
		default:
			cur = append(cur, c)
			escaped = false
		}
	}
	if len(cur) != 0 || escaped {
		return nil, fmt.Errorf("%w: line %d: last line not terminated", ErrInvalidTablespaceMap, line)
	}
	return out, nil
}

func parseTablespaceLine(s string) (TablespaceEntry, error) {
	oid, path, ok := strings.Cut(s, " ")
	if !ok || oid == "" || path == "" {
		return TablespaceEntry{}, fmt.Errorf("%q: want \"<oid> <path>\"", clip(s))
	}
	v, err := strconv.ParseUint(oid, 10, 32)
	if err != nil || v == 0 {
		return TablespaceEntry{}, fmt.Errorf("tablespace oid %q is not a number from 1 to 4294967295", clip(oid))
	}
	return TablespaceEntry{OID: uint32(v), Path: path}, nil
}
