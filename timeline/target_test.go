package timeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/walaudit/walaudit/walname"
)

func TestParseTarget(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Target
	}{
		{"latest", Target{Kind: TargetLatest}},
		{"current", Target{Kind: TargetCurrent}},
		{"1", Target{Kind: TargetNumeric, TLI: 1}},
		{"11", Target{Kind: TargetNumeric, TLI: 11}},
		{"0x10", Target{Kind: TargetNumeric, TLI: 16}}, // strtoul base 0: hex
		{"0XfF", Target{Kind: TargetNumeric, TLI: 255}},
		{"010", Target{Kind: TargetNumeric, TLI: 8}}, // and octal, as the server reads it
		{"4294967295", Target{Kind: TargetNumeric, TLI: 0xFFFFFFFF}},
	} {
		got, err := ParseTarget(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "0", "00", "0x0", "Latest", "LATEST", " latest", "1 ", "+1", "-1", "08", "0x", "0xG",
		"1a", "4294967296", "0b1", "0o7", "1_0", "abc"} {
		if got, err := ParseTarget(in); !errors.Is(err, ErrInvalidTarget) {
			t.Errorf("ParseTarget(%q) = %+v, %v; want ErrInvalidTarget", in, got, err)
		}
	}
	for _, tg := range []Target{{Kind: TargetLatest}, {Kind: TargetCurrent}, {Kind: TargetNumeric, TLI: 12}} {
		if back, err := ParseTarget(tg.String()); err != nil || back != tg {
			t.Errorf("ParseTarget(%q) = %+v, %v; round trip of %+v", tg.String(), back, err, tg)
		}
	}
}

// pg15Set is the §5.6 archive's history files (TLIs 1-3).
func pg15Set(t *testing.T) *Set {
	t.Helper()
	return NewSet(map[walname.TimelineID][]byte{
		2: []byte("1\t0/A002E8\tat restore point \"rp1\"\n"),
		3: []byte(history3),
	}, []walname.TimelineID{1, 2, 3})
}

func TestResolveErrClasses(t *testing.T) {
	s := pg15Set(t)
	for _, c := range []struct {
		target string
		b      Backup
		status ResolveStatus
		is     error
		text   string
	}{
		{"latest", Backup{CheckpointLSN: 0x900060, CheckpointTLI: 1}, ResolveOK, nil, ""},
		{"latest", Backup{CheckpointLSN: 0xD00060, CheckpointTLI: 2}, ResolveNotAChild, ErrNotAChild,
			"latest picks TLI 3, which forked from TLI 2 at 0/C00120, before this backup's checkpoint 0/D00060 on TLI 2"},
		{"1", Backup{CheckpointLSN: 0xD00060, CheckpointTLI: 2}, ResolveNotInHistory, ErrNotAChild, "does not include TLI 2"},
		{"7", Backup{CheckpointLSN: 0x900060, CheckpointTLI: 1}, ResolveNotFound, ErrTimelineNotFound, "00000007.history is not in the archive"},
		{"2", Backup{CheckpointLSN: 0x900060, CheckpointTLI: 1, MinRecoveryPoint: 0xC00200, MinRecoveryPointTLI: 3},
			ResolveMinRecoveryPoint, ErrMinRecoveryPoint, "minimum recovery point 0/C00200 on TLI 3"},
		// A checkpoint on TLI 2 before TLI 2 began: the history enters TLI 2 after it.
		{"2", Backup{CheckpointLSN: 0xA00100, CheckpointTLI: 2}, ResolveNotAChild, ErrNotAChild, "TLI 2 begins after this backup's checkpoint 0/A00100"},
	} {
		tg, err := ParseTarget(c.target)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Resolve(tg, c.b)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != c.status || r.OK() != (c.status == ResolveOK) {
			t.Errorf("%s %+v: status %s, want %s", c.target, c.b, r.Status, c.status)
		}
		err = r.Err()
		if c.is == nil {
			if err != nil {
				t.Errorf("%s: Err() = %v, want nil", c.target, err)
			}
			if msg, detail := r.Fatal(); msg != "" || detail != "" {
				t.Errorf("%s: Fatal() = %q, %q for an OK resolution", c.target, msg, detail)
			}
			continue
		}
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s %+v: Err() = %v, want %v containing %q", c.target, c.b, err, c.is, c.text)
		}
		if msg, _ := r.Fatal(); msg == "" {
			t.Errorf("%s: Fatal() is empty for status %s", c.target, r.Status)
		}
	}
}

func TestResolveUnreadableWrapsParseError(t *testing.T) {
	s := NewSet(map[walname.TimelineID][]byte{2: []byte("1\n")}, nil)
	r, err := s.Resolve(Target{Kind: TargetLatest}, Backup{CheckpointLSN: 0x900060, CheckpointTLI: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Err()
	if r.Status != ResolveUnreadable || !errors.Is(err, ErrHistoryUnreadable) || !errors.Is(err, ErrSyntax) {
		t.Fatalf("status %s, Err() = %v; want unreadable wrapping ErrSyntax", r.Status, err)
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 1 {
		t.Errorf("Err() does not carry the *ParseError for line 1: %v", err)
	}
	if r.History != nil {
		t.Error("History set for an unreadable file")
	}
	if msg, _ := r.Fatal(); msg != "syntax error in history file: 1" {
		t.Errorf("Fatal() = %q", msg)
	}
	// Not-increasing files use the server's other wording.
	s = NewSet(map[walname.TimelineID][]byte{2: []byte("3\t0/A\n")}, nil)
	r, _ = s.Resolve(Target{Kind: TargetNumeric, TLI: 2}, Backup{CheckpointLSN: 0x900060, CheckpointTLI: 1})
	if msg, _ := r.Fatal(); msg != "invalid data in history file: 3\t0/A" {
		t.Errorf("Fatal() = %q", msg)
	}
}

func TestResolveRefusesBadInput(t *testing.T) {
	s := pg15Set(t)
	if _, err := s.Resolve(Target{Kind: TargetLatest}, Backup{CheckpointLSN: 1}); err == nil {
		t.Error("Resolve accepted checkpoint timeline 0")
	}
	if _, err := s.Resolve(Target{Kind: "newest"}, Backup{CheckpointLSN: 1, CheckpointTLI: 1}); err == nil {
		t.Error("Resolve accepted an unknown target kind")
	}
	if _, err := s.Resolve(Target{Kind: TargetNumeric}, Backup{CheckpointLSN: 1, CheckpointTLI: 1}); err == nil {
		t.Error("Resolve accepted numeric target 0")
	}
	if _, err := s.TargetOptions(Backup{}); err == nil {
		t.Error("TargetOptions accepted checkpoint timeline 0")
	}
}

func TestResolveLatestStopsAtTopTimeline(t *testing.T) {
	// Probing must not wrap around past the largest timeline ID.
	top := walname.TimelineID(0xFFFFFFFF)
	s := NewSet(map[walname.TimelineID][]byte{top: []byte("4294967294\t0/A\n")}, nil)
	r, err := s.Resolve(Target{Kind: TargetLatest}, Backup{CheckpointLSN: 0x9, CheckpointTLI: top - 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.TLI != top || len(r.Probed) != 1 || !r.OK() {
		t.Errorf("TLI %d probed %v status %s; want %d, one probe, ok", r.TLI, r.Probed, r.Status, top)
	}
}

func TestResolveAfterRequests(t *testing.T) {
	// restoreTimeLineHistoryFiles(checkpoint TLI, target): from the
	// checkpoint's timeline up to, not including, the target; 1 skipped.
	s := NewSet(map[walname.TimelineID][]byte{
		2: []byte("1\t0/A\n"), 3: []byte("1\t0/A\n2\t0/B\n"), 4: []byte("1\t0/A\n2\t0/B\n3\t0/C\n"),
	}, nil)
	for _, c := range []struct {
		tli  walname.TimelineID
		ckpt walname.LSN
		want string
	}{{1, 0x9, "00000002.history 00000003.history"}, {2, 0xA, "00000002.history 00000003.history"}, {3, 0xB, "00000003.history"}} {
		r, err := s.Resolve(Target{Kind: TargetLatest}, Backup{CheckpointLSN: c.ckpt, CheckpointTLI: c.tli})
		if err != nil || !r.OK() || r.TLI != 4 {
			t.Fatalf("resolve from %d: %+v, %v", c.tli, r, err)
		}
		if got := strings.Join(r.After, " "); got != c.want {
			t.Errorf("After from %d = %q, want %q", c.tli, got, c.want)
		}
	}
}

func TestRestoreSequenceWithoutPlan(t *testing.T) {
	s := pg15Set(t)
	r, _ := s.Resolve(Target{Kind: TargetLatest}, Backup{CheckpointLSN: 0x900060, CheckpointTLI: 1})
	names, fatal := RestoreSequence(r, nil)
	if strings.Join(names, " ") != "00000002.history 00000003.history 00000004.history 00000003.history" || fatal != "" {
		t.Errorf("RestoreSequence(nil plan) = %v, %q", names, fatal)
	}
}

func TestWorkingTargets(t *testing.T) {
	s := pg15Set(t)
	got, err := s.WorkingTargets(Backup{CheckpointLSN: 0xD00060, CheckpointTLI: 2})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range got {
		names = append(names, tg.String())
	}
	if strings.Join(names, " ") != "current 2" {
		t.Errorf("WorkingTargets = %v, want current 2", names)
	}
}
