//! Linear contrast stretch of one band to 8 bits.
//!
//! Two output conventions exist and both are needed:
//! - palette indices `1..=255` for single-band tiles, Terracotta's `to_uint8`, which keeps `0`
//!   free to mean "transparent" in an indexed PNG;
//! - plain bytes `0..=255` for RGB composites, where transparency lives in an alpha channel.
//!
//! Both follow Terracotta's `contrast_stretch` exactly: `(v - min) * (out_span / (max - min)) +
//! out_min` in f64, clipped to the output range, rounded half to even (`np.rint`); when
//! `max - min` is at most 1e-8 the scaling step is skipped (so the output is `v - min +
//! out_min`, clipped). Masked pixels, and values that are not finite (Terracotta masks those
//! when it reads), become `0`.

use crate::dtype::{Sample, Samples};
use crate::raster::Raster;
use crate::CoreError;

/// A validated stretch range in data units: both ends finite and `min <= max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stretch {
    min: f64,
    max: f64,
}

impl Stretch {
    pub fn new(min: f64, max: f64) -> Result<Self, CoreError> {
        if !min.is_finite() || !max.is_finite() {
            return Err(CoreError::invalid(
                "stretch range",
                format!("bounds must be finite numbers, got [{min}, {max}]"),
            ));
        }
        if max < min {
            return Err(CoreError::invalid(
                "stretch range",
                format!("upper bound {max} is below lower bound {min}"),
            ));
        }
        Ok(Self { min, max })
    }

    pub fn min(&self) -> f64 {
        self.min
    }

    pub fn max(&self) -> f64 {
        self.max
    }

    /// Terracotta's `to_uint8` for one value: `1..=255`, or `0` when `v` is not finite.
    pub fn to_index(&self, v: f64) -> u8 {
        LinearMap::new(*self, 1.0).apply(v)
    }

    /// The same stretch onto `0..=255` (for RGB), or `0` when `v` is not finite.
    pub fn to_byte(&self, v: f64) -> u8 {
        LinearMap::new(*self, 0.0).apply(v)
    }
}

/// The precomputed affine map of a [`Stretch`] onto `out_min..=255`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinearMap {
    in_min: f64,
    scale: f64,
    out_min: f64,
}

/// 2^52: adding then subtracting it rounds any `0 <= x < 2^52` to the nearest integer, ties to
/// even, using the FPU's default rounding mode. This is `np.rint` without a libm call per pixel
/// (a baseline x86-64 build has no `roundsd`).
const RINT_MAGIC: f64 = 4_503_599_627_370_496.0;

impl LinearMap {
    pub(crate) fn new(stretch: Stretch, out_min: f64) -> Self {
        let norm = stretch.max - stretch.min;
        // Terracotta skips the multiplication (scale 1) for a degenerate range.
        let scale = if norm.abs() > 1e-8 {
            (255.0 - out_min) / norm
        } else {
            1.0
        };
        Self {
            in_min: stretch.min,
            scale,
            out_min,
        }
    }

    #[inline]
    pub(crate) fn apply(&self, v: f64) -> u8 {
        let x = (v - self.in_min) * self.scale + self.out_min;
        // `max`/`min` return the non-NaN operand, so NaN would clip to `out_min`; non-finite
        // inputs are handled by the select below instead.
        let clipped = x.max(self.out_min).min(255.0);
        let rounded = (clipped + RINT_MAGIC) - RINT_MAGIC;
        let byte = rounded as u8;
        if v.is_finite() {
            byte
        } else {
            0
        }
    }
}

/// Where `band` of `raster` starts in its samples and how long it is (the raster's lengths
/// are checked when it is made), after checking that the band exists.
pub(crate) fn band_range(raster: &Raster, band: usize) -> Result<(usize, usize), CoreError> {
    if band >= raster.bands() {
        return Err(CoreError::invalid(
            "band",
            format!(
                "band {band} requested but the raster has {}",
                raster.bands()
            ),
        ));
    }
    let n = raster.pixel_count();
    Ok((band * n, n))
}

/// One row (or any run) of samples through `f`; masked pixels are `0`.
fn map_pixels<T: Copy>(src: &[T], mask: &[u8], out: &mut [u8], f: impl Fn(T) -> u8) {
    for ((o, &s), &m) in out.iter_mut().zip(src).zip(mask) {
        let v = f(s);
        *o = if m == 0 { 0 } else { v };
    }
}

fn map_band<T: Sample>(src: &[T], mask: &[u8], width: usize, map: &LinearMap, out: &mut [u8]) {
    by_rows(src, mask, width, out, |src, mask, out| {
        map_pixels(src, mask, out, |s| map.apply(s.to_f64()));
    });
}

/// Every output of a [`LinearMap`] for 16-bit inputs, indexed by the input's bits.
type Table16 = Box<[u8; 1 << 16]>;

/// The key of a cached [`Table16`]: the map's parameters (as bits) and the signedness.
type Table16Key = ([u64; 3], bool);

/// How many 16-bit tables a thread keeps: an RGB tile has three stretches, and tiles of
/// several layers interleave on one thread.
const TABLES16_KEPT: usize = 6;

thread_local! {
    /// The 16-bit tables built last on this thread, most recent first: tiles of a layer share
    /// their stretches, so after the first tile a 16-bit band costs one table load per pixel.
    static TABLES16: std::cell::RefCell<Vec<(Table16Key, Table16)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Maps 16-bit samples through a table of all 65,536 outputs (built once per thread and
/// stretch), which gives the same bytes as [`LinearMap::apply`] without per-pixel float work.
fn map_band16<T: Copy + PartialEq>(
    src: &[T],
    mask: &[u8],
    width: usize,
    map: &LinearMap,
    signed: bool,
    bits: impl Fn(T) -> u16,
    out: &mut [u8],
) {
    let key = (
        [
            map.in_min.to_bits(),
            map.scale.to_bits(),
            map.out_min.to_bits(),
        ],
        signed,
    );
    TABLES16.with(|cell| {
        let mut tables = cell.borrow_mut();
        match tables.iter().position(|(k, _)| *k == key) {
            Some(i) => tables[..=i].rotate_right(1),
            None => {
                let mut t: Table16 = Box::new([0; 1 << 16]);
                for (b, o) in (0..=u16::MAX).zip(t.iter_mut()) {
                    // The u16 → i16 cast reinterprets the bits, as `bits` does.
                    let v = if signed {
                        f64::from(b as i16)
                    } else {
                        f64::from(b)
                    };
                    *o = map.apply(v);
                }
                tables.truncate(TABLES16_KEPT - 1);
                tables.insert(0, (key, t));
            }
        }
        let Some((_, table)) = tables.first() else {
            return;
        };
        by_rows(src, mask, width, out, |src, mask, out| {
            map_pixels(src, mask, out, |s| table[usize::from(bits(s))]);
        });
    });
}

/// Maps 8-bit samples through a 256-entry table (cheaper to build than to skip), built
/// once per band.
fn map_band8<T: Copy + PartialEq>(
    src: &[T],
    mask: &[u8],
    width: usize,
    map: &LinearMap,
    value: impl Fn(u8) -> f64,
    bits: impl Fn(T) -> u8,
    out: &mut [u8],
) {
    let mut table = [0u8; 256];
    for (b, o) in (0..=u8::MAX).zip(table.iter_mut()) {
        *o = map.apply(value(b));
    }
    by_rows(src, mask, width, out, |src, mask, out| {
        map_pixels(src, mask, out, |s| table[usize::from(bits(s))]);
    });
}

/// Runs `map` over a band row by row, except that a row whose samples and mask equal the row
/// above's gets a copy of the row above's output: overzoomed tiles repeat most rows, and a
/// comparison costs far less than a lookup per pixel. A row with a NaN never equals another,
/// so it is always mapped.
fn by_rows<T: PartialEq>(
    src: &[T],
    mask: &[u8],
    width: usize,
    out: &mut [u8],
    mut map: impl FnMut(&[T], &[u8], &mut [u8]),
) {
    if width == 0 || src.len() != out.len() || mask.len() != out.len() {
        map(src, mask, out);
        return;
    }
    for start in (0..out.len()).step_by(width) {
        let end = (start + width).min(out.len());
        if start >= width
            && src[start..end] == src[start - width..end - width]
            && mask[start..end] == mask[start - width..end - width]
        {
            out.copy_within(start - width..end - width, start);
        } else {
            map(&src[start..end], &mask[start..end], &mut out[start..end]);
        }
    }
}

fn stretch_band(raster: &Raster, band: usize, map: &LinearMap) -> Result<Vec<u8>, CoreError> {
    let mask = raster.mask();
    // Each map builds its table (if any) once per band and goes row by row (`by_rows`).
    let w = raster.width();
    macro_rules! run {
        ($v:expr, $f:expr) => {{
            let (start, n) = band_range(raster, band)?;
            let mut out = vec![0u8; n];
            // A raster's lengths agree (`Raster::new`); `get` keeps this panic-free anyway.
            let src = $v.get(start..start + n).unwrap_or(&[]);
            $f(src, &mut out);
            Ok(out)
        }};
    }
    // The casts between same-width integers reinterpret bits, which the tables are keyed by.
    match raster.samples() {
        Samples::U8(v) => run!(v, |s: &[u8], o: &mut [u8]| {
            map_band8(s, mask, w, map, f64::from, |b| b, o);
        }),
        Samples::I8(v) => run!(v, |s: &[i8], o: &mut [u8]| {
            map_band8(s, mask, w, map, |b| f64::from(b as i8), |b| b as u8, o);
        }),
        Samples::U16(v) => run!(v, |s: &[u16], o: &mut [u8]| {
            map_band16(s, mask, w, map, false, |b| b, o);
        }),
        Samples::I16(v) => run!(v, |s: &[i16], o: &mut [u8]| {
            map_band16(s, mask, w, map, true, |b| b as u16, o);
        }),
        Samples::U32(v) => run!(v, |s: &[u32], o: &mut [u8]| map_band(s, mask, w, map, o)),
        Samples::I32(v) => run!(v, |s: &[i32], o: &mut [u8]| map_band(s, mask, w, map, o)),
        Samples::F32(v) => run!(v, |s: &[f32], o: &mut [u8]| map_band(s, mask, w, map, o)),
        Samples::F64(v) => run!(v, |s: &[f64], o: &mut [u8]| map_band(s, mask, w, map, o)),
    }
}

/// Stretches `band` to palette indices: `0` where masked or not finite, else `1..=255`
/// (Terracotta's `to_uint8`).
pub fn stretch_to_index(
    raster: &Raster,
    band: usize,
    stretch: Stretch,
) -> Result<Vec<u8>, CoreError> {
    stretch_band(raster, band, &LinearMap::new(stretch, 1.0))
}

/// Stretches `band` to `0..=255`; masked and non-finite pixels are `0` (the caller carries
/// transparency in an alpha channel).
pub fn stretch_to_byte(
    raster: &Raster,
    band: usize,
    stretch: Stretch,
) -> Result<Vec<u8>, CoreError> {
    stretch_band(raster, band, &LinearMap::new(stretch, 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::{DataType, Samples};

    fn raster_f32(values: Vec<f32>, mask: Vec<u8>) -> Raster {
        Raster::new(values.len(), 1, 1, Samples::F32(values), mask).unwrap()
    }

    #[test]
    fn rejects_bad_ranges() {
        assert!(Stretch::new(1.0, 0.0).is_err());
        assert!(Stretch::new(f64::NAN, 1.0).is_err());
        assert!(Stretch::new(0.0, f64::INFINITY).is_err());
        assert!(Stretch::new(3.0, 3.0).is_ok());
    }

    #[test]
    fn index_matches_terracotta_formula() {
        // Expected values from Terracotta's to_uint8 in numpy:
        //   np.rint(np.clip((np.array(v, 'float64') - 0) * (254 / 100) + 1, 1, 255)).astype('uint8')
        // for v = [-5, 0, 0.5, 25, 49.80314960629921, 50, 99.9, 100, 1000]
        let s = Stretch::new(0.0, 100.0).unwrap();
        let got: Vec<u8> = [
            -5.0,
            0.0,
            0.5,
            25.0,
            49.803_149_606_299_21,
            50.0,
            99.9,
            100.0,
            1e3,
        ]
        .iter()
        .map(|&v| s.to_index(v))
        .collect();
        // 25 -> 64.5 -> 64 and 49.803... -> 127.5 (inexactly 126.5 + 1) -> 127: ties go to even.
        assert_eq!(got, vec![1, 1, 2, 64, 127, 128, 255, 255, 255]);
    }

    #[test]
    fn ties_round_to_even() {
        // min 0, max 254: v maps to v + 1, so v = 1.5 -> 2.5 -> 2 and v = 2.5 -> 3.5 -> 4.
        let s = Stretch::new(0.0, 254.0).unwrap();
        assert_eq!(s.to_index(1.5), 2);
        assert_eq!(s.to_index(2.5), 4);
        // Bytes: min 0, max 255 is the identity; 0.5 -> 0, 1.5 -> 2, 254.5 -> 254.
        let b = Stretch::new(0.0, 255.0).unwrap();
        assert_eq!(
            [b.to_byte(0.5), b.to_byte(1.5), b.to_byte(254.5)],
            [0, 2, 254]
        );
    }

    #[test]
    fn degenerate_range_skips_scaling() {
        // |max - min| <= 1e-8: Terracotta computes v - min + 1, then clips.
        let s = Stretch::new(10.0, 10.0).unwrap();
        assert_eq!(s.to_index(10.0), 1);
        assert_eq!(s.to_index(12.0), 3);
        assert_eq!(s.to_index(9.0), 1);
        assert_eq!(s.to_index(1e6), 255);
    }

    #[test]
    fn band_handles_mask_nan_and_out_of_range() {
        let r = raster_f32(
            vec![-1.0, 0.0, 10.0, 20.0, f32::NAN, f32::INFINITY, 5.0],
            vec![255, 255, 255, 255, 255, 255, 0],
        );
        let s = Stretch::new(0.0, 10.0).unwrap();
        assert_eq!(
            stretch_to_index(&r, 0, s).unwrap(),
            vec![1, 1, 255, 255, 0, 0, 0]
        );
        assert_eq!(
            stretch_to_byte(&r, 0, s).unwrap(),
            vec![0, 0, 255, 255, 0, 0, 0]
        );
    }

    #[test]
    fn integer_bands_and_band_selection() {
        let r = Raster::new(
            2,
            1,
            2,
            Samples::I16(vec![-100, 100, 0, 50]),
            vec![255, 255],
        )
        .unwrap();
        let s = Stretch::new(-100.0, 100.0).unwrap();
        assert_eq!(stretch_to_byte(&r, 0, s).unwrap(), vec![0, 255]);
        // numpy: np.rint(np.clip((np.array([0., 50.]) + 100) * (255 / 200), 0, 255)) == [127, 191]
        // (100 * 1.275 is 127.49999999999999 in f64).
        assert_eq!(stretch_to_byte(&r, 1, s).unwrap(), vec![127, 191]);
        assert!(stretch_to_byte(&r, 2, s).is_err());
    }

    /// Rows that repeat the row above (as overzoomed tiles' do) are copied, not mapped: the
    /// output equals stretching each row on its own, including rows that repeat the samples
    /// but not the mask, and float rows with NaN.
    #[test]
    fn repeated_rows_stretch_as_single_rows() {
        let w = 9;
        let rows: [(Vec<f64>, Vec<u8>); 7] = [
            ((0..9).map(|i| f64::from(i * 700)).collect(), vec![255; 9]),
            ((0..9).map(|i| f64::from(i * 700)).collect(), vec![255; 9]),
            ((0..9).map(|i| f64::from(i * 700)).collect(), {
                let mut m = vec![255; 9];
                m[4] = 0;
                m
            }),
            ((0..9).map(|i| f64::from(i * 700)).collect(), {
                let mut m = vec![255; 9];
                m[4] = 0;
                m
            }),
            (
                (0..9).map(|i| f64::from(6000 - i * 300)).collect(),
                vec![255; 9],
            ),
            (
                (0..9)
                    .map(|i| if i == 3 { f64::NAN } else { f64::from(i) })
                    .collect(),
                vec![255; 9],
            ),
            (
                (0..9)
                    .map(|i| if i == 3 { f64::NAN } else { f64::from(i) })
                    .collect(),
                vec![255; 9],
            ),
        ];
        let stretch = Stretch::new(100.0, 5000.0).unwrap();
        for dtype in [
            DataType::U16,
            DataType::I16,
            DataType::U8,
            DataType::F32,
            DataType::F64,
        ] {
            let make = |rows: &[(Vec<f64>, Vec<u8>)]| {
                let values: Vec<f64> = rows.iter().flat_map(|r| r.0.clone()).collect();
                let mask: Vec<u8> = rows.iter().flat_map(|r| r.1.clone()).collect();
                let f = Raster::new(w, rows.len(), 1, Samples::F64(values), mask).unwrap();
                f.convert(dtype)
            };
            type StretchFn = fn(&Raster, usize, Stretch) -> Result<Vec<u8>, CoreError>;
            let fns: [(&str, StretchFn); 2] =
                [("byte", stretch_to_byte), ("index", stretch_to_index)];
            for (name, f) in fns {
                let whole = f(&make(&rows), 0, stretch).unwrap();
                let single: Vec<u8> = rows
                    .iter()
                    .flat_map(|r| f(&make(std::slice::from_ref(r)), 0, stretch).unwrap())
                    .collect();
                assert_eq!(whole, single, "{dtype:?} {name}");
            }
            let whole = stretch_to_byte(&make(&rows), 0, stretch).unwrap();
            // The masked pixel of the third and fourth rows is 0, the rows above are not.
            assert_eq!(whole[2 * w + 4], 0);
            assert_ne!(whole[w + 4], 0, "{dtype:?}");
        }
    }

    #[test]
    fn tables_match_the_direct_formula_for_every_small_integer() {
        fn band(samples: Samples, n: usize) -> Raster {
            let mut mask = vec![255; n];
            mask[7] = 0;
            Raster::new(n, 1, 1, samples, mask).unwrap()
        }
        let all_i16: Vec<i16> = (i16::MIN..=i16::MAX).collect();
        let all_u16: Vec<u16> = (0..=u16::MAX).collect();
        let all_i8: Vec<i8> = (i8::MIN..=i8::MAX).collect();
        let all_u8: Vec<u8> = (0..=u8::MAX).collect();
        let cases = [
            band(Samples::I16(all_i16.clone()), all_i16.len()),
            band(Samples::U16(all_u16.clone()), all_u16.len()),
            band(Samples::I8(all_i8.clone()), all_i8.len()),
            band(Samples::U8(all_u8.clone()), all_u8.len()),
        ];
        // Alternating stretches, more of them than a thread keeps tables for, also exercise
        // the per-thread tables being reused, rebuilt and evicted.
        for (lo, hi) in [
            (-8000.0, 6000.0),
            (0.0, 255.0),
            (-8000.0, 6000.0),
            (3.0, 3.0),
            (100.0, 200.0),
            (0.0, 65535.0),
            (-1.0, 1.0),
            (6008.0, 8671.0),
            (6705.0, 8201.0),
            (0.0, 255.0),
            (-8000.0, 6000.0),
            (7459.0, 8511.0),
        ] {
            let s = Stretch::new(lo, hi).unwrap();
            for r in &cases {
                let direct: Vec<u8> = (0..r.width())
                    .map(|i| {
                        let v = s.to_index(r.samples().get_f64(i));
                        if r.mask()[i] == 0 {
                            0
                        } else {
                            v
                        }
                    })
                    .collect();
                assert_eq!(stretch_to_index(r, 0, s).unwrap(), direct, "{lo}..{hi}");
                let bytes = stretch_to_byte(r, 0, s).unwrap();
                assert_eq!(
                    bytes[r.width() - 1],
                    s.to_byte(r.samples().get_f64(r.width() - 1))
                );
                assert_eq!(bytes[7], 0);
            }
        }
        // The DEM range spreads -8000..6000 over 1..255; -32768 clips to 1, 32767 to 255.
        let s = Stretch::new(-8000.0, 6000.0).unwrap();
        let idx = stretch_to_index(&cases[0], 0, s).unwrap();
        assert_eq!((idx[0], idx[65535], idx[32768]), (1, 255, 146));
    }

    #[test]
    fn missing_band_is_an_error_not_a_panic() {
        let r = Raster::new(4, 4, 1, Samples::U8(vec![0; 16]), vec![255; 16]).unwrap();
        assert!(stretch_to_index(&r, 1, Stretch::new(0.0, 1.0).unwrap()).is_err());
    }
}
