//! End-to-end reads through the engine on real files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use kiln_core::tms::TileCoord;
use kiln_core::warp::Resampling;
use kiln_engine::{Engine, EngineConfig, TileRequest};

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

fn req(z: u8, x: u32, y: u32) -> TileRequest {
    TileRequest {
        tile: TileCoord::new(z, x, y).unwrap(),
        tile_size: 256,
        resampling: Resampling::Nearest,
        bands: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_dem_tile_is_full_of_data() {
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let src = engine
        .open_path(&data("global_etopo5_i16_cog.tif"))
        .await
        .unwrap();
    let r = engine.read_tile(&[src], &req(2, 2, 1)).await.unwrap();
    assert_eq!((r.width, r.height, r.bands), (256, 256, 1));
    assert_eq!(r.valid_fraction(), 1.0);
    // Tile 2/2/1 covers Europe, Africa's north and Asia's west: land and sea.
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for i in 0..r.pixel_count() {
        let v = r.samples.get_f64(i);
        lo = lo.min(v);
        hi = hi.max(v);
    }
    assert!(lo < -3000.0 && hi > 4000.0, "range {lo}..{hi}");
}
