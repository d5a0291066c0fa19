#!/usr/bin/env python3
"""Small GeoTIFF fixtures for the TIFF families the shared data lacks, plus GDAL's reading of them.

    ~/.cache/kiln-venv/bin/python scripts/make_fixtures.py --data-dir ../shared/data --out DIR

Each fixture is a window (georeferencing kept) of a real shared file, mapped into a sample
type / codec / layout the shared files do not have: int8 PackBits strips, uint32 LZW +
predictor 2 tiles, big-endian float64 DEFLATE + predictor 3, ZSTD int32 / float32, planar-
separate tiles and strips, a big-endian multi-band BigTIFF, a NaN nodata and an internal mask
on a uint16 image. Sizes are chosen so that edge tiles are partial and the last strip is short.

For every fixture DIR gets `<name>.tif`, `<name>.npy` (the full-resolution pixels as GDAL reads
the written file back, shape (bands, H, W), native dtype) and, for masked files, `<name>.mask.npy`
(GDAL's dataset mask, 0/255). `manifest.json` lists them with what GDAL reports about each file;
byte order and BigTIFF come from the file's first bytes. crates/cog/tests/fixtures.rs checks
Kiln's reader against all of it. Output is deterministic (no timestamps are written).
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import rasterio
from rasterio.windows import Window


def read_window(data_dir, name, window, bands=None):
    """Pixels and profile pieces (crs, transform) of a window of a shared file."""
    with rasterio.open(os.path.join(data_dir, name)) as src:
        arr = src.read(bands, window=window)
        return arr, src.crs, src.window_transform(window)


def fixtures(data_dir):
    """(name, source description, array (bands, H, W), crs, transform, creation options,
    nodata, mask or None) for every fixture."""
    out = []

    # int8, PackBits, strips of 16 rows over 203 rows (last strip short). ETOPO5 metres / 30,
    # clipped to [-127, 127]: both clip ends occur (Arabian Sea, Himalaya); -128 is nodata
    # and marks one corner square so the value occurs too.
    src, crs, tr = read_window(data_dir, "global_etopo5_i16_cog.tif", Window(2950, 700, 260, 203))
    a = np.clip(np.round(src.astype(np.float64) / 30.0), -127, 127).astype(np.int8)
    a[:, :10, :10] = -128
    out.append(("i8_packbits_striped", "global_etopo5_i16_cog.tif", a, crs, tr,
                dict(compress="PACKBITS", tiled=False, blockysize=16), -128, None))

    # uint32, LZW + predictor 2, 128 tiles over 300x260 (partial edge tiles). Landsat B2 * 100000
    # + B3: values far above 16 bits, every byte of the sample varies.
    b2, crs, tr = read_window(data_dir, "img_l8_224077_utm21n_b2_u16.tif", Window(700, 600, 300, 260))
    b3, _, _ = read_window(data_dir, "img_l8_224077_utm21n_b3_u16.tif", Window(700, 600, 300, 260))
    a = b2.astype(np.uint32) * 100000 + b3.astype(np.uint32)
    out.append(("u32_lzw_pred2_tiled128", "img_l8_224077_utm21n_b2/b3_u16.tif", a, crs, tr,
                dict(compress="LZW", predictor=2, tiled=True, blockxsize=128, blockysize=128),
                None, None))

    # float64, DEFLATE + predictor 3, big-endian, 128x64 tiles. ETOPO20 / 3 so the mantissas
    # are full (float32 values cast up would leave the low bytes zero).
    src, crs, tr = read_window(data_dir, "global_etopo20_f32_deflate_pred3.tif", Window(400, 100, 300, 200))
    a = src.astype(np.float64) / 3.0
    out.append(("f64_deflate_pred3_tiled_be", "global_etopo20_f32_deflate_pred3.tif", a, crs, tr,
                dict(compress="DEFLATE", predictor=3, tiled=True, blockxsize=128, blockysize=64,
                     endianness="BIG"), None, None))

    # int32, ZSTD + predictor 2 (predictor 3 is for floats only), 256 tiles. Solar zenith
    # (hundredths of a degree) stretched to span negative and large values.
    src, crs, tr = read_window(data_dir, "odd_le07_sza_utm21n_i32.tif", Window(200, 200, 300, 280))
    a = ((src.astype(np.int64) - 3900) * 100003).astype(np.int32)
    out.append(("i32_zstd_pred2_tiled", "odd_le07_sza_utm21n_i32.tif", a, crs, tr,
                dict(compress="ZSTD", predictor=2, tiled=True, blockxsize=256, blockysize=256),
                None, None))

    # float32, ZSTD + predictor 3, 256 tiles over 300x250.
    src, crs, tr = read_window(data_dir, "dem_3dep13_colorado_nad83_f32_cog.tif", Window(300, 200, 300, 250))
    out.append(("f32_zstd_pred3_tiled", "dem_3dep13_colorado_nad83_f32_cog.tif", src, crs, tr,
                dict(compress="ZSTD", predictor=3, tiled=True, blockxsize=256, blockysize=256),
                None, None))

    # 4-band uint16, planar separate, 128 tiles, DEFLATE + predictor 2: Landsat B2, B3, B4 and
    # their mean.
    w = Window(1000, 700, 300, 260)
    bs = [read_window(data_dir, f"img_l8_224077_utm21n_b{i}_u16.tif", w) for i in (2, 3, 4)]
    crs, tr = bs[0][1], bs[0][2]
    rgb = np.concatenate([b[0] for b in bs]).astype(np.uint32)
    a = np.concatenate([rgb, rgb.sum(axis=0, keepdims=True) // 3]).astype(np.uint16)
    out.append(("u16_4band_separate_tiled", "img_l8_224077_utm21n_b2/b3/b4_u16.tif", a, crs, tr,
                dict(compress="DEFLATE", predictor=2, tiled=True, blockxsize=128, blockysize=128,
                     interleave="band"), None, None))

    # 3-band uint8, planar separate, strips of 7 rows over 200 (last strip short), DEFLATE.
    src, crs, tr = read_window(data_dir, "global_natural_earth1_720x360_rgb_striped.tif", Window(200, 60, 300, 200))
    out.append(("u8_3band_separate_striped_deflate", "global_natural_earth1_720x360_rgb_striped.tif",
                src, crs, tr, dict(compress="DEFLATE", tiled=False, blockysize=7, interleave="band",
                                   photometric="RGB"), None, None))

    # BigTIFF, big-endian, 3-band uint16 pixel-interleaved, LZW + predictor 2 (the predictor's
    # stride is the pixel, 3 samples), 64 tiles.
    w = Window(400, 900, 200, 150)
    bs = [read_window(data_dir, f"img_l8_224077_utm21n_b{i}_u16.tif", w) for i in (4, 3, 2)]
    a = np.concatenate([b[0] for b in bs])
    out.append(("u16_3band_bigtiff_be_lzw_pred2", "img_l8_224077_utm21n_b4/b3/b2_u16.tif", a,
                bs[0][1], bs[0][2], dict(compress="LZW", predictor=2, tiled=True, blockxsize=64,
                                         blockysize=64, interleave="pixel", bigtiff="YES",
                                         endianness="BIG"), None, None))

    # BigTIFF, big-endian, 2-band float32 pixel-interleaved strips, DEFLATE + predictor 3:
    # ETOPO20 and its negation.
    src, crs, tr = read_window(data_dir, "global_etopo20_f32_deflate_pred3.tif", Window(0, 300, 240, 130))
    a = np.concatenate([src, -src]).astype(np.float32)
    out.append(("f32_2band_bigtiff_be_deflate_pred3_striped", "global_etopo20_f32_deflate_pred3.tif",
                a, crs, tr, dict(compress="DEFLATE", predictor=3, tiled=False, blockysize=9,
                                 interleave="pixel", bigtiff="YES", endianness="BIG"), None, None))

    # float32 with NaN nodata: the Rhine basin DEM, its -9999 nodata replaced by NaN.
    src, crs, tr = read_window(data_dir, "dem_rhine_basin_30s_f32_nodata.tif", Window(100, 100, 300, 250))
    a = np.where(src == -9999.0, np.float32("nan"), src).astype(np.float32)
    out.append(("f32_nan_nodata_lzw_striped", "dem_rhine_basin_30s_f32_nodata.tif", a, crs, tr,
                dict(compress="LZW", tiled=False, blockysize=32), float("nan"), None))

    # uint16 with an internal (1-bit, DEFLATE) mask: the Landsat scene's zero collar masked out.
    src, crs, tr = read_window(data_dir, "img_landsat_red_south_australia_utm53n_u16_striped.tif",
                               Window(637, 679, 300, 260))
    mask = np.where(src[0] == 0, 0, 255).astype(np.uint8)
    out.append(("u16_internal_mask_tiled", "img_landsat_red_south_australia_utm53n_u16_striped.tif",
                src, crs, tr, dict(compress="DEFLATE", tiled=True, blockxsize=128, blockysize=128),
                None, mask))
    return out


def file_layout(path):
    """(big_endian, bigtiff) from the TIFF header's first four bytes."""
    with open(path, "rb") as f:
        head = f.read(4)
    order = head[:2]
    if order not in (b"II", b"MM"):
        raise SystemExit(f"{path}: not a TIFF")
    big = order == b"MM"
    (magic,) = struct.unpack(">H" if big else "<H", head[2:4])
    return big, magic == 43


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    # A half-finished run must not leave an old manifest describing new files.
    manifest_path = os.path.join(args.out, "manifest.json")
    if os.path.exists(manifest_path):
        os.remove(manifest_path)
    # GDAL writes no timestamp into GeoTIFFs, and masks go inside the file (the 3.x default,
    # made explicit); no .aux.xml side files either.
    env = rasterio.Env(GDAL_TIFF_INTERNAL_MASK="YES", GDAL_PAM_ENABLED="NO")
    entries = []
    with env:
        for name, source, arr, crs, tr, opts, nodata, mask in fixtures(args.data_dir):
            tif = f"{name}.tif"
            path = os.path.join(args.out, tif)
            if os.path.exists(path):
                os.remove(path)
            bands, height, width = arr.shape
            profile = dict(driver="GTiff", width=width, height=height, count=bands,
                           dtype=arr.dtype.name, crs=crs, transform=tr, nodata=nodata, **opts)
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(arr)
                if mask is not None:
                    dst.write_mask(mask)

            big_endian, bigtiff = file_layout(path)
            with rasterio.open(path) as src:
                got = src.read()
                st = src.tags(ns="IMAGE_STRUCTURE")
                got_nodata = src.nodata
                entry = {
                    "name": name,
                    "source": source,
                    "tif": tif,
                    "npy": f"{name}.npy",
                    "width": src.width,
                    "height": src.height,
                    "dtype": src.dtypes[0],
                    "bands": src.count,
                    "compression": st.get("COMPRESSION", "NONE"),
                    "predictor": int(st.get("PREDICTOR", "1")),
                    "interleave": st.get("INTERLEAVE", "PIXEL"),
                    "tiled": src.profile.get("tiled", False),
                    # (rows, cols) of one block, as rasterio reports it.
                    "block": list(src.block_shapes[0]),
                    "geotransform": list(src.get_transform()),
                    "endianness": "big" if big_endian else "little",
                    "bigtiff": bigtiff,
                    # JSON has no NaN: a NaN nodata is the string "nan".
                    "nodata": None if got_nodata is None
                    else ("nan" if math.isnan(got_nodata) else got_nodata),
                    "mask_npy": None,
                }
                if mask is not None:
                    flags = src.mask_flag_enums[0]
                    if rasterio.enums.MaskFlags.per_dataset not in flags:
                        raise SystemExit(f"{name}: GDAL does not see the internal mask ({flags})")
                    gmask = src.dataset_mask()
                    if not np.array_equal(gmask, mask):
                        raise SystemExit(f"{name}: mask read back differs from the mask written")
                    np.save(os.path.join(args.out, f"{name}.mask.npy"), gmask[np.newaxis])
                    entry["mask_npy"] = f"{name}.mask.npy"
            # The file must hold exactly the data meant for it (lossless codecs only).
            if not np.array_equal(got, arr, equal_nan=arr.dtype.kind == "f"):
                raise SystemExit(f"{name}: GDAL reads back different pixels than were written")
            np.save(os.path.join(args.out, f"{name}.npy"), got)
            entries.append(entry)

    manifest = {
        "generator": "scripts/make_fixtures.py",
        "gdal_version": rasterio.__gdal_version__,
        "rasterio_version": rasterio.__version__,
        "numpy_version": np.__version__,
        "fixtures": entries,
    }
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1, allow_nan=False)
        f.write("\n")
    print(f"{len(entries)} fixtures in {args.out}")


if __name__ == "__main__":
    sys.exit(main())
