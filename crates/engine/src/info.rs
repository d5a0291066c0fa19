//! `kiln info`: a JSON description of a GeoTIFF from its header alone.

use kiln_cog::{Compression, Predictor, TiffHeader};
use kiln_core::crs::Transformer;
use kiln_core::{Crs, GeoBounds};
use serde::Serialize;

/// What `kiln info` prints.
#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    pub uri: String,
    pub width: u32,
    pub height: u32,
    pub bands: u16,
    pub dtype: &'static str,
    pub crs: Option<CrsInfo>,
    /// Geotransform in GDAL order (pixel-corner convention).
    pub geotransform: Option<[f64; 6]>,
    pub bounds: Option<GeoBounds>,
    pub bounds_wgs84: Option<GeoBounds>,
    pub nodata: Option<f64>,
    pub overviews: Vec<[u32; 2]>,
    pub block_size: [u32; 2],
    pub tiled: bool,
    pub compression: &'static str,
    pub predictor: &'static str,
    pub interleave: &'static str,
    pub photometric: String,
    pub mask: &'static str,
    pub has_palette: bool,
    pub byte_order: &'static str,
    pub bigtiff: bool,
    pub is_cog: bool,
    pub cog_problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrsInfo {
    /// The EPSG code, only when the CRS is exactly what the code defines.
    pub epsg: Option<u32>,
    /// The effective CRS as a PROJ string (after any GeoKey that refines the code).
    pub proj4: String,
    /// GeoKeys that changed the CRS the file's EPSG code names, or were ignored beside it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Describes a parsed header. `cog_problems` comes from the caller (it needs the file bytes).
pub fn source_info(
    uri: &str,
    header: &TiffHeader,
    cog_problems: Vec<String>,
) -> Option<SourceInfo> {
    let img = header.images.first()?;
    let (w, h) = (img.width as usize, img.height as usize);
    let georef = header.georef.as_ref();
    let bounds = georef.map(|g| g.transform.bounds(w, h));
    let crs = georef.and_then(|g| g.crs.as_ref());
    // With the datum shift the tiles use (NAD27's depends on where the image is).
    let bounds_wgs84 = match (bounds, georef, crs) {
        (Some(b), Some(g), Some(c)) => wgs84_bounds(
            &b,
            &crate::source::resolve_datum_shift(c.clone(), &g.transform, img.width, img.height),
        ),
        _ => None,
    };
    let mask = if header.masks.first().is_some_and(Option::is_some) {
        "internal"
    } else if img.extra_samples.iter().any(|&e| e == 1 || e == 2) {
        "alpha"
    } else if header.nodata.is_some() {
        "nodata"
    } else {
        "none"
    };
    Some(SourceInfo {
        uri: uri.to_string(),
        width: img.width,
        height: img.height,
        bands: img.samples_per_pixel,
        dtype: img.dtype.name(),
        crs: crs.map(|c| CrsInfo {
            epsg: c.epsg,
            proj4: c.proj4.clone(),
            notes: georef.map(|g| g.crs_notes.clone()).unwrap_or_default(),
        }),
        geotransform: georef.map(|g| g.transform.0),
        bounds,
        bounds_wgs84,
        nodata: header.nodata,
        overviews: header
            .images
            .iter()
            .skip(1)
            .map(|i| [i.width, i.height])
            .collect(),
        block_size: [img.block_width, img.block_height],
        tiled: img.tiled,
        compression: match img.compression {
            Compression::None => "none",
            Compression::Deflate => "deflate",
            Compression::Lzw => "lzw",
            Compression::PackBits => "packbits",
            Compression::Zstd => "zstd",
            Compression::Jpeg => "jpeg",
            Compression::Webp => "webp",
        },
        predictor: match img.predictor {
            Predictor::None => "none",
            Predictor::Horizontal => "horizontal",
            Predictor::FloatingPoint => "floating-point",
        },
        interleave: match img.planar {
            kiln_cog::Planar::Chunky => "pixel",
            kiln_cog::Planar::Separate => "band",
        },
        photometric: format!("{:?}", img.photometric).to_lowercase(),
        mask,
        has_palette: img.palette.is_some(),
        byte_order: if header.big_endian {
            "big-endian"
        } else {
            "little-endian"
        },
        bigtiff: header.bigtiff,
        is_cog: cog_problems.is_empty(),
        cog_problems,
    })
}

/// Bounds in WGS84 from points densified along the edges (21 per edge), as GDAL's
/// `transform_bounds` does, so curved edges are not cut off.
pub fn wgs84_bounds(b: &GeoBounds, crs: &Crs) -> Option<GeoBounds> {
    transform_bounds(b, crs, &Crs::wgs84())
}

/// Bounds in `dst` of bounds in `src`, from points densified along the edges (21 per edge);
/// points that do not transform (e.g. the poles in Web Mercator) are left out.
pub fn transform_bounds(b: &GeoBounds, src: &Crs, dst: &Crs) -> Option<GeoBounds> {
    let t = Transformer::new(src, dst).ok()?;
    let n = 21;
    let mut xs = Vec::with_capacity(4 * n);
    let mut ys = Vec::with_capacity(4 * n);
    for i in 0..n {
        let f = i as f64 / (n - 1) as f64;
        let x = b.west + f * b.width();
        let y = b.south + f * b.height();
        xs.extend([x, x, b.west, b.east]);
        ys.extend([b.south, b.north, y, y]);
    }
    t.transform_points(&mut xs, &mut ys).ok()?;
    let mut out = GeoBounds {
        west: f64::INFINITY,
        south: f64::INFINITY,
        east: f64::NEG_INFINITY,
        north: f64::NEG_INFINITY,
    };
    for (x, y) in xs.iter().zip(&ys) {
        if x.is_finite() && y.is_finite() {
            out.west = out.west.min(*x);
            out.east = out.east.max(*x);
            out.south = out.south.min(*y);
            out.north = out.north.max(*y);
        }
    }
    out.west.is_finite().then_some(out)
}
