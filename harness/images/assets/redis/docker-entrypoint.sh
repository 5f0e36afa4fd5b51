#!/bin/sh
# `redis-server [args]`: run it with protected mode off unless the
# arguments say otherwise (a first argument ending in .conf stays first).
set -eu
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
	shift
	case " $* " in
	*" --protected-mode "*) ;;
	*) set -- "$@" --protected-mode no ;;
	esac
	exec /usr/bin/redis-server "$@"
fi
exec "$@"
