//! Mapping destination pixel positions to source pixel positions.
//!
//! The chain is GDAL's `GenImgProjTransformer`: destination pixel → destination CRS (the grid's
//! geotransform) → source CRS ([`Transformer`]) → source pixel (inverse geotransform). Rows
//! of a destination grid go through GDAL's approximate transformer: exact transforms at the
//! ends and middle of a row, linear interpolation in between when the middle is within
//! `max_error` source pixels of the interpolation (0.125 by default, as `gdalwarp -et` and
//! WarpedVRT), else the row is split in two and each half handled the same way. Matching this
//! scheme (rather than a finer one) keeps nearest-neighbour picks identical to GDAL's.
//!
//! Same-CRS pairs are pure affine maps; EPSG:4326 ↔ EPSG:3857 with a north-up destination
//! grid is exact per row (one transcendental per row, the other axis is linear).

use std::cell::OnceCell;

use crate::crs::{
    web_mercator_lat, web_mercator_y, wrap_longitude, Transformer, WEB_MERCATOR_RADIUS_M,
};
use crate::geo::GeoTransform;

/// GDAL's default error threshold of the approximate transformer, in source pixels.
pub(crate) const DEFAULT_MAX_ERROR_PX: f64 = 0.125;

/// How rows are mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Same CRS: affine only.
    Affine,
    /// Destination EPSG:3857, source EPSG:4326, north-up destination grid.
    MercatorToLonLat,
    /// Destination EPSG:4326, source EPSG:3857, north-up destination grid.
    LonLatToMercator,
    /// Anything else: approximate transformer over the exact one.
    General,
}

/// Maps destination pixel coordinates to source pixel coordinates.
#[derive(Debug)]
pub(crate) struct PixelMapper<'t> {
    dst_gt: GeoTransform,
    src_inv: [f64; 6],
    transformer: &'t Transformer,
    path: Path,
    /// Centre longitude of the source raster when it is geographic: source longitudes are
    /// wrapped into [centre - 180, centre + 180] (GDAL's CENTER_LONG).
    lon_centre: Option<f64>,
    max_error: f64,
    /// Source x of every destination column, when it does not depend on the row (Web
    /// Mercator → lon/lat with a north-up source): filled by the first row, reused by the
    /// others with bit-identical values.
    columns: OnceCell<Vec<f64>>,
}

impl<'t> PixelMapper<'t> {
    /// A mapper for a destination grid and a source grid of `src_width` x `src_height`
    /// pixels; `None` when the source geotransform is not invertible.
    pub(crate) fn new(
        dst_gt: &GeoTransform,
        src_gt: &GeoTransform,
        src_width: usize,
        src_height: usize,
        transformer: &'t Transformer,
    ) -> Option<Self> {
        let src_inv = invert_like_gdal(src_gt)?;
        let north_up = dst_gt.0[2] == 0.0 && dst_gt.0[4] == 0.0;
        // The transformer goes destination CRS → source CRS, so the source raster's CRS is
        // the transformer's output.
        let src_geographic = transformer.dst_is_geographic();
        let path = if transformer.is_identity() {
            Path::Affine
        } else if transformer.is_lonlat_web_mercator() && north_up {
            if src_geographic {
                Path::MercatorToLonLat
            } else {
                Path::LonLatToMercator
            }
        } else {
            Path::General
        };
        let lon_centre = if src_geographic && !transformer.is_identity() {
            let b = src_gt.bounds(src_width, src_height);
            (b.east - b.west <= 360.0 + 1e-9).then_some(0.5 * (b.west + b.east))
        } else {
            None
        };
        Some(Self {
            dst_gt: *dst_gt,
            src_inv,
            transformer,
            path,
            lon_centre,
            max_error: DEFAULT_MAX_ERROR_PX,
            columns: OnceCell::new(),
        })
    }

    /// The source-pixel length of 360° of longitude when source longitudes wrap (geographic,
    /// north-up source), so callers can unwrap x positions across the antimeridian.
    pub(crate) fn x_period(&self) -> Option<f64> {
        let v = &self.src_inv;
        (self.lon_centre.is_some() && v[2] == 0.0 && v[1].is_finite() && v[1] != 0.0)
            .then(|| 360.0 * v[1].abs())
    }

    /// Uses exact transforms for every pixel (no approximation).
    #[cfg(test)]
    pub(crate) fn exact(mut self) -> Self {
        self.max_error = 0.0;
        self
    }

    /// Source pixel coordinates of the centres of destination row `row` (pixels `0..xs.len()`),
    /// written to `xs`/`ys`; NaN where the point cannot be transformed.
    pub(crate) fn map_row(&self, row: usize, xs: &mut [f64], ys: &mut [f64]) {
        self.map_rows_into(row, xs, ys, None);
    }

    /// [`Self::map_row`], also listing in `linear` the ranges of pixels `[start, end)` whose
    /// values come from one linear interpolation (`start + slope × d`): along such a range
    /// both source coordinates are monotonic in the pixel index, rounding included.
    pub(crate) fn map_row_linear(
        &self,
        row: usize,
        xs: &mut [f64],
        ys: &mut [f64],
        linear: &mut Vec<(usize, usize)>,
    ) {
        linear.clear();
        self.map_rows_into(row, xs, ys, Some(linear));
    }

    /// [`Self::map_row`], listing the linear ranges when `linear` is given (callers that do
    /// not want them allocate nothing).
    fn map_rows_into(
        &self,
        row: usize,
        xs: &mut [f64],
        ys: &mut [f64],
        linear: Option<&mut Vec<(usize, usize)>>,
    ) {
        let py = row as f64 + 0.5;
        for (i, (x, y)) in xs.iter_mut().zip(ys.iter_mut()).enumerate() {
            let px = i as f64 + 0.5;
            *x = px;
            *y = py;
        }
        match self.path {
            Path::Affine => self.map_exact(xs, ys),
            Path::MercatorToLonLat => self.map_merc_to_lonlat(py, xs, ys),
            Path::LonLatToMercator => self.map_lonlat_to_merc(py, xs, ys),
            Path::General if self.max_error <= 0.0 => self.map_exact(xs, ys),
            Path::General => self.approx(xs, ys, linear),
        }
    }

    /// Maps arbitrary destination pixel positions (not necessarily a row) exactly.
    pub(crate) fn map_points(&self, xs: &mut [f64], ys: &mut [f64]) {
        self.map_exact(xs, ys);
    }

    /// Exact dst pixel → src pixel for arbitrary points, in place.
    fn map_exact(&self, xs: &mut [f64], ys: &mut [f64]) {
        let g = &self.dst_gt.0;
        for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
            let (px, py) = (*x, *y);
            *x = g[0] + px * g[1] + py * g[2];
            *y = g[3] + px * g[4] + py * g[5];
        }
        if !matches!(self.path, Path::Affine) {
            // Only fails on a length mismatch, which cannot happen here.
            let _ = self.transformer.transform_points(xs, ys);
        }
        self.finish_transformed(xs, ys);
    }

    /// The last steps of [`Self::map_points`], for points already in the source CRS (the
    /// destination grid's affine transform and the CRS transform applied): longitude wrap and
    /// source geotransform, in place.
    pub(crate) fn finish_transformed(&self, xs: &mut [f64], ys: &mut [f64]) {
        for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
            if let Some(c) = self.lon_centre {
                *x = wrap_around(*x, c);
            }
            (*x, *y) = self.to_src_pixel(*x, *y);
        }
    }

    #[inline]
    fn to_src_pixel(&self, x: f64, y: f64) -> (f64, f64) {
        let v = &self.src_inv;
        let sx = v[0] + x * v[1] + y * v[2];
        let sy = v[3] + x * v[4] + y * v[5];
        if sx.is_finite() && sy.is_finite() {
            (sx, sy)
        } else {
            (f64::NAN, f64::NAN)
        }
    }

    /// For a Web Mercator → lon/lat row over a north-up source, where source x depends on
    /// the column only and source y on the row only: the row's source y and the source x of
    /// every column (NaN where not transformable), computed once per mapper. The values are
    /// bit-identical to [`Self::map_row`]'s per-pixel path (the cross terms are `± 0`).
    /// `None` for other paths or when the row does not map to a finite y.
    pub(crate) fn separable_row(&self, row: usize, width: usize) -> Option<(f64, &[f64])> {
        if self.path != Path::MercatorToLonLat {
            return None;
        }
        let g = &self.dst_gt.0;
        let py = row as f64 + 0.5;
        self.separable_row_at(web_mercator_lat(g[3] + py * g[5]), width)
    }

    fn separable_row_at(&self, lat: f64, width: usize) -> Option<(f64, &[f64])> {
        let v = &self.src_inv;
        if v[2] != 0.0 || v[4] != 0.0 || !lat.is_finite() {
            return None;
        }
        let sy = v[3] + 0.0 * v[4] + lat * v[5];
        if !sy.is_finite() {
            return None;
        }
        let g = &self.dst_gt.0;
        let cols = self.columns.get_or_init(|| {
            let to_deg = (1.0 / WEB_MERCATOR_RADIUS_M).to_degrees();
            (0..width)
                .map(|i| {
                    let px = i as f64 + 0.5;
                    let mx = g[0] + px * g[1];
                    let mut lon = wrap_longitude(mx * to_deg);
                    if let Some(c) = self.lon_centre {
                        lon = wrap_around(lon, c);
                    }
                    let sx = v[0] + lon * v[1] + lat * v[2];
                    if mx.is_finite() && sx.is_finite() {
                        sx
                    } else {
                        f64::NAN
                    }
                })
                .collect()
        });
        (cols.len() == width).then_some((sy, cols.as_slice()))
    }

    /// Destination Web Mercator, source lon/lat: latitude is constant along a north-up row,
    /// longitude is linear in x.
    fn map_merc_to_lonlat(&self, py: f64, xs: &mut [f64], ys: &mut [f64]) {
        let g = &self.dst_gt.0;
        let lat = web_mercator_lat(g[3] + py * g[5]);
        if let Some((sy, cols)) = self.separable_row_at(lat, xs.len()) {
            for ((x, y), &c) in xs.iter_mut().zip(ys.iter_mut()).zip(cols) {
                (*x, *y) = if c.is_finite() {
                    (c, sy)
                } else {
                    (f64::NAN, f64::NAN)
                };
            }
            return;
        }
        let to_deg = (1.0 / WEB_MERCATOR_RADIUS_M).to_degrees();
        for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
            let mx = g[0] + *x * g[1];
            let mut lon = wrap_longitude(mx * to_deg);
            if let Some(c) = self.lon_centre {
                lon = wrap_around(lon, c);
            }
            (*x, *y) = if lat.is_finite() && mx.is_finite() {
                self.to_src_pixel(lon, lat)
            } else {
                (f64::NAN, f64::NAN)
            };
        }
    }

    /// Destination lon/lat, source Web Mercator: northing is constant along a north-up row.
    fn map_lonlat_to_merc(&self, py: f64, xs: &mut [f64], ys: &mut [f64]) {
        let g = &self.dst_gt.0;
        let my = web_mercator_y(g[3] + py * g[5]);
        let to_m = WEB_MERCATOR_RADIUS_M.to_radians();
        for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
            let lon = g[0] + *x * g[1];
            (*x, *y) = if my.is_finite() && lon.is_finite() {
                self.to_src_pixel(lon * to_m, my)
            } else {
                (f64::NAN, f64::NAN)
            };
        }
    }

    /// GDAL's approximate transform of one row (all points share y, x increasing).
    fn approx(&self, xs: &mut [f64], ys: &mut [f64], linear: Option<&mut Vec<(usize, usize)>>) {
        let n = xs.len();
        if n <= 5 {
            self.map_exact(xs, ys);
            return;
        }
        let mid = (n - 1) / 2;
        let mut sx = [xs[0], xs[mid], xs[n - 1]];
        let mut sy = [ys[0], ys[mid], ys[n - 1]];
        self.map_exact(&mut sx, &mut sy);
        if sx.iter().chain(sy.iter()).any(|v| v.is_nan()) {
            self.map_exact(xs, ys);
            return;
        }
        self.approx_segment(xs, ys, sx, sy, (0, linear));
    }

    /// Recursive step: `sme_*` are the exact results at the start, middle and end of the
    /// segment; `at` is the segment's first pixel in the row and the list of linear ranges.
    fn approx_segment(
        &self,
        xs: &mut [f64],
        ys: &mut [f64],
        sme_x: [f64; 3],
        sme_y: [f64; 3],
        at: (usize, Option<&mut Vec<(usize, usize)>>),
    ) {
        let (base, mut linear) = at;
        let n = xs.len();
        let mid = (n - 1) / 2;
        let last = n - 1;
        let span = xs[last] - xs[0];
        let slope_x = (sme_x[2] - sme_x[0]) / span;
        let slope_y = (sme_y[2] - sme_y[0]) / span;
        let d_mid = xs[mid] - xs[0];
        let error = (sme_x[0] + slope_x * d_mid - sme_x[1]).abs()
            + (sme_y[0] + slope_y * d_mid - sme_y[1]).abs();
        if error <= self.max_error {
            let x0 = xs[0];
            for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
                let d = *x - x0;
                *x = sme_x[0] + slope_x * d;
                *y = sme_y[0] + slope_y * d;
            }
            if let Some(linear) = linear {
                linear.push((base, base + n));
            }
            return;
        }
        // Split into [0, mid) and [mid, n): the parent's middle starts the right half.
        let (lx, rx) = xs.split_at_mut(mid);
        let (ly, ry) = ys.split_at_mut(mid);
        let (left_len, right_len) = (lx.len(), rx.len());
        let left_exact = left_len <= 5;
        let right_exact = right_len <= 5;
        let (lm, rm) = ((left_len.saturating_sub(1)) / 2, (right_len - 1) / 2);
        // Exact results at the left half's middle and end and the right half's middle.
        let mut px = [
            lx.get(lm).copied().unwrap_or(f64::NAN),
            lx.last().copied().unwrap_or(f64::NAN),
            rx[rm],
        ];
        let mut py = [
            ly.get(lm).copied().unwrap_or(f64::NAN),
            ly.last().copied().unwrap_or(f64::NAN),
            ry[rm],
        ];
        let mut ok = true;
        if !left_exact {
            self.map_exact(&mut px[..2], &mut py[..2]);
            ok &= px[..2].iter().chain(&py[..2]).all(|v| !v.is_nan());
        }
        if !right_exact {
            self.map_exact(&mut px[2..], &mut py[2..]);
            ok &= !(px[2].is_nan() || py[2].is_nan());
        }
        if !ok {
            // Sub-midpoints failed: exact everywhere except the three known points.
            self.exact_keep_ends(lx, ly, (sme_x[0], sme_y[0]), None);
            self.exact_keep_ends(rx, ry, (sme_x[1], sme_y[1]), Some((sme_x[2], sme_y[2])));
            return;
        }
        if left_exact {
            self.exact_keep_ends(lx, ly, (sme_x[0], sme_y[0]), None);
        } else {
            self.approx_segment(
                lx,
                ly,
                [sme_x[0], px[0], px[1]],
                [sme_y[0], py[0], py[1]],
                (base, linear.as_deref_mut()),
            );
        }
        if right_exact {
            self.exact_keep_ends(rx, ry, (sme_x[1], sme_y[1]), Some((sme_x[2], sme_y[2])));
        } else {
            self.approx_segment(
                rx,
                ry,
                [sme_x[1], px[2], sme_x[2]],
                [sme_y[1], py[2], sme_y[2]],
                (base + mid, linear),
            );
        }
    }

    /// Exact transform of a segment whose first (and optionally last) results are known.
    fn exact_keep_ends(
        &self,
        xs: &mut [f64],
        ys: &mut [f64],
        first: (f64, f64),
        last: Option<(f64, f64)>,
    ) {
        let n = xs.len();
        if n == 0 {
            return;
        }
        let end = if last.is_some() {
            n.saturating_sub(1).max(1)
        } else {
            n
        };
        if end > 1 {
            self.map_exact(&mut xs[1..end], &mut ys[1..end]);
        }
        xs[0] = first.0;
        ys[0] = first.1;
        if let Some((x, y)) = last {
            if n > 1 {
                xs[n - 1] = x;
                ys[n - 1] = y;
            }
        }
    }
}

/// Wraps a longitude into [centre - 180, centre + 180].
#[inline]
fn wrap_around(lon: f64, centre: f64) -> f64 {
    if !lon.is_finite() {
        return lon;
    }
    if lon < centre - 180.0 {
        lon + 360.0 * ((centre - 180.0 - lon) / 360.0).ceil()
    } else if lon > centre + 180.0 {
        lon - 360.0 * ((lon - centre - 180.0) / 360.0).ceil()
    } else {
        lon
    }
}

/// The inverse of a geotransform computed as GDAL's `GDALInvGeoTransform` does (special-cased
/// for north-up grids), so that pixel positions on exact edges come out the same.
pub(crate) fn invert_like_gdal(gt: &GeoTransform) -> Option<[f64; 6]> {
    let g = &gt.0;
    if g[2] == 0.0 && g[4] == 0.0 && g[1] != 0.0 && g[5] != 0.0 {
        let inv = [-g[0] / g[1], 1.0 / g[1], 0.0, -g[3] / g[5], 0.0, 1.0 / g[5]];
        return inv.iter().all(|v| v.is_finite()).then_some(inv);
    }
    let det = g[1] * g[5] - g[2] * g[4];
    let magnitude = g[1].abs().max(g[2].abs()) * g[4].abs().max(g[5].abs());
    if det.abs() <= 1e-10 * magnitude || !det.is_finite() {
        return None;
    }
    let inv_det = 1.0 / det;
    let inv = [
        (g[2] * g[3] - g[0] * g[5]) * inv_det,
        g[5] * inv_det,
        -g[2] * inv_det,
        (-g[1] * g[3] + g[0] * g[4]) * inv_det,
        -g[4] * inv_det,
        g[1] * inv_det,
    ];
    inv.iter().all(|v| v.is_finite()).then_some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crs::Crs;

    #[test]
    fn approx_stays_within_threshold_of_exact() {
        // UTM source, Web Mercator destination: a curved mapping.
        let t = Transformer::new(&Crs::web_mercator(), &Crs::from_epsg(32618).unwrap()).unwrap();
        let dst = GeoTransform::north_up(-8_400_000.0, 4_900_000.0, 150.0, 150.0);
        let src = GeoTransform::north_up(300_000.0, 4_600_000.0, 30.0, 30.0);
        let approx = PixelMapper::new(&dst, &src, 10_000, 10_000, &t).unwrap();
        let exact = PixelMapper::new(&dst, &src, 10_000, 10_000, &t)
            .unwrap()
            .exact();
        let n = 1024;
        let (mut ax, mut ay) = (vec![0.0; n], vec![0.0; n]);
        let (mut ex, mut ey) = (vec![0.0; n], vec![0.0; n]);
        let mut max_err: f64 = 0.0;
        for row in [0, 300, 1023] {
            approx.map_row(row, &mut ax, &mut ay);
            exact.map_row(row, &mut ex, &mut ey);
            for i in 0..n {
                max_err = max_err.max((ax[i] - ex[i]).abs() + (ay[i] - ey[i]).abs());
            }
        }
        assert!(max_err <= 0.125 + 1e-9, "{max_err}");
        assert!(max_err > 0.0, "rows should be interpolated, not exact");
    }

    #[test]
    fn longitude_wrap() {
        assert_eq!(wrap_around(-179.0, 180.0), 181.0);
        assert_eq!(wrap_around(181.0, 0.0), -179.0);
        assert_eq!(wrap_around(725.0, 0.0), 5.0);
        assert_eq!(wrap_around(10.0, 0.0), 10.0);
    }

    #[test]
    fn gdal_style_inverse() {
        let gt = GeoTransform::north_up(100.0, 50.0, 0.1, 0.1);
        let inv = invert_like_gdal(&gt).unwrap();
        assert_eq!(inv[1], 10.0);
        let rot = GeoTransform([100.0, 2.0, 0.5, 50.0, 0.25, -3.0]);
        let inv = invert_like_gdal(&rot).unwrap();
        let (x, y) = rot.apply(10.5, 7.25);
        let c = inv[0] + x * inv[1] + y * inv[2];
        let r = inv[3] + x * inv[4] + y * inv[5];
        assert!((c - 10.5).abs() < 1e-9 && (r - 7.25).abs() < 1e-9);
        assert!(invert_like_gdal(&GeoTransform([0.0, 1.0, 1.0, 0.0, 1.0, 1.0])).is_none());
    }
}
