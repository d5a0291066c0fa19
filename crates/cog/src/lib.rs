//! `kiln-cog`: everything about the GeoTIFF / COG file format.
//!
//! Owns: TIFF and BigTIFF structure (IFDs, tags, both byte orders), GeoKeys and
//! georeferencing, the parsed header ([`TiffHeader`]) that the engine caches and the catalog
//! stores, block byte-range lookup, block decoding (codecs, predictors, sample layouts), and
//! writing GeoTIFFs: small tiles ([`write`]) and whole COGs ([`cog_write`]), both serialised
//! by one IFD writer (`tiff_out`). Parsing does no I/O: the parser reads from a [`RangeData`]
//! that holds the bytes fetched so far and asks for more through [`CogError::NeedBytes`]. The
//! COG writer is the one part that writes files (a spool and a temporary file beside the
//! target, renamed at the end).

pub mod cog_write;
pub mod crs_keys;
pub mod decode;
pub mod error;
pub mod geokeys;
pub mod geotags;
pub mod header;
mod ifd;
mod jpeg;
mod layout;
mod tiff_out;
pub mod write;

pub use cog_write::{
    cleanup_stale_temps, default_predictor, encode_block, encode_mask_block, BigTiff, BlockData,
    CogSpec, CogWriteError, CogWriter, EncodeOptions, MaskOrImage, SampleLayout,
};
pub use crs_keys::CrsReading;
pub use decode::{decode_block, sparse_block, Block};
pub use error::CogError;
pub use geokeys::{GeoKeyValue, GeoKeys};
pub use geotags::RawGeoTags;
pub use header::{
    Compression, Georef, ImageIfd, Photometric, Planar, Predictor, RangeData, RasterType,
    TiffHeader,
};
pub use layout::gdal_structural_metadata;
