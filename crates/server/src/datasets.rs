//! Dataset resolution: key values → catalog entry → opened source + metadata, cached.
//!
//! The server reads only files the catalog names: request paths give key values, never file
//! paths. A source is opened from the header stored in the catalog when there is one (so a
//! fresh process reads no headers); metadata missing from the catalog (`kiln serve -r`) is
//! computed on first use and written back.

use std::sync::Arc;
use std::time::Duration;

use kiln_catalog::{BandStats, Catalog, DatasetMetadata};
use kiln_engine::{Engine, Layer, OpenSource};

use crate::error::ApiError;

/// A dataset ready to render.
#[derive(Debug)]
pub struct Resolved {
    pub keys: Vec<String>,
    pub source: Arc<OpenSource>,
    pub metadata: Arc<DatasetMetadata>,
    /// The metadata's per-band statistics, shared by every render request of this dataset.
    stats: Arc<[BandStats]>,
}

impl Resolved {
    /// `bands` (1-based) of this dataset as a render layer, with its statistics.
    pub fn layer(&self, bands: Vec<usize>) -> Layer {
        Layer {
            sources: vec![self.source.clone()],
            bands: Some(bands),
            stats: Some(self.stats.clone()),
            blend_px: 0,
        }
    }
}

#[derive(Debug)]
pub struct DatasetStore {
    catalog: Arc<dyn Catalog>,
    engine: Engine,
    resolved: moka::future::Cache<Vec<String>, Arc<Resolved>>,
}

impl DatasetStore {
    /// `revalidate`: how long a resolved dataset is trusted before the catalog and the file
    /// are looked at again (so re-ingested or replaced files show up on every node).
    pub fn new(catalog: Arc<dyn Catalog>, engine: Engine, revalidate: Duration) -> Self {
        Self {
            catalog,
            engine,
            resolved: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(revalidate)
                .build(),
        }
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    pub fn key_names(&self) -> Vec<String> {
        self.catalog
            .keys()
            .iter()
            .map(|k| k.name().to_string())
            .collect()
    }

    /// Checks that `values` has one value per catalog key.
    pub fn check_key_count(&self, values: &[String]) -> Result<(), ApiError> {
        let names = self.key_names();
        if values.len() == names.len() {
            return Ok(());
        }
        Err(ApiError::bad_param(
            "keys",
            format!(
                "got {} key values ({}), this catalog needs {} ({})",
                values.len(),
                values.join("/"),
                names.len(),
                names.join("/")
            ),
        ))
    }

    /// The dataset with these key values (404 when the catalog has none).
    pub async fn resolve(&self, keys: &[String]) -> Result<Arc<Resolved>, ApiError> {
        self.check_key_count(keys)?;
        let keys_owned = keys.to_vec();
        self.resolved
            .try_get_with(keys_owned.clone(), self.load(keys_owned))
            .await
            .map_err(|e: Arc<ApiError>| (*e).clone())
    }

    async fn load(&self, keys: Vec<String>) -> Result<Arc<Resolved>, ApiError> {
        let dataset = self.catalog.dataset(&keys).await?;
        let stored = self.catalog.metadata(&keys).await?;
        let file = kiln_storage::open(&dataset.uri)
            .await
            .map_err(kiln_engine::EngineError::from)?;
        let header = stored
            .as_ref()
            .filter(|m| !m.header.is_null())
            .and_then(|m| match kiln_engine::ingest::header_from_json(&m.header) {
                Ok(h) => Some(h),
                Err(e) => {
                    // A stale or foreign header is re-read from the file rather than trusted.
                    tracing::warn!(uri = %dataset.uri, error = %e, "stored header unusable; reading the file's");
                    None
                }
            });
        let source = match header {
            Some(h) => self.engine.open_with_header(file, h).await?,
            None => self.engine.open(file).await?,
        };
        let metadata = match stored {
            Some(m) => m,
            None => {
                let m = kiln_engine::ingest::dataset_metadata(
                    &self.engine,
                    &source,
                    &kiln_engine::ingest::IngestOptions::default(),
                )
                .await?;
                // Another node (or request) may have stored it meanwhile; either copy is right.
                if let Err(e) = self.catalog.set_metadata(&keys, &m).await {
                    tracing::warn!(error = %e, "could not store computed metadata");
                }
                m
            }
        };
        Ok(Arc::new(Resolved {
            keys,
            source,
            stats: metadata.bands.clone().into(),
            metadata: Arc::new(metadata),
        }))
    }
}
