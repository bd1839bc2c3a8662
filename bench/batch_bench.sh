#!/usr/bin/env bash
# bench/batch_bench.sh — orders/s of the batch call place_orders against the single call
# place_order (README "Batches").  No timed assertion anywhere: it measures and prints.
#
#   bash bench/batch_bench.sh        (or: make bench-batch)
#
# What it does (the structure of bench/run.sh): initdb a throwaway PostgreSQL 15 cluster, start
# it on a free loopback port in 55480-55489 with the installed extension preloaded, load a
# fixture (markets BEX-USDT EXTERNAL and BIN-USDT INTERNAL, 8 funded accounts, prebuilt item
# arrays of 1, 10, 100 and 1000 LIMIT orders), then run pgbench -M prepared for every
# synchronous_commit setting (on, off), market (EXTERNAL, INTERNAL) and variant (single
# place_order; place_orders of 1, 10, 100, 1000 items), interleaved round by round, and print
# the median orders/s (tps x items per call) of each and the ratios against the single call,
# with the targets: place_orders of 100 >= 5x single with synchronous_commit on, >= 3x off.
# The INTERNAL market's orders rest: BUY at 50-90, SELL at 110-150, so the book never crosses
# and every call costs what a resting placement costs.
# The trades workload (BEX-fills in the output) measures apply_trades against single
# apply_trade calls on the EXTERNAL market BEX-USDT: each account has 1000 resting BUY orders
# of 1000 at 100 (placed by the fixture), filled in lots of 0.001 at 100, so every fill is
# valid for the whole run (an order takes a million lots); a single call fills a random one of
# its account's orders, a batch of N fills orders 1..N once each.  Trades/s = calls/s x items;
# same targets (apply_trades of 100 >= 5x single on, >= 3x off).  check_invariants() must be
# empty at the end.
#
# Knobs (environment):
#   BENCH_CLIENTS=2  BENCH_DURATION=5  BENCH_ROUNDS=3  BENCH_SIZES="1 10 100 1000"
#   BENCH_WORKLOADS="orders trades"   (orders: place_order(s) on both markets; trades:
#                                      apply_trade(s) on BEX-USDT)
#   BENCH_PORTS="55480 ... 55489"  BENCH_KEEP=0  EA_PG_BINDIR=/usr/lib/postgresql/15/bin
#   BENCH_RESULTS=FILE   also write the raw per-run figures there (TSV)

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PGBIN=${EA_PG_BINDIR:-/usr/lib/postgresql/15/bin}
CLIENTS=${BENCH_CLIENTS:-2}
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
SIZES=${BENCH_SIZES:-1 10 100 1000}
WORKLOADS=${BENCH_WORKLOADS:-orders trades}
PORTS=${BENCH_PORTS:-$(seq -s ' ' 55480 55489)}

say() { printf '%s\n' "$*"; }
die() { printf 'bench/batch_bench.sh: error: %s\n' "$*" >&2; exit 1; }

for f in initdb pg_ctl psql pgbench; do
	[ -x "$PGBIN/$f" ] || die "$PGBIN/$f not found (set EA_PG_BINDIR)"
done
[ -f "$("$PGBIN/pg_config" --pkglibdir)/exchange_adapter.so" ] ||
	die "exchange_adapter is not installed: run make && sudo make install first"
[ "$CLIENTS" -ge 1 ] && [ "$CLIENTS" -le 8 ] || die "BENCH_CLIENTS must be 1..8 (the fixture has 8 accounts)"

# shellcheck source=scripts/lib.sh
. "$HERE/../scripts/lib.sh"
RUN_USER=$(ea_run_user)
as_user() { ea_as_user "$@"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/exchange_adapter-batch-bench.XXXXXX")
chmod 755 "$WORK"
DATA=$WORK/pgdata
STARTED=0
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ "$STARTED" = 1 ]; then
		as_user "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			as_user "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
		say "bench directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
[ "$(id -u)" -eq 0 ] && chown -R "$RUN_USER" "$WORK"

PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
as_user sh -c "umask 077; printf '%s\n' '$PASSWORD' > '$WORK/pwfile'"
as_user "$PGBIN/initdb" -D "$DATA" -U postgres --pwfile="$WORK/pwfile" --no-locale -E UTF8 \
	--auth-local=scram-sha-256 --auth-host=scram-sha-256 >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log" >&2; die "initdb failed"; }

port_free() {
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0],
			Proto => "tcp", Listen => 1, ReuseAddr => 1) or exit 1;
		close $s; exit 0;' "$1"
}

PORT=
for p in $PORTS; do
	port_free "$p" || continue
	as_user sh -c "cat >> '$DATA/postgresql.conf'" <<-EOF
		# bench/batch_bench.sh
		listen_addresses = '127.0.0.1'
		port = $p
		unix_socket_directories = '$WORK'
		unix_socket_permissions = 0700
		shared_preload_libraries = 'exchange_adapter'
		exchange_adapter.database = 'bench_no_worker'
		shared_buffers = 256MB
		max_wal_size = 8GB
		checkpoint_timeout = 30min
		autovacuum = off
		lc_messages = 'C'
		log_min_messages = warning
	EOF
	if as_user "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/postgresql.log" -w -t 60 start >"$WORK/pg_ctl.log" 2>&1; then
		PORT=$p
		STARTED=1
		break
	fi
	grep -q 'could not bind\|Address already in use' "$WORK/postgresql.log" 2>/dev/null ||
		{ cat "$WORK/pg_ctl.log" "$WORK/postgresql.log" >&2; die "PostgreSQL did not start"; }
	as_user sed -i '/^# bench\/batch_bench.sh$/,$d' "$DATA/postgresql.conf"
done
[ -n "$PORT" ] || die "no free port among: $PORTS"

as_user sh -c "umask 077; printf '127.0.0.1:%s:*:postgres:%s\n' '$PORT' '$PASSWORD' > '$WORK/pgpass'"
ENVS=(PGPASSFILE="$WORK/pgpass" PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER=postgres PGDATABASE=bench)
run_psql() { as_user env "${ENVS[@]}" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

say "== PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT; tree $(git -C "$HERE" describe --always --dirty 2>/dev/null || echo '?'); $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run_psql -d postgres -c 'CREATE DATABASE bench'
run_psql -c 'CREATE EXTENSION exchange_adapter' >/dev/null

# The fixture.  bench.items: per market, account and size, 10 prebuilt arrays (k) of LIMIT
# orders of 0.001, BUY at 50-90 or SELL at 110-150 (resting, never crossing).
run_psql >/dev/null <<'SQL'
SET search_path = pg_catalog, pg_temp;
CREATE SCHEMA bench;
CREATE FUNCTION bench.acct(n int) RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT ('00000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid $$;
SELECT exchange.create_market('BEX-USDT', 'BEX', 'USDT', 0.01, 0.001, 0.001, 0.01);
SELECT exchange.create_market('BIN-USDT', 'BIN', 'USDT', 0.01, 0.001, 0.001, 0.01, matching => 'INTERNAL');
INSERT INTO exchange.accounts (account_id, user_id, kyc_status)
SELECT bench.acct(n), 'bench-' || n, 'APPROVED' FROM generate_series(1, 8) n;
SELECT exchange.deposit(bench.acct(n), a, 1000000000) FROM generate_series(1, 8) n,
	unnest('{USDT,BEX,BIN}'::text[]) a;
CREATE TABLE bench.items (symbol text, an int, size int, k int, items jsonb,
	PRIMARY KEY (symbol, an, size, k));
INSERT INTO bench.items
SELECT m, an, size, k,
	   (SELECT jsonb_agg(jsonb_build_object('account_id', bench.acct(an), 'symbol', m,
				'side', CASE WHEN i % 2 = 0 THEN 'BUY' ELSE 'SELL' END, 'order_type', 'LIMIT',
				'quantity', 0.001,
				'price', CASE WHEN i % 2 = 0 THEN 50 ELSE 110 END + ((i * 7919 + k) % 4000) * 0.01))
		  FROM generate_series(1, size) i)
  FROM unnest('{BEX-USDT,BIN-USDT}'::text[]) m, generate_series(1, 8) an,
	   unnest('{1,10,100,1000}'::int[]) size, generate_series(1, 10) k;
SQL

# The trades fixture: per account, 1000 resting BUY orders of 1000 BEX at 100 on BEX-USDT
# (100,000 USDT locked each), and per size one prebuilt apply_trades array filling orders
# 1..size with a lot of 0.001 at 100 each.
case " $WORKLOADS " in *" trades "*)
run_psql >/dev/null <<'SQL'
SET search_path = pg_catalog, pg_temp;
CREATE TABLE bench.torders (an int, i int, order_id uuid NOT NULL, PRIMARY KEY (an, i));
INSERT INTO bench.torders
SELECT an, i, (SELECT order_id FROM exchange.place_order(bench.acct(an), 'BEX-USDT', 'BUY', 'LIMIT', 1000, 100))
  FROM generate_series(1, 8) an, generate_series(1, 1000) i;
CREATE TABLE bench.titems (an int, size int, items jsonb NOT NULL, PRIMARY KEY (an, size));
INSERT INTO bench.titems
SELECT an, size,
	   (SELECT jsonb_agg(jsonb_build_object('order_id', t.order_id, 'quantity', 0.001, 'price', 100) ORDER BY t.i)
		  FROM bench.torders t WHERE t.an = a.an AND t.i <= size)
  FROM generate_series(1, 8) a(an), unnest('{1,10,100,1000}'::int[]) size;
SQL
;;
esac

mkdir -p "$WORK/pgbench"
cat >"$WORK/pgbench/single.sql" <<'EOF'
\set an :client_id % :naccts + 1
\set s random(0, 1)
\set t random(0, 3999)
SELECT order_id FROM exchange.place_order(bench.acct(:an), (ARRAY['BEX-USDT', 'BIN-USDT'])[:mkt], (ARRAY['BUY', 'SELL'])[:s + 1], 'LIMIT', 0.001, (ARRAY[50, 110])[:s + 1] + :t * 0.01);
EOF
cat >"$WORK/pgbench/batch.sql" <<'EOF'
\set an :client_id % :naccts + 1
\set k random(1, 10)
SELECT count(*) FROM exchange.place_orders((SELECT items FROM bench.items WHERE symbol = (ARRAY['BEX-USDT', 'BIN-USDT'])[:mkt] AND an = :an AND size = :size AND k = :k));
EOF
cat >"$WORK/pgbench/tsingle.sql" <<'EOF'
\set an :client_id % :naccts + 1
\set i random(1, 1000)
SELECT trade_id FROM exchange.apply_trade((SELECT order_id FROM bench.torders WHERE an = :an AND i = :i), 0.001, 100);
EOF
cat >"$WORK/pgbench/tbatch.sql" <<'EOF'
\set an :client_id % :naccts + 1
SELECT count(*) FROM exchange.apply_trades((SELECT items FROM bench.titems WHERE an = :an AND size = :size));
EOF
[ "$(id -u)" -eq 0 ] && chown -R "$RUN_USER" "$WORK/pgbench"

RESULTS=$WORK/results.tsv
: >"$RESULTS"
[ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$RESULTS"

# run_one SYNC SYMBOL VARIANT ROUND — one pgbench run; appends orders/s to RESULTS unless
# ROUND is "warmup".
run_one() {
	local sync=$1 sym=$2 variant=$3 round=$4 secs=$DURATION out tps items=1 script=single
	if [ "$variant" != single ]; then
		items=${variant#b}
		script=batch
	fi
	[ "$sym" = BEX-fills ] && script=t$script
	[ "$round" = warmup ] && secs=2
	run_psql -c CHECKPOINT
	out=$(as_user env "${ENVS[@]}" PGOPTIONS="-c synchronous_commit=$sync" \
		"$PGBIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$secs" \
		-D naccts="$CLIENTS" -D mkt="$([ "$sym" = BEX-USDT ] && echo 1 || echo 2)" -D size="$items" \
		-f "$WORK/pgbench/$script.sql" 2>&1) ||
		{ printf '%s\n' "$out" >&2; die "pgbench failed: $sync $sym $variant"; }
	grep -q '^number of failed transactions: 0 ' <<<"$out" ||
		{ printf '%s\n' "$out" >&2; die "failed transactions: $sync $sym $variant"; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$out")
	[ -n "$tps" ] || { printf '%s\n' "$out" >&2; die "no tps in the pgbench output"; }
	printf '   sync=%-3s %-9s %-6s %-7s %10.1f calls/s %12.1f items/s\n' "$sync" "$sym" "$variant" "$round" \
		"$tps" "$(awk -v t="$tps" -v n="$items" 'BEGIN { print t * n }')"
	[ "$round" = warmup ] ||
		printf '%s\t%s\t%s\t%s\t%s\n' "$sync" "$sym" "$variant" "$round" \
			"$(awk -v t="$tps" -v n="$items" 'BEGIN { print t * n }')" >>"$RESULTS"
}

VARIANTS="single"
for s in $SIZES; do VARIANTS="$VARIANTS b$s"; done
SYMS=
case " $WORKLOADS " in *" orders "*) SYMS="BEX-USDT BIN-USDT" ;; esac
case " $WORKLOADS " in *" trades "*) SYMS="$SYMS BEX-fills" ;; esac
[ -n "$SYMS" ] || die "BENCH_WORKLOADS names neither orders nor trades"
say "== pgbench: $CLIENTS clients, -M prepared, $ROUNDS rounds x ${DURATION}s, interleaved; workloads: $WORKLOADS"
for sym in $SYMS; do
	for v in $VARIANTS; do run_one off "$sym" "$v" warmup; done
done
for ((r = 1; r <= ROUNDS; r++)); do
	for sync in on off; do
		for sym in $SYMS; do
			for v in $VARIANTS; do run_one "$sync" "$sym" "$v" "$r"; done
		done
	done
done

say "== check_invariants() after every run"
bad=$(run_psql -At -c 'SELECT count(*) FROM exchange.check_invariants()')
[ "$bad" = 0 ] || { run_psql -c 'SELECT * FROM exchange.check_invariants() LIMIT 20'; die "check_invariants() found $bad violations"; }
say "   empty ($(run_psql -At -c "SELECT format('%s orders, %s trades, %s journal rows, %s outbox rows', (SELECT count(*) FROM exchange.orders), (SELECT count(*) FROM exchange.trades), (SELECT count(*) FROM exchange.balance_journal), (SELECT count(*) FROM exchange.outbox))"))"
[ -n "${BENCH_RESULTS:-}" ] && cp "$RESULTS" "$BENCH_RESULTS"

say ""
say "== medians over the rounds, items/s: orders/s for BEX-USDT and BIN-USDT, trades/s for BEX-fills ($CLIENTS clients); load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
VARIANTS="$VARIANTS" perl -e '
	my %v;
	while (<STDIN>) {
		chomp;
		my ($sync, $sym, $var, $r, $ops) = split /\t/;
		push @{ $v{$sync}{$sym}{$var} }, $ops;
	}
	sub median { my @s = sort { $a <=> $b } @_; my $n = @s;
		return $n % 2 ? $s[($n - 1) / 2] : ($s[$n / 2 - 1] + $s[$n / 2]) / 2; }
	my @vars = split " ", $ENV{VARIANTS};
	printf "%-9s %-9s", "sync", "market";
	printf " %10s", $_ for @vars;
	printf "   %s\n", "ratios to single";
	for my $sync (qw(on off)) {
		for my $sym (qw(BEX-USDT BIN-USDT BEX-fills)) {
			next unless $v{$sync}{$sym};
			my %m = map { $_ => median(@{ $v{$sync}{$sym}{$_} || [0] }) } @vars;
			printf "%-9s %-9s", $sync, $sym;
			printf " %10.1f", $m{$_} for @vars;
			print "  ";
			printf " %s %.2fx", $_, $m{single} ? $m{$_} / $m{single} : 0 for grep { $_ ne "single" } @vars;
			if (defined $m{b100} && $m{single}) {
				my $target = $sync eq "on" ? 5 : 3;
				printf "   b100 target >= %dx: %s", $target, $m{b100} / $m{single} >= $target ? "met" : "NOT met";
			}
			print "\n";
		}
	}' <"$RESULTS"
