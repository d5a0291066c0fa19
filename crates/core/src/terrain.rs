//! Terrain products: height encodings (Mapzen terrarium, Mapbox terrain-RGB), Mapterhorn's
//! per-zoom vertical quantisation, Mapzen normal tiles and `gdaldem`-style hillshade.
//!
//! Everything here is a pure function of heights in metres; reading, warping and choosing the
//! window belong to the engine. The shared reference `terrain-formats.md` states the exact
//! encodings this module matches.
//!
//! # Validity
//! A pixel is valid when its mask byte is non-zero **and** its height is finite. The
//! whole-tile encoders ([`terrarium_image`], [`terrain_rgb_image`]) write invalid pixels as
//! 0 m, because MapLibre ignores alpha and any other value (or transparency) would show as a
//! crater or a spike.
//!
//! # Windows and buffers
//! [`normal_image`] and [`hillshade_image`] read a [`HeightWindow`] and return it minus
//! `buffer` pixels on each side. Each output pixel depends only on its 3 × 3 neighbourhood, the
//! validity of those pixels and the ground size of its own row, so a pixel comes out the same
//! whichever window it was cut from: neighbouring tiles agree at their seams, and a 512 px
//! tile equals its four 256 px children.
//!
//! # Normals (Mapzen/joerd)
//! joerd computes `numpy.gradient(heights, 2)`: the central difference over two pixels divided
//! by `2 · 2`, i.e. **half** the slope per pixel. It then scales x by `−1 / metres` and y by
//! `+1 / metres` (rows run south, so +y is north), normalises `(gx, gy, 1)` and maps each
//! component to `clip(128 · (n + 1), 0, 255)` truncated. Kiln uses exactly that, halving
//! included, so its tiles look like Mapzen's. Differences from joerd, all deliberate:
//! - one ground size per **row** (its own latitude) instead of one geodesic size per tile;
//! - invalid neighbours: when one side of a difference is invalid the one-sided difference
//!   with the centre is used (scaled like numpy's own edge rule, `(h₁ − h₀) / 2`), when both
//!   are invalid that component is 0; an invalid centre gives the flat normal (128, 128, 255)
//!   with the alpha of 0 m;
//! - arithmetic in f64 (joerd's gradient runs in the heights' float32).
//!
//! # Hillshade (`gdaldem hillshade`, Horn)
//! GDAL's formula with its constants: Horn's 3 × 3 gradient, `z_factor / 8`, the shade
//! `1 + 254 · cang` (1 when `cang ≤ 0`, 0 reserved for nodata), rounded to nearest as GDAL does
//! when it writes the float result to a Byte band. The east-west and north-south sizes are the
//! centre row's ground metres. Invalid neighbours take the centre's height (GDAL's
//! `-compute_edges` rule); an invalid centre is transparent (grey 0, alpha 0). GDAL's x86-64
//! build divides by an approximate square root (one Newton step), which can move a value that
//! lies within ~1e-6 of a rounding edge by one grey level; Kiln uses the exact square root.

use crate::crs::WEB_MERCATOR_RADIUS_M;
use crate::geo::GeoTransform;
use crate::product::{Image8, PixelLayout};
use crate::CoreError;

/// The offset terrarium adds so that heights from −32768 m are positive.
const TERRARIUM_OFFSET: f64 = 32768.0;
/// The largest encodable terrarium value (after the offset): rgb(255, 255, 255).
const TERRARIUM_MAX: f64 = 65535.0 + 255.0 / 256.0;
/// The largest terrain-RGB code: three bytes.
const TERRAIN_RGB_MAX_CODE: u32 = (1 << 24) - 1;
/// The zoom at which Mapterhorn keeps the full terrarium precision of 1/256 m.
const FULL_PRECISION_ZOOM: u8 = 19;

/// Replaces NaN by 0 m, the height every encoder writes for "no data".
fn or_zero(h: f64) -> f64 {
    if h.is_nan() {
        0.0
    } else {
        h
    }
}

/// Mapzen terrarium: `v = h + 32768`; `R = floor(v / 256)`, `G = floor(v mod 256)`,
/// `B = floor(frac(v) · 256)`. `v` is clamped to the encodable range `0 ..= 65535 + 255/256`
/// (so ±∞ saturate); NaN encodes 0 m.
pub fn terrarium_encode(h: f64) -> [u8; 3] {
    let v = (or_zero(h) + TERRARIUM_OFFSET).clamp(0.0, TERRARIUM_MAX);
    // Every value is in 0..=255 after the clamp; `as` truncates the (already floored) float.
    [
        (v / 256.0).floor() as u8,
        (v % 256.0).floor() as u8,
        (v.fract() * 256.0).floor() as u8,
    ]
}

/// `R · 256 + G + B / 256 − 32768` metres.
pub fn terrarium_decode(rgb: [u8; 3]) -> f64 {
    let [r, g, b] = rgb.map(f64::from);
    r * 256.0 + g + b / 256.0 - TERRARIUM_OFFSET
}

/// Mapbox terrain-RGB with rio-rgbify's base and interval: `h = base + (R·65536 + G·256 + B)
/// · interval`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TerrainRgb {
    pub base: f64,
    pub interval: f64,
}

impl Default for TerrainRgb {
    /// Mapbox's published encoding (`rio rgbify -b -10000 -i 0.1`).
    fn default() -> Self {
        Self {
            base: -10000.0,
            interval: 0.1,
        }
    }
}

impl TerrainRgb {
    /// Fails unless `base` is finite and `interval` finite and positive.
    pub fn new(base: f64, interval: f64) -> Result<Self, CoreError> {
        if !base.is_finite() {
            return Err(CoreError::invalid(
                "terrain-RGB base",
                format!("{base} is not finite"),
            ));
        }
        if !(interval.is_finite() && interval > 0.0) {
            return Err(CoreError::invalid(
                "terrain-RGB interval",
                format!("{interval} must be finite and positive"),
            ));
        }
        Ok(Self { base, interval })
    }

    /// Encodes as rio-rgbify 0.4.0 does (`rio_rgbify/encoders.py`, `data_to_rgb`, read from
    /// its PyPI wheel): `(h − base) / interval` in float64, then split into base-256 digits
    /// with floor division and the remainders truncated into `uint8`, which amounts to
    /// **flooring** the code (no rounding: 0.3 m encodes as 0.2 m because
    /// `10000.3 / 0.1 = 100002.999…`). rio-rgbify lets codes outside `0 ..= 2²⁴ − 1` wrap;
    /// Kiln clamps them. NaN encodes 0 m.
    pub fn encode(&self, h: f64) -> [u8; 3] {
        let d = (or_zero(h) - self.base) / self.interval;
        // NaN only for a hand-built struct with a bad field; `as` maps it to code 0.
        let n = d.floor().clamp(0.0, f64::from(TERRAIN_RGB_MAX_CODE)) as u32;
        [(n >> 16) as u8, (n >> 8) as u8, n as u8]
    }

    /// `base + (R·65536 + G·256 + B) · interval`, as rio-rgbify's `_decode` and Mapbox's docs.
    pub fn decode(&self, rgb: [u8; 3]) -> f64 {
        let [r, g, b] = rgb.map(f64::from);
        self.base + (r * 65536.0 + g * 256.0 + b) * self.interval
    }
}

/// Mapterhorn's vertical step at `zoom`: `2^(19 − zoom) / 256` m (1/256 m at z19, 2048 m at
/// z0); zooms above 19 keep 1/256 m, terrarium's precision.
pub fn quantise_step(zoom: u8) -> f64 {
    let shift = FULL_PRECISION_ZOOM - zoom.min(FULL_PRECISION_ZOOM);
    f64::from(1u32 << shift) / 256.0
}

/// Rounds `h` to the nearest multiple of [`quantise_step`]`(zoom)`, ties to even as Mapterhorn's
/// `np.round(data / factor) * factor` (`pipelines/utils.py`, `save_terrarium_tile`). NaN and
/// ±∞ pass through.
pub fn quantise(h: f64, zoom: u8) -> f64 {
    let step = quantise_step(zoom);
    (h / step).round_ties_even() * step
}

const fn normal_alpha_breaks() -> [f64; 255] {
    let mut table = [0.0; 255];
    let mut n = 0;
    let mut i = 0;
    while i < 11 {
        table[n] = -11000.0 + 1000.0 * i as f64;
        n += 1;
        i += 1;
    }
    let coastal = [-100.0, -50.0, -20.0, -10.0, -1.0];
    i = 0;
    while i < coastal.len() {
        table[n] = coastal[i];
        n += 1;
        i += 1;
    }
    i = 0;
    while i < 150 {
        table[n] = 20.0 * i as f64;
        n += 1;
        i += 1;
    }
    i = 0;
    while i < 60 {
        table[n] = 3000.0 + 50.0 * i as f64;
        n += 1;
        i += 1;
    }
    i = 0;
    while i < 29 {
        table[n] = 6000.0 + 100.0 * i as f64;
        n += 1;
        i += 1;
    }
    table
}

/// Mapzen's hypsometric breaks (metres, ascending): −11000…−1000 by 1000, −100, −50, −20, −10,
/// −1, 0…2980 by 20, 3000…5950 by 50, 6000…8800 by 100.
pub const NORMAL_ALPHA_BREAKS: [f64; 255] = normal_alpha_breaks();

/// Mapzen normal-tile alpha: `255 − bisect_left(NORMAL_ALPHA_BREAKS, h)`, so low ground is
/// opaque. NaN gets the alpha of 0 m, like every invalid pixel.
pub fn normal_alpha(h: f64) -> u8 {
    let h = or_zero(h);
    let below = NORMAL_ALPHA_BREAKS.partition_point(|&b| b < h);
    // `below` is at most 255.
    255 - below as u8
}

/// A window of heights (row-major, `width * height`), its validity mask (255 valid, 0 invalid,
/// same length) and the ground size in metres of one pixel for every row. Web Mercator is
/// conformal, so one size per row serves x and y.
#[derive(Debug, Clone, Copy)]
pub struct HeightWindow<'a> {
    pub width: usize,
    pub height: usize,
    pub heights: &'a [f32],
    pub mask: &'a [u8],
    pub row_metres: &'a [f64],
}

impl<'a> HeightWindow<'a> {
    /// Fails unless the window is non-empty, `heights` and `mask` hold `width * height` values,
    /// and `row_metres` holds one finite positive size per row.
    pub fn new(
        width: usize,
        height: usize,
        heights: &'a [f32],
        mask: &'a [u8],
        row_metres: &'a [f64],
    ) -> Result<Self, CoreError> {
        let win = Self {
            width,
            height,
            heights,
            mask,
            row_metres,
        };
        win.check()?;
        Ok(win)
    }

    /// The checks of [`HeightWindow::new`], repeated by the renderers because the fields are
    /// public.
    fn check(&self) -> Result<(), CoreError> {
        check_lengths(self.heights, self.mask, self.width, self.height)?;
        if self.row_metres.len() != self.height {
            return Err(CoreError::invalid(
                "height window",
                format!(
                    "{} row sizes for {} rows",
                    self.row_metres.len(),
                    self.height
                ),
            ));
        }
        if let Some(m) = self
            .row_metres
            .iter()
            .find(|m| !(m.is_finite() && **m > 0.0))
        {
            return Err(CoreError::invalid(
                "height window",
                format!("row size {m} m must be finite and positive"),
            ));
        }
        Ok(())
    }

    /// The height at (row, col) if that pixel is valid. Callers stay inside the window.
    #[inline]
    fn at(&self, row: usize, col: usize) -> Option<f64> {
        let i = row * self.width + col;
        let h = f64::from(self.heights[i]);
        (self.mask[i] != 0 && h.is_finite()).then_some(h)
    }

    /// The output size once `buffer` pixels are taken off each side.
    fn inner_size(&self, buffer: usize) -> Result<(usize, usize), CoreError> {
        if buffer == 0 {
            return Err(CoreError::invalid(
                "buffer",
                "gradients need at least 1 pixel of neighbours on each side",
            ));
        }
        let inner = |n: usize| n.checked_sub(buffer.saturating_mul(2)).filter(|&k| k > 0);
        match (inner(self.width), inner(self.height)) {
            (Some(w), Some(h)) => Ok((w, h)),
            _ => Err(CoreError::invalid(
                "buffer",
                format!(
                    "a buffer of {buffer} px leaves nothing of a {}x{} window",
                    self.width, self.height
                ),
            )),
        }
    }
}

/// Checks a height/mask pair against `width * height` (non-zero) and returns that length.
fn check_lengths(
    heights: &[f32],
    mask: &[u8],
    width: usize,
    height: usize,
) -> Result<usize, CoreError> {
    let len = width
        .checked_mul(height)
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            CoreError::invalid(
                "height window",
                format!("{width}x{height} is empty or too large"),
            )
        })?;
    if heights.len() != len || mask.len() != len {
        return Err(CoreError::invalid(
            "height window",
            format!(
                "{width}x{height} needs {len} heights and mask bytes, got {} and {}",
                heights.len(),
                mask.len()
            ),
        ));
    }
    Ok(len)
}

/// Ground metres per pixel of each row of a north-up Web Mercator (EPSG:3857) grid: the pixel
/// height times `cos(latitude)` of the row's centre, on the sphere of radius 6378137 m that
/// EPSG:3857 is defined on (`cos(lat) = 1 / cosh(y / R)`).
///
/// joerd instead measures WGS 84 geodesic distances across one pixel, once at the tile's
/// centre, separately for x and y. The ellipsoid's radii of curvature differ from the sphere by
/// up to about 0.7 % (north-south at the equator), which tilts normals imperceptibly; the
/// per-row latitude is what makes tiles agree at their seams.
pub fn web_mercator_row_metres(transform: &GeoTransform, height: usize) -> Vec<f64> {
    let pixel_m = transform.resolution().1;
    (0..height)
        .map(|row| {
            let (_, y) = transform.apply(0.0, row as f64 + 0.5);
            pixel_m / (y / WEB_MERCATOR_RADIUS_M).cosh()
        })
        .collect()
}

/// joerd's gradient along one axis (`numpy.gradient(h, 2)`): the central difference over two
/// pixels divided by 4, or the one-sided difference divided by 2 when one side is invalid.
#[inline]
fn joerd_gradient(before: Option<f64>, centre: f64, after: Option<f64>) -> f64 {
    match (before, after) {
        (Some(b), Some(a)) => (a - b) / 4.0,
        (None, Some(a)) => (a - centre) / 2.0,
        (Some(b), None) => (centre - b) / 2.0,
        (None, None) => 0.0,
    }
}

/// `clip(128 · (n + 1), 0, 255)` truncated to a byte.
#[inline]
fn normal_byte(n: f64) -> u8 {
    (128.0 * (n + 1.0)).clamp(0.0, 255.0) as u8
}

/// Mapzen normal tile (RGBA) of the window minus `buffer` (≥ 1) pixels on each side; see the
/// module docs for the formula, signs and invalid pixels.
pub fn normal_image(win: &HeightWindow, buffer: usize) -> Result<Image8, CoreError> {
    win.check()?;
    let (out_w, out_h) = win.inner_size(buffer)?;
    let flat = [128, 128, 255, normal_alpha(0.0)];
    let mut data = Vec::with_capacity(out_w * out_h * 4);
    for row in buffer..buffer + out_h {
        let inv_m = 1.0 / win.row_metres[row];
        for col in buffer..buffer + out_w {
            let Some(h) = win.at(row, col) else {
                data.extend_from_slice(&flat);
                continue;
            };
            let dx = joerd_gradient(win.at(row, col - 1), h, win.at(row, col + 1));
            let dy = joerd_gradient(win.at(row - 1, col), h, win.at(row + 1, col));
            let (gx, gy) = (-dx * inv_m, dy * inv_m);
            let len = (gx * gx + gy * gy + 1.0).sqrt();
            data.extend_from_slice(&[
                normal_byte(gx / len),
                normal_byte(gy / len),
                normal_byte(1.0 / len),
                normal_alpha(h),
            ]);
        }
    }
    Image8::new(out_w, out_h, PixelLayout::Rgba, data)
}

/// The light and vertical exaggeration of a hillshade, in `gdaldem hillshade`'s terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hillshade {
    /// Degrees clockwise from north the light comes from.
    pub azimuth: f64,
    /// Degrees above the horizon.
    pub altitude: f64,
    pub z_factor: f64,
}

impl Default for Hillshade {
    /// gdaldem's defaults: light from the north-west, 45° high, no exaggeration.
    fn default() -> Self {
        Self {
            azimuth: 315.0,
            altitude: 45.0,
            z_factor: 1.0,
        }
    }
}

impl Hillshade {
    /// Fails unless `azimuth` is in `0..=360`, `altitude` in `0..=90` and `z_factor` finite
    /// and positive.
    pub fn new(azimuth: f64, altitude: f64, z_factor: f64) -> Result<Self, CoreError> {
        if !(0.0..=360.0).contains(&azimuth) {
            return Err(CoreError::invalid(
                "hillshade azimuth",
                format!("{azimuth} is outside 0..=360 degrees"),
            ));
        }
        if !(0.0..=90.0).contains(&altitude) {
            return Err(CoreError::invalid(
                "hillshade altitude",
                format!("{altitude} is outside 0..=90 degrees"),
            ));
        }
        if !(z_factor.is_finite() && z_factor > 0.0) {
            return Err(CoreError::invalid(
                "hillshade z factor",
                format!("{z_factor} must be finite and positive"),
            ));
        }
        Ok(Self {
            azimuth,
            altitude,
            z_factor,
        })
    }
}

/// Grey hillshade with alpha of the window minus `buffer` (≥ 1) pixels on each side:
/// `gdaldem hillshade` (Horn) with each row's ground metres; see the module docs.
pub fn hillshade_image(
    win: &HeightWindow,
    buffer: usize,
    shade: &Hillshade,
) -> Result<Image8, CoreError> {
    win.check()?;
    let shade = Hillshade::new(shade.azimuth, shade.altitude, shade.z_factor)?;
    let (out_w, out_h) = win.inner_size(buffer)?;

    // GDAL's constants (GDALCreateHillshadeData), Horn's 1/8 folded into z.
    let alt = shade.altitude.to_radians();
    let az = shade.azimuth.to_radians();
    let z = shade.z_factor / 8.0;
    let cos_alt_z = alt.cos() * z;
    let sin_alt_254 = 254.0 * alt.sin();
    let cos_az_254 = 254.0 * az.cos() * cos_alt_z;
    let sin_az_254 = 254.0 * az.sin() * cos_alt_z;
    let square_z = z * z;

    let mut data = Vec::with_capacity(out_w * out_h * 2);
    for row in buffer..buffer + out_h {
        let metres = win.row_metres[row];
        // GDAL divides by the geotransform's pixel sizes; a north-up grid's y size is negative.
        let (inv_ew, inv_ns) = (1.0 / metres, -1.0 / metres);
        for col in buffer..buffer + out_w {
            let Some(h) = win.at(row, col) else {
                data.extend_from_slice(&[0, 0]);
                continue;
            };
            // 0 1 2 / 3 4 5 / 6 7 8, invalid neighbours replaced by the centre.
            let mut w = [h; 9];
            for (k, v) in w.iter_mut().enumerate() {
                if let Some(n) = win.at(row + k / 3 - 1, col + k % 3 - 1) {
                    *v = n;
                }
            }
            let x = ((w[0] + w[3] + w[3] + w[6]) - (w[2] + w[5] + w[5] + w[8])) * inv_ew;
            let y = ((w[6] + w[7] + w[7] + w[8]) - (w[0] + w[1] + w[1] + w[2])) * inv_ns;
            let cang_254 = (sin_alt_254 - (y * cos_az_254 - x * sin_az_254))
                / (1.0 + square_z * (x * x + y * y)).sqrt();
            let value = if cang_254 <= 0.0 { 1.0 } else { 1.0 + cang_254 };
            data.extend_from_slice(&[gdal_float_to_byte(value as f32), 255]);
        }
    }
    Image8::new(out_w, out_h, PixelLayout::GrayAlpha, data)
}

/// GDAL's float → Byte conversion on write: round half up, clamped; the shade is never below 1.
fn gdal_float_to_byte(v: f32) -> u8 {
    (v + 0.5).floor().clamp(1.0, 255.0) as u8
}

/// Encodes a whole tile pixel by pixel as RGB: invalid pixels as 0 m, `quantise` first when a
/// zoom is given.
fn encode_tile(
    heights: &[f32],
    mask: &[u8],
    width: usize,
    height: usize,
    quantise_zoom: Option<u8>,
    encode: impl Fn(f64) -> [u8; 3],
) -> Result<Image8, CoreError> {
    let len = check_lengths(heights, mask, width, height)?;
    let mut data = Vec::with_capacity(len * 3);
    for (&h, &m) in heights.iter().zip(mask) {
        let h = f64::from(h);
        let h = if m != 0 && h.is_finite() { h } else { 0.0 };
        let h = quantise_zoom.map_or(h, |z| quantise(h, z));
        data.extend_from_slice(&encode(h));
    }
    Image8::new(width, height, PixelLayout::Rgb, data)
}

/// A whole terrarium tile (RGB, no alpha: MapLibre ignores alpha and a transparent pixel would
/// still decode as a crater). Invalid pixels encode 0 m; `quantise_zoom: Some(z)` applies
/// [`quantise`] first.
pub fn terrarium_image(
    heights: &[f32],
    mask: &[u8],
    width: usize,
    height: usize,
    quantise_zoom: Option<u8>,
) -> Result<Image8, CoreError> {
    encode_tile(
        heights,
        mask,
        width,
        height,
        quantise_zoom,
        terrarium_encode,
    )
}

/// A whole terrain-RGB tile with `enc`; invalid pixels and quantisation as [`terrarium_image`].
pub fn terrain_rgb_image(
    heights: &[f32],
    mask: &[u8],
    width: usize,
    height: usize,
    enc: &TerrainRgb,
    quantise_zoom: Option<u8>,
) -> Result<Image8, CoreError> {
    let enc = TerrainRgb::new(enc.base, enc.interval)?;
    encode_tile(heights, mask, width, height, quantise_zoom, |h| {
        enc.encode(h)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window<'a>(
        w: usize,
        h: usize,
        heights: &'a [f32],
        mask: &'a [u8],
        metres: &'a [f64],
    ) -> HeightWindow<'a> {
        HeightWindow::new(w, h, heights, mask, metres).unwrap()
    }

    fn pixel(img: &Image8, col: usize, row: usize) -> &[u8] {
        let c = img.layout().channels();
        let i = (row * img.width() + col) * c;
        &img.data()[i..i + c]
    }

    // ---- terrarium ----

    #[test]
    fn terrarium_spec_example() {
        assert_eq!(terrarium_encode(2523.266), [137, 219, 68]);
        assert_eq!(terrarium_decode([137, 219, 68]), 2523.265625);
    }

    #[test]
    fn terrarium_earth_range() {
        assert_eq!(terrarium_encode(-11000.0), [85, 8, 0]);
        // 8900 + 32768 = 41668 = 162·256 + 196. The reference (and joerd's docs) print
        // rgb(162, 198, 0), which is 8902 m: a typo there, not a different encoding.
        assert_eq!(terrarium_encode(8900.0), [162, 196, 0]);
        assert_eq!(terrarium_decode([162, 198, 0]), 8902.0);
        assert_eq!(terrarium_decode([85, 8, 0]), -11000.0);
    }

    #[test]
    fn terrarium_round_trip_sweep() {
        let mut h = -11000.0;
        while h < 9000.0 {
            let d = terrarium_decode(terrarium_encode(h));
            // Floor: the decoded value is at most 1/256 m below.
            assert!(h - d >= -1e-9 && h - d < 1.0 / 256.0, "{h} -> {d}");
            h += 0.377;
        }
    }

    #[test]
    fn terrarium_clamps_and_nan() {
        assert_eq!(terrarium_encode(f64::NAN), [128, 0, 0]);
        assert_eq!(terrarium_encode(0.0), [128, 0, 0]);
        assert_eq!(terrarium_encode(-40000.0), [0, 0, 0]);
        assert_eq!(terrarium_encode(f64::NEG_INFINITY), [0, 0, 0]);
        assert_eq!(terrarium_encode(1e9), [255, 255, 255]);
        assert_eq!(terrarium_encode(f64::INFINITY), [255, 255, 255]);
        assert_eq!(terrarium_encode(-0.5), [127, 255, 128]);
    }

    // ---- terrain-RGB ----

    #[test]
    fn terrain_rgb_default_values() {
        let enc = TerrainRgb::default();
        assert_eq!(enc, TerrainRgb::new(-10000.0, 0.1).unwrap());
        assert_eq!(enc.decode([0, 0, 0]), -10000.0);
        // 0 m: code 100000 = 1·65536 + 134·256 + 160.
        assert_eq!(enc.encode(0.0), [1, 134, 160]);
        assert_eq!(enc.encode(f64::NAN), [1, 134, 160]);
        assert!((enc.decode([1, 134, 160])).abs() < 1e-9);
        // rio-rgbify floors: 10000.3 / 0.1 = 100002.999… → code 100002 = 0.2 m.
        assert_eq!(enc.encode(0.3), [1, 134, 162]);
        assert_eq!(enc.encode(-20000.0), [0, 0, 0]);
        assert_eq!(enc.encode(1e12), [255, 255, 255]);
    }

    #[test]
    fn terrain_rgb_round_trip_sweep() {
        for enc in [
            TerrainRgb::default(),
            TerrainRgb::new(-32768.0, 1.0 / 256.0).unwrap(),
        ] {
            let mut h = -10000.0;
            while h < 9000.0 {
                let d = enc.decode(enc.encode(h));
                assert!(
                    h - d > -1e-6 && h - d <= enc.interval + 1e-6,
                    "{h} -> {d} ({enc:?})"
                );
                h += 0.731;
            }
        }
    }

    #[test]
    fn terrain_rgb_validation() {
        assert!(TerrainRgb::new(f64::NAN, 0.1).is_err());
        assert!(TerrainRgb::new(0.0, 0.0).is_err());
        assert!(TerrainRgb::new(0.0, -1.0).is_err());
        assert!(TerrainRgb::new(0.0, f64::INFINITY).is_err());
    }

    // ---- quantise ----

    #[test]
    fn quantise_steps() {
        assert_eq!(quantise_step(19), 1.0 / 256.0);
        assert_eq!(quantise_step(25), 1.0 / 256.0);
        assert_eq!(quantise_step(0), 2048.0);
        assert_eq!(quantise_step(18), 2.0 / 256.0);
        // 1.3 · 256 = 332.8 → 333/256.
        assert_eq!(quantise(1.3, 19), 1.30078125);
        assert_eq!(quantise(1.3, 22), 1.30078125);
        assert_eq!(quantise(1000.0, 0), 0.0);
        assert_eq!(quantise(1100.0, 0), 2048.0);
        assert_eq!(quantise(-1500.0, 0), -2048.0);
        assert_eq!(quantise(8848.0, 0), 8192.0);
        // Ties to even, as numpy's round: 1024/2048 = 0.5 → 0, 3072/2048 = 1.5 → 2.
        assert_eq!(quantise(1024.0, 0), 0.0);
        assert_eq!(quantise(3072.0, 0), 4096.0);
        assert!(quantise(f64::NAN, 3).is_nan());
    }

    // ---- alpha ----

    #[test]
    fn alpha_table_and_lookup() {
        assert_eq!(NORMAL_ALPHA_BREAKS.len(), 255);
        assert_eq!(NORMAL_ALPHA_BREAKS[0], -11000.0);
        assert_eq!(NORMAL_ALPHA_BREAKS[10], -1000.0);
        assert_eq!(NORMAL_ALPHA_BREAKS[15], -1.0);
        assert_eq!(NORMAL_ALPHA_BREAKS[16], 0.0);
        assert_eq!(NORMAL_ALPHA_BREAKS[165], 2980.0);
        assert_eq!(NORMAL_ALPHA_BREAKS[166], 3000.0);
        assert_eq!(NORMAL_ALPHA_BREAKS[226], 6000.0);
        assert_eq!(NORMAL_ALPHA_BREAKS[254], 8800.0);
        assert!(NORMAL_ALPHA_BREAKS.windows(2).all(|p| p[0] < p[1]));

        assert_eq!(normal_alpha(-20000.0), 255);
        assert_eq!(normal_alpha(-11000.0), 255); // bisect-left: equal goes before
        assert_eq!(normal_alpha(-10999.0), 254);
        assert_eq!(normal_alpha(0.0), 239); // 16 breaks below 0
        assert_eq!(normal_alpha(0.5), 238);
        assert_eq!(normal_alpha(8800.0), 1);
        assert_eq!(normal_alpha(9000.0), 0);
        assert_eq!(normal_alpha(f64::NAN), 239);
    }

    // ---- windows ----

    #[test]
    fn window_validation() {
        let h = [0.0f32; 6];
        let m = [255u8; 6];
        assert!(HeightWindow::new(3, 2, &h, &m, &[1.0, 1.0]).is_ok());
        assert!(HeightWindow::new(0, 0, &[], &[], &[]).is_err());
        assert!(HeightWindow::new(3, 2, &h[..5], &m[..5], &[1.0, 1.0]).is_err());
        assert!(HeightWindow::new(3, 2, &h, &m[..5], &[1.0, 1.0]).is_err());
        assert!(HeightWindow::new(3, 2, &h, &m, &[1.0]).is_err());
        assert!(HeightWindow::new(3, 2, &h, &m, &[1.0, 0.0]).is_err());
        assert!(HeightWindow::new(3, 2, &h, &m, &[1.0, f64::NAN]).is_err());
        assert!(HeightWindow::new(usize::MAX, 2, &h, &m, &[1.0, 1.0]).is_err());
    }

    #[test]
    fn renderers_reject_bad_buffers_and_hand_built_windows() {
        let h = [0.0f32; 9];
        let m = [255u8; 9];
        let metres = [1.0; 3];
        let win = window(3, 3, &h, &m, &metres);
        let shade = Hillshade::default();
        assert!(normal_image(&win, 1).is_ok());
        assert!(hillshade_image(&win, 1, &shade).is_ok());
        for buffer in [0, 2, usize::MAX] {
            assert!(normal_image(&win, buffer).is_err());
            assert!(hillshade_image(&win, buffer, &shade).is_err());
        }
        // Public fields let a caller skip `new`; the renderers check again instead of panicking.
        let bad = HeightWindow { width: 4, ..win };
        assert!(normal_image(&bad, 1).is_err());
        assert!(hillshade_image(&bad, 1, &shade).is_err());
        let bad_shade = Hillshade {
            altitude: f64::NAN,
            ..shade
        };
        assert!(hillshade_image(&win, 1, &bad_shade).is_err());
    }

    #[test]
    fn row_metres_follow_latitude() {
        let res = 100.0;
        // Row 0's centre on the equator: the full pixel size.
        let gt = GeoTransform::north_up(0.0, res / 2.0, res, res);
        let m = web_mercator_row_metres(&gt, 2);
        assert!((m[0] - res).abs() < 1e-9);
        assert!(m[1] < m[0]);
        // Row 0's centre at 60° N: y = R · asinh(tan 60°), cos 60° = 1/2.
        let y60 = WEB_MERCATOR_RADIUS_M * 60f64.to_radians().tan().asinh();
        let gt = GeoTransform::north_up(0.0, y60 + res / 2.0, res, res);
        let m = web_mercator_row_metres(&gt, 1);
        assert!((m[0] - res / 2.0).abs() < 1e-9, "{}", m[0]);
        assert!(web_mercator_row_metres(&gt, 0).is_empty());
    }

    // ---- normals ----

    /// joerd's normal written out from the reference: numpy gradient with spacing 2
    /// (`(after − before) / (2·2)`), x by −1/m, y by +1/m, normalised, `128·(n+1)` truncated.
    fn joerd_normal_by_hand(left: f64, right: f64, up: f64, down: f64, m: f64) -> [u8; 3] {
        let gx = -((right - left) / 4.0) / m;
        let gy = ((down - up) / 4.0) / m;
        let len = (gx * gx + gy * gy + 1.0).sqrt();
        let b = |n: f64| (128.0 * (n + 1.0)).clamp(0.0, 255.0).floor() as u8;
        [b(gx / len), b(gy / len), b(1.0 / len)]
    }

    #[test]
    fn normal_of_plane_tilted_in_x() {
        // Rises 10 m per pixel eastward; 20 m pixels.
        let (w, hgt) = (5, 3);
        let heights: Vec<f32> = (0..w * hgt)
            .map(|i| 1000.0 + 10.0 * (i % w) as f32)
            .collect();
        let mask = vec![255u8; w * hgt];
        let metres = vec![20.0; hgt];
        let img = normal_image(&window(w, hgt, &heights, &mask, &metres), 1).unwrap();
        assert_eq!((img.width(), img.height()), (3, 1));
        assert_eq!(img.layout(), PixelLayout::Rgba);
        let expected = joerd_normal_by_hand(1000.0, 1020.0, 1010.0, 1010.0, 20.0);
        // Worked by hand: gx = −(20/4)/20 = −0.25, |v| = √1.0625 = 1.030776;
        // 128·(1 − 0.242536) = 96.955, 128·1 = 128, 128·(1 + 0.970143) = 252.18.
        assert_eq!(expected, [96, 128, 252]);
        // h = 1010 at column 1: 16 breaks below 0 plus 0, 20, …, 1000 (51) → 255 − 67.
        assert_eq!(pixel(&img, 0, 0), &[96, 128, 252, 188]);
        for col in 1..3 {
            assert_eq!(&pixel(&img, col, 0)[..3], &expected);
        }
    }

    #[test]
    fn normal_of_plane_rising_south_points_north() {
        // Heights grow with the row (southward): the surface faces north, green above 128.
        let (w, hgt) = (3, 3);
        let heights: Vec<f32> = (0..w * hgt).map(|i| 10.0 * (i / w) as f32).collect();
        let mask = vec![255u8; w * hgt];
        let metres = vec![20.0; hgt];
        let img = normal_image(&window(w, hgt, &heights, &mask, &metres), 1).unwrap();
        let expected = joerd_normal_by_hand(10.0, 10.0, 0.0, 20.0, 20.0);
        // gy = +0.25 → 128·(1 + 0.242536) = 159.04.
        assert_eq!(expected, [128, 159, 252]);
        assert_eq!(&pixel(&img, 0, 0)[..3], &expected);
    }

    #[test]
    fn normal_flat_and_invalid_pixels() {
        let (w, hgt) = (5, 5);
        let mut heights = vec![500.0f32; w * hgt];
        let mut mask = vec![255u8; w * hgt];
        mask[2 * w + 2] = 0; // centre invalid
        heights[w + 1] = f32::NAN; // NaN counts as invalid
        let metres = vec![30.0; hgt];
        let img = normal_image(&window(w, hgt, &heights, &mask, &metres), 1).unwrap();
        // Flat valid ground at 500 m: 16 + 25 (0..=480) breaks below → alpha 214.
        assert_eq!(pixel(&img, 2, 0), &[128, 128, 255, 214]);
        // Invalid centre: flat normal with the alpha of 0 m.
        assert_eq!(pixel(&img, 1, 1), &[128, 128, 255, 239]);
        assert_eq!(pixel(&img, 0, 0), &[128, 128, 255, 239]);
    }

    #[test]
    fn normal_one_sided_difference_keeps_a_plane() {
        // On a plane the one-sided difference equals the central one, so an invalid
        // neighbour must not change the normal.
        let (w, hgt) = (5, 3);
        let heights: Vec<f32> = (0..w * hgt).map(|i| 7.0 * (i % w) as f32).collect();
        let mut mask = vec![255u8; w * hgt];
        mask[w + 1] = 0;
        let metres = vec![10.0; hgt];
        let img = normal_image(&window(w, hgt, &heights, &mask, &metres), 1).unwrap();
        let expected = joerd_normal_by_hand(0.0, 14.0, 7.0, 7.0, 10.0);
        assert_eq!(&pixel(&img, 1, 0)[..3], &expected); // left neighbour invalid
        assert_eq!(&pixel(&img, 2, 0)[..3], &expected);
        // Both x neighbours invalid: the x component is zero.
        let mut mask = vec![255u8; w * hgt];
        mask[w + 1] = 0;
        mask[w + 3] = 0;
        let img = normal_image(&window(w, hgt, &heights, &mask, &metres), 1).unwrap();
        assert_eq!(&pixel(&img, 1, 0)[..3], &[128, 128, 255]);
    }

    // ---- hillshade ----

    #[test]
    fn hillshade_flat_is_gdal_flat_value() {
        let (w, hgt) = (4, 4);
        let heights = vec![123.0f32; w * hgt];
        let mask = vec![255u8; w * hgt];
        let metres = vec![15.0; hgt];
        let img = hillshade_image(
            &window(w, hgt, &heights, &mask, &metres),
            1,
            &Hillshade::default(),
        )
        .unwrap();
        // gdaldem: 1 + 254·sin(45°) = 180.605, rounded on write.
        let flat = (1.0 + 254.0 * 45f64.to_radians().sin()).round() as u8;
        assert_eq!(flat, 181);
        assert_eq!(img.layout(), PixelLayout::GrayAlpha);
        assert_eq!((img.width(), img.height()), (2, 2));
        assert!(img.data().chunks(2).all(|p| p == [181, 255]));
    }

    #[test]
    fn hillshade_hand_checked_slopes() {
        let (w, hgt) = (3, 3);
        let m = 25.0;
        let mask = vec![255u8; w * hgt];
        let metres = vec![m; hgt];
        // Rises 1 m per metre eastward: slope 45°, facing west (aspect 270°). Lambert with the
        // light at azimuth 315°, altitude 45°: cos45·cos45 + sin45·sin45·cos(315° − 270°)
        // = 0.5 + 0.5·0.7071 = 0.853553 → 1 + 254·0.853553 = 217.80 → 218.
        let east: Vec<f32> = (0..w * hgt).map(|i| (m * (i % w) as f64) as f32).collect();
        let img = hillshade_image(
            &window(w, hgt, &east, &mask, &metres),
            1,
            &Hillshade::default(),
        )
        .unwrap();
        let by_hand = 1.0 + 254.0 * (0.5 + 0.5 * 45f64.to_radians().cos());
        assert_eq!(by_hand.round() as u8, 218);
        assert_eq!(pixel(&img, 0, 0), &[218, 255]);

        // Rises 60° toward the north-west (faces south-east, away from the light):
        // cos45·cos60 + sin45·sin60·cos(180°) < 0 → GDAL's minimum, 1.
        let g = 60f64.to_radians().tan() / 2f64.sqrt();
        let nw: Vec<f32> = (0..w * hgt)
            .map(|i| (-g * m * ((i % w) + (i / w)) as f64) as f32)
            .collect();
        let img = hillshade_image(
            &window(w, hgt, &nw, &mask, &metres),
            1,
            &Hillshade::default(),
        )
        .unwrap();
        assert_eq!(pixel(&img, 0, 0), &[1, 255]);

        // Light from the west (270°) at 30°, z = 2 on a 1:4 eastward slope (exaggerated to
        // 1:2): faces west, straight into the light. slope = atan(0.5), illumination
        // = sin30·cos(slope) + cos30·sin(slope) = (0.5 + 0.866025·0.5)/√1.25 = 0.834512
        // → 1 + 254·0.834512 = 212.97 → 213.
        let gentle: Vec<f32> = (0..w * hgt)
            .map(|i| (m / 4.0 * (i % w) as f64) as f32)
            .collect();
        let shade = Hillshade::new(270.0, 30.0, 2.0).unwrap();
        let img = hillshade_image(&window(w, hgt, &gentle, &mask, &metres), 1, &shade).unwrap();
        let by_hand = 1.0 + 254.0 * (0.5 + 30f64.to_radians().cos() * 0.5) / 1.25f64.sqrt();
        assert_eq!(by_hand.round() as u8, 213);
        assert_eq!(pixel(&img, 0, 0), &[213, 255]);
    }

    #[test]
    fn hillshade_invalid_centre_is_transparent() {
        let (w, hgt) = (3, 3);
        let heights = vec![10.0f32; w * hgt];
        let mut mask = vec![255u8; w * hgt];
        mask[4] = 0;
        let metres = vec![5.0; hgt];
        let img = hillshade_image(
            &window(w, hgt, &heights, &mask, &metres),
            1,
            &Hillshade::default(),
        )
        .unwrap();
        assert_eq!(pixel(&img, 0, 0), &[0, 0]);
        // An invalid neighbour takes the centre's height: flat stays flat.
        let mut mask = vec![255u8; w * hgt];
        mask[0] = 0;
        let img = hillshade_image(
            &window(w, hgt, &heights, &mask, &metres),
            1,
            &Hillshade::default(),
        )
        .unwrap();
        assert_eq!(pixel(&img, 0, 0), &[181, 255]);
    }

    #[test]
    fn hillshade_validation() {
        assert_eq!(
            Hillshade::default(),
            Hillshade::new(315.0, 45.0, 1.0).unwrap()
        );
        assert!(Hillshade::new(-1.0, 45.0, 1.0).is_err());
        assert!(Hillshade::new(361.0, 45.0, 1.0).is_err());
        assert!(Hillshade::new(0.0, 91.0, 1.0).is_err());
        assert!(Hillshade::new(0.0, f64::NAN, 1.0).is_err());
        assert!(Hillshade::new(0.0, 45.0, 0.0).is_err());
        assert!(Hillshade::new(0.0, 45.0, f64::INFINITY).is_err());
        assert!(Hillshade::new(360.0, 90.0, 1e-3).is_ok());
    }

    // ---- independence from where the window was cut ----

    #[test]
    fn normal_and_hillshade_do_not_depend_on_the_window() {
        let (w, hgt) = (48usize, 40usize);
        let mut heights = Vec::with_capacity(w * hgt);
        let mut mask = Vec::with_capacity(w * hgt);
        for r in 0..hgt {
            for c in 0..w {
                let (x, y) = (c as f64, r as f64);
                let h = 800.0 + 300.0 * (x * 0.21).sin() * (y * 0.17).cos() + 4.0 * x - 2.5 * y;
                heights.push(h as f32);
                mask.push(if (r * 7 + c * 3) % 23 == 0 { 0 } else { 255 });
            }
        }
        // A z9 tile grid at about 60° N, so every row has its own size.
        let res = 2.0 * std::f64::consts::PI * WEB_MERCATOR_RADIUS_M / (256.0 * 512.0);
        let gt = GeoTransform::north_up(1.0e6, 8.4e6, res, res);
        let metres = web_mercator_row_metres(&gt, hgt);
        assert!(metres[0] < metres[hgt - 1]);
        let big = window(w, hgt, &heights, &mask, &metres);
        let shade = Hillshade::new(300.0, 40.0, 1.5).unwrap();
        let big_normal = normal_image(&big, 1).unwrap();
        let big_shade = hillshade_image(&big, 1, &shade).unwrap();

        // Sub-window rows 7..31, columns 5..40 of the big one.
        let (r0, r1, c0, c1) = (7usize, 31usize, 5usize, 40usize);
        let (sw, sh) = (c1 - c0, r1 - r0);
        let mut sub_h = Vec::new();
        let mut sub_m = Vec::new();
        for r in r0..r1 {
            sub_h.extend_from_slice(&heights[r * w + c0..r * w + c1]);
            sub_m.extend_from_slice(&mask[r * w + c0..r * w + c1]);
        }
        let sub = window(sw, sh, &sub_h, &sub_m, &metres[r0..r1]);
        for buffer in [1, 3] {
            let sub_normal = normal_image(&sub, buffer).unwrap();
            let sub_shade = hillshade_image(&sub, buffer, &shade).unwrap();
            for r in 0..sub_normal.height() {
                for c in 0..sub_normal.width() {
                    // Big-image coordinates of this output pixel (big buffer is 1).
                    let (br, bc) = (r0 + buffer + r - 1, c0 + buffer + c - 1);
                    assert_eq!(pixel(&sub_normal, c, r), pixel(&big_normal, bc, br));
                    assert_eq!(pixel(&sub_shade, c, r), pixel(&big_shade, bc, br));
                }
            }
        }
    }

    // ---- whole tiles ----

    #[test]
    fn tile_encoders() {
        let heights = [2523.266f32, 1000.3, f32::NAN, 5.0];
        let mask = [255u8, 255, 255, 0];
        let img = terrarium_image(&heights, &mask, 2, 2, None).unwrap();
        assert_eq!(img.layout(), PixelLayout::Rgb);
        // f32(2523.266) = 2523.26611328125: frac · 256 = 68.12 → same bytes.
        assert_eq!(pixel(&img, 0, 0), &[137, 219, 68]);
        assert_eq!(pixel(&img, 0, 1), &[128, 0, 0]); // NaN → 0 m
        assert_eq!(pixel(&img, 1, 1), &[128, 0, 0]); // masked → 0 m
                                                     // Quantised at z0 (2048 m steps): 2523 → 2048, 1000.3 → 0.
        let img = terrarium_image(&heights, &mask, 2, 2, Some(0)).unwrap();
        assert_eq!(pixel(&img, 0, 0), &[136, 0, 0]); // 2048 + 32768 = 136·256
        assert_eq!(pixel(&img, 1, 0), &[128, 0, 0]);

        let enc = TerrainRgb::default();
        let img = terrain_rgb_image(&heights, &mask, 2, 2, &enc, None).unwrap();
        assert_eq!(img.layout(), PixelLayout::Rgb);
        assert_eq!(pixel(&img, 1, 1), &[1, 134, 160]);
        // 2048 m at z0: (2048 + 10000) / 0.1 = 120480 = 1·65536 + 214·256 + 160.
        let img = terrain_rgb_image(&heights, &mask, 2, 2, &enc, Some(0)).unwrap();
        assert_eq!(pixel(&img, 0, 0), &[1, 214, 160]);

        assert!(terrarium_image(&heights, &mask, 3, 2, None).is_err());
        assert!(terrarium_image(&heights, &mask[..3], 2, 2, None).is_err());
        assert!(terrarium_image(&[], &[], 0, 0, None).is_err());
        let bad = TerrainRgb {
            base: 0.0,
            interval: 0.0,
        };
        assert!(terrain_rgb_image(&heights, &mask, 2, 2, &bad, None).is_err());
    }
}
