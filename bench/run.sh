#!/usr/bin/env bash
# bench/run.sh — throughput of place_order and apply_trade: the C functions against an honest
# PL/pgSQL version (bench/plpgsql.sql) and against the same statements sent one by one by the
# client inside BEGIN/COMMIT (bench/pgbench/*_client.sql).  No timed assertion anywhere: it
# measures and prints.
#
#   bash bench/run.sh            (or: make bench)
#
# What it does: initdb a fresh PostgreSQL 15 cluster in a temporary directory (as `postgres`
# when run as root: initdb refuses root), start it on a free loopback port in 55470-55479 with
# the installed extension preloaded, load the fixture (bench/setup.sql) and the PL/pgSQL
# version, check that the PL/pgSQL version writes exactly the rows the C functions write
# (bench/equivalence.sql), then run pgbench (-M prepared) for every configuration, workload and
# variant, interleaved round by round (C, PL/pgSQL, client, minimal, C, PL/pgSQL, ...) so that
# the noise of a shared machine hits all four alike, and print the median tps of each with the
# ratios C/PL/pgSQL, C/client and C/minimal.  "minimal" is the hand-written PL/pgSQL over the
# minimal schema of bench/minimal.sql (its own tables, copied from the fixture).  At the end check_invariants() must be empty.  The cluster is
# stopped and its directory removed on exit (BENCH_KEEP=1 keeps it).
#
# Configurations: "main" (synchronous_commit = off, each client on its own account, BENCH_ROUNDS
# rounds of BENCH_DURATION s: the targets C >= 1.3x PL/pgSQL and >= 3x client apply here), and,
# reported without target, "sync_on" (synchronous_commit = on) and "hot" (every client on
# account 1), BENCH_EXTRA_ROUNDS rounds of BENCH_EXTRA_DURATION s.
#
# Knobs (environment):
#   BENCH_CLIENTS=2  BENCH_DURATION=20  BENCH_ROUNDS=5  BENCH_WARMUP=5
#   BENCH_EXTRA_DURATION=10  BENCH_EXTRA_ROUNDS=3  BENCH_EXTRAS=1 (0: main only)
#   BENCH_WORKLOADS="place trade"  BENCH_PORTS="55470 ... 55479"  BENCH_KEEP=0
#   EA_PG_BINDIR=/usr/lib/postgresql/15/bin  EA_RUN_USER (default: postgres when root, else you)
#   BENCH_RESULTS=FILE   also write the raw per-run figures there (TSV)

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PGBIN=${EA_PG_BINDIR:-/usr/lib/postgresql/15/bin}
CLIENTS=${BENCH_CLIENTS:-2}
DURATION=${BENCH_DURATION:-20}
ROUNDS=${BENCH_ROUNDS:-5}
WARMUP=${BENCH_WARMUP:-5}
EXTRA_DURATION=${BENCH_EXTRA_DURATION:-10}
EXTRA_ROUNDS=${BENCH_EXTRA_ROUNDS:-3}
EXTRAS=${BENCH_EXTRAS:-1}
WORKLOADS=${BENCH_WORKLOADS:-place trade}
PORTS=${BENCH_PORTS:-$(seq -s ' ' 55470 55479)}
VARIANTS="c plpgsql client minimal"

say() { printf '%s\n' "$*"; }
die() { printf 'bench/run.sh: error: %s\n' "$*" >&2; exit 1; }

for f in initdb pg_ctl psql pgbench; do
	[ -x "$PGBIN/$f" ] || die "$PGBIN/$f not found (set EA_PG_BINDIR)"
done
EA_PG_CONFIG_ORIG=$PGBIN/pg_config
[ -f "$("$PGBIN/pg_config" --pkglibdir)/exchange_adapter.so" ] ||
	die "exchange_adapter is not installed: run make && sudo make install first"
[ "$CLIENTS" -ge 1 ] && [ "$CLIENTS" -le 8 ] || die "BENCH_CLIENTS must be 1..8 (the fixture has 8 accounts)"

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

# The scripts, readable by the run user.
cp -r "$HERE/setup.sql" "$HERE/plpgsql.sql" "$HERE/minimal.sql" "$HERE/equivalence.sql" "$HERE/pgbench" "$WORK/"

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
		# bench/run.sh
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
	as_user sed -i '/^# bench\/run.sh$/,$d' "$DATA/postgresql.conf"
done
[ -n "$PORT" ] || die "no free port among: $PORTS"

as_user sh -c "umask 077; printf '127.0.0.1:%s:*:postgres:%s\n' '$PORT' '$PASSWORD' > '$WORK/pgpass'"
ENVS=(PGPASSFILE="$WORK/pgpass" PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER=postgres PGDATABASE=bench)
run_psql() { as_user env "${ENVS[@]}" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

say "== PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT, data in $DATA"
say "   exchange_adapter.so $SO_INFO (snapshot); tree $(git -C "$HERE" describe --always --dirty 2>/dev/null || echo '?'); $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run_psql -d postgres -c 'CREATE DATABASE bench'
run_psql -c 'CREATE EXTENSION exchange_adapter' -f "$WORK/plpgsql.sql" -f "$WORK/setup.sql" -f "$WORK/minimal.sql" >/dev/null

say "== equivalence: the PL/pgSQL version writes what the C functions write"
run_psql -f "$WORK/equivalence.sql" >/dev/null || die "bench/plpgsql.sql does not match the C functions (see above)"

# The variants of each workload, one client, one seed (so the same random choices), on
# accounts 5, 6, 7 and 8: every row the first three write must be the same (the minimal peer
# writes its own tables, bench_min: this run only proves that it works).
say "== the three same-schema variants write the same rows (pgbench -c 1 -t 30, one seed, accounts 5, 6, 7; minimal on 8)"
for w in $WORKLOADS; do
	a=4
	for v in $VARIANTS; do
		as_user env "${ENVS[@]}" "$PGBIN/pgbench" -n -M prepared -c 1 -t 30 --random-seed=20240101 \
			-D naccts=1 -D acct0=$a -f "$WORK/pgbench/${w}_${v}.sql" >"$WORK/verify.log" 2>&1 ||
			{ cat "$WORK/verify.log" >&2; die "pgbench failed: $w $v"; }
		a=$((a + 1))
	done
done
for other in 6 7; do
	diff=$(run_psql -At -c "SELECT string_agg(format('%s #%s: %s | %s', coalesce(x.tbl, y.tbl), coalesce(x.n, y.n), x.row_text, y.row_text), E'\n')
		FROM bench.rows(bench.acct(5), false) x FULL JOIN bench.rows(bench.acct($other), false) y ON y.tbl = x.tbl AND y.n = x.n
		WHERE x.row_text IS DISTINCT FROM y.row_text")
	[ -z "$diff" ] || { printf '%s\n' "$diff" | head -40 >&2; die "account $other (variant $([ $other = 6 ] && echo plpgsql || echo client)) wrote other rows than account 5 (C)"; }
done
say "   the same $(run_psql -At -c 'SELECT count(*) FROM bench.rows(bench.acct(5), false)') rows"

# ---------------------------------------------------------------------------------------------
# The runs.

RESULTS=$WORK/results.tsv
: >"$RESULTS"
[ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$RESULTS"

# run_one CONFIG WORKLOAD VARIANT SECONDS ROUND — one pgbench run; appends to RESULTS unless
# ROUND is "warmup".
run_one() {
	local config=$1 workload=$2 variant=$3 secs=$4 round=$5 naccts=$CLIENTS sync=off out tps lat
	case $config in
	sync_on) sync=on ;;
	hot) naccts=1 ;;
	esac
	run_psql -c CHECKPOINT
	sleep 0.3
	cpu0=$(children_cpu)
	out=$(as_user env "${ENVS[@]}" PGOPTIONS="-c synchronous_commit=$sync" \
		/usr/bin/time -f '%U %S' -o "$WORK/time.out" \
		"$PGBIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$secs" -D naccts="$naccts" -D acct0=0 \
		-f "$WORK/pgbench/${workload}_${variant}.sql" 2>&1) ||
		{ printf '%s\n' "$out" >&2; die "pgbench failed: $config $workload $variant"; }
	sleep 0.3				# the backends exit and the postmaster reaps them
	cpu1=$(children_cpu)
	grep -q '^number of failed transactions: 0 ' <<<"$out" ||
		{ printf '%s\n' "$out" >&2; die "failed transactions: $config $workload $variant"; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$out")
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' <<<"$out")
	ntx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\)$/\1/p' <<<"$out")
	[ -n "$tps" ] && [ -n "$ntx" ] && [ "$ntx" -gt 0 ] ||
		{ printf '%s\n' "$out" >&2; die "no tps in the pgbench output"; }
	# CPU per transaction, in microseconds: the backends (CPU time of the postmaster's reaped
	# children) and pgbench itself.  Much less sensitive than tps to other load on the machine.
	srv=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$ntx" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) / hz / n * 1e6 }')
	cli=$(awk -v n="$ntx" '{ printf "%.1f", ($1 + $2) / n * 1e6 }' "$WORK/time.out")
	printf '   %-8s %-6s %-8s %-7s %10.1f tps  %7.3f ms  server %7.1f us/tx  pgbench %6.1f us/tx\n' \
		"$config" "$workload" "$variant" "$round" "$tps" "$lat" "$srv" "$cli"
	[ "$round" = warmup ] ||
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$config" "$workload" "$variant" "$round" "$tps" "$lat" "$srv" "$cli" >>"$RESULTS"
}

# CPU ticks (user + system) of the postmaster's terminated and reaped children: the backends.
CLK_TCK=$(getconf CLK_TCK)
children_cpu() {
	local pid
	pid=$(head -n 1 "$DATA/postmaster.pid")
	sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $14 + $15 }'
}

CONFIGS=main
[ "$EXTRAS" = 1 ] && CONFIGS="main sync_on hot"
say "== pgbench: $CLIENTS clients, -M prepared; main: $ROUNDS x ${DURATION}s, extras: $EXTRA_ROUNDS x ${EXTRA_DURATION}s; warm-up ${WARMUP}s each"
for w in $WORKLOADS; do
	for v in $VARIANTS; do run_one main "$w" "$v" "$WARMUP" warmup; done
done
max_rounds=$ROUNDS
[ "$EXTRAS" = 1 ] && [ "$EXTRA_ROUNDS" -gt "$max_rounds" ] && max_rounds=$EXTRA_ROUNDS
for ((r = 1; r <= max_rounds; r++)); do
	for c in $CONFIGS; do
		if [ "$c" = main ]; then
			[ "$r" -le "$ROUNDS" ] || continue
			secs=$DURATION
		else
			[ "$r" -le "$EXTRA_ROUNDS" ] || continue
			secs=$EXTRA_DURATION
		fi
		for w in $WORKLOADS; do
			for v in $VARIANTS; do run_one "$c" "$w" "$v" "$secs" "$r"; done
		done
	done
done

say "== check_invariants() after every run"
bad=$(run_psql -At -c 'SELECT count(*) FROM exchange.check_invariants()')
[ "$bad" = 0 ] || { run_psql -c 'SELECT * FROM exchange.check_invariants() LIMIT 20'; die "check_invariants() found $bad violations"; }
say "   empty ($(run_psql -At -c "SELECT format('%s orders, %s trades, %s journal rows, %s outbox rows', (SELECT count(*) FROM exchange.orders), (SELECT count(*) FROM exchange.trades), (SELECT count(*) FROM exchange.balance_journal), (SELECT count(*) FROM exchange.outbox))"))"

[ -n "${BENCH_RESULTS:-}" ] && cp "$RESULTS" "$BENCH_RESULTS"

# ---------------------------------------------------------------------------------------------
# The table: medians per configuration, workload and variant.

say ""
say "== medians over the rounds ($CLIENTS clients; per-run figures above); load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
perl -e '
	my (%tps, %srv, %cli);
	while (<STDIN>) {
		chomp;
		my ($c, $w, $var, $r, $tps, $lat, $srv, $cli) = split /\t/;
		push @{ $tps{$c}{$w}{$var} }, $tps;
		push @{ $srv{$c}{$w}{$var} }, $srv;
		push @{ $cli{$c}{$w}{$var} }, $cli;
	}
	sub median { my @s = sort { $a <=> $b } @_; my $n = @s;
		return $n % 2 ? $s[($n - 1) / 2] : ($s[$n / 2 - 1] + $s[$n / 2]) / 2; }
	my %label = (main => "sync_commit=off", sync_on => "sync_commit=on", hot => "one hot account");
	my %wl = (place => "place_order", trade => "apply_trade");
	my @rows;
	printf "%-16s %-12s %9s %9s %9s %9s %7s %8s %7s   %-35s %-20s\n", "", "", "tps:", "", "", "", "", "", "",
		"server CPU us/tx:", "pgbench CPU us/tx:";
	printf "%-16s %-12s %9s %9s %9s %9s %7s %8s %7s   %8s %8s %8s %8s   %6s %6s %6s\n", "configuration", "workload",
		"C", "PL/pgSQL", "client", "minimal", "C/PL", "C/client", "C/min", "C", "PL/pgSQL", "client", "minimal", "C", "PL", "client";
	for my $c (grep { $tps{$_} } qw(main sync_on hot)) {
		for my $w (grep { $tps{$c}{$_} } qw(place trade)) {
			my ($tc, $tp, $tl, $tm) = map { median(@{ $tps{$c}{$w}{$_} }) } qw(c plpgsql client minimal);
			my ($sc, $sp, $sl, $sm) = map { median(@{ $srv{$c}{$w}{$_} }) } qw(c plpgsql client minimal);
			my ($cc, $cp, $cl) = map { median(@{ $cli{$c}{$w}{$_} }) } qw(c plpgsql client);
			printf "%-16s %-12s %9.1f %9.1f %9.1f %9.1f %6.2fx %7.2fx %6.2fx   %8.1f %8.1f %8.1f %8.1f   %6.1f %6.1f %6.1f\n",
				$label{$c}, $wl{$w}, $tc, $tp, $tl, $tm, $tc / $tp, $tc / $tl, $tc / $tm, $sc, $sp, $sl, $sm, $cc, $cp, $cl;
		}
	}
	print "targets (sync_commit=off): C/PL >= 1.30x, C/client >= 3.00x, place_order C/min >= 1.00x\n";' <"$RESULTS"
