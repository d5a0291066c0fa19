//! Warping source rasters into a destination grid (nearest, bilinear, cubic), mask-aware.
//!
//! This module owns the reprojection of raster blocks: the grid a tile is rendered into
//! ([`GridSpec`]), which source pixels a destination grid needs ([`source_window`]), which
//! overview to read ([`choose_overview`]) and the resampling itself ([`warp`]). The numerics
//! follow GDAL's warper as rio-tiler drives it (approximate transformer with a 0.125 px error
//! threshold, the pixel-containing-the-centre validity rule, renormalised bilinear at mask
//! edges, Keys cubic, kernels stretched over the source footprint when downsampling), so tiles
//! can be compared pixel for pixel with rio-tiler/TiTiler references.
//!
//! Engine use per tile: build a [`Reprojection`] once per (source CRS, tile CRS) pair, call
//! [`choose_overview`], [`source_window_with`] (with [`Resampling::margin_px`]) on that level,
//! read and decode the window, then [`warp_with`] using [`PixelWindow::transform`].

mod kernel;
mod mapper;
mod overview;

use std::str::FromStr;

use crate::crs::{Crs, Transformer};
use crate::dtype::Samples;
use crate::geo::{GeoBounds, GeoTransform};
use crate::raster::Raster;
use crate::tms::{TileCoord, TileMatrixSet};
use crate::CoreError;

use kernel::{apply_row, Kernel, PixelPlan, RowSpan, SourceView, Tap, WarpSample};
use mapper::PixelMapper;

/// Largest destination grid [`warp`] accepts, in pixels (a 16k × 16k image).
pub const MAX_WARP_PIXELS: usize = 1 << 28;

/// Resampling method of a warp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Resampling {
    /// The source pixel containing the destination pixel's centre.
    #[default]
    Nearest,
    /// Bilinear over 2×2 pixels (stretched when downsampling).
    Bilinear,
    /// Keys cubic convolution (a = -0.5) over 4×4 pixels (stretched when downsampling).
    Cubic,
}

impl Resampling {
    /// The name used in URLs and configs (`nearest`, `bilinear`, `cubic`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nearest => "nearest",
            Self::Bilinear => "bilinear",
            Self::Cubic => "cubic",
        }
    }

    /// Kernel radius in source pixels at scale 1 (GDAL's filter radius: 0, 1, 2).
    pub fn radius_px(self) -> usize {
        match self {
            Self::Nearest => 0,
            Self::Bilinear => 1,
            Self::Cubic => 2,
        }
    }

    /// Source pixels to add around a [`source_window`] so that the kernel never runs off the
    /// window where the raster continues: the radius, stretched by `downsampling` (source
    /// pixels per destination pixel, ≥ 1), plus one for rounding.
    pub fn margin_px(self, downsampling: f64) -> usize {
        let r = self.radius_px();
        if r == 0 {
            return 1;
        }
        let stretch = if downsampling.is_finite() && downsampling > 1.0 {
            downsampling.min(1024.0)
        } else {
            1.0
        };
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let m = (r as f64 * stretch).ceil() as usize;
        m + 1
    }
}

impl FromStr for Resampling {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "nearest" | "near" => Ok(Self::Nearest),
            "bilinear" => Ok(Self::Bilinear),
            "cubic" => Ok(Self::Cubic),
            other => Err(CoreError::invalid(
                "resampling",
                format!("'{other}' is not one of nearest, bilinear, cubic"),
            )),
        }
    }
}

impl std::fmt::Display for Resampling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A destination pixel grid: `width` x `height` pixels placed by `transform`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridSpec {
    pub transform: GeoTransform,
    pub width: usize,
    pub height: usize,
}

impl GridSpec {
    /// The grid of a tile of a tile matrix set rendered `tile_size_px` wide.
    pub fn for_tile(tms: &TileMatrixSet, tile: TileCoord, tile_size_px: u32) -> Self {
        Self {
            transform: tms.tile_transform(tile, tile_size_px),
            width: tile_size_px as usize,
            height: tile_size_px as usize,
        }
    }

    /// Bounds of the grid in its CRS.
    pub fn bounds(&self) -> GeoBounds {
        self.transform.bounds(self.width, self.height)
    }
}

/// A rectangle of source pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelWindow {
    pub col_off: usize,
    pub row_off: usize,
    pub width: usize,
    pub height: usize,
}

impl PixelWindow {
    /// The geotransform of the window's pixel (0, 0), given the full grid's transform.
    pub fn transform(&self, full: &GeoTransform) -> GeoTransform {
        #[allow(clippy::cast_precision_loss)]
        let (x, y) = full.apply(self.col_off as f64, self.row_off as f64);
        let g = full.0;
        GeoTransform([x, g[1], g[2], y, g[4], g[5]])
    }
}

/// The transformers between a source CRS and a destination (tile) CRS, built once and shared
/// by every tile of that pair.
#[derive(Debug, Clone)]
pub struct Reprojection {
    dst_to_src: Transformer,
    src_to_dst: Transformer,
}

impl Reprojection {
    pub fn new(src_crs: &Crs, dst_crs: &Crs) -> Result<Self, CoreError> {
        Ok(Self {
            dst_to_src: Transformer::new(dst_crs, src_crs)?,
            src_to_dst: Transformer::new(src_crs, dst_crs)?,
        })
    }

    /// Destination CRS → source CRS (what the warper needs).
    pub fn dst_to_src(&self) -> &Transformer {
        &self.dst_to_src
    }

    /// Source CRS → destination CRS.
    pub fn src_to_dst(&self) -> &Transformer {
        &self.src_to_dst
    }
}

/// The window of the source grid (`src_width` x `src_height` pixels placed by
/// `src_transform`) that a destination grid needs, grown by `margin_px` on each side and
/// clamped to the raster; `None` when they do not intersect.
pub fn source_window(
    dst: &GridSpec,
    dst_crs: &Crs,
    src_transform: &GeoTransform,
    src_crs: &Crs,
    src_width: usize,
    src_height: usize,
    margin_px: usize,
) -> Result<Option<PixelWindow>, CoreError> {
    let reprojection = Reprojection::new(src_crs, dst_crs)?;
    source_window_with(
        &reprojection,
        dst,
        src_transform,
        src_width,
        src_height,
        margin_px,
    )
}

/// [`source_window`] with prebuilt transformers.
///
/// The destination grid's edges (every 8 px, at least 21 points per edge) and a 16 × 16
/// interior grid are mapped to source pixels; source points (edges and a 21 × 21 grid) that
/// land inside the destination grid are added too, which catches a pole or a projection's
/// singular point inside the destination.
pub fn source_window_with(
    reprojection: &Reprojection,
    dst: &GridSpec,
    src_transform: &GeoTransform,
    src_width: usize,
    src_height: usize,
    margin_px: usize,
) -> Result<Option<PixelWindow>, CoreError> {
    if dst.width == 0 || dst.height == 0 || src_width == 0 || src_height == 0 {
        return Ok(None);
    }
    let mapper = PixelMapper::new(
        &dst.transform,
        src_transform,
        src_width,
        src_height,
        &reprojection.dst_to_src,
    )
    .ok_or_else(|| CoreError::invalid("geotransform", "the source geotransform is singular"))?;
    #[allow(clippy::cast_precision_loss)]
    let (dw, dh) = (dst.width as f64, dst.height as f64);
    #[allow(clippy::cast_precision_loss)]
    let (sw, sh) = (src_width as f64, src_height as f64);

    let mut ext = Extent::EMPTY;
    // Destination → source.
    let per_edge = (dst.width.max(dst.height) / 8).clamp(20, 4096);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    edge_and_grid_samples(dw, dh, per_edge, 16, &mut xs, &mut ys);
    mapper.map_points(&mut xs, &mut ys);
    for (x, y) in xs.iter().zip(&ys) {
        ext.add(*x, *y);
    }
    // Source → destination: source points that fall inside the destination grid.
    if let Some(reverse) = PixelMapper::new(
        src_transform,
        &dst.transform,
        dst.width,
        dst.height,
        &reprojection.src_to_dst,
    ) {
        let (mut sxs, mut sys) = (Vec::new(), Vec::new());
        edge_and_grid_samples(sw, sh, 20, 21, &mut sxs, &mut sys);
        let (mut dxs, mut dys) = (sxs.clone(), sys.clone());
        reverse.map_points(&mut dxs, &mut dys);
        for i in 0..sxs.len() {
            let (px, py) = (dxs[i], dys[i]);
            if (0.0..=dw).contains(&px) && (0.0..=dh).contains(&py) {
                ext.add(sxs[i], sys[i]);
            }
        }
    }
    if ext.is_empty() || ext.max_x <= 0.0 || ext.max_y <= 0.0 || ext.min_x >= sw || ext.min_y >= sh
    {
        return Ok(None);
    }
    #[allow(clippy::cast_precision_loss)]
    let m = margin_px as f64;
    let c0 = (ext.min_x.floor() - m).clamp(0.0, sw);
    let c1 = (ext.max_x.ceil() + m).clamp(0.0, sw);
    let r0 = (ext.min_y.floor() - m).clamp(0.0, sh);
    let r1 = (ext.max_y.ceil() + m).clamp(0.0, sh);
    if c1 <= c0 || r1 <= r0 {
        return Ok(None);
    }
    // Values are whole numbers clamped to the raster size.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(Some(PixelWindow {
        col_off: c0 as usize,
        row_off: r0 as usize,
        width: (c1 - c0) as usize,
        height: (r1 - r0) as usize,
    }))
}

/// Which source level to read for a destination grid: an index into `levels`, where
/// `levels[0]` is the full-resolution (width, height) placed by `src_transform` and the
/// others are its overviews.
///
/// The rule is GDAL's, as rio-tiler's `Reader.tile()` triggers it:
/// 1. rio-tiler reads from a dataset of `R` = tile extent ÷ r pixels per axis, rounded, where
///    r is the source's native pixel size in the tile CRS (GDAL's suggested warp output: the
///    reprojected diagonal ÷ the diagonal in pixels; global EPSG:4326 sources cropped to
///    ±85.06° first) unless the tile's own pixel is finer (over-zoom: `R` = tile size). For a
///    source already in the tile CRS, `R` is the tile extent in source pixels.
/// 2. If `R` is not larger than the output on either axis, the full resolution is read.
/// 3. Else the desired factor is `min(R / out)` over the axes, and each overview's factor is
///    `min(R / R_ovr)` where `R_ovr = floor(R / (full width ÷ overview width) + 0.5)`
///    (`full ÷ overview` directly for same-CRS reads). The overview read is the one with the
///    largest factor still below `desired × threshold`, where the threshold is 1.2 when the
///    read resampling is nearest and 1.01 otherwise (GDAL's `GDAL_OVERVIEW_OVERSAMPLING_
///    THRESHOLD` defaults). `resampling` is the RasterIO resampling (rio-tiler's
///    `resampling_method`, default nearest), not the warp's `reproject_method`.
///
/// Checked against rio-tiler 7.x / GDAL 3.10 on a synthetic COG whose levels carry distinct
/// values (desired factors 3.06–4.03 around the 4× overview).
pub fn choose_overview(
    dst: &GridSpec,
    dst_crs: &Crs,
    src_transform: &GeoTransform,
    src_crs: &Crs,
    levels: &[(usize, usize)],
    resampling: Resampling,
) -> Result<usize, CoreError> {
    overview::choose(dst, dst_crs, src_transform, src_crs, levels, resampling)
}

/// Warps `src` (placed by `src_transform`, the transform of its pixel (0, 0), in `src_crs`)
/// into the destination grid. The output keeps the source data type and band count; its mask
/// is 255 where the destination pixel got data. See the module docs for the numerics.
pub fn warp(
    src: &Raster,
    src_transform: &GeoTransform,
    src_crs: &Crs,
    dst: &GridSpec,
    dst_crs: &Crs,
    resampling: Resampling,
) -> Result<Raster, CoreError> {
    let transformer = Transformer::new(dst_crs, src_crs)?;
    warp_with_transformer(src, src_transform, &transformer, dst, resampling)
}

/// [`warp`] with prebuilt transformers.
pub fn warp_with(
    reprojection: &Reprojection,
    src: &Raster,
    src_transform: &GeoTransform,
    dst: &GridSpec,
    resampling: Resampling,
) -> Result<Raster, CoreError> {
    warp_with_transformer(
        src,
        src_transform,
        &reprojection.dst_to_src,
        dst,
        resampling,
    )
}

fn warp_with_transformer(
    src: &Raster,
    src_transform: &GeoTransform,
    dst_to_src: &Transformer,
    dst: &GridSpec,
    resampling: Resampling,
) -> Result<Raster, CoreError> {
    let plane = src
        .width
        .checked_mul(src.height)
        .ok_or_else(|| CoreError::invalid("raster", "source size overflows"))?;
    if src.samples.len() != plane.saturating_mul(src.bands) || src.mask.len() != plane {
        return Err(CoreError::invalid(
            "raster",
            format!(
                "{}x{}x{} raster holds {} samples and a {}-byte mask",
                src.width,
                src.height,
                src.bands,
                src.samples.len(),
                src.mask.len()
            ),
        ));
    }
    let dst_plane = dst
        .width
        .checked_mul(dst.height)
        .filter(|&n| n.saturating_mul(src.bands.max(1)) <= MAX_WARP_PIXELS)
        .ok_or_else(|| CoreError::TooLarge {
            what: "warp output",
            reason: format!("{}x{} pixels x {} bands", dst.width, dst.height, src.bands),
        })?;
    let mut out = Raster::empty(dst.width, dst.height, src.bands, src.dtype());
    if dst_plane == 0 || plane == 0 || src.bands == 0 {
        return Ok(out);
    }
    let mapper = PixelMapper::new(
        &dst.transform,
        src_transform,
        src.width,
        src.height,
        dst_to_src,
    )
    .ok_or_else(|| CoreError::invalid("geotransform", "the source geotransform is singular"))?;
    let view = SourceView {
        width: src.width,
        height: src.height,
        mask: &src.mask,
    };
    let (x_scale, y_scale) = if resampling == Resampling::Nearest {
        (1.0, 1.0)
    } else {
        kernel_scales(&mapper, dst, src.width, src.height, resampling)
    };
    // `contains` is a vectorised scan; GDAL drops an all-valid mask the same way.
    let masked = resampling != Resampling::Nearest && src.mask.contains(&0);
    let mut kernel = Kernel::new(resampling, x_scale, y_scale, masked);
    let copy = kernel.copies(&view);
    let mut job = RowJob {
        mapper: &mapper,
        view,
        kernel: &mut kernel,
        copy,
        bands: src.bands,
        plane,
        dst_width: dst.width,
        xs: vec![0.0; dst.width],
        ys: vec![0.0; dst.width],
        plans: Vec::with_capacity(dst.width),
        nearest: Vec::with_capacity(dst.width),
        spans: Vec::with_capacity(dst.width * 2),
        taps: Vec::with_capacity(dst.width * 4),
    };
    let Raster { samples, mask, .. } = &mut out;
    macro_rules! run {
        ($($v:ident),*) => {
            match (&src.samples, samples) {
                $((Samples::$v(s), Samples::$v(d)) => job.run(s, d, mask),)*
                _ => Err(CoreError::invalid("raster", "output type differs from input")),
            }
        };
    }
    run!(U8, I8, U16, I16, U32, I32, F32, F64)?;
    Ok(out)
}

/// Per-row warp state: reusable buffers so that no pixel allocates.
struct RowJob<'a, 'm> {
    mapper: &'a PixelMapper<'m>,
    view: SourceView<'a>,
    kernel: &'a mut Kernel,
    copy: bool,
    bands: usize,
    plane: usize,
    dst_width: usize,
    xs: Vec<f64>,
    ys: Vec<f64>,
    plans: Vec<PixelPlan>,
    /// Source index per pixel of the row for copies (`usize::MAX` = invalid).
    nearest: Vec<usize>,
    spans: Vec<RowSpan>,
    taps: Vec<Tap>,
}

impl RowJob<'_, '_> {
    fn run<T: WarpSample>(
        &mut self,
        src: &[T],
        dst: &mut [T],
        mask: &mut [u8],
    ) -> Result<(), CoreError> {
        let w = self.dst_width;
        let dst_plane = mask.len();
        for (row, mask_row) in mask.chunks_exact_mut(w).enumerate() {
            self.mapper.map_row(row, &mut self.xs, &mut self.ys);
            if self.copy {
                self.nearest.clear();
                for (x, y) in self.xs.iter().zip(&self.ys) {
                    self.nearest
                        .push(self.view.containing(*x, *y).unwrap_or(usize::MAX));
                }
                for (m, &i) in mask_row.iter_mut().zip(&self.nearest) {
                    *m = if i == usize::MAX { 0 } else { 255 };
                }
            } else {
                self.plans.clear();
                self.spans.clear();
                self.taps.clear();
                for (x, y) in self.xs.iter().zip(&self.ys) {
                    let plan =
                        self.kernel
                            .plan(&self.view, *x, *y, &mut self.taps, &mut self.spans);
                    self.plans.push(plan);
                }
                for (m, plan) in mask_row.iter_mut().zip(&self.plans) {
                    *m = if plan.len > 0 { 255 } else { 0 };
                }
            }
            for band in 0..self.bands {
                let src_band = src
                    .get(band * self.plane..(band + 1) * self.plane)
                    .ok_or_else(|| CoreError::invalid("raster", "band out of range"))?;
                let start = band * dst_plane + row * w;
                let dst_row = dst
                    .get_mut(start..start + w)
                    .ok_or_else(|| CoreError::invalid("raster", "row out of range"))?;
                if self.copy {
                    copy_row(&self.nearest, src_band, dst_row);
                } else {
                    apply_row(
                        &self.plans,
                        &self.spans,
                        &self.taps,
                        src_band,
                        dst_row,
                        false,
                    );
                }
            }
        }
        Ok(())
    }
}

/// Copies the source pixels picked for one row (nearest).
fn copy_row<T: Copy>(indices: &[usize], src: &[T], out: &mut [T]) {
    for (&i, o) in indices.iter().zip(out.iter_mut()) {
        if let Some(v) = src.get(i) {
            *o = *v;
        }
    }
}

/// Kernel scales (destination pixels per source pixel, per axis) as GDAL 3.10 computes them
/// for a warp chunk: destination size ÷ the size of the source window it reads, i.e. the
/// extent the destination edges map to, padded by the (stretched) kernel radius and clamped to
/// the raster; ratios within 0.05 of an integer are snapped to it. (Measured against GDAL: the
/// padded window, not the bare footprint, sets the scale.)
fn kernel_scales(
    mapper: &PixelMapper,
    dst: &GridSpec,
    src_w: usize,
    src_h: usize,
    resampling: Resampling,
) -> (f64, f64) {
    #[allow(clippy::cast_precision_loss)]
    let (dw, dh) = (dst.width as f64, dst.height as f64);
    let (mut xs, mut ys) = (Vec::with_capacity(84), Vec::with_capacity(84));
    edge_and_grid_samples(dw, dh, 20, 0, &mut xs, &mut ys);
    mapper.map_points(&mut xs, &mut ys);
    if xs.iter().chain(&ys).any(|v| v.is_nan()) {
        // GDAL retries on a grid when edge points fail.
        xs.clear();
        ys.clear();
        edge_and_grid_samples(dw, dh, 20, 21, &mut xs, &mut ys);
        mapper.map_points(&mut xs, &mut ys);
    }
    let mut ext = Extent::EMPTY;
    for (x, y) in xs.iter().zip(&ys) {
        ext.add(*x, *y);
    }
    if ext.is_empty() {
        return (1.0, 1.0);
    }
    #[allow(clippy::cast_precision_loss)]
    let filter = resampling.radius_px() as f64;
    #[allow(clippy::cast_precision_loss)]
    let scale = |dst_size: f64, min: f64, max: f64, src_size: usize| -> f64 {
        let src_size = src_size as f64;
        let span = max - min;
        if span <= 0.0 {
            return 1.0;
        }
        let first_guess = (dst_size / span).max(1e-3);
        let radius = if first_guess < 0.95 {
            (filter / first_guess).ceil()
        } else {
            filter
        };
        let off = (min.floor() - radius).clamp(0.0, src_size);
        let end = (max.ceil() + radius).clamp(0.0, src_size);
        let window = end - off;
        if window <= 0.0 || window == dst_size {
            return 1.0;
        }
        let s = dst_size / window;
        if s < 1.0 {
            let recip = 1.0 / s;
            let n = (recip + 0.5).floor();
            if (recip - n).abs() < 0.05 && n >= 1.0 {
                return 1.0 / n;
            }
        }
        s
    };
    (
        scale(dw, ext.min_x, ext.max_x, src_w),
        scale(dh, ext.min_y, ext.max_y, src_h),
    )
}

/// Sample positions over a `w` x `h` pixel rectangle: `per_edge + 1` points along each edge
/// (corners included) and an `interior` x `interior` grid of cell centres.
fn edge_and_grid_samples(
    w: f64,
    h: f64,
    per_edge: usize,
    interior: usize,
    xs: &mut Vec<f64>,
    ys: &mut Vec<f64>,
) {
    #[allow(clippy::cast_precision_loss)]
    let n = per_edge.max(1) as f64;
    for k in 0..=per_edge.max(1) {
        #[allow(clippy::cast_precision_loss)]
        let f = k as f64 / n;
        for (x, y) in [(f * w, 0.0), (f * w, h), (0.0, f * h), (w, f * h)] {
            xs.push(x);
            ys.push(y);
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let m = interior as f64;
    for j in 0..interior {
        for i in 0..interior {
            #[allow(clippy::cast_precision_loss)]
            let (fi, fj) = ((i as f64 + 0.5) / m, (j as f64 + 0.5) / m);
            xs.push(fi * w);
            ys.push(fj * h);
        }
    }
}

/// A bounding box of finite points.
#[derive(Debug, Clone, Copy)]
struct Extent {
    min_x: f64,
    min_y: f64,
    max_x: f64,
    max_y: f64,
}

impl Extent {
    const EMPTY: Self = Self {
        min_x: f64::INFINITY,
        min_y: f64::INFINITY,
        max_x: f64::NEG_INFINITY,
        max_y: f64::NEG_INFINITY,
    };

    fn add(&mut self, x: f64, y: f64) {
        if x.is_finite() && y.is_finite() {
            self.min_x = self.min_x.min(x);
            self.max_x = self.max_x.max(x);
            self.min_y = self.min_y.min(y);
            self.max_y = self.max_y.max(y);
        }
    }

    fn is_empty(&self) -> bool {
        self.min_x > self.max_x
    }
}

#[cfg(test)]
mod tests;
