//! The ingest use case: everything a catalog stores about one source, computed once
//! ([`dataset_metadata`]), and the round trip of the parsed header through the catalog's JSON
//! ([`header_to_json`], [`header_from_json`]) so that a server reopens sources without reading
//! their headers ([`Engine::open_with_header`]).

use std::sync::Arc;

use kiln_catalog::DatasetMetadata;
use kiln_cog::{ImageIfd, TiffHeader};
use serde_json::Value;

use crate::info::wgs84_bounds;
use crate::{
    compute_footprint, compute_statistics, Engine, EngineError, FootprintOptions, OpenSource,
    StatsOptions,
};

/// What ingest computes and how.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Statistics settings; the default reads the full resolution.
    pub stats: StatsOptions,
    pub footprint: FootprintOptions,
}

/// Computes the catalog metadata of an open source: WGS 84 bounds, footprint, valid share,
/// per-band statistics (block by block, bounded memory), data type, and the parsed header.
///
/// Bands are those a tile returns by default (alpha excluded), so `band_count` counts them.
/// Statistics of nothing do not exist: when no band has a valid (non-NaN) sample, the dataset
/// is stored with `valid_percentage` 0 and no band statistics, since pixels whose every sample
/// is NaN carry no data to stretch; when only some bands are empty, that is an
/// [`EngineError::Unsupported`] naming the band rather than invented numbers.
pub async fn dataset_metadata(
    engine: &Engine,
    src: &Arc<OpenSource>,
    opts: &IngestOptions,
) -> Result<DatasetMetadata, EngineError> {
    let uri = src.uri().to_string();
    let header = src.header().clone();
    let full = src.full_image()?;
    let bounds = src
        .transform()
        .bounds(full.width as usize, full.height as usize);
    let bounds_wgs84 =
        wgs84_bounds(&bounds, src.crs()).ok_or_else(|| EngineError::Unsupported {
            uri: uri.clone(),
            reason: "the bounds cannot be transformed to WGS 84".into(),
            cause: None,
        })?;
    // Both scans share the CPU pool; running them together overlaps the footprint's small
    // overview read with the statistics' full-resolution scan.
    let (stats, footprint) = tokio::try_join!(
        compute_statistics(engine, src, &opts.stats),
        compute_footprint(engine, src, &opts.footprint)
    )?;
    let empty: Vec<usize> = stats
        .bands
        .iter()
        .filter(|b| b.count == 0)
        .map(|b| b.band)
        .collect();
    let (valid_percentage, bands) = if empty.len() == stats.bands.len() {
        (0.0, Vec::new())
    } else if let Some(band) = empty.first() {
        return Err(EngineError::Unsupported {
            uri,
            reason: format!(
                "band {band} has no valid sample (all NaN or masked) while other bands have; \
                 per-band statistics of nothing cannot be stored"
            ),
            cause: None,
        });
    } else {
        let bands = stats
            .bands
            .iter()
            .map(|b| convert_band(&uri, b))
            .collect::<Result<Vec<_>, _>>()?;
        (stats.valid_percentage.clamp(0.0, 100.0), bands)
    };
    let metadata = DatasetMetadata {
        bounds_wgs84,
        footprint: footprint.geojson,
        valid_percentage,
        bands,
        band_count: u32::try_from(src.default_bands().len()).unwrap_or(u32::MAX),
        dtype: full.dtype,
        extra: Value::Object(serde_json::Map::new()),
        header: header_to_json(&header)?,
    };
    metadata.validate().map_err(|e| EngineError::Internal {
        reason: format!("{uri}: computed metadata is not storable: {e}"),
    })?;
    Ok(metadata)
}

fn convert_band(uri: &str, b: &crate::BandStats) -> Result<kiln_catalog::BandStats, EngineError> {
    let missing = || EngineError::Internal {
        reason: format!("{uri}: band {} has samples but no statistics", b.band),
    };
    Ok(kiln_catalog::BandStats {
        min: b.min.ok_or_else(missing)?,
        max: b.max.ok_or_else(missing)?,
        mean: b.mean.ok_or_else(missing)?,
        stdev: b.stdev.ok_or_else(missing)?,
        percentiles: b.percentiles.clone(),
    })
}

/// Non-finite nodata values as JSON strings: JSON has no NaN, and serde_json would write `null`,
/// which reads back as "no nodata" and would make every NaN pixel valid.
const NODATA_FIELD: &str = "nodata";

/// The header as stored in the catalog's `header` field.
pub fn header_to_json(header: &TiffHeader) -> Result<Value, EngineError> {
    let mut value = serde_json::to_value(header).map_err(|e| EngineError::Internal {
        reason: format!("the parsed header does not serialise: {e}"),
    })?;
    if let (Some(nd), Some(obj)) = (header.nodata, value.as_object_mut()) {
        if !nd.is_finite() {
            let text = if nd.is_nan() {
                "nan"
            } else if nd > 0.0 {
                "inf"
            } else {
                "-inf"
            };
            obj.insert(NODATA_FIELD.into(), Value::String(text.into()));
        }
    }
    Ok(value)
}

/// Reads a header stored by [`header_to_json`], checking what later code indexes by (image
/// and block counts), since the JSON has not been through the TIFF parser's checks.
pub fn header_from_json(value: &Value) -> Result<TiffHeader, EngineError> {
    let bad = |reason: String| EngineError::BadRequest {
        what: "stored header".into(),
        reason,
    };
    let mut value = value.clone();
    let mut nodata_override = None;
    if let Some(obj) = value.as_object_mut() {
        if let Some(Value::String(text)) = obj.get(NODATA_FIELD) {
            let nd = match text.as_str() {
                "nan" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                other => return Err(bad(format!("nodata {other:?} is not nan, inf or -inf"))),
            };
            nodata_override = Some(nd);
            obj.insert(NODATA_FIELD.into(), Value::Null);
        }
    }
    let mut header: TiffHeader =
        serde_json::from_value(value).map_err(|e| bad(format!("does not decode: {e}")))?;
    if nodata_override.is_some() {
        header.nodata = nodata_override;
    }
    if header.images.is_empty() {
        return Err(bad("no image".into()));
    }
    if header.masks.len() > header.images.len() {
        return Err(bad(format!(
            "{} masks for {} images",
            header.masks.len(),
            header.images.len()
        )));
    }
    let all = header
        .images
        .iter()
        .chain(header.masks.iter().flatten())
        .enumerate();
    for (i, ifd) in all {
        check_ifd(ifd).map_err(|reason| bad(format!("image {i}: {reason}")))?;
    }
    Ok(header)
}

fn check_ifd(ifd: &ImageIfd) -> Result<(), String> {
    if ifd.width == 0 || ifd.height == 0 || ifd.block_width == 0 || ifd.block_height == 0 {
        return Err("zero image or block size".into());
    }
    if ifd.samples_per_pixel == 0 {
        return Err("no samples per pixel".into());
    }
    let blocks = ifd.block_count();
    if ifd.block_offsets.len() != blocks || ifd.block_byte_counts.len() != blocks {
        return Err(format!(
            "{} offsets and {} byte counts for {blocks} blocks",
            ifd.block_offsets.len(),
            ifd.block_byte_counts.len()
        ));
    }
    Ok(())
}
