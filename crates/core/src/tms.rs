//! Tile matrix sets (WebMercatorQuad first) and tile math.
//!
//! A [`TileMatrixSet`] is a value: its CRS, the top-left origin of the matrix, its extent, and
//! the size of one tile at zoom 0. Everything else (tile bounds, per-zoom resolution, the tile
//! grid's geotransform, lon/lat → tile, tiles covering a box) is derived from it, with the
//! same numerics as `mercantile` / `morecantile` (the libraries behind rio-tiler and TiTiler),
//! so tile edges land on exactly the same coordinates.

use crate::crs::{lonlat_to_web_mercator, Crs, WEB_MERCATOR_RADIUS_M};
use crate::geo::{GeoBounds, GeoTransform};
use crate::CoreError;

/// Highest zoom level a [`TileCoord`] may have (2^30 tiles per side still fits in `u32`).
pub const MAX_ZOOM: u8 = 30;

/// mercantile's tolerance for points on the right/bottom edge of a tile (they count in the
/// next tile), in fractions of the world.
const TILE_EPSILON: f64 = 1e-14;
/// mercantile's inset of the lower-right corner when listing tiles covering a box, degrees.
const LNGLAT_EPSILON: f64 = 1e-11;
/// mercantile's clamp of latitudes before listing tiles: the square world's limit
/// ([`crate::crs::WEB_MERCATOR_MAX_LAT`]) rounded up at the sixth decimal, as mercantile
/// writes it, so tile lists match mercantile's at the poles.
const MERCANTILE_MAX_LAT: f64 = 85.051_129;

/// A validated tile address: zoom `z` ≤ [`MAX_ZOOM`], column `x` and row `y` < 2^z (row 0 at
/// the top, XYZ convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileCoord {
    z: u8,
    x: u32,
    y: u32,
}

impl TileCoord {
    /// A tile of a quad-tree matrix set (2^z × 2^z tiles at zoom z).
    pub fn new(z: u8, x: u32, y: u32) -> Result<Self, CoreError> {
        if z > MAX_ZOOM {
            return Err(CoreError::invalid(
                "tile",
                format!("zoom {z} is above the maximum {MAX_ZOOM}"),
            ));
        }
        let n = 1u64 << z;
        if u64::from(x) >= n || u64::from(y) >= n {
            return Err(CoreError::invalid(
                "tile",
                format!("{z}/{x}/{y}: x and y must be below {n} at zoom {z}"),
            ));
        }
        Ok(Self { z, x, y })
    }

    pub fn z(&self) -> u8 {
        self.z
    }

    pub fn x(&self) -> u32 {
        self.x
    }

    pub fn y(&self) -> u32 {
        self.y
    }

    /// The tile one zoom level up that contains this one (`None` at zoom 0).
    pub fn parent(&self) -> Option<Self> {
        (self.z > 0).then(|| Self {
            z: self.z - 1,
            x: self.x / 2,
            y: self.y / 2,
        })
    }
}

impl std::fmt::Display for TileCoord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

/// An inclusive rectangle of tiles at one zoom level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileRange {
    pub z: u8,
    pub min_x: u32,
    pub min_y: u32,
    pub max_x: u32,
    pub max_y: u32,
}

impl TileRange {
    /// Number of tiles in the range.
    pub fn count(&self) -> u64 {
        (u64::from(self.max_x) - u64::from(self.min_x) + 1)
            * (u64::from(self.max_y) - u64::from(self.min_y) + 1)
    }

    /// The tiles, row by row.
    pub fn iter(&self) -> impl Iterator<Item = TileCoord> + '_ {
        let z = self.z;
        (self.min_y..=self.max_y)
            .flat_map(move |y| (self.min_x..=self.max_x).map(move |x| TileCoord { z, x, y }))
    }
}

/// Which well-known matrix set this is (drives the lon/lat → matrix-CRS formulas).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TmsKind {
    WebMercatorQuad,
}

/// A tile matrix set (OGC 2D TMS): a quad tree of tiles over a CRS extent.
#[derive(Debug, Clone, PartialEq)]
pub struct TileMatrixSet {
    kind: TmsKind,
    id: &'static str,
    crs: Crs,
    /// Top-left corner of the matrix, CRS units.
    origin_x: f64,
    origin_y: f64,
    /// Extent covered by the matrix, CRS units.
    extent: GeoBounds,
    /// Nominal tile size in pixels (the `tileWidth`/`tileHeight` of the definition).
    tile_size_px: u32,
    /// Pixel size at zoom 0 for `tile_size_px` tiles, CRS units.
    resolution_z0: f64,
    /// Number of tile columns and rows at zoom 0.
    matrix_width_z0: u32,
    matrix_height_z0: u32,
}

impl TileMatrixSet {
    /// OGC WebMercatorQuad: EPSG:3857, one 256-px tile at zoom 0 covering ±20 037 508.34 m.
    pub fn web_mercator_quad() -> Self {
        let half = std::f64::consts::PI * WEB_MERCATOR_RADIUS_M;
        Self {
            kind: TmsKind::WebMercatorQuad,
            id: "WebMercatorQuad",
            crs: Crs::web_mercator(),
            origin_x: -half,
            origin_y: half,
            extent: GeoBounds {
                west: -half,
                south: -half,
                east: half,
                north: half,
            },
            tile_size_px: 256,
            resolution_z0: 2.0 * half / 256.0,
            matrix_width_z0: 1,
            matrix_height_z0: 1,
        }
    }

    /// The OGC identifier (`WebMercatorQuad`).
    pub fn id(&self) -> &'static str {
        self.id
    }

    pub fn crs(&self) -> &Crs {
        &self.crs
    }

    /// Extent of the matrix set in its CRS.
    pub fn extent(&self) -> GeoBounds {
        self.extent
    }

    /// Nominal tile size in pixels.
    pub fn tile_size_px(&self) -> u32 {
        self.tile_size_px
    }

    /// Tile columns at zoom `z` (rows for square sets).
    pub fn matrix_width(&self, z: u8) -> u64 {
        u64::from(self.matrix_width_z0) << z.min(MAX_ZOOM)
    }

    pub fn matrix_height(&self, z: u8) -> u64 {
        u64::from(self.matrix_height_z0) << z.min(MAX_ZOOM)
    }

    /// Pixel size (CRS units) at zoom `z` for the nominal tile size.
    pub fn resolution(&self, z: u8) -> f64 {
        self.resolution_z0 / pow2(z)
    }

    /// Pixel size (CRS units) at zoom `z` when tiles are rendered `tile_size_px` wide (e.g. 512
    /// for high-DPI tiles: half the nominal resolution).
    pub fn resolution_for(&self, z: u8, tile_size_px: u32) -> f64 {
        self.resolution(z) * f64::from(self.tile_size_px) / f64::from(tile_size_px.max(1))
    }

    /// Size of one tile at zoom `z`, CRS units.
    fn tile_span(&self, z: u8) -> f64 {
        self.resolution(z) * f64::from(self.tile_size_px)
    }

    /// The lowest zoom whose resolution is at least as fine as `resolution` (CRS units per
    /// pixel at the nominal tile size), capped at [`MAX_ZOOM`].
    pub fn zoom_for_resolution(&self, resolution: f64) -> u8 {
        (0..=MAX_ZOOM)
            .find(|&z| self.resolution(z) <= resolution * (1.0 + 1e-9))
            .unwrap_or(MAX_ZOOM)
    }

    /// Bounds of a tile in the matrix set's CRS (metres for WebMercatorQuad), computed as
    /// morecantile does (origin + index × tile span).
    pub fn tile_bounds(&self, tile: TileCoord) -> GeoBounds {
        let span = self.tile_span(tile.z);
        let (x, y) = (f64::from(tile.x), f64::from(tile.y));
        GeoBounds {
            west: self.origin_x + x * span,
            east: self.origin_x + (x + 1.0) * span,
            north: self.origin_y - y * span,
            south: self.origin_y - (y + 1.0) * span,
        }
    }

    /// The geotransform of a tile's pixel grid when rendered `tile_size_px` wide (256 or 512),
    /// as rasterio's `from_bounds(tile bounds, size, size)`.
    pub fn tile_transform(&self, tile: TileCoord, tile_size_px: u32) -> GeoTransform {
        let b = self.tile_bounds(tile);
        let n = f64::from(tile_size_px.max(1));
        GeoTransform([
            b.west,
            (b.east - b.west) / n,
            0.0,
            b.north,
            0.0,
            (b.south - b.north) / n,
        ])
    }

    /// WGS84 bounds (degrees) of a tile, as mercantile's `bounds()`.
    pub fn tile_wgs84_bounds(&self, tile: TileCoord) -> GeoBounds {
        match self.kind {
            TmsKind::WebMercatorQuad => {
                let (west, north) = web_mercator_ul(tile.x, tile.y, tile.z);
                let (east, south) = web_mercator_ul(tile.x + 1, tile.y + 1, tile.z);
                GeoBounds {
                    west,
                    south,
                    east,
                    north,
                }
            }
        }
    }

    /// The tile containing a WGS84 point at zoom `z`, as mercantile's `tile()`: points outside
    /// the world clamp to the edge tiles; points on a tile's right/bottom edge belong to the
    /// next tile. Errors for invalid zooms and latitudes at or beyond the poles.
    pub fn tile_for_lonlat(&self, lon: f64, lat: f64, z: u8) -> Result<TileCoord, CoreError> {
        if z > MAX_ZOOM {
            return Err(CoreError::invalid(
                "zoom",
                format!("{z} is above the maximum {MAX_ZOOM}"),
            ));
        }
        let (fx, fy) = self.fraction_of_world(lon, lat)?;
        let n = pow2(z);
        let max = self.matrix_width(z) - 1;
        let to_index = |f: f64| -> u32 {
            let i = if f <= 0.0 {
                0
            } else if f >= 1.0 {
                max
            } else {
                // Truncation of a value in [0, 2^30]: exact.
                let i = ((f + TILE_EPSILON) * n).floor() as u64;
                i.min(max)
            };
            u32::try_from(i).unwrap_or(u32::MAX)
        };
        TileCoord::new(z, to_index(fx), to_index(fy))
    }

    /// Position of a WGS84 point as a fraction of the world (0,0 = top-left), mercantile's
    /// `_xy`.
    fn fraction_of_world(&self, lon: f64, lat: f64) -> Result<(f64, f64), CoreError> {
        match self.kind {
            TmsKind::WebMercatorQuad => {
                let sin_lat = lat.to_radians().sin();
                let y =
                    0.5 - 0.25 * ((1.0 + sin_lat) / (1.0 - sin_lat)).ln() / std::f64::consts::PI;
                if !(lon.is_finite() && y.is_finite()) {
                    return Err(CoreError::invalid(
                        "coordinates",
                        format!("cannot place lon {lon}, lat {lat} in {}", self.id),
                    ));
                }
                Ok((lon / 360.0 + 0.5, y))
            }
        }
    }

    /// The tiles at zoom `z` intersecting a WGS84 box, as mercantile's `tiles()`: latitudes
    /// clamp to ±85.051129°, a box with `west > east` crosses the antimeridian and yields two
    /// ranges, the right/bottom edges are inset by 1e-11° so that a box ending on a tile edge
    /// does not include the next tile.
    pub fn tiles_covering(&self, bounds: &GeoBounds, z: u8) -> Result<Vec<TileRange>, CoreError> {
        let values = [bounds.west, bounds.south, bounds.east, bounds.north];
        if values.iter().any(|v| !v.is_finite()) || bounds.south > bounds.north {
            return Err(CoreError::invalid(
                "bounds",
                format!("{bounds:?} is not a valid WGS84 box"),
            ));
        }
        let boxes: Vec<(f64, f64, f64, f64)> = if bounds.west > bounds.east {
            vec![
                (-180.0, bounds.south, bounds.east, bounds.north),
                (bounds.west, bounds.south, 180.0, bounds.north),
            ]
        } else {
            vec![(bounds.west, bounds.south, bounds.east, bounds.north)]
        };
        let mut out = Vec::with_capacity(boxes.len());
        for (w, s, e, n) in boxes {
            let w = w.max(-180.0);
            let s = s.max(-MERCANTILE_MAX_LAT);
            let e = e.min(180.0);
            let n = n.min(MERCANTILE_MAX_LAT);
            let ul = self.tile_for_lonlat(w, n, z)?;
            let lr = self.tile_for_lonlat(e - LNGLAT_EPSILON, s + LNGLAT_EPSILON, z)?;
            if lr.x < ul.x || lr.y < ul.y {
                continue;
            }
            out.push(TileRange {
                z,
                min_x: ul.x,
                min_y: ul.y,
                max_x: lr.x,
                max_y: lr.y,
            });
        }
        Ok(out)
    }

    /// A WGS84 point in the matrix set's CRS (`None` at the poles).
    pub fn project_lonlat(&self, lon: f64, lat: f64) -> Option<(f64, f64)> {
        match self.kind {
            TmsKind::WebMercatorQuad => lonlat_to_web_mercator(lon, lat),
        }
    }
}

/// 2^z as f64 (exact).
fn pow2(z: u8) -> f64 {
    f64::from(1u32 << z.min(MAX_ZOOM))
}

/// Upper-left corner (lon, lat) of tile (x, y) at zoom z, mercantile's `ul()`.
fn web_mercator_ul(x: u32, y: u32, z: u8) -> (f64, f64) {
    let n = pow2(z);
    let lon = f64::from(x) / n * 360.0 - 180.0;
    let lat = (std::f64::consts::PI * (1.0 - 2.0 * f64::from(y) / n))
        .sinh()
        .atan()
        .to_degrees();
    (lon, lat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(z: u8, x: u32, y: u32) -> TileCoord {
        TileCoord::new(z, x, y).unwrap()
    }

    #[test]
    fn tile_coord_validation() {
        assert!(TileCoord::new(0, 0, 0).is_ok());
        assert!(TileCoord::new(0, 1, 0).is_err());
        assert!(TileCoord::new(3, 7, 7).is_ok());
        assert!(TileCoord::new(3, 8, 0).is_err());
        assert!(TileCoord::new(30, (1 << 30) - 1, 0).is_ok());
        assert!(TileCoord::new(31, 0, 0).is_err());
        let t = tile(12, 1194, 1550);
        assert_eq!((t.z(), t.x(), t.y()), (12, 1194, 1550));
        assert_eq!(t.to_string(), "12/1194/1550");
        assert_eq!(t.parent(), Some(tile(11, 597, 775)));
        assert_eq!(tile(0, 0, 0).parent(), None);
    }

    // Expected values below are mercantile 1.2.1 / morecantile 6 outputs (printed with
    // Python's repr), e.g. `mercantile.xy_bounds(1000, 2000, 12)`.
    #[test]
    fn tile_bounds_match_morecantile() {
        let tms = TileMatrixSet::web_mercator_quad();
        let b = tms.tile_bounds(tile(0, 0, 0));
        assert_eq!(b.west, -20_037_508.342_789_244);
        assert_eq!(b.north, 20_037_508.342_789_244);
        assert_eq!(b.east, 20_037_508.342_789_244);
        let b = tms.tile_bounds(tile(12, 1000, 2000));
        assert_eq!(b.west, -10_253_568.722_286_683);
        assert_eq!(b.east, -10_243_784.782_666_18);
        assert_eq!(b.north, 469_629.101_784_121_25);
        assert_eq!(b.south, 459_845.162_163_618_95);
        let b = tms.tile_bounds(tile(3, 1, 2));
        assert_eq!(b.west, -15_028_131.257_091_932);
        assert_eq!(b.north, 10_018_754.171_394_622);
    }

    #[test]
    fn resolution_per_zoom() {
        let tms = TileMatrixSet::web_mercator_quad();
        assert_eq!(tms.resolution(0), 156_543.033_928_040_97);
        assert!((tms.resolution(18) - 0.597_164_283_477_939_5).abs() < 1e-15);
        assert_eq!(tms.resolution_for(3, 512), tms.resolution(4));
        assert_eq!(tms.zoom_for_resolution(30.0), 13);
        assert_eq!(tms.zoom_for_resolution(tms.resolution(7)), 7);
        let gt = tms.tile_transform(tile(1, 1, 0), 512);
        assert_eq!(gt.0[0], 0.0);
        assert_eq!(gt.0[3], 20_037_508.342_789_244);
        assert!((gt.0[1] - tms.resolution(2)).abs() < 1e-9);
        assert!((gt.0[5] + tms.resolution(2)).abs() < 1e-9);
    }

    #[test]
    fn lonlat_to_tile_matches_mercantile() {
        let tms = TileMatrixSet::web_mercator_quad();
        // mercantile.tile(-75.0, 40.0, 12) == Tile(x=1194, y=1550, z=12)
        assert_eq!(
            tms.tile_for_lonlat(-75.0, 40.0, 12).unwrap(),
            tile(12, 1194, 1550)
        );
        // Outside the world: clamped to the edge tiles.
        assert_eq!(tms.tile_for_lonlat(-190.0, 89.0, 2).unwrap(), tile(2, 0, 0));
        assert_eq!(tms.tile_for_lonlat(180.0, -89.0, 2).unwrap(), tile(2, 3, 3));
        // Exactly on a tile corner: belongs to the tile to the right/below.
        assert_eq!(tms.tile_for_lonlat(0.0, 0.0, 1).unwrap(), tile(1, 1, 1));
        assert!(tms.tile_for_lonlat(0.0, 90.0, 3).is_err());
        assert!(tms.tile_for_lonlat(0.0, 0.0, 31).is_err());
    }

    #[test]
    fn wgs84_bounds_match_mercantile() {
        let tms = TileMatrixSet::web_mercator_quad();
        // mercantile.bounds(1000, 2000, 12)
        let b = tms.tile_wgs84_bounds(tile(12, 1000, 2000));
        assert_eq!(b.west, -92.109_375);
        assert_eq!(b.east, -92.021_484_375);
        assert!((b.south - 4.127_285_323_245_364).abs() < 1e-12);
        assert!((b.north - 4.214_943_141_390_642).abs() < 1e-12);
        let b = tms.tile_wgs84_bounds(tile(0, 0, 0));
        assert!((b.north - 85.051_128_779_806_6).abs() < 1e-12);
        // The tile containing a point contains it.
        let t = tms.tile_for_lonlat(6.13, 49.61, 15).unwrap();
        let b = tms.tile_wgs84_bounds(t);
        assert!(b.west <= 6.13 && 6.13 < b.east && b.south < 49.61 && 49.61 <= b.north);
    }

    #[test]
    fn tiles_covering_box() {
        let tms = TileMatrixSet::web_mercator_quad();
        // mercantile.tiles(170, -10, -170, 10, [3]) crosses the antimeridian:
        // [(0,3), (0,4), (7,3), (7,4)] at z3.
        let ranges = tms
            .tiles_covering(
                &GeoBounds {
                    west: 170.0,
                    south: -10.0,
                    east: -170.0,
                    north: 10.0,
                },
                3,
            )
            .unwrap();
        let tiles: Vec<_> = ranges.iter().flat_map(TileRange::iter).collect();
        let mut xy: Vec<_> = tiles.iter().map(|t| (t.x(), t.y())).collect();
        xy.sort_unstable();
        assert_eq!(xy, vec![(0, 3), (0, 4), (7, 3), (7, 4)]);

        // A box that ends exactly on tile edges does not spill into the next tiles.
        let b = tms.tile_wgs84_bounds(tile(5, 10, 12));
        let r = tms.tiles_covering(&b, 5).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].count(), 1);
        assert_eq!(r[0].iter().next(), Some(tile(5, 10, 12)));
        // The whole world at z2: 16 tiles.
        let world = GeoBounds {
            west: -180.0,
            south: -90.0,
            east: 180.0,
            north: 90.0,
        };
        assert_eq!(tms.tiles_covering(&world, 2).unwrap()[0].count(), 16);
        assert!(tms
            .tiles_covering(
                &GeoBounds {
                    west: f64::NAN,
                    ..world
                },
                2
            )
            .is_err());
    }
}
