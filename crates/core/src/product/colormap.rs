//! Colormaps: the named matplotlib maps Terracotta serves (and their `_r` reverses), explicit
//! value → colour maps, and the palettes both turn into for indexed PNGs.
//!
//! A named map is a 255-entry RGBA table (see `scripts/gen_colormaps.py`). A stretched pixel
//! with palette index `i` in `1..=255` takes table entry `i - 1`; index `0` is transparent.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::colormap_data::COLORMAPS;
use super::stretch::{band_range, Stretch};
use crate::dtype::Sample;
use crate::raster::Raster;
use crate::{with_samples, CoreError};

/// Number of colours in a named colormap (palette indices `1..=255`).
pub const COLORMAP_LEN: usize = 255;

/// Maximum number of entries in an explicit colormap (palette indices `1..=255`).
pub const MAX_EXPLICIT_ENTRIES: usize = 255;

/// Upper bound on the number of values `/colormap` may ask for.
pub const MAX_COLORMAP_VALUES: usize = 65_536;

/// A named colormap, e.g. `viridis` or `rdbu_r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colormap {
    name: &'static str,
    table: &'static [[u8; 4]; COLORMAP_LEN],
}

impl Colormap {
    /// Looks a colormap up by name, ignoring ASCII case (`RdBu_r` finds `rdbu_r`).
    pub fn by_name(name: &str) -> Result<Self, CoreError> {
        COLORMAPS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(n, table)| Self { name: n, table })
            .ok_or_else(|| {
                CoreError::invalid(
                    "colormap",
                    format!(
                        "unknown colormap {name:?}; known: {}",
                        colormap_names().join(", ")
                    ),
                )
            })
    }

    /// The lower-case name, as listed by [`colormap_names`].
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The 255 RGBA colours for palette indices `1..=255`.
    pub fn table(&self) -> &'static [[u8; 4]; COLORMAP_LEN] {
        self.table
    }

    /// The indexed-PNG palette: transparent black at index 0, then the table.
    pub fn palette(&self) -> Palette {
        let mut rgba = Vec::with_capacity(COLORMAP_LEN + 1);
        rgba.push([0, 0, 0, 0]);
        rgba.extend_from_slice(self.table);
        Palette { rgba }
    }
}

/// Names of all named colormaps, sorted, lower case.
pub fn colormap_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = COLORMAPS.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    names
}

/// An indexed-PNG palette of up to 256 RGBA entries; pixels index into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Palette {
    rgba: Vec<[u8; 4]>,
}

impl Palette {
    /// Fails when there are no entries or more than 256.
    pub fn new(rgba: Vec<[u8; 4]>) -> Result<Self, CoreError> {
        if rgba.is_empty() || rgba.len() > 256 {
            return Err(CoreError::invalid(
                "palette",
                format!("needs 1..=256 entries, got {}", rgba.len()),
            ));
        }
        Ok(Self { rgba })
    }

    /// The palette of an uncoloured single-band image: index `i` is grey `(i, i, i, 255)`
    /// and index 0 is transparent, the colours [`colormap_values`] lists without a colormap.
    pub fn grey() -> Self {
        let mut rgba: Vec<[u8; 4]> = (0..=255u8).map(|i| [i, i, i, 255]).collect();
        rgba[0] = [0, 0, 0, 0];
        Self { rgba }
    }

    pub fn entries(&self) -> &[[u8; 4]] {
        &self.rgba
    }

    pub fn len(&self) -> usize {
        self.rgba.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rgba.is_empty()
    }
}

/// One step of a colormap legend (Terracotta's `/colormap` response item).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColormapEntry {
    pub value: f64,
    pub rgba: [u8; 4],
}

/// Terracotta's `/colormap`: `num_values` data values evenly spaced over the stretch range
/// (numpy `linspace`), each with the colour a pixel of that value gets. Without a colormap the
/// colours are the grey ramp of an uncoloured single-band tile (`(i, i, i, 255)` for index `i`).
pub fn colormap_values(
    colormap: Option<&Colormap>,
    stretch: Stretch,
    num_values: usize,
) -> Result<Vec<ColormapEntry>, CoreError> {
    if num_values == 0 {
        return Err(CoreError::invalid(
            "num_values",
            "must be at least 1".to_string(),
        ));
    }
    if num_values > MAX_COLORMAP_VALUES {
        return Err(CoreError::TooLarge {
            what: "num_values",
            reason: format!("{num_values} > {MAX_COLORMAP_VALUES}"),
        });
    }
    let (lo, hi) = (stretch.min(), stretch.max());
    Ok((0..num_values)
        .map(|i| {
            let value = linspace_at(lo, hi, num_values, i);
            // Finite by construction, so the index is in 1..=255.
            let index = stretch.to_index(value);
            let rgba = match colormap {
                Some(c) => c
                    .table
                    .get(usize::from(index.saturating_sub(1)))
                    .copied()
                    .unwrap_or([0, 0, 0, 0]),
                None => [index, index, index, 255],
            };
            ColormapEntry { value, rgba }
        })
        .collect())
}

/// Element `i` of `numpy.linspace(lo, hi, n)`: `lo + i * step`, with the last element exactly
/// `hi` (numpy sets it explicitly).
fn linspace_at(lo: f64, hi: f64, n: usize, i: usize) -> f64 {
    if n == 1 {
        return lo;
    }
    if i + 1 == n {
        return hi;
    }
    let (fi, div) = (i as f64, (n - 1) as f64);
    let step = (hi - lo) / div;
    if step == 0.0 {
        // numpy's branch for a zero step: scale before dividing.
        return fi / div * (hi - lo) + lo;
    }
    fi * step + lo
}

/// An explicit value → colour map (Terracotta's `colormap=explicit` with
/// `explicit_color_map`). Pixels whose value is not listed are transparent.
///
/// Deserializes from a JSON object whose keys are numbers (as strings, as JSON requires) and
/// whose values are `"#rrggbb"` / `"#rrggbbaa"` hex strings or `[r, g, b]` / `[r, g, b, a]`
/// arrays of numbers in `0..=255`. Entry order is kept: it decides the palette order.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplicitColormap {
    entries: Vec<(f64, [u8; 4])>,
}

impl ExplicitColormap {
    /// Fails on more than [`MAX_EXPLICIT_ENTRIES`] entries, none, or a NaN value.
    pub fn new(entries: Vec<(f64, [u8; 4])>) -> Result<Self, CoreError> {
        if entries.is_empty() {
            return Err(CoreError::invalid(
                "explicit colormap",
                "needs at least one entry".to_string(),
            ));
        }
        if entries.len() > MAX_EXPLICIT_ENTRIES {
            return Err(CoreError::invalid(
                "explicit colormap",
                format!(
                    "has {} entries; at most {MAX_EXPLICIT_ENTRIES} fit in a palette",
                    entries.len()
                ),
            ));
        }
        if entries.iter().any(|(v, _)| v.is_nan()) {
            return Err(CoreError::invalid(
                "explicit colormap",
                "values must be numbers, not NaN".to_string(),
            ));
        }
        Ok(Self { entries })
    }

    pub fn entries(&self) -> &[(f64, [u8; 4])] {
        &self.entries
    }

    /// Index 0 transparent, then entry `i` at index `i + 1`.
    pub fn palette(&self) -> Palette {
        let mut rgba = Vec::with_capacity(self.entries.len() + 1);
        rgba.push([0, 0, 0, 0]);
        rgba.extend(self.entries.iter().map(|(_, c)| *c));
        Palette { rgba }
    }

    /// Palette indices of `band`: entry `i` → `i + 1`, unlisted or masked → `0`.
    ///
    /// Values are compared in the source type, as numpy's `data == label` does: a label that
    /// an integer band cannot hold (`1.5` on `u8`) matches nothing, and a label on an `f32`
    /// band matches the nearest `f32`. When a value is listed twice the later entry wins.
    pub fn label_band(&self, raster: &Raster, band: usize) -> Result<Vec<u8>, CoreError> {
        with_samples!(raster.samples(), v => {
            let (start, n) = band_range(raster, band)?;
            let src = v.get(start..start + n).unwrap_or(&[]);
            Ok(self.label_typed(src, raster.mask()))
        })
    }

    fn label_typed<T: Sample>(&self, src: &[T], mask: &[u8]) -> Vec<u8> {
        let mut keys: Vec<(f64, u8)> = Vec::with_capacity(self.entries.len());
        for (i, (value, _)) in self.entries.iter().enumerate() {
            let in_type = T::from_f64(*value).to_f64();
            if !T::DTYPE.is_float() && in_type != *value {
                continue;
            }
            // `new` bounds the entries to 255, so the index fits.
            let index = u8::try_from(i + 1).unwrap_or(0);
            keys.push((in_type, index));
        }
        // Stable sort, then keep the last of equal values: later entries win.
        keys.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut dedup: Vec<(f64, u8)> = Vec::with_capacity(keys.len());
        for k in keys {
            match dedup.last_mut() {
                Some(last) if last.0 == k.0 => *last = k,
                _ => dedup.push(k),
            }
        }
        src.iter()
            .zip(mask)
            .map(|(&s, &m)| {
                if m == 0 {
                    return 0;
                }
                let x = s.to_f64();
                dedup
                    .binary_search_by(|k| k.0.total_cmp(&x))
                    .ok()
                    .and_then(|i| dedup.get(i))
                    .map_or(0, |k| k.1)
            })
            .collect()
    }
}

/// Parses a colour given as `"#rrggbb"`, `"rrggbb"`, `"#rrggbbaa"` or `"rrggbbaa"`.
pub fn parse_hex_color(s: &str) -> Result<[u8; 4], CoreError> {
    let hex = s.strip_prefix('#').unwrap_or(s);
    let bad = || CoreError::invalid("colour", format!("{s:?} is not a #rrggbb(aa) hex colour"));
    if !(hex.len() == 6 || hex.len() == 8) || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0, 0, 0, 255];
    for (i, slot) in out.iter_mut().enumerate().take(hex.len() / 2) {
        let pair = hex.get(2 * i..2 * i + 2).ok_or_else(bad)?;
        *slot = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn color_from_numbers(values: &[f64]) -> Result<[u8; 4], CoreError> {
    if !(values.len() == 3 || values.len() == 4) {
        return Err(CoreError::invalid(
            "colour",
            format!("needs 3 or 4 numbers, got {}", values.len()),
        ));
    }
    let mut out = [0, 0, 0, 255];
    for (slot, &v) in out.iter_mut().zip(values) {
        if !(0.0..=255.0).contains(&v) {
            return Err(CoreError::invalid(
                "colour",
                format!("component {v} is outside 0..=255"),
            ));
        }
        {
            *slot = v.round() as u8;
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ColorSpec {
    Hex(String),
    Numbers(Vec<f64>),
}

impl<'de> Deserialize<'de> for ExplicitColormap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;

        impl<'de> Visitor<'de> for MapVisitor {
            type Value = ExplicitColormap;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object mapping numbers to hex colours or [r, g, b(, a)] arrays")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, spec)) = map.next_entry::<String, ColorSpec>()? {
                    if entries.len() >= MAX_EXPLICIT_ENTRIES {
                        return Err(de::Error::custom(format!(
                            "more than {MAX_EXPLICIT_ENTRIES} entries"
                        )));
                    }
                    let value: f64 = key
                        .trim()
                        .parse()
                        .map_err(|_| de::Error::custom(format!("key {key:?} is not a number")))?;
                    let color = match spec {
                        ColorSpec::Hex(s) => parse_hex_color(&s),
                        ColorSpec::Numbers(v) => color_from_numbers(&v),
                    }
                    .map_err(de::Error::custom)?;
                    entries.push((value, color));
                }
                ExplicitColormap::new(entries).map_err(de::Error::custom)
            }
        }

        deserializer.deserialize_map(MapVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::Samples;

    #[test]
    fn names_are_listed_and_case_insensitive() {
        let names = colormap_names();
        assert_eq!(names.len(), 18);
        for n in [
            "viridis", "magma", "inferno", "plasma", "cividis", "greys", "terrain", "rdbu",
            "spectral",
        ] {
            assert!(names.contains(&n), "{n}");
            assert!(names.contains(&format!("{n}_r").as_str()), "{n}_r");
        }
        assert_eq!(Colormap::by_name("RdBu_R").unwrap().name(), "rdbu_r");
        assert_eq!(Colormap::by_name("Greys").unwrap().name(), "greys");
        assert!(Colormap::by_name("jet").is_err());
    }

    #[test]
    fn endpoints_match_matplotlib() {
        // Computed independently with matplotlib 3.11.2:
        //   python -c "import matplotlib as m, numpy as np; \
        //     print((m.colormaps['viridis'](np.array([0., 127/254, 1.]))*255).astype('uint8'))"
        //   -> [[68 1 84 255] [32 144 140 255] [253 231 36 255]]
        //   same for 'RdBu' at [0., 1.] -> [[103 0 31 255] [5 48 97 255]]
        //   same for 'terrain' at [0.] -> [[51 51 153 255]]
        let v = Colormap::by_name("viridis").unwrap();
        assert_eq!(v.table()[0], [68, 1, 84, 255]);
        assert_eq!(v.table()[127], [32, 144, 140, 255]);
        assert_eq!(v.table()[254], [253, 231, 36, 255]);
        let rdbu = Colormap::by_name("rdbu").unwrap();
        assert_eq!(rdbu.table()[0], [103, 0, 31, 255]);
        assert_eq!(rdbu.table()[254], [5, 48, 97, 255]);
        assert_eq!(
            Colormap::by_name("terrain").unwrap().table()[0],
            [51, 51, 153, 255]
        );
    }

    #[test]
    fn reversed_maps_are_reversed() {
        for name in ["viridis", "greys", "spectral", "terrain"] {
            let fwd = Colormap::by_name(name).unwrap().table();
            let rev = Colormap::by_name(&format!("{name}_r")).unwrap().table();
            assert_eq!(rev[0], fwd[254], "{name}");
            assert_eq!(rev[254], fwd[0], "{name}");
            // Elsewhere matplotlib's floor(x * 256) lookup lets the two differ by one LUT step
            // at most, i.e. a small colour difference.
            for i in 0..COLORMAP_LEN {
                let (a, b) = (rev[i], fwd[COLORMAP_LEN - 1 - i]);
                for c in 0..3 {
                    assert!(a[c].abs_diff(b[c]) <= 8, "{name} at {i}: {a:?} vs {b:?}");
                }
            }
        }
    }

    #[test]
    fn palette_has_transparent_zero() {
        let p = Colormap::by_name("magma").unwrap().palette();
        assert_eq!(p.len(), 256);
        assert_eq!(p.entries()[0], [0, 0, 0, 0]);
        assert_eq!(
            p.entries()[1],
            Colormap::by_name("magma").unwrap().table()[0]
        );
    }

    #[test]
    fn colormap_values_follow_terracotta() {
        let s = Stretch::new(0.0, 254.0).unwrap();
        let v = Colormap::by_name("viridis").unwrap();
        let vals = colormap_values(Some(&v), s, 255).unwrap();
        assert_eq!(vals.len(), 255);
        assert_eq!(vals[0].value, 0.0);
        assert_eq!(vals[254].value, 254.0);
        // value i maps to index i + 1, i.e. table entry i.
        assert_eq!(vals[0].rgba, v.table()[0]);
        assert_eq!(vals[100].rgba, v.table()[100]);
        let grey = colormap_values(None, s, 3).unwrap();
        assert_eq!(grey[0].rgba, [1, 1, 1, 255]);
        assert_eq!(grey[1].value, 127.0);
        assert_eq!(grey[2].rgba, [255, 255, 255, 255]);
        assert!(colormap_values(None, s, 0).is_err());
    }

    #[test]
    fn explicit_map_from_json_forms() {
        let m: ExplicitColormap = serde_json_like(
            r##"{"1": "#ff0000", "2.5": [0, 255, 0], "3": [0, 0, 255, 128], "-4": "00ff00ff"}"##,
        );
        assert_eq!(
            m.entries(),
            &[
                (1.0, [255, 0, 0, 255]),
                (2.5, [0, 255, 0, 255]),
                (3.0, [0, 0, 255, 128]),
                (-4.0, [0, 255, 0, 255]),
            ]
        );
        assert_eq!(m.palette().entries()[0], [0, 0, 0, 0]);
        assert_eq!(m.palette().entries()[3], [0, 0, 255, 128]);
    }

    #[test]
    fn explicit_map_rejects_bad_input() {
        for bad in [
            r##"{"x": "#ff0000"}"##,
            r##"{"1": "#ff00"}"##,
            r##"{"1": [1, 2]}"##,
            r##"{"1": [1, 2, 300]}"##,
            r##"{"1": "#gg0000"}"##,
            r##"{}"##,
            r##"[1, 2]"##,
        ] {
            assert!(
                serde_json::from_str::<ExplicitColormap>(bad).is_err(),
                "{bad}"
            );
        }
        let many: Vec<String> = (0..256).map(|i| format!("\"{i}\": \"#000000\"")).collect();
        let json = format!("{{{}}}", many.join(","));
        assert!(serde_json::from_str::<ExplicitColormap>(&json).is_err());
    }

    #[test]
    fn explicit_labels_in_source_type() {
        let m = ExplicitColormap::new(vec![
            (1.0, [1, 1, 1, 255]),
            (1.5, [2, 2, 2, 255]),
            (7.0, [3, 3, 3, 255]),
            (7.0, [4, 4, 4, 255]),
        ])
        .unwrap();
        let r = Raster::new(
            5,
            1,
            1,
            Samples::U8(vec![1, 2, 7, 0, 1]),
            vec![255, 255, 255, 255, 0],
        )
        .unwrap();
        // 1.5 cannot be a u8, the second 7 wins, unlisted and masked are 0.
        assert_eq!(m.label_band(&r, 0).unwrap(), vec![1, 0, 4, 0, 0]);

        let f = Raster::new(3, 1, 1, Samples::F32(vec![1.5, 0.1, 1.0]), vec![255; 3]).unwrap();
        let m2 = ExplicitColormap::new(vec![(1.5, [9, 9, 9, 255]), (0.1, [8, 8, 8, 255])]).unwrap();
        // 0.1 matches the f32 nearest to 0.1, as numpy compares float32 data with 0.1.
        assert_eq!(m2.label_band(&f, 0).unwrap(), vec![1, 2, 0]);
    }

    fn serde_json_like(s: &str) -> ExplicitColormap {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex_color("#0a0B0c").unwrap(), [10, 11, 12, 255]);
        assert_eq!(parse_hex_color("0a0b0c80").unwrap(), [10, 11, 12, 128]);
        assert!(parse_hex_color("#0a0b0").is_err());
        assert!(parse_hex_color("#éé0000").is_err());
    }
}
