//! `kiln-server`: the HTTP adapter. A Terracotta-compatible API (`/keys`, `/datasets`,
//! `/metadata`, `/singleband`, `/rgb`, `/compute`, `/colormap`, `/swagger.json`) plus Kiln's
//! extensions (multi-band datasets, raw `.npy`/`.tif` tiles, `/point`, TileJSON, `/health`).
//!
//! Handlers are short: parse and validate parameters (`params`), resolve datasets through the
//! catalog (`datasets`), hand the work to the engine's CPU pool through the tile service
//! (`tiles`: cache, coalescing, admission), and answer. Nothing here touches the file system
//! except through the catalog's dataset URIs.

mod collection_routes;
mod collections;
mod datasets;
mod error;
mod handlers;
mod openapi;
mod params;
mod tiles;
mod viewer;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method};
use axum::Router;
use kiln_catalog::Catalog;
use kiln_engine::Engine;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::ApiError;
pub use tiles::etag_of;

/// Serving settings (resolved by the CLI from defaults, file, environment and flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Bytes of encoded tiles kept in memory.
    pub tile_cache_bytes: u64,
    /// Tile renders waiting or running before new ones get 503.
    pub max_queue: usize,
    /// Tile renders running at once (0 = twice the CPU pool's threads).
    pub max_running: usize,
    /// Longest a tile may take before the request gets 503.
    pub request_timeout: Duration,
    /// `Cache-Control: max-age` of tiles, seconds.
    pub cache_max_age_s: u32,
    /// Origins allowed by CORS; `*` allows any.
    pub cors_origins: Vec<String>,
    /// How long a resolved dataset is trusted before the catalog is asked again.
    pub revalidate: Duration,
    /// XYZ raster tile URL the web viewer offers as a base map (none: plain background).
    pub basemap: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            tile_cache_bytes: 256 << 20,
            max_queue: 512,
            max_running: 0,
            request_timeout: Duration::from_secs(30),
            cache_max_age_s: 3600,
            cors_origins: vec!["*".into()],
            revalidate: Duration::from_secs(60),
            basemap: None,
        }
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

#[derive(Debug)]
struct StateInner {
    engine: Engine,
    store: datasets::DatasetStore,
    collections: collections::CollectionStore,
    tiles: tiles::TileService,
    config: ServerConfig,
}

impl AppState {
    pub fn new(engine: Engine, catalog: Arc<dyn Catalog>, config: ServerConfig) -> Self {
        let running = if config.max_running == 0 {
            engine.pool().threads() * 2
        } else {
            config.max_running
        };
        Self {
            inner: Arc::new(StateInner {
                store: datasets::DatasetStore::new(catalog, engine.clone(), config.revalidate),
                collections: collections::CollectionStore::new(engine.clone(), config.revalidate),
                tiles: tiles::TileService::new(
                    config.tile_cache_bytes,
                    config.max_queue,
                    running,
                    config.request_timeout,
                ),
                engine,
                config,
            }),
        }
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn store(&self) -> &datasets::DatasetStore {
        &self.inner.store
    }

    fn collections(&self) -> &collections::CollectionStore {
        &self.inner.collections
    }

    fn tiles(&self) -> &tiles::TileService {
        &self.inner.tiles
    }

    fn config(&self) -> &ServerConfig {
        &self.inner.config
    }
}

/// Declares the route table once: [`ROUTES`] lists it (for the OpenAPI document's test) and
/// [`router`] is built from it, so the two cannot differ.
macro_rules! route_table {
    ($($method:ident $path:literal => $handler:path,)*) => {
        /// Every route the router answers: (lower-case HTTP method, axum path pattern).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn add_routes(router: Router<AppState>) -> Router<AppState> {
            router$(.route($path, axum::routing::$method($handler)))*
        }
    };
}

route_table! {
    get "/health" => handlers::health,
    get "/keys" => handlers::keys,
    get "/datasets" => handlers::datasets,
    post "/metadata" => handlers::metadata_many,
    get "/metadata/{*keys}" => handlers::metadata,
    get "/singleband/{*rest}" => handlers::singleband,
    get "/rgb/{*rest}" => handlers::rgb,
    get "/compute/{*rest}" => handlers::compute,
    get "/colormap" => handlers::colormap,
    get "/point/{*keys}" => handlers::point,
    get "/collections" => collection_routes::list,
    get "/collections/{name}" => collection_routes::show,
    get "/collections/{name}/point" => collection_routes::point,
    get "/collections/{name}/{product}/tilejson.json" => collection_routes::tilejson,
    get "/collections/{name}/{product}/{z}/{x}/{file}" => collection_routes::tile,
    get "/swagger.json" => handlers::openapi,
    get "/openapi.json" => openapi::document,
    get "/apidoc" => handlers::apidoc,
    get "/" => viewer::index,
    get "/viewer" => viewer::redirect,
    get "/viewer/" => viewer::redirect,
    get "/viewer/config.json" => viewer::config,
    get "/viewer/{file}" => viewer::asset,
}

/// All routes in one table ([`ROUTES`]).
pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.config().cors_origins);
    add_routes(Router::new())
        .fallback(handlers::not_found)
        .layer(cors)
        .with_state(state)
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            axum::http::header::CONTENT_TYPE,
            axum::http::header::IF_NONE_MATCH,
        ])
        .expose_headers([
            axum::http::header::ETAG,
            axum::http::HeaderName::from_static("server-timing"),
            axum::http::HeaderName::from_static("x-kiln-sources"),
        ]);
    if origins.iter().any(|o| o == "*") {
        return layer.allow_origin(AllowOrigin::any());
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    layer.allow_origin(AllowOrigin::list(list))
}

/// Serves `router` on `listener` (with TCP_NODELAY) until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
