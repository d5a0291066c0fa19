#!/usr/bin/env python3
"""Terrain references: DEM fixtures, rio-rgbify Terrain-RGB tiles and gdaldem hillshades.

    ~/.cache/kiln-venv/bin/python scripts/make_terrain_reference.py --data-dir ../shared/data --out DIR

Run by scripts/make_reference_tiles.sh (into tests/ref-cache/terrain), which sets up the pinned
venv (scripts/py-requirements.txt, rio-rgbify included). Needs Debian's GDAL command line tools
(gdalwarp, gdal_translate, gdaldem) on PATH as well. Everything DIR gets is listed in
DIR/manifest.json (paths relative to DIR), written last; a run first deletes the old manifest,
so a half-finished run never looks finished. Output is deterministic: GeoTIFFs carry no
timestamps (GDAL writes none, PAM side files are off), rio-rgbify runs with one worker so the
MBTiles rows go in the same order, and no file records when it was made.

1. Void fixture `lux_void_i16.tif`: dem_srtm30s_luxembourg_i16_lzw.tif rewritten unchanged
   (georeferencing, int16, nodata -32768, LZW, its strip height, band description and tags)
   except for a VOID_SIZE x VOID_SIZE patch of valid pixels set to -32768. The patch is the
   window, among those with at least VOID_MARGIN valid pixels on every side, whose centre is
   nearest the centroid of the valid pixels (ties: smallest row, then column). The manifest
   gives its pixel window and its WGS 84 bounds (the file is in EPSG:4326).

2. Mixed CRS fixture `lux_utm32n_i16.tif`: the same Luxembourg DEM warped by gdalwarp to
   EPSG:32632 (UTM 32N), 500 m pixels on a grid aligned to 500 m (-tap), nearest, int16,
   nodata -32768, 256 px tiles, DEFLATE; the exact command is in the manifest. Tiles: XYZ
   WebMercatorQuad tiles at z10-z12 whose footprint (its UTM bounding box grown by
   UTM_TILE_MARGIN fixture pixels) holds only valid pixels ("inside": per zoom the one nearest
   the valid centroid, at z12 also the next two; no z10 tile fits inside Luxembourg, the
   manifest lists such zooms) and per zoom the tile whose footprint is closest to half valid
   ("edge"; at z12 also the next one). Each chosen tile also has rio-tiler's nearest
   256 px rendering of the fixture as .npy in make_reference_tiles.py's layout (the band, then
   a 255/0 mask plane, int16), with its valid fraction. The Rhine basin DEM
   (dem_rhine_basin_30s_f32_nodata.tif) is already the geographic float32 case; no copy here.

3. Terrain-RGB (Mapbox encoding) by PyPI rio-rgbify: `turkey_cog.tif` is
   dem_srtm3s_turkey_i16_striped.tif (no voids anywhere) made a COG by Debian's
   `gdal_translate -of COG -co BLOCKSIZE=512 -co COMPRESS=DEFLATE` (so it has one 500 x 500
   overview), then `rio rgbify -b -10000 -i 0.1 --min-z 9 --max-z 11 --format png -j 1
   turkey_cog.tif rgbify.mbtiles`. Every tile is extracted to `rgbify/{z}/{x}/{y}.png` with
   XYZ rows (MBTiles stores TMS rows: y = 2^z - 1 - tile_row). Per tile the manifest says
   whether its footprint lies inside the source (no nodata pixels; edge tiles have some), the
   decoded height range and GDAL's approximate scale factors (see below).

   What rio-rgbify 0.4.0 does (read from its source, mbtiler.py and encoders.py, and checked
   here where a run can show it):
   - Tiles are 512 x 512 px, always (the PNG profile and the warp buffer are hard-coded). The
     tile's extent is mercantile's Web Mercator bounds, transform.from_bounds(.., 512, 512).
   - Resampling: rasterio.warp.reproject(rasterio.band(src, 1), out, dst_crs=EPSG:3857,
     resampling=Resampling.bilinear). With rasterio 1.4.4 that is a GDALWarpOperation
     (ChunkAndWarpImage, one thread) with GDAL's approximate transformer (error threshold
     0.125 source pixel), INIT_DEST=NO_DATA and UNIFIED_SRC_NODATA=YES. The output array has
     the SOURCE dtype (int16 here), so the bilinear value is rounded to the nearest integer
     before encoding: heights in these tiles are whole metres. GDAL's bilinear is the plain
     4-sample formula only when both scale factors (destination pixels per source pixel) are
     >= 0.95 (gdalwarpkernel.cpp, bUse4SamplesFormula); below that (downsampling, here every
     z9 tile) GDAL widens the kernel to radius 1/scale source pixels. `gdal_scale` per tile is
     512 / (tile extent in source pixels), close to but not exactly GDAL's own figure.
   - Overviews: not used. The warper reads the full-resolution band it is given (rasterio 1.4
     does not go through gdalwarp's overview selection). Checked: at z7-z8, where every tile
     covers more than 2 source pixels per tile pixel (so gdalwarp -ovr AUTO would read the 2x
     overview), the COG and the striped original (no overviews) must give identical pixels.
   - Nodata: not handled by the encoder. The warp takes the source nodata (-32768) as its
     source and destination nodata, so pixels outside the source or bilinear-blended only from
     nodata come out as -32768 and are then encoded like any height: (-32768 + 10000) / 0.1 =
     -227680, wrapped mod 2^24 to rgb(252, 134, 160) (decodes to 1644953.6 m). There is no
     alpha and no transparent pixel. (A tile whose range exceeded 2^24 steps would raise.)
   - Rounding: v = (h - base) / interval in float64 (numpy), then B = trunc(frac(v / 256) * 256),
     G and R likewise from floor(v / 256) and floor(v / 65536): the stored value is floor(v)
     mod 2^24 (truncation, never round-to-nearest). For whole-metre heights in -11000..8999
     with base -10000 and interval 0.1, floor(v) equals round(v) -- the script checks this for
     every such height -- so each pixel decodes to its warped integer height exactly, up to the
     0.1 m float step.

4. Hillshade: `olinda_heights.npy` is dem_olinda_utm25s_f32.tif (UTM 25S, ~90 m pixels, no
   nodata) as float32 (H, W); `olinda_gdaldem_hs.npy` (uint8, (H, W)) is Debian gdaldem's
   `hillshade -az 315 -alt 45 -z 1 -compute_edges` of that file, and
   `olinda_gdaldem_hs_az135_alt30_z2.npy` the same with -az 135 -alt 30 -z 2 (Horn gradient,
   -s 1: metres horizontally and vertically). gdaldem marks 0 as the output's nodata; with
   -compute_edges no pixel is 0 here, the manifest records the counts.
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import warnings

import mercantile
import morecantile
import numpy as np
import rasterio
import rasterio.errors
import rasterio.warp
import rio_rgbify
import rio_tiler
from rasterio.windows import Window
from rio_rgbify.encoders import data_to_rgb
from rio_tiler.io import Reader

LUX = "dem_srtm30s_luxembourg_i16_lzw.tif"
TURKEY = "dem_srtm3s_turkey_i16_striped.tif"
OLINDA = "dem_olinda_utm25s_f32.tif"

NODATA = -32768
VOID_SIZE = 15  # side of the void patch, pixels
VOID_MARGIN = 5  # valid pixels required on every side of the patch

UTM_EPSG = 32632
UTM_RES = 500  # metres
UTM_ZOOMS = (10, 11, 12)
UTM_TILE_MARGIN = 2  # fixture pixels around an "inside" tile's footprint that must be valid
UTM_TILE_SIZE = 256

RGBIFY_BASE = -10000.0
RGBIFY_INTERVAL = 0.1
RGBIFY_MINZ, RGBIFY_MAXZ = 9, 11
RGBIFY_TILE = 512  # hard-coded in rio-rgbify
OVR_CHECK_ZOOMS = (7, 8)  # zooms of the overview check (below 0.5 scale), not kept
RGBIFY_NODATA_RGB = [int(v) for v in data_to_rgb(np.array([[NODATA]], np.int16),
                                                  RGBIFY_BASE, RGBIFY_INTERVAL).ravel()]

HILLSHADES = (
    # (npy name, azimuth, altitude, z factor)
    ("olinda_gdaldem_hs.npy", 315, 45, 1),
    ("olinda_gdaldem_hs_az135_alt30_z2.npy", 135, 30, 2),
)

# GDAL writes no timestamps into GeoTIFFs; PAM off keeps .aux.xml files away.
GDAL_ENV = {"GDAL_PAM_ENABLED": "NO"}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Paths:
    """Turns the absolute paths of a command into $DATA/.., $OUT/.., $TMP/.. for the manifest."""

    def __init__(self, data_dir, out_dir, tmp_dir):
        self.roots = [(os.path.abspath(out_dir), "$OUT"), (os.path.abspath(data_dir), "$DATA"),
                      (os.path.abspath(tmp_dir), "$TMP")]

    def show(self, argv):
        shown = []
        for a in argv:
            a = str(a)
            if os.path.isabs(a):
                a = os.path.abspath(a)  # /repo/../shared/data/x -> /shared/data/x
            for root, name in self.roots:
                if os.path.isabs(a) and (a == root or a.startswith(root + os.sep)):
                    a = name + a[len(root):]
                    break
            shown.append(a)
        return shown


def run(argv, env_extra=None):
    env = dict(os.environ, **GDAL_ENV, **(env_extra or {}))
    res = subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
    return res


def gdal_cli_version():
    return run(["gdalinfo", "--version"]).stdout.strip()


# --- 1. void fixture ---------------------------------------------------------------------


def choose_void(valid):
    """(row, col) of the VOID_SIZE patch: VOID_MARGIN valid pixels all round, centre nearest
    the valid centroid."""
    h, w = valid.shape
    side = VOID_SIZE + 2 * VOID_MARGIN
    sat = np.zeros((h + 1, w + 1), np.int64)
    sat[1:, 1:] = valid.astype(np.int64).cumsum(0).cumsum(1)
    rows, cols = np.nonzero(valid)
    cy, cx = rows.mean() + 0.5, cols.mean() + 0.5
    best = None
    for r in range(h - side + 1):
        for c in range(w - side + 1):
            n = sat[r + side, c + side] - sat[r, c + side] - sat[r + side, c] + sat[r, c]
            if n != side * side:
                continue
            pr, pc = r + VOID_MARGIN, c + VOID_MARGIN
            d = (pr + VOID_SIZE / 2 - cy) ** 2 + (pc + VOID_SIZE / 2 - cx) ** 2
            key = (round(d, 9), pr, pc)
            if best is None or key < best:
                best = key
    if best is None:
        raise SystemExit(f"{LUX}: no {VOID_SIZE} px patch with a {VOID_MARGIN} px valid margin")
    return best[1], best[2]


def make_void(data_dir, out_dir):
    tif = "lux_void_i16.tif"
    path = os.path.join(out_dir, tif)
    with rasterio.open(os.path.join(data_dir, LUX)) as src:
        arr = src.read(1)
        profile = src.profile
        desc = src.descriptions
        tags = src.tags()
        band_tags = src.tags(1)
        if src.nodata != NODATA:
            raise SystemExit(f"{LUX}: nodata {src.nodata}, expected {NODATA}")
    valid = arr != NODATA
    row, col = choose_void(valid)
    win = Window(col, row, VOID_SIZE, VOID_SIZE)
    out = arr.copy()
    out[row:row + VOID_SIZE, col:col + VOID_SIZE] = NODATA
    if os.path.exists(path):
        os.remove(path)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(out, 1)
        dst.update_tags(**tags)
        dst.update_tags(1, **band_tags)
        dst.set_band_description(1, desc[0])
    with rasterio.open(path) as got:
        back = got.read(1)
        same_geo = (got.crs == profile["crs"] and got.transform == profile["transform"]
                    and got.nodata == NODATA and got.dtypes[0] == "int16"
                    and got.compression.name == "lzw")
        wb = got.window_bounds(win)
    if not same_geo or not np.array_equal(back, out):
        raise SystemExit(f"{tif}: GDAL reads back something other than was written")
    changed = int((back != arr).sum())
    if changed != VOID_SIZE * VOID_SIZE:
        raise SystemExit(f"{tif}: {changed} pixels changed, expected {VOID_SIZE ** 2}")
    patch_src = arr[row:row + VOID_SIZE, col:col + VOID_SIZE]
    return tif, {
        "tif": tif,
        "source": LUX,
        "made_by": (f"rasterio: {LUX} read and written again with its own profile (int16, "
                    f"LZW, nodata {NODATA}, same transform/CRS/strips), a {VOID_SIZE}x{VOID_SIZE} "
                    f"window of valid pixels set to {NODATA}"),
        "nodata": NODATA,
        # col_off/row_off are the window's top-left pixel (0-based), as rasterio's Window.
        "void_window": {"col_off": col, "row_off": row, "width": VOID_SIZE, "height": VOID_SIZE},
        "void_margin_px": VOID_MARGIN,
        # west, south, east, north in degrees (EPSG:4326, the file's own CRS).
        "void_wgs84_bounds": [float(v) for v in (wb[0], wb[1], wb[2], wb[3])],
        "void_source_heights": {"min": int(patch_src.min()), "max": int(patch_src.max()),
                                "mean": round(float(patch_src.mean()), 4)},
        "valid_pixels_source": int(valid.sum()),
        "valid_pixels_fixture": int((back != NODATA).sum()),
        "width": int(arr.shape[1]),
        "height": int(arr.shape[0]),
        "geotransform": list(profile["transform"].to_gdal()),
    }


# --- 2. UTM fixture ----------------------------------------------------------------------


def tile_array(img):
    """The band(s), then a 255/0 validity plane, in the data dtype."""
    data = np.asarray(img.data)
    mask = np.where(np.asarray(img._mask), 255, 0).astype(data.dtype)
    return np.concatenate([data, mask[np.newaxis]], axis=0)


def make_utm(data_dir, out_dir, paths):
    tif = "lux_utm32n_i16.tif"
    path = os.path.join(out_dir, tif)
    if os.path.exists(path):
        os.remove(path)
    argv = ["gdalwarp", "-q", "-overwrite", "-t_srs", f"EPSG:{UTM_EPSG}",
            "-tr", str(UTM_RES), str(UTM_RES), "-tap", "-r", "near", "-ot", "Int16",
            "-srcnodata", str(NODATA), "-dstnodata", str(NODATA),
            "-co", "TILED=YES", "-co", "BLOCKXSIZE=256", "-co", "BLOCKYSIZE=256",
            "-co", "COMPRESS=DEFLATE", os.path.join(data_dir, LUX), path]
    run(argv)
    with rasterio.open(path) as src:
        arr = src.read(1)
        tr, crs = src.transform, src.crs
        if src.dtypes[0] != "int16" or src.nodata != NODATA or crs.to_epsg() != UTM_EPSG:
            raise SystemExit(f"{tif}: {src.dtypes[0]} nodata {src.nodata} {crs}")
        bounds = src.bounds
        wgs84 = rasterio.warp.transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21)
        block = list(src.block_shapes[0])
    valid = arr != NODATA
    h, w = arr.shape
    rows, cols = np.nonzero(valid)
    cx, cy = tr * (cols.mean() + 0.5, rows.mean() + 0.5)
    (clon,), (clat,) = rasterio.warp.transform(crs, "EPSG:4326", [cx], [cy])

    def footprint(t, margin):
        """Pixels of the fixture under tile t's UTM bounding box grown by margin px,
        or None when that reaches outside the raster."""
        b = mercantile.bounds(t)
        l, bo, r, to = rasterio.warp.transform_bounds("EPSG:4326", crs, b.west, b.south,
                                                      b.east, b.north, densify_pts=21)
        c0 = math.floor((l - tr.c) / tr.a) - margin
        c1 = math.ceil((r - tr.c) / tr.a) + margin
        r0 = math.floor((to - tr.f) / tr.e) - margin
        r1 = math.ceil((bo - tr.f) / tr.e) + margin
        if c0 < 0 or r0 < 0 or c1 > w or r1 > h:
            return None
        return valid[r0:r1, c0:c1]

    west, south, east, north = wgs84
    chosen, no_inside = [], []
    for z in UTM_ZOOMS:
        inside, edge = [], []
        for t in mercantile.tiles(west, south, east, north, [z]):
            b = mercantile.bounds(t)
            d = math.hypot((b.west + b.east) / 2 - clon, (b.south + b.north) / 2 - clat)
            grown = footprint(t, UTM_TILE_MARGIN)
            if grown is not None and grown.all():
                inside.append((round(d, 9), t.y, t.x, t))
            fp = footprint(t, 0)
            if fp is not None and 0 < fp.mean() < 1:
                edge.append((round(abs(float(fp.mean()) - 0.5), 9), t.y, t.x, t))
        inside.sort()
        edge.sort()
        top = z == max(UTM_ZOOMS)
        chosen += [("inside", e[3]) for e in inside[:3 if top else 1]]
        chosen += [("edge", e[3]) for e in edge[:2 if top else 1]]
        if not inside:
            no_inside.append(z)

    tiles_dir = os.path.join(out_dir, "utm_tiles")
    shutil.rmtree(tiles_dir, ignore_errors=True)
    os.makedirs(tiles_dir)
    tiles = []
    with Reader(path) as reader:
        for kind, t in chosen:
            img = reader.tile(t.x, t.y, t.z, tilesize=UTM_TILE_SIZE, resampling_method="nearest",
                              reproject_method="nearest")
            a = tile_array(img)
            frac = float((a[-1] > 0).mean())
            if kind == "inside" and frac != 1.0 or kind == "edge" and not 0 < frac < 1:
                raise SystemExit(f"{tif} {kind} tile {t.z}/{t.x}/{t.y}: valid fraction {frac}")
            rel = f"utm_tiles/{t.z}_{t.x}_{t.y}_{UTM_TILE_SIZE}.npy"
            np.save(os.path.join(out_dir, rel), a)
            b = mercantile.bounds(t)
            tiles.append({"z": t.z, "x": t.x, "y": t.y, "kind": kind,
                          "wgs84_bounds": [b.west, b.south, b.east, b.north],
                          "rio_tiler_nearest_npy": rel, "tile_size": UTM_TILE_SIZE,
                          "valid_fraction": round(frac, 6)})
    return tif, {
        "tif": tif,
        "source": LUX,
        "made_by": "gdalwarp (Debian GDAL CLI)",
        "command": paths.show(argv),
        "params": {"dst_crs": f"EPSG:{UTM_EPSG}", "resolution_m": UTM_RES, "resampling": "near",
                   "target_aligned_pixels": True, "dtype": "int16", "nodata": NODATA,
                   "block": [256, 256], "compress": "DEFLATE"},
        "width": w,
        "height": h,
        "block": block,
        "geotransform": list(tr.to_gdal()),
        "bounds": list(bounds),
        "wgs84_bounds": list(wgs84),
        "valid_pixels": int(valid.sum()),
        "valid_centroid_wgs84": [clon, clat],
        "tile_rules": {
            "inside": (f"the tile's UTM bounding box grown by {UTM_TILE_MARGIN} fixture pixels "
                       "is in the raster and all valid; per zoom the tile nearest the valid "
                       "centroid (3 at the highest zoom)"),
            "edge": ("the tile's UTM bounding box holds valid and nodata pixels; per zoom the "
                     "one closest to half valid (2 at the highest zoom)"),
            "rio_tiler": (f"Reader(tif).tile(x, y, z, tilesize={UTM_TILE_SIZE}, "
                          "resampling_method='nearest', reproject_method='nearest'); npy is "
                          "(2, 256, 256) int16: the band, then 255/0 validity"),
        },
        # Zooms where no tile fits inside the valid area (Luxembourg is ~57 x 82 km).
        "zooms_without_inside_tile": no_inside,
        "tiles": tiles,
    }


# --- 3. rio-rgbify ------------------------------------------------------------------------


def rgbify_cmd(src, dst, minz=RGBIFY_MINZ, maxz=RGBIFY_MAXZ):
    rio = os.path.join(os.path.dirname(sys.executable), "rio")
    return [rio, "rgbify", "-b", str(RGBIFY_BASE), "-i", str(RGBIFY_INTERVAL),
            "--min-z", str(minz), "--max-z", str(maxz), "--format", "png",
            "-j", "1", src, dst]


# rasterio 1.4 warns that the PNGs it writes have no georeferencing (rio-rgbify passes the
# transform as 'affine', which rasterio 1.x ignores); expected, so silenced.
RGBIFY_ENV = {"PYTHONWARNINGS": "ignore:Dataset has no geotransform"}


def mbtiles_tiles(path):
    """{(z, x, y_xyz): png bytes}."""
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles "
                           "ORDER BY zoom_level, tile_column, tile_row").fetchall()
    finally:
        con.close()
    return {(z, x, (1 << z) - 1 - row): bytes(data) for z, x, row, data in rows}


def decode_png(path_or_bytes):
    if isinstance(path_or_bytes, bytes):
        with rasterio.MemoryFile(path_or_bytes) as mf, mf.open() as src:
            return src.read()
    with rasterio.open(path_or_bytes) as src:
        return src.read()


def rgb_to_height(rgb):
    v = rgb[0].astype(np.int64) * 65536 + rgb[1].astype(np.int64) * 256 + rgb[2].astype(np.int64)
    return RGBIFY_BASE + v * RGBIFY_INTERVAL


def check_rounding():
    """floor(v) mod 2^24 is what data_to_rgb stores, and for whole metres floor(v) == round(v)."""
    h = np.arange(-11000, 9000, dtype=np.int16).reshape(1, -1)
    rgb = data_to_rgb(h, RGBIFY_BASE, RGBIFY_INTERVAL).astype(np.int64)
    enc = rgb[0] * 65536 + rgb[1] * 256 + rgb[2]
    v = (h.astype(np.float64) - RGBIFY_BASE) / RGBIFY_INTERVAL
    if not np.array_equal(np.mod(np.floor(v), 1 << 24).astype(np.int64), enc):
        raise SystemExit("rio-rgbify: data_to_rgb is not floor(v) mod 2^24")
    if not np.array_equal(np.mod(np.rint(v), 1 << 24).astype(np.int64), enc):
        raise SystemExit("rio-rgbify: floor(v) != round(v) for some whole-metre height")


def make_rgbify(data_dir, out_dir, tmp_dir, paths):
    check_rounding()
    cog = os.path.join(out_dir, "turkey_cog.tif")
    mbt = os.path.join(out_dir, "rgbify.mbtiles")
    for p in (cog, mbt):
        if os.path.exists(p):
            os.remove(p)
    cog_argv = ["gdal_translate", "-q", "-of", "COG", "-co", "BLOCKSIZE=512",
                "-co", "COMPRESS=DEFLATE", os.path.join(data_dir, TURKEY), cog]
    run(cog_argv)
    with rasterio.open(cog) as src:
        arr = src.read(1)
        if (arr == NODATA).any():
            raise SystemExit(f"{TURKEY}: has nodata pixels; rgbify tiles inside it would too")
        overviews = src.overviews(1)
        cog_info = {"width": src.width, "height": src.height, "block": list(src.block_shapes[0]),
                    "geotransform": list(src.transform.to_gdal()), "nodata": src.nodata,
                    "overview_factors": overviews,
                    "bounds": list(src.bounds), "min": int(arr.min()), "max": int(arr.max())}
        sb, res_x, res_y = src.bounds, src.transform.a, -src.transform.e
    argv = rgbify_cmd(cog, mbt)
    run(argv, RGBIFY_ENV)
    got = mbtiles_tiles(mbt)
    # Overviews: at OVR_CHECK_ZOOMS a tile spans over 2 source pixels per tile pixel in both
    # directions, so gdalwarp's default (-ovr AUTO) would read the 2x overview there. The COG
    # and the striped original (no overviews) must still give the same pixels.
    ovr_check = {}
    for label, src_path in (("cog", cog), ("original", os.path.join(data_dir, TURKEY))):
        dst = os.path.join(tmp_dir, f"ovr_check_{label}.mbtiles")
        run(rgbify_cmd(src_path, dst, *OVR_CHECK_ZOOMS), RGBIFY_ENV)
        ovr_check[label] = mbtiles_tiles(dst)
    if sorted(ovr_check["cog"]) != sorted(ovr_check["original"]) or not ovr_check["cog"]:
        raise SystemExit("rio-rgbify: different tile sets from the COG and the striped original")
    for k, png in ovr_check["cog"].items():
        b = mercantile.bounds(k[1], k[2], k[0])
        if min(RGBIFY_TILE / ((b.east - b.west) / res_x),
               RGBIFY_TILE / ((b.north - b.south) / res_y)) > 0.5:
            raise SystemExit(f"overview check: tile {k} is not downsampled 2x")
        if not np.array_equal(decode_png(png), decode_png(ovr_check["original"][k])):
            raise SystemExit(f"rio-rgbify: tile {k} differs between the COG and the original: "
                             "overviews were used")

    rgb_dir = os.path.join(out_dir, "rgbify")
    shutil.rmtree(rgb_dir, ignore_errors=True)
    tiles = []
    for (z, x, y) in sorted(got):
        rel = f"rgbify/{z}/{x}/{y}.png"
        p = os.path.join(out_dir, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(got[(z, x, y)])
        rgb = decode_png(p)
        if rgb.shape != (3, RGBIFY_TILE, RGBIFY_TILE) or rgb.dtype != np.uint8:
            raise SystemExit(f"{rel}: {rgb.shape} {rgb.dtype}")
        nod = np.all(rgb == np.array(RGBIFY_NODATA_RGB, np.uint8)[:, None, None], axis=0)
        hts = rgb_to_height(rgb)[~nod]
        b = mercantile.bounds(x, y, z)
        inside = (b.west >= sb.left and b.east <= sb.right and b.south >= sb.bottom
                  and b.north <= sb.top)
        if inside and nod.any():
            raise SystemExit(f"{rel}: inside the source yet {int(nod.sum())} nodata pixels")
        if hts.size and (hts.min() < cog_info["min"] - 0.5 or hts.max() > cog_info["max"] + 0.5):
            raise SystemExit(f"{rel}: heights {hts.min()}..{hts.max()} outside the source's "
                             f"{cog_info['min']}..{cog_info['max']}")
        if hts.size and not np.allclose(hts, np.round(hts), atol=1e-6):
            raise SystemExit(f"{rel}: heights not whole metres")
        xs = RGBIFY_TILE / ((b.east - b.west) / res_x)
        ys = RGBIFY_TILE / ((b.north - b.south) / res_y)
        tiles.append({
            "z": z, "x": x, "y": y, "png": rel, "tms_row": (1 << z) - 1 - y,
            "wgs84_bounds": [b.west, b.south, b.east, b.north],
            "inside_source": inside,
            "nodata_pixels": int(nod.sum()),
            "height_min": round(float(hts.min()), 1) if hts.size else None,
            "height_max": round(float(hts.max()), 1) if hts.size else None,
            "gdal_scale": [round(xs, 4), round(ys, 4)],
            "four_sample_bilinear": xs >= 0.95 and ys >= 0.95,
            "sha256": hashlib.sha256(got[(z, x, y)]).hexdigest(),
        })
    return cog, mbt, {
        "cog": {"path": "turkey_cog.tif", "source": TURKEY, "made_by": "gdal_translate (Debian GDAL CLI)",
                "command": paths.show(cog_argv), **cog_info},
        "mbtiles": "rgbify.mbtiles",
        "made_by": "rio rgbify (PyPI rio-rgbify)",
        "command": paths.show(argv),
        "params": {"base": RGBIFY_BASE, "interval": RGBIFY_INTERVAL, "min_z": RGBIFY_MINZ,
                   "max_z": RGBIFY_MAXZ, "format": "png", "workers": 1},
        "decode": "h = base + (R*65536 + G*256 + B) * interval",
        "facts": {
            "tile_size": RGBIFY_TILE,
            "tile_bounds": "mercantile Web Mercator bounds; transform.from_bounds(..., 512, 512)",
            "resampling": "bilinear",
            "reproject": ("rasterio.warp.reproject(rasterio.band(src, 1), out (512x512, source "
                          "dtype), dst_crs='epsg:3857', resampling=bilinear): rasterio 1.4.4 "
                          "GDALWarpOperation.ChunkAndWarpImage, NUM_THREADS=1, approximate "
                          "transformer (0.125 source px), INIT_DEST=NO_DATA, "
                          "UNIFIED_SRC_NODATA=YES, src and dst nodata = source nodata"),
            "warp_output_dtype": "source dtype (int16): bilinear rounded to the nearest integer",
            "kernel": ("GDAL's 4-sample bilinear when both scale factors >= 0.95, else a "
                       "kernel widened to radius 1/scale source pixels (see gdal_scale)"),
            "uses_overviews": False,
            "uses_overviews_check": (f"zooms {OVR_CHECK_ZOOMS[0]}-{OVR_CHECK_ZOOMS[1]} (every "
                                     "tile over 2 source px per tile px): same pixels from "
                                     f"turkey_cog.tif (overview factors {overviews}) and "
                                     f"from {TURKEY} (none); "
                                     f"{len(ovr_check['cog'])} tiles compared"),
            "rounding": ("v = (h - base) / interval in float64, stored floor(v) mod 2^24 "
                         "(channels by truncation); for whole-metre heights -11000..8999 "
                         "floor(v) == round(v) (checked)"),
            "nodata": ("not handled: nodata (-32768, also outside the source) is encoded as "
                       f"a height, wrapped mod 2^24 to rgb{tuple(RGBIFY_NODATA_RGB)}; no alpha"),
            "nodata_rgb": RGBIFY_NODATA_RGB,
            "mbtiles_rows": "TMS (tile_row = 2^z - 1 - y); PNGs here are stored by XYZ y",
            "png_georeferencing": "none (rasterio 1.x ignores the 'affine' profile key)",
        },
        "tiles": tiles,
    }


# --- 4. hillshade -------------------------------------------------------------------------


def make_hillshade(data_dir, out_dir, tmp_dir, paths):
    src_path = os.path.join(data_dir, OLINDA)
    with rasterio.open(src_path) as src:
        heights = src.read(1).astype(np.float32)
        tr = src.transform
        info = {"source": OLINDA, "width": src.width, "height": src.height,
                "pixel_size": [tr.a, -tr.e], "geotransform": list(tr.to_gdal()),
                "crs_proj4": src.crs.to_proj4(), "nodata": src.nodata,
                "heights_npy": "olinda_heights.npy",
                "heights_made_by": f"rasterio read of {OLINDA} band 1, float32 (H, W)"}
    np.save(os.path.join(out_dir, "olinda_heights.npy"), heights)
    runs = []
    for npy, az, alt, zf in HILLSHADES:
        tmp = os.path.join(tmp_dir, npy.replace(".npy", ".tif"))
        argv = ["gdaldem", "hillshade", "-q", "-az", str(az), "-alt", str(alt), "-z", str(zf),
                "-compute_edges", "-of", "GTiff", src_path, tmp]
        run(argv)
        with rasterio.open(tmp) as hs:
            a = hs.read(1)
            nod = hs.nodata
        if a.dtype != np.uint8 or a.shape != heights.shape:
            raise SystemExit(f"gdaldem: {a.dtype} {a.shape}")
        np.save(os.path.join(out_dir, npy), a)
        runs.append({"npy": npy, "made_by": "gdaldem hillshade (Debian GDAL CLI)",
                     "command": paths.show(argv),
                     "params": {"azimuth": az, "altitude": alt, "z": zf, "scale": 1,
                                "alg": "Horn", "compute_edges": True},
                     "output_nodata": nod, "zero_pixels": int((a == 0).sum()),
                     "min": int(a.min()), "max": int(a.max())})
    info["runs"] = runs
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    # The PNGs rio-rgbify writes carry no georeferencing; reading them back says so.
    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)
    out = args.out
    os.makedirs(out, exist_ok=True)
    manifest_path = os.path.join(out, "manifest.json")
    if os.path.exists(manifest_path):
        os.remove(manifest_path)
    with tempfile.TemporaryDirectory(prefix="kiln-terrain-") as tmp, rasterio.Env(**GDAL_ENV):
        paths = Paths(args.data_dir, out, tmp)
        void_tif, void = make_void(args.data_dir, out)
        print(f"  {void_tif}: void at {void['void_window']}")
        utm_tif, utm = make_utm(args.data_dir, out, paths)
        print(f"  {utm_tif}: {utm['width']}x{utm['height']}, {len(utm['tiles'])} tiles")
        cog, mbt, rgbify = make_rgbify(args.data_dir, out, tmp, paths)
        print(f"  rgbify: {len(rgbify['tiles'])} tiles, "
              f"{sum(t['inside_source'] for t in rgbify['tiles'])} inside the source")
        hillshade = make_hillshade(args.data_dir, out, tmp, paths)
        print(f"  hillshade: {len(hillshade['runs'])} runs")

    # Every file written, with what made it.
    files = [(void_tif, void["made_by"]),
             (utm_tif, f"{utm['made_by']}: {' '.join(utm['command'])}")]
    files += [(t["rio_tiler_nearest_npy"], f"rio-tiler {rio_tiler.__version__} nearest tile of "
               f"{utm_tif}") for t in utm["tiles"]]
    files += [("turkey_cog.tif", " ".join(rgbify["cog"]["command"])),
              ("rgbify.mbtiles", " ".join(rgbify["command"]))]
    files += [(t["png"], f"tile {t['z']}/{t['x']}/{t['tms_row']} (TMS row) of rgbify.mbtiles")
              for t in rgbify["tiles"]]
    files += [(hillshade["heights_npy"], hillshade["heights_made_by"])]
    files += [(r["npy"], " ".join(r["command"]) + " then read as uint8 (H, W)")
              for r in hillshade["runs"]]
    manifest = {
        "generator": "scripts/make_terrain_reference.py",
        "versions": {
            "gdal_python": rasterio.__gdal_version__,
            "gdal_cli": gdal_cli_version(),
            "rasterio": rasterio.__version__,
            "numpy": np.__version__,
            "rio_rgbify": rio_rgbify.__version__,
            "rio_tiler": rio_tiler.__version__,
            "morecantile": morecantile.__version__,
            "mercantile": mercantile.__version__,
        },
        "paths": "relative to this manifest's directory; $DATA = --data-dir, $OUT = --out, "
                 "$TMP = a temporary directory removed after the run",
        "files": [{"path": p, "sha256": sha256(os.path.join(out, p)), "made_by": m}
                  for p, m in files],
        "void": void,
        "utm": utm,
        "rgbify": rgbify,
        "hillshade": hillshade,
    }
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1, allow_nan=False)
        f.write("\n")
    print(f"{len(files)} terrain reference files in {out}")


if __name__ == "__main__":
    sys.exit(main())
