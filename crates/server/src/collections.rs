//! Collection resolution: a name → the catalog's members → a [`CollectionIndex`] (opened
//! sources and their footprint R-tree), cached and rebuilt after the revalidation interval,
//! so members added, removed, re-prioritised or replaced on any node show up on every node.

use std::sync::Arc;
use std::time::Duration;

use kiln_catalog::{Catalog, CollectionInfo, Member, MemberRef};
use kiln_engine::{CollectionIndex, Engine, MemberInput};

use crate::datasets::DatasetStore;
use crate::error::ApiError;

/// A collection ready to render: the catalog's view and the index.
#[derive(Debug)]
pub struct ResolvedCollection {
    pub info: CollectionInfo,
    pub members: Vec<Member>,
    pub index: CollectionIndex,
}

#[derive(Debug)]
pub struct CollectionStore {
    engine: Engine,
    resolved: moka::future::Cache<String, Arc<ResolvedCollection>>,
}

impl CollectionStore {
    pub fn new(engine: Engine, revalidate: Duration) -> Self {
        Self {
            engine,
            resolved: moka::future::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(revalidate)
                .build(),
        }
    }

    /// The collection `name` (404 when the catalog has none).
    pub async fn resolve(
        &self,
        datasets: &DatasetStore,
        name: &str,
    ) -> Result<Arc<ResolvedCollection>, ApiError> {
        self.resolved
            .try_get_with(name.to_owned(), self.load(datasets, name))
            .await
            .map_err(|e: Arc<ApiError>| (*e).clone())
    }

    async fn load(
        &self,
        datasets: &DatasetStore,
        name: &str,
    ) -> Result<Arc<ResolvedCollection>, ApiError> {
        let catalog: &Arc<dyn Catalog> = datasets.catalog();
        let (info, members) = catalog.collection(name).await?;
        let key_names = datasets.key_names();
        let mut inputs = Vec::with_capacity(members.len());
        for m in members.iter().filter(|m| m.settings.enabled) {
            let metadata = match (&m.metadata, &m.source) {
                (Some(md), _) => md.clone(),
                // A dataset registered without metadata (`serve -r`): computed and stored
                // as the dataset routes do.
                (None, MemberRef::Dataset(keys)) => {
                    (*datasets.resolve(keys).await?.metadata).clone()
                }
                (None, MemberRef::Uri(uri)) => {
                    let source = self.engine.open_uri(uri).await.map_err(ApiError::from)?;
                    kiln_engine::ingest::dataset_metadata(
                        &self.engine,
                        &source,
                        &kiln_engine::ingest::IngestOptions::default(),
                    )
                    .await?
                }
            };
            inputs.push(MemberInput {
                label: member_label(&key_names, &m.source),
                uri: m.uri.clone(),
                metadata,
                priority: m.settings.priority,
                min_zoom: m.settings.min_zoom,
                max_zoom: m.settings.max_zoom,
                acquired: m.settings.acquired.clone(),
                nodata: m.settings.nodata,
            });
        }
        // Catalogs hold 0..=256; whole pixels are what the renderer blends over.
        let blend = info.blend_px.round().clamp(0.0, 256.0) as u32;
        let index = CollectionIndex::build(&self.engine, name, inputs)
            .await?
            .with_blend(blend);
        Ok(Arc::new(ResolvedCollection {
            info,
            members,
            index,
        }))
    }
}

/// How a member is named in answers: its key values joined by `/`, or the file name of its
/// URI (full URIs stay out of responses).
pub fn member_label(_key_names: &[String], source: &MemberRef) -> String {
    match source {
        MemberRef::Dataset(keys) => keys.join("/"),
        MemberRef::Uri(uri) => uri
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or(uri)
            .to_owned(),
    }
}
