#!/usr/bin/env bash
# Make (or reuse) the rio-tiler reference tiles that crates/cli/tests/reference_tiles.rs
# compares `kiln tile` with.
#
#   scripts/make_reference_tiles.sh [--force]
#
# KILN_VENV     Python venv to create/reuse     (default: $HOME/.cache/kiln-venv)
# KILN_REF_DIR  where tiles + manifest.json go  (default: <repo>/tests/ref-cache, gitignored)
# KILN_DATA_DIR the shared GeoTIFFs             (default: <repo>/../shared/data)
# PYTHON        interpreter for the venv        (default: python3; 3.11 is what the pins were checked on)
#
# Quick when nothing changed: a stamp holding the hash of the generator script and the
# pinned requirements is written last, and a matching stamp skips all work.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venv="${KILN_VENV:-$HOME/.cache/kiln-venv}"
out="${KILN_REF_DIR:-$repo/tests/ref-cache}"
data="${KILN_DATA_DIR:-$repo/../shared/data}"
python="${PYTHON:-python3}"
force="${1:-}"

want="$(cat "$here/make_reference_tiles.py" "$here/make_jpeg_reference_blocks.py" "$here/make_fixtures.py" "$here/make_stats_reference.py" "$here/make_terrain_reference.py" "$here/py-requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ "$force" != "--force" ] && [ -f "$out/manifest.json" ] && [ -f "$out/jpeg/manifest.json" ] && [ -f "$out/fixtures/manifest.json" ] && [ -f "$out/fixtures/geokeys/manifest.json" ] && [ -f "$out/stats/dem_srtm30s_luxembourg_i16_lzw.json" ] && [ -f "$out/terrain/manifest.json" ] && [ -f "$out/.stamp" ] \
    && [ "$(cat "$out/.stamp")" = "$want" ]; then
    echo "reference tiles up to date in $out"
    exit 0
fi

if [ ! -d "$data" ]; then
    echo "error: test data not found at $data (set KILN_DATA_DIR)" >&2
    exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "creating venv $venv"
    "$python" -m venv "$venv"
fi
# Reinstall only when the pins change; wheels only, so no system GDAL is ever needed.
req_want="$(sha256sum < "$here/py-requirements.txt" | cut -d' ' -f1)"
req_stamp="$venv/.kiln-requirements.sha256"
if [ "$(cat "$req_stamp" 2>/dev/null || true)" != "$req_want" ]; then
    "$venv/bin/python" -m pip install --quiet --only-binary=:all: -r "$here/py-requirements.txt"
    echo "$req_want" > "$req_stamp"
fi

mkdir -p "$out"
# A half-finished run must not look finished: drop the stamp and manifest first, so the
# test reports missing references instead of reading a mix of old and new tiles.
rm -f "$out/.stamp" "$out/manifest.json"
"$venv/bin/python" "$here/make_reference_tiles.py" --repo "$repo" --data-dir "$data" --out "$out"
# GDAL-decoded JPEG blocks for crates/cog/tests/jpeg_gdal.rs.
"$venv/bin/python" "$here/make_jpeg_reference_blocks.py" --data-dir "$data" --out "$out/jpeg"
# Small GeoTIFFs for the families the shared data lacks, for crates/cog/tests/fixtures.rs.
"$venv/bin/python" "$here/make_fixtures.py" --data-dir "$data" --out "$out/fixtures"
# numpy statistics of shared files, for crates/engine/tests/stats.rs.
"$venv/bin/python" "$here/make_stats_reference.py" --data-dir "$data" --out "$out/stats"
# DEM fixtures, rio-rgbify Terrain-RGB tiles and gdaldem hillshades for the terrain tests
# (also runs Debian's gdalwarp / gdal_translate / gdaldem).
"$venv/bin/python" "$here/make_terrain_reference.py" --data-dir "$data" --out "$out/terrain"
echo "$want" > "$out/.stamp"
