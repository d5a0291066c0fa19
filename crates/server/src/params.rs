//! Query and path parameters as Terracotta spells them (JSON lists in query strings such as
//! `stretch_range=[0,1]` or `tile_size=[256,256]`), validated into typed values. Every error
//! names the parameter and says what is wrong.

use kiln_core::product::ExplicitColormap;
use kiln_core::tms::TileCoord;
use kiln_core::warp::Resampling;
use kiln_engine::{Bound, ColormapChoice, OutputFormat, RangeSpec};

use crate::error::ApiError;

/// Longest accepted query string value (expressions and explicit colormaps are the long ones).
pub const MAX_PARAM_CHARS: usize = 4096;
/// Largest preview image side.
pub const MAX_PREVIEW_PX: usize = 2048;

/// The decoded query string, in order. Later duplicates win, as in Terracotta.
#[derive(Debug, Default, Clone)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, bounded in length; empty values count as absent.
    pub fn text(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) if v.len() > MAX_PARAM_CHARS => Err(ApiError::bad_param(
                name,
                format!("{} characters (at most {MAX_PARAM_CHARS})", v.len()),
            )),
            Some(v) => Ok(Some(v)),
        }
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.text(name)?
            .ok_or_else(|| ApiError::bad_param(name, "missing (required)"))
    }

    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        match self.text(name)? {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|_| ApiError::bad_param(name, format!("'{v}' is not a valid number"))),
        }
    }
}

/// Parses `[lo,hi]` (JSON or the unquoted form `[p2,p98]`).
pub fn range(q: &Query, name: &str) -> Result<Option<RangeSpec>, ApiError> {
    let Some(text) = q.text(name)? else {
        return Ok(None);
    };
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| {
            ApiError::bad_param(name, format!("'{text}' is not a JSON list like [0,1]"))
        })?;
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    let [lo, hi] = parts.as_slice() else {
        return Err(ApiError::bad_param(
            name,
            format!("needs exactly 2 values, got {}", parts.len()),
        ));
    };
    let bound = |s: &str| -> Result<Bound, ApiError> {
        let s = s.trim_matches('"');
        if s == "null" {
            return Ok(Bound::Default);
        }
        if let Some(p) = s.strip_prefix('p') {
            return match p.parse::<u8>() {
                Ok(n) if (1..=99).contains(&n) => Ok(Bound::Percentile(n)),
                _ => Err(ApiError::bad_param(
                    name,
                    format!("percentile '{s}' must be p1 ... p99"),
                )),
            };
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Bound::Value(v)),
            _ => Err(ApiError::bad_param(
                name,
                format!("'{s}' is not a number, a percentile like p2, or null"),
            )),
        }
    };
    let spec = RangeSpec {
        lo: bound(lo)?,
        hi: bound(hi)?,
    };
    if let (Bound::Value(a), Bound::Value(b)) = (spec.lo, spec.hi) {
        if a > b {
            return Err(ApiError::bad_param(
                name,
                format!("the lower end {a} is above the upper end {b}"),
            ));
        }
    }
    Ok(Some(spec))
}

/// `tile_size=[256,256]` (Terracotta) or `tile_size=256`; tiles are square, 256 or 512.
pub fn tile_size(q: &Query) -> Result<u32, ApiError> {
    match size_pair(q, "tile_size")? {
        None => Ok(256),
        Some((w, h)) if w == h && (w == 256 || w == 512) => Ok(if w == 256 { 256 } else { 512 }),
        Some((w, h)) => Err(ApiError::bad_param(
            "tile_size",
            format!("[{w},{h}] is not supported: use [256,256] or [512,512]"),
        )),
    }
}

/// `buffer=N`: pixels of the neighbouring tiles added on every side (a 256 px tile with
/// `buffer=2` is 260 px, as Mapzen's buffered terrain tiles), 0 ..= the engine's limit.
pub fn buffer(q: &Query) -> Result<u32, ApiError> {
    match q.number::<u32>("buffer")? {
        None => Ok(0),
        Some(b) if b <= kiln_engine::render::MAX_BUFFER_PX => Ok(b),
        Some(b) => Err(ApiError::bad_param(
            "buffer",
            format!("{b} pixels: at most {}", kiln_engine::render::MAX_BUFFER_PX),
        )),
    }
}

/// `tile_size=[w,h]` of a preview image, each side 1 ..= [`MAX_PREVIEW_PX`].
pub fn preview_size(q: &Query) -> Result<Option<(usize, usize)>, ApiError> {
    let Some((w, h)) = size_pair(q, "tile_size")? else {
        return Ok(None);
    };
    if w == 0 || h == 0 {
        return Err(ApiError::bad_param(
            "tile_size",
            format!("[{w},{h}]: each side must be 1 to {MAX_PREVIEW_PX} pixels"),
        ));
    }
    // Well-formed, but more than Kiln renders in one image: 422, not a malformed request.
    if w > MAX_PREVIEW_PX || h > MAX_PREVIEW_PX {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "invalid tile_size: [{w},{h}] is too large to render: each side must be 1 to \
                 {MAX_PREVIEW_PX} pixels"
            ),
        ));
    }
    Ok(Some((w, h)))
}

fn size_pair(q: &Query, name: &str) -> Result<Option<(usize, usize)>, ApiError> {
    let Some(text) = q.text(name)? else {
        return Ok(None);
    };
    let t = text.trim();
    let inner = t
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(t);
    let nums: Result<Vec<usize>, _> = inner.split(',').map(|s| s.trim().parse()).collect();
    match nums.as_deref() {
        Ok([n]) => Ok(Some((*n, *n))),
        Ok([w, h]) => Ok(Some((*w, *h))),
        _ => Err(ApiError::bad_param(
            name,
            format!("'{text}' is not a JSON list of two pixel sizes like [256,256]"),
        )),
    }
}

pub fn resampling(q: &Query) -> Result<Resampling, ApiError> {
    match q.text("resampling")? {
        None | Some("nearest") => Ok(Resampling::Nearest),
        Some("bilinear" | "linear") => Ok(Resampling::Bilinear),
        Some("cubic") => Ok(Resampling::Cubic),
        Some(other) => Err(ApiError::bad_param(
            "resampling",
            format!("'{other}' is not one of nearest, bilinear, cubic"),
        )),
    }
}

/// A colormap request: a name, or `explicit` with `explicit_color_map`.
pub fn colormap(q: &Query) -> Result<ColormapChoice, ApiError> {
    let name = q.text("colormap")?;
    let explicit_text = q.text("explicit_color_map")?;
    match (name, explicit_text) {
        (Some("explicit"), Some(text)) => {
            let explicit: ExplicitColormap = serde_json::from_str(text).map_err(|e| {
                ApiError::bad_param("explicit_color_map", format!("not a valid colour map: {e}"))
            })?;
            Ok(ColormapChoice::Explicit(explicit))
        }
        (Some("explicit"), None) => Err(ApiError::bad_param(
            "explicit_color_map",
            "must be given for colormap=explicit",
        )),
        (_, Some(_)) => Err(ApiError::bad_param(
            "explicit_color_map",
            "can only be given with colormap=explicit",
        )),
        (Some(n), None) => {
            kiln_core::product::Colormap::by_name(n).map_err(|_| {
                ApiError::bad_param(
                    "colormap",
                    format!(
                        "unknown colormap '{n}'; available: explicit, {}",
                        kiln_core::product::colormap_names().join(", ")
                    ),
                )
            })?;
            Ok(ColormapChoice::Named(n.to_string()))
        }
        (None, None) => Ok(ColormapChoice::Default),
    }
}

/// A positive 1-based band number.
pub fn band(q: &Query, name: &str) -> Result<Option<usize>, ApiError> {
    match q.number::<usize>(name)? {
        Some(0) => Err(ApiError::bad_param(name, "bands are numbered from 1")),
        other => Ok(other),
    }
}

/// What the last path segments of a tile route ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Tile {
        tile: TileCoord,
        format: OutputFormat,
    },
    Preview {
        format: OutputFormat,
    },
    TileJson,
}

/// Splits `k1/k2/.../{z}/{x}/{y}.ext`, `k1/.../preview.ext` or `k1/.../tilejson.json` into
/// the key values and the target.
pub fn split_tile_path(rest: &str) -> Result<(Vec<String>, Target), ApiError> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let Some((last, before)) = segs.split_last() else {
        return Err(ApiError::not_found("no dataset keys in the path"));
    };
    if *last == "tilejson.json" {
        return Ok((owned(before), Target::TileJson));
    }
    let (stem, ext) = last
        .rsplit_once('.')
        .ok_or_else(|| ApiError::not_found(format!("'{last}' has no file extension")))?;
    let format = OutputFormat::from_extension(ext).ok_or_else(|| {
        ApiError::bad_param(
            "format",
            format!("'.{ext}' is not one of .png, .jpg, .webp, .npy, .tif"),
        )
    })?;
    if stem == "preview" {
        return Ok((owned(before), Target::Preview { format }));
    }
    let [keys @ .., z, x] = before else {
        return Err(ApiError::not_found(
            "a tile path ends in /{z}/{x}/{y}.png after the dataset keys",
        ));
    };
    let num = |name: &str, s: &str| -> Result<u32, ApiError> {
        s.parse::<u32>()
            .map_err(|_| ApiError::bad_param(name, format!("'{s}' is not a tile coordinate")))
    };
    let (z, x, y) = (num("z", z)?, num("x", x)?, num("y", stem)?);
    let z =
        u8::try_from(z).map_err(|_| ApiError::bad_param("z", format!("zoom {z} is too large")))?;
    let tile = TileCoord::new(z, x, y)
        .map_err(|e| ApiError::new(axum::http::StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok((owned(keys), Target::Tile { tile, format }))
}

fn owned(segs: &[&str]) -> Vec<String> {
    segs.iter().map(|s| (*s).to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Query {
        Query(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        )
    }

    #[test]
    fn ranges_take_numbers_percentiles_and_null() {
        let r = range(&q(&[("stretch_range", "[0, 1.5]")]), "stretch_range").unwrap();
        assert_eq!(
            r,
            Some(RangeSpec {
                lo: Bound::Value(0.0),
                hi: Bound::Value(1.5)
            })
        );
        let r = range(&q(&[("r", "[\"p2\",null]")]), "r").unwrap();
        assert_eq!(
            r,
            Some(RangeSpec {
                lo: Bound::Percentile(2),
                hi: Bound::Default
            })
        );
        for bad in [
            "0,1", "[0]", "[a,1]", "[p0,1]", "[p100,1]", "[2,1]", "[nan,1]",
        ] {
            let e = range(&q(&[("stretch_range", bad)]), "stretch_range").unwrap_err();
            assert!(
                e.message().contains("stretch_range"),
                "{bad}: {}",
                e.message()
            );
        }
    }

    #[test]
    fn tile_paths_split_into_keys_and_target() {
        let (keys, t) = split_tile_path("dem/2020/3/4/5.png").unwrap();
        assert_eq!(keys, vec!["dem", "2020"]);
        assert!(
            matches!(t, Target::Tile { tile, .. } if (tile.z(), tile.x(), tile.y()) == (3, 4, 5))
        );
        let (keys, t) = split_tile_path("dem/preview.png").unwrap();
        assert_eq!(keys, vec!["dem"]);
        assert!(matches!(t, Target::Preview { .. }));
        assert_eq!(
            split_tile_path("a/b/tilejson.json").unwrap(),
            (vec!["a".to_string(), "b".to_string()], Target::TileJson)
        );
        assert!(
            split_tile_path("dem/1/99/0.png").is_err(),
            "x outside zoom 1"
        );
        assert!(split_tile_path("dem/1/0/0.gif").is_err());
        assert!(split_tile_path("dem/a/0/0.png").is_err());
    }

    #[test]
    fn tile_sizes_follow_terracotta_syntax() {
        assert_eq!(tile_size(&q(&[])).unwrap(), 256);
        assert_eq!(tile_size(&q(&[("tile_size", "[512,512]")])).unwrap(), 512);
        assert_eq!(tile_size(&q(&[("tile_size", "512")])).unwrap(), 512);
        assert!(tile_size(&q(&[("tile_size", "[256,512]")])).is_err());
        assert!(tile_size(&q(&[("tile_size", "[100,100]")])).is_err());
        assert_eq!(
            preview_size(&q(&[("tile_size", "[300,200]")])).unwrap(),
            Some((300, 200))
        );
        assert!(preview_size(&q(&[("tile_size", "[0,200]")])).is_err());
    }

    #[test]
    fn colormaps_are_named_or_explicit() {
        assert_eq!(
            colormap(&q(&[("colormap", "viridis")])).unwrap(),
            ColormapChoice::Named("viridis".into())
        );
        let e = colormap(&q(&[("colormap", "nope")])).unwrap_err();
        assert!(e.message().contains("viridis"));
        let c = colormap(&q(&[
            ("colormap", "explicit"),
            (
                "explicit_color_map",
                r##"{"1": "#ff0000", "2": [0, 255, 0]}"##,
            ),
        ]))
        .unwrap();
        assert!(matches!(c, ColormapChoice::Explicit(e) if e.entries().len() == 2));
        assert!(colormap(&q(&[("colormap", "explicit")])).is_err());
        assert!(colormap(&q(&[("explicit_color_map", "{}")])).is_err());
    }
}
