#!/bin/bash
# gen.sh regenerates the real PostgreSQL 15 fixtures under testdata/pg15.
#
# It builds a throw-away cluster (1 MiB WAL segments, archiving with cp, one
# user tablespace whose path contains a blank), takes several pg_basebackup
# backups in the formats walaudit must read, one of them from a streaming
# standby, and keeps only small files: backup_label, tablespace_map,
# PG_VERSION, global/pg_control, a few small data files, the backup manifests
# (gzip-compressed), tar listings, the archived .backup history files and
# pg_controldata's output for every pg_control kept.
#
# Run it as root on a machine with PostgreSQL 15 in $PGBIN; the server runs as
# the postgres user on a unix socket only. The full backups stay in
# $WORK/bk so that TestRealBackupsDir can be pointed at them:
#
#	WALAUDIT_PG15_BACKUPS=/tmp/bkfix/bk go test ./audit/backup/ -run Real
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
WORK=${WORK:-/tmp/bkfix}
OUT=$(cd "$(dirname "$0")" && pwd)/pg15

as_pg() { runuser -u postgres -- "$@"; }
psql_p() { as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p 5432 -U postgres -d postgres "$@"; }

if [ -f "$WORK/data/postmaster.pid" ]; then as_pg "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate stop || true; fi
if [ -f "$WORK/standby/postmaster.pid" ]; then as_pg "$PGBIN/pg_ctl" -D "$WORK/standby" -m immediate stop || true; fi
rm -rf "$WORK"
mkdir -p "$WORK/archive" "$WORK/bk" "$WORK/ts one"
chown -R postgres "$WORK"

as_pg "$PGBIN/initdb" --wal-segsize=1 -U postgres --auth=trust -D "$WORK/data" >/dev/null
cat >>"$WORK/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$WORK'
port = 5432
archive_mode = on
archive_command = 'cp %p $WORK/archive/%f'
wal_level = replica
max_wal_senders = 5
log_timezone = 'UTC'
EOF
as_pg "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/primary.log" -w start >/dev/null

psql_p -c "CREATE TABLESPACE ts1 LOCATION '$WORK/ts one'" \
	-c "CREATE TABLE t (i int) TABLESPACE ts1" \
	-c "INSERT INTO t SELECT generate_series(1, 1000)"

set_tz() {
	psql_p -c "ALTER SYSTEM SET log_timezone = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 1
}
bb() { as_pg "$PGBIN/pg_basebackup" -h "$WORK" -U postgres -c fast "$@"; }

# 1. plain, no WAL, default CRC32C manifest, UTC times.
set_tz UTC
bb -D "$WORK/bk/plain_none" -Fp -X none -l 'plain none' -T "$WORK/ts one=$WORK/bk/plain_none.ts1"
psql_p -c "INSERT INTO t SELECT generate_series(1, 1000)"

# 2. tar, streamed WAL, SHA256 manifest; Europe/Berlin writes CET or CEST.
set_tz Europe/Berlin
bb -D "$WORK/bk/tar_stream" -Ft -X stream --manifest-checksums=SHA256 -l 'tar stream'
psql_p -c "INSERT INTO t SELECT generate_series(1, 1000)"

# 3. tar.gz with fetched WAL (inside base.tar.gz, after global/pg_control),
#    every manifest path hex-encoded; America/Sao_Paulo writes "-03".
set_tz America/Sao_Paulo
bb -D "$WORK/bk/tar_gzip_fetch" -Ft -z -X fetch --manifest-force-encode -l 'gzip fetch'
psql_p -c "INSERT INTO t SELECT generate_series(1, 1000)"

# 4. lz4 and zstd client-side compression; Asia/Kolkata writes IST.
set_tz Asia/Kolkata
bb -D "$WORK/bk/tar_lz4" -Ft --compress=client-lz4 -X stream -l 'lz4'
bb -D "$WORK/bk/tar_zstd" -Ft --compress=client-zstd -X none --manifest-checksums=SHA512 -l 'zstd none'
set_tz UTC

# 5. a streaming standby, and a backup taken from it.
bb -D "$WORK/standby" -Fp -X stream -R -T "$WORK/ts one=$WORK/standby.ts1"
cat >>"$WORK/standby/postgresql.conf" <<EOF
port = 5433
archive_mode = off
EOF
as_pg "$PGBIN/pg_ctl" -D "$WORK/standby" -l "$WORK/standby.log" -w start >/dev/null
psql_p -c "INSERT INTO t SELECT generate_series(1, 1000)" -c "CHECKPOINT"
sleep 2
as_pg "$PGBIN/psql" -X -q -h "$WORK" -p 5433 -U postgres -d postgres -c "CHECKPOINT"
as_pg "$PGBIN/pg_basebackup" -h "$WORK" -p 5433 -U postgres -c fast -D "$WORK/bk/standby_tar" -Ft -X stream -l 'from standby'
psql_p -c "SELECT pg_switch_wal()" >/dev/null
sleep 2

as_pg "$PGBIN/pg_ctl" -D "$WORK/standby" -m fast -w stop >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/data" -m fast -w stop >/dev/null

# Something that is not a backup, for the scanner's info finding.
mkdir -p "$WORK/bk/notes"
echo "not a backup" >"$WORK/bk/notes/README"

# ---- keep the small things ----
rm -rf "$OUT"
mkdir -p "$OUT/archive"
cp "$WORK"/archive/*.backup "$OUT/archive/"

keep_control() { # dir-with-global/pg_control dest
	cp "$1/global/pg_control" "$2/pg_control"
	LC_ALL=C "$PGBIN/pg_controldata" -D "$1" >"$2/pg_controldata.txt"
}

d="$OUT/plain_none"
mkdir -p "$d"
for f in backup_label PG_VERSION postgresql.auto.conf pg_ident.conf; do cp "$WORK/bk/plain_none/$f" "$d/$f"; done
cp "$WORK/bk/plain_none/global/pg_filenode.map" "$d/pg_filenode.map"
keep_control "$WORK/bk/plain_none" "$d"
gzip -9 -n -c "$WORK/bk/plain_none/backup_manifest" >"$d/backup_manifest.gz"

for b in tar_stream tar_gzip_fetch tar_lz4 tar_zstd standby_tar; do
	d="$OUT/$b"
	mkdir -p "$d"
	x="$WORK/x_$b"
	rm -rf "$x"
	mkdir -p "$x"
	base=$(ls "$WORK/bk/$b" | grep '^base\.tar')
	case "$base" in
	base.tar) tar -C "$x" -xf "$WORK/bk/$b/$base" ;;
	base.tar.gz) tar -C "$x" -xzf "$WORK/bk/$b/$base" ;;
	base.tar.lz4) lz4 -dc "$WORK/bk/$b/$base" | tar -C "$x" -xf - ;;
	base.tar.zst) zstd -dc "$WORK/bk/$b/$base" | tar -C "$x" -xf - ;;
	esac
	for f in backup_label tablespace_map PG_VERSION; do
		if [ -f "$x/$f" ]; then cp "$x/$f" "$d/$f"; fi
	done
	keep_control "$x" "$d"
	gzip -9 -n -c "$WORK/bk/$b/backup_manifest" >"$d/backup_manifest.gz"
	(cd "$WORK/bk/$b" && ls -l | awk 'NR>1 {print $5, $9}') >"$d/files.txt"
	case "$base" in
	base.tar) tar -tvf "$WORK/bk/$b/$base" ;;
	base.tar.gz) tar -tvzf "$WORK/bk/$b/$base" ;;
	base.tar.lz4) lz4 -dc "$WORK/bk/$b/$base" | tar -tvf - ;;
	base.tar.zst) zstd -dc "$WORK/bk/$b/$base" | tar -tvf - ;;
	esac | awk '{print $3, $6}' | grep -E ' (backup_label|tablespace_map|PG_VERSION|global/pg_control|pg_wal/.*)$' >"$d/base_listing.txt" || true
	for w in "$WORK/bk/$b"/pg_wal.tar*; do
		[ -e "$w" ] || continue
		case "$w" in
		*.gz) tar -tvzf "$w" ;;
		*) tar -tvf "$w" ;;
		esac | awk '{print $3, $6}' >"$d/pg_wal_listing.txt"
	done
	rm -rf "$x"
done
echo "fixtures written to $OUT; full backups left in $WORK/bk"
