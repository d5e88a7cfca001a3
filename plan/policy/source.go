package policy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// Source is an archive loaded once, on which deletions can be simulated
// without touching it: the listing is taken once, small metadata files are
// read once, and the backups directory is scanned once.
type Source struct {
	// Base is the archive as it is.
	Base *audit.Archive
	// Objects is the listing, sorted by key.
	Objects []store.ObjectInfo

	st       store.Store
	opts     audit.LoadOptions
	snap     *snapStore
	baseOnly []finding.Finding // findings of the archive loaded without the backups directory
	byKey    map[string]store.ObjectInfo
}

// List takes the archive's listing, sorted by key.
func List(ctx context.Context, st store.Store) ([]store.ObjectInfo, error) {
	var objs []store.ObjectInfo
	if err := st.List(ctx, "", func(oi store.ObjectInfo) error {
		objs = append(objs, oi)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list archive %s: %w", st, err)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	return objs, nil
}

// Load lists and loads the archive once.
func Load(ctx context.Context, st store.Store, opts audit.LoadOptions) (*Source, error) {
	objs, err := List(ctx, st)
	if err != nil {
		return nil, err
	}
	return LoadListed(ctx, st, objs, opts)
}

// LoadListed loads the archive from a listing taken by [List].
func LoadListed(ctx context.Context, st store.Store, objs []store.ObjectInfo, opts audit.LoadOptions) (*Source, error) {
	snap := &snapStore{Store: st, cache: map[string][]byte{}, objs: objs}
	s := &Source{st: st, opts: opts, snap: snap, Objects: snap.objs, byKey: map[string]store.ObjectInfo{}}
	for _, o := range snap.objs {
		s.byKey[o.Key] = o
	}
	base, err := audit.Load(ctx, snap, opts)
	if err != nil {
		return nil, err
	}
	s.Base = base
	if opts.BackupsDir != "" {
		archOnly, err := audit.Load(ctx, snap, audit.LoadOptions{ScanOptions: opts.ScanOptions})
		if err != nil {
			return nil, err
		}
		s.baseOnly = archOnly.Findings
	} else {
		s.baseOnly = base.Findings
	}
	return s, nil
}

// Store is the archive's store.
func (s *Source) Store() store.Store { return s.st }

// Deletion is a set of archive objects and backups to simulate away.
type Deletion struct {
	// Keys are archive object keys.
	Keys map[string]bool
	// Backups are ids of backups from the backups directory.
	Backups map[string]bool
	// Items are the deleted things in LSN order, for reports.
	Items []Item
}

// Item is one thing a deletion removes.
type Item struct {
	// Key is the archive object key, or the backup directory.
	Key string `json:"key"`
	// Entry is the line of the deletion list that named it.
	Entry string `json:"entry,omitempty"`
	// Size in bytes (0 for a backup directory).
	Size int64 `json:"size"`
	// LSN orders items: a segment's start, a backup's start, a history
	// file's switch point; unknown files sort last.
	LSN walname.LSN `json:"lsn"`
	// Backup is set when the item is a backup directory.
	Backup string `json:"backup,omitempty"`
	kind   walname.Kind
	tli    walname.TimelineID
}

// Len is the number of items.
func (d *Deletion) Len() int {
	if d == nil {
		return 0
	}
	return len(d.Items)
}

// Prefix returns the deletion of the first n items.
func (d *Deletion) Prefix(n int) *Deletion {
	out := &Deletion{Keys: map[string]bool{}, Backups: map[string]bool{}}
	for _, it := range d.Items[:n] {
		out.add(it)
	}
	return out
}

func (d *Deletion) add(it Item) {
	if d.Keys == nil {
		d.Keys, d.Backups = map[string]bool{}, map[string]bool{}
	}
	if it.Backup != "" {
		if d.Backups[it.Backup] {
			return
		}
		d.Backups[it.Backup] = true
	} else {
		if d.Keys[it.Key] {
			return
		}
		d.Keys[it.Key] = true
	}
	d.Items = append(d.Items, it)
}

// Bytes is the total size of the deleted archive objects.
func (d *Deletion) Bytes() int64 {
	var n int64
	for _, it := range d.Items {
		n += it.Size
	}
	return n
}

func (d *Deletion) sortLSN() {
	sort.SliceStable(d.Items, func(i, j int) bool {
		a, b := d.Items[i], d.Items[j]
		if (a.kind == walname.KindUnknown) != (b.kind == walname.KindUnknown) {
			return b.kind == walname.KindUnknown
		}
		if a.LSN != b.LSN {
			return a.LSN < b.LSN
		}
		if a.tli != b.tli {
			return a.tli < b.tli
		}
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		return a.Key < b.Key
	})
}

// NotFound lists deletion-list entries that name nothing stored.
type NotFound struct {
	Entries []string
}

func (e *NotFound) Error() string {
	n := len(e.Entries)
	list := e.Entries
	if n > 10 {
		list = list[:10]
	}
	s := strings.Join(list, ", ")
	if n > 10 {
		s += fmt.Sprintf(" and %d more", n-10)
	}
	return fmt.Sprintf("%d %s in the deletion list name no file in the archive: %s", n, pluralWord(n, "entry", "entries"), s)
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ParseList reads a deletion list: one entry per line, blank lines and
// lines starting with # ignored.
func ParseList(r io.Reader) ([]string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out, nil
}

// Resolve maps deletion-list entries to archive objects and backups. An
// entry is an object key, a plain file name, a full object key or URL of
// the archive, a path under the archive directory, or a path of (or
// inside) a backup in the backups directory. A plain segment, .partial,
// .history or .backup name without compression or checksum suffix stands
// for every stored form of that file. Entries that name nothing give a
// [*NotFound] error listing all of them.
func (s *Source) Resolve(entries []string) (*Deletion, error) {
	d := &Deletion{Keys: map[string]bool{}, Backups: map[string]bool{}}
	byBase := map[string][]store.ObjectInfo{}
	byIdentity := map[string][]store.ObjectInfo{}
	for _, o := range s.Objects {
		b := path.Base(o.Key)
		byBase[b] = append(byBase[b], o)
		if n, err := walname.Parse(b); err == nil {
			byIdentity[n.Base()] = append(byIdentity[n.Base()], o)
		}
	}
	prefixes := s.keyPrefixes()
	var missing []string
	for _, e := range entries {
		var hits []store.ObjectInfo
		rel, isPath := e, strings.Contains(e, "/")
		for _, p := range prefixes {
			if r, ok := strings.CutPrefix(e, p); ok {
				rel = r
				break
			}
		}
		rel = strings.TrimPrefix(rel, "./")
		switch {
		case isPath:
			// A path or key names exactly one stored object.
			if o, ok := s.byKey[rel]; ok {
				hits = append(hits, o)
			} else if l, ok := s.st.(*store.Local); ok {
				// A path relative to the working directory.
				if abs, err := filepath.Abs(e); err == nil {
					if r, ok := strings.CutPrefix(filepath.ToSlash(abs), filepath.ToSlash(l.Root())+"/"); ok {
						if o, ok := s.byKey[r]; ok {
							hits = append(hits, o)
						}
					}
				}
			}
		default:
			// A plain name: the objects of that name, and for a name
			// without compression or checksum suffix every stored form.
			hits = append(hits, byBase[rel]...)
			if n, err := walname.Parse(rel); err == nil && n.Compression == walname.CompressNone && n.Checksum == "" && n.Base() == rel {
				for _, o := range byIdentity[rel] {
					if path.Base(o.Key) != rel {
						hits = append(hits, o)
					}
				}
			}
		}
		if len(hits) == 0 {
			if b := s.backupAt(e); b != nil {
				d.add(Item{Key: b.Path, Entry: e, LSN: b.StartLSN, Backup: b.ID, kind: walname.KindBackupHistory, tli: b.StartTLI})
				continue
			}
			missing = append(missing, e)
			continue
		}
		for _, o := range hits {
			d.add(s.item(o, e))
		}
	}
	if len(missing) > 0 {
		return nil, &NotFound{Entries: missing}
	}
	d.sortLSN()
	return d, nil
}

// DeletionOf builds a deletion of archive object keys (prune-plan).
func (s *Source) DeletionOf(keys []string) *Deletion {
	d := &Deletion{}
	for _, k := range keys {
		if o, ok := s.byKey[k]; ok {
			d.add(s.item(o, k))
		}
	}
	d.sortLSN()
	return d
}

func (s *Source) item(o store.ObjectInfo, entry string) Item {
	it := Item{Key: o.Key, Entry: entry, Size: o.Size}
	n, err := walname.Parse(path.Base(o.Key))
	if err != nil {
		return it
	}
	it.kind, it.tli = n.Kind, n.TLI
	sz := s.Base.Inv.SegmentSize
	switch n.Kind {
	case walname.KindSegment, walname.KindPartial:
		if seg, err := n.SegNo(sz); err == nil {
			it.LSN = sz.StartLSN(seg)
		}
	case walname.KindBackupHistory:
		if seg, err := n.SegNo(sz); err == nil {
			it.LSN = sz.StartLSN(seg) + walname.LSN(n.Offset)
		}
	case walname.KindTimelineHistory:
		if _, at, ok := s.Base.Timelines.Parent(n.TLI); ok {
			it.LSN = at
		}
	}
	return it
}

// keyPrefixes are the ways an entry may name the archive's root: its
// directory, its file:// URL, its s3:// URL or its key prefix.
func (s *Source) keyPrefixes() []string {
	var out []string
	loc, _, _ := strings.Cut(s.st.String(), " at ")
	if l, ok := s.st.(*store.Local); ok {
		out = append(out, "file://"+l.Root()+"/", l.Root()+"/")
	}
	out = append(out, strings.TrimSuffix(loc, "/")+"/")
	if _, rest, ok := strings.Cut(loc, "://"); ok {
		if _, keyPrefix, ok := strings.Cut(rest, "/"); ok && keyPrefix != "" {
			out = append(out, strings.TrimSuffix(keyPrefix, "/")+"/")
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// backupAt returns the backups-directory backup whose directory is path
// or holds it.
func (s *Source) backupAt(p string) *backup.Backup {
	if s.opts.BackupsDir == "" {
		return nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil
	}
	for _, b := range s.Base.Backups {
		if b.Source != backup.SourceBackupsDir || b.Path == "" {
			continue
		}
		bp, err := filepath.Abs(b.Path)
		if err != nil {
			continue
		}
		if abs == bp || strings.HasPrefix(abs, bp+string(filepath.Separator)) {
			return b
		}
	}
	return nil
}

// Without returns the archive as it would be after the deletion: the
// inventory, timelines and backups rebuilt without the deleted objects,
// with the backups directory's backups minus the deleted ones.
func (s *Source) Without(ctx context.Context, d *Deletion) (*audit.Archive, error) {
	if d.Len() == 0 {
		return s.Base, nil
	}
	f := &filtered{snapStore: s.snap, gone: d.Keys}
	ao, err := audit.Load(ctx, f, audit.LoadOptions{ScanOptions: s.opts.ScanOptions})
	if err != nil {
		return nil, err
	}
	type key struct {
		start, ckpt walname.LSN
		tli         walname.TimelineID
	}
	hist := map[string]*backup.Backup{}
	histKeys := map[key]bool{}
	for _, b := range ao.Backups {
		hist[b.ID] = b
		histKeys[key{b.StartLSN, b.CheckpointLSN, b.StartTLI}] = true
	}
	arch := &audit.Archive{Inv: ao.Inv, Timelines: ao.Timelines}
	var gonePaths []string
	for _, b := range s.Base.Backups {
		switch b.Source {
		case backup.SourceArchiveHistory:
			if h, ok := hist[b.ID]; ok {
				arch.Backups = append(arch.Backups, h)
			}
		case backup.SourceBackupsDir:
			if d.Backups[b.ID] {
				gonePaths = append(gonePaths, b.Path)
				continue
			}
			c := *b
			if !histKeys[key{b.StartLSN, b.CheckpointLSN, b.StartTLI}] {
				// What the deleted .backup file lent this backup is gone.
				if c.StopSource == backup.StopFromHistoryFile {
					c.StopLSN, c.StopTLI, c.StopSource = 0, 0, ""
				}
				c.StopTime = backup.Timestamp{}
			}
			arch.Backups = append(arch.Backups, &c)
		default:
			arch.Backups = append(arch.Backups, b)
		}
	}
	// Findings: the archive's own, plus those only the backups directory
	// brought (not about a deleted backup).
	onlyArchive := map[string]int{}
	for _, f := range s.baseOnly {
		onlyArchive[f.String()]++
	}
	arch.Findings = append(arch.Findings, ao.Findings...)
	for _, f := range s.Base.Findings {
		k := f.String()
		if onlyArchive[k] > 0 {
			onlyArchive[k]--
			continue
		}
		if underAny(f.File, gonePaths) {
			continue
		}
		arch.Findings = append(arch.Findings, f)
	}
	return arch, nil
}

func underAny(file string, dirs []string) bool {
	for _, d := range dirs {
		if file != "" && (file == d || strings.HasPrefix(file, d+string(filepath.Separator))) {
			return true
		}
	}
	return false
}

// snapStore serves a listing taken once and caches small metadata files.
type snapStore struct {
	store.Store
	objs  []store.ObjectInfo
	mu    sync.Mutex
	cache map[string][]byte
}

func (s *snapStore) List(ctx context.Context, prefix string, fn func(store.ObjectInfo) error) error {
	for _, o := range s.objs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(o.Key, prefix) {
			if err := fn(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxCached bounds the metadata files kept in memory.
const maxCached = 1 << 20

func (s *snapStore) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	base := path.Base(key)
	small := strings.HasSuffix(base, ".history") || strings.HasSuffix(base, ".backup")
	if !small {
		return s.Store.Open(ctx, key)
	}
	s.mu.Lock()
	b, ok := s.cache[key]
	s.mu.Unlock()
	if ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	rc, err := s.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err = io.ReadAll(io.LimitReader(rc, maxCached+1))
	if err != nil {
		return nil, err
	}
	if len(b) <= maxCached {
		s.mu.Lock()
		s.cache[key] = b
		s.mu.Unlock()
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// filtered hides deleted keys.
type filtered struct {
	*snapStore
	gone map[string]bool
}

func (f *filtered) List(ctx context.Context, prefix string, fn func(store.ObjectInfo) error) error {
	return f.snapStore.List(ctx, prefix, func(o store.ObjectInfo) error {
		if f.gone[o.Key] {
			return nil
		}
		return fn(o)
	})
}

func (f *filtered) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	if f.gone[key] {
		return store.ObjectInfo{}, fmt.Errorf("%s (simulated deletion): %w", key, store.ErrNotExist)
	}
	return f.snapStore.Stat(ctx, key)
}

func (f *filtered) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if f.gone[key] {
		return nil, fmt.Errorf("%s (simulated deletion): %w", key, store.ErrNotExist)
	}
	return f.snapStore.Open(ctx, key)
}
