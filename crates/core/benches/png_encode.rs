//! PNG encoders on a corpus of real tiles: today's encoder against candidates, interleaved, so
//! a noisy shared machine slows every variant alike.
//!
//! The corpus is a directory of Kiln-made PNG tiles, one subdirectory per kind (made by
//! `scripts/make_png_corpus.sh`). Each tile is decoded to the encoder's input (indices and
//! palette, grey with tRNS, or 8-bit pixels in their layout) and encoded by every variant; every
//! output is checked to decode to the same RGBA pixels, and variants that keep the colour type
//! to the same raw samples.
//!
//! Times are per tile, each tile's fastest of the rounds (noise on a shared machine only adds),
//! summed per kind. Variants: `old` (png 0.17, the encoder before png 0.18), `kiln` (this tree's
//! encoder), the png crate at fdeflate or a flate2 level with each filter, and own filtering
//! with libdeflate, zlib-rs, miniz_oxide or fdeflate.
//!
//! Run: `cargo bench -p kiln-core --bench png_encode -- /tmp/pngcorpus` (`PNG_BENCH_ROUNDS`,
//! default 9; `PNG_BENCH_VARIANTS=a,b` picks variants by name, `old` is always kept).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_core::product::{
    encode_png, encode_png_gray_trns, encode_png_indexed, Image8, Palette, PixelLayout,
};

/// One tile as its encoder gets it.
enum Input {
    Indexed { indices: Vec<u8>, palette: Palette },
    GrayTrns { gray: Vec<u8>, transparent: u8 },
    Image(Image8),
}

struct Tile {
    kind: String,
    name: String,
    width: usize,
    height: usize,
    input: Input,
}

fn load(dir: &Path) -> Vec<Tile> {
    let mut files: Vec<PathBuf> = Vec::new();
    for kind in std::fs::read_dir(dir).expect("corpus directory") {
        let kind = kind.unwrap().path();
        if kind.is_dir() {
            for f in std::fs::read_dir(&kind).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "png") {
                    files.push(f);
                }
            }
        }
    }
    files.sort();
    files.iter().map(|f| decode_tile(f)).collect()
}

fn decode_tile(path: &Path) -> Tile {
    let bytes = std::fs::read(path).unwrap();
    let mut dec = png::Decoder::new(Cursor::new(&bytes[..]));
    dec.set_transformations(png::Transformations::IDENTITY);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!(frame.bit_depth, png::BitDepth::Eight, "{}", path.display());
    buf.truncate(frame.buffer_size());
    let info = reader.info();
    let trns = info.trns.as_deref().unwrap_or(&[]);
    let input = match frame.color_type {
        png::ColorType::Indexed => {
            let plte = info.palette.as_deref().unwrap();
            let palette = Palette::new(
                plte.chunks_exact(3)
                    .enumerate()
                    .map(|(i, c)| [c[0], c[1], c[2], trns.get(i).copied().unwrap_or(255)])
                    .collect(),
            )
            .unwrap();
            Input::Indexed {
                indices: buf,
                palette,
            }
        }
        png::ColorType::Grayscale if trns.len() == 2 => Input::GrayTrns {
            gray: buf,
            transparent: trns[1],
        },
        other => {
            let layout = match other {
                png::ColorType::Grayscale => PixelLayout::Gray,
                png::ColorType::GrayscaleAlpha => PixelLayout::GrayAlpha,
                png::ColorType::Rgb => PixelLayout::Rgb,
                _ => PixelLayout::Rgba,
            };
            let (w, h) = (frame.width as usize, frame.height as usize);
            Input::Image(Image8::new(w, h, layout, buf).unwrap())
        }
    };
    Tile {
        kind: path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
        name: path.file_stem().unwrap().to_string_lossy().into_owned(),
        width: frame.width as usize,
        height: frame.height as usize,
        input,
    }
}

/// What every encoder writes: colour type, PLTE, tRNS, samples.
struct Parts<'a> {
    color: png::ColorType,
    plte: Option<Vec<u8>>,
    trns: Option<Vec<u8>>,
    data: &'a [u8],
}

fn parts(t: &Tile) -> Parts<'_> {
    match &t.input {
        Input::Indexed { indices, palette } => {
            let palette = palette.entries();
            let last = palette.iter().rposition(|c| c[3] != 255);
            Parts {
                color: png::ColorType::Indexed,
                plte: Some(palette.iter().flat_map(|c| [c[0], c[1], c[2]]).collect()),
                trns: last.map(|i| palette[..=i].iter().map(|c| c[3]).collect()),
                data: indices,
            }
        }
        Input::GrayTrns { gray, transparent } => Parts {
            color: png::ColorType::Grayscale,
            plte: None,
            trns: Some(vec![0, *transparent]),
            data: gray,
        },
        Input::Image(img) => Parts {
            color: match img.layout() {
                PixelLayout::Gray => png::ColorType::Grayscale,
                PixelLayout::GrayAlpha => png::ColorType::GrayscaleAlpha,
                PixelLayout::Rgb => png::ColorType::Rgb,
                PixelLayout::Rgba => png::ColorType::Rgba,
            },
            plte: None,
            trns: None,
            data: img.data(),
        },
    }
}

/// Kiln's encoder before png 0.18: png 0.17, `Compression::Fast`, Up on every row, and for
/// indexed tiles the palette check it had (a search for the first index past the palette).
fn old(t: &Tile) -> Vec<u8> {
    if let Input::Indexed { indices, palette } = &t.input {
        let n = palette.len();
        assert!(std::hint::black_box(indices.iter().find(|&&i| usize::from(i) >= n)).is_none());
    }
    let p = parts(t);
    let color = match p.color {
        png::ColorType::Grayscale => png_017::ColorType::Grayscale,
        png::ColorType::GrayscaleAlpha => png_017::ColorType::GrayscaleAlpha,
        png::ColorType::Rgb => png_017::ColorType::Rgb,
        png::ColorType::Rgba => png_017::ColorType::Rgba,
        png::ColorType::Indexed => png_017::ColorType::Indexed,
    };
    let mut out = Vec::with_capacity(p.data.len() / 2 + 1024);
    let mut enc = png_017::Encoder::new(&mut out, t.width as u32, t.height as u32);
    enc.set_color(color);
    enc.set_depth(png_017::BitDepth::Eight);
    enc.set_compression(png_017::Compression::Fast);
    enc.set_filter(png_017::FilterType::Up);
    if let Some(plte) = p.plte {
        enc.set_palette(plte);
    }
    if let Some(trns) = p.trns {
        enc.set_trns(trns);
    }
    let mut w = enc.write_header().unwrap();
    w.write_image_data(p.data).unwrap();
    w.finish().unwrap();
    out
}

/// Kiln's encoder as it is in this tree.
fn kiln(t: &Tile) -> Vec<u8> {
    match &t.input {
        Input::Indexed { indices, palette } => {
            encode_png_indexed(t.width, t.height, indices, palette).unwrap()
        }
        Input::GrayTrns { gray, transparent } => {
            encode_png_gray_trns(t.width, t.height, gray, *transparent).unwrap()
        }
        Input::Image(img) => encode_png(img).unwrap(),
    }
}

/// The png crate (this tree's version) at a deflate setting and filter.
fn png_crate(t: &Tile, deflate: png::DeflateCompression, filter: png::Filter) -> Vec<u8> {
    let p = parts(t);
    let mut out = Vec::with_capacity(p.data.len() / 2 + 1024);
    let mut enc = png::Encoder::new(&mut out, t.width as u32, t.height as u32);
    enc.set_color(p.color);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_deflate_compression(deflate);
    enc.set_filter(filter);
    if let Some(plte) = p.plte {
        enc.set_palette(plte);
    }
    if let Some(trns) = p.trns {
        enc.set_trns(trns);
    }
    let mut w = enc.write_header().unwrap();
    w.write_image_data(p.data).unwrap();
    w.finish().unwrap();
    out
}

// ---- own filtering + a zlib backend, written as PNG chunks ----

#[derive(Clone, Copy)]
enum RowFilter {
    None,
    Sub,
    Up,
    Avg,
    Paeth,
    /// Per row, the filter with the least sum of |signed bytes| (libpng's heuristic).
    MinSum,
}

fn filter_row(kind: u8, bpp: usize, prev: &[u8], cur: &[u8], out: &mut [u8]) {
    match kind {
        0 => out.copy_from_slice(cur),
        1 => {
            out[..bpp].copy_from_slice(&cur[..bpp]);
            for i in bpp..cur.len() {
                out[i] = cur[i].wrapping_sub(cur[i - bpp]);
            }
        }
        2 => {
            for ((o, &c), &p) in out.iter_mut().zip(cur).zip(prev) {
                *o = c.wrapping_sub(p);
            }
        }
        3 => {
            // floor((a + b) / 2) without widening: a & b + (a ^ b) / 2.
            for i in 0..bpp {
                out[i] = cur[i].wrapping_sub(prev[i] >> 1);
            }
            let n = cur.len();
            let lanes = out[bpp..]
                .iter_mut()
                .zip(&cur[bpp..])
                .zip(&cur[..n - bpp])
                .zip(&prev[bpp..]);
            for (((o, &x), &a), &b) in lanes {
                *o = x.wrapping_sub((a & b) + ((a ^ b) >> 1));
            }
        }
        _ => {
            // Left of the first pixel a = c = 0, so the predictor is b.
            for i in 0..bpp {
                out[i] = cur[i].wrapping_sub(prev[i]);
            }
            let n = cur.len();
            let lanes = out[bpp..]
                .iter_mut()
                .zip(&cur[bpp..])
                .zip(&cur[..n - bpp])
                .zip(&prev[bpp..])
                .zip(&prev[..n - bpp]);
            for ((((o, &x), &a), &b), &c) in lanes {
                let (ia, ib, ic) = (i16::from(a), i16::from(b), i16::from(c));
                let pa = (ib - ic).abs();
                let pb = (ia - ic).abs();
                let pc = (ia + ib - 2 * ic).abs();
                let pred = if pa <= pb && pa <= pc {
                    a
                } else if pb <= pc {
                    b
                } else {
                    c
                };
                *o = x.wrapping_sub(pred);
            }
        }
    }
}

fn filtered(data: &[u8], width: usize, bpp: usize, f: RowFilter) -> Vec<u8> {
    let stride = width * bpp;
    let rows = data.len() / stride;
    let mut out = vec![0u8; rows * (stride + 1)];
    let zero = vec![0u8; stride];
    let mut scratch = vec![0u8; stride];
    for y in 0..rows {
        let prev = if y == 0 {
            &zero[..]
        } else {
            &data[(y - 1) * stride..y * stride]
        };
        let cur = &data[y * stride..(y + 1) * stride];
        let dst = &mut out[y * (stride + 1)..(y + 1) * (stride + 1)];
        let kind = match f {
            RowFilter::None => 0,
            RowFilter::Sub => 1,
            RowFilter::Up => 2,
            RowFilter::Avg => 3,
            RowFilter::Paeth => 4,
            RowFilter::MinSum => {
                let mut best = (u64::MAX, 0u8);
                for k in [0u8, 1, 2, 4] {
                    filter_row(k, bpp, prev, cur, &mut scratch);
                    let s: u64 = scratch
                        .iter()
                        .map(|&b| u64::from((b as i8).unsigned_abs()))
                        .sum();
                    if s < best.0 {
                        best = (s, k);
                    }
                }
                best.1
            }
        };
        dst[0] = kind;
        filter_row(kind, bpp, prev, cur, &mut dst[1..]);
    }
    out
}

#[derive(Clone, Copy)]
enum Zlib {
    Libdeflate(i32),
    Zrs(i32),
    Miniz(u8),
    Fdeflate,
}

fn zlib(raw: &[u8], z: Zlib) -> Vec<u8> {
    match z {
        Zlib::Libdeflate(l) => {
            let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(l).unwrap());
            let mut out = vec![0; c.zlib_compress_bound(raw.len())];
            let n = c.zlib_compress(raw, &mut out).unwrap();
            out.truncate(n);
            out
        }
        Zlib::Zrs(l) => {
            let mut d = zlib_rs::Deflate::new(l, true, 15);
            // Stored blocks bound the output: 5 bytes per 16 KB block, header and checksum.
            let mut out = vec![0; raw.len() + raw.len() / 16_000 * 5 + 64];
            let status = d
                .compress(raw, &mut out, zlib_rs::DeflateFlush::Finish)
                .unwrap();
            assert_eq!(status, zlib_rs::Status::StreamEnd);
            out.truncate(d.total_out() as usize);
            out
        }
        Zlib::Miniz(l) => miniz_oxide::deflate::compress_to_vec_zlib(raw, l),
        Zlib::Fdeflate => fdeflate::compress_to_vec(raw),
    }
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = libdeflater::crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn own(t: &Tile, f: RowFilter, z: Zlib) -> Vec<u8> {
    let p = parts(t);
    let (color, bpp) = match p.color {
        png::ColorType::Grayscale => (0u8, 1),
        png::ColorType::Rgb => (2, 3),
        png::ColorType::Indexed => (3, 1),
        png::ColorType::GrayscaleAlpha => (4, 2),
        png::ColorType::Rgba => (6, 4),
    };
    let raw = filtered(p.data, t.width, bpp, f);
    let idat = zlib(&raw, z);
    let mut out = Vec::with_capacity(idat.len() + 1024);
    out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(t.width as u32).to_be_bytes());
    ihdr.extend_from_slice(&(t.height as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, color, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    if let Some(plte) = &p.plte {
        chunk(&mut out, b"PLTE", plte);
    }
    if let Some(trns) = &p.trns {
        chunk(&mut out, b"tRNS", trns);
    }
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

// ---- checks ----

/// Colour type and raw samples.
fn decode_raw(bytes: &[u8]) -> (png::ColorType, Vec<u8>) {
    let mut dec = png::Decoder::new(Cursor::new(bytes));
    dec.set_transformations(png::Transformations::IDENTITY);
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let f = r.next_frame(&mut buf).unwrap();
    buf.truncate(f.buffer_size());
    (f.color_type, buf)
}

/// Every pixel as RGBA, palette and tRNS applied.
fn decode_rgba(bytes: &[u8]) -> Vec<u8> {
    let mut dec = png::Decoder::new(Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let f = r.next_frame(&mut buf).unwrap();
    buf.truncate(f.buffer_size());
    match f.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks(3)
            .flat_map(|c| [c[0], c[1], c[2], 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks(2)
            .flat_map(|c| [c[0], c[0], c[0], c[1]])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        other => panic!("unexpected expanded colour type {other:?}"),
    }
}

type Encode = Box<dyn Fn(&Tile) -> Vec<u8>>;

fn variants() -> Vec<(String, Encode)> {
    use png::{DeflateCompression as D, Filter as F};
    let mut v: Vec<(String, Encode)> = vec![
        ("old".into(), Box::new(old)),
        ("kiln".into(), Box::new(kiln)),
    ];
    for (name, f) in [
        ("none", F::NoFilter),
        ("sub", F::Sub),
        ("up", F::Up),
        ("avg", F::Avg),
        ("paeth", F::Paeth),
        ("adaptive", F::Adaptive),
        ("minentropy", F::MinEntropy),
    ] {
        v.push((
            format!("png-fdeflate-{name}"),
            Box::new(move |t| png_crate(t, D::FdeflateUltraFast, f)),
        ));
    }
    for level in [1u8, 3] {
        for (name, f) in [
            ("up", F::Up),
            ("paeth", F::Paeth),
            ("adaptive", F::Adaptive),
        ] {
            v.push((
                format!("png-miniz{level}-{name}"),
                Box::new(move |t| png_crate(t, D::Level(level), f)),
            ));
        }
    }
    let own_filters = [
        ("up", RowFilter::Up),
        ("avg", RowFilter::Avg),
        ("sub", RowFilter::Sub),
        ("paeth", RowFilter::Paeth),
        ("minsum", RowFilter::MinSum),
        ("none", RowFilter::None),
    ];
    for (zname, z) in [
        ("libdeflate1", Zlib::Libdeflate(1)),
        ("libdeflate3", Zlib::Libdeflate(3)),
        ("libdeflate6", Zlib::Libdeflate(6)),
        ("zlibrs1", Zlib::Zrs(1)),
        ("zlibrs3", Zlib::Zrs(3)),
        ("miniz1", Zlib::Miniz(1)),
        ("fdeflate", Zlib::Fdeflate),
    ] {
        for (fname, f) in own_filters {
            v.push((
                format!("own-{zname}-{fname}"),
                Box::new(move |t| own(t, f, z)),
            ));
        }
    }
    if let Ok(pick) = std::env::var("PNG_BENCH_VARIANTS") {
        let names: Vec<&str> = pick.split(',').collect();
        v.retain(|(n, _)| n == "old" || names.contains(&n.as_str()));
    }
    v
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_else(|| "/tmp/pngcorpus".into());
    let rounds: usize = std::env::var("PNG_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9);
    let tiles = load(Path::new(&dir));
    assert!(!tiles.is_empty(), "no tiles under {dir}");
    let variants = variants();
    let kinds: Vec<String> = {
        let mut k: Vec<String> = tiles.iter().map(|t| t.kind.clone()).collect();
        k.dedup();
        k
    };
    let kind_of: Vec<usize> = tiles
        .iter()
        .map(|t| kinds.iter().position(|k| *k == t.kind).unwrap())
        .collect();
    let count = |k: usize| kind_of.iter().filter(|&&x| x == k).count();

    // Sizes and checks, once.
    let mut bytes = vec![vec![0usize; kinds.len()]; variants.len()];
    for (ti, t) in tiles.iter().enumerate() {
        let reference = old(t);
        let (ref_color, ref_raw) = decode_raw(&reference);
        let ref_rgba = decode_rgba(&reference);
        for (vi, (name, enc)) in variants.iter().enumerate() {
            let out = enc(t);
            let (color, raw) = decode_raw(&out);
            if color == ref_color {
                assert!(raw == ref_raw, "{name} changes the samples of {}", t.name);
            }
            assert!(
                decode_rgba(&out) == ref_rgba,
                "{name} changes the pixels of {}",
                t.name
            );
            bytes[vi][kind_of[ti]] += out.len();
        }
    }

    // Times: every round visits each tile once and encodes it with every variant, starting
    // from a different variant each time. A tile's time is its fastest round: other work on a
    // shared machine only ever adds time.
    let mut best = vec![vec![Duration::MAX; tiles.len()]; variants.len()];
    for round in 0..rounds {
        for (ti, t) in tiles.iter().enumerate() {
            for j in 0..variants.len() {
                let vi = (j + ti + round) % variants.len();
                let start = Instant::now();
                let out = (variants[vi].1)(t);
                let d = start.elapsed();
                std::hint::black_box(out);
                best[vi][ti] = best[vi][ti].min(d);
            }
        }
    }
    let mut times = vec![vec![Duration::ZERO; kinds.len()]; variants.len()];
    for (vi, per_tile) in best.iter().enumerate() {
        for (ti, d) in per_tile.iter().enumerate() {
            times[vi][kind_of[ti]] += *d;
        }
    }
    let us_per_tile = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / n as f64;

    println!("{} tiles, {rounds} rounds; per kind: bytes and µs per tile (each tile's fastest round), against old", tiles.len());
    let mut totals: BTreeMap<usize, (usize, f64)> = BTreeMap::new();
    for (k, kind) in kinds.iter().enumerate() {
        let n = count(k);
        let dims = tiles.iter().find(|t| t.kind == *kind).unwrap();
        println!(
            "\n## {kind}: {n} tiles, {}x{} {}",
            dims.width,
            dims.height,
            match &dims.input {
                Input::Indexed { .. } => "indexed".to_string(),
                Input::GrayTrns { .. } => "grey+tRNS".to_string(),
                Input::Image(img) => format!("{:?}", img.layout()),
            }
        );
        // Palette candidates: RGB(A) tiles of at most 256 distinct colours.
        let few = tiles
            .iter()
            .filter(|t| t.kind == *kind)
            .filter(|t| match &t.input {
                Input::Image(img) if img.layout().channels() >= 3 => {
                    let seen: std::collections::HashSet<&[u8]> =
                        img.data().chunks_exact(img.layout().channels()).collect();
                    seen.len() <= 256
                }
                _ => false,
            })
            .count();
        if few > 0 {
            println!("({few} of these tiles have at most 256 colours)");
        }
        let old_b = bytes[0][k] as f64;
        let old_t = us_per_tile(times[0][k], n);
        for (vi, (name, _)) in variants.iter().enumerate() {
            let t = us_per_tile(times[vi][k], n);
            let e = totals.entry(vi).or_default();
            e.0 += bytes[vi][k];
            e.1 += t * n as f64;
            println!(
                "{name:28} {:>11} B ({:>6.1}%) {:>8.0} µs ({:>6.1}%)",
                bytes[vi][k],
                100.0 * bytes[vi][k] as f64 / old_b,
                t,
                100.0 * t / old_t
            );
        }
    }
    println!("\n## all kinds: total bytes, total ms");
    let (ob, ot) = totals[&0];
    for (vi, (b, t)) in totals {
        println!(
            "{:28} {b:>11} B ({:>6.1}%) {:>8.1} ms ({:>6.1}%)",
            variants[vi].0,
            100.0 * b as f64 / ob as f64,
            t / 1e3,
            100.0 * t / ot
        );
    }
}
