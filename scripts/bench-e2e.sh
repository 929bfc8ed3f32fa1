#!/usr/bin/env bash
# End-to-end load benchmark: an axum hello-world with no CORS, with corsair and with tower-http,
# each under wrk on loopback for a bounded time, with an allowed Origin on every request; plus
# "static-headers", which adds corsair's four response headers as fixed values, to separate the
# cost of a bigger response from corsair's own work. Each mode runs ROUNDS times, interleaved;
# the best round of each counts. Prints requests per second and p99 latency, and their ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 2; }
cargo build --release -q -p corsair-bench --bin bench-server
ROUNDS=${ROUNDS:-2}
MODES="none static-headers corsair tower-http"
port=18300
declare -A rps p99
for round in $(seq "$ROUNDS"); do
for mode in $MODES; do
  port=$((port + 1))
  target/release/bench-server "$mode" "$port" &
  pid=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  # Warm-up, then the measured run; one wrk thread so the server keeps a core of its own.
  wrk -t1 -c"$CONNECTIONS" -d2s -H 'Origin: https://app.example.com' "http://127.0.0.1:$port/" >/dev/null
  out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -H 'Origin: https://app.example.com' "http://127.0.0.1:$port/")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  r=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p=$(echo "$out" | awk '$1 == "99%" {print $2}')
  echo "round $round, $mode: $r requests/s, p99 $p"
  if [ -z "${rps[$mode]:-}" ] || awk -v a="$r" -v b="${rps[$mode]}" 'BEGIN { exit !(a > b) }'; then
    rps[$mode]=$r; p99[$mode]=$p
  fi
done
done
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /ms$/) n *= 1000; else if (v ~ /[0-9]s$/) n *= 1000000; print n }'; }
base_rps=${rps[none]}; base_p99=$(to_us "${p99[none]}")
echo
echo "| server | requests/s | p99 | throughput vs none | p99 vs none |"
echo "|---|---:|---:|---:|---:|"
for mode in $MODES; do
  awk -v m="$mode" -v r="${rps[$mode]}" -v p="${p99[$mode]}" -v pu="$(to_us "${p99[$mode]}")" -v br="$base_rps" -v bp="$base_p99" \
    'BEGIN { printf "| %s | %.0f | %s | %.3f | %.2f |\n", m, r, p, r / br, pu / bp }'
done
