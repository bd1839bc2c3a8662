#!/usr/bin/env bash
# scripts/test.sh — the test command: every layer, against throwaway servers it starts and stops.
#
#   scripts/test.sh                 build (CI flags), install, run all four layers
#   scripts/test.sh regress tap     only those layers (regress | isolation | pgtap | tap)
#
#   SKIP_INSTALL=1   use the extension already installed (no build, no make install)
#   EA_ONLY=REGEX    run only the tests whose name (file name without extension) matches the
#                    extended regular expression, e.g. EA_ONLY='^(funds|iso_lock|105_redis_acl)$'
#   EA_KEEP_TMP=1    keep the run directory even when everything passed
#   (more knobs, for the servers, at the top of scripts/lib.sh)
#
# What it does: copies the tree (tracked and untracked-but-not-ignored files) into a fresh
# directory under $TMPDIR, builds it with -Werror and installs it (as root; initdb refuses root,
# so everything after that runs as `postgres`), starts redis-server and a PostgreSQL 15 cluster on
# free loopback ports with the library preloaded, then runs
#   regress    pg_regress:            test/sql/*.sql    against expected/*.out (make installcheck)
#   isolation  pg_isolation_regress:  test/specs/*.spec against expected/*.out (make installcheck)
#   pgtap      pg_prove, one file at a time, in database `pgtap` (which has the pgtap extension)
#   tap        prove, one file at a time; the tests start their own clusters and redis servers
# Every pg_regress test, isolation test, pgTAP file and TAP file is one unit; a unit whose runner
# crashed or that never reported counts as failed. The last line is `N passed, N failed`; the exit
# status is non-zero when anything failed. Servers are stopped on exit, failure, Ctrl-C and
# SIGTERM. The run directory is deleted on success and kept (path printed) otherwise.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

usage() {
	sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

LAYERS=()
for arg in "$@"; do
	case $arg in
	regress | isolation | pgtap | tap) LAYERS+=("$arg") ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
[ ${#LAYERS[@]} -gt 0 ] || LAYERS=(regress isolation pgtap tap)

# The worker serves this database, which is never a test database: pg_regress drops and
# recreates its own, and a served database cannot be dropped while the worker is connected.
WORKER_DB=adapter_worker

PASSED=0 FAILED=0
FAILED_NAMES=()
WORK='' TREE='' CHILD='' CLEANED=0 OK=0
EXTRA_ENV=() # per-call additions to RUN_ENV

pass() { PASSED=$((PASSED + 1)); }
fail() { FAILED=$((FAILED + 1)); FAILED_NAMES+=("$1"); }

# run CMD... — runs CMD in a session of its own, in the background, and waits for it. The wait is
# interruptible, so Ctrl-C or SIGTERM reaches our trap at once, and the trap can end the command's
# whole process group (make, pg_regress, psql, prove, perl tests) by its id.
run() {
	setsid -w "$@" 9<&- &
	CHILD=$!
	wait "$CHILD"
	local rc=$?
	CHILD=
	return $rc
}

# in_tree MODE LOG CMD... — runs CMD in the copied tree as the run user with the test
# environment. MODE: tee (show and log), quiet (log only), show (no log).
in_tree() {
	local mode=$1 log=$2
	shift 2
	local as=()
	if ea_is_root && [ "$(ea_run_user)" != root ]; then as=(runuser -u "$(ea_run_user)" --); fi
	run "${as[@]}" env "${RUN_ENV[@]}" "${EXTRA_ENV[@]}" bash -c '
		cd "$EA_TREE" || exit 1
		if [ "${EA_NO_PGENV:-0}" = 1 ]; then unset PGHOST PGPORT PGUSER PGDATABASE; fi
		mode=$1 log=$2
		shift 2
		case $mode in
		tee) set -o pipefail; "$@" 2>&1 | tee "$log" ;;
		quiet) exec "$@" >"$log" 2>&1 ;;
		*) exec "$@" ;;
		esac' in_tree "$mode" "$log" "$@"
}

stop_child() {
	local i
	[ -n "$CHILD" ] || return 0
	kill -TERM -- "-$CHILD" 2>/dev/null || kill -TERM "$CHILD" 2>/dev/null
	# Give TAP tests time to run their END blocks (they stop their own nodes and redis).
	for ((i = 0; i < 100; i++)); do
		kill -0 -- "-$CHILD" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$CHILD" 2>/dev/null
	wait "$CHILD" 2>/dev/null
	CHILD=
}

cleanup() {
	[ "$CLEANED" = 1 ] && return 0
	CLEANED=1
	# A second Ctrl-C must not cut the shutdown short and leave servers behind.
	trap '' INT TERM HUP
	local pid
	if [ -n "$CHILD" ] && [ -n "$WORK" ]; then
		# Interrupted: start our servers' shutdown now, in parallel with the child's.
		pid=$(cat "$WORK/redis/redis.pid" 2>/dev/null || true)
		ea_pid_is "$pid" redis-server && kill -TERM "$pid" 2>/dev/null
		pid=$(head -n 1 "$WORK/pgdata/postmaster.pid" 2>/dev/null || true)
		ea_pid_is "$pid" postgres && kill -QUIT "$pid" 2>/dev/null # immediate shutdown
	fi
	stop_child
	[ -n "$WORK" ] && [ -d "$WORK" ] || return 0
	ea_cluster_stop "$WORK"
	ea_redis_stop "$WORK/redis"
	ea_sweep_servers "$WORK"
	if [ "$OK" = 1 ] && [ "${EA_KEEP_TMP:-0}" != 1 ]; then
		rm -rf "$WORK"
	else
		ea_say "run directory kept: $WORK"
	fi
}

on_signal() {
	trap '' INT TERM HUP
	ea_say ""
	ea_say "== interrupted by SIG$1: stopping servers"
	cleanup
	trap - EXIT
	case $1 in INT) exit 130 ;; HUP) exit 129 ;; *) exit 143 ;; esac
}
trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

# Counts a setup step's failure as one failed unit and finishes.
setup_failed() {
	fail "setup: $1"
	finish
}

finish() {
	[ "$FAILED" -eq 0 ] && OK=1
	ea_say ""
	ea_say "== summary"
	cleanup
	if [ "$FAILED" -gt 0 ]; then
		ea_say "failed:"
		printf '  %s\n' "${FAILED_NAMES[@]}"
	fi
	trap - EXIT INT TERM HUP
	ea_say "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
since_ms() { echo "$(($(now_ms) - $1)) ms"; }

show_server_log() {
	[ -f "$WORK/postgresql.log" ] || return 0
	ea_say "--- last lines of the server log ($WORK/postgresql.log)"
	tail -n 40 "$WORK/postgresql.log"
}

# ---------------------------------------------------------------------------------------------
# setup

ea_check_tools
RUN_USER=$(ea_run_user)
id "$RUN_USER" >/dev/null 2>&1 ||
	ea_die "user '$RUN_USER' does not exist (postgresql-common creates 'postgres'; or set EA_RUN_USER)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/exchange_adapter-test.XXXXXX") || ea_die "mktemp failed"
chmod 755 "$WORK"
ea_is_root && chown "$RUN_USER" "$WORK"
TREE=$WORK/tree
mkdir -p "$WORK/logs"
ea_is_root && chown "$RUN_USER" "$WORK/logs"

ea_say "== copy $ROOT -> $TREE"
ea_copy_tree "$ROOT" "$TREE" || setup_failed "copy tree"
ea_is_root && chown -R "$RUN_USER" "$TREE"

# The throwaway redis runs under the deployment's ACL when the tree has one (EA_REDIS_ACLFILE=''
# to run without; see scripts/lib.sh).
if [ -z "${EA_REDIS_ACLFILE+set}" ] && [ -f "$TREE/docker/redis/users.acl" ]; then
	EA_REDIS_ACLFILE=$TREE/docker/redis/users.acl
fi

RUN_ENV=(
	EA_TREE="$TREE"
	PATH="$EA_PG_BINDIR:$PATH"
	PG_CONFIG="$EA_PG_CONFIG"
	PG_REGRESS="$EA_PG_REGRESS"
	PERL5LIB="$EA_PG_PERL5LIB:$TREE/test/perl${PERL5LIB:+:$PERL5LIB}"
	TESTDIR="$TREE"
	REDIS_SERVER="$(command -v "$EA_REDIS_SERVER")"
	REDIS_CLI="$(command -v "$EA_REDIS_CLI")"
	# PostgreSQL::Test::Cluster reserves ports with lock files here; one directory per user, shared
	# by concurrent runs, so two runs' TAP nodes never pick the same port.
	PG_TEST_PORT_DIR="${TMPDIR:-/tmp}/exchange_adapter-portlock.$RUN_USER"
)

if [ "${SKIP_INSTALL:-0}" = 1 ]; then
	ea_install_lock shared
	ea_say "== build and install: skipped (SKIP_INSTALL=1), using the installed extension"
	[ -f "$("$EA_PG_CONFIG" --pkglibdir)/exchange_adapter.so" ] ||
		setup_failed "SKIP_INSTALL=1 but exchange_adapter.so is not installed in $("$EA_PG_CONFIG" --pkglibdir)"
else
	ea_say "== build (PG_CFLAGS='$EA_CI_CFLAGS')"
	in_tree show - make -s -j"$(nproc 2>/dev/null || echo 2)" PG_CONFIG="$EA_PG_CONFIG" PG_CFLAGS="$EA_CI_CFLAGS" ||
		setup_failed "build"
	ea_say "== make install"
	ea_install_lock exclusive # held until we exit: our tests run against our own build
	if ! run make -s -C "$TREE" --no-print-directory PG_CONFIG="$EA_PG_CONFIG" PG_CFLAGS="$EA_CI_CFLAGS" install; then
		if ! ea_is_root; then
			ea_warn "make install failed: it writes to $(ea_install_dirs), which needs root.
  Either run this script as root (sudo scripts/test.sh), or install first and skip it here:
    sudo make install && SKIP_INSTALL=1 scripts/test.sh"
		fi
		setup_failed "make install"
	fi
fi

ea_say "== start redis-server and PostgreSQL (run directory $WORK)"
ea_redis_start "$WORK/redis" || setup_failed "start redis-server"
ea_cluster_init "$WORK" || setup_failed "initdb"
ea_cluster_start "$WORK" "$WORKER_DB" "$EA_REDIS_URL" || setup_failed "start PostgreSQL"
ea_say "redis-server on 127.0.0.1:$EA_REDIS_PORT${EA_REDIS_ACLFILE:+ (ACL from ${EA_REDIS_ACLFILE#"$TREE"/})}, PostgreSQL on 127.0.0.1:$EA_PG_PORT and socket $WORK"
ea_say "  (exchange_adapter.database = '$WORKER_DB', exchange_adapter.redis_url = '$EA_REDIS_URL')"

# The shared redis, for tests that look at what the worker pushed (TAP tests that need to stop
# or break Redis start their own with ExchangeTest::Redis). With an ACL file: REDIS_USER and
# REDIS_PASSWORD_FILE are the adapter's credentials, REDIS_ADMIN_* an all-commands user.
RUN_ENV+=(PGHOST="$WORK" PGPORT="$EA_PG_PORT" PGUSER=postgres
	REDIS_PORT="$EA_REDIS_PORT" REDIS_URL="$EA_REDIS_URL"
	REDIS_USER="${EA_REDIS_USER:-}" REDIS_PASSWORD_FILE="${EA_REDIS_PASSWORD_FILE:-}"
	REDIS_ADMIN_USER="${EA_REDIS_ADMIN_USER:-}" REDIS_ADMIN_PASSWORD_FILE="${EA_REDIS_ADMIN_PASSWORD_FILE:-}")

# ---------------------------------------------------------------------------------------------
# layers

# only_matching — filters lines (test names or paths) by EA_ONLY, matched against the base name.
only_matching() {
	local line base
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		base=${line##*/}
		base=${base%.*}
		if [ -z "${EA_ONLY:-}" ] || [[ $base =~ $EA_ONLY ]]; then printf '%s\n' "$line"; fi
	done
}

# names_of DIR EXT — test names (file names without extension), sorted as the Makefile sorts.
names_of() {
	local f
	for f in "$TREE/$1"/*."$2"; do
		[ -f "$f" ] || continue
		f=${f##*/}
		printf '%s\n' "${f%."$2"}"
	done | LC_ALL=C sort
}

# pg_regress and pg_isolation_regress through the Makefile's installcheck, one suite at a time
# (installcheck runs isolation only when regress passed; emptying the other list on the command
# line runs each on its own).
layer_pgxs() {
	local layer=$1 dir ext own other label log names rc=0 name line
	case $layer in
	regress) dir=test/sql ext=sql own=REGRESS other=ISOLATION label=pg_regress ;;
	isolation) dir=test/specs ext=spec own=ISOLATION other=REGRESS label=isolation ;;
	esac
	ea_say ""
	ea_say "== $label"
	names=$(names_of "$dir" "$ext" | only_matching)
	if [ -z "$names" ]; then
		ea_say "no tests in $dir: nothing to run"
		return 0
	fi
	log=$WORK/logs/$layer.log
	rm -f "$TREE/regression.diffs" "$TREE/regression.out"
	in_tree tee "$log" make --no-print-directory installcheck PG_CONFIG="$EA_PG_CONFIG" "$other=" \
		${EA_ONLY:+"$own=$(printf '%s ' $names)"} || rc=$?
	# pg_regress (PG 15) prints one line per test:
	#   "test NAME   ... ok   12 ms", "     NAME ... FAILED   3 ms" (parallel group),
	#   "... failed (ignored)".
	declare -A status=()
	while IFS= read -r line; do
		if [[ $line =~ ^(test[[:space:]]+|[[:space:]]+)?([^[:space:]]+)[[:space:]]+\.\.\.[[:space:]]+(ok|FAILED|failed\ \(ignored\)) ]]; then
			status[${BASH_REMATCH[2]}]=${BASH_REMATCH[3]}
		fi
	done <"$log"
	local failed_here=0
	while IFS= read -r name; do
		case ${status[$name]:-} in
		ok | "failed (ignored)") pass ;;
		FAILED) fail "$layer/$name"; failed_here=1 ;;
		*)
			if [ ! -f "$TREE/expected/$name.out" ] && [ -f "$TREE/results/$name.out" ]; then
				# pg_regress stops at the first test without a golden file.
				fail "$layer/$name (no expected/$name.out; if $TREE/results/$name.out is right, copy it there)"
			elif [ ! -f "$TREE/expected/$name.out" ]; then
				fail "$layer/$name (no expected/$name.out, and not run)"
			else
				fail "$layer/$name (no result: the runner stopped before it)"
			fi
			failed_here=1
			;;
		esac
	done <<<"$names"
	if [ "$rc" -ne 0 ] && [ "$failed_here" = 0 ]; then
		fail "$layer (runner exited with status $rc)"
		failed_here=1
	fi
	if [ "$failed_here" = 1 ]; then
		if [ -s "$TREE/regression.diffs" ]; then
			ea_say "--- $TREE/regression.diffs (first 200 lines)"
			head -n 200 "$TREE/regression.diffs"
		fi
		show_server_log
	fi
}

layer_pgtap() {
	local files f log t0
	ea_say ""
	ea_say "== pgtap"
	files=$(cd "$TREE" && for f in test/pgtap/*.sql; do [ -f "$f" ] && printf '%s\n' "$f"; done | only_matching)
	if [ -z "$files" ]; then
		ea_say "no tests in test/pgtap: nothing to run"
		return 0
	fi
	if ! in_tree quiet "$WORK/logs/pgtap-setup.log" bash -c \
		'psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS pgtap" -c "CREATE DATABASE pgtap" &&
		 psql -X -q -v ON_ERROR_STOP=1 -d pgtap -c "CREATE EXTENSION pgtap"'; then
		cat "$WORK/logs/pgtap-setup.log"
		while IFS= read -r f; do fail "pgtap/${f#test/pgtap/} (database setup failed)"; done <<<"$files"
		return 0
	fi
	while IFS= read -r f; do
		log=$WORK/logs/pgtap-$(basename "$f" .sql).log
		t0=$(now_ms)
		if in_tree quiet "$log" pg_prove -d pgtap "$f"; then
			pass
			ea_say "ok      $f  $(since_ms "$t0")"
		else
			fail "pgtap/${f#test/pgtap/}"
			ea_say "FAILED  $f"
			ea_say "--- pg_prove output (last 100 lines; all in $log)"
			tail -n 100 "$log"
			show_server_log
		fi
	done <<<"$files"
}

layer_tap() {
	local files f log base nl t0
	ea_say ""
	ea_say "== tap"
	files=$(cd "$TREE" && for f in test/t/*.pl; do [ -f "$f" ] && printf '%s\n' "$f"; done | only_matching)
	if [ -z "$files" ]; then
		ea_say "no tests in test/t: nothing to run"
		return 0
	fi
	# The TAP tests start their own nodes: the shared cluster's PGHOST/PGPORT must not leak in.
	# Their socket directories (File::Temp, which PG 15 keeps after a failure, and sometimes after
	# a pass) go inside the run directory rather than litter $TMPDIR, when the path stays short
	# enough for a Unix socket.
	EXTRA_ENV=(EA_NO_PGENV=1)
	if [ ${#WORK} -le 60 ]; then
		mkdir -p "$WORK/tmp"
		ea_is_root && chown "$RUN_USER" "$WORK/tmp"
		EXTRA_ENV+=(TMPDIR="$WORK/tmp")
	fi
	while IFS= read -r f; do
		base=$(basename "$f" .pl)
		log=$WORK/logs/tap-$base.log
		t0=$(now_ms)
		if in_tree quiet "$log" prove --timer -v "$f"; then
			pass
			ea_say "ok      $f  $(since_ms "$t0")"
		else
			fail "tap/${f#test/t/}"
			ea_say "FAILED  $f"
			ea_say "--- prove output (last 60 lines; all in $log)"
			tail -n 60 "$log"
			if [ -f "$TREE/tmp_check/log/regress_log_$base" ]; then
				ea_say "--- tmp_check/log/regress_log_$base (last 80 lines)"
				tail -n 80 "$TREE/tmp_check/log/regress_log_$base"
			fi
			for nl in "$TREE"/tmp_check/log/"$base"_*.log; do
				[ -f "$nl" ] || continue
				ea_say "--- ${nl#"$TREE"/} (last 30 lines)"
				tail -n 30 "$nl"
			done
		fi
	done <<<"$files"
	EXTRA_ENV=()
}

for layer in "${LAYERS[@]}"; do
	case $layer in
	regress | isolation) layer_pgxs "$layer" ;;
	pgtap) layer_pgtap ;;
	tap) layer_tap ;;
	esac
done

finish
