//! `kiln tile FILE Z X Y -o OUT`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use kiln_core::expr::Expression;
use kiln_core::tms::TileCoord;
use kiln_core::warp::Resampling;
use kiln_engine::{
    Area, ColormapChoice, ComputeOutput, Engine, EngineConfig, ImageOutput, Layer, OutputFormat,
    Product, RangeSpec, RenderRequest, Tms,
};

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
    /// or 0,255 for 8-bit data; the server's default is the dataset's range from the
    /// catalog). For RGB, one range for all bands or three:
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
    /// Band math instead of bands (as the server's /compute): v1 ... v9 are bands 1 ... 9,
    /// or the bands --bands lists, in order. E.g. '(v4 - v3) / (v4 + v3)'.
    #[arg(long)]
    expression: Option<String>,
    /// Tile size in pixels: 256 or 512.
    #[arg(long, default_value_t = 256)]
    tile_size: usize,
    /// Extra pixels on every side, from the neighbouring tiles (256 + 2 × 2 = 260 px).
    #[arg(long, default_value_t = 0)]
    buffer: u32,
    /// JPEG / WebP quality (1-100).
    #[arg(long, default_value_t = kiln_engine::render::DEFAULT_QUALITY)]
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
    let size = u32::try_from(args.tile_size).context("--tile-size is too large")?;
    let ranges: Vec<RangeSpec> = match args.stretch.as_deref() {
        None => Vec::new(),
        Some(v) if (v.len() == 2 || v.len() == 6) && v.chunks(2).all(|p| p[0] < p[1]) => {
            v.chunks(2).map(|p| RangeSpec::values(p[0], p[1])).collect()
        }
        Some(_) => bail!("--stretch needs MIN,MAX (or three MIN,MAX pairs for RGB) with MIN < MAX"),
    };
    let colormap = match (&args.colormap, &args.explicit_colormap) {
        (Some(name), _) => ColormapChoice::Named(name.clone()),
        (None, Some(json)) => ColormapChoice::Explicit(
            serde_json::from_str::<kiln_core::product::ExplicitColormap>(json)
                .context("--explicit-colormap is not a valid value → colour JSON object")?,
        ),
        (None, None) => ColormapChoice::Default,
    };
    let engine = Engine::new(&EngineConfig {
        cpu_threads: 0,
        ..EngineConfig::default()
    })?;
    let source = engine.open_uri(&args.file).await?;
    let image = |format| ImageOutput {
        format,
        quality: args.quality,
    };
    let single = |ranges: &[RangeSpec]| match ranges {
        [] => Ok(RangeSpec::DEFAULT),
        [one] => Ok(*one),
        _ => Err(anyhow::anyhow!(
            "--stretch: give one MIN,MAX for a single-band image"
        )),
    };
    let (bands, product) = match (&args.expression, format) {
        (Some(text), _) => {
            let expr = Expression::parse(text).context("--expression")?;
            let variables = expr.variables().to_vec();
            // vN is band N unless --bands lists the bands of v1, v2, ... in order.
            let bands = match &args.bands {
                Some(b) if b.len() == variables.len() => b.clone(),
                Some(b) => bail!(
                    "--bands lists {} band(s), the expression uses {} variable(s)",
                    b.len(),
                    variables.len()
                ),
                None => variables.clone(),
            };
            let output = match format {
                OutputFormat::Raw(f) => ComputeOutput::Raw(f),
                OutputFormat::Image(f) => ComputeOutput::Image {
                    stretch: single(&ranges)?,
                    colormap,
                    image: image(f),
                },
            };
            (
                Some(bands),
                Product::Compute {
                    expression: text.clone(),
                    variables,
                    output,
                },
            )
        }
        (None, OutputFormat::Raw(f)) => (args.bands.clone(), Product::Raw(f)),
        (None, OutputFormat::Image(f)) => {
            let bands = args
                .bands
                .clone()
                .unwrap_or_else(|| source.default_bands().iter().map(|b| b + 1).collect());
            let product = match bands.len() {
                1 => Product::SingleBand {
                    stretch: single(&ranges)?,
                    colormap,
                    image: image(f),
                },
                3 => Product::Rgb {
                    stretch: match ranges.as_slice() {
                        [] => [RangeSpec::DEFAULT; 3],
                        [one] => [*one; 3],
                        [r, g, b] => [*r, *g, *b],
                        _ => bail!("--stretch: give one or three MIN,MAX pairs for RGB"),
                    },
                    image: image(f),
                },
                n => bail!("an image needs 1 or 3 bands, this reads {n}: pick them with --bands"),
            };
            (Some(bands), product)
        }
    };
    let req = RenderRequest {
        layers: vec![Layer::of(source, bands)],
        area: Area::Tile {
            tms: Tms::WebMercatorQuad,
            tile,
            size,
            buffer: args.buffer,
        },
        resampling: args.resampling,
        product,
    };
    let out = engine.render(&req).await?;
    write_atomically(&args.output, &out.bytes)
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
