#!/bin/sh
# Creates the secret files docker/compose.yml expects, each with a random
# password, leaving any that already exist alone.  Run it once:
#   sh docker/secrets/generate.sh
#
# The files are readable by everyone (0644) because Compose bind-mounts them
# into the containers unchanged, where postgres (uid 999) and redis must read
# them; this directory is 0700, so on the host only its owner gets in.
# The *.example files are placeholders and are never used.
set -eu
cd "$(dirname "$0")"
chmod 700 .
for name in postgres_password exchange_adapter_password redis_password redis_healthcheck_password; do
	if [ -s "$name" ]; then
		echo "keeping   docker/secrets/$name"
		continue
	fi
	# 32 random bytes as 43 URL-safe characters: no quoting issue anywhere.
	head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' > "$name.tmp"
	echo >> "$name.tmp"
	chmod 644 "$name.tmp"
	mv "$name.tmp" "$name"
	echo "generated docker/secrets/$name"
done
