//! `kiln-storage`: where bytes come from.
//!
//! Owns the one narrow async trait for ranged reads ([`ByteSource`]), its implementations
//! (local files now; HTTP and S3 slot in beside [`FileSource`] without touching readers), the
//! identity of a source (what caches key on), and the coalescing of neighbouring ranges into
//! fewer, larger reads.

mod coalesce;
mod error;
mod file;
mod memory;
mod open;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

pub use coalesce::{coalesce_ranges, ByteRange, CoalescePlan};
pub use error::StorageError;
pub use file::FileSource;
pub use memory::MemorySource;
pub use open::{open, open_path, Location};

/// A boxed, sendable future (what trait objects of [`ByteSource`] return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What makes a source the same source for caching: its URI and a version stamp (size and
/// modification time for files, ETag for remote objects). A changed file gets a new identity,
/// so stale cached headers and blocks are never served for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceIdentity {
    pub uri: String,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch, or an ETag.
    pub version: String,
}

/// Ranged, async read access to one immutable object (file, HTTP resource, S3 object).
pub trait ByteSource: Send + Sync + std::fmt::Debug {
    fn identity(&self) -> &SourceIdentity;

    /// Size of the object in bytes.
    fn len(&self) -> u64 {
        self.identity().size
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads exactly `range`; a range past the end is an error.
    fn read_range(&self, range: ByteRange) -> BoxFuture<'_, Result<Bytes, StorageError>>;

    /// The largest gap between two ranges worth reading through to save a request.
    fn coalesce_gap(&self) -> u64 {
        64 * 1024
    }

    /// Reads several ranges, merging neighbours (gap up to [`Self::coalesce_gap`]) into fewer
    /// requests. Results come back in the order of `ranges`.
    fn read_ranges<'a>(
        &'a self,
        ranges: &'a [ByteRange],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, StorageError>> {
        Box::pin(async move {
            let plan = coalesce_ranges(ranges, self.coalesce_gap());
            let mut merged = Vec::with_capacity(plan.reads.len());
            for read in &plan.reads {
                merged.push(self.read_range(*read).await?);
            }
            plan.split(&merged)
        })
    }
}
