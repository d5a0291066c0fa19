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

GeoKey family, in DIR/geokeys/: small one-band GeoTIFFs whose GeoKeys are written by hand
(`write_geotiff`, a minimal classic little-endian TIFF writer: uncompressed strips, tags in
ascending order, GeoKeyDirectory / GeoDoubleParams / GeoAsciiParams and GDAL_NODATA) because
rasterio cannot write arbitrary keys. They cover key combinations GDAL reads in its own way:
linear units that override a projected EPSG code's own unit (US survey foot, international
foot, kilometre, a user-defined unit size, and metres on a ftUS code), projection parameters
given next to a code (honoured with a ProjCoordTrans key, ignored without), a datum or
ellipsoid given next to a projected code, geographic CRSs in grads around the Paris meridian
(by code and user-defined), a user-defined Transverse Mercator whose angles are in grads --
all of which Kiln must read -- and keys Kiln must refuse (a prime meridian, angular unit or
datum contradicting a geographic code, an unknown or size-less linear unit, a prime meridian
on a projected code), whose GDAL reading is recorded all the same.

Each file's pixels are real data placed where GDAL says the file is: a provisional file with
the keys is opened first to get GDAL's CRS, then the pixels are either an exact window of a
shared file in the same CRS up to a unit scale / false-easting shift (only the tie point and
pixel scale change), or a window of a shared file warped (nearest) into GDAL's CRS on the grid
calculate_default_transform suggests (capped at GEOKEY_MAX_SIDE pixels a side, north-up),
with nodata where the warp leaves pixels empty. The run fails unless GDAL puts the centre of
every final file within GEOKEY_PLACE_TOLERANCE degrees of the source window's centre.

`geokeys/manifest.json` lists per file the keys as written, whether Kiln must read it or
refuse it (and the key name the error must mention), GDAL's reading (EPSG code, PROJ.4, WKT,
geotransform, native and WGS84 bounds, the angular unit in degrees for geographic CRSs, and
the GDAL warnings logged while opening) and, for files Kiln must read, rio-tiler nearest
WebMercatorQuad tiles as `.npy` in make_reference_tiles.py's layout (bands, then a 255/0 mask
plane, in the data dtype): the tile holding the centre of the WGS84 bounds at rio-tiler's
maxzoom and maxzoom - 1, and the one holding the north-west corner at maxzoom (empty or
repeated tiles are left out). It also holds `etopo20_20e_380e.tif` (written by GDAL): ETOPO20
with its columns rolled so the grid runs from longitude 20 to 380, and its pixels as `.npy`.
"""

import argparse
import json
import logging
import math
import os
import shutil
import struct
import sys

import numpy as np
import pyproj
import rasterio
import rasterio.warp
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.windows import Window
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader


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


# --- GeoKey family ---------------------------------------------------------------------------

# TIFF field types.
ASCII, SHORT, LONG, DOUBLE = 2, 3, 4, 12

GEOKEY_MAX_SIDE = 400  # warped grids are coarsened until neither side exceeds this
GEOKEY_PLACE_TOLERANCE = 0.01  # degrees between the source window's centre and GDAL's
GEOKEY_SUBDIR = "geokeys"
TILE_SIZE = 256

# The ERDAS IMAGINE style citation that accompanies US-foot State Plane files.
IMAGINE_USFT_CITATION = ("IMAGINE GeoTIFF Support\nProjection Name = State Plane\n"
                         "Units = us_survey_feet\nGeoTIFF Units = us_survey_feet")

COLORADO = "dem_3dep13_colorado_nad83_f32_cog.tif"
LANDSAT = "img_l8_224077_utm21n_b4_u16.tif"
GRENOBLE = "dem_copdem_grenoble_i16_pixelispoint.tif"
ETOPO20 = "global_etopo20_f32_deflate_pred3.tif"

# Nodata for pixels a warp leaves empty, per sample type.
WARP_NODATA = {"float32": -9999.0, "int16": -32767, "uint16": 0}


def write_geotiff(path, arr, pixel_scale, tiepoint, keys, nodata=None, rows_per_strip=16):
    """A classic little-endian one-band TIFF: uncompressed strips, tags in ascending order.

    keys: (GeoKey id, value) pairs. An int is a SHORT key stored in the directory itself, a
    float or a list of floats goes into GeoDoubleParams (34736), a str into GeoAsciiParams
    (34737, '|'-terminated). GTRasterType and the rest are the caller's to give.
    nodata, if not None, is written as the GDAL_NODATA tag (42113).
    """
    arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    height, width = arr.shape
    sample_format = {"u": 1, "i": 2, "f": 3}[arr.dtype.kind]

    directory, doubles, ascii = [], [], ""
    for key, value in sorted(keys, key=lambda kv: kv[0]):
        if isinstance(value, str):
            text = value + "|"
            directory.append((key, 34737, len(text), len(ascii)))
            ascii += text
        elif isinstance(value, (float, list, tuple)):
            vals = [float(v) for v in value] if isinstance(value, (list, tuple)) else [value]
            directory.append((key, 34736, len(vals), len(doubles)))
            doubles += vals
        else:
            directory.append((key, 0, 1, int(value)))
    # Header: KeyDirectoryVersion 1, KeyRevision 1.0, number of keys.
    geokey_directory = [1, 1, 0, len(directory)] + [v for entry in directory for v in entry]

    strips = [arr[r:r + rows_per_strip].tobytes() for r in range(0, height, rows_per_strip)]
    tags = {
        256: (LONG, [width]),
        257: (LONG, [height]),
        258: (SHORT, [arr.dtype.itemsize * 8]),
        259: (SHORT, [1]),  # no compression
        262: (SHORT, [1]),  # BlackIsZero
        273: (LONG, [0] * len(strips)),  # strip offsets, filled in below
        277: (SHORT, [1]),
        278: (LONG, [rows_per_strip]),
        279: (LONG, [len(s) for s in strips]),
        284: (SHORT, [1]),  # chunky
        339: (SHORT, [sample_format]),
        33550: (DOUBLE, list(pixel_scale)),
        33922: (DOUBLE, list(tiepoint)),
        34735: (SHORT, geokey_directory),
    }
    if doubles:
        tags[34736] = (DOUBLE, doubles)
    if ascii:
        tags[34737] = (ASCII, ascii)
    if nodata is not None:
        tags[42113] = (ASCII, format(nodata, ".17g"))

    def payload(kind, value):
        if kind == ASCII:
            return value.encode("ascii") + b"\0"
        return struct.pack("<" + {SHORT: "H", LONG: "I", DOUBLE: "d"}[kind] * len(value), *value)

    # Layout: header (8) | IFD | out-of-line values (word aligned) | strips. The IFD and the
    # values do not depend on the strip offsets' values, only on their count, so lay out once,
    # place the strips after it, then encode again with the real offsets.
    ifd_offset = 8
    values_offset = ifd_offset + 2 + 12 * len(tags) + 4

    def encode():
        entries, values = [], b""
        for tag in sorted(tags):
            kind, value = tags[tag]
            data = payload(kind, value)
            count = len(data) if kind == ASCII else len(value)
            if len(data) <= 4:
                entries.append(struct.pack("<HHI", tag, kind, count) + data.ljust(4, b"\0"))
            else:
                values += b"\0" * (len(values) % 2)
                entries.append(struct.pack("<HHII", tag, kind, count, values_offset + len(values)))
                values += data
        values += b"\0" * (len(values) % 2)
        ifd = struct.pack("<H", len(tags)) + b"".join(entries) + struct.pack("<I", 0)
        return ifd, values

    _, values = encode()
    offsets, pos = [], values_offset + len(values)
    for strip in strips:
        offsets.append(pos)
        pos += len(strip)
    tags[273] = (LONG, offsets)
    ifd, values = encode()
    assert len(ifd) == values_offset - ifd_offset
    with open(path, "wb") as f:
        f.write(b"II*\0" + struct.pack("<I", ifd_offset) + ifd + values + b"".join(strips))


def exact(window, metres_per_unit=1.0, easting_shift=0.0):
    """Placement: the window's pixels unchanged; the tie point and pixel scale are the
    source's, shifted east by easting_shift (source units) and divided by metres_per_unit."""
    return ("exact", window, metres_per_unit, easting_shift)


def warped(window):
    """Placement: the window warped (nearest) into the CRS GDAL reads from the keys."""
    return ("warp", window)


def geokey_fixtures():
    """(name, source, keys, expect, error_mentions, placement) for every GeoKey fixture.
    Every file is a model-space (pixel-is-area) raster: GTRasterType = 1 comes first."""
    area = (1025, 1)
    projected, geographic = (1024, 1), (1024, 2)
    landsat_err = Window(900, 700, 200, 150)
    france = Window(516, 105, 60, 45)  # ETOPO20, 8W..12E, 40N..55N
    colorado = Window(300, 150, 400, 330)
    grenoble = Window(200, 250, 300, 250)  # 5.4E..6.0E, 45.0N..45.5N
    read, error = "read", "error"
    return [
        # Linear unit keys that override the projected code's own unit.
        ("usft_on_metre_code", COLORADO,
         [projected, area, (1026, IMAGINE_USFT_CITATION), (3072, 26954), (3076, 9003)],
         read, None, warped(colorado)),
        ("usft_size_on_metre_code", COLORADO,
         [projected, area, (3072, 26954), (3076, 32767), (3077, 0.3048006096012192)],
         read, None, warped(colorado)),
        ("ift_on_utm", LANDSAT, [projected, area, (3072, 32621), (3076, 9002)],
         read, None, exact(Window(800, 600, 400, 300), metres_per_unit=0.3048)),
        ("metre_on_usft_code", COLORADO, [projected, area, (3072, 2232), (3076, 9001)],
         read, None, warped(colorado)),
        # Projection parameters next to a code: honoured with ProjCoordTrans (false easting
        # 600000 instead of UTM's 500000, hence the shifted tie point), ignored without it.
        ("ct_params_on_code", LANDSAT,
         [projected, area, (3072, 32621), (3075, 1), (3080, -57.0), (3081, 0.0),
          (3082, 600000.0), (3083, 0.0), (3092, 0.9996)],
         read, None, exact(Window(1000, 500, 300, 250), easting_shift=100000.0)),
        ("params_without_ct", LANDSAT, [projected, area, (3072, 32621), (3082, 600000.0)],
         read, None, exact(Window(600, 800, 300, 250))),
        # Datum / ellipsoid next to a projected code.
        ("gcs_on_projected_code", COLORADO, [projected, area, (2048, 4267), (3072, 26954)],
         read, None, warped(colorado)),
        ("ellipsoid_on_projected_code", LANDSAT, [projected, area, (2056, 7008), (3072, 32621)],
         read, None, exact(Window(1200, 900, 300, 250))),
        # Angles in grads, longitudes from Paris.
        ("geographic_code_in_grads", GRENOBLE, [geographic, area, (2048, 4807)],
         read, None, warped(grenoble)),
        ("userdef_geographic_grads_paris", GRENOBLE,
         [geographic, area, (2048, 32767), (2050, 6326), (2051, 8903), (2054, 9105)],
         read, None, warped(grenoble)),
        ("userdef_tm_params_in_grads", GRENOBLE,
         [projected, area, (2048, 4326), (2054, 9105), (3072, 32767), (3075, 1), (3080, 7.0),
          (3081, 50.0), (3082, 500000.0), (3083, 0.0), (3092, 1.0)],
         read, None, warped(grenoble)),
        ("km_on_utm", LANDSAT, [projected, area, (3072, 32621), (3076, 9036)],
         read, None, exact(Window(300, 300, 400, 300), metres_per_unit=1000.0)),
        # Keys Kiln must refuse (GDAL ignores or works around them).
        ("pm_on_geographic_code", ETOPO20, [geographic, area, (2048, 4326), (2051, 8903)],
         error, "GeogPrimeMeridianGeoKey", exact(france)),
        ("angular_unit_on_geographic_code", ETOPO20,
         [geographic, area, (2048, 4326), (2054, 9105)],
         error, "GeogAngularUnitsGeoKey", exact(france)),
        ("datum_on_geographic_code", ETOPO20, [geographic, area, (2048, 4326), (2050, 6267)],
         error, "GeogGeodeticDatumGeoKey", exact(france)),
        ("unknown_linear_unit", LANDSAT, [projected, area, (3072, 32621), (3076, 9999)],
         error, "ProjLinearUnitsGeoKey", exact(landsat_err)),
        ("userdef_unit_without_size", LANDSAT, [projected, area, (3072, 32621), (3076, 32767)],
         error, "ProjLinearUnitSizeGeoKey", exact(landsat_err)),
        ("pm_on_projected_code", LANDSAT, [projected, area, (2051, 8903), (3072, 32621)],
         error, "GeogPrimeMeridianGeoKey", exact(landsat_err)),
    ]


class GdalLog(logging.Handler):
    """Collects the GDAL messages rasterio logs (warnings and worse) while it is attached."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def open_logged(path):
    """Opens path with rasterio; returns (dataset, GDAL messages logged while opening)."""
    handler = GdalLog()
    logger = logging.getLogger("rasterio")
    logger.addHandler(handler)
    try:
        src = rasterio.open(path)
    finally:
        logger.removeHandler(handler)
    return src, handler.messages


def window_centre_lonlat(data_dir, name, window):
    """WGS84 lon/lat of a shared file's window centre, through the file's own CRS."""
    with rasterio.open(os.path.join(data_dir, name)) as src:
        tr = src.window_transform(window)
        x, y = tr * (window.width / 2, window.height / 2)
        lon, lat = rasterio.warp.transform(src.crs, "EPSG:4326", [x], [y])
    return lon[0], lat[0]


def place_pixels(data_dir, source, placement, crs):
    """(pixels (H, W), transform, nodata) for a fixture whose keys GDAL reads as crs."""
    with rasterio.open(os.path.join(data_dir, source)) as src:
        window = placement[1]
        arr = src.read(1, window=window)
        tr = src.window_transform(window)
        src_crs, src_nodata = src.crs, src.nodata
    if placement[0] == "exact":
        _, _, unit, shift = placement
        if tr.b != 0 or tr.d != 0:
            raise SystemExit(f"{source}: rotated grid")
        return arr, Affine(tr.a / unit, 0.0, (tr.c + shift) / unit, 0.0, tr.e / unit, tr.f / unit), None

    height, width = arr.shape
    bounds = rasterio.windows.bounds(Window(0, 0, width, height), tr)
    dst_tr, dst_w, dst_h = rasterio.warp.calculate_default_transform(
        src_crs, crs, width, height, *bounds)
    coarsen = max(dst_w, dst_h) / GEOKEY_MAX_SIDE
    if coarsen > 1:
        dst_tr, dst_w, dst_h = rasterio.warp.calculate_default_transform(
            src_crs, crs, width, height, *bounds,
            resolution=(dst_tr.a * coarsen, -dst_tr.e * coarsen))
    nodata = WARP_NODATA[arr.dtype.name]
    out = np.full((dst_h, dst_w), nodata, dtype=arr.dtype)
    rasterio.warp.reproject(arr, out, src_transform=tr, src_crs=src_crs, src_nodata=src_nodata,
                            dst_transform=dst_tr, dst_crs=crs, dst_nodata=nodata,
                            resampling=Resampling.nearest)
    return out, dst_tr, nodata


def degrees_per_unit(crs):
    """The angular unit of a geographic CRS in degrees (0.9 for grads), else None. Rounded to
    12 decimals: the unit's radian factor is not exact in binary."""
    c = pyproj.CRS.from_wkt(crs.to_wkt(version="WKT2_2019"))
    if not c.is_geographic:
        return None
    return round(math.degrees(c.axis_info[0].unit_conversion_factor), 12)


def gdal_reading(src, log):
    """What GDAL makes of a GeoKey file: CRS, georeferencing and the warnings it logged."""
    crs = src.crs
    return {
        "epsg": crs.to_epsg(),
        "proj4": crs.to_proj4(),
        "wkt": crs.to_wkt(),
        "transform": list(src.get_transform()),
        "bounds": list(src.bounds),
        "wgs84_bounds": list(rasterio.warp.transform_bounds(crs, "EPSG:4326", *src.bounds,
                                                            densify_pts=21)),
        "degrees_per_unit": degrees_per_unit(crs),
        "log": log,
    }


def tile_array(img):
    """Bands then a 255/0 validity plane, all in the data dtype (make_reference_tiles.py's layout)."""
    data = np.asarray(img.data)
    mask = np.where(np.asarray(img._mask), 255, 0).astype(data.dtype)
    return np.concatenate([data, mask[np.newaxis]], axis=0)


def reference_tiles(path, name, wgs84_bounds, out_dir):
    """rio-tiler nearest tiles of one file: the centre of its WGS84 bounds at maxzoom and
    maxzoom - 1 and its north-west corner (1% inside) at maxzoom. Empty tiles are skipped."""
    west, south, east, north = wgs84_bounds
    cx, cy = (west + east) / 2, (south + north) / 2
    nw = (west + (east - west) * 0.01, north - (north - south) * 0.01)
    tiles, skipped = [], []
    with Reader(path) as reader:
        maxz = reader.maxzoom
        wanted = []
        for lon, lat, z in [(cx, cy, maxz), (cx, cy, maxz - 1), (*nw, maxz)]:
            t = reader.tms.tile(lon, lat, z)
            if (t.z, t.x, t.y) not in wanted:
                wanted.append((t.z, t.x, t.y))
        for z, x, y in wanted:
            img = reader.tile(x, y, z, tilesize=TILE_SIZE, resampling_method="nearest",
                              reproject_method="nearest")
            arr = tile_array(img)
            frac = float((arr[-1] > 0).mean())
            if frac == 0:
                skipped.append(f"{name} {z}/{x}/{y}")
                continue
            rel = f"{name}/{z}_{x}_{y}_{TILE_SIZE}.npy"
            os.makedirs(os.path.join(out_dir, name), exist_ok=True)
            np.save(os.path.join(out_dir, rel), arr)
            tiles.append({"z": z, "x": x, "y": y, "tile_size": TILE_SIZE, "npy": rel,
                          "dtype": arr.dtype.name, "valid_fraction": round(frac, 6)})
    return tiles, skipped


def write_wrap_fixture(data_dir, out_dir):
    """ETOPO20 with its columns rolled so the grid runs from longitude 20 to 380."""
    with rasterio.open(os.path.join(data_dir, ETOPO20)) as src:
        arr = src.read()
        tr, crs = src.transform, src.crs
    shift = round((20.0 - tr.c) / tr.a)
    if abs(tr.c + shift * tr.a - 20.0) > 1e-9 or arr.shape[2] * tr.a != 360.0:
        raise SystemExit(f"{ETOPO20}: longitude 20 is not a column edge of a global grid")
    # Column c of the new grid is the source column at longitude 20 + c * res (wrapped).
    rolled = np.roll(arr, -shift, axis=2)
    new_tr = Affine(tr.a, tr.b, 20.0, tr.d, tr.e, tr.f)
    tif, npy = "etopo20_20e_380e.tif", "etopo20_20e_380e.npy"
    path = os.path.join(out_dir, tif)
    if os.path.exists(path):
        os.remove(path)
    bands, height, width = rolled.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=bands,
                       dtype=rolled.dtype.name, crs=crs, transform=new_tr,
                       compress="DEFLATE") as dst:
        dst.write(rolled)
    with rasterio.open(path) as src:
        got = src.read()
        gt = list(src.get_transform())
    if not np.array_equal(got, rolled) or gt[0] != 20.0:
        raise SystemExit(f"{tif}: GDAL reads back something other than was written")
    np.save(os.path.join(out_dir, npy), got)
    # What rio-tiler draws of it at zoom 2: GDAL's warper does not wrap the grid, so tiles
    # west of 20°E are outside its bounds (None) and the one across 20°E is partial. The test
    # records the difference next to Kiln's whole globe.
    rio_tiler_zoom2 = []
    with Reader(path) as reader:
        for x in range(4):
            for y in range(4):
                try:
                    img = reader.tile(x, y, 2, tilesize=TILE_SIZE, resampling_method="nearest",
                                      reproject_method="nearest")
                    frac = round(float((np.asarray(img._mask) > 0).mean()), 6)
                except TileOutsideBounds:
                    frac = None
                rio_tiler_zoom2.append({"x": x, "y": y, "valid_fraction": frac})
    return {"tif": tif, "npy": npy, "transform": gt, "width": width, "height": height,
            "rio_tiler_zoom2": rio_tiler_zoom2}


def write_geokey_fixtures(data_dir, out_dir):
    """Writes the GeoKey family into out_dir and returns its manifest (not yet written)."""
    entries = []
    for name, source, keys, expect, mentions, placement in geokey_fixtures():
        tif = f"{name}.tif"
        path = os.path.join(out_dir, tif)
        shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)  # old tiles
        keys = sorted(keys, key=lambda kv: kv[0])
        # Provisional file: only the keys matter, GDAL's CRS for them decides the pixels.
        write_geotiff(path, np.zeros((1, 1), np.uint8), [1.0, 1.0, 0.0], [0.0] * 6, keys)
        with rasterio.open(path) as src:
            crs = src.crs
        if crs is None:
            raise SystemExit(f"{name}: GDAL reads no CRS from the keys")
        arr, tr, nodata = place_pixels(data_dir, source, placement, crs)
        write_geotiff(path, arr, [tr.a, -tr.e, 0.0], [0.0, 0.0, 0.0, tr.c, tr.f, 0.0], keys,
                      nodata=nodata)

        src, log = open_logged(path)
        with src:
            if src.crs != crs:
                raise SystemExit(f"{name}: GDAL reads the final file's keys differently")
            if not np.array_equal(src.read(1), arr):
                raise SystemExit(f"{name}: GDAL reads back different pixels than were written")
            gdal = gdal_reading(src, log)
            height, width, dtype, got_nodata = src.height, src.width, src.dtypes[0], src.nodata
        # The pixels must show the place they came from, as GDAL georeferences them.
        west, south, east, north = gdal["wgs84_bounds"]
        want = window_centre_lonlat(data_dir, source, placement[1])
        off = max(abs((west + east) / 2 - want[0]), abs((south + north) / 2 - want[1]))
        if off > GEOKEY_PLACE_TOLERANCE:
            raise SystemExit(f"{name}: GDAL places the file {off:.4f} degrees from its source "
                             f"window ({gdal['wgs84_bounds']} vs centre {want})")

        tiles, skipped = [], []
        if expect == "read":
            tiles, skipped = reference_tiles(path, name, gdal["wgs84_bounds"], out_dir)
        for s in skipped:
            print(f"  skipped tile {s}: no valid pixels")
        entries.append({
            "name": name,
            "tif": tif,
            "source": source,
            "keys": [[k, v] for k, v in keys],
            "expect": expect,
            "error_mentions": mentions,
            "gdal": gdal,
            "width": width,
            "height": height,
            "dtype": dtype,
            "nodata": got_nodata,
            "tiles": tiles,
        })
        print(f"  {name}: epsg={gdal['epsg']} {len(tiles)} tiles"
              + "".join(f"\n    GDAL: {m}" for m in log))

    return {
        "generator": "scripts/make_fixtures.py",
        "gdal_version": rasterio.__gdal_version__,
        "fixtures": entries,
        "wrap": write_wrap_fixture(data_dir, out_dir),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    # A half-finished run must not leave an old manifest describing new files.
    manifest_path = os.path.join(args.out, "manifest.json")
    geokey_dir = os.path.join(args.out, GEOKEY_SUBDIR)
    geokey_manifest_path = os.path.join(geokey_dir, "manifest.json")
    for p in (manifest_path, geokey_manifest_path):
        if os.path.exists(p):
            os.remove(p)
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

    # The GeoKey family, its manifest written last.
    os.makedirs(geokey_dir, exist_ok=True)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        geokey_manifest = write_geokey_fixtures(args.data_dir, geokey_dir)
    with open(geokey_manifest_path, "w") as f:
        json.dump(geokey_manifest, f, indent=1, allow_nan=False)
        f.write("\n")
    print(f"{len(geokey_manifest['fixtures'])} GeoKey fixtures in {geokey_dir}")


if __name__ == "__main__":
    sys.exit(main())
