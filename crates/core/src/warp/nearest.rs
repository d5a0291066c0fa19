//! The nearest-neighbour warp, kept apart from the kernel planner because it is the hot path
//! of tile serving (rio-tiler's default resampling) and needs none of the planner's work.
//!
//! The picks are the kernel planner's, bit for bit: each destination row is mapped with
//! [`PixelMapper::map_row`] (GDAL's approximate transformer), the source pixel is the one
//! *containing* the mapped centre (`floor(coordinate + 1e-10)`, GDAL's
//! `GWKCheckAndComputeSrcOffsets`), and the destination pixel is valid only when that pixel
//! is inside the raster and valid in its mask. Per row the source indices are computed once,
//! then every band is a plain indexed copy in the sample type; row buffers are reused, so no
//! pixel or row allocates.

use crate::crs::Transformer;
use crate::dtype::Samples;
use crate::geo::GeoTransform;
use crate::raster::Raster;
use crate::CoreError;

use super::mapper::PixelMapper;
use super::GridSpec;

/// GDAL's guard against truncating 2.9999999 to 2 at exact pixel edges (the planner's
/// `EDGE_EPSILON`; the identity test in this module fails if the two differ).
const EDGE_EPSILON: f64 = 1e-10;

/// A source index in a window's plane: 32 bits halve the memory the picks of a tile move
/// (windows are checked to have fewer pixels).
type Pick = u32;

/// Source index of a destination pixel that gets no data (never a valid index: source
/// windows with this many pixels are refused).
const NO_DATA: Pick = Pick::MAX;

/// Warps `src` into `dst` with nearest-neighbour picks; same contract and output as the
/// generic warp with [`super::Resampling::Nearest`].
pub(super) fn warp_nearest(
    src: &Raster,
    src_transform: &GeoTransform,
    dst_to_src: &Transformer,
    dst: &GridSpec,
) -> Result<Raster, CoreError> {
    let picks = NearestPicks::new(src.width(), src.height(), src_transform, dst_to_src, dst)?;
    picks.apply(src)
}

/// The source pixel of every destination pixel of a nearest-neighbour warp, before any mask:
/// they depend only on the source grid (size and geotransform), the transformer and the
/// destination grid, so one set serves every raster on that grid (the three single-band files
/// of an RGB tile, the bands of a request).
#[derive(Debug, Clone, PartialEq)]
pub struct NearestPicks {
    src_width: usize,
    src_height: usize,
    dst: GridSpec,
    /// Source index (row-major in the source plane) per destination pixel, [`NO_DATA`] off
    /// the raster or where the point does not transform. Empty when there is nothing to warp.
    indices: Vec<Pick>,
    /// How each destination row is best copied (one per row of `indices`).
    rows: Vec<RowKind>,
}

/// How a destination row's picks are laid out, decided once when the picks are made so that
/// every raster they are applied to copies overzoomed rows cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    /// The same picks as the row above: the output row is a copy of the row above.
    Repeat,
    /// Few runs of equal picks (overzoomed): one lookup per run, then a fill.
    Runs,
    /// Picks that change often: one lookup per pixel.
    Pixels,
}

impl RowKind {
    fn of(row: &[Pick], above: Option<&[Pick]>) -> Self {
        if above == Some(row) {
            return Self::Repeat;
        }
        let changes = row.windows(2).filter(|p| p[0] != p[1]).count();
        // A run costs a lookup and a fill; a changing pick costs a branch per pixel too, so
        // runs pay once they average several pixels.
        if changes * 4 < row.len() {
            Self::Runs
        } else {
            Self::Pixels
        }
    }
}

impl NearestPicks {
    /// The picks of a source grid of `src_width` x `src_height` pixels on `src_transform`
    /// warped into `dst` through `dst_to_src`.
    pub fn new(
        src_width: usize,
        src_height: usize,
        src_transform: &GeoTransform,
        dst_to_src: &Transformer,
        dst: &GridSpec,
    ) -> Result<Self, CoreError> {
        let mut picks = Self {
            src_width,
            src_height,
            dst: *dst,
            indices: Vec::new(),
            rows: Vec::new(),
        };
        let dst_plane = super::checked_plane(dst, 1)?;
        if dst_plane == 0 || src_width == 0 || src_height == 0 {
            return Ok(picks);
        }
        if src_width
            .checked_mul(src_height)
            .is_none_or(|n| n >= NO_DATA as usize)
        {
            return Err(CoreError::invalid(
                "raster",
                format!("a {src_width}x{src_height} source window is too large to warp"),
            ));
        }
        let mapper = PixelMapper::new(
            &dst.transform,
            src_transform,
            src_width,
            src_height,
            dst_to_src,
        )
        .ok_or_else(|| CoreError::invalid("geotransform", "the source geotransform is singular"))?;
        let mut rows = RowPicker {
            mapper: &mapper,
            src_width,
            src_height,
            xs: vec![0.0; dst.width],
            ys: vec![0.0; dst.width],
            columns: None,
            linear: Vec::new(),
        };
        picks.indices = vec![NO_DATA; dst_plane];
        for (row, out) in picks.indices.chunks_exact_mut(dst.width).enumerate() {
            rows.pick(row, out);
        }
        let mut above: Option<&[Pick]> = None;
        for row in picks.indices.chunks_exact(dst.width) {
            picks.rows.push(RowKind::of(row, above));
            above = Some(row);
        }
        Ok(picks)
    }

    /// Memory held, in bytes (for cache weighing).
    pub fn heap_bytes(&self) -> usize {
        self.indices.capacity() * std::mem::size_of::<Pick>()
            + self.rows.capacity() * std::mem::size_of::<RowKind>()
    }

    /// `src` warped with these picks; `src` must be on the grid the picks were made for.
    pub fn apply(&self, src: &Raster) -> Result<Raster, CoreError> {
        if (src.width(), src.height()) != (self.src_width, self.src_height) {
            return Err(CoreError::invalid(
                "raster",
                format!(
                    "{}x{} pixels, the picks were made for {}x{}",
                    src.width(),
                    src.height(),
                    self.src_width,
                    self.src_height
                ),
            ));
        }
        let dst = &self.dst;
        let dst_plane = super::checked_plane(dst, src.bands())?;
        let mut out = super::WarpOut {
            samples: Samples::zeros(src.dtype(), dst_plane * src.bands()),
            mask: vec![0; dst_plane],
            bands: src.bands(),
            grid: *dst,
        };
        if self.indices.is_empty() {
            return out.finish();
        }
        let layout = Layout {
            bands: src.bands(),
            src_plane: self.src_width * self.src_height,
            dst_plane,
            dst_width: dst.width,
        };
        let src_mask = src.mask();
        // Every source pixel valid: the mask pass needs no lookups (a vectorised scan).
        let all_valid = !src_mask.contains(&0);
        let super::WarpOut { samples, mask, .. } = &mut out;
        macro_rules! run {
            ($($v:ident),*) => {
                match (src.samples(), samples) {
                    $((Samples::$v(s), Samples::$v(d)) => {
                        copy_rows(&self.indices, &self.rows, src_mask, all_valid, layout, s, d, mask)
                    })*
                    _ => Err(CoreError::invalid("raster", "output type differs from input")),
                }
            };
        }
        run!(U8, I8, U16, I16, U32, I32, F32, F64)?;
        out.finish()
    }
}

/// Band and plane sizes of a warp.
#[derive(Debug, Clone, Copy)]
struct Layout {
    bands: usize,
    src_plane: usize,
    dst_plane: usize,
    dst_width: usize,
}

/// Per-row source picks, with buffers reused from row to row.
struct RowPicker<'a, 'm> {
    mapper: &'a PixelMapper<'m>,
    src_width: usize,
    src_height: usize,
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// Source column per destination column ([`NO_DATA`] off the raster) when the mapper's
    /// source x does not depend on the row; made by the first such row.
    columns: Option<Vec<Pick>>,
    /// The row's interpolated ranges (see [`PixelMapper::map_row_linear`]).
    linear: Vec<(usize, usize)>,
}

/// Interpolated ranges shorter than this are picked pixel by pixel.
const MIN_RUN_RANGE: usize = 8;

impl RowPicker<'_, '_> {
    /// Maps destination row `row` into `indices` (source index or [`NO_DATA`] per pixel).
    fn pick(&mut self, row: usize, indices: &mut [Pick]) {
        let sw = self.src_width;
        let (w, h) = (sw as f64, self.src_height as f64);
        let (max_col, max_row) = ((sw - 1) as f64, (self.src_height - 1) as f64);
        if let Some((y0, cols)) = self.mapper.separable_row(row, indices.len()) {
            // Source x depends on the column only: the same decisions as the loop below,
            // made once per column for the whole grid.
            let columns = self.columns.get_or_insert_with(|| {
                cols.iter()
                    .map(|&x| {
                        let ex = x + EDGE_EPSILON;
                        let col = ex.max(0.0).min(max_col) as i64 as Pick;
                        if (x >= 0.0) & (ex <= w) {
                            col
                        } else {
                            NO_DATA
                        }
                    })
                    .collect()
            });
            let ey = y0 + EDGE_EPSILON;
            if (y0 >= 0.0) & (ey <= h) {
                let base = ((ey.max(0.0).min(max_row) as i64 as usize) * sw) as Pick;
                for (&c, index) in columns.iter().zip(indices.iter_mut()) {
                    *index = if c == NO_DATA { NO_DATA } else { base + c };
                }
            } else {
                indices.fill(NO_DATA);
            }
            return;
        }
        self.mapper
            .map_row_linear(row, &mut self.xs, &mut self.ys, &mut self.linear);
        let y0 = self.ys.first().copied().unwrap_or(f64::NAN);
        if self.ys.iter().all(|&y| y.to_bits() == y0.to_bits()) {
            // North-up rows (affine and lon/lat ↔ Web Mercator paths) share one source row:
            // decide it once, then only x varies.
            let ey = y0 + EDGE_EPSILON;
            let row_inside = (y0 >= 0.0) & (ey <= h);
            let base = ((ey.max(0.0).min(max_row) as i64 as usize) * sw) as Pick;
            for (&x, index) in self.xs.iter().zip(indices.iter_mut()) {
                let ex = x + EDGE_EPSILON;
                let inside = row_inside & (x >= 0.0) & (ex <= w);
                let col = ex.max(0.0).min(max_col) as i64 as Pick;
                *index = if inside { base + col } else { NO_DATA };
            }
        } else {
            // Interpolated ranges in runs, the exactly mapped pixels between them one by one.
            let mut done = 0;
            for &(start, end) in &self.linear {
                if end - start < MIN_RUN_RANGE {
                    continue;
                }
                self.pick_general(done, start, indices);
                self.pick_runs(start, end, indices);
                done = end;
            }
            self.pick_general(done, indices.len(), indices);
        }
    }

    /// What decides the pick of pixel `i`, as numbers each monotonic along an interpolated
    /// range: the four in-raster tests and the truncated coordinates (with the edge epsilon;
    /// the pick clamps them into the raster, which is a function of the truncation).
    #[inline]
    fn pick_key(&self, i: usize) -> (u8, i64, i64) {
        let (x, y) = (self.xs[i], self.ys[i]);
        let (ex, ey) = (x + EDGE_EPSILON, y + EDGE_EPSILON);
        let flags = u8::from(x >= 0.0)
            | u8::from(ex <= self.src_width as f64) << 1
            | u8::from(y >= 0.0) << 2
            | u8::from(ey <= self.src_height as f64) << 3;
        (flags, ex as i64, ey as i64)
    }

    /// Pixels `start..end` of an interpolated range. Every part of [`Self::pick_key`] is
    /// monotonic there (an increasing `d` times a fixed slope plus a fixed start rounds
    /// monotonically), so pixels with the same key form one run and get the same pick; a run's
    /// end is found by galloping and bisection, then the run is filled. Overzoomed tiles have
    /// a handful of runs per row. Picks are those of [`Self::pick_general`], bit for bit.
    fn pick_runs(&self, start: usize, end: usize, indices: &mut [Pick]) {
        let mut i = start;
        while i < end {
            let key = self.pick_key(i);
            let same = |j: usize| self.pick_key(j) == key;
            // Gallop: `lo` has the key, `hi` (if < end) does not.
            let (mut lo, mut step) = (i, 1);
            let mut hi = end;
            while lo + step < end {
                if same(lo + step) {
                    lo += step;
                    step *= 2;
                } else {
                    hi = lo + step;
                    break;
                }
            }
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if same(mid) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            self.pick_general(i, i + 1, indices);
            let pick = indices[i];
            indices[i + 1..hi].fill(pick);
            i = hi;
        }
    }

    /// Pixels `from..to` of a row whose source y varies, branch-free: the pixel containing
    /// each point, or NO_DATA off the raster.
    fn pick_general(&self, from: usize, to: usize, indices: &mut [Pick]) {
        let sw = self.src_width;
        let (w, h) = (sw as f64, self.src_height as f64);
        let (max_col, max_row) = ((sw - 1) as f64, (self.src_height - 1) as f64);
        let (Some(xs), Some(ys), Some(indices)) = (
            self.xs.get(from..to),
            self.ys.get(from..to),
            indices.get_mut(from..to),
        ) else {
            return;
        };
        for ((&x, &y), index) in xs.iter().zip(ys).zip(indices.iter_mut()) {
            let (ex, ey) = (x + EDGE_EPSILON, y + EDGE_EPSILON);
            // NaN fails the first two comparisons.
            let inside = (x >= 0.0) & (y >= 0.0) & (ex <= w) & (ey <= h);
            // Clamped into the raster first (NaN becomes 0), so the truncations are floors
            // of in-range values and the index cannot overflow; `min` with the last column is
            // the planner's clamp of a point exactly on the far edge. Through i64 because a
            // signed conversion is one instruction without AVX-512.
            let (col, r) = (
                ex.max(0.0).min(max_col) as i64 as usize,
                ey.max(0.0).min(max_row) as i64 as usize,
            );
            *index = if inside {
                (r * sw + col) as Pick
            } else {
                NO_DATA
            };
        }
    }
}

/// Copies every destination row for every band from the picks, where the picked source
/// pixel is valid in `src_mask`. Rows that repeat the row above are copied from the output
/// row above; rows of few runs look each run's value up once.
#[allow(clippy::too_many_arguments)]
fn copy_rows<T: Copy>(
    picks: &[Pick],
    kinds: &[RowKind],
    src_mask: &[u8],
    all_valid: bool,
    layout: Layout,
    src: &[T],
    dst: &mut [T],
    mask: &mut [u8],
) -> Result<(), CoreError> {
    let w = layout.dst_width;
    let bands = layout.bands;
    if src.len() < layout.src_plane * bands
        || dst.len() < layout.dst_plane * bands
        || picks.len() < layout.dst_plane
        || mask.len() < layout.dst_plane
        || kinds.len() * w != layout.dst_plane
    {
        return Err(CoreError::invalid("raster", "picks do not fit the planes"));
    }
    // NO_DATA is past the end of both the mask and the band, so a pick is valid exactly when
    // the mask has a non-zero byte there.
    let valid = |p: Pick| {
        if all_valid {
            p != NO_DATA
        } else {
            src_mask.get(p as usize).is_some_and(|&v| v != 0)
        }
    };
    // Multi-band rows: the valid picks of the row, shared by the bands.
    let mut indices = if bands > 1 {
        vec![NO_DATA; w]
    } else {
        Vec::new()
    };
    for (row, &kind) in kinds.iter().enumerate() {
        let d0 = row * w;
        if kind == RowKind::Repeat && row > 0 {
            mask.copy_within(d0 - w..d0, d0);
            for band in 0..bands {
                let b0 = band * layout.dst_plane + d0;
                dst.copy_within(b0 - w..b0, b0);
            }
            continue;
        }
        let row_picks = &picks[d0..d0 + w];
        let mask_row = &mut mask[d0..d0 + w];
        if kind == RowKind::Runs {
            let mut i = 0;
            while i < w {
                let p = row_picks[i];
                let end = i + row_picks[i..].iter().take_while(|&&q| q == p).count();
                let p = p as usize;
                if valid(p as Pick) && p < layout.src_plane {
                    mask_row[i..end].fill(255);
                    for band in 0..bands {
                        let b0 = band * layout.dst_plane + d0;
                        let v = src[band * layout.src_plane + p];
                        dst[b0 + i..b0 + end].fill(v);
                    }
                }
                i = end;
            }
            continue;
        }
        if bands == 1 {
            // One band (every file of Terracotta's /rgb): mask and value in one pass.
            let src_band = &src[..layout.src_plane];
            let dst_row = &mut dst[d0..d0 + w];
            for ((&p, m), o) in row_picks.iter().zip(mask_row.iter_mut()).zip(dst_row) {
                if let (true, Some(v)) = (valid(p), src_band.get(p as usize)) {
                    *o = *v;
                    *m = 255;
                }
            }
            continue;
        }
        for ((&p, index), m) in row_picks.iter().zip(indices.iter_mut()).zip(mask_row) {
            let ok = valid(p);
            *index = if ok { p } else { NO_DATA };
            *m = if ok { 255 } else { 0 };
        }
        for band in 0..bands {
            let src_band = &src[band * layout.src_plane..(band + 1) * layout.src_plane];
            let b0 = band * layout.dst_plane + d0;
            for (o, &i) in dst[b0..b0 + w].iter_mut().zip(&indices) {
                if let Some(v) = src_band.get(i as usize) {
                    *o = *v;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Identity with the kernel planner's nearest (the path validated against GDAL on the
    //! rio-tiler reference suite).
    use super::super::kernel::{apply_row, Kernel, PixelPlan, RowSpan, SourceView, Tap};
    use super::super::Resampling;
    use super::*;
    use crate::crs::Crs;
    use crate::dtype::Sample;
    use crate::tms::{TileCoord, TileMatrixSet};

    /// The generic planner path: one kernel plan per destination pixel, then the weighted
    /// sum (a single tap of weight 1 for nearest).
    fn planner_nearest(
        src: &Raster,
        src_transform: &GeoTransform,
        t: &Transformer,
        dst: &GridSpec,
    ) -> Raster {
        let dst_plane = dst.width * dst.height;
        let mut out_samples = Samples::zeros(src.dtype(), dst_plane * src.bands());
        let mut out_mask = vec![0u8; dst_plane];
        let mapper =
            PixelMapper::new(&dst.transform, src_transform, src.width(), src.height(), t).unwrap();
        let view = SourceView {
            width: src.width(),
            height: src.height(),
            mask: src.mask(),
        };
        let mut kernel = Kernel::new(Resampling::Nearest, 1.0, 1.0, false);
        let (mut xs, mut ys) = (vec![0.0; dst.width], vec![0.0; dst.width]);
        let plane = src.width() * src.height();
        fn band_rows<T: super::super::kernel::WarpSample>(
            plans: &[PixelPlan],
            spans: &[RowSpan],
            taps: &[Tap],
            src: &[T],
            dst: &mut [T],
        ) {
            apply_row(plans, spans, taps, src, dst, false);
        }
        for row in 0..dst.height {
            mapper.map_row(row, &mut xs, &mut ys);
            let (mut plans, mut spans, mut taps) = (Vec::new(), Vec::new(), Vec::new());
            for (x, y) in xs.iter().zip(&ys) {
                plans.push(kernel.plan(&view, *x, *y, &mut taps, &mut spans));
            }
            for (c, p) in plans.iter().enumerate() {
                out_mask[row * dst.width + c] = if p.len > 0 { 255 } else { 0 };
            }
            for b in 0..src.bands() {
                let s = b * plane..(b + 1) * plane;
                let d = b * dst_plane + row * dst.width..b * dst_plane + (row + 1) * dst.width;
                macro_rules! go {
                    ($($v:ident),*) => {
                        match (src.samples(), &mut out_samples) {
                            $((Samples::$v(sv), Samples::$v(dv)) => {
                                band_rows(&plans, &spans, &taps, &sv[s], &mut dv[d])
                            })*
                            _ => unreachable!(),
                        }
                    };
                }
                go!(U8, I8, U16, I16, U32, I32, F32, F64);
            }
        }
        Raster::new(dst.width, dst.height, src.bands(), out_samples, out_mask)
            .unwrap()
            .with_transform(dst.transform)
    }

    /// Deterministic pseudo-random samples (xorshift) so every pick is visible in the output.
    fn noise<T: Sample>(n: usize, seed: u64, f: impl Fn(u64) -> T) -> Vec<T> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                f(s)
            })
            .collect()
    }

    /// A `w` x `h` source with `bands` bands of `dtype`-like noise and a mask with a hole, a
    /// masked border column and scattered invalid pixels.
    fn source(w: usize, h: usize, bands: usize, kind: u8) -> Raster {
        let n = w * h * bands;
        let samples = match kind {
            0 => Samples::U8(noise(n, 7, |v| v as u8)),
            1 => Samples::I16(noise(n, 11, |v| v as i16)),
            2 => Samples::F32(noise(n, 13, |v| {
                if v % 97 == 0 {
                    f32::NAN
                } else {
                    (v % 100_000) as f32 * 0.25 - 1000.0
                }
            })),
            _ => Samples::F64(noise(n, 17, |v| (v % 1_000_000) as f64 * 1e-3)),
        };
        let mut mask = vec![255u8; w * h];
        for r in 0..h {
            for c in 0..w {
                let hole = (r * 3 / h == 1) && (c * 3 / w == 1) && (r + c) % 5 != 0;
                if hole || c == 0 || (r * 31 + c * 17) % 23 == 0 {
                    mask[r * w + c] = 0;
                }
            }
        }
        Raster::new(w, h, bands, samples, mask).unwrap()
    }

    fn assert_same(a: &Raster, b: &Raster, what: &str) {
        assert_eq!(a.mask(), b.mask(), "{what}: masks differ");
        assert_eq!(a.samples().len(), b.samples().len(), "{what}");
        let mut differing = 0;
        for i in 0..a.samples().len() {
            let (x, y) = (a.samples().get_f64(i), b.samples().get_f64(i));
            if x.to_bits() != y.to_bits() && !(x.is_nan() && y.is_nan()) {
                differing += 1;
            }
        }
        assert_eq!(differing, 0, "{what}: samples differ");
    }

    /// Runs both paths and checks that the case is not trivial (some valid, some invalid).
    fn check(src: &Raster, src_gt: &GeoTransform, src_crs: &Crs, dst: &GridSpec, what: &str) {
        let t = Transformer::new(&Crs::web_mercator(), src_crs).unwrap();
        let fast = warp_nearest(src, src_gt, &t, dst).unwrap();
        let slow = planner_nearest(src, src_gt, &t, dst);
        assert_same(&fast, &slow, what);
        let valid = fast.mask().iter().filter(|&&m| m != 0).count();
        assert!(valid >= 1000, "{what}: only {valid} valid");
        assert!(valid < fast.mask().len(), "{what}: no invalid pixel");
    }

    fn tile(z: u8, x: u32, y: u32, size: u32) -> GridSpec {
        let tms = TileMatrixSet::web_mercator_quad();
        GridSpec::for_tile(&tms, TileCoord::new(z, x, y).unwrap(), size)
    }

    /// The zoom-`z` tile containing the point at fraction (`fx`, `fy`) of the source raster.
    fn tile_at(src: &Raster, gt: &GeoTransform, crs: &Crs, z: u8, f: (f64, f64)) -> TileCoord {
        let (x, y) = gt.apply(f.0 * src.width() as f64, f.1 * src.height() as f64);
        let (lon, lat) = Transformer::new(crs, &Crs::wgs84())
            .unwrap()
            .transform_point(x, y)
            .unwrap();
        TileMatrixSet::web_mercator_quad()
            .tile_for_lonlat(lon, lat, z)
            .unwrap()
    }

    /// Checks the tiles at the centre and near a corner (so part of the tile is off the
    /// source) at each zoom.
    fn check_zooms(src: &Raster, gt: &GeoTransform, crs: &Crs, zooms: &[(u8, u32)], what: &str) {
        for &(z, size) in zooms {
            for f in [(0.5, 0.5), (0.02, 0.97)] {
                let t = tile_at(src, gt, crs, z, f);
                let grid = tile(z, t.x(), t.y(), size);
                check(
                    src,
                    gt,
                    crs,
                    &grid,
                    &format!("{what} {z}/{}/{} @{f:?}", t.x(), t.y()),
                );
            }
        }
    }

    #[test]
    fn utm_to_web_mercator_matches_planner() {
        let crs = Crs::from_epsg(32618).unwrap();
        // 30 m UTM 18N grid near New York: z9 and z10 tiles downsample it (~230 and ~115 m
        // pixels at 41°N), z13 upsamples (~14 m); the 7 m grid likewise at z12 and z15.
        let src = source(1500, 1200, 3, 0);
        let gt = GeoTransform::north_up(560_000.0, 4_530_000.0, 30.0, 30.0);
        check_zooms(&src, &gt, &crs, &[(9, 256), (10, 256), (13, 256)], "utm u8");
        let src16 = source(700, 500, 1, 1);
        let gt16 = GeoTransform::north_up(580_000.0, 4_520_000.0, 7.0, 7.0);
        check_zooms(&src16, &gt16, &crs, &[(12, 512), (15, 256)], "utm i16");
    }

    /// Far overzoomed UTM tiles (a handful of source pixels per tile, so picks come in long
    /// runs) straddling the raster's edges and a corner: the run-filled picks are the
    /// planner's, pixel for pixel.
    #[test]
    fn overzoomed_utm_runs_match_planner() {
        let crs = Crs::from_epsg(32621).unwrap();
        // Every pixel valid, so a tile part inside the raster has valid pixels however few
        // source columns it covers.
        let (w, h) = (2006, 1515);
        let samples = source(w, h, 1, 1).samples().clone();
        let src = Raster::new(w, h, 1, samples, vec![255; w * h]).unwrap();
        let gt = GeoTransform::north_up(300_000.0, 7_300_000.0, 30.0, 30.0);
        for z in [14, 16, 17, 18, 19] {
            for f in [(0.0, 0.5), (1.0, 0.3), (0.6, 1.0), (1.0, 0.0)] {
                let t = tile_at(&src, &gt, &crs, z, f);
                for size in [256, 512] {
                    let grid = tile(z, t.x(), t.y(), size);
                    let what = format!("z{z} {f:?} {size}");
                    let tr = Transformer::new(&Crs::web_mercator(), &crs).unwrap();
                    let fast = warp_nearest(&src, &gt, &tr, &grid).unwrap();
                    let slow = planner_nearest(&src, &gt, &tr, &grid);
                    assert_same(&fast, &slow, &what);
                    let valid = fast.mask().iter().filter(|&&m| m != 0).count();
                    assert!(
                        valid > 0 && valid < fast.mask().len(),
                        "{what}: {valid} valid"
                    );
                }
            }
        }
    }

    /// Overzoomed and native tiles of a three-band source with holes in its mask: rows that
    /// repeat the row above, rows of runs and rows of single pixels are all copied as the
    /// planner picks them, masked pixels included.
    #[test]
    fn repeated_and_run_rows_match_planner_with_a_mask() {
        let crs = Crs::from_epsg(32621).unwrap();
        let (w, h) = (900, 700);
        let src = source(w, h, 3, 0);
        let gt = GeoTransform::north_up(300_000.0, 7_300_000.0, 30.0, 30.0);
        let tr = Transformer::new(&Crs::web_mercator(), &crs).unwrap();
        let mut seen = [0usize; 3];
        for z in [11, 12, 13, 15, 17, 18] {
            for f in [(0.5, 0.5), (0.02, 0.97), (0.3, 0.01), (0.99, 0.6)] {
                let t = tile_at(&src, &gt, &crs, z, f);
                let grid = tile(z, t.x(), t.y(), 256);
                let what = format!("masked z{z} {f:?}");
                let picks = NearestPicks::new(w, h, &gt, &tr, &grid).unwrap();
                for kind in &picks.rows {
                    seen[*kind as usize] += 1;
                }
                let fast = picks.apply(&src).unwrap();
                let slow = planner_nearest(&src, &gt, &tr, &grid);
                assert_same(&fast, &slow, &what);
            }
        }
        // Every kind of row was exercised.
        assert!(seen.iter().all(|&n| n > 100), "rows by kind: {seen:?}");
    }

    #[test]
    fn lonlat_to_web_mercator_matches_planner() {
        // A global 0.25° grid (wraps in longitude) and a regional one.
        let wgs = Crs::wgs84();
        let global = source(1440, 720, 1, 2);
        let gt = GeoTransform::north_up(-180.0, 90.0, 0.25, 0.25);
        check(&global, &gt, &wgs, &tile(2, 0, 1, 256), "global z2");
        check(
            &global,
            &gt,
            &wgs,
            &tile(5, 16, 11, 256),
            "global z5 (upsampling)",
        );
        check(&global, &gt, &wgs, &tile(0, 0, 0, 512), "global z0");
        let regional = source(400, 300, 2, 3);
        let gt = GeoTransform::north_up(10.0, 50.0, 0.01, 0.01);
        check_zooms(
            &regional,
            &gt,
            &wgs,
            &[(6, 256), (8, 256), (11, 256)],
            "regional",
        );
    }

    #[test]
    fn web_mercator_to_web_mercator_matches_planner() {
        let merc = Crs::web_mercator();
        let src = source(600, 600, 1, 1);
        // Pixel size not a power-of-two fraction of the tile grid: uneven picks.
        let gt = GeoTransform::north_up(-1_000_000.0, 7_000_000.0, 173.3, 173.3);
        check_zooms(&src, &gt, &merc, &[(6, 256), (8, 512), (11, 256)], "3857");
        // Pixels aligned with the tile grid, 2 and 4 per tile pixel: destination centres map
        // to source pixel edges, where GDAL's 1e-10 nudge decides the pick.
        let z = 9u8;
        let tms = TileMatrixSet::web_mercator_quad();
        let b = tms.tile_bounds(TileCoord::new(z, 250, 170).unwrap());
        for k in [2.0, 4.0] {
            let res = tms.resolution(z) / k;
            let aligned =
                GeoTransform::north_up(b.west - 100.0 * res, b.north + 50.0 * res, res, res);
            check(
                &src,
                &aligned,
                &merc,
                &tile(z, 250, 170, 256),
                "3857 aligned",
            );
        }
    }

    #[test]
    fn no_overlap_and_bad_input() {
        let merc = Crs::web_mercator();
        let t = Transformer::new(&merc, &merc).unwrap();
        let src = source(10, 10, 1, 0);
        let gt = GeoTransform::north_up(0.0, 0.0, 1.0, 1.0);
        let far = tile(10, 0, 0, 256);
        let out = warp_nearest(&src, &gt, &t, &far).unwrap();
        assert!(out.mask().iter().all(|&m| m == 0));
    }
}
