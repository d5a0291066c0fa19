//! `kiln ingest PATTERN... -o CATALOG`: files named by patterns become catalog datasets with
//! their metadata.
//!
//! Each file is opened, its metadata computed, and the dataset written with one
//! `Catalog::insert` (one transaction), so a run killed at any moment leaves every dataset
//! either complete or absent, and running the same command again completes the catalog.
//! On a file that cannot be ingested the run stops starting new files, lets the running ones
//! finish (their datasets are committed), and fails naming the file; with
//! `--continue-on-error` it ingests everything else and fails at the end.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kiln_catalog::{Catalog, CatalogLocation, KeyDef};
use kiln_engine::ingest::{dataset_metadata, IngestOptions};
use kiln_engine::{Engine, EngineConfig};
use tokio::task::JoinSet;

use crate::collection::{add_ingested, prepare_for_ingest, MemberOptions};
use crate::pattern::{expand, Expansion};

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// File patterns: `{key}` captures a key value (letters and digits), `{}` matches
    /// anything within a path component, e.g. 'data/{sensor}/{date}_{band}.tif'. All
    /// patterns must have the same keys.
    #[arg(required = true, value_name = "PATTERN")]
    patterns: Vec<String>,
    /// The catalog: a SQLite file (created if absent; an existing one must have the same keys).
    #[arg(short, long, value_name = "CATALOG")]
    output: String,
    /// Patterns are regular expressions matched against the whole path; named groups
    /// `(?P<key>...)` are the keys.
    #[arg(long)]
    regex: bool,
    /// Print the key table (key values and path of every matched file) and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Skip files whose keys are already in the catalog, without opening them.
    #[arg(long)]
    skip_existing: bool,
    /// Description of a key, as KEY=TEXT (repeatable).
    #[arg(long = "key-description", value_name = "KEY=TEXT")]
    key_descriptions: Vec<String>,
    /// Files processed at once (default: the number of CPU cores).
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
    /// Ingest every file that can be ingested, report the others, and fail at the end.
    #[arg(long)]
    continue_on_error: bool,
    /// No progress bar and no summary.
    #[arg(short, long)]
    quiet: bool,
    /// After ingesting, add the matched datasets to this collection (created if absent), with
    /// the member settings below.
    #[arg(long, value_name = "NAME")]
    collection: Option<String>,
    #[command(flatten)]
    member: MemberOptions,
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    if args.collection.is_none() && args.member.any_given() {
        bail!(
            "--priority, --min-zoom, --max-zoom, --acquired, --nodata and --disabled set how \
             datasets join a collection: give --collection NAME"
        );
    }
    // Checked before any file is opened.
    let member_settings = args.member.settings()?;
    let expansion = expand(&args.patterns, args.regex)?;
    let key_defs = key_defs(&expansion.keys, &args.key_descriptions)?;
    if args.dry_run {
        return print_table(&expansion);
    }
    let jobs = match args.jobs {
        Some(0) => bail!("--jobs must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let location = CatalogLocation::parse(&args.output)?;
    let catalog: Arc<dyn Catalog> = Arc::from(
        kiln_catalog::create_or_open(&location, &key_defs)
            .await
            .with_context(|| format!("cannot open catalog {}", args.output))?,
    );
    let result = async {
        if let Some(name) = &args.collection {
            prepare_for_ingest(catalog.as_ref(), name).await?;
        }
        let ingested = ingest_all(&args, &expansion, jobs, catalog.clone()).await;
        // Datasets ingested before a failure join the collection too: a rerun completes both.
        if let Some(name) = &args.collection {
            let keys: Vec<Vec<String>> =
                expansion.datasets.iter().map(|(k, _)| k.clone()).collect();
            let added = add_ingested(&catalog, name, &keys, &member_settings).await?;
            if !args.quiet {
                eprintln!(
                    "{added} dataset(s) in collection {name} with priority {}",
                    member_settings.priority
                );
            }
        }
        ingested
    }
    .await;
    catalog.close().await;
    result
}

fn key_defs(keys: &[String], descriptions: &[String]) -> anyhow::Result<Vec<KeyDef>> {
    let mut given: Vec<Option<&str>> = vec![None; keys.len()];
    for d in descriptions {
        let Some((name, text)) = d.split_once('=') else {
            bail!("--key-description {d:?} is not KEY=TEXT");
        };
        let Some(i) = keys.iter().position(|k| k == name) else {
            bail!(
                "--key-description names key {name:?}, but the patterns' keys are {}",
                keys.join(", ")
            );
        };
        if given[i].replace(text).is_some() {
            bail!("--key-description gives key {name:?} twice");
        }
    }
    keys.iter()
        .zip(given)
        .map(|(k, d)| KeyDef::new(k.as_str(), d.unwrap_or("")).map_err(anyhow::Error::from))
        .collect()
}

fn print_table(expansion: &Expansion) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = expansion.keys.iter().map(|k| k.chars().count()).collect();
    for (values, _) in &expansion.datasets {
        for (w, v) in widths.iter_mut().zip(values) {
            *w = (*w).max(v.chars().count());
        }
    }
    let mut text = String::new();
    let row = |text: &mut String, cells: &[&str], last: &str| {
        for (cell, w) in cells.iter().zip(&widths) {
            text.push_str(&format!("{cell:<w$}  "));
        }
        text.push_str(last);
        text.push('\n');
    };
    let header: Vec<&str> = expansion.keys.iter().map(String::as_str).collect();
    row(&mut text, &header, "path");
    for (values, path) in &expansion.datasets {
        let cells: Vec<&str> = values.iter().map(String::as_str).collect();
        row(&mut text, &cells, &path.display().to_string());
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

async fn ingest_all(
    args: &IngestArgs,
    expansion: &Expansion,
    jobs: usize,
    catalog: Arc<dyn Catalog>,
) -> anyhow::Result<()> {
    let mut todo = Vec::with_capacity(expansion.datasets.len());
    let mut skipped = 0usize;
    for (keys, path) in &expansion.datasets {
        if args.skip_existing && catalog.contains(keys).await? {
            skipped += 1;
        } else {
            todo.push((keys.clone(), path.clone()));
        }
    }
    let engine = Engine::new(&EngineConfig {
        // Whole-image scans bypass the block cache; headers are needed once per file.
        block_cache_bytes: 16 * 1024 * 1024,
        header_cache_entries: u64::try_from(jobs.saturating_mul(2)).unwrap_or(u64::MAX),
        cpu_threads: 0,
    })?;
    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(todo.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise}<{eta}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut queue = todo.into_iter();
    let mut running = JoinSet::new();
    let mut failures: Vec<anyhow::Error> = Vec::new();
    let mut done = 0usize;
    let mut reported = 0usize;
    loop {
        let stop_starting = !failures.is_empty() && !args.continue_on_error;
        while running.len() < jobs && !stop_starting {
            let Some((keys, path)) = queue.next() else {
                break;
            };
            bar.set_message(path.display().to_string());
            let (engine, catalog) = (engine.clone(), catalog.clone());
            running.spawn(async move { ingest_one(&engine, catalog.as_ref(), &keys, &path).await });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        bar.inc(1);
        match joined {
            Ok(Ok(())) => done += 1,
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(anyhow::anyhow!("an ingest task failed: {e}")),
        }
        if args.continue_on_error {
            if let Some(e) = failures.last().filter(|_| failures.len() > reported) {
                bar.suspend(|| eprintln!("error: {e:#}"));
                reported = failures.len();
            }
        }
    }
    bar.finish_and_clear();
    if !args.quiet {
        eprintln!(
            "ingested {done} dataset(s){} into {}",
            if skipped > 0 {
                format!(", skipped {skipped} already in the catalog")
            } else {
                String::new()
            },
            args.output
        );
    }
    if args.continue_on_error {
        match failures.len() {
            0 => Ok(()),
            n => bail!("{n} file(s) could not be ingested (see the errors above)"),
        }
    } else {
        let mut failures = failures.into_iter();
        let Some(first) = failures.next() else {
            return Ok(());
        };
        // Files running beside the first failure may have failed too; main prints the first.
        for e in failures {
            eprintln!("error: {e:#}");
        }
        Err(first)
    }
}

/// One dataset: metadata first, then a single insert, so nothing partial is ever stored.
async fn ingest_one(
    engine: &Engine,
    catalog: &dyn Catalog,
    keys: &[String],
    path: &Path,
) -> anyhow::Result<()> {
    let canonical = canonical(path)?;
    // Engine errors name the canonical path; name the matched one too when it differs.
    let context = || {
        if canonical == path {
            "cannot ingest".to_owned()
        } else {
            format!("cannot ingest {}", path.display())
        }
    };
    let src = engine.open_path(&canonical).await.with_context(context)?;
    let metadata = dataset_metadata(engine, &src, &IngestOptions::default())
        .await
        .with_context(context)?;
    let uri = canonical
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", canonical.display()))?;
    catalog
        .insert(keys, uri, Some(&metadata))
        .await
        .with_context(|| format!("cannot store {} as {keys:?}", path.display()))?;
    Ok(())
}

/// The absolute path with links resolved: what the catalog stores, so the server finds the
/// file whatever its working directory.
fn canonical(path: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("cannot ingest {}", path.display()))
}
