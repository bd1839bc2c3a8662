#!/usr/bin/env bash
# bench/market_data_bench.sh — how long the market-data reads take over many trades:
# exchange.ticker(symbol) and a day of 1-minute exchange.candles(symbol, '1 minute',
# now() - '1 day') over BENCH_EXECUTIONS executions (default 1,000,000) of one market spread
# evenly over the last day (README "Market data").  No timed assertion anywhere: it measures
# and prints the median of BENCH_RUNS runs of each, and the plan of each function's statement
# (EXPLAIN ANALYZE with buffers, through auto_explain's nested statements).
#
#   bash bench/market_data_bench.sh        (or: make bench-market-data)
#
# What it does: initdb a throwaway PostgreSQL 15 cluster and start it and a throwaway
# redis-server with the helpers of scripts/lib.sh (loopback, free ports, run as postgres when
# root), CREATE EXTENSION exchange_adapter (the installed one: run `make install` first, or set
# EA_PG_ROOT to a private install as scripts/test.sh does), create market BNC-USDT, a buyer and a
# seller with one large LIMIT order each, then load the executions (BENCH_LOAD):
#   * insert (default): one INSERT ... SELECT as superuser straight into exchange.trades (no
#     trigger or guard acts on INSERT).  Every other execution is a match (a BUY and a SELL row
#     sharing a match_id, as apply_match and INTERNAL matching write them), the others a single
#     row with match_id NULL (as apply_trade writes it): 1,000,000 executions are 1,500,000 rows.
#     Fast (about a minute), but the orders, balances and journal know nothing of these trades,
#     so check_invariants() is not run: the database only serves the reads.
#   * api: the same executions through exchange.apply_trade (match_id NULL) with executed_at
#     spread over the day, BENCH_BATCH calls per transaction; slow (every fill is journaled), and
#     check_invariants() must be empty at the end.
# then VACUUM ANALYZE (the index-only scans need the visibility map) and time each read.
# The servers are stopped and the directory removed on exit (BENCH_KEEP=1 keeps it).
#
# Knobs (environment):
#   BENCH_EXECUTIONS=1000000  BENCH_LOAD=insert|api  BENCH_BATCH=20000  BENCH_RUNS=5
#   BENCH_KEEP=0  EA_PG_ROOT / EA_PG_BINDIR (see scripts/lib.sh)

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
N=${BENCH_EXECUTIONS:-1000000}
LOAD=${BENCH_LOAD:-insert}
BATCH=${BENCH_BATCH:-20000}
RUNS=${BENCH_RUNS:-5}
case $LOAD in insert | api) ;; *) echo "BENCH_LOAD must be insert or api" >&2; exit 2 ;; esac

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

WORK=$(mktemp -d "${TMPDIR:-/tmp}/exchange_adapter-mdata-bench.XXXXXX")
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
q -d bench >/dev/null <<'SQL'
CREATE EXTENSION exchange_adapter;
CREATE SCHEMA bench;
SELECT exchange.create_market('BNC-USDT', 'BNC', 'USDT', 0.01, 0.0001);
CREATE TABLE bench.ids AS
SELECT (exchange.create_account('bench-buyer')).account_id AS buyer,
	   (exchange.create_account('bench-seller')).account_id AS seller;
SELECT exchange.set_kyc_status(buyer, 'APPROVED'), exchange.set_kyc_status(seller, 'APPROVED')
  FROM bench.ids;
SELECT exchange.deposit(buyer, 'USDT', 1000000000), exchange.deposit(seller, 'BNC', 10000000)
  FROM bench.ids;
-- One BUY and one SELL order large enough for every fill (prices stay within 89..111).
ALTER TABLE bench.ids ADD bo uuid, ADD so uuid;
UPDATE bench.ids
   SET bo = (exchange.place_order(buyer, 'BNC-USDT', 'BUY', 'LIMIT', 5000000, 200)).order_id,
	   so = (exchange.place_order(seller, 'BNC-USDT', 'SELL', 'LIMIT', 5000000, 1)).order_id;
-- Execution g of n: its time (evenly over the day before now(), oldest first), price and
-- quantity (deterministic, on the market's tick and lot).
CREATE FUNCTION bench.at(g bigint, n bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE
	AS $$ SELECT '2000-01-01'::timestamptz + (g - n) * (interval '1 day' / n) $$;
CREATE FUNCTION bench.price(g bigint) RETURNS numeric LANGUAGE sql IMMUTABLE
	AS $$ SELECT round((100 + 10 * sin(g / 5000.0) + (g % 97) / 97.0)::numeric, 2) $$;
CREATE FUNCTION bench.qty(g bigint) RETURNS numeric LANGUAGE sql IMMUTABLE
	AS $$ SELECT (0.01 + (g % 1000) / 1000.0)::numeric(24,4) $$;
SQL
# bench.at() counts back from a fixed origin; the real origin is now() at load time.
origin=$(q -d bench -c "SELECT now()")

t0=$(date +%s.%N)
if [ "$LOAD" = insert ]; then
	q -d bench <<-SQL
	INSERT INTO exchange.trades (order_id, account_id, symbol, side, quantity, price, fee_currency,
								 executed_at, liquidity, match_id)
	SELECT o.order_id, o.account_id, 'BNC-USDT', o.side, bench.qty(g), bench.price(g),
		   CASE o.side WHEN 'BUY' THEN 'BNC' ELSE 'USDT' END,
		   bench.at(g, $N) - '2000-01-01'::timestamptz + '$origin'::timestamptz,
		   CASE WHEN g % 2 = 1 THEN NULL WHEN o.side = 'BUY' THEN 'TAKER' ELSE 'MAKER' END,
		   CASE WHEN g % 2 = 0 THEN m END
	  FROM (SELECT g, gen_random_uuid() FROM generate_series(1, $N) g) s (g, m)
	  JOIN exchange.orders o ON o.order_id IN ((SELECT bo FROM bench.ids), (SELECT so FROM bench.ids))
	 WHERE g % 2 = 0 OR o.side = 'BUY';
	SQL
else
	done=0
	while [ "$done" -lt "$N" ]; do
		k=$((N - done < BATCH ? N - done : BATCH))
		q -d bench -c "SELECT count(exchange.apply_trade((SELECT bo FROM bench.ids), bench.qty(g), bench.price(g),
		                   executed_at => bench.at(g, $N) - '2000-01-01'::timestamptz + '$origin'::timestamptz))
		                 FROM generate_series($done + 1, $done + $k) g" >/dev/null
		done=$((done + k))
	done
fi
q -d bench -c 'VACUUM ANALYZE exchange.trades'
t1=$(date +%s.%N)
ea_say "loaded $N executions ($LOAD): $(q -d bench -c "SELECT count(*) FROM exchange.trades") trade rows in $(printf '%.1f' "$(echo "$t1 - $t0" | bc)") s; trades_executions_idx $(q -d bench -c "SELECT pg_size_pretty(pg_relation_size('exchange.trades_executions_idx'))")"

ea_say "== $N executions of BNC-USDT over the last day; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for spec in "ticker(BNC-USDT)|exchange.ticker('BNC-USDT')" \
	"candles(BNC-USDT, 1 minute, now() - 1 day)|exchange.candles('BNC-USDT', '1 minute', now() - interval '1 day')"; do
	name=${spec%%|*}
	sql=${spec#*|}
	res=$(q -d bench 2>&1 <<-SQL
		DO \$\$
		DECLARE
			t timestamptz;
			ms float8[] := '{}';
			n bigint;
		BEGIN
			FOR i IN 1 .. $RUNS LOOP
				t := clock_timestamp();
				SELECT count(*) INTO n FROM $sql;
				ms := ms || extract(epoch FROM clock_timestamp() - t) * 1000;
			END LOOP;
			RAISE NOTICE '% ms median of % runs %, % rows',
				round((SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(ms) x)::numeric, 1),
				$RUNS, (SELECT array_agg(round(x::numeric, 1)) FROM unnest(ms) x), n;
		END
		\$\$;
	SQL
	)
	ea_say "  $name: ${res#*NOTICE:  }"
done
ea_say "== plans (auto_explain: the function's statements, EXPLAIN ANALYZE BUFFERS)"
q -d bench 2>&1 <<'SQL' | sed -n '/duration/,$p' | grep -v '^LOG:  duration: [0-9.]* ms  plan:$' || true
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_timing = on;
SET client_min_messages = log;
SELECT count(*) FROM exchange.ticker('BNC-USDT');
SELECT count(*) FROM exchange.candles('BNC-USDT', '1 minute', now() - interval '1 day');
SQL

if [ "$LOAD" = api ]; then
	violations=$(q -d bench -c 'SELECT count(*) FROM exchange.check_invariants()')
	ea_say "check_invariants(): $violations rows"
	[ "$violations" = 0 ] || { q -d bench -c 'SELECT * FROM exchange.check_invariants() LIMIT 20'; ea_die "invariants violated"; }
else
	ea_say "check_invariants() not run: the trades were inserted directly (BENCH_LOAD=insert)"
fi
