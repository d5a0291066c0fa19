//! `kiln-cog`: everything about the GeoTIFF / COG file format.
//!
//! Owns: TIFF and BigTIFF structure (IFDs, tags, both byte orders), GeoKeys and
//! georeferencing, the parsed header ([`TiffHeader`]) that the engine caches and the catalog
//! stores, block byte-range lookup, block decoding (codecs, predictors, sample layouts), and
//! writing GeoTIFFs. It does no I/O itself: the parser reads from a [`RangeData`] that holds
//! the bytes fetched so far and asks for more through [`CogError::NeedBytes`].

pub mod decode;
pub mod error;
pub mod geokeys;
pub mod header;
mod ifd;
mod jpeg;
mod layout;
pub mod write;

pub use decode::{decode_block, sparse_block, Block};
pub use error::CogError;
pub use geokeys::{GeoKeyValue, GeoKeys};
pub use header::{
    Compression, Georef, ImageIfd, Photometric, Planar, Predictor, RangeData, RasterType,
    TiffHeader,
};
pub use layout::gdal_structural_metadata;
