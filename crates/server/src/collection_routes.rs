//! `/collections`: composite terrain tiles by precedence (Mapzen's terrain tiles, served
//! live). Below `/collections/{name}/` the paths follow Mapzen's bucket layout
//! (`terrarium/{z}/{x}/{y}.png`, `normal/…`, `geotiff/{z}/{x}/{y}.tif`), so a tool built
//! for Mapzen's tiles needs only a new base URL.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query as AxQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kiln_catalog::MemberRef;
use kiln_core::product::ImageFormat;
use kiln_core::tms::TileCoord;
use kiln_engine::{Area, ImageOutput, OutputFormat, Product, Terrain, Tms};
use serde_json::{json, Value};

use crate::collections::{member_label, ResolvedCollection};
use crate::error::ApiError;
use crate::handlers::{percent_encode, public_base, quality, query_string, serve_render_traced};
use crate::params::{self, Query};
use crate::AppState;

type Pairs = AxQuery<Vec<(String, String)>>;

/// The products under `/collections/{name}/`, with the extensions each is served as.
pub const PRODUCTS: &[(&str, &[&str])] = &[
    ("terrarium", &["png", "webp"]),
    ("terrain-rgb", &["png", "webp"]),
    ("normal", &["png", "webp"]),
    ("hillshade", &["png", "webp", "jpg"]),
    ("geotiff", &["tif"]),
    ("raw", &["npy"]),
];

async fn resolve(app: &AppState, name: &str) -> Result<Arc<ResolvedCollection>, ApiError> {
    app.collections().resolve(app.store(), name).await
}

pub async fn list(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let list = app.store().catalog().collections().await?;
    let items: Vec<Value> = list
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "description": c.description,
                "blend_px": c.blend_px,
                "member_count": c.member_count,
            })
        })
        .collect();
    Ok(Json(json!({ "collections": items })))
}

pub async fn show(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = resolve(&app, &name).await?;
    let key_names = app.store().key_names();
    let mut sources: Vec<Value> = c
        .index
        .sources()
        .iter()
        .enumerate()
        .map(|(rank, s)| {
            json!({
                "name": s.label,
                "rank": rank,
                "priority": s.priority,
                "resolution_m": s.resolution_m,
                "min_zoom": s.min_zoom,
                "max_zoom": s.max_zoom,
                "acquired": s.acquired,
                "enabled": true,
                "nodata": s.source.header().nodata,
                "dtype": s.source.header().images[0].dtype,
                "bounds": [s.bounds.west, s.bounds.south, s.bounds.east, s.bounds.north],
                "footprint": s.footprint,
            })
        })
        .collect();
    // Members that take no part: disabled, or unusable (with the reason).
    for m in &c.members {
        let label = member_label(&key_names, &m.source);
        let reason = if !m.settings.enabled {
            Some("disabled".to_string())
        } else {
            c.index
                .skipped()
                .iter()
                .find(|(l, _)| *l == label)
                .map(|(_, r)| r.clone())
        };
        if let Some(reason) = reason {
            sources.push(json!({
                "name": label,
                "rank": Value::Null,
                "priority": m.settings.priority,
                "min_zoom": m.settings.min_zoom,
                "max_zoom": m.settings.max_zoom,
                "acquired": m.settings.acquired,
                "enabled": m.settings.enabled,
                "nodata": m.settings.nodata,
                "unused": reason,
            }));
        }
    }
    let datasets: Vec<Value> = c
        .members
        .iter()
        .filter_map(|m| match &m.source {
            MemberRef::Dataset(keys) => Some(json!(keys)),
            MemberRef::Uri(_) => None,
        })
        .collect();
    Ok(Json(json!({
        "name": c.info.name,
        "description": c.info.description,
        "blend_px": c.info.blend_px,
        "keys": key_names,
        "datasets": datasets,
        "bounds": bounds_of(&c).map(|b| [b.west, b.south, b.east, b.north]),
        "products": PRODUCTS.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        "sources": sources,
    })))
}

pub async fn point(
    State(app): State<AppState>,
    Path(name): Path<String>,
    AxQuery(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let q = Query(pairs);
    let lon = q
        .number::<f64>("lon")?
        .ok_or_else(|| ApiError::bad_param("lon", "missing (required)"))?;
    let lat = q
        .number::<f64>("lat")?
        .ok_or_else(|| ApiError::bad_param("lat", "missing (required)"))?;
    let zoom = q.number::<u8>("zoom")?;
    kiln_engine::render::check_lonlat(lon, lat)?;
    let c = resolve(&app, &name).await?;
    let hit = c.index.sample_point(app.engine(), lon, lat, zoom).await?;
    let (value, source) = match hit {
        Some((h, i)) => (json!(h), json!(c.index.sources()[i].label)),
        None => (Value::Null, Value::Null),
    };
    Ok(Json(json!({
        "collection": name,
        "lon": lon,
        "lat": lat,
        "value": value,
        "source": source,
    })))
}

pub async fn tile(
    State(app): State<AppState>,
    Path((name, product, z, x, file)): Path<(String, String, String, String, String)>,
    AxQuery(pairs): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let q = Query(pairs);
    let (stem, ext) = file
        .rsplit_once('.')
        .ok_or_else(|| ApiError::not_found(format!("'{file}' has no file extension")))?;
    let (y, retina) = match stem.strip_suffix("@2x") {
        Some(y) => (y, true),
        None => (stem, false),
    };
    let num = |what: &str, s: &str| -> Result<u32, ApiError> {
        s.parse::<u32>()
            .map_err(|_| ApiError::bad_param(what, format!("'{s}' is not a tile coordinate")))
    };
    let z =
        u8::try_from(num("z", &z)?).map_err(|_| ApiError::bad_param("z", "zoom is too large"))?;
    let tile =
        TileCoord::new(z, num("x", &x)?, num("y", y)?).map_err(|e| ApiError::bad_param("z", e))?;
    let terrain = terrain_product(&product, ext, &q)?;
    let default_size = match terrain {
        // Mapzen's GeoTIFF tiles are 512 px.
        Terrain::GeoTiff => 512,
        _ if retina => 512,
        _ => 256,
    };
    let size = if q.get("tile_size").is_some() {
        params::tile_size(&q)?
    } else {
        default_size
    };
    let buffer = params::buffer(&q)?;
    let resampling = params::resampling(&q)?;
    let c = resolve(&app, &name).await?;
    let area = Area::Tile {
        tms: Tms::WebMercatorQuad,
        tile,
        size,
        buffer,
    };
    let Some(render) =
        c.index
            .render_request(app.engine(), area, resampling, Product::Terrain(terrain))?
    else {
        return Err(ApiError::not_found(format!(
            "no source of collection '{name}' covers tile {z}/{}/{} at this zoom",
            tile.x(),
            tile.y()
        )));
    };
    let (mut resp, trace) = serve_render_traced(&app, &headers, started, render.request).await?;
    let names: Vec<&str> = trace
        .contributed
        .iter()
        .filter_map(|&i| render.candidates.get(i))
        .filter_map(|&c2| c.index.sources().get(c2))
        .map(|s| s.label.as_str())
        .collect();
    let header_list: Vec<String> = names.iter().map(|n| percent_encode(n)).collect();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&header_list.join(", ")) {
        h.insert("x-kiln-sources", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}, sources;desc=\"{}\"",
        h.get("server-timing")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
        header_list.join(" ")
    )) {
        h.insert("server-timing", v);
    }
    Ok(resp)
}

pub async fn tilejson(
    State(app): State<AppState>,
    Path((name, product)): Path<(String, String)>,
    AxQuery(pairs): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = Query(pairs);
    let ext = match q.text("format")? {
        Some(f) => f.to_ascii_lowercase(),
        None => PRODUCTS
            .iter()
            .find(|(p, _)| *p == product)
            .map(|(_, exts)| exts[0].to_string())
            .unwrap_or_else(|| "png".into()),
    };
    // The tiles must render with these parameters: check them now, not on every tile.
    let terrain = terrain_product(&product, &ext, &q)?;
    let size = if q.get("tile_size").is_some() {
        params::tile_size(&q)?
    } else if terrain == Terrain::GeoTiff {
        512
    } else {
        256
    };
    params::buffer(&q)?;
    params::resampling(&q)?;
    let c = resolve(&app, &name).await?;
    let base = public_base(&headers);
    let query = query_string(&q, &["format"]);
    let url = format!(
        "{base}/collections/{}/{product}/{{z}}/{{x}}/{{y}}.{ext}{query}",
        percent_encode(&name)
    );
    let b = bounds_of(&c).unwrap_or(kiln_core::GeoBounds {
        west: -180.0,
        south: -85.051_128_779_806_6,
        east: 180.0,
        north: 85.051_128_779_806_6,
    });
    let maxzoom = max_zoom(&app, &c, size);
    let mut body = json!({
        "tilejson": "3.0.0",
        "name": format!("{name} {product}"),
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": 0,
        "maxzoom": maxzoom,
        "bounds": [b.west, b.south, b.east, b.north],
        "center": [(b.west + b.east) / 2.0, (b.south + b.north) / 2.0, maxzoom.saturating_sub(3)],
        "tileSize": size,
    });
    // MapLibre's `raster-dem` source reads these.
    match product.as_str() {
        "terrarium" => body["encoding"] = json!("terrarium"),
        "terrain-rgb" => body["encoding"] = json!("mapbox"),
        _ => {}
    }
    Ok(Json(body).into_response())
}

/// The union of the usable members' bounds, within WGS 84's ranges (a global grid's edge
/// pixels reach past ±180° / ±90°, and TileJSON wants valid longitudes and latitudes).
fn bounds_of(c: &ResolvedCollection) -> Option<kiln_core::GeoBounds> {
    c.index
        .sources()
        .iter()
        .map(|s| s.bounds)
        .reduce(|a, b| kiln_core::GeoBounds {
            west: a.west.min(b.west),
            south: a.south.min(b.south),
            east: a.east.max(b.east),
            north: a.north.max(b.north),
        })
        .map(|b| kiln_core::GeoBounds {
            west: b.west.max(-180.0),
            south: b.south.max(-90.0),
            east: b.east.min(180.0),
            north: b.north.min(90.0),
        })
}

/// The zoom whose tile pixels match the finest member's ground resolution at its latitude.
fn max_zoom(app: &AppState, c: &ResolvedCollection, size: u32) -> u8 {
    let tms = app.engine().tile_matrix_set();
    let finest = c
        .index
        .sources()
        .iter()
        .map(|s| {
            let lat = ((s.bounds.south + s.bounds.north) / 2.0).clamp(-85.0, 85.0);
            // Web Mercator metres per ground metre grow as 1 / cos(latitude).
            s.resolution_m / lat.to_radians().cos()
        })
        .fold(f64::INFINITY, f64::min);
    if !finest.is_finite() {
        return 0;
    }
    let z = tms.zoom_for_resolution(finest.max(1e-3));
    if size == 512 {
        z.saturating_sub(1)
    } else {
        z
    }
}

/// The terrain product a route names, checked against the file extension.
fn terrain_product(product: &str, ext: &str, q: &Query) -> Result<Terrain, ApiError> {
    let Some((_, exts)) = PRODUCTS.iter().find(|(p, _)| *p == product) else {
        return Err(ApiError::not_found(format!(
            "no product '{product}': use one of {}",
            PRODUCTS
                .iter()
                .map(|(p, _)| *p)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let ext = ext.to_ascii_lowercase();
    let ext = if ext == "jpeg" { "jpg".into() } else { ext };
    if !exts.contains(&ext.as_str()) {
        return Err(ApiError::bad_param(
            "format",
            format!(
                "'.{ext}' is not a {product} format: use .{}",
                exts.join(" or .")
            ),
        ));
    }
    let quality = quality(q)?;
    let image = || -> Result<ImageOutput, ApiError> {
        let format = match OutputFormat::from_extension(&ext) {
            Some(OutputFormat::Image(f)) => f,
            _ => ImageFormat::Png,
        };
        Ok(ImageOutput { format, quality })
    };
    // Every terrain parameter is checked whatever the product, so a mistyped one is never
    // silently ignored.
    let quantise = match q.text("quantize")? {
        None => false,
        Some(v) => match v {
            "true" => true,
            "false" => false,
            other => {
                return Err(ApiError::bad_param(
                    "quantize",
                    format!("'{other}' is not true or false"),
                ))
            }
        },
    };
    let finite = |name: &str, default: f64| -> Result<f64, ApiError> {
        match q.number::<f64>(name)? {
            None => Ok(default),
            Some(v) if v.is_finite() => Ok(v),
            Some(v) => Err(ApiError::bad_param(name, format!("{v} is not finite"))),
        }
    };
    let base = finite("base", -10_000.0)?;
    if base.abs() > 1e9 {
        return Err(ApiError::bad_param("base", "must be within ±1e9"));
    }
    let interval = finite("interval", 0.1)?;
    if interval <= 0.0 || interval > 1e6 {
        return Err(ApiError::bad_param(
            "interval",
            format!("{interval} must be above 0 and at most 1e6"),
        ));
    }
    let azimuth = finite("azimuth", 315.0)?;
    let altitude = finite("altitude", 45.0)?;
    let z_factor = finite("z_factor", 1.0)?;
    if !(0.0..=360.0).contains(&azimuth) {
        return Err(ApiError::bad_param("azimuth", "must be 0 to 360 degrees"));
    }
    if !(0.0..=90.0).contains(&altitude) {
        return Err(ApiError::bad_param("altitude", "must be 0 to 90 degrees"));
    }
    if z_factor <= 0.0 || z_factor > 1e6 {
        return Err(ApiError::bad_param(
            "z_factor",
            "must be above 0 (at most 1e6)",
        ));
    }
    Ok(match product {
        "terrarium" => Terrain::Terrarium {
            image: image()?,
            quantise,
        },
        "terrain-rgb" => Terrain::TerrainRgb {
            base,
            interval,
            image: image()?,
            quantise,
        },
        "normal" => Terrain::Normal { image: image()? },
        "hillshade" => Terrain::Hillshade {
            azimuth,
            altitude,
            z_factor,
            image: image()?,
        },
        "geotiff" => Terrain::GeoTiff,
        _ => Terrain::Raw,
    })
}
