#!/usr/bin/env bash
# bench/expire_bench.sh — how long the batch calls take on many orders: cancel_orders (one
# account's orders) and expire_orders (a market's orders, spread over many accounts), each at
# the sizes in BENCH_SIZES (default "20000 1000000").  No timed assertion anywhere: it measures
# and prints.  check_invariants() must be empty at the end.
#
#   bash bench/expire_bench.sh        (or: make bench-expire)
#
# What it does: initdb a throwaway PostgreSQL 15 cluster and start it and a throwaway
# redis-server with the helpers of scripts/lib.sh (loopback, free ports, run as postgres when
# root), CREATE EXTENSION exchange_adapter (the installed one: run `make install` first, or set
# EA_PG_ROOT to a private install as scripts/test.sh does), then for every size N:
#   * cancel: one account places N LIMIT BUY orders through exchange.place_order (generate_series,
#     BENCH_BATCH orders per transaction), then `SELECT count(*) FROM exchange.cancel_orders(acct)`
#     is timed;
#   * expire: BENCH_ACCOUNTS accounts place N orders between them (round robin) on another market,
#     then `SELECT count(*) FROM exchange.expire_orders(symbol, now())` is timed.
# Each timed call is one transaction and writes one outbox row; its number of keys is printed
# (every order's cache:order key, plus the account, balance and book keys, each once).
# The servers are stopped and the directory removed on exit (BENCH_KEEP=1 keeps it).
#
# Knobs (environment):
#   BENCH_SIZES="20000 1000000"  BENCH_ACCOUNTS=1000  BENCH_BATCH=20000
#   BENCH_CASES="cancel expire"  BENCH_KEEP=0  EA_PG_ROOT / EA_PG_BINDIR (see scripts/lib.sh)

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SIZES=${BENCH_SIZES:-20000 1000000}
ACCOUNTS=${BENCH_ACCOUNTS:-1000}
BATCH=${BENCH_BATCH:-20000}
CASES=${BENCH_CASES:-cancel expire}

# No ACL file: the redis is only there so that the worker has somewhere to push.
export EA_REDIS_ACLFILE=
# shellcheck source=scripts/lib.sh
. "$HERE/../scripts/lib.sh"

for f in initdb pg_ctl psql; do
	[ -x "$EA_PG_BINDIR/$f" ] || ea_die "$EA_PG_BINDIR/$f not found (set EA_PG_BINDIR or EA_PG_ROOT)"
done
[ -f "$("$EA_PG_CONFIG" --pkglibdir)/exchange_adapter.so" ] ||
	ea_die "exchange_adapter is not installed in $("$EA_PG_CONFIG" --pkglibdir): run make install first"
ea_install_lock shared

WORK=$(mktemp -d "${TMPDIR:-/tmp}/exchange_adapter-expire-bench.XXXXXX")
chmod 755 "$WORK"
ea_is_root && chown "$(ea_run_user)" "$WORK"
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	ea_cluster_stop "$WORK"
	[ -n "${EA_REDIS_DIR:-}" ] && ea_redis_stop "$EA_REDIS_DIR"
	if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
		ea_say "bench directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ea_redis_start "$WORK/redis" || ea_die "redis-server did not start"
ea_cluster_init "$WORK" || ea_die "initdb failed"
EA_PG_EXTRA_CONF="shared_buffers = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min" ea_cluster_start "$WORK" bench "$EA_REDIS_URL" || ea_die "PostgreSQL did not start"
ea_say "PostgreSQL $("$EA_PG_BINDIR/postgres" --version | awk '{print $3}') on socket $WORK, library $(sha256sum "$("$EA_PG_CONFIG" --pkglibdir)/exchange_adapter.so" | cut -c1-12)"

q() { ea_as_user env PGHOST="$WORK" PGPORT="$EA_PG_PORT" "$EA_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -At -U postgres "$@"; }

q -d postgres -c 'CREATE DATABASE bench'
q -d bench <<'SQL'
CREATE EXTENSION exchange_adapter;
CREATE SCHEMA bench;
-- n accounts, ACTIVE, KYC APPROVED, funded with 10^9 USDT each; their ids in bench.accts.
CREATE FUNCTION bench.make_accounts(n int) RETURNS uuid[] LANGUAGE plpgsql AS $$
DECLARE
	ids uuid[] := '{}';
	a uuid;
BEGIN
	FOR i IN 1 .. n LOOP
		a := (exchange.create_account('bench-' || i || '-' || clock_timestamp())).account_id;
		PERFORM exchange.set_kyc_status(a, 'APPROVED');
		PERFORM exchange.deposit(a, 'USDT', 1000000000);
		ids := ids || a;
	END LOOP;
	RETURN ids;
END $$;
SQL

# place SYMBOL N ACCOUNTS_ARRAY_SQL — N LIMIT BUY 0.001 @ 1 orders, round robin over the
# accounts, BATCH per transaction (psql autocommit: one statement, one transaction).
place() {
	local symbol=$1 n=$2 accts=$3 done=0 k t0 t1
	t0=$(date +%s.%N)
	while [ "$done" -lt "$n" ]; do
		k=$((n - done < BATCH ? n - done : BATCH))
		q -d bench -c "SELECT count(*) FROM (SELECT exchange.place_order(a[1 + (g % cardinality(a))], '$symbol', 'BUY', 'LIMIT', 0.001, 1)
		                 FROM (SELECT $accts AS a) s, generate_series($done, $done + $k - 1) g) x" >/dev/null
		done=$((done + k))
	done
	t1=$(date +%s.%N)
	printf '  placed %d orders in %.1f s\n' "$n" "$(echo "$t1 - $t0" | bc)"
}

# timed SQL — runs the batch call SQL (a SELECT count(*) FROM it) in one transaction; prints the
# rows, the time of the call (clock_timestamp around it), the backend's CPU time during the call
# (utime + stime of /proc/self/stat, read by the backend itself) and the time it waited for a CPU
# (run-queue wait, field 2 of /proc/self/schedstat: on a shared machine, wall time = CPU + this
# + I/O waits), the time of the whole transaction as the client saw it (COMMIT included), and the
# size of the call's outbox row.
timed() {
	local t0 t1 out
	t0=$(date +%s.%N)
	out=$(q -d bench <<-SQL
		CREATE TEMP TABLE bench_cpu (cpu bigint, rq bigint);
		CREATE FUNCTION pg_temp.cpu_now() RETURNS TABLE (cpu bigint, rq bigint) LANGUAGE sql AS
		\$\$ SELECT split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint, split_part(r, ' ', 2)::bigint
		     FROM (SELECT pg_catalog.pg_read_file('/proc/self/stat') s, pg_catalog.pg_read_file('/proc/self/schedstat') r) x \$\$;
		BEGIN;
		SELECT clock_timestamp() AS t0 \gset
		INSERT INTO bench_cpu SELECT * FROM pg_temp.cpu_now();
		SELECT count(*) FROM $1;
		SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz), 2),
		       round((n.cpu - b.cpu) / $(getconf CLK_TCK).0, 2), round((n.rq - b.rq) / 1e9, 2)
		  FROM bench_cpu b, pg_temp.cpu_now() n;
		SELECT cardinality(keys) || ' keys, ' || (SELECT count(DISTINCT k) FROM unnest(keys) k) || ' distinct'
		  FROM exchange.outbox WHERE xid = pg_current_xact_id();
		COMMIT;
	SQL
	)
	t1=$(date +%s.%N)
	set -- $(echo "$out" | tr '|' ' ')
	printf '%s rows, call %s s (backend CPU %s s, waiting for a CPU %s s), transaction %.2f s; outbox row: %s %s %s %s' \
		"$1" "$2" "$3" "$4" "$(echo "$t1 - $t0" | bc)" "$5" "$6" "$7" "$8"
}

i=0
for n in $SIZES; do
	i=$((i + 1))
	ea_say "== N = $n"
	if [[ " $CASES " == *" cancel "* ]]; then
		sym="CXL$i-USDT"
		q -d bench -c "SELECT exchange.create_market('$sym', 'CXL$i', 'USDT')" >/dev/null
		q -d bench -c "CREATE TABLE bench.cancel_$i AS SELECT bench.make_accounts(1) AS a"
		place "$sym" "$n" "(SELECT a FROM bench.cancel_$i)"
		ea_say "  cancel_orders(one account, $n orders): $(timed "exchange.cancel_orders((SELECT a[1] FROM bench.cancel_$i))")"
	fi
	if [[ " $CASES " == *" expire "* ]]; then
		sym="EXP$i-USDT"
		q -d bench -c "SELECT exchange.create_market('$sym', 'EXP$i', 'USDT')" >/dev/null
		q -d bench -c "CREATE TABLE bench.expire_$i AS SELECT bench.make_accounts(least($ACCOUNTS, $n)) AS a"
		place "$sym" "$n" "(SELECT a FROM bench.expire_$i)"
		ea_say "  expire_orders($sym, $n orders over $(( ACCOUNTS < n ? ACCOUNTS : n )) accounts): $(timed "exchange.expire_orders('$sym', now())")"
	fi
done

violations=$(q -d bench -c 'SELECT count(*) FROM exchange.check_invariants()')
ea_say "check_invariants(): $violations rows"
[ "$violations" = 0 ] || { q -d bench -c 'SELECT * FROM exchange.check_invariants() LIMIT 20'; ea_die "invariants violated"; }
