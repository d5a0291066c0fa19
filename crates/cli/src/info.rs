//! `kiln info FILE`.

use std::io::Write;

use anyhow::Context;
use clap::Args;
use kiln_engine::{Engine, EngineConfig};

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The GeoTIFF to describe: a path or a file:// URI.
    file: String,
}

pub async fn run(args: InfoArgs) -> anyhow::Result<()> {
    let engine = Engine::new(&EngineConfig {
        cpu_threads: 1,
        ..EngineConfig::default()
    })?;
    let info = engine
        .describe_uri(&args.file)
        .await
        .with_context(|| format!("cannot describe {}", args.file))?;
    // The JSON says it too; a person reading the terminal should not miss a changed CRS.
    for note in info.crs.iter().flat_map(|c| &c.notes) {
        eprintln!("note: {note}");
    }
    let mut out = std::io::stdout().lock();
    // A closed pipe (`kiln info f | head`) is not an error worth a message.
    match writeln!(out, "{}", serde_json::to_string_pretty(&info)?) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}
