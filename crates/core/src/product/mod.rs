//! Products made from a warped tile: stretch, colormaps, RGB composition, image encoders.
//!
//! Input is a warped [`Raster`] (band-sequential samples in the source type plus one mask,
//! 255 valid / 0 invalid). Single-band tiles follow Terracotta: values stretch to palette
//! indices `1..=255`, masked pixels are index 0, and the PNG is indexed (colormap) or greyscale
//! with grey 0 transparent, so a Terracotta client sees the same pixels. RGB tiles stretch each
//! band to `0..=255` and carry the mask as alpha (black in JPEG). `.npy` tiles follow TiTiler.

mod colormap;
mod colormap_data;
mod encode;
mod npy;
mod stretch;

pub use colormap::{
    colormap_names, colormap_values, parse_hex_color, Colormap, ColormapEntry, ExplicitColormap,
    Palette, COLORMAP_LEN, MAX_COLORMAP_VALUES, MAX_EXPLICIT_ENTRIES,
};
pub use encode::{
    encode_jpeg, encode_png, encode_png_gray_trns, encode_png_indexed, encode_webp,
    encode_webp_lossless, Image8, ImageFormat, PixelLayout, Quality,
};
pub use npy::{encode_npy, npy_descr, npy_dtype, npy_header};
pub use stretch::{stretch_to_byte, stretch_to_index, Stretch};

use crate::raster::Raster;
use crate::CoreError;

/// A single-band tile as PNG: stretched to indices `1..=255` (masked → 0), then an indexed PNG
/// with the colormap's palette (index 0 transparent), or without a colormap a greyscale PNG
/// whose grey 0 is transparent (Terracotta's output for both).
pub fn render_singleband(
    raster: &Raster,
    band: usize,
    stretch: Stretch,
    colormap: Option<&Colormap>,
) -> Result<Vec<u8>, CoreError> {
    let indices = stretch_to_index(raster, band, stretch)?;
    match colormap {
        Some(c) => encode_png_indexed(raster.width(), raster.height(), &indices, &c.palette()),
        None => encode_png_gray_trns(raster.width(), raster.height(), &indices, 0),
    }
}

/// A single-band tile through an explicit value → colour map, as an indexed PNG; unlisted and
/// masked pixels are transparent.
pub fn render_explicit(
    raster: &Raster,
    band: usize,
    colormap: &ExplicitColormap,
) -> Result<Vec<u8>, CoreError> {
    let indices = colormap.label_band(raster, band)?;
    encode_png_indexed(
        raster.width(),
        raster.height(),
        &indices,
        &colormap.palette(),
    )
}

/// Composes three bands into an 8-bit RGB(A) image: each band stretched to `0..=255` with its
/// own range, alpha from the mask. A tile with no masked pixel comes out as plain RGB (smaller
/// to encode and to send).
pub fn rgb_image(
    raster: &Raster,
    bands: [usize; 3],
    ranges: [Stretch; 3],
) -> Result<Image8, CoreError> {
    let r = stretch_to_byte(raster, bands[0], ranges[0])?;
    let g = stretch_to_byte(raster, bands[1], ranges[1])?;
    let b = stretch_to_byte(raster, bands[2], ranges[2])?;
    let mask = raster.mask();
    let all_valid = mask.iter().all(|&m| m != 0);
    // Interleaved row by row into exact-size chunks; a row whose bytes and mask equal the
    // row above's (most rows of an overzoomed tile) is a copy of the output row above.
    let (layout, channels) = if all_valid {
        (PixelLayout::Rgb, 3)
    } else {
        (PixelLayout::Rgba, 4)
    };
    let w = raster.width();
    let mut data = vec![0u8; r.len() * channels];
    let out_w = w * channels;
    for y in 0..raster.height() {
        let (at, o) = (y * w, y * out_w);
        let row = at..at + w;
        if y > 0 {
            let above = at - w..at;
            if r[row.clone()] == r[above.clone()]
                && g[row.clone()] == g[above.clone()]
                && b[row.clone()] == b[above.clone()]
                && mask[row.clone()] == mask[above]
            {
                data.copy_within(o - out_w..o, o);
                continue;
            }
        }
        let out = &mut data[o..o + out_w];
        let px = r[row.clone()]
            .iter()
            .zip(&g[row.clone()])
            .zip(&b[row.clone()]);
        if channels == 3 {
            for (o, ((&r, &g), &b)) in out.chunks_exact_mut(3).zip(px) {
                o.copy_from_slice(&[r, g, b]);
            }
        } else {
            for (o, (((&r, &g), &b), &m)) in out.chunks_exact_mut(4).zip(px.zip(&mask[row])) {
                o.copy_from_slice(&[r, g, b, if m == 0 { 0 } else { 255 }]);
            }
        }
    }
    Image8::new(raster.width(), raster.height(), layout, data)
}

/// An RGB tile in `format` (see [`rgb_image`]); `quality` applies to JPEG and WebP.
pub fn render_rgb(
    raster: &Raster,
    bands: [usize; 3],
    ranges: [Stretch; 3],
    format: ImageFormat,
    quality: Quality,
) -> Result<Vec<u8>, CoreError> {
    rgb_image(raster, bands, ranges)?.encode(format, quality)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::Samples;

    fn decode_png_raw(bytes: &[u8]) -> (png::ColorType, Vec<u8>, Option<Vec<u8>>) {
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
        dec.set_transformations(png::Transformations::IDENTITY);
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        let trns = reader.info().trns.as_ref().map(|t| t.to_vec());
        (info.color_type, buf, trns)
    }

    /// Rows that repeat the row above in every band and the mask are copied; rows that
    /// differ in one band or only in the mask are not: each pixel is its bands' stretched
    /// bytes, alpha from the mask.
    #[test]
    fn rgb_rows_interleave_pixel_by_pixel() {
        let (w, h) = (5, 6);
        // Band 1 is the same in rows 0-3, band 2 changes at row 2, the mask at row 3.
        let mut v: Vec<u16> = Vec::new();
        for band in 0..3u16 {
            for y in 0..h as u16 {
                for x in 0..w as u16 {
                    let row = match band {
                        0 => y / 4,
                        1 => y / 2,
                        _ => 0,
                    };
                    v.push(1000 + band * 300 + row * 700 + x * 90);
                }
            }
        }
        let stretch = Stretch::new(900.0, 4000.0).unwrap();
        for holes in [false, true] {
            let mut mask = vec![255u8; w * h];
            if holes {
                mask[3 * w + 1] = 0;
                mask[4 * w + 1] = 0;
            }
            let raster = Raster::new(w, h, 3, Samples::U16(v.clone()), mask.clone()).unwrap();
            let img = rgb_image(&raster, [0, 1, 2], [stretch; 3]).unwrap();
            let planes: Vec<Vec<u8>> = (0..3)
                .map(|b| stretch_to_byte(&raster, b, stretch).unwrap())
                .collect();
            let n = if holes { 4 } else { 3 };
            let want: Vec<u8> = (0..w * h)
                .flat_map(|i| {
                    let px = [planes[0][i], planes[1][i], planes[2][i], mask[i]];
                    px[..n].to_vec()
                })
                .collect();
            assert_eq!(img.data(), want.as_slice(), "holes: {holes}");
        }
    }

    fn dem_like() -> Raster {
        // 4x2 f32 "elevations" with one nodata pixel.
        Raster::new(
            4,
            2,
            1,
            Samples::F32(vec![0.0, 100.0, 200.0, 300.0, 400.0, 500.0, -50.0, 9e9]),
            vec![255, 255, 255, 255, 255, 255, 255, 0],
        )
        .unwrap()
    }

    #[test]
    fn singleband_colormap_is_indexed_with_stretched_indices() {
        let r = dem_like();
        let s = Stretch::new(0.0, 500.0).unwrap();
        let cmap = Colormap::by_name("viridis").unwrap();
        let png = render_singleband(&r, 0, s, Some(&cmap)).unwrap();
        let (color, idx, trns) = decode_png_raw(&png);
        assert_eq!(color, png::ColorType::Indexed);
        // 254/500 per unit: 0->1, 100->51.8->52, 200->102.6->103, 300->153.4->153,
        // 400->204.2->204, 500->255, -50 clips to 1, masked -> 0.
        assert_eq!(idx, vec![1, 52, 103, 153, 204, 255, 1, 0]);
        assert_eq!(trns.unwrap(), vec![0]);

        // Expanded, the pixels are the colormap entries.
        let mut dec = png::Decoder::new(std::io::Cursor::new(&png[..]));
        dec.set_transformations(png::Transformations::EXPAND);
        let mut reader = dec.read_info().unwrap();
        let mut rgba = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut rgba).unwrap();
        assert_eq!(&rgba[0..4], &cmap.table()[0]);
        assert_eq!(&rgba[4..8], &cmap.table()[51]);
        assert_eq!(&rgba[28..32], &[0, 0, 0, 0]);
    }

    #[test]
    fn singleband_without_colormap_is_grey_with_zero_transparent() {
        let png =
            render_singleband(&dem_like(), 0, Stretch::new(0.0, 500.0).unwrap(), None).unwrap();
        let (color, grey, trns) = decode_png_raw(&png);
        assert_eq!(color, png::ColorType::Grayscale);
        assert_eq!(grey, vec![1, 52, 103, 153, 204, 255, 1, 0]);
        // The decoder reports the 8-bit transparent grey.
        assert_eq!(trns.unwrap(), vec![0]);
    }

    #[test]
    fn explicit_render_maps_classes() {
        let r = Raster::new(3, 1, 1, Samples::U8(vec![3, 9, 4]), vec![255; 3]).unwrap();
        let m =
            ExplicitColormap::new(vec![(3.0, [255, 0, 0, 255]), (4.0, [0, 255, 0, 255])]).unwrap();
        let (color, idx, trns) = decode_png_raw(&render_explicit(&r, 0, &m).unwrap());
        assert_eq!(color, png::ColorType::Indexed);
        assert_eq!(idx, vec![1, 0, 2]);
        assert_eq!(trns.unwrap(), vec![0]);
    }

    fn rgb_raster(mask: Vec<u8>) -> Raster {
        Raster::new(
            2,
            1,
            3,
            Samples::U16(vec![0, 1000, 500, 2000, 4000, 0]),
            mask,
        )
        .unwrap()
    }

    #[test]
    fn rgb_per_band_ranges_and_alpha() {
        let ranges = [
            Stretch::new(0.0, 1000.0).unwrap(),
            Stretch::new(0.0, 2000.0).unwrap(),
            Stretch::new(0.0, 4000.0).unwrap(),
        ];
        let img = rgb_image(&rgb_raster(vec![255, 0]), [0, 1, 2], ranges).unwrap();
        assert_eq!(img.layout(), PixelLayout::Rgba);
        // 500/2000*255 = 63.75 -> 64.
        assert_eq!(img.data(), &[0, 64, 255, 255, 0, 0, 0, 0]);

        let full = rgb_image(&rgb_raster(vec![255, 255]), [2, 1, 0], ranges).unwrap();
        assert_eq!(full.layout(), PixelLayout::Rgb);
        // Bands swapped: pixel 0 is (4000, 500, 0), pixel 1 is (0, 2000, 1000) under the ranges.
        assert_eq!(full.data(), &[255, 64, 0, 0, 255, 64]);

        let png = render_rgb(
            &rgb_raster(vec![255, 0]),
            [0, 1, 2],
            ranges,
            ImageFormat::Png,
            Quality::default(),
        )
        .unwrap();
        let (color, px, _) = decode_png_raw(&png);
        assert_eq!(color, png::ColorType::Rgba);
        assert_eq!(px, img.data());
        assert!(rgb_image(&rgb_raster(vec![255, 0]), [0, 1, 3], ranges).is_err());
    }
}
