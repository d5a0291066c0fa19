//! Overview (reduced-resolution level) generation the way GDAL builds them, streaming by rows.
//!
//! `kiln optimize` writes COGs whose overviews must look like the ones `gdal_translate -of COG`
//! or `gdaladdo` would write. This module owns the pure part: which levels a COG gets
//! ([`overview_sizes`]) and the resampling of one level into the next ([`OverviewReducer`]),
//! with no I/O, holding only the few source rows the kernel needs.
//!
//! # Numerics (GDAL 3.6 `gcore/overview.cpp`)
//!
//! A level of `dst_w` × `dst_h` pixels is made from a level of `src_w` × `src_h` with the
//! ratios `rx = src_w / dst_w`, `ry = src_h / dst_h` (exactly 2 for even sizes, a little more or
//! less for odd ones), as GDAL does:
//!
//! * [`OverviewResampling::Nearest`]: destination pixel `i` takes source pixel
//!   `floor(0.5 + i·rx)` (for 2× the top-left pixel of each 2×2 block), value and validity.
//! * [`OverviewResampling::Average`]: the mean of the valid source pixels of the window
//!   `[floor(i·rx), ceil((i+1)·rx))`, edge pixels weighted by their covered fraction when the
//!   ratio is not an integer. Byte/UInt16 results are rounded half up (`(sum + 2) / 4` for a
//!   2×2 block); other types are averaged in Float32 (GDAL's working type), then rounded half
//!   away from zero for integer types. Without a mask, the exact-2× float case reproduces GDAL's
//!   SSE2 summation order.
//! * [`OverviewResampling::Mode`]: the most frequent valid value of the same window; on a tie
//!   the value that reached the winning count first in row-major order wins (GDAL's rule).
//! * [`OverviewResampling::Bilinear`]: GDAL's convolution overview with the triangle kernel
//!   stretched by the ratio (a separable 4×4 kernel `1,3,3,1 / 8` at 2×), taps clipped at the
//!   image edges and renormalised; invalid pixels get no weight.
//!
//! A destination pixel is invalid when no valid source pixel contributes (nearest: when the
//! chosen pixel is invalid). Invalid pixels carry the nodata value (0 without one), and a valid
//! result equal to the nodata value is nudged off it as GDAL does (e.g. nodata 0 → 1).
//!
//! # Streaming and cascading
//!
//! Rows go in as a [`Raster`] of any number of rows (band-sequential samples plus the shared
//! 0/255 validity mask, as everywhere in Kiln); each [`OverviewReducer::push`] returns the
//! destination rows completed by them (possibly none). Level N+1 is made from level N, as the
//! COG driver does, so one pass over the source feeds reducer 1, whose output feeds reducer 2,
//! and so on ([`OverviewPyramid`]). Each reducer holds at most the rows one destination row
//! needs (2-3 for nearest/average/mode, 4-5 for bilinear) plus nothing else: memory is
//! `O(width × bands)` per level, independent of the height.
//!
//! # Known gaps
//!
//! * Paletted bands: GDAL's `average` averages colours through the colour table and picks the
//!   nearest entry; Kiln averages indices. Use `mode` or `nearest` for them (the default).
//! * One validity mask for all bands: GDAL masks each band by its own nodata value, so a
//!   multi-band source whose bands are nodata independently is not reproduced.
//! * GDAL's byte `mode` tests the nodata value, not an internal mask/alpha; Kiln uses the mask.
//! * GDAL decides its float exact-2× fast path per block-wide chunk in the COG driver, Kiln per
//!   row; and GDAL's SSE2 masked convolution pairs taps in another order: Float32 results may
//!   differ by 1-2 ulp (integer results are exact).
//!
//! # Level sizes
//!
//! Measured on GDAL 3.6.2: the COG driver halves with *floor* (`999 → 499`, `1025 → 512`,
//! never below 1) until the level fits one block, while `gdaladdo -r … 2 4 8` on a GTiff
//! rounds up (`ceil(w / factor)`). [`overview_sizes`] returns the COG sizes; the reducer takes
//! any destination size, so both are supported.

use std::collections::VecDeque;
use std::str::FromStr;

use crate::dtype::{DataType, Sample, Samples};
use crate::raster::Raster;
use crate::with_samples;
use crate::CoreError;

/// How a level is resampled into the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverviewResampling {
    /// The top-left source pixel of each block (GDAL `nearest`).
    Nearest,
    /// Mean of the valid source pixels (GDAL `average`).
    Average,
    /// Most frequent valid value (GDAL `mode`), for categorical/paletted data.
    Mode,
    /// Triangle kernel stretched over the block (GDAL `bilinear`).
    Bilinear,
}

impl OverviewResampling {
    /// The name used by the CLI and by GDAL (`nearest`, `average`, `mode`, `bilinear`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nearest => "nearest",
            Self::Average => "average",
            Self::Mode => "mode",
            Self::Bilinear => "bilinear",
        }
    }

    /// The default for a source: `Mode` for paletted or otherwise categorical data (averaging
    /// class codes makes codes that do not exist), `Average` otherwise.
    pub fn default_for(categorical: bool) -> Self {
        if categorical {
            Self::Mode
        } else {
            Self::Average
        }
    }
}

impl FromStr for OverviewResampling {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "nearest" => Ok(Self::Nearest),
            "average" => Ok(Self::Average),
            "mode" => Ok(Self::Mode),
            "bilinear" => Ok(Self::Bilinear),
            other => Err(CoreError::invalid(
                "overview resampling",
                format!("{other:?} is not one of nearest, average, mode, bilinear"),
            )),
        }
    }
}

/// Size of the level below a `width` × `height` level in a COG: each side halved, rounded
/// down, at least 1 (GDAL 3.6 COG driver).
pub fn next_level_size(width: usize, height: usize) -> (usize, usize) {
    ((width / 2).max(1), (height / 2).max(1))
}

/// Overview sizes `gdal_translate -of COG -co BLOCKSIZE=<block>` gives a `width` × `height`
/// image, largest first: levels are added while the previous one does not fit in one
/// `block` × `block` tile. Empty when the image already fits (or when `block` is 0).
pub fn overview_sizes(width: usize, height: usize, block: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if block == 0 {
        return out;
    }
    let (mut w, mut h) = (width, height);
    while (w > block || h > block) && out.len() < 64 {
        (w, h) = next_level_size(w, h);
        out.push((w, h));
    }
    out
}

/// Options of an [`OverviewReducer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverviewOptions {
    pub resampling: OverviewResampling,
    /// The source's nodata value: written into invalid output pixels, and valid results equal
    /// to it are moved off it (GDAL's replacement value).
    pub nodata: Option<f64>,
    /// Whether the source has a validity mask at all (nodata, internal mask, alpha). GDAL takes
    /// exact fast paths when it has none; with `false` the mask passed in is still honoured.
    pub has_mask: bool,
}

impl OverviewOptions {
    /// Options for `resampling` with no nodata value and no mask.
    pub fn new(resampling: OverviewResampling) -> Self {
        Self {
            resampling,
            nodata: None,
            has_mask: false,
        }
    }
}

/// A source window along one axis: `[start, end)` with fractional weights at both ends
/// (GDAL average/mode windows), or the taps of a convolution kernel (bilinear).
#[derive(Debug, Clone)]
struct AxisWindow {
    start: usize,
    end: usize,
    /// Average: weight of the first and last pixel (the ones between weigh 1).
    first_weight: f64,
    last_weight: f64,
    /// Bilinear: one normalised weight per pixel of `start..end`.
    taps: Vec<f64>,
}

fn box_window(i: usize, ratio: f64, src_len: usize) -> AxisWindow {
    let (a, b) = (i as f64 * ratio, (i + 1) as f64 * ratio);
    // GDAL: `int(x + 1e-8)` and `ceil(x2 - 1e-8)`, at least one pixel, clipped to the image.
    let start = ((a + 1e-8) as usize).min(src_len.saturating_sub(1));
    let mut end = (b - 1e-8).ceil().max(0.0) as usize;
    if end == start {
        end += 1;
    }
    let end = end.min(src_len);
    let first_weight = if end == start + 1 {
        1.0
    } else {
        1.0 - (a - start as f64)
    };
    let last_weight = 1.0 - (end as f64 - b);
    AxisWindow {
        start,
        end,
        first_weight,
        last_weight,
        taps: Vec::new(),
    }
}

fn nearest_window(i: usize, ratio: f64, src_len: usize) -> AxisWindow {
    let s = ((0.5 + i as f64 * ratio) as usize).min(src_len.saturating_sub(1));
    AxisWindow {
        start: s,
        end: s + 1,
        first_weight: 1.0,
        last_weight: 1.0,
        taps: Vec::new(),
    }
}

/// GDAL's convolution taps for the triangle (bilinear, radius 1) kernel.
fn bilinear_window(i: usize, ratio: f64, src_len: usize) -> AxisWindow {
    let scale = 1.0 / ratio;
    let scale_weight = if scale >= 1.0 { 1.0 } else { scale };
    let radius = 1.0 / scale_weight;
    let center = (i as f64 + 0.5) * ratio;
    let start = ((center - radius + 0.5).floor() as i64).max(0);
    let stop = ((center + radius + 0.5) as i64).min(src_len as i64);
    let stop = stop.max(start + 1).min(src_len as i64);
    let mut x = scale_weight * (start as f64 - center + 0.5);
    let mut taps = Vec::new();
    for _ in start..stop {
        let ax = x.abs();
        taps.push(if ax < 1.0 { 1.0 - ax } else { 0.0 });
        x += scale_weight;
    }
    let sum: f64 = taps.iter().sum();
    if sum != 0.0 {
        let inv = 1.0 / sum;
        for t in &mut taps {
            *t *= inv;
        }
    }
    AxisWindow {
        start: start as usize,
        end: stop as usize,
        first_weight: 1.0,
        last_weight: 1.0,
        taps,
    }
}

/// One buffered source row: working values of every band (band-major) and the mask.
#[derive(Debug, Clone)]
struct Row {
    values: Vec<f64>,
    mask: Vec<u8>,
}

/// GDAL's working type: Byte and UInt16 are resampled as integers, the rest as Float32.
fn integer_working_type(dtype: DataType) -> bool {
    matches!(dtype, DataType::U8 | DataType::U16)
}

/// `average` of exact 2×2 blocks without a mask in a sample type's own arithmetic: the same
/// results as [`OverviewReducer`]'s `average_pairs` (which works on `f64` rows) without
/// converting every sample to `f64` and back.
trait PairAverage: Sample {
    /// One destination row of one band from its two source rows (`2 * out.len()` samples
    /// each); `simd_end` is where GDAL's SSE2 groups of 4 end; valid results equal to `nodata`
    /// become `replacement`.
    fn average_row(
        top: &[Self],
        bottom: &[Self],
        out: &mut [Self],
        simd_end: usize,
        nodata: Option<f32>,
        replacement: f64,
    );
}

/// Byte and UInt16: `(sum + 2) >> 2` in integers, as GDAL.
macro_rules! pair_average_int {
    ($($t:ty),*) => {$(
        impl PairAverage for $t {
            #[inline]
            fn average_row(
                top: &[Self],
                bottom: &[Self],
                out: &mut [Self],
                _simd_end: usize,
                nodata: Option<f32>,
                replacement: f64,
            ) {
                for ((d, t), b) in out.iter_mut().zip(top.chunks_exact(2)).zip(bottom.chunks_exact(2)) {
                    let sum = u32::from(t[0]) + u32::from(t[1]) + u32::from(b[0]) + u32::from(b[1]);
                    // At most the type's maximum: the conversion is exact.
                    *d = ((sum + 2) >> 2) as $t;
                }
                // The general path compares the f64 result with trunc(nodata): only a value in
                // the type's range can match.
                if let Some(n) = nodata {
                    let m = f64::from(n).trunc();
                    if m >= 0.0 && m <= f64::from(<$t>::MAX) {
                        let (m, r) = (m as $t, <$t>::from_f64(replacement));
                        for d in out.iter_mut() {
                            if *d == m {
                                *d = r;
                            }
                        }
                    }
                }
            }
        }
    )*};
}
pair_average_int!(u8, u16);

/// The other types: Float32 in GDAL's SSE2 order for the groups of 4, its scalar order for
/// the rest, then the type's conversion (`Sample::from_f64`).
macro_rules! pair_average_f32 {
    ($($t:ty),*) => {$(
        impl PairAverage for $t {
            #[inline]
            fn average_row(
                top: &[Self],
                bottom: &[Self],
                out: &mut [Self],
                simd_end: usize,
                nodata: Option<f32>,
                replacement: f64,
            ) {
                let rep = <$t>::from_f64(replacement);
                let f = |s: $t| s.to_f64() as f32;
                let finish = |r: f32| -> $t {
                    match nodata {
                        Some(n) if r == n => rep,
                        _ => <$t>::from_f64(f64::from(r)),
                    }
                };
                let simd_end = simd_end.min(out.len());
                let (simd, rest) = out.split_at_mut(simd_end);
                for ((d, t), b) in simd.iter_mut().zip(top.chunks_exact(2)).zip(bottom.chunks_exact(2)) {
                    let (a0, a1, b0, b1) = (f(t[0]), f(t[1]), f(b[0]), f(b[1]));
                    *d = finish(0.25f32 * ((a0 + b0) + (a1 + b1)));
                }
                let (top, bottom) = (&top[2 * simd_end..], &bottom[2 * simd_end..]);
                for ((d, t), b) in rest.iter_mut().zip(top.chunks_exact(2)).zip(bottom.chunks_exact(2)) {
                    let (a0, a1, b0, b1) = (f(t[0]), f(t[1]), f(b[0]), f(b[1]));
                    *d = finish(0.25f32 * (((a0 + a1) + b0) + b1));
                }
            }
        }
    )*};
}
pair_average_f32!(i8, i16, u32, i32, f32, f64);

/// GDAL's `GetReplacementValueIfNoData`: what a valid result equal to nodata becomes.
fn replacement_value(dtype: DataType, nodata: f32) -> f64 {
    match dtype {
        DataType::U8 | DataType::U16 | DataType::I16 | DataType::I8 => {
            let max = dtype.range().1;
            if f64::from(nodata) == max {
                max - 1.0
            } else {
                f64::from(nodata) + 1.0
            }
        }
        DataType::U32 | DataType::I32 => {
            // Float32 precision: step until the value differs from nodata as a float.
            let mut v = f64::from(nodata);
            let up = f64::from(nodata) + 1.0 < dtype.range().1 - 128.0;
            let mut r = (f64::from(nodata) + 1.0) as f32;
            let mut guard = 0;
            while r == nodata && guard < 1024 {
                v += if up { 1.0 } else { -1.0 };
                {
                    r = v as f32;
                }
                guard += 1;
            }
            f64::from(r)
        }
        DataType::F32 | DataType::F64 => {
            if nodata == 0.0 {
                f64::from(f32::MIN_POSITIVE)
            } else {
                let r = (f64::from(nodata) + 1e-7 * f64::from(nodata)) as f32;
                f64::from(r)
            }
        }
    }
}

/// Streams one level into the next (see the module docs for the numerics).
///
/// Feed the source rows top to bottom with [`Self::push`]; every call returns the destination
/// rows completed so far, in order. After the last source row all destination rows have been
/// returned ([`Self::is_complete`]).
#[derive(Debug, Clone)]
pub struct OverviewReducer {
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
    bands: usize,
    dtype: DataType,
    options: OverviewOptions,
    /// Nodata as GDAL holds it (a float), when set.
    nodata_f32: Option<f32>,
    replacement: f64,
    cols: Vec<AxisWindow>,
    /// Every column window is `[2i, 2i + 2)`: GDAL's exact-2× fast path along x.
    x_spacing_two: bool,
    /// Average of exact 2×2 blocks without a mask on every row (`src` = 2 × `dst`): rows are
    /// reduced in their own type ([`PairAverage`]) and never buffered as `f64`.
    typed_pairs: bool,
    /// `typed_pairs`: the source row waiting for its partner (one row, band-major).
    carry: Option<Samples>,
    /// Whether `average_valid_rows` may take whole rows (tests turn it off to compare).
    valid_rows_path: bool,
    rows: VecDeque<Row>,
    /// Source row index of `rows[0]`.
    first_row: usize,
    rows_pushed: usize,
    rows_emitted: usize,
    max_buffered: usize,
}

impl OverviewReducer {
    /// A reducer from a `src` = (width, height) level to a `dst` one, for `bands` bands of
    /// `dtype`. `dst` is usually [`next_level_size`] of `src` (COG) or `ceil(src / 2)`
    /// (gdaladdo); it must not be larger than `src`.
    pub fn new(
        src: (usize, usize),
        dst: (usize, usize),
        bands: usize,
        dtype: DataType,
        options: OverviewOptions,
    ) -> Result<Self, CoreError> {
        let ((src_w, src_h), (dst_w, dst_h)) = (src, dst);
        if src_w == 0 || src_h == 0 || dst_w == 0 || dst_h == 0 || bands == 0 {
            return Err(CoreError::invalid(
                "overview level",
                format!("{src_w}x{src_h} -> {dst_w}x{dst_h} with {bands} bands: sizes and band count must be at least 1"),
            ));
        }
        if dst_w > src_w || dst_h > src_h {
            return Err(CoreError::invalid(
                "overview level",
                format!("{dst_w}x{dst_h} is larger than its source level {src_w}x{src_h}"),
            ));
        }
        let rx = src_w as f64 / dst_w as f64;
        let cols: Vec<AxisWindow> = (0..dst_w)
            .map(|i| match options.resampling {
                OverviewResampling::Nearest => nearest_window(i, rx, src_w),
                OverviewResampling::Average | OverviewResampling::Mode => box_window(i, rx, src_w),
                OverviewResampling::Bilinear => bilinear_window(i, rx, src_w),
            })
            .collect();
        let x_spacing_two = cols
            .iter()
            .enumerate()
            .all(|(i, w)| w.end == w.start + 2 && (i == 0 || cols[i - 1].end == w.start));
        let nodata_f32 = options.nodata.map(|v| v as f32);
        let replacement = nodata_f32.map_or(0.0, |n| replacement_value(dtype, n));
        let typed_pairs = options.resampling == OverviewResampling::Average
            && !options.has_mask
            && x_spacing_two
            && src_w == 2 * dst_w
            && src_h == 2 * dst_h;
        Ok(Self {
            src_w,
            src_h,
            dst_w,
            dst_h,
            bands,
            dtype,
            options,
            nodata_f32,
            replacement,
            cols,
            x_spacing_two,
            typed_pairs,
            carry: None,
            valid_rows_path: true,
            rows: VecDeque::new(),
            first_row: 0,
            rows_pushed: 0,
            rows_emitted: 0,
            max_buffered: 0,
        })
    }

    /// The same reducer with neither the typed exact-2× path nor the whole-row weighted path
    /// (tests compare them with the per-pixel code).
    #[cfg(test)]
    fn general_only(mut self) -> Self {
        self.typed_pairs = false;
        self.valid_rows_path = false;
        self
    }

    /// The reducer from a `width` × `height` level to the next COG level ([`next_level_size`]).
    pub fn halving(
        width: usize,
        height: usize,
        bands: usize,
        dtype: DataType,
        options: OverviewOptions,
    ) -> Result<Self, CoreError> {
        Self::new(
            (width, height),
            next_level_size(width, height),
            bands,
            dtype,
            options,
        )
    }

    /// Size of the level this reducer makes.
    pub fn dst_size(&self) -> (usize, usize) {
        (self.dst_w, self.dst_h)
    }

    /// Size of the level this reducer reads.
    pub fn src_size(&self) -> (usize, usize) {
        (self.src_w, self.src_h)
    }

    /// Source rows received so far.
    pub fn rows_pushed(&self) -> usize {
        self.rows_pushed
    }

    /// Destination rows returned so far.
    pub fn rows_emitted(&self) -> usize {
        self.rows_emitted
    }

    /// True once every destination row has been returned.
    pub fn is_complete(&self) -> bool {
        self.rows_emitted == self.dst_h
    }

    /// Source rows held right now (bounded by the kernel height, whatever the image height).
    pub fn buffered_rows(&self) -> usize {
        self.rows.len() + usize::from(self.carry.is_some())
    }

    /// Most source rows ever held at once.
    pub fn max_buffered_rows(&self) -> usize {
        self.max_buffered
    }

    fn y_ratio(&self) -> f64 {
        self.src_h as f64 / self.dst_h as f64
    }

    fn row_window(&self, j: usize) -> AxisWindow {
        let ry = self.y_ratio();
        match self.options.resampling {
            OverviewResampling::Nearest => nearest_window(j, ry, self.src_h),
            OverviewResampling::Average | OverviewResampling::Mode => box_window(j, ry, self.src_h),
            OverviewResampling::Bilinear => bilinear_window(j, ry, self.src_h),
        }
    }

    /// Feeds the next `rows.height` source rows (all bands, band-sequential, with the mask)
    /// and returns the destination rows they complete: a raster `dst_w` wide and 0 or more
    /// rows high, of the same bands and data type.
    pub fn push(&mut self, rows: &Raster) -> Result<Raster, CoreError> {
        self.push_rows(rows, 0, rows.height())
    }

    /// [`Self::push`] of rows `row0..row0 + n` of `rows` only (no copy of them is made).
    pub fn push_rows(&mut self, rows: &Raster, row0: usize, n: usize) -> Result<Raster, CoreError> {
        if row0.checked_add(n).is_none_or(|end| end > rows.height()) {
            return Err(CoreError::invalid(
                "overview rows",
                format!("rows {row0}..+{n} of a {}-row raster", rows.height()),
            ));
        }
        if rows.width() != self.src_w || rows.bands() != self.bands || rows.dtype() != self.dtype {
            return Err(CoreError::invalid(
                "overview rows",
                format!(
                    "got {} px wide, {} bands of {}; this level is {} px wide, {} bands of {}",
                    rows.width(),
                    rows.bands(),
                    rows.dtype().name(),
                    self.src_w,
                    self.bands,
                    self.dtype.name()
                ),
            ));
        }
        let plane = rows.pixel_count();
        if self.rows_pushed + n > self.src_h {
            return Err(CoreError::invalid(
                "overview rows",
                format!(
                    "{} more rows after {} overflow the {}-row level",
                    n, self.rows_pushed, self.src_h
                ),
            ));
        }
        if self.typed_pairs {
            return self.push_pairs(rows, row0, n);
        }
        let integer = integer_working_type(self.dtype);
        let mut out_values: Vec<f64> = Vec::new();
        let mut out_mask: Vec<u8> = Vec::new();
        for r in row0..row0 + n {
            let mut values = Vec::with_capacity(self.src_w * self.bands);
            with_samples!(rows.samples(), v => {
                for b in 0..self.bands {
                    let at = b * plane + r * self.src_w;
                    let src = &v[at..at + self.src_w];
                    // `extend` over a slice iterator, not `push` per sample: it vectorises.
                    if integer {
                        values.extend(src.iter().map(|s| s.to_f64()));
                    } else {
                        values.extend(src.iter().map(|s| f64::from(s.to_f64() as f32)));
                    }
                }
            });
            let mask = rows.mask()[r * self.src_w..(r + 1) * self.src_w].to_vec();
            self.rows.push_back(Row { values, mask });
            self.rows_pushed += 1;
            self.max_buffered = self.max_buffered.max(self.rows.len());
            self.emit_ready(&mut out_values, &mut out_mask);
        }
        let height = out_mask.len() / self.dst_w;
        let samples = to_samples(self.dtype, &out_values, self.bands, self.dst_w, height);
        Raster::new(self.dst_w, height, self.bands, samples, out_mask)
    }

    /// `push_rows` when `typed_pairs`: each pair of source rows (the carried one first) makes
    /// one destination row, computed in the samples' own type.
    fn push_pairs(&mut self, rows: &Raster, row0: usize, n: usize) -> Result<Raster, CoreError> {
        let (src_w, dst_w, bands) = (self.src_w, self.dst_w, self.bands);
        if n == 0 {
            let samples = Samples::zeros(self.dtype, 0);
            return Raster::new(dst_w, 0, bands, samples, Vec::new());
        }
        let out_h = (usize::from(self.carry.is_some()) + n) / 2;
        let plane = rows.pixel_count();
        let (nodata, replacement) = (self.nodata_f32, self.replacement);
        let carry = self.carry.take();
        fn run<T: PairAverage>(
            v: &[T],
            carry: Option<&[T]>,
            geom: (usize, usize, usize, usize),
            (row0, n, out_h): (usize, usize, usize),
            (nodata, replacement): (Option<f32>, f64),
        ) -> (Vec<T>, Option<Vec<T>>) {
            let (plane, src_w, dst_w, bands) = geom;
            let simd_end = dst_w - dst_w % 4;
            let mut out = vec![T::default(); out_h * dst_w * bands];
            let src_row = |b: usize, r: usize| &v[b * plane + r * src_w..][..src_w];
            // Source rows of this call, in order, starting with the carried one.
            let skip = usize::from(carry.is_some());
            for j in 0..out_h {
                for b in 0..bands {
                    let top = match (j, carry) {
                        (0, Some(c)) => &c[b * src_w..(b + 1) * src_w],
                        _ => src_row(b, row0 + 2 * j - skip),
                    };
                    let bottom = src_row(b, row0 + 2 * j + 1 - skip);
                    let dst = &mut out[b * out_h * dst_w + j * dst_w..][..dst_w];
                    T::average_row(top, bottom, dst, simd_end, nodata, replacement);
                }
            }
            // With `n` > 0 the carried row was used (`out_h` > 0) or there was none; one row
            // of this call may be left for the next.
            let left = (2 * out_h < skip + n).then(|| {
                let r = row0 + n - 1;
                let mut c = Vec::with_capacity(src_w * bands);
                for b in 0..bands {
                    c.extend_from_slice(src_row(b, r));
                }
                c
            });
            (out, left)
        }
        let geom = (plane, src_w, dst_w, bands);
        let rows_arg = (row0, n, out_h);
        let nd = (nodata, replacement);
        macro_rules! typed {
            ($variant:ident) => {{
                let Samples::$variant(v) = rows.samples() else {
                    unreachable!("the data type was checked")
                };
                let c = match &carry {
                    Some(Samples::$variant(c)) => Some(c.as_slice()),
                    _ => None,
                };
                let (out, left) = run(v, c, geom, rows_arg, nd);
                (Samples::$variant(out), left.map(Samples::$variant))
            }};
        }
        let (samples, left) = match self.dtype {
            DataType::U8 => typed!(U8),
            DataType::I8 => typed!(I8),
            DataType::U16 => typed!(U16),
            DataType::I16 => typed!(I16),
            DataType::U32 => typed!(U32),
            DataType::I32 => typed!(I32),
            DataType::F32 => typed!(F32),
            DataType::F64 => typed!(F64),
        };
        self.carry = left;
        self.rows_pushed += n;
        self.rows_emitted += out_h;
        self.first_row = self.rows_pushed - usize::from(self.carry.is_some());
        self.max_buffered = self
            .max_buffered
            .max(if n + usize::from(carry.is_some()) >= 2 {
                2
            } else {
                1
            });
        Raster::new(dst_w, out_h, bands, samples, vec![255; dst_w * out_h])
    }

    /// Computes every destination row whose source rows have all arrived, then drops the
    /// source rows no later destination row needs.
    fn emit_ready(&mut self, out_values: &mut Vec<f64>, out_mask: &mut Vec<u8>) {
        while self.rows_emitted < self.dst_h {
            let win = self.row_window(self.rows_emitted);
            if win.end > self.rows_pushed {
                break;
            }
            self.compute_row(&win, out_values, out_mask);
            self.rows_emitted += 1;
        }
        let keep_from = if self.rows_emitted < self.dst_h {
            self.row_window(self.rows_emitted).start
        } else {
            self.rows_pushed
        };
        while self.first_row < keep_from && !self.rows.is_empty() {
            self.rows.pop_front();
            self.first_row += 1;
        }
    }

    fn row(&self, y: usize) -> &Row {
        &self.rows[y - self.first_row]
    }

    /// Appends one destination row, band-major (`out_values` holds each band's rows in
    /// order, re-sorted into band-sequential planes by `to_samples`).
    fn compute_row(&self, win: &AxisWindow, out_values: &mut Vec<f64>, out_mask: &mut Vec<u8>) {
        let mut row_vals = vec![0.0; self.dst_w * self.bands];
        if self.options.resampling == OverviewResampling::Average
            && !self.options.has_mask
            && self.x_spacing_two
            && win.end == win.start + 2
        {
            // The common case (exact 2x2 blocks, no mask) in one pass per band, without the
            // per-pixel dispatch below; the same arithmetic as `average`'s fast path.
            self.average_pairs(win, &mut row_vals);
            out_values.extend_from_slice(&row_vals);
            out_mask.resize(out_mask.len() + self.dst_w, 255);
            return;
        }
        if self.options.resampling == OverviewResampling::Average
            && self.valid_rows_path
            && self.x_spacing_two
            && self.average_valid_rows(win, &mut row_vals)
        {
            out_values.extend_from_slice(&row_vals);
            out_mask.resize(out_mask.len() + self.dst_w, 255);
            return;
        }
        let mut row_mask = vec![0u8; self.dst_w];
        for (i, col) in self.cols.iter().enumerate() {
            let mut valid = false;
            for b in 0..self.bands {
                let v = match self.options.resampling {
                    OverviewResampling::Nearest => {
                        let r = self.row(win.start);
                        valid = r.mask[col.start] != 0;
                        Some(r.values[b * self.src_w + col.start])
                    }
                    OverviewResampling::Average => self.average(win, col, b),
                    OverviewResampling::Mode => self.mode(win, col, b),
                    OverviewResampling::Bilinear => self.bilinear(win, col, b, i),
                };
                let v = match (self.options.resampling, v) {
                    (OverviewResampling::Nearest, Some(v)) => v,
                    (_, Some(v)) => {
                        valid = true;
                        self.replace_nodata(v)
                    }
                    (_, None) => self.nodata_f32.map_or(0.0, f64::from),
                };
                row_vals[b * self.dst_w + i] = v;
            }
            row_mask[i] = if valid { 255 } else { 0 };
        }
        out_values.extend_from_slice(&row_vals);
        out_mask.extend_from_slice(&row_mask);
    }

    /// GDAL moves a valid result that equals nodata (compared in the working type) off it.
    fn replace_nodata(&self, v: f64) -> f64 {
        match self.nodata_f32 {
            Some(n) if integer_working_type(self.dtype) && v == f64::from(n).trunc() => {
                self.replacement
            }
            Some(n) if !integer_working_type(self.dtype) && v == f64::from(n) => self.replacement,
            _ => v,
        }
    }

    /// `average` over exact 2x2 blocks without a mask, a whole row at once: every output
    /// pixel is valid. Integer working types: `(sum + 2) / 4` rounded down, computed in
    /// integers (the sums of Byte/UInt16 samples are exact); Float32: GDAL's SSE2 order.
    fn average_pairs(&self, win: &AxisWindow, out: &mut [f64]) {
        let (r0, r1) = (self.row(win.start), self.row(win.start + 1));
        let integer = integer_working_type(self.dtype);
        let simd_end = self.dst_w - self.dst_w % 4;
        let n = self.src_w;
        for b in 0..self.bands {
            let (top, bottom) = (
                &r0.values[b * n..(b + 1) * n],
                &r1.values[b * n..(b + 1) * n],
            );
            let dst = &mut out[b * self.dst_w..(b + 1) * self.dst_w];
            for (i, d) in dst.iter_mut().enumerate() {
                let x = 2 * i;
                let (a0, a1, b0, b1) = (top[x], top[x + 1], bottom[x], bottom[x + 1]);
                let v = if integer {
                    f64::from(((a0 + a1 + b0 + b1) as u32 + 2) >> 2)
                } else {
                    let (a0, a1, b0, b1) = (a0 as f32, a1 as f32, b0 as f32, b1 as f32);
                    let sum = if i < simd_end {
                        (a0 + b0) + (a1 + b1)
                    } else {
                        ((a0 + a1) + b0) + b1
                    };
                    f64::from(0.25f32 * sum)
                };
                *d = self.replace_nodata(v);
            }
        }
    }

    /// `average`'s weighted loop for a whole row when every column window is `[2i, 2i + 2)`
    /// and every pixel of the window's rows is valid (e.g. rows of 3 fractional weights, an
    /// odd source height): the same operations in the same order per pixel, without the
    /// per-pixel mask tests and row look-ups. Returns false (and leaves `out` alone) when
    /// some pixel is invalid.
    fn average_valid_rows(&self, win: &AxisWindow, out: &mut [f64]) -> bool {
        if (win.start..win.end).any(|y| self.row(y).mask.contains(&0)) {
            return false;
        }
        let integer = integer_working_type(self.dtype);
        let n = self.src_w;
        for b in 0..self.bands {
            let dst = &mut out[b * self.dst_w..(b + 1) * self.dst_w];
            for (i, (d, col)) in dst.iter_mut().zip(&self.cols).enumerate() {
                let x = 2 * i;
                // Column weights as `average` picks them for x == start and x + 1 == end.
                let (cw0, cw1) = (col.first_weight, col.last_weight);
                let mut total = 0.0;
                let mut total_weight = 0.0;
                for y in win.start..win.end {
                    let wy = if y == win.start {
                        win.first_weight
                    } else if y + 1 == win.end {
                        win.last_weight
                    } else {
                        1.0
                    };
                    let v = &self.row(y).values[b * n + x..b * n + x + 2];
                    let mut line = 0.0;
                    let mut line_weight = 0.0;
                    line += v[0] * cw0;
                    line_weight += cw0;
                    line += v[1] * cw1;
                    line_weight += cw1;
                    total += line * wy;
                    total_weight += line_weight * wy;
                }
                let mean = total / total_weight;
                let v = if integer {
                    (mean + 0.5).trunc()
                } else {
                    f64::from(mean as f32)
                };
                *d = self.replace_nodata(v);
            }
        }
        true
    }

    fn average(&self, win: &AxisWindow, col: &AxisWindow, b: usize) -> Option<f64> {
        let base = b * self.src_w;
        let integer = integer_working_type(self.dtype);
        if !self.options.has_mask && self.x_spacing_two && win.end == win.start + 2 {
            let (r0, r1) = (self.row(win.start), self.row(win.start + 1));
            let x = col.start;
            let (a0, a1, b0, b1) = (
                r0.values[base + x],
                r0.values[base + x + 1],
                r1.values[base + x],
                r1.values[base + x + 1],
            );
            if integer {
                return Some(((a0 + a1 + b0 + b1 + 2.0) / 4.0).floor());
            }
            let (a0, a1, b0, b1) = (a0 as f32, a1 as f32, b0 as f32, b1 as f32);
            // GDAL's SSE2 loop handles groups of 4 output pixels as (a0+b0)+(a1+b1); the
            // remaining (dst_w % 4) pixels of the row go through the scalar ((a0+a1)+b0)+b1.
            let i = x / 2;
            let sum = if i < self.dst_w - self.dst_w % 4 {
                (a0 + b0) + (a1 + b1)
            } else {
                ((a0 + a1) + b0) + b1
            };
            return Some(f64::from(0.25f32 * sum));
        }
        let mut total = 0.0;
        let mut total_weight = 0.0;
        let mut count = 0usize;
        for y in win.start..win.end {
            let wy = if y == win.start {
                win.first_weight
            } else if y + 1 == win.end {
                win.last_weight
            } else {
                1.0
            };
            let r = self.row(y);
            let mut line = 0.0;
            let mut line_weight = 0.0;
            for x in col.start..col.end {
                if r.mask[x] == 0 {
                    continue;
                }
                let wx = if x == col.start {
                    col.first_weight
                } else if x + 1 == col.end {
                    col.last_weight
                } else {
                    1.0
                };
                count += 1;
                line += r.values[base + x] * wx;
                line_weight += wx;
            }
            total += line * wy;
            total_weight += line_weight * wy;
        }
        if count == 0 {
            return None;
        }
        let mean = total / total_weight;
        if integer {
            Some((mean + 0.5).trunc())
        } else {
            Some(f64::from(mean as f32))
        }
    }

    fn mode(&self, win: &AxisWindow, col: &AxisWindow, b: usize) -> Option<f64> {
        let base = b * self.src_w;
        // (value, count) in order of first appearance; the best changes only when a count
        // strictly exceeds the best's count, so ties go to the value that got there first.
        let mut seen: Vec<(f64, usize)> = Vec::with_capacity(9);
        let mut best: Option<usize> = None;
        for y in win.start..win.end {
            let r = self.row(y);
            for x in col.start..col.end {
                if r.mask[x] == 0 {
                    continue;
                }
                let v = r.values[base + x];
                let idx = match seen.iter().position(|(s, _)| *s == v) {
                    Some(k) => {
                        seen[k].1 += 1;
                        k
                    }
                    None => {
                        seen.push((v, 1));
                        seen.len() - 1
                    }
                };
                best = match best {
                    None => Some(idx),
                    Some(m) if seen[idx].1 > seen[m].1 => Some(idx),
                    keep => keep,
                };
            }
        }
        best.map(|k| seen[k].0)
    }

    /// GDAL's two-pass convolution: each source row is filtered horizontally, then the
    /// filtered rows vertically. With a mask, each row is renormalised over its valid taps and
    /// the vertical pass over the rows that had any (GDAL's order, which differs from one 2-D
    /// renormalisation).
    fn bilinear(&self, win: &AxisWindow, col: &AxisWindow, b: usize, i: usize) -> Option<f64> {
        let base = b * self.src_w;
        let masked = self.options.has_mask
            || (win.start..win.end).any(|y| self.row(y).mask[col.start..col.end].contains(&0));
        let mut total = 0.0;
        let mut weight = 0.0;
        let last_group = self.dst_w - self.dst_w % 8;
        let mut pair = [0.0f64; 2];
        for (k, y) in (win.start..win.end).enumerate() {
            let r = self.row(y);
            let px = &r.values[base + col.start..base + col.end];
            if masked {
                let (mut line, mut line_weight) = (0.0, 0.0);
                for (t, x) in (col.start..col.end).enumerate() {
                    if r.mask[x] != 0 {
                        line += px[t] * col.taps[t];
                        line_weight += col.taps[t];
                    }
                }
                if line_weight > 0.0 {
                    total += line / line_weight * win.taps[k];
                    weight += win.taps[k];
                }
            } else {
                // GDAL's 3-rows loop: taps summed in two accumulators by pairs of pairs.
                let (mut v1, mut v2) = (0.0, 0.0);
                let n = px.len();
                let mut t = 0;
                while t + 3 < n {
                    v1 += px[t] * col.taps[t];
                    v1 += px[t + 1] * col.taps[t + 1];
                    v2 += px[t + 2] * col.taps[t + 2];
                    v2 += px[t + 3] * col.taps[t + 3];
                    t += 4;
                }
                while t < n {
                    v1 += px[t] * col.taps[t];
                    t += 1;
                }
                let h = v1 + v2;
                // Vertical pass: SIMD columns accumulate in order; the last (dst_w % 8)
                // columns use two accumulators like the horizontal pass.
                if i < last_group {
                    total += h * win.taps[k];
                } else {
                    let slot = if k % 4 < 2 { 0 } else { 1 };
                    if k >= 4 * (win.taps.len() / 4) {
                        pair[0] += h * win.taps[k];
                    } else {
                        pair[slot] += h * win.taps[k];
                    }
                }
            }
        }
        let v = if masked {
            if weight <= 0.0 {
                return None;
            }
            total / weight
        } else {
            total + pair[0] + pair[1]
        };
        // GDAL clamps to the output type, stores a Float32, then converts (integers rounded).
        let (lo, hi) = self.dtype.range();
        let f = f64::from(v.clamp(lo, hi) as f32);
        if integer_working_type(self.dtype) {
            Some((f + 0.5).trunc())
        } else {
            Some(f)
        }
    }

    /// Checks that the whole source level was fed and every destination row returned.
    pub fn finish(&self) -> Result<(), CoreError> {
        if self.rows_pushed != self.src_h || !self.is_complete() {
            return Err(CoreError::invalid(
                "overview rows",
                format!(
                    "{} of {} source rows fed, {} of {} overview rows made",
                    self.rows_pushed, self.src_h, self.rows_emitted, self.dst_h
                ),
            ));
        }
        Ok(())
    }
}

/// Builds band-sequential samples of `dtype` from `height` rows laid out `[row][band][x]`,
/// converting working values the way GDAL writes them (integers rounded half away from zero,
/// saturated; NaN to 0).
fn to_samples(
    dtype: DataType,
    values: &[f64],
    bands: usize,
    row_w: usize,
    height: usize,
) -> Samples {
    fn build<T: Sample>(values: &[f64], bands: usize, row_w: usize, height: usize) -> Vec<T> {
        let plane = row_w * height;
        let mut out = vec![T::default(); plane * bands];
        if row_w == 0 || bands == 0 {
            return out;
        }
        // Row k of `values` is band k % bands of row k / bands.
        for (k, src) in values.chunks_exact(row_w).take(height * bands).enumerate() {
            let (y, b) = (k / bands, k % bands);
            let at = b * plane + y * row_w;
            for (d, v) in out[at..at + row_w].iter_mut().zip(src) {
                *d = T::from_f64(*v);
            }
        }
        out
    }
    match dtype {
        DataType::U8 => Samples::U8(build(values, bands, row_w, height)),
        DataType::I8 => Samples::I8(build(values, bands, row_w, height)),
        DataType::U16 => Samples::U16(build(values, bands, row_w, height)),
        DataType::I16 => Samples::I16(build(values, bands, row_w, height)),
        DataType::U32 => Samples::U32(build(values, bands, row_w, height)),
        DataType::I32 => Samples::I32(build(values, bands, row_w, height)),
        DataType::F32 => Samples::F32(build(values, bands, row_w, height)),
        DataType::F64 => Samples::F64(build(values, bands, row_w, height)),
    }
}

/// A cascade of reducers: level 0 rows in, rows of every overview level out, in one pass.
#[derive(Debug, Clone)]
pub struct OverviewPyramid {
    reducers: Vec<OverviewReducer>,
}

impl OverviewPyramid {
    /// Reducers for the given level sizes (`levels[0]` is the full resolution, each next one
    /// is made from the previous one), e.g. `[(w, h)]` followed by [`overview_sizes`].
    pub fn new(
        levels: &[(usize, usize)],
        bands: usize,
        dtype: DataType,
        options: OverviewOptions,
    ) -> Result<Self, CoreError> {
        let reducers = levels
            .windows(2)
            .map(|p| OverviewReducer::new(p[0], p[1], bands, dtype, options))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { reducers })
    }

    /// The per-level reducers, largest level first.
    pub fn reducers(&self) -> &[OverviewReducer] {
        &self.reducers
    }

    /// Feeds full-resolution rows; returns the rows each overview level completed
    /// (`out[k]` belongs to overview `k + 1`, possibly 0 rows high).
    pub fn push(&mut self, rows: &Raster) -> Result<Vec<Raster>, CoreError> {
        self.push_rows(rows, 0, rows.height())
    }

    /// [`Self::push`] of rows `row0..row0 + n` of `rows` only (no copy of them is made).
    pub fn push_rows(
        &mut self,
        rows: &Raster,
        row0: usize,
        n: usize,
    ) -> Result<Vec<Raster>, CoreError> {
        let mut out: Vec<Raster> = Vec::with_capacity(self.reducers.len());
        for (k, reducer) in self.reducers.iter_mut().enumerate() {
            let produced = match k {
                0 => reducer.push_rows(rows, row0, n)?,
                _ => match out.get(k - 1) {
                    Some(prev) => reducer.push(prev)?,
                    None => break,
                },
            };
            out.push(produced);
        }
        Ok(out)
    }

    /// Checks that every level was completed.
    pub fn finish(&self) -> Result<(), CoreError> {
        self.reducers.iter().try_for_each(OverviewReducer::finish)
    }
}

/// One level from a whole in-memory level (convenience over [`OverviewReducer`]).
pub fn reduce(
    raster: &Raster,
    dst: (usize, usize),
    options: OverviewOptions,
) -> Result<Raster, CoreError> {
    let mut r = OverviewReducer::new(
        (raster.width(), raster.height()),
        dst,
        raster.bands(),
        raster.dtype(),
        options,
    )?;
    let out = r.push(raster)?;
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raster_u8(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> Raster {
        let mut v = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                v.push(f(x, y));
            }
        }
        Raster::new(w, h, 1, Samples::U8(v), vec![255; w * h]).unwrap()
    }

    fn rows_of(r: &Raster, y0: usize, n: usize) -> Raster {
        r.crop(crate::PixelWindow {
            col_off: 0,
            row_off: y0,
            width: r.width(),
            height: n,
        })
        .unwrap()
    }

    #[test]
    fn parses_names() {
        for m in [
            OverviewResampling::Nearest,
            OverviewResampling::Average,
            OverviewResampling::Mode,
            OverviewResampling::Bilinear,
        ] {
            assert_eq!(m.as_str().parse::<OverviewResampling>(), Ok(m));
        }
        assert!("cubic".parse::<OverviewResampling>().is_err());
        assert_eq!(
            OverviewResampling::default_for(true),
            OverviewResampling::Mode
        );
        assert_eq!(
            OverviewResampling::default_for(false),
            OverviewResampling::Average
        );
    }

    #[test]
    fn cog_sizes_halve_down_until_one_block() {
        assert_eq!(overview_sizes(999, 999, 256), vec![(499, 499), (249, 249)]);
        assert_eq!(overview_sizes(256, 256, 256), vec![]);
        assert_eq!(overview_sizes(600, 5, 256), vec![(300, 2), (150, 1)]);
    }

    #[test]
    fn average_2x_rounds_half_up() {
        let r = raster_u8(4, 2, |x, y| [[1, 2, 10, 10], [2, 2, 11, 10]][y][x]);
        let out = reduce(
            &r,
            (2, 1),
            OverviewOptions::new(OverviewResampling::Average),
        )
        .unwrap();
        // (1+2+2+2+2)/4 = 1.75 -> 2; (10+10+11+10+2)/4 = 10.25 -> 10.
        assert_eq!(*out.samples(), Samples::U8(vec![2, 10]));
    }

    #[test]
    fn average_ignores_invalid_pixels() {
        let r = raster_u8(2, 2, |x, y| [[100, 0], [0, 0]][y][x]);
        let r = r.with_mask(vec![255, 0, 0, 0]).unwrap();
        let mut o = OverviewOptions::new(OverviewResampling::Average);
        o.nodata = Some(0.0);
        o.has_mask = true;
        let out = reduce(&r, (1, 1), o).unwrap();
        assert_eq!(*out.samples(), Samples::U8(vec![100]));
        assert_eq!(out.mask(), vec![255]);
        let r = r.with_mask(vec![0; 4]).unwrap();
        let out = reduce(&r, (1, 1), o).unwrap();
        assert_eq!(out.mask(), vec![0]);
    }

    #[test]
    fn mode_tie_goes_to_first_to_reach_the_count() {
        let r = raster_u8(2, 2, |x, y| [[7, 3], [3, 7]][y][x]);
        let out = reduce(&r, (1, 1), OverviewOptions::new(OverviewResampling::Mode)).unwrap();
        assert_eq!(*out.samples(), Samples::U8(vec![3]));
    }

    #[test]
    fn streaming_matches_one_shot_and_memory_is_bounded() {
        for method in [
            OverviewResampling::Nearest,
            OverviewResampling::Average,
            OverviewResampling::Mode,
            OverviewResampling::Bilinear,
        ] {
            for (w, h) in [(37, 301), (64, 64), (5, 999)] {
                let r = raster_u8(w, h, |x, y| ((x * 7 + y * 13 + x * y) % 251) as u8);
                let dst = next_level_size(w, h);
                let opts = OverviewOptions::new(method);
                let whole = reduce(&r, dst, opts).unwrap();
                let mut red = OverviewReducer::new((w, h), dst, 1, DataType::U8, opts).unwrap();
                let mut vals = Vec::new();
                let mut mask: Vec<u8> = Vec::new();
                let mut y = 0;
                let mut step = 1;
                while y < h {
                    let n = step.min(h - y);
                    let out = red.push(&rows_of(&r, y, n)).unwrap();
                    if let Samples::U8(v) = out.samples() {
                        vals.extend(v);
                    }
                    mask.extend(out.mask());
                    y += n;
                    step = step % 3 + 1;
                    assert!(
                        red.buffered_rows() <= 6,
                        "{method:?}: {}",
                        red.buffered_rows()
                    );
                }
                red.finish().unwrap();
                assert_eq!(&Samples::U8(vals), whole.samples(), "{method:?} {w}x{h}");
                assert_eq!(mask, whole.mask());
                // Row by row the reducer never holds more than the kernel height.
                assert!(red.max_buffered_rows() <= 6, "{method:?}");
            }
        }
    }

    /// A small xorshift generator: the tests need varied data, not a random-number crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Random samples of `dtype`: the full range, a narrow range around `center` (so results
    /// hit the nodata value and need its replacement) and, for floats, NaN and infinities.
    fn random_samples(dtype: DataType, n: usize, rng: &mut Rng, center: f64) -> Samples {
        let (lo, hi) = dtype.range();
        let values: Vec<f64> = (0..n)
            .map(|_| match rng.below(10) {
                0..=3 => center + rng.below(5) as f64 - 2.0,
                4 if dtype.is_float() => {
                    [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0][rng.below(4) as usize]
                }
                5 => [lo, hi][rng.below(2) as usize],
                _ if dtype.is_float() => (rng.next() as f64 / u64::MAX as f64 - 0.5) * 1e6,
                _ => lo + (rng.next() as f64 / u64::MAX as f64) * (hi - lo),
            })
            .collect();
        macro_rules! build {
            ($t:ty, $v:ident) => {
                Samples::$v(values.iter().map(|&v| <$t>::from_f64(v)).collect())
            };
        }
        match dtype {
            DataType::U8 => build!(u8, U8),
            DataType::I8 => build!(i8, I8),
            DataType::U16 => build!(u16, U16),
            DataType::I16 => build!(i16, I16),
            DataType::U32 => build!(u32, U32),
            DataType::I32 => build!(i32, I32),
            DataType::F32 => build!(f32, F32),
            DataType::F64 => build!(f64, F64),
        }
    }

    /// Bit patterns (so -0 differs from 0), every NaN as one: the sign and payload of a NaN
    /// made by arithmetic on NaNs or infinities depend on operand order, which Rust leaves to
    /// the compiler (LLVM may swap the operands of an addition), in either path.
    fn sample_bits(s: &Samples) -> Vec<u64> {
        with_samples!(s, v => v
            .iter()
            .map(|x| {
                let x = x.to_f64();
                if x.is_nan() { f64::NAN.to_bits() } else { x.to_bits() }
            })
            .collect())
    }

    #[test]
    fn row_paths_match_the_per_pixel_path() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let dtypes = [
            DataType::U8,
            DataType::I8,
            DataType::U16,
            DataType::I16,
            DataType::U32,
            DataType::I32,
            DataType::F32,
            DataType::F64,
        ];
        let mut typed_runs = 0;
        for dtype in dtypes {
            let (lo, hi) = dtype.range();
            let center = if lo < 0.0 { 0.0 } else { 3.0_f64.min(hi) };
            for (w, h) in [
                (2, 2),
                (8, 6),
                (14, 10),
                (38, 18),
                (6, 40),
                (22, 3),
                (38, 17),
                (40, 7),
                (7, 9),
                (15, 4),
                (1, 5),
            ] {
                for nodata in [None, Some(center), Some(lo), Some(hi), Some(center + 1.5)] {
                    let bands = 1 + rng.below(3) as usize;
                    let samples = random_samples(dtype, w * h * bands, &mut rng, center);
                    // Half the time with holes: the exact-2× paths ignore them without
                    // `has_mask` (as GDAL's), the weighted one falls back to per pixel; half
                    // the time all valid (the whole-row weighted path's case).
                    let holes = rng.below(2) == 0;
                    let mask: Vec<u8> = (0..w * h)
                        .map(|_| if holes && rng.below(3) == 0 { 0 } else { 255 })
                        .collect();
                    let r = Raster::new(w, h, bands, samples, mask).unwrap();
                    let mut opts = OverviewOptions::new(OverviewResampling::Average);
                    opts.nodata = nodata;
                    opts.has_mask = rng.below(4) == 0;
                    let dst = next_level_size(w, h);
                    let mut typed = OverviewReducer::new((w, h), dst, bands, dtype, opts).unwrap();
                    typed_runs += usize::from(typed.typed_pairs);
                    let mut general = typed.clone().general_only();
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    let (mut ma, mut mb) = (Vec::new(), Vec::new());
                    let mut y = 0;
                    while y < h {
                        let n = (1 + rng.below(4) as usize).min(h - y);
                        let ta = typed.push_rows(&r, y, n).unwrap();
                        let tb = general.push(&rows_of(&r, y, n)).unwrap();
                        assert_eq!(ta.height(), tb.height(), "{dtype:?} {w}x{h}");
                        a.extend(sample_bits(ta.samples()));
                        b.extend(sample_bits(tb.samples()));
                        ma.extend_from_slice(ta.mask());
                        mb.extend_from_slice(tb.mask());
                        y += n;
                    }
                    typed.finish().unwrap();
                    general.finish().unwrap();
                    assert_eq!(a, b, "{dtype:?} {w}x{h}x{bands} nodata {nodata:?}");
                    assert_eq!(ma, mb, "{dtype:?} {w}x{h}x{bands} nodata {nodata:?}");
                }
            }
        }
        assert!(typed_runs >= 80, "the typed path ran {typed_runs} times");
    }

    #[test]
    fn pyramid_cascades_levels() {
        let r = raster_u8(100, 60, |x, y| ((x + y) % 200) as u8);
        let levels = [(100, 60), (50, 30), (25, 15)];
        let opts = OverviewOptions::new(OverviewResampling::Average);
        let mut p = OverviewPyramid::new(&levels, 1, DataType::U8, opts).unwrap();
        let mut got = [0usize; 2];
        for y in 0..60 {
            let out = p.push(&rows_of(&r, y, 1)).unwrap();
            for (k, o) in out.iter().enumerate() {
                got[k] += o.height();
            }
        }
        p.finish().unwrap();
        assert_eq!(got, [30, 15]);
        let l1 = reduce(&r, (50, 30), opts).unwrap();
        let l2 = reduce(&l1, (25, 15), opts).unwrap();
        assert_eq!(l2.height(), 15);
    }
}
