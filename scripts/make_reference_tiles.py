#!/usr/bin/env python3
"""Render reference WebMercatorQuad tiles with rio-tiler (GDAL) for Kiln's golden tests.

For each chosen GeoTIFF in ../shared/data this writes raw-value tiles as `.npy` in
TiTiler's layout -- shape (bands + 1, H, W), the source dtype, the bands first and
then the validity mask (255 valid, 0 invalid, cast to the data dtype) -- plus a
`manifest.json` that `crates/cli/tests/reference_tiles.rs` reads.

Tiles are picked deterministically from the dataset's WGS84 bounds: at every chosen
zoom the tiles covering the bounds are sorted by (y, x) and the first (north-west
corner, usually partial), the last (south-east corner, usually partial), the middle
and the quarter points are kept. Zooms are rio-tiler's maxzoom - 2 .. maxzoom + 1
(one over-zoom level), and for files with overviews the zooms further down where
GDAL reads an overview.

Each tile is `Reader(path).tile(x, y, z, tilesize=S, resampling_method=R,
reproject_method=R)` with TiTiler's defaults (so GDAL's approximate transformer, error up
to 0.125 source pixel, is part of the reference). Per entry the manifest also records what GDAL did that matters for matching it: which source level it
read (`overview_used`, found by re-rendering from each level), how much it reduced its
intermediate raster to reach the tile (`downsampling`), and per file the nodata model.

Run it through scripts/make_reference_tiles.sh, which sets up the pinned venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import warnings
from dataclasses import dataclass

import morecantile
import numpy
import pyproj
import rasterio
import rasterio.windows
import rio_tiler
from rio_tiler.constants import WGS84_CRS
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.utils import get_vrt_transform, non_alpha_indexes

RESAMPLINGS = ("nearest", "bilinear", "cubic")


@dataclass(frozen=True)
class Source:
    name: str
    why: str


# Coverage: CRS x dtype x codec x layout x validity model. Every file here must be
# tileable by rio-tiler; files it cannot place on the globe (no CRS, a CRS GDAL does
# not resolve, south-up global grids) are left out on purpose.
SOURCES = (
    Source("dem_3dep13_colorado_nad83_f32_cog.tif",
           "EPSG:4269, f32, LZW COG with 4 overviews, near -FLT_MAX nodata"),
    Source("dem_rhine_basin_30s_f32_nodata.tif", "EPSG:4326, f32, deflate strips, nodata -9999"),
    Source("dem_olinda_utm25s_f32.tif", "user-defined UTM 25S (GRS80), f32, uncompressed strips"),
    Source("dem_jacksboro_tn_3s_i16_deflate.tif", "EPSG:4326, i16, deflate + predictor 2, tiled"),
    Source("dem_srtm3s_turkey_i16_striped.tif", "EPSG:4326, i16 strips, nodata -32768"),
    Source("dem_copdem_grenoble_i16_pixelispoint.tif", "EPSG:4326, i16, PixelIsPoint"),
    Source("global_etopo5_i16_cog.tif", "global EPSG:4326 i16 COG, 4 overviews, beyond mercator lat"),
    Source("img_bahamas_utm18n_rgb_cog.tif", "EPSG:32618, u8 RGB COG, nodata 0, 1 overview"),
    Source("img_l7_olinda_utm25s_6band_u8.tif", "EPSG:31985 SIRGAS 2000 UTM 25S, 6-band u8, overviews"),
    Source("img_l8_224077_utm21n_b2_u16.tif", "EPSG:32621, u16, LZW tiled"),
    Source("img_landsat_red_south_australia_utm53n_u16_striped.tif", "EPSG:32653, u16 strips"),
    Source("img_landsat7_sfbay_3857_rgb_cog.tif", "EPSG:3857 (no warp), u8 RGB COG, nodata 0"),
    Source("img_modis_miriam_4326_rgb_jpeg.tif", "EPSG:4326, JPEG YCbCr tiled"),
    Source("odd_natural_earth1_rgb_webp_lossless.tif", "global EPSG:4326, lossless WebP"),
    Source("odd_luxembourg_i16_bigendian_striped.tif", "big-endian i16 strips"),
    Source("odd_luxembourg_i16_bigtiff_lzw.tif", "BigTIFF i16 LZW"),
    Source("odd_luxembourg_i16_zstd_pred2.tif", "i16 zstd + predictor 2"),
    Source("odd_le07_sza_utm21n_i32.tif", "EPSG:32621, i32, nodata -32768"),
    Source("odd_austria_model_tie_point_and_pixel_scale_pixel_is_area.tif",
           "EPSG:3035 LAEA, big-endian deflate strips, nodata 0"),
    Source("odd_austria_model_transformation_pixel_is_point.tif",
           "EPSG:3035, ModelTransformation + PixelIsPoint"),
    Source("odd_sp27gtif_illinois_nad27_usft_u8.tif", "EPSG:26771 NAD27 / Illinois East, US feet"),
    Source("odd_cea_nad27_u8.tif", "user-defined cylindrical equal area on NAD27"),
    Source("odd_dataset_mask_f32_albers_lzw.tif", "user-defined Albers, f32, internal dataset mask"),
    Source("odd_nlcd_puertorico_palette_u8.tif", "user-defined Albers (NAD83), paletted u8"),
    Source("odd_bahamas_rgb_jpeg_internal_mask_cog.tif", "JPEG YCbCr COG with internal mask, overviews"),
    Source("odd_bahamas_rgba_alpha_deflate.tif", "u8 RGBA, alpha band as mask"),
    Source("odd_all_nodata_f32_albers.tif", "every pixel nodata: the tile must be fully masked"),
)

MIN_TILES_PER_FILE = 10


def pick_indices(n: int, k: int) -> list[int]:
    """Up to k distinct indices into a list of n: both ends first, then interior points."""
    order = [0, n - 1, n // 2, n // 4, (3 * n) // 4, n // 8, (7 * n) // 8]
    out: list[int] = []
    for i in order:
        if 0 <= i < n and i not in out:
            out.append(i)
        if len(out) == k:
            break
    return out


def choose_tiles(reader: Reader, n_overviews: int) -> list[tuple[int, int, int, int]]:
    """(z, x, y, tile_size) for one file, deterministic and >= MIN_TILES_PER_FILE when possible."""
    tms: morecantile.TileMatrixSet = reader.tms
    west, south, east, north = reader.get_geographic_bounds(WGS84_CRS)
    # Clamp to what WebMercatorQuad can address; global grids reach past +-85.05.
    south, north = max(south, -85.0), min(north, 85.0)
    maxz = reader.maxzoom
    zooms = [maxz + 1, maxz, maxz - 1, maxz - 2]
    # Overview zooms: each level below maxzoom halves the resolution, so reach down by
    # the number of overviews (capped) to make GDAL pick each of them in turn.
    for extra in range(3, 3 + min(n_overviews, 3)):
        zooms.append(maxz - extra)
    zooms = [z for z in zooms if 0 <= z <= 24]
    per_zoom = 4 if len(zooms) <= 4 else 3

    def tiles_at(z: int) -> list[morecantile.Tile]:
        ts = list(tms.tiles(west, south, east, north, zooms=[z]))
        ts.sort(key=lambda t: (t.y, t.x))
        return [t for t in ts if reader.tile_exists(t.x, t.y, t.z)]

    picked: list[tuple[int, int, int, int]] = []
    for z in zooms:
        ts = tiles_at(z)
        for i in pick_indices(len(ts), per_zoom):
            picked.append((z, ts[i].x, ts[i].y, 256))
    # Small files have one tile per zoom: top up from the finest zooms.
    for z in zooms:
        if len(picked) >= MIN_TILES_PER_FILE:
            break
        ts = tiles_at(z)
        for i in pick_indices(len(ts), 7):
            cand = (z, ts[i].x, ts[i].y, 256)
            if cand not in picked and len(picked) < MIN_TILES_PER_FILE:
                picked.append(cand)
    for z in [maxz + 2, maxz + 3]:
        if len(picked) >= MIN_TILES_PER_FILE:
            break
        for t in [tiles_at(z)[i] for i in pick_indices(len(tiles_at(z)), 4)]:
            if len(picked) < MIN_TILES_PER_FILE:
                picked.append((z, t.x, t.y, 256))
    # One 512 px tile per file (the middle tile one zoom below maxzoom) exercises --tile-size.
    z512 = max(maxz - 1, 0)
    ts = tiles_at(z512)
    if ts:
        mid = ts[len(ts) // 2]
        picked.append((z512, mid.x, mid.y, 512))
    return picked


def downsampling(reader: Reader, tile: tuple[int, int, int, int]) -> float:
    """Size of the intermediate raster rio-tiler reads (the WarpedVRT at the source's
    resolution, or the source window) over the tile size: > 1 means GDAL downsamples that
    raster to the tile with RasterIO's resampling (overviews, widened kernels)."""
    z, x, y, size = tile
    bbox = reader.tms.xy_bounds(morecantile.Tile(x=x, y=y, z=z))
    ds = reader.dataset
    if ds.crs == reader.tms.rasterio_crs:
        width = rasterio.windows.from_bounds(*bbox, transform=ds.transform).width
    else:
        _, width, _ = get_vrt_transform(ds, bbox, size, size, dst_crs=reader.tms.rasterio_crs)
    return round(float(width) / size, 4)


def nodata_model(reader: Reader) -> str:
    """How rio-tiler (rio_tiler.reader.read) decides validity for this file."""
    kind = reader.info().nodata_type
    return {
        "Nodata": "nodata value: WarpedVRT with src_nodata=dst_nodata=nodata; mask = (data == nodata)",
        "Alpha": "alpha band: alpha carried through the warp; mask = (alpha == opaque); alpha not returned as data",
        "Mask": "internal per-dataset mask: WarpedVRT add_alpha=True uses it as source validity; mask = (warped alpha == 255)",
        "None": "no nodata: WarpedVRT add_alpha=True; only pixels outside the source footprint are masked",
    }.get(kind, kind)


def tile_array(img) -> numpy.ndarray:
    """Bands then a 255/0 validity plane, all in the data dtype (TiTiler's npy layout)."""
    data = numpy.asarray(img.data)
    valid = numpy.asarray(img._mask)  # any band valid -> pixel valid (rio-tiler's rule)
    mask = numpy.where(valid, 255, 0).astype(data.dtype)
    return numpy.concatenate([data, mask[numpy.newaxis]], axis=0)


def value_stats(arr: numpy.ndarray) -> tuple[float, float | None, float | None]:
    valid = arr[-1] > 0
    frac = float(valid.mean())
    if not valid.any():
        return frac, None, None
    vals = arr[:-1][:, valid].astype("float64")
    vals = vals[numpy.isfinite(vals)]
    if vals.size == 0:
        return frac, None, None
    return frac, float(vals.min()), float(vals.max())


def overview_used(path: str, n_overviews: int, tile: tuple[int, int, int, int],
                  reference: numpy.ndarray) -> dict:
    """Which source level GDAL read for a nearest tile, found by re-rendering from each level.

    Opening a level with OVERVIEW_LEVEL makes it the dataset, so the tile that equals the
    default rendering (on its valid pixels) reveals the level GDAL's overview selection
    chose. -1 = full resolution.
    """
    z, x, y, size = tile
    scores = {}
    levels = [-1] + list(range(n_overviews))
    for level in levels:
        opt = "NONE" if level < 0 else str(level)
        with rasterio.open(path, OVERVIEW_LEVEL=opt) as ds, Reader(path, dataset=ds) as r:
            try:
                img = r.tile(x, y, z, tilesize=size, resampling_method="nearest",
                             reproject_method="nearest")
            except TileOutsideBounds:
                continue
            other = tile_array(img)
        valid = reference[-1] > 0
        if not valid.any():
            return {"level": None, "match": None, "tied": [], "scores": {}}
        same = numpy.all(other == reference, axis=0)[valid]
        scores[level] = float(same.mean())
    if not scores:
        return {"level": None, "match": None, "tied": [], "scores": {}}
    top = max(scores.values())
    # Overviews built with nearest can render identically from several levels; GDAL picks
    # the coarsest level it is allowed to, so report that one and list the ties.
    # Below 99 % no level reproduces the tile (e.g. the unwarped EPSG:3857 path rounds the
    # window differently per level), so the level is reported as unknown with the scores.
    tied = sorted(k for k, v in scores.items() if v == top)
    return {
        "level": tied[-1] if top >= 0.99 else None,
        "match": round(top, 4),
        "tied": tied,
        "scores": {str(k): round(v, 4) for k, v in scores.items()},
    }


def file_sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True, help="repository root (manifest paths are relative to it)")
    ap.add_argument("--data-dir", required=True, help="directory holding the shared GeoTIFFs")
    ap.add_argument("--out", required=True, help="output directory for npy files and manifest.json")
    ap.add_argument("--only", action="append", default=[], help="limit to these file names")
    args = ap.parse_args()

    warnings.filterwarnings("ignore")
    os.makedirs(args.out, exist_ok=True)
    repo = os.path.abspath(args.repo)

    versions = {
        "rio_tiler": rio_tiler.__version__,
        "rasterio": rasterio.__version__,
        "gdal": rasterio.__gdal_version__,
        "proj": pyproj.proj_version_str,
        "numpy": numpy.__version__,
        "morecantile": morecantile.__version__,
    }
    entries: list[dict] = []
    files: dict[str, dict] = {}
    sources = [s for s in SOURCES if not args.only or s.name in args.only]
    for src in sources:
        path = os.path.join(args.data_dir, src.name)
        rel_file = os.path.relpath(os.path.abspath(path), repo)
        stem = src.name.rsplit(".", 1)[0]
        with Reader(path) as reader:
            ds = reader.dataset
            n_ovr = len(ds.overviews(1))
            bands = [int(i) for i in non_alpha_indexes(ds)]
            tiles = choose_tiles(reader, n_ovr)
            files[rel_file] = {
                "why": src.why,
                "sha256": file_sha(path),
                "crs": ds.crs.to_string() if ds.crs else None,
                "dtype": ds.dtypes[0],
                "bands": bands,
                "nodata": ds.nodata if ds.nodata is None or math.isfinite(ds.nodata) else str(ds.nodata),
                "nodata_type": reader.info().nodata_type,
                "nodata_model": nodata_model(reader),
                "compression": ds.compression.name if ds.compression else None,
                "overview_factors": ds.overviews(1),
                "minzoom": reader.minzoom,
                "maxzoom": reader.maxzoom,
                "wgs84_bounds": list(reader.get_geographic_bounds(WGS84_CRS)),
            }
            stats_lines = []
            for (z, x, y, size) in tiles:
                for res in RESAMPLINGS:
                    img = reader.tile(x, y, z, tilesize=size, resampling_method=res,
                                      reproject_method=res)
                    arr = tile_array(img)
                    rel_npy = f"{stem}/{res}/{z}_{x}_{y}_{size}.npy"
                    out_path = os.path.join(args.out, rel_npy)
                    os.makedirs(os.path.dirname(out_path), exist_ok=True)
                    numpy.save(out_path, arr)
                    frac, vmin, vmax = value_stats(arr)
                    entry = {
                        "file": rel_file,
                        "z": z, "x": x, "y": y,
                        "resampling": res,
                        "tile_size": size,
                        "npy": rel_npy,
                        "dtype": str(arr.dtype),
                        "bands": bands,
                        "shape": list(arr.shape),
                        "valid_fraction": round(frac, 6),
                        "downsampling": downsampling(reader, (z, x, y, size)),
                        "value_min": vmin,
                        "value_max": vmax,
                        "versions": versions,
                    }
                    if n_ovr and res == "nearest":
                        entry["overview_used"] = overview_used(path, n_ovr, (z, x, y, size), arr)
                    entries.append(entry)
                    stats_lines.append((z, x, y, size, res, frac, vmin, vmax,
                                        entry.get("overview_used", {}).get("level")))
        zs = sorted({t[0] for t in tiles})
        print(f"{src.name}: {len(tiles)} tiles, zooms {zs}, dtype {files[rel_file]['dtype']}, "
              f"nodata_type {files[rel_file]['nodata_type']}")
        for (z, x, y, size, res, frac, vmin, vmax, ovr) in stats_lines:
            if res != "nearest":
                continue
            rng = "-" if vmin is None else f"{vmin:.6g}..{vmax:.6g}"
            o = "" if ovr is None else f" overview {ovr}"
            print(f"    {z}/{x}/{y}@{size}: valid {frac:6.1%}  values {rng}{o}")

    manifest = {
        "description": "rio-tiler reference tiles for Kiln; made by scripts/make_reference_tiles.py",
        "layout": "npy (bands + 1, H, W) in the source dtype; last plane is the mask, 255 valid / 0 invalid",
        "tms": "WebMercatorQuad",
        "versions": versions,
        "files": files,
        "entries": entries,
    }
    tmp = os.path.join(args.out, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(args.out, "manifest.json"))
    print(f"{len(entries)} reference tiles from {len(files)} files -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
