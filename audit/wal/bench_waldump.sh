#!/usr/bin/env bash
# Compares walaudit's whole-segment scan with pg_waldump over the same real
# segments, in one run: `walaudit inspect` (all cores) and the reader's
# single-core benchmark against `pg_waldump --stats=record` (one process).
#
#   bash audit/wal/bench_waldump.sh [DIR]
#
# DIR holds WAL segments (default: 1,000 fresh 1 MiB segments made with
# `go run ./plan/internal/benchcache -keep DIR`).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin"
dir=${1:-}
if [ -z "$dir" ]; then
  dir=$(mktemp -d /tmp/walbench.XXXXXX)
  go run ./plan/internal/benchcache -segments 1000 -keep "$dir" >/dev/null
fi
bin=$(mktemp -d)/walaudit
go build -o "$bin" ./cmd/walaudit
waldump=$(pg_config --bindir)/pg_waldump
[ -x "$waldump" ] || waldump=/usr/lib/postgresql/15/bin/pg_waldump
files=("$dir"/[0-9A-F]*)
first=$(basename "${files[0]}"); last=$(basename "${files[${#files[@]}-1]}")
mb=$(du -sm "$dir" | cut -f1)
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
# Warm the page cache for both.
cat "${files[@]}" >/dev/null
w=$(t "$bin" inspect --format json "${files[@]}")
p=$(t "$waldump" --stats=record -p "$dir" "$first" "$last")
w1=$(GOMAXPROCS=1 bash -c "s=\$(date +%s.%N); '$bin' inspect --format json ${files[*]} >/dev/null 2>&1; e=\$(date +%s.%N); echo \"\$e - \$s\" | bc")
echo "segments: ${#files[@]} ($mb MB)"
printf 'pg_waldump --stats=record        %6.3fs\n' "$p"
printf 'walaudit inspect (1 core)        %6.3fs  %.2fx pg_waldump throughput\n' "$w1" "$(echo "$p / $w1" | bc -l)"
printf 'walaudit inspect (all cores)     %6.3fs  %.2fx pg_waldump throughput\n' "$w" "$(echo "$p / $w" | bc -l)"
