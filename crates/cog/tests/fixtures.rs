//! Kiln's reader against GDAL on the generated fixtures of the TIFF families the shared data
//! lacks (int8, uint32, float64, PackBits, ZSTD, planar-separate tiles and strips, big-endian
//! BigTIFF multi-band, NaN nodata, an internal mask on uint16): header fields against what
//! GDAL reports, and every pixel of the full-resolution image against GDAL's reading.
//!
//! The fixtures are generated, not committed: run
//! `~/.cache/kiln-venv/bin/python scripts/make_fixtures.py --data-dir ../shared/data --out
//! tests/ref-cache/fixtures` (or scripts/make_reference_tiles.sh, which runs it).

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../cli/tests/common/npy.rs"]
mod npy;

use std::path::{Path, PathBuf};

use kiln_cog::{decode_block, Compression, ImageIfd, Planar, Predictor, TiffHeader};
use serde_json::Value;

/// `$KILN_REF_DIR/fixtures` (where scripts/make_reference_tiles.sh keeps its references),
/// else `<repo>/tests/ref-cache/fixtures`.
fn fixture_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KILN_REF_DIR") {
        return PathBuf::from(d).join("fixtures");
    }
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/ref-cache/fixtures"
    ))
}

fn manifest(dir: &Path) -> Value {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nGenerate the fixtures first: ~/.cache/kiln-venv/bin/python \
             scripts/make_fixtures.py --data-dir ../shared/data --out tests/ref-cache/fixtures \
             (or run scripts/make_reference_tiles.sh)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// Equal as GDAL would see it: same bits, except that any NaN equals any NaN.
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Decodes every block of `ifd` and assembles the image, band-sequential (bands, H, W), each
/// pixel written exactly once.
fn assemble(header: &TiffHeader, ifd: &ImageIfd, file: &[u8]) -> Result<Vec<f64>, String> {
    let (w, h) = (ifd.width as usize, ifd.height as usize);
    let (bw, bh) = (ifd.block_width as usize, ifd.block_height as usize);
    let bands = ifd.bands();
    let mut image = vec![f64::NAN; bands * w * h];
    let mut written = vec![false; image.len()];
    for plane in 0..ifd.planes() {
        for row in 0..ifd.blocks_down() {
            for col in 0..ifd.blocks_across() {
                let index = ifd.block_index(col, row, plane);
                let (off, len) = ifd
                    .block_range(index)
                    .ok_or(format!("block {index} has no byte range"))?;
                let bytes = file
                    .get(off as usize..(off + len) as usize)
                    .ok_or(format!("block {index} lies past the end of the file"))?;
                let block = decode_block(header, ifd, index, bytes)
                    .map_err(|e| format!("block {index}: {e}"))?;
                let want_rows = if ifd.tiled { bh } else { bh.min(h - row * bh) };
                if (block.width, block.height, block.bands) != (bw, want_rows, ifd.block_bands()) {
                    return Err(format!(
                        "block {index}: {}x{}x{} (w x h x bands), expected {bw}x{want_rows}x{}",
                        block.width,
                        block.height,
                        block.bands,
                        ifd.block_bands()
                    ));
                }
                if block.samples.dtype() != ifd.dtype
                    || block.samples.len() != block.width * block.height * block.bands
                {
                    return Err(format!(
                        "block {index}: {} {:?} samples",
                        block.samples.len(),
                        block.samples.dtype()
                    ));
                }
                let npix = block.width * block.height;
                for b in 0..block.bands {
                    let band = plane + b;
                    for y in 0..block.height.min(h - row * bh) {
                        for x in 0..block.width.min(w - col * bw) {
                            let at = (band * h + row * bh + y) * w + col * bw + x;
                            if written[at] {
                                return Err(format!("block {index} rewrites pixel {at}"));
                            }
                            written[at] = true;
                            image[at] = block.samples.get_f64(b * npix + y * block.width + x);
                        }
                    }
                }
            }
        }
    }
    match written.iter().position(|w| !w) {
        Some(at) => Err(format!("no block covers sample {at}")),
        None => Ok(image),
    }
}

/// The first difference between Kiln's image and GDAL's, located.
fn compare(got: &[f64], want: &npy::NpyArray, ifd: &ImageIfd) -> Result<(), String> {
    let (w, h) = (ifd.width as usize, ifd.height as usize);
    let shape = vec![ifd.bands(), h, w];
    if want.shape != shape {
        return Err(format!("GDAL shape {:?}, Kiln {shape:?}", want.shape));
    }
    let bad = got
        .iter()
        .zip(&want.values)
        .filter(|(g, r)| !same(**g, **r))
        .count();
    let Some(at) = got
        .iter()
        .zip(&want.values)
        .position(|(g, r)| !same(*g, *r))
    else {
        return Ok(());
    };
    let (band, y, x) = (at / (w * h), at / w % h, at % w);
    let (bw, bh) = (ifd.block_width as usize, ifd.block_height as usize);
    let plane = if ifd.planar == Planar::Separate {
        band
    } else {
        0
    };
    Err(format!(
        "{bad} samples differ; first at band {band} row {y} col {x} (block {}): Kiln {}, GDAL {}",
        ifd.block_index(x / bw, y / bh, plane),
        got[at],
        want.values[at]
    ))
}

/// Header fields against the manifest, then pixels (and mask) against GDAL.
fn check(entry: &Value, dir: &Path) -> Result<(), String> {
    let file = std::fs::read(dir.join(entry["tif"].as_str().unwrap())).unwrap();
    let header = TiffHeader::parse(&file.as_slice()).map_err(|e| format!("parse: {e}"))?;
    let ifd = header.full_resolution().ok_or("no full-resolution image")?;
    let mut errs = Vec::new();
    let mut expect = |what: &str, ok: bool, detail: String| {
        if !ok {
            errs.push(format!("{what}: {detail}"));
        }
    };

    let (w, h) = (
        entry["width"].as_u64().unwrap(),
        entry["height"].as_u64().unwrap(),
    );
    expect(
        "size",
        (u64::from(ifd.width), u64::from(ifd.height)) == (w, h),
        format!("{}x{}, GDAL {w}x{h}", ifd.width, ifd.height),
    );
    let dtype = entry["dtype"].as_str().unwrap();
    expect(
        "dtype",
        ifd.dtype.name() == dtype,
        format!("{:?}, GDAL {dtype}", ifd.dtype),
    );
    let bands = entry["bands"].as_u64().unwrap() as usize;
    expect(
        "bands",
        ifd.bands() == bands,
        format!("{}, GDAL {bands}", ifd.bands()),
    );
    let comp = entry["compression"].as_str().unwrap();
    let want_comp = match comp {
        "NONE" => Compression::None,
        "PACKBITS" => Compression::PackBits,
        "LZW" => Compression::Lzw,
        "DEFLATE" => Compression::Deflate,
        "ZSTD" => Compression::Zstd,
        other => panic!("manifest compression {other} not mapped"),
    };
    expect(
        "compression",
        ifd.compression == want_comp,
        format!("{:?}, GDAL {comp}", ifd.compression),
    );
    let pred = entry["predictor"].as_u64().unwrap();
    let want_pred = match pred {
        1 => Predictor::None,
        2 => Predictor::Horizontal,
        3 => Predictor::FloatingPoint,
        other => panic!("manifest predictor {other} not mapped"),
    };
    expect(
        "predictor",
        ifd.predictor == want_pred,
        format!("{:?}, GDAL {pred}", ifd.predictor),
    );
    // GDAL calls every single-band file BAND-interleaved whatever PlanarConfiguration says;
    // the layout only matters with several bands.
    let interleave = entry["interleave"].as_str().unwrap();
    if bands > 1 {
        let want_planar = if interleave == "BAND" {
            Planar::Separate
        } else {
            Planar::Chunky
        };
        expect(
            "planar",
            ifd.planar == want_planar,
            format!("{:?}, GDAL {interleave}", ifd.planar),
        );
    }
    let tiled = entry["tiled"].as_bool().unwrap();
    expect(
        "tiled",
        ifd.tiled == tiled,
        format!("{}, GDAL {tiled}", ifd.tiled),
    );
    let block = &entry["block"];
    let (brows, bcols) = (block[0].as_u64().unwrap(), block[1].as_u64().unwrap());
    expect(
        "block size",
        (u64::from(ifd.block_width), u64::from(ifd.block_height)) == (bcols, brows),
        format!(
            "{}x{}, GDAL {bcols}x{brows}",
            ifd.block_width, ifd.block_height
        ),
    );
    let big = entry["endianness"].as_str().unwrap() == "big";
    expect(
        "endianness",
        header.big_endian == big,
        format!("big_endian {}, file {big}", header.big_endian),
    );
    let bigtiff = entry["bigtiff"].as_bool().unwrap();
    expect(
        "bigtiff",
        header.bigtiff == bigtiff,
        format!("{}, file {bigtiff}", header.bigtiff),
    );
    let nodata_ok = match &entry["nodata"] {
        Value::Null => header.nodata.is_none(),
        Value::String(s) if s == "nan" => header.nodata.is_some_and(f64::is_nan),
        v => header.nodata == v.as_f64(),
    };
    expect(
        "nodata",
        nodata_ok,
        format!("{:?}, GDAL {}", header.nodata, entry["nodata"]),
    );
    let gt: Vec<f64> = entry["geotransform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let got_gt = header.georef.as_ref().map(|g| g.transform.0);
    let gt_ok = got_gt.is_some_and(|g| {
        g.iter()
            .zip(&gt)
            .all(|(a, b)| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
    });
    expect("geotransform", gt_ok, format!("{got_gt:?}, GDAL {gt:?}"));

    let want = npy::read_npy(&dir.join(entry["npy"].as_str().unwrap()))?;
    expect(
        "npy dtype",
        want.dtype == dtype,
        format!("{} in the .npy, manifest {dtype}", want.dtype),
    );
    match assemble(&header, ifd, &file) {
        Ok(got) => {
            if let Err(e) = compare(&got, &want, ifd) {
                expect("pixels", false, e);
            }
        }
        Err(e) => expect("decode", false, e),
    }

    let mask = header.masks.first().and_then(Option::as_ref);
    match (entry["mask_npy"].as_str(), mask) {
        (None, None) => {}
        (None, Some(_)) => expect("mask", false, "Kiln finds a mask GDAL does not".into()),
        (Some(_), None) => expect("mask", false, "Kiln finds no internal mask".into()),
        (Some(name), Some(mask)) => {
            let want = npy::read_npy(&dir.join(name))?;
            let (mw, mh) = (mask.width, mask.height);
            expect(
                "mask size",
                (mw, mh) == (ifd.width, ifd.height) && mask.bands() == 1,
                format!("{mw}x{mh}x{}", mask.bands()),
            );
            match assemble(&header, mask, &file) {
                Ok(got) => {
                    if let Err(e) = compare(&got, &want, mask) {
                        expect("mask pixels", false, e);
                    }
                }
                Err(e) => expect("mask decode", false, e),
            }
        }
    }

    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n    "))
    }
}

#[test]
fn fixtures_match_gdal() {
    let dir = fixture_dir();
    let manifest = manifest(&dir);
    let entries = manifest["fixtures"].as_array().unwrap();
    // Guards against an empty or truncated manifest passing vacuously.
    assert!(
        entries.len() >= 10,
        "manifest lists only {} fixtures",
        entries.len()
    );
    let mut failures = Vec::new();
    for entry in entries {
        let name = entry["name"].as_str().unwrap();
        match check(entry, &dir) {
            Ok(()) => eprintln!("ok   {name}"),
            Err(e) => {
                eprintln!("FAIL {name}\n    {e}");
                failures.push(name.to_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ from GDAL {} (see stderr): {failures:?}",
        failures.len(),
        entries.len(),
        manifest["gdal_version"]
    );
}
