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
    BandStats, BoxFuture, Catalog, CatalogError, Dataset, DatasetMetadata, InsertOutcome, KeyDef,
    KeyFilter, Page, SCHEMA_VERSION,
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
