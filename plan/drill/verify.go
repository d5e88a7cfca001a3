package drill

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gopkg.in/yaml.v3"
)

// ExpectKind says what a check compares.
type ExpectKind string

// Expectation kinds, named like the file's fields.
const (
	ExpectRows  ExpectKind = "expect_rows"  // exact rows
	ExpectCount ExpectKind = "expect_count" // a number of rows
	ExpectValue ExpectKind = "expect_value" // one row of one column
)

// Value is one SQL value as text; Null marks SQL NULL (Text is then "").
type Value struct {
	Text string // the value as PostgreSQL prints it
	Null bool   // SQL NULL
}

// String renders the value as reports show it: NULL bare, text quoted.
func (v Value) String() string {
	if v.Null {
		return "NULL"
	}
	return strconv.Quote(v.Text)
}

// Check is one named verification query; see the package documentation
// for the file format.
type Check struct {
	Name     string     // unique; letters, digits, '_', '.', '-'
	Database string     // "" means postgres
	SQL      string     // the query
	Kind     ExpectKind // which expectation applies
	// Rows (ExpectRows), Count (ExpectCount) or Value (ExpectValue) is the
	// expected result.
	Rows  [][]Value // ExpectRows
	Count int64     // ExpectCount
	Value Value     // ExpectValue
	// Unordered compares Rows as a multiset.
	Unordered bool
	// Timeout is the statement timeout (0: 5 minutes).
	Timeout time.Duration
	// Line is where the check starts in its file.
	Line int
}

// DefaultCheckTimeout is a check's statement timeout unless it sets one.
const DefaultCheckTimeout = 5 * time.Minute

var checkNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

type checksDoc struct {
	Checks []rawCheck `yaml:"checks"`
}

type rawCheck struct {
	Name        string    `yaml:"name"`
	Database    string    `yaml:"database"`
	SQL         string    `yaml:"sql"`
	ExpectRows  yaml.Node `yaml:"expect_rows"`
	ExpectCount yaml.Node `yaml:"expect_count"`
	ExpectValue yaml.Node `yaml:"expect_value"`
	Unordered   bool      `yaml:"unordered"`
	Timeout     string    `yaml:"timeout"`
}

// LoadChecks reads and parses a verification file.
func LoadChecks(path string) ([]Check, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read checks: %w", err)
	}
	cs, err := ParseChecks(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cs, nil
}

// ParseChecks parses a verification file (see the package documentation).
// Errors give the line and the check's name.
func ParseChecks(data []byte) ([]Check, error) {
	var doc checksDoc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("invalid verification file: %w", err)
	}
	var lines struct {
		Checks []yaml.Node `yaml:"checks"`
	}
	_ = yaml.Unmarshal(data, &lines)
	if len(doc.Checks) == 0 {
		return nil, errors.New("invalid verification file: no checks (want a top-level \"checks:\" list)")
	}
	seen := map[string]int{}
	out := make([]Check, 0, len(doc.Checks))
	for i, rc := range doc.Checks {
		line := 0
		if i < len(lines.Checks) {
			line = lines.Checks[i].Line
		}
		c, err := rc.check(line)
		if err != nil {
			who := fmt.Sprintf("check %d", i+1)
			if rc.Name != "" {
				who += fmt.Sprintf(" (%s)", rc.Name)
			}
			return nil, fmt.Errorf("line %d: %s: %w", line, who, err)
		}
		if prev, dup := seen[c.Name]; dup {
			return nil, fmt.Errorf("line %d: check name %q is used already on line %d", line, c.Name, prev)
		}
		seen[c.Name] = line
		out = append(out, c)
	}
	return out, nil
}

func (rc rawCheck) check(line int) (Check, error) {
	c := Check{Name: rc.Name, Database: rc.Database, SQL: rc.SQL, Unordered: rc.Unordered, Line: line, Timeout: DefaultCheckTimeout}
	if !checkNameRe.MatchString(c.Name) {
		return c, fmt.Errorf("name %q: want 1 to 64 letters, digits, '_', '.' or '-'", c.Name)
	}
	if strings.TrimSpace(c.SQL) == "" {
		return c, errors.New("no sql")
	}
	if rc.Timeout != "" {
		d, err := time.ParseDuration(rc.Timeout)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("timeout %q: want a positive duration such as 30s", rc.Timeout)
		}
		c.Timeout = d
	}
	n := 0
	for _, k := range []*yaml.Node{&rc.ExpectRows, &rc.ExpectCount, &rc.ExpectValue} {
		if k.Kind != 0 {
			n++
		}
	}
	if n != 1 {
		return c, fmt.Errorf("want exactly one of expect_rows, expect_count, expect_value (got %d)", n)
	}
	switch {
	case rc.ExpectRows.Kind != 0:
		c.Kind = ExpectRows
		if rc.ExpectRows.Kind != yaml.SequenceNode {
			return c, fmt.Errorf("line %d: expect_rows: want a list of rows, each a list of values", rc.ExpectRows.Line)
		}
		for i, row := range rc.ExpectRows.Content {
			if row.Kind != yaml.SequenceNode {
				return c, fmt.Errorf("line %d: expect_rows row %d: want a list of values, e.g. [1, alice]", row.Line, i+1)
			}
			vals := make([]Value, 0, len(row.Content))
			for j, cell := range row.Content {
				v, err := nodeValue(cell)
				if err != nil {
					return c, fmt.Errorf("line %d: expect_rows row %d value %d: %w", cell.Line, i+1, j+1, err)
				}
				vals = append(vals, v)
			}
			c.Rows = append(c.Rows, vals)
		}
		if c.Rows == nil {
			c.Rows = [][]Value{}
		}
	case rc.ExpectCount.Kind != 0:
		c.Kind = ExpectCount
		v, err := strconv.ParseInt(rc.ExpectCount.Value, 10, 64)
		if rc.ExpectCount.Kind != yaml.ScalarNode || err != nil || v < 0 {
			return c, fmt.Errorf("line %d: expect_count: want a number of rows, got %q", rc.ExpectCount.Line, rc.ExpectCount.Value)
		}
		c.Count = v
	default:
		c.Kind = ExpectValue
		v, err := nodeValue(&rc.ExpectValue)
		if err != nil {
			return c, fmt.Errorf("line %d: expect_value: %w", rc.ExpectValue.Line, err)
		}
		c.Value = v
	}
	if c.Unordered && c.Kind != ExpectRows {
		return c, errors.New("unordered applies to expect_rows only")
	}
	return c, nil
}

// nodeValue turns a YAML scalar into a Value: null is NULL, anything else
// the text as written.
func nodeValue(n *yaml.Node) (Value, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return Value{}, errors.New("want a single value (quote text holding brackets or colons)")
	}
	if n.Tag == "!!null" {
		return Value{Null: true}, nil
	}
	return Value{Text: n.Value}, nil
}

// CheckResult is the outcome of one check.
type CheckResult struct {
	Name     string `json:"name"`     // the check's name ("amcheck" for Amcheck)
	Database string `json:"database"` // the database it ran in
	// Pass is true when the query ran and its result matched.
	Pass bool `json:"pass"`
	// Expected and Actual render the expectation and what the query
	// returned (rows in JSON-like form, null for NULL; long results cut).
	Expected string `json:"expected"`
	Actual   string `json:"actual"` // what the query returned
	// Err is the error that stopped the check ("" if it ran), with its
	// SQLSTATE in SQLState when PostgreSQL reported one.
	Err      string `json:"error,omitempty"`
	SQLState string `json:"sqlstate,omitempty"` // e.g. 42601 for a syntax error
	// Duration is the query's wall time.
	Duration time.Duration `json:"duration_ns"`
	// Rows is the number of rows returned; Digest the SHA-256 of the
	// canonical rows (see the package documentation).
	Rows   int64  `json:"rows"`
	Digest string `json:"digest,omitempty"` // hex; "" when the check did not run
}

// maxShownRows limits the rows rendered in Actual.
const maxShownRows = 20

// RunChecks runs the checks in order against the server connString
// (a libpq connection string; each check's database replaces its dbname)
// and reports each; a failing or erroring check never stops the others.
// Each query runs in its own READ ONLY transaction, rolled back, with the
// check's statement timeout, over the simple query protocol so that every
// value arrives as PostgreSQL's text output.
func RunChecks(ctx context.Context, connString string, checks []Check) []CheckResult {
	conns := map[string]*pgx.Conn{}
	defer func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}()
	out := make([]CheckResult, 0, len(checks))
	for _, ck := range checks {
		db := ck.Database
		if db == "" {
			db = "postgres"
		}
		res := CheckResult{Name: ck.Name, Database: db, Expected: expectedString(ck)}
		conn := conns[db]
		if conn == nil || conn.IsClosed() {
			c, err := connectDB(ctx, connString, db)
			if err != nil {
				res.Err = err.Error()
				res.SQLState = sqlState(err)
				out = append(out, res)
				continue
			}
			conns[db], conn = c, c
		}
		runCheck(ctx, conn.PgConn(), ck, &res)
		out = append(out, res)
	}
	return out
}

func connectDB(ctx context.Context, connString, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("connection string: %w", err)
	}
	cfg.Database = db
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database %s: %w", db, err)
	}
	return c, nil
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// runCheck runs one check on an open connection.
func runCheck(ctx context.Context, pc *pgconn.PgConn, ck Check, res *CheckResult) {
	timeout := ck.Timeout
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	// The server's statement_timeout ends a slow query cleanly; the
	// context is the backstop for a server that stops answering.
	qctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	fail := func(err error) {
		res.Err, res.SQLState, res.Pass = err.Error(), sqlState(err), false
	}
	if err := pc.Exec(qctx, "BEGIN TRANSACTION READ ONLY").Close(); err != nil {
		fail(err)
		return
	}
	defer func() { _ = pc.Exec(context.Background(), "ROLLBACK").Close() }()
	if err := pc.Exec(qctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", timeout.Milliseconds())).Close(); err != nil {
		fail(err)
		return
	}

	acc := newRowAcc(ck)
	start := time.Now()
	mrr := pc.Exec(qctx, ck.SQL)
	var runErr error
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		if len(rr.FieldDescriptions()) > 0 {
			acc.reset() // the last statement returning rows counts
		}
		for rr.NextRow() {
			acc.add(rr.Values())
		}
		if _, err := rr.Close(); err != nil && runErr == nil {
			runErr = err
		}
	}
	if err := mrr.Close(); err != nil && runErr == nil {
		runErr = err
	}
	res.Duration = time.Since(start)
	if runErr != nil {
		fail(runErr)
		return
	}
	res.Rows, res.Digest = acc.n, acc.digest()
	res.Pass, res.Actual = acc.verdict()
}

// rowAcc streams a query's rows: it counts them, hashes them, keeps what
// the comparison needs and a few for display.
type rowAcc struct {
	ck      Check
	n       int64
	ordered hash.Hash // ordered digest, fed row by row
	rowSum  [][]byte  // unordered: each row's SHA-256
	kept    [][]Value
	ordMis  bool // ordered expect_rows: a row differed
}

func newRowAcc(ck Check) *rowAcc { a := &rowAcc{ck: ck}; a.reset(); return a }

func (a *rowAcc) reset() {
	a.n, a.rowSum, a.kept, a.ordMis = 0, nil, nil, false
	a.ordered = sha256.New()
	a.ordered.Write([]byte("o"))
}

func (a *rowAcc) add(raw [][]byte) {
	row := make([]Value, len(raw))
	for i, v := range raw {
		if v == nil {
			row[i] = Value{Null: true}
		} else {
			row[i] = Value{Text: string(v)}
		}
	}
	enc := canonicalRow(row)
	if a.ck.Unordered {
		s := sha256.Sum256(enc)
		a.rowSum = append(a.rowSum, s[:])
	} else {
		a.ordered.Write(enc)
	}
	switch a.ck.Kind {
	case ExpectRows:
		if a.ck.Unordered {
			if len(a.kept) <= len(a.ck.Rows) {
				a.kept = append(a.kept, row)
			}
		} else {
			if a.n >= int64(len(a.ck.Rows)) || !rowEqual(row, a.ck.Rows[a.n]) {
				a.ordMis = true
			}
			if len(a.kept) < maxShownRows {
				a.kept = append(a.kept, row)
			}
		}
	default:
		if len(a.kept) < maxShownRows {
			a.kept = append(a.kept, row)
		}
	}
	a.n++
}

// canonicalRow encodes a row unambiguously: the number of values, then
// per value 0x00 for NULL or 0x01, the length and the bytes.
func canonicalRow(row []Value) []byte {
	b := binary.AppendUvarint(nil, uint64(len(row)))
	for _, v := range row {
		if v.Null {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(v.Text)))
		b = append(b, v.Text...)
	}
	return b
}

func (a *rowAcc) digest() string {
	if !a.ck.Unordered {
		return hex.EncodeToString(a.ordered.Sum(nil))
	}
	sums := append([][]byte(nil), a.rowSum...)
	sort.Slice(sums, func(i, j int) bool { return bytes.Compare(sums[i], sums[j]) < 0 })
	h := sha256.New()
	h.Write([]byte("u"))
	for _, s := range sums {
		h.Write(s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func rowEqual(a, b []Value) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// verdict compares and renders the actual result.
func (a *rowAcc) verdict() (bool, string) {
	switch a.ck.Kind {
	case ExpectCount:
		return a.n == a.ck.Count, fmt.Sprintf("%d rows", a.n)
	case ExpectValue:
		switch {
		case a.n == 1 && len(a.kept[0]) == 1:
			return a.kept[0][0] == a.ck.Value, a.kept[0][0].String()
		case a.n == 1:
			return false, fmt.Sprintf("1 row of %d columns: %s", len(a.kept[0]), renderRows(a.kept, 1))
		}
		return false, fmt.Sprintf("%d rows: %s", a.n, renderRows(a.kept, a.n))
	}
	if a.ck.Unordered {
		pass := a.n == int64(len(a.ck.Rows)) && sameMultiset(a.kept, a.ck.Rows)
		return pass, renderRows(a.kept, a.n)
	}
	pass := !a.ordMis && a.n == int64(len(a.ck.Rows))
	return pass, renderRows(a.kept, a.n)
}

func sameMultiset(got, want [][]Value) bool {
	if len(got) != len(want) {
		return false
	}
	key := func(r []Value) string { return string(canonicalRow(r)) }
	count := map[string]int{}
	for _, r := range want {
		count[key(r)]++
	}
	for _, r := range got {
		k := key(r)
		if count[k] == 0 {
			return false
		}
		count[k]--
	}
	return true
}

// renderRows renders rows as [["1","a"],[null]]; n is the total number of
// rows, and a cut list says how many more there were.
func renderRows(rows [][]Value, n int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, r := range rows {
		if i == maxShownRows {
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for j, v := range r {
			if j > 0 {
				b.WriteByte(',')
			}
			if v.Null {
				b.WriteString("null")
			} else {
				q, _ := json.Marshal(v.Text)
				b.Write(q)
			}
		}
		b.WriteByte(']')
	}
	b.WriteByte(']')
	shown := min(int64(len(rows)), maxShownRows)
	if n > shown {
		fmt.Fprintf(&b, " (%d rows, first %d shown)", n, shown)
	}
	return b.String()
}

func expectedString(ck Check) string {
	switch ck.Kind {
	case ExpectCount:
		return fmt.Sprintf("%d rows", ck.Count)
	case ExpectValue:
		return ck.Value.String()
	}
	s := renderRows(ck.Rows, int64(len(ck.Rows)))
	if ck.Unordered {
		s += " (any order)"
	}
	return s
}

// Fingerprint is a SHA-256 over the check results in order: each check's
// name, database and row digest, or "error" and its SQLSTATE when it did
// not run (see the package documentation). Identical restores produce
// identical fingerprints.
func Fingerprint(results []CheckResult) string {
	h := sha256.New()
	field := func(s string) {
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	for _, r := range results {
		field(r.Name)
		field(r.Database)
		if r.Err != "" {
			field("error")
			field(r.SQLState)
		} else {
			field("rows")
			field(r.Digest)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// AmcheckOptions tune [Amcheck].
type AmcheckOptions struct {
	// CreateExtension creates amcheck where it is missing, on a promoted
	// (read-write) server only; a server in recovery is never written to.
	CreateExtension bool
	// HeapAllIndexed also checks that every heap tuple has an index entry
	// (bt_index_check(index, true)): slower.
	HeapAllIndexed bool
}

// AmcheckNotInstalled is the message of an amcheck result for a database
// without the extension on a server still in recovery.
const AmcheckNotInstalled = "amcheck not installed: on a paused (read-only) server it cannot be created; rerun with --promote"

// Amcheck runs bt_index_check over every valid btree index of every
// database that accepts connections, one result per database named
// "amcheck" (Database set). Where the amcheck extension is not installed
// the result fails with [AmcheckNotInstalled] on a server in recovery;
// on a promoted server it is created when opts.CreateExtension is set.
// Unlogged indexes cannot be read during recovery and are skipped (and
// counted). Each index is checked in its own statement, so one corrupt
// index does not hide the others.
func Amcheck(ctx context.Context, connString string, opts AmcheckOptions) []CheckResult {
	expected := "every btree index passes bt_index_check"
	if opts.HeapAllIndexed {
		expected += " (heapallindexed)"
	}
	c, err := connectDB(ctx, connString, "postgres")
	if err != nil {
		return []CheckResult{{Name: "amcheck", Database: "postgres", Expected: expected, Err: err.Error(), SQLState: sqlState(err)}}
	}
	var dbs []string
	rows, err := c.Query(ctx, `SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname`)
	if err == nil {
		dbs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	c.Close(context.Background())
	if err != nil {
		return []CheckResult{{Name: "amcheck", Database: "postgres", Expected: expected, Err: err.Error(), SQLState: sqlState(err)}}
	}
	out := make([]CheckResult, 0, len(dbs))
	for _, db := range dbs {
		res := CheckResult{Name: "amcheck", Database: db, Expected: expected}
		start := time.Now()
		amcheckDB(ctx, connString, db, opts, &res)
		res.Duration = time.Since(start)
		out = append(out, res)
	}
	return out
}

func amcheckDB(ctx context.Context, connString, db string, opts AmcheckOptions, res *CheckResult) {
	fail := func(err error) { res.Err, res.SQLState = err.Error(), sqlState(err) }
	c, err := connectDB(ctx, connString, db)
	if err != nil {
		fail(err)
		return
	}
	defer c.Close(context.Background())
	var inRecovery bool
	if err := c.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
		fail(err)
		return
	}
	schema, err := amcheckSchema(ctx, c)
	if err != nil {
		fail(err)
		return
	}
	if schema == "" {
		switch {
		case inRecovery:
			res.Err = AmcheckNotInstalled
			return
		case !opts.CreateExtension:
			res.Err = "amcheck not installed in this database (the drill creates it only when asked to)"
			return
		}
		var avail bool
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck')`).Scan(&avail); err != nil {
			fail(err)
			return
		}
		if !avail {
			res.Err = "amcheck is not available to the drill's server: install PostgreSQL's contrib modules"
			return
		}
		// Checked again right before writing: never on a server in recovery.
		if err := c.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil || inRecovery {
			res.Err = AmcheckNotInstalled
			return
		}
		if _, err := c.Exec(ctx, `CREATE EXTENSION amcheck`); err != nil {
			fail(fmt.Errorf("create extension amcheck: %w", err))
			return
		}
		if schema, err = amcheckSchema(ctx, c); err != nil || schema == "" {
			fail(fmt.Errorf("amcheck created but not found: %v", err))
			return
		}
	}
	type idx struct {
		oid         uint32
		name        string
		persistence string
	}
	rows, err := c.Query(ctx, `
		SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relpersistence::text
		FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_am am ON am.oid = c.relam
		WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't'
		ORDER BY n.nspname, c.relname`)
	if err != nil {
		fail(err)
		return
	}
	idxs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (idx, error) {
		var x idx
		err := r.Scan(&x.oid, &x.name, &x.persistence)
		return x, err
	})
	if err != nil {
		fail(err)
		return
	}
	fn := pgx.Identifier{schema, "bt_index_check"}.Sanitize()
	var bad []string
	checked, skipped := 0, 0
	for _, x := range idxs {
		if inRecovery && x.persistence == "u" {
			skipped++
			continue
		}
		var q string
		if opts.HeapAllIndexed {
			q = fmt.Sprintf(`SELECT %s($1::oid::regclass, true)`, fn)
		} else {
			q = fmt.Sprintf(`SELECT %s($1::oid::regclass)`, fn)
		}
		if _, err := c.Exec(ctx, q, x.oid); err != nil {
			if ctx.Err() != nil {
				fail(ctx.Err())
				return
			}
			bad = append(bad, fmt.Sprintf("%s: %v", x.name, err))
		}
		checked++
	}
	res.Rows = int64(checked)
	res.Actual = fmt.Sprintf("%d btree indexes checked, %d failed", checked, len(bad))
	if skipped > 0 {
		res.Actual += fmt.Sprintf(", %d unlogged skipped (unreadable during recovery)", skipped)
	}
	if len(bad) > 0 {
		res.Actual += ": " + summarize(bad, 10)
	}
	res.Pass = len(bad) == 0
}

// amcheckSchema returns the schema amcheck is installed in, "" if it is not.
func amcheckSchema(ctx context.Context, c *pgx.Conn) (string, error) {
	var s string
	err := c.QueryRow(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'`).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return s, err
}
