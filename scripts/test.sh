#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the browsers the end-to-end tests drive
# (Debian's chromium and firefox-esr) when they are missing, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v firefox-esr >/dev/null 2>&1 || missing+=(firefox-esr)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (needed by the real-browser tests)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo test --workspace --all-features --locked -- --show-output
