//! Route handlers: parameters in, one engine call through the tile service, response out.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Query as AxQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use kiln_catalog::{KeyFilter, Page};
use kiln_core::expr::Expression;
use kiln_core::product::{colormap_values, Colormap, ImageFormat, Stretch};
use kiln_engine::{
    Area, Bound, ComputeOutput, ImageOutput, Layer, OutputFormat, Product, RangeSpec, RenderRequest,
};
use serde_json::{json, Value};

use crate::datasets::Resolved;
use crate::error::ApiError;
use crate::params::{self, Query, Target};
use crate::AppState;

type Pairs = AxQuery<Vec<(String, String)>>;

/// Most datasets one `POST /metadata` may ask for.
const MAX_METADATA_BATCH: usize = 100;

/// Liveness, plus the caches' counters since start (atomics only: no catalog, no pool).
pub async fn health(State(app): State<AppState>) -> Json<Value> {
    let blocks = app.engine().block_cache_stats();
    let tiles = &app.tiles().counters;
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "cache": {
            "blocks": {
                "hits": blocks.hits,
                "misses": blocks.misses,
                "entries": blocks.entries,
                "bytes": blocks.bytes,
            },
            "tiles": {
                "hits": tiles.hits.load(std::sync::atomic::Ordering::Relaxed),
                "misses": tiles.renders.load(std::sync::atomic::Ordering::Relaxed),
            },
        },
    }))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /swagger.json")
}

pub async fn keys(State(app): State<AppState>) -> Json<Value> {
    let keys: Vec<Value> = app
        .store()
        .catalog()
        .keys()
        .iter()
        .map(|k| {
            if k.description().is_empty() {
                json!({ "key": k.name() })
            } else {
                json!({ "key": k.name(), "description": k.description() })
            }
        })
        .collect();
    Json(json!({ "keys": keys }))
}

pub async fn datasets(
    State(app): State<AppState>,
    AxQuery(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let q = Query(pairs);
    let names = app.store().key_names();
    let limit = q.number::<u32>("limit")?.unwrap_or(100);
    let page_no = q.number::<u32>("page")?.unwrap_or(0);
    let page = Page::new(limit, page_no)?;
    let mut filters = Vec::new();
    for (k, v) in &q.0 {
        if k == "limit" || k == "page" {
            continue;
        }
        if !names.contains(k) {
            return Err(ApiError::bad_param(
                k,
                format!("unknown key (keys: {})", names.join(", ")),
            ));
        }
        // Terracotta's list form: key=[a,b] matches either value. Kiln's extension: a value
        // with `*` is a pattern (any run of characters, ASCII case ignored).
        let values: Vec<String> = match v.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(inner) => inner.split(',').map(|s| s.trim().to_string()).collect(),
            None => vec![v.clone()],
        };
        filters.push(if values.iter().any(|v| v.contains('*')) {
            KeyFilter::wildcard(k.clone(), values)
        } else {
            KeyFilter::any_of(k.clone(), values)
        });
    }
    let catalog = app.store().catalog();
    let (found, total) =
        tokio::try_join!(catalog.datasets(&filters, page), catalog.count(&filters))?;
    let list: Vec<Value> = found.iter().map(|d| keys_object(&names, &d.keys)).collect();
    Ok(Json(
        json!({ "page": page_no, "limit": limit, "total": total, "datasets": list }),
    ))
}

fn keys_object(names: &[String], values: &[String]) -> Value {
    Value::Object(
        names
            .iter()
            .zip(values)
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// The fields of a dataset's metadata object (what `?columns=` may select).
pub(crate) const METADATA_COLUMNS: &[&str] = &[
    "keys",
    "bounds",
    "convex_hull",
    "valid_percentage",
    "range",
    "mean",
    "stdev",
    "percentiles",
    "metadata",
    "band_count",
    "dtype",
    "bands",
];

fn metadata_json(names: &[String], r: &Resolved) -> Value {
    let m = &r.metadata;
    let b = &m.bounds_wgs84;
    let first = m.bands.first();
    let bands: Vec<Value> = m
        .bands
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "band": i + 1,
                "range": [s.min, s.max],
                "mean": s.mean,
                "stdev": s.stdev,
                "percentiles": s.percentiles,
            })
        })
        .collect();
    json!({
        "keys": keys_object(names, &r.keys),
        "bounds": [b.west, b.south, b.east, b.north],
        "convex_hull": m.footprint,
        "valid_percentage": m.valid_percentage,
        "range": first.map(|s| json!([s.min, s.max])),
        "mean": first.map(|s| s.mean),
        "stdev": first.map(|s| s.stdev),
        "percentiles": first.map(|s| s.percentiles.clone()),
        "metadata": m.extra,
        "band_count": m.band_count,
        "dtype": m.dtype.name(),
        "bands": bands,
    })
}

pub async fn metadata(
    State(app): State<AppState>,
    Path(keys): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let keys = split_keys(&keys);
    let r = app.store().resolve(&keys).await?;
    Ok(Json(metadata_json(&app.store().key_names(), &r)))
}

pub async fn metadata_many(
    State(app): State<AppState>,
    AxQuery(pairs): Pairs,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let q = Query(pairs);
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_param("body", format!("not JSON: {e}")))?;
    let Some(list) = body.get("keys").and_then(Value::as_array) else {
        return Err(ApiError::bad_param(
            "keys",
            "the body must be {\"keys\": [[value, ...], ...]}",
        ));
    };
    if list.len() > MAX_METADATA_BATCH {
        return Err(ApiError::bad_param(
            "keys",
            format!(
                "{} datasets asked, at most {MAX_METADATA_BATCH}",
                list.len()
            ),
        ));
    }
    let columns: Option<Vec<String>> = q.text("columns")?.map(|c| {
        c.trim_matches(|ch| ch == '[' || ch == ']')
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    // Checked up front, so an empty list answers the same as a full one.
    if let Some(bad) = columns
        .iter()
        .flatten()
        .find(|c| !METADATA_COLUMNS.contains(&c.as_str()))
    {
        return Err(ApiError::bad_param(
            "columns",
            format!(
                "unknown column '{bad}' (columns: {})",
                METADATA_COLUMNS.join(", ")
            ),
        ));
    }
    let names = app.store().key_names();
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let keys: Vec<String> = item
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .ok_or_else(|| ApiError::bad_param("keys", "each item must be a list of values"))?;
        let r = app.store().resolve(&keys).await?;
        let mut m = metadata_json(&names, &r);
        if let (Some(cols), Value::Object(obj)) = (&columns, &mut m) {
            obj.retain(|k, _| k == "keys" || cols.contains(k));
        }
        out.push(m);
    }
    Ok(Json(Value::Array(out)))
}

fn split_keys(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) fn quality(q: &Query) -> Result<u8, ApiError> {
    match q.number::<u8>("quality")? {
        None => Ok(kiln_engine::render::DEFAULT_QUALITY),
        Some(v) if (1..=100).contains(&v) => Ok(v),
        Some(v) => Err(ApiError::bad_param(
            "quality",
            format!("{v} is not 1 to 100"),
        )),
    }
}

/// Answers with a tile: 304 when the client has it, else the bytes with caching headers.
fn tile_response(
    app: &AppState,
    req_headers: &HeaderMap,
    tile: &crate::tiles::RenderedTile,
    hit: bool,
    started: Instant,
) -> Response {
    let timing = if hit {
        format!(
            "cache;desc=\"hit\", total;dur={:.2}",
            started.elapsed().as_secs_f64() * 1000.0
        )
    } else {
        tile.timing.to_string()
    };
    let cache_control = format!("public, max-age={}", app.config().cache_max_age_s);
    let not_modified = req_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == &*tile.etag || t.trim() == "*")
        });
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(tile.bytes.clone()));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(tile.content_type),
        );
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tile.etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Ok(v) = HeaderValue::from_str(&timing) {
        h.insert("server-timing", v);
    }
    resp
}

/// The area and format a tile route asks for (`None` for TileJSON).
fn area_of(
    app: &AppState,
    target: &Target,
    first: &Resolved,
    q: &Query,
) -> Result<Option<(Area, OutputFormat)>, ApiError> {
    Ok(match target {
        Target::Tile { tile, format } => Some((
            Area::Tile {
                tms: kiln_engine::Tms::WebMercatorQuad,
                tile: *tile,
                size: params::tile_size(q)?,
                buffer: params::buffer(q)?,
            },
            *format,
        )),
        Target::Preview { format } => {
            let grid = app
                .engine()
                .preview_grid(&first.metadata.bounds_wgs84, params::preview_size(q)?)?;
            Some((Area::Grid(grid), *format))
        }
        Target::TileJson => None,
    })
}

/// Renders `req` through the engine (or takes it from the tile cache) and answers.
async fn serve_render(
    app: &AppState,
    headers: &HeaderMap,
    started: Instant,
    req: RenderRequest,
) -> Result<Response, ApiError> {
    Ok(serve_render_traced(app, headers, started, req).await?.0)
}

/// [`serve_render`], also telling which sources of the first layer filled pixels.
pub(crate) async fn serve_render_traced(
    app: &AppState,
    headers: &HeaderMap,
    started: Instant,
    req: RenderRequest,
) -> Result<(Response, kiln_engine::SourceTrace), ApiError> {
    let key = req.cache_key();
    let engine = app.engine().clone();
    let render = async move { engine.render(&req).await.map_err(ApiError::from) };
    let (tile, hit) = app.tiles().get_or_render(key, render).await?;
    Ok((
        tile_response(app, headers, &tile, hit, started),
        (*tile.sources).clone(),
    ))
}

pub async fn singleband(
    State(app): State<AppState>,
    Path(rest): Path<String>,
    AxQuery(pairs): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let q = Query(pairs);
    let (keys, target) = params::split_tile_path(&rest)?;
    app.store().check_key_count(&keys)?;
    let band = params::band(&q, "band")?.unwrap_or(1);
    let stretch = params::range(&q, "stretch_range")?.unwrap_or(RangeSpec::DEFAULT);
    let colormap = params::colormap(&q)?;
    let resampling = params::resampling(&q)?;
    let quality = quality(&q)?;
    let r = app.store().resolve(&keys).await?;
    let Some((area, format)) = area_of(&app, &target, &r, &q)? else {
        return tilejson(&app, &headers, "singleband", &keys, &q, &r);
    };
    let band_count = r.metadata.band_count as usize;
    if band > band_count.max(1) {
        return Err(ApiError::bad_param(
            "band",
            format!("band {band} does not exist: the dataset has {band_count} band(s)"),
        ));
    }
    let product = match format {
        OutputFormat::Raw(f) => Product::Raw(f),
        OutputFormat::Image(format) => Product::SingleBand {
            stretch,
            colormap,
            image: ImageOutput { format, quality },
        },
    };
    let req = RenderRequest {
        layers: vec![r.layer(vec![band])],
        area,
        resampling,
        product,
    };
    serve_render(&app, &headers, started, req).await
}

/// The layers an RGB or compute route reads, one per named parameter: with one key value
/// fewer than the catalog has, the named parameters give the last key's value (Terracotta);
/// with all key values, they give band numbers of that one dataset (Kiln's multi-band
/// extension). Also returns the first dataset (for TileJSON and previews).
async fn channel_layers(
    app: &AppState,
    keys: &[String],
    names: &[&str],
    q: &Query,
    default_bands: &[usize],
) -> Result<(Vec<Layer>, Arc<Resolved>), ApiError> {
    let n = app.store().key_names().len();
    let mut layers = Vec::with_capacity(names.len());
    let mut first = None;
    if keys.len() + 1 == n {
        for name in names {
            let value = q.required(name)?;
            let mut full = keys.to_vec();
            full.push(value.to_string());
            let r = app.store().resolve(&full).await?;
            layers.push(r.layer(vec![1]));
            first.get_or_insert(r);
        }
    } else if keys.len() == n {
        let r = app.store().resolve(keys).await?;
        let count = r.metadata.band_count as usize;
        for (name, &default) in names.iter().zip(default_bands) {
            let b = params::band(q, name)?.unwrap_or(default);
            if b > count {
                return Err(ApiError::bad_param(
                    name,
                    format!("band {b} does not exist: the dataset has {count} band(s)"),
                ));
            }
            layers.push(r.layer(vec![b]));
        }
        first = Some(r);
    } else {
        let names = app.store().key_names();
        return Err(ApiError::bad_param(
            "keys",
            format!(
                "got {} key values, give {} ({}) for bands of one dataset or {} to pick \
                 datasets by the last key",
                keys.len(),
                n,
                names.join("/"),
                n.saturating_sub(1)
            ),
        ));
    }
    let first = first.ok_or_else(|| ApiError::bad_param("keys", "no channel to read"))?;
    Ok((layers, first))
}

pub async fn rgb(
    State(app): State<AppState>,
    Path(rest): Path<String>,
    AxQuery(pairs): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let q = Query(pairs);
    let (keys, target) = params::split_tile_path(&rest)?;
    let stretch = [
        params::range(&q, "r_range")?.unwrap_or(RangeSpec::DEFAULT),
        params::range(&q, "g_range")?.unwrap_or(RangeSpec::DEFAULT),
        params::range(&q, "b_range")?.unwrap_or(RangeSpec::DEFAULT),
    ];
    let resampling = params::resampling(&q)?;
    let quality = quality(&q)?;
    let (layers, first) = channel_layers(&app, &keys, &["r", "g", "b"], &q, &[1, 2, 3]).await?;
    let Some((area, format)) = area_of(&app, &target, &first, &q)? else {
        return tilejson(&app, &headers, "rgb", &keys, &q, &first);
    };
    let product = match format {
        OutputFormat::Raw(f) => Product::Raw(f),
        OutputFormat::Image(format) => Product::Rgb {
            stretch,
            image: ImageOutput { format, quality },
        },
    };
    let req = RenderRequest {
        layers,
        area,
        resampling,
        product,
    };
    serve_render(&app, &headers, started, req).await
}

pub async fn compute(
    State(app): State<AppState>,
    Path(rest): Path<String>,
    AxQuery(pairs): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let q = Query(pairs);
    let (keys, target) = params::split_tile_path(&rest)?;
    let text = q.required("expression")?;
    let expr =
        Expression::parse(text).map_err(|e| ApiError::bad_param("expression", e.to_string()))?;
    let variables: Vec<usize> = expr.variables().to_vec();
    if variables.is_empty() {
        return Err(ApiError::bad_param(
            "expression",
            format!(
                "uses no variable (v1 ... v{})",
                kiln_core::expr::MAX_VARIABLES
            ),
        ));
    }
    let names: Vec<String> = variables.iter().map(|v| format!("v{v}")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let colormap = params::colormap(&q)?;
    let resampling = params::resampling(&q)?;
    let quality = quality(&q)?;
    let (layers, first) = channel_layers(&app, &keys, &name_refs, &q, &variables).await?;
    let Some((area, format)) = area_of(&app, &target, &first, &q)? else {
        return tilejson(&app, &headers, "compute", &keys, &q, &first);
    };
    // Images need two numbers (the result has no statistics); raw values need no display
    // parameters: a stretch, when given, is checked but plays no part (nor in the cache key).
    let spec = params::range(&q, "stretch_range")?;
    let output = match (format, spec) {
        (OutputFormat::Raw(f), _) => ComputeOutput::Raw(f),
        (OutputFormat::Image(_), None) => {
            return Err(ApiError::bad_param(
                "stretch_range",
                "missing (required for compute images; .npy tiles need none)",
            ))
        }
        (OutputFormat::Image(_), Some(RangeSpec { lo, hi }))
            if !matches!((lo, hi), (Bound::Value(_), Bound::Value(_))) =>
        {
            return Err(ApiError::bad_param(
                "stretch_range",
                "compute needs two numbers (the result has no statistics for percentiles \
                 or null)",
            ))
        }
        (OutputFormat::Image(format), Some(stretch)) => ComputeOutput::Image {
            stretch,
            colormap,
            image: ImageOutput { format, quality },
        },
    };
    let req = RenderRequest {
        layers,
        area,
        resampling,
        product: Product::Compute {
            expression: text.to_string(),
            variables,
            output,
        },
    };
    serve_render(&app, &headers, started, req).await
}

pub async fn colormap(AxQuery(pairs): Pairs) -> Result<Json<Value>, ApiError> {
    let q = Query(pairs);
    let spec = params::range(&q, "stretch_range")?
        .ok_or_else(|| ApiError::bad_param("stretch_range", "missing (required)"))?;
    let (Bound::Value(lo), Bound::Value(hi)) = (spec.lo, spec.hi) else {
        return Err(ApiError::bad_param(
            "stretch_range",
            "needs two numbers, e.g. [0,1]",
        ));
    };
    let cmap = match q.text("colormap")? {
        None => None,
        Some(name) => Some(Colormap::by_name(name).map_err(|_| {
            ApiError::bad_param(
                "colormap",
                format!(
                    "unknown colormap '{name}'; available: {}",
                    kiln_core::product::colormap_names().join(", ")
                ),
            )
        })?),
    };
    let n = q.number::<usize>("num_values")?.unwrap_or(255);
    let stretch = Stretch::new(lo, hi).map_err(|e| ApiError::bad_param("stretch_range", e))?;
    let values = colormap_values(cmap.as_ref(), stretch, n)
        .map_err(|e| ApiError::bad_param("num_values", e))?;
    let list: Vec<Value> = values
        .iter()
        .map(|e| json!({ "value": e.value, "rgba": e.rgba }))
        .collect();
    Ok(Json(json!({ "colormap": list })))
}

pub async fn point(
    State(app): State<AppState>,
    Path(keys): Path<String>,
    AxQuery(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let q = Query(pairs);
    let keys = split_keys(&keys);
    let lon = q
        .number::<f64>("lon")?
        .ok_or_else(|| ApiError::bad_param("lon", "missing (required)"))?;
    let lat = q
        .number::<f64>("lat")?
        .ok_or_else(|| ApiError::bad_param("lat", "missing (required)"))?;
    kiln_engine::render::check_lonlat(lon, lat)?;
    let r = app.store().resolve(&keys).await?;
    let values: Vec<Value> = match app
        .engine()
        .sample_point(std::slice::from_ref(&r.source), lon, lat)
        .await?
    {
        Some(v) => v.into_iter().map(|x| json!(x)).collect(),
        None => vec![Value::Null; r.source.default_bands().len()],
    };
    Ok(Json(json!({
        "keys": keys_object(&app.store().key_names(), &r.keys),
        "lon": lon,
        "lat": lat,
        "values": values,
    })))
}

/// The first value of a proxy header (proxies append theirs: `a, b`).
fn forwarded<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let value = headers.get(name)?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    (!first.is_empty()).then_some(first)
}

/// `scheme://host/prefix` under which clients reach this server: `X-Forwarded-Proto`,
/// `X-Forwarded-Host` and `X-Forwarded-Prefix` when a proxy sets them, else the `Host` header.
/// Values that are not a plain scheme, host or path are ignored.
pub(crate) fn public_base(headers: &HeaderMap) -> String {
    let host_like = |h: &&str| {
        h.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
    };
    let scheme = forwarded(headers, "x-forwarded-proto")
        .filter(|s| s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("http"))
        .map_or("http".to_string(), str::to_ascii_lowercase);
    let host = forwarded(headers, "x-forwarded-host")
        .filter(host_like)
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(host_like)
        })
        .unwrap_or("localhost");
    let prefix = forwarded(headers, "x-forwarded-prefix")
        .filter(|p| {
            p.starts_with('/')
                && !p.contains("//")
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/-._~%".contains(c))
        })
        .map_or("", |p| p.trim_end_matches('/'));
    format!("{scheme}://{host}{prefix}")
}

/// TileJSON 3.0.0 for a tile route: the same route and query with `{z}/{x}/{y}`.
fn tilejson(
    app: &AppState,
    headers: &HeaderMap,
    route: &str,
    keys: &[String],
    q: &Query,
    r: &Resolved,
) -> Result<Response, ApiError> {
    let base = public_base(headers);
    let query = query_string(q, &[]);
    let ext = match q.text("format")? {
        None => "png",
        Some(f) => match ImageFormat::from_extension(f) {
            Some(fmt) => fmt.extension(),
            None => {
                return Err(ApiError::bad_param(
                    "format",
                    format!("'{f}' is not png, jpg or webp"),
                ))
            }
        },
    };
    // `/rgb/{z}/{x}/{y}.png` in a one-key catalog: no empty segment for the keys.
    let keys_path: String = keys
        .iter()
        .map(|k| format!("/{}", percent_encode(k)))
        .collect();
    let url = format!("{base}/{route}{keys_path}/{{z}}/{{x}}/{{y}}.{ext}{query}");
    let b = &r.metadata.bounds_wgs84;
    let (maxzoom, minzoom) = zoom_range(app, r);
    let center_zoom = minzoom.max(maxzoom.saturating_sub(3).min(maxzoom));
    let body = json!({
        "tilejson": "3.0.0",
        "name": keys.join("/"),
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [b.west, b.south, b.east, b.north],
        "center": [(b.west + b.east) / 2.0, (b.south + b.north) / 2.0, center_zoom],
    });
    Ok(Json(body).into_response())
}

/// The zoom whose pixels match the dataset's resolution, and the one where it fits a tile.
fn zoom_range(app: &AppState, r: &Resolved) -> (u8, u8) {
    let tms = app.engine().tile_matrix_set();
    let b = &r.metadata.bounds_wgs84;
    let width = r
        .source
        .header()
        .images
        .first()
        .map_or(256, |i| i.width.max(1));
    let (Some((x0, _)), Some((x1, _))) = (
        tms.project_lonlat(b.west, 0.0),
        tms.project_lonlat(b.east, 0.0),
    ) else {
        return (0, 0);
    };
    let res = (x1 - x0).abs() / f64::from(width);
    let max = tms.zoom_for_resolution(res.max(1e-3));
    // Any zoom renders (overviews or not), so the whole pyramid above the data is offered.
    (max, 0)
}

/// RFC 3986's unreserved characters stay as they are; everything else is `%XX`-encoded.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `?k=v&…` of `q` (percent-encoded, in order) without the parameters named in `skip`; empty
/// when nothing is left. TileJSON tile URLs carry the request's parameters on with it.
pub(crate) fn query_string(q: &Query, skip: &[&str]) -> String {
    let mut query = String::new();
    for (k, v) in q.0.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
        query.push(if query.is_empty() { '?' } else { '&' });
        query.push_str(&percent_encode(k));
        query.push('=');
        query.push_str(&percent_encode(v));
    }
    query
}

pub(crate) fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::spec())
}

pub async fn apidoc() -> Html<&'static str> {
    Html(crate::openapi::APIDOC_HTML)
}

#[cfg(test)]
mod encode_tests {
    use super::percent_encode;

    #[test]
    fn components_keep_unreserved_characters_only() {
        assert_eq!(percent_encode("A-z_0.9~"), "A-z_0.9~");
        assert_eq!(
            percent_encode("a b/ü[1,2]&"),
            "a%20b%2F%C3%BC%5B1%2C2%5D%26"
        );
    }
}
