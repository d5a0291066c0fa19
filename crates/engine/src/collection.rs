//! Collections: many sources composited by precedence into one layer (Mapzen's terrain tiles,
//! marblecutter). The catalog stores the members with their settings and footprints; this
//! module turns them into a [`CollectionIndex`] (an R-tree of footprints) that picks, for each
//! tile, the sources that can contribute to it, in the order they are composited.
//!
//! Order: priority (higher first), then native resolution (finer first), then acquisition
//! date (newer first, undated last), then the catalog's member order. A source is a candidate
//! when its zoom range allows the tile's zoom and its valid-data footprint intersects the
//! tile. Footprints are simplified at ingest (Douglas–Peucker, one coarse mask cell), so the
//! test grows the tile by [`FOOTPRINT_MARGIN_CELLS`] coarse cells of the source: an edge tile
//! may read a source that turns out to have no valid pixel there, but never skips one that
//! has.

use std::cmp::Ordering;
use std::sync::Arc;

use geo::{Coord, Intersects, LineString, MultiPolygon, Polygon, Rect};
use kiln_catalog::DatasetMetadata;
use kiln_core::crs::Transformer;
use kiln_core::{Crs, GeoBounds};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};
use serde_json::Value;

use kiln_core::crs::web_mercator_to_lonlat;
use kiln_core::warp::{GridSpec, Resampling};

use crate::request::{Area, Layer, Product, RenderRequest};
use crate::{Engine, EngineError, OpenSource};

/// Coarse footprint cells (the ingest footprint's mask resolution) by which a tile is grown
/// before it is tested against a footprint.
pub const FOOTPRINT_MARGIN_CELLS: f64 = 2.0;
/// The long side of the coarse mask ingest computes footprints on
/// ([`crate::FootprintOptions::default`]).
const FOOTPRINT_MAX_SIDE: usize = 1024;

/// One member of a collection as the catalog describes it.
#[derive(Debug, Clone)]
pub struct MemberInput {
    /// How the member is named in answers (`/collections/{name}`, the sources header).
    pub label: String,
    pub uri: String,
    pub metadata: DatasetMetadata,
    pub priority: i32,
    pub min_zoom: Option<u8>,
    pub max_zoom: Option<u8>,
    /// ISO date `YYYY-MM-DD` (sorts as text).
    pub acquired: Option<String>,
    /// Replaces the file's nodata value (SRTM's −32768 voids in a file that does not say so).
    pub nodata: Option<f64>,
}

/// A member ready to render.
#[derive(Debug, Clone)]
pub struct CollectionSource {
    pub label: String,
    pub source: Arc<OpenSource>,
    pub priority: i32,
    pub min_zoom: Option<u8>,
    pub max_zoom: Option<u8>,
    pub acquired: Option<String>,
    /// Ground size of one full-resolution pixel at the image centre, metres (geometric mean
    /// of its width and height).
    pub resolution_m: f64,
    pub bounds: GeoBounds,
    /// The valid-data footprint (WGS 84) as stored by ingest.
    pub footprint: Value,
    shape: MultiPolygon<f64>,
    /// Degrees the tile is grown by before the footprint test.
    margin_deg: f64,
}

impl CollectionSource {
    /// Whether the member's zoom range includes `zoom` (`None`: any zoom).
    pub fn allows_zoom(&self, zoom: Option<u8>) -> bool {
        zoom.is_none_or(|z| {
            self.min_zoom.is_none_or(|lo| z >= lo) && self.max_zoom.is_none_or(|hi| z <= hi)
        })
    }
}

/// The sources of one collection in composite order, with an R-tree over their footprints.
#[derive(Debug)]
pub struct CollectionIndex {
    name: String,
    sources: Vec<CollectionSource>,
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
    /// Members left out, with why (no metadata yet, nothing valid, unreadable header).
    skipped: Vec<(String, String)>,
    /// Seam blending width of the collection's renders, pixels (0: off).
    blend_px: u32,
}

impl CollectionIndex {
    /// Opens every member (from the header stored in its metadata when there is one: no
    /// bytes read) and indexes its footprint. A member that cannot be used is listed in
    /// [`Self::skipped`] rather than failing the collection.
    pub async fn build(
        engine: &Engine,
        name: &str,
        members: Vec<MemberInput>,
    ) -> Result<Self, EngineError> {
        let mut opened = Vec::with_capacity(members.len());
        let mut skipped = Vec::new();
        for m in members {
            match open_member(engine, &m).await {
                Ok(source) => opened.push((m, source)),
                Err(reason) => skipped.push((m.label, reason)),
            }
        }
        Ok(Self::from_sources(engine, name, opened, skipped))
    }

    /// Indexes members whose sources the caller opened (any [`kiln_storage::ByteSource`]).
    /// `skipped` lists members already left out, with why.
    pub fn from_sources(
        engine: &Engine,
        name: &str,
        members: Vec<(MemberInput, Arc<OpenSource>)>,
        mut skipped: Vec<(String, String)>,
    ) -> Self {
        let mut sources = Vec::with_capacity(members.len());
        for (order, (m, source)) in members.into_iter().enumerate() {
            match member_source(engine, &m, source) {
                Ok(s) => sources.push((order, s)),
                Err(reason) => skipped.push((m.label, reason)),
            }
        }
        for (label, reason) in &skipped {
            tracing::warn!(collection = name, member = %label, %reason, "collection member left out");
        }
        sources.sort_by(|(oa, a), (ob, b)| precedence(a, b).then(oa.cmp(ob)));
        let sources: Vec<CollectionSource> = sources.into_iter().map(|(_, s)| s).collect();
        let tree = RTree::bulk_load(
            sources
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let m = s.margin_deg;
                    GeomWithData::new(
                        Rectangle::from_corners(
                            [s.bounds.west - m, s.bounds.south - m],
                            [s.bounds.east + m, s.bounds.north + m],
                        ),
                        i,
                    )
                })
                .collect(),
        );
        Self {
            name: name.to_owned(),
            sources,
            tree,
            skipped,
            blend_px: 0,
        }
    }

    /// Blends the hand-over between sources over `px` pixels (0: first valid wins exactly).
    pub fn with_blend(mut self, px: u32) -> Self {
        self.blend_px = px.min(crate::render::MAX_BUFFER_PX);
        self
    }

    pub fn blend_px(&self) -> u32 {
        self.blend_px
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every usable member, in composite order.
    pub fn sources(&self) -> &[CollectionSource] {
        &self.sources
    }

    pub fn skipped(&self) -> &[(String, String)] {
        &self.skipped
    }

    /// Indices (into [`Self::sources`]) of the members that may have valid data in `area`
    /// (WGS 84) at `zoom` (`None`: any zoom), in composite order.
    pub fn candidates(&self, area: &GeoBounds, zoom: Option<u8>) -> Vec<usize> {
        let envelope = AABB::from_corners([area.west, area.south], [area.east, area.north]);
        let mut hits: Vec<usize> = self
            .tree
            .locate_in_envelope_intersecting(&envelope)
            .map(|g| g.data)
            .filter(|&i| {
                let s = &self.sources[i];
                let m = s.margin_deg;
                let rect = Rect::new(
                    Coord {
                        x: area.west - m,
                        y: area.south - m,
                    },
                    Coord {
                        x: area.east + m,
                        y: area.north + m,
                    },
                );
                s.allows_zoom(zoom) && s.shape.intersects(&rect)
            })
            .collect();
        hits.sort_unstable();
        hits
    }

    /// A render layer of the sources `indices` (from [`Self::candidates`]), band 1.
    pub fn layer(&self, indices: &[usize]) -> Layer {
        Layer {
            sources: indices
                .iter()
                .filter_map(|&i| self.sources.get(i))
                .map(|s| s.source.clone())
                .collect(),
            bands: Some(vec![1]),
            stats: None,
            blend_px: self.blend_px,
        }
    }
}

/// A collection render: the request (its first layer holds the candidates) and which
/// collection sources the layer's sources are.
#[derive(Debug, Clone)]
pub struct CollectionRender {
    pub request: RenderRequest,
    /// `candidates[i]` is the index in [`CollectionIndex::sources`] of the layer's source `i`.
    pub candidates: Vec<usize>,
}

impl CollectionIndex {
    /// The render request of `product` over `area` from the members that can contribute to
    /// it (their footprints touch the area, grown by the product's margin, and their zoom
    /// range allows the tile's zoom); `None` when no member can.
    pub fn render_request(
        &self,
        engine: &Engine,
        area: Area,
        resampling: Resampling,
        product: Product,
    ) -> Result<Option<CollectionRender>, EngineError> {
        let zoom = match area {
            Area::Tile { tile, .. } => Some(tile.z()),
            Area::Grid(_) => None,
        };
        let probe = RenderRequest {
            layers: Vec::new(),
            area,
            resampling,
            product,
        };
        // Blending reads the sources around the area too.
        let grid = crate::render::grow(&engine.read_grid_of(&probe)?, self.blend_px);
        let bounds = grid_lonlat_bounds(&grid);
        let candidates = self.candidates(&bounds, zoom);
        if candidates.is_empty() {
            return Ok(None);
        }
        let request = RenderRequest {
            layers: vec![self.layer(&candidates)],
            ..probe
        };
        Ok(Some(CollectionRender {
            request,
            candidates,
        }))
    }

    /// The height at `lon`, `lat` and the index of the member that gave it (the first valid
    /// one in composite order, by the tiles' nearest sampling); `zoom` applies the members'
    /// zoom ranges (`None`: every member).
    pub async fn sample_point(
        &self,
        engine: &Engine,
        lon: f64,
        lat: f64,
        zoom: Option<u8>,
    ) -> Result<Option<(f64, usize)>, EngineError> {
        let area = GeoBounds {
            west: lon,
            south: lat,
            east: lon,
            north: lat,
        };
        let candidates = self.candidates(&area, zoom);
        if candidates.is_empty() {
            return Ok(None);
        }
        let sources: Vec<Arc<OpenSource>> = candidates
            .iter()
            .map(|&i| self.sources[i].source.clone())
            .collect();
        let hit = engine
            .sample_point_traced(&sources, lon, lat, Some(vec![1]))
            .await?;
        Ok(hit.and_then(|(values, which)| Some((*values.first()?, *candidates.get(which)?))))
    }
}

/// The WGS 84 bounds of a Web Mercator grid (exact: the projection keeps meridians and
/// parallels straight).
pub fn grid_lonlat_bounds(grid: &GridSpec) -> GeoBounds {
    let (x0, y0) = grid.transform.apply(0.0, 0.0);
    let (x1, y1) = grid.transform.apply(grid.width as f64, grid.height as f64);
    let ll = |x: f64, y: f64| web_mercator_to_lonlat(x, y).unwrap_or((0.0, 0.0));
    let (w, n) = ll(x0.min(x1), y0.max(y1));
    let (e, s) = ll(x0.max(x1), y0.min(y1));
    GeoBounds {
        west: w.max(-180.0),
        south: s,
        east: e.min(180.0),
        north: n,
    }
}

/// Composite order of two members: `Less` = `a` is composited first (wins).
fn precedence(a: &CollectionSource, b: &CollectionSource) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then(
            a.resolution_m
                .partial_cmp(&b.resolution_m)
                .unwrap_or(Ordering::Equal),
        )
        .then_with(|| match (&a.acquired, &b.acquired) {
            (Some(x), Some(y)) => y.cmp(x),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
}

async fn open_member(engine: &Engine, m: &MemberInput) -> Result<Arc<OpenSource>, String> {
    let file = kiln_storage::open(&m.uri)
        .await
        .map_err(|e| format!("cannot open its source: {e}"))?;
    match crate::ingest::header_from_json(&m.metadata.header) {
        Ok(h) if !m.metadata.header.is_null() => engine.open_with_header(file, h).await,
        _ => engine.open(file).await,
    }
    .map_err(|e| e.to_string())
}

fn member_source(
    engine: &Engine,
    m: &MemberInput,
    source: Arc<OpenSource>,
) -> Result<CollectionSource, String> {
    let shape = footprint_shape(&m.metadata.footprint)?;
    if shape.0.is_empty() {
        return Err("its footprint is empty (no valid pixel)".into());
    }
    let source = match m.nodata {
        Some(nd) => engine.with_nodata(&source, nd),
        None => source,
    };
    let (resolution_m, cell_deg) = pixel_size(&source)
        .ok_or_else(|| "its pixel size cannot be measured on the ground".to_string())?;
    Ok(CollectionSource {
        label: m.label.clone(),
        source,
        priority: m.priority,
        min_zoom: m.min_zoom,
        max_zoom: m.max_zoom,
        acquired: m.acquired.clone(),
        resolution_m,
        bounds: m.metadata.bounds_wgs84,
        footprint: m.metadata.footprint.clone(),
        shape,
        margin_deg: cell_deg * FOOTPRINT_MARGIN_CELLS,
    })
}

/// The ground size of a full-resolution pixel at the image centre (metres, geometric mean of
/// width and height), and the size in degrees of the coarse cell ingest drew the footprint
/// on (the larger of its two sides).
fn pixel_size(src: &OpenSource) -> Option<(f64, f64)> {
    let full = src.header().images.first()?;
    let (w, h) = (f64::from(full.width), f64::from(full.height));
    let t = src.transform();
    let to_ll = Transformer::new(src.crs(), &Crs::wgs84()).ok()?;
    let at = |col: f64, row: f64| {
        let (x, y) = t.apply(col, row);
        to_ll.transform_point(x, y)
    };
    let (cx, cy) = (w / 2.0, h / 2.0);
    let c = at(cx, cy)?;
    let right = at(cx + 1.0, cy)?;
    let down = at(cx, cy + 1.0)?;
    let (dx, dy) = (haversine_m(c, right), haversine_m(c, down));
    let resolution = (dx * dy).sqrt();
    if !(resolution.is_finite() && resolution > 0.0) {
        return None;
    }
    // The level compute_footprint reads: the first whose long side fits, else the coarsest.
    let sizes: Vec<(u32, u32)> = src
        .header()
        .images
        .iter()
        .map(|i| (i.width, i.height))
        .collect();
    let (lw, lh) = sizes
        .iter()
        .copied()
        .find(|&(a, b)| a.max(b) as usize <= FOOTPRINT_MAX_SIDE)
        .or_else(|| sizes.last().copied())?;
    let coarse = f64::from(full.width) / f64::from(lw.max(1));
    let coarse_y = f64::from(full.height) / f64::from(lh.max(1));
    // Degrees of one full-resolution pixel, then of one coarse cell (a further factor for
    // footprints decimated below the coarsest overview: the cell is at most 1/1024 of the
    // image's long side).
    let deg_x = (right.0 - c.0).abs().max((right.1 - c.1).abs());
    let deg_y = (down.0 - c.0).abs().max((down.1 - c.1).abs());
    let long_side = w.max(h);
    let decimated = (long_side / coarse.max(coarse_y) / FOOTPRINT_MAX_SIDE as f64).max(1.0);
    let cell = (deg_x * coarse).max(deg_y * coarse_y) * decimated;
    Some((resolution, cell))
}

/// Great-circle distance on the WGS 84 mean sphere, metres.
fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    const R: f64 = 6_371_008.8;
    let (la1, la2) = (a.1.to_radians(), b.1.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.0 - a.0).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().min(1.0).asin()
}

/// A GeoJSON `Polygon` or `MultiPolygon` (lon/lat) as a geo shape.
fn footprint_shape(geojson: &Value) -> Result<MultiPolygon<f64>, String> {
    let kind = geojson.get("type").and_then(Value::as_str).unwrap_or("");
    let coords = geojson
        .get("coordinates")
        .ok_or_else(|| format!("its footprint ({kind}) has no coordinates"))?;
    let polygons = match kind {
        "Polygon" => vec![polygon(coords)?],
        "MultiPolygon" => coords
            .as_array()
            .ok_or("its footprint's coordinates are not an array")?
            .iter()
            .map(polygon)
            .collect::<Result<_, _>>()?,
        other => return Err(format!("its footprint is a {other:?}, not a polygon")),
    };
    Ok(MultiPolygon(polygons))
}

fn polygon(rings: &Value) -> Result<Polygon<f64>, String> {
    let rings = rings
        .as_array()
        .ok_or("a footprint polygon is not an array of rings")?;
    let mut parsed = rings.iter().map(ring);
    let exterior = parsed.next().ok_or("a footprint polygon has no ring")??;
    let interiors = parsed.collect::<Result<Vec<_>, _>>()?;
    Ok(Polygon::new(exterior, interiors))
}

fn ring(points: &Value) -> Result<LineString<f64>, String> {
    points
        .as_array()
        .ok_or("a footprint ring is not an array")?
        .iter()
        .map(|p| {
            match (
                p.get(0).and_then(Value::as_f64),
                p.get(1).and_then(Value::as_f64),
            ) {
                (Some(x), Some(y)) if x.is_finite() && y.is_finite() => Ok(Coord { x, y }),
                _ => Err(format!("a footprint position is not two numbers: {p}")),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(LineString::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn footprints_parse_and_intersect_like_their_rings() {
        let shape = footprint_shape(&json!({
            "type": "MultiPolygon",
            "coordinates": [[[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]],
                             [[2.0, 2.0], [2.0, 8.0], [8.0, 8.0], [8.0, 2.0], [2.0, 2.0]]]]
        }))
        .unwrap();
        let rect =
            |w: f64, s: f64, e: f64, n: f64| Rect::new(Coord { x: w, y: s }, Coord { x: e, y: n });
        assert!(shape.intersects(&rect(9.0, 9.0, 11.0, 11.0)));
        // Inside the hole: no valid data there.
        assert!(!shape.intersects(&rect(4.0, 4.0, 6.0, 6.0)));
        assert!(!shape.intersects(&rect(20.0, 20.0, 21.0, 21.0)));
        assert!(footprint_shape(&json!({"type": "Point", "coordinates": [0, 0]})).is_err());
        assert!(footprint_shape(&json!({"type": "Polygon", "coordinates": [[[0, "a"]]]})).is_err());
    }

    #[test]
    fn haversine_of_one_degree_of_latitude() {
        // 1° of arc on a sphere of radius R is R·π/180.
        let d = haversine_m((0.0, 0.0), (0.0, 1.0));
        assert!((d - 6_371_008.8 * std::f64::consts::PI / 180.0).abs() < 1e-6);
    }
}
