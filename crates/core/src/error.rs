//! The one error type of `kiln-core`, grouped by cause so callers can map it in one `match`.

use thiserror::Error;

/// Errors raised by pure raster logic.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// A caller passed a value outside its valid domain (tile out of range, bad stretch...).
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// The input is well formed but asks for something Kiln does not implement.
    #[error("unsupported {what}: {reason}")]
    Unsupported { what: &'static str, reason: String },
    /// A requested output would exceed a safety bound.
    #[error("{what} too large: {reason}")]
    TooLarge { what: &'static str, reason: String },
}

impl CoreError {
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            reason: reason.into(),
        }
    }
    pub fn unsupported(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Unsupported {
            what,
            reason: reason.into(),
        }
    }
}
