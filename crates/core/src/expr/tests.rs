#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// Evaluates `text` over one pixel where v1 = 1 (for constant-valued checks, `0*v1 + ...`
/// keeps the expression valid, as Terracotta also requires a variable).
fn eval1(text: &str, inputs: &[f64]) -> f64 {
    let expr = Expression::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let slices: Vec<Vec<f64>> = inputs.iter().map(|&v| vec![v]).collect();
    let refs: Vec<&[f64]> = slices.iter().map(Vec::as_slice).collect();
    expr.evaluate(&refs).unwrap()[0]
}

fn c(text: &str) -> f64 {
    eval1(&format!("0*v1 + ({text})"), &[1.0])
}

fn err(text: &str) -> String {
    Expression::parse(text)
        .map(|_| ())
        .expect_err(text)
        .to_string()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn expr_precedence_and_associativity() {
    assert_eq!(c("2**3**2"), 512.0);
    assert_eq!(c("-2**2"), -4.0);
    assert_eq!(c("(-2)**2"), 4.0);
    assert_eq!(c("2**-1"), 0.5);
    assert_eq!(c("1+2*3"), 7.0);
    assert_eq!(c("(1+2)*3"), 9.0);
    assert_eq!(c("10-4-3"), 3.0);
    assert_eq!(c("64/4/2"), 8.0);
    assert_eq!(c("2*3**2"), 18.0);
    assert_eq!(c("-3*2"), -6.0);
    assert_eq!(c("2*-3"), -6.0);
    assert_eq!(c("--3"), 3.0);
    assert_eq!(c("+3"), 3.0);
    assert_eq!(c("7 % 3"), 1.0);
    assert_eq!(c("-7 % 3"), 2.0); // Python: sign of the divisor
    assert_eq!(c("7 % -3"), -2.0);
    assert_eq!(c("1 + 2 < 4"), 1.0); // comparisons bind loosest
    assert_eq!(c("(1 < 2) & (3 > 4) | (5 == 5)"), 1.0);
    assert_eq!(c("(1 < 2) | (3 > 4) & (5 != 5)"), 1.0); // & before |
    assert_eq!(c("~(1 < 2) | (2 < 3)"), 1.0);
}

#[test]
fn expr_numbers() {
    assert_eq!(c("12"), 12.0);
    assert_eq!(c("1.5"), 1.5);
    assert_eq!(c(".5"), 0.5);
    assert_eq!(c("5."), 5.0);
    assert_eq!(c("1e3"), 1000.0);
    assert_eq!(c("2.5E-2"), 0.025);
    assert_eq!(c("1e+2"), 100.0);
    assert!(close(c("pi"), std::f64::consts::PI));
}

#[test]
fn expr_variables_listed_sorted_unique() {
    let e = Expression::parse("v3 + v1 * v3 - v9").unwrap();
    assert_eq!(e.variables(), &[1, 3, 9]);
    assert_eq!(eval1("v2 - v1", &[1.0, 5.0]), 4.0);
}

#[test]
fn expr_functions() {
    let e = std::f64::consts::E;
    assert_eq!(c("sqrt(16)"), 4.0);
    assert_eq!(c("abs(-3)"), 3.0);
    assert!(close(c(&format!("log({e:?})")), 1.0));
    assert_eq!(c("log10(1000)"), 3.0);
    assert!(close(c("exp(1)"), e));
    assert_eq!(c("min(2, 5)"), 2.0);
    assert_eq!(c("max(2, 5)"), 5.0);
    assert_eq!(c("minimum(2, 5)"), 2.0);
    assert_eq!(c("maximum(2, 5,)"), 5.0); // trailing comma as in Python
    assert_eq!(c("mod(-7, 3)"), 2.0);
    assert!(close(c("sin(pi/2)"), 1.0));
    assert!(close(c("cos(pi)"), -1.0));
    assert!(close(c("tan(pi/4)"), 1.0));
    assert!(close(c("sinh(1)"), 1f64.sinh()));
    assert!(close(c("cosh(1)"), 1f64.cosh()));
    assert!(close(c("tanh(1)"), 1f64.tanh()));
    assert!(close(c("arcsin(1)"), std::f64::consts::FRAC_PI_2));
    assert!(close(c("arccos(-1)"), std::f64::consts::PI));
    assert!(close(c("arctan(1)"), std::f64::consts::FRAC_PI_4));
    assert!(close(c("arcsinh(1)"), 1f64.asinh()));
    assert!(close(c("arccosh(2)"), 2f64.acosh()));
    assert!(close(c("arctanh(0.5)"), 0.5f64.atanh()));
    assert_eq!(c("where(1 < 2, 10, 20)"), 10.0);
    assert_eq!(c("where(0, 10, 20)"), 20.0);
    assert_eq!(c("where(0.5, 10, 20)"), 10.0); // nonzero numbers are true, as in numpy
}

/// Every listed function parses with its argument count and rejects one more.
#[test]
fn expr_function_table_is_complete() {
    for &(name, arity) in FUNCTIONS {
        let args = vec!["v1"; arity].join(", ");
        let e =
            Expression::parse(&format!("{name}({args})")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(e.evaluate(&[&[0.25, f64::NAN]]).unwrap().len(), 2);
        let more = vec!["v1"; arity + 1].join(", ");
        assert_eq!(
            err(&format!("{name}({more})")),
            format!(
                "wrong number of arguments for {name} at 0: got {}, expected {arity}",
                arity + 1
            )
        );
    }
}

#[test]
fn expr_domain_errors_are_masked() {
    for text in [
        "log(0)",
        "log(-1)",
        "log10(0)",
        "sqrt(-1)",
        "1/0",
        "0/0",
        "5 % 0",
        "mod(5, 0)",
        "arcsin(2)",
        "arccos(-2)",
        "arccosh(0.5)",
        "arctanh(1)",
        "arctanh(-1)",
        "0 ** -1",
        "(-8) ** (1/3)",
        "exp(1000)",
        "inf",
        "nan",
        "1/(1/0)",
    ] {
        assert!(c(text).is_nan(), "{text} should be masked, got {}", c(text));
    }
    // An overflowed intermediate is still a number for comparisons, as in numpy.
    assert_eq!(c("exp(1000) > 0"), 1.0);
    assert_eq!(c("1 < inf"), 1.0);
}

#[test]
fn expr_comparisons_and_logic() {
    let cases = [
        ("v1 < v2", [1.0, 1.0, 0.0, 0.0]),
        ("v1 <= v2", [1.0, 1.0, 1.0, 0.0]),
        ("v1 > v2", [0.0, 0.0, 0.0, 1.0]),
        ("v1 >= v2", [0.0, 0.0, 1.0, 1.0]),
        ("v1 == v2", [0.0, 0.0, 1.0, 0.0]),
        ("v1 != v2", [1.0, 1.0, 0.0, 1.0]),
        ("(v1 > 0) & (v2 > 2)", [0.0, 1.0, 1.0, 1.0]),
        ("(v1 > 1) | (v2 < 3)", [1.0, 0.0, 1.0, 1.0]),
        ("~(v1 < v2)", [0.0, 0.0, 1.0, 1.0]),
    ];
    let v1 = [0.0, 1.0, 3.0, 5.0];
    let v2 = [2.0, 4.0, 3.0, 4.0];
    for (text, want) in cases {
        let got = Expression::parse(text)
            .unwrap()
            .evaluate(&[&v1, &v2])
            .unwrap();
        assert_eq!(got, want, "{text}");
    }
}

#[test]
fn expr_nan_propagation() {
    let nan = f64::NAN;
    for text in [
        "v1 + v2",
        "v1 - 1",
        "-v1",
        "v1 * 0",
        "v1 ** 0",
        "1 ** v1",
        "v1 < 1",
        "v1 == v1",
        "v1 != 1",
        "(v1 > 0) | (v2 > 0)",
        "(v2 > 0) & (v1 > 0)",
        "~(v1 > 0)",
        "min(v1, v2)",
        "max(v2, v1)",
        "abs(v1)",
        "sqrt(v1)",
        "log(v1)",
        "exp(v1)",
        "sin(v1)",
        "where(v1 > 0, 1, 2)",
        "masked_equal(v1, 3)",
        "masked_inside(v1, 0, 1)",
    ] {
        assert!(eval1(text, &[nan, 5.0]).is_nan(), "{text}");
    }
    // numpy.ma.where only looks at the branch it picks.
    assert_eq!(eval1("where(v2 > 0, v2, v1)", &[nan, 5.0]), 5.0);
    assert!(eval1("where(v2 > 0, v1, v2)", &[nan, 5.0]).is_nan());
    assert_eq!(eval1("where(v1 != 0, 1/v1, 0)", &[0.0]), 0.0);
    // getmask turns the mask into a valid boolean.
    assert_eq!(eval1("getmask(v1)", &[nan]), 1.0);
    assert_eq!(eval1("getmask(v1)", &[2.0]), 0.0);
    assert_eq!(eval1("where(getmask(v1), -1, v1)", &[nan]), -1.0);
}

#[test]
fn expr_mask_functions() {
    let v = [1.0, 2.0, 3.0, 4.0];
    let run = |text: &str| {
        Expression::parse(text)
            .unwrap()
            .evaluate(&[&v])
            .unwrap()
            .iter()
            .map(|x| if x.is_nan() { -1.0 } else { *x })
            .collect::<Vec<_>>()
    };
    assert_eq!(run("masked_equal(v1, 2)"), [1.0, -1.0, 3.0, 4.0]);
    assert_eq!(run("masked_not_equal(v1, 2)"), [-1.0, 2.0, -1.0, -1.0]);
    assert_eq!(run("masked_greater(v1, 2)"), [1.0, 2.0, -1.0, -1.0]);
    assert_eq!(run("masked_greater_equal(v1, 2)"), [1.0, -1.0, -1.0, -1.0]);
    assert_eq!(run("masked_less(v1, 2)"), [-1.0, 2.0, 3.0, 4.0]);
    assert_eq!(run("masked_less_equal(v1, 2)"), [-1.0, -1.0, 3.0, 4.0]);
    assert_eq!(run("masked_inside(v1, 3, 2)"), [1.0, -1.0, -1.0, 4.0]);
    assert_eq!(run("masked_outside(v1, 2, 3)"), [-1.0, 2.0, 3.0, -1.0]);
    assert_eq!(run("masked_where(v1 > 3, v1)"), [1.0, 2.0, 3.0, -1.0]);
    assert_eq!(run("setmask(v1, v1 < 2)"), [-1.0, 2.0, 3.0, 4.0]);
    assert_eq!(run("masked_invalid(v1 / (v1 - 2))"), [-1.0, -1.0, 3.0, 2.0]);
}

/// Reflectances like a Sentinel-2 red/NIR pair over water, bare soil, vegetation, with a
/// nodata pixel and a zero-sum pixel.
#[test]
fn expr_ndvi() {
    let red = [0.05, 0.20, 0.04, 0.08, f64::NAN, 0.0, 0.1];
    let nir = [0.02, 0.25, 0.45, 0.50, 0.30, 0.0, 0.1];
    let e = Expression::parse("(v2 - v1) / (v2 + v1)").unwrap();
    assert_eq!(e.variables(), &[1, 2]);
    let got = e.evaluate(&[&red, &nir]).unwrap();
    for i in 0..red.len() {
        let want = (nir[i] - red[i]) / (nir[i] + red[i]);
        if want.is_finite() {
            assert!(close(got[i], want), "pixel {i}: {} vs {want}", got[i]);
        } else {
            assert!(got[i].is_nan(), "pixel {i}: {}", got[i]);
        }
    }
    assert!(got[0] < 0.0 && got[2] > 0.8 && got[6] == 0.0);
    assert!(got[4].is_nan() && got[5].is_nan());
}

/// Chunked evaluation must agree with pixel-by-pixel evaluation across chunk boundaries.
#[test]
fn expr_chunks_match_single_pixels() {
    let n = CHUNK * 2 + 17;
    let mut rng = Rng(7);
    let v1: Vec<f64> = (0..n).map(|_| rng.value()).collect();
    let v2: Vec<f64> = (0..n).map(|_| rng.value()).collect();
    let e = Expression::parse("where((v1 > v2) | getmask(v2), v1 ** 2, log(abs(v2)) % 3)").unwrap();
    let all = e.evaluate(&[&v1, &v2]).unwrap();
    assert_eq!(all.len(), n);
    for i in 0..n {
        let one = e.evaluate(&[&v1[i..=i], &v2[i..=i]]).unwrap()[0];
        assert!(
            one == all[i] || (one.is_nan() && all[i].is_nan()),
            "pixel {i}"
        );
        assert!(!all[i].is_infinite());
    }
    assert!(all.iter().any(|x| x.is_nan()) && all.iter().any(|x| !x.is_nan()));
}

#[test]
fn expr_evaluate_errors() {
    let e = Expression::parse("v1 + v3").unwrap();
    let a = [1.0, 2.0];
    let b = [1.0];
    assert_eq!(
        e.evaluate(&[&a, &a]).unwrap_err().to_string(),
        "expression uses v3 but only 2 inputs were given"
    );
    assert_eq!(
        e.evaluate(&[&a, &b, &a]).unwrap_err().to_string(),
        "input v2 has 1 samples but v1 has 2"
    );
    assert_eq!(e.evaluate(&[&[], &[], &[]]).unwrap(), Vec::<f64>::new());
}

#[test]
fn expr_syntax_errors() {
    let cases = [
        ("v7 + v10", "unknown variable v10 at 5 (variables are v1..v9)"),
        ("v0", "unknown variable v0 at 0 (variables are v1..v9)"),
        ("v01", "unknown variable v01 at 0 (variables are v1..v9)"),
        ("v99999999999999999999999", "unknown variable v99999999999999999999999 at 0 (variables are v1..v9)"),
        ("foo(v1)", "unknown function foo at 0"),
        ("v1 + x", "unknown name x at 5 (expected v1..v9, pi, nan, inf or a function call)"),
        ("V1", "unknown name V1 at 0 (expected v1..v9, pi, nan, inf or a function call)"),
        ("(v1 + 2", "expected ')', found the end of the expression at 7"),
        ("sqrt(v1 v2)", "expected ',' or ')' in call of sqrt, found 'v2' at 8"),
        ("v1 v2", "expected an operator or the end of the expression, found 'v2' at 3"),
        ("v1 +", "unexpected end of expression, expected a value at 4"),
        ("", "empty expression at 0"),
        ("   ", "empty expression at 3"),
        ("v1 * )", "expected a value, found ')' at 5"),
        ("v1 // 2", "floor division '//' is not supported at 3"),
        ("v1 = 2", "unexpected '=' (use '==' to compare) at 3"),
        ("v1 ^ 2", "operator '^' is not supported (use '**' for powers) at 3"),
        ("v1 $ 2", "unexpected character '$' at 3"),
        ("v1 + é", "unexpected character 'é' at 5"),
        ("v1 + 1e", "malformed number '1e' at 5"),
        ("v1 + 1e+", "malformed number '1e+' at 5"),
        ("2v1", "unexpected 'v' right after a number at 1"),
        ("v1 + 1.2.3", "unexpected '.' right after a number at 8"),
        ("0 < v1 < 2", "chained comparisons are not supported (use parentheses and '&') at 7"),
        // Python precedence: this is `v1 > (0 & v2) > 0`, and `0` is not a boolean.
        ("v1 > 0 & v2 > 0", "operator '&' needs boolean operands (comparisons, ~, &, | or getmask), but the operand at 5 is a number"),
        ("(v1 > 0) == (v2 > 0) == (v3 > 0)", "chained comparisons are not supported (use parentheses and '&') at 21"),
        ("v1 & (v2 > 0)", "operator '&' needs boolean operands (comparisons, ~, &, | or getmask), but the operand at 0 is a number"),
        ("(v1 > 0) | v2", "operator '|' needs boolean operands (comparisons, ~, &, | or getmask), but the operand at 11 is a number"),
        ("~v1", "operator '~' needs boolean operands (comparisons, ~, &, | or getmask), but the operand at 1 is a number"),
        ("where(v1, 2)", "wrong number of arguments for where at 0: got 2, expected 3"),
        ("sqrt()", "wrong number of arguments for sqrt at 0: got 0, expected 1"),
        ("minimum(v1, 1, 2)", "wrong number of arguments for minimum at 0: got 3, expected 2"),
        ("sqrt + v1", "function sqrt must be called: expected '(' after it at 0"),
        ("v1(2)", "expected an operator or the end of the expression, found '(' at 2"),
        ("min(v1,, 2)", "expected a value, found ',' at 7"),
        ("2 + pi", "expression uses no variable; it must use at least one of v1..v9"),
    ];
    for (text, want) in cases {
        assert_eq!(err(text), want, "{text:?}");
    }
}

#[test]
fn expr_limits() {
    let long = format!("v1{}", " ".repeat(MAX_EXPRESSION_CHARS - 2));
    assert!(Expression::parse(&long).is_ok());
    let too_long = format!("v1{}", " ".repeat(MAX_EXPRESSION_CHARS - 1));
    assert_eq!(
        err(&too_long),
        format!("expression too long: 1001 characters (max {MAX_EXPRESSION_CHARS})")
    );

    // MAX_NODES values and operations fit; one more does not.
    let terms = MAX_NODES.div_ceil(2);
    let fits = vec!["v1"; terms].join("+");
    assert!(MAX_NODES <= 2 * terms);
    let fits_nodes = 2 * terms - 1;
    assert!(fits_nodes <= MAX_NODES);
    let e = Expression::parse(&fits).unwrap();
    assert_eq!(e.evaluate(&[&[1.0]]).unwrap(), [terms as f64]);
    let over = vec!["v1"; terms + 1].join("+");
    assert!(
        err(&over).starts_with("expression too complex at "),
        "{}",
        err(&over)
    );

    let nested = |d: usize| format!("{}v1{}", "(".repeat(d), ")".repeat(d));
    assert!(Expression::parse(&nested(MAX_DEPTH - 1)).is_ok());
    assert_eq!(
        err(&nested(MAX_DEPTH)),
        format!(
            "expression nested too deeply at {0} (max depth {0})",
            MAX_DEPTH
        )
    );
    assert!(err(&format!("{}v1", "-".repeat(200))).starts_with("expression nested too deeply"));
    assert!(err(&format!("v1{}", "**2".repeat(100))).starts_with("expression nested too deeply"));
    // A long flat left-associative chain is not deep.
    assert!(Expression::parse(&vec!["v1"; 100].join("-")).is_ok());
}

/// SplitMix64: a tiny seeded generator so the robustness tests are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Mostly ordinary values, with zeros, negatives, NaN and infinities mixed in.
    fn value(&mut self) -> f64 {
        match self.below(10) {
            0 => f64::NAN,
            1 => 0.0,
            2 => f64::INFINITY,
            3 => -1.0,
            _ => (self.next() % 2000) as f64 / 100.0 - 5.0,
        }
    }
}

fn check_robust(text: &str, rng: &mut Rng) {
    let Ok(e) = Expression::parse(text) else {
        return;
    };
    assert!(!e.variables().is_empty());
    let n = 1 + rng.below(8);
    let inputs: Vec<Vec<f64>> = (0..MAX_VARIABLES)
        .map(|_| (0..n).map(|_| rng.value()).collect())
        .collect();
    let refs: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
    let out = e.evaluate(&refs).unwrap();
    assert_eq!(out.len(), n, "{text}");
    assert!(out.iter().all(|v| !v.is_infinite()), "{text}");
}

#[test]
fn expr_random_bytes_never_panic() {
    let mut rng = Rng(1);
    for _ in 0..3000 {
        let len = rng.below(40);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check_robust(&String::from_utf8_lossy(&bytes), &mut rng);
        // Printable ASCII reaches further into the lexer and parser.
        let ascii: String = (0..len)
            .map(|_| (32 + rng.below(95) as u8) as char)
            .collect();
        check_robust(&ascii, &mut rng);
    }
}

#[test]
fn expr_random_token_soup_never_panics() {
    const TOKENS: &[&str] = &[
        "v1",
        "v2",
        "v3",
        "v9",
        "v10",
        "1",
        "0",
        "2.5",
        "1e3",
        ".5",
        "pi",
        "nan",
        "inf",
        "+",
        "-",
        "*",
        "/",
        "%",
        "**",
        "<",
        "<=",
        ">",
        ">=",
        "==",
        "!=",
        "&",
        "|",
        "~",
        "(",
        ")",
        "(",
        ")",
        ",",
        "where(",
        "min(",
        "max(",
        "sqrt(",
        "log(",
        "arctanh(",
        "getmask(",
        "setmask(",
        "masked_inside(",
        "mod(",
        "foo(",
        "x",
        " ",
    ];
    let mut rng = Rng(2);
    let mut parsed = 0;
    for _ in 0..5000 {
        let len = 1 + rng.below(30);
        let text: String = (0..len)
            .map(|_| TOKENS[rng.below(TOKENS.len())])
            .collect::<Vec<_>>()
            .join(if rng.below(2) == 0 { "" } else { " " });
        if Expression::parse(&text).is_ok() {
            parsed += 1;
        }
        check_robust(&text, &mut rng);
    }
    // The soup must exercise evaluation too, not only error paths.
    assert!(parsed > 10, "only {parsed} soups parsed");
}

/// Random well-typed expression text of at most `depth` levels.
fn gen(rng: &mut Rng, depth: usize, boolean: bool) -> String {
    if boolean {
        return match (depth, rng.below(5)) {
            (0, _) | (_, 0) => format!("getmask(v{})", 1 + rng.below(3)),
            (_, 1) => format!("~({})", gen(rng, depth - 1, true)),
            (_, 2) => format!(
                "({}) {} ({})",
                gen(rng, depth - 1, true),
                ["&", "|"][rng.below(2)],
                gen(rng, depth - 1, true)
            ),
            _ => format!(
                "{} {} {}",
                gen(rng, depth - 1, false),
                ["<", "<=", ">", ">=", "==", "!="][rng.below(6)],
                gen(rng, depth - 1, false)
            ),
        };
    }
    if depth == 0 {
        return match rng.below(4) {
            0 => format!("({:?})", rng.value()).replace("NaN", "nan"),
            _ => format!("v{}", 1 + rng.below(3)),
        };
    }
    let d = depth - 1;
    match rng.below(6) {
        0 => format!("-{}", gen(rng, d, false)),
        1 => format!(
            "({} {} {})",
            gen(rng, d, false),
            ["+", "-", "*", "/", "%", "**"][rng.below(6)],
            gen(rng, d, false)
        ),
        2 => {
            let f = ["sqrt", "log", "abs", "exp", "arctanh", "masked_invalid"][rng.below(6)];
            format!("{f}({})", gen(rng, d, false))
        }
        3 => format!(
            "where({}, {}, {})",
            gen(rng, d, true),
            gen(rng, d, false),
            gen(rng, d, false)
        ),
        4 => {
            let f = ["min", "max", "mod", "masked_equal", "setmask"][rng.below(5)];
            format!("{f}({}, {})", gen(rng, d, false), gen(rng, d, false))
        }
        _ => format!("v{}", 1 + rng.below(3)),
    }
}

/// Random well-typed expressions always parse (within the limits), never produce ±inf, and
/// give every pixel the value it gets when evaluated alone.
#[test]
fn expr_random_valid_expressions() {
    let mut rng = Rng(4);
    let n = 64;
    let inputs: Vec<Vec<f64>> = (0..3)
        .map(|_| (0..n).map(|_| rng.value()).collect())
        .collect();
    let refs: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
    let (mut parsed, mut valid_pixels) = (0, 0);
    for _ in 0..2000 {
        let text = format!("v1 * 0 + {}", gen(&mut rng, 4, false));
        let e = match Expression::parse(&text) {
            Ok(e) => e,
            Err(ExprError::TooManyNodes { .. } | ExprError::TooLong { .. }) => continue,
            Err(other) => panic!("{text}: {other}"),
        };
        parsed += 1;
        let out = e.evaluate(&refs).unwrap();
        assert_eq!(out.len(), n);
        assert!(out.iter().all(|v| !v.is_infinite()), "{text}");
        valid_pixels += out.iter().filter(|v| !v.is_nan()).count();
        let i = rng.below(n);
        let one: Vec<&[f64]> = refs.iter().map(|s| &s[i..=i]).collect();
        let single = e.evaluate(&one).unwrap()[0];
        assert!(
            single == out[i] || (single.is_nan() && out[i].is_nan()),
            "{text}"
        );
    }
    assert!(
        parsed > 1000 && valid_pixels > 1000,
        "{parsed} {valid_pixels}"
    );
}

/// Throughput over a 512x512 tile; run with
/// `cargo test -p kiln-core expr_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn expr_throughput() {
    let n = 512 * 512;
    let mut rng = Rng(3);
    let v1: Vec<f64> = (0..n).map(|_| rng.value()).collect();
    let v2: Vec<f64> = (0..n).map(|_| rng.value()).collect();
    for text in [
        "(v1 - v2) / (v1 + v2)",
        "where((v1 > 0) & (v2 > 0), sqrt(v1 * v2), -1)",
    ] {
        let e = Expression::parse(text).unwrap();
        // Best of several short runs: the machine is shared, so the minimum is the signal.
        let mut best = f64::INFINITY;
        let mut valid = 0;
        for _ in 0..10 {
            let start = std::time::Instant::now();
            let out = e.evaluate(&[&v1, &v2]).unwrap();
            best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
            valid = out.iter().filter(|x| !x.is_nan()).count();
        }
        println!("{text}: {best:.2} ns/pixel ({valid} of {n} pixels valid)");
    }
}
