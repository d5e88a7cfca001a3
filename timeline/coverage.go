package timeline

import (
	"fmt"
	"sort"

	"github.com/walaudit/walaudit/walname"
)

// Range is a run of consecutive segment numbers, First to Last inclusive.
type Range struct {
	First walname.SegNo `json:"first"`
	Last  walname.SegNo `json:"last"`
}

// Count is the number of segments in the range.
func (r Range) Count() uint64 { return uint64(r.Last-r.First) + 1 }

// StartLSN is the first byte of the range's first segment.
func (r Range) StartLSN(sz walname.SegmentSize) walname.LSN { return sz.StartLSN(r.First) }

// EndLSN is the exclusive end of the range's last segment (saturating at
// the top of the LSN space).
func (r Range) EndLSN(sz walname.SegmentSize) walname.LSN { return segEnd(r.Last, sz) }

// Format names the range's first and last segment on timeline tli, e.g.
// "000000010000000000000006..00000001000000000000000A", or just one name.
func (r Range) Format(tli walname.TimelineID, sz walname.SegmentSize) string {
	if r.First == r.Last {
		return walname.SegmentName(tli, r.First, sz)
	}
	return walname.SegmentName(tli, r.First, sz) + ".." + walname.SegmentName(tli, r.Last, sz)
}

// Inventory records which segments of which timelines an archive holds,
// complete files and .partial files apart. The zero value is not usable;
// create one with [NewInventory]. Not safe for concurrent writes.
type Inventory struct {
	size    walname.SegmentSize
	full    map[walname.TimelineID]map[walname.SegNo]bool
	partial map[walname.TimelineID]map[walname.SegNo]bool
}

// NewInventory returns an empty inventory for segments of size sz.
func NewInventory(sz walname.SegmentSize) (*Inventory, error) {
	if err := sz.Validate(); err != nil {
		return nil, fmt.Errorf("new inventory: %w", err)
	}
	return &Inventory{size: sz, full: map[walname.TimelineID]map[walname.SegNo]bool{},
		partial: map[walname.TimelineID]map[walname.SegNo]bool{}}, nil
}

// Size returns the segment size the inventory was made for.
func (inv *Inventory) Size() walname.SegmentSize { return inv.size }

func add(m map[walname.TimelineID]map[walname.SegNo]bool, tli walname.TimelineID, seg walname.SegNo) {
	if m[tli] == nil {
		m[tli] = map[walname.SegNo]bool{}
	}
	m[tli][seg] = true
}

// Add records a complete segment.
func (inv *Inventory) Add(tli walname.TimelineID, seg walname.SegNo) { add(inv.full, tli, seg) }

// AddPartial records a .partial file.
func (inv *Inventory) AddPartial(tli walname.TimelineID, seg walname.SegNo) {
	add(inv.partial, tli, seg)
}

// AddName parses an archive object name with [walname.Parse] and records
// segments and .partial files (checksum and compression suffixes allowed).
// Other kinds (history and backup history files) are returned for the
// caller and not recorded. Names that are invalid, or impossible for the
// inventory's segment size, give an error.
func (inv *Inventory) AddName(name string) (walname.Name, error) {
	n, err := walname.Parse(name)
	if err != nil {
		return n, fmt.Errorf("add %q to inventory: %w", name, err)
	}
	if n.Kind != walname.KindSegment && n.Kind != walname.KindPartial {
		return n, nil
	}
	seg, err := n.SegNo(inv.size)
	if err != nil {
		return n, fmt.Errorf("add %q to inventory: %w", name, err)
	}
	if n.Kind == walname.KindSegment {
		inv.Add(n.TLI, seg)
	} else {
		inv.AddPartial(n.TLI, seg)
	}
	return n, nil
}

// Has reports whether the complete segment is present. It is an
// [ExistsFunc].
func (inv *Inventory) Has(tli walname.TimelineID, seg walname.SegNo) bool { return inv.full[tli][seg] }

// HasPartial reports whether a .partial of the segment is present. It is
// an [ExistsFunc], meant for [PlanRequest].Partial.
func (inv *Inventory) HasPartial(tli walname.TimelineID, seg walname.SegNo) bool {
	return inv.partial[tli][seg]
}

// Timelines returns the timelines with at least one segment or .partial,
// sorted.
func (inv *Inventory) Timelines() []walname.TimelineID {
	seen := map[walname.TimelineID]bool{}
	for t := range inv.full {
		seen[t] = true
	}
	for t := range inv.partial {
		seen[t] = true
	}
	return sortedKeys(seen)
}

// Partials returns the segment numbers of tli's .partial files, sorted.
func (inv *Inventory) Partials(tli walname.TimelineID) []walname.SegNo {
	return sortedSegs(inv.partial[tli])
}

func sortedSegs(m map[walname.SegNo]bool) []walname.SegNo {
	out := make([]walname.SegNo, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Coverage returns the maximal runs of consecutive complete segments of
// timeline tli, in order. .partial files do not count.
func (inv *Inventory) Coverage(tli walname.TimelineID) []Range {
	var out []Range
	for _, s := range sortedSegs(inv.full[tli]) {
		if n := len(out); n > 0 && out[n-1].Last+1 == s {
			out[n-1].Last = s
			continue
		}
		out = append(out, Range{First: s, Last: s})
	}
	return out
}

// Gaps returns the runs of segments missing between tli's first and last
// complete segment, in order.
func (inv *Inventory) Gaps(tli walname.TimelineID) []Range {
	cov := inv.Coverage(tli)
	var out []Range
	for i := 1; i < len(cov); i++ {
		out = append(out, Range{First: cov[i-1].Last + 1, Last: cov[i].First - 1})
	}
	return out
}
