package audit

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/layout"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/timeline"
	"github.com/walaudit/walaudit/walname"
)

// maxMetaFile bounds .history and .backup files read into memory: real
// ones are a few hundred bytes.
const maxMetaFile = 1 << 20

// Archive is everything walaudit knows about one archive: the inventory,
// the timeline set and the base backups, with findings.
type Archive struct {
	Inv       *Inventory
	Timelines *timeline.Set
	Backups   []*backup.Backup
	// BackupMeta describes, by backup ID, what a backup tool records
	// beyond [backup.Backup]: type, prior backup of a differential,
	// incremental or delta backup (restorable: the tool resolves the
	// chain), status.
	BackupMeta map[string]*layout.BackupMeta
	// Systems maps segments to database systems: more than one after a
	// pg_upgrade into the same archive.
	Systems  *Systems
	Findings []finding.Finding
}

// LoadOptions tune [Load].
type LoadOptions struct {
	ScanOptions
	// BackupsDir is a directory of pg_basebackup outputs (--backups): a
	// path, a file:// URL or an s3:// URL.
	BackupsDir string
}

// Load scans the archive, reads its history and backup history files and
// the backups directory, and merges what it learns about each backup.
func Load(ctx context.Context, st store.Store, opts LoadOptions) (*Archive, error) {
	inv, err := Scan(ctx, st, opts.ScanOptions)
	if err != nil {
		return nil, err
	}
	a := &Archive{Inv: inv}
	a.Findings = append(a.Findings, inv.Findings...)

	hist := map[walname.TimelineID][]byte{}
	for tli, o := range inv.Histories {
		if inv.Encrypted != "" {
			break // unreadable; REPO_ENCRYPTED says so
		}
		b, err := readMeta(ctx, st, o)
		if err != nil {
			if isContentError(err) {
				a.Findings = append(a.Findings, finding.Finding{Severity: finding.Error, Code: "HISTORY_MALFORMED", File: o.Key, Timeline: tli,
					Message: fmt.Sprintf("history file cannot be decompressed: %v", err), Hint: "recovery cannot read it either; restore an intact copy"})
				continue
			}
			return nil, fmt.Errorf("read history file %s: %w", o.Key, err)
		}
		hist[tli] = b
	}
	var withSegs []walname.TimelineID
	for tli := range inv.Segments {
		withSegs = append(withSegs, tli)
	}
	a.Timelines = timeline.NewSet(hist, withSegs)
	for _, p := range a.Timelines.Problems() {
		sev := finding.Warning
		if p.Severity == timeline.SeverityError {
			sev = finding.Error
		}
		file := p.File
		if o := inv.Histories[p.TLI]; o != nil && file == walname.HistoryName(p.TLI) {
			file = o.Key
		}
		a.Findings = append(a.Findings, finding.Finding{Severity: sev, Code: string(p.Code), File: file, LSN: p.LSN, Timeline: p.TLI, Message: p.Message})
	}

	var fromArchive []*backup.Backup
	for _, o := range inv.BackupHistories {
		if inv.Encrypted != "" {
			a.Findings = append(a.Findings, finding.Finding{Severity: finding.Warning, Code: "BACKUP_HISTORY_UNREADABLE", File: o.Key,
				Message: "backup history file not read: the repository is encrypted"})
			continue
		}
		data, err := readMeta(ctx, st, o)
		if err != nil {
			if isContentError(err) {
				a.Findings = append(a.Findings, finding.Finding{Severity: finding.Warning, Code: "BACKUP_HISTORY_UNREADABLE", File: o.Key,
					Message: fmt.Sprintf("backup history file cannot be decompressed: %v", err)})
				continue
			}
			return nil, fmt.Errorf("read backup history file %s: %w", o.Key, err)
		}
		hf, err := backup.ParseHistoryFile(data)
		if err != nil {
			a.Findings = append(a.Findings, finding.Finding{Severity: finding.Error, Code: "BACKUP_LABEL_INVALID", File: o.Key,
				Message: fmt.Sprintf("unreadable backup history file: %v", err), Hint: "this backup cannot be located in the WAL; check the file by hand"})
			continue
		}
		name := path.Base(o.Key)
		if o.Name.Compression != walname.CompressNone && !strings.HasSuffix(name, "."+string(o.Name.Compression)) {
			name = o.Name.Base() // Barman: compressed under the plain name
		}
		a.Findings = append(a.Findings, backup.CheckHistoryFile(name, hf, inv.SegmentSize)...)
		fromArchive = append(fromArchive, backup.FromHistoryFile(name, hf, inv.SegmentSize))
	}
	fromArchive = absorbHistories(inv.ToolBackups, inv.BackupMeta, fromArchive, inv.SegmentSize)
	for _, b := range inv.ToolBackups {
		a.Findings = append(a.Findings, b.Findings...)
	}

	var fromDir []*backup.Backup
	if opts.BackupsDir != "" {
		bs, fs, err := scanBackupsDir(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("read backups directory %s: %w", opts.BackupsDir, err)
		}
		fromDir = bs
		a.Findings = append(a.Findings, fs...)
	}
	a.Backups = mergeBackups(fromArchive, fromDir)
	if len(inv.ToolBackups) > 0 {
		a.Backups = append(a.Backups, inv.ToolBackups...)
		sortBackups(a.Backups)
	}
	a.BackupMeta = inv.BackupMeta
	sys, err := inv.FindSystems(ctx)
	if err != nil {
		return nil, err
	}
	a.Systems = sys
	if f, ok := sys.Finding(inv.SegmentSize); ok {
		a.Findings = append(a.Findings, f)
	}
	known := map[uint64]bool{}
	for _, id := range sys.IDs() {
		known[id] = true
	}
	for _, b := range a.Backups {
		if b.Source == backup.SourceArchiveHistory {
			continue
		}
		if b.SegmentSize != 0 && b.SegmentSize != inv.SegmentSize && len(inv.Segments) > 0 {
			a.Findings = append(a.Findings, finding.Finding{Severity: finding.Error, Code: "BACKUP_SEGMENT_SIZE", File: b.Path,
				Message: fmt.Sprintf("backup %s has wal_segment_size %s but the archive's segments are %s", b.ID, b.SegmentSize, inv.SegmentSize),
				Hint:    "this backup belongs to another cluster"})
		}
		if b.SystemID != 0 && len(known) > 0 && !known[b.SystemID] {
			var ids []string
			for _, id := range sys.IDs() {
				ids = append(ids, FormatSystemID(id))
			}
			a.Findings = append(a.Findings, finding.Finding{Severity: finding.Warning, Code: "BACKUP_SYSID_MISMATCH", File: b.Path,
				Message: fmt.Sprintf("backup %s has system identifier %d; the archive's segments have %s", b.ID, b.SystemID, strings.Join(ids, ", ")),
				Hint:    "this backup belongs to another cluster's archive: its WAL is not here"})
		}
	}
	return a, nil
}

// mergeBackups joins a backup's .backup file in the archive with its
// pg_basebackup output: the same backup has the same start and checkpoint
// LSN and timeline. The directory's description wins (it has the data);
// the archive's history file fills in the stop point when the manifest is
// missing.
func mergeBackups(fromArchive, fromDir []*backup.Backup) []*backup.Backup {
	type key struct {
		start, ckpt walname.LSN
		tli         walname.TimelineID
	}
	byKey := map[key]*backup.Backup{}
	var out []*backup.Backup
	for _, b := range fromDir {
		byKey[key{b.StartLSN, b.CheckpointLSN, b.StartTLI}] = b
		out = append(out, b)
	}
	for _, h := range fromArchive {
		if d, ok := byKey[key{h.StartLSN, h.CheckpointLSN, h.StartTLI}]; ok {
			if d.StopLSN == 0 && h.StopLSN != 0 {
				d.StopLSN, d.StopTLI, d.StopSource = h.StopLSN, h.StopTLI, h.StopSource
			}
			if d.StopTime.IsZero() {
				d.StopTime = h.StopTime
			}
			continue
		}
		out = append(out, h)
	}
	sortBackups(out)
	return out
}

func sortBackups(out []*backup.Backup) {
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].StartLSN != out[j].StartLSN {
			return out[i].StartLSN < out[j].StartLSN
		}
		return out[i].ID < out[j].ID
	})
}

// absorbHistories joins the .backup files the tool archived with the
// backups its catalogue describes (same start LSN and timeline, or, when
// the catalogue has no start LSN, the same start segment): the history file
// contributes what the catalogue lacks (CHECKPOINT LOCATION, BACKUP FROM,
// the LABEL text, the start LSN of an old pgBackRest backup). It returns
// the history-file backups that match no catalogued backup.
func absorbHistories(tool []*backup.Backup, meta map[string]*layout.BackupMeta, hists []*backup.Backup, sz walname.SegmentSize) []*backup.Backup {
	if len(tool) == 0 {
		return hists
	}
	var rest []*backup.Backup
	for _, h := range hists {
		var match *backup.Backup
		for _, b := range tool {
			switch {
			case b.StartLSN != 0 && b.StartLSN == h.StartLSN && (b.StartTLI == 0 || b.StartTLI == h.StartTLI):
				match = b
			case b.StartLSN == 0 && meta[b.ID] != nil && meta[b.ID].StartWAL != "" &&
				meta[b.ID].StartWAL == walname.SegmentName(h.StartTLI, h.StartLSN.Segment(sz), sz):
				match = b
			}
			if match != nil {
				break
			}
		}
		if match == nil {
			rest = append(rest, h)
			continue
		}
		if match.StartLSN == 0 {
			match.StartLSN = h.StartLSN
		}
		if match.StartTLI == 0 {
			match.StartTLI = h.StartTLI
		}
		if match.CheckpointLSN == 0 {
			match.CheckpointLSN = h.CheckpointLSN
		}
		if h.StopLSN != 0 {
			// PostgreSQL's own STOP WAL LOCATION: exact, where a tool may
			// record the end of its copy instead (Barman's end_xlog).
			match.StopLSN, match.StopTLI, match.StopSource = h.StopLSN, h.StopTLI, h.StopSource
		}
		if match.StartTime.IsZero() {
			match.StartTime = h.StartTime
		}
		if match.StopTime.IsZero() {
			match.StopTime = h.StopTime
		}
		if match.BackupLabel == nil {
			match.BackupLabel = h.BackupLabel
			match.FromStandby = h.FromStandby
			match.BackupMethod = h.BackupMethod
		}
		if (match.Label == "" || match.Label == match.ID) && h.Label != "" {
			match.Label = h.Label
		}
		if match.SegmentSize == 0 {
			match.SegmentSize = h.SegmentSize
		}
	}
	return rest
}

// scanBackupsDir reads the pg_basebackup outputs at --backups: a
// directory path, a file:// URL, or a URL of a store (s3://bucket/prefix),
// opened with [store.Open] (the URL's query and WALAUDIT_S3_* apply).
func scanBackupsDir(ctx context.Context, opts LoadOptions) ([]*backup.Backup, []finding.Finding, error) {
	loc := opts.BackupsDir
	i := strings.Index(loc, "://")
	if i <= 0 {
		return backup.ScanDir(ctx, loc)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return nil, nil, fmt.Errorf("parse --backups URL %q: %w", loc, err)
	}
	if u.Scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return nil, nil, fmt.Errorf("--backups %s names host %q: use file:///absolute/path", loc, u.Host)
		}
		return backup.ScanDir(ctx, u.Path)
	}
	st, err := store.Open(ctx, loc)
	if err != nil {
		return nil, nil, err
	}
	// Backup.Path and findings name objects by URL, without the query
	// (endpoint and other options).
	where := strings.TrimSuffix(u.Scheme+"://"+u.Host+u.EscapedPath(), "/")
	return backup.ScanFS(ctx, store.FS(ctx, st), ".", where)
}

// readMeta reads a history or backup history file, decompressed, bounded.
func readMeta(ctx context.Context, st store.Store, o *Object) ([]byte, error) {
	rc, err := openDecompressed(ctx, st, o.Key, o.Name.Compression, maxMetaFile+1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetaFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a PostgreSQL metadata file", o.Key, maxMetaFile)
	}
	return b, nil
}
