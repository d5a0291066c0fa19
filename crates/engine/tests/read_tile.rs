//! End-to-end reads through the engine on real files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use kiln_core::tms::TileCoord;
use kiln_core::warp::Resampling;
use kiln_core::Raster;
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
    assert_eq!((r.width(), r.height(), r.bands()), (256, 256, 1));
    assert_eq!(r.valid_fraction(), 1.0);
    // Tile 2/2/1 covers Europe, Africa's north and Asia's west: land and sea.
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for i in 0..r.pixel_count() {
        let v = r.samples().get_f64(i);
        lo = lo.min(v);
        hi = hi.max(v);
    }
    assert!(lo < -3000.0 && hi > 4000.0, "range {lo}..{hi}");
}

/// A byte source that counts the reads reaching it.
#[derive(Debug)]
struct Counting {
    inner: kiln_storage::MemorySource,
    reads: std::sync::atomic::AtomicUsize,
}

impl kiln_storage::ByteSource for Counting {
    fn identity(&self) -> &kiln_storage::SourceIdentity {
        self.inner.identity()
    }
    fn read_range(
        &self,
        range: kiln_storage::ByteRange,
    ) -> kiln_storage::BoxFuture<'_, Result<bytes::Bytes, kiln_storage::StorageError>> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.read_range(range)
    }
    fn read_ranges<'a>(
        &'a self,
        ranges: &'a [kiln_storage::ByteRange],
    ) -> kiln_storage::BoxFuture<'a, Result<Vec<bytes::Bytes>, kiln_storage::StorageError>> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.read_ranges(ranges)
    }
}

fn counting(file: &str, version: &str) -> std::sync::Arc<Counting> {
    let bytes = std::fs::read(data(file)).unwrap();
    std::sync::Arc::new(Counting {
        inner: kiln_storage::MemorySource::new(format!("mem://{file}"), version, bytes),
        reads: std::sync::atomic::AtomicUsize::new(0),
    })
}

/// Headers are parsed once per source identity; decoded blocks are reused across tiles; a new
/// version of the same URI is a new identity and is read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_and_blocks_are_cached_by_identity() {
    use std::sync::atomic::Ordering::SeqCst;
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let v1 = counting("global_etopo5_i16_cog.tif", "v1");
    let a = engine.open(v1.clone()).await.unwrap();
    let header_reads = v1.reads.load(SeqCst);
    assert!(header_reads >= 1);
    let b = engine.open(v1.clone()).await.unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&a, &b),
        "second open must reuse the cached header"
    );
    assert_eq!(
        v1.reads.load(SeqCst),
        header_reads,
        "second open must not read"
    );

    let first = engine
        .read_tile(std::slice::from_ref(&a), &req(3, 4, 2))
        .await
        .unwrap();
    let after_first = v1.reads.load(SeqCst);
    assert!(after_first > header_reads, "first tile reads blocks");
    let second = engine
        .read_tile(std::slice::from_ref(&a), &req(3, 4, 2))
        .await
        .unwrap();
    assert_eq!(
        v1.reads.load(SeqCst),
        after_first,
        "same tile again: every block from the cache"
    );
    assert_eq!(first, second);

    let v2 = counting("global_etopo5_i16_cog.tif", "v2");
    let c = engine.open(v2.clone()).await.unwrap();
    assert!(
        !std::sync::Arc::ptr_eq(&a, &c),
        "a new version is a new source"
    );
    assert!(v2.reads.load(SeqCst) >= 1);
    let third = engine.read_tile(&[c], &req(3, 4, 2)).await.unwrap();
    assert_eq!(first, third, "same bytes, same pixels");
}

/// Tile `t` of file `first` alone, of file `second` alone, and of both (`first` on top).
async fn alone_and_composited(
    engine: &Engine,
    first: &str,
    second: &str,
    t: &TileRequest,
) -> (Raster, Raster, Raster) {
    let a = engine.open_path(&data(first)).await.unwrap();
    let b = engine.open_path(&data(second)).await.unwrap();
    let a_only = engine.read_tile(std::slice::from_ref(&a), t).await.unwrap();
    let b_only = engine.read_tile(std::slice::from_ref(&b), t).await.unwrap();
    let both = engine.read_tile(&[a, b], t).await.unwrap();
    (a_only, b_only, both)
}

/// Sources are composited by precedence: the first source that has data for a pixel wins and
/// later ones fill only what is still empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_sources_fill_only_empty_pixels() {
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    // The Luxembourg DEM over the global ETOPO5.
    let (lux_only, etopo_only, both) = alone_and_composited(
        &engine,
        "dem_srtm30s_luxembourg_i16_lzw.tif",
        "global_etopo5_i16_cog.tif",
        &req(8, 132, 86),
    )
    .await;
    assert!(
        lux_only.valid_fraction() > 0.0 && lux_only.valid_fraction() < 1.0,
        "tile straddles the edge of the Luxembourg DEM"
    );
    assert_eq!(both.valid_fraction(), 1.0);
    for i in 0..both.pixel_count() {
        let want = if lux_only.mask()[i] != 0 {
            lux_only.samples().get_f64(i)
        } else {
            etopo_only.samples().get_f64(i)
        };
        assert_eq!(both.samples().get_f64(i), want, "pixel {i}");
    }
}

/// Sources of different types composite into the smallest type that holds both exactly: the
/// int16 Luxembourg DEM over the float32 Rhine basin DEM gives float32 tiles, every int16 value
/// kept as it was and the float32 values under it as they were. Every tile of the request has
/// that type, also one the first source fills alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn int16_over_float32_composites_as_float32() {
    use kiln_core::DataType;
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let (lux, rhine) = (
        "dem_srtm30s_luxembourg_i16_lzw.tif",
        "dem_rhine_basin_30s_f32_nodata.tif",
    );
    let (lux_only, rhine_only, both) =
        alone_and_composited(&engine, lux, rhine, &req(8, 132, 86)).await;
    assert_eq!(lux_only.dtype(), DataType::I16);
    assert_eq!(rhine_only.dtype(), DataType::F32);
    assert_eq!(both.dtype(), DataType::F32);
    let (mut from_lux, mut from_rhine) = (0, 0);
    for i in 0..both.pixel_count() {
        let got = both.samples().get_f64(i);
        if lux_only.mask()[i] != 0 {
            assert_ne!(both.mask()[i], 0, "pixel {i}");
            assert_eq!(got, lux_only.samples().get_f64(i), "pixel {i}");
            from_lux += 1;
        } else if rhine_only.mask()[i] != 0 {
            assert_ne!(both.mask()[i], 0, "pixel {i}");
            assert_eq!(got, rhine_only.samples().get_f64(i), "pixel {i}");
            from_rhine += 1;
        } else {
            assert_eq!(both.mask()[i], 0, "pixel {i}");
        }
    }
    assert!(
        from_lux > 1000 && from_rhine > 1000,
        "{from_lux} pixels from the int16 DEM, {from_rhine} from the float32 one"
    );

    // Inside Luxembourg the int16 DEM fills the tile alone; the tile is float32 all the same.
    let (lux_full, _, both) = alone_and_composited(&engine, lux, rhine, &req(12, 2117, 1395)).await;
    assert_eq!(lux_full.valid_fraction(), 1.0);
    assert_eq!(both.dtype(), DataType::F32);
    assert_eq!(both.mask(), lux_full.mask());
    for i in 0..both.pixel_count() {
        assert_eq!(
            both.samples().get_f64(i),
            lux_full.samples().get_f64(i),
            "pixel {i}"
        );
    }
}

/// The alpha band decides validity wherever it stands among the bands asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpha_decides_validity_in_any_band_order() {
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let src = engine
        .open_path(&data("odd_bahamas_rgba_alpha_deflate.tif"))
        .await
        .unwrap();
    let tile = |bands: Vec<usize>| TileRequest {
        bands: Some(bands),
        ..req(8, 72, 109)
    };
    let red = engine
        .read_tile(std::slice::from_ref(&src), &tile(vec![1]))
        .await
        .unwrap();
    assert!(
        red.valid_fraction() > 0.0 && red.valid_fraction() < 1.0,
        "{}",
        red.valid_fraction()
    );
    for bands in [vec![4, 1], vec![1, 4], vec![3, 4, 2]] {
        let r = engine
            .read_tile(std::slice::from_ref(&src), &tile(bands.clone()))
            .await
            .unwrap();
        assert_eq!(r.mask(), red.mask(), "bands {bands:?}");
    }
}
