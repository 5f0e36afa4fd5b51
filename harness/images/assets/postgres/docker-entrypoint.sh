#!/bin/sh
# The part of the official postgres image's entrypoint Stampede relies on:
# initialise PGDATA once (user, password, database), then run the command.
set -eu
if [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	user=${POSTGRES_USER:-postgres}
	db=${POSTGRES_DB:-$user}
	auth=${POSTGRES_HOST_AUTH_METHOD:-}
	pwfile=$(mktemp)
	printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
	if [ -z "$auth" ]; then
		if [ -n "${POSTGRES_PASSWORD:-}" ]; then auth=scram-sha-256; else
			echo "postgres: set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust to allow connections without one" >&2
			exit 1
		fi
	fi
	initdb --username="$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host="$auth" -D "$PGDATA" >/dev/null
	rm -f "$pwfile"
	echo "host all all all $auth" >> "$PGDATA/pg_hba.conf"
	echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
	if [ "$db" != postgres ]; then
		echo "CREATE DATABASE \"$db\"" | postgres --single -D "$PGDATA" -c listen_addresses='' postgres >/dev/null
	fi
	echo "postgres: initialised $PGDATA (user $user, database $db)"
fi
exec "$@"
