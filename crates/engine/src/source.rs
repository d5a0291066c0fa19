//! Open sources, their caches, and the tile pipeline.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use kiln_cog::decode::{decode_block, sparse_block, Block};
use kiln_cog::{ImageIfd, TiffHeader};
use kiln_core::tms::{TileCoord, TileMatrixSet};
use kiln_core::warp::{
    self, GridSpec, NearestPicks, PixelWindow, Reprojection, Resampling, SourceSamples,
};
use kiln_core::{Crs, DataType, GeoTransform, Raster};
use kiln_storage::{ByteRange, ByteSource, SourceIdentity};

use crate::header_fetch::fetch_header;
use crate::render::MAX_GRID_PX;
use crate::window::{assemble, BlockId, MaskRule, Plane, WindowPlan};
use crate::{CpuPool, EngineError};

/// Sizes of the engine's caches and pool.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Bytes of decoded blocks kept in memory.
    pub block_cache_bytes: u64,
    /// Number of parsed headers kept.
    pub header_cache_entries: u64,
    /// CPU worker threads (0 = one per core).
    pub cpu_threads: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            block_cache_bytes: 512 * 1024 * 1024,
            header_cache_entries: 10_000,
            cpu_threads: 0,
        }
    }
}

/// A source whose header has been read: everything needed to plan reads without I/O.
#[derive(Debug)]
pub struct OpenSource {
    /// Process-unique number, the block cache's key prefix.
    id: u64,
    source: Arc<dyn ByteSource>,
    header: Arc<TiffHeader>,
    transform: GeoTransform,
    crs: Crs,
    /// Transformers to and from the tile CRS, built once per source.
    to_tiles: Reprojection,
    /// Per level: the source points the tile footprints check, projected once.
    samples: Vec<OnceLock<Arc<SourceSamples>>>,
}

impl OpenSource {
    pub fn uri(&self) -> &str {
        &self.source.identity().uri
    }

    /// The byte source, for whole-image scans (statistics) that bypass the block cache.
    pub(crate) fn byte_source(&self) -> &Arc<dyn ByteSource> {
        &self.source
    }

    pub fn header(&self) -> &Arc<TiffHeader> {
        &self.header
    }

    /// The full-resolution image (opening checked that there is one).
    pub fn full_image(&self) -> Result<&ImageIfd, EngineError> {
        self.header
            .images
            .first()
            .ok_or_else(|| EngineError::BadSource {
                uri: self.uri().to_string(),
                reason: "no image".into(),
                cause: None,
            })
    }

    pub fn identity(&self) -> &SourceIdentity {
        self.source.identity()
    }

    /// Full-resolution pixel-corner transform.
    pub fn transform(&self) -> &GeoTransform {
        &self.transform
    }

    pub fn crs(&self) -> &Crs {
        &self.crs
    }

    /// The pixel-corner transform of image `level` (0 = full resolution).
    /// The footprint samples of level `level` (see [`SourceSamples`]), made on first use.
    fn level_samples(&self, level: usize) -> Result<Arc<SourceSamples>, EngineError> {
        let cell = self
            .samples
            .get(level)
            .ok_or_else(|| EngineError::Internal {
                reason: format!("level {level} missing"),
            })?;
        if let Some(s) = cell.get() {
            return Ok(s.clone());
        }
        let ifd = &self.header.images[level];
        let samples = SourceSamples::new(
            &self.to_tiles,
            &self.level_transform(level),
            ifd.width as usize,
            ifd.height as usize,
        )
        .map_err(|e| EngineError::from_core(self.uri(), e))?;
        // A racing thread made the same samples; either copy serves.
        Ok(cell.get_or_init(|| Arc::new(samples)).clone())
    }

    pub(crate) fn level_transform(&self, level: usize) -> GeoTransform {
        let images = &self.header.images;
        match (images.first(), images.get(level)) {
            (Some(full), Some(ifd)) => self.transform.scaled(
                full.width as usize,
                full.height as usize,
                ifd.width as usize,
                ifd.height as usize,
            ),
            _ => self.transform,
        }
    }

    /// 0-based index of the alpha band, if the file has one.
    pub fn alpha_band(&self) -> Option<usize> {
        let img = self.header.images.first()?;
        let spp = usize::from(img.samples_per_pixel);
        let extra = img.extra_samples.len();
        img.extra_samples
            .iter()
            .position(|&e| e == 1 || e == 2)
            .map(|i| spp - extra + i)
    }

    /// The bands a tile returns by default: all but alpha (as rio-tiler does).
    pub fn default_bands(&self) -> Vec<usize> {
        let n = self
            .header
            .images
            .first()
            .map_or(0, |i| usize::from(i.samples_per_pixel));
        let alpha = self.alpha_band();
        (0..n).filter(|b| Some(*b) != alpha).collect()
    }

    pub(crate) fn mask_rule(&self) -> MaskRule {
        if self.header.masks.first().is_some_and(Option::is_some) {
            MaskRule::Internal
        } else if let Some(a) = self.alpha_band() {
            MaskRule::Alpha(a)
        } else if let Some(nd) = self.header.nodata {
            MaskRule::Nodata(nd)
        } else {
            MaskRule::AllValid
        }
    }
}

/// A composite read and its trace.
#[derive(Debug, Clone)]
pub struct Traced {
    pub raster: Raster,
    /// Sources whose window overlapped the grid and were read (indices, in order).
    pub read: Vec<usize>,
    /// Sources that filled at least one pixel no earlier source had.
    pub contributed: Vec<usize>,
}

/// What tile to render from a list of sources.
#[derive(Debug, Clone)]
pub struct TileRequest {
    pub tile: TileCoord,
    pub tile_size: usize,
    pub resampling: Resampling,
    /// 1-based band numbers; `None` = all bands except alpha.
    pub bands: Option<Vec<usize>>,
}

/// Process-wide state: caches and the CPU pool. Cheap to share (`Arc` inside).
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    headers: moka::future::Cache<SourceIdentity, Arc<OpenSource>>,
    blocks: moka::sync::Cache<(u64, BlockId), Arc<Block>>,
    pool: CpuPool,
    next_id: AtomicU64,
    tms: TileMatrixSet,
    /// Read plans (level, window and nearest picks) by source grid, CRS and destination
    /// grid: the sources of one request on the same grid (Terracotta's single-band files of
    /// an RGB tile) plan and map their pixels once. `None`: the source misses the grid.
    plans: moka::future::Cache<PlanKey, Option<Arc<ReadPlan>>>,
    /// Block lookups answered from `blocks` / not, since start.
    block_hits: AtomicU64,
    block_misses: AtomicU64,
}

/// Bytes of read plans kept, nearest picks included (about 120 tiles of 256 px).
const PLAN_CACHE_BYTES: u64 = 32 << 20;

/// Where a read onto a grid comes from: a level and a window of it, and for nearest
/// resampling the source pixel of every destination pixel (which depends on the grids only).
#[derive(Debug)]
struct ReadPlan {
    level: usize,
    window: PixelWindow,
    picks: Option<NearestPicks>,
}

/// What a read plan depends on: the source's CRS, geotransform and level sizes, the
/// destination grid and the resampling (the window's margin).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PlanKey {
    epsg: Option<u32>,
    proj4: String,
    transform: [u64; 6],
    levels: Vec<(u32, u32)>,
    dst_transform: [u64; 6],
    dst_size: (usize, usize),
    resampling: Resampling,
}

fn transform_bits(t: &GeoTransform) -> [u64; 6] {
    t.0.map(f64::to_bits)
}

/// Counters of the decoded-block cache since the engine started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockCacheStats {
    /// Block lookups answered from the cache.
    pub hits: u64,
    /// Block lookups that had to read and decode the block.
    pub misses: u64,
    /// Blocks held (moka's estimate, which lags behind recent inserts).
    pub entries: u64,
    /// Bytes held, as weighed (moka's estimate, lagging the same way).
    pub bytes: u64,
}

impl Engine {
    pub fn new(config: &EngineConfig) -> Result<Self, EngineError> {
        let blocks = moka::sync::Cache::builder()
            // What an entry really keeps: the samples' allocation (shrunk to fit before
            // insertion), the block header, the Arc and moka's own entry (~200 bytes).
            .weigher(|_k, b: &Arc<Block>| {
                u32::try_from(b.samples.capacity_bytes().saturating_add(256)).unwrap_or(u32::MAX)
            })
            .max_capacity(config.block_cache_bytes)
            .build();
        Ok(Self {
            inner: Arc::new(Inner {
                headers: moka::future::Cache::new(config.header_cache_entries),
                blocks,
                pool: CpuPool::new(config.cpu_threads)?,
                next_id: AtomicU64::new(1),
                tms: TileMatrixSet::web_mercator_quad(),
                plans: moka::future::Cache::builder()
                    .weigher(|_k, p: &Option<Arc<ReadPlan>>| {
                        let picks = p
                            .as_ref()
                            .and_then(|p| p.picks.as_ref())
                            .map_or(0, NearestPicks::heap_bytes);
                        u32::try_from(picks.saturating_add(256)).unwrap_or(u32::MAX)
                    })
                    .max_capacity(PLAN_CACHE_BYTES)
                    // Useful while the layers of a request are read; a tile repeated later
                    // comes from the tile cache.
                    .time_to_idle(std::time::Duration::from_secs(10))
                    .build(),
                block_hits: AtomicU64::new(0),
                block_misses: AtomicU64::new(0),
            }),
        })
    }

    pub fn pool(&self) -> &CpuPool {
        &self.inner.pool
    }

    /// Which level and window of `src` a read onto `grid` needs ([`plan_window`]), with the
    /// nearest picks, made once on the CPU pool for all the sources of one request with the
    /// same grids and CRS. A planned read is a cache lookup; concurrent callers await the
    /// first one's plan asynchronously, so no pool thread waits on another.
    async fn plan_read(
        &self,
        src: &Arc<OpenSource>,
        grid: &GridSpec,
        resampling: Resampling,
    ) -> Result<Option<Arc<ReadPlan>>, EngineError> {
        let key = plan_key(src, grid, resampling);
        if let Some(plan) = self.inner.plans.get(&key).await {
            return Ok(plan);
        }
        let (src2, grid2, pool) = (src.clone(), *grid, self.inner.pool.clone());
        let make = async move {
            pool.run(move || -> Result<Option<Arc<ReadPlan>>, EngineError> {
                let Some((level, window)) = plan_window(&src2, &grid2, resampling)? else {
                    return Ok(None);
                };
                // Nearest needs neither kernels nor nodata: the picks depend on the grids
                // only, and are shared by the sources of one request on the same grid.
                let picks = if resampling == Resampling::Nearest {
                    let transform = window.transform(&src2.level_transform(level));
                    let picks = NearestPicks::new(
                        window.width,
                        window.height,
                        &transform,
                        src2.to_tiles.dst_to_src(),
                        &grid2,
                    )
                    .map_err(|e| EngineError::from_core(src2.uri(), e))?;
                    Some(picks)
                } else {
                    None
                };
                Ok(Some(Arc::new(ReadPlan {
                    level,
                    window,
                    picks,
                })))
            })
            .await?
        };
        self.inner
            .plans
            .try_get_with(key, make)
            .await
            .map_err(|e: Arc<EngineError>| (*e).clone())
    }

    /// The decoded-block cache's counters (cheap: atomics and moka's estimates).
    pub fn block_cache_stats(&self) -> BlockCacheStats {
        BlockCacheStats {
            hits: self.inner.block_hits.load(Ordering::Relaxed),
            misses: self.inner.block_misses.load(Ordering::Relaxed),
            entries: self.inner.blocks.entry_count(),
            bytes: self.inner.blocks.weighted_size(),
        }
    }

    pub fn tile_matrix_set(&self) -> &TileMatrixSet {
        &self.inner.tms
    }

    /// Opens the source a URI or path names (see [`kiln_storage::open`]), reusing the parsed
    /// header when the source is unchanged.
    pub async fn open_uri(&self, uri: &str) -> Result<Arc<OpenSource>, EngineError> {
        let src = kiln_storage::open(uri).await?;
        self.open(src).await
    }

    /// Opens a local file, reusing the parsed header when the file is unchanged.
    pub async fn open_path(&self, path: &Path) -> Result<Arc<OpenSource>, EngineError> {
        let src = kiln_storage::open_path(path).await?;
        self.open(src).await
    }

    /// Opens a local file for whole-image pixel reads only (`optimize`): a file without
    /// georeferencing or CRS is accepted, with an identity transform and a WGS 84 placeholder
    /// CRS that nothing reads. Not cached, so a tile request never sees the placeholder.
    pub async fn open_path_for_pixels(&self, path: &Path) -> Result<Arc<OpenSource>, EngineError> {
        let src = kiln_storage::open_path(path).await?;
        let mut header = fetch_header(src.as_ref()).await?;
        let georef = header.georef.get_or_insert_with(|| kiln_cog::Georef {
            transform: GeoTransform([0.0, 1.0, 0.0, 0.0, 0.0, -1.0]),
            crs: None,
            raster_type: kiln_cog::RasterType::PixelIsArea,
            crs_notes: Vec::new(),
        });
        if georef.crs.is_none() {
            georef.crs = Some(Crs::wgs84());
        }
        build_open_source(&self.inner, src, header)
    }

    /// Describes a source (a URI or path) from its header alone (works for files without a
    /// CRS too).
    pub async fn describe_uri(&self, uri: &str) -> Result<crate::SourceInfo, EngineError> {
        let src = kiln_storage::open(uri).await?;
        let header = fetch_header(src.as_ref()).await?;
        let problems = header.cog_problems();
        crate::source_info(&src.identity().uri, &header, problems).ok_or_else(|| {
            EngineError::BadSource {
                uri: src.identity().uri.clone(),
                reason: "no image".into(),
                cause: None,
            }
        })
    }

    /// Opens any byte source, reusing the parsed header cached for its identity.
    pub async fn open(&self, source: Arc<dyn ByteSource>) -> Result<Arc<OpenSource>, EngineError> {
        let identity = source.identity().clone();
        let inner = self.inner.clone();
        self.inner
            .headers
            .try_get_with(identity, async move {
                let header = fetch_header(source.as_ref()).await?;
                build_open_source(&inner, source, header)
            })
            .await
            .map_err(|e: Arc<EngineError>| (*e).clone())
    }

    /// Opens a byte source from a header parsed earlier (stored in a catalog), reading no
    /// bytes; the result is cached under the source's identity as [`Self::open`] would cache
    /// it. The caller vouches that `header` belongs to this identity (same path, size and
    /// mtime); a changed file has a new identity, so the catalog entry must be refreshed.
    pub async fn open_with_header(
        &self,
        source: Arc<dyn ByteSource>,
        header: TiffHeader,
    ) -> Result<Arc<OpenSource>, EngineError> {
        let identity = source.identity().clone();
        let inner = self.inner.clone();
        self.inner
            .headers
            .try_get_with(identity, async move {
                build_open_source(&inner, source, header)
            })
            .await
            .map_err(|e: Arc<EngineError>| (*e).clone())
    }

    /// The same source with its nodata value replaced (a collection member's void override):
    /// pixels equal to `nodata` are invalid unless the file has an internal mask or an alpha
    /// band. A new source for the block cache, since sparse blocks read as the nodata value.
    pub fn with_nodata(&self, src: &Arc<OpenSource>, nodata: f64) -> Arc<OpenSource> {
        let mut header = (*src.header).clone();
        header.nodata = Some(nodata);
        Arc::new(OpenSource {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            source: src.source.clone(),
            header: Arc::new(header),
            transform: src.transform,
            crs: src.crs.clone(),
            to_tiles: src.to_tiles.clone(),
            samples: src.samples.clone(),
        })
    }

    /// Reads a tile of raw values: the first source that has data for a pixel wins
    /// (precedence order), later sources fill only the pixels still empty.
    pub async fn read_tile(
        &self,
        sources: &[Arc<OpenSource>],
        req: &TileRequest,
    ) -> Result<Raster, EngineError> {
        // A size that does not fit u32 is refused by `area_grid` like any other bad size.
        let size = u32::try_from(req.tile_size).unwrap_or(u32::MAX);
        let grid = self.area_grid(&crate::Area::tile(req.tile, size))?;
        self.read_grid(sources, &grid, req.bands.clone(), req.resampling)
            .await
    }

    /// Reads raw values on any grid in the tile CRS (previews, point samples), compositing
    /// `sources` by precedence as [`Self::read_tile`] does. `bands` are 1-based; `None` = all
    /// but alpha. The grid is bounded to [`MAX_GRID_PX`] pixels a side.
    pub async fn read_grid(
        &self,
        sources: &[Arc<OpenSource>],
        grid: &GridSpec,
        bands: Option<Vec<usize>>,
        resampling: Resampling,
    ) -> Result<Raster, EngineError> {
        Ok(self
            .read_grid_traced(sources, grid, bands, resampling)
            .await?
            .raster)
    }

    /// [`Self::read_grid`], also telling which sources were read and which of them filled
    /// pixels (indices into `sources`).
    pub async fn read_grid_traced(
        &self,
        sources: &[Arc<OpenSource>],
        grid: &GridSpec,
        bands: Option<Vec<usize>>,
        resampling: Resampling,
    ) -> Result<Traced, EngineError> {
        if grid.width == 0
            || grid.height == 0
            || grid.width > MAX_GRID_PX
            || grid.height > MAX_GRID_PX
        {
            return Err(EngineError::bad_request(
                "size",
                format!(
                    "{}x{} pixels: each side must be 1 to {MAX_GRID_PX}",
                    grid.width, grid.height
                ),
            ));
        }
        // Every tile of a request has one type, whichever sources it touches: the smallest
        // that holds every source's values exactly.
        let dtype = sources
            .iter()
            .map(|s| s.header.images[0].dtype)
            .reduce(DataType::promote)
            .unwrap_or(DataType::U8);
        let mut out: Option<Raster> = None;
        let (mut read, mut contributed) = (Vec::new(), Vec::new());
        for (i, src) in sources.iter().enumerate() {
            let Some(r) = self
                .read_source(src, grid, bands.as_deref(), resampling)
                .await?
            else {
                continue;
            };
            read.push(i);
            let fills = match &out {
                None => r.mask().iter().any(|&m| m != 0),
                Some(acc) => acc
                    .mask()
                    .iter()
                    .zip(r.mask())
                    .any(|(&a, &b)| a == 0 && b != 0),
            };
            if fills {
                contributed.push(i);
            }
            let acc = match out.take() {
                None => r,
                Some(acc) => acc
                    .composite_over(&r)
                    .map_err(|e| EngineError::Unsupported {
                        uri: src.uri().to_string(),
                        reason: e.to_string(),
                        cause: Some(Arc::new(e)),
                    })?,
            };
            let full = acc.is_fully_valid();
            out = Some(acc);
            if full {
                break;
            }
        }
        let raster = match out {
            Some(r) => r.convert(dtype),
            None => {
                let nb = match sources.first() {
                    Some(s) => bands
                        .as_ref()
                        .map_or_else(|| s.default_bands().len(), Vec::len),
                    None => 1,
                };
                let empty = Raster::empty(grid.width, grid.height, nb, dtype)
                    .map_err(|e| EngineError::bad_request("bands", e.to_string()))?;
                empty.with_transform(grid.transform)
            }
        };
        Ok(Traced {
            raster,
            read,
            contributed,
        })
    }

    async fn read_source(
        &self,
        src: &Arc<OpenSource>,
        grid: &GridSpec,
        bands: Option<&[usize]>,
        resampling: Resampling,
    ) -> Result<Option<Raster>, EngineError> {
        let bands = match bands {
            None => src.default_bands(),
            Some(b) => {
                let n = usize::from(src.header.images[0].samples_per_pixel);
                b.iter()
                    .map(|&i| {
                        if i == 0 || i > n {
                            Err(EngineError::bad_request(
                                "bands",
                                format!(
                                    "band {i} does not exist ({} has {n} bands, numbered from 1)",
                                    src.uri()
                                ),
                            ))
                        } else {
                            Ok(i - 1)
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        let Some(read_plan) = self.plan_read(src, grid, resampling).await? else {
            return Ok(None);
        };
        let plan = WindowPlan {
            level: read_plan.level,
            window: read_plan.window,
            bands,
            mask: src.mask_rule(),
        };
        let blocks = self.fetch_blocks(src, &plan).await?;
        let (src2, grid2, resampling) = (src.clone(), *grid, resampling);
        let raster = self
            .inner
            .pool
            .run(move || {
                let window = assemble(
                    &src2.header,
                    &plan,
                    &blocks,
                    &src2.level_transform(plan.level),
                )?;
                let ifd = &src2.header.images[plan.level];
                // A source already in the tile CRS is read by rio-tiler without a warp, with
                // RasterIO's resampling, which leaves each band's own nodata samples out of
                // that band's kernel; GDAL's warper (every other source) uses the dataset mask.
                let options = warp::WarpOptions {
                    band_nodata: match plan.mask {
                        MaskRule::Nodata(nd) if src2.crs.is_web_mercator() => Some(nd),
                        _ => None,
                    },
                    // rio-tiler's `add_alpha`: neither nodata nor an alpha band.
                    dst_alpha: matches!(plan.mask, MaskRule::Internal | MaskRule::AllValid),
                    level: Some((plan.window, ifd.width as usize, ifd.height as usize)),
                };
                let window_transform = window.transform().ok_or_else(|| EngineError::Internal {
                    reason: "an assembled window has no grid".into(),
                })?;
                if let Some(picks) = &read_plan.picks {
                    return picks
                        .apply(&window)
                        .map_err(|e| EngineError::from_core(src2.uri(), e));
                }
                // The source's prebuilt transformers: no PROJ definition parsed per tile.
                warp::warp_with_options(
                    &src2.to_tiles,
                    &window,
                    window_transform,
                    &grid2,
                    resampling,
                    options,
                )
                .map_err(|e| EngineError::from_core(src2.uri(), e))
            })
            .await??;
        Ok(Some(raster))
    }

    /// Decoded blocks for a plan: from the cache, or fetched (coalesced) and decoded on the pool.
    async fn fetch_blocks(
        &self,
        src: &Arc<OpenSource>,
        plan: &WindowPlan,
    ) -> Result<HashMap<BlockId, Arc<Block>>, EngineError> {
        let mut have = HashMap::new();
        let mut missing = Vec::new();
        for id in plan.blocks(&src.header) {
            match self.inner.blocks.get(&(src.id, id)) {
                Some(b) => {
                    have.insert(id, b);
                }
                None => missing.push(id),
            }
        }
        let inner = &self.inner;
        inner
            .block_hits
            .fetch_add(have.len() as u64, Ordering::Relaxed);
        inner
            .block_misses
            .fetch_add(missing.len() as u64, Ordering::Relaxed);
        if missing.is_empty() {
            return Ok(have);
        }
        let mut ranges = Vec::with_capacity(missing.len());
        let mut present = Vec::with_capacity(missing.len());
        for id in &missing {
            let ifd = ifd_of(&src.header, *id).ok_or_else(|| EngineError::Internal {
                reason: format!("no image for block {id:?}"),
            })?;
            match ifd.block_range(id.index) {
                Some((offset, len)) => {
                    ranges.push(ByteRange::new(offset, len));
                    present.push(true);
                }
                None => present.push(false),
            }
        }
        let fetched: Vec<Bytes> = src.source.read_ranges(&ranges).await?;
        let src2 = src.clone();
        let decoded = self
            .inner
            .pool
            .run(move || {
                use rayon::prelude::*;
                let mut bytes_iter = fetched.into_iter();
                let jobs: Vec<(BlockId, Option<Bytes>)> = missing
                    .into_iter()
                    .zip(present)
                    .map(|(id, p)| (id, if p { bytes_iter.next() } else { None }))
                    .collect();
                jobs.into_par_iter()
                    .map(|(id, bytes)| {
                        decode_one(&src2, id, bytes.as_deref()).map(|mut b| {
                            b.samples.shrink_to_fit();
                            (id, Arc::new(b))
                        })
                    })
                    .collect::<Result<Vec<_>, EngineError>>()
            })
            .await??;
        for (id, block) in decoded {
            self.inner.blocks.insert((src.id, id), block.clone());
            have.insert(id, block);
        }
        Ok(have)
    }
}

/// The plan cache's key: everything [`plan_window`] depends on.
fn plan_key(src: &OpenSource, grid: &GridSpec, resampling: Resampling) -> PlanKey {
    PlanKey {
        epsg: src.crs.epsg,
        proj4: src.crs.proj4.clone(),
        transform: transform_bits(&src.transform),
        levels: src
            .header
            .images
            .iter()
            .map(|i| (i.width, i.height))
            .collect(),
        dst_transform: transform_bits(&grid.transform),
        dst_size: (grid.width, grid.height),
        resampling,
    }
}

/// Everything about a source that follows from its parsed header: georeferencing, CRS with
/// its datum shift pinned, and the transformers to the tile CRS.
fn build_open_source(
    inner: &Inner,
    source: Arc<dyn ByteSource>,
    header: TiffHeader,
) -> Result<Arc<OpenSource>, EngineError> {
    let uri = source.identity().uri.clone();
    let georef = header
        .georef
        .clone()
        .ok_or_else(|| EngineError::Unsupported {
            uri: uri.clone(),
            reason: "no georeferencing (no geotransform or tie points)".into(),
            cause: None,
        })?;
    let crs = georef.crs.clone().ok_or_else(|| EngineError::Unsupported {
        uri: uri.clone(),
        reason: "no coordinate reference system (no GeoKeys)".into(),
        cause: None,
    })?;
    let Some(full) = header.images.first() else {
        return Err(EngineError::BadSource {
            uri,
            reason: "no image".into(),
            cause: None,
        });
    };
    let crs = resolve_datum_shift(crs, &georef.transform, full.width, full.height);
    let to_tiles =
        Reprojection::new(&crs, inner.tms.crs()).map_err(|e| EngineError::from_core(&uri, e))?;
    let samples = header.images.iter().map(|_| OnceLock::new()).collect();
    Ok(Arc::new(OpenSource {
        id: inner.next_id.fetch_add(1, Ordering::Relaxed),
        source,
        header: Arc::new(header),
        transform: georef.transform,
        crs,
        to_tiles,
        samples,
    }))
}

/// Pins the datum shift of a CRS whose shift to WGS 84 depends on the location (NAD27) to the
/// one PROJ picks at the centre of the image, as GDAL would for this source.
pub(crate) fn resolve_datum_shift(
    crs: Crs,
    transform: &GeoTransform,
    width: u32,
    height: u32,
) -> Crs {
    if !crs.is_nad27() {
        return crs;
    }
    let (x, y) = transform.apply(f64::from(width) / 2.0, f64::from(height) / 2.0);
    let centre = kiln_core::crs::Transformer::new(&crs, &Crs::wgs84())
        .ok()
        .and_then(|t| t.transform_point(x, y));
    match centre {
        Some((lon, lat)) => crs.with_datum_shift_at(lon, lat),
        None => crs,
    }
}

fn ifd_of(header: &TiffHeader, id: BlockId) -> Option<&kiln_cog::ImageIfd> {
    match id.plane {
        Plane::Image => header.images.get(id.level),
        Plane::Mask => header.masks.get(id.level).and_then(Option::as_ref),
    }
}

/// Decodes one block; a sparse block (no bytes in the file) reads as GDAL reads it.
fn decode_one(src: &OpenSource, id: BlockId, bytes: Option<&[u8]>) -> Result<Block, EngineError> {
    let ifd = ifd_of(&src.header, id).ok_or_else(|| EngineError::Internal {
        reason: format!("no image for block {id:?}"),
    })?;
    match bytes {
        Some(b) => decode_block(&src.header, ifd, id.index, b)
            .map_err(|e| EngineError::from_cog(src.uri(), e)),
        None => Ok(sparse_block(&src.header, ifd, id.index)),
    }
}

/// The overview level and the window of it that `grid` needs from `src` (None: no overlap):
/// what [`Engine::plan_read`] caches.
fn plan_window(
    src: &OpenSource,
    grid: &GridSpec,
    resampling: Resampling,
) -> Result<Option<(usize, PixelWindow)>, EngineError> {
    let dst_crs = Crs::web_mercator();
    let sizes: Vec<(usize, usize)> = src
        .header
        .images
        .iter()
        .map(|i| (i.width as usize, i.height as usize))
        .collect();
    let level = warp::choose_overview_with(
        &src.to_tiles,
        grid,
        &dst_crs,
        &src.transform,
        &src.crs,
        &sizes,
        resampling,
    )
    .map_err(|e| EngineError::from_core(src.uri(), e))?;
    let samples = src.level_samples(level)?;
    let window = warp::warp_source_window_sampled(&src.to_tiles, grid, &samples, resampling)
        .map_err(|e| EngineError::from_core(src.uri(), e))?;
    Ok(window.map(|window| (level, window)))
}
