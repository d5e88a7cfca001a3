package layout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// SourcePgBackRest is [backup.Backup.Source] for backups read from a
// pgBackRest backup.info.
const SourcePgBackRest = "pgbackrest"

// pgbackrestLayout reads a pgBackRest repository (repo1-path) as FORMATS
// §6.1 describes:
//
//	archive/<stanza>/archive.info
//	archive/<stanza>/<archive-id>/TTTTTTTT.history
//	archive/<stanza>/<archive-id>/<16 hex>/<24 hex>-<sha1>[.gz|.lz4|.zst|.xz|.bz2]
//	archive/<stanza>/<archive-id>/<16 hex>/<24 hex>.partial-<sha1>[.ext]
//	archive/<stanza>/<archive-id>/<16 hex>/<24 hex>.<8 hex>.backup
//	backup/<stanza>/backup.info, backup/<stanza>/<label>/backup.manifest
//
// Each archive id is one cluster (system identifier and major version);
// the ids of the current cluster (archive.info [db]) are audited together
// and the others are reported as REPO_OTHER_CLUSTER (pick one with
// Options.ArchiveID). The backup data is never listed.
type pgbackrestLayout struct{}

func (pgbackrestLayout) Name() string { return PgBackRest }

// isArchiveID recognises "<major>-<n>" ("15-1", "9.6-2").
func isArchiveID(s string) bool {
	v, n, ok := strings.Cut(s, "-")
	if !ok || v == "" || n == "" {
		return false
	}
	if _, err := strconv.ParseUint(n, 10, 32); err != nil {
		return false
	}
	for _, c := range v {
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

// isBackRestLabel recognises YYYYMMDD-HHMMSSF, …_YYYYMMDD-HHMMSSD and …I.
func isBackRestLabel(s string) bool {
	stamp := func(t string) bool {
		if len(t) != 16 || t[8] != '-' {
			return false
		}
		for i, c := range t[:15] {
			if i != 8 && (c < '0' || c > '9') {
				return false
			}
		}
		return true
	}
	switch {
	case len(s) == 16:
		return stamp(s) && s[15] == 'F'
	case len(s) == 33 && s[16] == '_':
		return stamp(s[:16]) && s[15] == 'F' && stamp(s[17:]) && (s[32] == 'D' || s[32] == 'I')
	}
	return false
}

// pgbrRepo is one stanza being read.
type pgbrRepo struct {
	st       store.Store
	prefix   string // repository root ("" or ending in /)
	stanza   string
	listed   []store.ObjectInfo // every object under archive/, when enumerating stanzas listed them
	complete bool
	findings []finding.Finding
}

func (r *pgbrRepo) archiveDir() string { return r.prefix + "archive/" + r.stanza + "/" }
func (r *pgbrRepo) backupDir() string  { return r.prefix + "backup/" + r.stanza + "/" }

// openRepo picks the stanza.
func openRepo(ctx context.Context, st store.Store, opts Options) (*pgbrRepo, error) {
	r := &pgbrRepo{st: st, prefix: opts.Prefix, stanza: opts.Stanza}
	if r.stanza != "" {
		return r, nil
	}
	dirs, listed, complete, err := subdirs(ctx, st, r.prefix+"archive/")
	if err != nil {
		return nil, err
	}
	r.listed, r.complete = listed, complete
	if len(dirs) == 0 {
		k, err := firstKey(ctx, st, r.prefix+"backup/", func(string) bool { return true })
		if err != nil {
			return nil, err
		}
		if s, _, ok := strings.Cut(strings.TrimPrefix(k, r.prefix+"backup/"), "/"); ok {
			dirs = []string{s}
		}
	}
	switch len(dirs) {
	case 0:
		return nil, fmt.Errorf("pgBackRest repository %s: no stanza under archive/ or backup/", where(st, r.prefix))
	case 1:
		r.stanza = dirs[0]
		return r, nil
	}
	return nil, fmt.Errorf("pgBackRest repository %s holds several stanzas: %s; pick one with --stanza", where(st, r.prefix), strings.Join(dirs, ", "))
}

func where(st store.Store, prefix string) string {
	if prefix == "" {
		return st.String()
	}
	return strings.TrimSuffix(st.String(), "/") + "/" + strings.TrimSuffix(prefix, "/")
}

// infoResult is a pgBackRest info file as read.
type infoResult struct {
	ini       *iniFile
	key       string // the file used (the .copy when the main one failed)
	encrypted bool
	missing   bool
}

// readInfo reads archive.info or backup.info, falling back to its .copy
// when it is missing, unparsable or fails its checksum.
func (r *pgbrRepo) readInfo(ctx context.Context, key string) (infoResult, error) {
	var problems []string
	for _, k := range []string{key, key + ".copy"} {
		data, err := readAll(ctx, r.st, k, maxMeta)
		if err != nil {
			if store.IsNotExist(err) {
				problems = append(problems, path.Base(k)+" is missing")
				continue
			}
			return infoResult{}, err
		}
		if bytes.HasPrefix(data, []byte("Salted__")) {
			return infoResult{key: k, encrypted: true}, nil
		}
		f, err := parseINI(data, nil)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s is unparsable (%v)", path.Base(k), err))
			continue
		}
		if match, ok := f.checksumOK(); ok && !match {
			problems = append(problems, path.Base(k)+" fails its backrest-checksum")
			continue
		}
		if f.has("cipher") {
			return infoResult{ini: f, key: k, encrypted: true}, nil
		}
		if len(problems) > 0 {
			r.findings = append(r.findings, finding.Finding{Severity: finding.Warning, Code: CodeMetadataCopy, File: key,
				Message: strings.Join(problems, "; ") + "; using " + path.Base(k),
				Hint:    "pgBackRest falls back to the copy too; repair the file (e.g. with stanza-create/stanza-upgrade) before the copy is lost"})
		}
		return infoResult{ini: f, key: k}, nil
	}
	allMissing := true
	for _, p := range problems {
		if !strings.HasSuffix(p, "is missing") {
			allMissing = false
		}
	}
	res := infoResult{key: key, missing: allMissing}
	if !allMissing {
		r.findings = append(r.findings, finding.Finding{Severity: finding.Error, Code: CodeMetadataInvalid, File: key,
			Message: "unreadable pgBackRest info file: " + strings.Join(problems, "; "),
			Hint:    "pgBackRest itself refuses this stanza until the file is repaired"})
	}
	return res, nil
}

// dbEntry is one cluster in an info file's [db:history].
type dbEntry struct {
	hist    int
	sysid   uint64
	version string
}

func (e dbEntry) archiveID() string { return e.version + "-" + strconv.Itoa(e.hist) }

// history reads [db:history]. In archive.info the JSON key db-id holds the
// system identifier; in backup.info it is db-system-id.
func history(f *iniFile) []dbEntry {
	var out []dbEntry
	for _, k := range f.keys("db:history") {
		n, err := strconv.Atoi(k)
		if err != nil {
			continue
		}
		raw, _ := f.raw("db:history", k)
		var v struct {
			DBID     uint64 `json:"db-id"`
			SystemID uint64 `json:"db-system-id"`
			Version  string `json:"db-version"`
		}
		if json.Unmarshal([]byte(raw), &v) != nil {
			continue
		}
		id := v.SystemID
		if id == 0 {
			id = v.DBID
		}
		out = append(out, dbEntry{hist: n, sysid: id, version: v.Version})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].hist < out[j].hist })
	return out
}

// current reads [db].
func current(f *iniFile) dbEntry {
	n, _ := f.uint("db", "db-id")
	id, _ := f.uint("db", "db-system-id")
	return dbEntry{hist: int(n), sysid: id, version: f.str("db", "db-version")}
}

func majorOf(version string) int {
	n, err := strconv.Atoi(version)
	if err != nil {
		return 0
	}
	return n
}

// cluster is the set of archive ids audited together.
type pgbrCluster struct {
	ids     []string // newest first
	sysid   uint64
	version string
	others  []dbEntry
}

// pickCluster chooses the archive ids to read.
func (r *pgbrRepo) pickCluster(ctx context.Context, ai infoResult, want string) (*pgbrCluster, error) {
	c := &pgbrCluster{}
	if ai.ini == nil || ai.encrypted {
		// No usable archive.info: every archive id on storage.
		ids, err := r.storedIDs(ctx)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if want == "" || id == want {
				c.ids = append(c.ids, id)
			}
		}
		sortIDs(c.ids)
		if len(c.ids) > 0 {
			c.version, _, _ = strings.Cut(c.ids[0], "-")
		}
		return c, nil
	}
	cur := current(ai.ini)
	hist := history(ai.ini)
	if len(hist) == 0 && cur.hist != 0 {
		hist = []dbEntry{cur}
	}
	for _, e := range hist {
		switch {
		case want != "" && e.archiveID() == want:
			c.ids, c.sysid, c.version = append(c.ids, e.archiveID()), e.sysid, e.version
		case want == "" && e.sysid == cur.sysid && e.version == cur.version:
			c.ids, c.sysid, c.version = append(c.ids, e.archiveID()), e.sysid, e.version
		default:
			c.others = append(c.others, e)
		}
	}
	if want != "" && len(c.ids) == 0 {
		var known []string
		for _, e := range hist {
			known = append(known, e.archiveID())
		}
		return nil, fmt.Errorf("stanza %s has no archive id %q (archive.info knows %s)", r.stanza, want, strings.Join(known, ", "))
	}
	sortIDs(c.ids)
	return c, nil
}

// sortIDs orders archive ids newest (highest history number) first.
func sortIDs(ids []string) {
	num := func(id string) int {
		_, n, _ := strings.Cut(id, "-")
		v, _ := strconv.Atoi(n)
		return v
	}
	sort.Slice(ids, func(i, j int) bool { return num(ids[i]) > num(ids[j]) })
}

// storedIDs lists the archive id directories of the stanza.
func (r *pgbrRepo) storedIDs(ctx context.Context) ([]string, error) {
	var dirs []string
	if r.complete {
		set := map[string]bool{}
		for _, o := range r.listed {
			if rest, ok := strings.CutPrefix(o.Key, r.archiveDir()); ok {
				if d, _, ok := strings.Cut(rest, "/"); ok {
					set[d] = true
				}
			}
		}
		for d := range set {
			dirs = append(dirs, d)
		}
	} else {
		ds, listed, complete, err := subdirs(ctx, r.st, r.archiveDir())
		if err != nil {
			return nil, err
		}
		dirs = ds
		if complete && r.listed == nil {
			r.listed, r.complete = listed, true
		}
	}
	var ids []string
	for _, d := range dirs {
		if isArchiveID(d) {
			ids = append(ids, d)
		}
	}
	return ids, nil
}

// list calls fn for every object below prefix, from the stanza listing
// when there is one.
func (r *pgbrRepo) list(ctx context.Context, prefix string, fn func(store.ObjectInfo) error) error {
	if r.complete {
		for _, o := range r.listed {
			if strings.HasPrefix(o.Key, prefix) {
				if err := fn(o); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return r.st.List(ctx, prefix, fn)
}

func (pgbackrestLayout) Scan(ctx context.Context, st store.Store, opts Options) (*Listing, error) {
	r, err := openRepo(ctx, st, opts)
	if err != nil {
		return nil, err
	}
	l := &Listing{Layout: PgBackRest, Prefix: opts.Prefix, Meta: map[string]*BackupMeta{}}
	ai, err := r.readInfo(ctx, r.archiveDir()+"archive.info")
	if err != nil {
		return nil, err
	}
	if ai.missing {
		r.findings = append(r.findings, finding.Finding{Severity: finding.Error, Code: CodeMetadataInvalid, File: r.archiveDir() + "archive.info",
			Message: fmt.Sprintf("stanza %s has no archive.info (nor its .copy): pgBackRest's archive-get refuses to run", r.stanza),
			Hint:    "check --archive (the repository root, repo1-path) and --stanza; recreate the file with stanza-create if the stanza is right"})
	}
	bi, err := r.readInfo(ctx, r.backupDir()+"backup.info")
	if err != nil {
		return nil, err
	}
	if ai.encrypted || bi.encrypted {
		l.Encrypted = fmt.Sprintf("the pgBackRest repository is encrypted (repo-cipher-type): %s is ciphertext or has a [cipher] section", ai.key)
		if !ai.encrypted {
			l.Encrypted = fmt.Sprintf("the pgBackRest repository is encrypted (repo-cipher-type): %s is ciphertext or has a [cipher] section", bi.key)
		}
		r.findings = append(r.findings, finding.Finding{Severity: finding.Error, Code: CodeEncrypted, File: r.archiveDir(),
			Message: l.Encrypted + "; encrypted repositories are not supported: WAL names are listed, no content is read",
			Hint:    "audit a decrypted copy (e.g. restore the WAL with pgbackrest archive-get into a directory) or run pgbackrest check/verify"})
	}
	c, err := r.pickCluster(ctx, ai, opts.ArchiveID)
	if err != nil {
		return nil, err
	}
	l.Cluster = r.stanza + "/" + strings.Join(c.ids, "+")
	l.SystemID, l.PGVersion = c.sysid, majorOf(c.version)
	for _, e := range c.others {
		r.findings = append(r.findings, finding.Finding{Severity: finding.Info, Code: CodeOtherCluster, File: r.archiveDir() + e.archiveID(),
			Message: fmt.Sprintf("archive id %s holds WAL of another cluster (PostgreSQL %s, system identifier %d), from before a pg_upgrade or stanza-upgrade: not audited here",
				e.archiveID(), e.version, e.sysid),
			Hint: fmt.Sprintf("audit it with --archive-id %s", e.archiveID())})
	}
	for _, id := range c.ids {
		dir := r.archiveDir() + id + "/"
		err := r.list(ctx, dir, func(oi store.ObjectInfo) error {
			rel := strings.TrimPrefix(oi.Key, dir)
			o, ok := parseObject(oi)
			sub, file, nested := strings.Cut(rel, "/")
			switch {
			case !ok:
				l.Unknown = append(l.Unknown, o)
			case !nested && o.Name.Kind == walname.KindTimelineHistory && o.Name.Compression == walname.CompressNone:
				l.WAL = append(l.WAL, o)
			case nested && !strings.Contains(file, "/") && o.Name.Kind != walname.KindTimelineHistory &&
				sub == o.Name.SegmentBase()[:16] && (o.Name.Checksum != "" || o.Name.Kind == walname.KindBackupHistory):
				l.WAL = append(l.WAL, o)
			default:
				r.findings = append(r.findings, finding.Finding{Severity: finding.Warning, Code: CodeMisplaced, File: oi.Key, Timeline: o.Name.TLI,
					Message: fmt.Sprintf("%s is not where pgBackRest stores it (%s): archive-get never finds it", path.Base(oi.Key), pgbrWant(o.Name)),
					Hint:    "a file copied into the repository by hand? move it with the right name or remove it"})
				l.Unknown = append(l.Unknown, o)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
	}
	sortObjects(l.WAL)
	sortObjects(l.Unknown)
	if bi.ini != nil && !bi.encrypted {
		if err := r.backups(ctx, l, bi, c); err != nil {
			return nil, err
		}
	} else if bi.missing && !ai.missing {
		r.findings = append(r.findings, finding.Finding{Severity: finding.Warning, Code: CodeMetadataInvalid, File: r.backupDir() + "backup.info",
			Message: fmt.Sprintf("stanza %s has no backup.info: no pgBackRest backup is known", r.stanza)})
	}
	if opts.VerifyChecksums && l.Encrypted == "" {
		fs, err := verifyChecksums(ctx, st, l.WAL)
		if err != nil {
			return nil, err
		}
		r.findings = append(r.findings, fs...)
	}
	l.Findings = append(l.Findings, r.findings...)
	return l, nil
}

// pgbrWant describes where pgBackRest keeps a file of this name.
func pgbrWant(n walname.Name) string {
	switch n.Kind {
	case walname.KindTimelineHistory:
		return "<archive-id>/" + n.Base()
	case walname.KindBackupHistory:
		return "<archive-id>/" + n.SegmentBase()[:16] + "/" + n.Base()
	case walname.KindSegment, walname.KindPartial:
		return "<archive-id>/" + n.SegmentBase()[:16] + "/" + n.Base() + "-<sha1>[.ext]"
	}
	return "?"
}

// pgbrBackup is one [backup:current] entry of backup.info.
type pgbrBackup struct {
	ArchiveStart string          `json:"backup-archive-start"`
	ArchiveStop  string          `json:"backup-archive-stop"`
	LSNStart     string          `json:"backup-lsn-start"`
	LSNStop      string          `json:"backup-lsn-stop"`
	TimeStart    int64           `json:"backup-timestamp-start"`
	TimeStop     int64           `json:"backup-timestamp-stop"`
	Type         string          `json:"backup-type"`
	Prior        string          `json:"backup-prior"`
	Reference    json.RawMessage `json:"backup-reference"`
	Error        *bool           `json:"backup-error"`
	DBID         int             `json:"db-id"`
}

// backups reads [backup:current] and each backup's manifest when
// backup.info lacks the LSNs.
func (r *pgbrRepo) backups(ctx context.Context, l *Listing, bi infoResult, c *pgbrCluster) error {
	bhist := history(bi.ini)
	if len(bhist) == 0 {
		bhist = []dbEntry{current(bi.ini)}
	}
	byHist := map[int]dbEntry{}
	for _, e := range bhist {
		byHist[e.hist] = e
	}
	labels := bi.ini.keys("backup:current")
	present := map[string]bool{}
	for _, lb := range labels {
		present[lb] = true
	}
	var other []string
	for _, label := range labels {
		raw, _ := bi.ini.raw("backup:current", label)
		var pb pgbrBackup
		if err := json.Unmarshal([]byte(raw), &pb); err != nil {
			r.findings = append(r.findings, finding.Finding{Severity: finding.Error, Code: CodeMetadataInvalid, File: bi.key,
				Message: fmt.Sprintf("backup %s: unreadable entry in [backup:current]: %v", label, err)})
			continue
		}
		db, ok := byHist[pb.DBID]
		if ok && c.sysid != 0 && (db.sysid != c.sysid || db.version != c.version) {
			other = append(other, fmt.Sprintf("%s (PostgreSQL %s, system identifier %d)", label, db.version, db.sysid))
			continue
		}
		b := &backup.Backup{Source: SourcePgBackRest, ID: label, Path: r.backupDir() + label, Label: label,
			SystemID: db.sysid, PGMajor: majorOf(db.version)}
		meta := &BackupMeta{Tool: PgBackRest, Type: pb.Type, Prior: pb.Prior, Status: "done", Key: bi.key}
		meta.References = references(pb.Reference)
		manifest := b.Path + "/backup.manifest"
		if _, err := r.st.Stat(ctx, manifest); err != nil {
			if !store.IsNotExist(err) {
				return err
			}
			if _, err := r.st.Stat(ctx, manifest+".copy"); err != nil {
				if !store.IsNotExist(err) {
					return err
				}
				b.Findings = append(b.Findings, finding.Finding{Severity: finding.Error, Code: CodeBackupMissing, File: manifest,
					Message: fmt.Sprintf("pgBackRest backup %s is listed in backup.info but its backup.manifest is gone: pgBackRest cannot restore it", label),
					Hint:    "the backup directory was deleted or the repository is incomplete; run pgbackrest info/verify"})
				manifest = ""
			} else {
				manifest += ".copy"
			}
		}
		if (pb.LSNStart == "" || pb.LSNStop == "") && manifest != "" {
			if mf, err := readManifestHeader(ctx, r.st, manifest); err == nil {
				if pb.LSNStart == "" {
					pb.LSNStart = mf.str("backup", "backup-lsn-start")
				}
				if pb.LSNStop == "" {
					pb.LSNStop = mf.str("backup", "backup-lsn-stop")
				}
			} else {
				b.Findings = append(b.Findings, finding.Finding{Severity: finding.Warning, Code: CodeMetadataInvalid, File: manifest,
					Message: fmt.Sprintf("backup %s: unreadable backup.manifest: %v", label, err)})
			}
		}
		fillPgBackRest(b, meta, pb)
		if pb.Prior != "" && !present[pb.Prior] {
			b.Findings = append(b.Findings, finding.Finding{Severity: finding.Error, Code: CodeBackupMissing, File: b.Path,
				Message: fmt.Sprintf("pgBackRest %s backup %s depends on backup %s, which backup.info no longer lists", pb.Type, label, pb.Prior),
				Hint:    "its files are gone: pgBackRest cannot restore this backup"})
		}
		if pb.Error != nil && *pb.Error {
			b.Findings = append(b.Findings, finding.Finding{Severity: finding.Warning, Code: CodeBackupError, File: b.Path, LSN: b.StartLSN,
				Message: fmt.Sprintf("pgBackRest backup %s recorded errors while copying (backup-error=true: page checksum failures)", label),
				Hint:    "pgbackrest info --set " + label + " lists the damaged files"})
		}
		l.Backups = append(l.Backups, b)
		l.Meta[label] = meta
	}
	if len(other) > 0 {
		r.findings = append(r.findings, finding.Finding{Severity: finding.Info, Code: CodeOtherCluster, File: bi.key,
			Message: fmt.Sprintf("%d backup(s) of another cluster not audited: %s", len(other), strings.Join(other, ", "))})
	}
	return nil
}

func references(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return strings.Split(s, ",")
	}
	return nil
}

// readManifestHeader reads the [backup] section of a backup.manifest.
func readManifestHeader(ctx context.Context, st store.Store, key string) (*iniFile, error) {
	data, err := readAll(ctx, st, key, maxManifest)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(data, []byte("Salted__")) {
		return nil, ErrEncrypted
	}
	return parseINI(data, map[string]bool{"backup": true, "backup:db": true, "backup:option": true})
}

// fillPgBackRest turns a backup.info entry into the common description.
func fillPgBackRest(b *backup.Backup, meta *BackupMeta, pb pgbrBackup) {
	meta.StartWAL, meta.StopWAL = pb.ArchiveStart, pb.ArchiveStop
	if n, err := walname.Parse(pb.ArchiveStart); err == nil && n.Kind == walname.KindSegment {
		b.StartTLI = n.TLI
	}
	if n, err := walname.Parse(pb.ArchiveStop); err == nil && n.Kind == walname.KindSegment {
		b.StopTLI = n.TLI
	}
	if lsn, err := walname.ParseLSN(pb.LSNStart); err == nil {
		b.StartLSN = lsn
	}
	if lsn, err := walname.ParseLSN(pb.LSNStop); err == nil {
		b.StopLSN = lsn
		b.StopSource = "backup.info"
	}
	if pb.TimeStart > 0 {
		b.StartTime = epochTimestamp(pb.TimeStart)
	}
	if pb.TimeStop > 0 {
		b.StopTime = epochTimestamp(pb.TimeStop)
	}
}

// epochTimestamp renders Unix seconds as a resolved UTC timestamp.
func epochTimestamp(sec int64) backup.Timestamp {
	t := time.Unix(sec, 0).UTC()
	return backup.Timestamp{Text: t.Format("2006-01-02 15:04:05") + " UTC", Zone: "UTC", Time: t, Resolved: true}
}

// Locate reads archive.info, then lists the one 16-hex directory that can
// hold the segment in each archive id of the current cluster, newest id
// first, as archive-get does.
func (pgbackrestLayout) Locate(ctx context.Context, st store.Store, name string, opts Options) ([]Location, error) {
	r, err := openRepo(ctx, st, opts)
	if err != nil {
		return nil, err
	}
	ai, err := r.readInfo(ctx, r.archiveDir()+"archive.info")
	if err != nil {
		return nil, err
	}
	if ai.encrypted {
		return nil, fmt.Errorf("%s: %w (repo-cipher-type is set; walaudit cannot decrypt)", where(st, r.prefix), ErrEncrypted)
	}
	if ai.missing {
		return nil, fmt.Errorf("pgBackRest stanza %s in %s has no archive.info: check --archive (the repository root) and --stanza", r.stanza, where(st, r.prefix))
	}
	c, err := r.pickCluster(ctx, ai, opts.ArchiveID)
	if err != nil {
		return nil, err
	}
	for _, id := range c.ids {
		dir := r.archiveDir() + id + "/"
		if walname.IsHistoryName(name) {
			locs, err := statFirst(ctx, st, []Location{{Key: dir + name}})
			if err != nil || len(locs) > 0 {
				return locs, err
			}
			continue
		}
		prefix := dir + name[:16] + "/" + name + "-"
		var found []Location
		err := st.List(ctx, prefix, func(oi store.ObjectInfo) error {
			n, err := walname.Parse(path.Base(oi.Key))
			if err == nil && n.Kind == walname.KindSegment && n.Checksum != "" && n.Base() == name && path.Dir(oi.Key)+"/" == dir+name[:16]+"/" {
				found = append(found, Location{Key: oi.Key, Compression: n.Compression, Checksum: n.Checksum})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("look up %s in %s: %w", name, where(st, r.prefix), err)
		}
		if len(found) > 0 {
			sort.Slice(found, func(i, j int) bool { return found[i].Key < found[j].Key })
			return found, nil
		}
	}
	return nil, nil
}
