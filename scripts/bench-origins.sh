#!/usr/bin/env bash
# BENCHMARKS.md's "Tenant origins": starts a PostgreSQL server from Debian's postgresql on
# 127.0.0.1 (initdb in a temporary directory, as the postgres user when root), then runs
# crates/bench/examples/origin_sources.rs in release mode against it and SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$bin/postgres" ] || { echo "no PostgreSQL under /usr/lib/postgresql/*/bin: apt-get install postgresql"; exit 1; }
dir=$(mktemp -d /tmp/corsair-bench-pg.XXXXXX)
as=()
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; as=(runuser -u postgres --); fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
"${as[@]}" "$bin/postgres" -D "$dir/data" -h 127.0.0.1 -p "$port" -k "$dir" -c fsync=off > "$dir/log" 2>&1 &
pg=$!
stop() { kill -INT "$(head -1 "$dir/data/postmaster.pid" 2>/dev/null || echo "$pg")" 2>/dev/null || true; wait "$pg" 2>/dev/null || true; rm -rf "$dir"; }
trap stop EXIT
for _ in $(seq 200); do "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break; sleep 0.05; done
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $("$bin/postgres" --version)"
CORSAIR_BENCH_PG="host=127.0.0.1 port=$port user=postgres dbname=postgres" \
  cargo run -q --release -p corsair-bench --example origin_sources
