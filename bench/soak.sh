#!/usr/bin/env bash
# Memory soak: does `kiln serve` stay within its cache budgets under a long cold load?
#
# usage: bench/soak.sh [DURATION]        (default 120s)
#
# For two configurations, the defaults (tile cache 256 MB, block cache 512 MB) and small
# budgets (16 MB and 32 MB), serves the global ETOPO5 DEM (../shared/data) and runs wrk with 64
# connections for DURATION over a shuffled list of 1,000,000 distinct colormapped PNG tiles
# (zooms 0-10: more than a 2-minute run reaches and far more than either cache holds, so both
# caches fill and evict the whole time).
# The server's resident memory is sampled every 0.5 s from /proc; the peak is reported against
# the budgets plus the 200 MB allowance of issue #12 (runtime, allocator, pools, code).
#
# Environment: KILN (binary; default: cargo build --release into $CARGO_TARGET_DIR),
# SKIP_BUILD=1, PORT (default 8390), TILES_MAX (default 1000000), OUT (results .jsonl; default
# bench/results/soak-DATE.jsonl). Loopback only; wrk stops after DURATION, the server after it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
DURATION="${1:-120s}"
PORT="${PORT:-8390}"
TILES_MAX="${TILES_MAX:-1000000}"
DATA="$REPO/../shared/data"
OUT="${OUT:-$HERE/results/soak-$(date -u +%Y%m%d-%H%M%S).jsonl}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiln-target}"
KILN="${KILN:-$CARGO_TARGET_DIR/release/kiln}"
ALLOWANCE_MB=200

command -v wrk >/dev/null || {
  echo "installing wrk (Debian)"
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq wrk; else sudo apt-get install -y -qq wrk; fi
}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$REPO" && cargo build --release --locked -p kiln-cli --quiet)
fi
[ -x "$KILN" ] || { echo "error: no kiln binary at $KILN" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Distinct tiles of the whole world, zooms 0..10, shuffled with a fixed seed: every one is
# rendered from the DEM (ETOPO5 covers the globe), none repeats within TILES_MAX.
python3 - "$TILES_MAX" >"$work/paths.txt" <<'PY'
import random, sys
n = int(sys.argv[1])
tiles = [(z, x, y) for z in range(11) for x in range(2 ** z) for y in range(2 ** z)]
random.Random(42).shuffle(tiles)
q = "colormap=terrain&stretch_range=[-8000,6000]"
for z, x, y in tiles[:n]:
    print(f"/singleband/etopo5/{z}/{x}/{y}.png?{q}")
PY
ln -s "$DATA/global_etopo5_i16_cog.tif" "$work/etopo5.tif"

run() { # label tile_mb block_mb
  local label=$1 tile_mb=$2 block_mb=$3
  KILN_TILE_CACHE_MB=$tile_mb KILN_BLOCK_CACHE_MB=$block_mb \
    "$KILN" serve -r "$work/{name}.tif" --host 127.0.0.1 --port "$PORT" \
    >"$work/server.out" 2>"$work/server.err" &
  local pid=$!
  for _ in $(seq 100); do
    grep -q "Kiln serving" "$work/server.out" 2>/dev/null && break
    sleep 0.1
  done
  local start_kb
  start_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  : >"$work/rss.txt"
  ( while kill -0 "$pid" 2>/dev/null; do
      awk '/VmRSS/ {print $2}' "/proc/$pid/status" >>"$work/rss.txt" 2>/dev/null || true
      sleep 0.5
    done ) &
  local sampler=$!
  wrk -t 2 -c 64 -d "$DURATION" --timeout 30s -s "$REPO/../shared/bench/tiles.lua" \
    "http://127.0.0.1:$PORT" -- "$work/paths.txt" 0 2 "$label" >"$work/wrk.out" 2>&1 || true
  sleep 1
  local end_kb
  end_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  local peak_kb
  peak_kb=$(sort -n "$work/rss.txt" | tail -1)
  local result
  result=$(grep '^RESULT ' "$work/wrk.out" | sed 's/^RESULT //')
  [ -n "$result" ] || { echo "wrk gave no result:"; cat "$work/wrk.out"; result='{}'; }
  local budget=$((tile_mb + block_mb))
  local peak_mb=$((peak_kb / 1024))
  local verdict=within
  [ "$peak_mb" -le $((budget + ALLOWANCE_MB)) ] || verdict=OVER
  python3 - "$label" "$tile_mb" "$block_mb" "$start_kb" "$peak_kb" "$end_kb" "$verdict" "$result" "$DURATION" <<'PY' | tee -a "$OUT"
import json, sys
label, tile, block, start, peak, end, verdict, result, dur = sys.argv[1:]
r = json.loads(result)
print(json.dumps({
    "label": label, "duration": dur, "tile_cache_mb": int(tile), "block_cache_mb": int(block),
    "budget_mb": int(tile) + int(block), "allowance_mb": 200,
    "rss_start_mb": round(int(start) / 1024, 1), "rss_peak_mb": round(int(peak) / 1024, 1),
    "rss_end_mb": round(int(end) / 1024, 1), "verdict": verdict,
    "requests": r.get("requests"), "rps": r.get("rps"), "non200": r.get("non200"),
    "wrapped": r.get("wrapped"), "list_len": r.get("list_len"),
}))
PY
  echo "$label: peak RSS ${peak_mb} MB, budget ${budget} MB + ${ALLOWANCE_MB} MB: $verdict"
}

run defaults 256 512
run small 16 32
echo "results: $OUT"
