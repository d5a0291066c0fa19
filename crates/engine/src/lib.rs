//! `kiln-engine`: Kiln's use cases, with no HTTP and no CLI.
//!
//! Owns opening sources (fetching and caching parsed headers by source identity), the
//! decoded-block cache, the bounded CPU pool, and [`Engine::read_tile`]: the pipeline from a
//! tile request to a warped [`kiln_core::Raster`] (source window planning, overview choice,
//! async block fetch, decode, mask building, warp, compositing by precedence). Products and
//! encoders are applied on top by [`render`]; catalog metadata for ingest by [`ingest`].

mod blend;
pub mod collection;
mod error;
mod footprint;
mod header_fetch;
mod info;
pub mod ingest;
pub mod optimize;
mod pool;
pub mod render;
mod request;
mod source;
mod stats;
mod window;

pub use collection::{
    CollectionIndex, CollectionRender, CollectionSource, MemberInput, FOOTPRINT_MARGIN_CELLS,
};
pub use error::EngineError;
pub use footprint::{compute_footprint, Footprint, FootprintOptions};
pub use header_fetch::read_tiff_header;
pub use info::{source_info, SourceInfo};
pub use pool::CpuPool;
pub use render::{OutputFormat, RenderOutput, SourceTrace, Timings};
pub use request::{
    Area, Bound, ColormapChoice, ComputeOutput, ImageOutput, Layer, Product, RangeSpec, RawFormat,
    RenderKey, RenderRequest, Terrain, Tms,
};
pub use source::{BlockCacheStats, Engine, EngineConfig, OpenSource, TileRequest, Traced};
pub use stats::{compute_statistics, BandStats, DatasetStats, StatsOptions, FINE_BINS};
