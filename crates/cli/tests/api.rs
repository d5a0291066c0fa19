//! The HTTP API in process: `kiln_server::router` (what `kiln serve` runs, with its default
//! settings) driven with `tower::ServiceExt::oneshot`, over a catalog made by the real
//! `kiln ingest` from symbolic links to the shared data (the Luxembourg DEM, ETOPO5, the three
//! Landsat 8 224077 bands as an RGB triple, a 6-band Landsat 7 file, and one dataset whose
//! file is removed after ingest; `common::fixture`).
//!
//! Every endpoint is checked: status codes, JSON bodies against `../shared/data/catalog.json`,
//! error messages naming the parameter, HTTP caching and CORS headers, and pixels: `.npy`
//! tiles byte-identical to `kiln tile` and equal to the rio-tiler references where those
//! exist, PNG tiles equal to Terracotta's stretch and the colormap applied to the `.npy`
//! values, RGB and band-math tiles likewise. What needs a real process (startup and
//! configuration, `-r`, concurrency and saturation, the log, the viewer) is in `serve.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::Arc;

use axum::http::Method;
use common::fixture::{
    catalog_entry, cli_tile, data, datasets, f64s, fixture, have_references, kiln, ref_dir,
    reference, stderr, temp_file, ETOPO, LUX, MS,
};
use common::http::{runtime, url, Api, InProcess};
use common::npy::{parse_npy, NpyArray};
use common::pixels::{
    check_hull, check_singleband_png, colormap_table, decode_png, png_rgba, to_byte, to_index,
    valid_count,
};
use kiln_server::ServerConfig;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// 1. JSON endpoints
// ---------------------------------------------------------------------------------------------

/// `/health` counts block-cache and tile-cache lookups: a first tile misses both, the same
/// tile again is a tile-cache hit that reads no block, and the same pixels as `.npy` (another
/// tile, same source blocks) hit the block cache.
#[test]
fn health_counts_cache_hits_and_misses() {
    let s = InProcess::catalog();
    let counters = |s: &InProcess| {
        let h = s.json("/health");
        let n = |p: &str| h.pointer(p).and_then(Value::as_u64).unwrap();
        (
            n("/cache/blocks/hits"),
            n("/cache/blocks/misses"),
            n("/cache/tiles/hits"),
            n("/cache/tiles/misses"),
        )
    };
    assert_eq!(counters(&s), (0, 0, 0, 0));
    let tile = "/singleband/lux/1/8/132/86.png?stretch_range=[150,400]";
    s.bytes(tile);
    let (bh, bm, th, tm) = counters(&s);
    assert_eq!((bh, th, tm), (0, 0, 1));
    assert!(bm > 0, "the first tile reads blocks");
    s.bytes(tile);
    assert_eq!(
        counters(&s),
        (0, bm, 1, 1),
        "the tile cache answers, no block is read"
    );
    s.bytes("/singleband/lux/1/8/132/86.npy");
    assert_eq!(
        counters(&s),
        (bm, bm, 1, 2),
        "same blocks, now from the block cache"
    );
    // `entries` and `bytes` are moka's estimates, updated lazily: only their presence counts.
    let h = s.json("/health");
    assert!(h
        .pointer("/cache/blocks/entries")
        .is_some_and(Value::is_u64));
    assert!(h.pointer("/cache/blocks/bytes").is_some_and(Value::is_u64));
}

#[test]
fn keys_and_datasets_list_filter_and_page() {
    let s = InProcess::catalog();
    assert_eq!(s.json("/health")["status"], "ok");
    assert_eq!(
        s.json("/keys"),
        json!({ "keys": [{ "key": "name" }, { "key": "band" }] })
    );

    let all = s.json("/datasets");
    let mut got: Vec<(String, String)> = all["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d.as_object().unwrap().len(), 2, "{d}");
            (
                d["name"].as_str().unwrap().to_string(),
                d["band"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut want: Vec<(String, String)> = datasets()
        .into_iter()
        .map(|(n, b, _)| (n.to_string(), b.to_string()))
        .chain([("gone".to_string(), "1".to_string())])
        .collect();
    want.sort();
    let listed_in_order = got.clone();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(listed_in_order, want, "datasets are listed in key order");
    assert_eq!(all["page"], 0);
    assert_eq!(all["limit"], 100);

    // Page 1 of pages of 2 is the third and fourth dataset.
    let p = s.json("/datasets?limit=2&page=1");
    assert_eq!(
        p["datasets"],
        json!([
            { "name": want[2].0, "band": want[2].1 },
            { "name": want[3].0, "band": want[3].1 },
        ])
    );
    assert_eq!(
        (p["limit"].as_u64(), p["page"].as_u64()),
        (Some(2), Some(1))
    );
    let beyond = s.json("/datasets?limit=2&page=10");
    assert_eq!(beyond["datasets"], json!([]));

    assert_eq!(
        s.json("/datasets?name=l8")["datasets"],
        json!([
            { "name": "l8", "band": "b2" },
            { "name": "l8", "band": "b3" },
            { "name": "l8", "band": "b4" },
        ])
    );
    assert_eq!(
        s.json(&url("/datasets", &[("name", "[lux,etopo]")]))["datasets"],
        json!([{ "name": "etopo", "band": "1" }, { "name": "lux", "band": "1" }])
    );
    assert_eq!(
        s.json(&url("/datasets", &[("name", "l8"), ("band", "[b4,b2]")]))["datasets"],
        json!([{ "name": "l8", "band": "b2" }, { "name": "l8", "band": "b4" }])
    );
    assert_eq!(s.json("/datasets?name=nope")["datasets"], json!([]));
    assert_eq!(all["total"].as_u64(), Some(want.len() as u64));
    assert_eq!(p["total"].as_u64(), Some(want.len() as u64));

    // Kiln's extension: `*` patterns ignoring ASCII case; `total` counts the filtered set.
    let bands = s.json(&url("/datasets", &[("band", "B*"), ("limit", "2")]));
    assert_eq!(
        bands["datasets"],
        json!([{ "name": "l8", "band": "b2" }, { "name": "l8", "band": "b3" }])
    );
    assert_eq!(bands["total"].as_u64(), Some(3));
    assert_eq!(
        s.json(&url("/datasets", &[("name", "[*U*,etopo]")]))["datasets"],
        json!([{ "name": "etopo", "band": "1" }, { "name": "lux", "band": "1" }])
    );
    assert_eq!(
        s.json(&url("/datasets", &[("name", "l_")]))["total"].as_u64(),
        Some(0)
    );

    s.error("/datasets?colour=red", 400, &["colour", "name", "band"]);
    s.error("/datasets?limit=0", 400, &["limit"]);
    s.error("/datasets?limit=abc", 400, &["limit", "abc"]);
    s.error("/datasets?page=-1", 400, &["page"]);
}

#[test]
fn metadata_agrees_with_the_data_catalog() {
    let s = InProcess::catalog();
    for (name, band, file) in datasets() {
        let m = s.json(&format!("/metadata/{name}/{band}"));
        let c = catalog_entry(&file);
        assert_eq!(m["keys"], json!({ "name": name, "band": band }), "{file}");
        assert_eq!(m["band_count"], c["bands"], "{file}");
        let bands = m["bands"].as_array().unwrap();
        assert_eq!(bands.len() as u64, c["bands"].as_u64().unwrap(), "{file}");
        let want_dtype = c["dtype"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .replace("byte", "uint8");
        assert_eq!(m["dtype"], want_dtype.as_str(), "{file}");

        // catalog.json's range spans all bands; the first band's range is the top-level one.
        let (lo, hi) = bands.iter().fold((f64::MAX, f64::MIN), |(lo, hi), b| {
            let r = f64s(&b["range"]);
            (lo.min(r[0]), hi.max(r[1]))
        });
        assert_eq!(
            (lo, hi),
            (
                c["value_min"].as_f64().unwrap(),
                c["value_max"].as_f64().unwrap()
            ),
            "{file}: value range"
        );
        assert_eq!(m["range"], bands[0]["range"], "{file}");
        assert_eq!(m["mean"], bands[0]["mean"], "{file}");
        let (mean, stdev) = (m["mean"].as_f64().unwrap(), m["stdev"].as_f64().unwrap());
        assert!(
            lo <= mean && mean <= hi && stdev > 0.0,
            "{file}: {mean} {stdev}"
        );
        let pct = f64s(&m["percentiles"]);
        assert_eq!(pct.len(), 99, "{file}");
        assert!(
            pct.windows(2).all(|w| w[0] <= w[1]),
            "{file}: percentiles sorted"
        );
        let r0 = f64s(&m["range"]);
        assert!(r0[0] <= pct[0] && pct[98] <= r0[1], "{file}");

        // bounds: catalog.json rounds to 4 decimals.
        let bounds = f64s(&m["bounds"]);
        let bbox = f64s(&c["wgs84_bbox"]);
        for (got, want) in bounds.iter().zip(&bbox) {
            assert!(
                (got - want).abs() < 1e-4,
                "{file}: bounds {bounds:?} vs {bbox:?}"
            );
        }
        let valid = m["valid_percentage"].as_f64().unwrap();
        assert!(valid > 0.0 && valid <= 100.0, "{file}: {valid}");
        check_hull(&m["convex_hull"], &bounds, &file, 1e-9);
        assert!(m.get("metadata").is_some(), "{file}");
    }
    // Exact numbers for the DEM: a geographic grid, so its bounds are the grid's corners.
    let lux = s.json("/metadata/lux/1");
    assert_eq!(lux["range"], json!([141.0, 547.0]));
    let c = catalog_entry(LUX);
    let gt = f64s(&c["geotransform"]);
    let want = [gt[0], gt[3] + 90.0 * gt[5], gt[0] + 95.0 * gt[1], gt[3]];
    for (got, want) in f64s(&lux["bounds"]).iter().zip(want) {
        assert!((got - want).abs() < 1e-6, "lux bounds {got} vs {want}");
    }
    assert_eq!(
        lux["valid_percentage"].as_f64().map(|v| v < 100.0),
        Some(true),
        "lux has nodata"
    );

    // Errors.
    s.error("/metadata/nope/1", 404, &["not found", "nope"]);
    s.error("/metadata/lux", 400, &["keys", "name/band"]);
    s.error("/metadata/lux/1/extra", 400, &["keys"]);
}

#[test]
fn post_metadata_keeps_order_and_selects_columns() {
    let s = InProcess::catalog();
    let r = s.post(
        "/metadata",
        &json!({ "keys": [["lux", "1"], ["l8", "b4"], ["etopo", "1"]] }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    for (m, path) in list.iter().zip(["lux/1", "l8/b4", "etopo/1"]) {
        assert_eq!(m, &s.json(&format!("/metadata/{path}")), "{path}");
    }

    let r = s.post(
        &url("/metadata", &[("columns", "[bounds,range]")]),
        &json!({ "keys": [["etopo", "1"], ["lux", "1"]] }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json();
    let single = s.json("/metadata/lux/1");
    let lux = &list[1];
    let mut cols: Vec<&String> = lux.as_object().unwrap().keys().collect();
    cols.sort();
    assert_eq!(cols, vec!["bounds", "keys", "range"]);
    assert_eq!(lux["range"], single["range"]);
    assert_eq!(lux["bounds"], single["bounds"]);
    assert_eq!(list[0]["keys"], json!({ "name": "etopo", "band": "1" }));

    let bad = |target: &str, body: Value, status: u16, needle: &str| {
        let r = s.post(target, &body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        let msg = r.json()["message"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{body}: {msg}");
    };
    bad(
        "/metadata",
        json!({ "keys": [["lux", "1"], ["nope", "1"]] }),
        404,
        "nope",
    );
    bad("/metadata", json!({ "keys": [["lux"]] }), 400, "keys");
    bad("/metadata", json!({ "datasets": [] }), 400, "keys");
    bad(
        &url("/metadata", &[("columns", "[bounds,colour]")]),
        json!({ "keys": [["lux", "1"]] }),
        400,
        "colour",
    );
    let r = s.request(Method::POST, "/metadata", &[], b"not json".to_vec());
    assert_eq!(r.status, 400, "{}", r.text());
}

// ---------------------------------------------------------------------------------------------
// 2. Pixels
// ---------------------------------------------------------------------------------------------

/// (keys, file, band, z, x, y, tile size, resampling)
type NpyCase = (
    &'static str,
    &'static str,
    usize,
    u32,
    u32,
    u32,
    u32,
    &'static str,
);

/// Server `.npy` tiles are byte-identical to `kiln tile` and equal to the rio-tiler
/// references (nearest, mask included) where those exist.
#[test]
fn npy_tiles_equal_kiln_tile_and_references() {
    let s = InProcess::catalog();
    let cases: &[NpyCase] = &[
        ("lux/1", LUX, 1, 8, 132, 86, 256, "nearest"),
        ("lux/1", LUX, 1, 9, 264, 173, 256, "bilinear"),
        ("etopo/1", ETOPO, 1, 2, 3, 3, 256, "nearest"),
        ("etopo/1", ETOPO, 1, 3, 0, 4, 512, "nearest"),
        (
            "l8/b2",
            "img_l8_224077_utm21n_b2_u16.tif",
            1,
            12,
            1425,
            2344,
            256,
            "nearest",
        ),
        (
            "l8/b2",
            "img_l8_224077_utm21n_b2_u16.tif",
            1,
            11,
            710,
            1172,
            512,
            "nearest",
        ),
        (
            "l8/b3",
            "img_l8_224077_utm21n_b3_u16.tif",
            1,
            11,
            710,
            1171,
            256,
            "cubic",
        ),
        ("ms/all", MS, 1, 13, 3302, 4278, 256, "nearest"),
        ("ms/all", MS, 4, 13, 3302, 4278, 256, "nearest"),
        ("ms/all", MS, 6, 13, 3302, 4278, 256, "nearest"),
    ];
    let mut compared_with_reference = 0;
    for &(keys, file, band, z, x, y, size, resampling) in cases {
        let target = url(
            &format!("/singleband/{keys}/{z}/{x}/{y}.npy"),
            &[
                ("band", &band.to_string()),
                ("tile_size", &format!("[{size},{size}]")),
                ("resampling", resampling),
            ],
        );
        let body = s.bytes(&target);
        let size_s = size.to_string();
        let band_s = band.to_string();
        let cli = cli_tile(
            file,
            z,
            x,
            y,
            &[
                "--tile-size",
                &size_s,
                "--resampling",
                resampling,
                "--bands",
                &band_s,
            ],
        );
        assert!(body == cli, "{target}: differs from kiln tile");
        let tile = parse_npy(&body).unwrap();
        let n = size as usize;
        assert_eq!(tile.shape, vec![2, n, n], "{target}");
        assert!(valid_count(&tile) > 0, "{target}: no valid pixel");
        if resampling != "nearest" {
            continue;
        }
        let Some(r) = reference(file, z, x, y, size) else {
            continue;
        };
        let rb = r.shape[0] - 1;
        assert_eq!(
            r.plane(band - 1).unwrap(),
            tile.plane(0).unwrap(),
            "{target}: values vs rio-tiler"
        );
        assert_eq!(
            r.plane(rb).unwrap(),
            tile.plane(1).unwrap(),
            "{target}: mask vs rio-tiler"
        );
        compared_with_reference += 1;
    }
    if have_references() {
        // Every nearest case but the DEM (not among the reference files) has a reference.
        assert_eq!(
            compared_with_reference,
            7,
            "reference tiles missing from {}",
            ref_dir().display()
        );
    } else {
        eprintln!(
            "note: no reference tiles in {} (run scripts/make_reference_tiles.sh); \
             compared with kiln tile only",
            ref_dir().display()
        );
    }
}

#[test]
fn singleband_png_is_the_stretch_and_colormap_of_the_values() {
    let s = InProcess::catalog();
    let viridis = colormap_table(&s, "viridis");
    assert_eq!(viridis[0], [68, 1, 84, 255], "viridis starts dark purple");
    assert_eq!(viridis[254], [253, 231, 36, 255], "and ends yellow");
    let terrain = colormap_table(&s, "terrain");

    let base = "/singleband/lux/1/8/132/86";
    let tile = s.npy(&format!("{base}.npy"));
    let valid = valid_count(&tile);
    assert!(
        valid > 1000 && valid < 256 * 256,
        "lux tile has data and nodata: {valid}"
    );

    // Numbers + colormap.
    let png = s.bytes(&url(
        &format!("{base}.png"),
        &[("stretch_range", "[200,500]"), ("colormap", "viridis")],
    ));
    check_singleband_png(&png, &tile, 200.0, 500.0, Some(&viridis));
    // The same through the RGBA view of a PNG decoder.
    let (_, _, rgba) = png_rgba(&png);
    let (values, mask) = (tile.plane(0).unwrap(), tile.plane(1).unwrap());
    for i in 0..rgba.len() {
        let want = if mask[i] > 0.0 {
            viridis[usize::from(to_index(values[i], 200.0, 500.0)) - 1]
        } else {
            [rgba[i][0], rgba[i][1], rgba[i][2], 0]
        };
        assert_eq!(rgba[i], want, "pixel {i}");
    }

    // No colormap: greyscale, grey 0 transparent.
    let grey = s.bytes(&url(
        &format!("{base}.png"),
        &[("stretch_range", "[150,400]")],
    ));
    check_singleband_png(&grey, &tile, 150.0, 400.0, None);

    // No stretch_range: the dataset's range from /metadata.
    let m = s.json("/metadata/lux/1");
    let range = f64s(&m["range"]);
    let default = s.bytes(&url(&format!("{base}.png"), &[("colormap", "terrain")]));
    check_singleband_png(&default, &tile, range[0], range[1], Some(&terrain));
    // null ends mean the same.
    let nulls = s.bytes(&url(
        &format!("{base}.png"),
        &[("stretch_range", "[null,null]"), ("colormap", "terrain")],
    ));
    assert_eq!(nulls, default);

    // Percentiles: p2 and p98 of /metadata.
    let pct = f64s(&m["percentiles"]);
    let (p2, p98) = (pct[1], pct[97]);
    let by_pct = s.bytes(&url(
        &format!("{base}.png"),
        &[
            ("stretch_range", "[\"p2\",\"p98\"]"),
            ("colormap", "viridis"),
        ],
    ));
    check_singleband_png(&by_pct, &tile, p2, p98, Some(&viridis));
    let by_numbers = s.bytes(&url(
        &format!("{base}.png"),
        &[
            ("stretch_range", &format!("[{p2},{p98}]")),
            ("colormap", "viridis"),
        ],
    ));
    assert_eq!(by_pct, by_numbers);
    // The unquoted form too.
    let unquoted = s.bytes(&url(
        &format!("{base}.png"),
        &[("stretch_range", "[p2,p98]"), ("colormap", "viridis")],
    ));
    assert_eq!(unquoted, by_pct);

    // A 512 tile of a multi-band dataset's band 4, with a colormap.
    let ms = "/singleband/ms/all/12/1651/2139";
    let q = [("band", "4"), ("tile_size", "[512,512]")];
    let tile = s.npy(&url(&format!("{ms}.npy"), &q));
    assert_eq!(tile.shape, vec![2, 512, 512]);
    let png = s.bytes(&url(
        &format!("{ms}.png"),
        &[
            q[0],
            q[1],
            ("stretch_range", "[10,120]"),
            ("colormap", "viridis"),
        ],
    ));
    check_singleband_png(&png, &tile, 10.0, 120.0, Some(&viridis));
}

/// Terracotta's uncoloured tile is greyscale with grey level = index, which is also what
/// `/colormap` without a colormap reports.
#[test]
fn uncoloured_tiles_are_grey_level_equal_to_index() {
    let s = InProcess::catalog();
    let legend = s.json("/colormap?stretch_range=[0,254]&num_values=255");
    let png = s.bytes("/singleband/lux/1/8/132/86.png?stretch_range=[150,400]");
    let p = decode_png(&png);
    let (_, _, rgba) = png_rgba(&png);
    for (i, px) in rgba.iter().enumerate() {
        let idx = usize::from(p.data[i]);
        if idx == 0 {
            assert_eq!(px[3], 0, "pixel {i}");
        } else {
            assert_eq!(
                px,
                &[idx as u8, idx as u8, idx as u8, 255],
                "pixel {i} index {idx}"
            );
            assert_eq!(legend["colormap"][idx - 1]["rgba"], json!(px), "pixel {i}");
        }
    }
}

/// The footprint (`convex_hull`) is traced on a decimated mask (by 2 for the 2006 x 1515
/// Landsat band), whose last half-empty cell row would reach 30 m past the raster; vertices
/// are clamped to the raster and the dataset's bounds.
#[test]
fn footprints_stay_inside_the_bounds() {
    let s = InProcess::catalog();
    for (name, band, file) in datasets() {
        let m = s.json(&format!("/metadata/{name}/{band}"));
        check_hull(&m["convex_hull"], &f64s(&m["bounds"]), &file, 1e-9);
    }
}

#[test]
fn explicit_colormap_colours_listed_values_only() {
    let s = InProcess::catalog();
    let base = "/singleband/lux/1/8/132/86";
    let tile = s.npy(&format!("{base}.npy"));
    let (values, mask) = (tile.plane(0).unwrap(), tile.plane(1).unwrap());
    // Two values present in the tile.
    let mut present: Vec<i64> = values
        .iter()
        .zip(mask)
        .filter(|(_, &m)| m > 0.0)
        .map(|(&v, _)| v as i64)
        .collect();
    present.sort_unstable();
    present.dedup();
    let (a, b) = (present[0], present[present.len() / 2]);
    let map = format!(r##"{{"{a}": "#ff0000", "{b}": [0, 0, 255, 128]}}"##);
    let png = s.bytes(&url(
        &format!("{base}.png"),
        &[("colormap", "explicit"), ("explicit_color_map", &map)],
    ));
    let (_, _, rgba) = png_rgba(&png);
    let mut coloured = 0;
    for i in 0..rgba.len() {
        let want = if mask[i] > 0.0 && values[i] == a as f64 {
            Some([255, 0, 0, 255])
        } else if mask[i] > 0.0 && values[i] == b as f64 {
            Some([0, 0, 255, 128])
        } else {
            None
        };
        match want {
            Some(w) => {
                coloured += 1;
                assert_eq!(rgba[i], w, "pixel {i} value {}", values[i]);
            }
            None => assert_eq!(rgba[i][3], 0, "pixel {i} value {} is not listed", values[i]),
        }
    }
    assert!(coloured > 0);
}

#[test]
fn rgb_tiles_stretch_each_channel() {
    let s = InProcess::catalog();
    // Three datasets by the last key; a tile at the scene's edge (masked pixels → alpha 0).
    let (z, x, y) = (11, 710, 1171);
    let bands = ["b4", "b3", "b2"];
    let tiles: Vec<NpyArray> = bands
        .iter()
        .map(|b| s.npy(&format!("/singleband/l8/{b}/{z}/{x}/{y}.npy")))
        .collect();
    let b3 = s.json("/metadata/l8/b3");
    let g_default = f64s(&b3["range"]);
    let ranges = [
        (500.0, 9000.0),
        (g_default[0], g_default[1]),
        (300.0, 7000.0),
    ];
    let png = s.bytes(&url(
        &format!("/rgb/l8/{z}/{x}/{y}.png"),
        &[
            ("r", "b4"),
            ("g", "b3"),
            ("b", "b2"),
            ("r_range", "[500,9000]"),
            ("b_range", "[300,7000]"),
        ],
    ));
    let (w, h, rgba) = png_rgba(&png);
    assert_eq!((w, h), (256, 256));
    let mut transparent = 0;
    for (i, px) in rgba.iter().enumerate() {
        let valid = tiles.iter().all(|t| t.plane(1).unwrap()[i] > 0.0);
        if !valid {
            transparent += 1;
            assert_eq!(px[3], 0, "pixel {i}");
            continue;
        }
        let want: Vec<u8> = tiles
            .iter()
            .zip(ranges)
            .map(|(t, (lo, hi))| to_byte(t.plane(0).unwrap()[i], lo, hi))
            .collect();
        assert_eq!(&px[..3], &want[..], "pixel {i}");
        assert_eq!(px[3], 255, "pixel {i}");
    }
    assert!(transparent > 0 && transparent < w * h, "{transparent}");

    // Bands of one dataset: r=3&g=2&b=1, against `kiln tile` of all bands.
    let (z, x, y) = (13, 3302, 4278);
    let all = parse_npy(&cli_tile(MS, z, x, y, &[])).unwrap();
    assert_eq!(all.shape, vec![7, 256, 256]);
    let png = s.bytes(&url(
        &format!("/rgb/ms/all/{z}/{x}/{y}.png"),
        &[
            ("r", "3"),
            ("g", "2"),
            ("b", "1"),
            ("r_range", "[10,100]"),
            ("g_range", "[20,110]"),
            ("b_range", "[30,140]"),
        ],
    ));
    let (w, h, rgba) = png_rgba(&png);
    let ranges = [(10.0, 100.0), (20.0, 110.0), (30.0, 140.0)];
    let mask = all.plane(6).unwrap();
    for i in 0..w * h {
        if mask[i] == 0.0 {
            assert_eq!(rgba[i][3], 0, "pixel {i}");
            continue;
        }
        for (c, (band, (lo, hi))) in [2usize, 1, 0].into_iter().zip(ranges).enumerate() {
            let want = to_byte(all.plane(band).unwrap()[i], lo, hi);
            assert_eq!(rgba[i][c], want, "pixel {i} channel {c}");
        }
        assert_eq!(rgba[i][3], 255);
    }

    // Errors.
    s.error(
        &format!("/rgb/l8/{z}/{x}/{y}.png?r=b4&g=b3"),
        400,
        &["b", "missing"],
    );
    s.error(
        &format!("/rgb/l8/{z}/{x}/{y}.png?r=b4&g=b3&b=b9"),
        404,
        &["b9"],
    );
    s.error(
        "/rgb/ms/all/13/3302/4278.png?r=3&g=2&b=9",
        400,
        &["b", "9", "6 band"],
    );
    s.error("/rgb/13/3302/4278.png?r=3&g=2&b=1", 400, &["keys"]);
}

#[test]
fn compute_evaluates_the_expression_per_pixel() {
    let s = InProcess::catalog();
    let (z, x, y) = (11, 710, 1171);
    let nir = s.npy(&format!("/singleband/l8/b4/{z}/{x}/{y}.npy"));
    let red = s.npy(&format!("/singleband/l8/b3/{z}/{x}/{y}.npy"));
    let expr = "(v1-v2)/(v1+v2)";
    let expected = |i: usize| -> Option<f64> {
        if nir.plane(1).unwrap()[i] == 0.0 || red.plane(1).unwrap()[i] == 0.0 {
            return None;
        }
        let (a, b) = (nir.plane(0).unwrap()[i], red.plane(0).unwrap()[i]);
        let v = (a - b) / (a + b);
        v.is_finite().then_some(v)
    };
    let q = [
        ("expression", expr),
        ("v1", "b4"),
        ("v2", "b3"),
        ("stretch_range", "[-0.2,0.4]"),
        ("colormap", "viridis"),
    ];
    let png = s.bytes(&url(&format!("/compute/l8/{z}/{x}/{y}.png"), &q));
    let p = decode_png(&png);
    assert_eq!(p.color, png::ColorType::Indexed);
    let mut valid = 0;
    for i in 0..256 * 256 {
        match expected(i) {
            None => assert_eq!(p.data[i], 0, "pixel {i} is masked"),
            Some(v) => {
                valid += 1;
                let want = i32::from(to_index(v, -0.2, 0.4));
                let got = i32::from(p.data[i]);
                assert!(
                    (want - got).abs() <= 1,
                    "pixel {i}: {v} → {want}, got {got}"
                );
            }
        }
    }
    assert!(valid > 1000, "{valid}");

    // The values themselves as .npy, which need no display parameters: the same bytes
    // without stretch_range and colormap.
    let values = s.npy(&url(&format!("/compute/l8/{z}/{x}/{y}.npy"), &q));
    let raw_q: Vec<(&str, &str)> = q
        .iter()
        .copied()
        .filter(|(k, _)| *k != "stretch_range" && *k != "colormap")
        .collect();
    let bare = s.bytes(&url(&format!("/compute/l8/{z}/{x}/{y}.npy"), &raw_q));
    assert_eq!(
        bare,
        s.bytes(&url(&format!("/compute/l8/{z}/{x}/{y}.npy"), &q)),
        "a raw compute tile depends on display parameters"
    );
    let plane = values.plane(0).unwrap();
    let vmask = values.plane(values.shape[0] - 1).unwrap();
    for i in 0..256 * 256 {
        match expected(i) {
            None => assert_eq!(vmask[i], 0.0, "pixel {i}"),
            Some(v) => {
                assert!(vmask[i] > 0.0, "pixel {i}");
                assert!(
                    (plane[i] - v).abs() <= 1e-6 * v.abs().max(1.0),
                    "pixel {i}: {} vs {v}",
                    plane[i]
                );
            }
        }
    }

    // Bands of one dataset as variables.
    let (z, x, y) = (13, 3302, 4278);
    let all = parse_npy(&cli_tile(MS, z, x, y, &[])).unwrap();
    let png = s.bytes(&url(
        &format!("/compute/ms/all/{z}/{x}/{y}.png"),
        &[
            ("expression", "v1-v2"),
            ("v1", "4"),
            ("v2", "3"),
            ("stretch_range", "[-50,100]"),
        ],
    ));
    let p = decode_png(&png);
    for i in 0..256 * 256 {
        if all.plane(6).unwrap()[i] == 0.0 {
            assert_eq!(p.data[i], 0);
            continue;
        }
        let v = all.plane(3).unwrap()[i] - all.plane(2).unwrap()[i];
        let want = i32::from(to_index(v, -50.0, 100.0));
        assert!((want - i32::from(p.data[i])).abs() <= 1, "pixel {i}");
    }

    // Errors name the parameter.
    let base = format!("/compute/l8/{z}/{x}/{y}.png");
    s.error(
        &url(
            &base,
            &[
                ("expression", "(v1-v2"),
                ("v1", "b4"),
                ("v2", "b3"),
                ("stretch_range", "[0,1]"),
            ],
        ),
        400,
        &["expression"],
    );
    s.error(
        &url(
            &base,
            &[
                ("expression", "v1+"),
                ("v1", "b4"),
                ("stretch_range", "[0,1]"),
            ],
        ),
        400,
        &["expression"],
    );
    s.error(
        &url(
            &base,
            &[("expression", "v1-v2"), ("v1", "b4"), ("v2", "b3")],
        ),
        400,
        &["stretch_range"],
    );
    s.error(
        &url(&base, &[("v1", "b4"), ("stretch_range", "[0,1]")]),
        400,
        &["expression"],
    );
    s.error(
        &url(
            &base,
            &[
                ("expression", "v1-v2"),
                ("v1", "b4"),
                ("stretch_range", "[0,1]"),
            ],
        ),
        400,
        &["v2"],
    );
}

#[test]
fn tiles_outside_the_data_are_transparent_and_tif_tiles_open() {
    let s = InProcess::catalog();
    for target in [
        "/singleband/lux/1/8/0/0.png?colormap=viridis",
        "/singleband/lux/1/8/0/0.png",
        "/singleband/l8/b2/10/0/0.png?stretch_range=[0,1000]",
        "/rgb/l8/5/0/0.png?r=b4&g=b3&b=b2",
    ] {
        let (w, h, rgba) = png_rgba(&s.bytes(target));
        assert_eq!((w, h), (256, 256), "{target}");
        assert!(
            rgba.iter().all(|p| p[3] == 0),
            "{target}: not all transparent"
        );
    }
    // JPEG and WebP tiles.
    let jpg = s.get("/singleband/lux/1/8/132/86.jpg?colormap=viridis&quality=70");
    assert_eq!(jpg.status, 200, "{}", jpg.text());
    assert_eq!(jpg.header("content-type"), Some("image/jpeg"));
    assert!(jpg.body.starts_with(&[0xFF, 0xD8, 0xFF]), "JPEG magic");
    let webp = s.get("/rgb/l8/11/710/1171.webp?r=b4&g=b3&b=b2");
    assert_eq!(webp.status, 200, "{}", webp.text());
    assert_eq!(webp.header("content-type"), Some("image/webp"));
    assert!(
        webp.body.starts_with(b"RIFF") && &webp.body[8..12] == b"WEBP",
        "WebP magic"
    );

    let empty = s.npy("/singleband/lux/1/8/0/0.npy");
    assert_eq!(valid_count(&empty), 0);

    // Preview: the whole dataset, transparent where nodata.
    let (w, h, rgba) = png_rgba(&s.bytes("/singleband/lux/1/preview.png?colormap=viridis"));
    assert!(w == 256 || h == 256, "{w}x{h}");
    let opaque = rgba.iter().filter(|p| p[3] == 255).count();
    assert!(opaque > 0 && opaque < w * h, "{opaque}");
    let (w, h, _) = png_rgba(&s.bytes("/singleband/lux/1/preview.png?tile_size=[300,200]"));
    assert_eq!((w, h), (300, 200));

    // GeoTIFF tiles: a TIFF that `kiln info` (and gdalinfo, if installed) reads as one
    // 256 x 256 band in EPSG:3857.
    let r = s.get("/singleband/lux/1/8/132/86.tif");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/tiff"));
    assert!(
        r.body.starts_with(b"II*\0") || r.body.starts_with(b"MM\0*"),
        "TIFF magic"
    );
    let path = temp_file("tile.tif");
    std::fs::write(&path, &r.body).unwrap();
    let info = kiln(&["info", path.to_str().unwrap()]);
    assert!(info.status.success(), "kiln info: {}", stderr(&info));
    let info: Value = serde_json::from_slice(&info.stdout).unwrap();
    let text = info.to_string();
    assert!(text.contains("3857"), "{text}");
    assert_eq!(info["width"], 256, "{text}");
    assert_eq!(info["height"], 256, "{text}");
    if let Ok(o) = Command::new("gdalinfo").arg("-json").arg(&path).output() {
        if o.status.success() {
            let g: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(g["size"], json!([256, 256]));
            assert_eq!(g["bands"].as_array().unwrap().len(), 1);
        }
    }
}

#[test]
fn point_values_match_tile_pixels() {
    let s = InProcess::catalog();
    // The centre of source pixel (col 43, row 40) of the DEM.
    let gt = f64s(&catalog_entry(LUX)["geotransform"]);
    let lon = gt[0] + 43.5 * gt[1];
    let lat = gt[3] + 40.5 * gt[5];
    let p = s.json(&format!("/point/lux/1?lon={lon}&lat={lat}"));
    assert_eq!(p["keys"], json!({ "name": "lux", "band": "1" }));
    let values = p["values"].as_array().unwrap();
    assert_eq!(values.len(), 1);
    let value = values[0].as_f64().unwrap();

    // The z10 tile pixel containing the point (a tile pixel is 1/6 of a source pixel, and
    // the point is half a source pixel from any edge, so both sample the same source pixel).
    let z = 10;
    let world = 256.0 * f64::from(1u32 << z);
    let gx = (lon + 180.0) / 360.0 * world;
    let gy = (1.0 - lat.to_radians().tan().asinh() / std::f64::consts::PI) / 2.0 * world;
    let (tx, ty) = ((gx / 256.0) as u32, (gy / 256.0) as u32);
    let (px, py) = (gx as usize % 256, gy as usize % 256);
    let tile = s.npy(&format!("/singleband/lux/1/{z}/{tx}/{ty}.npy"));
    let i = py * 256 + px;
    assert!(tile.plane(1).unwrap()[i] > 0.0);
    assert_eq!(value, tile.plane(0).unwrap()[i]);
    let r = f64s(&s.json("/metadata/lux/1")["range"]);
    assert!(r[0] <= value && value <= r[1]);

    // Outside the data: null.
    assert_eq!(s.json("/point/lux/1?lon=0&lat=0")["values"], json!([null]));
    // Multi-band: one value per band.
    let ms = s.json("/point/ms/all?lon=-34.87&lat=-8.0");
    let vals = ms["values"].as_array().unwrap();
    assert_eq!(vals.len(), 6);
    assert!(vals.iter().all(Value::is_number), "{ms}");

    s.error("/point/lux/1?lon=200&lat=0", 400, &["lon"]);
    s.error("/point/lux/1?lon=6", 400, &["lat", "missing"]);
    s.error("/point/lux/1?lon=6&lat=abc", 400, &["lat"]);
    s.error("/point/nope/1?lon=6&lat=49", 404, &["nope"]);
}

// ---------------------------------------------------------------------------------------------
// 3. HTTP semantics and errors
// ---------------------------------------------------------------------------------------------

#[test]
fn tiles_carry_caching_headers_and_honour_if_none_match() {
    let s = InProcess::catalog();
    let target = "/singleband/etopo/1/2/1/1.png?colormap=terrain";
    let a = s.get(target);
    let b = s.get(target);
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(a.header("content-type"), Some("image/png"));
    let etag = a.header("etag").expect("ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(b.header("etag"), Some(etag.as_str()), "ETag is stable");
    assert_eq!(a.body, b.body);
    let cc = a.header("cache-control").expect("Cache-Control");
    assert!(cc.contains("max-age="), "{cc}");
    for r in [&a, &b] {
        let t = r.header("server-timing").expect("Server-Timing");
        assert!(t.contains("total;dur="), "{t}");
    }

    let c = s.get_with(target, &[("If-None-Match", &etag)]);
    assert_eq!(c.status, 304);
    assert!(c.body.is_empty());
    assert_eq!(c.header("etag"), Some(etag.as_str()));
    let d = s.get_with(target, &[("If-None-Match", "\"something-else\"")]);
    assert_eq!(d.status, 200);
    assert_eq!(d.body, a.body);

    // Different parameters, different tile and ETag.
    let e = s.get("/singleband/etopo/1/2/1/1.png?colormap=viridis");
    assert_ne!(e.header("etag"), Some(etag.as_str()));

    // CORS.
    let cors = s.get_with(target, &[("Origin", "http://example.com")]);
    assert_eq!(cors.header("access-control-allow-origin"), Some("*"));
    let expose = cors
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(expose.contains("etag"), "{expose}");
    let pre = s.get_with("/keys", &[("Origin", "http://example.com")]);
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));

    // A server with a restricted origin list answers only those origins.
    // (`viewer_is_served_from_the_binary` in serve.rs gives `kiln serve --cors-origins`.)
    let restricted = InProcess::open(
        &fixture().catalog,
        ServerConfig {
            cors_origins: vec!["http://good.example".into()],
            ..ServerConfig::default()
        },
    );
    let ok = restricted.get_with("/keys", &[("Origin", "http://good.example")]);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("http://good.example")
    );
    let no = restricted.get_with("/keys", &[("Origin", "http://evil.example")]);
    assert_eq!(no.header("access-control-allow-origin"), None);
}

#[test]
fn bad_requests_name_the_parameter() {
    let s = InProcess::catalog();
    let t = "/singleband/lux/1/8/132/86.png";
    s.error(
        &url(t, &[("stretch_range", "[1,2,3]")]),
        400,
        &["stretch_range"],
    );
    s.error(
        &url(t, &[("stretch_range", "[5,1]")]),
        400,
        &["stretch_range"],
    );
    s.error(
        &url(t, &[("stretch_range", "[a,b]")]),
        400,
        &["stretch_range"],
    );
    s.error(
        &url(t, &[("stretch_range", "0,1")]),
        400,
        &["stretch_range"],
    );
    s.error(
        &url(t, &[("stretch_range", "[p0,p98]")]),
        400,
        &["stretch_range"],
    );
    s.error(
        &url(t, &[("colormap", "nope")]),
        400,
        &["colormap", "nope", "viridis"],
    );
    s.error(
        &url(t, &[("colormap", "explicit")]),
        400,
        &["explicit_color_map"],
    );
    s.error(
        &url(
            t,
            &[("colormap", "explicit"), ("explicit_color_map", "{bad")],
        ),
        400,
        &["explicit_color_map"],
    );
    s.error(&url(t, &[("tile_size", "[100,100]")]), 400, &["tile_size"]);
    s.error(&url(t, &[("tile_size", "[256,512]")]), 400, &["tile_size"]);
    s.error(&url(t, &[("band", "2")]), 400, &["band", "1 band"]);
    s.error(&url(t, &[("band", "0")]), 400, &["band"]);
    s.error(&url(t, &[("resampling", "foo")]), 400, &["resampling"]);
    s.error(&url(t, &[("quality", "0")]), 400, &["quality"]);
    s.error("/singleband/lux/1/8/132/86.gif", 400, &["format"]);
    s.error("/singleband/lux/1/40/0/0.png", 400, &["zoom"]);
    s.error("/singleband/lux/1/1/5/0.png", 400, &["1/5/0"]);
    s.error("/singleband/lux/1/1/0/7.png", 400, &["1/0/7"]);
    s.error("/singleband/lux/1/a/0/0.png", 400, &["z"]);
    s.error("/singleband/lux/1/8/132/86.png?band=x", 400, &["band"]);
    s.error("/singleband/lux/8/132/86.png", 400, &["keys"]);
    s.error("/singleband/nope/1/8/132/86.png", 404, &["nope"]);
    s.error("/colormap?colormap=viridis", 400, &["stretch_range"]);
    s.error(
        "/colormap?stretch_range=[0,1]&colormap=nope",
        400,
        &["colormap"],
    );
    s.error(
        "/colormap?stretch_range=[0,1]&num_values=abc",
        400,
        &["num_values"],
    );
    s.error("/nothing/here", 404, &["endpoint"]);
    s.error("/singleband", 404, &[]);
}

#[test]
fn colormap_tilejson_openapi_and_apidoc() {
    let s = InProcess::catalog();
    let c = s.json("/colormap?stretch_range=[100,300]&colormap=viridis&num_values=5");
    let list = c["colormap"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    let values: Vec<f64> = list.iter().map(|e| e["value"].as_f64().unwrap()).collect();
    assert_eq!(values, vec![100.0, 150.0, 200.0, 250.0, 300.0]);
    let viridis = colormap_table(&s, "viridis");
    assert_eq!(list[0]["rgba"], json!(viridis[0]));
    assert_eq!(list[4]["rgba"], json!(viridis[254]));
    // Each colour is what a pixel of that value gets.
    for e in list {
        let idx = to_index(e["value"].as_f64().unwrap(), 100.0, 300.0);
        assert_eq!(e["rgba"], json!(viridis[usize::from(idx) - 1]));
    }
    // Without a colormap: the grey ramp.
    let g = s.json("/colormap?stretch_range=[0,1]&num_values=3");
    assert_eq!(
        g["colormap"],
        json!([
            { "value": 0.0, "rgba": [1, 1, 1, 255] },
            { "value": 0.5, "rgba": [128, 128, 128, 255] },
            { "value": 1.0, "rgba": [255, 255, 255, 255] },
        ])
    );
    assert_eq!(
        s.json("/colormap?stretch_range=[0,1]")["colormap"]
            .as_array()
            .unwrap()
            .len(),
        255
    );

    // TileJSON.
    let tj = s.json("/singleband/lux/1/tilejson.json?colormap=viridis&stretch_range=[200,500]");
    assert_eq!(tj["tilejson"], "3.0.0");
    let tiles = tj["tiles"].as_array().unwrap();
    assert_eq!(tiles.len(), 1);
    let t = tiles[0].as_str().unwrap();
    let prefix = format!("{}/singleband/lux/1/{{z}}/{{x}}/{{y}}.png?", s.origin());
    assert!(t.starts_with(&prefix), "{t}");
    assert!(t.contains("colormap=viridis"), "{t}");
    assert!(t.contains("stretch_range="), "{t}");
    let b = f64s(&tj["bounds"]);
    let mb = f64s(&s.json("/metadata/lux/1")["bounds"]);
    assert_eq!(b, mb);
    let (minz, maxz) = (
        tj["minzoom"].as_u64().unwrap(),
        tj["maxzoom"].as_u64().unwrap(),
    );
    assert!(minz <= maxz && (6..=12).contains(&maxz), "{minz} {maxz}");
    let center = f64s(&tj["center"]);
    assert!(b[0] <= center[0] && center[0] <= b[2] && b[1] <= center[1] && center[1] <= b[3]);
    // The tile URL it gives works.
    let first = t
        .replace(&s.origin(), "")
        .replace("{z}/{x}/{y}", "8/132/86");
    assert_eq!(s.get(&first).status, 200);
    // Behind a proxy: its scheme, host and path prefix, first values of each list.
    let behind = s.get_with(
        "/singleband/lux/1/tilejson.json",
        &[
            ("X-Forwarded-Proto", "https, http"),
            ("X-Forwarded-Host", "tiles.example.org"),
            ("X-Forwarded-Prefix", "/kiln/"),
        ],
    );
    assert_eq!(behind.status, 200);
    let t = behind.json()["tiles"][0].as_str().unwrap().to_string();
    assert_eq!(
        t, "https://tiles.example.org/kiln/singleband/lux/1/{z}/{x}/{y}.png",
        "{t}"
    );
    // Values that are not a plain scheme, host or path are ignored.
    let odd = s.get_with(
        "/singleband/lux/1/tilejson.json",
        &[
            ("X-Forwarded-Proto", "javascript"),
            ("X-Forwarded-Host", "evil.example/<x>"),
            ("X-Forwarded-Prefix", "//other.example"),
        ],
    );
    let t = odd.json()["tiles"][0].as_str().unwrap().to_string();
    assert!(
        t.starts_with(&format!("{}/singleband/lux/1/", s.origin())),
        "{t}"
    );
    let rgb = s.json("/rgb/l8/tilejson.json?r=b4&g=b3&b=b2");
    assert!(rgb["tiles"][0]
        .as_str()
        .unwrap()
        .contains("/rgb/l8/{z}/{x}/{y}.png?"));

    // OpenAPI.
    let spec = s.json("/swagger.json");
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        spec["openapi"]
    );
    let paths = spec["paths"].as_object().unwrap();
    for p in [
        "/health",
        "/keys",
        "/datasets",
        "/metadata",
        "/metadata/{keys}",
        "/singleband/{keys}/{z}/{x}/{y}.{format}",
        "/singleband/{keys}/preview.{format}",
        "/singleband/{keys}/tilejson.json",
        "/rgb/{keys}/{z}/{x}/{y}.{format}",
        "/compute/{keys}/{z}/{x}/{y}.{format}",
        "/colormap",
        "/point/{keys}",
    ] {
        assert!(paths.contains_key(p), "{p} missing from /swagger.json");
    }
    // /openapi.json is this catalog's: a path parameter per key (name, band), its values listed.
    let catalog_spec = s.json("/openapi.json");
    let paths = catalog_spec["paths"].as_object().unwrap();
    for p in [
        "/metadata/{name}/{band}",
        "/singleband/{name}/{band}/{z}/{x}/{y}.{format}",
        "/rgb/{name}/{z}/{x}/{y}.{format}",
        "/rgb/{name}/{band}/{z}/{x}/{y}.{format}",
        "/point/{name}/{band}",
    ] {
        assert!(paths.contains_key(p), "{p} missing from /openapi.json");
    }
    let name = &paths["/point/{name}/{band}"]["get"]["parameters"][0];
    assert_eq!(name["name"], "name");
    assert!(name["schema"]["enum"]
        .as_array()
        .unwrap()
        .contains(&json!("lux")));
    let doc = s.get("/apidoc");
    assert_eq!(doc.status, 200);
    assert!(doc.header("content-type").unwrap().starts_with("text/html"));
    assert!(doc.text().contains("swagger.json") || doc.text().contains("openapi.json"));
}

/// A source Kiln cannot render (a GeoTIFF without a CRS) is 501 with what it lacks, not a
/// gateway error; a preview larger than Kiln renders is 422.
#[test]
fn unsupported_source_is_501_and_too_large_is_422() {
    // What `kiln serve -r` makes of the file: a catalog row with its keys and no metadata.
    let dir = fixture().dir.join("nocrs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::fs::canonicalize(data("odd_dem_zurich_25m_i16_nocrs.tif")).unwrap();
    let location = kiln_catalog::CatalogLocation::Sqlite(dir.join("catalog.sqlite"));
    let s = runtime().block_on(async {
        let key = kiln_catalog::KeyDef::new("name", "").unwrap();
        let catalog = kiln_catalog::create(&location, &[key]).await.unwrap();
        catalog
            .insert(&["zurich".to_string()], file.to_str().unwrap(), None)
            .await
            .unwrap();
        InProcess::with_catalog(Arc::from(catalog), ServerConfig::default())
    });
    for target in ["/metadata/zurich", "/singleband/zurich/8/133/89.png"] {
        let message = s.error(
            target,
            501,
            &["does not support", "coordinate reference system"],
        );
        assert!(!message.contains('/'), "{message}");
    }
    let d = InProcess::catalog();
    d.error(
        "/singleband/lux/1/preview.png?tile_size=[4096,256]",
        422,
        &["tile_size", "too large"],
    );
}
