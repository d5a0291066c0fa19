//! The OpenAPI 3 description of the HTTP API and a self-contained page that renders it
//! (`/apidoc`; no CDN, the server must work offline).
//!
//! Two documents come from one builder:
//! - `/swagger.json` (Terracotta's name) describes the API for any catalog: `{keys}` stands for
//!   the dataset's key values, `/`-separated.
//! - `/openapi.json` describes the API of the catalog being served: one path parameter per key,
//!   the catalog's key values (all of them when the catalog is small, as an `enum`), its band
//!   counts and real datasets as examples. A client, or a fuzzer such as schemathesis
//!   (`scripts/schemathesis.sh`), can tell from it alone which requests the server accepts.
//!
//! Every parameter schema says what the parser in `params.rs` / `handlers.rs` takes, including
//! that an empty value means "not given". What OpenAPI 3.0 cannot say is written in the
//! descriptions: a tile's `x` and `y` are below `2^z`, a range's lower end is not above its
//! upper end once resolved, a band number is at most the dataset's band count, and
//! `colormap=explicit` comes with `explicit_color_map` (left out of the schemas, since either
//! one alone is refused).

use axum::extract::State;
use axum::Json;
use kiln_catalog::Page;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::AppState;

/// Datasets read to describe a catalog: all key values are listed (as `enum`s) when the catalog
/// has at most this many datasets; a larger one gets examples only.
const MAX_LISTED: u32 = 1000;
/// Datasets whose metadata is read for the largest band count.
const MAX_BAND_PROBES: usize = 200;
/// Longest key value a path parameter is said to take, in characters: the catalog takes 255
/// bytes of UTF-8, and 63 characters are at most 252 bytes. A longer value is not refused as
/// malformed; it simply names no dataset (404).
const MAX_KEY_CHARS: usize = 63;
/// Characters a key value never has (`/` and control characters; `catalog::validate`).
const KEY_CHAR: &str = r"[^/\u0000-\u001f\u007f-\u009f]";
/// Names of the tile path parameters; a key with one of these names is prefixed with `key_`.
const TILE_PARAMS: [&str; 4] = ["z", "x", "y", "format"];

/// What the document knows of the catalog it describes.
#[derive(Debug, Clone, Default)]
pub struct CatalogShape {
    /// Key names and descriptions, in catalog order.
    pub keys: Vec<(String, String)>,
    /// Key values of datasets, in catalog order (all of them when `complete`).
    pub datasets: Vec<Vec<String>>,
    /// Band count of each of `datasets` whose metadata is known (same order; `None` unknown).
    pub band_counts: Vec<Option<u32>>,
    /// Whether `datasets` is the whole catalog.
    pub complete: bool,
    /// Collection names.
    pub collections: Vec<String>,
}

impl CatalogShape {
    /// Reads the keys, the datasets (up to [`MAX_LISTED`]) and their band counts.
    pub async fn read(app: &AppState) -> Result<Self, ApiError> {
        let catalog = app.store().catalog();
        let keys = catalog
            .keys()
            .iter()
            .map(|k| (k.name().to_string(), k.description().to_string()))
            .collect();
        let page = Page::new(MAX_LISTED, 0)?;
        let (found, total) = tokio::try_join!(catalog.datasets(&[], page), catalog.count(&[]))?;
        let datasets: Vec<Vec<String>> = found.into_iter().map(|d| d.keys).collect();
        let mut band_counts = Vec::with_capacity(datasets.len());
        for keys in datasets.iter().take(MAX_BAND_PROBES) {
            band_counts.push(catalog.metadata(keys).await?.map(|m| m.band_count));
        }
        band_counts.resize(datasets.len(), None);
        let collections = catalog
            .collections()
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect();
        Ok(Self {
            collections,
            keys,
            complete: u64::try_from(datasets.len()).is_ok_and(|n| n == total),
            datasets,
            band_counts,
        })
    }

    /// The path parameter name of each key.
    fn param_names(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|(name, _)| {
                if TILE_PARAMS.contains(&name.as_str()) {
                    format!("key_{name}")
                } else {
                    name.clone()
                }
            })
            .collect()
    }

    /// The distinct values of key `i` when the whole catalog was read, in catalog order.
    fn values(&self, i: usize) -> Option<Vec<String>> {
        if !self.complete {
            return None;
        }
        let mut out: Vec<String> = Vec::new();
        for d in &self.datasets {
            if let Some(v) = d.get(i) {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
        }
        Some(out)
    }

    /// The largest band count of the datasets whose metadata was read (`None`: none known, or
    /// not every dataset was looked at).
    fn max_bands(&self) -> Option<u32> {
        if !self.complete || self.band_counts.iter().any(Option::is_none) {
            return None;
        }
        self.band_counts.iter().flatten().copied().max()
    }

    /// The first dataset with at least `bands` bands (examples of band-number routes).
    fn with_bands(&self, bands: u32) -> Option<&[String]> {
        self.datasets
            .iter()
            .zip(&self.band_counts)
            .find(|(_, c)| c.is_some_and(|c| c >= bands))
            .map(|(d, _)| d.as_slice())
    }

    /// Three datasets that differ only in the last key (examples of the RGB route by key).
    fn rgb_group(&self) -> Option<(&[String], [&str; 3])> {
        let n = self.keys.len();
        if n == 0 {
            return None;
        }
        for (i, first) in self.datasets.iter().enumerate() {
            let prefix = &first[..n - 1];
            let same: Vec<&str> = self.datasets[i..]
                .iter()
                .filter(|d| d[..n - 1] == *prefix)
                .map(|d| d[n - 1].as_str())
                .collect();
            if let [a, b, c, ..] = same.as_slice() {
                // Landsat order: the highest band first is red (b4, b3, b2).
                return Some((prefix, [c, b, a]));
            }
        }
        None
    }
}

/// How the dataset part of a path is written: `{keys}` for any catalog, or one parameter per
/// key of a given catalog.
#[derive(Debug, Clone, Copy)]
enum Keys<'a> {
    Any,
    Catalog(&'a CatalogShape),
}

/// Which of a dataset's keys a route takes: all of them, or all but the last (RGB and compute
/// pick datasets by the last key's value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeySpan {
    All,
    AllButLast,
}

fn string_param(name: &str, location: &str, required: bool, description: &str) -> Value {
    json!({
        "name": name,
        "in": location,
        "required": required,
        "description": description,
        "schema": { "type": "string" },
    })
}

/// A query parameter with a schema (and an example when given).
fn query(
    name: &str,
    required: bool,
    description: &str,
    schema: Value,
    example: Option<Value>,
) -> Value {
    let mut p = json!({
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    });
    if let Some(e) = example {
        p["example"] = e;
    }
    p
}

/// A string that is empty ("not given", the default) or matches `pattern` (anchored here).
fn optional_pattern(pattern: &str) -> Value {
    json!({ "type": "string", "pattern": format!("^(?:[ ]*|{pattern})$") })
}

/// A string from `values`, or empty ("not given").
fn optional_enum(values: &[&str]) -> Value {
    let mut all = vec![""];
    all.extend_from_slice(values);
    json!({ "type": "string", "enum": all })
}

fn integer(minimum: u64, maximum: u64) -> Value {
    json!({ "type": "integer", "minimum": minimum, "maximum": maximum })
}

/// An optional query integer: a number in `minimum..=maximum`, or empty ("not given").
fn optional_integer(minimum: u64, maximum: u64) -> Value {
    json!({ "anyOf": [integer(minimum, maximum), { "type": "string", "pattern": "^[ ]*$" }] })
}

/// A finite number as Rust's `f64` parser takes it, in plain decimal notation.
const NUMBER: &str = r"-?[0-9]{1,9}(?:\.[0-9]{1,6})?";
/// A percentile (`p1` ... `p99`, quotes allowed) or `null` (the dataset's minimum / maximum).
const STAT: &str = r#""?(?:null|p(?:0?[1-9]|[1-9][0-9]))"?"#;

/// `[lo,hi]`: two numbers, or two statistics (percentiles / null).
fn range_pattern(stats: bool) -> String {
    let two = |e: &str| format!(r"[ ]*\[[ ]*{e}[ ]*,[ ]*{e}[ ]*\][ ]*");
    if stats {
        format!("{}|{}", two(NUMBER), two(STAT))
    } else {
        two(NUMBER)
    }
}

fn range_param(name: &str, required: bool, stats: bool, description: &str, example: &str) -> Value {
    let schema = if required {
        json!({ "type": "string", "pattern": format!("^(?:{})$", range_pattern(stats)) })
    } else {
        optional_pattern(&range_pattern(stats))
    };
    query(name, required, description, schema, Some(json!(example)))
}

const RANGE_ORDER: &str = "The lower end must not be above the upper end once resolved (so \
    [p98,p2] or [5,1] are refused with 400); a number and a statistic are not mixed here, since \
    whether [5,null] is in order depends on the dataset.";

/// `tile_size` of a tile: square, 256 or 512 (`[256,256]`, `[512,512]`, or one number).
fn tile_size_tile() -> Value {
    let one = |n: u32| format!(r"{n}(?:[ ]*,[ ]*{n})?");
    let size = format!("(?:{}|{})", one(256), one(512));
    query(
        "tile_size",
        false,
        "Tile size as a JSON list: [256,256] (default) or [512,512] (or one number)",
        optional_pattern(&format!(r"[ ]*(?:\[[ ]*{size}[ ]*\]|{size})[ ]*")),
        Some(json!("[256,256]")),
    )
}

/// `tile_size` of a preview: `[w,h]`, each side 1 to 2048 (larger: 422).
fn tile_size_preview() -> Value {
    let side = "(?:[1-9][0-9]{0,2}|1[0-9]{3}|20[0-3][0-9]|204[0-8])";
    let size = format!(r"{side}(?:[ ]*,[ ]*{side})?");
    query(
        "tile_size",
        false,
        "Image size [w,h], each side 1 to 2048 (larger: 422); default 256 px on the longer side, \
         aspect kept",
        optional_pattern(&format!(r"[ ]*(?:\[[ ]*{size}[ ]*\]|{size})[ ]*")),
        Some(json!("[300,200]")),
    )
}

/// The tilejson routes pass `tile_size` on to the tile URLs without checking it.
fn tile_size_tilejson() -> Value {
    query(
        "tile_size",
        false,
        "Passed on to the tile URLs (not checked here; the tiles check it)",
        json!({ "type": "string" }),
        Some(json!("[256,256]")),
    )
}

fn resampling() -> Value {
    query(
        "resampling",
        false,
        "nearest (default), bilinear (also 'linear') or cubic (Kiln extension)",
        optional_enum(&["nearest", "bilinear", "linear", "cubic"]),
        Some(json!("nearest")),
    )
}

fn quality() -> Value {
    query(
        "quality",
        false,
        "JPEG/WebP quality 1-100 for .jpg/.webp tiles (default 85; Kiln extension)",
        optional_integer(1, 100),
        Some(json!(85)),
    )
}

fn colormap_names() -> Vec<&'static str> {
    kiln_core::product::colormap_names()
}

fn colormap_param(description: &str, example: &str) -> Value {
    query(
        "colormap",
        false,
        description,
        optional_enum(&colormap_names()),
        Some(json!(example)),
    )
}

/// Where a tile route's image goes: one tile, the whole dataset, or its TileJSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Tile,
    Preview,
    TileJson,
}

impl Target {
    /// The path after the keys; `formats` with one entry is written out, several are `{format}`.
    fn suffix(self, formats: &[&str]) -> String {
        let ext = match formats {
            [one] => (*one).to_string(),
            _ => "{format}".to_string(),
        };
        match self {
            Self::Tile => format!("{{z}}/{{x}}/{{y}}.{ext}"),
            Self::Preview => format!("preview.{ext}"),
            Self::TileJson => "tilejson.json".into(),
        }
    }

    /// The path and format parameters of the target.
    fn params(self, formats: &[&str]) -> Vec<Value> {
        let mut out = Vec::new();
        if self == Self::Tile {
            out.push(path_int(
                "z",
                "Zoom level (WebMercatorQuad, 0 to 30)",
                0,
                30,
                4,
            ));
            out.push(path_int("x", "Tile column, below 2^z", 0, (1 << 30) - 1, 8));
            out.push(path_int("y", "Tile row, below 2^z", 0, (1 << 30) - 1, 5));
        }
        if self != Self::TileJson && formats.len() > 1 {
            out.push(json!({
                "name": "format",
                "in": "path",
                "required": true,
                "description": "png, jpg, webp; npy (raw values, TiTiler's layout: bands then mask) or tif (raw GeoTIFF)",
                "schema": { "type": "string", "enum": formats },
                "example": "png",
            }));
        }
        out
    }
}

fn path_int(name: &str, description: &str, minimum: u64, maximum: u64, example: u64) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": integer(minimum, maximum),
        "example": example,
    })
}

/// The path segments and parameters naming a dataset (or, for `AllButLast`, a group of
/// datasets that differ in the last key).
fn keys_path(keys: Keys<'_>, span: KeySpan, example: Option<&[String]>) -> (String, Vec<Value>) {
    match keys {
        Keys::Any => {
            let what = match span {
                KeySpan::All => "The dataset's key values in catalog key order, separated by '/'",
                KeySpan::AllButLast => "The key values but the last, separated by '/'",
            };
            let mut p = string_param("keys", "path", true, what);
            p["schema"] =
                json!({ "type": "string", "pattern": format!("^{KEY_CHAR}+(?:/{KEY_CHAR}+)*$") });
            p["example"] = json!(if span == KeySpan::All {
                "dem/2020"
            } else {
                "landsat"
            });
            ("{keys}".into(), vec![p])
        }
        Keys::Catalog(shape) => {
            let names = shape.param_names();
            let count = match span {
                KeySpan::All => names.len(),
                KeySpan::AllButLast => names.len().saturating_sub(1),
            };
            let mut segments = Vec::with_capacity(count);
            let mut params = Vec::with_capacity(count);
            for (i, name) in names.iter().take(count).enumerate() {
                let description = &shape.keys[i].1;
                let mut schema = json!({
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_KEY_CHARS,
                    "pattern": format!("^{KEY_CHAR}+$"),
                });
                if let Some(values) = shape.values(i) {
                    schema = json!({ "type": "string", "enum": values });
                }
                let mut p = json!({
                    "name": name,
                    "in": "path",
                    "required": true,
                    "description": if description.is_empty() {
                        format!("Value of the key '{}'", shape.keys[i].0)
                    } else {
                        format!("{} (key '{}')", description, shape.keys[i].0)
                    },
                    "schema": schema,
                });
                if let Some(v) = example.and_then(|e| e.get(i)) {
                    p["example"] = json!(v);
                }
                segments.push(format!("{{{name}}}"));
                params.push(p);
            }
            (segments.join("/"), params)
        }
    }
}

/// Values of the last key, for RGB / compute channels picked by key.
fn last_key_schema(keys: Keys<'_>) -> Value {
    match keys {
        Keys::Catalog(shape) => match shape.values(shape.keys.len().saturating_sub(1)) {
            Some(values) => json!({ "type": "string", "enum": values }),
            None => {
                json!({ "type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS, "pattern": format!("^{KEY_CHAR}+$") })
            }
        },
        Keys::Any => json!({ "type": "string", "pattern": format!("^{KEY_CHAR}+$") }),
    }
}

/// The largest band number a band parameter is said to take: the catalog's largest band count
/// when known, else the largest a band count can be.
fn band_maximum(keys: Keys<'_>) -> u64 {
    match keys {
        Keys::Catalog(shape) => shape.max_bands().map_or(u64::from(u32::MAX), u64::from),
        Keys::Any => u64::from(u32::MAX),
    }
}

fn image_responses(what: &str) -> Value {
    json!({
        "200": { "description": what, "content": {
            "image/png": {}, "image/jpeg": {}, "image/webp": {},
            "application/x-npy": {}, "image/tiff": {} } },
        "304": { "description": "Not modified (If-None-Match matched the ETag)" },
        "400": { "description": "Invalid parameter; the message names it", "content": error_content() },
        "404": { "description": "No dataset with these keys", "content": error_content() },
        "422": { "description": "Too large to render", "content": error_content() },
        "500": { "description": "Internal error (request_id names the log line)", "content": error_content() },
        "501": { "description": "The dataset's source needs something Kiln does not implement", "content": error_content() },
        "502": { "description": "The dataset's source cannot be read", "content": error_content() },
        "503": { "description": "Server saturated or the render timed out; retry after Retry-After seconds", "content": error_content() },
    })
}

fn error_content() -> Value {
    json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } })
}

fn json_ok(description: &str, schema: Value) -> Value {
    json!({
        "200": { "description": description, "content": { "application/json": { "schema": schema } } },
        "400": { "description": "Invalid parameter", "content": error_content() },
        "404": { "description": "Not found", "content": error_content() },
        "500": { "description": "Internal error (request_id names the log line)", "content": error_content() },
        "501": { "description": "The dataset's source needs something Kiln does not implement", "content": error_content() },
        "502": { "description": "The dataset's source cannot be read", "content": error_content() },
    })
}

fn get(summary: &str, description: &str, parameters: Vec<Value>, responses: Value) -> Value {
    json!({ "get": {
        "summary": summary,
        "description": description,
        "parameters": parameters,
        "responses": responses,
    }})
}

const IMAGE_FORMATS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];
const ALL_FORMATS: [&str; 7] = ["png", "jpg", "jpeg", "webp", "npy", "tif", "tiff"];

/// `format` of a TileJSON's tile URLs.
fn tilejson_format() -> Value {
    query(
        "format",
        false,
        "Image format of the tile URLs: png (default), jpg or webp",
        optional_enum(&IMAGE_FORMATS),
        Some(json!("png")),
    )
}

/// The parameters of one variant of a product route: the formats it takes (one is written
/// into the path, several are a `{format}` parameter) and the query parameters.
type Variant = (Vec<&'static str>, Vec<Value>);

/// The routes of one product (`singleband`, `rgb`, `compute`) for each target and variant.
#[allow(clippy::too_many_arguments)]
fn product_paths(
    paths: &mut Map<String, Value>,
    route: &str,
    keys: Keys<'_>,
    span: KeySpan,
    example: Option<&[String]>,
    summary: &str,
    description: &str,
    variants: &dyn Fn(Target) -> Vec<Variant>,
) {
    let (keys_segments, key_params) = keys_path(keys, span, example);
    for target in [Target::Tile, Target::Preview, Target::TileJson] {
        for (formats, params) in variants(target) {
            let suffix = target.suffix(&formats);
            let path = if keys_segments.is_empty() {
                format!("/{route}/{suffix}")
            } else {
                format!("/{route}/{keys_segments}/{suffix}")
            };
            let mut parameters = key_params.clone();
            parameters.extend(target.params(&formats));
            parameters.extend(params);
            let (what, responses) = match target {
                Target::Tile => ("tile", image_responses("The tile")),
                Target::Preview => ("preview", image_responses("The whole dataset in one image")),
                Target::TileJson => (
                    "TileJSON",
                    json_ok(
                        "TileJSON 3.0.0 whose tile URLs carry the same query",
                        json!({ "type": "object" }),
                    ),
                ),
            };
            paths.insert(
                path,
                get(
                    &format!("{summary} ({what})"),
                    description,
                    parameters,
                    responses,
                ),
            );
        }
    }
}

/// The OpenAPI 3.0 document for any catalog (`/swagger.json`).
pub fn spec() -> Value {
    build(Keys::Any)
}

/// The OpenAPI 3.0 document of `shape`'s catalog (`/openapi.json`).
pub fn spec_for(shape: &CatalogShape) -> Value {
    build(Keys::Catalog(shape))
}

/// `/openapi.json`: the document of the catalog being served.
pub async fn document(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let shape = CatalogShape::read(&app).await?;
    Ok(Json(spec_for(&shape)))
}

#[allow(clippy::too_many_lines)]
fn build(keys: Keys<'_>) -> Value {
    let shape = match keys {
        Keys::Catalog(s) => Some(s),
        Keys::Any => None,
    };
    let first = shape.and_then(|s| s.datasets.first().map(Vec::as_slice));
    let bands_max = band_maximum(keys);
    let band_param = |name: &str, description: &str, example: u64| {
        query(
            name,
            false,
            description,
            optional_integer(1, bands_max),
            Some(json!(example)),
        )
    };
    let mut paths = Map::new();

    // --- singleband
    let tile_size = |target: Target| match target {
        Target::Tile => tile_size_tile(),
        Target::Preview => tile_size_preview(),
        Target::TileJson => tile_size_tilejson(),
    };
    let singleband = |target: Target| -> Vec<Variant> {
        let mut p = vec![
            tile_size(target),
            resampling(),
            quality(),
            range_param(
                "stretch_range",
                false,
                true,
                &format!(
                    "Value range mapped onto the colormap, as a JSON list of two numbers, or of \
                     percentiles (\"p2\") and null (the dataset's minimum / maximum; the default). \
                     {RANGE_ORDER}"
                ),
                "[\"p2\",\"p98\"]",
            ),
            colormap_param(
                "Colormap name (see /colormap; names ignore case). Also 'explicit' with \
                 explicit_color_map, a JSON object value -> [r,g,b(,a)] or hex colour (not in \
                 this schema: either one alone is refused)",
                "viridis",
            ),
        ];
        if target == Target::TileJson {
            // Checked to be a band number, but not against the dataset's bands.
            p.push(query(
                "band",
                false,
                "1-based band for the tile URLs (not checked against the dataset's band count \
                 here; the tiles check it)",
                optional_integer(1, u64::MAX),
                Some(json!(1)),
            ));
            p.push(tilejson_format());
        } else {
            p.push(band_param(
                "band",
                "1-based band of a multi-band dataset (default 1; at most the dataset's band \
                 count; Kiln extension)",
                1,
            ));
        }
        vec![(ALL_FORMATS.to_vec(), p)]
    };
    product_paths(
        &mut paths,
        "singleband",
        keys,
        KeySpan::All,
        first,
        "/singleband",
        "One band of a dataset, stretched and coloured (.png, .jpg, .webp), or its raw values \
         (.npy, TiTiler's layout; .tif). Tiles outside the data are transparent.",
        &singleband,
    );

    // --- rgb: by the last key, and by band numbers of one dataset
    let rgb_group = shape.and_then(CatalogShape::rgb_group);
    let channels = [("r", "red"), ("g", "green"), ("b", "blue")];
    let rgb = |by_key: bool, target: Target| -> Vec<Variant> {
        let mut p = vec![tile_size(target), resampling(), quality()];
        for (i, (c, name)) in channels.into_iter().enumerate() {
            if by_key {
                p.push(query(
                    c,
                    true,
                    &format!("Value of the last key of the {name} channel's dataset"),
                    last_key_schema(keys),
                    Some(json!(rgb_group.map_or("B04", |(_, v)| v[i]))),
                ));
            } else {
                p.push(band_param(
                    c,
                    &format!(
                        "1-based band of the {name} channel (default {}; at most the dataset's \
                         band count)",
                        i + 1
                    ),
                    i as u64 + 1,
                ));
            }
            p.push(range_param(
                &format!("{c}_range"),
                false,
                true,
                &format!("Stretch range of the {name} channel, as stretch_range. {RANGE_ORDER}"),
                if by_key { "[0,3000]" } else { "[0,255]" },
            ));
        }
        if target == Target::TileJson {
            p.push(tilejson_format());
        }
        vec![(ALL_FORMATS.to_vec(), p)]
    };
    product_paths(
        &mut paths,
        "rgb",
        keys,
        KeySpan::AllButLast,
        rgb_group.map(|(prefix, _)| prefix),
        "/rgb by key",
        "Three datasets that differ in the last key (given by r, g, b), each stretched, as one \
         RGB image.",
        &|t| rgb(true, t),
    );
    if let Keys::Catalog(_) = keys {
        product_paths(
            &mut paths,
            "rgb",
            keys,
            KeySpan::All,
            shape.and_then(|s| s.with_bands(3)),
            "/rgb by band",
            "Three bands of one dataset (Kiln extension), each stretched, as one RGB image.",
            &|t| rgb(false, t),
        );
    }

    // --- compute
    let functions: Vec<String> = kiln_core::expr::FUNCTIONS
        .iter()
        .map(|(name, arity)| format!("{name}/{arity}"))
        .collect();
    let expression_doc = format!(
        "Band math over v1..v{}: numbers, pi, nan, inf, + - * / % **, unary - + ~, comparisons \
         < <= > >= == !=, & | on comparisons, parentheses and the functions (name/arguments) {}. \
         At most {} characters. Every variable used must be given (by key) or exist as a band. \
         The schema's pattern is a small part of this grammar (expressions over v1 and v2), \
         since a pattern cannot hold the whole of it.",
        kiln_core::expr::MAX_VARIABLES,
        functions.join(", "),
        kiln_core::expr::MAX_EXPRESSION_CHARS
    );
    let term = r"[ ]*v1[ ]*[-+*/][ ]*v2[ ]*";
    let expression_pattern =
        format!(r"^(?:{term}|[ ]*\({term}\)[ ]*[-+*/][ ]*(?:\({term}\)|[0-9]{{1,4}})[ ]*)$");
    let compute = |by_key: bool, target: Target| -> Vec<Variant> {
        let mut common = vec![tile_size(target), resampling(), quality()];
        common.push(query(
            "expression",
            true,
            &expression_doc,
            json!({ "type": "string", "pattern": expression_pattern }),
            Some(json!("(v1 - v2) / (v1 + v2)")),
        ));
        common.push(colormap_param("Colormap name (names ignore case)", "rdbu"));
        for i in 1..=kiln_core::expr::MAX_VARIABLES {
            let name = format!("v{i}");
            // The pattern above uses v1 and v2; the others are read only when used.
            let used = i <= 2;
            let p = match (by_key, used) {
                (true, true) => query(
                    &name,
                    true,
                    "Value of the last key of this variable's dataset (required when the \
                     expression uses it)",
                    last_key_schema(keys),
                    Some(json!(rgb_group.map_or("B04", |(_, v)| v[(i - 1) % 3]))),
                ),
                (false, true) => band_param(
                    &name,
                    "1-based band of this variable (default: its number; at most the dataset's \
                     band count)",
                    i as u64,
                ),
                (_, false) => query(
                    &name,
                    false,
                    if by_key {
                        "Value of the last key of this variable's dataset; read only when the \
                         expression uses the variable"
                    } else {
                        "1-based band of this variable (default: its number); read only when \
                         the expression uses the variable"
                    },
                    json!({ "type": "string" }),
                    None,
                ),
            };
            common.push(p);
        }
        let stretch = |required: bool, what: &str| {
            range_param(
                "stretch_range",
                required,
                false,
                &format!("Range of the result mapped onto the colormap, two numbers{what}. {RANGE_ORDER}"),
                "[-1,1]",
            )
        };
        match target {
            // TileJSON passes the range on to the tile URLs without reading it.
            Target::TileJson => {
                let mut p = common;
                p.push(query(
                    "stretch_range",
                    false,
                    "Passed on to the tile URLs (not checked here; image tiles need it)",
                    json!({ "type": "string" }),
                    Some(json!("[-1,1]")),
                ));
                p.push(tilejson_format());
                vec![(vec![], p)]
            }
            // Images need a range; raw values (.npy) do not (a given one is still checked).
            Target::Tile | Target::Preview => {
                let mut images = common.clone();
                images.push(stretch(true, "; required for images"));
                let mut raw = common;
                raw.push(stretch(
                    false,
                    "; not used by raw values, but checked when given",
                ));
                vec![(IMAGE_FORMATS.to_vec(), images), (vec!["npy"], raw)]
            }
        }
    };
    let compute_desc = "A band-math expression over up to nine datasets (by the last key) or \
         bands of one dataset, stretched and coloured, or its raw values (.npy; not .tif).";
    product_paths(
        &mut paths,
        "compute",
        keys,
        KeySpan::AllButLast,
        rgb_group.map(|(prefix, _)| prefix),
        "/compute by key",
        compute_desc,
        &|t| compute(true, t),
    );
    if let Keys::Catalog(_) = keys {
        product_paths(
            &mut paths,
            "compute",
            keys,
            KeySpan::All,
            shape.and_then(|s| s.with_bands(2)),
            "/compute by band",
            compute_desc,
            &|t| compute(false, t),
        );
    }

    // --- the rest
    paths.insert(
        "/health".into(),
        get(
            "Liveness",
            "Answers at once, without touching the catalog or the CPU pool. `cache` counts \
             since start: decoded-block lookups answered from the block cache (`hits`) or \
             read and decoded (`misses`), and tiles answered from the tile cache or rendered.",
            vec![],
            json_ok(
                "The server is up",
                json!({ "type": "object", "required": ["status"], "properties": {
                    "status": { "type": "string" }, "version": { "type": "string" },
                    "cache": { "type": "object", "properties": {
                        "blocks": counters_schema(&["hits", "misses", "entries", "bytes"]),
                        "tiles": counters_schema(&["hits", "misses"]) } } } }),
            ),
        ),
    );
    paths.insert(
        "/keys".into(),
        get(
            "/keys",
            "The catalog's key names and descriptions, in order.",
            vec![],
            json_ok(
                "Keys",
                json!({ "type": "object", "required": ["keys"], "properties": { "keys": {
                    "type": "array", "items": { "type": "object", "required": ["key"], "properties": {
                        "key": { "type": "string" }, "description": { "type": "string" } } } } } }),
            ),
        ),
    );
    let mut dataset_params = vec![
        query(
            "limit",
            false,
            "Datasets per page (default 100, at most 10000)",
            optional_integer(1, 10_000),
            Some(json!(100)),
        ),
        query(
            "page",
            false,
            "Page number from 0",
            optional_integer(0, u64::from(u32::MAX)),
            Some(json!(0)),
        ),
    ];
    // A filter value: one value, a list [a,b] (either), or a pattern with * (any run of
    // characters, ASCII case ignored). Values are not empty and hold no '/' or control
    // character; list items are trimmed.
    let c = r"[^/\u0000-\u001f\u007f-\u009f";
    let item = format!(r"{c},]*{c},\s]{c},]*");
    let filter_pattern = format!(r"^(?:{c}\[]{c}]*|\[|\[{c}]*{c}\]]|\[{item}(?:,{item})*\])$");
    match keys {
        Keys::Catalog(shape) => {
            for (i, (name, description)) in shape.keys.iter().enumerate() {
                if name == "limit" || name == "page" {
                    continue;
                }
                let example = shape.datasets.first().and_then(|d| d.get(i)).map(|v| json!(v));
                dataset_params.push(query(
                    name,
                    false,
                    &format!(
                        "Filter on key '{name}'{}: a value, a list [a,b] (either), or a pattern with * (ASCII case ignored)",
                        if description.is_empty() { String::new() } else { format!(" ({description})") }
                    ),
                    json!({ "type": "string", "pattern": filter_pattern }),
                    example,
                ));
            }
        }
        Keys::Any => dataset_params.push(string_param(
            "<key>",
            "query",
            false,
            "Filter on a key's value (one parameter per key name): a value, a list [a,b] or a * pattern",
        )),
    }
    let dataset_keys = json!({ "type": "object", "additionalProperties": { "type": "string" } });
    paths.insert(
        "/datasets".into(),
        get(
            "/datasets",
            "Key values of the datasets matching key=value filters (key=[a,b] matches either; a value with * is a pattern ignoring ASCII case, e.g. name=*lux*), paged; total counts every match. A parameter that is not a key name is refused (400).",
            dataset_params,
            json_ok("A page of datasets", json!({ "type": "object",
                "required": ["page", "limit", "total", "datasets"], "properties": {
                "page": { "type": "integer" }, "limit": { "type": "integer" },
                "total": { "type": "integer" },
                "datasets": { "type": "array", "items": dataset_keys } } })),
        ),
    );
    let (meta_segments, meta_params) = keys_path(keys, KeySpan::All, first);
    paths.insert(
        format!("/metadata/{meta_segments}"),
        get(
            "/metadata",
            "Bounds, footprint, valid percentage, range, mean, stdev and percentiles of band 1 (Terracotta's fields), plus band_count, dtype and per-band statistics.",
            meta_params,
            json_ok("Metadata", json!({ "$ref": "#/components/schemas/Metadata" })),
        ),
    );
    let key_value = match keys {
        Keys::Catalog(shape) => {
            let mut all: Vec<String> = Vec::new();
            for i in 0..shape.keys.len() {
                for v in shape.values(i).unwrap_or_default() {
                    if !all.contains(&v) {
                        all.push(v);
                    }
                }
            }
            if shape.complete {
                json!({ "type": "string", "enum": all })
            } else {
                json!({ "type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS, "pattern": format!("^{KEY_CHAR}+$") })
            }
        }
        Keys::Any => json!({ "type": "string", "pattern": format!("^{KEY_CHAR}+$") }),
    };
    let mut one_dataset = json!({ "type": "array", "items": key_value,
        "description": "The key values of one dataset, in key order" });
    if let Keys::Catalog(shape) = keys {
        one_dataset["minItems"] = json!(shape.keys.len());
        one_dataset["maxItems"] = json!(shape.keys.len());
    }
    let mut body_example = json!({ "keys": [["dem", "2020"]] });
    if let Some(f) = first {
        body_example = json!({ "keys": [f] });
    }
    let column = format!("(?:{})", crate::handlers::METADATA_COLUMNS.join("|"));
    paths.insert(
        "/metadata".into(),
        json!({ "post": {
            "summary": "/metadata (many)",
            "description": "Metadata of up to 100 datasets: body {\"keys\": [[v1, v2], ...]}; optional columns=[bounds,range] keeps only those fields (and keys).",
            "parameters": [query(
                "columns",
                false,
                "Fields to keep, as a list [a,b] of metadata field names",
                optional_pattern(&format!(r#"\[?[ ]*"?{column}"?(?:[ ]*,[ ]*"?{column}"?)*[ ]*\]?"#)),
                Some(json!("[bounds,range]")),
            )],
            "requestBody": { "required": true, "content": { "application/json": {
                "schema": { "type": "object", "required": ["keys"], "properties": {
                    "keys": { "type": "array", "maxItems": 100, "items": one_dataset } } },
                "example": body_example } } },
            "responses": json_ok("A list of metadata", json!({ "type": "array", "items": { "$ref": "#/components/schemas/Metadata" } })),
        }}),
    );
    let (point_segments, mut point_params) = keys_path(keys, KeySpan::All, first);
    point_params.extend([
        query(
            "lon",
            true,
            "Longitude, -180 to 180",
            json!({ "type": "number", "minimum": -180.0, "maximum": 180.0 }),
            Some(json!(6.1)),
        ),
        query(
            "lat",
            true,
            "Latitude within Web Mercator's range",
            json!({ "type": "number",
                "minimum": -kiln_core::crs::WEB_MERCATOR_MAX_LAT,
                "maximum": kiln_core::crs::WEB_MERCATOR_MAX_LAT }),
            Some(json!(49.6)),
        ),
    ]);
    paths.insert(
        format!("/point/{point_segments}"),
        get(
            "Values at a point",
            "The values of every band at lon/lat (WGS84); null where the dataset has no data.",
            point_params,
            json_ok(
                "Values",
                json!({ "type": "object", "required": ["keys", "lon", "lat", "values"],
                "properties": { "keys": dataset_keys, "lon": { "type": "number" },
                "lat": { "type": "number" },
                "values": { "type": "array", "items": { "type": ["number", "null"] } } } }),
            ),
        ),
    );
    paths.insert(
        "/colormap".into(),
        get(
            "/colormap",
            "num_values values evenly spaced over stretch_range with the colour each gets.",
            vec![
                range_param("stretch_range", true, false, "Two numbers, the lower first", "[0,1]"),
                colormap_param("Colormap name (default: greys; names ignore case)", "viridis"),
                query(
                    "num_values",
                    false,
                    "Number of values (default 255)",
                    optional_integer(1, kiln_core::product::MAX_COLORMAP_VALUES as u64),
                    Some(json!(255)),
                ),
            ],
            json_ok("The colormap", json!({ "type": "object", "required": ["colormap"], "properties": {
                "colormap": { "type": "array", "items": { "type": "object", "properties": {
                    "value": { "type": "number" },
                    "rgba": { "type": "array", "items": { "type": "integer" }, "minItems": 4, "maxItems": 4 } } } } } })),
        ),
    );
    collection_paths(&mut paths, shape.map(|s| s.collections.as_slice()));
    for (path, summary, description) in [
        ("/openapi.json", "This document", "The OpenAPI 3 document of this server's catalog: a path parameter per key, its values and real datasets as examples."),
        ("/swagger.json", "The API for any catalog", "The OpenAPI 3 document with {keys} standing for the key values (Terracotta's name)."),
    ] {
        paths.insert(
            path.into(),
            get(summary, description, vec![], json_ok("OpenAPI 3.0", json!({ "type": "object" }))),
        );
    }
    let html =
        |what: &str| json!({ "200": { "description": what, "content": { "text/html": {} } } });
    paths.insert(
        "/apidoc".into(),
        get(
            "API page",
            "This document as a page (no external assets).",
            vec![],
            html("The page"),
        ),
    );
    let viewer_file = json!({
        "200": { "description": "The file (gzipped when the client takes it)" },
        "304": { "description": "Not modified (If-None-Match matched the ETag)" },
        "308": { "description": "index.html: the page is at the root" },
        "404": { "description": "No such file", "content": error_content() },
    });
    paths.insert(
        "/".into(),
        get(
            "Web viewer",
            "The map viewer built into the binary.",
            vec![],
            {
                let mut r = viewer_file.clone();
                r["200"] = json!({ "description": "The page", "content": { "text/html": {} } });
                r
            },
        ),
    );
    for path in ["/viewer", "/viewer/"] {
        paths.insert(
            path.into(),
            get(
                "Web viewer",
                "Leads to the viewer at the root.",
                vec![],
                json!({ "308": { "description": "Permanent redirect to the root" } }),
            ),
        );
    }
    paths.insert(
        "/viewer/config.json".into(),
        get(
            "Viewer settings",
            "Colormap names and the base map the page offers.",
            vec![],
            json_ok("Settings", json!({ "type": "object" })),
        ),
    );
    paths.insert(
        "/viewer/{file}".into(),
        get(
            "Viewer files",
            "The viewer's script, style sheet and MapLibre GL JS.",
            vec![{
                let mut p = string_param("file", "path", true, "File name");
                p["example"] = json!("app.js");
                p
            }],
            viewer_file,
        ),
    );

    let description = match keys {
        Keys::Catalog(shape) => format!(
            "A Terracotta-compatible raster tile API, served by Kiln, for a catalog with the keys {} ({} datasets{}). The same API for any catalog: /swagger.json.",
            shape.keys.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
            shape.datasets.len(),
            if shape.complete { "" } else { " or more" },
        ),
        Keys::Any => "A Terracotta-compatible raster tile API, served by Kiln. {keys} stands for a dataset's key values, '/'-separated; /openapi.json describes the served catalog's keys and values.".into(),
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Kiln",
            "version": env!("CARGO_PKG_VERSION"),
            "description": description,
        },
        "paths": paths,
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["message"], "properties": {
                "message": { "type": "string" },
                "request_id": { "type": "string", "description": "On 5xx answers: the id of the server's log line with the full reason" } } },
            "Metadata": { "type": "object", "properties": {
                "keys": { "type": "object" },
                "bounds": { "type": "array", "items": { "type": "number" }, "minItems": 4, "maxItems": 4 },
                "convex_hull": { "type": "object" },
                "valid_percentage": { "type": "number" },
                "range": { "type": "array", "items": { "type": "number" } },
                "mean": { "type": "number" },
                "stdev": { "type": "number" },
                "percentiles": { "type": "array", "items": { "type": "number" } },
                "metadata": {},
                "band_count": { "type": "integer" },
                "dtype": { "type": "string" },
                "bands": { "type": "array" },
            }},
        }},
    })
}

/// A page that lists the API from `/openapi.json`, with no external assets.
pub const APIDOC_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kiln API</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.1em;margin:1.6em 0 .3em;font-family:monospace}
.m{display:inline-block;min-width:3.5em;color:#fff;background:#36c;border-radius:3px;padding:0 .4em;margin-right:.5em;text-align:center}
.post{background:#393}table{border-collapse:collapse;width:100%;font-size:.92em}
td,th{border-bottom:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
code{background:#f3f3f3;padding:0 .2em}
</style></head><body>
<h1>Kiln API</h1><p>The machine-readable description of this server's catalog is at <a href="openapi.json">/openapi.json</a> (OpenAPI 3); the same API for any catalog at <a href="swagger.json">/swagger.json</a>.</p>
<div id="api">Loading…</div>
<script>
const esc = s => String(s ?? '').replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const shown = v => v === undefined ? '' : (typeof v === 'string' ? v : JSON.stringify(v));
fetch('openapi.json').then(r => r.json()).then(spec => {
  let html = `<p>${esc(spec.info.description)}</p>`;
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      html += `<h2><span class="m ${method}">${method.toUpperCase()}</span>${esc(path)}</h2><p>${esc(op.description)}</p>`;
      if (op.parameters && op.parameters.length) {
        html += '<table><tr><th>parameter</th><th>in</th><th>required</th><th>description</th><th>example</th></tr>';
        for (const p of op.parameters) {
          html += `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${p.required ? 'yes' : ''}</td><td>${esc(p.description)}</td><td><code>${esc(shown(p.example))}</code></td></tr>`;
        }
        html += '</table>';
      }
    }
  }
  document.getElementById('api').innerHTML = html;
}).catch(e => { document.getElementById('api').textContent = 'Cannot load openapi.json: ' + e; });
</script></body></html>
"#;

/// `/collections`: composite terrain tiles of collections (Mapzen's bucket layout below
/// `/collections/{name}/`).
fn collection_paths(paths: &mut serde_json::Map<String, Value>, names: Option<&[String]>) {
    let mut name = string_param(
        "name",
        "path",
        true,
        "Collection name (`kiln collection list`)",
    );
    match names {
        Some(names) if !names.is_empty() => {
            name["schema"]["enum"] = json!(names);
            name["example"] = json!(names[0]);
        }
        _ => name["schema"]["pattern"] = json!("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"),
    }
    let any_object = json!({ "type": "object" });
    paths.insert(
        "/collections".into(),
        get(
            "Collections",
            "Every collection: name, description, seam blending width and member count.",
            vec![],
            json_ok(
                "The collections",
                json!({ "type": "object", "required": ["collections"],
                "properties": { "collections": { "type": "array", "items": any_object } } }),
            ),
        ),
    );
    paths.insert(
        "/collections/{name}".into(),
        get(
            "One collection",
            "Its sources in composite order (priority, then finest resolution, then newest) \
             with priority, ground resolution, zoom range, acquisition date and footprint; \
             members that take no part are listed with why.",
            vec![name.clone()],
            json_ok("The collection", any_object.clone()),
        ),
    );
    paths.insert(
        "/collections/{name}/point".into(),
        get(
            "Height at a point",
            "The composite height at lon/lat and which source gave it (null where none has data).",
            vec![
                name.clone(),
                query(
                    "lon",
                    true,
                    "Longitude, -180 to 180",
                    json!({ "type": "number", "minimum": -180.0, "maximum": 180.0 }),
                    Some(json!(6.1)),
                ),
                query(
                    "lat",
                    true,
                    "Latitude within Web Mercator's range",
                    json!({ "type": "number",
                        "minimum": -kiln_core::crs::WEB_MERCATOR_MAX_LAT,
                        "maximum": kiln_core::crs::WEB_MERCATOR_MAX_LAT }),
                    Some(json!(49.6)),
                ),
                query(
                    "zoom",
                    false,
                    "Apply the members' zoom ranges at this zoom (default: every member)",
                    optional_integer(0, 30),
                    None,
                ),
            ],
            json_ok(
                "The height",
                json!({ "type": "object",
                "required": ["collection", "lon", "lat", "value", "source"],
                "properties": { "value": { "type": ["number", "null"] },
                    "source": { "type": ["string", "null"] } } }),
            ),
        ),
    );
    let terrain_params = || {
        vec![
            tile_size_tile(),
            query(
                "buffer",
                false,
                "Pixels of the neighbouring tiles on every side (256 + 2N px)",
                optional_integer(0, u64::from(kiln_engine::render::MAX_BUFFER_PX)),
                Some(json!(2)),
            ),
            resampling(),
            query(
                "quantize",
                false,
                "terrarium / terrain-rgb: round heights to the precision of the zoom (Mapterhorn)",
                optional_enum(&["true", "false"]),
                None,
            ),
            query(
                "base",
                false,
                "terrain-rgb: height of code 0 (default -10000)",
                json!({ "type": "number", "minimum": -1e9, "maximum": 1e9 }),
                None,
            ),
            query(
                "interval",
                false,
                "terrain-rgb: metres per code (default 0.1)",
                json!({ "type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1e6 }),
                None,
            ),
            query(
                "azimuth",
                false,
                "hillshade: light azimuth, degrees (default 315)",
                json!({ "type": "number", "minimum": 0, "maximum": 360 }),
                None,
            ),
            query(
                "altitude",
                false,
                "hillshade: light altitude, degrees (default 45)",
                json!({ "type": "number", "minimum": 0, "maximum": 90 }),
                None,
            ),
            query(
                "z_factor",
                false,
                "hillshade: vertical exaggeration (default 1)",
                json!({ "type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1e6 }),
                None,
            ),
            quality(),
        ]
    };
    let mut responses =
        image_responses("The tile (X-Kiln-Sources names the sources that filled pixels)");
    responses["404"] = json!({ "description": "No such collection, or no source covers the tile", "content": error_content() });
    // One path per product, each with the formats it is served as.
    for (product, formats) in crate::collection_routes::PRODUCTS {
        let mut tile_params = vec![
            name.clone(),
            path_int("z", "Zoom", 0, 30, 8),
            path_int("x", "Column", 0, u64::from(u32::MAX), 132),
            path_int("y", "Row", 0, u64::from(u32::MAX), 86),
            json!({ "name": "format", "in": "path", "required": true,
                "description": "File format",
                "schema": { "type": "string", "enum": formats }, "example": formats[0] }),
        ];
        tile_params.extend(terrain_params());
        paths.insert(
            format!("/collections/{{name}}/{product}/{{z}}/{{x}}/{{y}}.{{format}}"),
            get(
                &format!("Composite terrain tile: {product}"),
                "The collection's sources composited by precedence (the first valid one wins) \
                 and encoded as the product; `{y}@2x` is a 512 px tile.",
                tile_params,
                responses.clone(),
            ),
        );
        let mut tj_params = vec![name.clone()];
        tj_params.push(query(
            "format",
            false,
            "Extension of the tile URLs (default: the first)",
            optional_enum(formats),
            None,
        ));
        tj_params.extend(terrain_params());
        paths.insert(
            format!("/collections/{{name}}/{product}/tilejson.json"),
            get(
                &format!("TileJSON of a collection's {product} tiles"),
                "TileJSON 3.0.0, usable as MapLibre's raster-dem source (`encoding` terrarium or \
                 mapbox).",
                tj_params,
                json_ok(
                    "TileJSON",
                    json!({ "type": "object", "required": ["tilejson", "tiles"] }),
                ),
            ),
        );
    }
}

/// An object of non-negative integer counters.
fn counters_schema(names: &[&str]) -> Value {
    let props: Map<String, Value> = names
        .iter()
        .map(|n| ((*n).to_string(), json!({ "type": "integer", "minimum": 0 })))
        .collect();
    json!({ "type": "object", "required": names, "properties": props })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog like the serve tests': two keys, five datasets, one with six bands.
    fn shape() -> CatalogShape {
        let d = |a: &str, b: &str| vec![a.to_string(), b.to_string()];
        CatalogShape {
            keys: vec![
                ("name".into(), "Scene".into()),
                ("band".into(), String::new()),
            ],
            datasets: vec![
                d("l8", "b2"),
                d("l8", "b3"),
                d("l8", "b4"),
                d("lux", "1"),
                d("ms", "all"),
            ],
            band_counts: vec![Some(1), Some(1), Some(1), Some(1), Some(6)],
            complete: true,
            collections: vec!["dem".into()],
        }
    }

    /// Whether the axum route `pattern` (`{name}` one segment, `{*name}` the rest) matches the
    /// OpenAPI path template `template` (`{name}` one segment or part of one).
    fn route_covers(pattern: &str, template: &str) -> bool {
        let p: Vec<&str> = pattern.split('/').collect();
        let t: Vec<&str> = template.split('/').collect();
        for (i, seg) in p.iter().enumerate() {
            if seg.starts_with("{*") {
                return t.len() > i;
            }
            let Some(other) = t.get(i) else { return false };
            let param = seg.starts_with('{') && seg.ends_with('}');
            if !(param || seg == other) {
                return false;
            }
        }
        p.len() == t.len()
    }

    fn assert_every_route_documented(doc: &Value) {
        let paths = doc["paths"].as_object().unwrap();
        for (method, route) in crate::ROUTES {
            let found = paths
                .iter()
                .any(|(template, ops)| ops.get(*method).is_some() && route_covers(route, template));
            assert!(found, "{method} {route} is not in the OpenAPI document");
        }
        // And nothing documented that the router does not answer.
        for (template, ops) in paths {
            for method in ops.as_object().unwrap().keys() {
                assert!(
                    crate::ROUTES
                        .iter()
                        .any(|(m, r)| m == method && route_covers(r, template)),
                    "{method} {template} is documented but not routed"
                );
            }
        }
    }

    #[test]
    fn every_route_is_in_both_documents() {
        assert!(crate::ROUTES.len() >= 18);
        assert_every_route_documented(&spec());
        assert_every_route_documented(&spec_for(&shape()));
    }

    #[test]
    fn the_catalog_document_has_a_parameter_per_key_and_its_values() {
        let doc = spec_for(&shape());
        let paths = doc["paths"].as_object().unwrap();
        let tile = &paths["/singleband/{name}/{band}/{z}/{x}/{y}.{format}"]["get"];
        let names: Vec<&str> = tile["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["name", "band", "z", "x", "y", "format"]);
        let name = &tile["parameters"][0];
        assert_eq!(name["schema"]["enum"], json!(["l8", "lux", "ms"]));
        assert_eq!(name["example"], "l8");
        // RGB by the last key: one key fewer, r/g/b the last key's values (Landsat order).
        let rgb = &paths["/rgb/{name}/{z}/{x}/{y}.{format}"]["get"]["parameters"];
        let r = rgb
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "r")
            .unwrap();
        assert_eq!(r["example"], "b4");
        assert_eq!(r["required"], true);
        // By band: band numbers up to the largest band count.
        let by_band = &paths["/rgb/{name}/{band}/{z}/{x}/{y}.{format}"]["get"]["parameters"];
        let r = by_band
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "r")
            .unwrap();
        assert_eq!(r["schema"]["anyOf"][0]["maximum"], 6);
        assert_eq!(by_band[0]["example"], "ms");
        assert!(paths.contains_key("/metadata/{name}/{band}"));
        assert!(paths.contains_key("/point/{name}/{band}"));
    }
}
