#!/usr/bin/env python3
"""Decode blocks of the YCbCr JPEG GeoTIFFs with GDAL, for crates/cog/tests/jpeg_gdal.rs.

GDAL reads a YCbCr JPEG TIFF through libtiff with JPEGCOLORMODE=RGB, i.e. libjpeg(-turbo)
does the chroma upsampling and the YCbCr -> RGB conversion with its defaults. Kiln's block
decoder is checked against exactly that: for each chosen block this writes the block's
window, read at full resolution of its level (no resampling), as raw bytes, band after
band (`<name>.raw`), plus `manifest.json` listing file, level, block column/row and the
window's size (edge blocks are clipped to the image, unlike Kiln's padded blocks).

    ~/.cache/kiln-venv/bin/python scripts/make_jpeg_reference_blocks.py [--out DIR]

Default DIR: <repo>/tests/ref-cache/jpeg (gitignored). Needs rasterio (the venv made by
scripts/make_reference_tiles.sh has it). The rasterio 1.4.4 wheel's GDAL links IJG libjpeg
9f, and Kiln's decoder reproduces that library exactly; a GDAL on libjpeg-turbo decodes
subsampled chroma differently (see crates/cog/src/jpeg.rs).
"""

from __future__ import annotations

import argparse
import glob
import json
import os

import rasterio
from rasterio.windows import Window

# (file, overview level or None for full resolution, [(block column, block row), ...]).
# Corners and edges catch the padding of partial blocks; interior blocks catch the rest.
BLOCKS = (
    ("img_modis_miriam_4326_rgb_jpeg.tif", None, [(0, 0), (1, 1), (2, 3), (1, 2)]),
    ("odd_bahamas_rgb_jpeg_internal_mask_cog.tif", None, [(0, 0), (1, 1), (3, 2), (2, 0)]),
    ("odd_bahamas_rgb_jpeg_internal_mask_cog.tif", 0, [(0, 0), (1, 1)]),
    ("global_shadedrelief_10800x5400_rgb_jpeg_cog.tif", None, [(0, 0), (7, 4), (21, 10)]),
    ("global_shadedrelief_10800x5400_rgb_jpeg_cog.tif", 1, [(2, 1)]),
    ("global_bluemarble_5400x2700_rgb_jpeg_tiled.tif", None, [(0, 0), (10, 5), (21, 10)]),
)


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.path.join(repo, "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(repo, "tests", "ref-cache", "jpeg"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    manifest = []
    for file, level, blocks in BLOCKS:
        path = os.path.join(args.data_dir, file)
        opts = {} if level is None else {"overview_level": level}
        with rasterio.open(path, **opts) as src:
            bw, bh = src.block_shapes[0][1], src.block_shapes[0][0]
            for col, row in blocks:
                x, y = col * bw, row * bh
                w, h = min(bw, src.width - x), min(bh, src.height - y)
                assert w > 0 and h > 0, (file, level, col, row)
                data = src.read(window=Window(x, y, w, h))
                stem = os.path.splitext(file)[0]
                lvl = "full" if level is None else f"ov{level}"
                name = f"{stem}_{lvl}_c{col}_r{row}"
                with open(os.path.join(args.out, name + ".raw"), "wb") as f:
                    f.write(data.astype("uint8").tobytes())
                manifest.append({
                    "name": name,
                    "file": file,
                    # Kiln numbers levels 0 = full resolution, 1 = first overview...
                    "level": 0 if level is None else level + 1,
                    "col": col,
                    "row": row,
                    "width": w,
                    "height": h,
                    "bands": src.count,
                })
    # Which libjpeg GDAL decodes with decides the chroma upsampling (IJG 9: 16-point IDCT;
    # libjpeg-turbo: triangle filter), so it is recorded. Wheels bundle it next to GDAL.
    libs = os.path.join(os.path.dirname(os.path.dirname(rasterio.__file__)), "rasterio.libs")
    libjpeg = sorted(os.path.basename(p) for p in glob.glob(os.path.join(libs, "libjpeg*")))
    tmp = os.path.join(args.out, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(
            {
                "gdal": rasterio.__gdal_version__,
                "libjpeg": libjpeg or "unknown (system GDAL)",
                "blocks": manifest,
            },
            f,
            indent=1,
        )
    os.replace(tmp, os.path.join(args.out, "manifest.json"))
    print(f"wrote {len(manifest)} GDAL-decoded blocks to {args.out}")


if __name__ == "__main__":
    main()
