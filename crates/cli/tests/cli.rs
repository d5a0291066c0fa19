//! End-to-end tests of the `kiln` binary: `kiln info` on every shared file, `kiln tile` in
//! every output format, and clear failures (exit code ≠ 0, a message, no output file) on bad
//! input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/npy.rs"]
mod npy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .expect("run kiln")
}

fn catalog() -> Vec<Value> {
    let text = std::fs::read_to_string(data_dir().join("catalog.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn dtype_name(gdal: &str) -> &'static str {
    match gdal {
        "Byte" => "uint8",
        "Int8" => "int8",
        "UInt16" => "uint16",
        "Int16" => "int16",
        "UInt32" => "uint32",
        "Int32" => "int32",
        "Float32" => "float32",
        "Float64" => "float64",
        other => panic!("unexpected dtype {other}"),
    }
}

/// `kiln info` reads every shared file (none is unsupported) and agrees with GDAL's facts in
/// catalog.json: size, bands, type, EPSG code, nodata, overviews, block size, WGS84 bounds.
#[test]
fn info_describes_every_shared_file() {
    let entries = catalog();
    assert_eq!(entries.len(), 47);
    let mut failures = Vec::new();
    for e in &entries {
        let file = e["file"].as_str().unwrap();
        let out = kiln(&["info", data_dir().join(file).to_str().unwrap()]);
        if !out.status.success() {
            failures.push(format!(
                "{file}: exit {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let info: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut check = |what: &str, ok: bool| {
            if !ok {
                failures.push(format!("{file}: {what} differs: kiln {info}"));
            }
        };
        check("width", info["width"] == e["width"]);
        check("height", info["height"] == e["height"]);
        check("bands", info["bands"] == e["bands"]);
        check(
            "dtype",
            info["dtype"] == dtype_name(e["dtype"].as_str().unwrap()),
        );
        check(
            "overviews",
            info["overviews"].as_array().unwrap().len() == e["overviews"].as_array().unwrap().len(),
        );
        check(
            "block size",
            info["block_size"][0] == e["block"][0]
                && (e["tiled"] == false || info["block_size"][1] == e["block"][1]),
        );
        check("bigtiff", info["bigtiff"] == e["bigtiff"]);
        let nodata_ok = match (e["nodata"].as_f64(), info["nodata"].as_f64()) {
            (None, None) => true,
            (Some(a), Some(b)) => a == b || (a - b).abs() <= a.abs() * 1e-7,
            _ => false,
        };
        check("nodata", nodata_ok);
        let crs = e["crs"].as_str().unwrap();
        if let Some(code) = crs
            .strip_prefix("EPSG:")
            .and_then(|s| s.split_whitespace().next())
        {
            check(
                "EPSG code",
                info["crs"]["epsg"].as_u64() == code.parse::<u64>().ok(),
            );
        } else if crs.starts_with("no EPSG code") {
            check(
                "PROJ string",
                info["crs"]["proj4"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("+proj=")),
            );
        } else if crs == "none" {
            check("no CRS", info["crs"].is_null());
        }
        if let Some(bb) = e["wgs84_bbox"].as_array() {
            let b = &info["bounds_wgs84"];
            let near = |k: &str, i: usize| {
                (b[k].as_f64().unwrap_or(f64::NAN) - bb[i].as_f64().unwrap()).abs() < 0.01
            };
            check(
                "WGS84 bounds",
                near("west", 0) && near("south", 1) && near("east", 2) && near("north", 3),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-cli-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every output format from one DEM tile and one RGB tile, checked by decoding the result.
#[test]
fn tile_writes_every_format() {
    let dir = tmp_dir("formats");
    let dem = data_dir().join("global_etopo5_i16_cog.tif");
    let rgb = data_dir().join("img_bahamas_utm18n_rgb_cog.tif");
    let dem = dem.to_str().unwrap();

    let npy_path = dir.join("t.npy");
    let out = kiln(&["tile", dem, "2", "2", "1", "-o", npy_path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let arr = npy::read_npy(&npy_path).unwrap();
    assert_eq!(arr.shape, vec![2, 256, 256]);
    assert_eq!(arr.dtype, "int16");
    assert!(
        arr.plane(1).unwrap().iter().all(|&m| m == 255.0),
        "a tile inside the globe is fully valid"
    );
    let (lo, hi) = arr
        .plane(0)
        .unwrap()
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    assert!(lo < -3000.0 && hi > 4000.0, "DEM range {lo}..{hi}");

    let png_path = dir.join("t.png");
    let out = kiln(&[
        "tile",
        dem,
        "2",
        "2",
        "1",
        "--colormap",
        "terrain",
        "--stretch",
        "-6000,5000",
        "-o",
        png_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png_path).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().unwrap();
    assert_eq!(reader.info().color_type, png::ColorType::Indexed);
    assert_eq!((reader.info().width, reader.info().height), (256, 256));

    let tile512 = dir.join("t512.npy");
    let out = kiln(&[
        "tile",
        dem,
        "2",
        "2",
        "1",
        "--tile-size",
        "512",
        "-o",
        tile512.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(npy::read_npy(&tile512).unwrap().shape, vec![2, 512, 512]);

    for ext in ["jpg", "webp", "png"] {
        let p = dir.join(format!("rgb.{ext}"));
        let out = kiln(&[
            "tile",
            rgb.to_str().unwrap(),
            "10",
            "289",
            "437",
            "-o",
            p.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{ext}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let b = std::fs::read(&p).unwrap();
        let magic_ok = match ext {
            "jpg" => b.starts_with(&[0xFF, 0xD8, 0xFF]),
            "webp" => b.starts_with(b"RIFF") && &b[8..12] == b"WEBP",
            _ => b.starts_with(b"\x89PNG"),
        };
        assert!(magic_ok, "{ext} output has the wrong signature");
        assert!(
            b.len() > 1000,
            "{ext} output suspiciously small: {} bytes",
            b.len()
        );
    }

    // Per-band RGB ranges: a narrower red range makes red brighter, pixel for pixel.
    let narrow_png = dir.join("narrow.png");
    let wide_png = dir.join("wide.png");
    let rgb_s = rgb.to_str().unwrap();
    for (p, stretch) in [
        (&wide_png, "0,255,0,255,0,255"),
        (&narrow_png, "0,100,0,255,0,255"),
    ] {
        let out = kiln(&[
            "tile",
            rgb_s,
            "10",
            "289",
            "437",
            "--stretch",
            stretch,
            "-o",
            p.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let decode = |p: &Path| {
        let mut r = png::Decoder::new(std::io::Cursor::new(std::fs::read(p).unwrap()))
            .read_info()
            .unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        (info.color_type, buf)
    };
    let ((ct, w), (_, n)) = (decode(&wide_png), decode(&narrow_png));
    let ch = if ct == png::ColorType::Rgba { 4 } else { 3 };
    let (mut brighter, mut same_green) = (0, true);
    for (a, b) in w.chunks(ch).zip(n.chunks(ch)) {
        brighter += usize::from(b[0] > a[0]);
        same_green &= a[1] == b[1];
    }
    assert!(
        brighter > 1000 && same_green,
        "red stretched alone: {brighter} brighter pixels"
    );
    let bad = kiln(&[
        "tile",
        rgb_s,
        "10",
        "289",
        "437",
        "--stretch",
        "0,1,2,3",
        "-o",
        narrow_png.to_str().unwrap(),
    ]);
    assert!(!bad.status.success());

    // A colormapped single band as JPEG (no palette in JPEG: expanded).
    let dem_jpg = dir.join("dem.jpg");
    let out = kiln(&[
        "tile",
        dem,
        "2",
        "2",
        "1",
        "--colormap",
        "viridis",
        "-o",
        dem_jpg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&dem_jpg)
        .unwrap()
        .starts_with(&[0xFF, 0xD8, 0xFF]));

    // Explicit value → colour classes on the NLCD land-cover file: water (11) blue, forest
    // (42) green, everything else transparent.
    let nlcd = data_dir().join("odd_nlcd_puertorico_palette_u8.tif");
    let classes = dir.join("classes.png");
    let out = kiln(&[
        "tile",
        nlcd.to_str().unwrap(),
        "7",
        "40",
        "57",
        "--explicit-colormap",
        r##"{"11": "#0000ff", "42": [0, 128, 0]}"##,
        "-o",
        classes.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut dec = png::Decoder::new(std::io::Cursor::new(std::fs::read(&classes).unwrap()));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    r.next_frame(&mut buf).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for px in buf.chunks(4) {
        *counts.entry([px[0], px[1], px[2], px[3]]).or_insert(0usize) += 1;
    }
    assert!(
        counts.get(&[0, 0, 255, 255]).copied().unwrap_or(0) > 100,
        "water pixels: {counts:?}"
    );
    assert!(
        counts.get(&[0, 128, 0, 255]).copied().unwrap_or(0) > 100,
        "forest pixels: {counts:?}"
    );
    assert!(
        counts
            .keys()
            .all(|c| c[3] == 0 || *c == [0, 0, 255, 255] || *c == [0, 128, 0, 255]),
        "{counts:?}"
    );
    let bad = kiln(&[
        "tile",
        nlcd.to_str().unwrap(),
        "7",
        "40",
        "56",
        "--explicit-colormap",
        "{nope",
        "-o",
        classes.to_str().unwrap(),
    ]);
    assert!(
        !bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("explicit-colormap")
    );

    // Raw GeoTIFF tile: kiln reads its own output back as a 256 x 256 EPSG:3857 raster.
    let tif = dir.join("t.tif");
    let out = kiln(&["tile", dem, "2", "2", "1", "-o", tif.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kiln(&["info", tif.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (info["width"].as_u64(), info["height"].as_u64()),
        (Some(256), Some(256))
    );
    assert_eq!(info["crs"]["epsg"].as_u64(), Some(3857));
    assert_eq!(info["dtype"], "int16");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Truncated and corrupted files fail with a message through the whole pipeline, never a panic.
#[test]
fn damaged_files_fail_cleanly() {
    let dir = tmp_dir("damaged");
    let src = std::fs::read(data_dir().join("global_etopo5_i16_cog.tif")).unwrap();
    let cut_header = dir.join("cut_header.tif");
    std::fs::write(&cut_header, &src[..300]).unwrap();
    let cut_data = dir.join("cut_data.tif");
    std::fs::write(&cut_data, &src[..src.len() / 2]).unwrap();
    let mut garbled = src.clone();
    // Damage one byte in every 997 past the header: no block inflates (zlib's checksum).
    for b in garbled.iter_mut().skip(64 * 1024).step_by(997) {
        *b ^= 0xA5;
    }
    let garbled_path = dir.join("garbled.tif");
    std::fs::write(&garbled_path, &garbled).unwrap();
    let out = dir.join("o.npy");
    let mut messages = Vec::new();
    for (path, z, x, y) in [
        (&cut_header, "0", "0", "0"),
        (&cut_data, "1", "1", "1"),
        (&garbled_path, "2", "1", "1"),
        (&garbled_path, "4", "9", "5"),
    ] {
        let o = kiln(&[
            "tile",
            path.to_str().unwrap(),
            z,
            x,
            y,
            "-o",
            out.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(
            !stderr.contains("panicked"),
            "{path:?} {z}/{x}/{y} panicked: {stderr}"
        );
        if !o.status.success() {
            assert!(stderr.starts_with("error:"), "{stderr}");
            assert!(!out.exists(), "a failed run left an output file");
            messages.push(stderr);
        }
    }
    assert_eq!(
        messages.len(),
        4,
        "every damaged read must fail: {messages:?}"
    );
    assert!(
        messages[0].contains("cut_header.tif"),
        "message names the file: {}",
        messages[0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad input: exit code ≠ 0, a message naming the problem, and no output file left behind.
#[test]
fn tile_errors_are_clear_and_leave_nothing() {
    let dir = tmp_dir("errors");
    let dem = data_dir().join("global_etopo5_i16_cog.tif");
    let dem = dem.to_str().unwrap();
    let nocrs = data_dir().join("odd_dem_zurich_25m_i16_nocrs.tif");
    let not_tiff = data_dir().join("catalog.json");
    let out_path = dir.join("out.npy");
    let o = out_path.to_str().unwrap();
    let png_out = dir.join("c.png");
    let bmp_out = dir.join("out.bmp");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["tile", "/nonexistent/x.tif", "0", "0", "0", "-o", o],
            "not found",
        ),
        (vec!["tile", dem, "2", "9", "0", "-o", o], "tile"),
        (vec!["tile", dem, "31", "0", "0", "-o", o], "tile"),
        (
            vec!["tile", dem, "2", "2", "1", "--bands", "2", "-o", o],
            "band 2",
        ),
        (
            vec!["tile", dem, "2", "2", "1", "--tile-size", "300", "-o", o],
            "tile_size",
        ),
        (
            vec!["tile", dem, "2", "2", "1", "--stretch", "5,1", "-o", o],
            "--stretch",
        ),
        (
            vec![
                "tile",
                dem,
                "2",
                "2",
                "1",
                "--colormap",
                "nosuchmap",
                "-o",
                png_out.to_str().unwrap(),
            ],
            "nosuchmap",
        ),
        (
            vec!["tile", dem, "2", "2", "1", "-o", bmp_out.to_str().unwrap()],
            "format",
        ),
        (
            vec!["tile", nocrs.to_str().unwrap(), "2", "2", "1", "-o", o],
            "coordinate reference system",
        ),
        (
            vec!["tile", not_tiff.to_str().unwrap(), "0", "0", "0", "-o", o],
            "TIFF",
        ),
        (vec!["info", not_tiff.to_str().unwrap()], "TIFF"),
    ];
    for (args, needle) in cases {
        let out = kiln(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr.contains("error"),
            "{args:?}: no error message: {stderr}"
        );
        assert!(
            stderr.contains(needle),
            "{args:?}: message does not mention {needle:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "failed runs left files behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
