#!/usr/bin/env python3
"""Run ../shared/bench/make_tiles.py on rasters that reach the poles.

usage: make_tiles_global.py COG OUT_PREFIX [make_tiles.py options...]

make_tiles.py projects the raster's footprint to Web Mercator; for a global
EPSG:4326 raster (latitudes up to +-90) PROJ either fails ("webmerc: Invalid
latitude") or returns huge northings, which gives negative tile rows, and a
footprint reaching past +-180 deg gives columns -1 or 2^z. Web Mercator stops at
+-85.0511 deg anyway, so this wrapper clamps geographic footprints to just inside
that square before the transform and otherwise runs the shared script unchanged
(same tile selection, seed and output format).
"""
import os
import runpy
import sys

import rasterio.warp
from rasterio.crs import CRS

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench", "make_tiles.py"))
# a hair inside the Web Mercator square, so the footprint's tile range stays in 0..2^z-1
MAX_LAT = 85.0511
MAX_LON = 179.99999

_transform = rasterio.warp.transform


def clamped_transform(src_crs, dst_crs, xs, ys, *args, **kwargs):
    if CRS.from_user_input(src_crs).is_geographic and CRS.from_user_input(dst_crs) == CRS.from_epsg(3857):
        xs = [max(-MAX_LON, min(MAX_LON, x)) for x in xs]
        ys = [max(-MAX_LAT, min(MAX_LAT, y)) for y in ys]
    return _transform(src_crs, dst_crs, xs, ys, *args, **kwargs)


# make_tiles.py does `from rasterio.warp import transform as wtransform` at import time,
# so patching the module attribute before running it is enough.
rasterio.warp.transform = clamped_transform
sys.argv = [SHARED] + sys.argv[1:]
runpy.run_path(SHARED, run_name="__main__")
