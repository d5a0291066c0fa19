//! The typed render request: everything that decides a tile's bytes, in one value.
//!
//! The server, `kiln tile` and the pyramid renderer all build a [`RenderRequest`] and hand it
//! to [`crate::Engine::render`], so the same parameters give the same bytes everywhere. The
//! request's [`Hash`] covers every field, sources by identity (URI, size, version) and their
//! statistics by value, so [`RenderRequest::cache_key`] changes whenever anything that could
//! change the output does; a new field that is forgotten in `Hash` fails the key test in
//! `tests/render_request.rs`.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use kiln_catalog::BandStats;
use kiln_core::product::{ExplicitColormap, ImageFormat};
use kiln_core::tms::TileCoord;
use kiln_core::warp::{GridSpec, Resampling};

use crate::{EngineError, OpenSource};

/// What to render and how: read each layer over the area, stack the layers' bands, then make
/// the product.
#[derive(Debug, Clone, PartialEq, Hash)]
pub struct RenderRequest {
    /// The inputs, in channel order (RGB from three datasets is three layers).
    pub layers: Vec<Layer>,
    pub area: Area,
    pub resampling: Resampling,
    pub product: Product,
}

/// One input raster: sources composited by precedence (the first source with a valid pixel
/// wins), the bands read from them, and their per-band statistics when a catalog knows them
/// (stretch ranges given as percentiles or `null` resolve against these).
#[derive(Debug, Clone)]
pub struct Layer {
    pub sources: Vec<Arc<OpenSource>>,
    /// 1-based band numbers; `None` = every band but alpha.
    pub bands: Option<Vec<usize>>,
    /// Statistics of band `i + 1` at index `i` (empty when no pixel is valid); `None` when
    /// unknown, so `null` ends stretch over the tile's own valid values.
    pub stats: Option<Arc<[BandStats]>>,
    /// Seam blending width in pixels (0: the first valid source wins exactly). Where a
    /// source hands over to a later one, its values fade into the later one's over this
    /// many pixels (see `crate::blend`); one band only.
    pub blend_px: u32,
}

impl Layer {
    /// Bands `bands` of one source without statistics.
    pub fn of(source: Arc<OpenSource>, bands: Option<Vec<usize>>) -> Self {
        Self {
            sources: vec![source],
            bands,
            stats: None,
            blend_px: 0,
        }
    }

    /// Statistics of 1-based `band`: `None` when statistics are unknown, `Some(None)` when
    /// they are known and the band has none (no valid pixel).
    fn band_stats(&self, band: usize) -> Option<Option<&BandStats>> {
        self.stats
            .as_ref()
            .map(|s| band.checked_sub(1).and_then(|i| s.get(i)))
    }
}

impl PartialEq for Layer {
    fn eq(&self, other: &Self) -> bool {
        self.sources.len() == other.sources.len()
            && self.sources.iter().zip(&other.sources).all(|(a, b)| {
                a.identity() == b.identity()
                    && a.header().nodata.map(f64::to_bits) == b.header().nodata.map(f64::to_bits)
            })
            && self.bands == other.bands
            && self.blend_px == other.blend_px
            && stats_bits(self.stats.as_deref()) == stats_bits(other.stats.as_deref())
    }
}

impl Hash for Layer {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.sources.len().hash(state);
        for s in &self.sources {
            let id = s.identity();
            (&id.uri, id.size, &id.version).hash(state);
            // A collection may override a source's nodata value.
            s.header().nodata.map(f64::to_bits).hash(state);
        }
        self.bands.hash(state);
        stats_bits(self.stats.as_deref()).hash(state);
        self.blend_px.hash(state);
    }
}

/// The statistics as bit patterns (what `Hash` and `Eq` compare).
fn stats_bits(stats: Option<&[BandStats]>) -> Option<Vec<u64>> {
    stats.map(|s| {
        s.iter()
            .flat_map(|b| {
                [b.min, b.max, b.mean, b.stdev]
                    .into_iter()
                    .chain(b.percentiles.iter().copied())
                    .chain([f64::NAN])
            })
            .map(f64::to_bits)
            .collect()
    })
}

/// The tile matrix set a tile address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Tms {
    #[default]
    WebMercatorQuad,
}

/// Where the pixels go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Area {
    /// One tile of `size` pixels, grown by `buffer` pixels on every side (a 256 px tile with
    /// buffer 2 is 260 px wide, its outer pixels from the neighbours).
    Tile {
        tms: Tms,
        tile: TileCoord,
        size: u32,
        buffer: u32,
    },
    /// Any grid in the tile CRS (previews; see [`crate::Engine::preview_grid`]).
    Grid(GridSpec),
}

impl Area {
    /// A tile of the default matrix set without buffer.
    pub fn tile(tile: TileCoord, size: u32) -> Self {
        Self::Tile {
            tms: Tms::WebMercatorQuad,
            tile,
            size,
            buffer: 0,
        }
    }
}

impl Hash for Area {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Self::Tile {
                tms,
                tile,
                size,
                buffer,
            } => (tms, tile, size, buffer).hash(state),
            Self::Grid(g) => {
                g.transform.0.map(f64::to_bits).hash(state);
                (g.width, g.height).hash(state);
            }
        }
    }
}

/// Raw-value encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RawFormat {
    /// TiTiler's `.npy` layout: the bands, then the mask band.
    Npy,
    /// A GeoTIFF in EPSG:3857 with the first source's nodata.
    GeoTiff,
}

/// An image encoding and its quality (JPEG / WebP; PNG ignores it but keeps it in the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageOutput {
    pub format: ImageFormat,
    pub quality: u8,
}

/// One end of a stretch range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Value(f64),
    /// The Nth percentile (1..=99) of the band's statistics.
    Percentile(u8),
    /// The band's minimum (lower end) or maximum (upper end); with no statistics, the tile's
    /// own valid range.
    Default,
}

impl Hash for Bound {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Self::Value(v) => v.to_bits().hash(state),
            Self::Percentile(p) => p.hash(state),
            Self::Default => {}
        }
    }
}

/// A stretch range as asked: each end a value, a percentile or the default.
#[derive(Debug, Clone, Copy, PartialEq, Hash)]
pub struct RangeSpec {
    pub lo: Bound,
    pub hi: Bound,
}

impl RangeSpec {
    pub const DEFAULT: Self = Self {
        lo: Bound::Default,
        hi: Bound::Default,
    };

    /// Two numbers.
    pub fn values(lo: f64, hi: f64) -> Self {
        Self {
            lo: Bound::Value(lo),
            hi: Bound::Value(hi),
        }
    }

    /// The range in values: `Ok(None)` means "the tile's own valid range" (defaults without
    /// statistics). `param` names the parameter in errors.
    pub fn resolve(
        self,
        stats: Option<Option<&BandStats>>,
        param: &str,
    ) -> Result<Option<(f64, f64)>, EngineError> {
        if stats.is_none() && self == Self::DEFAULT {
            return Ok(None);
        }
        let end = |b: Bound, is_lo: bool| -> Result<f64, EngineError> {
            match (b, stats) {
                (Bound::Value(v), _) => Ok(v),
                (Bound::Default, Some(Some(s))) => Ok(if is_lo { s.min } else { s.max }),
                (Bound::Percentile(p), Some(Some(s))) => s
                    .percentiles
                    .get(usize::from(p).wrapping_sub(1))
                    .copied()
                    .ok_or_else(|| {
                        EngineError::bad_request(param, "the dataset has no such percentile")
                    }),
                // No valid pixel anywhere: every tile is transparent, any range will do.
                (Bound::Default, Some(None)) => Ok(if is_lo { 0.0 } else { 1.0 }),
                (Bound::Percentile(_), Some(None)) => Err(EngineError::bad_request(
                    param,
                    "percentiles need statistics, and the dataset has no valid pixels",
                )),
                (_, None) => Err(EngineError::bad_request(
                    param,
                    "percentiles and null ends need the dataset's statistics (from a catalog); \
                     give numbers",
                )),
            }
        };
        let (lo, hi) = (end(self.lo, true)?, end(self.hi, false)?);
        if lo > hi {
            return Err(EngineError::bad_request(
                param,
                format!("resolves to [{lo}, {hi}]: the lower end is above the upper end"),
            ));
        }
        Ok(Some((lo, hi)))
    }
}

/// How single values become colours.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ColormapChoice {
    /// Grey, or the file's own palette for a paletted 8-bit source.
    #[default]
    Default,
    /// A named colormap (`viridis`, `terrain_r`, ...).
    Named(String),
    /// Value → colour classes (Terracotta's `explicit_color_map`).
    Explicit(ExplicitColormap),
}

impl Hash for ColormapChoice {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Self::Default => {}
            Self::Named(n) => n.hash(state),
            Self::Explicit(e) => {
                for (v, rgba) in e.entries() {
                    (v.to_bits(), rgba).hash(state);
                }
            }
        }
    }
}

/// What a compute product outputs.
#[derive(Debug, Clone, PartialEq, Hash)]
pub enum ComputeOutput {
    /// The expression's values (float64; NaN where invalid).
    Raw(RawFormat),
    /// The values stretched over `stretch` through `colormap`.
    Image {
        stretch: RangeSpec,
        colormap: ColormapChoice,
        image: ImageOutput,
    },
}

/// The product made from the stacked layers.
#[derive(Debug, Clone, PartialEq, Hash)]
pub enum Product {
    /// The values of every band read, stacked in layer order.
    Raw(RawFormat),
    /// One band through a stretch and a colormap.
    SingleBand {
        stretch: RangeSpec,
        colormap: ColormapChoice,
        image: ImageOutput,
    },
    /// Three bands, each through its own stretch.
    Rgb {
        stretch: [RangeSpec; 3],
        image: ImageOutput,
    },
    /// Band math: variable `vN` is the Nth band read (in layer order, see
    /// [`RenderRequest::layers`]); `variables` lists which N the bands are, ascending.
    Compute {
        expression: String,
        variables: Vec<usize>,
        output: ComputeOutput,
    },
    /// An elevation product of the first band (a DEM or a collection's composite).
    Terrain(Terrain),
}

/// Elevation products (Mapzen's and Mapbox's terrain tiles): heights in metres from the
/// first band read; see `kiln_core::terrain` for the encodings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Terrain {
    /// Heights as float32, then the mask (`.npy`, TiTiler's layout).
    Raw,
    /// Mapzen terrarium RGB (PNG, or lossless WebP); `quantise` rounds heights to the
    /// precision the tile's zoom can show (Mapterhorn).
    Terrarium { image: ImageOutput, quantise: bool },
    /// Mapbox terrain-RGB with rio-rgbify's base and interval.
    TerrainRgb {
        base: f64,
        interval: f64,
        image: ImageOutput,
        quantise: bool,
    },
    /// Mapzen normal tiles: RGB the unit surface normal, alpha a quantised height.
    Normal { image: ImageOutput },
    /// Grey shaded relief with transparent voids.
    Hillshade {
        azimuth: f64,
        altitude: f64,
        z_factor: f64,
        image: ImageOutput,
    },
    /// Mapzen's GeoTIFF tiles: int16 heights (rounded, clamped), nodata −32768.
    GeoTiff,
}

impl Terrain {
    /// Pixels the product needs around the area (gradients need their neighbours).
    pub fn margin(&self) -> u32 {
        match self {
            Self::Normal { .. } | Self::Hillshade { .. } => 1,
            _ => 0,
        }
    }

    /// The image output, for image products.
    pub fn image(&self) -> Option<ImageOutput> {
        match *self {
            Self::Terrarium { image, .. }
            | Self::TerrainRgb { image, .. }
            | Self::Normal { image }
            | Self::Hillshade { image, .. } => Some(image),
            Self::Raw | Self::GeoTiff => None,
        }
    }
}

impl Hash for Terrain {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match *self {
            Self::Raw | Self::GeoTiff => {}
            Self::Terrarium { image, quantise } => (image, quantise).hash(state),
            Self::TerrainRgb {
                base,
                interval,
                image,
                quantise,
            } => (base.to_bits(), interval.to_bits(), image, quantise).hash(state),
            Self::Normal { image } => image.hash(state),
            Self::Hillshade {
                azimuth,
                altitude,
                z_factor,
                image,
            } => (
                azimuth.to_bits(),
                altitude.to_bits(),
                z_factor.to_bits(),
                image,
            )
                .hash(state),
        }
    }
}

/// A render's cache key: 128 bits of SHA-256 over the request's `Hash` stream. Equal requests
/// (same sources at the same versions) have equal keys in every process of one build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RenderKey(pub [u8; 16]);

impl std::fmt::Display for RenderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A [`Hasher`] that feeds SHA-256 (std's hashers are 64-bit and seeded per process).
struct Sha256Hasher(sha2::Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        use sha2::Digest;
        let d = self.0.clone().finalize();
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    fn write(&mut self, bytes: &[u8]) {
        use sha2::Digest;
        self.0.update(bytes);
    }
}

impl RenderRequest {
    /// The key of this request's output (see [`RenderKey`]).
    pub fn cache_key(&self) -> RenderKey {
        use sha2::Digest;
        let mut h = Sha256Hasher(sha2::Sha256::new());
        self.hash(&mut h);
        let d = h.0.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&d[..16]);
        RenderKey(key)
    }

    /// The MIME type of the output.
    pub fn content_type(&self) -> &'static str {
        let raw = |f: RawFormat| match f {
            RawFormat::Npy => "application/x-npy",
            RawFormat::GeoTiff => "image/tiff",
        };
        match &self.product {
            Product::Raw(f)
            | Product::Compute {
                output: ComputeOutput::Raw(f),
                ..
            } => raw(*f),
            Product::SingleBand { image, .. }
            | Product::Rgb { image, .. }
            | Product::Compute {
                output: ComputeOutput::Image { image, .. },
                ..
            } => image.format.mime_type(),
            Product::Terrain(t) => match t.image() {
                Some(image) => image.format.mime_type(),
                None if *t == Terrain::GeoTiff => raw(RawFormat::GeoTiff),
                None => raw(RawFormat::Npy),
            },
        }
    }

    /// The layer and 1-based band of the `n`th band read (0-based `n`), when the layers name
    /// their bands.
    pub(crate) fn channel(&self, n: usize) -> Option<(&Layer, usize)> {
        let mut k = n;
        for layer in &self.layers {
            let bands = layer.bands.as_ref()?;
            if k < bands.len() {
                return Some((layer, bands[k]));
            }
            k -= bands.len();
        }
        None
    }

    /// The statistics of the `n`th band read: `None` when unknown.
    pub(crate) fn channel_stats(&self, n: usize) -> Option<Option<&BandStats>> {
        let (layer, band) = self.channel(n)?;
        layer.band_stats(band)
    }
}
