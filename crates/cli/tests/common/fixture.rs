//! The test catalog: a directory of symbolic links to the shared data (the Luxembourg DEM,
//! ETOPO5, the three Landsat 8 224077 bands as an RGB triple, a 6-band Landsat 7 file, and
//! one dataset whose file is removed after ingest), ingested once per test binary by the real
//! `kiln ingest`; and the other references the tests compare with (`catalog.json`, `kiln tile`,
//! the rio-tiler reference tiles).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use super::npy::{self, NpyArray};

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

pub const LUX: &str = "dem_srtm30s_luxembourg_i16_lzw.tif";
pub const ETOPO: &str = "global_etopo5_i16_cog.tif";
pub const MS: &str = "img_l7_olinda_utm25s_6band_u8.tif";

pub fn l8(band: u8) -> String {
    format!("img_l8_224077_utm21n_b{band}_u16.tif")
}

/// The datasets of the test catalog: (name, band) key values → shared data file.
pub fn datasets() -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("lux", "1", LUX.to_string()),
        ("etopo", "1", ETOPO.to_string()),
        ("l8", "b2", l8(2)),
        ("l8", "b3", l8(3)),
        ("l8", "b4", l8(4)),
        ("ms", "all", MS.to_string()),
    ]
}

pub struct Fixture {
    pub dir: PathBuf,
    pub catalog: PathBuf,
}

impl Fixture {
    pub fn pattern(&self) -> String {
        format!("{}/{{name}}_{{band}}.tif", self.dir.display())
    }
}

/// Built on first use; call it outside any async runtime (it may start one).
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

fn build_fixture() -> Fixture {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    // Leftovers of earlier runs (statics are never dropped, so nothing removes them on exit).
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(600));
            if name.starts_with("kiln-serve-test-") && old {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = root.join(format!("kiln-serve-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, band, file) in datasets() {
        std::os::unix::fs::symlink(data(&file), dir.join(format!("{name}_{band}.tif"))).unwrap();
    }
    // The catalog stores canonical paths (links resolved), so removing a symbolic link after
    // ingest would not break the dataset; a hard link, removed after ingest, does: the catalog
    // then names a file that is gone. Without a hard link (another file system), the dataset
    // is added through the catalog API with a path that does not exist.
    let gone = dir.join("gone_1.tif");
    let hard_linked = std::fs::hard_link(data(LUX), &gone).is_ok();
    let catalog = dir.join("catalog.sqlite");
    let fx = Fixture { dir, catalog };
    let out = kiln(&[
        "ingest",
        &fx.pattern(),
        "-o",
        fx.catalog.to_str().unwrap(),
        "-j",
        "2",
        "--quiet",
    ]);
    assert!(out.status.success(), "ingest failed: {}", stderr(&out));
    if hard_linked {
        std::fs::remove_file(&gone).unwrap();
    } else {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let cat =
                kiln_catalog::open(&kiln_catalog::CatalogLocation::Sqlite(fx.catalog.clone()))
                    .await
                    .unwrap();
            let uri = fx.dir.join("gone_1.tif");
            cat.insert(
                &["gone".to_string(), "1".to_string()],
                uri.to_str().unwrap(),
                None,
            )
            .await
            .unwrap();
            cat.close().await;
        });
    }
    fx
}

pub fn kiln(args: &[&str]) -> Output {
    kiln_cmd(args).output().unwrap()
}

/// The binary with no `KILN_*` variable from the caller's environment.
pub fn kiln_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    for (k, _) in std::env::vars() {
        if k.starts_with("KILN_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args);
    cmd
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

pub fn temp_file(name: &str) -> PathBuf {
    let dir = fixture().dir.join("out");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

pub fn ref_dir() -> PathBuf {
    std::env::var_os("KILN_REF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ref-cache"))
}

/// The rio-tiler reference of a nearest tile, if `scripts/make_reference_tiles.sh` made it.
pub fn reference(file: &str, z: u32, x: u32, y: u32, size: u32) -> Option<NpyArray> {
    let stem = file.trim_end_matches(".tif");
    let p = ref_dir().join(format!("{stem}/nearest/{z}_{x}_{y}_{size}.npy"));
    p.exists().then(|| npy::read_npy(&p).unwrap())
}

/// Whether `scripts/make_reference_tiles.sh` has been run.
pub fn have_references() -> bool {
    ref_dir().join("manifest.json").exists()
}

/// `kiln tile FILE Z X Y -o out.npy ...`: the bytes written.
pub fn cli_tile(file: &str, z: u32, x: u32, y: u32, extra: &[&str]) -> Vec<u8> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = temp_file(&format!("cli-{n}-{z}-{x}-{y}.npy"));
    let (zs, xs, ys) = (z.to_string(), x.to_string(), y.to_string());
    let path = data(file);
    let mut args = vec![
        "tile",
        path.to_str().unwrap(),
        &zs,
        &xs,
        &ys,
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = kiln(&args);
    assert!(o.status.success(), "kiln tile {args:?}: {}", stderr(&o));
    std::fs::read(&out).unwrap()
}

pub fn catalog_json() -> &'static Vec<Value> {
    static CAT: OnceLock<Vec<Value>> = OnceLock::new();
    CAT.get_or_init(|| {
        let text = std::fs::read_to_string(data("catalog.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

pub fn catalog_entry(file: &str) -> &'static Value {
    catalog_json()
        .iter()
        .find(|e| e["file"] == file)
        .unwrap_or_else(|| panic!("{file} not in catalog.json"))
}

pub fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}
