//! Sample data types and typed sample buffers.

use serde::{Deserialize, Serialize};

/// The numeric type of one raster sample, as stored in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    F64,
}

impl DataType {
    /// Bytes per sample.
    pub fn size_bytes(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    /// Name as rasterio/numpy spell it (`uint8`, `int16`, `float32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::I8 => "int8",
            Self::U16 => "uint16",
            Self::I16 => "int16",
            Self::U32 => "uint32",
            Self::I32 => "int32",
            Self::F32 => "float32",
            Self::F64 => "float64",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F64)
    }

    /// Every type, smallest first (integers before a float of the same size): the order
    /// [`Self::promote`] tries them in.
    pub const ALL: [DataType; 8] = [
        Self::U8,
        Self::I8,
        Self::U16,
        Self::I16,
        Self::U32,
        Self::I32,
        Self::F32,
        Self::F64,
    ];

    /// True when every value of `other` is exactly a value of `self` (`int16` holds `uint8`,
    /// `float32` holds integers of up to 24 bits, no integer type holds a float).
    pub fn holds(self, other: DataType) -> bool {
        match (self.is_float(), other.is_float()) {
            _ if self == other => true,
            (false, true) => false,
            (true, true) => self.size_bytes() >= other.size_bytes(),
            (true, false) => other.magnitude_bits() <= self.magnitude_bits(),
            (false, false) => {
                let ((lo, hi), (olo, ohi)) = (self.range(), other.range());
                lo <= olo && ohi <= hi
            }
        }
    }

    /// The smallest type that holds every value of both `self` and `other` exactly (int16
    /// and float32 → float32, uint8 and int8 → int16, uint16 and int16 → int32); float64 when
    /// no smaller one does (int32 and float32, uint32 and int8).
    pub fn promote(self, other: DataType) -> DataType {
        Self::ALL
            .into_iter()
            .find(|t| t.holds(self) && t.holds(other))
            .unwrap_or(Self::F64)
    }

    /// Bits of magnitude an integer type needs, or a float type's significand holds exactly
    /// (with the implicit bit).
    fn magnitude_bits(self) -> u32 {
        match self {
            Self::U8 => 8,
            Self::I8 => 7,
            Self::U16 => 16,
            Self::I16 => 15,
            Self::U32 => 32,
            Self::I32 => 31,
            Self::F32 => f32::MANTISSA_DIGITS,
            Self::F64 => f64::MANTISSA_DIGITS,
        }
    }

    /// Smallest and largest representable value, as f64.
    pub fn range(self) -> (f64, f64) {
        match self {
            Self::U8 => (0.0, 255.0),
            Self::I8 => (-128.0, 127.0),
            Self::U16 => (0.0, 65535.0),
            Self::I16 => (-32768.0, 32767.0),
            Self::U32 => (0.0, f64::from(u32::MAX)),
            Self::I32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
            Self::F32 => (f64::from(f32::MIN), f64::from(f32::MAX)),
            Self::F64 => (f64::MIN, f64::MAX),
        }
    }
}

/// A typed, contiguous buffer of samples.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Runs `$body` with `$v` bound to the inner `Vec<T>` of a [`Samples`], whatever `T` is.
#[macro_export]
macro_rules! with_samples {
    ($samples:expr, $v:ident => $body:expr) => {
        match $samples {
            $crate::Samples::U8($v) => $body,
            $crate::Samples::I8($v) => $body,
            $crate::Samples::U16($v) => $body,
            $crate::Samples::I16($v) => $body,
            $crate::Samples::U32($v) => $body,
            $crate::Samples::I32($v) => $body,
            $crate::Samples::F32($v) => $body,
            $crate::Samples::F64($v) => $body,
        }
    };
}

/// A sample type: the primitive behind one [`DataType`].
pub trait Sample: Copy + Default + PartialEq + Send + Sync + 'static {
    const DTYPE: DataType;
    fn to_f64(self) -> f64;
    /// Converts with rounding and saturation for integer types.
    fn from_f64(v: f64) -> Self;
}

/// `v.round()` (half away from zero) without the libm call a default x86-64 build makes for
/// it: below 2^52 the integer part is exact in an `i64` and the fraction is exact too; at or
/// above it (and for NaN and infinities) `v` is returned as it is, already integral.
/// Written with selects rather than branches: whether a fraction reaches one half is a coin
/// toss on real data, and mispredicted branches made this the cost of converting overview rows.
#[inline]
fn round_half_away(v: f64) -> f64 {
    let t = v as i64 as f64;
    let f = v - t;
    let up = if f >= 0.5 { 1.0 } else { 0.0 };
    let down = if f <= -0.5 { 1.0 } else { 0.0 };
    let r = t + up - down;
    if v.abs() < 4_503_599_627_370_496.0 {
        r
    } else {
        v
    }
}

macro_rules! impl_sample {
    ($t:ty, $dt:ident, int) => {
        impl Sample for $t {
            const DTYPE: DataType = DataType::$dt;
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                // `as` saturates and maps NaN to 0, which is what we want for integers.
                round_half_away(v) as $t
            }
        }
    };
    ($t:ty, $dt:ident, float) => {
        impl Sample for $t {
            const DTYPE: DataType = DataType::$dt;
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
        }
    };
}
macro_rules! impl_from_vec {
    ($($t:ty => $v:ident),*) => {$(
        impl From<Vec<$t>> for Samples {
            fn from(v: Vec<$t>) -> Self {
                Samples::$v(v)
            }
        }
    )*};
}
impl_from_vec!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, f32 => F32, f64 => F64);

impl_sample!(u8, U8, int);
impl_sample!(i8, I8, int);
impl_sample!(u16, U16, int);
impl_sample!(i16, I16, int);
impl_sample!(u32, U32, int);
impl_sample!(i32, I32, int);
impl_sample!(f32, F32, float);
impl_sample!(f64, F64, float);

impl Samples {
    /// A buffer of `len` zeros of the given type.
    pub fn zeros(dtype: DataType, len: usize) -> Self {
        match dtype {
            DataType::U8 => Self::U8(vec![0; len]),
            DataType::I8 => Self::I8(vec![0; len]),
            DataType::U16 => Self::U16(vec![0; len]),
            DataType::I16 => Self::I16(vec![0; len]),
            DataType::U32 => Self::U32(vec![0; len]),
            DataType::I32 => Self::I32(vec![0; len]),
            DataType::F32 => Self::F32(vec![0.0; len]),
            DataType::F64 => Self::F64(vec![0.0; len]),
        }
    }

    pub fn dtype(&self) -> DataType {
        match self {
            Self::U8(_) => DataType::U8,
            Self::I8(_) => DataType::I8,
            Self::U16(_) => DataType::U16,
            Self::I16(_) => DataType::I16,
            Self::U32(_) => DataType::U32,
            Self::I32(_) => DataType::I32,
            Self::F32(_) => DataType::F32,
            Self::F64(_) => DataType::F64,
        }
    }

    pub fn len(&self) -> usize {
        with_samples!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `i` as f64 (for statistics and products, not for hot loops).
    pub fn get_f64(&self, i: usize) -> f64 {
        with_samples!(self, v => v[i].to_f64())
    }

    /// Size of the samples in bytes.
    pub fn size_bytes(&self) -> usize {
        self.len() * self.dtype().size_bytes()
    }

    /// Bytes the buffer keeps allocated (its capacity): what a cache must weigh, since a
    /// decoder's buffer can be larger than the samples it holds.
    pub fn capacity_bytes(&self) -> usize {
        with_samples!(self, v => v.capacity()) * self.dtype().size_bytes()
    }

    /// Gives back allocated space beyond the samples (before a long stay in a cache).
    pub fn shrink_to_fit(&mut self) {
        with_samples!(self, v => v.shrink_to_fit());
    }

    /// The samples converted to `dtype` (through f64: exact when `dtype` holds this type,
    /// see [`DataType::holds`]; otherwise rounded and saturated as [`Sample::from_f64`] does).
    pub fn convert(&self, dtype: DataType) -> Samples {
        fn to<T: Sample>(v: &[impl Sample]) -> Vec<T> {
            v.iter().map(|x| T::from_f64(x.to_f64())).collect()
        }
        if dtype == self.dtype() {
            return self.clone();
        }
        with_samples!(self, v => match dtype {
            DataType::U8 => Samples::U8(to(v)),
            DataType::I8 => Samples::I8(to(v)),
            DataType::U16 => Samples::U16(to(v)),
            DataType::I16 => Samples::I16(to(v)),
            DataType::U32 => Samples::U32(to(v)),
            DataType::I32 => Samples::I32(to(v)),
            DataType::F32 => Samples::F32(to(v)),
            DataType::F64 => Samples::F64(to(v)),
        })
    }

    /// Little-endian bytes of all samples (for `.npy` and GeoTIFF output).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        with_samples!(self, v => v.iter().flat_map(|s| s.to_le_bytes()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataType::*;

    #[test]
    fn round_half_away_is_f64_round() {
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.499_999_999_999_999_94,
            -0.499_999_999_999_999_94,
            4_503_599_627_370_495.5,
            -4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9.0e18,
            -9.0e18,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
        ];
        for k in -4000..4000 {
            let x = f64::from(k) * 0.125;
            values.extend([x, x + 1e-9, x - 1e-9, x * 1234.567]);
        }
        for v in values {
            // -0.0 and 0.0 compare equal: the sign of a zero is lost in the integer cast.
            assert_eq!(round_half_away(v), v.round(), "{v}");
            assert_eq!(i16::from_f64(v), v.round() as i16, "{v}");
            assert_eq!(u8::from_f64(v), v.round() as u8, "{v}");
        }
        assert_eq!(i32::from_f64(f64::NAN), 0);
    }

    #[test]
    fn promotion_takes_the_smallest_exact_type() {
        let cases = [
            (I16, F32, F32),
            (U8, I8, I16),
            (U8, U16, U16),
            (U16, I16, I32),
            (I8, U16, I32),
            (U8, F32, F32),
            (U16, F32, F32),
            (I32, F32, F64),
            (U32, I32, F64),
            (U32, I8, F64),
            (F32, F64, F64),
            (I16, I16, I16),
        ];
        for (a, b, want) in cases {
            assert_eq!(a.promote(b), want, "{a:?} + {b:?}");
            assert_eq!(b.promote(a), want, "{b:?} + {a:?}");
        }
    }

    #[test]
    fn holds_is_exactness() {
        assert!(I16.holds(U8));
        assert!(!I16.holds(U16));
        assert!(F32.holds(I16));
        assert!(!F32.holds(I32));
        assert!(F64.holds(U32));
        assert!(!I32.holds(F32));
        assert!(!U8.holds(I8));
    }

    #[test]
    fn convert_is_exact_into_a_wider_type() {
        let s = Samples::I16(vec![-32768, -1, 0, 32767]);
        assert_eq!(
            s.convert(F32),
            Samples::F32(vec![-32768.0, -1.0, 0.0, 32767.0])
        );
        assert_eq!(s.convert(I16), s);
        assert_eq!(
            Samples::I8(vec![-128, 127]).convert(I16),
            Samples::I16(vec![-128, 127])
        );
    }
}
