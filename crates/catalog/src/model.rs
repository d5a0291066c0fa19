//! Per-dataset metadata, its validation, and its encoding into the columns every backend
//! stores (numbers in their own columns, structured parts as JSON text).

use kiln_core::{DataType, GeoBounds};
use serde::{Deserialize, Serialize};

use crate::CatalogError;

/// Percentiles stored per band: 1, 2, ..., 99.
pub const PERCENTILE_COUNT: usize = 99;
/// Largest JSON text of one stored field (footprint, bands, extra, header).
pub(crate) const MAX_JSON_BYTES: usize = 8 << 20;

/// Statistics of one band over its valid pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandStats {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub stdev: f64,
    /// Percentiles 1..=99 in order ([`PERCENTILE_COUNT`] values).
    pub percentiles: Vec<f64>,
}

/// What ingest computes once so that the server never has to: where the data is, how much of
/// it is valid, per-band statistics, and the parsed COG header (`kiln_cog::TiffHeader` as
/// JSON), so a fresh server process reads no file headers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetMetadata {
    pub bounds_wgs84: GeoBounds,
    /// GeoJSON geometry (simplified) of the valid data.
    pub footprint: serde_json::Value,
    /// Share of valid pixels, 0..=100.
    pub valid_percentage: f64,
    /// One entry per band; empty only when no pixel is valid (`valid_percentage == 0`), since
    /// statistics of nothing are undefined.
    pub bands: Vec<BandStats>,
    pub band_count: u32,
    pub dtype: DataType,
    /// Free-form user metadata (a JSON object or null).
    pub extra: serde_json::Value,
    /// The parsed header, or null when not known yet.
    pub header: serde_json::Value,
}

impl DatasetMetadata {
    /// Checks what the types cannot say: finite numbers, ordered bounds, band count agreeing
    /// with the statistics, percentiles complete and non-decreasing, footprint a GeoJSON
    /// object. Backends call it before writing; ingest may call it earlier.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let b = &self.bounds_wgs84;
        if ![b.west, b.south, b.east, b.north]
            .iter()
            .all(|v| v.is_finite())
            || b.south > b.north
            || b.west > b.east
        {
            return Err(CatalogError::bad(
                "metadata.bounds_wgs84",
                format!("bounds must be finite with west <= east and south <= north, got {b:?}"),
            ));
        }
        if !(0.0..=100.0).contains(&self.valid_percentage) {
            return Err(CatalogError::bad(
                "metadata.valid_percentage",
                format!("must be within 0..=100, got {}", self.valid_percentage),
            ));
        }
        if self.band_count == 0 {
            return Err(CatalogError::bad(
                "metadata.band_count",
                "must be at least 1",
            ));
        }
        let expected = usize::try_from(self.band_count).unwrap_or(usize::MAX);
        let no_valid_pixels = self.valid_percentage == 0.0 && self.bands.is_empty();
        if self.bands.len() != expected && !no_valid_pixels {
            return Err(CatalogError::bad(
                "metadata.bands",
                format!(
                    "{} band statistics for {} bands",
                    self.bands.len(),
                    self.band_count
                ),
            ));
        }
        for (i, band) in self.bands.iter().enumerate() {
            band.validate().map_err(|reason| {
                CatalogError::bad("metadata.bands", format!("band {}: {reason}", i + 1))
            })?;
        }
        if !self
            .footprint
            .get("type")
            .is_some_and(serde_json::Value::is_string)
        {
            return Err(CatalogError::bad(
                "metadata.footprint",
                "must be a GeoJSON object with a \"type\"",
            ));
        }
        if !(self.extra.is_object() || self.extra.is_null()) {
            return Err(CatalogError::bad(
                "metadata.extra",
                "must be a JSON object or null",
            ));
        }
        Ok(())
    }
}

impl BandStats {
    fn validate(&self) -> Result<(), String> {
        let scalars = [self.min, self.max, self.mean, self.stdev];
        if !scalars.iter().all(|v| v.is_finite()) || self.min > self.max || self.stdev < 0.0 {
            return Err(format!(
                "min {}, max {}, mean {}, stdev {}: need finite values, min <= max, stdev >= 0",
                self.min, self.max, self.mean, self.stdev
            ));
        }
        if self.percentiles.len() != PERCENTILE_COUNT {
            return Err(format!(
                "{} percentiles, expected {PERCENTILE_COUNT}",
                self.percentiles.len()
            ));
        }
        if !self.percentiles.iter().all(|p| p.is_finite())
            || self.percentiles.windows(2).any(|w| w[0] > w[1])
        {
            return Err("percentiles must be finite and non-decreasing".into());
        }
        Ok(())
    }
}

/// The metadata as backends store it: scalars in typed columns, the rest as JSON text.
#[derive(Debug, Clone)]
pub(crate) struct EncodedMetadata {
    pub west: f64,
    pub south: f64,
    pub east: f64,
    pub north: f64,
    pub valid_percentage: f64,
    pub band_count: i64,
    pub dtype: String,
    pub footprint: String,
    pub bands: String,
    pub extra: String,
    pub header: String,
}

impl EncodedMetadata {
    /// Validates and serialises (before any transaction opens, so writes stay short).
    pub fn encode(m: &DatasetMetadata) -> Result<Self, CatalogError> {
        m.validate()?;
        let b = m.bounds_wgs84;
        Ok(Self {
            west: b.west,
            south: b.south,
            east: b.east,
            north: b.north,
            valid_percentage: m.valid_percentage,
            band_count: i64::from(m.band_count),
            dtype: json_text("metadata.dtype", &m.dtype)?
                .trim_matches('"')
                .to_owned(),
            footprint: json_text("metadata.footprint", &m.footprint)?,
            bands: json_text("metadata.bands", &m.bands)?,
            extra: json_text("metadata.extra", &m.extra)?,
            header: json_text("metadata.header", &m.header)?,
        })
    }

    /// The inverse of [`Self::encode`]; stored text that does not decode is a schema error.
    pub fn decode(self, catalog: &str) -> Result<DatasetMetadata, CatalogError> {
        let schema = |what: &str, e: &dyn std::fmt::Display| CatalogError::Schema {
            catalog: catalog.to_owned(),
            reason: format!("stored metadata field {what} does not decode: {e}"),
        };
        let dtype: DataType = serde_json::from_value(serde_json::Value::String(self.dtype))
            .map_err(|e| schema("dtype", &e))?;
        let band_count = u32::try_from(self.band_count).map_err(|e| schema("band_count", &e))?;
        Ok(DatasetMetadata {
            bounds_wgs84: GeoBounds {
                west: self.west,
                south: self.south,
                east: self.east,
                north: self.north,
            },
            footprint: serde_json::from_str(&self.footprint)
                .map_err(|e| schema("footprint", &e))?,
            valid_percentage: self.valid_percentage,
            bands: serde_json::from_str(&self.bands).map_err(|e| schema("bands", &e))?,
            band_count,
            dtype,
            extra: serde_json::from_str(&self.extra).map_err(|e| schema("extra", &e))?,
            header: serde_json::from_str(&self.header).map_err(|e| schema("header", &e))?,
        })
    }
}

fn json_text<T: Serialize>(field: &'static str, value: &T) -> Result<String, CatalogError> {
    let text = serde_json::to_string(value)
        .map_err(|e| CatalogError::bad(field, format!("does not serialise to JSON: {e}")))?;
    if text.len() > MAX_JSON_BYTES {
        return Err(CatalogError::bad(
            field,
            format!("{} bytes of JSON, more than {MAX_JSON_BYTES}", text.len()),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::conformance::sample_metadata as sample;

    #[test]
    fn encode_decode_roundtrips_exactly() -> Result<(), CatalogError> {
        // Values whose shortest decimal form is long: JSON must not round them.
        let mut m = sample(0.1 + 0.2);
        m.bands[0].mean = std::f64::consts::PI / 7.0;
        let back = EncodedMetadata::encode(&m)?.decode("test")?;
        assert_eq!(back, m);
        Ok(())
    }

    #[test]
    fn validation_rejects_inconsistent_metadata() {
        type Mutation = fn(&mut DatasetMetadata);
        let cases: Vec<(&str, Mutation)> = vec![
            ("metadata.valid_percentage", |m| {
                m.valid_percentage = f64::NAN
            }),
            ("metadata.valid_percentage", |m| m.valid_percentage = 100.5),
            ("metadata.bounds_wgs84", |m| m.bounds_wgs84.south = 60.0),
            ("metadata.bounds_wgs84", |m| {
                m.bounds_wgs84.east = f64::INFINITY
            }),
            ("metadata.band_count", |m| m.band_count = 0),
            ("metadata.bands", |m| m.band_count = 3),
            ("metadata.bands", |m| m.bands[1].percentiles.truncate(98)),
            ("metadata.bands", |m| m.bands[0].percentiles[5] = 1e9),
            ("metadata.bands", |m| m.bands[0].stdev = -1.0),
            ("metadata.bands", |m| m.bands[0].min = f64::NAN),
            ("metadata.footprint", |m| {
                m.footprint = serde_json::json!([1, 2])
            }),
            ("metadata.extra", |m| m.extra = serde_json::json!("text")),
        ];
        for (field, mutate) in cases {
            let mut m = sample(0.0);
            mutate(&mut m);
            match m.validate() {
                Err(CatalogError::BadRequest { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected BadRequest, got {other:?}"),
            }
        }
    }

    #[test]
    fn all_nodata_dataset_has_no_band_stats() -> Result<(), CatalogError> {
        let mut m = sample(0.0);
        m.valid_percentage = 0.0;
        m.bands.clear();
        m.validate()?;
        m.valid_percentage = 0.5;
        assert!(m.validate().is_err(), "valid pixels need statistics");
        Ok(())
    }
}
