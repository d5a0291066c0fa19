//! `kiln collection ...`: named sets of sources composited by precedence into one layer
//! (terrain tiles from many DEMs). Members are catalog datasets (chosen by keys, by an ingest
//! pattern matched against their URIs, or by `*` filters on key values) or bare URIs, whose
//! metadata is computed here exactly as `kiln ingest` computes a dataset's.
//!
//! Commands that change several members check every selection and setting first, then write
//! each member in its own catalog transaction; rerunning a command that failed midway
//! completes it (adding or setting a member twice is the same as once).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use kiln_catalog::{
    Catalog, CatalogLocation, CollectionInfo, DatasetMetadata, InsertOutcome, KeyFilter, Member,
    MemberRef, MemberSettings, Page,
};
use kiln_engine::ingest::{dataset_metadata, header_from_json, IngestOptions};
use kiln_engine::{Engine, EngineConfig};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::pattern::UriMatcher;

/// Mean length of one degree of latitude (m), for the approximate resolution shown.
const METRES_PER_DEGREE_LATITUDE: f64 = 111_195.08;

#[derive(Debug, Args)]
pub struct CollectionArgs {
    #[command(subcommand)]
    command: CollectionCommand,
}

#[derive(Debug, Subcommand)]
enum CollectionCommand {
    /// Create an empty collection.
    Create(CreateArgs),
    /// Change a collection's description or seam blending width.
    Update(CreateArgs),
    /// List the collections of a catalog.
    List(ListArgs),
    /// Show a collection and its members in precedence order.
    Show(ShowArgs),
    /// Add catalog datasets or URIs to a collection (or change the settings of those already
    /// in it).
    Add(AddArgs),
    /// Change settings of existing members (only the settings given).
    Set(SetArgs),
    /// Remove members from a collection (the datasets stay in the catalog).
    Remove(RemoveArgs),
    /// Delete a collection and its members (the datasets stay in the catalog).
    Delete(DeleteArgs),
}

/// The catalog, named as `kiln serve` names it (`-d/--database`, `--catalog`, `KILN_CATALOG`);
/// `-c` is accepted too.
#[derive(Debug, Args)]
struct CatalogArg {
    /// The catalog: a SQLite file made by `kiln ingest`.
    #[arg(
        short = 'd',
        long = "database",
        visible_alias = "catalog",
        visible_short_alias = 'c',
        value_name = "CATALOG",
        env = "KILN_CATALOG"
    )]
    catalog: String,
}

impl CatalogArg {
    async fn open(&self) -> anyhow::Result<Box<dyn Catalog>> {
        let location = CatalogLocation::parse(&self.catalog)?;
        kiln_catalog::open(&location)
            .await
            .with_context(|| format!("cannot open catalog {}", self.catalog))
    }
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// Collection name: letters, digits, '_', '.', '-' (up to 64, starting with a letter or
    /// digit).
    name: String,
    #[command(flatten)]
    catalog: CatalogArg,
    /// What the collection is.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// Width in pixels over which members are blended at their seams (0 = off: the first
    /// valid member wins exactly; at most 256).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    blend_px: Option<f64>,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    catalog: CatalogArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ShowArgs {
    name: String,
    #[command(flatten)]
    catalog: CatalogArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    name: String,
    #[command(flatten)]
    catalog: CatalogArg,
}

/// Which catalog datasets (or, for `set` and `remove`, which members) a command is about.
#[derive(Debug, Args, Default)]
struct Selection {
    /// A catalog dataset by its key values in the catalog's key order, comma-separated
    /// (repeatable).
    #[arg(long = "keys", value_name = "K1,K2,...")]
    keys: Vec<String>,
    /// Datasets whose URI matches this pattern, in `kiln ingest` syntax ('{}' matches
    /// anything within a path component; `{key}` too) (repeatable).
    #[arg(long = "dataset-pattern", value_name = "PATTERN")]
    dataset_patterns: Vec<String>,
    /// --dataset-pattern values are regular expressions matched against the whole URI.
    #[arg(long)]
    regex: bool,
    /// Datasets whose key KEY matches PATTERN ('*' = any text, ASCII case ignored); several
    /// must all hold (repeatable).
    #[arg(long = "where", value_name = "KEY=PATTERN")]
    filters: Vec<String>,
}

impl Selection {
    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.dataset_patterns.is_empty() && self.filters.is_empty()
    }

    fn key_filters(&self, catalog: &dyn Catalog) -> anyhow::Result<Vec<KeyFilter>> {
        let mut filters: Vec<KeyFilter> = Vec::new();
        for f in &self.filters {
            let Some((key, pattern)) = f.split_once('=') else {
                bail!("--where {f:?} is not KEY=PATTERN");
            };
            if !catalog.keys().iter().any(|k| k.name() == key) {
                bail!(
                    "--where {f:?}: the catalog has no key {key:?} (its keys: {})",
                    key_names(catalog).join(", ")
                );
            }
            // Two patterns on one key are two filters: both must hold.
            filters.push(KeyFilter::wildcard(key, vec![pattern.to_owned()]));
        }
        Ok(filters)
    }

    fn parsed_keys(&self, catalog: &dyn Catalog) -> anyhow::Result<Vec<Vec<String>>> {
        self.keys
            .iter()
            .map(|text| parse_keys(catalog, text))
            .collect()
    }
}

fn key_names(catalog: &dyn Catalog) -> Vec<&str> {
    catalog.keys().iter().map(|k| k.name()).collect()
}

/// `--keys a,b` → `["a", "b"]`, as many values as the catalog has keys.
fn parse_keys(catalog: &dyn Catalog, text: &str) -> anyhow::Result<Vec<String>> {
    let values: Vec<String> = text.split(',').map(str::to_owned).collect();
    let names = key_names(catalog);
    if values.len() != names.len() {
        bail!(
            "--keys {text:?} has {} value(s), but the catalog has {} key(s): {}",
            values.len(),
            names.len(),
            names.join(", ")
        );
    }
    Ok(values)
}

/// Member settings as flags, shared by `collection add` and `ingest --collection`.
#[derive(Debug, Args, Default, Clone)]
pub struct MemberOptions {
    /// Precedence: where members overlap, the highest priority wins (default 0).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub priority: Option<i32>,
    /// Coarsest zoom level at which the members are used.
    #[arg(long, value_name = "Z")]
    pub min_zoom: Option<u8>,
    /// Finest zoom level at which the members are used (at most 30).
    #[arg(long, value_name = "Z")]
    pub max_zoom: Option<u8>,
    /// Acquisition date of the members, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub acquired: Option<String>,
    /// Void value of the members, overriding their files' nodata.
    #[arg(long, value_name = "VALUE", allow_negative_numbers = true)]
    pub nodata: Option<f64>,
    /// Add the members disabled (kept in the collection, not rendered).
    #[arg(long)]
    pub disabled: bool,
}

impl MemberOptions {
    /// The settings, checked (so a bad value fails before anything is written).
    pub fn settings(&self) -> anyhow::Result<MemberSettings> {
        let settings = MemberSettings {
            priority: self.priority.unwrap_or(0),
            min_zoom: self.min_zoom,
            max_zoom: self.max_zoom,
            acquired: self.acquired.clone(),
            enabled: !self.disabled,
            nodata: self.nodata,
        };
        settings.validate()?;
        Ok(settings)
    }

    /// Whether any setting was given (`ingest` refuses them without `--collection`).
    pub fn any_given(&self) -> bool {
        self.priority.is_some()
            || self.min_zoom.is_some()
            || self.max_zoom.is_some()
            || self.acquired.is_some()
            || self.nodata.is_some()
            || self.disabled
    }
}

#[derive(Debug, Args)]
struct AddArgs {
    /// Collection name.
    name: String,
    /// Sources outside the catalog: paths (stored canonical, as ingest stores them) or URIs.
    #[arg(value_name = "URI")]
    uris: Vec<String>,
    #[command(flatten)]
    catalog: CatalogArg,
    #[command(flatten)]
    selection: Selection,
    #[command(flatten)]
    options: MemberOptions,
    /// Store URI members without metadata (for sources this machine cannot read; whoever
    /// renders them must compute it).
    #[arg(long)]
    no_metadata: bool,
    /// URIs whose metadata is computed at once (default: the number of CPU cores).
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
    /// Create the collection if it does not exist.
    #[arg(long)]
    create: bool,
}

/// A setting that `set` may change: a new value, or `none` to clear it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Clearable<T>(Option<T>);

impl<T: FromStr> FromStr for Clearable<T>
where
    T::Err: std::fmt::Display,
{
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("none") {
            return Ok(Self(None));
        }
        s.parse().map(|v| Self(Some(v))).map_err(|e| format!("{e}"))
    }
}

#[derive(Debug, Clone, PartialEq)]
struct ClearableText(Option<String>);

impl FromStr for ClearableText {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(
            (!s.eq_ignore_ascii_case("none")).then(|| s.to_owned()),
        ))
    }
}

#[derive(Debug, Args)]
struct SetArgs {
    name: String,
    /// Members: a URI member's URI, a dataset member's key values comma-separated, or a
    /// dataset member's URI (file path).
    #[arg(value_name = "MEMBER")]
    members: Vec<String>,
    #[command(flatten)]
    catalog: CatalogArg,
    #[command(flatten)]
    selection: Selection,
    /// Every member of the collection.
    #[arg(long)]
    all: bool,
    /// New priority.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    priority: Option<i32>,
    /// New coarsest zoom, or `none`.
    #[arg(long, value_name = "Z|none")]
    min_zoom: Option<Clearable<u8>>,
    /// New finest zoom, or `none`.
    #[arg(long, value_name = "Z|none")]
    max_zoom: Option<Clearable<u8>>,
    /// New acquisition date (YYYY-MM-DD), or `none`.
    #[arg(long, value_name = "DATE|none")]
    acquired: Option<ClearableText>,
    /// New void value, or `none` to use the file's.
    #[arg(long, value_name = "VALUE|none", allow_negative_numbers = true)]
    nodata: Option<Clearable<f64>>,
    /// Enable the members.
    #[arg(long, conflicts_with = "disable")]
    enable: bool,
    /// Disable the members (kept, not rendered).
    #[arg(long)]
    disable: bool,
}

impl SetArgs {
    fn apply(&self, mut s: MemberSettings) -> MemberSettings {
        if let Some(p) = self.priority {
            s.priority = p;
        }
        if let Some(Clearable(z)) = self.min_zoom {
            s.min_zoom = z;
        }
        if let Some(Clearable(z)) = self.max_zoom {
            s.max_zoom = z;
        }
        if let Some(ClearableText(d)) = &self.acquired {
            s.acquired.clone_from(d);
        }
        if let Some(Clearable(v)) = self.nodata {
            s.nodata = v;
        }
        if self.enable {
            s.enabled = true;
        }
        if self.disable {
            s.enabled = false;
        }
        s
    }

    fn changes_something(&self) -> bool {
        self.priority.is_some()
            || self.min_zoom.is_some()
            || self.max_zoom.is_some()
            || self.acquired.is_some()
            || self.nodata.is_some()
            || self.enable
            || self.disable
    }
}

#[derive(Debug, Args)]
struct RemoveArgs {
    name: String,
    /// Members, as for `set`.
    #[arg(value_name = "MEMBER")]
    members: Vec<String>,
    #[command(flatten)]
    catalog: CatalogArg,
    #[command(flatten)]
    selection: Selection,
}

pub async fn run(args: CollectionArgs) -> anyhow::Result<()> {
    let catalog_arg = match &args.command {
        CollectionCommand::Create(a) | CollectionCommand::Update(a) => &a.catalog,
        CollectionCommand::List(a) => &a.catalog,
        CollectionCommand::Show(a) => &a.catalog,
        CollectionCommand::Add(a) => &a.catalog,
        CollectionCommand::Set(a) => &a.catalog,
        CollectionCommand::Remove(a) => &a.catalog,
        CollectionCommand::Delete(a) => &a.catalog,
    };
    let catalog = catalog_arg.open().await?;
    let result = match &args.command {
        CollectionCommand::Create(a) => create(catalog.as_ref(), a).await,
        CollectionCommand::Update(a) => update(catalog.as_ref(), a).await,
        CollectionCommand::List(a) => list(catalog.as_ref(), a.json).await,
        CollectionCommand::Show(a) => show(catalog.as_ref(), &a.name, a.json).await,
        CollectionCommand::Add(a) => add(catalog.as_ref(), a).await,
        CollectionCommand::Set(a) => set(catalog.as_ref(), a).await,
        CollectionCommand::Remove(a) => remove(catalog.as_ref(), a).await,
        CollectionCommand::Delete(a) => catalog
            .delete_collection(&a.name)
            .await
            .map_err(anyhow::Error::from),
    };
    catalog.close().await;
    result
}

async fn create(catalog: &dyn Catalog, args: &CreateArgs) -> anyhow::Result<()> {
    let description = args.description.as_deref().unwrap_or("");
    if let Some(b) = args.blend_px {
        // Checked before creating, so a bad width leaves no collection behind.
        if !(b.is_finite() && (0.0..=kiln_catalog::MAX_BLEND_PX).contains(&b)) {
            bail!(
                "invalid blend_px: must be a finite number of pixels within 0..={}, got {b}",
                kiln_catalog::MAX_BLEND_PX
            );
        }
    }
    if !catalog.create_collection(&args.name, description).await? {
        bail!(
            "collection {:?} already exists (change it with `kiln collection update`)",
            args.name
        );
    }
    if args.blend_px.is_some() {
        catalog
            .update_collection(&args.name, None, args.blend_px)
            .await?;
    }
    Ok(())
}

async fn update(catalog: &dyn Catalog, args: &CreateArgs) -> anyhow::Result<()> {
    if args.description.is_none() && args.blend_px.is_none() {
        bail!("nothing to change: give --description or --blend-px");
    }
    catalog
        .update_collection(&args.name, args.description.as_deref(), args.blend_px)
        .await?;
    Ok(())
}

fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn collection_json(info: &CollectionInfo) -> Value {
    json!({
        "name": info.name,
        "description": info.description,
        "blend_px": info.blend_px,
        "member_count": info.member_count,
    })
}

/// Left-aligned columns separated by two spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (cell, w) in cells.zip(&widths) {
            l.push_str(&format!("{cell:<w$}  "));
        }
        text.push_str(l.trim_end());
        text.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    text
}

async fn list(catalog: &dyn Catalog, as_json: bool) -> anyhow::Result<()> {
    let collections = catalog.collections().await?;
    if as_json {
        let list: Vec<Value> = collections.iter().map(collection_json).collect();
        return print(&format!("{}\n", serde_json::to_string_pretty(&list)?));
    }
    let rows: Vec<Vec<String>> = collections
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.member_count.to_string(),
                c.blend_px.to_string(),
                c.description.clone(),
            ]
        })
        .collect();
    print(&table(
        &["name", "members", "blend_px", "description"],
        &rows,
    ))
}

/// The approximate north-south pixel size in metres at full resolution, from the stored
/// bounds and header (no file read); `None` without metadata or header.
fn resolution_m(metadata: &DatasetMetadata) -> Option<f64> {
    let header = header_from_json(&metadata.header).ok()?;
    let height = header.full_resolution()?.height;
    let b = metadata.bounds_wgs84;
    (height > 0 && b.north > b.south)
        .then(|| (b.north - b.south) / f64::from(height) * METRES_PER_DEGREE_LATITUDE)
}

fn member_json(member: &Member) -> Value {
    let (kind, keys) = match &member.source {
        MemberRef::Dataset(keys) => ("dataset", json!(keys)),
        MemberRef::Uri(_) => ("uri", Value::Null),
    };
    let s = &member.settings;
    let m = member.metadata.as_ref();
    json!({
        "source": kind,
        "keys": keys,
        "uri": member.uri,
        "priority": s.priority,
        "min_zoom": s.min_zoom,
        "max_zoom": s.max_zoom,
        "acquired": s.acquired,
        "enabled": s.enabled,
        "nodata": s.nodata,
        "has_metadata": m.is_some(),
        "bounds_wgs84": m.map(|m| {
            let b = m.bounds_wgs84;
            [b.west, b.south, b.east, b.north]
        }),
        "resolution_m": m.and_then(resolution_m),
    })
}

async fn show(catalog: &dyn Catalog, name: &str, as_json: bool) -> anyhow::Result<()> {
    let (info, members) = catalog.collection(name).await?;
    if as_json {
        let mut doc = collection_json(&info);
        doc["key_names"] = json!(key_names(catalog));
        doc["members"] = members.iter().map(member_json).collect();
        return print(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            let s = &m.settings;
            let zooms = match (s.min_zoom, s.max_zoom) {
                (None, None) => "-".to_owned(),
                (min, max) => format!(
                    "{}..{}",
                    min.map_or(String::new(), |z| z.to_string()),
                    max.map_or(String::new(), |z| z.to_string())
                ),
            };
            let member = match &m.source {
                MemberRef::Dataset(keys) => keys.join(","),
                MemberRef::Uri(_) => "(uri)".to_owned(),
            };
            vec![
                s.priority.to_string(),
                if s.enabled { "yes" } else { "no" }.to_owned(),
                zooms,
                opt(s.acquired.clone()),
                opt(s.nodata.map(|v| v.to_string())),
                opt(m
                    .metadata
                    .as_ref()
                    .and_then(resolution_m)
                    .map(|r| format!("{r:.1}"))),
                member,
                m.uri.clone(),
            ]
        })
        .collect();
    let mut text = format!(
        "collection {}: {} member(s), blend_px {}{}\n",
        info.name,
        info.member_count,
        info.blend_px,
        if info.description.is_empty() {
            String::new()
        } else {
            format!(", {}", info.description)
        }
    );
    text.push_str(&table(
        &[
            "priority", "enabled", "zoom", "acquired", "nodata", "res_m", "member", "uri",
        ],
        &rows,
    ));
    print(&text)
}

/// Every catalog dataset the selection names, in catalog order, each once.
async fn select_datasets(
    catalog: &dyn Catalog,
    selection: &Selection,
) -> anyhow::Result<Vec<Vec<String>>> {
    let mut chosen: Vec<Vec<String>> = Vec::new();
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    for keys in selection.parsed_keys(catalog)? {
        if !catalog.contains(&keys).await? {
            bail!("the catalog has no dataset ({}) (--keys)", keys.join(", "));
        }
        if seen.insert(keys.clone()) {
            chosen.push(keys);
        }
    }
    if !selection.dataset_patterns.is_empty() || !selection.filters.is_empty() {
        let filters = selection.key_filters(catalog)?;
        let datasets = catalog.datasets(&filters, Page::all()).await?;
        if !selection.filters.is_empty() && datasets.is_empty() {
            bail!("no catalog dataset matches {}", where_text(selection));
        }
        let matchers = selection
            .dataset_patterns
            .iter()
            .map(|p| Ok((p, UriMatcher::new(p, selection.regex)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (pattern, matcher) in &matchers {
            if !datasets.iter().any(|d| matcher.is_match(&d.uri)) {
                bail!("--dataset-pattern {pattern:?} matches no catalog dataset's URI");
            }
        }
        for d in datasets {
            let wanted = matchers.is_empty() || matchers.iter().any(|(_, m)| m.is_match(&d.uri));
            if wanted && seen.insert(d.keys.clone()) {
                chosen.push(d.keys);
            }
        }
    }
    Ok(chosen)
}

fn where_text(selection: &Selection) -> String {
    selection
        .filters
        .iter()
        .map(|f| format!("--where {f}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A path as ingest stores it (canonical), or the URI as given when it names no local file.
fn stored_uri(uri: &str) -> anyhow::Result<String> {
    if uri.contains("://") && !uri.starts_with("file://") {
        return Ok(uri.to_owned());
    }
    let path = Path::new(uri.strip_prefix("file://").unwrap_or(uri));
    let canonical = std::fs::canonicalize(path).with_context(|| format!("cannot add {uri}"))?;
    canonical
        .to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not valid UTF-8", canonical.display()))
}

async fn add(catalog: &dyn Catalog, args: &AddArgs) -> anyhow::Result<()> {
    if args.selection.is_empty() && args.uris.is_empty() {
        bail!("nothing to add: give URIs, --keys, --dataset-pattern or --where");
    }
    let settings = args.options.settings()?;
    let jobs = match args.jobs {
        Some(0) => bail!("--jobs must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    if args.create {
        catalog.create_collection(&args.name, "").await?;
    } else {
        // Fails with NotFound naming the collection before any metadata is computed.
        catalog.collection(&args.name).await?;
    }
    let datasets = select_datasets(catalog, &args.selection).await?;
    let mut uris = Vec::with_capacity(args.uris.len());
    for uri in &args.uris {
        let stored = stored_uri(uri)?;
        if !uris.contains(&stored) {
            uris.push(stored);
        }
    }
    let metadata = if args.no_metadata {
        vec![None; uris.len()]
    } else {
        compute_metadata(&uris, jobs)
            .await?
            .into_iter()
            .map(Some)
            .collect()
    };
    let (mut added, mut updated) = (0usize, 0usize);
    let mut count = |outcome| match outcome {
        InsertOutcome::Inserted => added += 1,
        InsertOutcome::Replaced => updated += 1,
    };
    for keys in datasets {
        count(
            catalog
                .put_member(&args.name, &MemberRef::Dataset(keys), &settings, None)
                .await?,
        );
    }
    for (uri, m) in uris.into_iter().zip(metadata) {
        count(
            catalog
                .put_member(&args.name, &MemberRef::Uri(uri), &settings, m.as_ref())
                .await?,
        );
    }
    eprintln!(
        "collection {}: {added} member(s) added, {updated} updated",
        args.name
    );
    Ok(())
}

/// Each URI's metadata, computed as `kiln ingest` computes a dataset's, `jobs` at a time;
/// the first failure names its URI.
async fn compute_metadata(uris: &[String], jobs: usize) -> anyhow::Result<Vec<DatasetMetadata>> {
    if uris.is_empty() {
        return Ok(Vec::new());
    }
    let engine = Engine::new(&EngineConfig {
        block_cache_bytes: 16 * 1024 * 1024,
        header_cache_entries: u64::try_from(jobs.saturating_mul(2)).unwrap_or(u64::MAX),
        cpu_threads: 0,
    })?;
    let mut results: Vec<Option<DatasetMetadata>> = vec![None; uris.len()];
    let mut queue = uris.iter().cloned().enumerate();
    let mut running = JoinSet::new();
    loop {
        while running.len() < jobs {
            let Some((i, uri)) = queue.next() else { break };
            let engine = engine.clone();
            running.spawn(async move {
                let result = async {
                    let src = engine.open_uri(&uri).await?;
                    dataset_metadata(&engine, &src, &IngestOptions::default()).await
                }
                .await
                .with_context(|| format!("cannot compute the metadata of {uri}"));
                (i, result)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (i, result) = joined.context("a metadata task failed")?;
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(result?);
        }
    }
    results
        .into_iter()
        .zip(uris)
        .map(|(m, uri)| m.with_context(|| format!("no metadata was computed for {uri}")))
        .collect()
}

/// The members a `set` or `remove` names, each once, in collection order; every MEMBER and
/// every selector must name at least one member.
async fn select_members(
    catalog: &dyn Catalog,
    members: &[Member],
    given: &[String],
    selection: &Selection,
    all: bool,
) -> anyhow::Result<Vec<Member>> {
    let mut wanted = vec![all; members.len()];
    for text in given {
        let canonical = stored_uri(text).ok();
        let is_it = |m: &Member| {
            let uri_match = m.uri == *text || canonical.as_deref() == Some(m.uri.as_str());
            match &m.source {
                MemberRef::Uri(_) => uri_match,
                MemberRef::Dataset(keys) => uri_match || keys.join(",") == *text,
            }
        };
        let mut found = false;
        for (w, m) in wanted.iter_mut().zip(members) {
            if is_it(m) {
                *w = true;
                found = true;
            }
        }
        if !found {
            bail!("the collection has no member {text:?} (a URI, a dataset's key values comma-separated, or a dataset's URI)");
        }
    }
    for keys in selection.parsed_keys(catalog)? {
        let source = MemberRef::Dataset(keys.clone());
        let Some(i) = members.iter().position(|m| m.source == source) else {
            bail!(
                "dataset ({}) is not a member of the collection (--keys)",
                keys.join(", ")
            );
        };
        wanted[i] = true;
    }
    for pattern in &selection.dataset_patterns {
        let matcher = UriMatcher::new(pattern, selection.regex)?;
        let mut found = false;
        for (w, m) in wanted.iter_mut().zip(members) {
            if matcher.is_match(&m.uri) {
                *w = true;
                found = true;
            }
        }
        if !found {
            bail!("--dataset-pattern {pattern:?} matches no member's URI");
        }
    }
    if !selection.filters.is_empty() {
        let filters = selection.key_filters(catalog)?;
        let matching: HashSet<Vec<String>> = catalog
            .datasets(&filters, Page::all())
            .await?
            .into_iter()
            .map(|d| d.keys)
            .collect();
        let mut found = false;
        for (w, m) in wanted.iter_mut().zip(members) {
            if matches!(&m.source, MemberRef::Dataset(keys) if matching.contains(keys)) {
                *w = true;
                found = true;
            }
        }
        if !found {
            bail!("no member is a dataset matching {}", where_text(selection));
        }
    }
    Ok(members
        .iter()
        .zip(wanted)
        .filter(|(_, w)| *w)
        .map(|(m, _)| m.clone())
        .collect())
}

async fn set(catalog: &dyn Catalog, args: &SetArgs) -> anyhow::Result<()> {
    if !args.changes_something() {
        bail!(
            "nothing to change: give --priority, --min-zoom, --max-zoom, --acquired, --nodata, \
             --enable or --disable"
        );
    }
    if args.members.is_empty() && args.selection.is_empty() && !args.all {
        bail!("no member named: give MEMBERs, --keys, --dataset-pattern, --where or --all");
    }
    let (_, members) = catalog.collection(&args.name).await?;
    let chosen =
        select_members(catalog, &members, &args.members, &args.selection, args.all).await?;
    // Every new setting checked before the first write.
    let changes = chosen
        .into_iter()
        .map(|m| {
            let settings = args.apply(m.settings.clone());
            settings
                .validate()
                .with_context(|| format!("cannot change {}", m.source))?;
            Ok((m.source, settings))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (source, settings) in &changes {
        catalog
            .put_member(&args.name, source, settings, None)
            .await?;
    }
    eprintln!(
        "collection {}: {} member(s) changed",
        args.name,
        changes.len()
    );
    Ok(())
}

async fn remove(catalog: &dyn Catalog, args: &RemoveArgs) -> anyhow::Result<()> {
    if args.members.is_empty() && args.selection.is_empty() {
        bail!("no member named: give MEMBERs, --keys, --dataset-pattern or --where");
    }
    let (_, members) = catalog.collection(&args.name).await?;
    let chosen = select_members(catalog, &members, &args.members, &args.selection, false).await?;
    for m in &chosen {
        catalog.remove_member(&args.name, &m.source).await?;
    }
    eprintln!(
        "collection {}: {} member(s) removed",
        args.name,
        chosen.len()
    );
    Ok(())
}

/// `kiln ingest --collection`: the collection exists (created if absent) before files are
/// ingested, so a bad name fails first.
pub async fn prepare_for_ingest(catalog: &dyn Catalog, name: &str) -> anyhow::Result<()> {
    catalog
        .create_collection(name, "")
        .await
        .with_context(|| format!("cannot create collection {name:?}"))?;
    Ok(())
}

/// `kiln ingest --collection`: adds the datasets that are in the catalog; returns how many.
pub async fn add_ingested(
    catalog: &Arc<dyn Catalog>,
    name: &str,
    datasets: &[Vec<String>],
    settings: &MemberSettings,
) -> anyhow::Result<usize> {
    let mut added = 0;
    for keys in datasets {
        if catalog.contains(keys).await? {
            catalog
                .put_member(name, &MemberRef::Dataset(keys.clone()), settings, None)
                .await
                .with_context(|| {
                    format!("cannot add ({}) to collection {name:?}", keys.join(", "))
                })?;
            added += 1;
        }
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearable_values_parse_none() {
        assert_eq!("none".parse::<Clearable<u8>>(), Ok(Clearable(None)));
        assert_eq!("NONE".parse::<Clearable<u8>>(), Ok(Clearable(None)));
        assert_eq!("12".parse::<Clearable<u8>>(), Ok(Clearable(Some(12))));
        assert!("300".parse::<Clearable<u8>>().is_err());
        assert_eq!(
            "-32768".parse::<Clearable<f64>>(),
            Ok(Clearable(Some(-32768.0)))
        );
        assert_eq!(
            "2020-01-02".parse::<ClearableText>(),
            Ok(ClearableText(Some("2020-01-02".into())))
        );
    }

    #[test]
    fn tables_align_columns() {
        let t = table(&["a", "bb"], &[vec!["long".into(), "x".into()]]);
        assert_eq!(t, "a     bb\nlong  x\n");
    }
}
