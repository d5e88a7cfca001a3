package backup

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/walname"
)

// fixture reads testdata/pg15/<name>; names ending in .gz are decompressed.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "pg15", filepath.FromSlash(name)))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("gunzip fixture %s: %v", name, err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gunzip fixture %s: %v", name, err)
		}
	}
	return data
}

// controlData parses pg_controldata's "key: value" output.
func controlData(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(string(fixture(t, dir+"/pg_controldata.txt")), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// manifestEntry is a file for buildManifest.
type manifestEntry struct {
	path    string
	data    []byte
	algo    ChecksumAlgorithm
	encoded bool
}

// buildManifest writes a backup_manifest the way PostgreSQL lays it out,
// with correct per-file checksums and Manifest-Checksum.
func buildManifest(version int, sysid uint64, files []manifestEntry, ranges []WALRange) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "{ \"PostgreSQL-Backup-Manifest-Version\": %d,\n", version)
	if version >= 2 {
		fmt.Fprintf(&b, "\"System-Identifier\": %d,\n", sysid)
	}
	b.WriteString("\"Files\": [")
	for i, f := range files {
		if i == 0 {
			b.WriteString("\n")
		} else {
			b.WriteString(",\n")
		}
		if f.encoded {
			fmt.Fprintf(&b, "{ \"Encoded-Path\": %q, ", hex.EncodeToString([]byte(f.path)))
		} else {
			fmt.Fprintf(&b, "{ \"Path\": %q, ", f.path)
		}
		fmt.Fprintf(&b, "\"Size\": %d, \"Last-Modified\": \"2026-11-21 01:59:14 GMT\"", len(f.data))
		if f.algo != "" && f.algo != ChecksumNone {
			fmt.Fprintf(&b, ", \"Checksum-Algorithm\": %q, \"Checksum\": %q", string(f.algo), checksumHex(f.algo, f.data))
		}
		b.WriteString(" }")
	}
	b.WriteString("\n],\n\"WAL-Ranges\": [\n")
	for i, r := range ranges {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "{ \"Timeline\": %d, \"Start-LSN\": \"%s\", \"End-LSN\": \"%s\" }", r.Timeline, r.StartLSN, r.EndLSN)
	}
	b.WriteString("\n],\n")
	sum := sha256.Sum256([]byte(b.String()))
	fmt.Fprintf(&b, "\"Manifest-Checksum\": \"%x\"}\n", sum)
	return []byte(b.String())
}

// checksumHex computes a manifest checksum independently of VerifyFile.
func checksumHex(a ChecksumAlgorithm, data []byte) string {
	switch a {
	case ChecksumCRC32C:
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
		return hex.EncodeToString(b[:])
	case ChecksumSHA224:
		s := sha256.Sum224(data)
		return hex.EncodeToString(s[:])
	case ChecksumSHA256:
		s := sha256.Sum256(data)
		return hex.EncodeToString(s[:])
	}
	panic("checksumHex: unsupported " + string(a))
}

// tarEntry is one entry for buildTar; dir entries end in "/".
type tarEntry struct {
	name string
	data []byte
}

// buildTar writes a tar, optionally compressed ("", "gz", "lz4", "zst").
func buildTar(t testing.TB, comp walname.Compression, entries []tarEntry) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o600, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(e.name, "/") {
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeDir, 0, 0o700
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header: %v", err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatalf("tar write: %v", err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("tar close: %v", err)
	}
	var out bytes.Buffer
	var w io.WriteCloser
	switch comp {
	case walname.CompressNone:
		return raw.Bytes()
	case walname.CompressGzip:
		w = gzip.NewWriter(&out)
	case walname.CompressLZ4:
		w = lz4.NewWriter(&out)
	case walname.CompressZstd:
		zw, err := zstd.NewWriter(&out)
		if err != nil {
			t.Fatalf("zstd writer: %v", err)
		}
		w = zw
	default:
		t.Fatalf("buildTar: unsupported compression %q", comp)
	}
	if _, err := w.Write(raw.Bytes()); err != nil {
		t.Fatalf("compress: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("compress close: %v", err)
	}
	return out.Bytes()
}

// writeFiles creates files (relative slash paths) under dir.
func writeFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// findingCodes returns the codes of fs, in order.
func findingCodes(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}

// findCode returns the first finding with code, or nil.
func findCode(fs []finding.Finding, code string) *finding.Finding {
	for i := range fs {
		if fs[i].Code == code {
			return &fs[i]
		}
	}
	return nil
}

// mustLSN parses an LSN or fails the test.
func mustLSN(t testing.TB, s string) walname.LSN {
	t.Helper()
	l, err := walname.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
