//! The SQLite backend: one database file per catalog, opened through sqlx's runtime query API
//! (no compile-time checked macros, which would need a live database to build).
//!
//! # Schema (version 2)
//!
//! ```sql
//! CREATE TABLE schema_version (version INTEGER NOT NULL);            -- exactly one row
//! CREATE TABLE catalog_keys (position INTEGER PRIMARY KEY,           -- 0, 1, ...
//!                            name TEXT NOT NULL UNIQUE, description TEXT NOT NULL);
//! CREATE TABLE datasets (id INTEGER PRIMARY KEY,
//!                        k0 TEXT NOT NULL, k1 TEXT NOT NULL, ...,   -- one column per key
//!                        uri TEXT NOT NULL, UNIQUE (k0, k1, ...));
//! CREATE TABLE metadata (dataset_id INTEGER PRIMARY KEY REFERENCES datasets (id) ON DELETE CASCADE,
//!                        west, south, east, north REAL, valid_percentage REAL, band_count INTEGER,
//!                        dtype TEXT, footprint TEXT, bands TEXT, extra TEXT, header TEXT);  -- JSON
//! -- version 2: collections
//! CREATE TABLE collections (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL UNIQUE,
//!                           description TEXT NOT NULL,
//!                           blend_px REAL NOT NULL DEFAULT 0 CHECK (blend_px BETWEEN 0 AND 256));
//! CREATE TABLE collection_members (
//!     id INTEGER PRIMARY KEY,                                        -- also the order of addition
//!     collection_id INTEGER NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
//!     dataset_id INTEGER REFERENCES datasets (id),                   -- a dataset member, or
//!     uri TEXT, uri_sha256 CHAR(64),                                 -- a URI member
//!     priority INTEGER NOT NULL, min_zoom SMALLINT, max_zoom SMALLINT, -- 0..=30, min <= max
//!     acquired CHAR(10), enabled SMALLINT NOT NULL, nodata REAL,
//!     CHECK ((dataset_id IS NULL) <> (uri IS NULL)), CHECK ((uri IS NULL) = (uri_sha256 IS NULL)),
//!     UNIQUE (collection_id, dataset_id), UNIQUE (collection_id, uri_sha256));
//! CREATE INDEX collection_members_dataset ON collection_members (dataset_id);
//! CREATE TABLE member_metadata (member_id INTEGER PRIMARY KEY
//!                                   REFERENCES collection_members (id) ON DELETE CASCADE,
//!                               ...the columns of metadata...);     -- URI members only
//! ```
//!
//! Why one column per key rather than a normalised `(dataset, key, value)` table: a dataset is
//! then one row, the `UNIQUE (k0, ...)` index both enforces one dataset per key tuple and
//! serves lookups, filters and the `ORDER BY k0, k1, ...` of listings, and a listing page is a
//! single indexed range scan instead of a pivot. The cost, a table whose width depends on the
//! catalog, is paid once at creation, since keys are fixed then. Columns are named by
//! position (`k0`, `k1`, ...), never by the user's key names: user text never reaches SQL
//! outside bound parameters, and the same DDL works on PostgreSQL and MySQL (with `VARCHAR(255)`
//! for the key columns, which is why key values are bounded to 255 bytes).
//!
//! Metadata lives in its own table so that datasets can exist before their metadata (lazy
//! `serve -r`) and listings never read the large JSON blobs.
//!
//! A dataset member references its dataset by the integer `datasets.id`, which a replacing
//! insert keeps (it updates the row), so memberships follow a replaced dataset and read its
//! current URI and metadata through a join. The reference has no `ON DELETE` action on
//! purpose: `delete` removes the memberships itself in its transaction, and the foreign key
//! refuses any delete that would orphan one (MySQL also forbids referential actions on a column
//! that a `CHECK` reads). A URI member is unique by the SHA-256 of its URI, since URIs (up to
//! 4096 bytes) are too long for a MySQL index under utf8mb4; names are `VARCHAR(64)` of ASCII
//! and compare exactly (MySQL: `CHARACTER SET ascii COLLATE ascii_bin`). Members are listed by
//! `priority DESC, id`: a new id is above every existing one, so `id` is the order of first
//! addition, and replacing a member's settings updates its row in place. On PostgreSQL and
//! MySQL, `REAL` becomes `DOUBLE PRECISION` and `INTEGER PRIMARY KEY` an identity /
//! `AUTO_INCREMENT` column.
//!
//! # Concurrency and durability
//!
//! WAL mode (readers never block the writer), `synchronous = NORMAL` (a killed process loses
//! nothing committed; only a power loss can drop the last commits), a busy timeout so parallel
//! writers wait instead of failing, and every write transaction starts with `BEGIN IMMEDIATE`:
//! a deferred transaction that reads before writing could fail with `SQLITE_BUSY` at its first
//! write without the busy handler ever being consulted.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite, SqliteConnection};

mod collections;

use crate::fault::Faults;
use crate::model::EncodedMetadata;
use crate::{
    validate, BoxFuture, Catalog, CatalogError, CollectionInfo, Dataset, DatasetMetadata,
    InsertOutcome, KeyDef, KeyFilter, Matching, Member, MemberRef, MemberSettings, Page,
};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 2;

/// How long a write waits for another writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections per pool: readers run in parallel under WAL; writers queue on the file lock.
const MAX_CONNECTIONS: u32 = 4;
/// SQLite's result code for "file is not a database".
const SQLITE_NOTADB: &str = "26";

/// One step of the schema from `to - 1` to `to`. `sql` gets the key count because the
/// `datasets` table has one column per key.
#[derive(Clone, Copy)]
pub(crate) struct Migration {
    pub to: u32,
    pub sql: fn(key_count: usize) -> Vec<String>,
}

/// Migrations of released schemas, oldest first. Version 1 is the first schema: `create`
/// writes the current schema directly, so this list only ever upgrades existing files.
const MIGRATIONS: &[Migration] = &[Migration {
    to: 2,
    sql: schema_v2_collections,
}];

/// A catalog in a SQLite file.
#[derive(Debug)]
pub struct SqliteCatalog {
    pool: SqlitePool,
    path: PathBuf,
    /// The path as text, for error messages.
    label: String,
    keys: Vec<KeyDef>,
    schema_version: u32,
    sql: Statements,
    pub(crate) faults: Arc<Faults>,
}

/// SQL whose text depends on the key count, built once per open. Only positions and counts
/// go into the text; values are always bound.
#[derive(Debug)]
struct Statements {
    /// `k0, k1, ...`
    key_columns: String,
    select_id: Arc<str>,
    select_uri: Arc<str>,
    insert_dataset: Arc<str>,
    select_metadata: Arc<str>,
    /// Members of one collection with their resolved URI, keys and metadata.
    select_members: Arc<str>,
}

impl Statements {
    fn new(key_count: usize) -> Self {
        let key_columns = key_column_list(key_count);
        let key_match = (0..key_count)
            .map(|i| format!("k{i} = ?"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let placeholders = vec!["?"; key_count + 1].join(", ");
        Self {
            select_id: format!("SELECT id FROM datasets WHERE {key_match}").into(),
            select_uri: format!("SELECT uri FROM datasets WHERE {key_match}").into(),
            insert_dataset: format!(
                "INSERT INTO datasets ({key_columns}, uri) VALUES ({placeholders})"
            )
            .into(),
            select_metadata: format!(
                "SELECT m.west, m.south, m.east, m.north, m.valid_percentage, m.band_count, \
                 m.dtype, m.footprint, m.bands, m.extra, m.header \
                 FROM datasets d LEFT JOIN metadata m ON m.dataset_id = d.id WHERE {key_match}"
            )
            .into(),
            select_members: format!(
                "SELECT m.priority, m.min_zoom, m.max_zoom, m.acquired, m.enabled, m.nodata, \
                 m.dataset_id, m.uri, d.uri, \
                 {METADATA_COALESCE}, {} \
                 FROM collection_members m \
                 LEFT JOIN datasets d ON d.id = m.dataset_id \
                 LEFT JOIN metadata md ON md.dataset_id = m.dataset_id \
                 LEFT JOIN member_metadata mm ON mm.member_id = m.id \
                 WHERE m.collection_id = ? ORDER BY m.priority DESC, m.id",
                (0..key_count)
                    .map(|i| format!("d.k{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
            .into(),
            key_columns,
        }
    }
}

/// The metadata columns of a member: its dataset's (`md`) or its own (`mm`); at most one side
/// of each join has a row.
const METADATA_COALESCE: &str = "COALESCE(md.west, mm.west), COALESCE(md.south, mm.south), \
     COALESCE(md.east, mm.east), COALESCE(md.north, mm.north), \
     COALESCE(md.valid_percentage, mm.valid_percentage), COALESCE(md.band_count, mm.band_count), \
     COALESCE(md.dtype, mm.dtype), COALESCE(md.footprint, mm.footprint), \
     COALESCE(md.bands, mm.bands), COALESCE(md.extra, mm.extra), COALESCE(md.header, mm.header)";

/// Which table a metadata row goes to, and the column naming its owner.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MetadataOwner {
    Dataset,
    Member,
}

impl MetadataOwner {
    fn insert_sql(self) -> &'static str {
        match self {
            Self::Dataset => {
                "INSERT INTO metadata (dataset_id, west, south, east, north, valid_percentage, \
                 band_count, dtype, footprint, bands, extra, header) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            }
            Self::Member => {
                "INSERT INTO member_metadata (member_id, west, south, east, north, \
                 valid_percentage, band_count, dtype, footprint, bands, extra, header) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            }
        }
    }

    fn delete_sql(self) -> &'static str {
        match self {
            Self::Dataset => "DELETE FROM metadata WHERE dataset_id = ?",
            Self::Member => "DELETE FROM member_metadata WHERE member_id = ?",
        }
    }
}

fn key_column_list(key_count: usize) -> String {
    (0..key_count)
        .map(|i| format!("k{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The version-1 schema for `key_count` keys.
fn schema_v1(key_count: usize) -> Vec<String> {
    let key_columns: String = (0..key_count)
        .map(|i| format!("k{i} TEXT NOT NULL, "))
        .collect();
    vec![
        "CREATE TABLE schema_version (version INTEGER NOT NULL)".into(),
        "CREATE TABLE catalog_keys (position INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, \
         description TEXT NOT NULL)"
            .into(),
        format!(
            "CREATE TABLE datasets (id INTEGER PRIMARY KEY, {key_columns}uri TEXT NOT NULL, \
             UNIQUE ({}))",
            key_column_list(key_count)
        ),
        "CREATE TABLE metadata (\
           dataset_id INTEGER PRIMARY KEY REFERENCES datasets (id) ON DELETE CASCADE, \
           west REAL NOT NULL, south REAL NOT NULL, east REAL NOT NULL, north REAL NOT NULL, \
           valid_percentage REAL NOT NULL CHECK (valid_percentage BETWEEN 0 AND 100), \
           band_count INTEGER NOT NULL CHECK (band_count >= 1), \
           dtype TEXT NOT NULL, footprint TEXT NOT NULL, bands TEXT NOT NULL, \
           extra TEXT NOT NULL, header TEXT NOT NULL)"
            .into(),
    ]
}

/// Version 2: collections and their members (only new tables, so the migration from 1 is the
/// same statements `create` runs).
pub(crate) fn schema_v2_collections(_key_count: usize) -> Vec<String> {
    vec![
        "CREATE TABLE collections (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL UNIQUE, \
         description TEXT NOT NULL, \
         blend_px REAL NOT NULL DEFAULT 0 CHECK (blend_px BETWEEN 0 AND 256))"
            .into(),
        "CREATE TABLE collection_members (id INTEGER PRIMARY KEY, \
           collection_id INTEGER NOT NULL REFERENCES collections (id) ON DELETE CASCADE, \
           dataset_id INTEGER REFERENCES datasets (id), \
           uri TEXT, uri_sha256 CHAR(64), \
           priority INTEGER NOT NULL, \
           min_zoom SMALLINT CHECK (min_zoom BETWEEN 0 AND 30), \
           max_zoom SMALLINT CHECK (max_zoom BETWEEN 0 AND 30), \
           acquired CHAR(10), \
           enabled SMALLINT NOT NULL CHECK (enabled IN (0, 1)), \
           nodata REAL, \
           CHECK (min_zoom IS NULL OR max_zoom IS NULL OR min_zoom <= max_zoom), \
           CHECK ((dataset_id IS NULL) <> (uri IS NULL)), \
           CHECK ((uri IS NULL) = (uri_sha256 IS NULL)), \
           UNIQUE (collection_id, dataset_id), \
           UNIQUE (collection_id, uri_sha256))"
            .into(),
        "CREATE INDEX collection_members_dataset ON collection_members (dataset_id)".into(),
        "CREATE TABLE member_metadata (\
           member_id INTEGER PRIMARY KEY REFERENCES collection_members (id) ON DELETE CASCADE, \
           west REAL NOT NULL, south REAL NOT NULL, east REAL NOT NULL, north REAL NOT NULL, \
           valid_percentage REAL NOT NULL CHECK (valid_percentage BETWEEN 0 AND 100), \
           band_count INTEGER NOT NULL CHECK (band_count >= 1), \
           dtype TEXT NOT NULL, footprint TEXT NOT NULL, bands TEXT NOT NULL, \
           extra TEXT NOT NULL, header TEXT NOT NULL)"
            .into(),
    ]
}

fn sql(text: &Arc<str>) -> AssertSqlSafe<Arc<str>> {
    // Safe: every dynamic statement is built from key positions and counts only.
    AssertSqlSafe(Arc::clone(text))
}

/// A `*` pattern as a LIKE pattern escaped with a backslash, so `%`, `_` and `\` match themselves.
fn like_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        match c {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn bind_keys<'q>(
    mut query: Query<'q, Sqlite, SqliteArguments>,
    keys: &'q [String],
) -> Query<'q, Sqlite, SqliteArguments> {
    for key in keys {
        query = query.bind(key.as_str());
    }
    query
}

fn backend_error(catalog: &str, operation: &'static str, e: sqlx::Error) -> CatalogError {
    let not_a_database = e
        .as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == SQLITE_NOTADB);
    if not_a_database {
        return CatalogError::Schema {
            catalog: catalog.to_owned(),
            reason: "the file is not a SQLite database".into(),
        };
    }
    CatalogError::Backend {
        catalog: catalog.to_owned(),
        operation,
        source: Box::new(e),
    }
}

async fn connect(path: &Path, label: &str, create: bool) -> Result<SqlitePool, CatalogError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .connect_with(options)
        .await
        .map_err(|e| backend_error(label, "open", e))
}

/// Whether the database has a `schema_version` table, and whether it has any table at all.
async fn probe(pool: &SqlitePool, label: &str) -> Result<(bool, bool), CatalogError> {
    let rows = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table'")
        .fetch_all(pool)
        .await
        .map_err(|e| backend_error(label, "read schema", e))?;
    let mut is_catalog = false;
    for row in &rows {
        let name: String = row
            .try_get(0)
            .map_err(|e| backend_error(label, "read schema", e))?;
        is_catalog |= name == "schema_version";
    }
    Ok((is_catalog, !rows.is_empty()))
}

async fn read_version(conn: &mut SqliteConnection, label: &str) -> Result<u32, CatalogError> {
    let rows = sqlx::query("SELECT version FROM schema_version")
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| backend_error(label, "read schema version", e))?;
    let schema = |reason: String| CatalogError::Schema {
        catalog: label.to_owned(),
        reason,
    };
    let [row] = rows.as_slice() else {
        return Err(schema(format!(
            "schema_version holds {} rows instead of one",
            rows.len()
        )));
    };
    let version: i64 = row
        .try_get(0)
        .map_err(|e| backend_error(label, "read schema version", e))?;
    u32::try_from(version).map_err(|_| schema(format!("invalid schema version {version}")))
}

async fn read_keys(pool: &SqlitePool, label: &str) -> Result<Vec<KeyDef>, CatalogError> {
    let rows =
        sqlx::query("SELECT position, name, description FROM catalog_keys ORDER BY position")
            .fetch_all(pool)
            .await
            .map_err(|e| backend_error(label, "read keys", e))?;
    let schema = |reason: String| CatalogError::Schema {
        catalog: label.to_owned(),
        reason,
    };
    let mut keys = Vec::with_capacity(rows.len());
    for (expected, row) in rows.iter().enumerate() {
        let decode = |e| backend_error(label, "read keys", e);
        let position: i64 = row.try_get(0).map_err(decode)?;
        let name: String = row.try_get(1).map_err(decode)?;
        let description: String = row.try_get(2).map_err(decode)?;
        if usize::try_from(position).ok() != Some(expected) {
            return Err(schema(format!(
                "catalog_keys positions are not 0..{}",
                rows.len()
            )));
        }
        keys.push(
            KeyDef::new(name, description)
                .map_err(|e| schema(format!("stored key is invalid: {e}")))?,
        );
    }
    validate::key_defs(&keys).map_err(|e| schema(format!("stored keys are invalid: {e}")))?;
    Ok(keys)
}

/// Brings the schema from its stored version to `target` in one transaction, so a killed
/// migration leaves the old version intact. A catalog already at `target` is only read (a
/// server may open it from a read-only mount).
pub(crate) async fn migrate(
    pool: &SqlitePool,
    label: &str,
    migrations: &[Migration],
    target: u32,
    key_count: usize,
) -> Result<u32, CatalogError> {
    let err = |op| move |e| backend_error(label, op, e);
    let newer = |from: u32| CatalogError::Schema {
        catalog: label.to_owned(),
        reason: format!(
            "the catalog has schema version {from}, newer than the {target} this Kiln \
             understands; use a newer Kiln"
        ),
    };
    let mut conn = pool.acquire().await.map_err(err("read schema version"))?;
    let stored = read_version(&mut conn, label).await?;
    drop(conn);
    if stored > target {
        return Err(newer(stored));
    }
    if stored == target {
        return Ok(target);
    }
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(err("begin migration"))?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let from = read_version(&mut tx, label).await?;
    if from > target {
        return Err(newer(from));
    }
    for version in from.saturating_add(1)..=target {
        let step =
            migrations
                .iter()
                .find(|m| m.to == version)
                .ok_or_else(|| CatalogError::Schema {
                    catalog: label.to_owned(),
                    reason: format!("no migration to schema version {version}"),
                })?;
        for statement in (step.sql)(key_count) {
            sqlx::query(AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await
                .map_err(err("migrate"))?;
        }
    }
    if from != target {
        sqlx::query("UPDATE schema_version SET version = ?")
            .bind(i64::from(target))
            .execute(&mut *tx)
            .await
            .map_err(err("migrate"))?;
    }
    tx.commit().await.map_err(err("commit migration"))?;
    Ok(target)
}

impl SqliteCatalog {
    /// Creates a catalog with `keys` at `path`. The file may be absent or an empty database (a
    /// create killed before its commit leaves one); a database with tables is a conflict.
    pub async fn create(path: impl AsRef<Path>, keys: &[KeyDef]) -> Result<Self, CatalogError> {
        validate::key_defs(keys)?;
        let path = path.as_ref();
        let label = path.display().to_string();
        let pool = connect(path, &label, true).await?;
        let text = label.as_str();
        let err = |op| move |e| backend_error(text, op, e);
        let mut tx = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(err("begin create"))?;
        let tables: i64 = sqlx::query("SELECT count(*) FROM sqlite_master")
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(err("read schema"))?;
        if tables != 0 {
            return Err(CatalogError::Conflict {
                catalog: label.clone(),
                reason: "the database already exists and is not empty".into(),
            });
        }
        let schema = schema_v1(keys.len())
            .into_iter()
            .chain(schema_v2_collections(keys.len()));
        for statement in schema {
            sqlx::query(AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await
                .map_err(err("create schema"))?;
        }
        sqlx::query("INSERT INTO schema_version (version) VALUES (?)")
            .bind(i64::from(SCHEMA_VERSION))
            .execute(&mut *tx)
            .await
            .map_err(err("create schema"))?;
        for (position, key) in keys.iter().enumerate() {
            let position = i64::try_from(position).unwrap_or(i64::MAX);
            sqlx::query("INSERT INTO catalog_keys (position, name, description) VALUES (?, ?, ?)")
                .bind(position)
                .bind(key.name())
                .bind(key.description())
                .execute(&mut *tx)
                .await
                .map_err(err("create schema"))?;
        }
        tx.commit().await.map_err(err("commit create"))?;
        Ok(Self::assemble(
            pool,
            path,
            label,
            keys.to_vec(),
            SCHEMA_VERSION,
        ))
    }

    /// Opens an existing catalog, migrating an older schema; a newer schema, or a database
    /// that is not a catalog, is a [`CatalogError::Schema`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, CatalogError> {
        let path = path.as_ref();
        let label = path.display().to_string();
        if !path.exists() {
            return Err(CatalogError::NotFound {
                catalog: label,
                what: "the catalog file".into(),
            });
        }
        let pool = connect(path, &label, false).await?;
        let (is_catalog, _) = probe(&pool, &label).await?;
        if !is_catalog {
            pool.close().await;
            return Err(CatalogError::Schema {
                catalog: label,
                reason: "not a Kiln catalog (no schema_version table)".into(),
            });
        }
        Self::open_pool(pool, path, label).await
    }

    /// Opens the catalog at `path` if there is one (its key names must equal those of
    /// `keys`), else creates it. Two processes creating the same file at once: one of them
    /// gets [`CatalogError::Conflict`].
    pub async fn create_or_open(
        path: impl AsRef<Path>,
        keys: &[KeyDef],
    ) -> Result<Self, CatalogError> {
        let path = path.as_ref();
        if path.exists() {
            let label = path.display().to_string();
            let pool = connect(path, &label, false).await?;
            let (is_catalog, _) = probe(&pool, &label).await?;
            if is_catalog {
                let catalog = Self::open_pool(pool, path, label).await?;
                let stored: Vec<&str> = catalog.keys.iter().map(KeyDef::name).collect();
                let wanted: Vec<&str> = keys.iter().map(KeyDef::name).collect();
                if stored != wanted {
                    let label = catalog.label.clone();
                    catalog.pool.close().await;
                    return Err(CatalogError::Conflict {
                        catalog: label,
                        reason: format!("the catalog has keys {stored:?}, not {wanted:?}"),
                    });
                }
                return Ok(catalog);
            }
            pool.close().await;
        }
        Self::create(path, keys).await
    }

    async fn open_pool(pool: SqlitePool, path: &Path, label: String) -> Result<Self, CatalogError> {
        let result = async {
            let keys = read_keys(&pool, &label).await?;
            let version = migrate(&pool, &label, MIGRATIONS, SCHEMA_VERSION, keys.len()).await?;
            Ok::<_, CatalogError>((keys, version))
        }
        .await;
        match result {
            Ok((keys, version)) => Ok(Self::assemble(pool, path, label, keys, version)),
            Err(e) => {
                pool.close().await;
                Err(e)
            }
        }
    }

    fn assemble(
        pool: SqlitePool,
        path: &Path,
        label: String,
        keys: Vec<KeyDef>,
        schema_version: u32,
    ) -> Self {
        Self {
            pool,
            path: path.to_path_buf(),
            label,
            sql: Statements::new(keys.len()),
            keys,
            schema_version,
            faults: Arc::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying pool, for backend-specific tests and tools.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn err(&self, operation: &'static str) -> impl Fn(sqlx::Error) -> CatalogError + '_ {
        move |e| backend_error(&self.label, operation, e)
    }

    fn not_found(&self, keys: &[String]) -> CatalogError {
        CatalogError::NotFound {
            catalog: self.label.clone(),
            what: format!("dataset ({})", keys.join(", ")),
        }
    }

    /// Validates `keys`, starts a write transaction and finds the dataset's row id in it
    /// (`NotFound` when there is none), for writes to an existing dataset.
    async fn begin_on_dataset(
        &self,
        keys: &[String],
        operation: &'static str,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Sqlite>, i64), CatalogError> {
        validate::key_values(keys, self.keys.len())?;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.err(operation))?;
        let id = self
            .dataset_id(&mut tx, keys)
            .await?
            .ok_or_else(|| self.not_found(keys))?;
        Ok((tx, id))
    }

    async fn dataset_id(
        &self,
        conn: &mut SqliteConnection,
        keys: &[String],
    ) -> Result<Option<i64>, CatalogError> {
        let row = bind_keys(sqlx::query(sql(&self.sql.select_id)), keys)
            .fetch_optional(&mut *conn)
            .await
            .map_err(self.err("find dataset"))?;
        row.map(|r| r.try_get(0))
            .transpose()
            .map_err(self.err("find dataset"))
    }

    async fn write_metadata(
        &self,
        conn: &mut SqliteConnection,
        id: i64,
        m: &EncodedMetadata,
    ) -> Result<(), CatalogError> {
        self.write_metadata_of(conn, MetadataOwner::Dataset, id, m)
            .await
    }

    pub(crate) async fn write_metadata_of(
        &self,
        conn: &mut SqliteConnection,
        owner: MetadataOwner,
        id: i64,
        m: &EncodedMetadata,
    ) -> Result<(), CatalogError> {
        sqlx::query(owner.insert_sql())
            .bind(id)
            .bind(m.west)
            .bind(m.south)
            .bind(m.east)
            .bind(m.north)
            .bind(m.valid_percentage)
            .bind(m.band_count)
            .bind(m.dtype.as_str())
            .bind(m.footprint.as_str())
            .bind(m.bands.as_str())
            .bind(m.extra.as_str())
            .bind(m.header.as_str())
            .execute(&mut *conn)
            .await
            .map_err(self.err("write metadata"))?;
        Ok(())
    }

    async fn delete_metadata(
        &self,
        conn: &mut SqliteConnection,
        id: i64,
    ) -> Result<(), CatalogError> {
        self.delete_metadata_of(conn, MetadataOwner::Dataset, id)
            .await
    }

    pub(crate) async fn delete_metadata_of(
        &self,
        conn: &mut SqliteConnection,
        owner: MetadataOwner,
        id: i64,
    ) -> Result<(), CatalogError> {
        sqlx::query(owner.delete_sql())
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(self.err("delete metadata"))?;
        Ok(())
    }

    async fn insert_impl(
        &self,
        keys: &[String],
        uri: &str,
        metadata: Option<&DatasetMetadata>,
    ) -> Result<InsertOutcome, CatalogError> {
        validate::key_values(keys, self.keys.len())?;
        validate::uri(uri)?;
        let encoded = metadata.map(EncodedMetadata::encode).transpose()?;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.err("begin insert"))?;
        let (id, outcome) = match self.dataset_id(&mut tx, keys).await? {
            Some(id) => {
                sqlx::query("UPDATE datasets SET uri = ? WHERE id = ?")
                    .bind(uri)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.err("update dataset"))?;
                self.faults.step(&self.label)?;
                self.delete_metadata(&mut tx, id).await?;
                (id, InsertOutcome::Replaced)
            }
            None => {
                let done = bind_keys(sqlx::query(sql(&self.sql.insert_dataset)), keys)
                    .bind(uri)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.err("insert dataset"))?;
                (done.last_insert_rowid(), InsertOutcome::Inserted)
            }
        };
        self.faults.step(&self.label)?;
        if let Some(m) = &encoded {
            self.write_metadata(&mut tx, id, m).await?;
            self.faults.step(&self.label)?;
        }
        tx.commit().await.map_err(self.err("commit insert"))?;
        Ok(outcome)
    }

    async fn set_metadata_impl(
        &self,
        keys: &[String],
        metadata: &DatasetMetadata,
    ) -> Result<(), CatalogError> {
        let (mut tx, id) = self.begin_on_dataset(keys, "begin set metadata").await?;
        let encoded = EncodedMetadata::encode(metadata)?;
        self.delete_metadata(&mut tx, id).await?;
        self.faults.step(&self.label)?;
        self.write_metadata(&mut tx, id, &encoded).await?;
        self.faults.step(&self.label)?;
        tx.commit().await.map_err(self.err("commit set metadata"))?;
        Ok(())
    }

    /// `WHERE ...` for the filters (empty when there are none), with the values to bind.
    fn filter_clause<'f>(
        &self,
        filters: &'f [KeyFilter],
    ) -> Result<(String, Vec<Cow<'f, str>>), CatalogError> {
        let resolved = validate::filters(filters, &self.keys)?;
        let mut values = Vec::new();
        let conditions: Vec<String> = resolved
            .iter()
            .map(|(position, filter)| match filter.matching {
                Matching::Exact => {
                    values.extend(filter.values.iter().map(|v| Cow::Borrowed(v.as_str())));
                    let marks = vec!["?"; filter.values.len()].join(", ");
                    format!("k{position} IN ({marks})")
                }
                Matching::Wildcard => {
                    values.extend(filter.values.iter().map(|v| Cow::Owned(like_pattern(v))));
                    // SQLite's LIKE ignores ASCII case unless `case_sensitive_like` is set.
                    let alternatives =
                        vec![format!("k{position} LIKE ? ESCAPE '\\'"); filter.values.len()];
                    format!("({})", alternatives.join(" OR "))
                }
            })
            .collect();
        if conditions.is_empty() {
            return Ok((String::new(), values));
        }
        Ok((format!(" WHERE {}", conditions.join(" AND ")), values))
    }

    async fn datasets_impl(
        &self,
        filters: &[KeyFilter],
        page: Page,
    ) -> Result<Vec<Dataset>, CatalogError> {
        let (clause, values) = self.filter_clause(filters)?;
        let columns = &self.sql.key_columns;
        let mut text = format!("SELECT {columns}, uri FROM datasets{clause} ORDER BY {columns}");
        if page.limit().is_some() {
            text.push_str(" LIMIT ? OFFSET ?");
        }
        let mut query = sqlx::query(AssertSqlSafe(text));
        for value in values {
            query = query.bind(value);
        }
        if let Some(limit) = page.limit() {
            let offset = i64::try_from(page.offset())
                .map_err(|_| CatalogError::bad("page", "page * limit is too large"))?;
            query = query.bind(i64::from(limit)).bind(offset);
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("list datasets"))?;
        rows.iter().map(|row| self.decode_dataset(row)).collect()
    }

    fn decode_dataset(&self, row: &SqliteRow) -> Result<Dataset, CatalogError> {
        let n = self.keys.len();
        let keys = (0..n)
            .map(|i| row.try_get::<String, _>(i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.err("list datasets"))?;
        let uri = row.try_get(n).map_err(self.err("list datasets"))?;
        Ok(Dataset { keys, uri })
    }

    async fn count_impl(&self, filters: &[KeyFilter]) -> Result<u64, CatalogError> {
        let (clause, values) = self.filter_clause(filters)?;
        let mut query = sqlx::query(AssertSqlSafe(format!(
            "SELECT count(*) FROM datasets{clause}"
        )));
        for value in values {
            query = query.bind(value);
        }
        let count: i64 = query
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(self.err("count datasets"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn dataset_impl(&self, keys: &[String]) -> Result<Dataset, CatalogError> {
        validate::key_values(keys, self.keys.len())?;
        let row = bind_keys(sqlx::query(sql(&self.sql.select_uri)), keys)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("read dataset"))?
            .ok_or_else(|| self.not_found(keys))?;
        Ok(Dataset {
            keys: keys.to_vec(),
            uri: row.try_get(0).map_err(self.err("read dataset"))?,
        })
    }

    async fn metadata_impl(
        &self,
        keys: &[String],
    ) -> Result<Option<DatasetMetadata>, CatalogError> {
        validate::key_values(keys, self.keys.len())?;
        let row = bind_keys(sqlx::query(sql(&self.sql.select_metadata)), keys)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("read metadata"))?
            .ok_or_else(|| self.not_found(keys))?;
        self.decode_metadata(&row, 0)
    }

    /// The 11 metadata columns starting at `first` (as `select_metadata` orders them), or
    /// `None` when they are NULL (no metadata row joined).
    pub(crate) fn decode_metadata(
        &self,
        row: &SqliteRow,
        first: usize,
    ) -> Result<Option<DatasetMetadata>, CatalogError> {
        let decode = self.err("read metadata");
        let Some(west) = row.try_get::<Option<f64>, _>(first).map_err(&decode)? else {
            return Ok(None);
        };
        let encoded = EncodedMetadata {
            west,
            south: row.try_get(first + 1).map_err(&decode)?,
            east: row.try_get(first + 2).map_err(&decode)?,
            north: row.try_get(first + 3).map_err(&decode)?,
            valid_percentage: row.try_get(first + 4).map_err(&decode)?,
            band_count: row.try_get(first + 5).map_err(&decode)?,
            dtype: row.try_get(first + 6).map_err(&decode)?,
            footprint: row.try_get(first + 7).map_err(&decode)?,
            bands: row.try_get(first + 8).map_err(&decode)?,
            extra: row.try_get(first + 9).map_err(&decode)?,
            header: row.try_get(first + 10).map_err(&decode)?,
        };
        encoded.decode(&self.label).map(Some)
    }

    async fn delete_impl(&self, keys: &[String]) -> Result<(), CatalogError> {
        let (mut tx, id) = self.begin_on_dataset(keys, "begin delete").await?;
        // The dataset leaves every collection with it; the foreign key has no ON DELETE action,
        // so forgetting this would fail the delete rather than orphan a member.
        sqlx::query("DELETE FROM collection_members WHERE dataset_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.err("delete memberships"))?;
        self.faults.step(&self.label)?;
        // Explicit rather than relying on ON DELETE CASCADE alone, so the failure hook can cut
        // the transaction between the two deletes.
        self.delete_metadata(&mut tx, id).await?;
        self.faults.step(&self.label)?;
        sqlx::query("DELETE FROM datasets WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.err("delete dataset"))?;
        self.faults.step(&self.label)?;
        tx.commit().await.map_err(self.err("commit delete"))?;
        Ok(())
    }

    async fn contains_impl(&self, keys: &[String]) -> Result<bool, CatalogError> {
        validate::key_values(keys, self.keys.len())?;
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(self.err("acquire connection"))?;
        Ok(self.dataset_id(&mut conn, keys).await?.is_some())
    }
}

impl Catalog for SqliteCatalog {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn schema_version(&self) -> u32 {
        self.schema_version
    }

    fn keys(&self) -> &[KeyDef] {
        &self.keys
    }

    fn insert<'a>(
        &'a self,
        keys: &'a [String],
        uri: &'a str,
        metadata: Option<&'a DatasetMetadata>,
    ) -> BoxFuture<'a, Result<InsertOutcome, CatalogError>> {
        Box::pin(self.insert_impl(keys, uri, metadata))
    }

    fn set_metadata<'a>(
        &'a self,
        keys: &'a [String],
        metadata: &'a DatasetMetadata,
    ) -> BoxFuture<'a, Result<(), CatalogError>> {
        Box::pin(self.set_metadata_impl(keys, metadata))
    }

    fn datasets<'a>(
        &'a self,
        filters: &'a [KeyFilter],
        page: Page,
    ) -> BoxFuture<'a, Result<Vec<Dataset>, CatalogError>> {
        Box::pin(self.datasets_impl(filters, page))
    }

    fn count<'a>(&'a self, filters: &'a [KeyFilter]) -> BoxFuture<'a, Result<u64, CatalogError>> {
        Box::pin(self.count_impl(filters))
    }

    fn dataset<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Dataset, CatalogError>> {
        Box::pin(self.dataset_impl(keys))
    }

    fn metadata<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Option<DatasetMetadata>, CatalogError>> {
        Box::pin(self.metadata_impl(keys))
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), CatalogError>> {
        Box::pin(self.delete_impl(keys))
    }

    fn contains<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<bool, CatalogError>> {
        Box::pin(self.contains_impl(keys))
    }

    fn create_collection<'a>(
        &'a self,
        name: &'a str,
        description: &'a str,
    ) -> BoxFuture<'a, Result<bool, CatalogError>> {
        Box::pin(self.create_collection_impl(name, description))
    }

    fn update_collection<'a>(
        &'a self,
        name: &'a str,
        description: Option<&'a str>,
        blend_px: Option<f64>,
    ) -> BoxFuture<'a, Result<(), CatalogError>> {
        Box::pin(self.update_collection_impl(name, description, blend_px))
    }

    fn collections(&self) -> BoxFuture<'_, Result<Vec<CollectionInfo>, CatalogError>> {
        Box::pin(self.collections_impl())
    }

    fn collection<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(CollectionInfo, Vec<Member>), CatalogError>> {
        Box::pin(self.collection_impl(name))
    }

    fn put_member<'a>(
        &'a self,
        name: &'a str,
        source: &'a MemberRef,
        settings: &'a MemberSettings,
        metadata: Option<&'a DatasetMetadata>,
    ) -> BoxFuture<'a, Result<InsertOutcome, CatalogError>> {
        Box::pin(self.put_member_impl(name, source, settings, metadata))
    }

    fn remove_member<'a>(
        &'a self,
        name: &'a str,
        source: &'a MemberRef,
    ) -> BoxFuture<'a, Result<(), CatalogError>> {
        Box::pin(self.remove_member_impl(name, source))
    }

    fn delete_collection<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), CatalogError>> {
        Box::pin(self.delete_collection_impl(name))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.pool.close())
    }
}
