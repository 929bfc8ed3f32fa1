# Sourced by the proxy benchmarks: `static_upstream DIR PORT` writes DIR/www (`small`, a 2-byte
# file; `1k`; `1m`) and starts Debian's nginx serving it on 127.0.0.1:PORT with keep-alive, one
# worker, its files under DIR/up; its pid is added to the caller's `pids` array. Needs NGINX
# (the nginx binary) set.
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
