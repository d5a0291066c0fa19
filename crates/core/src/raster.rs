//! A raster: samples of one or more bands, one validity mask, and optionally its grid.

use crate::dtype::{DataType, Sample, Samples};
use crate::geo::GeoTransform;
use crate::{with_samples, CoreError};

/// A rectangle of pixels: columns `col_off..col_off + width`, rows `row_off..row_off + height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelWindow {
    pub col_off: usize,
    pub row_off: usize,
    pub width: usize,
    pub height: usize,
}

impl PixelWindow {
    /// The whole of a `width` x `height` grid.
    pub fn whole(width: usize, height: usize) -> Self {
        Self {
            col_off: 0,
            row_off: 0,
            width,
            height,
        }
    }

    /// The geotransform of the window's pixel (0, 0), given the full grid's transform.
    pub fn transform(&self, full: &GeoTransform) -> GeoTransform {
        let (x, y) = full.apply(self.col_off as f64, self.row_off as f64);
        let g = full.0;
        GeoTransform([x, g[1], g[2], y, g[4], g[5]])
    }

    /// True when the window lies inside a `width` x `height` grid.
    pub fn fits_in(&self, width: usize, height: usize) -> bool {
        self.col_off
            .checked_add(self.width)
            .is_some_and(|end| end <= width)
            && self
                .row_off
                .checked_add(self.height)
                .is_some_and(|end| end <= height)
    }
}

/// Borrowed band-sequential samples of a `width` x `height` grid that has no mask of its own,
/// such as a decoded TIFF block: what [`Raster::paste_band`] and [`Raster::paste_mask`] copy
/// from.
#[derive(Debug, Clone, Copy)]
pub struct Planes<'a> {
    samples: &'a Samples,
    width: usize,
    height: usize,
    bands: usize,
}

impl<'a> Planes<'a> {
    /// `samples` must hold a whole number of `width` x `height` planes.
    pub fn new(samples: &'a Samples, width: usize, height: usize) -> Result<Self, CoreError> {
        let plane = width.checked_mul(height).unwrap_or(0);
        if plane == 0 || !samples.len().is_multiple_of(plane) {
            return Err(CoreError::invalid(
                "planes",
                format!(
                    "{} samples are not whole {width}x{height} planes",
                    samples.len()
                ),
            ));
        }
        Ok(Self {
            samples,
            width,
            height,
            bands: samples.len() / plane,
        })
    }
}

/// `width` x `height` pixels of `bands` bands, stored band-sequentially (all of band 0, then
/// all of band 1, ...), row-major within a band, plus one validity mask shared by all bands
/// (255 = valid, 0 = invalid), as rio-tiler and TiTiler use it, and optionally the grid the
/// pixels lie on: the pixel-corner transform of pixel (0, 0) in the raster's CRS.
///
/// The lengths always agree (checked by [`Raster::new`]); operations that take two rasters
/// check that their sizes, bands and windows agree and say so when they do not.
#[derive(Debug, Clone, PartialEq)]
pub struct Raster {
    width: usize,
    height: usize,
    bands: usize,
    samples: Samples,
    mask: Vec<u8>,
    transform: Option<GeoTransform>,
}

/// Applies `$body` to two `Samples` of one type, else evaluates `$otherwise`.
macro_rules! same_type {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $body:expr, $otherwise:expr) => {
        match ($a, $b) {
            (Samples::U8($x), Samples::U8($y)) => $body,
            (Samples::I8($x), Samples::I8($y)) => $body,
            (Samples::U16($x), Samples::U16($y)) => $body,
            (Samples::I16($x), Samples::I16($y)) => $body,
            (Samples::U32($x), Samples::U32($y)) => $body,
            (Samples::I32($x), Samples::I32($y)) => $body,
            (Samples::F32($x), Samples::F32($y)) => $body,
            (Samples::F64($x), Samples::F64($y)) => $body,
            _ => $otherwise,
        }
    };
}

/// Copies the `part` of a row-major plane `src_width` wide into a plane `dst_width` wide at
/// (`col`, `row`). Both rectangles must have been checked to lie inside their planes.
fn copy_rect<T: Copy>(
    dst: &mut [T],
    dst_width: usize,
    (col, row): (usize, usize),
    src: &[T],
    src_width: usize,
    part: PixelWindow,
) {
    let w = part.width;
    if w == 0 {
        return;
    }
    for y in 0..part.height {
        let s = (part.row_off + y) * src_width + part.col_off;
        let d = (row + y) * dst_width + col;
        dst[d..d + w].copy_from_slice(&src[s..s + w]);
    }
}

impl Raster {
    /// A raster from its samples (band-sequential, `width * height * bands` of them) and its
    /// mask (`width * height` bytes); refuses other lengths and a raster without bands.
    pub fn new(
        width: usize,
        height: usize,
        bands: usize,
        samples: Samples,
        mask: Vec<u8>,
    ) -> Result<Self, CoreError> {
        let plane = Self::checked_plane(width, height, bands)?;
        if samples.len() != plane * bands || mask.len() != plane {
            return Err(CoreError::invalid(
                "raster",
                format!(
                    "{width}x{height}x{bands} needs {} samples and a {plane}-byte mask, not {} \
                     samples and {} bytes",
                    plane * bands,
                    samples.len(),
                    mask.len()
                ),
            ));
        }
        Ok(Self {
            width,
            height,
            bands,
            samples,
            mask,
            transform: None,
        })
    }

    /// An all-invalid raster of zeros.
    pub fn empty(
        width: usize,
        height: usize,
        bands: usize,
        dtype: DataType,
    ) -> Result<Self, CoreError> {
        let plane = Self::checked_plane(width, height, bands)?;
        Ok(Self {
            width,
            height,
            bands,
            samples: Samples::zeros(dtype, plane * bands),
            mask: vec![0; plane],
            transform: None,
        })
    }

    /// `width * height`, when `width * height * bands` fits and there is a band.
    fn checked_plane(width: usize, height: usize, bands: usize) -> Result<usize, CoreError> {
        if bands == 0 {
            return Err(CoreError::invalid(
                "raster",
                "a raster needs at least one band",
            ));
        }
        width
            .checked_mul(height)
            .filter(|p| p.checked_mul(bands).is_some())
            .ok_or_else(|| CoreError::TooLarge {
                what: "raster",
                reason: format!("{width}x{height}x{bands} samples"),
            })
    }

    /// The same raster placed on a grid: `transform` is the pixel-corner transform of pixel
    /// (0, 0) in the raster's CRS.
    pub fn with_transform(mut self, transform: GeoTransform) -> Self {
        self.transform = Some(transform);
        self
    }

    /// The same samples with another mask (`width * height` bytes).
    pub fn with_mask(self, mask: Vec<u8>) -> Result<Self, CoreError> {
        let transform = self.transform;
        let r = Raster::new(self.width, self.height, self.bands, self.samples, mask)?;
        Ok(Raster { transform, ..r })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn bands(&self) -> usize {
        self.bands
    }

    /// Band-sequential samples.
    pub fn samples(&self) -> &Samples {
        &self.samples
    }

    /// One byte per pixel: 0 = invalid, anything else (255) = valid.
    pub fn mask(&self) -> &[u8] {
        &self.mask
    }

    /// The grid, when the raster's maker knows it (see [`Self::with_transform`]).
    pub fn transform(&self) -> Option<&GeoTransform> {
        self.transform.as_ref()
    }

    pub fn dtype(&self) -> DataType {
        self.samples.dtype()
    }

    pub fn pixel_count(&self) -> usize {
        self.width * self.height
    }

    /// The samples and the mask, for consumers that take them over (encoders).
    pub fn into_parts(self) -> (Samples, Vec<u8>) {
        (self.samples, self.mask)
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

    /// True when every pixel is valid.
    pub fn is_fully_valid(&self) -> bool {
        // `contains` on bytes is a vectorised search; `all` stops early but goes byte by byte.
        !self.mask.contains(&0)
    }

    /// Approximate heap size in bytes (for cache weights).
    pub fn size_bytes(&self) -> usize {
        self.samples.size_bytes() + self.mask.len()
    }

    /// The same pixels as `dtype` (exact when `dtype` holds this raster's type, see
    /// [`DataType::holds`]).
    pub fn convert(self, dtype: DataType) -> Raster {
        if dtype == self.dtype() {
            return self;
        }
        Raster {
            samples: self.samples.convert(dtype),
            ..self
        }
    }

    /// Stacks rasters of one size band after band; the mask is valid where every input is
    /// valid (a pixel missing in one channel is missing in all). Inputs of one type keep it;
    /// mixed types become float64, which holds every sample exactly. The grid is the first
    /// raster's.
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
        let transform = first.transform;
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
            transform,
        })
    }

    /// Fills the invalid pixels of `self` from the valid pixels of `other` (same size and
    /// bands): `self` is composited over `other`. The result has the smallest type that holds
    /// both exactly ([`DataType::promote`]: int16 over float32 gives float32), so every value
    /// is kept as it was. Its grid is `self`'s (else `other`'s); two different grids are
    /// refused.
    pub fn composite_over(self, other: &Raster) -> Result<Raster, CoreError> {
        if (self.width, self.height, self.bands) != (other.width, other.height, other.bands) {
            return Err(CoreError::invalid(
                "composite",
                format!(
                    "{}x{} with {} band(s) cannot be composited over {}x{} with {}",
                    self.width, self.height, self.bands, other.width, other.height, other.bands
                ),
            ));
        }
        if let (Some(a), Some(b)) = (&self.transform, &other.transform) {
            if a != b {
                return Err(CoreError::invalid(
                    "composite",
                    format!("the rasters lie on different grids ({a:?} and {b:?})"),
                ));
            }
        }
        let transform = self.transform.or(other.transform);
        let dtype = self.dtype().promote(other.dtype());
        let mut out = self.convert(dtype);
        out.transform = transform;
        let plane = out.pixel_count();
        let fill: Vec<usize> = (0..plane)
            .filter(|&i| out.mask[i] == 0 && other.mask[i] != 0)
            .collect();
        if fill.is_empty() {
            return Ok(out);
        }
        with_samples!(&mut out.samples, a => {
            with_samples!(&other.samples, o => {
                for b in 0..out.bands {
                    let (a, o) = (&mut a[b * plane..(b + 1) * plane], &o[b * plane..(b + 1) * plane]);
                    for &i in &fill {
                        a[i] = Sample::from_f64(o[i].to_f64());
                    }
                }
            })
        });
        for &i in &fill {
            out.mask[i] = 255;
        }
        Ok(out)
    }

    /// The pixels of `window` (samples and mask) as a raster of their own, on the window's
    /// grid.
    pub fn crop(&self, window: PixelWindow) -> Result<Raster, CoreError> {
        if !window.fits_in(self.width, self.height) {
            return Err(CoreError::invalid(
                "crop",
                format!(
                    "window {window:?} is not inside {}x{}",
                    self.width, self.height
                ),
            ));
        }
        let (w, h, plane) = (window.width, window.height, self.pixel_count());
        let rows = window.row_off..window.row_off + h;
        let samples = with_samples!(&self.samples, v => {
            let mut out = Vec::with_capacity(w * h * self.bands);
            for b in 0..self.bands {
                let band = &v[b * plane..(b + 1) * plane];
                for y in rows.clone() {
                    let at = y * self.width + window.col_off;
                    out.extend_from_slice(&band[at..at + w]);
                }
            }
            Samples::from(out)
        });
        let mut mask = Vec::with_capacity(w * h);
        for y in rows {
            let at = y * self.width + window.col_off;
            mask.extend_from_slice(&self.mask[at..at + w]);
        }
        Ok(Raster {
            width: w,
            height: h,
            bands: self.bands,
            samples,
            mask,
            transform: self.transform.map(|t| window.transform(&t)),
        })
    }

    /// Copies all of `src` (samples and mask; same bands and type) into `self` with its
    /// pixel (0, 0) at (`col_off`, `row_off`); it must fit. Grids are not consulted.
    pub fn paste(&mut self, src: &Raster, col_off: usize, row_off: usize) -> Result<(), CoreError> {
        self.paste_part(
            src,
            PixelWindow::whole(src.width, src.height),
            col_off,
            row_off,
        )
    }

    /// Copies the `part` of `src` (samples and mask; same bands and type) into `self` with
    /// its corner at (`col_off`, `row_off`); both rectangles must fit.
    pub fn paste_part(
        &mut self,
        src: &Raster,
        part: PixelWindow,
        col_off: usize,
        row_off: usize,
    ) -> Result<(), CoreError> {
        if src.bands != self.bands || src.dtype() != self.dtype() {
            return Err(CoreError::invalid(
                "paste",
                format!(
                    "{} band(s) of {} cannot be pasted into {} band(s) of {}",
                    src.bands,
                    src.dtype().name(),
                    self.bands,
                    self.dtype().name()
                ),
            ));
        }
        self.check_target(part, src.width, src.height, (col_off, row_off))?;
        let (dw, sw) = (self.width, src.width);
        let (dp, sp) = (self.pixel_count(), src.pixel_count());
        let at = (col_off, row_off);
        same_type!(
            &mut self.samples,
            &src.samples,
            |d, s| {
                for b in 0..src.bands {
                    let (d, s) = (&mut d[b * dp..(b + 1) * dp], &s[b * sp..(b + 1) * sp]);
                    copy_rect(d, dw, at, s, sw, part);
                }
            },
            unreachable!("types were compared")
        );
        copy_rect(&mut self.mask, dw, at, &src.mask, sw, part);
        Ok(())
    }

    /// Copies the `part` of band `src_band` of `src` into band `band` of `self` with its
    /// corner at (`col_off`, `row_off`), leaving the mask as it is (a decoded block carries
    /// samples only).
    pub fn paste_band(
        &mut self,
        band: usize,
        src: Planes<'_>,
        src_band: usize,
        part: PixelWindow,
        (col_off, row_off): (usize, usize),
    ) -> Result<(), CoreError> {
        if band >= self.bands || src_band >= src.bands {
            return Err(CoreError::invalid(
                "paste",
                format!(
                    "band {src_band} of {} into band {band} of {}",
                    src.bands, self.bands
                ),
            ));
        }
        self.check_target(part, src.width, src.height, (col_off, row_off))?;
        let (dw, dp, sp) = (self.width, self.pixel_count(), src.width * src.height);
        same_type!(
            &mut self.samples,
            src.samples,
            |d, s| copy_rect(
                &mut d[band * dp..(band + 1) * dp],
                dw,
                (col_off, row_off),
                &s[src_band * sp..(src_band + 1) * sp],
                src.width,
                part
            ),
            return Err(CoreError::invalid(
                "paste",
                format!(
                    "{} samples cannot be pasted into {}",
                    src.samples.dtype().name(),
                    self.dtype().name()
                ),
            ))
        );
        Ok(())
    }

    /// Copies the `part` of a one-band 8-bit mask image (a decoded mask block) into the mask
    /// of `self` with its corner at (`col_off`, `row_off`).
    pub fn paste_mask(
        &mut self,
        src: Planes<'_>,
        part: PixelWindow,
        (col_off, row_off): (usize, usize),
    ) -> Result<(), CoreError> {
        let Samples::U8(s) = src.samples else {
            return Err(CoreError::invalid(
                "mask",
                format!("a mask of {} samples", src.samples.dtype().name()),
            ));
        };
        self.check_target(part, src.width, src.height, (col_off, row_off))?;
        copy_rect(
            &mut self.mask,
            self.width,
            (col_off, row_off),
            &s[..src.width * src.height],
            src.width,
            part,
        );
        Ok(())
    }

    /// Checks that `part` lies in a `src_width` x `src_height` source and, placed at `at`,
    /// inside `self`.
    fn check_target(
        &self,
        part: PixelWindow,
        src_width: usize,
        src_height: usize,
        (col_off, row_off): (usize, usize),
    ) -> Result<(), CoreError> {
        let target = PixelWindow {
            col_off,
            row_off,
            width: part.width,
            height: part.height,
        };
        if !part.fits_in(src_width, src_height) || !target.fits_in(self.width, self.height) {
            return Err(CoreError::invalid(
                "paste",
                format!(
                    "{part:?} of {src_width}x{src_height} at ({col_off}, {row_off}) does not fit \
                     in {}x{}",
                    self.width, self.height
                ),
            ));
        }
        Ok(())
    }

    /// Marks every pixel valid.
    pub fn set_all_valid(&mut self) {
        self.mask.fill(255);
    }

    /// Marks invalid the pixels where band `band` is 0 (an alpha band: 0 is transparent).
    pub fn mask_alpha(&mut self, band: usize) -> Result<(), CoreError> {
        if band >= self.bands {
            return Err(CoreError::invalid(
                "alpha band",
                format!("band {band} of {}", self.bands),
            ));
        }
        let plane = self.pixel_count();
        with_samples!(&self.samples, v => {
            for (m, a) in self.mask.iter_mut().zip(&v[band * plane..(band + 1) * plane]) {
                if a.to_f64() == 0.0 {
                    *m = 0;
                }
            }
        });
        Ok(())
    }

    /// Marks invalid the pixels whose every band holds `nodata` (NaN matches NaN): GDAL's
    /// dataset mask from a nodata value.
    pub fn mask_nodata(&mut self, nodata: f64) {
        let (plane, bands) = (self.pixel_count(), self.bands);
        with_samples!(&self.samples, v => {
            for (i, m) in self.mask.iter_mut().enumerate() {
                let all_nodata = (0..bands).all(|b| {
                    let x = v[b * plane + i].to_f64();
                    x == nodata || (nodata.is_nan() && x.is_nan())
                });
                if all_nodata {
                    *m = 0;
                }
            }
        });
    }

    /// Sets every sample of an invalid pixel to `value` (as the type stores it).
    pub fn fill_invalid(&mut self, value: f64) {
        let plane = self.pixel_count();
        let mask = &self.mask;
        with_samples!(&mut self.samples, v => {
            let value = Sample::from_f64(value);
            for band in v.chunks_mut(plane.max(1)) {
                for (s, &m) in band.iter_mut().zip(mask) {
                    if m == 0 {
                        *s = value;
                    }
                }
            }
        });
    }

    /// Keeps the first `keep` bands (at least one) and drops the rest.
    pub fn truncate_bands(&mut self, keep: usize) -> Result<(), CoreError> {
        if keep == 0 || keep > self.bands {
            return Err(CoreError::invalid(
                "bands",
                format!("cannot keep {keep} of {} band(s)", self.bands),
            ));
        }
        let n = self.pixel_count() * keep;
        with_samples!(&mut self.samples, v => v.truncate(n));
        self.bands = keep;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(w: usize, h: usize, bands: usize, samples: impl Into<Samples>, mask: &[u8]) -> Raster {
        Raster::new(w, h, bands, samples.into(), mask.to_vec()).unwrap()
    }

    #[test]
    fn new_refuses_wrong_lengths_and_no_bands() {
        assert!(Raster::new(2, 2, 1, Samples::U8(vec![0; 3]), vec![0; 4]).is_err());
        assert!(Raster::new(2, 2, 2, Samples::U8(vec![0; 4]), vec![0; 4]).is_err());
        assert!(Raster::new(2, 2, 1, Samples::U8(vec![0; 4]), vec![0; 3]).is_err());
        assert!(Raster::new(2, 2, 0, Samples::U8(vec![]), vec![0; 4]).is_err());
        assert!(Raster::new(usize::MAX, 2, 1, Samples::U8(vec![]), vec![]).is_err());
        assert!(Raster::empty(3, 3, 0, DataType::U8).is_err());
        let ok = Raster::new(2, 1, 2, Samples::I16(vec![1, 2, 3, 4]), vec![255, 0]).unwrap();
        assert_eq!((ok.width(), ok.height(), ok.bands()), (2, 1, 2));
        assert_eq!(ok.dtype(), DataType::I16);
        assert_eq!(ok.pixel_count(), 2);
        assert_eq!(ok.mask(), &[255, 0]);
        assert_eq!(ok.transform(), None);
        // Zero rows are a raster too (an empty batch of rows).
        assert!(Raster::new(5, 0, 1, Samples::U8(vec![]), vec![]).is_ok());
    }

    #[test]
    fn stack_keeps_one_type_and_takes_the_smallest_mask() {
        let a = r(2, 1, 1, vec![1u8, 2], &[255, 0]);
        let b = r(2, 1, 1, vec![3u8, 4], &[255, 255]);
        let s = Raster::stack(vec![a.clone(), b]).unwrap();
        assert_eq!(s, r(2, 1, 2, vec![1u8, 2, 3, 4], &[255, 0]));
        let c = r(2, 1, 1, vec![-5i16, 6], &[0, 255]);
        let mixed = Raster::stack(vec![a, c]).unwrap();
        assert_eq!(mixed, r(2, 1, 2, vec![1.0f64, 2.0, -5.0, 6.0], &[0, 0]));
    }

    #[test]
    fn composite_fills_invalid_pixels_only() {
        let top = r(3, 1, 2, vec![1u8, 2, 3, 10, 20, 30], &[255, 0, 0]);
        let under = r(3, 1, 2, vec![7u8, 8, 9, 70, 80, 90], &[255, 255, 0]);
        let out = top.composite_over(&under).unwrap();
        assert_eq!(out, r(3, 1, 2, vec![1u8, 8, 3, 10, 80, 30], &[255, 255, 0]));
    }

    #[test]
    fn composite_promotes_int16_and_float32_to_float32() {
        let top = r(2, 2, 1, vec![-32768i16, 0, 32767, 5], &[255, 0, 255, 0]);
        let under = r(2, 2, 1, vec![0.5f32, 1.25, 2.0, -3.75], &[255, 255, 255, 0]);
        let out = top.composite_over(&under).unwrap();
        assert_eq!(
            out,
            r(
                2,
                2,
                1,
                vec![-32768.0f32, 1.25, 32767.0, 5.0],
                &[255, 255, 255, 0]
            )
        );
        // And the other way round: the float32 on top keeps its values.
        let top = r(2, 1, 1, vec![0.5f32, 9.0], &[255, 0]);
        let under = r(2, 1, 1, vec![7i16, -300], &[255, 255]);
        let out = top.composite_over(&under).unwrap();
        assert_eq!(out, r(2, 1, 1, vec![0.5f32, -300.0], &[255, 255]));
    }

    #[test]
    fn composite_promotes_uint8_and_int8_to_int16() {
        let top = r(3, 1, 1, vec![255u8, 0, 200], &[255, 0, 0]);
        let under = r(3, 1, 1, vec![-128i8, -1, 127], &[255, 255, 0]);
        let out = top.composite_over(&under).unwrap();
        assert_eq!(out, r(3, 1, 1, vec![255i16, -1, 200], &[255, 255, 0]));
    }

    #[test]
    fn composite_refuses_other_sizes_bands_and_grids() {
        let a = r(2, 1, 1, vec![1u8, 2], &[0, 0]);
        assert!(a
            .clone()
            .composite_over(&r(1, 2, 1, vec![1u8, 2], &[0, 0]))
            .is_err());
        assert!(a
            .clone()
            .composite_over(&r(1, 1, 2, vec![1u8, 2], &[0]))
            .is_err());
        let g = GeoTransform::north_up(0.0, 0.0, 1.0, 1.0);
        let a = a.with_transform(g);
        let moved = r(2, 1, 1, vec![1u8, 2], &[0, 0])
            .with_transform(GeoTransform::north_up(1.0, 0.0, 1.0, 1.0));
        assert!(a.clone().composite_over(&moved).is_err());
        let bare = r(2, 1, 1, vec![1u8, 2], &[255, 255]);
        assert_eq!(
            bare.composite_over(&a).unwrap().transform(),
            Some(&g),
            "the grid of either side is kept"
        );
    }

    #[test]
    fn crop_takes_samples_mask_and_grid_of_the_window() {
        // 3 x 2, two bands.
        let src = r(
            3,
            2,
            2,
            vec![1u16, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16],
            &[255, 0, 255, 0, 255, 0],
        )
        .with_transform(GeoTransform::north_up(100.0, 50.0, 10.0, 5.0));
        let win = PixelWindow {
            col_off: 1,
            row_off: 0,
            width: 2,
            height: 2,
        };
        let c = src.crop(win).unwrap();
        assert_eq!(
            c,
            r(
                2,
                2,
                2,
                vec![2u16, 3, 5, 6, 12, 13, 15, 16],
                &[0, 255, 255, 0]
            )
            .with_transform(GeoTransform::north_up(110.0, 50.0, 10.0, 5.0))
        );
        let past = PixelWindow {
            col_off: 2,
            row_off: 1,
            width: 2,
            height: 1,
        };
        assert!(src.crop(past).is_err());
    }

    #[test]
    fn paste_copies_samples_and_mask_into_the_window() {
        let mut dst = Raster::empty(3, 3, 2, DataType::I8).unwrap();
        let src = r(2, 1, 2, vec![1i8, 2, -1, -2], &[255, 0]);
        dst.paste(&src, 1, 2).unwrap();
        assert_eq!(
            dst,
            r(
                3,
                3,
                2,
                vec![0i8, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, -1, -2],
                &[0, 0, 0, 0, 0, 0, 0, 255, 0]
            )
        );
        // Does not fit, other type, other bands.
        assert!(dst.paste(&src, 2, 2).is_err());
        assert!(dst.paste(&r(1, 1, 2, vec![1u8, 2], &[255]), 0, 0).is_err());
        assert!(dst.paste(&r(1, 1, 1, vec![1i8], &[255]), 0, 0).is_err());
    }

    #[test]
    fn paste_part_copies_rows_of_another_raster() {
        let mut dst = Raster::empty(2, 3, 1, DataType::U8).unwrap();
        let src = r(2, 2, 1, vec![1u8, 2, 3, 4], &[255, 255, 0, 255]);
        let second_row = PixelWindow {
            col_off: 0,
            row_off: 1,
            width: 2,
            height: 1,
        };
        dst.paste_part(&src, second_row, 0, 1).unwrap();
        assert_eq!(
            dst,
            r(2, 3, 1, vec![0u8, 0, 3, 4, 0, 0], &[0, 0, 0, 255, 0, 0])
        );
    }

    #[test]
    fn paste_band_and_mask_from_blocks() {
        let mut dst = Raster::empty(3, 2, 1, DataType::U16).unwrap();
        // A 2 x 2 block of two bands; band 1 goes to band 0 of the raster.
        let block = Samples::U16(vec![1, 2, 3, 4, 10, 20, 30, 40]);
        let planes = Planes::new(&block, 2, 2).unwrap();
        let part = PixelWindow {
            col_off: 1,
            row_off: 0,
            width: 1,
            height: 2,
        };
        dst.paste_band(0, planes, 1, part, (0, 0)).unwrap();
        let mask_block = Samples::U8(vec![255, 0, 255, 255]);
        let mask = Planes::new(&mask_block, 2, 2).unwrap();
        dst.paste_mask(mask, PixelWindow::whole(2, 2), (1, 0))
            .unwrap();
        assert_eq!(
            dst,
            r(
                3,
                2,
                1,
                vec![20u16, 0, 0, 40, 0, 0],
                &[0, 255, 0, 0, 255, 255]
            )
        );
        assert!(dst.paste_band(1, planes, 0, part, (0, 0)).is_err());
        assert!(dst.paste_band(0, planes, 2, part, (0, 0)).is_err());
        assert!(dst.paste_band(0, planes, 0, part, (3, 0)).is_err());
        assert!(dst.paste_mask(planes, part, (0, 0)).is_err(), "not 8-bit");
        let bytes = Samples::U8(vec![0; 4]);
        assert!(dst
            .paste_band(0, Planes::new(&bytes, 2, 2).unwrap(), 0, part, (0, 0))
            .is_err());
        assert!(Planes::new(&bytes, 3, 1).is_err());
    }

    #[test]
    fn masks_from_alpha_and_nodata() {
        let mut a = r(3, 1, 2, vec![5u8, 6, 7, 255, 0, 9], &[0, 0, 0]);
        a.set_all_valid();
        a.mask_alpha(1).unwrap();
        assert_eq!(a.mask(), &[255, 0, 255]);
        assert!(a.mask_alpha(2).is_err());

        let mut n = r(
            3,
            1,
            2,
            vec![-9.0f32, -9.0, f32::NAN, -9.0, 1.0, 2.0],
            &[255; 3],
        );
        n.mask_nodata(-9.0);
        assert_eq!(n.mask(), &[0, 255, 255], "every band must hold nodata");
        let mut nan = r(2, 1, 1, vec![f32::NAN, 1.0], &[255; 2]);
        nan.mask_nodata(f64::NAN);
        assert_eq!(nan.mask(), &[0, 255]);
    }

    #[test]
    fn fill_invalid_and_truncate_bands() {
        let mut x = r(2, 1, 2, vec![1i16, 2, 3, 4], &[0, 255]);
        x.fill_invalid(-9999.0);
        assert_eq!(x, r(2, 1, 2, vec![-9999i16, 2, -9999, 4], &[0, 255]));
        x.truncate_bands(1).unwrap();
        assert_eq!(x, r(2, 1, 1, vec![-9999i16, 2], &[0, 255]));
        assert!(x.truncate_bands(0).is_err());
        assert!(x.truncate_bands(2).is_err());
    }

    #[test]
    fn into_parts_and_convert() {
        let x = r(2, 1, 1, vec![3u8, 4], &[255, 0]).convert(DataType::F32);
        assert_eq!(x.dtype(), DataType::F32);
        let (samples, mask) = x.into_parts();
        assert_eq!(samples, Samples::F32(vec![3.0, 4.0]));
        assert_eq!(mask, vec![255, 0]);
    }
}
