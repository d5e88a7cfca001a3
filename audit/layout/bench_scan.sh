#!/bin/sh
# Speed of the inventory on a local plain archive of 100,000 segments
# (sparse 16 MiB files; one real segment header): CPU and wall time of
# audit.Scan next to a bare os.ReadDir and the store's listing of the same
# directory, in one run. Goal: scan CPU under 1 s, and within 2x of
# merely listing the directory.
#
#   audit/layout/bench_scan.sh            # 100,000 segments, 3 runs
#   WALAUDIT_BENCH_SEGMENTS=20000 RUNS=5 audit/layout/bench_scan.sh
set -eu
cd "$(dirname "$0")/../.."
exec go test -run '^$' -bench '^BenchmarkScanPlain100k$' -benchtime "${RUNS:-3}x" -count 1 ./audit/layout/
