//! End-to-end tests of collections through the `kiln` binary: `kiln ingest --collection` with
//! priorities, `kiln collection create/list/show/add/set/remove/delete` on real DEMs from the
//! shared data (through symbolic links named for each pattern), read back both as the JSON the
//! commands print and through `kiln-catalog`; and the failures a user will meet (unknown
//! collection, bad zoom range, bad date), which must exit non-zero with a message naming the
//! problem and leave the catalog as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

use kiln_catalog::{CatalogLocation, DatasetMetadata, Member, MemberRef};
use serde_json::Value;

const ETOPO5: &str = "global_etopo5_i16_cog.tif";
const RHINE: &str = "dem_rhine_basin_30s_f32_nodata.tif";
const LUX: &str = "dem_srtm30s_luxembourg_i16_lzw.tif";

/// Pixel sizes from `gdalinfo`: 5 arc-minutes (ETOPO5) and 30 arc-seconds (the other two),
/// in metres along a meridian (1° = 111 195 m on the mean sphere).
const ETOPO5_RES_M: f64 = 5.0 / 60.0 * 111_195.0;
const ARC30S_RES_M: f64 = 30.0 / 3600.0 * 111_195.0;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

/// The path the catalog stores for a shared file: canonical, links resolved.
fn stored(name: &str) -> String {
    std::fs::canonicalize(data(name))
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
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
            "kiln-collection-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// A symbolic link `rel` to a shared data file.
    fn link(&self, rel: &str, data_file: &str) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(data(data_file), &p).unwrap();
        p
    }

    fn catalog(&self) -> String {
        self.0.join("catalog.sqlite").to_str().unwrap().to_owned()
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
        .env_remove("KILN_CATALOG")
        .output()
        .expect("run kiln")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn ok(args: &[&str]) -> Output {
    let out = kiln(args);
    assert!(
        out.status.success(),
        "kiln {args:?} failed: {}",
        stderr(&out)
    );
    out
}

/// Runs a command that must fail cleanly: exit status 1, an `error:` line containing every
/// `needles` text, no panic.
#[track_caller]
fn fails(args: &[&str], needles: &[&str]) {
    let out = kiln(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "kiln {args:?}: {err}");
    assert!(err.contains("error: "), "kiln {args:?}: {err}");
    assert!(!err.contains("panicked"), "kiln {args:?} panicked: {err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "kiln {args:?}: {needle:?} not in {err}"
        );
    }
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn show(catalog: &str, name: &str) -> Value {
    json(&ok(&["collection", "show", name, "-c", catalog, "--json"]))
}

/// Each member as (keys or null, uri, priority).
fn summary(doc: &Value) -> Vec<(Value, String, i64)> {
    doc["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["keys"].clone(),
                m["uri"].as_str().unwrap().to_owned(),
                m["priority"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The collection and each dataset member's dataset metadata, through the catalog API.
fn read(catalog: &str, name: &str) -> (Vec<Member>, Vec<Option<DatasetMetadata>>) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = kiln_catalog::open(&CatalogLocation::Sqlite(catalog.into()))
            .await
            .unwrap();
        let (_, members) = c.collection(name).await.unwrap();
        let mut metadata = Vec::new();
        for m in &members {
            metadata.push(match &m.source {
                MemberRef::Dataset(keys) => c.metadata(keys).await.unwrap(),
                MemberRef::Uri(_) => None,
            });
        }
        c.close().await;
        (members, metadata)
    })
}

#[track_caller]
fn assert_close(got: &Value, expected: f64, relative: f64) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {got}"));
    assert!(
        (got - expected).abs() <= expected * relative,
        "{got} is not within {relative} of {expected}"
    );
}

/// The three DEMs ingested into one collection with priorities 0 (global), 10 (Rhine basin)
/// and 20 (Luxembourg): listed finest and highest first, with the settings given to ingest.
#[test]
fn ingest_builds_a_collection_by_priority() {
    let dir = TempDir::new("ingest");
    dir.link("low/etopo5.tif", ETOPO5);
    dir.link("mid/rhine.tif", RHINE);
    dir.link("high/lux.tif", LUX);
    let cat = dir.catalog();
    let low = dir.pattern("low/{name}.tif");
    let mid = dir.pattern("mid/{name}.tif");
    let high = dir.pattern("high/{name}.tif");
    ok(&[
        "ingest",
        &low,
        "-o",
        &cat,
        "-q",
        "--collection",
        "terrain",
        "--priority",
        "0",
    ]);
    ok(&[
        "ingest",
        &mid,
        "-o",
        &cat,
        "-q",
        "--collection",
        "terrain",
        "--priority",
        "10",
        "--min-zoom",
        "4",
        "--max-zoom",
        "12",
        "--acquired",
        "2004-07-01",
        "--nodata",
        "-9999",
    ]);
    ok(&[
        "ingest",
        &high,
        "-o",
        &cat,
        "-q",
        "--collection",
        "terrain",
        "--priority",
        "20",
    ]);

    let doc = show(&cat, "terrain");
    assert_eq!(doc["name"], "terrain");
    assert_eq!(doc["member_count"], 3);
    assert_eq!(doc["blend_px"], 0.0);
    assert_eq!(doc["key_names"], serde_json::json!(["name"]));
    assert_eq!(
        summary(&doc),
        [
            (serde_json::json!(["lux"]), stored(LUX), 20),
            (serde_json::json!(["rhine"]), stored(RHINE), 10),
            (serde_json::json!(["etopo5"]), stored(ETOPO5), 0),
        ]
    );
    let members = doc["members"].as_array().unwrap();
    for m in members {
        assert_eq!(m["source"], "dataset");
        assert_eq!(m["enabled"], true);
        assert_eq!(m["has_metadata"], true);
    }
    let rhine = &members[1];
    assert_eq!(rhine["min_zoom"], 4);
    assert_eq!(rhine["max_zoom"], 12);
    assert_eq!(rhine["acquired"], "2004-07-01");
    assert_eq!(rhine["nodata"], -9999.0);
    for unset in ["min_zoom", "max_zoom", "acquired", "nodata"] {
        assert_eq!(members[0][unset], Value::Null, "{unset}");
    }
    assert_close(&members[0]["resolution_m"], ARC30S_RES_M, 0.01);
    assert_close(&members[1]["resolution_m"], ARC30S_RES_M, 0.01);
    assert_close(&members[2]["resolution_m"], ETOPO5_RES_M, 0.01);
    // Luxembourg's bounds as gdalinfo gives them.
    let b = members[0]["bounds_wgs84"].as_array().unwrap();
    for (got, expected) in b
        .iter()
        .zip([5.741_666_7, 49.441_666_7, 6.533_333_3, 50.191_666_7])
    {
        assert!((got.as_f64().unwrap() - expected).abs() < 1e-6, "{b:?}");
    }

    // Members follow their datasets: the metadata the server gets is the dataset's.
    let (api_members, dataset_metadata) = read(&cat, "terrain");
    assert_eq!(api_members.len(), 3);
    for (m, d) in api_members.iter().zip(&dataset_metadata) {
        assert!(d.is_some());
        assert_eq!(&m.metadata, d);
    }

    // A rerun with another priority changes the member instead of adding one.
    ok(&[
        "ingest",
        &low,
        "-o",
        &cat,
        "-q",
        "--skip-existing",
        "--collection",
        "terrain",
        "--priority",
        "30",
    ]);
    let doc = show(&cat, "terrain");
    assert_eq!(doc["member_count"], 3);
    assert_eq!(
        summary(&doc)[0],
        (serde_json::json!(["etopo5"]), stored(ETOPO5), 30)
    );
    let list = json(&ok(&["collection", "list", "-c", &cat, "--json"]));
    assert_eq!(
        list,
        serde_json::json!([{
            "name": "terrain", "description": "", "blend_px": 0.0, "member_count": 3
        }])
    );
}

/// A URI member (a file outside the catalog) gets the metadata `kiln ingest` would compute,
/// stored with the member.
#[test]
fn add_uri_computes_the_metadata_ingest_computes() {
    let dir = TempDir::new("uri");
    dir.link("ds/lux.tif", LUX);
    let via_link = dir.link("elsewhere/luxembourg.tif", LUX);
    let cat = dir.catalog();
    ok(&["ingest", &dir.pattern("ds/{name}.tif"), "-o", &cat, "-q"]);
    ok(&[
        "collection",
        "create",
        "t",
        "-c",
        &cat,
        "--description",
        "uris",
        "--blend-px",
        "2",
    ]);
    ok(&[
        "collection",
        "add",
        "t",
        "-c",
        &cat,
        via_link.to_str().unwrap(),
        "--priority",
        "-3",
        "--acquired",
        "2000-02-11",
    ]);
    let doc = show(&cat, "t");
    assert_eq!(doc["description"], "uris");
    assert_eq!(doc["blend_px"], 2.0);
    let m = &doc["members"][0];
    assert_eq!(m["source"], "uri");
    assert_eq!(m["keys"], Value::Null);
    // Stored canonical, as ingest stores paths.
    assert_eq!(m["uri"], stored(LUX).as_str());
    assert_eq!(m["priority"], -3);
    assert_eq!(m["acquired"], "2000-02-11");
    assert_close(&m["resolution_m"], ARC30S_RES_M, 0.01);

    let (members, _) = read(&cat, "t");
    let stored_with_member = members[0].metadata.clone().expect("metadata stored");
    // The dataset ingested from the same file has the same metadata.
    let ingested = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = kiln_catalog::open(&CatalogLocation::Sqlite(cat.clone().into()))
            .await
            .unwrap();
        let m = c.metadata(&["lux".to_owned()]).await.unwrap();
        c.close().await;
        m
    });
    assert_eq!(Some(stored_with_member), ingested);

    // Without metadata on request; a missing file is an error naming it.
    ok(&[
        "collection",
        "add",
        "t",
        "-c",
        &cat,
        "--no-metadata",
        "s3://bucket/dem/x.tif",
    ]);
    let doc = show(&cat, "t");
    assert_eq!(doc["member_count"], 2);
    assert_eq!(doc["members"][0]["uri"], "s3://bucket/dem/x.tif");
    assert_eq!(doc["members"][0]["has_metadata"], false);
    assert_eq!(doc["members"][0]["resolution_m"], Value::Null);
    let missing = dir.pattern("nothing.tif");
    fails(
        &["collection", "add", "t", "-c", &cat, &missing],
        &["nothing.tif"],
    );
    assert_eq!(show(&cat, "t")["member_count"], 2);
}

/// Members chosen by keys, by ingest pattern and by key filter; settings changed, cleared,
/// members disabled, removed; the collection deleted while the datasets stay.
#[test]
fn add_set_remove_and_delete() {
    let dir = TempDir::new("edit");
    dir.link("dem/etopo5.tif", ETOPO5);
    dir.link("dem/rhine.tif", RHINE);
    dir.link("dem/lux.tif", LUX);
    let cat = dir.catalog();
    ok(&["ingest", &dir.pattern("dem/{name}.tif"), "-o", &cat, "-q"]);
    ok(&["collection", "create", "t", "-c", &cat]);
    ok(&[
        "collection",
        "add",
        "t",
        "-c",
        &cat,
        "--keys",
        "etopo5",
        "--priority",
        "1",
    ]);
    // The pattern goes through the link directory, the catalog holds canonical paths.
    ok(&[
        "collection",
        "add",
        "t",
        "-c",
        &cat,
        "--dataset-pattern",
        data("dem_{}.tif").to_str().unwrap(),
        "--priority",
        "5",
        "--max-zoom",
        "13",
    ]);
    let doc = show(&cat, "t");
    assert_eq!(
        summary(&doc),
        [
            (serde_json::json!(["lux"]), stored(LUX), 5),
            (serde_json::json!(["rhine"]), stored(RHINE), 5),
            (serde_json::json!(["etopo5"]), stored(ETOPO5), 1),
        ]
    );
    assert_eq!(doc["members"][0]["max_zoom"], 13);

    // By key value, by the dataset's path, by filter.
    ok(&[
        "collection",
        "set",
        "t",
        "-c",
        &cat,
        "rhine",
        "--priority",
        "9",
        "--disable",
    ]);
    ok(&[
        "collection",
        "set",
        "t",
        "-c",
        &cat,
        &stored(LUX),
        "--max-zoom",
        "none",
        "--nodata",
        "-32768",
    ]);
    ok(&[
        "collection",
        "set",
        "t",
        "-c",
        &cat,
        "--where",
        "name=ETO*",
        "--min-zoom",
        "0",
        "--max-zoom",
        "8",
    ]);
    let doc = show(&cat, "t");
    assert_eq!(
        summary(&doc),
        [
            (serde_json::json!(["rhine"]), stored(RHINE), 9),
            (serde_json::json!(["lux"]), stored(LUX), 5),
            (serde_json::json!(["etopo5"]), stored(ETOPO5), 1),
        ]
    );
    let m = doc["members"].as_array().unwrap();
    assert_eq!(m[0]["enabled"], false);
    assert_eq!(m[0]["max_zoom"], 13, "set changes only what it is given");
    assert_eq!(m[1]["max_zoom"], Value::Null);
    assert_eq!(m[1]["nodata"], -32768.0);
    assert_eq!(
        (m[2]["min_zoom"].clone(), m[2]["max_zoom"].clone()),
        (0.into(), 8.into())
    );
    ok(&["collection", "set", "t", "-c", &cat, "--all", "--enable"]);
    assert!(show(&cat, "t")["members"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["enabled"] == true));

    ok(&[
        "collection",
        "remove",
        "t",
        "-c",
        &cat,
        "rhine",
        "--keys",
        "lux",
    ]);
    assert_eq!(
        summary(&show(&cat, "t")),
        [(serde_json::json!(["etopo5"]), stored(ETOPO5), 1)]
    );
    ok(&["collection", "delete", "t", "-c", &cat]);
    let list = json(&ok(&["collection", "list", "-c", &cat, "--json"]));
    assert_eq!(list, serde_json::json!([]));
    // The datasets stayed.
    let out = ok(&[
        "ingest",
        &dir.pattern("dem/{name}.tif"),
        "-o",
        &cat,
        "--skip-existing",
    ]);
    assert!(stderr(&out).contains("skipped 3"), "{}", stderr(&out));
}

/// What a user gets wrong: clear errors, exit status 1, and nothing changed.
#[test]
fn bad_requests_fail_cleanly_and_change_nothing() {
    let dir = TempDir::new("errors");
    dir.link("dem/lux.tif", LUX);
    let cat = dir.catalog();
    ok(&[
        "ingest",
        &dir.pattern("dem/{name}.tif"),
        "-o",
        &cat,
        "-q",
        "--collection",
        "t",
    ]);
    let before = show(&cat, "t");

    let c = cat.as_str();
    let nope = &["collection \"nope\""][..];
    fails(&["collection", "show", "nope", "-c", c], nope);
    fails(
        &["collection", "add", "nope", "-c", c, "--keys", "lux"],
        nope,
    );
    fails(
        &[
            "collection",
            "set",
            "nope",
            "-c",
            c,
            "lux",
            "--priority",
            "1",
        ],
        nope,
    );
    fails(&["collection", "remove", "nope", "-c", c, "lux"], nope);
    fails(&["collection", "delete", "nope", "-c", c], nope);
    fails(
        &["collection", "update", "nope", "-c", c, "--blend-px", "1"],
        nope,
    );

    fails(
        &[
            "collection",
            "add",
            "t",
            "-c",
            c,
            "--keys",
            "lux",
            "--min-zoom",
            "10",
            "--max-zoom",
            "5",
        ],
        &["min_zoom", "10", "5"],
    );
    fails(
        &[
            "collection",
            "add",
            "t",
            "-c",
            c,
            "--keys",
            "lux",
            "--max-zoom",
            "31",
        ],
        &["max_zoom"],
    );
    fails(
        &[
            "collection",
            "set",
            "t",
            "-c",
            c,
            "lux",
            "--min-zoom",
            "14",
            "--max-zoom",
            "3",
        ],
        &["min_zoom"],
    );
    for date in ["2021-02-30", "2021-13-01", "20210101", "yesterday"] {
        fails(
            &[
                "collection",
                "add",
                "t",
                "-c",
                c,
                "--keys",
                "lux",
                "--acquired",
                date,
            ],
            &["acquired", date],
        );
    }
    fails(
        &[
            "collection",
            "set",
            "t",
            "-c",
            c,
            "lux",
            "--acquired",
            "2021-2-3",
        ],
        &["acquired"],
    );
    fails(
        &["collection", "add", "t", "-c", c, "--keys", "srtm"],
        &["no dataset (srtm)"],
    );
    fails(
        &["collection", "add", "t", "-c", c, "--keys", "a,b"],
        &["--keys", "1 key"],
    );
    fails(
        &["collection", "set", "t", "-c", c, "srtm", "--priority", "2"],
        &["no member \"srtm\""],
    );
    fails(
        &["collection", "set", "t", "-c", c, "lux"],
        &["nothing to change"],
    );
    fails(
        &["collection", "remove", "t", "-c", c, "--where", "band=x"],
        &["no key \"band\""],
    );
    fails(
        &["collection", "create", "bad/name", "-c", c],
        &["collection name"],
    );
    fails(&["collection", "create", "t", "-c", c], &["already exists"]);
    fails(
        &["collection", "update", "t", "-c", c, "--blend-px", "300"],
        &["blend_px"],
    );
    fails(
        &["collection", "create", "u", "-c", c, "--blend-px", "-1"],
        &["blend_px"],
    );
    fails(
        &["collection", "list", "-c", &dir.pattern("none.sqlite")],
        &["none.sqlite"],
    );
    assert_eq!(show(&cat, "t"), before);
    let list = json(&ok(&["collection", "list", "-c", c, "--json"]));
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "no collection was created"
    );

    // Ingest checks its member settings before touching any file or catalog.
    let fresh = dir.0.join("fresh.sqlite");
    let fresh = fresh.to_str().unwrap();
    let pattern = dir.pattern("dem/{name}.tif");
    fails(
        &[
            "ingest",
            &pattern,
            "-o",
            fresh,
            "--collection",
            "t",
            "--acquired",
            "2021-02-29",
        ],
        &["acquired"],
    );
    fails(
        &[
            "ingest",
            &pattern,
            "-o",
            fresh,
            "--collection",
            "t",
            "--min-zoom",
            "9",
            "--max-zoom",
            "2",
        ],
        &["min_zoom"],
    );
    fails(
        &["ingest", &pattern, "-o", fresh, "--priority", "3"],
        &["--collection"],
    );
    assert!(
        !Path::new(fresh).exists(),
        "a refused ingest created the catalog"
    );
    fails(
        &["ingest", &pattern, "-o", fresh, "--collection", "no/slash"],
        &["collection name"],
    );
}
