//! Reading a window of a source image: which blocks it needs, and assembling decoded blocks
//! (plus the validity mask from an internal mask, nodata, alpha or NaN) into one [`Raster`].

use std::collections::HashMap;
use std::sync::Arc;

use kiln_cog::decode::Block;
use kiln_cog::{ImageIfd, Planar, TiffHeader};
use kiln_core::dtype::Sample;
use kiln_core::warp::PixelWindow;
use kiln_core::{Raster, Samples};

use crate::EngineError;

/// Which image of the file a block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Plane {
    Image,
    Mask,
}

/// A block of one image (level) of one open source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct BlockId {
    pub level: usize,
    pub plane: Plane,
    pub index: usize,
}

/// How validity is decided for a source, in GDAL's order of precedence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum MaskRule {
    /// An internal mask image (GDAL's `.msk` equivalent inside the file).
    Internal,
    /// Band `alpha` (0-based, in the file) is alpha: 0 is transparent.
    Alpha(usize),
    /// A sample equal to this value (or NaN when the value is NaN) is nodata.
    Nodata(f64),
    /// Every pixel inside the image is valid.
    AllValid,
}

/// What a source window read needs: the level, the window, the file bands to read.
#[derive(Debug, Clone)]
pub(crate) struct WindowPlan {
    pub level: usize,
    pub window: PixelWindow,
    /// 0-based file bands returned to the caller, in order.
    pub bands: Vec<usize>,
    pub mask: MaskRule,
}

impl WindowPlan {
    /// File bands that must be decoded: the returned ones plus an alpha band if it decides validity.
    fn read_bands(&self) -> Vec<usize> {
        let mut b = self.bands.clone();
        if let MaskRule::Alpha(a) = self.mask {
            if !b.contains(&a) {
                b.push(a);
            }
        }
        b
    }

    /// Every block this plan touches.
    pub fn blocks(&self, header: &TiffHeader) -> Vec<BlockId> {
        let mut out = Vec::new();
        if let Some(ifd) = header.images.get(self.level) {
            let planes: Vec<usize> = match ifd.planar {
                Planar::Chunky => vec![0],
                Planar::Separate => self.read_bands(),
            };
            for plane in planes {
                for index in blocks_in_window(ifd, &self.window, plane) {
                    out.push(BlockId {
                        level: self.level,
                        plane: Plane::Image,
                        index,
                    });
                }
            }
        }
        if self.mask == MaskRule::Internal {
            if let Some(Some(mask)) = header.masks.get(self.level) {
                for index in blocks_in_window(mask, &self.window, 0) {
                    out.push(BlockId {
                        level: self.level,
                        plane: Plane::Mask,
                        index,
                    });
                }
            }
        }
        out
    }
}

fn blocks_in_window(ifd: &ImageIfd, w: &PixelWindow, plane: usize) -> Vec<usize> {
    let (bw, bh) = (
        ifd.block_width.max(1) as usize,
        ifd.block_height.max(1) as usize,
    );
    let across = (ifd.width as usize).div_ceil(bw);
    let down = (ifd.height as usize).div_ceil(bh);
    if w.width == 0 || w.height == 0 {
        return Vec::new();
    }
    let (c0, c1) = (w.col_off / bw, (w.col_off + w.width - 1) / bw);
    let (r0, r1) = (w.row_off / bh, (w.row_off + w.height - 1) / bh);
    let mut v = Vec::new();
    for r in r0..=r1.min(down.saturating_sub(1)) {
        for c in c0..=c1.min(across.saturating_sub(1)) {
            v.push(plane * across * down + r * across + c);
        }
    }
    v
}

/// Copies the part of `block` (block column/row `bc`,`br` of an image with blocks `bw` x `bh`)
/// that overlaps `win` into `dst` (band `dst_band` of a band-sequential window buffer), taking
/// band `src_band` of the block.
#[allow(clippy::too_many_arguments)]
fn copy_block<T: Sample>(
    dst: &mut [T],
    win: &PixelWindow,
    dst_band: usize,
    block: &[T],
    block_w: usize,
    block_h: usize,
    src_band: usize,
    origin: (usize, usize),
) {
    let (bx0, by0) = origin;
    let x0 = win.col_off.max(bx0);
    let x1 = (win.col_off + win.width).min(bx0 + block_w);
    let y0 = win.row_off.max(by0);
    let y1 = (win.row_off + win.height).min(by0 + block_h);
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    let plane = win.width * win.height;
    let n = x1 - x0;
    for y in y0..y1 {
        let s = src_band * block_w * block_h + (y - by0) * block_w + (x0 - bx0);
        let d = dst_band * plane + (y - win.row_off) * win.width + (x0 - win.col_off);
        if let (Some(src), Some(out)) = (block.get(s..s + n), dst.get_mut(d..d + n)) {
            out.copy_from_slice(src);
        }
    }
}

macro_rules! same_type {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $body:expr, $otherwise:expr) => {
        match ($a, $b) {
            (Samples::U8($x), Samples::U8($y)) => $body,
            (Samples::I8($x), Samples::I8($y)) => $body,
            (Samples::U16($x), Samples::U16($y)) => $body,
            (Samples::I16($x), Samples::I16($y)) => $body,
            (Samples::U32($x), Samples::U32($y)) => $body,
            (Samples::I32($x), Samples::I32($y)) => $body,
            (Samples::F32($x), Samples::F32($y)) => $body,
            (Samples::F64($x), Samples::F64($y)) => $body,
            _ => $otherwise,
        }
    };
}

/// Builds the window raster (bands of `plan.bands` + mask) from decoded blocks.
pub(crate) fn assemble(
    header: &TiffHeader,
    plan: &WindowPlan,
    blocks: &HashMap<BlockId, Arc<Block>>,
) -> Result<Raster, EngineError> {
    let ifd = header
        .images
        .get(plan.level)
        .ok_or_else(|| EngineError::Internal {
            reason: format!("level {} missing", plan.level),
        })?;
    let win = plan.window;
    let read_bands = plan.read_bands();
    let nb = read_bands.len();
    let mut out = Raster::empty(win.width, win.height, nb, ifd.dtype);
    let (bw, bh) = (
        ifd.block_width.max(1) as usize,
        ifd.block_height.max(1) as usize,
    );
    let across = (ifd.width as usize).div_ceil(bw);
    let per_plane = across * (ifd.height as usize).div_ceil(bh);
    for (id, block) in blocks {
        if id.plane != Plane::Image || id.level != plan.level {
            continue;
        }
        let within = id.index % per_plane.max(1);
        let origin = ((within % across) * bw, (within / across) * bh);
        for (dst_band, &file_band) in read_bands.iter().enumerate() {
            let src_band = match ifd.planar {
                Planar::Chunky => file_band,
                Planar::Separate => {
                    if id.index / per_plane.max(1) != file_band {
                        continue;
                    }
                    0
                }
            };
            if src_band >= block.bands {
                return Err(EngineError::Internal {
                    reason: format!("block has {} bands, band {src_band} wanted", block.bands),
                });
            }
            same_type!(
                &mut out.samples,
                &block.samples,
                |d, s| copy_block(
                    d,
                    &win,
                    dst_band,
                    s,
                    block.width,
                    block.height,
                    src_band,
                    origin
                ),
                return Err(EngineError::Internal {
                    reason: "block dtype differs from image".into()
                })
            );
        }
    }
    out.mask.fill(255);
    apply_mask(header, plan, blocks, &mut out)?;
    if nb > plan.bands.len() {
        // Drop the alpha band that was only read to decide validity.
        out = drop_trailing_bands(out, plan.bands.len());
    }
    Ok(out)
}

fn apply_mask(
    header: &TiffHeader,
    plan: &WindowPlan,
    blocks: &HashMap<BlockId, Arc<Block>>,
    out: &mut Raster,
) -> Result<(), EngineError> {
    let win = plan.window;
    let plane = win.width * win.height;
    match plan.mask {
        MaskRule::AllValid => {}
        MaskRule::Internal => {
            let Some(Some(mifd)) = header.masks.get(plan.level) else {
                return Ok(());
            };
            let (bw, bh) = (
                mifd.block_width.max(1) as usize,
                mifd.block_height.max(1) as usize,
            );
            let across = (mifd.width as usize).div_ceil(bw);
            let mut m = vec![0u8; plane];
            for (id, block) in blocks {
                if id.plane != Plane::Mask || id.level != plan.level {
                    continue;
                }
                let origin = ((id.index % across) * bw, (id.index / across) * bh);
                if let Samples::U8(s) = &block.samples {
                    copy_block(&mut m, &win, 0, s, block.width, block.height, 0, origin);
                }
            }
            out.mask = m;
        }
        MaskRule::Alpha(_) => {
            let alpha_band = out.bands - 1;
            for i in 0..plane {
                if out.samples.get_f64(alpha_band * plane + i) == 0.0 {
                    out.mask[i] = 0;
                }
            }
        }
        MaskRule::Nodata(nd) => {
            // GDAL's per-dataset mask from nodata: a pixel is invalid when every band holds
            // the nodata value (NaN matches NaN).
            let bands = out.bands;
            kiln_core::with_samples!(&out.samples, v => {
                for i in 0..plane {
                    let all_nodata = (0..bands).all(|b| {
                        let x = v[b * plane + i].to_f64();
                        x == nd || (nd.is_nan() && x.is_nan())
                    });
                    if all_nodata {
                        out.mask[i] = 0;
                    }
                }
            });
        }
    }
    Ok(())
}

fn drop_trailing_bands(r: Raster, keep: usize) -> Raster {
    let n = r.width * r.height * keep;
    let samples = kiln_core::with_samples!(r.samples, v => {
        let mut v = v;
        v.truncate(n);
        Samples::from(v)
    });
    Raster {
        bands: keep,
        samples,
        ..r
    }
}
