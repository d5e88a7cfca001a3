package layout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/codec"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// Layout names, as --layout takes them.
const (
	Auto       = "auto"
	Plain      = "plain"
	PgBackRest = "pgbackrest"
	WALG       = "walg"
	Barman     = "barman"
)

// Names lists the layouts --layout accepts, auto first.
func Names() []string { return []string{Auto, Plain, PgBackRest, WALG, Barman} }

// Finding codes the layouts report. They are stable: scripts filter on them.
const (
	// CodeEncrypted (error): the repository encrypts its WAL; walaudit
	// lists names but cannot read content.
	CodeEncrypted = "REPO_ENCRYPTED"
	// CodeOtherCluster (info): WAL or backups of another cluster in the same
	// repository (a pgBackRest archive id before pg_upgrade), not audited.
	CodeOtherCluster = "REPO_OTHER_CLUSTER"
	// CodeMetadataInvalid (error): a tool's metadata file is unreadable.
	CodeMetadataInvalid = "REPO_METADATA_INVALID"
	// CodeMetadataCopy (warning): a pgBackRest info file is damaged (bad
	// checksum or unparsable) and its .copy was used.
	CodeMetadataCopy = "PGBACKREST_INFO_DAMAGED"
	// CodeChecksumMismatch (error): a pgBackRest WAL file whose content does
	// not match the SHA-1 in its name (--verify-checksums).
	CodeChecksumMismatch = "PGBACKREST_CHECKSUM_MISMATCH"
	// CodeMisplaced (warning): a WAL file stored where the tool would never
	// look for it (wrong 16-hex directory).
	CodeMisplaced = "REPO_FILE_MISPLACED"
	// CodeBackupMissing (error): a backup the tool's catalogue lists whose
	// files or manifest are gone, or whose prior backup is gone.
	CodeBackupMissing = "REPO_BACKUP_MISSING"
	// CodeBackupNotDone (error on the backup): a backup that did not
	// complete (Barman status other than DONE, WAL-G without sentinel).
	CodeBackupNotDone = "REPO_BACKUP_NOT_DONE"
	// CodeBackupError (warning): pgBackRest backup-error=true (page
	// checksum errors found while copying).
	CodeBackupError = "PGBACKREST_BACKUP_ERROR"
	// CodeXlogDB (warning): Barman's xlog.db and the wals directory disagree.
	CodeXlogDB = "BARMAN_XLOGDB_MISMATCH"
)

// Object is one WAL object of a repository: a segment, .partial, .backup
// or .history file.
type Object struct {
	// Key is the object's key in the store.
	Key     string
	Size    int64
	ModTime time.Time
	// Name is the parsed file name. Name.Compression is the compression
	// the stored bytes use: from the suffix, or for Barman's plain names
	// from xlog.db or the content's magic bytes. Name.Checksum is
	// pgBackRest's SHA-1 of the uncompressed content.
	Name walname.Name
	// Broken says why recovery could not use this object even though it
	// exists (e.g. wrong size: PostgreSQL's restore would stop with FATAL).
	Broken string
}

// Listing is what a layout found in a store.
type Listing struct {
	// Layout is the layout's name; Prefix the key prefix it was read under
	// ("" for the store's root).
	Layout string
	Prefix string
	// Cluster identifies the audited cluster inside a multi-cluster
	// repository: "stanza/archive-id[+archive-id…]" for pgBackRest, the
	// server name for a barman-cloud store scanned from above; "" otherwise.
	Cluster string
	// WAL holds the segments, partials, backup history and timeline history
	// files, sorted by key.
	WAL []*Object
	// Unknown holds objects in the WAL area that are no WAL file.
	Unknown []*Object
	// Backups are the base backups the tool's catalogue describes.
	Backups []*backup.Backup
	// Meta describes each backup in tool terms, by Backup.ID.
	Meta map[string]*BackupMeta
	// SystemID, PGVersion and SegmentSize as the tool's metadata records
	// them (0 when it does not).
	SystemID    uint64
	PGVersion   int
	SegmentSize walname.SegmentSize
	// Encrypted, when not "", says why the WAL content cannot be read.
	Encrypted string
	Findings  []finding.Finding
}

// BackupMeta is what a backup tool says about a backup beyond [backup.Backup].
type BackupMeta struct {
	Tool string `json:"tool"`
	// Type is full, diff or incr (pgBackRest), full or delta (WAL-G), or
	// the Barman backup type.
	Type string `json:"type,omitempty"`
	// Prior is the backup this one depends on (pgBackRest backup-prior,
	// WAL-G DeltaFrom, Barman parent_backup_id); "" for a full backup.
	// Such backups are restorable: the tool resolves the chain.
	Prior string `json:"prior,omitempty"`
	// References are every backup whose files this one needs (pgBackRest).
	References []string `json:"references,omitempty"`
	// Status is the tool's status (Barman: DONE, FAILED…; WAL-G: done or
	// incomplete; pgBackRest: done).
	Status string `json:"status,omitempty"`
	// Key is the metadata object the backup was read from.
	Key string `json:"key"`
	// StartWAL and StopWAL are the segments holding the start and stop
	// LSN as the tool records them ("" when it does not).
	StartWAL string `json:"start_wal,omitempty"`
	StopWAL  string `json:"stop_wal,omitempty"`
}

// Location is where a WAL file is stored and how.
type Location struct {
	Key         string
	Compression walname.Compression
	// Checksum is pgBackRest's SHA-1 from the name, "" otherwise.
	Checksum string
}

// Options tune scanning and locating.
type Options struct {
	// Layout forces a layout ("" or auto: detect).
	Layout string
	// Stanza picks the pgBackRest stanza, or the Barman server when the
	// store holds several barman-cloud servers.
	Stanza string
	// ArchiveID picks one pgBackRest archive id (e.g. "14-1"); by default
	// the ids holding the current cluster (system id and version of
	// archive.info's [db]) are read.
	ArchiveID string
	// Prefix is the key prefix of the repository inside the store.
	Prefix string
	// VerifyChecksums reads every pgBackRest WAL file and compares its
	// SHA-1 with the one in its name.
	VerifyChecksums bool
}

// Layout reads one repository layout.
type Layout interface {
	// Name is the layout's --layout name.
	Name() string
	// Scan lists the repository's WAL objects and reads its backup
	// catalogue.
	Scan(ctx context.Context, st store.Store, opts Options) (*Listing, error)
	// Locate returns where the WAL file name (a 24-hex segment or
	// TTTTTTTT.history name) is stored, best first, without listing the
	// whole repository where the layout allows. An empty result means the
	// repository provably does not hold it.
	Locate(ctx context.Context, st store.Store, name string, opts Options) ([]Location, error)
}

// ErrEncrypted is wrapped by reads of an encrypted repository's WAL.
var ErrEncrypted = errors.New("encrypted repository: not supported")

// ErrUnrecognized is wrapped by [UnrecognizedError].
var ErrUnrecognized = errors.New("not an archive I recognise")

// UnrecognizedError says that a store holds no WAL archive walaudit knows.
type UnrecognizedError struct {
	Store string
	// Found lists some of the keys found (at most 10) and Total counts them.
	Found []string
	Total int
}

func (e *UnrecognizedError) Error() string {
	found := "nothing"
	if e.Total > 0 {
		found = fmt.Sprintf("%d objects, e.g. %s", e.Total, strings.Join(e.Found, ", "))
	}
	return fmt.Sprintf("%s: not an archive I recognise: found %s; expected WAL file names "+
		"(000000010000000A000000FF, 00000002.history, optionally compressed: .gz .lz4 .zst …) "+
		"from archive_command, a pgBackRest repository (archive/<stanza>/archive.info), "+
		"a WAL-G prefix (wal_005/, basebackups_005/) or a Barman server directory (wals/, base/); "+
		"check the --archive location and --layout", e.Store, found)
}

func (e *UnrecognizedError) Unwrap() error { return ErrUnrecognized }

// Get returns the layout named name (not auto).
func Get(name string) (Layout, error) {
	switch name {
	case Plain:
		return plainLayout{}, nil
	case PgBackRest:
		return pgbackrestLayout{}, nil
	case WALG:
		return walgLayout{}, nil
	case Barman:
		return barmanLayout{}, nil
	}
	return nil, fmt.Errorf("unknown layout %q: want one of %s", name, strings.Join(Names(), ", "))
}

// Detect finds the layout of a store from its markers: archive/<stanza>/…
// or backup/<stanza>/… (pgBackRest), wal_005/ or basebackups_005/
// (WAL-G), wals/ or base/ (Barman); anything else is plain. It costs one
// small listing per marker, run concurrently, and never lists the
// repository.
func Detect(ctx context.Context, st store.Store, opts Options) (Layout, error) {
	markers := []string{"archive/", "backup/", "wal_005/", "basebackups_005/", "wals/", "base/"}
	first := make([]string, len(markers))
	errs := make([]error, len(markers))
	var wg sync.WaitGroup
	for i, m := range markers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first[i], errs[i] = firstKey(ctx, st, opts.Prefix+m, func(k string) bool {
				return markerMatches(m, strings.TrimPrefix(k, opts.Prefix+m))
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	switch {
	case first[0] != "" || first[1] != "":
		return pgbackrestLayout{}, nil
	case first[2] != "" || first[3] != "":
		return walgLayout{}, nil
	case first[4] != "" || first[5] != "":
		return barmanLayout{}, nil
	}
	return plainLayout{}, nil
}

// markerMatches checks the key below a marker directory: pgBackRest keys
// are at least stanza/file; the others only need to exist.
func markerMatches(marker, rest string) bool {
	switch marker {
	case "archive/":
		s, f, ok := strings.Cut(rest, "/")
		return ok && s != "" && (f == "archive.info" || f == "archive.info.copy" || isArchiveID(strings.SplitN(f, "/", 2)[0]))
	case "backup/":
		s, f, ok := strings.Cut(rest, "/")
		return ok && s != "" && (f == "backup.info" || f == "backup.info.copy" || strings.HasPrefix(f, "backup.history/") ||
			isBackRestLabel(strings.SplitN(f, "/", 2)[0]))
	}
	return rest != ""
}

var errStop = errors.New("stop listing")

// firstKey returns the first key under prefix that ok accepts, stopping
// the listing there ("" when none).
func firstKey(ctx context.Context, st store.Store, prefix string, ok func(string) bool) (string, error) {
	found := ""
	seen := 0
	err := st.List(ctx, prefix, func(oi store.ObjectInfo) error {
		if ok(oi.Key) {
			found = oi.Key
			return errStop
		}
		seen++
		if seen > 1000 {
			return errStop // not this layout's tree: stop looking
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return "", err
	}
	return found, nil
}

// Resolve returns the layout opts ask for, detecting it for "" and auto.
func Resolve(ctx context.Context, st store.Store, opts Options) (Layout, error) {
	if opts.Layout == "" || opts.Layout == Auto {
		return Detect(ctx, st, opts)
	}
	return Get(opts.Layout)
}

// Scan resolves the layout and scans the store. With auto detection, a
// store that looks plain but holds no WAL file is searched one level down
// for a repository (a barman-cloud destination holding server
// directories, a bucket holding a pgBackRest repository under a path);
// when none is found the error wraps [ErrUnrecognized]. An empty store
// is an empty plain archive.
func Scan(ctx context.Context, st store.Store, opts Options) (*Listing, error) {
	l, err := Resolve(ctx, st, opts)
	if err != nil {
		return nil, err
	}
	lst, err := l.Scan(ctx, st, opts)
	if err != nil {
		return nil, err
	}
	forced := opts.Layout != "" && opts.Layout != Auto
	if lst.Layout != Plain || forced {
		return lst, nil
	}
	for _, o := range lst.WAL {
		if !strings.Contains(strings.TrimPrefix(o.Key, opts.Prefix), "/") {
			return lst, nil // WAL at the top: a plain archive, whatever sits in sub-directories
		}
	}
	all := append(append([]*Object(nil), lst.WAL...), lst.Unknown...)
	cands := candidatesOf(all, opts.Prefix)
	if len(cands) == 0 {
		if len(lst.WAL) == 0 && len(lst.Unknown) > 0 {
			return nil, unrecognized(st, lst.Unknown)
		}
		return lst, nil
	}
	if sub, lay := nestedRepository(cands, opts); sub != "" {
		o := opts
		o.Prefix = sub
		nl, err := Get(lay)
		if err != nil {
			return nil, err
		}
		inner, err := nl.Scan(ctx, st, o)
		if err != nil {
			return nil, err
		}
		if inner.Cluster == "" {
			inner.Cluster = strings.TrimSuffix(strings.TrimPrefix(sub, opts.Prefix), "/")
		}
		return inner, nil
	}
	var names []string
	for _, c := range cands {
		names = append(names, c.dir+" ("+c.layout+")")
	}
	return nil, fmt.Errorf("%s holds several repositories: %s; pick one with --stanza NAME (the Barman server or sub-directory) or point --archive at it",
		st, strings.Join(names, ", "))
}

func unrecognized(st store.Store, objs []*Object) error {
	e := &UnrecognizedError{Store: st.String(), Total: len(objs)}
	for _, o := range objs {
		if len(e.Found) == 10 {
			break
		}
		e.Found = append(e.Found, o.Key)
	}
	return e
}

type candidate struct{ dir, layout string }

// candidatesOf finds repositories one directory below prefix.
func candidatesOf(objs []*Object, prefix string) []candidate {
	seen := map[string]string{}
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Key, prefix)
		dir, rest, ok := strings.Cut(rel, "/")
		if !ok {
			continue
		}
		top, _, _ := strings.Cut(rest, "/")
		lay := ""
		switch {
		case top == "wals" || top == "base":
			lay = Barman
		case top == "wal_005" || top == "basebackups_005":
			lay = WALG
		case (top == "archive" || top == "backup") && markerMatches(top+"/", strings.TrimPrefix(rest, top+"/")):
			lay = PgBackRest
		}
		if lay != "" {
			seen[dir] = lay
		}
	}
	var out []candidate
	for d, l := range seen {
		out = append(out, candidate{d, l})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].dir < out[j].dir })
	return out
}

// nestedRepository picks the repository one level down: the only one, or
// the one --stanza names.
func nestedRepository(cs []candidate, opts Options) (prefix, layout string) {
	for _, c := range cs {
		if opts.Stanza != "" && c.dir == opts.Stanza {
			return opts.Prefix + c.dir + "/", c.layout
		}
	}
	if len(cs) == 1 && (opts.Stanza == "" || cs[0].layout == PgBackRest) {
		return opts.Prefix + cs[0].dir + "/", cs[0].layout
	}
	return "", ""
}

// Locate resolves the layout and locates a WAL file.
func Locate(ctx context.Context, st store.Store, name string, opts Options) ([]Location, Layout, error) {
	if !walname.IsSegmentName(name) && !walname.IsHistoryName(name) {
		return nil, nil, fmt.Errorf("refusing %q: not a WAL segment or timeline history file name", name)
	}
	l, err := Resolve(ctx, st, opts)
	if err != nil {
		return nil, nil, err
	}
	locs, err := l.Locate(ctx, st, name, opts)
	if err != nil || len(locs) > 0 || l.Name() != Plain || (opts.Layout != "" && opts.Layout != Auto) {
		return locs, l, err
	}
	// Not in what looks like a plain archive. "Absent" ends a recovery,
	// so make sure the store is one: WAL at its top, or nothing at all.
	// A repository one level down is asked instead; a store without WAL
	// is an error, never "absent".
	sub, lay, err := confirmPlain(ctx, st, opts)
	if err != nil || sub == "" {
		return nil, l, err
	}
	nl, err := Get(lay)
	if err != nil {
		return nil, nil, err
	}
	o := opts
	o.Prefix = sub
	locs, err = nl.Locate(ctx, st, name, o)
	return locs, nl, err
}

// confirmPlain looks at the first objects of a store Detect found plain.
// It returns the prefix and layout of the repository one level down when
// there is one, "" when the store is a plain archive (WAL at the top) or
// empty, and an error when it holds no WAL archive walaudit knows.
func confirmPlain(ctx context.Context, st store.Store, opts Options) (prefix, lay string, err error) {
	var objs []*Object
	plain := false
	err = st.List(ctx, opts.Prefix, func(oi store.ObjectInfo) error {
		o, ok := parseObject(oi)
		if ok && !strings.Contains(strings.TrimPrefix(oi.Key, opts.Prefix), "/") {
			plain = true
			return errStop
		}
		objs = append(objs, o)
		if len(objs) >= 1000 {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return "", "", err
	}
	if plain || len(objs) == 0 {
		return "", "", nil
	}
	cands := candidatesOf(objs, opts.Prefix)
	if sub, lay := nestedRepository(cands, opts); sub != "" {
		return sub, lay, nil
	}
	if len(cands) > 1 {
		var names []string
		for _, c := range cands {
			names = append(names, c.dir+" ("+c.layout+")")
		}
		return "", "", fmt.Errorf("%s holds several repositories: %s; pick one with --stanza NAME or point --archive at it", st, strings.Join(names, ", "))
	}
	for _, o := range objs {
		if o.Name.Kind != walname.KindUnknown {
			return "", "", nil // WAL in sub-directories: a plain archive that does not hold the file at the top
		}
	}
	return "", "", unrecognized(st, objs)
}

// statFirst returns the first of keys that exists, in order.
func statFirst(ctx context.Context, st store.Store, keys []Location) ([]Location, error) {
	for _, k := range keys {
		if _, err := st.Stat(ctx, k.Key); err != nil {
			if store.IsNotExist(err) {
				continue
			}
			return nil, fmt.Errorf("look up %s in %s: %w", k.Key, st, err)
		}
		return []Location{k}, nil
	}
	return nil, nil
}

// suffixOrder is the order in which compressed forms are tried: none,
// then the suffixes in order of how often tools write them.
var suffixOrder = []walname.Compression{walname.CompressNone, walname.CompressGzip, walname.CompressLZ4, walname.CompressZstd,
	walname.CompressBzip2, walname.CompressXZ, walname.CompressBrotli, walname.CompressLZMA, walname.CompressLZO, walname.CompressSnappy}

// candidates lists name with every suffix, first ones first.
func candidates(dir, name string, first ...walname.Compression) []Location {
	var out []Location
	seen := map[walname.Compression]bool{}
	for _, c := range append(first, suffixOrder...) {
		if seen[c] {
			continue
		}
		seen[c] = true
		key := dir + name
		if c != walname.CompressNone {
			key += "." + string(c)
		}
		out = append(out, Location{Key: key, Compression: c})
	}
	return out
}

// maxMeta bounds metadata files read into memory (info files, sentinels,
// backup.info, xlog.db); manifests get maxManifest.
const (
	maxMeta     = 16 << 20
	maxManifest = 512 << 20
)

// readAll reads a whole object, refusing more than max bytes.
func readAll(ctx context.Context, st store.Store, key string, max int64) ([]byte, error) {
	rc, err := st.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a metadata file", key, max)
	}
	return b, nil
}

// head reads the first n bytes of an object.
func head(ctx context.Context, st store.Store, key string, n int64) ([]byte, error) {
	rc, err := store.OpenRange(ctx, st, key, 0, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, n))
}

// subdirs lists the names of the directories directly below prefix. A
// local store reads the directory; other stores list the prefix (and the
// objects seen are returned, so that the caller need not list again).
func subdirs(ctx context.Context, st store.Store, prefix string) (dirs []string, listed []store.ObjectInfo, complete bool, err error) {
	if l, ok := st.(*store.Local); ok {
		p := filepath.Join(l.Root(), filepath.FromSlash(prefix))
		ents, err := os.ReadDir(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, nil, false, nil
			}
			return nil, nil, false, fmt.Errorf("list %s: %w", p, err)
		}
		for _, e := range ents {
			if e.IsDir() {
				dirs = append(dirs, e.Name())
			}
		}
		return dirs, nil, false, nil
	}
	set := map[string]bool{}
	err = st.List(ctx, prefix, func(oi store.ObjectInfo) error {
		listed = append(listed, oi)
		if d, _, ok := strings.Cut(strings.TrimPrefix(oi.Key, prefix), "/"); ok && d != "" {
			set[d] = true
		}
		return nil
	})
	if err != nil {
		return nil, nil, false, err
	}
	for d := range set {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return dirs, listed, true, nil
}

// parseObject classifies a listed object by its base name.
func parseObject(oi store.ObjectInfo) (*Object, bool) {
	n, err := walname.Parse(path.Base(oi.Key))
	o := &Object{Key: oi.Key, Size: oi.Size, ModTime: oi.ModTime, Name: n}
	return o, err == nil
}

// sortObjects sorts by key.
func sortObjects(objs []*Object) {
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
}

// sniffEncrypted reads the start of a WAL object that promises the
// compression c (none: uncompressed WAL or text) and reports whether the
// content is something else that no codec recognises: the mark of
// client-side encryption, which keeps names unchanged. what describes it.
func sniffEncrypted(ctx context.Context, st store.Store, o *Object) (bool, string, error) {
	h, err := head(ctx, st, o.Key, 16)
	if err != nil {
		return false, "", err
	}
	if len(h) == 0 {
		return false, "", nil
	}
	if bytes8(h, "Salted__") {
		return true, "OpenSSL-encrypted (Salted__ header)", nil
	}
	sniffed, ok := codec.Sniff(h)
	want, known := codec.ForSuffix(o.Name.Compression)
	switch {
	case !known:
		return false, "", nil
	case !ok && looksOpenPGP(h):
		return true, "OpenPGP-encrypted", nil
	case ok && (sniffed == want || want == codec.None):
		return false, "", nil
	case ok:
		return false, "", nil // another codec: a suffix mismatch, reported when read
	case want == codec.Brotli || want == codec.LZMA:
		return false, "", nil // no magic to check
	case o.Name.Kind == walname.KindTimelineHistory || o.Name.Kind == walname.KindBackupHistory:
		if want == codec.None {
			return false, "", nil // text
		}
	}
	return true, fmt.Sprintf("content starts with %x, which is neither %s nor any compression walaudit knows", h[:min(len(h), 8)], describeCodec(want)), nil
}

func describeCodec(c codec.Codec) string {
	if c == codec.None {
		return "uncompressed WAL"
	}
	return c.Name() + " data"
}

func bytes8(h []byte, s string) bool { return len(h) >= len(s) && string(h[:len(s)]) == s }

// looksOpenPGP recognises the first packet of an OpenPGP message as WAL-G's
// openpgp crypter writes it: a public-key (tag 1) or symmetric-key (tag 3)
// encrypted session key packet, old or new format.
func looksOpenPGP(h []byte) bool {
	if len(h) < 2 || h[0]&0x80 == 0 {
		return false
	}
	var tag byte
	if h[0]&0x40 != 0 {
		tag = h[0] & 0x3f
	} else {
		tag = (h[0] >> 2) & 0x0f
	}
	return tag == 1 || tag == 3
}
