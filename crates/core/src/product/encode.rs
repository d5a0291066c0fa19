//! 8-bit image encoders: PNG (fast deflate; grey, grey+alpha, RGB, RGBA, indexed), JPEG and
//! lossy WebP. Inputs are interleaved 8-bit pixels; nothing here knows about rasters.

use std::borrow::Cow;

use super::colormap::Palette;
use crate::CoreError;

/// Output image formats for rendered tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
}

impl ImageFormat {
    /// From a file extension / URL suffix (`png`, `jpg`, `jpeg`, `webp`; any case).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "png" => Some(Self::Png),
            "jpg" | "jpeg" => Some(Self::Jpeg),
            "webp" => Some(Self::Webp),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }

    /// Whether the format can carry transparency.
    pub fn has_alpha(self) -> bool {
        !matches!(self, Self::Jpeg)
    }
}

/// Lossy quality for JPEG and WebP, `1..=100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quality(u8);

impl Quality {
    pub fn new(q: u8) -> Result<Self, CoreError> {
        if (1..=100).contains(&q) {
            Ok(Self(q))
        } else {
            Err(CoreError::invalid(
                "quality",
                format!("{q} is outside 1..=100"),
            ))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for Quality {
    /// 85, a common web default for JPEG tiles.
    fn default() -> Self {
        Self(85)
    }
}

/// The channel layout of interleaved 8-bit pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelLayout {
    Gray,
    GrayAlpha,
    Rgb,
    Rgba,
}

impl PixelLayout {
    pub fn channels(self) -> usize {
        match self {
            Self::Gray => 1,
            Self::GrayAlpha => 2,
            Self::Rgb => 3,
            Self::Rgba => 4,
        }
    }

    fn png_color(self) -> png::ColorType {
        match self {
            Self::Gray => png::ColorType::Grayscale,
            Self::GrayAlpha => png::ColorType::GrayscaleAlpha,
            Self::Rgb => png::ColorType::Rgb,
            Self::Rgba => png::ColorType::Rgba,
        }
    }
}

/// Interleaved 8-bit pixels, `width * height * layout.channels()` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image8 {
    width: usize,
    height: usize,
    layout: PixelLayout,
    data: Vec<u8>,
}

impl Image8 {
    /// Fails when `data` does not hold exactly `width * height` pixels of `layout`.
    pub fn new(
        width: usize,
        height: usize,
        layout: PixelLayout,
        data: Vec<u8>,
    ) -> Result<Self, CoreError> {
        let expected = width
            .checked_mul(height)
            .and_then(|n| n.checked_mul(layout.channels()));
        if expected != Some(data.len()) {
            return Err(CoreError::invalid(
                "image",
                format!(
                    "{width}x{height} {layout:?} needs {expected:?} bytes, got {}",
                    data.len()
                ),
            ));
        }
        Ok(Self {
            width,
            height,
            layout,
            data,
        })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn layout(&self) -> PixelLayout {
        self.layout
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Encodes in `format`. JPEG drops alpha and paints transparent pixels black; WebP expands
    /// grey to RGB (libwebp takes RGB(A) only).
    pub fn encode(&self, format: ImageFormat, quality: Quality) -> Result<Vec<u8>, CoreError> {
        match format {
            ImageFormat::Png => encode_png(self),
            ImageFormat::Jpeg => encode_jpeg(self, quality),
            ImageFormat::Webp => encode_webp(self, quality),
        }
    }
}

fn png_dims(width: usize, height: usize) -> Result<(u32, u32), CoreError> {
    let w = u32::try_from(width).ok().filter(|&w| w > 0);
    let h = u32::try_from(height).ok().filter(|&h| h > 0);
    match (w, h) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(CoreError::invalid(
            "image size",
            format!("{width}x{height} cannot be encoded"),
        )),
    }
}

fn png_error(e: png::EncodingError) -> CoreError {
    CoreError::invalid("PNG encoding", e.to_string())
}

/// Runs the PNG encoder at its fastest deflate (fdeflate: a fixed Huffman code tuned for
/// filtered image bytes, plus runs of zeros): zlib levels 1-6 (libdeflate, zlib-rs, miniz_oxide)
/// were 2.5-10x slower on Kiln's tiles for at most 15% fewer bytes, and encode time is on every
/// uncached request.
///
/// Every row uses Up, the fastest filter on every kind of tile in `benches/png_encode.rs`
/// (no filter, Sub and Avg came out larger and slower). Paeth is the size option: 2-4% smaller
/// on imagery, 15% on colormapped DEM tiles and 23-27% on terrarium and normal tiles, for
/// 6-15% more encode time (its filter is most of the work fdeflate leaves); the crate's
/// adaptive choice was barely smaller than Paeth and slower still.
fn write_png(
    width: usize,
    height: usize,
    color: png::ColorType,
    palette: Option<Cow<'_, [u8]>>,
    trns: Option<Cow<'_, [u8]>>,
    data: &[u8],
) -> Result<Vec<u8>, CoreError> {
    let (w, h) = png_dims(width, height)?;
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_deflate_compression(png::DeflateCompression::FdeflateUltraFast);
        enc.set_filter(png::Filter::Up);
        if let Some(p) = palette {
            enc.set_palette(p);
        }
        if let Some(t) = trns {
            enc.set_trns(t);
        }
        let mut writer = enc.write_header().map_err(png_error)?;
        writer.write_image_data(data).map_err(png_error)?;
        writer.finish().map_err(png_error)?;
    }
    Ok(out)
}

/// PNG in the image's own layout.
pub fn encode_png(image: &Image8) -> Result<Vec<u8>, CoreError> {
    write_png(
        image.width,
        image.height,
        image.layout.png_color(),
        None,
        None,
        &image.data,
    )
}

/// Greyscale PNG where grey value `transparent` is see-through (a tRNS chunk), as Terracotta
/// writes uncoloured single-band tiles with value 0 transparent.
pub fn encode_png_gray_trns(
    width: usize,
    height: usize,
    gray: &[u8],
    transparent: u8,
) -> Result<Vec<u8>, CoreError> {
    check_len(width, height, 1, gray.len())?;
    // tRNS for greyscale is one 16-bit big-endian sample value.
    let trns = [0, transparent];
    write_png(
        width,
        height,
        png::ColorType::Grayscale,
        None,
        Some(Cow::Borrowed(&trns[..])),
        gray,
    )
}

/// Indexed PNG: `indices` (one byte per pixel) into `palette`; the palette's alpha values go
/// to a tRNS chunk, trimmed after the last entry that is not opaque.
pub fn encode_png_indexed(
    width: usize,
    height: usize,
    indices: &[u8],
    palette: &Palette,
) -> Result<Vec<u8>, CoreError> {
    check_len(width, height, 1, indices.len())?;
    let entries = palette.entries();
    let plte: Vec<u8> = entries.iter().flat_map(|c| [c[0], c[1], c[2]]).collect();
    let last_translucent = entries.iter().rposition(|c| c[3] != 255);
    let trns: Option<Vec<u8>> =
        last_translucent.map(|i| entries.iter().take(i + 1).map(|c| c[3]).collect());
    // Decoders reject an index past the palette, so refuse to write one. (`max` vectorises; a
    // search for the first bad index took a third of the tile's encode time.)
    if let Some(bad) = indices
        .iter()
        .copied()
        .max()
        .filter(|&m| usize::from(m) >= entries.len())
    {
        return Err(CoreError::invalid(
            "palette index",
            format!("{bad} is past a palette of {}", entries.len()),
        ));
    }
    write_png(
        width,
        height,
        png::ColorType::Indexed,
        Some(Cow::Owned(plte)),
        trns.map(Cow::Owned),
        indices,
    )
}

fn check_len(width: usize, height: usize, channels: usize, len: usize) -> Result<(), CoreError> {
    let expected = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(channels));
    if expected == Some(len) {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "image",
            format!("{width}x{height}x{channels} needs {expected:?} bytes, got {len}"),
        ))
    }
}

/// JPEG (baseline, 4:2:0 is the encoder's default for RGB). Alpha is dropped; pixels with
/// alpha 0 become black, the JPEG convention for "no data" since it has no transparency.
pub fn encode_jpeg(image: &Image8, quality: Quality) -> Result<Vec<u8>, CoreError> {
    let too_big = || {
        CoreError::invalid(
            "image size",
            format!(
                "{}x{} exceeds JPEG's 65535 limit or is empty",
                image.width, image.height
            ),
        )
    };
    let w = u16::try_from(image.width)
        .ok()
        .filter(|&w| w > 0)
        .ok_or_else(too_big)?;
    let h = u16::try_from(image.height)
        .ok()
        .filter(|&h| h > 0)
        .ok_or_else(too_big)?;
    let (data, color): (Cow<'_, [u8]>, jpeg_encoder::ColorType) = match image.layout {
        PixelLayout::Gray => (Cow::Borrowed(&image.data), jpeg_encoder::ColorType::Luma),
        PixelLayout::Rgb => (Cow::Borrowed(&image.data), jpeg_encoder::ColorType::Rgb),
        PixelLayout::GrayAlpha => (
            Cow::Owned(
                image
                    .data
                    .chunks_exact(2)
                    .map(|p| if p[1] == 0 { 0 } else { p[0] })
                    .collect(),
            ),
            jpeg_encoder::ColorType::Luma,
        ),
        PixelLayout::Rgba => (
            Cow::Owned(
                image
                    .data
                    .chunks_exact(4)
                    .flat_map(|p| {
                        if p[3] == 0 {
                            [0, 0, 0]
                        } else {
                            [p[0], p[1], p[2]]
                        }
                    })
                    .collect(),
            ),
            jpeg_encoder::ColorType::Rgb,
        ),
    };
    let mut out = Vec::with_capacity(image.data.len() / 8 + 1024);
    jpeg_encoder::Encoder::new(&mut out, quality.get())
        .encode(&data, w, h, color)
        .map_err(|e| CoreError::invalid("JPEG encoding", e.to_string()))?;
    Ok(out)
}

/// WebP's hard size limit per side.
const WEBP_MAX_SIDE: usize = 16_383;

/// Lossy WebP; alpha is kept when the layout has it. Uses libwebp method 2: the default (4) is
/// markedly slower for a small size gain on tiles.
pub fn encode_webp(image: &Image8, quality: Quality) -> Result<Vec<u8>, CoreError> {
    webp_encode(image, Some(quality))
}

/// Lossless WebP (every sample kept: terrain tiles whose colours encode heights).
pub fn encode_webp_lossless(image: &Image8) -> Result<Vec<u8>, CoreError> {
    webp_encode(image, None)
}

/// `quality: None` = lossless.
fn webp_encode(image: &Image8, quality: Option<Quality>) -> Result<Vec<u8>, CoreError> {
    if image.width == 0
        || image.height == 0
        || image.width > WEBP_MAX_SIDE
        || image.height > WEBP_MAX_SIDE
    {
        return Err(CoreError::invalid(
            "image size",
            format!(
                "{}x{} is outside WebP's 1..={WEBP_MAX_SIDE}",
                image.width, image.height
            ),
        ));
    }
    // Checked above: both sides fit in u32.
    let w = u32::try_from(image.width).unwrap_or(0);
    let h = u32::try_from(image.height).unwrap_or(0);
    let (data, layout): (Cow<'_, [u8]>, webp::PixelLayout) = match image.layout {
        PixelLayout::Rgb => (Cow::Borrowed(&image.data), webp::PixelLayout::Rgb),
        PixelLayout::Rgba => (Cow::Borrowed(&image.data), webp::PixelLayout::Rgba),
        PixelLayout::Gray => (
            Cow::Owned(image.data.iter().flat_map(|&g| [g, g, g]).collect()),
            webp::PixelLayout::Rgb,
        ),
        PixelLayout::GrayAlpha => (
            Cow::Owned(
                image
                    .data
                    .chunks_exact(2)
                    .flat_map(|p| [p[0], p[0], p[0], p[1]])
                    .collect(),
            ),
            webp::PixelLayout::Rgba,
        ),
    };
    let mut config = webp::WebPConfig::new()
        .map_err(|()| CoreError::invalid("WebP encoding", "libwebp config init failed"))?;
    match quality {
        Some(q) => {
            config.lossless = 0;
            config.quality = f32::from(q.get());
        }
        None => {
            config.lossless = 1;
            // libwebp's lossless effort scale; 75 is its default and far from its slowest.
            config.quality = 75.0;
            config.exact = 1;
        }
    }
    config.method = 2;
    config.alpha_compression = 1;
    let encoded = webp::Encoder::new(&data, layout, w, h)
        .encode_advanced(&config)
        .map_err(|e| CoreError::invalid("WebP encoding", format!("{e:?}")))?;
    Ok(encoded.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_png(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>, png::Info<'static>) {
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
        // Raw samples: no palette expansion, so indexed tiles decode to their indices.
        dec.set_transformations(png::Transformations::IDENTITY);
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        let header = reader.info().clone();
        (info, buf, header.to_owned())
    }

    fn gradient_rgba(w: usize, h: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(w * h * 4);
        for y in 0..h {
            for x in 0..w {
                v.extend_from_slice(&[
                    (x * 255 / w) as u8,
                    (y * 255 / h) as u8,
                    128,
                    if x < 4 { 0 } else { 255 },
                ]);
            }
        }
        v
    }

    #[test]
    fn png_round_trips_every_layout() {
        let (w, h) = (17, 9);
        let rgba = gradient_rgba(w, h);
        for layout in [
            PixelLayout::Gray,
            PixelLayout::GrayAlpha,
            PixelLayout::Rgb,
            PixelLayout::Rgba,
        ] {
            let c = layout.channels();
            let data: Vec<u8> = rgba
                .chunks_exact(4)
                .flat_map(|p| match c {
                    1 => vec![p[0]],
                    2 => vec![p[0], p[3]],
                    3 => vec![p[0], p[1], p[2]],
                    _ => p.to_vec(),
                })
                .collect();
            let img = Image8::new(w, h, layout, data.clone()).unwrap();
            let bytes = img.encode(ImageFormat::Png, Quality::default()).unwrap();
            let (info, pixels, _) = decode_png(&bytes);
            assert_eq!((info.width, info.height), (17, 9));
            assert_eq!(info.color_type, layout.png_color());
            assert_eq!(pixels, data, "{layout:?}");
        }
    }

    #[test]
    fn indexed_png_has_trns_with_index_zero_transparent() {
        let palette = Palette::new(vec![[0, 0, 0, 0], [255, 0, 0, 255], [0, 0, 255, 255]]).unwrap();
        let idx = vec![0, 1, 2, 1, 0, 2];
        let bytes = encode_png_indexed(3, 2, &idx, &palette).unwrap();
        let (info, pixels, header) = decode_png(&bytes);
        assert_eq!(info.color_type, png::ColorType::Indexed);
        assert_eq!(pixels, idx);
        let plte = header.palette.as_deref().unwrap();
        assert_eq!(plte, &[0, 0, 0, 255, 0, 0, 0, 0, 255]);
        // Only entry 0 is translucent, so tRNS stops after it.
        assert_eq!(header.trns.as_deref().unwrap(), &[0]);
        assert!(encode_png_indexed(3, 2, &[0, 1, 2, 3, 0, 0], &palette).is_err());
    }

    /// The data of the first chunk of type `kind` in a PNG file.
    pub(crate) fn png_chunk<'a>(png: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
        let mut pos = 8;
        while pos + 8 <= png.len() {
            let len = u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap()) as usize;
            if &png[pos + 4..pos + 8] == kind {
                return png.get(pos + 8..pos + 8 + len);
            }
            pos += 12 + len;
        }
        None
    }

    #[test]
    fn gray_trns_png() {
        let bytes = encode_png_gray_trns(2, 2, &[7, 10, 20, 255], 7).unwrap();
        // On disk: one 16-bit grey sample.
        assert_eq!(png_chunk(&bytes, b"tRNS"), Some(&[0u8, 7][..]));
        let (info, pixels, header) = decode_png(&bytes);
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(pixels, vec![7, 10, 20, 255]);
        assert_eq!(header.trns.as_deref().unwrap(), &[7]);
        // Expanded by a decoder, grey 7 is the only transparent pixel.
        let mut dec = png::Decoder::new(std::io::Cursor::new(&bytes[..]));
        dec.set_transformations(png::Transformations::EXPAND);
        let mut reader = dec.read_info().unwrap();
        let mut ga = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut ga).unwrap();
        assert_eq!(ga, vec![7, 0, 10, 255, 20, 255, 255, 255]);
    }

    #[test]
    fn jpeg_decodes_to_plausible_pixels() {
        let (w, h) = (64, 32);
        let rgba = gradient_rgba(w, h);
        let img = Image8::new(w, h, PixelLayout::Rgba, rgba.clone()).unwrap();
        let bytes = img.encode(ImageFormat::Jpeg, Quality::default()).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
        let mut dec = zune_jpeg::JpegDecoder::new(std::io::Cursor::new(&bytes));
        let pixels = dec.decode().unwrap();
        let (dw, dh) = dec.dimensions().unwrap();
        assert_eq!((dw, dh), (64, 32));
        assert_eq!(pixels.len(), w * h * 3);
        let mut max_err = 0u8;
        for (i, p) in pixels.chunks_exact(3).enumerate() {
            let src = &rgba[i * 4..i * 4 + 4];
            let want = if src[3] == 0 {
                [0, 0, 0]
            } else {
                [src[0], src[1], src[2]]
            };
            // Skip the block edge where black meets the gradient (ringing is expected there).
            if i % w >= 2 && i % w <= 9 {
                continue;
            }
            for c in 0..3 {
                max_err = max_err.max(p[c].abs_diff(want[c]));
            }
        }
        assert!(max_err <= 12, "max JPEG error {max_err}");
    }

    #[test]
    fn webp_decodes_with_alpha() {
        let (w, h) = (32, 16);
        let rgba = gradient_rgba(w, h);
        let img = Image8::new(w, h, PixelLayout::Rgba, rgba.clone()).unwrap();
        let bytes = img
            .encode(ImageFormat::Webp, Quality::new(90).unwrap())
            .unwrap();
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(&bytes[8..12], b"WEBP");
        let decoded = webp::Decoder::new(&bytes).decode().unwrap();
        assert_eq!((decoded.width(), decoded.height()), (32, 16));
        assert!(decoded.is_alpha());
        let px: &[u8] = &decoded;
        let mut max_err = 0u8;
        for (i, (d, s)) in px.chunks_exact(4).zip(rgba.chunks_exact(4)).enumerate() {
            assert_eq!(d[3], s[3], "alpha at pixel {i}");
            if s[3] == 255 && i % w > 6 {
                for c in 0..3 {
                    max_err = max_err.max(d[c].abs_diff(s[c]));
                }
            }
        }
        assert!(max_err <= 16, "max WebP error {max_err}");
    }

    /// Colour type, raw samples, PLTE and tRNS as a decoder reads them.
    type Decoded = (png::ColorType, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);

    fn decode_all(bytes: &[u8]) -> Decoded {
        let (info, pixels, header) = decode_png(bytes);
        let plte = header.palette.as_deref().map(<[u8]>::to_vec);
        let trns = header.trns.as_deref().map(<[u8]>::to_vec);
        (info.color_type, pixels, plte, trns)
    }

    /// The encoder before png 0.18: png 0.17, fast deflate, Up on every row.
    fn encode_png_017(
        (w, h): (usize, usize),
        color: png_017::ColorType,
        plte: Option<Vec<u8>>,
        trns: Option<Vec<u8>>,
        data: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png_017::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(color);
        enc.set_depth(png_017::BitDepth::Eight);
        enc.set_compression(png_017::Compression::Fast);
        enc.set_filter(png_017::FilterType::Up);
        if let Some(p) = plte {
            enc.set_palette(p);
        }
        if let Some(t) = trns {
            enc.set_trns(t);
        }
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        writer.finish().unwrap();
        out
    }

    /// Test images: `(w, h)` RGBA pixels that are smooth, noisy or of five colours, each opaque,
    /// with a transparent collar, or with random alpha.
    fn test_images() -> Vec<((usize, usize), String, Vec<u8>)> {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        };
        let five = [
            [0, 0, 0],
            [255, 0, 0],
            [12, 200, 40],
            [255, 255, 255],
            [60, 60, 250],
        ];
        let mut out = Vec::new();
        for (w, h) in [(1, 1), (2, 3), (17, 9), (64, 33), (256, 256)] {
            for content in ["smooth", "noise", "five"] {
                for alpha in ["opaque", "collar", "random"] {
                    let mut px = Vec::with_capacity(w * h * 4);
                    for y in 0..h {
                        for x in 0..w {
                            let r = next();
                            let rgb = match content {
                                "smooth" => [
                                    (x * 255 / w) as u8,
                                    (y * 255 / h) as u8,
                                    ((x + y) / 2 % 256) as u8,
                                ],
                                "noise" => [r[0], r[1], r[2]],
                                _ => five[(x / 7 + y / 5) % 5],
                            };
                            let a = match alpha {
                                "opaque" => 255,
                                "collar" if x < w / 4 || y < h / 4 => 0,
                                "collar" => 255,
                                _ => r[3],
                            };
                            px.extend_from_slice(&[rgb[0], rgb[1], rgb[2], a]);
                        }
                    }
                    out.push(((w, h), format!("{w}x{h} {content} {alpha}"), px));
                }
            }
        }
        out
    }

    /// Every encoder decodes to what the encoder before png 0.18 wrote: same colour type,
    /// samples, palette and transparency, for every layout, palettes of few and many entries,
    /// opaque and transparent pixels.
    #[test]
    fn png_decodes_as_before() {
        use png_017::ColorType as Old;
        for ((w, h), name, rgba) in test_images() {
            for (layout, old_color) in [
                (PixelLayout::Gray, Old::Grayscale),
                (PixelLayout::GrayAlpha, Old::GrayscaleAlpha),
                (PixelLayout::Rgb, Old::Rgb),
                (PixelLayout::Rgba, Old::Rgba),
            ] {
                let data: Vec<u8> = rgba
                    .chunks_exact(4)
                    .flat_map(|p| match layout {
                        PixelLayout::Gray => vec![p[0]],
                        PixelLayout::GrayAlpha => vec![p[0], p[3]],
                        PixelLayout::Rgb => vec![p[0], p[1], p[2]],
                        PixelLayout::Rgba => p.to_vec(),
                    })
                    .collect();
                let new = encode_png(&Image8::new(w, h, layout, data.clone()).unwrap()).unwrap();
                let old = encode_png_017((w, h), old_color, None, None, &data);
                let decoded = decode_all(&new);
                assert_eq!(decoded, decode_all(&old), "{name} {layout:?}");
                assert_eq!(decoded.1, data, "{name} {layout:?}");
            }

            // Single band: grey with 0 transparent, and indices into palettes of 256 entries
            // (a ramp, index 0 transparent) and of 5 (no transparency).
            let grey: Vec<u8> = rgba.chunks_exact(4).map(|p| p[1]).collect();
            let new = encode_png_gray_trns(w, h, &grey, 0).unwrap();
            let old = encode_png_017((w, h), Old::Grayscale, None, Some(vec![0, 0]), &grey);
            assert_eq!(decode_all(&new), decode_all(&old), "{name} grey");

            let ramp: Vec<[u8; 4]> = (0..=255u8)
                .map(|i| [i, 255 - i, i / 2, if i == 0 { 0 } else { 255 }])
                .collect();
            let few: Vec<[u8; 4]> = five_entries();
            for (palette, indices) in [
                (ramp, grey.clone()),
                (few, grey.iter().map(|g| g % 5).collect::<Vec<u8>>()),
            ] {
                let plte: Vec<u8> = palette.iter().flat_map(|c| [c[0], c[1], c[2]]).collect();
                let trns = palette
                    .iter()
                    .rposition(|c| c[3] != 255)
                    .map(|i| palette[..=i].iter().map(|c| c[3]).collect());
                let n = palette.len();
                let palette = Palette::new(palette).unwrap();
                let new = encode_png_indexed(w, h, &indices, &palette).unwrap();
                let old = encode_png_017((w, h), Old::Indexed, Some(plte), trns, &indices);
                let decoded = decode_all(&new);
                assert_eq!(decoded, decode_all(&old), "{name} indexed, {n} entries");
                assert_eq!(decoded.1, indices, "{name} indexed, {n} entries");
            }
        }
    }

    fn five_entries() -> Vec<[u8; 4]> {
        vec![
            [0, 0, 0, 255],
            [255, 0, 0, 255],
            [12, 200, 40, 255],
            [255, 255, 255, 255],
            [60, 60, 250, 255],
        ]
    }

    #[test]
    fn rejects_bad_sizes_and_quality() {
        assert!(Image8::new(2, 2, PixelLayout::Rgb, vec![0; 11]).is_err());
        assert!(Quality::new(0).is_err() && Quality::new(101).is_err());
        let img = Image8::new(70_000, 1, PixelLayout::Gray, vec![0; 70_000]).unwrap();
        assert!(img.encode(ImageFormat::Jpeg, Quality::default()).is_err());
        assert!(img.encode(ImageFormat::Webp, Quality::default()).is_err());
        let empty = Image8::new(0, 0, PixelLayout::Gray, vec![]).unwrap();
        assert!(empty.encode(ImageFormat::Png, Quality::default()).is_err());
    }

    #[test]
    fn format_names() {
        assert_eq!(ImageFormat::from_extension("JPG"), Some(ImageFormat::Jpeg));
        assert_eq!(ImageFormat::from_extension("tif"), None);
        assert_eq!(ImageFormat::Webp.mime_type(), "image/webp");
    }
}
