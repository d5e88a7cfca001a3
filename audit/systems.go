package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// SystemRange is a run of one timeline's archived segments whose long page
// headers carry one database system identifier.
type SystemRange struct {
	SystemID    uint64
	TLI         walname.TimelineID
	First, Last walname.SegNo
	Segments    int
}

// Systems maps the archive's segments to database systems. A plain archive
// may legitimately hold two system identifiers across a pg_upgrade: the new
// cluster continues the old one's segment numbers (pg_upgrade sets its WAL
// start past the old cluster's end), so each timeline's segments form runs
// of one system each. Systems finds the runs by bisection on the first
// page headers (a few reads per timeline, not one per segment); a single
// foreign segment inside a run is not a run of its own and is left to the
// WAL checks, which report it as foreign.
type Systems struct {
	Ranges []SystemRange
}

// IDs returns the distinct system identifiers, in the order their first
// segments appear (oldest first).
func (s *Systems) IDs() []uint64 {
	if s == nil {
		return nil
	}
	type first struct {
		id  uint64
		tli walname.TimelineID
		seg walname.SegNo
	}
	seen := map[uint64]first{}
	for _, r := range s.Ranges {
		if f, ok := seen[r.SystemID]; !ok || r.First < f.seg || (r.First == f.seg && r.TLI < f.tli) {
			seen[r.SystemID] = first{r.SystemID, r.TLI, r.First}
		}
	}
	out := make([]first, 0, len(seen))
	for _, f := range seen {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].seg != out[j].seg {
			return out[i].seg < out[j].seg
		}
		return out[i].tli < out[j].tli
	})
	ids := make([]uint64, len(out))
	for i, f := range out {
		ids[i] = f.id
	}
	return ids
}

// Multiple reports whether more than one system's WAL is archived.
func (s *Systems) Multiple() bool { return len(s.IDs()) > 1 }

// Of returns the system of a timeline's segment: the run holding it, or
// the run before it on that timeline (a gap belongs to the system whose
// WAL precedes it); ok is false when no run precedes it.
func (s *Systems) Of(tli walname.TimelineID, seg walname.SegNo) (uint64, bool) {
	if s == nil {
		return 0, false
	}
	var id uint64
	ok := false
	for _, r := range s.Ranges {
		if r.TLI == tli && r.First <= seg {
			id, ok = r.SystemID, true
		}
	}
	return id, ok
}

// StartsAt returns the run that begins exactly at a timeline's segment.
func (s *Systems) StartsAt(tli walname.TimelineID, seg walname.SegNo) (SystemRange, bool) {
	if s != nil {
		for _, r := range s.Ranges {
			if r.TLI == tli && r.First == seg {
				return r, true
			}
		}
	}
	return SystemRange{}, false
}

// Boundary reports whether a new system's run begins at a timeline's
// segment after another system's run: the end of the earlier system's WAL,
// not damage.
func (s *Systems) Boundary(tli walname.TimelineID, seg walname.SegNo) (from, to uint64, ok bool) {
	if s == nil {
		return 0, 0, false
	}
	for i, r := range s.Ranges {
		if r.TLI != tli || r.First != seg {
			continue
		}
		for j := i - 1; j >= 0; j-- {
			if p := s.Ranges[j]; p.TLI == tli && p.SystemID != r.SystemID {
				return p.SystemID, r.SystemID, true
			}
		}
	}
	return 0, 0, false
}

// Finding describes the archive's systems when there are several.
func (s *Systems) Finding(sz walname.SegmentSize) (finding.Finding, bool) {
	ids := s.IDs()
	if len(ids) < 2 {
		return finding.Finding{}, false
	}
	var parts []string
	for _, id := range ids {
		var runs []string
		for _, r := range s.Ranges {
			if r.SystemID == id {
				runs = append(runs, fmt.Sprintf("%s..%s", walname.SegmentName(r.TLI, r.First, sz), walname.SegmentName(r.TLI, r.Last, sz)))
			}
		}
		parts = append(parts, fmt.Sprintf("%d (%s)", id, strings.Join(runs, ", ")))
	}
	return finding.Finding{Severity: finding.Info, Code: "MULTIPLE_SYSTEMS",
		Message: fmt.Sprintf("the archive holds the WAL of %d database systems, as after a pg_upgrade: %s; each backup is checked against its own system's WAL", len(ids), strings.Join(parts, "; ")),
		Hint:    "a backup's recovery ends where its system's WAL ends; backups of the old system cannot reach targets after the upgrade"}, true
}

// FindSystems maps every timeline's segments to systems (see [Systems]).
// Unreadable first pages (damaged, truncated, encrypted) are skipped: the
// WAL checks report them.
func (inv *Inventory) FindSystems(ctx context.Context) (*Systems, error) {
	out := &Systems{}
	if inv.Encrypted != "" {
		return out, nil
	}
	for _, tli := range inv.Timelines() {
		segs := inv.SegNos(tli)
		if len(segs) == 0 {
			continue
		}
		f := &sysFinder{ctx: ctx, inv: inv, tli: tli, segs: segs, ids: map[int]uint64{}}
		lo, err := f.readable(0, len(segs), 1)
		if err != nil {
			return nil, err
		}
		if lo < 0 {
			continue
		}
		hi, err := f.readable(len(segs)-1, lo-1, -1)
		if err != nil {
			return nil, err
		}
		var cuts []int // indexes where a new system's run starts
		if err := f.bisect(lo, hi, &cuts); err != nil {
			return nil, err
		}
		start := 0 // unreadable first files belong to the first run
		for i, c := range append(cuts, len(segs)) {
			last := c - 1
			id := f.ids[lo]
			if i > 0 {
				id = f.ids[start]
			}
			out.Ranges = append(out.Ranges, SystemRange{SystemID: id, TLI: tli, First: segs[start], Last: segs[last], Segments: last - start + 1})
			start = c
		}
	}
	return out, nil
}

type sysFinder struct {
	ctx  context.Context
	inv  *Inventory
	tli  walname.TimelineID
	segs []walname.SegNo
	ids  map[int]uint64 // index -> system identifier, for readable first pages
	bad  map[int]bool
}

// readable returns the first index from i (stepping by step, stopping
// before end) whose first page header can be read, or -1.
func (f *sysFinder) readable(i, end, step int) (int, error) {
	for ; i != end; i += step {
		ok, err := f.read(i)
		if err != nil || ok {
			return i, err
		}
	}
	return -1, nil
}

func (f *sysFinder) read(i int) (bool, error) {
	if _, ok := f.ids[i]; ok {
		return true, nil
	}
	if f.bad[i] {
		return false, nil
	}
	o := f.inv.Segment(f.tli, f.segs[i])
	ok := false
	if o != nil {
		id, good, err := f.inv.segmentSystem(f.ctx, o)
		if err != nil {
			return false, err
		}
		if good {
			f.ids[i], ok = id, true
		}
	}
	if !ok {
		if f.bad == nil {
			f.bad = map[int]bool{}
		}
		f.bad[i] = true
	}
	return ok, nil
}

// bisect finds the run starts in (lo, hi], both readable, assuming runs:
// equal ends mean one run.
func (f *sysFinder) bisect(lo, hi int, cuts *[]int) error {
	if f.ids[lo] == f.ids[hi] {
		return nil
	}
	if hi-lo == 1 {
		*cuts = append(*cuts, hi)
		return nil
	}
	mid := lo + (hi-lo)/2
	// The nearest readable index inside (lo, hi), from mid outwards.
	m := -1
	for d := 0; m < 0 && (mid-d > lo || mid+d < hi); d++ {
		for _, c := range []int{mid - d, mid + d} {
			if c <= lo || c >= hi {
				continue
			}
			ok, err := f.read(c)
			if err != nil {
				return err
			}
			if ok {
				m = c
				break
			}
		}
	}
	if m < 0 {
		// Nothing readable in between: the new run starts after the
		// unreadable files, which the WAL checks report.
		*cuts = append(*cuts, hi)
		return nil
	}
	if err := f.bisect(lo, m, cuts); err != nil {
		return err
	}
	return f.bisect(m, hi, cuts)
}

// segmentSystem returns a segment's system identifier, ok false when its
// first page is not a readable long header.
func (inv *Inventory) segmentSystem(ctx context.Context, o *Object) (uint64, bool, error) {
	h, ok, err := readLongHeader(ctx, inv.Store, o)
	return h.sysid, ok, err
}

// longHeader is what walaudit needs of a segment's long page header
// (XLogLongPageHeaderData, FORMATS §3.2).
type longHeader struct {
	magic   uint16
	sysid   uint64
	segSize walname.SegmentSize
}

// readLongHeader reads the first 40 bytes of a segment, decompressed. ok
// is false when the file is gone since listed, damaged, too short, or does
// not start with a long page header of a known format family: the WAL
// checks report those. Errors are for a store that could not be asked.
func readLongHeader(ctx context.Context, st store.Store, o *Object) (longHeader, bool, error) {
	rc, err := openDecompressed(ctx, st, o.Key, o.Name.Compression, 40)
	if err != nil {
		if store.IsNotExist(err) || isContentError(err) {
			return longHeader{}, false, nil
		}
		return longHeader{}, false, fmt.Errorf("read the first page of %s: %w", o.Key, err)
	}
	defer rc.Close()
	var hdr [40]byte
	if _, err := io.ReadFull(rc, hdr[:]); err != nil {
		if isContentError(err) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return longHeader{}, false, nil
		}
		return longHeader{}, false, fmt.Errorf("read the first page of %s: %w", o.Key, err)
	}
	magic := binary.LittleEndian.Uint16(hdr[0:])
	info := binary.LittleEndian.Uint16(hdr[2:])
	if info&0x0002 == 0 || magic&0xFF00 != 0xD100 { // XLP_LONG_HEADER; 0xD1xx magics
		return longHeader{}, false, nil
	}
	return longHeader{magic: magic, sysid: binary.LittleEndian.Uint64(hdr[24:]),
		segSize: walname.SegmentSize(binary.LittleEndian.Uint32(hdr[32:]))}, true, nil
}

// FormatSystemID renders a system identifier as reports print it.
func FormatSystemID(id uint64) string { return strconv.FormatUint(id, 10) }
