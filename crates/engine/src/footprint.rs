//! The footprint of a dataset's valid data: a simplified GeoJSON MultiPolygon in WGS 84.
//!
//! The validity mask (the tile reader's rule) is read at a coarse level, the finest overview
//! whose long side is at most [`FootprintOptions::max_side`], or the coarsest level decimated
//! by nearest sampling when no overview is that small. Cell boundaries between valid and
//! invalid cells are linked into rings (valid on the right in image coordinates, so exteriors
//! come out counter-clockwise in lon/lat and holes clockwise, as RFC 7946 asks), holes are
//! given to the smallest exterior containing them, rings are simplified with Douglas–Peucker
//! (tolerance one coarse cell, doubled until the vertex budget holds), long edges densified so
//! they bend with the reprojection, and vertices transformed to lon/lat.

use std::collections::HashMap;
use std::sync::Arc;

use kiln_core::crs::Transformer;
use kiln_core::warp::PixelWindow;
use kiln_core::{Crs, GeoBounds, GeoTransform, Raster};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::info::wgs84_bounds;
use crate::stats::scan_level;
use crate::{Engine, EngineError, OpenSource};

/// Footprint settings.
#[derive(Debug, Clone)]
pub struct FootprintOptions {
    /// Long side of the coarse mask, in cells.
    pub max_side: usize,
    /// Most vertices of the output (all rings).
    pub max_vertices: usize,
}

impl Default for FootprintOptions {
    fn default() -> Self {
        Self {
            max_side: 1024,
            max_vertices: 2000,
        }
    }
}

/// A dataset footprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Footprint {
    /// GeoJSON `MultiPolygon` in lon/lat (WGS 84); no polygons when nothing is valid.
    pub geojson: Value,
    /// Image level the mask was read from.
    pub level: usize,
    /// Size of the coarse mask, in cells.
    pub grid: (usize, usize),
    /// Fraction of valid cells in the coarse mask.
    pub valid_fraction: f64,
    /// Simplification tolerance used, in coarse cells.
    pub tolerance: f64,
    pub vertices: usize,
}

type Pt = (f64, f64);

/// Computes the footprint of `source` (see the module docs).
pub async fn compute_footprint(
    engine: &Engine,
    source: &Arc<OpenSource>,
    opts: &FootprintOptions,
) -> Result<Footprint, EngineError> {
    let header = source.header().clone();
    let max_side = opts.max_side.max(2);
    let sizes: Vec<(usize, usize)> = header
        .images
        .iter()
        .map(|i| (i.width as usize, i.height as usize))
        .collect();
    let level = sizes
        .iter()
        .position(|&(w, h)| w.max(h) <= max_side)
        .unwrap_or(sizes.len().saturating_sub(1));
    let &(lw, lh) = sizes.get(level).ok_or_else(|| EngineError::BadSource {
        uri: source.uri().to_string(),
        reason: "no image".into(),
        cause: None,
    })?;
    let step = lw.max(lh).div_ceil(max_side).max(1);
    let (gw, gh) = (lw.div_ceil(step), lh.div_ceil(step));
    let acc = CoarseMask {
        step,
        level_w: lw,
        level_h: lh,
        width: gw,
        cells: vec![0u8; gw * gh],
    };
    let bands = source.default_bands();
    let (mask, _) = scan_level(engine, source, level, &bands, acc, CoarseMask::add).await?;
    let (full_w, full_h) = sizes.first().copied().unwrap_or((lw, lh));
    // The coarse grid's transform: the level's, scaled by the decimation step.
    let grid_tf = {
        let t = source.transform().scaled(full_w, full_h, lw, lh).0;
        let s = step as f64;
        GeoTransform([t[0], t[1] * s, t[2] * s, t[3], t[4] * s, t[5] * s])
    };
    let crs = source.crs().clone();
    let uri = source.uri().to_string();
    // Reprojecting the raster's curved edge may put a vertex a hair outside the dataset's
    // (densified) WGS 84 bounds; vertices are clamped to them.
    let bounds = wgs84_bounds(&source.transform().bounds(full_w, full_h), &crs);
    let opts = opts.clone();
    // The last row and column of cells may reach past the image; vertices are clamped to it.
    let extent = (lw as f64 / step as f64, lh as f64 / step as f64);
    engine
        .pool()
        .run(move || {
            build(
                &mask.cells,
                (gw, gh),
                extent,
                &grid_tf,
                &crs,
                bounds,
                &opts,
                &uri,
                level,
            )
        })
        .await?
}

/// The decimated validity mask, filled window by window.
struct CoarseMask {
    step: usize,
    level_w: usize,
    level_h: usize,
    width: usize,
    cells: Vec<u8>,
}

impl CoarseMask {
    /// Samples each cell at the level pixel nearest its centre.
    fn add(&mut self, windows: &[PixelWindow], rasters: &[Raster]) {
        let s = self.step;
        for (win, r) in windows.iter().zip(rasters) {
            // First cells whose sample pixel can fall in this window.
            let cy0 = win.row_off.saturating_sub(s / 2).div_ceil(s);
            let cx0 = win.col_off.saturating_sub(s / 2).div_ceil(s);
            for cy in cy0.. {
                let y = (cy * s + s / 2).min(self.level_h.saturating_sub(1));
                if y >= win.row_off + win.height || cy * self.width >= self.cells.len() {
                    break;
                }
                let Some(wy) = y.checked_sub(win.row_off) else {
                    continue;
                };
                for cx in cx0..self.width {
                    let x = (cx * s + s / 2).min(self.level_w.saturating_sub(1));
                    if x >= win.col_off + win.width {
                        break;
                    }
                    let Some(wx) = x.checked_sub(win.col_off) else {
                        continue;
                    };
                    let m = r.mask().get(wy * win.width + wx).copied().unwrap_or(0);
                    if let Some(c) = self.cells.get_mut(cy * self.width + cx) {
                        *c = u8::from(m != 0);
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    cells: &[u8],
    (w, h): (usize, usize),
    (max_x, max_y): (f64, f64),
    tf: &GeoTransform,
    crs: &Crs,
    bounds: Option<GeoBounds>,
    opts: &FootprintOptions,
    uri: &str,
    level: usize,
) -> Result<Footprint, EngineError> {
    let valid = cells.iter().filter(|&&c| c != 0).count();
    let valid_fraction = if cells.is_empty() {
        0.0
    } else {
        valid as f64 / cells.len() as f64
    };
    let polys = trace(cells, w, h);
    let to_wgs =
        Transformer::new(crs, &Crs::wgs84()).map_err(|e| EngineError::from_core(uri, e))?;
    let densify_step = (w.max(h) as f64 / 32.0).max(1.0);
    let mut tolerance = 1.0;
    let mut simplified;
    loop {
        simplified = simplify_all(&polys, tolerance, densify_step);
        let n: usize = simplified.iter().flatten().map(Vec::len).sum();
        if n <= opts.max_vertices || tolerance > 1e6 {
            break;
        }
        tolerance *= 2.0;
    }
    let mut vertices = 0;
    let mut out = Vec::new();
    for poly in simplified {
        let mut rings = Vec::new();
        for ring in poly {
            let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = ring
                .iter()
                .map(|&(x, y)| tf.apply(x.clamp(0.0, max_x), y.clamp(0.0, max_y)))
                .unzip();
            to_wgs
                .transform_points(&mut xs, &mut ys)
                .map_err(|e| EngineError::from_core(uri, e))?;
            let mut pts: Vec<Pt> = xs
                .into_iter()
                .zip(ys)
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|(x, y)| match &bounds {
                    Some(b) => (x.clamp(b.west, b.east), y.clamp(b.south, b.north)),
                    None => (x, y),
                })
                .collect();
            // RFC 7946: exteriors counter-clockwise, holes clockwise, in lon/lat (the
            // geotransform usually flips y, which flips the orientation traced in cells).
            let exterior = rings.is_empty();
            if (signed_area(&pts) > 0.0) != exterior {
                pts.reverse();
            }
            let mut coords: Vec<Value> = pts.iter().map(|(x, y)| json!([x, y])).collect();
            if coords.len() < 3 {
                continue;
            }
            vertices += coords.len();
            if let Some(first) = coords.first().cloned() {
                coords.push(first);
            }
            rings.push(Value::Array(coords));
        }
        if !rings.is_empty() {
            out.push(Value::Array(rings));
        }
    }
    Ok(Footprint {
        geojson: json!({"type": "MultiPolygon", "coordinates": out}),
        level,
        grid: (w, h),
        valid_fraction,
        tolerance,
        vertices,
    })
}

/// Polygons (exterior then holes) of the valid cells, in cell-corner coordinates.
fn trace(cells: &[u8], w: usize, h: usize) -> Vec<Vec<Vec<Pt>>> {
    let at = |x: i64, y: i64| -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && cells
                .get(y as usize * w + x as usize)
                .is_some_and(|&c| c != 0)
    };
    // Directed boundary edges, the valid cell on the right (image coordinates, y down).
    let mut out_edges: HashMap<(i64, i64), Vec<(i64, i64)>> = HashMap::new();
    let mut count = 0usize;
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            if !at(x, y) {
                continue;
            }
            let mut add = |a: (i64, i64), b: (i64, i64)| {
                out_edges.entry(a).or_default().push(b);
                count += 1;
            };
            if !at(x, y - 1) {
                add((x, y), (x + 1, y));
            }
            if !at(x + 1, y) {
                add((x + 1, y), (x + 1, y + 1));
            }
            if !at(x, y + 1) {
                add((x + 1, y + 1), (x, y + 1));
            }
            if !at(x - 1, y) {
                add((x, y + 1), (x, y));
            }
        }
    }
    let mut starts: Vec<(i64, i64)> = out_edges.keys().copied().collect();
    starts.sort_unstable_by_key(|&(x, y)| (y, x));
    let mut rings: Vec<Vec<(i64, i64)>> = Vec::new();
    for s in starts {
        while let Some(first) = out_edges.get_mut(&s).and_then(Vec::pop) {
            let mut ring = vec![s];
            let (mut prev, mut cur) = (s, first);
            let mut guard = 0usize;
            while cur != s && guard <= count {
                guard += 1;
                ring.push(cur);
                let d = (cur.0 - prev.0, cur.1 - prev.1);
                let Some(nexts) = out_edges.get_mut(&cur) else {
                    break;
                };
                // At a saddle, turn right first: diagonal neighbours stay separate rings.
                let prefer = [(-d.1, d.0), d, (d.1, -d.0)];
                let pick = prefer.iter().find_map(|dir| {
                    nexts
                        .iter()
                        .position(|n| (n.0 - cur.0, n.1 - cur.1) == *dir)
                });
                let Some(i) = pick.or(if nexts.is_empty() { None } else { Some(0) }) else {
                    break;
                };
                let next = nexts.swap_remove(i);
                prev = cur;
                cur = next;
            }
            rings.push(corners(&ring));
        }
    }
    let rings: Vec<Vec<Pt>> = rings
        .into_iter()
        .filter(|r| r.len() >= 4)
        .map(|r| r.into_iter().map(|(x, y)| (x as f64, y as f64)).collect())
        .collect();
    let (outers, holes): (Vec<Vec<Pt>>, Vec<Vec<Pt>>) =
        rings.into_iter().partition(|r| signed_area(r) > 0.0);
    let mut polys: Vec<Vec<Vec<Pt>>> = outers.into_iter().map(|o| vec![o]).collect();
    for hole in holes {
        // A point just inside a valid cell next to the hole's first edge.
        let (Some(&a), Some(&b)) = (hole.first(), hole.get(1)) else {
            continue;
        };
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len = (dx * dx + dy * dy).sqrt().max(1e-9);
        let p = (
            (a.0 + b.0) / 2.0 - dy / len * 0.25,
            (a.1 + b.1) / 2.0 + dx / len * 0.25,
        );
        let owner = polys
            .iter()
            .enumerate()
            .filter(|(_, poly)| poly.first().is_some_and(|o| contains(o, p)))
            .min_by(|x, y| {
                let ax = x.1.first().map_or(0.0, |o| signed_area(o));
                let ay = y.1.first().map_or(0.0, |o| signed_area(o));
                ax.total_cmp(&ay)
            })
            .map(|(i, _)| i);
        if let Some(poly) = owner.and_then(|i| polys.get_mut(i)) {
            poly.push(hole);
        }
    }
    polys
}

/// Keeps only the ring's corners (drops points in the middle of straight runs).
fn corners(ring: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let n = ring.len();
    (0..n)
        .filter_map(|i| {
            let p = ring[(i + n - 1) % n];
            let c = ring[i];
            let q = ring[(i + 1) % n];
            let cross = (c.0 - p.0) * (q.1 - c.1) - (c.1 - p.1) * (q.0 - c.0);
            (cross != 0).then_some(c)
        })
        .collect()
}

/// Shoelace area; positive for counter-clockwise rings in y-up axes (clockwise on a y-down
/// screen, the orientation exteriors are traced with).
fn signed_area(r: &[Pt]) -> f64 {
    let n = r.len();
    let mut s = 0.0;
    for i in 0..n {
        let (a, b) = (r[i], r[(i + 1) % n]);
        s += a.0 * b.1 - b.0 * a.1;
    }
    s / 2.0
}

fn contains(r: &[Pt], p: Pt) -> bool {
    let n = r.len();
    let mut inside = false;
    let mut j = n.saturating_sub(1);
    for i in 0..n {
        let (a, b) = (r[i], r[j]);
        if (a.1 > p.1) != (b.1 > p.1) && p.0 < (b.0 - a.0) * (p.1 - a.1) / (b.1 - a.1) + a.0 {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn simplify_all(polys: &[Vec<Vec<Pt>>], tol: f64, densify_step: f64) -> Vec<Vec<Vec<Pt>>> {
    polys
        .iter()
        .filter_map(|poly| {
            let mut rings: Vec<Vec<Pt>> = Vec::new();
            for (i, ring) in poly.iter().enumerate() {
                let s = simplify_ring(ring, tol);
                if s.len() < 3 || signed_area(&s).abs() < tol * tol {
                    if i == 0 {
                        return None;
                    }
                    continue;
                }
                rings.push(densify(&s, densify_step));
            }
            Some(rings)
        })
        .collect()
}

/// Douglas–Peucker on a closed ring, split at its first point and the point farthest from it.
fn simplify_ring(ring: &[Pt], tol: f64) -> Vec<Pt> {
    let Some(&a) = ring.first() else {
        return Vec::new();
    };
    let far = (0..ring.len())
        .max_by(|&i, &j| dist2(ring[i], a).total_cmp(&dist2(ring[j], a)))
        .unwrap_or(0);
    if far == 0 {
        return Vec::new();
    }
    let mut closed: Vec<Pt> = ring.to_vec();
    closed.push(a);
    let mut keep = vec![false; closed.len()];
    keep[0] = true;
    keep[far] = true;
    let last = closed.len() - 1;
    keep[last] = true;
    dp(&closed, 0, far, tol, &mut keep);
    dp(&closed, far, last, tol, &mut keep);
    closed
        .iter()
        .zip(&keep)
        .take(last)
        .filter(|(_, &k)| k)
        .map(|(p, _)| *p)
        .collect()
}

fn dp(pts: &[Pt], i: usize, j: usize, tol: f64, keep: &mut [bool]) {
    // An explicit stack: rings can have many thousands of points.
    let mut stack = vec![(i, j)];
    while let Some((i, j)) = stack.pop() {
        if j <= i + 1 {
            continue;
        }
        let (a, b) = (pts[i], pts[j]);
        let mut best = (0.0, i);
        for (k, &p) in pts.iter().enumerate().take(j).skip(i + 1) {
            let d = seg_dist(p, a, b);
            if d > best.0 {
                best = (d, k);
            }
        }
        if best.0 > tol {
            keep[best.1] = true;
            stack.push((i, best.1));
            stack.push((best.1, j));
        }
    }
}

fn dist2(a: Pt, b: Pt) -> f64 {
    (a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)
}

fn seg_dist(p: Pt, a: Pt, b: Pt) -> f64 {
    let l2 = dist2(a, b);
    if l2 == 0.0 {
        return dist2(p, a).sqrt();
    }
    let t = (((p.0 - a.0) * (b.0 - a.0) + (p.1 - a.1) * (b.1 - a.1)) / l2).clamp(0.0, 1.0);
    dist2(p, (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1))).sqrt()
}

fn densify(ring: &[Pt], step: f64) -> Vec<Pt> {
    let n = ring.len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (a, b) = (ring[i], ring[(i + 1) % n]);
        out.push(a);
        let len = dist2(a, b).sqrt();
        let pieces = (len / step).ceil().min(1e4) as usize;
        for k in 1..pieces {
            let t = k as f64 / pieces as f64;
            out.push((a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_ring_of_cells_has_one_hole() {
        // 4x4 valid square with the middle 2x2 invalid.
        let mut cells = vec![1u8; 16];
        for i in [5, 6, 9, 10] {
            cells[i] = 0;
        }
        let polys = trace(&cells, 4, 4);
        assert_eq!(polys.len(), 1);
        assert_eq!(polys[0].len(), 2);
        assert_eq!(signed_area(&polys[0][0]), 16.0);
        assert_eq!(signed_area(&polys[0][1]), -4.0);
    }

    #[test]
    fn diagonal_cells_stay_separate_polygons() {
        let cells = vec![1u8, 0, 0, 1];
        let polys = trace(&cells, 2, 2);
        assert_eq!(polys.len(), 2);
        assert!(polys
            .iter()
            .all(|p| p.len() == 1 && signed_area(&p[0]) == 1.0));
    }

    #[test]
    fn simplification_keeps_a_staircase_within_tolerance() {
        // A 40-step staircase: its corners are within 1 cell of the diagonal.
        let mut cells = vec![0u8; 40 * 40];
        for y in 0..40 {
            for x in 0..=y {
                cells[y * 40 + x] = 1;
            }
        }
        let polys = trace(&cells, 40, 40);
        assert_eq!(polys.len(), 1);
        let s = simplify_ring(&polys[0][0], 1.0);
        assert!(s.len() <= 6, "{} points left", s.len());
        let area = signed_area(&s);
        assert!((area - 820.0).abs() <= 40.0, "area {area}");
    }
}
