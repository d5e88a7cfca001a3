package wal_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/audit/wal/internal/walfixture"
	"github.com/walaudit/walaudit/walname"
)

// The proof that segment summaries can stand in for the files: for the
// real fixtures and for many generated archives, damaged in every way
// the reader knows, WalkChain over per-segment ScanSegment summaries
// (after a trip through their binary encoding) must stop where a Reader
// over the same files stops, with the same error, and yield the same
// events.

// sentinels lists every error class a read can stop with.
var sentinels = []error{
	wal.ErrUnsupportedVersion, wal.ErrBadMagic, wal.ErrPageFlags, wal.ErrBadPageAddr, wal.ErrSysID,
	wal.ErrSegmentSize, wal.ErrPageSize, wal.ErrTimeline, wal.ErrStartLSN, wal.ErrContRecord,
	wal.ErrTornRecord, wal.ErrRecordLength, wal.ErrRmID, wal.ErrPrevLink, wal.ErrChecksum,
	wal.ErrRecordFormat, wal.ErrOverwrite, wal.ErrPayload, wal.ErrTruncated, wal.ErrTrailingData,
	wal.ErrZeroTail, wal.ErrSegmentMissing,
}

func errClass(err error) string {
	if err == nil {
		return "nil"
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "other: " + err.Error()
}

// outcome is what a read yields.
type outcome struct {
	end    walname.LSN
	err    error
	events []wal.Event
}

func (o outcome) where() string {
	var ce *wal.ContentError
	if errors.As(o.err, &ce) {
		return fmt.Sprintf("%s in %q offset %d lsn %s", errClass(o.err), ce.File, ce.Offset, ce.LSN)
	}
	return errClass(o.err)
}

func readerOutcome(t *testing.T, src wal.SegmentSource, start walname.LSN, opts wal.Options) outcome {
	t.Helper()
	r, err := wal.NewReader(context.Background(), src, start, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var o outcome
	for r.Next() {
		rec := r.Record()
		if ev, ok, err := wal.EventOf(rec, r.Major()); ok && err == nil {
			o.events = append(o.events, ev)
		}
	}
	o.end, o.err = r.EndOfWAL(), r.Err()
	return o
}

// summaries scans every file of src on its own, as a cache would, and
// sends each summary through its binary encoding.
func summaries(t *testing.T, src *memSource) []*wal.SegmentSummary {
	t.Helper()
	var out []*wal.SegmentSummary
	for _, seg := range slices.Sorted(mapsKeys(src.segs)) {
		name := walname.SegmentName(src.tli, seg, src.size)
		sum, err := wal.ScanSegment(bytes.NewReader(src.segs[seg]), name, wal.Options{SegmentSize: src.size})
		if err != nil && !errors.Is(err, wal.ErrUnsupportedVersion) {
			t.Fatalf("scan %s: %v", name, err)
		}
		b, err := sum.MarshalBinary()
		if err != nil {
			t.Fatalf("encode %s: %v", name, err)
		}
		var back wal.SegmentSummary
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatalf("decode %s: %v", name, err)
		}
		out = append(out, &back)
	}
	return out
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func chainOutcome(sums []*wal.SegmentSummary, start walname.LSN, opts wal.Options) outcome {
	var o outcome
	o.end, o.err = wal.WalkChain(sums, start, opts, func(ev *wal.Event) bool {
		o.events = append(o.events, *ev)
		return true
	})
	return o
}

// sameOutcome compares a chain's outcome with the reader's; it reports
// false for an ErrSummaryIncomplete answer, which it allows.
func sameOutcome(t *testing.T, what string, rd, ch outcome) bool {
	t.Helper()
	if errors.Is(ch.err, wal.ErrSummaryIncomplete) {
		return false
	}
	if rd.end != ch.end || rd.where() != ch.where() {
		t.Errorf("%s:\nreader stops at %s: %s (%v)\nchain  stops at %s: %s (%v)", what, rd.end, rd.where(), rd.err, ch.end, ch.where(), ch.err)
		return true
	}
	if a, b := eventsText(rd.events), eventsText(ch.events); a != b {
		t.Errorf("%s: events differ\nreader:\n%s\nchain:\n%s", what, a, b)
	}
	return true
}

// TestChainRealFixtures: every record start of the real WAL as a
// starting point.
func TestChainRealFixtures(t *testing.T) {
	src := realSource(t)
	sums := summaries(t, src)
	recs, _ := readReal(t)
	opts := wal.Options{SegmentSize: walname.MinSegmentSize}
	starts := []walname.LSN{walname.MinSegmentSize.StartLSN(realSegments(t)[0].seg)}
	for _, r := range recs {
		starts = append(starts, r.Start)
	}
	for _, st := range starts {
		rd := readerOutcome(t, src, st, opts)
		ch := chainOutcome(sums, st, opts)
		if !sameOutcome(t, "start "+st.String(), rd, ch) {
			t.Errorf("start %s: chain cannot decide: %v", st, ch.err)
		}
	}
	// The events carry the reader's PrevEnd.
	rd := readerOutcome(t, src, starts[0], opts)
	for i, ev := range rd.events {
		if ev.PrevEnd == 0 || ev.PrevEnd > ev.LSN || (i > 0 && ev.PrevEnd < rd.events[i-1].EndLSN) {
			t.Errorf("event %d at %s: PrevEnd %s", i, ev.LSN, ev.PrevEnd)
		}
	}
	// A damaged copy of each segment in turn.
	for i := range sums {
		for _, off := range []int{0, 2, 8, 16, 40, 300, 8192 + 2, 8192 + 16, 1<<20 - 1} {
			src := realSource(t)
			seg := realSegments(t)[i].seg
			data := bytes.Clone(src.segs[seg])
			data[off] ^= 0x01
			src.segs[seg] = data
			sums := summaries(t, src)
			for _, st := range starts[:1] {
				rd := readerOutcome(t, src, st, opts)
				ch := chainOutcome(sums, st, opts)
				if !sameOutcome(t, fmt.Sprintf("segment %d byte %d", seg, off), rd, ch) {
					t.Errorf("segment %d byte %d: chain cannot decide: %v", seg, off, ch.err)
				}
			}
		}
	}
}

// gen builds random WAL with every awkward placement the chain must get
// right, and remembers where records start.
type gen struct {
	rng    *rand.Rand
	w      *walfixture.Writer
	starts []uint64
	notes  []string
	cfg    walfixture.Config
	clean  bool // only WAL a server writes: no bad bodies, no records after a switch
}

func newGen(seed uint64, cfg walfixture.Config) *gen {
	g := &gen{rng: rand.New(rand.NewPCG(seed, seed*7919+1)), cfg: cfg}
	g.w = walfixture.New(cfg)
	g.cfg = g.w.Config()
	return g
}

func (g *gen) add(r walfixture.Rec) uint64 {
	s, _ := g.w.Append(r)
	g.starts = append(g.starts, s)
	return s
}

func (g *gen) segEnd() uint64 {
	p := (g.w.Pos() + 7) &^ 7
	return p - p%g.cfg.SegSize + g.cfg.SegSize
}

// fillNear appends NOOP records until the next record starts at target,
// or as close before it as record sizes allow.
func (g *gen) fillNear(target uint64) {
	ps := g.cfg.PageSize
	for {
		p := (g.w.Pos() + 7) &^ 7
		if p >= target {
			return
		}
		if target < p-p%ps+ps {
			if target-p >= 24 {
				g.w.FillTo(target)
			}
			return
		}
		g.add(walfixture.Noop(noopSize(int(min(target-p, 4024)) - 24)))
	}
}

// tryFill is FillTo when the target can be reached on this page.
func (g *gen) tryFill(target uint64) {
	ps := g.cfg.PageSize
	p := (g.w.Pos() + 7) &^ 7
	if p%ps == 0 {
		p += 24
	}
	if target == p || target > p && target-p >= 24 && target < p-p%ps+ps {
		g.w.FillTo(target)
	}
}

// noopSize is a NOOP record size near n that exists.
func noopSize(n int) int {
	switch {
	case n <= 24:
		return 24
	case n < 26:
		return 26
	case n > 279 && n < 285:
		return 285
	}
	return n
}

func (g *gen) commit(xid uint32, nsub int) walfixture.Rec {
	t := int64(848536468535585 + int64(xid)*1000)
	if nsub == 0 {
		return walfixture.Rec{RmID: 1, Info: wal.XactOpCommit, XID: xid, Body: walfixture.MainData(le(t))}
	}
	subs := make([]byte, 4*nsub)
	for i := range nsub {
		binary.LittleEndian.PutUint32(subs[4*i:], xid+1+uint32(i))
	}
	return walfixture.Rec{RmID: 1, Info: wal.XactOpCommit | wal.XactHasInfo, XID: xid,
		Body: walfixture.MainData(le(t, uint32(wal.XactXinfoHasSubxacts), int32(nsub), subs))}
}

func (g *gen) restorePoint(i int) walfixture.Rec {
	name := make([]byte, 64)
	copy(name, fmt.Sprintf("rp%d", i))
	return walfixture.Rec{RmID: 0, Info: wal.XLOGRestorePoint, Body: walfixture.MainData(le(int64(848536468535585+i), name))}
}

// randomRecord appends one record of a random kind and size.
func (g *gen) randomRecord(i int) {
	r := g.rng
	switch k := r.IntN(100); {
	case k < 30:
		g.add(mainRec(21, 0, uint32(i), r.IntN(300), byte(i)))
	case k < 45:
		g.add(g.commit(uint32(1000+i), r.IntN(3)*r.IntN(400)))
	case k < 55:
		g.add(mainRec(21, 0, uint32(i), 300+r.IntN(20000), byte(i)))
	case k < 58:
		g.add(mainRec(21, 0, uint32(i), 200000+r.IntN(1500000), byte(i)))
	case k < 63:
		g.add(walfixture.Rec{RmID: 0, Info: wal.XLOGCheckpointOnline, Body: walfixture.MainData(checkpointData(0))})
	case k < 68:
		g.add(g.restorePoint(i))
	case k < 70:
		g.notes = append(g.notes, "switch")
		g.starts = append(g.starts, g.w.Switch())
	case k < 72:
		// A crash tore a record; after restart the server overwrote
		// where its rest should be, sometimes at a segment start.
		if r.IntN(2) == 0 {
			g.fillNear(g.segEnd() - g.cfg.PageSize + uint64(8*(1+r.IntN(100))))
			g.notes = append(g.notes, "torn at segment end")
		} else {
			g.notes = append(g.notes, "torn")
		}
		g.tryFill(pageEnd(g.w) - uint64(8*(3+r.IntN(50))))
		ab := g.w.AppendTorn(mainRec(21, 0, uint32(i), 2*int(g.cfg.PageSize), 'T'))
		if r.IntN(8) == 0 && !g.clean {
			ab += 8
			g.notes = append(g.notes, "wrong overwrite target")
		}
		g.add(walfixture.Rec{RmID: 0, Info: wal.XLOGOverwriteContrecord, Body: walfixture.MainData(le(ab, int64(0)))})
	case k < 80:
		// A record (often an event) right at the segment boundary,
		// its header split or not.
		d := []uint64{8, 16, 24, 32, 48, 64, 200}[r.IntN(7)]
		g.fillNear(g.segEnd() - d)
		g.notes = append(g.notes, fmt.Sprintf("boundary -%d", d))
		switch r.IntN(5) {
		case 4:
			if g.clean {
				break
			}
			// Valid CRC, invalid body: a block id out of range.
			g.add(walfixture.Rec{RmID: 21, Body: append([]byte{40}, bytes.Repeat([]byte{'B'}, r.IntN(2000))...)})
			g.notes = append(g.notes, "bad body")
		case 0:
			g.add(g.commit(uint32(5000+i), r.IntN(50)))
		case 1:
			g.add(g.restorePoint(i))
		case 2:
			if g.clean {
				g.starts = append(g.starts, g.w.Switch())
				break
			}
			// The records after it are not read: the switch owns the
			// rest of the segment it ends in.
			g.add(walfixture.Rec{RmID: 0, Info: wal.XLOGSwitch})
			g.notes = append(g.notes, "split switch")
		default:
			g.add(mainRec(21, 0, uint32(i), r.IntN(3000), byte(i)))
		}
	case k < 85:
		// A record ending exactly at the segment end.
		end := g.segEnd()
		g.fillNear(end - g.cfg.PageSize/2)
		p := (g.w.Pos() + 7) &^ 7
		if end-p > 300 && end-p < g.cfg.PageSize-24 {
			g.add(mainRec(21, 0, uint32(i), int(end-p)-29-r.IntN(8), 'E'))
			g.notes = append(g.notes, "exact end")
		}
	default:
		g.add(mainRec(10, 0, uint32(i), r.IntN(100), byte(i)))
	}
}

// damage applies one random corruption to the archive and says which.
func damage(r *rand.Rand, g *gen, src *memSource) string {
	segs := slices.Sorted(mapsKeys(src.segs))
	seg := segs[r.IntN(len(segs))]
	data := bytes.Clone(src.segs[seg])
	src.segs[seg] = data
	ps := int(g.cfg.PageSize)
	written := int(min(uint64(len(data)), g.w.Pos()-uint64(seg)*g.cfg.SegSize))
	if written <= 0 {
		written = ps
	}
	switch k := r.IntN(19); k {
	case 15:
		// A stale xl_prev on the first record starting in a segment.
		for _, s := range g.starts {
			if s/g.cfg.SegSize != uint64(seg) {
				continue
			}
			off := int(s % g.cfg.SegSize)
			if off+24 > len(data) || off%ps+24 > ps {
				return "nothing"
			}
			tot := int(binary.LittleEndian.Uint32(data[off:]))
			if off%ps+tot > ps {
				binary.LittleEndian.PutUint64(data[off+8:], binary.LittleEndian.Uint64(data[off+8:])+8)
				return fmt.Sprintf("bad prev, bad CRC at %X", s)
			}
			binary.LittleEndian.PutUint64(data[off+8:], binary.LittleEndian.Uint64(data[off+8:])-8)
			walfixture.FixCRC(data[off : off+tot])
			return fmt.Sprintf("bad prev at first record %X", s)
		}
		return "nothing"
	case 16:
		// The header bytes continued at the start of the segment.
		off := 40 + r.IntN(24)
		data[off] ^= 1 << r.IntN(8)
		return fmt.Sprintf("bit flip in %d at the continuation's start %d", seg, off)
	case 17:
		// The first page's xlp_rem_len.
		binary.LittleEndian.PutUint32(data[16:], binary.LittleEndian.Uint32(data[16:])+uint32(r.IntN(3))-1)
		return fmt.Sprintf("rem_len of %d changed", seg)
	case 18:
		// The timeline of the first page.
		binary.LittleEndian.PutUint32(data[4:], binary.LittleEndian.Uint32(data[4:])+uint32(r.IntN(3))-1)
		return fmt.Sprintf("first page timeline of %d changed", seg)
	case 0:
		off := r.IntN(written)
		data[off] ^= 1 << r.IntN(8)
		return fmt.Sprintf("bit flip in %d at %d", seg, off)
	case 1:
		off := len(data) - 1 - r.IntN(200)
		data[off] ^= 1 << r.IntN(8)
		return fmt.Sprintf("bit flip in %d near its end at %d", seg, off)
	case 2:
		off := r.IntN(300)
		data[off] ^= 1 << r.IntN(8)
		return fmt.Sprintf("bit flip in %d near its start at %d", seg, off)
	case 3:
		page := r.IntN(max(written/ps, 1))
		off := page*ps + []int{0, 2, 4, 8, 16, 17, 24, 32, 36}[r.IntN(9)]
		data[off] ^= 1 << r.IntN(8)
		return fmt.Sprintf("page header bit flip in %d page %d at %d", seg, page, off)
	case 4:
		page := r.IntN(max(written/ps, 1))
		clear(data[page*ps : (page+1)*ps])
		return fmt.Sprintf("zeroed page %d of %d", page, seg)
	case 5:
		clear(data[:ps])
		return fmt.Sprintf("zeroed first page of %d", seg)
	case 6:
		n := r.IntN(len(data))
		src.segs[seg] = data[:n]
		return fmt.Sprintf("%d truncated to %d", seg, n)
	case 7:
		src.segs[seg] = append(data, 1)
		return fmt.Sprintf("%d with trailing data", seg)
	case 8:
		delete(src.segs, seg)
		return fmt.Sprintf("%d missing", seg)
	case 9:
		data[24] ^= 0x10
		return fmt.Sprintf("%d from another system", seg)
	case 10:
		binary.LittleEndian.PutUint16(data[0:], 0xD113)
		return fmt.Sprintf("%d of another version", seg)
	case 11:
		// A stale xl_prev, CRC fixed, on a record that fits its page.
		for _, s := range g.starts {
			if s/g.cfg.SegSize != uint64(seg) || r.IntN(3) == 0 {
				continue
			}
			off := int(s % g.cfg.SegSize)
			if off+24 > len(data) || off%ps+24 > ps {
				continue
			}
			tot := int(binary.LittleEndian.Uint32(data[off:]))
			if off%ps+tot > ps {
				continue
			}
			binary.LittleEndian.PutUint64(data[off+8:], binary.LittleEndian.Uint64(data[off+8:])-8)
			walfixture.FixCRC(data[off : off+tot])
			return fmt.Sprintf("bad prev at %X", s)
		}
		return "nothing"
	case 12:
		// Page timelines going backwards inside the archive.
		page := r.IntN(max(written/ps, 1))
		binary.LittleEndian.PutUint32(data[page*ps+4:], 0)
		return fmt.Sprintf("timeline 0 on page %d of %d", page, seg)
	case 13:
		data[2] ^= 0x08 // XLP_FIRST_IS_OVERWRITE_CONTRECORD on the first page
		return fmt.Sprintf("overwrite flag toggled on %d", seg)
	default:
		data[2] ^= 0x01 // XLP_FIRST_IS_CONTRECORD
		return fmt.Sprintf("contrecord flag toggled on %d", seg)
	}
}

// TestChainMatchesReader is the property test.
func TestChainMatchesReader(t *testing.T) {
	cases := 250
	if testing.Short() {
		cases = 40
	}
	var decided, undecided, damaged int
	for c := range cases {
		seed := uint64(c + 1)
		cfg := walfixture.Config{}
		if c%4 == 3 {
			cfg.PageSize = 1024
		}
		if c%5 == 4 {
			cfg.TLI = 1
		}
		g := newGen(seed, cfg)
		n := 10 + g.rng.IntN(120)
		for i := range n {
			if c%5 == 4 && i == n/2 {
				g.w.SetTLI(2)
			}
			g.randomRecord(i)
		}
		src := sourceOf(g.w)
		if c%5 == 4 {
			src.tli = 2
		}
		size := walname.SegmentSize(g.cfg.SegSize)
		starts := []walname.LSN{size.StartLSN(walname.SegNo(g.cfg.StartSeg))}
		for range 3 {
			starts = append(starts, walname.LSN(g.starts[g.rng.IntN(len(g.starts))]))
		}
		what := "intact"
		if c%6 != 0 {
			what = damage(g.rng, g, src)
			if g.rng.IntN(3) == 0 {
				what += "; " + damage(g.rng, g, src)
			}
			damaged++
		}
		sums := summaries(t, src)
		for j, st := range starts {
			opts := wal.Options{SegmentSize: size}
			switch {
			case c%5 == 4 && j%2 == 1:
				lim := walname.LSN(g.starts[len(g.starts)/2+g.rng.IntN(len(g.starts)/2)])
				opts.AllowedTLI = func(tli walname.TimelineID, page walname.LSN) bool { return tli == 1 || page < lim }
			case c%5 == 4:
				opts.AllowedTLI = func(tli walname.TimelineID, page walname.LSN) bool {
					return tli == 2 || page < size.StartLSN(walname.SegNo(g.cfg.StartSeg)+1)
				}
			case c%7 == 0:
				opts.SystemID = 7000000000000000001
			case c%7 == 1 && j > 0:
				// Refuse one page: near a boundary, or anywhere.
				bad := walname.LSN(g.starts[g.rng.IntN(len(g.starts))])
				if j == 2 {
					bad = size.StartLSN(walname.SegNo(g.cfg.StartSeg)+1) + walname.LSN(g.rng.IntN(3))*walname.LSN(g.cfg.PageSize)
				}
				bad -= bad % walname.LSN(g.cfg.PageSize)
				opts.AllowedTLI = func(tli walname.TimelineID, page walname.LSN) bool { return page != bad }
			}
			rd := readerOutcome(t, src, st, opts)
			ch := chainOutcome(sums, st, opts)
			label := fmt.Sprintf("case %d (%s; %s) from %s", c, what, strings.Join(g.notes, ","), st)
			if sameOutcome(t, label, rd, ch) {
				decided++
				continue
			}
			undecided++
			if what == "intact" {
				t.Errorf("%s: chain cannot decide on intact WAL: %v", label, ch.err)
			} else {
				t.Logf("%s: undecided: %v", label, ch.err)
			}
		}
	}
	t.Logf("%d reads compared, %d left undecided (%d damaged archives)", decided, undecided, damaged)
	if undecided*10 > decided {
		t.Errorf("too many undecided chains: %d of %d", undecided, decided+undecided)
	}
}

// checkChain compares chain and reader and returns the reader's outcome.
func checkChain(t *testing.T, src *memSource, start walname.LSN, opts wal.Options) outcome {
	t.Helper()
	if opts.SegmentSize == 0 {
		opts.SegmentSize = src.size
	}
	rd := readerOutcome(t, src, start, opts)
	ch := chainOutcome(summaries(t, src), start, opts)
	if !sameOutcome(t, "from "+start.String(), rd, ch) {
		t.Errorf("chain cannot decide: %v", ch.err)
	}
	return rd
}

// toSegmentEnd appends NOOPs until the next record would start d bytes
// before the end of the current segment.
func toSegmentEnd(w *walfixture.Writer, d uint64) {
	g := &gen{w: w, cfg: w.Config()}
	g.fillNear(g.segEnd() - d)
	if p := (w.Pos() + 7) &^ 7; p != g.segEnd()-d {
		panic(fmt.Sprintf("cannot place a record at %X", g.segEnd()-d))
	}
}

// TestChainTargeted builds the boundary cases one by one.
func TestChainTargeted(t *testing.T) {
	first := walname.LSN(0x100000)
	wantClass := func(t *testing.T, o outcome, want error) {
		t.Helper()
		if !errors.Is(o.err, want) {
			t.Errorf("read stopped with %v, want %v", o.err, want)
		}
	}
	t.Run("timeline_back_at_boundary", func(t *testing.T) {
		w := walfixture.New(walfixture.Config{TLI: 1})
		w.Append(mainRec(21, 0, 1, 100, 'a'))
		w.SetTLI(2)
		for w.Pos() < 0x180000 {
			w.Append(walfixture.Noop(4000))
		}
		w.Switch()
		w.Append(mainRec(21, 0, 2, 100, 'b'))
		src := sourceOf(w)
		src.tli = 2
		binary.LittleEndian.PutUint32(src.segs[2][4:], 1)
		wantClass(t, checkChain(t, src, first, wal.Options{}), wal.ErrTimeline)
	})
	for _, d := range []uint64{8, 16} {
		t.Run(fmt.Sprintf("split_header_%d_stale_prev", d), func(t *testing.T) {
			w := walfixture.New(walfixture.Config{})
			w.Append(mainRec(21, 0, 1, 100, 'a'))
			toSegmentEnd(w, d)
			stale := w.Prev() - 8
			w.Append(walfixture.Rec{RmID: 1, Info: wal.XactOpCommit, XID: 9, Body: walfixture.MainData(le(int64(rpTime))), Prev: &stale})
			wantClass(t, checkChain(t, sourceOf(w), first, wal.Options{}), wal.ErrPrevLink)
		})
		t.Run(fmt.Sprintf("split_header_%d_bad_rmid", d), func(t *testing.T) {
			w := walfixture.New(walfixture.Config{})
			w.Append(mainRec(21, 0, 1, 100, 'a'))
			toSegmentEnd(w, d)
			w.Append(walfixture.Rec{RmID: 99, XID: 9, Body: walfixture.MainData(le(int64(rpTime)))})
			wantClass(t, checkChain(t, sourceOf(w), first, wal.Options{}), wal.ErrRmID)
		})
		t.Run(fmt.Sprintf("split_header_%d_commit", d), func(t *testing.T) {
			w := walfixture.New(walfixture.Config{})
			w.Append(mainRec(21, 0, 1, 100, 'a'))
			toSegmentEnd(w, d)
			w.Append(walfixture.Rec{RmID: 1, Info: wal.XactOpCommit, XID: 9, Body: walfixture.MainData(le(int64(rpTime)))})
			w.Append(mainRec(21, 0, 1, 100, 'c'))
			o := checkChain(t, sourceOf(w), first, wal.Options{})
			if len(o.events) != 1 || o.events[0].Kind != wal.EventCommit || o.events[0].XID != 9 {
				t.Errorf("events %+v", o.events)
			}
		})
	}
	t.Run("refused_page_before_bad_link", func(t *testing.T) {
		// Segment 2 starts with a continuation filling its page 0; the
		// first record, on page 1, has a stale back-link, and page 1's
		// timeline is refused, which the reader sees first.
		w := walfixture.New(walfixture.Config{})
		w.Append(mainRec(21, 0, 1, 100, 'a'))
		toSegmentEnd(w, 2000)
		w.Append(mainRec(21, 0, 2, 2000+8152-29, 'b'))
		stale := w.Prev() - 8
		r, _ := w.Append(walfixture.Rec{RmID: 21, XID: 3, Body: walfixture.MainData([]byte("x")), Prev: &stale})
		w.Append(mainRec(21, 0, 4, 10, 'd'))
		page := walname.LSN(r &^ 8191)
		if r != 0x202018 {
			t.Fatalf("fixture layout: record at %X", r)
		}
		wantClass(t, checkChain(t, sourceOf(w), first, wal.Options{}), wal.ErrPrevLink)
		o := checkChain(t, sourceOf(w), first, wal.Options{AllowedTLI: func(_ walname.TimelineID, p walname.LSN) bool { return p != page }})
		wantClass(t, o, wal.ErrTimeline)
	})
	t.Run("overwrite_at_segment_start", func(t *testing.T) {
		for _, wrong := range []bool{false, true} {
			w := walfixture.New(walfixture.Config{})
			w.Append(mainRec(21, 0, 1, 100, 'a'))
			toSegmentEnd(w, 200)
			ab := w.AppendTorn(mainRec(21, 0, 2, 5000, 'b'))
			if wrong {
				ab -= 8
			}
			w.Append(walfixture.Rec{RmID: 0, Info: wal.XLOGOverwriteContrecord, Body: walfixture.MainData(le(ab, int64(rpTime)))})
			w.Append(mainRec(21, 0, 3, 100, 'c'))
			o := checkChain(t, sourceOf(w), first, wal.Options{})
			if wrong {
				wantClass(t, o, wal.ErrOverwrite)
			} else if len(o.events) != 1 || o.events[0].Kind != wal.EventOverwriteContrecord || o.events[0].PrevEnd != walname.LSN(ab) {
				t.Errorf("events %+v, want the overwrite record with PrevEnd %X", o.events, ab)
			}
		}
	})
	t.Run("spanning_event_records", func(t *testing.T) {
		// Commits of growing size across the boundary: decided while
		// their main data is within the kept windows, undecided beyond.
		for _, nsub := range []int{10, 1000, 2000, 2500, 3000, 8000, 200000} {
			w := walfixture.New(walfixture.Config{})
			g := &gen{w: w, cfg: w.Config()}
			w.Append(mainRec(21, 0, 1, 100, 'a'))
			toSegmentEnd(w, 1000)
			w.Append(g.commit(77, nsub))
			w.Append(mainRec(21, 0, 3, 100, 'c'))
			src := sourceOf(w)
			opts := wal.Options{SegmentSize: src.size}
			rd := readerOutcome(t, src, first, opts)
			ch := chainOutcome(summaries(t, src), first, opts)
			decided := sameOutcome(t, fmt.Sprintf("%d subxacts", nsub), rd, ch)
			// About 1000 bytes of the record are in segment 1, all kept.
			main := 16 + 4*nsub
			head := 24 + 5 + main - 1000
			if decided != (head <= wal.SpanPrefix+wal.SpanSuffix || main <= wal.SpanSuffix) {
				t.Errorf("%d subxacts (%d bytes of main data): decided %v (%v)", nsub, main, decided, ch.err)
			}
			if len(rd.events) != 1 || rd.events[0].XID != 77 {
				t.Errorf("%d subxacts: events %+v", nsub, rd.events)
			}
		}
	})
	t.Run("refused_page_inside_records", func(t *testing.T) {
		// A page refused while a record that fails later is read, and
		// while a long record after an abandoned one is read.
		w := walfixture.New(walfixture.Config{})
		w.Append(mainRec(21, 0, 1, 100, 'a'))
		bad, badEnd := w.Append(mainRec(21, 0, 2, 20000, 'b'))
		src := sourceOf(w)
		src.segs[1][badEnd-0x100000-1] ^= 1
		page := walname.LSN(bad&^8191 + 8192)
		o := checkChain(t, src, first, wal.Options{AllowedTLI: func(_ walname.TimelineID, p walname.LSN) bool { return p != page }})
		wantClass(t, o, wal.ErrTimeline)

		w = walfixture.New(walfixture.Config{})
		w.Append(mainRec(21, 0, 1, 100, 'a'))
		w.FillTo(pageEnd(w) - 200)
		ab := w.AppendTorn(mainRec(21, 0, 2, 9000, 'b'))
		ow, _ := w.Append(walfixture.Rec{RmID: 0, Info: wal.XLOGOverwriteContrecord, Body: walfixture.MainData(le(ab, int64(rpTime), make([]byte, 9000)))})
		w.Append(mainRec(21, 0, 3, 100, 'c'))
		page = walname.LSN(ow&^8191 + 8192)
		o = checkChain(t, sourceOf(w), first, wal.Options{AllowedTLI: func(_ walname.TimelineID, p walname.LSN) bool { return p != page }})
		wantClass(t, o, wal.ErrTimeline)
		if o.end != walname.LSN(ab) {
			t.Errorf("stopped at %s, want %X (before the abandoned record)", o.end, ab)
		}
	})
	t.Run("abandoned_then_long_record", func(t *testing.T) {
		// After the abandoned record comes a long one instead of
		// XLOG_OVERWRITE_CONTRECORD, running into the next segment.
		w := walfixture.New(walfixture.Config{})
		w.Append(mainRec(21, 0, 1, 100, 'a'))
		toSegmentEnd(w, 200)
		w.AppendTorn(mainRec(21, 0, 2, 5000, 'b'))
		w.Append(mainRec(21, 0, 3, 1500000, 'c'))
		w.Append(mainRec(21, 0, 4, 100, 'd'))
		wantClass(t, checkChain(t, sourceOf(w), first, wal.Options{}), wal.ErrOverwrite)
	})
	t.Run("record_over_three_segments", func(t *testing.T) {
		w := walfixture.New(walfixture.Config{})
		w.Append(mainRec(21, 0, 1, 100, 'a'))
		big, _ := w.Append(mainRec(21, 0, 2, 2500000, 'b'))
		w.Append(walfixture.Rec{RmID: 0, Info: wal.XLOGRestorePoint, Body: walfixture.MainData(le(int64(rpTime), make([]byte, 64)))})
		src := sourceOf(w)
		checkChain(t, src, first, wal.Options{})
		checkChain(t, src, walname.LSN(big), wal.Options{})
		checkChain(t, src, 0x200000, wal.Options{}) // a read starting inside it skips it
		// Damage in the middle segment's copy of it.
		src.segs[2][500000] ^= 1
		wantClass(t, checkChain(t, src, first, wal.Options{}), wal.ErrChecksum)
		// A read starting in the middle segment checks how much is left.
		src = sourceOf(w)
		binary.LittleEndian.PutUint32(src.segs[3][16:], binary.LittleEndian.Uint32(src.segs[3][16:])+8)
		wantClass(t, checkChain(t, src, 0x200000, wal.Options{}), wal.ErrContRecord)
	})
}

// TestChainPairs checks the boundary verdict of Chain(prev, next).
func TestChainPairs(t *testing.T) {
	scanAll := func(src *memSource) map[walname.SegNo]*wal.SegmentSummary {
		m := map[walname.SegNo]*wal.SegmentSummary{}
		for _, s := range summaries(t, src) {
			m[s.SegNo] = s
		}
		return m
	}
	// Intact WAL: every boundary is sound.
	pairs := 40
	if testing.Short() {
		pairs = 10
	}
	for c := range pairs {
		g := newGen(uint64(1000+c), walfixture.Config{})
		g.clean = true
		for i := range 60 {
			g.randomRecord(i)
		}
		src := sourceOf(g.w)
		sums := scanAll(src)
		for seg, prev := range sums {
			if next := sums[seg+1]; next != nil {
				if err := wal.Chain(prev, next); err != nil {
					t.Errorf("case %d (%s): %s -> %s: %v", c, strings.Join(g.notes, ","), prev.File, next.File, err)
				}
			}
		}
	}
	real := scanAll(realSource(t))
	for seg, prev := range real {
		if next := real[seg+1]; next != nil {
			if err := wal.Chain(prev, next); err != nil {
				t.Errorf("real %s -> %s: %v", prev.File, next.File, err)
			}
		}
	}

	// A record from segment 1 into segment 2, then damage.
	build := func() *memSource {
		w := walfixture.New(walfixture.Config{})
		w.Append(mainRec(21, 0, 1, 100, 'a'))
		toSegmentEnd(w, 1000)
		w.Append(mainRec(21, 0, 2, 5000, 'b'))
		w.Append(mainRec(21, 0, 3, 100, 'c'))
		return sourceOf(w)
	}
	for _, tc := range []struct {
		name  string
		patch func(src *memSource)
		want  error
	}{
		{"rem_len", func(src *memSource) { src.segs[2][16]++ }, wal.ErrContRecord},
		{"crc", func(src *memSource) { src.segs[2][100] ^= 1 }, wal.ErrChecksum},
		{"sysid", func(src *memSource) { src.segs[2][25] ^= 1 }, wal.ErrSysID},
		{"no_contrecord", func(src *memSource) { src.segs[2][2] &^= 1 }, wal.ErrTornRecord},
		{"truncated_prev", func(src *memSource) { src.segs[1] = src.segs[1][:1<<20-10] }, wal.ErrTruncated},
		{"zero_next", func(src *memSource) { clear(src.segs[2]) }, wal.ErrTornRecord},
		{"timeline", func(src *memSource) { src.segs[2][4] = 0 }, wal.ErrTimeline},
	} {
		src := build()
		tc.patch(src)
		sums := scanAll(src)
		if err := wal.Chain(sums[1], sums[2]); !errors.Is(err, tc.want) {
			t.Errorf("%s: Chain = %v, want %v", tc.name, err, tc.want)
		}
		if err := wal.Chain(sums[2], sums[1]); err == nil {
			t.Errorf("%s: segments out of order accepted", tc.name)
		}
	}
	// The first record of the next segment links back to the last one.
	w := walfixture.New(walfixture.Config{})
	w.Append(mainRec(21, 0, 1, 100, 'a'))
	w.Switch()
	stale := uint64(0x100000)
	w.Append(walfixture.Rec{RmID: 21, XID: 2, Body: walfixture.MainData([]byte("x")), Prev: &stale})
	sums := scanAll(sourceOf(w))
	if err := wal.Chain(sums[1], sums[2]); !errors.Is(err, wal.ErrPrevLink) {
		t.Errorf("stale link: Chain = %v", err)
	}
	// After a switch the next segment must start fresh.
	src := sourceOf(w)
	src.segs[2][2] |= 1
	binary.LittleEndian.PutUint32(src.segs[2][16:], 8)
	sums = scanAll(src)
	if err := wal.Chain(sums[1], sums[2]); !errors.Is(err, wal.ErrContRecord) {
		t.Errorf("continuation after a switch: Chain = %v", err)
	}
	// Damage inside prev is reported as prev's own stop.
	src = sourceOf(w)
	src.segs[1][0x30] ^= 1
	sums = scanAll(src)
	if err := wal.Chain(sums[1], sums[2]); !errors.Is(err, wal.ErrChecksum) {
		t.Errorf("damaged prev: Chain = %v", err)
	}
}

// TestRecordPrevEnd: PrevEnd is the previous record's EndLSN.
func TestRecordPrevEnd(t *testing.T) {
	src := realSource(t)
	r, err := wal.NewReader(t.Context(), src, walname.MinSegmentSize.StartLSN(realSegments(t)[0].seg), wal.Options{SegmentSize: walname.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var prev walname.LSN
	for n := 0; r.Next(); n++ {
		rec := r.Record()
		if n > 0 && rec.PrevEnd != prev {
			t.Fatalf("record at %s: PrevEnd %s, previous record ended at %s", rec.StartLSN, rec.PrevEnd, prev)
		}
		if rec.PrevEnd > rec.StartLSN || rec.StartLSN-rec.PrevEnd > 40 {
			t.Fatalf("record at %s: PrevEnd %s", rec.StartLSN, rec.PrevEnd)
		}
		prev = rec.EndLSN
	}
}

// fuzzArchive is WAL over three segments with records crossing both
// boundaries, one of them with its header split.
var fuzzArchive = func() func() *memSource {
	w := walfixture.New(walfixture.Config{})
	g := &gen{w: w, cfg: w.Config()}
	w.Append(mainRec(21, 0, 1, 100, 'a'))
	toSegmentEnd(w, 3000)
	w.Append(g.commit(70, 1500))
	w.Append(g.restorePoint(1))
	toSegmentEnd(w, 16)
	w.Append(g.commit(71, 3))
	w.Append(mainRec(21, 0, 2, 30000, 'b'))
	w.Append(g.commit(72, 0))
	return func() *memSource { return sourceOf(w) }
}()

// FuzzChainMatchesReader patches the bytes around the segment boundaries
// with fuzz input: the chain must still agree with the reader.
//
//	go test ./audit/wal -run '^$' -fuzz '^FuzzChainMatchesReader$' -fuzztime 60s
func FuzzChainMatchesReader(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1}, uint16(0), uint8(0))
	f.Add([]byte{0xFF}, uint16(3000), uint8(1))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, uint16(40), uint8(1))
	f.Add([]byte{0x08}, uint16(2), uint8(1))
	f.Add([]byte{0x01}, uint16(2), uint8(2))
	f.Fuzz(func(t *testing.T, patch []byte, at uint16, where uint8) {
		if len(patch) > 64 {
			return
		}
		src := fuzzArchive()
		// where: 0 end of segment 1, 1 start of segment 2, 2 end of
		// segment 2, 3 start of segment 3.
		seg := walname.SegNo(1 + int(where%4+1)/2)
		data := bytes.Clone(src.segs[seg])
		off := int(at) % 8192
		if where%2 == 0 {
			off = len(data) - 1 - off
		}
		for i, b := range patch {
			if off+i < len(data) {
				data[off+i] ^= b
			}
		}
		src.segs[seg] = data
		opts := wal.Options{SegmentSize: src.size}
		sums := summaries(t, src)
		for _, st := range []walname.LSN{0x100000, 0x100028} {
			rd := readerOutcome(t, src, st, opts)
			ch := chainOutcome(sums, st, opts)
			sameOutcome(t, fmt.Sprintf("patch %x at %d of %d", patch, off, seg), rd, ch)
		}
	})
}
