//! The web viewer: static files embedded at build time (see `build.rs`) and a small
//! `config.json` with what the page cannot learn from the API (colormap names, base map).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde_json::json;

use crate::{ApiError, AppState};

mod files {
    include!(concat!(env!("OUT_DIR"), "/viewer_files.rs"));
}

/// Shown at `/` when the build had no MapLibre GL JS (no npm, no network).
const MISSING_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kiln viewer unavailable</title>
<link rel="icon" href="data:,">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#222}
code{background:#f1f1f1;padding:0 .25em;border-radius:3px}</style></head>
<body><h1>The Kiln viewer is not in this build</h1>
<p>This binary was compiled without MapLibre GL JS, the map library the viewer runs on:
<strong>REASON</strong>.</p>
<p>To get the viewer, install Node.js and npm and rebuild (<code>cargo build</code> runs
<code>npm ci</code> for you), or run <code>npm ci</code> in <code>viewer/</code> first, or point
<code>KILN_MAPLIBRE_DIST</code> at MapLibre's <code>dist</code> directory (with
<code>maplibre-gl.js</code>, <code>maplibre-gl.css</code> and <code>LICENSE.txt</code>).</p>
<p>Everything else works: the API is described at <a href="apidoc">apidoc</a>.</p>
</body></html>
"#;

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Whether `Accept-Encoding` takes gzip: a `gzip` entry decides by its weight, otherwise a
/// `*` entry does (RFC 9110 §12.5.3); `q=0` refuses.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let weight = parts
            .find_map(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()))
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("gzip") {
            gzip = Some(weight);
        } else if coding == "*" {
            any = Some(weight);
        }
    }
    gzip.or(any).is_some_and(|w| w > 0.0)
}

/// Whether `If-None-Match` names `etag`: `*`, or any listed tag compared weakly (a proxy may
/// have turned ours into `W/"..."`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

/// Answers with an embedded file (gzipped when the client takes it), or 304 when the client
/// has this build's copy.
fn file_response(headers: &HeaderMap, name: &str) -> Option<Response> {
    let (_, mime, plain, gzipped) = files::FILES.iter().find(|(n, _, _, _)| *n == name)?;
    let gzip = accepts_gzip(headers);
    let (bytes, etag) = if gzip {
        (*gzipped, format!("\"{}-{name}-gz\"", files::TAG))
    } else {
        (*plain, format!("\"{}-{name}\"", files::TAG))
    };
    let fresh = not_modified(headers, &etag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, *mime)], bytes).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip && !fresh {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    // Revalidated on every load (a cheap 304), so a new binary's viewer is picked up at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Some(response)
}

/// The page shown instead of the viewer, naming why MapLibre is missing.
fn missing_page(reason: &str) -> String {
    MISSING_PAGE.replace("REASON", &escape_html(reason))
}

pub async fn index(headers: HeaderMap) -> Response {
    if let Some(reason) = files::MISSING {
        return (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            missing_page(reason),
        )
            .into_response();
    }
    file_response(&headers, "index.html").unwrap_or_else(|| {
        ApiError::not_found("the viewer page is missing from this build").into_response()
    })
}

/// `/viewer` and `/viewer/` lead to the page at the root (relative, so a proxy prefix stays).
pub async fn redirect(uri: axum::http::Uri) -> Redirect {
    if uri.path().ends_with('/') {
        Redirect::permanent("../")
    } else {
        Redirect::permanent("./")
    }
}

pub async fn asset(headers: HeaderMap, Path(file): Path<String>) -> Response {
    if file == "index.html" {
        return Redirect::permanent("../").into_response();
    }
    file_response(&headers, &file).unwrap_or_else(|| {
        ApiError::not_found(format!("the viewer has no file '{file}'")).into_response()
    })
}

pub async fn config(State(app): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "colormaps": kiln_core::product::colormap_names(),
        "basemap": app.config().basemap,
        "maplibre": files::MISSING.is_none(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_taken_unless_refused() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&h)
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("br;q=1.0, GZIP;q=0.5"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("gzip;q=0, *"), "an explicit gzip entry beats *");
        assert!(with("identity;q=0.5, *;q=0.1"));
        assert!(!with("deflate, br"));
        assert!(!with("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn etags_match_weakly_and_star_matches_all() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            not_modified(&h, "\"t-app.js\"")
        };
        assert!(with("\"t-app.js\""));
        assert!(with("W/\"t-app.js\""));
        assert!(with("\"other\", \"t-app.js\""));
        assert!(with("*"));
        assert!(!with("\"t-app.css\""));
        assert!(!not_modified(&HeaderMap::new(), "\"t-app.js\""));
    }

    #[test]
    fn the_missing_page_names_the_reason_safely() {
        let page = missing_page("`npm ci` failed: <ENOTFOUND> registry & co");
        assert!(page.contains("`npm ci` failed: &lt;ENOTFOUND&gt; registry &amp; co"));
        assert!(!page.contains("REASON"));
        assert!(page.contains("KILN_MAPLIBRE_DIST") && page.contains("npm ci"));
    }

    #[test]
    fn every_embedded_file_has_a_type_and_bytes() {
        for name in ["index.html", "app.js", "app.css"] {
            let found = files::FILES.iter().find(|(n, _, _, _)| *n == name);
            assert!(found.is_some_and(|(_, mime, plain, gz)| !mime.is_empty()
                && !plain.is_empty()
                && gz.starts_with(&[0x1f, 0x8b])));
        }
        let maplibre = files::FILES
            .iter()
            .any(|(n, _, _, _)| *n == "maplibre-gl.js");
        assert_eq!(maplibre, files::MISSING.is_none());
    }
}
