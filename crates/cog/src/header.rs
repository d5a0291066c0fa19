//! TIFF / BigTIFF header parsing into [`TiffHeader`].
//!
//! CONTRACT (implemented by the parser in this file):
//! `TiffHeader::parse(data: &dyn RangeData) -> Result<TiffHeader, CogError>` walks every IFD of
//! the file, classifies each as a full-resolution image, a reduced-resolution image (overview)
//! or a mask (NewSubfileType bit 2 / PhotometricInterpretation = 4), reads GeoKeys and GDAL
//! tags, and returns the structure below. It never panics, whatever the bytes; every count,
//! offset and size is bounded before it is used.

use kiln_core::{Crs, DataType, GeoTransform};
use serde::{Deserialize, Serialize};

use crate::CogError;

/// Bytes of a file fetched so far. `get` returns the bytes `offset..offset+len`, or
/// `Err(CogError::NeedBytes { .. })` when they have not been fetched, or
/// `Err(CogError::Truncated { .. })` when the range lies past the end of the file.
pub trait RangeData {
    /// Total size of the file in bytes.
    fn len(&self) -> u64;
    fn get(&self, offset: u64, len: u64) -> Result<&[u8], CogError>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RangeData for [u8] {
    fn len(&self) -> u64 {
        self.len() as u64
    }
    fn get(&self, offset: u64, len: u64) -> Result<&[u8], CogError> {
        let end = offset.checked_add(len).ok_or_else(|| CogError::Truncated {
            reason: format!("range {offset}+{len} overflows"),
        })?;
        let total = <[u8]>::len(self) as u64;
        if end > total {
            return Err(CogError::Truncated {
                reason: format!("needs bytes {offset}..{end} but the file has {total}"),
            });
        }
        Ok(&self[offset as usize..end as usize])
    }
}

// `[u8]` is unsized and cannot become `&dyn RangeData` itself: these let a whole file in
// memory be passed as `&bytes.as_slice()` or `&vec`.
impl<T: RangeData + ?Sized> RangeData for &T {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn get(&self, offset: u64, len: u64) -> Result<&[u8], CogError> {
        (**self).get(offset, len)
    }
}

/// Note: with `RangeData` in scope, `vec.get(..)` on a `Vec<u8>` resolves to this trait's
/// two-argument `get`; write `vec.as_slice().get(..)` for the slice method.
impl RangeData for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn get(&self, offset: u64, len: u64) -> Result<&[u8], CogError> {
        RangeData::get(self.as_slice(), offset, len)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    None,
    /// Both code 8 (Adobe) and 32946 (legacy).
    Deflate,
    Lzw,
    PackBits,
    Zstd,
    /// New-style JPEG (code 7), possibly YCbCr with shared JPEGTables.
    Jpeg,
    Webp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Predictor {
    None,
    Horizontal,
    FloatingPoint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Planar {
    /// PlanarConfiguration = 1: samples of a pixel stored together.
    Chunky,
    /// PlanarConfiguration = 2: one plane per band, blocks of band 0 first.
    Separate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Photometric {
    MinIsWhite,
    MinIsBlack,
    Rgb,
    Palette,
    Mask,
    Separated,
    YCbCr,
    Other(u16),
}

/// One image (full resolution, overview or mask) of a TIFF file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageIfd {
    pub width: u32,
    pub height: u32,
    /// Tile size; for striped images, `width` x `RowsPerStrip` (clamped to the height).
    pub block_width: u32,
    pub block_height: u32,
    pub tiled: bool,
    pub samples_per_pixel: u16,
    pub bits_per_sample: u16,
    /// Sample type (masks with 1 bit per sample report `U8`: they decode to 0/255).
    pub dtype: DataType,
    pub planar: Planar,
    pub compression: Compression,
    pub predictor: Predictor,
    pub photometric: Photometric,
    /// NewSubfileType (bit 0: reduced resolution, bit 2: transparency mask).
    pub subfile_type: u32,
    /// ExtraSamples values (2 = unassociated alpha, 1 = associated alpha).
    pub extra_samples: Vec<u16>,
    /// JPEGTables (abbreviated table stream shared by all blocks), when present.
    pub jpeg_tables: Option<Vec<u8>>,
    /// ColorMap as 16-bit (r, g, b) triples, for palette images.
    pub palette: Option<Vec<[u16; 3]>>,
    /// Byte offset and byte count of every block, in TIFF block order.
    pub block_offsets: Vec<u64>,
    pub block_byte_counts: Vec<u64>,
    /// Offset of this IFD in the file (for COG layout checks).
    pub ifd_offset: u64,
}

/// Where pixel values refer to (GeoKey GTRasterTypeGeoKey).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RasterType {
    PixelIsArea,
    PixelIsPoint,
}

/// Georeferencing of the full-resolution image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Georef {
    /// Pixel-corner transform (already shifted by half a pixel for PixelIsPoint, as GDAL does).
    pub transform: GeoTransform,
    /// `None` when the file has no usable CRS keys.
    pub crs: Option<Crs>,
    pub raster_type: RasterType,
    /// GeoKeys that changed (or were ignored beside) the EPSG code the file names, in words;
    /// empty for most files. See `crs_keys`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crs_notes: Vec<String>,
}

/// Everything Kiln needs to know about a GeoTIFF to read pixels from it without touching the
/// header again. Serializable so the catalog can store it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TiffHeader {
    pub big_endian: bool,
    pub bigtiff: bool,
    /// Full-resolution image first, then overviews from finest to coarsest.
    pub images: Vec<ImageIfd>,
    /// Internal masks; `masks[i]` is `Some` when `images[i]` has one.
    pub masks: Vec<Option<ImageIfd>>,
    /// `None` when the file has neither a geotransform nor tie points.
    pub georef: Option<Georef>,
    /// GDAL_NODATA (tag 42113), parsed.
    pub nodata: Option<f64>,
    /// GDAL_METADATA (tag 42112) XML, verbatim.
    pub gdal_metadata: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

use crate::geokeys::{self, GeoTags};
use crate::ifd::{malformed, optional, unsupported, FileHeader, RawIfd, MAX_IFDS};

/// TIFF tag numbers read by the parser.
pub(crate) mod tag {
    pub const NEW_SUBFILE_TYPE: u16 = 254;
    pub const IMAGE_WIDTH: u16 = 256;
    pub const IMAGE_LENGTH: u16 = 257;
    pub const BITS_PER_SAMPLE: u16 = 258;
    pub const COMPRESSION: u16 = 259;
    pub const PHOTOMETRIC: u16 = 262;
    pub const STRIP_OFFSETS: u16 = 273;
    pub const SAMPLES_PER_PIXEL: u16 = 277;
    pub const ROWS_PER_STRIP: u16 = 278;
    pub const STRIP_BYTE_COUNTS: u16 = 279;
    pub const PLANAR_CONFIG: u16 = 284;
    pub const PREDICTOR: u16 = 317;
    pub const COLOR_MAP: u16 = 320;
    pub const TILE_WIDTH: u16 = 322;
    pub const TILE_LENGTH: u16 = 323;
    pub const TILE_OFFSETS: u16 = 324;
    pub const TILE_BYTE_COUNTS: u16 = 325;
    pub const EXTRA_SAMPLES: u16 = 338;
    pub const SAMPLE_FORMAT: u16 = 339;
    pub const JPEG_TABLES: u16 = 347;
    pub const YCBCR_SUBSAMPLING: u16 = 530;
    pub const MODEL_PIXEL_SCALE: u16 = 33550;
    pub const MODEL_TIEPOINT: u16 = 33922;
    pub const MODEL_TRANSFORMATION: u16 = 34264;
    pub const GEO_KEY_DIRECTORY: u16 = 34735;
    pub const GEO_DOUBLE_PARAMS: u16 = 34736;
    pub const GEO_ASCII_PARAMS: u16 = 34737;
    pub const GDAL_METADATA: u16 = 42112;
    pub const GDAL_NODATA: u16 = 42113;
}

/// Most blocks (tiles or strips, all planes) one image may have: 4 Mi offsets are 32 MiB of
/// header, far beyond any real COG, small enough that a lying header cannot exhaust memory.
pub const MAX_BLOCKS: u64 = 1 << 22;
/// Largest tile side in pixels.
pub const MAX_TILE_SIDE: u64 = 16_384;
/// Largest strip width in pixels (strips span the whole image width).
pub const MAX_STRIP_WIDTH: u64 = 1 << 20;
/// Largest decoded block, in bytes.
pub const MAX_BLOCK_BYTES: u64 = 256 << 20;
/// Most samples per pixel (hyperspectral cubes stay below this).
pub const MAX_SAMPLES_PER_PIXEL: u64 = 4096;
/// Largest GDAL_METADATA / GeoAsciiParams text we keep.
const MAX_TEXT_BYTES: u64 = 16 << 20;
/// Largest JPEGTables stream.
const MAX_JPEG_TABLES: u64 = 1 << 20;

impl TiffHeader {
    /// Parses the header of a TIFF or BigTIFF file (see the module docs for the contract).
    ///
    /// Deterministic and side-effect free: when it needs bytes that `data` has not fetched it
    /// returns [`CogError::NeedBytes`], and the caller fetches them and calls it again.
    pub fn parse(data: &dyn RangeData) -> Result<Self, CogError> {
        let fh = FileHeader::read(data)?;
        let ifds = walk_ifds(data, fh)?;

        // Classify on the cheap tags first, so pages we ignore are never fully parsed.
        let mut main = None;
        let mut overviews = Vec::new();
        let mut masks = Vec::new();
        for (i, ifd) in ifds.iter().enumerate() {
            let subfile = ifd.uint(tag::NEW_SUBFILE_TYPE)?.unwrap_or(0);
            let photometric = ifd.uint(tag::PHOTOMETRIC)?;
            if subfile & 4 != 0 || photometric == Some(4) {
                masks.push(i);
            } else if main.is_none() {
                main = Some(i);
            } else if subfile & 1 != 0 {
                overviews.push(i);
            }
            // Other full-resolution pages of a multi-page TIFF are not part of this raster.
        }
        let main = main.ok_or_else(|| malformed("the file holds no image, only masks"))?;
        let main_ifd = &ifds[main];
        let full = build_image(main_ifd, data.len())?;

        let mut reduced = Vec::with_capacity(overviews.len());
        for &i in &overviews {
            let ov = build_image(&ifds[i], data.len())?;
            // Thumbnails or pages of another kind are not overviews of this image.
            if ov.samples_per_pixel == full.samples_per_pixel
                && ov.dtype == full.dtype
                && ov.width <= full.width
                && ov.height <= full.height
            {
                reduced.push(ov);
            }
        }
        reduced.sort_by_key(|im| std::cmp::Reverse((im.width, im.height)));
        let mut images = Vec::with_capacity(reduced.len() + 1);
        images.push(full);
        images.extend(reduced);

        let mut mask_slots: Vec<Option<ImageIfd>> = vec![None; images.len()];
        for &i in &masks {
            let m = build_image(&ifds[i], data.len())?;
            let slot = images
                .iter()
                .zip(mask_slots.iter())
                .position(|(im, s)| s.is_none() && im.width == m.width && im.height == m.height);
            if let Some(s) = slot.and_then(|s| mask_slots.get_mut(s)) {
                *s = Some(m);
            }
        }

        let georef = geokeys::georef(&GeoTags::read(main_ifd)?)?;
        let nodata =
            optional(main_ifd.ascii(tag::GDAL_NODATA, 1024))?.and_then(|s| parse_nodata(&s));
        let gdal_metadata = optional(main_ifd.ascii(tag::GDAL_METADATA, MAX_TEXT_BYTES))?;

        Ok(Self {
            big_endian: fh.order.big_endian,
            bigtiff: fh.bigtiff,
            images,
            masks: mask_slots,
            georef,
            nodata,
            gdal_metadata,
        })
    }

    /// The full-resolution image (`None` only for a header built by hand without images).
    pub fn full_resolution(&self) -> Option<&ImageIfd> {
        self.images.first()
    }

    /// Number of overviews (reduced-resolution images).
    pub fn overview_count(&self) -> usize {
        self.images.len().saturating_sub(1)
    }
}

/// Follows the IFD chain from the first IFD, with loop detection and a bound on its length.
fn walk_ifds(data: &dyn RangeData, fh: FileHeader) -> Result<Vec<RawIfd<'_>>, CogError> {
    if fh.first_ifd == 0 {
        return Err(malformed("the file has no IFD (first IFD offset is 0)"));
    }
    let mut ifds: Vec<RawIfd<'_>> = Vec::new();
    let mut offset = fh.first_ifd;
    while offset != 0 {
        if offset >= data.len() {
            if ifds.is_empty() {
                return Err(CogError::Truncated {
                    reason: format!(
                        "first IFD at offset {offset} lies past the end of the file ({} bytes)",
                        data.len()
                    ),
                });
            }
            // A dangling next-IFD pointer after valid IFDs: libtiff stops there too.
            break;
        }
        if ifds.iter().any(|i| i.offset == offset) {
            return Err(malformed(format!(
                "IFD chain loops back to offset {offset}"
            )));
        }
        if ifds.len() >= MAX_IFDS {
            return Err(CogError::TooLarge {
                what: "IFD chain",
                reason: format!("more than {MAX_IFDS} IFDs"),
            });
        }
        let ifd = RawIfd::read(data, fh, offset)?;
        offset = ifd.next;
        ifds.push(ifd);
    }
    Ok(ifds)
}

/// GDAL_NODATA text to a value: GDAL writes "nan", "-inf", "1e+38", sometimes with spaces.
pub(crate) fn parse_nodata(text: &str) -> Option<f64> {
    let t = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if t.is_empty() {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    match lower.as_str() {
        "nan" | "+nan" | "-nan" | "1.#qnan" | "-1.#ind" => return Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" | "1.#inf" => return Some(f64::INFINITY),
        "-inf" | "-infinity" | "-1.#inf" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    lower.parse::<f64>().ok()
}

fn compression_from_code(code: u64) -> Result<Compression, CogError> {
    let name = match code {
        1 => return Ok(Compression::None),
        5 => return Ok(Compression::Lzw),
        7 => return Ok(Compression::Jpeg),
        8 | 32946 => return Ok(Compression::Deflate),
        32773 => return Ok(Compression::PackBits),
        50000 => return Ok(Compression::Zstd),
        50001 => return Ok(Compression::Webp),
        2 => "CCITT RLE",
        3 => "CCITT Group 3 fax",
        4 => "CCITT Group 4 fax",
        6 => "old-style JPEG",
        9 | 10 => "JBIG",
        32809 => "ThunderScan",
        32908 | 32909 => "PixarLog",
        33003 | 33005 | 34712 => "JPEG 2000",
        34676 | 34677 => "SGILog",
        34887 => "LERC",
        34925 => "LZMA",
        50002 | 52546 => "JPEG XL",
        _ => "unknown",
    };
    Err(unsupported(format!("compression {name} ({code})")))
}

fn photometric_from_code(code: u64) -> Photometric {
    match code {
        0 => Photometric::MinIsWhite,
        1 => Photometric::MinIsBlack,
        2 => Photometric::Rgb,
        3 => Photometric::Palette,
        4 => Photometric::Mask,
        5 => Photometric::Separated,
        6 => Photometric::YCbCr,
        other => Photometric::Other(u16::try_from(other).unwrap_or(u16::MAX)),
    }
}

fn dtype_from(bits: u16, format: u64) -> Result<DataType, CogError> {
    // SampleFormat 4 ("void") is read as unsigned, as libtiff and GDAL do.
    let format = if format == 4 { 1 } else { format };
    match (bits, format) {
        (1 | 2 | 4 | 8, 1) => Ok(DataType::U8),
        (8, 2) => Ok(DataType::I8),
        (16, 1) => Ok(DataType::U16),
        (16, 2) => Ok(DataType::I16),
        (32, 1) => Ok(DataType::U32),
        (32, 2) => Ok(DataType::I32),
        (32, 3) => Ok(DataType::F32),
        (64, 3) => Ok(DataType::F64),
        (16 | 24, 3) => Err(unsupported(format!("{bits}-bit floating-point samples"))),
        (64, 1 | 2) => Err(unsupported("64-bit integer samples")),
        (_, 5 | 6) => Err(unsupported("complex samples")),
        (_, 1..=3) => Err(unsupported(format!(
            "{bits}-bit samples (SampleFormat {format})"
        ))),
        _ => Err(malformed(format!("unknown SampleFormat {format}"))),
    }
}

/// All values of a per-sample tag must agree (we decode one sample type per image).
fn single_value(values: &[u64], what: &str) -> Result<Option<u64>, CogError> {
    match values.split_first() {
        None => Ok(None),
        Some((first, rest)) => {
            if rest.iter().any(|v| v != first) {
                Err(unsupported(format!(
                    "different {what} per sample ({values:?})"
                )))
            } else {
                Ok(Some(*first))
            }
        }
    }
}

fn to_u32(v: u64, what: &str) -> Result<u32, CogError> {
    u32::try_from(v).map_err(|_| malformed(format!("{what} {v} does not fit 32 bits")))
}

/// Builds and validates one image from its IFD.
fn build_image(ifd: &RawIfd<'_>, file_len: u64) -> Result<ImageIfd, CogError> {
    let at = ifd.offset;
    let req = |tag: u16, name: &str| -> Result<u64, CogError> {
        ifd.uint(tag)?
            .ok_or_else(|| malformed(format!("IFD at {at} has no {name} tag")))
    };
    let width = to_u32(req(tag::IMAGE_WIDTH, "ImageWidth")?, "ImageWidth")?;
    let height = to_u32(req(tag::IMAGE_LENGTH, "ImageLength")?, "ImageLength")?;
    if width == 0 || height == 0 {
        return Err(malformed(format!(
            "IFD at {at} has an empty {width}x{height} image"
        )));
    }
    let spp = ifd.uint(tag::SAMPLES_PER_PIXEL)?.unwrap_or(1);
    if spp == 0 || spp > MAX_SAMPLES_PER_PIXEL {
        return Err(if spp == 0 {
            malformed("SamplesPerPixel is 0")
        } else {
            CogError::TooLarge {
                what: "SamplesPerPixel",
                reason: format!("{spp} samples per pixel (limit {MAX_SAMPLES_PER_PIXEL})"),
            }
        });
    }
    // spp <= 4096 fits u16.
    let samples_per_pixel = spp as u16;
    let bits = ifd
        .uints(tag::BITS_PER_SAMPLE, MAX_SAMPLES_PER_PIXEL)?
        .map(|v| single_value(&v, "BitsPerSample"))
        .transpose()?
        .flatten()
        .unwrap_or(1);
    let bits_per_sample = u16::try_from(bits)
        .ok()
        .filter(|b| *b > 0)
        .ok_or_else(|| malformed(format!("BitsPerSample {bits}")))?;
    let format = ifd
        .uints(tag::SAMPLE_FORMAT, MAX_SAMPLES_PER_PIXEL)?
        .map(|v| single_value(&v, "SampleFormat"))
        .transpose()?
        .flatten()
        .unwrap_or(1);
    let dtype = dtype_from(bits_per_sample, format)?;
    let compression = compression_from_code(ifd.uint(tag::COMPRESSION)?.unwrap_or(1))?;
    let photometric = photometric_from_code(ifd.uint(tag::PHOTOMETRIC)?.unwrap_or(1));
    let planar = match ifd.uint(tag::PLANAR_CONFIG)?.unwrap_or(1) {
        1 => Planar::Chunky,
        2 => Planar::Separate,
        p => return Err(malformed(format!("PlanarConfiguration {p}"))),
    };
    let subfile_type = to_u32(
        ifd.uint(tag::NEW_SUBFILE_TYPE)?.unwrap_or(0),
        "NewSubfileType",
    )?;

    // libtiff applies a predictor only for these codecs; elsewhere the tag is ignored.
    let predictor_applies = matches!(
        compression,
        Compression::Deflate | Compression::Lzw | Compression::Zstd
    );
    let predictor = match ifd.uint(tag::PREDICTOR)?.unwrap_or(1) {
        _ if !predictor_applies => Predictor::None,
        1 => Predictor::None,
        2 => Predictor::Horizontal,
        3 => Predictor::FloatingPoint,
        p => return Err(unsupported(format!("predictor {p}"))),
    };
    match predictor {
        Predictor::Horizontal if dtype.is_float() => {
            return Err(unsupported(
                "horizontal predictor on floating-point samples",
            ))
        }
        Predictor::Horizontal | Predictor::FloatingPoint if bits_per_sample < 8 => {
            return Err(unsupported(format!(
                "predictor on {bits_per_sample}-bit samples"
            )))
        }
        Predictor::FloatingPoint if !dtype.is_float() => {
            return Err(unsupported("floating-point predictor on integer samples"))
        }
        _ => {}
    }

    let block_bands = if planar == Planar::Separate { 1 } else { spp };
    match compression {
        Compression::Jpeg => {
            let ok = bits_per_sample == 8
                && dtype == DataType::U8
                && (block_bands == 1 || block_bands == 3)
                && (photometric != Photometric::YCbCr || block_bands == 3);
            if !ok {
                return Err(unsupported(format!(
                    "JPEG with {block_bands} samples per block of {bits_per_sample} bits ({photometric:?})"
                )));
            }
        }
        Compression::Webp => {
            if dtype != DataType::U8
                || bits_per_sample != 8
                || !(block_bands == 3 || block_bands == 4)
            {
                return Err(unsupported(format!(
                    "WebP with {block_bands} samples per block of {bits_per_sample} bits"
                )));
            }
        }
        _ => {
            if photometric == Photometric::YCbCr {
                return Err(unsupported("YCbCr samples without JPEG compression"));
            }
        }
    }

    let tiled = ifd.has(tag::TILE_WIDTH) && ifd.has(tag::TILE_LENGTH);
    let (block_width, block_height) = if tiled {
        let tw = req(tag::TILE_WIDTH, "TileWidth")?;
        let th = req(tag::TILE_LENGTH, "TileLength")?;
        if tw == 0 || th == 0 {
            return Err(malformed(format!("tile size {tw}x{th}")));
        }
        if tw > MAX_TILE_SIDE || th > MAX_TILE_SIDE {
            return Err(CogError::TooLarge {
                what: "tile",
                reason: format!("{tw}x{th} pixels (limit {MAX_TILE_SIDE} per side)"),
            });
        }
        (tw as u32, th as u32)
    } else {
        if u64::from(width) > MAX_STRIP_WIDTH {
            return Err(CogError::TooLarge {
                what: "strip",
                reason: format!("image is {width} pixels wide and not tiled"),
            });
        }
        // A RowsPerStrip of 0 or beyond the height (2^32-1 is the default) means one strip.
        let rows = ifd.uint(tag::ROWS_PER_STRIP)?.unwrap_or(u64::MAX);
        let rows = if rows == 0 {
            u64::from(height)
        } else {
            rows.min(u64::from(height))
        };
        (width, rows as u32)
    };
    let block_bytes = (u64::from(block_width) * u64::from(block_height))
        .checked_mul(block_bands)
        .and_then(|v| v.checked_mul(u64::from(bits_per_sample).div_ceil(8).max(1)))
        .unwrap_or(u64::MAX);
    if block_bytes > MAX_BLOCK_BYTES {
        return Err(CogError::TooLarge {
            what: "block",
            reason: format!(
                "{block_width}x{block_height} pixels x {block_bands} samples decode to {block_bytes} bytes (limit {MAX_BLOCK_BYTES})"
            ),
        });
    }

    let across = u64::from(width).div_ceil(u64::from(block_width));
    let down = u64::from(height).div_ceil(u64::from(block_height));
    let planes = if planar == Planar::Separate { spp } else { 1 };
    let expected = across
        .checked_mul(down)
        .and_then(|v| v.checked_mul(planes))
        .unwrap_or(u64::MAX);
    if expected > MAX_BLOCKS {
        return Err(CogError::TooLarge {
            what: "block count",
            reason: format!("{expected} blocks (limit {MAX_BLOCKS})"),
        });
    }
    let (off_tag, count_tag, kind) = if tiled {
        (tag::TILE_OFFSETS, tag::TILE_BYTE_COUNTS, "Tile")
    } else {
        (tag::STRIP_OFFSETS, tag::STRIP_BYTE_COUNTS, "Strip")
    };
    let mut block_offsets = ifd
        .uints(off_tag, MAX_BLOCKS)?
        .ok_or_else(|| malformed(format!("IFD at {at} has no {kind}Offsets tag")))?;
    let mut block_byte_counts = ifd
        .uints(count_tag, MAX_BLOCKS)?
        .ok_or_else(|| malformed(format!("IFD at {at} has no {kind}ByteCounts tag")))?;
    // `expected` <= MAX_BLOCKS, fits usize.
    let expected = expected as usize;
    for (v, name) in [
        (&mut block_offsets, "Offsets"),
        (&mut block_byte_counts, "ByteCounts"),
    ] {
        if v.len() < expected {
            return Err(malformed(format!(
                "{kind}{name} has {} values, the {width}x{height} image needs {expected}",
                v.len()
            )));
        }
        v.truncate(expected);
    }
    for (i, (&o, &n)) in block_offsets.iter().zip(&block_byte_counts).enumerate() {
        if o != 0 && n != 0 && o.checked_add(n).is_none_or(|end| end > file_len) {
            return Err(CogError::Truncated {
                reason: format!(
                    "block {i} at {o}+{n} lies past the end of the file ({file_len} bytes)"
                ),
            });
        }
    }

    let extra_samples = ifd
        .uints(tag::EXTRA_SAMPLES, MAX_SAMPLES_PER_PIXEL)?
        .unwrap_or_default()
        .into_iter()
        .map(|v| u16::try_from(v).unwrap_or(u16::MAX))
        .collect();
    let jpeg_tables = if compression == Compression::Jpeg {
        ifd.bytes(tag::JPEG_TABLES, MAX_JPEG_TABLES)?
    } else {
        None
    };
    // GDAL reads a ColorMap on any single-band image that is not colour, whatever the
    // photometric tag says (some writers pair it with MinIsWhite), and so do we.
    let palette_capable = block_bands == 1
        && spp == 1
        && bits_per_sample <= 16
        && !dtype.is_float()
        && !matches!(
            photometric,
            Photometric::Rgb | Photometric::YCbCr | Photometric::Mask
        );
    let palette = if palette_capable {
        let n = 1usize << bits_per_sample;
        match ifd.uints(tag::COLOR_MAP, 3 * 65_536)? {
            Some(v) if v.len() >= 3 * n => Some(
                (0..n)
                    .map(|i| {
                        let c = |k: usize| v.get(k * n + i).map_or(0, |&x| x as u16);
                        [c(0), c(1), c(2)]
                    })
                    .collect(),
            ),
            Some(v) => {
                return Err(malformed(format!(
                    "ColorMap has {} values, {bits_per_sample}-bit samples need {}",
                    v.len(),
                    3 * n
                )))
            }
            None => None,
        }
    } else {
        None
    };
    // The JPEG stream describes its own chroma subsampling; the tag only has to be sane.
    if photometric == Photometric::YCbCr {
        if let Some(sub) = ifd.uints(tag::YCBCR_SUBSAMPLING, 2)? {
            if sub.iter().any(|s| !matches!(s, 1 | 2 | 4)) {
                return Err(malformed(format!("YCbCrSubsampling {sub:?}")));
            }
        }
    }

    Ok(ImageIfd {
        width,
        height,
        block_width,
        block_height,
        tiled,
        samples_per_pixel,
        bits_per_sample,
        dtype,
        planar,
        compression,
        predictor,
        photometric,
        subfile_type,
        extra_samples,
        jpeg_tables,
        palette,
        block_offsets,
        block_byte_counts,
        ifd_offset: at,
    })
}

impl ImageIfd {
    /// Number of block columns.
    pub fn blocks_across(&self) -> usize {
        (self.width as usize).div_ceil(self.block_width.max(1) as usize)
    }

    /// Number of block rows.
    pub fn blocks_down(&self) -> usize {
        (self.height as usize).div_ceil(self.block_height.max(1) as usize)
    }

    /// Number of sample planes stored as separate blocks (1 for chunky images).
    pub fn planes(&self) -> usize {
        match self.planar {
            Planar::Separate => usize::from(self.samples_per_pixel),
            Planar::Chunky => 1,
        }
    }

    /// Number of bands (samples per pixel) of the image.
    pub fn bands(&self) -> usize {
        usize::from(self.samples_per_pixel)
    }

    /// Number of bands one decoded block carries: all of them for chunky images, one for
    /// separate planes.
    pub fn block_bands(&self) -> usize {
        match self.planar {
            Planar::Separate => 1,
            Planar::Chunky => self.bands(),
        }
    }

    /// Total number of blocks (all planes).
    pub fn block_count(&self) -> usize {
        self.blocks_across() * self.blocks_down() * self.planes()
    }

    /// Index of the block at block column `col`, block row `row`, sample plane `plane`
    /// (0 for chunky images), in TIFF order.
    pub fn block_index(&self, col: usize, row: usize, plane: usize) -> usize {
        (plane * self.blocks_down() + row) * self.blocks_across() + col
    }

    /// Byte offset and length of block `i`; `None` for blocks that are out of range or sparse
    /// (offset or byte count 0: GDAL reads those as nodata / zeros).
    pub fn block_range(&self, i: usize) -> Option<(u64, u64)> {
        let offset = *self.block_offsets.get(i)?;
        let len = *self.block_byte_counts.get(i)?;
        (offset != 0 && len != 0).then_some((offset, len))
    }

    /// Rows of pixels block `i` stores: the tile height for tiles; for strips, the strip
    /// height, less for the last strip.
    pub fn block_rows(&self, i: usize) -> usize {
        let bh = self.block_height.max(1) as usize;
        if self.tiled {
            return bh;
        }
        let row =
            (i % (self.blocks_across() * self.blocks_down()).max(1)) / self.blocks_across().max(1);
        (self.height as usize).saturating_sub(row * bh).min(bh)
    }

    /// True for transparency masks (NewSubfileType bit 2 or PhotometricInterpretation 4).
    pub fn is_mask(&self) -> bool {
        self.subfile_type & 4 != 0 || self.photometric == Photometric::Mask
    }
}
