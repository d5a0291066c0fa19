//! `optimize` writes the same bytes whatever the CPU pool size and thread timing: blocks are
//! encoded in parallel and the reading, folding and encoding stages overlap, but every block
//! lands in the file at a place fixed by the layout, never by the order threads finish.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use kiln_engine::optimize::{optimize_file, OptimizeOptions};
use kiln_engine::{Engine, EngineConfig};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

async fn optimize_with(threads: usize, input: &Path, output: &Path) -> Vec<u8> {
    let engine = Engine::new(&EngineConfig {
        cpu_threads: threads,
        ..EngineConfig::default()
    })
    .unwrap();
    optimize_file(&engine, input, output, &OptimizeOptions::default(), None)
        .await
        .unwrap();
    std::fs::read(output).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_bytes_do_not_depend_on_the_pool_size() {
    let dir =
        std::env::temp_dir().join(format!("kiln-optimize-determinism-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Int16 with odd level heights (3-row overview windows), and 8-bit RGB JPEG with an
    // internal mask (2x2 fast path, mask blocks interleaved).
    for name in [
        "global_etopo5_i16_cog.tif",
        "odd_bahamas_rgb_jpeg_internal_mask_cog.tif",
    ] {
        let input = data(name);
        let one = optimize_with(1, &input, &dir.join(format!("1-{name}"))).await;
        let three = optimize_with(3, &input, &dir.join(format!("3-{name}"))).await;
        let again = optimize_with(3, &input, &dir.join(format!("3b-{name}"))).await;
        assert!(!one.is_empty());
        assert!(
            one == three,
            "{name}: 1 and 3 threads wrote different bytes"
        );
        assert!(
            three == again,
            "{name}: two runs with 3 threads wrote different bytes"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
