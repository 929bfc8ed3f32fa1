#!/usr/bin/env bash
# How many cache misses a forwarded request costs corsair proxy and nginx, with few and with
# many connections busy, in caches simulated by cachegrind (valgrind): 32 KiB L1 instruction
# and data caches and a 512 KiB last level (the L2 of one core of the AMD EPYC this script was
# written on; kept so that its figures compare across passes). One worker each, simple GETs
# through the proxy to the static upstream, 10 then 256 connections (wrk, one thread). Prints a
# Markdown table for BENCHMARKS.md: per request, instructions, L1 instruction misses, L1 data
# misses, and last-level read and write misses.
#
# Why: this VM's load runs vary by 20% from one run to the next, and with 256 connections a
# request's time goes to data that has left the caches since the connection's last request
# (its future, its buffers, the response handed between tasks). A simulation counts those
# misses the same in every run; the load runs (bench-proxy.sh) say what they cost.
#
# The counts include the start (a few hundred thousand instructions, spread over 10,000 or so
# requests), for every proxy alike. Needs valgrind, wrk and nginx (apt-get install -y valgrind
# wrk nginx-light). DURATION (8s) tunes it; CORSAIR=path uses that build instead of building
# one (`dist` profile); BASELINE=path adds another corsair build (an earlier one).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8s}
# shellcheck source=scripts/bench-proxy-servers.sh
. scripts/bench-proxy-servers.sh
bench_start valgrind wrk
UP=18431 PX=18432

static_upstream "$dir" "$UP"
mkdir -p "$dir/ng"
cors_nginx "$dir/ng" "$PX" "$UP" 1 off
# The same work: corsair sends the upstream nginx's two forwarding headers (X-Forwarded-For,
# X-Forwarded-Proto), not its default four (ignored by builds from before 74a5061).
export CORSAIR_FORWARDED_HEADERS=x-forwarded-for,x-forwarded-proto

# One proxy under cachegrind, one load: prints "instructions L1i-misses L1d-misses LL-read
# LL-write" per request.
measure() { # name connections
  local name=$1 conns=$2 out="$dir/$1.$2.cg" pid
  local sim=(valgrind --tool=cachegrind --cache-sim=yes --I1=32768,8,64 --D1=32768,8,64
             --LL=524288,8,64
             --cachegrind-out-file="$out")
  case $name in
    nginx) "${sim[@]}" "$NGINX" -p "$dir/ng" -c "$dir/ng/nginx.conf" 2> "$dir/$name.err" & pid=$! ;;
    *) local bin=$CORSAIR; [ "$name" = baseline ] && bin=$BASELINE
       "${sim[@]}" "$bin" proxy --workers 1 --listen "127.0.0.1:$PX" \
         --upstream "http://127.0.0.1:$UP" --allow-origin http://localhost:8000 \
         --allow-method PUT --allow-header x-token > /dev/null 2> "$dir/$name.err" & pid=$! ;;
  esac
  await_answer "$PX" "$dir/$name.err" "$name"
  local h
  h=$(curl -s -D - -o /dev/null -H 'Origin: http://localhost:8000' "http://127.0.0.1:$PX/small" \
      | tr -d '\r')
  echo "$h" | grep -qi '^access-control-allow-origin: http://localhost:8000' \
    || { echo "$name answered without CORS: $h"; exit 1; }
  local n
  n=$(wrk -t1 -c"$conns" -d"$DURATION" -H 'Origin: http://localhost:8000' \
      "http://127.0.0.1:$PX/small" | awk '/requests in/ {print $1}')
  # nginx stops gracefully on QUIT, corsair on TERM; either way cachegrind writes its counts.
  if [ "$name" = nginx ]; then kill -QUIT "$pid"; else kill -TERM "$pid"; fi
  wait "$pid" || true
  cg_annotate --show=Ir,I1mr,D1mr,D1mw,DLmr,DLmw "$out" | awk -v n="$n" '/PROGRAM TOTALS/ {
    gsub(",", ""); printf "%.0f %.0f %.0f %.1f %.1f\n", $1 / n, $3 / n, ($5 + $7) / n, $9 / n, $11 / n }'
}

proxies="nginx corsair"; [ -n "${BASELINE:-}" ] && proxies="nginx baseline corsair"
echo "| proxy | connections | instructions | L1i misses | L1d misses | last-level read misses | last-level write misses |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for conns in 10 256; do
  for name in $proxies; do
    read -r ir i1 d1 llr llw < <(measure "$name" "$conns")
    echo "| $name | $conns | $ir | $i1 | $d1 | $llr | $llw |"
  done
done
