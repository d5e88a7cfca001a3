package backup

// Finding codes this package reports. They are stable: scripts filter on
// them, so they are never renamed.
const (
	// CodeNotABackup (info): an entry of the backups directory that is not
	// a base backup.
	CodeNotABackup = "BACKUP_NOT_A_BACKUP"
	// CodeUnknownFormat (error): a directory that looks like a backup but
	// is neither a plain nor a tar backup this package reads (for example
	// both backup_label and base.tar, or an unknown compression).
	CodeUnknownFormat = "BACKUP_UNKNOWN_FORMAT"
	// CodeUnreadable (error): a file of the backup could not be read.
	CodeUnreadable = "BACKUP_UNREADABLE"
	// CodeArchiveCorrupt (error): a tar file or its compression stream is
	// damaged or truncated.
	CodeArchiveCorrupt = "BACKUP_ARCHIVE_CORRUPT"
	// CodeLabelMissing (error): no backup_label; starting such a copy
	// would run crash recovery from pg_control and silently corrupt data.
	CodeLabelMissing = "BACKUP_LABEL_MISSING"
	// CodeLabelInvalid (error): backup_label could not be parsed.
	CodeLabelInvalid = "BACKUP_LABEL_INVALID"
	// CodeTablespaceMapInvalid (error): tablespace_map could not be parsed.
	CodeTablespaceMapInvalid = "BACKUP_TABLESPACE_MAP_INVALID"
	// CodeTablespaceMissing (error): a tablespace of the backup has no
	// <oid>.tar (tar format) or no pg_tblspc/<oid> target (plain format).
	CodeTablespaceMissing = "BACKUP_TABLESPACE_MISSING"
	// CodeManifestMissing (warning): no backup_manifest, so the backup
	// cannot be verified and its stop LSN is unknown.
	CodeManifestMissing = "BACKUP_MANIFEST_MISSING"
	// CodeManifestInvalid (error): backup_manifest could not be parsed.
	CodeManifestInvalid = "BACKUP_MANIFEST_INVALID"
	// CodeManifestChecksum (error): Manifest-Checksum does not match.
	CodeManifestChecksum = "BACKUP_MANIFEST_CHECKSUM"
	// CodeFileMismatch (error, warning when the file is merely not listed):
	// a file read from the backup differs from its manifest entry.
	CodeFileMismatch = "BACKUP_FILE_MISMATCH"
	// CodeIncomplete (error): files the backup needs are missing or have
	// the wrong size (manifest entries, PG_VERSION, global/pg_control,
	// base.tar).
	CodeIncomplete = "BACKUP_INCOMPLETE"
	// CodePGVersionInvalid (error): PG_VERSION is not a supported major
	// version.
	CodePGVersionInvalid = "BACKUP_PG_VERSION_INVALID"
	// CodeControlInvalid (error): global/pg_control cannot be decoded or
	// holds impossible values.
	CodeControlInvalid = "PG_CONTROL_INVALID"
	// CodeControlCRC (error): global/pg_control fails its CRC check.
	CodeControlCRC = "PG_CONTROL_CRC"
	// CodeSysIDMismatch (error): the manifest's System-Identifier differs
	// from pg_control's.
	CodeSysIDMismatch = "BACKUP_SYSID_MISMATCH"
	// CodeInconsistent (error): backup_label, manifest, pg_control and
	// PG_VERSION disagree with each other.
	CodeInconsistent = "BACKUP_INCONSISTENT"
	// CodeIncremental (info): a PostgreSQL 17+ incremental backup, which
	// must be combined with pg_combinebackup before it can be restored.
	CodeIncremental = "BACKUP_INCREMENTAL"
	// CodeWALIncomplete (warning): the backup carries WAL in pg_wal, but not
	// all of the WAL needed to make it consistent, or segments of the wrong
	// size; the rest must come from the archive.
	CodeWALIncomplete = "BACKUP_WAL_INCOMPLETE"
	// CodeHistoryNameMismatch (warning): a .backup file's name does not
	// match its START WAL LOCATION and STOP TIMELINE.
	CodeHistoryNameMismatch = "BACKUP_HISTORY_NAME_MISMATCH"
)
