//! `kiln optimize FILES... -o DIR|FILE` and `kiln validate FILE...`.
//!
//! Each input is rewritten as a Cloud-Optimized GeoTIFF by `kiln_engine::optimize` (one
//! streaming pass, temp file + rename, so a killed run leaves nothing at the target and a rerun
//! removes its temporary files). Files run in parallel (`-j`), each with its own progress bar
//! under an overall one.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use kiln_cog::{Compression, EncodeOptions};
use kiln_core::overview::OverviewResampling;
use kiln_engine::optimize::{optimize_file, OptimizeOptions, OptimizeProgress, ProgressFn};
use kiln_engine::{Engine, EngineConfig};
use tokio::task::JoinSet;

#[derive(Debug, Args)]
pub struct OptimizeArgs {
    /// GeoTIFFs to rewrite.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output directory (created if missing; outputs keep the input file names), or the
    /// output file when there is one input and the path is not a directory.
    #[arg(short, long, value_name = "DIR|FILE")]
    output: PathBuf,
    /// Tile size: 256 or 512.
    #[arg(long, default_value_t = 512, value_name = "PX")]
    block_size: u32,
    /// deflate, zstd, lzw, webp (8-bit RGB/RGBA) or none.
    #[arg(long, default_value = "deflate", value_name = "CODEC")]
    compression: String,
    /// Codec level: DEFLATE 1-12 (default 1: libdeflate's 1 already compresses better than
    /// GDAL's zlib 6 and is much faster), ZSTD 1-22 (default 9), WebP quality 0-100 (default 75).
    #[arg(long, value_name = "N")]
    level: Option<i32>,
    /// Lossless WebP.
    #[arg(long)]
    webp_lossless: bool,
    /// Bands to keep, 1-based, e.g. 1,2,3 (default: all).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    bands: Option<Vec<usize>>,
    /// Overview resampling: average, nearest, mode or bilinear (default: mode for paletted
    /// data, average otherwise).
    #[arg(long, value_name = "METHOD")]
    resampling: Option<String>,
    /// Warp to this CRS on the way; only EPSG:3857 (Web Mercator) for now. Uses the tiles'
    /// warp, nearest unless --warp-resampling says otherwise.
    #[arg(long, value_name = "EPSG:3857")]
    reproject: Option<String>,
    /// Resampling of --reproject: nearest, bilinear or cubic.
    #[arg(
        long,
        default_value = "nearest",
        value_name = "METHOD",
        requires = "reproject"
    )]
    warp_resampling: String,
    /// Add an internal mask from the source's nodata or alpha (GDAL-style per-dataset mask).
    #[arg(long)]
    add_mask: bool,
    /// Leave existing outputs alone.
    #[arg(long, conflicts_with = "overwrite")]
    skip_existing: bool,
    /// Replace existing outputs.
    #[arg(long)]
    overwrite: bool,
    /// Files processed at once (default 1; each file already uses every core).
    #[arg(short, long, value_name = "N", default_value_t = 1)]
    jobs: usize,
    /// Optimize every file that can be, report the others, and fail at the end (without it,
    /// the first failure stops new files from starting).
    #[arg(long)]
    continue_on_error: bool,
    /// No progress bars and no summary.
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(args: OptimizeArgs) -> anyhow::Result<()> {
    let opts = options(&args)?;
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let targets = targets(&args)?;
    let mut todo = Vec::new();
    let mut skipped = 0usize;
    for (input, output) in targets {
        if output.exists() {
            if args.skip_existing {
                skipped += 1;
                continue;
            }
            if !args.overwrite {
                bail!(
                    "{} exists; pass --overwrite to replace it or --skip-existing to keep it",
                    output.display()
                );
            }
        }
        todo.push((input, output));
    }
    let engine = Engine::new(&EngineConfig {
        // One streaming pass per file: blocks are read once, so a small cache suffices.
        block_cache_bytes: 16 * 1024 * 1024,
        header_cache_entries: 16,
        cpu_threads: 0,
    })?;
    let show = !args.quiet && std::io::stderr().is_terminal();
    let multi = MultiProgress::new();
    if !show {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let overall = multi.add(ProgressBar::new(todo.len() as u64));
    overall.set_style(style(
        "files {bar:30} {pos}/{len} [{elapsed_precise}] {msg}",
    ));
    let opts = Arc::new(opts);
    let mut queue = todo.into_iter();
    let mut running = JoinSet::new();
    let mut failures = Vec::new();
    let mut written = 0usize;
    loop {
        while running.len() < args.jobs && (failures.is_empty() || args.continue_on_error) {
            let Some((input, output)) = queue.next() else {
                break;
            };
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(style("  {bar:30} {percent:>3}% {msg}"));
            bar.set_message(input.display().to_string());
            let progress = bar_progress(bar.clone(), &input);
            let (engine, opts) = (engine.clone(), opts.clone());
            running.spawn(async move {
                let r = optimize_file(&engine, &input, &output, &opts, Some(progress)).await;
                bar.finish_and_clear();
                (input, r)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (input, result) = joined.context("an optimize task failed")?;
        overall.inc(1);
        match result {
            Ok(report) => {
                written += 1;
                if !args.quiet {
                    let line = format!(
                        "{} -> {} ({}x{}, {} band(s) {}, {} overview(s), {}, {:.1} MB)",
                        input.display(),
                        report.output.display(),
                        report.width,
                        report.height,
                        report.bands,
                        report.dtype.name(),
                        report.overviews.len(),
                        report.resampling.as_str(),
                        report.bytes as f64 / 1e6
                    );
                    if show {
                        let _ = multi.println(line);
                    } else {
                        eprintln!("{line}");
                    }
                }
            }
            Err(e) => {
                let e =
                    anyhow::Error::new(e).context(format!("cannot optimize {}", input.display()));
                if args.continue_on_error {
                    // Said now, so a long run shows its failures as they happen.
                    let line = format!("error: {e:#}");
                    if show {
                        let _ = multi.println(line);
                    } else {
                        eprintln!("{line}");
                    }
                }
                failures.push(e);
            }
        }
    }
    overall.finish_and_clear();
    if !args.quiet {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{written} written, {skipped} skipped{}",
            if failures.is_empty() {
                String::new()
            } else {
                format!(", {} failed", failures.len())
            }
        );
    }
    if args.continue_on_error {
        match failures.len() {
            0 => {}
            1 => return Err(failures.remove(0)),
            n => bail!("{n} files could not be optimized (each reported above)"),
        }
    } else if let Some(first) = failures.into_iter().next() {
        return Err(first);
    }
    Ok(())
}

/// DEFLATE level of `kiln optimize`: libdeflate's fastest level still writes smaller files than
/// GDAL's zlib 6 (58-megapixel shaded relief: 47.6 MB at 1, 45.8 at 2, 44.4 at 4, GDAL 51.0;
/// ETOPO5: 11.98 / 11.98 / 11.85, GDAL 14.9), and deflate is a third of the CPU time at 1 against
/// nearly half at 4. Pixels are the same at every level.
const DEFAULT_DEFLATE_LEVEL: i32 = 1;

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Per-file progress: rows read (with their overviews), then the layout stage.
fn bar_progress(bar: ProgressBar, input: &Path) -> ProgressFn {
    let name = input.display().to_string();
    Arc::new(move |p| match p {
        OptimizeProgress::Rows { done, total } => {
            bar.set_length(total);
            bar.set_position(done);
        }
        OptimizeProgress::Writing { bytes } => {
            bar.set_message(format!("{name}: writing {:.1} MB", bytes as f64 / 1e6));
        }
    })
}

fn options(args: &OptimizeArgs) -> anyhow::Result<OptimizeOptions> {
    let compression = match args.compression.to_ascii_lowercase().as_str() {
        "deflate" => Compression::Deflate,
        "zstd" => Compression::Zstd,
        "lzw" => Compression::Lzw,
        "webp" => Compression::Webp,
        "none" => Compression::None,
        other => bail!(
            "--compression {other:?} is not one of deflate, zstd, lzw, webp, none (jpeg output \
             is not supported yet)"
        ),
    };
    if args.block_size != 256 && args.block_size != 512 {
        bail!("--block-size must be 256 or 512, not {}", args.block_size);
    }
    let mut encode = EncodeOptions::new(compression);
    encode.level = match (compression, args.level) {
        (Compression::Deflate, None) => Some(DEFAULT_DEFLATE_LEVEL),
        (_, level) => level,
    };
    encode.webp_lossless = args.webp_lossless;
    let bands = match &args.bands {
        Some(b) => {
            if b.contains(&0) {
                bail!("--bands are 1-based; 0 is not a band");
            }
            Some(b.iter().map(|n| n - 1).collect())
        }
        None => None,
    };
    let resampling = match &args.resampling {
        Some(r) => Some(
            r.parse::<OverviewResampling>()
                .map_err(|e| anyhow::anyhow!("--resampling: {e}"))?,
        ),
        None => None,
    };
    let reproject = match args.reproject.as_deref() {
        None => None,
        Some(crs) if crs.eq_ignore_ascii_case("EPSG:3857") => Some(
            args.warp_resampling
                .parse::<kiln_core::warp::Resampling>()
                .map_err(|e| anyhow::anyhow!("--warp-resampling: {e}"))?,
        ),
        Some(other) => bail!("--reproject {other:?}: only EPSG:3857 is supported"),
    };
    Ok(OptimizeOptions {
        block_size: args.block_size,
        encode,
        bands,
        resampling,
        reproject,
        add_mask: args.add_mask,
    })
}

/// Input → output pairs; refuses writing over an input and two inputs to one output.
fn targets(args: &OptimizeArgs) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let out = &args.output;
    let to_dir = args.files.len() > 1
        || out.is_dir()
        || out
            .as_os_str()
            .to_string_lossy()
            .ends_with(std::path::MAIN_SEPARATOR);
    if to_dir {
        std::fs::create_dir_all(out)
            .with_context(|| format!("cannot create output directory {}", out.display()))?;
    }
    let mut seen = HashSet::new();
    let mut pairs = Vec::new();
    for input in &args.files {
        if !input.is_file() {
            bail!("{} is not a file", input.display());
        }
        let output = if to_dir {
            let name = input
                .file_name()
                .with_context(|| format!("{} has no file name", input.display()))?;
            out.join(name)
        } else {
            out.clone()
        };
        let same = match (input.canonicalize(), output.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same {
            bail!(
                "{} would be written over itself; choose another output",
                input.display()
            );
        }
        if !seen.insert(output.clone()) {
            bail!(
                "two inputs would both be written to {}; rename one",
                output.display()
            );
        }
        pairs.push((input.clone(), output));
    }
    Ok(pairs)
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files to check.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// Checks the COG rules (tiling, overviews for large images, IFDs before data, overview and
/// data order); prints one line per file and fails when any file breaks a rule.
pub async fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    let mut bad = 0usize;
    let mut out = std::io::stdout().lock();
    for file in &args.files {
        let problems = match kiln_engine::read_tiff_header(file).await {
            Ok(h) => h.cog_problems(),
            Err(e) => vec![format!("cannot read it as a TIFF: {e:#}")],
        };
        if problems.is_empty() {
            writeln!(out, "{}: valid COG", file.display())?;
        } else {
            bad += 1;
            writeln!(out, "{}: NOT a valid COG", file.display())?;
            for p in problems {
                writeln!(out, "  - {p}")?;
            }
        }
    }
    if bad > 0 {
        bail!("{bad} of {} file(s) are not valid COGs", args.files.len());
    }
    Ok(())
}
