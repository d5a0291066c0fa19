//! An in-memory [`ByteSource`]: for tests, benchmarks, and small objects already fetched.

use bytes::Bytes;

use crate::{BoxFuture, ByteRange, ByteSource, SourceIdentity, StorageError};

/// Bytes held in memory, served as an object.
#[derive(Debug, Clone)]
pub struct MemorySource {
    data: Bytes,
    identity: SourceIdentity,
}

impl MemorySource {
    /// Wraps `data` under `uri`; `version` distinguishes different contents with the same uri.
    pub fn new(uri: impl Into<String>, version: impl Into<String>, data: impl Into<Bytes>) -> Self {
        let data = data.into();
        let identity = SourceIdentity {
            uri: uri.into(),
            size: data.len() as u64,
            version: version.into(),
        };
        Self { data, identity }
    }

    fn slice(&self, range: ByteRange) -> Result<Bytes, StorageError> {
        let size = self.identity.size;
        let end = range.end();
        match (usize::try_from(range.offset), usize::try_from(end)) {
            (Ok(s), Ok(e)) if end <= size && range.offset.checked_add(range.len).is_some() => {
                Ok(self.data.slice(s..e))
            }
            _ => Err(StorageError::OutOfRange {
                uri: self.identity.uri.clone(),
                offset: range.offset,
                end,
                size,
            }),
        }
    }
}

impl ByteSource for MemorySource {
    fn identity(&self) -> &SourceIdentity {
        &self.identity
    }

    fn read_range(&self, range: ByteRange) -> BoxFuture<'_, Result<Bytes, StorageError>> {
        let r = self.slice(range);
        Box::pin(async move { r })
    }

    fn read_ranges<'a>(
        &'a self,
        ranges: &'a [ByteRange],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, StorageError>> {
        // Slicing shared bytes costs nothing: no need to coalesce.
        let r = ranges.iter().map(|r| self.slice(*r)).collect();
        Box::pin(async move { r })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slices_and_bounds() {
        let m = MemorySource::new("mem://a", "1", vec![1u8, 2, 3, 4, 5]);
        assert_eq!(
            &m.read_range(ByteRange::new(1, 3)).await.unwrap()[..],
            &[2, 3, 4]
        );
        let parts = m
            .read_ranges(&[ByteRange::new(4, 1), ByteRange::new(0, 2)])
            .await
            .unwrap();
        assert_eq!((&parts[0][..], &parts[1][..]), (&[5u8][..], &[1u8, 2][..]));
        assert!(m.read_range(ByteRange::new(3, 3)).await.is_err());
        assert!(m.read_range(ByteRange::new(u64::MAX, 2)).await.is_err());
    }
}
