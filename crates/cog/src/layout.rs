//! Cloud-Optimized GeoTIFF layout check: does the file let a reader fetch its header in one
//! small read and any block of any resolution with one range request?
//!
//! The rules are those of the OGC COG standard and GDAL's `validate_cloud_optimized_geotiff`:
//! tiled images, internal overviews for images larger than 512 pixels, all IFDs at the start
//! of the file ahead of the image data, overviews from finest to coarsest in IFD order, and
//! image data ordered from the coarsest overview to the full-resolution image.

use crate::header::{ImageIfd, TiffHeader};
use crate::ifd::FileHeader;
use crate::{CogError, RangeData};

/// Images wider or taller than this need overviews.
const OVERVIEW_THRESHOLD: u32 = 512;

/// Smallest offset of the stored (non-sparse) blocks of an image.
fn first_data_offset(im: &ImageIfd) -> Option<u64> {
    (0..im.block_offsets.len())
        .filter_map(|i| im.block_range(i).map(|(o, _)| o))
        .min()
}

impl TiffHeader {
    /// Reasons why this file is not a Cloud-Optimized GeoTIFF; empty when it is one.
    pub fn cog_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(full) = self.images.first() else {
            return vec!["the file holds no image".into()];
        };
        for (i, im) in self.images.iter().enumerate() {
            if !im.tiled {
                problems.push(if i == 0 {
                    "the full-resolution image is striped, not tiled".to_string()
                } else {
                    format!(
                        "overview {i} ({}x{}) is striped, not tiled",
                        im.width, im.height
                    )
                });
            }
        }
        if self.images.len() == 1
            && (full.width > OVERVIEW_THRESHOLD || full.height > OVERVIEW_THRESHOLD)
        {
            problems.push(format!(
                "the image is {}x{} (larger than {OVERVIEW_THRESHOLD} px) but has no overviews",
                full.width, full.height
            ));
        }

        // All IFDs (images and masks) in file order must precede all image data.
        let all: Vec<&ImageIfd> = self
            .images
            .iter()
            .chain(self.masks.iter().flatten())
            .collect();
        let last_ifd = all.iter().map(|im| im.ifd_offset).max().unwrap_or(0);
        let first_data = all.iter().filter_map(|im| first_data_offset(im)).min();
        if let Some(d) = first_data.filter(|&d| d < last_ifd) {
            problems.push(format!(
                "image data starts at byte {d}, before the IFD at byte {last_ifd}: IFDs must all come first"
            ));
        }
        if all.iter().any(|im| im.ifd_offset < full.ifd_offset) {
            problems.push(format!(
                "the full-resolution IFD (at byte {}) is not the first IFD",
                full.ifd_offset
            ));
        }

        // Overviews are sorted finest first; their IFDs must come in that order too, and their
        // data in the opposite order (coarsest first, full resolution last).
        for (i, pair) in self.images.windows(2).enumerate() {
            let (finer, coarser) = (&pair[0], &pair[1]);
            if coarser.ifd_offset < finer.ifd_offset {
                problems.push(format!(
                    "the IFD of the {}x{} image (byte {}) comes before that of the finer {}x{} image (byte {})",
                    coarser.width, coarser.height, coarser.ifd_offset,
                    finer.width, finer.height, finer.ifd_offset
                ));
            }
            if let (Some(f), Some(c)) = (first_data_offset(finer), first_data_offset(coarser)) {
                if f < c {
                    problems.push(format!(
                        "data of image {i} ({}x{}, byte {f}) comes before the data of the coarser {}x{} image (byte {c})",
                        finer.width, finer.height, coarser.width, coarser.height
                    ));
                }
            }
        }
        problems
    }
}

/// The "ghost" structural metadata GDAL writes right after the TIFF header of the files it
/// lays out for cloud access (`GDAL_STRUCTURAL_METADATA_SIZE=...`, then lines such as
/// `LAYOUT=IFDS_BEFORE_DATA`); `None` when the file has none.
pub fn gdal_structural_metadata(data: &dyn RangeData) -> Result<Option<String>, CogError> {
    const PREFIX: &[u8] = b"GDAL_STRUCTURAL_METADATA_SIZE=";
    // "GDAL_STRUCTURAL_METADATA_SIZE=000140 bytes\n"
    const LINE: u64 = 43;
    let start = if FileHeader::read(data)?.bigtiff {
        16
    } else {
        8
    };
    if data.len() < start + LINE {
        return Ok(None);
    }
    let line = data.get(start, LINE)?;
    let Some(rest) = line.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let size: u64 = match std::str::from_utf8(rest.get(..6).unwrap_or_default())
        .ok()
        .and_then(|d| d.parse().ok())
    {
        Some(s) => s,
        None => return Ok(None),
    };
    let size = size.min(data.len().saturating_sub(start + LINE));
    let body = data.get(start + LINE, size)?;
    Ok(Some(String::from_utf8_lossy(body).into_owned()))
}
