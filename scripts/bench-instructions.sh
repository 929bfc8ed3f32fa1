#!/usr/bin/env bash
# Instructions per request, counted by callgrind: unlike nanoseconds, the same for the same binary
# whatever else the machine is doing. For each scenario, the floor (no middleware), the static
# layer (inserts corsair's headers, decides nothing) and corsair; "own" is minus the floor.
# Needs Debian's valgrind. N requests are counted against a run of 0, so start-up cancels out.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
cargo build -q --release -p corsair-bench --example per_request
bin="${CARGO_TARGET_DIR:-target}/release/examples/per_request"
count() { # service scenario n -> total instructions
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" "$3" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
per() { # service scenario -> instructions per request
  local a b
  a=$(count "$1" "$2" 0); b=$(count "$1" "$2" "$N")
  echo $(( (b - a) / N ))
}
echo "| scenario | floor | static layer own | corsair own | corsair / static layer |"
echo "|---|---:|---:|---:|---:|"
for s in ${SCENARIOS:-no_origin allowed_simple disallowed_simple allowed_preflight rejected_preflight origins_10000 patterns_1}; do
  f=$(per floor "$s"); st=$(per static_layer "$s"); c=$(per corsair "$s")
  python3 -c "f,st,c=$f,$st,$c; print(f'| $s | {f} | {st-f} | {c-f} | {(c-f)/max(st-f,1):.2f} |')"
done
