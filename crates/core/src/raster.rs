//! A raster buffer: samples of one or more bands plus a validity mask.

use crate::dtype::{DataType, Samples};

/// `width` x `height` pixels of `bands` bands, stored band-sequentially (all of band 0, then
/// all of band 1, ...), row-major within a band, plus one validity mask shared by all bands
/// (255 = valid, 0 = invalid), as rio-tiler and TiTiler use it.
#[derive(Debug, Clone, PartialEq)]
pub struct Raster {
    pub width: usize,
    pub height: usize,
    pub bands: usize,
    pub samples: Samples,
    pub mask: Vec<u8>,
}

impl Raster {
    /// An all-invalid raster of zeros.
    pub fn empty(width: usize, height: usize, bands: usize, dtype: DataType) -> Self {
        Self {
            width,
            height,
            bands,
            samples: Samples::zeros(dtype, width * height * bands),
            mask: vec![0; width * height],
        }
    }

    pub fn dtype(&self) -> DataType {
        self.samples.dtype()
    }

    pub fn pixel_count(&self) -> usize {
        self.width * self.height
    }

    /// Fraction of pixels that are valid.
    pub fn valid_fraction(&self) -> f64 {
        if self.mask.is_empty() {
            return 0.0;
        }
        let valid = self.mask.iter().filter(|&&m| m != 0).count() as f64;
        let total = self.mask.len() as f64;
        valid / total
    }

    /// True when no pixel is valid.
    pub fn is_fully_masked(&self) -> bool {
        self.mask.iter().all(|&m| m == 0)
    }

    /// Approximate heap size in bytes (for cache weights).
    pub fn size_bytes(&self) -> usize {
        self.samples.size_bytes() + self.mask.len()
    }
}
