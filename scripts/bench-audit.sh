#!/usr/bin/env bash
# corsair audit over 1,000 local endpoints (BENCHMARKS.md): nginx on 127.0.0.1 serves 500
# endpoints that reflect any origin with credentials and 500 that grant one origin (where
# nginx's `add_header` inside `if` drops the outer `Vary: Origin`, a real missing-vary).
# CONCURRENCY tunes --concurrency; PROFILE=debug measures the debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
CONCURRENCY=${CONCURRENCY:-16}
PORT=${PORT:-18931}
dir=$(mktemp -d)
trap 'kill "$(cat "$dir/nginx.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$dir"' EXIT
cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  server {
    listen 127.0.0.1:$PORT;
    location /reflect/ {
      add_header Access-Control-Allow-Origin \$http_origin always;
      add_header Access-Control-Allow-Credentials true always;
      add_header Vary Origin always;
      return 200 "{}";
    }
    location /strict/ {
      if (\$http_origin = "https://app.target.example") {
        add_header Access-Control-Allow-Origin \$http_origin always;
        add_header Access-Control-Allow-Credentials true always;
      }
      add_header Vary Origin always;
      return 200 "{}";
    }
  }
}
CONF
PATH="$PATH:/usr/sbin" nginx -c "$dir/nginx.conf"
for i in $(seq 1 500); do
  echo "http://127.0.0.1:$PORT/reflect/$i"
  echo "http://127.0.0.1:$PORT/strict/$i"
done > "$dir/urls.txt"
if [ "$PROFILE" = release ]; then cargo build --release -q -p corsair-cli --bin corsair; fi
bin="${CARGO_TARGET_DIR:-target}/$PROFILE/corsair"
start=$(date +%s.%N)
status=0
"$bin" audit --input "$dir/urls.txt" --origin https://app.target.example \
  --concurrency "$CONCURRENCY" --rate 1000000 --json > "$dir/out.jsonl" || status=$?
end=$(date +%s.%N)
python3 - "$dir/out.jsonl" "$start" "$end" "$status" <<'PY'
import collections, json, sys
path, start, end, status = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
found, requests, targets = collections.Counter(), 0, 0
for line in open(path):
    v = json.loads(line)
    targets += 1
    requests += v.get("requests", 0)
    found[",".join(f["id"] for f in v.get("findings", [])) or v.get("error", "none")] += 1
secs = end - start
print(f"{targets} targets, {requests} requests in {secs:.1f} s: {requests / secs:.0f} requests/s, "
      f"{targets / secs:.1f} targets/s (exit status {status})")
for k, n in sorted(found.items()):
    print(f"  {n:5} {k}")
PY
