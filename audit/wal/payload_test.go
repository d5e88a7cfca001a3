package wal_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit/wal"
)

// le builds little-endian main data from uint8/16/32/64 values and byte
// strings.
func le(vals ...any) []byte {
	var b []byte
	for _, v := range vals {
		switch v := v.(type) {
		case uint8:
			b = append(b, v)
		case uint16:
			b = binary.LittleEndian.AppendUint16(b, v)
		case uint32:
			b = binary.LittleEndian.AppendUint32(b, v)
		case int32:
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		case uint64:
			b = binary.LittleEndian.AppendUint64(b, v)
		case int64:
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		case string:
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		default:
			panic("le: unsupported type")
		}
	}
	return b
}

const (
	rpTime     = int64(848536468535585) // 2026-11-21 00:34:28.535585 UTC (FORMATS §4.4)
	rpTimeText = "2026-11-21 00:34:28.535585"
)

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000") }

func TestTimestampTz(t *testing.T) {
	if got := fmtTime(wal.TimestampTzToTime(rpTime)); got != rpTimeText {
		t.Errorf("TimestampTz %d = %s, want %s", rpTime, got, rpTimeText)
	}
	if got := wal.TimestampTzToTime(0); !got.Equal(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("TimestampTz 0 = %s", got)
	}
	if got := wal.TimestampTzToTime(-1); !got.Equal(time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)) {
		t.Errorf("TimestampTz -1 = %s", got)
	}
	// The infinities must not wrap around.
	if hi, lo := wal.TimestampTzToTime(1<<63-1), wal.TimestampTzToTime(-1<<63); !hi.After(lo) {
		t.Errorf("infinity %s is not after -infinity %s", hi, lo)
	}
}

func checkpointData(walLevel int32) []byte {
	return le(uint64(0x600370), uint32(2), uint32(1), uint8(1), uint8(0), uint16(0), walLevel,
		uint64(5)<<32|723, uint32(20192), uint32(1), uint32(0), uint32(716), uint32(1), uint32(1), uint32(1), uint32(0),
		int64(1795221342), uint32(0), uint32(0), uint32(722), uint32(0))
}

func TestDecodeCheckPoint(t *testing.T) {
	data := checkpointData(2)
	if len(data) != 88 {
		t.Fatalf("test data is %d bytes", len(data))
	}
	c15, err := wal.DecodeCheckPoint(data, 15)
	if err != nil {
		t.Fatal(err)
	}
	if c15.Redo != 0x600370 || c15.ThisTLI != 2 || c15.PrevTLI != 1 || !c15.FullPageWrites || c15.WalLevel != -1 ||
		c15.NextXID != 5<<32|723 || c15.NextOID != 20192 || c15.OldestXID != 716 || c15.OldestActive != 722 ||
		c15.Time.Unix() != 1795221342 {
		t.Errorf("15: %+v", c15)
	}
	// 17 stores wal_level where 13-16 had padding.
	c17, err := wal.DecodeCheckPoint(data, 17)
	if err != nil || c17.WalLevel != 2 || c17.NextXID != c15.NextXID {
		t.Errorf("17: %+v %v", c17, err)
	}
	if _, err := wal.DecodeCheckPoint(data[:80], 15); !errors.Is(err, wal.ErrPayload) {
		t.Errorf("short checkpoint: %v", err)
	}
}

func TestDecodeEndOfRecovery(t *testing.T) {
	d16 := le(rpTime, uint32(3), uint32(2))
	e, err := wal.DecodeEndOfRecovery(d16, 16)
	if err != nil || e.ThisTLI != 3 || e.PrevTLI != 2 || e.WalLevel != -1 || fmtTime(e.Time) != rpTimeText {
		t.Errorf("16: %+v %v", e, err)
	}
	d17 := le(rpTime, uint32(3), uint32(2), int32(1), uint32(0))
	e, err = wal.DecodeEndOfRecovery(d17, 17)
	if err != nil || e.WalLevel != 1 || e.ThisTLI != 3 {
		t.Errorf("17: %+v %v", e, err)
	}
	if _, err := wal.DecodeEndOfRecovery(d16, 17); !errors.Is(err, wal.ErrPayload) {
		t.Errorf("16-byte payload in 17: %v", err)
	}
	if _, err := wal.DecodeEndOfRecovery(d17, 15); !errors.Is(err, wal.ErrPayload) {
		t.Errorf("24-byte payload in 15: %v", err)
	}
}

func TestDecodeRestorePoint(t *testing.T) {
	name := make([]byte, 64)
	copy(name, "rp1\x00;V\x00\x00\xf0!garbage")
	rp, err := wal.DecodeRestorePoint(le(rpTime, name))
	if err != nil || rp.Name != "rp1" || fmtTime(rp.Time) != rpTimeText {
		t.Errorf("%+v %v", rp, err)
	}
	full := []byte(strings.Repeat("n", 64))
	if _, err := wal.DecodeRestorePoint(le(rpTime, full)); !errors.Is(err, wal.ErrPayload) {
		t.Errorf("unterminated name: %v", err)
	}
	if _, err := wal.DecodeRestorePoint(le(rpTime, "rp1\x00")); !errors.Is(err, wal.ErrPayload) {
		t.Errorf("short payload: %v", err)
	}
}

func TestDecodeParameterChange(t *testing.T) {
	p, err := wal.DecodeParameterChange(le(int32(100), int32(8), int32(10), int32(5), int32(64), int32(2), uint8(1), uint8(0), uint16(0)))
	if err != nil || p.MaxConnections != 100 || p.MaxWorkerProcesses != 8 || p.MaxWalSenders != 10 || p.MaxPreparedXacts != 5 ||
		p.MaxLocksPerXact != 64 || p.WalLevel != 2 || !p.WalLogHints || p.TrackCommitTimestamp {
		t.Errorf("%+v %v", p, err)
	}
	if _, err := wal.DecodeParameterChange(make([]byte, 26)); !errors.Is(err, wal.ErrPayload) {
		t.Errorf("unpadded payload: %v", err)
	}
}

// commitAllParts has every optional part, in PostgreSQL's order.
func commitAllParts(statsItem []byte) []byte {
	xinfo := uint32(wal.XactXinfoHasDBInfo | wal.XactXinfoHasSubxacts | wal.XactXinfoHasRelFiles | wal.XactXinfoHasDroppedStats |
		wal.XactXinfoHasInvals | wal.XactXinfoHasTwoPhase | wal.XactXinfoHasGID | wal.XactXinfoHasOrigin | wal.XactXinfoHasAELocks)
	return le(rpTime, xinfo,
		uint32(5), uint32(1663), // dbinfo
		int32(2), uint32(727), uint32(728), // subxacts
		int32(1), uint32(1663), uint32(5), uint32(16391), // relfilelocators
		int32(1), statsItem, // dropped stats
		int32(1), make([]byte, 16), // invals
		uint32(731),                    // twophase xid
		"my_gid_xyz\x00",               // GID, unaligned from here on
		uint64(0x1_02345678), rpTime+1, // origin
	)
}

func TestDecodeXactEnd(t *testing.T) {
	info := uint8(wal.XactOpCommitPrepared | wal.XactHasInfo)
	x, err := wal.DecodeXactEnd(info, commitAllParts(le(int32(2), uint32(5), uint32(16391))), 15)
	if err != nil {
		t.Fatal(err)
	}
	if fmtTime(x.Time) != rpTimeText || x.DBID != 5 || x.TSID != 1663 || len(x.Subxacts) != 2 || x.Subxacts[1] != 728 ||
		len(x.Rels) != 1 || x.Rels[0].Rel != 16391 || len(x.DroppedStats) != 1 || x.DroppedStats[0] != (wal.DroppedStat{Kind: 2, DBOID: 5, ObjID: 16391}) ||
		x.NInvals != 1 || x.TwoPhaseXID != 731 || x.GID != "my_gid_xyz" || x.OriginLSN != 0x1_02345678 || x.OriginTime.Sub(x.Time) != time.Microsecond {
		t.Errorf("15: %+v", x)
	}
	// 18 stores the stats object id in 64 bits.
	x, err = wal.DecodeXactEnd(info, commitAllParts(le(int32(2), uint32(5), uint32(16391), uint32(1))), 18)
	if err != nil || x.DroppedStats[0].ObjID != 1<<32|16391 || x.GID != "my_gid_xyz" {
		t.Errorf("18: %+v %v", x, err)
	}
	// 12-byte items read as 18 misalign everything after them.
	if _, err := wal.DecodeXactEnd(info, commitAllParts(le(int32(2), uint32(5), uint32(16391))), 18); err == nil {
		t.Error("15 layout accepted as 18")
	}

	// A plain commit without xinfo is 8 bytes.
	x, err = wal.DecodeXactEnd(wal.XactOpCommit, le(rpTime), 13)
	if err != nil || x.XInfo != 0 || fmtTime(x.Time) != rpTimeText {
		t.Errorf("plain commit: %+v %v", x, err)
	}
	// Aborts never carry invalidations: PostgreSQL ignores the bit.
	x, err = wal.DecodeXactEnd(wal.XactOpAbort|wal.XactHasInfo, le(rpTime, uint32(wal.XactXinfoHasInvals|wal.XactXinfoHasSubxacts), int32(1), uint32(9)), 15)
	if err != nil || len(x.Subxacts) != 1 || x.NInvals != 0 {
		t.Errorf("abort with invals bit: %+v %v", x, err)
	}

	for _, tc := range []struct {
		name string
		info uint8
		data []byte
	}{
		{"short_time", wal.XactOpCommit, le(uint32(1))},
		{"trailing_bytes", wal.XactOpCommit, le(rpTime, uint8(0))},
		{"negative_count", wal.XactOpCommit | wal.XactHasInfo, le(rpTime, uint32(wal.XactXinfoHasSubxacts), int32(-1))},
		{"huge_count", wal.XactOpCommit | wal.XactHasInfo, le(rpTime, uint32(wal.XactXinfoHasRelFiles), int32(0x7fffffff), uint32(1))},
		{"truncated_origin", wal.XactOpAbort | wal.XactHasInfo, le(rpTime, uint32(wal.XactXinfoHasOrigin), uint64(1))},
		{"unterminated_gid", wal.XactOpAbortPrepared | wal.XactHasInfo, le(rpTime, uint32(wal.XactXinfoHasTwoPhase|wal.XactXinfoHasGID), uint32(7), "gid")},
		{"not_commit_or_abort", wal.XactOpPrepare, le(rpTime)},
	} {
		if _, err := wal.DecodeXactEnd(tc.info, tc.data, 15); !errors.Is(err, wal.ErrPayload) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func prepareData(major int, xid uint32, gid string) []byte {
	gidb := []byte(gid + "\x00")
	hdr := le(uint32(0x57F94534), uint32(0), xid, uint32(5), rpTime, uint32(10),
		int32(0), int32(0), int32(0)) // nsubxacts, ncommitrels, nabortrels
	if major >= 15 {
		hdr = append(hdr, le(int32(0), int32(0))...) // ncommitstats, nabortstats
	}
	hdr = append(hdr, le(int32(0), uint8(0), uint8(0x03), uint16(len(gidb)), uint64(0), int64(0))...)
	body := append(hdr, gidb...)
	for len(body)%8 != 0 {
		body = append(body, 0)
	}
	body = append(body, make([]byte, 16)...) // the rest of the state data
	binary.LittleEndian.PutUint32(body[4:], uint32(len(body)+4))
	return body
}

func TestDecodeXactPrepare(t *testing.T) {
	for _, major := range []int{14, 15, 18} {
		p, err := wal.DecodeXactPrepare(prepareData(major, 731, "gid_commit"), major)
		if err != nil || p.XID != 731 || p.DB != 5 || p.Owner != 10 || p.GID != "gid_commit" || fmtTime(p.Time) != rpTimeText {
			t.Errorf("%d: %+v %v", major, p, err)
		}
	}
	// The 15 layout is 8 bytes longer: reading it as 14 puts the GID
	// length in the wrong place.
	if p, err := wal.DecodeXactPrepare(prepareData(15, 731, "gid_commit"), 14); err == nil && p.GID == "gid_commit" {
		t.Errorf("15 prepare decoded as 14: %+v", p)
	}
	bad := prepareData(15, 1, "g")
	bad[0] ^= 1
	if _, err := wal.DecodeXactPrepare(bad, 15); !errors.Is(err, wal.ErrPayload) {
		t.Errorf("bad magic: %v", err)
	}
	bad = prepareData(15, 1, "g")
	binary.LittleEndian.PutUint32(bad[4:], 1)
	if _, err := wal.DecodeXactPrepare(bad, 15); !errors.Is(err, wal.ErrPayload) {
		t.Errorf("bad total_len: %v", err)
	}
	if _, err := wal.DecodeXactPrepare(make([]byte, 40), 15); !errors.Is(err, wal.ErrPayload) {
		t.Errorf("short prepare: %v", err)
	}
}

func TestEventOf(t *testing.T) {
	rec := func(rmid wal.RmgrID, info uint8, xid uint32, data []byte) *wal.Record {
		return &wal.Record{RmID: rmid, Info: info, XID: xid, MainData: data, StartLSN: 0x1000, EndLSN: 0x1040, Major: 15}
	}
	name := make([]byte, 64)
	copy(name, "before_upgrade")
	tests := []struct {
		name  string
		rec   *wal.Record
		major int
		want  wal.Event
	}{
		{"commit", rec(wal.RmXact, wal.XactOpCommit, 726, le(rpTime)), 0,
			wal.Event{Kind: wal.EventCommit, XID: 726, Time: wal.TimestampTzToTime(rpTime)}},
		{"commit_with_special_rel_update_bit", rec(wal.RmXact, wal.XactOpCommit|wal.XactHasInfo|0x01, 726, le(rpTime, uint32(0))), 0,
			wal.Event{Kind: wal.EventCommit, XID: 726, Time: wal.TimestampTzToTime(rpTime)}},
		{"abort", rec(wal.RmXact, wal.XactOpAbort, 729, le(rpTime)), 0,
			wal.Event{Kind: wal.EventAbort, XID: 729, Time: wal.TimestampTzToTime(rpTime)}},
		{"commit_prepared_uses_twophase_xid", rec(wal.RmXact, wal.XactOpCommitPrepared|wal.XactHasInfo, 0, le(rpTime, uint32(wal.XactXinfoHasTwoPhase|wal.XactXinfoHasGID), uint32(731), "g1\x00")), 0,
			wal.Event{Kind: wal.EventCommitPrepared, XID: 731, Name: "g1", Time: wal.TimestampTzToTime(rpTime)}},
		{"abort_prepared", rec(wal.RmXact, wal.XactOpAbortPrepared|wal.XactHasInfo, 0, le(rpTime, uint32(wal.XactXinfoHasTwoPhase), uint32(732))), 0,
			wal.Event{Kind: wal.EventAbortPrepared, XID: 732, Time: wal.TimestampTzToTime(rpTime)}},
		{"prepare", rec(wal.RmXact, wal.XactOpPrepare, 731, prepareData(15, 731, "g1")), 0,
			wal.Event{Kind: wal.EventPrepare, XID: 731, Name: "g1", Time: wal.TimestampTzToTime(rpTime)}},
		{"restore_point", rec(wal.RmXLOG, wal.XLOGRestorePoint, 0, le(rpTime, name)), 0,
			wal.Event{Kind: wal.EventRestorePoint, Name: "before_upgrade", Time: wal.TimestampTzToTime(rpTime)}},
		{"checkpoint_shutdown", rec(wal.RmXLOG, wal.XLOGCheckpointShutdown, 0, checkpointData(0)), 0,
			wal.Event{Kind: wal.EventCheckpointShutdown, TLI: 2, PrevTLI: 1, Redo: 0x600370, Time: time.Unix(1795221342, 0).UTC()}},
		{"checkpoint_online_17", rec(wal.RmXLOG, wal.XLOGCheckpointOnline, 0, checkpointData(1)), 17,
			wal.Event{Kind: wal.EventCheckpointOnline, TLI: 2, PrevTLI: 1, Redo: 0x600370, Time: time.Unix(1795221342, 0).UTC(), WalLevel: 1}},
		{"end_of_recovery", rec(wal.RmXLOG, wal.XLOGEndOfRecovery, 0, le(rpTime, uint32(3), uint32(2))), 0,
			wal.Event{Kind: wal.EventEndOfRecovery, TLI: 3, PrevTLI: 2, Time: wal.TimestampTzToTime(rpTime)}},
		{"backup_end", rec(wal.RmXLOG, wal.XLOGBackupEnd, 0, le(uint64(0x900028))), 0,
			wal.Event{Kind: wal.EventBackupEnd, BackupStart: 0x900028}},
		{"switch", rec(wal.RmXLOG, wal.XLOGSwitch, 0, nil), 0, wal.Event{Kind: wal.EventSwitch}},
		{"checkpoint_redo_17", rec(wal.RmXLOG, wal.XLOGCheckpointRedo, 0, le(int32(1))), 17, wal.Event{Kind: wal.EventCheckpointRedo, WalLevel: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, ok, err := wal.EventOf(tc.rec, tc.major)
			if err != nil || !ok {
				t.Fatalf("EventOf: %v %v", ok, err)
			}
			want := tc.want
			want.LSN, want.EndLSN = 0x1000, 0x1040
			if want.WalLevel == 0 {
				want.WalLevel = -1
			}
			if ev.Params != nil || ev.Kind != want.Kind || ev.XID != want.XID || !ev.Time.Equal(want.Time) || ev.Name != want.Name ||
				ev.TLI != want.TLI || ev.PrevTLI != want.PrevTLI || ev.Redo != want.Redo || ev.BackupStart != want.BackupStart ||
				ev.WalLevel != want.WalLevel || ev.LSN != want.LSN || ev.EndLSN != want.EndLSN {
				t.Errorf("got  %+v\nwant %+v", ev, want)
			}
			if s := wal.Describe(tc.rec); !strings.HasPrefix(s, tc.rec.RmID.String()+" ") || strings.Contains(s, "undecodable") {
				t.Errorf("Describe: %s", s)
			}
		})
	}

	p := rec(wal.RmXLOG, wal.XLOGParameterChange, 0, le(int32(100), int32(8), int32(10), int32(5), int32(64), int32(1), uint8(0), uint8(1), uint16(0)))
	if ev, ok, err := wal.EventOf(p, 0); err != nil || !ok || ev.Kind != wal.EventParameterChange || ev.Params == nil || ev.Params.MaxConnections != 100 || !ev.Params.TrackCommitTimestamp {
		t.Errorf("parameter change: %+v %v", ev, err)
	}
	for _, r := range []*wal.Record{
		rec(wal.RmHeap, 0, 5, []byte{1}),
		rec(wal.RmXact, wal.XactOpAssignment, 5, le(uint32(5), int32(0))),
		rec(wal.RmXLOG, wal.XLOGNoop, 0, nil),
		rec(wal.RmXLOG, wal.XLOGCheckpointRedo, 0, le(int32(1))), // no such record before 17
	} {
		if ev, ok, err := wal.EventOf(r, 15); ok || err != nil {
			t.Errorf("rmgr %s info %02X is an event: %+v %v", r.RmID, r.Info, ev, err)
		}
	}
	for _, r := range []*wal.Record{
		rec(wal.RmXLOG, wal.XLOGSwitch, 0, []byte{1}),
		rec(wal.RmXLOG, wal.XLOGCheckpointOnline, 0, make([]byte, 87)),
		rec(wal.RmXact, wal.XactOpCommitPrepared, 0, le(rpTime)), // no TWOPHASE part
		rec(wal.RmXact, wal.XactOpCommit, 1, le(uint32(1))),
	} {
		if _, _, err := wal.EventOf(r, 15); !errors.Is(err, wal.ErrPayload) {
			t.Errorf("rmgr %s info %02X: %v, want ErrPayload", r.RmID, r.Info, err)
		}
	}
	for _, r := range []*wal.Record{
		rec(wal.RmXLOG, wal.XLOGCheckpointOnline, 0, make([]byte, 87)),
		rec(wal.RmXact, wal.XactOpCommit, 1, le(uint32(1))),
	} {
		if s := wal.Describe(r); !strings.Contains(s, "undecodable") {
			t.Errorf("Describe of a bad payload: %s", s)
		}
	}
	if _, _, err := wal.EventOf(rec(wal.RmXact, 0, 1, le(rpTime)), 12); !errors.Is(err, wal.ErrUnsupportedVersion) {
		t.Errorf("major 12: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	r := &wal.Record{RmID: wal.RmXact, Info: wal.XactOpCommit | wal.XactHasInfo, XID: 728, TotLen: 58, StartLSN: 0x61FC80, Prev: 0x61FC38, Major: 15,
		MainData: le(rpTime, uint32(wal.XactXinfoHasSubxacts), int32(2), uint32(729), uint32(730))}
	for _, tc := range []struct {
		rec  *wal.Record
		want string
	}{
		{r, "Transaction COMMIT 2026-11-21 00:34:28.535585 UTC; subxacts: 729 730"},
		{&wal.Record{RmID: wal.RmHeap, TotLen: 150, Blocks: []wal.BlockRef{{ImageLen: 96}}, Major: 15}, "Heap len 150, blocks 1"},
		{&wal.Record{RmID: wal.RmXLOG, Info: wal.XLOGSwitch, Major: 15}, "XLOG SWITCH"},
		{&wal.Record{RmID: wal.RmXLOG, Info: wal.XLOGBackupEnd, MainData: le(uint64(0x900028)), Major: 15}, "XLOG BACKUP_END 0/900028"},
		{&wal.Record{RmID: wal.RmXLOG, Info: wal.XLOGCheckpointOnline, MainData: checkpointData(1), Major: 17},
			"XLOG CHECKPOINT_ONLINE redo 0/600370; tli 2; prev tli 1; fpw true; xid 5:723; oid 20192; time 2026-11-21 00:35:42; wal_level replica"},
	} {
		if got := wal.Describe(tc.rec); got != tc.want {
			t.Errorf("Describe:\n got %s\nwant %s", got, tc.want)
		}
	}
}
