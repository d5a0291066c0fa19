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
    /// Band-sequential planes of `plane_width` × `plane_height` pixels (a strip, a whole
    /// level) of which the block is the `width` × `height` pixels at (`col`, `row`): the
    /// block is read in place, with no copy of it cut out first.
    PlaneWindow {
        plane_width: usize,
        plane_height: usize,
        col: usize,
        row: usize,
    },
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
    /// `width * height * bands` samples (for [`SampleLayout::PlaneWindow`], the planes'),
    /// ordered as `layout` says.
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

/// Where the rows of one block's samples are in the slice handed to [`encode_block`].
#[derive(Clone, Copy)]
enum Rows {
    /// Band `b` of row `y` is `v[b * band_len + y * stride + col..][..w]`.
    Planar {
        band_len: usize,
        stride: usize,
        col: usize,
        row: usize,
    },
    /// Row `y` is `v[y * w * bands..][..w * bands]`, pixel-interleaved.
    Chunky,
}

/// Checks the block's geometry against its samples and says where its rows are.
fn block_rows<T>(v: &[T], data: &BlockData<'_>, bw: usize, bh: usize) -> Result<Rows, CogError> {
    let (w, h, bands) = (data.width, data.height, data.bands);
    if w == 0 || h == 0 || bands == 0 || w > bw || h > bh {
        return Err(invalid(format!(
            "block data of {w}x{h} pixels x {bands} bands does not fit a {bw}x{bh} block"
        )));
    }
    let (pw, ph, col, row) = match data.layout {
        SampleLayout::PlaneWindow {
            plane_width,
            plane_height,
            col,
            row,
        } => (plane_width, plane_height, col, row),
        _ => (w, h, 0, 0),
    };
    if col.checked_add(w).is_none_or(|e| e > pw) || row.checked_add(h).is_none_or(|e| e > ph) {
        return Err(invalid(format!(
            "block of {w}x{h} pixels at ({col}, {row}) is not inside {pw}x{ph} planes"
        )));
    }
    let want = pw.checked_mul(ph).and_then(|p| p.checked_mul(bands));
    if want != Some(v.len()) {
        return Err(invalid(format!(
            "{pw}x{ph}x{bands} block data holds {} samples",
            v.len()
        )));
    }
    Ok(match data.layout {
        SampleLayout::Interleaved => Rows::Chunky,
        _ => Rows::Planar {
            band_len: pw * ph,
            stride: pw,
            col,
            row,
        },
    })
}

/// One row of `B` bands (planar sources, `w` samples each) written pixel-interleaved as
/// bytes, horizontally differenced when `DIFF`, into `dst` (`w * B` samples long). Returns
/// each band's last sample (the padding's predictor needs it). The differences are taken per
/// band over contiguous samples into `tmp` first (which vectorises, and streams the sources),
/// then interleaved from there.
#[inline(always)]
fn planar_row<T: EncSample, const B: usize, const DIFF: bool>(
    srcs: [&[T]; B],
    w: usize,
    dst: &mut [u8],
    tmp: &mut Vec<T>,
) -> [T; B] {
    let srcs = srcs.map(|s| &s[..w]);
    let last = srcs.map(|s| s[w - 1]);
    if DIFF {
        tmp.clear();
        tmp.resize(B * w, T::default());
        for (s, t) in srcs.iter().zip(tmp.chunks_exact_mut(w)) {
            t[0] = s[0];
            for ((d, &a), &p) in t[1..].iter_mut().zip(&s[1..]).zip(&s[..w - 1]) {
                *d = a.wrapping_sub(p);
            }
        }
        let planes: [&[T]; B] = std::array::from_fn(|b| &tmp[b * w..(b + 1) * w]);
        interleave_row(planes, w, dst);
    } else {
        interleave_row(srcs, w, dst);
    }
    last
}

/// `B` planar rows of `w` samples to pixel-interleaved bytes in `dst`.
#[inline(always)]
fn interleave_row<T: EncSample, const B: usize>(planes: [&[T]; B], w: usize, dst: &mut [u8]) {
    let planes = planes.map(|p| &p[..w]);
    for (x, px) in dst[..w * B * T::SIZE]
        .chunks_exact_mut(B * T::SIZE)
        .enumerate()
    {
        for (b, plane) in planes.iter().enumerate() {
            ORDER.write(&mut px[b * T::SIZE..(b + 1) * T::SIZE], plane[x]);
        }
    }
}

/// [`planar_row`] for any band count.
fn planar_row_dyn<T: EncSample, const DIFF: bool>(
    srcs: &[&[T]],
    w: usize,
    dst: &mut [u8],
    last: &mut Vec<T>,
) {
    let bands = srcs.len();
    last.clear();
    for (b, src) in srcs.iter().enumerate() {
        let mut prev = T::default();
        for (x, &s) in src[..w].iter().enumerate() {
            let d = if DIFF { s.wrapping_sub(prev) } else { s };
            prev = s;
            let at = (x * bands + b) * T::SIZE;
            ORDER.write(&mut dst[at..at + T::SIZE], d);
        }
        last.push(prev);
    }
}

/// Writes the block's bytes as a TIFF stores them before compression into `out` (resized to
/// the full block): pixel-interleaved (PlanarConfiguration 1), padded with zero samples to the
/// block size (GDAL's edge tiles), `predictor` applied, in the file's byte order. One pass
/// over the samples; `out` can be reused from block to block.
fn block_bytes<T: EncSample>(
    v: &[T],
    data: &BlockData<'_>,
    bw: usize,
    bh: usize,
    predictor: Predictor,
    out: &mut Vec<u8>,
) -> Result<(), CogError> {
    let rows = block_rows(v, data, bw, bh)?;
    let diff = match predictor {
        Predictor::None => false,
        Predictor::Horizontal if T::FLOAT => {
            return Err(unsupported(
                "horizontal predictor on floating-point samples",
            ))
        }
        Predictor::Horizontal => true,
        Predictor::FloatingPoint if !T::FLOAT => {
            return Err(unsupported("floating-point predictor on integer samples"))
        }
        Predictor::FloatingPoint => false,
    };
    let (w, h, bands) = (data.width, data.height, data.bands);
    let row_bytes = bw * bands * T::SIZE;
    let total = row_bytes * bh;
    if out.len() != total {
        out.clear();
        out.resize(total, 0);
    }
    let (body, tail) = out.split_at_mut(row_bytes * h);
    tail.fill(0);
    let data_bytes = w * bands * T::SIZE;
    let mut last: Vec<T> = Vec::with_capacity(bands);
    // Floating point predictor: the row as chunky samples of the full block width.
    let mut chunky: Vec<T> = Vec::new();
    let mut srcs: Vec<&[T]> = Vec::with_capacity(bands);
    let mut tmp: Vec<T> = Vec::with_capacity(w * bands.min(4));
    for (y, dst) in body.chunks_exact_mut(row_bytes).enumerate() {
        if predictor == Predictor::FloatingPoint {
            chunky.clear();
            match rows {
                Rows::Chunky => chunky.extend_from_slice(&v[y * w * bands..(y + 1) * w * bands]),
                Rows::Planar {
                    band_len,
                    stride,
                    col,
                    row,
                } => {
                    chunky.resize(w * bands, T::default());
                    for b in 0..bands {
                        let src = &v[b * band_len + (row + y) * stride + col..][..w];
                        for (d, &s) in chunky.iter_mut().skip(b).step_by(bands).zip(src) {
                            *d = s;
                        }
                    }
                }
            }
            chunky.resize(bw * bands, T::default());
            float_predicted_row(&chunky, bw * bands, bands, dst);
            continue;
        }
        match rows {
            Rows::Chunky => {
                let src = &v[y * w * bands..(y + 1) * w * bands];
                last.clear();
                for (i, (&s, o)) in src.iter().zip(dst.chunks_exact_mut(T::SIZE)).enumerate() {
                    let d = if diff && i >= bands {
                        s.wrapping_sub(src[i - bands])
                    } else {
                        s
                    };
                    ORDER.write(o, d);
                }
                last.extend_from_slice(&src[(w - 1) * bands..]);
            }
            Rows::Planar {
                band_len,
                stride,
                col,
                row,
            } => {
                let at = |b: usize| &v[b * band_len + (row + y) * stride + col..][..w];
                last.clear();
                match (bands, diff) {
                    (1, true) => last.extend(planar_row::<T, 1, true>([at(0)], w, dst, &mut tmp)),
                    (1, false) => last.extend(planar_row::<T, 1, false>([at(0)], w, dst, &mut tmp)),
                    (3, true) => {
                        last.extend(planar_row::<T, 3, true>(
                            [at(0), at(1), at(2)],
                            w,
                            dst,
                            &mut tmp,
                        ));
                    }
                    (3, false) => {
                        last.extend(planar_row::<T, 3, false>(
                            [at(0), at(1), at(2)],
                            w,
                            dst,
                            &mut tmp,
                        ));
                    }
                    (4, true) => last.extend(planar_row::<T, 4, true>(
                        [at(0), at(1), at(2), at(3)],
                        w,
                        dst,
                        &mut tmp,
                    )),
                    (4, false) => last.extend(planar_row::<T, 4, false>(
                        [at(0), at(1), at(2), at(3)],
                        w,
                        dst,
                        &mut tmp,
                    )),
                    (_, d) => {
                        srcs.clear();
                        srcs.extend((0..bands).map(at));
                        if d {
                            planar_row_dyn::<T, true>(&srcs, w, dst, &mut last);
                        } else {
                            planar_row_dyn::<T, false>(&srcs, w, dst, &mut last);
                        }
                    }
                }
            }
        }
        // Padding: zero samples, which the predictor makes `0 - last` right after the data.
        let pad = &mut dst[data_bytes..];
        pad.fill(0);
        if diff && w < bw {
            for (b, &l) in last.iter().enumerate() {
                ORDER.write(
                    &mut pad[b * T::SIZE..(b + 1) * T::SIZE],
                    T::default().wrapping_sub(l),
                );
            }
        }
    }
    Ok(())
}

/// TIFF Technical Note 3's floating point predictor on one row of `per_row` chunky samples
/// (`bands` per pixel): byte planes MSB first, then byte differences with a stride of one
/// pixel.
fn float_predicted_row<T: EncSample>(row: &[T], per_row: usize, bands: usize, dst: &mut [u8]) {
    for (i, &s) in row.iter().enumerate() {
        for (k, &byte) in ByteOrder::Big.bytes(s).as_ref().iter().enumerate() {
            dst[k * per_row + i] = byte;
        }
    }
    for i in (bands..dst.len()).rev() {
        dst[i] = dst[i].wrapping_sub(dst[i - bands]);
    }
}

thread_local! {
    /// Each encoding thread's compressor (with its level) and output buffer: a libdeflate
    /// compressor is hundreds of KB of tables, and zeroing a fresh bound-sized buffer per
    /// block showed up in profiles of `kiln optimize`.
    static DEFLATE: RefCell<Option<(i32, Compressor, Vec<u8>)>> = const { RefCell::new(None) };
    /// Each encoding thread's buffer of a block's bytes before compression.
    static RAW: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
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
    if opts.compression == Compression::Webp && dtype != DataType::U8 {
        return Err(unsupported(format!("WebP with {} samples", dtype.name())));
    }
    RAW.with(|cell| {
        // A re-entrant call (none today) gets a buffer of its own rather than a panic.
        let mut own = Vec::new();
        let mut guard = cell.try_borrow_mut();
        let raw = match &mut guard {
            Ok(r) => &mut **r,
            Err(_) => &mut own,
        };
        kiln_core::with_samples!(data.samples, v => {
            block_bytes(v, data, block_width, block_height, predictor, raw)?;
        });
        if opts.compression == Compression::Webp {
            return encode_webp(raw, data.bands, block_width, block_height, opts);
        }
        compress(raw, opts)
    })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The encoder before it was fused into one pass (pad and interleave, then the
    /// predictor, then the byte order), kept as the reference.
    fn reference<T: EncSample>(
        v: &[T],
        (w, h, bands): (usize, usize, usize),
        layout: SampleLayout,
        (bw, bh): (usize, usize),
        predictor: Predictor,
    ) -> Vec<u8> {
        let mut chunky = vec![T::default(); bw * bh * bands];
        let (pw, col, row) = match layout {
            SampleLayout::PlaneWindow {
                plane_width,
                col,
                row,
                ..
            } => (plane_width, col, row),
            _ => (w, 0, 0),
        };
        let band_len = v.len() / bands;
        for y in 0..h {
            for x in 0..w {
                for b in 0..bands {
                    chunky[(y * bw + x) * bands + b] = match layout {
                        SampleLayout::Interleaved => v[(y * w + x) * bands + b],
                        _ => v[b * band_len + (row + y) * pw + col + x],
                    };
                }
            }
        }
        let per_row = bw * bands;
        let mut out = vec![0u8; chunky.len() * T::SIZE];
        match predictor {
            Predictor::None | Predictor::Horizontal => {
                if predictor == Predictor::Horizontal {
                    for r in chunky.chunks_exact_mut(per_row) {
                        for i in (bands..r.len()).rev() {
                            r[i] = r[i].wrapping_sub(r[i - bands]);
                        }
                    }
                }
                for (s, o) in chunky.iter().zip(out.chunks_exact_mut(T::SIZE)) {
                    ORDER.write(o, *s);
                }
            }
            Predictor::FloatingPoint => {
                for (r, dst) in chunky
                    .chunks_exact(per_row)
                    .zip(out.chunks_exact_mut(per_row * T::SIZE))
                {
                    for (i, &s) in r.iter().enumerate() {
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
        out
    }

    fn check<T: EncSample>(make: impl Fn(usize) -> T, predictors: &[Predictor]) {
        let (bw, bh) = (16, 8);
        for bands in 1..=5 {
            for (w, h) in [(16, 8), (1, 1), (5, 8), (16, 3), (11, 7)] {
                let (pw, ph, col, row) = (w + 9, h + 4, 6, 3);
                let planes: Vec<T> = (0..pw * ph * bands).map(&make).collect();
                let exact: Vec<T> = (0..w * h * bands).map(&make).collect();
                let layouts = [
                    (SampleLayout::BandSequential, &exact),
                    (SampleLayout::Interleaved, &exact),
                    (
                        SampleLayout::PlaneWindow {
                            plane_width: pw,
                            plane_height: ph,
                            col,
                            row,
                        },
                        &planes,
                    ),
                ];
                for &predictor in predictors {
                    // One buffer for every block, as an encoding thread reuses its own.
                    let mut buf = vec![0xAA; 3];
                    for (layout, v) in &layouts {
                        // `block_bytes` reads the typed slice; the enum only names the type.
                        let samples = Samples::U8(Vec::new());
                        let data = BlockData {
                            samples: &samples,
                            layout: *layout,
                            width: w,
                            height: h,
                            bands,
                        };
                        block_bytes(v, &data, bw, bh, predictor, &mut buf).unwrap();
                        let want = reference(v, (w, h, bands), *layout, (bw, bh), predictor);
                        assert_eq!(buf, want, "{layout:?} {w}x{h}x{bands} {predictor:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn fused_encoder_matches_the_reference() {
        let hash = |i: usize| (i.wrapping_mul(2_654_435_761) >> 7) ^ (i * 13);
        let ints = [Predictor::None, Predictor::Horizontal];
        let floats = [Predictor::None, Predictor::FloatingPoint];
        check(|i| hash(i) as u8, &ints);
        check(|i| hash(i) as i8, &ints);
        check(|i| hash(i) as u16, &ints);
        check(|i| hash(i) as i16, &ints);
        check(|i| hash(i) as u32, &ints);
        check(|i| hash(i) as i32, &ints);
        check(|i| hash(i) as f32 * 0.37 - 1e4, &floats);
        check(|i| hash(i) as f64 * -1.3e-3, &floats);
    }

    #[test]
    fn geometry_is_checked() {
        let v = vec![0u8; 12];
        let samples = Samples::U8(v.clone());
        let mut buf = Vec::new();
        let data = |layout| BlockData {
            samples: &samples,
            layout,
            width: 4,
            height: 3,
            bands: 1,
        };
        assert!(block_bytes(
            &v,
            &data(SampleLayout::BandSequential),
            4,
            2,
            Predictor::None,
            &mut buf
        )
        .is_err());
        let outside = SampleLayout::PlaneWindow {
            plane_width: 4,
            plane_height: 3,
            col: 1,
            row: 0,
        };
        assert!(block_bytes(&v, &data(outside), 8, 8, Predictor::None, &mut buf).is_err());
        assert!(block_bytes(
            &v,
            &data(SampleLayout::BandSequential),
            4,
            4,
            Predictor::FloatingPoint,
            &mut buf
        )
        .is_err());
    }
}
