package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/wal/waldump"
	"github.com/walaudit/walaudit/walname"
)

// The real PostgreSQL 15 segments of audit/wal/testdata (1 MiB segments,
// 8 KiB pages, timeline 1) and pg_waldump's output for them.
const (
	walTestdata = "../../audit/wal/testdata"
	fixSegSize  = 1 << 20
	fixPageSize = 8192
)

type goldenRec struct {
	rmgr           string
	recLen, totLen int
	xid            uint32
	lsn            walname.LSN
	desc           string
}

// pgTimeRE finds pg_waldump's timestamps ("2026-11-21 01:59:09.16282 UTC").
var pgTimeRE = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? UTC`)

// jsonTimeRE is what inspect prints: RFC 3339, UTC, microseconds.
var jsonTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func loadGolden(t *testing.T) []goldenRec {
	t.Helper()
	lines, err := waldump.ParseFile(filepath.Join(walTestdata, "waldump.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]goldenRec, len(lines))
	for i, l := range lines {
		out[i] = goldenRec{rmgr: l.Rmgr, recLen: l.RecLen, totLen: l.TotLen, xid: l.XID, lsn: l.LSN, desc: l.Desc}
	}
	return out
}

// recordEnd is where a record of totLen bytes starting at lsn ends, page
// headers included.
func recordEnd(lsn walname.LSN, totLen int) uint64 {
	pos, rem := uint64(lsn), uint64(totLen)
	for {
		pageEnd := (pos/fixPageSize + 1) * fixPageSize
		if rem <= pageEnd-pos {
			return pos + rem
		}
		rem -= pageEnd - pos
		hdr := uint64(24)
		if pageEnd%fixSegSize == 0 {
			hdr = 40
		}
		pos = pageEnd + hdr
	}
}

// inSegment returns pg_waldump's records that start in segment seg and end
// in it too: those a scan of that one file can decode.
func inSegment(golden []goldenRec, seg uint64) []goldenRec {
	var out []goldenRec
	for _, g := range golden {
		if uint64(g.lsn)/fixSegSize == seg && recordEnd(g.lsn, g.totLen) <= (seg+1)*fixSegSize {
			out = append(out, g)
		}
	}
	return out
}

type walFix struct {
	dir   string
	names []string // segment file names, in order
}

// walFixture gunzips the real segments into a temporary directory.
func walFixture(t *testing.T) *walFix {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(walTestdata, "*.gz"))
	if err != nil || len(paths) < 2 {
		t.Fatalf("fixtures in %s: %v (%d files)", walTestdata, err, len(paths))
	}
	sort.Strings(paths)
	fx := &walFix{dir: t.TempDir()}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".gz")
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(data) != fixSegSize {
			t.Fatalf("%s: %d bytes, want %d", p, len(data), fixSegSize)
		}
		if err := os.WriteFile(filepath.Join(fx.dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		fx.names = append(fx.names, name)
	}
	return fx
}

func (fx *walFix) path(name string) string { return filepath.Join(fx.dir, name) }

func (fx *walFix) read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fx.path(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// damaged writes a modified copy of a fixture segment under name in a
// directory of its own, and returns its path.
func (fx *walFix) damaged(t *testing.T, src, name string, modify func([]byte) []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, modify(bytes.Clone(fx.read(t, src))), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func segOf(t *testing.T, name string) uint64 {
	t.Helper()
	n, err := walname.Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := n.SegNo(fixSegSize)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(s)
}

type inspectXact struct {
	XID      uint32 `json:"xid"`
	Time     string `json:"time"`
	LSN      string `json:"lsn"`
	Prepared bool   `json:"prepared"`
}

type inspectOut struct {
	File             string         `json:"file"`
	Compression      string         `json:"compression"`
	Size             int64          `json:"size"`
	Segment          string         `json:"segment"`
	Timeline         int            `json:"timeline"`
	SegmentSize      int            `json:"segment_size"`
	PGMajor          int            `json:"pg_major"`
	PageMagic        string         `json:"page_magic"`
	SystemIdentifier string         `json:"system_identifier"`
	FirstLSN         *string        `json:"first_lsn"`
	LastLSN          *string        `json:"last_lsn"`
	EndLSN           *string        `json:"end_lsn"`
	EndsWithSwitch   bool           `json:"ends_with_switch"`
	Records          int            `json:"records"`
	RecordsByRmgr    map[string]int `json:"records_by_rmgr"`
	Commits          []inspectXact  `json:"commits"`
	Aborts           []inspectXact  `json:"aborts"`
	RestorePoints    []struct {
		Name string `json:"name"`
		Time string `json:"time"`
		LSN  string `json:"lsn"`
	} `json:"restore_points"`
	Findings   []finding.Finding `json:"findings"`
	RecordList []struct {
		LSN    string `json:"lsn"`
		Rmgr   string `json:"rmgr"`
		Len    int    `json:"len"`
		RecLen int    `json:"rec_len"`
		XID    uint32 `json:"xid"`
	} `json:"record_list"`
	Error string `json:"error"`
}

func inspectJSON(t *testing.T, wantCode int, args ...string) []inspectOut {
	t.Helper()
	stdout, stderr, code := run(t, append([]string{"inspect", "--format", "json"}, args...)...)
	if code != wantCode {
		t.Fatalf("inspect %v: exit %d, want %d\nstderr: %s\nstdout: %s", args, code, wantCode, stderr, stdout)
	}
	var out []inspectOut
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("inspect %v: output is not one JSON array: %v\n%s", args, err, stdout)
	}
	return out
}

func findCode(fs []finding.Finding, code string) *finding.Finding {
	for i := range fs {
		if fs[i].Code == code {
			return &fs[i]
		}
	}
	return nil
}

func parsePGTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04:05.999999", strings.TrimSuffix(s, " UTC"), time.UTC)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return v
}

// wantXacts lists the commits (or aborts) pg_waldump printed among recs.
func wantXacts(t *testing.T, recs []goldenRec, commit bool) []inspectXact {
	t.Helper()
	plain, prepared := "COMMIT", "COMMIT_PREPARED"
	if !commit {
		plain, prepared = "ABORT", "ABORT_PREPARED"
	}
	var out []inspectXact
	for _, g := range recs {
		if g.rmgr != "Transaction" {
			continue
		}
		op, rest, _ := strings.Cut(g.desc, " ")
		x := inspectXact{LSN: g.lsn.String()}
		switch op {
		case plain:
			x.XID = g.xid
		case prepared:
			// "COMMIT_PREPARED 731: <time>": the prepared xid (tx is 0).
			v, err := strconv.ParseUint(strings.TrimSuffix(strings.Fields(rest)[0], ":"), 10, 32)
			if err != nil {
				t.Fatalf("pg_waldump %q: %v", g.desc, err)
			}
			x.XID, x.Prepared = uint32(v), true
		default:
			continue
		}
		ts := pgTimeRE.FindString(g.desc)
		if ts == "" {
			t.Fatalf("no time in %q", g.desc)
		}
		x.Time = parsePGTime(t, ts).Format(time.RFC3339Nano)
		out = append(out, x)
	}
	return out
}

func normXacts(t *testing.T, xs []inspectXact) []inspectXact {
	t.Helper()
	out := make([]inspectXact, len(xs))
	for i, x := range xs {
		if !jsonTimeRE.MatchString(x.Time) {
			t.Errorf("time %q is not RFC 3339 UTC with microseconds", x.Time)
		}
		v, err := time.Parse(time.RFC3339Nano, x.Time)
		if err != nil {
			t.Fatal(err)
		}
		x.Time = v.Format(time.RFC3339Nano)
		out[i] = x
	}
	return out
}

// TestInspectJSONMatchesPGWaldump inspects every real segment (given in
// reverse order) and compares each file's object with pg_waldump.
func TestInspectJSONMatchesPGWaldump(t *testing.T) {
	fx := walFixture(t)
	golden := loadGolden(t)
	var args []string
	for i := len(fx.names) - 1; i >= 0; i-- {
		args = append(args, fx.path(fx.names[i]))
	}
	out := inspectJSON(t, 0, args...)
	if len(out) != len(args) {
		t.Fatalf("%d objects for %d files", len(out), len(args))
	}
	total, commits, prepared, aborts, rps := 0, 0, 0, 0, 0
	sysID := out[0].SystemIdentifier
	for i, o := range out {
		if o.File != args[i] {
			t.Errorf("object %d is %s, want %s: files must be printed in the order given", i, o.File, args[i])
			continue
		}
		name := filepath.Base(o.File)
		seg := segOf(t, name)
		want := inSegment(golden, seg)
		if o.Records != len(want) {
			t.Errorf("%s: %d records, pg_waldump printed %d that start and end in it", name, o.Records, len(want))
		}
		total += o.Records
		byRmgr := map[string]int{}
		for _, g := range want {
			byRmgr[g.rmgr]++
		}
		if fmt.Sprint(o.RecordsByRmgr) != fmt.Sprint(byRmgr) {
			t.Errorf("%s: records_by_rmgr %v, pg_waldump %v", name, o.RecordsByRmgr, byRmgr)
		}
		if len(want) > 0 {
			if o.FirstLSN == nil || *o.FirstLSN != want[0].lsn.String() || o.LastLSN == nil || *o.LastLSN != want[len(want)-1].lsn.String() {
				t.Errorf("%s: first %v last %v, want %s and %s", name, o.FirstLSN, o.LastLSN, want[0].lsn, want[len(want)-1].lsn)
			}
		} else if o.FirstLSN != nil || o.LastLSN != nil {
			t.Errorf("%s: no records, but first %v last %v", name, o.FirstLSN, o.LastLSN)
		}
		if got, w := normXacts(t, o.Commits), wantXacts(t, want, true); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s: commits\n got %v\nwant %v", name, got, w)
		}
		if got, w := normXacts(t, o.Aborts), wantXacts(t, want, false); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s: aborts\n got %v\nwant %v", name, got, w)
		}
		commits += len(o.Commits)
		aborts += len(o.Aborts)
		for _, c := range o.Commits {
			if c.Prepared {
				prepared++
			}
		}
		for _, g := range want {
			if g.rmgr == "XLOG" && strings.HasPrefix(g.desc, "RESTORE_POINT ") {
				rps++
				name := strings.TrimPrefix(g.desc, "RESTORE_POINT ")
				if len(o.RestorePoints) == 0 || o.RestorePoints[0].Name != name || o.RestorePoints[0].LSN != g.lsn.String() ||
					!jsonTimeRE.MatchString(o.RestorePoints[0].Time) {
					t.Errorf("%s: restore points %+v, want %q at %s", name, o.RestorePoints, name, g.lsn)
				}
			}
		}
		if o.SystemIdentifier == "" || o.SystemIdentifier != sysID {
			t.Errorf("%s: system identifier %q, first file %q", name, o.SystemIdentifier, sysID)
		}
		if o.PGMajor != 15 || o.PageMagic != "D110" || o.Timeline != 1 || o.SegmentSize != fixSegSize || o.Size != fixSegSize || o.Segment != name {
			t.Errorf("%s: identity %+v", name, o)
		}
		if len(o.Findings) != 0 || o.Error != "" {
			t.Errorf("%s: findings %v, error %q", name, o.Findings, o.Error)
		}
	}
	// Records crossing into the next file are decoded by neither file.
	spanning := 0
	for _, g := range golden {
		seg := uint64(g.lsn) / fixSegSize
		if recordEnd(g.lsn, g.totLen) > (seg+1)*fixSegSize {
			spanning++
		}
	}
	if total+spanning != len(golden) {
		t.Errorf("files hold %d records and %d span files; pg_waldump printed %d", total, spanning, len(golden))
	}
	// The fixtures must keep what the comparisons above rely on.
	if commits < 5 || prepared == 0 || aborts == 0 || rps == 0 {
		t.Errorf("fixture coverage: %d commits (%d prepared), %d aborts, %d restore points", commits, prepared, aborts, rps)
	}
	last := out[0] // the newest segment, given first
	if !last.EndsWithSwitch || last.EndLSN == nil || *last.EndLSN != walname.LSN((segOf(t, filepath.Base(last.File))+1)*fixSegSize).String() {
		t.Errorf("%s: ends_with_switch %v, end_lsn %v", last.File, last.EndsWithSwitch, last.EndLSN)
	}
}

var recordLineRE = regexp.MustCompile(`^    ([0-9A-F]+/[0-9A-F]+)\s+(\S+)\s+(\d+)/(\d+)\s+(\d+)\s`)

// TestInspectRecordsMatchPGWaldump lists the records of every segment,
// as a table and in JSON, and compares them with pg_waldump's lines.
func TestInspectRecordsMatchPGWaldump(t *testing.T) {
	fx := walFixture(t)
	golden := loadGolden(t)
	var args []string
	for _, n := range fx.names {
		args = append(args, fx.path(n))
	}
	stdout, stderr, code := run(t, append([]string{"inspect", "--records"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := map[string][]string{}
	file := ""
	for _, l := range strings.Split(stdout, "\n") {
		if l != "" && !strings.HasPrefix(l, " ") {
			file = l
		}
		if m := recordLineRE.FindStringSubmatch(l); m != nil {
			lines[file] = append(lines[file], fmt.Sprintf("%s %s %s/%s %s", m[1], m[2], m[3], m[4], m[5]))
		}
	}
	jsonOut := inspectJSON(t, 0, append([]string{"--records"}, args...)...)
	n := 0
	for i, p := range args {
		want := inSegment(golden, segOf(t, filepath.Base(p)))
		var w []string
		for _, g := range want {
			w = append(w, fmt.Sprintf("%s %s %d/%d %d", g.lsn, g.rmgr, g.recLen, g.totLen, g.xid))
		}
		if len(lines[p]) != len(want) {
			t.Errorf("%s: %d record lines, want %d", p, len(lines[p]), len(want))
		}
		if strings.Join(lines[p], "\n") != strings.Join(w, "\n") {
			t.Errorf("%s: record lines differ from pg_waldump", p)
		}
		var j []string
		for _, r := range jsonOut[i].RecordList {
			j = append(j, fmt.Sprintf("%s %s %d/%d %d", r.LSN, r.Rmgr, r.RecLen, r.Len, r.XID))
		}
		if jsonOut[i].Records != len(j) || strings.Join(j, "\n") != strings.Join(w, "\n") {
			t.Errorf("%s: JSON record_list (%d, records %d) differs from pg_waldump (%d)", p, len(j), jsonOut[i].Records, len(w))
		}
		n += len(lines[p])
	}
	if n == 0 {
		t.Fatal("no record lines at all")
	}
}

// pickRecord returns a record in the middle of pg_waldump's list for
// segment seg that lies within one page and is at least min bytes long.
func pickRecord(t *testing.T, golden []goldenRec, seg uint64, min int) (goldenRec, int) {
	t.Helper()
	recs := inSegment(golden, seg)
	for i := len(recs) / 2; i < len(recs); i++ {
		g := recs[i]
		if g.totLen >= min && uint64(g.lsn)/fixPageSize == (recordEnd(g.lsn, g.totLen)-1)/fixPageSize {
			return g, i
		}
	}
	t.Fatal("no suitable record in the fixture")
	return goldenRec{}, 0
}

func TestInspectCRCMismatch(t *testing.T) {
	fx := walFixture(t)
	golden := loadGolden(t)
	name := fx.names[0]
	seg := segOf(t, name)
	target, idx := pickRecord(t, golden, seg, 64)
	off := int64(uint64(target.lsn) % fixSegSize)
	p := fx.damaged(t, name, name, func(b []byte) []byte {
		b[off+int64(target.totLen)/2] ^= 0x20 // past the 24-byte header
		return b
	})
	out := inspectJSON(t, 1, fx.path(fx.names[1]), p)
	o := out[1]
	f := findCode(o.Findings, audit.CodeCRCMismatch)
	if f == nil || f.Severity != finding.Error || f.File != p || f.Offset == nil || *f.Offset != off || f.LSN != target.lsn {
		t.Fatalf("findings %+v: want %s in %s at offset %d, lsn %s", o.Findings, audit.CodeCRCMismatch, p, off, target.lsn)
	}
	if o.Records != idx || o.EndLSN == nil || *o.EndLSN != target.lsn.String() {
		t.Errorf("%d records, end %v: want %d records and the end of valid WAL at %s", o.Records, o.EndLSN, idx, target.lsn)
	}
	if len(out[0].Findings) != 0 {
		t.Errorf("the intact file has findings: %v", out[0].Findings)
	}
	// The table says the same, with file, offset and LSN.
	stdout, _, code := run(t, "inspect", p)
	want := fmt.Sprintf("error %s [%s @%d lsn %s]", audit.CodeCRCMismatch, p, off, target.lsn)
	if code != 1 || !strings.Contains(stdout, want) {
		t.Errorf("table: exit %d, want 1 and %q in\n%s", code, want, stdout)
	}
}

func TestInspectPrevLinkTornRecordPageAddr(t *testing.T) {
	fx := walFixture(t)
	golden := loadGolden(t)
	name := fx.names[0]
	seg := segOf(t, name)

	// xl_prev (header bytes 8..15) pointing elsewhere.
	target, _ := pickRecord(t, golden, seg, 24)
	off := int64(uint64(target.lsn) % fixSegSize)
	p := fx.damaged(t, name, name, func(b []byte) []byte {
		binary.LittleEndian.PutUint64(b[off+8:], uint64(target.lsn)-8)
		return b
	})
	o := inspectJSON(t, 1, p)[0]
	if f := findCode(o.Findings, audit.CodePrevLink); f == nil || f.File != p || f.Offset == nil || *f.Offset != off || f.LSN != target.lsn {
		t.Errorf("xl_prev: findings %+v, want %s at offset %d", o.Findings, audit.CodePrevLink, off)
	}

	// A record spanning pages whose continuation page is zeroed.
	var span goldenRec
	for _, g := range inSegment(golden, seg) {
		end := recordEnd(g.lsn, g.totLen)
		if uint64(g.lsn)/fixPageSize != (end-1)/fixPageSize && (end-1)/fixSegSize == seg {
			span = g
			break
		}
	}
	if span.lsn == 0 {
		t.Fatal("no page-spanning record in the fixture")
	}
	page := int64((uint64(span.lsn)/fixPageSize + 1) * fixPageSize % fixSegSize)
	p = fx.damaged(t, name, name, func(b []byte) []byte {
		clear(b[page : page+fixPageSize])
		return b
	})
	o = inspectJSON(t, 1, p)[0]
	if f := findCode(o.Findings, audit.CodeTornRecord); f == nil || f.File != p || f.Offset == nil || *f.Offset != page {
		t.Errorf("zeroed continuation: findings %+v, want %s at offset %d", o.Findings, audit.CodeTornRecord, page)
	}
	if o.EndLSN == nil || *o.EndLSN != span.lsn.String() {
		t.Errorf("zeroed continuation: end %v, want %s", o.EndLSN, span.lsn)
	}

	// A segment stored under another segment's name.
	other := fx.names[len(fx.names)-1]
	p = fx.damaged(t, name, other, func(b []byte) []byte { return b })
	o = inspectJSON(t, 1, p)[0]
	if f := findCode(o.Findings, audit.CodeBadPageAddr); f == nil || f.File != p || f.Offset == nil || *f.Offset != 0 {
		t.Errorf("misnamed: findings %+v, want %s at offset 0", o.Findings, audit.CodeBadPageAddr)
	}
}

func TestInspectTruncated(t *testing.T) {
	fx := walFixture(t)
	name := fx.names[0]
	const size = 600_003
	p := fx.damaged(t, name, name, func(b []byte) []byte { return b[:size] })
	o := inspectJSON(t, 1, p)[0]
	f := findCode(o.Findings, codeTruncated)
	if f == nil || f.Severity != finding.Error || f.File != p || f.Offset == nil || *f.Offset != size {
		t.Fatalf("findings %+v: want %s at offset %d", o.Findings, codeTruncated, size)
	}
	if o.Size != size || o.Records == 0 {
		t.Errorf("size %d, %d records", o.Size, o.Records)
	}
	// Too long is a size finding too.
	p = fx.damaged(t, name, name, func(b []byte) []byte { return append(b, 0) })
	o = inspectJSON(t, 1, p)[0]
	if f := findCode(o.Findings, codeWrongSize); f == nil || f.Offset == nil || *f.Offset != fixSegSize {
		t.Errorf("one byte too long: findings %+v", o.Findings)
	}
}

func TestInspectForeignSystemIdentifier(t *testing.T) {
	fx := walFixture(t)
	golden := loadGolden(t)
	good, other := fx.names[0], fx.names[len(fx.names)-1]
	goodID := binary.LittleEndian.Uint64(fx.read(t, good)[24:])
	// Another cluster: the long page header's xlp_sysid, which no CRC covers.
	foreign := fx.damaged(t, other, other, func(b []byte) []byte {
		binary.LittleEndian.PutUint64(b[24:], binary.LittleEndian.Uint64(b[24:])^0x5a5a5a5a)
		return b
	})
	foreignID := strconv.FormatUint(goodID^0x5a5a5a5a, 10)

	out := inspectJSON(t, 1, fx.path(good), foreign)
	if len(out[0].Findings) != 0 || out[0].SystemIdentifier != strconv.FormatUint(goodID, 10) {
		t.Errorf("good file: %s, findings %v", out[0].SystemIdentifier, out[0].Findings)
	}
	o := out[1]
	f := findCode(o.Findings, codeForeignSegment)
	if f == nil || f.Severity != finding.Error || f.File != foreign || f.Offset == nil || *f.Offset != 24 ||
		f.LSN != walname.LSN(segOf(t, other)*fixSegSize+24) || !strings.Contains(f.Message, foreignID) {
		t.Fatalf("foreign file: findings %+v", o.Findings)
	}
	if o.SystemIdentifier != foreignID || o.Records != len(inSegment(golden, segOf(t, other))) {
		t.Errorf("foreign file: system %s, %d records: the rest of it is intact WAL", o.SystemIdentifier, o.Records)
	}
	// Alone, a file has nothing to disagree with, unless told the identifier.
	inspectJSON(t, 0, foreign)
	o = inspectJSON(t, 1, "--system-identifier", strconv.FormatUint(goodID, 10), foreign)[0]
	if findCode(o.Findings, codeForeignSegment) == nil {
		t.Errorf("--system-identifier: findings %+v", o.Findings)
	}
	inspectJSON(t, 0, "--system-identifier", foreignID, foreign)
}

func TestInspectUnsupportedVersion(t *testing.T) {
	fx := walFixture(t)
	name := fx.names[0]
	p := fx.damaged(t, name, name, func(b []byte) []byte {
		binary.LittleEndian.PutUint16(b, 0xD101) // PostgreSQL 12
		return b
	})
	stdout, stderr, code := run(t, "inspect", "--format", "json", p)
	if code != 2 {
		t.Fatalf("exit %d, want 2 (undecided): %s", code, stderr)
	}
	var out []inspectOut
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	f := findCode(out[0].Findings, codeUnsupportedVersion)
	if f == nil || !strings.Contains(f.Message, "D101") || !strings.Contains(f.Message, "PostgreSQL 12") || out[0].PageMagic != "D101" {
		t.Errorf("findings %+v, page magic %q", out[0].Findings, out[0].PageMagic)
	}
}

func TestInspectNotASegmentName(t *testing.T) {
	fx := walFixture(t)
	golden := loadGolden(t)
	name := fx.names[0]
	p := fx.damaged(t, name, "copy-of-a-segment.wal", func(b []byte) []byte { return b })
	o := inspectJSON(t, 0, p)[0]
	f := findCode(o.Findings, codeNameNotSegment)
	if f == nil || f.Severity != finding.Info || f.File != p {
		t.Errorf("findings %+v: want an info %s", o.Findings, codeNameNotSegment)
	}
	if o.Segment != name || o.Records != len(inSegment(golden, segOf(t, name))) {
		t.Errorf("segment %q, %d records: inspected like %s", o.Segment, o.Records, name)
	}
}

func TestInspectCompressedFile(t *testing.T) {
	golden := loadGolden(t)
	paths, _ := filepath.Glob(filepath.Join(walTestdata, "*.gz"))
	if len(paths) == 0 {
		t.Fatal("no fixtures")
	}
	o := inspectJSON(t, 0, paths[0])[0]
	seg := segOf(t, strings.TrimSuffix(filepath.Base(paths[0]), ".gz"))
	if o.Compression != "gzip" || o.Size != fixSegSize || o.Records != len(inSegment(golden, seg)) || len(o.Findings) != 0 {
		t.Errorf("%s: compression %q size %d records %d findings %v", paths[0], o.Compression, o.Size, o.Records, o.Findings)
	}
	// A cut-off compressed file: the WAL before the cut is still read.
	gz, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(paths[0]))
	if err := os.WriteFile(p, gz[:len(gz)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	o = inspectJSON(t, 1, p)[0]
	if findCode(o.Findings, codeCompressionCorrupt) == nil || findCode(o.Findings, codeTruncated) == nil || o.Records == 0 || o.Size >= fixSegSize {
		t.Errorf("cut-off %s: size %d, %d records, findings %v", p, o.Size, o.Records, o.Findings)
	}
}

func TestInspectMissingFileExit2(t *testing.T) {
	fx := walFixture(t)
	missing := filepath.Join(fx.dir, "000000010000000000000099")
	stdout, stderr, code := run(t, "inspect", fx.path(fx.names[0]), missing)
	if code != 2 || !strings.Contains(stderr, missing) || !strings.Contains(stderr, "no such file") {
		t.Errorf("exit %d, stderr %q: want 2 naming %s", code, stderr, missing)
	}
	if stdout != "" {
		t.Errorf("nothing should be printed before every file could be opened:\n%s", stdout)
	}
}

// Flags after file names are refused (urfave/cli would take them for file
// names): the documented form is "inspect [flags] FILE...".
func TestInspectFlagsAfterFilesRefused(t *testing.T) {
	fx := walFixture(t)
	p := fx.path(fx.names[0])
	for _, args := range [][]string{
		{"inspect", p, "--format", "json"},
		{"inspect", p, "--records"},
	} {
		stdout, stderr, code := run(t, args...)
		if code != 2 || !strings.Contains(stderr, "flags must come before the file names") || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q", args, code, stderr, stdout)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"inspect"}, "at least one FILE"},
		{[]string{"inspect", "--format", "xml", p}, "invalid --format"},
		{[]string{"inspect", "--system-identifier", "abc", p}, "invalid --system-identifier"},
	} {
		_, stderr, code := run(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}
