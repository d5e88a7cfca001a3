package backup

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/walaudit/walaudit/walname"
)

// pg_control format constants (wire format, do not change).
const (
	// ControlFileSize is PG_CONTROL_FILE_SIZE: pg_control is zero-padded to
	// this size on disk.
	ControlFileSize = 8192
	// floatFormatValue is FLOATFORMAT_VALUE, stored to detect a foreign
	// floating-point format.
	floatFormatValue = 1234567.0
	mockAuthNonceLen = 32
)

// pg_control_version values this package decodes.
const (
	ControlVersion13 uint32 = 1300 // PostgreSQL 13, 14, 15 and 16
	ControlVersion17 uint32 = 1700 // PostgreSQL 17: CheckPoint gains wal_level
	ControlVersion18 uint32 = 1800 // PostgreSQL 18: default_char_signedness
)

// controlLayout holds the offsets that differ between pg_control versions
// (x86-64/arm64: 8-byte alignment of int64 and double). Every other field
// sits at the same offset in 13 to 18; see the package documentation.
type controlLayout struct {
	checkpointWALLevel int // offset of CheckPoint.wal_level, -1 if absent
	charSignedness     int // offset of default_char_signedness, -1 if absent
	nonce              int // offset of mock_authentication_nonce
	crc                int // offset of crc = number of bytes it covers
}

var controlLayouts = map[uint32]controlLayout{
	ControlVersion13: {checkpointWALLevel: -1, charSignedness: -1, nonce: 256, crc: 288},
	ControlVersion17: {checkpointWALLevel: 60, charSignedness: -1, nonce: 256, crc: 288},
	ControlVersion18: {checkpointWALLevel: 60, charSignedness: 256, nonce: 257, crc: 292},
}

// DBState is ControlFileData.state (DBState, pg_control.h).
type DBState uint32

// Database cluster states.
const (
	DBStartup              DBState = 0
	DBShutdowned           DBState = 1
	DBShutdownedInRecovery DBState = 2
	DBShutdowning          DBState = 3
	DBInCrashRecovery      DBState = 4
	DBInArchiveRecovery    DBState = 5
	DBInProduction         DBState = 6
)

var dbStateNames = [...]string{"starting up", "shut down", "shut down in recovery", "shutting down",
	"in crash recovery", "in archive recovery", "in production"}

// String returns pg_controldata's wording, e.g. "in production".
func (s DBState) String() string {
	if int(s) < len(dbStateNames) {
		return dbStateNames[s]
	}
	return fmt.Sprintf("unrecognized status code %d", uint32(s))
}

// MarshalText makes JSON carry the name.
func (s DBState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// WALLevel is a wal_level setting (WalLevel, src/include/access/xlog.h).
type WALLevel int32

// wal_level values.
const (
	WALLevelMinimal WALLevel = 0
	WALLevelReplica WALLevel = 1
	WALLevelLogical WALLevel = 2
)

// String returns the setting's name, e.g. "replica".
func (w WALLevel) String() string {
	switch w {
	case WALLevelMinimal:
		return "minimal"
	case WALLevelReplica:
		return "replica"
	case WALLevelLogical:
		return "logical"
	}
	return fmt.Sprintf("unrecognized wal_level %d", int32(w))
}

// MarshalText makes JSON carry the name.
func (w WALLevel) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// CheckPoint mirrors struct CheckPoint (src/include/catalog/pg_control.h),
// the copy of the last checkpoint record kept in pg_control.
type CheckPoint struct {
	Redo           walname.LSN        `json:"redo"`
	ThisTimeLineID walname.TimelineID `json:"this_timeline_id"`
	PrevTimeLineID walname.TimelineID `json:"prev_timeline_id"`
	FullPageWrites bool               `json:"full_page_writes"`
	// WALLevel exists from PostgreSQL 17 (HasWALLevel).
	WALLevel    WALLevel `json:"wal_level"`
	HasWALLevel bool     `json:"has_wal_level"`
	// NextXID is the FullTransactionId: epoch in the high 32 bits.
	NextXID           uint64    `json:"next_xid"`
	NextOID           uint32    `json:"next_oid"`
	NextMulti         uint32    `json:"next_multi"`
	NextMultiOffset   uint32    `json:"next_multi_offset"`
	OldestXID         uint32    `json:"oldest_xid"`
	OldestXIDDB       uint32    `json:"oldest_xid_db"`
	OldestMulti       uint32    `json:"oldest_multi"`
	OldestMultiDB     uint32    `json:"oldest_multi_db"`
	Time              time.Time `json:"time"`
	OldestCommitTsXID uint32    `json:"oldest_commit_ts_xid"`
	NewestCommitTsXID uint32    `json:"newest_commit_ts_xid"`
	OldestActiveXID   uint32    `json:"oldest_active_xid"`
}

// Control mirrors ControlFileData (src/include/catalog/pg_control.h) for
// pg_control_version 1300 (PostgreSQL 13-16), 1700 (17) and 1800 (18), as
// written by a 64-bit little-endian server.
type Control struct {
	SystemIdentifier uint64  `json:"system_identifier"`
	PGControlVersion uint32  `json:"pg_control_version"`
	CatalogVersionNo uint32  `json:"catalog_version_no"`
	State            DBState `json:"state"`
	// Time is when pg_control was last updated.
	Time time.Time `json:"time"`
	// CheckPoint is the location of the last checkpoint record.
	CheckPoint     walname.LSN `json:"checkpoint"`
	CheckPointCopy CheckPoint  `json:"checkpoint_copy"`
	UnloggedLSN    walname.LSN `json:"unlogged_lsn"`
	// MinRecoveryPoint and MinRecoveryPointTLI: recovery must replay to
	// here before the cluster is consistent. In a backup taken from a
	// standby this is where the backup ends.
	MinRecoveryPoint     walname.LSN        `json:"min_recovery_point"`
	MinRecoveryPointTLI  walname.TimelineID `json:"min_recovery_point_tli"`
	BackupStartPoint     walname.LSN        `json:"backup_start_point"`
	BackupEndPoint       walname.LSN        `json:"backup_end_point"`
	BackupEndRequired    bool               `json:"backup_end_required"`
	WALLevel             WALLevel           `json:"wal_level"`
	WALLogHints          bool               `json:"wal_log_hints"`
	MaxConnections       int32              `json:"max_connections"`
	MaxWorkerProcesses   int32              `json:"max_worker_processes"`
	MaxWALSenders        int32              `json:"max_wal_senders"`
	MaxPreparedXacts     int32              `json:"max_prepared_xacts"`
	MaxLocksPerXact      int32              `json:"max_locks_per_xact"`
	TrackCommitTimestamp bool               `json:"track_commit_timestamp"`
	MaxAlign             uint32             `json:"max_align"`
	FloatFormat          float64            `json:"float_format"`
	BlockSize            uint32             `json:"blcksz"`
	RelSegSize           uint32             `json:"relseg_size"`
	XLogBlockSize        uint32             `json:"xlog_blcksz"`
	// XLogSegSize is wal_segment_size; not validated here (see
	// [walname.SegmentSize.Validate]).
	XLogSegSize         walname.SegmentSize `json:"xlog_seg_size"`
	NameDataLen         uint32              `json:"name_data_len"`
	IndexMaxKeys        uint32              `json:"index_max_keys"`
	ToastMaxChunkSize   uint32              `json:"toast_max_chunk_size"`
	LOBlockSize         uint32              `json:"loblksize"`
	Float8ByVal         bool                `json:"float8_by_val"`
	DataChecksumVersion uint32              `json:"data_checksum_version"`
	// DefaultCharSignedness exists from PostgreSQL 18 (HasDefaultCharSignedness).
	DefaultCharSignedness    bool                   `json:"default_char_signedness"`
	HasDefaultCharSignedness bool                   `json:"has_default_char_signedness"`
	MockAuthNonce            [mockAuthNonceLen]byte `json:"-"`
	// CRC is the stored CRC-32C; CRCValid reports whether it matched.
	CRC      uint32 `json:"crc"`
	CRCValid bool   `json:"crc_valid"`
}

// MajorVersions returns the PostgreSQL major versions that write this
// pg_control_version (nil if unknown).
func (c *Control) MajorVersions() []int { return ControlVersionMajors(c.PGControlVersion) }

// ControlVersionMajors returns the PostgreSQL major versions that write
// pg_control_version v (nil if unknown to this package).
func ControlVersionMajors(v uint32) []int {
	switch v {
	case ControlVersion13:
		return []int{13, 14, 15, 16}
	case ControlVersion17:
		return []int{17}
	case ControlVersion18:
		return []int{18}
	}
	return nil
}

// ParseControl decodes global/pg_control. data must hold at least
// ControlFileData (the file on disk is [ControlFileSize] bytes, zero
// padded). A short file wraps [ErrControlTruncated], an unknown version or
// byte order [ErrControlVersion], both together with [ErrInvalidControl]. A
// CRC mismatch returns the decoded values (CRCValid false) and an error
// wrapping [ErrControlCRC]. A wrong floatFormat or maxAlign with a valid CRC
// means a layout this package does not decode and wraps [ErrInvalidControl].
func ParseControl(data []byte) (*Control, error) {
	le := binary.LittleEndian
	if len(data) < 16 {
		return nil, fmt.Errorf("%w: %w: %d bytes, too short for pg_control_version", ErrInvalidControl, ErrControlTruncated, len(data))
	}
	version := le.Uint32(data[8:])
	lay, ok := controlLayouts[version]
	if !ok {
		be := binary.BigEndian.Uint32(data[8:])
		if _, known := controlLayouts[be]; known {
			return nil, fmt.Errorf("%w: %w: pg_control_version %d is stored big-endian, which this package does not decode", ErrInvalidControl, ErrControlVersion, be)
		}
		return nil, fmt.Errorf("%w: %w: pg_control_version %d (known: 1300 for 13-16, 1700 for 17, 1800 for 18)", ErrInvalidControl, ErrControlVersion, version)
	}
	need := lay.crc + 4
	if len(data) < need {
		return nil, fmt.Errorf("%w: %w: %d bytes, pg_control_version %d needs %d", ErrInvalidControl, ErrControlTruncated, len(data), version, need)
	}
	u32 := func(off int) uint32 { return le.Uint32(data[off:]) }
	i32 := func(off int) int32 { return int32(le.Uint32(data[off:])) }
	u64 := func(off int) uint64 { return le.Uint64(data[off:]) }
	lsn := func(off int) walname.LSN { return walname.LSN(le.Uint64(data[off:])) }
	tli := func(off int) walname.TimelineID { return walname.TimelineID(le.Uint32(data[off:])) }
	boolean := func(off int) bool { return data[off] != 0 }
	unix := func(off int) time.Time { return time.Unix(int64(le.Uint64(data[off:])), 0).UTC() }

	c := &Control{
		SystemIdentifier: u64(0),
		PGControlVersion: version,
		CatalogVersionNo: u32(12),
		State:            DBState(u32(16)),
		Time:             unix(24),
		CheckPoint:       lsn(32),
		CheckPointCopy: CheckPoint{
			Redo:              lsn(40),
			ThisTimeLineID:    tli(48),
			PrevTimeLineID:    tli(52),
			FullPageWrites:    boolean(56),
			NextXID:           u64(64),
			NextOID:           u32(72),
			NextMulti:         u32(76),
			NextMultiOffset:   u32(80),
			OldestXID:         u32(84),
			OldestXIDDB:       u32(88),
			OldestMulti:       u32(92),
			OldestMultiDB:     u32(96),
			Time:              unix(104),
			OldestCommitTsXID: u32(112),
			NewestCommitTsXID: u32(116),
			OldestActiveXID:   u32(120),
		},
		UnloggedLSN:          lsn(128),
		MinRecoveryPoint:     lsn(136),
		MinRecoveryPointTLI:  tli(144),
		BackupStartPoint:     lsn(152),
		BackupEndPoint:       lsn(160),
		BackupEndRequired:    boolean(168),
		WALLevel:             WALLevel(i32(172)),
		WALLogHints:          boolean(176),
		MaxConnections:       i32(180),
		MaxWorkerProcesses:   i32(184),
		MaxWALSenders:        i32(188),
		MaxPreparedXacts:     i32(192),
		MaxLocksPerXact:      i32(196),
		TrackCommitTimestamp: boolean(200),
		MaxAlign:             u32(204),
		FloatFormat:          math.Float64frombits(u64(208)),
		BlockSize:            u32(216),
		RelSegSize:           u32(220),
		XLogBlockSize:        u32(224),
		XLogSegSize:          walname.SegmentSize(u32(228)),
		NameDataLen:          u32(232),
		IndexMaxKeys:         u32(236),
		ToastMaxChunkSize:    u32(240),
		LOBlockSize:          u32(244),
		Float8ByVal:          boolean(248),
		DataChecksumVersion:  u32(252),
		CRC:                  u32(lay.crc),
	}
	if lay.checkpointWALLevel >= 0 {
		c.CheckPointCopy.WALLevel = WALLevel(i32(lay.checkpointWALLevel))
		c.CheckPointCopy.HasWALLevel = true
	}
	if lay.charSignedness >= 0 {
		c.DefaultCharSignedness = boolean(lay.charSignedness)
		c.HasDefaultCharSignedness = true
	}
	copy(c.MockAuthNonce[:], data[lay.nonce:lay.nonce+mockAuthNonceLen])

	got := crc32.Checksum(data[:lay.crc], castagnoli)
	if got != c.CRC {
		return c, fmt.Errorf("%w: computed %08X over %d bytes, stored %08X", ErrControlCRC, got, lay.crc, c.CRC)
	}
	c.CRCValid = true
	if c.FloatFormat != floatFormatValue || c.MaxAlign != 8 {
		return nil, fmt.Errorf("%w: floatFormat %g and maxAlign %d (want %g and 8): not a 64-bit little-endian layout",
			ErrInvalidControl, c.FloatFormat, c.MaxAlign, floatFormatValue)
	}
	return c, nil
}
