//! One render path: every product and output format, with explicit parameters, rendered by
//! the real `kiln tile` binary and by the server (`kiln_server::router` in process, the same
//! code `kiln serve` runs, driven with `tower::ServiceExt::oneshot`) gives identical bytes.
//!
//! The catalog is made by the real `kiln ingest` from symbolic links to shared data files:
//! a 16-bit DEM in EPSG:4326, a float32 DEM in NAD83, a 6-band 8-bit Landsat 7 scene in UTM,
//! a paletted land-cover file and an RGB JPEG COG with an internal mask. Each case's tile is
//! the one at the centre of its dataset's bounds (from `/metadata`) at a zoom that shows it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/npy.rs"]
mod npy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use kiln_core::tms::TileMatrixSet;
use serde_json::Value;
use tower::ServiceExt;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

/// Dataset (one key, `name`) → shared file.
const DATASETS: &[(&str, &str)] = &[
    ("lux", "dem_srtm30s_luxembourg_i16_lzw.tif"),
    ("colorado", "dem_3dep13_colorado_nad83_f32_cog.tif"),
    ("ms", "img_l7_olinda_utm25s_6band_u8.tif"),
    ("nlcd", "odd_nlcd_puertorico_palette_u8.tif"),
    ("bahamas", "odd_bahamas_rgb_jpeg_internal_mask_cog.tif"),
];

fn kiln(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .unwrap()
}

struct Fixture {
    dir: PathBuf,
    router: axum::Router,
}

async fn fixture() -> Fixture {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kiln-render-path-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, file) in DATASETS {
        std::os::unix::fs::symlink(data(file), dir.join(format!("{name}.tif"))).unwrap();
    }
    let catalog = dir.join("catalog.sqlite");
    let pattern = format!("{}/{{name}}.tif", dir.display());
    let out = kiln(&[
        "ingest",
        &pattern,
        "-o",
        catalog.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "ingest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cat = kiln_catalog::open(&kiln_catalog::CatalogLocation::Sqlite(catalog))
        .await
        .unwrap();
    let engine = kiln_engine::Engine::new(&kiln_engine::EngineConfig::default()).unwrap();
    let state =
        kiln_server::AppState::new(engine, Arc::from(cat), kiln_server::ServerConfig::default());
    Fixture {
        dir,
        router: kiln_server::router(state),
    }
}

async fn get(router: &axum::Router, uri: &str) -> (StatusCode, Vec<u8>) {
    let resp = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 28)
        .await
        .unwrap();
    (status, body.to_vec())
}

/// The tile at the centre of `name`'s bounds at zoom `z`.
async fn centre_tile(router: &axum::Router, name: &str, z: u8) -> (u8, u32, u32) {
    let (status, body) = get(router, &format!("/metadata/{name}")).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let m: Value = serde_json::from_slice(&body).unwrap();
    let b: Vec<f64> = m["bounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let t = TileMatrixSet::web_mercator_quad()
        .tile_for_lonlat((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0, z)
        .unwrap();
    (t.z(), t.x(), t.y())
}

/// One product: the server's query and the `kiln tile` flags that ask for the same thing.
struct Case {
    route: &'static str,
    dataset: &'static str,
    zoom: u8,
    ext: &'static str,
    query: &'static str,
    flags: &'static [&'static str],
}

const fn case(
    route: &'static str,
    dataset: &'static str,
    zoom: u8,
    ext: &'static str,
    query: &'static str,
    flags: &'static [&'static str],
) -> Case {
    Case {
        route,
        dataset,
        zoom,
        ext,
        query,
        flags,
    }
}

const CASES: &[Case] = &[
    // Raw values: every band asked, no display parameters.
    case("singleband", "lux", 9, "npy", "", &["--bands", "1"]),
    case("singleband", "lux", 9, "tif", "", &["--bands", "1"]),
    case("singleband", "colorado", 12, "npy", "resampling=bilinear", &["--bands", "1", "--resampling", "bilinear"]),
    case("singleband", "colorado", 12, "tif", "resampling=cubic", &["--bands", "1", "--resampling", "cubic"]),
    case("rgb", "ms", 12, "npy", "r=4&g=3&b=2", &["--bands", "4,3,2"]),
    case("rgb", "bahamas", 12, "tif", "r=1&g=2&b=3", &["--bands", "1,2,3"]),
    case("compute", "ms", 12, "npy", "v1=4&v2=3&expression=(v1-v2)/(v1%2Bv2)", &["--expression", "(v1-v2)/(v1+v2)", "--bands", "4,3"]),
    // Single band images: stretch, named colormap, grey, explicit classes, the file's palette.
    case("singleband", "lux", 9, "png", "stretch_range=[150,550]&colormap=terrain", &["--bands", "1", "--stretch", "150,550", "--colormap", "terrain"]),
    case("singleband", "lux", 9, "jpg", "stretch_range=[150,550]&colormap=viridis&quality=60", &["--bands", "1", "--stretch", "150,550", "--colormap", "viridis", "--quality", "60"]),
    case("singleband", "lux", 9, "webp", "stretch_range=[150,550]&colormap=magma_r", &["--bands", "1", "--stretch", "150,550", "--colormap", "magma_r"]),
    case("singleband", "lux", 9, "png", "stretch_range=[200,400]&tile_size=[512,512]&resampling=bilinear", &["--bands", "1", "--stretch", "200,400", "--tile-size", "512", "--resampling", "bilinear"]),
    case("singleband", "colorado", 12, "png", "stretch_range=[2000,4000]&colormap=terrain&resampling=cubic", &["--bands", "1", "--stretch", "2000,4000", "--colormap", "terrain", "--resampling", "cubic"]),
    case("singleband", "ms", 12, "png", "band=4&stretch_range=[0,120]&colormap=explicit&explicit_color_map=%7B%2210%22%3A%22%23ff0000%22%2C%2220%22%3A%5B0%2C128%2C0%5D%7D", &["--bands", "4", "--stretch", "0,120", "--explicit-colormap", "{\"10\":\"#ff0000\",\"20\":[0,128,0]}"]),
    case("singleband", "nlcd", 9, "png", "stretch_range=[0,255]", &["--bands", "1", "--stretch", "0,255"]),
    case("singleband", "nlcd", 9, "jpg", "stretch_range=[0,255]&quality=90", &["--bands", "1", "--stretch", "0,255", "--quality", "90"]),
    // RGB images with a range per channel.
    case("rgb", "ms", 12, "png", "r=4&g=3&b=2&r_range=[0,120]&g_range=[0,110]&b_range=[0,100]", &["--bands", "4,3,2", "--stretch", "0,120,0,110,0,100"]),
    case("rgb", "ms", 12, "jpg", "r=3&g=2&b=1&r_range=[0,200]&g_range=[0,200]&b_range=[0,200]&quality=70", &["--bands", "3,2,1", "--stretch", "0,200", "--quality", "70"]),
    case("rgb", "bahamas", 12, "webp", "r=1&g=2&b=3&r_range=[0,255]&g_range=[0,255]&b_range=[0,255]", &["--bands", "1,2,3", "--stretch", "0,255"]),
    case("rgb", "bahamas", 12, "png", "r=1&g=2&b=3&r_range=[0,255]&g_range=[0,255]&b_range=[0,255]&tile_size=[512,512]", &["--bands", "1,2,3", "--stretch", "0,255", "--tile-size", "512"]),
    // Band math images.
    case("compute", "ms", 12, "png", "v1=4&v2=3&expression=(v1-v2)/(v1%2Bv2)&stretch_range=[-0.5,0.5]&colormap=viridis", &["--expression", "(v1-v2)/(v1+v2)", "--bands", "4,3", "--stretch", "-0.5,0.5", "--colormap", "viridis"]),
    case("compute", "lux", 9, "jpg", "v1=1&expression=sqrt(v1)&stretch_range=[10,25]", &["--expression", "sqrt(v1)", "--stretch", "10,25"]),
    case("compute", "colorado", 12, "webp", "v1=1&expression=v1*2&stretch_range=[4000,8000]&colormap=terrain&resampling=bilinear", &["--expression", "v1*2", "--stretch", "4000,8000", "--colormap", "terrain", "--resampling", "bilinear"]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiln_tile_and_the_server_give_identical_bytes() {
    let fx = fixture().await;
    let mut formats = std::collections::BTreeSet::new();
    for (i, c) in CASES.iter().enumerate() {
        let (z, x, y) = centre_tile(&fx.router, c.dataset, c.zoom).await;
        let sep = if c.query.is_empty() { "" } else { "?" };
        let uri = format!(
            "/{}/{}/{z}/{x}/{y}.{}{sep}{}",
            c.route, c.dataset, c.ext, c.query
        );
        let (status, served) = get(&fx.router, &uri).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&served)
        );
        let out = fx.dir.join(format!("case{i}.{}", c.ext));
        let file = fx.dir.join(format!("{}.tif", c.dataset));
        let (zs, xs, ys) = (z.to_string(), x.to_string(), y.to_string());
        let mut args = vec![
            "tile",
            file.to_str().unwrap(),
            &zs,
            &xs,
            &ys,
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(c.flags);
        let o = kiln(&args);
        assert!(
            o.status.success(),
            "kiln {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let cli = std::fs::read(&out).unwrap();
        assert!(served.len() > 100, "{uri}: {} bytes", served.len());
        assert!(
            cli == served,
            "{uri}: server {} bytes, kiln tile {} bytes ({args:?})",
            served.len(),
            cli.len()
        );
        if c.ext == "npy" {
            // The tile shows data: its mask plane (the last) has valid pixels.
            let a = npy::read_npy(&out).unwrap();
            let mask = a.plane(a.shape[0] - 1).unwrap();
            let valid = mask.iter().filter(|&&m| m != 0.0).count();
            assert!(valid * 4 > mask.len(), "{uri}: {valid} valid pixels");
        }
        formats.insert((c.route, c.ext));
    }
    // Every product in every format it has.
    for want in [
        ("singleband", "npy"),
        ("singleband", "tif"),
        ("singleband", "png"),
        ("singleband", "jpg"),
        ("singleband", "webp"),
        ("rgb", "npy"),
        ("rgb", "tif"),
        ("rgb", "png"),
        ("rgb", "jpg"),
        ("rgb", "webp"),
        ("compute", "npy"),
        ("compute", "png"),
        ("compute", "jpg"),
        ("compute", "webp"),
    ] {
        assert!(formats.contains(&want), "no case for {want:?}");
    }
    let _ = std::fs::remove_dir_all(&fx.dir);
}
