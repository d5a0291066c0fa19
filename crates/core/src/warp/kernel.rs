//! Resampling kernels: which source pixels, with which weights, make one destination pixel.
//!
//! The rules are GDAL's warp kernel (`gdalwarpkernel.cpp`, masked code path):
//! - A destination pixel is valid only if its centre maps inside the source raster and the
//!   source pixel *containing* that point is valid (GDAL's `GWKCheckAndComputeSrcOffsets` and
//!   its mask test), whatever the resampling.
//! - Nearest copies that pixel: `floor(coordinate + 1e-10)`.
//! - Bilinear (2×2) and cubic (Keys, a = -0.5, 4×4) when the kernel scale is ≥ 0.95 on both
//!   axes. Bilinear drops invalid or out-of-raster neighbours and renormalises the remaining
//!   weights; cubic falls back to that bilinear when any of its 16 pixels is invalid or off
//!   the raster. So data edges get no dark halo.
//! - When the destination is coarser than the source (scale < 0.95 on an axis), the filter is
//!   stretched over the source footprint: radius `ceil(r / scale)`, weights `f((i - dx) *
//!   scale)`, invalid pixels skipped and the sum renormalised (GDAL's `GWKResample`).
//! - GDAL drops the validity mask of a chunk whose source pixels are all valid and then runs
//!   its no-mask kernels, which differ in rounding order and, for the stretched filter, in
//!   the window (`1 - r ..= r` instead of `-r ..= r`, `GWKResampleNoMasksT`). The planner
//!   follows that too, so all-valid sources match GDAL bit for bit as well.

use crate::dtype::Sample;

use super::Resampling;

/// GDAL's guard against truncating 2.9999999 to 2 at exact pixel edges.
const EDGE_EPSILON: f64 = 1e-10;

/// A sample type the warper can write: GDAL's rounding and saturation for integers.
pub(crate) trait WarpSample: Sample {
    /// Converts a resampled value: integers clamp to their range, then round half up
    /// (`floor(v + 0.5)`); floats convert as is.
    fn from_resampled(v: f64) -> Self;
}

macro_rules! impl_warp_sample_int {
    ($($t:ty),*) => {$(
        impl WarpSample for $t {
            #[inline]
            fn from_resampled(v: f64) -> Self {
                if v.is_nan() {
                    return 0;
                }
                let lo = <$t>::MIN as f64;
                let hi = <$t>::MAX as f64;
                if v <= lo {
                    return <$t>::MIN;
                }
                if v >= hi {
                    return <$t>::MAX;
                }
                // In range, so the i64 floor is exact and fits the type.
                floor_i64(v + 0.5) as $t
            }
        }
    )*};
}
impl_warp_sample_int!(u8, i8, u16, i16, u32, i32);

impl WarpSample for f32 {
    #[inline]
    fn from_resampled(v: f64) -> Self {
        v as f32
    }
}

impl WarpSample for f64 {
    #[inline]
    fn from_resampled(v: f64) -> Self {
        v
    }
}

/// `floor` through an integer cast (no libm call); `v` must be within the i64 range.
#[inline]
pub(crate) fn floor_i64(v: f64) -> i64 {
    let t = v as i64;
    if (t as f64) > v {
        t - 1
    } else {
        t
    }
}

/// One source pixel (index into a band plane) and its weight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tap {
    pub index: usize,
    pub weight: f64,
}

/// A run of taps from one source row, scaled by the row's weight: Σ (Σ v·w) · weight. Keeping
/// the separable order of GDAL's sums makes results round the same way.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowSpan {
    pub start: usize,
    pub len: usize,
    pub weight: f64,
}

/// The row spans of one destination pixel: `spans[start..start + len]`, value = Σ rows /
/// divisor. `len == 0` marks an invalid destination pixel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PixelPlan {
    pub start: usize,
    pub len: usize,
    pub divisor: f64,
}

impl PixelPlan {
    pub(crate) const INVALID: Self = Self {
        start: 0,
        len: 0,
        divisor: 1.0,
    };
}

/// The parts of the source raster the planner needs (geometry and validity).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceView<'a> {
    pub width: usize,
    pub height: usize,
    /// 255 (non-zero) = valid, row-major, `width * height` long.
    pub mask: &'a [u8],
}

impl SourceView<'_> {
    /// The index of the valid source pixel containing (`sx`, `sy`): GDAL's
    /// `GWKCheckAndComputeSrcOffsets` plus its mask test. `None` off the raster (or NaN) and
    /// on invalid pixels.
    #[inline]
    pub(crate) fn containing(&self, sx: f64, sy: f64) -> Option<usize> {
        let (w, h) = (self.width as f64, self.height as f64);
        if !(sx >= 0.0 && sy >= 0.0) || sx + EDGE_EPSILON > w || sy + EDGE_EPSILON > h {
            return None;
        }
        let (cx, cy) = (
            ((sx + EDGE_EPSILON) as usize).min(self.width - 1),
            ((sy + EDGE_EPSILON) as usize).min(self.height - 1),
        );
        let i = cy * self.width + cx;
        (self.mask.get(i).copied().unwrap_or(0) != 0).then_some(i)
    }

    #[inline]
    fn valid(&self, col: i64, row: i64) -> Option<usize> {
        let c = usize::try_from(col).ok()?;
        let r = usize::try_from(row).ok()?;
        if c >= self.width || r >= self.height {
            return None;
        }
        let i = r * self.width + c;
        (self.mask.get(i).copied().unwrap_or(0) != 0).then_some(i)
    }
}

/// The resampling set-up of one warp: method, kernel scales and radii.
#[derive(Debug, Clone)]
pub(crate) struct Kernel {
    resampling: Resampling,
    x_scale: f64,
    y_scale: f64,
    four_sample: bool,
    /// False when every source pixel is valid: GDAL's no-mask kernels.
    masked: bool,
    x_first: i64,
    x_last: i64,
    y_first: i64,
    y_last: i64,
    /// Scratch: x weights of the current pixel.
    wx: Vec<f64>,
}

impl Kernel {
    /// `x_scale`/`y_scale` are destination pixels per source pixel (< 1 when downsampling);
    /// `masked` is false when the source has no invalid pixel.
    pub(crate) fn new(resampling: Resampling, x_scale: f64, y_scale: f64, masked: bool) -> Self {
        let filter = resampling.radius_px();
        let filter_i = filter as i64;
        let radius = |scale: f64| -> i64 {
            if scale < 1.0 {
                let r = (filter_i as f64 / scale).ceil() as i64;
                r.clamp(filter_i, 1 << 16)
            } else {
                filter_i
            }
        };
        let (xr, yr) = (radius(x_scale), radius(y_scale));
        // GDAL's masked kernel starts at ((radius + 1) % 2) - scaled radius (1 - r for cubic,
        // -r for bilinear); its no-mask kernel always at 1 - r.
        let init_offset = if masked { (filter_i + 1) % 2 } else { 1 };
        Self {
            resampling,
            x_scale,
            y_scale,
            four_sample: x_scale >= 0.95 && y_scale >= 0.95,
            masked,
            x_first: init_offset - xr,
            x_last: xr,
            y_first: init_offset - yr,
            y_last: yr,
            wx: Vec::new(),
        }
    }

    /// True when every plan has a single tap to copy (no arithmetic on values).
    pub(crate) fn copies(&self, src: &SourceView) -> bool {
        self.resampling == Resampling::Nearest || src.width == 1 || src.height == 1
    }

    /// Appends the taps and row spans of the destination pixel whose centre maps to source
    /// position (`sx`, `sy`) and returns its plan.
    pub(crate) fn plan(
        &mut self,
        src: &SourceView,
        sx: f64,
        sy: f64,
        taps: &mut Vec<Tap>,
        spans: &mut Vec<RowSpan>,
    ) -> PixelPlan {
        self.plan_in(src, src, sx, sy, taps, spans)
    }

    /// [`Kernel::plan`] where the pixel containing the centre must be valid in `centre` (the
    /// dataset mask) while the taps come from `src` (one band's validity).
    pub(crate) fn plan_in(
        &mut self,
        centre: &SourceView,
        src: &SourceView,
        sx: f64,
        sy: f64,
        taps: &mut Vec<Tap>,
        spans: &mut Vec<RowSpan>,
    ) -> PixelPlan {
        let Some(centre) = centre.containing(sx, sy) else {
            return PixelPlan::INVALID;
        };
        let (tap_start, span_start) = (taps.len(), spans.len());
        if self.copies(src) {
            taps.push(Tap {
                index: centre,
                weight: 1.0,
            });
            spans.push(RowSpan {
                start: tap_start,
                len: 1,
                weight: 1.0,
            });
            return PixelPlan {
                start: span_start,
                len: 1,
                divisor: 1.0,
            };
        }
        let mut out = Plan { taps, spans };
        let divisor = match (self.resampling, self.four_sample, self.masked) {
            (Resampling::Bilinear, true, true) => bilinear4(src, sx, sy, &mut out),
            (Resampling::Bilinear, true, false) => bilinear4_unmasked(src, sx, sy, &mut out),
            (Resampling::Cubic, true, _) => cubic4(src, sx, sy, &mut out),
            (_, _, true) => self.general(src, sx, sy, &mut out),
            (_, _, false) => self.general_unmasked(src, sx, sy, &mut out),
        };
        match divisor {
            Some(divisor) if spans.len() > span_start => PixelPlan {
                start: span_start,
                len: spans.len() - span_start,
                divisor,
            },
            _ => {
                taps.truncate(tap_start);
                spans.truncate(span_start);
                PixelPlan::INVALID
            }
        }
    }

    /// GDAL's `GWKResample`: a (possibly stretched) separable filter over valid pixels.
    fn general(&mut self, src: &SourceView, sx: f64, sy: f64, out: &mut Plan) -> Option<f64> {
        let ix = floor_i64(sx - 0.5);
        let iy = floor_i64(sy - 0.5);
        let (dx, dy) = (sx - 0.5 - ix as f64, sy - 0.5 - iy as f64);
        let (w, h) = (src.width as i64, src.height as i64);
        let (mut i0, mut i1) = (self.x_first, self.x_last);
        i0 = i0.max(-ix);
        i1 = i1.min(w - ix - 1);
        let (mut j0, mut j1) = (self.y_first, self.y_last);
        j0 = j0.max(-iy);
        j1 = j1.min(h - iy - 1);
        if i1 < i0 || j1 < j0 {
            return None;
        }
        let filter = filter_fn(self.resampling);
        self.wx.clear();
        for i in i0..=i1 {
            let d = i as f64 - dx;
            self.wx.push(if self.x_scale < 1.0 {
                filter(d * self.x_scale)
            } else {
                filter(d)
            });
        }
        let mut total = 0.0;
        for j in j0..=j1 {
            let d = j as f64 - dy;
            let wy = if self.y_scale < 1.0 {
                filter(d * self.y_scale)
            } else {
                filter(d)
            };
            if wy == 0.0 {
                continue;
            }
            let mut row_total = 0.0;
            let row_start = out.taps.len();
            for (k, i) in (i0..=i1).enumerate() {
                let wxi = self.wx.get(k).copied().unwrap_or(0.0);
                if let Some(index) = src.valid(ix + i, iy + j) {
                    out.taps.push(Tap { index, weight: wxi });
                    row_total += wxi;
                }
            }
            out.close_row(row_start, wy);
            total += row_total * wy;
        }
        if total < 1e-6 {
            return None;
        }
        Some(if (total - 1.0).abs() > 1e-5 {
            total
        } else {
            1.0
        })
    }

    /// GDAL's `GWKResampleNoMasksT`: the stretched filter over `1 - r ..= r`, normalised by
    /// the product of the x and y weight sums.
    fn general_unmasked(
        &mut self,
        src: &SourceView,
        sx: f64,
        sy: f64,
        out: &mut Plan,
    ) -> Option<f64> {
        let ix = floor_i64(sx - 0.5);
        let iy = floor_i64(sy - 0.5);
        let (w, h) = (src.width as i64, src.height as i64);
        if ix >= w || iy >= h || self.x_last > w || self.y_last > h {
            return bilinear4_unmasked(src, sx, sy, out);
        }
        let (dx, dy) = (sx - 0.5 - ix as f64, sy - 0.5 - iy as f64);
        let (xs, ys) = (self.x_scale.min(1.0), self.y_scale.min(1.0));
        let i0 = self.x_first.max(-ix);
        let i1 = self.x_last.min(w - 1 - ix);
        let j0 = self.y_first.max(-iy);
        let j1 = self.y_last.min(h - 1 - iy);
        if i1 < i0 || j1 < j0 {
            return None;
        }
        let filter = filter_fn(self.resampling);
        self.wx.clear();
        let mut sum_x = 0.0;
        for i in i0..=i1 {
            let wxi = filter((i as f64 - dx) * xs);
            self.wx.push(wxi);
            sum_x += wxi;
        }
        let mut sum_y = 0.0;
        for j in j0..=j1 {
            let wy = filter((j as f64 - dy) * ys);
            sum_y += wy;
            let row_start = out.taps.len();
            for (k, i) in (i0..=i1).enumerate() {
                // In range by the clamps above.
                let index = ((iy + j) * w + ix + i) as usize;
                out.taps.push(Tap {
                    index,
                    weight: self.wx.get(k).copied().unwrap_or(0.0),
                });
            }
            out.close_row(row_start, wy);
        }
        let total = sum_x * sum_y;
        (total != 0.0 && total.is_finite()).then_some(total)
    }
}

/// Output buffers of the planner.
pub(crate) struct Plan<'a> {
    taps: &'a mut Vec<Tap>,
    spans: &'a mut Vec<RowSpan>,
}

impl Plan<'_> {
    /// Records the taps pushed since `row_start` as one row of weight `weight`.
    fn close_row(&mut self, row_start: usize, weight: f64) {
        let len = self.taps.len() - row_start;
        if len > 0 {
            self.spans.push(RowSpan {
                start: row_start,
                len,
                weight,
            });
        }
    }
}

/// GDAL's `GWKBilinearResample4Sample`: 2×2 weights, invalid/outside pixels dropped and the
/// rest renormalised.
fn bilinear4(src: &SourceView, sx: f64, sy: f64, out: &mut Plan) -> Option<f64> {
    let mut ix = floor_i64(sx - 0.5);
    let mut iy = floor_i64(sy - 0.5);
    let mut rx = 1.5 - (sx - ix as f64);
    let mut ry = 1.5 - (sy - iy as f64);
    if ix == -1 {
        ix = 0;
        rx = 1.0;
    }
    if iy == -1 {
        iy = 0;
        ry = 1.0;
    }
    let mut divisor = 0.0;
    let corners = [
        (ix, iy, rx * ry),
        (ix + 1, iy, (1.0 - rx) * ry),
        (ix, iy + 1, rx * (1.0 - ry)),
        (ix + 1, iy + 1, (1.0 - rx) * (1.0 - ry)),
    ];
    // GDAL sums the four products directly (not row by row): one span of weight 1.
    let row_start = out.taps.len();
    for (c, r, weight) in corners {
        if let Some(index) = src.valid(c, r) {
            divisor += weight;
            out.taps.push(Tap { index, weight });
        }
    }
    out.close_row(row_start, 1.0);
    if divisor < 1e-5 {
        return None;
    }
    Some(if divisor == 1.0 { 1.0 } else { divisor })
}

/// GDAL's `GWKBilinearResampleNoMasks4SampleT`: inside the raster the 2×2 sum is taken row by
/// row (`(a·rx + b·(1-rx))·ry + ...`); at the edges it is the renormalised form.
fn bilinear4_unmasked(src: &SourceView, sx: f64, sy: f64, out: &mut Plan) -> Option<f64> {
    let ix = floor_i64(sx - 0.5);
    let iy = floor_i64(sy - 0.5);
    let (w, h) = (src.width as i64, src.height as i64);
    if ix < 0 || ix + 1 >= w || iy < 0 || iy + 1 >= h {
        return bilinear4(src, sx, sy, out);
    }
    let rx = 1.5 - (sx - ix as f64);
    let ry = 1.5 - (sy - iy as f64);
    // In range by the test above.
    let base = (iy * w + ix) as usize;
    for (offset, weight) in [(0, ry), (src.width, 1.0 - ry)] {
        let row_start = out.taps.len();
        out.taps.push(Tap {
            index: base + offset,
            weight: rx,
        });
        out.taps.push(Tap {
            index: base + offset + 1,
            weight: 1.0 - rx,
        });
        out.close_row(row_start, weight);
    }
    Some(1.0)
}

/// GDAL's `GWKCubicResample4Sample`: Keys cubic over 4×4 when all 16 pixels are valid and on
/// the raster, else the renormalised bilinear.
fn cubic4(src: &SourceView, sx: f64, sy: f64, out: &mut Plan) -> Option<f64> {
    let ix = floor_i64(sx - 0.5);
    let iy = floor_i64(sy - 0.5);
    let (w, h) = (src.width as i64, src.height as i64);
    if ix < 1 || ix + 2 >= w || iy < 1 || iy + 2 >= h {
        return bilinear4(src, sx, sy, out);
    }
    let (dx, dy) = (sx - 0.5 - ix as f64, sy - 0.5 - iy as f64);
    let cx = cubic_weights(dx);
    let cy = cubic_weights(dy);
    let (tap_start, span_start) = (out.taps.len(), out.spans.len());
    for (j, wy) in (-1..=2).zip(cy) {
        let row_start = out.taps.len();
        for (i, wx) in (-1..=2).zip(cx) {
            match src.valid(ix + i, iy + j) {
                Some(index) => out.taps.push(Tap { index, weight: wx }),
                None => {
                    out.taps.truncate(tap_start);
                    out.spans.truncate(span_start);
                    return bilinear4(src, sx, sy, out);
                }
            }
        }
        out.close_row(row_start, wy);
    }
    Some(1.0)
}

/// Keys cubic convolution weights (a = -0.5) for the four pixels around a point at fractional
/// offset `x` ∈ [0, 1) from the second one (GDAL's `GWKCubicComputeWeights`).
#[inline]
fn cubic_weights(x: f64) -> [f64; 4] {
    let half_x = 0.5 * x;
    let three_x = 3.0 * x;
    let half_x2 = half_x * x;
    [
        half_x * (-1.0 + x * (2.0 - x)),
        1.0 + half_x2 * (-5.0 + three_x),
        half_x * (1.0 + x * (4.0 - three_x)),
        half_x2 * (-1.0 + x),
    ]
}

/// The 1-D filter of a resampling method (GDAL's `GWKBilinear` / `GWKCubic`).
fn filter_fn(resampling: Resampling) -> fn(f64) -> f64 {
    match resampling {
        Resampling::Nearest | Resampling::Bilinear => bilinear_filter,
        Resampling::Cubic => cubic_filter,
    }
}

#[inline]
fn bilinear_filter(x: f64) -> f64 {
    let a = x.abs();
    if a <= 1.0 {
        1.0 - a
    } else {
        0.0
    }
}

#[inline]
fn cubic_filter(x: f64) -> f64 {
    let a = x.abs();
    let x2 = x * x;
    if a <= 1.0 {
        x2 * (1.5 * a - 2.5) + 1.0
    } else if a <= 2.0 {
        x2 * (-0.5 * a + 2.5) - 4.0 * a + 2.0
    } else {
        0.0
    }
}

/// Writes one destination row of one band from its plans.
pub(crate) fn apply_row<T: WarpSample>(
    plans: &[PixelPlan],
    spans: &[RowSpan],
    taps: &[Tap],
    src: &[T],
    out: &mut [T],
    copy: bool,
) {
    for (plan, o) in plans.iter().zip(out.iter_mut()) {
        if plan.len == 0 {
            continue;
        }
        let Some(spans) = spans.get(plan.start..plan.start + plan.len) else {
            continue;
        };
        if copy {
            if let Some(v) = spans
                .first()
                .and_then(|s| taps.get(s.start))
                .and_then(|t| src.get(t.index))
            {
                *o = *v;
            }
            continue;
        }
        let mut acc = 0.0;
        for span in spans {
            let Some(row) = taps.get(span.start..span.start + span.len) else {
                continue;
            };
            let mut local = 0.0;
            for t in row {
                local += src.get(t.index).map_or(0.0, |v| v.to_f64()) * t.weight;
            }
            acc += local * span.weight;
        }
        let v = if plan.divisor == 1.0 {
            acc
        } else {
            acc / plan.divisor
        };
        *o = T::from_resampled(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_conversion_rounds_and_saturates() {
        assert_eq!(u8::from_resampled(254.5), 255);
        assert_eq!(u8::from_resampled(300.0), 255);
        assert_eq!(u8::from_resampled(-3.0), 0);
        assert_eq!(u8::from_resampled(f64::NAN), 0);
        assert_eq!(i16::from_resampled(-2.5), -2);
        assert_eq!(i16::from_resampled(-2.6), -3);
        assert_eq!(i16::from_resampled(40_000.0), i16::MAX);
        assert_eq!(i32::from_resampled(-1e300), i32::MIN);
        assert_eq!(u32::from_resampled(4e9), 4_000_000_000);
        assert!((f32::from_resampled(1.25) - 1.25).abs() < f32::EPSILON);
        assert_eq!(floor_i64(-0.5), -1);
        assert_eq!(floor_i64(2.0), 2);
        assert_eq!(floor_i64(-3.0), -3);
    }

    #[test]
    fn cubic_weights_sum_to_one_and_interpolate() {
        for &x in &[0.0, 0.25, 0.5, 0.9] {
            let w = cubic_weights(x);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            // Matches the continuous kernel.
            assert!((w[1] - cubic_filter(x)).abs() < 1e-12);
            assert!((w[0] - cubic_filter(1.0 + x)).abs() < 1e-12);
        }
        assert_eq!(cubic_weights(0.0), [0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn stretched_kernel_has_wider_support() {
        let mask = vec![255u8; 100];
        let src = SourceView {
            width: 10,
            height: 10,
            mask: &mask,
        };
        let (mut taps, mut spans) = (Vec::new(), Vec::new());
        let mut k = Kernel::new(Resampling::Bilinear, 0.5, 0.5, true);
        let p = k.plan(&src, 5.0, 5.0, &mut taps, &mut spans);
        // Radius ceil(1 / 0.5) = 2: rows and columns 2..=6 around the centre (4.5, 4.5);
        // row 2 has a zero weight and is skipped, leaving four rows of five taps.
        assert_eq!(p.len, 4);
        assert_eq!(taps.len(), 20);
        let sum: f64 = spans
            .iter()
            .map(|s| {
                taps[s.start..s.start + s.len]
                    .iter()
                    .map(|t| t.weight)
                    .sum::<f64>()
                    * s.weight
            })
            .sum();
        assert!((sum - p.divisor).abs() < 1e-12, "{sum} {}", p.divisor);
        // Unstretched: the 2 x 2 neighbourhood as a single span.
        let mut k = Kernel::new(Resampling::Bilinear, 1.0, 1.0, true);
        taps.clear();
        spans.clear();
        assert_eq!(k.plan(&src, 5.0, 5.0, &mut taps, &mut spans).len, 1);
        assert_eq!(taps.len(), 4);
    }
}
