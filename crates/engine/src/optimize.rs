//! `kiln optimize`: any GeoTIFF Kiln reads → a Cloud-Optimized GeoTIFF, in one streaming pass.
//!
//! The full-resolution image is read block row by block row ([`scan_level`], the same reader
//! the tiles and statistics use, so every codec and layout Kiln reads is accepted). Each
//! completed row band goes two ways: into the strip of output blocks of level 0, and into a
//! cascade of overview reducers ([`OverviewPyramid`]: level N+1 from level N, as GDAL's COG
//! driver builds them) whose output rows fill the strips of the overview levels. A strip that
//! is full is cut into blocks, encoded in parallel on the CPU pool and appended to the
//! [`CogWriter`]'s spool; at the end the writer lays the file out as GDAL's COG driver does
//! (IFDs first, data from the coarsest level to the full resolution) in a temporary file beside
//! the target and renames it. Memory is bounded by one source block row plus one strip of
//! `block_size` rows per level, not by the raster size.
//!
//! Carried over: every band (or the `bands` asked for), data type, nodata, alpha (as an alpha
//! band), the internal mask, photometric interpretation (YCbCr JPEG is decoded to RGB), the
//! palette, GDAL_METADATA and the georeferencing tags verbatim.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_cog::{
    cleanup_stale_temps, BlockData, CogSpec, CogWriteError, CogWriter, Compression, EncodeOptions,
    MaskOrImage, Photometric, RawGeoTags, SampleLayout,
};
use kiln_core::crs::Transformer;
use kiln_core::overview::{overview_sizes, OverviewOptions, OverviewPyramid, OverviewResampling};
use kiln_core::warp::{GridSpec, PixelWindow, Resampling};
use kiln_core::{Crs, GeoTransform};
use kiln_core::{DataType, Raster};
use rayon::prelude::*;

use crate::header_fetch::fetch_geo_tags;
use crate::info::transform_bounds;
use crate::stats::scan_level;
use crate::window::MaskRule;
use crate::{Engine, EngineError, OpenSource};

/// What to write.
#[derive(Debug, Clone)]
pub struct OptimizeOptions {
    /// Tile side of every level: 256 or 512.
    pub block_size: u32,
    /// Codec (`None`, `Deflate`, `Zstd`, `Lzw`, `Webp`), level and predictor.
    pub encode: EncodeOptions,
    /// Bands to keep (0-based, in output order); `None` keeps them all.
    pub bands: Option<Vec<usize>>,
    /// Overview resampling; `None` picks `mode` for paletted data, else `average`.
    pub resampling: Option<OverviewResampling>,
    /// Warp to Web Mercator (EPSG:3857) on the way, with this resampling (the tile code's
    /// warp, so the COG's pixels are the tiles' pixels).
    pub reproject: Option<Resampling>,
    /// Write an internal mask from the source's validity (nodata, alpha or mask) even when the
    /// source has none of its own.
    pub add_mask: bool,
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        Self {
            block_size: 512,
            encode: EncodeOptions::new(Compression::Deflate),
            bands: None,
            resampling: None,
            reproject: None,
            add_mask: false,
        }
    }
}

/// Progress of one file, reported as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizeProgress {
    /// Full-resolution rows read (and their overview rows made) so far, of `total`.
    Rows { done: u64, total: u64 },
    /// All blocks encoded; the file is being laid out (`bytes` of encoded data).
    Writing { bytes: u64 },
}

/// A progress callback (called from the CPU pool).
pub type ProgressFn = Arc<dyn Fn(OptimizeProgress) + Send + Sync>;

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizeReport {
    pub output: PathBuf,
    pub width: u32,
    pub height: u32,
    pub bands: usize,
    pub dtype: DataType,
    /// Sizes of the overview levels, finest first.
    pub overviews: Vec<(u32, u32)>,
    pub resampling: OverviewResampling,
    pub mask: bool,
    /// Size of the output file in bytes.
    pub bytes: u64,
}

/// Rewrites `input` as a COG at `output` (see the module docs). Stale temporary files of an
/// earlier, killed run for the same target are removed first; on failure nothing is left at
/// `output`.
pub async fn optimize_file(
    engine: &Engine,
    input: &Path,
    output: &Path,
    opts: &OptimizeOptions,
    progress: Option<ProgressFn>,
) -> Result<OptimizeReport, EngineError> {
    let src = engine.open_path_for_pixels(input).await?;
    let uri = src.uri().to_string();
    if opts.block_size != 256 && opts.block_size != 512 {
        return Err(EngineError::bad_request(
            "block_size",
            format!("must be 256 or 512, not {}", opts.block_size),
        ));
    }
    let geo = fetch_geo_tags(src.byte_source().as_ref()).await?;
    let warp = match opts.reproject {
        Some(r) => Some((mercator_grid(&src)?, r)),
        None => None,
    };
    let plan = Plan::new(&src, opts, geo, warp.as_ref().map(|(g, _)| g))?;
    if let (Some(dir), Some(name)) = (output.parent(), output.file_name()) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        cleanup_stale_temps(dir, &name.to_string_lossy()).map_err(|e| write_err(&uri, e))?;
    }
    let writer = CogWriter::create(output, plan.spec.clone()).map_err(|e| write_err(&uri, e))?;
    let state =
        State::new(&plan, writer, progress.clone()).map_err(|e| EngineError::from_core(&uri, e))?;
    let state = match warp {
        None => {
            scan_level(engine, &src, 0, &plan.bands, state, State::add)
                .await?
                .0
        }
        Some((grid, resampling)) => {
            warp_rows(engine, &src, &plan, &grid, resampling, state).await?
        }
    };
    let bytes = engine
        .pool()
        .run(move || state.finish())
        .await?
        .map_err(|e| match e {
            Failure::Write(e) => write_err(&uri, e),
            Failure::Encode(e) => EngineError::Internal {
                reason: format!("encoding a block of the COG of {uri}: {e}"),
            },
            Failure::Core(e) => EngineError::from_core(&uri, e),
        })?;
    Ok(OptimizeReport {
        output: output.to_path_buf(),
        width: plan.spec.width,
        height: plan.spec.height,
        bands: plan.bands.len(),
        dtype: plan.spec.dtype,
        overviews: plan.spec.overviews.clone(),
        resampling: plan.resampling,
        mask: plan.spec.mask,
        bytes,
    })
}

fn write_err(uri: &str, e: CogWriteError) -> EngineError {
    EngineError::Internal {
        reason: format!("writing the COG of {uri}: {e}"),
    }
}

/// The decisions made before reading any pixel.
struct Plan {
    spec: CogSpec,
    /// The pixel-corner transform of level 0 (the warped grid's, or the source's).
    transform: GeoTransform,
    /// Source bands read, 0-based, in output order.
    bands: Vec<usize>,
    resampling: OverviewResampling,
    overview: OverviewOptions,
}

impl Plan {
    fn new(
        src: &Arc<OpenSource>,
        opts: &OptimizeOptions,
        geo: RawGeoTags,
        warp: Option<&GridSpec>,
    ) -> Result<Self, EngineError> {
        let header = src.header();
        let full = src.full_image()?;
        let n = usize::from(full.samples_per_pixel);
        let bands = match &opts.bands {
            Some(b) => {
                if b.is_empty() {
                    return Err(EngineError::bad_request("bands", "give at least one band"));
                }
                if let Some(bad) = b.iter().find(|&&i| i >= n) {
                    return Err(EngineError::bad_request(
                        "bands",
                        format!("band {} does not exist: the file has {n} band(s)", bad + 1),
                    ));
                }
                b.clone()
            }
            None => (0..n).collect(),
        };
        let alpha = src.alpha_band();
        // A colour map makes a single band paletted, whatever the photometric tag says (GDAL
        // reads it so even from MinIsWhite files).
        let is_palette = full.palette.is_some() && bands.len() == 1;
        let colour = matches!(full.photometric, Photometric::Rgb | Photometric::YCbCr);
        let rgb_kept = colour && bands.len() >= 3 && bands[..3] == [0, 1, 2];
        let photometric = if is_palette {
            Photometric::Palette
        } else if rgb_kept {
            Photometric::Rgb
        } else {
            Photometric::MinIsBlack
        };
        let base = match photometric {
            Photometric::Rgb => 3,
            _ => 1,
        };
        // ExtraSamples: the source's own value for a kept alpha band, unspecified otherwise.
        let extra_samples: Vec<u16> = bands
            .iter()
            .skip(base)
            .map(|&b| {
                if Some(b) == alpha {
                    alpha_kind(src, b)
                } else {
                    0
                }
            })
            .collect();
        let mut encode = opts.encode;
        if encode.compression == Compression::Jpeg || encode.compression == Compression::PackBits {
            return Err(EngineError::bad_request(
                "compression",
                "jpeg and packbits output are not supported; use deflate, zstd, lzw, webp or none",
            ));
        }
        if encode.compression == Compression::Webp
            && !(full.dtype == DataType::U8 && (bands.len() == 3 || bands.len() == 4))
        {
            return Err(EngineError::bad_request(
                "compression",
                format!(
                    "webp needs 8-bit RGB or RGBA; this output is {} band(s) of {}",
                    bands.len(),
                    full.dtype.name()
                ),
            ));
        }
        if encode.compression == Compression::None {
            encode.predictor = None;
        }
        let (w, h) = match warp {
            Some(g) => (
                u32::try_from(g.width).unwrap_or(u32::MAX),
                u32::try_from(g.height).unwrap_or(u32::MAX),
            ),
            None => (full.width, full.height),
        };
        // A warped grid has pixels outside the source: with no nodata value to mark them,
        // they go in an internal mask.
        let warp_needs_mask = warp.is_some() && header.nodata.is_none();
        let overviews: Vec<(u32, u32)> =
            overview_sizes(w as usize, h as usize, opts.block_size as usize)
                .into_iter()
                .filter_map(|(a, b)| Some((u32::try_from(a).ok()?, u32::try_from(b).ok()?)))
                .collect();
        let mask_rule = src.mask_rule();
        let mask = matches!(mask_rule, MaskRule::Internal)
            || warp_needs_mask
            || (opts.add_mask && !matches!(mask_rule, MaskRule::AllValid));
        let mut spec = CogSpec::new(
            w,
            h,
            u16::try_from(bands.len()).unwrap_or(u16::MAX),
            full.dtype,
            encode,
        );
        spec.block_size = opts.block_size;
        spec.overviews = overviews;
        spec.photometric = photometric;
        spec.extra_samples = extra_samples;
        spec.palette = if is_palette {
            full.palette.clone()
        } else {
            None
        };
        spec.nodata = header.nodata;
        spec.gdal_metadata = header.gdal_metadata.clone();
        spec.geo = match warp {
            Some(g) => mercator_geo_tags(&g.transform),
            None => geo,
        };
        spec.mask = mask;
        let resampling = opts
            .resampling
            .unwrap_or_else(|| OverviewResampling::default_for(is_palette));
        let overview = OverviewOptions {
            resampling,
            nodata: header.nodata,
            has_mask: !matches!(mask_rule, MaskRule::AllValid) || warp.is_some(),
        };
        Ok(Self {
            spec,
            transform: warp.map_or(*src.transform(), |g| g.transform),
            bands,
            resampling,
            overview,
        })
    }
}

/// The source's ExtraSamples value of band `b` (2 = unassociated alpha when unknown).
fn alpha_kind(src: &OpenSource, b: usize) -> u16 {
    let Some(full) = src.header().images.first() else {
        return 2;
    };
    let base = usize::from(full.samples_per_pixel).saturating_sub(full.extra_samples.len());
    b.checked_sub(base)
        .and_then(|i| full.extra_samples.get(i).copied())
        .unwrap_or(2)
}

enum Failure {
    Write(CogWriteError),
    Encode(kiln_cog::CogError),
    Core(kiln_core::CoreError),
}

/// A block's index in its level, its encoded bytes and its encoded mask.
type EncodedBlock = (usize, Vec<u8>, Option<Vec<u8>>);

/// One level's strip of `block_size` rows being filled.
struct Strip {
    width: usize,
    height: usize,
    /// Index of the strip's first row in the level.
    row0: usize,
    rows: Raster,
    filled: usize,
    /// The level's pixel-corner transform.
    transform: GeoTransform,
}

impl Strip {
    /// Moves the strip on by `height` rows (just encoded) and readies its buffer for the next
    /// rows: `used`, the buffer that held them, is reused when the next strip has its size
    /// (every strip but a level's last), so no strip is allocated and zeroed twice.
    fn advance(
        &mut self,
        height: usize,
        used: Raster,
        block: usize,
        bands: usize,
        dtype: DataType,
    ) -> Result<(), Failure> {
        self.row0 += height;
        self.filled = 0;
        let next_h = block.min(self.height.saturating_sub(self.row0));
        let window = PixelWindow {
            col_off: 0,
            row_off: self.row0,
            width: self.width,
            height: next_h,
        };
        // Every row of a strip is written before it is encoded, so a reused buffer needs no
        // clearing.
        self.rows = if used.height() == next_h && used.width() == self.width {
            used.with_transform(window.transform(&self.transform))
        } else {
            self.rows_at(self.row0, block, bands, dtype)?
        };
        Ok(())
    }

    /// An empty strip of `block` rows (or what is left of the level) at row `row0`, on the
    /// level's grid.
    fn rows_at(
        &self,
        row0: usize,
        block: usize,
        bands: usize,
        dtype: DataType,
    ) -> Result<Raster, Failure> {
        let window = PixelWindow {
            col_off: 0,
            row_off: row0,
            width: self.width,
            height: block.min(self.height.saturating_sub(row0)),
        };
        Ok(Raster::empty(window.width, window.height, bands, dtype)
            .map_err(Failure::Core)?
            .with_transform(window.transform(&self.transform)))
    }
}

/// Where finished rows go: one strip per level, cut into blocks and stored by the writer.
struct Sink {
    writer: CogWriter,
    block: usize,
    mask: bool,
    bands: usize,
    dtype: DataType,
    strips: Vec<Strip>,
    encoded_bytes: u64,
}

impl Sink {
    /// Appends rows to a level's strip, flushing every full (or final) strip.
    fn push_level(&mut self, level: usize, rows: &Raster) -> Result<(), Failure> {
        let mut taken = 0;
        while taken < rows.height() {
            let (full, n) = {
                let Some(strip) = self.strips.get_mut(level) else {
                    return Ok(());
                };
                let space = strip.rows.height() - strip.filled;
                let n = space.min(rows.height() - taken);
                let part = PixelWindow {
                    col_off: 0,
                    row_off: taken,
                    width: rows.width(),
                    height: n,
                };
                strip
                    .rows
                    .paste_part(rows, part, 0, strip.filled)
                    .map_err(Failure::Core)?;
                strip.filled += n;
                let done = strip.row0 + strip.filled >= strip.height;
                (strip.filled == strip.rows.height() || done, n)
            };
            taken += n;
            if full {
                self.flush(level)?;
            }
        }
        Ok(())
    }

    /// Cuts a level's full strip into blocks, encodes them in parallel and stores them.
    fn flush(&mut self, level: usize) -> Result<(), Failure> {
        let Some(strip) = self.strips.get_mut(level) else {
            return Ok(());
        };
        let height = strip.filled;
        let rows = std::mem::replace(
            &mut strip.rows,
            Raster::empty(1, 1, self.bands, self.dtype).map_err(Failure::Core)?,
        );
        self.encode_strip(level, &rows, height)?;
        let (block, bands, dtype) = (self.block, self.bands, self.dtype);
        if let Some(strip) = self.strips.get_mut(level) {
            strip.advance(height, rows, block, bands, dtype)?;
        }
        Ok(())
    }

    /// Whether `rows` are exactly the level's next strip (the level is at a strip boundary
    /// and they are one strip high), so [`Self::encode_whole_strip`] can take them as they are.
    fn is_whole_strip(&self, level: usize, rows: &Raster) -> bool {
        self.strips.get(level).is_some_and(|s| {
            s.filled == 0 && rows.width() == s.width && rows.height() == s.rows.height()
        })
    }

    /// Encodes `rows`, which [`Self::is_whole_strip`] says are the level's next strip, in
    /// place: the result is [`Self::push_level`]'s, without the copy into the strip.
    fn encode_whole_strip(&mut self, level: usize, rows: &Raster) -> Result<(), Failure> {
        let height = rows.height();
        self.encode_strip(level, rows, height)?;
        let (block, bands, dtype) = (self.block, self.bands, self.dtype);
        if let Some(strip) = self.strips.get_mut(level) {
            let buffer = std::mem::replace(
                &mut strip.rows,
                Raster::empty(1, 1, bands, dtype).map_err(Failure::Core)?,
            );
            strip.advance(height, buffer, block, bands, dtype)?;
        }
        Ok(())
    }

    /// Encodes the first `height` rows of `rows`, the strip of `level` at its current row, in
    /// parallel (each block read in place from the strip) and stores them.
    fn encode_strip(&mut self, level: usize, rows: &Raster, height: usize) -> Result<(), Failure> {
        let block = self.block;
        let Some(strip) = self.strips.get(level) else {
            return Ok(());
        };
        let strip_row = strip.row0 / block;
        let width = strip.width;
        let across = width.div_ceil(block);
        let encode = self.writer.spec().encode;
        let mask = self.mask;
        let bands = self.bands;
        let encoded: Vec<Result<EncodedBlock, Failure>> = (0..across)
            .into_par_iter()
            .map(|col| {
                let x0 = col * block;
                let w = block.min(width - x0);
                let data = BlockData {
                    samples: rows.samples(),
                    layout: SampleLayout::PlaneWindow {
                        plane_width: rows.width(),
                        plane_height: rows.height(),
                        col: x0,
                        row: 0,
                    },
                    width: w,
                    height,
                    bands,
                };
                let bytes = kiln_cog::encode_block(&data, block, block, &encode)
                    .map_err(Failure::Encode)?;
                let m = if mask {
                    let mut bits = Vec::with_capacity(w * height);
                    for row in rows.mask().chunks_exact(rows.width()).take(height) {
                        bits.extend_from_slice(&row[x0..x0 + w]);
                    }
                    Some(
                        kiln_cog::encode_mask_block(&bits, w, height, block, block, None)
                            .map_err(Failure::Encode)?,
                    )
                } else {
                    None
                };
                Ok((strip_row * across + col, bytes, m))
            })
            .collect();
        for item in encoded {
            let (index, bytes, m) = item?;
            self.encoded_bytes += bytes.len() as u64;
            self.writer
                .write_block(level, MaskOrImage::Image, index, &bytes)
                .map_err(Failure::Write)?;
            if let Some(m) = m {
                self.writer
                    .write_block(level, MaskOrImage::Mask, index, &m)
                    .map_err(Failure::Write)?;
            }
        }
        Ok(())
    }
}

/// The fold state of the scan: row assembly, the overview cascade and the sink.
struct State {
    sink: Sink,
    /// The current source block row being assembled: (first row, raster, columns filled).
    pending: Option<(usize, Raster, usize)>,
    pyramid: OverviewPyramid,
    /// The last block row's buffer once it went down the pipeline, for the next one.
    spare_rows: Option<Raster>,
    progress: Option<ProgressFn>,
    rows_done: u64,
    error: Option<Failure>,
}

impl State {
    fn new(
        plan: &Plan,
        writer: CogWriter,
        progress: Option<ProgressFn>,
    ) -> Result<Self, kiln_core::CoreError> {
        let spec = &plan.spec;
        let levels: Vec<(usize, usize)> = (0..spec.levels())
            .filter_map(|l| spec.level_size(l))
            .map(|(w, h)| (w as usize, h as usize))
            .collect();
        let bands = plan.bands.len();
        let pyramid = OverviewPyramid::new(&levels, bands, spec.dtype, plan.overview)?;
        let block = spec.block_size as usize;
        let (w0, h0) = levels.first().copied().unwrap_or((0, 0));
        let mut strips = Vec::with_capacity(levels.len());
        for &(w, h) in &levels {
            let transform = plan.transform.scaled(w0, h0, w, h);
            let rows = Raster::empty(w, block.min(h), bands, spec.dtype)?.with_transform(transform);
            strips.push(Strip {
                width: w,
                height: h,
                row0: 0,
                rows,
                filled: 0,
                transform,
            });
        }
        Ok(Self {
            sink: Sink {
                writer,
                block,
                mask: spec.mask,
                bands,
                dtype: spec.dtype,
                strips,
                encoded_bytes: 0,
            },
            pending: None,
            pyramid,
            spare_rows: None,
            progress,
            rows_done: 0,
            error: None,
        })
    }

    /// The scan's fold: pastes windows into the pending block row; a completed block row
    /// goes down the pipeline.
    fn add(&mut self, windows: &[PixelWindow], rasters: &[Raster]) {
        if self.error.is_some() {
            return;
        }
        let width = self.sink.strips.first().map_or(0, |s| s.width);
        for (win, r) in windows.iter().zip(rasters) {
            let fresh = !matches!(&self.pending, Some((row0, _, _)) if *row0 == win.row_off);
            if fresh {
                if self.pending.take().is_some() {
                    // A block row left incomplete cannot happen with the scan's block order;
                    // its buffer may be a reused one, so its missing part is not even zeros.
                    self.error = Some(Failure::Core(kiln_core::CoreError::invalid(
                        "source rows",
                        format!("a block row before row {} was not read whole", win.row_off),
                    )));
                    return;
                }
                match self.level0_rows(win.row_off, win.height) {
                    Ok(rows) => self.pending = Some((win.row_off, rows, 0)),
                    Err(e) => {
                        self.error = Some(e);
                        return;
                    }
                }
            }
            if let Some((_, rows, filled)) = self.pending.as_mut() {
                if let Err(e) = rows.paste(r, win.col_off, 0) {
                    self.error = Some(Failure::Core(e));
                    return;
                }
                *filled += win.width;
                if *filled >= width {
                    if let Some((_, rows, _)) = self.pending.take() {
                        self.rows_ready(rows);
                    }
                }
            }
            if self.error.is_some() {
                return;
            }
        }
    }

    /// Rows of level 0 from row `row0`, on its grid, to be overwritten whole: the previous
    /// block row's buffer when it has their size, else a new (empty) one.
    fn level0_rows(&mut self, row0: usize, height: usize) -> Result<Raster, Failure> {
        let level0 = self.sink.strips.first().ok_or_else(|| {
            Failure::Core(kiln_core::CoreError::invalid(
                "levels",
                "the COG has no levels",
            ))
        })?;
        match self.spare_rows.take() {
            Some(r) if r.width() == level0.width && r.height() == height => {
                let window = PixelWindow {
                    col_off: 0,
                    row_off: row0,
                    width: level0.width,
                    height,
                };
                Ok(r.with_transform(window.transform(&level0.transform)))
            }
            _ => level0.rows_at(row0, height, self.sink.bands, self.sink.dtype),
        }
    }

    /// Full-resolution rows, in order: into strip 0 and the overview cascade. Their buffer
    /// is kept for the next block row.
    fn rows_ready(&mut self, rows: Raster) {
        // Level 0's blocks are encoded while the overview cascade reduces the same rows; rows
        // that are a whole strip (a source block row as high as the output blocks, at a strip
        // boundary) are encoded where they are.
        let (sink, pyramid) = (&mut self.sink, &mut self.pyramid);
        let whole = sink.is_whole_strip(0, &rows);
        let (level0, overviews) = rayon::join(
            || {
                if whole {
                    sink.encode_whole_strip(0, &rows)
                } else {
                    sink.push_level(0, &rows)
                }
            },
            || reduce_in_chunks(pyramid, &rows),
        );
        let height = rows.height();
        self.spare_rows = Some(rows);
        if let Err(e) = level0 {
            self.error = Some(e);
            return;
        }
        match overviews {
            Ok(chunks) => {
                for levels in &chunks {
                    for (k, out) in levels.iter().enumerate() {
                        if out.height() > 0 {
                            if let Err(e) = self.sink.push_level(k + 1, out) {
                                self.error = Some(e);
                                return;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                self.error = Some(Failure::Core(e));
                return;
            }
        }
        self.rows_done += height as u64;
        if let (Some(p), Some(s)) = (&self.progress, self.sink.strips.first()) {
            p(OptimizeProgress::Rows {
                done: self.rows_done,
                total: s.height as u64,
            });
        }
    }

    /// Pushes what is left, checks every level is complete and lays the file out; returns
    /// its size in bytes.
    fn finish(mut self) -> Result<u64, Failure> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some((_, rows, _)) = self.pending.take() {
            self.rows_ready(rows);
            if let Some(e) = self.error.take() {
                return Err(e);
            }
        }
        self.pyramid.finish().map_err(Failure::Core)?;
        if let Some(p) = &self.progress {
            p(OptimizeProgress::Writing {
                bytes: self.sink.encoded_bytes,
            });
        }
        self.sink.writer.finish().map_err(Failure::Write)
    }
}

/// Rows handed to the overview cascade at once: the general (not exact 2×2 average) reducers
/// work on `f64` rows, so a whole 512-row block row of a wide RGB image made a 33 MB transient
/// (10800 px shaded relief).
const PYRAMID_CHUNK_ROWS: usize = 64;

/// Feeds `rows` to the cascade `PYRAMID_CHUNK_ROWS` at a time (in place, no copies); the
/// overview rows of each chunk, per level, in order. The reducers stream, so the rows made do
/// not depend on the chunking.
fn reduce_in_chunks(
    pyramid: &mut OverviewPyramid,
    rows: &Raster,
) -> Result<Vec<Vec<Raster>>, kiln_core::CoreError> {
    (0..rows.height())
        .step_by(PYRAMID_CHUNK_ROWS)
        .map(|row0| pyramid.push_rows(rows, row0, PYRAMID_CHUNK_ROWS.min(rows.height() - row0)))
        .collect()
}

/// Half the Web Mercator square, in metres.
const MERCATOR_HALF: f64 = 20_037_508.342_789_244;

/// The Web Mercator grid a source is warped to, as `gdalwarp -t_srs EPSG:3857` suggests it:
/// the source's bounds transformed (densified edges, clamped to the Web Mercator square), and
/// the resolution that keeps the source's diagonal pixel count.
fn mercator_grid(src: &OpenSource) -> Result<GridSpec, EngineError> {
    let uri = src.uri();
    let full = src.full_image()?;
    let (w, h) = (full.width as usize, full.height as usize);
    // Web Mercator is monotonic in longitude and latitude, so the corners of the lon/lat
    // bounds (densified edges, latitudes clamped to the square's ±85.0511°) bound it.
    let b = transform_bounds(&src.transform().bounds(w, h), src.crs(), &Crs::wgs84()).ok_or_else(
        || EngineError::Unsupported {
            uri: uri.to_string(),
            reason: "its bounds cannot be transformed to WGS 84".into(),
            cause: None,
        },
    )?;
    let mut xs = [b.west, b.east];
    let mut ys = [
        b.south.max(-kiln_core::crs::WEB_MERCATOR_MAX_LAT),
        b.north.min(kiln_core::crs::WEB_MERCATOR_MAX_LAT),
    ];
    Transformer::new(&Crs::wgs84(), &Crs::web_mercator())
        .and_then(|t| t.transform_points(&mut xs, &mut ys))
        .map_err(|e| EngineError::from_core(uri, e))?;
    let (west, east) = (xs[0].max(-MERCATOR_HALF), xs[1].min(MERCATOR_HALF));
    let (south, north) = (ys[0].max(-MERCATOR_HALF), ys[1].min(MERCATOR_HALF));
    let diag_px = ((w * w + h * h) as f64).sqrt();
    let res = (east - west).hypot(north - south) / diag_px;
    if !(res.is_finite() && res > 0.0 && east > west && north > south) {
        return Err(EngineError::Unsupported {
            uri: uri.to_string(),
            reason: "it does not cover any of the Web Mercator square".into(),
            cause: None,
        });
    }
    let (gw, gh) = (
        ((east - west) / res).ceil().max(1.0) as usize,
        ((north - south) / res).ceil().max(1.0) as usize,
    );
    if gw > 1 << 20 || gh > 1 << 20 {
        return Err(EngineError::TooLarge {
            reason: format!("{uri}: reprojected to {gw}x{gh} pixels"),
        });
    }
    Ok(GridSpec {
        transform: GeoTransform([west, res, 0.0, north, 0.0, -res]),
        width: gw,
        height: gh,
    })
}

/// GeoTIFF tags of a north-up EPSG:3857 grid.
fn mercator_geo_tags(t: &GeoTransform) -> RawGeoTags {
    let g = &t.0;
    RawGeoTags {
        pixel_scale: Some(vec![g[1], -g[5], 0.0]),
        tiepoints: Some(vec![0.0, 0.0, 0.0, g[0], g[3], 0.0]),
        transformation: None,
        // Version 1.1.0, 4 keys: projected model, pixel is area, EPSG:3857, metres.
        key_directory: Some(vec![
            1, 1, 0, 4, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 3857, 3076, 0, 1, 9001,
        ]),
        double_params: None,
        ascii_params: None,
    }
}

/// The warped pipeline: the output grid is read block row by block row with the tile code's
/// warp (`Engine::read_grid`, one block per call, the calls of a row concurrent), and each
/// row goes down the same strips and overview cascade as an unwarped file.
async fn warp_rows(
    engine: &Engine,
    src: &Arc<OpenSource>,
    plan: &Plan,
    grid: &GridSpec,
    resampling: Resampling,
    mut state: State,
) -> Result<State, EngineError> {
    let block = plan.spec.block_size as usize;
    let bands: Vec<usize> = plan.bands.iter().map(|b| b + 1).collect();
    let nodata = plan.spec.nodata;
    let g = grid.transform.0;
    let sources = [src.clone()];
    for row0 in (0..grid.height).step_by(block) {
        let rh = block.min(grid.height - row0);
        let mut reads = Vec::new();
        for col0 in (0..grid.width).step_by(block) {
            let spec = GridSpec {
                transform: GeoTransform([
                    g[0] + col0 as f64 * g[1],
                    g[1],
                    0.0,
                    g[3] + row0 as f64 * g[5],
                    0.0,
                    g[5],
                ]),
                width: block.min(grid.width - col0),
                height: rh,
            };
            let (sources, bands) = (&sources, bands.clone());
            reads.push(async move {
                engine
                    .read_grid(sources, &spec, Some(bands), resampling)
                    .await
                    .map(|r| (col0, r))
            });
        }
        let blocks = futures_util::future::try_join_all(reads).await?;
        state = engine
            .pool()
            .run(move || {
                let rows = state.level0_rows(row0, rh).and_then(|mut rows| {
                    for (col0, mut r) in blocks {
                        if let Some(nd) = nodata {
                            // Pixels outside the source get the nodata value.
                            r.fill_invalid(nd);
                        }
                        rows.paste(&r, col0, 0).map_err(Failure::Core)?;
                    }
                    Ok(rows)
                });
                match rows {
                    Ok(rows) => state.rows_ready(rows),
                    Err(e) => state.error = Some(e),
                }
                state
            })
            .await?;
        if state.error.is_some() {
            break;
        }
    }
    Ok(state)
}
