//! `kiln serve`: resolve the configuration (defaults < TOML file < `KILN_*` environment <
//! flags), open or build the catalog, and run the HTTP server until Ctrl-C / SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use kiln_catalog::{CatalogLocation, KeyDef};
use kiln_engine::{Engine, EngineConfig};
use serde::{Deserialize, Serialize};

use crate::pattern::expand;

/// Each setting but the patterns can also come from a `KILN_*` environment variable (clap's
/// `env`, shown in `--help`); a flag beats its variable, which beats the config file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Catalog to serve: a SQLite file made by `kiln ingest`.
    #[arg(
        short = 'd',
        long = "database",
        visible_alias = "catalog",
        value_name = "CATALOG",
        env = "KILN_CATALOG"
    )]
    catalog: Option<String>,
    /// Serve files matching these patterns instead of a catalog (as `kiln ingest` patterns);
    /// metadata is computed when a dataset is first used.
    #[arg(short = 'r', long = "raster-pattern", value_name = "PATTERN")]
    patterns: Vec<String>,
    /// The -r patterns are regular expressions with named groups.
    #[arg(long)]
    regex: bool,
    /// TOML configuration file.
    #[arg(short, long, value_name = "FILE", env = "KILN_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1).
    #[arg(long, env = "KILN_HOST")]
    host: Option<String>,
    /// Port (default 8080; 0 picks a free one).
    #[arg(short, long, env = "KILN_PORT")]
    port: Option<u16>,
    /// Allowed CORS origins, comma-separated, or * (default *).
    #[arg(long, value_name = "ORIGINS", env = "KILN_CORS_ORIGINS")]
    cors_origins: Option<String>,
    /// Megabytes of encoded tiles cached (default 256).
    #[arg(long, value_name = "MB", env = "KILN_TILE_CACHE_MB")]
    tile_cache_mb: Option<u64>,
    /// Megabytes of decoded blocks cached (default 512).
    #[arg(long, value_name = "MB", env = "KILN_BLOCK_CACHE_MB")]
    block_cache_mb: Option<u64>,
    /// CPU threads for decoding and rendering (default: one per core).
    #[arg(long, value_name = "N", env = "KILN_CPU_THREADS")]
    cpu_threads: Option<usize>,
    /// Tile renders queued or running before new ones get 503 (default 512).
    #[arg(long, value_name = "N", env = "KILN_MAX_QUEUE")]
    max_queue: Option<usize>,
    /// Seconds a tile render may take before it is answered with 503 (default 30).
    #[arg(long, value_name = "S", env = "KILN_REQUEST_TIMEOUT_S")]
    request_timeout_s: Option<u64>,
    /// Cache-Control max-age of tiles, seconds (default 3600).
    #[arg(long, value_name = "S", env = "KILN_CACHE_MAX_AGE_S")]
    cache_max_age_s: Option<u32>,
    /// Base map for the web viewer: an XYZ raster tile URL with {z}/{x}/{y} (default none: a
    /// plain background with a graticule, since the viewer works offline).
    #[arg(long, value_name = "URL", env = "KILN_BASEMAP")]
    basemap: Option<String>,
    /// Print the resolved configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

/// The resolved serving configuration; also the TOML file format.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    pub catalog: Option<String>,
    pub host: String,
    pub port: u16,
    pub cors_origins: Vec<String>,
    pub tile_cache_mb: u64,
    pub block_cache_mb: u64,
    pub cpu_threads: usize,
    pub max_queue: usize,
    pub request_timeout_s: u64,
    pub cache_max_age_s: u32,
    pub basemap: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            catalog: None,
            host: "127.0.0.1".into(),
            port: 8080,
            cors_origins: vec!["*".into()],
            tile_cache_mb: 256,
            block_cache_mb: 512,
            cpu_threads: 0,
            max_queue: 512,
            request_timeout_s: 30,
            cache_max_age_s: 3600,
            basemap: None,
        }
    }
}

/// Environment variables read, besides KILN_LOG and KILN_CONFIG.
const ENV_KEYS: &[&str] = &[
    "CATALOG",
    "HOST",
    "PORT",
    "CORS_ORIGINS",
    "TILE_CACHE_MB",
    "BLOCK_CACHE_MB",
    "CPU_THREADS",
    "MAX_QUEUE",
    "REQUEST_TIMEOUT_S",
    "CACHE_MAX_AGE_S",
    "BASEMAP",
];

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty())
        .collect()
}

impl ServeConfig {
    /// Layers the file and the flags (or their `KILN_*` variables, which clap has already
    /// read) over the defaults; `env` is only checked for unknown `KILN_*` names.
    pub fn resolve(
        args: &ServeArgs,
        env: &[(String, String)],
    ) -> anyhow::Result<(Self, Vec<String>)> {
        let mut warnings = Vec::new();
        let mut cfg = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<Self>(&text)
                    .with_context(|| format!("config file {} is invalid", path.display()))?
            }
            None => Self::default(),
        };
        for (name, _) in env {
            if let Some(k) = name.strip_prefix("KILN_") {
                if !ENV_KEYS.contains(&k) && k != "LOG" && k != "CONFIG" {
                    warnings.push(format!("unknown environment variable {name} ignored"));
                }
            }
        }
        if let Some(v) = &args.catalog {
            cfg.catalog = Some(v.clone());
        }
        if let Some(v) = &args.host {
            cfg.host.clone_from(v);
        }
        if let Some(v) = args.port {
            cfg.port = v;
        }
        if let Some(v) = &args.cors_origins {
            cfg.cors_origins = split_list(v);
        }
        if let Some(v) = args.tile_cache_mb {
            cfg.tile_cache_mb = v;
        }
        if let Some(v) = args.block_cache_mb {
            cfg.block_cache_mb = v;
        }
        if let Some(v) = args.cpu_threads {
            cfg.cpu_threads = v;
        }
        if let Some(v) = args.max_queue {
            cfg.max_queue = v;
        }
        if let Some(v) = args.request_timeout_s {
            cfg.request_timeout_s = v;
        }
        if let Some(v) = args.cache_max_age_s {
            cfg.cache_max_age_s = v;
        }
        if let Some(v) = &args.basemap {
            cfg.basemap = Some(v.clone());
        }
        cfg.basemap = cfg.basemap.take().filter(|b| !b.trim().is_empty());
        if let Some(b) = &cfg.basemap {
            if !(b.starts_with("http://") || b.starts_with("https://"))
                || !["{z}", "{x}", "{y}"].iter().all(|p| b.contains(p))
            {
                bail!("basemap '{b}' must be an http(s) URL with {{z}}, {{x}} and {{y}}");
            }
        }
        if cfg.max_queue == 0 {
            bail!("max_queue must be at least 1");
        }
        if cfg.request_timeout_s == 0 {
            bail!("request_timeout_s must be at least 1");
        }
        Ok((cfg, warnings))
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (cfg, warnings) = ServeConfig::resolve(&args, &env)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if args.print_config {
        print!(
            "{}",
            toml::to_string(&cfg).context("cannot print the configuration")?
        );
        return Ok(());
    }
    let engine = Engine::new(&EngineConfig {
        block_cache_bytes: cfg.block_cache_mb << 20,
        cpu_threads: cfg.cpu_threads,
        ..EngineConfig::default()
    })?;

    // With -r, an embedded catalog in a temporary file, removed on exit.
    let mut temp_catalog: Option<PathBuf> = None;
    let catalog = match (&cfg.catalog, args.patterns.is_empty()) {
        (Some(_), false) => bail!("give either a catalog (-d) or raster patterns (-r), not both"),
        (None, true) => bail!(
            "nothing to serve: give a catalog with -d CATALOG (or KILN_CATALOG) or file \
             patterns with -r PATTERN"
        ),
        (Some(location), true) => {
            let loc = CatalogLocation::parse(location)?;
            match &loc {
                CatalogLocation::Sqlite(path) if !path.exists() => bail!(
                    "catalog {} does not exist; create it with `kiln ingest`",
                    path.display()
                ),
                CatalogLocation::Sqlite(_) => {}
            }
            kiln_catalog::open(&loc).await?
        }
        (None, false) => {
            let expansion = expand(&args.patterns, args.regex)?;
            let path = std::env::temp_dir().join(format!(
                "kiln-serve-{}-{}.sqlite",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ));
            temp_catalog = Some(path.clone());
            let defs = expansion
                .keys
                .iter()
                .map(|k| KeyDef::new(k.clone(), ""))
                .collect::<Result<Vec<_>, _>>()?;
            let cat = kiln_catalog::create(&CatalogLocation::Sqlite(path.clone()), &defs).await?;
            // A file that cannot be resolved (a dangling symlink, a file removed since the
            // listing) is reported and left out; the others are served.
            let mut skipped = 0usize;
            for (keys, file) in &expansion.datasets {
                match absolute(file) {
                    Ok(uri) => {
                        cat.insert(keys, &uri, None).await?;
                    }
                    Err(e) => {
                        skipped += 1;
                        eprintln!("warning: not serving {}: {e:#}", file.display());
                    }
                }
            }
            if skipped > 0 && skipped == expansion.datasets.len() {
                cat.close().await;
                remove_sqlite_files(&path);
                anyhow::bail!(
                    "none of the {skipped} files matching the patterns can be read (see the \
                     warnings above)"
                );
            }
            cat
        }
    };
    let catalog: Arc<dyn kiln_catalog::Catalog> = Arc::from(catalog);
    let count = catalog.count(&[]).await?;

    let server_config = kiln_server::ServerConfig {
        tile_cache_bytes: cfg.tile_cache_mb << 20,
        max_queue: cfg.max_queue,
        max_running: 0,
        request_timeout: Duration::from_secs(cfg.request_timeout_s),
        cache_max_age_s: cfg.cache_max_age_s,
        cors_origins: cfg.cors_origins.clone(),
        revalidate: Duration::from_secs(60),
        basemap: cfg.basemap.clone(),
    };
    let state = kiln_server::AppState::new(engine, catalog.clone(), server_config);
    let router = kiln_server::router(state);

    let addr: SocketAddr = format!("{}:{}", cfg.host, cfg.port)
        .parse()
        .or_else(|_| format!("[{}]:{}", cfg.host, cfg.port).parse())
        .with_context(|| format!("'{}' is not an IP address to listen on", cfg.host))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    println!(
        "Kiln serving {count} datasets at http://{local}/  (viewer there; API: http://{local}/apidoc)"
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();

    let result = kiln_server::serve(listener, router, shutdown_signal()).await;
    catalog.close().await;
    if let Some(path) = temp_catalog {
        remove_sqlite_files(&path);
    }
    result.context("the server stopped with an error")
}

/// Removes a temporary SQLite catalog with its WAL and shared-memory files.
fn remove_sqlite_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn absolute(path: &Path) -> anyhow::Result<String> {
    let abs = std::fs::canonicalize(path)
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    abs.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not valid UTF-8", abs.display()))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn args(list: &[&str]) -> ServeArgs {
        let mut v = vec!["serve"];
        v.extend_from_slice(list);
        Wrap::parse_from(v).args
    }

    /// The environment's part (clap's `env`) is held by the serve integration test, which
    /// runs the binary with `KILN_*` variables set.
    #[test]
    fn flags_beat_file_beat_defaults() {
        let dir = std::env::temp_dir().join(format!("kiln-cfg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("kiln.toml");
        std::fs::write(
            &file,
            "port = 9000\nhost = \"0.0.0.0\"\ntile_cache_mb = 7\nmax_queue = 10\n",
        )
        .unwrap();
        let env = vec![("KILN_NOPE".to_string(), "1".to_string())];
        let a = args(&["--config", file.to_str().unwrap(), "--max-queue", "44"]);
        let (cfg, warnings) = ServeConfig::resolve(&a, &env).unwrap();
        assert_eq!(cfg.port, 9000, "file beats default");
        assert_eq!(cfg.host, "0.0.0.0");
        assert_eq!(cfg.tile_cache_mb, 7);
        assert_eq!(cfg.max_queue, 44, "flag beats file");
        assert_eq!(cfg.block_cache_mb, 512, "default");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("KILN_NOPE"));

        std::fs::write(&file, "prot = 1\n").unwrap();
        let e = ServeConfig::resolve(&a, &[]).unwrap_err();
        assert!(format!("{e:#}").contains("prot"), "{e:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
