#!/usr/bin/env bash
# Instructions per request of the tenant-origin paths, counted by callgrind (the same for the same
# binary whatever else the machine is doing): the decision on a cache hit as in BENCHMARKS.md's
# "Tenant origins" (a listed origin for scale, 1 and 100,000 tenants cached), and a miss through
# OriginCache::resolve against an in-memory source. N requests against a run of 0, so the set-up
# cancels out (at N=20,000 the 100,000-tenant set-up still moved the figure by ~1%). Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
cargo build -q --release -p corsair-bench --example origin_sources
bin="${CARGO_TARGET_DIR:-target}/release/examples/origin_sources"
count() { # scenario n -> total instructions
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" instructions "$1" "$2" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "| scenario | instructions per request |"
echo "|---|---:|"
for s in ${SCENARIOS:-listed hit_one hit_many miss}; do
  a=$(count "$s" 0); b=$(count "$s" "$N")
  echo "| $s | $(( (b - a) / N )) |"
done
