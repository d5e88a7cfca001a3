package wal_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/audit/wal/waldump"
	"github.com/walaudit/walaudit/walname"
)

// Real PostgreSQL 15 WAL made by testdata/gen.sh: 1 MiB segments on
// timeline 1, and pg_waldump's output for them in testdata/waldump.txt.

type realSeg struct {
	name string
	seg  walname.SegNo
	data []byte
}

var loadReal = sync.OnceValues(func() ([]realSeg, error) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.gz"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no fixtures in testdata: %v", err)
	}
	sort.Strings(paths)
	var out []realSeg
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".gz")
		n, err := walname.Parse(name)
		if err != nil {
			return nil, err
		}
		seg, err := n.SegNo(walname.MinSegmentSize)
		if err != nil {
			return nil, err
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		data, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, realSeg{name, seg, data})
	}
	return out, nil
})

func realSegments(t testing.TB) []realSeg {
	t.Helper()
	segs, err := loadReal()
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

func realSource(t testing.TB) *memSource {
	src := &memSource{tli: 1, size: walname.MinSegmentSize, segs: map[walname.SegNo][]byte{}}
	for _, s := range realSegments(t) {
		src.segs[s.seg] = s.data
	}
	return src
}

// dumpLine is one record as pg_waldump printed it.
type dumpLine struct {
	rmgr           string
	recLen, totLen int
	xid            uint32
	lsn, prev      walname.LSN
	desc           string
}

func loadDump(t *testing.T) []dumpLine {
	t.Helper()
	lines, err := waldump.ParseFile(filepath.Join("testdata", "waldump.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]dumpLine, len(lines))
	for i, l := range lines {
		out[i] = dumpLine{rmgr: l.Rmgr, recLen: l.RecLen, totLen: l.TotLen, xid: l.XID, lsn: l.LSN, prev: l.Prev, desc: l.Desc}
	}
	return out
}

// pgTimeRE finds pg_waldump's timestamps ("2026-11-21 01:59:09.16282 UTC").
var pgTimeRE = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? UTC`)

func parsePGTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04:05.999999", strings.TrimSuffix(s, " UTC"), time.UTC)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return v
}

type realRec struct {
	got
	imageBytes int
	event      *wal.Event
	xact       *wal.XactEnd
}

func readReal(t *testing.T) ([]realRec, *wal.Reader) {
	t.Helper()
	src := realSource(t)
	first := realSegments(t)[0].seg
	r, err := wal.NewReader(t.Context(), src, walname.MinSegmentSize.StartLSN(first), wal.Options{SegmentSize: walname.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []realRec
	for r.Next() {
		rec := r.Record()
		rr := realRec{got: copyRec(rec), imageBytes: rec.ImageBytes()}
		ev, ok, err := wal.EventOf(rec, r.Major())
		if err != nil {
			t.Errorf("record at %s: %v", rec.StartLSN, err)
		} else if ok {
			rr.event = &ev
		}
		if rec.RmID == wal.RmXact {
			switch rec.Info & wal.XactOpMask {
			case wal.XactOpCommit, wal.XactOpAbort, wal.XactOpCommitPrepared, wal.XactOpAbortPrepared:
				x, err := wal.DecodeXactEnd(rec.Info, rec.MainData, r.Major())
				if err != nil {
					t.Errorf("record at %s: %v", rec.StartLSN, err)
				}
				rr.xact = &x
			}
		}
		out = append(out, rr)
	}
	return out, r
}

// TestRealWALMatchesPGWaldump reads every archived segment with one Reader
// and compares each record with pg_waldump's line for it.
func TestRealWALMatchesPGWaldump(t *testing.T) {
	dump := loadDump(t)
	recs, r := readReal(t)
	segs := realSegments(t)
	lastSeg := segs[len(segs)-1].seg

	// The archive ends after the last segment: a clean end of WAL.
	if !errors.Is(r.Err(), wal.ErrSegmentMissing) || !wal.IsEndOfWAL(r.Err()) {
		t.Errorf("reading ended with %v, want a missing segment", r.Err())
	}
	if want := walname.MinSegmentSize.StartLSN(lastSeg + 1); r.EndOfWAL() != want {
		t.Errorf("EndOfWAL %s, want %s (the last segment ends in a switch)", r.EndOfWAL(), want)
	}
	if r.Major() != 15 || r.SystemID() == 0 {
		t.Errorf("major %d, system id %d", r.Major(), r.SystemID())
	}
	if len(recs) != len(dump) {
		t.Fatalf("read %d records, pg_waldump printed %d", len(recs), len(dump))
	}
	for i, d := range dump {
		g := recs[i]
		if g.Start != d.lsn || g.Prev != d.prev || g.RmID.String() != d.rmgr || g.XID != d.xid ||
			int(g.TotLen) != d.totLen || int(g.TotLen)-g.imageBytes != d.recLen {
			t.Errorf("record %d: got lsn %s prev %s %s xid %d len %d/%d\npg_waldump: %+v",
				i, g.Start, g.Prev, g.RmID, g.XID, int(g.TotLen)-g.imageBytes, g.TotLen, d)
			continue
		}
		if i+1 < len(dump) {
			next := dump[i+1].lsn
			if g.End != next && !(uint64(g.End)%8192 == 0 && (next == g.End+24 || next == g.End+40)) {
				t.Errorf("record %d at %s ends at %s, next record at %s", i, g.Start, g.End, next)
			}
		}
		checkDesc(t, i, g, d)
	}
}

// checkDesc compares the decoded payload with what pg_waldump's
// description says.
func checkDesc(t *testing.T, i int, g realRec, d dumpLine) {
	t.Helper()
	op, rest, _ := strings.Cut(d.desc, " ")
	ev := g.event
	want := map[string]wal.EventKind{
		"COMMIT": wal.EventCommit, "ABORT": wal.EventAbort, "COMMIT_PREPARED": wal.EventCommitPrepared,
		"ABORT_PREPARED": wal.EventAbortPrepared, "PREPARE": wal.EventPrepare, "RESTORE_POINT": wal.EventRestorePoint,
		"CHECKPOINT_SHUTDOWN": wal.EventCheckpointShutdown, "CHECKPOINT_ONLINE": wal.EventCheckpointOnline,
		"SWITCH": wal.EventSwitch, "BACKUP_END": wal.EventBackupEnd, "PARAMETER_CHANGE": wal.EventParameterChange,
	}
	kind, isEvent := want[op]
	if d.rmgr != "XLOG" && d.rmgr != "Transaction" {
		isEvent = false
	}
	if !isEvent {
		if ev != nil {
			t.Errorf("record %d (%s %s) decoded as event %s", i, d.rmgr, op, ev.Kind)
		}
		return
	}
	if ev == nil || ev.Kind != kind {
		t.Errorf("record %d (%s): event %+v, want %s", i, d.desc, ev, kind)
		return
	}
	if ev.LSN != g.Start || ev.EndLSN != g.End {
		t.Errorf("record %d: event at %s..%s, record %s..%s", i, ev.LSN, ev.EndLSN, g.Start, g.End)
	}
	if ts := pgTimeRE.FindString(d.desc); ts != "" && !ev.Time.Equal(parsePGTime(t, ts)) {
		t.Errorf("record %d (%s): time %s", i, d.desc, ev.Time.Format(time.RFC3339Nano))
	}
	switch kind {
	case wal.EventCommit, wal.EventAbort:
		if ev.XID != d.xid {
			t.Errorf("record %d: event xid %d, tx %d", i, ev.XID, d.xid)
		}
		checkXactParts(t, i, g.xact, d.desc)
	case wal.EventCommitPrepared, wal.EventAbortPrepared:
		// "COMMIT_PREPARED 731: <time>": the prepared xid, not tx (0).
		x, _ := strconv.ParseUint(strings.TrimSuffix(strings.Fields(rest)[0], ":"), 10, 32)
		if ev.XID != uint32(x) || d.xid != 0 || ev.Name == "" {
			t.Errorf("record %d (%s): xid %d gid %q", i, d.desc, ev.XID, ev.Name)
		}
		checkXactParts(t, i, g.xact, d.desc)
	case wal.EventPrepare:
		// "PREPARE gid gid_commit: <time>"
		gid := strings.TrimSuffix(strings.Fields(rest)[1], ":")
		if ev.Name != gid || ev.XID != d.xid {
			t.Errorf("record %d (%s): gid %q xid %d", i, d.desc, ev.Name, ev.XID)
		}
	case wal.EventRestorePoint:
		if ev.Name != rest {
			t.Errorf("record %d: restore point %q, pg_waldump %q", i, ev.Name, rest)
		}
	case wal.EventCheckpointShutdown, wal.EventCheckpointOnline:
		// "redo 0/600370; tli 1; prev tli 1; ..."
		want := fmt.Sprintf("redo %s; tli %d; prev tli %d;", ev.Redo, ev.TLI, ev.PrevTLI)
		if !strings.HasPrefix(rest, want) {
			t.Errorf("record %d: %q does not start with %q", i, rest, want)
		}
	case wal.EventBackupEnd:
		if ev.BackupStart.String() != rest {
			t.Errorf("record %d: backup start %s, pg_waldump %q", i, ev.BackupStart, rest)
		}
	case wal.EventSwitch:
		if ev.EndLSN.Offset(walname.MinSegmentSize) != 0 || ev.EndLSN <= ev.LSN {
			t.Errorf("record %d: switch ends at %s, not at the next segment", i, ev.EndLSN)
		}
	case wal.EventParameterChange:
		p := ev.Params
		want := fmt.Sprintf("max_connections=%d max_worker_processes=%d max_wal_senders=%d max_prepared_xacts=%d max_locks_per_xact=%d wal_level=%s",
			p.MaxConnections, p.MaxWorkerProcesses, p.MaxWalSenders, p.MaxPreparedXacts, p.MaxLocksPerXact, wal.WalLevelName(p.WalLevel))
		if !strings.HasPrefix(rest, want) {
			t.Errorf("record %d: %q does not start with %q", i, rest, want)
		}
	}
}

// checkXactParts compares subxacts, dropped relations and dropped stats
// with the description ("...; rels: base/5/16389; dropped stats: 2/5/16389;
// ...; subxacts: 729 730").
func checkXactParts(t *testing.T, i int, x *wal.XactEnd, desc string) {
	t.Helper()
	if x == nil {
		t.Errorf("record %d: not decoded", i)
		return
	}
	var rels, stats, subs []string
	for _, part := range strings.Split(desc, "; ") {
		k, v, _ := strings.Cut(part, ": ")
		switch k {
		case "rels":
			rels = strings.Fields(v)
		case "dropped stats":
			stats = strings.Fields(v)
		case "subxacts":
			subs = strings.Fields(v)
		}
	}
	var gotRels, gotStats, gotSubs []string
	for _, r := range x.Rels {
		gotRels = append(gotRels, fmt.Sprintf("base/%d/%d", r.DB, r.Rel)) // default tablespace only in the fixture
	}
	for _, s := range x.DroppedStats {
		gotStats = append(gotStats, fmt.Sprintf("%d/%d/%d", s.Kind, s.DBOID, s.ObjID))
	}
	for _, s := range x.Subxacts {
		gotSubs = append(gotSubs, strconv.FormatUint(uint64(s), 10))
	}
	if fmt.Sprint(rels) != fmt.Sprint(gotRels) || fmt.Sprint(stats) != fmt.Sprint(gotStats) || fmt.Sprint(subs) != fmt.Sprint(gotSubs) {
		t.Errorf("record %d: rels %v stats %v subxacts %v; pg_waldump %q", i, gotRels, gotStats, gotSubs, desc)
	}
}

// TestRealWALCoverage makes sure the fixtures still contain what the other
// tests rely on, should gen.sh be run again.
func TestRealWALCoverage(t *testing.T) {
	recs, _ := readReal(t)
	var pageSpan, segSpan, subxacts, drop, gid, rp bool
	kinds := map[wal.EventKind]int{}
	for _, r := range recs {
		if r.Start/8192 != (r.End-1)/8192 {
			pageSpan = true
		}
		if r.Start.Segment(walname.MinSegmentSize) != (r.End - 1).Segment(walname.MinSegmentSize) {
			segSpan = true
		}
		if r.event != nil {
			kinds[r.event.Kind]++
			gid = gid || (r.event.Kind == wal.EventCommitPrepared && r.event.Name != "")
			rp = rp || (r.event.Kind == wal.EventRestorePoint && r.event.Name == "rp1")
		}
		if r.xact != nil {
			subxacts = subxacts || len(r.xact.Subxacts) > 0
			drop = drop || (len(r.xact.Rels) > 0 && len(r.xact.DroppedStats) > 0)
		}
	}
	for _, k := range []wal.EventKind{wal.EventCommit, wal.EventAbort, wal.EventCommitPrepared, wal.EventAbortPrepared, wal.EventPrepare,
		wal.EventRestorePoint, wal.EventCheckpointOnline, wal.EventCheckpointShutdown, wal.EventSwitch, wal.EventBackupEnd, wal.EventParameterChange} {
		if kinds[k] == 0 {
			t.Errorf("no %s event in the fixtures", k)
		}
	}
	if !pageSpan || !segSpan || !subxacts || !drop || !gid || !rp {
		t.Errorf("fixture coverage: page-spanning %v, segment-spanning %v, subxacts %v, drop table %v, gid %v, rp1 %v",
			pageSpan, segSpan, subxacts, drop, gid, rp)
	}
}

// TestRealScanSegments scans each real segment on its own and checks that
// the pieces add up to what the Reader saw.
func TestRealScanSegments(t *testing.T) {
	recs, _ := readReal(t)
	var events []wal.Event
	for _, r := range recs {
		if r.event != nil {
			events = append(events, *r.event)
		}
	}
	segs := realSegments(t)
	total := 0
	var scanned []wal.Event
	for i, s := range segs {
		sum, err := wal.ScanSegment(bytes.NewReader(s.data), s.name, wal.Options{SegmentSize: walname.MinSegmentSize})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if sum.Stop != nil || len(sum.Problems) != 0 {
			t.Errorf("%s: stop %v, problems %v", s.name, sum.Stop, sum.Problems)
		}
		if sum.Major != 15 || sum.TLI != 1 || sum.SegNo != s.seg || sum.Size != 1<<20 || sum.PageSize != 8192 {
			t.Errorf("%s: identity %+v", s.name, sum)
		}
		n := 0
		for _, c := range sum.RecordsByRmgr {
			n += c
		}
		if n != sum.Records {
			t.Errorf("%s: per-rmgr counts add up to %d, not %d", s.name, n, sum.Records)
		}
		total += sum.Records
		if sum.ContinuesIntoNext && sum.PartialRecord != 0 {
			total++ // counted once, where it starts
		}
		scanned = append(scanned, sum.Events...)
		// Every segment but the first follows on from the previous one.
		if i > 0 && sum.ContinuedFrom != segsContinue(t, segs[i-1]) {
			t.Errorf("%s: ContinuedFrom %v disagrees with the previous segment", s.name, sum.ContinuedFrom)
		}
	}
	if total != len(recs) {
		t.Errorf("segments hold %d records, the reader read %d", total, len(recs))
	}
	// Events of records that span segments are not seen by a scan (the
	// 2 MB logical message is no event), so the lists must agree.
	if a, b := eventsText(scanned), eventsText(events); a != b {
		t.Errorf("scan events differ from reader events:\n%s\n%s", a, b)
	}
	last := segs[len(segs)-1]
	sum, _ := wal.ScanSegment(bytes.NewReader(last.data), last.name, wal.Options{})
	if !sum.Switch || sum.End != walname.MinSegmentSize.StartLSN(last.seg+1) {
		t.Errorf("last segment: switch %v, end %s", sum.Switch, sum.End)
	}
}

func eventsText(evs []wal.Event) string {
	var b strings.Builder
	for _, e := range evs {
		p := e.Params
		e.Params = nil
		fmt.Fprintf(&b, "%+v", e)
		if p != nil {
			fmt.Fprintf(&b, " params %+v", *p)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func segsContinue(t *testing.T, s realSeg) bool {
	sum, err := wal.ScanSegment(bytes.NewReader(s.data), s.name, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return sum.ContinuesIntoNext
}

// TestRealCorruption damages a real segment the way storage does and
// checks what the reader makes of it.
func TestRealCorruption(t *testing.T) {
	segs := realSegments(t)
	first := segs[0]
	dump := loadDump(t)
	// A record in the middle of the first segment.
	target := dump[len(dump)/4]
	if target.lsn.Segment(walname.MinSegmentSize) != first.seg {
		t.Skip("fixture layout changed")
	}
	off := target.lsn.Offset(walname.MinSegmentSize)
	data := bytes.Clone(first.data)
	data[off+uint64(target.totLen)-1] ^= 0x20
	sum, err := wal.ScanSegment(bytes.NewReader(data), first.name, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Stop == nil || !errors.Is(sum.Stop, wal.ErrChecksum) || sum.Stop.LSN != target.lsn || sum.End != target.lsn ||
		sum.Stop.File != first.name || sum.Stop.Offset != int64(off) {
		t.Errorf("flipped bit in %s: stop %v, end %s", target.lsn, sum.Stop, sum.End)
	}
}
