#!/usr/bin/env bash
# ../shared/bench/prepare_data.sh for any source raster: geographic sources that reach past
# Web Mercator's latitude limit are cropped to it first.
# usage: prepare_global.sh SINGLEBAND_SRC RGB_SRC OUT_DIR
#   (RGB_BANDS, RGB_NODATA, DEM_NODATA pass through to prepare_data.sh; CROP_ONLY=1 stops
#   after writing OUT_DIR/src/{singleband,rgb}.vrt)
# A raster whose bounds reach latitude +-90 makes Terracotta's /rgb fail on every tile
# (mercantile: "Y can not be computed: lat=90.0", HTTP 500), and no Web Mercator tile shows
# those rows anyway. So a geographic source whose latitudes reach past +-85.0511 is cropped
# (a VRT of whole source rows, no resampling) to the intersection of its own
# bounds with latitudes +-85.0511; a geographic source inside that band, and any projected
# source, is only wrapped in a VRT (no crop). The crops go through the shared
# prepare_data.sh unchanged; every server then reads the same COGs.
# (Before 2026-12-07 every EPSG:4326 source was cropped to the whole world, x -180..180: a
# regional 3" DEM became a 432000x204000 px VRT. For ETOPO5 and Blue Marble the crop is the
# same as then: 4320x2041 and 5400x2552 px.)
set -euo pipefail
SHARED="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../shared/bench" && pwd)"
# shellcheck source=/dev/null
source "$SHARED/env.sh"
SB="$1"; RGB="$2"; OUT="$3"
MAX_LAT=85.0511
mkdir -p "$OUT/src"
NOTES=()
# The -srcwin (xoff yoff xsize ysize) that crops SRC, or nothing when SRC needs no crop.
# rasterio (venv-tc, which prepare_data.sh needs anyway) tells geographic from projected.
# All columns; rows cut at the latitude limit are rounded as gdal_translate rounds a -projwin
# (GDAL 3.6, nearest: offset floor(v + 0.001), size floor(v + 0.5)), so a source cut on both
# sides (ETOPO5, Blue Marble) gets exactly the window of `-projwin WEST 85.0511 EAST -85.0511`,
# as before; a side that is not cut keeps all its rows. A south-up source (positive y pixel
# size, where -projwin fails) is handled the same way, counted from its southern row 0.
crop_window() {
  "$VENV_TC/bin/python" - "$1" "$MAX_LAT" <<'PY'
import math, sys
import rasterio
path, lim = sys.argv[1], float(sys.argv[2])
with rasterio.open(path) as src:
    crs, t, w, h = src.crs, src.transform, src.width, src.height
if crs is None or not crs.is_geographic or t.b != 0 or t.d != 0:
    sys.exit(0)          # projected, no CRS, or rotated: leave it alone
y0, y1 = t.f, t.f + t.e * h   # latitude of row 0's edge and of the last row's far edge
south, north = min(y0, y1), max(y0, y1)
if south >= -lim and north <= lim:
    sys.exit(0)
n, s = min(north, lim), max(south, -lim)
# first_cut / last_cut: is the edge at row 0 / at the last row cut at the latitude limit?
first_cut, last_cut = (north > lim, south < -lim) if t.e < 0 else (south < -lim, north > lim)
start = ((n if t.e < 0 else s) - y0) / t.e   # row of the first kept edge
off = max(0, math.floor(start + 0.001)) if first_cut else 0
size = min(h - off, math.floor((n - s) / abs(t.e) + 0.5)) if last_cut else h - off
print(0, off, w, size, f"(lat {s:.6f}..{n:.6f})")
PY
}
crop() {  # src dst.vrt
  local win
  win="$(crop_window "$1")"
  if [ -n "$win" ]; then
    # shellcheck disable=SC2086  # four numbers
    gdal_translate -q -of VRT -srcwin ${win%% (*} "$(realpath "$1")" "$2"
    NOTES+=("$(basename "$1"): cropped, -srcwin $win -> $(gdalinfo "$2" | sed -n 's/^Size is //p' | tr -d ' ') px")
  else
    gdal_translate -q -of VRT "$(realpath "$1")" "$2"
    NOTES+=("$(basename "$1"): no crop (projected, or inside lat +-$MAX_LAT)")
  fi
}
crop "$SB" "$OUT/src/singleband.vrt"
crop "$RGB" "$OUT/src/rgb.vrt"
printf '%s\n' "${NOTES[@]}"
[ -n "${CROP_ONLY:-}" ] && exit 0   # CROP_ONLY=1: just the VRTs in OUT_DIR/src (a check)
"$SHARED/prepare_data.sh" "$OUT/src/singleband.vrt" "$OUT/src/rgb.vrt" "$OUT"
printf 'from: %s, %s\n' "$(realpath "$SB")" "$(realpath "$RGB")" >> "$OUT/SOURCE.txt"
printf '%s\n' "${NOTES[@]}" >> "$OUT/SOURCE.txt"
