package timeline

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walaudit/walaudit/walname"
)

func TestSetAccessors(t *testing.T) {
	s := NewSet(map[walname.TimelineID][]byte{
		2: []byte("1\t0/A002E8\tat restore point \"rp1\"\n"),
		3: []byte(history3),
		4: []byte("1\t0/A00368\tbefore 2026-11-21 00:34:28.537138+00\n\n"),
		6: []byte("nonsense\n"),
	}, []walname.TimelineID{1, 2, 3, 5})
	if got := s.Timelines(); len(got) != 6 || got[0] != 1 || got[5] != 6 {
		t.Errorf("Timelines = %v, want 1..6", got)
	}
	if p, fork, ok := s.Parent(3); p != 2 || fork != 0xC00120 || !ok {
		t.Errorf("Parent(3) = %d, %s, %v", p, fork, ok)
	}
	if _, _, ok := s.Parent(1); ok {
		t.Error("Parent(1) found")
	}
	if _, _, ok := s.Parent(5); ok {
		t.Error("Parent(5) found for a timeline without history file")
	}
	if got := s.Children(1); len(got) != 2 || got[0] != 2 || got[1] != 4 {
		t.Errorf("Children(1) = %v, want [2 4]", got)
	}
	if got := s.Children(99); got != nil {
		t.Errorf("Children(99) = %v", got)
	}
	for tli, wantEntries := range map[walname.TimelineID]int{1: 1, 3: 3, 5: 1} {
		h, err := s.History(tli)
		if err != nil || len(h.Entries()) != wantEntries {
			t.Errorf("History(%d) = %v, %v; want %d entries", tli, h, err, wantEntries)
		}
	}
	if _, err := s.History(6); !errors.Is(err, ErrSyntax) {
		t.Errorf("History(6) error = %v, want ErrSyntax", err)
	}
	if !s.HasHistoryFile(6) || s.HasHistoryFile(5) || s.HasHistoryFile(1) {
		t.Error("HasHistoryFile wrong")
	}
	var codes []string
	for _, p := range s.Problems() {
		codes = append(codes, string(p.Code))
	}
	if got := strings.Join(codes, " "); got != "HISTORY_MISSING HISTORY_MALFORMED" {
		t.Errorf("problem codes = %s", got)
	}
}

func TestSetIgnoresTimelineOneFile(t *testing.T) {
	s := NewSet(map[walname.TimelineID][]byte{1: []byte("garbage")}, nil)
	ps := s.Problems()
	if len(ps) != 1 || ps[0].Code != CodeHistoryUnexpected || ps[0].Severity != SeverityWarning {
		t.Fatalf("problems = %v", ps)
	}
	if h, err := s.History(1); err != nil || len(h.Entries()) != 1 {
		t.Errorf("History(1) = %v, %v", h, err)
	}
	if s.HasHistoryFile(1) {
		t.Error("00000001.history counts as present")
	}
	if got := ps[0].String(); got != "warning HISTORY_UNEXPECTED [00000001.history]: timeline 1 has no parent; the server never reads 00000001.history" {
		t.Errorf("String() = %q", got)
	}
}

func TestSetGapsAreCollapsed(t *testing.T) {
	s := NewSet(map[walname.TimelineID][]byte{
		2: []byte("1\t0/A\n"),
		7: []byte("1\t0/A\n2\t0/B\n"),
	}, []walname.TimelineID{1, 2, 4, 7})
	var got []string
	for _, p := range s.Problems() {
		got = append(got, p.String())
	}
	want := []string{
		"warning HISTORY_GAP [00000003.history]: 00000003.history missing while 00000007.history exists: recovery_target_timeline 'latest' from a backup on timeline 2 or below stops probing at 2 and never sees timeline 7",
		"error HISTORY_MISSING [00000004.history]: timeline 4 has WAL segments but no history file: the server assumes it has no parent, so recovery along it from an ancestor's backup fails, and 'latest' probing stops below it",
		"warning HISTORY_GAP [00000005.history]: 00000005.history to 00000006.history missing while 00000007.history exists: recovery_target_timeline 'latest' from a backup on timeline 4 or below stops probing at 4 and never sees timeline 7",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSetHugeTimelineIDs is a regression test: the gap check used to visit
// every number below the highest history file, 4 billion here.
func TestSetHugeTimelineIDs(t *testing.T) {
	start := time.Now()
	s := NewSet(map[walname.TimelineID][]byte{0xFFFFFFFF: []byte("1\t0/A\n")}, nil)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("NewSet took %s", d)
	}
	ps := s.Problems()
	if len(ps) != 1 || ps[0].Code != CodeHistoryGap || !strings.Contains(ps[0].Message, "00000002.history to FFFFFFFE.history missing") {
		t.Errorf("problems = %v", ps)
	}
}

func TestSetTreeWriterError(t *testing.T) {
	s := pg15Set(t)
	if err := s.WriteTree(failWriter{}); err == nil {
		t.Error("WriteTree ignored the writer's error")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestInventory(t *testing.T) {
	if _, err := NewInventory(3 << 20); !errors.Is(err, walname.ErrInvalidSegmentSize) {
		t.Errorf("NewInventory(3MiB) = %v", err)
	}
	inv, err := NewInventory(16 << 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		kind walname.Kind
		err  error
	}{
		{"000000010000000000000001", walname.KindSegment, nil},
		{"000000010000000000000002-0123456789abcdef0123456789abcdef01234567.gz", walname.KindSegment, nil},
		{"000000010000000000000003.partial", walname.KindPartial, nil},
		{"00000002.history", walname.KindTimelineHistory, nil},
		{"000000010000000000000001.00000028.backup", walname.KindBackupHistory, nil},
		{"000000010000000000000100", 0, walname.ErrInvalidName}, // impossible at 16 MiB
		{"backup_label", 0, walname.ErrInvalidName},
	} {
		n, err := inv.AddName(c.name)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("AddName(%s) = %v, want %v", c.name, err, c.err)
			}
			continue
		}
		if err != nil || n.Kind != c.kind {
			t.Errorf("AddName(%s) = %v, %v", c.name, n.Kind, err)
		}
	}
	if !inv.Has(1, 1) || !inv.Has(1, 2) || inv.Has(1, 3) || !inv.HasPartial(1, 3) || inv.Has(2, 1) {
		t.Error("Has/HasPartial wrong")
	}
	if inv.Has(1, 256) {
		t.Error("an impossible name was recorded")
	}
	if got := inv.Timelines(); len(got) != 1 || got[0] != 1 {
		t.Errorf("Timelines = %v (history and backup files must not count)", got)
	}
	if got := inv.Coverage(1); len(got) != 1 || got[0] != (Range{1, 2}) {
		t.Errorf("Coverage = %v (partials must not count)", got)
	}
	if got := inv.Gaps(1); len(got) != 0 {
		t.Errorf("Gaps = %v", got)
	}
	if inv.Coverage(9) != nil || inv.Gaps(9) != nil {
		t.Error("unknown timeline has coverage")
	}
	if inv.Size() != 16<<20 {
		t.Errorf("Size = %s", inv.Size())
	}
}

func TestRange(t *testing.T) {
	r := Range{First: 0xFE, Last: 0x101}
	const sz = walname.SegmentSize(16 << 20)
	if r.Count() != 4 {
		t.Errorf("Count = %d", r.Count())
	}
	if got := r.StartLSN(sz).String(); got != "0/FE000000" {
		t.Errorf("StartLSN = %s", got)
	}
	if got := r.EndLSN(sz).String(); got != "1/2000000" {
		t.Errorf("EndLSN = %s", got)
	}
	if got := r.Format(3, sz); got != "0000000300000000000000FE..000000030000000100000001" {
		t.Errorf("Format = %s", got)
	}
	// 1 MiB: the same numbers are other names.
	if got := r.Format(3, 1<<20); got != "0000000300000000000000FE..000000030000000000000101" {
		t.Errorf("Format(1MiB) = %s", got)
	}
	top := Range{First: 0xFFFFFFFFFF, Last: 0xFFFFFFFFFF} // the last 16 MiB segment
	if top.EndLSN(sz) != 0xFFFFFFFFFFFFFFFF {
		t.Errorf("EndLSN at the top = %s, want saturation", top.EndLSN(sz))
	}
}

func TestPlanValidation(t *testing.T) {
	h, _ := ParseHistory(1, nil)
	if _, err := h.Plan(PlanRequest{Size: 3 << 20, Exists: func(walname.TimelineID, walname.SegNo) bool { return true }}); !errors.Is(err, walname.ErrInvalidSegmentSize) {
		t.Errorf("Plan with 3 MiB = %v", err)
	}
	if _, err := h.Plan(PlanRequest{Size: 16 << 20}); err == nil {
		t.Error("Plan without Exists accepted")
	}
	// Until at or before the start: nothing to read, trivially complete.
	p, err := h.Plan(PlanRequest{Size: 16 << 20, Start: 5, Until: 0x5000000, Exists: func(walname.TimelineID, walname.SegNo) bool { return false }})
	if err != nil || !p.Complete || len(p.Steps) != 0 || p.Err() != nil || p.End != 0x5000000 {
		t.Errorf("empty plan = %+v, %v", p, err)
	}
}

func TestPlanStopsAtTopOfLSNSpace(t *testing.T) {
	h, _ := ParseHistory(1, nil)
	const sz = walname.SegmentSize(1 << 30)
	last := walname.SegNo(1<<34 - 1) // 2^64 / 2^30 segments
	p, err := h.Plan(PlanRequest{Size: sz, Start: last - 1, Exists: func(walname.TimelineID, walname.SegNo) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 2 || p.Steps[1].Seg != last || p.Stop != -1 || p.End != 0xFFFFFFFFFFFFFFFF {
		t.Errorf("plan at the top: %d steps, stop %d, end %s", len(p.Steps), p.Stop, p.End)
	}
	// With 1 GiB segments a log holds 4 segments: 2^34-1 is log FFFFFFFF, seg 3.
	if got := strings.Join(p.Requests(), " "); got != "00000001FFFFFFFF00000002 00000001FFFFFFFF00000003" {
		t.Errorf("Requests = %s", got)
	}
}

func TestPlanRequestsAndErr(t *testing.T) {
	h, _ := ParseHistory(3, []byte(history3))
	inv, _ := NewInventory(1 << 20)
	for _, n := range []string{"000000010000000000000009", "00000001000000000000000A", "00000002000000000000000B"} {
		if _, err := inv.AddName(n); err != nil {
			t.Fatal(err)
		}
	}
	p, err := h.Plan(PlanRequest{Size: 1 << 20, Start: 9, Until: 0xB00010, Exists: inv.Has})
	if err != nil {
		t.Fatal(err)
	}
	want := "000000010000000000000009 00000002000000000000000A 00000001000000000000000A 00000002000000000000000B"
	if got := strings.Join(p.Requests(), " "); got != want {
		t.Errorf("Requests = %s\nwant       %s", got, want)
	}
	if err := p.Err(); !errors.Is(err, ErrWrongBranch) || errors.Is(err, ErrMissingSegment) {
		t.Errorf("Err = %v, want ErrWrongBranch", err)
	}
	if p.Stop != 1 || p.Steps[1].ValidEnd != 0xA002E8 || p.Complete {
		t.Errorf("stop %d, step %+v", p.Stop, p.Steps[1])
	}
}

func TestPlanWindow(t *testing.T) {
	// The coverage16 archive: 0/FE..1/01 present, 1/02 missing.
	h, _ := ParseHistory(1, nil)
	inv, _ := NewInventory(16 << 20)
	for seg := walname.SegNo(0xFD); seg <= 0x101; seg++ {
		inv.Add(1, seg)
	}
	p, err := h.Plan(PlanRequest{Size: 16 << 20, Start: 0xFE, Exists: inv.Has})
	if err != nil {
		t.Fatal(err)
	}
	from, to, ok := p.Window(0xFE000138)
	if !ok || from != 0xFE000138 || to.String() != "1/2000000" {
		t.Errorf("Window = %s, %s, %v; want 0/FE000138, 1/2000000", from, to, ok)
	}
	if _, _, ok := p.Window(0x1_0200_0001); ok {
		t.Error("Window accepted a stop past the end of usable WAL")
	}
	if st := p.Steps[p.Stop]; st.Status != StepMissing || st.Seg != 0x102 {
		t.Errorf("first missing = %+v, want segment 0x102", st)
	}
}
