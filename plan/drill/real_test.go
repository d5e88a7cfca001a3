package drill

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/pgserver"
)

// fixture is one real PostgreSQL primary with a user tablespace outside
// any scratch directory, its base backups in every format, and its WAL
// archive. It is built once, on first use, and the primary is stopped
// before any test runs so that the lab directory must stay unchanged.
type fixture struct {
	bin     *pgserver.Bin
	user    *pgserver.OSUser
	lab     *pgserver.Lab
	tsDir   string // the primary's tablespace directory
	plainTS string // where the plain backup put the tablespace (-T)
	tsOID   uint32
	rpName  string
	// Transactions and positions after the backups (see buildFixture).
	xid1, xid2, midTime, midLSN string
	backups                     map[string]*backup.Backup
	skipped                     map[string]string // backup variants this pg_basebackup cannot make
	labSnap                     map[string]string
}

var (
	fxOnce sync.Once
	fx     *fixture
	fxErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fx != nil {
		fx.lab.Close()
	}
	if walauditDir != "" {
		os.RemoveAll(walauditDir)
	}
	os.Exit(code)
}

func realFixture(t *testing.T) *fixture {
	t.Helper()
	fxOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		fx, fxErr = buildFixture(ctx)
	})
	if fxErr != nil {
		t.Fatalf("real PostgreSQL fixture: %v", fxErr)
	}
	return fx
}

// Values the fixture's primary runs with, all above PostgreSQL's
// defaults, so a drill that did not copy them from pg_control could not
// run as a hot standby.
var primaryParams = map[string]string{
	"max_connections":           "150",
	"max_locks_per_transaction": "77",
	"max_worker_processes":      "9",
	"max_wal_senders":           "12",
	"max_prepared_transactions": "5",
}

func buildFixture(ctx context.Context) (*fixture, error) {
	bin, err := pgserver.FindBin(ctx, "", 0)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL binaries are required: %w", err)
	}
	user, err := pgserver.LookupOSUser("")
	if err != nil {
		return nil, err
	}
	lab, err := pgserver.NewLab(ctx, "", bin, user)
	if err != nil {
		return nil, err
	}
	f := &fixture{bin: bin, user: user, lab: lab, tsDir: filepath.Join(lab.Root, "ts1"), plainTS: filepath.Join(lab.Root, "plain_ts"),
		rpName: `drill rp's \ point`, backups: map[string]*backup.Backup{}, skipped: map[string]string{}}
	ok := false
	defer func() {
		if !ok {
			lab.Close()
		}
	}()
	if err := user.MkdirAll(f.tsDir, 0o700); err != nil {
		return nil, err
	}
	extra := map[string]string{"shared_preload_libraries": "'pg_stat_statements'"}
	for k, v := range primaryParams {
		extra[k] = v
	}
	p, err := lab.InitPrimary(ctx, "p", 1, extra)
	if err != nil {
		return nil, err
	}
	if err := p.Exec(ctx,
		"CREATE TABLESPACE ts1 LOCATION '"+f.tsDir+"'",
		"CREATE TABLE t_ts (id int PRIMARY KEY, v text) TABLESPACE ts1",
		"INSERT INTO t_ts SELECT g, 'v' || g FROM generate_series(1, 1000) g",
		"CREATE INDEX t_ts_v ON t_ts (v) TABLESPACE ts1",
		"CREATE DATABASE shop"); err != nil {
		return nil, err
	}
	oid, err := p.QueryString(ctx, "SELECT oid::text FROM pg_tablespace WHERE spcname = 'ts1'")
	if err != nil {
		return nil, err
	}
	v, _ := strconv.ParseUint(oid, 10, 32)
	f.tsOID = uint32(v)
	c, err := p.Connect(ctx, "shop")
	if err != nil {
		return nil, err
	}
	for _, q := range []string{
		"CREATE EXTENSION amcheck",
		"CREATE TABLE customers (id int PRIMARY KEY, email text UNIQUE, deleted_at timestamptz)",
		"INSERT INTO customers VALUES (1, 'alice@example.com', NULL), (2, 'bob@example.com', '2026-03-01 10:00:00+00'), (3, NULL, NULL)",
		"CREATE UNLOGGED TABLE scratchpad (id int PRIMARY KEY)",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			c.Close(ctx)
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	c.Close(ctx)

	for _, v := range []struct {
		name string
		args []string
	}{
		{"plain", []string{"-T", f.tsDir + "=" + f.plainTS}},
		{"tar", []string{"-Ft"}},
		{"tar_gz_stream", []string{"-Ft", "-z", "-X", "stream"}},
		{"tar_lz4_fetch", []string{"-Ft", "--compress=lz4", "-X", "fetch"}},
		{"tar_zstd", []string{"-Ft", "--compress=zstd"}},
	} {
		if _, err := lab.BaseBackup(ctx, p, v.name, v.args...); err != nil {
			if strings.Contains(err.Error(), "not support") {
				f.skipped[v.name] = err.Error()
				continue
			}
			return nil, err
		}
	}
	// After the backups: a restore point between two batches of rows
	// (transactions xid1 and xid2); midTime and midLSN are taken between
	// the restore point and the second batch, for the drill's targets.
	if f.xid1, err = p.QueryString(ctx, "WITH ins AS (INSERT INTO t_ts SELECT g, 'late' FROM generate_series(1001, 1200) g RETURNING 1) SELECT pg_current_xact_id()::text"); err != nil {
		return nil, err
	}
	if err := p.Exec(ctx, "SELECT pg_create_restore_point('"+strings.ReplaceAll(f.rpName, "'", "''")+"')"); err != nil {
		return nil, err
	}
	time.Sleep(20 * time.Millisecond)
	if f.midTime, err = p.QueryString(ctx, `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`); err != nil {
		return nil, err
	}
	if f.midLSN, err = p.QueryString(ctx, "SELECT pg_current_wal_insert_lsn()::text"); err != nil {
		return nil, err
	}
	time.Sleep(20 * time.Millisecond)
	if f.xid2, err = p.QueryString(ctx, "WITH ins AS (INSERT INTO t_ts SELECT g, 'later' FROM generate_series(1201, 1500) g RETURNING 1) SELECT pg_current_xact_id()::text"); err != nil {
		return nil, err
	}
	if _, err := lab.SwitchAndWait(ctx, p); err != nil {
		return nil, err
	}
	if err := p.Stop(ctx); err != nil {
		return nil, err
	}
	bs, _, err := backup.ScanDir(ctx, lab.Backups)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		if !b.Usable() || b.Manifest == nil || b.Control == nil {
			return nil, fmt.Errorf("backup %s is not usable as a fixture: %+v", b.ID, b.Findings)
		}
		f.backups[b.ID] = b
	}
	if f.labSnap, err = snapshotDir(lab.Root, nil); err != nil {
		return nil, err
	}
	ok = true
	return f, nil
}

// assertLabUnchanged fails if anything in the lab (primary, archive,
// backups, the tablespace directories) changed since the fixture was built.
func (f *fixture) assertLabUnchanged(t *testing.T) {
	t.Helper()
	if d := diffSnapshots(f.labSnap, snapshot(t, f.lab.Root, nil)); len(d) > 0 {
		t.Fatalf("the drill wrote outside its scratch directory: %v", d)
	}
}

func (f *fixture) backup(t *testing.T, name string) *backup.Backup {
	t.Helper()
	if why, ok := f.skipped[name]; ok {
		t.Skipf("this pg_basebackup cannot make %s: %s", name, why)
	}
	b := f.backups[name]
	if b == nil {
		t.Fatalf("no fixture backup %s", name)
	}
	return b
}

// newScratch makes a short scratch directory under /tmp, removed after
// the test (and after its servers stop: cleanups run last-in first-out).
func newScratch(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "wd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

type drillRun struct {
	srv *pgserver.Server
	r   *Restored
	cfg *ConfigResult
	rec *pgserver.RecoveryResult
}

// drill restores b into a new scratch directory, lets prep tamper with
// the restored files, writes the recovery configuration and runs a real
// recovery until it pauses, promotes or fails.
func (f *fixture) drill(t *testing.T, b *backup.Backup, s Settings, prep func(r *Restored)) *drillRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	scratch := newScratch(t)
	r, err := Restore(ctx, b, scratch, f.user)
	if err != nil {
		t.Fatalf("restore %s: %v", b.ID, err)
	}
	if prep != nil {
		prep(r)
	}
	if s.RestoreCommand == "" {
		s.RestoreCommand = fmt.Sprintf("cp %s/%%f %%p", f.lab.Archive)
	}
	s.Bin, s.Control, s.User, s.Port = f.bin, b.Control, f.user, 5433
	cfg, err := WriteRecoveryConfig(r.DataDir, s)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pgserver.New(f.bin, f.user, r.DataDir, scratch, 5433)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	if err := srv.Start(ctx, false); err != nil {
		t.Fatal(err)
	}
	rec, err := srv.WaitRecovery(ctx)
	if err != nil {
		t.Fatalf("%v\n%s", err, srv.LogTail(30))
	}
	return &drillRun{srv: srv, r: r, cfg: cfg, rec: rec}
}

func query(t *testing.T, s *pgserver.Server, q string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := s.QueryString(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// TestRestoreRecover restores every pg_basebackup format with a user
// tablespace, starts a real server on it that recovers to the backup's
// consistency point, and queries it; nothing outside the scratch
// directory changes, the production tablespace included.
func TestRestoreRecover(t *testing.T) {
	f := realFixture(t)
	for _, name := range []string{"plain", "tar", "tar_gz_stream", "tar_lz4_fetch", "tar_zstd"} {
		t.Run(name, func(t *testing.T) {
			b := f.backup(t, name)
			d := f.drill(t, b, Settings{Target: plan.Target{Kind: plan.TargetImmediate}}, nil)
			if d.rec.State != pgserver.RecoveryPaused || !strings.Contains(d.rec.StopLine, "consistency") {
				t.Fatalf("recovery %+v\n%s", d.rec, d.srv.LogTail(30))
			}
			if got := query(t, d.srv, "SELECT count(*)::text FROM t_ts"); got != "1000" {
				t.Errorf("t_ts has %s rows at the backup's consistency point, want 1000", got)
			}
			if got := query(t, d.srv, "SELECT count(*)::text FROM t_ts WHERE v LIKE 'v%'"); got != "1000" { // through the index in ts1
				t.Errorf("index scan: %s", got)
			}
			wantDir := filepath.Join(d.r.Scratch, "tblspc", strconv.FormatUint(uint64(f.tsOID), 10))
			if got := query(t, d.srv, fmt.Sprintf("SELECT pg_tablespace_location(%d)", f.tsOID)); got != wantDir {
				t.Errorf("tablespace location %s, want %s", got, wantDir)
			}
			if l, _ := os.Readlink(filepath.Join(d.r.DataDir, "pg_tblspc", strconv.FormatUint(uint64(f.tsOID), 10))); l != wantDir {
				t.Errorf("pg_tblspc link -> %s", l)
			}
			wantOrig := f.tsDir
			if b.Format == backup.FormatPlain {
				wantOrig = f.plainTS
			}
			if d.r.OriginalTablespaces[f.tsOID] != wantOrig || d.r.TablespaceMapRemoved != (b.Format == backup.FormatTar) {
				t.Errorf("original %v, map removed %v", d.r.OriginalTablespaces, d.r.TablespaceMapRemoved)
			}
			if want := checkable(b.Manifest); !d.r.Manifest || d.r.Verified != want || want < 1000 || len(d.r.Problems) != 0 {
				t.Errorf("manifest verification: %v, %d of %d verified, %v", d.r.Manifest, d.r.Verified, want, d.r.Problems)
			}
			if (name == "tar_gz_stream" || name == "tar_lz4_fetch") && len(d.r.WALFiles) == 0 {
				t.Errorf("%s carries WAL but none was restored", name)
			}
			for q, want := range map[string]string{
				"SHOW archive_mode": "off", "SHOW shared_preload_libraries": "pg_stat_statements",
				"SHOW max_connections": "150", "SHOW listen_addresses": "", "SHOW port": "5433",
			} {
				if got := query(t, d.srv, q); got != want {
					t.Errorf("%s = %q, want %q", q, got, want)
				}
			}
		})
	}
	f.assertLabUnchanged(t)
}

// TestConfigNeutralises restores a backup whose configuration was made
// hostile (archive to a leak directory, a primary to follow, a second
// recovery target, missing libraries, SSL without certificates, an
// include of a missing file, standby.signal) and recovers it to a restore
// point whose name needs quoting; then promotes it and runs amcheck,
// creating the extension.
func TestConfigNeutralises(t *testing.T) {
	f := realFixture(t)
	leak, err := os.MkdirTemp("/tmp", "wdleak")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(leak)
	if err := f.user.Chown(leak); err != nil {
		t.Fatal(err)
	}
	hostileAuto := fmt.Sprintf(`
archive_mode = on
archive_command = 'cp %%p %s/%%f'
primary_conninfo = 'host=/nonexistent port=1 user=replicator password=secret'
primary_slot_name = 'prod_slot'
recovery_target_name = 'nope'
shared_preload_libraries = 'pg_stat_statements, nonexistent, pg_cron'
ssl = on
huge_pages = on
port = 1
listen_addresses = '*'
`, leak)
	d := f.drill(t, f.backup(t, "tar"), Settings{Target: plan.Target{Kind: plan.TargetName, Name: f.rpName}}, func(r *Restored) {
		af, err := os.OpenFile(filepath.Join(r.DataDir, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		af.WriteString(hostileAuto)
		af.Close()
		os.WriteFile(filepath.Join(r.DataDir, "postgresql.conf"), []byte("include '/nonexistent/main.conf'\nhba_file = '/nonexistent/pg_hba.conf'\n"), 0o600)
		os.WriteFile(filepath.Join(r.DataDir, "standby.signal"), nil, 0o600)
	})
	if d.rec.State != pgserver.RecoveryPaused || !strings.Contains(d.rec.StopLine, `recovery stopping at restore point "`+f.rpName+`"`) {
		t.Fatalf("recovery %+v\n%s", d.rec, d.srv.LogTail(30))
	}
	if got := query(t, d.srv, "SELECT count(*)::text FROM t_ts"); got != "1200" {
		t.Errorf("t_ts has %s rows at the restore point, want 1200", got)
	}
	for q, want := range map[string]string{
		"SHOW archive_mode": "off", "SELECT setting FROM pg_file_settings WHERE name = 'archive_command' AND applied": "",
		"SELECT count(*)::text FROM pg_file_settings WHERE sourcefile NOT LIKE '%/postgresql.conf'": "0", "SHOW primary_conninfo": "", "SHOW primary_slot_name": "",
		"SHOW recovery_target_name": f.rpName, "SHOW recovery_target": "", "SHOW shared_preload_libraries": "pg_stat_statements",
		"SHOW ssl": "off", "SHOW port": "5433", "SHOW listen_addresses": "", "SHOW max_connections": primaryParams["max_connections"],
		"SHOW max_locks_per_transaction": primaryParams["max_locks_per_transaction"], "SHOW max_worker_processes": primaryParams["max_worker_processes"],
		"SHOW max_wal_senders": primaryParams["max_wal_senders"], "SHOW max_prepared_transactions": primaryParams["max_prepared_transactions"],
		"SHOW restore_command": fmt.Sprintf("cp %s/%%f %%p", f.lab.Archive), "SHOW hba_file": filepath.Join(d.r.DataDir, "pg_hba.conf"),
		"SHOW recovery_target_action": "pause", "SHOW hot_standby": "on",
	} {
		if got := query(t, d.srv, q); got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
	for _, n := range []string{"archive_mode", "archive_command", "primary_conninfo", "primary_slot_name", "recovery_target_name",
		"shared_preload_libraries", "ssl", "huge_pages", "port", "listen_addresses", "include", "hba_file"} {
		if !slices.Contains(d.cfg.Neutralised, n) {
			t.Errorf("%s not reported neutralised: %v", n, d.cfg.Neutralised)
		}
	}
	if !slices.Equal(d.cfg.PreloadKept, []string{"pg_stat_statements"}) || !slices.Equal(d.cfg.PreloadDropped, []string{"nonexistent", "pg_cron"}) {
		t.Errorf("preload kept %v dropped %v", d.cfg.PreloadKept, d.cfg.PreloadDropped)
	}
	if _, err := os.Stat(filepath.Join(d.r.DataDir, "standby.signal")); err == nil {
		t.Error("standby.signal kept")
	}

	// Promote the drill's server: nothing may reach the production
	// archive (the new timeline's history file is not archived), and
	// amcheck can now be created and run everywhere.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if got := query(t, d.srv, "SELECT pg_promote(true, 60)::text"); got != "true" {
		t.Fatalf("pg_promote: %s", got)
	}
	if err := d.srv.Exec(ctx, "CREATE TABLE after_promote (i int)", "SELECT pg_switch_wal()", "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
	results := Amcheck(ctx, d.srv.ConnString(""), AmcheckOptions{CreateExtension: true, HeapAllIndexed: true})
	if len(results) != 3 {
		t.Fatalf("amcheck results %+v", results)
	}
	for _, r := range results {
		if !r.Pass || r.Err != "" || r.Rows == 0 || strings.Contains(r.Actual, "skipped") {
			t.Errorf("amcheck on the promoted server, database %s: %+v", r.Database, r)
		}
	}
	time.Sleep(500 * time.Millisecond) // an archiver, were one running, would have acted
	if ents, _ := os.ReadDir(leak); len(ents) != 0 {
		t.Errorf("WAL leaked through the restored archive_command: %v", ents)
	}
	f.assertLabUnchanged(t)
}

// TestChecksAndAmcheckPaused runs verification checks and amcheck against
// a real server paused at its target (read-only).
func TestChecksAndAmcheckPaused(t *testing.T) {
	f := realFixture(t)
	d := f.drill(t, f.backup(t, "tar_zstd"), Settings{Target: plan.Target{Kind: plan.TargetImmediate}}, nil)
	if d.rec.State != pgserver.RecoveryPaused {
		t.Fatalf("recovery %+v\n%s", d.rec, d.srv.LogTail(30))
	}
	checks, err := ParseChecks([]byte(`checks:
  - name: customers
    database: shop
    sql: SELECT id, email, deleted_at FROM customers ORDER BY id
    expect_rows:
      - [1, alice@example.com, null]
      - [2, bob@example.com, "2026-03-01 10:00:00+00"]
      - [3, null, null]
  - name: customers_wrong
    database: shop
    sql: SELECT id, email, deleted_at FROM customers ORDER BY id
    expect_rows:
      - [1, mallory@example.com, null]
      - [2, bob@example.com, "2026-03-01 10:00:00+00"]
      - [3, null, null]
  - name: customers_short
    database: shop
    sql: SELECT id FROM customers ORDER BY id
    expect_rows: [[1], [2]]
  - name: rows_1000
    sql: SELECT * FROM t_ts
    expect_count: 1000
  - name: rows_999
    sql: SELECT * FROM t_ts
    expect_count: 999
  - name: count_value
    sql: SELECT count(*) FROM t_ts
    expect_value: 1000
  - name: null_is_null
    sql: SELECT NULL::text
    expect_value: null
  - name: null_is_not_text
    sql: SELECT 'null'
    expect_value: null
  - name: empty_is_not_null
    sql: SELECT NULL::text
    expect_value: ""
  - name: two_columns_for_value
    sql: SELECT 1, 2
    expect_value: 1
  - name: unordered_desc
    database: shop
    sql: SELECT id FROM customers ORDER BY id DESC
    unordered: true
    expect_rows: [[1], [2], [3]]
  - name: unordered_asc
    database: shop
    sql: SELECT id FROM customers ORDER BY id
    unordered: true
    expect_rows: [[3], [2], [1]]
  - name: ordered_desc
    database: shop
    sql: SELECT id FROM customers ORDER BY id DESC
    expect_rows: [[1], [2], [3]]
  - name: bad_sql
    sql: SELEC 1
    expect_count: 1
  - name: write_attempt
    database: shop
    sql: INSERT INTO customers VALUES (9, 'x', NULL)
    expect_count: 0
  - name: no_such_db
    database: nosuchdb
    sql: SELECT 1
    expect_count: 1
  - name: after_error
    sql: SELECT 'still running'
    expect_value: still running
  - name: several_statements
    sql: SET LOCAL search_path = pg_catalog; SELECT 42 AS answer
    expect_value: 42
  - name: slow
    sql: SELECT pg_sleep(5)
    timeout: 200ms
    expect_count: 1
  - name: bool_text
    sql: SELECT true, 1.50::numeric, '2026-04-01'::date
    expect_rows: [[t, 1.50, 2026-04-01]]
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res := RunChecks(ctx, d.srv.ConnString(""), checks)
	if len(res) != len(checks) {
		t.Fatalf("%d results for %d checks", len(res), len(checks))
	}
	by := map[string]CheckResult{}
	for _, r := range res {
		by[r.Name] = r
	}
	for _, c := range []struct {
		name           string
		pass           bool
		errHas, sqlst  string
		actual, expect string
	}{
		{name: "customers", pass: true, actual: `[["1","alice@example.com",null],["2","bob@example.com","2026-03-01 10:00:00+00"],["3",null,null]]`},
		{name: "customers_wrong", actual: `["1","alice@example.com",null]`, expect: `["1","mallory@example.com",null]`},
		{name: "customers_short", actual: `[["1"],["2"],["3"]]`, expect: `[["1"],["2"]]`},
		{name: "rows_1000", pass: true, actual: "1000 rows"},
		{name: "rows_999", actual: "1000 rows", expect: "999 rows"},
		{name: "count_value", pass: true, actual: `"1000"`},
		{name: "null_is_null", pass: true, actual: "NULL"},
		{name: "null_is_not_text", actual: `"null"`, expect: "NULL"},
		{name: "empty_is_not_null", actual: "NULL", expect: `""`},
		{name: "two_columns_for_value", actual: "1 row of 2 columns"},
		{name: "unordered_desc", pass: true, expect: "(any order)"},
		{name: "unordered_asc", pass: true},
		{name: "ordered_desc", actual: `[["3"],["2"],["1"]]`},
		{name: "bad_sql", errHas: "syntax error", sqlst: "42601"},
		{name: "write_attempt", errHas: "read-only transaction", sqlst: "25006"},
		{name: "no_such_db", errHas: `database "nosuchdb" does not exist`, sqlst: "3D000"},
		{name: "after_error", pass: true, actual: `"still running"`},
		{name: "several_statements", pass: true, actual: `"42"`},
		{name: "slow", errHas: "statement timeout", sqlst: "57014"},
		{name: "bool_text", pass: true},
	} {
		r := by[c.name]
		if r.Pass != c.pass || !strings.Contains(r.Err, c.errHas) || r.SQLState != c.sqlst || (c.errHas == "") != (r.Err == "") ||
			!strings.Contains(r.Actual, c.actual) || !strings.Contains(r.Expected, c.expect) {
			t.Errorf("%s: %+v", c.name, r)
		}
	}
	if by["unordered_desc"].Digest != by["unordered_asc"].Digest || by["ordered_desc"].Digest == by["unordered_desc"].Digest {
		t.Error("unordered digests must ignore row order, and differ from ordered ones")
	}
	if by["customers"].Digest != by["customers_wrong"].Digest {
		t.Error("the same query's rows must hash the same whatever was expected")
	}
	again := RunChecks(ctx, d.srv.ConnString(""), checks)
	if Fingerprint(res) != Fingerprint(again) {
		t.Error("fingerprint differs between two runs on the same server")
	}
	changed := slices.Clone(checks)
	changed[3].SQL = "SELECT * FROM t_ts WHERE id > 1"
	if Fingerprint(RunChecks(ctx, d.srv.ConnString(""), changed)) == Fingerprint(res) {
		t.Error("fingerprint ignores a changed result")
	}

	// amcheck on the paused server: the clear message where it is not
	// installed (never created, even when asked), a real check where it is.
	for _, create := range []bool{false, true} {
		results := Amcheck(ctx, d.srv.ConnString(""), AmcheckOptions{CreateExtension: create})
		dbs := map[string]CheckResult{}
		for _, r := range results {
			dbs[r.Database] = r
		}
		for _, db := range []string{"postgres", "template1"} {
			if r := dbs[db]; r.Pass || r.Err != AmcheckNotInstalled {
				t.Errorf("create=%v, %s: %+v", create, db, r)
			}
		}
		if r := dbs["shop"]; !r.Pass || r.Err != "" || r.Rows < 2 || !strings.Contains(r.Actual, "1 unlogged skipped") {
			t.Errorf("create=%v, shop: %+v", create, r)
		}
		if len(results) != 3 {
			t.Errorf("amcheck covered %d databases: %+v", len(results), results)
		}
	}
	if got := query(t, d.srv, "SELECT count(*)::text FROM pg_extension WHERE extname = 'amcheck'"); got != "0" {
		t.Errorf("amcheck appeared in postgres: %s", got)
	}
	f.assertLabUnchanged(t)
}

// TestManifestVerification corrupts backups and restored files: a flipped
// byte, a missing file, an extra file, a damaged manifest.
func TestManifestVerification(t *testing.T) {
	f := realFixture(t)
	ctx := context.Background()
	user := f.user

	t.Run("plain source", func(t *testing.T) {
		src := f.backup(t, "plain")
		cp := filepath.Join(newScratch(t), "b")
		if err := pgserver.CopyTree(src.Path, cp, user); err != nil {
			t.Fatal(err)
		}
		flip, gone := "", ""
		for _, mf := range src.Manifest.Files {
			if strings.HasPrefix(mf.Path, "base/") && mf.Size > 8192 {
				if flip == "" {
					flip = mf.Path
				} else if gone == "" {
					gone = mf.Path
				}
			}
		}
		flipByte(t, filepath.Join(cp, flip), 100)
		os.Remove(filepath.Join(cp, gone))
		os.WriteFile(filepath.Join(cp, "base/1/walaudit_extra"), []byte("x"), 0o600)
		bs, _, err := backup.ScanDir(ctx, cp)
		if err != nil || len(bs) != 1 {
			t.Fatal(err)
		}
		r, err := Restore(ctx, bs[0], newScratch(t), user)
		if !errors.Is(err, ErrVerification) || r == nil {
			t.Fatalf("restore of a corrupt copy: %v", err)
		}
		if !strings.Contains(err.Error(), flip) {
			t.Errorf("error does not name %s: %v", flip, err)
		}
		wantProblems(t, r.Problems, flip+" has CRC32C", `"`+gone+`" is present in the manifest but not in the backup`,
			`"base/1/walaudit_extra" is present in the backup but not in the manifest`)
	})

	t.Run("tablespace tar", func(t *testing.T) {
		src := f.backup(t, "tar")
		cp := filepath.Join(newScratch(t), "b")
		os.Mkdir(cp, 0o755)
		oidTar := fmt.Sprintf("%d.tar", f.tsOID)
		for _, n := range []string{"base.tar", "backup_manifest"} {
			copyFile(t, filepath.Join(src.Path, n), filepath.Join(cp, n))
		}
		victim := rewriteTarFlip(t, filepath.Join(src.Path, oidTar), filepath.Join(cp, oidTar))
		bs, _, err := backup.ScanDir(ctx, cp)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Restore(ctx, bs[0], newScratch(t), user)
		want := fmt.Sprintf("pg_tblspc/%d/%s", f.tsOID, victim)
		if !errors.Is(err, ErrVerification) || r == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("restore with a flipped byte in %s: %v", want, err)
		}
		wantProblems(t, r.Problems, want+" has CRC32C")

		// A manifest edited after the fact fails its own checksum.
		m, _ := os.ReadFile(filepath.Join(cp, "backup_manifest"))
		i := bytes.Index(m, []byte(`"Size": `))
		m[i+8] = '9'
		os.WriteFile(filepath.Join(cp, "backup_manifest"), m, 0o644)
		copyFile(t, filepath.Join(src.Path, oidTar), filepath.Join(cp, oidTar))
		bs, _, _ = backup.ScanDir(ctx, cp)
		r, err = Restore(ctx, bs[0], newScratch(t), user)
		if !errors.Is(err, ErrVerification) || r == nil || !strings.Contains(err.Error(), "Manifest-Checksum does not match") {
			t.Fatalf("restore with an edited manifest: %v", err)
		}
	})

	t.Run("restored files", func(t *testing.T) {
		b := f.backup(t, "tar_gz_stream")
		r, err := Restore(ctx, b, newScratch(t), user)
		if err != nil {
			t.Fatal(err)
		}
		n, probs, err := VerifyRestored(ctx, r, b.Manifest)
		// tablespace_map was verified while restoring, then removed.
		if err != nil || len(probs) != 0 || !r.TablespaceMapRemoved || n != checkable(b.Manifest)-1 || n != r.Verified-1 {
			t.Fatalf("clean restore: %d verified (restore %d, manifest %d), %v, %v", n, r.Verified, checkable(b.Manifest), probs, err)
		}
		var flip, ts string
		for _, mf := range b.Manifest.Files {
			if flip == "" && strings.HasPrefix(mf.Path, "global/") && mf.Size > 0 && mf.Path != "global/pg_control" {
				flip = mf.Path
			}
			if ts == "" && strings.HasPrefix(mf.Path, "pg_tblspc/") && mf.Size > 0 {
				ts = mf.Path
			}
		}
		flipByte(t, filepath.Join(r.DataDir, flip), 0)
		if err := os.Remove(filepath.Join(r.DataDir, ts)); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(r.Tablespaces[f.tsOID], "stray"), nil, 0o600)
		_, probs, err = VerifyRestored(ctx, r, b.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		wantProblems(t, probs, flip+" has CRC32C", `"`+ts+`" is present in the manifest but not in the backup`,
			fmt.Sprintf(`"pg_tblspc/%d/stray" is present in the backup but not in the manifest`, f.tsOID))
	})
	f.assertLabUnchanged(t)
}

// TestSpaceCheck compares the backup's needs with the real file system.
func TestSpaceCheck(t *testing.T) {
	f := realFixture(t)
	ctx := context.Background()
	for _, name := range []string{"plain", "tar_gz_stream"} {
		b := f.backup(t, name)
		if err := SpaceCheck("/tmp", b, 16<<20); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		err := SpaceCheck("/tmp", b, 1<<60)
		if err == nil || !strings.Contains(err.Error(), "not enough space in /tmp") || !strings.Contains(err.Error(), "from the manifest") {
			t.Errorf("%s with an exabyte of WAL: %v", name, err)
		}
		withManifest, err := MeasureSpace(ctx, "/tmp", b, 0)
		if err != nil {
			t.Fatal(err)
		}
		nb := *b
		nb.Manifest = nil
		without, err := MeasureSpace(ctx, "/tmp", &nb, 0)
		if err != nil {
			t.Fatal(err)
		}
		// The two measures agree within the manifest's own size and the WAL.
		lo, hi := withManifest.DataBytes*9/10, withManifest.DataBytes*12/10+int64(len(b.WALSegments)+2)<<20
		if without.DataBytes < lo || without.DataBytes > hi || without.Source == "manifest" {
			t.Errorf("%s: %d bytes from the %s, %d from the manifest", name, without.DataBytes, without.Source, withManifest.DataBytes)
		}
	}
}

// checkable counts the manifest entries pg_verifybackup checks (it
// ignores postgresql.auto.conf and pg_wal/, which the manifest lists).
func checkable(m *backup.Manifest) int {
	n := 0
	for _, f := range m.Files {
		if !ignoredPath(f.Path) {
			n++
		}
	}
	return n
}

func flipByte(t *testing.T, p string, off int64) {
	t.Helper()
	fh, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var b [1]byte
	if _, err := fh.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := fh.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rewriteTarFlip copies a tar, flipping one byte in its largest regular
// file, and returns that file's name.
func rewriteTarFlip(t *testing.T, src, dst string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	type ent struct {
		h    *tar.Header
		body []byte
	}
	var ents []ent
	tr := tar.NewReader(in)
	big := -1
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		ents = append(ents, ent{h, body})
		if h.Typeflag == tar.TypeReg && (big < 0 || len(body) > len(ents[big].body)) {
			big = len(ents) - 1
		}
	}
	ents[big].body[len(ents[big].body)/2] ^= 1
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, e := range ents {
		tw.WriteHeader(e.h)
		tw.Write(e.body)
	}
	tw.Close()
	if err := os.WriteFile(dst, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return ents[big].h.Name
}

func wantProblems(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d problems, want %d: %q", len(got), len(want), got)
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, w) }) {
			t.Errorf("no problem mentions %q: %q", w, got)
		}
	}
}
