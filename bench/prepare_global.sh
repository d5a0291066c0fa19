#!/usr/bin/env bash
# ../shared/bench/prepare_data.sh for global EPSG:4326 sources: crop to Web Mercator first.
# usage: prepare_global.sh SINGLEBAND_SRC RGB_SRC OUT_DIR
# A raster whose bounds reach latitude +-90 makes Terracotta's /rgb fail on every tile
# (mercantile: "Y can not be computed: lat=90.0", HTTP 500), and no Web Mercator tile shows
# those rows anyway. So both sources are cropped (a VRT, no resampling: -projwin snaps to
# source pixels) to latitudes +-85.0511 and the crops go through the shared prepare_data.sh
# unchanged. Every server then reads the same cropped COGs.
set -euo pipefail
SHARED="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../shared/bench" && pwd)"
SB="$1"; RGB="$2"; OUT="$3"
mkdir -p "$OUT/src"
crop() {  # src dst.vrt
  if gdalsrsinfo -o epsg "$1" 2>/dev/null | grep -q 'EPSG:4326'; then
    gdal_translate -q -of VRT -projwin -180 85.0511 180 -85.0511 "$(realpath "$1")" "$2"
  else
    gdal_translate -q -of VRT "$(realpath "$1")" "$2"
  fi
}
crop "$SB" "$OUT/src/singleband.vrt"
crop "$RGB" "$OUT/src/rgb.vrt"
"$SHARED/prepare_data.sh" "$OUT/src/singleband.vrt" "$OUT/src/rgb.vrt" "$OUT"
printf 'cropped to lat +-85.0511 from: %s, %s\n' "$(realpath "$SB")" "$(realpath "$RGB")" >> "$OUT/SOURCE.txt"
