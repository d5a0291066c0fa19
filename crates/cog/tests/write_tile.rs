//! Tests of `write_geotiff_tile`: the bytes are checked structurally by a small independent
//! TIFF reader below, read back with our own header parser, and, when `gdalinfo` is on PATH,
//! opened by GDAL with the CRS, geotransform, dtype and nodata of every EPSG-referenced file
//! in the shared test data catalog.

// A test crate: its helpers panic on unexpected input by design, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use kiln_cog::decode::decode_block;
use kiln_cog::write::write_geotiff_tile;
use kiln_cog::{CogError, Compression, Planar, TiffHeader};
use kiln_core::{DataType, GeoTransform, Raster, Samples};

const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/catalog.json"
);

/// One IFD entry: (type, count, value bytes).
type Entry = (u16, u32, Vec<u8>);

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Reads every IFD of a little-endian classic TIFF, checking tag order on the way.
fn read_ifds(b: &[u8]) -> Vec<BTreeMap<u16, Entry>> {
    assert_eq!(&b[..4], b"II\x2a\x00", "little-endian classic TIFF magic");
    let mut ifds = Vec::new();
    let mut ifd = u32_at(b, 4) as usize;
    while ifd != 0 {
        assert_eq!(ifd % 2, 0, "IFDs start on a word boundary");
        let n = usize::from(u16_at(b, ifd));
        let mut out = BTreeMap::new();
        let mut last_tag = 0;
        for i in 0..n {
            let e = ifd + 2 + 12 * i;
            let (tag, typ, count) = (u16_at(b, e), u16_at(b, e + 2), u32_at(b, e + 4));
            assert!(
                tag > last_tag,
                "tags must be ascending: {tag} after {last_tag}"
            );
            last_tag = tag;
            let size = match typ {
                2 => 1,
                3 => 2,
                4 => 4,
                12 => 8,
                other => panic!("unexpected TIFF type {other}"),
            } * count as usize;
            let bytes = if size <= 4 {
                b[e + 8..e + 8 + size].to_vec()
            } else {
                let off = u32_at(b, e + 8) as usize;
                assert_eq!(off % 2, 0, "values start on a word boundary");
                b[off..off + size].to_vec()
            };
            out.insert(tag, (typ, count, bytes));
        }
        ifds.push(out);
        ifd = u32_at(b, ifd + 2 + 12 * n) as usize;
        assert!(ifds.len() < 10, "IFD loop");
    }
    ifds
}

/// The only IFD of a file without a mask.
fn read_ifd(b: &[u8]) -> BTreeMap<u16, Entry> {
    let mut ifds = read_ifds(b);
    assert_eq!(ifds.len(), 1, "single IFD");
    ifds.remove(0)
}

fn shorts(e: &Entry) -> Vec<u16> {
    assert_eq!(e.0, 3, "SHORT");
    e.2.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

fn longs(e: &Entry) -> Vec<u32> {
    assert_eq!(e.0, 4, "LONG");
    e.2.chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn doubles(e: &Entry) -> Vec<f64> {
    assert_eq!(e.0, 12, "DOUBLE");
    e.2.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The inflated strips, one per plane.
fn strips(b: &[u8], ifd: &BTreeMap<u16, Entry>) -> Vec<Vec<u8>> {
    let offsets = longs(&ifd[&273]);
    let counts = longs(&ifd[&279]);
    let mut d = libdeflater::Decompressor::new();
    offsets
        .iter()
        .zip(&counts)
        .map(|(&o, &c)| {
            let src = &b[o as usize..(o + c) as usize];
            let mut out = vec![0u8; 1 << 20];
            let n = d.zlib_decompress(src, &mut out).unwrap();
            out.truncate(n);
            out
        })
        .collect()
}

fn f32_raster() -> Raster {
    // 4x3 elevations, pixel (1, 2) masked.
    let values: Vec<f32> = (0..12u8).map(|i| f32::from(i) * 10.5 - 20.0).collect();
    let mut mask = vec![255u8; 12];
    mask[9] = 0;
    Raster::new(4, 3, 1, Samples::F32(values), mask).unwrap()
}

#[test]
fn single_band_f32_geographic_structure() {
    let gt = GeoTransform::north_up(6.0, 50.0, 0.25, 0.125);
    let tif = write_geotiff_tile(&f32_raster().with_transform(gt), 4326, Some(-9999.0)).unwrap();
    let ifd = read_ifd(&tif);
    assert_eq!(longs(&ifd[&256]), vec![4]);
    assert_eq!(longs(&ifd[&257]), vec![3]);
    assert_eq!(shorts(&ifd[&258]), vec![32]);
    assert_eq!(shorts(&ifd[&259]), vec![8], "Adobe deflate");
    assert_eq!(shorts(&ifd[&277]), vec![1]);
    assert_eq!(longs(&ifd[&278]), vec![3], "one strip per band");
    assert_eq!(shorts(&ifd[&339]), vec![3], "IEEE float");
    assert!(!ifd.contains_key(&338), "no extra samples for one band");
    assert_eq!(doubles(&ifd[&33550]), vec![0.25, 0.125, 0.0]);
    assert_eq!(doubles(&ifd[&33922]), vec![0.0, 0.0, 0.0, 6.0, 50.0, 0.0]);
    assert!(!ifd.contains_key(&34264));
    assert_eq!(
        shorts(&ifd[&34735]),
        vec![1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, 1, 2048, 0, 1, 4326],
        "geographic model, PixelIsArea, GeographicTypeGeoKey"
    );
    assert_eq!(ifd[&42113].0, 2, "ASCII");
    assert_eq!(ifd[&42113].2, b"-9999\0");

    let planes = strips(&tif, &ifd);
    assert_eq!(planes.len(), 1);
    let got: Vec<f32> = planes[0]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut want: Vec<f32> = (0..12u8).map(|i| f32::from(i) * 10.5 - 20.0).collect();
    want[9] = -9999.0;
    assert_eq!(got, want);
}

#[test]
fn projected_multiband_without_nodata_gets_internal_mask() {
    let r = Raster::new(
        3,
        2,
        2,
        Samples::U16(vec![1, 2, 3, 4, 5, 6, 100, 200, 300, 400, 500, 600]),
        vec![255, 255, 0, 255, 255, 255],
    )
    .unwrap();
    let gt = GeoTransform::north_up(500_000.0, 4_000_000.0, 30.0, 30.0);
    let tif = write_geotiff_tile(&r.clone().with_transform(gt), 32618, None).unwrap();
    let ifds = read_ifds(&tif);
    assert_eq!(ifds.len(), 2, "image + mask");
    let ifd = &ifds[0];
    assert_eq!(shorts(&ifd[&277]), vec![2]);
    assert_eq!(shorts(&ifd[&258]), vec![16; 2]);
    assert_eq!(shorts(&ifd[&339]), vec![1; 2], "unsigned");
    assert_eq!(shorts(&ifd[&284]), vec![2], "planar: one strip per band");
    assert_eq!(
        shorts(&ifd[&338]),
        vec![0],
        "second band declared as an extra sample"
    );
    assert_eq!(
        shorts(&ifd[&34735]),
        vec![1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32618],
        "projected model, ProjectedCSTypeGeoKey"
    );
    assert!(!ifd.contains_key(&42113), "no nodata tag");
    let planes: Vec<Vec<u16>> = strips(&tif, ifd)
        .iter()
        .map(|p| {
            p.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect()
        })
        .collect();
    assert_eq!(
        planes,
        vec![vec![1, 2, 3, 4, 5, 6], vec![100, 200, 300, 400, 500, 600]]
    );

    let mask = &ifds[1];
    assert_eq!(
        longs(&mask[&254]),
        vec![4],
        "NewSubfileType: transparency mask"
    );
    assert_eq!(shorts(&mask[&262]), vec![4], "Photometric: mask");
    assert_eq!(shorts(&mask[&258]), vec![1]);
    assert_eq!((longs(&mask[&256]), longs(&mask[&257])), (vec![3], vec![2]));
    // Rows of 3 bits padded to a byte, MSB first: 110 and 111.
    assert_eq!(strips(&tif, mask), vec![vec![0b1100_0000, 0b1110_0000]]);
}

#[test]
fn large_float_nodata_is_written_exactly() {
    // The declared nodata of dem_3dep13_colorado_nad83_f32_cog.tif.
    let nd = -3.402_823_060_737_096_5e38;
    let tif = write_geotiff_tile(
        &f32_raster().with_transform(GeoTransform::north_up(0.0, 0.0, 1.0, 1.0)),
        4269,
        Some(nd),
    )
    .unwrap();
    let ifd = read_ifd(&tif);
    let text = std::str::from_utf8(&ifd[&42113].2)
        .unwrap()
        .trim_end_matches('\0');
    assert_eq!(text.parse::<f64>().unwrap(), nd);
}

#[test]
fn south_up_grid_uses_model_transformation() {
    // Like odd_global_etopo120_southup_f32.tif: origin at the south edge, positive y step.
    let gt = GeoTransform([-180.0, 2.0, 0.0, -90.0, 0.0, 2.0]);
    let tif = write_geotiff_tile(&f32_raster().with_transform(gt), 4326, None).unwrap();
    let ifd = &read_ifds(&tif)[0];
    assert!(!ifd.contains_key(&33550) && !ifd.contains_key(&33922));
    assert_eq!(
        doubles(&ifd[&34264]),
        vec![2.0, 0.0, 0.0, -180.0, 0.0, 2.0, 0.0, -90.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    );
}

#[test]
fn rejects_what_it_cannot_write() {
    let gt = GeoTransform::north_up(0.0, 0.0, 1.0, 1.0);
    let u8r = Raster::new(2, 1, 1, Samples::U8(vec![1, 2]), vec![255, 0]).unwrap();
    for nd in [300.0, 1.5, -1.0, f64::NAN] {
        assert!(
            matches!(
                write_geotiff_tile(&u8r.clone().with_transform(gt), 4326, Some(nd)),
                Err(CogError::Unsupported { .. })
            ),
            "nodata {nd} on u8"
        );
    }
    assert!(write_geotiff_tile(&f32_raster().with_transform(gt), 4326, Some(f64::NAN)).is_ok());
    assert!(
        write_geotiff_tile(&u8r.clone().with_transform(gt), 99_999_999, None).is_err(),
        "unknown EPSG"
    );
    let flat = GeoTransform([0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert!(
        write_geotiff_tile(&u8r.clone().with_transform(flat), 4326, None).is_err(),
        "singular transform"
    );
    assert!(
        write_geotiff_tile(&u8r, 4326, None).is_err(),
        "a raster without a grid"
    );
    // A raster whose mask or samples do not match its size cannot be made (`Raster::new`).
    let empty = Raster::empty(0, 0, 1, DataType::U8).unwrap();
    assert!(write_geotiff_tile(&empty.with_transform(gt), 4326, None).is_err());
}

/// Decodes every block of image `ifd` with our own reader and returns the band-sequential
/// samples.
fn read_back(tif: &[u8], header: &TiffHeader, ifd: &kiln_cog::ImageIfd) -> Samples {
    assert_eq!(ifd.block_count(), ifd.bands(), "one strip per band");
    let mut bands = Vec::new();
    for i in 0..ifd.block_count() {
        let (off, len) = ifd.block_range(i).unwrap();
        let bytes = &tif[off as usize..(off + len) as usize];
        bands.push(decode_block(header, ifd, i, bytes).unwrap().samples);
    }
    match bands.as_slice() {
        [one] => one.clone(),
        _ => {
            let all: Vec<u16> = bands
                .iter()
                .flat_map(|b| match b {
                    Samples::U16(v) => v.clone(),
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            Samples::U16(all)
        }
    }
}

#[test]
fn round_trips_through_our_header_parser_and_decoder() {
    // Nodata: georeferencing, CRS, nodata and pixels come back.
    let gt = GeoTransform::north_up(6.0, 50.0, 0.25, 0.125);
    let tif = write_geotiff_tile(&f32_raster().with_transform(gt), 4326, Some(-9999.0)).unwrap();
    let header = TiffHeader::parse(&tif).unwrap();
    assert!(!header.big_endian && !header.bigtiff);
    assert_eq!(header.images.len(), 1);
    let img = &header.images[0];
    assert_eq!((img.width, img.height), (4, 3));
    assert_eq!(img.dtype, DataType::F32);
    assert_eq!(img.compression, Compression::Deflate);
    assert!(!img.tiled);
    let georef = header.georef.as_ref().unwrap();
    assert_eq!(georef.transform, gt);
    assert_eq!(georef.crs.as_ref().unwrap().epsg, Some(4326));
    assert_eq!(header.nodata, Some(-9999.0));
    let mut want: Vec<f32> = (0..12u8).map(|i| f32::from(i) * 10.5 - 20.0).collect();
    want[9] = -9999.0;
    assert_eq!(read_back(&tif, &header, img), Samples::F32(want));

    // Internal mask, projected CRS, two planar bands.
    let r = Raster::new(
        3,
        2,
        2,
        Samples::U16(vec![1, 2, 3, 4, 5, 6, 100, 200, 300, 400, 500, 600]),
        vec![255, 255, 0, 255, 255, 255],
    )
    .unwrap();
    let gt = GeoTransform::north_up(500_000.0, 4_000_000.0, 30.0, 30.0);
    let tif = write_geotiff_tile(&r.clone().with_transform(gt), 32618, None).unwrap();
    let header = TiffHeader::parse(&tif).unwrap();
    assert_eq!(header.images.len(), 1, "the mask is not an image");
    let img = &header.images[0];
    assert_eq!(img.planar, Planar::Separate);
    assert_eq!(img.bands(), 2);
    assert_eq!(header.nodata, None);
    let georef = header.georef.as_ref().unwrap();
    assert_eq!(georef.transform, gt);
    assert_eq!(georef.crs.as_ref().unwrap().epsg, Some(32618));
    assert_eq!(&read_back(&tif, &header, img), r.samples());
    let mask = header.masks[0].as_ref().expect("internal mask found");
    assert!(mask.is_mask());
    let (off, len) = mask.block_range(0).unwrap();
    let block = decode_block(&header, mask, 0, &tif[off as usize..(off + len) as usize]).unwrap();
    assert_eq!(block.samples, Samples::U8(r.mask().to_vec()));

    // South-up grids come back through ModelTransformation.
    let south_up = GeoTransform([-180.0, 2.0, 0.0, -90.0, 0.0, 2.0]);
    let tif = write_geotiff_tile(&f32_raster().with_transform(south_up), 4326, Some(0.5)).unwrap();
    let header = TiffHeader::parse(&tif).unwrap();
    assert_eq!(header.georef.unwrap().transform, south_up);
    assert_eq!(header.nodata, Some(0.5));
}

// ---------------------------------------------------------------------------------------------
// GDAL as an oracle.

fn gdalinfo_available() -> bool {
    Command::new("gdalinfo")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kiln-write-tile-{}-{name}.tif", std::process::id()))
}

fn gdalinfo_json(tif: &[u8], name: &str) -> serde_json::Value {
    let path = temp_path(name);
    std::fs::write(&path, tif).unwrap();
    let out = Command::new("gdalinfo")
        .args(["-json", "-stats"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("tif.aux.xml"));
    assert!(
        out.status.success(),
        "gdalinfo failed on {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Warning") && !stderr.contains("ERROR"),
        "gdalinfo complained about {name}: {stderr}"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn dtype_from_gdal(name: &str) -> Option<DataType> {
    Some(match name {
        "Byte" => DataType::U8,
        "UInt16" => DataType::U16,
        "Int16" => DataType::I16,
        "UInt32" => DataType::U32,
        "Int32" => DataType::I32,
        "Float32" => DataType::F32,
        "Float64" => DataType::F64,
        _ => return None,
    })
}

/// A 5x4 raster of `dtype` holding 1..=20 (scaled for floats), pixel 7 masked.
fn ramp(dtype: DataType) -> Raster {
    let vals: Vec<f64> = (1..=20)
        .map(|i| f64::from(i) * if dtype.is_float() { 0.5 } else { 1.0 })
        .collect();
    let samples = match dtype {
        DataType::U8 => Samples::U8(vals.iter().map(|&v| v as u8).collect()),
        DataType::U16 => Samples::U16(vals.iter().map(|&v| v as u16).collect()),
        DataType::I16 => Samples::I16(vals.iter().map(|&v| v as i16).collect()),
        DataType::U32 => Samples::U32(vals.iter().map(|&v| v as u32).collect()),
        DataType::I32 => Samples::I32(vals.iter().map(|&v| v as i32).collect()),
        DataType::F32 => Samples::F32(vals.iter().map(|&v| v as f32).collect()),
        DataType::F64 => Samples::F64(vals.clone()),
        DataType::I8 => Samples::I8(vals.iter().map(|&v| v as i8).collect()),
    };
    let mut mask = vec![255; 20];
    mask[7] = 0;
    Raster::new(5, 4, 1, samples, mask).unwrap()
}

#[test]
fn gdal_reads_tiles_like_the_catalog_files() {
    if !gdalinfo_available() {
        println!("SKIPPED gdal_reads_tiles_like_the_catalog_files: gdalinfo not on PATH");
        return;
    }
    let catalog: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(CATALOG).unwrap()).unwrap();
    let mut checked = 0;
    for entry in &catalog {
        let file = entry["file"].as_str().unwrap();
        let Some(epsg) = entry["crs"]
            .as_str()
            .and_then(|c| c.strip_prefix("EPSG:"))
            .and_then(|c| c.split_whitespace().next())
            .and_then(|c| c.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(gt) = entry["geotransform"].as_array() else {
            continue;
        };
        let gt: Vec<f64> = gt.iter().map(|v| v.as_f64().unwrap()).collect();
        let gt = GeoTransform(gt.try_into().unwrap());
        let dtype = dtype_from_gdal(entry["dtype"].as_str().unwrap()).unwrap();
        let nodata = entry["nodata"].as_f64();
        let raster = ramp(dtype);
        let tif = write_geotiff_tile(&raster.clone().with_transform(gt), epsg, nodata).unwrap();
        let info = gdalinfo_json(&tif, file);

        assert_eq!(info["size"], serde_json::json!([5, 4]), "{file}");
        let got_gt: Vec<f64> = info["geoTransform"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (g, w) in got_gt.iter().zip(gt.0) {
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{file}: {got_gt:?} vs {gt:?}"
            );
        }
        let wkt = info["coordinateSystem"]["wkt"].as_str().unwrap();
        assert!(
            wkt.trim_end().ends_with(&format!("ID[\"EPSG\",{epsg}]]")),
            "{file}: CRS is not EPSG:{epsg}: {wkt}"
        );
        let bands = info["bands"].as_array().unwrap();
        let band = &bands[0];
        assert_eq!(band["type"], entry["dtype"], "{file}");
        // Valid values are 1..=20 (x0.5 for floats) minus the masked pixel 8, whether the mask
        // travels as nodata or as the internal mask.
        assert_eq!(bands.len(), 1, "{file}");
        let scale = if dtype.is_float() { 0.5 } else { 1.0 };
        assert_eq!(band["minimum"].as_f64(), Some(scale), "{file}");
        assert_eq!(band["maximum"].as_f64(), Some(20.0 * scale), "{file}");
        match nodata {
            Some(nd) => {
                let got = band["noDataValue"].as_f64().unwrap();
                if dtype == DataType::F32 {
                    // gdalinfo prints Float32 nodata with float precision only.
                    let (g, w) = (got as f32, nd as f32);
                    assert_eq!(g, w, "{file}");
                } else {
                    assert_eq!(got, nd, "{file}");
                }
                let valid = &band["metadata"][""]["STATISTICS_VALID_PERCENT"];
                assert_eq!(
                    valid.as_str(),
                    Some("95"),
                    "{file}: one pixel in 20 is nodata"
                );
            }
            None => {
                assert!(band.get("noDataValue").is_none(), "{file}");
                // GDAL 3.6 statistics ignore per-dataset masks, so check the flag instead.
                let flags = &band["mask"]["flags"];
                assert_eq!(flags, &serde_json::json!(["PER_DATASET"]), "{file}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} catalog entries checked");
}

/// Band `band` (a number or `mask`) of a GeoTIFF as GDAL reads it, through `gdal_translate`'s
/// XYZ output: (x, y, value) per pixel, row by row.
fn gdal_pixels(tif: &[u8], name: &str, band: &str) -> Vec<(f64, f64, f64)> {
    let path = temp_path(name);
    std::fs::write(&path, tif).unwrap();
    let out = Command::new("gdal_translate")
        .args(["-q", "-b", band, "-of", "XYZ"])
        .arg(&path)
        .arg("/vsistdout/")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "gdal_translate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Vec<f64> = l.split_whitespace().map(|t| t.parse().unwrap()).collect();
            (v[0], v[1], v[2])
        })
        .collect()
}

#[test]
fn gdal_reads_pixels_mask_and_nodata() {
    if !gdalinfo_available() {
        println!("SKIPPED gdal_reads_pixels_mask_and_nodata: gdalinfo not on PATH");
        return;
    }
    let r = Raster::new(
        3,
        2,
        2,
        Samples::I16(vec![-1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60]),
        vec![255, 255, 0, 255, 255, 255],
    )
    .unwrap();
    let gt = GeoTransform::north_up(500_000.0, 4_000_000.0, 30.0, 30.0);

    let masked = write_geotiff_tile(&r.clone().with_transform(gt), 32618, None).unwrap();
    let b2 = gdal_pixels(&masked, "pixels-mask", "2");
    let values: Vec<f64> = b2.iter().map(|p| p.2).collect();
    assert_eq!(values, vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
    // XYZ gives pixel centres.
    assert_eq!((b2[0].0, b2[0].1), (500_015.0, 3_999_985.0));
    let mask: Vec<f64> = gdal_pixels(&masked, "pixels-mask", "mask")
        .iter()
        .map(|p| p.2)
        .collect();
    assert_eq!(mask, vec![255.0, 255.0, 0.0, 255.0, 255.0, 255.0]);

    let with_nodata =
        write_geotiff_tile(&r.clone().with_transform(gt), 32618, Some(-32768.0)).unwrap();
    let b1: Vec<f64> = gdal_pixels(&with_nodata, "pixels-nodata", "1")
        .iter()
        .map(|p| p.2)
        .collect();
    assert_eq!(b1, vec![-1.0, 2.0, -32768.0, 4.0, 5.0, 6.0]);
}
