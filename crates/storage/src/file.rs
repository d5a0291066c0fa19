//! Local files as a [`ByteSource`]: positional reads on the blocking pool.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use bytes::Bytes;

use crate::{BoxFuture, ByteRange, ByteSource, SourceIdentity, StorageError};

/// A local file opened once and read with `pread`, so concurrent reads need no seek lock.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
    file: Arc<File>,
    identity: SourceIdentity,
}

impl FileSource {
    /// Opens `path` and records its identity (path, size, modification time).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(&p))
            .await
            .map_err(|e| StorageError::Internal {
                reason: format!("open task failed: {e}"),
            })?
    }

    /// The synchronous form of [`FileSource::open`], for callers outside an async runtime.
    pub fn open_blocking(path: &Path) -> Result<Self, StorageError> {
        let uri = path.display().to_string();
        let file = File::open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                StorageError::NotFound { uri: uri.clone() }
            } else {
                StorageError::Io {
                    uri: uri.clone(),
                    source,
                }
            }
        })?;
        let meta = file.metadata().map_err(|source| StorageError::Io {
            uri: uri.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(StorageError::Io {
                uri,
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            path: path.to_path_buf(),
            file: Arc::new(file),
            identity: SourceIdentity {
                uri,
                size: meta.len(),
                version: mtime_ns.to_string(),
            },
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads `range` synchronously (used by the async path on the blocking pool).
    pub fn read_range_blocking(&self, range: ByteRange) -> Result<Bytes, StorageError> {
        let size = self.identity.size;
        let end = range.end();
        if end > size || range.offset.checked_add(range.len).is_none() {
            return Err(StorageError::OutOfRange {
                uri: self.identity.uri.clone(),
                offset: range.offset,
                end,
                size,
            });
        }
        let len = usize::try_from(range.len).map_err(|_| StorageError::OutOfRange {
            uri: self.identity.uri.clone(),
            offset: range.offset,
            end,
            size,
        })?;
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, range.offset)
            .map_err(|e| StorageError::Read {
                uri: self.identity.uri.clone(),
                offset: range.offset,
                end,
                reason: e.to_string(),
            })?;
        Ok(Bytes::from(buf))
    }
}

impl ByteSource for FileSource {
    fn identity(&self) -> &SourceIdentity {
        &self.identity
    }

    fn coalesce_gap(&self) -> u64 {
        // Local reads are cheap per call; merge only near-adjacent blocks.
        16 * 1024
    }

    fn read_range(&self, range: ByteRange) -> BoxFuture<'_, Result<Bytes, StorageError>> {
        let this = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || this.read_range_blocking(range))
                .await
                .map_err(|e| StorageError::Internal {
                    reason: format!("read task failed: {e}"),
                })?
        })
    }

    fn read_ranges<'a>(
        &'a self,
        ranges: &'a [ByteRange],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, StorageError>> {
        // One blocking task for the whole batch instead of one per merged read.
        let this = self.clone();
        let ranges = ranges.to_vec();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let plan = crate::coalesce_ranges(&ranges, this.coalesce_gap());
                let merged = plan
                    .reads
                    .iter()
                    .map(|r| this.read_range_blocking(*r))
                    .collect::<Result<Vec<_>, _>>()?;
                plan.split(&merged)
            })
            .await
            .map_err(|e| StorageError::Internal {
                reason: format!("read task failed: {e}"),
            })?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LUX: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/dem_srtm30s_luxembourg_i16_lzw.tif"
    );

    #[tokio::test]
    async fn reads_ranges_of_a_real_file() {
        let src = FileSource::open(LUX).await.unwrap();
        let whole = std::fs::read(LUX).unwrap();
        assert_eq!(src.len(), whole.len() as u64);
        let head = src.read_range(ByteRange::new(0, 8)).await.unwrap();
        assert_eq!(&head[..], &whole[..8]);
        let ranges = [
            ByteRange::new(100, 50),
            ByteRange::new(0, 4),
            ByteRange::new(7000, 900),
        ];
        let parts = src.read_ranges(&ranges).await.unwrap();
        for (r, p) in ranges.iter().zip(parts) {
            assert_eq!(&p[..], &whole[r.offset as usize..r.end() as usize]);
        }
    }

    #[tokio::test]
    async fn errors_are_clear() {
        let missing = FileSource::open("/nonexistent/kiln.tif").await.unwrap_err();
        assert!(
            matches!(missing, StorageError::NotFound { .. }),
            "{missing}"
        );
        let src = FileSource::open(LUX).await.unwrap();
        let past = src
            .read_range(ByteRange::new(src.len() - 2, 10))
            .await
            .unwrap_err();
        assert!(past.to_string().contains("past the end"), "{past}");
    }
}
