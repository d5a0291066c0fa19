//! The `kiln` binary: argument parsing, configuration and output; all work is in `kiln-engine`.

mod collection;
mod info;
mod ingest;
mod optimize;
mod pattern;
mod serve;
mod tile;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Kiln: a raster tile server, catalog and pyramid renderer for GeoTIFFs.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a JSON description of a GeoTIFF: size, bands, type, CRS, bounds, overviews, COG check.
    Info(info::InfoArgs),
    /// Render one WebMercatorQuad tile of a GeoTIFF to .npy, .tif, .png, .jpg or .webp.
    Tile(tile::TileArgs),
    /// Add GeoTIFFs named by patterns to a catalog, with their metadata and statistics.
    Ingest(ingest::IngestArgs),
    /// Serve a catalog (or files matching patterns) over a Terracotta-compatible HTTP API.
    Serve(serve::ServeArgs),
    /// Rewrite GeoTIFFs as Cloud-Optimized GeoTIFFs (tiled, compressed, with overviews).
    Optimize(optimize::OptimizeArgs),
    /// Check that files are valid Cloud-Optimized GeoTIFFs; exit status 1 when one is not.
    Validate(optimize::ValidateArgs),
    /// Manage collections: named sets of datasets and URIs composited by priority (terrain).
    Collection(collection::CollectionArgs),
}

/// The `KILN_*` variable a clap value error came from, if it did: clap names only the flag,
/// and a bad value in the environment is hard to find from that alone.
fn env_behind(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        e.get(ContextKind::InvalidArg),
        e.get(ContextKind::InvalidValue),
    ) else {
        return None;
    };
    // "--port <PORT>" → KILN_PORT
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    let var = format!("KILN_{}", long.replace('-', "_").to_ascii_uppercase());
    (std::env::var(&var).ok().as_deref() == Some(value.as_str())).then_some(var)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KILN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if let Some(var) = env_behind(&e) {
                eprintln!("error: the value of the environment variable {var} is invalid:");
            }
            e.exit()
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Info(args) => info::run(args).await,
            Command::Tile(args) => tile::run(args).await,
            Command::Ingest(args) => ingest::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Optimize(args) => optimize::run(args).await,
            Command::Validate(args) => optimize::validate(args).await,
            Command::Collection(args) => collection::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
