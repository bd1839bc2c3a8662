#!/bin/sh
# Renders the Redis ACL template, then runs the given command (normally the
# official image's docker-entrypoint.sh redis-server ...).  With no command it
# only renders: the CI test uses it that way against a local redis-server.
#
# The template (users.acl) names secrets, never holds them: a placeholder
# `%%name%%` becomes the SHA-256 of the file $REDIS_SECRETS_DIR/name (trailing
# newlines ignored), so the rendered file holds hashes only (`#<sha256>`).
# Redis ACL files have no comment syntax, so comment and blank lines of the
# template are dropped here.
#
# Environment:
#   REDIS_ACL_TEMPLATE  template to render   (/usr/local/etc/redis/users.acl)
#   REDIS_ACL_FILE      rendered file        (/run/redis/users.acl; redis.conf's aclfile)
#   REDIS_SECRETS_DIR   secret files         (/run/secrets)
set -eu

template=${REDIS_ACL_TEMPLATE:-/usr/local/etc/redis/users.acl}
out=${REDIS_ACL_FILE:-/run/redis/users.acl}
secrets=${REDIS_SECRETS_DIR:-/run/secrets}

die() { echo "redis ACL: $*" >&2; exit 1; }

[ -r "$template" ] || die "cannot read ACL template $template"

dir=$(dirname "$out")
made_dir=
if [ ! -d "$dir" ]; then
	mkdir -p "$dir"    # with the caller's umask: parents stay traversable
	made_dir=1
fi
umask 077
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT

# Comment and blank lines out; everything else kept as is.
grep -v -E '^[[:space:]]*(#|$)' "$template" > "$tmp" || die "$template holds no user line"

for name in $(grep -o -E '%%[A-Za-z0-9_.-]+%%' "$tmp" | sort -u | sed 's/%//g'); do
	file="$secrets/$name"
	[ -r "$file" ] || die "secret file $file (for %%$name%% in $template) is missing or unreadable"
	# $(cat) drops trailing newlines, as the worker does when it reads the file.
	password=$(cat "$file")
	[ -n "$password" ] || die "secret file $file is empty"
	hash=$(printf '%s' "$password" | sha256sum | cut -d' ' -f1)
	sed -i "s/%%$name%%/$hash/g" "$tmp"
done

if grep -q -E '(^|[[:space:]])(>|nopass([[:space:]]|$))' "$tmp"; then
	die "$template has a cleartext password (>...) or nopass rule; use #%%secret_name%% placeholders"
fi

# In the container this runs as root and redis-server as user redis: the
# file, and the directory when we made it, go to it.
if [ "$(id -u)" = 0 ] && id redis >/dev/null 2>&1; then
	chown redis:redis "$tmp"
	if [ -n "$made_dir" ]; then chown redis:redis "$dir"; fi
fi
chmod 600 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "redis ACL: rendered $template -> $out ($(wc -l < "$out") users)" >&2

[ $# -eq 0 ] || exec "$@"
