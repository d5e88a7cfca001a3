#!/bin/sh
# bench_list.sh: compare sequential and concurrent S3 listing of a
# 100,000-segment archive with 20 ms per request, and print the speed-ups.
#
#   BenchmarkList       the real SDK against the loopback fake S3 server
#   BenchmarkListModel  the same listing code against an in-process list
#                       API: the latency hidden, without the SDK's XML
#                       decoding, which needs about 1 CPU-second per
#                       100,000 keys in either mode and so bounds
#                       BenchmarkList on a machine with few free cores
#
# Usage: audit/store/bench_list.sh [count]   (default 3)
# Each sub-benchmark runs 3 iterations per count; the fastest count of each
# is kept, which filters out noise from other work on the machine.
set -eu
count=${1:-3}
cd "$(dirname "$0")"
out=$(go test -run '^$' -bench '^BenchmarkList(Model)?$' -benchtime 3x -count "$count" .)
printf '%s\n' "$out" | grep '^BenchmarkList'
printf '%s\n' "$out" | awk '
	$1 ~ /^BenchmarkList(Model)?\// {
		split($1, name, /[\/-]/)
		key = name[1] "/" name[2]
		if (!(key in best) || $3 < best[key]) best[key] = $3
	}
	END {
		n = 0
		for (b in best) n++
		if (n == 0) { print "bench_list.sh: no benchmark results" > "/dev/stderr"; exit 1 }
		for (i = 1; i <= 2; i++) {
			bench = (i == 1) ? "BenchmarkList" : "BenchmarkListModel"
			seq = best[bench "/sequential"]; con = best[bench "/concurrent"]
			if (seq && con)
				printf "%-18s sequential %6.3fs  concurrent %6.3fs  speed-up %4.1fx (goal >= 4x)\n", bench, seq / 1e9, con / 1e9, seq / con
		}
	}'
