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

use thiserror::Error;

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

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Num(v) => format!("number {v}"),
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Op(o) => format!("'{o}'"),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::End => "the end of the expression".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    tok: Tok,
    at: usize,
}

fn lex(chars: &[char]) -> Result<Vec<Token>, ExprError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let at = i;
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && next.is_some_and(|d| d.is_ascii_digit())) {
            let (value, end) = lex_number(chars, i)?;
            out.push(Token {
                tok: Tok::Num(value),
                at,
            });
            i = end;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let mut end = i;
            while chars
                .get(end)
                .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_')
            {
                end += 1;
            }
            out.push(Token {
                tok: Tok::Ident(chars[i..end].iter().collect()),
                at,
            });
            i = end;
            continue;
        }
        let (tok, width) = match (c, next) {
            ('*', Some('*')) => (Tok::Op("**"), 2),
            ('<', Some('=')) => (Tok::Op("<="), 2),
            ('>', Some('=')) => (Tok::Op(">="), 2),
            ('=', Some('=')) => (Tok::Op("=="), 2),
            ('!', Some('=')) => (Tok::Op("!="), 2),
            ('/', Some('/')) => return Err(syntax("floor division '//' is not supported", at)),
            ('+', _) => (Tok::Op("+"), 1),
            ('-', _) => (Tok::Op("-"), 1),
            ('*', _) => (Tok::Op("*"), 1),
            ('/', _) => (Tok::Op("/"), 1),
            ('%', _) => (Tok::Op("%"), 1),
            ('<', _) => (Tok::Op("<"), 1),
            ('>', _) => (Tok::Op(">"), 1),
            ('&', _) => (Tok::Op("&"), 1),
            ('|', _) => (Tok::Op("|"), 1),
            ('~', _) => (Tok::Op("~"), 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            (',', _) => (Tok::Comma, 1),
            ('=', _) => return Err(syntax("unexpected '=' (use '==' to compare)", at)),
            ('^', _) => {
                return Err(syntax(
                    "operator '^' is not supported (use '**' for powers)",
                    at,
                ))
            }
            _ => return Err(syntax(format!("unexpected character {c:?}"), at)),
        };
        out.push(Token { tok, at });
        i += width;
    }
    out.push(Token {
        tok: Tok::End,
        at: chars.len(),
    });
    Ok(out)
}

/// Lexes a Python float/int literal (`12`, `1.5`, `.5`, `5.`, `1e-3`) starting at `start`;
/// returns its value and the index after it.
fn lex_number(chars: &[char], start: usize) -> Result<(f64, usize), ExprError> {
    let digits = |mut i: usize| {
        while chars.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut end = digits(start);
    if chars.get(end) == Some(&'.') {
        end = digits(end + 1);
    }
    if matches!(chars.get(end), Some('e' | 'E')) {
        let mut exp = end + 1;
        if matches!(chars.get(exp), Some('+' | '-')) {
            exp += 1;
        }
        let exp_end = digits(exp);
        if exp_end == exp {
            return Err(syntax(
                format!(
                    "malformed number '{}'",
                    chars[start..exp].iter().collect::<String>()
                ),
                start,
            ));
        }
        end = exp_end;
    }
    if chars
        .get(end)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
    {
        return Err(syntax(
            format!("unexpected {:?} right after a number", chars[end]),
            end,
        ));
    }
    let text: String = chars[start..end].iter().collect();
    text.parse::<f64>()
        .map(|v| (v, end))
        .map_err(|_| syntax(format!("malformed number '{text}'"), start))
}

// ---------------------------------------------------------------------------------------------
// Parser

/// One postfix instruction: pushes a value or replaces its operands on the stack by a result.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Instr {
    /// 0-based input index.
    Var(usize),
    Const(f64),
    Neg,
    Not,
    Bin(BinOp),
    Call(Func),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

/// Binding powers, Python's order: comparisons < `|` < `&` < `+ -` < `* / %` < unary < `**`.
const UNARY_BP: u8 = 60;

impl BinOp {
    /// (operator, left binding power, right binding power); left-associative operators bind
    /// their right side one tighter, `**` binds it at the unary level so `2**-1` and `2**3**2`
    /// parse as in Python.
    fn from_tok(tok: &Tok) -> Option<(BinOp, u8, u8)> {
        let Tok::Op(op) = tok else { return None };
        Some(match *op {
            "<" => (BinOp::Lt, 10, 11),
            "<=" => (BinOp::Le, 10, 11),
            ">" => (BinOp::Gt, 10, 11),
            ">=" => (BinOp::Ge, 10, 11),
            "==" => (BinOp::Eq, 10, 11),
            "!=" => (BinOp::Ne, 10, 11),
            "|" => (BinOp::Or, 20, 21),
            "&" => (BinOp::And, 30, 31),
            "+" => (BinOp::Add, 40, 41),
            "-" => (BinOp::Sub, 40, 41),
            "*" => (BinOp::Mul, 50, 51),
            "/" => (BinOp::Div, 50, 51),
            "%" => (BinOp::Mod, 50, 51),
            "**" => (BinOp::Pow, 70, UNARY_BP),
            _ => return None,
        })
    }

    fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne
        )
    }
}

/// Whether a sub-expression is a boolean array (numpy refuses `~ & |` on float arrays).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Num,
    Bool,
}

#[derive(Debug, Clone, Copy)]
struct Parsed {
    kind: Kind,
    at: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Where,
    Min,
    Max,
    Mod,
    Abs,
    Sqrt,
    Log,
    Log10,
    Exp,
    Sin,
    Cos,
    Tan,
    Sinh,
    Cosh,
    Tanh,
    Arcsin,
    Arccos,
    Arctan,
    Arcsinh,
    Arccosh,
    Arctanh,
    GetMask,
    SetMask,
    MaskedEqual,
    MaskedNotEqual,
    MaskedGreater,
    MaskedGreaterEqual,
    MaskedLess,
    MaskedLessEqual,
    MaskedInside,
    MaskedOutside,
    MaskedInvalid,
    MaskedWhere,
}

impl Func {
    fn from_name(name: &str) -> Option<(Func, &'static str)> {
        let f = match name {
            "where" => Func::Where,
            "min" | "minimum" => Func::Min,
            "max" | "maximum" => Func::Max,
            "mod" => Func::Mod,
            "abs" => Func::Abs,
            "sqrt" => Func::Sqrt,
            "log" => Func::Log,
            "log10" => Func::Log10,
            "exp" => Func::Exp,
            "sin" => Func::Sin,
            "cos" => Func::Cos,
            "tan" => Func::Tan,
            "sinh" => Func::Sinh,
            "cosh" => Func::Cosh,
            "tanh" => Func::Tanh,
            "arcsin" => Func::Arcsin,
            "arccos" => Func::Arccos,
            "arctan" => Func::Arctan,
            "arcsinh" => Func::Arcsinh,
            "arccosh" => Func::Arccosh,
            "arctanh" => Func::Arctanh,
            "getmask" => Func::GetMask,
            "setmask" => Func::SetMask,
            "masked_equal" => Func::MaskedEqual,
            "masked_not_equal" => Func::MaskedNotEqual,
            "masked_greater" => Func::MaskedGreater,
            "masked_greater_equal" => Func::MaskedGreaterEqual,
            "masked_less" => Func::MaskedLess,
            "masked_less_equal" => Func::MaskedLessEqual,
            "masked_inside" => Func::MaskedInside,
            "masked_outside" => Func::MaskedOutside,
            "masked_invalid" => Func::MaskedInvalid,
            "masked_where" => Func::MaskedWhere,
            _ => return None,
        };
        let static_name = FUNCTIONS.iter().find(|(n, _)| *n == name)?.0;
        Some((f, static_name))
    }

    fn arity(self) -> usize {
        match self {
            Func::Where | Func::MaskedInside | Func::MaskedOutside => 3,
            Func::Min
            | Func::Max
            | Func::Mod
            | Func::SetMask
            | Func::MaskedEqual
            | Func::MaskedNotEqual
            | Func::MaskedGreater
            | Func::MaskedGreaterEqual
            | Func::MaskedLess
            | Func::MaskedLessEqual
            | Func::MaskedWhere => 2,
            _ => 1,
        }
    }
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    program: Vec<Instr>,
    used: [bool; MAX_VARIABLES],
    depth: usize,
}

impl Parser<'_> {
    /// The current token; the lexer always ends the list with `End`, which is never consumed.
    fn peek(&self) -> Token {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .cloned()
            .unwrap_or(Token {
                tok: Tok::End,
                at: 0,
            })
    }

    fn advance(&mut self) -> Token {
        let t = self.peek();
        if t.tok != Tok::End {
            self.pos += 1;
        }
        t
    }

    fn emit(&mut self, instr: Instr, at: usize) -> Result<(), ExprError> {
        if self.program.len() >= MAX_NODES {
            return Err(ExprError::TooManyNodes {
                offset: at,
                max: MAX_NODES,
            });
        }
        self.program.push(instr);
        Ok(())
    }

    fn expr(&mut self, min_bp: u8) -> Result<Parsed, ExprError> {
        if self.depth >= MAX_DEPTH {
            return Err(ExprError::TooDeep {
                offset: self.peek().at,
                max: MAX_DEPTH,
            });
        }
        self.depth += 1;
        let result = self.expr_inner(min_bp);
        self.depth -= 1;
        result
    }

    fn expr_inner(&mut self, min_bp: u8) -> Result<Parsed, ExprError> {
        let mut lhs = self.prefix()?;
        // Set once this loop built a comparison: Python would chain a second one
        // (`a < b < c` means `a < b and b < c`), which Terracotta rejects too.
        let mut compared = false;
        loop {
            let t = self.peek();
            let Some((op, lbp, rbp)) = BinOp::from_tok(&t.tok) else {
                break;
            };
            if lbp < min_bp {
                break;
            }
            if compared && op.is_comparison() {
                return Err(syntax(
                    "chained comparisons are not supported (use parentheses and '&')",
                    t.at,
                ));
            }
            self.advance();
            let rhs = self.expr(rbp)?;
            let kind = match op {
                BinOp::And | BinOp::Or => {
                    let name = if op == BinOp::And { "&" } else { "|" };
                    for side in [lhs, rhs] {
                        if side.kind != Kind::Bool {
                            return Err(ExprError::NotBoolean {
                                op: name,
                                offset: side.at,
                            });
                        }
                    }
                    Kind::Bool
                }
                _ if op.is_comparison() => Kind::Bool,
                _ => Kind::Num,
            };
            self.emit(Instr::Bin(op), t.at)?;
            lhs = Parsed { kind, at: lhs.at };
            compared = op.is_comparison();
        }
        Ok(lhs)
    }

    fn prefix(&mut self) -> Result<Parsed, ExprError> {
        let t = self.advance();
        let at = t.at;
        match t.tok {
            Tok::Num(v) => {
                self.emit(Instr::Const(v), at)?;
                Ok(Parsed {
                    kind: Kind::Num,
                    at,
                })
            }
            Tok::Op("-") => {
                self.expr(UNARY_BP)?;
                self.emit(Instr::Neg, at)?;
                Ok(Parsed {
                    kind: Kind::Num,
                    at,
                })
            }
            Tok::Op("+") => {
                let operand = self.expr(UNARY_BP)?;
                Ok(Parsed {
                    kind: operand.kind,
                    at,
                })
            }
            Tok::Op("~") => {
                let operand = self.expr(UNARY_BP)?;
                if operand.kind != Kind::Bool {
                    return Err(ExprError::NotBoolean {
                        op: "~",
                        offset: operand.at,
                    });
                }
                self.emit(Instr::Not, at)?;
                Ok(Parsed {
                    kind: Kind::Bool,
                    at,
                })
            }
            Tok::LParen => {
                let inner = self.expr(0)?;
                self.expect_close()?;
                Ok(Parsed {
                    kind: inner.kind,
                    at,
                })
            }
            Tok::Ident(name) => self.ident(&name, at),
            Tok::End => Err(syntax("unexpected end of expression, expected a value", at)),
            other => Err(syntax(
                format!("expected a value, found {}", other.describe()),
                at,
            )),
        }
    }

    fn expect_close(&mut self) -> Result<(), ExprError> {
        let t = self.peek();
        if t.tok == Tok::RParen {
            self.advance();
            Ok(())
        } else {
            Err(syntax(
                format!("expected ')', found {}", t.tok.describe()),
                t.at,
            ))
        }
    }

    fn ident(&mut self, name: &str, at: usize) -> Result<Parsed, ExprError> {
        let num = Parsed {
            kind: Kind::Num,
            at,
        };
        if let Some(digits) = name.strip_prefix('v') {
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return match digits.parse::<usize>() {
                    Ok(n) if (1..=MAX_VARIABLES).contains(&n) && !digits.starts_with('0') => {
                        self.used[n - 1] = true;
                        self.emit(Instr::Var(n - 1), at)?;
                        Ok(num)
                    }
                    _ => Err(ExprError::UnknownVariable {
                        name: name.to_string(),
                        offset: at,
                        max: MAX_VARIABLES,
                    }),
                };
            }
        }
        let constant = match name {
            "pi" => Some(std::f64::consts::PI),
            "nan" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            _ => None,
        };
        if let Some(c) = constant {
            self.emit(Instr::Const(c), at)?;
            return Ok(num);
        }
        let called = self.peek().tok == Tok::LParen;
        let Some((func, static_name)) = Func::from_name(name) else {
            return Err(if called {
                ExprError::UnknownFunction {
                    name: name.to_string(),
                    offset: at,
                }
            } else {
                ExprError::UnknownName {
                    name: name.to_string(),
                    offset: at,
                    max: MAX_VARIABLES,
                }
            });
        };
        if !called {
            return Err(syntax(
                format!("function {name} must be called: expected '(' after it"),
                at,
            ));
        }
        self.advance();
        let mut args = Vec::new();
        if self.peek().tok != Tok::RParen {
            loop {
                args.push(self.expr(0)?);
                let t = self.peek();
                match t.tok {
                    Tok::Comma => {
                        self.advance();
                        // Python allows one trailing comma in a call.
                        if self.peek().tok == Tok::RParen {
                            break;
                        }
                    }
                    Tok::RParen => break,
                    other => {
                        return Err(syntax(
                            format!(
                                "expected ',' or ')' in call of {name}, found {}",
                                other.describe()
                            ),
                            t.at,
                        ))
                    }
                }
            }
        }
        self.expect_close()?;
        if args.len() != func.arity() {
            return Err(ExprError::WrongArgCount {
                name: static_name,
                offset: at,
                got: args.len(),
                expected: func.arity(),
            });
        }
        self.emit(Instr::Call(func), at)?;
        let kind = match func {
            Func::GetMask => Kind::Bool,
            Func::Where if args[1].kind == Kind::Bool && args[2].kind == Kind::Bool => Kind::Bool,
            _ => Kind::Num,
        };
        Ok(Parsed { kind, at })
    }
}

/// The deepest stack a well-formed postfix program reaches.
fn max_stack(program: &[Instr]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for instr in program {
        match instr {
            Instr::Var(_) | Instr::Const(_) => depth += 1,
            Instr::Neg | Instr::Not => {}
            Instr::Bin(_) => depth = depth.saturating_sub(1),
            Instr::Call(f) => depth = (depth + 1).saturating_sub(f.arity()),
        }
        max = max.max(depth);
    }
    max
}

// ---------------------------------------------------------------------------------------------
// Evaluation kernels: each runs one operation over a whole chunk so the loop body is a single
// monomorphic closure the compiler can vectorise.

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// A masked result when any operand is masked, else `f(a, b)`; for operations whose IEEE
/// version can turn NaN into a number (`min`, `powf(NaN, 0)`, comparisons).
fn masked2(a: f64, b: f64, f: impl Fn(f64, f64) -> f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        f(a, b)
    }
}

fn unary(a: &mut [f64], f: impl Fn(f64) -> f64) {
    for x in a {
        *x = f(*x);
    }
}

/// Replaces `stack[sp-2]` by `f(stack[sp-2], stack[sp-1])`.
fn binary(stack: &mut [Vec<f64>], sp: usize, len: usize, f: impl Fn(f64, f64) -> f64) {
    let (lo, hi) = stack.split_at_mut(sp - 1);
    let a = &mut lo[sp - 2][..len];
    for (x, &y) in a.iter_mut().zip(&hi[0][..len]) {
        *x = f(*x, y);
    }
}

/// Replaces `stack[sp-3]` by `f(stack[sp-3], stack[sp-2], stack[sp-1])`.
fn ternary(stack: &mut [Vec<f64>], sp: usize, len: usize, f: impl Fn(f64, f64, f64) -> f64) {
    let (lo, hi) = stack.split_at_mut(sp - 2);
    let (b, c) = hi.split_at(1);
    let a = &mut lo[sp - 3][..len];
    for ((x, &y), &z) in a.iter_mut().zip(&b[0][..len]).zip(&c[0][..len]) {
        *x = f(*x, y, z);
    }
}

/// Python's `%`: the result takes the sign of the divisor; masked for a zero divisor.
fn python_mod(a: f64, b: f64) -> f64 {
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

fn binary_op(op: BinOp, stack: &mut [Vec<f64>], sp: usize, len: usize) {
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
fn masked_if2(x: f64, v: f64, hit: impl Fn(f64, f64) -> bool) -> f64 {
    masked2(x, v, |x, v| if hit(x, v) { f64::NAN } else { x })
}

fn call(f: Func, stack: &mut [Vec<f64>], sp: usize, len: usize) {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
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
            let e = Expression::parse(&format!("{name}({args})"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
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
        let e =
            Expression::parse("where((v1 > v2) | getmask(v2), v1 ** 2, log(abs(v2)) % 3)").unwrap();
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
        assert!(
            err(&format!("v1{}", "**2".repeat(100))).starts_with("expression nested too deeply")
        );
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
}
