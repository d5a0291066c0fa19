//! Products on top of raw values: [`Engine::render`] reads a [`RenderRequest`]'s layers over
//! its area, stacks them, evaluates band math, and encodes raw values (`.npy`, GeoTIFF), a
//! single band with stretch and colormap (or the file's palette), or RGB. The CPU-heavy steps
//! run on the pool. Previews and point samples are planned here too, so callers only parse
//! parameters.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_core::crs::WEB_MERCATOR_MAX_LAT;
use kiln_core::expr::Expression;
use kiln_core::product::{
    self, stretch_to_index, Colormap, Image8, ImageFormat, Palette, PixelLayout, Quality, Stretch,
};
use kiln_core::warp::{GridSpec, Resampling};
use kiln_core::{DataType, GeoBounds, GeoTransform, Raster, Samples};

use crate::request::{
    Area, ColormapChoice, ComputeOutput, ImageOutput, Product, RawFormat, RenderRequest, Terrain,
    Tms,
};
use crate::{Engine, EngineError, OpenSource};

/// Longest side of a preview image unless the caller asks otherwise.
pub const PREVIEW_DEFAULT_PX: usize = 256;
/// JPEG / WebP quality of image tiles unless the caller says otherwise (server and CLI).
pub const DEFAULT_QUALITY: u8 = 85;
/// Largest side of any rendered grid (tiles with buffer, previews).
pub const MAX_GRID_PX: usize = 4096;
/// Largest tile buffer, in pixels on each side.
pub const MAX_BUFFER_PX: u32 = 256;
/// Side of the grid a point is sampled on, metres in the tile CRS (a few millimetres: the
/// nearest source pixel is the one containing the point).
const POINT_GRID_M: f64 = 0.001;

/// The file formats of tile URLs and `kiln tile` outputs, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Raw(RawFormat),
    Image(ImageFormat),
}

impl OutputFormat {
    /// The format named by a file extension (`npy`, `tif`/`tiff`, `png`, `jpg`/`jpeg`, `webp`).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "npy" => Some(Self::Raw(RawFormat::Npy)),
            "tif" | "tiff" => Some(Self::Raw(RawFormat::GeoTiff)),
            other => ImageFormat::from_extension(other).map(Self::Image),
        }
    }

    pub fn from_path(path: &Path) -> Option<Self> {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(Self::from_extension)
    }
}

/// An encoded render and how long its stages took.
#[derive(Debug, Clone)]
pub struct RenderOutput {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub timings: Timings,
    /// Which sources of the first layer were read and which filled pixels.
    pub sources: SourceTrace,
}

/// Indices into the first layer's sources (a collection's candidates, in composite order).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SourceTrace {
    /// Sources whose window overlapped the area and were read.
    pub read: Vec<usize>,
    /// Sources that filled at least one pixel no earlier source had.
    pub contributed: Vec<usize>,
}

/// Stage durations of one render: reading (fetch, decode, warp, stack, band math) and encoding.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timings {
    pub read: Duration,
    pub encode: Duration,
}

/// How the encoder turns the values into bytes, with every range resolved.
#[derive(Debug, Clone)]
enum Encoding {
    Raw(RawFormat),
    Single {
        /// `None`: the tile's own valid range (or 0..255 for 8-bit data).
        stretch: Option<(f64, f64)>,
        colormap: ColormapChoice,
        image: ImageOutput,
    },
    Rgb {
        stretch: [Option<(f64, f64)>; 3],
        image: ImageOutput,
    },
    Terrain {
        terrain: Terrain,
        /// The tile's zoom, for per-zoom quantisation.
        zoom: Option<u8>,
    },
}

impl Engine {
    /// Renders `req`: the encoded bytes, their MIME type and the stage timings.
    pub async fn render(&self, req: &RenderRequest) -> Result<RenderOutput, EngineError> {
        let t0 = Instant::now();
        let (values, sources) = self.render_values_traced(req).await?;
        let t1 = Instant::now();
        let bytes = self.encode(req, values).await?;
        Ok(RenderOutput {
            bytes,
            content_type: req.content_type(),
            timings: Timings {
                read: t1 - t0,
                encode: t1.elapsed(),
            },
            sources,
        })
    }

    /// The grid an [`Area`] covers in the tile CRS.
    pub fn area_grid(&self, area: &Area) -> Result<GridSpec, EngineError> {
        let grid = match *area {
            Area::Tile {
                tms: Tms::WebMercatorQuad,
                tile,
                size,
                buffer,
            } => {
                if !(size == 256 || size == 512) {
                    return Err(EngineError::bad_request(
                        "tile_size",
                        format!("{size} is not 256 or 512"),
                    ));
                }
                if buffer > MAX_BUFFER_PX {
                    return Err(EngineError::bad_request(
                        "buffer",
                        format!("{buffer} pixels: at most {MAX_BUFFER_PX}"),
                    ));
                }
                let tile_grid = GridSpec {
                    transform: self.tile_matrix_set().tile_transform(tile, size),
                    width: size as usize,
                    height: size as usize,
                };
                grow(&tile_grid, buffer)
            }
            Area::Grid(g) => g,
        };
        Ok(grid)
    }

    /// The values of a request before encoding: every layer read over the area and stacked
    /// band after band, and for band math the expression's result (float64, NaN invalid).
    pub async fn render_values(&self, req: &RenderRequest) -> Result<Raster, EngineError> {
        Ok(self.render_values_traced(req).await?.0)
    }

    /// The grid a request reads: its area, grown by the margin its product needs (terrain
    /// gradients read one pixel more on every side, so tiles meet without seams).
    pub fn read_grid_of(&self, req: &RenderRequest) -> Result<GridSpec, EngineError> {
        let grid = self.area_grid(&req.area)?;
        let margin = match &req.product {
            Product::Terrain(t) => t.margin(),
            _ => 0,
        };
        Ok(grow(&grid, margin))
    }

    async fn render_values_traced(
        &self,
        req: &RenderRequest,
    ) -> Result<(Raster, SourceTrace), EngineError> {
        let grid = self.read_grid_of(req)?;
        if req.layers.is_empty() || req.layers.iter().any(|l| l.sources.is_empty()) {
            return Err(EngineError::bad_request("sources", "nothing to read"));
        }
        if let [layer] = req.layers.as_slice() {
            if layer.blend_px > 0 && !matches!(req.product, Product::Compute { .. }) {
                return self.read_blended(layer, &grid, req.resampling).await;
            }
        }
        if req.layers.iter().any(|l| l.blend_px > 0) {
            return Err(EngineError::bad_request(
                "blend",
                "seam blending works on one layer of one band",
            ));
        }
        // Consecutive layers over the same sources are read in one pass.
        let mut groups: Vec<(usize, Option<Vec<usize>>)> = Vec::new();
        for (i, layer) in req.layers.iter().enumerate() {
            if let Some((first, Some(bands))) = groups.last_mut() {
                let prev = &req.layers[*first];
                let same = prev.sources.len() == layer.sources.len()
                    && prev
                        .sources
                        .iter()
                        .zip(&layer.sources)
                        .all(|(a, b)| Arc::ptr_eq(a, b));
                if let (true, Some(more)) = (same, &layer.bands) {
                    bands.extend_from_slice(more);
                    continue;
                }
            }
            groups.push((i, layer.bands.clone()));
        }
        let reads = groups.into_iter().map(|(i, bands)| {
            self.read_grid_traced(&req.layers[i].sources, &grid, bands, req.resampling)
        });
        let traced = futures_util::future::try_join_all(reads).await?;
        let trace = traced
            .first()
            .map(|t| SourceTrace {
                read: t.read.clone(),
                contributed: t.contributed.clone(),
            })
            .unwrap_or_default();
        let rasters = traced.into_iter().map(|t| t.raster).collect();
        let stacked = Raster::stack(rasters).map_err(|e| EngineError::from_core("", e))?;
        let values = match &req.product {
            Product::Compute {
                expression,
                variables,
                ..
            } => {
                let expr = Expression::parse(expression)
                    .map_err(|e| EngineError::bad_request("expression", e.to_string()))?;
                let variables = variables.clone();
                self.pool()
                    .run(move || evaluate(&expr, &variables, &stacked))
                    .await??
            }
            _ => stacked,
        };
        Ok((values, trace))
    }

    /// One band of `layer` over `grid` with its sources' hand-overs blended (see
    /// `crate::blend`): every source is read on the grid grown by the blend width (until the
    /// sources read cover it), blended on the pool, and cropped back to `grid`.
    async fn read_blended(
        &self,
        layer: &crate::Layer,
        grid: &GridSpec,
        resampling: Resampling,
    ) -> Result<(Raster, SourceTrace), EngineError> {
        let bands = layer.bands.clone().unwrap_or_else(|| vec![1]);
        if bands.len() != 1 {
            return Err(EngineError::bad_request(
                "bands",
                "seam blending works on one band",
            ));
        }
        let b = layer.blend_px;
        let grown = grow(grid, b);
        let mut read = Vec::new();
        let mut planes: Vec<(Vec<f32>, Vec<u8>)> = Vec::new();
        let mut covered = vec![0u8; grown.width * grown.height];
        for (i, src) in layer.sources.iter().enumerate() {
            let t = self
                .read_grid_traced(
                    std::slice::from_ref(src),
                    &grown,
                    Some(bands.clone()),
                    resampling,
                )
                .await?;
            if t.read.is_empty() {
                continue;
            }
            read.push(i);
            let r = t.raster.convert(DataType::F32);
            let (samples, mask) = r.into_parts();
            let Samples::F32(h) = samples else {
                return Err(EngineError::Internal {
                    reason: "float32 conversion gave another type".into(),
                });
            };
            for (c, &m) in covered.iter_mut().zip(&mask) {
                *c |= m;
            }
            planes.push((h, mask));
            if covered.iter().all(|&c| c != 0) {
                break;
            }
        }
        let (gw, gh) = (grown.width, grown.height);
        let (inner, read_ix) = (*grid, read.clone());
        let (raster, contributed) = self
            .pool()
            .run(move || -> Result<(Raster, Vec<usize>), EngineError> {
                let (heights, mask, winner) = crate::blend::blend(&planes, gw, gh, b);
                let full = Raster::new(gw, gh, 1, Samples::F32(heights), mask)
                    .map_err(|e| EngineError::from_core("", e))?;
                let pad = b as usize;
                let window = kiln_core::warp::PixelWindow {
                    col_off: pad,
                    row_off: pad,
                    width: inner.width,
                    height: inner.height,
                };
                let cropped = full
                    .crop(window)
                    .map_err(|e| EngineError::from_core("", e))?
                    .with_transform(inner.transform);
                let mut used: Vec<usize> = Vec::new();
                for r in pad..pad + inner.height {
                    for &w in &winner[r * gw + pad..r * gw + pad + inner.width] {
                        if let Some(&i) = read_ix.get(usize::from(w)) {
                            if !used.contains(&i) {
                                used.push(i);
                            }
                        }
                    }
                }
                used.sort_unstable();
                Ok((cropped, used))
            })
            .await??;
        Ok((raster, SourceTrace { read, contributed }))
    }

    /// Encodes values made by [`Self::render_values`] for `req`, on the CPU pool.
    pub async fn encode(
        &self,
        req: &RenderRequest,
        values: Raster,
    ) -> Result<Vec<u8>, EngineError> {
        let encoding = resolve_encoding(req, &values)?;
        if let Encoding::Terrain { terrain, zoom } = encoding {
            let grid = self.read_grid_of(req)?;
            return self
                .pool()
                .run(move || encode_terrain(&values, &grid, terrain, zoom))
                .await?;
        }
        let source = req
            .layers
            .first()
            .and_then(|l| l.sources.first())
            .cloned()
            .ok_or_else(|| EngineError::bad_request("sources", "nothing to read"))?;
        self.pool()
            .run(move || encode_sync(&source, &values, &encoding))
            .await?
    }

    /// A preview of `bounds` (WGS 84, clamped to the Web Mercator range): the bounds in the
    /// tile CRS fitted into `size` pixels, or [`PREVIEW_DEFAULT_PX`] on the longer side with
    /// the aspect kept.
    pub fn preview_grid(
        &self,
        bounds: &GeoBounds,
        size: Option<(usize, usize)>,
    ) -> Result<GridSpec, EngineError> {
        let tms = self.tile_matrix_set();
        let clamp = |lat: f64| lat.clamp(-WEB_MERCATOR_MAX_LAT, WEB_MERCATOR_MAX_LAT);
        let corner = |lon, lat| {
            tms.project_lonlat(lon, clamp(lat))
                .ok_or_else(|| EngineError::Internal {
                    reason: format!("bounds corner {lon},{lat} does not project"),
                })
        };
        let (x0, y0) = corner(bounds.west, bounds.north)?;
        let (x1, y1) = corner(bounds.east, bounds.south)?;
        let (w_m, h_m) = ((x1 - x0).abs().max(1e-6), (y0 - y1).abs().max(1e-6));
        let (width, height) = match size {
            Some(s) => s,
            None => {
                let fit =
                    |a: f64, b: f64| ((PREVIEW_DEFAULT_PX as f64 * a / b).round() as usize).max(1);
                if w_m >= h_m {
                    (PREVIEW_DEFAULT_PX, fit(h_m, w_m))
                } else {
                    (fit(w_m, h_m), PREVIEW_DEFAULT_PX)
                }
            }
        };
        if width == 0 || height == 0 || width > MAX_GRID_PX || height > MAX_GRID_PX {
            return Err(EngineError::TooLarge {
                reason: format!("{width}x{height} pixels: each side must be 1 to {MAX_GRID_PX}"),
            });
        }
        Ok(GridSpec {
            transform: GeoTransform::north_up(
                x0.min(x1),
                y0.max(y1),
                w_m / width as f64,
                h_m / height as f64,
            ),
            width,
            height,
        })
    }

    /// The values of every band but alpha at `lon`, `lat` (WGS 84) from the first source with
    /// a valid pixel there, by the tiles' nearest sampling; `None` where no source has data.
    pub async fn sample_point(
        &self,
        sources: &[Arc<OpenSource>],
        lon: f64,
        lat: f64,
    ) -> Result<Option<Vec<f64>>, EngineError> {
        Ok(self
            .sample_point_traced(sources, lon, lat, None)
            .await?
            .map(|(values, _)| values))
    }

    /// [`Self::sample_point`] of `bands` (1-based; `None` = all but alpha), also telling
    /// which source (index into `sources`) gave the values.
    pub async fn sample_point_traced(
        &self,
        sources: &[Arc<OpenSource>],
        lon: f64,
        lat: f64,
        bands: Option<Vec<usize>>,
    ) -> Result<Option<(Vec<f64>, usize)>, EngineError> {
        check_lonlat(lon, lat)?;
        let (x, y) = self
            .tile_matrix_set()
            .project_lonlat(lon, lat)
            .ok_or_else(|| EngineError::bad_request("lat", "does not project"))?;
        // A one-pixel grid a millimetre wide around the point: nearest sampling picks the
        // source pixel that contains it, through the same path tiles take.
        let grid = GridSpec {
            transform: GeoTransform::north_up(
                x - POINT_GRID_M / 2.0,
                y + POINT_GRID_M / 2.0,
                POINT_GRID_M,
                POINT_GRID_M,
            ),
            width: 1,
            height: 1,
        };
        let traced = self
            .read_grid_traced(sources, &grid, bands, Resampling::Nearest)
            .await?;
        let raster = traced.raster;
        if raster.mask().first().is_none_or(|&m| m == 0) {
            return Ok(None);
        }
        let Some(&which) = traced.contributed.first() else {
            return Ok(None);
        };
        Ok(Some((
            (0..raster.bands())
                .map(|b| raster.samples().get_f64(b))
                .collect(),
            which,
        )))
    }
}

/// Checks that a point is one tiles can show: longitude -180..180, latitude within Web
/// Mercator's range.
pub fn check_lonlat(lon: f64, lat: f64) -> Result<(), EngineError> {
    if !(-180.0..=180.0).contains(&lon) {
        return Err(EngineError::bad_request(
            "lon",
            format!("{lon} is not in -180 ... 180"),
        ));
    }
    if !(-WEB_MERCATOR_MAX_LAT..=WEB_MERCATOR_MAX_LAT).contains(&lat) {
        return Err(EngineError::bad_request(
            "lat",
            format!("{lat} is outside the Web Mercator range -85.05 ... 85.05"),
        ));
    }
    Ok(())
}

/// Resolves the product's stretch ranges against the layers' statistics.
fn resolve_encoding(req: &RenderRequest, values: &Raster) -> Result<Encoding, EngineError> {
    let need = |n: usize, what: &str| -> Result<(), EngineError> {
        if values.bands() == n {
            Ok(())
        } else {
            Err(EngineError::bad_request(
                "bands",
                format!(
                    "{what} needs {n} band(s), the request reads {}",
                    values.bands()
                ),
            ))
        }
    };
    Ok(match &req.product {
        Product::Raw(f) => Encoding::Raw(*f),
        Product::SingleBand {
            stretch,
            colormap,
            image,
        } => {
            need(1, "a single-band image")?;
            Encoding::Single {
                stretch: stretch.resolve(req.channel_stats(0), "stretch_range")?,
                colormap: colormap.clone(),
                image: *image,
            }
        }
        Product::Rgb { stretch, image } => {
            need(3, "an RGB image")?;
            let mut out = [None; 3];
            for (i, (slot, name)) in out
                .iter_mut()
                .zip(["r_range", "g_range", "b_range"])
                .enumerate()
            {
                *slot = stretch[i].resolve(req.channel_stats(i), name)?;
            }
            Encoding::Rgb {
                stretch: out,
                image: *image,
            }
        }
        Product::Terrain(terrain) => Encoding::Terrain {
            terrain: *terrain,
            zoom: match req.area {
                Area::Tile { tile, .. } => Some(tile.z()),
                Area::Grid(_) => None,
            },
        },
        Product::Compute { output, .. } => match output {
            ComputeOutput::Raw(RawFormat::GeoTiff) => {
                return Err(EngineError::bad_request(
                    "format",
                    "compute tiles are .png, .jpg, .webp or .npy",
                ))
            }
            ComputeOutput::Raw(f) => Encoding::Raw(*f),
            ComputeOutput::Image {
                stretch,
                colormap,
                image,
            } => Encoding::Single {
                // The result has no statistics: numbers, or the tile's own range.
                stretch: stretch.resolve(None, "stretch_range")?,
                colormap: colormap.clone(),
                image: *image,
            },
        },
    })
}

/// Evaluates `expr` with band `i` of `raster` as variable `variables[i]` (masked → NaN); the
/// result is valid where it is finite.
fn evaluate(
    expr: &Expression,
    variables: &[usize],
    raster: &Raster,
) -> Result<Raster, EngineError> {
    if variables.len() != raster.bands() {
        return Err(EngineError::bad_request(
            "expression",
            format!(
                "{} variable(s) named, {} band(s) read",
                variables.len(),
                raster.bands()
            ),
        ));
    }
    let n = raster.pixel_count();
    let planes: Vec<Vec<f64>> = (0..raster.bands())
        .map(|b| {
            (0..n)
                .map(|i| {
                    if raster.mask()[i] == 0 {
                        f64::NAN
                    } else {
                        raster.samples().get_f64(b * n + i)
                    }
                })
                .collect()
        })
        .collect();
    let max_var = variables.iter().copied().max().unwrap_or(0);
    let empty: Vec<f64> = vec![f64::NAN; n];
    let mut inputs: Vec<&[f64]> = vec![&empty; max_var];
    for (plane, &v) in planes.iter().zip(variables) {
        if let Some(slot) = v.checked_sub(1).and_then(|i| inputs.get_mut(i)) {
            *slot = plane;
        }
    }
    let result = expr
        .evaluate(&inputs)
        .map_err(|e| EngineError::bad_request("expression", e.to_string()))?;
    let mask: Vec<u8> = result
        .iter()
        .map(|v| if v.is_finite() { 255 } else { 0 })
        .collect();
    let out = Raster::new(
        raster.width(),
        raster.height(),
        1,
        Samples::F64(result),
        mask,
    )
    .map_err(|e| EngineError::Internal {
        reason: format!("expression result: {e}"),
    })?;
    Ok(match raster.transform() {
        Some(t) => out.with_transform(*t),
        None => out,
    })
}

fn encode_sync(
    source: &OpenSource,
    raster: &Raster,
    encoding: &Encoding,
) -> Result<Vec<u8>, EngineError> {
    let uri = source.uri();
    let core_err = |e| EngineError::from_core(uri, e);
    let (image, format, quality) = match encoding {
        Encoding::Raw(RawFormat::Npy) => return product::encode_npy(raster).map_err(core_err),
        Encoding::Raw(RawFormat::GeoTiff) => {
            return kiln_cog::write::write_geotiff_tile(raster, 3857, source.header().nodata)
                .map_err(|e| EngineError::from_cog(uri, e))
        }
        Encoding::Single {
            stretch,
            colormap,
            image,
        } => (
            single_band_image(source, raster, *stretch, colormap)?,
            image.format,
            image.quality,
        ),
        Encoding::Terrain { terrain, .. } => {
            return Err(EngineError::Internal {
                reason: format!("terrain product {terrain:?} reached the image encoder"),
            })
        }
        Encoding::Rgb { stretch, image } => {
            // The data's own range (a scan of every band) only when a band has no range.
            let auto = if stretch.iter().any(Option::is_none) {
                Some(stretch_for(raster, None, None).map_err(core_err)?)
            } else {
                None
            };
            let mut s = Vec::with_capacity(3);
            for range in stretch {
                s.push(match (range, auto) {
                    (None, Some(a)) => a,
                    _ => stretch_for(raster, *range, None).map_err(core_err)?,
                });
            }
            let s: [Stretch; 3] = s.try_into().map_err(|_| EngineError::Internal {
                reason: "an RGB image needs three stretches".into(),
            })?;
            let img = product::rgb_image(raster, [0, 1, 2], s).map_err(core_err)?;
            (img.into(), image.format, image.quality)
        }
    };
    let quality = Quality::new(quality).map_err(core_err)?;
    match image {
        Rendered::Indexed { indices, palette } if format == ImageFormat::Png => {
            product::encode_png_indexed(raster.width(), raster.height(), &indices, &palette)
                .map_err(core_err)
        }
        Rendered::Indexed { indices, palette } => {
            // JPEG and WebP have no palettes: expand to RGBA.
            let entries = palette.entries();
            let mut rgba = Vec::with_capacity(indices.len() * 4);
            for &i in &indices {
                rgba.extend_from_slice(entries.get(usize::from(i)).unwrap_or(&[0, 0, 0, 0]));
            }
            Image8::new(raster.width(), raster.height(), PixelLayout::Rgba, rgba)
                .and_then(|img| img.encode(format, quality))
                .map_err(core_err)
        }
        Rendered::Image(img) => img.encode(format, quality).map_err(core_err),
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
    requested: Option<(f64, f64)>,
    colormap: &ColormapChoice,
) -> Result<Rendered, EngineError> {
    let uri = source.uri();
    let core_err = |e| EngineError::from_core(uri, e);
    let file_palette = source
        .header()
        .images
        .first()
        .and_then(|i| i.palette.clone());
    let name = match colormap {
        ColormapChoice::Explicit(explicit) => {
            let indices = explicit.label_band(raster, 0).map_err(core_err)?;
            return Ok(Rendered::Indexed {
                indices,
                palette: explicit.palette(),
            });
        }
        ColormapChoice::Named(n) => Some(n.as_str()),
        ColormapChoice::Default => None,
    };
    let (indices, palette) = match (name, file_palette) {
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
            let idx: Vec<u8> = match raster.samples() {
                kiln_core::Samples::U8(v) => v.clone(),
                _ => Vec::new(),
            };
            // Masked pixels need a transparent entry: use one the data does not use, if any.
            let used: std::collections::HashSet<u8> = idx
                .iter()
                .zip(raster.mask())
                .filter(|(_, &m)| m != 0)
                .map(|(&i, _)| i)
                .collect();
            let idx = match (0..=255u8).find(|i| !used.contains(i)) {
                Some(t) if raster.mask().contains(&0) => {
                    entries[usize::from(t)] = [0, 0, 0, 0];
                    idx.iter()
                        .zip(raster.mask())
                        .map(|(&i, &m)| if m == 0 { t } else { i })
                        .collect()
                }
                _ => idx,
            };
            (idx, Palette::new(entries).map_err(core_err)?)
        }
        (name, _) => {
            let stretch = stretch_for(raster, requested, Some(0)).map_err(core_err)?;
            let palette = match name {
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
    let bands: Vec<usize> = band.map_or_else(|| (0..raster.bands()).collect(), |b| vec![b]);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for b in bands {
        for i in 0..plane {
            if raster.mask()[i] != 0 {
                let v = raster.samples().get_f64(b * plane + i);
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

/// `grid` grown by `px` pixels on every side.
pub(crate) fn grow(grid: &GridSpec, px: u32) -> GridSpec {
    if px == 0 {
        return *grid;
    }
    let p = f64::from(px);
    let mut tf = grid.transform;
    tf.0[0] -= p * tf.0[1];
    tf.0[3] -= p * tf.0[5];
    GridSpec {
        transform: tf,
        width: grid.width + 2 * px as usize,
        height: grid.height + 2 * px as usize,
    }
}

/// Encodes the first band of `values` (read on `grid`, which includes the product's margin)
/// as a terrain product.
fn encode_terrain(
    values: &Raster,
    grid: &GridSpec,
    terrain: Terrain,
    zoom: Option<u8>,
) -> Result<Vec<u8>, EngineError> {
    use kiln_core::terrain;
    let core_err = |e| EngineError::from_core("", e);
    let mut first = values.clone();
    first.truncate_bands(1).map_err(core_err)?;
    let first = first.convert(DataType::F32);
    let (w, h) = (first.width(), first.height());
    let Samples::F32(heights) = first.samples() else {
        return Err(EngineError::Internal {
            reason: "float32 conversion gave another type".into(),
        });
    };
    let mask = first.mask();
    let quantise = |q: bool| if q { zoom } else { None };
    let transform = first.transform().copied().unwrap_or(grid.transform);
    let image = match terrain {
        Terrain::Raw => {
            let raw = Raster::new(w, h, 1, Samples::F32(heights.clone()), mask.to_vec())
                .map_err(core_err)?
                .with_transform(transform);
            return product::encode_npy(&raw).map_err(core_err);
        }
        Terrain::GeoTiff => {
            let ints: Vec<i16> = heights
                .iter()
                .zip(mask)
                .map(|(&v, &m)| {
                    if m == 0 || !v.is_finite() {
                        i16::MIN
                    } else {
                        // Saturating, and never the nodata value.
                        v.round().clamp(-32767.0, 32767.0) as i16
                    }
                })
                .collect();
            let valid: Vec<u8> = ints
                .iter()
                .map(|&v| if v == i16::MIN { 0 } else { 255 })
                .collect();
            let raster = Raster::new(w, h, 1, Samples::I16(ints), valid)
                .map_err(core_err)?
                .with_transform(transform);
            return kiln_cog::write::write_geotiff_tile(&raster, 3857, Some(f64::from(i16::MIN)))
                .map_err(|e| EngineError::from_cog("", e));
        }
        Terrain::Terrarium { image, quantise: q } => (
            terrain::terrarium_image(heights, mask, w, h, quantise(q)).map_err(core_err)?,
            image,
            true,
        ),
        Terrain::TerrainRgb {
            base,
            interval,
            image,
            quantise: q,
        } => {
            let enc = terrain::TerrainRgb::new(base, interval)
                .map_err(|e| EngineError::bad_request("interval", e.to_string()))?;
            (
                terrain::terrain_rgb_image(heights, mask, w, h, &enc, quantise(q))
                    .map_err(core_err)?,
                image,
                true,
            )
        }
        Terrain::Normal { image } => {
            let rows = terrain::web_mercator_row_metres(&transform, h);
            let win = terrain::HeightWindow::new(w, h, heights, mask, &rows).map_err(core_err)?;
            (
                terrain::normal_image(&win, 1).map_err(core_err)?,
                image,
                true,
            )
        }
        Terrain::Hillshade {
            azimuth,
            altitude,
            z_factor,
            image,
        } => {
            let shade = terrain::Hillshade::new(azimuth, altitude, z_factor)
                .map_err(|e| EngineError::bad_request("hillshade", e.to_string()))?;
            let rows = terrain::web_mercator_row_metres(&transform, h);
            let win = terrain::HeightWindow::new(w, h, heights, mask, &rows).map_err(core_err)?;
            (
                terrain::hillshade_image(&win, 1, &shade).map_err(core_err)?,
                image,
                false,
            )
        }
    };
    let (img, out, exact) = image;
    match out.format {
        ImageFormat::Png => product::encode_png(&img).map_err(core_err),
        // Colours that encode heights or normals must survive: lossless.
        ImageFormat::Webp if exact => product::encode_webp_lossless(&img).map_err(core_err),
        _ if exact => Err(EngineError::bad_request(
            "format",
            "terrain tiles whose colours encode values are .png or .webp (lossless)",
        )),
        format => {
            let quality = Quality::new(out.quality).map_err(core_err)?;
            img.encode(format, quality).map_err(core_err)
        }
    }
}
