#!/bin/bash
# Entrypoint of shopstack.local/postgres (hack/images). It keeps the contract
# of the Docker Official postgres image, so that the same pod spec runs either:
#
#  * Arguments that start with "-" are options of postgres: "postgres" is
#    put in front of them.
#  * For "postgres ...", when $PGDATA holds no PG_VERSION yet, the cluster is
#    created first:
#      - initdb as the current user, superuser POSTGRES_USER (default
#        postgres), password from POSTGRES_PASSWORD or from the file named by
#        POSTGRES_PASSWORD_FILE, extra options from POSTGRES_INITDB_ARGS
#        (split on blanks; no quoting) and POSTGRES_INITDB_WALDIR;
#      - pg_hba.conf in $PGDATA gets "host all all all" with
#        POSTGRES_HOST_AUTH_METHOD (default scram-sha-256);
#      - a temporary server is started with the given options but reachable
#        on the Unix socket only (port $PGPORT, default 5432), so that
#        settings such as hba_file or ssl apply to it too;
#      - POSTGRES_DB (default: POSTGRES_USER) is created unless it is
#        "postgres";
#      - /docker-entrypoint-initdb.d/* run in name order: *.sh are executed
#        when executable and sourced otherwise, *.sql and *.sql.gz are fed
#        to psql against POSTGRES_DB; anything else is ignored;
#      - the temporary server is stopped (fast).
#  * Finally the command is exec'd, so it becomes the container's main process.
#
# The image's user is 999 (postgres). Started as root, the script prepares
# $PGDATA and /var/run/postgresql and runs itself again as postgres through
# setpriv. Any other user must have an /etc/passwd entry: initdb, and peer
# authentication on the socket, look it up.
set -Eeuo pipefail

say() { printf '%s entrypoint: %s\n' "$(date -u '+%F %T UTC')" "$*" >&2; }
fail() { say "error: $*"; exit 1; }

# from_file NAME: NAME_FILE, when set, names a file holding NAME's value.
from_file() {
	local name=$1 file_name="$1_FILE"
	local value="${!name:-}" file="${!file_name:-}"
	if [ -n "$value" ] && [ -n "$file" ]; then
		fail "both $name and $file_name are set; use one"
	fi
	if [ -n "$file" ]; then
		value="$(<"$file")"
	fi
	export "$name=$value"
	unset "$file_name"
}

# quote ARG...: each argument in single quotes, for pg_ctl -o (which hands
# the options to /bin/sh).
quote() {
	local arg rest out=""
	for arg in "$@"; do
		out+="'"
		rest=$arg
		while [[ $rest == *"'"* ]]; do
			out+="${rest%%"'"*}'\\''"
			rest=${rest#*"'"}
		done
		out+="$rest' "
	done
	printf '%s' "$out"
}

# creates_cluster ARG...: false for the invocations that only print
# something (help, version, a setting's value).
creates_cluster() {
	local arg
	for arg in "$@"; do
		case $arg in
		--help | -'?' | --version | -V | --describe-config | -C | -C*) return 1 ;;
		esac
	done
}

run_sql() {
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

initialise() {
	# Every argument after "postgres" also applies to the temporary server.
	local server_opts=("${@:2}")

	from_file POSTGRES_PASSWORD
	export POSTGRES_USER="${POSTGRES_USER:-postgres}"
	export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
	local host_auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$host_auth" != trust ]; then
		fail "$PGDATA holds no database and no superuser password is given: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (or POSTGRES_HOST_AUTH_METHOD=trust to go without one)"
	fi
	getent passwd "$(id -u)" >/dev/null ||
		fail "user $(id -u) has no /etc/passwd entry; run as 999 (postgres)"

	mkdir -p "$PGDATA"
	chmod 700 "$PGDATA" 2>/dev/null || say "warning: could not make $PGDATA private"

	local initdb_args=()
	read -r -a initdb_args <<<"${POSTGRES_INITDB_ARGS:-}"
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		initdb_args+=(--waldir "$POSTGRES_INITDB_WALDIR")
	fi
	say "creating a cluster in $PGDATA for superuser $POSTGRES_USER"
	if [ -n "$POSTGRES_PASSWORD" ]; then
		initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") "${initdb_args[@]}"
	else
		initdb --username="$POSTGRES_USER" "${initdb_args[@]}"
	fi
	printf '\n# Added by the image entrypoint.\nhost all all all %s\n' "$host_auth" >>"$PGDATA/pg_hba.conf"

	# The temporary server: the caller's options, then no TCP listener and
	# a fixed port (last wins).
	local had_pgport=${PGPORT+yes}
	export PGPORT="${PGPORT:-5432}"
	export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
	say "starting a temporary server on the Unix socket only"
	pg_ctl -D "$PGDATA" -w -o "$(quote "${server_opts[@]}" -c listen_addresses= -p "$PGPORT")" start

	if [ "$POSTGRES_DB" != postgres ]; then
		say "creating database $POSTGRES_DB"
		run_sql --dbname postgres --set db="$POSTGRES_DB" <<-'SQL'
			CREATE DATABASE :"db";
		SQL
	fi

	local f
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case $f in
		*.sh)
			if [ -x "$f" ]; then
				say "running $f"
				"$f"
			else
				say "sourcing $f"
				# shellcheck disable=SC1090
				. "$f"
			fi
			;;
		*.sql)
			say "running $f"
			run_sql --dbname "$POSTGRES_DB" -f "$f"
			;;
		*.sql.gz)
			say "running $f"
			gzip -dc "$f" | run_sql --dbname "$POSTGRES_DB"
			;;
		*) say "ignoring $f" ;;
		esac
	done

	say "stopping the temporary server"
	pg_ctl -D "$PGDATA" -m fast -w stop
	unset PGPASSWORD
	if [ -z "$had_pgport" ]; then unset PGPORT; fi
	say "cluster ready"
}

case "${1:-}" in
-*) set -- postgres "$@" ;;
esac

if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ]; then
	say "running as root: preparing $PGDATA, then continuing as postgres"
	mkdir -p "$PGDATA" /var/run/postgresql
	find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups -- "${BASH_SOURCE[0]}" "$@"
fi

if [ "${1:-}" = postgres ] && creates_cluster "$@" && [ ! -s "$PGDATA/PG_VERSION" ]; then
	initialise "$@"
fi

exec "$@"
