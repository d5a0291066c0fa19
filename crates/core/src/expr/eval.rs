//! Evaluation kernels: each runs one operation over a whole chunk so the loop body is a single
//! monomorphic closure the compiler can vectorise.

use super::parse::{BinOp, Func};

pub(super) fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// A masked result when any operand is masked, else `f(a, b)`; for operations whose IEEE
/// version can turn NaN into a number (`min`, `powf(NaN, 0)`, comparisons).
pub(super) fn masked2(a: f64, b: f64, f: impl Fn(f64, f64) -> f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        f(a, b)
    }
}

pub(super) fn unary(a: &mut [f64], f: impl Fn(f64) -> f64) {
    for x in a {
        *x = f(*x);
    }
}

/// Replaces `stack[sp-2]` by `f(stack[sp-2], stack[sp-1])`.
pub(super) fn binary(stack: &mut [Vec<f64>], sp: usize, len: usize, f: impl Fn(f64, f64) -> f64) {
    let (lo, hi) = stack.split_at_mut(sp - 1);
    let a = &mut lo[sp - 2][..len];
    for (x, &y) in a.iter_mut().zip(&hi[0][..len]) {
        *x = f(*x, y);
    }
}

/// Replaces `stack[sp-3]` by `f(stack[sp-3], stack[sp-2], stack[sp-1])`.
pub(super) fn ternary(
    stack: &mut [Vec<f64>],
    sp: usize,
    len: usize,
    f: impl Fn(f64, f64, f64) -> f64,
) {
    let (lo, hi) = stack.split_at_mut(sp - 2);
    let (b, c) = hi.split_at(1);
    let a = &mut lo[sp - 3][..len];
    for ((x, &y), &z) in a.iter_mut().zip(&b[0][..len]).zip(&c[0][..len]) {
        *x = f(*x, y, z);
    }
}

/// Python's `%`: the result takes the sign of the divisor; masked for a zero divisor.
pub(super) fn python_mod(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        return f64::NAN;
    }
    let r = a % b;
    if r != 0.0 && (r < 0.0) != (b < 0.0) {
        r + b
    } else {
        r
    }
}

pub(super) fn binary_op(op: BinOp, stack: &mut [Vec<f64>], sp: usize, len: usize) {
    match op {
        BinOp::Add => binary(stack, sp, len, |a, b| a + b),
        BinOp::Sub => binary(stack, sp, len, |a, b| a - b),
        BinOp::Mul => binary(stack, sp, len, |a, b| a * b),
        BinOp::Div => binary(
            stack,
            sp,
            len,
            |a, b| if b == 0.0 { f64::NAN } else { a / b },
        ),
        BinOp::Mod => binary(stack, sp, len, python_mod),
        BinOp::Pow => binary(stack, sp, len, |a, b| {
            masked2(a, b, |a, b| {
                let r = a.powf(b);
                if r.is_finite() {
                    r
                } else {
                    f64::NAN
                }
            })
        }),
        BinOp::Lt => binary(stack, sp, len, |a, b| {
            masked2(a, b, |a, b| bool_value(a < b))
        }),
        BinOp::Le => binary(stack, sp, len, |a, b| {
            masked2(a, b, |a, b| bool_value(a <= b))
        }),
        BinOp::Gt => binary(stack, sp, len, |a, b| {
            masked2(a, b, |a, b| bool_value(a > b))
        }),
        BinOp::Ge => binary(stack, sp, len, |a, b| {
            masked2(a, b, |a, b| bool_value(a >= b))
        }),
        BinOp::Eq => binary(stack, sp, len, |a, b| {
            masked2(a, b, |a, b| bool_value(a == b))
        }),
        BinOp::Ne => binary(stack, sp, len, |a, b| {
            masked2(a, b, |a, b| bool_value(a != b))
        }),
        BinOp::And => binary(stack, sp, len, |a, b| {
            masked2(a, b, |a, b| bool_value(a != 0.0 && b != 0.0))
        }),
        BinOp::Or => binary(stack, sp, len, |a, b| {
            masked2(a, b, |a, b| bool_value(a != 0.0 || b != 0.0))
        }),
    }
}

/// `x` masked where `hit(x, args..)`; masked too when any argument is masked.
pub(super) fn masked_if2(x: f64, v: f64, hit: impl Fn(f64, f64) -> bool) -> f64 {
    masked2(x, v, |x, v| if hit(x, v) { f64::NAN } else { x })
}

pub(super) fn call(f: Func, stack: &mut [Vec<f64>], sp: usize, len: usize) {
    let nan = f64::NAN;
    match f {
        Func::Where => ternary(stack, sp, len, |c, a, b| {
            if c.is_nan() {
                nan
            } else if c != 0.0 {
                a
            } else {
                b
            }
        }),
        Func::MaskedInside | Func::MaskedOutside => {
            let inside = f == Func::MaskedInside;
            ternary(stack, sp, len, move |x, v1, v2| {
                if x.is_nan() || v1.is_nan() || v2.is_nan() {
                    return nan;
                }
                let (lo, hi) = if v1 <= v2 { (v1, v2) } else { (v2, v1) };
                if (lo <= x && x <= hi) == inside {
                    nan
                } else {
                    x
                }
            })
        }
        Func::Min => binary(stack, sp, len, |a, b| masked2(a, b, f64::min)),
        Func::Max => binary(stack, sp, len, |a, b| masked2(a, b, f64::max)),
        Func::Mod => binary(stack, sp, len, python_mod),
        Func::SetMask => binary(
            stack,
            sp,
            len,
            |x, m| if m.is_nan() || m != 0.0 { nan } else { x },
        ),
        Func::MaskedWhere => binary(
            stack,
            sp,
            len,
            |c, x| if c.is_nan() || c != 0.0 { nan } else { x },
        ),
        Func::MaskedEqual => binary(stack, sp, len, |x, v| masked_if2(x, v, |x, v| x == v)),
        Func::MaskedNotEqual => binary(stack, sp, len, |x, v| masked_if2(x, v, |x, v| x != v)),
        Func::MaskedGreater => binary(stack, sp, len, |x, v| masked_if2(x, v, |x, v| x > v)),
        Func::MaskedGreaterEqual => binary(stack, sp, len, |x, v| masked_if2(x, v, |x, v| x >= v)),
        Func::MaskedLess => binary(stack, sp, len, |x, v| masked_if2(x, v, |x, v| x < v)),
        Func::MaskedLessEqual => binary(stack, sp, len, |x, v| masked_if2(x, v, |x, v| x <= v)),
        _ => {
            let a = &mut stack[sp - 1][..len];
            match f {
                Func::Abs => unary(a, f64::abs),
                Func::Sqrt => unary(a, f64::sqrt),
                Func::Log => unary(a, |x| if x <= 0.0 { nan } else { x.ln() }),
                Func::Log10 => unary(a, |x| if x <= 0.0 { nan } else { x.log10() }),
                Func::Exp => unary(a, f64::exp),
                Func::Sin => unary(a, f64::sin),
                Func::Cos => unary(a, f64::cos),
                Func::Tan => unary(a, f64::tan),
                Func::Sinh => unary(a, f64::sinh),
                Func::Cosh => unary(a, f64::cosh),
                Func::Tanh => unary(a, f64::tanh),
                Func::Arcsin => unary(a, f64::asin),
                Func::Arccos => unary(a, f64::acos),
                Func::Arctan => unary(a, f64::atan),
                Func::Arcsinh => unary(a, f64::asinh),
                Func::Arccosh => unary(a, f64::acosh),
                Func::Arctanh => unary(a, |x| if x.abs() >= 1.0 { nan } else { x.atanh() }),
                Func::GetMask => unary(a, |x| bool_value(x.is_nan())),
                Func::MaskedInvalid => unary(a, |x| if x.is_finite() { x } else { nan }),
                // Multi-argument functions are dispatched above.
                _ => {}
            }
        }
    }
}
