package backup

import (
	"fmt"

	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/walname"
)

// Sources of [Backup] values.
const (
	// SourceArchiveHistory: a NAME.OFFSET.backup file in the WAL archive
	// ([FromHistoryFile]).
	SourceArchiveHistory = "archive-history"
	// SourceBackupsDir: a pg_basebackup output in a --backups directory
	// ([ScanDir]).
	SourceBackupsDir = "backups-dir"
)

// Format is the pg_basebackup output format of a backup.
type Format string

// Backup formats.
const (
	FormatUnknown Format = ""      // not known (e.g. from a history file)
	FormatPlain   Format = "plain" // a data directory
	FormatTar     Format = "tar"   // base.tar[.gz|.lz4|.zst], pg_wal.tar, <oid>.tar
)

// Stop-point sources, see [Backup.StopSource].
const (
	StopFromManifest    = "manifest"     // WAL-Ranges: End-LSN of the newest range
	StopFromHistoryFile = "history-file" // STOP WAL LOCATION
	StopFromControl     = "pg_control"   // minRecoveryPoint of a standby backup's pg_control
)

// Backup describes one base backup, whatever told us about it: a .backup
// history file in the archive, a pg_basebackup directory, and later the
// metadata of pgBackRest, WAL-G or Barman. Sources fill what they know;
// every other field stays zero, so callers must treat zero as "unknown":
//
//   - from a history file ([FromHistoryFile]): Format, Compression, Path (it
//     is the file name), PGMajor, SystemID, Manifest, Control, TablespaceMap
//     and WALSegments are zero;
//   - from a backups directory ([ScanDir]): StopLSN/StopTLI are zero when
//     the manifest is missing or unusable (a standby backup then falls back
//     to pg_control's minRecoveryPoint); StopTime is always zero (only
//     history files carry it); label-derived fields are zero when
//     backup_label is missing or invalid; SystemID, SegmentSize and Control
//     are zero when pg_control is missing, undecodable or fails its CRC
//     (Control is still set in the CRC case, for inspection).
type Backup struct {
	// Source is where the description came from, e.g. [SourceBackupsDir].
	Source string `json:"source"`
	// ID names the backup within its source: the sub-directory name, or the
	// .backup file name.
	ID string `json:"id"`
	// Path is the backup's directory, or the history file's name.
	Path string `json:"path"`
	// Format and Compression (of base.tar; "" for none) describe the
	// pg_basebackup output.
	Format      Format              `json:"format,omitempty"`
	Compression walname.Compression `json:"compression,omitempty"`

	// Label is the user's LABEL text.
	Label string `json:"label"`
	// StartLSN is START WAL LOCATION: where replay starts.
	StartLSN walname.LSN `json:"start_lsn,omitzero"`
	// CheckpointLSN is CHECKPOINT LOCATION: the first record recovery reads.
	CheckpointLSN walname.LSN `json:"checkpoint_lsn,omitzero"`
	// StartTLI is START TIMELINE.
	StartTLI walname.TimelineID `json:"start_tli,omitzero"`
	// StopLSN and StopTLI: where the backup ended (see StopSource). For a
	// primary backup this is the end of the XLOG_BACKUP_END record; for a
	// standby backup the minRecoveryPoint at backup stop.
	StopLSN walname.LSN        `json:"stop_lsn,omitzero"`
	StopTLI walname.TimelineID `json:"stop_tli,omitzero"`
	// StopSource tells where StopLSN came from ([StopFromManifest],
	// [StopFromHistoryFile], [StopFromControl]); "" when unknown.
	StopSource string `json:"stop_source,omitempty"`
	// FromStandby: BACKUP FROM: standby.
	FromStandby bool `json:"from_standby"`
	// BackupMethod is BACKUP METHOD ("streamed" or "pg_start_backup").
	BackupMethod string `json:"backup_method,omitempty"`
	// StartTime and StopTime come from the label or history file.
	StartTime Timestamp `json:"start_time,omitzero"`
	StopTime  Timestamp `json:"stop_time,omitzero"`

	// PGMajor is the PostgreSQL major version from PG_VERSION (0 unknown).
	PGMajor int `json:"pg_major,omitzero"`
	// SystemID is pg_control's system identifier (0 unknown).
	SystemID uint64 `json:"system_id,omitzero"`
	// SegmentSize is pg_control's xlog_seg_size (0 unknown).
	SegmentSize walname.SegmentSize `json:"segment_size,omitzero"`

	// Incremental marks a PostgreSQL 17+ incremental backup, which is never
	// restorable alone (pg_combinebackup must merge it first).
	Incremental        bool               `json:"incremental"`
	IncrementalFromLSN walname.LSN        `json:"incremental_from_lsn,omitzero"`
	IncrementalFromTLI walname.TimelineID `json:"incremental_from_tli,omitzero"`

	// Manifest is the parsed backup_manifest (nil if missing or
	// unparsable); ManifestVerified reports whether its checksum matched.
	Manifest         *Manifest `json:"-"`
	ManifestVerified bool      `json:"manifest_verified"`
	// TablespaceMap lists the user tablespaces (tablespace_map, or the
	// pg_tblspc links of a plain backup).
	TablespaceMap []TablespaceEntry `json:"tablespaces,omitempty"`
	// WALSegments are the WAL segment names carried in the backup's pg_wal
	// (plain pg_wal/, pg_wal.tar, or pg_wal/ inside base.tar), sorted. They
	// count as present for this backup. WALHistoryFiles likewise lists
	// carried TTTTTTTT.history files.
	WALSegments     []string `json:"wal_segments,omitempty"`
	WALHistoryFiles []string `json:"wal_history_files,omitempty"`
	// Control is the decoded global/pg_control.
	Control *Control `json:"control,omitempty"`
	// BackupLabel is the parsed backup_label or history file.
	BackupLabel *Label `json:"-"`

	// Findings are the findings about this backup (also returned by
	// [ScanDir] in its flat list).
	Findings []finding.Finding `json:"findings,omitempty"`
}

// Usable reports whether nothing known rules the backup out as a
// restore base: its start is known, it is not incremental and no finding
// about it has error severity. It does not look at WAL availability.
func (b *Backup) Usable() bool {
	if b.StartLSN == 0 || b.Incremental {
		return false
	}
	return finding.Count(b.Findings, finding.Error) == 0
}

// ConsistencyLSN returns the LSN recovery must replay past before the
// restored cluster is consistent (§5.4 of FORMATS.md): for a primary backup
// the stop LSN; for a standby backup the minRecoveryPoint of the backup's
// own pg_control (what recovery uses as backupEndPoint) when known, else the
// stop LSN. In both cases a later pg_control minRecoveryPoint wins. ok is
// false when nothing is known.
func (b *Backup) ConsistencyLSN() (lsn walname.LSN, ok bool) {
	lsn = b.StopLSN
	if b.Control != nil && b.Control.CRCValid {
		mrp := b.Control.MinRecoveryPoint
		if b.FromStandby && mrp != 0 {
			lsn = mrp
		} else if mrp > lsn {
			lsn = mrp
		}
	}
	return lsn, lsn != 0
}

// FromHistoryFile describes the backup a parsed .backup history file
// records. name is the file's name, which becomes ID and Path; sz is the
// archive's segment size. Nothing is validated here; see
// [CheckHistoryFile].
func FromHistoryFile(name string, hf *HistoryFile, sz walname.SegmentSize) *Backup {
	b := &Backup{
		Source:             SourceArchiveHistory,
		ID:                 name,
		Path:               name,
		Label:              hf.Label,
		StartLSN:           hf.StartLSN,
		CheckpointLSN:      hf.CheckpointLSN,
		StartTLI:           hf.StartTLI,
		StopLSN:            hf.StopLSN,
		StopTLI:            hf.StopTLI,
		FromStandby:        hf.FromStandby(),
		BackupMethod:       hf.BackupMethod,
		StartTime:          hf.StartTime,
		StopTime:           hf.StopTime,
		SegmentSize:        sz,
		Incremental:        hf.Incremental(),
		IncrementalFromLSN: hf.IncrementalFromLSN,
		IncrementalFromTLI: hf.IncrementalFromTLI,
		BackupLabel:        hf,
	}
	if hf.StopLSN != 0 {
		b.StopSource = StopFromHistoryFile
	}
	return b
}

// CheckHistoryFile cross-checks a parsed history file against its name
// (which PostgreSQL builds from STOP TIMELINE and START WAL LOCATION) and
// against segment size sz, and reports an incremental backup. name is the
// base name as found in the archive, possibly with a compression suffix.
func CheckHistoryFile(name string, hf *HistoryFile, sz walname.SegmentSize) []finding.Finding {
	var out []finding.Finding
	if err := sz.Validate(); err != nil {
		return []finding.Finding{{Severity: finding.Error, Code: CodeInconsistent, File: name,
			Message: fmt.Sprintf("cannot check backup history file: %v", err)}}
	}
	want := walname.BackupHistoryName(hf.StopTLI, hf.StartLSN, sz)
	n, err := walname.Parse(name)
	if err != nil || n.Kind != walname.KindBackupHistory || n.Base() != want {
		out = append(out, finding.Finding{Severity: finding.Warning, Code: CodeHistoryNameMismatch, File: name,
			LSN: hf.StartLSN, Timeline: hf.StopTLI,
			Message: fmt.Sprintf("backup history file should be named %s for START WAL LOCATION %s and STOP TIMELINE %d", want, hf.StartLSN, hf.StopTLI),
			Hint:    "the file was renamed or edited; trust its content only after checking the WAL"})
	}
	if err := hf.CheckFileNames(sz); err != nil {
		out = append(out, finding.Finding{Severity: finding.Error, Code: CodeInconsistent, File: name,
			LSN: hf.StartLSN, Message: err.Error()})
	}
	if hf.Incremental() {
		out = append(out, incrementalFinding(name, hf))
	}
	return out
}

func incrementalFinding(file string, l *Label) finding.Finding {
	return finding.Finding{Severity: finding.Info, Code: CodeIncremental, File: file, LSN: l.StartLSN, Timeline: l.StartTLI,
		Message: fmt.Sprintf("incremental backup (INCREMENTAL FROM LSN %s, TLI %d) cannot be restored alone", l.IncrementalFromLSN, l.IncrementalFromTLI),
		Hint:    "combine it with its full backup and every earlier incremental using pg_combinebackup"}
}
