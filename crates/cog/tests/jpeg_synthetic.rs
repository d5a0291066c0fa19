//! JPEG block decoding on synthetic streams (encoded here with `jpeg-encoder`) covering what
//! the real files do not: other chroma sampling factors, partial MCUs, restart intervals,
//! progressive streams (left to the general decoder), grayscale, Photometric=RGB, and
//! damaged data. The bit-exact comparison with GDAL is in `jpeg_gdal.rs`.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use kiln_cog::{decode_block, ImageIfd, Photometric, Planar, TiffHeader};
use kiln_core::Samples;

fn data_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
}

/// A real YCbCr JPEG COG: its header, and its first image reshaped into a single tile of
/// `tile_w` x `tile_h` with `bands` bands, without JPEGTables (the synthetic streams are
/// complete).
fn single_tile(
    tile_w: u32,
    tile_h: u32,
    bands: u16,
    photometric: Photometric,
) -> (TiffHeader, ImageIfd) {
    let data = std::fs::read(data_dir().join("img_modis_miriam_4326_rgb_jpeg.tif")).unwrap();
    let header = TiffHeader::parse(&data).unwrap();
    let mut ifd = header.images[0].clone();
    ifd.width = tile_w;
    ifd.height = tile_h;
    ifd.block_width = tile_w;
    ifd.block_height = tile_h;
    ifd.tiled = true;
    ifd.samples_per_pixel = bands;
    ifd.planar = Planar::Chunky;
    ifd.photometric = photometric;
    ifd.extra_samples = Vec::new();
    ifd.jpeg_tables = None;
    ifd.block_offsets = vec![0];
    ifd.block_byte_counts = vec![0];
    (header, ifd)
}

/// A smooth gradient with a few sharp-edged squares, interleaved RGB.
fn source(w: usize, h: usize) -> Vec<u8> {
    let mut px = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let square = (x / 12 + y / 12) % 3 == 0;
            let r = (x * 255 / w) as u8;
            let g = (y * 255 / h) as u8;
            let b = if square {
                220
            } else {
                40 + ((x + y) % 64) as u8
            };
            px.extend_from_slice(&[r, g, b]);
        }
    }
    px
}

fn encode(
    px: &[u8],
    w: usize,
    h: usize,
    colour: ColorType,
    setup: impl FnOnce(&mut Encoder<&mut Vec<u8>>),
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out, 95);
    setup(&mut enc);
    enc.encode(px, w as u16, h as u16, colour).unwrap();
    out
}

fn decode(header: &TiffHeader, ifd: &ImageIfd, stream: &[u8]) -> Vec<u8> {
    let block = decode_block(header, ifd, 0, stream).unwrap();
    assert_eq!(
        (block.width, block.height),
        (ifd.block_width as usize, ifd.block_height as usize)
    );
    match block.samples {
        Samples::U8(v) => v,
        other => panic!("not u8: {other:?}"),
    }
}

/// Mean absolute difference between band-sequential `got` (tile `tw` wide) and interleaved
/// `want` (`w` x `h`, `bands` per pixel), over the image's pixels.
fn mean_error(
    got: &[u8],
    tw: usize,
    th: usize,
    want: &[u8],
    w: usize,
    h: usize,
    bands: usize,
) -> f64 {
    let mut sum = 0u64;
    for b in 0..bands {
        for y in 0..h {
            for x in 0..w {
                let g = got[b * tw * th + y * tw + x];
                sum += u64::from(g.abs_diff(want[(y * w + x) * bands + b]));
            }
        }
    }
    sum as f64 / (w * h * bands) as f64
}

/// Every sample outside the `w` x `h` image is 0.
fn padding_is_zero(got: &[u8], tw: usize, th: usize, w: usize, h: usize, bands: usize) -> bool {
    (0..bands).all(|b| {
        (0..th).all(|y| (0..tw).all(|x| x < w && y < h || got[b * tw * th + y * tw + x] == 0))
    })
}

#[test]
fn sampling_factors_decode_close_to_the_source() {
    // An image smaller than its tile, with partial MCUs at the right and bottom.
    let (w, h, tw, th) = (61, 45, 64, 48);
    let px = source(w, h);
    let (header, ifd) = single_tile(tw as u32, th as u32, 3, Photometric::YCbCr);
    for sf in [
        SamplingFactor::F_1_1,
        SamplingFactor::F_2_1,
        SamplingFactor::F_1_2,
        SamplingFactor::F_2_2,
        // 4:1:1 is left to the general decoder.
        SamplingFactor::F_4_1,
    ] {
        let stream = encode(&px, w, h, ColorType::Rgb, |e| e.set_sampling_factor(sf));
        let got = decode(&header, &ifd, &stream);
        let err = mean_error(&got, tw, th, &px, w, h, 3);
        // libjpeg 9 rebuilds subsampled chroma block by block (16-point IDCT), which costs
        // more at the squares' edges than a smoothing upsampler (4-6 levels on average
        // here); a block placed wrongly or a swapped channel costs tens.
        let bound = if sf == SamplingFactor::F_1_1 {
            1.5
        } else {
            6.5
        };
        assert!(err < bound, "{sf:?}: mean error {err}");
        assert!(
            padding_is_zero(&got, tw, th, w, h, 3),
            "{sf:?}: padding not zero"
        );
    }
}

#[test]
fn restart_intervals_do_not_change_pixels() {
    let (w, h) = (100, 70);
    let px = source(w, h);
    let (header, ifd) = single_tile(w as u32, h as u32, 3, Photometric::YCbCr);
    let plain = encode(&px, w, h, ColorType::Rgb, |e| {
        e.set_sampling_factor(SamplingFactor::F_2_2)
    });
    let want = decode(&header, &ifd, &plain);
    assert!(mean_error(&want, w, h, &px, w, h, 3) < 6.5);
    for interval in [1, 2, 5] {
        let stream = encode(&px, w, h, ColorType::Rgb, |e| {
            e.set_sampling_factor(SamplingFactor::F_2_2);
            e.set_restart_interval(interval);
        });
        assert!(
            stream.windows(2).any(|m| m == [0xFF, 0xDD]),
            "no DRI marker"
        );
        assert_eq!(
            decode(&header, &ifd, &stream),
            want,
            "restart interval {interval}"
        );
    }
}

#[test]
fn progressive_streams_use_the_general_decoder() {
    let (w, h) = (80, 56);
    let px = source(w, h);
    let (header, ifd) = single_tile(w as u32, h as u32, 3, Photometric::YCbCr);
    let stream = encode(&px, w, h, ColorType::Rgb, |e| {
        e.set_sampling_factor(SamplingFactor::F_2_2);
        e.set_progressive(true);
    });
    let got = decode(&header, &ifd, &stream);
    assert!(mean_error(&got, w, h, &px, w, h, 3) < 6.5);
}

#[test]
fn grayscale_and_rgb_photometric_come_out_as_stored() {
    let (w, h) = (40, 24);
    let px = source(w, h);
    // Grayscale: one band.
    let luma: Vec<u8> = px.chunks_exact(3).map(|p| p[1]).collect();
    let (header, ifd) = single_tile(w as u32, h as u32, 1, Photometric::MinIsBlack);
    let stream = encode(&luma, w, h, ColorType::Luma, |_| {});
    let got = decode(&header, &ifd, &stream);
    assert!(mean_error(&got, w, h, &luma, w, h, 1) < 1.5);
    // Photometric=RGB: libtiff (so GDAL) does no colour conversion, whatever the stream
    // holds; this stream holds YCbCr, which must come out unconverted.
    let ycc: Vec<u8> = px
        .chunks_exact(3)
        .flat_map(|p| {
            let (r, g, b) = (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
            let y = 0.299 * r + 0.587 * g + 0.114 * b;
            let cb = 128.0 + (b - y) / 1.772;
            let cr = 128.0 + (r - y) / 1.402;
            [y, cb, cr].map(|v| v.round().clamp(0.0, 255.0) as u8)
        })
        .collect();
    let (header, ifd) = single_tile(w as u32, h as u32, 3, Photometric::Rgb);
    let stream = encode(&px, w, h, ColorType::Rgb, |e| {
        e.set_sampling_factor(SamplingFactor::F_1_1)
    });
    let got = decode(&header, &ifd, &stream);
    assert!(mean_error(&got, w, h, &ycc, w, h, 3) < 1.5);
}

#[test]
fn a_frame_larger_than_its_block_is_refused() {
    let (w, h) = (40, 24);
    let px = source(w, h);
    let (header, ifd) = single_tile(32, 24, 3, Photometric::YCbCr);
    let stream = encode(&px, w, h, ColorType::Rgb, |_| {});
    assert!(decode_block(&header, &ifd, 0, &stream).is_err());
}

#[test]
fn damaged_real_blocks_fail_cleanly() {
    let data =
        std::fs::read(data_dir().join("odd_bahamas_rgb_jpeg_internal_mask_cog.tif")).unwrap();
    let header = TiffHeader::parse(&data).unwrap();
    let ifd = &header.images[0];
    let index = ifd.block_index(1, 1, 0);
    let (off, len) = ifd.block_range(index).unwrap();
    let block = &data[off as usize..(off + len) as usize];
    assert!(decode_block(&header, ifd, index, block).is_ok());
    // Cut short anywhere: an error, never a block with made-up rows.
    for cut in [2, 20, block.len() / 3, block.len() / 2, block.len() - 40] {
        assert!(
            decode_block(&header, ifd, index, &block[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    // Flipped bytes anywhere: any outcome but a panic; a decoded block has the right size.
    let mut damaged = block.to_vec();
    for (n, at) in (0..block.len()).step_by(23).enumerate() {
        let flip = [0xFF, 0x01, 0x80, 0x5A][n % 4];
        damaged[at] ^= flip;
        if let Ok(b) = decode_block(&header, ifd, index, &damaged) {
            assert_eq!(b.samples.len(), 256 * 256 * 3);
        }
        damaged[at] ^= flip;
    }
}

/// FNV-1a, to pin outputs without storing them.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Synthetic streams of every supported sampling, and one with restart markers, whose
/// decoding was compared sample for sample with GDAL 3.10 (rasterio wheel, libjpeg 9f) by
/// wrapping each stream in a one-tile Photometric=YCbCr TIFF (YCbCrSubsampling set to
/// match) and reading it with rasterio: all identical. The hashes pin those outputs. They
/// are guarded by the stream's own hash: another jpeg-encoder build (version, SIMD path)
/// may encode other streams, whose GDAL decoding nobody checked.
#[test]
fn synthetic_streams_decode_as_gdal_did() {
    let (w, h) = (64, 48);
    let px = source(w, h);
    let (header, ifd) = single_tile(w as u32, h as u32, 3, Photometric::YCbCr);
    let cases = [
        (
            SamplingFactor::F_1_1,
            0,
            0xb054_c5ac_1fc4_09f6,
            0xed49_cef6_a3b7_e1fc,
        ),
        (
            SamplingFactor::F_2_1,
            0,
            0x766d_9af8_c1d9_3b51,
            0xe3a2_a178_bb48_10f7,
        ),
        (
            SamplingFactor::F_1_2,
            0,
            0x50fb_1a68_44cb_d5e3,
            0x34a4_46fc_65e3_a7ca,
        ),
        (
            SamplingFactor::F_2_2,
            0,
            0x997b_e264_92b3_5c2a,
            0xf448_e35b_5744_d090,
        ),
        (
            SamplingFactor::F_2_2,
            3,
            0x0a72_86be_bdfe_a4ec,
            0xf448_e35b_5744_d090,
        ),
    ];
    let mut checked = 0;
    for (sf, restart, stream_hash, output_hash) in cases {
        let stream = encode(&px, w, h, ColorType::Rgb, |e| {
            e.set_sampling_factor(sf);
            if restart > 0 {
                e.set_restart_interval(restart);
            }
        });
        if fnv(&stream) != stream_hash {
            eprintln!("{sf:?}/{restart}: this jpeg-encoder makes another stream; not compared");
            continue;
        }
        let got = decode(&header, &ifd, &stream);
        assert_eq!(fnv(&got), output_hash, "{sf:?}, restart interval {restart}");
        checked += 1;
    }
    eprintln!(
        "{checked} of {} streams compared with GDAL's decoding",
        cases.len()
    );
}
