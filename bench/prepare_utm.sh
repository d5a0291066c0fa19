#!/usr/bin/env bash
# The "utm" set of bench/run.sh: a projected DEM and a projected RGB scene, made reproducibly
# from ../shared/data, then through prepare_global.sh (no crop: both are projected) and the
# shared prepare_data.sh like the global set.
# usage: prepare_utm.sh OUT_DIR
#   OUT_DIR/src/dem-utm37n-90m.tif  the SRTM 3" Turkey piece (EPSG:4326, int16, 4-row strips,
#       1000x1000 px, 40-40.83E 39.17-40N) warped to its UTM zone, 37N, as a user with a
#       national grid would serve it:
#         gdalwarp -t_srs EPSG:32637 -r bilinear -tr 90 90 -tap -srcnodata -32768 \
#           -dstnodata -32768 -ot Int16 -co TILED=YES -co COMPRESS=DEFLATE SRC DST
#       (90 m is the source's ~3" = 93 m x 71 m cell; -tap aligns the grid to multiples of 90 m)
#   OUT_DIR/src/rgb-l8-224077-utm21n.vrt  Landsat 8 scene 224077, UTM 21N, 30 m, uint16,
#       2006x1515 px, bands 4 3 2 (red green blue) of three single-band files:
#         gdalbuildvrt -separate -srcnodata 0 -vrtnodata 0 DST B4 B3 B2
#       The files declare no nodata; the scene's collar (2.4 % of the pixels, the same in
#       every band) is 0, so RGB_NODATA=0 goes to prepare_data.sh as well.
# Environment: UTM_DEM_SRC, UTM_DEM_EPSG (32637), UTM_DEM_RES (90), UTM_RGB_DIR + UTM_RGB_SCENE
# (…/img_l8_224077_utm21n) to derive from other files.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRCDATA="$(cd "$HERE/../../shared/data" && pwd)"
OUT="$1"
DEM_SRC="${UTM_DEM_SRC:-$SRCDATA/dem_srtm3s_turkey_i16_striped.tif}"
EPSG="${UTM_DEM_EPSG:-32637}"; RES="${UTM_DEM_RES:-90}"
SCENE="${UTM_RGB_DIR:-$SRCDATA}/${UTM_RGB_SCENE:-img_l8_224077_utm21n}"
mkdir -p "$OUT/src"
DEM="$OUT/src/dem-utm${EPSG#326}n-${RES}m.tif"
RGB="$OUT/src/rgb-$(basename "$SCENE" | sed 's/^img_//; s/_/-/g').vrt"
gdalwarp -q -overwrite -t_srs "EPSG:$EPSG" -r bilinear -tr "$RES" "$RES" -tap \
  -srcnodata -32768 -dstnodata -32768 -ot Int16 -co TILED=YES -co COMPRESS=DEFLATE \
  "$DEM_SRC" "$DEM"
gdalbuildvrt -q -overwrite -separate -srcnodata 0 -vrtnodata 0 "$RGB" \
  "${SCENE}_b4_u16.tif" "${SCENE}_b3_u16.tif" "${SCENE}_b2_u16.tif"
for f in "$DEM" "$RGB"; do
  echo "$(basename "$f"): $(gdalinfo "$f" | sed -n 's/^Size is //p'), $(gdalsrsinfo -o epsg "$f" | tr -d '\n')"
done
RGB_NODATA=0 "$HERE/prepare_global.sh" "$DEM" "$RGB" "$OUT"
{
  echo "utm set (bench/prepare_utm.sh):"
  echo "  dem: gdalwarp -t_srs EPSG:$EPSG -r bilinear -tr $RES $RES -tap -srcnodata -32768 -dstnodata -32768 -ot Int16 $(realpath "$DEM_SRC")"
  echo "  rgb: gdalbuildvrt -separate -srcnodata 0 -vrtnodata 0 ${SCENE}_b{4,3,2}_u16.tif; RGB_NODATA=0"
  echo "  $(gdalinfo --version)"
} >> "$OUT/SOURCE.txt"
