//! Per-dataset statistics for ingest: valid percentage and, per band, count, min, max, mean,
//! population standard deviation and percentiles 1..=99 (numpy's default, linear), computed by
//! scanning an image block by block with bounded memory.
//!
//! Also owns the block scanner ([`scan_level`]) the footprint uses: it walks one image level in
//! batches of block windows, fetches their bytes straight from the source (bypassing the block
//! cache, which a whole-image scan would only flush), decodes and assembles each window on the
//! CPU pool with the tile reader's validity rule, hands the batch to a fold, and drops it.
//!
//! Percentiles: 8- and 16-bit integer data get a full histogram, so they are exact. Other types
//! (32-bit integers, floats) take two passes: the first finds min/max (and the moments), the
//! second fills [`FINE_BINS`] bins over `[min, max]` that also record each bin's own min and
//! max; an order statistic is read by interpolating by rank inside its bin, so it is exact when
//! it is the smallest or largest value of its bin and otherwise off by less than the bin's
//! value spread, at most `(max - min) / FINE_BINS` ([`BandStats::percentile_error_bound`]).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use kiln_cog::decode::{decode_block, sparse_block, Block};
use kiln_cog::{ImageIfd, TiffHeader};
use kiln_core::dtype::Sample;
use kiln_core::warp::PixelWindow;
use kiln_core::{DataType, Raster};
use kiln_storage::ByteRange;
use serde::{Deserialize, Serialize};

use crate::window::{assemble, BlockId, Plane, WindowPlan};
use crate::{Engine, EngineError, OpenSource};

/// Bins of the second pass for 32-bit and floating-point data.
pub const FINE_BINS: usize = 1 << 16;

/// Decoded bytes a batch aims at (one window is always allowed, however large). While one
/// batch is decoded the previous one is still being folded, so two are held.
const BATCH_BYTES: usize = 8 * 1024 * 1024;

/// What to compute statistics over.
#[derive(Debug, Clone, Default)]
pub struct StatsOptions {
    /// Pixels above which the finest overview with at most this many pixels is used instead
    /// of the full-resolution image (the coarsest overview when none is small enough).
    /// `None`: always the full resolution.
    pub max_pixels: Option<u64>,
}

/// Statistics of one band over its valid pixels (NaN samples excluded, as `np.nanpercentile`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandStats {
    /// 1-based band number in the file.
    pub band: usize,
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// Population standard deviation (`np.std`, ddof = 0).
    pub stdev: Option<f64>,
    /// Percentiles 1..=99 (index 0 is p1); empty when the band has no valid sample.
    pub percentiles: Vec<f64>,
    /// Largest possible absolute error of a percentile (0 when exact).
    pub percentile_error_bound: f64,
}

/// Statistics of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Image level read: 0 is full resolution, `n` the n-th overview.
    pub level: usize,
    pub width: usize,
    pub height: usize,
    /// Pixels valid by the dataset mask (internal mask > alpha > nodata > all valid).
    pub valid_pixels: u64,
    /// `valid_pixels` as a percentage of `width * height`.
    pub valid_percentage: f64,
    /// Bands except alpha, in file order.
    pub bands: Vec<BandStats>,
    /// Most decoded bytes (blocks plus assembled windows) held at once during the scan.
    pub peak_decoded_bytes: u64,
}

/// Computes statistics of `source`, block by block (see the module docs).
pub async fn compute_statistics(
    engine: &Engine,
    source: &Arc<OpenSource>,
    opts: &StatsOptions,
) -> Result<DatasetStats, EngineError> {
    let header = source.header().clone();
    let level = stats_level(&header, opts.max_pixels);
    let ifd = header
        .images
        .get(level)
        .ok_or_else(|| EngineError::BadSource {
            uri: source.uri().to_string(),
            reason: "no image".into(),
            cause: None,
        })?;
    let (width, height) = (ifd.width as usize, ifd.height as usize);
    let bands = source.default_bands();
    let nb = bands.len();
    let exact = matches!(
        ifd.dtype,
        DataType::U8 | DataType::I8 | DataType::U16 | DataType::I16
    );
    let (band_stats, valid, peak) = if exact {
        let acc = HistAcc::new(nb);
        let (acc, peak) = scan_level(engine, source, level, &bands, acc, HistAcc::add).await?;
        let stats = acc.finish(&bands);
        (stats, acc.valid, peak)
    } else {
        let acc = MomentAcc::new(nb);
        let (acc, peak1) = scan_level(engine, source, level, &bands, acc, MomentAcc::add).await?;
        let fine = FineAcc::new(&acc.bands);
        let (fine, peak2) = scan_level(engine, source, level, &bands, fine, FineAcc::add).await?;
        (fine.finish(&acc, &bands), acc.valid, peak1.max(peak2))
    };
    let total = width.saturating_mul(height);
    let valid_percentage = if total == 0 {
        0.0
    } else {
        valid as f64 / total as f64 * 100.0
    };
    Ok(DatasetStats {
        level,
        width,
        height,
        valid_pixels: valid,
        valid_percentage,
        bands: band_stats,
        peak_decoded_bytes: peak,
    })
}

fn stats_level(header: &TiffHeader, max_pixels: Option<u64>) -> usize {
    let Some(max) = max_pixels else { return 0 };
    let px = |i: &ImageIfd| u64::from(i.width) * u64::from(i.height);
    if header.images.first().is_none_or(|i| px(i) <= max) {
        return 0;
    }
    header
        .images
        .iter()
        .position(|i| px(i) <= max)
        .unwrap_or(header.images.len().saturating_sub(1))
}

/// Scans image `level` of `src` in block windows: each window is assembled (bands `bands`
/// plus the validity mask) and batches of windows (with their positions in the level) are
/// passed, in block order, to `fold` on the
/// CPU pool. Returns the accumulator and the most decoded bytes held at once.
pub(crate) async fn scan_level<A, F>(
    engine: &Engine,
    src: &Arc<OpenSource>,
    level: usize,
    bands: &[usize],
    acc: A,
    fold: F,
) -> Result<(A, u64), EngineError>
where
    A: Send + 'static,
    F: Fn(&mut A, &[PixelWindow], &[Raster]) + Send + Sync + Copy + 'static,
{
    let header = src.header().clone();
    let uri = src.uri().to_string();
    let ifd = header
        .images
        .get(level)
        .ok_or_else(|| EngineError::Internal {
            reason: format!("level {level} missing"),
        })?;
    let mask = src.mask_rule();
    let level_tf = src.level_transform(level);
    let (bw, bh) = (
        ifd.block_width.max(1) as usize,
        ifd.block_height.max(1) as usize,
    );
    let (w, h) = (ifd.width as usize, ifd.height as usize);
    let px_bytes = ifd
        .dtype
        .size_bytes()
        .saturating_mul(ifd.bands().max(1))
        .saturating_add(1);
    // Memory is bounded by BATCH_BYTES; the count cap only keeps thin strips from making
    // one batch of thousands of tiny reads.
    let max_batch = (engine.pool().threads().max(1) * 4).max(64);
    let mut windows = Vec::new();
    for r in 0..ifd.blocks_down() {
        for c in 0..ifd.blocks_across() {
            let (x, y) = (c * bw, r * bh);
            windows.push(PixelWindow {
                col_off: x,
                row_off: y,
                width: bw.min(w.saturating_sub(x)),
                height: bh.min(h.saturating_sub(y)),
            });
        }
    }
    let mut acc = Some(acc);
    let mut peak = 0u64;
    // The fold of the previous batch, running on the pool, and the bytes it holds.
    let mut folding = None;
    let mut folding_bytes = 0usize;
    let mut i = 0;
    while i < windows.len() {
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        while let Some(win) = windows.get(i) {
            let b = win.width * win.height * px_bytes;
            if !batch.is_empty() && (batch.len() >= max_batch || bytes + b > BATCH_BYTES) {
                break;
            }
            batch.push(WindowPlan {
                level,
                window: *win,
                bands: bands.to_vec(),
                mask,
            });
            bytes += b;
            i += 1;
        }
        let mut ids: Vec<BlockId> = batch.iter().flat_map(|p| p.blocks(&header)).collect();
        ids.sort_by_key(|id| (id.plane == Plane::Mask, id.index));
        ids.dedup();
        let mut ranges = Vec::new();
        let mut present = Vec::new();
        for id in &ids {
            let range = ifd_of(&header, *id).and_then(|i| i.block_range(id.index));
            if let Some((off, len)) = range {
                ranges.push(ByteRange::new(off, len));
            }
            present.push(range.is_some());
        }
        let fetched: Vec<Bytes> = src.byte_source().read_ranges(&ranges).await?;
        let (header2, uri2) = (header.clone(), uri.clone());
        let (wins, rasters, held) = engine
            .pool()
            .run(
                move || -> Result<(Vec<PixelWindow>, Vec<Raster>, usize), EngineError> {
                    use rayon::prelude::*;
                    let mut it = fetched.into_iter();
                    let jobs: Vec<(BlockId, Option<Bytes>)> = ids
                        .into_iter()
                        .zip(present)
                        .map(|(id, p)| (id, if p { it.next() } else { None }))
                        .collect();
                    let blocks = jobs
                        .into_par_iter()
                        .map(|(id, b)| decode(&header2, &uri2, id, b.as_deref()).map(|k| (id, k)))
                        .collect::<Result<HashMap<_, _>, _>>()?;
                    let block_bytes: usize = blocks.values().map(|b| b.samples.size_bytes()).sum();
                    let rasters = batch
                        .par_iter()
                        .map(|p| assemble(&header2, p, &blocks, &level_tf))
                        .collect::<Result<Vec<_>, _>>()?;
                    let held = block_bytes + rasters.iter().map(Raster::size_bytes).sum::<usize>();
                    drop(blocks);
                    let wins: Vec<PixelWindow> = batch.iter().map(|p| p.window).collect();
                    Ok((wins, rasters, held))
                },
            )
            .await??;
        // The previous batch's fold ran while this batch was read and decoded; folds still
        // run one at a time and in block order.
        if let Some(f) = folding.take() {
            acc = f.await?;
        }
        // Decoding held this batch's blocks and windows while the previous windows were
        // still being folded.
        peak = peak.max((held + folding_bytes) as u64);
        folding_bytes = rasters.iter().map(Raster::size_bytes).sum();
        let mut a = acc.take();
        folding = Some(engine.pool().start(move || {
            if let Some(a) = a.as_mut() {
                fold(a, &wins, &rasters);
            }
            a
        }));
    }
    if let Some(f) = folding.take() {
        acc = f.await?;
    }
    acc.map(|a| (a, peak)).ok_or_else(|| EngineError::Internal {
        reason: "statistics accumulator lost".into(),
    })
}

fn ifd_of(header: &TiffHeader, id: BlockId) -> Option<&ImageIfd> {
    match id.plane {
        Plane::Image => header.images.get(id.level),
        Plane::Mask => header.masks.get(id.level).and_then(Option::as_ref),
    }
}

fn decode(
    header: &TiffHeader,
    uri: &str,
    id: BlockId,
    bytes: Option<&[u8]>,
) -> Result<Arc<Block>, EngineError> {
    let ifd = ifd_of(header, id).ok_or_else(|| EngineError::Internal {
        reason: format!("no image for block {id:?}"),
    })?;
    let block = match bytes {
        Some(b) => {
            decode_block(header, ifd, id.index, b).map_err(|e| EngineError::from_cog(uri, e))?
        }
        None => sparse_block(header, ifd, id.index),
    };
    Ok(Arc::new(block))
}

/// Calls `f(band, value)` for every valid, non-NaN sample of a window raster.
fn for_each_valid(r: &Raster, mut f: impl FnMut(usize, f64)) {
    let plane = r.width() * r.height();
    kiln_core::with_samples!(r.samples(), v => {
        for b in 0..r.bands() {
            let Some(band) = v.get(b * plane..(b + 1) * plane) else { continue };
            for (x, &m) in band.iter().zip(r.mask()) {
                if m != 0 {
                    let x = x.to_f64();
                    if !x.is_nan() {
                        f(b, x);
                    }
                }
            }
        }
    });
}

fn valid_in(r: &Raster) -> u64 {
    r.mask().iter().filter(|&&m| m != 0).count() as u64
}

/// Full histograms of 8/16-bit integer bands (index = value + 32768).
struct HistAcc {
    hist: Vec<Vec<u64>>,
    valid: u64,
}

impl HistAcc {
    fn new(bands: usize) -> Self {
        Self {
            hist: vec![vec![0; 1 << 17]; bands],
            valid: 0,
        }
    }

    fn add(&mut self, _windows: &[PixelWindow], rasters: &[Raster]) {
        for r in rasters {
            self.valid += valid_in(r);
            let hist = &mut self.hist;
            for_each_valid(r, |b, x| {
                let i = (x + 32768.0) as usize;
                if let Some(c) = hist.get_mut(b).and_then(|h| h.get_mut(i)) {
                    *c += 1;
                }
            });
        }
    }

    fn finish(&self, bands: &[usize]) -> Vec<BandStats> {
        bands
            .iter()
            .zip(&self.hist)
            .map(|(&band, h)| {
                let value = |i: usize| i as i128 - 32768;
                let (mut n, mut sum, mut sumsq) = (0u64, 0i128, 0i128);
                let (mut lo, mut hi) = (None, None);
                for (i, &c) in h.iter().enumerate() {
                    if c == 0 {
                        continue;
                    }
                    let v = value(i);
                    lo = lo.or(Some(v));
                    hi = Some(v);
                    n += c;
                    sum += v * i128::from(c);
                    sumsq += v * v * i128::from(c);
                }
                let mut cum = Vec::with_capacity(h.len());
                let mut run = 0u64;
                for &c in h {
                    run += c;
                    cum.push(run);
                }
                let kth = |k: u64| value(cum.partition_point(|&c| c <= k)) as f64;
                let (mean, stdev) = if n == 0 {
                    (None, None)
                } else {
                    // Exact: n*sumsq - sum^2 is n^2 times the population variance.
                    let nn = i128::from(n);
                    let var = (nn * sumsq - sum * sum) as f64 / (nn as f64 * nn as f64);
                    (Some(sum as f64 / nn as f64), Some(var.max(0.0).sqrt()))
                };
                BandStats {
                    band: band + 1,
                    count: n,
                    min: lo.map(|v| v as f64),
                    max: hi.map(|v| v as f64),
                    mean,
                    stdev,
                    percentiles: percentiles(n, kth),
                    percentile_error_bound: 0.0,
                }
            })
            .collect()
    }
}

/// numpy's default (`method="linear"`) percentiles 1..=99 of `n` sorted values read through
/// `kth` (the k-th smallest, 0-based), with numpy's own rounding of the index and the lerp.
fn percentiles(n: u64, kth: impl Fn(u64) -> f64) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    let nf = n as f64;
    (1..=99)
        .map(|p| {
            let q = f64::from(p) / 100.0;
            let virtual_index = (nf - 1.0) * q;
            let prev = virtual_index.floor();
            let gamma = virtual_index - prev;
            let lo = (prev.max(0.0) as u64).min(n - 1);
            let hi = (lo + 1).min(n - 1);
            let (a, b) = (kth(lo), kth(hi));
            let d = b - a;
            if gamma >= 0.5 {
                b - d * (1.0 - gamma)
            } else {
                a + d * gamma
            }
        })
        .collect()
}

/// Per-band moments merged window by window in block order (Chan et al.), so the result does
/// not depend on thread timing.
#[derive(Debug, Clone, Copy)]
struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Moments {
    const EMPTY: Self = Self {
        n: 0,
        mean: 0.0,
        m2: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    fn merge(&mut self, o: &Self) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let n = self.n + o.n;
        let d = o.mean - self.mean;
        self.mean += d * o.n as f64 / n as f64;
        self.m2 += o.m2 + d * d * self.n as f64 * o.n as f64 / n as f64;
        self.n = n;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

struct MomentAcc {
    bands: Vec<Moments>,
    valid: u64,
}

impl MomentAcc {
    fn new(bands: usize) -> Self {
        Self {
            bands: vec![Moments::EMPTY; bands],
            valid: 0,
        }
    }

    fn add(&mut self, _windows: &[PixelWindow], rasters: &[Raster]) {
        for r in rasters {
            self.valid += valid_in(r);
            // Two passes over the window (it is in memory): its mean, then squared deviations.
            let mut sums = vec![(0u64, 0.0f64, f64::INFINITY, f64::NEG_INFINITY); r.bands()];
            for_each_valid(r, |b, x| {
                if let Some(s) = sums.get_mut(b) {
                    s.0 += 1;
                    s.1 += x;
                    s.2 = s.2.min(x);
                    s.3 = s.3.max(x);
                }
            });
            let means: Vec<f64> = sums
                .iter()
                .map(|s| if s.0 == 0 { 0.0 } else { s.1 / s.0 as f64 })
                .collect();
            let mut m2 = vec![0.0f64; r.bands()];
            for_each_valid(r, |b, x| {
                if let (Some(m), Some(acc)) = (means.get(b), m2.get_mut(b)) {
                    *acc += (x - m) * (x - m);
                }
            });
            for (b, acc) in self.bands.iter_mut().enumerate() {
                if let (Some(s), Some(&mean), Some(&m2)) = (sums.get(b), means.get(b), m2.get(b)) {
                    acc.merge(&Moments {
                        n: s.0,
                        mean,
                        m2,
                        min: s.2,
                        max: s.3,
                    });
                }
            }
        }
    }
}

/// Second pass for 32-bit and float data: per band, [`FINE_BINS`] counts over `[min, max]`
/// with each bin's own min and max.
struct FineAcc {
    bands: Vec<FineHist>,
}

struct FineHist {
    lo: f64,
    scale: f64,
    count: Vec<u64>,
    min: Vec<f64>,
    max: Vec<f64>,
}

impl FineHist {
    fn bin(&self, x: f64) -> usize {
        (((x - self.lo) * self.scale) as usize).min(FINE_BINS - 1)
    }
}

impl FineAcc {
    fn new(moments: &[Moments]) -> Self {
        let bands = moments
            .iter()
            .map(|m| {
                let (count, min, max) = if m.n == 0 {
                    (Vec::new(), Vec::new(), Vec::new())
                } else {
                    (
                        vec![0; FINE_BINS],
                        vec![f64::INFINITY; FINE_BINS],
                        vec![f64::NEG_INFINITY; FINE_BINS],
                    )
                };
                let span = m.max - m.min;
                FineHist {
                    lo: m.min,
                    scale: if span > 0.0 && span.is_finite() {
                        FINE_BINS as f64 / span
                    } else {
                        0.0
                    },
                    count,
                    min,
                    max,
                }
            })
            .collect();
        Self { bands }
    }

    fn add(&mut self, _windows: &[PixelWindow], rasters: &[Raster]) {
        for r in rasters {
            let bands = &mut self.bands;
            for_each_valid(r, |b, x| {
                let Some(h) = bands.get_mut(b) else { return };
                let i = h.bin(x);
                if let (Some(c), Some(lo), Some(hi)) =
                    (h.count.get_mut(i), h.min.get_mut(i), h.max.get_mut(i))
                {
                    *c += 1;
                    *lo = lo.min(x);
                    *hi = hi.max(x);
                }
            });
        }
    }

    fn finish(&self, moments: &MomentAcc, bands: &[usize]) -> Vec<BandStats> {
        bands
            .iter()
            .zip(self.bands.iter().zip(&moments.bands))
            .map(|(&band, (h, m))| {
                let n = m.n;
                let mut cum = Vec::with_capacity(h.count.len());
                let mut run = 0u64;
                for &c in &h.count {
                    run += c;
                    cum.push(run);
                }
                let kth = |k: u64| {
                    let i = cum.partition_point(|&c| c <= k);
                    let before = if i == 0 {
                        0
                    } else {
                        cum.get(i - 1).copied().unwrap_or(0)
                    };
                    let (c, lo, hi) = (
                        h.count.get(i).copied().unwrap_or(0),
                        h.min.get(i).copied().unwrap_or(f64::NAN),
                        h.max.get(i).copied().unwrap_or(f64::NAN),
                    );
                    let r = k - before;
                    if c <= 1 || r == 0 {
                        lo
                    } else if r + 1 >= c {
                        hi
                    } else {
                        lo + (hi - lo) * r as f64 / (c - 1) as f64
                    }
                };
                // A span that overflows (infinite samples) leaves no useful bound.
                let bound = if h.scale > 0.0 {
                    1.0 / h.scale
                } else if m.min == m.max {
                    0.0
                } else {
                    f64::INFINITY
                };
                let some = |v: f64| (n > 0).then_some(v);
                BandStats {
                    band: band + 1,
                    count: n,
                    min: some(m.min),
                    max: some(m.max),
                    mean: some(m.mean),
                    stdev: some((m.m2 / n.max(1) as f64).max(0.0).sqrt()),
                    percentiles: percentiles(n, kth),
                    percentile_error_bound: bound,
                }
            })
            .collect()
    }
}
