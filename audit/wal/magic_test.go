package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/audit/wal/internal/walfixture"
	"github.com/walaudit/walaudit/walname"
)

// TestUnknownPageMagicNamed: a page whose xlp_magic no release writes,
// 0xD1FF (the 0xD1xx family, past 18) or 0x4B1D (not WAL at all), is
// reported naming the file, the offset and the magic in hex, whether it
// is the first page the reader sees (the version is learned from it), the
// first page of a later segment, or a page inside a segment; ScanSegment
// (a file on its own) and the Reader (a path of segments) agree.
func TestUnknownPageMagicNamed(t *testing.T) {
	const segSize = 1 << 20
	w := walfixture.New(walfixture.Config{})
	for w.Pos() < 2*segSize+6*8192 { // segments 1 and 2
		w.Append(walfixture.Noop(3000))
	}

	for _, magic := range []uint16{0xD1FF, 0x4B1D} {
		hex := fmt.Sprintf("%04X", magic)
		for _, c := range []struct {
			what string
			seg  walname.SegNo
			page int64
			// first: the damaged page is the first one read, so its magic
			// is judged as a version (0xD1FF is a release walaudit does not
			// decode); later pages must carry the magic learned (0xD110).
			first bool
		}{
			{"first page read", 1, 0, true},
			{"first page of a later segment", 2, 0, false},
			{"page inside a segment", 2, 3, false},
		} {
			t.Run(fmt.Sprintf("%s/%s", hex, c.what), func(t *testing.T) {
				src := sourceOf(w)
				seg := bytes.Clone(src.segs[c.seg])
				off := c.page * 8192
				binary.LittleEndian.PutUint16(seg[off:], magic)
				src.segs[c.seg] = seg
				name := walname.SegmentName(1, c.seg, segSize)
				lsn := walname.LSN(uint64(c.seg)*segSize + uint64(off))
				want := wal.ErrBadMagic
				if c.first && magic>>8 == 0xD1 {
					want = wal.ErrUnsupportedVersion
				}
				check := func(how string, ce *wal.ContentError) {
					t.Helper()
					msg := ce.Error()
					if ce.File != name || ce.Offset != off || ce.LSN != lsn || !errors.Is(ce, want) ||
						!strings.Contains(msg, name) || !strings.Contains(strings.ToUpper(ce.Err.Error()), hex) {
						t.Errorf("%s: %q (file %s, offset %d, lsn %s), want %s at offset %d (lsn %s) naming magic %s, wrapping %v",
							how, msg, ce.File, ce.Offset, ce.LSN, name, off, lsn, hex, want)
					}
				}

				// The Reader, along the path from the start of segment 1.
				_, r := readAll(t, src, walname.LSN(segSize), wal.Options{SegmentSize: segSize})
				check("reader", contentErr(t, r.Err(), want))

				// ScanSegment, the damaged file on its own: there it is
				// always the first page read when it is page 0.
				sum, err := wal.ScanSegment(bytes.NewReader(seg), name, wal.Options{})
				wantScan := wal.ErrBadMagic
				if c.page == 0 && magic>>8 == 0xD1 {
					wantScan = wal.ErrUnsupportedVersion
				}
				var ce *wal.ContentError
				switch {
				case errors.Is(wantScan, wal.ErrUnsupportedVersion):
					// Unsupported WAL is the scan's error, not a problem.
					if !errors.As(err, &ce) {
						t.Fatalf("scan %s: %v, want an unsupported-version error", name, err)
					}
				default:
					if err != nil || sum.Stop == nil || len(sum.Problems) == 0 {
						t.Fatalf("scan %s: %v, summary %+v", name, err, sum)
					}
					ce = &sum.Problems[0]
				}
				want = wantScan
				check("scan", ce)
			})
		}
	}
}
