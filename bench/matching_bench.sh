#!/usr/bin/env bash
# bench/matching_bench.sh — the matching engine: C place_order on INTERNAL markets against its
# PL/pgSQL peer (bench/matching_plpgsql.sql), resting orders INTERNAL vs EXTERNAL, and scaling
# over four INTERNAL markets.  No timed assertion: it measures and prints, with the targets.
#
#   bash bench/matching_bench.sh        (or: make bench-matching)
#
# Its own throwaway cluster, set up as bench/run.sh does (snapshot of the installed PostgreSQL
# and extension, loopback SCRAM, removed on exit).  Fixture: bench/setup.sql,
# bench/plpgsql.sql, bench/matching_plpgsql.sql, bench/matching_setup.sql; the peer is checked
# against C first (bench/matching_equivalence.sql).  Figures, interleaved round by round:
#   (a) crossing orders per second on one INTERNAL market with a book of BENCH_BOOK resting
#       orders, 2 clients (accounts 1 and 2, self_trade ALLOW), synchronous_commit off and on:
#       a pgbench transaction is one BUY taker of k x 0.001 (k random 1..3, limit 110: it fills
#       the k best asks) followed by k resting SELLs of 0.001 at 101.00 that restore the level;
#       C (MC-USDT) vs the PL/pgSQL peer (MP-USDT); target C >= 3x;
#   (b) resting place_order (BUY 0.001 at 50, never crosses), C, INTERNAL RI-USDT vs EXTERNAL
#       RE-USDT; target within 15 %;
#   (c) the crossing workload of (a), C, on M1..M4-USDT, one market per client, 1, 2 and 4
#       clients: tps and scaling.
#
# Knobs: BENCH_DURATION=10 BENCH_ROUNDS=3 BENCH_WARMUP=3 BENCH_BOOK=10000 BENCH_PARTS="a b c"
#        BENCH_PORTS BENCH_KEEP EA_PG_BINDIR EA_RUN_USER (as bench/run.sh)

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PGBIN=${EA_PG_BINDIR:-/usr/lib/postgresql/15/bin}
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-3}
BOOK=${BENCH_BOOK:-10000}
PARTS=${BENCH_PARTS:-a b c}
PORTS=${BENCH_PORTS:-$(seq -s ' ' 55480 55489)}

say() { printf '%s\n' "$*"; }
die() { printf 'bench/matching_bench.sh: error: %s\n' "$*" >&2; exit 1; }
for f in initdb pg_ctl psql pgbench; do
	[ -x "$PGBIN/$f" ] || die "$PGBIN/$f not found (set EA_PG_BINDIR)"
done
EA_PG_CONFIG_ORIG=$PGBIN/pg_config
[ -f "$("$PGBIN/pg_config" --pkglibdir)/exchange_adapter.so" ] ||
	die "exchange_adapter is not installed: run make && sudo make install first"
# The run user and running as it: the same rules as the test harness (scripts/lib.sh).
# shellcheck source=scripts/lib.sh
. "$HERE/../scripts/lib.sh"
RUN_USER=$(ea_run_user)
as_user() { ea_as_user "$@"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/exchange_adapter-bench.XXXXXX")
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

cp -r "$HERE/setup.sql" "$HERE/plpgsql.sql" "$HERE/matching_plpgsql.sql" "$HERE/matching_setup.sql" \
	"$HERE/matching_equivalence.sql" "$HERE/matching_profile.sql" "$WORK/"
# A snapshot of the installed PostgreSQL and extension, run from the run directory: another
# `make install` on this machine during the run cannot swap the library under the benchmark.
# (PostgreSQL finds its share and lib directories relative to its binaries, so a copy that
# keeps the layout works.)
SNAP=$WORK/pg
for d in "$PGBIN" "$("$PGBIN/pg_config" --pkglibdir)" "$("$PGBIN/pg_config" --sharedir)"; do
	mkdir -p "$SNAP$(dirname "$d")"
	[ -d "$SNAP$d" ] || cp -a "$d" "$SNAP$d"
done
SO=$("$PGBIN/pg_config" --pkglibdir)/exchange_adapter.so
SO_INFO="$(sha256sum "$SO" | cut -c1-12), installed $(date -r "$SO" '+%F %T')"
PGBIN=$SNAP$PGBIN
[ "$("$PGBIN/pg_config" --sharedir)" = "$SNAP$("$EA_PG_CONFIG_ORIG" --sharedir)" ] ||
	die "the PostgreSQL snapshot in $SNAP does not find its own share directory"
[ "$(id -u)" -eq 0 ] && chown -R "$RUN_USER" "$WORK"

# ---------------------------------------------------------------------------------------------
# The cluster: loopback TCP with SCRAM (the machine is shared), password in a 0600 pgpass.

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
		# bench/matching_bench.sh
		listen_addresses = '127.0.0.1'
		port = $p
		unix_socket_directories = '$WORK'
		unix_socket_permissions = 0700
		shared_preload_libraries = 'exchange_adapter'
		exchange_adapter.database = 'bench_no_worker'
		synchronous_commit = off
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
	as_user sed -i '/^# bench\/matching_bench.sh$/,$d' "$DATA/postgresql.conf"
done
[ -n "$PORT" ] || die "no free port among: $PORTS"

as_user sh -c "umask 077; printf '127.0.0.1:%s:*:postgres:%s\n' '$PORT' '$PASSWORD' > '$WORK/pgpass'"
ENVS=(PGPASSFILE="$WORK/pgpass" PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER=postgres PGDATABASE=bench)
run_psql() { as_user env "${ENVS[@]}" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

say "== PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT, data in $DATA"
say "   exchange_adapter.so $SO_INFO (snapshot); tree $(git -C "$HERE" describe --always --dirty 2>/dev/null || echo '?'); $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run_psql -d postgres -c 'CREATE DATABASE bench'
run_psql -c 'CREATE EXTENSION exchange_adapter' -f "$WORK/plpgsql.sql" -f "$WORK/matching_plpgsql.sql" \
	-f "$WORK/setup.sql" -f "$WORK/matching_setup.sql" >/dev/null

say "== equivalence: the PL/pgSQL peer matches as the C place_order does"
run_psql -o /dev/null -f "$WORK/matching_equivalence.sql" 2>&1 | sed 's/^/   /' ||
	die "bench/matching_plpgsql.sql does not match as the C engine (see above)"

say "== books of $BOOK resting orders on MC, MP, M1..M4"
for m in MC MP M1 M2 M3 M4; do
	run_psql -c "SELECT bench.make_book('$m-USDT', $BOOK)" >/dev/null
done
run_psql -c 'VACUUM ANALYZE' >/dev/null
n=$(run_psql -At -c "SELECT count(*) FROM exchange.orders WHERE symbol IN ('MC-USDT', 'MP-USDT', 'M1-USDT', 'M2-USDT', 'M3-USDT', 'M4-USDT') AND status IN ('OPEN', 'PARTIAL')")
[ "$n" = $((6 * BOOK)) ] || die "the books hold $n resting orders, not $((6 * BOOK))"

# The pgbench scripts.  Crossing: a BUY taker of k lots at limit 110 (fills the k best asks of
# 0.001), then k resting SELLs of 0.001 at 101.00 that restore the level.  FN is the function,
# SYM the market expression (per client for the parallel runs).
cross_script() {
	cat <<-SQL
		\set k random(1, 3)
		\set a :client_id % 2 + 1
		SELECT (f).status FROM (SELECT $1(bench.acct(:a), $2, 'BUY', 'LIMIT', :k * 0.001, 110) f) s;
		SELECT count($1(bench.acct(:a), $2, 'SELL', 'LIMIT', 0.001, 101)) FROM generate_series(1, :k);
	SQL
}
cross_script exchange.place_order "'MC-USDT'" >"$WORK/cross_c.sql"
cross_script exchange_plpgsql.place_order_matching "'MP-USDT'" >"$WORK/cross_plpgsql.sql"
cross_script exchange.place_order "(ARRAY['M1-USDT','M2-USDT','M3-USDT','M4-USDT'])[:client_id + 1]" >"$WORK/cross_par.sql"
for m in RI RE; do
	printf '%s\n' '\set a :client_id % 2 + 1' \
		"SELECT (exchange.place_order(bench.acct(:a), '$m-USDT', 'BUY', 'LIMIT', 0.001, 50)).status;" >"$WORK/rest_$m.sql"
done
[ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$WORK"/*.sql

RESULTS=$WORK/results.tsv
: >"$RESULTS"
[ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$RESULTS"

# run_one LABEL SCRIPT CLIENTS SYNC SECONDS ROUND
run_one() {
	local label=$1 script=$2 clients=$3 sync=$4 secs=$5 round=$6 out tps
	run_psql -c CHECKPOINT
	out=$(as_user env "${ENVS[@]}" PGOPTIONS="-c synchronous_commit=$sync" \
		"$PGBIN/pgbench" -n -M prepared -c "$clients" -j "$clients" -T "$secs" -f "$WORK/$script.sql" 2>&1) ||
		{ printf '%s\n' "$out" >&2; die "pgbench failed: $label"; }
	grep -q '^number of failed transactions: 0 ' <<<"$out" ||
		{ printf '%s\n' "$out" >&2; die "failed transactions: $label"; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$out")
	[ -n "$tps" ] || { printf '%s\n' "$out" >&2; die "no tps in the pgbench output"; }
	printf '   %-28s %-7s %10.1f tps\n' "$label" "$round" "$tps"
	[ "$round" = warmup ] || printf '%s\t%s\t%s\n' "$label" "$round" "$tps" >>"$RESULTS"
}

# The runs of one round: label script clients sync.
RUNS=()
for p in $PARTS; do
	case $p in
	a) RUNS+=("a.cross.sync_off.C cross_c 2 off" "a.cross.sync_off.PL cross_plpgsql 2 off"
		"a.cross.sync_on.C cross_c 2 on" "a.cross.sync_on.PL cross_plpgsql 2 on") ;;
	b) RUNS+=("b.rest.INTERNAL rest_RI 2 off" "b.rest.EXTERNAL rest_RE 2 off"
		"b.rest.INTERNAL.1client rest_RI 1 off" "b.rest.EXTERNAL.1client rest_RE 1 off") ;;
	c) RUNS+=("c.parallel.1 cross_par 1 off" "c.parallel.2 cross_par 2 off" "c.parallel.4 cross_par 4 off") ;;
	*) die "unknown part $p (BENCH_PARTS: a b c)" ;;
	esac
done

say "== pgbench -M prepared, $ROUNDS rounds of ${DURATION}s interleaved (warm-up ${WARMUP}s each); a transaction of (a)/(c) is one crossing taker"
for r in warmup $(seq 1 "$ROUNDS"); do
	for run in "${RUNS[@]}"; do
		read -r label script clients sync <<<"$run"
		secs=$DURATION
		[ "$r" = warmup ] && secs=$WARMUP
		run_one "$label" "$script" "$clients" "$sync" "$secs" "$r"
	done
done

say "== check_invariants() after every run"
bad=$(run_psql -At -c 'SELECT count(*) FROM exchange.check_invariants()')
[ "$bad" = 0 ] || { run_psql -c 'SELECT * FROM exchange.check_invariants() LIMIT 20'; die "check_invariants() found $bad violations"; }
say "   empty"

say ""
say "== medians over $ROUNDS rounds; load average now: $(cut -d' ' -f1-3 /proc/loadavg) (shared machine)"
perl -e '
	my %t;
	while (<STDIN>) { chomp; my ($l, $r, $tps) = split /\t/; push @{ $t{$l} }, $tps; }
	sub med { my @s = sort { $a <=> $b } @_; my $n = @s; return undef unless $n;
		return $n % 2 ? $s[($n - 1) / 2] : ($s[$n / 2 - 1] + $s[$n / 2]) / 2; }
	my %m = map { $_ => med(@{ $t{$_} }) } keys %t;
	printf "   %-28s %10.1f tps\n", $_, $m{$_} for sort keys %m;
	for my $s (qw(sync_off sync_on)) {
		my ($c, $p) = ($m{"a.cross.$s.C"}, $m{"a.cross.$s.PL"});
		printf "(a) crossing, %-8s C %.1f / PL/pgSQL %.1f = %.2fx   (target C >= 3x)\n", $s, $c, $p, $c / $p if $c && $p;
	}
	my ($i, $e) = ($m{"b.rest.INTERNAL"}, $m{"b.rest.EXTERNAL"});
	printf "(b) resting: INTERNAL %.1f vs EXTERNAL %.1f: %+.1f %%   (target within 15 %%)\n", $i, $e, ($i / $e - 1) * 100 if $i && $e;
	($i, $e) = ($m{"b.rest.INTERNAL.1client"}, $m{"b.rest.EXTERNAL.1client"});
	printf "(b) resting, 1 client (no wait on the market row lock): INTERNAL %.1f vs EXTERNAL %.1f: %+.1f %%\n", $i, $e, ($i / $e - 1) * 100 if $i && $e;
	my $one = $m{"c.parallel.1"};
	for my $n (1, 2, 4) {
		my $v = $m{"c.parallel.$n"} or next;
		printf "(c) %d INTERNAL market(s), one client each: %.1f tps, %.2fx of one client\n", $n, $v, $v / $one;
	}
	print "(c) no target; the machine has '"$(nproc)"' CPUs\n";' <"$RESULTS"

say ""
say "== where the time goes: bench/matching_profile.sql (${BENCH_PROFILE_N:-300} crossing transactions each, rolled back)"
as_user env "${ENVS[@]}" PGOPTIONS="-c bench.n=${BENCH_PROFILE_N:-300}" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
	-P pager=off -f "$WORK/matching_profile.sql" 2>&1 | grep -v '^$' | sed 's/^/   /'
