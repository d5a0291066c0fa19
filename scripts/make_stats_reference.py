#!/usr/bin/env python3
"""Reference statistics for crates/engine/tests/stats.rs, computed with numpy over the
full-resolution pixels that GDAL's dataset mask marks valid (NaN samples dropped, as
np.nanpercentile does).

    ~/.cache/kiln-venv/bin/python scripts/make_stats_reference.py [--data-dir D] [--out O]

--out defaults to <repo>/tests/ref-cache/stats (gitignored), --data-dir to <repo>/../shared/data.
Writes one <file stem>.json per file with, per band (alpha excluded): count, min, max, mean,
std (floats as round-trip strings) (population), percentiles 1..99 (numpy's default linear method); plus the valid pixel
count, the lon/lat of a valid pixel centre near the image centre, of an invalid pixel centre
nearest a corner (if any), and the lon/lat bounds (densified) for footprint checks.
"""
import argparse
import json
import os

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.warp import transform, transform_bounds

FILES = [
    "dem_srtm30s_luxembourg_i16_lzw.tif",
    "global_etopo5_i16_cog.tif",
    "dem_3dep13_colorado_nad83_f32_cog.tif",
    "img_l8_224077_utm21n_b2_u16.tif",
    "odd_bahamas_rgba_alpha_deflate.tif",
    "odd_bahamas_rgb_jpeg_internal_mask_cog.tif",
    "odd_all_nodata_f32_albers.tif",
    "img_landsat_saltlake_4326_7band_cog.tif",
    "odd_le07_sza_utm21n_i32.tif",
    "dem_rhine_basin_30s_f32_nodata.tif",
]


def exact(x):
    """A float as the shortest decimal string that round-trips: JSON number parsers (serde_json
    without `float_roundtrip`) may be off by an ulp, which exact comparisons would catch."""
    return repr(float(x))


def lonlat(ds, row, col):
    x, y = ds.xy(row, col)  # pixel centre
    xs, ys = transform(ds.crs, "EPSG:4326", [x], [y])
    return [xs[0], ys[0]]


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.path.join(repo, "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(repo, "tests", "ref-cache", "stats"))
    args = ap.parse_args()
    out, data = args.out, args.data_dir
    os.makedirs(out, exist_ok=True)
    for name in FILES:
        with rasterio.open(os.path.join(data, name)) as ds:
            mask = ds.dataset_mask() > 0
            bands = [i + 1 for i, c in enumerate(ds.colorinterp) if c != ColorInterp.alpha]
            per_band = []
            for b in bands:
                v = ds.read(b)[mask].astype(np.float64)
                v = v[~np.isnan(v)]
                if v.size == 0:
                    per_band.append({"band": b, "count": 0})
                    continue
                per_band.append({
                    "band": b,
                    "count": int(v.size),
                    "min": exact(v.min()),
                    "max": exact(v.max()),
                    "mean": exact(v.mean()),
                    "std": exact(v.std()),
                    "percentiles": [exact(p) for p in np.percentile(v, np.arange(1, 100))],
                })
            h, w = mask.shape
            valid_px = None
            rows, cols = np.nonzero(mask)
            if rows.size:
                d = (rows - h / 2) ** 2 + (cols - w / 2) ** 2
                i = int(np.argmin(d))
                valid_px = lonlat(ds, int(rows[i]), int(cols[i]))
            invalid_px = None
            rows, cols = np.nonzero(~mask)
            if rows.size:
                # The invalid pixel deepest inside an invalid corner region is hard to find
                # cheaply; the one nearest a corner, 16 px in, is checked to be invalid too.
                best = None
                for (cr, cc) in [(16, 16), (16, w - 17), (h - 17, 16), (h - 17, w - 17)]:
                    if 0 <= cr < h and 0 <= cc < w and not mask[cr, cc]:
                        best = (cr, cc)
                        break
                if best is not None:
                    invalid_px = lonlat(ds, *best)
            b = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=64)
            ref = {
                "file": name,
                "width": w,
                "height": h,
                "valid_pixels": int(mask.sum()),
                "bands": per_band,
                "valid_lonlat": valid_px,
                "invalid_lonlat": invalid_px,
                "bounds_lonlat": list(b),
            }
        stem = name.rsplit(".", 1)[0]
        with open(os.path.join(out, stem + ".json.tmp"), "w") as f:
            json.dump(ref, f)
        os.replace(os.path.join(out, stem + ".json.tmp"), os.path.join(out, stem + ".json"))
        print(f"{name}: {ref['valid_pixels']} valid of {w * h}")


if __name__ == "__main__":
    main()
