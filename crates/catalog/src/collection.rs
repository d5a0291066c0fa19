//! Collections: named sets of sources composited by precedence into one layer (Mapzen terrain
//! tiles, marblecutter). A member is either a catalog dataset (referenced by its keys, so a
//! replaced dataset is followed and a deleted one leaves every collection with it) or a bare
//! URI with its own stored metadata. This module owns the value types and their validation;
//! the backends store them (see `sqlite.rs` for the schema).

use std::fmt;

use crate::{validate, CatalogError, DatasetMetadata};

/// Largest seam blending width.
pub const MAX_BLEND_PX: f64 = 256.0;
/// Largest zoom level a member may be limited to.
pub const MAX_MEMBER_ZOOM: u8 = 30;

/// A collection as listed: its name, description, settings and how many members it has.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionInfo {
    pub name: String,
    pub description: String,
    /// Seam blending width in pixels, 0 = off (first valid wins exactly).
    pub blend_px: f64,
    pub member_count: u64,
}

/// What a member is: a catalog dataset or a source outside the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MemberRef {
    /// Key values in the catalog's key order.
    Dataset(Vec<String>),
    /// A source URI (path, `file://`, `s3://`, ...), stored as given.
    Uri(String),
}

impl fmt::Display for MemberRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dataset(keys) => write!(f, "dataset ({})", keys.join(", ")),
            Self::Uri(uri) => write!(f, "uri {uri}"),
        }
    }
}

/// How a member takes part in its collection.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSettings {
    /// Higher wins where members overlap.
    pub priority: i32,
    /// Coarsest zoom at which the member is used (`None`: any).
    pub min_zoom: Option<u8>,
    /// Finest zoom at which the member is used (`None`: any).
    pub max_zoom: Option<u8>,
    /// Acquisition date, ISO `YYYY-MM-DD` (a real calendar date).
    pub acquired: Option<String>,
    /// Disabled members stay in the collection but are not rendered.
    pub enabled: bool,
    /// Void value overriding the file's own nodata; finite.
    pub nodata: Option<f64>,
}

impl Default for MemberSettings {
    fn default() -> Self {
        Self {
            priority: 0,
            min_zoom: None,
            max_zoom: None,
            acquired: None,
            enabled: true,
            nodata: None,
        }
    }
}

impl MemberSettings {
    /// Zooms within `0..=MAX_MEMBER_ZOOM` and ordered, a real date, a finite nodata value.
    pub fn validate(&self) -> Result<(), CatalogError> {
        for (field, zoom) in [("min_zoom", self.min_zoom), ("max_zoom", self.max_zoom)] {
            if let Some(z) = zoom {
                if z > MAX_MEMBER_ZOOM {
                    return Err(CatalogError::bad(
                        field,
                        format!("must be at most {MAX_MEMBER_ZOOM}, got {z}"),
                    ));
                }
            }
        }
        if let (Some(min), Some(max)) = (self.min_zoom, self.max_zoom) {
            if min > max {
                return Err(CatalogError::bad(
                    "min_zoom",
                    format!("min_zoom {min} is above max_zoom {max}"),
                ));
            }
        }
        if let Some(date) = &self.acquired {
            validate::iso_date("acquired", date)?;
        }
        if let Some(nodata) = self.nodata {
            if !nodata.is_finite() {
                return Err(CatalogError::bad(
                    "nodata",
                    format!("must be a finite number, got {nodata}"),
                ));
            }
        }
        Ok(())
    }
}

/// One member of a collection, resolved at read time.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub source: MemberRef,
    pub settings: MemberSettings,
    /// The dataset's URI (resolved now, so a replaced dataset is followed) or the member's
    /// own URI.
    pub uri: String,
    /// The dataset's metadata, or the metadata stored with a URI member; `None` when not
    /// computed.
    pub metadata: Option<DatasetMetadata>,
}

/// Checks a seam blending width.
pub(crate) fn validate_blend_px(blend_px: f64) -> Result<(), CatalogError> {
    if !blend_px.is_finite() || !(0.0..=MAX_BLEND_PX).contains(&blend_px) {
        return Err(CatalogError::bad(
            "blend_px",
            format!("must be a finite number of pixels within 0..={MAX_BLEND_PX}, got {blend_px}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<(), CatalogError>) -> Option<&'static str> {
        match result {
            Err(CatalogError::BadRequest { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn settings_validation_names_the_field() {
        let ok = MemberSettings {
            priority: -3,
            min_zoom: Some(0),
            max_zoom: Some(30),
            acquired: Some("2020-02-29".into()),
            enabled: false,
            nodata: Some(-32768.0),
        };
        assert!(ok.validate().is_ok());
        assert!(MemberSettings::default().validate().is_ok());
        let cases: Vec<(MemberSettings, &str)> = vec![
            (
                MemberSettings {
                    min_zoom: Some(9),
                    max_zoom: Some(8),
                    ..ok.clone()
                },
                "min_zoom",
            ),
            (
                MemberSettings {
                    max_zoom: Some(31),
                    ..ok.clone()
                },
                "max_zoom",
            ),
            (
                MemberSettings {
                    min_zoom: Some(31),
                    max_zoom: None,
                    ..ok.clone()
                },
                "min_zoom",
            ),
            (
                MemberSettings {
                    acquired: Some("2021-02-29".into()),
                    ..ok.clone()
                },
                "acquired",
            ),
            (
                MemberSettings {
                    nodata: Some(f64::NAN),
                    ..ok.clone()
                },
                "nodata",
            ),
            (
                MemberSettings {
                    nodata: Some(f64::NEG_INFINITY),
                    ..ok.clone()
                },
                "nodata",
            ),
        ];
        for (settings, field) in cases {
            assert_eq!(field_of(settings.validate()), Some(field), "{settings:?}");
        }
    }

    #[test]
    fn blend_width_is_bounded() {
        for good in [0.0, 0.5, 256.0] {
            assert!(validate_blend_px(good).is_ok(), "{good}");
        }
        for bad in [-0.1, 256.5, f64::NAN, f64::INFINITY] {
            assert_eq!(field_of(validate_blend_px(bad)), Some("blend_px"), "{bad}");
        }
    }

    #[test]
    fn refs_display_for_messages() {
        assert_eq!(
            MemberRef::Dataset(vec!["srtm".into(), "n50".into()]).to_string(),
            "dataset (srtm, n50)"
        );
        assert_eq!(MemberRef::Uri("/a.tif".into()).to_string(), "uri /a.tif");
    }
}
