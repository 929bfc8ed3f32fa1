#!/usr/bin/env bash
# Every benchmark of BENCHMARKS.md, in one run: criterion (corsair, tower-http, actix-cors, the
# floor), the table from its estimates, the allocation counts, the end-to-end wrk run and the
# instruction counts against the static layer (needs valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== machine"
echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
rustc --version
echo "== criterion (cargo bench -p corsair-bench)"
cargo bench -q -p corsair-bench > target/bench-criterion.log 2>&1
python3 scripts/bench-report.py
echo "== allocations per request"
cargo test -q --release -p corsair-bench --test allocations -- --nocapture 2>&1 | grep -vE '^(running|test |$)'
echo "== end to end (wrk)"
bash scripts/bench-e2e.sh
echo "== instructions per request against the static layer (callgrind)"
bash scripts/bench-instructions.sh
