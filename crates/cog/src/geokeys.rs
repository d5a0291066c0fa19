//! GeoKey directory parsing and the mapping from GeoKeys to a [`kiln_core::Crs`], and the
//! georeferencing tags (ModelPixelScale, ModelTiepoint, ModelTransformation) to a
//! [`GeoTransform`].
//!
//! The geotransform follows GDAL's default reading: PixelIsPoint files are shifted by half a
//! pixel so the transform always addresses pixel corners, and several tie points without a
//! pixel scale (GCPs) are accepted only when they lie exactly on one affine transform.
//! CRSs named by an EPSG code come from the offline EPSG table; user-defined ones are turned
//! into a PROJ.4 string written the way PROJ renders it (GDAL's `exportToProj4`), so that a
//! string here and one from GDAL can be compared.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kiln_core::{Crs, GeoTransform};

use crate::crs_keys::{self, CrsReading};
use crate::header::{tag, Georef, RasterType};
use crate::ifd::{malformed, optional, unsupported, RawIfd};
use crate::CogError;

/// GeoKey IDs (GeoTIFF 1.0 / 1.1).
pub(crate) mod key {
    pub const MODEL_TYPE: u16 = 1024;
    pub const RASTER_TYPE: u16 = 1025;
    pub const GEOGRAPHIC_TYPE: u16 = 2048;
    pub const GEOG_GEODETIC_DATUM: u16 = 2050;
    pub const GEOG_PRIME_MERIDIAN: u16 = 2051;
    pub const GEOG_LINEAR_UNITS: u16 = 2052;
    pub const GEOG_ANGULAR_UNITS: u16 = 2054;
    pub const GEOG_ANGULAR_UNIT_SIZE: u16 = 2055;
    pub const GEOG_ELLIPSOID: u16 = 2056;
    pub const GEOG_SEMI_MAJOR_AXIS: u16 = 2057;
    pub const GEOG_SEMI_MINOR_AXIS: u16 = 2058;
    pub const GEOG_INV_FLATTENING: u16 = 2059;
    pub const GEOG_PRIME_MERIDIAN_LONG: u16 = 2061;
    pub const GEOG_TOWGS84: u16 = 2062;
    pub const PROJECTED_CS_TYPE: u16 = 3072;
    pub const PROJECTION: u16 = 3074;
    pub const PROJ_COORD_TRANS: u16 = 3075;
    pub const PROJ_LINEAR_UNITS: u16 = 3076;
    pub const PROJ_LINEAR_UNIT_SIZE: u16 = 3077;
    pub const PROJ_STD_PARALLEL1: u16 = 3078;
    pub const PROJ_STD_PARALLEL2: u16 = 3079;
    pub const PROJ_NAT_ORIGIN_LONG: u16 = 3080;
    pub const PROJ_NAT_ORIGIN_LAT: u16 = 3081;
    pub const PROJ_FALSE_EASTING: u16 = 3082;
    pub const PROJ_FALSE_NORTHING: u16 = 3083;
    pub const PROJ_FALSE_ORIGIN_LONG: u16 = 3084;
    pub const PROJ_FALSE_ORIGIN_LAT: u16 = 3085;
    pub const PROJ_FALSE_ORIGIN_EASTING: u16 = 3086;
    pub const PROJ_FALSE_ORIGIN_NORTHING: u16 = 3087;
    pub const PROJ_CENTER_LONG: u16 = 3088;
    pub const PROJ_CENTER_LAT: u16 = 3089;
    pub const PROJ_CENTER_EASTING: u16 = 3090;
    pub const PROJ_CENTER_NORTHING: u16 = 3091;
    pub const PROJ_SCALE_AT_NAT_ORIGIN: u16 = 3092;
    pub const PROJ_SCALE_AT_CENTER: u16 = 3093;
    pub const PROJ_AZIMUTH_ANGLE: u16 = 3094;
    pub const PROJ_STRAIGHT_VERT_POLE_LONG: u16 = 3095;
}

/// "User-defined" marker value of coded GeoKeys.
pub(crate) const USER_DEFINED: u16 = 32767;
/// Most keys a GeoKey directory may hold.
const MAX_KEYS: u64 = 4096;

/// The georeferencing tags of the full-resolution IFD, read raw.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct GeoTags {
    pub pixel_scale: Option<Vec<f64>>,
    pub tiepoints: Option<Vec<f64>>,
    pub transformation: Option<Vec<f64>>,
    pub key_directory: Option<Vec<u64>>,
    pub double_params: Option<Vec<f64>>,
    pub ascii_params: Option<String>,
}

impl GeoTags {
    pub(crate) fn read(ifd: &RawIfd<'_>) -> Result<Self, CogError> {
        Ok(Self {
            pixel_scale: ifd.floats(tag::MODEL_PIXEL_SCALE, 16)?,
            tiepoints: ifd.floats(tag::MODEL_TIEPOINT, 6 * 100_000)?,
            transformation: ifd.floats(tag::MODEL_TRANSFORMATION, 16)?,
            key_directory: ifd.uints(tag::GEO_KEY_DIRECTORY, 4 * (MAX_KEYS + 1))?,
            double_params: ifd.floats(tag::GEO_DOUBLE_PARAMS, 65_536)?,
            ascii_params: optional(ifd.ascii(tag::GEO_ASCII_PARAMS, 1 << 20))?,
        })
    }
}

/// One GeoKey value.
#[derive(Debug, Clone, PartialEq)]
pub enum GeoKeyValue {
    Short(u16),
    Doubles(Vec<f64>),
    Ascii(String),
}

/// A parsed GeoKey directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeoKeys {
    keys: BTreeMap<u16, GeoKeyValue>,
}

impl GeoKeys {
    /// Parses a GeoKeyDirectory (as u16 values widened to u64) with its double and ASCII
    /// parameter tags.
    pub fn parse(directory: &[u64], doubles: &[f64], ascii: &str) -> Result<Self, CogError> {
        let short = |i: usize| -> Result<u16, CogError> {
            directory
                .get(i)
                .and_then(|&v| u16::try_from(v).ok())
                .ok_or_else(|| malformed("GeoKeyDirectory cut short"))
        };
        let version = short(0)?;
        if version != 1 {
            return Err(malformed(format!("GeoKeyDirectory version {version}")));
        }
        let n = usize::from(short(3)?);
        let mut keys = BTreeMap::new();
        for k in 0..n {
            let base = 4 + 4 * k;
            let id = short(base)?;
            let location = short(base + 1)?;
            let count = usize::from(short(base + 2)?);
            let value = short(base + 3)?;
            let v = match location {
                0 => GeoKeyValue::Short(value),
                t if t == tag::GEO_DOUBLE_PARAMS => {
                    let start = usize::from(value);
                    let vals = doubles.get(start..start + count).ok_or_else(|| {
                        malformed(format!("GeoKey {id} points past GeoDoubleParams"))
                    })?;
                    GeoKeyValue::Doubles(vals.to_vec())
                }
                t if t == tag::GEO_ASCII_PARAMS => {
                    // Text keys are citations, never needed to locate pixels: a bad
                    // reference reads as empty rather than failing the file.
                    let start = usize::from(value);
                    let text = ascii
                        .get(start..(start + count).min(ascii.len()))
                        .unwrap_or_default();
                    GeoKeyValue::Ascii(text.trim_end_matches(['|', '\0']).to_string())
                }
                t if t == tag::GEO_KEY_DIRECTORY => {
                    // Shorts stored in the directory itself (rare, but legal).
                    GeoKeyValue::Short(short(usize::from(value))?)
                }
                t => return Err(malformed(format!("GeoKey {id} stored in unknown tag {t}"))),
            };
            keys.insert(id, v);
        }
        Ok(Self { keys })
    }

    /// The value of a key.
    pub fn get(&self, id: u16) -> Option<&GeoKeyValue> {
        self.keys.get(&id)
    }

    /// A SHORT key's value.
    pub fn short(&self, id: u16) -> Option<u16> {
        match self.keys.get(&id)? {
            GeoKeyValue::Short(v) => Some(*v),
            _ => None,
        }
    }

    /// A coded key's value when it is a real code (not 0 "undefined" nor 32767 "user-defined").
    pub(crate) fn code(&self, id: u16) -> Option<u16> {
        self.short(id).filter(|&c| c != 0 && c != USER_DEFINED)
    }

    /// The first value of a DOUBLE key (SHORT keys are accepted as numbers too).
    pub fn double(&self, id: u16) -> Option<f64> {
        match self.keys.get(&id)? {
            GeoKeyValue::Doubles(v) => v.first().copied(),
            GeoKeyValue::Short(v) => Some(f64::from(*v)),
            GeoKeyValue::Ascii(_) => None,
        }
    }

    fn doubles(&self, id: u16) -> Option<&[f64]> {
        match self.keys.get(&id)? {
            GeoKeyValue::Doubles(v) => Some(v),
            _ => None,
        }
    }

    /// The first key among `ids` that is present.
    fn first_double(&self, ids: &[u16]) -> Option<f64> {
        ids.iter().find_map(|&id| self.double(id))
    }
}

/// Georeferencing of the full-resolution image from its GeoTIFF tags; `None` when the file
/// has neither a transformation nor tie points.
pub(crate) fn georef(tags: &GeoTags) -> Result<Option<Georef>, CogError> {
    let keys = match &tags.key_directory {
        Some(dir) => Some(GeoKeys::parse(
            dir,
            tags.double_params.as_deref().unwrap_or_default(),
            tags.ascii_params.as_deref().unwrap_or_default(),
        )?),
        None => None,
    };
    let Some(mut transform) = geotransform(tags)? else {
        return Ok(None);
    };
    let raster_type = match keys.as_ref().and_then(|k| k.short(key::RASTER_TYPE)) {
        Some(2) => RasterType::PixelIsPoint,
        _ => RasterType::PixelIsArea,
    };
    if raster_type == RasterType::PixelIsPoint {
        // GDAL's default (GTIFF_POINT_GEO_IGNORE=NO): the tie point names a pixel centre, so
        // the corner lies half a pixel up and left. For GCPs GDAL adds 0.5 to pixel/line,
        // which is the same shift of the fitted transform.
        let g = &mut transform.0;
        g[0] -= g[1] * 0.5 + g[2] * 0.5;
        g[3] -= g[4] * 0.5 + g[5] * 0.5;
    }
    let reading = match &keys {
        Some(k) => crs_from_keys(k)?,
        None => None,
    };
    let (crs, crs_notes) = match reading {
        Some(r) => {
            if r.degrees_per_unit != 1.0 {
                // A geographic CRS counting in grads (or another angle): the transform is
                // rescaled to degrees, the only angular unit the rest of Kiln knows.
                for v in &mut transform.0 {
                    *v *= r.degrees_per_unit;
                }
            }
            (Some(r.crs), r.notes)
        }
        None => (None, Vec::new()),
    };
    Ok(Some(Georef {
        transform,
        crs,
        raster_type,
        crs_notes,
    }))
}

/// The pixel-corner transform (before any PixelIsPoint shift).
fn geotransform(tags: &GeoTags) -> Result<Option<GeoTransform>, CogError> {
    if let Some(m) = &tags.transformation {
        if m.len() < 16 {
            return Err(malformed(format!(
                "ModelTransformation has {} values, expected 16",
                m.len()
            )));
        }
        return Ok(Some(GeoTransform([m[3], m[0], m[1], m[7], m[4], m[5]])));
    }
    let Some(tp) = tags.tiepoints.as_deref().filter(|t| t.len() >= 6) else {
        return Ok(None);
    };
    if let Some(s) = tags.pixel_scale.as_deref().filter(|s| s.len() >= 2) {
        let (i, j, x, y) = (tp[0], tp[1], tp[3], tp[4]);
        let (sx, sy) = (s[0], s[1]);
        return Ok(Some(GeoTransform([
            x - i * sx,
            sx,
            0.0,
            y + j * sy,
            0.0,
            -sy,
        ])));
    }
    fit_tiepoints(tp).map(Some)
}

/// Fits an affine transform to tie points; only an exact fit (residuals below a millionth of
/// a pixel) is accepted, anything else needs a real GCP warp.
fn fit_tiepoints(tp: &[f64]) -> Result<GeoTransform, CogError> {
    let pts: Vec<[f64; 4]> = tp
        .chunks_exact(6)
        .map(|c| [c[0], c[1], c[3], c[4]])
        .collect();
    let n = pts.len();
    if n < 3 {
        return Err(unsupported(format!(
            "GCP-only georeferencing ({n} tie point(s) and no pixel scale)"
        )));
    }
    let nf = n as f64;
    let mean = |k: usize| pts.iter().map(|p| p[k]).sum::<f64>() / nf;
    let (ci, cj, cx, cy) = (mean(0), mean(1), mean(2), mean(3));
    let (mut sii, mut sij, mut sjj) = (0.0, 0.0, 0.0);
    let (mut six, mut sjx, mut siy, mut sjy) = (0.0, 0.0, 0.0, 0.0);
    for p in &pts {
        let (di, dj, dx, dy) = (p[0] - ci, p[1] - cj, p[2] - cx, p[3] - cy);
        sii += di * di;
        sij += di * dj;
        sjj += dj * dj;
        six += di * dx;
        sjx += dj * dx;
        siy += di * dy;
        sjy += dj * dy;
    }
    let det = sii * sjj - sij * sij;
    // NaN-safe: a NaN determinant also counts as singular.
    if det.is_nan() || det.abs() <= 1e-12 * (sii * sjj).max(f64::MIN_POSITIVE) {
        return Err(unsupported(
            "GCP-only georeferencing (tie points are collinear)",
        ));
    }
    let a1 = (six * sjj - sjx * sij) / det;
    let a2 = (sjx * sii - six * sij) / det;
    let b1 = (siy * sjj - sjy * sij) / det;
    let b2 = (sjy * sii - siy * sij) / det;
    let a0 = cx - a1 * ci - a2 * cj;
    let b0 = cy - b1 * ci - b2 * cj;
    let pixel = a1.hypot(b1).min(a2.hypot(b2));
    let worst = pts
        .iter()
        .map(|p| {
            let x = a0 + a1 * p[0] + a2 * p[1];
            let y = b0 + b1 * p[0] + b2 * p[1];
            (x - p[2]).hypot(y - p[3])
        })
        .fold(0.0f64, f64::max);
    if pixel.is_nan() || worst.is_nan() || pixel <= 0.0 || worst > 1e-6 * pixel {
        return Err(unsupported(format!(
            "GCP-only georeferencing ({n} tie points that no affine transform fits: residual {worst:e})"
        )));
    }
    Ok(GeoTransform([a0, a1, a2, b0, b1, b2]))
}

/// The CRS named or described by the GeoKeys, with the keys that refine an EPSG code applied
/// (see [`crate::crs_keys`]); `None` when they describe none.
pub fn crs_from_keys(keys: &GeoKeys) -> Result<Option<CrsReading>, CogError> {
    let projected_code = keys.code(key::PROJECTED_CS_TYPE);
    let geographic_code = keys.code(key::GEOGRAPHIC_TYPE);
    let model = keys.short(key::MODEL_TYPE).unwrap_or(0);
    let model = match model {
        1..=3 => model,
        _ if projected_code.is_some() || keys.get(key::PROJ_COORD_TRANS).is_some() => 1,
        _ if geographic_code.is_some() || keys.get(key::GEOG_GEODETIC_DATUM).is_some() => 2,
        _ => return Ok(None),
    };
    match model {
        1 => {
            if let Some(code) = projected_code {
                return match Crs::from_epsg(u32::from(code)) {
                    Ok(c) if c.is_geographic() => Err(malformed(format!(
                        "ProjectedCSTypeGeoKey EPSG:{code} is a geographic CRS"
                    ))),
                    Ok(c) => crs_keys::projected_code(keys, code, c).map(Some),
                    // Not in the offline table: describe it from the keys if they allow.
                    Err(_) if keys.get(key::PROJ_COORD_TRANS).is_some() => {
                        user_defined_projected(keys).map(|c| Some(CrsReading::plain(c)))
                    }
                    Err(_) => Err(unsupported(format!(
                        "projected CRS EPSG:{code}, not in the offline EPSG table"
                    ))),
                };
            }
            if keys.get(key::PROJECTION).is_none() && keys.get(key::PROJ_COORD_TRANS).is_none() {
                return Ok(None);
            }
            user_defined_projected(keys).map(|c| Some(CrsReading::plain(c)))
        }
        2 => {
            if let Some(code) = geographic_code {
                return crs_keys::geographic_code(keys, code).map(Some);
            }
            let degrees_per_unit = angular_factor(keys)?;
            let mut notes = Vec::new();
            if degrees_per_unit != 1.0 {
                notes.push(format!(
                    "GeogAngularUnitsGeoKey: coordinates in units of {} degree, converted to \
                     degrees",
                    num(degrees_per_unit)
                ));
            }
            Ok(Some(CrsReading {
                crs: Crs::from_proj4(format!("+proj=longlat {} +no_defs", datum_part(keys)?)),
                degrees_per_unit,
                notes,
            }))
        }
        _ => Err(unsupported("geocentric CRS (GTModelTypeGeoKey = 3)")),
    }
}

/// Formats a number the way PROJ strings carry it (shortest round-trip form, no "-0").
pub(crate) fn num(v: f64) -> String {
    format!("{}", v + 0.0)
}

/// `+towgs84=` from GeogTOWGS84GeoKey (3 or 7 values; 3 are padded with zeros).
fn towgs84(keys: &GeoKeys) -> Option<String> {
    let v = keys.doubles(key::GEOG_TOWGS84)?;
    if v.len() != 3 && v.len() != 7 {
        return None;
    }
    let mut all: Vec<String> = v.iter().map(|&x| num(x)).collect();
    all.resize(7, "0".into());
    Some(format!("+towgs84={}", all.join(",")))
}

/// Known ellipsoids: EPSG code, PROJ name, semi-major axis, inverse flattening.
const ELLIPSOIDS: &[(u16, &str, f64, f64)] = &[
    (7030, "WGS84", 6_378_137.0, 298.257_223_563),
    (7019, "GRS80", 6_378_137.0, 298.257_222_101),
    (7008, "clrk66", 6_378_206.4, 294.978_698_213_898),
    (7012, "clrk80", 6_378_249.145, 293.465),
    (7004, "bessel", 6_377_397.155, 299.152_812_8),
    (7022, "intl", 6_378_388.0, 297.0),
    (7001, "airy", 6_377_563.396, 299.324_964_6),
    (7002, "mod_airy", 6_377_340.189, 299.324_964_6),
    (7003, "aust_SA", 6_378_160.0, 298.25),
    (7043, "WGS72", 6_378_135.0, 298.26),
    (7024, "krass", 6_378_245.0, 298.3),
    (7015, "evrst30", 6_377_276.345, 300.801_7),
];

/// The datum / ellipsoid / prime meridian part of a PROJ string, from the geographic keys.
fn datum_part(keys: &GeoKeys) -> Result<String, CogError> {
    // A coded geographic CRS brings everything (GDAL ignores explicit axes next to it).
    if let Some(code) = keys.code(key::GEOGRAPHIC_TYPE) {
        let crs = Crs::from_epsg(u32::from(code)).map_err(|_| {
            unsupported(format!(
                "geographic CRS EPSG:{code}, not in the offline EPSG table"
            ))
        })?;
        return Ok(geodetic_params(&crs.proj4));
    }
    if let Some(mut named) = keys
        .code(key::GEOG_GEODETIC_DATUM)
        .and_then(datum_code_params)
    {
        // A prime meridian key still applies (GDAL: `+ellps=WGS84 +pm=paris` for datum 6326
        // with the Paris meridian); the datum's own meridian is replaced.
        if let Some(pm) = prime_meridian(keys)? {
            named = named
                .split_whitespace()
                .filter(|t| !t.starts_with("+pm="))
                .chain(std::iter::once(pm.as_str()))
                .collect::<Vec<_>>()
                .join(" ");
        }
        return Ok(named);
    }
    let mut out = ellipsoid_part(keys)?;
    if let Some(t) = towgs84(keys) {
        out.push(' ');
        out.push_str(&t);
    }
    if let Some(pm) = prime_meridian(keys)? {
        out.push(' ');
        out.push_str(&pm);
    }
    Ok(out)
}

/// The datum part of a PROJ string for an EPSG datum code (6xxx), when Kiln knows it.
pub(crate) fn datum_code_params(datum: u16) -> Option<String> {
    match datum {
        6326 => Some("+datum=WGS84".to_string()),
        6267 => Some("+datum=NAD27".to_string()),
        6269 => Some("+datum=NAD83".to_string()),
        // EPSG numbers most geographic CRSs 4xxx after their datum 6xxx.
        6000..=6999 => Crs::from_epsg(u32::from(datum) - 2000)
            .ok()
            .filter(Crs::is_geographic)
            .map(|c| geodetic_params(&c.proj4)),
        _ => None,
    }
}

/// Everything of a geographic PROJ string except the projection and `+no_defs`.
pub(crate) fn geodetic_params(proj4: &str) -> String {
    proj4
        .split_whitespace()
        .filter(|p| !p.starts_with("+proj=") && *p != "+no_defs" && !p.starts_with("+type="))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn ellipsoid_part(keys: &GeoKeys) -> Result<String, CogError> {
    if let Some(code) = keys.code(key::GEOG_ELLIPSOID) {
        return match ELLIPSOIDS.iter().find(|e| e.0 == code) {
            Some(e) => Ok(format!("+ellps={}", e.1)),
            None => match explicit_ellipsoid(keys) {
                Some(s) => Ok(s),
                None => Err(unsupported(format!("ellipsoid EPSG:{code}"))),
            },
        };
    }
    // GDAL falls back to the WGS 84 ellipsoid when nothing describes one.
    Ok(explicit_ellipsoid(keys).unwrap_or_else(|| "+ellps=WGS84".to_string()))
}

/// An ellipsoid from explicit axes, named when it matches a known one (as PROJ does).
fn explicit_ellipsoid(keys: &GeoKeys) -> Option<String> {
    let a = keys
        .double(key::GEOG_SEMI_MAJOR_AXIS)
        .filter(|a| *a > 0.0)?;
    let rf = keys
        .double(key::GEOG_INV_FLATTENING)
        .filter(|f| *f > 0.0)
        .or_else(|| {
            let b = keys
                .double(key::GEOG_SEMI_MINOR_AXIS)
                .filter(|b| *b > 0.0 && *b < a)?;
            Some(a / (a - b))
        });
    let Some(rf) = rf else {
        return Some(format!("+R={}", num(a)));
    };
    if let Some(e) = ELLIPSOIDS
        .iter()
        // WGS 84 and GRS 80 differ by 1.5e-6 in 1/f: compare to 1e-9.
        .find(|e| (e.2 - a).abs() < 1e-3 && (e.3 - rf).abs() < 1e-9 * e.3)
    {
        return Some(format!("+ellps={}", e.1));
    }
    Some(format!("+a={} +rf={}", num(a), num(rf)))
}

fn prime_meridian(keys: &GeoKeys) -> Result<Option<String>, CogError> {
    const NAMED: &[(u16, &str)] = &[
        (8902, "lisbon"),
        (8903, "paris"),
        (8904, "bogota"),
        (8905, "madrid"),
        (8906, "rome"),
        (8907, "bern"),
        (8908, "jakarta"),
        (8909, "ferro"),
        (8910, "brussels"),
        (8911, "stockholm"),
        (8912, "athens"),
        (8913, "oslo"),
    ];
    match keys.code(key::GEOG_PRIME_MERIDIAN) {
        Some(8901) => Ok(None),
        Some(code) => match NAMED.iter().find(|p| p.0 == code) {
            Some(p) => Ok(Some(format!("+pm={}", p.1))),
            None => Err(unsupported(format!("prime meridian EPSG:{code}"))),
        },
        // The longitude counts in the geographic angular unit (libgeotiff's GTIFAngleToDD).
        None => {
            let unit = angular_factor(keys)?;
            Ok(keys
                .double(key::GEOG_PRIME_MERIDIAN_LONG)
                .filter(|l| *l != 0.0)
                .map(|l| format!("+pm={}", num(l * unit))))
        }
    }
}

/// Linear unit of a projected CRS: the PROJ units parameter and metres per unit (metres when
/// the keys name none).
fn linear_units(keys: &GeoKeys) -> Result<(String, f64), CogError> {
    Ok(match crs_keys::linear_unit_key(keys)? {
        Some(u) => (u.proj_param(), u.metres),
        None => ("+units=m".into(), 1.0),
    })
}

/// Degrees per angular unit of the angle-valued keys (and of geographic coordinates).
fn angular_factor(keys: &GeoKeys) -> Result<f64, CogError> {
    Ok(crs_keys::angular_unit_key(keys)?.map_or(1.0, |u| u.1))
}

/// Builds the PROJ string of a user-defined projected CRS.
fn user_defined_projected(keys: &GeoKeys) -> Result<Crs, CogError> {
    let (units, to_metre) = linear_units(keys)?;
    let datum = datum_part(keys)?;
    let proj = projection_part(keys, to_metre)?;
    Ok(Crs::from_proj4(format!("{proj} {datum} {units} +no_defs")))
}

/// The projection part of a PROJ string (`+proj=… +x_0=… +y_0=…`) from ProjectionGeoKey or
/// ProjCoordTransGeoKey and the parameter keys; linear keys count in units of `to_metre`
/// metres. A parameter without a key is 0 (a scale 1), also beside an EPSG code: GDAL 3.10
/// does not fill it from the code (checked: EPSG:32632 + Transverse Mercator + only a false
/// easting gives `+lon_0=0 +k=1`).
pub(crate) fn projection_part(keys: &GeoKeys, to_metre: f64) -> Result<String, CogError> {
    // A coded projection (ProjectionGeoKey); EPSG codes UTM zones 16001-16060 (north) and
    // 16101-16160 (south).
    if let Some(p) = keys.code(key::PROJECTION) {
        match p {
            16001..=16060 => return Ok(format!("+proj=utm +zone={}", p - 16000)),
            16101..=16160 => return Ok(format!("+proj=utm +zone={} +south", p - 16100)),
            _ if keys.get(key::PROJ_COORD_TRANS).is_none() => {
                return Err(unsupported(format!(
                    "projection EPSG:{p} (ProjectionGeoKey)"
                )))
            }
            _ => {}
        }
    }

    let ct = keys
        .short(key::PROJ_COORD_TRANS)
        .ok_or_else(|| unsupported("user-defined projection without ProjCoordTransGeoKey"))?;
    let deg = angular_factor(keys)?;
    let angle = |ids: &[u16], default: f64| keys.first_double(ids).map_or(default, |v| v * deg);
    let linear = |ids: &[u16]| keys.first_double(ids).map_or(0.0, |v| v * to_metre);
    use key::*;
    let nat_lat = |d| {
        angle(
            &[PROJ_NAT_ORIGIN_LAT, PROJ_FALSE_ORIGIN_LAT, PROJ_CENTER_LAT],
            d,
        )
    };
    let nat_lon = |d| {
        angle(
            &[
                PROJ_NAT_ORIGIN_LONG,
                PROJ_FALSE_ORIGIN_LONG,
                PROJ_CENTER_LONG,
            ],
            d,
        )
    };
    let center_lat = |d| {
        angle(
            &[PROJ_CENTER_LAT, PROJ_NAT_ORIGIN_LAT, PROJ_FALSE_ORIGIN_LAT],
            d,
        )
    };
    let center_lon = |d| {
        angle(
            &[
                PROJ_CENTER_LONG,
                PROJ_NAT_ORIGIN_LONG,
                PROJ_FALSE_ORIGIN_LONG,
            ],
            d,
        )
    };
    let false_lat = |d| {
        angle(
            &[PROJ_FALSE_ORIGIN_LAT, PROJ_NAT_ORIGIN_LAT, PROJ_CENTER_LAT],
            d,
        )
    };
    let false_lon = |d| {
        angle(
            &[
                PROJ_FALSE_ORIGIN_LONG,
                PROJ_NAT_ORIGIN_LONG,
                PROJ_CENTER_LONG,
            ],
            d,
        )
    };
    let sp1 = |d| angle(&[PROJ_STD_PARALLEL1], d);
    let sp2 = |d| angle(&[PROJ_STD_PARALLEL2], d);
    let scale = || {
        keys.first_double(&[PROJ_SCALE_AT_NAT_ORIGIN, PROJ_SCALE_AT_CENTER])
            .unwrap_or(1.0)
    };
    let fe = linear(&[
        PROJ_FALSE_EASTING,
        PROJ_CENTER_EASTING,
        PROJ_FALSE_ORIGIN_EASTING,
    ]);
    let fn_ = linear(&[
        PROJ_FALSE_NORTHING,
        PROJ_CENTER_NORTHING,
        PROJ_FALSE_ORIGIN_NORTHING,
    ]);
    let false_e = linear(&[
        PROJ_FALSE_ORIGIN_EASTING,
        PROJ_FALSE_EASTING,
        PROJ_CENTER_EASTING,
    ]);
    let false_n = linear(&[
        PROJ_FALSE_ORIGIN_NORTHING,
        PROJ_FALSE_NORTHING,
        PROJ_CENTER_NORTHING,
    ]);
    let xy = format!("+x_0={} +y_0={}", num(fe), num(fn_));

    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = match ct {
        // Transverse Mercator
        1 => write!(
            s,
            "+proj=tmerc +lat_0={} +lon_0={} +k={} {xy}",
            num(nat_lat(0.0)),
            num(nat_lon(0.0)),
            num(scale())
        ),
        // Mercator: 2SP when a standard parallel is given, else 1SP with a scale.
        7 => match keys.double(PROJ_STD_PARALLEL1) {
            Some(ts) => write!(
                s,
                "+proj=merc +lon_0={} +lat_ts={} {xy}",
                num(nat_lon(0.0)),
                num(ts * deg)
            ),
            None => write!(
                s,
                "+proj=merc +lon_0={} +k={} {xy}",
                num(nat_lon(0.0)),
                num(scale())
            ),
        },
        // Lambert Conformal Conic 2SP
        8 => write!(
            s,
            "+proj=lcc +lat_0={} +lon_0={} +lat_1={} +lat_2={} +x_0={} +y_0={}",
            num(false_lat(0.0)),
            num(false_lon(0.0)),
            num(sp1(0.0)),
            num(sp2(0.0)),
            num(false_e),
            num(false_n)
        ),
        // Lambert Conformal Conic 1SP
        9 => {
            let lat = nat_lat(0.0);
            write!(
                s,
                "+proj=lcc +lat_1={} +lat_0={} +lon_0={} +k_0={} {xy}",
                num(lat),
                num(lat),
                num(nat_lon(0.0)),
                num(scale())
            )
        }
        // Lambert Azimuthal Equal Area
        10 => write!(
            s,
            "+proj=laea +lat_0={} +lon_0={} {xy}",
            num(center_lat(0.0)),
            num(center_lon(0.0))
        ),
        // Albers Equal Area
        11 => write!(
            s,
            "+proj=aea +lat_0={} +lon_0={} +lat_1={} +lat_2={} +x_0={} +y_0={}",
            num(nat_lat(0.0)),
            num(nat_lon(0.0)),
            num(sp1(0.0)),
            num(sp2(0.0)),
            num(false_e),
            num(false_n)
        ),
        // Azimuthal Equidistant
        12 => write!(
            s,
            "+proj=aeqd +lat_0={} +lon_0={} {xy}",
            num(center_lat(0.0)),
            num(center_lon(0.0))
        ),
        // Equidistant Conic
        13 => write!(
            s,
            "+proj=eqdc +lat_0={} +lon_0={} +lat_1={} +lat_2={} {xy}",
            num(center_lat(0.0)),
            num(center_lon(0.0)),
            num(sp1(0.0)),
            num(sp2(0.0))
        ),
        // Stereographic
        14 => write!(
            s,
            "+proj=stere +lat_0={} +lon_0={} +k={} {xy}",
            num(center_lat(0.0)),
            num(center_lon(0.0)),
            num(scale())
        ),
        // Polar Stereographic: GeoTIFF keeps the latitude of true scale in NatOriginLat.
        // As GDAL's SetPS: scale 1 off the pole is variant B (lat_ts), else variant A.
        15 => {
            let lat = keys
                .first_double(&[PROJ_NAT_ORIGIN_LAT, PROJ_STD_PARALLEL1])
                .map_or(90.0, |v| v * deg);
            let lon = angle(
                &[
                    PROJ_STRAIGHT_VERT_POLE_LONG,
                    PROJ_NAT_ORIGIN_LONG,
                    PROJ_FALSE_ORIGIN_LONG,
                ],
                0.0,
            );
            let k = scale();
            let pole = if lat < 0.0 { -90.0 } else { 90.0 };
            if k == 1.0 && (lat.abs() - 90.0).abs() > 1e-8 {
                write!(
                    s,
                    "+proj=stere +lat_0={} +lat_ts={} +lon_0={} +k=1 {xy}",
                    num(pole),
                    num(lat),
                    num(lon)
                )
            } else {
                write!(
                    s,
                    "+proj=stere +lat_0={} +lon_0={} +k={} {xy}",
                    num(pole),
                    num(lon),
                    num(k)
                )
            }
        }
        // Oblique Stereographic
        16 => write!(
            s,
            "+proj=sterea +lat_0={} +lon_0={} +k={} {xy}",
            num(nat_lat(0.0)),
            num(nat_lon(0.0)),
            num(scale())
        ),
        // Equirectangular
        17 => write!(
            s,
            "+proj=eqc +lat_ts={} +lat_0={} +lon_0={} {xy}",
            num(sp1(0.0)),
            num(center_lat(0.0)),
            num(center_lon(0.0))
        ),
        // Cassini-Soldner
        18 => write!(
            s,
            "+proj=cass +lat_0={} +lon_0={} {xy}",
            num(nat_lat(0.0)),
            num(nat_lon(0.0))
        ),
        // Gnomonic
        19 => write!(
            s,
            "+proj=gnom +lat_0={} +lon_0={} {xy}",
            num(center_lat(0.0)),
            num(center_lon(0.0))
        ),
        // Miller Cylindrical
        20 => write!(
            s,
            "+proj=mill +lat_0={} +lon_0={} {xy} +R_A",
            num(center_lat(0.0)),
            num(center_lon(0.0))
        ),
        // Orthographic
        21 => write!(
            s,
            "+proj=ortho +lat_0={} +lon_0={} {xy}",
            num(center_lat(0.0)),
            num(center_lon(0.0))
        ),
        // Polyconic
        22 => write!(
            s,
            "+proj=poly +lat_0={} +lon_0={} {xy}",
            num(nat_lat(0.0)),
            num(nat_lon(0.0))
        ),
        // Robinson
        23 => write!(s, "+proj=robin +lon_0={} {xy}", num(center_lon(0.0))),
        // Sinusoidal
        24 => write!(s, "+proj=sinu +lon_0={} {xy}", num(center_lon(0.0))),
        // Cylindrical Equal Area
        28 => write!(
            s,
            "+proj=cea +lat_ts={} +lon_0={} {xy}",
            num(sp1(0.0)),
            num(nat_lon(0.0))
        ),
        _ => return Err(unsupported(format!("projection {}", ct_name(ct)))),
    };
    Ok(s)
}

/// Name of a GeoTIFF coordinate transformation code (for error messages).
fn ct_name(ct: u16) -> String {
    let name = match ct {
        2 => "Transverse Mercator (modified Alaska)",
        3 => "Oblique Mercator",
        4 => "Oblique Mercator (Laborde)",
        5 => "Oblique Mercator (Rosenmund)",
        6 => "Oblique Mercator (spherical)",
        25 => "Van der Grinten",
        26 => "New Zealand Map Grid",
        27 => "Transverse Mercator (south oriented)",
        _ => "unknown",
    };
    format!("{name} (ProjCoordTransGeoKey {ct})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(entries: &[(u16, u16, u16, u16)]) -> Vec<u64> {
        let mut v = vec![1, 1, 0, entries.len() as u64];
        for &(a, b, c, d) in entries {
            v.extend([a, b, c, d].map(u64::from));
        }
        v
    }

    #[test]
    fn tie_point_and_scale() {
        let tags = GeoTags {
            pixel_scale: Some(vec![30.0, 30.0, 0.0]),
            tiepoints: Some(vec![0.0, 0.0, 0.0, 694020.0, -2766630.0, 0.0]),
            key_directory: Some(dir(&[
                (1024, 0, 1, 1),
                (1025, 0, 1, 2),
                (3072, 0, 1, 32621),
            ])),
            ..GeoTags::default()
        };
        let g = georef(&tags).unwrap().unwrap();
        assert_eq!(g.raster_type, RasterType::PixelIsPoint);
        assert_eq!(g.transform.0, [694005.0, 30.0, 0.0, -2766615.0, 0.0, -30.0]);
        assert_eq!(g.crs.unwrap().epsg, Some(32621));
    }

    #[test]
    fn exact_gcps_fit_and_inexact_ones_are_unsupported() {
        let gt = [4302000.0, 1000.0, 0.0, 2811000.0, 0.0, -1000.0];
        let mut tp = Vec::new();
        for (i, j) in [(124.0, 126.0), (338.0, 5.0), (349.0, 189.0), (492.0, 0.0)] {
            tp.extend([i, j, 0.0, gt[0] + i * gt[1], gt[3] + j * gt[5], 0.0]);
        }
        let fitted = fit_tiepoints(&tp).unwrap();
        for (a, b) in fitted.0.iter().zip(gt) {
            assert!((a - b).abs() < 1e-6, "{:?}", fitted.0);
        }
        tp[3] += 10.0;
        assert!(matches!(
            fit_tiepoints(&tp),
            Err(CogError::Unsupported { .. })
        ));
        assert!(matches!(
            fit_tiepoints(&tp[..12]),
            Err(CogError::Unsupported { .. })
        ));
    }

    #[test]
    fn no_keys_means_no_crs() {
        let tags = GeoTags {
            pixel_scale: Some(vec![25.0, 25.0, 0.0]),
            tiepoints: Some(vec![0.0, 0.0, 0.0, 677562.5, 253012.5, 0.0]),
            ..GeoTags::default()
        };
        let g = georef(&tags).unwrap().unwrap();
        assert!(g.crs.is_none());
        assert_eq!(g.raster_type, RasterType::PixelIsArea);
    }

    #[test]
    fn user_defined_projections() {
        // LCC 2SP on NAD83 in US survey feet: false easting converted to metres.
        let doubles = [33.0, 45.0, 23.0, -96.0, 2_000_000.0, 0.0];
        let keys = GeoKeys::parse(
            &dir(&[
                (1024, 0, 1, 1),
                (2048, 0, 1, 4269),
                (3072, 0, 1, 32767),
                (3075, 0, 1, 8),
                (3076, 0, 1, 9003),
                (3078, 34736, 1, 0),
                (3079, 34736, 1, 1),
                (3084, 34736, 1, 3),
                (3085, 34736, 1, 2),
                (3086, 34736, 1, 4),
                (3087, 34736, 1, 5),
            ]),
            &doubles,
            "",
        )
        .unwrap();
        let crs = crs_from_keys(&keys).unwrap().unwrap().crs;
        assert_eq!(crs.epsg, None);
        assert_eq!(
            crs.proj4,
            "+proj=lcc +lat_0=23 +lon_0=-96 +lat_1=33 +lat_2=45 +x_0=609601.2192024384 +y_0=0 +datum=NAD83 +units=us-ft +no_defs"
        );

        // Polar stereographic variant B on WGS 84.
        let doubles = [-71.0, 0.0];
        let keys = GeoKeys::parse(
            &dir(&[
                (1024, 0, 1, 1),
                (2048, 0, 1, 4326),
                (3075, 0, 1, 15),
                (3081, 34736, 1, 0),
                (3095, 34736, 1, 1),
            ]),
            &doubles,
            "",
        )
        .unwrap();
        assert_eq!(
            crs_from_keys(&keys).unwrap().unwrap().crs.proj4,
            "+proj=stere +lat_0=-90 +lat_ts=-71 +lon_0=0 +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
        );

        // Unknown projection names itself.
        let keys = GeoKeys::parse(&dir(&[(1024, 0, 1, 1), (3075, 0, 1, 26)]), &[], "").unwrap();
        match crs_from_keys(&keys) {
            Err(CogError::Unsupported { feature }) => {
                assert!(feature.contains("New Zealand Map Grid"), "{feature}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn explicit_ellipsoids_are_named_when_known() {
        let keys = GeoKeys::parse(
            &dir(&[(2057, 34736, 1, 0), (2059, 34736, 1, 1)]),
            &[6378137.0, 298.257222101],
            "",
        )
        .unwrap();
        assert_eq!(ellipsoid_part(&keys).unwrap(), "+ellps=GRS80");
        let keys = GeoKeys::parse(
            &dir(&[(2057, 34736, 1, 0), (2059, 34736, 1, 1)]),
            &[6378000.0, 300.0],
            "",
        )
        .unwrap();
        assert_eq!(ellipsoid_part(&keys).unwrap(), "+a=6378000 +rf=300");
    }

    /// Every projection this module writes builds in kiln-core's transformer (proj4rs) and
    /// maps its own natural origin to finite coordinates and back.
    #[test]
    fn emitted_projections_build_and_invert() {
        use kiln_core::crs::Transformer;
        // (ProjCoordTrans, extra keys as (key, value)): lat/lon of origin 45/10 unless given.
        let cases: &[(u16, &[(u16, f64)])] = &[
            (1, &[(3092, 0.9996)]),
            (7, &[(3092, 0.99)]),
            (7, &[(3078, 30.0)]),
            (8, &[(3078, 40.0), (3079, 50.0)]),
            (9, &[(3092, 0.9999)]),
            (10, &[]),
            (11, &[(3078, 40.0), (3079, 50.0)]),
            (15, &[(3081, 71.0)]),
            (15, &[(3081, 90.0), (3092, 0.994)]),
            (16, &[(3092, 0.9999)]),
            (17, &[(3078, 0.0)]),
            (28, &[(3078, 30.0)]),
        ];
        for &(ct, extra) in cases {
            let mut entries = vec![(1024, 0, 1, 1), (2048, 0, 1, 4326), (3075, 0, 1, ct)];
            let mut doubles = vec![45.0, 10.0, 1000.0, 2000.0];
            for (k, id) in [3081u16, 3080, 3082, 3083].into_iter().enumerate() {
                if !extra.iter().any(|e| e.0 == id) {
                    entries.push((id, 34736, 1, k as u16));
                }
            }
            for &(id, v) in extra {
                entries.push((id, 34736, 1, doubles.len() as u16));
                doubles.push(v);
            }
            entries.push((3076, 0, 1, 9002));
            let keys = GeoKeys::parse(&dir(&entries), &doubles, "").unwrap();
            let crs = crs_from_keys(&keys).unwrap().unwrap().crs;
            assert!(crs.proj4.contains("+units=ft"), "{}", crs.proj4);
            let to_ll = Transformer::new(&crs, &Crs::wgs84())
                .unwrap_or_else(|e| panic!("{}: {e}", crs.proj4));
            let from_ll = Transformer::new(&Crs::wgs84(), &crs).unwrap();
            let (lon, lat) = if ct == 15 { (10.0, 80.0) } else { (11.0, 46.0) };
            let (x, y) = from_ll
                .transform_point(lon, lat)
                .unwrap_or_else(|| panic!("{} forward", crs.proj4));
            let (lon2, lat2) = to_ll.transform_point(x, y).unwrap();
            assert!(
                (lon2 - lon).abs() < 1e-7 && (lat2 - lat).abs() < 1e-7,
                "{}: ({lon2}, {lat2})",
                crs.proj4
            );
        }
        // UTM from ProjectionGeoKey.
        let keys = GeoKeys::parse(
            &dir(&[
                (1024, 0, 1, 1),
                (2048, 0, 1, 4326),
                (3072, 0, 1, 32767),
                (3074, 0, 1, 16133),
            ]),
            &[],
            "",
        )
        .unwrap();
        let crs = crs_from_keys(&keys).unwrap().unwrap().crs;
        assert_eq!(
            crs.proj4,
            "+proj=utm +zone=33 +south +datum=WGS84 +units=m +no_defs"
        );
        assert!(Transformer::new(&crs, &Crs::wgs84()).is_ok());
    }
}
