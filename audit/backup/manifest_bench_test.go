package backup

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"testing"
)

// BenchmarkParseManifest parses a real PostgreSQL 15 manifest (about a
// thousand files): every check parses each backup's manifest.
func BenchmarkParseManifest(b *testing.B) {
	raw, err := os.ReadFile("testdata/pg15/plain_none/backup_manifest.gz")
	if err != nil {
		b.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseManifest(data); err != nil {
			b.Fatal(err)
		}
	}
}
