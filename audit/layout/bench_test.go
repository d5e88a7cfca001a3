package layout_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/layout"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchArchive creates n segment files of 16 MiB each, sparse (Truncate:
// right sizes, no data), the first with a real long page header so the
// segment size is learnt from it, as from a real archive.
func benchArchive(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	const sz = walname.DefaultSegmentSize
	for i := 1; i <= n; i++ {
		p := filepath.Join(dir, walname.SegmentName(1, walname.SegNo(i), sz))
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if i == 1 {
			hdr := make([]byte, 40)
			binary.LittleEndian.PutUint16(hdr[0:], 0xD110)
			binary.LittleEndian.PutUint16(hdr[2:], 0x0002)
			binary.LittleEndian.PutUint32(hdr[4:], 1)
			binary.LittleEndian.PutUint64(hdr[8:], uint64(sz))
			binary.LittleEndian.PutUint64(hdr[24:], 7710451828975925204)
			binary.LittleEndian.PutUint32(hdr[32:], uint32(sz))
			binary.LittleEndian.PutUint32(hdr[36:], 8192)
			if _, err := f.Write(hdr); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Truncate(int64(sz)); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// BenchmarkScanPlain100k inventories a local plain archive of 100,000
// segments (WALAUDIT_BENCH_SEGMENTS overrides the count) and reports, per
// run, the CPU and wall time of a bare os.ReadDir of the directory, of the
// store's listing (names, sizes, times), and of audit.Scan (layout
// detection, listing, one segment header, classification), and the ratio
// of Scan to ReadDir. bench_scan.sh runs it.
func BenchmarkScanPlain100k(b *testing.B) {
	n := 100000
	if s := os.Getenv("WALAUDIT_BENCH_SEGMENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	dir := benchArchive(b, n)
	ctx := context.Background()
	st, err := store.NewLocal(dir)
	if err != nil {
		b.Fatal(err)
	}
	measure := func(fn func()) (cpu, wall time.Duration) {
		c0, w0 := cpuTime(), time.Now()
		fn()
		return cpuTime() - c0, time.Since(w0)
	}
	var readCPU, readWall, listCPU, listWall, scanCPU, scanWall time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c, w := measure(func() {
			ents, err := os.ReadDir(dir)
			if err != nil || len(ents) != n {
				b.Fatalf("readdir: %d entries, %v", len(ents), err)
			}
		})
		readCPU, readWall = readCPU+c, readWall+w
		c, w = measure(func() {
			k := 0
			if err := st.List(ctx, "", func(store.ObjectInfo) error { k++; return nil }); err != nil || k != n {
				b.Fatalf("list: %d objects, %v", k, err)
			}
		})
		listCPU, listWall = listCPU+c, listWall+w
		b.StartTimer()
		c, w = measure(func() {
			inv, err := audit.Scan(ctx, st, audit.ScanOptions{})
			if err != nil || len(inv.Segments[1]) != n || inv.SegmentSize != walname.DefaultSegmentSize || inv.Layout != layout.Plain {
				b.Fatalf("scan: %v", err)
			}
		})
		scanCPU, scanWall = scanCPU+c, scanWall+w
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(per(readCPU), "readdir-cpu-ms")
	b.ReportMetric(per(readWall), "readdir-wall-ms")
	b.ReportMetric(per(listCPU), "list-cpu-ms")
	b.ReportMetric(per(listWall), "list-wall-ms")
	b.ReportMetric(per(scanCPU), "scan-cpu-ms")
	b.ReportMetric(per(scanWall), "scan-wall-ms")
	if readWall > 0 {
		b.ReportMetric(float64(scanWall)/float64(readWall), "scan/readdir-wall")
		b.ReportMetric(float64(scanWall)/float64(listWall), "scan/list-wall")
	}
}
