//! Throughput of YCbCr JPEG block decoding on real COGs, Kiln's decoder next to zune-jpeg
//! (the general decoder it falls back to) on the same blocks. Ignored by default (a timing,
//! not a check); run it in release:
//!
//! `cargo test --release -p kiln-cog --test jpeg_bench -- --ignored --nocapture`

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Instant;

use kiln_cog::{decode_block, ImageIfd, TiffHeader};

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
}

/// zune-jpeg on one block as `decode_block` used it: tables spliced in front, RGB out, then
/// split into band-sequential planes.
fn zune_block(ifd: &ImageIfd, bytes: &[u8]) -> Vec<u8> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let tables = ifd.jpeg_tables.as_deref().unwrap();
    let mut s = tables[..tables.len() - 2].to_vec();
    s.extend_from_slice(&bytes[2..]);
    let opts = DecoderOptions::default()
        .set_strict_mode(true)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut dec = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(&s[..]), opts);
    let px = dec.decode().unwrap();
    let npix = px.len() / 3;
    let mut out = vec![0u8; px.len()];
    for (i, p) in px.chunks_exact(3).enumerate() {
        out[i] = p[0];
        out[npix + i] = p[1];
        out[2 * npix + i] = p[2];
    }
    out
}

#[test]
#[ignore = "timing; run manually in release"]
fn jpeg_block_decode_throughput() {
    for file in [
        "global_bluemarble_5400x2700_rgb_jpeg_tiled.tif",
        "global_shadedrelief_10800x5400_rgb_jpeg_cog.tif",
        "img_modis_miriam_4326_rgb_jpeg.tif",
    ] {
        let data = std::fs::read(data_dir().join(file)).unwrap();
        let header = TiffHeader::parse(&data).unwrap();
        let ifd = &header.images[0];
        let blocks: Vec<&[u8]> = (0..ifd.block_count())
            .map(|i| {
                let (off, len) = ifd.block_range(i).unwrap();
                &data[off as usize..(off + len) as usize]
            })
            .collect();
        let npix = (ifd.block_width * ifd.block_height) as usize;
        // Best of several rounds: the machine is shared, the minimum is the least disturbed.
        let (mut kiln, mut zune) = (f64::MAX, f64::MAX);
        for _ in 0..15 {
            let start = Instant::now();
            for (i, bytes) in blocks.iter().enumerate() {
                let b = decode_block(&header, ifd, i, bytes).unwrap();
                assert_eq!(b.samples.len(), 3 * npix);
            }
            kiln = kiln.min(start.elapsed().as_secs_f64());
            let start = Instant::now();
            for bytes in &blocks {
                assert_eq!(zune_block(ifd, bytes).len(), 3 * npix);
            }
            zune = zune.min(start.elapsed().as_secs_f64());
        }
        let n = blocks.len() as f64;
        println!(
            "{file} ({} blocks of {}x{}): kiln {:.0} blocks/s ({:.0} Mpx/s), zune-jpeg {:.0} blocks/s ({:.0} Mpx/s)",
            blocks.len(),
            ifd.block_width,
            ifd.block_height,
            n / kiln,
            n * npix as f64 / kiln / 1e6,
            n / zune,
            n * npix as f64 / zune / 1e6,
        );
    }
}
