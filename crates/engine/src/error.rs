//! The one error type of `kiln-engine`, grouped by cause for a one-`match` HTTP mapping.

use std::sync::Arc;

use kiln_cog::CogError;
use kiln_core::CoreError;
use kiln_storage::StorageError;
use thiserror::Error;

/// The lower-level error behind an engine error, shared so the error stays `Clone` (cached
/// failures are handed to every waiter).
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, Clone, Error)]
pub enum EngineError {
    /// The named source does not exist.
    #[error("{uri}: not found")]
    NotFound { uri: String },
    /// The request itself is wrong (bad tile, bad band, bad option).
    #[error("invalid {what}: {reason}")]
    BadRequest { what: String, reason: String },
    /// The source is a valid file that uses something Kiln does not support.
    #[error("{uri}: unsupported: {reason}")]
    Unsupported {
        uri: String,
        reason: String,
        #[source]
        cause: Option<Cause>,
    },
    /// The source is broken (truncated, corrupt header or block).
    #[error("{uri}: invalid source: {reason}")]
    BadSource {
        uri: String,
        reason: String,
        #[source]
        cause: Option<Cause>,
    },
    /// Reading bytes failed.
    #[error("{uri}: read failed: {reason}")]
    Upstream {
        uri: String,
        reason: String,
        #[source]
        cause: Option<Cause>,
    },
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
        let (unsupported, reason) = match &e {
            CogError::Unsupported { feature } => (true, feature.clone()),
            CogError::TooLarge { what, reason } => (true, format!("{what} too large: {reason}")),
            other => (false, other.to_string()),
        };
        let cause: Option<Cause> = Some(Arc::new(e));
        if unsupported {
            Self::Unsupported { uri, reason, cause }
        } else {
            Self::BadSource { uri, reason, cause }
        }
    }

    pub(crate) fn from_core(uri: &str, e: CoreError) -> Self {
        match e {
            CoreError::Invalid { what, reason } => Self::BadRequest {
                what: what.to_string(),
                reason,
            },
            CoreError::Unsupported { what, ref reason } => Self::Unsupported {
                uri: uri.to_string(),
                reason: format!("{what}: {reason}"),
                cause: Some(Arc::new(e)),
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
            StorageError::OutOfRange { ref uri, .. } => Self::BadSource {
                uri: uri.clone(),
                reason: "file is shorter than its header says".into(),
                cause: Some(Arc::new(e)),
            },
            StorageError::Read {
                ref uri,
                ref reason,
                ..
            } => Self::Upstream {
                uri: uri.clone(),
                reason: reason.clone(),
                cause: Some(Arc::new(e)),
            },
            StorageError::Io { uri, source } => Self::Upstream {
                uri,
                reason: source.to_string(),
                cause: Some(Arc::new(source)),
            },
            // A URI Kiln cannot open is a property of the source's name, not of a request.
            StorageError::BadUri { uri, reason } => Self::Unsupported {
                uri,
                reason: format!("bad source URI: {reason}"),
                cause: None,
            },
            StorageError::Unsupported { uri, reason } => Self::Unsupported {
                uri,
                reason,
                cause: None,
            },
            StorageError::Internal { reason } => Self::Internal { reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn errors_keep_their_causes_and_clone() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied by test");
        let e = EngineError::from(StorageError::Io {
            uri: "/x.tif".into(),
            source: io,
        });
        let copy = e.clone();
        for err in [&e, &copy] {
            let cause = err.source().expect("the I/O error is kept as the source");
            assert_eq!(cause.to_string(), "denied by test");
            assert!(matches!(err, EngineError::Upstream { .. }));
        }
        let cog = EngineError::from_cog(
            "/y.tif",
            CogError::Unsupported {
                feature: "compression 99".into(),
            },
        );
        assert!(cog
            .source()
            .is_some_and(|c| c.to_string().contains("compression 99")));
        assert!(matches!(cog, EngineError::Unsupported { .. }));
    }
}
