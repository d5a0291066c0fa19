//! Block decoding: decompression, predictors, byte order, sample layouts, colour models.
//!
//! CONTRACT (implemented here): `decode_block(header, ifd, block_index, bytes)` returns the
//! block as a [`Block`] with samples in band-sequential order (all of band 0, then band 1...),
//! `block_width` x `block_height` pixels for tiles (edge tiles keep the full tile size, padding
//! included, as stored). Strips are `width` x `rows_per_strip`, except the last strip, which
//! has only the rows that lie inside the image: `Block::height` always says how many rows the
//! block holds. Chunky blocks carry all `samples_per_pixel` bands; separate-plane blocks carry
//! one band. YCbCr JPEG decodes to RGB; 1-bit masks decode to 0/255 `u8` (other 1/2/4-bit
//! images to their raw values); palette images stay indices.
//!
//! The work is done once per block with the sample type chosen up front (generic functions
//! instantiated per type), into buffers sized from the header, so nothing allocates or
//! branches on the data type per sample.

use std::borrow::Cow;
use std::cell::RefCell;

use kiln_core::{DataType, Samples};

use crate::header::{Compression, ImageIfd, Photometric, Predictor, TiffHeader};
use crate::CogError;

/// One decoded block.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub width: usize,
    pub height: usize,
    pub bands: usize,
    /// `width * height * bands` samples, band-sequential.
    pub samples: Samples,
}

/// Decodes block `index` of `ifd` from its stored bytes (`bytes` is exactly the block's byte
/// range, see [`ImageIfd::block_range`]).
pub fn decode_block(
    header: &TiffHeader,
    ifd: &ImageIfd,
    index: usize,
    bytes: &[u8],
) -> Result<Block, CogError> {
    let err = |reason: String| CogError::Decode {
        block: index,
        reason,
    };
    if index >= ifd.block_count() {
        return Err(err(format!(
            "index out of range (the image has {} blocks)",
            ifd.block_count()
        )));
    }
    let width = ifd.block_width as usize;
    let rows = ifd.block_rows(index);
    let bands = ifd.block_bands();
    let samples = match ifd.compression {
        Compression::Jpeg => decode_jpeg(ifd, bytes, width, rows, bands).map_err(err)?,
        Compression::Webp => decode_webp(bytes, width, rows, bands).map_err(err)?,
        _ => decode_raw(header, ifd, bytes, width, rows, bands).map_err(err)?,
    };
    Ok(Block {
        width,
        height: rows,
        bands,
        samples,
    })
}

/// A block standing for a sparse (never written) block: GDAL reads those as the nodata value
/// when there is one, else zeros.
pub fn sparse_block(header: &TiffHeader, ifd: &ImageIfd, index: usize) -> Block {
    let width = ifd.block_width as usize;
    let height = ifd.block_rows(index);
    let bands = ifd.block_bands();
    let len = width * height * bands;
    let fill = header.nodata.filter(|v| {
        let (lo, hi) = ifd.dtype.range();
        ifd.dtype.is_float() || (*v >= lo && *v <= hi && v.fract() == 0.0)
    });
    let samples = match fill {
        None => Samples::zeros(ifd.dtype, len),
        Some(v) => {
            use kiln_core::dtype::Sample;
            match ifd.dtype {
                DataType::U8 => Samples::U8(vec![u8::from_f64(v); len]),
                DataType::I8 => Samples::I8(vec![i8::from_f64(v); len]),
                DataType::U16 => Samples::U16(vec![u16::from_f64(v); len]),
                DataType::I16 => Samples::I16(vec![i16::from_f64(v); len]),
                DataType::U32 => Samples::U32(vec![u32::from_f64(v); len]),
                DataType::I32 => Samples::I32(vec![i32::from_f64(v); len]),
                DataType::F32 => Samples::F32(vec![f32::from_f64(v); len]),
                DataType::F64 => Samples::F64(vec![v; len]),
            }
        }
    };
    Block {
        width,
        height,
        bands,
        samples,
    }
}

// ---------------------------------------------------------------------------------------------
// Uncompressed-layout codecs (none, DEFLATE, LZW, PackBits, ZSTD) + predictors + sample types
// ---------------------------------------------------------------------------------------------

fn decode_raw(
    header: &TiffHeader,
    ifd: &ImageIfd,
    bytes: &[u8],
    width: usize,
    rows: usize,
    bands: usize,
) -> Result<Samples, String> {
    let bits = usize::from(ifd.bits_per_sample);
    let row_bytes = width
        .checked_mul(bands)
        .and_then(|v| v.checked_mul(bits))
        .map(|v| v.div_ceil(8))
        .ok_or("block size overflows")?;
    let need = row_bytes.checked_mul(rows).ok_or("block size overflows")?;
    // Some writers store the last strip at full strip height: leave room for that.
    let room = row_bytes
        .checked_mul(ifd.block_height as usize)
        .ok_or("block size overflows")?
        .max(need);
    let raw = decompress(ifd.compression, bytes, need, room)?;
    if bits < 8 {
        // Masks read as 0/255 (GDAL's convention); other bilevel data keeps its values.
        let scale = if ifd.is_mask() && bits == 1 { 255 } else { 1 };
        let v = unpack_bits(&raw, bits, width * bands, rows, scale)?;
        return Ok(Samples::U8(deinterleave(v, bands)));
    }
    let big = header.big_endian;
    let p = ifd.predictor;
    let shape = Shape { width, rows, bands };
    Ok(match ifd.dtype {
        DataType::U8 => Samples::U8(typed::<u8>(&raw, big, p, shape)?),
        DataType::I8 => Samples::I8(typed::<i8>(&raw, big, p, shape)?),
        DataType::U16 => Samples::U16(typed::<u16>(&raw, big, p, shape)?),
        DataType::I16 => Samples::I16(typed::<i16>(&raw, big, p, shape)?),
        DataType::U32 => Samples::U32(typed::<u32>(&raw, big, p, shape)?),
        DataType::I32 => Samples::I32(typed::<i32>(&raw, big, p, shape)?),
        DataType::F32 => Samples::F32(typed::<f32>(&raw, big, p, shape)?),
        DataType::F64 => Samples::F64(typed::<f64>(&raw, big, p, shape)?),
    })
}

thread_local! {
    // Decompressor state is reused per thread instead of allocated per block.
    static INFLATER: RefCell<libdeflater::Decompressor> =
        RefCell::new(libdeflater::Decompressor::new());
    static ZSTD: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Decompresses into a buffer of `room` bytes and returns exactly `need` bytes.
fn decompress(c: Compression, bytes: &[u8], need: usize, room: usize) -> Result<Vec<u8>, String> {
    let mut out;
    let written = match c {
        Compression::None => {
            let src = bytes
                .get(..need)
                .ok_or_else(|| format!("block has {} bytes, needs {need}", bytes.len()))?;
            return Ok(src.to_vec());
        }
        Compression::Deflate => {
            out = vec![0u8; room];
            inflate(bytes, &mut out)?
        }
        Compression::Lzw => {
            out = vec![0u8; room];
            lzw(bytes, &mut out)?
        }
        Compression::PackBits => {
            out = vec![0u8; room];
            packbits(bytes, &mut out)
        }
        Compression::Zstd => {
            out = vec![0u8; room];
            unzstd(bytes, &mut out)?
        }
        Compression::Jpeg | Compression::Webp => {
            return Err("internal: image codec routed to the raw path".into())
        }
    };
    if written < need {
        return Err(format!(
            "{c:?} data decodes to {written} bytes, the block needs {need}"
        ));
    }
    out.truncate(need);
    Ok(out)
}

fn inflate(bytes: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let mut run = |d: &mut libdeflater::Decompressor| {
        d.zlib_decompress(bytes, out).map_err(|e| match e {
            libdeflater::DecompressionError::BadData => "corrupt DEFLATE data".to_string(),
            libdeflater::DecompressionError::InsufficientSpace => {
                "DEFLATE data decodes to more bytes than the block holds".to_string()
            }
        })
    };
    INFLATER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut d) => run(&mut d),
        Err(_) => run(&mut libdeflater::Decompressor::new()),
    })
}

fn unzstd(bytes: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let mut run = |d: &mut zstd::bulk::Decompressor<'static>| {
        d.decompress_to_buffer(bytes, out)
            .map_err(|e| format!("corrupt ZSTD data: {e}"))
    };
    ZSTD.with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            if slot.is_none() {
                *slot = zstd::bulk::Decompressor::new().ok();
            }
            if let Some(d) = slot.as_mut() {
                return run(d);
            }
        }
        let mut d = zstd::bulk::Decompressor::new()
            .map_err(|e| format!("cannot create a ZSTD decompressor: {e}"))?;
        run(&mut d)
    })
}

/// TIFF LZW: MSB-first codes with the early size switch; libtiff's pre-5.0 "old-style"
/// LSB-first streams are recognised by their first bytes, as libtiff does.
fn lzw(bytes: &[u8], out: &mut [u8]) -> Result<usize, String> {
    use weezl::{decode::Decoder, BitOrder, LzwStatus};
    let old_style = bytes.len() >= 2 && bytes[0] == 0 && bytes[1] & 1 == 1;
    let mut dec = if old_style {
        Decoder::new(BitOrder::Lsb, 8)
    } else {
        Decoder::with_tiff_size_switch(BitOrder::Msb, 8)
    };
    let (mut read, mut written) = (0usize, 0usize);
    while let (Some(inp), Some(dst)) = (bytes.get(read..), out.get_mut(written..)) {
        if dst.is_empty() {
            break;
        }
        let r = dec.decode_bytes(inp, dst);
        read += r.consumed_in;
        written += r.consumed_out;
        match r.status {
            Ok(LzwStatus::Done | LzwStatus::NoProgress) => break,
            Ok(LzwStatus::Ok) => {
                if r.consumed_in == 0 && r.consumed_out == 0 {
                    break;
                }
            }
            // Trailing garbage after a complete block is harmless; anything earlier is not.
            Err(e) => {
                if written == 0 {
                    return Err(format!("corrupt LZW data: {e}"));
                }
                break;
            }
        }
    }
    Ok(written)
}

/// PackBits (Apple RLE, TIFF compression 32773). Returns the bytes written; stops when the
/// output is full or the input ends.
fn packbits(bytes: &[u8], out: &mut [u8]) -> usize {
    let (mut i, mut o) = (0usize, 0usize);
    while i < bytes.len() && o < out.len() {
        let n = bytes[i] as i8;
        i += 1;
        if n >= 0 {
            let len = (n as usize + 1).min(bytes.len() - i).min(out.len() - o);
            out[o..o + len].copy_from_slice(&bytes[i..i + len]);
            i += n as usize + 1;
            o += len;
        } else if n != -128 {
            let Some(&b) = bytes.get(i) else { break };
            i += 1;
            let len = (1 - isize::from(n)) as usize;
            let len = len.min(out.len() - o);
            out[o..o + len].fill(b);
            o += len;
        }
    }
    o
}

/// Unpacks `bits`-bit samples (1, 2 or 4), rows padded to whole bytes, to one byte each,
/// multiplied by `scale`.
fn unpack_bits(
    raw: &[u8],
    bits: usize,
    per_row: usize,
    rows: usize,
    scale: u8,
) -> Result<Vec<u8>, String> {
    if !matches!(bits, 1 | 2 | 4) {
        return Err(format!("{bits}-bit samples"));
    }
    let row_bytes = (per_row * bits).div_ceil(8);
    let mask = (1u8 << bits) - 1;
    let per_byte = 8 / bits;
    let mut out = Vec::with_capacity(per_row * rows);
    for r in 0..rows {
        let row = raw
            .get(r * row_bytes..(r + 1) * row_bytes)
            .ok_or("bit-packed block cut short")?;
        let start = out.len();
        for &byte in row {
            for k in 0..per_byte {
                let shift = 8 - bits * (k + 1);
                out.push(((byte >> shift) & mask).wrapping_mul(scale));
            }
        }
        // Drop the padding bits of the row's last byte.
        out.truncate(start + per_row);
    }
    Ok(out)
}

/// Block geometry for the typed path.
#[derive(Debug, Clone, Copy)]
struct Shape {
    width: usize,
    rows: usize,
    bands: usize,
}

/// A sample type as stored in a TIFF.
trait Stored: Copy + Default {
    const SIZE: usize;
    fn from_le(b: &[u8]) -> Self;
    fn from_be(b: &[u8]) -> Self;
    fn wrapping_add(self, other: Self) -> Self;
    /// Appends the `per_row` values whose big-endian bytes are split into `SIZE` planes of
    /// `per_row` bytes in `row` (the floating-point predictor's layout).
    fn from_planes(row: &[u8], per_row: usize, out: &mut Vec<Self>) {
        let mut be = [0u8; 8];
        for k in 0..per_row {
            for (p, b) in be.iter_mut().take(Self::SIZE).enumerate() {
                *b = row.get(p * per_row + k).copied().unwrap_or(0);
            }
            out.push(Self::from_be(&be[..Self::SIZE]));
        }
    }
}

macro_rules! stored_int {
    ($($t:ty),*) => {$(
        impl Stored for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn from_le(b: &[u8]) -> Self {
                <[u8; std::mem::size_of::<$t>()]>::try_from(b).map_or(0, <$t>::from_le_bytes)
            }
            #[inline(always)]
            fn from_be(b: &[u8]) -> Self {
                <[u8; std::mem::size_of::<$t>()]>::try_from(b).map_or(0, <$t>::from_be_bytes)
            }
            #[inline(always)]
            fn wrapping_add(self, other: Self) -> Self {
                <$t>::wrapping_add(self, other)
            }
        }
    )*};
}
stored_int!(u8, i8, u16, i16, u32, i32);

macro_rules! stored_float {
    ($($t:ty),*) => {$(
        impl Stored for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn from_le(b: &[u8]) -> Self {
                <[u8; std::mem::size_of::<$t>()]>::try_from(b).map_or(0.0, <$t>::from_le_bytes)
            }
            #[inline(always)]
            fn from_be(b: &[u8]) -> Self {
                <[u8; std::mem::size_of::<$t>()]>::try_from(b).map_or(0.0, <$t>::from_be_bytes)
            }
            // The horizontal predictor is rejected for floats at parse time.
            #[inline(always)]
            fn wrapping_add(self, other: Self) -> Self {
                self + other
            }
        }
    )*};
}
stored_float!(f32, f64);

// The predictor's plane gather is the hot loop of predictor-3 files: zipped plane slices let
// the compiler drop the bounds checks (the default method indexes per byte).
impl PlaneGather for f32 {
    fn gather(row: &[u8], per_row: usize, out: &mut Vec<Self>) {
        let (p0, rest) = row.split_at(per_row.min(row.len()));
        let (p1, rest) = rest.split_at(per_row.min(rest.len()));
        let (p2, p3) = rest.split_at(per_row.min(rest.len()));
        if p3.len() != per_row {
            return Self::from_planes(row, per_row, out);
        }
        out.extend(
            p0.iter()
                .zip(p1)
                .zip(p2)
                .zip(p3)
                .map(|(((a, b), c), d)| f32::from_be_bytes([*a, *b, *c, *d])),
        );
    }
}

impl PlaneGather for f64 {
    fn gather(row: &[u8], per_row: usize, out: &mut Vec<Self>) {
        let (hi, lo) = row.split_at(row.len() / 2);
        let (Some(h), Some(l)) = (split4(hi, per_row), split4(lo, per_row)) else {
            return Self::from_planes(row, per_row, out);
        };
        let quad = |p: [&[u8]; 4], k: usize| [p[0][k], p[1][k], p[2][k], p[3][k]];
        out.extend((0..per_row).map(|k| {
            let (a, b) = (quad(h, k), quad(l, k));
            f64::from_be_bytes([a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]])
        }));
    }
}

/// Four planes of exactly `n` bytes each.
fn split4(b: &[u8], n: usize) -> Option<[&[u8]; 4]> {
    if b.len() != 4 * n {
        return None;
    }
    let (a, r) = b.split_at(n);
    let (c, r) = r.split_at(n);
    let (d, e) = r.split_at(n);
    Some([a, c, d, e])
}

/// Types the floating-point predictor applies to.
trait PlaneGather: Stored {
    fn gather(row: &[u8], per_row: usize, out: &mut Vec<Self>) {
        Self::from_planes(row, per_row, out);
    }
}
impl PlaneGather for u8 {}
impl PlaneGather for i8 {}
impl PlaneGather for u16 {}
impl PlaneGather for i16 {}
impl PlaneGather for u32 {}
impl PlaneGather for i32 {}

/// Raw bytes (chunky order) to typed, predictor-decoded, band-sequential samples.
fn typed<T: PlaneGather>(
    raw: &[u8],
    big_endian: bool,
    predictor: Predictor,
    s: Shape,
) -> Result<Vec<T>, String> {
    let per_row = s.width * s.bands;
    let n = per_row * s.rows;
    let raw = raw
        .get(..n * T::SIZE)
        .ok_or_else(|| format!("block has {} bytes, needs {}", raw.len(), n * T::SIZE))?;
    let mut v: Vec<T> = Vec::with_capacity(n);
    if predictor == Predictor::FloatingPoint {
        float_predictor(raw, per_row, s.bands, &mut v);
    } else {
        if big_endian {
            v.extend(raw.chunks_exact(T::SIZE).map(T::from_be));
        } else {
            v.extend(raw.chunks_exact(T::SIZE).map(T::from_le));
        }
        if predictor == Predictor::Horizontal {
            horizontal_predictor(&mut v, per_row, s.bands);
        }
    }
    Ok(deinterleave(v, s.bands))
}

/// Undoes horizontal differencing: each sample adds the same band's previous pixel.
///
/// A single band keeps its running sum in a register: re-reading the element just written
/// costs a store-to-load round trip per sample, several times slower.
fn horizontal_predictor<T: Stored>(v: &mut [T], per_row: usize, bands: usize) {
    if per_row == 0 {
        return;
    }
    for row in v.chunks_exact_mut(per_row) {
        match bands {
            1 => {
                let mut acc = T::default();
                for x in row.iter_mut() {
                    acc = acc.wrapping_add(*x);
                    *x = acc;
                }
            }
            // Several bands are independent chains: the indexed loop pipelines well.
            _ => {
                for i in bands..row.len() {
                    row[i] = row[i].wrapping_add(row[i - bands]);
                }
            }
        }
    }
}

/// Undoes the floating-point predictor (TIFF Technical Note 3): per row, bytes were split into
/// planes, most significant first, then byte-differenced with a stride of one pixel.
fn float_predictor<T: PlaneGather>(raw: &[u8], per_row: usize, bands: usize, out: &mut Vec<T>) {
    let row_bytes = per_row * T::SIZE;
    if row_bytes == 0 {
        return;
    }
    let mut row = vec![0u8; row_bytes];
    for src in raw.chunks_exact(row_bytes) {
        row.copy_from_slice(src);
        horizontal_predictor(&mut row, row_bytes, bands);
        T::gather(&row, per_row, out);
    }
}

/// Chunky (pixel-interleaved) to band-sequential.
fn deinterleave<T: Copy + Default>(v: Vec<T>, bands: usize) -> Vec<T> {
    if bands <= 1 {
        return v;
    }
    let npix = v.len() / bands;
    let mut out = vec![T::default(); npix * bands];
    for (b, plane) in out.chunks_exact_mut(npix.max(1)).enumerate() {
        for (dst, src) in plane.iter_mut().zip(v.iter().skip(b).step_by(bands)) {
            *dst = *src;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Image codecs
// ---------------------------------------------------------------------------------------------

/// Copies an interleaved `sw` x `sh` x `sc` image into a band-sequential `width` x `rows` x
/// `bands` block (cropping or zero-padding; missing channels read 255, i.e. opaque alpha).
fn image_to_block(
    px: &[u8],
    (sw, sh, sc): (usize, usize, usize),
    width: usize,
    rows: usize,
    bands: usize,
) -> Vec<u8> {
    let npix = width * rows;
    let mut out = vec![0u8; npix * bands];
    let (cw, ch) = (sw.min(width), sh.min(rows));
    for (b, plane) in out.chunks_exact_mut(npix.max(1)).enumerate() {
        if b >= sc {
            plane.fill(255);
            continue;
        }
        for y in 0..ch {
            let src = px.get(y * sw * sc..(y * sw + cw) * sc).unwrap_or_default();
            let dst = &mut plane[y * width..y * width + cw];
            for (d, s) in dst.iter_mut().zip(src.iter().skip(b).step_by(sc)) {
                *d = *s;
            }
        }
    }
    out
}

fn decode_jpeg(
    ifd: &ImageIfd,
    bytes: &[u8],
    width: usize,
    rows: usize,
    bands: usize,
) -> Result<Samples, String> {
    // libtiff (so GDAL) converts only YCbCr to RGB; other photometrics come out as stored.
    let colour = if ifd.photometric == Photometric::YCbCr && bands == 3 {
        crate::jpeg::Colour::YCbCrToRgb
    } else {
        crate::jpeg::Colour::AsStored
    };
    let target = crate::jpeg::Target {
        width,
        rows,
        full_rows: ifd.block_height as usize,
        bands,
    };
    if let Some(px) = crate::jpeg::decode(ifd.jpeg_tables.as_deref(), bytes, colour, target)? {
        return Ok(Samples::U8(px));
    }
    decode_jpeg_general(ifd, bytes, width, rows, bands)
}

/// Streams the GDAL-exact decoder declines (progressive, unusual sampling...): zune-jpeg,
/// which matches libjpeg to within its upsampling and rounding.
fn decode_jpeg_general(
    ifd: &ImageIfd,
    bytes: &[u8],
    width: usize,
    rows: usize,
    bands: usize,
) -> Result<Samples, String> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    use zune_jpeg::JpegDecoder;

    // Abbreviated streams: the shared tables (SOI..tables..EOI) go in front of the block's
    // own stream (SOI..EOI), with the EOI of one and the SOI of the other removed.
    let stream: Cow<'_, [u8]> = match (&ifd.jpeg_tables, bytes.get(2..)) {
        (Some(t), Some(body)) if t.len() >= 4 && bytes.starts_with(&[0xFF, 0xD8]) => {
            let tables = t.strip_suffix(&[0xFF, 0xD9]).unwrap_or(t);
            let mut s = Vec::with_capacity(tables.len() + body.len());
            s.extend_from_slice(tables);
            s.extend_from_slice(body);
            Cow::Owned(s)
        }
        _ => Cow::Borrowed(bytes),
    };
    let out_cs = if bands == 1 {
        ColorSpace::Luma
    } else {
        ColorSpace::RGB
    };
    let opts = DecoderOptions::default()
        .set_max_width(width.max(1) * 2)
        .set_max_height(rows.max(1) * 2)
        // Strict: a stream cut short is an error, not a block with grey lower rows.
        .set_strict_mode(true)
        .jpeg_set_out_colorspace(out_cs);
    let mut dec = JpegDecoder::new_with_options(ZCursor::new(&stream[..]), opts);
    dec.decode_headers()
        .map_err(|e| format!("corrupt JPEG data: {e:?}"))?;
    let (w, h) = dec.dimensions().ok_or("JPEG without a frame header")?;
    if bands == 3
        && ifd.photometric != Photometric::YCbCr
        && dec.input_colorspace() == Some(ColorSpace::YCbCr)
    {
        // Photometric RGB stored without an Adobe marker: the components already are R, G, B,
        // so they must not be converted as if they were YCbCr.
        dec.set_options(opts.jpeg_set_out_colorspace(ColorSpace::YCbCr));
    }
    let size = dec
        .output_buffer_size()
        .ok_or("JPEG output size overflows")?;
    let mut px = vec![0u8; size];
    dec.decode_into(&mut px)
        .map_err(|e| format!("corrupt JPEG data: {e:?}"))?;
    Ok(Samples::U8(image_to_block(
        &px,
        (w, h, bands),
        width,
        rows,
        bands,
    )))
}

fn decode_webp(bytes: &[u8], width: usize, rows: usize, bands: usize) -> Result<Samples, String> {
    let img = webp::Decoder::new(bytes)
        .decode()
        .ok_or("corrupt or unsupported WebP data")?;
    let channels = if img.is_alpha() { 4 } else { 3 };
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok(Samples::U8(image_to_block(
        &img,
        (w, h, channels),
        width,
        rows,
        bands,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_literal_and_runs() {
        // Example from the TIFF 6.0 specification.
        let packed = [
            0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0xFD, 0xAA, 0x03, 0x80, 0x00, 0x2A, 0x22, 0xF7,
            0xAA,
        ];
        let expected = [
            0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0xAA, 0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0x22,
            0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,
        ];
        let mut out = [0u8; 24];
        assert_eq!(packbits(&packed, &mut out), 24);
        assert_eq!(out, expected);
        // A no-op code (-128) is skipped; truncated input stops without panicking.
        let mut out = [0u8; 4];
        assert_eq!(packbits(&[0x80, 0x01, 7], &mut out), 1);
        assert_eq!(out[0], 7);
        assert_eq!(packbits(&[0xFD], &mut out), 0);
        // Output bound respected.
        let mut small = [0u8; 2];
        assert_eq!(packbits(&[0xF0, 9], &mut small), 2);
    }

    #[test]
    fn one_bit_unpacking_with_row_padding() {
        // 10 pixels per row: two bytes per row, last 6 bits padding.
        let raw = [0b1010_0000, 0b1100_0000, 0b0000_0001, 0b0100_0000];
        let v = unpack_bits(&raw, 1, 10, 2, 255).unwrap();
        assert_eq!(
            v,
            [255, 0, 255, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 0, 0, 0, 255, 0, 255]
        );
        let v = unpack_bits(&[0b0001_1011], 2, 4, 1, 1).unwrap();
        assert_eq!(v, [0, 1, 2, 3]);
        let v = unpack_bits(&[0xA5, 0xF0], 4, 3, 1, 1).unwrap();
        assert_eq!(v, [10, 5, 15]);
        assert!(unpack_bits(&[0xFF], 1, 10, 1, 1).is_err());
    }

    #[test]
    fn horizontal_predictor_per_sample_with_wrapping() {
        // Two rows of 3 pixels x 2 bands, u16 with wrap-around.
        let mut v: Vec<u16> = vec![10, 65535, 1, 1, 2, 2, 5, 0, 0, 7, 1, 1];
        horizontal_predictor(&mut v, 6, 2);
        assert_eq!(v, [10, 65535, 11, 0, 13, 2, 5, 0, 5, 7, 6, 8]);
        let mut v: Vec<i8> = vec![-128, -1, 2];
        horizontal_predictor(&mut v, 3, 1);
        assert_eq!(v, [-128, 127, -127]);
        let mut v: Vec<u32> = vec![u32::MAX, 2];
        horizontal_predictor(&mut v, 2, 1);
        assert_eq!(v, [u32::MAX, 1]);
    }

    #[test]
    fn floating_point_predictor_round_trip() {
        // Encode as libtiff does: planes MSB first, then byte differences with stride = bands.
        let vals: [f32; 6] = [1.5, -2.25, 1000.0, 3.0e-5, f32::MAX, 0.0];
        let (per_row, bands) = (6, 2);
        let mut planes = vec![0u8; per_row * 4];
        for (k, v) in vals.iter().enumerate() {
            for (p, b) in v.to_be_bytes().iter().enumerate() {
                planes[p * per_row + k] = *b;
            }
        }
        for i in (bands..planes.len()).rev() {
            planes[i] = planes[i].wrapping_sub(planes[i - bands]);
        }
        let mut out: Vec<f32> = Vec::new();
        float_predictor(&planes, per_row, bands, &mut out);
        assert_eq!(out, vals);
    }

    #[test]
    fn typed_big_endian_and_deinterleave() {
        let raw = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
        let s = Shape {
            width: 2,
            rows: 1,
            bands: 2,
        };
        let v: Vec<u16> = typed(&raw, true, Predictor::None, s).unwrap();
        assert_eq!(v, [0x0102, 0x0506, 0x0304, 0x0708]);
        let v: Vec<u16> = typed(&raw, false, Predictor::None, s).unwrap();
        assert_eq!(v, [0x0201, 0x0605, 0x0403, 0x0807]);
        assert!(typed::<u32>(&raw, false, Predictor::None, s).is_err());
    }
}
