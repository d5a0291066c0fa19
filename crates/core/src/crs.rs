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
//! Datum shifts follow what PROJ 9 does *without* its optional grid files (the usual GDAL
//! install, and what rio-tiler references are made with):
//! - NAD27 (`+datum=NAD27`, EPSG datum 6267, every EPSG code built on it): PROJ cannot use the
//!   NADCON/NTv2 grids, so it picks, per point, one of the EPSG Helmert transformations
//!   "NAD27 to WGS 84 (n)": among those whose area of use contains the point, the most
//!   accurate one (offshore-only areas never win over another candidate). Kiln keeps that
//!   table ([`Crs::with_datum_shift_at`]) and resolves it once per source, at the source's
//!   centre: e.g. "(6)" `-8,159,175` west of the Mississippi, "(4)" `-8,160,176` (CONUS mean,
//!   EPSG:1173) in Illinois. A NAD27 CRS used with no location gets "(4)". Within one source
//!   the residual against PROJ's per-point choice is only where a source straddles two areas
//!   (~1–4 m in CONUS); outside every area PROJ applies no shift, and so does Kiln.
//! - NAD83 (`+datum=NAD83`) is a null shift to WGS 84, as PROJ's "NAD83 to WGS 84 (1)" over
//!   North America (Hawaii and the Aleutians have metre-level Helmert shifts in EPSG; Kiln
//!   ignores them).
//! - Other grid-based shifts (`+nadgrids=...`) fall back to no shift (the geodetic coordinates
//!   are taken as WGS 84 ones), PROJ's "ballpark" transformation when grids are missing.

use serde::{Deserialize, Serialize};

use proj4rs::errors::Error as ProjError;
use proj4rs::transform::{Transform, TransformClosure};
use proj4rs::Proj;

use crate::CoreError;

/// Radius of the WGS 84 / Pseudo-Mercator sphere (EPSG:3857), metres.
pub const WEB_MERCATOR_RADIUS_M: f64 = 6_378_137.0;

/// Latitude (degrees) where the square Web Mercator world ends: `atan(sinh(π))`, the latitude
/// whose northing equals the equator's half-length. The one definition every caller uses.
pub const WEB_MERCATOR_MAX_LAT: f64 = 85.051_128_779_806_59;

/// WGS 84 lon/lat for `proj4rs`: the datum Web Mercator coordinates are defined on.
const WGS84_LONLAT: &str = "+proj=longlat +datum=WGS84 +no_defs";

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

    /// True for CRSs on the NAD27 datum whose shift to WGS 84 is left to Kiln
    /// (`+datum=NAD27` without an explicit `+towgs84` or `+nadgrids`).
    pub fn is_nad27(&self) -> bool {
        self.param("datum") == Some("NAD27")
            && !self.has_param("towgs84")
            && !self.has_param("nadgrids")
    }

    /// This CRS with the datum shift PROJ (without grid files) applies around `lon`/`lat`
    /// (degrees, WGS 84 or the CRS's own datum: the areas are coarse). Only NAD27 CRSs change:
    /// they get the Helmert shift of the best EPSG transformation for that point, or none
    /// outside every area of use (see the module docs). The EPSG code is kept.
    pub fn with_datum_shift_at(&self, lon: f64, lat: f64) -> Crs {
        if !self.is_nad27() {
            return self.clone();
        }
        let proj4 = match nad27_shift_at(lon, lat) {
            Some(op) => nad27_with_towgs84(&self.proj4, op.towgs84),
            // PROJ's ballpark: geodetic coordinates pass unchanged (not even the ellipsoid
            // change a zero Helmert shift would make).
            None => without_grid_shift(&self.proj4),
        };
        Crs {
            epsg: self.epsg,
            proj4,
        }
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

/// A `proj4rs` transform. A Web Mercator end is replaced by WGS 84 lon/lat plus the closed-form
/// spherical Mercator: `proj4rs` skips the datum step when one side has no datum (which a bare
/// spherical Mercator definition is), so going through WGS 84 is what applies the other side's
/// `+towgs84` shift, as PROJ's EPSG:3857 pipelines do.
#[derive(Clone)]
struct ProjPair {
    src: Proj,
    dst: Proj,
    src_mercator: bool,
    dst_mercator: bool,
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
                src_mercator: src.is_web_mercator(),
                dst_mercator: dst.is_web_mercator(),
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
        if pair.src_mercator {
            for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
                (*x, *y) = web_mercator_to_lonlat(*x, *y).unwrap_or((f64::NAN, f64::NAN));
            }
        }
        if self.src_geographic || pair.src_mercator {
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
            if self.dst_geographic || pair.dst_mercator {
                *x = x.to_degrees();
                *y = y.to_degrees();
            }
            if pair.dst_mercator {
                (*x, *y) = lonlat_to_web_mercator(*x, *y).unwrap_or((f64::NAN, f64::NAN));
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

/// The WKT the offline EPSG table holds for a code (for the facts its PROJ.4 string lacks:
/// the codes of its datum, ellipsoid and prime meridian, and its angular unit).
pub fn epsg_wkt(code: u32) -> Option<&'static str> {
    u16::try_from(code)
        .ok()
        .and_then(crs_definitions::from_code)
        .map(|d| d.wkt)
        .filter(|w| !w.is_empty())
}

/// The ellipsoid's semi-major and semi-minor axes (metres) of a CRS; `None` when its
/// definition does not build.
pub fn ellipsoid_axes(crs: &Crs) -> Option<(f64, f64)> {
    build_proj(crs).ok().map(|p| p.ellipse_parameters())
}

/// The prime meridian's longitude east of Greenwich (degrees) of a CRS; `None` when its
/// definition does not build.
pub fn prime_meridian_degrees(crs: &Crs) -> Option<f64> {
    build_proj(crs)
        .ok()
        .map(|p| p.from_greenwich().to_degrees())
}

/// Builds a `proj4rs` projection, falling back to "no datum shift" when the definition needs
/// grid files that are not available (see the module docs).
fn build_proj(crs: &Crs) -> Result<Proj, CoreError> {
    if crs.is_web_mercator() {
        // The lon/lat side of Web Mercator; [`ProjPair`] adds the Mercator formulas.
        return Proj::from_proj_string(WGS84_LONLAT).map_err(|e| proj_error(crs, &e));
    }
    if crs.is_nad27() {
        // No location known here: the CONUS mean shift (see the module docs).
        let def = nad27_with_towgs84(&crs.proj4, CONUS_NAD27_TOWGS84);
        return Proj::from_proj_string(&def).map_err(|e| proj_error(crs, &e));
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

/// "NAD27 to WGS 84 (4)" (EPSG:1173), the CONUS mean Helmert shift.
const CONUS_NAD27_TOWGS84: &str = "-8,160,176,0,0,0,0";

/// One EPSG Helmert transformation from NAD27 to WGS 84 and its area of use.
#[derive(Debug, Clone, Copy)]
struct DatumShift {
    /// Stated accuracy, metres (lower wins).
    accuracy_m: f64,
    /// Area of use, degrees.
    west: f64,
    south: f64,
    east: f64,
    north: f64,
    /// Area names with "- offshore": PROJ never prefers them over another candidate.
    offshore: bool,
    /// Position-vector `+towgs84` parameters (EPSG coordinate-frame rotations negated).
    towgs84: &'static str,
}

impl DatumShift {
    const fn new(accuracy_m: f64, area: [f64; 4], offshore: bool, towgs84: &'static str) -> Self {
        Self {
            accuracy_m,
            west: area[0],
            south: area[1],
            east: area[2],
            north: area[3],
            offshore,
            towgs84,
        }
    }

    fn contains(&self, lon: f64, lat: f64) -> bool {
        (self.west..=self.east).contains(&lon) && (self.south..=self.north).contains(&lat)
    }

    fn area(&self) -> f64 {
        (self.east - self.west) * (self.north - self.south)
    }
}

/// The grid-free NAD27 → WGS 84 transformations of the EPSG dataset ("NAD27 to WGS 84 (n)",
/// n in the comments), in the order PROJ 9.5 lists them as candidates (`proj_create_crs_to_crs` EPSG:4267 → EPSG:4326), which is the
/// order its per-point choice scans.
#[rustfmt::skip]
const NAD27_TO_WGS84: [DatumShift; 30] = [
    DatumShift::new(20.0, [-141.01, 40.0, -44.0, 83.17], false, "-10,158,187,0,0,0,0"), // (3)
    DatumShift::new(10.0, [-124.79, 24.41, -66.91, 49.38], false, CONUS_NAD27_TOWGS84), // (4)
    DatumShift::new(8.0, [-136.46, 49.0, -60.72, 83.17], false, "4,159,188,0,0,0,0"), // (13)
    DatumShift::new(7.0, [-124.79, 25.83, -89.64, 49.05], false, "-8,159,175,0,0,0,0"), // (6)
    DatumShift::new(11.0, [-97.22, 24.41, -66.91, 49.38], false, "-9,161,179,0,0,0,0"), // (5)
    DatumShift::new(12.0, [-118.47, 14.51, -86.68, 32.72], false, "-12,130,190,0,0,0,0"), // (18)
    DatumShift::new(12.0, [-102.0, 41.67, -74.35, 60.01], false, "-9,157,184,0,0,0,0"), // (11)
    DatumShift::new(9.0, [-79.85, 43.41, -52.54, 62.62], false, "-22,160,190,0,0,0,0"), // (12)
    DatumShift::new(12.0, [-168.26, 54.34, -129.99, 71.4], false, "-5,135,172,0,0,0,0"), // (7)
    DatumShift::new(16.0, [-85.01, 13.0, -59.37, 23.25], false, "-3,142,183,0,0,0,0"), // (1)
    DatumShift::new(13.0, [-139.04, 48.25, -109.98, 60.01], false, "-7,162,188,0,0,0,0"), // (10)
    DatumShift::new(10.0, [-92.29, 7.98, -82.53, 18.49], false, "0,125,194,0,0,0,0"), // (2)
    DatumShift::new(8.0, [-97.22, 23.82, -81.17, 30.25], true, "-7,158,172,0,0,0,0"), // (84)
    DatumShift::new(1.0, [-87.01, 18.83, -73.57, 25.51], false, "2.478,149.752,197.726,0.526,0.498,-0.501,0.685"), // (88)
    DatumShift::new(3.0, [-87.01, 18.83, -73.57, 25.51], false, "-4.2,135.4,181.9,0,0,0,0"), // (30)
    DatumShift::new(10.0, [-141.01, 59.99, -123.91, 69.7], false, "-7,139,181,0,0,0,0"), // (14)
    DatumShift::new(8.0, [-79.04, 20.86, -72.68, 27.29], false, "-4,154,178,0,0,0,0"), // (8)
    DatumShift::new(44.0, [-85.01, 19.77, -74.07, 23.25], false, "-9,152,178,0,0,0,0"), // (16)
    DatumShift::new(5.0, [-87.25, 23.82, -81.17, 30.25], true, "-3,154,177,0,0,0,0"), // (80)
    DatumShift::new(5.0, [-95.0, 25.61, -87.25, 30.23], true, "-7,151,175,0,0,0,0"), // (81)
    DatumShift::new(15.0, [-178.3, 51.54, -164.84, 54.34], false, "-2,152,149,0,0,0,0"), // (21)
    DatumShift::new(1.0, [-83.04, 7.15, -77.19, 9.68], false, "-32.3841359,180.4090461,120.8442577,-2.1545854,-0.1498782,0.5742915,8.1049164"), // (89)
    DatumShift::new(5.0, [-94.79, 17.85, -89.75, 20.89], true, "-2,124.7,196,0,0,0,0"), // (87)
    DatumShift::new(5.0, [-94.33, 20.87, -88.67, 23.01], true, "0,125,196,0,0,0,0"), // (86)
    DatumShift::new(44.0, [-73.29, 75.86, -60.98, 79.2], false, "11,114,195,0,0,0,0"), // (17)
    DatumShift::new(18.0, [172.42, 51.3, 179.86, 53.07], false, "2,204,105,0,0,0,0"), // (22)
    DatumShift::new(5.0, [-97.22, 25.97, -95.0, 28.97], true, "-7,151,178,0,0,0,0"), // (82)
    DatumShift::new(5.0, [-98.1, 21.51, -96.89, 22.75], true, "-8,125,190,0,0,0,0"), // (83)
    DatumShift::new(35.0, [-80.07, 8.82, -79.46, 9.45], false, "0,125,201,0,0,0,0"), // (15)
    DatumShift::new(44.0, [-74.6, 23.9, -74.37, 24.19], false, "1,140,165,0,0,0,0"), // (9)
];

/// PROJ's per-point choice (`pj_get_suggested_operation`) among [`NAD27_TO_WGS84`]: the first
/// candidate whose area contains the point, replaced by any later non-offshore one that is
/// more accurate, or as accurate over a smaller area. `None` outside every area.
fn nad27_shift_at(lon: f64, lat: f64) -> Option<&'static DatumShift> {
    let mut best: Option<&DatumShift> = None;
    for op in NAD27_TO_WGS84.iter().filter(|op| op.contains(lon, lat)) {
        best = match best {
            None => Some(op),
            Some(b)
                if !op.offshore
                    && (op.accuracy_m < b.accuracy_m
                        || (op.accuracy_m == b.accuracy_m && op.area() < b.area())) =>
            {
                Some(op)
            }
            keep => keep,
        };
    }
    best
}

/// A NAD27 definition with its datum replaced by the Clarke 1866 ellipsoid and a Helmert shift.
fn nad27_with_towgs84(proj4: &str, towgs84: &str) -> String {
    let mut out: Vec<String> = proj4
        .split_whitespace()
        .filter(|tok| {
            let t = tok.trim_start_matches('+');
            !(t.starts_with("datum=") || t.starts_with("ellps=") || t.starts_with("nadgrids="))
        })
        .map(str::to_string)
        .collect();
    out.push("+ellps=clrk66".into());
    out.push(format!("+towgs84={towgs84}"));
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
    fn nad27_uses_projs_helmert_choice() {
        // Expected values: pyproj 3.7 / PROJ 9.5 without grids,
        // `Transformer.from_crs(4267, 4326, always_xy=True)`, whose per-point choice is noted.
        let nad27 = Crs::from_proj4("+proj=longlat +datum=NAD27 +no_defs");
        assert!(nad27.is_nad27());
        let cases = [
            // Illinois: (4), the CONUS mean.
            (
                (-88.0, 40.0),
                (-88.000_028_236_489_48, 40.000_032_649_639_95),
            ),
            // California: (6), west of the Mississippi (more accurate than (4)).
            (
                (-117.0, 34.0),
                (-117.000_858_505_250_53, 34.000_017_675_846_05),
            ),
            // Louisiana coast: (4); the more accurate offshore Gulf of Mexico ones never win.
            (
                (-89.0, 30.0),
                (-89.000_053_960_441_19, 30.000_241_643_198_436),
            ),
            // Florida Keys: (88), Cuba's 7-parameter shift (accuracy 1 m, its box covers them).
            (
                (-80.0, 25.0),
                (-79.999_806_054_151_12, 25.000_368_283_283_27),
            ),
            // Alaska: (7).
            (
                (-150.0, 61.0),
                (-150.002_206_925_127_98, 60.999_430_230_943_84),
            ),
            // Outside every area: no shift.
            ((10.0, 50.0), (10.0, 50.0)),
        ];
        for ((lon, lat), expected) in cases {
            let crs = nad27.with_datum_shift_at(lon, lat);
            assert!(!crs.is_nad27(), "{}", crs.proj4);
            let t = Transformer::new(&crs, &Crs::wgs84()).unwrap();
            let p = t.transform_point(lon, lat).unwrap();
            // 1e-8° ≈ 1 mm.
            assert!(
                close(p, expected, 1e-8),
                "({lon}, {lat}) -> {p:?}, PROJ {expected:?}"
            );
        }
        // With no location, the CONUS mean shift (4): ~3 m off PROJ's (6) in California.
        let t = Transformer::new(&nad27, &Crs::wgs84()).unwrap();
        let p = t.transform_point(-88.0, 40.0).unwrap();
        assert!(close(p, cases[0].1, 1e-8), "{p:?}");
        // Projected NAD27 (the catalog's Illinois East) keeps its EPSG code and shifts too.
        let il = Crs::from_epsg(26771).unwrap();
        let shifted = il.with_datum_shift_at(-88.3, 40.1);
        assert_eq!(shifted.epsg, Some(26771));
        assert!(
            shifted.proj4.contains("+towgs84=-8,160,176"),
            "{}",
            shifted.proj4
        );
        assert!(shifted.proj4.contains("+units=us-ft"), "{}", shifted.proj4);
        // Other datums pass through; NAD83 is a null shift.
        let nad83 = Crs::from_epsg(4269).unwrap();
        assert_eq!(nad83.with_datum_shift_at(-100.0, 40.0), nad83);
        let t = Transformer::new(&nad83, &Crs::wgs84()).unwrap();
        assert!(close(
            t.transform_point(-100.0, 40.0).unwrap(),
            (-100.0, 40.0),
            1e-9
        ));
    }

    #[test]
    fn datum_shift_applies_towards_web_mercator() {
        // The catalog's NAD27 CEA file: its centre in EPSG:3857 per GDAL 3.10 / PROJ 9.5
        // (`rasterio.warp.transform`), which picks "NAD27 to WGS 84 (6)" there.
        let cea = Crs::from_proj4(
            "+proj=cea +lat_ts=33.75 +lon_0=-117.333333333333 +x_0=0 +y_0=0 +datum=NAD27 \
             +units=m +no_defs",
        )
        .with_datum_shift_at(-117.5, 38.0);
        let (x, y) = (-13_067.477_579_731_73, 4_240_428.843_529_019);
        let fwd = Transformer::new(&cea, &Crs::web_mercator()).unwrap();
        let p = fwd.transform_point(x, y).unwrap();
        assert!(
            close(p, (-13_077_283.165_795_915, 4_002_553.197_197_949_5), 1e-3),
            "{p:?}"
        );
        let back = Transformer::new(&Crs::web_mercator(), &cea).unwrap();
        let q = back.transform_point(p.0, p.1).unwrap();
        assert!(close(q, (x, y), 1e-3), "{q:?}");
    }

    #[test]
    fn towgs84_shift_is_applied() {
        // EPSG:4277 (OSGB36) carries the 7-parameter Helmert shift of EPSG:1314; PROJ 9.5
        // gives 0.00161980°E 51.47738413°N for WGS84 (0°, 51.4779°) with that transformation.
        let osgb = Crs::from_epsg(4277).unwrap();
        let t = Transformer::new(&Crs::wgs84(), &osgb).unwrap();
        let p = t.transform_point(0.0, 51.4779).unwrap();
        // 1e-6° ≈ 0.1 m.
        assert!(close(p, (0.001_619_80, 51.477_384_13), 1e-6), "{p:?}");
    }

    #[test]
    fn identity_passes_through() {
        let utm = Crs::from_epsg(32618).unwrap();
        let t = Transformer::new(&utm, &utm.clone()).unwrap();
        assert!(t.is_identity());
        assert_eq!(t.transform_point(123.0, 456.0), Some((123.0, 456.0)));
    }
}
