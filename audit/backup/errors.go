package backup

import "errors"

// Sentinel errors. Parsers wrap them with context (line number, field, got
// and want values); test for them with errors.Is.
var (
	// ErrInvalidLabel is returned by [ParseLabel] and [ParseHistoryFile]
	// for text that is not a well-formed backup_label or history file.
	ErrInvalidLabel = errors.New("backup: invalid backup label")

	// ErrInvalidTablespaceMap is returned by [ParseTablespaceMap].
	ErrInvalidTablespaceMap = errors.New("backup: invalid tablespace_map")

	// ErrInvalidManifest is returned by [ParseManifest] for a manifest
	// pg_verifybackup would refuse to parse.
	ErrInvalidManifest = errors.New("backup: invalid backup manifest")

	// ErrManifestVersion is returned (together with [ErrInvalidManifest])
	// for a manifest version other than 1 or 2.
	ErrManifestVersion = errors.New("backup: unsupported backup manifest version")

	// ErrManifestChecksum is returned by [ParseManifest] when the
	// Manifest-Checksum does not match the manifest's content. The parsed
	// manifest is returned with it.
	ErrManifestChecksum = errors.New("backup: backup manifest checksum mismatch")

	// ErrSizeMismatch is returned by [VerifyFile] when a file's size differs
	// from the manifest's.
	ErrSizeMismatch = errors.New("backup: file size differs from manifest")

	// ErrChecksumMismatch is returned by [VerifyFile] when a file's checksum
	// differs from the manifest's.
	ErrChecksumMismatch = errors.New("backup: file checksum differs from manifest")

	// ErrInvalidControl is returned by [ParseControl] for bytes that are
	// not a pg_control file this package can decode.
	ErrInvalidControl = errors.New("backup: invalid pg_control")

	// ErrControlTruncated is returned (together with [ErrInvalidControl])
	// when pg_control is shorter than ControlFileData.
	ErrControlTruncated = errors.New("backup: pg_control truncated")

	// ErrControlVersion is returned (together with [ErrInvalidControl]) for
	// a pg_control_version other than 1300, 1700 or 1800.
	ErrControlVersion = errors.New("backup: unsupported pg_control version")

	// ErrWALNotInBackup is returned by [OpenWAL] when the backup does not
	// carry the requested WAL file.
	ErrWALNotInBackup = errors.New("backup: WAL file not carried in the backup")

	// ErrControlCRC is returned by [ParseControl] when the stored CRC does
	// not match the content. The decoded control data is returned with it.
	ErrControlCRC = errors.New("backup: pg_control CRC mismatch")
)
