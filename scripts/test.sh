#!/usr/bin/env bash
# The whole test suite: makes the rio-tiler reference tiles (cached, in a venv), then runs
# every Rust test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiln-target}"
bash scripts/make_reference_tiles.sh
cargo test --workspace --locked
