//! Merging neighbouring byte ranges into fewer reads, and splitting the results back.

use bytes::Bytes;

use crate::StorageError;

/// A half-open byte range `offset..offset + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteRange {
    pub offset: u64,
    pub len: u64,
}

impl ByteRange {
    pub fn new(offset: u64, len: u64) -> Self {
        Self { offset, len }
    }

    /// One past the last byte (saturating, so hostile lengths cannot wrap).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// The reads to issue for a set of requested ranges, and where each request lands in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoalescePlan {
    /// Merged reads, sorted by offset, non-overlapping.
    pub reads: Vec<ByteRange>,
    /// For each requested range (in request order): index into `reads` and the offset within it.
    pub slices: Vec<(usize, u64, u64)>,
}

impl CoalescePlan {
    /// Cuts the requested ranges out of the merged reads' bytes.
    pub fn split(&self, merged: &[Bytes]) -> Result<Vec<Bytes>, StorageError> {
        self.slices
            .iter()
            .map(|&(read, start, len)| {
                let buf = merged.get(read).ok_or_else(|| StorageError::Internal {
                    reason: format!("coalesced read {read} missing"),
                })?;
                let (start, end) = (usize::try_from(start), usize::try_from(start + len));
                match (start, end) {
                    (Ok(s), Ok(e)) if e <= buf.len() => Ok(buf.slice(s..e)),
                    _ => Err(StorageError::Internal {
                        reason: format!("coalesced read {read} shorter than planned"),
                    }),
                }
            })
            .collect()
    }
}

/// Plans reads covering `ranges`, merging ranges whose gap is at most `max_gap` bytes.
pub fn coalesce_ranges(ranges: &[ByteRange], max_gap: u64) -> CoalescePlan {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| (ranges[i].offset, ranges[i].len));
    let mut reads: Vec<ByteRange> = Vec::new();
    let mut slices = vec![(0usize, 0u64, 0u64); ranges.len()];
    for i in order {
        let r = ranges[i];
        match reads.last_mut() {
            Some(last) if r.offset <= last.end().saturating_add(max_gap) => {
                let end = last.end().max(r.end());
                last.len = end - last.offset;
            }
            _ => reads.push(r),
        }
        let idx = reads.len() - 1;
        slices[i] = (idx, r.offset - reads[idx].offset, r.len);
    }
    CoalescePlan { reads, slices }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_neighbours_and_keeps_request_order() {
        let ranges = [
            ByteRange::new(100, 10),
            ByteRange::new(0, 10),
            ByteRange::new(15, 5),
            ByteRange::new(5000, 1),
        ];
        let plan = coalesce_ranges(&ranges, 80);
        assert_eq!(
            plan.reads,
            vec![ByteRange::new(0, 110), ByteRange::new(5000, 1)]
        );
        let merged: Vec<Bytes> = plan
            .reads
            .iter()
            .map(|r| {
                Bytes::from(
                    (r.offset..r.end())
                        .map(|b| (b % 251) as u8)
                        .collect::<Vec<u8>>(),
                )
            })
            .collect();
        let parts = plan.split(&merged).unwrap();
        for (r, p) in ranges.iter().zip(&parts) {
            let want: Vec<u8> = (r.offset..r.end()).map(|b| (b % 251) as u8).collect();
            assert_eq!(p.as_ref(), want.as_slice());
        }
    }

    #[test]
    fn overlapping_and_duplicate_ranges() {
        let ranges = [
            ByteRange::new(10, 20),
            ByteRange::new(10, 20),
            ByteRange::new(15, 2),
        ];
        let plan = coalesce_ranges(&ranges, 0);
        assert_eq!(plan.reads, vec![ByteRange::new(10, 20)]);
        assert_eq!(plan.slices, vec![(0, 0, 20), (0, 0, 20), (0, 5, 2)]);
    }

    #[test]
    fn gap_zero_keeps_distant_ranges_apart() {
        let plan = coalesce_ranges(&[ByteRange::new(0, 10), ByteRange::new(11, 1)], 0);
        assert_eq!(plan.reads.len(), 2);
    }
}
