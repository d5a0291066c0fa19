//! Band-math expressions for `/compute`, compatible with Terracotta's expression language.
//!
//! This module owns parsing an untrusted expression text such as `(v1 - v2) / (v1 + v2)` into a
//! small postfix program, and evaluating that program array-at-a-time over per-variable sample
//! slices. The accepted syntax is the subset of Python expressions that Terracotta allows: numbers,
//! variables `v1..v{MAX_VARIABLES}`, the constants `pi`, `nan`, `inf`, the operators
//! `+ - * / % **`, unary `- + ~`, the comparisons `< <= > >= == !=` (not chained), the logical
//! `& |` on booleans, parentheses and the functions in [`FUNCTIONS`], with Python's precedence
//! (so `-2**2 == -4` and `&`/`|` bind tighter than comparisons: write `(v1 > 0) & (v2 > 0)`).
//!
//! Masks are NaN: a NaN input sample is a masked pixel, and NaN in the output marks an invalid
//! result. Every operation propagates NaN the way numpy's masked arrays propagate masks
//! (comparisons and logic on a masked value are masked, `where` only looks at the branch it
//! picks), and operations outside their domain are masked as `numpy.ma` does (`x/0`, `x%0`,
//! `log(x<=0)`, `sqrt(x<0)`, `arctanh(±1)`, non-finite powers). A final pass masks ±inf.
//!
//! Parsing is a hand-written Pratt parser bounded by [`MAX_EXPRESSION_CHARS`], [`MAX_NODES`]
//! and [`MAX_DEPTH`]; every error names what is wrong and the 0-based character offset where.
//!
//! Files: `lex` (text → tokens), `parse` (tokens → postfix program), `eval` (the per-chunk
//! kernels), this module (limits, errors, [`Expression`] and its evaluation loop), `tests`.

use thiserror::Error;

use eval::{binary_op, bool_value, call, unary};
use lex::{lex, Tok};
use parse::{max_stack, Instr, Parser};

/// Highest variable number: `v1..v9`.
pub const MAX_VARIABLES: usize = 9;
/// Longest accepted expression text, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 1000;
/// Most values and operations (postfix program length) one expression may have.
pub const MAX_NODES: usize = 256;
/// Deepest nesting of sub-expressions (parentheses, unary operators, call arguments, operator
/// right-hand sides); bounds the parser's recursion.
pub const MAX_DEPTH: usize = 64;

/// Pixels evaluated per pass over the program: small enough that the evaluation stack stays in
/// L1/L2 cache, large enough that per-operation dispatch is negligible.
const CHUNK: usize = 4096;

/// The callable functions, by name, with their argument counts.
pub const FUNCTIONS: &[(&str, usize)] = &[
    ("where", 3),
    ("min", 2),
    ("max", 2),
    ("minimum", 2),
    ("maximum", 2),
    ("mod", 2),
    ("abs", 1),
    ("sqrt", 1),
    ("log", 1),
    ("log10", 1),
    ("exp", 1),
    ("sin", 1),
    ("cos", 1),
    ("tan", 1),
    ("sinh", 1),
    ("cosh", 1),
    ("tanh", 1),
    ("arcsin", 1),
    ("arccos", 1),
    ("arctan", 1),
    ("arcsinh", 1),
    ("arccosh", 1),
    ("arctanh", 1),
    ("getmask", 1),
    ("setmask", 2),
    ("masked_equal", 2),
    ("masked_not_equal", 2),
    ("masked_greater", 2),
    ("masked_greater_equal", 2),
    ("masked_less", 2),
    ("masked_less_equal", 2),
    ("masked_inside", 3),
    ("masked_outside", 3),
    ("masked_invalid", 1),
    ("masked_where", 2),
];

/// Why an expression could not be parsed or evaluated. Offsets are 0-based character indices.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ExprError {
    #[error("expression too long: {chars} characters (max {max})")]
    TooLong { chars: usize, max: usize },
    #[error("expression too complex at {offset}: more than {max} nodes")]
    TooManyNodes { offset: usize, max: usize },
    #[error("expression nested too deeply at {offset} (max depth {max})")]
    TooDeep { offset: usize, max: usize },
    #[error("{message} at {offset}")]
    Syntax { message: String, offset: usize },
    #[error("unknown variable {name} at {offset} (variables are v1..v{max})")]
    UnknownVariable {
        name: String,
        offset: usize,
        max: usize,
    },
    #[error("unknown function {name} at {offset}")]
    UnknownFunction { name: String, offset: usize },
    #[error(
        "unknown name {name} at {offset} (expected v1..v{max}, pi, nan, inf or a function call)"
    )]
    UnknownName {
        name: String,
        offset: usize,
        max: usize,
    },
    #[error("wrong number of arguments for {name} at {offset}: got {got}, expected {expected}")]
    WrongArgCount {
        name: &'static str,
        offset: usize,
        got: usize,
        expected: usize,
    },
    #[error("operator '{op}' needs boolean operands (comparisons, ~, &, | or getmask), but the operand at {offset} is a number")]
    NotBoolean { op: &'static str, offset: usize },
    #[error("expression uses no variable; it must use at least one of v1..v{max}")]
    NoVariables { max: usize },
    #[error("expression uses v{var} but only {given} inputs were given")]
    MissingInput { var: usize, given: usize },
    #[error("input v{var} has {len} samples but v1 has {expected}")]
    LengthMismatch {
        var: usize,
        len: usize,
        expected: usize,
    },
}

fn syntax(message: impl Into<String>, offset: usize) -> ExprError {
    ExprError::Syntax {
        message: message.into(),
        offset,
    }
}

/// A parsed, validated expression, ready to evaluate over any number of pixels.
#[derive(Debug, Clone)]
pub struct Expression {
    program: Vec<Instr>,
    variables: Vec<usize>,
    /// Deepest evaluation stack the program reaches: how many chunk buffers evaluation needs.
    max_stack: usize,
}

impl Expression {
    /// Parses and checks `text`: syntax, known names, argument counts, boolean operands of
    /// `~ & |`, at least one variable, and the size limits.
    pub fn parse(text: &str) -> Result<Expression, ExprError> {
        let chars: Vec<char> = text.chars().collect();
        if chars.len() > MAX_EXPRESSION_CHARS {
            return Err(ExprError::TooLong {
                chars: chars.len(),
                max: MAX_EXPRESSION_CHARS,
            });
        }
        let tokens = lex(&chars)?;
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
            program: Vec::new(),
            used: [false; MAX_VARIABLES],
            depth: 0,
        };
        if parser.peek().tok == Tok::End {
            return Err(syntax("empty expression", parser.peek().at));
        }
        parser.expr(0)?;
        let end = parser.peek();
        if end.tok != Tok::End {
            return Err(syntax(
                format!(
                    "expected an operator or the end of the expression, found {}",
                    end.tok.describe()
                ),
                end.at,
            ));
        }
        let variables: Vec<usize> = (1..=MAX_VARIABLES).filter(|v| parser.used[v - 1]).collect();
        if variables.is_empty() {
            return Err(ExprError::NoVariables { max: MAX_VARIABLES });
        }
        let program = parser.program;
        let max_stack = max_stack(&program);
        Ok(Expression {
            program,
            variables,
            max_stack,
        })
    }

    /// 1-based numbers of the variables used, sorted, unique.
    pub fn variables(&self) -> &[usize] {
        &self.variables
    }

    /// Evaluates over equally long inputs (`inputs[i]` is variable v(i+1); a NaN input sample
    /// is an invalid/masked pixel). Output has the same length; NaN marks an invalid result
    /// (any input used is NaN, or the result is NaN/±inf, e.g. log(0), x/0).
    pub fn evaluate(&self, inputs: &[&[f64]]) -> Result<Vec<f64>, ExprError> {
        for &var in &self.variables {
            if var > inputs.len() {
                return Err(ExprError::MissingInput {
                    var,
                    given: inputs.len(),
                });
            }
        }
        let n = inputs.first().map_or(0, |s| s.len());
        if let Some((i, s)) = inputs.iter().enumerate().find(|(_, s)| s.len() != n) {
            return Err(ExprError::LengthMismatch {
                var: i + 1,
                len: s.len(),
                expected: n,
            });
        }
        let mut out = Vec::with_capacity(n);
        let mut stack = vec![vec![0.0; CHUNK.min(n)]; self.max_stack];
        let mut start = 0;
        while start < n {
            let len = CHUNK.min(n - start);
            self.run_chunk(inputs, start, len, &mut stack);
            out.extend(
                stack[0][..len]
                    .iter()
                    .map(|&v| if v.is_finite() { v } else { f64::NAN }),
            );
            start += len;
        }
        Ok(out)
    }

    /// Runs the program over `len` pixels from `start`, leaving the result in `stack[0]`. The
    /// parser only emits well-formed programs, so every operation finds its operands.
    fn run_chunk(&self, inputs: &[&[f64]], start: usize, len: usize, stack: &mut [Vec<f64>]) {
        let mut sp = 0;
        for instr in &self.program {
            match *instr {
                Instr::Var(i) => {
                    stack[sp][..len].copy_from_slice(&inputs[i][start..start + len]);
                    sp += 1;
                }
                Instr::Const(c) => {
                    stack[sp][..len].fill(c);
                    sp += 1;
                }
                Instr::Neg => unary(&mut stack[sp - 1][..len], |a| -a),
                Instr::Not => unary(&mut stack[sp - 1][..len], |a| {
                    if a.is_nan() {
                        a
                    } else {
                        bool_value(a == 0.0)
                    }
                }),
                Instr::Bin(op) => {
                    binary_op(op, stack, sp, len);
                    sp -= 1;
                }
                Instr::Call(f) => {
                    call(f, stack, sp, len);
                    sp = sp + 1 - f.arity();
                }
            }
        }
    }
}

mod eval;
mod lex;
mod parse;
#[cfg(test)]
mod tests;
