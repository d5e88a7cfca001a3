package drill

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/plan"
)

func TestConfQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", `back\slash`, "a\nb\rc\td\be\ff", `'\''`, "cp /a/%f %p", "naïve \x01"} {
		q, err := ConfQuote(s)
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(q, "\n") {
			t.Errorf("%q quoted with a raw newline: %q", s, q)
		}
		kvs := parseConf([]byte("x = " + q + " # comment\n"))
		if len(kvs) != 1 || kvs[0].Value != s {
			t.Errorf("%q -> %q -> %#v", s, q, kvs)
		}
	}
	if _, err := ConfQuote("a\x00b"); err == nil {
		t.Error("NUL accepted")
	}
}

func FuzzConfQuote(f *testing.F) {
	for _, s := range []string{"", "'", `\`, "\n", `\101`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ConfQuote(s)
		if strings.ContainsRune(s, 0) {
			if err == nil {
				t.Fatal("NUL accepted")
			}
			return
		}
		kvs := parseConf([]byte("x=" + q))
		if len(kvs) != 1 || kvs[0].Value != s {
			t.Fatalf("%q -> %q -> %#v", s, q, kvs)
		}
	})
}

func TestParseConf(t *testing.T) {
	conf := `# comment
shared_preload_libraries = 'pg_stat_statements,"$libdir/odd, name"'   # trailing
Archive_Mode=on
archive_command 'test ! -f /a/%f && cp %p /a/%f'
  port = 5433
include_dir 'conf.d'
primary_conninfo = 'host=x password=''s3cret'''
garbage line without value
= nonsense
`
	got := parseConf([]byte(conf))
	want := []Setting{
		{"shared_preload_libraries", `pg_stat_statements,"$libdir/odd, name"`},
		{"archive_mode", "on"},
		{"archive_command", "test ! -f /a/%f && cp %p /a/%f"},
		{"port", "5433"},
		{"include_dir", "conf.d"},
		{"primary_conninfo", "host=x password='s3cret'"},
		{"garbage", "line"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
	for in, want := range map[string][]string{
		got[0].Value:                      {"pg_stat_statements", "$libdir/odd, name"},
		" a ,b,, c ":                      {"a", "b", "c"},
		`"x""y" , "z w"`:                  {`x"y`, "z w"},
		"":                                nil,
		"pg_stat_statements,auto_explain": {"pg_stat_statements", "auto_explain"},
	} {
		if libs := splitLibraries(in); !reflect.DeepEqual(libs, want) {
			t.Errorf("splitLibraries(%q) = %#v, want %#v", in, libs, want)
		}
	}
	if j := joinLibraries([]string{"a", "b c"}); j != `a, "b c"` {
		t.Fatalf("join %q", j)
	}
}

func TestFilterLibraries(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"pg_stat_statements.so", "pg_cron.so", "auto_explain.so"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	var notes []string
	kept, dropped := filterLibraries([]string{"pg_stat_statements", "$libdir/auto_explain", "pg_cron", "nonexistent", "some/rel", filepath.Join(dir, "auto_explain.so")}, dir, &notes)
	if !reflect.DeepEqual(kept, []string{"pg_stat_statements", "$libdir/auto_explain", filepath.Join(dir, "auto_explain.so")}) ||
		!reflect.DeepEqual(dropped, []string{"pg_cron", "nonexistent", "some/rel"}) {
		t.Fatalf("kept %v dropped %v", kept, dropped)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "pg_cron") {
		t.Fatalf("notes %v", notes)
	}
	notes = nil
	kept, dropped = filterLibraries([]string{"pg_stat_statements"}, "", &notes)
	if len(kept) != 0 || len(dropped) != 1 || len(notes) != 1 || !strings.Contains(notes[0], "unknown") {
		t.Fatalf("unknown libdir: kept %v dropped %v notes %v", kept, dropped, notes)
	}
}

// TestWriteRecoveryConfigFile checks the written files without a server:
// one target line per kind, the pg_control values, the neutralised
// auto.conf. The real server test proves PostgreSQL accepts them.
func TestWriteRecoveryConfigFile(t *testing.T) {
	tm := time.Date(2026, 4, 1, 9, 41, 23, 500000000, time.UTC)
	for _, c := range []struct {
		target plan.Target
		line   string
	}{
		{plan.Target{Kind: plan.TargetTime, Time: tm}, "recovery_target_time = '2026-04-01 09:41:23.5+00'"},
		{plan.Target{Kind: plan.TargetLSN, LSN: 0x3000148}, "recovery_target_lsn = '0/3000148'"},
		{plan.Target{Kind: plan.TargetXID, XID: 751}, "recovery_target_xid = '751'"},
		{plan.Target{Kind: plan.TargetName, Name: `it's \ here`}, `recovery_target_name = 'it''s \\ here'`},
		{plan.Target{Kind: plan.TargetImmediate}, "recovery_target = 'immediate'"},
		{plan.Target{Kind: plan.TargetLatest}, ""},
		{plan.Target{}, ""},
	} {
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		os.Mkdir(data, 0o700)
		os.WriteFile(filepath.Join(data, "PG_VERSION"), []byte("15\n"), 0o600)
		os.WriteFile(filepath.Join(data, "postgresql.auto.conf"), []byte("archive_command = 'x'\nrecovery_target_xid = '9'\nwork_mem = '1GB'\n"), 0o600)
		os.WriteFile(filepath.Join(data, "standby.signal"), nil, 0o600)
		res, err := WriteRecoveryConfig(data, Settings{RestoreCommand: "walaudit wal-fetch %f %p", Target: c.target,
			Control:   &backup.Control{MaxConnections: 150, MaxPreparedXacts: 5, MaxLocksPerXact: 77, MaxWorkerProcesses: 9, MaxWALSenders: 12},
			WALParams: []HotStandbyParams{{MaxConnections: 200}}})
		if err != nil {
			t.Fatal(err)
		}
		conf, _ := os.ReadFile(filepath.Join(data, "postgresql.conf"))
		var targets []string
		for _, l := range strings.Split(string(conf), "\n") {
			name, _, _ := strings.Cut(l, " = ")
			if slices.Contains([]string{"recovery_target", "recovery_target_time", "recovery_target_lsn", "recovery_target_xid", "recovery_target_name"}, name) {
				targets = append(targets, l)
			}
		}
		if c.line == "" && len(targets) != 0 || c.line != "" && (len(targets) != 1 || targets[0] != c.line) {
			t.Errorf("%v: target lines %q, want %q", c.target, targets, c.line)
		}
		for _, want := range []string{"max_connections = 200\n", "max_locks_per_transaction = 77\n", "max_worker_processes = 9\n",
			"max_wal_senders = 12\n", "max_prepared_transactions = 5\n", "archive_mode = off\n", "archive_library = ''\n",
			"primary_conninfo = ''\n", "listen_addresses = ''\n", "unix_socket_directories = '" + dir + "'\n", "recovery_target_action = 'pause'\n"} {
			if !strings.Contains(string(conf), want) {
				t.Errorf("postgresql.conf lacks %q", want)
			}
		}
		auto, _ := os.ReadFile(filepath.Join(data, "postgresql.auto.conf"))
		if len(parseConf(auto)) != 0 {
			t.Errorf("auto.conf not emptied: %s", auto)
		}
		if !slices.Equal(res.AutoConfDropped, []string{"archive_command", "recovery_target_xid", "work_mem"}) ||
			!slices.Equal(res.Neutralised, []string{"archive_command", "recovery_target_xid"}) {
			t.Errorf("dropped %v neutralised %v", res.AutoConfDropped, res.Neutralised)
		}
		if _, err := os.Stat(filepath.Join(data, "standby.signal")); err == nil {
			t.Error("standby.signal kept")
		}
		if _, err := os.Stat(filepath.Join(data, "recovery.signal")); err != nil {
			t.Error(err)
		}
		hba, _ := os.ReadFile(filepath.Join(data, "pg_hba.conf"))
		if lines := parseConf(hba); len(lines) != 1 || lines[0].Name != "local" {
			t.Errorf("pg_hba.conf: %s", hba)
		}
	}
	// Version 14 has no archive_library; unknown settings would be fatal.
	dir := t.TempDir()
	res, err := WriteRecoveryConfig(dir, Settings{RestoreCommand: "x", PGMajor: 14, SocketDir: "/tmp"})
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(res.ConfFile)
	if strings.Contains(string(conf), "archive_library") || strings.Contains(string(conf), "max_connections") {
		t.Errorf("PG 14 without pg_control: %s", conf)
	}
	if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, "insufficient parameter settings") }) {
		t.Errorf("no note about unknown pg_control values: %v", res.Notes)
	}
	if _, err := WriteRecoveryConfig(dir, Settings{RestoreCommand: "x", PGMajor: 15, SocketDir: "/tmp/" + strings.Repeat("s", 100)}); err == nil {
		t.Error("over-long socket path accepted")
	}
}

func TestParseChecks(t *testing.T) {
	doc := `checks:
  - name: orders_before_incident
    database: shop
    sql: SELECT count(*) FROM orders
    expect_value: 18234
  - name: customers_1_2
    database: shop
    sql: |
      SELECT id, email, deleted_at FROM customers
    expect_rows:
      - [1, alice@example.com, null]
      - [2, "null", ~]
      - [0x1F, 1.50, "", yes]
  - name: none
    sql: SELECT 1 WHERE false
    expect_count: 0
  - name: roles
    sql: SELECT rolname FROM pg_roles
    unordered: true
    timeout: 30s
    expect_rows: [[app_reader], [app_writer]]
  - name: null_value
    sql: SELECT NULL
    expect_value: null
`
	cs, err := ParseChecks([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 5 {
		t.Fatalf("%d checks", len(cs))
	}
	if c := cs[0]; c.Kind != ExpectValue || c.Value != (Value{Text: "18234"}) || c.Database != "shop" || c.Line != 2 || c.Timeout != DefaultCheckTimeout {
		t.Errorf("check 1: %+v", c)
	}
	want := [][]Value{
		{{Text: "1"}, {Text: "alice@example.com"}, {Null: true}},
		{{Text: "2"}, {Text: "null"}, {Null: true}},
		{{Text: "0x1F"}, {Text: "1.50"}, {Text: ""}, {Text: "yes"}},
	}
	if c := cs[1]; c.Kind != ExpectRows || !reflect.DeepEqual(c.Rows, want) || c.SQL != "SELECT id, email, deleted_at FROM customers\n" {
		t.Errorf("check 2: %+v", c)
	}
	if c := cs[2]; c.Kind != ExpectCount || c.Count != 0 || c.Database != "" {
		t.Errorf("check 3: %+v", c)
	}
	if c := cs[3]; !c.Unordered || c.Timeout != 30*time.Second || len(c.Rows) != 2 {
		t.Errorf("check 4: %+v", c)
	}
	if c := cs[4]; c.Kind != ExpectValue || !c.Value.Null {
		t.Errorf("check 5: %+v", c)
	}
	for _, c := range []struct{ doc, want string }{
		{"checks: []", "no checks"},
		{"check:\n  - name: a\n", "field check not found"},
		{"checks:\n  - name: a\n    sql: x\n    expect_row: [[1]]\n", "field expect_row not found"},
		{"checks:\n  - name: a\n    sql: x\n", "exactly one of"},
		{"checks:\n  - name: a\n    sql: x\n    expect_count: 1\n    expect_value: 1\n", "exactly one of"},
		{"checks:\n  - name: a b\n    sql: x\n    expect_count: 1\n", `name "a b"`},
		{"checks:\n  - name: a\n    expect_count: 1\n", "no sql"},
		{"checks:\n  - name: a\n    sql: x\n    expect_count: -1\n", "expect_count"},
		{"checks:\n  - name: a\n    sql: x\n    expect_count: many\n", "expect_count"},
		{"checks:\n  - name: a\n    sql: x\n    expect_rows: [1, 2]\n", "row 1"},
		{"checks:\n  - name: a\n    sql: x\n    expect_rows: [[[1]]]\n", "single value"},
		{"checks:\n  - name: a\n    sql: x\n    expect_value: [1]\n", "single value"},
		{"checks:\n  - name: a\n    sql: x\n    expect_count: 1\n    unordered: true\n", "unordered"},
		{"checks:\n  - name: a\n    sql: x\n    expect_count: 1\n    timeout: soon\n", "timeout"},
		{"checks:\n  - name: a\n    sql: x\n    expect_count: 1\n  - name: a\n    sql: y\n    expect_count: 2\n", "used already on line 2"},
	} {
		_, err := ParseChecks([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.doc, err, c.want)
		}
	}
}

func TestRowDigest(t *testing.T) {
	digest := func(unordered bool, rows ...[]string) string {
		a := newRowAcc(Check{Kind: ExpectCount, Unordered: unordered})
		for _, r := range rows {
			raw := make([][]byte, len(r))
			for i, v := range r {
				if v != "<NULL>" {
					raw[i] = []byte(v)
				}
			}
			a.add(raw)
		}
		return a.digest()
	}
	// NULL differs from empty text and from "NULL"; cell boundaries count.
	ds := []string{digest(false, []string{"<NULL>"}), digest(false, []string{""}), digest(false, []string{"NULL"}),
		digest(false, []string{"ab", "c"}), digest(false, []string{"a", "bc"}), digest(false, []string{"abc"}),
		digest(false, []string{"a"}, []string{"b"}), digest(false, []string{"b"}, []string{"a"}), digest(false)}
	seen := map[string]int{}
	for i, d := range ds {
		if j, ok := seen[d]; ok {
			t.Errorf("digest %d equals digest %d", i, j)
		}
		seen[d] = i
	}
	if digest(true, []string{"a"}, []string{"b"}) != digest(true, []string{"b"}, []string{"a"}) {
		t.Error("unordered digest depends on order")
	}
	if digest(true, []string{"a"}, []string{"a"}) == digest(true, []string{"a"}) {
		t.Error("unordered digest ignores duplicates")
	}
	r1 := []CheckResult{{Name: "a", Database: "postgres", Digest: "x"}, {Name: "b", Database: "postgres", Err: "boom", SQLState: "42601"}}
	r2 := []CheckResult{{Name: "a", Database: "postgres", Digest: "x"}, {Name: "b", Database: "postgres", Err: "other text", SQLState: "42601"}}
	r3 := []CheckResult{{Name: "a", Database: "postgres", Digest: "y"}, r1[1]}
	if Fingerprint(r1) != Fingerprint(r2) || Fingerprint(r1) == Fingerprint(r3) || Fingerprint(r1) == Fingerprint(r1[:1]) {
		t.Error("fingerprint")
	}
}
