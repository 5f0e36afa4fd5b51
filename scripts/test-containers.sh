#!/usr/bin/env bash
# make test-containers: the stampedetest module's tests against the platform in
# containers (build tag "containers"). Needs the images of `make images` and a
# Docker API: DOCKER_HOST as given, or else Podman's, started here for the run
# on a socket of its own and stopped after it.
set -euo pipefail
cd "$(dirname "$0")/.."

export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
# A skip would hide that nothing ran: here a missing engine fails.
export STAMPEDE_REQUIRE_CONTAINERS=1

service_pid=""
cleanup() {
	if [ -n "$service_pid" ]; then
		kill "$service_pid" 2>/dev/null || true
		wait "$service_pid" 2>/dev/null || true
	fi
	[ -n "${sock_dir:-}" ] && rm -rf "$sock_dir"
}
trap cleanup EXIT

if [ -z "${DOCKER_HOST:-}" ]; then
	if ! command -v podman >/dev/null; then
		echo "test-containers: no container engine: DOCKER_HOST is unset and podman is not installed" >&2
		echo "  install it (apt-get install -y podman runc) or point DOCKER_HOST at a Docker daemon" >&2
		exit 1
	fi
	sock_dir=$(mktemp -d)
	podman system service --time=0 "unix://$sock_dir/podman.sock" &
	service_pid=$!
	for _ in $(seq 1 50); do
		[ -S "$sock_dir/podman.sock" ] && break
		sleep 0.1
	done
	[ -S "$sock_dir/podman.sock" ] || { echo "test-containers: podman system service did not open $sock_dir/podman.sock" >&2; exit 1; }
	export DOCKER_HOST="unix://$sock_dir/podman.sock"
	# Ryuk's image is in no registry reachable here; Start's t.Cleanup removes
	# every container it made.
	export TESTCONTAINERS_RYUK_DISABLED=true
fi
echo "test-containers: DOCKER_HOST=$DOCKER_HOST"

cd stampedetest
go test -tags containers -count=1 -p 1 -v -timeout "${TEST_TIMEOUT:-25m}" ${RUN:+-run "$RUN"} ./...
