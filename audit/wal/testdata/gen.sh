#!/bin/sh
# gen.sh regenerates the real PostgreSQL 15 WAL fixtures in this directory.
#
# It creates a throw-away cluster with 1 MiB segments and WAL archiving,
# runs a workload that produces every record kind the reader's tests look
# for, and keeps the archived segments gzip-compressed together with
# pg_waldump's output for them (the golden file real_test.go compares with).
#
# Run it as root from anywhere (initdb refuses root, so the server runs as
# "postgres"); it needs the Debian postgresql-15 package:
#
#	sh audit/wal/testdata/gen.sh
#
# Timestamps, XIDs and the system identifier change on every run, so
# regenerating replaces all fixtures at once; real_test.go reads the
# expectations from the golden file, never from hard-coded values.
set -eu

BIN=/usr/lib/postgresql/15/bin
WORK=/tmp/walfix
OUT=$(cd "$(dirname "$0")" && pwd)

as_pg() { runuser -u postgres -- "$@"; }
psql_q() { as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -d postgres "$@"; }

if [ -f "$WORK/data/postmaster.pid" ]; then
	as_pg "$BIN/pg_ctl" -D "$WORK/data" -m immediate stop || true
fi
rm -rf "$WORK"
mkdir -p "$WORK/archive"
chown -R postgres "$WORK"

as_pg "$BIN/initdb" -D "$WORK/data" --wal-segsize=1 -U postgres -A trust >/dev/null
cat >>"$WORK/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$WORK'
archive_mode = on
archive_command = 'cp %p $WORK/archive/%f'
wal_level = logical
max_prepared_transactions = 5
max_connections = 20
EOF
as_pg "$BIN/pg_ctl" -D "$WORK/data" -l "$WORK/log" -w start >/dev/null

# Workload. Each step names the record kinds it is there for.
psql_q <<'EOF'
-- plain commits (Heap INSERT, Transaction COMMIT)
CREATE TABLE t (id int, v text);
INSERT INTO t VALUES (1, 'one');
INSERT INTO t VALUES (2, 'two');
-- an abort (Transaction ABORT)
BEGIN; INSERT INTO t VALUES (3, 'rolled back'); ROLLBACK;
-- a commit with subtransactions (COMMIT with HAS_SUBXACTS; wal_level=logical
-- also adds the TOPLEVEL_XID fragment to the first record of each subxact)
BEGIN;
INSERT INTO t VALUES (4, 'top');
SAVEPOINT a; INSERT INTO t VALUES (5, 'sub a');
SAVEPOINT b; INSERT INTO t VALUES (6, 'sub b');
COMMIT;
-- two-phase commit: PREPARE, COMMIT_PREPARED, PREPARE, ABORT_PREPARED (with GIDs)
BEGIN; INSERT INTO t VALUES (7, 'prepared'); PREPARE TRANSACTION 'gid_commit';
COMMIT PREPARED 'gid_commit';
BEGIN; INSERT INTO t VALUES (8, 'prepared'); PREPARE TRANSACTION 'gid_abort';
ROLLBACK PREPARED 'gid_abort';
-- a restore point
SELECT pg_create_restore_point('rp1');
-- DROP TABLE: commit with RELFILENODES, DROPPED_STATS and INVALS
CREATE TABLE d (x int);
DROP TABLE d;
-- a row larger than a page (TOASTed) and a 20 kB record spanning pages
CREATE TABLE big (v text);
ALTER TABLE big ALTER COLUMN v SET STORAGE EXTERNAL;
INSERT INTO big SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i;
SELECT pg_logical_emit_message(true, 'walfix', repeat('x', 20000)) IS NOT NULL;
-- an online checkpoint, then full-page images
CHECKPOINT;
UPDATE t SET v = v || '!' WHERE id = 1;
-- a 2.2 MB record: spans segment boundaries and covers one segment entirely
SELECT pg_logical_emit_message(true, 'walfix', repeat('y', 2200000)) IS NOT NULL;
INSERT INTO t SELECT g, repeat('z', 100) FROM generate_series(100, 160) g;
EOF

# A restart with a different max_connections writes a shutdown checkpoint
# and, at startup, XLOG PARAMETER_CHANGE.
as_pg "$BIN/pg_ctl" -D "$WORK/data" -w stop >/dev/null
sed -i 's/^max_connections = 20$/max_connections = 25/' "$WORK/data/postgresql.conf"
as_pg "$BIN/pg_ctl" -D "$WORK/data" -l "$WORK/log" -w start >/dev/null

# A non-exclusive backup (BACKUP_END), then a final switch. pg_backup_stop
# waits until its segment is archived.
psql_q <<'EOF'
INSERT INTO t VALUES (9, 'after restart');
SELECT pg_backup_start('walfix', true) IS NOT NULL;
SELECT pg_backup_stop() IS NOT NULL;
INSERT INTO t VALUES (10, 'last');
EOF
last=$(psql_q -At -c "SELECT pg_walfile_name(pg_switch_wal())")
i=0
while [ ! -f "$WORK/archive/$last" ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "segment $last was not archived" >&2; exit 1; }
	sleep 0.2
done
as_pg "$BIN/pg_ctl" -D "$WORK/data" -w stop >/dev/null

# Keep every archived segment (they are contiguous on timeline 1).
rm -f "$OUT"/*.gz "$OUT"/waldump.txt
segs=$(cd "$WORK/archive" && ls | grep -E '^[0-9A-F]{24}$' | sort)
first=$(echo "$segs" | head -n 1)
for s in $segs; do
	gzip -9 -n -c "$WORK/archive/$s" >"$OUT/$s.gz"
done
# pg_waldump prints logical message payloads in full (megabytes of hex), so
# every line is cut to 250 bytes: the fields the test compares (rmgr, lengths,
# xid, lsn, prev and the start of desc with commit times) come first.
as_pg "$BIN/pg_waldump" -p "$WORK/archive" "$first" "$last" 2>"$WORK/waldump.err" |
	cut -c1-250 >"$OUT/waldump.txt"
cat "$WORK/waldump.err" >&2
echo "kept: $segs"
ls -l "$OUT"
