//! The SQLite side of the conformance suite: a fresh database file in a private temporary
//! directory per harness, removed on drop, and the failure hook wired into every catalog the
//! harness opens.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::conformance::TestBackend;
use crate::fault::Faults;
use crate::{BoxFuture, Catalog, CatalogError, KeyDef, SqliteCatalog};

/// One SQLite database for one conformance test.
#[derive(Debug)]
pub struct SqliteHarness {
    dir: PathBuf,
    path: PathBuf,
    faults: Arc<Faults>,
}

impl SqliteHarness {
    /// A harness over `catalog.sqlite` in a new directory under the system temp dir.
    pub fn new() -> std::io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "kiln-catalog-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir)?;
        let path = dir.join("catalog.sqlite");
        Ok(Self {
            dir,
            path,
            faults: Arc::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn wire(&self, mut catalog: SqliteCatalog) -> Box<dyn Catalog> {
        catalog.faults = Arc::clone(&self.faults);
        Box::new(catalog)
    }
}

impl Drop for SqliteHarness {
    fn drop(&mut self) {
        // Best effort: a leftover temp dir is harmless.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestBackend for SqliteHarness {
    fn create<'a>(
        &'a self,
        keys: &'a [KeyDef],
    ) -> BoxFuture<'a, Result<Box<dyn Catalog>, CatalogError>> {
        Box::pin(async move { Ok(self.wire(SqliteCatalog::create(&self.path, keys).await?)) })
    }

    fn reopen(&self) -> BoxFuture<'_, Result<Box<dyn Catalog>, CatalogError>> {
        Box::pin(async move { Ok(self.wire(SqliteCatalog::open(&self.path).await?)) })
    }

    fn fail_after_statements(&self, statements: u32) {
        self.faults.fail_after(statements);
    }

    fn force_schema_version(&self, version: u32) -> BoxFuture<'_, Result<(), CatalogError>> {
        Box::pin(async move {
            // A raw connection: opening a catalog would refuse (or migrate) the version.
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&self.path);
            let result = async {
                let pool = sqlx::SqlitePool::connect_with(options).await?;
                let done = sqlx::query("UPDATE schema_version SET version = ?")
                    .bind(i64::from(version))
                    .execute(&pool)
                    .await;
                pool.close().await;
                done
            }
            .await;
            result.map(drop).map_err(|e| CatalogError::Backend {
                catalog: self.path.display().to_string(),
                operation: "force schema version",
                source: Box::new(e),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{self, sample_metadata, CASES};
    use crate::sqlite::{migrate, Migration};
    use crate::{Page, SCHEMA_VERSION};

    fn harness() -> Result<SqliteHarness, CatalogError> {
        SqliteHarness::new().map_err(|e| CatalogError::Backend {
            catalog: "temp dir".into(),
            operation: "create temp dir",
            source: Box::new(e),
        })
    }

    macro_rules! sqlite_conformance {
        ($($case:ident),* $(,)?) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> Result<(), CatalogError> {
                    conformance::$case(&harness()?).await
                }
            )*

            #[test]
            fn every_conformance_case_runs_on_sqlite() {
                let listed: Vec<&str> = CASES.iter().map(|(name, _)| *name).collect();
                assert_eq!(listed, [$(stringify!($case)),*]);
            }
        };
    }

    sqlite_conformance!(
        create_and_describe,
        insert_and_read,
        replace,
        filter_and_order,
        wildcard_filters,
        paging,
        missing_dataset_is_not_found,
        bad_keys_are_bad_requests,
        invalid_metadata_leaves_no_trace,
        reopen_keeps_data,
        newer_schema_is_refused,
        failed_writes_leave_no_trace,
        delete_removes_metadata,
        concurrent_writers,
        collections_create_list_get,
        collection_members_in_precedence_order,
        put_member_replaces_settings,
        member_validation_errors,
        collection_not_found_cases,
        dataset_delete_leaves_collections,
        dataset_replace_is_followed,
        remove_member_and_delete_collection,
        failed_collection_writes_leave_no_trace,
    );

    fn keys(names: &[&str]) -> Result<Vec<KeyDef>, CatalogError> {
        names
            .iter()
            .map(|n| KeyDef::new(*n, format!("the {n}")))
            .collect()
    }

    #[tokio::test]
    async fn open_missing_file_is_not_found() -> Result<(), CatalogError> {
        let h = harness()?;
        let result = SqliteCatalog::open(h.path()).await;
        assert!(
            matches!(result, Err(CatalogError::NotFound { .. })),
            "{result:?}"
        );
        assert!(!h.path().exists(), "open must not create the file");
        Ok(())
    }

    #[tokio::test]
    async fn foreign_files_are_schema_errors() -> Result<(), CatalogError> {
        let h = harness()?;
        // The first bytes of a real GeoTIFF: not a database, and must stay untouched.
        let tiff = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/dem_srtm30s_luxembourg_i16_lzw.tif"
        ))
        .map_err(|e| CatalogError::bad("test", e.to_string()))?;
        let prefix = tiff.get(..8192).unwrap_or(&tiff).to_vec();
        std::fs::write(h.path(), &prefix).map_err(|e| CatalogError::bad("test", e.to_string()))?;
        for result in [
            SqliteCatalog::open(h.path()).await.map(drop),
            SqliteCatalog::create(h.path(), &keys(&["a"])?)
                .await
                .map(drop),
        ] {
            match result {
                Err(CatalogError::Schema { reason, .. }) => {
                    assert!(reason.contains("not a SQLite database"), "{reason}")
                }
                other => panic!("expected a schema error, got {other:?}"),
            }
        }
        let after =
            std::fs::read(h.path()).map_err(|e| CatalogError::bad("test", e.to_string()))?;
        assert_eq!(after, prefix);

        // A SQLite database of something else.
        let other = h.dir.join("other.sqlite");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&other)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options)
            .await
            .map_err(|e| CatalogError::bad("test", e.to_string()))?;
        sqlx::query("CREATE TABLE tiles (z INTEGER)")
            .execute(&pool)
            .await
            .map_err(|e| CatalogError::bad("test", e.to_string()))?;
        pool.close().await;
        match SqliteCatalog::open(&other).await {
            Err(CatalogError::Schema { reason, .. }) => {
                assert!(reason.contains("not a Kiln catalog"), "{reason}")
            }
            other => panic!("expected a schema error, got {other:?}"),
        }
        assert!(matches!(
            SqliteCatalog::create(&other, &keys(&["a"])?).await,
            Err(CatalogError::Conflict { .. })
        ));
        Ok(())
    }

    #[tokio::test]
    async fn create_or_open_resumes_with_same_keys_only() -> Result<(), CatalogError> {
        let h = harness()?;
        let first = SqliteCatalog::create_or_open(h.path(), &keys(&["sensor", "band"])?).await?;
        first
            .insert(&["l8".into(), "b4".into()], "/b4.tif", None)
            .await?;
        first.close().await;
        drop(first);

        // Descriptions given on reopen are ignored: the stored ones were fixed at creation.
        let again = vec![
            KeyDef::new("sensor", "other text")?,
            KeyDef::new("band", "")?,
        ];
        let second = SqliteCatalog::create_or_open(h.path(), &again).await?;
        assert_eq!(second.count(&[]).await?, 1);
        assert_eq!(second.keys()[0].description(), "the sensor");
        second.close().await;
        drop(second);

        for wrong in [keys(&["band", "sensor"])?, keys(&["sensor"])?] {
            let result = SqliteCatalog::create_or_open(h.path(), &wrong).await;
            assert!(
                matches!(result, Err(CatalogError::Conflict { .. })),
                "{result:?}"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn wal_mode_and_foreign_keys_are_on() -> Result<(), CatalogError> {
        let h = harness()?;
        let catalog = SqliteCatalog::create(h.path(), &keys(&["a"])?).await?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(catalog.pool())
            .await
            .map_err(|e| CatalogError::bad("test", e.to_string()))?;
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(catalog.pool())
            .await
            .map_err(|e| CatalogError::bad("test", e.to_string()))?;
        assert_eq!(fk, 1);
        catalog.close().await;
        Ok(())
    }

    fn add_notes_table(key_count: usize) -> Vec<String> {
        vec![format!(
            "CREATE TABLE notes (n INTEGER NOT NULL DEFAULT {key_count})"
        )]
    }

    fn broken_migration(_key_count: usize) -> Vec<String> {
        vec![
            "CREATE TABLE half (x INTEGER)".into(),
            "ALTER TABLE no_such_table ADD COLUMN y INTEGER".into(),
        ]
    }

    #[tokio::test]
    async fn migrations_apply_in_one_transaction() -> Result<(), CatalogError> {
        let h = harness()?;
        let catalog = SqliteCatalog::create(h.path(), &keys(&["a", "b"])?).await?;
        let pool = catalog.pool();
        let label = "test";
        let to_two = [Migration {
            to: SCHEMA_VERSION + 1,
            sql: add_notes_table,
        }];
        assert_eq!(
            migrate(pool, label, &to_two, SCHEMA_VERSION + 1, 2).await?,
            SCHEMA_VERSION + 1
        );
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'notes'",
        )
        .fetch_one(pool)
        .await
        .map_err(|e| CatalogError::bad("test", e.to_string()))?;
        assert_eq!(tables, 1);
        // Already there: nothing runs again (a second CREATE TABLE would fail).
        migrate(pool, label, &to_two, SCHEMA_VERSION + 1, 2).await?;

        // A gap in the chain fails and leaves the version where it was.
        let result = migrate(pool, label, &to_two, SCHEMA_VERSION + 2, 2).await;
        match result {
            Err(CatalogError::Schema { reason, .. }) => assert!(reason.contains("no migration")),
            other => panic!("expected a schema error, got {other:?}"),
        }
        // A migration whose second statement fails leaves nothing of its first.
        let broken = [
            to_two[0],
            Migration {
                to: SCHEMA_VERSION + 2,
                sql: broken_migration,
            },
        ];
        let result = migrate(pool, label, &broken, SCHEMA_VERSION + 2, 2).await;
        assert!(
            matches!(result, Err(CatalogError::Backend { .. })),
            "{result:?}"
        );
        let half: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'half'",
        )
        .fetch_one(pool)
        .await
        .map_err(|e| CatalogError::bad("test", e.to_string()))?;
        assert_eq!(half, 0, "a failed migration left a table behind");
        let version: i64 = sqlx::query_scalar("SELECT version FROM schema_version")
            .fetch_one(pool)
            .await
            .map_err(|e| CatalogError::bad("test", e.to_string()))?;
        assert_eq!(version, i64::from(SCHEMA_VERSION + 1));
        catalog.close().await;
        Ok(())
    }

    /// A catalog as Kiln wrote it before collections (schema version 1, the DDL of that
    /// release typed out here) opens, migrates to the current version in place, and keeps its
    /// keys, datasets and metadata; the migrated schema equals a new catalog's.
    #[tokio::test]
    async fn version_1_catalog_migrates_and_keeps_its_datasets(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let h = harness()?;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(h.path())
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await?;
        let m = sample_metadata(0.5);
        let v1 = [
            "CREATE TABLE schema_version (version INTEGER NOT NULL)",
            "CREATE TABLE catalog_keys (position INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, \
             description TEXT NOT NULL)",
            "CREATE TABLE datasets (id INTEGER PRIMARY KEY, k0 TEXT NOT NULL, k1 TEXT NOT NULL, \
             uri TEXT NOT NULL, UNIQUE (k0, k1))",
            "CREATE TABLE metadata (\
               dataset_id INTEGER PRIMARY KEY REFERENCES datasets (id) ON DELETE CASCADE, \
               west REAL NOT NULL, south REAL NOT NULL, east REAL NOT NULL, north REAL NOT NULL, \
               valid_percentage REAL NOT NULL CHECK (valid_percentage BETWEEN 0 AND 100), \
               band_count INTEGER NOT NULL CHECK (band_count >= 1), \
               dtype TEXT NOT NULL, footprint TEXT NOT NULL, bands TEXT NOT NULL, \
               extra TEXT NOT NULL, header TEXT NOT NULL)",
            "INSERT INTO schema_version (version) VALUES (1)",
            "INSERT INTO catalog_keys VALUES (0, 'sensor', 'the sensor'), (1, 'tile', '')",
            "INSERT INTO datasets (id, k0, k1, uri) VALUES \
             (1, 'srtm', 'n49e005', '/dem/a.tif'), (2, 'srtm', 'n50e006', '/dem/b.tif')",
        ];
        for statement in v1 {
            sqlx::query(statement).execute(&pool).await?;
        }
        let dtype = serde_json::to_value(m.dtype)?;
        sqlx::query("INSERT INTO metadata VALUES (2, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(m.bounds_wgs84.west)
            .bind(m.bounds_wgs84.south)
            .bind(m.bounds_wgs84.east)
            .bind(m.bounds_wgs84.north)
            .bind(m.valid_percentage)
            .bind(i64::from(m.band_count))
            .bind(dtype.as_str().ok_or("dtype is not a JSON string")?)
            .bind(serde_json::to_string(&m.footprint)?)
            .bind(serde_json::to_string(&m.bands)?)
            .bind(serde_json::to_string(&m.extra)?)
            .bind(serde_json::to_string(&m.header)?)
            .execute(&pool)
            .await?;
        pool.close().await;

        let catalog = SqliteCatalog::open(h.path()).await?;
        assert_eq!(catalog.schema_version(), 2);
        assert_eq!(SCHEMA_VERSION, 2);
        let stored: i64 = sqlx::query_scalar("SELECT version FROM schema_version")
            .fetch_one(catalog.pool())
            .await?;
        assert_eq!(stored, 2);
        let names: Vec<&str> = catalog.keys().iter().map(KeyDef::name).collect();
        assert_eq!(names, ["sensor", "tile"]);
        assert_eq!(catalog.keys()[0].description(), "the sensor");
        let datasets = catalog.datasets(&[], Page::all()).await?;
        let uris: Vec<&str> = datasets.iter().map(|d| d.uri.as_str()).collect();
        assert_eq!(uris, ["/dem/a.tif", "/dem/b.tif"]);
        let b = vec!["srtm".to_owned(), "n50e006".to_owned()];
        assert_eq!(catalog.metadata(&b).await?, Some(m.clone()));

        // Collections work on the migrated file, and follow its old datasets.
        assert!(catalog.create_collection("terrain", "").await?);
        catalog
            .put_member(
                "terrain",
                &crate::MemberRef::Dataset(b.clone()),
                &crate::MemberSettings::default(),
                None,
            )
            .await?;
        let (_, members) = catalog.collection("terrain").await?;
        assert_eq!(members[0].uri, "/dem/b.tif");
        assert_eq!(members[0].metadata, Some(m));
        catalog.delete(&b).await?;
        assert_eq!(catalog.collection("terrain").await?.0.member_count, 0);

        // The migrated schema is the one `create` writes.
        let schema_sql = "SELECT type, name, sql FROM sqlite_master \
             WHERE name IN ('collections', 'collection_members', 'collection_members_dataset', \
             'member_metadata') ORDER BY name";
        let migrated: Vec<(String, String, String)> =
            sqlx::query_as(schema_sql).fetch_all(catalog.pool()).await?;
        catalog.close().await;
        let h2 = harness()?;
        let fresh = SqliteCatalog::create(h2.path(), &keys(&["sensor", "tile"])?).await?;
        let created: Vec<(String, String, String)> =
            sqlx::query_as(schema_sql).fetch_all(fresh.pool()).await?;
        fresh.close().await;
        assert_eq!(migrated.len(), 4);
        assert_eq!(migrated, created);

        // Opening again runs no migration (it would fail creating existing tables).
        let again = SqliteCatalog::open(h.path()).await?;
        assert_eq!(again.collections().await?.len(), 1);
        again.close().await;
        Ok(())
    }

    /// The point of storing the header: a fresh process gets back exactly the parsed
    /// `TiffHeader` of a real file without reading the file.
    #[tokio::test]
    async fn real_cog_header_survives_a_reopen() -> Result<(), Box<dyn std::error::Error>> {
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/global_etopo5_i16_cog.tif"
        );
        let bytes = std::fs::read(file)?;
        let header = kiln_cog::TiffHeader::parse(&bytes)?;
        assert!(
            header.overview_count() > 0,
            "the test wants a COG with overviews"
        );
        let mut m = sample_metadata(0.0);
        m.header = serde_json::to_value(&header)?;
        m.band_count = 1;
        m.bands.truncate(1);

        let h = harness()?;
        let catalog = SqliteCatalog::create(h.path(), &keys(&["name"])?).await?;
        let name = vec!["etopo5".to_owned()];
        catalog.insert(&name, file, Some(&m)).await?;
        catalog.close().await;
        drop(catalog);

        let reopened = SqliteCatalog::open(h.path()).await?;
        let stored = reopened.metadata(&name).await?.ok_or("metadata missing")?;
        let back: kiln_cog::TiffHeader = serde_json::from_value(stored.header)?;
        assert_eq!(back, header);
        assert_eq!(reopened.datasets(&[], Page::all()).await?[0].uri, file);
        reopened.close().await;
        Ok(())
    }
}
