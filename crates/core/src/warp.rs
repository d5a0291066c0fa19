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
//! [`choose_overview`], then [`warp_source_window`] on that level, read and decode the
//! window, then [`warp_with`] using [`PixelWindow::transform`]. Warping that window gives the
//! same pixels as warping the whole level.

mod kernel;
mod mapper;
mod nearest;
mod overview;

pub use nearest::NearestPicks;
pub use overview::choose_overview_with;

use std::str::FromStr;

use crate::crs::{Crs, Transformer};
use crate::dtype::{Sample, Samples};
use crate::geo::{GeoBounds, GeoTransform};
pub use crate::raster::PixelWindow;
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
    let samples = SourceSamples::new(reprojection, src_transform, src_width, src_height)?;
    let Some(ext) = footprint(reprojection, dst, &samples)? else {
        return Ok(None);
    };
    Ok(window_around(&ext, margin_px, src_width, src_height))
}

/// The source window [`warp_with`] needs for `resampling`: [`source_window_with`] with the
/// margin GDAL reads around the footprint (the kernel radius stretched by the downsampling
/// factor, plus one pixel), so that warping the window gives the same pixels as warping the
/// whole source.
pub fn warp_source_window(
    reprojection: &Reprojection,
    dst: &GridSpec,
    src_transform: &GeoTransform,
    src_width: usize,
    src_height: usize,
    resampling: Resampling,
) -> Result<Option<PixelWindow>, CoreError> {
    let samples = SourceSamples::new(reprojection, src_transform, src_width, src_height)?;
    warp_source_window_sampled(reprojection, dst, &samples, resampling)
}

/// [`warp_source_window`] with the source's samples made beforehand ([`SourceSamples`]), so a
/// source read for many tiles transforms them once. The same result, bit for bit.
pub fn warp_source_window_sampled(
    reprojection: &Reprojection,
    dst: &GridSpec,
    samples: &SourceSamples,
    resampling: Resampling,
) -> Result<Option<PixelWindow>, CoreError> {
    let (src_width, src_height) = (samples.width, samples.height);
    let Some(ext) = footprint(reprojection, dst, samples)? else {
        return Ok(None);
    };
    let downsampling = ((ext.max_x - ext.min_x) / dst.width as f64)
        .max((ext.max_y - ext.min_y) / dst.height as f64);
    let margin = resampling.margin_px(downsampling);
    Ok(window_around(&ext, margin, src_width, src_height))
}

/// The source raster's points that the source → destination half of a footprint checks (its
/// edges and a 21 × 21 grid), in source pixels and in the destination CRS. They depend on the
/// source grid only, so they are transformed once per source level, not once per tile.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSamples {
    transform: GeoTransform,
    width: usize,
    height: usize,
    /// Source pixel positions.
    pixels: (Vec<f64>, Vec<f64>),
    /// The same points in the destination CRS (NaN where they do not transform).
    projected: (Vec<f64>, Vec<f64>),
}

impl SourceSamples {
    /// The samples of a `width` x `height` source grid placed by `transform`, projected with
    /// `reprojection`'s source → destination transformer.
    pub fn new(
        reprojection: &Reprojection,
        transform: &GeoTransform,
        width: usize,
        height: usize,
    ) -> Result<Self, CoreError> {
        let (mut sxs, mut sys) = (Vec::new(), Vec::new());
        if width > 0 && height > 0 {
            edge_and_grid_samples(width as f64, height as f64, 20, 21, &mut sxs, &mut sys);
        }
        // The exact mapping's first two steps (`PixelMapper::map_exact`): the source grid's
        // affine transform, then the CRS transform unless it is the identity.
        let g = &transform.0;
        let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = sxs
            .iter()
            .zip(&sys)
            .map(|(&px, &py)| (g[0] + px * g[1] + py * g[2], g[3] + px * g[4] + py * g[5]))
            .unzip();
        let to_dst = reprojection.src_to_dst();
        if !to_dst.is_identity() {
            to_dst.transform_points(&mut xs, &mut ys)?;
        }
        Ok(Self {
            transform: *transform,
            width,
            height,
            pixels: (sxs, sys),
            projected: (xs, ys),
        })
    }

    /// Memory held, in bytes (for cache weighing).
    pub fn heap_bytes(&self) -> usize {
        (self.pixels.0.capacity()
            + self.pixels.1.capacity()
            + self.projected.0.capacity()
            + self.projected.1.capacity())
            * std::mem::size_of::<f64>()
    }
}

/// The extent, in source pixels, of the source area a destination grid covers; `None` when
/// it does not intersect the source raster.
fn footprint(
    reprojection: &Reprojection,
    dst: &GridSpec,
    samples: &SourceSamples,
) -> Result<Option<Extent>, CoreError> {
    let (src_width, src_height, src_transform) =
        (samples.width, samples.height, &samples.transform);
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
    let (dw, dh) = (dst.width as f64, dst.height as f64);
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
    if let Some(period) = mapper.x_period().filter(|p| (p - sw).abs() <= 1.0) {
        // A source covering all longitudes: a destination straddling its antimeridian needs
        // both ends of the raster, including the columns between the last sampled point
        // and the raster edge, so read the whole width.
        let mut ux = xs.clone();
        unwrap_around_centre(&mapper, dw, dh, period, &mut ux);
        let mut unwrapped = Extent::EMPTY;
        for (x, y) in ux.iter().zip(&ys) {
            unwrapped.add(*x, *y);
        }
        if !unwrapped.is_empty() && (unwrapped.min_x < 0.0 || unwrapped.max_x > sw) {
            ext.add(0.0, ext.min_y);
            ext.add(sw, ext.min_y);
        }
    }
    // Source → destination: source points that fall inside the destination grid.
    if let Some(reverse) = PixelMapper::new(
        src_transform,
        &dst.transform,
        dst.width,
        dst.height,
        &reprojection.src_to_dst,
    ) {
        let (sxs, sys) = &samples.pixels;
        let (mut dxs, mut dys) = samples.projected.clone();
        reverse.finish_transformed(&mut dxs, &mut dys);
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
    Ok(Some(ext))
}

/// The whole pixels around an extent, grown by `margin_px` and clamped to the raster.
fn window_around(
    ext: &Extent,
    margin_px: usize,
    src_width: usize,
    src_height: usize,
) -> Option<PixelWindow> {
    let (sw, sh, m) = (src_width as f64, src_height as f64, margin_px as f64);
    let c0 = (ext.min_x.floor() - m).clamp(0.0, sw);
    let c1 = (ext.max_x.ceil() + m).clamp(0.0, sw);
    let r0 = (ext.min_y.floor() - m).clamp(0.0, sh);
    let r1 = (ext.max_y.ceil() + m).clamp(0.0, sh);
    if c1 <= c0 || r1 <= r0 {
        return None;
    }
    // Values are whole numbers clamped to the raster size.
    Some(PixelWindow {
        col_off: c0 as usize,
        row_off: r0 as usize,
        width: (c1 - c0) as usize,
        height: (r1 - r0) as usize,
    })
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
///    largest factor still below `desired × threshold + 0.1`, where the threshold is 1.2 when the
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
    warp_with_transformer(
        src,
        src_transform,
        &transformer,
        dst,
        resampling,
        WarpOptions::default(),
    )
}

/// [`warp`] with prebuilt transformers.
pub fn warp_with(
    reprojection: &Reprojection,
    src: &Raster,
    src_transform: &GeoTransform,
    dst: &GridSpec,
    resampling: Resampling,
) -> Result<Raster, CoreError> {
    warp_with_options(
        reprojection,
        src,
        src_transform,
        dst,
        resampling,
        WarpOptions::default(),
    )
}

/// How rio-tiler drives GDAL for a source, beyond the resampling method.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WarpOptions {
    /// Per-band nodata: besides the dataset mask (`src.mask`, invalid where every band is
    /// nodata), a band's own nodata samples are left out of that band's interpolation, and a
    /// band with no valid sample under the kernel of a valid pixel gets this value. That is
    /// GDAL's RasterIO resampling (each band resampled with its own nodata mask), which
    /// rio-tiler uses instead of the warper when the source is already in the tile CRS. The
    /// warper (rio-tiler's WarpedVRT) uses the dataset mask for every band, so leave it `None`
    /// for reprojected sources (measured: per-band exclusion turns 100% exact reprojected
    /// tiles into 99.8%).
    pub band_nodata: Option<f64>,
    /// rio-tiler's WarpedVRT gets a destination alpha band (`add_alpha`: sources with neither
    /// nodata nor an alpha band). GDAL then measures the kernel scale on the raw footprint
    /// (see `kernel_scales`).
    pub dst_alpha: bool,
    /// Where the warped raster sits in its (overview) level: the window read and the level's
    /// width and height. GDAL clamps footprints to the level, not to the window.
    pub level: Option<(PixelWindow, usize, usize)>,
}

/// [`warp_with`] with [`WarpOptions`].
pub fn warp_with_options(
    reprojection: &Reprojection,
    src: &Raster,
    src_transform: &GeoTransform,
    dst: &GridSpec,
    resampling: Resampling,
    options: WarpOptions,
) -> Result<Raster, CoreError> {
    warp_with_transformer(
        src,
        src_transform,
        &reprojection.dst_to_src,
        dst,
        resampling,
        options,
    )
}

/// A warp's output buffers (all invalid zeros to begin with), made a raster on the
/// destination grid by [`WarpOut::finish`].
pub(super) struct WarpOut {
    pub samples: Samples,
    pub mask: Vec<u8>,
    bands: usize,
    grid: GridSpec,
}

impl WarpOut {
    pub fn finish(self) -> Result<Raster, CoreError> {
        let g = self.grid;
        Ok(
            Raster::new(g.width, g.height, self.bands, self.samples, self.mask)?
                .with_transform(g.transform),
        )
    }
}

/// Checks a warp's output size and sets up its output buffers and the row mapper from
/// destination pixels to source pixels; the mapper is `None` when there is nothing to warp
/// and the output is finished as it is.
pub(super) fn start_warp<'t>(
    src: &Raster,
    src_transform: &GeoTransform,
    dst_to_src: &'t Transformer,
    dst: &GridSpec,
) -> Result<(WarpOut, Option<PixelMapper<'t>>), CoreError> {
    let plane = src.pixel_count();
    let dst_plane = checked_plane(dst, src.bands())?;
    let out = WarpOut {
        samples: Samples::zeros(src.dtype(), dst_plane * src.bands()),
        mask: vec![0; dst_plane],
        bands: src.bands(),
        grid: *dst,
    };
    if dst_plane == 0 || plane == 0 {
        return Ok((out, None));
    }
    let mapper = PixelMapper::new(
        &dst.transform,
        src_transform,
        src.width(),
        src.height(),
        dst_to_src,
    )
    .ok_or_else(|| CoreError::invalid("geotransform", "the source geotransform is singular"))?;
    Ok((out, Some(mapper)))
}

/// Pixels of one band of a warp's output onto `dst`, checked against the output limit for
/// `bands` bands.
pub(super) fn checked_plane(dst: &GridSpec, bands: usize) -> Result<usize, CoreError> {
    dst.width
        .checked_mul(dst.height)
        .filter(|&n| n.saturating_mul(bands) <= MAX_WARP_PIXELS)
        .ok_or_else(|| CoreError::TooLarge {
            what: "warp output",
            reason: format!("{}x{} pixels x {bands} bands", dst.width, dst.height),
        })
}

fn warp_with_transformer(
    src: &Raster,
    src_transform: &GeoTransform,
    dst_to_src: &Transformer,
    dst: &GridSpec,
    resampling: Resampling,
    options: WarpOptions,
) -> Result<Raster, CoreError> {
    let nodata = options.band_nodata;
    // Nearest copies nodata samples as they are, so it needs neither kernels nor `nodata`.
    if resampling == Resampling::Nearest {
        return nearest::warp_nearest(src, src_transform, dst_to_src, dst);
    }
    let (mut out, mapper) = start_warp(src, src_transform, dst_to_src, dst)?;
    let Some(mapper) = mapper else {
        return out.finish();
    };
    let plane = src.width() * src.height();
    let view = SourceView {
        width: src.width(),
        height: src.height(),
        mask: src.mask(),
    };
    let (x_scale, y_scale) = if resampling == Resampling::Nearest {
        (1.0, 1.0)
    } else {
        kernel_scales(
            &mapper,
            dst,
            src.width(),
            src.height(),
            resampling,
            options.dst_alpha.then_some(options.level).map(|level| {
                level.map_or((0.0, 0.0, src.width(), src.height()), |(w, lw, lh)| {
                    let offset = (w.col_off as f64, w.row_off as f64);
                    (offset.0, offset.1, lw, lh)
                })
            }),
        )
    };
    // Nearest copies the nodata value itself, which is what GDAL writes for a nodata sample.
    let band_masks = match nodata {
        Some(nd) if resampling != Resampling::Nearest => band_masks(src, plane, nd),
        _ => None,
    };
    // `contains` is a vectorised scan; GDAL drops an all-valid mask the same way.
    let masked =
        resampling != Resampling::Nearest && (band_masks.is_some() || src.mask().contains(&0));
    let mut kernel = Kernel::new(resampling, x_scale, y_scale, masked);
    let copy = kernel.copies(&view);
    let mut job = RowJob {
        mapper: &mapper,
        view,
        kernel: &mut kernel,
        copy,
        bands: src.bands(),
        plane,
        dst_width: dst.width,
        xs: vec![0.0; dst.width],
        ys: vec![0.0; dst.width],
        plans: Vec::with_capacity(dst.width),
        nearest: Vec::with_capacity(dst.width),
        spans: Vec::with_capacity(dst.width * 2),
        taps: Vec::with_capacity(dst.width * 4),
        band_masks,
        nodata: nodata.unwrap_or(0.0),
        band_invalid: Vec::new(),
    };
    let WarpOut { samples, mask, .. } = &mut out;
    macro_rules! run {
        ($($v:ident),*) => {
            match (src.samples(), samples) {
                $((Samples::$v(s), Samples::$v(d)) => job.run(s, d, mask),)*
                _ => Err(CoreError::invalid("raster", "output type differs from input")),
            }
        };
    }
    run!(U8, I8, U16, I16, U32, I32, F32, F64)?;
    out.finish()
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
    /// Per-band validity (dataset mask and the band's own nodata), when some band has nodata
    /// samples where the dataset mask is valid.
    band_masks: Option<Vec<Vec<u8>>>,
    /// Written to a band that has no valid sample under the kernel of a valid pixel.
    nodata: f64,
    /// Scratch: per band and pixel of the row, whether the band's plan was invalid.
    band_invalid: Vec<bool>,
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
        if self.band_masks.is_some() && !self.copy {
            return self.run_per_band(src, dst, mask);
        }
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

impl RowJob<'_, '_> {
    /// [`RowJob::run`] with one plan per band, each over that band's own validity. A pixel is
    /// valid when any band got data; its other bands hold the nodata value.
    fn run_per_band<T: WarpSample>(
        &mut self,
        src: &[T],
        dst: &mut [T],
        mask: &mut [u8],
    ) -> Result<(), CoreError> {
        let Some(band_masks) = self.band_masks.take() else {
            return Ok(());
        };
        let w = self.dst_width;
        let dst_plane = mask.len();
        let fill = T::from_resampled(self.nodata);
        for (row, mask_row) in mask.chunks_exact_mut(w).enumerate() {
            self.mapper.map_row(row, &mut self.xs, &mut self.ys);
            mask_row.fill(0);
            self.band_invalid.clear();
            for (band, band_mask) in band_masks.iter().enumerate().take(self.bands) {
                let view = SourceView {
                    mask: band_mask,
                    ..self.view
                };
                self.plans.clear();
                self.spans.clear();
                self.taps.clear();
                for (x, y) in self.xs.iter().zip(&self.ys) {
                    // GDAL skips the whole pixel when the dataset mask is invalid under its
                    // centre, whatever the band; the band's own validity picks the taps.
                    let plan = self.kernel.plan_in(
                        &self.view,
                        &view,
                        *x,
                        *y,
                        &mut self.taps,
                        &mut self.spans,
                    );
                    self.plans.push(plan);
                }
                for (m, plan) in mask_row.iter_mut().zip(&self.plans) {
                    if plan.len > 0 {
                        *m = 255;
                    }
                    self.band_invalid.push(plan.len == 0);
                }
                let src_band = src
                    .get(band * self.plane..(band + 1) * self.plane)
                    .ok_or_else(|| CoreError::invalid("raster", "band out of range"))?;
                let start = band * dst_plane + row * w;
                let dst_row = dst
                    .get_mut(start..start + w)
                    .ok_or_else(|| CoreError::invalid("raster", "row out of range"))?;
                apply_row(
                    &self.plans,
                    &self.spans,
                    &self.taps,
                    src_band,
                    dst_row,
                    false,
                );
            }
            for band in 0..self.bands {
                let start = band * dst_plane + row * w;
                let (Some(dst_row), Some(invalid)) = (
                    dst.get_mut(start..start + w),
                    self.band_invalid.get(band * w..(band + 1) * w),
                ) else {
                    continue;
                };
                for ((o, &bad), &m) in dst_row.iter_mut().zip(invalid).zip(mask_row.iter()) {
                    if bad && m != 0 {
                        *o = fill;
                    }
                }
            }
        }
        self.band_masks = Some(band_masks);
        Ok(())
    }
}

/// Per-band validity masks for a nodata source: valid where the dataset mask is and the
/// band's sample is not `nodata` (NaN matches NaN). `None` when they all equal the dataset
/// mask, i.e. no band has a nodata sample at a pixel another band makes valid.
fn band_masks(src: &Raster, plane: usize, nodata: f64) -> Option<Vec<Vec<u8>>> {
    let is_nodata = |v: f64| v == nodata || (nodata.is_nan() && v.is_nan());
    crate::with_samples!(src.samples(), v => {
        let mut any = false;
        let mut out = Vec::with_capacity(src.bands());
        for band in 0..src.bands() {
            let values = v.get(band * plane..(band + 1) * plane)?;
            let m: Vec<u8> = values
                .iter()
                .zip(src.mask())
                .map(|(x, &valid)| {
                    if valid != 0 && !is_nodata(x.to_f64()) {
                        255
                    } else {
                        0
                    }
                })
                .collect();
            any |= m.iter().zip(src.mask()).any(|(&a, &b)| a != b);
            out.push(m);
        }
        any.then_some(out)
    })
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
/// for a warp chunk. `GDALWarpOperation::ComputeSourceWindow` maps the destination edges to
/// the source (footprint `min..max`), reads the window `[trunc(max(min, 0)) - r,
/// min(ceil(max), size) + r]` clamped to the level (`r` = kernel radius, stretched when
/// downsampling) and reports `extra = window - raw`, `raw = min(size - trunc(max(min, 0)),
/// max - min)`; `GDALWarpKernel::PerformWarp` then uses `destination ÷ (window - extra)`, 1
/// when `destination ≤ window ≤ destination + extra`, and snaps ratios within 0.05 of 1/n.
/// Measured against rio-tiler: that raw-footprint rule holds with a destination alpha band
/// (`raw_footprint` = the window's offset in its level and the level size); without one
/// (nodata sources) the padded window itself sets the scale (as if `extra` were 0).
fn kernel_scales(
    mapper: &PixelMapper,
    dst: &GridSpec,
    src_w: usize,
    src_h: usize,
    resampling: Resampling,
    raw_footprint: Option<(f64, f64, usize, usize)>,
) -> (f64, f64) {
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
    if let Some(period) = mapper.x_period() {
        unwrap_around_centre(mapper, dw, dh, period, &mut xs);
    }
    let mut ext = Extent::EMPTY;
    for (x, y) in xs.iter().zip(&ys) {
        ext.add(*x, *y);
    }
    if ext.is_empty() {
        return (1.0, 1.0);
    }
    let filter = resampling.radius_px() as f64;
    let scale =
        |dst_size: f64, min: f64, max: f64, src_size: usize, level: Option<(f64, usize)>| -> f64 {
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
            // GDAL's `ComputeSourceWindow`: the window read is the footprint clamped to the
            // raster and padded by the radius; the "raw" size is the footprint's span, cut only
            // where it runs past the raster's far edge.
            let min_clamped = min.max(0.0).trunc().min(src_size);
            let max_clamped = max.ceil().min(src_size);
            let off = (min_clamped - radius).clamp(0.0, src_size);
            let window = (max_clamped - off + radius).min(src_size - off).max(0.0);
            // Measured against rio-tiler: with a destination alpha band the scale follows the
            // raw footprint (tiles partly off the source keep their true downsampling); without
            // one, the padded window itself (GDAL then behaves as if the extra size were 0).
            let raw = match level {
                Some((offset, level_size)) => {
                    let level_size = level_size as f64;
                    let min_level = (min + offset).max(0.0).trunc().min(level_size);
                    (level_size - min_level).min(span).max(0.0)
                }
                None => window,
            };
            let extra = window - raw;
            // `GDALWarpKernel::PerformWarp`: scale = destination ÷ (window - extra) = ÷ raw, and
            // 1 when the window is between the destination size and that plus the padding.
            if raw <= 0.0 || (window >= dst_size && window <= dst_size + extra) {
                return 1.0;
            }
            let s = dst_size / raw;
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
        scale(
            dw,
            ext.min_x,
            ext.max_x,
            src_w,
            raw_footprint.map(|(x0, _, lw, _)| (x0, lw)),
        ),
        scale(
            dh,
            ext.min_y,
            ext.max_y,
            src_h,
            raw_footprint.map(|(_, y0, _, lh)| (y0, lh)),
        ),
    )
}

/// Moves source x positions by whole turns of longitude (`period` source pixels) to the copy
/// nearest the destination centre's, so that a destination grid straddling the antimeridian
/// of a wrapping geographic source measures its true footprint (a few hundred pixels), not
/// the whole raster width between the two copies. GDAL's scale for such tiles is that of the
/// unwrapped footprint (measured on the global ETOPO5 tile 4/15/15: x scale 0.948). Its z1
/// tile 1/1/1 (half the globe) matched the wrapped scale better (97% vs 82%): GDAL's exact
/// rule for very wide destinations is not known; unwrapping everywhere passes more of the
/// reference suite (Natural Earth z0-z2).
fn unwrap_around_centre(mapper: &PixelMapper, dw: f64, dh: f64, period: f64, xs: &mut [f64]) {
    let (mut cx, mut cy) = ([0.5 * dw], [0.5 * dh]);
    mapper.map_points(&mut cx, &mut cy);
    let reference = cx[0];
    if !(reference.is_finite() && period.is_finite() && period > 0.0) {
        return;
    }
    for x in xs.iter_mut().filter(|x| x.is_finite()) {
        *x -= period * ((*x - reference) / period).round();
    }
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
    let n = per_edge.max(1) as f64;
    for k in 0..=per_edge.max(1) {
        let f = k as f64 / n;
        for (x, y) in [(f * w, 0.0), (f * w, h), (0.0, f * h), (w, f * h)] {
            xs.push(x);
            ys.push(y);
        }
    }
    let m = interior as f64;
    for j in 0..interior {
        for i in 0..interior {
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
