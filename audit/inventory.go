package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/codec"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/layout"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// Object is one archive object whose name walaudit understood: a
// segment, .partial, .backup or .history file (the same type the layouts
// produce). Name.Compression is the compression of the stored bytes.
type Object = layout.Object

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

	// Layout is the repository layout read (plain, pgbackrest, walg,
	// barman); Cluster names the audited cluster inside a repository that
	// holds several (pgBackRest "stanza/archive-id"), "" otherwise.
	Layout  string
	Cluster string
	// Encrypted, when not "", says why no WAL content can be read: Open
	// then fails with an error wrapping [layout.ErrEncrypted].
	Encrypted string
	// ToolBackups are the backups the repository's catalogue describes
	// (pgBackRest backup.info, WAL-G sentinels, Barman backup.info), with
	// BackupMeta (by backup ID) for what only the tool knows.
	ToolBackups []*backup.Backup
	BackupMeta  map[string]*layout.BackupMeta

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
	// Layout forces a repository layout (plain, pgbackrest, walg, barman);
	// "" or "auto" detects it.
	Layout string
	// Stanza picks the pgBackRest stanza (or the Barman server directory
	// when the store holds several barman-cloud servers).
	Stanza string
	// ArchiveID picks one pgBackRest archive id (a cluster before or after
	// pg_upgrade); by default the current cluster's ids.
	ArchiveID string
	// VerifyChecksums compares each pgBackRest WAL file's content with the
	// SHA-1 in its name (reads every file).
	VerifyChecksums bool
}

func (o ScanOptions) layoutOptions() layout.Options {
	return layout.Options{Layout: o.Layout, Stanza: o.Stanza, ArchiveID: o.ArchiveID, VerifyChecksums: o.VerifyChecksums}
}

// Scan lists an archive through its layout (detected unless opts.Layout
// names one: a plain archive_command directory, a pgBackRest repository,
// a WAL-G prefix or a Barman server directory) and classifies every WAL
// object. A store that holds files but no WAL archive walaudit knows
// gives an error wrapping [layout.ErrUnrecognized].
func Scan(ctx context.Context, st store.Store, opts ScanOptions) (*Inventory, error) {
	lst, err := layout.Scan(ctx, st, opts.layoutOptions())
	if err != nil {
		return nil, err
	}
	return fromListing(ctx, st, lst, opts)
}

// fromListing builds the inventory of a layout's listing.
func fromListing(ctx context.Context, st store.Store, lst *layout.Listing, opts ScanOptions) (*Inventory, error) {
	inv := &Inventory{
		Store:       st,
		Layout:      lst.Layout,
		Cluster:     lst.Cluster,
		Encrypted:   lst.Encrypted,
		ToolBackups: lst.Backups,
		BackupMeta:  lst.Meta,
		Segments:    map[walname.TimelineID]map[walname.SegNo][]*Object{},
		Partials:    map[walname.TimelineID]map[walname.SegNo][]*Object{},
		Histories:   map[walname.TimelineID]*Object{},
		Unknown:     lst.Unknown,
	}
	if inv.BackupMeta == nil {
		inv.BackupMeta = map[string]*layout.BackupMeta{}
	}
	inv.Findings = append(inv.Findings, lst.Findings...)
	objs := lst.WAL

	inv.SegmentSize = opts.SegmentSize
	if inv.SegmentSize == 0 {
		if err := inv.detectSegmentSize(ctx, objs, lst); err != nil {
			return nil, err
		}
	}
	if err := inv.SegmentSize.Validate(); err != nil {
		return nil, err
	}
	if inv.SystemID == 0 {
		inv.SystemID = lst.SystemID
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

// detectSegmentSize reads the long page header (xlp_seg_size at offset
// 32, see FORMATS §3.2) of the first segment, decompressing it when it is
// stored compressed. An encrypted repository takes the tool's metadata or
// the default.
func (inv *Inventory) detectSegmentSize(ctx context.Context, objs []*Object, lst *layout.Listing) error {
	tried := 0
	for _, o := range objs {
		if inv.Encrypted != "" || tried == maxHeaderProbes {
			break
		}
		if o.Name.Kind != walname.KindSegment && o.Name.Kind != walname.KindPartial {
			continue
		}
		tried++
		h, ok, err := readLongHeader(ctx, inv.Store, o)
		if err != nil {
			return fmt.Errorf("read segment size: %w", err)
		}
		if !ok {
			continue // gone since listed, damaged or truncated: the audit reports it
		}
		sz := h.segSize
		if sz.Validate() != nil {
			continue
		}
		inv.SegmentSize = sz
		inv.SystemID = h.sysid
		inv.PageMagic = h.magic
		return nil
	}
	if lst != nil && lst.SegmentSize != 0 {
		inv.SegmentSize = lst.SegmentSize
		return nil
	}
	inv.SegmentSize = walname.DefaultSegmentSize
	hasSegments := false
	for _, o := range objs {
		if o.Name.Kind == walname.KindSegment || o.Name.Kind == walname.KindPartial {
			hasSegments = true
			break
		}
	}
	if !hasSegments {
		return nil
	}
	inv.Findings = append(inv.Findings, finding.Finding{Severity: finding.Warning, Code: "SEGMENT_SIZE_UNKNOWN",
		Message: "no readable segment header to learn wal_segment_size from; assuming 16MB", Hint: "pass --segment-size if the cluster uses another size"})
	return nil
}

// maxHeaderProbes bounds the segments tried for the segment size: a
// damaged archive must not be read whole just to learn it.
const maxHeaderProbes = 16

// isContentError reports errors that describe a file's bytes (damaged or
// mislabelled compression), not a store that could not be asked.
func isContentError(err error) bool {
	return errors.Is(err, codec.ErrCorrupt) || errors.Is(err, codec.ErrMismatch) || errors.Is(err, codec.ErrUnsupported) || errors.Is(err, codec.ErrTooLarge)
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
	if inv.Encrypted != "" {
		return nil, fmt.Errorf("%s: %w: %s", o.Key, layout.ErrEncrypted, inv.Encrypted)
	}
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
