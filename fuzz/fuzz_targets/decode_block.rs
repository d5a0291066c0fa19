//! Fuzz target: block decoding under valid headers of real files, with fuzzed block bytes.
//!
//! Input layout: `[file, image, codec, index_lo, index_hi, mode, payload...]`.
//! - `file` picks one of the real files embedded below (their headers are parsed once),
//!   `image` one of its images or masks, `index` one of its blocks.
//! - `codec` 0 keeps the stored compression; 1..=5 swap in None / Deflate / LZW / PackBits /
//!   ZSTD (for images not stored as JPEG or WebP), so every raw codec meets every sample layout.
//! - `mode` bit 0 clear: the payload is the block's bytes. Bit 0 set: the payload is XORed over
//!   the block's real bytes, so even an empty payload decodes a real block and each mutation
//!   damages one; bit 1 also cuts the real bytes to the payload's length.
#![no_main]

use std::sync::OnceLock;

use kiln_cog::{decode_block, Compression, ImageIfd, Predictor, TiffHeader};
use libfuzzer_sys::fuzz_target;

macro_rules! shared {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_bytes!(concat!("../../../shared/data/", $name)).as_slice())),*]
    };
}

/// Small files covering every codec, predictor, sample type, byte order and mask kind.
const FILES: [(&str, &[u8]); 10] = shared![
    "odd_luxembourg_i16_zstd_pred2.tif",
    "dem_srtm30s_luxembourg_i16_lzw.tif",
    "odd_luxembourg_i16_bigendian_striped.tif",
    "odd_luxembourg_i16_bigtiff_lzw.tif",
    "odd_dataset_mask_f32_albers_lzw.tif",
    "global_etopo20_f32_deflate_pred3.tif",
    "img_modis_miriam_4326_rgb_jpeg.tif",
    "odd_natural_earth1_rgb_webp_lossless.tif",
    "odd_bahamas_rgba_alpha_deflate.tif",
    "odd_nlcd_puertorico_palette_u8.tif",
];

fn headers() -> &'static [Option<TiffHeader>] {
    static HEADERS: OnceLock<Vec<Option<TiffHeader>>> = OnceLock::new();
    HEADERS.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, bytes)| TiffHeader::parse(bytes).ok())
            .collect()
    })
}

const RAW_CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Deflate,
    Compression::Lzw,
    Compression::PackBits,
    Compression::Zstd,
];

fuzz_target!(|input: &[u8]| {
    let Some((head, payload)) = input.split_first_chunk::<6>() else {
        return;
    };
    let [file, image, codec, lo, hi, mode] = *head;
    let f = usize::from(file) % FILES.len();
    let Some(header) = headers().get(f).and_then(Option::as_ref) else {
        return;
    };
    let ifds: Vec<&ImageIfd> = header
        .images
        .iter()
        .chain(header.masks.iter().flatten())
        .collect();
    let Some(&stored) = ifds.get(usize::from(image) % ifds.len().max(1)) else {
        return;
    };
    let count = stored.block_count();
    if count == 0 {
        return;
    }
    let index = usize::from(u16::from_le_bytes([lo, hi])) % count;

    let mut ifd = stored.clone();
    let raw_layout = !matches!(ifd.compression, Compression::Jpeg | Compression::Webp);
    if codec != 0 && raw_layout {
        ifd.compression = RAW_CODECS[usize::from(codec - 1) % RAW_CODECS.len()];
        // The parser drops predictors on codecs that do not take one; do the same.
        if matches!(ifd.compression, Compression::None | Compression::PackBits) {
            ifd.predictor = Predictor::None;
        }
    }

    let real = stored
        .block_range(index)
        .and_then(|(o, n)| {
            let o = usize::try_from(o).ok()?;
            FILES[f].1.get(o..o.checked_add(usize::try_from(n).ok()?)?)
        })
        .unwrap_or_default();
    let bytes: Vec<u8> = if mode & 1 == 0 {
        payload.to_vec()
    } else {
        let keep = if mode & 2 == 0 {
            real.len()
        } else {
            payload.len().min(real.len())
        };
        let mut b = real[..keep].to_vec();
        for (d, x) in b.iter_mut().zip(payload) {
            *d ^= x;
        }
        b
    };

    if let Ok(block) = decode_block(header, &ifd, index, &bytes) {
        assert_eq!(
            (block.width, block.height, block.bands, block.samples.len()),
            (
                ifd.block_width as usize,
                ifd.block_rows(index),
                ifd.block_bands(),
                block.width * block.height * block.bands
            ),
            "block {index} shape"
        );
    }
});
