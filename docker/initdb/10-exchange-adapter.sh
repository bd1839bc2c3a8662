#!/usr/bin/env bash
# Sets up exchange_adapter in one database: the application login role, the
# extension, its grants and exchange_adapter.database.  Idempotent: run it
# again (after an image upgrade, say) and an initialised database is left as
# it was.  It never grants CREATE or default privileges on schema exchange.
#
# The postgres image runs it once, from /docker-entrypoint-initdb.d, on a new
# volume.  It runs the same way natively (the CI test does):
#
#   POSTGRES_USER=postgres POSTGRES_DB=exchange PGHOST=/var/run/postgresql \
#   EXCHANGE_ADAPTER_PASSWORD_FILE=/etc/exchange/exchange_adapter_password \
#       docker/initdb/10-exchange-adapter.sh
#
# Environment (libpq's PGHOST, PGPORT, ... choose the server):
#   POSTGRES_USER                   superuser to connect as           (postgres)
#   POSTGRES_DB                     database to set up                ($POSTGRES_USER)
#   EXCHANGE_ADAPTER_ROLE           application login role            (exchange_adapter)
#   EXCHANGE_ADAPTER_PROFILE        grant_adapter profile: trader, engine, operator, all (all)
#   EXCHANGE_ADAPTER_PASSWORD_FILE  file holding the role's password; unset: the
#                                   password is left alone (a new role gets none)
#   EXCHANGE_ADAPTER_DATABASE       value for exchange_adapter.database, written
#                                   with ALTER SYSTEM; empty: leave it alone ($POSTGRES_DB)
#   EXCHANGE_ADAPTER_INIT_SQL       the SQL this runs (exchange_adapter_init.sql
#                                   beside this script, else /usr/local/share/exchange_adapter/)
#
# If schema exchange already holds tables that are not the extension's (the
# legacy Go adapter's), it stops, installs nothing and names the migration
# section of the README.
set -Eeuo pipefail

say() { printf 'exchange_adapter init: %s\n' "$*" >&2; }

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
role=${EXCHANGE_ADAPTER_ROLE:-exchange_adapter}
profile=${EXCHANGE_ADAPTER_PROFILE:-all}
database_setting=${EXCHANGE_ADAPTER_DATABASE-$POSTGRES_DB}
password_file=${EXCHANGE_ADAPTER_PASSWORD_FILE:-}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sql=${EXCHANGE_ADAPTER_INIT_SQL:-}
if [ -z "$sql" ]; then
	for candidate in "$here/exchange_adapter_init.sql" /usr/local/share/exchange_adapter/exchange_adapter_init.sql; do
		if [ -r "$candidate" ]; then sql=$candidate; break; fi
	done
fi
[ -n "$sql" ] && [ -r "$sql" ] || { say "cannot find exchange_adapter_init.sql (set EXCHANGE_ADAPTER_INIT_SQL)"; exit 1; }

case "$profile" in
	trader|engine|operator|all) ;;
	*) say "EXCHANGE_ADAPTER_PROFILE must be trader, engine, operator or all, not '$profile'"; exit 1 ;;
esac

set_password=off
if [ -n "$password_file" ]; then
	[ -r "$password_file" ] || { say "cannot read EXCHANGE_ADAPTER_PASSWORD_FILE=$password_file"; exit 1; }
	[ -n "$(cat "$password_file")" ] || { say "$password_file is empty"; exit 1; }
	set_password=on
else
	say "EXCHANGE_ADAPTER_PASSWORD_FILE is not set: the password of role $role is left alone"
fi

# The password never appears on a command line: psql reads the file itself.
status=0
psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password \
	--username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	--set role_name="$role" \
	--set profile="$profile" \
	--set database_setting="$database_setting" \
	--set set_password="$set_password" \
	--set password_file="$password_file" \
	--file "$sql" || status=$?

if [ "$status" -ne 0 ]; then
	say "FAILED in database \"$POSTGRES_DB\" (psql exit $status); see the ERROR above."
	say "The role, the extension and the grants are made in one transaction: a refusal there leaves the database as it was."
	say "Legacy tables in schema exchange: README.md, \"Migrating from the legacy tables\" (docker/README.md)."
	exit "$status"
fi
say "done: role $role (profile $profile) in database \"$POSTGRES_DB\""
