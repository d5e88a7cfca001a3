package plan_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/pgserver"
	"github.com/walaudit/walaudit/plan/pgserver/pgtest"
	"github.com/walaudit/walaudit/walname"
)

// The same scenario runs on every supported major version, each with its
// own server binaries (pgserver.Provide) and a low-level base backup, and
// walaudit's decoding and verdicts are compared with what that version's
// server did and with real recoveries by that version's server.
//
// WALAUDIT_FULL_MATRIX=1 adds more targets per version; the default run
// keeps at least one real recovery per target type per version.

// pageMagics are the xlp_magic values each major writes.
var pageMagics = map[int]uint16{13: 0xD106, 14: 0xD10D, 15: 0xD110, 16: 0xD113, 17: 0xD116, 18: 0xD118}

// verXact is a transaction end the workload made, as the server reported it.
type verXact struct {
	what      string
	xid       uint32
	kind      wal.EventKind
	tli       walname.TimelineID
	time      time.Time   // pg_xact_commit_timestamp; zero for aborts
	wallFrom  time.Time   // wall clock around the statement that ended it
	wallTo    time.Time   //
	lsnBefore walname.LSN // pg_current_wal_insert_lsn() before and after it
	lsnAfter  walname.LSN
}

// verRP is a restore point as pg_create_restore_point reported it.
type verRP struct {
	name string
	end  walname.LSN // what pg_create_restore_point returned: the record's end
}

type verFixture struct {
	major    int
	bin      *pgserver.Bin
	lab      *pgserver.Lab
	segSize  walname.SegmentSize
	b1       string
	b1Start  walname.LSN
	midLSN   walname.LSN
	forkLSN  walname.LSN
	tli2LSN  walname.LSN
	endLSN   walname.LSN
	gapSeg   string
	gapDir   string
	switchAt walname.LSN // pg_switch_wal()'s result in the workload

	xacts                             []verXact
	rps                               []verRP
	xCommit, xAbort, xNext, xSub      uint32
	xCommitPrep, xAbortPrep, xTLI2    uint32
	xAfterRP, xLate                   uint32
	tCommit, tCommitNext, tLastCommit time.Time
}

// TestVersions runs the scenario on every supported major version
// (subtests pg13 … pg18, two at a time with the default -parallel on two
// cores).
func TestVersions(t *testing.T) {
	full := os.Getenv("WALAUDIT_FULL_MATRIX") == "1"
	for _, major := range pgserver.SupportedMajors() {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			started := time.Now()
			defer func() { t.Logf("PostgreSQL %d: %s", major, time.Since(started).Round(100*time.Millisecond)) }()
			vf := buildVersionFixture(t, major)
			t.Run("events", func(t *testing.T) { checkVersionEvents(t, vf) })
			t.Run("segments", func(t *testing.T) { checkVersionSegments(t, vf) })
			for _, c := range versionCases(vf, full) {
				t.Run(c.name, func(t *testing.T) { runVersionOracle(t, vf, c) })
			}
		})
	}
}

func versionCases(vf *verFixture, full bool) []oracleCase {
	commitLSN := vf.eventLSN(vf.xCommit)
	cases := []oracleCase{
		{name: "latest", backup: "b1", target: "latest", inclusive: true},
		{name: "immediate", backup: "b1", target: "immediate", inclusive: true},
		{name: "lsn-commit-incl", backup: "b1", target: "lsn:" + commitLSN.String(), inclusive: true},
		{name: "lsn-commit-excl", backup: "b1", target: "lsn:" + commitLSN.String(), inclusive: false},
		{name: "xid-commit-incl", backup: "b1", target: fmt.Sprintf("xid:%d", vf.xCommit), inclusive: true},
		{name: "time-on-commit-incl", backup: "b1", target: "time:" + ts(vf.tCommit), inclusive: true},
		{name: "time-on-commit-excl", backup: "b1", target: "time:" + ts(vf.tCommit), inclusive: false},
		{name: "name-rp1", backup: "b1", target: "name:rp1", inclusive: true},
		{name: "name-duplicate", backup: "b1", target: "name:dup", inclusive: true},
		{name: "xid-tli2", backup: "b1", target: fmt.Sprintf("xid:%d", vf.xTLI2), inclusive: true},
		{name: "gap-latest", archive: "gap", backup: "b1", target: "latest", inclusive: true, stricter: true},
	}
	if full {
		cases = append(cases, []oracleCase{
			{name: "lsn-mid-incl", backup: "b1", target: "lsn:" + vf.midLSN.String(), inclusive: true},
			{name: "lsn-mid-excl", backup: "b1", target: "lsn:" + vf.midLSN.String(), inclusive: false},
			{name: "lsn-inside-backup", backup: "b1", target: "lsn:" + (vf.b1Start + 8).String(), inclusive: true},
			{name: "lsn-inside-backup-excl", backup: "b1", target: "lsn:" + (vf.b1Start + 8).String(), inclusive: false},
			{name: "lsn-tli2", backup: "b1", target: "lsn:" + vf.tli2LSN.String(), inclusive: true},
			{name: "lsn-beyond-end", backup: "b1", target: "lsn:" + vf.endLSN.String(), inclusive: true},
			{name: "latest-tl1", backup: "b1", target: "latest", inclusive: true, timeline: "1"},
			{name: "xid-commit-excl", backup: "b1", target: fmt.Sprintf("xid:%d", vf.xCommit), inclusive: false},
			{name: "xid-abort", backup: "b1", target: fmt.Sprintf("xid:%d", vf.xAbort), inclusive: true},
			{name: "xid-commit-prepared", backup: "b1", target: fmt.Sprintf("xid:%d", vf.xCommitPrep), inclusive: true},
			{name: "xid-abort-prepared-excl", backup: "b1", target: fmt.Sprintf("xid:%d", vf.xAbortPrep), inclusive: false},
			{name: "xid-subtransaction", backup: "b1", target: fmt.Sprintf("xid:%d", vf.xSub), inclusive: true, timeline: "1"},
			{name: "xid-after-rp-tl1", backup: "b1", target: fmt.Sprintf("xid:%d", vf.xAfterRP), inclusive: true, timeline: "1"},
			{name: "xid-after-rp-latest", backup: "b1", target: fmt.Sprintf("xid:%d", vf.xAfterRP), inclusive: true},
			{name: "time-between-commits", backup: "b1", target: "time:" + ts(vf.tCommit.Add(vf.tCommitNext.Sub(vf.tCommit)/2)), inclusive: true},
			{name: "time-after-last-commit", backup: "b1", target: "time:" + ts(vf.tLastCommit.Add(time.Second)), inclusive: true, timeline: "1"},
			{name: "name-absent", backup: "b1", target: "name:nope", inclusive: true},
			{name: "gap-lsn-before", archive: "gap", backup: "b1", target: "lsn:" + vf.midLSN.String(), inclusive: true},
			{name: "gap-lsn-after", archive: "gap", backup: "b1", target: "lsn:" + vf.tli2LSN.String(), inclusive: true},
		}...)
	}
	return cases
}

// eventLSN is where walaudit decoded the commit or abort of xid on
// timeline 1 (0 if it did not: checkVersionEvents reports that).
func (vf *verFixture) eventLSN(xid uint32) walname.LSN {
	evs, _, _ := vf.decode(1)
	for _, e := range evs {
		if e.Kind.IsXactEnd() && e.XID == xid {
			return e.LSN
		}
	}
	return 0
}

func buildVersionFixture(t *testing.T, major int) *verFixture {
	t.Helper()
	bin := pgtest.Provide(t, major)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab := pgtest.NewLab(ctx, t, bin)
	vf := &verFixture{major: major, bin: bin, lab: lab, segSize: 1 << 20}
	if err := vf.build(ctx, t); err != nil {
		t.Fatalf("PostgreSQL %s scenario: %v", bin.Version, err)
	}
	return vf
}

func (vf *verFixture) build(ctx context.Context, t *testing.T) error {
	lab := vf.lab
	p1, err := lab.InitPrimary(ctx, "p1", 1, map[string]string{"track_commit_timestamp": "on"})
	if err != nil {
		return err
	}
	if err := p1.Exec(ctx, `CREATE TABLE t(i int, pad text)`, `INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g`); err != nil {
		return err
	}
	if _, err := lab.SwitchAndWait(ctx, p1); err != nil {
		return err
	}
	if vf.b1, err = lab.LowLevelBackup(ctx, p1, "b1"); err != nil {
		return err
	}
	label, err := os.ReadFile(filepath.Join(vf.b1, "backup_label"))
	if err != nil {
		return err
	}
	var a, b uint32
	if _, err := fmt.Sscanf(string(label), "START WAL LOCATION: %X/%X", &a, &b); err != nil {
		return fmt.Errorf("parse backup_label %q: %w", label, err)
	}
	vf.b1Start = walname.LSN(uint64(a)<<32 | uint64(b))
	for i := 0; i < 4; i++ {
		if err := p1.Exec(ctx, `INSERT INTO t SELECT g, repeat('y', 300) FROM generate_series(1, 2000) g`); err != nil {
			return err
		}
		if i == 1 {
			vf.midLSN = lsnOf(t, p1, `SELECT pg_current_wal_insert_lsn()`)
		}
	}
	if _, err := lab.SwitchAndWait(ctx, p1); err != nil {
		return err
	}
	if err := vf.workload(ctx, t, p1); err != nil {
		return err
	}
	// Timeline 2 forks at rp1 by a real point-in-time recovery with promotion.
	fork, err := lab.Fork(ctx, vf.b1, "fork", "rp1")
	if err != nil {
		return err
	}
	if err := fork.Exec(ctx, `INSERT INTO t SELECT g, repeat('z', 300) FROM generate_series(1, 1000) g`); err != nil {
		return err
	}
	vf.tli2LSN = lsnOf(t, fork, `SELECT pg_current_wal_insert_lsn()`)
	x, err := vf.commit(ctx, t, fork, 2, "tli2 commit", `INSERT INTO t VALUES (-10, 'tli2 only')`)
	if err != nil {
		return err
	}
	vf.xTLI2 = x.xid
	if _, err := lab.SwitchAndWait(ctx, fork); err != nil {
		return err
	}
	if err := lab.WaitArchived(ctx, "00000002.history"); err != nil {
		return err
	}
	// Timeline 1 goes on after the fork point.
	if err := p1.Exec(ctx, `INSERT INTO t SELECT g, repeat('v', 300) FROM generate_series(1, 2000) g`); err != nil {
		return err
	}
	late, err := vf.commit(ctx, t, p1, 1, "late commit on timeline 1", `INSERT INTO t VALUES (-4, 'late tli1')`)
	if err != nil {
		return err
	}
	vf.xLate, vf.tLastCommit = late.xid, late.time
	vf.endLSN = lsnOf(t, p1, `SELECT pg_current_wal_insert_lsn()`) + 64<<20
	if _, err := lab.SwitchAndWait(ctx, p1); err != nil {
		return err
	}
	if err := fork.Stop(ctx); err != nil {
		return err
	}
	if err := p1.Stop(ctx); err != nil {
		return err
	}
	if vf.forkLSN, err = switchPoint(lab.Archive, 2); err != nil {
		return err
	}
	// The gap copy lacks a timeline-1 segment between the backup and the fork.
	gap := vf.midLSN.Segment(vf.segSize) + 1
	if gap >= vf.forkLSN.Segment(vf.segSize) {
		return fmt.Errorf("scenario too small for a gap: mid %s fork %s", vf.midLSN, vf.forkLSN)
	}
	vf.gapSeg = walname.SegmentName(1, gap, vf.segSize)
	vf.gapDir = filepath.Join(lab.Root, "archive-gap")
	if err := lab.User.MkdirAll(vf.gapDir, 0o755); err != nil {
		return err
	}
	if err := pgserver.CopyTree(lab.Archive, vf.gapDir, lab.User); err != nil {
		return err
	}
	return os.Remove(filepath.Join(vf.gapDir, vf.gapSeg))
}

// workload writes, on timeline 1 after the backup: commits, an abort, a
// prepared transaction committed and one rolled back, a subtransaction,
// restore points (one name used twice), a pg_switch_wal(), and rp1, where
// timeline 2 will fork, followed by a commit only timeline 1 has.
func (vf *verFixture) workload(ctx context.Context, t *testing.T, p *pgserver.Server) error {
	c, err := p.Connect(ctx, "")
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	insertLSN := func() (walname.LSN, error) {
		var s string
		if err := c.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&s); err != nil {
			return 0, err
		}
		return walname.ParseLSN(s)
	}
	run := func(qs ...string) error {
		for _, q := range qs {
			if _, err := c.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}
	xid := func() (uint32, error) {
		var x int64
		err := c.QueryRow(ctx, `SELECT txid_current()`).Scan(&x)
		return uint32(x), err
	}
	// end runs the statement that ends a transaction and records it.
	end := func(what string, kind wal.EventKind, x uint32, stmt string) error {
		v := verXact{what: what, xid: x, kind: kind, tli: 1}
		var err error
		if v.lsnBefore, err = insertLSN(); err != nil {
			return err
		}
		v.wallFrom = time.Now()
		if err := run(stmt); err != nil {
			return err
		}
		v.wallTo = time.Now()
		if v.lsnAfter, err = insertLSN(); err != nil {
			return err
		}
		if kind == wal.EventCommit || kind == wal.EventCommitPrepared {
			if v.time, err = commitTime(ctx, p, x); err != nil {
				return err
			}
		}
		vf.xacts = append(vf.xacts, v)
		return nil
	}
	begin := func(stmt string) (uint32, error) {
		if err := run(`BEGIN`, stmt); err != nil {
			return 0, err
		}
		return xid()
	}
	var x uint32
	if x, err = begin(`INSERT INTO t VALUES (-100, 'commit')`); err != nil {
		return err
	}
	if err := end("commit", wal.EventCommit, x, `COMMIT`); err != nil {
		return err
	}
	vf.xCommit, vf.tCommit = x, vf.xacts[len(vf.xacts)-1].time
	if vf.xAbort, err = begin(`INSERT INTO t VALUES (-101, 'abort')`); err != nil {
		return err
	}
	if err := end("abort", wal.EventAbort, vf.xAbort, `ROLLBACK`); err != nil {
		return err
	}
	if vf.xNext, err = begin(`INSERT INTO t VALUES (-102, 'next commit')`); err != nil {
		return err
	}
	if err := end("next commit", wal.EventCommit, vf.xNext, `COMMIT`); err != nil {
		return err
	}
	vf.tCommitNext = vf.xacts[len(vf.xacts)-1].time
	if vf.xCommitPrep, err = begin(`INSERT INTO t VALUES (-103, 'prepared commit')`); err != nil {
		return err
	}
	if err := run(`PREPARE TRANSACTION 'pc'`); err != nil {
		return err
	}
	if err := end("commit prepared", wal.EventCommitPrepared, vf.xCommitPrep, `COMMIT PREPARED 'pc'`); err != nil {
		return err
	}
	if vf.xAbortPrep, err = begin(`INSERT INTO t VALUES (-104, 'prepared abort')`); err != nil {
		return err
	}
	if err := run(`PREPARE TRANSACTION 'pa'`); err != nil {
		return err
	}
	if err := end("rollback prepared", wal.EventAbortPrepared, vf.xAbortPrep, `ROLLBACK PREPARED 'pa'`); err != nil {
		return err
	}
	// A subtransaction: its xid appears only inside the parent's commit.
	if x, err = begin(`INSERT INTO t VALUES (-105, 'parent')`); err != nil {
		return err
	}
	if err := run(`SAVEPOINT s`, `INSERT INTO t VALUES (-106, 'child')`); err != nil {
		return err
	}
	var sub int64
	if err := c.QueryRow(ctx, `SELECT xmin::text::bigint FROM t WHERE i = -106`).Scan(&sub); err != nil {
		return err
	}
	vf.xSub = uint32(sub)
	if err := end("commit with a subtransaction", wal.EventCommit, x, `COMMIT`); err != nil {
		return err
	}
	rp := func(name string) error {
		var s string
		if err := c.QueryRow(ctx, `SELECT pg_create_restore_point($1)::text`, name).Scan(&s); err != nil {
			return err
		}
		l, err := walname.ParseLSN(s)
		vf.rps = append(vf.rps, verRP{name: name, end: l})
		return err
	}
	if err := rp("dup"); err != nil {
		return err
	}
	if x, err = begin(`INSERT INTO t VALUES (-107, 'between dups')`); err != nil {
		return err
	}
	if err := end("commit between the dups", wal.EventCommit, x, `COMMIT`); err != nil {
		return err
	}
	if err := rp("dup"); err != nil {
		return err
	}
	// A switch in the middle of the workload.
	var sw string
	if err := c.QueryRow(ctx, `SELECT pg_switch_wal()::text`).Scan(&sw); err != nil {
		return err
	}
	if vf.switchAt, err = walname.ParseLSN(sw); err != nil {
		return err
	}
	if err := vf.lab.WaitArchived(ctx, walname.SegmentName(1, (vf.switchAt-1).Segment(vf.segSize), vf.segSize)); err != nil {
		return err
	}
	if err := run(`INSERT INTO t VALUES (-1, 'before rp')`); err != nil {
		return err
	}
	if err := rp("rp1"); err != nil {
		return err
	}
	if vf.xAfterRP, err = begin(`INSERT INTO t VALUES (-2, 'after rp')`); err != nil {
		return err
	}
	if err := end("commit after rp1", wal.EventCommit, vf.xAfterRP, `COMMIT`); err != nil {
		return err
	}
	_, err = vf.lab.SwitchAndWait(ctx, p)
	return err
}

// commit runs one committing transaction on s and records it.
func (vf *verFixture) commit(ctx context.Context, t *testing.T, s *pgserver.Server, tli walname.TimelineID, what string, stmts ...string) (verXact, error) {
	v := verXact{what: what, kind: wal.EventCommit, tli: tli}
	v.lsnBefore = lsnOf(t, s, `SELECT pg_current_wal_insert_lsn()`)
	v.wallFrom = time.Now()
	x, err := xact(ctx, s, stmts...)
	if err != nil {
		return v, err
	}
	v.wallTo = time.Now()
	v.lsnAfter = lsnOf(t, s, `SELECT pg_current_wal_insert_lsn()`)
	v.xid = x
	if v.time, err = commitTime(ctx, s, x); err != nil {
		return v, err
	}
	vf.xacts = append(vf.xacts, v)
	return v, nil
}

// verSource serves one timeline path's segments from an archive
// directory: timeline 1's segments before fork, tli's from fork on.
type verSource struct {
	dir  string
	tli  walname.TimelineID
	fork walname.SegNo
	sz   walname.SegmentSize
}

func (s verSource) OpenSegment(_ context.Context, seg walname.SegNo) (io.ReadCloser, string, error) {
	low := walname.TimelineID(1)
	if seg >= s.fork {
		low = s.tli
	}
	for tli := s.tli; tli >= low; tli-- {
		name := walname.SegmentName(tli, seg, s.sz)
		f, err := os.Open(filepath.Join(s.dir, name))
		if err == nil {
			return f, name, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, name, err
		}
	}
	name := walname.SegmentName(s.tli, seg, s.sz)
	return nil, name, fmt.Errorf("%s: %w", name, wal.ErrSegmentMissing)
}

// decode reads timeline tli's path through the archive with walaudit's WAL
// reader, from the first archived segment, and returns the events, the
// major version the reader found and why it stopped.
func (vf *verFixture) decode(tli walname.TimelineID) ([]wal.Event, int, error) {
	ents, err := os.ReadDir(vf.lab.Archive)
	if err != nil {
		return nil, 0, err
	}
	var first walname.SegNo = 1<<63 - 1
	for _, e := range ents {
		n, err := walname.Parse(e.Name())
		if err != nil || n.Kind != walname.KindSegment || n.TLI != 1 {
			continue
		}
		if seg, err := n.SegNo(vf.segSize); err == nil && seg < first {
			first = seg
		}
	}
	r, err := wal.NewReader(context.Background(), verSource{dir: vf.lab.Archive, tli: tli, fork: vf.forkLSN.Segment(vf.segSize), sz: vf.segSize}, vf.segSize.StartLSN(first), wal.Options{SegmentSize: vf.segSize})
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	var evs []wal.Event
	for r.Next() {
		ev, ok, err := wal.EventOf(r.Record(), 0)
		if err != nil {
			return evs, r.Major(), fmt.Errorf("decode %s record at %s: %w", wal.Describe(r.Record()), r.Record().StartLSN, err)
		}
		if ok {
			evs = append(evs, ev)
		}
	}
	return evs, r.Major(), r.Err()
}

// checkVersionEvents: walaudit's decoded events equal what the server did.
func checkVersionEvents(t *testing.T, vf *verFixture) {
	byTLI := map[walname.TimelineID][]wal.Event{}
	for _, tli := range []walname.TimelineID{1, 2} {
		evs, major, err := vf.decode(tli)
		if !wal.IsEndOfWAL(err) {
			t.Fatalf("timeline %d: reading stopped with %v, want a clean end of WAL", tli, err)
		}
		if major != vf.major {
			t.Fatalf("timeline %d: reader found PostgreSQL %d WAL, the server is %d", tli, major, vf.major)
		}
		byTLI[tli] = evs
	}
	for _, x := range vf.xacts {
		var hits []wal.Event
		for _, e := range byTLI[x.tli] {
			if e.Kind.IsXactEnd() && e.XID == x.xid {
				hits = append(hits, e)
			}
		}
		if len(hits) != 1 {
			t.Errorf("%s (xid %d): walaudit decoded %d transaction ends with that xid on timeline %d: %+v", x.what, x.xid, len(hits), x.tli, hits)
			continue
		}
		e := hits[0]
		if e.Kind != x.kind {
			t.Errorf("%s (xid %d): walaudit says %s, the workload did %s", x.what, x.xid, e.Kind, x.kind)
		}
		if e.LSN < x.lsnBefore || e.EndLSN > x.lsnAfter.Align() {
			t.Errorf("%s (xid %d): record %s..%s outside the insert positions %s..%s around the statement", x.what, x.xid, e.LSN, e.EndLSN, x.lsnBefore, x.lsnAfter)
		}
		if !x.time.IsZero() && !e.Time.Equal(x.time) {
			t.Errorf("%s (xid %d): walaudit time %s, pg_xact_commit_timestamp %s", x.what, x.xid, e.Time.UTC().Format(time.RFC3339Nano), x.time.Format(time.RFC3339Nano))
		}
		if x.time.IsZero() && (e.Time.Before(x.wallFrom.Add(-time.Second)) || e.Time.After(x.wallTo.Add(time.Second))) {
			t.Errorf("%s (xid %d): walaudit time %s, statement ran %s..%s", x.what, x.xid, e.Time, x.wallFrom, x.wallTo)
		}
	}
	// Restore points: each at the end pg_create_restore_point returned.
	for _, rp := range vf.rps {
		found := false
		for _, e := range byTLI[1] {
			if e.Kind == wal.EventRestorePoint && e.Name == rp.name && e.EndLSN.Align() == rp.end.Align() {
				found = true
			}
		}
		if !found {
			t.Errorf("restore point %q ending at %s not decoded on timeline 1", rp.name, rp.end)
		}
	}
	names := map[string]int{}
	for _, e := range byTLI[1] {
		if e.Kind == wal.EventRestorePoint {
			names[e.Name]++
		}
	}
	if names["dup"] != 2 || names["rp1"] != 1 {
		t.Errorf("restore points on timeline 1: %v, want dup twice and rp1 once", names)
	}
	// The switch: pg_switch_wal() returns the end of the switch record.
	found := false
	for _, e := range byTLI[1] {
		if e.Kind == wal.EventSwitch && e.LSN < vf.switchAt && vf.switchAt <= e.LSN+64 {
			found = true
		}
	}
	if !found {
		t.Errorf("no XLOG_SWITCH record just before %s, where pg_switch_wal() said it ended", vf.switchAt)
	}
	// The fork: an end-of-recovery record (or a checkpoint, before 13's
	// fast promotion) starts timeline 2 at the history's switch point.
	found = false
	for _, e := range byTLI[2] {
		if (e.Kind == wal.EventEndOfRecovery || e.Kind == wal.EventCheckpointShutdown) && e.TLI == 2 && e.PrevTLI == 1 && e.LSN >= vf.forkLSN && e.LSN < vf.forkLSN+64 {
			found = true
		}
	}
	if !found {
		t.Errorf("no end-of-recovery record for timeline 2 at the switch point %s", vf.forkLSN)
	}
	// The backup's end.
	found = false
	for _, e := range byTLI[1] {
		if e.Kind == wal.EventBackupEnd && e.BackupStart == vf.b1Start {
			found = true
		}
	}
	if !found {
		t.Errorf("no XLOG_BACKUP_END naming the backup's start %s", vf.b1Start)
	}
}

// checkVersionSegments: every archived segment validates on its own with
// the version's magic, and a check of the healthy archive finds no error.
func checkVersionSegments(t *testing.T, vf *verFixture) {
	ents, err := os.ReadDir(vf.lab.Archive)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if walname.IsSegmentName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) < 8 {
		t.Fatalf("only %d segments archived: %v", len(names), names)
	}
	for _, n := range names {
		f, err := os.Open(filepath.Join(vf.lab.Archive, n))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := wal.ScanSegment(f, n, wal.Options{})
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if sum.Magic != pageMagics[vf.major] || sum.Major != vf.major {
			t.Errorf("%s: magic %04X (PostgreSQL %d), want %04X (%d)", n, sum.Magic, sum.Major, pageMagics[vf.major], vf.major)
		}
		for _, p := range sum.Problems {
			t.Errorf("%s: %v", n, &p)
		}
		if sum.Stop != nil && !wal.IsEndOfWAL(sum.Stop) {
			t.Errorf("%s: scan stopped at %v", n, sum.Stop)
		}
		if sum.Records == 0 {
			t.Errorf("%s: no records", n)
		}
	}
	res, err := plan.Check(context.Background(), plan.Request{Archive: vf.lab.Archive, Backups: vf.lab.Backups, BackupID: "b1",
		Target: plan.Target{Kind: plan.TargetLatest}, Inclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range res.Findings {
		if fd.Severity == finding.Error {
			t.Errorf("error finding on a healthy PostgreSQL %d archive: %+v", vf.major, fd)
		}
	}
	if res.Verdict != plan.Reachable {
		t.Errorf("latest from b1: %s (%s)", res.Verdict, res.Reason)
	}
}

// runVersionOracle runs one target through walaudit and through a real
// recovery by the version's own server (the lab's binaries), as
// runOracle does for the PostgreSQL 15 fixture.
func runVersionOracle(t *testing.T, vf *verFixture, c oracleCase) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	archive := vf.lab.Archive
	if c.archive == "gap" {
		archive = vf.gapDir
	}
	tg, _, res := checkCase(ctx, t, archive, vf.lab.Backups, c)
	ans := res.Backups[0]
	settings := recoverySettings(c, tg)
	pg, log, err := vf.lab.Recover(ctx, vf.b1, archive, settings)
	if err != nil {
		t.Fatalf("real recovery by PostgreSQL %s: %v\n%s", vf.bin.Version, err, log)
	}
	pgOK := pg.State != pgserver.RecoveryFailed
	summary := fmt.Sprintf("PostgreSQL %s, target %s inclusive=%v timeline=%q archive=%q: walaudit %s (%s) stop=%v end_of_wal=%s; PostgreSQL %s replay=%s %q %v",
		vf.bin.Version, c.target, c.inclusive, c.timeline, c.archive, ans.Verdict, ans.Reason, stopLSN(ans.Stop), ans.EndOfWAL, pg.State, pg.ReplayLSN, pg.StopLine, pg.FatalLines)
	t.Log(summary)
	if testing.Verbose() {
		t.Log(tail(log))
	}
	if c.stricter {
		if ans.Verdict != plan.Unreachable {
			t.Fatalf("DISAGREEMENT %s: want unreachable (stricter than PostgreSQL)", summary)
		}
		if !pgOK {
			t.Fatalf("DISAGREEMENT %s: PostgreSQL failed where walaudit expected it to end quietly\n%s", summary, tail(log))
		}
		if ans.EndOfWAL != pg.ReplayLSN {
			t.Fatalf("DISAGREEMENT %s: walaudit says recovery really ends at %s, PostgreSQL ended at %s", summary, ans.EndOfWAL, pg.ReplayLSN)
		}
		if len(res.Missing) == 0 || res.Missing[0] != vf.gapSeg {
			t.Fatalf("missing = %v, want %s first", res.Missing, vf.gapSeg)
		}
		return
	}
	if (ans.Verdict == plan.Reachable) != pgOK {
		t.Fatalf("DISAGREEMENT %s\n%s", summary, tail(log))
	}
	if pgOK {
		if pg.StopLine != "" && ans.Stop != nil && !sameStopKind(ans.Stop.Reason, pg.StopLine) {
			t.Fatalf("DISAGREEMENT (stop kind) %s: walaudit %q", summary, ans.Stop.Reason)
		}
		if ans.Stop == nil || ans.Stop.LSN != pg.ReplayLSN {
			t.Fatalf("DISAGREEMENT (stop LSN) %s", summary)
		}
		if res.Verdict != plan.Reachable || res.Stop == nil || res.Stop.LSN != pg.ReplayLSN {
			t.Fatalf("overall result %s / %v disagrees with the backup's answer", res.Verdict, res.Stop)
		}
	}
	if !pgOK && !strings.Contains(strings.Join(pg.FatalLines, "\n"), "FATAL") {
		t.Fatalf("PostgreSQL failed without a FATAL line: %s", summary)
	}
}
