#!/usr/bin/env bash
# k6's own overhead: the highest arrival rate one bin/k6 (with xk6-orders)
# sustains with dropped_iterations == 0 against bin/orders-stub, an in-memory
# stand-in of the Orders API, and k6's peak memory (RSS) at each rate.
#
#   RATES="100 200 400 800" STEP=20s scripts/k6-overhead.sh
#
# Writes results/bench/k6-overhead.md (one row per rate) and stops at the
# first rate that drops iterations. The stub listens on 127.0.0.1:18180.
set -euo pipefail
cd "$(dirname "$0")/.."

rates=${RATES:-"100 200 400 800 1200"}
step=${STEP:-20s}
addr=127.0.0.1:${STUB_PORT:-18180}
out=results/bench
work=$(mktemp -d)
mkdir -p "$out"

[ -x bin/k6 ] || { echo "k6-overhead: bin/k6 is missing; build it with: make k6" >&2; exit 2; }
(cd xk6-orders && go build -o ../bin/orders-stub ./cmd/orders-stub)

bin/orders-stub --addr "$addr" >"$work/stub.log" 2>&1 &
stub=$!
trap 'kill $stub 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fsS -o /dev/null "http://$addr/healthz" 2>/dev/null && break; sleep 0.1; done

md=$out/k6-overhead.md
if [ ! -f "$md" ]; then
	cat >"$md" <<'EOF'
# k6 overhead (`scripts/k6-overhead.sh`)

One `bin/k6` running `scenarios/baseline.js` (constant arrival rate, ledger on) against
`bin/orders-stub`; the stub shares the machine. Peak RSS from /proc (VmHWM).

| date (UTC) | CPUs | rate/s | for | iterations | dropped | accept p99 | k6 CPU (cores) | k6 peak RSS | verdict |
|---|---|---|---|---|---|---|---|---|---|
EOF
fi

best=0
for r in $rates; do
	echo "k6-overhead: $r orders/s for $step"
	BASE_RATE=$r DURATION=$step ORDERS_URL=http://$addr LEDGER=$work/ledger-$r.jsonl RUN_ID=overhead-$r \
		bin/k6 run --no-color --quiet --summary-export "$work/summary-$r.json" scenarios/baseline.js >"$work/k6-$r.log" 2>&1 &
	k6=$!
	hwm=0
	t0=$(awk '{print $14+$15}' /proc/$k6/stat 2>/dev/null || echo 0)
	cpu=$t0
	while kill -0 $k6 2>/dev/null; do
		v=$(awk '/VmHWM/ {print $2}' /proc/$k6/status 2>/dev/null || echo 0)
		[ "${v:-0}" -gt "$hwm" ] && hwm=$v
		c=$(awk '{print $14+$15}' /proc/$k6/stat 2>/dev/null || echo "$cpu")
		cpu=${c:-$cpu}
		sleep 0.5
	done
	rc=0
	wait $k6 || rc=$?
	secs=${step%s}
	read -r iters dropped p99 < <(python3 - "$work/summary-$r.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
it = m.get("iterations", {}).get("count", 0)
dr = m.get("dropped_iterations", {}).get("count", 0)
acc = m.get("order_accept_duration", m.get("http_req_duration", {}))
print(int(it), int(dr), "%.1f ms" % acc.get("p(99)", float("nan")))
EOF
	)
	cores=$(awk -v c="$cpu" -v t="$t0" -v s="$secs" -v k="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (c - t) / k / s }')
	verdict=ok
	if [ "$dropped" -gt 0 ] || [ "$rc" -ne 0 ]; then verdict="dropped or failed (k6 exit $rc)"; fi
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s MiB | %s |\n' "$(date -u '+%Y-%m-%d %H:%M')" "$(nproc)" "$r" "$step" \
		"$iters" "$dropped" "$p99" "$cores" "$((hwm / 1024))" "$verdict" | tee -a "$md"
	[ "$verdict" = ok ] || break
	best=$r
done
echo "k6-overhead: highest rate with no dropped iterations: $best/s (table: $md)"
