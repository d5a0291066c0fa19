//! Fetching just enough bytes to parse a TIFF header: parse, and when the parser asks for
//! bytes it has not got, fetch them and parse again.

use bytes::Bytes;
use kiln_cog::{CogError, RangeData, RawGeoTags, TiffHeader};
use kiln_storage::{ByteRange, ByteSource};

use crate::EngineError;

/// First read: most COG headers fit in 64 KiB; striped files with many strips need more.
const FIRST_READ: u64 = 64 * 1024;
/// Smallest follow-up read, to avoid one request per tag.
const MIN_READ: u64 = 64 * 1024;
/// Bounds that stop a hostile file from making us read forever.
const MAX_ROUNDS: usize = 256;
const MAX_HEADER_BYTES: u64 = 256 * 1024 * 1024;

/// The byte ranges fetched so far.
#[derive(Debug, Default)]
pub(crate) struct Prefetched {
    len: u64,
    chunks: Vec<(u64, Bytes)>,
}

impl Prefetched {
    fn fetched_bytes(&self) -> u64 {
        self.chunks.iter().map(|(_, b)| b.len() as u64).sum()
    }
}

impl RangeData for Prefetched {
    fn len(&self) -> u64 {
        self.len
    }

    fn get(&self, offset: u64, len: u64) -> Result<&[u8], CogError> {
        let end = offset.checked_add(len).ok_or_else(|| CogError::Truncated {
            reason: format!("range {offset}+{len} overflows"),
        })?;
        if end > self.len {
            return Err(CogError::Truncated {
                reason: format!("needs bytes {offset}..{end} but the file has {}", self.len),
            });
        }
        for (start, bytes) in &self.chunks {
            let chunk_end = start + bytes.len() as u64;
            if offset >= *start && end <= chunk_end {
                let (s, e) = (
                    usize::try_from(offset - start),
                    usize::try_from(end - start),
                );
                if let (Ok(s), Ok(e)) = (s, e) {
                    return Ok(&bytes[s..e]);
                }
            }
        }
        Err(CogError::NeedBytes { offset, len })
    }
}

/// Reads and parses the header of `source`.
pub(crate) async fn fetch_header(source: &dyn ByteSource) -> Result<TiffHeader, EngineError> {
    fetch_parsed(source, |d| TiffHeader::parse(d)).await
}

/// Reads and parses the TIFF header of a local file (any TIFF: no georeferencing needed).
pub async fn read_tiff_header(path: &std::path::Path) -> Result<TiffHeader, EngineError> {
    let file = kiln_storage::open_path(path).await?;
    fetch_header(file.as_ref()).await
}

/// Reads the georeferencing tags of `source`'s first IFD, verbatim.
pub(crate) async fn fetch_geo_tags(source: &dyn ByteSource) -> Result<RawGeoTags, EngineError> {
    fetch_parsed(source, |d| RawGeoTags::read(d)).await
}

/// Parses with `parse`, fetching the bytes it asks for until it has enough.
async fn fetch_parsed<T>(
    source: &dyn ByteSource,
    parse: impl Fn(&Prefetched) -> Result<T, CogError>,
) -> Result<T, EngineError> {
    let uri = source.identity().uri.clone();
    let size = source.len();
    let mut data = Prefetched {
        len: size,
        chunks: Vec::new(),
    };
    let first = FIRST_READ.min(size);
    if first > 0 {
        data.chunks
            .push((0, source.read_range(ByteRange::new(0, first)).await?));
    }
    for _ in 0..MAX_ROUNDS {
        match parse(&data) {
            Ok(h) => return Ok(h),
            Err(CogError::NeedBytes { offset, len }) => {
                if data.fetched_bytes().saturating_add(len) > MAX_HEADER_BYTES {
                    return Err(EngineError::Unsupported {
                        uri,
                        reason: format!("header larger than {MAX_HEADER_BYTES} bytes"),
                        cause: None,
                    });
                }
                let want = len.max(MIN_READ).min(size.saturating_sub(offset));
                let bytes = source.read_range(ByteRange::new(offset, want)).await?;
                data.chunks.push((offset, bytes));
            }
            Err(e) => return Err(EngineError::from_cog(&uri, e)),
        }
    }
    Err(EngineError::BadSource {
        uri,
        reason: format!("header needs more than {MAX_ROUNDS} reads"),
        cause: None,
    })
}
