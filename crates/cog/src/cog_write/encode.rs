//! Block encoding: samples of one block to the bytes a TIFF stores (padding, predictor,
//! codec), and 1-bit masks.

#[allow(clippy::wildcard_imports)]
use super::*;
use num_traits::ToBytes;
use std::cell::RefCell;

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

pub(super) fn invalid(reason: impl Into<String>) -> CogError {
    CogError::Malformed {
        reason: reason.into(),
    }
}

pub(super) fn unsupported(feature: impl Into<String>) -> CogError {
    CogError::Unsupported {
        feature: feature.into(),
    }
}

/// Predictor arithmetic of one sample type (its bytes come from [`ToBytes`]).
trait EncSample: Copy + Default + ToBytes {
    const SIZE: usize;
    fn wrapping_sub(self, other: Self) -> Self;
    const FLOAT: bool;
}

macro_rules! enc_int {
    ($($t:ty),*) => {$(
        impl EncSample for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            const FLOAT: bool = false;
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
                ORDER.write(o, *s);
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
                ORDER.write(o, *s);
            }
        }
        Predictor::FloatingPoint => {
            if !T::FLOAT {
                return Err(unsupported("floating-point predictor on integer samples"));
            }
            // TIFF Technical Note 3: per row, byte planes MSB first, then byte differences
            // with a stride of one pixel.
            let row_bytes = per_row * T::SIZE;
            for (row, dst) in v
                .chunks_exact(per_row.max(1))
                .zip(out.chunks_exact_mut(row_bytes.max(1)))
            {
                for (i, &s) in row.iter().enumerate() {
                    for (k, &byte) in ByteOrder::Big.bytes(s).as_ref().iter().enumerate() {
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

thread_local! {
    /// Each encoding thread's compressor (with its level) and output buffer: a libdeflate
    /// compressor is hundreds of KB of tables, and zeroing a fresh bound-sized buffer per
    /// block showed up in profiles of `kiln optimize`.
    static DEFLATE: RefCell<Option<(i32, Compressor, Vec<u8>)>> = const { RefCell::new(None) };
}

pub(super) fn deflate(raw: &[u8], level: i32) -> Result<Vec<u8>, CogError> {
    let lvl = CompressionLvl::new(level)
        .map_err(|_| unsupported(format!("DEFLATE level {level} (valid: 0-12)")))?;
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let (_, c, buf) = match &mut *slot {
            Some(s) if s.0 == level => s,
            other => other.insert((level, Compressor::new(lvl), Vec::new())),
        };
        let bound = c.zlib_compress_bound(raw.len());
        if buf.len() < bound {
            buf.resize(bound, 0);
        }
        let n = c
            .zlib_compress(raw, buf)
            .map_err(|e| invalid(format!("DEFLATE compression failed: {e:?}")))?;
        Ok(buf[..n].to_vec())
    })
}

pub(super) fn compress(raw: &[u8], opts: &EncodeOptions) -> Result<Vec<u8>, CogError> {
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

pub(super) fn encode_webp(
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
