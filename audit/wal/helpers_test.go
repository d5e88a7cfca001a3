package wal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/audit/wal/internal/walfixture"
	"github.com/walaudit/walaudit/walname"
)

// memSource serves segments from memory, named on timeline tli.
type memSource struct {
	tli    walname.TimelineID
	size   walname.SegmentSize
	segs   map[walname.SegNo][]byte
	opened []walname.SegNo
}

func (m *memSource) OpenSegment(ctx context.Context, seg walname.SegNo) (io.ReadCloser, string, error) {
	name := walname.SegmentName(m.tli, seg, m.size)
	m.opened = append(m.opened, seg)
	b, ok := m.segs[seg]
	if !ok {
		return nil, "", fmt.Errorf("%w: %s not in the archive", wal.ErrSegmentMissing, name)
	}
	return io.NopCloser(bytes.NewReader(b)), name, nil
}

// sourceOf serves the segments a fixture writer produced.
func sourceOf(w *walfixture.Writer) *memSource {
	cfg := w.Config()
	src := &memSource{tli: walname.TimelineID(cfg.TLI), size: walname.SegmentSize(cfg.SegSize), segs: map[walname.SegNo][]byte{}}
	for i, b := range w.Segments() {
		src.segs[walname.SegNo(cfg.StartSeg+uint64(i))] = b
	}
	return src
}

// got is a copy of what a test wants to compare about a record (the
// reader reuses its Record).
type got struct {
	Start, End walname.LSN
	TotLen     uint32
	XID        uint32
	Prev       walname.LSN
	Info       uint8
	RmID       wal.RmgrID
	TLI        walname.TimelineID
	Main       []byte
	Blocks     []wal.BlockRef
	Origin     uint16
	TopXID     uint32
}

func copyRec(r *wal.Record) got {
	return got{
		Start: r.StartLSN, End: r.EndLSN, TotLen: r.TotLen, XID: r.XID, Prev: r.Prev,
		Info: r.Info, RmID: r.RmID, TLI: r.TLI,
		Main:   bytes.Clone(r.MainData),
		Blocks: append([]wal.BlockRef(nil), r.Blocks...),
		Origin: r.Origin, TopXID: r.ToplevelXID,
	}
}

// readAll reads from start until the reader stops.
func readAll(t *testing.T, src wal.SegmentSource, start walname.LSN, opts wal.Options) ([]got, *wal.Reader) {
	t.Helper()
	if opts.SegmentSize == 0 {
		opts.SegmentSize = walname.MinSegmentSize
	}
	r, err := wal.NewReader(context.Background(), src, start, opts)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var out []got
	for r.Next() {
		out = append(out, copyRec(r.Record()))
		if len(out) > 100000 {
			t.Fatal("reader does not stop")
		}
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	return out, r
}

// contentErr asserts that err is a *ContentError wrapping want and returns it.
func contentErr(t *testing.T, err, want error) *wal.ContentError {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want one wrapping %v", err, want)
	}
	var ce *wal.ContentError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *ContentError", err)
	}
	return ce
}

func align(v uint64) walname.LSN { return walname.LSN((v + 7) &^ 7) }

// pageEnd is the end of the page the next record would start on.
func pageEnd(w *walfixture.Writer) uint64 {
	ps := w.Config().PageSize
	p := (w.Pos() + 7) &^ 7
	return p - p%ps + ps
}

func mainRec(rmid uint8, info uint8, xid uint32, n int, fill byte) walfixture.Rec {
	return walfixture.Rec{RmID: rmid, Info: info, XID: xid, Body: walfixture.MainData(bytes.Repeat([]byte{fill}, n))}
}
