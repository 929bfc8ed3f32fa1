#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the end-to-end tests drive when it
# is missing (Debian's chromium, its chromedriver, firefox-esr, and webkit2gtk-driver with xvfb and
# xauth for WebKitGTK's MiniBrowser, for the real-browser tests,
# libnss3-tools for certutil, which makes Firefox trust the differential suite's local CA;
# varnish and nginx, the shared caches of crates/corsair-cli/tests/shared_cache.rs; postgresql,
# the server of crates/corsair/tests/postgres_source.rs), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# varnishd and nginx live in /usr/sbin, which a non-root PATH may lack.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing=()
have chromium || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
have firefox-esr || missing+=(firefox-esr)
# WebKitGTK (Safari's engine): MiniBrowser comes with webkit2gtk-driver's libwebkit2gtk; it
# runs on an Xvfb display (xauth: for xvfb-run by hand).
compgen -G '/usr/lib/*/webkit2gtk-4.*/MiniBrowser' >/dev/null || missing+=(webkit2gtk-driver)
have Xvfb || missing+=(xvfb)
have xauth || missing+=(xauth)
have varnishd || missing+=(varnish)
have nginx || missing+=(nginx)
# certutil: the differential suite's https pages put a local CA in Firefox's profile.
have certutil || missing+=(libnss3-tools)
# curl: the proxy's HTTP/2 tests (curl --http2).
have curl || missing+=(curl)
# make: the corsair binary's allocator (tikv-jemalloc-sys) builds jemalloc with its Makefile.
have make || missing+=(make)
# The PostgreSQL origin source's test starts a server from /usr/lib/postgresql/*/bin.
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (needed by the real-browser, shared-cache and PostgreSQL tests)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # The smallest nginx with proxy_cache: nginx-light where Debian still ships it (bookworm).
  if [[ " ${missing[*]} " == *" nginx "* ]] && apt-cache show nginx-light >/dev/null 2>&1; then
    missing=("${missing[@]/#nginx/nginx-light}")
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --no-fail-fast: one run reports every failing test binary, not just the first.
cargo test --workspace --all-features --locked --no-fail-fast -- --show-output
