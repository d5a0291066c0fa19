//! `kiln-catalog`: which datasets exist and what is known about them.
//!
//! Owns the one [`Catalog`] trait that the server and ingest use without knowing the backend,
//! its value types (key definitions, datasets, filters, pages, [`DatasetMetadata`]), input
//! validation, the single [`CatalogError`] enum, the SQLite backend ([`SqliteCatalog`], one file)
//! and a backend-neutral conformance suite (`conformance`, behind the `conformance` feature)
//! that every backend must pass. PostgreSQL and MySQL backends slot in beside `sqlite.rs`;
//! [`CatalogLocation`] already names them so callers pick a backend by URL only.
//!
//! A catalog has an ordered list of key names fixed at creation (as Terracotta's); a dataset is
//! one value per key mapped to a source URI, plus optional metadata (optional so that a server
//! can register files first and compute metadata lazily). Every write is one transaction: a
//! killed process leaves each dataset either fully written or untouched.
//!
//! A catalog also holds *collections* ([`CollectionInfo`]): named sets of members (catalog
//! datasets or bare URIs) with a priority and zoom range each, composited by precedence into
//! one layer. Deleting a dataset removes it from every collection in the same transaction;
//! replacing it keeps its memberships, which then see the new URI and metadata.

mod collection;
mod error;
mod fault;
mod model;
mod sqlite;
mod validate;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
#[cfg(any(test, feature = "conformance"))]
mod sqlite_harness;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

pub use collection::{
    CollectionInfo, Member, MemberRef, MemberSettings, MAX_BLEND_PX, MAX_MEMBER_ZOOM,
};
pub use error::CatalogError;
pub use model::{BandStats, DatasetMetadata, PERCENTILE_COUNT};
pub use sqlite::{SqliteCatalog, SCHEMA_VERSION};
#[cfg(any(test, feature = "conformance"))]
pub use sqlite_harness::SqliteHarness;
pub use validate::{
    MAX_COLLECTION_NAME_CHARS, MAX_DESCRIPTION_CHARS, MAX_FILTER_VALUES, MAX_KEYS,
    MAX_KEY_NAME_CHARS, MAX_KEY_VALUE_BYTES, MAX_PAGE_LIMIT,
};

/// A boxed, sendable future (what trait objects of [`Catalog`] return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One key of a catalog: its name (an identifier) and a human description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDef {
    name: String,
    description: String,
}

impl KeyDef {
    /// Checks the name (`[A-Za-z_][A-Za-z0-9_]*`, at most [`MAX_KEY_NAME_CHARS`]) and the
    /// description length.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> Result<Self, CatalogError> {
        let name = name.into();
        let description = description.into();
        validate::key_name(&name)?;
        validate::description(&name, &description)?;
        Ok(Self { name, description })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
    }
}

/// One dataset: its key values (in the catalog's key order) and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub keys: Vec<String>,
    pub uri: String,
}

/// Restricts a listing to datasets whose `key` matches one of `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFilter {
    pub key: String,
    pub values: Vec<String>,
    pub matching: Matching,
}

/// How a [`KeyFilter`] compares its values with the datasets' key values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Matching {
    /// The key value equals one of the values, byte for byte.
    #[default]
    Exact,
    /// Each value is a pattern in which `*` stands for any run of characters (none included);
    /// letters compare ignoring ASCII case (`*LUX*` finds `dem_luxembourg`).
    Wildcard,
}

impl KeyFilter {
    /// A filter on one value (`?key=value` in the HTTP API).
    pub fn eq(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self::any_of(key, vec![value.into()])
    }

    /// A filter on several values (`?key=[a,b]` in the HTTP API).
    pub fn any_of(key: impl Into<String>, values: Vec<String>) -> Self {
        Self {
            key: key.into(),
            values,
            matching: Matching::Exact,
        }
    }

    /// A filter on `*` patterns (`?key=*text*` in the HTTP API).
    pub fn wildcard(key: impl Into<String>, patterns: Vec<String>) -> Self {
        Self {
            key: key.into(),
            values: patterns,
            matching: Matching::Wildcard,
        }
    }
}

/// Which slice of an ordered listing to return: `page` counts from 0 in units of `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    limit: Option<u32>,
    page: u32,
}

impl Page {
    /// Everything, in one page.
    pub fn all() -> Self {
        Self {
            limit: None,
            page: 0,
        }
    }

    /// `limit` must be in `1..=MAX_PAGE_LIMIT`.
    pub fn new(limit: u32, page: u32) -> Result<Self, CatalogError> {
        if limit == 0 || limit > MAX_PAGE_LIMIT {
            return Err(CatalogError::BadRequest {
                field: "limit",
                reason: format!("must be between 1 and {MAX_PAGE_LIMIT}, got {limit}"),
            });
        }
        Ok(Self {
            limit: Some(limit),
            page,
        })
    }

    pub fn limit(&self) -> Option<u32> {
        self.limit
    }

    pub fn page(&self) -> u32 {
        self.page
    }

    /// Rows to skip; `u64` so that `page * limit` cannot overflow.
    pub fn offset(&self) -> u64 {
        self.limit
            .map_or(0, |limit| u64::from(limit) * u64::from(self.page))
    }
}

/// What [`Catalog::insert`] (or [`Catalog::put_member`]) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    /// The keys existed: URI and metadata were replaced (old metadata dropped even when the new
    /// insert carries none, since it described the old source). From
    /// [`Catalog::put_member`]: the member existed and its settings were replaced.
    Replaced,
}

/// The catalog, whatever its backend. Key values are always given in the catalog's key order
/// and their count must equal the number of keys ([`CatalogError::BadRequest`] otherwise).
///
/// Object-safe (`Box<dyn Catalog>`), so the server and ingest never name a backend.
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// `"sqlite"`, `"postgres"`, ...
    fn backend(&self) -> &'static str;

    /// The schema version of the open catalog (always [`SCHEMA_VERSION`] after a successful
    /// open, which migrates older catalogs).
    fn schema_version(&self) -> u32;

    /// The key names and descriptions, in order. Fixed at creation, so no I/O.
    fn keys(&self) -> &[KeyDef];

    /// Inserts the dataset, or replaces URI and metadata of an existing one with the same keys,
    /// in one transaction.
    fn insert<'a>(
        &'a self,
        keys: &'a [String],
        uri: &'a str,
        metadata: Option<&'a DatasetMetadata>,
    ) -> BoxFuture<'a, Result<InsertOutcome, CatalogError>>;

    /// Sets (or replaces) the metadata of an existing dataset (lazy metadata of `serve -r`).
    fn set_metadata<'a>(
        &'a self,
        keys: &'a [String],
        metadata: &'a DatasetMetadata,
    ) -> BoxFuture<'a, Result<(), CatalogError>>;

    /// Datasets matching every filter, ordered by key values (first key first).
    fn datasets<'a>(
        &'a self,
        filters: &'a [KeyFilter],
        page: Page,
    ) -> BoxFuture<'a, Result<Vec<Dataset>, CatalogError>>;

    /// How many datasets match every filter.
    fn count<'a>(&'a self, filters: &'a [KeyFilter]) -> BoxFuture<'a, Result<u64, CatalogError>>;

    /// One dataset; [`CatalogError::NotFound`] when absent.
    fn dataset<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Dataset, CatalogError>>;

    /// The metadata of a dataset: `None` when it has none yet, [`CatalogError::NotFound`] when
    /// the dataset is absent.
    fn metadata<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Option<DatasetMetadata>, CatalogError>>;

    /// Deletes a dataset, its metadata and its memberships in collections (one transaction);
    /// [`CatalogError::NotFound`] when absent.
    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), CatalogError>>;

    /// Whether a dataset exists (`ingest --skip-existing`).
    fn contains<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<bool, CatalogError>>;

    /// Creates an empty collection: `true` when created, `false` when one of that name exists
    /// (its description is then left unchanged). Names: `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`,
    /// compared exactly (case-sensitive).
    fn create_collection<'a>(
        &'a self,
        name: &'a str,
        description: &'a str,
    ) -> BoxFuture<'a, Result<bool, CatalogError>>;

    /// Changes what is given of a collection's description and seam blending width (finite,
    /// `0..=MAX_BLEND_PX`); [`CatalogError::NotFound`] when absent.
    fn update_collection<'a>(
        &'a self,
        name: &'a str,
        description: Option<&'a str>,
        blend_px: Option<f64>,
    ) -> BoxFuture<'a, Result<(), CatalogError>>;

    /// Every collection, ordered by name (byte order).
    fn collections(&self) -> BoxFuture<'_, Result<Vec<CollectionInfo>, CatalogError>>;

    /// One collection and its members, ordered by priority (highest first), then by the order
    /// in which they were first added; [`CatalogError::NotFound`] when absent. Dataset members
    /// carry the dataset's current URI and metadata. Read in one snapshot.
    fn collection<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(CollectionInfo, Vec<Member>), CatalogError>>;

    /// Adds a member, or replaces the settings of an existing one (same collection, same
    /// ref; its place among equal priorities is kept). The collection must exist, and a
    /// dataset ref must name an existing dataset ([`CatalogError::NotFound`] naming it).
    /// `metadata` is only for URI members (a dataset member has its dataset's; `Some` is then
    /// a [`CatalogError::BadRequest`] on `metadata`); for a URI member `Some` stores or
    /// replaces it and `None` keeps what is stored (so settings can change without
    /// recomputing it).
    fn put_member<'a>(
        &'a self,
        name: &'a str,
        source: &'a MemberRef,
        settings: &'a MemberSettings,
        metadata: Option<&'a DatasetMetadata>,
    ) -> BoxFuture<'a, Result<InsertOutcome, CatalogError>>;

    /// Removes a member; [`CatalogError::NotFound`] when the collection or the member is
    /// absent.
    fn remove_member<'a>(
        &'a self,
        name: &'a str,
        source: &'a MemberRef,
    ) -> BoxFuture<'a, Result<(), CatalogError>>;

    /// Deletes a collection and its members (the datasets stay);
    /// [`CatalogError::NotFound`] when absent.
    fn delete_collection<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), CatalogError>>;

    /// Closes connections, waiting for running statements to finish.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// Where a catalog lives, parsed from what a user typed: a path or `sqlite://path` for SQLite;
/// `postgres://` and `mysql://` URLs are recognised and refused until those drivers exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogLocation {
    Sqlite(PathBuf),
}

impl CatalogLocation {
    pub fn parse(location: &str) -> Result<Self, CatalogError> {
        if location.is_empty() {
            return Err(CatalogError::BadRequest {
                field: "catalog",
                reason: "the catalog location is empty".into(),
            });
        }
        if let Some(path) = location.strip_prefix("sqlite://") {
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        for scheme in ["postgres://", "postgresql://", "mysql://", "mariadb://"] {
            if location.starts_with(scheme) {
                return Err(CatalogError::BadRequest {
                    field: "catalog",
                    reason: format!(
                        "{} catalogs are not supported yet; use a SQLite file",
                        scheme.trim_end_matches("://")
                    ),
                });
            }
        }
        Ok(Self::Sqlite(PathBuf::from(location)))
    }
}

/// Opens an existing catalog (migrating an older schema).
pub async fn open(location: &CatalogLocation) -> Result<Box<dyn Catalog>, CatalogError> {
    match location {
        CatalogLocation::Sqlite(path) => Ok(Box::new(SqliteCatalog::open(path).await?)),
    }
}

/// Creates a new, empty catalog; [`CatalogError::Conflict`] when one exists there.
pub async fn create(
    location: &CatalogLocation,
    keys: &[KeyDef],
) -> Result<Box<dyn Catalog>, CatalogError> {
    match location {
        CatalogLocation::Sqlite(path) => Ok(Box::new(SqliteCatalog::create(path, keys).await?)),
    }
}

/// Opens the catalog if it exists (its key names must equal those of `keys`; descriptions are
/// kept as created), else creates it: what a resumable `kiln ingest -o CATALOG` needs.
pub async fn create_or_open(
    location: &CatalogLocation,
    keys: &[KeyDef],
) -> Result<Box<dyn Catalog>, CatalogError> {
    match location {
        CatalogLocation::Sqlite(path) => {
            Ok(Box::new(SqliteCatalog::create_or_open(path, keys).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_pick_the_backend_by_scheme() {
        assert_eq!(
            CatalogLocation::parse("cat.sqlite").ok(),
            Some(CatalogLocation::Sqlite("cat.sqlite".into()))
        );
        assert_eq!(
            CatalogLocation::parse("sqlite:///tmp/c.db").ok(),
            Some(CatalogLocation::Sqlite("/tmp/c.db".into()))
        );
        for refused in ["postgres://u@h/db", "mysql://h/db", ""] {
            assert!(
                matches!(
                    CatalogLocation::parse(refused),
                    Err(CatalogError::BadRequest {
                        field: "catalog",
                        ..
                    })
                ),
                "{refused}"
            );
        }
    }

    #[test]
    fn page_offsets_do_not_overflow() -> Result<(), CatalogError> {
        let p = Page::new(MAX_PAGE_LIMIT, u32::MAX)?;
        assert_eq!(p.offset(), u64::from(MAX_PAGE_LIMIT) * u64::from(u32::MAX));
        assert_eq!(Page::all().offset(), 0);
        assert_eq!(Page::all().limit(), None);
        Ok(())
    }

    #[tokio::test]
    async fn backend_neutral_entry_points() -> Result<(), CatalogError> {
        let h = SqliteHarness::new().map_err(|e| CatalogError::bad("test", e.to_string()))?;
        let location = CatalogLocation::parse(&h.path().display().to_string())?;
        assert!(matches!(
            open(&location).await,
            Err(CatalogError::NotFound { .. })
        ));
        let keys = [KeyDef::new("name", "")?];
        let created = create_or_open(&location, &keys).await?;
        assert_eq!(created.backend(), "sqlite");
        created.insert(&["x".into()], "/x.tif", None).await?;
        created.close().await;
        let opened = open(&location).await?;
        assert!(opened.contains(&["x".into()]).await?);
        assert!(matches!(
            create(&location, &keys).await,
            Err(CatalogError::Conflict { .. })
        ));
        opened.close().await;
        Ok(())
    }
}
