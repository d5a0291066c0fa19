//! Fuzz target: arbitrary bytes as a whole TIFF file, and as the fetched prefix of a longer one.
//!
//! The whole-file parse must never panic; when it succeeds, up to `MAX_DECODES` blocks whose
//! byte ranges lie inside the input are decoded, and a successful decode must have the shape
//! the IFD promises. The prefix parse checks the incremental-fetch protocol: a `NeedBytes`
//! answer must ask for bytes that are not already there (else the caller would loop forever)
//! and that lie inside the file.
#![no_main]

use kiln_cog::{decode_block, CogError, RangeData, TiffHeader};
use libfuzzer_sys::fuzz_target;

/// Blocks decoded per input: enough to reach every codec and predictor path, few enough to keep
/// executions fast.
const MAX_DECODES: usize = 8;
/// Block indices tried per image (most may be sparse or point outside the input).
const MAX_TRIES: usize = 64;

/// The first `fetched.len()` bytes of a file of `total` bytes.
struct Prefix<'a> {
    fetched: &'a [u8],
    total: u64,
}

impl RangeData for Prefix<'_> {
    fn len(&self) -> u64 {
        self.total
    }

    fn get(&self, offset: u64, len: u64) -> Result<&[u8], CogError> {
        let end = offset.checked_add(len).ok_or_else(|| CogError::Truncated {
            reason: "range overflows".into(),
        })?;
        if end > self.total {
            return Err(CogError::Truncated {
                reason: format!("{offset}+{len} past {}", self.total),
            });
        }
        match (usize::try_from(offset), usize::try_from(end)) {
            (Ok(o), Ok(e)) if e <= self.fetched.len() => Ok(&self.fetched[o..e]),
            _ => Err(CogError::NeedBytes { offset, len }),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = TiffHeader::parse(&data) {
        decode_some(&header, data);
    }

    let prefix = Prefix {
        fetched: data,
        total: data.len() as u64 * 2 + 1,
    };
    if let Err(CogError::NeedBytes { offset, len }) = TiffHeader::parse(&prefix) {
        let end = offset.checked_add(len);
        assert!(
            end.is_some_and(|e| e > data.len() as u64),
            "NeedBytes {offset}+{len} asks for bytes already fetched ({})",
            data.len()
        );
        assert!(
            end.is_some_and(|e| e <= prefix.total),
            "NeedBytes {offset}+{len} lies past the end of the file ({})",
            prefix.total
        );
    }
});

fn decode_some(header: &TiffHeader, data: &[u8]) {
    let mut left = MAX_DECODES;
    for ifd in header.images.iter().chain(header.masks.iter().flatten()) {
        for i in (0..ifd.block_count()).take(MAX_TRIES) {
            if left == 0 {
                return;
            }
            let Some((offset, len)) = ifd.block_range(i) else {
                continue;
            };
            let range = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(len).ok())
                .and_then(|(o, n)| Some(o..o.checked_add(n)?));
            let Some(bytes) = range.and_then(|r| data.get(r)) else {
                continue;
            };
            left -= 1;
            if let Ok(block) = decode_block(header, ifd, i, bytes) {
                assert_eq!(
                    (block.width, block.height, block.bands, block.samples.len()),
                    (
                        ifd.block_width as usize,
                        ifd.block_rows(i),
                        ifd.block_bands(),
                        block.width * block.height * block.bands
                    ),
                    "block {i} shape"
                );
            }
        }
    }
}
