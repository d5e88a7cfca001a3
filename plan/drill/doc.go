// Package drill holds the pieces of `walaudit drill` that restore a base
// backup into a scratch directory, configure a throwaway PostgreSQL server
// to recover it to a target, run verification queries against it, and
// write the evidence: [Restore] and [SpaceCheck], [WriteRecoveryConfig],
// [LoadChecks], [RunChecks], [Amcheck] and [Fingerprint], and the
// transcript and report writers ([WriteTranscript], [ParseTranscript],
// [WriteReport]).
//
// # Restore
//
// A backup is untrusted input. [Restore] streams plain directories and
// tar archives (base.tar, pg_wal.tar and <oid>.tar, each optionally gzip,
// lz4 or zstd compressed, recognised by content) into scratch/data and
// scratch/tblspc/<oid>, and refuses, naming the entry, anything that would
// land outside them: absolute names, names climbing out with "..",
// symbolic links with an absolute target or any ".." in their target,
// hard links to anything but a file extracted earlier from the same
// archive, writes through a symbolic link, and device files, FIFOs and
// sockets. The one legitimate link out, a tablespace, is remapped: every
// pg_tblspc/<oid> becomes a link to scratch/tblspc/<oid> and
// tablespace_map is removed (PostgreSQL would otherwise recreate the links
// to the production locations it lists at start-up).
//
// When the backup has a backup_manifest every file is checked against it
// while it streams, as pg_verifybackup does (src/bin/pg_verifybackup):
// every regular file must be listed with the same size and checksum, every
// listed file must be present, and backup_manifest, pg_wal,
// postgresql.auto.conf, recovery.signal and standby.signal (and everything
// below them) are ignored. Tablespace files are listed as
// pg_tblspc/<oid>/<name inside the tablespace>. [VerifyRestored] repeats the
// check against the restored files on disk.
//
// # Verification file
//
// Checks are written by hand in YAML. The document holds one key, checks,
// a list of checks with these fields:
//
//	name          required; letters, digits, '_', '.', '-' (at most 64); unique.
//	              The evidence name of the check is check_<name>.
//	database      database to connect to; default postgres.
//	sql           the query. It runs in a READ ONLY transaction that is rolled
//	              back; with several statements, the last one returning rows
//	              is compared.
//	expect_rows   the exact rows, a list of lists of values;
//	expect_count  the number of rows;
//	expect_value  the single value of a query returning one row of one column.
//	              Exactly one of expect_rows, expect_count, expect_value.
//	unordered     true: compare expect_rows as a multiset (row order ignored,
//	              and ignored in the fingerprint too).
//	timeout       statement timeout, a Go duration ("30s"); default 5m.
//
// Values are compared as text, exactly as PostgreSQL prints them (as psql
// shows them): booleans are t and f, timestamps follow DateStyle ISO in
// the drill's time zone (UTC), numerics keep their scale. A YAML null
// (null, ~, or nothing) is SQL NULL; to expect the text "null" write it
// quoted. Unquoted YAML scalars are taken literally as written (1.50 stays
// "1.50", 0x1F stays "0x1F"). Unknown fields are errors, so a misspelt
// expect_row cannot silently pass. Example:
//
//	checks:
//	  - name: orders_before_incident
//	    database: shop
//	    sql: SELECT count(*) FROM orders WHERE created_at < '2026-04-01 09:41:00+00'
//	    expect_value: 18234
//	  - name: customers_1_2
//	    database: shop
//	    sql: |
//	      SELECT id, email, deleted_at
//	      FROM customers WHERE id IN (1, 2) ORDER BY id
//	    expect_rows:
//	      - [1, alice@example.com, null]
//	      - [2, bob@example.com, "2026-03-01 10:00:00+00"]
//	  - name: no_negative_stock
//	    database: shop
//	    sql: SELECT sku FROM stock WHERE qty < 0
//	    expect_count: 0
//	  - name: app_roles
//	    sql: SELECT rolname FROM pg_roles WHERE rolname LIKE 'app%'
//	    unordered: true
//	    expect_rows: [[app_reader], [app_writer]]
//
// # Fingerprint
//
// Each check result carries Digest, a SHA-256 over its canonical rows:
// for each row the number of columns as a uvarint, then per value 0x00 for
// NULL or 0x01, the length as a uvarint and the bytes. An ordered check
// hashes "o" and the rows in order; an unordered one hashes "u" and the
// sorted SHA-256 digests of its rows. [Fingerprint] is a SHA-256 over, for
// every check in order, its name, database and digest (or "error" and the
// SQLSTATE when it failed to run), each length-prefixed. Two drills of
// the same backup and target must produce the same fingerprint.
//
// # Evidence transcript
//
// The transcript is a sequence of blocks, one per session, separated by a
// blank line:
//
//	SESSION_START
//	command: <command or SQL>
//	result: <summary line>
//	KEY_EVIDENCE: name=value, name=value
//	SESSION_END
//
// Names are letters, digits, '_', '.' and '-'. A value is written bare
// unless it is empty, contains ',', '=', '"', '\', a control or other
// non-printable character (newline, tab, no-break space, ...) or invalid
// UTF-8, or starts or ends with a space: then it is written as a Go
// double-quoted string (strconv.Quote) and read back with strconv.Unquote,
// so every byte string round-trips. Pairs are separated by ", ". The
// command and result lines follow the same rule, except that ',', '=' and
// '"' (other than a leading one) do not force quoting there, so SQL stays
// readable. The names walaudit
// uses are the Ev* constants (for example [EvBackupID],
// [EvActualStopLSN]); [CheckEvidenceName] derives check_<name>.
package drill
