//! A raster buffer: samples of one or more bands plus a validity mask.

use crate::dtype::{DataType, Samples};
use crate::CoreError;

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

    /// Stacks rasters of one size band after band; the mask is valid where every input is
    /// valid (a pixel missing in one channel is missing in all). Inputs of one type keep it;
    /// mixed types become float64, which holds every sample exactly.
    pub fn stack(rasters: Vec<Raster>) -> Result<Raster, CoreError> {
        let Some(first) = rasters.first() else {
            return Err(CoreError::invalid("stack", "no rasters to stack"));
        };
        let (w, h) = (first.width, first.height);
        if let Some(r) = rasters.iter().find(|r| (r.width, r.height) != (w, h)) {
            return Err(CoreError::invalid(
                "stack",
                format!("{}x{} does not match {w}x{h}", r.width, r.height),
            ));
        }
        if rasters.len() == 1 {
            return rasters
                .into_iter()
                .next()
                .ok_or_else(|| CoreError::invalid("stack", "no rasters to stack"));
        }
        let dtype = first.dtype();
        let mut mask = vec![255u8; w * h];
        let mut bands = 0;
        for r in &rasters {
            for (m, &v) in mask.iter_mut().zip(&r.mask) {
                *m = (*m).min(v);
            }
            bands += r.bands;
        }
        macro_rules! concat_as {
            ($($var:ident),*) => {
                match dtype {
                    $(DataType::$var if rasters.iter().all(|r| r.dtype() == dtype) => {
                        let mut out = Vec::with_capacity(w * h * bands);
                        for r in &rasters {
                            if let Samples::$var(v) = &r.samples {
                                out.extend_from_slice(v);
                            }
                        }
                        Samples::$var(out)
                    })*
                    _ => {
                        let mut out = Vec::with_capacity(w * h * bands);
                        for r in &rasters {
                            out.extend((0..r.samples.len()).map(|i| r.samples.get_f64(i)));
                        }
                        Samples::F64(out)
                    }
                }
            };
        }
        let samples = concat_as!(U8, I8, U16, I16, U32, I32, F32, F64);
        Ok(Raster {
            width: w,
            height: h,
            bands,
            samples,
            mask,
        })
    }
}
