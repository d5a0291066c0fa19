//! A small reader for NumPy `.npy` files (format versions 1.0 to 3.0), enough for the
//! golden-tile tests: C-order arrays of fixed-size numeric dtypes in either byte order,
//! widened to `f64` so tiles of any dtype compare through one code path.

use std::path::Path;

/// One decoded array. `values` are in C order; every supported dtype (up to 32-bit
/// integers and 64-bit floats) converts to `f64` without loss.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// NumPy's name for the dtype: `uint8`, `int16`, `float32`, ...
    pub dtype: String,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

impl NpyArray {
    /// The 2-D plane `index` of a 3-D array (bands, rows, cols).
    pub fn plane(&self, index: usize) -> Option<&[f64]> {
        let [_, rows, cols] = self.shape[..] else {
            return None;
        };
        let len = rows.checked_mul(cols)?;
        let start = index.checked_mul(len)?;
        self.values.get(start..start.checked_add(len)?)
    }
}

pub fn read_npy(path: &Path) -> Result<NpyArray, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_npy(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse_npy(bytes: &[u8]) -> Result<NpyArray, String> {
    let magic = b"\x93NUMPY";
    if bytes.get(..magic.len()) != Some(magic.as_slice()) {
        return Err("not an npy file (bad magic)".into());
    }
    let major = *bytes.get(6).ok_or("truncated npy preamble")?;
    let (header_len, header_start): (usize, usize) = match major {
        1 => {
            let b = bytes.get(8..10).ok_or("truncated npy preamble")?;
            (usize::from(u16::from_le_bytes([b[0], b[1]])), 10)
        }
        2 | 3 => {
            let b = bytes.get(8..12).ok_or("truncated npy preamble")?;
            let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            (usize::try_from(len).map_err(|_| "header too long")?, 12)
        }
        v => return Err(format!("unsupported npy format version {v}")),
    };
    let header_end = header_start
        .checked_add(header_len)
        .ok_or("header length overflows")?;
    let header = bytes
        .get(header_start..header_end)
        .ok_or("truncated npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "npy header is not UTF-8")?;

    let descr = dict_value(header, "descr")?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    if dict_value(header, "fortran_order")?.trim() != "False" {
        return Err("Fortran-order arrays are not supported".into());
    }
    let shape = parse_shape(&dict_value(header, "shape")?)?;

    let (kind, little, size) = parse_descr(descr)?;
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or("shape overflows")?;
    let data_len = count.checked_mul(size).ok_or("data size overflows")?;
    let data = bytes
        .get(header_end..)
        .and_then(|rest| rest.get(..data_len))
        .ok_or_else(|| format!("truncated npy data: need {data_len} bytes"))?;

    let values = data
        .chunks_exact(size)
        .map(|c| decode(kind, little, c))
        .collect::<Result<Vec<f64>, String>>()?;
    let dtype = match (kind, size) {
        ('u', _) => format!("uint{}", size * 8),
        ('i', _) => format!("int{}", size * 8),
        ('b', _) => "bool".to_string(),
        _ => format!("float{}", size * 8),
    };
    Ok(NpyArray {
        dtype,
        shape,
        values,
    })
}

/// The raw text of `'key': value` in the header's Python dict literal.
fn dict_value(header: &str, key: &str) -> Result<String, String> {
    let pat = format!("'{key}':");
    let start = header
        .find(&pat)
        .map(|i| i + pat.len())
        .ok_or_else(|| format!("npy header lacks '{key}'"))?;
    let rest = header.get(start..).ok_or("bad header")?.trim_start();
    // The shape tuple contains commas, so it ends at its closing parenthesis.
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else {
        rest.find([',', '}'])
    }
    .ok_or_else(|| format!("npy header: unterminated '{key}'"))?;
    Ok(rest.get(..end).ok_or("bad header")?.to_string())
}

fn parse_shape(text: &str) -> Result<Vec<usize>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("bad shape {text:?}"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|e| format!("bad shape {text:?}: {e}"))
        })
        .collect()
}

/// (kind, little-endian, item size) from a descr such as `<i2`, `|u1`, `>f4`.
fn parse_descr(descr: &str) -> Result<(char, bool, usize), String> {
    let mut chars = descr.chars();
    let order = chars.next().ok_or("empty descr")?;
    let kind = chars.next().ok_or("short descr")?;
    let size: usize = chars
        .as_str()
        .parse()
        .map_err(|_| format!("bad descr {descr:?}"))?;
    let little = match order {
        '<' | '|' | '=' => true,
        '>' => false,
        _ => return Err(format!("bad byte order in descr {descr:?}")),
    };
    let ok = matches!(
        (kind, size),
        ('u', 1 | 2 | 4) | ('i', 1 | 2 | 4) | ('f', 4 | 8) | ('b', 1)
    );
    if !ok {
        return Err(format!("unsupported dtype {descr:?}"));
    }
    Ok((kind, little, size))
}

fn decode(kind: char, little: bool, c: &[u8]) -> Result<f64, String> {
    let mut b = [0u8; 8];
    let dst = b.get_mut(..c.len()).ok_or("item too large")?;
    dst.copy_from_slice(c);
    if !little {
        dst.reverse();
    }
    let v = match (kind, c.len()) {
        ('u' | 'b', 1) => f64::from(b[0]),
        ('i', 1) => f64::from(i8::from_le_bytes([b[0]])),
        ('u', 2) => f64::from(u16::from_le_bytes([b[0], b[1]])),
        ('i', 2) => f64::from(i16::from_le_bytes([b[0], b[1]])),
        ('u', 4) => f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ('i', 4) => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ('f', 4) => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ('f', 8) => f64::from_le_bytes(b),
        _ => return Err(format!("unsupported item {kind}{}", c.len())),
    };
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8], version: u8) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let pre = if version == 1 { 10 } else { 12 };
        while (pre + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY".to_vec();
        out.extend([version, 0]);
        if version == 1 {
            out.extend(u16::try_from(header.len()).unwrap().to_le_bytes());
        } else {
            out.extend(u32::try_from(header.len()).unwrap().to_le_bytes());
        }
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn reads_little_endian_int16_3d() {
        let data: Vec<u8> = [1i16, -2, 300, -32768]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a = parse_npy(&npy("<i2", "(1, 2, 2)", &data, 1)).unwrap();
        assert_eq!(a.dtype, "int16");
        assert_eq!(a.shape, vec![1, 2, 2]);
        assert_eq!(a.values, vec![1.0, -2.0, 300.0, -32768.0]);
        assert_eq!(a.plane(0).unwrap(), &[1.0, -2.0, 300.0, -32768.0]);
        assert!(a.plane(1).is_none());
    }

    #[test]
    fn reads_big_endian_float32_version2() {
        let data: Vec<u8> = [1.5f32, f32::NAN]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let a = parse_npy(&npy(">f4", "(2,)", &data, 2)).unwrap();
        assert_eq!(a.dtype, "float32");
        assert_eq!(a.values[0], 1.5);
        assert!(a.values[1].is_nan());
    }

    #[test]
    fn rejects_truncated_and_unsupported() {
        assert!(parse_npy(&npy("|u1", "(4,)", &[1, 2, 3], 1)).is_err());
        assert!(parse_npy(&npy("<c8", "(1,)", &[0; 8], 1)).is_err());
        assert!(parse_npy(b"\x93NUMPX").is_err());
        assert!(parse_npy(&[]).is_err());
    }
}
