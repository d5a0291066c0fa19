//! Route handlers: parameters in, one engine call through the tile service, response out.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Query as AxQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use kiln_catalog::{KeyFilter, Page};
use kiln_core::crs::WEB_MERCATOR_MAX_LAT;
use kiln_core::expr::Expression;
use kiln_core::product::{colormap_values, Colormap, ImageFormat, Stretch};
use kiln_core::tms::TileCoord;
use kiln_core::warp::{GridSpec, Resampling};
use kiln_core::{DataType, GeoTransform, Raster, Samples};
use kiln_engine::render::{encode_raster, OutputFormat, RenderOptions};
use kiln_engine::{OpenSource, TileRequest};
use serde_json::{json, Value};

use crate::datasets::Resolved;
use crate::error::ApiError;
use crate::params::{self, Bound, Query, RangeSpec, Target};
use crate::tiles::Timings;
use crate::AppState;

type Pairs = AxQuery<Vec<(String, String)>>;

/// Most datasets one `POST /metadata` may ask for.
const MAX_METADATA_BATCH: usize = 100;
/// JPEG/WebP quality of image tiles unless `quality` says otherwise.
const DEFAULT_QUALITY: u8 = 85;
/// Zoom of the grid `/point` samples on (a few millimetres per pixel).
const POINT_GRID_M: f64 = 0.001;

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
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
            for c in cols {
                if !obj.contains_key(c) {
                    return Err(ApiError::bad_param(
                        "columns",
                        format!("unknown column '{c}'"),
                    ));
                }
            }
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

/// A stretch range resolved against a band's statistics.
fn resolve_range(
    spec: RangeSpec,
    stats: Option<&kiln_catalog::BandStats>,
    param: &str,
) -> Result<(f64, f64), ApiError> {
    let end = |b: Bound, is_lo: bool| -> Result<f64, ApiError> {
        match (b, stats) {
            (Bound::Value(v), _) => Ok(v),
            (Bound::Default, Some(s)) => Ok(if is_lo { s.min } else { s.max }),
            (Bound::Percentile(p), Some(s)) => s
                .percentiles
                .get(usize::from(p) - 1)
                .copied()
                .ok_or_else(|| ApiError::bad_param(param, "the dataset has no percentiles")),
            // No valid pixel anywhere: every tile is transparent, any range will do.
            (Bound::Default, None) => Ok(if is_lo { 0.0 } else { 1.0 }),
            (Bound::Percentile(_), None) => Err(ApiError::bad_param(
                param,
                "percentiles need statistics, and the dataset has no valid pixels",
            )),
        }
    };
    let (lo, hi) = (end(spec.lo, true)?, end(spec.hi, false)?);
    if lo > hi {
        return Err(ApiError::bad_param(
            param,
            format!("resolves to [{lo}, {hi}]: the lower end is above the upper end"),
        ));
    }
    Ok((lo, hi))
}

fn content_type(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Npy => "application/x-npy",
        OutputFormat::GeoTiff => "image/tiff",
        OutputFormat::Image(f) => f.mime_type(),
    }
}

fn quality(q: &Query) -> Result<u8, ApiError> {
    match q.number::<u8>("quality")? {
        None => Ok(DEFAULT_QUALITY),
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

/// Where the pixels go: one tile, or a preview of the whole dataset.
#[derive(Debug, Clone)]
enum Area {
    Tile(TileCoord, usize),
    Grid(GridSpec),
}

impl Area {
    fn canonical(&self) -> String {
        match self {
            Self::Tile(t, s) => format!("{}/{}/{}@{s}", t.z(), t.x(), t.y()),
            Self::Grid(g) => format!("{:?}x{}x{}", g.transform.0, g.width, g.height),
        }
    }

    fn transform(&self, app: &AppState) -> GeoTransform {
        match self {
            Self::Tile(t, s) => app
                .engine()
                .tile_matrix_set()
                .tile_transform(*t, u32::try_from(*s).unwrap_or(256)),
            Self::Grid(g) => g.transform,
        }
    }
}

/// Reads `bands` (1-based; `None` = all but alpha) of `source` over `area`.
async fn read_area(
    app: &AppState,
    source: &Arc<OpenSource>,
    area: &Area,
    bands: Option<Vec<usize>>,
    resampling: Resampling,
) -> Result<Raster, ApiError> {
    let engine = app.engine();
    let sources = std::slice::from_ref(source);
    Ok(match area {
        Area::Tile(tile, size) => {
            engine
                .read_tile(
                    sources,
                    &TileRequest {
                        tile: *tile,
                        tile_size: *size,
                        resampling,
                        bands,
                    },
                )
                .await?
        }
        Area::Grid(grid) => engine.read_grid(sources, grid, bands, resampling).await?,
    })
}

/// The preview grid: the dataset's bounds in the tile CRS, fitted into `size` (default
/// 256 px on the longer side), aspect kept.
fn preview_area(app: &AppState, r: &Resolved, q: &Query) -> Result<Area, ApiError> {
    let tms = app.engine().tile_matrix_set();
    let b = &r.metadata.bounds_wgs84;
    let clamp = |lat: f64| lat.clamp(-WEB_MERCATOR_MAX_LAT, WEB_MERCATOR_MAX_LAT);
    let (x0, y0) = tms
        .project_lonlat(b.west, clamp(b.north))
        .ok_or_else(|| ApiError::internal("bounds do not project"))?;
    let (x1, y1) = tms
        .project_lonlat(b.east, clamp(b.south))
        .ok_or_else(|| ApiError::internal("bounds do not project"))?;
    let (w_m, h_m) = ((x1 - x0).abs().max(1e-6), (y0 - y1).abs().max(1e-6));
    let (width, height) = match params::preview_size(q)? {
        Some(s) => s,
        None => {
            let fit = |a: f64, b: f64| ((256.0 * a / b).round() as usize).max(1);
            if w_m >= h_m {
                (256, fit(h_m, w_m))
            } else {
                (fit(w_m, h_m), 256)
            }
        }
    };
    let transform = GeoTransform::north_up(
        x0.min(x1),
        y0.max(y1),
        w_m / width as f64,
        h_m / height as f64,
    );
    Ok(Area::Grid(GridSpec {
        transform,
        width,
        height,
    }))
}

/// The area and format a tile route asks for (`None` for TileJSON).
fn area_of(
    app: &AppState,
    target: &Target,
    first: &Resolved,
    q: &Query,
) -> Result<Option<(Area, OutputFormat)>, ApiError> {
    Ok(match target {
        Target::Tile { tile, format } => Some((Area::Tile(*tile, params::tile_size(q)?), *format)),
        Target::Preview { format } => Some((preview_area(app, first, q)?, *format)),
        Target::TileJson => None,
    })
}

/// Renders (or fetches from the cache) and answers.
#[allow(clippy::too_many_arguments)]
async fn serve_render<F>(
    app: &AppState,
    headers: &HeaderMap,
    started: Instant,
    cache_key: String,
    format: OutputFormat,
    render: F,
) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<(Vec<u8>, Timings), ApiError>> + Send,
{
    let (tile, hit) = app
        .tiles()
        .get_or_render(cache_key, content_type(format), render)
        .await?;
    Ok(tile_response(app, headers, &tile, hit, started))
}

/// Reads a raster (`read`), then encodes it for `source`, timing both halves for
/// `Server-Timing`.
async fn read_then_encode<R>(
    app: &AppState,
    source: &Arc<OpenSource>,
    area: &Area,
    opts: &RenderOptions,
    read: R,
) -> Result<(Vec<u8>, Timings), ApiError>
where
    R: std::future::Future<Output = Result<Raster, ApiError>>,
{
    let t0 = Instant::now();
    let raster = read.await?;
    let t1 = Instant::now();
    let bytes = encode_raster(app.engine(), source, raster, area.transform(app), opts).await?;
    Ok((
        bytes,
        Timings {
            read: t1 - t0,
            encode: t1.elapsed(),
        },
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
    let cmap = params::colormap(&q)?;
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
    let (lo, hi) = resolve_range(stretch, r.band_stats(band), "stretch_range")?;
    let key = format!(
        "sb|{}|{}|b{band}|{lo},{hi}|{}|{resampling:?}|{format:?}|q{quality}",
        r.identity(),
        area.canonical(),
        cmap.canonical
    );
    let opts = RenderOptions {
        format,
        stretch: vec![(lo, hi)],
        colormap: cmap.name.clone(),
        explicit_colormap: cmap.explicit.clone(),
        quality,
    };
    let read = read_area(&app, &r.source, &area, Some(vec![band]), resampling);
    let render = read_then_encode(&app, &r.source, &area, &opts, read);
    serve_render(&app, &headers, started, key, format, render).await
}

/// The datasets and bands an RGB or compute route reads: with one key value fewer than the
/// catalog has, the named parameters give the last key's value (Terracotta); with all key
/// values, they give band numbers of that one dataset (Kiln's multi-band extension).
async fn channel_sources(
    app: &AppState,
    keys: &[String],
    names: &[&str],
    q: &Query,
    default_bands: &[usize],
) -> Result<Vec<(Arc<Resolved>, usize)>, ApiError> {
    let n = app.store().key_names().len();
    if keys.len() + 1 == n {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let value = q.required(name)?;
            let mut full = keys.to_vec();
            full.push(value.to_string());
            out.push((app.store().resolve(&full).await?, 1));
        }
        Ok(out)
    } else if keys.len() == n {
        let r = app.store().resolve(keys).await?;
        let count = r.metadata.band_count as usize;
        names
            .iter()
            .zip(default_bands)
            .map(|(name, &default)| {
                let b = params::band(q, name)?.unwrap_or(default);
                if b > count {
                    return Err(ApiError::bad_param(
                        name,
                        format!("band {b} does not exist: the dataset has {count} band(s)"),
                    ));
                }
                Ok((r.clone(), b))
            })
            .collect()
    } else {
        let names = app.store().key_names();
        Err(ApiError::bad_param(
            "keys",
            format!(
                "got {} key values, give {} ({}) for bands of one dataset or {} to pick \
                 datasets by the last key",
                keys.len(),
                n,
                names.join("/"),
                n.saturating_sub(1)
            ),
        ))
    }
}

/// Reads every channel over `area`; channels of one dataset are read in one pass.
async fn read_channels(
    app: &AppState,
    channels: &[(Arc<Resolved>, usize)],
    area: &Area,
    resampling: Resampling,
) -> Result<Vec<Raster>, ApiError> {
    let same = channels.windows(2).all(|w| Arc::ptr_eq(&w[0].0, &w[1].0));
    if same {
        if let Some((r, _)) = channels.first() {
            let bands: Vec<usize> = channels.iter().map(|(_, b)| *b).collect();
            let raster = read_area(app, &r.source, area, Some(bands), resampling).await?;
            return Ok(vec![raster]);
        }
    }
    let reads = channels
        .iter()
        .map(|(r, b)| read_area(app, &r.source, area, Some(vec![*b]), resampling));
    futures_util::future::try_join_all(reads).await
}

/// Stacks single- or multi-band rasters into one, band after band; the mask is valid where
/// every input is valid (a pixel missing in one channel is transparent).
fn stack(rasters: Vec<Raster>) -> Result<Raster, ApiError> {
    let Some(first) = rasters.first() else {
        return Err(ApiError::internal("nothing to stack"));
    };
    if rasters.len() == 1 {
        return rasters
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal("nothing to stack"));
    }
    let (w, h) = (first.width, first.height);
    let dtype = first.dtype();
    let mut mask = vec![255u8; w * h];
    let mut bands = 0;
    for r in &rasters {
        if (r.width, r.height) != (w, h) {
            return Err(ApiError::internal("channels differ in size"));
        }
        for (m, &v) in mask.iter_mut().zip(&r.mask) {
            *m = (*m).min(v);
        }
        bands += r.bands;
    }
    macro_rules! concat_as {
        ($($var:ident),*) => {
            match dtype {
                $(DataType::$var if rasters.iter().all(|r| r.dtype() == dtype) => {
                    let mut out = Vec::with_capacity(w * h * bands);
                    for r in &rasters {
                        if let Samples::$var(v) = &r.samples {
                            out.extend_from_slice(v);
                        }
                    }
                    Samples::$var(out)
                })*
                _ => {
                    let mut out = Vec::with_capacity(w * h * bands);
                    for r in &rasters {
                        out.extend((0..r.samples.len()).map(|i| r.samples.get_f64(i)));
                    }
                    Samples::F64(out)
                }
            }
        };
    }
    let samples = concat_as!(U8, I8, U16, I16, U32, I32, F32, F64);
    Ok(Raster {
        width: w,
        height: h,
        bands,
        samples,
        mask,
    })
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
    let ranges = [
        params::range(&q, "r_range")?.unwrap_or(RangeSpec::DEFAULT),
        params::range(&q, "g_range")?.unwrap_or(RangeSpec::DEFAULT),
        params::range(&q, "b_range")?.unwrap_or(RangeSpec::DEFAULT),
    ];
    let resampling = params::resampling(&q)?;
    let quality = quality(&q)?;
    let channels = channel_sources(&app, &keys, &["r", "g", "b"], &q, &[1, 2, 3]).await?;
    let Some((first, _)) = channels.first().cloned() else {
        return Err(ApiError::internal("no channels"));
    };
    let Some((area, format)) = area_of(&app, &target, &first, &q)? else {
        return tilejson(&app, &headers, "rgb", &keys, &q, &first);
    };
    let mut stretch = Vec::with_capacity(3);
    for ((spec, (r, b)), name) in ranges
        .iter()
        .zip(&channels)
        .zip(["r_range", "g_range", "b_range"])
    {
        stretch.push(resolve_range(*spec, r.band_stats(*b), name)?);
    }
    let ids: Vec<String> = channels
        .iter()
        .map(|(r, b)| format!("{}#{b}", r.identity()))
        .collect();
    let key = format!(
        "rgb|{}|{}|{stretch:?}|{resampling:?}|{format:?}|q{quality}",
        ids.join("+"),
        area.canonical()
    );
    let opts = RenderOptions {
        format,
        stretch,
        colormap: None,
        explicit_colormap: None,
        quality,
    };
    let read = async { stack(read_channels(&app, &channels, &area, resampling).await?) };
    let render = read_then_encode(&app, &first.source, &area, &opts, read);
    serve_render(&app, &headers, started, key, format, render).await
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
    let vars: Vec<usize> = expr.variables().to_vec();
    let names: Vec<String> = vars.iter().map(|v| format!("v{v}")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let cmap = params::colormap(&q)?;
    let resampling = params::resampling(&q)?;
    let quality = quality(&q)?;
    let channels = channel_sources(&app, &keys, &name_refs, &q, &vars).await?;
    let Some((first, _)) = channels.first().cloned() else {
        return Err(ApiError::bad_param(
            "expression",
            format!(
                "uses no variable (v1 ... v{})",
                kiln_core::expr::MAX_VARIABLES
            ),
        ));
    };
    let Some((area, format)) = area_of(&app, &target, &first, &q)? else {
        return tilejson(&app, &headers, "compute", &keys, &q, &first);
    };
    // Raw values (.npy) need no display parameters: a stretch, when given, is checked but
    // plays no part (nor in the cache key).
    let spec = params::range(&q, "stretch_range")?;
    let (lo, hi) = match (spec, format) {
        (_, OutputFormat::Npy) => (0.0, 0.0),
        (None, _) => {
            return Err(ApiError::bad_param(
                "stretch_range",
                "missing (required for compute images; .npy tiles need none)",
            ))
        }
        (Some(spec), _) => {
            let (Bound::Value(lo), Bound::Value(hi)) = (spec.lo, spec.hi) else {
                return Err(ApiError::bad_param(
                    "stretch_range",
                    "compute needs two numbers (the result has no statistics for percentiles \
                     or null)",
                ));
            };
            (lo, hi)
        }
    };
    if format == OutputFormat::GeoTiff {
        return Err(ApiError::bad_param(
            "format",
            "compute tiles are .png, .jpg, .webp or .npy",
        ));
    }
    let ids: Vec<String> = channels
        .iter()
        .map(|(r, b)| format!("{}#{b}", r.identity()))
        .collect();
    let key = format!(
        "cmp|{}|{}|{text}|{lo},{hi}|{}|{resampling:?}|{format:?}|q{quality}",
        ids.join("+"),
        area.canonical(),
        cmap.canonical
    );
    let opts = RenderOptions {
        format,
        stretch: vec![(lo, hi)],
        colormap: cmap.name.clone(),
        explicit_colormap: cmap.explicit.clone(),
        quality,
    };
    // The expression is evaluated on the CPU pool as part of the read.
    let read = async {
        let raster = stack(read_channels(&app, &channels, &area, resampling).await?)?;
        let (w, h) = (raster.width, raster.height);
        let result = app
            .engine()
            .pool()
            .run(move || evaluate(&expr, &raster))
            .await??;
        let mask: Vec<u8> = result
            .iter()
            .map(|v| if v.is_finite() { 255 } else { 0 })
            .collect();
        Ok::<_, ApiError>(Raster {
            width: w,
            height: h,
            bands: 1,
            samples: Samples::F64(result),
            mask,
        })
    };
    let render = read_then_encode(&app, &first.source, &area, &opts, read);
    serve_render(&app, &headers, started, key, format, render).await
}

/// Evaluates `expr` with band `i` of `raster` as variable `i+1`'s values (masked → NaN).
fn evaluate(expr: &Expression, raster: &Raster) -> Result<Vec<f64>, ApiError> {
    let n = raster.pixel_count();
    let planes: Vec<Vec<f64>> = (0..raster.bands)
        .map(|b| {
            (0..n)
                .map(|i| {
                    if raster.mask[i] == 0 {
                        f64::NAN
                    } else {
                        raster.samples.get_f64(b * n + i)
                    }
                })
                .collect()
        })
        .collect();
    // Variables are numbered by the channels read, which follow `expr.variables()`.
    let max_var = expr.variables().iter().copied().max().unwrap_or(0);
    let empty: Vec<f64> = vec![f64::NAN; n];
    let mut inputs: Vec<&[f64]> = vec![&empty; max_var];
    for (plane, &v) in planes.iter().zip(expr.variables()) {
        inputs[v - 1] = plane;
    }
    expr.evaluate(&inputs)
        .map_err(|e| ApiError::bad_param("expression", e.to_string()))
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
    if !(-180.0..=180.0).contains(&lon) {
        return Err(ApiError::bad_param(
            "lon",
            format!("{lon} is not in -180 ... 180"),
        ));
    }
    if !(-WEB_MERCATOR_MAX_LAT..=WEB_MERCATOR_MAX_LAT).contains(&lat) {
        return Err(ApiError::bad_param(
            "lat",
            format!("{lat} is outside the Web Mercator range -85.05 ... 85.05"),
        ));
    }
    let r = app.store().resolve(&keys).await?;
    let (x, y) = app
        .engine()
        .tile_matrix_set()
        .project_lonlat(lon, lat)
        .ok_or_else(|| ApiError::bad_param("lat", "does not project"))?;
    // A one-pixel grid a millimetre wide around the point: the engine's nearest sampling picks
    // the source pixel that contains it, through the same path tiles take.
    let grid = GridSpec {
        transform: GeoTransform::north_up(
            x - POINT_GRID_M / 2.0,
            y + POINT_GRID_M / 2.0,
            POINT_GRID_M,
            POINT_GRID_M,
        ),
        width: 1,
        height: 1,
    };
    let raster = app
        .engine()
        .read_grid(
            std::slice::from_ref(&r.source),
            &grid,
            None,
            Resampling::Nearest,
        )
        .await?;
    let valid = raster.mask.first().is_some_and(|&m| m != 0);
    let values: Vec<Value> = (0..raster.bands)
        .map(|b| {
            if valid {
                json!(raster.samples.get_f64(b))
            } else {
                Value::Null
            }
        })
        .collect();
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
fn public_base(headers: &HeaderMap) -> String {
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
    let mut query = String::new();
    for (k, v) in &q.0 {
        query.push(if query.is_empty() { '?' } else { '&' });
        query.push_str(&percent_encode(k));
        query.push('=');
        query.push_str(&percent_encode(v));
    }
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

fn percent_encode(s: &str) -> String {
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
