#!/usr/bin/env bash
# Instructions per request of `corsair proxy`, counted by callgrind (user space, the whole
# process): a run under `wrk -t1 -c10` for DURATION, minus a run that serves no request, divided
# by the requests served. Unlike requests per second, the same for the same build whatever else
# the machine is doing. Loads: a forwarded GET of a 2-byte file from a static nginx upstream
# (`simple`), and a preflight answered by the proxy (`preflight`), both from an allowed origin.
# The ports are fixed (18411, 18412): one run at a time.
#
# Needs Debian's valgrind, nginx and wrk (apt-get install -y valgrind nginx-light wrk).
# CORSAIR=path measures that build (default: build the `dist` profile); BASELINE=path measures
# another one (an earlier build) the same way, for a comparison in one table. DURATION (6s).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-6s}
# shellcheck source=scripts/bench-proxy-servers.sh
. scripts/bench-proxy-servers.sh
bench_start valgrind wrk
UP=18411 CO=18412

static_upstream "$dir" "$UP"
printf 'wrk.method = "OPTIONS"\n' > "$dir/options.lua"

# One run of a build under callgrind: its instruction total, after `wrk` with `$3` (or no load
# when empty), and the requests `wrk` counted (0 without load).
run() { # binary label wrk-args...
  local bin=$1 label=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" proxy \
    --listen "127.0.0.1:$CO" --upstream "http://127.0.0.1:$UP" \
    --allow-origin http://localhost:8000 --allow-method PUT --allow-header x-token \
    > /dev/null 2> "$dir/$label.err" & local pid=$!
  await_answer "$CO" "$dir/$label.err" "the proxy"
  local requests=0
  if [ $# -gt 0 ]; then
    requests=$(wrk -t1 -c10 -d"$DURATION" -H 'Origin: http://localhost:8000' "$@" \
      | awk '/requests in/ {print $1}')
  else
    # As long as a loaded run, so that what runs by the clock (timers) cancels out too.
    sleep "${DURATION%s}"
  fi
  kill -TERM "$pid"; wait "$pid" || true
  local total
  total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$dir/$label.err")
  # The readiness probe's request is in both runs, so it cancels out.
  echo "$total $requests"
}

per() { # binary case -> instructions per request
  local bin=$1 case=$2 args
  case $case in
    simple) args=("http://127.0.0.1:$CO/small") ;;
    preflight) args=(-s "$dir/options.lua" -H 'Access-Control-Request-Method: PUT'
                     -H 'Access-Control-Request-Headers: x-token' "http://127.0.0.1:$CO/small") ;;
  esac
  read -r idle _ < <(run "$bin" idle)
  read -r loaded n < <(run "$bin" "$case" "${args[@]}")
  echo "$(( (loaded - idle) / n )) $n"
}

builds="corsair"; [ -n "${BASELINE:-}" ] && builds="baseline corsair"
echo "| request | build | instructions per request | requests counted |"
echo "|---|---|---:|---:|"
for case in simple preflight; do
  for build in $builds; do
    bin=$CORSAIR; [ "$build" = baseline ] && bin=$BASELINE
    read -r p n < <(per "$bin" "$case")
    echo "| $case | $build | $p | $n |"
  done
done
