//! YCbCr JPEG blocks decoded by Kiln against the same blocks decoded by GDAL (libtiff +
//! libjpeg-turbo, JPEGCOLORMODE=RGB), sample by sample.
//!
//! The GDAL side is generated, not committed: run
//! `~/.cache/kiln-venv/bin/python scripts/make_jpeg_reference_blocks.py` (writes
//! `tests/ref-cache/jpeg/`; see `ref_dir` for the variables that move it).

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use kiln_cog::{decode_block, TiffHeader};
use kiln_core::Samples;
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
}

/// `KILN_JPEG_REF_DIR`, else `$KILN_REF_DIR/jpeg` (where scripts/make_reference_tiles.sh
/// keeps its references), else `<repo>/tests/ref-cache/jpeg`.
fn ref_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KILN_JPEG_REF_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("KILN_REF_DIR") {
        return PathBuf::from(d).join("jpeg");
    }
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/ref-cache/jpeg"
    ))
}

/// Differences of one block, over the pixels inside the image.
#[derive(Debug, Default)]
struct Diff {
    samples: usize,
    within_one: usize,
    exact: usize,
    max: u8,
    /// Band, column, row, Kiln's value and GDAL's at the first largest difference.
    worst: (usize, usize, usize, u8, u8),
}

fn compare(entry: &Value, header: &TiffHeader, file: &[u8], dir: &std::path::Path) -> Diff {
    let name = entry["name"].as_str().unwrap();
    let level = entry["level"].as_u64().unwrap() as usize;
    let (col, row) = (
        entry["col"].as_u64().unwrap() as usize,
        entry["row"].as_u64().unwrap() as usize,
    );
    let (w, h, bands) = (
        entry["width"].as_u64().unwrap() as usize,
        entry["height"].as_u64().unwrap() as usize,
        entry["bands"].as_u64().unwrap() as usize,
    );
    let want = std::fs::read(dir.join(format!("{name}.raw"))).unwrap();
    assert_eq!(want.len(), w * h * bands, "{name}: reference size");
    let ifd = &header.images[level];
    assert_eq!(ifd.block_bands(), bands, "{name}: bands");
    let index = ifd.block_index(col, row, 0);
    let (off, len) = ifd.block_range(index).unwrap();
    let bytes = &file[off as usize..(off + len) as usize];
    let block = decode_block(header, ifd, index, bytes).unwrap();
    let Samples::U8(got) = &block.samples else {
        panic!("{name}: not u8")
    };
    let npix = block.width * block.height;
    let mut d = Diff::default();
    for b in 0..bands {
        for y in 0..h {
            for x in 0..w {
                let g = got[b * npix + y * block.width + x];
                let r = want[(b * h + y) * w + x];
                let e = g.abs_diff(r);
                d.samples += 1;
                d.exact += usize::from(e == 0);
                d.within_one += usize::from(e <= 1);
                if e > d.max {
                    d.max = e;
                    d.worst = (b, x, y, g, r);
                }
            }
        }
    }
    d
}

#[test]
fn ycbcr_jpeg_blocks_match_gdal() {
    let dir = ref_dir();
    let manifest = dir.join("manifest.json");
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        panic!(
            "GDAL reference blocks missing ({}): run \
             `~/.cache/kiln-venv/bin/python scripts/make_jpeg_reference_blocks.py` first",
            manifest.display()
        );
    };
    let v: Value = serde_json::from_str(&text).unwrap();
    let entries = v["blocks"].as_array().unwrap();
    assert!(entries.len() >= 10, "manifest lists too few blocks");
    let mut failures = Vec::new();
    let mut current: Option<(String, Vec<u8>, TiffHeader)> = None;
    for entry in entries {
        let file = entry["file"].as_str().unwrap();
        if current.as_ref().is_none_or(|(f, _, _)| f != file) {
            let data = std::fs::read(data_dir().join(file)).unwrap();
            let header = TiffHeader::parse(&data).unwrap();
            current = Some((file.to_string(), data, header));
        }
        let (_, data, header) = current.as_ref().unwrap();
        let d = compare(entry, header, data, &dir);
        let name = entry["name"].as_str().unwrap();
        let pct = |n: usize| 100.0 * n as f64 / d.samples as f64;
        println!(
            "{name}: exact {:.3}%, within 1 {:.3}%, max {} (band, x, y, kiln, gdal: {:?})",
            pct(d.exact),
            pct(d.within_one),
            d.max,
            d.worst
        );
        // Kiln reproduces libjpeg 9's arithmetic, so every sample must be equal. (References
        // made by a GDAL linked to libjpeg-turbo instead would differ by up to ~30 at chroma
        // edges: libjpeg-turbo upsamples chroma with a triangle filter.)
        if d.max > 0 {
            failures.push(format!(
                "{name}: {:.3}% equal, {:.3}% within 1, max difference {}",
                pct(d.exact),
                pct(d.within_one),
                d.max
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "blocks differ from GDAL's (GDAL {}, {}): {failures:#?}",
        v["gdal"],
        v["libjpeg"]
    );
}
