//! Fuzz target: arbitrary bytes as a `/compute` expression text.
//!
//! Parsing must never panic; an accepted expression must use at least one variable and, evaluated
//! over inputs mixing ordinary values, zeros, NaN (masked) and infinities, must return one
//! finite-or-NaN value per pixel.
#![no_main]

use kiln_core::expr::{Expression, MAX_VARIABLES};
use libfuzzer_sys::fuzz_target;

/// Sample values that reach every masking rule: zero divisors, log/sqrt domains, ±1 for
/// arctanh, masked and infinite inputs.
const SAMPLES: [f64; 8] = [0.0, 1.0, -1.0, 0.5, 1e300, f64::NAN, f64::INFINITY, -3.25];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = Expression::parse(text) else {
        return;
    };
    assert!(!expr.variables().is_empty(), "{text:?} uses no variable");
    let inputs: Vec<Vec<f64>> = (0..MAX_VARIABLES)
        .map(|v| {
            (0..SAMPLES.len())
                .map(|i| SAMPLES[(i + v * 3) % SAMPLES.len()])
                .collect()
        })
        .collect();
    let refs: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
    match expr.evaluate(&refs) {
        Ok(out) => {
            assert_eq!(out.len(), SAMPLES.len(), "{text:?}");
            assert!(out.iter().all(|v| !v.is_infinite()), "{text:?} gave ±inf");
        }
        Err(e) => panic!("{text:?} failed to evaluate over all variables: {e}"),
    }
});
