//! Which overview level to read for a destination grid, the way rio-tiler + GDAL choose it.
//!
//! rio-tiler's `Reader.tile()` reprojects through a `WarpedVRT` whose size is the tile's extent
//! divided by the source's native resolution in the tile CRS (or the tile size when
//! over-zooming), then reads it into the 256/512 px tile. That read is a downsampling, so GDAL
//! (`VRTWarpedRasterBand::GetBestOverviewLevel` / `GDALBandGetBestOverviewLevel2`) picks an
//! overview of the warped VRT, each one being the same warp from a source overview. When the
//! source is already in the tile CRS, rio-tiler reads a window with `out_shape` and GDAL makes
//! the same choice on the source's own overviews.

use crate::crs::{Crs, Transformer};
use crate::geo::GeoTransform;
use crate::CoreError;

use super::{GridSpec, Reprojection, Resampling};

/// GDAL 3.10 accepts an overview up to `desired × threshold + 0.1` ("numerical instability"
/// slack): e.g. the 2× level for a 1.648× read with nearest (1.648 × 1.2 = 1.978 < 2).
/// Measured with `GDAL_OVERVIEW_OVERSAMPLING_THRESHOLD`: 1.16 already selects that level,
/// 1.14 does not.
const OVERSAMPLING_EPSILON: f64 = 0.1;

/// rio-tiler's latitude crop for global EPSG:4326 sources read in EPSG:3857.
const RIO_TILER_MAX_LAT: f64 = 85.06;

pub(super) fn choose(
    dst: &GridSpec,
    dst_crs: &Crs,
    src_transform: &GeoTransform,
    src_crs: &Crs,
    levels: &[(usize, usize)],
    resampling: Resampling,
) -> Result<usize, CoreError> {
    let to_dst = Transformer::new(src_crs, dst_crs)?;
    choose_with(
        &to_dst,
        dst,
        dst_crs,
        src_transform,
        src_crs,
        levels,
        resampling,
    )
}

/// [`super::choose_overview`] with the prebuilt transformers of the (source, tile) CRS pair,
/// so that planning a tile sets up no projection. `src_crs`/`dst_crs` must be the pair
/// `reprojection` was built for (they only pick rio-tiler's latitude crop and name errors).
pub fn choose_overview_with(
    reprojection: &Reprojection,
    dst: &GridSpec,
    dst_crs: &Crs,
    src_transform: &GeoTransform,
    src_crs: &Crs,
    levels: &[(usize, usize)],
    resampling: Resampling,
) -> Result<usize, CoreError> {
    choose_with(
        reprojection.src_to_dst(),
        dst,
        dst_crs,
        src_transform,
        src_crs,
        levels,
        resampling,
    )
}

fn choose_with(
    to_dst: &Transformer,
    dst: &GridSpec,
    dst_crs: &Crs,
    src_transform: &GeoTransform,
    src_crs: &Crs,
    levels: &[(usize, usize)],
    resampling: Resampling,
) -> Result<usize, CoreError> {
    let Some(&(full_w, full_h)) = levels.first() else {
        return Err(CoreError::invalid("overviews", "no source level given"));
    };
    if full_w == 0 || full_h == 0 || dst.width == 0 || dst.height == 0 {
        return Err(CoreError::invalid(
            "overviews",
            "source and destination sizes must be non-zero",
        ));
    }
    if levels.len() == 1 {
        return Ok(0);
    }
    let (out_w, out_h) = (dst.width as f64, dst.height as f64);
    let (dst_res_x, dst_res_y) = dst.transform.resolution();
    let extent_w = dst_res_x * out_w;
    let extent_h = dst_res_y * out_h;

    // The size of the dataset rio-tiler asks GDAL to read from, before reducing it to the
    // output size, and the downsampling factor of each overview relative to it.
    let (read_w, read_h, factors): (f64, f64, Vec<f64>) = if to_dst.is_identity() {
        let (sx, sy) = src_transform.resolution();
        let read_w = (extent_w / sx).round();
        let read_h = (extent_h / sy).round();
        let factors = levels
            .iter()
            .map(|&(w, h)| {
                if w == 0 || h == 0 {
                    f64::INFINITY
                } else {
                    (full_w as f64 / w as f64).min(full_h as f64 / h as f64)
                }
            })
            .collect();
        (read_w, read_h, factors)
    } else {
        let (native_x, native_y) =
            native_resolution(to_dst, src_transform, src_crs, dst_crs, full_w, full_h)?;
        // rio-tiler: keep the native resolution unless the output is finer (over-zoom).
        let res_x = native_x.min(dst_res_x);
        let res_y = native_y.min(dst_res_y);
        let vrt_w = (extent_w / res_x).round_ties_even().max(1.0);
        let vrt_h = (extent_h / res_y).round_ties_even().max(1.0);
        let factors = levels
            .iter()
            .map(|&(w, _)| {
                if w == 0 {
                    return f64::INFINITY;
                }
                // GDAL sizes the warped overview with the x ratio on both axes.
                let ratio = full_w as f64 / w as f64;
                let ow = (vrt_w / ratio + 0.5).floor();
                let oh = (vrt_h / ratio + 0.5).floor();
                if ow < 1.0 || oh < 1.0 {
                    f64::INFINITY
                } else {
                    (vrt_w / ow).min(vrt_h / oh)
                }
            })
            .collect();
        (vrt_w, vrt_h, factors)
    };
    if !(read_w > out_w || read_h > out_h) {
        // Not a downsampling read: GDAL does not look at overviews.
        return Ok(0);
    }
    // The least reduced axis.
    let desired = (read_w / out_w).min(read_h / out_h);
    let threshold = match resampling {
        Resampling::Nearest => 1.2,
        // GDAL nudges a threshold of exactly 1 to 1.01 against numerical noise.
        Resampling::Bilinear | Resampling::Cubic => 1.01,
    };
    let mut best = 0;
    let mut best_factor = 0.0;
    for (i, &factor) in factors.iter().enumerate().skip(1) {
        if factor >= desired * threshold + OVERSAMPLING_EPSILON || factor <= best_factor {
            continue;
        }
        best = i;
        best_factor = factor;
    }
    Ok(best)
}

/// The pixel size GDAL suggests for the full-resolution source warped into `dst_crs`
/// (`GDALSuggestedWarpOutput2`): the source diagonal's length in the destination CRS divided
/// by its length in pixels; with rio-tiler's latitude crop for global EPSG:4326 sources.
fn native_resolution(
    to_dst: &Transformer,
    src_transform: &GeoTransform,
    src_crs: &Crs,
    dst_crs: &Crs,
    full_w: usize,
    full_h: usize,
) -> Result<(f64, f64), CoreError> {
    let (mut w, mut h) = (full_w as f64, full_h as f64);
    let mut gt = *src_transform;
    let b = gt.bounds(full_w, full_h);
    if src_crs.is_wgs84()
        && dst_crs.is_web_mercator()
        && gt.is_axis_aligned()
        && (b.south < -RIO_TILER_MAX_LAT || b.north > RIO_TILER_MAX_LAT)
    {
        let south = b.south.max(-RIO_TILER_MAX_LAT);
        let north = b.north.min(RIO_TILER_MAX_LAT);
        let (rx, ry) = gt.resolution();
        w = ((b.east - b.west) / rx).round();
        h = ((north - south) / ry).round();
        if w < 1.0 || h < 1.0 {
            return Err(CoreError::invalid(
                "source",
                "no rows within the Web Mercator range",
            ));
        }
        gt = GeoTransform::north_up(b.west, north, (b.east - b.west) / w, (north - south) / h);
    }
    // Corners first; if one fails, the diagonal of the transformed edge samples' extent.
    let (x0, y0) = gt.apply(0.0, 0.0);
    let (x1, y1) = gt.apply(w, h);
    let diag = match (
        to_dst.transform_point(x0, y0),
        to_dst.transform_point(x1, y1),
    ) {
        (Some(a), Some(b)) if a.0 != b.0 && a.1 != b.1 => (b.0 - a.0).hypot(b.1 - a.1),
        _ => {
            let mut xs = Vec::with_capacity(84);
            let mut ys = Vec::with_capacity(84);
            for k in 0..=20 {
                let f = f64::from(k) / 20.0;
                for (c, r) in [(f * w, 0.0), (f * w, h), (0.0, f * h), (w, f * h)] {
                    let (x, y) = gt.apply(c, r);
                    xs.push(x);
                    ys.push(y);
                }
            }
            to_dst.transform_points(&mut xs, &mut ys)?;
            let (mut min_x, mut min_y) = (f64::INFINITY, f64::INFINITY);
            let (mut max_x, mut max_y) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
            for (x, y) in xs.iter().zip(&ys) {
                if x.is_finite() && y.is_finite() {
                    min_x = min_x.min(*x);
                    max_x = max_x.max(*x);
                    min_y = min_y.min(*y);
                    max_y = max_y.max(*y);
                }
            }
            (max_x - min_x).hypot(max_y - min_y)
        }
    };
    let res = diag / w.hypot(h);
    if !(res.is_finite() && res > 0.0) {
        return Err(CoreError::unsupported(
            "reprojection",
            format!(
                "cannot estimate the resolution of the source in {}",
                dst_crs.name()
            ),
        ));
    }
    Ok((res, res))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tms::TileMatrixSet;

    #[test]
    fn prebuilt_transformers_choose_the_same_level() {
        let merc = Crs::web_mercator();
        let tms = TileMatrixSet::web_mercator_quad();
        // ETOPO5-like global grid with 4 overviews, and a 30 m UTM scene with 3.
        let global = (
            Crs::wgs84(),
            GeoTransform::north_up(-180.0, 90.0, 1.0 / 12.0, 1.0 / 12.0),
            vec![
                (4320, 2160),
                (2160, 1080),
                (1080, 540),
                (540, 270),
                (270, 135),
            ],
        );
        let utm = (
            Crs::from_epsg(32618).unwrap(),
            GeoTransform::north_up(560_000.0, 4_530_000.0, 30.0, 30.0),
            vec![(8000, 8000), (4000, 4000), (2000, 2000), (1000, 1000)],
        );
        let mut levels_seen = std::collections::HashSet::new();
        for (crs, gt, levels) in [global, utm] {
            let reprojection = Reprojection::new(&crs, &merc).unwrap();
            let (lon, lat) = {
                let (x, y) = gt.apply(levels[0].0 as f64 / 2.0, levels[0].1 as f64 / 2.0);
                Transformer::new(&crs, &Crs::wgs84())
                    .unwrap()
                    .transform_point(x, y)
                    .unwrap()
            };
            for z in 0..14 {
                let tile = tms.tile_for_lonlat(lon, lat, z).unwrap();
                for size in [256, 512] {
                    let grid = GridSpec::for_tile(&tms, tile, size);
                    for r in [Resampling::Nearest, Resampling::Bilinear] {
                        let a = choose(&grid, &merc, &gt, &crs, &levels, r).unwrap();
                        let b = choose_overview_with(
                            &reprojection,
                            &grid,
                            &merc,
                            &gt,
                            &crs,
                            &levels,
                            r,
                        )
                        .unwrap();
                        assert_eq!(a, b, "z{z} {size} {r}");
                        levels_seen.insert(a);
                    }
                }
            }
        }
        // The zoom sweep reaches the full resolution and the coarsest overviews.
        assert!(
            levels_seen.contains(&0) && levels_seen.contains(&3),
            "{levels_seen:?}"
        );
    }
}
