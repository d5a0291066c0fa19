//! Low-level TIFF structure: byte order, the file header, raw IFD entries and typed tag values.
//!
//! Everything here reads through a [`RangeData`] and bounds every count before allocating, so a
//! hostile file can neither make us allocate without limit nor read outside the file. Missing
//! bytes surface as [`CogError::NeedBytes`] from `RangeData::get` and are passed up unchanged.

use std::borrow::Cow;

use crate::{CogError, RangeData};

/// Most IFDs a file may chain (overviews and masks of a deep pyramid stay far below this).
pub(crate) const MAX_IFDS: usize = 1024;
/// Most entries one IFD may declare (real files have 15–40).
const MAX_ENTRIES: u64 = 4096;

pub(crate) fn malformed(reason: impl Into<String>) -> CogError {
    CogError::Malformed {
        reason: reason.into(),
    }
}

pub(crate) fn unsupported(feature: impl Into<String>) -> CogError {
    CogError::Unsupported {
        feature: feature.into(),
    }
}

/// For tags we can live without (citations, metadata text): a value of the wrong field type
/// reads as absent. Absurd sizes, missing bytes and cut-short files still surface: a header
/// that lies about sizes is not trusted for anything else either.
pub(crate) fn optional<T>(r: Result<Option<T>, CogError>) -> Result<Option<T>, CogError> {
    match r {
        Err(CogError::Malformed { .. }) => Ok(None),
        other => other,
    }
}

/// Byte order of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Order {
    pub big_endian: bool,
}

impl Order {
    pub fn u16(self, b: [u8; 2]) -> u16 {
        if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }
    pub fn u32(self, b: [u8; 4]) -> u32 {
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }
    pub fn u64(self, b: [u8; 8]) -> u64 {
        if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        }
    }
}

/// `N` bytes of `b` at `pos`, or a `Malformed` error naming `what`.
pub(crate) fn take<const N: usize>(b: &[u8], pos: usize, what: &str) -> Result<[u8; N], CogError> {
    pos.checked_add(N)
        .and_then(|end| b.get(pos..end))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or_else(|| malformed(format!("{what}: structure cut short")))
}

/// The 8- or 16-byte file header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileHeader {
    pub order: Order,
    pub bigtiff: bool,
    pub first_ifd: u64,
}

impl FileHeader {
    pub fn read(data: &dyn RangeData) -> Result<Self, CogError> {
        let len = data.len();
        if len < 8 {
            return Err(CogError::Truncated {
                reason: format!("file has {len} bytes, fewer than a TIFF header"),
            });
        }
        let head = data.get(0, len.min(16))?;
        let order = match head.get(0..2) {
            Some(b"II") => Order { big_endian: false },
            Some(b"MM") => Order { big_endian: true },
            _ => return Err(malformed("not a TIFF file (no II/MM byte-order mark)")),
        };
        let version = order.u16(take(head, 2, "file header")?);
        match version {
            42 => Ok(Self {
                order,
                bigtiff: false,
                first_ifd: u64::from(order.u32(take(head, 4, "file header")?)),
            }),
            43 => {
                if head.len() < 16 {
                    return Err(CogError::Truncated {
                        reason: format!("BigTIFF header needs 16 bytes, the file has {len}"),
                    });
                }
                let offset_size = order.u16(take(head, 4, "BigTIFF header")?);
                if offset_size != 8 {
                    return Err(malformed(format!(
                        "BigTIFF offset size is {offset_size}, expected 8"
                    )));
                }
                Ok(Self {
                    order,
                    bigtiff: true,
                    first_ifd: order.u64(take(head, 8, "BigTIFF header")?),
                })
            }
            v => Err(malformed(format!(
                "unknown TIFF version {v} (expected 42 or 43)"
            ))),
        }
    }

    fn entry_size(self) -> u64 {
        if self.bigtiff {
            20
        } else {
            12
        }
    }
}

/// One IFD entry, value field kept raw (4 bytes in classic TIFF, 8 in BigTIFF).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub tag: u16,
    pub typ: u16,
    pub count: u64,
    field: [u8; 8],
}

/// Size in bytes of one value of TIFF field type `typ`, `None` for unknown types.
fn type_size(typ: u16) -> Option<u64> {
    match typ {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 | 16 | 17 | 18 => Some(8),
        _ => None,
    }
}

/// One parsed IFD: its entries (sorted by tag) and where the chain goes next.
pub(crate) struct RawIfd<'a> {
    data: &'a dyn RangeData,
    header: FileHeader,
    pub offset: u64,
    pub next: u64,
    entries: Vec<Entry>,
}

impl<'a> RawIfd<'a> {
    pub fn read(
        data: &'a dyn RangeData,
        header: FileHeader,
        offset: u64,
    ) -> Result<Self, CogError> {
        let order = header.order;
        let count_len = if header.bigtiff { 8 } else { 2 };
        let count_bytes = data.get(offset, count_len)?;
        let count = if header.bigtiff {
            order.u64(take(count_bytes, 0, "IFD entry count")?)
        } else {
            u64::from(order.u16(take(count_bytes, 0, "IFD entry count")?))
        };
        if count > MAX_ENTRIES {
            return Err(CogError::TooLarge {
                what: "IFD",
                reason: format!("IFD at {offset} declares {count} entries (limit {MAX_ENTRIES})"),
            });
        }
        let next_len = if header.bigtiff { 8 } else { 4 };
        // count <= 4096, so this cannot overflow.
        let body_len = count * header.entry_size() + next_len;
        let body = data.get(offset + count_len, body_len)?;
        let es = header.entry_size() as usize;
        let mut entries = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            let p = i * es;
            let tag = order.u16(take(body, p, "IFD entry")?);
            let typ = order.u16(take(body, p + 2, "IFD entry")?);
            let (count, field) = if header.bigtiff {
                let c = order.u64(take(body, p + 4, "IFD entry")?);
                (c, take::<8>(body, p + 12, "IFD entry")?)
            } else {
                let c = u64::from(order.u32(take(body, p + 4, "IFD entry")?));
                let f = take::<4>(body, p + 8, "IFD entry")?;
                (c, [f[0], f[1], f[2], f[3], 0, 0, 0, 0])
            };
            entries.push(Entry {
                tag,
                typ,
                count,
                field,
            });
        }
        // Writers must sort entries; tolerate those that don't, keep the first of duplicates.
        entries.sort_by_key(|e| e.tag);
        entries.dedup_by_key(|e| e.tag);
        let next_pos = count as usize * es;
        let next = if header.bigtiff {
            order.u64(take(body, next_pos, "next IFD offset")?)
        } else {
            u64::from(order.u32(take(body, next_pos, "next IFD offset")?))
        };
        Ok(Self {
            data,
            header,
            offset,
            next,
            entries,
        })
    }

    pub fn entry(&self, tag: u16) -> Option<&Entry> {
        self.entries
            .binary_search_by_key(&tag, |e| e.tag)
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    pub fn has(&self, tag: u16) -> bool {
        self.entry(tag).is_some()
    }

    /// Raw value bytes of an entry, at most `max_count` values.
    fn raw(&self, e: &Entry, max_count: u64) -> Result<Cow<'a, [u8]>, CogError> {
        let size = type_size(e.typ)
            .ok_or_else(|| malformed(format!("tag {} has unknown field type {}", e.tag, e.typ)))?;
        if e.count > max_count {
            return Err(CogError::TooLarge {
                what: "TIFF tag",
                reason: format!("tag {} has {} values (limit {max_count})", e.tag, e.count),
            });
        }
        let total = e
            .count
            .checked_mul(size)
            .ok_or_else(|| malformed(format!("tag {} size overflows", e.tag)))?;
        let inline = if self.header.bigtiff { 8 } else { 4 };
        if total <= inline {
            // total <= 8 here.
            return Ok(Cow::Owned(e.field[..total as usize].to_vec()));
        }
        let order = self.header.order;
        let offset = if self.header.bigtiff {
            order.u64(e.field)
        } else {
            u64::from(order.u32([e.field[0], e.field[1], e.field[2], e.field[3]]))
        };
        let end = offset.checked_add(total);
        if end.is_none_or(|end| end > self.data.len()) {
            return Err(CogError::Truncated {
                reason: format!(
                    "tag {} values at {offset}..{offset}+{total} lie past the end of the file ({} bytes)",
                    e.tag,
                    self.data.len()
                ),
            });
        }
        Ok(Cow::Borrowed(self.data.get(offset, total)?))
    }

    /// Unsigned integer values of a tag (any integer field type; negative values are an error).
    pub fn uints(&self, tag: u16, max_count: u64) -> Result<Option<Vec<u64>>, CogError> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        let raw = self.raw(e, max_count)?;
        let o = self.header.order;
        let bad_neg = || malformed(format!("tag {tag} has a negative value"));
        let v: Vec<u64> = match e.typ {
            1 | 7 => raw.iter().map(|&b| u64::from(b)).collect(),
            3 => raw
                .chunks_exact(2)
                .map(|c| u64::from(o.u16([c[0], c[1]])))
                .collect(),
            4 | 13 => raw
                .chunks_exact(4)
                .map(|c| u64::from(o.u32([c[0], c[1], c[2], c[3]])))
                .collect(),
            16 | 18 => raw
                .chunks_exact(8)
                .map(|c| o.u64([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            6 => raw
                .iter()
                .map(|&b| u64::try_from(b as i8).map_err(|_| bad_neg()))
                .collect::<Result<_, _>>()?,
            8 => raw
                .chunks_exact(2)
                .map(|c| u64::try_from(o.u16([c[0], c[1]]) as i16).map_err(|_| bad_neg()))
                .collect::<Result<_, _>>()?,
            9 => raw
                .chunks_exact(4)
                .map(|c| {
                    u64::try_from(o.u32([c[0], c[1], c[2], c[3]]) as i32).map_err(|_| bad_neg())
                })
                .collect::<Result<_, _>>()?,
            17 => raw
                .chunks_exact(8)
                .map(|c| {
                    u64::try_from(o.u64([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as i64)
                        .map_err(|_| bad_neg())
                })
                .collect::<Result<_, _>>()?,
            t => {
                return Err(malformed(format!(
                    "tag {tag} has field type {t}, expected an integer type"
                )))
            }
        };
        Ok(Some(v))
    }

    /// First value of an integer tag (tags that should hold one value but hold a few are
    /// tolerated; absurd counts are not).
    pub fn uint(&self, tag: u16) -> Result<Option<u64>, CogError> {
        match self.uints(tag, 65_536)? {
            None => Ok(None),
            Some(v) => v
                .first()
                .copied()
                .map(Some)
                .ok_or_else(|| malformed(format!("tag {tag} has no value"))),
        }
    }

    /// Floating-point values of a tag (float, double, rational or integer field types).
    pub fn floats(&self, tag: u16, max_count: u64) -> Result<Option<Vec<f64>>, CogError> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        let o = self.header.order;
        let v: Vec<f64> = match e.typ {
            11 => self
                .raw(e, max_count)?
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_bits(o.u32([c[0], c[1], c[2], c[3]]))))
                .collect(),
            12 => self
                .raw(e, max_count)?
                .chunks_exact(8)
                .map(|c| f64::from_bits(o.u64([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])))
                .collect(),
            5 | 10 => self
                .raw(e, max_count)?
                .chunks_exact(8)
                .map(|c| {
                    let n = o.u32([c[0], c[1], c[2], c[3]]);
                    let d = o.u32([c[4], c[5], c[6], c[7]]);
                    if e.typ == 5 {
                        f64::from(n) / f64::from(d)
                    } else {
                        f64::from(n as i32) / f64::from(d as i32)
                    }
                })
                .collect(),
            _ => self
                .uints(tag, max_count)?
                .unwrap_or_default()
                .into_iter()
                .map(|v| v as f64)
                .collect(),
        };
        Ok(Some(v))
    }

    /// Raw bytes of a BYTE / UNDEFINED / ASCII tag.
    pub fn bytes(&self, tag: u16, max_count: u64) -> Result<Option<Vec<u8>>, CogError> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        if !matches!(e.typ, 1 | 2 | 6 | 7) {
            return Err(malformed(format!(
                "tag {tag} has field type {}, expected bytes",
                e.typ
            )));
        }
        Ok(Some(self.raw(e, max_count)?.into_owned()))
    }

    /// An ASCII tag as text, trailing NULs removed, invalid UTF-8 replaced.
    pub fn ascii(&self, tag: u16, max_count: u64) -> Result<Option<String>, CogError> {
        Ok(self.bytes(tag, max_count)?.map(|b| {
            let end = b.iter().rposition(|&c| c != 0).map_or(0, |p| p + 1);
            String::from_utf8_lossy(&b[..end]).into_owned()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little-endian classic TIFF with one IFD holding `entries` (tag, type, count, value).
    fn tiff(entries: &[(u16, u16, u32, u32)], next: u32) -> Vec<u8> {
        let mut v = b"II*\0".to_vec();
        v.extend_from_slice(&8u32.to_le_bytes());
        v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for &(tag, typ, count, val) in entries {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&typ.to_le_bytes());
            v.extend_from_slice(&count.to_le_bytes());
            v.extend_from_slice(&val.to_le_bytes());
        }
        v.extend_from_slice(&next.to_le_bytes());
        v
    }

    #[test]
    fn reads_inline_and_out_of_line_values() {
        let mut f = tiff(&[(256, 3, 1, 300), (258, 3, 3, 0)], 0);
        // Point tag 258 at three shorts appended after the IFD.
        let at = f.len() as u32;
        let pos = 8 + 2 + 12 + 8;
        f[pos..pos + 4].copy_from_slice(&at.to_le_bytes());
        for s in [8u16, 16, 32] {
            f.extend_from_slice(&s.to_le_bytes());
        }
        let f = f.as_slice();
        let h = FileHeader::read(&f).unwrap();
        let ifd = RawIfd::read(&f, h, h.first_ifd).unwrap();
        assert_eq!(ifd.uint(256).unwrap(), Some(300));
        assert_eq!(ifd.uints(258, 10).unwrap(), Some(vec![8, 16, 32]));
        assert_eq!(ifd.uint(258).unwrap(), Some(8));
        assert!(matches!(ifd.uints(258, 2), Err(CogError::TooLarge { .. })));
        assert_eq!(ifd.uint(999).unwrap(), None);
    }

    #[test]
    fn out_of_file_values_are_truncated_errors() {
        let f = tiff(&[(273, 4, 10, 1_000_000)], 0);
        let f = f.as_slice();
        let h = FileHeader::read(&f).unwrap();
        let ifd = RawIfd::read(&f, h, h.first_ifd).unwrap();
        assert!(matches!(
            ifd.uints(273, 100),
            Err(CogError::Truncated { .. })
        ));
    }

    #[test]
    fn rejects_non_tiff() {
        assert!(matches!(
            FileHeader::read(&b"GIF89a\0\0\0\0".as_slice()),
            Err(CogError::Malformed { .. })
        ));
        assert!(matches!(
            FileHeader::read(&b"II".as_slice()),
            Err(CogError::Truncated { .. })
        ));
        assert!(matches!(
            FileHeader::read(&b"II\x2c\0\x08\0\0\0".as_slice()),
            Err(CogError::Malformed { .. })
        ));
    }
}
