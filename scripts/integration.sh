#!/usr/bin/env bash
# Integration tests against the real stack. Starts the stack (reusing one that
# is already up), runs every `integration`-tagged test, and stops what it
# started, even when the tests fail.
set -euo pipefail
cd "$(dirname "$0")/.."
stampede=./bin/stampede
# The tests read the stack's secrets (service token, passwords) where it keeps them.
export STAMPEDE_HOME="${STAMPEDE_HOME:-$PWD/.stampede}"

started=0
if ! $stampede status >/dev/null 2>&1; then
	started=1
fi
cleanup() {
	status=$?
	if [ "$started" = 1 ] && [ -z "${STAMPEDE_KEEP_STACK:-}" ]; then
		echo "== stopping the stack this run started"
		$stampede down || true
	fi
	exit $status
}
trap cleanup EXIT INT TERM

echo "== starting the stack"
$stampede up
echo "== integration tests"
STAMPEDE_BIN="$PWD/bin" go test -count=1 -tags integration -timeout 30m -p 1 ./...
