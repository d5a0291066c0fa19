//! `kiln-core`: pure, synchronous raster logic with no I/O.
//!
//! It owns the value types every other crate speaks in (data types, sample buffers, rasters
//! with validity masks, geotransforms, bounds), the tile matrix sets and tile math, coordinate
//! reference systems and their transforms, warping/resampling into a tile grid, and the
//! products built from a warped tile (stretch, colormaps, encoders) and terrain products
//! (terrarium and terrain-RGB encodings, normal maps, hillshade). Nothing here knows about
//! files, HTTP, SQL or the environment.

pub mod crs;
pub mod dtype;
pub mod error;
pub mod expr;
pub mod geo;
pub mod overview;
pub mod product;
pub mod raster;
pub mod terrain;
pub mod tms;
pub mod warp;

pub use crs::Crs;
pub use dtype::{DataType, Samples};
pub use error::CoreError;
pub use geo::{GeoBounds, GeoTransform};
pub use raster::{PixelWindow, Planes, Raster};
