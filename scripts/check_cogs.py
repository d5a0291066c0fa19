"""Compares `kiln optimize` outputs with their sources, for crates/cli/tests/optimize.rs.

usage: check_cogs.py pixels SRC OUT [SRC OUT ...]
    For each pair, one JSON line: size, band count, dtypes, nodata, CRS and transform equal;
    every band's full-resolution pixels equal (NaN = NaN); the dataset masks equal; and
    rio-cogeo's validation (errors and warnings).
usage: check_cogs.py warp KILN GDAL
    One JSON line: CRS of KILN, rio-cogeo validity, mask agreement and the share of equal
    samples where both are valid (full resolution, every band).
usage: check_cogs.py overviews KILN GDAL
    One JSON line: overview sizes of both files, and per level and band the share of equal
    samples, the largest absolute difference and the mask agreement.

Runs in the reference venv (rasterio's wheel bundles GDAL with the same libjpeg 9 Kiln's JPEG
decoder reproduces, so decoded JPEG sources compare exactly).
"""

import json
import sys

import numpy as np
import rasterio
from rio_cogeo.cogeo import cog_validate


def same(a, b):
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def colormap(ds):
    try:
        return ds.colormap(1)
    except ValueError:  # no colour table
        return None


def pixels(src_path, out_path):
    r = {"src": src_path, "out": out_path}
    with rasterio.open(src_path) as s, rasterio.open(out_path) as o:
        r["size"] = [s.width, s.height] == [o.width, o.height]
        r["count"] = s.count == o.count
        r["dtypes"] = list(s.dtypes) == list(o.dtypes)
        r["nodata"] = (s.nodata == o.nodata) or (
            s.nodata is not None and o.nodata is not None and np.isnan(s.nodata) and np.isnan(o.nodata)
        )
        r["crs"] = (s.crs == o.crs) if s.crs else (o.crs is None or not o.crs)
        r["transform"] = bool(np.allclose(list(s.transform), list(o.transform), rtol=0, atol=1e-9))
        r["bands_equal"] = [same(s.read(b), o.read(b)) for b in range(1, s.count + 1)]
        r["mask_equal"] = same(s.dataset_mask(), o.dataset_mask())
        r["mask_flags"] = [str(f) for f in o.mask_flag_enums[0]]
        r["colormap"] = colormap(s) == colormap(o)
    valid, errors, warnings = cog_validate(out_path, quiet=True)
    r["cog_valid"] = bool(valid)
    r["cog_errors"] = errors
    r["cog_warnings"] = warnings
    return r


def overviews(kiln_path, gdal_path):
    r = {"kiln": kiln_path, "gdal": gdal_path, "levels": []}
    with rasterio.open(kiln_path) as k, rasterio.open(gdal_path) as g:
        r["kiln_sizes"] = [[k.width // f, k.height // f] for f in k.overviews(1)]
        r["gdal_sizes"] = [[g.width // f, g.height // f] for f in g.overviews(1)]
        n = min(len(k.overviews(1)), len(g.overviews(1)))
    for level in range(n):
        with rasterio.open(kiln_path, overview_level=level) as k, rasterio.open(
            gdal_path, overview_level=level
        ) as g:
            if (k.width, k.height) != (g.width, g.height):
                r["levels"].append({"level": level + 1, "size_mismatch": [k.shape, g.shape]})
                continue
            km, gm = k.dataset_mask() > 0, g.dataset_mask() > 0
            both = km & gm
            entry = {"level": level + 1, "size": [k.width, k.height], "mask_agree": float((km == gm).mean())}
            bands = []
            for b in range(1, k.count + 1):
                a = k.read(b).astype("float64")[both]
                c = g.read(b).astype("float64")[both]
                if a.size == 0:
                    bands.append({"equal": 1.0, "max_diff": 0.0})
                    continue
                eq = (a == c) | (np.isnan(a) & np.isnan(c))
                d = np.abs(a - c)
                d = d[~np.isnan(d)]
                bands.append({"equal": float(eq.mean()), "max_diff": float(d.max()) if d.size else 0.0})
            entry["bands"] = bands
            r["levels"].append(entry)
    return r


def warp(kiln_path, gdal_path):
    r = {"kiln": kiln_path, "gdal": gdal_path}
    with rasterio.open(kiln_path) as k, rasterio.open(gdal_path) as g:
        r["crs"] = k.crs.to_string() if k.crs else None
        r["same_grid"] = k.shape == g.shape and bool(
            np.allclose(list(k.transform), list(g.transform), rtol=0, atol=1e-6)
        )
        km, gm = k.dataset_mask() > 0, g.dataset_mask() > 0
        both = km & gm
        r["mask_agree"] = float((km == gm).mean())
        r["valid"] = float(km.mean())
        r["equal"] = [float((k.read(b)[both] == g.read(b)[both]).mean()) for b in range(1, k.count + 1)]
    valid, errors, warnings = cog_validate(kiln_path, quiet=True)
    r["cog_valid"] = bool(valid) and not errors and not warnings
    return r


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "pixels":
        for i in range(0, len(args), 2):
            try:
                print(json.dumps(pixels(args[i], args[i + 1])), flush=True)
            except Exception as e:  # reported per file, so one failure does not hide the rest
                print(json.dumps({"src": args[i], "out": args[i + 1], "error": repr(e)}), flush=True)
    elif mode == "warp":
        print(json.dumps(warp(args[0], args[1])))
    elif mode == "overviews":
        print(json.dumps(overviews(args[0], args[1])))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
