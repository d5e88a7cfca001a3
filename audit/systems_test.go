package audit_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// writeSegments writes 1 MiB segments on timeline 1 whose long page
// headers carry the given system identifiers (0: an unreadable first page).
func writeSegments(t *testing.T, dir string, first walname.SegNo, ids []uint64) {
	t.Helper()
	sz := walname.SegmentSize(1 << 20)
	for i, id := range ids {
		buf := make([]byte, sz)
		if id != 0 {
			binary.LittleEndian.PutUint16(buf[0:], 0xD110) // PostgreSQL 15
			binary.LittleEndian.PutUint16(buf[2:], 0x0002) // XLP_LONG_HEADER
			binary.LittleEndian.PutUint32(buf[4:], 1)
			binary.LittleEndian.PutUint64(buf[8:], uint64(sz.StartLSN(first+walname.SegNo(i))))
			binary.LittleEndian.PutUint64(buf[24:], id)
			binary.LittleEndian.PutUint32(buf[32:], uint32(sz))
			binary.LittleEndian.PutUint32(buf[36:], 8192)
		}
		name := walname.SegmentName(1, first+walname.SegNo(i), sz)
		if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindSystems(t *testing.T) {
	const a, b = 7000000000000000001, 7000000000000000002
	cases := []struct {
		name string
		ids  []uint64
		want string
	}{
		{"one system", []uint64{a, a, a, a, a}, "[a 1-5]"},
		{"upgrade", []uint64{a, a, a, a, a, a, a, b, b, b}, "[a 1-7 b 8-10]"},
		{"upgrade at the second segment", []uint64{a, b, b, b, b, b, b, b}, "[a 1-1 b 2-8]"},
		{"unreadable files around the boundary", []uint64{a, a, a, 0, 0, b, b}, "[a 1-5 b 6-7]"},
		{"unreadable first and last", []uint64{0, a, a, b, 0}, "[a 1-3 b 4-5]"},
		// A lone foreign file inside one system's run is the WAL checks' to
		// report (WAL_FOREIGN_SEGMENT), not a system of its own.
		{"foreign file inside a run", []uint64{a, a, b, a, a, a, a, a, a}, "[a 1-9]"},
		{"nothing readable", []uint64{0, 0}, "[]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeSegments(t, dir, 1, c.ids)
			st, err := store.Open(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			inv, err := audit.Scan(context.Background(), st, audit.ScanOptions{SegmentSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			sys, err := inv.FindSystems(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range sys.Ranges {
				n := map[uint64]string{a: "a", b: "b"}[r.SystemID]
				got = append(got, fmt.Sprintf("%s %d-%d", n, r.First, r.Last))
			}
			if s := fmt.Sprint(got); s != fmt.Sprint(splitWant(c.want)) {
				t.Fatalf("ranges %s, want %s", s, c.want)
			}
			if multi := len(sys.IDs()) > 1; multi != sys.Multiple() {
				t.Fatalf("Multiple %v with ids %v", sys.Multiple(), sys.IDs())
			}
		})
	}
}

// splitWant turns "[a 1-7 b 8-10]" into the pairs the test prints.
func splitWant(s string) []string {
	var out []string
	w := strings.Fields(strings.Trim(s, "[]"))
	for i := 0; i+1 < len(w); i += 2 {
		out = append(out, w[i]+" "+w[i+1])
	}
	return out
}
