#!/usr/bin/env bash
# scripts/private_pg.sh DIR — makes DIR a private copy of the installed PostgreSQL 15 (binaries,
# libraries, PGXS, share/extension), for EA_PG_ROOT=DIR scripts/test.sh.
#
# PostgreSQL finds its share and lib directories relative to its binaries, so the copy is a
# complete installation: `make install PG_CONFIG=DIR/usr/lib/postgresql/15/bin/pg_config` writes
# into it, and a test run with EA_PG_ROOT=DIR builds, installs and tests there without touching
# (or waiting for) the system-wide install. Re-running refreshes the copy.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$(mkdir -p "$1" && cd "$1" && pwd)
mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql"
cp -a /usr/lib/postgresql/15 "$dir/usr/lib/postgresql/"
cp -a /usr/share/postgresql/15 "$dir/usr/share/postgresql/"
# headers are only read: a link is enough
mkdir -p "$dir/usr/include"
ln -sfn /usr/include/postgresql "$dir/usr/include/postgresql"
"$dir/usr/lib/postgresql/15/bin/pg_config" --pkglibdir >/dev/null
echo "private PostgreSQL 15 in $dir; use: EA_PG_ROOT=$dir bash scripts/test.sh"
