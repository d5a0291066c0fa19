//! The COG writer against real files of `shared/data`: each source's full-resolution pixels
//! are read with Kiln's own reader, written as a COG (full resolution plus two overviews made
//! by 2x decimation here), and the result is checked with Kiln's parser and decoder (COG
//! layout rules, every block equal to the source pixels) and with GDAL's `gdalinfo` (size,
//! type, nodata, CRS, geotransform and band checksum equal to those of the source; the mask
//! reported as per-dataset).

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_cog::{
    cleanup_stale_temps, decode_block, encode_block, BigTiff, BlockData, CogSpec, CogWriteError,
    CogWriter, Compression, EncodeOptions, MaskOrImage, Photometric, RawGeoTags, SampleLayout,
    TiffHeader,
};
use kiln_core::{DataType, Samples};
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
}

/// A directory of its own for each call (tests run in parallel and remove their directory).
fn out_dir(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("kiln-cogwrite-{}-{n}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Applies `$body` to two `Samples` of the same type (`$a` mutable).
macro_rules! pair {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a, $b) {
            (Samples::U8($x), Samples::U8($y)) => $body,
            (Samples::I8($x), Samples::I8($y)) => $body,
            (Samples::U16($x), Samples::U16($y)) => $body,
            (Samples::I16($x), Samples::I16($y)) => $body,
            (Samples::U32($x), Samples::U32($y)) => $body,
            (Samples::I32($x), Samples::I32($y)) => $body,
            (Samples::F32($x), Samples::F32($y)) => $body,
            (Samples::F64($x), Samples::F64($y)) => $body,
            _ => panic!("sample types differ"),
        }
    };
}

/// A band-sequential image.
#[derive(Clone)]
struct Image {
    width: usize,
    height: usize,
    bands: usize,
    samples: Samples,
}

/// Copies the `w` x `h` window at (`x0`, `y0`) of band-sequential `src` (`sw` x `sh` x
/// `bands`) to (`dx`, `dy`) of `dst` (`dw` x `dh` x `bands`).
#[allow(clippy::too_many_arguments)]
fn copy_window<T: Copy>(
    dst: &mut [T],
    (dw, dh): (usize, usize),
    (dx, dy): (usize, usize),
    src: &[T],
    (sw, sh): (usize, usize),
    (x0, y0): (usize, usize),
    (w, h): (usize, usize),
    bands: usize,
) {
    for b in 0..bands {
        for y in 0..h {
            let s = b * sw * sh + (y0 + y) * sw + x0;
            let d = b * dw * dh + (dy + y) * dw + dx;
            dst[d..d + w].copy_from_slice(&src[s..s + w]);
        }
    }
}

impl Image {
    fn window(&self, x0: usize, y0: usize, w: usize, h: usize) -> Samples {
        let mut out = Samples::zeros(self.samples.dtype(), w * h * self.bands);
        pair!(&mut out, &self.samples, |d, s| copy_window(
            d,
            (w, h),
            (0, 0),
            s,
            (self.width, self.height),
            (x0, y0),
            (w, h),
            self.bands
        ));
        out
    }

    /// Every second pixel and row (the overview of the test).
    fn decimate(&self) -> Image {
        let (w, h) = (self.width.div_ceil(2), self.height.div_ceil(2));
        let mut out = Samples::zeros(self.samples.dtype(), w * h * self.bands);
        pair!(&mut out, &self.samples, |d, s| {
            for b in 0..self.bands {
                for y in 0..h {
                    for x in 0..w {
                        d[b * w * h + y * w + x] =
                            s[b * self.width * self.height + 2 * y * self.width + 2 * x];
                    }
                }
            }
        });
        Image {
            width: w,
            height: h,
            bands: self.bands,
            samples: out,
        }
    }
}

/// The full-resolution image of a file (all bands) and its internal mask (0/255), read with
/// Kiln's parser and decoder.
fn read_source(file: &str) -> (TiffHeader, Vec<u8>, Image, Option<Image>) {
    let data = std::fs::read(data_dir().join(file)).unwrap();
    let h = TiffHeader::parse(&data.as_slice()).unwrap();
    let img = read_image(&h, &h.images[0], &data);
    let mask = h.masks[0].as_ref().map(|m| read_image(&h, m, &data));
    (h, data, img, mask)
}

fn read_image(h: &TiffHeader, im: &kiln_cog::ImageIfd, data: &[u8]) -> Image {
    let (w, ht) = (im.width as usize, im.height as usize);
    let bands = im.bands();
    let mut samples = Samples::zeros(im.dtype, w * ht * bands);
    for plane in 0..im.planes() {
        for row in 0..im.blocks_down() {
            for col in 0..im.blocks_across() {
                let i = im.block_index(col, row, plane);
                let (o, n) = im.block_range(i).unwrap();
                let block = decode_block(h, im, i, &data[o as usize..(o + n) as usize]).unwrap();
                let (x0, y0) = (
                    col * im.block_width as usize,
                    row * im.block_height as usize,
                );
                let cw = block.width.min(w - x0);
                let ch = block.height.min(ht - y0);
                // Separate planes go to band `plane`: offset the destination by whole bands.
                let band_off = plane * w * ht;
                pair!(&mut samples, &block.samples, |d, s| copy_window(
                    &mut d[band_off..],
                    (w, ht),
                    (x0, y0),
                    s,
                    (block.width, block.height),
                    (0, 0),
                    (cw, ch),
                    block.bands
                ));
            }
        }
    }
    Image {
        width: w,
        height: ht,
        bands,
        samples,
    }
}

struct Case {
    file: &'static str,
    compression: Compression,
    mask: bool,
    ghost: bool,
    bigtiff: BigTiff,
    block: u32,
}

impl Case {
    fn new(file: &'static str, compression: Compression) -> Self {
        Self {
            file,
            compression,
            mask: false,
            ghost: true,
            bigtiff: BigTiff::Auto,
            block: 256,
        }
    }
}

/// Writes the COG of `case` and returns its path with the levels written.
fn write_cog(case: &Case, dir: &Path) -> (PathBuf, Vec<Image>, Vec<Option<Image>>, TiffHeader) {
    let (h, data, img, mask) = read_source(case.file);
    let full = h.images[0].clone();
    let mut levels = vec![img];
    let mut masks = vec![mask.filter(|_| case.mask)];
    for _ in 0..2 {
        let next = levels.last().unwrap().decimate();
        let m = masks.last().unwrap().as_ref().map(Image::decimate);
        levels.push(next);
        masks.push(m);
    }
    let mut spec = CogSpec::new(
        full.width,
        full.height,
        full.samples_per_pixel,
        full.dtype,
        EncodeOptions::new(case.compression),
    );
    spec.block_size = case.block;
    spec.overviews = levels[1..]
        .iter()
        .map(|l| (l.width as u32, l.height as u32))
        .collect();
    spec.photometric = match full.photometric {
        Photometric::YCbCr => Photometric::Rgb,
        p => p,
    };
    spec.extra_samples = full.extra_samples.clone();
    spec.palette = full.palette.clone();
    spec.nodata = h.nodata;
    spec.gdal_metadata = h.gdal_metadata.clone();
    spec.geo = RawGeoTags::read(&data.as_slice()).unwrap();
    spec.mask = case.mask;
    spec.ghost_area = case.ghost;
    spec.bigtiff = case.bigtiff;
    let name = format!(
        "{}-{:?}-b{}{}{}.tif",
        case.file.trim_end_matches(".tif"),
        case.compression,
        case.block,
        if case.mask { "-mask" } else { "" },
        if case.bigtiff == BigTiff::Always {
            "-big"
        } else {
            ""
        }
    );
    let target = dir.join(name);
    let mut w = CogWriter::create(&target, spec.clone()).unwrap();
    // Blocks arrive out of order: levels coarsest first, blocks in reverse.
    for (level, l) in levels.iter().enumerate().rev() {
        let (across, down) = spec.level_blocks(level).unwrap();
        for index in (0..across * down).rev() {
            let (bw, bh) = spec.block_data_size(level, index).unwrap();
            let b = case.block as usize;
            let (x0, y0) = ((index % across) * b, (index / across) * b);
            let samples = l.window(x0, y0, bw, bh);
            let block = BlockData {
                samples: &samples,
                layout: SampleLayout::BandSequential,
                width: bw,
                height: bh,
                bands: l.bands,
            };
            w.write_samples(level, index, &block).unwrap();
            if let Some(m) = &masks[level] {
                let Samples::U8(bits) = m.window(x0, y0, bw, bh) else {
                    panic!("mask is not u8");
                };
                w.write_mask(level, index, &bits, bw, bh).unwrap();
            }
        }
    }
    assert!(!target.exists(), "nothing at the target before finish");
    let size = w.finish().unwrap();
    assert_eq!(std::fs::metadata(&target).unwrap().len(), size);
    (target, levels, masks, h)
}

/// Kiln reads the COG back: layout rules hold and every level decodes to the pixels written.
fn check_with_kiln(path: &Path, levels: &[Image], masks: &[Option<Image>], case: &Case) {
    let data = std::fs::read(path).unwrap();
    let h = TiffHeader::parse(&data.as_slice()).unwrap();
    assert_eq!(h.cog_problems(), Vec::<String>::new(), "{}", path.display());
    assert_eq!(h.images.len(), levels.len());
    assert_eq!(h.bigtiff, case.bigtiff == BigTiff::Always);
    let ghost = kiln_cog::gdal_structural_metadata(&data.as_slice()).unwrap();
    assert_eq!(ghost.is_some(), case.ghost);
    if let Some(g) = ghost {
        assert!(g.contains("LAYOUT=IFDS_BEFORE_DATA"), "{g}");
        assert!(g.contains("BLOCK_LEADER=SIZE_AS_UINT4"), "{g}");
    }
    for (level, want) in levels.iter().enumerate() {
        let got = read_image(&h, &h.images[level], &data);
        assert_eq!((got.width, got.height), (want.width, want.height));
        assert_eq!(
            got.samples.to_le_bytes(),
            want.samples.to_le_bytes(),
            "{}: level {level} pixels differ",
            path.display()
        );
        match (&masks[level], &h.masks[level]) {
            (Some(m), Some(mi)) => {
                assert_eq!(mi.subfile_type, if level == 0 { 4 } else { 5 });
                let got = read_image(&h, mi, &data);
                assert_eq!(got.samples, m.samples, "level {level} mask differs");
            }
            (None, None) => {}
            (a, b) => panic!("mask expected {} found {}", a.is_some(), b.is_some()),
        }
        if case.ghost {
            // Leaders hold the byte count, trailers repeat the last 4 bytes.
            let im = &h.images[level];
            for i in 0..im.block_count() {
                let (o, n) = im.block_range(i).unwrap();
                let (o, n) = (o as usize, n as usize);
                assert_eq!(&data[o - 4..o], &(n as u32).to_le_bytes());
                assert_eq!(&data[o + n..o + n + 4], &data[o + n - 4..o + n]);
            }
        }
    }
}

fn gdalinfo(path: &Path) -> Value {
    let out = Command::new("gdalinfo")
        .args(["-json", "-checksum"])
        .arg(path)
        .output()
        .expect("gdalinfo (Debian gdal-bin) must be installed");
    assert!(
        out.status.success(),
        "gdalinfo {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// GDAL reads the COG as the source: same size, bands, types, nodata, CRS, transform, and
/// band checksums.
fn check_with_gdal(path: &Path, case: &Case) {
    let src = gdalinfo(&data_dir().join(case.file));
    let got = gdalinfo(path);
    assert_eq!(got["size"], src["size"]);
    assert_eq!(
        got["coordinateSystem"]["wkt"], src["coordinateSystem"]["wkt"],
        "{}: CRS differs",
        case.file
    );
    assert_eq!(got["geoTransform"], src["geoTransform"]);
    assert_eq!(
        got["metadata"][""]["AREA_OR_POINT"],
        src["metadata"][""]["AREA_OR_POINT"]
    );
    let (sb, gb) = (
        src["bands"].as_array().unwrap(),
        got["bands"].as_array().unwrap(),
    );
    assert_eq!(sb.len(), gb.len());
    for (s, g) in sb.iter().zip(gb) {
        assert_eq!(g["type"], s["type"]);
        assert_eq!(g["noDataValue"], s["noDataValue"]);
        assert_eq!(g["checksum"], s["checksum"], "{}: checksum", case.file);
        assert_eq!(g["colorInterpretation"], s["colorInterpretation"]);
        assert_eq!(g["colorTable"], s["colorTable"]);
        assert_eq!(g["overviews"].as_array().unwrap().len(), 2);
        if case.mask {
            assert_eq!(g["mask"]["flags"], serde_json::json!(["PER_DATASET"]));
            assert_eq!(g["mask"]["flags"], s["mask"]["flags"]);
        }
    }
    let layout = &got["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"];
    if case.ghost {
        assert_eq!(layout, "COG", "{}", path.display());
    }
}

/// GDAL's own COG validator (`validate_cloud_optimized_geotiff.py` of Debian's python3-gdal),
/// with the full check of block leaders and trailers.
fn check_with_gdal_validator(path: &Path) {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-m",
            "osgeo_utils.samples.validate_cloud_optimized_geotiff",
            "--full-check=yes",
        ])
        .arg(path)
        .output()
        .expect("/usr/bin/python3 with python3-gdal must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{}: {text}", path.display());
    assert!(
        text.contains("is a valid cloud optimized GeoTIFF"),
        "{text}"
    );
    assert!(!text.to_lowercase().contains("warning"), "{text}");
}

fn run(case: Case) {
    let dir = out_dir(&format!("{:?}", case.compression));
    let (path, levels, masks, _) = write_cog(&case, &dir);
    check_with_kiln(&path, &levels, &masks, &case);
    check_with_gdal(&path, &case);
    check_with_gdal_validator(&path);
    std::fs::remove_dir_all(&dir).unwrap();
}

const LOSSLESS: [Compression; 4] = [
    Compression::Deflate,
    Compression::Zstd,
    Compression::Lzw,
    Compression::None,
];

#[test]
fn u8_non_epsg_crs_all_codecs() {
    for c in LOSSLESS {
        run(Case::new("odd_cea_nad27_u8.tif", c));
    }
}

#[test]
fn u16_all_codecs() {
    for c in LOSSLESS {
        run(Case::new("img_l8_224077_utm21n_b2_60m_u16.tif", c));
    }
}

#[test]
fn i16_pixel_is_point_nodata_all_codecs() {
    for c in LOSSLESS {
        run(Case::new("dem_copdem_grenoble_i16_pixelispoint.tif", c));
    }
}

#[test]
fn f32_nodata_all_codecs() {
    for c in LOSSLESS {
        run(Case::new("dem_rhine_basin_30s_f32_nodata.tif", c));
    }
}

#[test]
fn multiband_palette_and_alpha() {
    run(Case::new(
        "img_rgbn_suba_utm18n_u8_nodata0.tif",
        Compression::Zstd,
    ));
    run(Case::new(
        "odd_nlcd_puertorico_palette_u8.tif",
        Compression::Deflate,
    ));
    let mut c = Case::new("odd_bahamas_rgba_alpha_deflate.tif", Compression::Deflate);
    c.block = 512;
    run(c);
}

#[test]
fn internal_mask_is_per_dataset() {
    let mut c = Case::new("odd_dataset_mask_f32_albers_lzw.tif", Compression::Deflate);
    c.mask = true;
    c.block = 32;
    run(c);
}

#[test]
fn bigtiff_and_no_ghost() {
    let mut c = Case::new("dem_rhine_basin_30s_f32_nodata.tif", Compression::Deflate);
    c.bigtiff = BigTiff::Always;
    run(c);
    let mut c = Case::new("dem_copdem_grenoble_i16_pixelispoint.tif", Compression::Lzw);
    c.ghost = false;
    run(c);
}

#[test]
fn webp_lossless_rgb_round_trips() {
    let (_, _, img, _) = read_source("odd_natural_earth1_rgb_webp_lossless.tif");
    let samples = img.window(0, 0, 200, 100);
    let mut opts = EncodeOptions::new(Compression::Webp);
    opts.webp_lossless = true;
    let block = BlockData {
        samples: &samples,
        layout: SampleLayout::BandSequential,
        width: 200,
        height: 100,
        bands: 3,
    };
    let bytes = encode_block(&block, 256, 256, &opts).unwrap();
    // Decode through a one-block COG.
    let dir = out_dir("webp");
    let target = dir.join("webp.tif");
    let mut spec = CogSpec::new(200, 100, 3, DataType::U8, opts);
    spec.block_size = 256;
    spec.photometric = Photometric::Rgb;
    let mut w = CogWriter::create(&target, spec).unwrap();
    w.write_block(0, MaskOrImage::Image, 0, &bytes).unwrap();
    w.finish().unwrap();
    let data = std::fs::read(&target).unwrap();
    let h = TiffHeader::parse(&data.as_slice()).unwrap();
    let got = read_image(&h, &h.images[0], &data);
    assert_eq!(got.samples, samples);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn jpeg_is_unsupported() {
    let samples = Samples::U8(vec![0; 16 * 16]);
    let block = BlockData {
        samples: &samples,
        layout: SampleLayout::Interleaved,
        width: 16,
        height: 16,
        bands: 1,
    };
    let err = encode_block(&block, 16, 16, &EncodeOptions::new(Compression::Jpeg)).unwrap_err();
    assert!(
        matches!(err, kiln_cog::CogError::Unsupported { .. }),
        "{err}"
    );
}

#[test]
fn failures_leave_nothing_and_stale_temps_are_cleaned() {
    let dir = out_dir("fail");
    let target = dir.join("x.tif");
    let spec = CogSpec::new(
        40,
        40,
        1,
        DataType::U8,
        EncodeOptions::new(Compression::Deflate),
    );
    let mut spec = spec;
    spec.block_size = 16;
    let mut w = CogWriter::create(&target, spec.clone()).unwrap();
    let samples = Samples::U8(vec![7; 16 * 16]);
    let block = BlockData {
        samples: &samples,
        layout: SampleLayout::Interleaved,
        width: 16,
        height: 16,
        bands: 1,
    };
    w.write_samples(0, 0, &block).unwrap();
    assert!(matches!(
        w.write_samples(0, 0, &block),
        Err(CogWriteError::Invalid { .. })
    ));
    assert!(matches!(
        w.write_samples(0, 9, &block),
        Err(CogWriteError::Invalid { .. })
    ));
    // 8 of 9 blocks missing.
    let err = w.finish().unwrap_err();
    assert!(err.to_string().contains("never written"), "{err}");
    assert!(!target.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(leftovers.is_empty(), "spool or temp left behind");

    // A crashed run's files are found by name and removed; other files stay.
    std::fs::write(dir.join(".x.tif.kiln-tmp-12345"), b"old").unwrap();
    std::fs::write(dir.join(".x.tif.kiln-spool-12345"), b"old").unwrap();
    std::fs::write(dir.join(".y.tif.kiln-tmp-12345"), b"other").unwrap();
    std::fs::write(dir.join("x.tif.kiln-tmp-notes"), b"keep").unwrap();
    assert_eq!(cleanup_stale_temps(&dir, "x.tif").unwrap(), 2);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec![".y.tif.kiln-tmp-12345", "x.tif.kiln-tmp-notes"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A larger file (4320x2161 Int16, 3 overviews' worth of data): run with `--ignored` to see
/// the writer's time and size next to GDAL's COG of the same file; checked like the others.
#[test]
#[ignore = "slow: a 9 Mpixel file, for measurements"]
fn large_file_with_timing() {
    let case = Case::new("global_etopo5_i16_cog.tif", Compression::Deflate);
    let dir = out_dir("large");
    let t = std::time::Instant::now();
    let (path, levels, masks, _) = write_cog(&case, &dir);
    let took = t.elapsed();
    let size = std::fs::metadata(&path).unwrap().len();
    eprintln!("read + decimate + encode + write: {took:?}, {size} bytes");
    check_with_kiln(&path, &levels, &masks, &case);
    check_with_gdal(&path, &case);
    check_with_gdal_validator(&path);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Interleaved and band-sequential input encode the same block; edge padding is zeros (what
/// GDAL stores in its edge tiles), checked on the uncompressed bytes.
#[test]
fn sample_layouts_agree_and_padding_is_zero() {
    let (_, _, img, _) = read_source("img_rgbn_suba_utm18n_u8_nodata0.tif");
    let (w, h, bands) = (100, 50, img.bands);
    let seq = img.window(20, 30, w, h);
    let Samples::U8(s) = &seq else {
        panic!("u8 expected")
    };
    let mut inter = vec![0u8; s.len()];
    for b in 0..bands {
        for p in 0..w * h {
            inter[p * bands + b] = s[b * w * h + p];
        }
    }
    let inter = Samples::U8(inter);
    let opts = EncodeOptions::new(Compression::None);
    let enc = |samples: &Samples, layout| {
        let block = BlockData {
            samples,
            layout,
            width: w,
            height: h,
            bands,
        };
        encode_block(&block, 128, 64, &opts).unwrap()
    };
    let a = enc(&seq, SampleLayout::BandSequential);
    let b = enc(&inter, SampleLayout::Interleaved);
    assert_eq!(a, b);
    assert_eq!(a.len(), 128 * 64 * bands);
    for y in 0..64 {
        for x in 0..128 {
            for k in 0..bands {
                let v = a[(y * 128 + x) * bands + k];
                if x >= w || y >= h {
                    assert_eq!(v, 0, "padding at {x},{y}");
                } else {
                    assert_eq!(v, s[k * w * h + y * w + x], "pixel {x},{y} band {k}");
                }
            }
        }
    }
}
