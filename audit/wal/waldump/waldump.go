// Package waldump reads the record lines pg_waldump prints, so that tests
// and benchmarks can compare walaudit's decoding with PostgreSQL's own
// tool on the same segments.
package waldump

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"

	"github.com/walaudit/walaudit/walname"
)

// Line is one record as pg_waldump printed it.
type Line struct {
	Rmgr           string
	RecLen, TotLen int
	XID            uint32
	LSN, Prev      walname.LSN
	Desc           string
}

var lineRE = regexp.MustCompile(`^rmgr: (\S+)\s+len \(rec/tot\):\s*(\d+)/\s*(\d+), tx:\s*(\d+), lsn: ([0-9A-F]+/[0-9A-F]+), prev ([0-9A-F]+/[0-9A-F]+), desc: (.*)$`)

// Parse reads pg_waldump's output, one record per line; any other line is
// an error naming it.
func Parse(r io.Reader) ([]Line, error) {
	var out []Line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			return nil, fmt.Errorf("line %d: not a pg_waldump record line: %q", n, sc.Text())
		}
		l := Line{Rmgr: m[1], Desc: m[7]}
		l.RecLen, _ = strconv.Atoi(m[2])
		l.TotLen, _ = strconv.Atoi(m[3])
		x, _ := strconv.ParseUint(m[4], 10, 32)
		l.XID = uint32(x)
		var err error
		if l.LSN, err = walname.ParseLSN(m[5]); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if l.Prev, err = walname.ParseLSN(m[6]); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

// ParseFile parses a file of pg_waldump output; an empty file is an error.
func ParseFile(path string) ([]Line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lines, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s: no pg_waldump record lines", path)
	}
	return lines, nil
}
