package layout

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// SourceWALG is [backup.Backup.Source] for backups read from WAL-G sentinels.
const SourceWALG = "walg"

// WAL-G's object names (FORMATS §6.2).
const (
	walgWALDir     = "wal_005/"
	walgBackupDir  = "basebackups_005/"
	walgSentinel   = "_backup_stop_sentinel.json"
	walgMetadata   = "metadata.json"
	walgDeltaMarks = "_delta"
)

// walgBackupName is WAL-G's own matcher for backup names.
var walgBackupName = regexp.MustCompile(`^base_[0-9A-F]{24}(_D_[0-9A-F]{24})?(_[0-9A-F]{8})?$`)

// walgLayout reads a WAL-G storage prefix: every file wal-push was given,
// flat under wal_005/ with the compressor's suffix (lz4 by default, lzma,
// zst, br; gz and lzo from old versions; none), and one
// <backup>_backup_stop_sentinel.json per complete backup under
// basebackups_005/. Encryption (libsodium, OpenPGP, KMS) keeps the names
// and replaces the content, so it is recognised by content that is not
// what the suffix promises.
type walgLayout struct{}

func (walgLayout) Name() string { return WALG }

func (walgLayout) Scan(ctx context.Context, st store.Store, opts Options) (*Listing, error) {
	l := &Listing{Layout: WALG, Prefix: opts.Prefix, Meta: map[string]*BackupMeta{}}
	walDir := opts.Prefix + walgWALDir
	err := st.List(ctx, walDir, func(oi store.ObjectInfo) error {
		rel := strings.TrimPrefix(oi.Key, walDir)
		o, ok := parseObject(oi)
		switch {
		case ok && !strings.Contains(rel, "/"):
			l.WAL = append(l.WAL, o)
		case isWALGDelta(rel):
			// WAL-delta maps for delta backups: not WAL, not needed by recovery.
		default:
			l.Unknown = append(l.Unknown, o)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", walDir, err)
	}
	sortObjects(l.WAL)
	sortObjects(l.Unknown)
	if err := walgEncryption(ctx, st, l); err != nil {
		return nil, err
	}
	if err := walgBackups(ctx, st, opts.Prefix, l); err != nil {
		return nil, err
	}
	return l, nil
}

// isWALGDelta recognises <24 hex>_delta[.ext].
func isWALGDelta(rel string) bool {
	if len(rel) < 24+len(walgDeltaMarks) || strings.Contains(rel, "/") {
		return false
	}
	n, err := walname.Parse(rel[:24])
	if err != nil || n.Kind != walname.KindSegment {
		return false
	}
	rest := rel[24:]
	if !strings.HasPrefix(rest, walgDeltaMarks) {
		return false
	}
	rest = strings.TrimPrefix(rest, walgDeltaMarks)
	return rest == "" || (rest[0] == '.' && !strings.Contains(rest[1:], "."))
}

// walgEncryption samples the first and the last segment: WAL-G encrypts
// after compressing and keeps the name, so an encrypted .lz4 object does
// not start with the LZ4 magic.
func walgEncryption(ctx context.Context, st store.Store, l *Listing) error {
	var sample []*Object
	for _, o := range l.WAL {
		if o.Name.Kind == walname.KindSegment {
			sample = append(sample, o)
			break
		}
	}
	for i := len(l.WAL) - 1; i >= 0; i-- {
		if o := l.WAL[i]; o.Name.Kind == walname.KindSegment {
			if len(sample) == 0 || sample[0] != o {
				sample = append(sample, o)
			}
			break
		}
	}
	for _, o := range sample {
		enc, what, err := sniffEncrypted(ctx, st, o)
		if err != nil {
			if store.IsNotExist(err) {
				continue
			}
			return fmt.Errorf("read %s: %w", o.Key, err)
		}
		if enc {
			l.Encrypted = fmt.Sprintf("WAL-G objects are encrypted (%s is %s)", path.Base(o.Key), what)
			l.Findings = append(l.Findings, finding.Finding{Severity: finding.Error, Code: CodeEncrypted, File: o.Key,
				Message: l.Encrypted + "; WALG_LIBSODIUM_KEY, WALG_PGP_KEY or WALG_CSE_KMS_ID encryption is not supported: WAL names are listed, no content is read",
				Hint:    "audit a decrypted copy (wal-g wal-fetch into a directory) instead"})
			return nil
		}
	}
	return nil
}

// walgSentinelDto is the sentinel, classic and V2 (FORMATS §6.2).
type walgSentinelDto struct {
	LSN              *uint64    `json:"LSN"`
	FinishLSN        *uint64    `json:"FinishLSN"`
	Timeline         *uint32    `json:"Timeline"`
	PgVersion        int        `json:"PgVersion"`
	SystemIdentifier *uint64    `json:"SystemIdentifier"`
	DeltaFrom        *string    `json:"DeltaFrom"`
	DeltaFullName    *string    `json:"DeltaFullName"`
	DeltaLSN         *uint64    `json:"DeltaLSN"`
	DeltaFromLSN     *uint64    `json:"DeltaFromLSN"`
	DeltaCount       *int       `json:"DeltaCount"`
	Version          int        `json:"Version"`
	StartTime        *time.Time `json:"StartTime"`
	FinishTime       *time.Time `json:"FinishTime"`
	IsPermanent      bool       `json:"IsPermanent"`
	Hostname         string     `json:"Hostname"`
}

// walgMetadataDto is basebackups_005/<name>/metadata.json.
type walgMetadataDto struct {
	StartTime        *time.Time `json:"start_time"`
	FinishTime       *time.Time `json:"finish_time"`
	StartLSN         *uint64    `json:"start_lsn"`
	FinishLSN        *uint64    `json:"finish_lsn"`
	PgVersion        int        `json:"pg_version"`
	SystemIdentifier *uint64    `json:"system_identifier"`
	Timeline         *uint32    `json:"timeline"`
	IsPermanent      bool       `json:"is_permanent"`
}

// walgBackups lists basebackups_005/ and reads every sentinel (and
// metadata.json when the sentinel lacks the stop LSN or times).
func walgBackups(ctx context.Context, st store.Store, prefix string, l *Listing) error {
	dir := prefix + walgBackupDir
	sentinels := map[string]string{}
	metadata := map[string]bool{}
	dirs := map[string]bool{}
	err := st.List(ctx, dir, func(oi store.ObjectInfo) error {
		rel := strings.TrimPrefix(oi.Key, dir)
		if name, ok := strings.CutSuffix(rel, walgSentinel); ok && !strings.Contains(name, "/") {
			sentinels[name] = oi.Key
			return nil
		}
		if d, rest, ok := strings.Cut(rel, "/"); ok {
			dirs[d] = true
			if rest == walgMetadata {
				metadata[d] = true
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	for n := range sentinels {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		key := sentinels[name]
		data, err := readAll(ctx, st, key, maxManifest)
		if err != nil {
			return err
		}
		var s walgSentinelDto
		if err := json.Unmarshal(data, &s); err != nil {
			l.Findings = append(l.Findings, finding.Finding{Severity: finding.Error, Code: CodeMetadataInvalid, File: key,
				Message: fmt.Sprintf("WAL-G backup %s: unreadable sentinel: %v", name, err), Hint: "wal-g backup-fetch refuses this backup"})
			continue
		}
		var m walgMetadataDto
		if metadata[name] && (s.FinishLSN == nil || s.StartTime == nil || s.SystemIdentifier == nil) {
			mkey := dir + name + "/" + walgMetadata
			if mdata, err := readAll(ctx, st, mkey, maxMeta); err == nil {
				if err := json.Unmarshal(mdata, &m); err != nil {
					l.Findings = append(l.Findings, finding.Finding{Severity: finding.Warning, Code: CodeMetadataInvalid, File: mkey,
						Message: fmt.Sprintf("WAL-G backup %s: unreadable metadata.json: %v", name, err)})
				}
			} else if !store.IsNotExist(err) {
				return err
			}
		}
		b, meta := walgBackup(name, key, &s, &m)
		l.Backups = append(l.Backups, b)
		l.Meta[name] = meta
	}
	// Delta chains: every base a delta names must still be complete.
	for _, b := range l.Backups {
		meta := l.Meta[b.ID]
		if meta.Prior == "" {
			continue
		}
		if _, ok := sentinels[meta.Prior]; !ok {
			b.Findings = append(b.Findings, finding.Finding{Severity: finding.Error, Code: CodeBackupMissing, File: b.Path, LSN: b.StartLSN,
				Message: fmt.Sprintf("WAL-G delta backup %s is based on %s, which has no sentinel: wal-g backup-fetch cannot restore it", b.ID, meta.Prior),
				Hint:    "the base backup was deleted or never finished; take a new full backup"})
		}
	}
	// Backup directories without a sentinel: unfinished or failed.
	var pending []string
	for d := range dirs {
		if _, ok := sentinels[d]; !ok && walgBackupName.MatchString(d) {
			pending = append(pending, d)
		}
	}
	sort.Strings(pending)
	for _, d := range pending {
		l.Findings = append(l.Findings, finding.Finding{Severity: finding.Warning, Code: CodeBackupNotDone, File: dir + d + "/",
			Message: fmt.Sprintf("WAL-G backup %s has no %s: it never finished (or is still running) and is never used", d, d+walgSentinel),
			Hint:    "wal-g delete garbage removes leftovers of failed backups"})
	}
	return nil
}

func walgType(name string) string {
	if strings.Contains(name, "_D_") {
		return "delta"
	}
	return "full"
}

// walgBackup turns a sentinel (and metadata.json) into the common description.
func walgBackup(name, key string, s *walgSentinelDto, m *walgMetadataDto) (*backup.Backup, *BackupMeta) {
	b := &backup.Backup{Source: SourceWALG, ID: name, Path: strings.TrimSuffix(key, walgSentinel), Label: name}
	meta := &BackupMeta{Tool: WALG, Type: walgType(name), Status: "done", Key: key}
	if s.LSN != nil {
		b.StartLSN = walname.LSN(*s.LSN)
	} else if m.StartLSN != nil {
		b.StartLSN = walname.LSN(*m.StartLSN)
	}
	if s.FinishLSN != nil {
		b.StopLSN = walname.LSN(*s.FinishLSN)
	} else if m.FinishLSN != nil {
		b.StopLSN = walname.LSN(*m.FinishLSN)
	}
	if b.StopLSN != 0 {
		b.StopSource = "walg-sentinel"
	}
	switch {
	case s.Timeline != nil && *s.Timeline != 0:
		b.StartTLI = walname.TimelineID(*s.Timeline)
	case m.Timeline != nil && *m.Timeline != 0:
		b.StartTLI = walname.TimelineID(*m.Timeline)
	case len(name) >= 29:
		// The backup's timeline is the start segment's, in the name.
		if n, err := walname.Parse(name[5:29]); err == nil && n.Kind == walname.KindSegment {
			b.StartTLI = n.TLI
		}
	}
	if b.StopLSN != 0 {
		b.StopTLI = b.StartTLI // a backup never crosses a timeline switch on a primary
	}
	if s.SystemIdentifier != nil {
		b.SystemID = *s.SystemIdentifier
	} else if m.SystemIdentifier != nil {
		b.SystemID = *m.SystemIdentifier
	}
	pgv := s.PgVersion
	if pgv == 0 {
		pgv = m.PgVersion
	}
	if pgv >= 100000 {
		b.PGMajor = pgv / 10000
	}
	if t := firstTime(s.StartTime, m.StartTime); !t.IsZero() {
		b.StartTime = goTimestamp(t)
	}
	if t := firstTime(s.FinishTime, m.FinishTime); !t.IsZero() {
		b.StopTime = goTimestamp(t)
	}
	if s.DeltaFrom != nil && *s.DeltaFrom != "" {
		meta.Prior = *s.DeltaFrom
		meta.Type = "delta"
		if s.DeltaFullName != nil && *s.DeltaFullName != "" && *s.DeltaFullName != meta.Prior {
			meta.References = []string{*s.DeltaFullName, meta.Prior}
		} else {
			meta.References = []string{meta.Prior}
		}
	}
	if len(name) >= 29 {
		meta.StartWAL = name[5:29]
	}
	if b.StartLSN == 0 {
		b.Findings = append(b.Findings, finding.Finding{Severity: finding.Error, Code: CodeMetadataInvalid, File: key,
			Message: fmt.Sprintf("WAL-G backup %s: the sentinel has no start LSN", name)})
	}
	return b, meta
}

func firstTime(ts ...*time.Time) time.Time {
	for _, t := range ts {
		if t != nil && !t.IsZero() {
			return *t
		}
	}
	return time.Time{}
}

// goTimestamp renders an instant as a resolved UTC timestamp.
func goTimestamp(t time.Time) backup.Timestamp {
	t = t.UTC()
	return backup.Timestamp{Text: t.Format("2006-01-02 15:04:05") + " UTC", Zone: "UTC", Time: t, Resolved: true}
}

// walgSuffixes is the order in which Locate asks: WAL-G's default (lz4),
// the other compressors, then none and the legacy decompress-only ones.
var walgSuffixes = []walname.Compression{walname.CompressLZ4, walname.CompressZstd, walname.CompressBrotli, walname.CompressLZMA,
	walname.CompressNone, walname.CompressGzip, walname.CompressLZO}

// Locate asks for wal_005/<name>.<ext>, one Stat per suffix.
func (walgLayout) Locate(ctx context.Context, st store.Store, name string, opts Options) ([]Location, error) {
	var cands []Location
	for _, c := range walgSuffixes {
		key := opts.Prefix + walgWALDir + name
		if c != walname.CompressNone {
			key += "." + string(c)
		}
		cands = append(cands, Location{Key: key, Compression: c})
	}
	locs, err := statFirst(ctx, st, cands)
	if err != nil || len(locs) == 0 {
		return locs, err
	}
	o := &Object{Key: locs[0].Key, Name: walname.Name{Kind: walname.KindSegment, Compression: locs[0].Compression}}
	if walname.IsHistoryName(name) {
		o.Name.Kind = walname.KindTimelineHistory
	}
	if enc, what, err := sniffEncrypted(ctx, st, o); err == nil && enc {
		return nil, fmt.Errorf("%s is %s: %w", locs[0].Key, what, ErrEncrypted)
	}
	return locs, nil
}
