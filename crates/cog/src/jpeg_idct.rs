//! Inverse DCTs with the exact integer arithmetic of IJG libjpeg 9's "slow-but-accurate"
//! method (`jidctint.c`, the default `JDCT_ISLOW`), which is what GDAL decodes with.
//!
//! An 8x8 block of dequantized coefficients goes through a column pass and a row pass. Each
//! pass runs a 1-D kernel: the 8-point Loeffler-Ligtenberg-Moschytz kernel, or the 16-point
//! kernel fed with 8 coefficients that libjpeg 9 uses to reconstruct subsampled chroma at
//! twice its stored size (instead of upsampling it afterwards). So a block comes out as 8x8,
//! 16x8, 8x16 or 16x16 samples.
//!
//! Why every constant and shift below matters: the kernels work in fixed point with 13-bit
//! constants, round once after the column pass (keeping 2 extra bits) and once at the end.
//! Any other factorisation, constant or rounding point (zune-jpeg's or libjpeg-turbo's IDCT,
//! say) gives results that differ by 1 here and there. Integer addition and multiplication
//! are exact, so only the constants and the two rounding points have to match, not the order
//! of operations. Arithmetic wraps (as C's does in practice) so corrupt coefficients cannot
//! panic.

use std::num::Wrapping;
use std::ops::{Add, AddAssign, Mul, Shl, Sub};

type W = Wrapping<i32>;

/// What the kernels compute on: one value, or the same operation on several columns at once
/// (`Lanes`, which the compiler turns into SIMD).
trait Num:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + AddAssign
    + Mul<W, Output = Self>
    + Shl<usize, Output = Self>
{
    fn plus(self, w: W) -> Self;
}

impl Num for W {
    #[inline(always)]
    fn plus(self, w: W) -> Self {
        self + w
    }
}

/// `N` columns processed together.
#[derive(Clone, Copy)]
struct Lanes<const N: usize>([W; N]);

impl<const N: usize> Add for Lanes<N> {
    type Output = Self;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Lanes(std::array::from_fn(|i| self.0[i] + o.0[i]))
    }
}
impl<const N: usize> Sub for Lanes<N> {
    type Output = Self;
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Lanes(std::array::from_fn(|i| self.0[i] - o.0[i]))
    }
}
impl<const N: usize> AddAssign for Lanes<N> {
    #[inline(always)]
    fn add_assign(&mut self, o: Self) {
        *self = *self + o;
    }
}
impl<const N: usize> Mul<W> for Lanes<N> {
    type Output = Self;
    #[inline(always)]
    fn mul(self, c: W) -> Self {
        Lanes(std::array::from_fn(|i| self.0[i] * c))
    }
}
impl<const N: usize> Shl<usize> for Lanes<N> {
    type Output = Self;
    #[inline(always)]
    fn shl(self, n: usize) -> Self {
        Lanes(std::array::from_fn(|i| self.0[i] << n))
    }
}
impl<const N: usize> Num for Lanes<N> {
    #[inline(always)]
    fn plus(self, w: W) -> Self {
        Lanes(std::array::from_fn(|i| self.0[i] + w))
    }
}

/// Fractional bits of the constants.
const CONST_BITS: usize = 13;
/// Extra fractional bits kept between the passes.
const PASS1_BITS: usize = 2;
/// Rounding bias of the column pass's descale.
const PASS1_ROUND: W = Wrapping(1 << (CONST_BITS - PASS1_BITS - 1));
/// Added to a row pass's DC term before scaling: the rounding bias of the final descale plus
/// libjpeg 9's range centre (512), which the final mask-and-clamp step expects.
const PASS2_BIAS: W = Wrapping(((512 << (PASS1_BITS + 3)) + (1 << (PASS1_BITS + 2))) << CONST_BITS);
/// Total right shift of the row pass.
const PASS2_SHIFT: usize = CONST_BITS + PASS1_BITS + 3;

/// Fixed-point constants: `round(c * 2^13)` of the cosine terms named.
mod k {
    use super::W;
    use std::num::Wrapping as X;
    // 8-point kernel, cK = sqrt(2) * cos(K * pi / 16).
    pub const F0_298: W = X(2446);
    pub const F0_390: W = X(3196);
    pub const F0_541: W = X(4433);
    pub const F0_765: W = X(6270);
    pub const F0_899: W = X(7373);
    pub const F1_175: W = X(9633);
    pub const F1_501: W = X(12299);
    pub const F1_847: W = X(15137);
    pub const F1_961: W = X(16069);
    pub const F2_053: W = X(16819);
    pub const F2_562: W = X(20995);
    pub const F3_072: W = X(25172);
    // 16-point kernel, cK = sqrt(2) * cos(K * pi / 32).
    pub const G1_306: W = X(10703);
    pub const G0_275: W = X(2260);
    pub const G1_387: W = X(11363);
    pub const G0_601: W = X(4926);
    pub const G0_509: W = X(4176);
    pub const G1_353: W = X(11086);
    pub const G1_247: W = X(10217);
    pub const G1_093: W = X(8956);
    pub const G0_897: W = X(7350);
    pub const G0_666: W = X(5461);
    pub const G0_410: W = X(3363);
    pub const G2_286: W = X(18730);
    pub const G1_835: W = X(15038);
    pub const G0_138: W = X(1136);
    pub const G0_071: W = X(589);
    pub const G1_125: W = X(9222);
    pub const G1_407: W = X(11529);
    pub const G0_766: W = X(6278);
    pub const G1_971: W = X(16154);
    pub const G1_065: W = X(8728);
    pub const G3_141: W = X(25733);
}

/// 8-point kernel: 8 inputs to 8 outputs, scaled by `2^13` (not yet descaled); `bias` is
/// added to the DC term already scaled.
#[inline(always)]
fn kernel8<T: Num>(x: &[T; 8], bias: W) -> [T; 8] {
    // Even part: inputs 0, 4 (unscaled rotation) and 2, 6 (rotation by c6).
    let dc = (x[0] << CONST_BITS).plus(bias);
    let x4 = x[4] << CONST_BITS;
    let (e0, e1) = (dc + x4, dc - x4);
    let r = (x[2] + x[6]) * k::F0_541;
    let e2 = r + x[2] * k::F0_765;
    let e3 = r - x[6] * k::F1_847;
    let (t10, t13, t11, t12) = (e0 + e2, e0 - e2, e1 + e3, e1 - e3);

    // Odd part: inputs 7, 5, 3, 1.
    let (a0, a1, a2, a3) = (x[7], x[5], x[3], x[1]);
    let c3 = (a0 + a2 + a1 + a3) * k::F1_175;
    let s02 = (a0 + a2) * -k::F1_961 + c3;
    let s13 = (a1 + a3) * -k::F0_390 + c3;
    let s03 = (a0 + a3) * -k::F0_899;
    let s12 = (a1 + a2) * -k::F2_562;
    let o0 = a0 * k::F0_298 + s03 + s02;
    let o3 = a3 * k::F1_501 + s03 + s13;
    let o1 = a1 * k::F2_053 + s12 + s13;
    let o2 = a2 * k::F3_072 + s12 + s02;

    [
        t10 + o3,
        t11 + o2,
        t12 + o1,
        t13 + o0,
        t13 - o0,
        t12 - o1,
        t11 - o2,
        t10 - o3,
    ]
}

/// 16-point kernel fed with 8 inputs (the upper 8 frequencies taken as zero): 16 outputs,
/// scaled like [`kernel8`]'s.
#[inline(always)]
fn kernel16<T: Num>(x: &[T; 8], bias: W) -> [T; 16] {
    // Even part.
    let dc = (x[0] << CONST_BITS).plus(bias);
    let (a, b) = (x[4] * k::G1_306, x[4] * k::F0_541);
    let (e10, e11, e12, e13) = (dc + a, dc - a, dc + b, dc - b);
    let d = x[2] - x[6];
    let (dn, dw) = (d * k::G0_275, d * k::G1_387);
    let p0 = dw + x[6] * k::F2_562;
    let p1 = dn + x[2] * k::F0_899;
    let p2 = dw - x[2] * k::G0_601;
    let p3 = dn - x[6] * k::G0_509;
    let ev = [
        e10 + p0,
        e12 + p1,
        e13 + p2,
        e11 + p3,
        e11 - p3,
        e13 - p2,
        e12 - p1,
        e10 - p0,
    ];

    // Odd part: inputs 1, 3, 5, 7.
    let (z1, z2, z3, z4) = (x[1], x[3], x[5], x[7]);
    let s13 = z1 + z3;
    let mut o1 = (z1 + z2) * k::G1_353;
    let mut o2 = s13 * k::G1_247;
    let mut o3 = (z1 + z4) * k::G1_093;
    let mut o4 = (z1 - z4) * k::G0_897;
    let mut o5 = s13 * k::G0_666;
    let mut o6 = (z1 - z2) * k::G0_410;
    let o0 = o1 + o2 + o3 - z1 * k::G2_286;
    let o7 = o4 + o5 + o6 - z1 * k::G1_835;
    let m = (z2 + z3) * k::G0_138;
    o1 += m + z2 * k::G0_071;
    o2 += m - z3 * k::G1_125;
    let m = (z3 - z2) * k::G1_407;
    o5 += m - z3 * k::G0_766;
    o6 += m + z2 * k::G1_971;
    let z24 = z2 + z4;
    let m = z24 * -k::G0_666;
    o1 += m;
    o3 += m + z4 * k::G1_065;
    let m = z24 * -k::G1_247;
    o4 += m + z4 * k::G3_141;
    o6 += m;
    let m = (z3 + z4) * -k::G1_353;
    o2 += m;
    o3 += m;
    let m = (z4 - z3) * k::G0_410;
    o4 += m;
    o5 += m;
    let od = [o0, o1, o2, o3, o4, o5, o6, o7];

    std::array::from_fn(|i| {
        if i < 8 {
            ev[i] + od[i]
        } else {
            ev[15 - i] - od[15 - i]
        }
    })
}

/// Final range limit: the row pass's result carries the range centre 512, so `v & 1023`
/// minus 384 is the sample; out-of-range values clamp, absurd ones wrap (libjpeg's table).
#[inline(always)]
fn limit(v: W) -> u8 {
    ((v.0 & 1023) - 384).clamp(0, 255) as u8
}

/// The sample every output takes when only the DC coefficient is non-zero.
#[inline]
pub(crate) fn dc_only_value(dc: i32) -> u8 {
    // Column pass: DC << PASS1_BITS exactly; row pass: DC term alone, descaled.
    let w = Wrapping(dc) << PASS1_BITS;
    limit(((w << CONST_BITS) + PASS2_BIAS) >> PASS2_SHIFT)
}

/// Inverse DCT of one block of dequantized coefficients (natural order, row-major) into
/// `out` at `stride`: `8 * (1 + WIDE)` samples wide, `8 * (1 + TALL)` tall. The caller
/// promises that only the top-left `N` x `N` coefficients (`N` = 2, 4 or 8) can be non-zero:
/// the zero inputs become constants the compiler folds away (same arithmetic, less work).
pub(crate) fn idct<const WIDE: bool, const TALL: bool, const N: usize>(
    coef: &[i32; 64],
    out: &mut [u8],
    stride: usize,
) {
    let rows = if TALL { 16 } else { 8 };
    let cols = if WIDE { 16 } else { 8 };
    if out.len() < (rows - 1) * stride + cols || N > 8 {
        return;
    }
    // Column pass, all N columns at once (the others are zero, so are their results), into
    // a rows x 8 workspace keeping PASS1_BITS fractional bits.
    let mut ws = [Wrapping(0i32); 128];
    let x: [Lanes<N>; 8] = std::array::from_fn(|r| {
        Lanes(std::array::from_fn(|c| {
            Wrapping(if r >= N { 0 } else { coef[r * 8 + c] })
        }))
    });
    let mut store = |r: usize, v: Lanes<N>| {
        for (c, w) in v.0.iter().enumerate() {
            ws[r * 8 + c] = *w >> (CONST_BITS - PASS1_BITS);
        }
    };
    if TALL {
        for (r, v) in kernel16(&x, PASS1_ROUND).into_iter().enumerate() {
            store(r, v);
        }
    } else {
        for (r, v) in kernel8(&x, PASS1_ROUND).into_iter().enumerate() {
            store(r, v);
        }
    }
    // Row pass.
    for r in 0..rows {
        let x: [W; 8] = std::array::from_fn(|i| if i >= N { Wrapping(0) } else { ws[r * 8 + i] });
        let dst = &mut out[r * stride..r * stride + cols];
        if x[1..].iter().all(|v| v.0 == 0) {
            // The kernel reduces to the DC term exactly: every output is its descaled value.
            dst.fill(limit(((x[0] << CONST_BITS) + PASS2_BIAS) >> PASS2_SHIFT));
            continue;
        }
        if WIDE {
            let y = kernel16(&x, PASS2_BIAS);
            for (d, v) in dst.iter_mut().zip(y) {
                *d = limit(v >> PASS2_SHIFT);
            }
        } else {
            let y = kernel8(&x, PASS2_BIAS);
            for (d, v) in dst.iter_mut().zip(y) {
                *d = limit(v >> PASS2_SHIFT);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Floating-point reference: the 2-D inverse DCT of the 8x8 coefficients evaluated at a
    /// `cols` x `rows` grid (the scaled IDCT libjpeg uses for 16-point outputs), rounded and
    /// clamped.
    fn float_idct(coef: &[i32; 64], cols: usize, rows: usize) -> Vec<f64> {
        let cu = |u: usize| if u == 0 { 1.0 / 2f64.sqrt() } else { 1.0 };
        let mut out = Vec::new();
        for y in 0..rows {
            for x in 0..cols {
                let mut s = 0.0;
                for v in 0..8 {
                    for u in 0..8 {
                        let fx = ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI
                            / (2 * cols) as f64)
                            .cos();
                        let fy = ((2 * y + 1) as f64 * v as f64 * std::f64::consts::PI
                            / (2 * rows) as f64)
                            .cos();
                        s += cu(u) * cu(v) * coef[v * 8 + u] as f64 * fx * fy;
                    }
                }
                out.push((s / 4.0 + 128.0).clamp(0.0, 255.0));
            }
        }
        out
    }

    fn run<const WIDE: bool, const TALL: bool>(coef: &[i32; 64]) -> Vec<u8> {
        let cols = if WIDE { 16 } else { 8 };
        let rows = if TALL { 16 } else { 8 };
        let mut out = vec![0u8; cols * rows];
        idct::<WIDE, TALL, 8>(coef, &mut out, cols);
        // The reduced variants must agree whenever their promise holds.
        let within = |n: usize| {
            coef.iter()
                .enumerate()
                .all(|(i, c)| *c == 0 || (i % 8 < n && i / 8 < n))
        };
        if within(4) {
            let mut low = vec![0u8; cols * rows];
            idct::<WIDE, TALL, 4>(coef, &mut low, cols);
            assert_eq!(low, out);
        }
        if within(2) {
            let mut low = vec![0u8; cols * rows];
            idct::<WIDE, TALL, 2>(coef, &mut low, cols);
            assert_eq!(low, out);
        }
        out
    }

    /// Pseudo-random coefficient blocks shaped like real ones (large low frequencies): full
    /// blocks, blocks limited to the top-left 4x4, and blocks with a single non-zero row or
    /// column (which take the zero-input shortcuts).
    fn blocks() -> Vec<[i32; 64]> {
        let mut seed = 0x2545_f491_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        (0..500)
            .map(|n| {
                std::array::from_fn(|i| {
                    let (u, v) = (i % 8, i / 8);
                    let range = 600 / (1 + u + v) as i32;
                    let c = (next() % (2 * range as u32 + 1)) as i32 - range;
                    let keep = match n % 5 {
                        0 => true,
                        1 => u < 4 && v < 4,
                        2 => u < 2 && v < 2,
                        3 => v == 0,
                        _ => u == 0,
                    };
                    if keep {
                        c
                    } else {
                        0
                    }
                })
            })
            .collect()
    }

    #[test]
    fn kernels_approximate_the_exact_transform() {
        // The fixed-point kernels stay within one level of the real-valued transform; a
        // wrong constant or a swapped output would be off by far more.
        for coef in blocks() {
            for (got, cols, rows) in [
                (run::<false, false>(&coef), 8, 8),
                (run::<true, false>(&coef), 16, 8),
                (run::<false, true>(&coef), 8, 16),
                (run::<true, true>(&coef), 16, 16),
            ] {
                let want = float_idct(&coef, cols, rows);
                // The 16-point kernel's output is scaled like the 8-point one: the DC gain
                // and the basis functions match a 2x upsampled 8-point IDCT.
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (f64::from(*g) - w).abs() <= 1.0,
                        "{g} vs {w} ({cols}x{rows})"
                    );
                }
            }
        }
    }

    #[test]
    fn dc_only_blocks_are_flat_and_match_the_kernels() {
        for dc in [-1100, -1024, -513, -7, 0, 1, 5, 300, 1016, 1100] {
            let mut coef = [0; 64];
            coef[0] = dc;
            let v = dc_only_value(dc);
            assert!(run::<false, false>(&coef).iter().all(|s| *s == v));
            assert!(run::<true, true>(&coef).iter().all(|s| *s == v));
            let want = (f64::from(dc) / 8.0 + 128.0).round().clamp(0.0, 255.0);
            assert_eq!(f64::from(v), want, "dc {dc}");
        }
    }

    #[test]
    fn corrupt_coefficients_do_not_panic() {
        let coef = [i32::MAX; 64];
        let _ = run::<true, true>(&coef);
        let coef: [i32; 64] = std::array::from_fn(|i| if i % 2 == 0 { i32::MIN } else { 77 });
        let _ = run::<false, false>(&coef);
        // A too-small output buffer is refused, not indexed out of bounds.
        idct::<true, true, 8>(&coef, &mut [0u8; 10], 16);
    }
}
