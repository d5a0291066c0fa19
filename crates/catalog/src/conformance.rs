//! The conformance suite every [`Catalog`] backend must pass, written against the trait only.
//!
//! Each case is an async function taking a [`TestBackend`]: a fresh, empty database of one
//! backend that can create a catalog, open it again as a new process would, inject a failure
//! between the statements of the next write, and fake a newer schema. (A bare `&dyn Catalog`
//! cannot do the last three, which the reopen, schema and atomicity cases need.) Cases panic
//! on a failed check and return `Err` on an unexpected catalog error.
//!
//! A backend runs the suite by calling every function in [`CASES`] with a new harness each
//! (see the SQLite tests in `sqlite_harness.rs`).

use std::sync::Arc;

use kiln_core::{DataType, GeoBounds};

use crate::{
    BandStats, BoxFuture, Catalog, CatalogError, CollectionInfo, Dataset, DatasetMetadata,
    InsertOutcome, KeyDef, KeyFilter, Member, MemberRef, MemberSettings, Page, SCHEMA_VERSION,
};

/// A fresh database of one backend, for one case.
pub trait TestBackend: Send + Sync {
    /// Creates the catalog (once per harness; a second call must be a conflict).
    fn create<'a>(
        &'a self,
        keys: &'a [KeyDef],
    ) -> BoxFuture<'a, Result<Box<dyn Catalog>, CatalogError>>;

    /// Opens the created catalog again, as a new process would.
    fn reopen(&self) -> BoxFuture<'_, Result<Box<dyn Catalog>, CatalogError>>;

    /// The next write transaction of any catalog from this harness runs `statements`
    /// statements and then fails as if the backend had.
    fn fail_after_statements(&self, statements: u32);

    /// Overwrites the stored schema version (a catalog written by a newer Kiln).
    fn force_schema_version(&self, version: u32) -> BoxFuture<'_, Result<(), CatalogError>>;
}

type Case = for<'a> fn(&'a dyn TestBackend) -> BoxFuture<'a, Result<(), CatalogError>>;

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("create_and_describe", |b| Box::pin(create_and_describe(b))),
    ("insert_and_read", |b| Box::pin(insert_and_read(b))),
    ("replace", |b| Box::pin(replace(b))),
    ("filter_and_order", |b| Box::pin(filter_and_order(b))),
    ("wildcard_filters", |b| Box::pin(wildcard_filters(b))),
    ("paging", |b| Box::pin(paging(b))),
    ("missing_dataset_is_not_found", |b| {
        Box::pin(missing_dataset_is_not_found(b))
    }),
    ("bad_keys_are_bad_requests", |b| {
        Box::pin(bad_keys_are_bad_requests(b))
    }),
    ("invalid_metadata_leaves_no_trace", |b| {
        Box::pin(invalid_metadata_leaves_no_trace(b))
    }),
    ("reopen_keeps_data", |b| Box::pin(reopen_keeps_data(b))),
    ("newer_schema_is_refused", |b| {
        Box::pin(newer_schema_is_refused(b))
    }),
    ("failed_writes_leave_no_trace", |b| {
        Box::pin(failed_writes_leave_no_trace(b))
    }),
    ("delete_removes_metadata", |b| {
        Box::pin(delete_removes_metadata(b))
    }),
    ("concurrent_writers", |b| Box::pin(concurrent_writers(b))),
    ("collections_create_list_get", |b| {
        Box::pin(collections_create_list_get(b))
    }),
    ("collection_members_in_precedence_order", |b| {
        Box::pin(collection_members_in_precedence_order(b))
    }),
    ("put_member_replaces_settings", |b| {
        Box::pin(put_member_replaces_settings(b))
    }),
    ("member_validation_errors", |b| {
        Box::pin(member_validation_errors(b))
    }),
    ("collection_not_found_cases", |b| {
        Box::pin(collection_not_found_cases(b))
    }),
    ("dataset_delete_leaves_collections", |b| {
        Box::pin(dataset_delete_leaves_collections(b))
    }),
    ("dataset_replace_is_followed", |b| {
        Box::pin(dataset_replace_is_followed(b))
    }),
    ("remove_member_and_delete_collection", |b| {
        Box::pin(remove_member_and_delete_collection(b))
    }),
    ("failed_collection_writes_leave_no_trace", |b| {
        Box::pin(failed_collection_writes_leave_no_trace(b))
    }),
];

/// Plausible metadata; `seed` shifts every number so that round trips compare distinct values.
pub fn sample_metadata(seed: f64) -> DatasetMetadata {
    let band = |k: f64| BandStats {
        min: -10.0 * k,
        max: 120.0 * k,
        mean: 12.5 * k,
        stdev: 3.25 * k,
        percentiles: (1..=99)
            .map(|p| -10.0 * k + f64::from(p) * 1.1 * k)
            .collect(),
    };
    DatasetMetadata {
        bounds_wgs84: GeoBounds {
            west: 5.7 + seed,
            south: 49.4,
            east: 6.6 + seed,
            north: 50.2,
        },
        footprint: serde_json::json!({
            "type": "Polygon",
            "coordinates": [[[5.7, 49.4], [6.6, 49.4], [6.6, 50.2], [5.7, 50.2], [5.7, 49.4]]]
        }),
        valid_percentage: 87.5,
        bands: vec![band(1.0 + seed), band(2.0 + seed)],
        band_count: 2,
        dtype: DataType::I16,
        extra: serde_json::json!({ "sensor": "srtm", "seed": seed }),
        header: serde_json::json!({ "images": [], "seed": seed }),
    }
}

fn two_keys() -> Result<Vec<KeyDef>, CatalogError> {
    Ok(vec![
        KeyDef::new("sensor", "Sensor that acquired the scene")?,
        KeyDef::new("date", "Acquisition date, YYYYMMDD")?,
    ])
}

fn k(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn uri(keys: &[String]) -> String {
    format!("/data/{}.tif", keys.join("_"))
}

#[track_caller]
fn assert_bad_request<T: std::fmt::Debug>(result: Result<T, CatalogError>, field: &str) {
    match result {
        Err(CatalogError::BadRequest { field: f, .. }) => assert_eq!(f, field),
        other => panic!("expected BadRequest on {field}, got {other:?}"),
    }
}

#[track_caller]
fn injected<T: std::fmt::Debug>(result: Result<T, CatalogError>, what: &str) {
    match result {
        Err(CatalogError::Backend { .. }) => {}
        other => panic!("{what}: expected the injected backend failure, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: Result<T, CatalogError>) {
    assert!(
        matches!(result, Err(CatalogError::NotFound { .. })),
        "expected NotFound, got {result:?}"
    );
}

/// 3 sensors × 3 dates, inserted out of order; returns them in key order.
async fn insert_grid(catalog: &dyn Catalog) -> Result<Vec<Dataset>, CatalogError> {
    let mut all = Vec::new();
    for sensor in ["s2", "l8", "s1"] {
        for date in ["20200301", "20190101", "20210615"] {
            let keys = k(&[sensor, date]);
            catalog.insert(&keys, &uri(&keys), None).await?;
            all.push(Dataset {
                uri: uri(&keys),
                keys,
            });
        }
    }
    all.sort_by(|a, b| a.keys.cmp(&b.keys));
    Ok(all)
}

pub async fn create_and_describe(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let keys = two_keys()?;
    let catalog = b.create(&keys).await?;
    assert_eq!(catalog.keys(), keys.as_slice());
    assert_eq!(
        catalog.keys()[1].description(),
        "Acquisition date, YYYYMMDD"
    );
    assert_eq!(catalog.schema_version(), SCHEMA_VERSION);
    assert!(!catalog.backend().is_empty());
    assert_eq!(catalog.count(&[]).await?, 0);
    assert!(catalog.datasets(&[], Page::all()).await?.is_empty());
    let again = b.create(&keys).await;
    assert!(
        matches!(again, Err(CatalogError::Conflict { .. })),
        "creating over a catalog must conflict, got {again:?}"
    );
    catalog.close().await;
    Ok(())
}

pub async fn insert_and_read(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let a = k(&["l8", "20200101"]);
    let m = sample_metadata(0.25);
    assert_eq!(
        catalog.insert(&a, "/data/a.tif", Some(&m)).await?,
        InsertOutcome::Inserted
    );
    assert_eq!(catalog.dataset(&a).await?.uri, "/data/a.tif");
    assert_eq!(catalog.dataset(&a).await?.keys, a);
    assert_eq!(catalog.metadata(&a).await?, Some(m));
    assert!(catalog.contains(&a).await?);

    let lazy = k(&["l8", "20200102"]);
    catalog.insert(&lazy, "s3://bucket/b.tif", None).await?;
    assert_eq!(catalog.metadata(&lazy).await?, None);
    assert_eq!(catalog.dataset(&lazy).await?.uri, "s3://bucket/b.tif");
    // Values are exact text: no case folding, trimming or Unicode normalisation.
    let odd = k(&["L8", " 2020 é '; DROP TABLE datasets; --"]);
    assert!(!catalog.contains(&odd).await?);
    catalog.insert(&odd, "/data/odd.tif", None).await?;
    assert_eq!(catalog.dataset(&odd).await?.keys, odd);
    assert_eq!(catalog.count(&[]).await?, 3);
    catalog.close().await;
    Ok(())
}

pub async fn replace(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let a = k(&["l8", "20200101"]);
    let (m1, m2) = (sample_metadata(1.0), sample_metadata(2.0));
    catalog.insert(&a, "/v1.tif", Some(&m1)).await?;
    assert_eq!(
        catalog.insert(&a, "/v2.tif", Some(&m2)).await?,
        InsertOutcome::Replaced
    );
    assert_eq!(catalog.dataset(&a).await?.uri, "/v2.tif");
    assert_eq!(catalog.metadata(&a).await?, Some(m2));
    // Replacing without metadata drops the old metadata: it described the old source.
    catalog.insert(&a, "/v3.tif", None).await?;
    assert_eq!(catalog.metadata(&a).await?, None);
    assert_eq!(catalog.count(&[]).await?, 1);
    catalog.set_metadata(&a, &m1).await?;
    assert_eq!(catalog.metadata(&a).await?, Some(m1.clone()));
    assert_eq!(catalog.dataset(&a).await?.uri, "/v3.tif");
    let mut m3 = m1;
    m3.extra = serde_json::json!({ "note": "recomputed" });
    catalog.set_metadata(&a, &m3).await?;
    assert_eq!(catalog.metadata(&a).await?, Some(m3));
    catalog.close().await;
    Ok(())
}

pub async fn filter_and_order(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let all = insert_grid(catalog.as_ref()).await?;
    assert_eq!(catalog.datasets(&[], Page::all()).await?, all);
    assert_eq!(all[0].keys, k(&["l8", "20190101"]));
    assert_eq!(all[8].keys, k(&["s2", "20210615"]));

    let s2 = catalog
        .datasets(&[KeyFilter::eq("sensor", "s2")], Page::all())
        .await?;
    let dates: Vec<&str> = s2.iter().map(|d| d.keys[1].as_str()).collect();
    assert_eq!(dates, ["20190101", "20200301", "20210615"]);
    assert!(s2
        .iter()
        .all(|d| d.keys[0] == "s2" && d.uri == uri(&d.keys)));

    let both = [
        KeyFilter::eq("sensor", "s1"),
        KeyFilter::any_of("date", k(&["20210615", "20190101", "19990101"])),
    ];
    let found = catalog.datasets(&both, Page::all()).await?;
    let found: Vec<Vec<String>> = found.into_iter().map(|d| d.keys).collect();
    assert_eq!(found, [k(&["s1", "20190101"]), k(&["s1", "20210615"])]);
    assert_eq!(catalog.count(&both).await?, 2);
    assert_eq!(
        catalog.count(&[KeyFilter::eq("date", "20200301")]).await?,
        3
    );
    assert!(catalog
        .datasets(&[KeyFilter::eq("sensor", "modis")], Page::all())
        .await?
        .is_empty());

    assert_bad_request(
        catalog
            .datasets(&[KeyFilter::eq("band", "red")], Page::all())
            .await,
        "filter",
    );
    let empty = KeyFilter::any_of("sensor", Vec::new());
    assert_bad_request(catalog.count(&[empty]).await, "filter");
    let no_patterns = KeyFilter::wildcard("sensor", Vec::new());
    assert_bad_request(catalog.count(&[no_patterns]).await, "filter");
    catalog.close().await;
    Ok(())
}

/// `*` patterns: any run of characters, ASCII case ignored, SQL wildcards taken literally.
pub async fn wildcard_filters(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let all = insert_grid(catalog.as_ref()).await?;
    let keys_of =
        |found: Vec<Dataset>| -> Vec<Vec<String>> { found.into_iter().map(|d| d.keys).collect() };
    let june = catalog
        .datasets(&[KeyFilter::wildcard("date", k(&["*06*"]))], Page::all())
        .await?;
    assert_eq!(
        keys_of(june),
        [
            k(&["l8", "20210615"]),
            k(&["s1", "20210615"]),
            k(&["s2", "20210615"])
        ]
    );
    // Case is ignored; several patterns are alternatives; a pattern without `*` is whole-value.
    let found = catalog
        .datasets(
            &[
                KeyFilter::wildcard("sensor", k(&["S*", "L8"])),
                KeyFilter::wildcard("date", k(&["2019*", "*0301"])),
            ],
            Page::all(),
        )
        .await?;
    assert_eq!(found.len(), 6);
    assert!(found.iter().all(|d| d.keys[1] != "20210615"));
    assert_eq!(
        catalog
            .count(&[KeyFilter::wildcard("date", k(&["2019"]))])
            .await?,
        0
    );
    assert_eq!(
        catalog
            .count(&[KeyFilter::wildcard("sensor", k(&["*"]))])
            .await?,
        all.len() as u64
    );
    // `%` and `_` are SQL's wildcards, not Kiln's: they match only themselves.
    for pattern in ["%", "s_", "*_*", "\\*"] {
        assert_eq!(
            catalog
                .count(&[KeyFilter::wildcard("sensor", k(&[pattern]))])
                .await?,
            0,
            "{pattern}"
        );
    }
    // Paging applies after the filter.
    let page = catalog
        .datasets(
            &[KeyFilter::wildcard("date", k(&["*0*"]))],
            Page::new(4, 2)?,
        )
        .await?;
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].keys, k(&["s2", "20210615"]));
    catalog.close().await;
    Ok(())
}

pub async fn paging(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let all = insert_grid(catalog.as_ref()).await?;
    let mut pages = Vec::new();
    for page in 0..3 {
        pages.push(catalog.datasets(&[], Page::new(4, page)?).await?);
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [4, 4, 1]);
    assert_eq!(pages.concat(), all);
    assert!(catalog.datasets(&[], Page::new(4, 3)?).await?.is_empty());
    assert!(catalog
        .datasets(&[], Page::new(4, u32::MAX)?)
        .await?
        .is_empty());
    let filtered = catalog
        .datasets(&[KeyFilter::eq("date", "20190101")], Page::new(2, 1)?)
        .await?;
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].keys, k(&["s2", "20190101"]));
    assert_bad_request(Page::new(0, 0), "limit");
    assert_bad_request(Page::new(crate::MAX_PAGE_LIMIT + 1, 0), "limit");
    catalog.close().await;
    Ok(())
}

pub async fn missing_dataset_is_not_found(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    catalog.insert(&k(&["l8", "1"]), "/a.tif", None).await?;
    let missing = k(&["l8", "2"]);
    assert_not_found(catalog.dataset(&missing).await);
    assert_not_found(catalog.metadata(&missing).await);
    assert_not_found(catalog.delete(&missing).await);
    assert_not_found(catalog.set_metadata(&missing, &sample_metadata(0.0)).await);
    assert!(!catalog.contains(&missing).await?);
    assert_eq!(catalog.count(&[]).await?, 1);
    catalog.close().await;
    Ok(())
}

pub async fn bad_keys_are_bad_requests(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let m = sample_metadata(0.0);
    for wrong in [k(&["l8"]), k(&["l8", "1", "extra"]), Vec::new()] {
        assert_bad_request(catalog.insert(&wrong, "/a.tif", Some(&m)).await, "keys");
        assert_bad_request(catalog.dataset(&wrong).await, "keys");
        assert_bad_request(catalog.metadata(&wrong).await, "keys");
        assert_bad_request(catalog.set_metadata(&wrong, &m).await, "keys");
        assert_bad_request(catalog.delete(&wrong).await, "keys");
        assert_bad_request(catalog.contains(&wrong).await, "keys");
    }
    for bad_value in ["", "a/b", "tab\there"] {
        assert_bad_request(
            catalog.insert(&k(&["l8", bad_value]), "/a.tif", None).await,
            "key value",
        );
    }
    assert_bad_request(catalog.insert(&k(&["l8", "1"]), "", None).await, "uri");
    assert_eq!(catalog.count(&[]).await?, 0);
    catalog.close().await;
    Ok(())
}

pub async fn invalid_metadata_leaves_no_trace(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let mut bad = sample_metadata(0.0);
    bad.valid_percentage = f64::NAN;
    let fresh = k(&["l8", "new"]);
    assert_bad_request(
        catalog.insert(&fresh, "/new.tif", Some(&bad)).await,
        "metadata.valid_percentage",
    );
    assert!(!catalog.contains(&fresh).await?);

    let old = k(&["l8", "old"]);
    let good = sample_metadata(3.0);
    catalog.insert(&old, "/old.tif", Some(&good)).await?;
    assert_bad_request(
        catalog.insert(&old, "/replacement.tif", Some(&bad)).await,
        "metadata.valid_percentage",
    );
    assert_bad_request(
        catalog.set_metadata(&old, &bad).await,
        "metadata.valid_percentage",
    );
    assert_eq!(catalog.dataset(&old).await?.uri, "/old.tif");
    assert_eq!(catalog.metadata(&old).await?, Some(good));
    assert_eq!(catalog.count(&[]).await?, 1);
    catalog.close().await;
    Ok(())
}

pub async fn reopen_keeps_data(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let keys = two_keys()?;
    let catalog = b.create(&keys).await?;
    let all = insert_grid(catalog.as_ref()).await?;
    let m = sample_metadata(0.5);
    catalog.set_metadata(&all[4].keys, &m).await?;
    catalog.close().await;
    drop(catalog);

    let reopened = b.reopen().await?;
    assert_eq!(reopened.keys(), keys.as_slice());
    assert_eq!(reopened.schema_version(), SCHEMA_VERSION);
    assert_eq!(reopened.datasets(&[], Page::all()).await?, all);
    assert_eq!(reopened.metadata(&all[4].keys).await?, Some(m));
    assert_eq!(reopened.metadata(&all[3].keys).await?, None);
    reopened.close().await;
    Ok(())
}

pub async fn newer_schema_is_refused(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    catalog.close().await;
    drop(catalog);
    b.force_schema_version(SCHEMA_VERSION + 1).await?;
    match b.reopen().await {
        Err(CatalogError::Schema { reason, .. }) => {
            assert!(reason.contains("newer"), "unclear reason: {reason}");
            assert!(
                reason.contains(&(SCHEMA_VERSION + 1).to_string()),
                "{reason}"
            );
        }
        other => panic!("expected a schema error, got {other:?}"),
    }
    // The refusal must not have changed the stored version (no downgrade "migration").
    b.force_schema_version(SCHEMA_VERSION).await?;
    let back = b.reopen().await?;
    assert_eq!(back.schema_version(), SCHEMA_VERSION);
    back.close().await;
    Ok(())
}

pub async fn failed_writes_leave_no_trace(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let a = k(&["l8", "a"]);
    let m1 = sample_metadata(1.0);
    catalog.insert(&a, "/a1.tif", Some(&m1)).await?;

    // A new dataset cut after its row, and after its metadata row (before commit).
    let fresh = k(&["l8", "b"]);
    for cut in 0..2 {
        b.fail_after_statements(cut);
        injected(
            catalog
                .insert(&fresh, "/b.tif", Some(&sample_metadata(2.0)))
                .await,
            "insert",
        );
        assert!(
            !catalog.contains(&fresh).await?,
            "cut {cut}: half-inserted dataset"
        );
        assert_eq!(catalog.count(&[]).await?, 1);
    }
    // A replacement cut after each of its three statements.
    for cut in 0..3 {
        b.fail_after_statements(cut);
        injected(
            catalog
                .insert(&a, "/a2.tif", Some(&sample_metadata(9.0)))
                .await,
            "replace",
        );
        assert_eq!(catalog.dataset(&a).await?.uri, "/a1.tif", "cut {cut}");
        assert_eq!(catalog.metadata(&a).await?, Some(m1.clone()), "cut {cut}");
    }
    for cut in 0..2 {
        b.fail_after_statements(cut);
        injected(
            catalog.set_metadata(&a, &sample_metadata(9.0)).await,
            "set_metadata",
        );
        assert_eq!(catalog.metadata(&a).await?, Some(m1.clone()), "cut {cut}");
        b.fail_after_statements(cut);
        injected(catalog.delete(&a).await, "delete");
        assert_eq!(catalog.metadata(&a).await?, Some(m1.clone()), "cut {cut}");
    }
    catalog.close().await;
    drop(catalog);

    // What a new process sees, and the retry that completes the work.
    let reopened = b.reopen().await?;
    assert_eq!(reopened.count(&[]).await?, 1);
    assert_eq!(reopened.metadata(&a).await?, Some(m1));
    let m2 = sample_metadata(2.0);
    reopened.insert(&fresh, "/b.tif", Some(&m2)).await?;
    assert_eq!(reopened.metadata(&fresh).await?, Some(m2));
    reopened.close().await;
    Ok(())
}

pub async fn delete_removes_metadata(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let a = k(&["l8", "a"]);
    catalog
        .insert(&a, "/a.tif", Some(&sample_metadata(1.0)))
        .await?;
    catalog.delete(&a).await?;
    assert!(!catalog.contains(&a).await?);
    assert_not_found(catalog.metadata(&a).await);
    assert_not_found(catalog.delete(&a).await);
    // A re-inserted dataset may get the old row id back: it must not inherit old metadata.
    catalog.insert(&a, "/a.tif", None).await?;
    assert_eq!(catalog.metadata(&a).await?, None);
    catalog.close().await;
    Ok(())
}

/// Parallel writers on one catalog handle and on a second handle to the same database (two
/// ingest processes): all writes land, none fails with a lock error.
pub async fn concurrent_writers(b: &dyn TestBackend) -> Result<(), CatalogError> {
    const TASKS: usize = 8;
    const PER_TASK: usize = 5;
    let first: Arc<dyn Catalog> = Arc::from(b.create(&two_keys()?).await?);
    let second: Arc<dyn Catalog> = Arc::from(b.reopen().await?);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let catalog = Arc::clone(if t % 2 == 0 { &first } else { &second });
        tasks.spawn(async move {
            for i in 0..PER_TASK {
                let keys = vec![format!("t{t}"), format!("{i}")];
                let m = sample_metadata(f64::from(u32::try_from(i).unwrap_or(0)));
                catalog.insert(&keys, &uri(&keys), Some(&m)).await?;
            }
            Ok::<_, CatalogError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(result) => result?,
            Err(e) => panic!("writer task failed: {e}"),
        }
    }
    let total = u64::try_from(TASKS * PER_TASK).unwrap_or(u64::MAX);
    assert_eq!(first.count(&[]).await?, total);
    assert_eq!(second.count(&[]).await?, total);
    let probe = vec!["t7".to_owned(), "4".to_owned()];
    assert_eq!(second.metadata(&probe).await?, Some(sample_metadata(4.0)));
    first.close().await;
    second.close().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Collections

fn dataset_ref(values: &[&str]) -> MemberRef {
    MemberRef::Dataset(k(values))
}

fn uri_ref(uri: &str) -> MemberRef {
    MemberRef::Uri(uri.to_owned())
}

fn priority(p: i32) -> MemberSettings {
    MemberSettings {
        priority: p,
        ..MemberSettings::default()
    }
}

/// The members' refs, in the order the catalog lists them.
async fn member_refs(catalog: &dyn Catalog, name: &str) -> Result<Vec<MemberRef>, CatalogError> {
    let (_, members) = catalog.collection(name).await?;
    Ok(members.into_iter().map(|m| m.source).collect())
}

async fn member_count(catalog: &dyn Catalog, name: &str) -> Result<u64, CatalogError> {
    Ok(catalog.collection(name).await?.0.member_count)
}

pub async fn collections_create_list_get(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    assert!(catalog.collections().await?.is_empty());
    assert!(catalog.create_collection("terrain", "Global DEM").await?);
    assert!(catalog.create_collection("bathy-2024.v1", "").await?);
    assert!(catalog.create_collection("Alps_30m", "").await?);
    // Existing: reported, and the stored description is kept.
    assert!(!catalog.create_collection("terrain", "other text").await?);
    let listed = catalog.collections().await?;
    let names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
    // Byte order: upper case before lower case, digits and '-' before letters.
    assert_eq!(names, ["Alps_30m", "bathy-2024.v1", "terrain"]);
    assert_eq!(
        listed[2],
        CollectionInfo {
            name: "terrain".into(),
            description: "Global DEM".into(),
            blend_px: 0.0,
            member_count: 0,
        }
    );
    let (info, members) = catalog.collection("terrain").await?;
    assert_eq!(info, listed[2]);
    assert!(members.is_empty());
    // Names compare exactly.
    assert_not_found(catalog.collection("Terrain").await);

    catalog
        .update_collection("terrain", Some("Mapzen-style terrain"), Some(2.5))
        .await?;
    catalog
        .update_collection("terrain", None, Some(0.0))
        .await?;
    catalog
        .update_collection("terrain", Some("Final"), None)
        .await?;
    let (info, _) = catalog.collection("terrain").await?;
    assert_eq!(info.description, "Final");
    assert_eq!(info.blend_px, 0.0);
    catalog
        .update_collection("terrain", None, Some(256.0))
        .await?;
    assert_eq!(catalog.collection("terrain").await?.0.blend_px, 256.0);
    catalog.update_collection("terrain", None, None).await?;

    for bad in [f64::NAN, -1.0, 256.5, f64::INFINITY] {
        assert_bad_request(
            catalog.update_collection("terrain", None, Some(bad)).await,
            "blend_px",
        );
    }
    assert_eq!(catalog.collection("terrain").await?.0.blend_px, 256.0);
    let long = "c".repeat(crate::MAX_COLLECTION_NAME_CHARS + 1);
    for bad in ["", "-dem", "a b", "a/b", "dém", long.as_str()] {
        assert_bad_request(catalog.create_collection(bad, "").await, "collection name");
        assert_bad_request(catalog.collection(bad).await, "collection name");
    }
    let long_text = "d".repeat(crate::MAX_DESCRIPTION_CHARS + 1);
    assert_bad_request(
        catalog.create_collection("x", &long_text).await,
        "collection description",
    );
    assert_eq!(catalog.collections().await?.len(), 3);
    catalog.close().await;
    drop(catalog);

    let reopened = b.reopen().await?;
    assert_eq!(reopened.collections().await?.len(), 3);
    assert_eq!(reopened.collection("terrain").await?.0.blend_px, 256.0);
    reopened.close().await;
    Ok(())
}

pub async fn collection_members_in_precedence_order(
    b: &dyn TestBackend,
) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let (ma, mb) = (sample_metadata(1.0), sample_metadata(2.0));
    catalog
        .insert(&k(&["srtm", "a"]), "/dem/a.tif", Some(&ma))
        .await?;
    catalog
        .insert(&k(&["srtm", "b"]), "/dem/b.tif", Some(&mb))
        .await?;
    catalog
        .insert(&k(&["etopo", "c"]), "/dem/c.tif", None)
        .await?;
    catalog.create_collection("terrain", "").await?;

    let stored = sample_metadata(7.0);
    let lidar = MemberSettings {
        priority: 10,
        min_zoom: Some(8),
        max_zoom: Some(16),
        acquired: Some("2023-06-30".into()),
        enabled: true,
        nodata: Some(-9999.0),
    };
    // Added in this order: a (0), lidar URI (10), b (10), c (-5), a second URI (0).
    let adds: Vec<(MemberRef, MemberSettings, Option<&DatasetMetadata>)> = vec![
        (dataset_ref(&["srtm", "a"]), priority(0), None),
        (
            uri_ref("s3://bucket/lidar.tif"),
            lidar.clone(),
            Some(&stored),
        ),
        (dataset_ref(&["srtm", "b"]), priority(10), None),
        (dataset_ref(&["etopo", "c"]), priority(-5), None),
        (uri_ref("/dem/plain.tif"), priority(0), None),
    ];
    for (source, settings, metadata) in &adds {
        assert_eq!(
            catalog
                .put_member("terrain", source, settings, *metadata)
                .await?,
            InsertOutcome::Inserted,
            "{source}"
        );
    }
    let (info, members) = catalog.collection("terrain").await?;
    assert_eq!(info.member_count, 5);
    let expected = vec![
        Member {
            source: uri_ref("s3://bucket/lidar.tif"),
            settings: lidar,
            uri: "s3://bucket/lidar.tif".into(),
            metadata: Some(stored),
        },
        Member {
            source: dataset_ref(&["srtm", "b"]),
            settings: priority(10),
            uri: "/dem/b.tif".into(),
            metadata: Some(mb),
        },
        Member {
            source: dataset_ref(&["srtm", "a"]),
            settings: priority(0),
            uri: "/dem/a.tif".into(),
            metadata: Some(ma),
        },
        Member {
            source: uri_ref("/dem/plain.tif"),
            settings: priority(0),
            uri: "/dem/plain.tif".into(),
            metadata: None,
        },
        Member {
            source: dataset_ref(&["etopo", "c"]),
            settings: priority(-5),
            uri: "/dem/c.tif".into(),
            metadata: None,
        },
    ];
    assert_eq!(members, expected);
    assert_eq!(catalog.collections().await?[0].member_count, 5);

    // A dataset and a URI may belong to several collections; each has its own settings.
    catalog.create_collection("alps", "").await?;
    catalog
        .put_member("alps", &dataset_ref(&["srtm", "a"]), &priority(99), None)
        .await?;
    catalog
        .put_member("alps", &uri_ref("/dem/plain.tif"), &priority(1), None)
        .await?;
    let (_, alps) = catalog.collection("alps").await?;
    assert_eq!(alps.len(), 2);
    assert_eq!(alps[0].settings.priority, 99);
    assert_eq!(alps[0].uri, "/dem/a.tif");
    assert_eq!(catalog.collection("terrain").await?.1, expected);
    catalog.close().await;
    drop(catalog);

    let reopened = b.reopen().await?;
    assert_eq!(reopened.collection("terrain").await?.1, expected);
    reopened.close().await;
    Ok(())
}

pub async fn put_member_replaces_settings(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    catalog.insert(&k(&["srtm", "a"]), "/a.tif", None).await?;
    catalog.insert(&k(&["srtm", "b"]), "/b.tif", None).await?;
    catalog.create_collection("t", "").await?;
    let a = dataset_ref(&["srtm", "a"]);
    let b_ref = dataset_ref(&["srtm", "b"]);
    let u = uri_ref("/u.tif");
    let m1 = sample_metadata(1.0);
    catalog.put_member("t", &a, &priority(5), None).await?;
    catalog.put_member("t", &b_ref, &priority(5), None).await?;
    catalog.put_member("t", &u, &priority(5), Some(&m1)).await?;
    assert_eq!(
        member_refs(catalog.as_ref(), "t").await?,
        [a.clone(), b_ref.clone(), u.clone()]
    );

    // Same ref again: settings replaced, no second member, place by first addition kept.
    let changed = MemberSettings {
        priority: 5,
        min_zoom: Some(3),
        max_zoom: Some(3),
        acquired: Some("1999-12-31".into()),
        enabled: false,
        nodata: Some(0.0),
    };
    assert_eq!(
        catalog.put_member("t", &a, &changed, None).await?,
        InsertOutcome::Replaced
    );
    let (info, members) = catalog.collection("t").await?;
    assert_eq!(info.member_count, 3);
    assert_eq!(members[0].source, a);
    assert_eq!(members[0].settings, changed);
    // Back to defaults: every optional setting cleared.
    catalog.put_member("t", &a, &priority(5), None).await?;
    assert_eq!(catalog.collection("t").await?.1[0].settings, priority(5));

    // A URI member's metadata: None keeps it, Some replaces it.
    assert_eq!(
        catalog.put_member("t", &u, &priority(6), None).await?,
        InsertOutcome::Replaced
    );
    let (_, members) = catalog.collection("t").await?;
    assert_eq!(members[0].source, u);
    assert_eq!(members[0].metadata, Some(m1));
    let m2 = sample_metadata(2.0);
    catalog.put_member("t", &u, &priority(6), Some(&m2)).await?;
    assert_eq!(catalog.collection("t").await?.1[0].metadata, Some(m2));
    // Raising b above a moves it; lowering it back puts it after a again (first addition).
    catalog.put_member("t", &b_ref, &priority(7), None).await?;
    assert_eq!(
        member_refs(catalog.as_ref(), "t").await?,
        [b_ref.clone(), u.clone(), a.clone()]
    );
    catalog.put_member("t", &b_ref, &priority(5), None).await?;
    catalog.put_member("t", &u, &priority(5), None).await?;
    assert_eq!(member_refs(catalog.as_ref(), "t").await?, [a, b_ref, u]);
    assert_eq!(member_count(catalog.as_ref(), "t").await?, 3);
    catalog.close().await;
    Ok(())
}

pub async fn member_validation_errors(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    catalog.insert(&k(&["srtm", "a"]), "/a.tif", None).await?;
    catalog.create_collection("t", "").await?;
    let a = dataset_ref(&["srtm", "a"]);
    let u = uri_ref("/u.tif");
    let with = |f: fn(&mut MemberSettings)| {
        let mut s = MemberSettings::default();
        f(&mut s);
        s
    };
    let cases: Vec<(MemberSettings, &str)> = vec![
        (
            with(|s| {
                s.min_zoom = Some(10);
                s.max_zoom = Some(9);
            }),
            "min_zoom",
        ),
        (with(|s| s.max_zoom = Some(31)), "max_zoom"),
        (with(|s| s.min_zoom = Some(200)), "min_zoom"),
        (with(|s| s.acquired = Some("2021-02-29".into())), "acquired"),
        (with(|s| s.acquired = Some("20210101".into())), "acquired"),
        (with(|s| s.acquired = Some("2021-13-01".into())), "acquired"),
        (with(|s| s.acquired = Some(String::new())), "acquired"),
        (with(|s| s.nodata = Some(f64::NAN)), "nodata"),
        (with(|s| s.nodata = Some(f64::INFINITY)), "nodata"),
    ];
    for (settings, field) in &cases {
        assert_bad_request(catalog.put_member("t", &a, settings, None).await, field);
        assert_bad_request(catalog.put_member("t", &u, settings, None).await, field);
    }
    let ok = MemberSettings::default();
    let m = sample_metadata(0.0);
    assert_bad_request(catalog.put_member("t", &a, &ok, Some(&m)).await, "metadata");
    let mut bad_m = sample_metadata(0.0);
    bad_m.valid_percentage = 101.0;
    assert_bad_request(
        catalog.put_member("t", &u, &ok, Some(&bad_m)).await,
        "metadata.valid_percentage",
    );
    assert_bad_request(
        catalog.put_member("t", &uri_ref(""), &ok, None).await,
        "uri",
    );
    let huge = uri_ref(&format!("/{}", "x".repeat(crate::validate::MAX_URI_BYTES)));
    assert_bad_request(catalog.put_member("t", &huge, &ok, None).await, "uri");
    assert_bad_request(
        catalog
            .put_member("t", &uri_ref("/a\n.tif"), &ok, None)
            .await,
        "uri",
    );
    assert_bad_request(
        catalog
            .put_member("t", &dataset_ref(&["srtm"]), &ok, None)
            .await,
        "keys",
    );
    assert_bad_request(
        catalog
            .put_member("t", &dataset_ref(&["srtm", "a/b"]), &ok, None)
            .await,
        "key value",
    );
    assert_bad_request(
        catalog.put_member("not a name", &a, &ok, None).await,
        "collection name",
    );
    assert_bad_request(catalog.remove_member("t", &uri_ref("")).await, "uri");
    assert_eq!(member_count(catalog.as_ref(), "t").await?, 0);

    // An existing member is left as it was by a refused change.
    catalog.put_member("t", &u, &priority(3), Some(&m)).await?;
    assert_bad_request(
        catalog.put_member("t", &u, &cases[0].0, Some(&m)).await,
        "min_zoom",
    );
    let (_, members) = catalog.collection("t").await?;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].settings, priority(3));
    assert_eq!(members[0].metadata, Some(m));
    catalog.close().await;
    Ok(())
}

pub async fn collection_not_found_cases(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    catalog.insert(&k(&["srtm", "a"]), "/a.tif", None).await?;
    let a = dataset_ref(&["srtm", "a"]);
    let ok = MemberSettings::default();
    match catalog.put_member("nope", &a, &ok, None).await {
        Err(CatalogError::NotFound { what, .. }) => assert!(what.contains("nope"), "{what}"),
        other => panic!("expected NotFound naming the collection, got {other:?}"),
    }
    assert_not_found(catalog.collection("nope").await);
    assert_not_found(catalog.update_collection("nope", Some("x"), None).await);
    assert_not_found(catalog.update_collection("nope", None, None).await);
    assert_not_found(catalog.remove_member("nope", &a).await);
    assert_not_found(catalog.delete_collection("nope").await);
    assert!(catalog.collections().await?.is_empty(), "nothing created");

    catalog.create_collection("t", "").await?;
    match catalog
        .put_member("t", &dataset_ref(&["srtm", "zz"]), &ok, None)
        .await
    {
        Err(CatalogError::NotFound { what, .. }) => assert!(what.contains("zz"), "{what}"),
        other => panic!("expected NotFound naming the dataset, got {other:?}"),
    }
    // Not members (yet): a dataset, a URI, a dataset that does not exist.
    assert_not_found(catalog.remove_member("t", &a).await);
    assert_not_found(catalog.remove_member("t", &uri_ref("/a.tif")).await);
    assert_not_found(
        catalog
            .remove_member("t", &dataset_ref(&["srtm", "zz"]))
            .await,
    );
    // A dataset's URI is not the dataset: the two refs are different members.
    catalog.put_member("t", &a, &ok, None).await?;
    assert_not_found(catalog.remove_member("t", &uri_ref("/a.tif")).await);
    assert_eq!(member_count(catalog.as_ref(), "t").await?, 1);
    catalog.close().await;
    Ok(())
}

pub async fn dataset_delete_leaves_collections(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let (a, c) = (k(&["srtm", "a"]), k(&["srtm", "c"]));
    catalog
        .insert(&a, "/a.tif", Some(&sample_metadata(1.0)))
        .await?;
    catalog.insert(&c, "/c.tif", None).await?;
    for name in ["one", "two"] {
        catalog.create_collection(name, "").await?;
        catalog
            .put_member(name, &MemberRef::Dataset(a.clone()), &priority(1), None)
            .await?;
        catalog
            .put_member(name, &MemberRef::Dataset(c.clone()), &priority(0), None)
            .await?;
        catalog
            .put_member(name, &uri_ref("/a.tif"), &priority(0), None)
            .await?;
    }
    // A delete cut after each of its statements changes nothing.
    for cut in 0..3 {
        b.fail_after_statements(cut);
        injected(catalog.delete(&a).await, "delete");
        assert!(catalog.contains(&a).await?, "cut {cut}");
        assert_eq!(member_count(catalog.as_ref(), "one").await?, 3, "cut {cut}");
    }
    catalog.delete(&a).await?;
    for name in ["one", "two"] {
        assert_eq!(
            member_refs(catalog.as_ref(), name).await?,
            [MemberRef::Dataset(c.clone()), uri_ref("/a.tif")],
            "{name}"
        );
        assert_eq!(member_count(catalog.as_ref(), name).await?, 2);
    }
    // Inserting the keys again makes a new dataset, which is nobody's member.
    catalog.insert(&a, "/a2.tif", None).await?;
    assert_eq!(member_count(catalog.as_ref(), "one").await?, 2);
    catalog.close().await;
    Ok(())
}

pub async fn dataset_replace_is_followed(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let a = k(&["srtm", "a"]);
    let (m1, m2) = (sample_metadata(1.0), sample_metadata(2.0));
    catalog.insert(&a, "/v1.tif", Some(&m1)).await?;
    catalog.create_collection("t", "").await?;
    let settings = MemberSettings {
        priority: 4,
        nodata: Some(-1.0),
        ..MemberSettings::default()
    };
    catalog
        .put_member("t", &MemberRef::Dataset(a.clone()), &settings, None)
        .await?;
    assert_eq!(
        catalog.insert(&a, "/v2.tif", Some(&m2)).await?,
        InsertOutcome::Replaced
    );
    let (_, members) = catalog.collection("t").await?;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].uri, "/v2.tif");
    assert_eq!(members[0].metadata, Some(m2));
    assert_eq!(members[0].settings, settings);
    catalog.insert(&a, "/v3.tif", None).await?;
    let (_, members) = catalog.collection("t").await?;
    assert_eq!(members[0].uri, "/v3.tif");
    assert_eq!(members[0].metadata, None);
    catalog.set_metadata(&a, &m1).await?;
    assert_eq!(catalog.collection("t").await?.1[0].metadata, Some(m1));
    catalog.close().await;
    Ok(())
}

pub async fn remove_member_and_delete_collection(b: &dyn TestBackend) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let a = k(&["srtm", "a"]);
    catalog.insert(&a, "/a.tif", None).await?;
    catalog.create_collection("t", "first").await?;
    catalog.create_collection("keep", "").await?;
    let da = MemberRef::Dataset(a.clone());
    let u = uri_ref("/u.tif");
    let m = sample_metadata(3.0);
    catalog.put_member("t", &da, &priority(1), None).await?;
    catalog.put_member("t", &u, &priority(0), Some(&m)).await?;
    catalog.put_member("keep", &u, &priority(0), None).await?;

    catalog.remove_member("t", &da).await?;
    assert_eq!(
        member_refs(catalog.as_ref(), "t").await?,
        std::slice::from_ref(&u)
    );
    assert_not_found(catalog.remove_member("t", &da).await);
    assert!(catalog.contains(&a).await?, "the dataset stays");
    // Removed and added again: a new member, without the old one's metadata.
    catalog.remove_member("t", &u).await?;
    catalog.put_member("t", &u, &priority(0), None).await?;
    assert_eq!(catalog.collection("t").await?.1[0].metadata, None);
    catalog.put_member("t", &u, &priority(0), Some(&m)).await?;
    catalog.put_member("t", &da, &priority(1), None).await?;

    catalog.delete_collection("t").await?;
    assert_not_found(catalog.collection("t").await);
    assert_not_found(catalog.delete_collection("t").await);
    let names: Vec<String> = catalog
        .collections()
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["keep"]);
    assert_eq!(
        member_refs(catalog.as_ref(), "keep").await?,
        std::slice::from_ref(&u)
    );
    assert!(catalog.contains(&a).await?);
    // A new collection of the same name starts empty, with its own description.
    assert!(catalog.create_collection("t", "second").await?);
    let (info, members) = catalog.collection("t").await?;
    assert_eq!(info.description, "second");
    assert!(members.is_empty());
    catalog.put_member("t", &u, &priority(0), None).await?;
    assert_eq!(catalog.collection("t").await?.1[0].metadata, None);
    // The dataset can still be deleted (no stale membership holds it).
    catalog.delete(&a).await?;
    catalog.close().await;
    Ok(())
}

pub async fn failed_collection_writes_leave_no_trace(
    b: &dyn TestBackend,
) -> Result<(), CatalogError> {
    let catalog = b.create(&two_keys()?).await?;
    let a = k(&["srtm", "a"]);
    catalog.insert(&a, "/a.tif", None).await?;
    let da = MemberRef::Dataset(a);
    let u = uri_ref("/u.tif");
    let m1 = sample_metadata(1.0);

    b.fail_after_statements(0);
    injected(catalog.create_collection("t", "").await, "create");
    assert!(catalog.collections().await?.is_empty());
    catalog.create_collection("t", "desc").await?;

    // A new URI member with metadata, cut after its row and after its metadata.
    for cut in 0..2 {
        b.fail_after_statements(cut);
        injected(
            catalog.put_member("t", &u, &priority(1), Some(&m1)).await,
            "put new",
        );
        assert_eq!(member_count(catalog.as_ref(), "t").await?, 0, "cut {cut}");
    }
    catalog.put_member("t", &u, &priority(1), Some(&m1)).await?;
    catalog.put_member("t", &da, &priority(0), None).await?;
    let before = catalog.collection("t").await?;

    // Replacing settings and metadata, cut after each of its three statements.
    for cut in 0..3 {
        b.fail_after_statements(cut);
        injected(
            catalog
                .put_member("t", &u, &priority(9), Some(&sample_metadata(9.0)))
                .await,
            "put existing",
        );
        assert_eq!(catalog.collection("t").await?, before, "cut {cut}");
    }
    for cut in 0..2 {
        b.fail_after_statements(cut);
        injected(catalog.remove_member("t", &u).await, "remove");
        assert_eq!(catalog.collection("t").await?, before, "cut {cut}");
        b.fail_after_statements(cut);
        injected(
            catalog.update_collection("t", Some("x"), Some(3.0)).await,
            "update",
        );
        assert_eq!(catalog.collection("t").await?, before, "cut {cut}");
    }
    for cut in 0..3 {
        b.fail_after_statements(cut);
        injected(catalog.delete_collection("t").await, "delete collection");
        assert_eq!(catalog.collection("t").await?, before, "cut {cut}");
    }
    catalog.close().await;
    drop(catalog);
    let reopened = b.reopen().await?;
    assert_eq!(reopened.collection("t").await?, before);
    reopened.close().await;
    Ok(())
}
