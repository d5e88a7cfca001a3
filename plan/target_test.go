package plan

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseTarget(t *testing.T) {
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	cases := []struct {
		in   string
		want Target
	}{
		{"latest", Target{Kind: TargetLatest}},
		{"immediate", Target{Kind: TargetImmediate}},
		{"lsn:0/A002E8", Target{Kind: TargetLSN, LSN: 0xA002E8}},
		{"lsn:1/a", Target{Kind: TargetLSN, LSN: 1<<32 | 0xa}},
		{"xid:751", Target{Kind: TargetXID, XID: 751}},
		// epoch 1, xid 751: txid_current() style; the low 32 bits count.
		{"xid:4294968047", Target{Kind: TargetXID, XID: 751}},
		{"name:rp1", Target{Kind: TargetName, Name: "rp1"}},
		{"name:a:b", Target{Kind: TargetName, Name: "a:b"}},
		{"time:2026-04-01T09:41:23Z", Target{Kind: TargetTime, Time: ts("2026-04-01T09:41:23Z")}},
		{"time:2026-04-01T11:41:23.5+02:00", Target{Kind: TargetTime, Time: ts("2026-04-01T09:41:23.5Z")}},
		{"time:2026-04-01 09:41:23.512345+00", Target{Kind: TargetTime, Time: ts("2026-04-01T09:41:23.512345Z")}},
		{"time:2026-04-01 09:41:23-0530", Target{Kind: TargetTime, Time: ts("2026-04-01T15:11:23Z")}},
		{"time:2026-04-01 09:41:23 UTC", Target{Kind: TargetTime, Time: ts("2026-04-01T09:41:23Z")}},
		{"time:2026-04-01 09:41:23.1234567+00", Target{Kind: TargetTime, Time: ts("2026-04-01T09:41:23.123457Z")}},
	}
	for _, c := range cases {
		got, err := ParseTarget(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got.Kind != c.want.Kind || !got.Time.Equal(c.want.Time) || got.LSN != c.want.LSN || got.XID != c.want.XID || got.Name != c.want.Name {
			t.Errorf("%s: got %+v want %+v", c.in, got, c.want)
		}
		// The rendered form parses back to the same target.
		again, err := ParseTarget(got.String())
		if err != nil || again.String() != got.String() {
			t.Errorf("%s: round trip %q -> %q (%v)", c.in, got.String(), again.String(), err)
		}
	}
}

func TestParseTargetRefusals(t *testing.T) {
	cases := map[string]string{
		"time:2026-04-01 09:41:23":        "no time zone; write it in UTC as time:2026-04-01T09:41:23Z",
		"time:now":                        "special values",
		"time:yesterday":                  "special values",
		"time:2026-13-01T00:00:00Z":       "month out of range",
		"time:01/04/2026 09:41":           "want RFC 3339",
		"lsn:0/16B3748xyz":                "invalid LSN",
		"lsn:":                            "invalid LSN",
		"xid:0x10":                        "decimal",
		"xid:2":                           "special transaction id",
		"xid:":                            "decimal",
		"name:":                           "empty",
		"name:" + strings.Repeat("x", 64): "under 64 bytes",
		"latest:1":                        "takes no value",
		"yesterday":                       "want time:TIMESTAMP",
		"":                                "want time:TIMESTAMP",
	}
	for in, want := range cases {
		_, err := ParseTarget(in)
		if err == nil {
			t.Errorf("%q: accepted", in)
			continue
		}
		if !errors.Is(err, ErrBadTarget) {
			t.Errorf("%q: error %v does not wrap ErrBadTarget", in, err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %q does not say %q", in, err, want)
		}
	}
}

func TestParseTimelineSetting(t *testing.T) {
	for in, want := range map[string]string{"": "latest", "latest": "latest", "current": "current", "3": "3"} {
		got, err := ParseTimelineSetting(in)
		if err != nil || got.String() != want {
			t.Errorf("%q: got %v %v want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "x", "-1", "0x2"} {
		if _, err := ParseTimelineSetting(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"latest", "lsn:0/A002E8", "xid:751", "name:rp1", "time:2026-04-01 09:41:23.5+02:00", "time:2026-04-01T09:41:23Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			return
		}
		again, err := ParseTarget(tg.String())
		if err != nil {
			t.Fatalf("%q rendered as %q which does not parse: %v", s, tg.String(), err)
		}
		if again.String() != tg.String() {
			t.Fatalf("%q: %q != %q", s, again.String(), tg.String())
		}
	})
}
