//! Dataset statistics and footprints against numpy/GDAL references made by
//! `scripts/make_stats_reference.py`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_core::crs::Transformer;
use kiln_core::Crs;
use kiln_engine::{
    compute_footprint, compute_statistics, Engine, EngineConfig, FootprintOptions, OpenSource,
    StatsOptions,
};
use serde_json::Value;

const FILES: [&str; 10] = [
    "dem_srtm30s_luxembourg_i16_lzw.tif",
    "global_etopo5_i16_cog.tif",
    "dem_3dep13_colorado_nad83_f32_cog.tif",
    "img_l8_224077_utm21n_b2_u16.tif",
    "odd_bahamas_rgba_alpha_deflate.tif",
    "odd_bahamas_rgb_jpeg_internal_mask_cog.tif",
    "odd_all_nodata_f32_albers.tif",
    "img_landsat_saltlake_4326_7band_cog.tif",
    "odd_le07_sza_utm21n_i32.tif",
    "dem_rhine_basin_30s_f32_nodata.tif",
];

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

fn reference(name: &str) -> Value {
    let stem = name.trim_end_matches(".tif");
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/ref-cache/stats")
        .join(format!("{stem}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `~/.cache/kiln-venv/bin/python scripts/make_stats_reference.py`",
            p.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

async fn open(engine: &Engine, name: &str) -> Arc<OpenSource> {
    engine.open_path(&data(name)).await.unwrap()
}

/// Reference floats are strings (see the script): exact where JSON number parsing is not.
fn num(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

fn close(a: f64, b: f64, rel: f64, what: &str) {
    let tol = rel * a.abs().max(b.abs()).max(1.0);
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b} (tolerance {tol})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_match_numpy() {
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    for name in FILES {
        let src = open(&engine, name).await;
        let r = reference(name);
        let s = compute_statistics(&engine, &src, &StatsOptions::default())
            .await
            .unwrap();
        assert_eq!(s.level, 0, "{name}");
        assert_eq!(s.width as u64, r["width"].as_u64().unwrap(), "{name}");
        assert_eq!(
            s.valid_pixels,
            r["valid_pixels"].as_u64().unwrap(),
            "{name}"
        );
        let rb = r["bands"].as_array().unwrap();
        assert_eq!(s.bands.len(), rb.len(), "{name}: band count");
        for (b, rb) in s.bands.iter().zip(rb) {
            let what = format!("{name} band {}", b.band);
            assert_eq!(b.band as u64, rb["band"].as_u64().unwrap(), "{what}");
            assert_eq!(b.count, rb["count"].as_u64().unwrap(), "{what}: count");
            if b.count == 0 {
                assert!(b.min.is_none() && b.percentiles.is_empty(), "{what}");
                continue;
            }
            assert_eq!(b.min.unwrap(), num(&rb["min"]), "{what}: min");
            assert_eq!(b.max.unwrap(), num(&rb["max"]), "{what}: max");
            close(
                b.mean.unwrap(),
                num(&rb["mean"]),
                1e-9,
                &format!("{what}: mean"),
            );
            close(
                b.stdev.unwrap(),
                num(&rb["std"]),
                1e-9,
                &format!("{what}: std"),
            );
            let rp = rb["percentiles"].as_array().unwrap();
            assert_eq!(b.percentiles.len(), 99);
            let worst = b
                .percentiles
                .iter()
                .zip(rp)
                .map(|(p, q)| (p - num(q)).abs())
                .fold(0.0, f64::max);
            eprintln!(
                "{what}: worst percentile error {worst:e}, bound {:e}",
                b.percentile_error_bound
            );
            for (i, (p, q)) in b.percentiles.iter().zip(rp).enumerate() {
                let q = num(q);
                if b.percentile_error_bound == 0.0 {
                    assert_eq!(*p, q, "{what}: p{}", i + 1);
                } else {
                    assert!(
                        (p - q).abs() <= b.percentile_error_bound * (1.0 + 1e-9),
                        "{what}: p{} {p} vs {q}, bound {}",
                        i + 1,
                        b.percentile_error_bound
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_do_not_depend_on_the_thread_count() {
    let mut results = Vec::new();
    for threads in [1, 2] {
        let engine = Engine::new(&EngineConfig {
            cpu_threads: threads,
            ..EngineConfig::default()
        })
        .unwrap();
        for name in [
            "dem_3dep13_colorado_nad83_f32_cog.tif",
            "global_etopo5_i16_cog.tif",
        ] {
            let src = open(&engine, name).await;
            let s = compute_statistics(&engine, &src, &StatsOptions::default())
                .await
                .unwrap();
            results.push((threads, name, s.bands));
        }
    }
    // Bit-identical floats: the fold order is the block order, whatever the pool does.
    assert_eq!(results[0].2, results[2].2);
    assert_eq!(results[1].2, results[3].2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_raster_falls_back_to_an_overview() {
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let src = open(&engine, "global_etopo5_i16_cog.tif").await;
    let opts = StatsOptions {
        max_pixels: Some(3_000_000),
    };
    let s = compute_statistics(&engine, &src, &opts).await.unwrap();
    // 4320x2161 is over the limit; the first overview, 2160x1080, is under it.
    assert_eq!((s.level, s.width, s.height), (1, 2160, 1080));
    assert_eq!(s.valid_pixels, 2160 * 1080);
    let full = &reference("global_etopo5_i16_cog.tif")["bands"][0];
    close(
        s.bands[0].mean.unwrap(),
        num(&full["mean"]),
        0.01,
        "overview mean",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_of_58_megapixels_hold_little_memory() {
    let engine = Engine::new(&EngineConfig {
        block_cache_bytes: 0,
        ..EngineConfig::default()
    })
    .unwrap();
    let src = open(&engine, "global_shadedrelief_10800x5400_rgb_jpeg_cog.tif").await;
    let t = std::time::Instant::now();
    let s = compute_statistics(&engine, &src, &StatsOptions::default())
        .await
        .unwrap();
    eprintln!(
        "58 MP statistics in {:?}, peak {} bytes",
        t.elapsed(),
        s.peak_decoded_bytes
    );
    assert_eq!((s.width, s.height, s.bands.len()), (10800, 5400, 3));
    assert_eq!(s.valid_pixels, 10800 * 5400);
    // The decoded raster is 175 MB; the scan holds a few blocks at a time.
    assert!(s.peak_decoded_bytes > 0);
    assert!(
        s.peak_decoded_bytes <= 40 << 20,
        "peak {}",
        s.peak_decoded_bytes
    );
    for b in &s.bands {
        assert_eq!(b.count, 10800 * 5400);
        assert!(b.min.unwrap() < b.max.unwrap());
    }
}

/// Planar area (square degrees) of a GeoJSON MultiPolygon, holes subtracted.
fn multipolygon_area(g: &Value) -> f64 {
    let ring_area = |r: &Value| {
        let p: Vec<(f64, f64)> = r
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap()))
            .collect();
        p.windows(2)
            .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
            .sum::<f64>()
            / 2.0
    };
    g["coordinates"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|poly| poly.as_array().unwrap().iter().map(ring_area))
        .sum()
}

fn ring_contains(r: &Value, (x, y): (f64, f64)) -> bool {
    let p: Vec<(f64, f64)> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap()))
        .collect();
    let mut inside = false;
    for w in p.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a.1 > y) != (b.1 > y) && x < (b.0 - a.0) * (y - a.1) / (b.1 - a.1) + a.0 {
            inside = !inside;
        }
    }
    inside
}

fn footprint_contains(g: &Value, pt: (f64, f64)) -> bool {
    g["coordinates"].as_array().unwrap().iter().any(|poly| {
        let rings = poly.as_array().unwrap();
        ring_contains(&rings[0], pt) && !rings[1..].iter().any(|h| ring_contains(h, pt))
    })
}

/// Area (square degrees) of the whole image outline in lon/lat, densified.
fn outline_area(src: &OpenSource) -> f64 {
    let img = &src.header().images[0];
    let (w, h) = (f64::from(img.width), f64::from(img.height));
    let mut px = Vec::new();
    for i in 0..64 {
        px.push((w * f64::from(i) / 64.0, 0.0));
    }
    for i in 0..64 {
        px.push((w, h * f64::from(i) / 64.0));
    }
    for i in 0..64 {
        px.push((w - w * f64::from(i) / 64.0, h));
    }
    for i in 0..64 {
        px.push((0.0, h - h * f64::from(i) / 64.0));
    }
    let (mut xs, mut ys): (Vec<f64>, Vec<f64>) =
        px.iter().map(|&(c, r)| src.transform().apply(c, r)).unzip();
    Transformer::new(src.crs(), &Crs::wgs84())
        .unwrap()
        .transform_points(&mut xs, &mut ys)
        .unwrap();
    let n = xs.len();
    (0..n)
        .map(|i| xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i])
        .sum::<f64>()
        .abs()
        / 2.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footprints_cover_the_valid_data() {
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    for name in FILES {
        let src = open(&engine, name).await;
        let r = reference(name);
        let f = compute_footprint(&engine, &src, &FootprintOptions::default())
            .await
            .unwrap();
        let g = &f.geojson;
        assert_eq!(g["type"], "MultiPolygon", "{name}");
        assert!(f.vertices <= 2000, "{name}: {} vertices", f.vertices);
        let total = r["width"].as_f64().unwrap() * r["height"].as_f64().unwrap();
        let fraction = r["valid_pixels"].as_f64().unwrap() / total;
        if fraction == 0.0 {
            assert!(g["coordinates"].as_array().unwrap().is_empty(), "{name}");
            continue;
        }
        let area = multipolygon_area(g);
        let expected = outline_area(&src) * fraction;
        eprintln!(
            "{name}: level {} grid {:?} vertices {} area {area} expected {expected}",
            f.level, f.grid, f.vertices
        );
        assert!(
            area > 0.0,
            "{name}: exterior rings must be counter-clockwise"
        );
        assert!(
            (area - expected).abs() <= 0.03 * expected,
            "{name}: footprint area {area} vs {expected}"
        );
        let v = &r["valid_lonlat"];
        let v = (v[0].as_f64().unwrap(), v[1].as_f64().unwrap());
        assert!(
            footprint_contains(g, v),
            "{name}: valid pixel {v:?} outside"
        );
        if let Some(n) = r["invalid_lonlat"].as_array() {
            let n = (n[0].as_f64().unwrap(), n[1].as_f64().unwrap());
            assert!(
                !footprint_contains(g, n),
                "{name}: nodata pixel {n:?} inside"
            );
        }
    }
}
