//! Tiles per second per core through the whole pipeline (plan, fetch from memory, decode,
//! assemble, warp, render, encode), cold (no decoded-block cache: every tile decodes its
//! blocks from compressed bytes held in memory) and warm (all blocks already decoded), plus the
//! encode stage alone so the remaining time can be attributed.
//!
//! Run: `cargo bench -p kiln-engine --bench tiles`. One CPU worker thread, so tiles/s is per core.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kiln_core::product::ImageFormat;
use kiln_core::tms::TileCoord;
use kiln_core::warp::Resampling;
use kiln_engine::{
    Area, ColormapChoice, Engine, EngineConfig, ImageOutput, Layer, OpenSource, Product, RangeSpec,
    RenderRequest,
};
use kiln_storage::MemorySource;

struct Case {
    name: &'static str,
    file: &'static str,
    tiles: Vec<TileCoord>,
    product: Product,
}

fn cases() -> Vec<Case> {
    let image = ImageOutput {
        format: ImageFormat::Png,
        quality: 85,
    };
    // ETOPO5 (int16, DEFLATE + predictor 2, 512 px tiles, 4 overviews): all 64 tiles of z3.
    let dem_tiles = (0..8)
        .flat_map(|x| (0..8).map(move |y| TileCoord::new(3, x, y).unwrap()))
        .collect();
    // Shaded relief (YCbCr JPEG COG, 10800 x 5400): a 8 x 4 block of z5 tiles over Africa and Europe.
    let rgb_tiles = (14..22)
        .flat_map(|x| (8..12).map(move |y| TileCoord::new(5, x, y).unwrap()))
        .collect();
    vec![
        Case {
            name: "dem_i16_terrain_png",
            file: "global_etopo5_i16_cog.tif",
            tiles: dem_tiles,
            product: Product::SingleBand {
                stretch: RangeSpec::values(-8000.0, 6000.0),
                colormap: ColormapChoice::Named("terrain".into()),
                image,
            },
        },
        Case {
            name: "rgb_jpeg_cog_png",
            file: "global_shadedrelief_10800x5400_rgb_jpeg_cog.tif",
            tiles: rgb_tiles,
            product: Product::Rgb {
                stretch: [RangeSpec::DEFAULT; 3],
                image,
            },
        },
    ]
}

fn open(rt: &tokio::runtime::Runtime, engine: &Engine, file: &str) -> Arc<OpenSource> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(file);
    let bytes = std::fs::read(&path).unwrap();
    let src = MemorySource::new(path.display().to_string(), "bench", bytes);
    rt.block_on(engine.open(Arc::new(src))).unwrap()
}

/// The request of one tile of `case`: every band but alpha, nearest, 256 px.
fn request(src: &Arc<OpenSource>, product: &Product, tile: TileCoord) -> RenderRequest {
    let bands = src.default_bands().iter().map(|b| b + 1).collect();
    RenderRequest {
        layers: vec![Layer::of(src.clone(), Some(bands))],
        area: Area::tile(tile, 256),
        resampling: Resampling::Nearest,
        product: product.clone(),
    }
}

fn render_all(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    src: &Arc<OpenSource>,
    case: &Case,
) -> usize {
    rt.block_on(async {
        let mut bytes = 0;
        for &tile in &case.tiles {
            bytes += engine
                .render(&request(src, &case.product, tile))
                .await
                .unwrap()
                .bytes
                .len();
        }
        bytes
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for case in cases() {
        let mut group = c.benchmark_group(case.name);
        group.throughput(Throughput::Elements(case.tiles.len() as u64));
        group.sample_size(10);

        let cold = Engine::new(&EngineConfig {
            block_cache_bytes: 0,
            cpu_threads: 1,
            ..EngineConfig::default()
        })
        .unwrap();
        let cold_src = open(&rt, &cold, case.file);
        group.bench_function("cold", |b| {
            b.iter(|| render_all(&rt, &cold, &cold_src, &case))
        });

        let warm = Engine::new(&EngineConfig {
            cpu_threads: 1,
            ..EngineConfig::default()
        })
        .unwrap();
        let warm_src = open(&rt, &warm, case.file);
        let bytes = render_all(&rt, &warm, &warm_src, &case);
        eprintln!(
            "{}: {} bytes per tile",
            case.name,
            bytes / case.tiles.len().max(1)
        );
        group.bench_function("warm", |b| {
            b.iter(|| render_all(&rt, &warm, &warm_src, &case))
        });

        // Encode alone, on rasters read beforehand.
        let rasters: Vec<_> = case
            .tiles
            .iter()
            .map(|&tile| {
                let req = request(&warm_src, &case.product, tile);
                let r = rt.block_on(warm.render_values(&req)).unwrap();
                (req, r)
            })
            .collect();
        group.bench_function("encode_only", |b| {
            b.iter(|| {
                rt.block_on(async {
                    for (req, r) in &rasters {
                        warm.encode(req, r.clone()).await.unwrap();
                    }
                })
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
