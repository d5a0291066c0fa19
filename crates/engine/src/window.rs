//! Reading a window of a source image: which blocks it needs, and assembling decoded blocks
//! (plus the validity mask from an internal mask, nodata, alpha or NaN) into one [`Raster`].

use std::collections::HashMap;
use std::sync::Arc;

use kiln_cog::decode::Block;
use kiln_cog::{ImageIfd, Planar, TiffHeader};
use kiln_core::{GeoTransform, PixelWindow, Planes, Raster};

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

/// The part of a block (`block_w` x `block_h`, its corner at `origin` in the level) that
/// overlaps `win`: the part in block pixels and where it goes in the window, or `None`.
fn overlap(
    win: &PixelWindow,
    (block_w, block_h): (usize, usize),
    origin: (usize, usize),
) -> Option<(PixelWindow, (usize, usize))> {
    let (bx0, by0) = origin;
    let x0 = win.col_off.max(bx0);
    let x1 = (win.col_off + win.width).min(bx0 + block_w);
    let y0 = win.row_off.max(by0);
    let y1 = (win.row_off + win.height).min(by0 + block_h);
    if x0 >= x1 || y0 >= y1 {
        return None;
    }
    let part = PixelWindow {
        col_off: x0 - bx0,
        row_off: y0 - by0,
        width: x1 - x0,
        height: y1 - y0,
    };
    Some((part, (x0 - win.col_off, y0 - win.row_off)))
}

/// Builds the window raster (bands of `plan.bands` + mask) from decoded blocks, on the
/// window's grid in the level whose transform is `level_transform`.
pub(crate) fn assemble(
    header: &TiffHeader,
    plan: &WindowPlan,
    blocks: &HashMap<BlockId, Arc<Block>>,
    level_transform: &GeoTransform,
) -> Result<Raster, EngineError> {
    let ifd = header
        .images
        .get(plan.level)
        .ok_or_else(|| EngineError::Internal {
            reason: format!("level {} missing", plan.level),
        })?;
    let win = plan.window;
    let read_bands = plan.read_bands();
    let mut out = Raster::empty(win.width, win.height, read_bands.len(), ifd.dtype)
        .map_err(internal)?
        .with_transform(win.transform(level_transform));
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
        let Some((part, at)) = overlap(&win, (block.width, block.height), origin) else {
            continue;
        };
        let planes = Planes::new(&block.samples, block.width, block.height).map_err(internal)?;
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
            out.paste_band(dst_band, planes, src_band, part, at)
                .map_err(internal)?;
        }
    }
    apply_mask(header, plan, blocks, &mut out)?;
    if read_bands.len() > plan.bands.len() {
        // Drop the alpha band that was only read to decide validity.
        out.truncate_bands(plan.bands.len()).map_err(internal)?;
    }
    Ok(out)
}

fn internal(e: kiln_core::CoreError) -> EngineError {
    EngineError::Internal {
        reason: format!("assembling a window: {e}"),
    }
}

fn apply_mask(
    header: &TiffHeader,
    plan: &WindowPlan,
    blocks: &HashMap<BlockId, Arc<Block>>,
    out: &mut Raster,
) -> Result<(), EngineError> {
    let win = plan.window;
    let mask_ifd = match plan.mask {
        MaskRule::Internal => header.masks.get(plan.level).and_then(Option::as_ref),
        _ => None,
    };
    let Some(mifd) = mask_ifd else {
        out.set_all_valid();
        match plan.mask {
            MaskRule::Alpha(a) => {
                // The alpha band is last unless it was asked for among the bands.
                let at = plan.read_bands().iter().position(|&b| b == a);
                out.mask_alpha(at.unwrap_or(out.bands() - 1))
                    .map_err(internal)?;
            }
            MaskRule::Nodata(nd) => out.mask_nodata(nd),
            MaskRule::Internal | MaskRule::AllValid => {}
        }
        return Ok(());
    };
    // An internal mask: pixels of mask blocks not in the file stay invalid.
    let (bw, bh) = (
        mifd.block_width.max(1) as usize,
        mifd.block_height.max(1) as usize,
    );
    let across = (mifd.width as usize).div_ceil(bw);
    for (id, block) in blocks {
        if id.plane != Plane::Mask || id.level != plan.level {
            continue;
        }
        let origin = ((id.index % across) * bw, (id.index / across) * bh);
        if let Some((part, at)) = overlap(&win, (block.width, block.height), origin) {
            let planes =
                Planes::new(&block.samples, block.width, block.height).map_err(internal)?;
            out.paste_mask(planes, part, at).map_err(internal)?;
        }
    }
    Ok(())
}
