#!/usr/bin/env bash
# corsair proxy against nginx as a CORS reverse proxy, in front of the same upstream (a static
# nginx) on loopback, under the same wrk load: simple GETs, preflights, 1 KiB and 1 MiB bodies,
# at 10 and 256 connections, nginx and corsair alternately in each round. Reports the median
# over the rounds of requests per second, p50 and p99 latency, and the CPU time (user and
# system) each proxy spent a request (all its processes; less distorted than requests per
# second when the machine is busy), and the peak memory of each; then the memory each adds for
# 10,000 idle client connections (fresh ones, then the same after one request each, 2 s and
# 10 s after the last answer). Prints
# Markdown tables for BENCHMARKS.md.
#
# The nginx configuration is the one a careful operator writes (`cors_nginx` in
# bench-proxy-servers.sh says how). Both proxies allow http://localhost:8000, PUT and x-token,
# and both send the upstream X-Forwarded-For and X-Forwarded-Proto (corsair's default adds
# Forwarded and X-Forwarded-Host: about 460 instructions a request more, BENCHMARKS.md).
#
# Needs Debian's nginx and wrk (apt-get install -y nginx-light wrk). DURATION (10s), ROUNDS (3),
# CASES (the loads, "simple preflight 1k 1m")
# and IDLE (10000) tune it; ROUNDS=0 runs only the idle part, IDLE=0 only the loads.
# CORSAIR=path uses that build instead of building one (the `dist` profile; PGO=1 builds the
# profile-guided one, scripts/build-pgo.sh); BASELINE=path runs another corsair build (an
# earlier one, or the plain `dist` one beside the profile-guided) in the same rounds and tables.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
IDLE=${IDLE:-10000}
# shellcheck source=scripts/bench-proxy-servers.sh
. scripts/bench-proxy-servers.sh
bench_start wrk
UP=18401 NG=18402 CO=18403 BA=18404
BASELINE=${BASELINE:-}
servers="nginx corsair"; [ -n "$BASELINE" ] && servers="nginx baseline corsair"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

mkdir -p "$dir/ng"
static_upstream "$dir" "$UP"
# The CORS proxy, as a careful operator writes it (bench-proxy-servers.sh).
cors_nginx "$dir/ng" "$NG" "$UP" auto
# The same work: corsair sends the upstream nginx's two forwarding headers (X-Forwarded-For,
# X-Forwarded-Proto), not its default four. Read from the environment, which builds from
# before --forwarded-headers (74a5061) ignore: they send their four.
export CORSAIR_FORWARDED_HEADERS=x-forwarded-for,x-forwarded-proto
"$NGINX" -p "$dir/ng" -c "$dir/ng/nginx.conf" & ng_pid=$!; pids+=($ng_pid)
"$CORSAIR" proxy --listen "127.0.0.1:$CO" --upstream "http://127.0.0.1:$UP" \
  --allow-origin http://localhost:8000 --allow-method PUT --allow-header x-token \
  --max-connections 30000 >/dev/null 2>&1 & co_pid=$!; pids+=($co_pid)
ports="$UP $NG $CO"
if [ -n "$BASELINE" ]; then
  "$BASELINE" proxy --listen "127.0.0.1:$BA" --upstream "http://127.0.0.1:$UP" \
    --allow-origin http://localhost:8000 --allow-method PUT --allow-header x-token \
    --max-connections 30000 >/dev/null 2>&1 & ba_pid=$!; pids+=($ba_pid)
  ports="$ports $BA"
fi
for port in $ports; do
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/small" && break; sleep 0.1; done
done

# The same answers from both, or the comparison means nothing.
for port in ${ports#$UP }; do
  h=$(curl -s -D - -o /dev/null -X OPTIONS -H 'Origin: http://localhost:8000' \
      -H 'Access-Control-Request-Method: PUT' "http://127.0.0.1:$port/small" | tr -d '\r')
  echo "$h" | grep -qi '^HTTP/1.1 204' || { echo "preflight on $port: $h"; exit 1; }
  echo "$h" | grep -qi '^access-control-allow-methods: PUT' || { echo "preflight on $port: $h"; exit 1; }
  h=$(curl -s -D - -o /dev/null -H 'Origin: http://localhost:8000' "http://127.0.0.1:$port/1k" | tr -d '\r')
  echo "$h" | grep -qi '^HTTP/1.1 200' || { echo "GET on $port: $h"; exit 1; }
  echo "$h" | grep -qi '^content-length: 1024' || { echo "GET on $port: $h"; exit 1; }
  echo "$h" | grep -qi '^access-control-allow-origin: http://localhost:8000' || { echo "GET on $port: $h"; exit 1; }
  echo "$h" | grep -qi '^vary: .*origin' || { echo "GET on $port: $h"; exit 1; }
done

# The sum over a process and its children of what an awk program prints of /proc/PID/FILE.
over_procs() {
  local pid=$1 file=$2 prog=$3 total=0 p
  for p in "$pid" $(pgrep -P "$pid" || true); do
    total=$((total + $(awk "$prog" "/proc/$p/$file")))
  done
  echo "$total"
}
# Peak and current resident memory, in KiB; CPU time (user and system) so far, in clock ticks.
peak() { over_procs "$1" status '/^VmHWM:/ {print $2}'; }
rss() { over_procs "$1" status '/^VmRSS:/ {print $2}'; }
cpu() { over_procs "$1" stat '{print $14 + $15}'; }
HZ=$(getconf CLK_TCK)

printf 'wrk.method = "OPTIONS"\n' > "$dir/options.lua"
# Every round's figures, one line per measurement: case conns server rps p50 p99.
: > "$dir/results"
CASES=${CASES:-simple preflight 1k 1m}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$ROUNDS"); do
for conns in 10 256; do
for case in $CASES; do
for server in $servers; do
  case $server in
    nginx) port=$NG pid=$ng_pid ;; corsair) port=$CO pid=$co_pid ;; baseline) port=$BA pid=$ba_pid ;;
  esac
  args=(-t1 -c"$conns" -d"$DURATION" --latency -H 'Origin: http://localhost:8000')
  path=/small
  case $case in
    preflight) args+=(-s "$dir/options.lua" -H 'Access-Control-Request-Method: PUT' -H 'Access-Control-Request-Headers: x-token') ;;
    1k) path=/1k ;;
    1m) path=/1m ;;
  esac
  t0=$(cpu "$pid")
  out=$(wrk "${args[@]}" "http://127.0.0.1:$port$path")
  t1=$(cpu "$pid")
  r=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  # The proxy's CPU time a request, user and system, in microseconds.
  u=$(awk -v t="$((t1 - t0))" -v n="$n" -v hz="$HZ" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
  a=$(echo "$out" | awk '$1 == "50%" {print $2}')
  b=$(echo "$out" | awk '$1 == "99%" {print $2}')
  echo "$case $conns $server $r $a $b $u" >> "$dir/results"
  echo "round $round, $case, $conns connections, $server: $r requests/s, p50 $a, p99 $b, CPU $u us a request (load $(cut -d' ' -f1 /proc/loadavg))" >&2
done
done
done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# The median of one column over the rounds of a cell; latencies are compared in microseconds
# and printed as wrk wrote them.
median() {
  awk -v c="$1" -v n="$2" -v s="$3" -v col="$4" '
    function us(x) {
      if (x ~ /us$/) return x + 0; if (x ~ /ms$/) return x * 1000; if (x ~ /s$/) return x * 1e6
      return x + 0
    }
    $1 == c && $2 == n && $3 == s { k++; v[k] = $col; u[k] = us($col) }
    END {
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (u[j] < u[i]) {
        t = u[i]; u[i] = u[j]; u[j] = t; t = v[i]; v[i] = v[j]; v[j] = t
      }
      print v[int((k + 1) / 2)]
    }' "$dir/results"
}

if [ "$ROUNDS" -gt 0 ]; then
echo
echo "Medians of $ROUNDS rounds of $DURATION each."
echo
head="| load | connections |" rule="|---|---:|"
for server in $servers; do head="$head $server requests/s |" rule="$rule---:|"; done
for server in $servers; do head="$head $server p50 / p99 |" rule="$rule---:|"; done
for server in $servers; do head="$head $server CPU µs |" rule="$rule---:|"; done
echo "$head"
echo "$rule"
for conns in 10 256; do
for case in $CASES; do
  line="| $case | $conns |"
  for server in $servers; do
    line="$line $(printf '%.0f' "$(median "$case" "$conns" "$server" 4)") |"
  done
  for server in $servers; do
    line="$line $(median "$case" "$conns" "$server" 5) / $(median "$case" "$conns" "$server" 6) |"
  done
  for server in $servers; do
    line="$line $(median "$case" "$conns" "$server" 7) |"
  done
  echo "$line"
done
done
echo
echo "Peak resident memory after the load (all processes): nginx $(( $(peak $ng_pid) / 1024 )) MiB, corsair $(( $(peak $co_pid) / 1024 )) MiB${BASELINE:+, baseline $(( $(peak ${ba_pid:-0}) / 1024 )) MiB}."
fi
[ "$IDLE" -gt 0 ] || exit 0

# Idle connections: open IDLE to each, hold them, and see what each proxy's RSS gains; then
# send one request on each (a hundred at a time) and hold them again, idle between requests.
HOLDER='
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
print("open", flush=True)
sys.stdin.readline()
for i in range(0, n, 100):
    batch = held[i:i + 100]
    for s in batch:
        s.sendall(b"GET /small HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    for s in batch:
        got = b""
        while not got.endswith(b"ok"):
            chunk = s.recv(4096)
            if not chunk:
                sys.exit("closed after %r" % got)
            got += chunk
print("used", flush=True)
sys.stdin.readline()
'
idle() { python3 -c "$HOLDER" "$1" "$IDLE"; }
for server in $servers; do
  case $server in
    nginx) port=$NG pid=$ng_pid ;; corsair) port=$CO pid=$co_pid ;; baseline) port=$BA pid=$ba_pid ;;
  esac
  before=$(rss "$pid")
  coproc HOLD { idle "$port"; }
  read -r _ <&"${HOLD[0]}"
  sleep 1
  fresh=$(rss "$pid")
  echo >&"${HOLD[1]}"
  read -r _ <&"${HOLD[0]}"
  # corsair releases a connection idle for 250 ms (up to 500 ms after its answer).
  sleep 2
  used=$(rss "$pid")
  # At rest: what the allocators have not given back 10 s after the burst (corsair's jemalloc
  # returns freed pages over about a second, from its background thread).
  sleep 8
  rest=$(rss "$pid")
  echo >&"${HOLD[1]}"; wait "$HOLD_PID" 2>/dev/null || true
  echo "$IDLE idle connections: $server RSS $((before / 1024)) MiB -> $((fresh / 1024)) MiB (+$(( (fresh - before) / 1024 )) MiB); after one request on each, idle again: 2 s later $((used / 1024)) MiB (+$(( (used - before) / 1024 )) MiB), 10 s later $((rest / 1024)) MiB (+$(( (rest - before) / 1024 )) MiB)"
done
