#!/usr/bin/env bash
# Kiln vs Terracotta vs TiTiler, side by side, in one sitting (issues #3, #14).
#
# usage: [SETS="global utm"] bench/run.sh [CONFIG...]
#   SETS (default "global"): the data sets, each run through every CONFIG in turn (set by set):
#     global  ETOPO5 DEM + Blue Marble RGB, EPSG:4326 (DEM_SRC/RGB_SRC), datasets "dem", "rgb",
#             in $DATA (default $ANCHORS/data)
#     utm     a UTM 37N DEM (SRTM 3" Turkey warped, bilinear, 90 m) + Landsat 8 scene 224077,
#             UTM 21N, bands 4/3/2 uint16 (bench/prepare_utm.sh), datasets "utm-dem",
#             "utm-rgb", in $DATA_UTM (default $ANCHORS/data-utm)
#   CONFIG (default: tc-gunicorn tt-nodelay-2w tt-nodelay-4w kiln kiln-health tc-gunicorn-nearest)
#     tc-gunicorn          Terracotta 0.10, gunicorn 2*cores+1 sync workers, defaults    (CONCS)
#     tt-nodelay-2w        TiTiler 2.4, uvicorn --workers 2 + TCP_NODELAY fix            (CONCS)
#     kiln                 kiln serve, defaults (nearest), Terracotta's URLs tc-dem/tc-rgb (CONCS)
#     kiln-health          /health latency while kiln is saturated (health_under_load.sh)
#     tt-health            the same for TiTiler's /healthz (for comparison)
#     tc-gunicorn-nearest  Terracotta with nearest reprojection+resampling (matched to kiln)  (EXTRA_CONCS)
#     kiln-bilinear        kiln with &resampling=bilinear (matched to tc-gunicorn)            (EXTRA_CONCS)
#     tt-nodelay-4w        TiTiler with 4 uvicorn workers (the best DEM worker count)      (CONCS)
#     tt-nodelay-1w        TiTiler with 1 worker                                          (EXTRA_CONCS)
#
# Environment (all optional):
#   ANCHORS      venvs + data + results (default $HOME/.cache/kiln-anchors, ../shared/bench/env.sh)
#   DATA         the global set's data dir (default $ANCHORS/data; made here if missing)
#   DATA_UTM     the utm set's data dir (default $ANCHORS/data-utm; made here if missing)
#   OUT          results .jsonl (default $ANCHORS/results/kiln-vs-anchors-DATE.jsonl); calib and
#                /health lines go to ${OUT%.jsonl}.extra.jsonl (the shared summarize.py
#                reads only wrk/curl lines), and so do Kiln's cache counters around each of
#                its wrk runs ("cache" lines, bench/wrk-shim/wrk)
#   CONCS        "1 8 64"   DURATION 20s   EXTRA_CONCS "8 64"   BASE_PORT 8200
#   DEM_SRC RGB_SRC  the global set's sources (default ../shared/data ETOPO5 and Blue Marble;
#                any raster: prepare_global.sh crops only what reaches past lat +-85.0511)
#   TILES_OVERZOOM 4  TILES_MAX 250000   (global cold lists; long enough that kiln does not wrap)
#   UTM_OVERZOOM_DEM 6  UTM_OVERZOOM_RGB 5  UTM_TILES_MAX 250000  (utm cold lists: 159 k DEM
#                tiles z8-z17, 187 k RGB tiles z10-z18; see README)
#   KILN         kiln binary (default: build with cargo into $CARGO_TARGET_DIR/release/kiln)
#   SKIP_BUILD=1 use $KILN as it is;  HEALTH_N 200 (curl /health requests under load)
#   QUIET_WAIT 120 (s bench.sh waits for other CPU users to stop before each run; then marks it)
# Every wrk run is bounded by DURATION, every curl loop is a fixed count, servers bind
# 127.0.0.1 only and are stopped by their process-group id.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
SHARED="$(cd "$REPO/../shared/bench" && pwd)"
# shellcheck source=/dev/null
source "$SHARED/env.sh"
SETS="${SETS:-global}"
DATA_GLOBAL="${DATA:-$ANCHORS/data}"
DATA_UTM="${DATA_UTM:-$ANCHORS/data-utm}"
OUT="${OUT:-$ANCHORS/results/kiln-vs-anchors-$(date -u +%Y%m%d-%H%M%S).jsonl}"
EXTRA="${OUT%.jsonl}.extra.jsonl"
CONCS="${CONCS:-1 8 64}"; DURATION="${DURATION:-20s}"; EXTRA_CONCS="${EXTRA_CONCS:-8 64}"
PORT="${BASE_PORT:-8200}"
DEM_SRC="${DEM_SRC:-$REPO/../shared/data/global_etopo5_i16_cog.tif}"
RGB_SRC="${RGB_SRC:-$REPO/../shared/data/global_bluemarble_5400x2700_rgb_jpeg_tiled.tif}"
CONFIGS=("$@")
[ ${#CONFIGS[@]} -eq 0 ] && CONFIGS=(tc-gunicorn tt-nodelay-2w tt-nodelay-4w kiln kiln-health tc-gunicorn-nearest)
export PYTHON="${PYTHON:-$VENV_TC/bin/python}"   # validate.py checks tiles with Pillow
# bench.sh waits (at most this many s) for other processes to go quiet before each run
export QUIET_WAIT="${QUIET_WAIT:-120}"
mkdir -p "$(dirname "$OUT")" "$ANCHORS/run"
touch "$OUT" "$EXTRA"

say() { printf '\n### %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }
calib() { "$SHARED/calib.sh" "$1" | tee -a "$EXTRA"; }

# 1. anchors: tools, venvs, data, tile lists (each step skipped when already there)
if ! command -v wrk >/dev/null || [ ! -x "$VENV_TC/bin/gunicorn" ] || [ ! -x "$VENV_TT/bin/uvicorn" ]; then
  say "setup.sh (apt + venvs in $ANCHORS)"; "$SHARED/setup.sh"
fi
# select_set NAME: DATA, PFX (dataset name prefix), tile-list settings; prepare_set makes the
# data and tile lists when missing (each step skipped when already there)
select_set() {
  case "$1" in
    global) DATA="$DATA_GLOBAL"; PFX=""; OZ_DEM="${TILES_OVERZOOM:-4}"; OZ_RGB="${TILES_OVERZOOM:-4}"
            TMAX="${TILES_MAX:-250000}" ;;
    utm)    DATA="$DATA_UTM"; PFX="utm-"; OZ_DEM="${UTM_OVERZOOM_DEM:-6}"; OZ_RGB="${UTM_OVERZOOM_RGB:-5}"
            TMAX="${UTM_TILES_MAX:-250000}" ;;
    *) echo "unknown set $1 (global, utm)" >&2; return 1 ;;
  esac
}
prepare_set() {
  if [ ! -f "$DATA/tc.sqlite" ] || [ ! -f "$DATA/stats.json" ]; then
    if [ "$1" = global ]; then
      say "prepare_global.sh (crop + ../shared/bench/prepare_data.sh) -> $DATA"
      "$HERE/prepare_global.sh" "$DEM_SRC" "$RGB_SRC" "$DATA"
    else
      say "prepare_utm.sh (gdalwarp / gdalbuildvrt + prepare_global.sh) -> $DATA"
      "$HERE/prepare_utm.sh" "$DATA"
    fi
  fi
  local ds src oz
  for ds in dem rgb; do
    src="$DATA/dem_1.tif"; oz=$OZ_DEM; [ $ds = rgb ] && { src="$DATA/rgb.tif"; oz=$OZ_RGB; }
    if [ ! "$DATA/tiles-$ds-cold.txt" -nt "$src" ]; then
      say "tile lists $1 $ds (overzoom $oz, max $TMAX)"
      "$VENV_TC/bin/python" "$HERE/make_tiles_global.py" "$src" "$DATA/tiles-$ds" \
        --overzoom "$oz" --max "$TMAX"
    fi
  done
}
for set in $SETS; do select_set "$set"; prepare_set "$set"; done

# 2. kiln release binary, 3. kiln catalog with Terracotta's keys (name, band)
need_kiln=0
for c in "${CONFIGS[@]}"; do case "$c" in kiln*) need_kiln=1 ;; esac; done
if [ $need_kiln = 1 ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiln-target}"
  KILN="${KILN:-$CARGO_TARGET_DIR/release/kiln}"
  if [ -z "${SKIP_BUILD:-}" ]; then
    say "cargo build --release --locked -p kiln-cli ($(git -C "$REPO" log -1 --format='%h %s' | cut -c1-70))"
    (cd "$REPO" && cargo build --release --locked -p kiln-cli)
  fi
  echo "kiln: $KILN ($(stat -c %y "$KILN" | cut -c1-19))"
  for set in $SETS; do
    select_set "$set"
    say "kiln ingest -> $DATA/kiln.sqlite"
    rm -f "$DATA/kiln.sqlite"
    "$KILN" ingest "$DATA/{name}_{band}.tif" -o "$DATA/kiln.sqlite"
    echo "terracotta's keys: $(sqlite3 "$DATA/tc.sqlite" 'select group_concat(key_name, ",") from (select key_name from key_names order by idx)' 2>/dev/null)"
  done
fi

# 4. one server at a time: start, bench (same tile lists, wrk settings, durations), stop
anchor() {  # label kind workers "ENV=.." tdem trgb concs
  local label=$1 kind=$2 w=$3 envs=$4 tdem=$5 trgb=$6 concs=$7
  PORT=$((PORT + 1)); calib "before $label ($SET)"
  say "$label ($kind, workers=${w:-default}, env: ${envs:-none}, set $SET) port $PORT"
  # shellcheck disable=SC2086  # $envs: VAR=value words, $w: empty or a number
  env $envs "$SHARED/serve.sh" "$kind" "$PORT" "$DATA" $w \
    || { echo "!!! $label did not start"; "$SHARED/stop.sh" "$kind" "$PORT"; return 0; }
  "$HERE/bench_set.sh" "$label" "http://127.0.0.1:$PORT" "$DATA" "$PFX" "$tdem" "$trgb" "$OUT" "$concs" "$DURATION" \
    || echo "!!! $label failed"
  "$SHARED/stop.sh" "$kind" "$PORT"; sleep 2
}
KPID=""
kiln_start() {
  PORT=$((PORT + 1))
  local log="$ANCHORS/run/kiln-$PORT.log"
  setsid "$KILN" serve -d "$DATA/kiln.sqlite" --port "$PORT" --host 127.0.0.1 >"$log" 2>&1 </dev/null &
  KPID=$!
  for _ in $(seq 1 120); do
    if curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/health"; then
      echo "started kiln on $PORT (pgid $KPID) log $log"; return 0
    fi
    kill -0 "$KPID" 2>/dev/null || { echo "kiln died:"; tail -n 20 "$log"; return 1; }
    sleep 0.5
  done
  echo "kiln did not come up"; tail -n 20 "$log"; return 1
}
kiln_stop() {
  [ -n "$KPID" ] || return 0
  kill -TERM -- "-$KPID" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 -- "-$KPID" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$KPID" 2>/dev/null || true
  echo "stopped kiln (pgid $KPID)"; KPID=""; sleep 2
}
trap kiln_stop EXIT
kiln() {  # label tdem trgb concs
  local label=$1 tdem=$2 trgb=$3 concs=$4
  calib "before $label ($SET)"; say "$label (kiln serve, set $SET) tdem=$tdem"
  kiln_start || { echo "!!! $label did not start"; return 0; }
  # bench/wrk-shim/wrk records /health's cache counters around each wrk run into $EXTRA
  PATH="$HERE/wrk-shim:$PATH" KILN_CACHE_LOG="$EXTRA" \
    "$HERE/bench_set.sh" "$label" "http://127.0.0.1:$PORT" "$DATA" "$PFX" "$tdem" "$trgb" "$OUT" "$concs" "$DURATION" \
    || echo "!!! $label failed"
  kiln_stop
}
tpl() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$SHARED/templates.txt"; }
health() {  # kiln | tt : /health latency while the server serves 64 connections of cold DEM tiles
  local who=$1 label tdem hp
  if [ "$who" = kiln ]; then label=kiln; tdem=tc-dem; hp=/health
  else label=tt-nodelay-2w; tdem=tt-dem; hp=/healthz; fi
  calib "before $who-health"; say "$who-health: $hp while $label serves 64 connections of cold DEM tiles"
  if [ "$who" = kiln ]; then
    kiln_start || { echo "!!! kiln-health did not start"; return 0; }
  else
    PORT=$((PORT + 1))
    "$SHARED/serve.sh" tt-uvicorn-nodelay "$PORT" "$DATA" 2 \
      || { echo "!!! tt-health did not start"; "$SHARED/stop.sh" tt-uvicorn-nodelay "$PORT"; return 0; }
  fi
  local paths; paths="$(mktemp)"
  python3 "$SHARED/make_paths.py" "$DATA/tiles-dem-cold.txt" "$tdem" "$DATA" > "$paths"
  # start where this server's cold DEM bench runs stopped, so the load meets new tiles
  local off
  off=$(python3 - "$OUT" "$label/dem" <<'PY'
import json, sys
end = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("server") == sys.argv[2] and d.get("mode") == "cold" and "offset" in d:
        end = max(end, d["offset"] + d["requests"] + 64)
print(end)
PY
)
  HEALTH_PATH=$hp "$HERE/health_under_load.sh" "$label" "http://127.0.0.1:$PORT" "$paths" "$EXTRA" \
    "${HEALTH_N:-200}" 64 "$off" || echo "!!! $who-health failed"
  rm -f "$paths"
  if [ "$who" = kiln ]; then kiln_stop; else "$SHARED/stop.sh" tt-uvicorn-nodelay "$PORT"; sleep 2; fi
}

say "results -> $OUT (+ $EXTRA); sets: $SETS; configs: ${CONFIGS[*]}; CONCS=$CONCS DURATION=$DURATION"
for SET in $SETS; do
  select_set "$SET"
  for c in "${CONFIGS[@]}"; do
    case "$c" in
      kiln-health|tt-health)
        # /health under load is measured on the global set only
        [ "$SET" = global ] || { echo "($c: global set only, skipped for $SET)"; continue; } ;;
    esac
    case "$c" in
      tc-gunicorn)         anchor "$c" tc-gunicorn "" "" tc-dem tc-rgb "$CONCS" ;;
      tt-nodelay-2w)       anchor "$c" tt-uvicorn-nodelay 2 "" tt-dem tt-rgb "$CONCS" ;;
      tt-nodelay-1w)       anchor "$c" tt-uvicorn-nodelay 1 "" tt-dem tt-rgb "$EXTRA_CONCS" ;;
      tt-nodelay-4w)       anchor "$c" tt-uvicorn-nodelay 4 "" tt-dem tt-rgb "$CONCS" ;;
      tc-gunicorn-nearest) anchor "$c" tc-gunicorn "" "TC_RESAMPLING_METHOD=nearest TC_REPROJECTION_METHOD=nearest" \
                             tc-dem tc-rgb "$EXTRA_CONCS" ;;
      kiln)                kiln "$c" tc-dem tc-rgb "$CONCS" ;;
      kiln-bilinear)       kiln "$c" "$(tpl tc-dem)&resampling=bilinear" "$(tpl tc-rgb)&resampling=bilinear" "$EXTRA_CONCS" ;;
      kiln-health)         health kiln ;;
      tt-health)           health tt ;;
      *) echo "unknown config $c" >&2 ;;
    esac
  done
done
calib "end"

# 6. tables, ratios, aims
say "summary"
python3 "$HERE/summarize.py" "$OUT" "$EXTRA" | tee "${OUT%.jsonl}.md"
echo "results: $OUT  $EXTRA  ${OUT%.jsonl}.md"
