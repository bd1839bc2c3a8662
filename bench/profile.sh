#!/usr/bin/env bash
# bench/profile.sh — where the time of one place_order / apply_trade goes: valgrind callgrind
# instruction counts per transaction, for the C function, the PL/pgSQL version and the
# client-side statements, on the benchmark's own fixture and pgbench scripts.
#
#   bash bench/profile.sh                    (BENCH_PROFILE_TX=1500 transactions per run)
#
# Knobs: BENCH_PROFILE_TX, BENCH_WORKLOADS="place trade", BENCH_PROFILE_VARIANTS="c plpgsql
# client" (or minimal: bench/minimal.sql), BENCH_PROFILE_SETUP=FILE.sql (an experiment run on the fixture first, e.g. dropping
# constraints to measure what they cost), BENCH_PROFILE_WARM=1000 (unprofiled transactions of
# each workload first, so that no variant meets empty tables; 0: none).
#
# Instruction counts do not depend on the load of a shared machine, unlike tps.  The cluster
# (a snapshot of the installed PostgreSQL and extension, as in bench/run.sh) runs under
# `valgrind --tool=callgrind`, collecting only inside PortalRun and CommitTransactionCommand
# (statement execution and commit; not connection start-up, parse/bind or the protocol), one
# backend per pgbench run (-c 1 -M prepared).  For each run it prints Ir per transaction, the
# inclusive Ir per transaction of the functions that matter (CHECK constraints, foreign-key
# checks, index inserts, executor start-up, WAL, commit, the function bodies) and the top
# functions by self cost.  The callgrind files stay in the kept run directory for
# callgrind_annotate.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PGBIN=${EA_PG_BINDIR:-/usr/lib/postgresql/15/bin}
NTX=${BENCH_PROFILE_TX:-1500}
WORKLOADS=${BENCH_WORKLOADS:-place trade}
VARIANTS=${BENCH_PROFILE_VARIANTS:-c plpgsql client}
PORTS=${BENCH_PORTS:-$(seq -s ' ' 55470 55479)}

say() { printf '%s\n' "$*"; }
die() { printf 'bench/profile.sh: error: %s\n' "$*" >&2; exit 1; }

command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null ||
	die "valgrind (with callgrind_annotate) is needed: apt-get install valgrind"
[ -f "$("$PGBIN/pg_config" --pkglibdir)/exchange_adapter.so" ] ||
	die "exchange_adapter is not installed: run make && sudo make install first"

# The run user and running as it: the same rules as the test harness (scripts/lib.sh).
# shellcheck source=scripts/lib.sh
. "$HERE/../scripts/lib.sh"
RUN_USER=$(ea_run_user)
as_user() { ea_as_user "$@"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/exchange_adapter-profile.XXXXXX")
chmod 755 "$WORK"
DATA=$WORK/pgdata
STARTED=0
stop_server() {
	[ "$STARTED" = 1 ] || return 0
	as_user "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 600 stop >/dev/null 2>&1 ||
		as_user "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
	STARTED=0
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_server
	say "profile directory kept: $WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cp -r "$HERE/setup.sql" "$HERE/plpgsql.sql" "$HERE/minimal.sql" "$HERE/pgbench" "$WORK/"
SNAP=$WORK/pg
for d in "$PGBIN" "$("$PGBIN/pg_config" --pkglibdir)" "$("$PGBIN/pg_config" --sharedir)"; do
	mkdir -p "$SNAP$(dirname "$d")"
	cp -a "$d" "$SNAP$d"
done
PGBIN=$SNAP$PGBIN
mkdir -p "$WORK/cg"
[ "$(id -u)" -eq 0 ] && chown -R "$RUN_USER" "$WORK"

PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
as_user sh -c "umask 077; printf '%s\n' '$PASSWORD' > '$WORK/pwfile'"
as_user "$PGBIN/initdb" -D "$DATA" -U postgres --pwfile="$WORK/pwfile" --no-locale -E UTF8 \
	--auth-local=scram-sha-256 --auth-host=scram-sha-256 >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log" >&2; die "initdb failed"; }

PORT=
for p in $PORTS; do
	perl -MIO::Socket::INET -e 'IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0],
		Proto => "tcp", Listen => 1, ReuseAddr => 1) or exit 1' "$p" && { PORT=$p; break; }
done
[ -n "$PORT" ] || die "no free port among: $PORTS"
as_user sh -c "cat >> '$DATA/postgresql.conf'" <<EOF
# bench/profile.sh
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$WORK'
unix_socket_permissions = 0700
shared_preload_libraries = 'exchange_adapter'
exchange_adapter.database = 'bench_no_worker'
synchronous_commit = off
autovacuum = off
lc_messages = 'C'
EOF
as_user sh -c "umask 077; printf '127.0.0.1:%s:*:postgres:%s\n' '$PORT' '$PASSWORD' > '$WORK/pgpass'"
ENVS=(PGPASSFILE="$WORK/pgpass" PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER=postgres PGDATABASE=bench)
run_psql() { as_user env "${ENVS[@]}" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

# start_server [valgrind] — the postmaster in the background, plain or under callgrind.
start_server() {
	local pre=()
	if [ "${1:-}" = valgrind ]; then
		pre=(valgrind --tool=callgrind --quiet --collect-atstart=no
			--toggle-collect=PortalRun --toggle-collect=CommitTransactionCommand
			--callgrind-out-file="$WORK/cg/callgrind.%p")
	fi
	as_user "${pre[@]}" "$PGBIN/postgres" -D "$DATA" >>"$WORK/postgresql.log" 2>&1 &
	STARTED=1
	for _ in $(seq 1 1200); do
		as_user env "${ENVS[@]}" "$PGBIN/pg_isready" -q -d postgres && return 0
		sleep 0.1
	done
	tail -n 20 "$WORK/postgresql.log" >&2
	die "PostgreSQL did not start"
}

say "== fixture (plain server)"
start_server
run_psql -d postgres -c 'CREATE DATABASE bench'
run_psql -c 'CREATE EXTENSION exchange_adapter' -f "$WORK/plpgsql.sql" -f "$WORK/setup.sql" -f "$WORK/minimal.sql" >/dev/null
if [ -n "${BENCH_PROFILE_SETUP:-}" ]; then
	# an experiment: SQL run on the fixture before profiling (e.g. without some constraints)
	cp "$BENCH_PROFILE_SETUP" "$WORK/experiment.sql"
	[ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$WORK/experiment.sql"
	say "   experiment: $BENCH_PROFILE_SETUP"
	run_psql -f "$WORK/experiment.sql" >/dev/null
fi
# Warm-up (not profiled): BENCH_PROFILE_WARM transactions of each workload's C script, so that
# no variant starts on an empty trades table.  A backend plans each foreign-key check once and
# keeps the plan: the first variant run on the fresh fixture had the check of fee_ledger ->
# trades planned as a sequential scan of a near-empty trades table, and paid a scan of every
# trade it had added so far (~35,000 Ir more per transaction after 800), while the next
# variant's backend found a table of 800 trades and planned an index scan.  The sequential scan
# wins up to a few hundred trades (4 pages): warm with more.
WARM=${BENCH_PROFILE_WARM:-1000}
if [ "$WARM" -gt 0 ]; then
	for w in $WORKLOADS; do
		as_user env "${ENVS[@]}" "$PGBIN/pgbench" -n -M prepared -c 1 -t "$WARM" -D naccts=1 -D acct0=0 \
			-f "$WORK/pgbench/${w}_c.sql" >"$WORK/pgbench-$w-warm.log" 2>&1 ||
			{ cat "$WORK/pgbench-$w-warm.log" >&2; die "warm-up failed: $w"; }
	done
	run_psql -c 'VACUUM ANALYZE' >/dev/null
fi
stop_server

say "== server under callgrind; $NTX transactions per run (pgbench -c 1 -M prepared)"
start_server valgrind

# Inclusive cost of these functions, per transaction (names as callgrind_annotate prints them;
# PostgreSQL's static functions have no symbol in the Debian build and are not listed).
FUNCS='PortalRun CommitTransactionCommand SPI_execute_plan ExecConstraints stringToNode
ExecPrepareExpr ExecInsertIndexTuples RI_FKey_check_ins AfterTriggerEndQuery standard_ExecutorStart
standard_ExecutorEnd ExecInitNode heap_insert heap_update heap_lock_tuple XLogInsert GetCachedPlan
exa_place_order exa_apply_trade plpgsql_call_handler exa_call_begin exa_call_end exa_ledger_move exa_ledger_try_move
exa_order_event exa_orders_lifecycle_guard exa_check_amount gen_random_uuid'

for w in $WORKLOADS; do
	for v in $VARIANTS; do
		before=$(ls "$WORK/cg")
		as_user env "${ENVS[@]}" "$PGBIN/pgbench" -n -M prepared -c 1 -t "$NTX" -D naccts=1 -D acct0=0 \
			-f "$WORK/pgbench/${w}_${v}.sql" >"$WORK/pgbench-$w-$v.log" 2>&1 ||
			{ cat "$WORK/pgbench-$w-$v.log" >&2; die "pgbench failed: $w $v"; }
		# the backend writes its file when it exits: the largest new file, once its size holds
		file= size=-1
		for _ in $(seq 1 600); do
			sleep 0.5
			f=$(cd "$WORK/cg" && comm -13 <(printf '%s\n' "$before") <(ls) | xargs -r ls -S | head -n 1)
			[ -n "$f" ] || continue
			s=$(stat -c %s "$WORK/cg/$f")
			[ "$f" = "$file" ] && [ "$s" = "$size" ] && break
			file=$f size=$s
		done
		[ -n "$file" ] || die "no callgrind output for $w $v"
		mv "$WORK/cg/$file" "$WORK/cg/$w-$v.callgrind"
		say ""
		say "== $w / $v"
		as_user callgrind_annotate --inclusive=yes "$WORK/cg/$w-$v.callgrind" 2>/dev/null >"$WORK/cg/$w-$v.inclusive" || true
		as_user callgrind_annotate "$WORK/cg/$w-$v.callgrind" 2>/dev/null >"$WORK/cg/$w-$v.self" || true
		perl -e '
			my ($ntx, $funcs, $incl, $self) = @ARGV;
			my %want = map { $_ => 1 } split /\s+/, $funcs;
			open(my $fh, "<", $incl) or die;
			my ($total, %inc);
			while (<$fh>) {
				$total = $1 if !defined $total && /^\s*([\d,]+)\s+\(100.0%\)\s+PROGRAM TOTALS/;
				$total = $1 if !defined $total && /^\s*([\d,]+)\s+PROGRAM TOTALS/;
				next unless /^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(?:\*\s+)?\S*?:?(\w+)\s/ || /^\s*([\d,]+)\s+\S*?:?(\w+)\s/;
				my ($n, $f) = ($1, $2);
				$n =~ tr/,//d;
				$inc{$f} //= $n if $want{$f};
			}
			$total =~ tr/,//d;
			printf "   %12.0f Ir per transaction (collected in PortalRun + CommitTransactionCommand)\n", $total / $ntx;
			printf "   inclusive, per transaction:\n";
			for my $f (sort { $inc{$b} <=> $inc{$a} } keys %inc) {
				printf "   %12.0f  %5.1f%%  %s\n", $inc{$f} / $ntx, 100 * $inc{$f} / $total, $f;
			}
			open($fh, "<", $self) or die;
			my $n = 0;
			printf "   top self cost:\n";
			while (<$fh>) {
				next unless /^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(\S+)/ || /^\s*([\d,]+)\s+()(\S+)/;
				my ($ir, $pct, $f) = ($1, $2, $3);
				next if $f eq "PROGRAM";
				$ir =~ tr/,//d;
				$f =~ s/^.*://;
				printf "   %12.0f  %5.1f%%  %s\n", $ir / $ntx, 100 * $ir / $total, $f;
				last if ++$n >= 15;
			}' "$NTX" "$FUNCS" "$WORK/cg/$w-$v.inclusive" "$WORK/cg/$w-$v.self"
	done
done
