#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer): runs each target of fuzz/ for SECONDS
# (default 600), one after another, and prints the executions of each. Needs a nightly toolchain
# and cargo-fuzz; where either is missing it says so and exits 0.
#
#   bash scripts/fuzz.sh [SECONDS]             every target
#   FUZZ_TARGETS="server browser" bash scripts/fuzz.sh 60
#
# The committed seeds in fuzz/corpus/<target> are read, never written: what libFuzzer finds goes
# to fuzz/target/corpus-work/<target>, crashes to fuzz/artifacts/<target>. A crash is a bug:
# minimize it (cargo +nightly fuzz tmin <target> <file>), add it to fuzz/corpus/<target>, fix it.
# The stable test crates/corsair/tests/fuzz_corpus.rs replays every committed corpus file.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
targets=${FUZZ_TARGETS:-request_origin request_headers server browser policy_file}

if ! command -v rustup >/dev/null 2>&1 || ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: skipped: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: skipped: cargo-fuzz is not installed (cargo install cargo-fuzz)"
  exit 0
fi

# One build of every target (`cargo fuzz run` would rebuild with other debug settings), then
# each binary runs directly, as `cargo fuzz run` does.
echo "== cargo +nightly fuzz build"
if ! cargo +nightly fuzz build -O; then
  echo "fuzz: the targets do not build"
  exit 1
fi
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
failed=()
for t in $targets; do
  work="fuzz/target/corpus-work/$t"
  log="fuzz/target/fuzz-$t.log"
  mkdir -p "$work" "fuzz/artifacts/$t"
  echo "== fuzz $t for ${secs}s"
  if "fuzz/target/$triple/release/$t" "$work" "fuzz/corpus/$t" -artifact_prefix="fuzz/artifacts/$t/" \
      -max_total_time="$secs" -max_len=9000 -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -ao 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -1)
    cov=$(grep -ao 'cov: [0-9]*' "$log" | tail -1)
    echo "$t: ${runs:-no summary} (${cov:-cov unknown}), corpus $(find "$work" -type f | wc -l) inputs"
  else
    echo "$t: FAILED, see $log"
    grep -aE 'panicked|SUMMARY|Test unit written' "$log" | head -5
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}"
  exit 1
fi
