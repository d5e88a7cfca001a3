package wal

import (
	"os"
	"path/filepath"
	"testing"
)

// A mapped file that shrinks under the scan faults (SIGBUS): the scan
// must notice instead of crashing, and ScanSegmentFile read it again.
func TestScanMappedFileTruncated(t *testing.T) {
	p := filepath.Join(t.TempDir(), "000000010000000000000001")
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, unmap, ok := mapFile(f, int64(len(data)))
	if !ok {
		t.Fatal("cannot map the file")
	}
	defer unmap()
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if _, _, faulted := scanMapped(m, filepath.Base(p), Options{}); !faulted {
		t.Fatal("scan of a truncated mapping did not fault")
	}
	sum, err := ScanSegmentFile(f, filepath.Base(p), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Size != 0 || sum.Stop == nil {
		t.Fatalf("truncated file: size %d, stop %v", sum.Size, sum.Stop)
	}
}
