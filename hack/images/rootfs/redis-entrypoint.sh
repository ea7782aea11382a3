#!/bin/sh
# Entrypoint of shopstack.local/redis (hack/images), with the contract of the
# Docker Official redis image:
#
#  * A first argument that is an option ("-...") or a configuration file
#    ("....conf") is for redis-server: "redis-server" is put in front.
#  * Started as root (the image's user is 999, redis), redis-server and
#    redis-sentinel get the working directory (/data) handed to redis and
#    run as redis through setpriv.
#  * redis-server starts with umask 0077 unless the caller changed the
#    default 0022, so that its dumps and logs are private.
#  * Then the command is exec'd.
set -eu

case "${1:-}" in
-* | *.conf) set -- redis-server "$@" ;;
esac

case "${1:-}" in
redis-server | redis-sentinel)
	if [ "$(id -u)" = 0 ]; then
		find . \! -user redis -exec chown redis:redis '{}' +
		exec setpriv --reuid=redis --regid=redis --init-groups -- "$0" "$@"
	fi
	;;
esac

if [ "${1:-}" = redis-server ] && [ "$(umask)" = 0022 ]; then
	umask 0077
fi

exec "$@"
