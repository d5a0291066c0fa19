//! Expected pixels: Terracotta's stretch (see crates/core/src/product/stretch.rs) written out
//! again here, independently, and PNG decoding to compare with it.

use serde_json::Value;

use super::http::{url, Api};
use super::npy::NpyArray;

/// `to_uint8`: palette index 1..=255 of a valid value.
pub fn to_index(v: f64, lo: f64, hi: f64) -> u8 {
    stretch(v, lo, hi, 1.0)
}

/// The RGB stretch onto 0..=255.
pub fn to_byte(v: f64, lo: f64, hi: f64) -> u8 {
    stretch(v, lo, hi, 0.0)
}

pub fn stretch(v: f64, lo: f64, hi: f64, out_min: f64) -> u8 {
    let norm = hi - lo;
    let scale = if norm.abs() > 1e-8 {
        (255.0 - out_min) / norm
    } else {
        1.0
    };
    let x = ((v - lo) * scale + out_min).clamp(out_min, 255.0);
    x.round_ties_even() as u8
}

pub struct Png {
    pub width: usize,
    pub height: usize,
    pub color: png::ColorType,
    /// Raw samples as stored (indices for indexed PNGs).
    pub data: Vec<u8>,
    pub palette: Vec<[u8; 3]>,
    pub trns: Vec<u8>,
}

pub fn decode_png(bytes: &[u8]) -> Png {
    let dec = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!(frame.bit_depth, png::BitDepth::Eight);
    buf.truncate(frame.buffer_size());
    let info = reader.info();
    Png {
        width: frame.width as usize,
        height: frame.height as usize,
        color: frame.color_type,
        data: buf,
        palette: info
            .palette
            .as_ref()
            .map(|p| p.chunks(3).map(|c| [c[0], c[1], c[2]]).collect())
            .unwrap_or_default(),
        trns: info.trns.as_ref().map(|t| t.to_vec()).unwrap_or_default(),
    }
}

/// Every pixel of a PNG as RGBA after applying palette and transparency.
pub fn png_rgba(bytes: &[u8]) -> (usize, usize, Vec<[u8; 4]>) {
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    let px: Vec<[u8; 4]> = match frame.color_type {
        png::ColorType::Rgba => buf.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect(),
        png::ColorType::Rgb => buf.chunks(3).map(|c| [c[0], c[1], c[2], 255]).collect(),
        png::ColorType::GrayscaleAlpha => buf.chunks(2).map(|c| [c[0], c[0], c[0], c[1]]).collect(),
        png::ColorType::Grayscale => buf.iter().map(|&g| [g, g, g, 255]).collect(),
        other => panic!("unexpected expanded colour type {other:?}"),
    };
    let n = frame.width as usize * frame.height as usize;
    (
        frame.width as usize,
        frame.height as usize,
        px[..n].to_vec(),
    )
}

/// The 255 colours of a named colormap, for palette indices 1..=255, from `/colormap`: with
/// the range [0, 254], value i stretches to index i + 1.
pub fn colormap_table(server: &impl Api, name: &str) -> Vec<[u8; 4]> {
    let v = server.json(&url(
        "/colormap",
        &[
            ("stretch_range", "[0,254]"),
            ("colormap", name),
            ("num_values", "255"),
        ],
    ));
    let list = v["colormap"].as_array().unwrap();
    assert_eq!(list.len(), 255);
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            assert_eq!(e["value"].as_f64().unwrap(), i as f64);
            let c: Vec<u8> = e["rgba"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| u8::try_from(x.as_u64().unwrap()).unwrap())
                .collect();
            [c[0], c[1], c[2], c[3]]
        })
        .collect()
}

/// Checks a single-band PNG against the `.npy` tile: index = to_uint8(value) for valid
/// pixels, 0 for masked ones, and the palette is `table` (or grey with 0 transparent).
pub fn check_singleband_png(
    png_bytes: &[u8],
    tile: &NpyArray,
    lo: f64,
    hi: f64,
    table: Option<&[[u8; 4]]>,
) {
    let p = decode_png(png_bytes);
    let n = p.width * p.height;
    assert_eq!(tile.shape, vec![2, p.height, p.width], "one band + mask");
    let (values, mask) = (tile.plane(0).unwrap(), tile.plane(1).unwrap());
    match table {
        Some(table) => {
            assert_eq!(p.color, png::ColorType::Indexed);
            assert!(p.palette.len() >= 256, "palette of {}", p.palette.len());
            for (i, rgba) in table.iter().enumerate() {
                assert_eq!(&p.palette[i + 1], &rgba[..3], "palette entry {}", i + 1);
                assert_eq!(p.trns.get(i + 1).copied().unwrap_or(255), rgba[3]);
            }
            assert_eq!(p.trns.first(), Some(&0), "index 0 is transparent");
        }
        // Terracotta's uncoloured tile: grey level = index, grey 0 transparent (as a
        // greyscale PNG, or an indexed one with that palette).
        None => match p.color {
            png::ColorType::Grayscale => {
                assert_eq!(
                    p.trns.get(..2),
                    Some(&[0u8, 0][..]),
                    "grey 0 is transparent"
                );
            }
            // The palette itself is checked by `uncoloured_tiles_are_grey_level_equal_to_index`.
            png::ColorType::Indexed => {
                assert_eq!(p.trns.first(), Some(&0), "index 0 is transparent");
            }
            other => panic!("uncoloured tile is {other:?}"),
        },
    }
    let mut mismatches = 0;
    let mut first = None;
    for i in 0..n {
        let want = if mask[i] > 0.0 {
            to_index(values[i], lo, hi)
        } else {
            0
        };
        if p.data[i] != want {
            mismatches += 1;
            first.get_or_insert((i, values[i], want, p.data[i]));
        }
    }
    assert_eq!(
        mismatches, 0,
        "pixels differing from the stretch of the npy tile; first (pixel, value, want, got): {first:?}"
    );
}

/// The footprint is GeoJSON (Polygon or MultiPolygon) inside the dataset's bounds.
pub fn check_hull(hull: &Value, bounds: &[f64], what: &str, eps: f64) {
    fn points(v: &Value, out: &mut Vec<(f64, f64)>) {
        match v.as_array() {
            Some(a) if a.len() == 2 && a.iter().all(Value::is_number) => {
                out.push((a[0].as_f64().unwrap(), a[1].as_f64().unwrap()));
            }
            Some(a) => a.iter().for_each(|x| points(x, out)),
            None => panic!("not GeoJSON coordinates: {v}"),
        }
    }
    let kind = hull["type"].as_str().unwrap_or_default();
    assert!(
        kind == "Polygon" || kind == "MultiPolygon",
        "{what}: convex_hull {kind}"
    );
    let mut pts = Vec::new();
    points(&hull["coordinates"], &mut pts);
    assert!(pts.len() >= 4, "{what}: {} points", pts.len());
    for (x, y) in pts {
        assert!(
            bounds[0] - eps <= x
                && x <= bounds[2] + eps
                && bounds[1] - eps <= y
                && y <= bounds[3] + eps,
            "{what}: hull point ({x}, {y}) outside {bounds:?}"
        );
    }
}

pub fn valid_count(tile: &NpyArray) -> usize {
    let bands = tile.shape[0] - 1;
    tile.plane(bands)
        .unwrap()
        .iter()
        .filter(|&&m| m > 0.0)
        .count()
}
