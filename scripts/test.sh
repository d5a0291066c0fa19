#!/usr/bin/env bash
# The whole test suite: makes the rio-tiler reference tiles, JPEG blocks and fixtures (cached,
# in a venv), then runs every Rust test in the workspace and prints one closing count.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiln-target}"
bash scripts/make_reference_tiles.sh
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# cargo prints one result line per test binary, the last one usually a doc-test run with
# nothing in it; sum them so the closing line tells how many tests ran.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1); if ($i ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "\nworkspace: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
