#!/usr/bin/env bash
# Builds the `corsair` binary for deployment with profile-guided optimization (PGO): the `dist`
# profile (fat LTO, one codegen unit) built once with counters, run under a training load that
# covers what the proxy does, and built again from the counts that run left, so that LLVM
# inlines, orders and places the code as it ran (the hot path together, the cold aside).
# BENCHMARKS.md ("Fourteenth pass: a profile-guided build") has what it changes against the
# `dist` build and nginx; the binary behaves the same (step 4 runs the proxy's tests against it),
# only its speed differs.
#
# The training load, on loopback in front of Debian's nginx serving static files:
# - plain HTTP/1.1 (wrk): simple GETs with 10 and 256 connections, preflights, 1 KiB and 1 MiB
#   answers, 1 KiB uploads, a refused origin, requests without an Origin;
# - HTTP/2 in clear text (h2load, prior knowledge);
# - TLS (a throwaway certificate from openssl): HTTP/1.1 (wrk) and HTTP/2 (h2load, by ALPN).
# Code no training request reaches (a WebSocket tunnel, an upstream over TLS, a reload) is
# built as code that rarely runs: correct, and smaller rather than faster.
#
# Then runs the proxy's tests against the optimized binary (TESTS=0 skips them), and prints its
# path last. Needs, besides Rust:
# - llvm-profdata of rustc's own LLVM major version (`rustc -vV` names it): on Debian
#   `apt-get install -y llvm-N`, or `rustup component add llvm-tools`; LLVM_PROFDATA=path names
#   one elsewhere;
# - for the training: apt-get install -y nginx-light wrk nghttp2-client openssl curl.
# The builds go to CARGO_TARGET_DIR (default target) under pgo-train/ and pgo/; RUSTFLAGS set
# in the environment are kept for both.
set -euo pipefail
cd "$(dirname "$0")/.."

host=$(rustc -vV | sed -n 's/^host: //p')
llvm=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')

# llvm-profdata must read what rustc's LLVM writes: the same major version.
profdata=${LLVM_PROFDATA:-}
if [ -z "$profdata" ]; then
  for p in "$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata" \
           "/usr/lib/llvm-$llvm/bin/llvm-profdata" \
           "$(command -v "llvm-profdata-$llvm" || true)" \
           "$(command -v llvm-profdata || true)"; do
    if [ -n "$p" ] && [ -x "$p" ] && "$p" --version 2>/dev/null | grep -q "LLVM version $llvm\."; then
      profdata=$p
      break
    fi
  done
fi
if [ -z "$profdata" ]; then
  echo "llvm-profdata of LLVM $llvm (rustc's) is missing: apt-get install -y llvm-$llvm (Debian)," \
       "or rustup component add llvm-tools, or LLVM_PROFDATA=path"
  exit 2
fi

target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target"
target=$(cd "$target" && pwd)
trainee="$target/pgo-train/$host/dist/corsair"
# The training's tools and scratch directory, checked and made before the builds; CORSAIR set,
# bench_start builds nothing.
# shellcheck source=scripts/bench-proxy-servers.sh
. scripts/bench-proxy-servers.sh
CORSAIR=$trainee bench_start wrk h2load:nghttp2-client openssl curl
profiles="$target/pgo-train/profiles"
rm -rf "$profiles"
mkdir -p "$profiles"
flags=${RUSTFLAGS:-}

# --target: the flags then apply to corsair and its dependencies, not to build scripts and
# procedural macros (which would leave counts of their own).
echo "== 1/4: the dist build with counters" >&2
RUSTFLAGS="$flags -Cprofile-generate=$profiles" cargo build --profile dist --locked -q \
  -p corsair-cli --target "$host" --target-dir "$target/pgo-train"

echo "== 2/4: the training load" >&2
UP=18531 PX=18532
static_upstream "$dir" "$UP"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" \
  2>/dev/null
printf 'wrk.method = "OPTIONS"\n' > "$dir/options.lua"
printf 'wrk.method = "POST"\nwrk.body = string.rep("a", 1024)\n' > "$dir/post.lua"
head -c 1024 /dev/zero > "$dir/body"
origin=(-H 'Origin: http://localhost:8000')
preflight=(-s "$dir/options.lua" -H 'Access-Control-Request-Method: PUT'
           -H 'Access-Control-Request-Headers: x-token')

# `start [corsair flags...]`: the instrumented corsair on PX, speaking $scheme; `stop` ends it
# gracefully (TERM), as it writes its counts; `load COMMAND...` runs one load, which must succeed
# (h2load: every request answered, whatever its status).
start() {
  "$trainee" proxy --listen "127.0.0.1:$PX" --upstream "http://127.0.0.1:$UP" \
    --allow-origin http://localhost:8000 --allow-method PUT --allow-header x-token "$@" \
    > /dev/null 2> "$dir/corsair.err" &
  trainee_pid=$!
  pids+=("$trainee_pid")
  for _ in $(seq 100); do
    kill -0 "$trainee_pid" 2>/dev/null || break
    curl -sk -o /dev/null "$scheme://127.0.0.1:$PX/small" && return 0
    sleep 0.1
  done
  cat "$dir/corsair.err"; echo "the instrumented corsair did not start"; exit 1
}
stop() {
  kill -TERM "$trainee_pid"
  wait "$trainee_pid" || { cat "$dir/corsair.err"; echo "the instrumented corsair failed"; exit 1; }
}
load() {
  if ! "$@" > "$dir/load.out" 2>&1 \
     || { [ "$1" = h2load ] && ! grep -q ' 0 errored, 0 timeout' "$dir/load.out"; }; then
    cat "$dir/load.out"; echo "the training load failed: $*"; exit 1
  fi
}

scheme=http
start
url="http://127.0.0.1:$PX"
for conns in 10 256; do
  load wrk -t1 -c"$conns" -d3s "${origin[@]}" "$url/small"
  load wrk -t1 -c"$conns" -d2s "${origin[@]}" "${preflight[@]}" "$url/small"
done
load wrk -t1 -c10 -d1s "${origin[@]}" "$url/1k"
load wrk -t1 -c10 -d1s "${origin[@]}" "$url/1m"
load wrk -t1 -c10 -d1s "${origin[@]}" -s "$dir/post.lua" "$url/small"
load wrk -t1 -c10 -d1s -H 'Origin: https://refused.example' "$url/small"
load wrk -t1 -c10 -d1s "$url/small"
load h2load -c10 -m10 -n50000 "${origin[@]}" "$url/small"
load h2load -c10 -m10 -n5000 "${origin[@]}" -d "$dir/body" "$url/small"
stop

scheme=https
start --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem"
url="https://127.0.0.1:$PX"
load wrk -t1 -c10 -d2s "${origin[@]}" "$url/small"
load wrk -t1 -c10 -d1s "${origin[@]}" "${preflight[@]}" "$url/small"
load h2load -c10 -m10 -n50000 "${origin[@]}" "$url/small"
load h2load -c10 -m10 -n200 "${origin[@]}" "$url/1m"
stop

echo "== 3/4: the dist build from the counts" >&2
"$profdata" merge -o "$target/pgo-train/corsair.profdata" "$profiles"
RUSTFLAGS="$flags -Cprofile-use=$target/pgo-train/corsair.profdata" cargo build --profile dist \
  --locked -q -p corsair-cli --target "$host" --target-dir "$target/pgo"
binary="$target/pgo/$host/dist/corsair"

# The build that is measured and deployed is one that passed the proxy's tests (CORSAIR_BIN:
# corsair_testkit::corsair_bin); TESTS=0 skips them.
if [ "${TESTS:-1}" != 0 ]; then
  echo "== 4/4: the proxy's tests, against the optimized binary" >&2
  CORSAIR_BIN="$binary" cargo test --locked -q -p corsair-cli --test proxy --test proxy_resend \
    --test proxy_tls --test proxy_upstream_tls --test cli_limits >&2
fi
echo "$binary"
