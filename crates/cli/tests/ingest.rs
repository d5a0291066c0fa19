//! End-to-end tests of `kiln ingest`: real files (symbolic links to the shared data, named to
//! suit each pattern) into real SQLite catalogs, read back through `kiln-catalog`; dry runs,
//! regular expressions, `--skip-existing`, clear failures, a damaged file, a run killed with
//! SIGKILL and completed by a rerun, and the memory used on the largest file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kiln_catalog::{CatalogLocation, Dataset, DatasetMetadata, Page};
use kiln_engine::{compute_statistics, Engine, EngineConfig, StatsOptions};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "kiln-ingest-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// A symbolic link `rel` (may contain directories) to a shared data file.
    fn link(&self, rel: &str, data_file: &str) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(data(data_file), &p).unwrap();
        p
    }

    fn catalog(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn pattern(&self, tail: &str) -> String {
        format!("{}/{tail}", self.0.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run kiln")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

type Contents = Vec<(Dataset, Option<DatasetMetadata>)>;

/// Key names with descriptions, and every dataset with its metadata.
fn read_catalog(path: &Path) -> (Vec<(String, String)>, Contents) {
    runtime().block_on(async {
        let catalog = kiln_catalog::open(&CatalogLocation::Sqlite(path.to_path_buf()))
            .await
            .unwrap();
        let keys = catalog
            .keys()
            .iter()
            .map(|k| (k.name().to_owned(), k.description().to_owned()))
            .collect();
        let mut out = Vec::new();
        for d in catalog.datasets(&[], Page::all()).await.unwrap() {
            let m = catalog.metadata(&d.keys).await.unwrap();
            out.push((d, m));
        }
        catalog.close().await;
        (keys, out)
    })
}

fn canonical(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// Two keys from two directory levels; files that do not fit the pattern are left out.
#[test]
fn ingests_keys_uris_and_metadata() {
    let dir = TempDir::new("basic");
    let files = [
        ("dem/lux.tif", "dem_srtm30s_luxembourg_i16_lzw.tif"),
        ("dem/colorado.tif", "dem_3dep13_colorado_nad83_f32_cog.tif"),
        ("img/bahamas.tif", "odd_bahamas_rgba_alpha_deflate.tif"),
        (
            "img/saltlake.tif",
            "img_landsat_saltlake_4326_7band_cog.tif",
        ),
    ];
    for (rel, file) in files {
        dir.link(rel, file);
    }
    // `_` separates values, as in Terracotta: not matched.
    dir.link("img/not_matched.tif", "odd_merc_nad27_u8.tif");
    dir.link("img/deeper/x.tif", "odd_merc_nad27_u8.tif");
    std::fs::write(dir.path().join("img/readme.txt"), "not a raster").unwrap();
    let cat = dir.catalog("cat.sqlite");
    let out = kiln(&[
        "ingest",
        &dir.pattern("{kind}/{name}.tif"),
        "-o",
        cat.to_str().unwrap(),
        "--key-description",
        "kind=what the data is",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (keys, contents) = read_catalog(&cat);
    assert_eq!(
        keys,
        [
            ("kind".to_owned(), "what the data is".to_owned()),
            ("name".to_owned(), String::new())
        ]
    );
    let got: Vec<(Vec<String>, String)> = contents
        .iter()
        .map(|(d, _)| (d.keys.clone(), d.uri.clone()))
        .collect();
    let mut want: Vec<(Vec<String>, String)> = files
        .iter()
        .map(|(rel, file)| {
            let (kind, name) = rel.trim_end_matches(".tif").split_once('/').unwrap();
            (
                vec![kind.to_owned(), name.to_owned()],
                canonical(&data(file)),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);

    let rt = runtime();
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    for (d, m) in &contents {
        let m = m.as_ref().expect("metadata stored with the dataset");
        m.validate().unwrap();
        let stats = rt.block_on(async {
            let src = engine.open_path(Path::new(&d.uri)).await.unwrap();
            compute_statistics(&engine, &src, &StatsOptions::default())
                .await
                .unwrap()
        });
        assert_eq!(m.valid_percentage, stats.valid_percentage, "{:?}", d.keys);
        assert_eq!(m.bands.len(), stats.bands.len(), "{:?}", d.keys);
        for (mb, sb) in m.bands.iter().zip(&stats.bands) {
            assert_eq!(Some(mb.min), sb.min, "{:?}", d.keys);
            assert_eq!(Some(mb.max), sb.max, "{:?}", d.keys);
            assert_eq!(Some(mb.mean), sb.mean, "{:?}", d.keys);
            assert_eq!(mb.percentiles, sb.percentiles, "{:?}", d.keys);
        }
        assert!(m.header["images"].as_array().is_some_and(|a| !a.is_empty()));
    }
    // RGBA: alpha is the mask, not a band.
    let bahamas = contents
        .iter()
        .find(|(d, _)| d.keys == ["img", "bahamas"])
        .unwrap();
    assert_eq!(bahamas.1.as_ref().unwrap().band_count, 3);
}

#[test]
fn dry_run_prints_the_table_and_writes_nothing() {
    let dir = TempDir::new("dry");
    let a = dir.link("a1.tif", "dem_srtm30s_luxembourg_i16_lzw.tif");
    let b = dir.link("b2.tif", "odd_merc_nad27_u8.tif");
    let cat = dir.catalog("cat.sqlite");
    let out = kiln(&[
        "ingest",
        &dir.pattern("{name}.{}"),
        "-o",
        cat.to_str().unwrap(),
        "--dry-run",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["name", "path"],
            vec!["a1", a.to_str().unwrap()],
            vec!["b2", b.to_str().unwrap()],
        ]
    );
    assert!(!cat.exists(), "a dry run must not create the catalog");
}

#[test]
fn regex_patterns_take_keys_from_named_groups() {
    let cat_dir = TempDir::new("regex");
    let cat = cat_dir.catalog("cat.sqlite");
    // Relative to the crate directory, where `kiln` runs in these tests.
    let out = kiln(&[
        "ingest",
        "--regex",
        r"\.\./\.\./\.\./shared/data/(?P<kind>dem)_(?P<name>srtm[^/]*)_i16(_[a-z]+)?\.tif",
        "-o",
        cat.to_str().unwrap(),
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (keys, contents) = read_catalog(&cat);
    assert_eq!(
        keys.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(),
        ["kind", "name"]
    );
    let got: Vec<(Vec<String>, String)> = contents
        .iter()
        .map(|(d, _)| (d.keys.clone(), d.uri.clone()))
        .collect();
    let want: Vec<(Vec<String>, String)> = [
        (
            "srtm1s_south_australia",
            "dem_srtm1s_south_australia_i16.tif",
        ),
        ("srtm30s_luxembourg", "dem_srtm30s_luxembourg_i16_lzw.tif"),
        ("srtm3s_turkey", "dem_srtm3s_turkey_i16_striped.tif"),
    ]
    .iter()
    .map(|(name, file)| {
        (
            vec!["dem".to_owned(), (*name).to_owned()],
            canonical(&data(file)),
        )
    })
    .collect();
    assert_eq!(got, want);
}

#[test]
fn skip_existing_does_not_open_files_again() {
    let dir = TempDir::new("skip");
    dir.link("one.tif", "dem_srtm30s_luxembourg_i16_lzw.tif");
    let two = dir.link("two.tif", "odd_merc_nad27_u8.tif");
    let cat = dir.catalog("cat.sqlite");
    let pattern = dir.pattern("{name}.tif");
    let args = ["ingest", &pattern, "-o", cat.to_str().unwrap(), "-q"];
    let out = kiln(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = read_catalog(&cat);
    assert_eq!(before.1.len(), 2);

    // `two` can no longer be opened: only a run that never opens it can succeed.
    std::fs::remove_file(&two).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.tif"), &two).unwrap();
    let out = kiln(&[&args[..], &["--skip-existing"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_catalog(&cat), before);

    let out = kiln(&args);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("two.tif"), "{}", stderr(&out));
    assert_eq!(read_catalog(&cat), before, "a failed file changes nothing");
}

#[test]
fn bad_invocations_fail_clearly_without_writing() {
    let dir = TempDir::new("errors");
    dir.link("a_1.tif", "dem_srtm30s_luxembourg_i16_lzw.tif");
    dir.link("a_2.tif", "odd_merc_nad27_u8.tif");
    dir.link("b_1.tif", "odd_merc_nad27_u8.tif");
    let cat = dir.catalog("cat.sqlite");
    let c = cat.to_str().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![dir.pattern("{kind}_{}.tif")], "both map to keys"),
        (vec![dir.pattern("{kind}_{}.png")], "matches no file"),
        (
            vec![
                dir.pattern("{kind}_{n}.tif"),
                "--key-description".into(),
                "nope=x".into(),
            ],
            "names key \"nope\"",
        ),
        (
            vec![dir.pattern("{kind}_{n}.tif"), dir.pattern("{kind}_1.tif")],
            "same keys",
        ),
        (vec![dir.pattern("{}.tif")], "no {key} placeholder"),
        (vec![dir.pattern("{kind.tif")], "unclosed"),
        (
            vec!["--regex".into(), dir.pattern(r"(?P<kind>\w+)_(\d)\.tif[")],
            "not a valid regular expression",
        ),
        (
            vec![dir.pattern("{kind}_{n}.tif"), "-j".into(), "0".into()],
            "--jobs",
        ),
    ];
    for (args, message) in cases {
        let mut full = vec!["ingest".to_owned(), "-o".into(), c.into()];
        full.extend(args);
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let out = kiln(&refs);
        assert!(!out.status.success(), "{full:?} must fail");
        assert!(
            stderr(&out).contains(message),
            "{full:?}: expected {message:?} in {}",
            stderr(&out)
        );
        assert!(!cat.exists(), "{full:?} must not create the catalog");
    }

    // A catalog made with other keys is refused, and left as it was.
    let out = kiln(&["ingest", &dir.pattern("{kind}_1.tif"), "-o", c, "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = read_catalog(&cat);
    let out = kiln(&["ingest", &dir.pattern("{kind}_{n}.tif"), "-o", c, "-q"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("keys"), "{}", stderr(&out));
    assert_eq!(read_catalog(&cat), before);
}

/// A file whose header is intact but whose data is cut off fails during the statistics: the
/// run names it, and what was committed stays a valid catalog.
#[test]
fn a_damaged_file_fails_by_name_and_leaves_the_catalog_valid() {
    let dir = TempDir::new("damaged");
    dir.link("a.tif", "dem_srtm30s_luxembourg_i16_lzw.tif");
    let bytes = std::fs::read(data("dem_srtm3s_turkey_i16_striped.tif")).unwrap();
    std::fs::write(dir.path().join("b.tif"), &bytes[..bytes.len() * 6 / 10]).unwrap();
    dir.link("c.tif", "odd_merc_nad27_u8.tif");
    let cat = dir.catalog("cat.sqlite");
    let pattern = dir.pattern("{name}.tif");
    let c = cat.to_str().unwrap();

    let out = kiln(&["ingest", &pattern, "-o", c, "-j", "1", "-q"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("b.tif"), "{}", stderr(&out));
    let (_, contents) = read_catalog(&cat);
    let names: Vec<&str> = contents.iter().map(|(d, _)| d.keys[0].as_str()).collect();
    assert_eq!(
        names,
        ["a"],
        "fail fast: files after the bad one are not started"
    );
    contents[0].1.as_ref().unwrap().validate().unwrap();

    let out = kiln(&["ingest", &pattern, "-o", c, "--continue-on-error", "-q"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("b.tif"), "{}", stderr(&out));
    let (_, contents) = read_catalog(&cat);
    let names: Vec<&str> = contents.iter().map(|(d, _)| d.keys[0].as_str()).collect();
    assert_eq!(names, ["a", "c"]);
}

/// Kill -9 in the middle of a run, rerun the same command: the catalog equals one made by an
/// uninterrupted run, datasets and metadata alike.
#[test]
fn a_killed_run_completed_by_a_rerun_equals_an_uninterrupted_run() {
    let dir = TempDir::new("kill");
    // The small file first, then larger ones, so the run is caught between two commits.
    let files = [
        "dem_srtm30s_luxembourg_i16_lzw.tif",
        "global_bluemarble_5400x2700_rgb_jpeg_tiled.tif",
        "global_etopo5_i16_cog.tif",
        "img_l8_224077_utm21n_b2_u16.tif",
        "img_l8_224077_utm21n_b3_u16.tif",
        "img_l8_224077_utm21n_b4_u16.tif",
        "img_landsat7_sfbay_3857_rgb_cog.tif",
        "img_landsat_saltlake_4326_7band_cog.tif",
        "dem_srtm3s_turkey_i16_striped.tif",
        "img_modis_miriam_4326_rgb_jpeg.tif",
        "dem_rhine_basin_30s_f32_nodata.tif",
        "global_etopo20_f32_deflate_pred3.tif",
    ];
    for (i, f) in files.iter().enumerate() {
        dir.link(&format!("f{i:02}.tif"), f);
    }
    let pattern = dir.pattern("{name}.tif");
    let killed = dir.catalog("killed.sqlite");
    let whole = dir.catalog("whole.sqlite");
    let args = |cat: &Path| {
        vec![
            "ingest".to_owned(),
            pattern.clone(),
            "-o".into(),
            cat.to_str().unwrap().to_owned(),
            "-j".into(),
            "1".into(),
            "-q".into(),
        ]
    };

    // Catching the run between two commits is a race with the machine's load (a loaded host
    // may let the whole run finish between two polls), so a missed attempt starts over with
    // a fresh catalog; the checks below only run on a caught one.
    let rt = runtime();
    let location = CatalogLocation::Sqlite(killed.clone());
    let mut committed_at_kill = None;
    for _attempt in 0..5 {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", killed.display()));
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(args(&killed))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let n = rt.block_on(async {
                let catalog = kiln_catalog::open(&location).await.ok()?;
                let n = catalog.count(&[]).await.ok();
                catalog.close().await;
                n
            });
            if let Some(n) = n.filter(|&n| n >= 1 && n < files.len() as u64) {
                child.kill().unwrap();
                committed_at_kill = Some(n);
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        child.wait().unwrap();
        if committed_at_kill.is_some() {
            break;
        }
    }
    let n = committed_at_kill.expect("the run was not caught between two commits");
    let (_, partial) = read_catalog(&killed);
    assert!(
        partial.len() as u64 >= n && partial.len() < files.len(),
        "{} datasets after the kill",
        partial.len()
    );
    assert!(
        partial.iter().all(|(_, m)| m.is_some()),
        "no dataset without its metadata"
    );

    let rerun = args(&killed);
    let out = kiln(&rerun.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", stderr(&out));
    let once = args(&whole);
    let out = kiln(&once.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", stderr(&out));

    let (killed_keys, killed_contents) = read_catalog(&killed);
    let (whole_keys, whole_contents) = read_catalog(&whole);
    assert_eq!(killed_keys, whole_keys);
    assert_eq!(killed_contents.len(), files.len());
    assert_eq!(killed_contents, whole_contents);
    // What the kill left was already complete and right, not just overwritten by the rerun.
    for entry in &partial {
        assert!(whole_contents.contains(entry), "{:?}", entry.0);
    }
}

/// The 58-megapixel RGB file (175 MB of decoded samples, plus its mask) is ingested in a
/// fraction of that: the peak resident set of the process, sampled from /proc while it runs.
#[test]
fn the_largest_file_is_ingested_with_bounded_memory() {
    let dir = TempDir::new("memory");
    dir.link(
        "relief.tif",
        "global_shadedrelief_10800x5400_rgb_jpeg_cog.tif",
    );
    let cat = dir.catalog("cat.sqlite");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "ingest",
            &dir.pattern("{name}.tif"),
            "-o",
            cat.to_str().unwrap(),
            "-q",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_path) {
            if let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, contents) = read_catalog(&cat);
    assert_eq!(contents.len(), 1);
    let decoded_kb = 10800 * 5400 * 3 / 1024;
    assert!(peak_kb > 0, "no memory sample");
    assert!(
        peak_kb < decoded_kb / 2,
        "peak RSS {peak_kb} kB, decoded image {decoded_kb} kB"
    );
}
