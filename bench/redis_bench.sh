#!/usr/bin/env bash
# bench/redis_bench.sh — runs bench/redis_bench.pl (bench/README.md) as the postgres user when
# started as root (initdb refuses root). Arguments: phases (latency cost drain); see the .pl header.
# The extension must be installed (make install).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ "$(id -u)" = 0 ]; then
	dir=$(mktemp -d "${TMPDIR:-/tmp}/exa-bench-XXXXXX")
	chown postgres "$dir"
	trap 'rm -rf "$dir"' EXIT
	runuser -u postgres -- env BENCH_DIR="$dir" ${PG_BINDIR:+PG_BINDIR="$PG_BINDIR"} \
		${BENCH_PG_PORT:+BENCH_PG_PORT="$BENCH_PG_PORT"} ${BENCH_REDIS_PORT:+BENCH_REDIS_PORT="$BENCH_REDIS_PORT"} \
		${BENCH_RATE:+BENCH_RATE="$BENCH_RATE"} ${BENCH_SECONDS:+BENCH_SECONDS="$BENCH_SECONDS"} \
		${BENCH_ROWS:+BENCH_ROWS="$BENCH_ROWS"} ${BENCH_KEYS:+BENCH_KEYS="$BENCH_KEYS"} \
		${BENCH_BATCH:+BENCH_BATCH="$BENCH_BATCH"} ${BENCH_FEED_ROWS:+BENCH_FEED_ROWS="$BENCH_FEED_ROWS"} \
		perl "$here/redis_bench.pl" "$@"
else
	exec perl "$here/redis_bench.pl" "$@"
fi
