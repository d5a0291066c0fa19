//! The one error type of `kiln-cog`.

use thiserror::Error;

/// Errors from parsing, decoding or writing TIFF data.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CogError {
    /// Not an error for the user: the parser needs bytes `offset..offset+len` that have not
    /// been fetched yet. The caller fetches them and parses again.
    #[error("need {len} bytes at offset {offset}")]
    NeedBytes { offset: u64, len: u64 },
    /// The data ends before a structure it declares (file cut short, offset past the end).
    #[error("truncated TIFF: {reason}")]
    Truncated { reason: String },
    /// The data is not a valid TIFF or contradicts itself.
    #[error("malformed TIFF: {reason}")]
    Malformed { reason: String },
    /// Valid TIFF, but it uses a feature Kiln does not implement (named in `feature`).
    #[error("unsupported TIFF feature: {feature}")]
    Unsupported { feature: String },
    /// A block's compressed bytes could not be decoded.
    #[error("cannot decode block {block}: {reason}")]
    Decode { block: usize, reason: String },
    /// A structure exceeds a safety bound (huge IFD count, giant tile...).
    #[error("{what} too large: {reason}")]
    TooLarge { what: &'static str, reason: String },
}
