package backup

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"testing"
	"time"
)

// TestParseControlReal decodes the real PostgreSQL 15 pg_control files and
// compares every field pg_controldata printed for them.
func TestParseControlReal(t *testing.T) {
	for _, dir := range []string{"plain_none", "tar_stream", "tar_gzip_fetch", "tar_lz4", "tar_zstd", "standby_tar"} {
		t.Run(dir, func(t *testing.T) {
			c, err := ParseControl(fixture(t, dir+"/pg_control"))
			if err != nil {
				t.Fatal(err)
			}
			cd := controlData(t, dir)
			onOff := func(b bool) string {
				if b {
					return "on"
				}
				return "off"
			}
			yesNo := func(b bool) string {
				if b {
					return "yes"
				}
				return "no"
			}
			// pg_controldata prints times with strftime %c in the C locale,
			// in the zone gen.sh ran in (UTC).
			ctime := func(t time.Time) string { return t.UTC().Format("Mon Jan _2 15:04:05 2006") }
			cp := c.CheckPointCopy
			want := map[string]string{
				"pg_control version number":             fmt.Sprint(c.PGControlVersion),
				"Catalog version number":                fmt.Sprint(c.CatalogVersionNo),
				"Database system identifier":            fmt.Sprint(c.SystemIdentifier),
				"Database cluster state":                c.State.String(),
				"pg_control last modified":              ctime(c.Time),
				"Latest checkpoint location":            c.CheckPoint.String(),
				"Latest checkpoint's REDO location":     cp.Redo.String(),
				"Latest checkpoint's TimeLineID":        cp.ThisTimeLineID.String(),
				"Latest checkpoint's PrevTimeLineID":    cp.PrevTimeLineID.String(),
				"Latest checkpoint's full_page_writes":  onOff(cp.FullPageWrites),
				"Latest checkpoint's NextXID":           fmt.Sprintf("%d:%d", cp.NextXID>>32, uint32(cp.NextXID)),
				"Latest checkpoint's NextOID":           fmt.Sprint(cp.NextOID),
				"Latest checkpoint's NextMultiXactId":   fmt.Sprint(cp.NextMulti),
				"Latest checkpoint's NextMultiOffset":   fmt.Sprint(cp.NextMultiOffset),
				"Latest checkpoint's oldestXID":         fmt.Sprint(cp.OldestXID),
				"Latest checkpoint's oldestXID's DB":    fmt.Sprint(cp.OldestXIDDB),
				"Latest checkpoint's oldestActiveXID":   fmt.Sprint(cp.OldestActiveXID),
				"Latest checkpoint's oldestMultiXid":    fmt.Sprint(cp.OldestMulti),
				"Latest checkpoint's oldestMulti's DB":  fmt.Sprint(cp.OldestMultiDB),
				"Latest checkpoint's oldestCommitTsXid": fmt.Sprint(cp.OldestCommitTsXID),
				"Latest checkpoint's newestCommitTsXid": fmt.Sprint(cp.NewestCommitTsXID),
				"Time of latest checkpoint":             ctime(cp.Time),
				"Fake LSN counter for unlogged rels":    c.UnloggedLSN.String(),
				"Minimum recovery ending location":      c.MinRecoveryPoint.String(),
				"Min recovery ending loc's timeline":    c.MinRecoveryPointTLI.String(),
				"Backup start location":                 c.BackupStartPoint.String(),
				"Backup end location":                   c.BackupEndPoint.String(),
				"End-of-backup record required":         yesNo(c.BackupEndRequired),
				"wal_level setting":                     c.WALLevel.String(),
				"wal_log_hints setting":                 onOff(c.WALLogHints),
				"max_connections setting":               fmt.Sprint(c.MaxConnections),
				"max_worker_processes setting":          fmt.Sprint(c.MaxWorkerProcesses),
				"max_wal_senders setting":               fmt.Sprint(c.MaxWALSenders),
				"max_prepared_xacts setting":            fmt.Sprint(c.MaxPreparedXacts),
				"max_locks_per_xact setting":            fmt.Sprint(c.MaxLocksPerXact),
				"track_commit_timestamp setting":        onOff(c.TrackCommitTimestamp),
				"Maximum data alignment":                fmt.Sprint(c.MaxAlign),
				"Database block size":                   fmt.Sprint(c.BlockSize),
				"Blocks per segment of large relation":  fmt.Sprint(c.RelSegSize),
				"WAL block size":                        fmt.Sprint(c.XLogBlockSize),
				"Bytes per WAL segment":                 fmt.Sprint(uint32(c.XLogSegSize)),
				"Maximum length of identifiers":         fmt.Sprint(c.NameDataLen),
				"Maximum columns in an index":           fmt.Sprint(c.IndexMaxKeys),
				"Maximum size of a TOAST chunk":         fmt.Sprint(c.ToastMaxChunkSize),
				"Size of a large-object chunk":          fmt.Sprint(c.LOBlockSize),
				"Data page checksum version":            fmt.Sprint(c.DataChecksumVersion),
				"Mock authentication nonce":             hex.EncodeToString(c.MockAuthNonce[:]),
			}
			for k, v := range want {
				got, ok := cd[k]
				if !ok {
					t.Errorf("pg_controldata has no %q", k)
					continue
				}
				if got != v {
					t.Errorf("%s: decoded %q, pg_controldata %q", k, v, got)
				}
			}
			if cd["Float8 argument passing"] != "by value" || !c.Float8ByVal {
				t.Errorf("float8 by value: %v / %q", c.Float8ByVal, cd["Float8 argument passing"])
			}
			if !c.CRCValid || c.CheckPointCopy.HasWALLevel || c.HasDefaultCharSignedness {
				t.Errorf("crc %v, 17/18-only fields present", c.CRCValid)
			}
			if got := c.MajorVersions(); len(got) != 4 || got[2] != 15 {
				t.Errorf("MajorVersions = %v", got)
			}
		})
	}
}

// relayout turns a real 1300 pg_control into the 1700 or 1800 layout (per
// the package documentation) and fixes the CRC.
func relayout(t *testing.T, src []byte, version uint32) []byte {
	t.Helper()
	d := bytes.Clone(src)
	le := binary.LittleEndian
	le.PutUint32(d[8:], version)
	switch version {
	case ControlVersion17:
		le.PutUint32(d[60:], uint32(WALLevelLogical))
		le.PutUint32(d[288:], crc32.Checksum(d[:288], crc32.MakeTable(crc32.Castagnoli)))
	case ControlVersion18:
		le.PutUint32(d[60:], uint32(WALLevelReplica))
		nonce := bytes.Clone(src[256:288])
		d[256] = 1 // default_char_signedness
		copy(d[257:], nonce)
		for i := 289; i < 292; i++ {
			d[i] = 0 // padding before crc
		}
		le.PutUint32(d[292:], crc32.Checksum(d[:292], crc32.MakeTable(crc32.Castagnoli)))
	}
	return d
}

func TestParseControlLayouts(t *testing.T) {
	real := fixture(t, "plain_none/pg_control")
	base, err := ParseControl(real)
	if err != nil {
		t.Fatal(err)
	}
	c17, err := ParseControl(relayout(t, real, ControlVersion17))
	if err != nil {
		t.Fatal(err)
	}
	if !c17.CheckPointCopy.HasWALLevel || c17.CheckPointCopy.WALLevel != WALLevelLogical || c17.HasDefaultCharSignedness {
		t.Errorf("17: %+v", c17.CheckPointCopy)
	}
	if c17.CheckPointCopy.NextXID != base.CheckPointCopy.NextXID || c17.MockAuthNonce != base.MockAuthNonce || c17.MajorVersions()[0] != 17 {
		t.Error("17: fields after wal_level moved")
	}
	c18, err := ParseControl(relayout(t, real, ControlVersion18))
	if err != nil {
		t.Fatal(err)
	}
	if !c18.HasDefaultCharSignedness || !c18.DefaultCharSignedness || c18.MockAuthNonce != base.MockAuthNonce ||
		c18.DataChecksumVersion != base.DataChecksumVersion || c18.CheckPointCopy.WALLevel != WALLevelReplica {
		t.Errorf("18: %+v", c18)
	}
	// A 1300 CRC placement does not validate a 1800 file and vice versa.
	d := relayout(t, real, ControlVersion18)
	binary.LittleEndian.PutUint32(d[8:], ControlVersion13)
	if _, err := ParseControl(d); !errors.Is(err, ErrControlCRC) {
		t.Errorf("1800 bytes read as 1300: %v", err)
	}
}

func TestParseControlMalformed(t *testing.T) {
	real := fixture(t, "plain_none/pg_control")
	fixCRC := func(d []byte) []byte {
		binary.LittleEndian.PutUint32(d[288:], crc32.Checksum(d[:288], crc32.MakeTable(crc32.Castagnoli)))
		return d
	}
	tests := []struct {
		name     string
		data     []byte
		sentinel error
		returned bool // control returned with the error
	}{
		{"empty", nil, ErrControlTruncated, false},
		{"15 bytes", real[:15], ErrControlTruncated, false},
		{"struct minus one byte", real[:291], ErrControlTruncated, false},
		{"pg12", func() []byte { d := bytes.Clone(real); binary.LittleEndian.PutUint32(d[8:], 1201); return d }(), ErrControlVersion, false},
		{"big-endian", func() []byte { d := bytes.Clone(real); binary.BigEndian.PutUint32(d[8:], 1300); return d }(), ErrControlVersion, false},
		{"bit flip", func() []byte { d := bytes.Clone(real); d[136] ^= 0x10; return d }(), ErrControlCRC, true},
		{"crc flip", func() []byte { d := bytes.Clone(real); d[288] ^= 1; return d }(), ErrControlCRC, true},
		{"float format", func() []byte {
			d := bytes.Clone(real)
			binary.LittleEndian.PutUint64(d[208:], math.Float64bits(1.5))
			return fixCRC(d)
		}(), ErrInvalidControl, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseControl(tc.data)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("err = %v, want %v", err, tc.sentinel)
			}
			if tc.sentinel != ErrControlCRC && !errors.Is(err, ErrInvalidControl) {
				t.Errorf("err = %v does not wrap ErrInvalidControl", err)
			}
			if (c != nil) != tc.returned {
				t.Fatalf("control returned = %v, want %v", c != nil, tc.returned)
			}
			if c != nil && c.CRCValid {
				t.Error("CRCValid set on a CRC error")
			}
		})
	}
	// Only the first 296 bytes matter: a file cut to the struct still parses.
	if _, err := ParseControl(real[:296]); err != nil {
		t.Errorf("struct-sized pg_control: %v", err)
	}
}

func TestDBStateAndWALLevelNames(t *testing.T) {
	if DBInProduction.String() != "in production" || DBShutdownedInRecovery.String() != "shut down in recovery" ||
		DBState(99).String() != "unrecognized status code 99" {
		t.Error("DBState names")
	}
	if WALLevelLogical.String() != "logical" || WALLevel(7).String() != "unrecognized wal_level 7" {
		t.Error("WALLevel names")
	}
	if ControlVersionMajors(1201) != nil {
		t.Error("unknown version has majors")
	}
}

func FuzzParseControl(f *testing.F) {
	real := fixture(f, "standby_tar/pg_control")
	f.Add(real)
	f.Add(real[:300])
	f.Add(real[:16])
	d := bytes.Clone(real[:300])
	binary.LittleEndian.PutUint32(d[8:], ControlVersion18)
	f.Add(d)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseControl(data)
		switch {
		case err == nil:
			if c == nil || !c.CRCValid {
				t.Fatal("accepted without valid CRC")
			}
		case errors.Is(err, ErrControlCRC):
			if c == nil || c.CRCValid {
				t.Fatal("CRC error without control data")
			}
		case errors.Is(err, ErrInvalidControl):
			if c != nil {
				t.Fatal("invalid control returned")
			}
		default:
			t.Fatalf("unclassified error: %v", err)
		}
	})
}
