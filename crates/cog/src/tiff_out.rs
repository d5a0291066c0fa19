//! TIFF output shared by both writers (small tiles in [`crate::write`], whole COGs in
//! [`crate::cog_write`]): the byte order numbers are written in, field values, and the layout
//! and serialisation of the image file directories (IFDs) with their out-of-line values, in
//! classic TIFF or BigTIFF.
//!
//! A writer hands [`Directories::layout`] its IFDs (tags in any order; offsets to data not
//! known yet as placeholders of their final length), places its data from
//! [`Directories::data_start`] on, fills the offsets in with [`Directories::set`] and writes
//! [`Directories::serialize`] (header, IFDs, values) followed by its data.

use num_traits::ToBytes;

use crate::CogError;

/// The order of the bytes of written numbers: TIFF's `II` (little-endian) or `MM`
/// (big-endian). The one way Kiln's writers turn numbers into bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    /// `v`'s bytes in this order.
    #[inline]
    pub(crate) fn bytes<T: ToBytes>(self, v: T) -> T::Bytes {
        match self {
            Self::Little => v.to_le_bytes(),
            Self::Big => v.to_be_bytes(),
        }
    }

    /// Appends `v`'s bytes in this order to `out`.
    #[inline]
    pub(crate) fn put<T: ToBytes>(self, out: &mut Vec<u8>, v: T) {
        out.extend_from_slice(self.bytes(v).as_ref());
    }

    /// Writes `v`'s bytes in this order to `dst`, which is exactly as long as `T`.
    #[inline]
    pub(crate) fn write<T: ToBytes>(self, dst: &mut [u8], v: T) {
        dst.copy_from_slice(self.bytes(v).as_ref());
    }
}

/// Classic TIFF or BigTIFF, in a byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TiffFormat {
    pub(crate) order: ByteOrder,
    pub(crate) bigtiff: bool,
}

impl TiffFormat {
    /// Length of the file header.
    fn header_len(self) -> u64 {
        if self.bigtiff {
            16
        } else {
            8
        }
    }

    /// Length of an offset or value count: 4 bytes in classic TIFF, 8 in BigTIFF. Values up to
    /// this length sit in their entry.
    fn offset_len(self) -> u64 {
        if self.bigtiff {
            8
        } else {
            4
        }
    }

    /// Length of an IFD's entry count.
    fn count_len(self) -> u64 {
        if self.bigtiff {
            8
        } else {
            2
        }
    }

    /// Length of one IFD entry: tag, type, count, value or offset.
    fn entry_len(self) -> u64 {
        4 + 2 * self.offset_len()
    }

    /// Offsets or byte counts of data as a field value: LONG in classic TIFF, LONG8 in BigTIFF.
    pub(crate) fn offsets(self, v: Vec<u64>) -> Result<Value, CogError> {
        if self.bigtiff {
            return Ok(Value::Long8(v));
        }
        v.into_iter()
            .map(|x| u32::try_from(x).map_err(|_| too_large(format!("offset {x} exceeds 32 bits"))))
            .collect::<Result<_, _>>()
            .map(Value::Long)
    }

    /// Appends an offset or value count (4 or 8 bytes).
    fn put_offset(self, out: &mut Vec<u8>, v: u64) -> Result<(), CogError> {
        if self.bigtiff {
            self.order.put(out, v);
        } else {
            let v = u32::try_from(v).map_err(|_| too_large(format!("{v} exceeds 32 bits")))?;
            self.order.put(out, v);
        }
        Ok(())
    }
}

fn too_large(reason: String) -> CogError {
    CogError::TooLarge {
        what: "TIFF",
        reason,
    }
}

fn internal(reason: String) -> CogError {
    CogError::Malformed {
        reason: format!("internal layout error: {reason}"),
    }
}

/// A TIFF field value, by TIFF type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// ASCII bytes as stored (with their NUL; see [`Value::ascii`]).
    Ascii(Vec<u8>),
    Short(Vec<u16>),
    Long(Vec<u32>),
    /// BigTIFF only.
    Long8(Vec<u64>),
    Double(Vec<f64>),
}

impl Value {
    /// `s` as a NUL-terminated ASCII value.
    pub(crate) fn ascii(s: &str) -> Self {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        Self::Ascii(b)
    }

    fn type_code(&self) -> u16 {
        match self {
            Self::Ascii(_) => 2,
            Self::Short(_) => 3,
            Self::Long(_) => 4,
            Self::Double(_) => 12,
            Self::Long8(_) => 16,
        }
    }

    fn count(&self) -> usize {
        match self {
            Self::Ascii(v) => v.len(),
            Self::Short(v) => v.len(),
            Self::Long(v) => v.len(),
            Self::Long8(v) => v.len(),
            Self::Double(v) => v.len(),
        }
    }

    fn byte_len(&self) -> u64 {
        let size = match self {
            Self::Ascii(_) => 1,
            Self::Short(_) => 2,
            Self::Long(_) => 4,
            Self::Long8(_) | Self::Double(_) => 8,
        };
        (self.count() * size) as u64
    }

    fn put(&self, order: ByteOrder, out: &mut Vec<u8>) {
        match self {
            Self::Ascii(v) => out.extend_from_slice(v),
            Self::Short(v) => v.iter().for_each(|&x| order.put(out, x)),
            Self::Long(v) => v.iter().for_each(|&x| order.put(out, x)),
            Self::Long8(v) => v.iter().for_each(|&x| order.put(out, x)),
            Self::Double(v) => v.iter().for_each(|&x| order.put(out, x)),
        }
    }
}

/// A file's IFDs laid out: the header, then optional bytes of the writer's own (GDAL's ghost
/// area), then each IFD followed by its out-of-line values.
#[derive(Debug)]
pub(crate) struct Directories {
    format: TiffFormat,
    prelude: Vec<u8>,
    /// Per IFD, its entries sorted by tag.
    ifds: Vec<Vec<(u16, Value)>>,
    ifd_offsets: Vec<u64>,
    /// Per IFD and entry, where its value goes when it does not fit the entry.
    value_offsets: Vec<Vec<Option<u64>>>,
    data_start: u64,
}

impl Directories {
    /// Lays `ifds` out (in the order given, each IFD's entries sorted by tag) after the header
    /// and `prelude`. Each IFD and each out-of-line value starts on a multiple of `align` (2
    /// or more: TIFF wants word boundaries), and so does [`Directories::data_start`].
    pub(crate) fn layout(
        format: TiffFormat,
        prelude: Vec<u8>,
        mut ifds: Vec<Vec<(u16, Value)>>,
        align: u64,
    ) -> Self {
        let mut cursor = format.header_len() + prelude.len() as u64;
        let mut ifd_offsets = Vec::with_capacity(ifds.len());
        let mut value_offsets = Vec::with_capacity(ifds.len());
        for entries in &mut ifds {
            entries.sort_by_key(|(tag, _)| *tag);
            cursor = cursor.next_multiple_of(align);
            ifd_offsets.push(cursor);
            cursor += format.count_len()
                + entries.len() as u64 * format.entry_len()
                + format.offset_len();
            let mut offsets = Vec::with_capacity(entries.len());
            for (_, value) in entries.iter() {
                if value.byte_len() > format.offset_len() {
                    cursor = cursor.next_multiple_of(align);
                    offsets.push(Some(cursor));
                    cursor += value.byte_len();
                } else {
                    offsets.push(None);
                }
            }
            value_offsets.push(offsets);
        }
        Self {
            format,
            prelude,
            ifds,
            ifd_offsets,
            value_offsets,
            data_start: cursor.next_multiple_of(align),
        }
    }

    /// Where the data after the IFDs starts.
    pub(crate) fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Replaces the value of `tag` in IFD `ifd` by one of the same type and count (a
    /// placeholder filled in once the data is placed), so the layout holds.
    pub(crate) fn set(&mut self, ifd: usize, tag: u16, value: Value) -> Result<(), CogError> {
        let slot = self
            .ifds
            .get_mut(ifd)
            .and_then(|e| e.iter_mut().find(|(t, _)| *t == tag))
            .ok_or_else(|| internal(format!("IFD {ifd} has no tag {tag}")))?;
        if (slot.1.type_code(), slot.1.count()) != (value.type_code(), value.count()) {
            return Err(internal(format!(
                "tag {tag} of IFD {ifd} laid out for {} values of type {}, set to {} of type {}",
                slot.1.count(),
                slot.1.type_code(),
                value.count(),
                value.type_code()
            )));
        }
        slot.1 = value;
        Ok(())
    }

    /// The file up to [`Directories::data_start`]: header, prelude, IFDs with their values,
    /// zero padding between them.
    pub(crate) fn serialize(&self) -> Result<Vec<u8>, CogError> {
        let f = self.format;
        let order = f.order;
        let to_usize = |v: u64| usize::try_from(v).map_err(|_| too_large(format!("offset {v}")));
        let pad_to = |out: &mut Vec<u8>, at: u64| -> Result<(), CogError> {
            if out.len() as u64 > at {
                return Err(internal(format!("{} bytes written before {at}", out.len())));
            }
            out.resize(to_usize(at)?, 0);
            Ok(())
        };
        let mut out = Vec::with_capacity(to_usize(self.data_start)?);
        out.extend_from_slice(match order {
            ByteOrder::Little => b"II",
            ByteOrder::Big => b"MM",
        });
        if f.bigtiff {
            // Version 43, offset size 8, reserved 0.
            order.put(&mut out, 43u16);
            order.put(&mut out, 8u16);
            order.put(&mut out, 0u16);
        } else {
            order.put(&mut out, 42u16);
        }
        f.put_offset(&mut out, self.ifd_offsets.first().copied().unwrap_or(0))?;
        out.extend_from_slice(&self.prelude);
        for (n, entries) in self.ifds.iter().enumerate() {
            pad_to(&mut out, self.ifd_offsets[n])?;
            if f.bigtiff {
                order.put(&mut out, entries.len() as u64);
            } else {
                let count = u16::try_from(entries.len())
                    .map_err(|_| too_large(format!("{} entries in one IFD", entries.len())))?;
                order.put(&mut out, count);
            }
            for ((tag, value), off) in entries.iter().zip(&self.value_offsets[n]) {
                if value.type_code() == 16 && !f.bigtiff {
                    return Err(internal(format!("LONG8 tag {tag} in classic TIFF")));
                }
                order.put(&mut out, *tag);
                order.put(&mut out, value.type_code());
                f.put_offset(&mut out, value.count() as u64)?;
                match off {
                    Some(off) => f.put_offset(&mut out, *off)?,
                    None => {
                        // A value that fits sits in the entry, left-justified.
                        let end = out.len() + to_usize(f.offset_len())?;
                        value.put(order, &mut out);
                        out.resize(end, 0);
                    }
                }
            }
            let next = self.ifd_offsets.get(n + 1).copied().unwrap_or(0);
            f.put_offset(&mut out, next)?;
            for ((_, value), off) in entries.iter().zip(&self.value_offsets[n]) {
                if let Some(off) = off {
                    pad_to(&mut out, *off)?;
                    value.put(order, &mut out);
                }
            }
        }
        pad_to(&mut out, self.data_start)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    // Expected bytes below are written out by hand from the TIFF 6.0 specification (section 2:
    // header, IFD, 12-byte entries, values of up to 4 bytes left-justified in the entry,
    // larger ones at a word-aligned offset) and the BigTIFF proposal (16-byte header with
    // version 43 and offset size 8, 8-byte entry count, 20-byte entries, values of up to 8
    // bytes in the entry, LONG8 = type 16).
    use super::*;

    const LE: TiffFormat = TiffFormat {
        order: ByteOrder::Little,
        bigtiff: false,
    };
    const BE: TiffFormat = TiffFormat {
        order: ByteOrder::Big,
        bigtiff: false,
    };

    /// ImageWidth (256) = 300 as one SHORT, in the entry; ModelPixelScale (33550) = [0.5, 2.5]
    /// as DOUBLEs, 16 bytes, by offset. Given out of tag order.
    fn one_ifd() -> Vec<Vec<(u16, Value)>> {
        vec![vec![
            (33550, Value::Double(vec![0.5, 2.5])),
            (256, Value::Short(vec![300])),
        ]]
    }

    #[test]
    fn classic_little_endian_by_hand() {
        let d = Directories::layout(LE, Vec::new(), one_ifd(), 2);
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            b'I', b'I', 42, 0, 8, 0, 0, 0,           // header: II, 42, first IFD at 8
            2, 0,                                    // 2 entries
            0x00, 0x01, 3, 0, 1, 0, 0, 0, 0x2c, 0x01, 0, 0, // 256 SHORT x1 = 300, inline
            0x0e, 0x83, 12, 0, 2, 0, 0, 0, 38, 0, 0, 0,     // 33550 DOUBLE x2 at 8+2+24+4 = 38
            0, 0, 0, 0,                              // no next IFD
            0, 0, 0, 0, 0, 0, 0xe0, 0x3f,            // 0.5
            0, 0, 0, 0, 0, 0, 0x04, 0x40,            // 2.5
        ];
        assert_eq!(d.serialize().unwrap(), expected);
        assert_eq!(d.data_start(), 54);
    }

    #[test]
    fn classic_big_endian_by_hand() {
        let d = Directories::layout(BE, Vec::new(), one_ifd(), 2);
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            b'M', b'M', 0, 42, 0, 0, 0, 8,
            0, 2,
            0x01, 0x00, 0, 3, 0, 0, 0, 1, 0x01, 0x2c, 0, 0, // left-justified: value, then pad
            0x83, 0x0e, 0, 12, 0, 0, 0, 2, 0, 0, 0, 38,
            0, 0, 0, 0,
            0x3f, 0xe0, 0, 0, 0, 0, 0, 0,
            0x40, 0x04, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(d.serialize().unwrap(), expected);
    }

    /// BigTIFF, little-endian, a 5-byte prelude, 8-byte alignment, two IFDs; the second's
    /// StripOffsets laid out as a placeholder and set afterwards.
    #[test]
    fn bigtiff_two_ifds_by_hand() {
        let f = TiffFormat {
            order: ByteOrder::Little,
            bigtiff: true,
        };
        let ifds = vec![
            vec![
                (305, Value::ascii("Kiln")),
                (256, Value::Long(vec![0x0102_0304])),
            ],
            vec![(273, f.offsets(vec![0, 0]).unwrap())],
        ];
        let mut d = Directories::layout(f, b"GHOST".to_vec(), ifds, 8);
        assert_eq!(d.data_start(), 136);
        d.set(1, 273, f.offsets(vec![16, 256]).unwrap()).unwrap();
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            b'I', b'I', 43, 0, 8, 0, 0, 0,           // II, 43, offset size 8, reserved 0
            24, 0, 0, 0, 0, 0, 0, 0,                 // first IFD: 16 + 5 rounded up to 8
            b'G', b'H', b'O', b'S', b'T', 0, 0, 0,   // prelude, padding
            2, 0, 0, 0, 0, 0, 0, 0,                  // 2 entries
            0x00, 0x01, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0, // 256 LONG
            0x31, 0x01, 2, 0, 5, 0, 0, 0, 0, 0, 0, 0, b'K', b'i', b'l', b'n', 0, 0, 0, 0, // 305
            80, 0, 0, 0, 0, 0, 0, 0,                 // next IFD at 24 + 8 + 40 + 8 = 80
            1, 0, 0, 0, 0, 0, 0, 0,                  // 1 entry
            0x11, 0x01, 16, 0, 2, 0, 0, 0, 0, 0, 0, 0, 120, 0, 0, 0, 0, 0, 0, 0, // 273 LONG8 x2
            0, 0, 0, 0, 0, 0, 0, 0,                  // no next IFD (ends at 116)
            0, 0, 0, 0,                              // padding to 120
            16, 0, 0, 0, 0, 0, 0, 0,
            0, 1, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(d.serialize().unwrap(), expected);
    }

    #[test]
    fn layout_changes_and_classic_long8_are_refused() {
        let mut d = Directories::layout(LE, Vec::new(), one_ifd(), 2);
        assert!(d.set(0, 256, Value::Short(vec![1, 2])).is_err());
        assert!(d.set(0, 257, Value::Short(vec![1])).is_err());
        assert!(d.set(0, 256, Value::Short(vec![512])).is_ok());
        let d = Directories::layout(LE, Vec::new(), vec![vec![(273, Value::Long8(vec![8]))]], 2);
        assert!(d.serialize().is_err());
        assert!(LE.offsets(vec![1 << 32]).is_err());
    }

    #[test]
    fn byte_orders() {
        assert_eq!(ByteOrder::Little.bytes(0x0102_u16), [2, 1]);
        assert_eq!(ByteOrder::Big.bytes(0x0102_u16), [1, 2]);
        let mut out = vec![0; 4];
        ByteOrder::Big.write(&mut out, 1.0f32);
        assert_eq!(out, [0x3f, 0x80, 0, 0]);
    }
}
