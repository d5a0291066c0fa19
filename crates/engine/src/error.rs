//! The one error type of `kiln-engine`, grouped by cause for a one-`match` HTTP mapping.

use kiln_cog::CogError;
use kiln_core::CoreError;
use kiln_storage::StorageError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    /// The named source does not exist.
    #[error("{uri}: not found")]
    NotFound { uri: String },
    /// The request itself is wrong (bad tile, bad band, bad option).
    #[error("invalid {what}: {reason}")]
    BadRequest { what: String, reason: String },
    /// The source is a valid file that uses something Kiln does not support.
    #[error("{uri}: unsupported: {reason}")]
    Unsupported { uri: String, reason: String },
    /// The source is broken (truncated, corrupt header or block).
    #[error("{uri}: invalid source: {reason}")]
    BadSource { uri: String, reason: String },
    /// Reading bytes failed.
    #[error("{uri}: read failed: {reason}")]
    Upstream { uri: String, reason: String },
    /// A requested output would exceed a bound.
    #[error("too large: {reason}")]
    TooLarge { reason: String },
    /// A bug or a lost worker.
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

impl EngineError {
    pub(crate) fn from_cog(uri: &str, e: CogError) -> Self {
        let uri = uri.to_string();
        match e {
            CogError::Unsupported { feature } => Self::Unsupported {
                uri,
                reason: feature,
            },
            CogError::TooLarge { what, reason } => Self::Unsupported {
                uri,
                reason: format!("{what} too large: {reason}"),
            },
            other => Self::BadSource {
                uri,
                reason: other.to_string(),
            },
        }
    }

    pub(crate) fn from_core(uri: &str, e: CoreError) -> Self {
        match e {
            CoreError::Invalid { what, reason } => Self::BadRequest {
                what: what.to_string(),
                reason,
            },
            CoreError::Unsupported { what, reason } => Self::Unsupported {
                uri: uri.to_string(),
                reason: format!("{what}: {reason}"),
            },
            CoreError::TooLarge { what, reason } => Self::TooLarge {
                reason: format!("{what}: {reason}"),
            },
        }
    }

    pub(crate) fn bad_request(what: &str, reason: impl Into<String>) -> Self {
        Self::BadRequest {
            what: what.to_string(),
            reason: reason.into(),
        }
    }
}

impl From<StorageError> for EngineError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound { uri } => Self::NotFound { uri },
            StorageError::OutOfRange { uri, .. } => Self::BadSource {
                uri,
                reason: "file is shorter than its header says".into(),
            },
            StorageError::Read { uri, reason, .. } => Self::Upstream { uri, reason },
            StorageError::Io { uri, source } => Self::Upstream {
                uri,
                reason: source.to_string(),
            },
            // A URI Kiln cannot open is a property of the source's name, not of a request.
            StorageError::BadUri { uri, reason } => Self::Unsupported {
                uri,
                reason: format!("bad source URI: {reason}"),
            },
            StorageError::Unsupported { uri, reason } => Self::Unsupported { uri, reason },
            StorageError::Internal { reason } => Self::Internal { reason },
        }
    }
}
