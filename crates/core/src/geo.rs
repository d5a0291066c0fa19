//! Affine geotransforms and bounding boxes.

use serde::{Deserialize, Serialize};

/// A GDAL-ordered affine transform from pixel (col, row) to CRS coordinates:
/// `x = c0 + col*c1 + row*c2`, `y = c3 + col*c4 + row*c5`, where (0, 0) is the outer corner of
/// the top-left pixel (PixelIsArea convention).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoTransform(pub [f64; 6]);

impl GeoTransform {
    /// A north-up transform from an origin (top-left corner) and pixel sizes.
    pub fn north_up(origin_x: f64, origin_y: f64, pixel_width: f64, pixel_height: f64) -> Self {
        Self([origin_x, pixel_width, 0.0, origin_y, 0.0, -pixel_height])
    }

    /// CRS coordinates of pixel position (col, row) (fractional positions allowed).
    #[inline]
    pub fn apply(&self, col: f64, row: f64) -> (f64, f64) {
        let g = &self.0;
        (
            g[0] + col * g[1] + row * g[2],
            g[3] + col * g[4] + row * g[5],
        )
    }

    /// The inverse transform, or `None` when the matrix is singular.
    pub fn invert(&self) -> Option<Self> {
        let g = &self.0;
        let det = g[1] * g[5] - g[2] * g[4];
        if det == 0.0 || !det.is_finite() {
            return None;
        }
        let inv_det = 1.0 / det;
        let a = g[5] * inv_det;
        let b = -g[2] * inv_det;
        let d = -g[4] * inv_det;
        let e = g[1] * inv_det;
        Some(Self([
            -g[0] * a - g[3] * b,
            a,
            b,
            -g[0] * d - g[3] * e,
            d,
            e,
        ]))
    }

    /// True when there is no rotation or shear.
    pub fn is_axis_aligned(&self) -> bool {
        self.0[2] == 0.0 && self.0[4] == 0.0
    }

    /// The mean absolute pixel size in CRS units (x, y).
    pub fn resolution(&self) -> (f64, f64) {
        let g = &self.0;
        (g[1].hypot(g[4]), g[2].hypot(g[5]))
    }

    /// The transform of the same grid resampled to `width` x `height` pixels, given that this
    /// grid is `full_width` x `full_height` (used for overviews).
    pub fn scaled(
        &self,
        full_width: usize,
        full_height: usize,
        width: usize,
        height: usize,
    ) -> Self {
        let (sx, sy) = (
            full_width as f64 / width as f64,
            full_height as f64 / height as f64,
        );
        let g = &self.0;
        Self([g[0], g[1] * sx, g[2] * sy, g[3], g[4] * sx, g[5] * sy])
    }

    /// Bounds of a `width` x `height` grid in its CRS.
    pub fn bounds(&self, width: usize, height: usize) -> GeoBounds {
        let (w, h) = (width as f64, height as f64);
        let corners = [
            self.apply(0.0, 0.0),
            self.apply(w, 0.0),
            self.apply(0.0, h),
            self.apply(w, h),
        ];
        let mut b = GeoBounds {
            west: f64::INFINITY,
            south: f64::INFINITY,
            east: f64::NEG_INFINITY,
            north: f64::NEG_INFINITY,
        };
        for (x, y) in corners {
            b.west = b.west.min(x);
            b.east = b.east.max(x);
            b.south = b.south.min(y);
            b.north = b.north.max(y);
        }
        b
    }
}

/// An axis-aligned box in some CRS (for WGS84: degrees of longitude and latitude).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoBounds {
    pub west: f64,
    pub south: f64,
    pub east: f64,
    pub north: f64,
}

impl GeoBounds {
    pub fn intersects(&self, other: &GeoBounds) -> bool {
        self.west < other.east
            && other.west < self.east
            && self.south < other.north
            && other.south < self.north
    }

    pub fn width(&self) -> f64 {
        self.east - self.west
    }

    pub fn height(&self) -> f64 {
        self.north - self.south
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invert_roundtrips() {
        let g = GeoTransform([100.0, 2.0, 0.5, 50.0, 0.25, -3.0]);
        let inv = g.invert().unwrap();
        let (x, y) = g.apply(10.5, 7.25);
        let (c, r) = inv.apply(x, y);
        assert!((c - 10.5).abs() < 1e-9 && (r - 7.25).abs() < 1e-9);
    }

    #[test]
    fn bounds_of_north_up() {
        let g = GeoTransform::north_up(5.0, 50.0, 0.5, 0.25);
        let b = g.bounds(10, 20);
        assert_eq!(
            b,
            GeoBounds {
                west: 5.0,
                south: 45.0,
                east: 10.0,
                north: 50.0
            }
        );
    }
}
