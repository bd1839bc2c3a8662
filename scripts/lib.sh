# shellcheck shell=bash
# scripts/lib.sh — helpers shared by scripts/test.sh, scripts/demo.sh and .ci/run.
#
# Sourced, never run. Everything here is bash + coreutils + perl (perl-base is on every Debian
# image; python is not), so it works on a stock Debian 12 before and after the packages below.
#
# Servers started through these helpers are throwaway: one PostgreSQL 15 cluster and one
# redis-server per run, loopback only, on a free port picked at run time (several developers may
# run the tests on one machine at once), sockets and data in the run's own directory, run as the
# unprivileged user (postgres when we are root: initdb refuses root). They are stopped by pid,
# never by name.
#
# Knobs (environment):
#   EA_PG_BINDIR             PostgreSQL 15 binaries        (default /usr/lib/postgresql/15/bin)
#   EA_RUN_USER              who runs servers and tests     (default: postgres when root, else you)
#   EA_REDIS_SERVER/EA_REDIS_CLI  redis binaries            (default: from PATH)
#   EA_REDIS_ACLFILE         Redis ACL file (or template) for the throwaway redis. Default:
#                            docker/redis/users.acl when the tree has it; set it empty for none
#                            (then the default user, no auth). A template is rendered the way
#                            docker/redis/entrypoint.sh does: comment and blank lines dropped, each
#                            `%%name%%` replaced by the SHA-256 of a random secret written to
#                            <redis dir>/secrets/name. An admin user `ea_admin` (all commands, for
#                            the scripts' own redis-cli: MONITOR, checks) is appended.
#   EA_REDIS_USER            user put in exchange_adapter.redis_url (redis://USER@127.0.0.1:PORT).
#                            With an ACL file: default exchange_adapter.
#   EA_REDIS_PASSWORD_FILE   that user's password file; copied into the run directory and named by
#                            exchange_adapter.redis_password_file. With an ACL template: default
#                            the rendered secrets/redis_password.
#   EA_PG_EXTRA_CONF         extra postgresql.conf lines for the throwaway cluster.
#   EA_KEEP_TMP=1            keep the run directory even on success (test.sh).

#   EA_PG_ROOT               a private copy of the PostgreSQL 15 installation (made by
#                            scripts/private_pg.sh DIR): builds install into it and tests run its
#                            binaries, so several work trees on one machine never share an install
#                            (EA_PG_BINDIR, EA_PGXS_TOP and the install lock follow it).

if [ -n "${EA_PG_ROOT:-}" ]; then
	EA_PG_BINDIR=${EA_PG_BINDIR:-$EA_PG_ROOT/usr/lib/postgresql/15/bin}
	EA_PGXS_TOP=${EA_PGXS_TOP:-$EA_PG_ROOT/usr/lib/postgresql/15/lib/pgxs}
	EA_INSTALL_LOCK=${EA_INSTALL_LOCK:-$EA_PG_ROOT/install.lock}
fi
EA_PG_BINDIR=${EA_PG_BINDIR:-/usr/lib/postgresql/15/bin}
EA_PG_CONFIG=${EA_PG_CONFIG:-$EA_PG_BINDIR/pg_config}
EA_PGXS_TOP=${EA_PGXS_TOP:-/usr/lib/postgresql/15/lib/pgxs}
EA_PG_REGRESS=${EA_PG_REGRESS:-$EA_PGXS_TOP/src/test/regress/pg_regress}
EA_PG_ISOLATION_REGRESS=${EA_PG_ISOLATION_REGRESS:-$EA_PGXS_TOP/src/test/isolation/pg_isolation_regress}
EA_PG_PERL5LIB=${EA_PG_PERL5LIB:-$EA_PGXS_TOP/src/test/perl}
EA_REDIS_SERVER=${EA_REDIS_SERVER:-redis-server}
EA_REDIS_CLI=${EA_REDIS_CLI:-redis-cli}

# The flags CI builds with (the Makefile leaves -Werror out of user builds on purpose).
EA_CI_CFLAGS='-Wall -Wextra -Werror -Wno-unused-parameter'

# Debian 12 packages needed to build, run and test. One list, used by .ci/run and demo.sh.
#   build-essential, pkg-config          gcc/make; the Makefile asks pkg-config for hiredis
#   postgresql-15                        server binaries (initdb, pg_ctl, postgres, psql)
#   postgresql-server-dev-15             PGXS, pg_regress, pg_isolation_regress, the TAP perl
#                                        modules; pulls clang-14/llvm-14-dev for the .bc files
#   libhiredis-dev                       hiredis 0.14 headers and library
#   redis-server (+ redis-tools)         the Redis the adapter pushes to, and redis-cli
#   postgresql-15-pgtap                  the pgtap extension
#   libtap-parser-sourcehandler-pgtap-perl  pg_prove (pulls perl: prove, Test::More)
#   libipc-run-perl                      IPC::Run, required by PostgreSQL::Test::Cluster
#   docker-compose (+ python3-yaml)      validates docker/compose.yml without an engine (051)
EA_PACKAGES=(
	build-essential pkg-config
	postgresql-15 postgresql-server-dev-15
	libhiredis-dev
	redis-server redis-tools
	postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
	libipc-run-perl
	docker-compose
)

ea_say() { printf '%s\n' "$*"; }
ea_warn() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
ea_die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }
ea_is_root() { [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------------------------------------
# packages

# Prints the packages of EA_PACKAGES that are not installed, one per line.
ea_missing_packages() {
	local p
	for p in "${EA_PACKAGES[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
			printf '%s\n' "$p"
		fi
	done
}

# Installs EA_PACKAGES (root only). Does nothing, and touches no mirror, when all are present
# unless EA_FORCE_APT=1.
ea_install_packages() {
	local missing
	missing=$(ea_missing_packages)
	if [ -z "$missing" ] && [ "${EA_FORCE_APT:-0}" != 1 ]; then
		ea_say "packages: all ${#EA_PACKAGES[@]} already installed"
		return 0
	fi
	ea_is_root || ea_die "missing packages: $(echo "$missing" | tr '\n' ' '); install them as root:
  apt-get update && apt-get install -y ${EA_PACKAGES[*]}"
	ea_say "packages: installing $(echo "$missing" | tr '\n' ' ')"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${EA_PACKAGES[@]}" </dev/null
	ea_check_tools
}

# Fails with a clear message unless everything the scripts call is present.
ea_check_tools() {
	local f missing=()
	for f in "$EA_PG_BINDIR/initdb" "$EA_PG_BINDIR/pg_ctl" "$EA_PG_BINDIR/psql" "$EA_PG_CONFIG" \
		"$EA_PG_REGRESS" "$EA_PG_ISOLATION_REGRESS" "$EA_PG_PERL5LIB/PostgreSQL/Test/Cluster.pm"; do
		[ -e "$f" ] || missing+=("$f")
	done
	for f in "$EA_REDIS_SERVER" "$EA_REDIS_CLI" pg_prove prove perl make; do
		command -v "$f" >/dev/null 2>&1 || missing+=("$f")
	done
	perl -MTest::More -e1 2>/dev/null || missing+=("perl module Test::More")
	perl -MIPC::Run -e1 2>/dev/null || missing+=("perl module IPC::Run")
	if [ ${#missing[@]} -gt 0 ]; then
		ea_die "not installed: ${missing[*]}
  install the packages with: sudo bash -c '. scripts/lib.sh; ea_install_packages'
  (or run scripts/demo.sh once, which does that)"
	fi
}

# ---------------------------------------------------------------------------------------------
# users and processes

# The unprivileged user that owns the run directory and runs servers and tests.
ea_run_user() {
	if [ -n "${EA_RUN_USER:-}" ]; then
		printf '%s\n' "$EA_RUN_USER"
	elif ea_is_root; then
		printf 'postgres\n'
	else
		id -un
	fi
}

# ea_as_user CMD ARGS... — runs CMD as the run user (runuser when root, directly otherwise).
# The environment is not forwarded through runuser: pass what is needed with `env VAR=...`.
# fd 9 (the install lock) is closed for CMD, so servers it starts never hold the lock.
ea_as_user() {
	local u
	u=$(ea_run_user)
	if ea_is_root && [ "$u" != root ]; then
		runuser -u "$u" -- "$@" 9<&-
	else
		"$@" 9<&-
	fi
}

# Is PID a live process whose name is NAME (guards against a reused pid)?
ea_pid_is() {
	local pid=$1 name=$2 comm
	[ -n "$pid" ] && [ "$pid" -gt 0 ] 2>/dev/null || return 1
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
	[ "$comm" = "$name" ]
}

# ea_kill_wait PID NAME SIGNAL [SECONDS] — signal PID (if it still is NAME), wait for it to go,
# SIGKILL after SECONDS (default 10).
ea_kill_wait() {
	local pid=$1 name=$2 sig=$3 secs=${4:-10} i
	ea_pid_is "$pid" "$name" || return 0
	kill "-$sig" "$pid" 2>/dev/null || return 0
	for ((i = 0; i < secs * 10; i++)); do
		ea_pid_is "$pid" "$name" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# ports

# Prints a TCP port free on 127.0.0.1. Random, in 61000-65535: above Linux's ephemeral range
# (32768-60999, so an outgoing connection never holds it) and apart from the 10200-32767 range
# PostgreSQL::Test::Cluster draws from. Callers still retry when the server fails to bind (another
# run may take the port between this check and the bind).
ea_free_port() {
	perl -MIO::Socket::INET -e '
		for (1 .. 500) {
			my $p = 61000 + int(rand(4536));
			my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $p,
				Proto => "tcp", Listen => 1, ReuseAddr => 1) or next;
			close $s;
			print "$p\n";
			exit 0;
		}
		exit 1;' || ea_die "no free TCP port found on 127.0.0.1"
}

# ---------------------------------------------------------------------------------------------
# tree copy and build

# ea_copy_tree SRC DEST — copies the source tree (tracked and untracked-but-not-ignored files,
# so a new test file is picked up before it is committed; never build output).
ea_copy_tree() {
	local src=$1 dest=$2
	mkdir -p "$dest"
	if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		(
			cd "$src" || exit 1
			git ls-files -z --cached --others --exclude-standard |
				while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
				tar --null -T - -cf -
		) | tar -C "$dest" -xf -
	else
		tar -C "$src" -cf - --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
			--exclude=./results --exclude=./output_iso --exclude='./tmp_check*' --exclude=./log \
			--exclude='regression.*' . | tar -C "$dest" -xf -
	fi
}

# ea_make DIR ARGS... — make in DIR with PG15's pg_config and the CI warning flags.
ea_make() {
	local dir=$1
	shift
	make -C "$dir" --no-print-directory PG_CONFIG="$EA_PG_CONFIG" PG_CFLAGS="$EA_CI_CFLAGS" "$@"
}

# ea_install_lock exclusive|shared — takes (and holds until the script exits, on fd 9) the
# machine-wide lock on the installed extension. PostgreSQL 15 loads extensions only from its own
# directories, so every run on a machine shares one installed copy: a run that installs holds it
# exclusively until its tests are over (so they test its own build, not another run's), a run
# with SKIP_INSTALL=1 holds it shared. Runs wait for each other, saying so.
ea_install_lock() {
	local mode=$1 lock=${EA_INSTALL_LOCK:-${TMPDIR:-/tmp}/exchange_adapter-install.lock} flag=-x
	[ "$mode" = shared ] && flag=-s
	if [ -e "$lock" ]; then
		exec 9<"$lock" # read-only: works for every user whoever created it
	else
		(umask 000 && : >>"$lock") 2>/dev/null
		exec 9<"$lock" || { ea_warn "cannot open $lock; running without the install lock"; return 0; }
	fi
	if ! flock -n "$flag" 9; then
		ea_say "waiting for another run using the installed extension to finish (lock $lock)..."
		flock "$flag" 9
	fi
}

# Where the extension is installed (to tell a non-root user what make install needs).
ea_install_dirs() {
	printf '%s %s/extension\n' "$("$EA_PG_CONFIG" --pkglibdir)" "$("$EA_PG_CONFIG" --sharedir)"
}

# ---------------------------------------------------------------------------------------------
# throwaway PostgreSQL cluster
#
# ea_cluster_init DIR  — DIR/pgdata, sockets in DIR, log DIR/postgresql.log. DIR is owned by the
#                        run user. Sets EA_PG_DATA, EA_PG_SOCKDIR, EA_PG_LOG.
# ea_cluster_start DIR WORKER_DB REDIS_URL — picks a free port (retries on a lost race); sets
#                        EA_PG_PORT. Extra conf from EA_PG_EXTRA_CONF.
# ea_cluster_stop DIR  — immediate stop; quiet if not running.
#
# Authentication: trust on the Unix socket only (its directory is 0700, so only the run user and
# root reach it); TCP on 127.0.0.1 asks for a password no role has. Nothing uses TCP.

ea_cluster_init() {
	local dir=$1
	EA_PG_DATA=$dir/pgdata EA_PG_SOCKDIR=$dir EA_PG_LOG=$dir/postgresql.log
	ea_as_user "$EA_PG_BINDIR/initdb" -D "$EA_PG_DATA" -U postgres --no-locale -E UTF8 \
		--auth-local=trust --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; return 1; }
	ea_as_user sh -c "printf '%s\n' \"include_if_exists = 'exchange_adapter_run.conf'\" >> '$EA_PG_DATA/postgresql.conf'"
}

ea_cluster_start() {
	local dir=$1 worker_db=$2 redis_url=$3 try port conf pwline=
	EA_PG_DATA=$dir/pgdata EA_PG_SOCKDIR=$dir EA_PG_LOG=$dir/postgresql.log
	if [ -n "${EA_REDIS_PASSWORD_FILE:-}" ]; then
		cp "$EA_REDIS_PASSWORD_FILE" "$dir/redis.password"
		chmod 600 "$dir/redis.password"
		ea_is_root && chown "$(ea_run_user)" "$dir/redis.password"
		pwline="exchange_adapter.redis_password_file = '$dir/redis.password'"
	fi
	for try in 1 2 3 4 5; do
		port=$(ea_free_port)
		conf="# written by scripts/lib.sh for this run
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
unix_socket_permissions = 0700
shared_preload_libraries = 'exchange_adapter'
exchange_adapter.database = '$worker_db'
exchange_adapter.redis_url = '$redis_url'
$pwline
fsync = off
synchronous_commit = off
full_page_writes = off
max_prepared_transactions = 10
lc_messages = 'C'
log_line_prefix = '%m [%p] %q%a@%d '
log_min_messages = warning
${EA_PG_EXTRA_CONF:-}"
		printf '%s\n' "$conf" | ea_as_user sh -c "cat > '$EA_PG_DATA/exchange_adapter_run.conf'"
		EA_PG_STARTING=1
		if ea_as_user "$EA_PG_BINDIR/pg_ctl" -D "$EA_PG_DATA" -l "$EA_PG_LOG" -w -t 60 start >"$dir/pg_ctl.log" 2>&1; then
			EA_PG_STARTING=0
			EA_PG_PORT=$port
			return 0
		fi
		EA_PG_STARTING=0
		if grep -q 'could not bind\|Address already in use' "$EA_PG_LOG" 2>/dev/null; then
			ea_warn "port $port taken meanwhile; retrying"
			continue
		fi
		break
	done
	cat "$dir/pg_ctl.log" >&2
	tail -n 30 "$EA_PG_LOG" >&2 2>/dev/null
	return 1
}

ea_cluster_stop() {
	local dir=$1 data=$1/pgdata i pid
	[ -d "$data" ] || return 0
	if [ "${EA_PG_STARTING:-0}" = 1 ]; then
		# Interrupted inside pg_ctl start: the postmaster may not have written its pid yet.
		for ((i = 0; i < 50; i++)); do [ -f "$data/postmaster.pid" ] && break; sleep 0.1; done
	fi
	[ -f "$data/postmaster.pid" ] || return 0
	pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null)
	ea_as_user "$EA_PG_BINDIR/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
		ea_kill_wait "$pid" postgres QUIT 10
}

# ---------------------------------------------------------------------------------------------
# throwaway redis-server
#
# ea_redis_start DIR — redis in DIR (conf, pid, log), loopback, protected mode, no persistence,
# free port (retries on a lost race); ACL file from EA_REDIS_ACLFILE. Sets EA_REDIS_PORT,
# EA_REDIS_URL. ea_redis_stop DIR stops it by the pid in DIR/redis.pid.

ea_redis_start() {
	local dir=$1 try port pid i acl=
	mkdir -p "$dir"
	ea_is_root && chown "$(ea_run_user)" "$dir"
	if [ -n "${EA_REDIS_ACLFILE:-}" ]; then
		ea_redis_render_acl "$EA_REDIS_ACLFILE" "$dir" || return 1
		acl="aclfile $dir/users.acl"
	fi
	for try in 1 2 3 4 5; do
		port=$(ea_free_port)
		rm -f "$dir/redis.pid" "$dir/redis.log"
		ea_as_user sh -c "cat > '$dir/redis.conf'" <<-EOF
			# written by scripts/lib.sh for this run
			port $port
			bind 127.0.0.1
			protected-mode yes
			save ""
			appendonly no
			daemonize yes
			pidfile $dir/redis.pid
			logfile $dir/redis.log
			dir $dir
			$acl
		EOF
		EA_REDIS_STARTING=1
		ea_as_user "$EA_REDIS_SERVER" "$dir/redis.conf" >/dev/null 2>&1 || true
		# Ready when our own pid is alive and our own log says so (a PING could reach another
		# server that holds the port, and needs credentials under an ACL file).
		for ((i = 0; i < 100; i++)); do
			pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
			if grep -q 'Ready to accept connections' "$dir/redis.log" 2>/dev/null && ea_pid_is "$pid" redis-server; then
				EA_REDIS_STARTING=0
				EA_REDIS_PORT=$port
				EA_REDIS_DIR=$dir
				EA_REDIS_URL="redis://${EA_REDIS_USER:+$EA_REDIS_USER@}127.0.0.1:$port"
				return 0
			fi
			if grep -q 'Could not create server TCP listening socket\|Failed listening\|Aborting' "$dir/redis.log" 2>/dev/null; then
				break
			fi
			sleep 0.1
		done
		EA_REDIS_STARTING=0
		ea_redis_stop "$dir"
		if grep -q 'Address already in use' "$dir/redis.log" 2>/dev/null; then
			ea_warn "redis port $port taken meanwhile; retrying"
			continue
		fi
		break
	done
	ea_warn "redis-server did not start; its log:"
	tail -n 20 "$dir/redis.log" >&2 2>/dev/null
	return 1
}

# ea_redis_render_acl FILE DIR — writes DIR/users.acl from the ACL file or template FILE (see
# EA_REDIS_ACLFILE above), secrets in DIR/secrets. Sets EA_REDIS_USER, EA_REDIS_PASSWORD_FILE
# (unless set), EA_REDIS_ADMIN_USER and EA_REDIS_ADMIN_PASSWORD_FILE.
ea_redis_render_acl() {
	local src=$1 dir=$2 out=$2/users.acl name hash
	[ -r "$src" ] || { ea_warn "EA_REDIS_ACLFILE=$src is not readable"; return 1; }
	mkdir -p "$dir/secrets"
	chmod 700 "$dir/secrets"
	grep -v -E '^[[:space:]]*(#|$)' "$src" >"$out" || { ea_warn "$src has no user line"; return 1; }
	_ea_secret() { # NAME -> prints the SHA-256 of a new random secret stored in secrets/NAME
		od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$dir/secrets/$1"
		chmod 600 "$dir/secrets/$1"
		sha256sum <"$dir/secrets/$1" | cut -d' ' -f1
	}
	for name in $(grep -o -E '%%[A-Za-z0-9_.-]+%%' "$out" | sort -u | sed 's/%//g'); do
		hash=$(_ea_secret "$name")
		sed -i "s/%%$name%%/$hash/g" "$out"
	done
	hash=$(_ea_secret ea_admin)
	printf 'user ea_admin on #%s ~* &* +@all\n' "$hash" >>"$out"
	chmod 600 "$out"
	ea_is_root && chown -R "$(ea_run_user)" "$out" "$dir/secrets"
	EA_REDIS_USER=${EA_REDIS_USER:-exchange_adapter}
	if [ -z "${EA_REDIS_PASSWORD_FILE:-}" ] && [ -f "$dir/secrets/redis_password" ]; then
		EA_REDIS_PASSWORD_FILE=$dir/secrets/redis_password
	fi
	EA_REDIS_ADMIN_USER=ea_admin
	EA_REDIS_ADMIN_PASSWORD_FILE=$dir/secrets/ea_admin
}

# ea_redis_cli ARGS... — redis-cli against the throwaway redis, as ea_admin when there is an
# ACL (password through REDISCLI_AUTH, never the command line).
ea_redis_cli() {
	if [ -n "${EA_REDIS_ADMIN_USER:-}" ]; then
		REDISCLI_AUTH=$(cat "$EA_REDIS_ADMIN_PASSWORD_FILE") \
			"$EA_REDIS_CLI" -h 127.0.0.1 -p "$EA_REDIS_PORT" --user "$EA_REDIS_ADMIN_USER" "$@"
	else
		"$EA_REDIS_CLI" -h 127.0.0.1 -p "$EA_REDIS_PORT" "$@"
	fi
}

ea_redis_stop() {
	local dir=$1 pid i
	if [ "${EA_REDIS_STARTING:-0}" = 1 ]; then
		for ((i = 0; i < 20; i++)); do [ -s "$dir/redis.pid" ] && break; sleep 0.1; done
	fi
	pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
	ea_kill_wait "$pid" redis-server TERM 10
}

# ea_sweep_servers DIR — stops every postmaster and redis-server whose pid file lies under DIR
# (clusters and redis started by TAP tests in DIR's tmp_check, left behind by an interrupted
# test). Each pid is checked to still be postgres/redis-server before it is signalled.
ea_sweep_servers() {
	local dir=$1 f pid
	[ -d "$dir" ] || return 0
	while IFS= read -r -d '' f; do
		pid=$(head -n 1 "$f" 2>/dev/null || true)
		ea_kill_wait "$pid" postgres QUIT 10
	done < <(find "$dir" -name postmaster.pid -print0 2>/dev/null)
	while IFS= read -r -d '' f; do
		pid=$(cat "$f" 2>/dev/null || true)
		ea_kill_wait "$pid" redis-server TERM 5
	done < <(find "$dir" -name '*.pid' ! -name postmaster.pid -print0 2>/dev/null)
}
