//! TIFF / BigTIFF header parsing into [`TiffHeader`].
//!
//! CONTRACT (implemented by the parser in this file):
//! `TiffHeader::parse(data: &dyn RangeData) -> Result<TiffHeader, CogError>` walks every IFD of
//! the file, classifies each as a full-resolution image, a reduced-resolution image (overview)
//! or a mask (NewSubfileType bit 2 / PhotometricInterpretation = 4), reads GeoKeys and GDAL
//! tags, and returns the structure below. It never panics, whatever the bytes; every count,
//! offset and size is bounded before it is used.

use kiln_core::{Crs, DataType, GeoTransform};
use serde::{Deserialize, Serialize};

use crate::CogError;

/// Bytes of a file fetched so far. `get` returns the bytes `offset..offset+len`, or
/// `Err(CogError::NeedBytes { .. })` when they have not been fetched, or
/// `Err(CogError::Truncated { .. })` when the range lies past the end of the file.
pub trait RangeData {
    /// Total size of the file in bytes.
    fn len(&self) -> u64;
    fn get(&self, offset: u64, len: u64) -> Result<&[u8], CogError>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RangeData for [u8] {
    fn len(&self) -> u64 {
        self.len() as u64
    }
    fn get(&self, offset: u64, len: u64) -> Result<&[u8], CogError> {
        let end = offset.checked_add(len).ok_or_else(|| CogError::Truncated {
            reason: format!("range {offset}+{len} overflows"),
        })?;
        let total = <[u8]>::len(self) as u64;
        if end > total {
            return Err(CogError::Truncated {
                reason: format!("needs bytes {offset}..{end} but the file has {total}"),
            });
        }
        #[allow(clippy::cast_possible_truncation)]
        Ok(&self[offset as usize..end as usize])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    None,
    /// Both code 8 (Adobe) and 32946 (legacy).
    Deflate,
    Lzw,
    PackBits,
    Zstd,
    /// New-style JPEG (code 7), possibly YCbCr with shared JPEGTables.
    Jpeg,
    Webp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Predictor {
    None,
    Horizontal,
    FloatingPoint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Planar {
    /// PlanarConfiguration = 1: samples of a pixel stored together.
    Chunky,
    /// PlanarConfiguration = 2: one plane per band, blocks of band 0 first.
    Separate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Photometric {
    MinIsWhite,
    MinIsBlack,
    Rgb,
    Palette,
    Mask,
    Separated,
    YCbCr,
    Other(u16),
}

/// One image (full resolution, overview or mask) of a TIFF file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageIfd {
    pub width: u32,
    pub height: u32,
    /// Tile size; for striped images, `width` x `RowsPerStrip` (clamped to the height).
    pub block_width: u32,
    pub block_height: u32,
    pub tiled: bool,
    pub samples_per_pixel: u16,
    pub bits_per_sample: u16,
    /// Sample type (masks with 1 bit per sample report `U8`: they decode to 0/255).
    pub dtype: DataType,
    pub planar: Planar,
    pub compression: Compression,
    pub predictor: Predictor,
    pub photometric: Photometric,
    /// NewSubfileType (bit 0: reduced resolution, bit 2: transparency mask).
    pub subfile_type: u32,
    /// ExtraSamples values (2 = unassociated alpha, 1 = associated alpha).
    pub extra_samples: Vec<u16>,
    /// JPEGTables (abbreviated table stream shared by all blocks), when present.
    pub jpeg_tables: Option<Vec<u8>>,
    /// ColorMap as 16-bit (r, g, b) triples, for palette images.
    pub palette: Option<Vec<[u16; 3]>>,
    /// Byte offset and byte count of every block, in TIFF block order.
    pub block_offsets: Vec<u64>,
    pub block_byte_counts: Vec<u64>,
    /// Offset of this IFD in the file (for COG layout checks).
    pub ifd_offset: u64,
}

/// Where pixel values refer to (GeoKey GTRasterTypeGeoKey).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RasterType {
    PixelIsArea,
    PixelIsPoint,
}

/// Georeferencing of the full-resolution image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Georef {
    /// Pixel-corner transform (already shifted by half a pixel for PixelIsPoint, as GDAL does).
    pub transform: GeoTransform,
    /// `None` when the file has no usable CRS keys.
    pub crs: Option<Crs>,
    pub raster_type: RasterType,
}

/// Everything Kiln needs to know about a GeoTIFF to read pixels from it without touching the
/// header again. Serializable so the catalog can store it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TiffHeader {
    pub big_endian: bool,
    pub bigtiff: bool,
    /// Full-resolution image first, then overviews from finest to coarsest.
    pub images: Vec<ImageIfd>,
    /// Internal masks; `masks[i]` is `Some` when `images[i]` has one.
    pub masks: Vec<Option<ImageIfd>>,
    /// `None` when the file has neither a geotransform nor tie points.
    pub georef: Option<Georef>,
    /// GDAL_NODATA (tag 42113), parsed.
    pub nodata: Option<f64>,
    /// GDAL_METADATA (tag 42112) XML, verbatim.
    pub gdal_metadata: Option<String>,
}
