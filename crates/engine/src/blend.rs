//! Seam blending between the sources of a composite (Mapterhorn smooths the jump where a fine
//! source ends and a coarser one takes over).
//!
//! Each pixel's winner is the first source valid there (as without blending). Where the
//! winner `k` is within `width` pixels of a pixel it does not cover, its height fades into the
//! height of the first later source valid at that pixel: `h = α·h_k + (1 − α)·h_rest`, with
//! `α = d / width` and `d` the distance to the nearest pixel `k` does not cover (a 3-4
//! chamfer distance, in pixels). Pixels `width` or more from any hand-over keep their
//! winner's value exactly, and a pixel no later source covers keeps it too.
//!
//! Distances look only inside the window read, so the caller reads `width` pixels more on
//! every side and crops: a pixel's result then depends only on pixels within `width` of it,
//! never on where the tile was cut, and neighbouring tiles meet without seams.

/// Blends `sources` (heights, masks; all `n` pixels of a `width`×`height` window, in
/// precedence order) over `blend` pixels. Returns the heights, the mask, and which source
/// won each pixel (`u16::MAX`: none).
pub(crate) fn blend(
    sources: &[(Vec<f32>, Vec<u8>)],
    width: usize,
    height: usize,
    blend: u32,
) -> (Vec<f32>, Vec<u8>, Vec<u16>) {
    let n = width * height;
    let mut winner = vec![u16::MAX; n];
    let mut out = vec![0f32; n];
    let mut mask = vec![0u8; n];
    for (k, (h, m)) in sources.iter().enumerate() {
        let k16 = u16::try_from(k).unwrap_or(u16::MAX - 1);
        for p in 0..n {
            if winner[p] == u16::MAX && m[p] != 0 {
                winner[p] = k16;
                out[p] = h[p];
                mask[p] = 255;
            }
        }
    }
    if blend == 0 {
        return (out, mask, winner);
    }
    let cap = 3 * blend;
    for (k, (h, m)) in sources.iter().enumerate() {
        let k16 = u16::try_from(k).unwrap_or(u16::MAX - 1);
        if !winner.contains(&k16) {
            continue;
        }
        let dist = chamfer(m, width, height, cap);
        for p in 0..n {
            if winner[p] != k16 || dist[p] >= cap {
                continue;
            }
            let rest = sources[k + 1..]
                .iter()
                .find(|(_, mm)| mm[p] != 0)
                .map(|(hh, _)| hh[p]);
            if let Some(rest) = rest {
                let alpha = f64::from(dist[p]) / f64::from(cap);
                out[p] = (alpha * f64::from(h[p]) + (1.0 - alpha) * f64::from(rest)) as f32;
            }
        }
    }
    (out, mask, winner)
}

/// 3-4 chamfer distance (×3 pixels) from every pixel to the nearest pixel with `mask == 0`,
/// capped at `cap`.
fn chamfer(mask: &[u8], width: usize, height: usize, cap: u32) -> Vec<u32> {
    let mut d: Vec<u32> = mask.iter().map(|&m| if m == 0 { 0 } else { cap }).collect();
    let at = |r: usize, c: usize| r * width + c;
    for r in 0..height {
        for c in 0..width {
            let mut v = d[at(r, c)];
            if c > 0 {
                v = v.min(d[at(r, c - 1)] + 3);
            }
            if r > 0 {
                v = v.min(d[at(r - 1, c)] + 3);
                if c > 0 {
                    v = v.min(d[at(r - 1, c - 1)] + 4);
                }
                if c + 1 < width {
                    v = v.min(d[at(r - 1, c + 1)] + 4);
                }
            }
            d[at(r, c)] = v;
        }
    }
    for r in (0..height).rev() {
        for c in (0..width).rev() {
            let mut v = d[at(r, c)];
            if c + 1 < width {
                v = v.min(d[at(r, c + 1)] + 3);
            }
            if r + 1 < height {
                v = v.min(d[at(r + 1, c)] + 3);
                if c + 1 < width {
                    v = v.min(d[at(r + 1, c + 1)] + 4);
                }
                if c > 0 {
                    v = v.min(d[at(r + 1, c - 1)] + 4);
                }
            }
            d[at(r, c)] = v;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fine_square_fades_into_the_coarse_ground() {
        // 20×20: a coarse source at 0 m everywhere, a fine source at 100 m in columns 5..15.
        let (w, h) = (20, 20);
        let fine_mask: Vec<u8> = (0..w * h)
            .map(|p| if (5..15).contains(&(p % w)) { 255 } else { 0 })
            .collect();
        let sources = vec![
            (vec![100f32; w * h], fine_mask),
            (vec![0f32; w * h], vec![255u8; w * h]),
        ];
        let (off, _, _) = blend(&sources, w, h, 0);
        let (on, mask, winner) = blend(&sources, w, h, 4);
        assert!(mask.iter().all(|&m| m == 255));
        for r in 0..h {
            // Column 5 is 1 pixel from column 4 (uncovered): α = 3/12.
            assert_eq!(on[r * w + 5], 25.0);
            assert_eq!(on[r * w + 6], 50.0);
            assert_eq!(on[r * w + 7], 75.0);
            // Four pixels or more from the edge: the fine value exactly.
            assert_eq!(on[r * w + 9], 100.0);
            assert_eq!(on[r * w + 14], 25.0);
            // Outside the fine source: the coarse one, untouched.
            assert_eq!(on[r * w + 2], 0.0);
            assert_eq!(off[r * w + 5], 100.0);
            assert_eq!(winner[r * w + 5], 0);
        }
    }

    #[test]
    fn no_later_source_means_no_blending() {
        let (w, h) = (8, 1);
        let m: Vec<u8> = vec![0, 0, 255, 255, 255, 255, 0, 0];
        let sources = vec![(vec![7f32; w * h], m.clone())];
        let (on, mask, _) = blend(&sources, w, h, 3);
        assert_eq!(mask, m);
        assert!(on.iter().zip(&m).all(|(&v, &mm)| mm == 0 || v == 7.0));
    }
}
