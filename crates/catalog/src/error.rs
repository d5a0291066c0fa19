//! The one error type of the crate, grouped by cause so that the HTTP and CLI mappings are a
//! single `match`: not found (404), bad request (400), conflict (409), schema (the catalog
//! file is not one this Kiln can use), backend (I/O or database failure, 500/502).

/// Errors of every catalog operation. `catalog` fields name the database (a path, or a URL
/// without credentials) so a message stands on its own in a log.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A dataset or the catalog itself does not exist.
    #[error("not found: {what} (catalog {catalog})")]
    NotFound { catalog: String, what: String },

    /// The caller passed something invalid; `field` names the parameter.
    #[error("invalid {field}: {reason}")]
    BadRequest { field: &'static str, reason: String },

    /// The request contradicts what is stored (creating over an existing catalog, opening one
    /// with other keys).
    #[error("conflict in catalog {catalog}: {reason}")]
    Conflict { catalog: String, reason: String },

    /// The database is not a Kiln catalog, is newer than this Kiln, or holds data that does not
    /// decode.
    #[error("catalog {catalog}: {reason}")]
    Schema { catalog: String, reason: String },

    /// The database failed (I/O, locking, disk full, constraint, injected test failure).
    #[error("catalog {catalog}: {operation} failed: {source}")]
    Backend {
        catalog: String,
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl CatalogError {
    pub(crate) fn bad(field: &'static str, reason: impl Into<String>) -> Self {
        Self::BadRequest {
            field,
            reason: reason.into(),
        }
    }
}
