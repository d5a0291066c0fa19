//! The Cloud-Optimized GeoTIFF writer of `kiln optimize`: block encoding and the streaming
//! file assembler.
//!
//! Two layers:
//!
//! * [`encode_block`] / [`encode_mask_block`] turn the samples of one block into the bytes a
//!   TIFF stores for it: chunky (pixel-interleaved) little-endian samples, edge blocks padded
//!   to the full block size with zeros (as GDAL's edge tiles), the predictor for the data type ([`default_predictor`]), then the codec
//!   (none, DEFLATE via libdeflater, ZSTD, LZW in TIFF's MSB flavour, WebP for 8-bit RGB/RGBA).
//!   Masks are 1 bit per pixel, DEFLATE, as GDAL's internal masks. JPEG is not implemented
//!   (`CogError::Unsupported`). Encoding is pure and thread-safe: callers run it in parallel.
//! * [`CogWriter`] assembles the file. Blocks, already compressed, arrive in any order per
//!   (level, image or mask, block index) and are appended to a spool file beside the target,
//!   so memory holds only the offset table (16 bytes per block), never pixels.
//!   [`CogWriter::finish`] writes the COG to a temporary file beside the target and renames it
//!   over the target; the spool is deleted. On error (or when the writer is dropped without
//!   `finish`) nothing is left at the target and the spool is removed.
//!
//! File layout written by `finish` (GDAL's COG layout):
//!
//! 1. TIFF header, little-endian; classic TIFF, or BigTIFF when the file would pass 4 GiB
//!    (or when [`CogSpec::bigtiff`] forces it).
//! 2. Optionally ([`CogSpec::ghost_area`]) GDAL's "ghost" structural metadata:
//!    `LAYOUT=IFDS_BEFORE_DATA`, `BLOCK_ORDER=ROW_MAJOR`, `BLOCK_LEADER=SIZE_AS_UINT4`,
//!    `BLOCK_TRAILER=LAST_4_BYTES_REPEATED`, `KNOWN_INCOMPATIBLE_EDITION=NO`, and
//!    `MASK_INTERLEAVED_WITH_IMAGERY=YES` with a mask. The leaders and trailers are written:
//!    each stored block is preceded by its byte count (u32 LE) and followed by a copy of its
//!    last 4 bytes. Without the ghost area blocks are stored bare.
//! 3. All IFDs, each followed by its out-of-line values, in GDAL's order: full-resolution
//!    image, its mask, the overviews from finest to coarsest, then their masks (finest first).
//! 4. Image data, coarsest overview first, full resolution last; within a level, blocks in
//!    row-major order, each mask block right after the image block it belongs to.
//!
//! Tags written: NewSubfileType (1 on overviews, 4 on the full-resolution mask, 5 on overview
//! masks), sizes, BitsPerSample, Compression, Photometric, SamplesPerPixel, Planar = chunky,
//! Predictor, tile size / offsets / byte counts, SampleFormat, ExtraSamples and ColorMap when
//! given, GDAL_NODATA on every image IFD; Software, the raw geo tags ([`RawGeoTags`]) and
//! GDAL_METADATA on the full-resolution IFD only (as GDAL does).
//!
//! Files: `encode` (block and mask encoding), `layout` (IFD plans and the COG layout, written
//! with the TIFF serializer `tiff_out` that the tile writer shares), this module (the
//! assembler: spool, temporary file, rename).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use kiln_core::{DataType, Samples};
use libdeflater::{CompressionLvl, Compressor};
use thiserror::Error;

use crate::geotags::RawGeoTags;
use crate::header::tag;
use crate::tiff_out::{ByteOrder, Directories, TiffFormat, Value};
use crate::write::{nodata_text, sample_format};
use crate::{CogError, Compression, Photometric, Predictor};
mod encode;
mod layout;

#[allow(clippy::wildcard_imports)]
use encode::*;
pub use encode::{
    default_predictor, encode_block, encode_mask_block, BlockData, EncodeOptions, SampleLayout,
    DEFAULT_DEFLATE_LEVEL, DEFAULT_WEBP_QUALITY, DEFAULT_ZSTD_LEVEL,
};
#[allow(clippy::wildcard_imports)]
use layout::*;

/// COGs are little-endian: samples, TIFF structure and block leaders.
const ORDER: ByteOrder = ByteOrder::Little;

/// Errors of [`CogWriter`].
#[derive(Debug, Error)]
pub enum CogWriteError {
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The spec or a call does not make sense (block out of range, written twice, missing...).
    #[error("COG {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    /// Encoding or TIFF-level error.
    #[error("COG {}: {source}", path.display())]
    Cog { path: PathBuf, source: CogError },
}

/// Whether to write BigTIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BigTiff {
    /// Classic TIFF unless the file would exceed 4 GiB.
    #[default]
    Auto,
    Always,
}

/// Everything about the COG to write except the pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct CogSpec {
    /// Full-resolution size in pixels.
    pub width: u32,
    pub height: u32,
    /// Samples per pixel.
    pub bands: u16,
    pub dtype: DataType,
    /// Tile side (multiple of 16, as TIFF requires), the same for all levels (GDAL: 512).
    pub block_size: u32,
    /// Overview sizes, finest first (each smaller than the previous level).
    pub overviews: Vec<(u32, u32)>,
    pub encode: EncodeOptions,
    /// MinIsBlack for grey/multiband, Rgb for colour, Palette with `palette`.
    pub photometric: Photometric,
    /// ExtraSamples values (e.g. `[2]` for the alpha of RGBA); empty for none.
    pub extra_samples: Vec<u16>,
    /// ColorMap entries as 16-bit (r, g, b); `2^bits` entries.
    pub palette: Option<Vec<[u16; 3]>>,
    /// GDAL_NODATA.
    pub nodata: Option<f64>,
    /// GDAL_METADATA XML, written verbatim.
    pub gdal_metadata: Option<String>,
    /// Georeferencing tags written verbatim on the full-resolution IFD.
    pub geo: RawGeoTags,
    /// Whether every level has an internal mask (blocks written with [`MaskOrImage::Mask`]).
    pub mask: bool,
    /// Write GDAL's ghost structural metadata and block leaders/trailers.
    pub ghost_area: bool,
    pub bigtiff: BigTiff,
    /// Missing blocks are stored sparse (offset and byte count 0) instead of being an error.
    pub allow_sparse: bool,
    /// Software tag.
    pub software: String,
}

impl CogSpec {
    /// A spec with Kiln's defaults: 512 tiles, MinIsBlack, ghost area on, no overviews, no
    /// georeferencing (fill in the rest).
    pub fn new(
        width: u32,
        height: u32,
        bands: u16,
        dtype: DataType,
        encode: EncodeOptions,
    ) -> Self {
        Self {
            width,
            height,
            bands,
            dtype,
            block_size: 512,
            overviews: Vec::new(),
            encode,
            photometric: Photometric::MinIsBlack,
            extra_samples: Vec::new(),
            palette: None,
            nodata: None,
            gdal_metadata: None,
            geo: RawGeoTags::default(),
            mask: false,
            ghost_area: true,
            bigtiff: BigTiff::Auto,
            allow_sparse: false,
            software: concat!("Kiln ", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }

    /// Size of level `level` (0 = full resolution, then the overviews).
    pub fn level_size(&self, level: usize) -> Option<(u32, u32)> {
        if level == 0 {
            Some((self.width, self.height))
        } else {
            self.overviews.get(level - 1).copied()
        }
    }

    /// Number of levels (full resolution + overviews).
    pub fn levels(&self) -> usize {
        1 + self.overviews.len()
    }

    /// Blocks across and down at `level`.
    pub fn level_blocks(&self, level: usize) -> Option<(usize, usize)> {
        let (w, h) = self.level_size(level)?;
        let b = self.block_size.max(1) as usize;
        Some(((w as usize).div_ceil(b), (h as usize).div_ceil(b)))
    }

    /// Pixels that hold data in block `index` (row-major) of `level`: the block size, less on
    /// the right and bottom edges. The `width` and `height` of the [`BlockData`] to encode.
    pub fn block_data_size(&self, level: usize, index: usize) -> Option<(usize, usize)> {
        let (w, h) = self.level_size(level)?;
        let (across, down) = self.level_blocks(level)?;
        if index >= across * down {
            return None;
        }
        let b = self.block_size as usize;
        let (col, row) = (index % across, index / across);
        Some(((w as usize - col * b).min(b), (h as usize - row * b).min(b)))
    }
}

/// Which image of a level a block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskOrImage {
    Image,
    Mask,
}

/// Where one stored block sits in the spool.
#[derive(Debug, Clone, Copy, Default)]
struct Spooled {
    offset: u64,
    len: u64,
}

/// Suffixes of the files the writer creates beside the target (hidden, named after it).
const TEMP_TAG: &str = ".kiln-tmp-";
const SPOOL_TAG: &str = ".kiln-spool-";

/// A streaming COG writer: see the module docs.
pub struct CogWriter {
    spec: CogSpec,
    target: PathBuf,
    spool_path: PathBuf,
    spool: Option<BufWriter<File>>,
    spool_len: u64,
    /// `[level][image = 0, mask = 1][block]`.
    blocks: Vec<[Vec<Option<Spooled>>; 2]>,
}

impl std::fmt::Debug for CogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CogWriter")
            .field("target", &self.target)
            .field("spool", &self.spool_path)
            .field("spool_len", &self.spool_len)
            .finish()
    }
}

fn sibling(target: &Path, tag: &str) -> Result<PathBuf, String> {
    let name = target
        .file_name()
        .ok_or_else(|| "target has no file name".to_string())?
        .to_string_lossy()
        .into_owned();
    Ok(target.with_file_name(format!(".{name}{tag}{}", std::process::id())))
}

/// Deletes the temporary and spool files an earlier (crashed) run writing `target_name` in
/// `dir` left behind. Returns how many files were removed.
pub fn cleanup_stale_temps(dir: &Path, target_name: &str) -> Result<usize, CogWriteError> {
    let io = |op, source| CogWriteError::Io {
        op,
        path: dir.to_path_buf(),
        source,
    };
    let prefixes = [
        format!(".{target_name}{TEMP_TAG}"),
        format!(".{target_name}{SPOOL_TAG}"),
    ];
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(|e| io("cannot list", e))? {
        let entry = entry.map_err(|e| io("cannot list", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = prefixes.iter().any(|p| {
            name.strip_prefix(p.as_str())
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit()))
        });
        if stale {
            let path = entry.path();
            fs::remove_file(&path).map_err(|source| CogWriteError::Io {
                op: "cannot remove stale temp",
                path,
                source,
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

impl CogWriter {
    /// Checks `spec` and opens the spool file beside `target` (the target itself is only
    /// written by [`CogWriter::finish`]).
    pub fn create(target: &Path, spec: CogSpec) -> Result<Self, CogWriteError> {
        let bad = |reason: String| CogWriteError::Invalid {
            path: target.to_path_buf(),
            reason,
        };
        if spec.width == 0 || spec.height == 0 || spec.bands == 0 {
            return Err(bad(format!(
                "empty raster ({}x{}, {} bands)",
                spec.width, spec.height, spec.bands
            )));
        }
        if spec.block_size == 0 || !spec.block_size.is_multiple_of(16) || spec.block_size > 16_384 {
            return Err(bad(format!(
                "block size {} is not a multiple of 16 in 16..=16384",
                spec.block_size
            )));
        }
        let mut prev = (spec.width, spec.height);
        for &(w, h) in &spec.overviews {
            if w == 0 || h == 0 || w > prev.0 || h > prev.1 || (w, h) == prev {
                return Err(bad(format!(
                    "overview {w}x{h} is not smaller than the level before ({}x{})",
                    prev.0, prev.1
                )));
            }
            prev = (w, h);
        }
        if let Some(p) = &spec.palette {
            let bits = spec.dtype.size_bytes() * 8;
            if spec.bands != 1 || spec.dtype.is_float() || bits > 16 || p.len() != 1 << bits {
                return Err(bad(format!(
                    "a palette of {} entries does not match {} band(s) of {}",
                    p.len(),
                    spec.bands,
                    spec.dtype.name()
                )));
            }
        }
        let spool_path = sibling(target, SPOOL_TAG).map_err(bad)?;
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create(true)
            .truncate(true)
            .open(&spool_path)
            .map_err(|source| CogWriteError::Io {
                op: "cannot create spool",
                path: spool_path.clone(),
                source,
            })?;
        let mut blocks = Vec::with_capacity(spec.levels());
        for level in 0..spec.levels() {
            let (a, d) = spec.level_blocks(level).unwrap_or((0, 0));
            let masks = if spec.mask { a * d } else { 0 };
            blocks.push([vec![None; a * d], vec![None; masks]]);
        }
        Ok(Self {
            spec,
            target: target.to_path_buf(),
            spool_path,
            spool: Some(BufWriter::with_capacity(1 << 20, file)),
            spool_len: 0,
            blocks,
        })
    }

    /// The spec the writer was created with.
    pub fn spec(&self) -> &CogSpec {
        &self.spec
    }

    fn invalid(&self, reason: String) -> CogWriteError {
        CogWriteError::Invalid {
            path: self.target.clone(),
            reason,
        }
    }

    fn cog_err(&self, source: CogError) -> CogWriteError {
        CogWriteError::Cog {
            path: self.target.clone(),
            source,
        }
    }

    /// Stores the already encoded bytes of block `index` (row-major) of `level` (0 = full
    /// resolution, 1.. = overviews finest first). Each block may be written once, in any
    /// order. An empty `bytes` stores the block as sparse.
    pub fn write_block(
        &mut self,
        level: usize,
        which: MaskOrImage,
        index: usize,
        bytes: &[u8],
    ) -> Result<(), CogWriteError> {
        let k = match which {
            MaskOrImage::Image => 0,
            MaskOrImage::Mask => 1,
        };
        let n = self
            .blocks
            .get(level)
            .map(|l| l[k].len())
            .ok_or_else(|| self.invalid(format!("level {level} does not exist")))?;
        if index >= n {
            return Err(self.invalid(format!(
                "{which:?} block {index} of level {level} out of range ({n} blocks)"
            )));
        }
        if self.blocks[level][k][index].is_some() {
            return Err(self.invalid(format!(
                "{which:?} block {index} of level {level} written twice"
            )));
        }
        let len = bytes.len() as u64;
        if len > u64::from(u32::MAX) {
            return Err(self.invalid(format!("block {index} of {len} bytes exceeds 4 GiB")));
        }
        let offset = self.spool_len;
        let spool_path = self.spool_path.clone();
        let Some(spool) = self.spool.as_mut() else {
            return Err(self.invalid("writer already finished".into()));
        };
        spool.write_all(bytes).map_err(|source| CogWriteError::Io {
            op: "cannot write spool",
            path: spool_path,
            source,
        })?;
        self.spool_len += len;
        self.blocks[level][k][index] = Some(Spooled { offset, len });
        Ok(())
    }

    /// Encodes `data` with the spec's options ([`encode_block`]) and stores it as image block
    /// `index` of `level`.
    pub fn write_samples(
        &mut self,
        level: usize,
        index: usize,
        data: &BlockData<'_>,
    ) -> Result<(), CogWriteError> {
        if data.samples.dtype() != self.spec.dtype || data.bands != usize::from(self.spec.bands) {
            return Err(self.invalid(format!(
                "block of {} bands of {} for a COG of {} bands of {}",
                data.bands,
                data.samples.dtype().name(),
                self.spec.bands,
                self.spec.dtype.name()
            )));
        }
        let b = self.spec.block_size as usize;
        let bytes = encode_block(data, b, b, &self.spec.encode).map_err(|e| self.cog_err(e))?;
        self.write_block(level, MaskOrImage::Image, index, &bytes)
    }

    /// Encodes `mask` ([`encode_mask_block`], `width` x `height` bytes, non-zero = valid) and
    /// stores it as mask block `index` of `level`.
    pub fn write_mask(
        &mut self,
        level: usize,
        index: usize,
        mask: &[u8],
        width: usize,
        height: usize,
    ) -> Result<(), CogWriteError> {
        let b = self.spec.block_size as usize;
        let level_opt = match self.spec.encode.compression {
            Compression::Deflate => self.spec.encode.level,
            _ => None,
        };
        let bytes =
            encode_mask_block(mask, width, height, b, b, level_opt).map_err(|e| self.cog_err(e))?;
        self.write_block(level, MaskOrImage::Mask, index, &bytes)
    }

    /// Writes the COG (see the module docs for the layout) to a temporary file beside the
    /// target, renames it over the target and deletes the spool. Returns the file size.
    pub fn finish(mut self) -> Result<u64, CogWriteError> {
        let temp = sibling(&self.target, TEMP_TAG).map_err(|r| self.invalid(r))?;
        let result = self.finish_into(&temp);
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        let size = result?;
        fs::rename(&temp, &self.target).map_err(|source| {
            let _ = fs::remove_file(&temp);
            CogWriteError::Io {
                op: "cannot rename the finished COG over",
                path: self.target.clone(),
                source,
            }
        })?;
        Ok(size)
    }

    fn finish_into(&mut self, temp: &Path) -> Result<u64, CogWriteError> {
        let spool = self
            .spool
            .take()
            .ok_or_else(|| self.invalid("writer already finished".into()))?;
        let mut spool = spool.into_inner().map_err(|e| CogWriteError::Io {
            op: "cannot flush spool",
            path: self.spool_path.clone(),
            source: e.into_error(),
        })?;
        // Missing blocks.
        for (level, kinds) in self.blocks.iter().enumerate() {
            for (k, list) in kinds.iter().enumerate() {
                if let Some(i) = list.iter().position(Option::is_none) {
                    if !self.spec.allow_sparse {
                        let what = if k == 0 { "image" } else { "mask" };
                        return Err(self.invalid(format!(
                            "{what} block {i} of level {level} was never written"
                        )));
                    }
                }
            }
        }
        let plan = Plan::build(&self.spec, &self.blocks).map_err(|e| self.cog_err(e))?;
        let out_file = File::create(temp).map_err(|source| CogWriteError::Io {
            op: "cannot create",
            path: temp.to_path_buf(),
            source,
        })?;
        let io_out = |source| CogWriteError::Io {
            op: "cannot write",
            path: temp.to_path_buf(),
            source,
        };
        let mut out = BufWriter::with_capacity(1 << 20, out_file);
        out.write_all(&plan.head).map_err(io_out)?;
        let mut pos = plan.head.len() as u64;
        let mut buf = Vec::new();
        for item in &plan.data {
            if pos != item.file_offset {
                return Err(self.invalid(format!(
                    "internal layout error: block at {pos}, planned at {}",
                    item.file_offset
                )));
            }
            buf.resize(item.spool.len as usize, 0);
            spool
                .seek(SeekFrom::Start(item.spool.offset))
                .and_then(|_| spool.read_exact(&mut buf))
                .map_err(|source| CogWriteError::Io {
                    op: "cannot read spool",
                    path: self.spool_path.clone(),
                    source,
                })?;
            if plan.leaders {
                out.write_all(&ORDER.bytes(buf.len() as u32))
                    .map_err(io_out)?;
                pos += 4;
            }
            out.write_all(&buf).map_err(io_out)?;
            pos += buf.len() as u64;
            if plan.leaders {
                let tail_start = buf.len().saturating_sub(4);
                let mut tail = [0u8; 4];
                tail[4 - (buf.len() - tail_start)..].copy_from_slice(&buf[tail_start..]);
                out.write_all(&tail).map_err(io_out)?;
                pos += 4;
            }
        }
        let file = out.into_inner().map_err(|e| CogWriteError::Io {
            op: "cannot flush",
            path: temp.to_path_buf(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_out)?;
        drop(spool);
        let _ = fs::remove_file(&self.spool_path);
        Ok(pos)
    }
}

impl Drop for CogWriter {
    fn drop(&mut self) {
        // Finished or abandoned: the spool is never kept.
        self.spool = None;
        let _ = fs::remove_file(&self.spool_path);
    }
}
