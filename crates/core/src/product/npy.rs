//! `.npy` output in TiTiler's layout: rio-tiler's `render(..., img_format="npy")` saves
//! `numpy.concatenate((data, mask[None]))`, i.e. shape `(bands + 1, height, width)`, C order,
//! the last band the mask (255 valid, 0 invalid).
//!
//! `numpy.concatenate` promotes the dtype of data and the `uint8` mask, which keeps every
//! source type except `int8`: `int8` and `uint8` promote to `int16` (an `int8` cannot hold 255),
//! so an `int8` raster is written as `int16` exactly as TiTiler would.

use crate::dtype::{DataType, Sample};
use crate::raster::Raster;
use crate::{CoreError, Samples};

/// Magic string of every `.npy` file.
const MAGIC: &[u8] = b"\x93NUMPY";

/// numpy pads the header so the data starts on a 64-byte boundary.
const ALIGN: usize = 64;

/// numpy leaves room in the header to rewrite the first axis with up to this many digits.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// The dtype TiTiler's `.npy` has for a source of `dtype` (numpy's promotion with `uint8`).
pub fn npy_dtype(dtype: DataType) -> DataType {
    match dtype {
        DataType::I8 => DataType::I16,
        other => other,
    }
}

/// numpy's `descr` string for a dtype, little-endian (`|` where byte order is moot).
pub fn npy_descr(dtype: DataType) -> &'static str {
    match dtype {
        DataType::U8 => "|u1",
        DataType::I8 => "|i1",
        DataType::U16 => "<u2",
        DataType::I16 => "<i2",
        DataType::U32 => "<u4",
        DataType::I32 => "<i4",
        DataType::F32 => "<f4",
        DataType::F64 => "<f8",
    }
}

/// The NPY format 1.0 header numpy's `np.save` writes for a C-order array of `shape`: magic,
/// version 1.0, little-endian u16 header length, the dict literal with keys in sorted order,
/// spare spaces for growing the first axis, space padding and a final newline, so that the
/// total header size is a multiple of 64.
pub fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_repr = match shape {
        [] => "()".to_string(),
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_repr}, }}");
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    // numpy: padlen = 64 - ((10 + len(dict) + 1) % 64), which is 64 (not 0) when aligned.
    let fixed = MAGIC.len() + 2 + 2;
    let pad = ALIGN - (fixed + dict.len() + 1) % ALIGN;
    dict.push_str(&" ".repeat(pad));
    dict.push('\n');

    let mut out = Vec::with_capacity(fixed + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    // A 3-D shape of usize values is a few hundred bytes at most; the v1.0 u16 length holds it.
    let len = u16::try_from(dict.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Little-endian byte output for the sample types `.npy` bodies hold.
trait LeSample: Sample {
    fn put(self, out: &mut Vec<u8>);
}

macro_rules! le_sample {
    ($($t:ty),*) => {$(
        impl LeSample for $t {
            #[inline]
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
le_sample!(u8, u16, i16, u32, i32, f32, f64);

fn body<T: LeSample>(samples: &[T], mask: &[u8], mut out: Vec<u8>) -> Vec<u8> {
    out.reserve((samples.len() + mask.len()) * std::mem::size_of::<T>());
    for &s in samples {
        s.put(&mut out);
    }
    let (valid, invalid) = (T::from_f64(255.0), T::from_f64(0.0));
    for &m in mask {
        if m == 0 { invalid } else { valid }.put(&mut out);
    }
    out
}

/// Encodes `raster` as TiTiler's `.npy` tile (see the module docs).
pub fn encode_npy(raster: &Raster) -> Result<Vec<u8>, CoreError> {
    let dtype = npy_dtype(raster.dtype());
    let shape = [raster.bands() + 1, raster.height(), raster.width()];
    let header = npy_header(npy_descr(dtype), &shape);
    let mask = raster.mask();
    Ok(match raster.samples() {
        Samples::U8(v) => body(v, mask, header),
        Samples::I8(v) => {
            let widened: Vec<i16> = v.iter().map(|&x| i16::from(x)).collect();
            body(&widened, mask, header)
        }
        Samples::U16(v) => body(v, mask, header),
        Samples::I16(v) => body(v, mask, header),
        Samples::U32(v) => body(v, mask, header),
        Samples::I32(v) => body(v, mask, header),
        Samples::F32(v) => body(v, mask, header),
        Samples::F64(v) => body(v, mask, header),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_byte_exact_with_numpy() {
        // Generated with numpy 2.4.6:
        //   python -c "import numpy as np, io; b = io.BytesIO(); \
        //     np.save(b, np.zeros((2, 2, 3), dtype='uint16')); print(b.getvalue()[:128])"
        let expected: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<u2', 'fortran_order': False, 'shape': (2, 2, 3), }                                                       \n";
        assert_eq!(expected.len(), 128);
        assert_eq!(npy_header("<u2", &[2, 2, 3]), expected);

        // Same command with np.zeros((4, 256, 256), dtype='uint8'):
        let expected_u8: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (4, 256, 256), }                                                   \n";
        assert_eq!(npy_header("|u1", &[4, 256, 256]), expected_u8);

        // And np.zeros((11, 3, 3), dtype='float64') (two-digit first axis, one less spare):
        let expected_f8: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (11, 3, 3), }                                                      \n";
        assert_eq!(npy_header("<f8", &[11, 3, 3]), expected_f8);
    }

    #[test]
    fn header_always_aligned() {
        for shape in [[1, 1, 1], [2, 999_999, 1], [100_000, 7, 123_456_789]] {
            let h = npy_header("<f4", &shape);
            assert_eq!(h.len() % 64, 0, "{shape:?}");
            assert_eq!(h.last(), Some(&b'\n'));
        }
    }

    #[test]
    fn body_has_mask_band_last() {
        let r = Raster::new(2, 1, 2, Samples::I16(vec![-1, 2, 300, -400]), vec![255, 0]).unwrap();
        let out = encode_npy(&r).unwrap();
        let (head, data) = out.split_at(128);
        assert!(std::str::from_utf8(&head[10..])
            .unwrap()
            .contains("'descr': '<i2', 'fortran_order': False, 'shape': (3, 1, 2)"));
        let vals: Vec<i16> = data
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(vals, vec![-1, 2, 300, -400, 255, 0]);
    }

    #[test]
    fn int8_promotes_to_int16_like_numpy_concatenate() {
        let r = Raster::new(1, 1, 1, Samples::I8(vec![-5]), vec![255]).unwrap();
        let out = encode_npy(&r).unwrap();
        assert!(std::str::from_utf8(&out[10..128])
            .unwrap()
            .contains("'<i2'"));
        assert_eq!(&out[128..], &[0xFB, 0xFF, 0xFF, 0x00]);
    }
}
