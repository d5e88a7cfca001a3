package wal_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/walname"
)

// BenchmarkScanSegment scans every real fixture segment; MB/s counts whole
// files (their zero-filled tails after XLOG_SWITCH included).
func BenchmarkScanSegment(b *testing.B) {
	segs := realSegments(b)
	b.SetBytes(int64(len(segs)) * int64(walname.MinSegmentSize))
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range segs {
			if _, err := wal.ScanSegment(bytes.NewReader(s.data), s.name, wal.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkScanSegmentDense scans the fixture segment that is full of
// records (catalog changes, full-page images, commits); MB/s counts the
// WAL bytes holding records.
func BenchmarkScanSegmentDense(b *testing.B) {
	s := realSegments(b)[0]
	sum, err := wal.ScanSegment(bytes.NewReader(s.data), s.name, wal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(sum.End.Offset(walname.MinSegmentSize)))
	b.ReportMetric(float64(sum.Records), "records/op")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wal.ScanSegment(bytes.NewReader(s.data), s.name, wal.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanSegmentBytes is BenchmarkScanSegment without the copies
// of a reader.
func BenchmarkScanSegmentBytes(b *testing.B) {
	segs := realSegments(b)
	b.SetBytes(int64(len(segs)) * int64(walname.MinSegmentSize))
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range segs {
			if _, err := wal.ScanSegmentBytes(s.data, s.name, wal.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkReader reads all fixture segments as one stream.
func BenchmarkReader(b *testing.B) {
	src := realSource(b)
	first := realSegments(b)[0].seg
	b.SetBytes(int64(len(src.segs)) * int64(walname.MinSegmentSize))
	b.ReportAllocs()
	for b.Loop() {
		r, err := wal.NewReader(context.Background(), src, walname.MinSegmentSize.StartLSN(first), wal.Options{SegmentSize: walname.MinSegmentSize})
		if err != nil {
			b.Fatal(err)
		}
		for r.Next() {
		}
		if !wal.IsEndOfWAL(r.Err()) {
			b.Fatal(r.Err())
		}
	}
}

// BenchmarkScanDir scans the uncompressed segments in
// $WALAUDIT_BENCH_WAL_DIR (e.g. the archive of a pgbench run), to compare
// with "pg_waldump --stats" on the same files; skipped when unset. The
// workers=N variants scan N files at a time, as an audit of an archive can.
func BenchmarkScanDir(b *testing.B) {
	dir := os.Getenv("WALAUDIT_BENCH_WAL_DIR")
	if dir == "" {
		b.Skip("WALAUDIT_BENCH_WAL_DIR not set")
	}
	paths, err := filepath.Glob(filepath.Join(dir, "[0-9A-F]*"))
	if err != nil {
		b.Fatal(err)
	}
	sort.Strings(paths)
	type file struct {
		name string
		data []byte
	}
	var files []file
	var total int64
	for _, p := range paths {
		if !walname.IsSegmentName(filepath.Base(p)) {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, file{filepath.Base(p), data})
		total += int64(len(data))
	}
	if len(files) == 0 {
		b.Skip("no segments in " + dir)
	}
	// scanFiles scans every segment file with scan.
	scanFiles := func(b *testing.B, scan func(f *os.File, name string) error) {
		b.SetBytes(total)
		b.ReportAllocs()
		for b.Loop() {
			for _, p := range paths {
				if !walname.IsSegmentName(filepath.Base(p)) {
					continue
				}
				f, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				err = scan(f, filepath.Base(p))
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	// From the files, like pg_waldump (the page cache holds them after
	// the first pass).
	b.Run("files", func(b *testing.B) {
		scanFiles(b, func(f *os.File, name string) error {
			_, err := wal.ScanSegment(f, name, wal.Options{})
			return err
		})
	})
	// Files mapped into memory, as inspect and check read them.
	b.Run("mapped", func(b *testing.B) {
		scanFiles(b, func(f *os.File, name string) error {
			_, err := wal.ScanSegmentFile(f, name, wal.Options{})
			return err
		})
	})
	// In memory without copies: the decoder alone.
	b.Run("bytes", func(b *testing.B) {
		b.SetBytes(total)
		b.ReportAllocs()
		for b.Loop() {
			for _, f := range files {
				if _, err := wal.ScanSegmentBytes(f.data, f.name, wal.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			var records atomic.Int64
			for b.Loop() {
				records.Store(0)
				next := make(chan file, len(files))
				for _, f := range files {
					next <- f
				}
				close(next)
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						for f := range next {
							sum, err := wal.ScanSegment(bytes.NewReader(f.data), f.name, wal.Options{})
							if err != nil {
								b.Error(err)
								return
							}
							records.Add(int64(sum.Records))
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(records.Load()), "records/op")
		})
	}
}
