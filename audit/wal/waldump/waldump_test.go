package waldump

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := "rmgr: Transaction len (rec/tot):     34/    34, tx:        731, lsn: 0/01000060, prev 0/01000028, desc: COMMIT 2026-11-21 01:59:09.16282 UTC\n"
	lines, err := Parse(strings.NewReader(in))
	if err != nil || len(lines) != 1 {
		t.Fatalf("%v %v", lines, err)
	}
	l := lines[0]
	if l.Rmgr != "Transaction" || l.RecLen != 34 || l.TotLen != 34 || l.XID != 731 || l.LSN != 0x1000060 || l.Prev != 0x1000028 || !strings.HasPrefix(l.Desc, "COMMIT ") {
		t.Fatalf("%+v", l)
	}
	if _, err := Parse(strings.NewReader(in + "pg_waldump: error: could not find file\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a foreign line must be an error naming it: %v", err)
	}
}
