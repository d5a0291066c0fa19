//! Writing small GeoTIFF tiles (whole COGs: [`crate::cog_write`]; both serialise their IFDs
//! with `tiff_out`).
//!
//! [`write_geotiff_tile`] turns a rendered [`Raster`] into a small self-contained GeoTIFF:
//! classic little-endian TIFF, one deflate-compressed strip per band (planar), the source
//! sample type, georeferencing as ModelPixelScale + ModelTiepoint (or ModelTransformation when
//! the grid is rotated or not north-up), GeoKeys naming the EPSG code, and GDAL_NODATA.
//! Masked pixels are written as the nodata value. Without a nodata value, a tile with masked
//! pixels gets a GDAL-style internal mask instead: a second IFD (NewSubfileType = mask,
//! PhotometricInterpretation = transparency mask, 1 bit per pixel, 1 = valid), which GDAL
//! reads as a per-dataset mask for every sample type, unlike an alpha band (Byte/UInt16 only).

use kiln_core::dtype::Sample;
use kiln_core::{with_samples, Crs, DataType, GeoTransform, Raster};
use libdeflater::{CompressionLvl, Compressor};
use num_traits::ToBytes;

use crate::tiff_out::{ByteOrder, Directories, TiffFormat, Value};
use crate::CogError;

/// Tiles are classic little-endian TIFF.
const FORMAT: TiffFormat = TiffFormat {
    order: ByteOrder::Little,
    bigtiff: false,
};

// TIFF tags written here.
const TAG_NEW_SUBFILE_TYPE: u16 = 254;
const TAG_IMAGE_WIDTH: u16 = 256;
const TAG_IMAGE_LENGTH: u16 = 257;
const TAG_BITS_PER_SAMPLE: u16 = 258;
const TAG_COMPRESSION: u16 = 259;
const TAG_PHOTOMETRIC: u16 = 262;
const TAG_STRIP_OFFSETS: u16 = 273;
const TAG_SAMPLES_PER_PIXEL: u16 = 277;
const TAG_ROWS_PER_STRIP: u16 = 278;
const TAG_STRIP_BYTE_COUNTS: u16 = 279;
const TAG_PLANAR_CONFIGURATION: u16 = 284;
const TAG_EXTRA_SAMPLES: u16 = 338;
const TAG_SAMPLE_FORMAT: u16 = 339;
const TAG_MODEL_PIXEL_SCALE: u16 = 33550;
const TAG_MODEL_TIEPOINT: u16 = 33922;
const TAG_MODEL_TRANSFORMATION: u16 = 34264;
const TAG_GEO_KEY_DIRECTORY: u16 = 34735;
const TAG_GDAL_NODATA: u16 = 42113;

// GeoKeys.
const KEY_GT_MODEL_TYPE: u16 = 1024;
const KEY_GT_RASTER_TYPE: u16 = 1025;
const KEY_GEOGRAPHIC_TYPE: u16 = 2048;
const KEY_PROJECTED_CS_TYPE: u16 = 3072;
const MODEL_TYPE_PROJECTED: u16 = 1;
const MODEL_TYPE_GEOGRAPHIC: u16 = 2;
const RASTER_PIXEL_IS_AREA: u16 = 1;

const COMPRESSION_ADOBE_DEFLATE: u16 = 8;
const PHOTOMETRIC_MIN_IS_BLACK: u16 = 1;
const PHOTOMETRIC_MASK: u16 = 4;
const SUBFILE_MASK: u32 = 4;
const EXTRA_SAMPLE_UNSPECIFIED: u16 = 0;

fn too_large(reason: String) -> CogError {
    CogError::TooLarge {
        what: "GeoTIFF tile",
        reason,
    }
}

fn unsupported(feature: String) -> CogError {
    CogError::Unsupported { feature }
}

/// Uncompressed planes in the file's byte order, one per band, masked pixels set to `nodata`
/// if given.
fn planes<T: Sample + ToBytes>(
    samples: &[T],
    mask: &[u8],
    bands: usize,
    nodata: Option<f64>,
) -> Vec<Vec<u8>> {
    let n = mask.len();
    let fill = nodata.map(T::from_f64);
    let mut out = Vec::with_capacity(bands);
    for band in samples.chunks_exact(n.max(1)).take(bands) {
        let mut bytes = Vec::with_capacity(n * std::mem::size_of::<T>());
        for (&s, &m) in band.iter().zip(mask) {
            match fill {
                Some(f) if m == 0 => FORMAT.order.put(&mut bytes, f),
                _ => FORMAT.order.put(&mut bytes, s),
            }
        }
        out.push(bytes);
    }
    out
}

/// The mask as a 1-bit image: rows padded to whole bytes, most significant bit first, 1 where
/// the pixel is valid.
fn mask_bits(mask: &[u8], width: usize) -> Vec<u8> {
    let row_bytes = width.div_ceil(8);
    let mut out = Vec::with_capacity(row_bytes * mask.len() / width.max(1));
    for row in mask.chunks(width.max(1)) {
        let mut bytes = vec![0u8; row_bytes];
        for (x, &m) in row.iter().enumerate() {
            if m != 0 {
                if let Some(b) = bytes.get_mut(x / 8) {
                    *b |= 0x80 >> (x % 8);
                }
            }
        }
        out.extend_from_slice(&bytes);
    }
    out
}

fn deflate(compressor: &mut Compressor, plane: &[u8]) -> Result<Vec<u8>, CogError> {
    let mut buf = vec![0u8; compressor.zlib_compress_bound(plane.len())];
    let len = compressor
        .zlib_compress(plane, &mut buf)
        .map_err(|e| too_large(format!("deflate failed: {e:?}")))?;
    buf.truncate(len);
    Ok(buf)
}

/// TIFF SampleFormat: 1 unsigned, 2 signed, 3 IEEE float.
pub(crate) fn sample_format(dtype: DataType) -> u16 {
    match dtype {
        DataType::U8 | DataType::U16 | DataType::U32 => 1,
        DataType::I8 | DataType::I16 | DataType::I32 => 2,
        DataType::F32 | DataType::F64 => 3,
    }
}

/// Whether `nodata` is a value the band type can hold (NaN only for floats).
fn nodata_fits(dtype: DataType, nodata: f64) -> bool {
    fn roundtrips<T: Sample>(v: f64) -> bool {
        T::from_f64(v).to_f64() == v
    }
    if nodata.is_nan() {
        return dtype.is_float();
    }
    match dtype {
        DataType::U8 => roundtrips::<u8>(nodata),
        DataType::I8 => roundtrips::<i8>(nodata),
        DataType::U16 => roundtrips::<u16>(nodata),
        DataType::I16 => roundtrips::<i16>(nodata),
        DataType::U32 => roundtrips::<u32>(nodata),
        DataType::I32 => roundtrips::<i32>(nodata),
        // Infinities and anything inside the f32 range (GDAL rounds to the nearest f32).
        DataType::F32 => nodata.is_infinite() || nodata.abs() <= f64::from(f32::MAX),
        DataType::F64 => true,
    }
}

/// GDAL_NODATA text: a decimal that reads back to the same f64, or `nan`/`inf`.
pub(crate) fn nodata_text(nodata: f64) -> String {
    if nodata.is_nan() {
        "nan".to_string()
    } else if nodata.is_infinite() {
        if nodata > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if nodata == 0.0 || (1e-4..1e15).contains(&nodata.abs()) {
        // Plain decimals for everyday values: `-9999`, `0`, `0.5`.
        format!("{nodata}")
    } else {
        // Rust's `{:e}` is the shortest round-trip form, e.g. `-3.4028230607370965e38`.
        format!("{nodata:e}")
    }
}

/// True when the EPSG code is a geographic (longitude/latitude) CRS.
fn is_geographic(epsg: u32) -> Result<bool, CogError> {
    let crs = Crs::from_epsg(epsg).map_err(|e| unsupported(format!("CRS EPSG:{epsg}: {e}")))?;
    Ok(crs.proj4.split_whitespace().any(|p| {
        matches!(
            p,
            "+proj=longlat" | "+proj=latlong" | "+proj=lonlat" | "+proj=latlon"
        )
    }))
}

/// Georeferencing tags for `transform`: pixel scale + tie point for north-up grids (what most
/// readers expect), the full 4x4 model transformation otherwise.
fn georef_entries(transform: &GeoTransform) -> Result<Vec<(u16, Value)>, CogError> {
    let g = transform.0;
    if g.iter().any(|v| !v.is_finite()) || transform.invert().is_none() {
        return Err(unsupported(format!("geotransform {g:?} is not invertible")));
    }
    if g[2] == 0.0 && g[4] == 0.0 && g[1] > 0.0 && g[5] < 0.0 {
        Ok(vec![
            (TAG_MODEL_PIXEL_SCALE, Value::Double(vec![g[1], -g[5], 0.0])),
            (
                TAG_MODEL_TIEPOINT,
                Value::Double(vec![0.0, 0.0, 0.0, g[0], g[3], 0.0]),
            ),
        ])
    } else {
        Ok(vec![(
            TAG_MODEL_TRANSFORMATION,
            Value::Double(vec![
                g[1], g[2], 0.0, g[0], //
                g[4], g[5], 0.0, g[3], //
                0.0, 0.0, 0.0, 0.0, //
                0.0, 0.0, 0.0, 1.0,
            ]),
        )])
    }
}

fn geokey_directory(epsg: u32, geographic: bool) -> Result<Value, CogError> {
    let code = u16::try_from(epsg)
        .map_err(|_| unsupported(format!("EPSG:{epsg} does not fit a GeoKey (max 65535)")))?;
    let (model, crs_key) = if geographic {
        (MODEL_TYPE_GEOGRAPHIC, KEY_GEOGRAPHIC_TYPE)
    } else {
        (MODEL_TYPE_PROJECTED, KEY_PROJECTED_CS_TYPE)
    };
    // Header: version 1, revision 1.0, key count; then (key, location 0 = inline, count 1,
    // value) per key, in ascending key order.
    Ok(Value::Short(vec![
        1,
        1,
        0,
        3,
        KEY_GT_MODEL_TYPE,
        0,
        1,
        model,
        KEY_GT_RASTER_TYPE,
        0,
        1,
        RASTER_PIXEL_IS_AREA,
        crs_key,
        0,
        1,
        code,
    ]))
}

fn to_u32(v: usize, what: &str) -> Result<u32, CogError> {
    u32::try_from(v).map_err(|_| too_large(format!("{what} {v} exceeds classic TIFF's 32 bits")))
}

/// One image directory to write: its tags (StripOffsets as a placeholder of the right length)
/// and its compressed strips.
struct IfdPlan {
    entries: Vec<(u16, Value)>,
    strips: Vec<Vec<u8>>,
}

/// Lays the IFDs out (each followed by its out-of-line values, 8-byte aligned), then all
/// strips, fills in StripOffsets and serializes the file.
fn assemble(ifds: Vec<IfdPlan>) -> Result<Vec<u8>, CogError> {
    let (entries, strips): (Vec<_>, Vec<_>) =
        ifds.into_iter().map(|p| (p.entries, p.strips)).unzip();
    let mut dirs = Directories::layout(FORMAT, Vec::new(), entries, 8);
    let data_start = dirs.data_start();
    let mut end = data_start;
    let mut offsets = Vec::with_capacity(strips.len());
    for strips in &strips {
        let mut ifd_offsets = Vec::with_capacity(strips.len());
        for s in strips {
            ifd_offsets.push(end);
            end = end
                .checked_add(s.len() as u64)
                .ok_or_else(|| too_large("file size overflows".to_string()))?;
        }
        offsets.push(ifd_offsets);
    }
    if end > u64::from(u32::MAX) {
        return Err(too_large(format!(
            "{end} bytes exceed classic TIFF's 4 GiB"
        )));
    }
    for (i, offsets) in offsets.into_iter().enumerate() {
        dirs.set(i, TAG_STRIP_OFFSETS, FORMAT.offsets(offsets)?)?;
    }
    let mut out = dirs.serialize()?;
    out.reserve(strips.iter().flatten().map(Vec::len).sum());
    for s in strips.iter().flatten() {
        out.extend_from_slice(s);
    }
    Ok(out)
}

/// Writes `raster` as a GeoTIFF in the CRS `epsg`, georeferenced by its own grid
/// ([`Raster::transform`]: GDAL order, pixel corners). Masked pixels get `nodata`; see the
/// module docs for the layout.
pub fn write_geotiff_tile(
    raster: &Raster,
    epsg: u32,
    nodata: Option<f64>,
) -> Result<Vec<u8>, CogError> {
    let (w, h, bands) = (raster.width(), raster.height(), raster.bands());
    if raster.pixel_count() == 0 {
        return Err(unsupported(format!(
            "empty raster ({w}x{h}, {bands} bands)"
        )));
    }
    let transform = raster
        .transform()
        .ok_or_else(|| unsupported("a raster without a grid (no geotransform)".into()))?;
    let dtype = raster.dtype();
    if let Some(nd) = nodata {
        if !nodata_fits(dtype, nd) {
            return Err(unsupported(format!(
                "nodata {nd} cannot be stored in {}",
                dtype.name()
            )));
        }
    }
    let geographic = is_geographic(epsg)?;
    let geokeys = geokey_directory(epsg, geographic)?;
    let georef = georef_entries(transform)?;
    let spp = u16::try_from(bands).map_err(|_| too_large(format!("{bands} bands")))?;
    let (width, height) = (to_u32(w, "width")?, to_u32(h, "height")?);

    let mut compressor = Compressor::new(CompressionLvl::default());
    let raw = with_samples!(raster.samples(), v => planes(v, raster.mask(), bands, nodata));
    let strips = raw
        .iter()
        .map(|p| deflate(&mut compressor, p))
        .collect::<Result<Vec<_>, _>>()?;
    drop(raw);

    let bits = u16::try_from(dtype.size_bytes() * 8).unwrap_or(8);
    let mut entries: Vec<(u16, Value)> = vec![
        (TAG_IMAGE_WIDTH, Value::Long(vec![width])),
        (TAG_IMAGE_LENGTH, Value::Long(vec![height])),
        (TAG_BITS_PER_SAMPLE, Value::Short(vec![bits; bands])),
        (
            TAG_COMPRESSION,
            Value::Short(vec![COMPRESSION_ADOBE_DEFLATE]),
        ),
        (
            TAG_PHOTOMETRIC,
            Value::Short(vec![PHOTOMETRIC_MIN_IS_BLACK]),
        ),
        (TAG_STRIP_OFFSETS, Value::Long(vec![0; bands])),
        (TAG_SAMPLES_PER_PIXEL, Value::Short(vec![spp])),
        (TAG_ROWS_PER_STRIP, Value::Long(vec![height])),
        (TAG_STRIP_BYTE_COUNTS, strip_counts(&strips)?),
        (
            TAG_PLANAR_CONFIGURATION,
            Value::Short(vec![if bands > 1 { 2 } else { 1 }]),
        ),
        (
            TAG_SAMPLE_FORMAT,
            Value::Short(vec![sample_format(dtype); bands]),
        ),
        (TAG_GEO_KEY_DIRECTORY, geokeys),
    ];
    if bands > 1 {
        // MinIsBlack has one colour sample; every further sample must be declared.
        entries.push((
            TAG_EXTRA_SAMPLES,
            Value::Short(vec![EXTRA_SAMPLE_UNSPECIFIED; bands - 1]),
        ));
    }
    entries.extend(georef);
    if let Some(nd) = nodata {
        entries.push((TAG_GDAL_NODATA, Value::ascii(&nodata_text(nd))));
    }
    let mut ifds = vec![IfdPlan { entries, strips }];

    if nodata.is_none() && raster.mask().contains(&0) {
        let strip = deflate(&mut compressor, &mask_bits(raster.mask(), w))?;
        let strips = vec![strip];
        ifds.push(IfdPlan {
            entries: vec![
                (TAG_NEW_SUBFILE_TYPE, Value::Long(vec![SUBFILE_MASK])),
                (TAG_IMAGE_WIDTH, Value::Long(vec![width])),
                (TAG_IMAGE_LENGTH, Value::Long(vec![height])),
                (TAG_BITS_PER_SAMPLE, Value::Short(vec![1])),
                (
                    TAG_COMPRESSION,
                    Value::Short(vec![COMPRESSION_ADOBE_DEFLATE]),
                ),
                (TAG_PHOTOMETRIC, Value::Short(vec![PHOTOMETRIC_MASK])),
                (TAG_STRIP_OFFSETS, Value::Long(vec![0])),
                (TAG_SAMPLES_PER_PIXEL, Value::Short(vec![1])),
                (TAG_ROWS_PER_STRIP, Value::Long(vec![height])),
                (TAG_STRIP_BYTE_COUNTS, strip_counts(&strips)?),
            ],
            strips,
        });
    }
    assemble(ifds)
}

fn strip_counts(strips: &[Vec<u8>]) -> Result<Value, CogError> {
    Ok(Value::Long(
        strips
            .iter()
            .map(|s| to_u32(s.len(), "strip size"))
            .collect::<Result<_, _>>()?,
    ))
}
