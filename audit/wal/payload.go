package wal

import (
	"bytes"
	"encoding/binary"
	"math"
	"time"

	"github.com/walaudit/walaudit/walname"
)

// RM_XLOG opcodes, xl_info & 0xF0 (src/include/catalog/pg_control.h).
// Wire format: do not change.
const (
	XLOGCheckpointShutdown  = 0x00
	XLOGCheckpointOnline    = 0x10
	XLOGNoop                = 0x20
	XLOGNextOID             = 0x30
	XLOGSwitch              = 0x40
	XLOGBackupEnd           = 0x50
	XLOGParameterChange     = 0x60
	XLOGRestorePoint        = 0x70
	XLOGFPWChange           = 0x80
	XLOGEndOfRecovery       = 0x90
	XLOGFPIForHint          = 0xA0
	XLOGFPI                 = 0xB0
	XLOGOverwriteContrecord = 0xD0 // 14+ and back-branch minors
	XLOGCheckpointRedo      = 0xE0 // 17+
)

// RM_XACT opcodes, xl_info & XactOpMask (src/include/access/xact.h).
// Wire format: do not change.
const (
	XactOpCommit         = 0x00
	XactOpPrepare        = 0x10
	XactOpAbort          = 0x20
	XactOpCommitPrepared = 0x30
	XactOpAbortPrepared  = 0x40
	XactOpAssignment     = 0x50
	XactOpInvalidations  = 0x60 // 14+

	XactOpMask  = 0x70
	XactHasInfo = 0x80 // an xinfo word follows xact_time
)

// xinfo bits of commit and abort records (XACT_XINFO_*), in the bit order
// of xact.h; the parts they announce follow in a different, fixed order.
const (
	XactXinfoHasDBInfo       = 1 << 0
	XactXinfoHasSubxacts     = 1 << 1
	XactXinfoHasRelFiles     = 1 << 2 // HAS_RELFILENODES, HAS_RELFILELOCATORS in 16+
	XactXinfoHasInvals       = 1 << 3
	XactXinfoHasTwoPhase     = 1 << 4
	XactXinfoHasOrigin       = 1 << 5
	XactXinfoHasAELocks      = 1 << 6
	XactXinfoHasGID          = 1 << 7
	XactXinfoHasDroppedStats = 1 << 8 // 15+
)

const (
	// pgEpochUnixMicros is 2000-01-01 00:00:00 UTC in Unix microseconds:
	// TimestampTz counts from there.
	pgEpochUnixMicros = 946684800 * 1000000
	// twoPhaseMagic is TWOPHASE_MAGIC, the first word of a PREPARE record.
	twoPhaseMagic = 0x57F94534
	// sizeofSharedInvalMessage is sizeof(SharedInvalidationMessage).
	sizeofSharedInvalMessage = 16
	// sizeofRelFileLocator is sizeof(RelFileLocator) / RelFileNode.
	sizeofRelFileLocator = 12
)

// TimestampTzToTime converts a PostgreSQL TimestampTz (microseconds since
// 2000-01-01 00:00:00 UTC) to a UTC time. The infinities (DT_NOBEGIN,
// DT_NOEND) saturate.
func TimestampTzToTime(us int64) time.Time {
	switch {
	case us > math.MaxInt64-pgEpochUnixMicros:
		us = math.MaxInt64 - pgEpochUnixMicros
	case us < math.MinInt64+pgEpochUnixMicros:
		us = math.MinInt64 + pgEpochUnixMicros
	}
	return time.UnixMicro(us + pgEpochUnixMicros).UTC()
}

// reader of main data: a sticky bounds check so that a struct of many
// fields needs one error test (tsdb encoding.Decbuf).
type decbuf struct {
	b   []byte
	off int
	bad bool
}

func (d *decbuf) need(n int) bool {
	if d.bad || n < 0 || n > len(d.b)-d.off {
		d.bad = true
		return false
	}
	return true
}

func (d *decbuf) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *decbuf) i32() int32 { return int32(d.u32()) }

func (d *decbuf) u64() uint64 {
	if !d.need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

func (d *decbuf) u8() uint8 {
	if !d.need(1) {
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decbuf) skip(n int) {
	if d.need(n) {
		d.off += n
	}
}

func (d *decbuf) bytes(n int) []byte {
	if !d.need(n) {
		return nil
	}
	v := d.b[d.off : d.off+n]
	d.off += n
	return v
}

// count reads an int32 element count and checks that n elements of size
// bytes fit in what is left.
func (d *decbuf) count(size int) int {
	n := d.i32()
	if d.bad {
		return 0
	}
	if n < 0 || int64(n)*int64(size) > int64(len(d.b)-d.off) {
		d.bad = true
		return 0
	}
	return int(n)
}

func (d *decbuf) left() int { return len(d.b) - d.off }

// CheckPoint mirrors struct CheckPoint (src/include/catalog/pg_control.h),
// the 88 bytes of main data of XLOG_CHECKPOINT_SHUTDOWN/ONLINE in 13 to 18.
type CheckPoint struct {
	Redo           walname.LSN        // where replay of this checkpoint starts
	ThisTLI        walname.TimelineID // timeline of the checkpoint
	PrevTLI        walname.TimelineID // differs from ThisTLI only in a new timeline's first checkpoint
	FullPageWrites bool               // full_page_writes
	WalLevel       int32              // 17+; -1 before
	NextXID        uint64             // FullTransactionId: epoch<<32 | xid
	NextOID        uint32             // next free OID
	NextMulti      uint32             // next free MultiXactId
	NextMultiOff   uint32             // next free MultiXact offset
	OldestXID      uint32             // cluster-wide minimum datfrozenxid
	OldestXIDDB    uint32             // database holding OldestXID
	OldestMulti    uint32             // cluster-wide minimum datminmxid
	OldestMultiDB  uint32             // database holding OldestMulti
	Time           time.Time          // pg_time_t: Unix seconds, not TimestampTz
	OldestCommitTs uint32             // oldest xid with a commit timestamp
	NewestCommitTs uint32             // newest xid with a commit timestamp
	OldestActive   uint32             // oldest running xid (online checkpoints)
}

const sizeofCheckPoint = 88

// DecodeCheckPoint decodes the main data of a checkpoint record.
func DecodeCheckPoint(data []byte, major int) (CheckPoint, error) {
	lay, err := layoutFor(major)
	if err != nil {
		return CheckPoint{}, err
	}
	return decodeCheckPoint(data, lay)
}

func decodeCheckPoint(data []byte, lay *layout) (CheckPoint, error) {
	if len(data) != sizeofCheckPoint {
		return CheckPoint{}, errorf(ErrPayload, "checkpoint record has %d bytes of data, want %d", len(data), sizeofCheckPoint)
	}
	d := decbuf{b: data}
	var c CheckPoint
	c.Redo = walname.LSN(d.u64())
	c.ThisTLI = walname.TimelineID(d.u32())
	c.PrevTLI = walname.TimelineID(d.u32())
	c.FullPageWrites = d.u8() != 0
	d.skip(3)
	c.WalLevel = -1
	if lay.walLevelInCheckpoint() {
		c.WalLevel = d.i32()
	} else {
		d.skip(4)
	}
	c.NextXID = d.u64()
	c.NextOID = d.u32()
	c.NextMulti = d.u32()
	c.NextMultiOff = d.u32()
	c.OldestXID = d.u32()
	c.OldestXIDDB = d.u32()
	c.OldestMulti = d.u32()
	c.OldestMultiDB = d.u32()
	d.skip(4)
	c.Time = time.Unix(int64(d.u64()), 0).UTC()
	c.OldestCommitTs = d.u32()
	c.NewestCommitTs = d.u32()
	c.OldestActive = d.u32()
	return c, nil
}

// EndOfRecovery mirrors xl_end_of_recovery: 16 bytes in 13-16, 24 in 17+
// (wal_level added).
type EndOfRecovery struct {
	Time     time.Time          // end_time
	ThisTLI  walname.TimelineID // the new timeline
	PrevTLI  walname.TimelineID // the timeline it forked from
	WalLevel int32              // 17+; -1 before
}

// DecodeEndOfRecovery decodes the main data of XLOG_END_OF_RECOVERY.
func DecodeEndOfRecovery(data []byte, major int) (EndOfRecovery, error) {
	lay, err := layoutFor(major)
	if err != nil {
		return EndOfRecovery{}, err
	}
	return decodeEndOfRecovery(data, lay)
}

func decodeEndOfRecovery(data []byte, lay *layout) (EndOfRecovery, error) {
	if len(data) != lay.eorSize {
		return EndOfRecovery{}, errorf(ErrPayload, "end-of-recovery record has %d bytes of data, want %d", len(data), lay.eorSize)
	}
	d := decbuf{b: data}
	e := EndOfRecovery{Time: TimestampTzToTime(int64(d.u64())), WalLevel: -1}
	e.ThisTLI = walname.TimelineID(d.u32())
	e.PrevTLI = walname.TimelineID(d.u32())
	if lay.eorSize > 16 {
		e.WalLevel = d.i32()
	}
	return e, nil
}

// RestorePoint mirrors xl_restore_point (72 bytes).
type RestorePoint struct {
	Time time.Time // rp_time
	// Name is rp_name up to its NUL; the bytes after it are uninitialised
	// memory and ignored.
	Name string
}

const sizeofRestorePoint = 8 + 64 // TimestampTz + MAXFNAMELEN

// DecodeRestorePoint decodes the main data of XLOG_RESTORE_POINT.
func DecodeRestorePoint(data []byte) (RestorePoint, error) {
	if len(data) != sizeofRestorePoint {
		return RestorePoint{}, errorf(ErrPayload, "restore point record has %d bytes of data, want %d", len(data), sizeofRestorePoint)
	}
	name := data[8:]
	i := bytes.IndexByte(name, 0)
	if i < 0 {
		return RestorePoint{}, errorf(ErrPayload, "restore point name is not NUL-terminated")
	}
	return RestorePoint{
		Time: TimestampTzToTime(int64(binary.LittleEndian.Uint64(data))),
		Name: string(name[:i]),
	}, nil
}

// ParameterChange mirrors xl_parameter_change (28 bytes in 13 to 18), the
// settings hot standby depends on.
type ParameterChange struct {
	MaxConnections       int32 // max_connections
	MaxWorkerProcesses   int32 // max_worker_processes
	MaxWalSenders        int32 // max_wal_senders
	MaxPreparedXacts     int32 // max_prepared_transactions
	MaxLocksPerXact      int32 // max_locks_per_transaction
	WalLevel             int32 // wal_level: 0 minimal, 1 replica, 2 logical
	WalLogHints          bool  // wal_log_hints
	TrackCommitTimestamp bool  // track_commit_timestamp
}

const sizeofParameterChange = 28 // 6 ints, 2 bools, padded to int alignment

// DecodeParameterChange decodes the main data of XLOG_PARAMETER_CHANGE.
func DecodeParameterChange(data []byte) (ParameterChange, error) {
	if len(data) != sizeofParameterChange {
		return ParameterChange{}, errorf(ErrPayload, "parameter change record has %d bytes of data, want %d", len(data), sizeofParameterChange)
	}
	d := decbuf{b: data}
	return ParameterChange{
		MaxConnections:       d.i32(),
		MaxWorkerProcesses:   d.i32(),
		MaxWalSenders:        d.i32(),
		MaxPreparedXacts:     d.i32(),
		MaxLocksPerXact:      d.i32(),
		WalLevel:             d.i32(),
		WalLogHints:          d.u8() != 0,
		TrackCommitTimestamp: d.u8() != 0,
	}, nil
}

// WalLevelName names a wal_level value as postgresql.conf spells it.
func WalLevelName(level int32) string {
	switch level {
	case 0:
		return "minimal"
	case 1:
		return "replica"
	case 2:
		return "logical"
	}
	return "unknown"
}

// OverwriteContrecord mirrors xl_overwrite_contrecord.
type OverwriteContrecord struct {
	Overwritten walname.LSN // start of the abandoned record
	Time        time.Time   // overwrite_time
}

// DecodeOverwriteContrecord decodes the main data of
// XLOG_OVERWRITE_CONTRECORD.
func DecodeOverwriteContrecord(data []byte) (OverwriteContrecord, error) {
	if len(data) != 16 {
		return OverwriteContrecord{}, errorf(ErrPayload, "overwrite contrecord record has %d bytes of data, want 16", len(data))
	}
	return OverwriteContrecord{
		Overwritten: walname.LSN(binary.LittleEndian.Uint64(data)),
		Time:        TimestampTzToTime(int64(binary.LittleEndian.Uint64(data[8:]))),
	}, nil
}

// DecodeBackupEnd decodes the main data of XLOG_BACKUP_END: the start LSN
// of the backup that ended.
func DecodeBackupEnd(data []byte) (walname.LSN, error) {
	if len(data) != 8 {
		return 0, errorf(ErrPayload, "backup end record has %d bytes of data, want 8", len(data))
	}
	return walname.LSN(binary.LittleEndian.Uint64(data)), nil
}

// DecodeCheckpointRedo decodes the main data of XLOG_CHECKPOINT_REDO
// (17+): the wal_level at the redo point.
func DecodeCheckpointRedo(data []byte) (int32, error) {
	if len(data) != 4 {
		return 0, errorf(ErrPayload, "checkpoint redo record has %d bytes of data, want 4", len(data))
	}
	return int32(binary.LittleEndian.Uint32(data)), nil
}

// DroppedStat is one xl_xact_stats_item: statistics dropped with a
// relation or function.
type DroppedStat struct {
	Kind  int32  // PgStat_Kind
	DBOID uint32 // database OID
	ObjID uint64 // object OID; 32 bits before 18
}

// XactEnd is a parsed commit or abort record (xl_xact_commit /
// xl_xact_abort, including their _PREPARED forms), mirroring
// xl_xact_parsed_commit.
type XactEnd struct {
	Time         time.Time        // xact_time: when the commit or abort record was built
	XInfo        uint32           // XACT_XINFO_* bits, 0 without XLOG_XACT_HAS_INFO
	DBID, TSID   uint32           // database and its tablespace (HAS_DBINFO)
	Subxacts     []uint32         // committed or aborted subtransaction xids
	Rels         []RelFileLocator // relation files dropped
	DroppedStats []DroppedStat    // 15+
	NInvals      int              // shared invalidation messages (commit only)
	TwoPhaseXID  uint32           // the prepared transaction, for COMMIT/ABORT_PREPARED
	GID          string           // its GID, when wal_level=logical
	OriginLSN    walname.LSN      // replication origin's LSN (HAS_ORIGIN)
	OriginTime   time.Time        // replication origin's commit time
}

// DecodeXactEnd decodes the main data of a COMMIT, ABORT,
// COMMIT_PREPARED or ABORT_PREPARED record whose xl_info is info. The
// optional parts follow in the order PostgreSQL writes them (DBINFO,
// SUBXACTS, RELFILELOCATORS, DROPPED_STATS, INVALS (commit only),
// TWOPHASE, GID, ORIGIN), not in xinfo bit order; data left over is an
// error.
func DecodeXactEnd(info uint8, data []byte, major int) (XactEnd, error) {
	lay, err := layoutFor(major)
	if err != nil {
		return XactEnd{}, err
	}
	var x XactEnd
	err = parseXactEnd(&x, info, data, lay, true)
	return x, err
}

// parseXactEnd fills x; without full it only walks the parts (no slices
// are allocated), which is all the scanner needs for events.
func parseXactEnd(x *XactEnd, info uint8, data []byte, lay *layout, full bool) error {
	op := info & XactOpMask
	if op != XactOpCommit && op != XactOpAbort && op != XactOpCommitPrepared && op != XactOpAbortPrepared {
		return errorf(ErrPayload, "xact opcode %02X is not a commit or abort", op)
	}
	commit := op == XactOpCommit || op == XactOpCommitPrepared
	d := decbuf{b: data}
	x.Time = TimestampTzToTime(int64(d.u64()))
	if info&XactHasInfo != 0 {
		x.XInfo = d.u32()
	}
	if d.bad {
		return errorf(ErrPayload, "xact record has %d bytes of data, too short for its header", len(data))
	}
	xi := x.XInfo
	if xi&XactXinfoHasDBInfo != 0 {
		x.DBID, x.TSID = d.u32(), d.u32()
	}
	if xi&XactXinfoHasSubxacts != 0 {
		n := d.count(4)
		b := d.bytes(4 * n)
		if full && n > 0 {
			x.Subxacts = make([]uint32, n)
			for i := range x.Subxacts {
				x.Subxacts[i] = binary.LittleEndian.Uint32(b[4*i:])
			}
		}
	}
	if xi&XactXinfoHasRelFiles != 0 {
		n := d.count(sizeofRelFileLocator)
		b := d.bytes(sizeofRelFileLocator * n)
		if full && n > 0 {
			x.Rels = make([]RelFileLocator, n)
			for i := range x.Rels {
				p := b[sizeofRelFileLocator*i:]
				x.Rels[i] = RelFileLocator{
					Spc: binary.LittleEndian.Uint32(p),
					DB:  binary.LittleEndian.Uint32(p[4:]),
					Rel: binary.LittleEndian.Uint32(p[8:]),
				}
			}
		}
	}
	if xi&XactXinfoHasDroppedStats != 0 && lay.stats > 0 {
		n := d.count(lay.stats)
		b := d.bytes(lay.stats * n)
		if full && n > 0 {
			x.DroppedStats = make([]DroppedStat, n)
			for i := range x.DroppedStats {
				p := b[lay.stats*i:]
				s := DroppedStat{
					Kind:  int32(binary.LittleEndian.Uint32(p)),
					DBOID: binary.LittleEndian.Uint32(p[4:]),
					ObjID: uint64(binary.LittleEndian.Uint32(p[8:])),
				}
				if lay.stats == 16 {
					s.ObjID |= uint64(binary.LittleEndian.Uint32(p[12:])) << 32
				}
				x.DroppedStats[i] = s
			}
		}
	}
	if commit && xi&XactXinfoHasInvals != 0 {
		x.NInvals = d.count(sizeofSharedInvalMessage)
		d.skip(sizeofSharedInvalMessage * x.NInvals)
	}
	if xi&XactXinfoHasTwoPhase != 0 {
		x.TwoPhaseXID = d.u32()
		if xi&XactXinfoHasGID != 0 && !d.bad {
			rest := data[d.off:]
			i := bytes.IndexByte(rest, 0)
			if i < 0 {
				return errorf(ErrPayload, "xact record GID is not NUL-terminated")
			}
			x.GID = string(rest[:i])
			d.skip(i + 1)
		}
	}
	if xi&XactXinfoHasOrigin != 0 {
		x.OriginLSN = walname.LSN(d.u64())
		x.OriginTime = TimestampTzToTime(int64(d.u64()))
	}
	if d.bad {
		return errorf(ErrPayload, "xact record with xinfo %#x has %d bytes of data, too short for its parts", xi, len(data))
	}
	if d.left() != 0 {
		return errorf(ErrPayload, "xact record with xinfo %#x has %d unexpected bytes after its parts", xi, d.left())
	}
	return nil
}

// XactPrepare is the header of a PREPARE record, mirroring xl_xact_prepare
// (the two-phase state file header; 64 bytes before 15, 72 from 15).
type XactPrepare struct {
	XID          uint32      // the prepared transaction
	DB           uint32      // its database
	Time         time.Time   // prepared_at
	Owner        uint32      // role OID
	NSubxacts    int32       // subtransaction xids in the state data
	NCommitRels  int32       // relations to drop on commit
	NAbortRels   int32       // relations to drop on abort
	NCommitStats int32       // 15+: stats to drop on commit
	NAbortStats  int32       // 15+: stats to drop on abort
	NInvals      int32       // invalidation messages
	GID          string      // the transaction's global identifier
	OriginLSN    walname.LSN // replication origin's LSN
	OriginTime   time.Time   // replication origin's prepare time
}

// DecodeXactPrepare decodes the main data of XLOG_XACT_PREPARE: the header
// and the GID that follows it; the rest is the state file content.
func DecodeXactPrepare(data []byte, major int) (XactPrepare, error) {
	lay, err := layoutFor(major)
	if err != nil {
		return XactPrepare{}, err
	}
	return decodeXactPrepare(data, lay)
}

func decodeXactPrepare(data []byte, lay *layout) (XactPrepare, error) {
	var p XactPrepare
	if len(data) < lay.prepareHdr {
		return p, errorf(ErrPayload, "prepare record has %d bytes of data, want at least %d", len(data), lay.prepareHdr)
	}
	d := decbuf{b: data}
	if m := d.u32(); m != twoPhaseMagic {
		return p, errorf(ErrPayload, "prepare record magic %08X, want %08X", m, twoPhaseMagic)
	}
	// total_len counts the state file, which adds a CRC-32C to the data.
	if tl := d.u32(); int64(tl) != int64(len(data))+4 {
		return p, errorf(ErrPayload, "prepare record total_len %d does not match its %d bytes of data", tl, len(data))
	}
	p.XID = d.u32()
	p.DB = d.u32()
	p.Time = TimestampTzToTime(int64(d.u64()))
	p.Owner = d.u32()
	p.NSubxacts = d.i32()
	p.NCommitRels = d.i32()
	p.NAbortRels = d.i32()
	if lay.stats > 0 {
		p.NCommitStats = d.i32()
		p.NAbortStats = d.i32()
	}
	p.NInvals = d.i32()
	d.skip(2) // initfileinval, padding
	gidLen := int(binary.LittleEndian.Uint16(data[d.off:]))
	d.skip(2)
	p.OriginLSN = walname.LSN(d.u64())
	p.OriginTime = TimestampTzToTime(int64(d.u64()))
	if d.off != lay.prepareHdr {
		return p, errorf(ErrPayload, "internal error: prepare header decoded to offset %d, want %d", d.off, lay.prepareHdr)
	}
	gid := d.bytes(gidLen)
	if d.bad || gidLen == 0 {
		return p, errorf(ErrPayload, "prepare record GID length %d does not fit its %d bytes of data", gidLen, len(data))
	}
	i := bytes.IndexByte(gid, 0)
	if i < 0 {
		return p, errorf(ErrPayload, "prepare record GID is not NUL-terminated")
	}
	p.GID = string(gid[:i])
	return p, nil
}
