//! GeoKeys next to an EPSG code: which of them change the CRS the code names, as GDAL 3.10
//! (libgeotiff + `gt_wkt_srs.cpp`) reads them, and which make the file ambiguous.
//!
//! A GeoTIFF may name its CRS by an EPSG code *and* carry keys that say something else about
//! it (ERDAS IMAGINE writes a metre State Plane code with `ProjLinearUnitsGeoKey` = US survey
//! foot). Taking the code alone puts such a raster a thousand kilometres away. The rules,
//! checked against GDAL on the fixtures of `scripts/make_fixtures.py`:
//!
//! | beside a projected code | GDAL | Kiln |
//! |---|---|---|
//! | `ProjLinearUnitsGeoKey` / `…UnitSizeGeoKey` ≠ the code's unit | CRS in that unit | same, noted |
//! | unknown unit code, or 32767 without a size | logs an error, keeps the code's unit | error |
//! | `ProjCoordTransGeoKey` + parameters ≠ the code's | keys' projection, missing parameters 0 (warning) | same, noted |
//! | parameter keys without `ProjCoordTransGeoKey` | ignored | ignored, noted |
//! | `GeographicTypeGeoKey` / `…DatumGeoKey` / `…EllipsoidGeoKey` ≠ the code's | keys' datum (warning) | same, noted |
//! | `GeogPrimeMeridianGeoKey` ≠ the code's | ignored (warning) | error |
//! | `GeogTOWGS84GeoKey` | ignored | ignored, noted |
//! | `GeogAngularUnitsGeoKey` ≠ the code's, no `ProjCoordTransGeoKey` | ignored (warning) | ignored, noted |
//!
//! Beside a geographic code, GDAL applies contradicting datum / ellipsoid / prime meridian /
//! angular unit keys for some codes (EPSG:4807) and drops them silently for others
//! (EPSG:4326), so Kiln refuses such files and names the contradiction. A geographic CRS whose
//! unit is not the degree (EPSG:4807 and the other "(Paris)" CRSs count in grads) is read in
//! its unit and its coordinates converted to degrees ([`CrsReading::degrees_per_unit`]).

use std::collections::BTreeMap;

use kiln_core::Crs;

use crate::geokeys::{key, num, GeoKeys, USER_DEFINED};
use crate::ifd::{malformed, unsupported};
use crate::CogError;

/// What the GeoKeys say the CRS is, and how Kiln got there.
#[derive(Debug, Clone, PartialEq)]
pub struct CrsReading {
    pub crs: Crs,
    /// Degrees per unit of the file's coordinates when the CRS is geographic and counts in
    /// another angular unit (0.9 for grads); 1 otherwise. The georeferencing is converted to
    /// degrees with it, so everything downstream sees degrees.
    pub degrees_per_unit: f64,
    /// Every key that changed the CRS an EPSG code names, or that was ignored beside one, in
    /// words (`kiln info` prints them).
    pub notes: Vec<String>,
}

impl CrsReading {
    pub(crate) fn plain(crs: Crs) -> Self {
        Self {
            crs,
            degrees_per_unit: 1.0,
            notes: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Units (EPSG's unit table, as PROJ 9.5's database has it)

/// EPSG linear units: code, name, metres per unit, PROJ's name for it (when PROJ has one).
const LINEAR_UNITS: &[(u16, &str, f64, Option<&str>)] = &[
    (1025, "millimetre", 0.001, Some("mm")),
    (1033, "centimetre", 0.01, Some("cm")),
    (9001, "metre", 1.0, Some("m")),
    (9002, "foot", 0.3048, Some("ft")),
    (9003, "US survey foot", 1200.0 / 3937.0, Some("us-ft")),
    (9005, "Clarke's foot", 0.304_797_265_4, None),
    (9014, "fathom", 1.8288, Some("fath")),
    (9030, "nautical mile", 1852.0, Some("kmi")),
    (9031, "German legal metre", 1.000_013_596_5, None),
    (9033, "US survey chain", 79200.0 / 3937.0, Some("us-ch")),
    (9034, "US survey link", 792.0 / 3937.0, None),
    (9035, "US survey mile", 6_336_000.0 / 3937.0, Some("us-mi")),
    (9036, "kilometre", 1000.0, Some("km")),
    (9037, "Clarke's yard", 0.914_391_796_2, None),
    (9038, "Clarke's chain", 20.116_619_516_4, None),
    (9039, "Clarke's link", 0.201_166_195_164, None),
    (
        9040,
        "British yard (Sears 1922)",
        0.914_398_414_616_029,
        None,
    ),
    (
        9041,
        "British foot (Sears 1922)",
        0.304_799_471_538_676,
        None,
    ),
    (
        9042,
        "British chain (Sears 1922)",
        20.116_765_121_552_6,
        None,
    ),
    (
        9043,
        "British link (Sears 1922)",
        0.201_167_651_215_526,
        None,
    ),
    (9050, "British yard (Benoit 1895 A)", 0.914_399_2, None),
    (
        9051,
        "British foot (Benoit 1895 A)",
        0.304_799_733_333_333,
        None,
    ),
    (9052, "British chain (Benoit 1895 A)", 20.116_782_4, None),
    (9053, "British link (Benoit 1895 A)", 0.201_167_824, None),
    (
        9060,
        "British yard (Benoit 1895 B)",
        0.914_399_204_289_812,
        None,
    ),
    (
        9061,
        "British foot (Benoit 1895 B)",
        0.304_799_734_763_271,
        None,
    ),
    (
        9062,
        "British chain (Benoit 1895 B)",
        20.116_782_494_375_9,
        None,
    ),
    (
        9063,
        "British link (Benoit 1895 B)",
        0.201_167_824_943_759,
        None,
    ),
    (9070, "British foot (1865)", 0.304_800_833_333_333, None),
    (9080, "Indian foot", 0.304_799_510_248_147, None),
    (9081, "Indian foot (1937)", 0.304_798_41, Some("ind-ft")),
    (9082, "Indian foot (1962)", 0.304_799_6, None),
    (9083, "Indian foot (1975)", 0.304_799_5, None),
    (9084, "Indian yard", 0.914_398_530_744_441, None),
    (9085, "Indian yard (1937)", 0.914_395_23, Some("ind-yd")),
    (9086, "Indian yard (1962)", 0.914_398_8, None),
    (9087, "Indian yard (1975)", 0.914_398_5, None),
    (9093, "Statute mile", 1609.344, Some("mi")),
    (9094, "Gold Coast foot", 0.304_799_710_181_509, None),
    (9095, "British foot (1936)", 0.304_800_749_1, None),
    (9096, "yard", 0.9144, Some("yd")),
    (9097, "chain", 20.1168, Some("ch")),
    (9098, "link", 0.201_168, Some("link")),
    (9099, "British yard (Sears 1922 truncated)", 0.914_398, None),
    (
        9300,
        "British foot (Sears 1922 truncated)",
        0.304_799_333_333_333,
        None,
    ),
    (
        9301,
        "British chain (Sears 1922 truncated)",
        20.116_756,
        None,
    ),
    (
        9302,
        "British link (Sears 1922 truncated)",
        0.201_167_56,
        None,
    ),
];

/// EPSG angular units that scale linearly: code, name, degrees per unit. The sexagesimal
/// encodings (9107, 9108, 9110, 9111, 9115–9121) pack degrees and minutes into one number and
/// are refused.
const ANGULAR_UNITS: &[(u16, &str, f64)] = &[
    (1031, "milliarc-second", 1.0 / 3_600_000.0),
    (9101, "radian", 180.0 / std::f64::consts::PI),
    (9102, "degree", 1.0),
    (9103, "arc-minute", 1.0 / 60.0),
    (9104, "arc-second", 1.0 / 3600.0),
    (9105, "grad", 0.9),
    (9106, "gon", 0.9),
    (9109, "microradian", 180e-6 / std::f64::consts::PI),
    (9112, "centesimal minute", 0.009),
    (9113, "centesimal second", 0.000_09),
    (9114, "mil_6400", 360.0 / 6400.0),
    (9122, "degree", 1.0),
];

/// A linear unit: a description for messages and metres per unit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinearUnit {
    pub name: String,
    pub metres: f64,
}

impl LinearUnit {
    /// The PROJ.4 units parameter: PROJ's unit name when one matches, else `+to_meter=`.
    pub(crate) fn proj_param(&self) -> String {
        match LINEAR_UNITS
            .iter()
            .find(|u| u.3.is_some() && same_number(u.2, self.metres))
            .and_then(|u| u.3)
        {
            Some(name) => format!("+units={name}"),
            None => format!("+to_meter={}", num(self.metres)),
        }
    }
}

fn same_number(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// The unit `ProjLinearUnitsGeoKey` (and `ProjLinearUnitSizeGeoKey`) name; `None` when the
/// key is absent or 0. Unknown codes and a user-defined unit without a size are errors: GDAL
/// falls back to the CRS's own unit there, a guess Kiln does not make.
pub(crate) fn linear_unit_key(keys: &GeoKeys) -> Result<Option<LinearUnit>, CogError> {
    match keys.short(key::PROJ_LINEAR_UNITS) {
        None | Some(0) => Ok(None),
        Some(USER_DEFINED) => match keys
            .double(key::PROJ_LINEAR_UNIT_SIZE)
            .filter(|s| s.is_finite() && *s > 0.0)
        {
            Some(m) => Ok(Some(LinearUnit {
                name: format!("a user-defined unit of {} m", num(m)),
                metres: m,
            })),
            None => Err(malformed(
                "ProjLinearUnitsGeoKey is user-defined (32767) but ProjLinearUnitSizeGeoKey gives \
                 no size in metres, so the file's coordinates have no known unit",
            )),
        },
        Some(code) => LINEAR_UNITS
            .iter()
            .find(|u| u.0 == code)
            .map(|u| {
                Some(LinearUnit {
                    name: u.1.to_string(),
                    metres: u.2,
                })
            })
            .ok_or_else(|| {
                unsupported(format!(
                    "ProjLinearUnitsGeoKey {code} is not a linear unit of the EPSG table, so the \
                     file's coordinates have no known unit"
                ))
            }),
    }
}

/// Degrees per unit of an angular unit code (`size` is `GeogAngularUnitSizeGeoKey`, radians,
/// for user-defined units).
fn angular_unit(code: u16, size: Option<f64>) -> Result<(String, f64), CogError> {
    if code == USER_DEFINED {
        return size
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|rad| {
                (
                    format!("a user-defined unit of {} rad", num(rad)),
                    rad.to_degrees(),
                )
            })
            .ok_or_else(|| {
                malformed(
                    "GeogAngularUnitsGeoKey is user-defined (32767) but GeogAngularUnitSizeGeoKey \
                     gives no size in radians",
                )
            });
    }
    ANGULAR_UNITS
        .iter()
        .find(|u| u.0 == code)
        .map(|u| (u.1.to_string(), u.2))
        .ok_or_else(|| {
            unsupported(format!(
                "GeogAngularUnitsGeoKey {code} is not an angular unit Kiln can scale (sexagesimal \
                 encodings and unknown codes are refused)"
            ))
        })
}

/// The angular unit the keys give (`None` when absent or 0).
pub(crate) fn angular_unit_key(keys: &GeoKeys) -> Result<Option<(String, f64)>, CogError> {
    match keys.short(key::GEOG_ANGULAR_UNITS) {
        None | Some(0) => Ok(None),
        Some(code) => angular_unit(code, keys.double(key::GEOG_ANGULAR_UNIT_SIZE)).map(Some),
    }
}

// ---------------------------------------------------------------------------------------------
// What an EPSG definition says (its WKT for codes, its PROJ.4 string for values)

/// The node `KEYWORD[...]` (first one, brackets included) whose keyword is one of `names`.
fn wkt_node<'a>(wkt: &'a str, names: &[&str]) -> Option<&'a str> {
    let bytes = wkt.as_bytes();
    let start = names
        .iter()
        .filter_map(|n| {
            let pat = format!("{n}[");
            wkt.match_indices(&pat).map(|(i, _)| i).find(|&i| {
                i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')
            })
        })
        .min()?;
    let open = start + wkt[start..].find('[')?;
    let mut depth = 0usize;
    let mut quoted = false;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'"' => quoted = !quoted,
            b'[' if !quoted => depth += 1,
            b']' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some(&wkt[start..=i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// The EPSG code a WKT node carries as its own (its last `AUTHORITY["EPSG","n"]` or
/// `ID["EPSG",n]`: authorities close their node).
fn wkt_epsg(node: &str) -> Option<u16> {
    let last = node
        .rfind("AUTHORITY[\"EPSG\",")
        .map(|i| i + "AUTHORITY[\"EPSG\",".len())
        .max(node.rfind("ID[\"EPSG\",").map(|i| i + "ID[\"EPSG\",".len()))?;
    let digits: String = node[last..]
        .trim_start_matches('"')
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    // The authority must close this node, not a child of it: only `]` may follow.
    let rest = &node[last..];
    let after = rest.find(']').map(|i| &rest[i..])?;
    (after.trim_end_matches(']').is_empty())
        .then(|| digits.parse().ok())
        .flatten()
}

/// The geodetic facts of an EPSG definition Kiln compares keys with.
#[derive(Debug, Clone, Default)]
struct EpsgFacts {
    /// Code of the geographic CRS (itself for a geographic code).
    gcs: Option<u16>,
    datum: Option<u16>,
    ellipsoid: Option<u16>,
    /// Prime meridian code (8901 Greenwich when the WKT names none).
    prime_meridian: Option<u16>,
    /// Degrees per unit of the geographic CRS.
    angular_degrees: Option<f64>,
}

fn epsg_facts(code: u16) -> EpsgFacts {
    let Some(wkt) = kiln_core::crs::epsg_wkt(u32::from(code)) else {
        return EpsgFacts::default();
    };
    let Some(geog) = wkt_node(wkt, &["GEOGCS", "BASEGEOGCRS", "GEOGCRS"]) else {
        return EpsgFacts::default();
    };
    let angular_degrees = wkt_node(geog, &["ANGLEUNIT", "UNIT"]).and_then(|u| {
        let rad: f64 = u
            .split(',')
            .nth(1)?
            .trim()
            .trim_end_matches(']')
            .parse()
            .ok()?;
        let deg = rad.to_degrees();
        // WKT rounds the radians: snap to the table's exact values (0.9 for grads).
        Some(
            ANGULAR_UNITS
                .iter()
                .map(|a| a.2)
                .find(|d| (d - deg).abs() <= 1e-12 * d)
                .unwrap_or(deg),
        )
    });
    EpsgFacts {
        gcs: wkt_epsg(geog),
        datum: wkt_node(geog, &["DATUM"]).and_then(wkt_epsg),
        ellipsoid: wkt_node(geog, &["SPHEROID", "ELLIPSOID"]).and_then(wkt_epsg),
        prime_meridian: wkt_node(geog, &["PRIMEM"]).map_or(Some(8901), wkt_epsg),
        angular_degrees,
    }
}

// ---------------------------------------------------------------------------------------------
// PROJ.4 strings in parts

/// Parameters that describe the datum, ellipsoid and prime meridian.
const GEODETIC: &[&str] = &[
    "datum", "ellps", "a", "b", "rf", "f", "R", "es", "e", "towgs84", "nadgrids", "pm",
];
const UNITS: &[&str] = &["units", "to_meter", "vunits", "vto_meter"];
const TRAILING: &[&str] = &["no_defs", "wktext", "type"];

/// A PROJ.4 string cut into its projection, geodetic and units parts.
#[derive(Debug, Clone)]
struct ProjParts {
    projection: Vec<String>,
    geodetic: Vec<String>,
    units: Vec<String>,
    trailing: Vec<String>,
}

impl ProjParts {
    fn parse(proj4: &str) -> Self {
        let mut parts = Self {
            projection: Vec::new(),
            geodetic: Vec::new(),
            units: Vec::new(),
            trailing: Vec::new(),
        };
        for tok in proj4.split_whitespace() {
            let name = tok
                .trim_start_matches('+')
                .split('=')
                .next()
                .unwrap_or_default();
            let list = if GEODETIC.contains(&name) {
                &mut parts.geodetic
            } else if UNITS.contains(&name) {
                &mut parts.units
            } else if TRAILING.contains(&name) {
                &mut parts.trailing
            } else {
                &mut parts.projection
            };
            list.push(tok.to_string());
        }
        parts
    }

    /// The parts back in PROJ's order, `+no_defs` last.
    fn join(&self) -> String {
        let mut all = self.projection.clone();
        all.extend(self.geodetic.iter().cloned());
        all.extend(self.units.iter().cloned());
        all.extend(self.trailing.iter().filter(|t| *t != "+no_defs").cloned());
        all.push("+no_defs".into());
        all.join(" ")
    }

    /// Metres per unit of the projected coordinates.
    fn metres_per_unit(&self) -> f64 {
        for tok in &self.units {
            if let Some(v) = tok.strip_prefix("+to_meter=") {
                if let Ok(m) = v.parse::<f64>() {
                    return m;
                }
            }
            if let Some(name) = tok.strip_prefix("+units=") {
                if let Some(u) = LINEAR_UNITS.iter().find(|u| u.3 == Some(name)) {
                    return u.2;
                }
            }
        }
        1.0
    }
}

/// A projection as a name and numeric parameters, for comparing two definitions; UTM is
/// spelled out as the Transverse Mercator it is, `k_0` is `k`.
#[derive(Debug, Clone, PartialEq)]
struct Projection {
    name: String,
    params: BTreeMap<String, f64>,
}

impl Projection {
    fn parse(tokens: &[String]) -> Option<Self> {
        let mut name = None;
        let mut params = BTreeMap::new();
        let mut zone = None;
        let mut south = false;
        for tok in tokens {
            let t = tok.trim_start_matches('+');
            match t.split_once('=') {
                Some(("proj", v)) => name = Some(v.to_string()),
                Some(("zone", v)) => zone = v.parse::<u32>().ok(),
                Some((k, v)) => {
                    if let Ok(x) = v.parse::<f64>() {
                        let k = if k == "k_0" { "k" } else { k };
                        params.insert(k.to_string(), x);
                    }
                }
                None if t == "south" => south = true,
                None => {}
            }
        }
        let mut name = name?;
        if name == "utm" {
            let zone = zone?;
            name = "tmerc".into();
            params.insert("lat_0".into(), 0.0);
            params.insert("lon_0".into(), f64::from(zone) * 6.0 - 183.0);
            params.insert("k".into(), 0.9996);
            params.insert("x_0".into(), 500_000.0);
            params.insert("y_0".into(), if south { 10_000_000.0 } else { 0.0 });
        }
        Some(Self { name, params })
    }

    /// A parameter, or PROJ's default for it.
    fn get(&self, k: &str) -> Option<f64> {
        self.params.get(k).copied().or(match k {
            "lat_0" | "lon_0" | "x_0" | "y_0" | "lat_ts" => Some(0.0),
            "k" => Some(1.0),
            _ => None,
        })
    }

    fn same_as(&self, other: &Projection) -> bool {
        self.name == other.name
            && self.params.keys().chain(other.params.keys()).all(|k| {
                match (self.get(k), other.get(k)) {
                    (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
                    _ => false,
                }
            })
    }
}

// ---------------------------------------------------------------------------------------------
// Resolution

fn key_name(id: u16) -> &'static str {
    match id {
        key::GEOGRAPHIC_TYPE => "GeographicTypeGeoKey",
        key::GEOG_GEODETIC_DATUM => "GeogGeodeticDatumGeoKey",
        key::GEOG_PRIME_MERIDIAN => "GeogPrimeMeridianGeoKey",
        key::GEOG_LINEAR_UNITS => "GeogLinearUnitsGeoKey",
        key::GEOG_ANGULAR_UNITS => "GeogAngularUnitsGeoKey",
        key::GEOG_ELLIPSOID => "GeogEllipsoidGeoKey",
        key::GEOG_SEMI_MAJOR_AXIS => "GeogSemiMajorAxisGeoKey",
        key::GEOG_SEMI_MINOR_AXIS => "GeogSemiMinorAxisGeoKey",
        key::GEOG_INV_FLATTENING => "GeogInvFlatteningGeoKey",
        key::GEOG_PRIME_MERIDIAN_LONG => "GeogPrimeMeridianLongGeoKey",
        key::GEOG_TOWGS84 => "GeogTOWGS84GeoKey",
        key::PROJ_LINEAR_UNITS => "ProjLinearUnitsGeoKey",
        key::PROJ_STD_PARALLEL1 => "ProjStdParallel1GeoKey",
        key::PROJ_STD_PARALLEL2 => "ProjStdParallel2GeoKey",
        key::PROJ_NAT_ORIGIN_LONG => "ProjNatOriginLongGeoKey",
        key::PROJ_NAT_ORIGIN_LAT => "ProjNatOriginLatGeoKey",
        key::PROJ_FALSE_EASTING => "ProjFalseEastingGeoKey",
        key::PROJ_FALSE_NORTHING => "ProjFalseNorthingGeoKey",
        key::PROJ_FALSE_ORIGIN_LONG => "ProjFalseOriginLongGeoKey",
        key::PROJ_FALSE_ORIGIN_LAT => "ProjFalseOriginLatGeoKey",
        key::PROJ_FALSE_ORIGIN_EASTING => "ProjFalseOriginEastingGeoKey",
        key::PROJ_FALSE_ORIGIN_NORTHING => "ProjFalseOriginNorthingGeoKey",
        key::PROJ_CENTER_LONG => "ProjCenterLongGeoKey",
        key::PROJ_CENTER_LAT => "ProjCenterLatGeoKey",
        key::PROJ_CENTER_EASTING => "ProjCenterEastingGeoKey",
        key::PROJ_CENTER_NORTHING => "ProjCenterNorthingGeoKey",
        key::PROJ_SCALE_AT_NAT_ORIGIN => "ProjScaleAtNatOriginGeoKey",
        key::PROJ_SCALE_AT_CENTER => "ProjScaleAtCenterGeoKey",
        key::PROJ_STRAIGHT_VERT_POLE_LONG => "ProjStraightVertPoleLongGeoKey",
        key::PROJ_AZIMUTH_ANGLE => "ProjAzimuthAngleGeoKey",
        _ => "GeoKey",
    }
}

/// Projection parameter keys: ignored beside a code unless `ProjCoordTransGeoKey` is there.
const PROJ_PARAMETER_KEYS: &[u16] = &[
    key::PROJ_STD_PARALLEL1,
    key::PROJ_STD_PARALLEL2,
    key::PROJ_NAT_ORIGIN_LONG,
    key::PROJ_NAT_ORIGIN_LAT,
    key::PROJ_FALSE_EASTING,
    key::PROJ_FALSE_NORTHING,
    key::PROJ_FALSE_ORIGIN_LONG,
    key::PROJ_FALSE_ORIGIN_LAT,
    key::PROJ_FALSE_ORIGIN_EASTING,
    key::PROJ_FALSE_ORIGIN_NORTHING,
    key::PROJ_CENTER_LONG,
    key::PROJ_CENTER_LAT,
    key::PROJ_CENTER_EASTING,
    key::PROJ_CENTER_NORTHING,
    key::PROJ_SCALE_AT_NAT_ORIGIN,
    key::PROJ_SCALE_AT_CENTER,
    key::PROJ_AZIMUTH_ANGLE,
    key::PROJ_STRAIGHT_VERT_POLE_LONG,
];

fn contradiction(code: u16, id: u16, what: String) -> CogError {
    malformed(format!(
        "the GeoKeys contradict EPSG:{code}: {} {what}; GDAL keeps the code for some codes and \
         applies the key for others, so Kiln does not pick a reading (fix the key or the code, \
         e.g. with gdal_edit.py -a_srs)",
        key_name(id)
    ))
}

/// A geographic CRS named by an EPSG code: the code's definition and unit, after checking
/// that no key contradicts it.
pub(crate) fn geographic_code(keys: &GeoKeys, code: u16) -> Result<CrsReading, CogError> {
    let crs = Crs::from_epsg(u32::from(code)).map_err(|_| {
        unsupported(format!(
            "geographic CRS EPSG:{code}, not in the offline EPSG table"
        ))
    })?;
    let facts = epsg_facts(code);
    check_geodetic_keys(keys, code, &crs, &facts, true)?;
    let degrees_per_unit = facts.angular_degrees.unwrap_or(1.0);
    if let Some((name, deg)) = angular_unit_key(keys)? {
        if !same_number(deg, degrees_per_unit) {
            return Err(contradiction(
                code,
                key::GEOG_ANGULAR_UNITS,
                format!(
                    "says {name} ({} degree), the code counts in {} degree units",
                    num(deg),
                    num(degrees_per_unit)
                ),
            ));
        }
    }
    let mut notes = Vec::new();
    if degrees_per_unit != 1.0 {
        notes.push(format!(
            "EPSG:{code} counts in units of {} degree: coordinates converted to degrees",
            num(degrees_per_unit)
        ));
    }
    for id in [key::PROJ_LINEAR_UNITS, key::GEOG_LINEAR_UNITS] {
        // The metre some writers put there says nothing.
        if keys.short(id).is_some_and(|u| u != 9001) {
            notes.push(format!(
                "{} ignored: a geographic CRS has no linear unit for coordinates (as GDAL)",
                key_name(id)
            ));
        }
    }
    Ok(CrsReading {
        crs,
        degrees_per_unit,
        notes,
    })
}

/// Checks the datum, ellipsoid and prime-meridian keys against `code` (its definition `base`
/// and the `facts` of its WKT). With
/// `strict` every contradiction is an error (geographic codes); otherwise only the prime
/// meridian is (the others override a projected code's datum: see
/// [`projected_geodetic_override`]).
fn check_geodetic_keys(
    keys: &GeoKeys,
    code: u16,
    base: &Crs,
    facts: &EpsgFacts,
    strict: bool,
) -> Result<(), CogError> {
    let named =
        |c: Option<u16>| c.map_or_else(|| "another one".to_string(), |c| format!("EPSG:{c}"));
    if strict {
        if let Some(d) = keys.code(key::GEOG_GEODETIC_DATUM) {
            if facts.datum.is_some_and(|f| f != d) {
                return Err(contradiction(
                    code,
                    key::GEOG_GEODETIC_DATUM,
                    format!("names datum EPSG:{d}, the code {}", named(facts.datum)),
                ));
            }
        }
        if let Some(e) = keys.code(key::GEOG_ELLIPSOID) {
            if facts.ellipsoid.is_some_and(|f| f != e) {
                return Err(contradiction(
                    code,
                    key::GEOG_ELLIPSOID,
                    format!(
                        "names ellipsoid EPSG:{e}, the code {}",
                        named(facts.ellipsoid)
                    ),
                ));
            }
        }
        if let Some(a) = keys.double(key::GEOG_SEMI_MAJOR_AXIS) {
            if let Some((ca, _)) = kiln_core::crs::ellipsoid_axes(base) {
                if (a - ca).abs() > 1e-3 {
                    return Err(contradiction(
                        code,
                        key::GEOG_SEMI_MAJOR_AXIS,
                        format!("is {} m, the code's ellipsoid {} m", num(a), num(ca)),
                    ));
                }
            }
        }
        if keys.get(key::GEOG_TOWGS84).is_some() {
            return Err(contradiction(
                code,
                key::GEOG_TOWGS84,
                "adds a datum shift to the code's own".into(),
            ));
        }
    }
    if let Some(p) = keys.code(key::GEOG_PRIME_MERIDIAN) {
        let own = facts.prime_meridian.unwrap_or(8901);
        if p != own {
            return Err(contradiction(
                code,
                key::GEOG_PRIME_MERIDIAN,
                format!("names prime meridian EPSG:{p}, the code EPSG:{own}"),
            ));
        }
    } else if let Some(lon) = keys.double(key::GEOG_PRIME_MERIDIAN_LONG) {
        let own = kiln_core::crs::prime_meridian_degrees(base).unwrap_or(0.0);
        // The key counts in the geographic angular unit.
        let unit = angular_unit_key(keys)?
            .map(|u| u.1)
            .or(facts.angular_degrees)
            .unwrap_or(1.0);
        if (lon * unit - own).abs() > 1e-7 {
            return Err(contradiction(
                code,
                key::GEOG_PRIME_MERIDIAN_LONG,
                format!(
                    "puts the prime meridian at {}°, the code at {}°",
                    num(lon * unit),
                    num(own)
                ),
            ));
        }
    }
    Ok(())
}

/// The geodetic part (datum, ellipsoid, prime meridian) that keys put in place of a projected
/// code's, with a note; `None` when they agree with the code.
fn projected_geodetic_override(
    keys: &GeoKeys,
    code: u16,
    facts: &EpsgFacts,
) -> Result<Option<(String, String)>, CogError> {
    if let Some(g) = keys.code(key::GEOGRAPHIC_TYPE) {
        if facts.gcs != Some(g) {
            let gcs = Crs::from_epsg(u32::from(g)).map_err(|_| {
                unsupported(format!(
                    "GeographicTypeGeoKey EPSG:{g}, not in the offline EPSG table"
                ))
            })?;
            if !gcs.is_geographic() {
                return Err(malformed(format!(
                    "GeographicTypeGeoKey EPSG:{g} is not a geographic CRS"
                )));
            }
            let part = crate::geokeys::geodetic_params(&gcs.proj4);
            return Ok(Some((
                part,
                format!(
                    "GeographicTypeGeoKey EPSG:{g} replaces the geographic CRS of EPSG:{code} \
                     (EPSG:{}), as GDAL does",
                    facts.gcs.map_or_else(|| "?".into(), |c| c.to_string())
                ),
            )));
        }
    }
    if let Some(d) = keys.code(key::GEOG_GEODETIC_DATUM) {
        if facts.datum != Some(d) {
            let part = crate::geokeys::datum_code_params(d).ok_or_else(|| {
                unsupported(format!(
                    "GeogGeodeticDatumGeoKey EPSG:{d}, a datum Kiln has no definition of"
                ))
            })?;
            return Ok(Some((
                part,
                format!(
                    "GeogGeodeticDatumGeoKey EPSG:{d} replaces the datum of EPSG:{code}, as GDAL \
                     does"
                ),
            )));
        }
    }
    if let Some(e) = keys.code(key::GEOG_ELLIPSOID) {
        if facts.ellipsoid != Some(e) {
            let part = crate::geokeys::ellipsoid_part(keys)?;
            return Ok(Some((
                part,
                format!(
                    "GeogEllipsoidGeoKey EPSG:{e} replaces the datum of EPSG:{code} by that \
                     ellipsoid alone (no datum shift), as GDAL does"
                ),
            )));
        }
    }
    Ok(None)
}

/// A projected CRS named by an EPSG code, with the keys GDAL applies on top of it.
pub(crate) fn projected_code(keys: &GeoKeys, code: u16, base: Crs) -> Result<CrsReading, CogError> {
    let facts = epsg_facts(code);
    check_geodetic_keys(keys, code, &base, &facts, false)?;
    let mut parts = ProjParts::parse(&base.proj4);
    let mut notes = Vec::new();

    // Linear unit.
    let own_metres = parts.metres_per_unit();
    let unit = match linear_unit_key(keys)? {
        Some(u) if !same_number(u.metres, own_metres) => {
            notes.push(format!(
                "ProjLinearUnitsGeoKey: coordinates in {} ({} m), not the {} m unit of \
                 EPSG:{code}",
                u.name,
                num(u.metres),
                num(own_metres)
            ));
            parts.units = vec![u.proj_param()];
            u
        }
        Some(u) => u,
        None => LinearUnit {
            name: "the code's unit".into(),
            metres: own_metres,
        },
    };

    // Datum, ellipsoid.
    if let Some((geodetic, note)) = projected_geodetic_override(keys, code, &facts)? {
        let new = ProjParts::parse(&geodetic).geodetic;
        if new != parts.geodetic {
            parts.geodetic = new;
            notes.push(note);
        }
    }

    if keys.get(key::GEOG_TOWGS84).is_some() {
        notes.push(format!(
            "GeogTOWGS84GeoKey ignored beside EPSG:{code}: its datum shift stands (as GDAL)"
        ));
    }

    // Projection: keys describe one only with ProjCoordTransGeoKey.
    if keys.get(key::PROJ_COORD_TRANS).is_some() {
        let own = Projection::parse(&parts.projection);
        let from_keys =
            ProjParts::parse(&crate::geokeys::projection_part(keys, unit.metres)?).projection;
        let theirs = Projection::parse(&from_keys);
        let same = matches!((&own, &theirs), (Some(a), Some(b)) if a.same_as(b));
        if !same {
            parts.projection = from_keys;
            notes.push(format!(
                "ProjCoordTransGeoKey and the projection keys describe another projection than \
                 EPSG:{code}'s: the keys' is used, as GDAL does"
            ));
        }
    } else {
        let present: Vec<u16> = PROJ_PARAMETER_KEYS
            .iter()
            .copied()
            .filter(|&id| keys.get(id).is_some())
            .collect();
        if !present.is_empty() {
            let names: Vec<&str> = present.iter().map(|&id| key_name(id)).collect();
            notes.push(format!(
                "{} ignored: without ProjCoordTransGeoKey the projection of EPSG:{code} stands \
                 (as GDAL)",
                names.join(", ")
            ));
        }
        if let Some((name, deg)) = angular_unit_key(keys)? {
            if facts
                .angular_degrees
                .is_some_and(|own| !same_number(own, deg))
            {
                notes.push(format!(
                    "GeogAngularUnitsGeoKey ({name}) ignored: no key of EPSG:{code}'s \
                     projection is an angle (as GDAL)"
                ));
            }
        }
    }

    if notes.is_empty() {
        return Ok(CrsReading::plain(base));
    }
    let proj4 = parts.join();
    let crs = if proj4.split_whitespace().eq(base.proj4.split_whitespace()) {
        base
    } else {
        Crs::from_proj4(proj4)
    };
    Ok(CrsReading {
        crs,
        degrees_per_unit: 1.0,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wkt_facts_of_codes() {
        let f = epsg_facts(4807);
        assert_eq!(f.gcs, Some(4807));
        assert_eq!(f.datum, Some(6807));
        assert_eq!(f.prime_meridian, Some(8903));
        assert_eq!(f.angular_degrees, Some(0.9));
        let f = epsg_facts(26954);
        assert_eq!(f.gcs, Some(4269));
        assert_eq!(f.datum, Some(6269));
        assert_eq!(f.ellipsoid, Some(7019));
        assert_eq!(f.prime_meridian, Some(8901));
        assert_eq!(f.angular_degrees, Some(1.0));
        let f = epsg_facts(32621);
        assert_eq!(f.gcs, Some(4326));
        assert_eq!(f.datum, Some(6326));
    }

    #[test]
    fn units_are_named_as_proj_names_them() {
        let u = |m: f64| {
            LinearUnit {
                name: String::new(),
                metres: m,
            }
            .proj_param()
        };
        assert_eq!(u(0.304_800_609_601_219_2), "+units=us-ft");
        assert_eq!(u(0.3048), "+units=ft");
        assert_eq!(u(1000.0), "+units=km");
        assert_eq!(u(0.304_797_265_4), "+to_meter=0.3047972654");
        assert_eq!(u(1.0), "+units=m");
    }

    /// A GeoKey value as the fixture script writes it.
    enum V {
        S(u16),
        D(&'static [f64]),
    }

    fn read(entries: &[(u16, V)]) -> Result<CrsReading, CogError> {
        let mut dir = vec![1u64, 1, 0, entries.len() as u64];
        let mut doubles = Vec::new();
        for (id, v) in entries {
            match v {
                V::S(x) => dir.extend([u64::from(*id), 0, 1, u64::from(*x)]),
                V::D(xs) => {
                    dir.extend([u64::from(*id), 34736, xs.len() as u64, doubles.len() as u64]);
                    doubles.extend_from_slice(xs);
                }
            }
        }
        let keys = GeoKeys::parse(&dir, &doubles, "").unwrap();
        Ok(crate::geokeys::crs_from_keys(&keys)?.unwrap())
    }

    /// Same projection (parameters to 1e-9), same geodetic tokens and units as `gdal`.
    fn assert_reads_as(r: &CrsReading, gdal: &str) {
        let (k, g) = (ProjParts::parse(&r.crs.proj4), ProjParts::parse(gdal));
        let (kp, gp) = (
            Projection::parse(&k.projection).unwrap(),
            Projection::parse(&g.projection).unwrap(),
        );
        assert!(kp.same_as(&gp), "{} vs GDAL {gdal}", r.crs.proj4);
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(sorted(k.geodetic), sorted(g.geodetic), "{}", r.crs.proj4);
        assert_eq!(k.units, g.units, "{}", r.crs.proj4);
    }

    const UTM32: [(u16, V); 2] = [(1024, V::S(1)), (3072, V::S(32632))];

    fn utm32(extra: Vec<(u16, V)>) -> Vec<(u16, V)> {
        let mut v: Vec<(u16, V)> = UTM32.into_iter().collect();
        v.extend(extra);
        v
    }

    // Expected strings: GDAL 3.10 (rasterio 1.4.4 wheels), `src.crs.to_proj4()` of files with
    // exactly these keys.
    #[test]
    fn projected_code_overrides_read_as_gdal() {
        let r = read(&[(1024, V::S(1)), (3072, V::S(26954)), (3076, V::S(9003))]).unwrap();
        assert_eq!(r.crs.epsg, None);
        assert!(r.notes[0].contains("US survey foot"), "{:?}", r.notes);
        assert_reads_as(&r, "+proj=lcc +lat_0=37.8333333333333 +lon_0=-105.5 +lat_1=39.75 +lat_2=38.45 +x_0=914401.828899999 +y_0=304800.6096 +datum=NAD83 +units=us-ft +no_defs");

        let r = read(&utm32(vec![(2048, V::S(4267))])).unwrap();
        assert_reads_as(&r, "+proj=utm +zone=32 +datum=NAD27 +units=m +no_defs");
        let r = read(&utm32(vec![(2050, V::S(6267))])).unwrap();
        assert_reads_as(&r, "+proj=utm +zone=32 +datum=NAD27 +units=m +no_defs");
        let r = read(&utm32(vec![(2056, V::S(7008))])).unwrap();
        assert_reads_as(&r, "+proj=utm +zone=32 +ellps=clrk66 +units=m +no_defs");
        let r = read(&utm32(vec![(3076, V::S(9036))])).unwrap();
        assert_reads_as(&r, "+proj=tmerc +lat_0=0 +lon_0=9 +k=0.9996 +x_0=500000 +y_0=0 +datum=WGS84 +units=km +no_defs");
        let r = read(&utm32(vec![(3076, V::S(9005))])).unwrap();
        assert_reads_as(&r, "+proj=tmerc +lat_0=0 +lon_0=9 +k=0.9996 +x_0=500000 +y_0=0 +datum=WGS84 +to_meter=0.3047972654 +no_defs");
        let r = read(&utm32(vec![(3076, V::S(32767)), (3077, V::D(&[2.0]))])).unwrap();
        assert_reads_as(&r, "+proj=tmerc +lat_0=0 +lon_0=9 +k=0.9996 +x_0=500000 +y_0=0 +datum=WGS84 +to_meter=2 +no_defs");

        // A projection from keys: missing parameters are 0, not the code's.
        let r = read(&utm32(vec![(3075, V::S(1)), (3082, V::D(&[600_000.0]))])).unwrap();
        assert_eq!(r.crs.epsg, None);
        assert_reads_as(
            &r,
            "+proj=tmerc +lat_0=0 +lon_0=0 +k=1 +x_0=600000 +y_0=0 +datum=WGS84 +units=m +no_defs",
        );
        let r = read(&utm32(vec![
            (3075, V::S(8)),
            (3078, V::D(&[40.0])),
            (3079, V::D(&[50.0])),
            (3084, V::D(&[9.0])),
            (3085, V::D(&[45.0])),
        ]))
        .unwrap();
        assert_reads_as(&r, "+proj=lcc +lat_0=45 +lon_0=9 +lat_1=40 +lat_2=50 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs");
    }

    #[test]
    fn keys_that_agree_or_that_gdal_ignores_keep_the_code() {
        // The code's own projection written out in full: still EPSG:32632, nothing to say.
        let r = read(&utm32(vec![
            (3075, V::S(1)),
            (3080, V::D(&[9.0])),
            (3081, V::D(&[0.0])),
            (3082, V::D(&[500_000.0])),
            (3083, V::D(&[0.0])),
            (3092, V::D(&[0.9996])),
            (2048, V::S(4326)),
            (3076, V::S(9001)),
        ]))
        .unwrap();
        assert_eq!(r.crs.epsg, Some(32632));
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        // Ignored by GDAL (EPSG:32632 stays): said, not silent.
        for (extra, word) in [
            (vec![(3082, V::D(&[600_000.0]))], "ProjFalseEastingGeoKey"),
            (vec![(2054, V::S(9105))], "GeogAngularUnitsGeoKey"),
            (vec![(2062, V::D(&[1.0, 2.0, 3.0]))], "GeogTOWGS84GeoKey"),
        ] {
            let r = read(&utm32(extra)).unwrap();
            assert_eq!(r.crs.epsg, Some(32632));
            assert!(r.notes.iter().any(|n| n.contains(word)), "{:?}", r.notes);
        }
    }

    #[test]
    fn ambiguous_keys_are_errors_naming_the_key() {
        let cases: Vec<(Vec<(u16, V)>, &str)> = vec![
            (
                vec![(1024, V::S(2)), (2048, V::S(4326)), (2051, V::S(8903))],
                "GeogPrimeMeridianGeoKey",
            ),
            (
                vec![(1024, V::S(2)), (2048, V::S(4807)), (2051, V::S(8901))],
                "GeogPrimeMeridianGeoKey",
            ),
            (
                vec![(1024, V::S(2)), (2048, V::S(4326)), (2054, V::S(9105))],
                "GeogAngularUnitsGeoKey",
            ),
            (
                vec![(1024, V::S(2)), (2048, V::S(4807)), (2054, V::S(9102))],
                "GeogAngularUnitsGeoKey",
            ),
            (
                vec![(1024, V::S(2)), (2048, V::S(4326)), (2050, V::S(6267))],
                "GeogGeodeticDatumGeoKey",
            ),
            (
                vec![(1024, V::S(2)), (2048, V::S(4326)), (2056, V::S(7008))],
                "GeogEllipsoidGeoKey",
            ),
            (
                vec![
                    (1024, V::S(2)),
                    (2048, V::S(4326)),
                    (2057, V::D(&[6_378_206.4])),
                ],
                "GeogSemiMajorAxisGeoKey",
            ),
            (
                vec![
                    (1024, V::S(2)),
                    (2048, V::S(4326)),
                    (2061, V::D(&[2.33722917])),
                ],
                "GeogPrimeMeridianLongGeoKey",
            ),
            (utm32(vec![(2051, V::S(8903))]), "GeogPrimeMeridianGeoKey"),
            (utm32(vec![(3076, V::S(9999))]), "ProjLinearUnitsGeoKey"),
            (utm32(vec![(3076, V::S(32767))]), "ProjLinearUnitSizeGeoKey"),
            (
                vec![
                    (1024, V::S(2)),
                    (2048, V::S(32767)),
                    (2050, V::S(6326)),
                    (2054, V::S(9110)),
                ],
                "GeogAngularUnitsGeoKey",
            ),
        ];
        for (entries, word) in cases {
            match read(&entries) {
                Err(e) => assert!(e.to_string().contains(word), "{e} lacks {word}"),
                Ok(r) => panic!("read as {} ({word})", r.crs.proj4),
            }
        }
        // Agreeing keys beside a geographic code are fine.
        let r = read(&[
            (1024, V::S(2)),
            (2048, V::S(4269)),
            (2050, V::S(6269)),
            (2056, V::S(7019)),
            (2054, V::S(9102)),
            (2051, V::S(8901)),
        ])
        .unwrap();
        assert_eq!(r.crs.epsg, Some(4269));
        assert!(r.notes.is_empty(), "{:?}", r.notes);
    }

    #[test]
    fn geographic_crs_in_grads_is_read_in_degrees() {
        let r = read(&[(1024, V::S(2)), (2048, V::S(4807))]).unwrap();
        assert_eq!(r.crs.epsg, Some(4807));
        assert_eq!(r.degrees_per_unit, 0.9);
        assert_eq!(r.notes.len(), 1);
        let r = read(&[
            (1024, V::S(2)),
            (2048, V::S(32767)),
            (2050, V::S(6326)),
            (2051, V::S(8903)),
            (2054, V::S(9105)),
        ])
        .unwrap();
        assert_eq!(r.degrees_per_unit, 0.9);
        // GDAL: `+proj=longlat +ellps=WGS84 +pm=paris` (WGS 84's null shift either way).
        assert_eq!(r.crs.proj4, "+proj=longlat +datum=WGS84 +pm=paris +no_defs");
        assert_eq!(
            kiln_core::crs::prime_meridian_degrees(&r.crs).map(|d| (d * 1e8).round() / 1e8),
            Some(2.33722917)
        );
    }

    #[test]
    fn utm_compares_as_transverse_mercator() {
        let parts = ProjParts::parse("+proj=utm +zone=32 +datum=WGS84 +units=m +no_defs");
        let utm = Projection::parse(&parts.projection).unwrap();
        let tm = Projection::parse(
            &ProjParts::parse("+proj=tmerc +lat_0=0 +lon_0=9 +k=0.9996 +x_0=500000 +y_0=0")
                .projection,
        )
        .unwrap();
        assert!(utm.same_as(&tm));
        let moved = Projection::parse(
            &ProjParts::parse("+proj=tmerc +lat_0=0 +lon_0=9 +k=0.9996 +x_0=600000 +y_0=0")
                .projection,
        )
        .unwrap();
        assert!(!utm.same_as(&moved));
    }
}
