//! The Cloud-Optimized GeoTIFF writer of `kiln optimize`: block encoding and the streaming
//! file assembler.
//!
//! Two layers:
//!
//! * [`encode_block`] / [`encode_mask_block`] turn the samples of one block into the bytes a
//!   TIFF stores for it: chunky (pixel-interleaved) little-endian samples, edge blocks padded
//!   to the full block size with zeros (as GDAL's edge tiles), the predictor for the data type ([`default_predictor`]), then the codec
//!   (none, DEFLATE via libdeflater, ZSTD, LZW in TIFF's MSB flavour, WebP for 8-bit RGB/RGBA).
//!   Masks are 1 bit per pixel, DEFLATE, as GDAL's internal masks. JPEG is not implemented
//!   (`CogError::Unsupported`). Encoding is pure and thread-safe: callers run it in parallel.
//! * [`CogWriter`] assembles the file. Blocks, already compressed, arrive in any order per
//!   (level, image or mask, block index) and are appended to a spool file beside the target,
//!   so memory holds only the offset table (16 bytes per block), never pixels.
//!   [`CogWriter::finish`] writes the COG to a temporary file beside the target and renames it
//!   over the target; the spool is deleted. On error (or when the writer is dropped without
//!   `finish`) nothing is left at the target and the spool is removed.
//!
//! File layout written by `finish` (GDAL's COG layout):
//!
//! 1. TIFF header, little-endian; classic TIFF, or BigTIFF when the file would pass 4 GiB
//!    (or when [`CogSpec::bigtiff`] forces it).
//! 2. Optionally ([`CogSpec::ghost_area`]) GDAL's "ghost" structural metadata:
//!    `LAYOUT=IFDS_BEFORE_DATA`, `BLOCK_ORDER=ROW_MAJOR`, `BLOCK_LEADER=SIZE_AS_UINT4`,
//!    `BLOCK_TRAILER=LAST_4_BYTES_REPEATED`, `KNOWN_INCOMPATIBLE_EDITION=NO`, and
//!    `MASK_INTERLEAVED_WITH_IMAGERY=YES` with a mask. The leaders and trailers are written:
//!    each stored block is preceded by its byte count (u32 LE) and followed by a copy of its
//!    last 4 bytes. Without the ghost area blocks are stored bare.
//! 3. All IFDs, each followed by its out-of-line values, in GDAL's order: full-resolution
//!    image, its mask, the overviews from finest to coarsest, then their masks (finest first).
//! 4. Image data, coarsest overview first, full resolution last; within a level, blocks in
//!    row-major order, each mask block right after the image block it belongs to.
//!
//! Tags written: NewSubfileType (1 on overviews, 4 on the full-resolution mask, 5 on overview
//! masks), sizes, BitsPerSample, Compression, Photometric, SamplesPerPixel, Planar = chunky,
//! Predictor, tile size / offsets / byte counts, SampleFormat, ExtraSamples and ColorMap when
//! given, GDAL_NODATA on every image IFD; Software, the raw geo tags ([`RawGeoTags`]) and
//! GDAL_METADATA on the full-resolution IFD only (as GDAL does).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use kiln_core::{DataType, Samples};
use libdeflater::{CompressionLvl, Compressor};
use thiserror::Error;

use crate::geotags::RawGeoTags;
use crate::header::tag;
use crate::write::{nodata_text, sample_format};
use crate::{CogError, Compression, Photometric, Predictor};

// ---------------------------------------------------------------------------------------------
// Block encoding
// ---------------------------------------------------------------------------------------------

/// Default DEFLATE level (GDAL's default).
pub const DEFAULT_DEFLATE_LEVEL: i32 = 6;
/// Default ZSTD level (GDAL's `ZSTD_LEVEL` default; higher levels cost much time for a few %).
pub const DEFAULT_ZSTD_LEVEL: i32 = 9;
/// Default WebP quality (GDAL's default).
pub const DEFAULT_WEBP_QUALITY: i32 = 75;

/// How the samples handed to [`encode_block`] are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleLayout {
    /// All of band 0, then band 1... (Kiln's [`kiln_core::Raster`] and decoded
    /// [`crate::Block`]s).
    BandSequential,
    /// Pixel-interleaved: the bands of pixel 0, then of pixel 1...
    Interleaved,
}

/// Codec settings of a COG (shared by every level).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodeOptions {
    /// `None`, `Deflate`, `Zstd`, `Lzw` or `Webp` (`Jpeg` and `PackBits` are unsupported).
    pub compression: Compression,
    /// DEFLATE level 1-12 (default [`DEFAULT_DEFLATE_LEVEL`]), ZSTD level 1-22 (default
    /// [`DEFAULT_ZSTD_LEVEL`]), WebP quality 0-100 (default [`DEFAULT_WEBP_QUALITY`]); ignored
    /// by the other codecs.
    pub level: Option<i32>,
    /// `None`: [`default_predictor`] for the data type.
    pub predictor: Option<Predictor>,
    /// WebP only: lossless instead of lossy at `level`.
    pub webp_lossless: bool,
}

impl EncodeOptions {
    /// `compression` with its default level and predictor.
    pub fn new(compression: Compression) -> Self {
        Self {
            compression,
            level: None,
            predictor: None,
            webp_lossless: false,
        }
    }

    /// The predictor blocks of `dtype` get with these options.
    pub fn predictor_for(&self, dtype: DataType) -> Predictor {
        self.predictor
            .unwrap_or_else(|| default_predictor(self.compression, dtype))
    }
}

/// The predictor GDAL's COG driver picks with `PREDICTOR=YES`: horizontal differencing (2)
/// for integers, floating point (3) for floats, none for codecs that do not take one (none,
/// WebP, JPEG).
pub fn default_predictor(compression: Compression, dtype: DataType) -> Predictor {
    match compression {
        Compression::Deflate | Compression::Zstd | Compression::Lzw => {
            if dtype.is_float() {
                Predictor::FloatingPoint
            } else {
                Predictor::Horizontal
            }
        }
        _ => Predictor::None,
    }
}

/// The samples of one block to encode.
#[derive(Debug, Clone, Copy)]
pub struct BlockData<'a> {
    /// `width * height * bands` samples, ordered as `layout` says.
    pub samples: &'a Samples,
    pub layout: SampleLayout,
    /// Pixels of the block that hold data: the block size, less for edge blocks.
    pub width: usize,
    pub height: usize,
    pub bands: usize,
}

fn invalid(reason: impl Into<String>) -> CogError {
    CogError::Malformed {
        reason: reason.into(),
    }
}

fn unsupported(feature: impl Into<String>) -> CogError {
    CogError::Unsupported {
        feature: feature.into(),
    }
}

/// Little-endian serialisation and predictor arithmetic of one sample type.
trait EncSample: Copy + Default {
    const SIZE: usize;
    fn put_le(self, out: &mut [u8]);
    /// Big-endian bytes (the floating-point predictor splits samples MSB first).
    fn put_be(self, out: &mut [u8]);
    fn wrapping_sub(self, other: Self) -> Self;
    const FLOAT: bool;
}

macro_rules! enc_int {
    ($($t:ty),*) => {$(
        impl EncSample for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            const FLOAT: bool = false;
            #[inline]
            fn put_le(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
            #[inline]
            fn put_be(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_be_bytes());
            }
            #[inline]
            fn wrapping_sub(self, other: Self) -> Self {
                <$t>::wrapping_sub(self, other)
            }
        }
    )*};
}
enc_int!(u8, i8, u16, i16, u32, i32);

macro_rules! enc_float {
    ($($t:ty),*) => {$(
        impl EncSample for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            const FLOAT: bool = true;
            #[inline]
            fn put_le(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
            #[inline]
            fn put_be(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_be_bytes());
            }
            #[inline]
            fn wrapping_sub(self, other: Self) -> Self {
                self - other
            }
        }
    )*};
}
enc_float!(f32, f64);

/// The block as chunky samples of the full block size, zero padded.
fn pad_interleave<T: EncSample>(
    v: &[T],
    data: &BlockData<'_>,
    bw: usize,
    bh: usize,
) -> Result<Vec<T>, CogError> {
    let (w, h, bands) = (data.width, data.height, data.bands);
    if w == 0 || h == 0 || bands == 0 || w > bw || h > bh {
        return Err(invalid(format!(
            "block data of {w}x{h} pixels x {bands} bands does not fit a {bw}x{bh} block"
        )));
    }
    if v.len() != w * h * bands {
        return Err(invalid(format!(
            "{w}x{h}x{bands} block data holds {} samples",
            v.len()
        )));
    }
    // Padding stays zero, as in GDAL's edge tiles.
    let mut out = vec![T::default(); bw * bh * bands];
    let npix = w * h;
    for y in 0..h {
        let dst_row = &mut out[y * bw * bands..(y * bw + w) * bands];
        match data.layout {
            SampleLayout::Interleaved => {
                dst_row.copy_from_slice(&v[y * w * bands..(y + 1) * w * bands]);
            }
            SampleLayout::BandSequential => {
                for b in 0..bands {
                    let src = &v[b * npix + y * w..b * npix + (y + 1) * w];
                    for (d, &s) in dst_row.iter_mut().skip(b).step_by(bands).zip(src) {
                        *d = s;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Serialises chunky samples with `predictor` applied (rows of `per_row` samples, `bands`
/// samples per pixel).
fn predicted_bytes<T: EncSample>(
    mut v: Vec<T>,
    per_row: usize,
    bands: usize,
    predictor: Predictor,
) -> Result<Vec<u8>, CogError> {
    let mut out = vec![0u8; v.len() * T::SIZE];
    match predictor {
        Predictor::None => {
            for (s, o) in v.iter().zip(out.chunks_exact_mut(T::SIZE)) {
                s.put_le(o);
            }
        }
        Predictor::Horizontal => {
            if T::FLOAT {
                return Err(unsupported(
                    "horizontal predictor on floating-point samples",
                ));
            }
            for row in v.chunks_exact_mut(per_row.max(1)) {
                for i in (bands..row.len()).rev() {
                    row[i] = row[i].wrapping_sub(row[i - bands]);
                }
            }
            for (s, o) in v.iter().zip(out.chunks_exact_mut(T::SIZE)) {
                s.put_le(o);
            }
        }
        Predictor::FloatingPoint => {
            if !T::FLOAT {
                return Err(unsupported("floating-point predictor on integer samples"));
            }
            // TIFF Technical Note 3: per row, byte planes MSB first, then byte differences
            // with a stride of one pixel.
            let row_bytes = per_row * T::SIZE;
            let mut be = vec![0u8; T::SIZE];
            for (row, dst) in v
                .chunks_exact(per_row.max(1))
                .zip(out.chunks_exact_mut(row_bytes.max(1)))
            {
                for (i, s) in row.iter().enumerate() {
                    s.put_be(&mut be);
                    for (k, &byte) in be.iter().enumerate() {
                        dst[k * per_row + i] = byte;
                    }
                }
                for i in (bands..dst.len()).rev() {
                    dst[i] = dst[i].wrapping_sub(dst[i - bands]);
                }
            }
        }
    }
    Ok(out)
}

fn deflate(raw: &[u8], level: i32) -> Result<Vec<u8>, CogError> {
    let lvl = CompressionLvl::new(level)
        .map_err(|_| unsupported(format!("DEFLATE level {level} (valid: 0-12)")))?;
    let mut c = Compressor::new(lvl);
    let mut buf = vec![0u8; c.zlib_compress_bound(raw.len())];
    let n = c
        .zlib_compress(raw, &mut buf)
        .map_err(|e| invalid(format!("DEFLATE compression failed: {e:?}")))?;
    buf.truncate(n);
    Ok(buf)
}

fn compress(raw: &[u8], opts: &EncodeOptions) -> Result<Vec<u8>, CogError> {
    match opts.compression {
        Compression::None => Ok(raw.to_vec()),
        Compression::Deflate => deflate(raw, opts.level.unwrap_or(DEFAULT_DEFLATE_LEVEL)),
        Compression::Zstd => {
            let level = opts.level.unwrap_or(DEFAULT_ZSTD_LEVEL);
            zstd::bulk::compress(raw, level)
                .map_err(|e| invalid(format!("ZSTD compression (level {level}) failed: {e}")))
        }
        Compression::Lzw => weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
            .encode(raw)
            .map_err(|e| invalid(format!("LZW compression failed: {e}"))),
        other => Err(unsupported(format!("writing {other:?} compression"))),
    }
}

fn encode_webp(
    px: &[u8],
    bands: usize,
    bw: usize,
    bh: usize,
    opts: &EncodeOptions,
) -> Result<Vec<u8>, CogError> {
    let (w, h) = (
        u32::try_from(bw).map_err(|_| invalid("block too wide"))?,
        u32::try_from(bh).map_err(|_| invalid("block too tall"))?,
    );
    let enc = match bands {
        3 => webp::Encoder::from_rgb(px, w, h),
        4 => webp::Encoder::from_rgba(px, w, h),
        n => {
            return Err(unsupported(format!(
                "WebP with {n} bands (only 3 or 4 8-bit bands)"
            )))
        }
    };
    let quality = opts.level.unwrap_or(DEFAULT_WEBP_QUALITY).clamp(0, 100) as f32;
    let mem = enc
        .encode_simple(opts.webp_lossless, quality)
        .map_err(|e| invalid(format!("WebP encoding failed: {e:?}")))?;
    Ok(mem.to_vec())
}

/// Encodes one block of a `block_width` x `block_height` tiled image: pads it to the full
/// block size, interleaves it (PlanarConfiguration 1), applies the predictor and compresses.
/// Returns the bytes to store for the block (what [`CogWriter::write_block`] takes).
pub fn encode_block(
    data: &BlockData<'_>,
    block_width: usize,
    block_height: usize,
    opts: &EncodeOptions,
) -> Result<Vec<u8>, CogError> {
    let dtype = data.samples.dtype();
    let predictor = match opts.compression {
        Compression::Deflate | Compression::Zstd | Compression::Lzw => opts.predictor_for(dtype),
        _ => Predictor::None,
    };
    let per_row = block_width * data.bands;
    let raw = kiln_core::with_samples!(data.samples, v => {
        let chunky = pad_interleave(v, data, block_width, block_height)?;
        if opts.compression == Compression::Webp {
            if dtype != DataType::U8 {
                return Err(unsupported(format!("WebP with {} samples", dtype.name())));
            }
            let bytes = predicted_bytes(chunky, per_row, data.bands, Predictor::None)?;
            return encode_webp(&bytes, data.bands, block_width, block_height, opts);
        }
        predicted_bytes(chunky, per_row, data.bands, predictor)?
    });
    compress(&raw, opts)
}

/// Encodes one block of a GDAL-style internal mask: `mask` holds `width * height` bytes (row
/// major, non-zero = valid pixel) for a `block_width` x `block_height` block; stored as 1 bit
/// per pixel (MSB first, rows padded to whole bytes), padding invalid, DEFLATE at `level`
/// (default [`DEFAULT_DEFLATE_LEVEL`]).
pub fn encode_mask_block(
    mask: &[u8],
    width: usize,
    height: usize,
    block_width: usize,
    block_height: usize,
    level: Option<i32>,
) -> Result<Vec<u8>, CogError> {
    if width == 0 || height == 0 || width > block_width || height > block_height {
        return Err(invalid(format!(
            "mask data of {width}x{height} pixels does not fit a {block_width}x{block_height} block"
        )));
    }
    if mask.len() != width * height {
        return Err(invalid(format!(
            "{width}x{height} mask holds {} values",
            mask.len()
        )));
    }
    let row_bytes = block_width.div_ceil(8);
    let mut bits = vec![0u8; row_bytes * block_height];
    for (y, row) in mask.chunks_exact(width).enumerate() {
        let dst = &mut bits[y * row_bytes..(y + 1) * row_bytes];
        for (x, &m) in row.iter().enumerate() {
            if m != 0 {
                dst[x / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    deflate(&bits, level.unwrap_or(DEFAULT_DEFLATE_LEVEL))
}

// ---------------------------------------------------------------------------------------------
// The assembler
// ---------------------------------------------------------------------------------------------

/// Errors of [`CogWriter`].
#[derive(Debug, Error)]
pub enum CogWriteError {
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The spec or a call does not make sense (block out of range, written twice, missing...).
    #[error("COG {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    /// Encoding or TIFF-level error.
    #[error("COG {}: {source}", path.display())]
    Cog { path: PathBuf, source: CogError },
}

/// Whether to write BigTIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BigTiff {
    /// Classic TIFF unless the file would exceed 4 GiB.
    #[default]
    Auto,
    Always,
}

/// Everything about the COG to write except the pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct CogSpec {
    /// Full-resolution size in pixels.
    pub width: u32,
    pub height: u32,
    /// Samples per pixel.
    pub bands: u16,
    pub dtype: DataType,
    /// Tile side (multiple of 16, as TIFF requires), the same for all levels (GDAL: 512).
    pub block_size: u32,
    /// Overview sizes, finest first (each smaller than the previous level).
    pub overviews: Vec<(u32, u32)>,
    pub encode: EncodeOptions,
    /// MinIsBlack for grey/multiband, Rgb for colour, Palette with `palette`.
    pub photometric: Photometric,
    /// ExtraSamples values (e.g. `[2]` for the alpha of RGBA); empty for none.
    pub extra_samples: Vec<u16>,
    /// ColorMap entries as 16-bit (r, g, b); `2^bits` entries.
    pub palette: Option<Vec<[u16; 3]>>,
    /// GDAL_NODATA.
    pub nodata: Option<f64>,
    /// GDAL_METADATA XML, written verbatim.
    pub gdal_metadata: Option<String>,
    /// Georeferencing tags written verbatim on the full-resolution IFD.
    pub geo: RawGeoTags,
    /// Whether every level has an internal mask (blocks written with [`MaskOrImage::Mask`]).
    pub mask: bool,
    /// Write GDAL's ghost structural metadata and block leaders/trailers.
    pub ghost_area: bool,
    pub bigtiff: BigTiff,
    /// Missing blocks are stored sparse (offset and byte count 0) instead of being an error.
    pub allow_sparse: bool,
    /// Software tag.
    pub software: String,
}

impl CogSpec {
    /// A spec with Kiln's defaults: 512 tiles, MinIsBlack, ghost area on, no overviews, no
    /// georeferencing (fill in the rest).
    pub fn new(
        width: u32,
        height: u32,
        bands: u16,
        dtype: DataType,
        encode: EncodeOptions,
    ) -> Self {
        Self {
            width,
            height,
            bands,
            dtype,
            block_size: 512,
            overviews: Vec::new(),
            encode,
            photometric: Photometric::MinIsBlack,
            extra_samples: Vec::new(),
            palette: None,
            nodata: None,
            gdal_metadata: None,
            geo: RawGeoTags::default(),
            mask: false,
            ghost_area: true,
            bigtiff: BigTiff::Auto,
            allow_sparse: false,
            software: concat!("Kiln ", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }

    /// Size of level `level` (0 = full resolution, then the overviews).
    pub fn level_size(&self, level: usize) -> Option<(u32, u32)> {
        if level == 0 {
            Some((self.width, self.height))
        } else {
            self.overviews.get(level - 1).copied()
        }
    }

    /// Number of levels (full resolution + overviews).
    pub fn levels(&self) -> usize {
        1 + self.overviews.len()
    }

    /// Blocks across and down at `level`.
    pub fn level_blocks(&self, level: usize) -> Option<(usize, usize)> {
        let (w, h) = self.level_size(level)?;
        let b = self.block_size.max(1) as usize;
        Some(((w as usize).div_ceil(b), (h as usize).div_ceil(b)))
    }

    /// Pixels that hold data in block `index` (row-major) of `level`: the block size, less on
    /// the right and bottom edges. The `width` and `height` of the [`BlockData`] to encode.
    pub fn block_data_size(&self, level: usize, index: usize) -> Option<(usize, usize)> {
        let (w, h) = self.level_size(level)?;
        let (across, down) = self.level_blocks(level)?;
        if index >= across * down {
            return None;
        }
        let b = self.block_size as usize;
        let (col, row) = (index % across, index / across);
        Some(((w as usize - col * b).min(b), (h as usize - row * b).min(b)))
    }
}

/// Which image of a level a block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskOrImage {
    Image,
    Mask,
}

/// Where one stored block sits in the spool.
#[derive(Debug, Clone, Copy, Default)]
struct Spooled {
    offset: u64,
    len: u64,
}

/// Suffixes of the files the writer creates beside the target (hidden, named after it).
const TEMP_TAG: &str = ".kiln-tmp-";
const SPOOL_TAG: &str = ".kiln-spool-";

/// A streaming COG writer: see the module docs.
pub struct CogWriter {
    spec: CogSpec,
    target: PathBuf,
    spool_path: PathBuf,
    spool: Option<BufWriter<File>>,
    spool_len: u64,
    /// `[level][image = 0, mask = 1][block]`.
    blocks: Vec<[Vec<Option<Spooled>>; 2]>,
}

impl std::fmt::Debug for CogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CogWriter")
            .field("target", &self.target)
            .field("spool", &self.spool_path)
            .field("spool_len", &self.spool_len)
            .finish()
    }
}

fn sibling(target: &Path, tag: &str) -> Result<PathBuf, String> {
    let name = target
        .file_name()
        .ok_or_else(|| "target has no file name".to_string())?
        .to_string_lossy()
        .into_owned();
    Ok(target.with_file_name(format!(".{name}{tag}{}", std::process::id())))
}

/// Deletes the temporary and spool files an earlier (crashed) run writing `target_name` in
/// `dir` left behind. Returns how many files were removed.
pub fn cleanup_stale_temps(dir: &Path, target_name: &str) -> Result<usize, CogWriteError> {
    let io = |op, source| CogWriteError::Io {
        op,
        path: dir.to_path_buf(),
        source,
    };
    let prefixes = [
        format!(".{target_name}{TEMP_TAG}"),
        format!(".{target_name}{SPOOL_TAG}"),
    ];
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(|e| io("cannot list", e))? {
        let entry = entry.map_err(|e| io("cannot list", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = prefixes.iter().any(|p| {
            name.strip_prefix(p.as_str())
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit()))
        });
        if stale {
            let path = entry.path();
            fs::remove_file(&path).map_err(|source| CogWriteError::Io {
                op: "cannot remove stale temp",
                path,
                source,
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

impl CogWriter {
    /// Checks `spec` and opens the spool file beside `target` (the target itself is only
    /// written by [`CogWriter::finish`]).
    pub fn create(target: &Path, spec: CogSpec) -> Result<Self, CogWriteError> {
        let bad = |reason: String| CogWriteError::Invalid {
            path: target.to_path_buf(),
            reason,
        };
        if spec.width == 0 || spec.height == 0 || spec.bands == 0 {
            return Err(bad(format!(
                "empty raster ({}x{}, {} bands)",
                spec.width, spec.height, spec.bands
            )));
        }
        if spec.block_size == 0 || !spec.block_size.is_multiple_of(16) || spec.block_size > 16_384 {
            return Err(bad(format!(
                "block size {} is not a multiple of 16 in 16..=16384",
                spec.block_size
            )));
        }
        let mut prev = (spec.width, spec.height);
        for &(w, h) in &spec.overviews {
            if w == 0 || h == 0 || w > prev.0 || h > prev.1 || (w, h) == prev {
                return Err(bad(format!(
                    "overview {w}x{h} is not smaller than the level before ({}x{})",
                    prev.0, prev.1
                )));
            }
            prev = (w, h);
        }
        if let Some(p) = &spec.palette {
            let bits = spec.dtype.size_bytes() * 8;
            if spec.bands != 1 || spec.dtype.is_float() || bits > 16 || p.len() != 1 << bits {
                return Err(bad(format!(
                    "a palette of {} entries does not match {} band(s) of {}",
                    p.len(),
                    spec.bands,
                    spec.dtype.name()
                )));
            }
        }
        let spool_path = sibling(target, SPOOL_TAG).map_err(bad)?;
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create(true)
            .truncate(true)
            .open(&spool_path)
            .map_err(|source| CogWriteError::Io {
                op: "cannot create spool",
                path: spool_path.clone(),
                source,
            })?;
        let mut blocks = Vec::with_capacity(spec.levels());
        for level in 0..spec.levels() {
            let (a, d) = spec.level_blocks(level).unwrap_or((0, 0));
            let masks = if spec.mask { a * d } else { 0 };
            blocks.push([vec![None; a * d], vec![None; masks]]);
        }
        Ok(Self {
            spec,
            target: target.to_path_buf(),
            spool_path,
            spool: Some(BufWriter::with_capacity(1 << 20, file)),
            spool_len: 0,
            blocks,
        })
    }

    /// The spec the writer was created with.
    pub fn spec(&self) -> &CogSpec {
        &self.spec
    }

    fn invalid(&self, reason: String) -> CogWriteError {
        CogWriteError::Invalid {
            path: self.target.clone(),
            reason,
        }
    }

    fn cog_err(&self, source: CogError) -> CogWriteError {
        CogWriteError::Cog {
            path: self.target.clone(),
            source,
        }
    }

    /// Stores the already encoded bytes of block `index` (row-major) of `level` (0 = full
    /// resolution, 1.. = overviews finest first). Each block may be written once, in any
    /// order. An empty `bytes` stores the block as sparse.
    pub fn write_block(
        &mut self,
        level: usize,
        which: MaskOrImage,
        index: usize,
        bytes: &[u8],
    ) -> Result<(), CogWriteError> {
        let k = match which {
            MaskOrImage::Image => 0,
            MaskOrImage::Mask => 1,
        };
        let n = self
            .blocks
            .get(level)
            .map(|l| l[k].len())
            .ok_or_else(|| self.invalid(format!("level {level} does not exist")))?;
        if index >= n {
            return Err(self.invalid(format!(
                "{which:?} block {index} of level {level} out of range ({n} blocks)"
            )));
        }
        if self.blocks[level][k][index].is_some() {
            return Err(self.invalid(format!(
                "{which:?} block {index} of level {level} written twice"
            )));
        }
        let len = bytes.len() as u64;
        if len > u64::from(u32::MAX) {
            return Err(self.invalid(format!("block {index} of {len} bytes exceeds 4 GiB")));
        }
        let offset = self.spool_len;
        let spool_path = self.spool_path.clone();
        let Some(spool) = self.spool.as_mut() else {
            return Err(self.invalid("writer already finished".into()));
        };
        spool.write_all(bytes).map_err(|source| CogWriteError::Io {
            op: "cannot write spool",
            path: spool_path,
            source,
        })?;
        self.spool_len += len;
        self.blocks[level][k][index] = Some(Spooled { offset, len });
        Ok(())
    }

    /// Encodes `data` with the spec's options ([`encode_block`]) and stores it as image block
    /// `index` of `level`.
    pub fn write_samples(
        &mut self,
        level: usize,
        index: usize,
        data: &BlockData<'_>,
    ) -> Result<(), CogWriteError> {
        if data.samples.dtype() != self.spec.dtype || data.bands != usize::from(self.spec.bands) {
            return Err(self.invalid(format!(
                "block of {} bands of {} for a COG of {} bands of {}",
                data.bands,
                data.samples.dtype().name(),
                self.spec.bands,
                self.spec.dtype.name()
            )));
        }
        let b = self.spec.block_size as usize;
        let bytes = encode_block(data, b, b, &self.spec.encode).map_err(|e| self.cog_err(e))?;
        self.write_block(level, MaskOrImage::Image, index, &bytes)
    }

    /// Encodes `mask` ([`encode_mask_block`], `width` x `height` bytes, non-zero = valid) and
    /// stores it as mask block `index` of `level`.
    pub fn write_mask(
        &mut self,
        level: usize,
        index: usize,
        mask: &[u8],
        width: usize,
        height: usize,
    ) -> Result<(), CogWriteError> {
        let b = self.spec.block_size as usize;
        let level_opt = match self.spec.encode.compression {
            Compression::Deflate => self.spec.encode.level,
            _ => None,
        };
        let bytes =
            encode_mask_block(mask, width, height, b, b, level_opt).map_err(|e| self.cog_err(e))?;
        self.write_block(level, MaskOrImage::Mask, index, &bytes)
    }

    /// Writes the COG (see the module docs for the layout) to a temporary file beside the
    /// target, renames it over the target and deletes the spool. Returns the file size.
    pub fn finish(mut self) -> Result<u64, CogWriteError> {
        let temp = sibling(&self.target, TEMP_TAG).map_err(|r| self.invalid(r))?;
        let result = self.finish_into(&temp);
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        let size = result?;
        fs::rename(&temp, &self.target).map_err(|source| {
            let _ = fs::remove_file(&temp);
            CogWriteError::Io {
                op: "cannot rename the finished COG over",
                path: self.target.clone(),
                source,
            }
        })?;
        Ok(size)
    }

    fn finish_into(&mut self, temp: &Path) -> Result<u64, CogWriteError> {
        let spool = self
            .spool
            .take()
            .ok_or_else(|| self.invalid("writer already finished".into()))?;
        let mut spool = spool.into_inner().map_err(|e| CogWriteError::Io {
            op: "cannot flush spool",
            path: self.spool_path.clone(),
            source: e.into_error(),
        })?;
        // Missing blocks.
        for (level, kinds) in self.blocks.iter().enumerate() {
            for (k, list) in kinds.iter().enumerate() {
                if let Some(i) = list.iter().position(Option::is_none) {
                    if !self.spec.allow_sparse {
                        let what = if k == 0 { "image" } else { "mask" };
                        return Err(self.invalid(format!(
                            "{what} block {i} of level {level} was never written"
                        )));
                    }
                }
            }
        }
        let plan = Plan::build(&self.spec, &self.blocks).map_err(|e| self.cog_err(e))?;
        let out_file = File::create(temp).map_err(|source| CogWriteError::Io {
            op: "cannot create",
            path: temp.to_path_buf(),
            source,
        })?;
        let io_out = |source| CogWriteError::Io {
            op: "cannot write",
            path: temp.to_path_buf(),
            source,
        };
        let mut out = BufWriter::with_capacity(1 << 20, out_file);
        out.write_all(&plan.head).map_err(io_out)?;
        let mut pos = plan.head.len() as u64;
        let mut buf = Vec::new();
        for item in &plan.data {
            if pos != item.file_offset {
                return Err(self.invalid(format!(
                    "internal layout error: block at {pos}, planned at {}",
                    item.file_offset
                )));
            }
            buf.resize(item.spool.len as usize, 0);
            spool
                .seek(SeekFrom::Start(item.spool.offset))
                .and_then(|_| spool.read_exact(&mut buf))
                .map_err(|source| CogWriteError::Io {
                    op: "cannot read spool",
                    path: self.spool_path.clone(),
                    source,
                })?;
            if plan.leaders {
                out.write_all(&(buf.len() as u32).to_le_bytes())
                    .map_err(io_out)?;
                pos += 4;
            }
            out.write_all(&buf).map_err(io_out)?;
            pos += buf.len() as u64;
            if plan.leaders {
                let tail_start = buf.len().saturating_sub(4);
                let mut tail = [0u8; 4];
                tail[4 - (buf.len() - tail_start)..].copy_from_slice(&buf[tail_start..]);
                out.write_all(&tail).map_err(io_out)?;
                pos += 4;
            }
        }
        let file = out.into_inner().map_err(|e| CogWriteError::Io {
            op: "cannot flush",
            path: temp.to_path_buf(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_out)?;
        drop(spool);
        let _ = fs::remove_file(&self.spool_path);
        Ok(pos)
    }
}

impl Drop for CogWriter {
    fn drop(&mut self) {
        // Finished or abandoned: the spool is never kept.
        self.spool = None;
        let _ = fs::remove_file(&self.spool_path);
    }
}

// ---------------------------------------------------------------------------------------------
// TIFF serialisation
// ---------------------------------------------------------------------------------------------

/// A TIFF field value, by TIFF type.
#[derive(Debug, Clone)]
enum Value {
    Ascii(Vec<u8>),
    Short(Vec<u16>),
    Long(Vec<u32>),
    Long8(Vec<u64>),
    Double(Vec<f64>),
}

impl Value {
    fn type_code(&self) -> u16 {
        match self {
            Self::Ascii(_) => 2,
            Self::Short(_) => 3,
            Self::Long(_) => 4,
            Self::Long8(_) => 16,
            Self::Double(_) => 12,
        }
    }

    fn count(&self) -> usize {
        match self {
            Self::Ascii(v) => v.len(),
            Self::Short(v) => v.len(),
            Self::Long(v) => v.len(),
            Self::Long8(v) => v.len(),
            Self::Double(v) => v.len(),
        }
    }

    fn byte_len(&self) -> u64 {
        let size = match self {
            Self::Ascii(_) => 1,
            Self::Short(_) => 2,
            Self::Long(_) => 4,
            Self::Long8(_) | Self::Double(_) => 8,
        };
        (self.count() * size) as u64
    }

    fn put(&self, out: &mut Vec<u8>) {
        match self {
            Self::Ascii(v) => out.extend_from_slice(v),
            Self::Short(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::Long(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::Long8(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::Double(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
    }
}

fn ascii(s: &str) -> Value {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    Value::Ascii(b)
}

fn compression_code(c: Compression) -> Result<u16, CogError> {
    match c {
        Compression::None => Ok(1),
        Compression::Lzw => Ok(5),
        Compression::Deflate => Ok(8),
        Compression::Zstd => Ok(50000),
        Compression::Webp => Ok(50001),
        other => Err(unsupported(format!("writing {other:?} compression"))),
    }
}

fn photometric_code(p: Photometric) -> u16 {
    match p {
        Photometric::MinIsWhite => 0,
        Photometric::MinIsBlack => 1,
        Photometric::Rgb => 2,
        Photometric::Palette => 3,
        Photometric::Mask => 4,
        Photometric::Separated => 5,
        Photometric::YCbCr => 6,
        Photometric::Other(v) => v,
    }
}

/// One IFD to write: tags (offsets as placeholders) and the blocks it points to.
struct IfdPlan {
    entries: Vec<(u16, Value)>,
    /// (level, kind) of the blocks of this IFD.
    level: usize,
    kind: usize,
}

struct DataItem {
    spool: Spooled,
    file_offset: u64,
}

/// The serialised header (TIFF header, ghost area, IFDs) and the order of the data blocks.
struct Plan {
    head: Vec<u8>,
    data: Vec<DataItem>,
    leaders: bool,
}

fn ghost_text(mask: bool) -> Vec<u8> {
    let mut body = String::from(
        "LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n\
         BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n ",
    );
    // Byte for byte what GDAL writes, including the space after the edition line.
    if mask {
        body.push_str("MASK_INTERLEAVED_WITH_IMAGERY=YES\n");
    }
    let mut out = format!("GDAL_STRUCTURAL_METADATA_SIZE={:06} bytes\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

impl Plan {
    fn build(spec: &CogSpec, blocks: &[[Vec<Option<Spooled>>; 2]]) -> Result<Self, CogError> {
        let ifds = ifd_plans(spec)?;
        let leaders = spec.ghost_area;
        let ghost = if spec.ghost_area {
            ghost_text(spec.mask)
        } else {
            Vec::new()
        };
        let mut bigtiff = spec.bigtiff == BigTiff::Always;
        loop {
            if let Some(plan) = Self::layout(&ifds, blocks, &ghost, leaders, bigtiff)? {
                return Ok(plan);
            }
            if bigtiff {
                return Err(CogError::TooLarge {
                    what: "COG",
                    reason: "layout does not fit BigTIFF".into(),
                });
            }
            bigtiff = true;
        }
    }

    /// Lays the file out; `None` when it does not fit classic TIFF (`bigtiff` false).
    fn layout(
        ifds: &[IfdPlan],
        blocks: &[[Vec<Option<Spooled>>; 2]],
        ghost: &[u8],
        leaders: bool,
        bigtiff: bool,
    ) -> Result<Option<Self>, CogError> {
        let (head_len, entry_len, count_len, off_len): (u64, u64, u64, u64) = if bigtiff {
            (16, 20, 8, 8)
        } else {
            (8, 12, 2, 4)
        };
        let inline = off_len;
        // Every IFD's entries with tile offsets / byte counts of their final length (values
        // filled in below), sorted by tag.
        let mut full: Vec<Vec<(u16, Value)>> = ifds
            .iter()
            .map(|ifd| {
                let n = blocks[ifd.level][ifd.kind].len();
                let mut e = ifd.entries.clone();
                if bigtiff {
                    e.push((tag::TILE_OFFSETS, Value::Long8(vec![0; n])));
                    e.push((tag::TILE_BYTE_COUNTS, Value::Long8(vec![0; n])));
                } else {
                    e.push((tag::TILE_OFFSETS, Value::Long(vec![0; n])));
                    e.push((tag::TILE_BYTE_COUNTS, Value::Long(vec![0; n])));
                }
                e.sort_by_key(|(t, _)| *t);
                e
            })
            .collect();
        // Pass 1: where each IFD and each out-of-line value goes.
        let mut cursor = head_len + ghost.len() as u64;
        let mut ifd_offsets = Vec::with_capacity(full.len());
        let mut value_offsets: Vec<Vec<Option<u64>>> = Vec::with_capacity(full.len());
        for entries in &full {
            cursor = cursor.next_multiple_of(2);
            ifd_offsets.push(cursor);
            cursor += count_len + entries.len() as u64 * entry_len + off_len;
            let mut offs = Vec::with_capacity(entries.len());
            for (_, v) in entries {
                if v.byte_len() > inline {
                    cursor = cursor.next_multiple_of(2);
                    offs.push(Some(cursor));
                    cursor += v.byte_len();
                } else {
                    offs.push(None);
                }
            }
            value_offsets.push(offs);
        }
        let data_start = cursor.next_multiple_of(2);
        // Data order: coarsest level first; per block, image then mask.
        let mut data = Vec::new();
        let mut placed: Vec<[Vec<(u64, u64)>; 2]> = blocks
            .iter()
            .map(|l| [vec![(0, 0); l[0].len()], vec![(0, 0); l[1].len()]])
            .collect();
        let mut pos = data_start;
        let lead = if leaders { 4 } else { 0 };
        for level in (0..blocks.len()).rev() {
            // Indexes three parallel tables (spool, image / mask, placement).
            #[allow(clippy::needless_range_loop)]
            for i in 0..blocks[level][0].len() {
                for k in 0..2 {
                    if let Some(Some(s)) = blocks[level][k].get(i) {
                        if s.len == 0 {
                            continue;
                        }
                        let off = pos + lead;
                        placed[level][k][i] = (off, s.len);
                        data.push(DataItem {
                            spool: *s,
                            file_offset: pos,
                        });
                        pos = off + s.len + lead;
                    }
                }
            }
        }
        if !bigtiff && pos > u64::from(u32::MAX) {
            return Ok(None);
        }
        for (ifd, entries) in ifds.iter().zip(full.iter_mut()) {
            let (offs, counts): (Vec<u64>, Vec<u64>) =
                placed[ifd.level][ifd.kind].iter().copied().unzip();
            for (t, v) in entries.iter_mut() {
                let src = match *t {
                    tag::TILE_OFFSETS => &offs,
                    tag::TILE_BYTE_COUNTS => &counts,
                    _ => continue,
                };
                *v = if bigtiff {
                    Value::Long8(src.clone())
                } else {
                    // pos <= u32::MAX here, so every offset and count fits.
                    Value::Long(src.iter().map(|&x| x as u32).collect())
                };
            }
        }
        // Pass 2: serialise.
        let first = ifd_offsets.first().copied().unwrap_or(0);
        let mut head = Vec::with_capacity(data_start as usize);
        head.extend_from_slice(b"II");
        if bigtiff {
            head.extend_from_slice(&43u16.to_le_bytes());
            head.extend_from_slice(&8u16.to_le_bytes());
            head.extend_from_slice(&0u16.to_le_bytes());
            head.extend_from_slice(&first.to_le_bytes());
        } else {
            head.extend_from_slice(&42u16.to_le_bytes());
            head.extend_from_slice(&(first as u32).to_le_bytes());
        }
        head.extend_from_slice(ghost);
        let put_off = |head: &mut Vec<u8>, v: u64| {
            if bigtiff {
                head.extend_from_slice(&v.to_le_bytes());
            } else {
                head.extend_from_slice(&(v as u32).to_le_bytes());
            }
        };
        for (n, entries) in full.iter().enumerate() {
            head.resize(ifd_offsets[n] as usize, 0);
            put_off_count(&mut head, entries.len() as u64, bigtiff);
            for ((t, v), off) in entries.iter().zip(&value_offsets[n]) {
                head.extend_from_slice(&t.to_le_bytes());
                head.extend_from_slice(&v.type_code().to_le_bytes());
                put_off(&mut head, v.count() as u64);
                match off {
                    Some(off) => put_off(&mut head, *off),
                    None => {
                        let mut field = Vec::with_capacity(8);
                        v.put(&mut field);
                        field.resize(inline as usize, 0);
                        head.extend_from_slice(&field);
                    }
                }
            }
            put_off(&mut head, ifd_offsets.get(n + 1).copied().unwrap_or(0));
            for ((_, v), off) in entries.iter().zip(&value_offsets[n]) {
                if let Some(off) = off {
                    head.resize(*off as usize, 0);
                    v.put(&mut head);
                }
            }
        }
        if head.len() as u64 > data_start {
            return Err(invalid(format!(
                "internal layout error: header of {} bytes overruns data at {data_start}",
                head.len()
            )));
        }
        head.resize(data_start as usize, 0);
        Ok(Some(Self {
            head,
            data,
            leaders,
        }))
    }
}

/// The IFD entry count: 2 bytes in classic TIFF, 8 in BigTIFF.
fn put_off_count(head: &mut Vec<u8>, n: u64, bigtiff: bool) {
    if bigtiff {
        head.extend_from_slice(&n.to_le_bytes());
    } else {
        head.extend_from_slice(&(n as u16).to_le_bytes());
    }
}

/// The tags of every IFD (without the tile offsets / byte counts), in file order.
fn ifd_plans(spec: &CogSpec) -> Result<Vec<IfdPlan>, CogError> {
    let bands = usize::from(spec.bands);
    let bits = u16::try_from(spec.dtype.size_bytes() * 8).unwrap_or(8);
    let compression = compression_code(spec.encode.compression)?;
    let predictor = match spec.encode.compression {
        Compression::Deflate | Compression::Zstd | Compression::Lzw => {
            spec.encode.predictor_for(spec.dtype)
        }
        _ => Predictor::None,
    };
    let predictor_code = match predictor {
        Predictor::None => None,
        Predictor::Horizontal => Some(2u16),
        Predictor::FloatingPoint => Some(3),
    };
    let b = spec.block_size;
    let mut out = Vec::new();
    let mut overview_masks = Vec::new();
    for level in 0..spec.levels() {
        let (w, h) = spec.level_size(level).unwrap_or((0, 0));
        let mut e: Vec<(u16, Value)> = Vec::new();
        if level > 0 {
            e.push((tag::NEW_SUBFILE_TYPE, Value::Long(vec![1])));
        }
        e.push((tag::IMAGE_WIDTH, Value::Long(vec![w])));
        e.push((tag::IMAGE_LENGTH, Value::Long(vec![h])));
        e.push((tag::BITS_PER_SAMPLE, Value::Short(vec![bits; bands])));
        e.push((tag::COMPRESSION, Value::Short(vec![compression])));
        e.push((
            tag::PHOTOMETRIC,
            Value::Short(vec![photometric_code(spec.photometric)]),
        ));
        e.push((tag::SAMPLES_PER_PIXEL, Value::Short(vec![spec.bands])));
        e.push((tag::PLANAR_CONFIG, Value::Short(vec![1])));
        if let Some(p) = predictor_code {
            e.push((tag::PREDICTOR, Value::Short(vec![p])));
        }
        if let Some(pal) = &spec.palette {
            let mut v = Vec::with_capacity(pal.len() * 3);
            for c in 0..3 {
                v.extend(pal.iter().map(|rgb| rgb[c]));
            }
            e.push((tag::COLOR_MAP, Value::Short(v)));
        }
        e.push((tag::TILE_WIDTH, Value::Long(vec![b])));
        e.push((tag::TILE_LENGTH, Value::Long(vec![b])));
        if !spec.extra_samples.is_empty() {
            e.push((tag::EXTRA_SAMPLES, Value::Short(spec.extra_samples.clone())));
        }
        e.push((
            tag::SAMPLE_FORMAT,
            Value::Short(vec![sample_format(spec.dtype); bands]),
        ));
        if let Some(nd) = spec.nodata {
            e.push((tag::GDAL_NODATA, ascii(&nodata_text(nd))));
        }
        if level == 0 {
            e.push((TAG_SOFTWARE, ascii(&spec.software)));
            let g = &spec.geo;
            let geo: [(u16, Option<Value>); 6] = [
                (
                    tag::MODEL_PIXEL_SCALE,
                    g.pixel_scale.clone().map(Value::Double),
                ),
                (tag::MODEL_TIEPOINT, g.tiepoints.clone().map(Value::Double)),
                (
                    tag::MODEL_TRANSFORMATION,
                    g.transformation.clone().map(Value::Double),
                ),
                (
                    tag::GEO_KEY_DIRECTORY,
                    g.key_directory.clone().map(Value::Short),
                ),
                (
                    tag::GEO_DOUBLE_PARAMS,
                    g.double_params.clone().map(Value::Double),
                ),
                (
                    tag::GEO_ASCII_PARAMS,
                    g.ascii_params.clone().map(Value::Ascii),
                ),
            ];
            e.extend(geo.into_iter().filter_map(|(t, v)| v.map(|v| (t, v))));
            if let Some(md) = &spec.gdal_metadata {
                e.push((tag::GDAL_METADATA, ascii(md)));
            }
        }
        out.push(IfdPlan {
            entries: e,
            level,
            kind: 0,
        });
        if spec.mask {
            let subfile = if level == 0 { 4 } else { 5 };
            let list = if level == 0 {
                &mut out
            } else {
                &mut overview_masks
            };
            list.push(IfdPlan {
                entries: vec![
                    (tag::NEW_SUBFILE_TYPE, Value::Long(vec![subfile])),
                    (tag::IMAGE_WIDTH, Value::Long(vec![w])),
                    (tag::IMAGE_LENGTH, Value::Long(vec![h])),
                    (tag::BITS_PER_SAMPLE, Value::Short(vec![1])),
                    (tag::COMPRESSION, Value::Short(vec![8])),
                    (tag::PHOTOMETRIC, Value::Short(vec![4])),
                    (tag::SAMPLES_PER_PIXEL, Value::Short(vec![1])),
                    (tag::PLANAR_CONFIG, Value::Short(vec![1])),
                    (tag::TILE_WIDTH, Value::Long(vec![b])),
                    (tag::TILE_LENGTH, Value::Long(vec![b])),
                    (tag::SAMPLE_FORMAT, Value::Short(vec![1])),
                ],
                level,
                kind: 1,
            });
        }
    }
    // GDAL's order: full resolution, its mask, the overviews, then the overview masks.
    out.extend(overview_masks);
    Ok(out)
}

/// Software (305), not read by the parser.
const TAG_SOFTWARE: u16 = 305;
