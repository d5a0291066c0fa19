//! Kiln's overview reducer (`kiln_core::overview`) against the overviews GDAL itself writes.
//!
//! For real files of /work/shared/data: copy to a plain GTiff (`gdal_translate`, no overviews),
//! let GDAL build overviews (`gdaladdo -r <method> copy 2 4 8`, and the COG driver with
//! `-co RESAMPLING=<method>`), read GDAL's overview pixels back with kiln-cog, compute Kiln's
//! levels from the full-resolution pixels (each level from the previous one, as GDAL cascades),
//! and compare pixel by pixel. Needs Debian's gdal-bin (`gdal_translate`, `gdaladdo`) on PATH.
//! Run with `--nocapture` to see the match table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_cog::{decode_block, sparse_block, Planar, TiffHeader};
use kiln_core::overview::{
    overview_sizes, OverviewOptions, OverviewPyramid, OverviewReducer, OverviewResampling,
};
use kiln_core::{DataType, PixelWindow, Planes, Raster};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("kiln-overview-gdal-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (is gdal-bin installed?)"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every level of a TIFF, decoded whole: band-sequential samples, no mask.
fn read_levels(path: &Path) -> (TiffHeader, Vec<Raster>) {
    let bytes = std::fs::read(path).unwrap();
    let header = TiffHeader::parse(&bytes.as_slice()).unwrap();
    let mut levels = Vec::new();
    for ifd in &header.images {
        let (w, h, bands) = (ifd.width as usize, ifd.height as usize, ifd.bands());
        let mut level = Raster::empty(w, h, bands, ifd.dtype).unwrap();
        let (bw, bh) = (ifd.block_width as usize, ifd.block_height as usize);
        for p in 0..ifd.planes() {
            for br in 0..ifd.blocks_down() {
                for bc in 0..ifd.blocks_across() {
                    let i = ifd.block_index(bc, br, p);
                    let block = match ifd.block_range(i) {
                        Some((off, len)) => decode_block(
                            &header,
                            ifd,
                            i,
                            &bytes[off as usize..(off + len) as usize],
                        )
                        .unwrap(),
                        None => sparse_block(&header, ifd, i),
                    };
                    let first_band = match ifd.planar {
                        Planar::Chunky => 0,
                        Planar::Separate => p,
                    };
                    let planes = Planes::new(&block.samples, block.width, block.height).unwrap();
                    // Edge blocks overhang the image.
                    let (x0, y0) = (bc * bw, br * bh);
                    let part = PixelWindow {
                        col_off: 0,
                        row_off: 0,
                        width: block.width.min(w - x0),
                        height: block.height.min(h - y0),
                    };
                    for b in 0..block.bands {
                        level
                            .paste_band(first_band + b, planes, b, part, (x0, y0))
                            .unwrap();
                    }
                }
            }
        }
        level.set_all_valid();
        levels.push(level);
    }
    (header, levels)
}

/// Validity from nodata (GDAL's mask for these files): a pixel is invalid when it equals
/// nodata, NaN matching NaN (the files used with nodata have one band).
fn apply_nodata(r: &mut Raster, nodata: Option<f64>) {
    if let Some(nd) = nodata {
        r.mask_nodata(nd);
    }
}

#[derive(Debug, Default)]
struct Stats {
    pixels: usize,
    equal: usize,
    max_diff: f64,
    /// Largest difference relative to GDAL's value (for Float32 levels: 1 ulp is ~1.2e-7).
    max_rel: f64,
    mask_mismatch: usize,
}

/// Compares Kiln's level with GDAL's over the pixels both call valid (and counts pixels whose
/// validity differs).
fn compare(kiln: &Raster, gdal: &Raster) -> Stats {
    assert_eq!((kiln.width(), kiln.height()), (gdal.width(), gdal.height()));
    let plane = kiln.pixel_count();
    let mut s = Stats::default();
    for b in 0..kiln.bands() {
        for i in 0..plane {
            let (km, gm) = (kiln.mask()[i] != 0, gdal.mask()[i] != 0);
            if km != gm {
                if b == 0 {
                    s.mask_mismatch += 1;
                }
                continue;
            }
            if !km {
                continue;
            }
            let (a, g) = (
                kiln.samples().get_f64(b * plane + i),
                gdal.samples().get_f64(b * plane + i),
            );
            s.pixels += 1;
            if a == g || (a.is_nan() && g.is_nan()) {
                s.equal += 1;
            } else {
                s.max_diff = s.max_diff.max((a - g).abs());
                s.max_rel = s.max_rel.max((a - g).abs() / g.abs().max(1.0));
            }
        }
    }
    s
}

/// Kiln's overviews of `full` at GDAL's level sizes, streamed row by row through a cascade.
fn kiln_levels(full: &Raster, sizes: &[(usize, usize)], opts: OverviewOptions) -> Vec<Raster> {
    let mut levels = vec![(full.width(), full.height())];
    levels.extend_from_slice(sizes);
    let mut pyramid = OverviewPyramid::new(&levels, full.bands(), full.dtype(), opts).unwrap();
    let mut parts: Vec<Vec<Raster>> = vec![Vec::new(); sizes.len()];
    for y in 0..full.height() {
        let r = full
            .crop(PixelWindow {
                col_off: 0,
                row_off: y,
                width: full.width(),
                height: 1,
            })
            .unwrap();
        for (k, out) in pyramid.push(&r).unwrap().into_iter().enumerate() {
            if out.height() > 0 {
                parts[k].push(out);
            }
        }
    }
    pyramid.finish().unwrap();
    for r in pyramid.reducers() {
        // Memory stays bounded: a handful of source rows per level, whatever the height.
        assert!(
            r.max_buffered_rows() <= 6,
            "{} rows held",
            r.max_buffered_rows()
        );
    }
    parts.into_iter().map(|p| stack(&p)).collect()
}

/// Stacks row bands (band-sequential each) into one raster.
fn stack(parts: &[Raster]) -> Raster {
    let height: usize = parts.iter().map(|p| p.height()).sum();
    let mut out =
        Raster::empty(parts[0].width(), height, parts[0].bands(), parts[0].dtype()).unwrap();
    let mut y0 = 0;
    for p in parts {
        out.paste(p, 0, y0).unwrap();
        y0 += p.height();
    }
    out
}

struct Case {
    file: &'static str,
    methods: &'static [OverviewResampling],
}

use OverviewResampling::{Average, Bilinear, Mode, Nearest};

const CASES: &[Case] = &[
    // u8 RGB, odd height (750 x 975), no nodata.
    Case {
        file: "img_modis_miriam_4326_rgb_jpeg.tif",
        methods: &[Nearest, Average, Mode, Bilinear],
    },
    // i16 DEM, nodata -32768 on 46 % of the pixels, odd sizes (95 x 90).
    Case {
        file: "dem_srtm30s_luxembourg_i16_lzw.tif",
        methods: &[Nearest, Average, Mode, Bilinear],
    },
    // f32 DEM, nodata -9999 on 49 % of the pixels, odd sizes (997 x 682).
    Case {
        file: "dem_rhine_basin_30s_f32_nodata.tif",
        methods: &[Nearest, Average, Mode, Bilinear],
    },
    // Paletted u8 (NLCD land cover). GDAL averages paletted bands through the colour table,
    // which Kiln does not do: only nearest and mode apply to categories.
    Case {
        file: "odd_nlcd_puertorico_palette_u8.tif",
        methods: &[Nearest, Mode],
    },
];

/// Which GDAL tool made the reference.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tool {
    Gdaladdo,
    Cog,
}

fn reference(
    dir: &Path,
    src: &Path,
    tool: Tool,
    method: OverviewResampling,
) -> (TiffHeader, Vec<Raster>) {
    let copy = dir.join("copy.tif");
    let _ = std::fs::remove_file(&copy);
    run(
        "gdal_translate",
        &[
            "-q",
            "-of",
            "GTiff",
            src.to_str().unwrap(),
            copy.to_str().unwrap(),
        ],
    );
    let out = match tool {
        Tool::Gdaladdo => {
            run(
                "gdaladdo",
                &[
                    "-q",
                    "-r",
                    method.as_str(),
                    copy.to_str().unwrap(),
                    "2",
                    "4",
                    "8",
                ],
            );
            copy.clone()
        }
        Tool::Cog => {
            let cog = dir.join("cog.tif");
            let _ = std::fs::remove_file(&cog);
            let res = format!("RESAMPLING={}", method.as_str().to_uppercase());
            run(
                "gdal_translate",
                &[
                    "-q",
                    "-of",
                    "COG",
                    "-co",
                    "BLOCKSIZE=64",
                    "-co",
                    "COMPRESS=NONE",
                    "-co",
                    &res,
                    copy.to_str().unwrap(),
                    cog.to_str().unwrap(),
                ],
            );
            cog
        }
    };
    read_levels(&out)
}

/// One comparison: file, method, overview level (1 = largest), figures.
type Measured = (&'static str, OverviewResampling, usize, Stats);

/// Runs every case and returns (file, method, tool, level, stats) rows.
fn measure(tool: Tool) -> Vec<Measured> {
    let dir = TempDir::new(match tool {
        Tool::Gdaladdo => "addo",
        Tool::Cog => "cog",
    });
    let mut rows = Vec::new();
    for case in CASES {
        let src = data(case.file);
        for &method in case.methods {
            let (header, mut levels) = reference(&dir.0, &src, tool, method);
            for l in &mut levels {
                apply_nodata(l, header.nodata);
            }
            let full = &levels[0];
            let sizes: Vec<(usize, usize)> = levels[1..]
                .iter()
                .map(|l| (l.width(), l.height()))
                .collect();
            if tool == Tool::Cog {
                assert_eq!(
                    sizes,
                    overview_sizes(full.width(), full.height(), 64),
                    "{}: COG level sizes",
                    case.file
                );
            }
            let opts = OverviewOptions {
                resampling: method,
                nodata: header.nodata,
                has_mask: header.nodata.is_some(),
            };
            let ours = kiln_levels(full, &sizes, opts);
            for (k, (a, g)) in ours.iter().zip(&levels[1..]).enumerate() {
                let s = compare(a, g);
                let pct = 100.0 * s.equal as f64 / s.pixels.max(1) as f64;
                println!(
                    "{tool:?} {:<40} {:<8} level {} {:>4}x{:<4} exact {:>7.3}% of {:>7} max diff {:<10} (rel {:.1e}) mask mismatches {}",
                    case.file,
                    method.as_str(),
                    k + 1,
                    g.width(),
                    g.height(),
                    pct,
                    s.pixels,
                    s.max_diff,
                    s.max_rel,
                    s.mask_mismatch
                );
                rows.push((case.file, method, k + 1, s));
            }
        }
    }
    rows
}

/// What must hold, per method: see the report in the module docs of `kiln_core::overview`.
fn check(rows: &[Measured], tool: Tool) {
    for (file, method, level, s) in rows {
        assert!(
            s.pixels > 0,
            "{tool:?} {file} {method:?} {level}: nothing compared"
        );
        match method {
            Nearest | Average | Mode => {
                assert_eq!(
                    s.equal, s.pixels,
                    "{tool:?} {file} {method:?} level {level}: max diff {}",
                    s.max_diff
                );
                assert_eq!(
                    s.mask_mismatch, 0,
                    "{tool:?} {file} {method:?} level {level}"
                );
            }
            Bilinear if file.contains("f32") => {
                // Float32 levels: Kiln sums the 4x4 taps in GDAL's order except in the
                // masked horizontal pass (GDAL's SSE2 lanes pair the taps differently), so a
                // result may sit 1-2 ulp away (measured: <= 2.4e-4 on values ~1000-4000).
                assert_eq!(s.mask_mismatch, 0, "{tool:?} {file} bilinear level {level}");
                assert!(
                    s.max_rel <= 2.5e-7,
                    "{tool:?} {file} bilinear level {level}: max relative diff {}",
                    s.max_rel
                );
            }
            Bilinear => {
                // Integer levels: the rounding absorbs the summation order; exact.
                assert_eq!(
                    s.equal, s.pixels,
                    "{tool:?} {file} bilinear level {level}: max diff {}",
                    s.max_diff
                );
                assert_eq!(s.mask_mismatch, 0, "{tool:?} {file} bilinear level {level}");
            }
        }
    }
}

#[test]
fn overviews_match_gdaladdo() {
    let rows = measure(Tool::Gdaladdo);
    check(&rows, Tool::Gdaladdo);
}

#[test]
fn overviews_match_gdal_cog_driver() {
    let rows = measure(Tool::Cog);
    check(&rows, Tool::Cog);
}

#[test]
fn streaming_by_rows_equals_one_shot_on_a_real_file() {
    let (header, mut levels) = read_levels(&data("dem_srtm30s_luxembourg_i16_lzw.tif"));
    apply_nodata(&mut levels[0], header.nodata);
    let full = &levels[0];
    let opts = OverviewOptions {
        resampling: Average,
        nodata: header.nodata,
        has_mask: true,
    };
    let one_shot = kiln_core::overview::reduce(full, (48, 45), opts).unwrap();
    let streamed = kiln_levels(full, &[(48, 45)], opts);
    assert_eq!(streamed[0], one_shot);
    // Buffer bound is independent of the height: same bound on a 20x taller image.
    let tall = stack(&vec![full.clone(); 20]);
    let mut r = OverviewReducer::new(
        (tall.width(), tall.height()),
        (48, tall.height() / 2),
        1,
        DataType::I16,
        opts,
    )
    .unwrap();
    let _ = kiln_levels(&tall, &[(48, tall.height() / 2)], opts);
    let out = r.push(&tall).unwrap();
    assert_eq!(out.height(), tall.height() / 2);
    assert!(r.max_buffered_rows() <= 3, "{}", r.max_buffered_rows());
}
