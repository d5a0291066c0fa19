//! The OpenAPI 3 description of the HTTP API (`/swagger.json`) and a self-contained page that
//! renders it (`/apidoc`; no CDN, the server must work offline).

use serde_json::{json, Map, Value};

fn param(name: &str, location: &str, required: bool, description: &str, example: &str) -> Value {
    json!({
        "name": name,
        "in": location,
        "required": required,
        "description": description,
        "schema": { "type": "string" },
        "example": example,
    })
}

fn keys_param() -> Value {
    let mut p = param(
        "keys",
        "path",
        true,
        "Key values identifying the dataset, in catalog key order, separated by '/'",
        "dem/2020",
    );
    p["schema"] = json!({ "type": "string" });
    p
}

fn tile_params() -> Vec<Value> {
    vec![
        keys_param(),
        param("z", "path", true, "Zoom level (WebMercatorQuad)", "4"),
        param("x", "path", true, "Tile column", "8"),
        param("y", "path", true, "Tile row", "5"),
        param(
            "tile_size",
            "query",
            false,
            "Tile size as JSON list: [256,256] (default) or [512,512]; for previews any size up to 2048",
            "[256,256]",
        ),
        param(
            "resampling",
            "query",
            false,
            "nearest (default), bilinear or cubic (Kiln extension)",
            "nearest",
        ),
        param(
            "quality",
            "query",
            false,
            "JPEG/WebP quality 1-100 for .jpg/.webp tiles (Kiln extension)",
            "85",
        ),
    ]
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
        "503": { "description": "Server saturated; retry after Retry-After seconds", "content": error_content() },
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

/// The OpenAPI 3.0 document.
pub fn spec() -> Value {
    let singleband_params = {
        let mut p = tile_params();
        p.extend([
            param(
                "stretch_range",
                "query",
                false,
                "Value range mapped onto the colormap as JSON list; numbers, percentiles like \"p2\", or null for the dataset's min/max (default)",
                "[\"p2\",\"p98\"]",
            ),
            param(
                "colormap",
                "query",
                false,
                "Colormap name (see /colormap) or 'explicit'",
                "viridis",
            ),
            param(
                "explicit_color_map",
                "query",
                false,
                "With colormap=explicit: JSON object value -> [r,g,b(,a)] or hex colour",
                "{\"1\": \"#ff0000\"}",
            ),
            param(
                "band",
                "query",
                false,
                "1-based band of a multi-band dataset (default 1; Kiln extension)",
                "1",
            ),
        ]);
        p
    };
    let rgb_params = {
        let mut p = tile_params();
        for (c, name) in [("r", "red"), ("g", "green"), ("b", "blue")] {
            p.push(param(
                c,
                "query",
                false,
                &format!("Value of the last key for the {name} channel (keys path one short), or a 1-based band number of the dataset (full keys path)"),
                "B04",
            ));
            p.push(param(
                &format!("{c}_range"),
                "query",
                false,
                &format!("Stretch range of the {name} channel, as stretch_range"),
                "[0,3000]",
            ));
        }
        p
    };
    let compute_params = {
        let mut p = tile_params();
        // Written from the parser's own tables, so the document cannot fall behind it.
        let functions: Vec<String> = kiln_core::expr::FUNCTIONS
            .iter()
            .map(|(name, arity)| format!("{name}/{arity}"))
            .collect();
        let expression_doc = format!(
            "Band math over v1..v{}: numbers, pi, nan, inf, + - * / % **, unary - + ~, \
             comparisons < <= > >= == !=, & | on comparisons, parentheses and the functions \
             (name/arguments) {}. At most {} characters.",
            kiln_core::expr::MAX_VARIABLES,
            functions.join(", "),
            kiln_core::expr::MAX_EXPRESSION_CHARS
        );
        p.push(param(
            "expression",
            "query",
            true,
            &expression_doc,
            "(v1 - v2) / (v1 + v2)",
        ));
        p.push(param(
            "stretch_range",
            "query",
            false,
            "Range of the result mapped onto the colormap, two numbers; required for images, \
             not used by .npy tiles (raw values)",
            "[-1,1]",
        ));
        p.push(param("colormap", "query", false, "Colormap name", "rdbu"));
        for i in 1..=5 {
            p.push(param(
                &format!("v{i}"),
                "query",
                false,
                "Value of the last key for this variable (keys path one short), or a band number (full keys path)",
                "B04",
            ));
        }
        p
    };
    let mut paths = Map::new();
    paths.insert(
        "/health".into(),
        get(
            "Liveness",
            "Answers at once, without touching the catalog or the CPU pool.",
            vec![],
            json_ok("The server is up", json!({ "type": "object" })),
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
                json!({ "type": "object", "properties": { "keys": { "type": "array" } } }),
            ),
        ),
    );
    paths.insert(
        "/datasets".into(),
        get(
            "/datasets",
            "Key values of the datasets matching key=value filters (key=[a,b] matches either; a value with * is a pattern ignoring ASCII case, e.g. name=*lux*), paged; total counts every match.",
            vec![
                param("limit", "query", false, "Datasets per page (default 100)", "100"),
                param("page", "query", false, "Page number from 0", "0"),
                param("<key>", "query", false, "Filter on a key's value, a list [a,b] or a * pattern", "dem"),
            ],
            json_ok("A page of datasets", json!({ "type": "object" })),
        ),
    );
    paths.insert(
        "/metadata/{keys}".into(),
        get(
            "/metadata",
            "Bounds, footprint, valid percentage, range, mean, stdev and percentiles of band 1 (Terracotta's fields), plus band_count, dtype and per-band statistics.",
            vec![keys_param()],
            json_ok("Metadata", json!({ "$ref": "#/components/schemas/Metadata" })),
        ),
    );
    paths.insert(
        "/metadata".into(),
        json!({ "post": {
            "summary": "/metadata (many)",
            "description": "Metadata of up to 100 datasets: body {\"keys\": [[v1, v2], ...]}; optional columns=[bounds,range] keeps only those fields.",
            "parameters": [param("columns", "query", false, "Fields to keep, as a list", "[bounds,range]")],
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object" } } } },
            "responses": json_ok("A list of metadata", json!({ "type": "array", "items": { "$ref": "#/components/schemas/Metadata" } })),
        }}),
    );
    paths.insert(
        "/singleband/{keys}/{z}/{x}/{y}.png".into(),
        get(
            "/singleband (tile)",
            "One band of a dataset, stretched and coloured. Also .jpg, .webp, and raw .npy (TiTiler layout) / .tif. Tiles outside the data are transparent.",
            singleband_params.clone(),
            image_responses("The tile"),
        ),
    );
    paths.insert(
        "/singleband/{keys}/preview.png".into(),
        get(
            "/singleband (preview)",
            "The whole dataset in one image (tile_size=[w,h], default 256 px on the long side).",
            singleband_params
                .into_iter()
                .filter(|p| !matches!(p["name"].as_str(), Some("z" | "x" | "y")))
                .collect(),
            image_responses("The preview"),
        ),
    );
    paths.insert(
        "/rgb/{keys}/{z}/{x}/{y}.png".into(),
        get(
            "/rgb (tile)",
            "Three datasets (the last key given by r, g, b) or three bands of one dataset, each stretched, as an RGB image.",
            rgb_params,
            image_responses("The tile"),
        ),
    );
    paths.insert(
        "/compute/{keys}/{z}/{x}/{y}.png".into(),
        get(
            "/compute (tile)",
            "A band-math expression over up to five datasets or bands, stretched and coloured.",
            compute_params,
            image_responses("The tile"),
        ),
    );
    paths.insert(
        "/singleband/{keys}/tilejson.json".into(),
        get(
            "TileJSON",
            "TileJSON 3.0.0 for the singleband route with the same query (also /rgb/.../tilejson.json and /compute/.../tilejson.json).",
            vec![keys_param()],
            json_ok("TileJSON", json!({ "type": "object" })),
        ),
    );
    paths.insert(
        "/point/{keys}".into(),
        get(
            "Values at a point",
            "The values of every band at lon/lat (WGS84); null where the dataset has no data.",
            vec![
                keys_param(),
                param("lon", "query", true, "Longitude", "6.1"),
                param("lat", "query", true, "Latitude", "49.6"),
            ],
            json_ok("Values", json!({ "type": "object" })),
        ),
    );
    paths.insert(
        "/colormap".into(),
        get(
            "/colormap",
            "num_values values evenly spaced over stretch_range with the colour each gets.",
            vec![
                param("stretch_range", "query", true, "Two numbers", "[0,1]"),
                param(
                    "colormap",
                    "query",
                    false,
                    "Colormap name (default: greys)",
                    "viridis",
                ),
                param(
                    "num_values",
                    "query",
                    false,
                    "Number of values (default 255)",
                    "255",
                ),
            ],
            json_ok("The colormap", json!({ "type": "object" })),
        ),
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Kiln",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A Terracotta-compatible raster tile API, served by Kiln.",
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
                "metadata": { "type": "object" },
                "band_count": { "type": "integer" },
                "dtype": { "type": "string" },
                "bands": { "type": "array" },
            }},
        }},
    })
}

/// A page that lists the API from `/swagger.json`, with no external assets.
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
<h1>Kiln API</h1><p>The machine-readable description is at <a href="swagger.json">/swagger.json</a> (OpenAPI 3).</p>
<div id="api">Loading…</div>
<script>
const esc = s => String(s ?? '').replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
fetch('swagger.json').then(r => r.json()).then(spec => {
  let html = '';
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      html += `<h2><span class="m ${method}">${method.toUpperCase()}</span>${esc(path)}</h2><p>${esc(op.description)}</p>`;
      if (op.parameters && op.parameters.length) {
        html += '<table><tr><th>parameter</th><th>in</th><th>required</th><th>description</th><th>example</th></tr>';
        for (const p of op.parameters) {
          html += `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${p.required ? 'yes' : ''}</td><td>${esc(p.description)}</td><td><code>${esc(p.example)}</code></td></tr>`;
        }
        html += '</table>';
      }
    }
  }
  document.getElementById('api').innerHTML = html;
}).catch(e => { document.getElementById('api').textContent = 'Cannot load swagger.json: ' + e; });
</script></body></html>
"#;
