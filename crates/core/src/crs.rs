//! Coordinate reference systems and transforms between them.
//!
//! A [`Crs`] is an EPSG code (when known) plus a PROJ.4 definition. A [`Transformer`] maps
//! coordinates from one CRS to another; geographic coordinates are always degrees
//! (longitude = x, latitude = y), projected ones are in the CRS's linear unit.
//!
//! Transforms run on `proj4rs` (pure Rust, PROJ.4 semantics: datum shifts go through a WGS84
//! pivot with `+towgs84` 3- or 7-parameter Helmert shifts). Two cases skip it entirely:
//! identical CRSs (no-op) and EPSG:4326 ↔ EPSG:3857, which use the closed-form spherical
//! Mercator formulas PROJ itself uses for that pair.
//!
//! Grid-based datum shifts (`+nadgrids`, e.g. NAD27's `@conus`) need grid files that Kiln does
//! not ship and `proj4rs` does not load by default: such CRSs fall back to *no* datum shift
//! (the geodetic coordinates are taken as WGS84 ones). That is what PROJ does too when the
//! grids are not installed (its "ballpark" transformation), so results match a GDAL build
//! without the grid files; the error is up to ~100 m for NAD27 in CONUS.

use serde::{Deserialize, Serialize};

use proj4rs::errors::Error as ProjError;
use proj4rs::transform::{Transform, TransformClosure};
use proj4rs::Proj;

use crate::CoreError;

/// Radius of the WGS 84 / Pseudo-Mercator sphere (EPSG:3857), metres.
pub const WEB_MERCATOR_RADIUS_M: f64 = 6_378_137.0;

/// Web Mercator for `proj4rs`, without the null grid shift of the EPSG definition.
const WEB_MERCATOR_NO_DATUM: &str =
    "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +no_defs";

/// EPSG codes (current and deprecated/ESRI aliases) of the spherical Web Mercator CRS.
const WEB_MERCATOR_CODES: [u32; 5] = [3857, 900_913, 3785, 102_100, 102_113];

/// A coordinate reference system: an EPSG code when one is known, and always a PROJ.4-style
/// definition string that `proj4rs` can build a projection from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crs {
    /// EPSG code, when the source names one.
    pub epsg: Option<u32>,
    /// PROJ.4 definition (`+proj=... +units=m +no_defs`).
    pub proj4: String,
}

impl Crs {
    /// The CRS of an EPSG code, from the offline definitions of `crs-definitions`.
    pub fn from_epsg(code: u32) -> Result<Self, CoreError> {
        let def = u16::try_from(code)
            .ok()
            .and_then(crs_definitions::from_code)
            .ok_or_else(|| {
                CoreError::unsupported("CRS", format!("EPSG:{code} is not a known EPSG code"))
            })?;
        if def.proj4.is_empty() {
            return Err(CoreError::unsupported(
                "CRS",
                format!("EPSG:{code} has no PROJ.4 definition"),
            ));
        }
        Ok(Self {
            epsg: Some(code),
            proj4: def.proj4.to_string(),
        })
    }

    /// A CRS from a PROJ.4 definition with no EPSG code.
    pub fn from_proj4(proj4: impl Into<String>) -> Self {
        Self {
            epsg: None,
            proj4: proj4.into(),
        }
    }

    /// WGS 84 longitude/latitude in degrees (EPSG:4326).
    pub fn wgs84() -> Self {
        Self {
            epsg: Some(4326),
            proj4: "+proj=longlat +datum=WGS84 +no_defs".into(),
        }
    }

    /// WGS 84 / Pseudo-Mercator (EPSG:3857).
    pub fn web_mercator() -> Self {
        Self {
            epsg: Some(3857),
            proj4: "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +wktext +no_defs".into(),
        }
    }

    /// A short human-readable name: `EPSG:4326` or the PROJ.4 string.
    pub fn name(&self) -> String {
        match self.epsg {
            Some(code) => format!("EPSG:{code}"),
            None => self.proj4.clone(),
        }
    }

    /// True for longitude/latitude CRSs (coordinates in degrees).
    pub fn is_geographic(&self) -> bool {
        self.proj_name()
            .is_some_and(|p| matches!(p, "longlat" | "latlong" | "lonlat" | "latlon"))
    }

    /// True for WGS 84 longitude/latitude (EPSG:4326 or an equivalent PROJ.4 string).
    pub fn is_wgs84(&self) -> bool {
        if let Some(code) = self.epsg {
            return code == 4326;
        }
        self.is_geographic()
            && !self.has_param("towgs84")
            && !self.has_param("pm")
            && (self.param("datum") == Some("WGS84")
                || (self.param("datum").is_none() && self.param("ellps") == Some("WGS84")))
    }

    /// True for the spherical Web Mercator (EPSG:3857 and its aliases).
    pub fn is_web_mercator(&self) -> bool {
        if let Some(code) = self.epsg {
            return WEB_MERCATOR_CODES.contains(&code);
        }
        self.proj4 == Self::web_mercator().proj4
    }

    /// The value of `+proj=`.
    fn proj_name(&self) -> Option<&str> {
        self.param("proj")
    }

    /// The value of a `+key=value` parameter of the PROJ.4 string.
    fn param(&self, key: &str) -> Option<&str> {
        self.proj4.split_whitespace().find_map(|tok| {
            let (k, v) = tok.trim_start_matches('+').split_once('=')?;
            (k == key).then_some(v)
        })
    }

    fn has_param(&self, key: &str) -> bool {
        self.proj4.split_whitespace().any(|tok| {
            let tok = tok.trim_start_matches('+');
            tok == key || tok.split_once('=').is_some_and(|(k, _)| k == key)
        })
    }

    /// True when both CRSs denote the same definition (same EPSG code, or the same string).
    fn same_as(&self, other: &Crs) -> bool {
        match (self.epsg, other.epsg) {
            (Some(a), Some(b)) if a == b => true,
            _ => {
                (self.is_web_mercator() && other.is_web_mercator())
                    || (self.is_wgs84() && other.is_wgs84())
                    || self
                        .proj4
                        .split_whitespace()
                        .eq(other.proj4.split_whitespace())
            }
        }
    }
}

/// How a [`Transformer`] computes.
#[derive(Debug, Clone)]
enum Kind {
    /// Same CRS: coordinates pass through.
    Identity,
    /// EPSG:4326 → EPSG:3857, closed form.
    LonLatToWebMercator,
    /// EPSG:3857 → EPSG:4326, closed form.
    WebMercatorToLonLat,
    /// Anything else, through `proj4rs`.
    Proj(Box<ProjPair>),
}

#[derive(Clone)]
struct ProjPair {
    src: Proj,
    dst: Proj,
}

impl std::fmt::Debug for ProjPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjPair")
            .field("src", &self.src.projname())
            .field("dst", &self.dst.projname())
            .finish()
    }
}

/// A reusable coordinate transform from one CRS to another.
///
/// Build it once per (source, destination) pair and share it (it is `Send + Sync` and
/// immutable). Points that cannot be transformed (outside the projection's domain, beyond the
/// poles, non-finite input) come out as NaN; they never fail the whole batch.
#[derive(Debug, Clone)]
pub struct Transformer {
    kind: Kind,
    src_geographic: bool,
    dst_geographic: bool,
}

impl Transformer {
    /// A transformer from `src` to `dst` coordinates.
    pub fn new(src: &Crs, dst: &Crs) -> Result<Self, CoreError> {
        let src_geographic = src.is_geographic();
        let dst_geographic = dst.is_geographic();
        let kind = if src.same_as(dst) {
            Kind::Identity
        } else if src.is_wgs84() && dst.is_web_mercator() {
            Kind::LonLatToWebMercator
        } else if src.is_web_mercator() && dst.is_wgs84() {
            Kind::WebMercatorToLonLat
        } else {
            Kind::Proj(Box::new(ProjPair {
                src: build_proj(src)?,
                dst: build_proj(dst)?,
            }))
        };
        Ok(Self {
            kind,
            src_geographic,
            dst_geographic,
        })
    }

    /// True when the transform is a no-op (both CRSs are the same).
    pub fn is_identity(&self) -> bool {
        matches!(self.kind, Kind::Identity)
    }

    /// True when this is the closed-form EPSG:4326 ↔ EPSG:3857 transform.
    pub fn is_lonlat_web_mercator(&self) -> bool {
        matches!(
            self.kind,
            Kind::LonLatToWebMercator | Kind::WebMercatorToLonLat
        )
    }

    /// True when the source CRS is geographic (degrees).
    pub fn src_is_geographic(&self) -> bool {
        self.src_geographic
    }

    /// True when the destination CRS is geographic (degrees).
    pub fn dst_is_geographic(&self) -> bool {
        self.dst_geographic
    }

    /// Transforms points in place. Points that fail become NaN; the call only errors when the
    /// two slices differ in length.
    pub fn transform_points(&self, xs: &mut [f64], ys: &mut [f64]) -> Result<(), CoreError> {
        if xs.len() != ys.len() {
            return Err(CoreError::invalid(
                "coordinates",
                format!("{} x values but {} y values", xs.len(), ys.len()),
            ));
        }
        match &self.kind {
            Kind::Identity => {
                for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
                    if !(x.is_finite() && y.is_finite()) {
                        *x = f64::NAN;
                        *y = f64::NAN;
                    }
                }
            }
            Kind::LonLatToWebMercator => {
                for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
                    (*x, *y) = lonlat_to_web_mercator(*x, *y).unwrap_or((f64::NAN, f64::NAN));
                }
            }
            Kind::WebMercatorToLonLat => {
                for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
                    (*x, *y) = web_mercator_to_lonlat(*x, *y).unwrap_or((f64::NAN, f64::NAN));
                }
            }
            Kind::Proj(pair) => self.transform_proj(pair, xs, ys),
        }
        Ok(())
    }

    /// Transforms one point; `None` when it cannot be transformed.
    pub fn transform_point(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let (mut xs, mut ys) = ([x], [y]);
        self.transform_points(&mut xs, &mut ys).ok()?;
        (xs[0].is_finite() && ys[0].is_finite()).then_some((xs[0], ys[0]))
    }

    fn transform_proj(&self, pair: &ProjPair, xs: &mut [f64], ys: &mut [f64]) {
        if self.src_geographic {
            for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
                *x = x.to_radians();
                *y = y.to_radians();
            }
        }
        let mut points = PointSlices { xs, ys };
        // `PointSlices` turns per-point failures into NaN and never reports an error, so an
        // error here can only come from a whole-CRS problem (e.g. no inverse projection).
        if proj4rs::transform::transform(&pair.src, &pair.dst, &mut points).is_err() {
            points.xs.fill(f64::NAN);
            points.ys.fill(f64::NAN);
            return;
        }
        for (x, y) in points.xs.iter_mut().zip(points.ys.iter_mut()) {
            if self.dst_geographic {
                *x = x.to_degrees();
                *y = y.to_degrees();
            }
            if !(x.is_finite() && y.is_finite()) {
                *x = f64::NAN;
                *y = f64::NAN;
            }
        }
    }
}

/// EPSG:4326 degrees → EPSG:3857 metres (PROJ's spherical `merc` forward); `None` at or
/// beyond the poles or for non-finite input.
#[inline]
pub fn lonlat_to_web_mercator(lon: f64, lat: f64) -> Option<(f64, f64)> {
    if !(lon.is_finite() && lat.abs() < 90.0) {
        return None;
    }
    let x = WEB_MERCATOR_RADIUS_M * lon.to_radians();
    let y = WEB_MERCATOR_RADIUS_M
        * (std::f64::consts::FRAC_PI_4 + 0.5 * lat.to_radians())
            .tan()
            .ln();
    y.is_finite().then_some((x, y))
}

/// EPSG:3857 metres → EPSG:4326 degrees (PROJ's spherical `merc` inverse). Longitudes are
/// wrapped into [-180, 180] as PROJ does.
#[inline]
pub fn web_mercator_to_lonlat(x: f64, y: f64) -> Option<(f64, f64)> {
    if !(x.is_finite() && y.is_finite()) {
        return None;
    }
    let lon = wrap_longitude((x / WEB_MERCATOR_RADIUS_M).to_degrees());
    let lat = (std::f64::consts::FRAC_PI_2 - 2.0 * (-y / WEB_MERCATOR_RADIUS_M).exp().atan())
        .to_degrees();
    Some((lon, lat))
}

/// Web Mercator northing (metres) of a latitude (degrees), for per-row fast paths.
#[inline]
pub(crate) fn web_mercator_y(lat: f64) -> f64 {
    if lat.abs() >= 90.0 || lat.is_nan() {
        return f64::NAN;
    }
    WEB_MERCATOR_RADIUS_M
        * (std::f64::consts::FRAC_PI_4 + 0.5 * lat.to_radians())
            .tan()
            .ln()
}

/// Latitude (degrees) of a Web Mercator northing (metres), for per-row fast paths.
#[inline]
pub(crate) fn web_mercator_lat(y: f64) -> f64 {
    if !y.is_finite() {
        return f64::NAN;
    }
    (std::f64::consts::FRAC_PI_2 - 2.0 * (-y / WEB_MERCATOR_RADIUS_M).exp().atan()).to_degrees()
}

/// A longitude wrapped into [-180, 180] (values already inside are returned unchanged).
#[inline]
pub fn wrap_longitude(lon: f64) -> f64 {
    if (-180.0..=180.0).contains(&lon) || !lon.is_finite() {
        return lon;
    }
    let wrapped = (lon + 180.0).rem_euclid(360.0) - 180.0;
    // rem_euclid maps +180 to -180; keep the sign of the input at the seam.
    if wrapped == -180.0 && lon > 0.0 {
        180.0
    } else {
        wrapped
    }
}

/// Builds a `proj4rs` projection, falling back to "no datum shift" when the definition needs
/// grid files that are not available (see the module docs).
fn build_proj(crs: &Crs) -> Result<Proj, CoreError> {
    if crs.is_web_mercator() {
        // EPSG:3857's `+nadgrids=@null` makes proj4rs round-trip every point through
        // geocentric coordinates for a null shift; without a datum it skips the datum step,
        // which is the same transform (Web Mercator is defined on WGS 84 lon/lat).
        return Proj::from_proj_string(WEB_MERCATOR_NO_DATUM).map_err(|e| proj_error(crs, &e));
    }
    match Proj::from_proj_string(&crs.proj4) {
        Ok(p) => Ok(p),
        Err(ProjError::NadGridNotAvailable) => {
            let fallback = without_grid_shift(&crs.proj4);
            Proj::from_proj_string(&fallback).map_err(|e| proj_error(crs, &e))
        }
        Err(e) => Err(proj_error(crs, &e)),
    }
}

fn proj_error(crs: &Crs, e: &ProjError) -> CoreError {
    CoreError::unsupported("CRS", format!("{}: {e}", crs.name()))
}

/// The definition with its grid shift replaced by the null grid: `+nadgrids` takes precedence
/// over `+datum` in PROJ.4, and `@null` means "no shift" (the ellipsoid of the datum is kept).
fn without_grid_shift(proj4: &str) -> String {
    let mut out: Vec<&str> = proj4
        .split_whitespace()
        .filter(|tok| !tok.trim_start_matches('+').starts_with("nadgrids="))
        .collect();
    out.push("+nadgrids=@null");
    out.join(" ")
}

/// Adapts two coordinate slices to `proj4rs`'s point protocol, making failures per point.
struct PointSlices<'a> {
    xs: &'a mut [f64],
    ys: &'a mut [f64],
}

impl Transform for PointSlices<'_> {
    fn transform_coordinates<F: TransformClosure>(
        &mut self,
        f: &mut F,
    ) -> proj4rs::errors::Result<()> {
        for (x, y) in self.xs.iter_mut().zip(self.ys.iter_mut()) {
            if !(x.is_finite() && y.is_finite()) {
                *x = f64::NAN;
                *y = f64::NAN;
                continue;
            }
            match f(*x, *y, 0.0) {
                Ok((a, b, _)) => {
                    *x = a;
                    *y = b;
                }
                Err(_) => {
                    *x = f64::NAN;
                    *y = f64::NAN;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: (f64, f64), b: (f64, f64), tol: f64) -> bool {
        (a.0 - b.0).abs() <= tol && (a.1 - b.1).abs() <= tol
    }

    fn roundtrip(crs: &Crs, lonlat: (f64, f64), expected_xy: (f64, f64), tol_m: f64) {
        let fwd = Transformer::new(&Crs::wgs84(), crs).unwrap();
        let inv = Transformer::new(crs, &Crs::wgs84()).unwrap();
        let xy = fwd.transform_point(lonlat.0, lonlat.1).unwrap();
        assert!(
            close(xy, expected_xy, tol_m),
            "{}: {lonlat:?} -> {xy:?}, expected {expected_xy:?}",
            crs.name()
        );
        let back = inv.transform_point(xy.0, xy.1).unwrap();
        assert!(
            close(back, lonlat, 1e-9),
            "{}: round trip {lonlat:?} -> {back:?}",
            crs.name()
        );
    }

    #[test]
    fn epsg_lookup() {
        let c = Crs::from_epsg(32618).unwrap();
        assert!(
            c.proj4.contains("+proj=utm") && c.proj4.contains("+zone=18"),
            "{}",
            c.proj4
        );
        assert!(Crs::from_epsg(99_999_999).is_err());
        assert!(Crs::from_epsg(4326).unwrap().proj4.contains("longlat"));
    }

    #[test]
    fn geographic_detection() {
        assert!(Crs::wgs84().is_geographic());
        assert!(Crs::from_epsg(4269).unwrap().is_geographic());
        assert!(!Crs::web_mercator().is_geographic());
        assert!(!Crs::from_epsg(32618).unwrap().is_geographic());
        assert!(Crs::from_proj4("+proj=longlat +ellps=WGS84 +no_defs").is_wgs84());
        assert!(!Crs::from_epsg(4269).unwrap().is_wgs84());
        assert!(Crs::from_epsg(3857).unwrap().is_web_mercator());
    }

    #[test]
    fn transformer_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Transformer>();
    }

    #[test]
    fn web_mercator_fast_path_matches_proj4rs() {
        // The closed form must agree with proj4rs's own spherical Mercator.
        let fast = Transformer::new(&Crs::wgs84(), &Crs::web_mercator()).unwrap();
        assert!(fast.is_lonlat_web_mercator());
        let slow = Transformer::new(
            &Crs::from_proj4("+proj=longlat +datum=WGS84 +no_defs +type=crs"),
            &Crs::from_proj4("+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +no_defs"),
        )
        .unwrap();
        assert!(!slow.is_lonlat_web_mercator());
        for &(lon, lat) in &[(0.0, 0.0), (-122.4, 37.8), (151.2, -33.9), (179.9, 85.0)] {
            let a = fast.transform_point(lon, lat).unwrap();
            let b = slow.transform_point(lon, lat).unwrap();
            assert!(close(a, b, 1e-6), "{a:?} vs {b:?}");
        }
        // The classic value: 180°E is half the Web Mercator circumference.
        let (x, _) = fast.transform_point(180.0, 0.0).unwrap();
        assert!((x - 20_037_508.342_789_244).abs() < 1e-6);
        // y at 85.0511287798° is the square-world limit.
        let (_, y) = fast.transform_point(0.0, 85.051_128_779_806_59).unwrap();
        assert!((y - 20_037_508.342_789_244).abs() < 1e-3, "{y}");
    }

    #[test]
    fn poles_and_garbage_become_nan() {
        let t = Transformer::new(&Crs::wgs84(), &Crs::web_mercator()).unwrap();
        let mut xs = [0.0, 10.0, f64::NAN, 5.0];
        let mut ys = [90.0, 10.0, 0.0, -91.0];
        t.transform_points(&mut xs, &mut ys).unwrap();
        assert!(xs[0].is_nan() && ys[0].is_nan());
        assert!(xs[1].is_finite() && ys[1].is_finite());
        assert!(xs[2].is_nan() && xs[3].is_nan());
        assert!(t.transform_points(&mut [0.0], &mut []).is_err());

        // Same through proj4rs: latitudes beyond the pole fail per point, not per batch.
        let utm = Transformer::new(&Crs::wgs84(), &Crs::from_epsg(32618).unwrap()).unwrap();
        let mut xs = [-75.0, -75.0];
        let mut ys = [95.0, 40.0];
        utm.transform_points(&mut xs, &mut ys).unwrap();
        assert!(xs[0].is_nan());
        assert!(xs[1].is_finite());
    }

    #[test]
    fn web_mercator_inverse_wraps_longitude() {
        let t = Transformer::new(&Crs::web_mercator(), &Crs::wgs84()).unwrap();
        let (lon, lat) = t
            .transform_point(20_037_508.342_789_244 + 111_319.490_793, 0.0)
            .unwrap();
        assert!((lon + 179.0).abs() < 1e-6 && lat.abs() < 1e-12, "{lon}");
        assert_eq!(wrap_longitude(540.0), 180.0);
        assert_eq!(wrap_longitude(-190.0), 170.0);
        assert_eq!(wrap_longitude(-180.0), -180.0);
    }

    // Expected projected coordinates are PROJ 9.5's results for these points (pyproj
    // `Transformer.from_crs("EPSG:4326", code, always_xy=True)`), or false origins that hold by
    // definition of the CRS.
    #[test]
    fn utm_north_and_south() {
        // Central meridian of zone 18N at the equator: false easting exactly.
        roundtrip(
            &Crs::from_epsg(32618).unwrap(),
            (-75.0, 0.0),
            (500_000.0, 0.0),
            1e-6,
        );
        // 3° off the central meridian at 45°N (zone 33N, CM 15°E).
        roundtrip(
            &Crs::from_epsg(32633).unwrap(),
            (12.0, 45.0),
            (263_553.974, 4_987_329.505),
            1e-3,
        );
        // Southern hemisphere: false northing 10 000 km at the equator.
        roundtrip(
            &Crs::from_epsg(32725).unwrap(),
            (-33.0, -0.0001),
            (500_000.0, 9_999_988.947),
            1e-3,
        );
    }

    #[test]
    fn lambert_conformal_conic() {
        // EPSG:2154 (RGF93 / Lambert-93): the projection origin (3°E, 46.5°N) maps to the false
        // origin (700 000, 6 600 000) by definition.
        roundtrip(
            &Crs::from_epsg(2154).unwrap(),
            (3.0, 46.5),
            (700_000.0, 6_600_000.0),
            1e-3,
        );
    }

    #[test]
    fn albers_equal_area() {
        // EPSG:5070 (NAD83 / Conus Albers): origin (96°W, 23°N) is (0, 0).
        roundtrip(
            &Crs::from_epsg(5070).unwrap(),
            (-96.0, 23.0),
            (0.0, 0.0),
            1e-3,
        );
        // The file catalog's Albers (lat_0=34, lon_0=-120, x_0=600000): origin maps to
        // (600000, 0).
        let aea = Crs::from_proj4("+proj=aea +lat_0=34 +lon_0=-120 +lat_1=43 +lat_2=48 +x_0=600000 +y_0=0 +ellps=GRS80 +units=m +no_defs");
        roundtrip(&aea, (-120.0, 34.0), (600_000.0, 0.0), 1e-3);
    }

    #[test]
    fn lambert_azimuthal_equal_area() {
        // EPSG:3035 (ETRS89 / LAEA Europe): centre (10°E, 52°N) = false origin (4321000,
        // 3210000).
        roundtrip(
            &Crs::from_epsg(3035).unwrap(),
            (10.0, 52.0),
            (4_321_000.0, 3_210_000.0),
            1e-3,
        );
        // EPSG Guidance Note 7-2 §3.4.2 worked example (LAEA, ETRS89): 5°E 50°N gives
        // E = 3962799.45, N = 2999718.85.
        roundtrip(
            &Crs::from_epsg(3035).unwrap(),
            (5.0, 50.0),
            (3_962_799.45, 2_999_718.85),
            0.01,
        );
    }

    #[test]
    fn polar_stereographic() {
        // EPSG:3413 (NSIDC Sea Ice Polar Stereographic North, lat_ts 70°N, lon_0 45°W): the
        // pole is the origin; a point on the central meridian lies on the negative y axis.
        let crs = Crs::from_epsg(3413).unwrap();
        roundtrip(&crs, (-45.0, 90.0 - 1e-12), (0.0, 0.0), 1e-3);
        let fwd = Transformer::new(&Crs::wgs84(), &crs).unwrap();
        let (x, y) = fwd.transform_point(-45.0, 70.0).unwrap();
        assert!(x.abs() < 1e-6 && y < 0.0, "{x} {y}");
        // PROJ: -45 70 -> 0.00 -2187927.65 (ellipsoidal polar stereographic, variant B).
        assert!((y + 2_187_927.649).abs() < 1e-2, "{y}");
        let back = Transformer::new(&crs, &Crs::wgs84())
            .unwrap()
            .transform_point(x, y)
            .unwrap();
        assert!(close(back, (-45.0, 70.0), 1e-9), "{back:?}");
        // EPSG:3031 (Antarctic Polar Stereographic): south pole at the origin.
        roundtrip(
            &Crs::from_epsg(3031).unwrap(),
            (0.0, -90.0 + 1e-12),
            (0.0, 0.0),
            1e-3,
        );
    }

    #[test]
    fn nad27_falls_back_to_no_shift() {
        // NAD27 wants @conus grids that are not available: no datum shift is applied.
        let nad27 = Crs::from_proj4("+proj=longlat +datum=NAD27 +no_defs");
        let t = Transformer::new(&nad27, &Crs::wgs84()).unwrap();
        let p = t.transform_point(-90.0, 40.0).unwrap();
        assert!(close(p, (-90.0, 40.0), 1e-9), "{p:?}");
        // Projected NAD27 (the catalog's Illinois East) builds too.
        let il = Crs::from_epsg(26771).unwrap();
        let t = Transformer::new(&Crs::wgs84(), &il).unwrap();
        assert!(t.transform_point(-88.3, 40.1).is_some());
    }

    #[test]
    fn towgs84_shift_is_applied() {
        // EPSG:4277 OSGB36 has a 7-parameter towgs84; the shift at Greenwich is ~100 m.
        let osgb = Crs::from_epsg(4277).unwrap();
        let t = Transformer::new(&Crs::wgs84(), &osgb).unwrap();
        let (lon, lat) = t.transform_point(0.0, 51.4779).unwrap();
        let dlon_m = (lon - 0.0) * 111_320.0 * 51.4779_f64.to_radians().cos();
        let dlat_m = (lat - 51.4779) * 111_320.0;
        let shift = dlon_m.hypot(dlat_m);
        assert!((50.0..200.0).contains(&shift), "{shift} m");
    }

    #[test]
    fn identity_passes_through() {
        let utm = Crs::from_epsg(32618).unwrap();
        let t = Transformer::new(&utm, &utm.clone()).unwrap();
        assert!(t.is_identity());
        assert_eq!(t.transform_point(123.0, 456.0), Some((123.0, 456.0)));
    }
}
