//! The one error type of `kiln-storage`.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("{uri}: not found")]
    NotFound { uri: String },
    #[error("{uri}: cannot read bytes {offset}..{end}: {reason}")]
    Read {
        uri: String,
        offset: u64,
        end: u64,
        reason: String,
    },
    #[error("{uri}: range {offset}..{end} is past the end of the object ({size} bytes)")]
    OutOfRange {
        uri: String,
        offset: u64,
        end: u64,
        size: u64,
    },
    #[error("{uri}: {source}")]
    Io {
        uri: String,
        #[source]
        source: std::io::Error,
    },
    /// The URI cannot name a source (empty, a remote host in a `file://` URI, bad encoding).
    #[error("{uri}: bad source URI: {reason}")]
    BadUri { uri: String, reason: String },
    /// A well-formed URI of a kind Kiln cannot read (yet).
    #[error("{uri}: unsupported source: {reason}")]
    Unsupported { uri: String, reason: String },
    #[error("internal storage error: {reason}")]
    Internal { reason: String },
}
