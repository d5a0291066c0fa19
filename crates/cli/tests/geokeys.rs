//! GeoKeys that refine an EPSG code (a metre State Plane code with US-foot units, a foot UTM,
//! projection parameters and datums beside a code, geographic CRSs counting in grads with the
//! Paris meridian): `kiln info` and `kiln tile` against GDAL's reading of the same files.
//!
//! The files and GDAL's answers come from `scripts/make_fixtures.py` (run by
//! `scripts/make_reference_tiles.sh`) in `tests/ref-cache/fixtures/geokeys/`: per file the
//! keys written, GDAL 3.10's EPSG code, PROJ string, native and WGS 84 bounds (21 points per
//! edge) and rio-tiler nearest tiles. Files whose keys contradict a geographic code, or name a
//! unit that does not exist, must be refused with an error naming the key.
//!
//! Tolerances: native bounds to 1e-6 of a unit (both sides compute them from the same tie
//! point and scale); WGS 84 bounds to 1e-6° (the bar: both sides run the same
//! projection formulas and Helmert shifts); nearest tiles ≥ 99.5 % equal pixels and masks, as
//! in `reference_tiles.rs` (GDAL's approximate transformer moves a thin line of pixel edges).
//!
//! Also here: a global grid whose longitudes run 20°..380°. Kiln wraps longitudes around the
//! source and draws the whole globe (GDAL/rio-tiler draw only the part west of 180°); the
//! tiles are checked against the source pixels themselves.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/npy.rs"]
mod npy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn dir() -> PathBuf {
    let base = std::env::var_os("KILN_REF_DIR").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/ref-cache"
            ))
        },
        PathBuf::from,
    );
    base.join("fixtures/geokeys")
}

fn manifest() -> Value {
    let path = dir().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nGenerate the fixtures first: scripts/make_reference_tiles.sh",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .expect("run kiln")
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn info(path: &Path) -> Result<Value, String> {
    let out = kiln(&["info", path.to_str().unwrap()]);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

fn bounds(v: &Value) -> [f64; 4] {
    [
        v["west"].as_f64().unwrap(),
        v["south"].as_f64().unwrap(),
        v["east"].as_f64().unwrap(),
        v["north"].as_f64().unwrap(),
    ]
}

/// Share of equal samples among pixels valid on both sides, and share of equal mask pixels.
fn agreement(reference: &npy::NpyArray, kiln: &npy::NpyArray) -> (f64, f64) {
    assert_eq!(reference.shape, kiln.shape);
    let [planes, rows, cols] = reference.shape[..] else {
        panic!("not 3-D: {:?}", reference.shape)
    };
    let bands = planes - 1;
    let (rm, km) = (reference.plane(bands).unwrap(), kiln.plane(bands).unwrap());
    let pixels = rows * cols;
    let (mut same_mask, mut samples, mut same) = (0usize, 0usize, 0usize);
    for p in 0..pixels {
        let (rv, kv) = (rm[p] > 0.0, km[p] > 0.0);
        same_mask += usize::from(rv == kv);
        if rv && kv {
            for b in 0..bands {
                let (r, k) = (
                    reference.values[b * pixels + p],
                    kiln.values[b * pixels + p],
                );
                samples += 1;
                same += usize::from(r == k || (r.is_nan() && k.is_nan()));
            }
        }
    }
    let exact = if samples == 0 {
        1.0
    } else {
        same as f64 / samples as f64
    };
    (exact, same_mask as f64 / pixels as f64)
}

#[test]
fn geokey_overrides_read_as_gdal_reads_them() {
    let m = manifest();
    let fixtures = m["fixtures"].as_array().unwrap();
    assert!(fixtures.len() >= 18, "{} fixtures", fixtures.len());
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("geokeys");
    std::fs::create_dir_all(&work).unwrap();
    let mut failures = Vec::new();
    let mut table = String::new();
    for f in fixtures {
        let name = f["name"].as_str().unwrap();
        let path = dir().join(f["tif"].as_str().unwrap());
        let gdal = &f["gdal"];
        let result = info(&path);
        if f["expect"] == "error" {
            let mention = f["error_mentions"].as_str().unwrap();
            match result {
                Ok(v) => failures.push(format!(
                    "{name}: read as {}, expected an error naming {mention}",
                    v["crs"]
                )),
                Err(stderr) if !stderr.contains(mention) => {
                    failures.push(format!("{name}: error does not name {mention}: {stderr}"))
                }
                Err(stderr) => {
                    table.push_str(&format!(
                        "{name:<34} refused: {}\n",
                        stderr.lines().last().unwrap_or_default()
                    ));
                    // The tile path refuses it the same way.
                    let out = kiln(&[
                        "tile",
                        path.to_str().unwrap(),
                        "0",
                        "0",
                        "0",
                        "-o",
                        work.join(format!("{name}.npy")).to_str().unwrap(),
                    ]);
                    if out.status.success()
                        || !String::from_utf8_lossy(&out.stderr).contains(mention)
                    {
                        failures.push(format!(
                            "{name}: kiln tile did not refuse it naming {mention}: {}",
                            String::from_utf8_lossy(&out.stderr)
                        ));
                    }
                }
            }
            continue;
        }
        let v = match result {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: kiln info failed: {e}"));
                continue;
            }
        };
        // CRS: the EPSG code only when GDAL also says the code stands; a changed CRS is noted.
        let kiln_epsg = v["crs"]["epsg"].as_u64();
        let gdal_epsg = gdal["epsg"].as_u64();
        let notes = v["crs"]["notes"].as_array().map_or(0, Vec::len);
        if kiln_epsg != gdal_epsg {
            failures.push(format!(
                "{name}: EPSG {kiln_epsg:?}, GDAL {gdal_epsg:?} ({})",
                v["crs"]["proj4"]
            ));
        }
        // A file that names a code GDAL then dropped must say why.
        let keys = f["keys"].as_array().unwrap();
        let key = |id: u64| {
            keys.iter()
                .find(|k| k[0].as_u64() == Some(id))
                .and_then(|k| k[1].as_u64())
        };
        let coded = |id: u64| key(id).is_some_and(|c| c != 32767);
        let names_code = coded(3072) || (key(1024) == Some(2) && coded(2048));
        if names_code && gdal_epsg.is_none() && notes == 0 {
            failures.push(format!("{name}: the CRS changed but kiln info has no note"));
        }
        // Native bounds: GDAL's are in the file's unit; Kiln converts angles to degrees.
        let dpu = gdal["degrees_per_unit"].as_f64().unwrap_or(1.0);
        let g = f64s(&gdal["bounds"]);
        let k = bounds(&v["bounds"]);
        let native_err = (0..4)
            .map(|i| (k[i] - g[i] * dpu).abs())
            .fold(0.0, f64::max);
        let gw = f64s(&gdal["wgs84_bounds"]);
        let kw = bounds(&v["bounds_wgs84"]);
        let wgs_err = (0..4).map(|i| (kw[i] - gw[i]).abs()).fold(0.0, f64::max);
        if native_err > 1e-6 {
            failures.push(format!("{name}: native bounds {k:?}, GDAL {g:?} x {dpu}"));
        }
        if wgs_err > 1e-6 {
            failures.push(format!("{name}: WGS 84 bounds {kw:?}, GDAL {gw:?}"));
        }
        // Tiles against rio-tiler.
        let mut worst = (1.0f64, 1.0f64);
        for t in f["tiles"].as_array().unwrap() {
            let (z, x, y) = (
                t["z"].as_u64().unwrap(),
                t["x"].as_u64().unwrap(),
                t["y"].as_u64().unwrap(),
            );
            let out_path = work.join(format!("{name}_{z}_{x}_{y}.npy"));
            let out = kiln(&[
                "tile",
                path.to_str().unwrap(),
                &z.to_string(),
                &x.to_string(),
                &y.to_string(),
                "-o",
                out_path.to_str().unwrap(),
                "--resampling",
                "nearest",
                "--tile-size",
                "256",
            ]);
            if !out.status.success() {
                failures.push(format!(
                    "{name} {z}/{x}/{y}: kiln tile failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
                continue;
            }
            let reference = npy::read_npy(&dir().join(t["npy"].as_str().unwrap())).unwrap();
            let got = npy::read_npy(&out_path).unwrap();
            if got.dtype != reference.dtype {
                failures.push(format!(
                    "{name} {z}/{x}/{y}: dtype {} vs {}",
                    got.dtype, reference.dtype
                ));
                continue;
            }
            let (exact, mask) = agreement(&reference, &got);
            worst = (worst.0.min(exact), worst.1.min(mask));
            if exact < 0.995 || mask < 0.995 {
                failures.push(format!(
                    "{name} {z}/{x}/{y}: {:.2} % equal pixels, {:.2} % equal mask (want 99.5)",
                    exact * 100.0,
                    mask * 100.0
                ));
            }
        }
        table.push_str(&format!(
            "{name:<34} epsg {:<6} native err {native_err:.1e} wgs84 err {wgs_err:.1e}° tiles: min equal {:.2} % mask {:.2} %\n",
            kiln_epsg.map_or_else(|| "-".to_string(), |c| c.to_string()),
            worst.0 * 100.0,
            worst.1 * 100.0
        ));
    }
    println!("kiln vs GDAL on GeoKey overrides:\n{table}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A global grid whose columns run 20°..380°: Kiln draws the whole globe, each tile pixel the
/// source sample under its centre, longitudes taken modulo 360 onto the grid.
#[test]
fn grid_from_20_to_380_degrees_wraps_around_the_globe() {
    let m = manifest();
    let wrap = &m["wrap"];
    let path = dir().join(wrap["tif"].as_str().unwrap());
    let source = npy::read_npy(&dir().join(wrap["npy"].as_str().unwrap())).unwrap();
    let gt = f64s(&wrap["transform"]);
    let (w, h) = (
        wrap["width"].as_u64().unwrap() as i64,
        wrap["height"].as_u64().unwrap() as i64,
    );
    assert_eq!(gt[0], 20.0, "the fixture must start at 20°E");
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("geokeys-wrap");
    std::fs::create_dir_all(&work).unwrap();
    const R: f64 = 6_378_137.0;
    let half = std::f64::consts::PI * R;
    // Every tile of zoom 2: west of 20°E (only reachable by wrapping), across 180°, and east.
    let (mut total, mut equal, mut valid) = (0usize, 0usize, 0usize);
    let mut coverage = String::new();
    let (mut kiln_cover, mut gdal_cover) = (0.0f64, 0.0f64);
    for x in 0..4u32 {
        for y in 0..4u32 {
            let out = work.join(format!("2_{x}_{y}.npy"));
            let o = kiln(&[
                "tile",
                path.to_str().unwrap(),
                "2",
                &x.to_string(),
                &y.to_string(),
                "-o",
                out.to_str().unwrap(),
                "--resampling",
                "nearest",
            ]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let t = npy::read_npy(&out).unwrap();
            let size = t.shape[1];
            let span = 2.0 * half / 4.0;
            let px = span / size as f64;
            let (data, mask) = (t.plane(0).unwrap(), t.plane(1).unwrap());
            let kiln_valid = mask.iter().filter(|&&m| m > 0.0).count() as f64 / mask.len() as f64;
            let rio = wrap["rio_tiler_zoom2"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["x"] == x && e["y"] == y)
                .map(|e| e["valid_fraction"].as_f64())
                .expect("rio-tiler's tile in the manifest");
            kiln_cover += kiln_valid;
            gdal_cover += rio.unwrap_or(0.0);
            coverage.push_str(&format!(
                "  2/{x}/{y}: kiln {:.1} % valid, rio-tiler {}\n",
                kiln_valid * 100.0,
                rio.map_or_else(
                    || "outside its bounds".to_string(),
                    |v| format!("{:.1} %", v * 100.0)
                )
            ));
            for r in 0..size {
                for c in 0..size {
                    let mx = -half + f64::from(x) * span + (c as f64 + 0.5) * px;
                    let my = half - f64::from(y) * span - (r as f64 + 0.5) * px;
                    let lon = (mx / R).to_degrees();
                    let lat =
                        (2.0 * (my / R).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees();
                    let lon = if lon < gt[0] { lon + 360.0 } else { lon };
                    let col = ((lon - gt[0]) / gt[1]).floor() as i64;
                    let row = ((lat - gt[3]) / gt[5]).floor() as i64;
                    if !(0..w).contains(&col) || !(0..h).contains(&row) {
                        continue;
                    }
                    total += 1;
                    let i = r * size + c;
                    if mask[i] > 0.0 {
                        valid += 1;
                        let want = source.values[(row * w + col) as usize];
                        equal += usize::from(data[i] == want);
                    }
                }
            }
        }
    }
    let valid_share = valid as f64 / total as f64;
    let equal_share = equal as f64 / valid.max(1) as f64;
    println!(
        "20..380 grid, zoom 2: {total} pixels, {:.3} % valid, {:.3} % equal to the source sample",
        valid_share * 100.0,
        equal_share * 100.0
    );
    println!("{coverage}");
    // The documented difference (ARCHITECTURE.md, "Matching GDAL"): rio-tiler draws less of
    // the globe from this grid than Kiln does.
    assert!(
        gdal_cover < kiln_cover - 4.0,
        "rio-tiler now covers {gdal_cover} tiles' worth, Kiln {kiln_cover}: update the docs"
    );
    // Every pixel is drawn, west of 20°E too. Pixel centres within float rounding of a source
    // column edge may pick the neighbour: 99.9 % leaves room for those only.
    assert_eq!(valid, total, "pixels left empty");
    assert!(equal_share >= 0.999, "{:.4} % equal", equal_share * 100.0);
}

/// The same CRS reaches ingest (WGS 84 bounds and footprint in the catalog) and
/// `optimize --reproject` (the output's place), the other two paths the issue found wrong.
#[test]
fn ingest_and_reproject_place_override_files_where_gdal_does() {
    use kiln_catalog::{CatalogLocation, Page};
    let m = manifest();
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("geokeys-ingest");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for name in [
        "usft_on_metre_code",
        "geographic_code_in_grads",
        "ct_params_on_code",
    ] {
        let f = m["fixtures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap();
        let gw = f64s(&f["gdal"]["wgs84_bounds"]);
        let dir = work.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(dir_path(f), dir.join("file.tif")).unwrap();
        let catalog = work.join(format!("{name}.sqlite"));
        let out = kiln(&[
            "ingest",
            &format!("{}/{{name}}.tif", dir.display()),
            "-o",
            catalog.to_str().unwrap(),
            "-q",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta = rt.block_on(async {
            let c = kiln_catalog::open(&CatalogLocation::Sqlite(catalog.clone()))
                .await
                .unwrap();
            let d = c.datasets(&[], Page::all()).await.unwrap();
            let meta = c.metadata(&d[0].keys).await.unwrap().unwrap();
            c.close().await;
            meta
        });
        let b = meta.bounds_wgs84;
        let kb = [b.west, b.south, b.east, b.north];
        for i in 0..4 {
            assert!(
                (kb[i] - gw[i]).abs() <= 1e-6,
                "{name}: catalog bounds {kb:?}, GDAL {gw:?}"
            );
        }
        // The footprint lies inside those bounds (it is clamped to them) and is not empty.
        let text = meta.footprint.to_string();
        let nums: Vec<f64> = text
            .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e'))
            .filter_map(|t| t.parse().ok())
            .collect();
        assert!(nums.len() >= 8, "{name}: footprint {text}");
        for pair in nums.chunks_exact(2) {
            assert!(
                pair[0] >= gw[0] - 1e-6 && pair[0] <= gw[2] + 1e-6,
                "{name}: footprint lon {} outside {gw:?}",
                pair[0]
            );
            assert!(
                pair[1] >= gw[1] - 1e-6 && pair[1] <= gw[3] + 1e-6,
                "{name}: footprint lat {} outside {gw:?}",
                pair[1]
            );
        }

        // optimize --reproject: the COG covers the same place, to within one of its pixels
        // (the output grid is snapped to whole pixels around the source's bounds).
        let cog = work.join(format!("{name}-3857.tif"));
        let out = kiln(&[
            "optimize",
            dir.join("file.tif").to_str().unwrap(),
            "-o",
            cog.to_str().unwrap(),
            "--reproject",
            "EPSG:3857",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = info(&cog).unwrap();
        assert_eq!(v["crs"]["epsg"], 3857);
        let rb = bounds(&v["bounds_wgs84"]);
        let px_deg = v["geotransform"][1].as_f64().unwrap() / 111_000.0 * 2.0;
        for i in 0..4 {
            assert!(
                (rb[i] - gw[i]).abs() <= px_deg,
                "{name}: reprojected bounds {rb:?}, GDAL's source bounds {gw:?}"
            );
        }
    }
}

fn dir_path(f: &Value) -> PathBuf {
    dir().join(f["tif"].as_str().unwrap())
}
