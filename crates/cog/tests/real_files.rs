//! The parser and decoder against the 47 real GeoTIFFs of `shared/data`, checked property by
//! property against `catalog.json` (GDAL's reading of the same files).

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_cog::{
    decode_block, gdal_structural_metadata, CogError, Compression, ImageIfd, Photometric, Planar,
    Predictor, RangeData, RasterType, TiffHeader,
};
use kiln_core::{with_samples, DataType};
use serde_json::Value;

/// Files this reader cannot support, with the `Unsupported` feature text they must produce.
/// (Every file of the current data set is supported.)
const EXPECTED_UNSUPPORTED: &[(&str, &str)] = &[];

/// Files the catalog marks as not COG although their layout passes every structural check:
/// the catalog flags files laid out by GDAL's COG writer (which leaves its "ghost" structural
/// metadata after the TIFF header); these small tiled files were written without it.
const STRUCTURALLY_COG_WITHOUT_GHOST: &[&str] = &[
    "dem_jacksboro_tn_3s_i16_deflate.tif",
    "img_rgbn_suba_utm18n_u8_nodata0.tif",
    "img_rgbn_subb_utm18n_u8_nodata0.tif",
    "odd_luxembourg_i16_bigtiff_lzw.tif",
    "odd_luxembourg_i16_zstd_pred2.tif",
];

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
}

fn catalog() -> Vec<Value> {
    let text = std::fs::read_to_string(data_dir().join("catalog.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let list = v.as_array().unwrap().clone();
    assert_eq!(list.len(), 47, "catalog.json should list 47 files");
    list
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(file)).unwrap()
}

fn is_expected_unsupported(file: &str) -> Option<&'static str> {
    EXPECTED_UNSUPPORTED
        .iter()
        .find(|(f, _)| *f == file)
        .map(|(_, feature)| *feature)
}

/// Parses a supported file, or checks the expected `Unsupported` error and returns `None`.
fn parse_or_expected(file: &str, data: &[u8]) -> Option<TiffHeader> {
    let result = TiffHeader::parse(&data);
    match (is_expected_unsupported(file), result) {
        (None, Ok(h)) => Some(h),
        (None, Err(e)) => panic!("{file}: {e}"),
        (Some(want), Err(CogError::Unsupported { feature })) => {
            assert!(feature.contains(want), "{file}: {feature}");
            None
        }
        (Some(_), other) => panic!("{file}: expected Unsupported, got {other:?}"),
    }
}

fn dtype_of(name: &str) -> DataType {
    match name {
        "Byte" => DataType::U8,
        "Int8" => DataType::I8,
        "UInt16" => DataType::U16,
        "Int16" => DataType::I16,
        "UInt32" => DataType::U32,
        "Int32" => DataType::I32,
        "Float32" => DataType::F32,
        "Float64" => DataType::F64,
        other => panic!("unknown dtype {other}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn size_name(im: &ImageIfd) -> String {
    format!("{}x{}", im.width, im.height)
}

/// Every property the catalog records, for every file. Mismatches are collected so one run
/// reports all of them.
#[test]
fn headers_match_catalog() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for e in catalog() {
        let file = e["file"].as_str().unwrap();
        let data = read(file);
        let Some(h) = parse_or_expected(file, &data) else {
            continue;
        };
        checked += 1;
        let im = &h.images[0];
        let mut check = |what: &str, ok: bool, got: String| {
            if !ok {
                failures.push(format!("{file}: {what}: got {got}, catalog {}", e[what]));
            }
        };
        check("width", e["width"] == im.width, im.width.to_string());
        check("height", e["height"] == im.height, im.height.to_string());
        check("bands", e["bands"] == im.bands(), im.bands().to_string());
        let want_dtype = dtype_of(e["dtype"].as_str().unwrap());
        check("dtype", want_dtype == im.dtype, format!("{:?}", im.dtype));
        let want_comp = match e["compression"].as_str().unwrap() {
            "NONE" => (Compression::None, None),
            "LZW" => (Compression::Lzw, None),
            "DEFLATE" => (Compression::Deflate, None),
            "PACKBITS" => (Compression::PackBits, None),
            "ZSTD" => (Compression::Zstd, None),
            "WEBP" => (Compression::Webp, None),
            "JPEG" => (Compression::Jpeg, None),
            "YCbCr JPEG" => (Compression::Jpeg, Some(Photometric::YCbCr)),
            other => panic!("{file}: unknown compression {other}"),
        };
        check(
            "compression",
            im.compression == want_comp.0 && want_comp.1.is_none_or(|p| p == im.photometric),
            format!("{:?} {:?}", im.compression, im.photometric),
        );
        let want_pred = match e["predictor"].as_str() {
            None => Predictor::None,
            Some("2") => Predictor::Horizontal,
            Some("3") => Predictor::FloatingPoint,
            Some(p) => panic!("{file}: predictor {p}"),
        };
        check(
            "predictor",
            want_pred == im.predictor,
            format!("{:?}", im.predictor),
        );
        check("tiled", e["tiled"] == im.tiled, im.tiled.to_string());
        check(
            "block",
            e["block"][0] == im.block_width && e["block"][1] == im.block_height,
            format!("[{}, {}]", im.block_width, im.block_height),
        );
        let ovr: Vec<String> = h.images[1..].iter().map(size_name).collect();
        let want_ovr: Vec<String> = e["overviews"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        check("overviews", ovr == want_ovr, format!("{ovr:?}"));
        let nodata_ok = match (e["nodata"].as_f64(), h.nodata) {
            (None, None) => true,
            (Some(a), Some(b)) => a == b || (a.is_nan() && b.is_nan()),
            _ => false,
        };
        check("nodata", nodata_ok, format!("{:?}", h.nodata));
        let endian = if h.big_endian { "big" } else { "little" };
        check("endian", e["endian"] == endian, endian.into());
        check("bigtiff", e["bigtiff"] == h.bigtiff, h.bigtiff.to_string());
        check(
            "has_palette",
            e["has_palette"] == im.palette.is_some(),
            im.palette.is_some().to_string(),
        );
        if let Some(pal) = &im.palette {
            check(
                "has_palette",
                pal.len() == 256,
                format!("{} entries", pal.len()),
            );
        }
        let interleave = if im.bands() == 1 {
            e["interleave"].as_str().unwrap()
        } else if im.planar == Planar::Chunky {
            "PIXEL"
        } else {
            "BAND"
        };
        check(
            "interleave",
            e["interleave"] == interleave,
            interleave.into(),
        );
        let first_ci = e["colorinterp"][0].as_str().unwrap();
        let ci_ok = match first_ci {
            "Gray" => matches!(
                im.photometric,
                Photometric::MinIsBlack | Photometric::MinIsWhite
            ),
            // GDAL calls any single band with a ColorMap a palette band.
            "Palette" => im.palette.is_some(),
            "Red" => matches!(im.photometric, Photometric::Rgb | Photometric::YCbCr),
            other => panic!("{file}: colorinterp {other}"),
        };
        check("colorinterp", ci_ok, format!("{:?}", im.photometric));
        // GDAL mask flags: 2 = per-dataset mask (our internal mask), 4 = alpha band.
        let flags = e["mask_flags"].as_u64().unwrap();
        let has_alpha = im.extra_samples.iter().any(|&s| s == 1 || s == 2);
        let mask_ok = (flags == 2) == h.masks[0].is_some() && (flags & 4 != 0) == has_alpha;
        check(
            "mask_flags",
            mask_ok,
            format!("mask {} alpha {has_alpha}", h.masks[0].is_some()),
        );
        check(
            "area_or_point",
            match (e["area_or_point"].as_str(), &h.georef) {
                (Some("Point"), Some(g)) => g.raster_type == RasterType::PixelIsPoint,
                (Some("Area") | None, Some(g)) => g.raster_type == RasterType::PixelIsArea,
                _ => false,
            },
            format!("{:?}", h.georef.as_ref().map(|g| g.raster_type)),
        );

        let crs = h.georef.as_ref().and_then(|g| g.crs.as_ref());
        let want_crs = e["crs"].as_str().unwrap();
        let crs_ok = if want_crs == "none" {
            crs.is_none()
        } else if let Some(proj4) = want_crs.strip_prefix("no EPSG code: ") {
            crs.is_some_and(|c| c.epsg.is_none() && c.proj4 == proj4)
        } else {
            let code: u32 = want_crs
                .strip_prefix("EPSG:")
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse().ok())
                .unwrap();
            crs.is_some_and(|c| c.epsg == Some(code) && !c.proj4.is_empty())
        };
        check("crs", crs_ok, format!("{crs:?}"));

        // GCP files: the catalog has no geotransform (GDAL reports GCPs); they are checked
        // against their twins in `gcp_files_fit_to_their_twins`.
        if e["gcps"].as_u64().unwrap() == 0 {
            let want: Vec<f64> = e["geotransform"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let got = h.georef.as_ref().map(|g| g.transform.0);
            let ok = got.is_some_and(|g| g.iter().zip(&want).all(|(a, b)| close(*a, *b)));
            check("geotransform", ok, format!("{got:?}"));
        }
    }
    assert_eq!(checked + EXPECTED_UNSUPPORTED.len(), 47);
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The tie-point-only (GCP) files carry four exact tie points: the fitted transform must be
/// the one their tie-point + pixel-scale twins give, PixelIsPoint shift included.
#[test]
fn gcp_files_fit_to_their_twins() {
    let cat: BTreeMap<String, Value> = catalog()
        .into_iter()
        .map(|e| (e["file"].as_str().unwrap().to_string(), e))
        .collect();
    let mut n = 0;
    for (file, e) in &cat {
        if e["gcps"].as_u64().unwrap() == 0 {
            continue;
        }
        let twin = file.replace("model_tie_points_", "model_tie_point_and_pixel_scale_");
        let want: Vec<f64> = cat[&twin]["geotransform"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let h = TiffHeader::parse(&read(file).as_slice()).unwrap();
        let got = h.georef.unwrap().transform.0;
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{file}: {got:?} vs {twin}: {want:?}");
        }
        n += 1;
    }
    assert_eq!(n, 2);
}

/// Min / max of the valid samples of every band of the full-resolution image: nodata, NaN and
/// pixels outside the internal mask are not valid; tile padding is outside the image.
fn valid_range(h: &TiffHeader, data: &[u8]) -> Option<(f64, f64)> {
    let im = &h.images[0];
    let mask = h.masks[0].as_ref().map(|m| decode_mask(h, m, data));
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let bh = im.block_height as usize;
    for plane in 0..im.planes() {
        for row in 0..im.blocks_down() {
            for col in 0..im.blocks_across() {
                let i = im.block_index(col, row, plane);
                let Some((off, len)) = im.block_range(i) else {
                    continue;
                };
                let bytes = &data[off as usize..(off + len) as usize];
                let b = decode_block(h, im, i, bytes).unwrap();
                assert_eq!(b.samples.len(), b.width * b.height * b.bands);
                assert_eq!(
                    (b.width, b.height),
                    (im.block_width as usize, im.block_rows(i))
                );
                let npix = b.width * b.height;
                let x0 = col * b.width;
                let y0 = row * bh;
                let vw = (im.width as usize - x0).min(b.width);
                let vh = (im.height as usize - y0).min(b.height);
                with_samples!(&b.samples, v => {
                    for band in 0..b.bands {
                        for y in 0..vh {
                            for x in 0..vw {
                                if let Some(m) = &mask {
                                    if m[(y0 + y) * im.width as usize + x0 + x] == 0 {
                                        continue;
                                    }
                                }
                                let s = v[band * npix + y * b.width + x] as f64;
                                if s.is_nan() || Some(s) == h.nodata {
                                    continue;
                                }
                                lo = lo.min(s);
                                hi = hi.max(s);
                            }
                        }
                    }
                });
            }
        }
    }
    (lo <= hi).then_some((lo, hi))
}

/// The whole internal mask of the full-resolution image, one byte per pixel (0 or 255).
fn decode_mask(h: &TiffHeader, m: &ImageIfd, data: &[u8]) -> Vec<u8> {
    let (w, ht) = (m.width as usize, m.height as usize);
    let mut out = vec![0u8; w * ht];
    for row in 0..m.blocks_down() {
        for col in 0..m.blocks_across() {
            let i = m.block_index(col, row, 0);
            let Some((off, len)) = m.block_range(i) else {
                continue;
            };
            let b = decode_block(h, m, i, &data[off as usize..(off + len) as usize]).unwrap();
            let kiln_core::Samples::U8(v) = b.samples else {
                panic!("mask is not u8");
            };
            assert!(
                v.iter().all(|&x| x == 0 || x == 255),
                "mask values are 0/255"
            );
            let (x0, y0) = (col * b.width, row * m.block_height as usize);
            for y in 0..(ht - y0).min(b.height) {
                for x in 0..(w - x0).min(b.width) {
                    out[(y0 + y) * w + x0 + x] = v[y * b.width + x];
                }
            }
        }
    }
    out
}

/// Decodes every block of every full-resolution image and compares the valid value range
/// with GDAL's. JPEG is lossy and decoders differ in rounding, so JPEG files get ±2.
#[test]
fn decoded_values_match_catalog() {
    let mut failures = Vec::new();
    for e in catalog() {
        let file = e["file"].as_str().unwrap();
        let data = read(file);
        let Some(h) = parse_or_expected(file, &data) else {
            continue;
        };
        let got = valid_range(&h, &data);
        let want = match (e["value_min"].as_f64(), e["value_max"].as_f64()) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        };
        let tol = if h.images[0].compression == Compression::Jpeg {
            2.0
        } else {
            0.0
        };
        let ok = match (got, want) {
            (None, None) => true,
            (Some((a, b)), Some((c, d))) => (a - c).abs() <= tol && (b - d).abs() <= tol,
            _ => false,
        };
        if !ok {
            failures.push(format!("{file}: decoded {got:?}, catalog {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The internal masks decode to 0/255 and mask out the share of pixels GDAL reports.
#[test]
fn internal_masks_match_masked_fraction() {
    for e in catalog() {
        let file = e["file"].as_str().unwrap();
        if e["mask_flags"].as_u64() != Some(2) {
            continue;
        }
        let data = read(file);
        let h = TiffHeader::parse(&data.as_slice()).unwrap();
        let m = h.masks[0].as_ref().unwrap();
        assert!(m.is_mask() && m.bits_per_sample == 1, "{file}");
        let mask = decode_mask(&h, m, &data);
        let masked = mask.iter().filter(|&&v| v == 0).count() as f64 / mask.len() as f64;
        let want = e["nodata_or_masked_fraction_band1"].as_f64().unwrap();
        assert!((masked - want).abs() < 1e-3, "{file}: {masked} vs {want}");
        // Overview masks are matched to overviews of the same size.
        for (im, m) in h.images.iter().zip(&h.masks) {
            if let Some(m) = m {
                assert_eq!((m.width, m.height), (im.width, im.height), "{file}");
            }
        }
    }
}

/// The catalog's `cog` flag: structurally valid COG layout written by GDAL's COG writer.
#[test]
fn cog_layout_matches_catalog() {
    for e in catalog() {
        let file = e["file"].as_str().unwrap();
        let data = read(file);
        let Some(h) = parse_or_expected(file, &data) else {
            continue;
        };
        let problems = h.cog_problems();
        let ghost = gdal_structural_metadata(&data.as_slice()).unwrap();
        let want = e["cog"].as_bool().unwrap();
        if want {
            assert!(problems.is_empty(), "{file}: {problems:?}");
            assert!(
                ghost
                    .as_deref()
                    .is_some_and(|g| g.contains("LAYOUT=IFDS_BEFORE_DATA")),
                "{file}: {ghost:?}"
            );
        } else if STRUCTURALLY_COG_WITHOUT_GHOST.contains(&file) {
            assert!(problems.is_empty(), "{file}: {problems:?}");
            assert!(ghost.is_none(), "{file}");
        } else {
            assert!(!problems.is_empty(), "{file} should not pass as a COG");
        }
    }
}

/// Bytes fetched so far, like a remote reader that started with the first 16 KiB.
struct Partial<'a> {
    file: &'a [u8],
    fetched: Vec<(u64, u64)>,
}

impl RangeData for Partial<'_> {
    fn len(&self) -> u64 {
        self.file.len() as u64
    }
    fn get(&self, offset: u64, len: u64) -> Result<&[u8], CogError> {
        let end = offset + len;
        if end > self.len() {
            return Err(CogError::Truncated {
                reason: format!("{offset}+{len} past the end"),
            });
        }
        if self.fetched.iter().any(|&(s, e)| s <= offset && end <= e) {
            Ok(&self.file[offset as usize..end as usize])
        } else {
            Err(CogError::NeedBytes { offset, len })
        }
    }
}

/// Every file parses through the NeedBytes fetch loop to the same header as from memory,
/// fetching only what the parser asks for.
#[test]
fn parse_through_need_bytes_fetch_loop() {
    let mut needed_more = 0;
    for e in catalog() {
        let file = e["file"].as_str().unwrap();
        if is_expected_unsupported(file).is_some() {
            continue;
        }
        let data = read(file);
        let full = TiffHeader::parse(&data.as_slice()).unwrap();
        let mut partial = Partial {
            file: &data,
            fetched: vec![(0, 16_384.min(data.len() as u64))],
        };
        let mut rounds = 0;
        let h = loop {
            match TiffHeader::parse(&partial) {
                Ok(h) => break h,
                Err(CogError::NeedBytes { offset, len }) => {
                    assert!(
                        !partial.fetched.contains(&(offset, offset + len)),
                        "{file}: asked twice for {offset}+{len}"
                    );
                    partial.fetched.push((offset, offset + len));
                    rounds += 1;
                    assert!(rounds < 64, "{file}: too many rounds");
                }
                Err(other) => panic!("{file}: {other}"),
            }
        };
        assert_eq!(h, full, "{file}");
        if rounds > 0 {
            needed_more += 1;
        }
    }
    // Files whose IFD or tag arrays lie beyond 16 KiB exercise the loop.
    assert!(
        needed_more >= 5,
        "only {needed_more} files needed a second fetch"
    );
}

/// Patches the Compression tag of a small uncompressed file (IFD at offset 8).
fn with_compression(code: u16) -> Vec<u8> {
    let mut data = read("odd_nlcd_puertorico_palette_u8.tif");
    let n = u16::from_le_bytes([data[8], data[9]]) as usize;
    for i in 0..n {
        let p = 10 + 12 * i;
        if u16::from_le_bytes([data[p], data[p + 1]]) == 259 {
            data[p + 8..p + 10].copy_from_slice(&code.to_le_bytes());
            return data;
        }
    }
    panic!("no Compression tag");
}

#[test]
fn unsupported_compressions_are_named() {
    for (code, name) in [
        (34887, "compression LERC (34887)"),
        (6, "compression old-style JPEG (6)"),
        (34712, "compression JPEG 2000 (34712)"),
        (4, "compression CCITT Group 4 fax (4)"),
    ] {
        match TiffHeader::parse(&with_compression(code).as_slice()) {
            Err(CogError::Unsupported { feature }) => assert_eq!(feature, name),
            other => panic!("{code}: {other:?}"),
        }
    }
    // PackBits is supported: the patched file parses (its strip is not PackBits data, and
    // decoding it must fail cleanly or produce a block, never panic).
    let data = with_compression(32773);
    let h = TiffHeader::parse(&data.as_slice()).unwrap();
    let im = &h.images[0];
    assert_eq!(im.compression, Compression::PackBits);
    let (off, len) = im.block_range(0).unwrap();
    let _ = decode_block(&h, im, 0, &data[off as usize..(off + len) as usize]);
}

/// Cut-short files, flipped header bytes and corrupt blocks give errors, never panics.
#[test]
fn corrupt_inputs_do_not_panic() {
    for file in [
        "odd_luxembourg_i16_bigtiff_lzw.tif",
        "odd_luxembourg_i16_zstd_pred2.tif",
        "odd_luxembourg_i16_bigendian_striped.tif",
        "odd_bahamas_rgb_jpeg_internal_mask_cog.tif",
        "odd_natural_earth1_rgb_webp_lossless.tif",
        "global_etopo20_f32_deflate_pred3.tif",
        "odd_nlcd_puertorico_palette_u8.tif",
    ] {
        let data = read(file);
        let h = TiffHeader::parse(&data.as_slice()).unwrap();
        for cut in [0, 1, 7, 8, 15, 16, 100, 400, 1000, 3000] {
            let short = &data[..cut.min(data.len())];
            assert!(TiffHeader::parse(&short).is_err(), "{file} cut at {cut}");
        }
        // Deterministic byte flips across the first 4 KiB (header area).
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..300 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut bad = data.clone();
            let pos = (seed as usize) % bad.len().min(4096);
            bad[pos] ^= (seed >> 32) as u8 | 1;
            let _ = TiffHeader::parse(&bad.as_slice());
        }
        // Corrupt and truncated block data.
        let im = &h.images[0];
        for i in 0..im.block_count().min(4) {
            let Some((off, len)) = im.block_range(i) else {
                continue;
            };
            let block = &data[off as usize..(off + len) as usize];
            let half = &block[..block.len() / 2];
            assert!(
                decode_block(&h, im, i, half).is_err(),
                "{file}: half a block decoded"
            );
            let mut garbage = block.to_vec();
            for (k, b) in garbage.iter_mut().enumerate().skip(2) {
                *b = b.wrapping_mul(31).wrapping_add(k as u8);
            }
            let _ = decode_block(&h, im, i, &garbage);
            assert!(decode_block(&h, im, i, &[]).is_err(), "{file}: empty block");
        }
        assert!(decode_block(&h, im, im.block_count(), &[]).is_err());
    }
}

/// The whole full-resolution image, band-sequential, as f64 (for cross-file comparisons).
fn whole_image(file: &str) -> (TiffHeader, Vec<f64>) {
    let data = read(file);
    let h = TiffHeader::parse(&data.as_slice()).unwrap();
    let im = &h.images[0];
    let (w, ht, nb) = (im.width as usize, im.height as usize, im.bands());
    let mut out = vec![0.0; w * ht * nb];
    for plane in 0..im.planes() {
        for row in 0..im.blocks_down() {
            for col in 0..im.blocks_across() {
                let i = im.block_index(col, row, plane);
                let (off, len) = im.block_range(i).unwrap();
                let b = decode_block(&h, im, i, &data[off as usize..(off + len) as usize]).unwrap();
                let (x0, y0) = (col * b.width, row * im.block_height as usize);
                let npix = b.width * b.height;
                with_samples!(&b.samples, v => {
                    for band in 0..b.bands {
                        for y in 0..(ht - y0).min(b.height) {
                            for x in 0..(w - x0).min(b.width) {
                                out[(plane + band) * w * ht + (y0 + y) * w + x0 + x] =
                                    v[band * npix + y * b.width + x] as f64;
                            }
                        }
                    }
                });
            }
        }
    }
    (h, out)
}

/// Files holding the same picture under different codecs decode to the same pixels: exactly
/// for lossless codecs, within JPEG's error for JPEG (which also proves the YCbCr → RGB
/// conversion: unconverted YCbCr would be off by tens of levels).
#[test]
fn same_picture_under_different_codecs() {
    // Natural Earth: striped uncompressed vs lossless WebP tiles.
    let (_, striped) = whole_image("global_natural_earth1_720x360_rgb_striped.tif");
    let (_, webp) = whole_image("odd_natural_earth1_rgb_webp_lossless.tif");
    assert_eq!(striped, webp);

    // Luxembourg SRTM: LZW strips, big-endian strips, BigTIFF LZW tiles, ZSTD + predictor.
    let (_, lzw) = whole_image("dem_srtm30s_luxembourg_i16_lzw.tif");
    for other in [
        "odd_luxembourg_i16_bigendian_striped.tif",
        "odd_luxembourg_i16_bigtiff_lzw.tif",
        "odd_luxembourg_i16_zstd_pred2.tif",
    ] {
        assert_eq!(whole_image(other).1, lzw, "{other}");
    }

    // Bahamas: DEFLATE RGB COG vs DEFLATE + predictor RGBA vs YCbCr JPEG with a mask.
    let (_, rgb) = whole_image("img_bahamas_utm18n_rgb_cog.tif");
    let (_, rgba) = whole_image("odd_bahamas_rgba_alpha_deflate.tif");
    assert_eq!(&rgba[..rgb.len()], &rgb[..]);
    let file = "odd_bahamas_rgb_jpeg_internal_mask_cog.tif";
    let (h, jpeg) = whole_image(file);
    // Compare inside the mask only: outside it the JPEG holds whatever compressed best.
    let mask = decode_mask(&h, h.masks[0].as_ref().unwrap(), &read(file));
    let npix = mask.len();
    for band in 0..3 {
        let (mut signed, mut abs, mut n) = (0.0, 0.0, 0.0);
        for i in (0..npix).filter(|&i| mask[i] != 0) {
            let d = jpeg[band * npix + i] - rgb[band * npix + i];
            signed += d;
            abs += d.abs();
            n += 1.0;
        }
        // 4:2:0 chroma subsampling of a busy 300 m Landsat scene costs a few levels per
        // pixel, but without bias; a wrong colour conversion is off by tens, and biased.
        let (bias, err) = (signed / n, abs / n);
        assert!(
            bias.abs() < 1.0 && err < 5.0,
            "band {band}: bias {bias}, mean error {err}"
        );
    }
}

/// Strip geometry: the last strip holds only the rows left, and the block says so.
#[test]
fn last_strip_is_shorter() {
    for (file, strips, last_rows) in [
        ("dem_copdem_grenoble_i16_pixelispoint.tif", 63, 4),
        ("dem_olinda_utm25s_f32.tif", 7, 3),
        ("dem_srtm3s_turkey_i16_striped.tif", 250, 4),
    ] {
        let data = read(file);
        let h = TiffHeader::parse(&data.as_slice()).unwrap();
        let im = &h.images[0];
        assert_eq!(im.block_count(), strips, "{file}");
        assert_eq!(im.blocks_across(), 1);
        assert_eq!(im.block_rows(0), im.block_height as usize);
        assert_eq!(im.block_rows(strips - 1), last_rows, "{file}");
        let (off, len) = im.block_range(strips - 1).unwrap();
        let b = decode_block(
            &h,
            im,
            strips - 1,
            &data[off as usize..(off + len) as usize],
        )
        .unwrap();
        assert_eq!(
            (b.width, b.height, b.bands),
            (im.width as usize, last_rows, 1)
        );
        assert_eq!(b.samples.len(), im.width as usize * last_rows);
    }
    // Tiles: index arithmetic and full-size edge tiles.
    let h = TiffHeader::parse(&read("img_landsat_saltlake_4326_7band_cog.tif").as_slice()).unwrap();
    let im = &h.images[0];
    assert_eq!((im.blocks_across(), im.blocks_down()), (6, 6));
    assert_eq!(im.block_index(5, 5, 0), 35);
    assert_eq!(im.block_rows(35), 256);
    assert_eq!(im.block_bands(), 7);
    assert!(im.block_range(36).is_none());
}

/// CRS and geotransform together: the centre of every georeferenced image, taken through the
/// CRS to WGS 84 with kiln-core's transformer, falls inside the catalog's WGS 84 bbox.
#[test]
fn image_centres_land_in_their_wgs84_bbox() {
    use kiln_core::crs::Transformer;
    use kiln_core::Crs;
    let mut n = 0;
    for e in catalog() {
        let file = e["file"].as_str().unwrap();
        let data = read(file);
        let Some(h) = parse_or_expected(file, &data) else {
            continue;
        };
        let Some(crs) = h.georef.as_ref().and_then(|g| g.crs.clone()) else {
            continue;
        };
        let im = &h.images[0];
        let g = h.georef.as_ref().unwrap().transform;
        let (x, y) = g.apply(f64::from(im.width) / 2.0, f64::from(im.height) / 2.0);
        let t = Transformer::new(&crs, &Crs::wgs84())
            .unwrap_or_else(|err| panic!("{file}: {} does not build: {err}", crs.proj4));
        let (lon, lat) = t
            .transform_point(x, y)
            .unwrap_or_else(|| panic!("{file}: centre does not transform"));
        // GDAL gives no bbox for the GCP files.
        let Some(b) = e["wgs84_bbox"].as_array() else {
            continue;
        };
        let b: Vec<f64> = b.iter().map(|v| v.as_f64().unwrap()).collect();
        // The bbox is rounded to 1e-4 degrees.
        let m = 1e-3;
        assert!(
            lon >= b[0] - m && lat >= b[1] - m && lon <= b[2] + m && lat <= b[3] + m,
            "{file}: centre ({lon}, {lat}) outside {b:?}"
        );
        n += 1;
    }
    assert_eq!(
        n, 44,
        "every file but the one without a CRS and the two GCP files"
    );
}

/// A block that was never written reads as the nodata value (or zeros without one), shaped
/// like a decoded block.
#[test]
fn sparse_blocks_read_as_nodata() {
    let h = TiffHeader::parse(&read("odd_luxembourg_i16_zstd_pred2.tif").as_slice()).unwrap();
    let im = &h.images[0];
    let b = kiln_cog::sparse_block(&h, im, 3);
    assert_eq!((b.width, b.height, b.bands), (64, 64, 1));
    assert_eq!(b.samples, kiln_core::Samples::I16(vec![-32768; 64 * 64]));
    let h = TiffHeader::parse(&read("img_rgbn_5m_utm18n_u8.tif").as_slice()).unwrap();
    let b = kiln_cog::sparse_block(&h, &h.images[0], 0);
    assert_eq!(b.samples, kiln_core::Samples::U8(vec![0; 64 * 64 * 4]));
}
