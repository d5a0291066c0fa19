//! `kiln tile FILE Z X Y -o OUT`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use kiln_core::tms::TileCoord;
use kiln_core::warp::Resampling;
use kiln_engine::render::{self, OutputFormat, RenderOptions};
use kiln_engine::{Engine, EngineConfig, TileRequest};

#[derive(Debug, Args)]
pub struct TileArgs {
    /// The GeoTIFF to read: a path or a file:// URI.
    file: String,
    z: u8,
    x: u32,
    y: u32,
    /// Output file; its extension picks the format: .npy, .tif, .png, .jpg, .webp.
    #[arg(short, long)]
    output: PathBuf,
    /// Bands to read, numbered from 1 (default: all but alpha; 3 bands make an RGB image).
    #[arg(long, value_delimiter = ',')]
    bands: Option<Vec<usize>>,
    /// nearest, bilinear or cubic.
    #[arg(long, default_value = "nearest")]
    resampling: Resampling,
    /// Value range mapped to the colour ramp, as MIN,MAX (default: the tile's valid range,
    /// or 0,255 for 8-bit data). For RGB, one range for all bands or three:
    /// RMIN,RMAX,GMIN,GMAX,BMIN,BMAX.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    stretch: Option<Vec<f64>>,
    /// Colormap name for single-band images (viridis, magma, terrain, ..., and their _r).
    #[arg(long)]
    colormap: Option<String>,
    /// Value → colour classes as JSON, as Terracotta's `explicit_color_map`:
    /// '{"1": "#ff0000", "2": [0, 128, 0]}'. Unlisted values are transparent.
    #[arg(long, conflicts_with = "colormap")]
    explicit_colormap: Option<String>,
    /// Tile size in pixels: 256 or 512.
    #[arg(long, default_value_t = 256)]
    tile_size: usize,
    /// JPEG / WebP quality (1-100).
    #[arg(long, default_value_t = 85)]
    quality: u8,
}

pub async fn run(args: TileArgs) -> anyhow::Result<()> {
    let format = OutputFormat::from_path(&args.output).with_context(|| {
        format!(
            "cannot tell the format of {}: use .npy, .tif, .png, .jpg or .webp",
            args.output.display()
        )
    })?;
    let tile = TileCoord::new(args.z, args.x, args.y).context("invalid tile")?;
    let stretch: Vec<(f64, f64)> = match args.stretch.as_deref() {
        None => Vec::new(),
        Some(v) if (v.len() == 2 || v.len() == 6) && v.chunks(2).all(|p| p[0] < p[1]) => {
            v.chunks(2).map(|p| (p[0], p[1])).collect()
        }
        Some(_) => bail!("--stretch needs MIN,MAX (or three MIN,MAX pairs for RGB) with MIN < MAX"),
    };
    let engine = Engine::new(&EngineConfig {
        cpu_threads: 0,
        ..EngineConfig::default()
    })?;
    let source = engine.open_uri(&args.file).await?;
    let req = TileRequest {
        tile,
        tile_size: args.tile_size,
        resampling: args.resampling,
        bands: args.bands,
    };
    let raster = engine
        .read_tile(std::slice::from_ref(&source), &req)
        .await?;
    let explicit_colormap = match &args.explicit_colormap {
        None => None,
        Some(json) => Some(
            serde_json::from_str::<kiln_core::product::ExplicitColormap>(json)
                .context("--explicit-colormap is not a valid value → colour JSON object")?,
        ),
    };
    let opts = RenderOptions {
        format,
        stretch,
        colormap: args.colormap,
        explicit_colormap,
        quality: args.quality,
    };
    let bytes = render::encode_tile(&engine, &source, &req, raster, &opts).await?;
    write_atomically(&args.output, &bytes)
}

/// Writes via a temporary file in the same directory and a rename, so a killed run never
/// leaves a partial output.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().context("output path has no file name")?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot move {} to {}", tmp.display(), path.display())
    })
}
