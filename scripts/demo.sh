#!/usr/bin/env bash
# scripts/demo.sh — see exchange_adapter work, from a fresh Debian 12, in one command (as root).
#
#   scripts/demo.sh           install packages (skipped when present), build with the CI flags,
#                             make install, start a throwaway PostgreSQL 15 and redis-server on
#                             loopback, create database `demo` with the extension, run
#                             scripts/demo.sql, show what Redis received, stop everything
#   scripts/demo.sh --keep    the same, but leave both servers running and print how to connect
#   scripts/demo.sh stop      stop the servers a --keep run left running
#
# The servers run as `postgres`, on free ports, with their data, sockets and logs in
# $EA_DEMO_DIR (default ${TMPDIR:-/tmp}/exchange_adapter-demo); the worker serves `demo`
# (exchange_adapter.database = 'demo') and pushes to the demo redis. A new run first stops the
# servers of a previous --keep run. Server knobs: the top of scripts/lib.sh.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

DEMO=${EA_DEMO_DIR:-${TMPDIR:-/tmp}/exchange_adapter-demo}
DB=demo
KEEP=0
MONITOR_PID=
TRADES_PID=
STARTED=0
DONE=0

usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

stop_demo() {
	[ -d "$DEMO" ] || return 0
	ea_cluster_stop "$DEMO"
	ea_redis_stop "$DEMO/redis"
}

case ${1:-} in
stop)
	if [ ! -d "$DEMO" ]; then
		ea_say "no demo in $DEMO: nothing to stop"
		exit 0
	fi
	stop_demo
	rm -rf "$DEMO"
	ea_say "demo servers stopped, $DEMO removed"
	exit 0
	;;
--keep) KEEP=1 ;;
"") ;;
-h | --help) usage; exit 0 ;;
*) usage >&2; exit 2 ;;
esac

cleanup() {
	local rc=$?
	local pid
	for pid in $MONITOR_PID $TRADES_PID; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	[ "$STARTED" = 1 ] || return 0
	if [ "$DONE" = 1 ] && [ "$KEEP" = 1 ]; then
		return 0
	fi
	stop_demo
	if [ "$DONE" = 1 ]; then
		rm -rf "$DEMO"
	else
		ea_say "demo failed (status $rc); servers stopped; logs kept in $DEMO"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- packages -----------------------------------------------------------------------------------
ea_say "== packages"
if ea_is_root; then
	ea_install_packages
else
	absent=$(ea_missing_packages | tr '\n' ' ')
	[ -z "$absent" ] || ea_die "missing packages: $absent
  run this script as root once (sudo scripts/demo.sh), or install them:
  sudo apt-get update && sudo apt-get install -y ${EA_PACKAGES[*]}"
	ea_say "packages: all ${#EA_PACKAGES[@]} already installed"
fi
ea_check_tools
RUN_USER=$(ea_run_user)

# --- a previous run -----------------------------------------------------------------------------
if [ -d "$DEMO" ]; then
	ea_say "== stopping the previous demo in $DEMO"
	stop_demo
	rm -rf "$DEMO"
fi
mkdir -p "$DEMO"
chmod 755 "$DEMO"
ea_is_root && chown "$RUN_USER" "$DEMO"
STARTED=1

# --- build and install --------------------------------------------------------------------------
# Built in a copy, so the checkout gets no root-owned build output.
ea_say "== build (PG_CFLAGS='$EA_CI_CFLAGS') in $DEMO/tree"
ea_copy_tree "$ROOT" "$DEMO/tree"
ea_is_root && chown -R "$RUN_USER" "$DEMO/tree"
ea_as_user make -C "$DEMO/tree" --no-print-directory -s -j"$(nproc 2>/dev/null || echo 2)" \
	PG_CONFIG="$EA_PG_CONFIG" PG_CFLAGS="$EA_CI_CFLAGS"
ea_say "== make install"
ea_install_lock exclusive # until the extension is created (a test run may be using the install)
if ! make -C "$DEMO/tree" --no-print-directory -s PG_CONFIG="$EA_PG_CONFIG" PG_CFLAGS="$EA_CI_CFLAGS" install; then
	ea_die "make install failed: it writes to $(ea_install_dirs), which needs root (sudo scripts/demo.sh)"
fi

# --- servers ------------------------------------------------------------------------------------
if [ -z "${EA_REDIS_ACLFILE+set}" ] && [ -f "$DEMO/tree/docker/redis/users.acl" ]; then
	EA_REDIS_ACLFILE=$DEMO/tree/docker/redis/users.acl
fi
ea_say "== start redis-server and PostgreSQL 15 (as $RUN_USER, loopback only)"
ea_redis_start "$DEMO/redis" || exit 1
ea_cluster_init "$DEMO" || exit 1
ea_cluster_start "$DEMO" "$DB" "$EA_REDIS_URL" || exit 1
cat >"$DEMO/demo.env" <<EOF
EA_PG_PORT=$EA_PG_PORT
EA_REDIS_PORT=$EA_REDIS_PORT
EOF
ea_say "redis-server 127.0.0.1:$EA_REDIS_PORT${EA_REDIS_ACLFILE:+ (ACL from docker/redis/users.acl)}; PostgreSQL 127.0.0.1:$EA_PG_PORT, socket $DEMO"

PSQL=(ea_as_user "$EA_PG_BINDIR/psql" -X -h "$DEMO" -p "$EA_PG_PORT" -U postgres)
ea_say "== createdb $DB; CREATE EXTENSION exchange_adapter"
"${PSQL[@]}" -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB"
"${PSQL[@]}" -v ON_ERROR_STOP=1 -d "$DB" -c 'CREATE EXTENSION exchange_adapter'
exec 9<&- # the install lock

# --- the demo -----------------------------------------------------------------------------------
# MONITOR shows every command Redis receives, from before demo.sql runs until its pushes are out.
ea_redis_cli MONITOR >"$DEMO/redis-monitor.log" 2>&1 &
MONITOR_PID=$!
for ((i = 0; i < 50; i++)); do
	grep -q '^OK' "$DEMO/redis-monitor.log" 2>/dev/null && break
	sleep 0.1
done
# A subscriber on the trade feed (<prefix>trades:<symbol>, default prefix exchange:), raw output:
# four lines per message (pmessage, pattern, channel, payload).
ea_redis_cli PSUBSCRIBE 'exchange:trades:*' >"$DEMO/redis-trades.log" 2>&1 &
TRADES_PID=$!
for ((i = 0; i < 50; i++)); do
	grep -q '^psubscribe$' "$DEMO/redis-trades.log" 2>/dev/null && break
	sleep 0.1
done

ea_say ""
ea_say "== scripts/demo.sql"
"${PSQL[@]}" -v ON_ERROR_STOP=1 --echo-all -P pager=off -d "$DB" -f "$DEMO/tree/scripts/demo.sql"

# Let the worker deliver: wait until the outbox is empty (when the extension has one), at most 10 s.
ea_say ""
for ((i = 0; i < 100; i++)); do
	left=$("${PSQL[@]}" -At -d "$DB" -c \
		"SELECT CASE WHEN to_regclass('exchange.outbox') IS NULL THEN 0 ELSE (SELECT count(*) FROM exchange.outbox) END" 2>/dev/null || echo 0)
	[ "$left" = 0 ] && break
	sleep 0.1
done
sleep 1
for pid in $MONITOR_PID $TRADES_PID; do
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done
MONITOR_PID=
TRADES_PID=
TRADES_PID=

ea_say "== what Redis received (redis-cli MONITOR)"
if grep -v '^OK$' "$DEMO/redis-monitor.log" | grep -q .; then
	grep -v '^OK$' "$DEMO/redis-monitor.log"
else
	ea_say "(nothing: no command reached Redis during the demo)"
fi
ea_say ""
ea_say "== what a subscriber to exchange:trades:* received (one message per execution, seq per market)"
if grep -q '^pmessage$' "$DEMO/redis-trades.log"; then
	awk '/^pmessage$/ { n = NR } n && NR == n + 2 { ch = $0 } n && NR == n + 3 { print ch "  " $0; n = 0 }' \
		"$DEMO/redis-trades.log"
else
	ea_say "(no trade message)"
fi
[ "${left:-0}" = 0 ] || ea_say "($left outbox rows were still undelivered after 10 s: see $DEMO/postgresql.log)"

DONE=1
ea_say ""
if [ "$KEEP" = 1 ]; then
	ea_say "== servers left running (--keep)"
	ea_say "connect:    psql -h $DEMO -p $EA_PG_PORT -U postgres $DB"
	ea_say "            (as root, or as $RUN_USER: runuser -u $RUN_USER -- psql -h $DEMO -p $EA_PG_PORT $DB)"
	if [ -n "${EA_REDIS_ADMIN_USER:-}" ]; then
		ea_say "redis:      REDISCLI_AUTH=\$(cat $EA_REDIS_ADMIN_PASSWORD_FILE) redis-cli -p $EA_REDIS_PORT --user $EA_REDIS_ADMIN_USER"
	else
		ea_say "redis:      redis-cli -p $EA_REDIS_PORT"
	fi
	ea_say "logs:       $DEMO/postgresql.log  $DEMO/redis/redis.log"
	ea_say "stop:       scripts/demo.sh stop"
else
	ea_say "== servers stopped"
	ea_say "to look around yourself: scripts/demo.sh --keep   (prints the psql command; scripts/demo.sh stop ends it)"
fi
