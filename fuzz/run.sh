#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) on the nightly toolchain, from the
# small seed corpora in fuzz/seeds/ (new inputs go to a scratch folder, so git stays
# small). A crash leaves its input in fuzz/artifacts/<target>/ and fails the run: turn it
# into a regular test, then fix it.
#   fuzz/run.sh [SECONDS]
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null || { echo "cargo install cargo-fuzz" >&2; exit 2; }
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cargo +nightly fuzz build -O
for target in respond manifests zone_builder; do
    mkdir -p "$scratch/$target" "artifacts/$target"
    echo "== $target: ${seconds}s"
    # zone_builder takes structured input (arbitrary) and has no seed folder.
    seeds=()
    [ -d "seeds/$target" ] && seeds=("seeds/$target")
    cargo +nightly fuzz run -O "$target" "$scratch/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 2>&1 |
        grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec|panicked|ERROR' || true
    test "${PIPESTATUS[0]}" -eq 0 || { echo "$target failed: see fuzz/artifacts/$target" >&2; exit 1; }
done
