//! Products on top of a raw tile: raw values (`.npy`, GeoTIFF), single band with stretch and
//! colormap, palette expansion, and RGB; encoded as the caller asks. Runs on the CPU pool.

use std::path::Path;
use std::sync::Arc;

use kiln_core::product::{
    self, stretch_to_index, Colormap, ExplicitColormap, Image8, ImageFormat, Palette, PixelLayout,
    Quality, Stretch,
};
use kiln_core::{DataType, Raster};

use crate::source::tile_size_u32;
use crate::{Engine, EngineError, OpenSource, TileRequest};

/// What a tile is encoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Raw values in TiTiler's `.npy` layout (bands, then the mask band).
    Npy,
    /// Raw values as a GeoTIFF in EPSG:3857 with nodata.
    GeoTiff,
    Image(ImageFormat),
}

impl OutputFormat {
    /// The format named by a file extension (`npy`, `tif`/`tiff`, `png`, `jpg`/`jpeg`, `webp`).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "npy" => Some(Self::Npy),
            "tif" | "tiff" => Some(Self::GeoTiff),
            other => ImageFormat::from_extension(other).map(Self::Image),
        }
    }

    pub fn from_path(path: &Path) -> Option<Self> {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(Self::from_extension)
    }
}

/// How to turn values into an image.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub format: OutputFormat,
    /// Value ranges mapped onto the colours: none (0..255 for 8-bit data, else the tile's
    /// valid range), one for every band, or one per band of an RGB image.
    pub stretch: Vec<(f64, f64)>,
    pub colormap: Option<String>,
    /// Value → colour classes (Terracotta's `explicit_color_map`); wins over `colormap`.
    pub explicit_colormap: Option<ExplicitColormap>,
    pub quality: u8,
}

/// Encodes a tile read with `req` from `source` (on the CPU pool).
pub async fn encode_tile(
    engine: &Engine,
    source: &Arc<OpenSource>,
    req: &TileRequest,
    raster: Raster,
    opts: &RenderOptions,
) -> Result<Vec<u8>, EngineError> {
    let transform = engine
        .tile_matrix_set()
        .tile_transform(req.tile, tile_size_u32(req.tile_size));
    encode_raster(engine, source, raster, transform, opts).await
}

/// Encodes any raster in the tile CRS whose pixel-corner transform is `transform` (previews
/// and grids that are not one tile), on the CPU pool.
pub async fn encode_raster(
    engine: &Engine,
    source: &Arc<OpenSource>,
    raster: Raster,
    transform: kiln_core::GeoTransform,
    opts: &RenderOptions,
) -> Result<Vec<u8>, EngineError> {
    let source = source.clone();
    let opts = opts.clone();
    engine
        .pool()
        .run(move || encode_sync(&source, &raster, &transform, &opts))
        .await?
}

fn encode_sync(
    source: &OpenSource,
    raster: &Raster,
    transform: &kiln_core::GeoTransform,
    opts: &RenderOptions,
) -> Result<Vec<u8>, EngineError> {
    let uri = source.uri();
    let core_err = |e| EngineError::from_core(uri, e);
    match opts.format {
        OutputFormat::Npy => product::encode_npy(raster).map_err(core_err),
        OutputFormat::GeoTiff => {
            kiln_cog::write::write_geotiff_tile(raster, transform, 3857, source.header().nodata)
                .map_err(|e| EngineError::from_cog(uri, e))
        }
        OutputFormat::Image(format) => {
            let quality = Quality::new(opts.quality).map_err(core_err)?;
            let image = match raster.bands {
                1 => single_band_image(source, raster, opts)?,
                3 => {
                    let ranges = match opts.stretch.as_slice() {
                        [r, g, b] => [Some(*r), Some(*g), Some(*b)],
                        [one] => [Some(*one); 3],
                        [] => [None; 3],
                        other => {
                            return Err(EngineError::bad_request(
                                "stretch",
                                format!("give 1 or 3 ranges for an RGB image, not {}", other.len()),
                            ))
                        }
                    };
                    let auto = stretch_for(raster, None, None).map_err(core_err)?;
                    let mut s = [auto; 3];
                    for (slot, range) in s.iter_mut().zip(ranges) {
                        if let Some(r) = range {
                            *slot = stretch_for(raster, Some(r), None).map_err(core_err)?;
                        }
                    }
                    product::rgb_image(raster, [0, 1, 2], s)
                        .map_err(core_err)?
                        .into()
                }
                n => {
                    return Err(EngineError::bad_request(
                        "bands",
                        format!(
                            "an image needs 1 or 3 bands, the tile has {n}: pick them with bands"
                        ),
                    ))
                }
            };
            match image {
                Rendered::Indexed { indices, palette } if format == ImageFormat::Png => {
                    product::encode_png_indexed(raster.width, raster.height, &indices, &palette)
                        .map_err(core_err)
                }
                Rendered::Indexed { indices, palette } => {
                    // JPEG and WebP have no palettes: expand to RGBA.
                    let entries = palette.entries();
                    let mut rgba = Vec::with_capacity(indices.len() * 4);
                    for &i in &indices {
                        rgba.extend_from_slice(
                            entries.get(usize::from(i)).unwrap_or(&[0, 0, 0, 0]),
                        );
                    }
                    Image8::new(raster.width, raster.height, PixelLayout::Rgba, rgba)
                        .and_then(|img| img.encode(format, quality))
                        .map_err(core_err)
                }
                Rendered::Image(img) => img.encode(format, quality).map_err(core_err),
            }
        }
    }
}

/// A rendered tile: palette indices (single band; PNG keeps them indexed) or an image.
enum Rendered {
    Indexed { indices: Vec<u8>, palette: Palette },
    Image(Image8),
}

impl From<Image8> for Rendered {
    fn from(img: Image8) -> Self {
        Self::Image(img)
    }
}

fn single_band_image(
    source: &OpenSource,
    raster: &Raster,
    opts: &RenderOptions,
) -> Result<Rendered, EngineError> {
    let uri = source.uri();
    let core_err = |e| EngineError::from_core(uri, e);
    let file_palette = source
        .header()
        .images
        .first()
        .and_then(|i| i.palette.clone());
    if let Some(explicit) = &opts.explicit_colormap {
        let indices = explicit.label_band(raster, 0).map_err(core_err)?;
        return Ok(Rendered::Indexed {
            indices,
            palette: explicit.palette(),
        });
    }
    let (indices, palette) = match (&opts.colormap, file_palette) {
        // A palette file without a requested colormap shows its own colours.
        (None, Some(pal)) if raster.dtype() == DataType::U8 => {
            let mut entries: Vec<[u8; 4]> = pal
                .iter()
                .map(|c| {
                    let to8 = |v: u16| (v / 257) as u8;
                    [to8(c[0]), to8(c[1]), to8(c[2]), 255]
                })
                .collect();
            entries.resize(256, [0, 0, 0, 255]);
            let idx: Vec<u8> = match &raster.samples {
                kiln_core::Samples::U8(v) => v.clone(),
                _ => Vec::new(),
            };
            // Masked pixels need a transparent entry: use one the data does not use, if any.
            let used: std::collections::HashSet<u8> = idx
                .iter()
                .zip(&raster.mask)
                .filter(|(_, &m)| m != 0)
                .map(|(&i, _)| i)
                .collect();
            let idx = match (0..=255u8).find(|i| !used.contains(i)) {
                Some(t) if raster.mask.contains(&0) => {
                    entries[usize::from(t)] = [0, 0, 0, 0];
                    idx.iter()
                        .zip(&raster.mask)
                        .map(|(&i, &m)| if m == 0 { t } else { i })
                        .collect()
                }
                _ => idx,
            };
            (idx, Palette::new(entries).map_err(core_err)?)
        }
        (name, _) => {
            let requested = match opts.stretch.as_slice() {
                [] => None,
                [one] => Some(*one),
                other => {
                    return Err(EngineError::bad_request(
                        "stretch",
                        format!("give 1 range for a single-band image, not {}", other.len()),
                    ))
                }
            };
            let stretch = stretch_for(raster, requested, Some(0)).map_err(core_err)?;
            let palette = match name.as_deref() {
                Some(name) => Colormap::by_name(name).map_err(core_err)?.palette(),
                None => Palette::grey(),
            };
            let idx = stretch_to_index(raster, 0, stretch).map_err(core_err)?;
            (idx, palette)
        }
    };
    Ok(Rendered::Indexed { indices, palette })
}

/// The stretch to use: the caller's, else 0..255 for 8-bit data, else the valid range of
/// `band` (or of all bands) in this tile.
fn stretch_for(
    raster: &Raster,
    requested: Option<(f64, f64)>,
    band: Option<usize>,
) -> Result<Stretch, kiln_core::CoreError> {
    if let Some((lo, hi)) = requested {
        return Stretch::new(lo, hi);
    }
    if raster.dtype() == DataType::U8 {
        return Stretch::new(0.0, 255.0);
    }
    let plane = raster.pixel_count();
    let bands: Vec<usize> = band.map_or_else(|| (0..raster.bands).collect(), |b| vec![b]);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for b in bands {
        for i in 0..plane {
            if raster.mask[i] != 0 {
                let v = raster.samples.get_f64(b * plane + i);
                if v.is_finite() {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
        }
    }
    if !lo.is_finite() {
        return Stretch::new(0.0, 1.0);
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    Stretch::new(lo, hi)
}
