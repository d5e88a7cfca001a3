package wal

import (
	"io"
	"math"
	"os"
	"runtime/debug"
	"unsafe"
)

// maxMapped bounds the files ScanSegmentFile maps: the largest segment
// plus room for the scan to see that a file is too long. Larger files are
// read.
const maxMapped = int64(1<<30) + 1<<20

// ScanSegmentFile is [ScanSegment] of the uncompressed segment file f,
// read from its start. Where the system allows, it maps the file into
// memory instead of reading it, which saves copying every byte; the
// summary is the same. A file that shrinks while it is mapped is read
// again the ordinary way.
func ScanSegmentFile(f *os.File, name string, opts Options) (*SegmentSummary, error) {
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() <= maxMapped {
		if data, unmap, ok := mapFile(f, st.Size()); ok {
			sum, err, faulted := scanMapped(data, name, opts)
			unmap()
			if !faulted {
				return sum, err
			}
		}
	}
	return ScanSegment(io.NewSectionReader(f, 0, math.MaxInt64), name, opts)
}

// scanMapped scans mapped memory, turning the fault of a page the file no
// longer holds (SIGBUS) into faulted instead of a crash.
func scanMapped(data []byte, name string, opts Options) (sum *SegmentSummary, err error, faulted bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			if fe, ok := v.(interface{ Addr() uintptr }); ok && len(data) > 0 {
				lo := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
				if a := fe.Addr(); a >= lo && a < lo+uintptr(len(data)) {
					sum, err, faulted = nil, nil, true
					return
				}
			}
			panic(v)
		}
	}()
	sum, err = ScanSegmentBytes(data, name, opts)
	return sum, err, false
}
