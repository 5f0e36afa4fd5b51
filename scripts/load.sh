#!/usr/bin/env bash
# Runs one k6 scenario against the local stack and keeps everything it
# produced in results/<run>/: the ledger, k6's end-of-test summary (JSON), its
# HTML dashboard export and its console output. k6 metrics also go to the
# stack's Prometheus (remote write, native histograms for trends).
#
#   SCENARIO=black-friday DURATION=3m scripts/load.sh
#
# Every k6 scenario variable (BASE_RATE, DURATION, ORDERS_URL, SEED, MIX, ...)
# passes through; RUN names the results directory.
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${SCENARIO:-}
if [ -z "$scenario" ]; then
	echo "load: SCENARIO is not set; one of: $(cd scenarios && ls *.js | sed 's/\.js$//' | tr '\n' ' ')" >&2
	exit 2
fi
script=scenarios/$scenario.js
if [ ! -f "$script" ]; then
	echo "load: no scenario $script; one of: $(cd scenarios && ls *.js | sed 's/\.js$//' | tr '\n' ' ')" >&2
	exit 2
fi
if [ ! -x bin/k6 ]; then
	echo "load: bin/k6 is missing; build it with: make k6" >&2
	exit 2
fi

run=${RUN:-$(date -u +%Y%m%dT%H%M%SZ)-$scenario}
out=results/$run
mkdir -p "$out"

prom_port=${STAMPEDE_PROMETHEUS_PORT:-$((9090 + ${STAMPEDE_PORT_OFFSET:-0}))}
outputs=()
if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$prom_port/-/ready"; then
	outputs=(-o experimental-prometheus-rw)
	export K6_PROMETHEUS_RW_SERVER_URL="http://127.0.0.1:$prom_port/api/v1/write"
	export K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM=true
	export K6_PROMETHEUS_RW_PUSH_INTERVAL=${K6_PROMETHEUS_RW_PUSH_INTERVAL:-2s}
else
	echo "load: Prometheus is not answering on 127.0.0.1:$prom_port; k6 metrics stay in $out only"
fi

export ORDERS_URL=${ORDERS_URL:-http://127.0.0.1:${STAMPEDE_ORDERS_PORT:-$((8080 + ${STAMPEDE_PORT_OFFSET:-0}))}}
# Sampled orders are followed (read) with the stack's service token.
token_file=${STAMPEDE_SECRETS_DIR:-${STAMPEDE_HOME:-.stampede}/secrets}/service-token
if [ -z "${ORDERS_TOKEN:-}" ] && [ -f "$token_file" ]; then
	export ORDERS_TOKEN_FILE=${ORDERS_TOKEN_FILE:-$token_file}
fi
export LEDGER=${LEDGER:-$out/ledger.jsonl}
export RUN_ID=${RUN_ID:-$run}
export K6_WEB_DASHBOARD=true
export K6_WEB_DASHBOARD_HOST=127.0.0.1
export K6_WEB_DASHBOARD_PORT=-1
export K6_WEB_DASHBOARD_PERIOD=${K6_WEB_DASHBOARD_PERIOD:-1s}
export K6_WEB_DASHBOARD_EXPORT=$out/k6-report.html

echo "load: $script -> $out (ledger, summary.json, k6-report.html, k6.log)"
set +e
bin/k6 run --no-color --summary-export "$out/summary.json" "${outputs[@]}" "$script" 2>&1 | tee "$out/k6.log"
status=${PIPESTATUS[0]}
set -e
echo "load: k6 exited $status; results in $out"
exit "$status"
