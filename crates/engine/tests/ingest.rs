//! The ingest use case on real files: catalog metadata agrees with the statistics, footprint
//! and bounds computed on their own, and a source reopened from the stored header (no header
//! read) renders the same tiles as one opened from the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use kiln_core::tms::TileCoord;
use kiln_core::warp::Resampling;
use kiln_engine::ingest::{dataset_metadata, header_from_json, header_to_json, IngestOptions};
use kiln_engine::{
    compute_footprint, compute_statistics, source_info, Engine, EngineConfig, EngineError,
    FootprintOptions, StatsOptions, TileRequest,
};
use kiln_storage::{BoxFuture, ByteRange, ByteSource, SourceIdentity, StorageError};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

fn engine() -> Engine {
    Engine::new(&EngineConfig::default()).unwrap()
}

/// A file source that counts its reads, to prove a stored header spares the header fetch.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn ByteSource>,
    reads: AtomicU64,
}

impl ByteSource for Counting {
    fn identity(&self) -> &SourceIdentity {
        self.inner.identity()
    }

    fn read_range(&self, range: ByteRange) -> BoxFuture<'_, Result<Bytes, StorageError>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.read_range(range)
    }
}

/// Tiles inside each file at a zoom where the full resolution or a fine overview is read.
const TILE_CASES: [(&str, u8, u32, u32); 5] = [
    ("dem_srtm30s_luxembourg_i16_lzw.tif", 9, 264, 174),
    ("global_shadedrelief_10800x5400_rgb_jpeg_cog.tif", 3, 4, 3),
    ("odd_bahamas_rgb_jpeg_internal_mask_cog.tif", 9, 145, 219),
    ("dem_3dep13_colorado_nad83_f32_cog.tif", 12, 829, 1565),
    ("odd_merc_nad27_u8.tif", 10, 314, 490),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_header_renders_identical_tiles_without_reading_the_header() {
    for (name, z, x, y) in TILE_CASES {
        let normal = engine();
        let src = normal.open_path(&data(name)).await.unwrap();
        let stored = header_to_json(src.header()).unwrap();
        // Through text, as the catalog stores it.
        let text = serde_json::to_string(&stored).unwrap();
        let header = header_from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(&header, src.header().as_ref(), "{name}: header round trip");

        // A fresh engine: nothing cached, so only the stored header can spare the fetch.
        let fresh = engine();
        let counting = Arc::new(Counting {
            inner: kiln_storage::open_path(&data(name)).await.unwrap(),
            reads: AtomicU64::new(0),
        });
        let reopened = fresh
            .open_with_header(counting.clone(), header)
            .await
            .unwrap();
        assert_eq!(counting.reads.load(Ordering::Relaxed), 0, "{name}");
        // Cached under the identity: opening the source again reads nothing either.
        let again = fresh.open(counting.clone()).await.unwrap();
        assert!(Arc::ptr_eq(&again, &reopened), "{name}: header cache");
        assert_eq!(counting.reads.load(Ordering::Relaxed), 0, "{name}");

        let req = TileRequest {
            tile: TileCoord::new(z, x, y).unwrap(),
            tile_size: 256,
            resampling: Resampling::Bilinear,
            bands: None,
        };
        let a = normal.read_tile(&[src], &req).await.unwrap();
        let b = fresh.read_tile(&[reopened], &req).await.unwrap();
        assert!(
            a.mask().iter().any(|&m| m != 0),
            "{name}: the tile must hold data to prove anything"
        );
        assert_eq!(a.mask(), b.mask(), "{name}: mask");
        assert_eq!(a.samples(), b.samples(), "{name}: samples");
        assert!(
            counting.reads.load(Ordering::Relaxed) > 0,
            "{name}: blocks read"
        );
    }
}

#[test]
fn non_finite_nodata_survives_the_json() {
    let normal = engine();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let src = rt
        .block_on(normal.open_path(&data("dem_rhine_basin_30s_f32_nodata.tif")))
        .unwrap();
    for nd in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -9999.0] {
        let mut header = src.header().as_ref().clone();
        header.nodata = Some(nd);
        let back = header_from_json(&header_to_json(&header).unwrap()).unwrap();
        let got = back.nodata.unwrap();
        assert!(
            got.to_bits() == nd.to_bits() || (nd.is_nan() && got.is_nan()),
            "{nd} came back as {got}"
        );
    }
}

#[test]
fn inconsistent_stored_headers_are_refused() {
    let normal = engine();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let src = rt
        .block_on(normal.open_path(&data("global_etopo5_i16_cog.tif")))
        .unwrap();
    let good = header_to_json(src.header()).unwrap();
    let mut fewer_offsets = good.clone();
    fewer_offsets["images"][0]["block_offsets"]
        .as_array_mut()
        .unwrap()
        .pop();
    let mut no_images = good.clone();
    no_images["images"] = serde_json::json!([]);
    let mut zero_block = good.clone();
    zero_block["images"][1]["block_width"] = serde_json::json!(0);
    let mut bad_nodata = good.clone();
    bad_nodata["nodata"] = serde_json::json!("nothing");
    for (what, v) in [
        ("fewer offsets", fewer_offsets),
        ("no images", no_images),
        ("zero block", zero_block),
        ("bad nodata", bad_nodata),
        ("not a header", serde_json::json!({"a": 1})),
    ] {
        assert!(
            matches!(header_from_json(&v), Err(EngineError::BadRequest { .. })),
            "{what}"
        );
    }
}

const METADATA_FILES: [&str; 6] = [
    "dem_srtm30s_luxembourg_i16_lzw.tif",
    "dem_3dep13_colorado_nad83_f32_cog.tif",
    "odd_bahamas_rgba_alpha_deflate.tif",
    "img_landsat_saltlake_4326_7band_cog.tif",
    "odd_le07_sza_utm21n_i32.tif",
    "odd_dataset_mask_f32_albers_lzw.tif",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_agrees_with_statistics_footprint_and_bounds() {
    let engine = engine();
    for name in METADATA_FILES {
        let src = engine.open_path(&data(name)).await.unwrap();
        let m = dataset_metadata(&engine, &src, &IngestOptions::default())
            .await
            .unwrap();
        m.validate().unwrap();
        let stats = compute_statistics(&engine, &src, &StatsOptions::default())
            .await
            .unwrap();
        assert_eq!(stats.level, 0, "{name}: full resolution by default");
        assert_eq!(m.valid_percentage, stats.valid_percentage, "{name}");
        assert!(m.valid_percentage > 0.0, "{name}");
        assert_eq!(m.band_count as usize, src.default_bands().len(), "{name}");
        assert_eq!(m.bands.len(), stats.bands.len(), "{name}");
        for (mb, sb) in m.bands.iter().zip(&stats.bands) {
            assert_eq!(Some(mb.min), sb.min, "{name} band {}", sb.band);
            assert_eq!(Some(mb.max), sb.max, "{name} band {}", sb.band);
            assert_eq!(Some(mb.mean), sb.mean, "{name} band {}", sb.band);
            assert_eq!(Some(mb.stdev), sb.stdev, "{name} band {}", sb.band);
            assert_eq!(mb.percentiles, sb.percentiles, "{name} band {}", sb.band);
        }
        let fp = compute_footprint(&engine, &src, &FootprintOptions::default())
            .await
            .unwrap();
        assert_eq!(m.footprint, fp.geojson, "{name}");
        let info = source_info(src.uri(), src.header(), Vec::new()).unwrap();
        assert_eq!(Some(m.bounds_wgs84), info.bounds_wgs84, "{name}");
        assert_eq!(m.dtype, src.header().images[0].dtype, "{name}");
        assert_eq!(
            header_from_json(&m.header).unwrap(),
            *src.header().as_ref(),
            "{name}"
        );
        assert_eq!(m.extra, serde_json::json!({}), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_without_valid_pixels_has_no_band_statistics() {
    let engine = engine();
    let src = engine
        .open_path(&data("odd_all_nodata_f32_albers.tif"))
        .await
        .unwrap();
    let m = dataset_metadata(&engine, &src, &IngestOptions::default())
        .await
        .unwrap();
    m.validate().unwrap();
    assert_eq!(m.valid_percentage, 0.0);
    assert!(m.bands.is_empty());
    assert_eq!(m.band_count, 1);
}

/// The 58-megapixel RGB file is scanned block by block: the decoded bytes held at once stay
/// a small fraction of the decoded image (10800 x 5400 x 3 bytes plus a mask).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_file_is_scanned_with_bounded_memory() {
    let engine = engine();
    let src = engine
        .open_path(&data("global_shadedrelief_10800x5400_rgb_jpeg_cog.tif"))
        .await
        .unwrap();
    let stats = compute_statistics(&engine, &src, &StatsOptions::default())
        .await
        .unwrap();
    assert_eq!((stats.width, stats.height), (10800, 5400));
    let full = 10800u64 * 5400 * 4;
    assert!(
        stats.peak_decoded_bytes < full / 4,
        "peak {} of {full}",
        stats.peak_decoded_bytes
    );
    let m = dataset_metadata(&engine, &src, &IngestOptions::default())
        .await
        .unwrap();
    assert_eq!(m.band_count, 3);
    assert_eq!(m.valid_percentage, 100.0);
}
