# Sourced by the proxy benchmarks: their common start, the upstream they all forward to, the
# nginx CORS proxy they measure corsair against, and the wait for a proxy under valgrind.
#
# `bench_start TOOL...` checks that each TOOL and nginx are installed (NGINX: the nginx binary;
# TOOL:PACKAGE names the Debian package of a tool named otherwise),
# builds corsair's `dist` profile (release with fat LTO, one codegen unit) unless CORSAIR names
# a binary (with PGO=1, the profile-guided build of scripts/build-pgo.sh), and makes a scratch
# directory `dir`, removed at exit with the processes in `pids`.
bench_start() {
  local spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null \
      || { echo "${spec%%:*} is missing: apt-get install -y ${spec#*:}"; exit 2; }
  done
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
  [ -x "$NGINX" ] || { echo "nginx is missing: apt-get install -y nginx-light"; exit 2; }
  if [ -z "${CORSAIR:-}" ] && [ "${PGO:-0}" = 1 ]; then
    CORSAIR=$(bash scripts/build-pgo.sh)
  elif [ -z "${CORSAIR:-}" ]; then
    cargo build --profile dist -q -p corsair-cli
    CORSAIR=${CARGO_TARGET_DIR:-target}/dist/corsair
  fi
  dir=$(mktemp -d)
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}

# `await_answer PORT ERRFILE WHAT` waits up to 30 s (a proxy under valgrind starts slowly) for
# 127.0.0.1:PORT to answer; then, should it not, prints ERRFILE (the proxy's stderr) and stops.
await_answer() {
  local port=$1 err=$2 what=$3
  for _ in $(seq 300); do
    curl -s -o /dev/null "http://127.0.0.1:$port/small" 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$err"; echo "$what under valgrind did not start"; exit 1
}

# `static_upstream DIR PORT` writes DIR/www (`small`, a 2-byte file; `1k`; `1m`) and starts
# Debian's nginx serving it on 127.0.0.1:PORT with keep-alive, one worker, its files under
# DIR/up; its pid is added to the caller's `pids` array.
static_upstream() {
  local dir=$1 port=$2
  mkdir -p "$dir/www" "$dir/up"
  printf 'ok' > "$dir/www/small"
  head -c 1024 /dev/zero | tr '\0' 'a' > "$dir/www/1k"
  head -c 1048576 /dev/zero | tr '\0' 'a' > "$dir/www/1m"
  # nginx's workers run as an unprivileged user: they must be able to read the bodies.
  chmod 755 "$dir" "$dir/www"; chmod 644 "$dir"/www/*
  cat > "$dir/up/nginx.conf" <<CONF
error_log stderr error; pid $dir/up/nginx.pid; daemon off; worker_rlimit_nofile 65536;
worker_processes 1;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/up; proxy_temp_path $dir/up; fastcgi_temp_path $dir/up;
  uwsgi_temp_path $dir/up; scgi_temp_path $dir/up;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$port; root $dir/www; }
}
CONF
  "$NGINX" -p "$dir/up" -c "$dir/up/nginx.conf" & pids+=($!)
}

# `cors_nginx DIR PORT UPSTREAM_PORT WORKERS [MASTER]` writes DIR/nginx.conf: nginx as a CORS
# reverse proxy on 127.0.0.1:PORT in front of 127.0.0.1:UPSTREAM_PORT, as a careful operator
# writes it: `always` on every header (so that 4xx and 5xx answers carry them), `Vary: Origin`,
# the origin checked by a `map` (no `if` in a `location`), preflights answered by nginx with
# 204, the upstream's own CORS headers hidden, upstream keep-alive. It allows
# http://localhost:8000, PUT and x-token, as the benchmarks' corsair does. WORKERS is
# nginx's worker_processes; MASTER (on) `off` runs the one worker in nginx's own process.
cors_nginx() {
  local dir=$1 port=$2 up=$3 workers=$4 master=${5:-on}
  cat > "$dir/nginx.conf" <<EOF
error_log stderr error; pid $dir/nginx.pid; daemon off; worker_rlimit_nofile 65536;
master_process $master;
worker_processes $workers;
events { worker_connections 30000; }
http {
  access_log off;
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
  uwsgi_temp_path $dir; scgi_temp_path $dir;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$up; keepalive 256; }
  map \$http_origin \$cors_origin { default ""; "http://localhost:8000" \$http_origin; }
  map "\$request_method:\$http_access_control_request_method:\$cors_origin" \$cors_preflight {
    default 0; "~^OPTIONS:.+:.+" 1;
  }
  map \$cors_preflight \$cors_methods { default ""; 1 "PUT"; }
  map \$cors_preflight \$cors_headers { default ""; 1 "x-token"; }
  server {
    listen 127.0.0.1:$port;
    add_header Access-Control-Allow-Origin \$cors_origin always;
    add_header Access-Control-Allow-Methods \$cors_methods always;
    add_header Access-Control-Allow-Headers \$cors_headers always;
    add_header Vary Origin always;
    if (\$cors_preflight) { return 204; }
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_hide_header Access-Control-Allow-Origin;
      proxy_hide_header Access-Control-Allow-Credentials;
      proxy_hide_header Access-Control-Expose-Headers;
    }
  }
}
EOF
}
