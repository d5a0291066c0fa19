//! The georeferencing tags of a TIFF, read verbatim so a writer can carry them over exactly.
//!
//! [`RawGeoTags::read`] returns the six GeoTIFF tags of the first IFD (ModelPixelScale,
//! ModelTiepoint, ModelTransformation, GeoKeyDirectory, GeoDoubleParams, GeoAsciiParams)
//! without interpreting them, so user-defined (non-EPSG) CRS definitions, citations and
//! vertical keys survive a rewrite untouched. The COG writer ([`crate::cog_write`]) writes
//! them back on the full-resolution IFD.

use crate::header::tag;
use crate::ifd::{malformed, FileHeader, RawIfd};
use crate::{CogError, RangeData};

/// Most values one geo tag may hold (tie point lists of warped scenes stay far below this).
const MAX_GEO_VALUES: u64 = 6 * 100_000;
/// Largest GeoAsciiParams text kept.
const MAX_GEO_ASCII: u64 = 1 << 20;

/// The GeoTIFF tags of one IFD, as stored (all `None` for a file without georeferencing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawGeoTags {
    /// ModelPixelScaleTag (33550), DOUBLE.
    pub pixel_scale: Option<Vec<f64>>,
    /// ModelTiepointTag (33922), DOUBLE, 6 values per tie point.
    pub tiepoints: Option<Vec<f64>>,
    /// ModelTransformationTag (34264), DOUBLE, 16 values.
    pub transformation: Option<Vec<f64>>,
    /// GeoKeyDirectoryTag (34735), SHORT.
    pub key_directory: Option<Vec<u16>>,
    /// GeoDoubleParamsTag (34736), DOUBLE.
    pub double_params: Option<Vec<f64>>,
    /// GeoAsciiParamsTag (34737), ASCII bytes exactly as stored (`|` separators and the
    /// trailing NUL included).
    pub ascii_params: Option<Vec<u8>>,
}

impl RawGeoTags {
    /// Reads the geo tags of the first IFD of a TIFF or BigTIFF file (either byte order).
    ///
    /// Like [`crate::TiffHeader::parse`], it returns [`CogError::NeedBytes`] when `data` lacks
    /// bytes it needs.
    pub fn read(data: &dyn RangeData) -> Result<Self, CogError> {
        let fh = FileHeader::read(data)?;
        if fh.first_ifd == 0 {
            return Err(malformed("the file has no IFD (first IFD offset is 0)"));
        }
        let ifd = RawIfd::read(data, fh, fh.first_ifd)?;
        let key_directory = ifd
            .uints(tag::GEO_KEY_DIRECTORY, MAX_GEO_VALUES)?
            .map(|v| {
                v.into_iter()
                    .map(|k| {
                        u16::try_from(k).map_err(|_| {
                            malformed(format!("GeoKeyDirectory value {k} does not fit 16 bits"))
                        })
                    })
                    .collect::<Result<Vec<u16>, CogError>>()
            })
            .transpose()?;
        Ok(Self {
            pixel_scale: ifd.floats(tag::MODEL_PIXEL_SCALE, MAX_GEO_VALUES)?,
            tiepoints: ifd.floats(tag::MODEL_TIEPOINT, MAX_GEO_VALUES)?,
            transformation: ifd.floats(tag::MODEL_TRANSFORMATION, MAX_GEO_VALUES)?,
            key_directory,
            double_params: ifd.floats(tag::GEO_DOUBLE_PARAMS, MAX_GEO_VALUES)?,
            ascii_params: ifd.bytes(tag::GEO_ASCII_PARAMS, MAX_GEO_ASCII)?,
        })
    }

    /// True when no geo tag is present.
    pub fn is_empty(&self) -> bool {
        self.pixel_scale.is_none()
            && self.tiepoints.is_none()
            && self.transformation.is_none()
            && self.key_directory.is_none()
            && self.double_params.is_none()
            && self.ascii_params.is_none()
    }
}
