package audit

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"sort"
	"time"

	"github.com/walaudit/walaudit/audit/codec"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// Object is one archive object whose name walaudit understood.
type Object struct {
	Key     string
	Size    int64
	ModTime time.Time
	Name    walname.Name
	// Broken says why recovery could not use this object even though it
	// exists (e.g. wrong size: PostgreSQL's restore would stop with FATAL).
	Broken string
}

// Inventory is everything a WAL archive holds, classified. Maps are keyed
// by timeline and segment number; a segment may be stored in several forms
// (plain and compressed), all kept, usable ones first.
type Inventory struct {
	Store       store.Store
	SegmentSize walname.SegmentSize
	// SystemID is the system identifier of the first segment read, 0 if none was readable.
	SystemID uint64
	// PageMagic of that segment (identifies the major version).
	PageMagic uint16

	Segments        map[walname.TimelineID]map[walname.SegNo][]*Object
	Partials        map[walname.TimelineID]map[walname.SegNo][]*Object
	Histories       map[walname.TimelineID]*Object
	BackupHistories []*Object
	Unknown         []*Object
	Findings        []finding.Finding
	// Newest is the most recently modified WAL object (segment, partial or history).
	Newest *Object
}

// ScanOptions tune [Scan].
type ScanOptions struct {
	// SegmentSize overrides detection from the first segment's long page header.
	SegmentSize walname.SegmentSize
}

// Scan lists a plain archive (the layout archive_command = 'cp %p …/%f'
// produces, flat) and classifies every object.
func Scan(ctx context.Context, st store.Store, opts ScanOptions) (*Inventory, error) {
	inv := &Inventory{
		Store:     st,
		Segments:  map[walname.TimelineID]map[walname.SegNo][]*Object{},
		Partials:  map[walname.TimelineID]map[walname.SegNo][]*Object{},
		Histories: map[walname.TimelineID]*Object{},
	}
	var objs []*Object
	err := st.List(ctx, "", func(oi store.ObjectInfo) error {
		base := path.Base(oi.Key)
		n, err := walname.Parse(base)
		o := &Object{Key: oi.Key, Size: oi.Size, ModTime: oi.ModTime, Name: n}
		if err != nil {
			inv.Unknown = append(inv.Unknown, o)
			return nil
		}
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list archive %s: %w", st, err)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	sort.Slice(inv.Unknown, func(i, j int) bool { return inv.Unknown[i].Key < inv.Unknown[j].Key })

	inv.SegmentSize = opts.SegmentSize
	if inv.SegmentSize == 0 {
		if err := inv.detectSegmentSize(ctx, objs); err != nil {
			return nil, err
		}
	}
	if err := inv.SegmentSize.Validate(); err != nil {
		return nil, err
	}
	for _, o := range objs {
		inv.add(o)
	}
	for _, o := range inv.Unknown {
		inv.Findings = append(inv.Findings, finding.Finding{Severity: finding.Warning, Code: "UNKNOWN_FILE", File: o.Key,
			Message: "not a WAL segment, .partial, .backup or .history file", Hint: "leftover from an archive_command or another tool? walaudit ignores it"})
	}
	for _, m := range inv.Segments {
		for _, forms := range m {
			sort.SliceStable(forms, func(i, j int) bool { return forms[i].Broken == "" && forms[j].Broken != "" })
		}
	}
	return inv, nil
}

func (inv *Inventory) add(o *Object) {
	n := o.Name
	if o.Name.Kind != walname.KindBackupHistory && (inv.Newest == nil || o.ModTime.After(inv.Newest.ModTime)) {
		inv.Newest = o
	}
	switch n.Kind {
	case walname.KindTimelineHistory:
		if prev, ok := inv.Histories[n.TLI]; ok {
			inv.Findings = append(inv.Findings, finding.Finding{Severity: finding.Info, Code: "DUPLICATE_FILE", File: o.Key,
				Message: fmt.Sprintf("history file of timeline %d is stored twice (also %s); using %s", n.TLI, prev.Key, prev.Key)})
			return
		}
		inv.Histories[n.TLI] = o
	case walname.KindBackupHistory:
		inv.BackupHistories = append(inv.BackupHistories, o)
	case walname.KindSegment, walname.KindPartial:
		seg, err := n.SegNo(inv.SegmentSize)
		if err != nil {
			inv.Findings = append(inv.Findings, finding.Finding{Severity: finding.Warning, Code: "UNKNOWN_FILE", File: o.Key,
				Message: fmt.Sprintf("segment name impossible with %s segments: %v", inv.SegmentSize, err)})
			inv.Unknown = append(inv.Unknown, o)
			return
		}
		if n.Compression == walname.CompressNone && o.Size != int64(inv.SegmentSize) && n.Kind == walname.KindSegment {
			o.Broken = fmt.Sprintf("size %d bytes, not the segment size %d: PostgreSQL's restore stops with FATAL \"archive file has wrong size\"", o.Size, inv.SegmentSize)
			inv.Findings = append(inv.Findings, finding.Finding{Severity: finding.Error, Code: "SEGMENT_WRONG_SIZE", File: o.Key,
				LSN: inv.SegmentSize.StartLSN(seg), Timeline: n.TLI, Message: o.Broken,
				Hint: "the file is truncated or was still being written; restore a good copy from another source"})
		}
		m := inv.Segments
		if n.Kind == walname.KindPartial {
			m = inv.Partials
		}
		if m[n.TLI] == nil {
			m[n.TLI] = map[walname.SegNo][]*Object{}
		}
		if len(m[n.TLI][seg]) > 0 {
			inv.Findings = append(inv.Findings, finding.Finding{Severity: finding.Info, Code: "DUPLICATE_FILE", File: o.Key, Timeline: n.TLI,
				Message: fmt.Sprintf("%s is stored more than once (also %s)", n.Base(), m[n.TLI][seg][0].Key)})
		}
		m[n.TLI][seg] = append(m[n.TLI][seg], o)
	}
}

// detectSegmentSize reads the long page header of the first uncompressed
// segment (xlp_seg_size at offset 32, see FORMATS §3.2).
func (inv *Inventory) detectSegmentSize(ctx context.Context, objs []*Object) error {
	for _, o := range objs {
		if (o.Name.Kind != walname.KindSegment && o.Name.Kind != walname.KindPartial) || o.Name.Compression != walname.CompressNone {
			continue
		}
		rc, err := inv.Store.Open(ctx, o.Key)
		if err != nil {
			return fmt.Errorf("read segment size from %s: %w", o.Key, err)
		}
		var hdr [40]byte
		_, err = io.ReadFull(rc, hdr[:])
		rc.Close()
		if err != nil {
			continue // a truncated file: try the next one; the size check reports it
		}
		magic := binary.LittleEndian.Uint16(hdr[0:])
		info := binary.LittleEndian.Uint16(hdr[2:])
		if info&0x0002 == 0 || magic&0xFF00 != 0xD100 {
			continue
		}
		sz := walname.SegmentSize(binary.LittleEndian.Uint32(hdr[32:]))
		if sz.Validate() != nil {
			continue
		}
		inv.SegmentSize = sz
		inv.SystemID = binary.LittleEndian.Uint64(hdr[24:])
		inv.PageMagic = magic
		return nil
	}
	if len(objs) == 0 {
		inv.SegmentSize = walname.DefaultSegmentSize
		return nil
	}
	inv.SegmentSize = walname.DefaultSegmentSize
	inv.Findings = append(inv.Findings, finding.Finding{Severity: finding.Warning, Code: "SEGMENT_SIZE_UNKNOWN",
		Message: "no readable segment header to learn wal_segment_size from; assuming 16MB", Hint: "pass --segment-size if the cluster uses another size"})
	return nil
}

// Timelines returns every timeline that has segments, partials or a history file, ascending.
func (inv *Inventory) Timelines() []walname.TimelineID {
	set := map[walname.TimelineID]bool{}
	for t := range inv.Segments {
		set[t] = true
	}
	for t := range inv.Partials {
		set[t] = true
	}
	for t := range inv.Histories {
		set[t] = true
	}
	out := make([]walname.TimelineID, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Segment returns the first usable stored form of a segment, or nil.
func (inv *Inventory) Segment(tli walname.TimelineID, seg walname.SegNo) *Object {
	for _, o := range inv.Segments[tli][seg] {
		if o.Broken == "" {
			return o
		}
	}
	return nil
}

// AnySegment returns the first stored form, usable or not, or nil.
func (inv *Inventory) AnySegment(tli walname.TimelineID, seg walname.SegNo) *Object {
	if forms := inv.Segments[tli][seg]; len(forms) > 0 {
		return forms[0]
	}
	return nil
}

// Partial returns the .partial of a segment, or nil.
func (inv *Inventory) Partial(tli walname.TimelineID, seg walname.SegNo) *Object {
	if forms := inv.Partials[tli][seg]; len(forms) > 0 {
		return forms[0]
	}
	return nil
}

// SegNos returns the segment numbers present on a timeline, ascending.
func (inv *Inventory) SegNos(tli walname.TimelineID) []walname.SegNo {
	out := make([]walname.SegNo, 0, len(inv.Segments[tli]))
	for s := range inv.Segments[tli] {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Open returns an object's content as PostgreSQL would receive it from
// restore_command: decompressed (by suffix, confirmed by magic bytes; by
// magic alone for plain names, as Barman stores them), and never more than
// a segment's size plus one byte, so a damaged or hostile file cannot
// exhaust memory.
func (inv *Inventory) Open(ctx context.Context, o *Object) (io.ReadCloser, error) {
	return openDecompressed(ctx, inv.Store, o.Key, o.Name.Compression, int64(inv.SegmentSize))
}

func openDecompressed(ctx context.Context, st store.Store, key string, c walname.Compression, limit int64) (io.ReadCloser, error) {
	rc, err := st.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	dec, _, err := codec.Open(rc, c)
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("decompress %s: %w", key, err)
	}
	return &closeBoth{Reader: codec.LimitReader(dec, limit), closers: []io.Closer{dec, rc}}, nil
}

type closeBoth struct {
	io.Reader
	closers []io.Closer
}

func (c *closeBoth) Close() error {
	var first error
	for _, cl := range c.closers {
		if err := cl.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
