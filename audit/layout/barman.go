package layout

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/codec"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// SourceBarman is [backup.Backup.Source] for backups read from Barman's
// backup.info files.
const SourceBarman = "barman"

// maxXlogDB bounds xlog.db (one short line per archived file).
const maxXlogDB = 256 << 20

// barmanLayout reads a Barman server directory (FORMATS §6.3):
//
//	wals/<16 hex>/<24 hex>            segments and .backup files, plain names even when compressed
//	wals/TTTTTTTT.history
//	wals/xlog.db, or wals/<server>-xlog.db (Barman 3.13+)
//	base/<backup id>/backup.info
//
// and the barman-cloud variant, whose names carry the compression suffix
// and which has no xlog.db. Compression of a plain name comes from xlog.db,
// or from the magic bytes when xlog.db does not list the file.
type barmanLayout struct{}

func (barmanLayout) Name() string { return Barman }

// xlogEntry is one line of xlog.db.
type xlogEntry struct {
	size        int64
	compression string
	encryption  string
}

// barmanCompression maps xlog.db's compression names to suffixes; ok is
// false for "custom" and unknown names.
func barmanCompression(s string) (walname.Compression, bool) {
	switch strings.ToLower(s) {
	case "", "none":
		return walname.CompressNone, true
	case "gzip", "pigz", "pygzip":
		return walname.CompressGzip, true
	case "bzip2", "pybzip2":
		return walname.CompressBzip2, true
	case "lz4":
		return walname.CompressLZ4, true
	case "zstd":
		return walname.CompressZstd, true
	case "xz":
		return walname.CompressXZ, true
	case "snappy":
		return walname.CompressSnappy, true
	}
	return walname.CompressNone, false
}

// parseXlogDB reads xlog.db: name, size, time, compression[, encryption],
// whitespace-separated; 3 to 5 fields.
func parseXlogDB(data []byte) (map[string]xlogEntry, int) {
	out := map[string]xlogEntry{}
	bad := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 || len(f) > 5 {
			bad++
			continue
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			bad++
			continue
		}
		e := xlogEntry{size: size}
		if len(f) >= 4 {
			e.compression = f[3]
		}
		if len(f) == 5 {
			e.encryption = f[4]
		}
		out[f[0]] = e
	}
	return out, bad
}

func isNone(s string) bool { return s == "" || strings.EqualFold(s, "none") }

// plausibleSegmentSize reports a size an uncompressed segment can have.
func plausibleSegmentSize(n int64) bool {
	return n >= int64(walname.MinSegmentSize) && n <= int64(walname.MaxSegmentSize) && n&(n-1) == 0
}

func (barmanLayout) Scan(ctx context.Context, st store.Store, opts Options) (*Listing, error) {
	l := &Listing{Layout: Barman, Prefix: opts.Prefix, Meta: map[string]*BackupMeta{}}
	walDir := opts.Prefix + "wals/"
	var xlogKeys []string
	err := st.List(ctx, walDir, func(oi store.ObjectInfo) error {
		rel := strings.TrimPrefix(oi.Key, walDir)
		if rel == "xlog.db" || (strings.HasSuffix(rel, "-xlog.db") && !strings.Contains(rel, "/")) {
			xlogKeys = append(xlogKeys, oi.Key)
			return nil
		}
		o, ok := parseObject(oi)
		dir, file, nested := strings.Cut(rel, "/")
		switch {
		case !ok:
			l.Unknown = append(l.Unknown, o)
		case !nested && o.Name.Kind == walname.KindTimelineHistory:
			l.WAL = append(l.WAL, o)
		case nested && !strings.Contains(file, "/") && o.Name.Kind != walname.KindTimelineHistory && dir == o.Name.SegmentBase()[:16]:
			l.WAL = append(l.WAL, o)
		default:
			l.Findings = append(l.Findings, finding.Finding{Severity: finding.Warning, Code: CodeMisplaced, File: oi.Key, Timeline: o.Name.TLI,
				Message: fmt.Sprintf("%s is not where Barman stores it (wals/%s): barman get-wal never finds it", path.Base(oi.Key), barmanWant(o.Name)),
				Hint:    "a file copied in by hand? move it to the right directory"})
			l.Unknown = append(l.Unknown, o)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", walDir, err)
	}
	sortObjects(l.WAL)
	sortObjects(l.Unknown)

	// xlog.db: the compression of plain-named files.
	db := map[string]xlogEntry{}
	sort.Strings(xlogKeys)
	for _, k := range xlogKeys {
		data, err := readAll(ctx, st, k, maxXlogDB)
		if err != nil {
			return nil, err
		}
		entries, bad := parseXlogDB(data)
		if bad > 0 {
			l.Findings = append(l.Findings, finding.Finding{Severity: finding.Warning, Code: CodeXlogDB, File: k,
				Message: fmt.Sprintf("%d unreadable line(s) in xlog.db", bad), Hint: "barman rebuild-xlogdb regenerates it"})
		}
		for n, e := range entries {
			db[n] = e
		}
	}
	var custom, unlisted, wrong []string
	encrypted := ""
	inDir := map[string]bool{}
	for _, o := range l.WAL {
		base := path.Base(o.Key)
		inDir[base] = true
		e, listed := db[base]
		if o.Name.Compression != walname.CompressNone {
			continue // barman-cloud: the suffix says it
		}
		switch {
		case listed:
			c, ok := barmanCompression(e.compression)
			if !ok {
				custom = append(custom, base)
				continue
			}
			o.Name.Compression = c
			if e.size != o.Size {
				wrong = append(wrong, fmt.Sprintf("%s (xlog.db %d bytes, stored %d)", base, e.size, o.Size))
			}
		case len(db) > 0 && o.Name.Kind == walname.KindSegment:
			unlisted = append(unlisted, base)
			fallthrough
		default:
			if o.Name.Kind == walname.KindSegment && !plausibleSegmentSize(o.Size) {
				// Not a segment's size: compressed? Ask the magic bytes.
				h, err := head(ctx, st, o.Key, 16)
				if err != nil && !store.IsNotExist(err) {
					return nil, err
				}
				if c, ok := codec.Sniff(h); ok && c != codec.None {
					o.Name.Compression = c.Suffix()
				}
			}
		}
	}
	if len(custom) > 0 {
		l.Findings = append(l.Findings, finding.Finding{Severity: finding.Warning, Code: CodeXlogDB, File: xlogKeys[0],
			Message: fmt.Sprintf("%d file(s) use Barman's custom compression, which walaudit cannot decompress (e.g. %s)", len(custom), custom[0]),
			Hint:    "audit a copy restored with barman get-wal"})
	}
	if len(unlisted) > 0 {
		l.Findings = append(l.Findings, finding.Finding{Severity: finding.Warning, Code: CodeXlogDB, File: xlogKeys[0],
			Message: fmt.Sprintf("%d segment(s) in wals/ are not in xlog.db (e.g. %s)", len(unlisted), unlisted[0]),
			Hint:    "barman rebuild-xlogdb; barman's retention and get-wal rely on xlog.db"})
	}
	if len(wrong) > 0 {
		l.Findings = append(l.Findings, finding.Finding{Severity: finding.Warning, Code: CodeXlogDB, File: xlogKeys[0],
			Message: fmt.Sprintf("%d file(s) differ in size from their xlog.db entry, e.g. %s", len(wrong), wrong[0])})
	}
	var gone []string
	for n, e := range db {
		if !isNone(e.encryption) && (encrypted == "" || n < encrypted) {
			encrypted = n
		}
		if nm, err := walname.Parse(n); err == nil && nm.Kind == walname.KindSegment && !inDir[n] {
			gone = append(gone, n)
		}
	}
	if len(gone) > 0 {
		sort.Strings(gone)
		l.Findings = append(l.Findings, finding.Finding{Severity: finding.Warning, Code: CodeXlogDB, File: xlogKeys[0],
			Message: fmt.Sprintf("xlog.db lists %d segment(s) that are not in wals/ (e.g. %s)", len(gone), gone[0]),
			Hint:    "files were removed behind Barman's back; the missing WAL shows as gaps"})
	}
	if err := barmanBackups(ctx, st, opts.Prefix, l); err != nil {
		return nil, err
	}
	if encrypted != "" && l.Encrypted == "" {
		l.Encrypted = fmt.Sprintf("xlog.db records %s encryption for %s", db[encrypted].encryption, encrypted)
	}
	if l.Encrypted != "" {
		l.Findings = append(l.Findings, finding.Finding{Severity: finding.Error, Code: CodeEncrypted, File: walDir,
			Message: "the Barman archive is encrypted (" + l.Encrypted + "); encrypted archives are not supported: WAL names are listed, no content is read",
			Hint:    "audit a copy restored with barman get-wal"})
	}
	return l, nil
}

func barmanWant(n walname.Name) string {
	if n.Kind == walname.KindTimelineHistory {
		return n.Base()
	}
	return n.SegmentBase()[:16] + "/" + n.Base()
}

// barmanBackups reads base/<id>/backup.info of every backup directory.
func barmanBackups(ctx context.Context, st store.Store, prefix string, l *Listing) error {
	baseDir := prefix + "base/"
	ids, _, _, err := subdirs(ctx, st, baseDir)
	if err != nil {
		return err
	}
	for _, id := range ids {
		key := baseDir + id + "/backup.info"
		data, err := readAll(ctx, st, key, maxMeta)
		if err != nil {
			if store.IsNotExist(err) {
				l.Findings = append(l.Findings, finding.Finding{Severity: finding.Warning, Code: CodeBackupNotDone, File: baseDir + id + "/",
					Message: fmt.Sprintf("Barman backup directory %s has no backup.info: not a usable backup", id)})
				continue
			}
			return err
		}
		info := parseBarmanInfo(data)
		b, meta := barmanBackup(id, key, info)
		if b.StartLSN == 0 {
			l.Findings = append(l.Findings, finding.Finding{Severity: finding.Warning, Code: CodeBackupNotDone, File: key,
				Message: fmt.Sprintf("Barman backup %s (status %s) has no begin_xlog: it never started copying and is never used", id, meta.Status)})
			continue
		}
		if enc := info["encryption"]; !isNone(enc) && l.Encrypted == "" {
			l.Encrypted = fmt.Sprintf("backup %s is %s-encrypted", id, enc)
		}
		l.Backups = append(l.Backups, b)
		l.Meta[id] = meta
		if b.SegmentSize != 0 && l.SegmentSize == 0 {
			l.SegmentSize = b.SegmentSize
		}
		if b.SystemID != 0 && l.SystemID == 0 {
			l.SystemID = b.SystemID
		}
	}
	return nil
}

// parseBarmanInfo reads key=value lines (values in Python's str/repr).
func parseBarmanInfo(data []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), "=")
		if !ok {
			continue
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out
}

// pythonString undoes repr() of a str (or bytes): 'a\nb' -> a<newline>b.
func pythonString(s string) (string, bool) {
	s = strings.TrimPrefix(s, "b")
	if len(s) < 2 || (s[0] != '\'' && s[0] != '"') || s[len(s)-1] != s[0] {
		return "", false
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '\\', '\'', '"':
			b.WriteByte(s[i])
		case 'x':
			if i+2 < len(s) {
				if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
					b.WriteByte(byte(v))
					i += 2
					continue
				}
			}
			b.WriteString(`\x`)
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String(), true
}

// pythonTime parses str(datetime) with a UTC offset.
func pythonTime(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05-07:00", "2006-01-02T15:04:05.999999-07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// barmanBackup turns a backup.info into the common description.
func barmanBackup(id, key string, info map[string]string) (*backup.Backup, *BackupMeta) {
	b := &backup.Backup{Source: SourceBarman, ID: id, Path: path.Dir(key), Label: id}
	status := info["status"]
	meta := &BackupMeta{Tool: Barman, Type: info["backup_type"], Status: status, Key: key,
		StartWAL: noneToEmpty(info["begin_wal"]), StopWAL: noneToEmpty(info["end_wal"])}
	if p := noneToEmpty(strings.Trim(info["parent_backup_id"], `'"`)); p != "" {
		meta.Prior = p
		meta.References = []string{p}
	}
	if n := noneToEmpty(strings.Trim(info["backup_name"], `'"`)); n != "" {
		b.Label = n
	}
	if lsn, err := walname.ParseLSN(info["begin_xlog"]); err == nil {
		b.StartLSN = lsn
	}
	if lsn, err := walname.ParseLSN(info["end_xlog"]); err == nil {
		b.StopLSN = lsn
		b.StopSource = "barman-backup.info"
	}
	if v, err := strconv.ParseUint(info["timeline"], 10, 32); err == nil {
		b.StartTLI = walname.TimelineID(v)
	}
	if n, err := walname.Parse(info["end_wal"]); err == nil && n.Kind == walname.KindSegment {
		b.StopTLI = n.TLI
	} else if b.StopLSN != 0 {
		b.StopTLI = b.StartTLI
	}
	if v, err := strconv.ParseUint(info["systemid"], 10, 64); err == nil {
		b.SystemID = v
	}
	if v, err := strconv.Atoi(info["version"]); err == nil && v >= 100000 {
		b.PGMajor = v / 10000
	}
	if v, err := strconv.ParseUint(info["xlog_segment_size"], 10, 64); err == nil && walname.SegmentSize(v).Validate() == nil {
		b.SegmentSize = walname.SegmentSize(v)
	}
	if t, ok := pythonTime(info["begin_time"]); ok {
		b.StartTime = goTimestamp(t)
	}
	if t, ok := pythonTime(info["end_time"]); ok {
		b.StopTime = goTimestamp(t)
	}
	if text, ok := pythonString(info["backup_label"]); ok {
		if lb, err := backup.ParseLabel([]byte(text)); err == nil {
			b.BackupLabel = lb
			b.CheckpointLSN = lb.CheckpointLSN
			b.FromStandby = lb.FromStandby()
			b.BackupMethod = lb.BackupMethod
			if lb.StartLSN != 0 && b.StartLSN == 0 {
				b.StartLSN = lb.StartLSN
			}
		}
	}
	if status != "DONE" {
		what := map[string]string{
			"FAILED":           "failed",
			"STARTED":          "is still running (or was interrupted)",
			"EMPTY":            "never started",
			"WAITING_FOR_WALS": "is waiting for the WAL up to its end to be archived",
			"SYNCING":          "is still being synchronised from the primary Barman server",
		}[status]
		if what == "" {
			what = "did not complete"
		}
		b.Findings = append(b.Findings, finding.Finding{Severity: finding.Error, Code: CodeBackupNotDone, File: key, LSN: b.StartLSN, Timeline: b.StartTLI,
			Message: fmt.Sprintf("Barman backup %s has status %s: it %s; only DONE backups are restorable, so it is never chosen", id, orUnknown(status), what),
			Hint:    "barman check and barman list-backups show why; barman cron completes WAITING_FOR_WALS backups once the WAL arrives"})
	}
	return b, meta
}

func noneToEmpty(s string) string {
	if isNone(s) {
		return ""
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Locate asks for wals/<16 hex>/<name> (history files: wals/<name>), the
// plain name first, then with each suffix barman-cloud writes.
func (barmanLayout) Locate(ctx context.Context, st store.Store, name string, opts Options) ([]Location, error) {
	dir := opts.Prefix + "wals/"
	if walname.IsSegmentName(name) {
		dir += name[:16] + "/"
	}
	return statFirst(ctx, st, candidates(dir, name))
}
