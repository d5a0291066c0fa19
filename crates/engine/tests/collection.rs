//! Compositing a collection by precedence, on the three-level stack of `../shared/data`:
//! ETOPO5 (global, priority 0), the Rhine basin 30″ DEM (priority 10, float32, nodata outside
//! the basin) and the Luxembourg SRTM (priority 20, int16, nodata outside the country).
//!
//! The expected values come from each source's own tile read alone (the tile path every
//! other test checks against GDAL), never from the composite: a composite pixel must equal
//! the value of the highest-priority source valid there. Reads are counted by a `ByteSource`
//! wrapper around the real files, so "never read" means no byte left the file.
//!
//! The void and mixed-CRS fixtures are made by `scripts/make_terrain_reference.py` (run by
//! `scripts/make_reference_tiles.sh`) into `tests/ref-cache/terrain/` (or `$KILN_REF_DIR`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use kiln_core::tms::TileCoord;
use kiln_core::warp::Resampling;
use kiln_core::{DataType, Raster};
use kiln_engine::ingest::{dataset_metadata, IngestOptions};
use kiln_engine::{
    Area, CollectionIndex, Engine, EngineConfig, MemberInput, OpenSource, Product, Terrain,
    TileRequest,
};
use kiln_storage::{BoxFuture, ByteRange, ByteSource, SourceIdentity, StorageError};

const ETOPO: &str = "global_etopo5_i16_cog.tif";
const RHINE: &str = "dem_rhine_basin_30s_f32_nodata.tif";
const LUX: &str = "dem_srtm30s_luxembourg_i16_lzw.tif";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

fn terrain_ref(name: &str) -> PathBuf {
    let base = std::env::var_os("KILN_REF_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ref-cache"),
        PathBuf::from,
    );
    let p = base.join("terrain").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/make_reference_tiles.sh",
        p.display()
    );
    p
}

/// A real file whose reads are counted.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn ByteSource>,
    bytes: AtomicU64,
}

impl ByteSource for Counting {
    fn identity(&self) -> &SourceIdentity {
        self.inner.identity()
    }

    fn read_range(&self, range: ByteRange) -> BoxFuture<'_, Result<Bytes, StorageError>> {
        self.bytes.fetch_add(range.len, Ordering::SeqCst);
        self.inner.read_range(range)
    }
}

struct Stack {
    engine: Engine,
    index: CollectionIndex,
    /// The members' own sources, in priority order (highest first), with their counters.
    own: Vec<(Arc<OpenSource>, Arc<Counting>)>,
}

impl Stack {
    fn reset(&self) {
        for (_, c) in &self.own {
            c.bytes.store(0, Ordering::SeqCst);
        }
    }

    fn read(&self, i: usize) -> u64 {
        self.own[i].1.bytes.load(Ordering::SeqCst)
    }
}

/// Opens `files` (highest priority first; priorities 20, 10, 0 …) as one collection, on a
/// fresh engine so no block is cached.
async fn stack(files: &[PathBuf]) -> Stack {
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let mut members = Vec::new();
    let mut own = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let file = kiln_storage::open_path(path).await.unwrap();
        let counting = Arc::new(Counting {
            inner: file,
            bytes: AtomicU64::new(0),
        });
        let source = engine
            .open(counting.clone() as Arc<dyn ByteSource>)
            .await
            .unwrap();
        let metadata = dataset_metadata(&engine, &source, &IngestOptions::default())
            .await
            .unwrap();
        let priority = 10 * i32::try_from(files.len() - 1 - i).unwrap();
        members.push((
            MemberInput {
                label: path.file_name().unwrap().to_string_lossy().into_owned(),
                uri: source.uri().to_string(),
                metadata,
                priority,
                min_zoom: None,
                max_zoom: None,
                acquired: None,
                nodata: None,
            },
            source.clone(),
        ));
        own.push((source, counting));
    }
    // Handed over in reverse, so the order must come from the priorities.
    members.reverse();
    let index = CollectionIndex::from_sources(&engine, "stack", members, Vec::new());
    let s = Stack { engine, index, own };
    s.reset();
    s
}

fn three_levels() -> Vec<PathBuf> {
    vec![data(LUX), data(RHINE), data(ETOPO)]
}

/// The XYZ tile containing `lon`, `lat` at `z` (the slippy-map formula).
fn tile_at(lon: f64, lat: f64, z: u8) -> TileCoord {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n).floor();
    let r = lat.to_radians();
    let y = ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor();
    TileCoord::new(z, x as u32, y as u32).unwrap()
}

/// The composite's raw values of `tile` (through the one render path) and the trace.
async fn composite(s: &Stack, tile: TileCoord) -> Option<(Raster, Vec<String>)> {
    let render = s
        .index
        .render_request(
            &s.engine,
            Area::tile(tile, 256),
            Resampling::Nearest,
            Product::Terrain(Terrain::Raw),
        )
        .unwrap()?;
    let values = s.engine.render_values(&render.request).await.unwrap();
    let out = s.engine.render(&render.request).await.unwrap();
    let contributed = out
        .sources
        .contributed
        .iter()
        .map(|&i| s.index.sources()[render.candidates[i]].label.clone())
        .collect();
    Some((values, contributed))
}

/// Each member's own tile, alone, in priority order.
async fn own_tiles(s: &Stack, tile: TileCoord) -> Vec<Raster> {
    let mut out = Vec::new();
    for (src, _) in &s.own {
        let req = TileRequest {
            tile,
            tile_size: 256,
            resampling: Resampling::Nearest,
            bands: Some(vec![1]),
        };
        out.push(
            s.engine
                .read_tile(std::slice::from_ref(src), &req)
                .await
                .unwrap()
                .convert(DataType::F64),
        );
    }
    out
}

fn value(r: &Raster, i: usize) -> f64 {
    r.samples().get_f64(i)
}

/// Checks every pixel of `tile` against the members' own tiles; returns how many pixels
/// each member supplied.
async fn check_tile(s: &Stack, tile: TileCoord) -> Vec<usize> {
    let own = own_tiles(s, tile).await;
    let mut supplied = vec![0; own.len()];
    let Some((comp, _)) = composite(s, tile).await else {
        assert!(
            own.iter().all(|r| r.mask().iter().all(|&m| m == 0)),
            "{tile:?}: no candidate, but a member has valid pixels"
        );
        return supplied;
    };
    assert_eq!(
        comp.dtype(),
        DataType::F32,
        "int16 + float32 composite as float32"
    );
    for i in 0..comp.pixel_count() {
        let want = own.iter().position(|r| r.mask()[i] != 0);
        match want {
            None => assert_eq!(comp.mask()[i], 0, "{tile:?} pixel {i}: no member is valid"),
            Some(k) => {
                supplied[k] += 1;
                assert_ne!(comp.mask()[i], 0, "{tile:?} pixel {i}: member {k} is valid");
                let (got, exp) = (value(&comp, i), value(&own[k], i) as f32 as f64);
                assert_eq!(got, exp, "{tile:?} pixel {i}: member {k}'s value");
            }
        }
    }
    supplied
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pixel_comes_from_the_highest_priority_valid_member() {
    let s = stack(&three_levels()).await;
    let names: Vec<&str> = s.index.sources().iter().map(|m| m.label.as_str()).collect();
    assert_eq!(names, [LUX, RHINE, ETOPO], "priority order");
    let mut total = vec![0; 3];
    // Every tile over Luxembourg and its surroundings, zooms 6 to 10.
    for z in 6..=10u8 {
        let nw = tile_at(5.4, 50.5, z);
        let se = tile_at(6.9, 49.1, z);
        for x in nw.x()..=se.x() {
            for y in nw.y()..=se.y() {
                let got = check_tile(&s, TileCoord::new(z, x, y).unwrap()).await;
                for (t, g) in total.iter_mut().zip(got) {
                    *t += g;
                }
            }
        }
    }
    // Each level must really take part, or the test proves nothing.
    assert!(
        total.iter().all(|&n| n > 1000),
        "pixels per member: {total:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tile_inside_the_finest_footprint_reads_only_the_finest_member() {
    let s = stack(&three_levels()).await;
    // Luxembourg City, zoom 12: about 7 × 7 SRTM pixels, all valid.
    let tile = tile_at(6.13, 49.61, 12);
    let (comp, contributed) = composite(&s, tile).await.unwrap();
    assert!(comp.is_fully_valid());
    assert_eq!(contributed, [LUX]);
    assert!(s.read(0) > 0, "the Luxembourg file was read");
    assert_eq!(s.read(1), 0, "no byte of the Rhine basin file");
    assert_eq!(s.read(2), 0, "no byte of ETOPO5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tile_outside_the_finest_footprint_reads_nothing_of_it() {
    let s = stack(&three_levels()).await;
    // Near Basel, inside the Rhine basin and far from Luxembourg.
    let tile = tile_at(7.9, 47.6, 9);
    let (comp, contributed) = composite(&s, tile).await.unwrap();
    assert!(comp.mask().iter().any(|&m| m != 0));
    assert_eq!(s.read(0), 0, "no byte of the Luxembourg file");
    assert!(contributed.iter().any(|c| c == RHINE), "{contributed:?}");
    // The North Sea: only ETOPO5 covers it.
    s.reset();
    let tile = tile_at(3.0, 54.5, 8);
    let (_, contributed) = composite(&s, tile).await.unwrap();
    assert_eq!(contributed, [ETOPO]);
    assert_eq!((s.read(0), s.read(1)), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_void_in_the_finest_member_is_filled_from_the_next() {
    let void = terrain_ref("lux_void_i16.tif");
    let s = stack(&[void, data(RHINE), data(ETOPO)]).await;
    let mut filled = 0;
    for z in 9..=11u8 {
        let nw = tile_at(5.7, 50.2, z);
        let se = tile_at(6.6, 49.4, z);
        for x in nw.x()..=se.x() {
            for y in nw.y()..=se.y() {
                let tile = TileCoord::new(z, x, y).unwrap();
                let supplied = check_tile(&s, tile).await;
                // Pixels the void file lacks but the original has: the patch.
                let original = {
                    let e = Engine::new(&EngineConfig::default()).unwrap();
                    let src = e.open_path(&data(LUX)).await.unwrap();
                    let req = TileRequest {
                        tile,
                        tile_size: 256,
                        resampling: Resampling::Nearest,
                        bands: Some(vec![1]),
                    };
                    e.read_tile(&[src], &req).await.unwrap()
                };
                let own = own_tiles(&s, tile).await;
                for i in 0..original.pixel_count() {
                    if original.mask()[i] != 0 && own[0].mask()[i] == 0 {
                        // check_tile already proved the composite took member 1 or 2 here.
                        assert!(own[1].mask()[i] != 0 || own[2].mask()[i] != 0);
                        filled += 1;
                    }
                }
                let _ = supplied;
            }
        }
    }
    assert!(filled > 100, "the void patch covers {filled} tile pixels");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_int16_utm_member_over_a_float32_geographic_one() {
    let utm = terrain_ref("lux_utm32n_i16.tif");
    let s = stack(&[utm, data(RHINE)]).await;
    assert!(s.index.sources()[0].source.crs().name().contains("32"));
    let mut total = vec![0; 2];
    for z in 8..=11u8 {
        let nw = tile_at(5.7, 50.2, z);
        let se = tile_at(6.6, 49.4, z);
        for x in nw.x()..=se.x() {
            for y in nw.y()..=se.y() {
                let got = check_tile(&s, TileCoord::new(z, x, y).unwrap()).await;
                for (t, g) in total.iter_mut().zip(got) {
                    *t += g;
                }
            }
        }
    }
    assert!(
        total.iter().all(|&n| n > 1000),
        "pixels per member: {total:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_ranges_and_points() {
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let mut members = Vec::new();
    for (file, priority, max_zoom) in [(LUX, 20, None), (ETOPO, 0, Some(8u8))] {
        let src = engine.open_path(&data(file)).await.unwrap();
        let metadata = dataset_metadata(&engine, &src, &IngestOptions::default())
            .await
            .unwrap();
        members.push((
            MemberInput {
                label: file.into(),
                uri: src.uri().into(),
                metadata,
                priority,
                min_zoom: None,
                max_zoom,
                acquired: None,
                nodata: None,
            },
            src,
        ));
    }
    let index = CollectionIndex::from_sources(&engine, "z", members, Vec::new());
    // Over the North Sea ETOPO5 serves zoom 8 but not zoom 9.
    let sea = |z| {
        index
            .render_request(
                &engine,
                Area::tile(tile_at(3.0, 54.5, z), 256),
                Resampling::Nearest,
                Product::Terrain(Terrain::Raw),
            )
            .unwrap()
    };
    assert_eq!(sea(8).unwrap().candidates.len(), 1);
    assert!(sea(9).is_none());
    // A point in Luxembourg comes from the SRTM file, with its own value there.
    let (h, which) = index
        .sample_point(&engine, 6.13, 49.61, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(index.sources()[which].label, LUX);
    let own = engine
        .sample_point(&[index.sources()[which].source.clone()], 6.13, 49.61)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h, own[0]);
    // Out at sea, at zoom 9, nothing answers.
    assert!(index
        .sample_point(&engine, 3.0, 54.5, Some(9))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blended_pixels_lie_between_the_sources_they_blend() {
    let s = stack(&three_levels()).await;
    let blended = CollectionIndex::from_sources(
        &s.engine,
        "blend",
        s.index
            .sources()
            .iter()
            .map(|m| {
                (
                    MemberInput {
                        label: m.label.clone(),
                        uri: m.source.uri().to_string(),
                        metadata: kiln_catalog::DatasetMetadata {
                            bounds_wgs84: m.bounds,
                            footprint: m.footprint.clone(),
                            valid_percentage: 50.0,
                            bands: Vec::new(),
                            band_count: 1,
                            dtype: DataType::I16,
                            extra: serde_json::Value::Null,
                            header: serde_json::Value::Null,
                        },
                        priority: m.priority,
                        min_zoom: None,
                        max_zoom: None,
                        acquired: None,
                        nodata: None,
                    },
                    m.source.clone(),
                )
            })
            .collect(),
        Vec::new(),
    )
    .with_blend(6);
    let tile = tile_at(6.13, 49.9, 9);
    let req = |index: &CollectionIndex| {
        index
            .render_request(
                &s.engine,
                Area::tile(tile, 256),
                Resampling::Nearest,
                Product::Terrain(Terrain::Raw),
            )
            .unwrap()
            .unwrap()
            .request
    };
    let sharp = s.engine.render_values(&req(&s.index)).await.unwrap();
    let soft = s.engine.render_values(&req(&blended)).await.unwrap();
    let own = own_tiles(&s, tile).await;
    let (mut same, mut between) = (0, 0);
    for i in 0..sharp.pixel_count() {
        assert_eq!(sharp.mask()[i], soft.mask()[i]);
        if sharp.mask()[i] == 0 {
            continue;
        }
        let (a, b) = (value(&sharp, i), value(&soft, i));
        if a == b {
            same += 1;
            continue;
        }
        // A blended pixel lies between its winner's value and a later source's value.
        let k = own.iter().position(|r| r.mask()[i] != 0).unwrap();
        let later: Vec<f64> = own[k + 1..]
            .iter()
            .filter(|r| r.mask()[i] != 0)
            .map(|r| value(r, i))
            .collect();
        assert!(
            later
                .iter()
                .any(|&l| (a.min(l) - 1e-3..=a.max(l) + 1e-3).contains(&b)),
            "pixel {i}: {b} is not between {a} and {later:?}"
        );
        between += 1;
    }
    assert!(
        between > 50 && same > between,
        "{between} blended, {same} kept"
    );
}
