package layout

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/pierrec/lz4/v4"

	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

const (
	testSysID = 7710451828975925204
	testSeg   = walname.SegmentSize(1 << 20)
)

// segment returns a 1 MiB segment whose first page has a valid long
// header (the rest is zeroes: enough for layout tests, which never decode
// records).
func segment(tli walname.TimelineID, seg walname.SegNo) []byte {
	b := make([]byte, testSeg)
	binary.LittleEndian.PutUint16(b[0:], 0xD110)
	binary.LittleEndian.PutUint16(b[2:], 0x0002)
	binary.LittleEndian.PutUint32(b[4:], uint32(tli))
	binary.LittleEndian.PutUint64(b[8:], uint64(testSeg.StartLSN(seg)))
	binary.LittleEndian.PutUint64(b[24:], testSysID)
	binary.LittleEndian.PutUint32(b[32:], uint32(testSeg))
	binary.LittleEndian.PutUint32(b[36:], 8192)
	return b
}

func segName(tli walname.TimelineID, seg walname.SegNo) string {
	return walname.SegmentName(tli, seg, testSeg)
}

func sha(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func lz4c(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tree writes files under a new temporary directory and opens it as a store.
func tree(t testing.TB, files map[string][]byte) (string, store.Store) {
	t.Helper()
	root := t.TempDir()
	for k, v := range files {
		p := filepath.Join(root, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	return root, st
}

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func scan(t testing.TB, st store.Store, opts Options) *Listing {
	t.Helper()
	l, err := Scan(context.Background(), st, opts)
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return l
}

func findingsWith(fs []finding.Finding, code string) []finding.Finding {
	var out []finding.Finding
	for _, f := range fs {
		if f.Code == code {
			out = append(out, f)
		}
	}
	return out
}

func walKeys(l *Listing) []string {
	var out []string
	for _, o := range l.WAL {
		out = append(out, o.Key)
	}
	return out
}
