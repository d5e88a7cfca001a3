package audit

import (
	"context"
	"fmt"
	"io"
	"path"
	"sort"

	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/finding"
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
	Findings  []finding.Finding
}

// LoadOptions tune [Load].
type LoadOptions struct {
	ScanOptions
	// BackupsDir is a directory of pg_basebackup outputs (--backups).
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
		b, err := readSmall(ctx, st, o.Key)
		if err != nil {
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
		if o.Name.Compression != walname.CompressNone {
			a.Findings = append(a.Findings, finding.Finding{Severity: finding.Warning, Code: "BACKUP_HISTORY_UNREADABLE", File: o.Key,
				Message: "compressed backup history file not read (compressed metadata comes with the backup-tool layouts)"})
			continue
		}
		data, err := readSmall(ctx, st, o.Key)
		if err != nil {
			return nil, fmt.Errorf("read backup history file %s: %w", o.Key, err)
		}
		hf, err := backup.ParseHistoryFile(data)
		if err != nil {
			a.Findings = append(a.Findings, finding.Finding{Severity: finding.Error, Code: "BACKUP_LABEL_INVALID", File: o.Key,
				Message: fmt.Sprintf("unreadable backup history file: %v", err), Hint: "this backup cannot be located in the WAL; check the file by hand"})
			continue
		}
		name := path.Base(o.Key)
		a.Findings = append(a.Findings, backup.CheckHistoryFile(name, hf, inv.SegmentSize)...)
		fromArchive = append(fromArchive, backup.FromHistoryFile(name, hf, inv.SegmentSize))
	}

	var fromDir []*backup.Backup
	if opts.BackupsDir != "" {
		bs, fs, err := backup.ScanDir(ctx, opts.BackupsDir)
		if err != nil {
			return nil, fmt.Errorf("read backups directory %s: %w", opts.BackupsDir, err)
		}
		fromDir = bs
		a.Findings = append(a.Findings, fs...)
	}
	a.Backups = mergeBackups(fromArchive, fromDir)
	for _, b := range a.Backups {
		if b.Source == backup.SourceArchiveHistory {
			continue
		}
		if b.SegmentSize != 0 && b.SegmentSize != inv.SegmentSize && len(inv.Segments) > 0 {
			a.Findings = append(a.Findings, finding.Finding{Severity: finding.Error, Code: "BACKUP_SEGMENT_SIZE", File: b.Path,
				Message: fmt.Sprintf("backup %s has wal_segment_size %s but the archive's segments are %s", b.ID, b.SegmentSize, inv.SegmentSize),
				Hint:    "this backup belongs to another cluster"})
		}
		if b.SystemID != 0 && inv.SystemID != 0 && b.SystemID != inv.SystemID {
			a.Findings = append(a.Findings, finding.Finding{Severity: finding.Warning, Code: "BACKUP_SYSID_MISMATCH", File: b.Path,
				Message: fmt.Sprintf("backup %s has system identifier %d; the archive's first segment has %d", b.ID, b.SystemID, inv.SystemID),
				Hint:    "the archive may hold several clusters (pg_upgrade) or the backup belongs elsewhere"})
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
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].StartLSN != out[j].StartLSN {
			return out[i].StartLSN < out[j].StartLSN
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func readSmall(ctx context.Context, st store.Store, key string) ([]byte, error) {
	rc, err := st.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxMetaFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetaFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a PostgreSQL metadata file", key, maxMetaFile)
	}
	return b, nil
}
